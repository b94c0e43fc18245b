//! `extends:` resolved the way Compose resolves it, before translation: the base service
//! (from this file or another) merged with the extending one, which wins. Mappings merge
//! key by key, lists of `KEY=value` merge as mappings, other lists are appended without
//! duplicates (mounts are keyed by their target), commands and tests are replaced.

use super::ImportError;
use super::yaml::{self, Key, Node, Value};

/// Reads a file named by `extends.file`, relative to the imported file's folder.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// How deep `extends` may chain before it counts as a cycle.
const MAX_DEPTH: usize = 16;

/// Keys whose list form (`- KEY=value`) is a mapping in disguise.
const MAP_LISTS: &[&str] = &["environment", "labels", "args", "sysctls", "extra_hosts"];

/// Keys replaced whole, never merged.
const REPLACED: &[&str] = &["command", "entrypoint", "test"];

/// The services with every `extends` resolved.
///
/// # Errors
/// A base service or file that does not exist, a cycle, a base file that is not YAML.
pub fn resolve(
    services: &[(Key, Node)],
    read: ReadFile<'_>,
) -> Result<Vec<(Key, Node)>, ImportError> {
    services
        .iter()
        .map(|(key, node)| Ok((key.clone(), resolved(node, services, None, read, 0)?)))
        .collect()
}

fn resolved(
    node: &Node,
    siblings: &[(Key, Node)],
    // The file the service came from, when not the imported one; lines are not its own.
    from_file: Option<&str>,
    read: ReadFile<'_>,
    depth: usize,
) -> Result<Node, ImportError> {
    let Some(extends) = node.get("extends") else {
        return Ok(node.clone());
    };
    let at = |message: String| ImportError::shape(extends.line, "extends", message);
    if depth > MAX_DEPTH {
        return Err(at("`extends` chains too deep (a cycle?)".to_string()));
    }
    let (service, file) = match &extends.value {
        Value::Str(service) => (service.clone(), None),
        Value::Map(_) => (
            extends
                .get("service")
                .and_then(Node::scalar_text)
                .ok_or_else(|| at("`extends` needs a `service`".to_string()))?,
            extends.get("file").and_then(Node::scalar_text),
        ),
        _ => {
            return Err(at(format!(
                "expected a service name or a mapping, found {}",
                extends.kind()
            )));
        }
    };
    let file = file.or_else(|| from_file.map(str::to_string));
    let base = match &file {
        None => {
            let base = find(siblings, &service)
                .ok_or_else(|| at(format!("no service `{service}` to extend")))?;
            resolved(base, siblings, None, read, depth + 1)?
        }
        Some(file) => {
            let text = read(file).map_err(|e| at(format!("{file}: {e}")))?;
            let root = yaml::load(&text).map_err(|e| at(format!("{file}: {}", e.message)))?;
            let services = root
                .get("services")
                .and_then(Node::entries)
                .unwrap_or_default();
            let base = find(services, &service)
                .ok_or_else(|| at(format!("{file} has no service `{service}`")))?;
            // Its lines belong to the other file: report them at this `extends:`.
            relocated(
                &resolved(base, services, Some(file), read, depth + 1)?,
                extends.line,
            )
        }
    };
    let own: Vec<(Key, Node)> = node
        .entries()
        .unwrap_or_default()
        .iter()
        .filter(|(key, _)| key.name != "extends")
        .cloned()
        .collect();
    Ok(merge(
        &base,
        &Node {
            value: Value::Map(own),
            line: node.line,
        },
        "",
    ))
}

fn find<'a>(services: &'a [(Key, Node)], name: &str) -> Option<&'a Node> {
    services
        .iter()
        .find(|(key, _)| key.name == name)
        .map(|(_, node)| node)
}

fn relocated(node: &Node, line: u64) -> Node {
    let value = match &node.value {
        Value::Seq(items) => Value::Seq(items.iter().map(|item| relocated(item, line)).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(key, value)| {
                    (
                        Key {
                            name: key.name.clone(),
                            line,
                        },
                        relocated(value, line),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    };
    Node { value, line }
}

/// `over` merged onto `base`; `key` is the field both are the value of.
fn merge(base: &Node, over: &Node, key: &str) -> Node {
    if REPLACED.contains(&key) {
        return over.clone();
    }
    let (base, over) = if MAP_LISTS.contains(&key) {
        (as_map(base), as_map(over))
    } else {
        (base.clone(), over.clone())
    };
    match (&base.value, &over.value) {
        (Value::Map(base_entries), Value::Map(over_entries)) => {
            let mut merged = base_entries.clone();
            for (over_key, over_value) in over_entries {
                match merged.iter_mut().find(|(k, _)| k.name == over_key.name) {
                    Some((_, value)) => *value = merge(value, over_value, &over_key.name),
                    None => merged.push((over_key.clone(), over_value.clone())),
                }
            }
            Node {
                value: Value::Map(merged),
                line: over.line,
            }
        }
        (Value::Seq(base_items), Value::Seq(over_items)) => {
            let identity = |item: &Node| -> String {
                if key == "volumes" {
                    mount_target(item)
                } else {
                    format!("{:?}", item.value)
                }
            };
            let mut merged: Vec<Node> = base_items
                .iter()
                .filter(|item| !over_items.iter().any(|o| identity(o) == identity(item)))
                .cloned()
                .collect();
            merged.extend(over_items.iter().cloned());
            Node {
                value: Value::Seq(merged),
                line: over.line,
            }
        }
        _ => over,
    }
}

/// A `- KEY=value` list as a mapping (a bare `- KEY` maps to null, as Compose reads it).
fn as_map(node: &Node) -> Node {
    let Value::Seq(items) = &node.value else {
        return node.clone();
    };
    let entries = items
        .iter()
        .filter_map(|item| {
            let text = item.scalar_text()?;
            let (key, value) = match text.split_once('=') {
                Some((key, value)) => (key.to_string(), Value::Str(value.to_string())),
                None => (text, Value::Null),
            };
            Some((
                Key {
                    name: key,
                    line: item.line,
                },
                Node {
                    value,
                    line: item.line,
                },
            ))
        })
        .collect();
    Node {
        value: Value::Map(entries),
        line: node.line,
    }
}

fn mount_target(item: &Node) -> String {
    match (&item.value, item.get("target")) {
        (Value::Map(_), Some(target)) => target.scalar_text().unwrap_or_default(),
        _ => {
            let text = item.scalar_text().unwrap_or_default();
            let parts: Vec<&str> = text.split(':').collect();
            match parts.as_slice() {
                [target] | [_, target] | [_, target, _] => (*target).to_string(),
                _ => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use crate::import::yaml::{Value, load};

    #[test]
    fn local_keys_win_maps_merge_lists_append() {
        let doc = load(
            "services:\n  base:\n    image: a\n    environment: [A=1, B=2]\n    ports: ['80:80']\n    command: x\n  web:\n    extends: base\n    environment: {B: 3}\n    ports: ['81:81']\n    command: y\n",
        )
        .expect("loads");
        let services = doc
            .get("services")
            .and_then(|s| s.entries())
            .expect("services");
        let none = |_: &str| -> Result<String, String> { Err("no files".into()) };
        let resolved = resolve(services, &none).expect("resolves");
        let web = &resolved[1].1;
        assert_eq!(
            web.get("image").and_then(|n| n.scalar_text()).as_deref(),
            Some("a")
        );
        let env = web.get("environment").expect("environment");
        assert_eq!(
            env.get("A").and_then(|n| n.scalar_text()).as_deref(),
            Some("1")
        );
        assert_eq!(
            env.get("B").and_then(|n| n.scalar_text()).as_deref(),
            Some("3")
        );
        let Some(Value::Seq(ports)) = web.get("ports").map(|p| &p.value) else {
            panic!("ports")
        };
        // The base's list first, then the service's own: Compose appends.
        let ports: Vec<Option<String>> = ports.iter().map(|p| p.scalar_text()).collect();
        assert_eq!(ports, [Some("80:80".into()), Some("81:81".into())]);
        assert_eq!(
            web.get("command").and_then(|n| n.scalar_text()).as_deref(),
            Some("y")
        );
        assert!(web.get("extends").is_none());
    }

    #[test]
    fn cycles_and_missing_bases_are_errors() {
        let none = |_: &str| -> Result<String, String> { Err("no such file".into()) };
        let doc = load("services:\n  a:\n    extends: b\n  b:\n    extends: a\n").expect("loads");
        let services = doc
            .get("services")
            .and_then(|s| s.entries())
            .expect("services");
        assert!(resolve(services, &none).is_err());
        let doc = load("services:\n  a:\n    extends: {file: x.yml, service: b}\n").expect("loads");
        let services = doc
            .get("services")
            .and_then(|s| s.entries())
            .expect("services");
        let error = resolve(services, &none).expect_err("missing file");
        assert!(error.message.contains("x.yml"), "{error:?}");
    }
}

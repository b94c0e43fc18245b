//! A YAML document as a tree whose every node and key knows its line, so that the
//! importer can name the line of anything it could not keep. Anchors, aliases and merge
//! keys (`<<: *base`) are resolved by serde-saphyr while loading, as Compose resolves them.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A value and the line it was written on (for values that came through an alias or a
/// merge key, the line that used them).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in the order they were written.
    Map(Vec<(Key, Node)>),
}

/// A mapping key: always text (Compose keys are), with its own line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub line: u64,
}

/// Why a document could not be loaded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

/// Parses one YAML document.
///
/// # Errors
/// Malformed YAML, duplicate keys, or a document past serde-saphyr's size budget.
pub fn load(text: &str) -> Result<Node, LoadError> {
    // Compose files reuse a few anchors many times (sentry: 142 aliases of 10 anchors), which
    // serde-saphyr's alias/anchor ratio guard takes for an attack; its node, event and byte
    // budgets still stop a billion-laughs document.
    let mut budget = serde_saphyr::Budget::default();
    budget.enforce_alias_anchor_ratio = false;
    let options = serde_saphyr::options! { strict_booleans: true, budget: Some(budget) };
    let spanned: Spanned<Value> =
        serde_saphyr::from_str_with_options(text, options).map_err(|error| {
            let location = error.location();
            LoadError {
                line: location.map(|l| l.line()).filter(|line| *line > 0),
                column: location.map(|l| l.column()).filter(|column| *column > 0),
                message: first_line(&error.to_string()),
            }
        })?;
    Ok(node(spanned))
}

/// serde-saphyr's message without what berth says itself (the place) and without its
/// advice to library users.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let line = match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((place, rest)) if place.contains("column") => rest,
        _ => line,
    };
    let line = line
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(line);
    match line.strip_prefix("budget breached: ") {
        Some(breach) => budget_message(breach),
        None => line.to_string(),
    }
}

/// serde-saphyr's budget breach (`Nodes { nodes: 250001 }`) in words.
fn budget_message(breach: &str) -> String {
    let kind = breach.split([' ', '{']).next().unwrap_or(breach);
    let count: String = breach.chars().filter(char::is_ascii_digit).collect();
    let what = match kind {
        "Nodes" => "YAML nodes (values, lists and mappings)",
        "Events" => "YAML parser events",
        "Aliases" => "aliases (`*name`)",
        "Anchors" => "anchors (`&name`)",
        "Depth" => "levels of nesting",
        "Documents" => "YAML documents",
        "ScalarBytes" => "bytes of text in values",
        "MergeKeys" => "merge keys (`<<`)",
        "InputBytes" => "bytes",
        _ => "YAML elements",
    };
    let count = if count.is_empty() {
        String::new()
    } else {
        format!("{count} ")
    };
    format!(
        "the file is too large to import: it reaches {count}{what}, past the limit that guards against YAML bombs"
    )
}

fn node(spanned: Spanned<Value>) -> Node {
    Node {
        value: spanned.value,
        line: spanned.referenced.line(),
    }
}

impl Node {
    /// The entries of a mapping, or `None` for any other kind of node.
    pub fn entries(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, value)| value)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// A scalar as the text Compose would read from it (`8080`, `true`, `0.5`); `None` for
    /// null, sequences and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(text) => Some(text.clone()),
            Value::Int(number) => Some(number.to_string()),
            Value::Float(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// What kind of node this is, for messages: "a mapping", "a list", "text"…
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "text",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v).map_or(Ok(Value::Str(v.to_string())), |v| Ok(Value::Int(v)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(node(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let line = key.referenced.line();
            let name = match key.value {
                Value::Str(text) => text,
                Value::Int(number) => number.to_string(),
                Value::Float(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                Value::Null => "null".to_string(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom("a mapping key must be text"));
                }
            };
            let value = node(map.next_value::<Spanned<Value>>()?);
            entries.push((Key { name, line }, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, load};

    #[test]
    fn lines_of_keys_and_values() {
        let doc = load("a: 1\nb:\n  - x\n  - y\n").expect("loads");
        let entries = doc.entries().expect("a mapping");
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].0.line, 1);
        assert_eq!(entries[1].0.line, 2);
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("b is a list")
        };
        assert_eq!(items[1].line, 4);
    }

    #[test]
    fn merge_keys_and_aliases_resolve_with_local_keys_winning() {
        let doc = load("base: &b {x: 1, y: 2}\nsvc:\n  <<: *b\n  y: 3\n").expect("loads");
        let svc = doc.get("svc").expect("svc");
        assert_eq!(svc.get("x").map(|n| &n.value), Some(&Value::Int(1)));
        assert_eq!(svc.get("y").map(|n| &n.value), Some(&Value::Int(3)));
    }

    #[test]
    fn scalars_keep_their_type() {
        let doc = load("a: yes\nb: true\nf: ${X:-1} $$y\nc: '1'\nd: 1.5\ne: ~\n").expect("loads");
        assert_eq!(
            doc.get("a").map(|n| &n.value),
            Some(&Value::Str("yes".into()))
        );
        assert_eq!(doc.get("b").map(|n| &n.value), Some(&Value::Bool(true)));
        assert_eq!(
            doc.get("c").map(|n| &n.value),
            Some(&Value::Str("1".into()))
        );
        assert_eq!(doc.get("d").map(|n| &n.value), Some(&Value::Float(1.5)));
        assert_eq!(doc.get("e").map(|n| &n.value), Some(&Value::Null));
        assert_eq!(
            doc.get("f").map(|n| &n.value),
            Some(&Value::Str("${X:-1} $$y".into()))
        );
    }

    #[test]
    fn malformed_yaml_has_a_line() {
        let error = load("a: 1\nb: [1, 2\nc: 3\n").expect_err("malformed");
        assert!(error.line.is_some(), "{error:?}");
        let duplicate = load("a: 1\na: 2\n").expect_err("duplicate key");
        assert_eq!(duplicate.line, Some(2), "{duplicate:?}");
    }
}

//! `berth import`: an existing Compose file becomes a berth stack module.
//!
//! `yaml` loads the file as a tree that knows its lines (anchors and merge keys resolved),
//! `compose` translates each part into Nickel fields and records what it cannot keep,
//! `interpolation` turns `${VAR:-default}` into declared variables, and `nickel` prints
//! the module. Pure: the CLI reads the files and writes the module.

pub mod compose;
pub mod extends;
pub mod interpolation;
pub mod nickel;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::validate::kubernetes_name;
use compose::{Declared, Translator, berth_name};
use nickel::{Expr, Field};
use yaml::{Node, Value};

/// What `import` needs besides the file's text.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stack name; default: the file's `name:`, else `fallback_name`.
    pub name: Option<String>,
    pub fallback_name: String,
    /// The file's name as the user gave it, for messages and the module's header.
    pub file: String,
    /// Values of the env file (`--env-file`): defaults for variables the Compose file
    /// gives none, and values for fields berth types.
    pub env: BTreeMap<String, String>,
    /// The env file's name, for comments.
    pub env_file: Option<String>,
}

/// A part of the Compose file the module does not express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub line: u64,
    /// Path of the key, e.g. `services.web.deploy.placement`.
    pub key: String,
    pub reason: String,
}

/// The imported module, and what it could not keep.
#[derive(Debug, Clone)]
pub struct Imported {
    pub stack: String,
    pub module: String,
    pub losses: Vec<Loss>,
    pub notes: Vec<String>,
}

/// Input that is not a Compose file: broken YAML, the wrong shape, an unknown key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub key: Option<String>,
    pub message: String,
}

impl ImportError {
    fn shape(line: u64, key: impl Into<String>, message: impl Into<String>) -> ImportError {
        ImportError {
            line: Some(line).filter(|line| *line > 0),
            column: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

const TOP_LEVEL_UNSUPPORTED: &[&str] = &["include", "models"];

/// Translates a Compose file into a stack module.
///
/// # Errors
/// Malformed YAML, a document that is not a Compose file, a key Compose does not know,
/// or an `extends` whose base cannot be found.
pub fn import(
    text: &str,
    options: &Options,
    read: extends::ReadFile<'_>,
) -> Result<Imported, ImportError> {
    let root = yaml::load(text).map_err(|e| ImportError {
        line: e.line,
        column: e.column,
        key: None,
        message: e.message,
    })?;
    let Some(entries) = root.entries() else {
        return Err(ImportError::shape(
            root.line,
            "(document)",
            format!(
                "a Compose file is a mapping with `services`, found {}",
                root.kind()
            ),
        ));
    };
    let mut translator = Translator::new(&options.env);
    // A secret's variable must not be one the file reads as text (`top_level_secrets`).
    let mut interpolated = std::collections::BTreeSet::new();
    compose::interpolated_names(&root, &mut interpolated);
    let mut stack_name = options.name.clone();
    let mut services = None;
    let mut volumes_node = None;
    let mut networks_node = None;
    let mut top_comments = Vec::new();
    for (key, value) in entries {
        match key.name.as_str() {
            "version" => translator.notes.push(format!(
                "line {}: `version` is obsolete in Compose and left out",
                key.line
            )),
            "name" => {
                if stack_name.is_none() {
                    stack_name = value.scalar_text();
                }
            }
            "services" => services = Some(value),
            "volumes" => volumes_node = Some(value),
            "networks" => networks_node = Some(value),
            // Read before the services, which mount them by name.
            "configs" => translator.top_level_configs(value),
            "secrets" => translator.top_level_secrets(value, &interpolated),
            other if TOP_LEVEL_UNSUPPORTED.contains(&other) => {
                translator.losses.push(Loss {
                    line: key.line,
                    key: other.to_string(),
                    reason: format!("top-level `{other}` has no berth equivalent"),
                });
                top_comments.push(format!(
                    "not imported ({other}): {}",
                    compose::summary(value)
                ));
            }
            other if other.starts_with("x-") => {}
            other => {
                return Err(ImportError::shape(
                    key.line,
                    other,
                    "not a top-level Compose key (services, volumes, networks, secrets, configs, name, include, x-…)",
                ));
            }
        }
    }
    let Some(services) = services else {
        return Err(ImportError::shape(
            root.line.max(1),
            "services",
            "a Compose file needs `services`",
        ));
    };
    let Some(service_entries) = services.entries() else {
        return Err(ImportError::shape(
            services.line,
            "services",
            format!(
                "`services` must be a mapping of service names, found {}",
                services.kind()
            ),
        ));
    };
    let service_entries = extends::resolve(service_entries, read)?;
    let stack = berth_name(stack_name.as_deref().unwrap_or(&options.fallback_name));
    if !crate::project::is_valid_name(&stack) {
        return Err(ImportError::shape(
            root.line.max(1),
            "name",
            "no stack name berth can use comes from the file's `name:` or its file name; pass --name NAME",
        ));
    }
    let volumes = match volumes_node {
        Some(node) => top_level_map(&mut translator, &stack, node, "volumes", |t, name, node| {
            t.volume(name, node)
        })?,
        None => Vec::new(),
    };
    let networks = match networks_node {
        Some(node) => top_level_map(
            &mut translator,
            &stack,
            node,
            "networks",
            |t, name, node| t.network(name, node),
        )?,
        None => Vec::new(),
    };
    let mut service_fields = Vec::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for (key, node) in &service_entries {
        let name = berth_name(&key.name);
        let seen_as = kubernetes_name(&name);
        check_name("services", &key.name, &name, seen_as, key.line, &mut taken)?;
        let out = translator.service(&key.name, node)?;
        let mut fields = out.fields;
        if name != key.name {
            keep_old_name_reachable(&key.name, &mut fields);
            translator.renamed.insert(key.name.clone(), name.clone());
        }
        service_fields.push(Field::new(name, Expr::Record(fields)));
    }
    if let Some(invalid) = translator.invalid.first() {
        return Err(invalid.clone());
    }
    translator.report_pass_through_defaults();
    translator
        .losses
        .sort_by(|a, b| (a.line, &a.key).cmp(&(b.line, &b.key)));
    let mut variables = declare_variables(&translator.variables, options);
    variables.extend(
        translator
            .secret_variables()
            .into_iter()
            .map(|(name, fields)| Field::new(name, Expr::Record(fields))),
    );
    variables.sort_by(|a, b| a.name.cmp(&b.name));
    let unmounted = translator.unmounted_secrets();
    translator.notes.extend(unmounted);
    let mut stack_fields = vec![Field::new("name", Expr::Str(stack.clone()))];
    stack_fields.push(Field::new("services", Expr::Record(service_fields)).commented(top_comments));
    for (name, fields) in [
        ("volumes", volumes),
        ("networks", networks),
        ("variables", variables),
    ] {
        if !fields.is_empty() {
            stack_fields.push(Field::new(name, Expr::Record(fields)));
        }
    }
    let mut module = header(&stack, options, &translator);
    module.push_str("let berth = import \"berth.ncl\" in\n");
    module.push_str(&nickel::print(&Expr::Record(stack_fields), 0));
    module.push('\n');
    Ok(Imported {
        stack,
        module,
        losses: translator.losses,
        notes: translator.notes,
    })
}

/// A name berth can hold once normalised, and that no earlier name of its section becomes
/// (`seen_as`: the name as the section's backends see it): the module written must build,
/// and two Compose keys under one berth name would merge into one record.
fn check_name<'n>(
    section: &str,
    original: &'n str,
    name: &str,
    seen_as: String,
    line: u64,
    taken: &mut BTreeMap<String, &'n str>,
) -> Result<(), ImportError> {
    let singular = section.trim_end_matches('s');
    if !crate::project::is_valid_name(name) {
        return Err(ImportError::shape(
            line,
            format!("{section}.{original}"),
            format!(
                "berth cannot hold this {singular} name: it keeps lower-case letters, digits, `-` and `_`, starting with a letter or digit"
            ),
        ));
    }
    if let Some(other) = taken.insert(seen_as.clone(), original) {
        let message = if berth_name(other) == name {
            format!(
                "`{other}` and `{original}` would both be the {singular} `{name}` in berth; rename one of them"
            )
        } else {
            format!(
                "`{other}` and `{original}` would both be `{seen_as}` on Kubernetes ('_' becomes '-'), which berth refuses; rename one of them"
            )
        };
        return Err(ImportError::shape(
            line,
            format!("{section}.{original}"),
            message,
        ));
    }
    Ok(())
}

type Translate<'t, 'a> = fn(&mut Translator<'a>, &str, &Node) -> Expr;

/// The entries of top-level `volumes` or `networks`, renamed where berth needs it; the
/// engine-side name stays what Compose would have made (`<project>_<key>`).
fn top_level_map<'a>(
    translator: &mut Translator<'a>,
    stack: &str,
    node: &Node,
    section: &str,
    translate: Translate<'_, 'a>,
) -> Result<Vec<Field>, ImportError> {
    let entries = match &node.value {
        Value::Null => return Ok(Vec::new()),
        Value::Map(entries) => entries,
        _ => {
            return Err(ImportError::shape(
                node.line,
                section,
                format!("`{section}` must be a mapping, found {}", node.kind()),
            ));
        }
    };
    let mut fields = Vec::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in entries {
        if key.name.starts_with("x-") {
            continue;
        }
        let name = berth_name(&key.name);
        // Volumes are Kubernetes claims too; networks are not written there.
        let seen_as = match section {
            "volumes" => kubernetes_name(&name),
            _ => name.clone(),
        };
        check_name(section, &key.name, &name, seen_as, key.line, &mut taken)?;
        let Expr::Record(mut record) = translate(translator, &key.name, value) else {
            continue;
        };
        if name != key.name && !record.iter().any(|f| f.name == "name") {
            translator.notes.push(format!(
                "line {}: {section}.{} is `{name}` in berth; its engine name stays the Compose one",
                key.line, key.name
            ));
            let external = record
                .iter()
                .any(|f| f.name == "external" && f.value == Expr::Bool(true));
            let engine = crate::model::engine_name(stack, &key.name, None, external);
            record.insert(0, Field::new("name", Expr::Str(engine)));
        }
        fields.push(Field::new(name, Expr::Record(record)));
    }
    Ok(fields)
}

/// A service whose name berth had to change is still reachable under the old one on
/// every network it joins.
fn keep_old_name_reachable(old: &str, fields: &mut Vec<Field>) {
    let networks: Vec<String> = match fields.iter().find(|f| f.name == "networks") {
        Some(Field {
            value: Expr::Array(items),
            ..
        }) => items
            .iter()
            .filter_map(|item| match item {
                Expr::Str(name) => Some(name.clone()),
                _ => None,
            })
            .collect(),
        _ => vec!["default".to_string()],
    };
    let alias = Expr::Str(old.to_string());
    match fields.iter_mut().find(|f| f.name == "network_aliases") {
        Some(Field {
            value: Expr::Record(per_network),
            ..
        }) => {
            for network in networks {
                match per_network.iter_mut().find(|f| f.name == network) {
                    Some(Field {
                        value: Expr::Array(names),
                        ..
                    }) => names.push(alias.clone()),
                    _ => per_network.push(Field::new(network, Expr::Array(vec![alias.clone()]))),
                }
            }
        }
        _ => fields.push(
            Field::new(
                "network_aliases",
                Expr::Record(
                    networks
                        .into_iter()
                        .map(|network| Field::new(network, Expr::Array(vec![alias.clone()])))
                        .collect(),
                ),
            )
            .commented(vec![format!(
                "Was `{old}` in the Compose file; berth names are lower case without dots."
            )]),
        ),
    }
}

/// Names that hold credentials by convention; their values never become defaults.
fn looks_like_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "PRIVATE_KEY",
        "API_KEY",
        "_PASS",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|word| upper.contains(word))
        || upper.ends_with("_KEY")
        || upper.ends_with("PASS")
}

fn declare_variables(variables: &BTreeMap<String, Declared>, options: &Options) -> Vec<Field> {
    let env_file = options.env_file.as_deref().unwrap_or("the env file");
    variables
        .iter()
        .map(|(name, declared)| {
            let mut comments = Vec::new();
            let description = declared.required_message.clone().unwrap_or_else(|| {
                format!("Read by {} at line {} ({}).", options.file, declared.line, declared.first_use)
            });
            let mut fields = vec![Field::new("description", Expr::Str(description))];
            let credential = looks_like_credential(name);
            match (&declared.default, options.env.get(name)) {
                (Some(default), _) => {
                    if credential && !default.is_empty() {
                        comments.push("Looks like a credential: consider `secret = true` and no default.".to_string());
                    }
                    fields.push(Field::new("default", Expr::Str(default.clone())));
                }
                (None, Some(_)) if credential => {
                    comments.push(format!("A credential: its value in {env_file} is not copied here."));
                    fields.push(Field::new("secret", Expr::Bool(true)));
                }
                (None, Some(value)) => {
                    comments.push(format!("Default taken from {env_file}."));
                    fields.push(Field::new("default", Expr::Str(value.clone())));
                }
                (None, None) if !declared.pass_through.is_empty() && declared.required_message.is_none() => {
                    comments.push(
                        "Passed through from the host in Compose; empty when the host does not set it.".to_string(),
                    );
                    fields.push(Field::new("default", Expr::Str(String::new())));
                }
                (None, None) => {}
            }
            if declared.unset_only {
                comments.push(format!(
                    "Compose used this default only when {name} was unset; berth also uses it when it is empty."
                ));
            }
            Field::new(name.clone(), Expr::Record(fields)).commented(comments)
        })
        .collect()
}

fn header(stack: &str, options: &Options, translator: &Translator<'_>) -> String {
    let mut lines = vec![
        format!("{stack}: imported from {} by `berth import`.", options.file),
        "Variables below came from ${VAR} references in the Compose file; their defaults from"
            .to_string(),
        "the file (or the env file), values that look like credentials are marked secret."
            .to_string(),
        format!(
            "Relative paths (binds, env files, build contexts) are those of {}: run the",
            options.file
        ),
        "generated compose.yaml with `--project-directory` set to its folder, or copy the files."
            .to_string(),
    ];
    if !translator.losses.is_empty() {
        lines.push(String::new());
        lines.push(
            "Not imported (kept here by --allow-lossy; each is also listed by the command):"
                .to_string(),
        );
        for loss in &translator.losses {
            lines.push(format!(
                "  line {}: {}: {}",
                loss.line, loss.key, loss.reason
            ));
        }
    }
    let mut text = String::new();
    for line in lines {
        if line.is_empty() {
            text.push_str("#\n");
        } else {
            text.push_str(&format!("# {}\n", line.replace('\n', " ")));
        }
    }
    text
}

/// The importer must answer every input with a module or an error, never a panic: random
/// text, Compose-shaped documents built from the keys it knows, and real corpus files
/// with random edits. `PROPTEST_CASES=N` runs longer (see tests/README.md).
/// `berth import` could not produce a module, or would lose part of the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", located(file, error))]
    Invalid { file: PathBuf, error: ImportError },
    #[error("{}: {message}", file.display())]
    EnvFile { file: PathBuf, message: String },
    #[error(
        "--name {name:?}: not a stack name (lower-case letters, digits, `-` and `_`, starting with a letter or digit); nothing was written\nhint: e.g. --name {suggestion}"
    )]
    BadName { name: String, suggestion: String },
    #[error("{}: exists already\nhint: pass --force to replace it, or --out to write elsewhere", path.display())]
    Exists { path: PathBuf },
    #[error(
        "{}: {} key(s) cannot be expressed in berth (listed above); nothing was written\nhint: pass --allow-lossy to write the module with them as comments",
        file.display(), count
    )]
    Lossy { file: PathBuf, count: usize },
}

/// `file:line:col: key: message`, leaving out what is unknown.
fn located(file: &std::path::Path, error: &ImportError) -> String {
    let mut place = file.display().to_string();
    for number in [error.line, error.column].into_iter().flatten() {
        place.push_str(&format!(":{number}"));
    }
    match &error.key {
        Some(key) => format!("{place}: {key}: {}", error.message),
        None => format!("{place}: {}", error.message),
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::{Options, import};

    fn run(text: &str) {
        let read = |_: &str| -> Result<String, String> { Err("no files here".into()) };
        let options = Options {
            fallback_name: "fuzz".into(),
            file: "fuzz.yml".into(),
            ..Options::default()
        };
        if let Ok(imported) = import(text, &options, &read) {
            assert!(imported.module.ends_with('\n'));
            assert!(imported.losses.iter().all(|loss| !loss.key.is_empty()));
        }
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9./:_-]{0,12}",
            r"\$\{[A-Z_]{1,4}(:-|-|:\?|\?|:\+)?[a-z0-9 $]{0,6}\}?",
            r"\$[A-Z]{0,3}\$?",
            // Variables in typed fields, with defaults that are (or are not) their values.
            r"\$\{[A-Z]{1,2}(:-|-)(30s|1m30s|3|always|no|x|)\}",
            "-?[0-9]{1,6}(\\.[0-9]{1,2})?",
            Just("true".to_string()),
            Just("~".to_string()),
            "[0-9]{1,5}(-[0-9]{1,5})?(:[0-9]{1,5})?(/udp)?",
            "(\\.?/)?[a-z]{1,5}(:/[a-z]{1,5})?(:ro|:rw|:Z|:ro,z|:nocopy)?",
        ]
        .prop_map(|s| format!("{s:?}"))
    }

    const KEYS: &[&str] = &[
        "image",
        "build",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "ports",
        "expose",
        "volumes",
        "networks",
        "depends_on",
        "healthcheck",
        "deploy",
        "restart",
        "labels",
        "logging",
        "ulimits",
        "extra_hosts",
        "tmpfs",
        "profiles",
        "extends",
        "secrets",
        "network_mode",
        "scale",
        "cap_add",
        "shm_size",
        "stop_grace_period",
        "condition",
        "test",
        "interval",
        "timeout",
        "start_period",
        "retries",
        "resources",
        "limits",
        "cpus",
        "memory",
        "soft",
        "hard",
        "aliases",
        "target",
        "published",
        "source",
        "type",
        "read_only",
        "context",
        "args",
        "driver",
        "options",
        "external",
        "name",
        "x-extra",
        "mem_limit",
        "mem_reservation",
        "cpu_shares",
        "dns",
        "dns_search",
        "dns_opt",
        "tty",
        "stdin_open",
        "pid",
        "security_opt",
        "reservations",
        "mode",
        "global",
        "<<",
    ];

    fn value() -> impl Strategy<Value = String> {
        scalar().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(
                    |entries| {
                        let body: Vec<String> =
                            entries.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
                        format!("{{{}}}", body.join(", "))
                    }
                ),
            ]
        })
    }

    fn document() -> impl Strategy<Value = String> {
        let service = prop::collection::vec((prop::sample::select(KEYS), value()), 0..8).prop_map(
            |entries| {
                let body: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("    {k}: {v}\n"))
                    .collect();
                body.concat()
            },
        );
        (
            prop::collection::vec(("[a-zA-Z.]{1,6}", service), 0..4),
            prop::sample::select(vec![
                "",
                "version: '3'\n",
                "name: Fuzz\n",
                "volumes: {data: {}}\n",
                "networks: [a]\n",
                "bogus: 1\n",
            ]),
        )
            .prop_map(|(services, extra)| {
                let mut text = String::from(extra);
                text.push_str("services:\n");
                for (name, body) in services {
                    text.push_str(&format!("  {name:?}:\n{body}"));
                    if body.is_empty() {
                        text.push_str("    image: x\n");
                    }
                }
                text
            })
    }

    fn corpus() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/compose");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "yml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
        ))]

        #[test]
        fn random_text_never_panics(text in "\\PC{0,200}") {
            run(&text);
        }

        #[test]
        fn compose_shaped_documents_never_panic(text in document()) {
            run(&text);
        }

        #[test]
        fn edited_corpus_files_never_panic(
            pick in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[ -~\\n]{0,4}"), 1..6),
        ) {
            let files = corpus();
            prop_assume!(!files.is_empty());
            let mut text: Vec<char> = pick.get(&files).chars().collect();
            for (at, kind, insert) in edits {
                if text.is_empty() {
                    break;
                }
                let i = at.index(text.len());
                match kind {
                    0 => { text.remove(i); }
                    1 => { text.splice(i..i, insert.chars()); }
                    _ => { text[i] = insert.chars().next().unwrap_or(' '); }
                }
            }
            run(&text.into_iter().collect::<String>());
        }
    }
}

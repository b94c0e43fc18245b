//! A Compose file (already loaded as a [`Node`] tree) translated into the fields of a
//! berth stack module. Every key is either translated, or recorded as a [`Loss`] with
//! its line: nothing is dropped silently.

mod secrets;

use std::collections::BTreeMap;

use secrets::ComposeSecret;
pub use secrets::interpolated_names;

use super::interpolation::{self, Use};
use super::nickel::{Expr, Field};
use super::yaml::{Key, Node, Value};
use super::{ImportError, Loss};

/// Service keys of the Compose specification that berth has no field for. They are
/// reported as losses; a key in neither list is a typo, and an error.
const UNSUPPORTED_SERVICE_KEYS: &[&str] = &[
    "annotations",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "domainname",
    "external_links",
    "group_add",
    "ipc",
    "isolation",
    "label_file",
    "links",
    "mac_address",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "oom_kill_disable",
    "oom_score_adj",
    "pids_limit",
    "post_start",
    "pre_stop",
    "provider",
    "runtime",
    "storage_opt",
    "use_api_socket",
    "userns_mode",
    "uts",
    "volume_driver",
    "volumes_from",
];

const RESTART_POLICIES: &[&str] = &["no", "always", "on-failure", "unless-stopped"];

/// Compose's healthcheck timings when a file leaves them out (Docker's defaults). berth's
/// own defaults differ, so the importer writes these explicitly.
const DOCKER_HEALTH_DEFAULTS: [(&str, &str); 3] =
    [("interval", "30s"), ("timeout", "30s"), ("retries", "3")];

/// A variable the Compose file reads, as it will be declared in the module.
#[derive(Debug, Clone)]
pub struct Declared {
    pub default: Option<String>,
    pub required_message: Option<String>,
    /// Line of the first use.
    pub line: u64,
    /// Field path of the first use.
    pub first_use: String,
    /// `${VAR-default}` somewhere: the default applied only when VAR was unset.
    pub unset_only: bool,
    /// Environment entries that pass the host's value through (`- NAME` / `NAME:`):
    /// (line, field path).
    pub pass_through: Vec<(u64, String)>,
}

/// The translation so far.
pub struct Translator<'a> {
    /// Values of `--env-file`, used only to freeze interpolations in fields that berth
    /// types (numbers, durations, restart policies).
    pub env: &'a BTreeMap<String, String>,
    pub losses: Vec<Loss>,
    pub notes: Vec<String>,
    pub variables: BTreeMap<String, Declared>,
    /// Service names berth could not keep, and what they became.
    pub renamed: BTreeMap<String, String>,
    /// Values Compose itself would refuse (a port past 65535): bad input, not a loss.
    pub invalid: Vec<ImportError>,
    /// The file's top-level `configs` that a service can mount, by name.
    pub configs: BTreeMap<String, ConfigSource>,
    /// The file's top-level `secrets` that a service can mount, by name.
    pub secrets: BTreeMap<String, ComposeSecret>,
}

/// Where a top-level config's text comes from, in the forms berth keeps: Compose mounts a
/// `file` config read-only at its target (a bind mount outside Swarm), and writes an
/// inline `content` config into the container as a file.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(String),
    Content(String),
}

/// What a service translates to: its fields, and comments for the lossy keys.
pub struct ServiceOut {
    pub fields: Vec<Field>,
}

impl<'a> Translator<'a> {
    pub fn new(env: &'a BTreeMap<String, String>) -> Translator<'a> {
        Translator {
            env,
            losses: Vec::new(),
            notes: Vec::new(),
            variables: BTreeMap::new(),
            renamed: BTreeMap::new(),
            invalid: Vec::new(),
            configs: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    fn refuse(&mut self, line: u64, key: impl Into<String>, message: impl Into<String>) {
        self.invalid.push(ImportError {
            line: Some(line).filter(|line| *line > 0),
            column: None,
            key: Some(key.into()),
            message: message.into(),
        });
    }

    fn lose(&mut self, line: u64, key: impl Into<String>, reason: impl Into<String>) {
        self.losses.push(Loss {
            line,
            key: key.into(),
            reason: reason.into(),
        });
    }

    // -- text and variables ---------------------------------------------------------------

    /// A Compose string as berth text, declaring the variables it uses.
    fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        let Some(raw) = node.scalar_text() else {
            self.lose(
                node.line,
                path,
                format!("expected text, found {}", node.kind()),
            );
            return None;
        };
        match interpolation::translate(&raw) {
            Ok(translated) => {
                for found in translated.uses {
                    self.declare(found, node.line, path, false);
                }
                Some(translated.text)
            }
            Err(reason) => match interpolation::resolve(&raw, self.env) {
                // Kept with the values it has now, so the service still runs as it did.
                Ok(value) => {
                    self.lose(node.line, path, format!("{reason}; fixed to {value:?}"));
                    Some(value.replace('$', "$$"))
                }
                Err(_) => {
                    self.lose(node.line, path, reason);
                    None
                }
            },
        }
    }

    fn declare(&mut self, found: Use, line: u64, path: &str, pass_through: bool) {
        let Use {
            name,
            default,
            required,
            unset_only,
        } = found;
        match self.variables.get_mut(&name) {
            None => {
                self.variables.insert(
                    name,
                    Declared {
                        default,
                        required_message: required,
                        line,
                        first_use: path.to_string(),
                        unset_only,
                        pass_through: if pass_through {
                            vec![(line, path.to_string())]
                        } else {
                            Vec::new()
                        },
                    },
                );
            }
            Some(declared) => {
                if pass_through {
                    declared.pass_through.push((line, path.to_string()));
                }
                declared.unset_only |= unset_only;
                if declared.required_message.is_none() {
                    declared.required_message = required;
                }
                match (&declared.default, default) {
                    (None, Some(default)) => declared.default = Some(default),
                    (Some(first), Some(other)) if *first != other => {
                        let reason = format!(
                            "${{{name}}} has the default {other:?} here but {first:?} at line {} ({}); a berth variable has one default, the first is kept",
                            declared.line, declared.first_use
                        );
                        self.lose(line, path, reason);
                    }
                    _ => {}
                }
            }
        }
    }

    /// `"${NAME}"` for a typed field that is one variable whose default (the Compose
    /// file's, else the env file's) is `valid` there: berth's typed fields may name a
    /// variable declared with such a default. `None` (nothing declared, nothing lost) for
    /// anything else, which the caller then fixes to a value.
    fn typed_variable(
        &mut self,
        node: &Node,
        path: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let raw = node.scalar_text()?;
        let translated = interpolation::translate(&raw).ok()?;
        let [found] = translated.uses.as_slice() else {
            return None;
        };
        if translated.text != format!("${{{}}}", found.name) {
            return None;
        }
        let declared = self
            .variables
            .get(&found.name)
            .and_then(|d| d.default.clone());
        // An env-file value of a credential is not copied into the module, so it is no default.
        let from_env = (!super::looks_like_credential(&found.name))
            .then(|| self.env.get(&found.name).cloned())
            .flatten();
        let default = declared.or_else(|| found.default.clone()).or(from_env)?;
        if !valid(&default) {
            return None;
        }
        // The declaration takes the default from where it was found (see `declare_variables`).
        let (text, found) = (translated.text.clone(), found.clone());
        self.declare(found, node.line, path, false);
        Some(text)
    }

    /// A value berth types (a number, a duration, a policy): interpolations are replaced
    /// by their value from the env file or their default, and reported.
    fn fixed(&mut self, node: &Node, path: &str) -> Option<String> {
        let raw = node.scalar_text();
        let Some(raw) = raw else {
            self.lose(
                node.line,
                path,
                format!("expected a single value, found {}", node.kind()),
            );
            return None;
        };
        if !raw.contains('$') {
            return Some(raw);
        }
        let translated = match interpolation::translate(&raw) {
            Ok(translated) => translated,
            Err(reason) => {
                self.lose(node.line, path, reason);
                return None;
            }
        };
        if translated.uses.is_empty() {
            return Some(translated.text.replace("$$", "$"));
        }
        let mut value = translated.text.clone();
        for found in &translated.uses {
            let resolved = self
                .env
                .get(&found.name)
                .cloned()
                .or_else(|| found.default.clone());
            let Some(resolved) = resolved else {
                self.lose(
                    node.line,
                    path,
                    format!("{raw:?} reads ${{{}}}, which has no default and no value in the env file; berth needs a fixed value here", found.name),
                );
                return None;
            };
            value = value.replace(&format!("${{{}}}", found.name), &resolved);
        }
        self.lose(
            node.line,
            path,
            format!("{raw:?} is fixed to {value:?}: berth cannot read a variable in this field"),
        );
        Some(value)
    }

    /// A pass-through entry leaves the variable unset in the container when the host does
    /// not set it; a berth variable with a default (from another use) always sets it.
    pub fn report_pass_through_defaults(&mut self) {
        let mut found = Vec::new();
        for (name, declared) in &self.variables {
            if let Some(default) = &declared.default {
                for (line, path) in &declared.pass_through {
                    found.push((*line, path.clone(), format!(
                        "passes {name} through from the host, but {name} has the default {default:?} elsewhere: berth sets it to that default when the host does not set it"
                    )));
                }
            }
        }
        for (line, path, reason) in found {
            self.lose(line, path, reason);
        }
    }

    // -- services -------------------------------------------------------------------------

    pub fn service(&mut self, name: &str, node: &Node) -> Result<ServiceOut, ImportError> {
        let Some(entries) = node.entries() else {
            return Err(ImportError::shape(
                node.line,
                format!("services.{name}"),
                format!("a service must be a mapping, found {}", node.kind()),
            ));
        };
        let mut out = Out::default();
        let mut replicas: Option<(u64, Expr)> = None;
        let mut legacy = Vec::new();
        for (key, value) in entries {
            let path = format!("services.{name}.{}", key.name);
            if matches!(value.value, Value::Null) && key.name != "environment" {
                continue;
            }
            match key.name.as_str() {
                "image" | "working_dir" | "user" | "hostname" | "container_name" | "platform"
                | "pull_policy" => {
                    if let Some(text) = self.text(value, &path) {
                        out.push(&key.name, Expr::Str(text));
                    }
                }
                "stop_signal" | "network_mode" => {
                    if let Some(text) = self.fixed(value, &path) {
                        let text = self.renamed_network_mode(&key.name, text);
                        out.push(&key.name, Expr::Str(text));
                    }
                }
                "restart" => self.restart(value, &path, &mut out),
                "stop_grace_period" => {
                    if let Some(duration) = self.duration(value, &path) {
                        out.push("stop_grace_period", Expr::Str(duration));
                    }
                }
                "shm_size" => {
                    if let Some(size) = self.byte_size(value, &path) {
                        out.push("shm_size", Expr::Str(size));
                    }
                }
                "dns" | "dns_search" | "dns_opt" | "security_opt" => {
                    let items = self.fixed_list(value, &path);
                    out.push(
                        &key.name,
                        Expr::Array(items.into_iter().map(Expr::Str).collect()),
                    );
                }
                "pid" => match self.fixed(value, &path) {
                    Some(pid) if pid == "host" => out.push("pid", Expr::Str(pid)),
                    Some(other) => self.lose(
                        key.line,
                        path,
                        format!("`pid: {other}`: berth's `pid` holds \"host\" only"),
                    ),
                    None => {}
                },
                "init" | "read_only" | "privileged" | "attach" | "tty" | "stdin_open" => {
                    if let Some(flag) = self.flag(value, &path) {
                        out.push(&key.name, Expr::Bool(flag));
                    }
                }
                "cap_add" | "cap_drop" | "devices" | "profiles" => {
                    let field = if key.name == "profiles" {
                        "compose_profiles"
                    } else {
                        &key.name
                    };
                    let items = self.string_list(value, &path);
                    out.push(
                        field,
                        Expr::Array(items.into_iter().map(Expr::Str).collect()),
                    );
                }
                "tmpfs" => {
                    let items = self.string_list(value, &path);
                    out.push(
                        "tmpfs",
                        Expr::Array(items.into_iter().map(Expr::Str).collect()),
                    );
                }
                "command" | "entrypoint" => {
                    if let Some(command) = self.command(value, &path) {
                        out.push(&key.name, command);
                    }
                }
                "build" => {
                    if let Some(build) = self.build(value, &path) {
                        out.push("build", build);
                    }
                }
                "environment" => {
                    let (env, passed) = self.environment(value, &path);
                    out.push("environment", Expr::Record(env));
                    if !passed.is_empty() {
                        out.push(
                            "host_environment",
                            Expr::Array(
                                passed
                                    .into_iter()
                                    .map(|(name, _)| Expr::Str(name))
                                    .collect(),
                            ),
                        );
                    }
                }
                "env_file" => {
                    let files = self.env_files(value, &path);
                    out.push("env_file", Expr::Array(files));
                }
                "ports" => {
                    let ports = self.ports(value, &path);
                    out.extend("ports", ports);
                }
                "expose" => {
                    let ports = self.expose(value, &path);
                    out.extend("ports", ports);
                }
                "volumes" => {
                    // `extend`: a `configs` key before it may have started the list.
                    let mounts = self.mounts(value, &path);
                    out.extend("volumes", mounts);
                }
                "networks" => self.service_networks(value, &path, &mut out),
                "configs" => {
                    let (binds, files) = self.service_configs(value, &path);
                    if !binds.is_empty() {
                        out.extend("volumes", binds);
                    }
                    if !files.is_empty() {
                        out.push("files", Expr::Record(files));
                    }
                }
                "secrets" => {
                    let mounts = self.service_secrets(value, &path);
                    if !mounts.is_empty() {
                        out.push("secrets", Expr::Array(mounts));
                    }
                }
                "depends_on" => {
                    let depends = self.depends_on(value, &path);
                    out.push("depends_on", Expr::Record(depends));
                }
                "healthcheck" => {
                    if let Some(health) = self.healthcheck(value, &path) {
                        out.push("healthcheck", health);
                    }
                }
                "deploy" => self.deploy(value, &path, &mut out, &mut replicas),
                // Compose's short form of a GPU reservation: `all`, or devices whose
                // capabilities are GPUs.
                "gpus" if value.scalar_text().as_deref() == Some("all") => {
                    out.push("gpus", Expr::Record(Vec::new()));
                }
                "gpus" => {
                    if let Some(gpus) = self.gpus(value, &path, true) {
                        out.push("gpus", gpus);
                    }
                }
                "mem_limit" | "mem_reservation" | "cpus" => {
                    if let Some(resource) = self.legacy_resource(&key.name, value, &path) {
                        legacy.push(resource);
                    }
                }
                "scale" => {
                    if let Some(count) = self.count(value, &path) {
                        replicas = Some((count, Expr::Int(count_i64(count))));
                    }
                }
                "labels" => {
                    let labels = self.string_map(value, &path, '=');
                    out.push("labels", Expr::Record(labels));
                }
                "sysctls" => {
                    let sysctls = self.string_map(value, &path, '=');
                    out.push("sysctls", Expr::Record(sysctls));
                }
                "logging" => {
                    if let Some(logging) = self.logging(value, &path) {
                        out.push("logging", logging);
                    }
                }
                "ulimits" => {
                    let limits = self.ulimits(value, &path);
                    out.push("ulimits", Expr::Record(limits));
                }
                "extra_hosts" => {
                    let hosts = self.extra_hosts(value, &path);
                    out.push("extra_hosts", Expr::Record(hosts));
                }
                other if other.starts_with("x-") => self.notes.push(format!(
                    "line {}: {path}: extension field left out (Compose ignores it too)",
                    key.line
                )),
                other if UNSUPPORTED_SERVICE_KEYS.contains(&other) => {
                    let reason = unsupported_reason(other);
                    self.lose(key.line, path, reason);
                    out.comment(format!("not imported ({other}): {}", summary(value)));
                }
                other => {
                    return Err(ImportError::shape(
                        key.line,
                        path,
                        format!("`{other}` is not a Compose service key"),
                    ));
                }
            }
        }
        if let Some((count, expr)) = replicas
            && count != 1
        {
            out.push("replicas", expr);
        }
        self.merge_legacy_resources(&mut out, legacy);
        Ok(ServiceOut {
            fields: out.finish(),
        })
    }

    /// `service:NAME` names a service, which may have been renamed.
    fn renamed_network_mode(&self, key: &str, text: String) -> String {
        if key != "network_mode" {
            return text;
        }
        match text.strip_prefix("service:") {
            Some(service) => format!("service:{}", berth_name(service)),
            None => text,
        }
    }

    fn restart(&mut self, node: &Node, path: &str, out: &mut Out) {
        let is_policy = |text: &str| RESTART_POLICIES.contains(&text);
        if let Some(variable) = self.typed_variable(node, path, is_policy) {
            out.push("restart", Expr::Str(variable));
            return;
        }
        let Some(policy) = self.fixed(node, path) else {
            return;
        };
        let (base, retries) = policy.split_once(':').unwrap_or((&policy, ""));
        if !RESTART_POLICIES.contains(&base) {
            self.lose(
                node.line,
                path,
                format!("unknown restart policy {policy:?}"),
            );
            return;
        }
        if !retries.is_empty() {
            self.lose(
                node.line,
                path,
                format!("{policy:?}: berth has no retry count; kept as \"{base}\""),
            );
        }
        out.push("restart", Expr::Str(base.to_string()));
    }

    fn flag(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(flag) => Some(*flag),
            _ => match self.fixed(node, path)?.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                other => {
                    self.lose(
                        node.line,
                        path,
                        format!("expected true or false, found {other:?}"),
                    );
                    None
                }
            },
        }
    }

    /// A fixed value read by `parse`; what it cannot read is reported as not `what`.
    fn parsed<T>(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.fixed(node, path)?;
        let value = parse(&text);
        if value.is_none() {
            self.lose(node.line, path, format!("{text:?} is not {what}"));
        }
        value
    }

    fn count(&mut self, node: &Node, path: &str) -> Option<u64> {
        self.parsed(node, path, "a whole number", |text| {
            text.trim().parse().ok()
        })
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<String> {
        self.parsed(node, path, "a duration berth reads", normalized_duration)
    }

    fn byte_size(&mut self, node: &Node, path: &str) -> Option<String> {
        self.parsed(node, path, "a size berth reads", normalized_bytes)
    }

    fn string_list(&mut self, node: &Node, path: &str) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.text(item, &format!("{path}[{i}]")))
                .collect(),
            _ => self.text(node, path).into_iter().collect(),
        }
    }

    /// A string or a list of them, for fields berth holds as plain strings (no `${VAR}`):
    /// variables take their values now, and are reported.
    fn fixed_list(&mut self, node: &Node, path: &str) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.fixed(item, &format!("{path}[{i}]")))
                .collect(),
            _ => self.fixed(node, path).into_iter().collect(),
        }
    }

    /// A mapping, or a list of `key<sep>value` entries, as a record of text.
    fn string_map(&mut self, node: &Node, path: &str, separator: char) -> Vec<Field> {
        let mut fields = Vec::new();
        match &node.value {
            Value::Map(entries) => {
                for (key, value) in entries {
                    let at = format!("{path}.{}", key.name);
                    let text = match value.value {
                        Value::Null => Some(String::new()),
                        _ => self.text(value, &at),
                    };
                    if let Some(text) = text {
                        fields.push(Field::new(key.name.clone(), Expr::Str(text)));
                    }
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    let Some(entry) = item.scalar_text() else {
                        self.lose(
                            item.line,
                            at,
                            format!("expected text, found {}", item.kind()),
                        );
                        continue;
                    };
                    let (key, value) = entry.split_once(separator).unwrap_or((&entry, ""));
                    let value_node = Node {
                        value: Value::Str(value.to_string()),
                        line: item.line,
                    };
                    if let Some(text) = self.text(&value_node, &at) {
                        fields.push(Field::new(key.to_string(), Expr::Str(text)));
                    }
                }
            }
            _ => self.lose(
                node.line,
                path,
                format!("expected a mapping or a list, found {}", node.kind()),
            ),
        }
        fields
    }

    fn command(&mut self, node: &Node, path: &str) -> Option<Expr> {
        match &node.value {
            Value::Seq(items) => {
                let mut args = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    args.push(Expr::Str(self.text(item, &format!("{path}[{i}]"))?));
                }
                Some(Expr::Array(args))
            }
            _ => self.text(node, path).map(Expr::Str),
        }
    }

    fn build(&mut self, node: &Node, path: &str) -> Option<Expr> {
        let Some(entries) = node.entries() else {
            let context = self.text(node, path)?;
            return Some(Expr::Record(vec![Field::new(
                "context",
                Expr::Str(context),
            )]));
        };
        let mut fields = Vec::new();
        let mut has_context = false;
        for (key, value) in entries {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "context" | "dockerfile" | "target" => {
                    has_context |= key.name == "context";
                    if let Some(text) = self.text(value, &at) {
                        fields.push(Field::new(key.name.clone(), Expr::Str(text)));
                    }
                }
                "args" => {
                    let args = self.build_args(value, &at);
                    fields.push(Field::new("args", Expr::Record(args)));
                }
                "cache_from" => {
                    let images = self.string_list(value, &at);
                    fields.push(Field::new(
                        "cache_from",
                        Expr::Array(images.into_iter().map(Expr::Str).collect()),
                    ));
                }
                other => self.lose(
                    key.line,
                    at,
                    format!("build option `{other}` has no berth field"),
                ),
            }
        }
        if !has_context {
            fields.insert(0, Field::new("context", Expr::Str(".".into())));
        }
        Some(Expr::Record(fields))
    }

    /// Build arguments: like `environment`, a name without a value takes the host's; berth
    /// has no pass-through argument, so it becomes a variable (empty when unset).
    fn build_args(&mut self, node: &Node, path: &str) -> Vec<Field> {
        let (mut fields, passed) = self.environment(node, path);
        for (key, line) in passed {
            let found = Use {
                name: key.clone(),
                default: None,
                required: None,
                unset_only: false,
            };
            self.declare(found, line, &format!("{path}.{key}"), true);
            fields.push(Field::new(key.clone(), Expr::Str(format!("${{{key}}}"))));
        }
        fields
    }

    /// The entries with a value, and the names passed from the host (`- NAME`, `NAME:`),
    /// with their lines.
    fn environment(&mut self, node: &Node, path: &str) -> (Vec<Field>, Vec<(String, u64)>) {
        let mut pairs: Vec<(String, Option<Node>, u64)> = Vec::new();
        match &node.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (key, value) in entries {
                    let value = (!matches!(value.value, Value::Null)).then(|| value.clone());
                    pairs.push((key.name.clone(), value, key.line));
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let Some(entry) = item.scalar_text() else {
                        self.lose(item.line, format!("{path}[{i}]"), "expected NAME=value");
                        continue;
                    };
                    match entry.split_once('=') {
                        Some((key, value)) => pairs.push((
                            key.to_string(),
                            Some(Node {
                                value: Value::Str(value.to_string()),
                                line: item.line,
                            }),
                            item.line,
                        )),
                        None => pairs.push((entry.clone(), None, item.line)),
                    }
                }
            }
            _ => self.lose(
                node.line,
                path,
                format!("expected a mapping or a list, found {}", node.kind()),
            ),
        }
        let mut fields = Vec::new();
        let mut passed = Vec::new();
        for (key, value, line) in pairs {
            let at = format!("{path}.{key}");
            match value {
                Some(value) => {
                    if let Some(text) = self.text(&value, &at) {
                        fields.push(Field::new(key, Expr::Str(text)));
                    }
                }
                None if crate::model::text::is_variable_name(&key) => passed.push((key, line)),
                None => self.lose(
                    line,
                    at,
                    "passes a host variable whose name berth cannot declare",
                ),
            }
        }
        (fields, passed)
    }

    fn env_files(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let items: Vec<Node> = match &node.value {
            Value::Seq(items) => items.clone(),
            _ => vec![node.clone()],
        };
        let mut files = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (path_node, required) = match item.entries() {
                Some(_) => {
                    let Some(file) = item.get("path") else {
                        self.lose(item.line, at, "an env_file entry needs a path");
                        continue;
                    };
                    let required = item.get("required").map(|r| self.flag(r, &at));
                    (file.clone(), required.flatten())
                }
                None => (item.clone(), None),
            };
            let Some(file) = self.text(&path_node, &at) else {
                continue;
            };
            let mut fields = vec![Field::new("path", Expr::Str(file))];
            if let Some(required) = required {
                fields.push(Field::new("required", Expr::Bool(required)));
            }
            files.push(Expr::Record(fields));
        }
        files
    }

    /// The items of a list; anything else is reported and reads as no items.
    fn list<'n>(&mut self, node: &'n Node, path: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            _ => {
                let reason = format!("expected a list, found {}", node.kind());
                self.lose(node.line, path, reason);
                &[]
            }
        }
    }

    // -- ports ------------------------------------------------------------------------------

    fn ports(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let items = self.list(node, path);
        let mut ports = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            match item.entries() {
                Some(_) => ports.extend(self.long_port(item, &at)),
                None => ports.extend(self.short_port(item, &at)),
            }
        }
        ports
    }

    fn short_port(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let Some(text) = self.text(node, path) else {
            return Vec::new();
        };
        let (spec, protocol) = match text.rsplit_once('/') {
            Some((spec, protocol)) => (spec.to_string(), protocol.to_string()),
            None => (text.clone(), "tcp".to_string()),
        };
        // [host_ip:][published:]target — an IPv6 host address is written in brackets.
        let (host_ip, rest) = split_host_ip(&spec);
        if let Some(port) = port_past_range(rest) {
            self.refuse(
                node.line,
                path,
                format!("{text:?}: port {port} is out of range (1-65535)"),
            );
            return Vec::new();
        }
        let (published, target) = match rest.rsplit_once(':') {
            Some((published, target)) => (Some(published.to_string()), target.to_string()),
            None => (None, rest.to_string()),
        };
        let targets: Vec<Expr> = match port_range(&target) {
            Some(targets) => targets
                .into_iter()
                .map(|t| Expr::Int(i64::from(t)))
                .collect(),
            None if self.is_port_variable(&target) => vec![Expr::Str(target.clone())],
            None => {
                self.lose(
                    node.line,
                    path,
                    format!("{text:?}: the container port must be a number, a range, or a variable whose default is a port"),
                );
                return Vec::new();
            }
        };
        let published = published.filter(|p| !p.is_empty());
        let publishes: Vec<Option<Expr>> = match &published {
            // Published on a free host port the engine picks.
            None => vec![Some(Expr::Str("random".into())); targets.len()],
            Some(published) if published.starts_with("${") => {
                if targets.len() != 1 {
                    self.lose(
                        node.line,
                        path,
                        format!("{text:?}: a variable host port for a range of ports"),
                    );
                    return Vec::new();
                }
                vec![Some(Expr::Str(published.clone()))]
            }
            Some(published) => match port_range(published) {
                Some(hosts) if hosts.len() == targets.len() => hosts
                    .into_iter()
                    .map(|p| Some(Expr::Int(i64::from(p))))
                    .collect(),
                Some(hosts) if targets.len() == 1 && hosts.len() > 1 => {
                    vec![Some(Expr::Str(published.clone()))]
                }
                _ => {
                    self.lose(
                        node.line,
                        path,
                        format!("{text:?}: host and container port ranges differ in length"),
                    );
                    return Vec::new();
                }
            },
        };
        targets
            .into_iter()
            .zip(publishes)
            .map(|(target, published)| {
                port_expr(target, published, host_ip.clone(), &protocol, None, None)
            })
            .collect()
    }

    /// `${NAME}` (berth text) whose variable is declared with a port as its default: a
    /// container port berth keeps as that variable.
    fn is_port_variable(&self, text: &str) -> bool {
        let Some(name) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
            return false;
        };
        let default = self.variables.get(name).and_then(|d| d.default.as_deref());
        default.is_some_and(is_port)
    }

    fn long_port(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let mut target = None;
        let mut published = None;
        let mut host_ip = None;
        let mut protocol = "tcp".to_string();
        let mut name = None;
        let mut app_protocol = None;
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "target" => target = self.count(value, &at),
                "published" => published = self.text(value, &at),
                "host_ip" => host_ip = self.text(value, &at),
                "protocol" => protocol = self.text(value, &at).unwrap_or(protocol),
                "name" => name = self.text(value, &at),
                "app_protocol" => app_protocol = self.text(value, &at),
                "mode" if value.as_str() == Some("ingress") => {}
                "mode" => self.lose(
                    key.line,
                    at,
                    format!("port `{}` has no berth field", key.name),
                ),
                other => self.lose(key.line, at, format!("unknown port key `{other}`")),
            }
        }
        let past_range = [target, published.as_deref().and_then(|p| p.parse().ok())]
            .into_iter()
            .flatten()
            .find(|port| *port > u64::from(u16::MAX));
        if let Some(port) = past_range {
            self.refuse(
                node.line,
                path,
                format!("port {port} is out of range (1-65535)"),
            );
            return Vec::new();
        }
        let Some(target) = target
            .and_then(|t| u16::try_from(t).ok())
            .filter(|t| *t > 0)
        else {
            self.lose(node.line, path, "a port needs a target between 1 and 65535");
            return Vec::new();
        };
        let published = match published {
            // Published on a free host port the engine picks.
            None => Some(Expr::Str("random".into())),
            Some(p) if p.starts_with("${") => Some(Expr::Str(p)),
            Some(p) => match p.parse::<u16>() {
                Ok(port) => Some(Expr::Int(i64::from(port))),
                Err(_) => Some(Expr::Str(p)),
            },
        };
        vec![port_expr(
            Expr::Int(i64::from(target)),
            published,
            host_ip,
            &protocol,
            name,
            app_protocol,
        )]
    }

    fn expose(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let items = self.list(node, path);
        let mut ports = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            // `${PORT}` or `${PORT}/udp` with a port as default: kept as the variable.
            let raw = item.scalar_text().unwrap_or_default();
            let (raw_spec, raw_protocol) = raw.rsplit_once('/').unwrap_or((&raw, "tcp"));
            let spec_node = Node {
                value: Value::Str(raw_spec.to_string()),
                line: item.line,
            };
            if raw_spec.starts_with("${")
                && let Some(variable) = self.typed_variable(&spec_node, &at, is_port)
            {
                let protocol = raw_protocol.to_string();
                ports.push(port_expr(
                    Expr::Str(variable),
                    None,
                    None,
                    &protocol,
                    None,
                    None,
                ));
                continue;
            }
            let Some(text) = self.fixed(item, &at) else {
                continue;
            };
            let (spec, protocol) = text.rsplit_once('/').unwrap_or((&text, "tcp"));
            match port_range(spec) {
                Some(targets) => ports.extend(targets.into_iter().map(|target| {
                    port_expr(
                        Expr::Int(i64::from(target)),
                        None,
                        None,
                        protocol,
                        None,
                        None,
                    )
                })),
                None => self.lose(item.line, at, format!("{text:?} is not a port")),
            }
        }
        ports
    }

    // -- mounts -------------------------------------------------------------------------------

    fn mounts(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let items = self.list(node, path);
        let mut mounts = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let mount = match item.entries() {
                Some(_) => self.long_mount(item, &at),
                None => self.short_mount(item, &at),
            };
            mounts.extend(mount);
        }
        mounts
    }

    fn short_mount(&mut self, node: &Node, path: &str) -> Option<Expr> {
        let text = self.text(node, path)?;
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, options) = match parts.as_slice() {
            [target] => (None, (*target).to_string(), ""),
            [source, target] => (Some((*source).to_string()), (*target).to_string(), ""),
            [source, target, options] => {
                (Some((*source).to_string()), (*target).to_string(), *options)
            }
            _ => {
                self.lose(
                    node.line,
                    path,
                    format!("{text:?} is not SOURCE:TARGET[:OPTIONS]"),
                );
                return None;
            }
        };
        let mut read_only = false;
        let mut selinux = None;
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option {
                "ro" => read_only = true,
                "rw" => {}
                "z" | "Z" => selinux = Some(option.to_string()),
                "nocopy" => self.lose(node.line, path, "`nocopy` has no berth field"),
                other => self.lose(
                    node.line,
                    path,
                    format!("mount option `{other}` has no berth field"),
                ),
            }
        }
        let Some(source) = source else {
            // An anonymous volume: a volume mount without a source.
            let mut fields = vec![Field::new("target", Expr::Str(target))];
            if read_only {
                fields.push(Field::new("read_only", Expr::Bool(true)));
            }
            return Some(Expr::Record(fields));
        };
        let is_bind = source.starts_with(['.', '/', '~', '$']);
        if is_bind {
            let mut fields = vec![
                Field::new("type", Expr::Str("bind".into())),
                Field::new("source", Expr::Str(source)),
                Field::new("target", Expr::Str(target)),
            ];
            if read_only {
                fields.push(Field::new("read_only", Expr::Bool(true)));
            }
            // The short syntax creates a missing host folder.
            fields.push(Field::new("create_host_path", Expr::Bool(true)));
            if let Some(selinux) = selinux {
                fields.push(Field::new("selinux", Expr::Str(selinux)));
            }
            Some(Expr::Record(fields))
        } else {
            let volume = berth_name(&source);
            Some(if read_only || selinux.is_some() {
                let mut fields = vec![
                    Field::new("source", Expr::Str(volume)),
                    Field::new("target", Expr::Str(target)),
                ];
                if read_only {
                    fields.push(Field::new("read_only", Expr::Bool(true)));
                }
                if let Some(selinux) = selinux {
                    fields.push(Field::new("selinux", Expr::Str(selinux)));
                }
                Expr::Record(fields)
            } else {
                Expr::Raw(format!(
                    "berth.volume {} {}",
                    super::nickel::string(&volume),
                    super::nickel::string(&target)
                ))
            })
        }
    }

    fn long_mount(&mut self, node: &Node, path: &str) -> Option<Expr> {
        let mut fields = Vec::new();
        let mut kind = "volume".to_string();
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "type" => kind = self.fixed(value, &at).unwrap_or(kind),
                "source" => {
                    let source = self.text(value, &at)?;
                    let source = if kind == "volume" {
                        berth_name(&source)
                    } else {
                        source
                    };
                    fields.push(Field::new("source", Expr::Str(source)));
                }
                "target" => fields.push(Field::new("target", Expr::Str(self.text(value, &at)?))),
                "read_only" => {
                    if let Some(flag) = self.flag(value, &at) {
                        fields.push(Field::new("read_only", Expr::Bool(flag)));
                    }
                }
                "bind" => {
                    for (option, option_value) in value.entries().unwrap_or_default() {
                        let option_at = format!("{at}.{}", option.name);
                        match option.name.as_str() {
                            "create_host_path" => {
                                if let Some(flag) = self.flag(option_value, &option_at) {
                                    fields.push(Field::new("create_host_path", Expr::Bool(flag)));
                                }
                            }
                            "selinux" => {
                                if let Some(text) = self.fixed(option_value, &option_at) {
                                    fields.push(Field::new("selinux", Expr::Str(text)));
                                }
                            }
                            other => self.lose(
                                option.line,
                                option_at,
                                format!("bind option `{other}` has no berth field"),
                            ),
                        }
                    }
                }
                "consistency" => {}
                other => self.lose(
                    key.line,
                    at,
                    format!("mount option `{other}` has no berth field"),
                ),
            }
        }
        if !matches!(kind.as_str(), "volume" | "bind" | "tmpfs") {
            self.lose(
                node.line,
                path,
                format!("mount type {kind:?} has no berth equivalent"),
            );
            return None;
        }
        fields.insert(0, Field::new("type", Expr::Str(kind)));
        Some(Expr::Record(fields))
    }

    // -- networks and dependencies ------------------------------------------------------------

    fn service_networks(&mut self, node: &Node, path: &str, out: &mut Out) {
        let mut names = Vec::new();
        let mut aliases = Vec::new();
        let mut addresses = Vec::new();
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(name) = self.fixed(item, &format!("{path}[{i}]")) {
                        names.push(berth_name(&name));
                    }
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    let network = berth_name(&key.name);
                    names.push(network.clone());
                    let mut fixed = Vec::new();
                    for (option, option_value) in value.entries().unwrap_or_default() {
                        let at = format!("{path}.{}.{}", key.name, option.name);
                        match option.name.as_str() {
                            "aliases" => {
                                let list = self.string_list(option_value, &at);
                                aliases.push(Field::new(
                                    network.clone(),
                                    Expr::Array(list.into_iter().map(Expr::Str).collect()),
                                ));
                            }
                            "ipv4_address" | "ipv6_address" => {
                                let family = &option.name[..4];
                                if let Some(ip) = self.address(option_value, &at) {
                                    fixed.push(Field::new(family, Expr::Str(ip)));
                                }
                            }
                            other => self.lose(
                                option.line,
                                at,
                                format!("network option `{other}` has no berth field"),
                            ),
                        }
                    }
                    if !fixed.is_empty() {
                        addresses.push(Field::new(network.clone(), Expr::Record(fixed)));
                    }
                }
            }
            _ => self.lose(
                node.line,
                path,
                format!("expected a list or a mapping, found {}", node.kind()),
            ),
        }
        // Only `default`: the same as joining nothing in particular.
        if names != ["default"] || !aliases.is_empty() {
            out.push(
                "networks",
                Expr::Array(names.into_iter().map(Expr::Str).collect()),
            );
        }
        if !aliases.is_empty() {
            out.push("network_aliases", Expr::Record(aliases));
        }
        if !addresses.is_empty() {
            out.push("network_addresses", Expr::Record(addresses));
        }
    }

    /// An IP address, as berth's contract takes it; anything else is a loss.
    fn address(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.fixed(node, path)?;
        if text.parse::<std::net::IpAddr>().is_ok() {
            return Some(text);
        }
        self.lose(node.line, path, format!("{text:?} is no IP address"));
        None
    }

    /// An address range, as berth's contract takes it; anything else is a loss.
    fn range(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.fixed(node, path)?;
        match text.parse::<crate::model::net::Cidr>() {
            Ok(_) => Some(text),
            Err(reason) => {
                self.lose(node.line, path, reason);
                None
            }
        }
    }

    /// A network's `ipam`: its `config` ranges become `subnets`; the default driver is
    /// the engine's own and needs no field.
    fn ipam(&mut self, node: &Node, path: &str, fields: &mut Vec<Field>) {
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "driver" => {
                    let driver = self.fixed(value, &at);
                    if driver.as_deref().is_some_and(|d| d != "default") {
                        self.lose(
                            key.line,
                            at,
                            "an IPAM driver other than the engine's default has no berth field",
                        );
                    }
                }
                "config" => {
                    let subnets = self.subnets(value, &at);
                    if !subnets.is_empty() {
                        fields.push(Field::new("subnets", Expr::Array(subnets)));
                    }
                }
                other => self.lose(
                    key.line,
                    at,
                    format!("IPAM `{other}` ({}) has no berth field", summary(value)),
                ),
            }
        }
    }

    fn subnets(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let Value::Seq(items) = &node.value else {
            self.lose(
                node.line,
                path,
                format!("expected a list, found {}", node.kind()),
            );
            return Vec::new();
        };
        let mut subnets = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let mut fields = Vec::new();
            for (key, value) in item.entries().unwrap_or_default() {
                let at = format!("{path}[{index}].{}", key.name);
                let kept = match key.name.as_str() {
                    "subnet" | "ip_range" => self.range(value, &at),
                    "gateway" => self.address(value, &at),
                    other => {
                        self.lose(
                            key.line,
                            at,
                            format!("IPAM `{other}` ({}) has no berth field", summary(value)),
                        );
                        None
                    }
                };
                if let Some(text) = kept {
                    fields.push(Field::new(key.name.clone(), Expr::Str(text)));
                }
            }
            if fields.iter().any(|f| f.name == "subnet") {
                subnets.push(Expr::Record(fields));
            } else if !fields.is_empty() {
                self.lose(
                    item.line,
                    format!("{path}[{index}]"),
                    "a range without `subnet` has no berth form",
                );
            }
        }
        subnets
    }

    /// The top-level `configs`: `file` and `content` ones are kept for the services that
    /// mount them; the others (`environment`, `external`, a Swarm `name`) are losses.
    pub fn top_level_configs(&mut self, node: &Node) {
        let Some(entries) = node.entries() else {
            self.lose(
                node.line,
                "configs",
                format!("expected a mapping of configs, found {}", node.kind()),
            );
            return;
        };
        for (key, value) in entries {
            let at = format!("configs.{}", key.name);
            let mut source = None;
            for (option, option_value) in value.entries().unwrap_or_default() {
                let option_at = format!("{at}.{}", option.name);
                match option.name.as_str() {
                    "file" => {
                        source = self.text(option_value, &option_at).map(ConfigSource::File);
                    }
                    // Compose interpolates the text; berth writes a generated file as
                    // it is, so a variable in it is frozen (and said).
                    "content" => {
                        source = self
                            .fixed(option_value, &option_at)
                            .map(ConfigSource::Content);
                    }
                    other => self.lose(
                        option.line,
                        option_at,
                        format!(
                            "config `{other}: {}` has no berth field (berth mounts a file from the project, or text of the module)",
                            summary(option_value)
                        ),
                    ),
                }
            }
            if let Some(source) = source {
                self.configs.insert(key.name.clone(), source);
            }
        }
    }

    /// A service's `configs`: a `file` config becomes a read-only bind mount at its target
    /// (what Compose makes of it outside Swarm), a `content` one a generated file. Compose's
    /// default target is `/<config name>`.
    fn service_configs(&mut self, node: &Node, path: &str) -> (Vec<Expr>, Vec<Field>) {
        let mut binds = Vec::new();
        let mut files = Vec::new();
        for (i, item) in self.list(node, path).iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (mut name, mut target) = (None, None);
            match item.entries() {
                None => name = self.fixed(item, &at),
                Some(entries) => {
                    for (option, value) in entries {
                        let option_at = format!("{at}.{}", option.name);
                        match option.name.as_str() {
                            "source" => name = self.fixed(value, &option_at),
                            "target" => target = self.text(value, &option_at),
                            other => self.lose(
                                option.line,
                                option_at,
                                format!(
                                    "config `{other}: {}` has no berth field: the file is mounted as the project has it",
                                    summary(value)
                                ),
                            ),
                        }
                    }
                }
            }
            let Some(name) = name else {
                continue;
            };
            let target = target.unwrap_or_else(|| format!("/{name}"));
            match self.configs.get(&name).cloned() {
                Some(ConfigSource::File(file)) => binds.push(Expr::Record(vec![
                    Field::new("type", Expr::Str("bind".into())),
                    Field::new("source", Expr::Str(file)),
                    Field::new("target", Expr::Str(target)),
                    Field::new("read_only", Expr::Bool(true)),
                ])),
                Some(ConfigSource::Content(text)) => files.push(Field::new(
                    target,
                    Expr::Record(vec![Field::new("content", Expr::Str(text))]),
                )),
                None => self.lose(
                    item.line,
                    at,
                    format!(
                        "config `{name}` is not a `file` or `content` config of this file's top-level `configs`"
                    ),
                ),
            }
        }
        (binds, files)
    }

    fn depends_on(&mut self, node: &Node, path: &str) -> Vec<Field> {
        let mut fields = Vec::new();
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(name) = self.fixed(item, &format!("{path}[{i}]")) {
                        fields.push(Field::new(berth_name(&name), Expr::Str("started".into())));
                    }
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    let at = format!("{path}.{}", key.name);
                    let mut condition = "started";
                    let mut restart = false;
                    for (option, option_value) in value.entries().unwrap_or_default() {
                        let option_at = format!("{at}.{}", option.name);
                        match (option.name.as_str(), option_value.scalar_text().as_deref()) {
                            ("condition", Some("service_started")) => condition = "started",
                            ("condition", Some("service_healthy")) => condition = "healthy",
                            ("condition", Some("service_completed_successfully")) => {
                                condition = "completed"
                            }
                            ("restart", Some("true")) => restart = true,
                            ("required", Some("true")) | ("restart", Some("false")) => {}
                            (other, _) => self.lose(
                                option.line,
                                option_at,
                                format!(
                                    "depends_on `{other}: {}` has no berth field",
                                    summary(option_value)
                                ),
                            ),
                        }
                    }
                    let dependency = if restart {
                        Expr::Record(vec![
                            Field::new("condition", Expr::Str(condition.into())),
                            Field::new("restart", Expr::Bool(true)),
                        ])
                    } else {
                        Expr::Str(condition.into())
                    };
                    fields.push(Field::new(berth_name(&key.name), dependency));
                }
            }
            _ => self.lose(
                node.line,
                path,
                format!("expected a list or a mapping, found {}", node.kind()),
            ),
        }
        fields
    }

    // -- healthcheck, deploy, logging, limits -------------------------------------------------

    fn healthcheck(&mut self, node: &Node, path: &str) -> Option<Expr> {
        let entries = node.entries()?;
        if node.get("disable").and_then(|d| d.scalar_text()).as_deref() == Some("true") {
            self.lose(
                node.line,
                path,
                "disables the image's healthcheck; berth has no field for that",
            );
            return None;
        }
        let mut fields = Vec::new();
        for (key, value) in entries {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "test" => {
                    let test = self.health_test(value, &at)?;
                    fields.push(Field::new("test", test));
                }
                "interval" | "timeout" | "start_period" => {
                    if let Some(variable) = self.typed_variable(value, &at, is_berth_duration) {
                        fields.push(Field::new(key.name.clone(), Expr::Str(variable)));
                    } else if let Some(duration) = self.duration(value, &at) {
                        fields.push(Field::new(key.name.clone(), Expr::Str(duration)));
                    }
                }
                "retries" => {
                    let is_count = |text: &str| text.parse::<u32>().is_ok();
                    if let Some(variable) = self.typed_variable(value, &at, is_count) {
                        fields.push(Field::new("retries", Expr::Str(variable)));
                    } else if let Some(count) = self.count(value, &at) {
                        fields.push(Field::new("retries", Expr::Int(count_i64(count))));
                    }
                }
                "disable" => {}
                other => self.lose(
                    key.line,
                    at,
                    format!("healthcheck `{other}` has no berth field"),
                ),
            }
        }
        if !fields.iter().any(|f| f.name == "test") {
            if !fields.is_empty() {
                self.lose(
                    node.line,
                    path,
                    "timings without a test (the image's test) have no berth equivalent",
                );
            }
            return None;
        }
        for (name, value) in DOCKER_HEALTH_DEFAULTS {
            if !fields.iter().any(|f| f.name == name) {
                let expr = match value.parse::<i64>() {
                    Ok(number) => Expr::Int(number),
                    Err(_) => Expr::Str(value.to_string()),
                };
                fields.push(Field::new(name, expr));
            }
        }
        Some(Expr::Record(fields))
    }

    fn health_test(&mut self, node: &Node, path: &str) -> Option<Expr> {
        let Value::Seq(items) = &node.value else {
            return self.text(node, path).map(Expr::Str);
        };
        let first = items.first().and_then(Node::scalar_text);
        match first.as_deref() {
            Some("CMD") => {
                let mut args = Vec::new();
                for (i, item) in items.iter().enumerate().skip(1) {
                    args.push(Expr::Str(self.text(item, &format!("{path}[{i}]"))?));
                }
                Some(Expr::Array(args))
            }
            Some("CMD-SHELL") if items.len() == 2 => {
                self.text(&items[1], &format!("{path}[1]")).map(Expr::Str)
            }
            _ => {
                self.lose(node.line, path, "a test must start with CMD or CMD-SHELL");
                None
            }
        }
    }

    fn deploy(
        &mut self,
        node: &Node,
        path: &str,
        out: &mut Out,
        replicas: &mut Option<(u64, Expr)>,
    ) {
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "replicas" => {
                    if let Some(count) = self.count(value, &at) {
                        *replicas = Some((count, Expr::Int(count_i64(count))));
                    }
                }
                "mode" if value.scalar_text().as_deref() == Some("replicated") => {}
                "mode" if value.scalar_text().as_deref() == Some("global") => {
                    out.push("global", Expr::Bool(true));
                }
                "resources" => {
                    let mut sets = Vec::new();
                    for (set, limits) in value.entries().unwrap_or_default() {
                        let set_at = format!("{at}.{}", set.name);
                        if !matches!(set.name.as_str(), "limits" | "reservations") {
                            self.lose(set.line, set_at, "no berth field");
                            continue;
                        }
                        let mut fields = Vec::new();
                        for (resource, amount) in limits.entries().unwrap_or_default() {
                            let resource_at = format!("{set_at}.{}", resource.name);
                            match resource.name.as_str() {
                                "cpus" => {
                                    if let Some(cpus) = self.cpus(amount, &resource_at) {
                                        fields.push(Field::new("cpus", Expr::Float(cpus)));
                                    }
                                }
                                "memory" => {
                                    if let Some(size) = self.byte_size(amount, &resource_at) {
                                        fields.push(Field::new("memory", Expr::Str(size)));
                                    }
                                }
                                "devices" if set.name == "reservations" => {
                                    if let Some(gpus) = self.gpus(amount, &resource_at, false) {
                                        out.push("gpus", gpus);
                                    }
                                }
                                other => self.lose(
                                    resource.line,
                                    resource_at,
                                    format!("`{other}` ({}) has no berth field", summary(amount)),
                                ),
                            }
                        }
                        if !fields.is_empty() {
                            sets.push(Field::new(set.name.clone(), Expr::Record(fields)));
                        }
                    }
                    if !sets.is_empty() {
                        out.push("resources", Expr::Record(sets));
                    }
                }
                "placement" => self.placement(value, &at, out),
                other => {
                    self.lose(key.line, at, format!("deploy `{other}` has no berth field"));
                    out.comment(format!("not imported (deploy.{other}): {}", summary(value)));
                }
            }
        }
    }

    /// `deploy.placement`: its constraints become `placement`, those on attributes other
    /// than node labels, role, hostname and platform are losses, as are `preferences` and
    /// `max_replicas_per_node` (Swarm's spreading, which berth does not model).
    fn placement(&mut self, node: &Node, path: &str, out: &mut Out) {
        let mut kept = Vec::new();
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            if key.name != "constraints" {
                self.lose(
                    key.line,
                    at,
                    format!("placement `{}` has no berth field", key.name),
                );
                continue;
            }
            for (i, item) in self.list(value, &at).iter().enumerate() {
                let item_at = format!("{at}[{i}]");
                let Some(text) = self.fixed(item, &item_at) else {
                    continue;
                };
                match crate::model::Placement::checked(&text) {
                    Ok(placement) => kept.push(Expr::Str(placement.to_string())),
                    Err(reason) => self.lose(item.line, item_at, reason),
                }
            }
        }
        if !kept.is_empty() {
            out.push("placement", Expr::Array(kept));
        }
    }

    /// A device reservation of GPUs (`capabilities: [gpu]`, implied under the `gpus` key)
    /// as berth's `gpus`; any other device, or several, is a loss.
    fn gpus(&mut self, node: &Node, path: &str, implied: bool) -> Option<Expr> {
        let items: &[Node] = match &node.value {
            Value::Seq(items) => items,
            _ => &[],
        };
        let [device] = items else {
            self.lose(
                node.line,
                path,
                format!(
                    "berth reserves one GPU request per service, not {}",
                    summary(node)
                ),
            );
            return None;
        };
        let capabilities = device
            .get("capabilities")
            .map(|node| self.fixed_list(node, path))
            .unwrap_or_default();
        if capabilities != ["gpu"] && !(implied && capabilities.is_empty()) {
            self.lose(
                device.line,
                path,
                format!(
                    "only `capabilities: [gpu]` devices have a berth field (`gpus`), not {}",
                    summary(device)
                ),
            );
            return None;
        }
        let mut fields = Vec::new();
        for (key, value) in device.entries().unwrap_or_default() {
            let at = format!("{path}[0].{}", key.name);
            match key.name.as_str() {
                "capabilities" => {}
                "driver" => match self.fixed(value, &at) {
                    Some(driver) if driver == "nvidia" => {}
                    Some(driver) => fields.push(Field::new("driver", Expr::Str(driver))),
                    None => return None,
                },
                "count" => match self.fixed(value, &at)?.as_str() {
                    "all" => {}
                    text => match text.parse::<u32>() {
                        Ok(count) if count > 0 => {
                            fields.push(Field::new("count", Expr::Int(i64::from(count))));
                        }
                        _ => {
                            self.lose(value.line, at, format!("{text:?} is not a number of GPUs"));
                            return None;
                        }
                    },
                },
                "device_ids" => {
                    let ids = self.fixed_list(value, &at);
                    fields.push(Field::new(
                        "device_ids",
                        Expr::Array(ids.into_iter().map(Expr::Str).collect()),
                    ));
                }
                other => {
                    self.lose(key.line, at, format!("device `{other}` has no berth field"));
                    return None;
                }
            }
        }
        Some(Expr::Record(fields))
    }

    fn cpus(&mut self, node: &Node, path: &str) -> Option<f64> {
        match self.fixed(node, path).as_deref().map(str::parse::<f64>) {
            Some(Ok(cpus)) if cpus > 0.0 => Some(cpus),
            Some(_) => {
                self.lose(node.line, path, "not a positive number of CPUs");
                None
            }
            None => None,
        }
    }

    /// Compose's service-level `mem_limit`, `mem_reservation` and `cpus` set the same
    /// engine fields as `deploy.resources` (Memory, MemoryReservation, NanoCpus), so they
    /// become berth's `resources`.
    fn legacy_resource(&mut self, key: &str, node: &Node, path: &str) -> Option<Legacy> {
        let (set, resource, value) = match key {
            "mem_limit" => ("limits", "memory", Expr::Str(self.byte_size(node, path)?)),
            "mem_reservation" => (
                "reservations",
                "memory",
                Expr::Str(self.byte_size(node, path)?),
            ),
            _ => ("limits", "cpus", Expr::Float(self.cpus(node, path)?)),
        };
        Some(Legacy {
            set,
            resource,
            value,
            line: node.line,
            path: path.to_string(),
        })
    }

    /// Adds the legacy resource keys to `resources` (from `deploy`, when the service has
    /// it). Compose refuses a service whose two spellings differ, and so does the import.
    fn merge_legacy_resources(&mut self, out: &mut Out, legacy: Vec<Legacy>) {
        if legacy.is_empty() {
            return;
        }
        if !out.fields.iter().any(|field| field.name == "resources") {
            out.push("resources", Expr::Record(Vec::new()));
        }
        let Some(Field {
            value: Expr::Record(sets),
            ..
        }) = out
            .fields
            .iter_mut()
            .find(|field| field.name == "resources")
        else {
            return;
        };
        for item in legacy {
            if !sets.iter().any(|field| field.name == item.set) {
                sets.push(Field::new(item.set, Expr::Record(Vec::new())));
            }
            let Some(Field {
                value: Expr::Record(fields),
                ..
            }) = sets.iter_mut().find(|field| field.name == item.set)
            else {
                continue;
            };
            match fields.iter().find(|field| field.name == item.resource) {
                None => fields.push(Field::new(item.resource, item.value)),
                Some(existing) if existing.value == item.value => {}
                Some(_) => self.refuse(
                    item.line,
                    item.path,
                    format!(
                        "differs from deploy.resources.{}.{}; Compose refuses two distinct values",
                        item.set, item.resource
                    ),
                ),
            }
        }
    }

    fn logging(&mut self, node: &Node, path: &str) -> Option<Expr> {
        let mut fields = Vec::new();
        for (key, value) in node.entries()? {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "driver" => {
                    if let Some(driver) = self.fixed(value, &at) {
                        fields.push(Field::new("driver", Expr::Str(driver)));
                    }
                }
                "options" => {
                    let options = self.string_map(value, &at, '=');
                    let mut fixed = Vec::new();
                    for option in options {
                        match option.value {
                            Expr::Str(text) if text.contains("${") => {
                                self.lose(
                                    value.line,
                                    format!("{at}.{}", option.name),
                                    "berth does not interpolate logging options",
                                );
                            }
                            other => fixed.push(Field::new(option.name, other)),
                        }
                    }
                    fields.push(Field::new("options", Expr::Record(fixed)));
                }
                other => self.lose(
                    key.line,
                    at,
                    format!("logging `{other}` has no berth field"),
                ),
            }
        }
        Some(Expr::Record(fields))
    }

    fn ulimits(&mut self, node: &Node, path: &str) -> Vec<Field> {
        let mut fields = Vec::new();
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            let limit = match value.entries() {
                Some(_) => {
                    let soft = value.get("soft").and_then(|n| self.limit(n, &at));
                    let hard = value.get("hard").and_then(|n| self.limit(n, &at));
                    match (soft, hard) {
                        (Some(soft), Some(hard)) => Some(Expr::Record(vec![
                            Field::new("soft", Expr::Int(soft)),
                            Field::new("hard", Expr::Int(hard)),
                        ])),
                        _ => {
                            self.lose(value.line, at, "a ulimit needs soft and hard");
                            None
                        }
                    }
                }
                None => self.limit(value, &at).map(Expr::Int),
            };
            if let Some(limit) = limit {
                fields.push(Field::new(key.name.clone(), limit));
            }
        }
        fields
    }

    fn limit(&mut self, node: &Node, path: &str) -> Option<i64> {
        let text = self.fixed(node, path)?;
        match text.parse::<i64>() {
            Ok(limit) if limit >= -1 => Some(limit),
            _ => {
                self.lose(
                    node.line,
                    path,
                    format!("{text:?} is not a limit (a whole number, -1 for unlimited)"),
                );
                None
            }
        }
    }

    fn extra_hosts(&mut self, node: &Node, path: &str) -> Vec<Field> {
        match &node.value {
            Value::Seq(items) => {
                let mut fields = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    let Some(entry) = self.fixed(item, &at) else {
                        continue;
                    };
                    // host=address, or host:address (an IPv6 address has colons of its own).
                    let split = entry.split_once('=').or_else(|| entry.split_once(':'));
                    match split {
                        Some((host, address)) => {
                            fields.push(Field::new(
                                host,
                                Expr::Str(address.trim_matches(['[', ']']).to_string()),
                            ));
                        }
                        None => self.lose(item.line, at, format!("{entry:?} is not HOST:ADDRESS")),
                    }
                }
                fields
            }
            _ => self.string_map(node, path, '='),
        }
    }

    // -- top level ----------------------------------------------------------------------------

    pub fn volume(&mut self, name: &str, node: &Node) -> Expr {
        let path = format!("volumes.{name}");
        let mut fields = Vec::new();
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "name" | "driver" => {
                    if let Some(text) = self.fixed(value, &at) {
                        fields.push(Field::new(key.name.clone(), Expr::Str(text)));
                    }
                }
                "external" => self.external(value, &at, &mut fields),
                "labels" | "driver_opts" => {
                    let map = self.string_map(value, &at, '=');
                    fields.push(Field::new(key.name.clone(), Expr::Record(map)));
                }
                other if other.starts_with("x-") => {}
                other => self.lose(key.line, at, format!("volume `{other}` has no berth field")),
            }
        }
        Expr::Record(fields)
    }

    pub fn network(&mut self, name: &str, node: &Node) -> Expr {
        let path = format!("networks.{name}");
        let mut fields = Vec::new();
        for (key, value) in node.entries().unwrap_or_default() {
            let at = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "name" | "driver" => {
                    if let Some(text) = self.fixed(value, &at) {
                        fields.push(Field::new(key.name.clone(), Expr::Str(text)));
                    }
                }
                "internal" | "attachable" | "enable_ipv6" => {
                    if let Some(flag) = self.flag(value, &at) {
                        fields.push(Field::new(key.name.clone(), Expr::Bool(flag)));
                    }
                }
                "external" => self.external(value, &at, &mut fields),
                "labels" | "driver_opts" => {
                    let map = self.string_map(value, &at, '=');
                    fields.push(Field::new(key.name.clone(), Expr::Record(map)));
                }
                "ipam" => self.ipam(value, &at, &mut fields),
                other if other.starts_with("x-") => {}
                other => self.lose(
                    key.line,
                    at,
                    format!("network `{other}` ({}) has no berth field", summary(value)),
                ),
            }
        }
        Expr::Record(fields)
    }

    /// `external: true`, or the legacy `external: { name: x }`.
    fn external(&mut self, node: &Node, path: &str, fields: &mut Vec<Field>) {
        if let Some(name) = node.get("name") {
            if let Some(name) = self.fixed(name, path) {
                fields.push(Field::new("name", Expr::Str(name)));
            }
            fields.push(Field::new("external", Expr::Bool(true)));
        } else if let Some(flag) = self.flag(node, path) {
            fields.push(Field::new("external", Expr::Bool(flag)));
        }
    }
}

/// A service-level resource key (`mem_limit`…) on its way into `resources`.
struct Legacy {
    set: &'static str,
    resource: &'static str,
    value: Expr,
    line: u64,
    path: String,
}

/// Fields in the order the Compose file wrote them; `ports` and `expose` share one field.
#[derive(Default)]
struct Out {
    fields: Vec<Field>,
    pending_comments: Vec<String>,
}

impl Out {
    fn push(&mut self, name: &str, value: Expr) {
        let comments = std::mem::take(&mut self.pending_comments);
        self.fields
            .push(Field::new(name, value).commented(comments));
    }

    fn extend(&mut self, name: &str, items: Vec<Expr>) {
        if let Some(Field {
            value: Expr::Array(existing),
            ..
        }) = self.fields.iter_mut().find(|f| f.name == name)
        {
            existing.extend(items);
        } else {
            self.push(name, Expr::Array(items));
        }
    }

    fn comment(&mut self, line: String) {
        self.pending_comments.push(line);
    }

    fn finish(mut self) -> Vec<Field> {
        if !self.pending_comments.is_empty() {
            // Comments after the last field go above a field that says so.
            let comments = std::mem::take(&mut self.pending_comments);
            match self.fields.first_mut() {
                Some(first) => first.comments.splice(0..0, comments).for_each(drop),
                None => self.fields.push(
                    Field::new("description", Expr::Str("imported".into())).commented(comments),
                ),
            }
        }
        self.fields
    }
}

fn port_expr(
    target: Expr,
    published: Option<Expr>,
    host_ip: Option<String>,
    protocol: &str,
    name: Option<String>,
    app_protocol: Option<String>,
) -> Expr {
    let plain = host_ip.is_none() && protocol == "tcp" && name.is_none() && app_protocol.is_none();
    match (published, &target) {
        (Some(Expr::Int(host)), Expr::Int(port)) if plain => {
            Expr::Raw(format!("berth.publish {host} {port}"))
        }
        (None, Expr::Int(port)) if plain => Expr::Raw(format!("berth.internal {port}")),
        (published, _) => {
            let mut fields = vec![Field::new("target", target)];
            if let Some(published) = published {
                fields.push(Field::new("published", published));
            }
            if let Some(host_ip) = host_ip {
                fields.push(Field::new("host_ip", Expr::Str(host_ip)));
            }
            if protocol != "tcp" {
                fields.push(Field::new("protocol", Expr::Str(protocol.to_string())));
            }
            if let Some(name) = name {
                fields.push(Field::new("name", Expr::Str(name)));
            }
            if let Some(app_protocol) = app_protocol {
                fields.push(Field::new("app_protocol", Expr::Str(app_protocol)));
            }
            Expr::Record(fields)
        }
    }
}

/// A port number, 1 to 65535, as text.
fn is_port(text: &str) -> bool {
    text.trim().parse::<u16>().is_ok_and(|port| port > 0)
}

fn split_host_ip(spec: &str) -> (Option<String>, &str) {
    if let Some(rest) = spec.strip_prefix('[')
        && let Some((ip, rest)) = rest.split_once("]:")
    {
        return (Some(ip.to_string()), rest);
    }
    let colons = spec.matches(':').count();
    if colons == 2
        && let Some((ip, rest)) = spec.split_once(':')
    {
        return (Some(ip.to_string()).filter(|ip| !ip.is_empty()), rest);
    }
    (None, spec)
}

/// `8080` or `8000-8002` as the list of ports.
/// A port number past 65535 in `published:target` (ranges included); variables are skipped.
fn port_past_range(spec: &str) -> Option<u64> {
    spec.split([':', '-'])
        .filter(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
        .map(|part| part.parse::<u64>().unwrap_or(u64::MAX))
        .find(|port| *port > u64::from(u16::MAX))
}

fn port_range(text: &str) -> Option<Vec<u16>> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let first: u16 = first.trim().parse().ok()?;
    let last: u16 = last.trim().parse().ok()?;
    (first >= 1 && first <= last && last - first < 1024).then(|| (first..=last).collect())
}

/// A name berth accepts for services, volumes and networks: lower case, `.` as `-`, no
/// leading `-` or `_` (empty when nothing usable is left; the caller refuses that).
pub fn berth_name(name: &str) -> String {
    crate::project::normalized_name(name)
}

/// A Go duration (`1m30s`, `10s`, `500ms`), which both Compose and berth read; anything
/// else (a bare number) is refused rather than guessed at.
fn normalized_duration(text: &str) -> Option<String> {
    let text = text.trim();
    let valid = !text.is_empty() && {
        let mut rest = text;
        let mut ok = true;
        while !rest.is_empty() && ok {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let unit_len = rest[digits..]
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len() - digits);
            let unit = &rest[digits..digits + unit_len];
            ok = digits > 0 && matches!(unit, "ns" | "us" | "ms" | "s" | "m" | "h");
            rest = &rest[digits + unit_len..];
        }
        ok
    };
    valid.then(|| text.to_string())
}

/// Whether `text` is a duration as berth's `Duration` contract writes it (`30s`, `1m30s`,
/// `1.5h`): the default of a variable in a duration field must be one.
fn is_berth_duration(text: &str) -> bool {
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, "1"));
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !(digits(whole) && digits(fraction)) {
            return false;
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        if !matches!(&rest[..unit_len], "ns" | "us" | "ms" | "s" | "m" | "h") {
            return false;
        }
        rest = &rest[unit_len..];
    }
    !text.is_empty()
}

/// `512M`, `1g`, `1024kb`, `2GB`, `1000` (bytes) as berth's ByteSize (`512M`, `1g`, `1024k`).
fn normalized_bytes(text: &str) -> Option<String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    if number.is_empty() || number.parse::<f64>().is_err() {
        return None;
    }
    let unit = unit.trim().to_ascii_lowercase();
    let unit = match unit.as_str() {
        "" | "b" => "b",
        "k" | "kb" | "kib" => "k",
        "m" | "mb" | "mib" => "m",
        "g" | "gb" | "gib" => "g",
        _ => return None,
    };
    Some(format!("{number}{unit}"))
}

fn count_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A node in one line, for comments: `{ driver: nvidia, count: 1 }`.
pub fn summary(node: &Node) -> String {
    let text = match &node.value {
        Value::Null => "null".to_string(),
        Value::Str(text) => format!("{text:?}"),
        Value::Seq(items) => format!(
            "[{}]",
            items.iter().map(summary).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(key, value): &(Key, Node)| format!("{}: {}", key.name, summary(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => node.scalar_text().unwrap_or_default(),
    };
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

fn unsupported_reason(key: &str) -> String {
    match key {
        "cpu_shares" => "`cpu_shares` is a relative weight under contention (1024 = normal); berth's `resources` hold absolute CPUs (Kubernetes turns a reservation of N CPUs into N×1024 shares, Compose and Docker do not), so it is not mapped: set `resources.reservations.cpus` to shares/1024 if that is what was meant".to_string(),
        other => format!("`{other}` has no berth field"),
    }
}

#[cfg(test)]
mod tests {
    use super::{berth_name, normalized_bytes, normalized_duration, port_range, split_host_ip};

    #[test]
    fn sizes_durations_and_names() {
        assert_eq!(normalized_bytes("512MB").as_deref(), Some("512m"));
        assert_eq!(normalized_bytes("1g").as_deref(), Some("1g"));
        assert_eq!(normalized_bytes("1000").as_deref(), Some("1000b"));
        assert_eq!(normalized_bytes("lots"), None);
        assert_eq!(normalized_duration("1m30s").as_deref(), Some("1m30s"));
        assert_eq!(normalized_duration("10"), None);
        assert_eq!(berth_name("wazuh.Master"), "wazuh-master");
    }

    #[test]
    fn port_specs() {
        assert_eq!(port_range("9000-9002"), Some(vec![9000, 9001, 9002]));
        assert_eq!(port_range("0"), None);
        assert_eq!(
            split_host_ip("127.0.0.1:80:80"),
            (Some("127.0.0.1".into()), "80:80")
        );
        assert_eq!(split_host_ip("[::1]:80:80"), (Some("::1".into()), "80:80"));
        assert_eq!(split_host_ip("80:80"), (None, "80:80"));
    }
}

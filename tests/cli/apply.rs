//! `plan`, `apply`, `rollback`, `down` against the machine's real Docker engine.
//!
//! The engine has no registry: the test stack builds its image through berth's own
//! `build` support, `FROM scratch` plus the host's busybox-static. Each test has its own
//! stack name and its own image tag (a sibling's build never changes the image a test
//! runs), and cleans up by label. Every `docker` call the tests make must succeed, so a
//! check of what is left cannot pass because docker failed. Without an engine these tests
//! append their name to `$BERTH_SKIP_LOG` (scripts/test counts them in its summary line)
//! and pass, unless BERTH_REQUIRE_DOCKER=1 (CI sets it), where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Berth, REPO};

/// A throw-away project holding one test stack, its image context and its state folder.
pub(crate) struct Rig {
    stack: String,
    dir: tempfile::TempDir,
    /// Everything berth printed, stdout and stderr, for the secret scan.
    printed: std::cell::RefCell<String>,
    /// The OpenSSH server berth reaches the engine through, when the test goes remote.
    remote: Option<crate::remote::Sshd>,
}

/// How the test stack looks this time.
#[derive(Clone)]
struct Shape {
    /// api's healthcheck probes a port nothing listens on.
    api_broken: bool,
    with_worker: bool,
    /// An extra environment value for db, to force its recreation.
    db_note: Option<&'static str>,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            api_broken: false,
            with_worker: true,
            db_note: None,
        }
    }
}

impl Rig {
    /// `None` (after a loud message) when no engine answers and none is required.
    pub(crate) fn new(stack: &str) -> Option<Rig> {
        if !engine_answers(stack) {
            return None;
        }
        let busybox = busybox_binary();
        let dir = tempfile::Builder::new()
            .prefix("berth-apply-")
            .tempdir()
            .expect("temp dir");
        for folder in ["schemas", "profiles"] {
            crate::support::copy_dir(&Path::new(REPO).join(folder), &dir.path().join(folder));
        }
        let image = dir.path().join("image");
        std::fs::create_dir_all(&image).expect("mkdir image");
        std::fs::copy(busybox, image.join("busybox")).expect("copy busybox");
        std::fs::write(
            image.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .expect("write Dockerfile");
        let rig = Rig {
            stack: stack.to_string(),
            dir,
            printed: Default::default(),
            remote: None,
        };
        rig.clean_engine();
        rig.write(&Shape::default());
        Some(rig)
    }

    /// The same rig, whose berth drives the engine through `sshd` (`--host ssh://…`).
    /// The OpenSSH server the rig goes through, if it does.
    pub(crate) fn sshd(&self) -> Option<&crate::remote::Sshd> {
        self.remote.as_ref()
    }

    pub(crate) fn through(mut self, sshd: crate::remote::Sshd) -> Rig {
        self.remote = Some(sshd);
        self
    }

    /// A rig whose berth reaches this machine's engine through a real OpenSSH server
    /// (`--host ssh://…`), or `None` when the test cannot run here.
    pub(crate) fn through_ssh(stack: &str, test: &str) -> Option<Rig> {
        let rig = Rig::new(stack)?;
        let sshd = crate::remote::Sshd::start(test)?;
        Some(rig.through(sshd))
    }

    pub(crate) fn stack(&self) -> &str {
        &self.stack
    }

    /// The name of a service's first container.
    pub(crate) fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.stack)
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    /// This test's own image tag: parallel tests never rebuild each other's image.
    fn image(&self) -> String {
        format!("berth-test/busybox:{}", self.stack)
    }

    /// Writes the stack module: db (healthcheck, volume) ← api (needs db healthy,
    /// healthcheck) ← worker (needs api started).
    fn write(&self, shape: &Shape) {
        let api_port = if shape.api_broken { 9999 } else { 8081 };
        let db_env = shape
            .db_note
            .map(|note| format!("environment.NOTE = \"{note}\","))
            .unwrap_or_default();
        let worker = if shape.with_worker {
            r#"worker = image & { command = ["sleep", "100000"], depends_on.api = "started" },"#
        } else {
            ""
        };
        let module = format!(
            r#"let image = {{
  image = "{image}",
  build.context = "image",
  stop_grace_period = "1s",
}} in
let probe = fun port => {{
  test = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:%{{std.string.from_number port}}/"],
  {PROBE_TIMING}
}} in
fun profile => {{
  name = "{stack}",
  variables.MESSAGE = {{ description = "What api says.", default = "hello" }},
  volumes.data = {{}},
  services = {{
    db = image & {{
      command = ["sh", "-c", "echo boot >> /data/boots; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"],
      volumes = [{{ source = "data", target = "/data" }}],
      healthcheck = probe 8080,
      {db_env}
    }},
    api = image & {{
      command = ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8081 -h /www"],
      environment.MESSAGE = "${{MESSAGE}}",
      depends_on.db = "healthy",
      healthcheck = probe {api_port},
    }},
    {worker}
  }},
}}
"#,
            stack = self.stack,
            image = self.image(),
        )
        .replace("{PROBE_TIMING}", PROBE_TIMING);
        let path = self
            .root()
            .join(format!("modules/stacks/{}.ncl", self.stack));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, module).expect("write module");
    }

    /// Writes a stack module of `services` (Nickel record fields, where `IMAGE` is this
    /// test's image record) and `rest` (other top-level fields).
    pub(crate) fn write_module(&self, services: &str, rest: &str) {
        let module = format!(
            "let image = {{ image = \"{}\", build.context = \"image\", stop_grace_period = \"1s\" }} in\n{{\n  name = \"{}\",\n  {rest}\n  services = {{\n{}\n  }},\n}}\n",
            self.image(),
            self.stack,
            services.replace("IMAGE", "image"),
        );
        std::fs::write(
            self.root()
                .join(format!("modules/stacks/{}.ncl", self.stack)),
            module,
        )
        .expect("write module");
    }

    pub(crate) fn set_message(&self, message: &str) {
        std::fs::write(self.root().join(".env"), format!("MESSAGE={message}\n"))
            .expect("write .env");
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.root().join("state")
    }

    /// The stack's state on the engine's host (this machine, when the test goes remote).
    pub(crate) fn host_state(&self) -> PathBuf {
        Path::new("/var/lib/berth").join(&self.stack)
    }

    /// Where this stack's state (generations, lock) is: the `--state-dir` folder for the
    /// local engine, the engine's host through ssh.
    pub(crate) fn stack_state(&self) -> PathBuf {
        match self.remote {
            Some(_) => self.host_state(),
            None => self.state().join(&self.stack),
        }
    }

    /// Runs a berth subcommand for this stack (no profile) in the project.
    pub(crate) fn berth(&self, command: &str, extra: &[&str]) -> crate::support::Output {
        self.berth_env(command, extra, &[])
    }

    /// The same, with these variables in berth's process environment (and no others but
    /// PATH, HOME and DOCKER_*).
    pub(crate) fn berth_env(
        &self,
        command: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> crate::support::Output {
        let output = self
            .command(command, extra, env)
            .output()
            .expect("run berth");
        let output = crate::support::Output::of(self.root(), &output);
        self.printed
            .borrow_mut()
            .push_str(&format!("{}{}", output.stdout, output.stderr));
        output
    }

    /// The berth command [`Rig::berth_env`] runs, for a test that starts it and signals it.
    pub(crate) fn command(&self, command: &str, extra: &[&str], env: &[(&str, &str)]) -> Command {
        let mut args = vec![
            command.to_string(),
            "--stack".into(),
            self.stack.clone(),
            "--state-dir".into(),
            self.state().display().to_string(),
        ];
        if matches!(command, "plan" | "apply") && !extra.contains(&"--profile") {
            args.push("--no-profile".into());
        }
        if command == "apply" {
            args.push("--yes".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut env = env.to_vec();
        if let Some(sshd) = &self.remote {
            args.extend(["--host".to_string(), sshd.url()]);
            env.push(("BERTH_SSH_COMMAND", sshd.ssh_command()));
        }
        // berth's per-user digest key goes in the test's folder, not the tester's home.
        let config = self.root().join("config").display().to_string();
        env.push(("XDG_CONFIG_HOME", &config));
        crate::support::command_in_env(self.root(), &args, &env)
    }

    /// Container name → (id, status) of the stack's containers.
    pub(crate) fn containers(&self) -> std::collections::BTreeMap<String, (String, String)> {
        docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=berth.stack={}", self.stack),
            "--format",
            "{{.Names}} {{.ID}} {{.State}}",
        ])
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((
                words.next()?.to_string(),
                (words.next()?.to_string(), words.next()?.to_string()),
            ))
        })
        .collect()
    }

    pub(crate) fn id(&self, service: &str) -> String {
        self.containers()
            .get(&self.container(service))
            .map(|(id, _)| id.clone())
            .unwrap_or_default()
    }

    pub(crate) fn health(&self, service: &str) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            &self.container(service),
        ])
        .trim()
        .to_string()
    }

    pub(crate) fn exec(&self, service: &str, command: &[&str]) -> String {
        let name = self.container(service);
        let mut args = vec!["exec", name.as_str()];
        args.extend(command);
        docker(&args)
    }

    fn networks(&self) -> String {
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=berth.stack={}", self.stack),
        ])
    }

    pub(crate) fn volumes(&self) -> String {
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=berth.stack={}", self.stack),
        ])
    }

    /// Removes every container, network and volume that carries this stack's label.
    /// Best effort (it also runs while a failed test unwinds); what it lists, it must list.
    fn clean_engine(&self) {
        let label = format!("label=berth.stack={}", self.stack);
        let ids = docker(&["ps", "-aq", "--filter", &label]);
        for id in ids.split_whitespace() {
            docker_status(&["rm", "-f", "-v", id]);
        }
        for id in docker(&["network", "ls", "-q", "--filter", &label]).split_whitespace() {
            docker_status(&["network", "rm", id]);
        }
        for id in docker(&["volume", "ls", "-q", "--filter", &label]).split_whitespace() {
            docker_status(&["volume", "rm", "-f", id]);
        }
        // What a test through a remote engine left on its host (this machine).
        docker_status(&["rm", "-f", &format!("berth-lock.{}", self.stack)]);
        let _ = std::fs::remove_dir_all(self.host_state());
    }

    /// The labels of a container, parsed.
    fn labels(&self, service: &str) -> std::collections::BTreeMap<String, String> {
        let json = docker(&[
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            &self.container(service),
        ]);
        serde_json::from_str(&json).expect("labels as JSON")
    }

    pub(crate) fn label(&self, service: &str, label: &str) -> String {
        self.labels(service)
            .remove(label)
            .unwrap_or_else(|| panic!("{service} has no label {label}"))
    }

    /// The image ID a container runs.
    fn image_of(&self, service: &str) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{.Image}}",
            &self.container(service),
        ])
        .trim()
        .to_string()
    }

    /// The engine's own record of this stack's container events since `since`, oldest
    /// first: (time in ns, container name, action).
    fn events(&self, since: std::time::SystemTime) -> Vec<(u128, String, String)> {
        let seconds = |t: std::time::SystemTime| {
            let d = t.duration_since(std::time::UNIX_EPOCH).expect("clock");
            format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
        };
        let lines = docker(&[
            "events",
            "--since",
            &seconds(since),
            "--until",
            &seconds(std::time::SystemTime::now()),
            "--filter",
            "type=container",
            "--filter",
            &format!("label=berth.stack={}", self.stack),
            "--format",
            "{{json .}}",
        ]);
        lines
            .lines()
            .map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).expect("event JSON");
                (
                    event["timeNano"].as_u64().expect("timeNano").into(),
                    event["Actor"]["Attributes"]["name"]
                        .as_str()
                        .expect("name")
                        .to_string(),
                    event["Action"].as_str().expect("Action").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.clean_engine();
        docker_status(&["image", "rm", "-f", &self.image()]);
    }
}

/// Healthchecks that tolerate a loaded machine (a probe may take seconds to get CPU) and
/// still turn a broken service unhealthy within seconds: wget on a closed port fails at once.
const PROBE_TIMING: &str = r#"interval = "1s", timeout = "10s", retries = 4,"#;

/// When the engine says `container` did `action` (the first time) among `events`.
#[track_caller]
fn at(events: &[(u128, String, String)], container: &str, action: &str) -> u128 {
    events
        .iter()
        .find(|(_, name, what)| name == container && what == action)
        .map(|(time, _, _)| *time)
        .unwrap_or_else(|| panic!("the engine recorded no `{action}` of {container}: {events:?}"))
}

/// The generation numbers `berth generations` lists.
pub(crate) fn generation_numbers(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Whether an engine answers (see [`crate::support::engine_answers`]).
fn engine_answers(name: &str) -> bool {
    crate::support::engine_answers("apply", name)
}

fn busybox_binary() -> &'static str {
    let path = "/bin/busybox";
    assert!(
        Path::new(path).exists(),
        "the apply tests need Debian's busybox-static at {path} (apt-get install busybox-static)"
    );
    path
}

/// Runs docker and returns its stdout; a failing docker fails the test.
#[track_caller]
pub(crate) fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        output.status.success(),
        "docker {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs docker for its effect only, whatever it returns (cleanup of what may be gone).
pub(crate) fn docker_status(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn first_apply_starts_in_dependency_order_and_a_second_changes_nothing(rig: Rig) {
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains(&format!("container {}", rig.container("db")));
    assert!(rig.containers().is_empty(), "plan created containers");
    assert!(
        rig.networks().trim().is_empty() && rig.volumes().trim().is_empty(),
        "plan created networks or volumes"
    );

    let since = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let first = rig.berth("apply", &[]);
    first.code(0).stdout_contains("applied: generation 1");
    // The order is the engine's record, not berth's own progress lines.
    let events = rig.events(since);
    assert!(
        at(&events, &rig.container("db"), "health_status: healthy")
            < at(&events, &rig.container("api"), "start"),
        "api started before db was healthy: {events:?}"
    );
    assert!(
        at(&events, &rig.container("api"), "start")
            < at(&events, &rig.container("worker"), "start"),
        "worker started before api: {events:?}"
    );
    assert_eq!(rig.health("db"), "healthy");
    assert_eq!(rig.health("api"), "healthy");
    assert_eq!(rig.health("worker"), "running");
    let labels = rig.labels("api");
    for (label, value) in [
        ("berth.stack", rig.stack()),
        ("berth.profile", "none"),
        ("berth.service", "api"),
    ] {
        assert_eq!(
            labels.get(label).map(String::as_str),
            Some(value),
            "{labels:?}"
        );
    }
    let hash = &labels["berth.config-hash"];
    assert!(
        hash.len() >= 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{labels:?}"
    );

    let before = rig.containers();
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("5 unchanged");
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("up to date");
    assert_eq!(
        rig.containers(),
        before,
        "a second apply touched containers"
    );
    let generations = rig.berth("generations", &["--profile", "none"]);
    generations.code(0);
    assert_eq!(generation_numbers(&generations.stdout), [1]);
}

fn changing_one_environment_value_recreates_only_that_service(rig: Rig) {
    rig.berth("apply", &[]).code(0);
    let (db, api, worker) = (rig.id("db"), rig.id("api"), rig.id("worker"));

    rig.set_message("goodbye");
    let plan = rig.berth("plan", &[]);
    plan.code(1)
        .stdout_contains("recreate (environment.MESSAGE)");
    assert!(
        !plan.stdout.contains("goodbye"),
        "plan printed a value: {}",
        plan.stdout
    );
    assert_eq!(rig.id("api"), api, "plan changed a container");

    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("generation 2");
    assert_eq!(rig.id("db"), db);
    assert_eq!(rig.id("worker"), worker);
    assert_ne!(rig.id("api"), api);
    assert!(
        rig.exec("api", &["sh", "-c", "echo $MESSAGE"])
            .contains("goodbye")
    );
    rig.berth("plan", &[]).code(0);
}

fn a_failing_healthcheck_rolls_back_to_the_previous_generation(rig: Rig) {
    rig.berth("apply", &[]).code(0);
    let (db, worker) = (rig.id("db"), rig.id("worker"));
    let good_hash = rig.label("api", "berth.config-hash");

    rig.write(&Shape {
        api_broken: true,
        ..Shape::default()
    });
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains("recreate (healthcheck.test)");
    let failed = rig.berth("apply", &[]);
    failed
        .code(1)
        .stderr_contains("service `api`")
        .stderr_contains("unhealthy")
        .stderr_contains("rolled back to generation 1");
    assert_eq!(rig.id("db"), db, "rollback touched db");
    assert_eq!(rig.id("worker"), worker, "rollback touched worker");
    assert_eq!(rig.health("api"), "healthy");
    assert_eq!(
        rig.label("api", "berth.config-hash"),
        good_hash,
        "api does not run generation 1's spec again"
    );
    let generations = rig.berth("generations", &["--profile", "none"]);
    generations.code(0);
    assert_eq!(
        generation_numbers(&generations.stdout),
        [1],
        "a failed apply was recorded"
    );
}

fn a_service_removed_from_the_module_is_removed_from_the_host(rig: Rig) {
    rig.berth("apply", &[]).code(0);
    rig.write(&Shape {
        with_worker: false,
        ..Shape::default()
    });
    rig.berth("plan", &["--no-prune"]).code(0);
    rig.berth("apply", &["--no-prune"]).code(0);
    assert!(
        rig.containers().contains_key(&rig.container("worker")),
        "--no-prune removed worker"
    );
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains(&rig.container("worker"));
    rig.berth("apply", &[]).code(0);
    let left: Vec<String> = rig.containers().into_keys().collect();
    assert_eq!(left, [rig.container("api"), rig.container("db")]);

    // A volume no service uses any more stays, unless --prune-volumes.
    rig.write_module(
        r#"    api = IMAGE & { command = ["sleep", "100000"] },"#,
        "",
    );
    rig.berth("apply", &[]).code(0);
    assert_eq!(
        rig.volumes().lines().count(),
        1,
        "the volume went without --prune-volumes"
    );
    rig.berth("apply", &["--prune-volumes"]).code(0);
    assert!(
        rig.volumes().trim().is_empty(),
        "--prune-volumes kept the volume"
    );
    let left: Vec<String> = rig.containers().into_keys().collect();
    assert_eq!(left, [rig.container("api")]);
}

fn volume_data_survives_recreation_and_rollback_and_down(rig: Rig) {
    rig.berth("apply", &[]).code(0);
    let boots = || rig.exec("db", &["cat", "/data/boots"]).lines().count();
    assert_eq!(boots(), 1);

    rig.write(&Shape {
        db_note: Some("second"),
        ..Shape::default()
    });
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("generation 2");
    assert_eq!(boots(), 2, "the volume did not survive recreation");

    let env = || {
        docker(&[
            "inspect",
            "--format",
            "{{json .Config.Env}}",
            &rig.container("db"),
        ])
    };
    assert!(env().contains("\"NOTE=second\""), "{}", env());

    let back = rig.berth("rollback", &["--profile", "none"]);
    back.code(0).stdout_contains("now generation 3");
    assert_eq!(boots(), 3, "the volume did not survive rollback");
    assert!(
        !env().contains("NOTE="),
        "rollback kept generation 2's env: {}",
        env()
    );
    rig.berth("generations", &["--profile", "none"])
        .code(0)
        .stdout_contains("rollback to 1");

    rig.berth("down", &["--profile", "none"])
        .code(0)
        .stdout_contains("volumes kept");
    assert!(rig.containers().is_empty());
    assert!(rig.networks().trim().is_empty());
    assert!(!rig.volumes().trim().is_empty(), "down removed the volume");
    rig.berth("apply", &[]).code(0);
    assert_eq!(boots(), 4, "the data did not survive down and up");
}

fn a_missing_image_stops_apply_before_anything_changes(rig: Rig) {
    let module = rig
        .root()
        .join(format!("modules/stacks/{}.ncl", rig.stack()));
    let text = std::fs::read_to_string(&module).expect("read module");
    std::fs::write(
        &module,
        text.replace("build.context = \"image\",", "")
            .replace(&rig.image(), "berth-test/absent:1"),
    )
    .expect("write module");
    rig.berth("apply", &[])
        .code(2)
        .stderr_contains("pre-flight failed, nothing was changed")
        .stderr_contains("image berth-test/absent:1 is not on the engine and could not be pulled");
    assert!(rig.containers().is_empty());
    assert!(rig.networks().trim().is_empty());
}

/// The local lock file (through ssh the lock is a container on the host:
/// `remote::the_lock_on_the_host_names_its_holder_and_break_lock_takes_it`).
#[test]
fn a_second_apply_is_refused_while_another_holds_the_lock() {
    let Some(rig) = Rig::new("bt-lock") else {
        return;
    };
    let lock = rig.state().join("bt-lock/lock");
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(&lock).expect("create lock");
    file.lock().expect("take the lock");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 125;
    std::fs::write(&lock, format!("pid 4242 on far-away-host since {since}\n")).expect("holder");
    rig.berth("apply", &[])
        .code(2)
        .stderr_contains("stack `bt-lock` is being applied by another berth")
        // Held for 125 s when written; the apply before this may have taken seconds.
        .stderr_contains("(pid 4242 on far-away-host, for 2m ")
        .stderr_contains("--break-lock");
    assert!(rig.containers().is_empty());
    // The lock, not something else, was the reason: broken on purpose, the same apply
    // goes through while the other still holds its (now orphaned) lock.
    rig.berth("apply", &["--break-lock"])
        .code(0)
        .stdout_contains("applied: generation 1");
    let holder = std::fs::read_to_string(&lock).expect("lock");
    assert!(
        holder.starts_with("pid ") && !holder.contains("4242"),
        "{holder}"
    );
    drop(file);
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("up to date");
}

#[test]
fn a_variable_without_a_value_is_named_before_the_engine_is_asked() {
    let (output, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/needs.ncl",
            r#"fun profile => {
  variables.API_TOKEN = { description = "Token.", secret = true },
  services.api = { image = "busybox", environment.TOKEN = "${API_TOKEN}" },
}
"#,
        )
        .args([
            "plan",
            "--stack",
            "needs",
            "--no-profile",
            "--state-dir",
            "state",
        ])
        .run();
    output
        .code(2)
        .stderr_contains("no value for API_TOKEN; nothing was changed")
        .stderr_contains(".env.template");
}

fn env_files_feed_the_environment_and_aliases_resolve_on_the_network(rig: Rig) {
    let module = r#"let image = { image = "IMAGE", build.context = "image", stop_grace_period = "1s" } in
{
  name = "bt-envfile",
  services = {
    api = image & {
      command = ["sleep", "100000"],
      env_file = [{ path = "api.env" }, { path = "absent.env", required = false }],
      environment.B = "from-module",
      network_aliases.default = ["backend.local"],
    },
    client = image & { command = ["sleep", "100000"], depends_on.api = "started" },
  },
}
"#;
    std::fs::write(
        rig.root()
            .join(format!("modules/stacks/{}.ncl", rig.stack())),
        module
            .replace("IMAGE", &rig.image())
            .replace("bt-envfile", rig.stack()),
    )
    .expect("module");
    rig.berth("apply", &[])
        .code(2)
        .stderr_contains("api: env file")
        .stderr_contains("api.env");
    assert!(rig.containers().is_empty(), "pre-flight created containers");

    std::fs::write(rig.root().join("api.env"), "A=from file\nB=from-file\n").expect("env file");
    rig.berth("apply", &[]).code(0);
    let env = rig.exec("api", &["env"]);
    assert!(env.contains("A=from file"), "{env}");
    assert!(
        env.contains("B=from-module"),
        "environment must win over env_file: {env}"
    );
    // An env file's values are secrets: none in the state folder or in what berth printed,
    // and a second apply finds nothing changed (the digests agree).
    assert_no_secret_at_rest(&rig, &["from file", "from-file"]);
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("up to date");
    // The alias must resolve to api's own address on the network (busybox prints the
    // DNS server's `Address:` line whatever the answer).
    let api_ip = docker(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &rig.container("api"),
    ]);
    let api_ip = api_ip.trim();
    assert!(
        api_ip.starts_with(|c: char| c.is_ascii_digit()),
        "{api_ip:?}"
    );
    let lookup = rig.exec("client", &["nslookup", "-type=a", "backend.local"]);
    assert!(
        lookup
            .lines()
            .any(|line| line.split_whitespace().eq(["Address:", api_ip])),
        "backend.local does not resolve to api ({api_ip}): {lookup}"
    );
    rig.berth("plan", &[]).code(0);
}

fn variables_come_from_the_process_then_the_env_file_then_dev_values_then_defaults(rig: Rig) {
    rig.write_module(
        r#"    api = IMAGE & {
      command = ["sleep", "100000"],
      environment = { A = "${A}", B = "${B}", C = "${C}", D = "${D}", E = "${E}" },
    },"#,
        r#"variables = {
    A = { description = "In all three.", default = "default-a" },
    B = { description = "In the file and a default.", default = "default-b" },
    C = { description = "A default only.", default = "default-c" },
    D = { description = "A secret in the file.", secret = true, dev_value = "dev-d" },
    E = { description = "A secret with its dev value.", secret = true, dev_value = "dev-e" },
  },"#,
    );
    std::fs::write(
        rig.root().join("vars.env"),
        "A=file-a\nB=file-b\nD=file-d\n",
    )
    .expect("env file");
    rig.berth_env(
        "apply",
        &["--profile", "dev", "--env-file", "vars.env"],
        &[("A", "process-a")],
    )
    .code(0);
    let env = rig.exec("api", &["env"]);
    for expected in [
        "A=process-a",
        "B=file-b",
        "C=default-c",
        "D=file-d",
        "E=dev-e",
    ] {
        assert!(
            env.lines().any(|line| line == expected),
            "no {expected}: {env}"
        );
    }
    // The recorded values are the ones that are no secret.
    let values = rig.stack_state().join("dev/generations/1/values.json");
    let text = std::fs::read_to_string(&values).expect("values.json");
    assert!(
        text.contains("process-a") && text.contains("file-b"),
        "{text}"
    );
    assert!(
        !text.contains("file-d") && !text.contains("dev-e"),
        "{text}"
    );
    // A dev value is written in the module and in the dev artifacts on purpose; a value
    // from the env file must be nowhere.
    assert_no_secret_at_rest(&rig, &["file-d"]);
}

/// No secret value in any file of the state folder, the config folder (the digest key),
/// or anything berth printed.
#[track_caller]
pub(crate) fn assert_no_secret_at_rest(rig: &Rig, values: &[&str]) {
    let mut files = 0;
    for folder in [rig.state(), rig.root().join("config"), rig.host_state()] {
        if !folder.exists() {
            continue;
        }
        for (path, bytes) in crate::support::read_tree(&folder) {
            files += 1;
            let text = String::from_utf8_lossy(&bytes);
            for value in values {
                assert!(
                    !text.contains(value),
                    "{} holds the secret value {value:?}",
                    folder.join(path).display()
                );
            }
        }
    }
    assert!(files > 0, "the scan read no file");
    let printed = rig.printed.borrow();
    assert!(!printed.is_empty(), "the scan read no output");
    for value in values {
        assert!(
            !printed.contains(value),
            "berth printed {value:?}:\n{printed}"
        );
    }
}

/// A secret read from a file reaches the container byte for byte at /run/secrets/<name>
/// (and under the name a Compose file gave it), is read again at each apply (a changed
/// file recreates the service, as a changed value does) and at a rollback, and is never
/// kept: not in the state folder, not in what berth prints, not in the labels. A missing
/// file stops apply before anything changes.
fn file_secrets_are_read_at_apply_and_never_kept(rig: Rig) {
    rig.write_module(
        r#"    api = IMAGE & {
      command = ["sleep", "100000"],
      secrets = ["TLS_KEY", { variable = "TLS_KEY", target = "TLS_KEY" }],
    },"#,
        r#"variables.TLS_KEY = { description = "A key.", secret = true, file = "./secrets/tls.key" },"#,
    );
    let key_file = rig.root().join("secrets/tls.key");
    rig.berth("apply", &[]).code(2).stderr_contains(&format!(
        "secret TLS_KEY: its file {}: No such file",
        key_file.display()
    ));
    assert!(
        rig.containers().is_empty(),
        "apply went on without the file"
    );

    let (first, second) = ("k3y-5d0c7e-first", "k3y-91ab24-rotated");
    let key = |line: &str| {
        format!(
            "-----BEGIN PRIVATE KEY-----\n{line}\n$HOME %n 'q' \"dq\"\n-----END PRIVATE KEY-----\n"
        )
    };
    std::fs::create_dir_all(key_file.parent().expect("folder")).expect("mkdir");
    std::fs::write(&key_file, key(first)).expect("key");
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("generation 1");
    assert_eq!(
        rig.exec("api", &["cat", "/run/secrets/tls_key"]),
        key(first)
    );
    assert_eq!(
        rig.exec("api", &["cat", "/run/secrets/TLS_KEY"]),
        key(first)
    );
    rig.berth("plan", &[]).code(0);

    // A new key in the file: the service is recreated with it.
    std::fs::write(&key_file, key(second)).expect("key");
    let api = rig.id("api");
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains("recreate (secrets.file:./secrets/tls.key)");
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("generation 2");
    assert_ne!(rig.id("api"), api);
    assert_eq!(
        rig.exec("api", &["cat", "/run/secrets/tls_key"]),
        key(second)
    );
    // A rollback reads the file again: the generation runs the current key, and says so.
    rig.berth("rollback", &["--profile", "none", "--to", "1"])
        .code(0)
        .stdout_contains("now generation 3")
        .stdout_contains("secret file:./secrets/tls.key has changed since that generation");
    assert_eq!(
        rig.exec("api", &["cat", "/run/secrets/tls_key"]),
        key(second)
    );

    assert_no_secret_at_rest(&rig, &[first, second]);
    let labels = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &rig.container("api"),
    ]);
    assert!(
        !labels.contains(first) && !labels.contains(second),
        "{labels}"
    );
}

/// Runs `berth secrets set NAME` with the value on stdin.
fn set_secret(rig: &Rig, key: &Path, name: &str, value: &str) -> crate::support::Output {
    use std::io::Write;
    let mut child = crate::support::berth_command()
        .args(["secrets", "set", name, "--profile", "none", "--identity"])
        .arg(key)
        .current_dir(rig.root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn berth");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{value}\n").as_bytes())
        .expect("write the value");
    let output = child.wait_with_output().expect("wait");
    let output = crate::support::Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        root: rig.root().to_path_buf(),
    };
    rig.printed
        .borrow_mut()
        .push_str(&format!("{}{}", output.stdout, output.stderr));
    output
}

fn secrets_reach_the_containers_and_never_rest_in_plain_text(rig: Rig) {
    rig.write_module(
        r#"    api = IMAGE & {
      command = ["sh", "-c", "echo ${SHORT} > /arg; exec sleep 100000"],
      environment = { TOKEN = "${TOKEN}", PLAIN = "${PLAIN}" },
      secrets = ["DB_PASSWORD"],
    },"#,
        r#"variables = {
    TOKEN = { description = "From the env file.", secret = true },
    SHORT = { description = "From the process.", secret = true },
    DB_PASSWORD = { description = "From the encrypted file.", secret = true },
    PLAIN = { description = "No secret.", default = "plain-value" },
  },"#,
    );
    let identity = age::x25519::Identity::generate();
    let key = rig.root().join("age.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &key,
            format!("# test key\n{}\n", identity.to_string().expose_secret()),
        )
        .expect("key");
    }
    let (token, short, password) = ("tok-3f9a1c-envfile", "Qz7!", "pw-71be0d-vault");
    std::fs::write(rig.root().join(".env"), format!("TOKEN={token}\n")).expect(".env");
    set_secret(&rig, &key, "DB_PASSWORD", password)
        .code(0)
        .stdout_contains("secrets/none.env.age");
    let vault = std::fs::read(rig.root().join("secrets/none.env.age")).expect("vault");
    assert!(
        !String::from_utf8_lossy(&vault).contains(password),
        "the secrets file is not encrypted"
    );
    let key_arg = key.display().to_string();
    // Without the identity, the encrypted file is named, and nothing happens.
    rig.berth_env("apply", &[], &[("SHORT", short)])
        .code(2)
        .stderr_contains("none.env.age: encrypted, and no age identity");
    assert!(rig.containers().is_empty());

    rig.berth_env("plan", &["--identity", &key_arg], &[("SHORT", short)])
        .code(1);
    rig.berth_env("apply", &["--identity", &key_arg], &[("SHORT", short)])
        .code(0)
        .stdout_contains("generation 1");
    let env = rig.exec("api", &["env"]);
    assert!(env.lines().any(|l| l == format!("TOKEN={token}")), "{env}");
    assert_eq!(rig.exec("api", &["cat", "/arg"]).trim(), short);
    assert_eq!(
        rig.exec("api", &["cat", "/run/secrets/db_password"]),
        password
    );
    let generation =
        std::fs::read_to_string(rig.stack_state().join("none/generations/1/generation.json"))
            .expect("generation.json");
    assert!(
        generation.contains("\"DB_PASSWORD\": \"hmac-sha256:")
            && generation.contains("\"SHORT\": \"hmac-sha256:"),
        "{generation}"
    );
    let listed = crate::support::berth_command()
        .args(["secrets", "list", "--profile", "none"])
        .env("BERTH_AGE_IDENTITY", &key)
        .current_dir(rig.root())
        .output()
        .expect("berth secrets list");
    let listed_out = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(listed_out, "DB_PASSWORD\n");
    rig.printed.borrow_mut().push_str(&listed_out);

    // A new value in the encrypted file: the service is recreated, and a rollback to
    // generation 1 runs the current value, and says so.
    let new_password = "pw-2c94aa-rotated";
    set_secret(&rig, &key, "DB_PASSWORD", new_password).code(0);
    let api = rig.id("api");
    let plan = rig.berth_env("plan", &["--identity", &key_arg], &[("SHORT", short)]);
    plan.code(1)
        .stdout_contains("recreate (secrets.DB_PASSWORD)");
    rig.berth_env("apply", &["--identity", &key_arg], &[("SHORT", short)])
        .code(0)
        .stdout_contains("generation 2");
    assert_ne!(rig.id("api"), api);
    assert_eq!(
        rig.exec("api", &["cat", "/run/secrets/db_password"]),
        new_password
    );
    rig.berth_env(
        "rollback",
        &["--profile", "none", "--to", "1", "--identity", &key_arg],
        &[("SHORT", short)],
    )
    .code(0)
    .stdout_contains("now generation 3")
    .stdout_contains("secret DB_PASSWORD has changed since that generation");
    assert_eq!(
        rig.exec("api", &["cat", "/run/secrets/db_password"]),
        new_password
    );
    rig.berth_env("plan", &["--identity", &key_arg], &[("SHORT", short)])
        .code(0);

    assert_no_secret_at_rest(&rig, &[token, short, password, new_password]);
    // The engine's labels hold no value either.
    let labels = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &rig.container("api"),
    ]);
    for value in [token, short, password, new_password] {
        assert!(!labels.contains(value), "{labels}");
    }
}

fn rollback_runs_the_pinned_image_after_the_tag_moved_and_to_picks_the_generation(rig: Rig) {
    rig.berth("apply", &[]).code(0);
    let first_image = rig.image_of("db");
    // The tag moves: the same name now builds another image.
    let dockerfile = rig.root().join("image/Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).expect("Dockerfile");
    text.push_str("RUN [\"/bin/busybox\", \"touch\", \"/moved\"]\n");
    std::fs::write(&dockerfile, text).expect("Dockerfile");
    rig.write(&Shape {
        db_note: Some("second"),
        ..Shape::default()
    });
    rig.berth("apply", &["--build"])
        .code(0)
        .stdout_contains("generation 2");
    let moved_image = rig.image_of("db");
    assert_ne!(moved_image, first_image, "--build did not move the tag");
    rig.write(&Shape {
        db_note: Some("third"),
        ..Shape::default()
    });
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("generation 3");

    rig.berth("rollback", &["--profile", "none", "--to", "1"])
        .code(0)
        .stdout_contains("now generation 4");
    assert_eq!(
        rig.image_of("db"),
        first_image,
        "rollback ran the tag, not the pinned image"
    );
    assert_eq!(rig.image_of("api"), first_image);
    let tag = docker(&["image", "inspect", "--format", "{{.Id}}", &rig.image()]);
    assert_eq!(
        tag.trim(),
        moved_image,
        "the tag itself was not to be touched"
    );
    let env = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &rig.container("db"),
    ]);
    assert!(
        !env.contains("NOTE="),
        "--to 1 ran another generation: {env}"
    );
    rig.berth("generations", &["--profile", "none"])
        .code(0)
        .stdout_contains("rollback to 1");
    drop(rig);
    docker_status(&["image", "rm", "-f", &first_image]);
}

fn a_failing_first_apply_removes_what_it_created(rig: Rig) {
    // A container that exits while apply waits for it to turn healthy (its probe fails,
    // in a start period that does not count failures, so only the exit can end the wait).
    rig.write_module(
        r#"    db = IMAGE & { command = ["sleep", "100000"] },
    api = IMAGE & {
      command = ["sh", "-c", "sleep 1; exit 3"],
      depends_on.db = "started",
      healthcheck = { test = ["false"], interval = "1s", timeout = "5s", retries = 3, start_period = "10m" },
    },"#,
        "",
    );
    rig.berth("apply", &[])
        .code(1)
        .stderr_contains("service `api`")
        .stderr_contains("exited with code 3")
        .stderr_contains("no earlier generation: removed the containers this apply created");
    assert!(rig.containers().is_empty(), "{:?}", rig.containers());
    // A healthcheck that never settles within --timeout (failures in the start period
    // do not count, so the container stays `starting`).
    rig.write_module(
        r#"    api = IMAGE & {
      command = ["sleep", "100000"],
      healthcheck = { test = ["false"], interval = "1s", timeout = "5s", retries = 3, start_period = "10m" },
    },"#,
        "",
    );
    let started = std::time::Instant::now();
    rig.berth("apply", &["--timeout", "3s"])
        .code(1)
        .stderr_contains("service `api`")
        .stderr_contains("not healthy after 3s");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(rig.containers().is_empty(), "{:?}", rig.containers());
    let generations = rig.berth("generations", &["--profile", "none"]);
    assert_eq!(generation_numbers(&generations.stdout), Vec::<u32>::new());
}

fn preflight_lists_every_problem_at_once_and_external_resources_must_exist(rig: Rig) {
    let outside = format!("{}-outside", rig.stack());
    let kept = format!("{}-kept", rig.stack());
    let externals = format!(
        r#"networks.outside = {{ name = "{outside}", external = true }},
  volumes.kept = {{ name = "{kept}", external = true }},"#
    );
    rig.write_module(
        r#"    a = { image = "berth-test/absent-a:1", networks = ["outside"], volumes = [{ source = "kept", target = "/kept" }] },
    b = { image = "berth-test/absent-b:1" },"#,
        &externals,
    );
    let failed = rig.berth("apply", &[]);
    failed
        .code(2)
        .stderr_contains("pre-flight failed, nothing was changed")
        .stderr_contains("a: image berth-test/absent-a:1 is not on the engine")
        .stderr_contains("b: image berth-test/absent-b:1 is not on the engine")
        .stderr_contains(&format!("external network {outside} does not exist"))
        .stderr_contains(&format!("external volume {kept} does not exist"));
    assert!(rig.containers().is_empty());
    assert!(rig.networks().trim().is_empty());

    // Once they exist (made outside berth), apply uses them and leaves them alone.
    docker(&["network", "create", &outside]);
    docker(&["volume", "create", &kept]);
    rig.write_module(
        r#"    a = IMAGE & { command = ["sleep", "100000"], networks = ["outside"], volumes = [{ source = "kept", target = "/kept" }] },"#,
        &externals,
    );
    let applied = rig.berth("apply", &[]);
    rig.berth("down", &["--profile", "none"]);
    let network = docker_status(&["network", "inspect", &outside]);
    let volume = docker_status(&["volume", "inspect", &kept]);
    docker_status(&["network", "rm", &outside]);
    docker_status(&["volume", "rm", &kept]);
    applied.code(0);
    assert!(
        network && volume,
        "down removed an external network or volume"
    );
}

fn an_interrupted_apply_rolls_back_to_the_last_generation_and_keeps_the_data(rig: Rig) {
    // api's second version never turns healthy: its probe fails inside a start period,
    // which does not count failures, so only the signal ends the wait.
    let module = |note: &str, probe: &str| {
        format!(
            r#"    db = IMAGE & {{
      command = ["sh", "-c", "echo boot >> /data/boots; exec sleep 100000"],
      volumes = [{{ source = "data", target = "/data" }}],
      environment.NOTE = "{note}",
    }},
    api = IMAGE & {{
      command = ["sleep", "100000"],
      depends_on.db = "started",
      healthcheck = {{ test = ["{probe}"], interval = "1s", timeout = "5s", retries = 3, start_period = "10m" }},
    }},"#
        )
    };
    rig.write_module(&module("first", "true"), "volumes.data = {},");
    rig.berth("apply", &[])
        .code(0)
        .stdout_contains("generation 1");
    let good_hash = rig.label("api", "berth.config-hash");
    let boots = || rig.exec("db", &["cat", "/data/boots"]).lines().count();
    assert_eq!(boots(), 1);

    for (round, signal) in ["-INT", "-TERM"].into_iter().enumerate() {
        rig.write_module(&module("second", "false"), "volumes.data = {},");
        let api = rig.id("api");
        let child = rig
            .command("apply", &["--timeout", "10m"], &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn berth");
        // Signal it once the new api exists and waits to turn healthy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let now = rig.id("api");
            if !now.is_empty() && now != api && rig.health("api") == "starting" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "api was never recreated"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .expect("kill")
                .success()
        );
        let output = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{signal}: {stderr}");
        assert!(
            stderr.contains("apply interrupted") && stderr.contains("rolled back to generation 1"),
            "{signal}: {stderr}"
        );
        assert_eq!(rig.health("api"), "healthy", "{signal}");
        assert_eq!(rig.label("api", "berth.config-hash"), good_hash, "{signal}");
        let env = docker(&[
            "inspect",
            "--format",
            "{{json .Config.Env}}",
            &rig.container("db"),
        ]);
        assert!(env.contains("\"NOTE=first\""), "{signal}: {env}");
        // db was recreated by the apply and again by the rollback: every boot is kept.
        assert_eq!(
            boots(),
            1 + 2 * (round + 1),
            "{signal}: the volume lost data"
        );
        let generations = rig.berth("generations", &["--profile", "none"]);
        assert_eq!(generation_numbers(&generations.stdout), [1], "{signal}");
    }
    // The lock was released, and the host is exactly generation 1.
    rig.write_module(&module("first", "true"), "volumes.data = {},");
    rig.berth("plan", &[]).code(0);
}

fn dns_tty_stdin_pid_and_security_options_reach_the_engine(rig: Rig) {
    rig.write_module(
        r#"    app = IMAGE & {
      command = ["sleep", "100000"],
      dns = ["10.0.0.2"],
      dns_search = ["example.internal"],
      dns_opt = ["ndots:2"],
      tty = true,
      stdin_open = true,
      pid = "host",
      security_opt = ["no-new-privileges:true"],
    },"#,
        "",
    );
    rig.berth("apply", &[]).code(0);
    let seen = docker(&[
        "inspect",
        "--format",
        "{{json .HostConfig.Dns}} {{json .HostConfig.DnsSearch}} {{json .HostConfig.DnsOptions}} {{.Config.Tty}} {{.Config.OpenStdin}} {{.HostConfig.PidMode}}",
        &rig.container("app"),
    ]);
    assert_eq!(
        seen.trim(),
        r#"["10.0.0.2"] ["example.internal"] ["ndots:2"] true true host"#
    );
    // The engine adds `label=disable` of its own beside a host PID namespace.
    let security = docker(&[
        "inspect",
        "--format",
        "{{json .HostConfig.SecurityOpt}}",
        &rig.container("app"),
    ]);
    assert!(
        security.contains(r#""no-new-privileges:true""#),
        "{security}"
    );
    // The container reads them: its resolver searches the domain with the option, and
    // sees the host's processes (PID 1 is the host's init, not `sleep`).
    let resolv = rig.exec("app", &["cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("search example.internal"), "{resolv}");
    assert!(resolv.contains("ndots:2"), "{resolv}");
    let first = rig.exec("app", &["cat", "/proc/1/comm"]);
    assert_ne!(first.trim(), "sleep", "pid: host not in effect");
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("0 to create, 0 to recreate, 0 to start, 0 to remove, 2 unchanged");
}

/// A GPU reservation reaches the engine as a device request: on a host with the NVIDIA
/// runtime the container runs with it; elsewhere the engine itself refuses to start it
/// for want of the driver, and apply says so and removes what it created.
fn a_gpu_reservation_reaches_the_engine_as_a_device_request(rig: Rig) {
    rig.write_module(
        r#"    app = IMAGE & { command = ["sleep", "100000"], gpus.count = 1 },"#,
        "",
    );
    let applied = rig.berth("apply", &[]);
    if applied.code == 0 {
        let requests = docker(&[
            "inspect",
            "--format",
            "{{json .HostConfig.DeviceRequests}}",
            &rig.container("app"),
        ]);
        assert!(
            requests.contains(r#""Driver":"nvidia","Count":1"#)
                && requests.contains(r#"[["gpu"]]"#),
            "{requests}"
        );
    } else {
        applied.stderr_contains(
            r#"could not select device driver "nvidia" with capabilities: [[gpu]]"#,
        );
        assert!(rig.containers().is_empty(), "{:?}", rig.containers());
    }
}

fn a_service_with_a_backup_is_backed_up_before_it_is_recreated(rig: Rig) {
    let module = |note: &str, backup: &str| {
        format!(
            r#"    db = IMAGE & {{
      command = ["sh", "-c", "echo boot >> /data/rows; exec sleep 100000"],
      volumes = [{{ source = "data", target = "/data" }}],
      environment.NOTE = "{note}",
      backup = {{ {backup} }},
    }},"#
        )
    };
    let online = r#"command = "cat /data/rows", restore = "cat > /data/rows", extension = "txt""#;
    rig.write_module(&module("first", online), "volumes.data = {},");
    let root = rig.root().join("backups");
    let root_arg = root.display().to_string();
    rig.berth("apply", &["--backup-root", &root_arg])
        .code(0)
        .stdout_contains("generation 1");
    assert!(!root.exists(), "a first apply backed up what it created");
    let dir = root.join(rig.stack());
    let backups = || -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| entries.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    };

    // Recreating db backs it up first, from the running container.
    rig.write_module(&module("second", online), "volumes.data = {},");
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains("db: apply backs it up first");
    let applied = rig.berth("apply", &["--backup-root", &root_arg]);
    applied
        .code(0)
        .stdout_contains("generation 2")
        .stdout_contains("backup of db (generation 1): ")
        .stdout_contains("restore: gunzip -c ")
        .stdout_contains(&format!(
            " | docker exec -i {} sh -c 'cat > /data/rows'",
            rig.container("db")
        ));
    let files = backups();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("db-generation-1-") && name.ends_with(".txt.gz"),
        "{name}"
    );
    assert_eq!(gunzip(&files[0]), "boot\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files[0])
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "backup mode {mode:o}");
    let generations = rig.berth("generations", &["--profile", "none"]);
    generations
        .code(0)
        .stdout_contains(&format!("backup of db: {}", files[0].display()));

    // A backup that fails stops apply before anything changed.
    let failing = r#"command = "echo partial; echo no disk >&2; exit 3", extension = "txt""#;
    rig.write_module(&module("third", failing), "volumes.data = {},");
    let db = rig.id("db");
    rig.berth("apply", &["--backup-root", &root_arg])
        .code(2)
        .stderr_contains("the backup of `db` before apply changes it failed")
        .stderr_contains("exited with code 3")
        .stderr_contains("no disk")
        .stderr_contains("--no-backup");
    assert_eq!(rig.id("db"), db, "a failed backup let apply go on");
    assert_eq!(rig.health("db"), "running");
    assert_eq!(
        backups().len(),
        1,
        "a failed backup left a file: {:?}",
        backups()
    );
    // --no-backup goes through without one.
    rig.berth("apply", &["--backup-root", &root_arg, "--no-backup"])
        .code(0)
        .stdout_contains("generation 3");
    assert_eq!(backups().len(), 1);

    // An offline dump runs beside the stopped service, on its volumes; with
    // --keep-backups 1 the older backup goes once the new one is written.
    let offline = r#"command = "cat /data/rows", extension = "txt", offline = true"#;
    rig.write_module(&module("fourth", offline), "volumes.data = {},");
    rig.berth(
        "apply",
        &["--backup-root", &root_arg, "--keep-backups", "1"],
    )
    .code(0)
    .stdout_contains("backup of db (generation 3): ")
    .stderr_contains("removed the old backup ");
    let files = backups();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].to_string_lossy().contains("db-generation-3-"),
        "{files:?}"
    );
    assert_eq!(gunzip(&files[0]), "boot\n".repeat(3));
    // The pruned backup is no longer offered for restore.
    let generations = rig.berth("generations", &["--profile", "none"]);
    assert!(
        !generations.stdout.contains("generation-1-"),
        "{}",
        generations.stdout
    );
    assert_eq!(rig.exec("db", &["cat", "/data/rows"]), "boot\n".repeat(4));
}

/// A generated file follows its template: editing the template recreates exactly the
/// service that mounts the file (apply stores it by content hash), and `plan` names the
/// file before anything changes.
fn editing_a_template_recreates_exactly_the_service_that_mounts_its_file(rig: Rig) {
    let template = rig.root().join("templates/motd.j2");
    std::fs::create_dir_all(template.parent().expect("parent")).expect("mkdir templates");
    std::fs::write(&template, "hello from {{ stack.name }}\n").expect("write template");
    rig.write_module(
        r#"    web = IMAGE & { command = ["sleep", "100000"], files."/etc/motd" = { template = "templates/motd.j2" } },
    other = IMAGE & { command = ["sleep", "100000"] },"#,
        "",
    );
    rig.berth("apply", &[]).code(0);
    assert_eq!(
        rig.exec("web", &["cat", "/etc/motd"]),
        format!("hello from {}\n", rig.stack())
    );
    let (web, other) = (rig.id("web"), rig.id("other"));

    std::fs::write(&template, "goodbye from {{ stack.name }}\n").expect("edit template");
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains("recreate (file /etc/motd)");
    assert_eq!(rig.id("web"), web, "plan changed a container");
    rig.berth("apply", &[]).code(0);
    assert_ne!(rig.id("web"), web, "the file's service was not recreated");
    assert_eq!(
        rig.id("other"),
        other,
        "a service without the file was recreated"
    );
    assert_eq!(
        rig.exec("web", &["cat", "/etc/motd"]),
        format!("goodbye from {}\n", rig.stack())
    );
    rig.berth("plan", &[]).code(0);
}

/// `depends_on.<name>.restart`: replacing a dependency recreates the service that restarts
/// with it (after the dependency, as plan says), and leaves one that merely depends on it.
fn a_service_restarting_with_its_dependency_is_recreated_after_it(rig: Rig) {
    let module = |message: &str| {
        format!(
            r#"    api = IMAGE & {{ command = ["sleep", "100000"], environment.MESSAGE = "{message}" }},
    proxy = IMAGE & {{ command = ["sleep", "100000"], depends_on.api = {{ condition = "started", restart = true }} }},
    worker = IMAGE & {{ command = ["sleep", "100000"], depends_on.api = "started" }},"#
        )
    };
    rig.write_module(&module("one"), "");
    rig.berth("apply", &[]).code(0);
    let (proxy, worker) = (rig.id("proxy"), rig.id("worker"));
    rig.berth("plan", &[]).code(0);

    rig.write_module(&module("two"), "");
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains("recreate (restarts with api)")
        .stdout_contains("0 to create, 2 to recreate, 0 to start, 0 to remove, 2 unchanged");
    assert_eq!(rig.id("proxy"), proxy, "plan changed a container");
    rig.berth("apply", &[]).code(0);
    assert_ne!(rig.id("proxy"), proxy, "the proxy kept its container");
    assert_eq!(rig.id("worker"), worker, "a plain dependent was recreated");
    let started = |name: &str| {
        docker(&[
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            &rig.container(name),
        ])
        .trim()
        .to_string()
    };
    // RFC 3339 with the fraction's trailing zeros cut: padded, the texts sort by time.
    let sortable = |time: String| -> String {
        let time = time.trim_end_matches('Z');
        let (whole, fraction) = time.split_once('.').unwrap_or((time, ""));
        format!("{whole}.{fraction:0<9}")
    };
    assert!(
        sortable(started("proxy")) > sortable(started("api")),
        "the proxy started before the api it follows"
    );
    rig.berth("plan", &[]).code(0);
}

/// Bind sources that do not exist are listed together before anything changes, and berth
/// creates none of them (Compose would, as empty root-owned folders).
fn preflight_lists_every_missing_bind_source_and_creates_none(rig: Rig) {
    rig.write_module(
        r#"    a = IMAGE & { command = ["sleep", "100000"], volumes = [{ type = "bind", source = "./certs", target = "/certs" }] },
    b = IMAGE & { command = ["sleep", "100000"], volumes = [{ type = "bind", source = "./conf/app.yml", target = "/etc/app.yml", read_only = true }] },"#,
        "",
    );
    rig.berth("apply", &[])
        .code(2)
        .stderr_contains("pre-flight failed, nothing was changed")
        .stderr_contains("certs (for /certs) does not exist")
        .stderr_contains("conf/app.yml (for /etc/app.yml) does not exist");
    assert!(rig.containers().is_empty());
    assert!(rig.networks().trim().is_empty());
    let generated = format!("out/{}/none/certs", rig.stack());
    let created: Vec<PathBuf> = ["certs", "conf", generated.as_str()]
        .iter()
        .map(|path| rig.root().join(path))
        .filter(|path| path.exists())
        .collect();
    assert!(created.is_empty(), "berth created {created:?}");
}

/// A bind's SELinux relabelling reaches the engine as Compose sends it, a `Binds` entry
/// `source:target:ro,z` (the mount API has no relabel option; an engine on a host without
/// SELinux accepts and ignores it), and the container reads the folder; a bind without it
/// stays a mount, and changing it recreates the container.
fn a_relabelled_bind_reaches_the_engine_with_its_selinux_option(rig: Rig) {
    let conf = rig.root().join("conf");
    std::fs::create_dir_all(&conf).expect("mkdir conf");
    std::fs::write(conf.join("app.yml"), "answer: 42\n").expect("write conf");
    let write = |label: &str| {
        rig.write_module(
            &format!(
                r#"    app = IMAGE & {{
      command = ["sleep", "100000"],
      volumes = [
        {{ type = "bind", source = "./conf", target = "/conf", read_only = true, selinux = "{label}" }},
        {{ type = "bind", source = "./conf", target = "/plain", read_only = true }},
      ],
    }},"#
            ),
            "",
        );
    };
    write("z");
    rig.berth("apply", &[]).code(0);
    let inspect = |format: &str| docker(&["inspect", "--format", format, &rig.container("app")]);
    let binds = inspect("{{json .HostConfig.Binds}}");
    let binds: Vec<String> = serde_json::from_str(&binds).expect("Binds as JSON");
    let [bind] = binds.as_slice() else {
        panic!("one Binds entry: {binds:?}")
    };
    let (source, options) = bind.split_once(":/conf:").expect("source:target:options");
    assert_eq!(options, "ro,z", "{bind}");
    assert_eq!(
        std::fs::canonicalize(source).expect("the bind source"),
        std::fs::canonicalize(&conf).expect("conf"),
        "{bind}"
    );
    let mounts = inspect("{{range .HostConfig.Mounts}}{{.Target}} {{end}}");
    assert_eq!(mounts.trim(), "/plain", "{mounts}");
    assert_eq!(rig.exec("app", &["cat", "/conf/app.yml"]), "answer: 42\n");
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("0 to create, 0 to recreate");
    let id = rig.id("app");
    write("Z");
    rig.berth("apply", &[]).code(0);
    assert_ne!(
        rig.id("app"),
        id,
        "a changed relabelling kept the container"
    );
    assert!(
        inspect("{{json .HostConfig.Binds}}").contains(":/conf:ro,Z"),
        "{}",
        inspect("{{json .HostConfig.Binds}}")
    );
}

/// Typed fields holding a variable: apply reads the variable's value on the host as docker
/// compose reads `.env` (the declared default when the host sets none), and refuses a value
/// that is no value of the field before it asks the engine for anything.
fn typed_fields_read_their_variables_on_the_host(rig: Rig) {
    rig.write_module(
        r#"    app = IMAGE & {
      command = ["sleep", "100000"],
      restart = "${RESTART}",
      healthcheck = { test = ["true"], interval = "${HC_INTERVAL}", retries = "${HC_RETRIES}" },
      ports = [{ target = "${APP_PORT}", protocol = "udp" }],
    },"#,
        r#"variables = {
    APP_PORT = { description = "Container port.", default = "7000" },
    RESTART = { description = "Restart policy.", default = "on-failure" },
    HC_INTERVAL = { description = "Time between checks.", default = "7s" },
    HC_RETRIES = { description = "Failed checks before unhealthy.", default = "4" },
  },"#,
    );
    let env = rig.root().join(".env");
    std::fs::write(&env, "HC_INTERVAL=soon\n").expect("write .env");
    rig.berth("apply", &[])
        .code(2)
        .stderr_contains(r#"app: healthcheck.interval: ${HC_INTERVAL} is "soon" here"#);
    assert!(rig.containers().is_empty(), "{:?}", rig.containers());
    let seen = || {
        docker(&[
            "inspect",
            "--format",
            "{{json .Config.Healthcheck.Interval}} {{json .Config.Healthcheck.Retries}} {{.HostConfig.RestartPolicy.Name}} {{range $port, $_ := .Config.ExposedPorts}}{{$port}}{{end}}",
            &rig.container("app"),
        ])
        .trim()
        .to_string()
    };
    std::fs::write(&env, "HC_INTERVAL=3s\nRESTART=always\nAPP_PORT=7070\n").expect("write .env");
    rig.berth("apply", &[]).code(0);
    assert_eq!(seen(), "3000000000 4 always 7070/udp");
    // Without the host's values the defaults apply: the container is recreated with them.
    std::fs::write(&env, "").expect("write .env");
    rig.berth("apply", &[]).code(0);
    assert_eq!(seen(), "7000000000 4 on-failure 7000/udp");
}

/// A volume without a source is anonymous: the engine creates one for the container, and
/// a second apply changes nothing. A global service is one container on the one host.
fn an_anonymous_volume_is_created_by_the_engine(rig: Rig) {
    rig.write_module(
        r#"    app = IMAGE & {
      command = ["sleep", "100000"],
      volumes = [{ target = "/cache" }],
      global = true,
    },"#,
        "",
    );
    rig.berth("apply", &[]).code(0);
    assert_eq!(
        rig.containers().keys().collect::<Vec<_>>(),
        [&rig.container("app")]
    );
    let mounts = docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{len .Name}}{{end}}",
        &rig.container("app"),
    ]);
    // The engine names an anonymous volume with 64 hex digits.
    assert_eq!(mounts.trim(), "volume /cache 64");
    rig.exec("app", &["touch", "/cache/written"]);
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("0 to create, 0 to recreate, 0 to start, 0 to remove, 2 unchanged");
}

/// A gzip-compressed backup's text.
fn gunzip(path: &Path) -> String {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open backup"))
        .read_to_string(&mut text)
        .expect("a whole gzip stream");
    text
}

/// A network with its own subnet and a service on a fixed address: the engine makes both
/// as written (others get addresses from the `ip_range` only), the fixed address answers,
/// and a changed subnet recreates the network and the containers on it with the new
/// address (a service dropped at the same time, still attached, is removed first), after
/// which a plan changes nothing.
fn fixed_subnets_and_addresses_reach_the_engine_and_a_new_subnet_recreates_the_network(rig: Rig) {
    // The two runs of this test (local and through ssh) may overlap: their subnets must not.
    let second: u8 = if rig.sshd().is_some() { 214 } else { 213 };
    let ip = |rest: &str| format!("10.{second}.{rest}");
    let write = |third: u8| {
        let gone = if third == 47 {
            r#"gone = IMAGE & { command = ["sleep", "100000"], networks = ["back"] },"#
        } else {
            ""
        };
        rig.write_module(
            &format!(
                r#"    app = IMAGE & {{
      command = ["sleep", "100000"],
      networks = ["back"],
      network_addresses.back.ipv4 = "10.{second}.{third}.10",
    }},
    peer = IMAGE & {{ command = ["sleep", "100000"], networks = ["back"] }},
    {gone}"#
            ),
            &format!(
                r#"networks.back = {{
    subnets = [{{ subnet = "10.{second}.{third}.0/24", gateway = "10.{second}.{third}.1", ip_range = "10.{second}.{third}.128/25" }}],
    labels."com.example.purpose" = "test",
  }},"#
            ),
        );
    };
    let address_of = |service: &str| {
        docker(&[
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &rig.container(service),
        ])
        .trim()
        .to_string()
    };
    let network = &format!("{}_back", rig.stack());
    write(47);
    rig.berth("apply", &[]).code(0);
    let ipam = docker(&[
        "network",
        "inspect",
        "--format",
        "{{json .IPAM.Config}} {{index .Labels \"com.example.purpose\"}}",
        network,
    ]);
    assert!(
        ipam.contains(&format!(r#""Subnet":"{}""#, ip("47.0/24")))
            && ipam.contains(&format!(r#""IPRange":"{}""#, ip("47.128/25")))
            && ipam.contains(&format!(r#""Gateway":"{}""#, ip("47.1")))
            && ipam.trim_end().ends_with(" test"),
        "{ipam}"
    );
    assert_eq!(address_of("app"), ip("47.10"));
    let peer: std::net::Ipv4Addr = address_of("peer").parse().expect("peer has an address");
    assert!(
        peer.octets()[..3] == [10, second, 47] && peer.octets()[3] >= 128,
        "{peer}"
    );
    // The fixed address is the service's: its neighbour reaches it there.
    rig.exec("peer", &["ping", "-c", "1", "-W", "5", &ip("47.10")]);
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("0 to create, 0 to recreate, 0 to start, 0 to remove");

    write(48);
    rig.berth("plan", &[])
        .code(1)
        .stdout_line_contains(&["network ", network, " recreate (subnets)"])
        .stdout_contains(&format!("recreate (addresses.{network})"))
        .stdout_contains(&format!("network {network} is recreated"));
    // The plan changed nothing.
    assert_eq!(address_of("app"), ip("47.10"));
    rig.berth("apply", &[]).code(0);
    assert_eq!(address_of("app"), ip("48.10"));
    assert!(
        !rig.containers().contains_key(&rig.container("gone")),
        "{:?}",
        rig.containers()
    );
    rig.exec("peer", &["ping", "-c", "1", "-W", "5", &ip("48.10")]);
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("0 to create, 0 to recreate, 0 to start, 0 to remove");
    rig.berth("down", &[]).code(0);
}

/// `host_environment`: the container gets the name from the process environment or .env
/// only when one of them sets it (a declared default does not count); the value is kept as
/// a secret is (berth cannot know what it holds), and unsetting it recreates the container
/// without it.
fn variables_passed_from_the_host_reach_the_container_only_when_set(rig: Rig) {
    rig.write_module(
        r#"    app = IMAGE & {
      command = ["sleep", "100000"],
      host_environment = ["TRACE_TOKEN", "POLL_MS", "FROM_SHELL"],
    },"#,
        r#"variables.POLL_MS = { description = "Poll interval.", default = "300000" },"#,
    );
    std::fs::write(rig.root().join(".env"), "TRACE_TOKEN=t0k-4f9a1c\n").expect("write .env");
    rig.berth_env("apply", &[], &[("FROM_SHELL", "sh-77d2e0")])
        .code(0);
    let environment = |rig: &Rig| {
        let mut lines: Vec<String> = rig
            .exec("app", &["env"])
            .lines()
            .filter(|l| {
                ["TRACE_TOKEN=", "POLL_MS=", "FROM_SHELL="]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        environment(&rig),
        ["FROM_SHELL=sh-77d2e0", "TRACE_TOKEN=t0k-4f9a1c"]
    );
    assert_no_secret_at_rest(&rig, &["t0k-4f9a1c", "sh-77d2e0"]);
    std::fs::write(rig.root().join(".env"), "").expect("empty .env");
    rig.berth("plan", &[])
        .code(1)
        .stdout_contains("recreate (environment.FROM_SHELL, environment.TRACE_TOKEN)");
    rig.berth("apply", &[]).code(0);
    assert!(environment(&rig).is_empty(), "{:?}", environment(&rig));
    rig.berth("down", &[]).code(0);
}

/// `published = "random"`: each replica gets a free host port of its own from the engine,
/// on the address asked for; a second apply keeps the containers (and their ports).
fn a_random_host_port_is_picked_by_the_engine_for_each_replica(rig: Rig) {
    rig.write_module(
        r#"    app = IMAGE & {
      command = ["sleep", "100000"],
      replicas = 2,
      ports = [{ target = 8080, published = "random", host_ip = "127.0.0.1" }],
    },"#,
        "",
    );
    rig.berth("apply", &[]).code(0);
    let port_of = |replica: u32| {
        docker(&[
            "port",
            &format!("{}-app-{replica}", rig.stack()),
            "8080/tcp",
        ])
        .trim()
        .to_string()
    };
    let (first, second) = (port_of(1), port_of(2));
    for bound in [&first, &second] {
        let port: u16 = bound
            .strip_prefix("127.0.0.1:")
            .unwrap_or_else(|| panic!("not on 127.0.0.1: {bound}"))
            .parse()
            .expect("a port number");
        assert!(port > 0);
    }
    assert_ne!(first, second, "the replicas share a host port");
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("0 to create, 0 to recreate, 0 to start, 0 to remove");
    rig.berth("down", &[]).code(0);
}

/// Replicas with no fixed host port are replaced one at a time, start-first: each new
/// container runs beside the one it replaces until healthy, then the old one goes and the
/// new one takes its name; the next replica starts only after. A new version that never
/// gets healthy is removed, and the old replicas go on running untouched.
fn replicas_are_replaced_one_at_a_time_and_each_new_one_is_healthy_first(rig: Rig) {
    let write = |version: &str, probe: &str| {
        rig.write_module(
            &format!(
                r#"    app = IMAGE & {{
      command = ["sleep", "100000"],
      replicas = 3,
      environment.VERSION = "{version}",
      healthcheck = {{ test = ["{probe}"], {PROBE_TIMING} }},
    }},"#
            ),
            "",
        );
    };
    write("1", "true");
    rig.berth("apply", &[]).code(0);
    let since = std::time::SystemTime::now();
    write("2", "true");
    rig.berth("apply", &[]).code(0);
    let events = rig.events(since);
    for replica in 1..=3 {
        let old = format!("{}-app-{replica}", rig.stack());
        let new = format!("{old}-next");
        assert!(
            at(&events, &new, "health_status: healthy") < at(&events, &old, "kill"),
            "replica {replica}: the old one was stopped before the new one was healthy: {events:?}"
        );
        if replica < 3 {
            let following = format!("{}-app-{}-next", rig.stack(), replica + 1);
            assert!(
                at(&events, &old, "rename") < at(&events, &following, "create"),
                "replica {} started before replica {replica} was replaced: {events:?}",
                replica + 1
            );
        }
    }
    let running = rig.containers();
    assert_eq!(
        running.keys().cloned().collect::<Vec<_>>(),
        (1..=3)
            .map(|n| format!("{}-app-{n}", rig.stack()))
            .collect::<Vec<_>>(),
        "{running:?}"
    );
    assert!(
        running.values().all(|(_, state)| state == "running"),
        "{running:?}"
    );
    assert_eq!(rig.exec("app", &["sh", "-c", "echo $VERSION"]).trim(), "2");
    rig.berth("plan", &[])
        .code(0)
        .stdout_contains("0 to create, 0 to recreate, 0 to start, 0 to remove");

    // A version that never gets healthy: the first new replica is removed, the old ones
    // were never stopped.
    write("3", "false");
    rig.berth("apply", &[]).code(1);
    let after = rig.containers();
    assert_eq!(
        after
            .iter()
            .map(|(n, (id, s))| (n.clone(), id.clone(), s.clone()))
            .collect::<Vec<_>>(),
        running
            .iter()
            .map(|(n, (id, s))| (n.clone(), id.clone(), s.clone()))
            .collect::<Vec<_>>(),
        "the old replicas should be the same containers, still running"
    );
    rig.berth("down", &[]).code(0);
}

/// `${NAME:+text}` on the real engine: the text when the host sets NAME, nothing otherwise.
fn an_alternative_value_follows_the_hosts_variable(rig: Rig) {
    rig.write_module(
        r#"    app = IMAGE & {
      command = ["sleep", "100000"],
      environment.FLAGS = "-v${DEBUG:+ --debug}",
    },"#,
        r#"variables.DEBUG = { description = "Any value turns debugging on.", default = "" },"#,
    );
    rig.berth("apply", &[]).code(0);
    assert_eq!(
        rig.exec("app", &["sh", "-c", "echo \"[$FLAGS]\""]).trim(),
        "[-v]"
    );
    std::fs::write(rig.root().join(".env"), "DEBUG=yes\n").expect("write .env");
    rig.berth("apply", &[]).code(0);
    assert_eq!(
        rig.exec("app", &["sh", "-c", "echo \"[$FLAGS]\""]).trim(),
        "[-v --debug]"
    );
    rig.berth("down", &[]).code(0);
}

/// Every apply test runs twice: against this machine's engine, and through `ssh://` to
/// that same engine (a real OpenSSH server on loopback, see remote.rs), as ops apply to a
/// server elsewhere. The second stack's name ends in `-ssh`, so the two runs never share
/// a container, a network or a state folder.
macro_rules! locally_and_through_ssh {
    ($($test:ident => $stack:literal,)*) => {
        mod local {
            $(
                #[test]
                fn $test() {
                    if let Some(rig) = super::Rig::new($stack) {
                        super::$test(rig);
                    }
                }
            )*
        }
        mod through_ssh {
            $(
                #[test]
                fn $test() {
                    let test = concat!("apply::through_ssh::", stringify!($test));
                    if let Some(rig) = super::Rig::through_ssh(concat!($stack, "-ssh"), test) {
                        super::$test(rig);
                    }
                }
            )*
        }
    };
}

locally_and_through_ssh! {
    first_apply_starts_in_dependency_order_and_a_second_changes_nothing => "bt-order",
    changing_one_environment_value_recreates_only_that_service => "bt-env",
    a_failing_healthcheck_rolls_back_to_the_previous_generation => "bt-fail",
    a_service_removed_from_the_module_is_removed_from_the_host => "bt-prune",
    volume_data_survives_recreation_and_rollback_and_down => "bt-data",
    a_missing_image_stops_apply_before_anything_changes => "bt-image",
    env_files_feed_the_environment_and_aliases_resolve_on_the_network => "bt-envfile",
    variables_come_from_the_process_then_the_env_file_then_dev_values_then_defaults => "bt-vars",
    file_secrets_are_read_at_apply_and_never_kept => "bt-filesecret",
    secrets_reach_the_containers_and_never_rest_in_plain_text => "bt-secret",
    rollback_runs_the_pinned_image_after_the_tag_moved_and_to_picks_the_generation => "bt-pin",
    a_failing_first_apply_removes_what_it_created => "bt-first",
    preflight_lists_every_problem_at_once_and_external_resources_must_exist => "bt-pre",
    an_interrupted_apply_rolls_back_to_the_last_generation_and_keeps_the_data => "bt-int",
    dns_tty_stdin_pid_and_security_options_reach_the_engine => "bt-runopts",
    a_gpu_reservation_reaches_the_engine_as_a_device_request => "bt-gpu",
    a_service_with_a_backup_is_backed_up_before_it_is_recreated => "bt-backup",
    editing_a_template_recreates_exactly_the_service_that_mounts_its_file => "bt-tpl",
    a_service_restarting_with_its_dependency_is_recreated_after_it => "bt-follow",
    preflight_lists_every_missing_bind_source_and_creates_none => "bt-bind",
    typed_fields_read_their_variables_on_the_host => "bt-typed",
    an_anonymous_volume_is_created_by_the_engine => "bt-anon",
    fixed_subnets_and_addresses_reach_the_engine_and_a_new_subnet_recreates_the_network => "bt-address",
    variables_passed_from_the_host_reach_the_container_only_when_set => "bt-passed",
    a_random_host_port_is_picked_by_the_engine_for_each_replica => "bt-anyport",
    replicas_are_replaced_one_at_a_time_and_each_new_one_is_healthy_first => "bt-roll",
    an_alternative_value_follows_the_hosts_variable => "bt-alt",
    a_relabelled_bind_reaches_the_engine_with_its_selinux_option => "bt-label",
}

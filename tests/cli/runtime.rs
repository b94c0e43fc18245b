//! The bundled service modules run for real (issue #20, "Prove it runs"): a user's own
//! project (`berth init`, elsewhere) with a stack of the library's postgres, redis and
//! nginx modules, their images substituted through the modules' `image` parameters by
//! images built from Debian packages (`scripts/test-images`, tests/runtime/images/: no
//! registry is needed). On the machine's real Docker engine:
//!
//! - `berth apply` brings every service to healthy through the modules' own healthchecks,
//!   nginx answers on its published port, `berth down` removes the containers;
//! - the generated compose.yaml, installed as the install text says (the build folder as
//!   `/opt/<stack>`, with the operator's `.env` and nginx configuration), goes through
//!   `docker compose up --wait`; nginx answers; the generated `systemd/berth-backup` runs
//!   the way its `.service` unit starts it (its `Environment=` lines, `WorkingDirectory=`,
//!   `ExecStart=`) and writes a real dump (a bare `pg_dump` stream); the restore command
//!   the unit documents loads it over the running database (the rows written before the
//!   backup are there, a row and a table written after are not), then again into a fresh
//!   stack whose volume went with `down --volumes`.
//!
//! The images are built by `scripts/test-images` (scripts/test runs it before `cargo test`,
//! as root: debootstrap needs it), not by the test: a build takes minutes and root, and
//! cargo would hide its progress. The test asks the script for the tags (content hashes of
//! the recipe) and fails, naming the command, when they are missing. Stack names carry the
//! process id (`berth-rt-apply-<pid>`, `berth-rt-compose-<pid>`), so two suites on one
//! engine never meet, nor the apply tests' (`bt-*`); a guard removes everything carrying
//! the stack's berth or compose label, also when a test fails. Without an engine the tests
//! append their name to `$BERTH_SKIP_LOG` and pass, unless BERTH_REQUIRE_DOCKER=1, where
//! they fail (as tests/cli/apply.rs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Output, REPO, run_in_env};

/// The runtime test images, by server, as `scripts/test-images --tags` names them.
struct Images {
    postgres: String,
    redis: String,
    nginx: String,
    prometheus: String,
    blackbox: String,
    postgres_exporter: String,
    redis_exporter: String,
    alertmanager: String,
}

impl Images {
    /// The tags of the current recipe; each must be on the engine.
    fn present() -> Images {
        let output = Command::new(Path::new(REPO).join("scripts/test-images"))
            .arg("--tags")
            .output()
            .expect("run scripts/test-images --tags");
        assert!(output.status.success(), "scripts/test-images --tags failed");
        let tags = String::from_utf8_lossy(&output.stdout).into_owned();
        let tag = |server: &str| {
            let tag = tags
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{server} ")))
                .unwrap_or_else(|| panic!("scripts/test-images names no {server} image:\n{tags}"))
                .to_string();
            assert!(
                docker_status(&["image", "inspect", &tag]),
                "the runtime tests need the image {tag}: build the test images first, as root: \
                 scripts/test-images (scripts/test does)"
            );
            tag
        };
        Images {
            postgres: tag("postgres"),
            redis: tag("redis"),
            nginx: tag("nginx"),
            prometheus: tag("prometheus"),
            blackbox: tag("blackbox"),
            postgres_exporter: tag("postgres-exporter"),
            redis_exporter: tag("redis-exporter"),
            alertmanager: tag("alertmanager"),
        }
    }
}

/// A user's project outside the repository, holding one stack of bundled service modules,
/// and the guard that removes what the engine holds of that stack.
struct Project {
    dir: tempfile::TempDir,
    stack: String,
    /// The host port nginx is published on (one that was free).
    port: u16,
}

impl Project {
    /// `None` (after a loud message) when no engine answers and none is required.
    fn new(test: &str) -> Option<Project> {
        Project::with_stack(test, |images, project| {
            format!(
                r#"# The runtime test's stack: the bundled modules with locally built images.
let postgres = import "services/postgres.ncl" in
let redis = import "services/redis.ncl" in
let nginx = import "services/nginx.ncl" in
fun profile =>
  postgres {{ image = "{postgres}", database = "shop" }}
  & redis {{ image = "{redis}" }}
  & nginx {{ image = "{nginx}", http_port = {port}, upstreams = ["postgres", "redis"] }}
  & {{ name = "{stack}", description = "berth's runtime test: postgres, redis and nginx" }}
"#,
                postgres = images.postgres,
                redis = images.redis,
                nginx = images.nginx,
                port = project.port,
                stack = project.stack,
            )
        })
    }

    /// A project whose one stack is `stack(images, project)`, its name `project.stack`.
    fn with_stack(test: &str, stack: impl Fn(&Images, &Project) -> String) -> Option<Project> {
        if !engine_answers(test) {
            return None;
        }
        let images = Images::present();
        let dir = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .expect("temp dir");
        let project = Project {
            stack: format!("berth-rt-{test}-{}", std::process::id()),
            port: free_port(),
            dir,
        };
        project.clean_engine();
        project
            .berth(&["init", "--stack", &project.stack, "."])
            .code(0);
        // The example stack init wrote gives way to the test's: the library's modules, only
        // their images replaced.
        let module = format!("modules/stacks/{}.ncl", project.stack);
        assert!(
            project.root().join(&module).exists(),
            "init wrote no {module}"
        );
        project.write(&module, &stack(&images, &project));
        project.operator_files(project.root());
        Some(project)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }

    /// What the operator provides beside the stack's files in `folder`: the variables'
    /// values (`.env`) and the nginx configuration the module mounts (`./nginx/conf.d`).
    fn operator_files(&self, folder: &Path) {
        std::fs::write(
            folder.join(".env"),
            format!("POSTGRES_PASSWORD={PASSWORD}\n"),
        )
        .expect("write .env");
        let conf = folder.join("nginx/conf.d");
        std::fs::create_dir_all(&conf).expect("mkdir nginx/conf.d");
        std::fs::write(conf.join("default.conf"), NGINX_CONF).expect("write nginx conf");
    }

    /// Runs berth in the project, with its own library cache.
    fn berth(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let cache = self.root().join(".cache");
        let cache = cache.to_str().expect("UTF-8 temp path");
        run_in_env(self.root(), &args, &[("BERTH_CACHE_DIR", cache)])
    }

    fn state(&self) -> String {
        self.root().join(".state").display().to_string()
    }

    /// Removes every container, network and volume of this stack, whether berth apply
    /// (label `berth.stack`) or compose (label `com.docker.compose.project`) made it.
    /// Best effort: it also runs while a failed test unwinds.
    fn clean_engine(&self) {
        for label in [
            format!("label=berth.stack={}", self.stack),
            format!("label=com.docker.compose.project={}", self.stack),
        ] {
            for id in docker_lines(&["ps", "-aq", "--filter", &label]) {
                docker_status(&["rm", "-f", "-v", &id]);
            }
            for id in docker_lines(&["network", "ls", "-q", "--filter", &label]) {
                docker_status(&["network", "rm", &id]);
            }
            for id in docker_lines(&["volume", "ls", "-q", "--filter", &label]) {
                docker_status(&["volume", "rm", "-f", &id]);
            }
        }
    }

    /// Names of the containers, volumes and networks whose `label` is this stack's name
    /// (every listing must succeed, so an empty one means none).
    fn leftovers(&self, label: &str) -> Vec<String> {
        let filter = format!("label={label}={}", self.stack);
        [
            docker(&["ps", "-a", "--format", "{{.Names}}", "--filter", &filter]),
            docker(&["volume", "ls", "-q", "--filter", &filter]),
            docker(&[
                "network",
                "ls",
                "--format",
                "{{.Name}}",
                "--filter",
                &filter,
            ]),
        ]
        .iter()
        .flat_map(|listing| listing.lines().map(str::to_string))
        .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        self.clean_engine();
    }
}

/// The superuser password of the test stack: the seeds' policy asks for `@ / : # %`, but
/// this test is about running, not quoting.
const PASSWORD: &str = "rt-Secret-42";

/// The operator's nginx configuration: one server answering with a fixed body.
const NGINX_CONF: &str = "server {
    listen 80;
    location / {
        default_type text/plain;
        return 200 \"berth-rt ok\\n\";
    }
}
";

#[test]
fn apply_brings_the_bundled_modules_up_healthy_and_down_removes_them() {
    let Some(project) = Project::new("apply") else {
        return;
    };
    let applied = project.berth(&[
        "apply",
        "--stack",
        &project.stack,
        "--profile",
        "staging",
        "--state-dir",
        &project.state(),
        "--yes",
    ]);
    applied.code(0);
    // Healthy through the modules' own probes (their tools: pg_isready, redis-cli, wget).
    for (service, probe) in [
        ("postgres", "pg_isready"),
        ("redis", "redis-cli"),
        ("nginx", "wget"),
    ] {
        let container = format!("{}-{service}-1", project.stack);
        assert_eq!(
            health(&container),
            "healthy",
            "{container} is not healthy after apply:\n{}{}\n{}",
            applied.stdout,
            applied.stderr,
            docker(&["logs", "--tail", "30", &container])
        );
        let test = docker(&[
            "inspect",
            "--format",
            "{{json .Config.Healthcheck.Test}}",
            &container,
        ]);
        assert!(
            test.starts_with(&format!(r#"["CMD","{probe}","#)),
            "{container} is probed by {test}"
        );
    }
    assert_eq!(http_get(project.port), "berth-rt ok\n");
    // Redis, as its own user, writes its append-only file into the fresh volume.
    let redis = format!("{}-redis-1", project.stack);
    assert_eq!(
        docker(&["exec", &redis, "redis-cli", "set", "probe", "kept"]).trim(),
        "OK"
    );
    let files = docker(&["exec", &redis, "ls", "/data/appendonlydir"]);
    assert!(
        files.contains(".incr.aof"),
        "no append-only file in /data: {files}"
    );

    project
        .berth(&[
            "down",
            "--stack",
            &project.stack,
            "--state-dir",
            &project.state(),
        ])
        .code(0);
    // down keeps volumes (its help says so): only containers are checked.
    let containers = docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        &format!("label=berth.stack={}", project.stack),
    ]);
    assert!(
        containers.trim().is_empty(),
        "down left containers: {containers}"
    );
}

#[test]
fn compose_runs_serves_and_the_generated_backup_restores_into_a_fresh_volume() {
    let Some(project) = Project::new("compose") else {
        return;
    };
    project
        .berth(&["build", "--stack", &project.stack, "--profile", "staging"])
        .code(0);
    // The install: the build folder is /opt/<stack>, beside it the operator's files.
    let opt = format!("/opt/{}", project.stack);
    let install = project.root().join("install");
    crate::support::copy_dir(
        &project
            .root()
            .join(format!("out/{}/staging", project.stack)),
        &install,
    );
    project.operator_files(&install);
    let backups = project.root().join("backups");
    let compose = Compose {
        project: project.stack.clone(),
        folder: install.clone(),
    };

    compose.up();
    assert_eq!(http_get(project.port), "berth-rt ok\n");
    let write = "CREATE TABLE orders (id integer PRIMARY KEY, note text NOT NULL);
                 INSERT INTO orders SELECT n, md5(n::text) FROM generate_series(1, 500) AS n;";
    compose.sql(write);
    let before = compose.sql(FINGERPRINT);
    assert!(before.starts_with("500|"), "{before}");

    // The unit as systemd would run it: its environment only, its folder, its command,
    // with /opt/<stack> being the install folder and the backup folder a temporary one.
    let unit_path = install.join(format!("systemd/{}-backup-postgres.service", project.stack));
    let unit = std::fs::read_to_string(&unit_path).expect("read backup unit");
    let (env, dir, exec) = service_section(&unit);
    let local = |text: &str| {
        text.replace(&opt, &install.display().to_string()).replace(
            &format!("/var/backups/{}", project.stack),
            &backups.display().to_string(),
        )
    };
    let exec: Vec<String> = exec.split(' ').map(local).collect();
    let mut backup = Command::new(&exec[0]);
    backup.args(&exec[1..]).current_dir(local(&dir)).env_clear();
    for name in [
        "PATH",
        "DOCKER_HOST",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY",
    ] {
        if let Some(value) = std::env::var_os(name) {
            backup.env(name, value);
        }
    }
    for (key, value) in &env {
        backup.env(key, local(value));
    }
    let ran = backup.output().expect("run berth-backup");
    assert!(
        ran.status.success(),
        "berth-backup failed ({}):\n{}{}",
        ran.status,
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let archives: Vec<PathBuf> = std::fs::read_dir(&backups)
        .expect("the backup folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    // The dump stream is the dump alone: a custom-format pg_dump starts with PGDMP.
    let head = Command::new("sh")
        .arg("-c")
        .arg("gunzip -c \"$1\" | head -c 5")
        .arg("sh")
        .arg(&archives[0])
        .output()
        .expect("gunzip");
    assert_eq!(
        String::from_utf8_lossy(&head.stdout),
        "PGDMP",
        "{archives:?}"
    );

    // Written after the backup: not in the dump.
    compose.sql(
        "INSERT INTO orders VALUES (501, 'after the backup');
         CREATE TABLE later (id integer);",
    );
    // The restore the unit documents, run as written (paths mapped as above).
    let restore = local(&restore_comment(&unit));
    let run_restore = || {
        let restored = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &restore])
            .current_dir(&install)
            .output()
            .expect("run the restore");
        assert!(
            restored.status.success(),
            "the documented restore failed ({}): {restore}\n{}",
            restored.status,
            String::from_utf8_lossy(&restored.stderr)
        );
    };

    // Over the running database: the result is the dump, nothing written since.
    run_restore();
    assert_eq!(compose.sql(FINGERPRINT), before, "restored data differ");
    assert_eq!(compose.sql("SELECT to_regclass('later') IS NULL;"), "t");

    // Into a fresh stack: the volume goes, initdb runs again on a new one.
    compose.run(&["down", "--volumes", "--timeout", "30"]);
    assert!(
        project.leftovers("com.docker.compose.project").is_empty(),
        "down --volumes left {:?}",
        project.leftovers("com.docker.compose.project")
    );
    compose.up();
    assert_eq!(compose.sql("SELECT to_regclass('orders') IS NULL;"), "t");
    run_restore();
    assert_eq!(compose.sql(FINGERPRINT), before, "restored data differ");

    compose.run(&["down", "--volumes", "--timeout", "30"]);
}

/// Row count and a digest of every row, in key order.
const FINGERPRINT: &str =
    "SELECT count(*) || '|' || md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM orders;";

/// A compose project run from an install folder, as the stack's systemd unit runs it.
struct Compose {
    project: String,
    folder: PathBuf,
}

impl Compose {
    /// `docker compose` with the project name and file of the generated units.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command
            .args([
                "compose",
                "--project-name",
                &self.project,
                "--file",
                "compose.yaml",
            ])
            .args(args)
            .current_dir(&self.folder);
        command
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        let output = self.command(args).output().expect("run docker compose");
        assert!(
            output.status.success(),
            "docker compose {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Up, waiting for every service to be healthy through the modules' healthchecks.
    #[track_caller]
    fn up(&self) {
        let output = self
            .command(&["up", "--detach", "--wait", "--wait-timeout", "180"])
            .output()
            .expect("run docker compose up");
        if !output.status.success() {
            let logs = self.command(&["logs", "--tail", "30"]).output();
            panic!(
                "docker compose up --wait failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr),
                logs.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            );
        }
    }

    /// Runs SQL in the shop database through psql in the postgres container; its output,
    /// unaligned and trimmed. Retried for a while: the module's `pg_isready` probe (the
    /// socket) already succeeds against the temporary server the image's entrypoint runs
    /// while it creates the database, which then stops for the real one, so a service
    /// turned healthy may still refuse connections for a moment.
    #[track_caller]
    fn sql(&self, sql: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = self
                .command(&[
                    "exec",
                    "-T",
                    "postgres",
                    "psql",
                    "-U",
                    "postgres",
                    "-d",
                    "shop",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-At",
                    "-c",
                    sql,
                ])
                .output()
                .expect("run psql");
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).trim().to_string();
            }
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            let starting = stderr.contains("shutting down")
                || stderr.contains("starting up")
                || stderr.contains("No such file or directory");
            assert!(
                starting && Instant::now() < deadline,
                "psql failed ({}): {sql}\n{stderr}",
                output.status
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The `Environment=` assignments, `WorkingDirectory=` and `ExecStart=` of a unit's
/// `[Service]` section. The test units hold plain values: a quote inside one, or an
/// escape, would need systemd's unquoting, and fails here instead.
fn service_section(unit: &str) -> (Vec<(String, String)>, String, String) {
    let mut env = Vec::new();
    let mut dir = None;
    let mut exec = None;
    for line in unit.lines() {
        if let Some(value) = line.strip_prefix("Environment=") {
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            assert!(!value.contains(['"', '\\']), "unquoting needed: {line}");
            let (key, value) = value.split_once('=').expect("KEY=value");
            env.push((key.to_string(), value.to_string()));
        } else if let Some(value) = line.strip_prefix("WorkingDirectory=") {
            dir = Some(value.to_string());
        } else if let Some(value) = line.strip_prefix("ExecStart=") {
            assert!(
                !value.contains(['"', '\\', '%']),
                "unquoting needed: {line}"
            );
            exec = Some(value.to_string());
        }
    }
    (
        env,
        dir.expect("WorkingDirectory= in the unit"),
        exec.expect("ExecStart= in the unit"),
    )
}

/// The shell command under the unit's `# Restore (newest archive):` comment, its
/// continuation lines joined.
fn restore_comment(unit: &str) -> String {
    let mut lines = unit
        .lines()
        .skip_while(|line| *line != "# Restore (newest archive):")
        .skip(1);
    let mut command = String::new();
    for line in lines.by_ref() {
        let text = line
            .strip_prefix("#   ")
            .unwrap_or_else(|| panic!("the restore comment ends early: {unit}"));
        match text.strip_suffix('\\') {
            Some(continued) => command.push_str(continued),
            None => {
                command.push_str(text);
                return command;
            }
        }
    }
    panic!("no restore command in the unit:\n{unit}")
}

/// `GET /` on the host port: the body of a 200 answer.
fn http_get(port: u16) -> String {
    let (head, body) = http_request(port, "/").expect("nginx answers on its port");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body
}

/// `GET path` on the host port, HTTP/1.0 (the server closes): the head and the body.
fn http_request(port: u16, path: &str) -> std::io::Result<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response: {response:?}")))?;
    Ok((head.to_string(), body.to_string()))
}

/// A host port nothing listens on now (the kernel's pick).
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A container's health status (or its state when it has no healthcheck).
fn health(container: &str) -> String {
    docker(&[
        "inspect",
        "--format",
        "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
        container,
    ])
    .trim()
    .to_string()
}

/// Whether an engine answers (see [`crate::support::engine_answers`]).
fn engine_answers(name: &str) -> bool {
    crate::support::engine_answers("runtime", name)
}

/// Runs docker; it must succeed. Its standard output.
#[track_caller]
fn docker(args: &[&str]) -> String {
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

/// The non-empty lines docker prints; none when it fails (cleanup of what may be gone).
fn docker_lines(args: &[&str]) -> Vec<String> {
    Command::new("docker")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs docker for its effect only, whatever it returns.
fn docker_status(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The nginx configuration berth writes for rag-engine's prod-lite proxy, run for real in
/// the runtime nginx image: `nginx -t` accepts it, the TLS server (on a throw-away
/// certificate, standing in for the operator's) proxies to an upstream named `api` on the
/// stack network, `/healthz` answers without it, and plain HTTP redirects to HTTPS.
/// APE's prod-lite proxy (plain HTTP to its API replicas) passes `nginx -t` too.
#[test]
fn the_generated_proxy_configuration_serves_through_its_routes() {
    if !engine_answers("the_generated_proxy_configuration_serves_through_its_routes") {
        return;
    }
    let images = Images::present();
    let (out, _dir) = crate::support::Berth::bundled()
        .args(["build", "--profile", "prod-lite"])
        .run();
    out.code(0);
    // The nginx module's `files` entry, /etc/nginx/conf.d/default.conf, in its folder.
    let conf_of = |stack: &str| {
        out.root.join(format!(
            "out/{stack}/prod-lite/files/nginx/etc/nginx/conf.d"
        ))
    };
    let conf = conf_of("rag-engine");
    assert!(
        conf.join("default.conf").exists(),
        "no generated nginx configuration"
    );
    let certs = out.root.join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir certs");
    let openssl = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(certs.join("tls.key"))
        .arg("-out")
        .arg(certs.join("tls.crt"))
        .output()
        .expect("run openssl");
    assert!(
        openssl.status.success(),
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );
    // The upstream: an nginx answering on the API's port, as `api` on the network.
    let upstream_conf = out.root.join("upstream");
    std::fs::create_dir_all(&upstream_conf).expect("mkdir");
    std::fs::write(
        upstream_conf.join("default.conf"),
        "server {\n    listen 8000;\n    location / {\n        default_type text/plain;\n        return 200 \"api: $http_x_forwarded_proto\\n\";\n    }\n}\n",
    )
    .expect("write upstream conf");
    let name = format!("berth-rt-proxy-{}", std::process::id());
    let guard = ProxyGuard(name.clone());
    docker(&["network", "create", &name]);
    let mount = |from: &Path, to: &str| format!("{}:{to}:ro", from.display());
    docker(&[
        "run",
        "-d",
        "--name",
        &format!("{name}-api"),
        "--network",
        &name,
        "--network-alias",
        "api",
        "-v",
        &mount(&upstream_conf, "/etc/nginx/conf.d"),
        &images.nginx,
    ]);
    for conf in [&conf, &conf_of("ape")] {
        let test = Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                &name,
                "-v",
                &mount(conf, "/etc/nginx/conf.d"),
                "-v",
                &mount(&certs, "/etc/nginx/certs"),
                "--entrypoint",
                "nginx",
                &images.nginx,
                "-t",
            ])
            .output()
            .expect("run nginx -t");
        assert!(
            test.status.success(),
            "nginx -t {}: {}",
            conf.display(),
            String::from_utf8_lossy(&test.stderr)
        );
    }
    let (http, https) = (free_port(), free_port());
    docker(&[
        "run",
        "-d",
        "--name",
        &format!("{name}-proxy"),
        "--network",
        &name,
        "-p",
        &format!("127.0.0.1:{http}:80"),
        "-p",
        &format!("127.0.0.1:{https}:443"),
        "-v",
        &mount(&conf, "/etc/nginx/conf.d"),
        "-v",
        &mount(&certs, "/etc/nginx/certs"),
        &images.nginx,
    ]);
    let curl = |args: &[&str]| -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = Command::new("curl")
                .args(["-sk", "--max-time", "5"])
                .args(args)
                .output()
                .expect("run curl");
            if output.status.success() && !output.stdout.is_empty() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "curl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    assert_eq!(
        curl(&[&format!("https://127.0.0.1:{https}/")]),
        "api: https\n"
    );
    assert_eq!(curl(&[&format!("http://127.0.0.1:{http}/healthz")]), "ok\n");
    let redirect = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://127.0.0.1:{http}/docs"),
    ]);
    assert!(
        redirect.starts_with("301 https://127.0.0.1/docs"),
        "{redirect}"
    );
    drop(guard);
}

/// Removes the proxy test's containers and network, also when the test fails.
struct ProxyGuard(String);

impl Drop for ProxyGuard {
    fn drop(&mut self) {
        for container in ["api", "proxy"] {
            docker_status(&["rm", "-f", &format!("{}-{container}", self.0)]);
        }
        docker_status(&["network", "rm", &self.0]);
    }
}

/// The monitoring the modules generate works, not just validates: postgres and redis with
/// their exporters, Prometheus and the blackbox exporter (each from Debian's packages),
/// applied with the `staging` profile and berth's generated prometheus.yml and rules.
/// Every scrape target is up, the exporters see their databases (`pg_up`, `redis_up` 1),
/// every alert rule evaluates without error; then postgres stops, and the exporter's
/// database-down rule and the TCP probe's rule both fire, each naming postgres, and
/// Alertmanager (with berth's alertmanager.yml) suppresses the exporter's: one outage, one
/// page, delivered as a Slack message (`receiver = "slack"`) to a stand-in for Slack's
/// incoming webhook on this machine, reached at the stack network's gateway.
#[test]
fn the_generated_monitoring_scrapes_probes_and_raises_the_database_down_alerts() {
    let prometheus_port = free_port();
    let alertmanager_port = free_port();
    let slack = RecordingWebhook::start();
    let Some(project) = Project::with_stack("monitoring", |images, project| {
        format!(
            r#"# The monitoring runtime test's stack: bundled modules, locally built images.
let postgres = import "services/postgres.ncl" in
let redis = import "services/redis.ncl" in
let prometheus = import "services/prometheus.ncl" in
fun profile =>
  postgres {{ image = "{postgres}", database = "shop", exporter = true, exporter_image = "{postgres_exporter}" }}
  & redis {{ image = "{redis}", exporter = true, exporter_image = "{redis_exporter}" }}
  & prometheus {{
      image = "{prometheus}", host_port = {prometheus_port},
      blackbox = true, blackbox_image = "{blackbox}",
      alertmanager = true, alertmanager_image = "{alertmanager}", alertmanager_host_port = {alertmanager_port},
      receiver = "slack",
    }}
  & {{
      name = "{stack}",
      description = "berth's monitoring runtime test",
      # A known gateway: this machine, where the stand-in for Slack listens.
      networks.default.subnets = [{{ subnet = "{subnet}.0/24", gateway = "{subnet}.1" }}],
    }}
"#,
            subnet = SLACK_SUBNET,
            postgres = images.postgres,
            postgres_exporter = images.postgres_exporter,
            redis = images.redis,
            redis_exporter = images.redis_exporter,
            prometheus = images.prometheus,
            blackbox = images.blackbox,
            alertmanager = images.alertmanager,
            stack = project.stack,
        )
    }) else {
        return;
    };
    // The receiver is a required secret: Slack's URL shape, on this machine.
    project.write(
        ".env",
        &format!(
            "POSTGRES_PASSWORD={PASSWORD}\nALERTMANAGER_WEBHOOK_URL=http://{SLACK_SUBNET}.1:{}/services/T0/B0/berth\n",
            slack.port
        ),
    );
    let applied = project.berth(&[
        "apply",
        "--stack",
        &project.stack,
        "--profile",
        "staging",
        "--state-dir",
        &project.state(),
        "--yes",
    ]);
    applied.code(0);
    let logs = || {
        docker(&[
            "logs",
            "--tail",
            "20",
            &format!("{}-prometheus-1", project.stack),
        ])
    };

    // Every target of the generated scrape configuration answers: the exporters, the
    // health probes through the blackbox exporter, Prometheus itself.
    let targets = wait_for(Duration::from_secs(120), || {
        let targets = http_json(prometheus_port, "/api/v1/targets")?;
        let active = targets["data"]["activeTargets"].as_array()?.clone();
        (!active.is_empty() && active.iter().all(|t| t["health"] == "up")).then_some(active)
    })
    .unwrap_or_else(|| {
        panic!(
            "not every target is up: {:#}\n{}",
            http_json(prometheus_port, "/api/v1/targets").unwrap_or_default(),
            logs()
        )
    });
    let jobs: std::collections::BTreeSet<&str> = targets
        .iter()
        .filter_map(|t| t["labels"]["job"].as_str())
        .collect();
    for job in [
        "prometheus",
        "postgres-exporter",
        "redis-exporter",
        "health",
        "reachable",
    ] {
        assert!(jobs.contains(job), "no {job} target: {jobs:?}");
    }
    for (metric, exporter) in [
        ("pg_up", "postgres-exporter"),
        ("redis_up", "redis-exporter"),
    ] {
        let value = wait_for(Duration::from_secs(60), || {
            let result = http_json(prometheus_port, &format!("/api/v1/query?query={metric}"))?;
            let sample = result["data"]["result"].as_array()?.first()?.clone();
            Some((sample["metric"]["job"].clone(), sample["value"][1].clone()))
        });
        assert_eq!(
            value,
            Some((serde_json::json!(exporter), serde_json::json!("1"))),
            "{metric}"
        );
    }
    // The alert rules load and evaluate without error.
    let rules = wait_for(Duration::from_secs(60), || {
        let rules = http_json(prometheus_port, "/api/v1/rules")?;
        let rules: Vec<serde_json::Value> = rules["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        (!rules.is_empty()
            && rules.iter().all(|rule| {
                !rule["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
            }))
        .then_some(rules)
    })
    .expect("the alert rules were never evaluated");
    for rule in &rules {
        assert_eq!(
            rule["health"], "ok",
            "rule {} fails: {rule:#}",
            rule["name"]
        );
    }

    // The database goes down: its exporter's rule and the TCP probe's both fire for it.
    docker(&["stop", &format!("{}-postgres-1", project.stack)]);
    let alerts = wait_for(Duration::from_secs(120), || {
        let alerts = http_json(prometheus_port, "/api/v1/alerts")?;
        let alerts = alerts["data"]["alerts"].as_array()?.clone();
        let names: std::collections::BTreeSet<String> = alerts
            .iter()
            .filter(|alert| ["pending", "firing"].contains(&alert["state"].as_str().unwrap_or("")))
            .filter_map(|alert| alert["labels"]["alertname"].as_str().map(str::to_string))
            .collect();
        (names.contains("ExporterTargetDown") && names.contains("ServiceUnreachable"))
            .then_some(alerts)
    })
    .unwrap_or_else(|| {
        panic!(
            "postgres is down and no alert is pending: {:#}",
            http_json(prometheus_port, "/api/v1/alerts").unwrap_or_default()
        )
    });
    let about = |name: &str| -> Vec<String> {
        alerts
            .iter()
            .filter(|alert| alert["labels"]["alertname"] == name)
            .map(|alert| {
                alert["labels"]["service"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    };
    // Both name postgres (`metrics.watches`): the label Alertmanager's inhibition matches.
    assert_eq!(about("ExporterTargetDown"), ["postgres"]);
    assert_eq!(about("ServiceUnreachable"), ["postgres"]);

    // Once both fire (`for: 2m`), Alertmanager holds the exporter's back: it is suppressed,
    // inhibited by the probe's alert, which alone is active (would page).
    let states = wait_for(Duration::from_secs(240), || {
        let alerts = http_json(alertmanager_port, "/api/v2/alerts")?;
        let states: std::collections::BTreeMap<String, (String, usize)> = alerts
            .as_array()?
            .iter()
            .filter(|alert| alert["labels"]["service"] == "postgres")
            .filter_map(|alert| {
                Some((
                    alert["labels"]["alertname"].as_str()?.to_string(),
                    (
                        alert["status"]["state"].as_str()?.to_string(),
                        alert["status"]["inhibitedBy"].as_array()?.len(),
                    ),
                ))
            })
            .collect();
        (states.contains_key("ExporterTargetDown") && states.contains_key("ServiceUnreachable"))
            .then_some(states)
    })
    .unwrap_or_else(|| {
        panic!(
            "Alertmanager never received both alerts: {:#}",
            http_json(alertmanager_port, "/api/v2/alerts").unwrap_or_default()
        )
    });
    assert_eq!(
        states["ServiceUnreachable"],
        ("active".to_string(), 0),
        "{states:?}"
    );
    assert_eq!(
        states["ExporterTargetDown"],
        ("suppressed".to_string(), 1),
        "{states:?}"
    );

    // The page reaches "Slack" as a Slack message (Slack refuses Alertmanager's webhook JSON
    // for want of `text`): the title names the alert, the text says what is down; the
    // suppressed alert is never sent.
    let messages = wait_for(Duration::from_secs(120), || {
        let bodies = slack.bodies();
        (!bodies.is_empty()).then_some(bodies)
    })
    .expect("Alertmanager never posted to the Slack webhook");
    let message: serde_json::Value = serde_json::from_str(&messages[0]).expect("a JSON message");
    let attachment = &message["attachments"][0];
    let (title, text) = (
        attachment["title"].as_str().unwrap_or_default(),
        attachment["text"].as_str().unwrap_or_default(),
    );
    assert!(
        title.contains("FIRING") && title.contains("ServiceUnreachable"),
        "{message:#}"
    );
    assert!(
        text.contains("postgres") && !text.trim().is_empty(),
        "{message:#}"
    );
    assert!(
        messages.iter().all(|m| !m.contains("ExporterTargetDown")),
        "the inhibited alert was sent: {messages:?}"
    );
}

/// The first three octets of the monitoring test's network, whose gateway (`.1`) is this
/// machine as its containers see it.
const SLACK_SUBNET: &str = "10.216.0";

/// An HTTP endpoint on every address of this machine that answers `ok`, as Slack's incoming
/// webhooks do, and keeps the body of every POST.
struct RecordingWebhook {
    port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingWebhook {
    fn start() -> RecordingWebhook {
        let listener = std::net::TcpListener::bind(("0.0.0.0", 0)).expect("bind the webhook");
        let port = listener.local_addr().expect("its address").port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = bodies.clone();
        // Detached: it ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = read_post(stream) {
                    kept.lock().expect("bodies").push(body);
                }
            }
        });
        RecordingWebhook { port, bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("bodies").clone()
    }
}

/// Reads one request (head, then `Content-Length` bytes of body), answers `ok`, and
/// gives the body.
fn read_post(mut stream: std::net::TcpStream) -> Option<String> {
    use std::io::{BufRead, Read, Write};
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .ok()?;
    String::from_utf8(body).ok()
}

/// Polls `probe` every second until it gives a value or `limit` passes.
fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A JSON answer (status 200) on the host port; `None` while there is none.
fn http_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let (head, body) = http_request(port, path).ok()?;
    // Go's server answers an HTTP/1.0 request as HTTP/1.0 (nginx says 1.1): the status only.
    (head.split(' ').nth(1) == Some("200"))
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

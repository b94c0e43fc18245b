//! A builder for running berth on a throw-away project, in the style of just's `Test`:
//! `Berth::bundled().file("modules/stacks/x.ncl", src).args(["build"]).run()`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A project in a temporary folder, and the command to run on it.
pub struct Berth {
    dir: tempfile::TempDir,
    args: Vec<String>,
}

/// What a run printed and returned.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub root: PathBuf,
}

impl Berth {
    /// A copy of this repository's schemas, modules and profiles.
    pub fn bundled() -> Berth {
        let berth = Berth::empty();
        for dir in ["schemas", "modules", "profiles"] {
            copy_dir(&Path::new(REPO).join(dir), &berth.dir.path().join(dir));
        }
        berth
    }

    /// The bundled schemas and profiles, with no stacks.
    pub fn schemas_only() -> Berth {
        let berth = Berth::empty();
        for dir in ["schemas", "profiles", "modules/services"] {
            copy_dir(&Path::new(REPO).join(dir), &berth.dir.path().join(dir));
        }
        std::fs::create_dir_all(berth.dir.path().join("modules/stacks")).expect("mkdir stacks");
        berth
    }

    /// Runs again on the project a previous run left behind.
    pub fn reuse(dir: tempfile::TempDir) -> Berth {
        Berth {
            dir,
            args: Vec::new(),
        }
    }

    fn empty() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("temp dir");
        Berth {
            dir,
            args: Vec::new(),
        }
    }

    pub fn file(self, path: &str, contents: &str) -> Berth {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, contents).expect("write fixture");
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Berth {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs berth with the project as working directory. Keeps the project alive in
    /// the returned value so that its files can be inspected.
    pub fn run(self) -> (Output, tempfile::TempDir) {
        let out = run_in(self.dir.path(), &self.args);
        (out, self.dir)
    }
}

/// Runs berth with `args` in an existing folder (the caller owns it).
pub fn run_in(root: &Path, args: &[String]) -> Output {
    run_in_env(root, args, &[])
}

/// The variables of the test process that berth may see: what finds programs and the
/// engine. Anything else (a developer's `API_KEY`, `BERTH_STATE_DIR`…) would beat the
/// project's `.env` and make a test depend on the machine.
const PASSED_THROUGH: [&str; 5] = [
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
];

/// The caches of every berth the tests run (build results, the materialised library),
/// unless a test gives its own: below cargo's temporary folder for tests, so that a test
/// neither reads nor fills the user's `~/.cache/berth`. Tests share it as builds on one
/// machine do; a test of the cache itself passes its own `BERTH_CACHE_DIR`.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("berth-cache")
}

/// The berth binary as a command whose caches are in [`cache_dir`]: every test that runs
/// berth starts here (or at [`run_in_env`]).
pub fn berth_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.env("BERTH_CACHE_DIR", cache_dir());
    command
}

/// Runs berth in `root` with a clean environment (only [`PASSED_THROUGH`], and caches in
/// [`cache_dir`]) plus `env`.
pub fn run_in_env(root: &Path, args: &[String], env: &[(&str, &str)]) -> Output {
    let output = command_in_env(root, args, env).output().expect("run berth");
    Output::of(root, &output)
}

/// The command [`run_in_env`] runs, for a test that starts berth and signals it.
pub fn command_in_env(root: &Path, args: &[String], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.args(args).current_dir(root).env_clear();
    for name in PASSED_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.env("BERTH_CACHE_DIR", cache_dir());
    command.envs(env.iter().copied());
    command
}

impl Output {
    /// What a berth run in `root` ended with.
    pub fn of(root: &Path, output: &std::process::Output) -> Output {
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            root: root.to_path_buf(),
        }
    }

    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr:\n{}",
            self.stderr
        );
        self
    }

    /// One line of stdout holds every one of `pieces`, in this order (columns padded to
    /// the longest name come between them).
    #[track_caller]
    pub fn stdout_line_contains(&self, pieces: &[&str]) -> &Self {
        let found = self.stdout.lines().any(|line| {
            let mut rest = line;
            pieces.iter().all(|piece| match rest.find(piece) {
                Some(at) => {
                    rest = &rest[at + piece.len()..];
                    true
                }
                None => false,
            })
        });
        assert!(
            found,
            "no stdout line holds {pieces:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout:\n{}",
            self.stdout
        );
        self
    }

    /// No output folder and no staging leftovers next to the project's files.
    #[track_caller]
    pub fn wrote_nothing(&self) -> &Self {
        let mut entries: Vec<String> = std::fs::read_dir(&self.root)
            .expect("read project")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        // `templates`: the project's own templates (files.rs).
        let expected = ["modules", "profiles", "schemas", "templates"];
        assert!(
            entries.iter().all(|e| expected.contains(&e.as_str())),
            "berth wrote something on bad input: {entries:?}"
        );
        self
    }
}

/// Runs the project's copy of validate-artifacts on `dir` (Kubernetes schemas of 1.33, the
/// API version of the typed objects) with `--strict`, so that a warning fails too; asserts
/// that every recognised file passed, and returns its report, one line per file.
#[track_caller]
pub fn validate_artifacts(dir: &Path) -> String {
    let output = Command::new(Path::new(REPO).join("scripts/validate-artifacts"))
        .args(["--strict", "--k8s-version", "1.33"])
        .arg(dir)
        .output()
        .expect("run validate-artifacts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "validate-artifacts failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");
    stdout
}

/// How many files of `kind` a validate-artifacts report says passed.
pub fn n_passed(report: &str, kind: &str) -> usize {
    report
        .lines()
        .filter(|line| line.starts_with(&format!("ok {kind} ")))
        .count()
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("prefix"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every file below `dir`, relative path → bytes.
pub fn read_tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).expect("prefix").to_path_buf(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// The text of a `podman` profile: the bundled prod-lite with Quadlet units on, for
/// podman 5.2 hosts.
pub fn podman_profile() -> String {
    let prod_lite = std::fs::read_to_string(Path::new(REPO).join("profiles/prod-lite.ncl"))
        .expect("read prod-lite");
    let podman = prod_lite
        .replace("name = \"prod-lite\",", "name = \"podman\",")
        .replace(
            "  systemd = true,",
            "  systemd = true,\n  quadlet = true,\n  podman_version = \"5.2\",",
        );
    assert_ne!(
        podman, prod_lite,
        "prod-lite.ncl changed shape: no podman profile"
    );
    podman
}

/// Whether a Docker engine answers. When none does, the test `module::name` is written to
/// `$BERTH_SKIP_LOG` (one line each), so the suite's summary says how many did not run;
/// under `BERTH_REQUIRE_DOCKER=1` a missing engine fails the test instead.
pub fn engine_answers(module: &str, name: &str) -> bool {
    let answered = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !answered {
        assert!(
            std::env::var("BERTH_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "BERTH_REQUIRE_DOCKER=1 but no Docker engine answers `docker version`"
        );
        eprintln!("\n!!! SKIPPED: no Docker engine answers; {module} tests did not run !!!\n");
        if let Some(log) = std::env::var_os("BERTH_SKIP_LOG") {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
                .expect("open BERTH_SKIP_LOG");
            // One write per line: tests run in parallel, and O_APPEND keeps one write whole.
            file.write_all(format!("{module}::{name}\n").as_bytes())
                .expect("write BERTH_SKIP_LOG");
        }
    }
    answered
}

/// A validator scripts/install-validators linked into `$ARTIFACT_VALIDATORS_HOME/bin`
/// (default /opt/artifact-validators); the test fails naming the script when it is missing.
pub fn validator(name: &str) -> PathBuf {
    let home = std::env::var_os("ARTIFACT_VALIDATORS_HOME")
        .map_or_else(|| PathBuf::from("/opt/artifact-validators"), PathBuf::from);
    let path = home.join("bin").join(name);
    assert!(
        path.exists(),
        "{name} not found at {}: run scripts/install-validators",
        path.display()
    );
    path
}

/// `docker compose config --format json` of the compose file in `built` (an output
/// folder), run there, with `.env` holding `env` and `unset` removed from the environment:
/// what Compose makes of the file on a host like that.
pub fn compose_config(built: &Path, env: &str, unset: &[&str]) -> serde_json::Value {
    std::fs::write(built.join(".env"), env).expect("write .env");
    let mut command = Command::new("docker");
    command
        .args(["compose", "--project-directory"])
        .arg(built)
        .arg("-f")
        .arg(built.join("compose.yaml"))
        .args(["config", "--format", "json"]);
    for name in unset {
        command.env_remove(name);
    }
    let output = command.output().expect("run docker compose config");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("compose prints JSON")
}

/// podman's Quadlet generator (`quadlet -dryrun`) over the units in `dir`: what it prints,
/// each generated service after a `---<name>.service---` line.
pub fn quadlet_dryrun(dir: &Path) -> String {
    let run = Command::new(validator("quadlet"))
        .arg("-dryrun")
        .env("QUADLET_UNIT_DIRS", dir)
        .output()
        .expect("run quadlet");
    assert!(
        run.status.success(),
        "quadlet failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).expect("UTF-8 units")
}

/// Runs the `berth-env` of the output folder `built` for `stack`'s `service`, with `.env`
/// holding `env`, into `runtime`: the environment file it renders.
pub fn run_berth_env(
    built: &Path,
    stack: &str,
    service: &str,
    env: &str,
    runtime: &Path,
) -> String {
    std::fs::write(built.join(".env"), env).expect("write .env");
    let run = Command::new("bash")
        .arg(built.join("quadlet/berth-env"))
        .args([stack, service])
        .arg(built)
        .env("BERTH_RUNTIME_DIR", runtime)
        .output()
        .expect("run berth-env");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(runtime.join(stack).join(format!("{service}.env")))
        .expect("rendered environment")
}

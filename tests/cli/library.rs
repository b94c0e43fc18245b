//! berth outside this repository: `berth init` in an empty folder elsewhere, the library
//! resolved from the binary (no schemas copied), the project's files winning over it,
//! library errors named `berth:…`, the version pin, `library export|path`, completions
//! and the man page.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Output, REPO, validate_artifacts};

/// A temporary folder outside the repository, with its own library cache, so nothing the
/// project finds can come from this checkout.
struct Elsewhere {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Elsewhere {
    fn new() -> Elsewhere {
        let dir = tempfile::Builder::new()
            .prefix("berth-elsewhere-")
            .tempdir()
            .expect("temp dir");
        assert!(
            !dir.path().starts_with(REPO),
            "the test project must lie outside the repository"
        );
        let cache = tempfile::tempdir().expect("cache dir");
        Elsewhere { dir, cache }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Runs berth in `relative` (a folder of the temporary tree).
    fn run(&self, relative: &str, args: &[&str]) -> Output {
        let cwd = self.path(relative);
        let output = crate::support::berth_command()
            .args(args)
            .current_dir(&cwd)
            .env("BERTH_CACHE_DIR", self.cache.path())
            .env_remove("RUST_LOG")
            .output()
            .expect("run berth");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            root: cwd,
        }
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    /// A file of the embedded library, read through `berth library export`.
    fn library_file(&self, path: &str) -> String {
        let export = self.path("exported");
        if !export.exists() {
            self.run(".", &["library", "export", "exported"]).code(0);
        }
        self.read(&format!("exported/{path}"))
    }
}

#[test]
fn init_build_bless_check_then_a_user_module_wins() {
    let here = Elsewhere::new();
    here.run(".", &["init", "shop"])
        .code(0)
        .stdout_contains("created modules/stacks/shop.ncl");
    for absent in ["shop/schemas", "shop/modules/services", "shop/profiles"] {
        assert!(!here.path(absent).exists(), "init copied {absent}");
    }

    here.run("shop", &["build"]).code(0);
    for profile in ["dev", "staging", "prod-lite"] {
        let compose = here.read(&format!("shop/out/shop/{profile}/compose.yaml"));
        assert!(compose.contains("image: postgres:16-alpine"), "{compose}");
    }
    // Real tools on the init'ed project's output: compose, systemd, Prometheus, k8s…
    let report = validate_artifacts(&here.path("shop/out"));
    assert!(report.contains("ok compose "), "{report}");

    here.run("shop", &["bless"]).code(0);
    here.run("shop", &["check"])
        .code(0)
        .stdout_contains("check: clean");

    // The user's own postgres module: the library's, with another image.
    let library_postgres = here.library_file("modules/services/postgres.ncl");
    let mine = library_postgres.replace("\"postgres:16-alpine\"", "\"postgres:17.2-alpine\"");
    assert_ne!(mine, library_postgres, "the library's default image moved");
    here.write("shop/modules/services/postgres.ncl", &mine);

    let drift = here.run("shop", &["check", "--profile", "dev"]);
    drift
        .code(1)
        .stdout_contains("-    image: postgres:16-alpine")
        .stdout_contains("+    image: postgres:17.2-alpine");
    here.run("shop", &["list", "--modules"]).code(0).stdout_contains(
        "services/postgres.ncl         project modules/services/postgres.ncl (replaces berth's)",
    );
    here.run("shop", &["build"]).code(0);
    let compose = here.read("shop/out/shop/prod-lite/compose.yaml");
    assert!(compose.contains("image: postgres:17.2-alpine"), "{compose}");
}

#[test]
fn errors_in_library_files_name_them_berth_and_user_errors_name_the_user_line() {
    let here = Elsewhere::new();
    here.run(".", &["init", "shop"]).code(0);
    let stack = here.read("shop/modules/stacks/shop.ncl");
    here.write(
        "shop/modules/stacks/shop.ncl",
        &stack.replace(
            "postgres { database = \"shop\" }",
            "postgres { database = 5 }",
        ),
    );
    let user_line = 1 + stack
        .lines()
        .position(|line| line.contains("postgres { database ="))
        .expect("the stack uses postgres");
    let library_line = 1 + here
        .library_file("modules/services/postgres.ncl")
        .lines()
        .position(|line| line.trim_start().starts_with("database | String"))
        .expect("postgres declares `database`");

    let out = here.run("shop", &["build", "--profile", "dev"]);
    out.code(2)
        .stderr_contains("contract broken by the value of `database`")
        .stderr_contains(&format!(
            "berth:modules/services/postgres.ncl:{library_line}:"
        ))
        .stderr_contains(&format!("modules/stacks/shop.ncl:{user_line}:"));
    let cache = here.cache.path().to_string_lossy().into_owned();
    assert!(
        !out.stderr.contains(&cache),
        "the cache path leaked:\n{}",
        out.stderr
    );
    assert!(!here.path("shop/out").exists(), "wrote output on bad input");
}

#[test]
fn project_profiles_replace_and_add_to_the_library_ones() {
    let here = Elsewhere::new();
    here.run(".", &["init", "shop"]).code(0);
    let dev = here.library_file("profiles/dev.ncl");
    let quiet_dev = dev.replace("log_level = \"debug\"", "log_level = \"error\"");
    assert_ne!(
        quiet_dev, dev,
        "the library's dev profile no longer sets debug logs"
    );
    here.write("shop/profiles/dev.ncl", &quiet_dev);
    here.write(
        "shop/profiles/qa.ncl",
        &dev.replace("name = \"dev\"", "name = \"qa\""),
    );

    here.run("shop", &["build"]).code(0);
    let dev_compose = here.read("shop/out/shop/dev/compose.yaml");
    assert!(dev_compose.contains("LOG_LEVEL: error"), "{dev_compose}");
    let staging = here.read("shop/out/shop/staging/compose.yaml");
    assert!(staging.contains("LOG_LEVEL: info"), "{staging}");
    assert!(here.path("shop/out/shop/qa/compose.yaml").is_file());
    here.run("shop", &["list", "--modules"])
        .code(0)
        .stdout_contains(
            "dev                           project profiles/dev.ncl (replaces berth's)",
        )
        .stdout_contains("qa                            project profiles/qa.ncl\n")
        .stdout_contains("staging                       berth\n");
}

#[test]
fn init_refuses_a_non_empty_folder_and_never_replaces_a_file() {
    let here = Elsewhere::new();
    here.write("mine/README.md", "my own notes\n");
    here.run(".", &["init", "mine"])
        .code(2)
        .stderr_contains("mine: not empty")
        .stderr_contains("--force");
    assert!(
        !here.path("mine/modules").exists(),
        "init wrote into a non-empty folder"
    );

    here.run(".", &["init", "mine", "--force", "--stack", "api", "--ci"])
        .code(0)
        .stdout_contains("kept    README.md (exists; not replaced)")
        .stdout_contains("created modules/stacks/api.ncl");
    assert_eq!(here.read("mine/README.md"), "my own notes\n");
    let gitignore = here.read("mine/.gitignore");
    assert!(gitignore.lines().any(|l| l == "/out/") && gitignore.lines().any(|l| l == ".env"));
    let workflow = here.read("mine/.github/workflows/berth.yml");
    let parsed: serde_json::Value = serde_saphyr::from_str(&workflow).expect("workflow is YAML");
    let steps = parsed["jobs"]["check"]["steps"].as_array().expect("steps");
    assert!(
        steps.iter().any(|step| step["run"] == "berth check"),
        "{workflow}"
    );

    // A second init with --force keeps every file as it is.
    let stack_before = here.read("mine/modules/stacks/api.ncl");
    here.write("mine/modules/stacks/api.ncl", "# edited\n");
    here.run("mine", &["init", "--force", "--stack", "api"])
        .code(0)
        .stdout_contains("kept    modules/stacks/api.ncl");
    assert_eq!(here.read("mine/modules/stacks/api.ncl"), "# edited\n");
    assert!(stack_before.contains("services/postgres.ncl"));

    here.run(".", &["init", "x", "--stack", "Bad_Name"])
        .code(2)
        .stderr_contains("--stack Bad_Name: not a stack name");
    assert!(!here.path("x").exists());
}

#[test]
fn a_project_for_another_berth_version_is_refused_by_name() {
    let here = Elsewhere::new();
    here.run(".", &["init", "shop"]).code(0);
    let pinned = here.read("shop/berth.toml");
    let series = berth_series();
    assert!(
        pinned.contains(&format!("berth = \"{series}\"")),
        "{pinned}"
    );
    here.write("shop/berth.toml", "# pinned\nberth = \"9.0\"\n");
    here.run("shop", &["build"])
        .code(2)
        .stderr_contains("berth.toml:2:9: berth: this project is written for berth 9.0")
        .stderr_contains("hint: install berth 9.0");
    assert!(!here.path("shop/out").exists());
    here.write("shop/berth.toml", "berth = \"0.1\"\nedition = 2\n");
    here.run("shop", &["list"])
        .code(2)
        .stderr_contains("berth.toml:2:1: berth.toml: unknown field `edition`");
}

/// `berth library export` gives a complete library: a project made of the exported files
/// and an init'ed stack builds byte-identically to the init'ed project, with every module
/// taken from the export. (The Nickel CLI is not installed by scripts/install-validators,
/// so resolution is tested through berth's own evaluator; see README "Editor setup".)
#[test]
fn exported_library_resolves_the_init_stack_and_path_lists_the_import_path() {
    let here = Elsewhere::new();
    here.run(".", &["init", "shop"]).code(0);
    here.run("shop", &["build"]).code(0);

    here.run(".", &["library", "export", "vendored"])
        .code(0)
        .stdout_contains("files of berth");
    here.run(".", &["library", "export", "vendored"])
        .code(2)
        .stderr_contains("vendored: not empty");
    let stack = here.read("shop/modules/stacks/shop.ncl");
    here.write("vendored/modules/stacks/shop.ncl", &stack);
    let listed = here.run("vendored", &["list", "--modules"]);
    listed.code(0);
    assert!(
        listed
            .stdout
            .lines()
            .skip(1)
            .all(|line| line.contains("(replaces berth's)") || line == "profiles:"),
        "a module still comes from the library:\n{}",
        listed.stdout
    );
    here.run("vendored", &["build"]).code(0);
    let ours = crate::support::read_tree(&here.path("vendored/out"));
    let init = crate::support::read_tree(&here.path("shop/out"));
    assert!(!ours.is_empty());
    assert_eq!(ours, init, "the exported library builds differently");

    let path = here.run("shop", &["library", "path"]);
    path.code(0);
    let entries: Vec<&str> = path.stdout.trim_end().split(':').collect();
    let shop = here.path("shop");
    assert_eq!(entries[0], shop.join("schemas").to_string_lossy());
    assert_eq!(entries[1], shop.join("modules").to_string_lossy());
    let library = Path::new(entries[2]).parent().expect("library root");
    assert!(library.starts_with(here.cache.path()), "{}", path.stdout);
    assert_eq!(
        std::fs::read_to_string(library.join("schemas/berth.ncl")).expect("berth.ncl"),
        here.read("vendored/schemas/berth.ncl")
    );
}

#[test]
fn completions_and_man_page_are_generated_from_the_arguments() {
    let here = Elsewhere::new();
    let bash = here.run(".", &["completions", "bash"]);
    bash.code(0)
        .stdout_contains("init")
        .stdout_contains("--stack");
    here.write("berth.bash", &bash.stdout);
    let syntax = Command::new("bash")
        .args(["-n", &here.path("berth.bash").to_string_lossy()])
        .output()
        .expect("bash -n");
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for shell in ["zsh", "fish"] {
        here.run(".", &["completions", shell])
            .code(0)
            .stdout_contains("library");
    }
    let man = here.run(".", &["man"]);
    man.code(0).stdout_contains(".TH berth 1");
    here.write("berth.1", &man.stdout);
    // groff reads the page as man(1) would (UTF-8 input); warnings (-ww) go to stderr.
    let rendered = Command::new("groff")
        .args([
            "-Kutf8",
            "-man",
            "-Tutf8",
            "-ww",
            &here.path("berth.1").to_string_lossy(),
        ])
        .output()
        .expect("groff");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success() && rendered.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    for subcommand in ["berth-init", "berth-library", "berth-completions"] {
        assert!(
            text.contains(subcommand),
            "man page lacks {subcommand}:\n{text}"
        );
    }
}

/// The releases compatible with this berth, as `berth init` pins them: `0.1` for 0.1.x.
fn berth_series() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}"),
        (Some(major), _) => major.to_string(),
        _ => panic!("version {version}"),
    }
}

/// What an editor's Nickel tooling sees: upstream Nickel's own evaluator (the py-nickel
/// bindings of Nickel 1.18, built apart from berth), given only `berth library path` as
/// its import path, resolves the init'ed stack's `import "berth.ncl"` and
/// `import "services/…"` to the library and evaluates it through `finalize`, contracts
/// included: a misspelt field is refused there too.
#[test]
fn upstream_nickel_resolves_an_init_project_through_the_library_path() {
    let python = crate::validators::validators_home().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/install-validators",
        python.display()
    );
    let here = Elsewhere::new();
    here.run(".", &["init", "shop"]).code(0);
    let path = here.run("shop", &["library", "path"]);
    path.code(0);
    let import_paths: Vec<&str> = path.stdout.trim_end().split(':').collect();
    let library = Path::new(import_paths[2]).parent().expect("library root");
    let evaluate = |stack: &Path| {
        let expr = format!(
            "let berth = import \"berth.ncl\" in berth.finalize \"shop\" (import \"{}\") (import \"{}\")",
            stack.display(),
            library.join("profiles/staging.ncl").display()
        );
        let script = "import json, sys, nickel\ntry:\n    print(nickel.run(sys.argv[1], sys.argv[2].split(':')))\nexcept Exception as e:\n    print(e, file=sys.stderr)\n    sys.exit(1)\n";
        Command::new(&python)
            .args(["-c", script, &expr, path.stdout.trim_end()])
            .output()
            .expect("run py-nickel")
    };
    let stack = here.path("shop/modules/stacks/shop.ncl");
    let output = evaluate(&stack);
    assert!(
        output.status.success(),
        "upstream Nickel did not evaluate the stack: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let services: Vec<&String> = value["services"]
        .as_object()
        .expect("services")
        .keys()
        .collect();
    assert!(services.len() >= 2, "{services:?}");
    assert_eq!(value["profile"]["name"], "staging");
    // The same files berth builds from: its compose file has exactly these services.
    here.run("shop", &["build", "--profile", "staging"]).code(0);
    let compose: serde_json::Value =
        serde_saphyr::from_str(&here.read("shop/out/shop/staging/compose.yaml")).expect("yaml");
    let built: Vec<&String> = compose["services"]
        .as_object()
        .expect("compose services")
        .keys()
        .filter(|name| !name.ends_with("-chown"))
        .collect();
    assert_eq!(services, built);

    let source = here.read("shop/modules/stacks/shop.ncl");
    let misspelt = source.replacen("environment = {", "enviroment = {", 1);
    assert_ne!(misspelt, source, "the init stack sets no environment");
    here.write("shop/modules/stacks/shop.ncl", &misspelt);
    let output = evaluate(&stack);
    assert!(!output.status.success(), "a misspelt field was accepted");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("enviroment"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

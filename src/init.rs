//! The files `berth init` writes for a new project: a commented example stack built from
//! two library modules, `berth.toml` pinning this berth's version, a `.gitignore`, a
//! README stub and, on request, a CI workflow running `berth check`. Pure: the CLI writes
//! them, never over an existing file.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to put in the new project.
#[derive(Debug, Clone)]
pub struct Options {
    /// The example stack's name, checked with [`valid_stack_name`].
    pub stack: String,
    /// Add `.github/workflows/berth.yml`.
    pub ci: bool,
}

/// `berth init` could not start a project.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "{}: not empty\nhint: pass --force to add the project's files beside what is there (no file is ever replaced)",
        dir.display()
    )]
    NotEmpty { dir: PathBuf },
    #[error(
        "--stack {name}: not a stack name\nhint: a stack name is lower-case letters, digits and `-`, starting with a letter (it names files, containers and a Kubernetes namespace)"
    )]
    BadStackName { name: String },
}

/// The project's files, keyed by path relative to its root.
pub fn project_files(options: &Options, berth_version: &str) -> BTreeMap<PathBuf, String> {
    let Options { stack, ci } = options;
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from(format!("modules/stacks/{stack}.ncl")),
        STACK.replace("{stack}", stack),
    );
    files.insert(
        PathBuf::from("berth.toml"),
        crate::project::manifest::template(berth_version),
    );
    files.insert(PathBuf::from(".gitignore"), GITIGNORE.to_string());
    files.insert(PathBuf::from("README.md"), README.replace("{stack}", stack));
    if *ci {
        let series = crate::project::manifest::series(berth_version);
        files.insert(
            PathBuf::from(".github/workflows/berth.yml"),
            CI.replace("{series}", &series),
        );
    }
    files
}

/// Lower-case letters, digits and `-`, starting with a letter, at most 63 characters: a
/// name every backend accepts as it is (a file, a Compose project, a DNS label).
pub fn valid_stack_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 63
}

/// The example stack: it must build as it is, in every library profile.
const STACK: &str = r#"# The stack `{stack}`: one file per stack in modules/stacks/. `berth build` compiles it
# for every profile (dev, staging and prod-lite come with berth; a file
# profiles/<name>.ncl of yours replaces one or adds one).
#
# `berth.ncl` and `services/*.ncl` come from the library inside berth. A file of yours
# with the same import name (schemas/berth.ncl, modules/services/postgres.ncl) wins:
# `berth list --modules` shows which one is used, `berth library export DIR` writes the
# library out for reading.
let berth = import "berth.ncl" in
let postgres = import "services/postgres.ncl" in
let app = import "services/app.ncl" in
# A stack is a function from the profile's settings to a record. Service modules return
# partial stacks (a service with the volumes and variables it needs), merged with `&`.
fun profile =>
  postgres { database = "{stack}" }          # service `postgres`, its volume, POSTGRES_PASSWORD
  & app {                                    # an HTTP service built from ./web
    name = "web",
    description = "The {stack} web application",
    context = "./web",
    host_port = 8080,
  }
  & {
    description = "{stack}: a web application and its database",
    services.web = {
      environment = {
        DATABASE_URL = "postgresql://postgres:${POSTGRES_PASSWORD}@postgres:5432/{stack}",
        LOG_LEVEL = profile.log_level,       # a profile setting
        SESSION_SECRET = "${SESSION_SECRET}",  # a variable, declared below
      },
      depends_on.postgres = "healthy",       # started | healthy | completed
      replicas | default = 1,                # `| default`: an override may replace it
    },
    variables.SESSION_SECRET = {
      description = "Signs the web application's session cookies.",
      secret = true,                         # never written into an artifact
      dev_value = "dev-only-session-secret", # used by profiles with dev_secrets (dev)
    },
    # This stack's own settings for one profile.
    overrides.prod-lite.services.web = {
      replicas = 2,
      ports | force = [berth.publish "8080-8081" 8000],  # one host port per replica
    },
  }
"#;

const GITIGNORE: &str =
    "# berth build output, and the variable values of this machine (secrets among them).
/out/
.env
";

const README: &str = "# {stack}

Deployment of `{stack}`, written as berth modules.

| what | command |
| --- | --- |
| build every stack × profile into `out/` | `berth build` |
| stacks, profiles and services | `berth list` |
| which modules come from berth's library and which from here | `berth list --modules` |
| accept the current output as `golden/` (then commit it) | `berth bless` |
| compare a fresh build with `golden/` (exit 1 on drift; what CI runs) | `berth check` |
| run a stack on this machine's Docker engine | `berth apply --stack {stack} --profile dev` |

- `modules/stacks/{stack}.ncl` is the stack; add one file per stack.
- `berth.toml` names the berth version this project is written for.
- Editor support (the Nickel language server): `export NICKEL_IMPORT_PATH=$(berth library path)`.
";

const CI: &str =
    "# Rebuilds every stack × profile and fails when the output differs from the committed
# golden/. When a change is intended: `berth bless`, read `git diff golden/`, commit it.
name: berth
on: [push, pull_request]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Install berth
        # The series berth.toml names; or `cargo install --locked --git <berth's repository>`.
        run: cargo install --locked berth --version \"^{series}\"
      - name: Compare a fresh build with golden/
        run: berth check
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        for good in ["shop", "a", "my-shop2"] {
            assert!(valid_stack_name(good), "{good}");
        }
        for bad in [
            "",
            "Shop",
            "2shop",
            "shop-",
            "my_shop",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(!valid_stack_name(bad), "{bad}");
        }
    }

    #[test]
    fn files_name_the_stack_and_ci_is_optional() {
        let options = Options {
            stack: "shop".into(),
            ci: false,
        };
        let files = project_files(&options, "0.1.0");
        let stack = &files[&PathBuf::from("modules/stacks/shop.ncl")];
        assert!(stack.contains("database = \"shop\"") && !stack.contains("{stack}"));
        assert!(!files.contains_key(&PathBuf::from(".github/workflows/berth.yml")));
        let with_ci = project_files(
            &Options {
                ci: true,
                ..options
            },
            "0.1.0",
        );
        assert!(
            with_ci[&PathBuf::from(".github/workflows/berth.yml")].contains("run: berth check")
        );
    }
}

//! `berth secrets`: the project's encrypted secrets, `secrets/<profile>.env.age`, managed
//! without ever showing a value or taking one on the command line (where `ps` and shell
//! history would keep it).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::Outcome;
use crate::Error;
use crate::apply::ApplyError;
use crate::apply::secrets::{self, Identity};

/// Manage a profile's encrypted secrets (age): list their names, set one from stdin, or
/// edit the whole file in $EDITOR. apply, plan and rollback read them with the same
/// identity.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  berth secrets list --profile prod-lite\n  printf %s \"$TOKEN\" | berth secrets set API_TOKEN --profile prod-lite --identity ~/.config/berth/age.key\n  berth secrets edit --profile prod-lite"
)]
pub struct Secrets {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// The names the file holds, never their values.
    List(Common),
    /// Set one secret to the value read from stdin (one trailing newline is dropped).
    Set {
        /// The variable's name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Decrypt into a private temporary file, open $EDITOR on it, encrypt the result.
    Edit(Common),
}

#[derive(Debug, Args)]
struct Common {
    /// The profile the secrets are for (`none` for --no-profile).
    #[arg(long, value_name = "NAME")]
    profile: String,
    /// The age identity [default: $BERTH_AGE_IDENTITY, a key or the path of a key file].
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

impl Common {
    fn open(&self, root: &Path) -> Result<(PathBuf, Identity, BTreeMap<String, String>), Error> {
        let identity = Identity::load(self.identity.as_deref())?.ok_or_else(|| {
            ApplyError::Secrets(
                "no age identity\nhint: pass --identity FILE or set BERTH_AGE_IDENTITY (`age-keygen -o key.txt` makes one)".into(),
            )
        })?;
        let path = secrets::vault_path(root, &self.profile);
        let values = secrets::read_vault(&path, Some(&identity))?;
        Ok((path, identity, values))
    }
}

impl Secrets {
    pub fn run(self, root: &Path) -> Result<Outcome, Error> {
        match self.action {
            Action::List(common) => {
                let (_, _, values) = common.open(root)?;
                for name in values.keys() {
                    say!("{name}");
                }
            }
            Action::Set { name, common } => {
                if !crate::model::text::is_variable_name(&name) {
                    return Err(
                        ApplyError::Secrets(format!("`{name}` is not a variable name")).into(),
                    );
                }
                let (path, identity, mut values) = common.open(root)?;
                let mut value = String::new();
                std::io::stdin().read_to_string(&mut value).map_err(|e| {
                    ApplyError::Secrets(format!("reading the value from stdin: {e}"))
                })?;
                let value = value.strip_suffix('\n').unwrap_or(&value);
                let value = value.strip_suffix('\r').unwrap_or(value);
                values.insert(name.clone(), value.to_string());
                secrets::write_vault(root, &path, &identity, &values)?;
                say!("set {name} in {}", path.display());
            }
            Action::Edit(common) => {
                let (path, identity, values) = common.open(root)?;
                let edited = edit(&values)?;
                secrets::write_vault(root, &path, &identity, &edited)?;
                say!("{}: {} secrets", path.display(), edited.len());
            }
        }
        Ok(Outcome::Done)
    }
}

/// The values after the user edited them in $EDITOR, in a folder only they can read (in
/// memory, /dev/shm, where there is one), removed when done.
fn edit(values: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Error> {
    let fail = |message: String| Error::from(ApplyError::Secrets(message));
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("berth-secrets-");
    let dir = if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
    .map_err(|e| fail(format!("a private folder to edit in: {e}")))?;
    let file = dir.path().join("secrets.env");
    let text: String = values
        .iter()
        .map(|(name, value)| format!("{name}={}\n", secrets::quote(value)))
        .collect();
    std::fs::write(&file, text).map_err(|e| fail(e.to_string()))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut words = shell_words::split(&editor).map_err(|e| fail(format!("$EDITOR: {e}")))?;
    if words.is_empty() {
        words.push("vi".into());
    }
    let status = std::process::Command::new(&words[0])
        .args(&words[1..])
        .arg(&file)
        .status()
        .map_err(|e| fail(format!("running {editor}: {e}")))?;
    if !status.success() {
        return Err(fail(format!(
            "{editor} exited with {status}; nothing was changed"
        )));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| fail(e.to_string()))?;
    crate::env_file::parse(&text).map_err(|(line, message)| {
        fail(format!(
            "the edited file, line {line}: {message}; nothing was changed"
        ))
    })
}

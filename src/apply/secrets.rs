//! Secret values exist only while berth runs: they come from the environment, the env
//! file or the project's encrypted `secrets/<profile>.env.age`, and everything berth
//! keeps (generations, plans, logs, container labels) holds a placeholder and a keyed
//! digest in their place.
//!
//! Why HMAC with a key kept outside the state folder, not a salted hash: a salt stored
//! beside the digest only defeats precomputed tables, and a six-letter password falls to
//! a brute force of the salted hash in seconds. The HMAC key is derived from the age
//! identity when one is in use (everyone who may decrypt the secrets holds it, so their
//! digests agree), else it is a random per-user key in berth's config folder. Reading the
//! state folder alone, or a copy of it, reveals nothing about a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::ApplyError;
use super::spec::hex;

/// What stands in a spec where a secret's value would be: NUL cannot occur in an
/// environment value or an argument, so no real text is ever mistaken for one.
pub fn placeholder(name: &str) -> String {
    format!("\u{0}secret:{name}\u{0}")
}

/// The secret name of variable `key` of a service's env file at `path` (relative to the
/// project): env files hold passwords as often as not, so their values are kept as no
/// other secret's value is, and read again from the file when a generation runs again.
pub fn env_file_secret(path: &str, key: &str) -> String {
    format!("env_file:{path}:{key}")
}

/// The secret name of a variable a service passes from the deploy environment
/// (`host_environment`): berth cannot know what it holds, so like an env file's values it
/// is kept as a secret is, and read again from the environment when a generation runs
/// again.
pub fn host_secret(name: &str) -> String {
    format!("host:{name}")
}

/// The variable of a name made by [`host_secret`].
pub fn parse_host_secret(name: &str) -> Option<&str> {
    name.strip_prefix("host:")
}

/// The env file and key of a name made by [`env_file_secret`].
pub fn parse_env_file_secret(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("env_file:")?.rsplit_once(':')
}

/// The secret name of a secret variable read from the file at `path` (as the model writes
/// it, relative to the project): like an env file's values, its content is read from the
/// file on each apply and each rollback, and never kept.
pub fn file_secret(path: &str) -> String {
    format!("file:{path}")
}

/// The path of a name made by [`file_secret`].
pub fn parse_file_secret(name: &str) -> Option<&str> {
    name.strip_prefix("file:")
}

/// Where the file of a secret named [`file_secret`] is: a relative path is the project's,
/// where relative bind sources are too.
pub fn secret_file_path(root: &Path, path: &str) -> PathBuf {
    root.join(path.strip_prefix("./").unwrap_or(path))
}

/// The content of a secret file, as the engine will copy it into containers.
///
/// # Errors
/// The file is missing or unreadable, or not UTF-8 text (secret values are text here).
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| {
        "not UTF-8 text: apply carries secret values as text (compose and Quadlet copy any bytes)"
            .to_string()
    })
}

/// The secret names `text`'s placeholders stand for.
pub fn referenced(text: &str) -> Vec<&str> {
    text.split('\u{0}')
        .skip(1)
        .step_by(2)
        .filter_map(|part| part.strip_prefix("secret:"))
        .collect()
}

/// `text` with every placeholder replaced by its value.
///
/// # Errors
/// The name of a secret `value` has no value for.
pub fn reveal<'a>(text: &str, value: &impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
    let mut parts = text.split('\u{0}');
    let mut out = parts.next().unwrap_or_default().to_string();
    while let Some(inside) = parts.next() {
        match inside.strip_prefix("secret:") {
            Some(name) => out.push_str(value(name).ok_or_else(|| name.to_string())?),
            None => {
                out.push('\u{0}');
                out.push_str(inside);
            }
        }
        if let Some(after) = parts.next() {
            out.push_str(after);
        }
    }
    Ok(out)
}

/// The age identity that opens `secrets/<profile>.env.age`.
pub struct Identity(age::x25519::Identity);

impl Identity {
    /// `--identity FILE`, else `$BERTH_AGE_IDENTITY` (a key, or the path of a key file);
    /// `None` when neither is given.
    ///
    /// # Errors
    /// The file cannot be read or holds no age secret key.
    pub fn load(explicit: Option<&Path>) -> Result<Option<Identity>, ApplyError> {
        let (text, origin) = match explicit {
            Some(path) => (read(path)?, path.display().to_string()),
            None => match std::env::var("BERTH_AGE_IDENTITY") {
                Ok(key) if key.trim_start().starts_with("AGE-SECRET-KEY-") => {
                    (key, "$BERTH_AGE_IDENTITY".into())
                }
                Ok(path) if !path.is_empty() => (
                    read(Path::new(&path))?,
                    format!("{path} ($BERTH_AGE_IDENTITY)"),
                ),
                _ => return Ok(None),
            },
        };
        text.lines()
            .map(str::trim)
            .find(|line| line.starts_with("AGE-SECRET-KEY-"))
            .and_then(|line| line.parse().ok())
            .map(|identity| Some(Identity(identity)))
            .ok_or_else(|| {
                ApplyError::Secrets(format!(
                    "{origin}: no age secret key (a line AGE-SECRET-KEY-1…)\nhint: `age-keygen -o key.txt` makes one"
                ))
            })
    }

    /// The public key files are encrypted to.
    pub fn recipient(&self) -> String {
        self.0.to_public().to_string()
    }
}

/// The encrypted secrets of a profile: `secrets/<profile>.env.age` in the project.
pub fn vault_path(root: &Path, profile: &str) -> PathBuf {
    root.join("secrets").join(format!("{profile}.env.age"))
}

/// The variables of an encrypted secrets file; none when there is no such file.
///
/// # Errors
/// The file exists and there is no identity, or it does not open it, or its text is not
/// an env file.
pub fn read_vault(
    path: &Path,
    identity: Option<&Identity>,
) -> Result<BTreeMap<String, String>, ApplyError> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let fail = |message: String| ApplyError::Secrets(format!("{}: {message}", path.display()));
    let identity = identity.ok_or_else(|| {
        fail("encrypted, and no age identity to open it\nhint: pass --identity FILE or set BERTH_AGE_IDENTITY".into())
    })?;
    let ciphertext = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let plaintext = age::decrypt(&identity.0, &ciphertext).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(plaintext).map_err(|_| fail("not UTF-8 text".into()))?;
    crate::env_file::parse(&text).map_err(|(line, message)| fail(format!("line {line}: {message}")))
}

/// Encrypts `values` as env-file text to the identity and to every public key listed in
/// `secrets/recipients` (one a line, `#` comments), so a team shares one file.
///
/// # Errors
/// A recipient that is not an age public key, or the file cannot be written.
pub fn write_vault(
    root: &Path,
    path: &Path,
    identity: &Identity,
    values: &BTreeMap<String, String>,
) -> Result<(), ApplyError> {
    let fail = |message: String| ApplyError::Secrets(format!("{}: {message}", path.display()));
    let mut recipients = vec![identity.0.to_public()];
    let listed = root.join("secrets").join("recipients");
    if listed.exists() {
        let text = read(&listed)?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            recipients.push(line.parse().map_err(|e: &str| {
                ApplyError::Secrets(format!("{}: `{line}`: {e}", listed.display()))
            })?);
        }
    }
    let text: String = values
        .iter()
        .map(|(name, value)| format!("{name}={}\n", quote(value)))
        .collect();
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| fail(e.to_string()))?;
    let mut ciphertext = Vec::new();
    let mut writer = encryptor
        .wrap_output(&mut ciphertext)
        .map_err(|e| fail(e.to_string()))?;
    std::io::Write::write_all(&mut writer, text.as_bytes()).map_err(|e| fail(e.to_string()))?;
    writer.finish().map_err(|e| fail(e.to_string()))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    // Written beside and renamed, so an interrupted write never loses the secrets.
    let staging = path.with_extension("age.tmp");
    std::fs::write(&staging, ciphertext).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&staging, path).map_err(|e| fail(e.to_string()))
}

/// A value as an env file line reads it back unchanged: single quotes are literal.
pub fn quote(value: &str) -> String {
    if value.contains('\'') || value.contains('\n') {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .replace('$', "$$");
        format!("\"{escaped}\"")
    } else {
        format!("'{value}'")
    }
}

/// The key secret digests are made with.
pub struct DigestKey([u8; 32]);

impl DigestKey {
    /// Derived from the identity when there is one, else this user's own random key
    /// (made on first use when `create`; a throw-away one otherwise, so `plan` writes
    /// nothing).
    ///
    /// # Errors
    /// The key file cannot be read or written.
    pub fn load(identity: Option<&Identity>, create: bool) -> Result<DigestKey, ApplyError> {
        if let Some(identity) = identity {
            use age::secrecy::ExposeSecret;
            let mut hasher = Sha256::new();
            hasher.update(b"berth secret digest key\0");
            hasher.update(identity.0.to_string().expose_secret().as_bytes());
            return Ok(DigestKey(hasher.finalize().into()));
        }
        let path = key_file();
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(DigestKey(key));
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| ApplyError::Secrets(format!("no randomness for a digest key: {e}")))?;
        if create {
            store_key(&path, &key)?;
        }
        Ok(DigestKey(key))
    }

    /// `hmac-sha256:` and the first 128 bits of HMAC-SHA256(key, name NUL value).
    pub fn digest(&self, name: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        format!("hmac-sha256:{}", &hex(&mac.finalize().into_bytes())[..32])
    }
}

/// `$XDG_CONFIG_HOME/berth/digest.key`, else `~/.config/berth/digest.key`.
fn key_file() -> PathBuf {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    from_env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| from_env("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".berth-config"))
        .join("berth")
        .join("digest.key")
}

fn store_key(path: &Path, key: &[u8; 32]) -> Result<(), ApplyError> {
    let fail = |e: std::io::Error| ApplyError::Secrets(format!("{}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => std::io::Write::write_all(&mut file, key).map_err(fail),
        // Another berth made it first: theirs counts.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

fn read(path: &Path) -> Result<String, ApplyError> {
    std::fs::read_to_string(path)
        .map_err(|e| ApplyError::Secrets(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_revealed() {
        let text = format!("a={} b={}!", placeholder("A"), placeholder("B"));
        assert_eq!(referenced(&text), ["A", "B"]);
        let values = |name: &str| match name {
            "A" => Some("1"),
            "B" => Some("two"),
            _ => None,
        };
        assert_eq!(reveal(&text, &values).as_deref(), Ok("a=1 b=two!"));
        assert_eq!(reveal(&placeholder("C"), &values), Err("C".to_string()));
        assert_eq!(reveal("plain", &values).as_deref(), Ok("plain"));
    }

    #[test]
    fn digests_are_keyed_and_name_the_secret() {
        let one = DigestKey([1; 32]);
        let two = DigestKey([2; 32]);
        assert_ne!(one.digest("A", "x"), two.digest("A", "x"));
        assert_ne!(one.digest("A", "x"), one.digest("B", "x"));
        assert_eq!(one.digest("A", "x"), one.digest("A", "x"));
        assert!(!one.digest("A", "secret").contains("secret:"));
    }

    #[test]
    fn quoted_values_read_back_unchanged() {
        for value in [
            "plain",
            "with space",
            "it's",
            "a\"b'c$d\\e",
            "line\nbreak",
            "${X}",
        ] {
            let text = format!("K={}\n", quote(value));
            let parsed = crate::env_file::parse(&text).expect("parses");
            assert_eq!(parsed["K"], value, "{text}");
        }
    }
}

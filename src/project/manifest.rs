//! `berth.toml`, the optional file where a project states the berth version it is written
//! for. A project for another major version (another minor below 1.0, as cargo reads
//! versions) is refused before evaluation, so the user sees the version, not a contract
//! failure from a changed schema.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Diagnostic, LoadError, Location};

/// The file's name in the project root.
pub const FILE: &str = "berth.toml";

/// Checks `root/berth.toml` against `running` (berth's own version); no file is fine.
///
/// # Errors
/// `Manifest` naming `berth.toml:line:col` for unreadable TOML, an unknown key, a version
/// that is not `MAJOR.MINOR[.PATCH]`, or one this berth cannot build.
pub fn check(root: &Path, running: &str) -> Result<(), LoadError> {
    let path = root.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(LoadError::Io { path, source }),
    };
    let manifest: Manifest = toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or(0, |span| span.start);
        problem(
            &text,
            at,
            "berth.toml",
            e.message().trim().to_string(),
            None,
        )
    })?;
    let wanted = manifest.berth.get_ref();
    let at = manifest.berth.span().start;
    let invalid = || {
        problem(
            &text,
            at,
            "berth",
            format!("`{wanted}` is not a version"),
            Some("write the version as MAJOR.MINOR, e.g. berth = \"0.1\"".into()),
        )
    };
    let wanted_version = Version::parse(wanted).ok_or_else(invalid)?;
    let running_version = Version::parse(running).ok_or_else(invalid)?;
    match compatibility(wanted_version, running_version) {
        Compatibility::Yes => Ok(()),
        Compatibility::OtherSeries => Err(problem(
            &text,
            at,
            "berth",
            format!(
                "this project is written for berth {wanted}, and this is berth {running}: \
                 its library (schemas, modules, profiles) may differ"
            ),
            Some(format!(
                "install berth {wanted} (`cargo install berth --version ^{wanted}`), or port the project and set berth = \"{}\"",
                running_version.series()
            )),
        )),
        Compatibility::TooOld => Err(problem(
            &text,
            at,
            "berth",
            format!("this project needs berth {wanted} or newer, and this is berth {running}"),
            Some(format!(
                "install a newer berth (`cargo install berth --version ^{wanted}`)"
            )),
        )),
    }
}

/// The text `berth init` writes.
pub fn template(running: &str) -> String {
    let series = series(running);
    format!(
        "# The berth version this project is written for. Another major version (another\n\
         # minor before 1.0) refuses to build it instead of misreading it.\nberth = \"{series}\"\n"
    )
}

/// The releases compatible with `version`, as cargo reads them: `0.1` for 0.1.x, `1` for 1.x.
pub fn series(version: &str) -> String {
    Version::parse(version).map_or_else(|| version.to_string(), Version::series)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    berth: toml::Spanned<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Compatibility {
    Yes,
    /// Another major version, or another minor before 1.0.
    OtherSeries,
    /// The same series, but berth is older than the project asks.
    TooOld,
}

impl Version {
    /// `1`, `1.2` or `1.2.3`; a pre-release or build suffix on the patch is ignored.
    fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().splitn(3, '.');
        let number = |part: Option<&str>| -> Option<u64> {
            match part {
                None => Some(0),
                Some(part) => {
                    let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                    let rest_ok =
                        digits.len() == part.len() || part[digits.len()..].starts_with(['-', '+']);
                    if digits.is_empty() || !rest_ok {
                        None
                    } else {
                        digits.parse().ok()
                    }
                }
            }
        };
        let major = parts.next().and_then(|part| number(Some(part)))?;
        let minor = number(parts.next())?;
        let patch = number(parts.next())?;
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    /// What cargo treats as compatible releases: `1` for 1.x, `0.3` for 0.3.x.
    fn series(self) -> String {
        if self.major == 0 {
            format!("0.{}", self.minor)
        } else {
            self.major.to_string()
        }
    }
}

fn compatibility(wanted: Version, running: Version) -> Compatibility {
    let same_series =
        wanted.major == running.major && (wanted.major > 0 || wanted.minor == running.minor);
    if !same_series {
        Compatibility::OtherSeries
    } else if running < wanted {
        Compatibility::TooOld
    } else {
        Compatibility::Yes
    }
}

/// A problem at byte `at` of `berth.toml`.
fn problem(text: &str, at: usize, field: &str, message: String, hint: Option<String>) -> LoadError {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let mut diagnostic = Diagnostic::new(field, message);
    diagnostic.location = Some(Location {
        file: FILE.into(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    });
    diagnostic.hint = hint;
    LoadError::Manifest(diagnostic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_with(text: &str, running: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(FILE), text).expect("write");
        check(dir.path(), running).map_err(|e| e.to_string())
    }

    #[test]
    fn same_series_builds_and_others_are_refused() {
        assert_eq!(check_with("berth = \"0.1\"\n", "0.1.4"), Ok(()));
        assert_eq!(check_with("berth = \"1.2\"\n", "1.7.0"), Ok(()));
        let other = check_with("# pinned\nberth = \"0.2\"\n", "0.1.0").expect_err("0.2 on 0.1");
        assert!(
            other.starts_with("berth.toml:2:9: berth: this project is written for berth 0.2"),
            "{other}"
        );
        let major = check_with("berth = \"2.0\"\n", "1.9.0").expect_err("2 on 1");
        assert!(major.contains("set berth = \"1\""), "{major}");
        let old = check_with("berth = \"1.4\"\n", "1.3.9").expect_err("1.4 on 1.3");
        assert!(old.contains("needs berth 1.4 or newer"), "{old}");
    }

    #[test]
    fn bad_files_name_their_line() {
        let unknown =
            check_with("berth = \"0.1\"\nname = \"x\"\n", "0.1.0").expect_err("unknown key");
        assert!(
            unknown.starts_with("berth.toml:2:1: berth.toml: unknown field `name`"),
            "{unknown}"
        );
        let garbage = check_with("berth = \"zero\"\n", "0.1.0").expect_err("not a version");
        assert!(
            garbage.starts_with("berth.toml:1:9: berth: `zero` is not a version"),
            "{garbage}"
        );
        assert!(
            check_with("", "0.1.0")
                .expect_err("missing")
                .contains("missing field `berth`")
        );
    }

    #[test]
    fn template_pins_the_running_series() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(FILE), template("0.1.0")).expect("write");
        assert!(template("0.1.0").contains("berth = \"0.1\""));
        assert!(check(dir.path(), "0.1.0").is_ok());
        assert!(check(dir.path(), "0.2.0").is_err());
    }
}

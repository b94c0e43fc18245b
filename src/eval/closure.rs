//! Everything an evaluation may read, found without evaluating: the import closure of a
//! stack with a profile, and for each `import` every place Nickel looks before the file it
//! finds (the importing file's folder, then the import path, in that order), so that a
//! file added where an import would now resolve changes the digest too. The scan is
//! lexical and errs on the side of more: any `import "…"` in the text counts, in a
//! comment or a string as well, which can only make the digest depend on more files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::project::{ProfileRef, Project, StackRef};

/// Files read so far in this run, shared by the targets of a build: each file is read and
/// hashed once however many stacks import it.
#[derive(Debug, Default)]
pub struct Reads {
    files: Mutex<BTreeMap<PathBuf, Arc<Read>>>,
}

/// One file as Nickel would find it.
#[derive(Debug)]
struct Read {
    /// SHA-256 of the bytes; `None` when the file cannot be read (Nickel looks further).
    digest: Option<[u8; 32]>,
    /// The paths it imports; `None` when an import could not be read lexically.
    imports: Option<Vec<String>>,
}

/// A digest of every input of evaluating `stack` with `profile`: the expression berth
/// evaluates, the import path, and the state (bytes, or unreadable) of every file Nickel
/// reads or looks for on the way. `None` when an import cannot be followed lexically: the
/// result must then not be reused.
pub fn digest(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    reads: &Reads,
) -> Option<[u8; 32]> {
    let main_path = super::main_path(project);
    let main = super::main_source(stack, profile);
    let import_paths: Vec<PathBuf> = project.import_paths().iter().map(|p| absolute(p)).collect();
    let mut probes: BTreeMap<PathBuf, Option<[u8; 32]>> = BTreeMap::new();
    let mut visited = BTreeSet::new();
    let mut queue = vec![(main_path.clone(), imports(main.as_bytes())?)];
    while let Some((file, imported)) = queue.pop() {
        let folder = file.parent().map(Path::to_path_buf).unwrap_or_default();
        for import in imported {
            let candidates = std::iter::once(&folder).chain(&import_paths);
            for base in candidates {
                let candidate = normalize(&base.join(&import));
                let read = reads.read(&candidate);
                probes.insert(candidate.clone(), read.digest);
                if read.digest.is_some() {
                    if visited.insert(candidate.clone()) {
                        queue.push((candidate, read.imports.clone()?));
                    }
                    break;
                }
            }
        }
    }
    let mut hasher = Sha256::new();
    for part in [main_path.as_os_str().as_encoded_bytes(), main.as_bytes()] {
        hasher.update(part);
        hasher.update([0]);
    }
    for dir in &import_paths {
        hasher.update(dir.as_os_str().as_encoded_bytes());
        hasher.update([0]);
    }
    for (path, state) in &probes {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(state.map_or([0; 33].to_vec(), |d| [&[1][..], &d].concat()));
    }
    Some(hasher.finalize().into())
}

impl Reads {
    fn read(&self, path: &Path) -> Arc<Read> {
        if let Some(read) = lock(&self.files).get(path) {
            return Arc::clone(read);
        }
        let read = Arc::new(match std::fs::read(path) {
            Ok(bytes) => Read {
                digest: Some(Sha256::digest(&bytes).into()),
                imports: imports(&bytes),
            },
            Err(_) => Read {
                digest: None,
                imports: Some(Vec::new()),
            },
        });
        lock(&self.files).insert(path.to_path_buf(), Arc::clone(&read));
        read
    }
}

/// Every `import "path"` in `text`: the keyword (not part of a longer identifier), then
/// blanks and comments, then a string. `None` when such a string uses an escape this scan
/// does not decode, as the path it names would be unknown.
fn imports(text: &[u8]) -> Option<Vec<String>> {
    const KEYWORD: &[u8] = b"import";
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = find(&text[from..], KEYWORD) {
        let after = from + offset + KEYWORD.len();
        from = after;
        if text
            .get(after)
            .is_some_and(|&byte| is_identifier_byte(byte))
        {
            continue;
        }
        let start = skip_blanks_and_comments(text, after);
        if text.get(start) != Some(&b'"') {
            continue;
        }
        match string_at(text, start + 1) {
            Literal::Static(path) => found.push(path),
            Literal::Unknown => return None,
            Literal::NotStatic => {}
        }
    }
    Some(found)
}

/// What a `"…"` literal holds.
enum Literal {
    Static(String),
    /// Interpolated, or never closed: no import can be written so.
    NotStatic,
    /// Uses an escape this scan does not decode.
    Unknown,
}

/// The string literal whose text begins at `start` (after its opening quote).
fn string_at(text: &[u8], start: usize) -> Literal {
    let mut bytes = Vec::new();
    let mut i = start;
    while let Some(&byte) = text.get(i) {
        match byte {
            b'"' => return Literal::Static(String::from_utf8_lossy(&bytes).into_owned()),
            b'%' if text.get(i + 1) == Some(&b'{') => return Literal::NotStatic,
            b'\\' => {
                let escaped = match text.get(i + 1) {
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(b't') => b'\t',
                    Some(&other @ (b'\'' | b'"' | b'\\' | b'%')) => other,
                    _ => return Literal::Unknown,
                };
                bytes.push(escaped);
                i += 2;
                continue;
            }
            _ => bytes.push(byte),
        }
        i += 1;
    }
    Literal::NotStatic
}

fn skip_blanks_and_comments(text: &[u8], mut i: usize) -> usize {
    while let Some(&byte) = text.get(i) {
        if byte == b'#' {
            while text.get(i).is_some_and(|&byte| byte != b'\n') {
                i += 1;
            }
        } else if byte.is_ascii_whitespace() {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Bytes that continue a Nickel identifier (`import-x` and `imports` are not the keyword).
fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'\'')
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `path` made absolute and with `.` and `..` resolved lexically, as Nickel names the
/// files it loads (it does not resolve symlinks either).
fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in absolute(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: Option<&[&str]>) {
        let found = imports(text.as_bytes());
        let expect = expect.map(|paths| paths.iter().map(|p| (*p).to_string()).collect());
        assert_eq!(found, expect, "{text}");
    }

    #[test]
    fn finds_every_import_in_code_comments_and_interpolations() {
        check(
            "let a = import \"a.ncl\" in\nlet b = import # why\n  \"b\\\"c.ncl\" in\n# import \"c.ncl\"\n",
            Some(&["a.ncl", "b\"c.ncl", "c.ncl"]),
        );
        check(
            "{ x = \"v%{import \"d.ncl\"}\", y = \"an import \\\"e.ncl\\\" in text\" }",
            Some(&["d.ncl"]),
        );
        check("import \"e.json\" as 'Json", Some(&["e.json"]));
    }

    #[test]
    fn skips_what_is_no_import() {
        check(
            "let imports = 1 in import-x \"a\" + import y + \"%{import}\"",
            Some(&[]),
        );
        check("import \"unterminated", Some(&[]));
    }

    #[test]
    fn an_escape_it_cannot_decode_makes_the_closure_unknown() {
        check("import \"\\x41.ncl\"", None);
    }

    #[test]
    fn normalizes_like_nickel() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d.ncl")),
            PathBuf::from("/a/c/d.ncl")
        );
    }
}

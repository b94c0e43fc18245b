//! A berth project on disk: `modules/stacks/` under one root, and optionally its own
//! `schemas/`, `modules/services/` and `profiles/`, which win over berth's embedded library
//! file by file. Finds stacks, profiles and modules by name; reads nothing else.

pub mod manifest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::library;

/// A project root, with the library folder its imports fall back to.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
    library: PathBuf,
}

/// Where a module or profile comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Project,
    /// The project's file of that name replaces the library's.
    ProjectShadowingLibrary,
    Library,
}

/// A file importable by name (`berth.ncl`, `services/postgres.ncl`), or a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEntry {
    pub name: String,
    pub origin: Origin,
    pub path: PathBuf,
}

/// A stack module: `modules/stacks/<name>.ncl`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackRef {
    pub name: String,
    pub path: PathBuf,
}

/// A profile overlay: `profiles/<name>.ncl`, or none at all (`--no-profile`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProfileRef {
    File { name: String, path: PathBuf },
    None,
}

/// The name berth uses for a build without a profile overlay.
pub const NO_PROFILE: &str = "none";

impl ProfileRef {
    pub fn name(&self) -> &str {
        match self {
            ProfileRef::File { name, .. } => name,
            ProfileRef::None => NO_PROFILE,
        }
    }
}

impl Project {
    /// Opens the project at `root`: checks `berth.toml` (if any) against this berth and
    /// materialises the embedded library in the cache.
    ///
    /// # Errors
    /// `NotAProject` without `modules/stacks/`; `Manifest` when `berth.toml` is bad or
    /// asks for another berth; `Library` when the cache cannot be written.
    pub fn open(root: &Path) -> Result<Project, LoadError> {
        let root = std::path::absolute(root).map_err(|source| LoadError::Io {
            path: root.into(),
            source,
        })?;
        let missing = "modules/stacks";
        if !root.join(missing).is_dir() {
            return Err(LoadError::NotAProject { root, missing });
        }
        manifest::check(&root, library::VERSION)?;
        let library = library::materialise().map_err(LoadError::Library)?;
        Ok(Project { root, library })
    }

    /// The project at `root` with its library at `library`, as a parent berth process
    /// opened them (the child that evaluates for it checks and writes nothing again).
    pub fn opened(root: &Path, library: &Path) -> Project {
        Project {
            root: root.to_path_buf(),
            library: library.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The text of a template a stack names, relative to the project root, or a library
    /// template, `berth:` then its path inside the library (as the nginx module names its
    /// configuration's), read from the project's vendored library first.
    ///
    /// # Errors
    /// The file is missing, unreadable, not UTF-8, or outside the project (the library).
    pub fn read_template(&self, relative: &str) -> Result<String, String> {
        let (base, path) = match relative.strip_prefix(crate::library::PREFIX) {
            // A vendored copy of the library in the project wins, as its modules do.
            Some(inside) if self.root.join(inside).is_file() => (&self.root, Path::new(inside)),
            Some(inside) => (&self.library, Path::new(inside)),
            None => (&self.root, Path::new(relative)),
        };
        if path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "template `{relative}` is outside the project: give a path below its root"
            ));
        }
        std::fs::read_to_string(base.join(path))
            .map_err(|e| format!("cannot read template `{relative}`: {e}"))
    }

    /// The folder holding berth's library for this run (`berth library path`).
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Folders searched by `import "x.ncl"` after the importing file's own folder: the
    /// project's first, so its files win over the library's of the same name.
    pub fn import_paths(&self) -> Vec<PathBuf> {
        import_paths(&self.root, &self.library)
    }

    /// Folders holding schemas, the project's first.
    pub fn schema_dirs(&self) -> Vec<PathBuf> {
        vec![self.root.join("schemas"), self.library.join("schemas")]
    }

    /// Every module importable by name with where it comes from: schemas (`berth.ncl`),
    /// then service modules (`services/postgres.ncl`), each sorted by name.
    ///
    /// # Errors
    /// When a folder of the project cannot be read.
    pub fn modules(&self) -> Result<Vec<ModuleEntry>, LoadError> {
        let mut entries = Vec::new();
        for (dir, strip) in [("schemas", "schemas"), ("modules/services", "modules")] {
            let library = named_files(&self.library, dir, strip)?;
            let project = named_files(&self.root, dir, strip)?;
            entries.extend(overlay(library, project));
        }
        Ok(entries)
    }

    /// Every profile with where it comes from, named without `.ncl`, sorted by name.
    ///
    /// # Errors
    /// When `profiles/` cannot be read.
    pub fn profile_entries(&self) -> Result<Vec<ModuleEntry>, LoadError> {
        let library = named_files(&self.library, "profiles", "profiles")?;
        let project = named_files(&self.root, "profiles", "profiles")?;
        let mut entries: Vec<ModuleEntry> = overlay(library, project)
            .into_iter()
            .map(|entry| ModuleEntry {
                name: entry.name.trim_end_matches(".ncl").to_string(),
                ..entry
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Every stack, sorted by name.
    ///
    /// # Errors
    /// When `modules/stacks/` cannot be read.
    pub fn stacks(&self) -> Result<Vec<StackRef>, LoadError> {
        let entries = ncl_files(&self.root.join("modules/stacks"))?;
        Ok(entries
            .into_iter()
            .map(|(name, path)| StackRef { name, path })
            .collect())
    }

    /// Every profile, sorted by name: the library's, each replaced by the project's
    /// `profiles/<name>.ncl` when there is one, and the project's own.
    ///
    /// # Errors
    /// When `profiles/` cannot be read.
    pub fn profiles(&self) -> Result<Vec<ProfileRef>, LoadError> {
        Ok(self
            .profile_entries()?
            .into_iter()
            .map(|ModuleEntry { name, path, .. }| ProfileRef::File { name, path })
            .collect())
    }

    /// The stacks named, or all of them when `names` is empty.
    ///
    /// # Errors
    /// `UnknownStack` naming the stacks that do exist.
    pub fn select_stacks(&self, names: &[String]) -> Result<Vec<StackRef>, LoadError> {
        let all = self.stacks()?;
        let selected = select(
            all,
            names,
            |stack| &stack.name,
            |name, known| LoadError::UnknownStack {
                name,
                dir: self.root.join("modules/stacks"),
                known,
            },
        )?;
        selected
            .iter()
            .try_for_each(|stack| self.check_stack_name(stack))?;
        Ok(selected)
    }

    /// A build must build something: an empty `modules/stacks/` or `profiles/` would
    /// otherwise replace the previous output with nothing, without a word.
    ///
    /// # Errors
    /// `NothingToBuild` naming the empty folder.
    pub fn require_something(
        &self,
        stacks: &[StackRef],
        profiles: &[ProfileRef],
    ) -> Result<(), LoadError> {
        if stacks.is_empty() {
            return Err(LoadError::NothingToBuild {
                dir: self
                    .relative(&self.root.join("modules/stacks"))
                    .to_path_buf(),
                hint: "add a stack module, e.g. with `berth import docker-compose.yml`",
            });
        }
        if profiles.is_empty() {
            return Err(LoadError::NothingToBuild {
                dir: self.relative(&self.root.join("profiles")).to_path_buf(),
                hint: "add a profile, or pass --no-profile to build without one",
            });
        }
        Ok(())
    }

    /// A stack's file name is its name, which lands in artifact paths, unit names and the
    /// headers that point back at the file; only names every backend can carry are built.
    fn check_stack_name(&self, stack: &StackRef) -> Result<(), LoadError> {
        if is_valid_name(&stack.name) {
            return Ok(());
        }
        let mut suggestion = normalized_name(&stack.name);
        if suggestion.is_empty() {
            suggestion = "stack".to_string();
        }
        Err(LoadError::BadStackName {
            path: self.relative(&stack.path).to_path_buf(),
            stem: stack.name.clone(),
            suggestion,
        })
    }

    /// The profiles named, or all of them when `names` is empty.
    ///
    /// # Errors
    /// `UnknownProfile` naming the profiles that do exist.
    pub fn select_profiles(&self, names: &[String]) -> Result<Vec<ProfileRef>, LoadError> {
        let all = self.profiles()?;
        select(
            all,
            names,
            |profile| profile.name(),
            |name, known| LoadError::UnknownProfile {
                name,
                dir: self.root.join("profiles"),
                known,
            },
        )
    }

    /// `path` as users should read it: relative to the project root when it lies inside
    /// it, `berth:schemas/service.ncl` for a library file, else as it is.
    pub fn relative(&self, path: &Path) -> PathBuf {
        if let Ok(inside) = path.strip_prefix(&self.library) {
            return PathBuf::from(format!("{}{}", library::PREFIX, inside.display()));
        }
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    /// `text` (a Nickel report) with absolute paths written as [`Project::relative`] does.
    pub fn shorten_paths(&self, text: &str) -> String {
        let prefix = |dir: &Path| {
            let mut dir = dir.to_string_lossy().into_owned();
            dir.push('/');
            dir
        };
        // The library first: the cache may lie inside the project (BERTH_CACHE_DIR).
        text.replace(&prefix(&self.library), library::PREFIX)
            .replace(&prefix(&self.root), "")
    }
}

/// The import path of the project at `root` with the library at `library`: the project's
/// `schemas/` and `modules/`, then the library's (`berth library path` prints it).
pub fn import_paths(root: &Path, library: &Path) -> Vec<PathBuf> {
    vec![
        root.join("schemas"),
        root.join("modules"),
        library.join("schemas"),
        library.join("modules"),
    ]
}

/// `(import name, path)` of the `.ncl` files in `base/dir`, named relative to `base/strip`
/// (`modules/services/x.ncl` is imported as `services/x.ncl`); none when `dir` is missing.
fn named_files(base: &Path, dir: &str, strip: &str) -> Result<Vec<(String, PathBuf)>, LoadError> {
    let folder = base.join(dir);
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let prefix = Path::new(dir).strip_prefix(strip).unwrap_or(Path::new(""));
    Ok(ncl_files(&folder)?
        .into_iter()
        .map(|(stem, path)| {
            let name = prefix
                .join(format!("{stem}.ncl"))
                .to_string_lossy()
                .into_owned();
            (name, path)
        })
        .collect())
}

/// The library's entries with the project's laid over them, sorted by name.
fn overlay(library: Vec<(String, PathBuf)>, project: Vec<(String, PathBuf)>) -> Vec<ModuleEntry> {
    let mut entries: BTreeMap<String, ModuleEntry> = library
        .into_iter()
        .map(|(name, path)| {
            let entry = ModuleEntry {
                name: name.clone(),
                origin: Origin::Library,
                path,
            };
            (name, entry)
        })
        .collect();
    for (name, path) in project {
        let origin = if entries.contains_key(&name) {
            Origin::ProjectShadowingLibrary
        } else {
            Origin::Project
        };
        entries.insert(name.clone(), ModuleEntry { name, origin, path });
    }
    entries.into_values().collect()
}

/// A name berth accepts for stacks, services, volumes and networks (the `Name` contract
/// of schemas/contracts.ncl): lower-case letters, digits, `-` and `_`, not starting with
/// `-` or `_`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `name` made valid as far as possible: lower case, other characters as `-`, leading
/// `-` and `_` dropped (empty when nothing is left).
pub fn normalized_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' | '_' => c,
            _ => '-',
        })
        .collect();
    mapped.trim_start_matches(['-', '_']).to_string()
}

fn select<T: Clone>(
    all: Vec<T>,
    names: &[String],
    name_of: impl Fn(&T) -> &str,
    unknown: impl Fn(String, Vec<String>) -> LoadError,
) -> Result<Vec<T>, LoadError> {
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|wanted| {
            all.iter()
                .find(|item| name_of(item) == wanted)
                .cloned()
                .ok_or_else(|| {
                    unknown(
                        wanted.clone(),
                        all.iter().map(|item| name_of(item).to_string()).collect(),
                    )
                })
        })
        .collect()
}

/// `(stem, path)` of every `*.ncl` file directly in `dir`, sorted by stem.
fn ncl_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, LoadError> {
    let io_error = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let is_ncl = path.extension().is_some_and(|ext| ext == "ncl");
        if let (true, Some(stem)) = (is_ncl, path.file_stem().and_then(|s| s.to_str())) {
            found.push((stem.to_string(), path.clone()));
        }
    }
    found.sort();
    Ok(found)
}

//! Compares a fresh build with the blessed tree in `golden/`. Drift is a result, not an
//! error: the report lists changed files with a unified diff, and missing and extra files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use similar::TextDiff;

/// How a fresh build differs from the golden tree.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Drift {
    /// Files in both whose contents differ, with a unified diff (golden → fresh).
    pub changed: Vec<ChangedFile>,
    /// Files the build makes that golden/ lacks.
    pub missing: Vec<PathBuf>,
    /// Files in golden/ the build no longer makes.
    pub extra: Vec<PathBuf>,
    /// Files that are identical.
    pub unchanged: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: PathBuf,
    pub diff: String,
}

impl Drift {
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }

    /// `N changed, N missing, N extra, N unchanged`.
    pub fn summary(&self) -> String {
        format!(
            "{} changed, {} missing from golden, {} extra in golden, {} unchanged",
            self.changed.len(),
            self.missing.len(),
            self.extra.len(),
            self.unchanged
        )
    }
}

/// Compares `fresh` with `golden`, both keyed by path below the golden root.
/// `golden_label` names the golden folder in diff headers.
pub fn compare(
    golden: &BTreeMap<PathBuf, String>,
    fresh: &BTreeMap<PathBuf, String>,
    golden_label: &Path,
) -> Drift {
    let mut drift = Drift::default();
    for (path, contents) in fresh {
        match golden.get(path) {
            None => drift.missing.push(path.clone()),
            Some(blessed) if blessed == contents => drift.unchanged += 1,
            Some(blessed) => {
                let old = golden_label.join(path).display().to_string();
                let new = format!("build/{}", path.display());
                let diff = TextDiff::from_lines(blessed, contents)
                    .unified_diff()
                    .context_radius(3)
                    .header(&old, &new)
                    .to_string();
                drift.changed.push(ChangedFile {
                    path: path.clone(),
                    diff,
                });
            }
        }
    }
    drift.extra = golden
        .keys()
        .filter(|path| !fresh.contains_key(*path))
        .cloned()
        .collect();
    drift
}

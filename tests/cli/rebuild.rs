//! A build into an existing output folder writes only what changed: files with the same
//! bytes keep their inode and mtime (make and rsync see no change), a changed file is
//! replaced, a stale one removed, and a build that fails midway leaves the old output.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Berth, read_tree, run_in};

const WEB: &str = "fun profile => { services.web.image = \"nginx:1.27-alpine\" }\n";
const WEB_CHANGED: &str = "fun profile => { services.web.image = \"nginx:1.28-alpine\" }\n";

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|arg| (*arg).to_string()).collect()
}

/// (inode, mtime in ns) of every file below `dir`, marker included.
fn stamps(dir: &Path) -> BTreeMap<PathBuf, (u64, i64)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.expect("walk"))
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let metadata = entry.metadata().expect("metadata");
            let stamp = (
                metadata.ino(),
                metadata.mtime() * 1_000_000_000 + metadata.mtime_nsec(),
            );
            let path = entry.path().strip_prefix(dir).expect("inside");
            (path.to_path_buf(), stamp)
        })
        .collect()
}

#[test]
fn a_rebuild_with_nothing_changed_touches_no_file() {
    let (first, dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", WEB)
        .file("modules/stacks/other.ncl", WEB)
        .args(["build", "--out", "out", "--no-cache"])
        .run();
    first.code(0);
    let out = first.root.join("out");
    let before = stamps(&out);
    assert!(before.len() > 20, "{} files", before.len());
    // Coarse timestamps would hide a rewrite within the same tick.
    std::thread::sleep(std::time::Duration::from_millis(20));
    run_in(dir.path(), &args(&["build", "--out", "out", "--no-cache"])).code(0);
    assert_eq!(stamps(&out), before, "a rebuild touched files");
    run_in(dir.path(), &args(&["build", "--out", "out"])).code(0);
    run_in(dir.path(), &args(&["build", "--out", "out"])).code(0);
    assert_eq!(stamps(&out), before, "a cached rebuild touched files");
    let filtered = [
        "build",
        "--out",
        "out",
        "--stack",
        "web",
        "--profile",
        "dev",
    ];
    run_in(dir.path(), &args(&filtered)).code(0);
    assert_eq!(stamps(&out), before, "a filtered rebuild touched files");
}

#[test]
fn a_changed_file_is_replaced_and_a_stale_one_removed() {
    let (first, dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", WEB)
        .file("modules/stacks/other.ncl", WEB)
        .args(["build", "--out", "out"])
        .run();
    first.code(0);
    let out = first.root.join("out");
    let before = stamps(&out);
    std::fs::write(first.root.join("modules/stacks/web.ncl"), WEB_CHANGED).expect("edit");
    std::fs::remove_file(first.root.join("modules/stacks/other.ncl")).expect("remove");
    std::thread::sleep(std::time::Duration::from_millis(20));
    run_in(dir.path(), &args(&["build", "--out", "out"])).code(0);
    let after = stamps(&out);
    let compose = Path::new("web/dev/compose.yaml");
    assert_ne!(after[compose], before[compose], "the changed file was kept");
    let text = std::fs::read_to_string(out.join(compose)).expect("compose");
    assert!(text.contains("nginx:1.28-alpine"), "{text}");
    assert!(
        !out.join("other").exists(),
        "the removed stack's folder stayed"
    );
    let env = Path::new("web/dev/.env.template");
    assert_eq!(after[env], before[env], "an unchanged file was rewritten");
    let marker = std::fs::read_to_string(out.join(".berth-output")).expect("marker");
    assert!(!marker.contains("other/"), "{marker}");
    // The same bytes as a build into a new folder.
    run_in(dir.path(), &args(&["build", "--out", "fresh"])).code(0);
    assert_eq!(read_tree(&out), read_tree(&first.root.join("fresh")));
}

#[test]
fn a_build_that_fails_midway_leaves_the_old_output() {
    let (first, dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", WEB)
        .args(["build", "--out", "out"])
        .run();
    first.code(0);
    let out = first.root.join("out");
    let before = read_tree(&out);
    let before_stamps = stamps(&out);
    std::fs::write(first.root.join("modules/stacks/web.ncl"), WEB_CHANGED).expect("edit");
    // Profiles are written in name order: dev and prod-lite are replaced before staging's
    // folder refuses the change, and must be put back.
    let locked = out.join("web/staging");
    let lock = Lock::folder(&locked);
    let second = run_in(dir.path(), &args(&["build", "--out", "out"]));
    drop(lock);
    second.code(2).stderr_contains("web/staging");
    assert_eq!(
        read_tree(&out),
        before,
        "the failed build changed the output"
    );
    assert_eq!(stamps(&out), before_stamps);
    let leftovers: Vec<String> = std::fs::read_dir(&first.root)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with(".berth"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    run_in(dir.path(), &args(&["build", "--out", "out"])).code(0);
}

/// A folder nothing can be renamed into, until dropped: immutable for root (whom
/// permissions do not stop), read-only for anyone else.
struct Lock(PathBuf, bool);

impl Lock {
    fn folder(dir: &Path) -> Lock {
        let immutable = Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|status| status.success());
        if !immutable {
            let mut permissions = std::fs::metadata(dir).expect("metadata").permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
            std::fs::set_permissions(dir, permissions).expect("chmod");
        }
        Lock(dir.to_path_buf(), immutable)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        } else if let Ok(metadata) = std::fs::metadata(&self.0) {
            let mut permissions = metadata.permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            let _ = std::fs::set_permissions(&self.0, permissions);
        }
    }
}

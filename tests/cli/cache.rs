//! The build cache: a cached build gives the same bytes and the same warnings as an
//! uncached one over every bundled configuration; an edit anywhere in the import closure
//! (a module's import, a file added where an import would now resolve) is seen; a damaged
//! entry is ignored and rebuilt; two builds at once share one cache.

use std::path::{Path, PathBuf};

use crate::support::{Berth, REPO, read_tree, run_in_env};

const WEB: &str = "fun profile => { services.web.image = \"nginx:1.27-alpine\" }\n";

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|arg| (*arg).to_string()).collect()
}

/// Runs berth in `root` with its caches in `cache`.
fn berth(root: &Path, cache: &Path, list: &[&str]) -> crate::support::Output {
    let cache = cache.to_string_lossy();
    run_in_env(root, &args(list), &[("BERTH_CACHE_DIR", &cache)])
}

/// The cache entries below `cache`.
fn entries(cache: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(cache.join("builds"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

fn n_reused(stderr: &str) -> usize {
    stderr.matches("reused from the cache").count()
}

#[test]
fn a_cached_build_is_byte_identical_for_every_bundled_configuration() {
    let cache = tempfile::tempdir().expect("cache dir");
    let (plain, dir) = Berth::bundled()
        .args(["build", "--no-cache", "--out", "plain"])
        .run();
    plain.code(0);
    let root = dir.path();
    assert!(entries(cache.path()).is_empty());
    let filled = berth(root, cache.path(), &["build", "--out", "filled"]);
    filled.code(0);
    // One result per stack × profile, plus the list of templates read for each build that
    // read one (ape's and rag-engine's prod-lite nginx configuration): its result is keyed
    // on those templates too.
    assert_eq!(
        entries(cache.path()).len(),
        15 + 2,
        "5 stacks × 3 profiles, 2 of them reading a template"
    );
    let reused = berth(root, cache.path(), &["build", "--out", "reused"]);
    reused.code(0);
    let plain_tree = read_tree(&root.join("plain"));
    assert_eq!(read_tree(&root.join("filled")), plain_tree);
    assert_eq!(read_tree(&root.join("reused")), plain_tree);
    // Warnings are part of the result: a cached build prints the same ones.
    assert!(plain.stderr.contains("warning: "), "{}", plain.stderr);
    assert_eq!(reused.stderr, plain.stderr);
    let verbose = berth(root, cache.path(), &["-vv", "build", "--out", "reused"]);
    verbose.code(0);
    assert_eq!(n_reused(&verbose.stderr), 15, "{}", verbose.stderr);
    let golden = Path::new(REPO).join("golden");
    let golden = golden.to_string_lossy();
    berth(root, cache.path(), &["-vv", "check", "--golden", &golden])
        .code(0)
        .stdout_contains("check: clean");
}

#[test]
fn an_edit_anywhere_in_the_import_closure_is_seen() {
    let cache = tempfile::tempdir().expect("cache dir");
    // The stack imports a service module, which imports tag.ncl: found in schemas/ after
    // looking in the module's own folder, modules/services/.
    let (first, dir) = Berth::schemas_only()
        .file(
            "modules/stacks/web.ncl",
            "fun profile => import \"services/mine.ncl\"\n",
        )
        .file(
            "modules/services/mine.ncl",
            "let tag = import \"tag.ncl\" in { services.web.image = \"nginx:%{tag}\" }\n",
        )
        .file("schemas/tag.ncl", "\"1.27-alpine\"\n")
        .args(["--version"])
        .run();
    first.code(0);
    let root = dir.path();
    let build = ["-vv", "build", "--profile", "dev", "--out", "out"];
    let image = || {
        let compose =
            std::fs::read_to_string(root.join("out/web/dev/compose.yaml")).expect("compose.yaml");
        let line = compose.lines().find(|line| line.contains("image:"));
        line.expect("an image line").trim().to_string()
    };
    let expect = |tag: &str, reused: usize| {
        let out = berth(root, cache.path(), &build);
        out.code(0);
        assert_eq!(n_reused(&out.stderr), reused, "{}", out.stderr);
        assert_eq!(image(), format!("image: nginx:{tag}"));
    };
    expect("1.27-alpine", 0);
    expect("1.27-alpine", 1);
    std::fs::write(root.join("schemas/tag.ncl"), "\"1.28-alpine\"\n").expect("edit");
    expect("1.28-alpine", 0);
    // Now the import resolves to a file beside the importing module.
    std::fs::write(root.join("modules/services/tag.ncl"), "\"1.29-alpine\"\n").expect("add");
    expect("1.29-alpine", 0);
    expect("1.29-alpine", 1);
    std::fs::remove_file(root.join("modules/services/tag.ncl")).expect("remove");
    // The state of before is a key seen before: its entry is reused.
    expect("1.28-alpine", 1);
}

#[test]
fn a_damaged_entry_is_ignored_and_rebuilt() {
    let cache = tempfile::tempdir().expect("cache dir");
    let (first, dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", WEB)
        .args(["--version"])
        .run();
    first.code(0);
    let root = dir.path();
    let build = ["-vv", "build", "--profile", "dev", "--out", "out"];
    berth(root, cache.path(), &build).code(0);
    let expected = read_tree(&root.join("out"));
    let [entry] = entries(cache.path()).try_into().expect("one entry");
    let whole = std::fs::read_to_string(&entry).expect("entry");
    let truncated = &whole[..whole.len() / 2];
    let altered = whole.replace("nginx:1.27-alpine", "nginx:6.66-alpine");
    assert_ne!(altered, whole);
    for damaged in [truncated, &altered, ""] {
        std::fs::write(&entry, damaged).expect("damage the entry");
        let out = berth(root, cache.path(), &build);
        out.code(0)
            .stderr_contains("a damaged cache entry, rebuilt");
        assert_eq!(n_reused(&out.stderr), 0, "{}", out.stderr);
        assert_eq!(read_tree(&root.join("out")), expected);
        assert_eq!(std::fs::read_to_string(&entry).expect("entry"), whole);
    }
    // --no-cache reads and writes no entry.
    std::fs::remove_dir_all(cache.path().join("builds")).expect("empty the cache");
    let out = berth(root, cache.path(), &["build", "--no-cache", "--out", "out"]);
    out.code(0);
    assert!(entries(cache.path()).is_empty());
    let other = tempfile::tempdir().expect("another cache");
    let other_dir = other.path().to_string_lossy();
    let out = berth(
        root,
        cache.path(),
        &["build", "--cache-dir", &other_dir, "--out", "out"],
    );
    out.code(0);
    assert!(entries(cache.path()).is_empty());
    assert_eq!(
        entries(other.path()).len(),
        3,
        "--cache-dir holds the entries"
    );
}

#[test]
fn two_builds_at_once_share_one_cache() {
    let cache = tempfile::tempdir().expect("cache dir");
    let mut project = Berth::schemas_only();
    for name in ["a", "b", "c"] {
        project = project.file(&format!("modules/stacks/{name}.ncl"), WEB);
    }
    let (plain, dir) = project
        .args(["build", "--no-cache", "--out", "plain"])
        .run();
    plain.code(0);
    let root = dir.path();
    let cache_dir = cache.path();
    let outputs = std::thread::scope(|scope| {
        let builds: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|out| scope.spawn(move || berth(root, cache_dir, &["build", "--out", out])))
            .collect();
        builds
            .into_iter()
            .map(|build| build.join().expect("build thread"))
            .collect::<Vec<_>>()
    });
    for out in &outputs {
        out.code(0);
    }
    let expected = read_tree(&root.join("plain"));
    assert_eq!(read_tree(&root.join("one")), expected);
    assert_eq!(read_tree(&root.join("two")), expected);
    assert_eq!(entries(cache.path()).len(), 9);
    let again = berth(root, cache.path(), &["-vv", "build", "--out", "three"]);
    again.code(0);
    assert_eq!(n_reused(&again.stderr), 9, "{}", again.stderr);
    assert_eq!(read_tree(&root.join("three")), expected);
}

/// A template a service's `files` render is read outside the Nickel import closure: an
/// entry records each template's digest and is not reused once one changed.
#[test]
fn an_edited_template_is_seen() {
    let cache = tempfile::tempdir().expect("cache dir");
    let (first, dir) = Berth::schemas_only()
        .file(
            "modules/stacks/web.ncl",
            "fun profile => { services.web = { image = \"nginx:1.27\", files.\"/etc/motd\" = { template = \"templates/motd.j2\" } } }\n",
        )
        .file("templates/motd.j2", "one {{ stack.name }}\n")
        .args(["--version"])
        .run();
    first.code(0);
    let root = dir.path();
    let build = ["-vv", "build", "--profile", "dev", "--out", "out"];
    let expect = |text: &str, reused: usize| {
        let out = berth(root, cache.path(), &build);
        out.code(0);
        assert_eq!(n_reused(&out.stderr), reused, "{}", out.stderr);
        let motd =
            std::fs::read_to_string(root.join("out/web/dev/files/web/etc/motd")).expect("motd");
        assert_eq!(motd, text);
    };
    expect("one web\n", 0);
    expect("one web\n", 1);
    std::fs::write(root.join("templates/motd.j2"), "two {{ stack.name }}\n").expect("edit");
    expect("two web\n", 0);
    expect("two web\n", 1);
}

/// An entry of format 1 (the templates' digests kept beside the result, the key not
/// covering them) is whole and digested, yet never reused: it is rebuilt, quietly, and
/// replaced by an entry of the current format.
#[test]
fn an_entry_of_the_old_format_is_ignored_and_rebuilt() {
    let cache = tempfile::tempdir().expect("cache dir");
    let (first, dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", WEB)
        .args(["--version"])
        .run();
    first.code(0);
    let root = dir.path();
    let build = ["-vv", "build", "--out", "out"];
    berth(root, cache.path(), &build).code(0);
    let expected = read_tree(&root.join("out"));
    let current = entries(cache.path());
    assert_eq!(current.len(), 3);
    for entry in &current {
        let text = std::fs::read_to_string(entry).expect("entry");
        let body = text.split_once('\n').expect("a header line").1;
        // Format 1's body: the entry itself, with a `templates` map.
        let value: serde_json::Value = serde_json::from_str(body).expect("json");
        let mut old = value.get("built").expect("a built entry").clone();
        old["templates"] = serde_json::json!({});
        let old = old.to_string();
        let digest = sha256_hex(old.as_bytes());
        std::fs::write(entry, format!("berth-cache-entry-1 {digest}\n{old}")).expect("write");
    }
    let out = berth(root, cache.path(), &build);
    out.code(0);
    assert_eq!(n_reused(&out.stderr), 0, "{}", out.stderr);
    assert!(!out.stderr.contains("damaged"), "{}", out.stderr);
    assert_eq!(read_tree(&root.join("out")), expected);
    for entry in &current {
        let text = std::fs::read_to_string(entry).expect("entry");
        assert!(text.starts_with("berth-cache-entry-2 "), "{text}");
    }
    let out = berth(root, cache.path(), &build);
    assert_eq!(n_reused(&out.code(0).stderr), 3, "{}", out.stderr);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|file| std::fs::metadata(file).map_or(0, |m| m.len()))
        .sum()
}

/// With a cap that holds two entries, two builds at once each store and prune: both
/// succeed with the uncached output, the cache ends within its cap holding whole entries,
/// and what is left is reused.
#[test]
fn a_tiny_cap_is_kept_under_two_builds_at_once() {
    let cache = tempfile::tempdir().expect("cache dir");
    let mut project = Berth::schemas_only();
    for name in ["a", "b", "c"] {
        project = project.file(&format!("modules/stacks/{name}.ncl"), WEB);
    }
    let (plain, dir) = project
        .args(["build", "--no-cache", "--out", "plain"])
        .run();
    plain.code(0);
    let root = dir.path();
    let expected = read_tree(&root.join("plain"));
    // The size of the largest entry, from a cache of its own.
    let probe = tempfile::tempdir().expect("probe cache");
    berth(root, probe.path(), &["build", "--out", "probe"]).code(0);
    let probed = entries(probe.path());
    assert_eq!(probed.len(), 9);
    let one = probed
        .iter()
        .map(|e| size(std::slice::from_ref(e)))
        .max()
        .expect("one");
    assert!(one > 100, "{one}");
    let cap = format!("{}b", 2 * one + one / 2);
    let cache_dir = cache.path();
    let run = |out: &str| {
        let dir = cache_dir.to_string_lossy();
        run_in_env(
            root,
            &args(&["-vv", "build", "--out", out]),
            &[("BERTH_CACHE_DIR", &dir), ("BERTH_CACHE_MAX_SIZE", &cap)],
        )
    };
    let outputs = std::thread::scope(|scope| {
        let builds: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|out| scope.spawn(move || run(out)))
            .collect();
        builds
            .into_iter()
            .map(|build| build.join().expect("build thread"))
            .collect::<Vec<_>>()
    });
    for (out, folder) in outputs.iter().zip(["one", "two"]) {
        out.code(0);
        assert_eq!(read_tree(&root.join(folder)), expected);
    }
    let left = entries(cache.path());
    assert!(size(&left) <= 2 * one + one / 2, "{left:?}");
    assert!(!left.is_empty(), "the most recent entries stay");
    assert!(
        left.iter()
            .all(|entry| entry.file_name().is_some_and(|name| name.len() == 64)),
        "only whole entries stay: {left:?}"
    );
    let again = run("three");
    again.code(0);
    assert_eq!(read_tree(&root.join("three")), expected);
    assert!(n_reused(&again.stderr) >= 1, "{}", again.stderr);
    assert!(size(&entries(cache.path())) <= 2 * one + one / 2);
}

/// An entry unused for 30 days is removed by the next build that stores one; an entry used
/// since is kept. The cap is read from `--cache-max-size` or `$BERTH_CACHE_MAX_SIZE`, and
/// a malformed one is refused before anything is built.
#[test]
fn entries_unused_for_30_days_are_pruned() {
    let cache = tempfile::tempdir().expect("cache dir");
    let (first, dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", WEB)
        .file("modules/stacks/api.ncl", WEB)
        .args(["--version"])
        .run();
    first.code(0);
    let root = dir.path();
    berth(
        root,
        cache.path(),
        &["build", "--stack", "web", "--out", "out"],
    )
    .code(0);
    let old = entries(cache.path());
    assert_eq!(old.len(), 3);
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(31 * 86_400);
    for entry in &old {
        let file = std::fs::File::options()
            .write(true)
            .open(entry)
            .expect("open");
        file.set_modified(month_ago).expect("age the entry");
    }
    // Used (with nothing stored): kept, and its use recorded.
    let out = berth(
        root,
        cache.path(),
        &["-vv", "build", "--stack", "web", "--out", "out"],
    );
    assert_eq!(n_reused(&out.code(0).stderr), 3, "{}", out.stderr);
    berth(
        root,
        cache.path(),
        &["build", "--stack", "api", "--out", "out"],
    )
    .code(0);
    assert_eq!(entries(cache.path()).len(), 6, "used entries are kept");
    for entry in &old {
        let file = std::fs::File::options()
            .write(true)
            .open(entry)
            .expect("open");
        file.set_modified(month_ago).expect("age the entry");
    }
    std::fs::write(
        root.join("modules/stacks/api.ncl"),
        WEB.replace("1.27", "1.28"),
    )
    .expect("edit");
    berth(
        root,
        cache.path(),
        &["build", "--stack", "api", "--out", "out"],
    )
    .code(0);
    let left = entries(cache.path());
    assert_eq!(left.len(), 6, "{left:?}");
    assert!(old.iter().all(|entry| !left.contains(entry)), "{left:?}");

    let cap = "--cache-max-size";
    berth(root, cache.path(), &["build", cap, "lots", "--out", "bad"])
        .code(2)
        .stderr_contains("expected a size");
    let dir = cache.path().to_string_lossy();
    let out = run_in_env(
        root,
        &args(&["build", "--out", "bad"]),
        &[("BERTH_CACHE_DIR", &dir), ("BERTH_CACHE_MAX_SIZE", "lots")],
    );
    out.code(2)
        .stderr_contains("$BERTH_CACHE_MAX_SIZE: \"lots\": expected a size");
    assert!(!root.join("bad").exists());
    // A cap of nothing keeps nothing.
    berth(root, cache.path(), &["build", cap, "0b", "--out", "out2"]).code(0);
    assert_eq!(entries(cache.path()), Vec::<PathBuf>::new());
}

/// `plan` and `apply` need the model, which a build entry does not keep: the cache keeps
/// their evaluation too, under the same closure, so the second `plan` of the same inputs
/// evaluates nothing, says the same, and an edit is still seen.
#[test]
fn plan_reuses_an_evaluation_of_the_same_inputs() {
    if !crate::support::engine_answers("cache", "plan_reuses_an_evaluation_of_the_same_inputs") {
        return;
    }
    let cache = tempfile::tempdir().expect("cache dir");
    let state = tempfile::tempdir().expect("state dir");
    let (_, dir) = Berth::schemas_only()
        .file("modules/stacks/web.ncl", WEB)
        .args(["list"])
        .run();
    let state = state.path().to_string_lossy().to_string();
    let plan = |root: &Path| {
        berth(
            root,
            cache.path(),
            &[
                "-vv",
                "plan",
                "--stack",
                "web",
                "--profile",
                "dev",
                "--state-dir",
                &state,
            ],
        )
    };
    // Exit 1: there are changes to apply.
    let first = plan(dir.path());
    first.code(1);
    assert!(
        !first.stderr.contains("evaluation reused from the cache"),
        "{}",
        first.stderr
    );
    let second = plan(dir.path());
    second
        .code(1)
        .stderr_contains("web/dev: evaluation reused from the cache");
    assert_eq!(second.stdout, first.stdout);
    std::fs::write(
        dir.path().join("modules/stacks/web.ncl"),
        WEB.replace("nginx:1.27-alpine", "nginx:1.28-alpine"),
    )
    .expect("edit");
    let edited = plan(dir.path());
    edited.code(1).stdout_contains("nginx:1.28-alpine");
    assert!(
        !edited.stderr.contains("evaluation reused from the cache"),
        "{}",
        edited.stderr
    );
}

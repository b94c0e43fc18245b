//! Random and mutated stack modules through the whole build, with the real binary: every
//! case must give artifacts (exit 0) or a clean error (exit 2, nothing written, no
//! memory address), never a panic, an abort or a hang (each case has a time limit).
//! 8 cases per test by default; a long run: `BERTH_FUZZ_CASES=5000 cargo test --test cli
//! fuzz::` (`BERTH_FUZZ_BIN` points at a copy of the binary, so rebuilds do not disturb it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::{Berth, REPO};

/// CPU time far beyond any real build in debug (a bundled stack takes about a second); a
/// hang goes past it. CPU time, not wall time: a long run is niced on a shared machine.
const CPU_LIMIT: Duration = Duration::from_secs(60);

/// Wall time after which a case fails even if its CPU time could not be read.
const WALL_LIMIT: Duration = Duration::from_secs(1800);

const PROFILES: &[&str] = &["dev", "prod-lite", "staging", "--no-profile"];

/// Snippets that a careless or hostile edit inserts: syntax, merge priorities, numbers
/// past every range, deep or recursive values, imports that go nowhere.
const SNIPPETS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    ",",
    ";",
    "=",
    "|",
    ".",
    "&",
    "\n",
    "#",
    "%{",
    "m%\"",
    "\"%",
    " | force",
    " | default",
    " | priority 10",
    "42",
    "-1",
    "1e20",
    "0.5",
    "null",
    "true",
    "\"x\"",
    "\"${X}\"",
    "\"$$\"",
    "fun x => x",
    "import \"nosuch.ncl\"",
    "import \"berth.ncl\"",
    "std.fail_with \"boom\"",
    "services.a.image = \"a\"",
    "services.b = { image = \"b\", depends_on.a = \"healthy\" }",
    "replicas = 3",
    "ports = [\"80\"]",
    "resources.limits.cpus = 0",
    "global = true",
    "restart = \"${X}\"",
    "healthcheck.interval = \"${X}\"",
    "volumes = [{ target = \"/x\" }]",
    "networks.n = { subnets = [{ subnet = \"10.0.0.0/33\", gateway = \"10.0.0.1\" }], enable_ipv6 = true }",
    "network_addresses.n.ipv4 = \"10.0.0.9\"",
    "volumes.v = { cache = true, external = true, size = \"0\" }",
    "monitoring = { prometheus = \"a\", alertmanager = \"a\", alert_receiver = \"slack\" }",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "\u{0}",
    "é",
    "\u{202e}",
];

/// Field values for generated services.
const VALUES: &[&str] = &[
    "\"nginx:1.27-alpine\"",
    "\"\"",
    "\"${DB_PASSWORD}\"",
    "\"a\\nb\"",
    "1",
    "0",
    "-5",
    "70000",
    "1e20",
    "0.25",
    "true",
    "[]",
    "{}",
    "[\"CMD\", \"true\"]",
    "\"8080:80\"",
    "[berth.publish 8080 80]",
    "[berth.volume \"data\" \"/data\"]",
    "{ postgres = \"healthy\" }",
    "\"unless-stopped\"",
    "\"sometimes\"",
    "\"512M\"",
    "\"10 gigs\"",
    "\"30s\"",
    "\"1x\"",
    "\"host\"",
    "[\"10.0.0.2\"]",
    "[\"no-new-privileges:true\", \"seccomp=unconfined\", \"label=disable\"]",
    "[\"seccomp=/etc/profile.json\"]",
    "[\"ndots:2\"]",
    // Variables in typed fields: declared with a default (HC_INTERVAL), with one that is
    // no value there (HC_RETRIES), undeclared (X).
    "\"${HC_INTERVAL}\"",
    "\"${HC_RETRIES}\"",
    "\"${X}\"",
    "{ test = [\"true\"], interval = \"${HC_INTERVAL}\", retries = \"${HC_RETRIES}\" }",
    "{ test = [\"true\"], timeout = \"${HC_INTERVAL}\", start_period = \"${DB_PASSWORD}\" }",
    // Placement and dependency records.
    "[\"node.role == manager\", \"node.labels.zone != eu-2\"]",
    "[\"node.platform.arch == x86_64\"]",
    "[\"engine.labels.os == linux\"]",
    "{ condition = \"healthy\", restart = true }",
    "{ restart = \"yes\" }",
    // Networks and fixed addresses: on the declared network, off its subnet, malformed.
    "[\"back\"]",
    "{ back = { ipv4 = \"10.77.0.5\" } }",
    "{ back = { ipv4 = \"10.77.0.300\", ipv6 = \"fd00::1\" } }",
    "{ default = { ipv4 = \"10.77.0.1\" } }",
    "{ ipv4 = \"10.77.0.5\" }",
    // Names passed from the host: fine, twice, not a name.
    "[\"TRACE_TOKEN\", \"HC_INTERVAL\"]",
    "[\"A\", \"A\"]",
    "[\"A=1\"]",
    // Alternative values: on a variable with a default (refused), reading a variable.
    "\"-v${HC_INTERVAL:+ --debug}\"",
    "\"${X:+$Y}\"",
    "\"${X:+}\"",
];

const FIELDS: &[&str] = &[
    "image",
    "command",
    "environment",
    "ports",
    "volumes",
    "depends_on",
    "restart",
    "replicas",
    "healthcheck",
    "resources",
    "description",
    "labels",
    "networks",
    "cpus",
    "build",
    "secrets",
    "backup",
    "metrics",
    "kubernetes",
    "user",
    "dns",
    "dns_search",
    "dns_opt",
    "tty",
    "stdin_open",
    "pid",
    "security_opt",
    "global",
    "placement",
    "network_addresses",
    "network_addresses.back",
    "network_aliases",
    "host_environment",
    "depends_on.web",
    "healthcheck.interval",
    "healthcheck.timeout",
    "healthcheck.retries",
    "healthcheck.start_period",
    "imgae",
];

#[test]
fn mutated_bundled_stacks_build_or_fail_cleanly() {
    let stacks = bundled_stacks();
    let project = Berth::schemas_only();
    let strategy = (
        prop::sample::select(stacks),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                prop::sample::select(SNIPPETS),
            ),
            1..5,
        ),
        prop::sample::select(PROFILES),
    );
    run(&strategy, |(source, edits, profile)| {
        let mutated = mutate(&source, &edits);
        check_build(project.root(), &mutated, profile)
    });
}

#[test]
fn generated_stacks_build_or_fail_cleanly() {
    let project = Berth::schemas_only();
    let service = prop::collection::vec(
        (prop::sample::select(FIELDS), prop::sample::select(VALUES)),
        0..6,
    );
    let strategy = (
        prop::collection::vec(("[a-z][a-z0-9_-]{0,6}|[A-Z.]{1,3}", service), 1..4),
        prop::sample::select(PROFILES),
    );
    run(&strategy, |(services, profile)| {
        check_build(project.root(), &generated(&services), profile)
    });
}

fn run<S: Strategy>(strategy: &S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let cases = std::env::var("BERTH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let mut runner = TestRunner::new(Config {
        cases,
        // Shrinking reruns the binary hundreds of times; the failing input is printed anyway.
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    });
    // Long runs print their progress, so that a run stopped from outside still says how far
    // it got.
    let done = std::sync::atomic::AtomicU32::new(0);
    let counted = |value| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if cases > 8 && n.is_multiple_of(25) {
            eprintln!("fuzz: {n} cases");
        }
        test(value)
    };
    if let Err(failure) = runner.run(strategy, counted) {
        panic!("{failure}");
    }
}

/// Builds `source` as stack `fuzz` and checks that berth ended in one of its two ways.
fn check_build(root: &Path, source: &str, profile: &str) -> Result<(), TestCaseError> {
    let module = root.join("modules/stacks/fuzz.ncl");
    std::fs::write(&module, source).expect("write module");
    let out = root.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let profile_args: Vec<&str> = match profile {
        "--no-profile" => vec!["--no-profile"],
        name => vec!["--profile", name],
    };
    let binary = std::env::var_os("BERTH_FUZZ_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")), PathBuf::from);
    let mut child = Command::new(binary)
        .env("BERTH_CACHE_DIR", crate::support::cache_dir())
        .args(["build", "--stack", "fuzz", "--out", "out"])
        .args(&profile_args)
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        let cpu = cpu_time(child.id());
        if cpu > CPU_LIMIT || started.elapsed() > WALL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            save_failure(source);
            return Err(TestCaseError::fail(format!(
                "berth hung: {cpu:?} of CPU, {:?} of wall time",
                started.elapsed()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    let wrote = out.join("fuzz").exists();
    let clean = match status.code() {
        Some(0) => wrote,
        Some(2) => !wrote && stderr.starts_with("error: ") && !stderr.contains("@0x"),
        _ => false,
    };
    if !clean || stderr.contains("panicked") {
        save_failure(source);
    }
    match status.code() {
        Some(0) => prop_assert!(wrote, "exit 0 but nothing written\n{stderr}"),
        Some(2) => {
            prop_assert!(!wrote, "exit 2 but output written\n{stderr}");
            prop_assert!(stderr.starts_with("error: "), "unclean error:\n{stderr}");
            prop_assert!(!stderr.contains("@0x"), "memory address:\n{stderr}");
        }
        code => prop_assert!(false, "exit {code:?} (signal or panic):\n{stderr}"),
    }
    prop_assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    Ok(())
}

/// User plus system CPU time of a running process, from /proc (Linux; zero elsewhere).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on every Linux architecture berth runs on.
    Duration::from_millis(ticks * 10)
}

/// Keeps a failing module where `BERTH_FUZZ_SAVE` says, to reproduce it by hand.
fn save_failure(source: &str) {
    if let Some(dir) = std::env::var_os("BERTH_FUZZ_SAVE") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let n = std::fs::read_dir(&dir).map_or(0, Iterator::count);
        let _ = std::fs::write(dir.join(format!("failure-{n}.ncl")), source);
    }
}

fn bundled_stacks() -> Vec<String> {
    let dir = Path::new(REPO).join("modules/stacks");
    let mut stacks: Vec<String> = std::fs::read_dir(dir)
        .expect("read stacks")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
        .collect();
    stacks.sort();
    stacks
}

/// Deletes, inserts or replaces at the chosen places (character positions).
fn mutate(source: &str, edits: &[(prop::sample::Index, u8, &str)]) -> String {
    let mut text: Vec<char> = source.chars().collect();
    for (at, kind, snippet) in edits {
        if text.is_empty() {
            break;
        }
        let i = at.index(text.len());
        match kind {
            0 => {
                let end = (i + snippet.len().max(1)).min(text.len());
                text.drain(i..end);
            }
            1 => {
                text.splice(i..i, snippet.chars());
            }
            _ => {
                let end = (i + 1).min(text.len());
                text.splice(i..end, snippet.chars());
            }
        }
    }
    text.into_iter().collect()
}

fn generated(services: &[(String, Vec<(&str, &str)>)]) -> String {
    let mut text = String::from("let berth = import \"berth.ncl\" in\nfun profile => {\n");
    for (name, fields) in services {
        text.push_str(&format!("  services.\"{name}\" = {{\n"));
        for (field, value) in fields {
            text.push_str(&format!("    {field} = {value},\n"));
        }
        text.push_str("  },\n");
    }
    // Variables the values above read, for the typed fields that may name one.
    text.push_str("  variables.HC_INTERVAL = { description = \"Fuzz.\", default = \"30s\" },\n");
    text.push_str("  variables.HC_RETRIES = { description = \"Fuzz.\", default = \"3x\" },\n");
    // A network with a subnet, for the fixed addresses the values above give.
    text.push_str("  networks.back = { subnets = [{ subnet = \"10.77.0.0/24\", gateway = \"10.77.0.1\" }] },\n");
    text.push_str("}\n");
    text
}

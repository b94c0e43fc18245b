//! `cargo bench`: prints figures, asserts nothing.
//!
//! 1. Evaluation and render time, separately, for synthetic stacks of 100 and 1000 services.
//! 2. `berth build` of every bundled stack × profile against exporting the same
//!    configurations one by one with the `nickel` CLI (set NICKEL=path, or install it with
//!    `cargo install nickel-lang-cli --locked`), as a ratio measured in one run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::compile::compile_all;
use berth::eval::{EVAL_STACK_SIZE, evaluate};
use berth::model::Stack;
use berth::project::{Project, StackRef};
use berth::render;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const RUNS: usize = 5;

fn main() {
    let handle = std::thread::Builder::new()
        .stack_size(EVAL_STACK_SIZE)
        .spawn(run)
        .expect("spawn bench thread");
    handle.join().expect("bench thread");
}

fn run() {
    println!("berth pipeline benchmark (median of {RUNS} runs after one warm-up)\n");
    for n_services in [100, 1000] {
        eval_and_render(n_services);
    }
    println!();
    build_against_nickel_cli();
}

/// A project whose one stack has `n` services, each with ports, environment, a healthcheck,
/// resources and up to two dependencies, like the bundled ones.
fn synthetic_project(n_services: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["schemas", "profiles"] {
        copy_dir(&Path::new(REPO).join(sub), &dir.path().join(sub));
    }
    let mut src = String::from(
        "fun profile => {\n  variables.TOKEN = { description = \"shared token\", secret = true },\n  services = {\n",
    );
    for i in 0..n_services {
        let deps = match i {
            0 => String::new(),
            1 => "depends_on = { s0 = \"healthy\" },".to_string(),
            _ => format!(
                "depends_on = {{ s{} = \"healthy\", s{} = \"started\" }},",
                i - 1,
                i - 2
            ),
        };
        let env: String = (0..10)
            .map(|k| format!("VAR_{k} = \"value-{i}-{k}\", "))
            .collect();
        writeln!(
            src,
            "    s{i} = {{ image = \"registry.local/app-{i}:1.0\", ports = [{{ target = 8080 }}, {{ target = 9090, name = \"metrics\" }}], \
             environment = {{ {env}TOKEN = \"${{TOKEN}}\", LOG_LEVEL = profile.log_level }}, {deps} \
             healthcheck = {{ test = {{ http = {{ port = 8080, path = \"/health\" }} }} }}, \
             resources.limits = {{ cpus = 0.5, memory = \"256M\" }}, volumes = [{{ type = \"tmpfs\", target = \"/tmp\" }}] }},"
        )
        .expect("write");
    }
    src.push_str("  },\n}\n");
    let stacks = dir.path().join("modules/stacks");
    std::fs::create_dir_all(&stacks).expect("mkdir");
    std::fs::write(stacks.join("synthetic.ncl"), src).expect("write stack");
    dir
}

fn eval_and_render(n_services: usize) {
    let dir = synthetic_project(n_services);
    let project = Project::open(dir.path()).expect("open project");
    let stack = StackRef {
        name: "synthetic".into(),
        path: dir.path().join("modules/stacks/synthetic.ncl"),
    };
    let profile = project
        .select_profiles(&["prod-lite".to_string()])
        .expect("profile")
        .remove(0);
    let mut eval_times = Vec::new();
    let mut render_times = Vec::new();
    let mut bytes = 0;
    for run in 0..=RUNS {
        let start = Instant::now();
        let evaluated = evaluate(&project, &stack, &profile).expect("evaluate");
        let eval_time = start.elapsed();
        let start = Instant::now();
        let model = Stack::from_evaluated(&evaluated).expect("model");
        let artifacts = render::all(&model).expect("render").artifacts;
        let render_time = start.elapsed();
        bytes = artifacts.iter().map(|a| a.contents.len()).sum();
        if run > 0 {
            eval_times.push(eval_time);
            render_times.push(render_time);
        }
    }
    let (eval, render) = (median(&mut eval_times), median(&mut render_times));
    println!(
        "{n_services:>5} services: evaluate {:>8.1} ms | model+validate+render {:>7.1} ms ({:.1} % of evaluate) | {} KiB of artifacts",
        ms(eval),
        ms(render),
        100.0 * render.as_secs_f64() / eval.as_secs_f64(),
        bytes / 1024
    );
}

/// `berth build` (one process, all 15 targets) against 15 `nickel export` processes of the
/// same expressions `berth` evaluates. Both write their output to files.
fn build_against_nickel_cli() {
    let Some(nickel) = nickel_cli() else {
        println!(
            "berth build vs nickel export: skipped, no `nickel` CLI (set NICKEL or `cargo install nickel-lang-cli --locked`)"
        );
        return;
    };
    let project = Project::open(Path::new(REPO)).expect("open repo");
    let stacks = project.stacks().expect("stacks");
    let profiles = project.profiles().expect("profiles");
    let out = tempfile::tempdir().expect("temp dir");
    let mains = write_main_expressions(&stacks, &profiles, out.path());

    let mut berth_times = Vec::new();
    let mut nickel_times = Vec::new();
    for run in 0..=RUNS {
        let start = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["--root", REPO, "-q", "build", "--out"])
            .arg(out.path().join("berth-out"))
            .status()
            .expect("run berth");
        assert!(status.success(), "berth build failed");
        let berth_time = start.elapsed();
        let start = Instant::now();
        for (index, main) in mains.iter().enumerate() {
            let status = Command::new(&nickel)
                .args(["export", "--format", "json", "--import-path"])
                .arg(Path::new(REPO).join("schemas"))
                .arg("--import-path")
                .arg(Path::new(REPO).join("modules"))
                .arg("--output")
                .arg(out.path().join(format!("nickel-{index}.json")))
                .arg(main)
                .status()
                .expect("run nickel");
            assert!(status.success(), "nickel export {} failed", main.display());
        }
        let nickel_time = start.elapsed();
        if run > 0 {
            berth_times.push(berth_time);
            nickel_times.push(nickel_time);
        }
    }
    let (berth, nickel_total) = (median(&mut berth_times), median(&mut nickel_times));
    println!(
        "berth build, {} stacks x {} profiles: {:.1} ms | nickel export of the same {} configs one by one: {:.1} ms | ratio {:.2} (berth / nickel; jobs: {})",
        stacks.len(),
        profiles.len(),
        ms(berth),
        mains.len(),
        ms(nickel_total),
        berth.as_secs_f64() / nickel_total.as_secs_f64(),
        compile_jobs()
    );
    // Keep the in-process path honest too: the same build through the library.
    let start = Instant::now();
    compile_all(&project, &stacks, &profiles, compile_jobs()).expect("compile");
    println!(
        "  (in-process compile_all of the same: {:.1} ms)",
        ms(start.elapsed())
    );
}

/// One file per (stack, profile) holding exactly the expression berth evaluates.
fn write_main_expressions(
    stacks: &[StackRef],
    profiles: &[berth::project::ProfileRef],
    dir: &Path,
) -> Vec<PathBuf> {
    let mut mains = Vec::new();
    for stack in stacks {
        for profile in profiles {
            let berth::project::ProfileRef::File { path, .. } = profile else {
                continue;
            };
            let main = dir.join(format!("{}-{}.ncl", stack.name, profile.name()));
            let src = format!(
                "let berth = import \"berth.ncl\" in\nberth.finalize \"{}\" (import \"{}\") (import \"{}\")\n",
                stack.name,
                stack.path.display(),
                path.display()
            );
            std::fs::write(&main, src).expect("write main");
            mains.push(main);
        }
    }
    mains
}

fn nickel_cli() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("NICKEL").map(PathBuf::from),
        Some("/opt/nickel-cli/bin/nickel".into()),
        Some("nickel".into()),
    ];
    candidates.into_iter().flatten().find(|path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn compile_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("prefix"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

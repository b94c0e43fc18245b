use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: see Cargo.toml for the figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    berth::cli::run(std::env::args_os())
}

use std::process::ExitCode;

fn main() -> ExitCode {
    berth::cli::run(std::env::args_os())
}

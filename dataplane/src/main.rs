//! `palisade`: argument parsing and wiring only; the work is in the library, and each
//! subcommand's arguments and wiring are in [`cli`].

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PALISADE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    cli::main()
}

//! `palisade demo`: the bundled example capture through the bundled policy.

use std::process::ExitCode;

pub(super) fn run() -> ExitCode {
    match dataplane::demo::run(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade demo: {e}");
            ExitCode::from(2)
        }
    }
}

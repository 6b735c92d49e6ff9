//! Writes the evasion corpus: `gen-evasion OUT_DIR` (normally `tests/data/evasion`): one
//! capture per trick, `cases.tsv`, `README.md`, `deny.yaml`, `allow.yaml` and a
//! `.gitignore` naming the captures too large to commit. Deterministic: the same bytes on
//! every run.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(out), None) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("usage: gen-evasion OUT_DIR");
        return ExitCode::from(2);
    };
    match traffic_gen::evasion::write_corpus(&out) {
        Ok(w) => {
            println!(
                "{}: {} cases ({} committed), {} bytes of captures",
                out.display(),
                w.cases,
                w.committed,
                w.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-evasion: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

//! Writes a SYN flood with a few real connections inside it, for the flood figures of
//! benches/RESULTS.md: `gen-flood OUT.pcap [SYNS] [KEPT] [SEED]` (defaults: 1000000 SYNs,
//! 100 kept connections, seed 1).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gen-flood OUT.pcap [SYNS] [KEPT] [SEED]");
        return ExitCode::from(2);
    };
    let mut num = |default: u64, what: &str| -> Result<u64, String> {
        match args.next() {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| format!("{what} must be a whole number, got {s:?}")),
        }
    };
    let (syns, kept, seed) = match (num(1_000_000, "SYNS"), num(100, "KEPT"), num(1, "SEED")) {
        (Ok(a), Ok(b), Ok(c)) if b <= 25_000 => (a, b, c),
        (Ok(_), Ok(_), Ok(_)) => {
            eprintln!("gen-flood: KEPT must be at most 25000 (one client port each)");
            return ExitCode::from(2);
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("gen-flood: {e}");
            return ExitCode::from(2);
        }
    };
    match traffic_gen::flood::write_syn_flood(&out, syns, kept, seed) {
        Ok(s) => {
            println!(
                "{}: {} packets, {} SYNs, {} kept connections",
                out.display(),
                s.packets,
                s.syns,
                s.kept
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-flood: {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}

//! Writes a synthetic capture for throughput runs of `palisade replay`:
//! `gen-pcap OUT.pcap [SESSIONS] [SEED]` (defaults: 20000 sessions, seed 1).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gen-pcap OUT.pcap [SESSIONS] [SEED]");
        return ExitCode::from(2);
    };
    let parse = |s: Option<String>, default: u64, what: &str| -> Result<u64, String> {
        match s {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| format!("{what} must be a whole number, got {s:?}")),
        }
    };
    let (sessions, seed) = match (
        parse(args.next(), 20_000, "SESSIONS"),
        parse(args.next(), 1, "SEED"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("gen-pcap: {e}");
            return ExitCode::from(2);
        }
    };
    match traffic_gen::generate::write_sessions(&out, sessions, seed) {
        Ok(s) => {
            println!(
                "{}: {} sessions, {} transactions, {} packets, {} bytes",
                out.display(),
                s.sessions,
                s.transactions,
                s.packets,
                s.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-pcap: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

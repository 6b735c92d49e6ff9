//! The flow capture options `run` and `replay` share: the directory's bounds and the
//! pre-match ring, turned into the library's `CaptureConfig`.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use clap::Args;
use dataplane::capture::{CaptureConfig, DirBounds, PREMATCH_BYTES, PREMATCH_PACKETS};

#[derive(Args)]
pub(super) struct CaptureArgs {
    /// Keep the capture directory within N bytes (K, M, G suffixes: powers of 1024),
    /// counting capture files found there at start and their sidecars: the oldest files
    /// are removed first to make room, a file still being written last.
    #[arg(long, value_name = "N", value_parser = parse_size, requires = "capture_dir")]
    capture_max_bytes: Option<u64>,
    /// Keep at most N capture files in the capture directory (files found there at start
    /// count): the oldest are removed first, a file still being written last.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=dataplane::capture::INDEX_MAX as u64), requires = "capture_dir")]
    capture_max_files: Option<u64>,
    /// Packets of a flow held before a capturing rule matches it (its pre-match ring; the
    /// oldest go first when it is full), so its file starts with them; 0: files start at
    /// the match.
    #[arg(long, value_name = "N", default_value_t = PREMATCH_PACKETS, requires = "capture_dir")]
    capture_prematch_packets: usize,
    /// Bytes of a flow held before a capturing rule matches it (K, M suffixes).
    #[arg(long, value_name = "N", default_value_t = PREMATCH_BYTES as u64, value_parser = parse_size, requires = "capture_dir")]
    capture_prematch_bytes: u64,
}

/// `--capture-dir`: created (mode 0700) if missing; it must be a writable directory. The
/// capture files already in it are indexed: they count toward the bounds.
pub(super) fn capture_config(
    dir: Option<PathBuf>,
    args: &CaptureArgs,
) -> Result<Option<CaptureConfig>, String> {
    let Some(dir) = dir else { return Ok(None) };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("--capture-dir {}: {e}", dir.display()))?;
    let probe = dir.join(".palisade-write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("--capture-dir {}: not writable: {e}", dir.display()))?;
    let bounds = DirBounds {
        max_files: args.capture_max_files.map(|n| n as usize),
        max_bytes: args.capture_max_bytes,
    };
    let mut c = CaptureConfig::open(dir.clone(), bounds)
        .map_err(|e| format!("--capture-dir {}: {e}", dir.display()))?;
    c.hold_packets = args.capture_prematch_packets;
    c.hold_per_flow = usize::try_from(args.capture_prematch_bytes).unwrap_or(usize::MAX);
    Ok(Some(c))
}

/// A size in bytes: digits with an optional K, M or G (powers of 1024; `KiB`, `MB`... too).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a size: give bytes, or a number with K, M or G"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "`{s}`: the unit must be K, M or G (powers of 1024)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("3m"), Ok(3 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("1T").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}

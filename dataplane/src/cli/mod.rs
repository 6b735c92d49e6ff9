//! The `palisade` command line: the clap definitions and one module per subcommand, each
//! turning its arguments into the library's options and its outcome into an exit status.
//! (This is the binary's, not the library's: `lib.rs` does not include it.)

mod bench;
mod capture;
mod demo;
mod learn;
mod policy;
mod replay;
mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dataplane::decode::checksum::ChecksumMode;
use dataplane::events::EventOutput;
use dataplane::events::sinks::{SinkOptions, SinkTarget, SinkUrl};

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Layer 7 firewall data plane for container nodes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Judge captured traffic against a policy, write events, print a summary.
    Replay(replay::ReplayArgs),
    /// Judge live traffic: inline from NFQUEUE or a bridge, or passively on a tap.
    Run(run::RunArgs),
    /// Propose a policy from captured traffic: allow rules for what was observed.
    Learn(learn::LearnArgs),
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        cmd: policy::PolicyCmd,
    },
    /// Run the bundled example capture through the bundled policy and show what happened.
    Demo,
    /// Measure the whole pipeline on a generated east-west mix held in memory.
    Bench(bench::BenchArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ChecksumArg {
    Auto,
    On,
    Off,
}

impl From<ChecksumArg> for ChecksumMode {
    fn from(a: ChecksumArg) -> Self {
        match a {
            ChecksumArg::Auto => ChecksumMode::Auto,
            ChecksumArg::On => ChecksumMode::Validate,
            ChecksumArg::Off => ChecksumMode::Ignore,
        }
    }
}

/// `--alert-sink`, `--alert-rate`, `--alert-sink-ca`: shared by `run` and `replay`.
#[derive(Args)]
struct SinkArgs {
    /// Also send alerts (only alerts) here, repeatable: syslog://HOST[:PORT] (RFC 5424 over
    /// UDP), syslog+tcp://HOST[:PORT] (octet-counted TCP), unix:///dev/log, or an
    /// http(s):// webhook (POST of a JSON array of alert records). Syslog takes
    /// ?facility=NAME (default authpriv). A slow or dead receiver loses alerts (counted),
    /// never slows judging.
    #[arg(long = "alert-sink", value_name = "URL")]
    alert_sink: Vec<String>,
    /// At most N alerts a second per rule to the sinks; the rest are counted and
    /// summarised (an `alert_summary` record every 10 s). The event file keeps them all.
    #[arg(long, value_name = "N", requires = "alert_sink", value_parser = clap::value_parser!(u32).range(1..))]
    alert_rate: Option<u32>,
    /// A PEM bundle of CA certificates trusted for https:// sinks besides the built-in
    /// (Mozilla) roots: a webhook behind a private CA.
    #[arg(long, value_name = "FILE", requires = "alert_sink")]
    alert_sink_ca: Option<PathBuf>,
}

impl SinkArgs {
    /// The sinks' options, or why they cannot be used (reported as bad input, naming the
    /// option); `None` without `--alert-sink`.
    fn options(self, flush_deadline: std::time::Duration) -> Result<Option<SinkOptions>, String> {
        if self.alert_sink.is_empty() {
            return Ok(None);
        }
        // Parsed here rather than by clap, whose error would repeat a URL's password.
        let urls = self
            .alert_sink
            .iter()
            .map(|u| dataplane::events::sinks::parse_sink_url(u))
            .collect::<Result<Vec<SinkUrl>, _>>()
            .map_err(|e| format!("--alert-sink {e}"))?;
        let ca = match &self.alert_sink_ca {
            None => Vec::new(),
            Some(p) => {
                if !urls
                    .iter()
                    .any(|u| matches!(u.target, SinkTarget::Webhook { tls: true, .. }))
                {
                    return Err(format!(
                        "--alert-sink-ca {}: no https:// --alert-sink to use it for",
                        p.display()
                    ));
                }
                // Bounded: a CA bundle is kilobytes; a 4 MiB one is a mistake.
                let pem = match std::fs::metadata(p) {
                    Ok(m) if m.len() > 4 << 20 => {
                        return Err(format!(
                            "--alert-sink-ca {}: {} bytes is too large for a CA bundle",
                            p.display(),
                            m.len()
                        ));
                    }
                    _ => std::fs::read(p)
                        .map_err(|e| format!("--alert-sink-ca {}: {e}", p.display()))?,
                };
                dataplane::events::sinks::webhook::load_ca_pem(&pem)
                    .map_err(|e| format!("--alert-sink-ca {}: {e}", p.display()))?
            }
        };
        Ok(Some(SinkOptions {
            urls,
            ca,
            rate: self.alert_rate,
            flush_deadline,
        }))
    }
}

/// Where events go: `--events` when given (`-`, `none` or a file); else `eve.json` in
/// `--log-dir` (created if missing, as Suricata's `-l`), else in `default_dir` (created
/// if missing; empty: the current directory).
fn event_output(
    events: Option<&str>,
    log_dir: Option<&Path>,
    default_dir: &Path,
) -> Result<EventOutput, String> {
    if events.is_some() {
        return Ok(EventOutput::from_arg(events, ""));
    }
    let dir = log_dir.unwrap_or(default_dir);
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).map_err(|e| {
            let what = if log_dir.is_some() { "--log-dir " } else { "" };
            format!("{what}{}: {e}", dir.display())
        })?;
    }
    Ok(EventOutput::File(dir.join("eve.json")))
}

/// Prints what the policy check warns about before a command judges traffic by the
/// policy (stderr, one line each, `file:line:col: warning: ...`). Errors are left to the
/// command, which reports them when it loads the policy.
fn print_policy_warnings(policy: &Path, inventory: Option<&Path>, capture_dir: bool) {
    for w in control::lint(policy, inventory, capture_dir).warnings {
        eprintln!("{}", w.headline());
    }
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Replay(a) => replay::run(a),
        Cmd::Run(a) => run::run(a),
        Cmd::Learn(a) => learn::run(a),
        Cmd::Policy { cmd } => policy::run(cmd),
        Cmd::Demo => demo::run(),
        Cmd::Bench(a) => bench::run(a),
    }
}

/// Writes a command's output to stdout. A reader that went away (`palisade policy diff A B |
/// head`) is not an error of ours: the rest is dropped quietly and the command keeps its
/// exit status, as diff(1) and grep do (Rust's `print!` would panic with exit 101); any
/// other write failure is said on stderr.
fn out(text: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("palisade: writing to stdout: {e}");
    }
}

//! `palisadectl`: talks to a running `palisade run` over its control socket.
//!
//! The protocol is JSON lines (see `dataplane/src/api/ctl.rs`): one request line, one
//! answer line; `events --follow` streams event lines until interrupted.
//!
//! Exit status: 0 success; 2 bad input (bad arguments, a file that cannot be read, a
//! policy the daemon rejects, a request it refuses) or no daemon to talk to, each with a
//! message that says what to change. Nothing here "completes with findings", so 1 (which
//! `palisade` uses for that) is never used.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "palisadectl",
    version,
    about = "Talk to a running `palisade run` over its control socket"
)]
struct Cli {
    /// The daemon's control socket (`palisade run --control SOCKET`) [default:
    /// $PALISADE_SOCKET, else /run/palisade.sock].
    #[arg(long, value_name = "SOCKET", global = true)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Counters, policy version and loads, source.
    Status,
    /// The policy in force, or a new one.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Open flows, most recently active first.
    Flows {
        /// List at most this many flows.
        #[arg(long, value_name = "N", default_value_t = 100)]
        max: u64,
    },
    /// A candidate policy judged beside the active one, never enforced.
    Shadow {
        #[command(subcommand)]
        cmd: ShadowCmd,
    },
    /// Workloads quarantined by a `quarantine: true` rule.
    Quarantine {
        #[command(subcommand)]
        cmd: QuarantineCmd,
    },
    /// What groups in `learn` mode observed on this node.
    Learn {
        #[command(subcommand)]
        cmd: LearnCmd,
    },
    /// Flow capture files (needs `palisade run --capture-dir`), newest first: each file's
    /// size and the alert it belongs to (flow, rule, signature, time, ends, workloads).
    Captures {
        /// List at most this many files.
        #[arg(long, value_name = "N", default_value_t = 100)]
        max: u64,
        /// A table for people, or the daemon's JSON answer for scripts.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Events as they are written.
    Events {
        /// Stream events until interrupted (required: there is no other mode yet).
        #[arg(long, short = 'f', required = true)]
        follow: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// The policy in force: version, where it came from, and its text.
    Show {
        /// List the versions kept for rollback instead (newest first), with their origin.
        #[arg(long)]
        history: bool,
    },
    /// Put the version before the running one in force again (as a new version, from
    /// the text that ran then); a second rollback goes one further back.
    Rollback,
    /// Load FILE as the new policy; if it is invalid it is rejected and the running one
    /// stays (exit 2, with the daemon's file:line errors).
    Apply {
        /// The policy file (read by the daemon, with the daemon's inventory).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ShadowCmd {
    /// Judge FILE beside the active policy from now on (replaces any candidate); it never
    /// enforces, and every disagreement is a `shadow` record.
    Apply {
        /// The candidate policy file (read by the daemon, with the daemon's inventory).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// The candidate and its disagreements with the active policy, per rule pair.
    Show,
    /// Make the candidate the active policy, in one swap.
    Promote,
    /// Stop judging by the candidate.
    Clear,
}

#[derive(Subcommand)]
enum QuarantineCmd {
    /// The quarantined workloads: since when, the rule and what it matched.
    List,
    /// Lift the quarantine of WORKLOAD (`namespace/name`, a name alone, or an address):
    /// its new flows are judged by the policy again.
    Release {
        /// The quarantined workload, as `quarantine list` names it (`namespace/name`),
        /// its name alone, or its address.
        #[arg(value_name = "WORKLOAD")]
        workload: String,
    },
}

#[derive(Subcommand)]
enum LearnCmd {
    /// Write the allow rules proposed from what was observed so far (the proposal
    /// `palisade learn` makes from captures) to POLICY.yaml.
    Export {
        /// The file to write (`-` for stdout).
        #[arg(short = 'o', long = "output", value_name = "POLICY.yaml")]
        output: PathBuf,
    },
}

/// The absolute path of `file` (the daemon reads it, from its own working directory).
fn absolute(file: &std::path::Path) -> Result<PathBuf, ExitCode> {
    std::fs::canonicalize(file).map_err(|e| {
        eprintln!("palisadectl: {}: {e}", file.display());
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli
        .socket
        .or_else(|| std::env::var_os("PALISADE_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/run/palisade.sock"));
    let request = match cli.cmd {
        Cmd::Status => serde_json::json!({"cmd": "status"}),
        Cmd::Policy {
            cmd: PolicyCmd::Show { history },
        } => serde_json::json!({"cmd": "policy_show", "history": history}),
        Cmd::Policy {
            cmd: PolicyCmd::Rollback,
        } => serde_json::json!({"cmd": "policy_rollback"}),
        // The daemon reads the file itself (diagnostics name it): send an absolute path.
        Cmd::Policy {
            cmd: PolicyCmd::Apply { file },
        } => match absolute(&file) {
            Ok(p) => serde_json::json!({"cmd": "policy_apply", "path": p}),
            Err(code) => return code,
        },
        Cmd::Shadow {
            cmd: ShadowCmd::Apply { file },
        } => match absolute(&file) {
            Ok(p) => serde_json::json!({"cmd": "shadow_apply", "path": p}),
            Err(code) => return code,
        },
        Cmd::Shadow {
            cmd: ShadowCmd::Show,
        } => serde_json::json!({"cmd": "shadow_show"}),
        Cmd::Shadow {
            cmd: ShadowCmd::Promote,
        } => serde_json::json!({"cmd": "shadow_promote"}),
        Cmd::Shadow {
            cmd: ShadowCmd::Clear,
        } => serde_json::json!({"cmd": "shadow_clear"}),
        Cmd::Quarantine {
            cmd: QuarantineCmd::List,
        } => serde_json::json!({"cmd": "quarantine_list"}),
        Cmd::Quarantine {
            cmd: QuarantineCmd::Release { ref workload },
        } => serde_json::json!({"cmd": "quarantine_release", "workload": workload}),
        Cmd::Learn {
            cmd: LearnCmd::Export { ref output },
        } => serde_json::json!({"cmd": "learn_export", "output": output}),
        Cmd::Flows { max } => serde_json::json!({"cmd": "flows", "max": max}),
        Cmd::Captures { max, format } => {
            serde_json::json!({"cmd": "captures", "max": max, "table": format == Format::Text})
        }
        Cmd::Events { .. } => serde_json::json!({"cmd": "events"}),
    };
    let stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "palisadectl: cannot connect to {}: {e} (is `palisade run --control {}` running?)",
                socket.display(),
                socket.display()
            );
            return ExitCode::from(2);
        }
    };
    match talk(stream, &request) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("palisadectl: {e}");
            ExitCode::from(2)
        }
    }
}

fn talk(mut stream: UnixStream, request: &serde_json::Value) -> std::io::Result<ExitCode> {
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::other("the daemon closed the connection"));
    }
    let answer: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| std::io::Error::other(format!("bad answer from the daemon: {e}")))?;
    if answer.get("ok") != Some(&serde_json::Value::Bool(true)) {
        // A policy that fails to load, or a request the daemon cannot serve as asked: bad
        // input, as `palisade` exits for it (PRODUCT.md).
        let err = answer
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("request failed");
        eprint!("palisadectl: {err}");
        if !err.ends_with('\n') {
            eprintln!();
        }
        return Ok(ExitCode::from(2));
    }
    if answer.get("following").is_some() {
        // Stream event lines as they come.
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(ExitCode::SUCCESS);
            }
            out.write_all(line.as_bytes())?;
            out.flush()?;
        }
    }
    if request.get("cmd").and_then(|c| c.as_str()) == Some("policy_show")
        && request.get("history") != Some(&serde_json::Value::Bool(true))
        && let Some(text) = answer.get("text").and_then(|t| t.as_str())
    {
        println!(
            "# version {} ({} rules) from {} ({})",
            answer.get("version").unwrap_or(&serde_json::Value::Null),
            answer.get("rules").unwrap_or(&serde_json::Value::Null),
            answer.get("source").and_then(|s| s.as_str()).unwrap_or("?"),
            answer.get("origin").and_then(|s| s.as_str()).unwrap_or("?")
        );
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    if request.get("cmd").and_then(|c| c.as_str()) == Some("learn_export")
        && let (Some(yaml), Some(out)) = (
            answer.get("policy").and_then(|t| t.as_str()),
            request.get("output").and_then(|o| o.as_str()),
        )
    {
        if out == "-" {
            print!("{yaml}");
        } else {
            std::fs::write(out, yaml).map_err(|e| std::io::Error::other(format!("{out}: {e}")))?;
            let n = |k: &str| answer.pointer(k).cloned().unwrap_or_default();
            println!(
                "wrote {out}: {} rule(s) from {} record(s) ({} flows, {} transactions; {} held for review)",
                n("/counts/rules"),
                n("/records"),
                n("/counts/flows"),
                n("/counts/transactions"),
                n("/counts/held_for_review"),
            );
            if answer.get("learning") == Some(&serde_json::Value::Bool(false)) {
                eprintln!(
                    "palisadectl: note: no group of the running policy is in learn mode; nothing new is being learned"
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if request.get("table") == Some(&serde_json::Value::Bool(true)) {
        print!("{}", captures_table(&answer));
        return Ok(ExitCode::SUCCESS);
    }
    let pretty = serde_json::to_string_pretty(&answer).unwrap_or_else(|_| line.clone());
    println!("{pretty}");
    Ok(ExitCode::SUCCESS)
}

/// `palisadectl captures` as a table: one line per file, newest first, with the alert it
/// belongs to; the directory's usage and bounds above, removals below.
fn captures_table(answer: &serde_json::Value) -> String {
    use serde_json::Value;
    let s = |v: &Value, p: &str| match v.pointer(p) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(x) => x.to_string(),
    };
    let workload = |v: &Value, side: &str| {
        let ns = v.pointer(&format!("/{side}_workload/namespace"));
        match (v.pointer(&format!("/{side}_workload/name")), ns) {
            (Some(Value::String(n)), Some(Value::String(ns))) => format!("{ns}/{n}"),
            (Some(Value::String(n)), _) => n.clone(),
            _ => "-".to_string(),
        }
    };
    let end = |v: &Value, side: &str| match (
        v.get(format!("{side}_ip")),
        v.get(format!("{side}_port")),
    ) {
        (Some(Value::String(ip)), Some(port)) if ip.contains(':') => format!("[{ip}]:{port}"),
        (Some(Value::String(ip)), Some(port)) => format!("{ip}:{port}"),
        (Some(Value::String(ip)), None) => ip.clone(),
        _ => "-".to_string(),
    };
    let mut rows = vec![
        [
            "FILE",
            "BYTES",
            "FLOW",
            "RULE",
            "ALERT TIME",
            "PROTO",
            "SOURCE",
            "DESTINATION",
            "SIGNATURE",
        ]
        .map(String::from),
    ];
    let empty = Vec::new();
    for c in answer
        .get("captures")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
    {
        // The alert's rule when the file has one, else the rule that captured.
        let rule = match c.pointer("/policy_verdict/rule") {
            Some(Value::String(r)) => r.clone(),
            _ => s(c, "/capture_rule"),
        };
        let (time, signature) = if c.get("alert").is_some() {
            (s(c, "/timestamp"), s(c, "/alert/signature"))
        } else if c.get("event_type").is_some() {
            ("-".to_string(), "(no alert: flow record)".to_string())
        } else if c.get("open") == Some(&Value::Bool(true)) {
            ("-".to_string(), "(no alert yet: being written)".to_string())
        } else {
            ("-".to_string(), "(no sidecar)".to_string())
        };
        let mut file = s(c, "/file");
        if c.get("open") == Some(&Value::Bool(true)) {
            file.push_str(" *");
        }
        rows.push([
            file,
            s(c, "/bytes"),
            s(c, "/flow_id"),
            rule,
            time,
            s(c, "/proto"),
            format!("{} {}", end(c, "src"), workload(c, "src")),
            format!("{} {}", end(c, "dest"), workload(c, "dest")),
            signature,
        ]);
    }
    let mut widths = [0usize; 9];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "{}: {} file(s), {} bytes (bounds: max files {}, max bytes {}); {} listed\n",
        s(answer, "/dir"),
        s(answer, "/usage/files"),
        s(answer, "/usage/bytes"),
        s(answer, "/bounds/max_files"),
        s(answer, "/bounds/max_bytes"),
        rows.len() - 1,
    );
    for r in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "*: its flow is still being written. Removed to keep the bounds: {} file(s), {} bytes\n",
        s(answer, "/counters/removed"),
        s(answer, "/counters/removed_bytes"),
    ));
    out
}

//! `palisadectl`: talks to a running `palisade run` over its control socket.
//!
//! The protocol is JSON lines (see `dataplane/src/live/ctl.rs`): one request line, one
//! answer line; `events --follow` streams event lines until interrupted.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: palisadectl [--socket PATH] COMMAND
commands:
  status                 counters, policy version and loads, source
  policy show            the policy in force (version, source, text)
  policy apply FILE      load FILE as the new policy (rejected if invalid; the running one stays)
  flows [--max N]        open flows, most recently active first
  captures               flow captures written (needs --capture-dir)
  events --follow        stream events as they are written
  --version              this program's version
The socket defaults to $PALISADE_SOCKET, else /run/palisade.sock.";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut socket = std::env::var_os("PALISADE_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/palisade.sock"));
    if let Some(i) = args.iter().position(|a| a == "--socket") {
        let Some(p) = args.get(i + 1).cloned() else {
            eprintln!("palisadectl: --socket needs a path\n{USAGE}");
            return ExitCode::from(2);
        };
        socket = PathBuf::from(p);
        args.drain(i..=i + 1);
    }
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let request = match words.as_slice() {
        ["status"] => serde_json::json!({"cmd": "status"}),
        ["policy", "show"] => serde_json::json!({"cmd": "policy_show"}),
        ["policy", "apply", file] => {
            // The daemon reads the file itself (diagnostics name it): send an absolute path.
            match std::fs::canonicalize(file) {
                Ok(p) => serde_json::json!({"cmd": "policy_apply", "path": p}),
                Err(e) => {
                    eprintln!("palisadectl: {file}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        ["flows"] => serde_json::json!({"cmd": "flows"}),
        ["flows", "--max", n] => match n.parse::<u64>() {
            Ok(n) => serde_json::json!({"cmd": "flows", "max": n}),
            Err(_) => {
                eprintln!("palisadectl: --max needs a number");
                return ExitCode::from(2);
            }
        },
        ["captures"] => serde_json::json!({"cmd": "captures"}),
        ["events", "--follow"] | ["events", "-f"] => serde_json::json!({"cmd": "events"}),
        ["-V"] | ["--version"] | ["version"] => {
            println!("palisadectl {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        ["-h"] | ["--help"] | ["help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("palisadectl: unknown command\n{USAGE}");
            return ExitCode::from(2);
        }
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
        let err = answer
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("request failed");
        eprintln!("palisadectl: {err}");
        return Ok(ExitCode::from(1));
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
        && let Some(text) = answer.get("text").and_then(|t| t.as_str())
    {
        println!(
            "# version {} ({} rules) from {}",
            answer.get("version").unwrap_or(&serde_json::Value::Null),
            answer.get("rules").unwrap_or(&serde_json::Value::Null),
            answer.get("source").and_then(|s| s.as_str()).unwrap_or("?")
        );
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let pretty = serde_json::to_string_pretty(&answer).unwrap_or_else(|_| line.clone());
    println!("{pretty}");
    Ok(ExitCode::SUCCESS)
}

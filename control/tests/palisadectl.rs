//! palisadectl's own behaviour without a daemon, or against a stand-in that answers as the
//! daemon does (the real daemon side is tested end to end in dataplane/tests/live.rs,
//! which drives palisadectl against `palisade run`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;

fn ctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisadectl"))
        .args(args)
        .env_remove("PALISADE_SOCKET")
        .output()
        .expect("run palisadectl")
}

#[test]
fn no_daemon_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("none.sock");
    let out = ctl(&["--socket", sock.to_str().expect("utf-8"), "status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to"), "{err}");
    assert!(err.contains("none.sock"), "{err}");
}

#[test]
fn bad_arguments_and_missing_files_exit_2() {
    let cases: [&[&str]; 7] = [
        &["frobnicate"],
        &[],
        &["policy"],
        &["policy", "apply"],
        &["flows", "--max", "many"],
        &["events"],
        &["status", "--bogus"],
    ];
    for args in cases {
        let out = ctl(args);
        assert_eq!(out.status.code(), Some(2), "palisadectl {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        // clap's message: the usage, or (a bad value) a pointer to --help.
        assert!(
            err.contains("Usage: palisadectl") || err.contains("try '--help'"),
            "{args:?}: {err}"
        );
    }
    let out = ctl(&["policy", "apply", "/nonexistent/policy.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/policy.yaml"));
    // Asking for help or the version is not an error.
    assert_eq!(ctl(&["--help"]).status.code(), Some(0));
    let v = ctl(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("palisadectl "));
}

/// Serves one request on `sock` with `answer`, returning the request line.
fn stand_in(sock: &Path, answer: &'static str) -> std::thread::JoinHandle<String> {
    let listener = UnixListener::bind(sock).expect("bind");
    std::thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut line = String::new();
        r.read_line(&mut line).expect("read request");
        let mut w = s;
        w.write_all(answer.as_bytes()).expect("answer");
        line
    })
}

#[test]
fn a_policy_the_daemon_rejects_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("ctl.sock");
    let policy = dir.path().join("bad.yaml");
    std::fs::write(&policy, "kind: SegmentationPolicy\n").expect("write");
    // What the daemon answers when the policy fails to load (api/ctl.rs).
    let server = stand_in(
        &sock,
        "{\"ok\":false,\"error\":\"bad.yaml:3:7: error: unknown field `spek`\\n  = help: did you mean `spec`?\",\"version\":1}\n",
    );
    let out = ctl(&[
        "--socket",
        sock.to_str().expect("utf-8"),
        "policy",
        "apply",
        policy.to_str().expect("utf-8"),
    ]);
    let request = server.join().expect("stand-in");
    assert!(request.contains("\"policy_apply\""), "{request}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a rejected policy is bad input, as in palisade"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("palisadectl: bad.yaml:3:7: error: unknown field `spek`"),
        "{err}"
    );

    // And a good one: exit 0 with the daemon's answer.
    std::fs::remove_file(&sock).expect("rm");
    let server = stand_in(&sock, "{\"ok\":true,\"version\":2}\n");
    let out = ctl(&[
        "--socket",
        sock.to_str().expect("utf-8"),
        "policy",
        "apply",
        policy.to_str().expect("utf-8"),
    ]);
    server.join().expect("stand-in");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"version\": 2"));
}

/// One entry of clap's long help (see dataplane/tests/help.rs for the format).
fn undescribed(text: &str) -> (Vec<String>, Vec<String>, usize) {
    let mut section = String::new();
    let mut entries: Vec<(String, String, bool)> = Vec::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if indent == 0 && trimmed.ends_with(':') && !trimmed.contains(' ') {
            section = trimmed.trim_end_matches(':').to_owned();
            continue;
        }
        if matches!(section.as_str(), "Options" | "Arguments" | "Commands")
            && (2..=6).contains(&indent)
        {
            let (sig, rest) = trimmed.split_once("  ").unwrap_or((trimmed, ""));
            entries.push((
                section.clone(),
                sig.trim().to_owned(),
                !rest.trim().is_empty(),
            ));
        } else if indent > 6
            && !trimmed.is_empty()
            && let Some(last) = entries.last_mut()
        {
            last.2 = true;
        }
    }
    let missing = entries
        .iter()
        .filter(|e| !e.2)
        .map(|e| format!("{} `{}`", e.0, e.1))
        .collect();
    let commands = entries
        .iter()
        .filter(|e| e.0 == "Commands" && e.1 != "help")
        .map(|e| e.1.clone())
        .collect();
    (missing, commands, entries.len())
}

#[test]
fn every_option_and_argument_has_help() {
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut missing = Vec::new();
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = ctl(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let (m, cmds, n) = undescribed(&String::from_utf8_lossy(&out.stdout));
        seen += n;
        missing.extend(
            m.into_iter()
                .map(|m| format!("palisadectl {}: {m}", args.join(" "))),
        );
        for c in cmds {
            let mut sub = path.clone();
            sub.push(c);
            todo.push(sub);
        }
    }
    assert!(
        missing.is_empty(),
        "without a description:\n{}",
        missing.join("\n")
    );
    assert!(seen > 15, "only {seen} entries walked");
}

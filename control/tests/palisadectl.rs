//! palisadectl's own behaviour without a daemon (the daemon side is tested end to end in
//! dataplane/tests/live.rs, which drives palisadectl against `palisade run`).

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
fn unknown_commands_and_missing_files_exit_2() {
    let out = ctl(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: palisadectl"));
    let out = ctl(&["policy", "apply", "/nonexistent/policy.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/policy.yaml"));
}

//! `palisade run` with real clients and servers in network namespaces. Each case is a
//! script under tests/live/ (topology, servers, clients, assertions on what the clients
//! see, on the servers' own records, on events, metrics and palisadectl); this harness
//! runs them one at a time and fails with their output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The scripts share the CPU with the daemon under test: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn palisadectl() -> PathBuf {
    // Built by `cargo test --workspace` (control's integration tests build its binaries)
    // next to palisade.
    let p = Path::new(env!("CARGO_BIN_EXE_palisade")).with_file_name("palisadectl");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p control --bin palisadectl`",
        p.display()
    );
    p
}

fn run_script(name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let script = root().join("tests/live").join(name);
    let out = Command::new("bash")
        .arg(&script)
        .env("PALISADE", env!("CARGO_BIN_EXE_palisade"))
        .env("PALISADECTL", palisadectl())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("PASS {}", name.trim_end_matches(".sh"))),
        "{name} did not reach its end:\n{stdout}\n{stderr}"
    );
}

#[test]
fn nfqueue_http_curl_nginx() {
    run_script("nfqueue-http.sh");
}

#[test]
fn nfqueue_redis_postgres() {
    run_script("nfqueue-db.sh");
}

#[test]
fn nfqueue_dns_grpc() {
    run_script("nfqueue-dns-grpc.sh");
}

#[test]
fn nfqueue_policy_swaps_under_traffic() {
    run_script("nfqueue-swap.sh");
}

#[test]
fn nfqueue_shadow_promote_rollback() {
    run_script("nfqueue-lifecycle.sh");
}

#[test]
fn bridge_and_tap() {
    run_script("bridge-tap.sh");
}

#[test]
fn nfqueue_reset_forward_and_local() {
    run_script("nfqueue-reset.sh");
}

#[test]
fn nfqueue_evasion_http_curl_nginx() {
    run_script("nfqueue-evasion-http.sh");
}

#[test]
fn nfqueue_evasion_db_psql_redis() {
    run_script("nfqueue-evasion-db.sh");
}

#[test]
fn nfqueue_evasion_tcp_scapy_nginx() {
    run_script("nfqueue-evasion-tcp.sh");
}

#[test]
fn nfqueue_quarantine_curl_nginx() {
    run_script("nfqueue-quarantine.sh");
}

#[test]
fn nfqueue_alert_sinks_rsyslog_webhooks() {
    run_script("nfqueue-alert-sinks.sh");
}

#[test]
fn nfqueue_bounded_captures() {
    run_script("nfqueue-captures.sh");
}

#[test]
fn containerd_e2e_runtime() {
    run_script("containerd-e2e.sh");
}

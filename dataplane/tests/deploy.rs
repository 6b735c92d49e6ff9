//! The Kubernetes manifests (`deploy/kubernetes/`, and the variant in
//! `deploy/kubernetes-file-inventory/`) are what a cluster accepts, and they drive the
//! daemon with flags it has:
//! - every manifest validates against Kubernetes' OpenAPI schemas, offline, with
//!   `kubernetes-validate --strict` (bundled schemas; the version pinned in
//!   `tests/peers/pip/k8s.txt`, installed by `bash tests/peers/install.sh`) for the
//!   oldest and newest Kubernetes it checks here; a missing validator fails the test;
//! - each kustomization lists files that exist, and every manifest is in one;
//! - the DaemonSet's arguments are flags of `palisade run`, and the patches that edit
//!   them by position still find the argument they expect.
//!
//! The custom resources' schema (crds.yaml) is checked against the model and the
//! sample policies by `control/tests/crd.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The Kubernetes versions the manifests are checked against (kubernetes-validate
/// bundles 1.25 to 1.37).
const KUBERNETES: [&str; 2] = ["1.28.0", "1.37.0"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn shown(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The YAML files of the two deploy directories, in a stable order.
fn manifests() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["deploy/kubernetes", "deploy/kubernetes-file-inventory"] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

fn is_kustomization(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "kustomization.yaml")
}

fn documents(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).expect("read manifest");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", p.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 has no kubernetes_validate module: run `bash tests/peers/install.sh` \
             (installs kubernetes-validate from tests/peers/pip/k8s.txt)\n{}",
            shown(&o)
        ),
        Err(e) => panic!(
            "python3 is needed to validate the Kubernetes manifests ({e}): run \
             `bash tests/peers/install.sh`"
        ),
    }
    let files: Vec<PathBuf> = manifests()
        .into_iter()
        .filter(|p| !is_kustomization(p))
        .collect();
    let docs: usize = files.iter().map(|f| documents(f).len()).sum();
    assert!(docs >= 8, "only {docs} manifests in {files:?}");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    for k in KUBERNETES {
        cmd.args(["-k", k]);
    }
    let out = cmd.args(&files).output().expect("run kubernetes-validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A kind it has no schema for is only a warning to kubernetes-validate: here it is a
    // failure, as is any line that is not a pass.
    let passed = stdout
        .lines()
        .filter(|l| l.starts_with("INFO ") && l.contains(" passed for resource "))
        .count();
    let other: Vec<&str> = stdout
        .lines()
        .filter(|l| !(l.starts_with("INFO ") && l.contains(" passed for resource ")))
        .collect();
    assert!(
        out.status.success() && other.is_empty() && passed == docs * KUBERNETES.len(),
        "kubernetes-validate: {passed} passes for {docs} manifests x {} versions\n{}",
        KUBERNETES.len(),
        shown(&out)
    );
}

#[test]
fn kustomizations_apply_every_manifest() {
    let all = manifests();
    let mut listed = Vec::new();
    for k in all.iter().filter(|p| is_kustomization(p)) {
        let dir = k.parent().expect("dir");
        let doc = documents(k).remove(0);
        assert_eq!(doc["kind"], "Kustomization", "{}", k.display());
        for r in doc["resources"].as_array().expect("resources") {
            let p = dir.join(r.as_str().expect("resource path"));
            assert!(
                p.is_file() || p.join("kustomization.yaml").is_file(),
                "{}: resource {} does not exist",
                k.display(),
                p.display()
            );
            if p.is_file() {
                listed.push(p.canonicalize().expect("resource"));
            }
        }
    }
    for m in all.iter().filter(|p| !is_kustomization(p)) {
        assert!(
            listed.contains(&m.canonicalize().expect("manifest")),
            "{} is in no kustomization.yaml: `kubectl apply -k` would leave it out",
            m.display()
        );
    }
}

fn daemonset_args() -> Vec<String> {
    let ds = documents(&root().join("deploy/kubernetes/daemonset.yaml")).remove(0);
    ds["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg").to_owned())
        .collect()
}

#[test]
fn the_daemonset_runs_palisade_with_flags_it_has() {
    let args = daemonset_args();
    assert_eq!(args[0], "run");
    let help = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["run", "--help"])
        .output()
        .expect("palisade run --help");
    assert!(help.status.success(), "{}", shown(&help));
    let help = String::from_utf8_lossy(&help.stdout);
    for a in &args[1..] {
        let flag = a.split('=').next().unwrap_or(a);
        assert!(
            flag.starts_with("--") && help.contains(&format!("{flag} ")),
            "daemonset.yaml passes `{a}`: `palisade run` has no {flag}"
        );
    }
    for flag in [
        "--inventory",
        "--state-dir",
        "--log-dir",
        "--metrics",
        "--control",
    ] {
        assert!(
            args.iter().any(|a| a.starts_with(&format!("{flag}="))),
            "daemonset.yaml should pass {flag}"
        );
    }
    // Patches edit the arguments by position (JSON patch has no other way into a list):
    // the file-inventory variant (which tests it too) and the commented metrics patch in
    // kustomization.yaml.
    assert_eq!(args[3], "--inventory=containerd");
    // The watcher reads each sandbox's addresses from /proc/PID/net (the host's PIDs), and
    // reaches containerd through its directory (a restarted containerd's new socket).
    let ds = documents(&root().join("deploy/kubernetes/daemonset.yaml")).remove(0);
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostPID"].as_bool(), Some(true), "hostPID");
    let mounts = spec["containers"][0]["volumeMounts"]
        .as_array()
        .expect("volumeMounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/run/containerd" && m["readOnly"] == true),
        "containerd's directory mounted read-only: {mounts:?}"
    );
    assert_eq!(args[9], "--metrics=127.0.0.1:9464");
    let variant =
        std::fs::read_to_string(root().join("deploy/kubernetes-file-inventory/kustomization.yaml"))
            .expect("variant");
    assert!(variant.contains("path: /spec/template/spec/containers/0/args/3"));
    let base = std::fs::read_to_string(root().join("deploy/kubernetes/kustomization.yaml"))
        .expect("kustomization");
    assert!(base.contains("path: /spec/template/spec/containers/0/args/9"));
}

//! README.md's "Using it" section, walked as written: every fenced `console` block is a
//! session run from the repository's root (`$ ` lines are commands, the lines under them
//! what the terminal shows, stdout and stderr together; a line `...` stands for any number
//! of lines). The `palisade` this test was built with is first on PATH, as `cargo install`
//! would put it. Blocks of other kinds are checked for what can be checked without
//! running them: the install command names the packages that build both binaries, and the
//! synopsis names every subcommand.
//!
//! Not run: `cargo install` (a release build into ~/.cargo/bin; the test uses the build it
//! has), and anything needing root or a live network (`palisade run`, `palisadectl`
//! against a daemon, `deploy/`): dataplane/tests/live.rs runs those in network namespaces.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo root")
}

/// The fenced blocks of the section under `## {title}`: (info string, lines).
fn blocks(readme: &str, title: &str) -> Vec<(String, Vec<String>)> {
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README.md has no \"## {title}\" section"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    let mut out = Vec::new();
    let mut cur: Option<(String, Vec<String>, usize)> = None;
    for line in rest[..end].lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        match &mut cur {
            None if t.starts_with("```") => {
                cur = Some((
                    t.trim_start_matches('`').trim().to_owned(),
                    Vec::new(),
                    indent,
                ))
            }
            None => {}
            Some(_) if t.starts_with("```") => {
                if let Some((info, lines, _)) = cur.take() {
                    out.push((info, lines));
                }
            }
            Some((_, lines, ind)) => {
                lines.push(line.get(*ind..).unwrap_or(line.trim_start()).to_owned())
            }
        }
    }
    assert!(cur.is_none(), "an unclosed fence in \"{title}\"");
    out
}

/// A session's commands with the output shown under each.
fn session(lines: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for l in lines {
        if let Some(cmd) = l.strip_prefix("$ ") {
            out.push((cmd.to_owned(), Vec::new()));
        } else if let Some((_, shown)) = out.last_mut() {
            shown.push(l.clone());
        } else {
            panic!("output before any command: {l}");
        }
    }
    out
}

/// Whether `got` matches `want`, where a `...` line in `want` matches any lines.
fn matches(want: &[String], got: &[&str]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((w, rest)) if w == "..." => (0..=got.len()).any(|i| matches(rest, &got[i..])),
        Some((w, rest)) => {
            got.first().is_some_and(|g| g.trim_end() == w.trim_end()) && matches(rest, &got[1..])
        }
    }
}

/// A directory that looks like the repository's root (its top-level entries linked), so
/// what the commands write (`eve.json`, `captures/`) lands outside the checkout.
fn checkout_view() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(repo()).expect("read repo") {
        let e = e.expect("entry");
        let name = e.file_name();
        if name == "target" || name == ".git" || name == "eve.json" || name == "captures" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), dir.path().join(&name)).expect("symlink");
    }
    dir
}

#[test]
fn using_it_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let blocks = blocks(&readme, "Using it");
    let bin = Path::new(env!("CARGO_BIN_EXE_palisade"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    let mut failures = Vec::new();
    for (info, lines) in &blocks {
        match info.as_str() {
            "console" => {}
            "sh" => {
                // The install command: both packages, each the owner of its binary.
                let text = lines.join("\n");
                assert!(
                    text.contains("cargo install --locked --path dataplane")
                        && text.contains("cargo install --locked --path control"),
                    "{text}"
                );
                for (pkg, bin) in [("dataplane", "palisade"), ("control", "palisadectl")] {
                    let toml =
                        std::fs::read_to_string(repo().join(pkg).join("Cargo.toml")).unwrap();
                    let main = if bin == "palisade" {
                        repo().join(pkg).join("src/main.rs")
                    } else {
                        repo().join(pkg).join(format!("src/bin/{bin}.rs"))
                    };
                    assert!(
                        main.exists() || toml.contains(&format!("name = \"{bin}\"")),
                        "{bin}"
                    );
                }
                continue;
            }
            "text" => {
                // The synopsis: every subcommand of both binaries.
                let text = lines.join("\n");
                for cmd in [
                    "palisade replay",
                    "palisade run",
                    "palisade policy check",
                    "palisade policy diff",
                    "palisade learn",
                    "palisade bench",
                    "palisade demo",
                    "palisadectl",
                ] {
                    assert!(text.contains(cmd), "the synopsis lacks `{cmd}`");
                }
                continue;
            }
            "shell" => {
                // A live workflow (it needs a node): every palisadectl command in it must
                // be one palisadectl has, with arguments it accepts.
                let ctl = bin.join("palisadectl");
                for line in lines {
                    let line = line.split(" #").next().unwrap_or_default().trim();
                    let Some(args) = line.strip_prefix("palisadectl ") else {
                        continue;
                    };
                    let out = std::process::Command::new(&ctl)
                        .args(args.split_whitespace())
                        .arg("--help")
                        .output()
                        .expect("run palisadectl");
                    assert!(
                        out.status.success(),
                        "README: `{line}` is not a palisadectl command: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    ran += 1;
                }
                continue;
            }
            other => {
                panic!("a block of kind `{other}` in \"Using it\": console, sh, shell or text")
            }
        }
        let cwd = checkout_view();
        for (cmd, shown) in session(lines) {
            let o = Command::new("bash")
                .arg("-c")
                .arg(format!("{cmd} 2>&1"))
                .current_dir(cwd.path())
                .env("PATH", &path)
                .output()
                .expect("bash");
            ran += 1;
            let got = String::from_utf8_lossy(&o.stdout).into_owned();
            let got_lines: Vec<&str> = got.lines().collect();
            if !matches(&shown, &got_lines) {
                failures.push(format!(
                    "$ {cmd}\n--- README shows\n{}\n--- the terminal shows\n{got}",
                    shown.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        ran >= 5,
        "only {ran} commands ran: is the walk-through there?"
    );
}

#[test]
fn the_matcher_matches() {
    let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches(&w(&["a", "...", "d"]), &["a", "b", "c", "d"]));
    assert!(matches(&w(&["a", "...", "d"]), &["a", "d"]));
    assert!(!matches(&w(&["a", "d"]), &["a", "b", "d"]));
    assert!(matches(&w(&["..."]), &[]));
    assert!(!matches(&w(&["x"]), &[]));
}

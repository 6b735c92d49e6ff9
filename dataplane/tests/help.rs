//! `palisade --help` as a newcomer reads it: every subcommand's help is walked, and every
//! option, argument and subcommand must say what it is for.

use std::process::Command;

/// The `--help` text of `palisade ARGS... --help`.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run palisade");
    assert_eq!(out.status.code(), Some(0), "{args:?} --help");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// One entry of a help section: its signature (`--policy <POLICY.yaml>`, `<CAPTURES>...`,
/// `replay`) and whether a description follows it, on its line or the next ones.
struct Entry {
    section: String,
    signature: String,
    described: bool,
}

/// The entries of clap's long help: sections are `Name:` lines at column 0, entries are
/// lines indented by 2-6 spaces, descriptions are on the entry's line after two spaces or
/// on the lines below it indented further.
fn entries(text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut section = String::new();
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
            let (signature, rest) = match trimmed.split_once("  ") {
                Some((s, r)) => (s.trim(), r.trim()),
                None => (trimmed, ""),
            };
            out.push(Entry {
                section: section.clone(),
                signature: signature.to_owned(),
                described: !rest.is_empty(),
            });
        } else if indent > 6
            && !trimmed.is_empty()
            && let Some(last) = out.last_mut()
        {
            last.described = true;
        }
    }
    out
}

#[test]
fn every_option_and_argument_has_help() {
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    let mut missing = Vec::new();
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        for e in entries(&text) {
            seen += 1;
            if !e.described {
                missing.push(format!(
                    "palisade {} --help: {} `{}`",
                    args.join(" "),
                    e.section,
                    e.signature
                ));
            }
            if e.section == "Commands" && e.signature != "help" {
                let mut sub = path.clone();
                sub.push(e.signature.clone());
                todo.push(sub);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "without a description:\n{}",
        missing.join("\n")
    );
    // replay, run, learn, policy check and diff, demo, bench, each with options.
    assert!(
        seen > 60,
        "only {seen} entries walked: is the help format parsed?"
    );
}

#[test]
fn the_walk_sees_what_it_must() {
    let text = help(&["replay"]);
    let e = entries(&text);
    let sig = |s: &str| e.iter().find(|x| x.signature.starts_with(s));
    assert!(
        sig("--policy <POLICY.yaml>").is_some_and(|x| x.described),
        "{text}"
    );
    assert!(sig("<CAPTURES>...").is_some_and(|x| x.described), "{text}");
    assert!(
        sig("--log-dir <DIR>").is_some_and(|x| x.described),
        "{text}"
    );
    let e = entries(&help(&[]));
    for cmd in ["replay", "run", "learn", "policy", "demo", "bench"] {
        assert!(
            e.iter()
                .any(|x| x.section == "Commands" && x.signature == cmd),
            "{cmd}"
        );
    }
    // The parser flags what has no description.
    let bare = entries("Options:\n      --bare <X>\n\n      --ok  says so\n");
    assert!(!bare[0].described && bare[1].described);
}

//! Checks of a rule's L7 matchers: that they fit its `app`, and that every list and
//! pattern is well formed (HTTP methods, paths and headers; `regex:` patterns compile).

use proto_parsers::AppProto;
use regex_automata::meta::Regex;
use serde_saphyr::Spanned;

use super::{Ctx, MAX_LIST, MAX_REGEX_BYTES};
use crate::error::{Code, SourcePos};
use crate::model::{HttpMatch, L7Kind, Patterns, Rule};

fn l7_kind_for_app(app: &str) -> Option<L7Kind> {
    Some(match app {
        "http" => L7Kind::Http,
        "grpc" => L7Kind::Grpc,
        "postgres" | "mysql" => L7Kind::Sql,
        "redis" => L7Kind::Redis,
        "dns" => L7Kind::Dns,
        "tls" => L7Kind::Tls,
        _ => return None,
    })
}

pub(super) fn check_l7(cx: &mut Ctx<'_>, rule: &Rule, app: Option<AppProto>) {
    let lists = rule.l7_lists();
    let rid = rule.id.value.as_str();
    if let [(a, _, _), (b, loc, _), ..] = lists.as_slice() {
        cx.error(
            Code::L7Mismatch,
            SourcePos::new(cx.origin, *loc),
            format!(
                "rule `{rid}` has both `{}` and `{}` matchers",
                a.as_str(),
                b.as_str()
            ),
            "a rule judges one protocol; split it into one rule per protocol",
        );
        return;
    }
    let Some(&(kind, loc, n)) = lists.first() else {
        return;
    };
    let pos = SourcePos::new(cx.origin, loc);
    let app_name = rule.app.as_ref().map(|a| a.value.as_str());
    match app_name {
        None => {
            let want = kind.apps().join("` or `app: ");
            cx.error(
                Code::L7Mismatch,
                pos.clone(),
                format!(
                    "`{}` matchers in rule `{rid}`, which has no `app`",
                    kind.as_str()
                ),
                format!("add `app: {want}` so the matchers know what they judge"),
            );
        }
        // An unknown app was reported already.
        Some(_) if app.is_none() => {}
        Some(a) if !kind.apps().contains(&a) => {
            let help = match l7_kind_for_app(a) {
                Some(k) => format!(
                    "`{}` judges app {}; for `app: {a}` use `{}:`",
                    kind.as_str(),
                    kind.apps().join(" or "),
                    k.as_str()
                ),
                None => format!(
                    "`{}` judges app {}; `app: {a}` has no L7 matchers",
                    kind.as_str(),
                    kind.apps().join(" or ")
                ),
            };
            cx.error(
                Code::L7Mismatch,
                pos.clone(),
                format!(
                    "`{}` matchers do not fit `app: {a}` in rule `{rid}`",
                    kind.as_str()
                ),
                help,
            );
        }
        Some(_) => {}
    }
    if n == 0 {
        cx.error(
            Code::InvalidRule,
            pos,
            format!(
                "empty `{}` list in rule `{rid}` matches nothing",
                kind.as_str()
            ),
            format!(
                "remove `{}` to judge only at L4, or list at least one matcher",
                kind.as_str()
            ),
        );
        return;
    }
    if n > MAX_LIST {
        cx.error(
            Code::Limit,
            pos,
            format!("`{}` has {n} matchers (limit {MAX_LIST})", kind.as_str()),
            "split the rule",
        );
        return;
    }
    if let Some(list) = &rule.http {
        for m in &list.value {
            check_http(cx, m);
        }
    }
    if let Some(list) = &rule.grpc {
        for m in &list.value {
            if let Some(s) = &m.service {
                nonempty_text(cx, "service", s);
            }
            patterns(cx, "methods", &m.methods, nonempty_text);
        }
    }
    if let Some(list) = &rule.sql {
        for m in &list.value {
            patterns(cx, "verbs", &m.verbs, word);
            patterns(cx, "tables", &m.tables, nonempty_text);
            patterns(cx, "databases", &m.databases, nonempty_text);
            patterns(cx, "users", &m.users, nonempty_text);
        }
    }
    if let Some(list) = &rule.redis {
        for m in &list.value {
            patterns(cx, "commands", &m.commands, word);
            patterns(cx, "keys", &m.keys, nonempty_text);
        }
    }
    if let Some(list) = &rule.dns {
        for m in &list.value {
            patterns(cx, "names", &m.names, nonempty_text);
        }
    }
    if let Some(list) = &rule.tls {
        for m in &list.value {
            patterns(cx, "sni", &m.sni, nonempty_text);
            patterns(cx, "alpn", &m.alpn, nonempty_text);
        }
    }
}

/// Checks a matcher list field: not empty, within limits, each entry well formed.
fn patterns(
    cx: &mut Ctx<'_>,
    field: &str,
    list: &Patterns,
    check: fn(&mut Ctx<'_>, &str, &Spanned<String>),
) {
    let Some(list) = list else {
        return;
    };
    let pos = cx.pos(list);
    if !cx.list_ok(field, &list.value, pos) {
        return;
    }
    for item in &list.value {
        check(cx, field, item);
    }
}

fn nonempty_text(cx: &mut Ctx<'_>, field: &str, s: &Spanned<String>) {
    if s.value.trim().is_empty() || s.value.chars().any(char::is_whitespace) {
        let pos = cx.pos(s);
        cx.error(
            Code::InvalidPattern,
            pos,
            format!(
                "`{field}` entry `{}` is empty or contains whitespace",
                s.value
            ),
            "write the name without spaces; globs use `*`",
        );
    }
}

fn word(cx: &mut Ctx<'_>, field: &str, s: &Spanned<String>) {
    if s.value.is_empty()
        || !s
            .value
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_')
    {
        let pos = cx.pos(s);
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("`{field}` entry `{}` is not a keyword", s.value),
            format!("`{field}` lists keywords such as `SELECT` or `GET`"),
        );
    }
}

const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_http(cx: &mut Ctx<'_>, m: &HttpMatch) {
    patterns(cx, "methods", &m.methods, |cx, _, s| {
        let v = s.value.as_str();
        let pos = cx.pos(s);
        if v.is_empty() || !v.bytes().all(is_tchar) {
            cx.error(
                Code::InvalidPattern,
                pos,
                format!("`{v}` is not an HTTP method"),
                "methods are tokens such as `GET` or `POST`",
            );
        } else if v != v.to_ascii_uppercase()
            && KNOWN_METHODS.contains(&v.to_ascii_uppercase().as_str())
        {
            cx.error(
                Code::InvalidPattern,
                pos,
                format!("HTTP method `{v}` is lower-case and will never match"),
                format!(
                    "methods are case-sensitive: write `{}`",
                    v.to_ascii_uppercase()
                ),
            );
        }
    });
    patterns(cx, "paths", &m.paths, |cx, _, s| check_path(cx, s));
    patterns(cx, "hosts", &m.hosts, nonempty_text);
    if let Some(h) = &m.headers {
        for (k, _) in h.value.iter() {
            if k.0.is_empty() || !k.0.bytes().all(is_tchar) {
                let pos = cx.pos(h);
                cx.error(
                    Code::InvalidPattern,
                    pos,
                    format!("`{}` is not an HTTP header name", k.0),
                    "header names are tokens such as `content-type`",
                );
            }
        }
    }
}

fn check_path(cx: &mut Ctx<'_>, s: &Spanned<String>) {
    let p = s.value.as_str();
    let pos = cx.pos(s);
    if let Some(re) = p.strip_prefix("regex:") {
        if let Err(msg) = compile_regex(re) {
            cx.error(
                Code::InvalidRegex,
                pos,
                format!("invalid regex in path pattern `{p}`: {msg}"),
                "the text after `regex:` is a regular expression (Rust syntax); escape special characters with `\\`",
            );
        }
        return;
    }
    if !p.starts_with('/') {
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("path pattern `{p}` does not start with `/`"),
            "paths are matched from the root, e.g. `/api/*`; use `regex:` for other forms",
        );
        return;
    }
    if p.contains('?') || p.contains('#') {
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("path pattern `{p}` contains a query or fragment"),
            "paths are matched without their query; remove everything from `?`",
        );
        return;
    }
    if p.split('/').any(|seg| seg.contains('*') && seg != "*") {
        cx.error(
            Code::InvalidPattern,
            pos,
            format!("`*` in path pattern `{p}` is not a whole segment"),
            "`*` stands for exactly one segment (`/users/*/orders`) or, at the end, everything beneath (`/api/*`); use `regex:` for partial segments",
        );
    }
}

/// Compiles a pattern to check it; returns the parser's one-line reason on failure.
pub(crate) fn compile_regex(re: &str) -> Result<(), String> {
    let built = Regex::builder()
        .configure(Regex::config().nfa_size_limit(Some(MAX_REGEX_BYTES)))
        .build(re);
    match built {
        Ok(_) => Ok(()),
        Err(e) => {
            if let Some(limit) = e.size_limit() {
                return Err(format!("compiled size exceeds {limit} bytes"));
            }
            let full = e
                .syntax_error()
                .map_or_else(|| e.to_string(), ToString::to_string);
            // regex-syntax renders a caret diagram; keep only its `error: ...` line.
            Err(full
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .map_or_else(|| full.replace('\n', " "), str::to_owned))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_errors_are_one_line() {
        assert!(compile_regex("^/api/v[0-9]+/.*$").is_ok());
        let e = compile_regex("/api/(unclosed").unwrap_err();
        assert_eq!(e, "unclosed group");
        assert!(!e.contains('\n'));
    }
}

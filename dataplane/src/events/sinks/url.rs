//! `--alert-sink URL`: what each scheme means, checked at start so a typo is a clear error
//! (exit 2) rather than a sink that silently never delivers.
//!
//! - `syslog://HOST[:PORT]` RFC 5424 over UDP (RFC 5426), port 514 by default;
//! - `syslog+tcp://HOST[:PORT]` RFC 5424 over TCP with octet counting (RFC 6587), 514;
//! - `unix:///PATH` a local syslog socket (`/dev/log`), datagram or stream;
//! - `http://...`, `https://...` a webhook.
//!
//! Syslog URLs take `?facility=NAME` (default `authpriv`). The label a sink is known by in
//! metrics, status and summaries never carries credentials: user info and the query
//! string are left out (a webhook's credentials stay in memory only).

use std::fmt;
use std::path::PathBuf;

/// Where one sink delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkTarget {
    SyslogUdp {
        host: String,
        port: u16,
    },
    SyslogTcp {
        host: String,
        port: u16,
    },
    /// A local socket; its type (datagram or stream) is found when connecting.
    Unix {
        path: PathBuf,
    },
    /// `url` as requested (without user info, without fragment); `auth` the user info
    /// as an `Authorization: Basic` value.
    Webhook {
        url: String,
        auth: Option<String>,
        tls: bool,
    },
}

/// One parsed `--alert-sink`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkUrl {
    pub target: SinkTarget,
    /// Syslog facility (RFC 5424 table 1); unused by webhooks.
    pub facility: u8,
    /// How metrics, status and summaries name the sink: no user info, no query.
    pub label: String,
}

/// Why an `--alert-sink` URL was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError {
    /// The URL as given, with any user info masked.
    pub url: String,
    pub why: String,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.url, self.why)
    }
}

impl std::error::Error for UrlError {}

/// The default syslog facility: 10, `authpriv` ("security/authorization messages
/// (private)"): alerts name workloads and what they asked, and Debian's rsyslog files
/// authpriv in the restricted auth.log.
pub const DEFAULT_FACILITY: u8 = 10;

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

const SCHEMES: &str =
    "syslog://HOST:PORT, syslog+tcp://HOST:PORT, unix:///PATH, http://... or https://...";

/// Parses one `--alert-sink` value.
pub fn parse_sink_url(s: &str) -> Result<SinkUrl, UrlError> {
    let masked = mask_userinfo(s);
    let err = |why: String| UrlError {
        url: masked.clone(),
        why,
    };
    if s.chars().any(|c| c.is_control() || c == ' ') {
        return Err(err("spaces and control characters are not allowed".into()));
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(err(format!("not a URL; expected {SCHEMES}")));
    };
    let scheme = scheme.to_ascii_lowercase();
    // The fragment is never sent anywhere.
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    match scheme.as_str() {
        "syslog" | "syslog+tcp" => {
            if authority.contains('@') {
                return Err(err("a syslog sink takes no user name or password".into()));
            }
            if !(path.is_empty() || path == "/") {
                return Err(err(format!(
                    "a syslog sink has no path (`{path}`); expected {scheme}://HOST:PORT"
                )));
            }
            let facility = facility_of(query).map_err(err)?;
            let (host, port) = host_port(authority, Some(514)).map_err(err)?;
            let label = format!("{scheme}://{}", join_host_port(&host, port));
            let target = if scheme == "syslog" {
                SinkTarget::SyslogUdp { host, port }
            } else {
                SinkTarget::SyslogTcp { host, port }
            };
            Ok(SinkUrl {
                target,
                facility,
                label,
            })
        }
        "unix" => {
            if !authority.is_empty() {
                return Err(err(
                    "a unix socket URL has no host: write unix:///PATH (three slashes)".into(),
                ));
            }
            if path.len() <= 1 {
                return Err(err("no socket path; e.g. unix:///dev/log".into()));
            }
            let facility = facility_of(query).map_err(err)?;
            Ok(SinkUrl {
                target: SinkTarget::Unix {
                    path: PathBuf::from(path),
                },
                facility,
                label: format!("unix://{path}"),
            })
        }
        "http" | "https" => {
            let (userinfo, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            let default_port = if scheme == "https" { 443 } else { 80 };
            let (host, port) = host_port(hostport, Some(default_port)).map_err(err)?;
            let path = if path.is_empty() { "/" } else { path };
            let shown = if hostport.ends_with(&format!(":{port}")) {
                join_host_port(&host, port)
            } else {
                bracket(&host)
            };
            let label = format!("{scheme}://{shown}{path}");
            let url = match query {
                Some(q) => format!("{label}?{q}"),
                None => label.clone(),
            };
            let auth = userinfo.map(basic_auth);
            Ok(SinkUrl {
                target: SinkTarget::Webhook {
                    url,
                    auth,
                    tls: scheme == "https",
                },
                facility: DEFAULT_FACILITY,
                label,
            })
        }
        other => Err(err(format!("unknown scheme `{other}`; expected {SCHEMES}"))),
    }
}

/// The URL with `user:password@` replaced by `***@`, for error messages.
fn mask_userinfo(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => s.to_string(),
    }
}

fn facility_of(query: Option<&str>) -> Result<u8, String> {
    let Some(q) = query else {
        return Ok(DEFAULT_FACILITY);
    };
    let mut facility = DEFAULT_FACILITY;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("facility", name)) => {
                facility = FACILITIES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, f)| *f)
                    .ok_or_else(|| {
                        let names: Vec<&str> = FACILITIES.iter().map(|(n, _)| *n).collect();
                        format!("unknown facility `{name}`; one of {}", names.join(", "))
                    })?;
            }
            _ => {
                return Err(format!(
                    "unknown option `{pair}`; a syslog sink takes only ?facility=NAME"
                ));
            }
        }
    }
    Ok(facility)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(authority: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    if authority.is_empty() {
        return Err("no host".into());
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address opened with `[` is not closed".to_string())?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{h}` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{p}` after the address"))?,
            ),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!("`{host}` is not a host name or address"));
    }
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("`{p}` is not a port (1-65535)")),
        },
        None => default_port.ok_or_else(|| "no port".to_string())?,
    };
    Ok((host.to_string(), port))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    format!("{}:{port}", bracket(host))
}

/// `user:password` (percent-encoded as in the URL) as a Basic authorization value.
fn basic_auth(userinfo: &str) -> String {
    use base64::Engine as _;
    let decoded = percent_decode(userinfo);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(decoded)
    )
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|x| (*x as char).to_digit(16)),
                b.get(i + 2).and_then(|x| (*x as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Labels are keys in metrics and status: two sinks with the same label get `#2`, `#3`.
pub fn unique_labels(urls: &mut [SinkUrl]) {
    let mut seen: Vec<String> = Vec::with_capacity(urls.len());
    for u in urls.iter_mut() {
        let base = u.label.clone();
        let mut n = 1;
        while seen.contains(&u.label) {
            n += 1;
            u.label = format!("{base}#{n}");
        }
        seen.push(u.label.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_udp_and_tcp() {
        let u = parse_sink_url("syslog://10.0.0.5:5514").unwrap();
        assert_eq!(
            u.target,
            SinkTarget::SyslogUdp {
                host: "10.0.0.5".into(),
                port: 5514
            }
        );
        assert_eq!(u.facility, DEFAULT_FACILITY);
        assert_eq!(u.label, "syslog://10.0.0.5:5514");
        let u = parse_sink_url("syslog+tcp://logs.example.org?facility=local3").unwrap();
        assert_eq!(
            u.target,
            SinkTarget::SyslogTcp {
                host: "logs.example.org".into(),
                port: 514
            }
        );
        assert_eq!(u.facility, 19);
        assert_eq!(u.label, "syslog+tcp://logs.example.org:514");
        let u = parse_sink_url("SYSLOG://[fd00::1]:6514/").unwrap();
        assert_eq!(
            u.target,
            SinkTarget::SyslogUdp {
                host: "fd00::1".into(),
                port: 6514
            }
        );
        assert_eq!(u.label, "syslog://[fd00::1]:6514");
    }

    #[test]
    fn unix_socket() {
        let u = parse_sink_url("unix:///dev/log").unwrap();
        assert_eq!(
            u.target,
            SinkTarget::Unix {
                path: "/dev/log".into()
            }
        );
        assert_eq!(u.label, "unix:///dev/log");
        assert!(parse_sink_url("unix://dev/log").is_err());
        assert!(parse_sink_url("unix:///").is_err());
    }

    #[test]
    fn webhooks_keep_credentials_out_of_labels() {
        let u =
            parse_sink_url("https://alice:s%40cret@hooks.example.org/x/y?token=abc#frag").unwrap();
        let SinkTarget::Webhook { url, auth, tls } = &u.target else {
            panic!("{u:?}")
        };
        assert!(tls);
        assert_eq!(url, "https://hooks.example.org/x/y?token=abc");
        // "alice:s@cret"
        assert_eq!(auth.as_deref(), Some("Basic YWxpY2U6c0BjcmV0"));
        assert_eq!(u.label, "https://hooks.example.org/x/y");
        assert!(!u.label.contains("alice") && !u.label.contains("token"));

        let u = parse_sink_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(u.label, "http://127.0.0.1:8080/");
        let SinkTarget::Webhook { url, auth, tls } = &u.target else {
            panic!("{u:?}")
        };
        assert_eq!(url, "http://127.0.0.1:8080/");
        assert!(auth.is_none() && !tls);
        let u = parse_sink_url("http://[::1]:9/hook").unwrap();
        assert_eq!(u.label, "http://[::1]:9/hook");
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        for (bad, says) in [
            ("ftp://x/", "unknown scheme `ftp`"),
            ("logs.example.org:514", "not a URL"),
            ("syslog://", "no host"),
            ("syslog://host:0", "not a port"),
            ("syslog://host:70000", "not a port"),
            ("syslog://host:x", "not a port"),
            ("syslog://host:514/path", "no path"),
            ("syslog://host?facility=nope", "unknown facility"),
            ("syslog://host?level=1", "unknown option"),
            ("syslog://u:p@host", "no user name"),
            ("http://:80/", "no host"),
            ("http://ho st/", "spaces"),
            ("http://[::1/", "not closed"),
            ("http://[zz]/", "not an IPv6 address"),
            ("http://a/b\n", "control"),
            ("http://h%41st/", "not a host name"),
        ] {
            let e = parse_sink_url(bad).expect_err(bad);
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        // An error never repeats a password.
        let e = parse_sink_url("gopher://bob:hunter2@h/").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("***@h"), "{e}");
    }

    #[test]
    fn duplicate_labels_are_numbered() {
        let mut v = vec![
            parse_sink_url("http://a/").unwrap(),
            parse_sink_url("http://u:p@a/").unwrap(),
            parse_sink_url("http://a/?k=1").unwrap(),
        ];
        unique_labels(&mut v);
        let labels: Vec<&str> = v.iter().map(|u| u.label.as_str()).collect();
        assert_eq!(labels, ["http://a/", "http://a/#2", "http://a/#3"]);
    }
}

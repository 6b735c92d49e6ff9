//! A small built-in list of what scanners and attackers ask for: such transactions are held
//! for review by the learner, never allowed by a proposal. The list is deliberately short
//! and literal (well-known paths, statements and commands), so that it does not hold back
//! ordinary traffic; a policy's own deny rules (`palisade learn --policy`) add the rest.

use super::Detail;

/// Path prefixes (lower-cased) that only scanners ask an internal service for.
const PATH_PREFIXES: &[&str] = &[
    "/.env",
    "/.git/",
    "/.git",
    "/.svn/",
    "/.hg/",
    "/.ds_store",
    "/.aws/",
    "/.ssh/",
    "/.htaccess",
    "/.htpasswd",
    "/wp-login.php",
    "/wp-admin",
    "/xmlrpc.php",
    "/phpmyadmin",
    "/pma/",
    "/myadmin",
    "/cgi-bin/",
    "/server-status",
    "/server-info",
    "/actuator/env",
    "/actuator/heapdump",
    "/actuator/gateway",
    "/console",
    "/manager/html",
    "/vendor/phpunit",
    "/etc/passwd",
    "/etc/shadow",
    "/proc/self/",
    "/boaform/",
    "/hnap1",
    "/solr/admin",
    "/jmx-console",
    "/owa/auth",
    "/autodiscover/autodiscover.xml",
    "/config.json",
    "/backup.sql",
    "/dump.sql",
];

/// Substrings of a raw path (lower-cased) that are attacks whatever the prefix.
const PATH_PARTS: &[&str] = &[
    "../",
    "..\\",
    "%2e%2e",
    "/etc/passwd",
    "win.ini",
    "${jndi:",
    "<script",
    "/.git/config",
    "phpunit/src/util/php/eval-stdin.php",
];

/// User agents of scanners (lower-cased substrings).
const USER_AGENTS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "dirbuster",
    "gobuster",
    "wpscan",
    "acunetix",
    "nessus",
    "openvas",
    "fuzz faster u fool",
    "ffuf",
];

/// Tables (lower-cased, bare or schema-qualified) that reveal the server, not the data.
const SQL_TABLES: &[&str] = &[
    "information_schema",
    "pg_shadow",
    "pg_authid",
    "pg_user",
    "mysql.user",
    "mysql.db",
    "performance_schema",
];

/// Redis commands that reconfigure or take over the server.
const REDIS_COMMANDS: &[&str] = &[
    "FLUSHALL",
    "SLAVEOF",
    "REPLICAOF",
    "MODULE",
    "DEBUG",
    "MIGRATE",
    "SHUTDOWN",
];

/// DNS names only scanners or tunnels ask for.
const DNS_SUFFIXES: &[&str] = &[
    "burpcollaborator.net",
    "oastify.com",
    "interact.sh",
    "dnslog.cn",
    "canarytokens.com",
];

/// Why `d` looks like probing, if it does.
pub fn probe_reason(d: &Detail) -> Option<&'static str> {
    match d {
        Detail::Http {
            path, user_agent, ..
        } => {
            let p = path.to_ascii_lowercase();
            let under = |x: &str| {
                p == x.trim_end_matches('/')
                    || p.strip_prefix(x).is_some_and(|rest| {
                        x.ends_with('/') || rest.starts_with('/') || rest.starts_with('.')
                    })
            };
            if PATH_PREFIXES.iter().any(|x| under(x)) {
                return Some("a path scanners ask for");
            }
            if PATH_PARTS.iter().any(|x| p.contains(x)) {
                return Some("a path traversal or injection");
            }
            let ua = user_agent.as_deref().unwrap_or("").to_ascii_lowercase();
            if USER_AGENTS.iter().any(|x| ua.contains(x)) {
                return Some("a scanner's user agent");
            }
            None
        }
        Detail::Sql { tables, .. } => {
            let hit = tables.iter().any(|t| {
                let t = t.to_ascii_lowercase();
                SQL_TABLES.iter().any(|x| {
                    t == *x || t.starts_with(&format!("{x}.")) || t.ends_with(&format!(".{x}"))
                })
            });
            hit.then_some("a look at the server's catalogue or accounts")
        }
        Detail::Redis { command } => {
            let c = command.to_ascii_uppercase();
            if REDIS_COMMANDS.contains(&c.as_str()) {
                return Some("a command that takes over or wipes the server");
            }
            // `CONFIG SET dir` and friends: the parser gives the command only, so every
            // CONFIG is held (reading it is rare in an application too).
            (c == "CONFIG").then_some("a command that takes over or wipes the server")
        }
        Detail::Dns { name } => {
            let n = name.trim_end_matches('.').to_ascii_lowercase();
            DNS_SUFFIXES
                .iter()
                .any(|x| n == *x || n.ends_with(&format!(".{x}")))
                .then_some("an out-of-band callback domain")
        }
        Detail::None | Detail::Grpc { .. } | Detail::Tls { .. } => None,
    }
}

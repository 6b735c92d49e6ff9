//! A container's addresses, read from its network namespace through `/proc/PID/net`
//! (which shows the namespace of process PID): IPv4 from `fib_trie` (the `/32 host LOCAL`
//! entries), IPv6 from `if_inet6` (global scope). Loopback and link-local addresses are
//! nobody's identity and are left out. Reading needs no `setns`, only the host's PID
//! namespace (the DaemonSet's `hostPID: true`).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Most bytes read from one `/proc` table (a container has a handful of addresses; a
/// namespace with a full routing table is not a container's).
const MAX_TABLE: u64 = 4 << 20;
/// Most addresses taken from one namespace.
pub const MAX_ADDRS: usize = 64;

/// A network namespace's identity: (device, inode) of `/proc/PID/ns/net`.
pub type NetnsId = (u64, u64);

/// The namespace of process `pid` under `proc_root` (`/proc`).
pub fn netns_of(proc_root: &Path, pid: &str) -> std::io::Result<NetnsId> {
    let m = std::fs::metadata(proc_root.join(pid).join("ns/net"))?;
    Ok((m.dev(), m.ino()))
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    let mut s = String::new();
    std::fs::File::open(path)?
        .take(MAX_TABLE)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// The addresses of process `pid`'s network namespace, sorted, at most [`MAX_ADDRS`].
pub fn addresses(proc_root: &Path, pid: u32) -> std::io::Result<Vec<IpAddr>> {
    let dir = proc_root.join(pid.to_string()).join("net");
    let mut out = parse_fib_trie(&read_bounded(&dir.join("fib_trie"))?);
    // A namespace without IPv6 has no if_inet6.
    if let Ok(t) = read_bounded(&dir.join("if_inet6")) {
        out.extend(parse_if_inet6(&t));
    }
    out.sort_unstable();
    out.dedup();
    out.truncate(MAX_ADDRS);
    Ok(out)
}

/// The local (`/32 host LOCAL`) IPv4 addresses of a `fib_trie` dump, loopback left out.
pub fn parse_fib_trie(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("|-- ") {
            last = rest.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(a) = last.take()
                && !a.is_loopback()
                && !a.is_unspecified()
                && !a.is_link_local()
            {
                out.push(IpAddr::V4(a));
            }
        } else if !t.starts_with('/') {
            last = None;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The global-scope IPv6 addresses of an `if_inet6` table.
pub fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(hex), Some(_ifindex), Some(_plen), Some(scope)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if scope != "00" || hex.len() != 32 {
            continue;
        }
        let Ok(v) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let a = Ipv6Addr::from(v);
        if a.is_loopback() || a.is_unspecified() || a.is_unicast_link_local() {
            continue;
        }
        out.push(IpAddr::V6(a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.88.7.0/24 2 0 2
        +-- 10.88.7.0/28 2 0 2
           |-- 10.88.7.0
              /24 link UNICAST
           |-- 10.88.7.5
              /32 host LOCAL
        |-- 10.88.7.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.88.7.0/24 2 0 2
           |-- 10.88.7.5
              /32 host LOCAL
";

    #[test]
    fn fib_trie_local_addresses_without_loopback_or_broadcast() {
        assert_eq!(
            parse_fib_trie(FIB),
            vec!["10.88.7.5".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn if_inet6_global_scope_only() {
        let t = "00000000000000000000000000000001 01 80 10 80       lo
fd00008800070000000000000000000a 02 40 00 80     eth0
fe80000000000000b8b4fffffe2b3c4d 02 40 20 80     eth0
garbage line
";
        assert_eq!(
            parse_if_inet6(t),
            vec!["fd00:88:7::a".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn own_process_reads() {
        // This process's namespace: whatever it holds, reading it works and is bounded.
        let a = addresses(Path::new("/proc"), std::process::id()).unwrap();
        assert!(a.len() <= MAX_ADDRS);
        assert!(a.iter().all(|a| !a.is_loopback()));
    }
}

//! Shared HTTP pieces used by the HTTP/1.x, HTTP/2 and gRPC parsers, by protocol detection
//! (the bytes of a request line) and by policy matching.
//!
//! Policy matches request paths in a normalised form (PRODUCT.md: "Paths are normalised before
//! matching ... so `/api/../admin` is judged as `/admin`"). Attackers encode the characters
//! that matter (`%2e%2e`, `//`) to slip past a prefix rule while the server behind the
//! firewall decodes them; normalising the way an origin server resolves the path closes that
//! gap. Percent-encoded reserved characters (`%2F`, `%3F`) are left encoded: decoding them
//! would change which segment boundaries the server sees.

/// Normalises a request target for policy matching into `out` (cleared first):
///
/// * the query (`?...`) and fragment (`#...`) are dropped;
/// * percent-encoded unreserved characters (`ALPHA DIGIT - . _ ~`) are decoded, every other
///   escape is kept with its hex upper-cased (`%2f` -> `%2F`); bytes that are not allowed
///   raw in a path (controls, space, non-ASCII, `"` ...) are percent-encoded, so two
///   spellings of one path normalise alike and `out` is always ASCII;
/// * `.` and `..` segments are resolved (never above the root), repeated slashes collapse,
///   a trailing slash is kept, the result always starts with `/`.
///
/// Returns true for origin-form targets (`/path`). Returns false for other forms, after
/// normalising what a server would route on: absolute-form (`http://host/p?q` -> `/p`),
/// asterisk-form (`*`, for `OPTIONS`: `out` is `*`), and anything else (authority-form of
/// `CONNECT`, malformed targets), which is normalised as if it were a path.
///
/// Per request, [`normalized_path`] does the same without copying a path that is already
/// normal.
pub fn normalize_path(raw: &[u8], out: &mut String) -> bool {
    let mut bytes = std::mem::take(out).into_bytes();
    let origin = normalize_path_bytes(raw, &mut bytes);
    // `bytes` is ASCII (see above), so this never takes the lossy branch.
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    origin
}

/// The normalised form of a request target, as [`normalize_path`] gives it (always ASCII):
/// `raw`'s own path (cut at its query) when normalising would not change it, as for most
/// requests: no copy and no UTF-8 check, which were about half the cost of normalising
/// `/healthz`. Else `buf`, cleared and filled by the rebuild.
pub fn normalized_path<'a>(raw: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if let Some(p) = already_normal(raw) {
        return p;
    }
    rebuild_target(raw, buf);
    buf
}

/// [`normalize_path`] into bytes (`out` cleared first).
pub fn normalize_path_bytes(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    // Most targets are already normal paths: copy them in one go (rebuilding
    // `/api/v1/orders/42` byte by byte cost about 900 instructions, a fifth of a policy
    // decision).
    if let Some(p) = already_normal(raw) {
        out.extend_from_slice(p);
        return true;
    }
    rebuild_target(raw, out)
}

/// [`normalize_path_bytes`] of a target that is not an already-normal path.
fn rebuild_target(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if raw == b"*" {
        out.push(b'*');
        return false;
    }
    let (path, origin) = if raw.first() == Some(&b'/') {
        (raw, true)
    } else if let Some(rest) = strip_scheme(raw) {
        // Absolute-form: the authority runs to the first `/`, `?` or `#`.
        let end = rest
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        (rest.get(end..).unwrap_or_default(), false)
    } else {
        (raw, false)
    };
    let path = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .and_then(|end| path.get(..end))
        .unwrap_or(path);
    normalize_segments(path, out);
    origin
}

// Byte classes of an origin-form target for [`already_normal`].
/// Unreserved or another pchar, copied as is; not `.`.
const PLAIN: u8 = 0;
const DOT: u8 = 1;
const SLASH: u8 = 2;
/// `?` or `#`: the path ends.
const END: u8 = 3;
/// Anything normalising would change (`%`, bytes to escape).
const OTHER: u8 = 4;

// Built at compile time: `b` stays below 256, so the indexing cannot fail.
#[allow(clippy::indexing_slicing)]
const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        // `b < 256`: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let c = b as u8;
        t[b] = match c {
            b'.' => DOT,
            b'/' => SLASH,
            b'?' | b'#' => END,
            _ if is_unreserved(c) || is_pchar_extra(c) => PLAIN,
            _ => OTHER,
        };
        b += 1;
    }
    t
};

/// The path of an origin-form target (query and fragment cut) if normalising would not
/// change it: it holds only bytes copied as is and slashes, and has no empty (`//`), `.`
/// or `..` segment (a trailing slash is kept by normalising, so a final empty segment is
/// fine). One table lookup a byte.
#[inline]
fn already_normal(raw: &[u8]) -> Option<&[u8]> {
    let rest = raw.strip_prefix(b"/")?;
    let class = |b: u8| CLASS.get(usize::from(b)).copied().unwrap_or(OTHER);
    // Segment by segment: a tight scan over its plain bytes and dots, then one check of
    // the segment and of the byte that ended it (a match on every byte cost twice this).
    let mut start = 0;
    loop {
        let tail = rest.get(start..).unwrap_or_default();
        let len = tail
            .iter()
            .position(|&b| class(b) > DOT)
            .unwrap_or(tail.len());
        let seg = tail.get(..len).unwrap_or_default();
        let end = start + len;
        let dots_only = len <= 2 && seg.iter().all(|&b| b == b'.');
        match tail.get(len).map(|&b| class(b)) {
            // An empty segment before a slash is `//`; a final one is a trailing slash.
            Some(SLASH) if len == 0 => return None,
            _ if dots_only && len > 0 => return None,
            Some(SLASH) => start = end + 1,
            None => return Some(raw),
            Some(END) => return raw.get(..=end),
            Some(_) => return None,
        }
    }
}

/// The general case of [`normalize_path`]: `path` without query, rebuilt segment by
/// segment into `out` (empty).
fn normalize_segments(path: &[u8], out: &mut Vec<u8>) {
    rebuild_segments::<true>(path, out);
}

/// [`normalize_segments`]; `COPY_PLAIN`: a segment that decoding leaves as is (most:
/// `/api/v2/carts/9/../items` is five) is copied in one piece, where decoding it byte by
/// byte made such a path cost ten times an already-normal one (`false` only in the test
/// that checks the two agree).
fn rebuild_segments<const COPY_PLAIN: bool>(path: &[u8], out: &mut Vec<u8>) {
    // Segments are appended as `/seg`; `out` never holds a raw `/` inside a segment (an
    // encoded one stays `%2F`), so the last `/` in `out` always starts the last segment.
    let mut trailing_slash = false;
    let mut start = 0;
    while start <= path.len() {
        let tail = path.get(start..).unwrap_or_default();
        // One scan finds where a plain segment ends, or the first byte to decode.
        let plain_len = if COPY_PLAIN {
            tail.iter()
                .position(|&b| !matches!(CLASS.get(usize::from(b)), Some(&(PLAIN | DOT))))
                .unwrap_or(tail.len())
        } else {
            0
        };
        let plain = COPY_PLAIN && tail.get(plain_len).is_none_or(|&b| b == b'/');
        let len = if plain {
            plain_len
        } else {
            tail.iter().position(|&b| b == b'/').unwrap_or(tail.len())
        };
        let seg = tail.get(..len).unwrap_or_default();
        start += len + 1;
        if seg.is_empty() {
            trailing_slash = true;
            continue;
        }
        let mark = out.len();
        out.push(b'/');
        if plain {
            out.extend_from_slice(seg);
        } else {
            push_segment(seg, out);
        }
        let decoded = out.get(mark + 1..).unwrap_or_default();
        if decoded == b"." {
            out.truncate(mark);
            trailing_slash = true;
        } else if decoded == b".." {
            out.truncate(mark);
            let parent = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
            out.truncate(parent);
            trailing_slash = true;
        } else {
            trailing_slash = false;
        }
    }
    if out.is_empty() || trailing_slash {
        out.push(b'/');
    }
}

/// The authority a server routes a request to when its target names one: the target
/// itself for `CONNECT` (authority-form, `host:port`), the authority of an absolute-form
/// target (`http://host:port/p` -> `host:port`, as RFC 9112 section 3.2.2 has servers use
/// it in place of `Host`). `None` for origin-form and asterisk-form targets: `Host` names
/// the authority then.
pub fn target_authority<'a>(method: &[u8], target: &'a [u8]) -> Option<&'a [u8]> {
    if method == b"CONNECT" {
        return (!target.is_empty() && target.first() != Some(&b'/')).then_some(target);
    }
    let rest = strip_scheme(target)?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    rest.get(..end)
}

/// The host of an authority (`user@Host:port` -> `Host`, `[::1]:80` -> `::1`), for
/// comparing two authorities: case is left to the caller.
pub fn authority_host(authority: &[u8]) -> &[u8] {
    let a = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => authority.get(at + 1..).unwrap_or_default(),
        None => authority,
    };
    if let Some(inner) = a.strip_prefix(b"[") {
        let end = inner.iter().position(|&b| b == b']').unwrap_or(inner.len());
        return inner.get(..end).unwrap_or_default();
    }
    let end = a.iter().position(|&b| b == b':').unwrap_or(a.len());
    let host = a.get(..end).unwrap_or_default();
    host.strip_suffix(b".").unwrap_or(host)
}

/// `scheme://` at the start of an absolute-form target: returns what follows it.
fn strip_scheme(raw: &[u8]) -> Option<&[u8]> {
    let colon = raw.iter().position(|&b| b == b':')?;
    let scheme = raw.get(..colon)?;
    let first_alpha = scheme.first().is_some_and(|b| b.is_ascii_alphabetic());
    let valid = first_alpha
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid {
        return None;
    }
    raw.get(colon + 1..)?.strip_prefix(b"//")
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes RFC 3986 allows raw in a path segment besides unreserved ones (sub-delims, `:`, `@`).
const fn is_pchar_extra(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@'
    )
}

fn push_escaped(b: u8, out: &mut Vec<u8>) {
    out.push(b'%');
    out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
    out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
}

fn push_segment(seg: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&b) = seg.get(i) {
        if b == b'%' {
            let hi = seg.get(i + 1).copied().and_then(hex_val);
            let lo = seg.get(i + 2).copied().and_then(hex_val);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let v = hi << 4 | lo;
                if is_unreserved(v) {
                    out.push(v);
                } else {
                    push_escaped(v, out);
                }
                i += 3;
                continue;
            }
            // A lone `%` is not an escape: encode it so it cannot pair with later bytes.
            push_escaped(b'%', out);
        } else if is_unreserved(b) || is_pchar_extra(b) {
            out.push(b);
        } else {
            push_escaped(b, out);
        }
        i += 1;
    }
}

/// Splits a gRPC request path `/package.Service/Method` into (`package.Service`, `Method`).
/// `None` unless the path is exactly two non-empty segments after a leading `/` (no query).
pub fn split_grpc_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = path.strip_prefix(b"/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let service = rest.get(..slash)?;
    let method = rest.get(slash + 1..)?;
    let bad = |s: &[u8]| s.is_empty() || s.iter().any(|&b| matches!(b, b'/' | b'?' | b'#'));
    if bad(service) || bad(method) {
        return None;
    }
    Some((service, method))
}

/// RFC 9110 `tchar`: the bytes of a method or a field name (and, to protocol detection, of
/// a Redis verb).
#[inline]
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
        | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// Optional whitespace (RFC 9110 `OWS`): a space or a horizontal tab.
#[inline]
pub(crate) const fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `b` split after its longest prefix of bytes that satisfy `ok`.
#[inline]
pub(crate) fn split_while(b: &[u8], ok: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = b.iter().position(|&c| !ok(c)).unwrap_or(b.len());
    (
        b.get(..n).unwrap_or_default(),
        b.get(n..).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Normalised by each entry point, which must agree.
    fn norm(raw: &str) -> (String, bool) {
        let mut out = String::from("garbage from before");
        let origin = normalize_path(raw.as_bytes(), &mut out);
        let mut bytes = b"more garbage".to_vec();
        assert_eq!(normalize_path_bytes(raw.as_bytes(), &mut bytes), origin);
        assert_eq!(bytes, out.as_bytes(), "{raw:?}");
        let mut buf = b"garbage".to_vec();
        assert_eq!(normalized_path(raw.as_bytes(), &mut buf), out.as_bytes());
        (out, origin)
    }

    fn n(raw: &str) -> String {
        norm(raw).0
    }

    #[test]
    fn dot_segments_resolve_and_never_climb_above_root() {
        assert_eq!(n("/api/../admin"), "/admin");
        assert_eq!(n("/a/b/../../c"), "/c");
        assert_eq!(n("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(n("/a/./b/."), "/a/b/");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/."), "/");
        assert_eq!(n("/a/..b/c"), "/a/..b/c");
        assert_eq!(n("/a/...//b"), "/a/.../b");
    }

    #[test]
    fn encoded_dots_are_decoded_before_resolving() {
        assert_eq!(n("/a/%2e%2e/b"), "/b");
        assert_eq!(n("/a/%2E%2e/b"), "/b");
        assert_eq!(n("/a/.%2e/b"), "/b");
        assert_eq!(n("/api/%2e/orders"), "/api/orders");
        assert_eq!(n("/api/%2e%2e%2fadmin"), "/api/..%2Fadmin");
    }

    #[test]
    fn unreserved_escapes_decode_others_stay_encoded_upper_case() {
        assert_eq!(n("/%61%70%69/x"), "/api/x");
        assert_eq!(n("/a%2Fb"), "/a%2Fb");
        assert_eq!(n("/a%2fb"), "/a%2Fb");
        assert_eq!(n("/%7e%5F%2D"), "/~_-");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a b"), "/a%20b");
        assert_eq!(n("/caf\u{e9}"), "/caf%C3%A9");
        assert_eq!(n("/50%"), "/50%25");
        assert_eq!(n("/%zz"), "/%25zz");
        assert_eq!(n("/%4"), "/%254");
        assert_eq!(n("/a;b=c:d@e!$&'()*+,"), "/a;b=c:d@e!$&'()*+,");
        // A decoded `%25` must stay an escape, or `%252e` would become `%2e` then `.`.
        assert_eq!(n("/%252e%252e/x"), "/%252e%252e/x");
    }

    #[test]
    fn slashes_collapse_and_a_leading_slash_is_ensured() {
        assert_eq!(n("//a///b"), "/a/b");
        assert_eq!(n("/a/b/"), "/a/b/");
        assert_eq!(n("/a//"), "/a/");
        assert_eq!(n("/"), "/");
        assert_eq!(n("///"), "/");
        assert_eq!(n(""), "/");
    }

    #[test]
    fn query_and_fragment_are_dropped() {
        assert_eq!(n("/api/orders?id=../../x"), "/api/orders");
        assert_eq!(n("/a/b#frag/../c"), "/a/b");
        assert_eq!(n("/a/?q"), "/a/");
        assert_eq!(n("/?"), "/");
        assert_eq!(n("/a%3Fb?c"), "/a%3Fb");
    }

    #[test]
    fn origin_form_is_reported_and_other_forms_normalise_their_path() {
        assert_eq!(norm("/x"), ("/x".into(), true));
        assert_eq!(norm("*"), ("*".into(), false));
        assert_eq!(
            norm("http://orders.shop/api/../admin?x"),
            ("/admin".into(), false)
        );
        assert_eq!(norm("HTTP://h:8080"), ("/".into(), false));
        assert_eq!(norm("https://h?x=/y"), ("/".into(), false));
        assert_eq!(norm("http://h//a//b/"), ("/a/b/".into(), false));
        assert_eq!(norm("orders.shop:443"), ("/orders.shop:443".into(), false));
        assert_eq!(norm("a/../../b"), ("/b".into(), false));
        assert_eq!(norm("1http://h/p"), ("/1http:/h/p".into(), false));
    }

    /// The fast paths (already-normal paths, plain segments) give what the byte-by-byte
    /// rebuild gives, on paths built from the bytes that decide between them.
    #[test]
    fn fast_path_agrees_with_the_general_rebuild() {
        const ALPHABET: &[u8] = b"/.a%2e~ ?#\xff";
        let mut fast = Vec::new();
        let mut slow = Vec::new();
        let mut general = Vec::new();
        let mut buf = Vec::new();
        let mut checked_fast = 0;
        // Every string of up to 6 bytes over the alphabet, with and without a leading `/`.
        let n = ALPHABET.len();
        for len in 0..=6u32 {
            for mut code in 0..n.pow(len) {
                let mut raw = Vec::with_capacity(8);
                for _ in 0..len {
                    raw.push(ALPHABET[code % n]);
                    code /= n;
                }
                for candidate in [raw.clone(), [b"/".as_slice(), &raw].concat()] {
                    normalize_path_bytes(&candidate, &mut fast);
                    let path_end = candidate
                        .iter()
                        .position(|&b| b == b'?' || b == b'#')
                        .unwrap_or(candidate.len());
                    general.clear();
                    normalize_segments(&candidate[..path_end], &mut general);
                    slow.clear();
                    rebuild_segments::<false>(&candidate[..path_end], &mut slow);
                    assert_eq!(general, slow, "{:?}", String::from_utf8_lossy(&candidate));
                    if candidate.first() == Some(&b'/') {
                        assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&candidate));
                        assert_eq!(normalized_path(&candidate, &mut buf), slow);
                        checked_fast += usize::from(already_normal(&candidate).is_some());
                    } else {
                        assert!(already_normal(&candidate).is_none());
                    }
                }
            }
        }
        assert!(
            checked_fast > 1000,
            "the fast path was taken {checked_fast} times"
        );
    }

    #[test]
    fn hostile_bytes_never_panic_and_give_ascii() {
        let mut out = String::new();
        let mut inputs: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b'/', b, b'%', b]).collect();
        inputs.push(vec![b'%'; 100]);
        inputs.push(b"/%".to_vec());
        inputs.push(b"/%%%2".to_vec());
        inputs.push([b"/".as_slice(), &[0xff; 64]].concat());
        for raw in &inputs {
            normalize_path(raw, &mut out);
            assert!(out.is_ascii() && out.starts_with('/'), "{raw:?} -> {out}");
            // Normalising is idempotent: the output is its own normal form.
            let once = out.clone();
            normalize_path(once.as_bytes(), &mut out);
            assert_eq!(out, once, "{raw:?}");
        }
    }

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            split_grpc_path(b"/stock.v1.Stock/Reserve"),
            Some((&b"stock.v1.Stock"[..], &b"Reserve"[..]))
        );
        assert_eq!(
            split_grpc_path(b"/grpc.health.v1.Health/Check"),
            Some((&b"grpc.health.v1.Health"[..], &b"Check"[..]))
        );
        for bad in [
            &b""[..],
            b"/",
            b"//M",
            b"/S/",
            b"/S",
            b"S/M",
            b"/S/M/x",
            b"/S/M?x=1",
            b"/a/b#c",
        ] {
            assert_eq!(
                split_grpc_path(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

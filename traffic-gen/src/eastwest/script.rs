//! One flow as a script of packets ([`Script`], with a Linux stack's ACK behaviour), and the
//! placeholders (`{id}`, `{uuid}`...) that request templates are filled with.

use std::fmt::Write as _;

use crate::generate::{FIN, MSS, PSH, Rng, SYN, Side};

// ---------------------------------------------------------------------------------------
// Placeholders

pub(super) const FILES: [&str; 6] = [
    "app.3f9c1e.js",
    "vendor.8a2b77.js",
    "main.41d0.css",
    "logo.svg",
    "hero-1280.webp",
    "fonts/inter-var.woff2",
];
pub(super) const WORDS: [&str; 12] = [
    "mug", "kettle", "teapot", "grinder", "espresso", "filter", "scale", "cup", "beans",
    "milk-jug", "tamper", "carafe",
];
pub(super) const AGENTS: [&str; 5] = [
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "axios/1.7.7",
    "Java-http-client/21.0.4",
];
pub(super) const BROWSERS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
];

pub(super) fn hex(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() < n {
        let _ = write!(s, "{:016x}", rng.next_u64());
    }
    s.truncate(n);
    s
}

pub(super) fn uuid(rng: &mut Rng) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

pub(super) fn json_value(rng: &mut Rng, min: usize, max: usize) -> String {
    let want = min + rng.below((max - min + 1) as u64) as usize;
    let mut s = format!("{{\"id\":{},\"v\":\"", rng.below(1_000_000));
    while s.len() + 2 < want {
        let _ = write!(s, "{}", WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    s.push_str("\"}");
    s
}

/// Expands one placeholder name.
pub(super) fn expand(name: &str, rng: &mut Rng) -> String {
    match name {
        "id" => (1 + rng.below(999_999)).to_string(),
        "n" => (1 + rng.below(50)).to_string(),
        "q" => (1 + rng.below(5)).to_string(),
        "r" => (1 + rng.below(5)).to_string(),
        "sku" => format!("SKU-{:05}", rng.below(100_000)),
        "hex" => hex(rng, 32),
        "token" => hex(rng, 40),
        "uuid" => uuid(rng),
        "file" => FILES[rng.below(FILES.len() as u64) as usize].to_string(),
        "word" => WORDS[rng.below(WORDS.len() as u64) as usize].to_string(),
        "val" => json_value(rng, 24, 400),
        "date" => "2026-11-22".to_string(),
        other => other.to_string(),
    }
}

/// Replaces every `{name}` in `t`.
pub(super) fn fill(t: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(j) => {
                out.push_str(&expand(&rest[i + 1..i + j], rng));
                rest = &rest[i + j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// For the extended protocol: `{x}` and `'{x}'` become `$1`, `$2`... and their values
/// are returned as text parameters.
pub(super) fn parametrize(t: &str, rng: &mut Rng) -> (String, Vec<String>) {
    let mut out = String::with_capacity(t.len());
    let mut params = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let quoted = rest[..i].ends_with('\'');
        let head = if quoted { &rest[..i - 1] } else { &rest[..i] };
        out.push_str(head);
        let Some(j) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        params.push(expand(&rest[i + 1..i + j], rng));
        let _ = write!(out, "${}", params.len());
        rest = &rest[i + j + 1..];
        if quoted {
            rest = rest.strip_prefix('\'').unwrap_or(rest);
        }
    }
    out.push_str(rest);
    (out, params)
}

pub(super) fn pick<'a, T>(rng: &mut Rng, items: &'a [T], w: impl Fn(&T) -> u32) -> Option<&'a T> {
    let total: u64 = items.iter().map(|i| u64::from(w(i))).sum();
    if total == 0 {
        return items.first();
    }
    let mut x = rng.below(total);
    for i in items {
        let wi = u64::from(w(i));
        if x < wi {
            return Some(i);
        }
        x -= wi;
    }
    items.last()
}

pub(super) fn chance(rng: &mut Rng, one_in: u64) -> bool {
    rng.below(one_in) == 0
}

/// One flow in a hundred ends with a request the policy denies.
pub(super) const VIOLATION_ONE_IN: u64 = 100;

// ---------------------------------------------------------------------------------------
// Scripts: one flow's packets, in order

pub(super) enum Step {
    Tcp(Side, u8, Vec<u8>),
    Udp(Side, Vec<u8>),
}

/// Builds one flow's packets, applying the ACK behaviour of a Linux stack: the receiver of
/// a run of full segments ACKs every second one; what answers a request carries the ACK.
pub(super) struct Script {
    pub(super) steps: Vec<Step>,
    /// Transactions as the parsers will count them.
    pub(super) tx: u64,
    pub(super) denied: u64,
    pub(super) alerted: u64,
}

impl Script {
    pub(super) fn new() -> Self {
        Script {
            steps: Vec::with_capacity(32),
            tx: 0,
            denied: 0,
            alerted: 0,
        }
    }

    pub(super) fn open(&mut self) {
        self.steps.push(Step::Tcp(Side::Client, SYN, Vec::new()));
        self.steps.push(Step::Tcp(Side::Server, SYN, Vec::new()));
        self.steps.push(Step::Tcp(Side::Client, 0, Vec::new()));
    }

    pub(super) fn send(&mut self, from: Side, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let peer = match from {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        let chunks: Vec<&[u8]> = data.chunks(MSS).collect();
        let last = chunks.len() - 1;
        for (k, c) in chunks.into_iter().enumerate() {
            let flags = if k == last { PSH } else { 0 };
            self.steps.push(Step::Tcp(from, flags, c.to_vec()));
            if k % 2 == 1 && k != last {
                self.steps.push(Step::Tcp(peer, 0, Vec::new()));
            }
        }
    }

    pub(super) fn ack(&mut self, from: Side) {
        self.steps.push(Step::Tcp(from, 0, Vec::new()));
    }

    /// FIN from `first`, FIN+ACK back, the last ACK.
    pub(super) fn close(&mut self, first: Side) {
        let other = match first {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        self.steps.push(Step::Tcp(first, FIN, Vec::new()));
        self.steps.push(Step::Tcp(other, FIN, Vec::new()));
        self.steps.push(Step::Tcp(first, 0, Vec::new()));
    }

    pub(super) fn udp(&mut self, from: Side, data: Vec<u8>) {
        self.steps.push(Step::Udp(from, data));
    }

    /// After a response: the client's delayed ACK fires unless its next request is quick.
    pub(super) fn maybe_delayed_ack(&mut self, rng: &mut Rng) {
        if chance(rng, 2) {
            self.ack(Side::Client);
        }
    }
}

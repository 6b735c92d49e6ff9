//! Heap allocations per packet in steady state, which the hot path promises are zero.
//! A counting allocator wraps the system one; a worker is warmed on a keep-alive TCP flow
//! (handshake, protocol detected, buffers grown), then the next 100,000 packets are
//! counted. Exits 1 if any of them allocated, so `cargo bench -p benches --bench alloc` is
//! the check.
//!
//! The same count for each protocol parser on its own (benches/benches/parsers/ builds the
//! conversations): a long connection is fed through the inspector, its first half uncounted
//! (parser and scratch buffers set up, HPACK tables filled, statements prepared), its second
//! half counted, and checked like the worker: none may allocate per request (HTTP/2 with new
//! Huffman-coded values included, since proto-parsers has its own HPACK decoder).
//!
//! `PALISADE_ALLOC_TRACE=N` prints a backtrace of the first N allocations counted, to find
//! where they come from.
// The one unsafe item in benches: a GlobalAlloc must be an unsafe impl.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use control::{PolicySnapshot, WorkloadInventory, compile, load_policy_str};
use dataplane::decode::LinkType;
use dataplane::events::{
    Event, EventOutput, EventWriter, PolicyVerdictObj, Timestamp, write_community_id,
};
use dataplane::inspect::ParserRegistry;
use dataplane::pipeline::{Worker, WorkerConfig};
use traffic_gen::generate::{Frames, KeepAlive};

/// The parser benches' workloads and their driver (the criterion half of the file is unused
/// here).
#[allow(dead_code)]
#[path = "parsers/main.rs"]
mod parsers;

const WARMUP_PACKETS: usize = 20_000;
const COUNTED_PACKETS: usize = 100_000;
/// Frames are generated in chunks between counted windows (generation allocates freely).
const CHUNK: usize = 4_096;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);
static TRACES_LEFT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the thread under test counts (the event writer thread allocates on its own
    /// schedule). Const-initialised without a destructor, so reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Set while a backtrace is being taken: its own allocations are not counted.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

impl Counting {
    fn record(size: usize) {
        if !COUNTING.with(Cell::get) || TRACING.with(Cell::get) {
            return;
        }
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(size as u64, Ordering::Relaxed);
        if TRACES_LEFT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            TRACING.with(|t| t.set(true));
            let bt = std::backtrace::Backtrace::force_capture();
            eprintln!("--- allocation of {size} bytes in the counted window:\n{bt}");
            TRACING.with(|t| t.set(false));
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// GlobalAlloc contract (layout, pointer provenance, alignment) is System's; the counting
// touches only atomics and const thread-locals, which never allocate or unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::record(layout.size());
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::record(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growth is an allocation as far as the hot path is concerned.
        Self::record(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allow_all() -> Result<Arc<PolicySnapshot>, String> {
    let text = include_str!("../../dataplane/tests/data/allow-all.yaml");
    let loaded = load_policy_str(text, "allow-all.yaml").map_err(|e| e.to_string())?;
    let inv = loaded.inventory.unwrap_or_else(WorkloadInventory::empty);
    compile(&loaded.policy, &inv, 1)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Allocations (and bytes) per flow event written into a warm, reused buffer.
fn event_allocations() -> (f64, f64) {
    const EVENTS: u64 = 1_000;
    let (src, dst): (IpAddr, IpAddr) = (IpAddr::from([10, 0, 1, 5]), IpAddr::from([10, 0, 2, 7]));
    let mut out = Vec::with_capacity(4096);
    let mut cid = String::with_capacity(64);
    let write = |id: u64, out: &mut Vec<u8>, cid: &mut String| {
        write_community_id(0, src, dst, 40112, 8080, 6, cid);
        let mut e = Event::new(Timestamp(1_795_327_200_123_456_789), "flow");
        e.flow_id = Some(id);
        e.src_ip = Some(src);
        e.src_port = Some(40112);
        e.dest_ip = Some(dst);
        e.dest_port = Some(8080);
        e.proto = Some("TCP");
        e.community_id = Some(cid);
        e.policy_verdict = Some(PolicyVerdictObj {
            action: "allow",
            rule: "web-orders",
            policy_version: 1,
            mode: "protect",
            enforced: false,
            dropped_pkts: None,
            would_drop_pkts: None,
        });
        out.clear();
        e.write_line(out);
    };
    write(0, &mut out, &mut cid);
    let before = (
        ALLOCS.load(Ordering::Relaxed),
        ALLOC_BYTES.load(Ordering::Relaxed),
    );
    COUNTING.with(|c| c.set(true));
    for id in 1..=EVENTS {
        write(id, &mut out, &mut cid);
    }
    COUNTING.with(|c| c.set(false));
    let n = EVENTS as f64;
    (
        (ALLOCS.load(Ordering::Relaxed) - before.0) as f64 / n,
        (ALLOC_BYTES.load(Ordering::Relaxed) - before.1) as f64 / n,
    )
}

/// Allocations (count, bytes) while the second half of `conv` goes through a flow that read
/// the first half, and the requests the parser reported in that half.
fn parser_allocations(conv: &parsers::Conversation, reg: &ParserRegistry) -> (u64, u64, u64) {
    let mut flow = parsers::Flow::new(conv.udp);
    let mut t = parsers::Tally::default();
    let half = conv.segs.len() / 2;
    let (warm, counted) = conv.segs.split_at(half);
    let warm_ok = flow.feed(reg, warm, &mut t).is_ok();
    let requests_before = t.requests;
    let before = (
        ALLOCS.load(Ordering::Relaxed),
        ALLOC_BYTES.load(Ordering::Relaxed),
    );
    COUNTING.with(|c| c.set(true));
    let ok = flow.feed(reg, counted, &mut t).is_ok();
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed) - before.0;
    let bytes = ALLOC_BYTES.load(Ordering::Relaxed) - before.1;
    assert!(
        warm_ok && ok && t.anomalies == 0,
        "{}: the parser gave up or raised anomalies: {t:?}",
        conv.name
    );
    (allocs, bytes, t.requests - requests_before)
}

/// Each parser's steady state.
fn parser_cases() -> Vec<parsers::Conversation> {
    use parsers::H2Kind;
    vec![
        parsers::http1_keepalive(400),
        parsers::h2_conversation(H2Kind::Indexed, 1_000),
        parsers::h2_conversation(H2Kind::GrpcUnary, 1_000),
        parsers::pg_simple(100),
        parsers::pg_extended(200),
        parsers::mysql_query(150),
        parsers::mysql_prepared(300),
        parsers::redis_pipelined(8_192),
        parsers::dns_udp(1_000),
        parsers::h2_conversation(H2Kind::NewPaths, 1_000),
    ]
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and any filter); there is nothing to configure.
    let snap = match allow_all() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alloc: {e}");
            return ExitCode::from(2);
        }
    };
    let traces = std::env::var("PALISADE_ALLOC_TRACE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    let writer = match EventWriter::start(EventOutput::Discard) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("alloc: event writer: {e}");
            return ExitCode::from(2);
        }
    };
    let mut w = Worker::new(
        0,
        WorkerConfig::default(),
        ParserRegistry::builtin(),
        writer.sender(),
    );
    let mut flow = KeepAlive::new();
    let mut frames = Frames::new();

    let mut warm = 0;
    while warm < WARMUP_PACKETS {
        flow.fill(CHUNK, &mut frames);
        for (ts, f) in frames.iter() {
            w.process(ts, LinkType::ETHERNET, f, f.len() as u32, &snap);
        }
        warm += frames.len();
    }

    // The counter must see an allocation made in a counted window, or a zero below would
    // prove nothing.
    COUNTING.with(|c| c.set(true));
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64)));
    COUNTING.with(|c| c.set(false));
    if ALLOCS.swap(0, Ordering::Relaxed) != 1 {
        eprintln!("alloc: the counting allocator missed a known allocation");
        return ExitCode::from(2);
    }
    ALLOC_BYTES.store(0, Ordering::Relaxed);
    TRACES_LEFT.store(traces, Ordering::Relaxed);

    let mut counted = 0usize;
    while counted < COUNTED_PACKETS {
        flow.fill(CHUNK.min(COUNTED_PACKETS - counted), &mut frames);
        COUNTING.with(|c| c.set(true));
        for (ts, f) in frames.iter() {
            std::hint::black_box(w.process(ts, LinkType::ETHERNET, f, f.len() as u32, &snap));
        }
        COUNTING.with(|c| c.set(false));
        counted += frames.len();
    }

    let allocs = ALLOCS.load(Ordering::Relaxed);
    let bytes = ALLOC_BYTES.load(Ordering::Relaxed);
    let per_packet = allocs as f64 / counted as f64;
    println!(
        "alloc: {counted} steady-state packets (keep-alive HTTP/1.1 over TCP, 1 worker, \
         allow-all policy, after {warm} warm-up packets): {allocs} allocations, {bytes} bytes, \
         {per_packet:.4} allocations/packet"
    );
    w.finish();
    println!(
        "alloc: the worker saw {} packets in {} flow(s), accepted {}, parsed {} L7 transactions",
        w.stats.packets, w.stats.flows.created, w.stats.accepted, w.stats.transactions
    );
    drop(w);
    let _ = writer.finish();
    // Not part of the check (events are per flow or transaction, not per packet), but
    // worth knowing as L7 events become per request.
    let (per_event, event_bytes) = event_allocations();
    println!(
        "alloc: info: encoding one flow event into a reused buffer costs {per_event:.2} \
         allocations ({event_bytes:.0} bytes)"
    );

    // Parsers on their own, through the inspector as the worker drives them.
    let reg = ParserRegistry::builtin();
    let mut parser_failures = Vec::new();
    TRACES_LEFT.store(traces, Ordering::Relaxed);
    for conv in parser_cases() {
        let (n, bytes, requests) = parser_allocations(&conv, &reg);
        let per_request = n as f64 / requests.max(1) as f64;
        let verdict = if n == 0 {
            "ok"
        } else {
            parser_failures.push(conv.name);
            "FAIL"
        };
        println!(
            "alloc: parser {:<16} {requests:>5} steady-state requests ({} segments): {n} \
             allocations, {bytes} bytes, {per_request:.2} allocations/request [{verdict}]",
            conv.name,
            conv.segs.len() - conv.segs.len() / 2
        );
    }

    if allocs > 0 {
        eprintln!(
            "alloc: FAIL: the per-packet path allocated; rerun with PALISADE_ALLOC_TRACE=3 to see where"
        );
        return ExitCode::FAILURE;
    }
    if !parser_failures.is_empty() {
        eprintln!(
            "alloc: FAIL: parsers allocated in steady state: {}; rerun with \
             PALISADE_ALLOC_TRACE=3 to see where",
            parser_failures.join(", ")
        );
        return ExitCode::FAILURE;
    }
    println!(
        "alloc: ok, no allocation per packet in steady state, none per request in the parsers checked"
    );
    ExitCode::SUCCESS
}

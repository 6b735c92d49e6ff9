//! `resolve` and `judge_flow` never allocate: a counting allocator watches this thread
//! while flows of every kind (planned and not, every transport, app known or not) are
//! judged against a policy with ports, ranges, apps, L7 rules and `"*"`.
#![allow(unsafe_code)] // the counting allocator below; nothing else

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;

use control::{Transport, compile, load_inventory_str, load_policy_str};
use proto_parsers::AppProto;

struct Counting;

thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let _ = WATCH.try_with(|w| {
        if w.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only
// bumps a thread-local counter, which neither allocates (const-initialised `Cell`) nor
// unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const INVENTORY: &str = r#"
apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: web, labels: {app: web}, ips: [10.0.1.5, "fd00::1:5"]}
  - {name: api, labels: {app: api}, ips: [10.0.2.7]}
  - {name: cache, labels: {app: cache}, ips: [10.0.4.1]}
  - {name: ext, labels: {app: ext}, cidrs: [203.0.113.0/24]}
"#;

const POLICY: &str = r#"
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: alloc}
spec:
  mode: protect
  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}, mode: monitor}
    cache: {selector: {app: cache}}
    world: {cidrs: [0.0.0.0/0, "::/0"]}
  rules:
    - {id: web-api, from: [web], to: [api], ports: [80, "8000-8100"], app: http, http: [{methods: [GET]}], action: allow}
    - {id: api-cache, from: [api], to: [cache], app: redis, action: allow, capture: true}
    - {id: no-flush, from: ["*"], to: [cache], app: redis, redis: [{commands: [FLUSHALL]}], action: deny}
    - {id: dns, from: ["*"], to: [world], ports: [53], app: dns, action: allow}
    - {id: watch, from: [world], to: ["*"], action: alert, severity: critical}
    - {id: block, from: [web], to: [world], ports: ["1-1024"], action: deny}
"#;

#[test]
fn judging_flows_does_not_allocate() {
    let p = load_policy_str(POLICY, "alloc.yaml").unwrap();
    let inv = load_inventory_str(INVENTORY, "inv.yaml").unwrap();
    let s = compile(&p.policy, &inv, 1).unwrap();
    let addrs: Vec<IpAddr> = [
        "10.0.1.5",
        "fd00::1:5",
        "10.0.2.7",
        "10.0.4.1",
        "203.0.113.9",
        "8.8.8.8",
        "2001:db8::1",
        "::ffff:10.0.1.5",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let apps = [
        None,
        Some(AppProto::Http),
        Some(AppProto::Http2),
        Some(AppProto::Redis),
        Some(AppProto::Dns),
        Some(AppProto::Tcp),
    ];
    // An endpoint from another snapshot (out-of-range set) takes the hashing path.
    let other = compile(&p.policy, &control::WorkloadInventory::empty(), 2).unwrap();
    let stale = s.resolve("10.0.4.1".parse().unwrap());
    let _ = other.resolve("10.0.4.1".parse().unwrap());

    WATCH.with(|w| w.set(true));
    // The counter counts: one known allocation, then start from zero.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(8)));
    assert_eq!(
        COUNT.with(Cell::get),
        1,
        "the counting allocator is not in use"
    );
    COUNT.with(|c| c.set(0));
    let mut decided = 0usize;
    for _ in 0..3 {
        for &a in &addrs {
            for &b in &addrs {
                let (src, dst) = (s.resolve(a), s.resolve(b));
                for port in [53, 80, 443, 6379, 8080, 9999] {
                    for t in [Transport::Tcp, Transport::Udp, Transport::Icmp] {
                        for app in apps {
                            decided +=
                                usize::from(s.judge_flow(&src, &dst, port, t, app).rule.is_some());
                            decided += usize::from(
                                other.judge_flow(&stale, &dst, port, t, app).rule.is_some(),
                            );
                        }
                    }
                }
            }
        }
    }
    WATCH.with(|w| w.set(false));
    let n = COUNT.with(Cell::get);
    assert_eq!(n, 0, "{n} allocations while judging");
    assert!(decided > 1000, "{decided}");
}

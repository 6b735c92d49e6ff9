//! An inventory change on a live node (`--inventory containerd`) recompiles the policy
//! under the same version: what the workers make of it. An open flow whose server
//! address now belongs to another workload is judged again at its next packet, even with
//! `--on-swap keep` (an address a new container reuses is never judged as its old
//! owner); a flow whose owners did not change keeps its decision and is not re-judged.

use std::net::Ipv4Addr;
use std::sync::Arc;

use control::PolicySnapshot;
use dataplane::decode::LinkType;
use dataplane::pipeline::{OnSwap, Worker, WorkerConfig};
use dataplane::verdict::PacketVerdict;
use traffic_gen::generate::{PSH, SYN, Side, TcpConversation};

const POLICY: &str = "apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: reuse}
spec:
  mode: protect
  defaultAction: deny
  groups:
    web: {selector: {app: web}}
    db: {selector: {app: db}}
  rules:
    - id: web-reads-db
      from: [web]
      to: [db]
      ports: [80]
      app: http
      http: [{methods: [GET]}]
      action: allow
";

/// The policy compiled against an inventory where 10.0.0.3 is `server` with `labels`,
/// as `Shared::inventory_changed` does: version 1, inventory epoch `epoch`.
fn snap(server: &str, labels: &str, extra: &str, epoch: u64) -> Arc<PolicySnapshot> {
    let inv = format!(
        "apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n\
         - {{name: web, labels: {{app: web}}, ips: [10.0.0.2]}}\n\
         - {{name: {server}, labels: {labels}, ips: [10.0.0.3]}}\n{extra}"
    );
    let policy = control::load_policy_str(POLICY, "policy.yaml").unwrap();
    let inv = control::load_inventory_str(&inv, "runtime").unwrap();
    Arc::new(
        control::compile(&policy.policy, &inv, 1)
            .unwrap()
            .with_inventory_epoch(epoch),
    )
}

fn worker() -> (Worker, dataplane::events::EventWriter) {
    let writer =
        dataplane::events::EventWriter::start(dataplane::events::EventOutput::Discard).unwrap();
    let cfg = WorkerConfig {
        on_swap: OnSwap::Keep,
        enforcing: true,
        ..WorkerConfig::default()
    };
    let w = Worker::new(
        0,
        cfg,
        dataplane::inspect::ParserRegistry::builtin(),
        writer.sender(),
    );
    (w, writer)
}

struct Conn {
    c: TcpConversation,
    ts: u64,
}

impl Conn {
    fn new(sport: u16) -> Self {
        Conn {
            c: TcpConversation::new(
                (Ipv4Addr::new(10, 0, 0, 2), sport),
                (Ipv4Addr::new(10, 0, 0, 3), 80),
                [1000, 5000],
            ),
            ts: 1_000_000_000,
        }
    }

    fn send(
        &mut self,
        w: &mut Worker,
        snap: &Arc<PolicySnapshot>,
        from: Side,
        flags: u8,
        payload: &[u8],
    ) -> PacketVerdict {
        let mut f = Vec::new();
        self.c.segment(from, flags, payload, &mut f);
        self.ts += 1_000_000;
        w.process(self.ts, LinkType::ETHERNET, &f, f.len() as u32, snap)
    }

    /// Handshake and one GET with its answer; the verdict of the GET.
    fn open_and_get(&mut self, w: &mut Worker, snap: &Arc<PolicySnapshot>) -> PacketVerdict {
        self.send(w, snap, Side::Client, SYN, b"");
        self.send(w, snap, Side::Server, SYN, b"");
        self.send(w, snap, Side::Client, 0, b"");
        self.get(w, snap)
    }

    fn get(&mut self, w: &mut Worker, snap: &Arc<PolicySnapshot>) -> PacketVerdict {
        let v = self.send(
            w,
            snap,
            Side::Client,
            PSH,
            b"GET /index.html HTTP/1.1\r\nHost: db\r\n\r\n",
        );
        if v == PacketVerdict::Accept {
            self.send(
                w,
                snap,
                Side::Server,
                PSH,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            );
        }
        v
    }
}

#[test]
fn an_address_reused_by_another_workload_is_judged_as_its_new_owner() {
    let (mut w, _writer) = worker();
    let db = snap("db", "{app: db}", "", 1);
    let mut conn = Conn::new(40000);
    assert_eq!(conn.open_and_get(&mut w, &db), PacketVerdict::Accept);
    assert_eq!(conn.get(&mut w, &db), PacketVerdict::Accept);

    // db stops; `intruder` (no group) gets 10.0.0.3. Same policy version, next epoch.
    let intruder = snap("intruder", "{app: other}", "", 2);
    assert_eq!(intruder.version(), db.version());
    let before = w.stats.rejudged;
    let v = conn.get(&mut w, &intruder);
    assert_ne!(
        v,
        PacketVerdict::Accept,
        "the open flow's next request went to 10.0.0.3's new owner: judged as db"
    );
    assert_eq!(w.stats.rejudged, before + 1);
    // A new connection to the reused address is refused too.
    let mut fresh = Conn::new(40001);
    assert_ne!(
        fresh.send(&mut w, &intruder, Side::Client, SYN, b""),
        PacketVerdict::Accept
    );
}

#[test]
fn a_flow_whose_owners_did_not_change_keeps_its_decision() {
    let (mut w, _writer) = worker();
    let first = snap("db", "{app: db}", "", 1);
    let mut conn = Conn::new(40000);
    assert_eq!(conn.open_and_get(&mut w, &first), PacketVerdict::Accept);
    // Another container started elsewhere: 10.0.0.2 and 10.0.0.3 keep their owners.
    let more = snap(
        "db",
        "{app: db}",
        "- {name: cache, labels: {app: cache}, ips: [10.0.0.9]}\n",
        2,
    );
    let before = w.stats.rejudged;
    for _ in 0..3 {
        assert_eq!(conn.get(&mut w, &more), PacketVerdict::Accept);
    }
    assert_eq!(
        w.stats.rejudged, before,
        "no owner changed: nothing re-judged"
    );
}

#[test]
fn a_policy_swap_with_on_swap_keep_still_keeps_open_flows() {
    // The old rule for policy swaps is unchanged: the same inventory epoch, another
    // snapshot: open flows keep their decision under --on-swap keep.
    let (mut w, _writer) = worker();
    let first = snap("db", "{app: db}", "", 1);
    let mut conn = Conn::new(40000);
    assert_eq!(conn.open_and_get(&mut w, &first), PacketVerdict::Accept);
    let again = snap("db", "{app: db}", "", 1);
    let before = w.stats.rejudged;
    assert_eq!(conn.get(&mut w, &again), PacketVerdict::Accept);
    assert_eq!(w.stats.rejudged, before);
}

//! The NFQUEUE packet thread: one per queue, judging each run of queued packets with one
//! policy snapshot and answering with batch verdicts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use arc_swap::Cache;
use control::PolicySnapshot;

use super::{Housekeeping, Shared, SourceCounters, now_ns};
use crate::decode::LinkType;
use crate::events::EventSender;
use crate::inspect::ParserRegistry;
use crate::io::nfqueue::{NfQueue, NfVerdict};
use crate::io::reset::{RawSender, Resets};
use crate::pipeline::{Worker, WorkerConfig};
use crate::verdict::PacketVerdict;

pub(super) fn nfqueue_loop(
    index: usize,
    mut q: NfQueue,
    mut raw: RawSender,
    cfg: WorkerConfig,
    events: EventSender,
    shared: &Shared,
) -> std::io::Result<()> {
    let Some(slot) = shared.slots.get(index) else {
        return Ok(());
    };
    let mut w = Worker::new(index, cfg, ParserRegistry::builtin(), events);
    w.set_quarantine(Arc::clone(&shared.quarantine));
    let mut cache = Cache::new(&shared.policy);
    let mut shadow = Cache::new(&shared.shadow);
    let mut verdicts: Vec<(u32, NfVerdict)> = Vec::with_capacity(1024);
    let mut resets = Resets::default();
    let mut src = SourceCounters::default();
    let mut hk = Housekeeping {
        slot,
        last: Instant::now(),
    };
    while !shared.shutdown.load(Ordering::Relaxed) {
        verdicts.clear();
        // The snapshot is taken when the run of packets has arrived, not before the
        // receive blocks: a swap made while waiting applies to the very next packet.
        let mut batch: Option<(Arc<PolicySnapshot>, u64)> = None;
        let got = q.recv_batch(&mut |p| {
            let (snap, ts) = &*batch.get_or_insert_with(|| {
                super::sync_shadow(&mut w, &mut shadow);
                (Arc::clone(cache.load()), now_ns())
            });
            let len = p.payload.len() as u32;
            let v = w.process(*ts, LinkType::RAW, p.payload, len, snap);
            if v == PacketVerdict::DropReset && resets.build(p.payload, false) > 0 {
                raw.send(&resets);
            }
            let nv = match v {
                PacketVerdict::Accept => NfVerdict::Accept,
                PacketVerdict::Drop | PacketVerdict::DropReset => NfVerdict::Drop,
            };
            verdicts.push((p.id, nv));
        })?;
        if got > 0 {
            // One message per run of equal verdicts: a batch verdict covers every
            // earlier packet of the queue that has none yet.
            let mut i = 0;
            while let Some(&(_, v)) = verdicts.get(i) {
                let mut j = i;
                while verdicts.get(j + 1).is_some_and(|&(_, n)| n == v) {
                    j += 1;
                }
                if let Some(&(id, _)) = verdicts.get(j) {
                    if j == i {
                        q.verdict(id, v)?;
                    } else {
                        q.verdict_batch(id, v)?;
                    }
                }
                i = j + 1;
            }
            w.flush_events();
        }
        src.rx_dropped = q.counters.enobufs;
        src.malformed = q.counters.malformed;
        src.verdict_msgs = q.counters.verdict_msgs;
        src.resets_sent = raw.sent;
        src.resets_failed = raw.failed;
        hk.due(&mut w, &src, false);
    }
    w.finish();
    hk.due(&mut w, &src, true);
    Ok(())
}

//! The AF_PACKET packet threads: a tap judges every frame of an interface, a bridge
//! forwards what is accepted between two (the sockets are [`crate::io::afpacket`]).

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Housekeeping, Shared, SourceCounters, now_ns};
use crate::decode::LinkType;
use crate::events::EventSender;
use crate::inspect::ParserRegistry;
use crate::io::afpacket::{FRAME_MAX, PacketSocket, wait_readable};
use crate::io::reset::Resets;
use crate::pipeline::{Worker, WorkerConfig};
use crate::verdict::PacketVerdict;

/// Frames handled per socket before looking at the other one (fairness, bounded latency).
const BURST: usize = 64;

/// Writes `ip` with an Ethernet header into `out`.
fn ethernet_frame(out: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ip: &[u8]) {
    out.clear();
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    let ethertype: u16 = if ip.first().is_some_and(|b| b >> 4 == 6) {
        0x86dd
    } else {
        0x0800
    };
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(ip);
}

/// Sends the resets for a refused frame that arrived on `from`: the one to its sender back
/// out of `from`, the one to its receiver out of `to` (the same socket on a tap).
fn send_resets(
    resets: &mut Resets,
    frame: &[u8],
    from: &PacketSocket,
    to: &PacketSocket,
    out: &mut Vec<u8>,
    c: &mut SourceCounters,
) {
    if resets.build(frame, true) == 0 {
        return;
    }
    let Some((src_mac, dst_mac)) = resets.macs else {
        return;
    };
    for (i, (dst, ip)) in resets.packets.iter().enumerate() {
        if dst.is_none() {
            continue;
        }
        let ok = if i == 0 {
            ethernet_frame(out, src_mac, dst_mac, ip);
            from.send(out)
        } else {
            ethernet_frame(out, dst_mac, src_mac, ip);
            to.send(out)
        };
        if ok {
            c.resets_sent += 1;
        } else {
            c.resets_failed += 1;
        }
    }
}

/// A tap judges and reports; it sends resets for what the policy denies only with
/// `resets` (`--tap-resets`): a passive observer that resets connections (its own host's
/// included) by default would surprise whoever put it there.
pub(super) fn tap_loop(
    sock: PacketSocket,
    cfg: WorkerConfig,
    events: EventSender,
    shared: &Shared,
    resets: bool,
) -> io::Result<()> {
    frames_loop(&[sock], cfg, events, shared, resets)
}

pub(super) fn bridge_loop(
    a: PacketSocket,
    b: PacketSocket,
    cfg: WorkerConfig,
    events: EventSender,
    shared: &Shared,
) -> io::Result<()> {
    frames_loop(&[a, b], cfg, events, shared, true)
}

/// One socket: a tap (judge; with `send_resets_on_deny`, race denials with resets). Two: a
/// bridge (judge, forward what is accepted to the other side, reset what is refused).
fn frames_loop(
    socks: &[PacketSocket],
    cfg: WorkerConfig,
    events: EventSender,
    shared: &Shared,
    send_resets_on_deny: bool,
) -> io::Result<()> {
    let Some(slot) = shared.slots.first() else {
        return Ok(());
    };
    let mut w = Worker::new(0, cfg, ParserRegistry::builtin(), events);
    w.set_quarantine(std::sync::Arc::clone(&shared.quarantine));
    let mut cache = arc_swap::Cache::new(&shared.policy);
    let mut shadow = arc_swap::Cache::new(&shared.shadow);
    let mut buf = vec![0u8; FRAME_MAX];
    let mut out = Vec::with_capacity(FRAME_MAX);
    let mut resets = Resets::default();
    let mut c = SourceCounters::default();
    let mut hk = Housekeeping {
        slot,
        last: Instant::now(),
    };
    let refs: Vec<&PacketSocket> = socks.iter().collect();
    while !shared.shutdown.load(Ordering::Relaxed) {
        let ready = wait_readable(&refs, Duration::from_millis(100))?;
        let snap = std::sync::Arc::clone(cache.load());
        super::sync_shadow(&mut w, &mut shadow);
        for (i, from) in socks.iter().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            let to = socks
                .get(1 - i.min(1))
                .filter(|_| socks.len() == 2)
                .unwrap_or(from);
            for _ in 0..BURST {
                let Some(n) = from.recv(&mut buf)? else { break };
                let frame = buf.get(..n).unwrap_or_default();
                let v = w.process(now_ns(), LinkType::ETHERNET, frame, n as u32, &snap);
                match v {
                    PacketVerdict::Accept if socks.len() == 2 => {
                        if to.send(frame) {
                            c.forwarded += 1;
                        } else {
                            c.forward_failed += 1;
                        }
                    }
                    PacketVerdict::Accept | PacketVerdict::Drop => {}
                    PacketVerdict::DropReset if send_resets_on_deny => {
                        send_resets(&mut resets, frame, from, to, &mut out, &mut c)
                    }
                    PacketVerdict::DropReset => {}
                }
            }
        }
        w.flush_events();
        hk.due(&mut w, &c, false);
    }
    w.finish();
    hk.due(&mut w, &c, true);
    Ok(())
}

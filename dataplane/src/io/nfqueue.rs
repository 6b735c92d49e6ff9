//! NFQUEUE over netlink, spoken directly.
//!
//! Why not the `nfq` crate (CRATES.md's pick): nfq 0.2 keeps its socket private, so a
//! blocking receive can neither time out (we must notice SIGTERM and idle-expire flows)
//! nor be polled; it sends one verdict message per packet (no `NFQNL_MSG_VERDICT_BATCH`);
//! and it asserts on message shapes it does not expect. The protocol is small (a netlink
//! header, a 4-byte `nfgenmsg`, type-length attributes), so this module speaks it over a
//! `socket2` socket with bounds-checked parsing, a receive timeout, and batch verdicts.
//! Constants are from `linux/netfilter/nfnetlink_queue.h` and `linux/netlink.h`.

use std::io::{self, Read};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::Privilege;

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;

const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_CFG_CMD_UNBIND: u8 = 2;
const NFQNL_COPY_PACKET: u8 = 2;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

/// Largest packet copied to user space (the whole of any IP packet).
const COPY_RANGE: u32 = 0xffff;

/// One receive can carry many queued packets; the buffer holds at least one whole packet
/// with its metadata.
const RECV_BUF: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfVerdict {
    Accept,
    Drop,
}

/// What the queue has met that was not a packet: counters for `status` and metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueCounters {
    /// The kernel's socket buffer overflowed (`ENOBUFS`): packets were dropped by the
    /// kernel, or accepted unseen with fail-open.
    pub enobufs: u64,
    /// Netlink messages that did not parse as queue packets.
    pub malformed: u64,
    /// Verdict messages sent (one per run of equal verdicts).
    pub verdict_msgs: u64,
}

pub struct NfQueue {
    sock: Socket,
    num: u16,
    seq: u32,
    buf: Vec<u8>,
    out: Vec<u8>,
    pub counters: QueueCounters,
}

/// One packet handed to user space: its id (for the verdict) and IP payload.
pub struct QueuedPacket<'a> {
    pub id: u32,
    pub payload: &'a [u8],
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Iterates over the netlink attributes in `b` as (type, payload).
fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, at)?);
        let ty = u16_at(b, at + 2)? & NLA_TYPE_MASK;
        if len < 4 {
            return None;
        }
        let payload = b.get(at + 4..at + len)?;
        at += align4(len);
        Some((ty, payload))
    })
}

impl NfQueue {
    /// Binds queue `num` with full-packet copies. With `fail_open`, the kernel accepts
    /// packets when the queue is full instead of dropping them.
    pub fn open(num: u16, fail_open: bool, max_len: u32) -> io::Result<Self> {
        let sock = Socket::new(
            Domain::from(libc_af_netlink()),
            Type::RAW,
            Some(Protocol::from(NETLINK_NETFILTER)),
        )
        .map_err(|e| super::socket_error(e, "netfilter netlink socket", Privilege::Nfqueue))?;
        // A large receive buffer absorbs bursts; overflow is counted (ENOBUFS).
        let _ = sock.set_recv_buffer_size(8 << 20);
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut q = NfQueue {
            sock,
            num,
            seq: 0,
            buf: vec![0; RECV_BUF],
            out: Vec::with_capacity(4096),
            counters: QueueCounters::default(),
        };
        // A queue left bound by a process that died is rebound by us: unbind first and
        // ignore the answer.
        let _ = q.config_cmd(NFQNL_CFG_CMD_UNBIND);
        q.config_cmd(NFQNL_CFG_CMD_BIND).map_err(|e| {
            if super::permission_denied(&e) {
                super::socket_error(e, &format!("cannot bind NFQUEUE {num}"), Privilege::Nfqueue)
            } else {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind NFQUEUE {num} (is another process bound to it?): {e}"),
                )
            }
        })?;
        q.config(|out| {
            // struct nfqnl_msg_config_params { __be32 copy_range; __u8 copy_mode; } packed
            attr(out, NFQA_CFG_PARAMS, |o| {
                o.extend_from_slice(&COPY_RANGE.to_be_bytes());
                o.push(NFQNL_COPY_PACKET);
            });
        })?;
        q.config(|out| {
            attr(out, NFQA_CFG_QUEUE_MAXLEN, |o| {
                o.extend_from_slice(&max_len.to_be_bytes())
            });
        })?;
        q.config(|out| {
            attr(out, NFQA_CFG_MASK, |o| {
                o.extend_from_slice(&NFQA_CFG_F_FAIL_OPEN.to_be_bytes())
            });
            let flags = if fail_open { NFQA_CFG_F_FAIL_OPEN } else { 0 };
            attr(out, NFQA_CFG_FLAGS, |o| {
                o.extend_from_slice(&flags.to_be_bytes())
            });
        })?;
        Ok(q)
    }

    pub fn num(&self) -> u16 {
        self.num
    }

    fn config_cmd(&mut self, cmd: u8) -> io::Result<()> {
        self.config(|out| {
            // struct nfqnl_msg_config_cmd { __u8 command; __u8 _pad; __be16 pf; }
            attr(out, NFQA_CFG_CMD, |o| o.extend_from_slice(&[cmd, 0, 0, 0]));
        })
    }

    /// Sends one config message with `body`'s attributes and waits for its ACK.
    fn config(&mut self, body: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let seq = self.begin(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, 0);
        body(&mut self.out);
        self.finish_and_send()?;
        self.wait_ack(seq)
    }

    /// Starts a message in `self.out`: netlink header (length patched later) + nfgenmsg.
    fn begin(&mut self, msg: u16, flags: u16, family: u8) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.out.clear();
        put_u32(&mut self.out, 0);
        put_u16(&mut self.out, (NFNL_SUBSYS_QUEUE << 8) | msg);
        put_u16(&mut self.out, flags);
        put_u32(&mut self.out, self.seq);
        put_u32(&mut self.out, 0);
        // struct nfgenmsg { u8 family; u8 version; __be16 res_id; }
        self.out.push(family);
        self.out.push(0);
        self.out.extend_from_slice(&self.num.to_be_bytes());
        self.seq
    }

    fn finish_and_send(&mut self) -> io::Result<()> {
        let len = self.out.len() as u32;
        if let Some(h) = self.out.get_mut(0..4) {
            h.copy_from_slice(&len.to_ne_bytes());
        }
        // An unconnected, unbound netlink socket sends to the kernel and autobinds.
        self.sock.send(&self.out)?;
        Ok(())
    }

    fn wait_ack(&mut self, seq: u32) -> io::Result<()> {
        for _ in 0..64 {
            let n = self.recv_raw()?;
            let buf = self.filled(n);
            let mut at = 0usize;
            while let (Some(len), Some(ty)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
                let len = len as usize;
                if len < 16 || at + len > buf.len() {
                    break;
                }
                if ty == NLMSG_ERROR && u32_at(buf, at + 8) == Some(seq) {
                    let errno = u32_at(buf, at + 16).map(|e| e as i32).unwrap_or(0);
                    return if errno == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-errno))
                    };
                }
                at += align4(len);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no answer from the kernel's nfnetlink_queue",
        ))
    }

    fn recv_raw(&mut self) -> io::Result<usize> {
        (&self.sock).read(&mut self.buf)
    }

    fn filled(&self, n: usize) -> &[u8] {
        self.buf.get(..n).unwrap_or_default()
    }

    /// Receives the next run of queued packets and calls `each` for every one, in id
    /// order. Returns Ok(0) on timeout (so the caller can check for shutdown and tick).
    pub fn recv_batch(&mut self, each: &mut dyn FnMut(QueuedPacket<'_>)) -> io::Result<usize> {
        let n = match self.recv_raw() {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(0);
            }
            Err(e) if e.raw_os_error() == Some(105) => {
                // ENOBUFS: the kernel dropped messages for us; keep going.
                self.counters.enobufs += 1;
                return Ok(0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut count = 0usize;
        let mut malformed = 0u64;
        let buf = self.filled(n);
        let mut at = 0usize;
        while let (Some(len), Some(ty)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
            let len = len as usize;
            let Some(msg) = buf.get(at..at + len).filter(|_| len >= 16) else {
                malformed += 1;
                break;
            };
            at += align4(len);
            if ty == NLMSG_DONE || ty == NLMSG_ERROR {
                continue;
            }
            if ty != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET) {
                continue;
            }
            let mut id = None;
            let mut payload: &[u8] = &[];
            for (aty, a) in attrs(msg.get(20..).unwrap_or_default()) {
                match aty {
                    // struct nfqnl_msg_packet_hdr { __be32 packet_id; __be16 hw_protocol; __u8 hook; }
                    NFQA_PACKET_HDR => {
                        id = a
                            .get(0..4)
                            .and_then(|b| b.try_into().ok())
                            .map(u32::from_be_bytes)
                    }
                    NFQA_PAYLOAD => payload = a,
                    _ => {}
                }
            }
            match id {
                Some(id) => {
                    count += 1;
                    each(QueuedPacket { id, payload });
                }
                None => malformed += 1,
            }
        }
        self.counters.malformed += malformed;
        Ok(count)
    }

    /// Gives the verdict for one packet.
    pub fn verdict(&mut self, id: u32, v: NfVerdict) -> io::Result<()> {
        self.send_verdict(NFQNL_MSG_VERDICT, id, v)
    }

    /// Gives the verdict for every packet of this queue with an id up to `id` that has
    /// none yet: one message for a run of packets judged alike.
    pub fn verdict_batch(&mut self, id: u32, v: NfVerdict) -> io::Result<()> {
        self.send_verdict(NFQNL_MSG_VERDICT_BATCH, id, v)
    }

    fn send_verdict(&mut self, msg: u16, id: u32, v: NfVerdict) -> io::Result<()> {
        self.begin(msg, NLM_F_REQUEST, 0);
        let code = match v {
            NfVerdict::Accept => NF_ACCEPT,
            NfVerdict::Drop => NF_DROP,
        };
        // struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
        attr(&mut self.out, NFQA_VERDICT_HDR, |o| {
            o.extend_from_slice(&code.to_be_bytes());
            o.extend_from_slice(&id.to_be_bytes());
        });
        self.counters.verdict_msgs += 1;
        self.finish_and_send()
    }
}

impl Drop for NfQueue {
    fn drop(&mut self) {
        // Packets still queued are reinjected by the kernel's own unbind (with
        // --queue-bypass, new ones flow past the queue once nobody listens).
        let _ = self.config_cmd(NFQNL_CFG_CMD_UNBIND);
    }
}

/// Appends one attribute with a 4-byte-aligned payload.
fn attr(out: &mut Vec<u8>, ty: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    put_u16(out, 0);
    put_u16(out, ty);
    body(out);
    let len = (out.len() - start) as u16;
    if let Some(h) = out.get_mut(start..start + 2) {
        h.copy_from_slice(&len.to_ne_bytes());
    }
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn libc_af_netlink() -> i32 {
    16 // AF_NETLINK on Linux
}

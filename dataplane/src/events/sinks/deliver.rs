//! The part every sink thread shares: what is queued ([`Item`]), what is counted
//! ([`SinkStats`]), pauses that an exit can cut short, and the syslog transports (UDP, TCP
//! with octet counting, a local socket of either type) with their reconnect backoff.

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::syslog::{self, Origin};

/// One record for the sinks: an alert (its EVE line as written to the event file) or a
/// rate-limit summary.
#[derive(Debug)]
pub struct Item {
    /// One JSON object, one line.
    pub json: Box<str>,
    /// The human summary syslog messages start with.
    pub text: Box<str>,
    /// RFC 5424 severity.
    pub severity: u8,
    /// RFC 5424 MSGID: `alert` or `alert_summary`.
    pub msgid: &'static str,
}

/// One sink's counters, read by `/metrics`, `palisadectl status` and the replay summary.
#[derive(Debug)]
pub struct SinkStats {
    /// The URL without credentials ([`super::url::SinkUrl::label`]).
    pub label: String,
    /// Records delivered (written to the socket; a webhook answered 2xx).
    pub sent: AtomicU64,
    /// Records taken from the queue that could not be delivered in the attempts allowed.
    pub failed: AtomicU64,
    /// Records never queued: the queue was full (a slow or dead receiver).
    pub dropped: AtomicU64,
    /// At exit, records still queued or being tried when the flush deadline passed.
    pub undelivered: AtomicU64,
    pub(super) in_flight: AtomicU64,
    /// Set when the flush deadline passes: stop trying, leave.
    pub(super) abandon: AtomicBool,
    /// The queue's receiving end, kept for its depth.
    pub(super) queue: Receiver<Arc<Item>>,
}

impl SinkStats {
    pub(super) fn new(label: String, queue: Receiver<Arc<Item>>) -> Self {
        SinkStats {
            label,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            abandon: AtomicBool::new(false),
            queue,
        }
    }

    /// Records waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn abandoned(&self) -> bool {
        self.abandon.load(Ordering::Relaxed)
    }

    /// Sleeps `d`, or less when the flush deadline passes meanwhile. False if abandoned.
    pub(super) fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.abandoned() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(20)));
        }
    }
}

/// Attempts per syslog message before it counts as failed.
const SYSLOG_ATTEMPTS: u32 = 3;
/// Reconnect backoff: doubles with each consecutive failure, from this to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bounds on one connect and one write, so a receiver that stops reading fails the
/// message rather than holding the sink forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a syslog sink sends.
#[derive(Clone, Debug)]
pub enum SyslogTarget {
    Udp(String, u16),
    Tcp(String, u16),
    Unix(PathBuf),
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    UnixDgram(UnixDatagram),
    UnixStream(UnixStream),
}

/// Consecutive failures and when the next connect may be tried.
pub(super) struct Backoff {
    failures: u32,
    retry_at: Instant,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Backoff {
            failures: 0,
            retry_at: Instant::now(),
        }
    }

    /// Counts a failure and says how long to wait before the next try.
    pub(super) fn failed(&mut self, base: Duration) -> Duration {
        let shift = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let d = base.saturating_mul(1u32 << shift).min(BACKOFF_MAX);
        self.retry_at = Instant::now() + d;
        d
    }

    pub(super) fn failures(&self) -> u32 {
        self.failures
    }

    /// Time left before the next try may start.
    pub(super) fn wait(&self) -> Duration {
        self.retry_at.saturating_duration_since(Instant::now())
    }

    /// Delivered: a success after failures is worth a log line.
    pub(super) fn succeeded(&mut self) -> bool {
        std::mem::take(&mut self.failures) > 0
    }
}

/// A syslog sink's thread: each record is formatted and written, with up to
/// [`SYSLOG_ATTEMPTS`] tries (reconnecting with backoff) before it counts as failed.
pub(super) fn run_syslog(
    target: SyslogTarget,
    origin: Origin,
    rx: Receiver<Arc<Item>>,
    stats: Arc<SinkStats>,
) {
    let mut conn: Option<Conn> = None;
    let mut backoff = Backoff::new();
    let mut msg = Vec::with_capacity(syslog::MAX_MESSAGE);
    let mut frame = Vec::with_capacity(syslog::MAX_MESSAGE + 8);
    for item in rx.iter() {
        stats.in_flight.store(1, Ordering::Relaxed);
        if stats.abandoned() {
            break;
        }
        let mut delivered = false;
        for _ in 0..SYSLOG_ATTEMPTS {
            if !stats.pause(backoff.wait()) {
                break;
            }
            let c = match conn.take() {
                Some(c) => c,
                None => match connect(&target) {
                    Ok(c) => c,
                    Err(e) => {
                        note_failure(&stats.label, &mut backoff, &e);
                        continue;
                    }
                },
            };
            let now = crate::events::Timestamp::now().0;
            let sent = match &c {
                Conn::UnixDgram(_) | Conn::UnixStream(_) => {
                    syslog::format_local(
                        &mut msg,
                        &origin,
                        item.severity,
                        now,
                        &item.text,
                        &item.json,
                    );
                    send(&c, &msg, &mut frame)
                }
                _ => {
                    syslog::format_rfc5424(
                        &mut msg,
                        &origin,
                        item.severity,
                        now,
                        item.msgid,
                        &item.text,
                        &item.json,
                    );
                    send(&c, &msg, &mut frame)
                }
            };
            match sent {
                Ok(()) => {
                    conn = Some(c);
                    if backoff.succeeded() {
                        tracing::info!(sink = %stats.label, "alert sink delivers again");
                    }
                    delivered = true;
                    break;
                }
                Err(e) => note_failure(&stats.label, &mut backoff, &e),
            }
        }
        if delivered {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        } else if !stats.abandoned() {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        stats.in_flight.store(0, Ordering::Relaxed);
    }
}

/// Logs the first failure of a run of them (a dead receiver is one warning, not one per
/// alert), and schedules the next try.
fn note_failure(label: &str, backoff: &mut Backoff, e: &io::Error) {
    let first = backoff.failures() == 0;
    let wait = backoff.failed(BACKOFF_BASE);
    if first {
        tracing::warn!(sink = %label, "alert sink failed: {e}; retrying with backoff");
    } else {
        tracing::debug!(sink = %label, "alert sink failed again: {e}; next try in {wait:?}");
    }
}

fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}: no address"),
        ));
    }
    Ok(addrs)
}

fn connect(target: &SyslogTarget) -> io::Result<Conn> {
    match target {
        SyslogTarget::Udp(host, port) => {
            let mut last = None;
            for a in resolve(host, *port)? {
                let local: SocketAddr = if a.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                // Connected: an ICMP port unreachable comes back as an error on a later
                // send, so a dead receiver is seen and counted.
                match UdpSocket::bind(local).and_then(|s| s.connect(a).map(|()| s)) {
                    Ok(s) => return Ok(Conn::Udp(s)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::other("no address")))
        }
        SyslogTarget::Tcp(host, port) => {
            let mut last = None;
            for a in resolve(host, *port)? {
                match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                    Ok(s) => {
                        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                        let _ = s.set_nodelay(true);
                        return Ok(Conn::Tcp(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::other("no address")))
        }
        SyslogTarget::Unix(path) => {
            let d = UnixDatagram::unbound()?;
            match d.connect(path) {
                Ok(()) => Ok(Conn::UnixDgram(d)),
                // A stream socket (syslog-ng's unix-stream, some rsyslog setups).
                Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
                    let s = UnixStream::connect(path)?;
                    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    Ok(Conn::UnixStream(s))
                }
                Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
    }
}

fn send(c: &Conn, msg: &[u8], frame: &mut Vec<u8>) -> io::Result<()> {
    match c {
        Conn::Udp(s) => s.send(msg).map(|_| ()),
        Conn::UnixDgram(s) => s.send(msg).map(|_| ()),
        Conn::Tcp(s) => {
            syslog::frame_octet_counted(msg, frame);
            (&*s).write_all(frame)
        }
        Conn::UnixStream(s) => {
            // Local stream sockets read one message per line (non-transparent framing);
            // the message holds no line break (records are single-line JSON, the summary
            // is sanitised).
            frame.clear();
            frame.extend_from_slice(msg);
            frame.push(b'\n');
            (&*s).write_all(frame)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;
    use std::io::Read as _;

    fn item(text: &str) -> Arc<Item> {
        Arc::new(Item {
            json: r#"{"event_type":"alert"}"#.into(),
            text: text.into(),
            severity: syslog::CRIT,
            msgid: "alert",
        })
    }

    fn origin() -> Origin {
        Origin {
            facility: 16,
            hostname: "h".into(),
            procid: 7,
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_cap_and_resets() {
        let mut b = Backoff::new();
        assert_eq!(b.failed(BACKOFF_BASE), Duration::from_millis(100));
        assert_eq!(b.failed(BACKOFF_BASE), Duration::from_millis(200));
        assert_eq!(b.failed(BACKOFF_BASE), Duration::from_millis(400));
        for _ in 0..40 {
            b.failed(BACKOFF_BASE);
        }
        assert_eq!(b.failed(BACKOFF_BASE), BACKOFF_MAX);
        assert!(b.succeeded());
        assert!(!b.succeeded());
        assert_eq!(b.failed(BACKOFF_BASE), Duration::from_millis(100));
    }

    /// A TCP receiver gets octet-counted RFC 5424 frames, in order.
    #[test]
    fn tcp_frames_arrive_octet_counted() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = bounded(8);
        let stats = Arc::new(SinkStats::new("t".into(), rx.clone()));
        tx.send(item("first")).unwrap();
        tx.send(item("second")).unwrap();
        drop(tx);
        let st = Arc::clone(&stats);
        let t = std::thread::spawn(move || {
            run_syslog(
                SyslogTarget::Tcp("127.0.0.1".into(), port),
                origin(),
                rx,
                st,
            )
        });
        let (mut c, _) = l.accept().unwrap();
        t.join().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        let text = String::from_utf8(got).unwrap();
        // Each frame: its length, a space, the message.
        let mut rest = text.as_str();
        let mut msgs = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = rest.split_once(' ').unwrap();
            let len: usize = len.parse().unwrap();
            msgs.push(&tail[..len]);
            rest = &tail[len..];
        }
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].starts_with("<130>1 "), "{}", msgs[0]);
        assert!(msgs[0].contains(" h palisade 7 alert - first {"));
        assert!(msgs[1].contains(" - second {"));
        assert_eq!(stats.sent.load(Ordering::Relaxed), 2);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
    }

    /// Nothing listens: each record is tried a bounded number of times, then counted.
    #[test]
    fn a_dead_tcp_receiver_fails_each_record_after_its_attempts() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let (tx, rx) = bounded(8);
        let stats = Arc::new(SinkStats::new("t".into(), rx.clone()));
        tx.send(item("x")).unwrap();
        drop(tx);
        let started = Instant::now();
        run_syslog(
            SyslogTarget::Tcp("127.0.0.1".into(), port),
            origin(),
            rx,
            Arc::clone(&stats),
        );
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
        assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
        // Three tries: waits of 100 and 200 ms between them.
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    /// `unix:///PATH`: a datagram socket gets the local form; a stream socket is found and
    /// gets one message per line.
    #[test]
    fn unix_datagram_and_stream_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let dpath = dir.path().join("dgram.sock");
        let d = UnixDatagram::bind(&dpath).unwrap();
        let (tx, rx) = bounded(8);
        let stats = Arc::new(SinkStats::new("d".into(), rx.clone()));
        tx.send(item("hello")).unwrap();
        drop(tx);
        run_syslog(SyslogTarget::Unix(dpath), origin(), rx, Arc::clone(&stats));
        let mut buf = [0u8; 4096];
        let n = d.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.starts_with("<130>"), "{got}");
        assert!(
            got.contains(" palisade[7]: hello {\"event_type\":\"alert\"}"),
            "{got}"
        );
        assert_eq!(stats.sent.load(Ordering::Relaxed), 1);

        let spath = dir.path().join("stream.sock");
        let l = std::os::unix::net::UnixListener::bind(&spath).unwrap();
        let (tx, rx) = bounded(8);
        let stats = Arc::new(SinkStats::new("s".into(), rx.clone()));
        tx.send(item("one")).unwrap();
        tx.send(item("two")).unwrap();
        drop(tx);
        let st = Arc::clone(&stats);
        let t = std::thread::spawn(move || run_syslog(SyslogTarget::Unix(spath), origin(), rx, st));
        let (mut c, _) = l.accept().unwrap();
        t.join().unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2, "{got}");
        assert!(lines[0].contains("palisade[7]: one "));
        assert!(lines[1].contains("palisade[7]: two "));
        assert_eq!(stats.sent.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn abandoning_stops_a_sink_waiting_out_its_backoff() {
        let (tx, rx) = bounded(8);
        let stats = Arc::new(SinkStats::new("t".into(), rx.clone()));
        stats.abandon.store(true, Ordering::Relaxed);
        assert!(!stats.pause(Duration::from_secs(60)));
        tx.send(item("x")).unwrap();
        drop(tx);
        run_syslog(
            SyslogTarget::Unix("/nonexistent/sock".into()),
            origin(),
            rx,
            Arc::clone(&stats),
        );
        // Taken and left: neither sent nor failed (the hub counts it undelivered).
        assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
        assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
    }
}

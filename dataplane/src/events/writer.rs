//! The one thread that owns the event output. Workers send whole buffers of JSON lines
//! (one per batch), so the writer takes no lock per event and the file sees large writes.
//!
//! Offline (`replay`) a full queue makes a worker wait: every event is written, and the
//! run only takes longer. Live ([`EventWriter::start_live`]) the packet path never waits
//! for events: a buffer that finds the queue full is dropped and its lines counted
//! ([`EventWriter::dropped`]); enforcement goes on at full speed through an alert storm.
//!
//! With alert sinks ([`super::sinks`]), the writer hands each buffer it has written to
//! them: they pick the alert lines and queue them without waiting, so the event file
//! always has its copy and a sink never slows the writer, let alone a worker.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::sinks::AlertSinks;

/// Where events go.
#[derive(Clone, Debug)]
pub enum EventOutput {
    Discard,
    Stdout,
    File(PathBuf),
}

impl EventOutput {
    /// The `--events` argument: `-` is stdout, `none` discards on purpose, anything else
    /// is a file; without one, `default` (PRODUCT.md: `eve.json` for `replay`,
    /// `/var/log/palisade/eve.json` for `run`).
    pub fn from_arg(arg: Option<&str>, default: &str) -> Self {
        match arg {
            Some("-") => EventOutput::Stdout,
            Some("none") => EventOutput::Discard,
            Some(p) => EventOutput::File(PathBuf::from(p)),
            None => EventOutput::File(PathBuf::from(default)),
        }
    }
}

impl std::fmt::Display for EventOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventOutput::Discard => f.write_str("none"),
            EventOutput::Stdout => f.write_str("-"),
            EventOutput::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Followers of the event stream (`palisadectl events --follow`): each gets every buffer
/// of lines written after it joined. A follower that falls behind by more than its queue
/// loses lines (counted), never slows the writer.
#[derive(Default)]
pub struct EventTap {
    followers: Mutex<Vec<Sender<Arc<[u8]>>>>,
    count: AtomicUsize,
    /// Buffers a slow follower did not get.
    pub lagged: AtomicU64,
}

/// Buffers queued per follower.
const FOLLOW_QUEUE: usize = 1024;

impl EventTap {
    /// A new follower's receiving end.
    pub fn follow(&self) -> Receiver<Arc<[u8]>> {
        let (tx, rx) = bounded(FOLLOW_QUEUE);
        if let Ok(mut f) = self.followers.lock() {
            f.push(tx);
            self.count.store(f.len(), Ordering::Relaxed);
        }
        rx
    }

    fn publish(&self, buf: &[u8]) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let shared: Arc<[u8]> = Arc::from(buf);
        if let Ok(mut f) = self.followers.lock() {
            f.retain(|tx| match tx.try_send(Arc::clone(&shared)) {
                Ok(()) => true,
                Err(crossbeam_channel::TrySendError::Full(_)) => {
                    self.lagged.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
            });
            self.count.store(f.len(), Ordering::Relaxed);
        }
    }
}

/// Handle to the writer thread. Dropping every sender and calling [`EventWriter::finish`]
/// flushes the output.
pub struct EventWriter {
    tx: Option<Sender<Vec<u8>>>,
    /// Empty buffers come back here for reuse, so steady state allocates nothing.
    recycle: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<std::io::Result<u64>>>,
    /// Live: lines dropped because the queue was full (`None`: senders wait instead).
    dropped: Option<Arc<AtomicU64>>,
    /// Set to have the writer reopen its file before the next write (log rotation).
    reopen: Arc<AtomicBool>,
}

/// Creates (or appends to) an event file, readable by its owner only: events name
/// workloads, rules and what they asked.
fn open_events(p: &Path, append: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).mode(0o600);
    if append {
        o.append(true);
    } else {
        o.truncate(true);
    }
    o.open(p).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("{}: cannot create events file: {e}", p.display()),
        )
    })
}

/// Queue depth in buffers. When the writer falls behind, workers block on send: events are
/// never dropped silently and memory stays bounded.
const QUEUE: usize = 64;

/// With alert sinks, the longest the writer sleeps between looks at their summaries.
const SINK_TICK: std::time::Duration = std::time::Duration::from_secs(1);

impl EventWriter {
    pub fn start(output: EventOutput) -> std::io::Result<Self> {
        Self::start_with_tap(output, None)
    }

    /// Offline, with alerts also going to `sinks` (flushed when the writer finishes).
    pub fn start_with_sinks(
        output: EventOutput,
        sinks: Option<AlertSinks>,
    ) -> std::io::Result<Self> {
        Self::spawn(output, None, sinks)
    }

    /// For a live source: every buffer also goes to `tap`'s followers (and its alerts to
    /// `sinks`), and a sender never waits for a full queue (it drops the buffer and counts
    /// its lines).
    pub fn start_live(
        output: EventOutput,
        tap: Arc<EventTap>,
        sinks: Option<AlertSinks>,
    ) -> std::io::Result<Self> {
        let mut w = Self::spawn(output, Some(tap), sinks)?;
        w.dropped = Some(Arc::new(AtomicU64::new(0)));
        Ok(w)
    }

    /// Lines dropped because the queue was full (live only).
    pub fn dropped(&self) -> Option<Arc<AtomicU64>> {
        self.dropped.clone()
    }

    /// Like [`EventWriter::start`], also handing every buffer to `tap`'s followers.
    pub fn start_with_tap(
        output: EventOutput,
        tap: Option<Arc<EventTap>>,
    ) -> std::io::Result<Self> {
        Self::spawn(output, tap, None)
    }

    fn spawn(
        output: EventOutput,
        tap: Option<Arc<EventTap>>,
        mut sinks: Option<AlertSinks>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Vec<u8>>(QUEUE);
        let (rtx, rrx) = bounded::<Vec<u8>>(QUEUE);
        let sink: Box<dyn Write + Send> = match &output {
            EventOutput::Discard => Box::new(std::io::sink()),
            EventOutput::Stdout => Box::new(std::io::stdout()),
            // A daemon appends to what an earlier run wrote, as Suricata does; a replay
            // writes its own file.
            EventOutput::File(p) => Box::new(open_events(p, tap.is_some())?),
        };
        let reopen = Arc::new(AtomicBool::new(false));
        let reopen_flag = Arc::clone(&reopen);
        let thread = std::thread::Builder::new()
            .name("palisade-events".into())
            .spawn(move || -> std::io::Result<u64> {
                let mut w = BufWriter::with_capacity(1 << 16, sink);
                let mut lines = 0u64;
                loop {
                    let mut buf = match &mut sinks {
                        None => match rx.recv() {
                            Ok(b) => b,
                            Err(_) => break,
                        },
                        // With sinks, wake at least every second for their summaries.
                        Some(s) => match rx.recv_timeout(SINK_TICK) {
                            Ok(b) => b,
                            Err(RecvTimeoutError::Timeout) => {
                                s.tick();
                                continue;
                            }
                            Err(RecvTimeoutError::Disconnected) => break,
                        },
                    };
                    if reopen_flag.swap(false, Ordering::Relaxed)
                        && let EventOutput::File(p) = &output
                    {
                        // Rotated away (logrotate renamed it, then sent SIGHUP): the old
                        // file gets what was buffered, new lines go to a new file.
                        w.flush()?;
                        match open_events(p, true) {
                            Ok(f) => w = BufWriter::with_capacity(1 << 16, Box::new(f)),
                            Err(e) => tracing::error!("reopening the events file: {e}"),
                        }
                    }
                    lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
                    w.write_all(&buf)?;
                    if let Some(t) = &tap {
                        // Live runs: events reach the file and followers promptly.
                        w.flush()?;
                        t.publish(&buf);
                    }
                    if let Some(s) = &mut sinks {
                        s.offer(&buf);
                    }
                    buf.clear();
                    let _ = rtx.try_send(buf);
                }
                w.flush()?;
                if let Some(s) = sinks {
                    s.finish();
                }
                Ok(lines)
            })?;
        Ok(EventWriter {
            tx: Some(tx),
            recycle: rrx,
            thread: Some(thread),
            dropped: None,
            reopen,
        })
    }

    /// Set it to have the writer reopen its events file before its next write (SIGHUP
    /// after log rotation).
    pub fn reopen_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.reopen)
    }

    /// A handle for one worker.
    pub fn sender(&self) -> EventSender {
        EventSender {
            tx: self.tx.clone(),
            recycle: self.recycle.clone(),
            dropped: self.dropped.clone(),
        }
    }

    /// Waits for every sender to be dropped and the output to be flushed. Returns the
    /// number of lines written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.tx.take();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("event writer panicked"))),
            None => Ok(0),
        }
    }
}

/// A worker's connection to the writer.
#[derive(Clone)]
pub struct EventSender {
    tx: Option<Sender<Vec<u8>>>,
    recycle: Receiver<Vec<u8>>,
    /// Live: where lines dropped on a full queue are counted (the sender never waits).
    dropped: Option<Arc<AtomicU64>>,
}

impl EventSender {
    /// Sends the buffer's lines and leaves an empty (recycled) buffer in its place. Live,
    /// when the writer is behind, the lines are dropped and counted instead.
    pub fn flush(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let Some(tx) = &self.tx else {
            buf.clear();
            return;
        };
        if let Some(dropped) = &self.dropped {
            if tx.is_full() {
                let lines = buf.iter().filter(|&&b| b == b'\n').count() as u64;
                dropped.fetch_add(lines, Ordering::Relaxed);
                buf.clear();
                return;
            }
            let fresh = self.recycle.try_recv().unwrap_or_default();
            let full = std::mem::replace(buf, fresh);
            if let Err(crossbeam_channel::TrySendError::Full(mut b)) = tx.try_send(full) {
                // Filled up between the check and the send: same outcome.
                let lines = b.iter().filter(|&&c| c == b'\n').count() as u64;
                dropped.fetch_add(lines, Ordering::Relaxed);
                b.clear();
                *buf = b;
            }
            return;
        }
        let fresh = self.recycle.try_recv().unwrap_or_default();
        let full = std::mem::replace(buf, fresh);
        let _ = tx.send(full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_sender_never_waits_for_a_stalled_writer() {
        // A follower's lines go nowhere fast, but the real stall is the file: a writer
        // thread that cannot keep up. Simulate it with a queue nobody drains: the writer
        // thread is not started here, only the channel and the senders.
        let (tx, rx) = bounded::<Vec<u8>>(2);
        let (_rtx, rrx) = bounded::<Vec<u8>>(2);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut s = EventSender {
            tx: Some(tx),
            recycle: rrx,
            dropped: Some(Arc::clone(&dropped)),
        };
        for _ in 0..10 {
            let mut buf = b"{\"a\":1}\n{\"b\":2}\n".to_vec();
            s.flush(&mut buf);
            assert!(buf.is_empty());
        }
        // Two buffers queued, eight dropped (two lines each), and no call blocked.
        assert_eq!(rx.len(), 2);
        assert_eq!(dropped.load(Ordering::Relaxed), 16);
    }
}

//! Live learning: while the active policy has a group in `learn` mode, a thread follows the
//! event stream and feeds each record judged in `learn` mode (its transactions, logged
//! as `--log-all` logs them, and its flow records) to the same learner `palisade learn`
//! uses on captures, so `palisadectl learn export` writes the proposal `palisade learn`
//! would make from a capture of the same traffic.
//!
//! Off the packet path: the thread reads the event writer's output (a follower of the
//! event tap, bounded: a learner that falls behind loses buffers, counted as the tap's
//! lag). It follows only while a learn-mode group exists, so a daemon without one pays
//! nothing. Everything it holds is bounded by the learner's own caps.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use control::Mode;

use super::Shared;
use crate::learn::EventLearner;

/// What the learner thread shares with the control socket.
pub struct LiveLearner {
    pub learner: Mutex<EventLearner>,
    /// Records read from the event stream and judged in learn mode.
    pub records: std::sync::atomic::AtomicU64,
}

/// Starts the learner thread; it stops with the daemon.
pub fn start(shared: Arc<Shared>) -> std::io::Result<(Arc<LiveLearner>, JoinHandle<()>)> {
    let live = Arc::new(LiveLearner {
        learner: Mutex::new(EventLearner::new(&shared.inventory_now())),
        records: Default::default(),
    });
    let l = Arc::clone(&live);
    let handle = std::thread::Builder::new()
        .name("palisade-learn".into())
        .spawn(move || run(&shared, &l))?;
    Ok((live, handle))
}

fn run(shared: &Shared, live: &LiveLearner) {
    let mut follower = None;
    while !shared.shutdown.load(Ordering::Relaxed) {
        let learning = shared.policy.load().uses_mode(Mode::Learn);
        if !learning {
            // Dropping the receiver unsubscribes it at the writer's next publish.
            follower = None;
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let rx = follower.get_or_insert_with(|| shared.tap.follow());
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(buf) => feed(live, &buf),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Feeds the records of one event buffer that were judged in learn mode.
fn feed(live: &LiveLearner, buf: &[u8]) {
    let Ok(mut learner) = live.learner.lock() else {
        return;
    };
    for line in buf.split(|&b| b == b'\n') {
        // Most records are not learn-mode ones: skip them before parsing.
        if !contains(line, b"\"mode\":\"learn\"") {
            continue;
        }
        let Ok(e) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if e["policy_verdict"]["mode"] != "learn" {
            continue;
        }
        live.records.fetch_add(1, Ordering::Relaxed);
        learner.feed(&e);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

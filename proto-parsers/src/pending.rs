//! The transactions of one flow awaiting their answer, oldest first: the queue every parser
//! that pairs responses with requests in order uses (HTTP/1, Redis, PostgreSQL, MySQL).
//!
//! Servers accept any pipeline depth, and every request is reported (and judged) when it is
//! read, whatever the depth. What is bounded is the pairing: past `cap` waiting
//! transactions, the oldest one loses its entry (its pairing is given up, with a
//! [`ParserAnomaly::TooManyTransactions`], which does not blind, raised as the parser's
//! [`Overflow`] says) but keeps its [`Waiting::Kind`], run-length encoded, so the responses
//! that follow still land on the right requests and are framed as theirs need. Only if the
//! kinds of the oldest alternate past [`MAX_LOST_RUNS`] runs is pairing given up for the
//! rest of the flow ([`PendingQueue::unpaired`]). A parser whose given-up transactions need
//! nothing kept uses `()` as their kind: they then take one run, whatever their number.
//!
//! No allocation in steady state: the entries live in a `VecDeque` made with a small
//! capacity once, which grows at most to `cap` entries and is reused from then on; the lost
//! runs at most to [`MAX_LOST_RUNS`]. A parser whose entries carry nothing (`()`: Redis,
//! where the n-th reply answers the n-th command) allocates nothing at all.

use std::collections::VecDeque;
use std::fmt::Debug;

use crate::contract::{FactSink, ParserAnomaly};

/// Runs of same-kind transactions kept after their entries were given up.
pub const MAX_LOST_RUNS: usize = 256;

/// Capacity a queue starts with (it grows up to its cap under a deep pipeline).
const INITIAL: usize = 16;

/// What a parser keeps of one transaction awaiting its answer.
pub trait Waiting: Copy + Debug {
    /// What is still kept of a transaction whose entry was given up: what its response
    /// needs to be read (SQL: the kind of request), `()` when nothing.
    type Kind: Copy + Eq + Debug;

    fn kind(&self) -> Self::Kind;

    /// The entry a transaction whose entry was given up is handed back as, when its turn
    /// comes ([`PendingQueue::front`], [`PendingQueue::pop_front`]).
    fn lost(kind: Self::Kind) -> Self;
}

/// Entries that carry nothing: the transaction's id follows from its rank (Redis).
impl Waiting for () {
    type Kind = ();

    fn kind(&self) {}

    fn lost(_: ()) {}
}

/// When [`ParserAnomaly::TooManyTransactions`] is raised as entries are given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// For each transaction given up (HTTP/1, which also reports each one unanswered).
    EachLost,
    /// Once per episode: at the first transaction given up, then not again until the queue
    /// has drained (PostgreSQL, MySQL).
    OncePerEpisode,
    /// Each time the number of waiting transactions goes past the cap (Redis).
    EachCrossing,
}

/// The transactions of one flow awaiting their answer.
#[derive(Debug)]
pub struct PendingQueue<T: Waiting> {
    /// The oldest transactions, whose entries were given up: their kinds and counts.
    lost: VecDeque<(T::Kind, u32)>,
    queue: VecDeque<T>,
    cap: usize,
    overflow: Overflow,
    /// Entries are being given up (for [`Overflow::OncePerEpisode`]).
    overflowing: bool,
    unpaired: bool,
}

impl<T: Waiting> PendingQueue<T> {
    /// A queue keeping the entries of up to `cap` transactions.
    pub fn new(cap: usize, overflow: Overflow) -> Self {
        PendingQueue {
            lost: VecDeque::new(),
            queue: VecDeque::with_capacity(cap.clamp(1, INITIAL)),
            cap: cap.max(1),
            overflow,
            overflowing: false,
            unpaired: false,
        }
    }

    /// Pairing was given up for good (the kinds of the oldest alternated past
    /// [`MAX_LOST_RUNS`] runs): the queue stays empty and responses cannot be paired.
    pub fn unpaired(&self) -> bool {
        self.unpaired
    }

    /// Transactions waiting, those whose entries were given up included.
    pub fn len(&self) -> usize {
        self.queue.len() + self.lost.iter().map(|&(_, n)| n as usize).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.lost.is_empty()
    }

    /// Transactions waiting with their entries (not given up).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues a transaction. Never refuses one: past the cap, the oldest entry is given up
    /// and returned (its kind stays queued). Nothing is queued once [`Self::unpaired`].
    pub fn push(&mut self, t: T, sink: &mut dyn FactSink) -> Option<T> {
        if self.unpaired {
            return None;
        }
        let mut given_up = None;
        if self.queue.len() >= self.cap
            && let Some(old) = self.queue.pop_front()
        {
            let report = match self.overflow {
                Overflow::EachLost => true,
                Overflow::OncePerEpisode => !self.overflowing,
                Overflow::EachCrossing => self.lost.is_empty(),
            };
            self.overflowing = true;
            if report {
                sink.anomaly(ParserAnomaly::TooManyTransactions);
            }
            let kind = old.kind();
            match self.lost.back_mut() {
                Some((k, n)) if *k == kind && *n < u32::MAX => *n += 1,
                _ => self.lost.push_back((kind, 1)),
            }
            if self.lost.len() > MAX_LOST_RUNS {
                self.unpaired = true;
                self.lost.clear();
                self.queue.clear();
                return Some(old);
            }
            given_up = Some(old);
        }
        self.queue.push_back(t);
        given_up
    }

    /// The oldest transaction ([`Waiting::lost`] for one whose entry was given up).
    pub fn front(&self) -> Option<T> {
        match self.lost.front() {
            Some(&(kind, _)) => Some(T::lost(kind)),
            None => self.queue.front().copied(),
        }
    }

    /// The oldest transaction's entry, unless its entry was given up.
    pub fn front_mut(&mut self) -> Option<&mut T> {
        if self.lost.is_empty() {
            self.queue.front_mut()
        } else {
            None
        }
    }

    /// The newest transaction's entry, if it has one.
    pub fn back(&self) -> Option<&T> {
        self.queue.back()
    }

    pub fn back_mut(&mut self) -> Option<&mut T> {
        self.queue.back_mut()
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let t = match self.lost.front_mut() {
            Some((kind, n)) => {
                let t = T::lost(*kind);
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.lost.pop_front();
                }
                Some(t)
            }
            None => self.queue.pop_front(),
        };
        self.drained();
        t
    }

    /// The oldest transaction that still has its entry, passing over those given up.
    pub fn pop_queued(&mut self) -> Option<T> {
        let t = self.queue.pop_front();
        self.drained();
        t
    }

    /// Forgets the transactions whose entries were given up (their responses are no
    /// longer expected).
    pub fn forget_lost(&mut self) {
        self.lost.clear();
        self.drained();
    }

    /// Empties the queue (capacity kept).
    pub fn clear(&mut self) {
        self.lost.clear();
        self.queue.clear();
        self.drained();
    }

    /// Whether any waiting transaction is of kind `k`.
    pub fn any_kind(&self, k: T::Kind) -> bool {
        self.lost.iter().any(|&(kind, _)| kind == k) || self.queue.iter().any(|t| t.kind() == k)
    }

    /// Ends an overflow episode once nothing is waiting.
    fn drained(&mut self) {
        if self.is_empty() {
            self.overflowing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Fact;

    #[derive(Default)]
    struct Count(Vec<ParserAnomaly>);
    impl FactSink for Count {
        fn fact(&mut self, _: &Fact<'_>) {}
        fn anomaly(&mut self, a: ParserAnomaly) {
            self.0.push(a);
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Tx {
        kind: u8,
        id: Option<u32>,
    }

    impl Waiting for Tx {
        type Kind = u8;
        fn kind(&self) -> u8 {
            self.kind
        }
        fn lost(kind: u8) -> Self {
            Tx { kind, id: None }
        }
    }

    fn tx(kind: u8, id: u32) -> Tx {
        Tx { kind, id: Some(id) }
    }

    fn anomalies(overflow: Overflow) -> usize {
        let mut q = PendingQueue::new(2, overflow);
        let mut s = Count::default();
        for i in 0..5 {
            q.push(tx(b'a', i), &mut s);
        }
        // Down to the cap, then past it again, then drained and past it once more.
        q.pop_front();
        q.pop_front();
        q.pop_front();
        q.push(tx(b'a', 5), &mut s);
        while q.pop_front().is_some() {}
        for i in 6..9 {
            q.push(tx(b'a', i), &mut s);
        }
        assert!(s.0.iter().all(|&a| a == ParserAnomaly::TooManyTransactions));
        s.0.len()
    }

    #[test]
    fn each_policy_raises_the_anomaly_as_it_says() {
        assert_eq!(anomalies(Overflow::EachLost), 5);
        assert_eq!(anomalies(Overflow::OncePerEpisode), 2);
        assert_eq!(anomalies(Overflow::EachCrossing), 3);
    }

    #[test]
    fn the_given_up_come_back_as_lost_and_the_rest_with_their_entries() {
        let mut q = PendingQueue::new(2, Overflow::EachLost);
        let mut s = Count::default();
        assert_eq!(q.push(tx(1, 0), &mut s), None);
        assert_eq!(q.push(tx(1, 1), &mut s), None);
        assert_eq!(q.push(tx(2, 2), &mut s), Some(tx(1, 0)));
        assert_eq!((q.len(), q.queued()), (3, 2));
        assert!(q.front_mut().is_none());
        assert_eq!(q.back(), Some(&tx(2, 2)));
        assert_eq!(q.front(), Some(Tx { kind: 1, id: None }));
        assert_eq!(q.pop_queued(), Some(tx(1, 1)));
        assert_eq!(q.pop_front(), Some(Tx { kind: 1, id: None }));
        assert_eq!(q.front_mut().map(|t| t.id), Some(Some(2)));
        q.push(tx(3, 3), &mut s);
        q.push(tx(3, 4), &mut s);
        q.forget_lost();
        assert_eq!(q.len(), 2);
        assert!(q.any_kind(3) && !q.any_kind(2));
        q.clear();
        assert!(q.is_empty() && q.pop_front().is_none());
    }

    #[test]
    fn unit_entries_of_any_number_take_one_run() {
        let mut q: PendingQueue<()> = PendingQueue::new(4, Overflow::EachCrossing);
        let mut s = Count::default();
        for _ in 0..10 * MAX_LOST_RUNS {
            q.push((), &mut s);
        }
        assert!(!q.unpaired());
        assert_eq!(q.len(), 10 * MAX_LOST_RUNS);
        assert_eq!(s.0, [ParserAnomaly::TooManyTransactions]);
    }
}

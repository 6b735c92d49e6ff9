//! Requests awaiting the server's answer, in order, for pairing responses with requests.
//!
//! Servers accept any pipeline depth, and every request is reported (and judged) when it is
//! read, whatever the depth. What is bounded is the pairing: past `cap` outstanding
//! requests, the oldest ones lose their id (their responses are no longer reported, with one
//! [`ParserAnomaly::TooManyTransactions`], which does not blind) but keep their kind, run-
//! length encoded, so the responses that follow still land on the right requests. Only if
//! the kinds of the oldest alternate past [`MAX_LOST_RUNS`] runs is pairing given up for
//! the rest of the flow ([`PendingQueue::unpaired`]): responses are then skipped unread.

use std::collections::VecDeque;

use crate::contract::{FactSink, ParserAnomaly};

/// Runs of same-kind requests kept without ids.
pub const MAX_LOST_RUNS: usize = 256;

/// One request awaiting its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending<K> {
    pub kind: K,
    pub id: u32,
    /// Reported as a transaction (so it needs a response or Unanswered).
    pub reported: bool,
    /// Its response was already reported (an error before the end of the request).
    pub answered: bool,
}

impl<K> Pending<K> {
    pub const fn new(kind: K, id: u32, reported: bool) -> Self {
        Pending {
            kind,
            id,
            reported,
            answered: false,
        }
    }
}

/// The outstanding requests of one flow.
#[derive(Debug)]
pub struct PendingQueue<K> {
    /// The oldest requests, whose pairing was given up: their kinds and counts.
    lost: VecDeque<(K, u32)>,
    queue: VecDeque<Pending<K>>,
    cap: usize,
    /// Requests are being given up (the anomaly is raised once per episode).
    overflowing: bool,
    unpaired: bool,
}

impl<K: Copy + Eq> PendingQueue<K> {
    /// A queue pairing up to `cap` requests with their responses.
    pub fn new(cap: usize) -> Self {
        PendingQueue {
            lost: VecDeque::new(),
            queue: VecDeque::with_capacity(cap.min(16)),
            cap: cap.max(1),
            overflowing: false,
            unpaired: false,
        }
    }

    /// Pairing was given up for good: responses are not read any more.
    pub fn unpaired(&self) -> bool {
        self.unpaired
    }

    pub fn len(&self) -> usize {
        self.queue.len() + self.lost.iter().map(|&(_, n)| n as usize).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.lost.is_empty()
    }

    /// Queues a request. Never refuses one: past the cap, the oldest loses its pairing.
    pub fn push(&mut self, p: Pending<K>, sink: &mut dyn FactSink) {
        if self.unpaired {
            return;
        }
        if self.queue.len() >= self.cap
            && let Some(old) = self.queue.pop_front()
        {
            if !self.overflowing {
                self.overflowing = true;
                sink.anomaly(ParserAnomaly::TooManyTransactions);
            }
            match self.lost.back_mut() {
                Some((k, n)) if *k == old.kind && *n < u32::MAX => *n += 1,
                _ => self.lost.push_back((old.kind, 1)),
            }
            if self.lost.len() > MAX_LOST_RUNS {
                self.unpaired = true;
                self.lost.clear();
                self.queue.clear();
                return;
            }
        }
        self.queue.push_back(p);
    }

    /// The oldest request (one whose pairing was given up has no id and is not reported).
    pub fn front(&self) -> Option<Pending<K>> {
        match self.lost.front() {
            Some(&(kind, _)) => Some(Pending::new(kind, 0, false)),
            None => self.queue.front().copied(),
        }
    }

    pub fn pop_front(&mut self) -> Option<Pending<K>> {
        let p = match self.lost.front_mut() {
            Some((kind, n)) => {
                let p = Pending::new(*kind, 0, false);
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.lost.pop_front();
                }
                Some(p)
            }
            None => self.queue.pop_front(),
        };
        if self.is_empty() {
            self.overflowing = false;
        }
        p
    }

    /// Marks the oldest request answered (its error was reported; more responses follow).
    pub fn set_front_answered(&mut self) {
        if self.lost.is_empty()
            && let Some(p) = self.queue.front_mut()
        {
            p.answered = true;
        }
    }

    /// Whether any outstanding request is of kind `k`.
    pub fn any_kind(&self, k: K) -> bool {
        self.lost.iter().any(|&(kind, _)| kind == k) || self.queue.iter().any(|p| p.kind == k)
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

    #[test]
    fn past_the_cap_the_oldest_keep_their_kind_not_their_id() {
        let mut q = PendingQueue::new(2);
        let mut s = Count::default();
        for (i, k) in [b'a', b'a', b'b', b'b', b'c'].into_iter().enumerate() {
            q.push(Pending::new(k, i as u32, true), &mut s);
        }
        assert_eq!(s.0, [ParserAnomaly::TooManyTransactions]);
        assert!(!ParserAnomaly::TooManyTransactions.blinds());
        assert_eq!(q.len(), 5);
        let order: Vec<_> = std::iter::from_fn(|| q.pop_front())
            .map(|p| (p.kind, p.id, p.reported))
            .collect();
        assert_eq!(
            order,
            [
                (b'a', 0, false),
                (b'a', 0, false),
                (b'b', 0, false),
                (b'b', 3, true),
                (b'c', 4, true)
            ]
        );
        // Drained: the next overflow is a new episode.
        q.push(Pending::new(b'x', 9, true), &mut s);
        q.push(Pending::new(b'x', 10, true), &mut s);
        q.push(Pending::new(b'x', 11, true), &mut s);
        assert_eq!(s.0.len(), 2);
        assert!(q.any_kind(b'x') && !q.any_kind(b'a'));
    }

    #[test]
    fn alternating_kinds_past_the_runs_give_pairing_up() {
        let mut q = PendingQueue::new(4);
        let mut s = Count::default();
        for i in 0..(4 + MAX_LOST_RUNS + 1) as u32 {
            q.push(Pending::new(i % 2, i, true), &mut s);
        }
        assert!(q.unpaired());
        assert!(q.front().is_none());
        q.push(Pending::new(0, 1, true), &mut s);
        assert!(q.is_empty());
    }
}

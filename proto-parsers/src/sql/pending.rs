//! What PostgreSQL and MySQL keep of a request awaiting the server's answer, in the shared
//! [`crate::pending::PendingQueue`]: its kind (what its response looks like), its id and
//! whether it was reported. Past the cap, the oldest requests lose their id (their responses
//! are no longer reported, with one [`ParserAnomaly::TooManyTransactions`] per episode,
//! which does not blind) but keep their kind, so the responses that follow still land on the
//! right requests. Only if the kinds of the oldest alternate past [`MAX_LOST_RUNS`] runs is
//! pairing given up for the rest of the flow ([`PendingQueue::unpaired`]): responses are
//! then skipped unread.
//!
//! [`ParserAnomaly::TooManyTransactions`]: crate::contract::ParserAnomaly::TooManyTransactions

use std::fmt::Debug;

use crate::pending::{Overflow, Waiting};

pub use crate::pending::MAX_LOST_RUNS;

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

/// A request whose pairing was given up keeps its kind only: no id, not reported.
impl<K: Copy + Eq + Debug> Waiting for Pending<K> {
    type Kind = K;

    fn kind(&self) -> K {
        self.kind
    }

    fn lost(kind: K) -> Self {
        Pending::new(kind, 0, false)
    }
}

/// The outstanding requests of one SQL flow.
pub type PendingQueue<K> = crate::pending::PendingQueue<Pending<K>>;

/// A queue pairing up to `cap` requests with their responses, raising the anomaly once per
/// episode of requests given up.
pub fn queue<K: Copy + Eq + Debug>(cap: usize) -> PendingQueue<K> {
    PendingQueue::new(cap, Overflow::OncePerEpisode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Fact, FactSink, ParserAnomaly};

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
        let mut q = queue(2);
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
        let mut q = queue(4);
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

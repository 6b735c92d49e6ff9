//! `--alert-rate N`: at most N alerts a second per rule go to the sinks (by the wall
//! clock: the limit protects receivers, so a fast replay is limited as a live storm is).
//! The rest are counted per rule and summarised ([`RateLimiter::take_summary`]).
//!
//! Bounded: at most [`MAX_RULES`] rules are tracked; alerts of further rules share one
//! bucket, [`OTHER_RULES`], and are counted in `rules_cut`. Rules idle since the last
//! summary are forgotten at each summary.

use std::collections::HashMap;

/// Rules tracked at once.
pub const MAX_RULES: usize = 4096;
/// The shared bucket of rules past [`MAX_RULES`].
pub const OTHER_RULES: &str = "(other rules)";

#[derive(Clone, Copy, Debug, Default)]
struct Window {
    second: u64,
    sent: u32,
    /// Suppressed since the last summary.
    suppressed: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_sec: u32,
    rules: HashMap<Box<str>, Window>,
    /// Alerts suppressed since start.
    pub suppressed_total: u64,
    /// Alerts counted in the shared bucket because [`MAX_RULES`] rules were tracked.
    pub rules_cut: u64,
    max_rules: usize,
}

impl RateLimiter {
    pub fn new(per_sec: u32) -> Self {
        Self::with_max_rules(per_sec, MAX_RULES)
    }

    fn with_max_rules(per_sec: u32, max_rules: usize) -> Self {
        RateLimiter {
            per_sec: per_sec.max(1),
            rules: HashMap::new(),
            suppressed_total: 0,
            rules_cut: 0,
            max_rules,
        }
    }

    /// Whether an alert of `rule` at wall-clock second `now_sec` may go to the sinks.
    pub fn admit(&mut self, rule: &str, now_sec: u64) -> bool {
        let w = if let Some(w) = self.rules.get_mut(rule) {
            w
        } else if self.rules.len() < self.max_rules {
            self.rules.entry(rule.into()).or_default()
        } else {
            self.rules_cut += 1;
            self.rules.entry(OTHER_RULES.into()).or_default()
        };
        if w.second != now_sec {
            w.second = now_sec;
            w.sent = 0;
        }
        if w.sent < self.per_sec {
            w.sent += 1;
            true
        } else {
            w.suppressed += 1;
            self.suppressed_total += 1;
            false
        }
    }

    /// What was suppressed since the last call, by rule, most first; rules with nothing
    /// sent or suppressed in the current second are forgotten (so the map only holds
    /// rules that alert).
    pub fn take_summary(&mut self, now_sec: u64) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .rules
            .iter_mut()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|(r, w)| (r.to_string(), std::mem::take(&mut w.suppressed)))
            .collect();
        self.rules.retain(|_, w| w.second == now_sec);
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Rules tracked now.
    pub fn tracked(&self) -> usize {
        self.rules.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_per_second_per_rule() {
        let mut r = RateLimiter::new(2);
        let admitted: Vec<bool> = (0..5).map(|_| r.admit("a", 10)).collect();
        assert_eq!(admitted, [true, true, false, false, false]);
        // Another rule has its own allowance.
        assert!(r.admit("b", 10));
        // The next second starts afresh.
        assert!(r.admit("a", 11));
        assert!(r.admit("a", 11));
        assert!(!r.admit("a", 11));
        assert_eq!(r.suppressed_total, 4);
        assert_eq!(r.take_summary(11), vec![("a".to_string(), 4)]);
        // Taken: the next summary starts from zero.
        assert!(r.take_summary(11).is_empty());
        assert_eq!(r.suppressed_total, 4);
    }

    #[test]
    fn a_burst_of_ten_at_one_per_second_sends_one() {
        let mut r = RateLimiter::new(1);
        let sent = (0..10).filter(|_| r.admit("no-delete", 100)).count();
        assert_eq!(sent, 1);
        assert_eq!(r.suppressed_total, 9);
    }

    #[test]
    fn rules_past_the_cap_share_a_bucket_and_are_counted() {
        let mut r = RateLimiter::with_max_rules(1, 2);
        assert!(r.admit("a", 1));
        assert!(r.admit("b", 1));
        assert!(r.admit("c", 1)); // the shared bucket's first
        assert!(!r.admit("d", 1)); // same bucket, same second
        assert_eq!(r.rules_cut, 2);
        assert_eq!(r.tracked(), 3);
        assert_eq!(r.take_summary(1), vec![(OTHER_RULES.to_string(), 1)]);
        // Idle rules are forgotten at a summary.
        r.take_summary(5);
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn zero_is_taken_as_one() {
        let mut r = RateLimiter::new(0);
        assert!(r.admit("a", 0));
        assert!(!r.admit("a", 0));
    }
}

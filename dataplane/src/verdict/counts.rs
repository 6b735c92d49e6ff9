//! Verdict counts for the summary and metrics: decisions by action and rule, and with a
//! comparison policy (`--compare`), the verdicts that differ.

use std::collections::HashMap;

/// A verdict that differs between the comparison (old) policy and the judged (new) one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VerdictChange {
    pub old_action: &'static str,
    pub old_enforced: bool,
    pub old_rule: String,
    pub new_action: &'static str,
    pub new_enforced: bool,
    pub new_rule: String,
}

/// Example flows kept per kind of change.
pub(crate) const CHANGE_EXAMPLES: usize = 5;

#[inline]
pub(crate) fn count(map: &mut VerdictCounts, action: &'static str, rule: &str) {
    map.add(action, rule);
}

/// Decisions counted by action, then rule id. Two levels so a count is two hash lookups
/// with borrowed keys: a `String` is made only the first time an (action, rule) is seen.
#[derive(Clone, Debug, Default)]
pub struct VerdictCounts(HashMap<&'static str, HashMap<String, u64>>);

impl VerdictCounts {
    #[inline]
    pub fn add(&mut self, action: &'static str, rule: &str) {
        let by_rule = self.0.entry(action).or_default();
        match by_rule.get_mut(rule) {
            Some(n) => *n += 1,
            None => {
                by_rule.insert(rule.to_owned(), 1);
            }
        }
    }

    /// ((action, rule), count) for every pair seen.
    pub fn iter(&self) -> impl Iterator<Item = ((&&'static str, &String), &u64)> {
        self.0
            .iter()
            .flat_map(|(a, m)| m.iter().map(move |(r, n)| ((a, r), n)))
    }

    pub fn get(&self, action: &str, rule: &str) -> u64 {
        self.0
            .get(action)
            .and_then(|m| m.get(rule))
            .copied()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(HashMap::is_empty)
    }

    pub fn merge(&mut self, o: &VerdictCounts) {
        for ((a, r), n) in o.iter() {
            *self.0.entry(a).or_default().entry(r.clone()).or_default() += n;
        }
    }
}

//! Verdict counts for the summary and metrics: decisions by action and rule, and with a
//! comparison policy (`--compare`), the verdicts that differ.

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
/// Hashed with foldhash: every flow's end counts here (SipHash was 3% of a SYN flood),
/// and the keys are the policy's own names, not the attacker's.
#[derive(Clone, Debug, Default)]
pub struct VerdictCounts(foldhash::HashMap<&'static str, foldhash::HashMap<String, u64>>);

impl VerdictCounts {
    #[inline]
    pub fn add(&mut self, action: &'static str, rule: &str) {
        self.add_n(action, rule, 1);
    }

    #[inline]
    pub fn add_n(&mut self, action: &'static str, rule: &str, n: u64) {
        let by_rule = self.0.entry(action).or_default();
        match by_rule.get_mut(rule) {
            Some(c) => *c += n,
            None => {
                by_rule.insert(rule.to_owned(), n);
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
        self.0.values().all(|m| m.is_empty())
    }

    pub fn merge(&mut self, o: &VerdictCounts) {
        for ((a, r), n) in o.iter() {
            *self.0.entry(a).or_default().entry(r.clone()).or_default() += n;
        }
    }
}

/// A disagreement between the active policy and a shadow candidate: what each decided.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ShadowPair {
    /// `flow` (the connection's own decision) or `transaction` (a request's).
    pub level: &'static str,
    pub active_action: &'static str,
    pub active_rule: String,
    pub shadow_action: &'static str,
    pub shadow_rule: String,
    /// The candidate's version: a new candidate starts its own counts.
    pub shadow_version: u64,
}

/// Most rule pairs a worker counts; the disagreements of further pairs are counted in
/// [`ShadowCounts::cut`] (a candidate that disagrees everywhere cannot grow the table).
pub const SHADOW_PAIRS_KEPT: usize = 1024;

/// Disagreements counted per rule pair (a short list: a lookup compares borrowed names,
/// so only a pair's first disagreement allocates).
#[derive(Clone, Debug, Default)]
pub struct ShadowCounts {
    pub pairs: Vec<(ShadowPair, u64)>,
    /// Disagreements of pairs past [`SHADOW_PAIRS_KEPT`].
    pub cut: u64,
}

impl ShadowCounts {
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        level: &'static str,
        active_action: &'static str,
        active_rule: &str,
        shadow_action: &'static str,
        shadow_rule: &str,
        shadow_version: u64,
        n: u64,
    ) {
        let found = self.pairs.iter().position(|(p, _)| {
            p.level == level
                && p.shadow_version == shadow_version
                && p.active_action == active_action
                && p.shadow_action == shadow_action
                && p.active_rule == active_rule
                && p.shadow_rule == shadow_rule
        });
        if let Some((_, c)) = found.and_then(|i| self.pairs.get_mut(i)) {
            *c += n;
        } else if self.pairs.len() < SHADOW_PAIRS_KEPT {
            self.pairs.push((
                ShadowPair {
                    level,
                    active_action,
                    active_rule: active_rule.to_owned(),
                    shadow_action,
                    shadow_rule: shadow_rule.to_owned(),
                    shadow_version,
                },
                n,
            ));
        } else {
            self.cut += n;
        }
    }

    /// The counts of candidate version `v` only (an earlier candidate's are not mixed in);
    /// `cut` is kept whole, as it does not say which candidate it was.
    pub fn of_version(&self, v: u64) -> ShadowCounts {
        ShadowCounts {
            pairs: self
                .pairs
                .iter()
                .filter(|(p, _)| p.shadow_version == v)
                .cloned()
                .collect(),
            cut: self.cut,
        }
    }

    pub fn total(&self) -> u64 {
        self.pairs.iter().map(|(_, n)| n).sum::<u64>() + self.cut
    }

    pub fn merge(&mut self, o: &ShadowCounts) {
        for (p, n) in &o.pairs {
            self.add(
                p.level,
                p.active_action,
                &p.active_rule,
                p.shadow_action,
                &p.shadow_rule,
                p.shadow_version,
                *n,
            );
        }
        self.cut += o.cut;
    }
}

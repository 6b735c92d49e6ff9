//! Flow decisions: [`PolicySnapshot::judge_flow`] read from the flow index (and, once
//! detection named the protocol, [`PolicySnapshot::judge_detected_flow`]), the decision
//! when no rule decides (the mode's default) or when the flow cannot be judged
//! (`onUninspectable`), and the scans of a flow's candidate rules that tools use.
//! [`PolicySnapshot::decide`] renders a rule's outcome for the L7 judge as well.

use proto_parsers::AppProto;

use super::{ANY_KEY, Cell, Decision, Endpoint, PolicySnapshot, RuleId, Uninspectable, flow_index};
use crate::rule::{CompiledRule, Transport};
use crate::vocab::{Action, DefaultAction, GroupId, Mode, OnUninspectable, Severity};

impl PolicySnapshot {
    /// The mode for a flow between these endpoints when no rule decides it: the
    /// destination's first group with an override, else the source's, else `spec.mode`.
    pub fn mode_for(&self, src: &Endpoint, dst: &Endpoint) -> Mode {
        self.set_info(dst.set)
            .and_then(|s| s.mode)
            .or_else(|| self.set_info(src.set).and_then(|s| s.mode))
            .unwrap_or(self.mode)
    }

    /// Calls `f` with every rule whose groups, port, transport and application protocol
    /// match the flow, in ascending rule order (a rule may be visited more than once
    /// when the endpoints are in several of its groups). L4 only: L7 matchers are not
    /// evaluated, and deny/alert rules for a specific protocol are skipped while `app`
    /// is `None`.
    pub fn for_each_matching_rule(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
        mut f: impl FnMut(RuleId, &CompiledRule),
    ) {
        let src_set = self.set_slice(src.set);
        let dst_set = self.set_slice(dst.set);
        let any_dst = self.groups.len();
        for d in dst_set.iter().map(|g| usize::from(g.0)).chain([any_dst]) {
            let cells = self.cells_of(d);
            if cells.is_empty() {
                continue;
            }
            for g in src_set {
                if let Ok(i) = cells.binary_search_by_key(&g.0, |c| c.src)
                    && let Some(cell) = cells.get(i)
                {
                    self.visit_cell(cell, dport, transport, app, &mut f);
                }
            }
            if let Some(cell) = cells.last()
                && cell.src == ANY_KEY
            {
                self.visit_cell(cell, dport, transport, app, &mut f);
            }
        }
    }

    fn cells_of(&self, dst_key: usize) -> &[Cell] {
        self.index
            .get(dst_key)
            .and_then(|&(a, b)| self.cells.get(a as usize..b as usize))
            .unwrap_or(&[])
    }

    #[inline]
    fn visit_cell(
        &self,
        cell: &Cell,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
        f: &mut impl FnMut(RuleId, &CompiledRule),
    ) {
        let refs = self
            .rule_refs
            .get(cell.start as usize..cell.end as usize)
            .unwrap_or(&[]);
        for &r in refs {
            if let Some(rule) = self.rules.get(r as usize)
                && rule.matches_l4(dport, transport, app)
            {
                f(RuleId(r), rule);
            }
        }
    }

    /// Judges a flow at L4 (and by application protocol once known). Deny wins over
    /// alert over allow, regardless of rule order; with no rule, the mode decides. Call
    /// again when the application protocol is classified: a tentative admission at the
    /// SYN (`app == None`) may turn into a deny.
    pub fn judge_flow(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
    ) -> Decision {
        // The same outcome as folding `for_each_matching_rule` (the lowest id of deny,
        // else alert, else allow, else allow with L7 matchers) and then `decide`, read
        // from the precompiled cells (see `flow_index`) without touching the rules. A
        // deny/alert rule with L7 matchers judges transactions, not the flow (`deny
        // FLUSHALL` must not cut the whole Redis connection): only its `capture` counts.
        let src_info = self.set_info(src.set);
        let dst_info = self.set_info(dst.set);
        // The key lists, for the index's hashing path (flows between endpoint classes
        // without a precomputed plan).
        let (src_keys, _) = self.cell_keys(src_info);
        let (_, dst_keys) = self.cell_keys(dst_info);
        // An unknown set (an endpoint from another snapshot) has no list: u32::MAX.
        let src_list = src_info.map_or(u32::MAX, |s| s.src_list);
        let dst_list = dst_info.map_or(u32::MAX, |s| s.dst_list);
        let (sum, src_key, dst_key) = self.flow_index.judge(
            (src_keys, src_list),
            (dst_keys, dst_list),
            dport,
            transport,
            app,
        );
        let capture = sum & flow_index::CAPTURE != 0;
        let mode = dst_info
            .and_then(|s| s.mode)
            .or_else(|| src_info.and_then(|s| s.mode))
            .unwrap_or(self.mode);
        let src_first = src_info.and_then(|s| s.first);
        let dst_first = dst_info.and_then(|s| s.first);
        // The first of the endpoint's groups that the rule names; for `"*"` the first.
        let named = |any: bool, key: u16, first: Option<GroupId>| {
            if any || key == ANY_KEY {
                first
            } else {
                Some(GroupId(key))
            }
        };
        match flow_index::winner(sum) {
            Some(w) => {
                let action = match w.rank {
                    flow_index::RANK_DENY => Action::Deny,
                    flow_index::RANK_ALERT => Action::Alert,
                    _ => Action::Allow,
                };
                Decision {
                    action,
                    rule: Some(RuleId(w.rule)),
                    mode,
                    enforce: action == Action::Deny && mode == Mode::Protect,
                    severity: w.severity,
                    capture,
                    l7_constrained: w.rank == flow_index::RANK_ALLOW_L7,
                    src_group: named(w.from_any, src_key, src_first),
                    dst_group: named(w.to_any, dst_key, dst_first),
                    uninspectable: None,
                    quarantine: false,
                }
            }
            None => self.default_decision(mode, capture, src_first, dst_first),
        }
    }

    /// [`PolicySnapshot::judge_flow`] for a flow whose protocol detection gave `app`.
    ///
    /// gRPC is only recognised per call (its `content-type`), so a gRPC connection is
    /// classified `http2`. A policy that allows gRPC methods must still admit the
    /// connection, or no call could ever be judged: an `app: grpc` allow rule admits an
    /// `http2` flow at L4, and each call is then judged by the rule's service and methods
    /// (transactions see their exact app). A `grpc` deny or alert rule acts on calls, never
    /// on the connection; a deny that applies to `http2` itself still wins.
    pub fn judge_detected_flow(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: AppProto,
    ) -> Decision {
        let d = self.judge_flow(src, dst, dport, transport, Some(app));
        if app != AppProto::Http2 || d.rule.is_some() {
            return d;
        }
        // No rule decided the HTTP/2 flow (the mode's default did): a gRPC allow rule
        // admits it.
        let g = self.judge_flow(src, dst, dport, transport, Some(AppProto::Grpc));
        if g.action == Action::Allow && g.rule.is_some() {
            g
        } else {
            d
        }
    }

    /// What `onUninspectable` says for a flow between these endpoints: the destination's
    /// first group that sets it, else the source's, else `spec`, else the default of the
    /// flow's mode.
    pub fn on_uninspectable(&self, src: &Endpoint, dst: &Endpoint) -> OnUninspectable {
        self.set_info(dst.set)
            .and_then(|s| s.on_uninspectable)
            .or_else(|| self.set_info(src.set).and_then(|s| s.on_uninspectable))
            .or(self.on_uninspectable)
            .unwrap_or_else(|| OnUninspectable::default_for(self.mode_for(src, dst)))
    }

    /// The decision for a flow that cannot be judged, for `cause`. Its mode softens it
    /// as any decision's: a deny drops only in `protect`.
    pub fn judge_uninspectable(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        cause: Uninspectable,
    ) -> Decision {
        let mode = self.mode_for(src, dst);
        let (action, severity) = match self.on_uninspectable(src, dst) {
            OnUninspectable::Deny => (Action::Deny, Severity::High),
            OnUninspectable::Alert => (Action::Alert, Severity::Medium),
            OnUninspectable::Allow => (Action::Allow, Severity::Low),
        };
        Decision {
            action,
            rule: None,
            mode,
            enforce: action == Action::Deny && mode == Mode::Protect,
            severity,
            capture: false,
            l7_constrained: false,
            src_group: self.set_slice(src.set).first().copied(),
            dst_group: self.set_slice(dst.set).first().copied(),
            uninspectable: Some(cause),
            quarantine: false,
        }
    }

    /// Whether rules could judge what a flow carries, so that not being able to read it
    /// matters: some rule covering the flow's groups, port and transport has L7 matchers
    /// for its protocol (`app`: the detected one; any while it is still unknown), or,
    /// when no detector recognised the bytes (`app` is `tcp`/`udp`), names an application
    /// protocol at all: a peer could be speaking it in a form detection missed. Off the
    /// packet path: called when a flow becomes uninspectable, once.
    pub fn l7_governed(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        dport: u16,
        transport: Transport,
        app: Option<AppProto>,
    ) -> bool {
        let mut governed = false;
        self.for_each_candidate(src, dst, |rule| {
            if governed || !rule.matches_port(dport, transport) {
                return;
            }
            let t = rule.transport_app();
            if t.transports & transport.bit() == 0 {
                return;
            }
            governed = match app {
                None => rule.has_l7() || rule.app.is_some_and(is_l7_app),
                Some(AppProto::Tcp | AppProto::Udp) => rule.app.is_some_and(is_l7_app),
                Some(a) => rule.has_l7() && t.matches(transport, Some(a)),
            };
        });
        governed
    }

    /// Every rule in the cells of this endpoint pair (each may come more than once).
    fn for_each_candidate(&self, src: &Endpoint, dst: &Endpoint, mut f: impl FnMut(&CompiledRule)) {
        let src_set = self.set_slice(src.set);
        let dst_set = self.set_slice(dst.set);
        let any_dst = self.groups.len();
        let mut visit = |cell: &Cell| {
            let refs = self
                .rule_refs
                .get(cell.start as usize..cell.end as usize)
                .unwrap_or(&[]);
            for &r in refs {
                if let Some(rule) = self.rules.get(r as usize) {
                    f(rule);
                }
            }
        };
        for d in dst_set.iter().map(|g| usize::from(g.0)).chain([any_dst]) {
            let cells = self.cells_of(d);
            for g in src_set {
                if let Ok(i) = cells.binary_search_by_key(&g.0, |c| c.src)
                    && let Some(cell) = cells.get(i)
                {
                    visit(cell);
                }
            }
            if let Some(cell) = cells.last()
                && cell.src == ANY_KEY
            {
                visit(cell);
            }
        }
    }

    /// What the mode decides when no rule does.
    fn default_decision(
        &self,
        mode: Mode,
        capture: bool,
        src_group: Option<GroupId>,
        dst_group: Option<GroupId>,
    ) -> Decision {
        let (action, enforce, severity) = match (mode, self.default_action) {
            (Mode::Protect, DefaultAction::Deny) => (Action::Deny, true, Severity::High),
            (Mode::Protect, DefaultAction::Allow) | (Mode::Learn, _) => {
                (Action::Allow, false, Severity::Low)
            }
            (Mode::Monitor, _) => (Action::Alert, false, Severity::Medium),
        };
        Decision {
            action,
            rule: None,
            mode,
            enforce,
            severity,
            capture,
            l7_constrained: false,
            src_group,
            dst_group,
            uninspectable: None,
            quarantine: false,
        }
    }

    /// The decision of rule `decided` (`u32::MAX`: none, the mode decides), shared by the
    /// flow and the transaction judges so that both render outcomes the same way.
    pub(crate) fn decide(
        &self,
        src: &Endpoint,
        dst: &Endpoint,
        decided: u32,
        l7_constrained: bool,
        capture: bool,
    ) -> Decision {
        let mode = self.mode_for(src, dst);
        let src_set = self.set_slice(src.set);
        let dst_set = self.set_slice(dst.set);
        match self.rules.get(decided as usize) {
            Some(rule) => Decision {
                action: rule.action,
                rule: Some(RuleId(decided)),
                mode,
                enforce: rule.action == Action::Deny && mode == Mode::Protect,
                severity: rule.severity,
                capture,
                l7_constrained,
                src_group: named_group(rule.from.as_deref(), src_set),
                dst_group: named_group(rule.to.as_deref(), dst_set),
                uninspectable: None,
                quarantine: false,
            },
            None => self.default_decision(
                mode,
                capture,
                src_set.first().copied(),
                dst_set.first().copied(),
            ),
        }
    }
}

/// An application protocol that a parser reads (not bare `tcp`/`udp`).
const fn is_l7_app(a: AppProto) -> bool {
    !matches!(a, AppProto::Tcp | AppProto::Udp)
}

/// The first of the endpoint's groups that the rule names; for `"*"`, the endpoint's
/// first group.
fn named_group(named: Option<&[GroupId]>, endpoint: &[GroupId]) -> Option<GroupId> {
    match named {
        None => endpoint.first().copied(),
        Some(named) => endpoint
            .iter()
            .find(|g| named.binary_search(g).is_ok())
            .copied()
            .or_else(|| endpoint.first().copied()),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn snapshot(policy: &str, inventory: &str) -> PolicySnapshot {
        let p = crate::load_policy_str(policy, "p.yaml").unwrap();
        let i = crate::load_inventory_str(inventory, "i.yaml").unwrap();
        crate::compile(&p.policy, &i, 1).unwrap()
    }

    /// The hashing path (no plan) decides exactly as the planned one, with `"*"` cells
    /// both folded into group cells and kept apart (more than `MERGE_LIMIT` rules).
    #[test]
    fn unplanned_flows_decide_as_planned() {
        let mut inv =
            String::from("apiVersion: palisade.dev/v1\nkind: WorkloadInventory\nworkloads:\n");
        for i in 0..12 {
            inv.push_str(&format!(
                "  - {{name: w{i}, namespace: n{}, labels: {{app: a{}, tier: t{}}}, ips: [10.0.0.{}]}}\n",
                i % 2,
                i % 4,
                i % 3,
                i + 1
            ));
        }
        let mut pol = String::from(
            "apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nmetadata: {name: t}\nspec:\n  mode: monitor\n  groups:\n",
        );
        let names = ["a0", "a1", "a2", "a3", "t0", "t1", "t2", "n0", "n1", "out"];
        for n in &names[..4] {
            pol.push_str(&format!("    {n}: {{selector: {{app: {n}}}}}\n"));
        }
        for n in &names[4..7] {
            pol.push_str(&format!(
                "    {n}: {{selector: {{tier: {n}}}, mode: protect}}\n"
            ));
        }
        pol.push_str("    n0: {namespaces: [n0]}\n    n1: {namespaces: [n1]}\n");
        pol.push_str("    out: {cidrs: [0.0.0.0/0]}\n  rules:\n");
        let peers = ["a0", "a1", "t0", "t2", "n1", "out", "*"];
        let actions = ["allow", "deny", "alert", "allow"];
        let apps = [
            "",
            ", app: http",
            ", app: redis",
            ", app: udp",
            ", app: dns",
        ];
        let mut r = 0;
        for (i, from) in peers.iter().enumerate() {
            for (j, to) in peers.iter().enumerate() {
                // Many "*" rules, so that some "*" cells exceed MERGE_LIMIT.
                let copies = if *from == "*" || *to == "*" { 40 } else { 1 };
                for k in 0..copies {
                    let port = 1 + ((i * 7 + j * 3 + k) % 9) as u16 * 100;
                    let ports = match (i + j + k) % 3 {
                        0 => String::new(),
                        1 => format!(", ports: [{port}]"),
                        _ => format!(", ports: [\"{port}-{}\"]", port + 150),
                    };
                    pol.push_str(&format!(
                        "    - {{id: r{r}, from: [\"{from}\"], to: [\"{to}\"]{ports}{}, action: {}{}}}\n",
                        apps[(i + k) % apps.len()],
                        actions[(j + k) % actions.len()],
                        if k % 5 == 0 { ", capture: true" } else { "" },
                    ));
                    r += 1;
                }
            }
        }
        let planned = snapshot(&pol, &inv);
        let mut hashed = snapshot(&pol, &inv);
        hashed.flow_index.forget_plans();
        let addrs: Vec<IpAddr> = (1..=13)
            .map(|i| IpAddr::from([10, 0, 0, i]))
            .chain([IpAddr::from([8, 8, 8, 8]), "2001:db8::1".parse().unwrap()])
            .collect();
        let apps = [
            None,
            Some(AppProto::Http),
            Some(AppProto::Redis),
            Some(AppProto::Dns),
        ];
        let mut by_rule = 0;
        for &a in &addrs {
            for &b in &addrs {
                for port in [1, 100, 150, 250, 401, 800, 9999] {
                    for t in [Transport::Tcp, Transport::Udp, Transport::Icmp] {
                        for app in apps {
                            let (s1, d1) = (planned.resolve(a), planned.resolve(b));
                            let (s2, d2) = (hashed.resolve(a), hashed.resolve(b));
                            let x = planned.judge_flow(&s1, &d1, port, t, app);
                            let y = hashed.judge_flow(&s2, &d2, port, t, app);
                            assert_eq!(x, y, "{a} -> {b}:{port} {t:?} {app:?}");
                            by_rule += usize::from(x.rule.is_some());
                        }
                    }
                }
            }
        }
        assert!(by_rule > 1000, "{by_rule}");
    }
}

//! The per-worker flow table: a slab of entries, a keyed hash index, and one LRU list per
//! timeout class, so expiry looks only at list heads and eviction at the cap takes the
//! flow idle longest, both in O(1). Owned by one worker: no locks.
//!
//! The index holds slot numbers only (a `hashbrown::HashTable<u32>`); each slot keeps its
//! key and the key's hash. A lookup compares keys in the slots its hash points at, and a
//! removal finds the slot's own number without comparing keys: under a SYN flood (a full
//! table, one eviction per packet) the index stays a few hundred KiB.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::FlowKey;

/// Idle-timeout classes. Each has its own timeout and LRU list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutClass {
    /// TCP before the handshake completes.
    New = 0,
    Established = 1,
    /// TCP after FIN both ways or RST: kept briefly for late ACKs and retransmissions.
    Closed = 2,
    /// UDP, ICMP and other datagram flows.
    Datagram = 3,
}
const CLASSES: usize = 4;

#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    pub max_flows: usize,
    /// Idle timeouts in nanoseconds, indexed by [`TimeoutClass`].
    pub timeouts_ns: [u64; CLASSES],
}

impl Default for FlowConfig {
    fn default() -> Self {
        const S: u64 = 1_000_000_000;
        FlowConfig {
            max_flows: 65_536,
            // Close to Suricata's defaults: new 30 s, established 600 s, closed 10 s, UDP 60 s.
            timeouts_ns: [30 * S, 600 * S, 10 * S, 60 * S],
        }
    }
}

/// Why a flow left the table (EVE's `flow.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Timeout,
    /// Pushed out by a new flow while the table was full.
    Evicted,
    /// A new connection reused the tuple of a closed one.
    Reused,
    /// End of the capture or daemon shutdown.
    Shutdown,
}

impl EndReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Evicted => "forced",
            // Suricata's vocabulary has no "reused": a flow a new connection on its tuple
            // ended was ended by force.
            EndReason::Reused => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct FlowCounters {
    pub created: u64,
    pub timed_out: u64,
    pub evicted: u64,
    /// Times a new flow found the table at its cap.
    pub cap_hits: u64,
    /// Of `evicted`, flows still in their handshake (a SYN flood's victims go first).
    pub evicted_embryonic: u64,
    /// Of `evicted`, established flows (only when no closed or embryonic flow was left).
    pub evicted_established: u64,
    pub peak: u64,
}

const NIL: u32 = u32::MAX;

struct Slot<T> {
    key: FlowKey,
    /// `hasher.hash_one(key)`.
    hash: u64,
    last_ns: u64,
    class: TimeoutClass,
    prev: u32,
    next: u32,
    value: Option<T>,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// Index of a live flow in the table, valid until that flow is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle(u32);

pub struct FlowTable<T, S: BuildHasher = foldhash::quality::RandomState> {
    cfg: FlowConfig,
    index: HashTable<u32>,
    hasher: S,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    lists: [List; CLASSES],
    pub counters: FlowCounters,
}

impl<T> FlowTable<T> {
    /// A table whose hash is keyed with a random seed, so an attacker who picks addresses
    /// and ports cannot aim for one bucket.
    pub fn new(cfg: FlowConfig) -> Self {
        Self::with_hasher(cfg, foldhash::quality::RandomState::default())
    }
}

impl<T, S: BuildHasher> FlowTable<T, S> {
    pub fn with_hasher(cfg: FlowConfig, hasher: S) -> Self {
        let cap = cfg.max_flows.min(1 << 16);
        FlowTable {
            cfg,
            index: HashTable::with_capacity(cap),
            hasher,
            slots: Vec::with_capacity(cap),
            free: Vec::new(),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; CLASSES],
            counters: FlowCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every live flow with its last-seen time, in no particular order (for listings off
    /// the packet path).
    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, u64, &T)> {
        self.slots
            .iter()
            .filter_map(|s| s.value.as_ref().map(|v| (&s.key, s.last_ns, v)))
    }

    /// The handles of every live flow (off the packet path: a quarantine walks them).
    pub fn live_handles(&self) -> Vec<Handle> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .filter_map(|(i, _)| u32::try_from(i).ok().map(Handle))
            .collect()
    }

    pub fn get(&self, key: &FlowKey) -> Option<Handle> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                slots.get(i as usize).is_some_and(|s| s.key == *key)
            })
            .map(|&i| Handle(i))
    }

    pub fn value_mut(&mut self, h: Handle) -> Option<&mut T> {
        self.slots.get_mut(h.0 as usize)?.value.as_mut()
    }

    pub fn value(&self, h: Handle) -> Option<&T> {
        self.slots.get(h.0 as usize)?.value.as_ref()
    }

    /// Inserts a new flow. At the cap, the flow idle longest is evicted first and handed to
    /// `ended`. Returns `None` only if `max_flows` is 0.
    pub fn insert(
        &mut self,
        key: FlowKey,
        now_ns: u64,
        class: TimeoutClass,
        value: T,
        ended: &mut dyn FnMut(FlowKey, T, EndReason),
    ) -> Option<Handle> {
        if self.cfg.max_flows == 0 {
            return None;
        }
        if self.index.len() >= self.cfg.max_flows {
            self.counters.cap_hits += 1;
            if let Some((victim, class)) = self.victim() {
                self.counters.evicted += 1;
                match class {
                    TimeoutClass::New => self.counters.evicted_embryonic += 1,
                    TimeoutClass::Established => self.counters.evicted_established += 1,
                    _ => {}
                }
                if let Some((k, v)) = self.remove(victim) {
                    ended(k, v, EndReason::Evicted);
                }
            }
        }
        let hash = self.hasher.hash_one(key);
        let slot = Slot {
            key,
            hash,
            last_ns: now_ns,
            class,
            prev: NIL,
            next: NIL,
            value: Some(value),
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| slots.get(j as usize).map_or(0, |s| s.hash));
        self.link_tail(i, class);
        self.counters.created += 1;
        self.counters.peak = self.counters.peak.max(self.index.len() as u64);
        Some(Handle(i))
    }

    /// Records activity: the flow moves to the tail of its (possibly new) class list.
    pub fn touch(&mut self, h: Handle, now_ns: u64, class: TimeoutClass) {
        self.unlink(h.0);
        if let Some(s) = self.slots.get_mut(h.0 as usize) {
            // Captures can step back in time a little; never move a flow's clock backwards.
            s.last_ns = s.last_ns.max(now_ns);
            s.class = class;
        }
        self.link_tail(h.0, class);
    }

    pub fn remove(&mut self, h: Handle) -> Option<(FlowKey, T)> {
        let (key, hash) = self.slots.get(h.0 as usize).map(|s| (s.key, s.hash))?;
        self.unlink(h.0);
        let s = self.slots.get_mut(h.0 as usize)?;
        let v = s.value.take()?;
        if let Ok(e) = self.index.find_entry(hash, |&i| i == h.0) {
            e.remove();
        }
        self.free.push(h.0);
        Some((key, v))
    }

    /// Ends every flow idle for longer than its class's timeout at `now_ns`.
    pub fn expire(&mut self, now_ns: u64, ended: &mut dyn FnMut(FlowKey, T, EndReason)) {
        for c in 0..CLASSES {
            let timeout = self.cfg.timeouts_ns.get(c).copied().unwrap_or(u64::MAX);
            loop {
                let head = self.lists.get(c).map_or(NIL, |l| l.head);
                let Some(s) = self.slots.get(head as usize) else {
                    break;
                };
                if s.last_ns.saturating_add(timeout) > now_ns {
                    break;
                }
                if let Some((k, v)) = self.remove(Handle(head)) {
                    self.counters.timed_out += 1;
                    ended(k, v, EndReason::Timeout);
                }
            }
        }
    }

    /// Ends every flow (end of capture, shutdown).
    pub fn drain(&mut self, ended: &mut dyn FnMut(FlowKey, T, EndReason)) {
        while let Some(h) = self.oldest() {
            if let Some((k, v)) = self.remove(h) {
                ended(k, v, EndReason::Shutdown);
            }
        }
    }

    /// Removes and returns the flow idle longest (ending flows one at a time, so their
    /// buffers are freed as they go rather than all held until the last is handled).
    pub fn pop_oldest(&mut self) -> Option<(FlowKey, T)> {
        let h = self.oldest()?;
        self.remove(h)
    }

    /// The flow idle longest, across classes.
    /// The flow a full table gives up for a new one: the oldest closed flow (it is over),
    /// else the oldest still in its handshake (under a SYN flood, the flood's own), else
    /// the one idle longest. Established connections go only when nothing else is left.
    fn victim(&self) -> Option<(Handle, TimeoutClass)> {
        for class in [TimeoutClass::Closed, TimeoutClass::New] {
            if let Some(l) = self.lists.get(class as usize)
                && l.head != NIL
            {
                return Some((Handle(l.head), class));
            }
        }
        let h = self.oldest()?;
        let class = self.slots.get(h.0 as usize).map(|s| s.class)?;
        Some((h, class))
    }

    fn oldest(&self) -> Option<Handle> {
        self.lists
            .iter()
            .filter_map(|l| self.slots.get(l.head as usize).map(|s| (s.last_ns, l.head)))
            .min()
            .map(|(_, i)| Handle(i))
    }

    fn link_tail(&mut self, i: u32, class: TimeoutClass) {
        let c = class as usize;
        let Some(list) = self.lists.get(c).copied() else {
            return;
        };
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.prev = list.tail;
            s.next = NIL;
        }
        match self.slots.get_mut(list.tail as usize) {
            Some(t) => t.next = i,
            None => {
                if let Some(l) = self.lists.get_mut(c) {
                    l.head = i;
                }
            }
        }
        if let Some(l) = self.lists.get_mut(c) {
            l.tail = i;
        }
    }

    fn unlink(&mut self, i: u32) {
        let Some(s) = self.slots.get(i as usize) else {
            return;
        };
        let (prev, next, c) = (s.prev, s.next, s.class as usize);
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(l) = self.lists.get_mut(c)
                    && l.head == i
                {
                    l.head = next;
                }
            }
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => {
                if let Some(l) = self.lists.get_mut(c)
                    && l.tail == i
                {
                    l.tail = prev;
                }
            }
        }
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.prev = NIL;
            s.next = NIL;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(port: u16) -> FlowKey {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        FlowKey::new(a, port, b, 80, 6).0
    }

    #[test]
    fn cap_evicts_embryonic_flows_first_then_the_flow_idle_longest() {
        let cfg = FlowConfig {
            max_flows: 3,
            ..Default::default()
        };
        let mut t: FlowTable<u16> = FlowTable::new(cfg);
        let mut ended = Vec::new();
        let h1 = t
            .insert(key(1), 10, TimeoutClass::New, 1, &mut |_, v, r| {
                ended.push((v, r))
            })
            .unwrap();
        t.insert(key(2), 20, TimeoutClass::Established, 2, &mut |_, v, r| {
            ended.push((v, r))
        });
        t.insert(key(3), 30, TimeoutClass::New, 3, &mut |_, v, r| {
            ended.push((v, r))
        });
        t.touch(h1, 40, TimeoutClass::Established);
        t.insert(key(4), 50, TimeoutClass::New, 4, &mut |_, v, r| {
            ended.push((v, r))
        });
        // A flow still in its handshake goes before an established one idle longer.
        assert_eq!(ended, vec![(3, EndReason::Evicted)]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.counters.cap_hits, 1);
        assert_eq!(t.counters.evicted_embryonic, 1);
        assert!(t.get(&key(3)).is_none());
        // With none left in a handshake, the flow idle longest goes (2, at 20).
        t.touch(h1, 60, TimeoutClass::Established);
        if let Some(h4) = t.get(&key(4)) {
            t.touch(h4, 70, TimeoutClass::Established);
        }
        t.insert(key(5), 80, TimeoutClass::Established, 5, &mut |_, v, r| {
            ended.push((v, r))
        });
        assert_eq!(ended.last(), Some(&(2, EndReason::Evicted)));
        assert_eq!(t.counters.evicted_established, 1);
    }

    #[test]
    fn expiry_uses_per_class_timeouts() {
        let cfg = FlowConfig {
            max_flows: 10,
            timeouts_ns: [100, 1000, 10, 50],
        };
        let mut t: FlowTable<u16> = FlowTable::new(cfg);
        let mut ended = Vec::new();
        let mut e = |_: FlowKey, v: u16, r: EndReason| ended.push((v, r));
        t.insert(key(1), 0, TimeoutClass::New, 1, &mut e);
        t.insert(key(2), 0, TimeoutClass::Established, 2, &mut e);
        t.insert(key(3), 0, TimeoutClass::Closed, 3, &mut e);
        t.expire(50, &mut e);
        t.expire(150, &mut e);
        t.expire(1000, &mut e);
        assert_eq!(
            ended,
            vec![
                (3, EndReason::Timeout),
                (1, EndReason::Timeout),
                (2, EndReason::Timeout)
            ]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn slots_are_reused_and_lists_stay_consistent() {
        let cfg = FlowConfig {
            max_flows: 1000,
            ..Default::default()
        };
        let mut t: FlowTable<u32> = FlowTable::new(cfg);
        let mut n = 0;
        for round in 0..20u64 {
            for p in 0..100u16 {
                let k = key(p);
                match t.get(&k) {
                    Some(h) => {
                        if (p as u64 + round).is_multiple_of(3) {
                            t.remove(h);
                        } else {
                            t.touch(h, round, TimeoutClass::Established);
                        }
                    }
                    None => {
                        t.insert(k, round, TimeoutClass::New, u32::from(p), &mut |_, _, _| {
                            n += 1
                        });
                    }
                }
            }
        }
        let mut drained = 0;
        t.drain(&mut |_, _, _| drained += 1);
        assert_eq!(n, 0);
        assert!(drained > 0);
        assert!(t.is_empty());
        assert!(t.slots.len() <= 100);
    }
}

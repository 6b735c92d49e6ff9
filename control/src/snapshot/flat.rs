//! Two read-only lookup structures of the snapshot: a flat open-addressing hash map and,
//! built on it, a longest-prefix match over addresses that probes one hash table per
//! distinct prefix length.
//!
//! Both are built once per policy version and never change, so they keep no tombstones,
//! never grow, and are searched with plain linear probing at a load factor of at most
//! three quarters. Slots are small (a key and a value, an empty slot marked by a reserved
//! value), so that a lookup usually reads one cache line. The hash is keyed with a random
//! per-snapshot seed: a policy author cannot line up probe chains by choosing addresses,
//! and query addresses only pick a slot, they never change the table.

use std::hash::BuildHasher;

use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use super::{Endpoint, WorkloadId};

/// A key of [`FlatMap`].
pub(super) trait FlatKey: Copy + Eq + Default {
    /// 64 well-mixed bits; the map uses the high ones.
    fn hash(self, seed: u64) -> u64;
}

/// A value of [`FlatMap`], with one value reserved to mark empty slots.
pub(super) trait FlatValue: Copy {
    const EMPTY: Self;
    fn is_empty(&self) -> bool;
}

/// Fibonacci hashing: one multiplication, whose high bits depend on every key bit.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl FlatKey for u32 {
    #[inline]
    fn hash(self, seed: u64) -> u64 {
        (u64::from(self) ^ seed).wrapping_mul(GOLDEN)
    }
}

impl FlatKey for u128 {
    #[inline]
    fn hash(self, seed: u64) -> u64 {
        // Truncations intended: the two halves of the address.
        let hi = ((self >> 64) as u64 ^ seed).wrapping_mul(GOLDEN);
        (hi.rotate_left(29) ^ self as u64).wrapping_mul(GOLDEN)
    }
}

impl FlatValue for u32 {
    const EMPTY: u32 = u32::MAX;
    #[inline]
    fn is_empty(&self) -> bool {
        *self == u32::MAX
    }
}

/// A fresh random seed (the standard library's per-process random keys).
pub(super) fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// An immutable hash map with inline slots; lookups are one hash and, at a load factor
/// of at most 3/4, a few adjacent slots (usually in one cache line).
#[derive(Debug)]
pub(super) struct FlatMap<K, V> {
    slots: Box<[(K, V)]>,
    mask: usize,
    /// `64 - log2(slots)`: the hash's high bits pick the first slot.
    shift: u32,
    seed: u64,
}

impl<K: FlatKey, V: FlatValue> FlatMap<K, V> {
    /// Later duplicates of a key replace earlier ones; items whose value is the reserved
    /// empty value are left out.
    pub(super) fn build(items: &[(K, V)], seed: u64) -> Self {
        let n = items.len();
        let cap = n.saturating_add(n / 3 + 1).max(2).next_power_of_two();
        let mut map = FlatMap {
            slots: vec![(K::default(), V::EMPTY); cap].into_boxed_slice(),
            mask: cap - 1,
            shift: 64 - cap.trailing_zeros(),
            seed,
        };
        for &(k, v) in items.iter().filter(|(_, v)| !v.is_empty()) {
            map.insert(k, v);
        }
        map
    }

    fn insert(&mut self, k: K, v: V) {
        let mut i = self.first_slot(k);
        for _ in 0..=self.mask {
            let Some(slot) = self.slots.get_mut(i) else {
                return;
            };
            if slot.1.is_empty() || slot.0 == k {
                *slot = (k, v);
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    fn first_slot(&self, k: K) -> usize {
        // Truncation intended: at most 63 bits remain, and the mask keeps them in range.
        (k.hash(self.seed) >> self.shift) as usize & self.mask
    }

    #[inline]
    pub(super) fn get(&self, k: K) -> Option<V> {
        let mut i = self.first_slot(k);
        // Bounded by the table size; a build at load 3/4 always leaves an empty slot.
        for _ in 0..self.slots.len() {
            let &(key, v) = self.slots.get(i)?;
            if v.is_empty() {
                return None;
            }
            if key == k {
                return Some(v);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.iter().filter(|s| !s.1.is_empty()).count()
    }
}

/// An [`Endpoint`] in 8 bytes: workload id (`u32::MAX` = none) and set; a set of
/// `u32::MAX` marks an empty slot (the build never hands out that set id).
#[derive(Clone, Copy, Debug)]
pub(super) struct PackedEndpoint {
    workload: u32,
    set: u32,
}

impl PackedEndpoint {
    fn pack(e: &Endpoint) -> Self {
        PackedEndpoint {
            workload: e.workload.map_or(u32::MAX, |w| w.0),
            set: e.set,
        }
    }

    #[inline]
    fn unpack(self) -> Endpoint {
        Endpoint {
            workload: (self.workload != u32::MAX).then_some(WorkloadId(self.workload)),
            set: self.set,
        }
    }
}

impl FlatValue for PackedEndpoint {
    const EMPTY: Self = PackedEndpoint {
        workload: u32::MAX,
        set: u32::MAX,
    };
    #[inline]
    fn is_empty(&self) -> bool {
        self.set == u32::MAX
    }
}

/// Beyond this many distinct prefix lengths in one family, probing every length costs
/// more than walking the trie, and lookups fall back to it.
const MAX_PROBED_LENGTHS: usize = 12;

/// Longest-prefix match by hashing: one table per distinct prefix length, longest first.
/// Workload addresses are host prefixes, so a flow's endpoints usually resolve on the
/// first probe.
#[derive(Debug)]
pub(super) struct AddrTable {
    /// Longest first.
    v4: Box<[(u8, FlatMap<u32, PackedEndpoint>)]>,
    v6: Box<[(u8, FlatMap<u128, PackedEndpoint>)]>,
}

#[inline]
fn mask4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

#[inline]
fn mask6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// One table per prefix length, longest first.
fn by_length<K: FlatKey>(
    mut items: Vec<(u8, K, PackedEndpoint)>,
    seed: u64,
) -> Box<[(u8, FlatMap<K, PackedEndpoint>)]> {
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    let mut out = Vec::new();
    let mut rest = items.as_slice();
    while let Some(&(len, _, _)) = rest.first() {
        let n = rest.iter().take_while(|i| i.0 == len).count();
        let (same, tail) = rest.split_at(n);
        let kv: Vec<(K, PackedEndpoint)> = same.iter().map(|&(_, k, e)| (k, e)).collect();
        out.push((len, FlatMap::build(&kv, seed ^ u64::from(len))));
        rest = tail;
    }
    out.into_boxed_slice()
}

impl AddrTable {
    /// Mirrors the tries exactly (same prefixes, same endpoints). Endpoints whose set is
    /// `u32::MAX` cannot be stored: the caller never makes them.
    pub(super) fn build(
        v4: &PrefixMap<Ipv4Net, Endpoint>,
        v6: &PrefixMap<Ipv6Net, Endpoint>,
        seed: u64,
    ) -> Self {
        let items4 = v4
            .iter()
            .map(|(n, e)| {
                (
                    n.prefix_len(),
                    u32::from(n.network()),
                    PackedEndpoint::pack(e),
                )
            })
            .collect();
        let items6 = v6
            .iter()
            .map(|(n, e)| {
                (
                    n.prefix_len(),
                    u128::from(n.network()),
                    PackedEndpoint::pack(e),
                )
            })
            .collect();
        AddrTable {
            v4: by_length(items4, seed),
            v6: by_length(items6, seed.rotate_left(17)),
        }
    }

    /// `None` = not answered here (too many prefix lengths): ask the trie.
    #[inline]
    pub(super) fn lookup4(&self, addr: u32) -> Option<Option<Endpoint>> {
        if self.v4.len() > MAX_PROBED_LENGTHS {
            return None;
        }
        Some(
            self.v4
                .iter()
                .find_map(|(len, t)| t.get(addr & mask4(*len)))
                .map(PackedEndpoint::unpack),
        )
    }

    /// As [`AddrTable::lookup4`].
    #[inline]
    pub(super) fn lookup6(&self, addr: u128) -> Option<Option<Endpoint>> {
        if self.v6.len() > MAX_PROBED_LENGTHS {
            return None;
        }
        Some(
            self.v6
                .iter()
                .find_map(|(len, t)| t.get(addr & mask6(*len)))
                .map(PackedEndpoint::unpack),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_map_finds_what_it_holds_and_nothing_else() {
        let items: Vec<(u32, u32)> = (0..1000u32).map(|i| (i * 7919, i)).collect();
        let m = FlatMap::build(&items, 12345);
        for &(k, v) in &items {
            assert_eq!(m.get(k), Some(v));
        }
        assert_eq!(m.get(3), None);
        assert_eq!(m.len(), 1000);
        let empty: FlatMap<u32, u32> = FlatMap::build(&[], 1);
        assert_eq!(empty.get(0), None);
        // The reserved value is never stored.
        let m = FlatMap::build(&[(1u32, u32::MAX), (2, 5)], 7);
        assert_eq!((m.get(1), m.get(2)), (None, Some(5)));
    }

    #[test]
    fn masks() {
        assert_eq!(mask4(0), 0);
        assert_eq!(mask4(8), 0xff00_0000);
        assert_eq!(mask4(32), u32::MAX);
        assert_eq!(mask6(0), 0);
        assert_eq!(mask6(128), u128::MAX);
        assert_eq!(mask6(1), 1 << 127);
    }
}

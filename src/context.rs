//! The causal context of an object: every event (dot) it has seen, stored as
//! sorted, disjoint ranges of sequence numbers per replica.
//!
//! Usually each replica's events form one range `1..=n` (then the context is a
//! version vector). Gaps appear only when a delta arrives before an earlier
//! one; they close as the missing events arrive. Ranges keep removals cheap:
//! an observed-remove needs no tombstone per removed element, only the fact
//! that its dot was seen.

use std::collections::BTreeMap;

use crate::clock::{Dot, MAX_SEQ, ReplicaId, VersionVector};
use crate::error::OpError;

/// Sorted, disjoint, non-adjacent inclusive ranges of sequence numbers (all >= 1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// Builds from ranges that must already be sorted, disjoint and
    /// non-adjacent, with `1 <= lo <= hi`; returns `None` otherwise.
    pub fn from_sorted(ranges: Vec<(u64, u64)>) -> Option<Self> {
        let mut prev_hi: Option<u64> = None;
        for &(lo, hi) in &ranges {
            if lo == 0 || lo > hi {
                return None;
            }
            if let Some(p) = prev_hi
                && lo <= p.saturating_add(1)
            {
                return None;
            }
            prev_hi = Some(hi);
        }
        Some(Ranges(ranges))
    }

    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, seq: u64) -> bool {
        // Index of the first range whose end is >= seq.
        let i = self.0.partition_point(|&(_, hi)| hi < seq);
        i < self.0.len() && self.0[i].0 <= seq
    }

    /// The end of the range that starts at 1, or 0.
    pub fn prefix_end(&self) -> u64 {
        match self.0.first() {
            Some(&(1, hi)) => hi,
            _ => 0,
        }
    }

    pub fn max(&self) -> u64 {
        self.0.last().map_or(0, |&(_, hi)| hi)
    }

    pub fn insert(&mut self, lo: u64, hi: u64) {
        debug_assert!(lo >= 1 && lo <= hi);
        // The common case: the next events of a replica extend its last range.
        if let Some(last) = self.0.last_mut()
            && last.0 <= lo
            && lo <= last.1.saturating_add(1)
        {
            last.1 = last.1.max(hi);
            return;
        }
        // Ranges that touch or overlap [lo, hi] are merged with it.
        let start = self.0.partition_point(|&(_, h)| h.saturating_add(1) < lo);
        let end = self.0.partition_point(|&(l, _)| l <= hi.saturating_add(1));
        let (mut nlo, mut nhi) = (lo, hi);
        if start < end {
            nlo = nlo.min(self.0[start].0);
            nhi = nhi.max(self.0[end - 1].1);
        }
        self.0.splice(start..end, [(nlo, nhi)]);
    }

    pub fn union(&mut self, other: &Ranges) {
        for &(lo, hi) in &other.0 {
            self.insert(lo, hi);
        }
    }

    /// Removes `[lo, hi]`.
    pub fn remove(&mut self, lo: u64, hi: u64) {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b < lo || a > hi {
                out.push((a, b));
                continue;
            }
            if a < lo {
                out.push((a, lo - 1));
            }
            if b > hi {
                out.push((hi + 1, b));
            }
        }
        self.0 = out;
    }

    /// The sequence numbers in `self` within `lo..=hi`.
    pub fn clip(&self, lo: u64, hi: u64) -> Ranges {
        Ranges(
            self.0
                .iter()
                .filter(|&&(a, b)| b >= lo && a <= hi)
                .map(|&(a, b)| (a.max(lo), b.min(hi)))
                .collect(),
        )
    }

    /// The sequence numbers in `self` and not in `other`, by one linear walk.
    pub fn difference(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::with_capacity(self.0.len());
        let mut j = 0;
        for &(lo, hi) in &self.0 {
            let mut lo = lo;
            while j < other.0.len() && other.0[j].1 < lo {
                j += 1;
            }
            let mut k = j;
            while k < other.0.len() && other.0[k].0 <= hi {
                let (olo, ohi) = other.0[k];
                if olo > lo {
                    out.push((lo, olo - 1));
                }
                if ohi >= hi {
                    lo = hi + 1;
                    break;
                }
                lo = ohi + 1;
                k += 1;
            }
            if lo <= hi {
                out.push((lo, hi));
            }
        }
        Ranges(out)
    }

    /// Number of sequence numbers covered.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(lo, hi)| hi - lo + 1).sum()
    }
}

/// Every dot an object has seen, per replica.
///
/// ```
/// use crdt::{CausalContext, Dot, ReplicaId};
/// let a = ReplicaId::new("a").unwrap();
/// let mut cc = CausalContext::new();
/// cc.add(&Dot::new(a.clone(), 1));
/// cc.add(&Dot::new(a.clone(), 3)); // arrived before 2
/// assert_eq!(cc.version().get(&a), 1);
/// cc.add(&Dot::new(a.clone(), 2));
/// assert_eq!(cc.version().get(&a), 3);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CausalContext(BTreeMap<ReplicaId, Ranges>);

impl CausalContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_map(map: BTreeMap<ReplicaId, Ranges>) -> Self {
        let mut cc = CausalContext(map);
        cc.0.retain(|_, r| !r.is_empty());
        cc
    }

    /// The context holding exactly these dots.
    pub fn from_dots<'a>(dots: impl Iterator<Item = &'a Dot>) -> Self {
        let mut seqs: BTreeMap<ReplicaId, Vec<u64>> = BTreeMap::new();
        for d in dots {
            seqs.entry(d.replica.clone()).or_default().push(d.seq);
        }
        let mut map = BTreeMap::new();
        for (r, mut list) in seqs {
            list.sort_unstable();
            list.dedup();
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            for s in list {
                match ranges.last_mut() {
                    Some(last) if last.1 + 1 == s => last.1 = s,
                    _ => ranges.push((s, s)),
                }
            }
            map.insert(r, Ranges(ranges));
        }
        CausalContext(map)
    }

    /// True when a dot of `other` is seen here too (work: `other`'s ranges
    /// times a binary search).
    pub fn intersects(&self, other: &CausalContext) -> bool {
        other.0.iter().any(|(r, theirs)| {
            self.0.get(r).is_some_and(|mine| {
                theirs.0.iter().any(|&(lo, hi)| {
                    let i = mine.0.partition_point(|&(_, h)| h < lo);
                    i < mine.0.len() && mine.0[i].0 <= hi
                })
            })
        })
    }

    /// The dots here from `start` (inclusive; `None`: the first) to `end`
    /// (exclusive; `None`: past the last), in `(replica, seq)` order: the
    /// context of one part of a state split for messages under a size limit.
    pub fn between(&self, start: Option<&Dot>, end: Option<&Dot>) -> CausalContext {
        let mut cc = CausalContext::new();
        for (r, _) in self.iter() {
            if start.is_some_and(|s| r < &s.replica) || end.is_some_and(|e| r > &e.replica) {
                continue;
            }
            let lo = start.filter(|s| &s.replica == r).map_or(1, |s| s.seq);
            let hi = end
                .filter(|e| &e.replica == r)
                .map_or(u64::MAX, |e| e.seq - 1);
            if lo <= hi {
                cc.add_ranges(r, &self.clip(r, lo, hi));
            }
        }
        cc
    }

    /// The dots of `replica` within `lo..=hi` seen here.
    pub fn clip(&self, replica: &ReplicaId, lo: u64, hi: u64) -> Ranges {
        self.0
            .get(replica)
            .map_or_else(Ranges::default, |r| r.clip(lo, hi))
    }

    /// Adds these dots of `replica`.
    pub fn add_ranges(&mut self, replica: &ReplicaId, ranges: &Ranges) {
        if !ranges.is_empty() {
            self.0.entry(replica.clone()).or_default().union(ranges);
        }
    }

    /// The dots in `self` and not in `other`.
    pub fn subtract(&self, other: &CausalContext) -> CausalContext {
        let mut out = BTreeMap::new();
        for (r, ranges) in &self.0 {
            let left = match other.0.get(r) {
                Some(o) => ranges.difference(o),
                None => ranges.clone(),
            };
            if !left.is_empty() {
                out.insert(r.clone(), left);
            }
        }
        CausalContext(out)
    }

    /// True when every dot `lo..=hi` of `replica` is here.
    pub fn contains_range(&self, replica: &ReplicaId, lo: u64, hi: u64) -> bool {
        self.0.get(replica).is_some_and(|r| {
            let i = r.0.partition_point(|&(_, h)| h < lo);
            i < r.0.len() && r.0[i].0 <= lo && r.0[i].1 >= hi
        })
    }

    pub fn contains(&self, dot: &Dot) -> bool {
        self.0
            .get(&dot.replica)
            .is_some_and(|r| r.contains(dot.seq))
    }

    pub fn add(&mut self, dot: &Dot) {
        self.0
            .entry(dot.replica.clone())
            .or_default()
            .insert(dot.seq, dot.seq);
    }

    /// Adds the dots `lo..=hi` of `replica`.
    pub fn add_range(&mut self, replica: &ReplicaId, lo: u64, hi: u64) {
        match self.0.get_mut(replica) {
            Some(r) => r.insert(lo, hi),
            None => {
                self.0.insert(replica.clone(), Ranges(vec![(lo, hi)]));
            }
        }
    }

    pub fn remove(&mut self, dot: &Dot) {
        if let Some(r) = self.0.get_mut(&dot.replica) {
            r.remove(dot.seq, dot.seq);
            if r.is_empty() {
                self.0.remove(&dot.replica);
            }
        }
    }

    pub fn union(&mut self, other: &CausalContext) {
        for (rep, ranges) in &other.0 {
            self.0.entry(rep.clone()).or_default().union(ranges);
        }
    }

    /// The next unused dot of `replica`. Never reuses a seq, even across gaps.
    pub fn next_dot(&self, replica: &ReplicaId) -> Dot {
        let max = self.0.get(replica).map_or(0, Ranges::max);
        Dot::new(replica.clone(), max + 1)
    }

    /// The next `n` unused seqs of `replica` (the first is returned), or an
    /// error when they would go past [`MAX_SEQ`]: a state must stay loadable.
    pub fn fresh(&self, replica: &ReplicaId, n: u64) -> Result<u64, OpError> {
        let max = self.0.get(replica).map_or(0, Ranges::max);
        match max.checked_add(n) {
            Some(end) if end <= MAX_SEQ => Ok(max + 1),
            _ => Err(OpError::Exhausted {
                replica: replica.to_string(),
            }),
        }
    }

    /// The greatest seq of `replica` seen here (0: none).
    pub fn max_seq(&self, replica: &ReplicaId) -> u64 {
        self.0.get(replica).map_or(0, Ranges::max)
    }

    /// The contiguous prefix of one replica's events seen here (its entry
    /// in [`CausalContext::version`], without building the vector).
    pub fn prefix(&self, replica: &ReplicaId) -> u64 {
        self.0.get(replica).map_or(0, Ranges::prefix_end)
    }

    /// The contiguous prefix per replica: what this object has seen for sure.
    pub fn version(&self) -> VersionVector {
        self.0
            .iter()
            .map(|(r, ranges)| (r.clone(), ranges.prefix_end()))
            .collect()
    }

    /// The dots seen here beyond `vv`.
    pub fn minus(&self, vv: &VersionVector) -> CausalContext {
        let mut out = self.clone();
        for (r, s) in vv.iter() {
            if let Some(ranges) = out.0.get_mut(r) {
                ranges.remove(1, s);
            }
        }
        out.0.retain(|_, r| !r.is_empty());
        out
    }

    /// True when every dot seen here is within `vv`.
    pub fn covered_by(&self, vv: &VersionVector) -> bool {
        self.0.iter().all(|(r, ranges)| ranges.max() <= vv.get(r))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ReplicaId, &Ranges)> {
        self.0.iter()
    }

    /// Number of events seen.
    pub fn count(&self) -> u64 {
        self.0.values().map(Ranges::count).sum()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn ranges_behave_like_a_set(ops in prop::collection::vec((any::<bool>(), 1u64..40, 0u64..5), 0..60)) {
            let mut ranges = Ranges::default();
            let mut model = BTreeSet::new();
            for (add, lo, len) in ops {
                let hi = lo + len;
                if add { ranges.insert(lo, hi); model.extend(lo..=hi); }
                else { ranges.remove(lo, hi); for s in lo..=hi { model.remove(&s); } }
                prop_assert!(Ranges::from_sorted(ranges.as_slice().to_vec()).is_some(), "not canonical: {:?}", ranges);
            }
            for s in 0..50 {
                prop_assert_eq!(ranges.contains(s), model.contains(&s));
            }
            prop_assert_eq!(ranges.count(), model.len() as u64);
        }

        #[test]
        fn intersects_matches_the_sets(a in prop::collection::btree_set(1u64..60, 0..30), b in prop::collection::btree_set(1u64..60, 0..30)) {
            let r = ReplicaId::new("r").unwrap();
            let of = |set: &std::collections::BTreeSet<u64>| {
                let mut cc = CausalContext::new();
                for s in set {
                    cc.add(&Dot::new(r.clone(), *s));
                }
                cc
            };
            prop_assert_eq!(of(&a).intersects(&of(&b)), a.intersection(&b).next().is_some());
        }

        #[test]
        fn difference_matches_the_set_difference(a in prop::collection::btree_set(1u64..60, 0..40), b in prop::collection::btree_set(1u64..60, 0..40)) {
            let build = |set: &BTreeSet<u64>| {
                let mut r = Ranges::default();
                for &s in set { r.insert(s, s); }
                r
            };
            let diff = build(&a).difference(&build(&b));
            prop_assert!(Ranges::from_sorted(diff.as_slice().to_vec()).is_some() || diff.is_empty());
            let expected: BTreeSet<u64> = a.difference(&b).copied().collect();
            prop_assert_eq!(diff, build(&expected));
        }
    }

    #[test]
    fn from_sorted_rejects_overlap_adjacency_and_zero() {
        assert!(Ranges::from_sorted(vec![(1, 3), (5, 6)]).is_some());
        assert!(Ranges::from_sorted(vec![(1, 3), (4, 6)]).is_none());
        assert!(Ranges::from_sorted(vec![(0, 3)]).is_none());
        assert!(Ranges::from_sorted(vec![(3, 2)]).is_none());
    }
}

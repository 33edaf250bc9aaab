//! The engine of both counters: one entry per replica, ordered so that a
//! later entry of a replica is greater, merged by pointwise maximum. The
//! g-counter's entry holds a sum, the pn-counter's two; everything else
//! (merge, version, delta, parts) is this one code.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use crate::clock::{ReplicaId, VersionVector};
use crate::codec::At;
use crate::error::SnapshotError;

/// What a counter `$t` whose `entries` are [`Counts`] of `$entry` shares
/// with the other: `seq_of`, `parts`, `entries` and the [`Crdt`](crate::Crdt)
/// impl; `$value` gives its value as JSON.
macro_rules! counter_crdt {
    ($t:ident, $entry:ident, $value:expr) => {
        impl $t {
            /// How many changes of `replica` this counter has (its version entry).
            pub fn seq_of(&self, replica: &ReplicaId) -> u64 {
                self.entries.get(replica).map_or(0, |e| e.seq)
            }

            /// Splits into deltas of at most about `budget` bytes each (a
            /// group of replicas' entries per part; merged in any order
            /// they give `self`).
            pub fn parts(&self, budget: usize) -> Vec<$t> {
                let mut parts: Vec<$t> = self
                    .entries
                    .parts(budget)
                    .into_iter()
                    .map(|entries| $t {
                        entries,
                        deleted: None,
                    })
                    .collect();
                if let Some(last) = parts.last_mut() {
                    last.deleted = self.deleted.clone();
                }
                parts
            }

            /// Deletes the counter as `replica` at wall time `now_ms`: its
            /// value becomes 0, and what each replica had added up to now
            /// no longer counts; increments made concurrently elsewhere
            /// still do. The delete is one change of `replica` (its entry
            /// moves on by one, which the delete itself subtracts).
            pub fn delete_object(
                &mut self,
                replica: &ReplicaId,
                now_ms: u64,
            ) -> Result<(), crate::OpError> {
                self.bump(replica)?;
                let seen = $t {
                    entries: self.entries.clone(),
                    deleted: None,
                };
                crate::deletion::Deletion::record(&mut self.deleted, replica, now_ms, seen);
                Ok(())
            }

            /// What the deletes saw of `replica` (its entry then).
            pub fn floor_of(&self, replica: &ReplicaId) -> Option<$entry> {
                self.deleted
                    .as_ref()
                    .and_then(|d| d.seen.entries.get(replica).copied())
            }

            /// True when no entry has moved on since the deletes saw it.
            pub(crate) fn all_seen(&self) -> bool {
                self.entries
                    .iter()
                    .all(|(r, e)| self.floor_of(r).is_some_and(|f| f.seq >= e.seq))
            }

            /// Why the deletes here are impossible for these entries, if
            /// they are: a delete saw a later change of a replica than its
            /// entry here, or a count that change never had. (A replica
            /// without an entry here may come in another part or delta;
            /// merging checks it against both sides.)
            pub(crate) fn check_deletion(&self) -> Result<(), String> {
                let Some(d) = &self.deleted else {
                    return Ok(());
                };
                for (r, floor) in d.seen.entries.iter() {
                    if let Some(e) = self.entries.get(r) {
                        self.check_floor(r, *floor, *e)?;
                    }
                }
                Ok(())
            }

            /// A floor against the entry it must be an earlier state of.
            fn check_floor(
                &self,
                r: &ReplicaId,
                floor: $entry,
                entry: $entry,
            ) -> Result<(), String> {
                if floor.seq > entry.seq {
                    return Err(format!(
                        "a delete saw change {} of replica {r}, which has made {} here",
                        floor.seq, entry.seq
                    ));
                }
                let one = |e: $entry| $t {
                    entries: std::collections::BTreeMap::from([(r.clone(), e)]).into(),
                    deleted: None,
                };
                one(entry).check_merge(&one(floor))
            }

            /// Why `other`'s deletes cannot merge with what this counter
            /// and `other` hold, or this counter's deletes with what
            /// `other` brings, if they cannot.
            pub(crate) fn check_merge_deletion(&self, other: &$t) -> Result<(), String> {
                if let Some(d) = &other.deleted {
                    for (r, floor) in d.seen.entries.iter() {
                        let entry = self.entries.of(r).max(other.entries.of(r));
                        self.check_floor(r, *floor, entry)?;
                    }
                }
                // A floor here whose replica had no entry here (it may come
                // later) against the entry `other` brings for it.
                if let Some(d) = &self.deleted {
                    for (r, floor) in d.seen.entries.iter() {
                        let entry = self.entries.of(r).max(other.entries.of(r));
                        if entry.seq > 0 {
                            self.check_floor(r, *floor, entry)?;
                        }
                    }
                }
                Ok(())
            }

            /// Each replica's entry, in replica order.
            pub fn entries(&self) -> impl Iterator<Item = (&ReplicaId, &$entry)> {
                self.entries.iter()
            }
        }

        impl crate::traits::Crdt for $t {
            fn merge(&mut self, other: &Self) {
                self.entries.merge(&other.entries);
                crate::deletion::Deletion::merge(&mut self.deleted, &other.deleted);
            }

            fn version(&self) -> VersionVector {
                self.entries.version()
            }

            fn delta_since(&self, vv: &VersionVector) -> Self {
                $t {
                    entries: self.entries.delta_since(vv),
                    deleted: crate::deletion::Deletion::delta_since(&self.deleted, vv),
                }
            }

            fn covered_by(&self, vv: &VersionVector) -> bool {
                self.entries.covered_by(vv)
            }

            fn value_json(&self) -> Value {
                ($value)(self)
            }
        }

        crate::deletion::deletion_access!($t, $t);

        impl crate::deletion::Horizon for $t {
            fn join(&mut self, other: &Self) {
                self.entries.merge(&other.entries);
            }
            fn covered_by(&self, vv: &VersionVector) -> bool {
                self.entries.covered_by(vv)
            }
            fn encode(&self) -> Value {
                crate::codec::Codec::encode(self)
            }
            fn decode(at: &crate::codec::At<'_>) -> Result<Self, crate::error::SnapshotError> {
                <$t as crate::codec::Codec>::decode(at)
            }
        }
    };
}
pub(crate) use counter_crdt;

/// A replica's entry: `seq` is how many changes it made (its version), and
/// its order is the order of its changes, so the maximum is a join.
pub(crate) trait Entry: Copy + Ord + Default {
    fn seq(&self) -> u64;
}

/// Per-replica entries (a map, as read through `Deref`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Counts<E>(BTreeMap<ReplicaId, E>);

impl<E> Default for Counts<E> {
    fn default() -> Self {
        Counts(BTreeMap::new())
    }
}

impl<E> From<BTreeMap<ReplicaId, E>> for Counts<E> {
    fn from(map: BTreeMap<ReplicaId, E>) -> Self {
        Counts(map)
    }
}

impl<E> Deref for Counts<E> {
    type Target = BTreeMap<ReplicaId, E>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<E> DerefMut for Counts<E> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<E: Entry> Counts<E> {
    /// `replica`'s entry (the empty one when it has none).
    pub(crate) fn of(&self, replica: &ReplicaId) -> E {
        self.0.get(replica).copied().unwrap_or_default()
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        for (r, e) in &other.0 {
            let mine = self.0.entry(r.clone()).or_default();
            *mine = (*mine).max(*e);
        }
    }

    pub(crate) fn version(&self) -> VersionVector {
        self.0.iter().map(|(r, e)| (r.clone(), e.seq())).collect()
    }

    pub(crate) fn delta_since(&self, vv: &VersionVector) -> Self {
        Counts(
            self.0
                .iter()
                .filter(|(r, e)| e.seq() > vv.get(r))
                .map(|(r, e)| (r.clone(), *e))
                .collect(),
        )
    }

    pub(crate) fn covered_by(&self, vv: &VersionVector) -> bool {
        self.0.iter().all(|(r, e)| e.seq() <= vv.get(r))
    }

    /// Groups of entries of at most about `budget` bytes each.
    pub(crate) fn parts(&self, budget: usize) -> Vec<Self> {
        crate::codec::entry_parts(&self.0, budget)
            .into_iter()
            .map(Counts)
            .collect()
    }

    /// The snapshot-format state, `{"counts": {replica: entry}}`.
    pub(crate) fn encode(&self, entry: impl Fn(&E) -> serde_json::Value) -> serde_json::Value {
        let counts: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(r, e)| (r.to_string(), entry(e)))
            .collect();
        serde_json::json!({ "counts": counts })
    }

    /// Reads `{"counts": {replica: entry}}`, each entry with exactly
    /// `fields`, read by `entry`.
    pub(crate) fn decode(
        at: &At<'_>,
        fields: &[&str],
        entry: impl Fn(&At<'_>) -> Result<E, SnapshotError>,
    ) -> Result<Self, SnapshotError> {
        at.fields(&["counts"], &[])?;
        let counts = at.field("counts")?;
        let mut map = BTreeMap::new();
        for (key, e) in counts.entries()? {
            let replica = counts.replica_key(key)?;
            e.fields(fields, &[])?;
            map.insert(replica, entry(&e)?);
        }
        Ok(Counts(map))
    }

    /// `check(replica, mine, theirs)` for every replica both hold.
    pub(crate) fn check_each(
        &self,
        other: &Self,
        check: impl Fn(&ReplicaId, &E, &E) -> Result<(), String>,
    ) -> Result<(), String> {
        for (r, theirs) in &other.0 {
            if let Some(mine) = self.0.get(r) {
                check(r, mine, theirs)?;
            }
        }
        Ok(())
    }
}

/// One replica's counter entry, held `(seq, total)` against incoming: its
/// total grows by at least 1 per change and an equal seq means an equal total.
pub(crate) fn check_growth(
    r: &ReplicaId,
    mine: (u64, u128),
    theirs: (u64, u128),
) -> Result<(), String> {
    let (older, newer) = if mine.0 <= theirs.0 {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    let steps = u128::from(newer.0 - older.0);
    if newer.0 == older.0 && newer.1 != older.1 {
        return Err(format!(
            "replica {r}'s change {} sums to {} here but {} in the change: one change cannot have two sums",
            mine.0, mine.1, theirs.1
        ));
    }
    if newer.1 < older.1 + steps {
        return Err(format!(
            "replica {r} goes from {} changes summing to {} to {} changes summing to {}: counts only grow, by at least 1 per change",
            older.0, older.1, newer.0, newer.1
        ));
    }
    Ok(())
}

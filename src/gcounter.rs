//! Grow-only counter: per-replica counts, merged by pointwise maximum.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::{MAX_SEQ, ReplicaId, VersionVector};
use crate::codec::{At, Codec};
use crate::error::{OpError, SnapshotError};
use crate::traits::Crdt;

/// A grow-only counter.
///
/// Each replica owns one entry: how many increments it made (`seq`, which is
/// also its version) and their sum (`count`). The value is the sum of counts.
///
/// ```
/// use crdt::{Crdt, GCounter, ReplicaId};
/// let (a, b) = (ReplicaId::new("agent-1").unwrap(), ReplicaId::new("agent-2").unwrap());
/// let mut x = GCounter::default();
/// let mut y = GCounter::default();
/// x.inc(&a, 1).unwrap();
/// y.inc(&b, 1).unwrap();
/// x.merge(&y);
/// y.merge(&x);
/// assert_eq!((x.value(), y.value()), (2, 2));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GCounter {
    entries: BTreeMap<ReplicaId, GEntry>,
}

/// One replica's part of a [`GCounter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GEntry {
    /// Number of increments (the replica's version for this counter).
    pub seq: u64,
    /// Sum of those increments.
    pub count: u64,
}

impl GCounter {
    /// Adds `amount` (at least 1) as `replica`.
    pub fn inc(&mut self, replica: &ReplicaId, amount: u64) -> Result<(), OpError> {
        if amount == 0 {
            return Err(OpError::ZeroAmount);
        }
        let overflow = || OpError::Overflow {
            current: self.value().to_string(),
            amount,
        };
        let entry = self.entries.get(replica).copied().unwrap_or_default();
        if entry.seq >= MAX_SEQ {
            return Err(OpError::Exhausted {
                replica: replica.to_string(),
            });
        }
        let count = entry.count.checked_add(amount).ok_or_else(overflow)?;
        // The total must stay representable too.
        self.value()
            .checked_add(u128::from(amount))
            .filter(|&v| v <= u128::from(u64::MAX))
            .ok_or_else(overflow)?;
        self.entries.insert(
            replica.clone(),
            GEntry {
                seq: entry.seq + 1,
                count,
            },
        );
        Ok(())
    }

    /// How many changes of `replica` this counter has (its version entry).
    pub fn seq_of(&self, replica: &ReplicaId) -> u64 {
        self.entries.get(replica).map_or(0, |e| e.seq)
    }

    /// The sum over all replicas.
    pub fn value(&self) -> u128 {
        self.entries.values().map(|e| u128::from(e.count)).sum()
    }

    /// Splits into deltas of at most about `budget` bytes each (a group of
    /// replicas' entries per part; merged in any order they give `self`).
    pub fn parts(&self, budget: usize) -> Vec<GCounter> {
        crate::codec::entry_parts(&self.entries, budget)
            .into_iter()
            .map(|entries| GCounter { entries })
            .collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&ReplicaId, &GEntry)> {
        self.entries.iter()
    }
}

impl GCounter {
    /// Why merging `other` would be something no honest replica produces,
    /// if it would: one replica's entries must grow together, each increment
    /// adding at least 1 (equal seqs, equal counts).
    pub fn check_merge(&self, other: &GCounter) -> Result<(), String> {
        for (r, theirs) in &other.entries {
            if let Some(mine) = self.entries.get(r) {
                check_growth(
                    r,
                    (mine.seq, u128::from(mine.count)),
                    (theirs.seq, u128::from(theirs.count)),
                )?;
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

impl Crdt for GCounter {
    fn merge(&mut self, other: &Self) {
        for (r, e) in &other.entries {
            let mine = self.entries.entry(r.clone()).or_default();
            // A replica's entries are totally ordered by (seq, count): max is a join.
            *mine = (*mine).max(*e);
        }
    }

    fn version(&self) -> VersionVector {
        self.entries
            .iter()
            .map(|(r, e)| (r.clone(), e.seq))
            .collect()
    }

    fn delta_since(&self, vv: &VersionVector) -> Self {
        GCounter {
            entries: self
                .entries
                .iter()
                .filter(|(r, e)| e.seq > vv.get(r))
                .map(|(r, e)| (r.clone(), *e))
                .collect(),
        }
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.entries.iter().all(|(r, e)| e.seq <= vv.get(r))
    }

    fn value_json(&self) -> Value {
        number_json(self.value() as i128)
    }
}

/// A counter's value as a JSON number, however large (serde_json keeps
/// numbers as their decimal text, so a sum past 64 bits stays a number).
pub(crate) fn number_json(v: i128) -> Value {
    Value::from(v)
}

impl GCounter {
    /// [`Codec::encode`]'s text, written straight.
    pub(crate) fn write_text(&self, out: &mut String) {
        crate::codec::counts_to_text(out, &self.entries, |out, e| {
            use std::fmt::Write as _;
            let _ = write!(out, "\"seq\":{},\"count\":{}", e.seq, e.count);
        });
    }

    /// Decodes a state from its JSON text straight into entries, without a
    /// tree of values (a counter push is decoded on every change). `None`
    /// when anything is off: the value decoder then says exactly what.
    pub(crate) fn decode_text(text: &str) -> Option<GCounter> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            seq: u64,
            count: u64,
        }
        let entries = crate::codec::counts_from_text(text, |e: Entry| {
            (e.seq > 0 && e.seq <= MAX_SEQ && e.count >= e.seq).then_some(GEntry {
                seq: e.seq,
                count: e.count,
            })
        })?;
        Some(GCounter { entries })
    }
}

impl Codec for GCounter {
    fn encode(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .entries
            .iter()
            .map(|(r, e)| (r.to_string(), json!({"seq": e.seq, "count": e.count})))
            .collect();
        json!({ "counts": counts })
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["counts"], &[])?;
        let counts = at.field("counts")?;
        let mut entries = BTreeMap::new();
        for (key, e) in counts.entries()? {
            let replica = counts.replica_key(key)?;
            e.fields(&["seq", "count"], &[])?;
            let seq = e.field("seq")?.seq()?;
            let count = e.field("count")?.u64()?;
            if count < seq {
                return Err(e.causal(format!(
                    "{seq} increments of at least 1 cannot sum to {count}"
                )));
            }
            entries.insert(replica, GEntry { seq, count });
        }
        Ok(GCounter { entries })
    }
}

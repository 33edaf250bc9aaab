//! Positive-negative counter: increments and decrements per replica.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::{MAX_SEQ, ReplicaId, VersionVector};
use crate::codec::{At, Codec};
use crate::error::{OpError, SnapshotError};
use crate::gcounter::number_json;
use crate::traits::Crdt;

/// A counter that goes up and down; its value may be negative.
///
/// ```
/// use crdt::{Crdt, PnCounter, ReplicaId};
/// let a = ReplicaId::new("agent-1").unwrap();
/// let mut gpus = PnCounter::default();
/// gpus.inc(&a, 30).unwrap();
/// gpus.dec(&a, 50).unwrap();
/// assert_eq!(gpus.value(), -20);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PnCounter {
    entries: BTreeMap<ReplicaId, PnEntry>,
}

/// One replica's part of a [`PnCounter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PnEntry {
    /// Number of changes (the replica's version for this counter).
    pub seq: u64,
    /// Sum of increments.
    pub p: u64,
    /// Sum of decrements.
    pub n: u64,
}

impl PnCounter {
    pub fn inc(&mut self, replica: &ReplicaId, amount: u64) -> Result<(), OpError> {
        self.change(replica, amount, true)
    }

    pub fn dec(&mut self, replica: &ReplicaId, amount: u64) -> Result<(), OpError> {
        self.change(replica, amount, false)
    }

    fn change(&mut self, replica: &ReplicaId, amount: u64, up: bool) -> Result<(), OpError> {
        if amount == 0 {
            return Err(OpError::ZeroAmount);
        }
        let mut e = self.entries.get(replica).copied().unwrap_or_default();
        if e.seq >= MAX_SEQ {
            return Err(OpError::Exhausted {
                replica: replica.to_string(),
            });
        }
        let side = if up { &mut e.p } else { &mut e.n };
        *side = side.checked_add(amount).ok_or_else(|| {
            let current = self.value().to_string();
            if up {
                OpError::Overflow { current, amount }
            } else {
                OpError::Underflow { current, amount }
            }
        })?;
        e.seq += 1;
        self.entries.insert(replica.clone(), e);
        Ok(())
    }

    /// How many changes of `replica` this counter has (its version entry).
    pub fn seq_of(&self, replica: &ReplicaId) -> u64 {
        self.entries.get(replica).map_or(0, |e| e.seq)
    }

    pub fn value(&self) -> i128 {
        self.entries
            .values()
            .map(|e| i128::from(e.p) - i128::from(e.n))
            .sum()
    }

    /// Splits into deltas of at most about `budget` bytes each (a group of
    /// replicas' entries per part; merged in any order they give `self`).
    pub fn parts(&self, budget: usize) -> Vec<PnCounter> {
        crate::codec::entry_parts(&self.entries, budget)
            .into_iter()
            .map(|entries| PnCounter { entries })
            .collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&ReplicaId, &PnEntry)> {
        self.entries.iter()
    }
}

impl PnCounter {
    /// Like [`GCounter::check_merge`](crate::GCounter::check_merge), for
    /// increments and decrements: each only grows with the seq.
    pub fn check_merge(&self, other: &PnCounter) -> Result<(), String> {
        for (r, theirs) in &other.entries {
            if let Some(mine) = self.entries.get(r) {
                let sum = |e: &PnEntry| u128::from(e.p) + u128::from(e.n);
                crate::gcounter::check_growth(r, (mine.seq, sum(mine)), (theirs.seq, sum(theirs)))?;
                let (older, newer) = if mine.seq <= theirs.seq {
                    (mine, theirs)
                } else {
                    (theirs, mine)
                };
                if newer.p < older.p || newer.n < older.n {
                    return Err(format!(
                        "replica {r} goes from p={}, n={} (change {}) to p={}, n={} (change {}): increments and decrements only grow",
                        older.p, older.n, older.seq, newer.p, newer.n, newer.seq
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Crdt for PnCounter {
    fn merge(&mut self, other: &Self) {
        for (r, e) in &other.entries {
            let mine = self.entries.entry(r.clone()).or_default();
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
        PnCounter {
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
        number_json(self.value())
    }
}

impl PnCounter {
    /// [`Codec::encode`]'s text, written straight.
    pub(crate) fn write_text(&self, out: &mut String) {
        crate::codec::counts_to_text(out, &self.entries, |out, e| {
            use std::fmt::Write as _;
            let _ = write!(out, "\"seq\":{},\"p\":{},\"n\":{}", e.seq, e.p, e.n);
        });
    }

    /// Like [`GCounter::decode_text`](crate::GCounter): straight from the
    /// text, `None` when anything is off.
    pub(crate) fn decode_text(text: &str) -> Option<PnCounter> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            seq: u64,
            p: u64,
            n: u64,
        }
        let entries = crate::codec::counts_from_text(text, |e: Entry| {
            let enough = u128::from(e.p) + u128::from(e.n) >= u128::from(e.seq);
            (e.seq > 0 && e.seq <= MAX_SEQ && enough).then_some(PnEntry {
                seq: e.seq,
                p: e.p,
                n: e.n,
            })
        })?;
        Some(PnCounter { entries })
    }
}

impl Codec for PnCounter {
    fn encode(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .entries
            .iter()
            .map(|(r, e)| (r.to_string(), json!({"seq": e.seq, "p": e.p, "n": e.n})))
            .collect();
        json!({ "counts": counts })
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["counts"], &[])?;
        let counts = at.field("counts")?;
        let mut entries = BTreeMap::new();
        for (key, e) in counts.entries()? {
            let replica = counts.replica_key(key)?;
            e.fields(&["seq", "p", "n"], &[])?;
            let seq = e.field("seq")?.seq()?;
            let p = e.field("p")?.u64()?;
            let n = e.field("n")?.u64()?;
            if u128::from(p) + u128::from(n) < u128::from(seq) {
                return Err(e.causal(format!(
                    "{seq} changes of at least 1 cannot sum to p={p}, n={n}"
                )));
            }
            entries.insert(replica, PnEntry { seq, p, n });
        }
        Ok(PnCounter { entries })
    }
}

//! Positive-negative counter: increments and decrements per replica.

use serde_json::{Value, json};

use crate::clock::{MAX_SEQ, ReplicaId, VersionVector};
use crate::codec::{At, Codec};
use crate::counts::{self, Counts};
use crate::error::{OpError, SnapshotError};
use crate::gcounter::number_json;

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
    entries: Counts<PnEntry>,
    deleted: crate::deletion::Deleted<PnCounter>,
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

impl counts::Entry for PnEntry {
    fn seq(&self) -> u64 {
        self.seq
    }
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
        let mut e = self.entries.of(replica);
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

    /// Increments minus decrements over all replicas, since the deletes
    /// this counter has seen (all of them when none).
    pub fn value(&self) -> i128 {
        self.entries
            .iter()
            .map(|(r, e)| match self.floor_of(r) {
                Some(f) if f.seq >= e.seq => 0,
                Some(f) => {
                    i128::from(e.p.saturating_sub(f.p)) - i128::from(e.n.saturating_sub(f.n))
                }
                None => i128::from(e.p) - i128::from(e.n),
            })
            .sum()
    }

    /// One more change of `replica` that adds 1 (a delete's own change).
    fn bump(&mut self, replica: &ReplicaId) -> Result<(), OpError> {
        self.change(replica, 1, true)
    }
}

impl PnCounter {
    /// Like [`GCounter::check_merge`](crate::GCounter::check_merge), for
    /// increments and decrements: each only grows with the seq.
    pub fn check_merge(&self, other: &PnCounter) -> Result<(), String> {
        self.entries.check_each(&other.entries, |r, mine, theirs| {
            let sum = |e: &PnEntry| u128::from(e.p) + u128::from(e.n);
            counts::check_growth(r, (mine.seq, sum(mine)), (theirs.seq, sum(theirs)))?;
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
            Ok(())
        })
    }
}

crate::counts::counter_crdt!(PnCounter, PnEntry, |c: &PnCounter| number_json(c.value()));

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
        Some(PnCounter {
            entries: entries.into(),
            deleted: None,
        })
    }
}

impl Codec for PnCounter {
    fn encode(&self) -> Value {
        self.entries
            .encode(|e| json!({"seq": e.seq, "p": e.p, "n": e.n}))
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        let entries = Counts::decode(at, &["seq", "p", "n"], |e| {
            let seq = e.field("seq")?.seq()?;
            let p = e.field("p")?.u64()?;
            let n = e.field("n")?.u64()?;
            if u128::from(p) + u128::from(n) < u128::from(seq) {
                return Err(e.causal(format!(
                    "{seq} changes of at least 1 cannot sum to p={p}, n={n}"
                )));
            }
            Ok(PnEntry { seq, p, n })
        })?;
        Ok(PnCounter {
            entries,
            deleted: None,
        })
    }
}

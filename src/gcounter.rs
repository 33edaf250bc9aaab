//! Grow-only counter: per-replica counts, merged by pointwise maximum.

use serde_json::{Value, json};

use crate::clock::{MAX_SEQ, ReplicaId, VersionVector};
use crate::codec::{At, Codec};
use crate::counts::{self, Counts};
use crate::error::{OpError, SnapshotError};

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
    entries: Counts<GEntry>,
    deleted: crate::deletion::Deleted<GCounter>,
}

/// One replica's part of a [`GCounter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GEntry {
    /// Number of increments (the replica's version for this counter).
    pub seq: u64,
    /// Sum of those increments.
    pub count: u64,
}

impl counts::Entry for GEntry {
    fn seq(&self) -> u64 {
        self.seq
    }
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
        let entry = self.entries.of(replica);
        if entry.seq >= MAX_SEQ {
            return Err(OpError::Exhausted {
                replica: replica.to_string(),
            });
        }
        let count = entry.count.checked_add(amount).ok_or_else(overflow)?;
        // The total must stay representable too (counted without the
        // deletes' floors, so any later delete can still be recorded).
        self.raw_value()
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

    /// The sum over all replicas of what they added since the deletes
    /// this counter has seen (all of it when none).
    pub fn value(&self) -> u128 {
        self.entries
            .iter()
            .map(|(r, e)| match self.floor_of(r) {
                Some(f) if f.seq >= e.seq => 0,
                Some(f) => u128::from(e.count.saturating_sub(f.count)),
                None => u128::from(e.count),
            })
            .sum()
    }

    fn raw_value(&self) -> u128 {
        self.entries.values().map(|e| u128::from(e.count)).sum()
    }

    /// One more change of `replica` that adds 1 (a delete's own change).
    fn bump(&mut self, replica: &ReplicaId) -> Result<(), OpError> {
        self.inc(replica, 1)
    }
}

impl GCounter {
    /// Why merging `other` would be something no honest replica produces,
    /// if it would: one replica's entries must grow together, each increment
    /// adding at least 1 (equal seqs, equal counts).
    pub fn check_merge(&self, other: &GCounter) -> Result<(), String> {
        self.entries.check_each(&other.entries, |r, mine, theirs| {
            counts::check_growth(
                r,
                (mine.seq, u128::from(mine.count)),
                (theirs.seq, u128::from(theirs.count)),
            )
        })
    }
}

crate::counts::counter_crdt!(GCounter, GEntry, |c: &GCounter| number_json(
    c.value() as i128
));

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
        Some(GCounter {
            entries: entries.into(),
            deleted: None,
        })
    }
}

impl Codec for GCounter {
    fn encode(&self) -> Value {
        self.entries
            .encode(|e| json!({"seq": e.seq, "count": e.count}))
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        let entries = Counts::decode(at, &["seq", "count"], |e| {
            let seq = e.field("seq")?.seq()?;
            let count = e.field("count")?.u64()?;
            if count < seq {
                return Err(e.causal(format!(
                    "{seq} increments of at least 1 cannot sum to {count}"
                )));
            }
            Ok(GEntry { seq, count })
        })?;
        Ok(GCounter {
            entries,
            deleted: None,
        })
    }
}

//! Last-writer-wins register of one JSON value.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::{Dot, Hlc, ReplicaId, VersionVector};
use crate::codec::{At, Codec, context_json, dot_json, hlc_json};
use crate::context::CausalContext;
use crate::deletion::{Deleted, Deletion};
use crate::error::{OpError, SnapshotError};
use crate::traits::Crdt;

/// A register holding one JSON value.
///
/// It keeps the writes that no other write has observed (usually one; more
/// after concurrent writes), each with a dot and a hybrid-logical-clock
/// timestamp. A write made after observing others replaces them, so it always
/// wins. Among concurrent writes the greatest `(timestamp, replica)` wins, the
/// same way on every replica. The value that lost the most recent conflict is
/// remembered for debugging (see [`LwwRegister::lost`]).
///
/// ```
/// use crdt::{Crdt, LwwRegister, ReplicaId};
/// use serde_json::json;
/// let (a, b) = (ReplicaId::new("agent-1").unwrap(), ReplicaId::new("agent-2").unwrap());
/// let mut x = LwwRegister::default();
/// let mut y = LwwRegister::default();
/// x.set(&a, json!({"feature:ai-review": true}), 1_000).unwrap();
/// y.set(&b, json!({"feature:ai-review": false}), 1_001).unwrap();
/// x.merge(&y);
/// assert_eq!(x.value(), Some(&json!({"feature:ai-review": false})));
/// assert_eq!(x.lost().unwrap().value, json!({"feature:ai-review": true}));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LwwRegister {
    writes: BTreeMap<Dot, Write>,
    context: CausalContext,
    deleted: Deleted<CausalContext>,
}

/// One write of a register.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub value: Value,
    pub ts: Hlc,
    /// What had lost the most recent conflict when this write was made.
    pub lost: Option<Lost>,
}

/// A value that lost a conflict: who wrote it and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Lost {
    pub value: Value,
    pub ts: Hlc,
    pub writer: ReplicaId,
}

impl LwwRegister {
    /// Writes `value` as `replica` at wall time `now_ms` (milliseconds since the epoch).
    /// Returns the timestamp the write got.
    pub fn set(&mut self, replica: &ReplicaId, value: Value, now_ms: u64) -> Result<Hlc, OpError> {
        let seen = self.writes.values().map(|w| w.ts).max().unwrap_or_default();
        let ts = seen.next(now_ms);
        let lost = self.lost();
        let dot = Dot::new(replica.clone(), self.context.fresh(replica, 1)?);
        self.context.add(&dot);
        self.writes.clear();
        self.writes.insert(dot, Write { value, ts, lost });
        Ok(ts)
    }

    /// The winning write: greatest (timestamp, replica, seq).
    pub fn winner(&self) -> Option<(&Dot, &Write)> {
        self.writes
            .iter()
            .max_by(|a, b| (a.1.ts, a.0).cmp(&(b.1.ts, b.0)))
    }

    pub fn value(&self) -> Option<&Value> {
        self.winner().map(|(_, w)| &w.value)
    }

    /// The value that lost the most recent conflict: the best of the
    /// concurrent writes that lost, or, once a later write resolved the
    /// conflict, what that write remembered.
    pub fn lost(&self) -> Option<Lost> {
        let (win_dot, win) = self.winner()?;
        if self.writes.len() == 1 {
            return win.lost.clone();
        }
        self.writes
            .iter()
            .filter(|(d, _)| *d != win_dot)
            .max_by(|a, b| (a.1.ts, a.0).cmp(&(b.1.ts, b.0)))
            .map(|(d, w)| Lost {
                value: w.value.clone(),
                ts: w.ts,
                writer: d.replica.clone(),
            })
    }

    /// The writes no other write has observed (more than one while a conflict is open).
    pub fn writes(&self) -> impl Iterator<Item = (&Dot, &Write)> {
        self.writes.iter()
    }

    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Deletes the object as `replica` at wall time `now_ms`: removes
    /// everything here, as one event, and records what the delete saw, so
    /// a change made concurrently elsewhere survives it.
    pub fn delete_object(&mut self, replica: &ReplicaId, now_ms: u64) -> Result<(), OpError> {
        self.writes.clear();
        crate::deletion::delete_seen(&mut self.context, &mut self.deleted, replica, now_ms)
    }

    /// Why merging `other` would be impossible, if it would: a write this
    /// register holds under the same dot with another value or time.
    pub fn check_merge(&self, other: &LwwRegister) -> Result<(), String> {
        for (dot, theirs) in &other.writes {
            if let Some(mine) = self.writes.get(dot)
                && (mine.value != theirs.value || mine.ts != theirs.ts)
            {
                return Err(format!(
                    "write {dot} is {} at {} here but {} at {} in the change: one event cannot be two writes",
                    mine.value, mine.ts, theirs.value, theirs.ts
                ));
            }
        }
        Ok(())
    }
}

impl Crdt for LwwRegister {
    fn merge(&mut self, other: &Self) {
        // A write survives when the other side has it too or has never seen it.
        self.writes
            .retain(|d, _| other.writes.contains_key(d) || !other.context.contains(d));
        for (d, w) in &other.writes {
            if !self.context.contains(d) {
                self.writes.insert(d.clone(), w.clone());
            }
        }
        self.context.union(&other.context);
        Deletion::merge(&mut self.deleted, &other.deleted);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    fn delta_since(&self, vv: &VersionVector) -> Self {
        let writes = self
            .writes
            .iter()
            .filter(|(d, _)| !vv.contains(d))
            .map(|(d, w)| (d.clone(), w.clone()))
            .collect();
        let context = delta_context(&self.context, vv, self.writes.keys());
        LwwRegister {
            writes,
            context,
            deleted: Deletion::delta_since(&self.deleted, vv),
        }
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.context.covered_by(vv)
    }

    fn value_json(&self) -> Value {
        self.value().cloned().unwrap_or(Value::Null)
    }
}

/// The context of a delta for a replica at `vv`: everything seen here except
/// the live dots the receiver already has. Dots within `vv` that are in it and
/// not live here were overwritten or removed, so the receiver drops them.
pub(crate) fn delta_context<'a>(
    context: &CausalContext,
    vv: &VersionVector,
    live: impl Iterator<Item = &'a Dot>,
) -> CausalContext {
    let kept = CausalContext::from_dots(live.filter(|d| vv.contains(d)));
    context.subtract(&kept)
}

impl Codec for LwwRegister {
    fn encode(&self) -> Value {
        let writes: Vec<Value> = self
            .writes
            .iter()
            .map(|(d, w)| {
                let lost = w.lost.as_ref().map_or(Value::Null, |l| {
                    json!({"value": l.value, "ts": hlc_json(&l.ts), "writer": l.writer.as_str()})
                });
                json!({"dot": dot_json(d), "ts": hlc_json(&w.ts), "value": w.value, "lost": lost})
            })
            .collect();
        json!({"context": context_json(&self.context), "writes": writes})
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["context", "writes"], &[])?;
        let context = at.field("context")?.context()?;
        let mut writes = BTreeMap::new();
        for w in at.field("writes")?.array()? {
            w.fields(&["dot", "ts", "value", "lost"], &[])?;
            let dot = w.field("dot")?.dot()?;
            if !context.contains(&dot) {
                return Err(w.causal(format!("write {dot} is not in the context")));
            }
            let lost_at = w.field("lost")?;
            let lost = if lost_at.value.is_null() {
                None
            } else {
                lost_at.fields(&["value", "ts", "writer"], &[])?;
                Some(Lost {
                    value: lost_at.field("value")?.user_value()?,
                    ts: lost_at.field("ts")?.hlc()?,
                    writer: lost_at.field("writer")?.replica()?,
                })
            };
            let write = Write {
                value: w.field("value")?.user_value()?,
                ts: w.field("ts")?.hlc()?,
                lost,
            };
            if writes.insert(dot.clone(), write).is_some() {
                return Err(w.causal(format!("write {dot} appears twice")));
            }
        }
        Ok(LwwRegister {
            writes,
            context,
            deleted: None,
        })
    }
}

crate::deletion::deletion_access!(LwwRegister, CausalContext);

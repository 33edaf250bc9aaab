//! Deleting an object. A delete removes every event of the object it has
//! seen; a change made concurrently survives, and the object comes back
//! holding just that change. So a delete carries what it saw (its
//! *horizon*): a causal context for the types that have one (their own
//! observed-remove merge drops what the delete saw), and for the counters
//! the entries it saw, which are subtracted from the value (a floor per
//! replica). Deletes merge by joining what they saw; who deleted, and when,
//! is kept per replica (the latest delete of each).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::Dot;
use crate::clock::{MAX_SEQ, ReplicaId, VersionVector};
use crate::codec::{At, context_json};
use crate::context::CausalContext;
use crate::error::{OpError, SnapshotError};

/// What a delete saw, joined with what other deletes saw.
pub(crate) trait Horizon: Clone + std::fmt::Debug + PartialEq + Default {
    fn join(&mut self, other: &Self);
    /// True when a replica at `vv` has seen all of it.
    fn covered_by(&self, vv: &VersionVector) -> bool;
    fn encode(&self) -> Value;
    fn decode(at: &At<'_>) -> Result<Self, SnapshotError>;
}

impl Horizon for CausalContext {
    fn join(&mut self, other: &Self) {
        self.union(other);
    }
    fn covered_by(&self, vv: &VersionVector) -> bool {
        CausalContext::covered_by(self, vv)
    }
    fn encode(&self) -> Value {
        context_json(self)
    }
    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.context()
    }
}

/// The deletes of one object: what they saw, and who deleted when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion<H> {
    pub seen: H,
    /// Each replica that deleted the object, with the wall-clock time
    /// (milliseconds since the epoch) of its latest delete.
    pub by: BTreeMap<ReplicaId, u64>,
}

/// An object's deletes, boxed: most objects have none.
pub type Deleted<H> = Option<Box<Deletion<H>>>;

#[allow(private_bounds)]
impl<H: Horizon> Deletion<H> {
    /// Records a delete by `replica` at `now_ms` that saw `seen`.
    pub(crate) fn record(slot: &mut Deleted<H>, replica: &ReplicaId, now_ms: u64, seen: H) {
        let d = slot.get_or_insert_with(|| {
            Box::new(Deletion {
                seen: H::default(),
                by: BTreeMap::new(),
            })
        });
        d.seen.join(&seen);
        let at = d.by.entry(replica.clone()).or_default();
        *at = (*at).max(now_ms.min(MAX_SEQ));
    }

    /// Joins `other`'s deletes into `slot`.
    pub(crate) fn merge(slot: &mut Deleted<H>, other: &Deleted<H>) {
        let Some(theirs) = other else { return };
        match slot {
            None => *slot = Some(theirs.clone()),
            Some(mine) => {
                mine.seen.join(&theirs.seen);
                for (r, t) in &theirs.by {
                    let at = mine.by.entry(r.clone()).or_default();
                    *at = (*at).max(*t);
                }
            }
        }
    }

    /// The deletes a replica at `vv` lacks: all of them when it has not
    /// seen everything they saw (a delete is small), else none.
    pub(crate) fn delta_since(slot: &Deleted<H>, vv: &VersionVector) -> Deleted<H> {
        slot.as_ref().filter(|d| !d.seen.covered_by(vv)).cloned()
    }

    pub(crate) fn encode(&self) -> Value {
        let by: serde_json::Map<String, Value> = self
            .by
            .iter()
            .map(|(r, t)| (r.to_string(), json!(t)))
            .collect();
        json!({"seen": self.seen.encode(), "by": by})
    }

    pub(crate) fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["seen", "by"], &[])?;
        let seen = H::decode(&at.field("seen")?)?;
        let by_at = at.field("by")?;
        let mut by = BTreeMap::new();
        for (key, t) in by_at.entries()? {
            let ms = t.u64()?;
            if ms > MAX_SEQ {
                return Err(t.shape("milliseconds below 2^53"));
            }
            by.insert(by_at.replica_key(key)?, ms);
        }
        if by.is_empty() {
            return Err(by_at.causal("a delete has a deleter"));
        }
        Ok(Deletion { seen, by })
    }
}

/// Who deleted an object and when, whatever its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedBy {
    /// Each deleter with the time of its latest delete (ms since the epoch).
    pub by: BTreeMap<ReplicaId, u64>,
    /// True when every event of the object is one the deletes saw: the
    /// object is gone. False when changes made concurrently brought it back.
    pub gone: bool,
}

impl DeletedBy {
    /// The latest delete: who and when.
    pub fn latest(&self) -> (&ReplicaId, u64) {
        self.by
            .iter()
            .max_by_key(|(r, t)| (**t, *r))
            .map(|(r, t)| (r, *t))
            .expect("a deletion has a deleter")
    }
}

/// A delete of a type with a causal context, after the caller removed
/// everything it holds: one event of `replica` (so versions move), and
/// what the delete saw (the whole context, its own event included).
pub(crate) fn delete_seen(
    context: &mut CausalContext,
    deleted: &mut Deleted<CausalContext>,
    replica: &ReplicaId,
    now_ms: u64,
) -> Result<(), OpError> {
    let dot = Dot::new(replica.clone(), context.fresh(replica, 1)?);
    context.add(&dot);
    Deletion::record(deleted, replica, now_ms, context.clone());
    Ok(())
}

/// `deletion()` and `set_deletion()` of a type `$t` that keeps its
/// deletes, as `Deletion<$h>`, in its field `deleted`.
macro_rules! deletion_access {
    ($t:ty, $h:ty) => {
        impl $t {
            /// The deletes this object has seen, if any.
            pub fn deletion(&self) -> Option<&$crate::deletion::Deletion<$h>> {
                self.deleted.as_deref()
            }

            pub(crate) fn set_deletion(&mut self, d: $crate::deletion::Deleted<$h>) {
                self.deleted = d;
            }
        }
    };
}
pub(crate) use deletion_access;

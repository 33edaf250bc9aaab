//! The seven types behind one enum, so a store can hold any of them.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::bcounter::BoundedCounter;
use crate::clock::VersionVector;
use crate::codec::{At, Codec};
use crate::context::CausalContext;
use crate::deletion::{DeletedBy, Deletion};
use crate::error::{OpError, SnapshotError};
use crate::gcounter::GCounter;
use crate::lww::LwwRegister;
use crate::map::LwwMap;
use crate::orset::OrSet;
use crate::pncounter::PnCounter;
use crate::rga::Rga;
use crate::traits::Crdt;

/// The name of a type, as written in JSON and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrdtType {
    GCounter,
    PnCounter,
    LwwRegister,
    OrSet,
    Rga,
    Map,
    BoundedCounter,
}

impl CrdtType {
    pub const ALL: [CrdtType; 7] = [
        CrdtType::GCounter,
        CrdtType::PnCounter,
        CrdtType::LwwRegister,
        CrdtType::OrSet,
        CrdtType::Rga,
        CrdtType::Map,
        CrdtType::BoundedCounter,
    ];

    /// "a" or "an", as the type's name is said ("an rga": letter by letter).
    pub fn article(self) -> &'static str {
        match self {
            CrdtType::OrSet | CrdtType::LwwRegister | CrdtType::Rga => "an",
            _ => "a",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CrdtType::GCounter => "g-counter",
            CrdtType::PnCounter => "pn-counter",
            CrdtType::LwwRegister => "lww-register",
            CrdtType::OrSet => "or-set",
            CrdtType::Rga => "rga",
            CrdtType::Map => "map",
            CrdtType::BoundedCounter => "bounded-counter",
        }
    }
}

impl fmt::Display for CrdtType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type name that is not one of the seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown type {0:?} (expected g-counter, pn-counter, lww-register, or-set, rga, map or bounded-counter)"
)]
pub struct UnknownType(pub String);

impl FromStr for CrdtType {
    type Err = UnknownType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CrdtType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownType(s.to_string()))
    }
}

/// One named CRDT of any type.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    GCounter(GCounter),
    PnCounter(PnCounter),
    LwwRegister(LwwRegister),
    OrSet(OrSet),
    Rga(Rga),
    Map(LwwMap),
    BoundedCounter(BoundedCounter),
}

macro_rules! each {
    ($obj:expr, $x:ident => $body:expr) => {
        match $obj {
            Object::GCounter($x) => $body,
            Object::PnCounter($x) => $body,
            Object::LwwRegister($x) => $body,
            Object::OrSet($x) => $body,
            Object::Rga($x) => $body,
            Object::Map($x) => $body,
            Object::BoundedCounter($x) => $body,
        }
    };
}

impl Object {
    /// An empty object of type `ty`.
    pub fn new(ty: CrdtType) -> Object {
        match ty {
            CrdtType::GCounter => Object::GCounter(GCounter::default()),
            CrdtType::PnCounter => Object::PnCounter(PnCounter::default()),
            CrdtType::LwwRegister => Object::LwwRegister(LwwRegister::default()),
            CrdtType::OrSet => Object::OrSet(OrSet::default()),
            CrdtType::Rga => Object::Rga(Rga::default()),
            CrdtType::Map => Object::Map(LwwMap::default()),
            CrdtType::BoundedCounter => Object::BoundedCounter(BoundedCounter::default()),
        }
    }

    pub fn ty(&self) -> CrdtType {
        match self {
            Object::GCounter(_) => CrdtType::GCounter,
            Object::PnCounter(_) => CrdtType::PnCounter,
            Object::LwwRegister(_) => CrdtType::LwwRegister,
            Object::OrSet(_) => CrdtType::OrSet,
            Object::Rga(_) => CrdtType::Rga,
            Object::Map(_) => CrdtType::Map,
            Object::BoundedCounter(_) => CrdtType::BoundedCounter,
        }
    }

    /// Merges `other` when it has the same type. Returns false (and changes
    /// nothing) when the types differ: a store keeps such objects side by side.
    pub fn merge(&mut self, other: &Object) -> bool {
        match (self, other) {
            (Object::GCounter(a), Object::GCounter(b)) => a.merge(b),
            (Object::PnCounter(a), Object::PnCounter(b)) => a.merge(b),
            (Object::LwwRegister(a), Object::LwwRegister(b)) => a.merge(b),
            (Object::OrSet(a), Object::OrSet(b)) => a.merge(b),
            (Object::Rga(a), Object::Rga(b)) => a.merge(b),
            (Object::Map(a), Object::Map(b)) => a.merge(b),
            (Object::BoundedCounter(a), Object::BoundedCounter(b)) => a.merge(b),
            _ => return false,
        }
        true
    }

    /// Why merging `incoming` into `self` (same type) would give a state no
    /// honest replica could have, if it would: see each type's `check_merge`.
    /// Objects of different types never merge, so they never conflict.
    pub fn check_merge(&self, incoming: &Object) -> Result<(), String> {
        match (self, incoming) {
            (Object::GCounter(a), Object::GCounter(b)) => a.check_merge(b),
            (Object::PnCounter(a), Object::PnCounter(b)) => a.check_merge(b),
            (Object::LwwRegister(a), Object::LwwRegister(b)) => a.check_merge(b),
            (Object::OrSet(a), Object::OrSet(b)) => a.check_merge(b),
            (Object::Rga(a), Object::Rga(b)) => a.check_merge(b),
            (Object::Map(a), Object::Map(b)) => a.check_merge(b),
            (Object::BoundedCounter(a), Object::BoundedCounter(b)) => a.check_merge(b),
            _ => return Ok(()),
        }?;
        self.check_merge_deletion(incoming)
    }

    /// Why `incoming`'s deletes cannot merge here, if they cannot: a
    /// delete saw an event neither side has.
    fn check_merge_deletion(&self, incoming: &Object) -> Result<(), String> {
        match (self, incoming) {
            (Object::GCounter(a), Object::GCounter(b)) => a.check_merge_deletion(b),
            (Object::PnCounter(a), Object::PnCounter(b)) => a.check_merge_deletion(b),
            _ => {
                let Some(seen) = incoming.deletion_context() else {
                    return Ok(());
                };
                let mut both = context_of(self).cloned().unwrap_or_default();
                if let Some(theirs) = context_of(incoming) {
                    both.union(theirs);
                }
                unseen_by(seen, &both)
            }
        }
    }

    /// What the deletes of a type with a causal context saw.
    fn deletion_context(&self) -> Option<&CausalContext> {
        match self {
            Object::GCounter(_) | Object::PnCounter(_) | Object::BoundedCounter(_) => None,
            Object::LwwRegister(x) => x.deletion().map(|d| &d.seen),
            Object::OrSet(x) => x.deletion().map(|d| &d.seen),
            Object::Rga(x) => x.deletion().map(|d| &d.seen),
            Object::Map(x) => x.deletion().map(|d| &d.seen),
        }
    }

    /// Deletes the object as `replica` at wall time `now_ms` (see
    /// [`crate::deletion`]): its value becomes empty (0, null, no members,
    /// no text, no keys); a change made concurrently elsewhere survives.
    pub fn delete_object(
        &mut self,
        replica: &crate::ReplicaId,
        now_ms: u64,
    ) -> Result<(), OpError> {
        each!(self, x => x.delete_object(replica, now_ms))
    }

    /// Who deleted the object and when, and whether it is gone (no change
    /// made since, or concurrently, brought it back); `None`: never deleted.
    pub fn deleted_by(&self) -> Option<DeletedBy> {
        let by = match self {
            Object::GCounter(c) => c.deletion()?.by.clone(),
            Object::PnCounter(c) => c.deletion()?.by.clone(),
            Object::LwwRegister(x) => x.deletion()?.by.clone(),
            Object::OrSet(x) => x.deletion()?.by.clone(),
            Object::Rga(x) => x.deletion()?.by.clone(),
            Object::Map(x) => x.deletion()?.by.clone(),
            Object::BoundedCounter(x) => x.deletion()?.by.clone(),
        };
        Some(DeletedBy {
            by,
            gone: self.is_deleted(),
        })
    }

    /// True when the object was deleted and nothing brought it back: every
    /// event it holds is one a delete saw.
    pub fn is_deleted(&self) -> bool {
        let gone = |seen: &CausalContext, cc: &CausalContext| cc.subtract(seen).is_empty();
        match self {
            Object::GCounter(c) => c.deletion().is_some() && c.all_seen(),
            Object::PnCounter(c) => c.deletion().is_some() && c.all_seen(),
            Object::LwwRegister(x) => x.deletion().is_some_and(|d| gone(&d.seen, x.context())),
            Object::OrSet(x) => x.deletion().is_some_and(|d| gone(&d.seen, x.context())),
            Object::Rga(x) => x.deletion().is_some_and(|d| gone(&d.seen, x.context())),
            Object::Map(x) => x.deletion().is_some_and(|d| gone(&d.seen, x.context())),
            Object::BoundedCounter(x) => x.deletion().is_some() && x.all_seen(),
        }
    }

    /// The deletes as the snapshot format's `deleted` field of the state.
    fn deletion_json(&self) -> Option<Value> {
        match self {
            Object::GCounter(c) => c.deletion().map(Deletion::encode),
            Object::PnCounter(c) => c.deletion().map(Deletion::encode),
            Object::LwwRegister(x) => x.deletion().map(Deletion::encode),
            Object::OrSet(x) => x.deletion().map(Deletion::encode),
            Object::Rga(x) => x.deletion().map(Deletion::encode),
            Object::Map(x) => x.deletion().map(Deletion::encode),
            Object::BoundedCounter(x) => x.deletion().map(Deletion::encode),
        }
    }

    /// Reads the state's `deleted` field into this object, and checks a
    /// counter's against the entries it holds. What a delete saw may be
    /// more than the state holds (a delta, or a state whose other parts
    /// are yet to come): merging checks it against both sides
    /// ([`Object::check_merge`]).
    fn attach_deletion(&mut self, at: &At<'_>) -> Result<(), SnapshotError> {
        let checked = match self {
            Object::GCounter(c) => {
                c.set_deletion(Some(Box::new(Deletion::decode(at)?)));
                c.check_deletion()
            }
            Object::PnCounter(c) => {
                c.set_deletion(Some(Box::new(Deletion::decode(at)?)));
                c.check_deletion()
            }
            Object::LwwRegister(x) => {
                x.set_deletion(Some(Box::new(Deletion::decode(at)?)));
                Ok(())
            }
            Object::OrSet(x) => {
                x.set_deletion(Some(Box::new(Deletion::decode(at)?)));
                Ok(())
            }
            Object::Rga(x) => {
                x.set_deletion(Some(Box::new(Deletion::decode(at)?)));
                Ok(())
            }
            Object::Map(x) => {
                x.set_deletion(Some(Box::new(Deletion::decode(at)?)));
                Ok(())
            }
            Object::BoundedCounter(x) => {
                x.set_deletion(Some(Box::new(Deletion::decode(at)?)));
                x.check_deletion(None)
            }
        };
        checked.map_err(|e| at.causal(e))
    }

    /// The replicas of which `self` (incoming) holds events that `held`
    /// lacks: whose new dots merging it would introduce.
    pub fn new_replicas(&self, held: Option<&Object>) -> Vec<crate::ReplicaId> {
        use crate::context::CausalContext;
        let empty = CausalContext::new();
        let ctx = |o: Option<&Object>| -> Option<CausalContext> {
            Some(match o? {
                Object::LwwRegister(x) => x.context().clone(),
                Object::OrSet(x) => x.context().clone(),
                Object::Rga(x) => x.context().clone(),
                Object::Map(x) => x.context().clone(),
                _ => return None,
            })
        };
        match self {
            Object::GCounter(c) => {
                let vv = held.map(Object::version).unwrap_or_default();
                c.entries()
                    .filter(|(r, e)| e.seq > vv.get(r))
                    .map(|(r, _)| r.clone())
                    .collect()
            }
            Object::PnCounter(c) => {
                let vv = held.map(Object::version).unwrap_or_default();
                c.entries()
                    .filter(|(r, e)| e.seq > vv.get(r))
                    .map(|(r, _)| r.clone())
                    .collect()
            }
            Object::BoundedCounter(c) => {
                let vv = held.map(Object::version).unwrap_or_default();
                c.entries()
                    .filter(|(r, e)| e.seq > vv.get(r))
                    .map(|(r, _)| r.clone())
                    .collect()
            }
            _ => {
                let mine = ctx(Some(self)).unwrap_or_default();
                let theirs = ctx(held.filter(|h| h.ty() == self.ty()));
                mine.subtract(theirs.as_ref().unwrap_or(&empty))
                    .iter()
                    .map(|(r, _)| r.clone())
                    .collect()
            }
        }
    }

    /// True when this object's version is at or after `vv` (it has seen
    /// everything `vv` has), without building its version vector.
    pub fn has_seen(&self, vv: &VersionVector) -> bool {
        let seen = |r: &crate::ReplicaId| match self {
            Object::GCounter(c) => c.seq_of(r),
            Object::PnCounter(c) => c.seq_of(r),
            Object::LwwRegister(x) => x.context().prefix(r),
            Object::OrSet(x) => x.context().prefix(r),
            Object::Rga(x) => x.context().prefix(r),
            Object::Map(x) => x.context().prefix(r),
            Object::BoundedCounter(c) => c.seq_of(r),
        };
        vv.iter().all(|(r, s)| seen(r) >= s)
    }

    pub fn version(&self) -> VersionVector {
        each!(self, x => x.version())
    }

    /// Per replica, the greatest seq of its events here ([`Object::max_seq`]
    /// of each): unlike [`Object::version`], past any gap (a delta holds
    /// events that do not start at 1).
    pub fn max_seqs(&self) -> VersionVector {
        let cc = match self {
            Object::GCounter(_) | Object::PnCounter(_) | Object::BoundedCounter(_) => {
                return self.version();
            }
            Object::LwwRegister(x) => x.context(),
            Object::OrSet(x) => x.context(),
            Object::Rga(x) => x.context(),
            Object::Map(x) => x.context(),
        };
        cc.iter()
            .map(|(r, ranges)| (r.clone(), ranges.max()))
            .collect()
    }

    /// The greatest seq of `replica`'s events in this object (0: none): the
    /// last one it made here, since each object numbers a replica's events
    /// 1, 2, 3...
    pub fn max_seq(&self, replica: &crate::ReplicaId) -> u64 {
        match self {
            Object::GCounter(c) => c.seq_of(replica),
            Object::PnCounter(c) => c.seq_of(replica),
            Object::LwwRegister(x) => x.context().max_seq(replica),
            Object::OrSet(x) => x.context().max_seq(replica),
            Object::Rga(x) => x.context().max_seq(replica),
            Object::Map(x) => x.context().max_seq(replica),
            Object::BoundedCounter(c) => c.seq_of(replica),
        }
    }

    pub fn delta_since(&self, vv: &VersionVector) -> Object {
        match self {
            Object::GCounter(x) => Object::GCounter(x.delta_since(vv)),
            Object::PnCounter(x) => Object::PnCounter(x.delta_since(vv)),
            Object::LwwRegister(x) => Object::LwwRegister(x.delta_since(vv)),
            Object::OrSet(x) => Object::OrSet(x.delta_since(vv)),
            Object::Rga(x) => Object::Rga(x.delta_since(vv)),
            Object::Map(x) => Object::Map(x.delta_since(vv)),
            Object::BoundedCounter(x) => Object::BoundedCounter(x.delta_since(vv)),
        }
    }

    /// Splits into deltas of about `budget` bytes of snapshot text each,
    /// for messages under a size limit: each part is a valid delta on its
    /// own, and merging all of them (in order, for text, whose characters
    /// refer to earlier ones) gives `self`. A register and a bounded
    /// counter are never split (one part, whatever its size: a bounded
    /// counter's rights are checked over all its entries at once).
    pub fn parts(&self, budget: usize) -> Vec<Object> {
        match self {
            Object::GCounter(x) => x.parts(budget).into_iter().map(Object::GCounter).collect(),
            Object::PnCounter(x) => x.parts(budget).into_iter().map(Object::PnCounter).collect(),
            Object::LwwRegister(_) | Object::BoundedCounter(_) => vec![self.clone()],
            Object::OrSet(x) => x.parts(budget).into_iter().map(Object::OrSet).collect(),
            Object::Rga(x) => x.parts(budget).into_iter().map(Object::Rga).collect(),
            Object::Map(x) => x.parts(budget).into_iter().map(Object::Map).collect(),
        }
    }

    pub fn covered_by(&self, vv: &VersionVector) -> bool {
        each!(self, x => x.covered_by(vv))
    }

    /// The value as JSON: a number, a value (null when never written), an
    /// array of members, the text, or an object of keys.
    pub fn value_json(&self) -> Value {
        each!(self, x => x.value_json())
    }

    /// The `state` part of the snapshot form (with `deleted` when the
    /// object has seen deletes).
    pub fn state_json(&self) -> Value {
        let mut state = each!(self, x => x.encode());
        if let (Some(d), Value::Object(map)) = (self.deletion_json(), &mut state) {
            map.insert("deleted".into(), d);
        }
        state
    }

    /// [`Object::state_json`] as text, added to `out` (counters are written
    /// straight, without a tree of values: they travel on every change).
    pub fn write_state(&self, out: &mut String) {
        match self {
            Object::GCounter(c) => c.write_text(out),
            Object::PnCounter(c) => c.write_text(out),
            Object::Rga(t) => t.write_text(out),
            Object::OrSet(s) => s.write_text(out),
            _ => {
                out.push_str(&self.state_json().to_string());
                return;
            }
        }
        if let Some(d) = self.deletion_json()
            && out.ends_with('}')
        {
            out.pop();
            out.push_str(",\"deleted\":");
            out.push_str(&d.to_string());
            out.push('}');
        }
    }

    pub(crate) fn decode_state(ty: CrdtType, at: &At<'_>) -> Result<Object, SnapshotError> {
        if let Some(state) = at.value.as_object()
            && state.contains_key("deleted")
        {
            // The type's own fields, then its deletes.
            let mut own = state.clone();
            own.remove("deleted");
            let own = Value::Object(own);
            let inner = At {
                value: &own,
                path: at.path.clone(),
                delta: at.delta,
                track: at.track,
            };
            let mut o = Self::decode_state(ty, &inner)?;
            o.attach_deletion(&at.field("deleted")?)?;
            return Ok(o);
        }
        if at.track {
            // First without building a path per field; a failure decodes
            // again with paths, so the error names the place.
            let fast = At {
                value: at.value,
                path: String::new(),
                delta: at.delta,
                track: false,
            };
            if let Ok(o) = Self::decode_with(ty, &fast) {
                return Ok(o);
            }
        }
        Self::decode_with(ty, at)
    }

    /// A state decoded straight from its JSON text, for the types that have
    /// such a decoder (the counters); `None` otherwise or when anything is
    /// off, and the caller decodes the value (which names the problem).
    pub(crate) fn decode_state_text(ty: CrdtType, text: &str) -> Option<Object> {
        match ty {
            CrdtType::GCounter => crate::GCounter::decode_text(text).map(Object::GCounter),
            CrdtType::PnCounter => crate::PnCounter::decode_text(text).map(Object::PnCounter),
            _ => None,
        }
    }

    fn decode_with(ty: CrdtType, at: &At<'_>) -> Result<Object, SnapshotError> {
        Ok(match ty {
            CrdtType::GCounter => Object::GCounter(GCounter::decode(at)?),
            CrdtType::PnCounter => Object::PnCounter(PnCounter::decode(at)?),
            CrdtType::LwwRegister => Object::LwwRegister(LwwRegister::decode(at)?),
            CrdtType::OrSet => Object::OrSet(OrSet::decode(at)?),
            CrdtType::Rga => Object::Rga(Rga::decode(at)?),
            CrdtType::Map => Object::Map(LwwMap::decode(at)?),
            CrdtType::BoundedCounter => Object::BoundedCounter(BoundedCounter::decode(at)?),
        })
    }
}

/// Why a delete that saw `seen` is impossible where only `held` was seen:
/// it saw an event that is not here.
fn unseen_by(seen: &CausalContext, held: &CausalContext) -> Result<(), String> {
    match seen.subtract(held).iter().next() {
        None => Ok(()),
        Some((r, ranges)) => Err(format!(
            "a delete saw event {r}:{} of this object, which it does not have",
            ranges.as_slice()[0].0
        )),
    }
}

/// The causal context of a type that has one.
fn context_of(o: &Object) -> Option<&CausalContext> {
    match o {
        Object::GCounter(_) | Object::PnCounter(_) | Object::BoundedCounter(_) => None,
        Object::LwwRegister(x) => Some(x.context()),
        Object::OrSet(x) => Some(x.context()),
        Object::Rga(x) => Some(x.context()),
        Object::Map(x) => Some(x.context()),
    }
}

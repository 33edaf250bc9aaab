//! Add-wins observed-remove set of JSON values.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::clock::{Dot, ReplicaId, VersionVector};
use crate::codec::{At, Codec, canonical, context_json, dot_json};
use crate::context::CausalContext;
use crate::deletion::{Deleted, Deletion};
use crate::error::{OpError, SnapshotError};
use crate::lww::delta_context;
use crate::traits::Crdt;

/// An add-wins observed-remove set.
///
/// Each add tags the element with a fresh dot; a remove drops the dots it has
/// observed and records one event of its own. A merge keeps a dot that either
/// side still holds unless the other side has seen it (it is in the other's
/// causal context) and dropped it. So a concurrent add survives a remove, and
/// removed elements leave no tombstones: only the causal context remembers
/// them, as ranges.
///
/// ```
/// use crdt::{Crdt, OrSet, ReplicaId};
/// use serde_json::json;
/// let (a, b) = (ReplicaId::new("agent-1").unwrap(), ReplicaId::new("agent-2").unwrap());
/// let mut x = OrSet::default();
/// x.add(&a, json!("task-1")).unwrap();
/// let mut y = x.clone();
/// x.remove(&a, &json!("task-1")).unwrap();   // agent-1 completes it...
/// y.add(&b, json!("task-1")).unwrap();       // ...while agent-2 re-adds it
/// x.merge(&y);
/// assert!(x.contains(&json!("task-1"))); // add wins
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrSet {
    /// Canonical JSON text -> element.
    elements: BTreeMap<String, Element>,
    context: CausalContext,
    deleted: Deleted<CausalContext>,
}

/// One member and the dots that keep it alive.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub value: Value,
    pub dots: BTreeSet<Dot>,
}

impl OrSet {
    /// Adds `value` as `replica`. Returns false when it was already a member
    /// (the add still counts: it refreshes the element's dot).
    pub fn add(&mut self, replica: &ReplicaId, value: Value) -> Result<bool, OpError> {
        self.add_delta(replica, value).map(|(fresh, _)| fresh)
    }

    /// [`OrSet::add`], also returning the change as a delta: the member
    /// with its new dot, and a context of that dot and the dots it replaced.
    pub fn add_delta(
        &mut self,
        replica: &ReplicaId,
        value: Value,
    ) -> Result<(bool, OrSet), OpError> {
        let dot = Dot::new(replica.clone(), self.context.fresh(replica, 1)?);
        self.context.add(&dot);
        let key = canonical(&value);
        let mut delta = OrSet::default();
        delta.context.add(&dot);
        let old = self.elements.insert(
            key.clone(),
            Element {
                value: value.clone(),
                dots: BTreeSet::from([dot.clone()]),
            },
        );
        let fresh = old.is_none();
        for d in old.iter().flat_map(|e| e.dots.iter()) {
            delta.context.add(d);
        }
        delta.elements.insert(
            key,
            Element {
                value,
                dots: BTreeSet::from([dot]),
            },
        );
        Ok((fresh, delta))
    }

    /// Removes `value` as `replica`. Returns false when it was not a member
    /// (nothing changes then).
    pub fn remove(&mut self, replica: &ReplicaId, value: &Value) -> Result<bool, OpError> {
        self.remove_delta(replica, value).map(|d| d.is_some())
    }

    /// [`OrSet::remove`], also returning the change as a delta (a context of
    /// the remove's dot and the dots it dropped); `None` when `value` was
    /// not a member.
    pub fn remove_delta(
        &mut self,
        replica: &ReplicaId,
        value: &Value,
    ) -> Result<Option<OrSet>, OpError> {
        let key = canonical(value);
        if !self.elements.contains_key(&key) {
            return Ok(None);
        }
        // The remove is an event too, so versions show that something changed.
        let dot = Dot::new(replica.clone(), self.context.fresh(replica, 1)?);
        let mut delta = OrSet::default();
        if let Some(e) = self.elements.remove(&key) {
            for d in &e.dots {
                delta.context.add(d);
            }
        }
        self.context.add(&dot);
        delta.context.add(&dot);
        Ok(Some(delta))
    }

    pub fn contains(&self, value: &Value) -> bool {
        self.elements.contains_key(&canonical(value))
    }

    /// Members in canonical order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.elements.values().map(|e| &e.value)
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.elements.values()
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Why merging `other` would be impossible, if it would: a dot that
    /// tags one member here and another in `other`.
    pub fn check_merge(&self, other: &OrSet) -> Result<(), String> {
        let mut live: Option<std::collections::HashMap<&Dot, &str>> = None;
        for (key, theirs) in &other.elements {
            let mine = self.elements.get(key);
            for d in &theirs.dots {
                if mine.is_some_and(|m| m.dots.contains(d)) || !self.context.contains(d) {
                    continue;
                }
                // Seen here and not on this member: removed (fine), or
                // live on another member (impossible). Built once, if needed.
                let map = live.get_or_insert_with(|| {
                    self.elements
                        .iter()
                        .flat_map(|(k, e)| e.dots.iter().map(move |d| (d, k.as_str())))
                        .collect()
                });
                if let Some(other_key) = map.get(d) {
                    return Err(format!(
                        "dot {d} tags {other_key} here but {key} in the change: one add cannot add two members"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Splits into deltas of about `budget` bytes each, in dot order: part
    /// `i` holds the dots of an interval of `(replica, seq)` (its members'
    /// dots and the removals seen there), so each part is a valid delta on
    /// its own, merging all of them in any order gives `self`, and merged in
    /// order they advance the receiver's version as they arrive.
    pub fn parts(&self, budget: usize) -> Vec<OrSet> {
        let mut dots: Vec<(&Dot, &str)> = self
            .elements
            .iter()
            .flat_map(|(k, e)| e.dots.iter().map(move |d| (d, k.as_str())))
            .collect();
        dots.sort_unstable();
        let mut out = Vec::new();
        let mut part = OrSet::default();
        let mut start: Option<&Dot> = None;
        let mut size = 0;
        for (dot, key) in dots {
            let weight = key.len() + dot.replica.as_str().len() + 24;
            if size > 0 && size + weight > budget {
                part.context = self.context.between(start, Some(dot));
                out.push(std::mem::take(&mut part));
                start = Some(dot);
                size = 0;
            }
            size += weight;
            let e = &self.elements[key];
            part.elements
                .entry(key.to_string())
                .or_insert_with(|| Element {
                    value: e.value.clone(),
                    dots: BTreeSet::new(),
                })
                .dots
                .insert(dot.clone());
        }
        part.context = self.context.between(start, None);
        part.deleted = self.deleted.clone();
        out.push(part);
        out
    }

    /// Deletes the object as `replica` at wall time `now_ms`: removes
    /// everything here, as one event, and records what the delete saw, so
    /// a change made concurrently elsewhere survives it.
    pub fn delete_object(&mut self, replica: &ReplicaId, now_ms: u64) -> Result<(), OpError> {
        self.elements.clear();
        crate::deletion::delete_seen(&mut self.context, &mut self.deleted, replica, now_ms)
    }

    fn live_dots(&self) -> impl Iterator<Item = &Dot> {
        self.elements.values().flat_map(|e| e.dots.iter())
    }
}

impl Crdt for OrSet {
    fn merge(&mut self, other: &Self) {
        let empty = BTreeSet::new();
        // A dot here is dropped only when `other` has seen it: when the
        // contexts share no dot (a delta of new events, as most are), no
        // member here can lose one, and the walk over them is skipped.
        if self.context.intersects(&other.context) {
            for (key, mine) in self.elements.iter_mut() {
                let theirs = other.elements.get(key).map_or(&empty, |e| &e.dots);
                mine.dots
                    .retain(|d| theirs.contains(d) || !other.context.contains(d));
            }
        }
        for (key, theirs) in &other.elements {
            let fresh: Vec<&Dot> = theirs
                .dots
                .iter()
                .filter(|d| !self.context.contains(d))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let mine = self.elements.entry(key.clone()).or_insert_with(|| Element {
                value: theirs.value.clone(),
                dots: BTreeSet::new(),
            });
            mine.dots.extend(fresh.into_iter().cloned());
        }
        self.elements.retain(|_, e| !e.dots.is_empty());
        self.context.union(&other.context);
        Deletion::merge(&mut self.deleted, &other.deleted);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    fn delta_since(&self, vv: &VersionVector) -> Self {
        let elements = self
            .elements
            .iter()
            .filter_map(|(k, e)| {
                let dots: BTreeSet<Dot> =
                    e.dots.iter().filter(|d| !vv.contains(d)).cloned().collect();
                (!dots.is_empty()).then(|| {
                    (
                        k.clone(),
                        Element {
                            value: e.value.clone(),
                            dots,
                        },
                    )
                })
            })
            .collect();
        let context = delta_context(&self.context, vv, self.live_dots());
        OrSet {
            elements,
            context,
            deleted: Deletion::delta_since(&self.deleted, vv),
        }
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.context.covered_by(vv)
    }

    fn value_json(&self) -> Value {
        Value::Array(self.values().cloned().collect())
    }
}

impl OrSet {
    /// [`Codec::encode`] written straight as text, without a tree of values
    /// (a large set is written on every change to it): each member's value
    /// is its canonical JSON text, which is its key.
    pub(crate) fn write_text(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("{\"context\":");
        crate::codec::context_text(&self.context, out);
        out.push_str(",\"elements\":[");
        for (i, (key, e)) in self.elements.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"dots\":[");
            for (j, d) in e.dots.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push('[');
                crate::codec::push_json_str(out, d.replica.as_str());
                let _ = write!(out, ",{}]", d.seq);
            }
            out.push_str("],\"value\":");
            out.push_str(key);
            out.push('}');
        }
        out.push_str("]}");
    }
}

impl Codec for OrSet {
    fn encode(&self) -> Value {
        let elements: Vec<Value> = self
            .elements
            .values()
            .map(|e| json!({"value": e.value, "dots": e.dots.iter().map(dot_json).collect::<Vec<_>>()}))
            .collect();
        json!({"context": context_json(&self.context), "elements": elements})
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["context", "elements"], &[])?;
        let context = at.field("context")?.context()?;
        let mut elements = BTreeMap::new();
        let mut seen_dots = BTreeSet::new();
        for e in at.field("elements")?.array()? {
            e.fields(&["value", "dots"], &[])?;
            let value = e.field("value")?.user_value()?;
            let mut dots = BTreeSet::new();
            let dots_at = e.field("dots")?;
            for d in dots_at.array()? {
                let dot = d.dot()?;
                if !context.contains(&dot) {
                    return Err(d.causal(format!("dot {dot} is not in the context")));
                }
                if !seen_dots.insert(dot.clone()) {
                    return Err(d.causal(format!("dot {dot} tags more than one element")));
                }
                dots.insert(dot);
            }
            if dots.is_empty() {
                return Err(dots_at.causal("a member needs at least one dot"));
            }
            let key = canonical(&value);
            if elements.insert(key, Element { value, dots }).is_some() {
                return Err(e.causal("the same value appears twice"));
            }
        }
        Ok(OrSet {
            elements,
            context,
            deleted: None,
        })
    }
}

crate::deletion::deletion_access!(OrSet, CausalContext);

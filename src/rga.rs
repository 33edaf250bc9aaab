//! Replicated growable array of Unicode characters: collaborative text.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::clock::{Dot, ReplicaId, VersionVector};
use crate::codec::{At, Codec, context_json, dot_json};
use crate::context::CausalContext;
use crate::error::{OpError, SnapshotError};
use crate::traits::Crdt;

/// Ordered text where every character has a unique id (a dot).
///
/// Each character is inserted after an *origin* (the character before it
/// when it was typed, or the start) and carries a Lamport number greater than
/// every number its replica had seen. Characters with the same origin are
/// ordered by descending `(lamport, replica, seq)`, which every replica
/// computes alike. A run typed in one go chains each character to the one
/// before, so concurrent runs at one place never interleave character by
/// character. Deletes keep the character as a tombstone, marked with the
/// dot of the delete.
///
/// Positions count Unicode characters (code points), not bytes.
///
/// ```
/// use crdt::{Crdt, Rga, ReplicaId};
/// let (a, b) = (ReplicaId::new("agent-1").unwrap(), ReplicaId::new("agent-2").unwrap());
/// let mut x = Rga::default();
/// x.insert(&a, 0, "Hello!").unwrap();
/// let mut y = x.clone();
/// x.insert(&a, 5, ", World").unwrap();
/// y.delete(&b, 5, 1).unwrap(); // remove the "!"
/// x.merge(&y);
/// assert_eq!(x.text(), "Hello, World");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rga {
    /// Every character ever inserted, in document order, tombstones included.
    elems: Vec<Elem>,
    context: CausalContext,
    max_lamport: u64,
}

/// One character of an [`Rga`].
#[derive(Clone, Debug, PartialEq)]
pub struct Elem {
    pub id: Dot,
    pub lamport: u64,
    /// The character it was inserted after; `None` for the start of the text.
    pub origin: Option<Dot>,
    pub ch: char,
    /// The delete that removed it (the least dot when several did).
    pub deleted: Option<Dot>,
}

impl Elem {
    fn key(&self) -> (u64, &ReplicaId, u64) {
        (self.lamport, &self.id.replica, self.id.seq)
    }
}

impl Rga {
    /// Inserts `text` as `replica` before the character at `pos` (`pos == len` appends).
    pub fn insert(&mut self, replica: &ReplicaId, pos: usize, text: &str) -> Result<(), OpError> {
        let len = self.len();
        if pos > len {
            return Err(OpError::PositionOutOfRange { pos, len });
        }
        // Right after the visible character before `pos`, or at the very start.
        let (mut origin, mut at) = if pos == 0 {
            (None, 0)
        } else {
            let i = self.visible_index(pos - 1);
            (Some(self.elems[i].id.clone()), i + 1)
        };
        let new: Vec<Elem> = text
            .chars()
            .map(|ch| {
                let id = self.context.next_dot(replica);
                self.context.add(&id);
                self.max_lamport += 1;
                let e = Elem {
                    id: id.clone(),
                    lamport: self.max_lamport,
                    origin: origin.replace(id),
                    ch,
                    deleted: None,
                };
                at += 1;
                e
            })
            .collect();
        // The new characters have the greatest Lamport numbers, so they go right
        // after their origin, before any sibling.
        let start = at - new.len();
        self.elems.splice(start..start, new);
        Ok(())
    }

    /// Appends `text` at the end.
    pub fn append(&mut self, replica: &ReplicaId, text: &str) -> Result<(), OpError> {
        self.insert(replica, self.len(), text)
    }

    /// Deletes `count` characters starting at `pos`, as one event of `replica`.
    pub fn delete(&mut self, replica: &ReplicaId, pos: usize, count: usize) -> Result<(), OpError> {
        let len = self.len();
        let end = pos.saturating_add(count);
        if end > len {
            return Err(OpError::RangeOutOfRange { pos, end, len });
        }
        if count == 0 {
            return Ok(());
        }
        let dot = self.context.next_dot(replica);
        self.context.add(&dot);
        let visible = self.elems.iter_mut().filter(|e| e.deleted.is_none());
        for e in visible.skip(pos).take(count) {
            e.deleted = Some(dot.clone());
        }
        Ok(())
    }

    /// Index in `elems` of the `n`-th visible character.
    fn visible_index(&self, n: usize) -> usize {
        self.elems
            .iter()
            .enumerate()
            .filter(|(_, e)| e.deleted.is_none())
            .nth(n)
            .map(|(i, _)| i)
            .expect("position checked against len")
    }

    /// The text without tombstones.
    pub fn text(&self) -> String {
        self.elems
            .iter()
            .filter(|e| e.deleted.is_none())
            .map(|e| e.ch)
            .collect()
    }

    /// Number of visible characters.
    pub fn len(&self) -> usize {
        self.elems.iter().filter(|e| e.deleted.is_none()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every character in document order, tombstones included.
    pub fn elements(&self) -> &[Elem] {
        &self.elems
    }

    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Places a character that is not here yet, searching from `start`
    /// (just after its origin). Returns where it went.
    fn integrate_at(&mut self, e: Elem, start: usize) -> usize {
        let mut i = start;
        while i < self.elems.len() && self.elems[i].key() > e.key() {
            i += 1;
        }
        self.max_lamport = self.max_lamport.max(e.lamport);
        self.elems.insert(i, e);
        i
    }

    fn index(&self) -> HashMap<Dot, usize> {
        self.elems
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect()
    }
}

impl Crdt for Rga {
    fn merge(&mut self, other: &Self) {
        if self.elems.is_empty() && self.context.is_empty() {
            *self = other.clone();
            return;
        }
        let mut index = self.index();
        let mut fresh = Vec::new();
        for e in &other.elems {
            match index.get(&e.id) {
                Some(&i) => {
                    let mine = &mut self.elems[i].deleted;
                    *mine = match (mine.take(), &e.deleted) {
                        (Some(a), Some(b)) => Some(a.min(b.clone())),
                        (a, b) => a.or_else(|| b.clone()),
                    };
                }
                None => fresh.push(e),
            }
        }
        // Origins precede their characters in `other`'s order, so each character
        // is placed after its origin. Runs chain each character to the one just
        // placed; the index is rebuilt only when a lookup needs it.
        let mut last: Option<(&Dot, usize)> = None;
        let mut stale = false;
        for e in fresh {
            let start = match (&e.origin, last) {
                (None, _) => 0,
                (Some(o), Some((l, at))) if o == l => at + 1,
                (Some(o), _) => {
                    if stale {
                        index = self.index();
                    }
                    // A missing origin means a delta merged into a replica behind
                    // its base (see `delta_since`); place it at the end rather than panic.
                    index.get(o).map_or(self.elems.len(), |&i| i + 1)
                }
            };
            let at = self.integrate_at(e.clone(), start);
            last = Some((&e.id, at));
            stale = true;
        }
        self.context.union(&other.context);
        self.max_lamport = self.max_lamport.max(other.max_lamport);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    /// New characters and new deletes since `vv`. Merge it only into a replica
    /// at or after `vv`: it leaves out the characters `vv` already covers.
    fn delta_since(&self, vv: &VersionVector) -> Self {
        let elems: Vec<Elem> = self
            .elems
            .iter()
            .filter(|e| !vv.contains(&e.id) || e.deleted.as_ref().is_some_and(|d| !vv.contains(d)))
            .cloned()
            .collect();
        let max_lamport = elems.iter().map(|e| e.lamport).max().unwrap_or(0);
        Rga {
            elems,
            context: self.context.minus(vv),
            max_lamport,
        }
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.context.covered_by(vv)
    }

    fn value_json(&self) -> Value {
        Value::String(self.text())
    }
}

/// Consecutive characters typed in one go by one replica, stored as one run.
pub struct Run<'a> {
    pub elems: &'a [Elem],
}

impl Rga {
    /// The characters grouped into runs: same replica, consecutive seqs and
    /// Lamport numbers, each chained to the one before.
    pub fn runs(&self) -> Vec<Run<'_>> {
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=self.elems.len() {
            let continues = i < self.elems.len() && {
                let (p, e) = (&self.elems[i - 1], &self.elems[i]);
                e.id.replica == p.id.replica
                    && e.id.seq == p.id.seq + 1
                    && e.lamport == p.lamport + 1
                    && e.origin.as_ref() == Some(&p.id)
            };
            if !continues {
                runs.push(Run {
                    elems: &self.elems[start..i],
                });
                start = i;
            }
        }
        runs
    }
}

impl Codec for Rga {
    fn encode(&self) -> Value {
        let runs: Vec<Value> = self
            .runs()
            .iter()
            .map(|run| {
                let first = &run.elems[0];
                let text: String = run.elems.iter().map(|e| e.ch).collect();
                // Deleted spans: [offset, length, delete dot].
                let mut deleted: Vec<(usize, usize, &Dot)> = Vec::new();
                for (i, e) in run.elems.iter().enumerate() {
                    let Some(d) = &e.deleted else { continue };
                    match deleted.last_mut() {
                        Some((off, len, dd)) if *off + *len == i && *dd == d => *len += 1,
                        _ => deleted.push((i, 1, d)),
                    }
                }
                let mut run_json = json!({
                    "id": dot_json(&first.id),
                    "lamport": first.lamport,
                    "origin": first.origin.as_ref().map_or(Value::Null, dot_json),
                    "text": text,
                });
                if !deleted.is_empty() {
                    run_json["deleted"] = deleted
                        .iter()
                        .map(|(o, l, d)| json!([o, l, dot_json(d)]))
                        .collect();
                }
                run_json
            })
            .collect();
        json!({"context": context_json(&self.context), "runs": runs})
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["context", "runs"], &[])?;
        let context = at.field("context")?.context()?;
        let mut elems: Vec<Elem> = Vec::new();
        let mut lamports: HashMap<Dot, u64> = HashMap::new();
        let mut ids: HashSet<Dot> = HashSet::new();
        for run in at.field("runs")?.array()? {
            run.fields(&["id", "lamport", "origin", "text"], &["deleted"])?;
            let id = run.field("id")?.dot()?;
            let lamport = run.field("lamport")?.positive()?;
            let origin_at = run.field("origin")?;
            let origin = if origin_at.value.is_null() {
                None
            } else {
                Some(origin_at.dot()?)
            };
            if let Some(o) = &origin {
                match lamports.get(o) {
                    None => {
                        return Err(origin_at
                            .causal(format!("origin {o} does not come earlier in the text")));
                    }
                    Some(&ol) if ol >= lamport => {
                        return Err(run.causal(format!(
                            "lamport {lamport} is not greater than its origin's ({ol})"
                        )));
                    }
                    _ => {}
                }
            }
            let text_at = run.field("text")?;
            let text: Vec<char> = text_at.str()?.chars().collect();
            if text.is_empty() {
                return Err(text_at.shape("a non-empty string"));
            }
            let mut deleted: Vec<Option<Dot>> = vec![None; text.len()];
            if let Ok(spans) = run.field("deleted") {
                let mut next_free = 0;
                for span in spans.array()? {
                    let items = match span.value.as_array().map(Vec::len) {
                        Some(3) => span.array()?,
                        _ => return Err(span.shape("a span [offset, length, dot]")),
                    };
                    let off = items[0].u64()? as usize;
                    let len = items[1].positive()? as usize;
                    let dot = items[2].dot()?;
                    if off < next_free || off.saturating_add(len) > text.len() {
                        return Err(span.shape(&format!(
                            "sorted, non-overlapping spans within the run's {} characters",
                            text.len()
                        )));
                    }
                    if !context.contains(&dot) {
                        return Err(items[2].causal(format!("delete {dot} is not in the context")));
                    }
                    for slot in &mut deleted[off..off + len] {
                        *slot = Some(dot.clone());
                    }
                    next_free = off + len;
                }
            }
            let mut prev = origin;
            for (i, (ch, del)) in text.into_iter().zip(deleted).enumerate() {
                let seq = id
                    .seq
                    .checked_add(i as u64)
                    .ok_or_else(|| run.shape("seq below 2^64"))?;
                let eid = Dot::new(id.replica.clone(), seq);
                if !context.contains(&eid) {
                    return Err(run.causal(format!("character {eid} is not in the context")));
                }
                if !ids.insert(eid.clone()) {
                    return Err(run.causal(format!("character {eid} appears twice")));
                }
                let l = lamport + i as u64;
                lamports.insert(eid.clone(), l);
                elems.push(Elem {
                    id: eid.clone(),
                    lamport: l,
                    origin: prev.replace(eid),
                    ch,
                    deleted: del,
                });
            }
        }
        let max_lamport = elems.iter().map(|e| e.lamport).max().unwrap_or(0);
        Ok(Rga {
            elems,
            context,
            max_lamport,
        })
    }
}

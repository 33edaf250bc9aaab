//! A map of string keys to JSON values, merged key by key.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::clock::{Dot, Hlc, ReplicaId, VersionVector};
use crate::codec::{At, Codec, context_json, dot_json, hlc_json};
use crate::context::CausalContext;
use crate::deletion::{Deleted, Deletion};
use crate::error::{OpError, SnapshotError};
use crate::lww::delta_context;
use crate::traits::Crdt;

/// A map whose keys merge one by one: each key is a last-writer-wins
/// register (the same hybrid clock and tie-break as [`crate::LwwRegister`]),
/// and removing a key is observed-remove, as in [`crate::OrSet`].
///
/// A `put` tags its write with a fresh dot and replaces the writes of that
/// key it has seen, so a write made after seeing another wins. Concurrent
/// writes to one key are all kept until a later write replaces them; the
/// greatest `(timestamp, dot)` is the value. An `unset` drops the writes it
/// has seen and records one event of its own, so a `put` concurrent with it
/// keeps the key. One causal context serves every key: removed keys leave
/// no tombstones.
///
/// ```
/// use crdt::{Crdt, LwwMap, ReplicaId};
/// use serde_json::json;
/// let (a, b) = (ReplicaId::new("agent-1").unwrap(), ReplicaId::new("agent-2").unwrap());
/// let mut x = LwwMap::default();
/// let mut y = LwwMap::default();
/// x.put(&a, "ai-review", json!(true), 1_000).unwrap();
/// y.put(&b, "dark-mode", json!(false), 1_001).unwrap();
/// x.merge(&y);
/// assert_eq!(x.value_json(), json!({"ai-review": true, "dark-mode": false}));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LwwMap {
    entries: BTreeMap<String, BTreeMap<Dot, MapWrite>>,
    context: CausalContext,
    deleted: Deleted<CausalContext>,
}

/// One write of a key.
#[derive(Clone, Debug, PartialEq)]
pub struct MapWrite {
    pub value: Value,
    pub ts: Hlc,
}

impl LwwMap {
    /// Writes `value` under `key` as `replica` at wall time `now_ms`
    /// (milliseconds since the epoch). Returns the timestamp the write got.
    pub fn put(
        &mut self,
        replica: &ReplicaId,
        key: &str,
        value: Value,
        now_ms: u64,
    ) -> Result<Hlc, OpError> {
        let seen = self
            .entries
            .get(key)
            .and_then(|w| w.values().map(|w| w.ts).max())
            .unwrap_or_default();
        let ts = seen.next(now_ms);
        let dot = Dot::new(replica.clone(), self.context.fresh(replica, 1)?);
        self.context.add(&dot);
        let writes = self.entries.entry(key.to_string()).or_default();
        writes.clear();
        writes.insert(dot, MapWrite { value, ts });
        Ok(ts)
    }

    /// Removes `key` as `replica`. Returns false when it was not here
    /// (nothing changes then).
    pub fn unset(&mut self, replica: &ReplicaId, key: &str) -> Result<bool, OpError> {
        if !self.entries.contains_key(key) {
            return Ok(false);
        }
        // The removal is an event too, so versions show that something changed.
        let dot = Dot::new(replica.clone(), self.context.fresh(replica, 1)?);
        self.entries.remove(key);
        self.context.add(&dot);
        Ok(true)
    }

    /// The winning write of `key`: the greatest (timestamp, dot).
    pub fn winner(&self, key: &str) -> Option<(&Dot, &MapWrite)> {
        self.entries.get(key).and_then(winner)
    }

    /// The writes of `key` no other write of it has observed.
    pub fn writes_of(&self, key: &str) -> Option<&BTreeMap<Dot, MapWrite>> {
        self.entries.get(key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.winner(key).map(|(_, w)| &w.value)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Each key with the writes no other write of it has observed (more
    /// than one while a conflict on that key is open).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &BTreeMap<Dot, MapWrite>)> {
        self.entries.iter().map(|(k, w)| (k.as_str(), w))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Why merging `other` would be impossible, if it would: a dot that is
    /// one write here and another (another key, value or time) in `other`.
    pub fn check_merge(&self, other: &LwwMap) -> Result<(), String> {
        let mut live: Option<BTreeMap<&Dot, (&str, &MapWrite)>> = None;
        for (key, theirs) in &other.entries {
            for (d, w) in theirs {
                if !self.context.contains(d) {
                    continue;
                }
                // Seen here: removed or replaced (fine), or live as another write.
                let map = live.get_or_insert_with(|| {
                    self.entries
                        .iter()
                        .flat_map(|(k, ws)| ws.iter().map(move |(d, w)| (d, (k.as_str(), w))))
                        .collect()
                });
                if let Some((mine_key, mine)) = map.get(d)
                    && (*mine_key != key || mine.value != w.value || mine.ts != w.ts)
                {
                    return Err(format!(
                        "write {d} is {mine_key:?} = {} at {} here but {key:?} = {} at {} in the change: one event cannot be two writes",
                        mine.value, mine.ts, w.value, w.ts
                    ));
                }
            }
        }
        Ok(())
    }

    /// Splits into deltas of about `budget` bytes of snapshot text each,
    /// in dot order (as [`crate::OrSet::parts`]): each part holds the
    /// writes of its range of dots and the context of that range, so
    /// merging the parts in any order gives `self`.
    pub fn parts(&self, budget: usize) -> Vec<LwwMap> {
        let mut writes: Vec<(&Dot, &str, &MapWrite)> = self
            .entries
            .iter()
            .flat_map(|(k, ws)| ws.iter().map(move |(d, w)| (d, k.as_str(), w)))
            .collect();
        writes.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        let mut part = LwwMap::default();
        let mut start: Option<&Dot> = None;
        let mut size = 0;
        for (dot, key, w) in writes {
            let weight = key.len() + dot.replica.as_str().len() + w.value.to_string().len() + 60;
            if size > 0 && size + weight > budget {
                part.context = self.context.between(start, Some(dot));
                out.push(std::mem::take(&mut part));
                start = Some(dot);
                size = 0;
            }
            size += weight;
            part.entries
                .entry(key.to_string())
                .or_default()
                .insert(dot.clone(), w.clone());
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
        self.entries.clear();
        crate::deletion::delete_seen(&mut self.context, &mut self.deleted, replica, now_ms)
    }

    fn live_dots(&self) -> impl Iterator<Item = &Dot> {
        self.entries.values().flat_map(|w| w.keys())
    }
}

fn winner(writes: &BTreeMap<Dot, MapWrite>) -> Option<(&Dot, &MapWrite)> {
    writes
        .iter()
        .max_by(|a, b| (a.1.ts, a.0).cmp(&(b.1.ts, b.0)))
}

impl Crdt for LwwMap {
    fn merge(&mut self, other: &Self) {
        let empty = BTreeMap::new();
        // A write here survives when `other` has it too or has never seen it.
        if self.context.intersects(&other.context) {
            for (key, mine) in self.entries.iter_mut() {
                let theirs = other.entries.get(key).unwrap_or(&empty);
                mine.retain(|d, _| theirs.contains_key(d) || !other.context.contains(d));
            }
        }
        for (key, theirs) in &other.entries {
            for (d, w) in theirs {
                if !self.context.contains(d) {
                    self.entries
                        .entry(key.clone())
                        .or_default()
                        .insert(d.clone(), w.clone());
                }
            }
        }
        self.entries.retain(|_, w| !w.is_empty());
        self.context.union(&other.context);
        Deletion::merge(&mut self.deleted, &other.deleted);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    fn delta_since(&self, vv: &VersionVector) -> Self {
        let entries = self
            .entries
            .iter()
            .filter_map(|(k, ws)| {
                let fresh: BTreeMap<Dot, MapWrite> = ws
                    .iter()
                    .filter(|(d, _)| !vv.contains(d))
                    .map(|(d, w)| (d.clone(), w.clone()))
                    .collect();
                (!fresh.is_empty()).then(|| (k.clone(), fresh))
            })
            .collect();
        let context = delta_context(&self.context, vv, self.live_dots());
        LwwMap {
            entries,
            context,
            deleted: Deletion::delta_since(&self.deleted, vv),
        }
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.context.covered_by(vv)
    }

    fn value_json(&self) -> Value {
        Value::Object(
            self.entries
                .iter()
                .filter_map(|(k, ws)| winner(ws).map(|(_, w)| (k.clone(), w.value.clone())))
                .collect(),
        )
    }
}

impl Codec for LwwMap {
    fn encode(&self) -> Value {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|(k, ws)| {
                let writes: Vec<Value> = ws
                    .iter()
                    .map(|(d, w)| json!({"dot": dot_json(d), "ts": hlc_json(&w.ts), "value": w.value}))
                    .collect();
                json!({"key": k, "writes": writes})
            })
            .collect();
        json!({"context": context_json(&self.context), "entries": entries})
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["context", "entries"], &[])?;
        let context = at.field("context")?.context()?;
        let mut entries = BTreeMap::new();
        let mut seen_dots = BTreeSet::new();
        for e in at.field("entries")?.array()? {
            e.fields(&["key", "writes"], &[])?;
            let key = e.field("key")?.str()?.to_string();
            let writes_at = e.field("writes")?;
            let mut writes = BTreeMap::new();
            for w in writes_at.array()? {
                w.fields(&["dot", "ts", "value"], &[])?;
                let dot = w.field("dot")?.dot()?;
                if !context.contains(&dot) {
                    return Err(w.causal(format!("write {dot} is not in the context")));
                }
                if !seen_dots.insert(dot.clone()) {
                    return Err(w.causal(format!("write {dot} appears twice")));
                }
                let write = MapWrite {
                    value: w.field("value")?.user_value()?,
                    ts: w.field("ts")?.hlc()?,
                };
                writes.insert(dot, write);
            }
            if writes.is_empty() {
                return Err(writes_at.causal("a key needs at least one write"));
            }
            if entries.insert(key, writes).is_some() {
                return Err(e.causal("the same key appears twice"));
            }
        }
        Ok(LwwMap {
            entries,
            context,
            deleted: None,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    fn merged(a: &LwwMap, b: &LwwMap) -> LwwMap {
        let mut m = a.clone();
        m.merge(b);
        m
    }

    #[test]
    fn keys_changed_concurrently_by_two_agents_both_survive() {
        let (a, b) = (id("agent-1"), id("agent-2"));
        let mut x = LwwMap::default();
        x.put(&a, "ai-review", json!(false), 1).unwrap();
        let mut y = x.clone();
        x.put(&a, "ai-review", json!(true), 5).unwrap();
        y.put(&b, "dark-mode", json!(true), 3).unwrap();
        let m = merged(&x, &y);
        assert_eq!(
            m.value_json(),
            json!({"ai-review": true, "dark-mode": true})
        );
        assert_eq!(m, merged(&y, &x));
    }

    #[test]
    fn a_write_made_after_seeing_another_wins_whatever_the_clocks_say() {
        let (a, b) = (id("agent-1"), id("agent-2"));
        let mut x = LwwMap::default();
        x.put(&a, "k", json!(1), 1_000).unwrap();
        let mut y = x.clone();
        // agent-2's clock is behind, but it saw agent-1's write.
        y.put(&b, "k", json!(2), 10).unwrap();
        assert_eq!(merged(&x, &y).get("k"), Some(&json!(2)));
        // Concurrent writes: the greater (timestamp, dot) wins on both sides.
        let mut p = LwwMap::default();
        let mut q = LwwMap::default();
        p.put(&a, "k", json!("a"), 7).unwrap();
        q.put(&b, "k", json!("b"), 7).unwrap();
        assert_eq!(merged(&p, &q).get("k"), Some(&json!("b")));
        assert_eq!(merged(&q, &p).get("k"), Some(&json!("b")));
        assert_eq!(merged(&p, &q).entries().next().unwrap().1.len(), 2);
    }

    #[test]
    fn a_put_concurrent_with_an_unset_keeps_the_key() {
        let (a, b) = (id("agent-1"), id("agent-2"));
        let mut x = LwwMap::default();
        x.put(&a, "k", json!(1), 1).unwrap();
        let mut y = x.clone();
        assert!(x.unset(&a, "k").unwrap());
        assert!(!x.unset(&a, "k").unwrap());
        y.put(&b, "k", json!(2), 2).unwrap();
        assert_eq!(merged(&x, &y).value_json(), json!({"k": 2}));
        // An unset that saw the put removes it.
        let mut z = merged(&x, &y);
        z.unset(&a, "k").unwrap();
        assert_eq!(merged(&z, &y).value_json(), json!({}));
        assert!(y.version().le(&z.version()) && !z.version().le(&y.version()));
    }

    #[test]
    fn snapshots_round_trip_and_forgeries_are_refused() {
        let (a, b) = (id("agent-1"), id("agent-2"));
        let mut x = LwwMap::default();
        x.put(&a, "k", json!({"deep": [1, 2]}), 1).unwrap();
        x.put(&b, "j", json!("v"), 2).unwrap();
        x.unset(&b, "j").unwrap();
        x.put(&b, "é", json!(null), 3).unwrap();
        let text = x.encode();
        assert_eq!(LwwMap::decode(&At::root(&text)).unwrap(), x);
        let mut twice = text.clone();
        twice["entries"][1]["writes"][0]["dot"] = twice["entries"][0]["writes"][0]["dot"].clone();
        let err = LwwMap::decode(&At::root(&twice)).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
        let mut unseen = text.clone();
        unseen["entries"][0]["writes"][0]["dot"] = json!(["agent-3", 1]);
        let err = LwwMap::decode(&At::root(&unseen)).unwrap_err().to_string();
        assert!(err.contains("not in the context"), "{err}");
        let mut empty = text;
        empty["entries"][0]["writes"] = json!([]);
        assert!(LwwMap::decode(&At::root(&empty)).is_err());
    }

    #[test]
    fn the_gate_refuses_one_dot_as_two_writes() {
        let a = id("agent-1");
        let mut x = LwwMap::default();
        x.put(&a, "k", json!(1), 1).unwrap();
        let mut forged = LwwMap::default();
        forged.put(&a, "other", json!(1), 1).unwrap();
        assert!(x.check_merge(&forged).unwrap_err().contains("one event"));
        assert!(x.check_merge(&x.clone()).is_ok());
    }

    /// (replica, op): a put of (key, value, clock) or an unset of a key.
    #[derive(Clone, Debug)]
    enum Op {
        Put(u8, u8, u64),
        Unset(u8),
        /// Replica `.0` sends its delta since replica `.1`'s version.
        Send(usize, usize),
    }

    fn op() -> impl Strategy<Value = (usize, Op)> {
        (
            0usize..3,
            prop_oneof![
                3 => (0u8..3, 0u8..4, 0u64..20).prop_map(|(k, v, t)| Op::Put(k, v, t)),
                1 => (0u8..3).prop_map(Op::Unset),
                2 => (0usize..3, 0usize..3).prop_map(|(a, b)| Op::Send(a, b)),
            ],
        )
    }

    fn run(ops: &[(usize, Op)]) -> Vec<LwwMap> {
        let ids = [id("agent-1"), id("agent-2"), id("agent-3")];
        let mut states = vec![LwwMap::default(); 3];
        for (r, op) in ops {
            match op {
                Op::Put(k, v, t) => {
                    states[*r]
                        .put(&ids[*r], &format!("k{k}"), json!(v), *t)
                        .unwrap();
                }
                Op::Unset(k) => {
                    states[*r].unset(&ids[*r], &format!("k{k}")).unwrap();
                }
                Op::Send(a, b) => {
                    let delta = states[*a].delta_since(&states[*b].version());
                    assert!(states[*b].check_merge(&delta).is_ok());
                    states[*b].merge(&delta);
                }
            }
        }
        states
    }

    proptest! {
        /// The join laws, deltas that bring what the whole state brings,
        /// snapshots that round trip, and convergence by deltas.
        #[test]
        fn merges_are_a_join_and_deltas_converge(ops in prop::collection::vec(op(), 0..40)) {
            let states = run(&ops);
            for a in &states {
                prop_assert_eq!(&merged(a, a), a);
                let text = a.encode();
                prop_assert_eq!(&LwwMap::decode(&At::root(&text)).unwrap(), a);
                for b in &states {
                    prop_assert!(b.check_merge(a).is_ok());
                    prop_assert_eq!(merged(a, b), merged(b, a));
                    for c in &states {
                        prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
                    }
                    let delta = a.delta_since(&b.version());
                    prop_assert_eq!(merged(b, &delta), merged(b, a));
                }
            }
            let full = states.iter().fold(LwwMap::default(), |m, s| merged(&m, s));
            let mut by_deltas = states.clone();
            for i in [1, 2, 0, 1, 2] {
                let d = by_deltas[i].delta_since(&by_deltas[0].version());
                by_deltas[0].merge(&d);
                let back = by_deltas[0].delta_since(&by_deltas[i].version());
                by_deltas[i].merge(&back);
            }
            for s in &by_deltas {
                prop_assert_eq!(s, &full);
                prop_assert_eq!(s.value_json(), full.value_json());
            }
        }
    }
}

crate::deletion::deletion_access!(LwwMap, CausalContext);

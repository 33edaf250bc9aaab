//! The fast text structure (`crdt::Rga`: runs in chunks, indexes) against a
//! simple reference model (`RefRga`: one vector of characters, linear scans,
//! the first implementation) on random edit sequences, sequential and
//! concurrent, long enough to split many runs and chunks.

use std::collections::HashMap;

use crdt::{CausalContext, Crdt, Dot, OpError, ReplicaId, Rga};
use proptest::prelude::*;

mod reference {
    use super::*;

    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct RefRga {
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

    impl RefRga {
        /// Inserts `text` as `replica` before the character at `pos` (`pos == len` appends).
        pub fn insert(
            &mut self,
            replica: &ReplicaId,
            pos: usize,
            text: &str,
        ) -> Result<(), OpError> {
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

        /// Deletes `count` characters starting at `pos`, as one event of `replica`.
        pub fn delete(
            &mut self,
            replica: &ReplicaId,
            pos: usize,
            count: usize,
        ) -> Result<(), OpError> {
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

    impl RefRga {
        pub fn merge(&mut self, other: &Self) {
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
    }
}

use reference::RefRga;

fn replica(i: usize) -> ReplicaId {
    ReplicaId::new(format!("r{i}")).unwrap()
}

/// The fast structure's characters as the reference model writes them.
fn same(fast: &Rga, slow: &RefRga) -> Result<(), TestCaseError> {
    prop_assert_eq!(fast.text(), slow.text());
    prop_assert_eq!(fast.len(), slow.len());
    let f: Vec<_> = fast
        .elements()
        .into_iter()
        .map(|e| (e.id, e.lamport, e.origin, e.ch, e.deleted))
        .collect();
    let s: Vec<_> = slow
        .elements()
        .iter()
        .cloned()
        .map(|e| (e.id, e.lamport, e.origin, e.ch, e.deleted))
        .collect();
    prop_assert_eq!(f, s);
    prop_assert_eq!(fast.context(), slow.context());
    Ok(())
}

#[derive(Clone, Debug)]
enum Op {
    /// Insert at a fraction of the length; most inserts continue where the
    /// last edit was, like typing.
    Insert(usize, f64, String),
    Delete(usize, f64, usize),
    /// Replica `to` merges replica `from`'s whole state.
    Merge(usize, usize),
    /// Replica `to` merges what it lacks from `from` (a delta).
    Delta(usize, usize),
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..n, 0.0..=1.0f64, "[a-z€😀]{1,3}").prop_map(|(r, p, s)| Op::Insert(r, p, s)),
        3 => (0..n, 0.0..=1.0f64, 1usize..5).prop_map(|(r, p, k)| Op::Delete(r, p, k)),
        1 => (0..n, 0..n).prop_map(|(a, b)| Op::Merge(a, b)),
        1 => (0..n, 0..n).prop_map(|(a, b)| Op::Delta(a, b)),
    ]
}

fn apply(fast: &mut [Rga], slow: &mut [RefRga], op: &Op) {
    match op {
        Op::Insert(r, p, s) => {
            let len = fast[*r].len();
            let pos = ((p * len as f64) as usize).min(len);
            fast[*r].insert(&replica(*r), pos, s).unwrap();
            slow[*r].insert(&replica(*r), pos, s).unwrap();
        }
        Op::Delete(r, p, k) => {
            let len = fast[*r].len();
            if len > 0 {
                let pos = ((p * len as f64) as usize).min(len - 1);
                let k = (*k).min(len - pos);
                fast[*r].delete(&replica(*r), pos, k).unwrap();
                slow[*r].delete(&replica(*r), pos, k).unwrap();
            }
        }
        Op::Merge(to, from) => {
            let (f, s) = (fast[*from].clone(), slow[*from].clone());
            fast[*to].merge(&f);
            slow[*to].merge(&s);
        }
        Op::Delta(to, from) => {
            let d = fast[*from].delta_since(&fast[*to].version());
            fast[*to].merge(&d);
            let s = slow[*from].clone();
            slow[*to].merge(&s);
        }
    }
    // The fast structure's own invariants hold after every operation.
    let (Op::Insert(i, ..) | Op::Delete(i, ..) | Op::Merge(i, _) | Op::Delta(i, _)) = op;
    if let Err(why) = fast[*i].dbg_check() {
        panic!("replica {i} after {op:?}: {why}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    /// One replica, long sequences: many runs, deletes and chunk splits.
    #[test]
    fn one_replica_matches_the_reference(ops in prop::collection::vec(op(1), 1..400)) {
        let mut fast = vec![Rga::default()];
        let mut slow = vec![RefRga::default()];
        for o in &ops {
            apply(&mut fast, &mut slow, o);
        }
        same(&fast[0], &slow[0])?;
    }

    /// Three replicas editing concurrently and merging (states and deltas).
    #[test]
    fn concurrent_replicas_match_the_reference(ops in prop::collection::vec(op(3), 1..300)) {
        let mut fast = vec![Rga::default(); 3];
        let mut slow = vec![RefRga::default(); 3];
        for o in &ops {
            apply(&mut fast, &mut slow, o);
        }
        for i in 0..3 {
            same(&fast[i], &slow[i])?;
        }
        // And everyone converges to the same text.
        let all = fast.iter().fold(Rga::default(), |mut acc, r| { acc.merge(r); acc });
        let mut slow_all = RefRga::default();
        for s in &slow {
            slow_all.merge(s);
        }
        same(&all, &slow_all)?;
    }
}

#[test]
fn a_long_typing_session_matches_the_reference() {
    // Deterministic and long: 20,000 edits with clustered positions.
    let me = replica(0);
    let mut fast = Rga::default();
    let mut slow = RefRga::default();
    let mut x: u64 = 42;
    let mut cursor = 0usize;
    for i in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = fast.len();
        if x.is_multiple_of(10) {
            cursor = (x >> 33) as usize % (len + 1);
        }
        cursor = cursor.min(len);
        if len > 0 && (x >> 20).is_multiple_of(4) {
            let p = cursor.saturating_sub(1);
            fast.delete(&me, p, 1).unwrap();
            slow.delete(&me, p, 1).unwrap();
            cursor = p;
        } else {
            let ch = char::from(b'a' + (i % 26) as u8).to_string();
            fast.insert(&me, cursor, &ch).unwrap();
            slow.insert(&me, cursor, &ch).unwrap();
            cursor += 1;
        }
    }
    assert_eq!(fast.text(), slow.text());
    assert_eq!(fast, {
        let mut f2 = Rga::default();
        f2.merge(&fast);
        f2
    });
}

/// Cases per property: `default`, or `PROPTEST_CASES` for a longer run.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

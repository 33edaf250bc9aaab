//! Semantic differences between two stores: what each side has that the
//! other lacks, per type, and what a merge would give. Pure data; the CLI
//! renders it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::clock::{Causality, Dot, Hlc, ReplicaId};
use crate::codec::canonical;
use crate::object::{CrdtType, Object};
use crate::store::{Store, selected};

/// How one (name, type) compares between side A and side B.
#[derive(Clone, Debug, PartialEq)]
pub struct NameDiff {
    pub name: String,
    pub ty: CrdtType,
    pub status: Status,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    OnlyA(Object),
    OnlyB(Object),
    Equal(Object),
    Different(Box<ObjectDiff>),
}

/// Two states of one object that differ.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectDiff {
    pub a: Object,
    pub b: Object,
    /// How A's version relates to B's.
    pub relation: Causality,
    /// A merged with B.
    pub merged: Object,
    pub detail: Detail,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    /// Replicas whose entries differ.
    Counter(Vec<CounterRow>),
    Register(RegisterDiff),
    Set(Vec<ElementDiff>),
    /// The keys whose writes differ, each like a register.
    Map(Vec<KeyDiff>),
    /// The texts; the CLI diffs them by character.
    Text {
        a: String,
        b: String,
        merged: String,
    },
}

/// One replica's part of a counter on both sides (`None`: not there).
#[derive(Clone, Debug, PartialEq)]
pub struct CounterRow {
    pub replica: ReplicaId,
    pub a: Option<CountEntry>,
    pub b: Option<CountEntry>,
}

/// `p` is the count of a g-counter; `n` is always 0 for one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountEntry {
    pub seq: u64,
    pub p: u64,
    pub n: u64,
}

/// One register write.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteInfo {
    pub dot: Dot,
    pub ts: Hlc,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RegisterDiff {
    /// The unreplaced writes on each side, best first (the first one is the value).
    pub a: Vec<WriteInfo>,
    pub b: Vec<WriteInfo>,
    /// What the merge keeps, best first.
    pub merged: Vec<WriteInfo>,
}

/// One key of a map whose writes differ between the sides (an empty list:
/// the key is not there, or was unset).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyDiff {
    pub key: String,
    pub writes: RegisterDiff,
}

/// A set member that differs between the sides.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementDiff {
    pub value: Value,
    pub a_dots: Vec<Dot>,
    pub b_dots: Vec<Dot>,
    /// Whether the merged set keeps it.
    pub kept: bool,
}

/// Compares the objects of `a` and `b` selected by `select` (all when empty).
pub fn diff_stores(a: &Store, b: &Store, select: &[String]) -> Vec<NameDiff> {
    let wanted = |name: &str| selected(select, name);
    let mut keys: BTreeSet<(String, CrdtType)> = BTreeSet::new();
    for (name, o) in a.iter().chain(b.iter()) {
        if wanted(name) {
            keys.insert((name.to_string(), o.ty()));
        }
    }
    keys.into_iter()
        .map(|(name, ty)| {
            let status = match (a.get(&name, ty), b.get(&name, ty)) {
                (Some(x), None) => Status::OnlyA(x.clone()),
                (None, Some(y)) => Status::OnlyB(y.clone()),
                (Some(x), Some(y)) if x == y => Status::Equal(x.clone()),
                (Some(x), Some(y)) => Status::Different(Box::new(diff_objects(x, y))),
                (None, None) => unreachable!("the key came from one side"),
            };
            NameDiff { name, ty, status }
        })
        .collect()
}

/// Compares two states of one object of the same type.
pub fn diff_objects(a: &Object, b: &Object) -> ObjectDiff {
    let mut merged = a.clone();
    merged.merge(b);
    let detail = match (a, b, &merged) {
        (Object::GCounter(x), Object::GCounter(y), _) => {
            let side = |c: &crate::GCounter| -> BTreeMap<ReplicaId, CountEntry> {
                c.entries()
                    .map(|(r, e)| {
                        (
                            r.clone(),
                            CountEntry {
                                seq: e.seq,
                                p: e.count,
                                n: 0,
                            },
                        )
                    })
                    .collect()
            };
            Detail::Counter(counter_rows(side(x), side(y)))
        }
        (Object::PnCounter(x), Object::PnCounter(y), _) => {
            let side = |c: &crate::PnCounter| -> BTreeMap<ReplicaId, CountEntry> {
                c.entries()
                    .map(|(r, e)| {
                        (
                            r.clone(),
                            CountEntry {
                                seq: e.seq,
                                p: e.p,
                                n: e.n,
                            },
                        )
                    })
                    .collect()
            };
            Detail::Counter(counter_rows(side(x), side(y)))
        }
        (Object::BoundedCounter(x), Object::BoundedCounter(y), _) => {
            // As a pn-counter: what each replica allocated and released.
            let side = |c: &crate::BoundedCounter| -> BTreeMap<ReplicaId, CountEntry> {
                c.entries()
                    .map(|(r, e)| {
                        (
                            r.clone(),
                            CountEntry {
                                seq: e.seq,
                                p: e.allocated,
                                n: e.released,
                            },
                        )
                    })
                    .collect()
            };
            Detail::Counter(counter_rows(side(x), side(y)))
        }
        (Object::LwwRegister(x), Object::LwwRegister(y), Object::LwwRegister(m)) => {
            Detail::Register(RegisterDiff {
                a: writes(x),
                b: writes(y),
                merged: writes(m),
            })
        }
        (Object::OrSet(x), Object::OrSet(y), Object::OrSet(m)) => {
            let side = |s: &crate::OrSet| -> BTreeMap<String, (Value, Vec<Dot>)> {
                s.elements()
                    .map(|e| {
                        (
                            canonical(&e.value),
                            (e.value.clone(), e.dots.iter().cloned().collect()),
                        )
                    })
                    .collect()
            };
            let (sa, sb) = (side(x), side(y));
            let keys: BTreeSet<&String> = sa.keys().chain(sb.keys()).collect();
            let mut out = Vec::new();
            for k in keys {
                let (va, vb) = (sa.get(k), sb.get(k));
                let a_dots = va.map(|v| v.1.clone()).unwrap_or_default();
                let b_dots = vb.map(|v| v.1.clone()).unwrap_or_default();
                if a_dots == b_dots {
                    continue;
                }
                let value = va.or(vb).map(|v| v.0.clone()).expect("from one side");
                let kept = m.contains(&value);
                out.push(ElementDiff {
                    value,
                    a_dots,
                    b_dots,
                    kept,
                });
            }
            Detail::Set(out)
        }
        (Object::Map(x), Object::Map(y), Object::Map(m)) => {
            let keys: BTreeSet<&str> = x.keys().chain(y.keys()).collect();
            let rows = keys
                .into_iter()
                .filter_map(|k| {
                    let writes = RegisterDiff {
                        a: key_writes(x, k),
                        b: key_writes(y, k),
                        merged: key_writes(m, k),
                    };
                    (writes.a != writes.b).then(|| KeyDiff {
                        key: k.to_string(),
                        writes,
                    })
                })
                .collect();
            Detail::Map(rows)
        }
        (Object::Rga(x), Object::Rga(y), Object::Rga(m)) => Detail::Text {
            a: x.text(),
            b: y.text(),
            merged: m.text(),
        },
        _ => panic!("diff_objects needs two objects of the same type"),
    };
    ObjectDiff {
        relation: a.version().compare(&b.version()),
        a: a.clone(),
        b: b.clone(),
        merged,
        detail,
    }
}

fn counter_rows(
    a: BTreeMap<ReplicaId, CountEntry>,
    b: BTreeMap<ReplicaId, CountEntry>,
) -> Vec<CounterRow> {
    let replicas: BTreeSet<&ReplicaId> = a.keys().chain(b.keys()).collect();
    replicas
        .into_iter()
        .filter(|r| a.get(*r) != b.get(*r))
        .map(|r| CounterRow {
            replica: r.clone(),
            a: a.get(r).copied(),
            b: b.get(r).copied(),
        })
        .collect()
}

/// A register's unreplaced writes, best (the value) first.
pub fn writes(r: &crate::LwwRegister) -> Vec<WriteInfo> {
    best_first(r.writes().map(|(d, w)| (d, w.ts, &w.value)))
}

/// The unreplaced writes of one key of a map, best (the value) first;
/// empty when the key is not there.
pub fn key_writes(m: &crate::LwwMap, key: &str) -> Vec<WriteInfo> {
    best_first(
        m.writes_of(key)
            .into_iter()
            .flatten()
            .map(|(d, w)| (d, w.ts, &w.value)),
    )
}

fn best_first<'a>(writes: impl Iterator<Item = (&'a Dot, Hlc, &'a Value)>) -> Vec<WriteInfo> {
    let mut list: Vec<WriteInfo> = writes
        .map(|(d, ts, value)| WriteInfo {
            dot: d.clone(),
            ts,
            value: value.clone(),
        })
        .collect();
    list.sort_by(|x, y| (y.ts, &y.dot).cmp(&(x.ts, &x.dot)));
    list
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    #[test]
    fn classifies_names_and_finds_what_differs() {
        let (ra, rb) = (id("a"), id("b"));
        let mut a = Store::new(ra.clone());
        let mut b = Store::new(rb.clone());
        for s in [&mut a, &mut b] {
            if let Object::GCounter(c) = s.get_or_create("same", CrdtType::GCounter) {
                c.inc(&id("z"), 1).unwrap();
            }
        }
        if let Object::GCounter(c) = a.get_or_create("n", CrdtType::GCounter) {
            c.inc(&ra, 2).unwrap();
        }
        if let Object::GCounter(c) = b.get_or_create("n", CrdtType::GCounter) {
            c.inc(&rb, 3).unwrap();
        }
        a.get_or_create("only:a", CrdtType::OrSet);
        if let Object::OrSet(s) = b.get_or_create("only:b", CrdtType::OrSet) {
            s.add(&rb, json!(1)).unwrap();
        }
        let d = diff_stores(&a, &b, &[]);
        let kinds: Vec<(&str, &str)> = d
            .iter()
            .map(|n| {
                let k = match &n.status {
                    Status::OnlyA(_) => "only-a",
                    Status::OnlyB(_) => "only-b",
                    Status::Equal(_) => "equal",
                    Status::Different(_) => "different",
                };
                (n.name.as_str(), k)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("n", "different"),
                ("only:a", "only-a"),
                ("only:b", "only-b"),
                ("same", "equal")
            ]
        );
        let Status::Different(od) = &d[0].status else {
            unreachable!()
        };
        assert_eq!(od.relation, Causality::Concurrent);
        assert_eq!(od.merged.value_json(), json!(5));
        let Detail::Counter(rows) = &od.detail else {
            unreachable!()
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(diff_stores(&a, &b, &["only".into()]).len(), 2);
    }

    #[test]
    fn a_set_diff_says_which_members_the_merge_keeps() {
        let (ra, rb) = (id("a"), id("b"));
        let mut x = crate::OrSet::default();
        x.add(&ra, json!("t1")).unwrap();
        x.add(&ra, json!("t2")).unwrap();
        let mut y = x.clone();
        y.remove(&rb, &json!("t1")).unwrap(); // B removed t1 after seeing it
        x.add(&ra, json!("t3")).unwrap();
        let d = diff_objects(&Object::OrSet(x), &Object::OrSet(y));
        let Detail::Set(elems) = d.detail else {
            unreachable!()
        };
        let summary: Vec<(Value, bool)> = elems.iter().map(|e| (e.value.clone(), e.kept)).collect();
        assert_eq!(summary, [(json!("t1"), false), (json!("t3"), true)]);
    }
}

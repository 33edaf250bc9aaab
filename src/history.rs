//! What a change did, in its type's words (`+3`, `set {"mode":"safe"}`,
//! `add "task-1"`, `insert "Hello" at 0`, `delete 5 at 12`): the summary a
//! history row keeps, and `crdt log` shows. Pure functions: the local
//! replica ([`crate::db`]) records them, the CLI renders them.

use serde_json::Value;

use crate::clock::VersionVector;
use crate::codec::canonical;
use crate::edit::Edit;
use crate::object::Object;

/// Characters of a value or a text kept in a summary; longer ones are cut
/// (with `…`) and their length told.
pub const SUMMARY_CHARS: usize = 60;

/// At most this many parts (members, runs) are named; the rest are counted.
const PARTS: usize = 3;

/// `text` as a JSON string, cut to [`SUMMARY_CHARS`] characters.
pub fn quoted(text: &str) -> String {
    let n = text.chars().count();
    if n <= SUMMARY_CHARS {
        return Value::from(text).to_string();
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    let q = Value::from(cut).to_string();
    format!("{}…\" ({n} chars)", &q[..q.len() - 1])
}

/// A JSON value in one line, cut to [`SUMMARY_CHARS`] characters.
pub fn value_words(v: &Value) -> String {
    let text = canonical(v);
    let n = text.chars().count();
    if n <= SUMMARY_CHARS {
        return text;
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    format!("{cut}… ({n} chars)")
}

/// `first, second, third and 4 more`.
fn listed(words: Vec<String>) -> String {
    let more = words.len().saturating_sub(PARTS);
    let mut out = words.into_iter().take(PARTS).collect::<Vec<_>>().join(", ");
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

/// What a local edit did. `len_before`: the text's length before it (an
/// append inserts there).
pub fn describe_edit(edit: &Edit, len_before: usize) -> String {
    match edit {
        Edit::Inc { amount, .. } => format!("+{amount}"),
        Edit::Dec { amount } => format!("-{amount}"),
        Edit::Set { value } => format!("set {}", value_words(value)),
        Edit::Add { values } => format!("add {}", listed(values.iter().map(value_words).collect())),
        Edit::Rm { values } => format!("rm {}", listed(values.iter().map(value_words).collect())),
        Edit::Insert { pos, text } => format!("insert {} at {pos}", quoted(text)),
        Edit::Append { text } => format!("insert {} at {len_before}", quoted(text)),
        Edit::Delete { pos, len } => format!("delete {len} at {pos}"),
        Edit::New { ty } => format!("new {ty}"),
        Edit::Create { limit } => format!("new bounded-counter, limit {limit}"),
        Edit::Transfer { amount, to } => format!("transfer {amount} to {to}"),
        Edit::Put { key, value } => format!("put {} = {}", quoted(key), value_words(value)),
        Edit::Del { .. } => "delete".to_string(),
        Edit::Unset { keys } => {
            format!("unset {}", listed(keys.iter().map(|k| quoted(k)).collect()))
        }
    }
}

/// What a merge (an import, a sync) brought to an object: `before` is the
/// object as it was (`None`: new here), `after` as it is, `mark` the
/// version `before` had. Empty when it brought nothing visible (only
/// causal metadata).
pub fn describe_merge(before: Option<&Object>, after: &Object, mark: &VersionVector) -> String {
    let empty;
    let before = match before {
        Some(b) => b,
        None => {
            empty = Object::new(after.ty());
            &empty
        }
    };
    if after.is_deleted() && !before.is_deleted() {
        return "delete".to_string();
    }
    match (before, after) {
        (Object::GCounter(a), Object::GCounter(b)) => signed(b.value() as i128 - a.value() as i128),
        (Object::PnCounter(a), Object::PnCounter(b)) => signed(b.value() - a.value()),
        (Object::BoundedCounter(a), Object::BoundedCounter(b)) => {
            if b.limit() != a.limit() {
                format!("limit {}", b.limit())
            } else {
                signed(b.value() - a.value())
            }
        }
        (Object::LwwRegister(a), Object::LwwRegister(b)) => {
            let held = |r: &crate::LwwRegister| r.winner().map(|(d, _)| d.clone());
            match (b.winner(), held(a) == held(b)) {
                (Some((_, w)), false) => format!("set {}", value_words(&w.value)),
                (Some(_), true) => {
                    let lost = b.writes().filter(|(d, _)| !mark.contains(d)).count();
                    if lost > 0 {
                        format!("{lost} write(s) that lost to the one held")
                    } else {
                        String::new()
                    }
                }
                (None, _) => String::new(),
            }
        }
        (Object::OrSet(a), Object::OrSet(b)) => {
            let added: Vec<String> = b
                .elements()
                .filter(|e| e.dots.iter().any(|d| !mark.contains(d)))
                .map(|e| value_words(&e.value))
                .collect();
            let removed: Vec<String> = a
                .elements()
                .filter(|e| !b.contains(&e.value))
                .map(|e| value_words(&e.value))
                .collect();
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("add {}", listed(added)));
            }
            if !removed.is_empty() {
                parts.push(format!("rm {}", listed(removed)));
            }
            parts.join("; ")
        }
        (_, Object::Rga(b)) => describe_text(b, mark),
        (Object::Map(a), Object::Map(b)) => describe_map(a, b, mark),
        _ => String::new(),
    }
}

/// The keys a merge wrote (a new write wins, or the key is new) and the
/// keys it removed.
fn describe_map(before: &crate::LwwMap, after: &crate::LwwMap, mark: &VersionVector) -> String {
    let put: Vec<String> = after
        .entries()
        .filter(|(k, _)| {
            after
                .winner(k)
                .is_some_and(|(d, _)| !mark.contains(d) || before.get(k).is_none())
        })
        .map(|(k, _)| key_value(k, after.get(k)))
        .collect();
    let unset: Vec<String> = before
        .keys()
        .filter(|k| after.get(k).is_none())
        .map(quoted)
        .collect();
    let mut parts = Vec::new();
    if !put.is_empty() {
        parts.push(format!("put {}", listed(put)));
    }
    if !unset.is_empty() {
        parts.push(format!("unset {}", listed(unset)));
    }
    parts.join("; ")
}

fn key_value(key: &str, value: Option<&Value>) -> String {
    format!(
        "{} = {}",
        quoted(key),
        value.map_or_else(|| "null".to_string(), value_words)
    )
}

/// What a delta holds, in the type's words, without the state it is
/// merged into (`crdt decode`): a counter's entries are totals, not what
/// they add, and a text's characters have no place yet.
pub fn describe_delta(delta: &Object) -> String {
    let held = describe_held(delta);
    match delta.deleted_by() {
        Some(d) if held.is_empty() => format!("delete by {}", d.latest().0),
        Some(d) => format!("delete by {}; {held}", d.latest().0),
        None => held,
    }
}

fn describe_held(delta: &Object) -> String {
    match delta {
        Object::GCounter(c) => listed(
            c.entries()
                .map(|(r, e)| format!("{r} total {}", e.count))
                .collect(),
        ),
        Object::PnCounter(c) => listed(
            c.entries()
                .map(|(r, e)| format!("{r} total +{} -{}", e.p, e.n))
                .collect(),
        ),
        Object::LwwRegister(_) => describe_merge(None, delta, &VersionVector::new()),
        Object::BoundedCounter(c) => listed(
            c.entries()
                .map(|(r, e)| {
                    format!(
                        "{r} total granted {} allocated {} released {}",
                        e.granted, e.allocated, e.released
                    )
                })
                .collect(),
        ),
        Object::OrSet(s) => {
            let adds: Vec<String> = s.elements().map(|e| value_words(&e.value)).collect();
            let mut parts = Vec::new();
            if !adds.is_empty() {
                parts.push(format!("add {}", listed(adds)));
            }
            let live: usize = s.elements().map(|e| e.dots.len()).sum();
            let seen: u64 = s.context().iter().map(|(_, r)| r.count()).sum();
            if seen > live as u64 {
                parts.push(format!(
                    "{} event(s) of removes or replaced adds",
                    seen - live as u64
                ));
            }
            parts.join("; ")
        }
        Object::Map(m) => {
            let puts: Vec<String> = m
                .entries()
                .flat_map(|(k, ws)| ws.values().map(move |w| key_value(k, Some(&w.value))))
                .collect();
            let mut parts = Vec::new();
            if !puts.is_empty() {
                parts.push(format!("put {}", listed(puts)));
            }
            let live: usize = m.entries().map(|(_, ws)| ws.len()).sum();
            let seen = m.context().count();
            if seen > live as u64 {
                parts.push(format!(
                    "{} event(s) of unsets or replaced writes",
                    seen - live as u64
                ));
            }
            parts.join("; ")
        }
        Object::Rga(t) => {
            let mut inserted = String::new();
            let mut deleted = 0;
            for e in t.elements() {
                match e.deleted {
                    None => inserted.push(e.ch),
                    Some(_) => deleted += 1,
                }
            }
            let mut parts = Vec::new();
            if !inserted.is_empty() {
                parts.push(format!("insert {}", quoted(&inserted)));
            }
            if deleted > 0 {
                parts.push(format!("delete {deleted}"));
            }
            parts.join(", ")
        }
    }
}

fn signed(n: i128) -> String {
    if n < 0 {
        format!("{n}")
    } else {
        format!("+{n}")
    }
}

/// The runs of characters deleted and inserted since `mark`: deletes at
/// their places in the text as it was, then inserts at their places in
/// the text as it is (so they read as an edit made in that order).
fn describe_text(text: &crate::Rga, mark: &VersionVector) -> String {
    let mut deletes: Vec<(usize, usize)> = Vec::new();
    // (position, text, its length in chars)
    let mut inserts: Vec<(usize, String, usize)> = Vec::new();
    let (mut before, mut after) = (0, 0);
    for e in text.elements() {
        let new = !mark.contains(&e.id);
        let deleted_now = e.deleted.as_ref().is_some_and(|d| !mark.contains(d));
        if !new && (e.deleted.is_none() || deleted_now) {
            if deleted_now {
                match deletes.last_mut() {
                    Some((at, n)) if *at + *n == before => *n += 1,
                    _ => deletes.push((before, 1)),
                }
            }
            before += 1;
        }
        if e.deleted.is_none() {
            if new {
                match inserts.last_mut() {
                    Some((at, s, n)) if *at + *n == after => {
                        s.push(e.ch);
                        *n += 1;
                    }
                    _ => inserts.push((after, e.ch.to_string(), 1)),
                }
            }
            after += 1;
        }
    }
    listed(
        deletes
            .into_iter()
            .map(|(at, n)| format!("delete {n} at {at}"))
            .chain(
                inserts
                    .into_iter()
                    .map(|(at, s, _)| format!("insert {} at {at}", quoted(&s))),
            )
            .collect(),
    )
}

/// A history row, as [`Arrivals`] needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// Its position (`@N`).
    pub id: u64,
    pub time_ms: u64,
    pub source: String,
}

/// When each event came to a replica: the first history row whose delta
/// reached it (for `crdt blame`).
#[derive(Debug, Default)]
pub struct Arrivals {
    rows: Vec<Arrival>,
    /// Per replica, in row order: the highest seq seen so far and the row
    /// that brought it (only rows that raised it).
    reached: std::collections::BTreeMap<crate::ReplicaId, Vec<(u64, usize)>>,
}

impl Arrivals {
    /// From the history rows of one object, oldest first, each with the
    /// version of its delta.
    pub fn new(rows: impl IntoIterator<Item = (Arrival, VersionVector)>) -> Arrivals {
        let mut a = Arrivals::default();
        for (row, version) in rows {
            let i = a.rows.len();
            a.rows.push(row);
            for (r, seq) in version.iter() {
                let list = a.reached.entry(r.clone()).or_default();
                if list.last().is_none_or(|(top, _)| seq > *top) {
                    list.push((seq, i));
                }
            }
        }
        a
    }

    /// The row that brought `dot`, if the history has it.
    pub fn of(&self, dot: &crate::Dot) -> Option<&Arrival> {
        let list = self.reached.get(&dot.replica)?;
        let at = list.partition_point(|(seq, _)| *seq < dot.seq);
        list.get(at).map(|(_, i)| &self.rows[*i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReplicaId, Store};
    use serde_json::json;

    fn ids() -> (ReplicaId, ReplicaId) {
        (
            ReplicaId::new("agent-1").unwrap(),
            ReplicaId::new("agent-2").unwrap(),
        )
    }

    #[test]
    fn edits_in_their_types_words() {
        assert_eq!(
            describe_edit(
                &Edit::Inc {
                    amount: 3,
                    ty: None
                },
                0
            ),
            "+3"
        );
        assert_eq!(
            describe_edit(
                &Edit::Set {
                    value: json!({"mode": "safe"})
                },
                0
            ),
            r#"set {"mode":"safe"}"#
        );
        assert_eq!(
            describe_edit(
                &Edit::Add {
                    values: vec![json!("a"), json!(1), json!("c"), json!("d")]
                },
                0
            ),
            r#"add "a", 1, "c" and 1 more"#
        );
        assert_eq!(
            describe_edit(
                &Edit::Append {
                    text: "Hello".into()
                },
                7
            ),
            r#"insert "Hello" at 7"#
        );
        assert_eq!(
            describe_edit(&Edit::Delete { pos: 12, len: 5 }, 0),
            "delete 5 at 12"
        );
        let long = "x".repeat(100);
        assert_eq!(
            quoted(&long),
            format!("\"{}…\" (100 chars)", "x".repeat(SUMMARY_CHARS))
        );
    }

    #[test]
    fn merges_say_what_they_brought() {
        let (a, b) = ids();
        let mut mine = Store::new(a.clone());
        mine.apply(
            "t",
            &Edit::Insert {
                pos: 0,
                text: "Hello world".into(),
            },
            0,
        )
        .unwrap();
        let mut theirs = Store::new(b.clone());
        theirs.merge(&mine);
        theirs
            .apply("t", &Edit::Delete { pos: 5, len: 6 }, 0)
            .unwrap();
        theirs
            .apply("t", &Edit::Append { text: "!".into() }, 0)
            .unwrap();
        let before = mine.objects("t")[0].clone();
        let mark = before.version();
        mine.merge(&theirs);
        let after = mine.objects("t")[0];
        assert_eq!(
            describe_merge(Some(&before), after, &mark),
            r#"delete 6 at 5, insert "!" at 5"#
        );
        // New here: everything it holds.
        assert_eq!(
            describe_merge(None, after, &VersionVector::new()),
            r#"insert "Hello!" at 0"#
        );

        let mut s1 = Store::new(a);
        s1.apply(
            "s",
            &Edit::Add {
                values: vec![json!("x"), json!("y")],
            },
            0,
        )
        .unwrap();
        s1.apply(
            "c",
            &Edit::Inc {
                amount: 2,
                ty: None,
            },
            0,
        )
        .unwrap();
        let mut s2 = Store::new(b);
        s2.merge(&s1);
        s2.apply(
            "s",
            &Edit::Rm {
                values: vec![json!("x")],
            },
            0,
        )
        .unwrap();
        s2.apply(
            "s",
            &Edit::Add {
                values: vec![json!("z")],
            },
            0,
        )
        .unwrap();
        s2.apply(
            "c",
            &Edit::Inc {
                amount: 5,
                ty: None,
            },
            0,
        )
        .unwrap();
        for name in ["s", "c"] {
            let before = s1.objects(name)[0].clone();
            let mut after = before.clone();
            after.merge(s2.objects(name)[0]);
            let said = describe_merge(Some(&before), &after, &before.version());
            let want = if name == "s" {
                r#"add "z"; rm "x""#
            } else {
                "+5"
            };
            assert_eq!(said, want);
        }
    }
}

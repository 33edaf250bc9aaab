//! `crdt blame NAME`: who made each part of an object, and when it came
//! here (from the history).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use crdt::db::Entry;
use crdt::history::{Arrival, Arrivals, quoted, value_words};
use crdt::{CrdtType, Dot, Object, ReplicaId};
use serde_json::{Value, json};

use super::*;
use crate::cli::Ctx;
use crate::cli::output::{Out, Report, per_type};
use crate::cli::read::objects;

pub fn blame(
    ctx: &Ctx,
    out: &mut Out<impl Write>,
    name: &str,
    from: Option<PathBuf>,
) -> Result<()> {
    let db = crate::cli::history::history_db(ctx, from.as_deref())?;
    let store = db.load_name(name)?;
    let list = objects(&store, name)?;
    let entries = db.entries_of(name)?;
    let mut blamed = Vec::new();
    for o in list {
        let mine: Vec<&Entry> = entries.iter().filter(|e| e.ty == o.ty()).collect();
        let arrivals = Arrivals::new(mine.iter().map(|e| {
            (
                Arrival {
                    id: e.id,
                    time_ms: e.time_ms,
                    source: e.source.clone(),
                },
                e.delta.max_seqs(),
            )
        }));
        let (lines, doc) = match o {
            Object::Rga(t) => blame_text(out, t, &arrivals),
            Object::OrSet(s) => blame_set(s, &arrivals),
            Object::LwwRegister(r) => blame_register(r, &arrivals),
            Object::Map(m) => blame_map(m, &arrivals),
            Object::BoundedCounter(_) => blame_counter(&mine),
            Object::GCounter(_) | Object::PnCounter(_) => blame_counter(&mine),
        };
        let mut doc = doc;
        doc["name"] = json!(name);
        doc["type"] = json!(o.ty().as_str());
        blamed.push((o.ty(), lines, doc));
    }
    out.report(&Blamed { name, blamed })?;
    Ok(())
}

/// `blame`: for each object of a name, its parts with who made them (the
/// lines), and the same as data.
struct Blamed<'a> {
    name: &'a str,
    blamed: Vec<(CrdtType, Vec<String>, Value)>,
}

impl Report for Blamed<'_> {
    fn json(&self) -> Value {
        let docs = self.blamed.iter().map(|(_, _, doc)| doc.clone());
        per_type(self.name, docs.collect())
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        for (ty, lines, _) in &self.blamed {
            writeln!(out, "{} ({ty})", out.style().bold(self.name))?;
            for l in lines {
                writeln!(out, "  {l}")?;
            }
        }
        Ok(())
    }
}

fn number(n: i128) -> Value {
    serde_json::to_value(n).unwrap_or(Value::Null)
}

/// `@12 2026-12-01T10:00:00.000Z (local)`, or `(not in the history)`.
fn when(a: Option<&Arrival>) -> String {
    match a {
        Some(a) => format!("@{} {} ({})", a.id, fmt_ms(a.time_ms), a.source),
        None => "(not in the history)".into(),
    }
}

fn when_json(a: Option<&Arrival>) -> Value {
    match a {
        Some(a) => {
            json!({"id": a.id, "time_ms": a.time_ms, "time": fmt_ms(a.time_ms), "source": a.source})
        }
        None => Value::Null,
    }
}

/// The visible text in runs of one replica that came in one history row.
fn blame_text(out: &Out<impl Write>, t: &crdt::Rga, arrivals: &Arrivals) -> (Vec<String>, Value) {
    let mut runs: Vec<(Dot, Option<&Arrival>, String)> = Vec::new();
    for e in t.elements().into_iter().filter(|e| e.deleted.is_none()) {
        let a = arrivals.of(&e.id);
        match runs.last_mut() {
            Some((d, b, s)) if d.replica == e.id.replica && *b == a => s.push(e.ch),
            _ => runs.push((e.id.clone(), a, e.ch.to_string())),
        }
    }
    let colors = replica_colors(runs.iter().map(|(d, _, _)| d.replica.clone()));
    let st = out.style();
    let width = runs
        .iter()
        .map(|(d, _, _)| d.replica.as_str().len())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<String> = runs
        .iter()
        .map(|(d, a, s)| {
            let who = st.paint(
                &format!("{:width$}", d.replica.as_str()),
                colors[&d.replica],
            );
            format!("{who}  {}  {}", quoted(s), when(*a))
        })
        .collect();
    if st.color && !runs.is_empty() {
        let painted: String = runs
            .iter()
            .map(|(d, _, s)| st.paint(s, colors[&d.replica]))
            .collect();
        lines.push(String::new());
        lines.push(painted);
    }
    let doc = json!({"runs": runs.iter().map(|(d, a, s)| json!({
        "text": s, "replica": d.replica.as_str(), "seq": d.seq, "arrived": when_json(*a),
    })).collect::<Vec<_>>()});
    (lines, doc)
}

/// Each member with the adds that keep it: who, and when each came here.
fn blame_set(s: &crdt::OrSet, arrivals: &Arrivals) -> (Vec<String>, Value) {
    let mut lines = Vec::new();
    let mut docs = Vec::new();
    for e in s.elements() {
        let adds: Vec<String> = e
            .dots
            .iter()
            .map(|d| format!("added by {d} {}", when(arrivals.of(d))))
            .collect();
        lines.push(format!("{}  {}", value_words(&e.value), adds.join("; ")));
        docs.push(
            json!({"value": e.value, "adds": e.dots.iter().map(|d| json!({
            "replica": d.replica.as_str(), "seq": d.seq, "arrived": when_json(arrivals.of(d)),
        })).collect::<Vec<_>>()}),
        );
    }
    if lines.is_empty() {
        lines.push("(no members)".into());
    }
    (lines, json!({"members": docs}))
}

/// The write that holds, and the concurrent ones it kept that lost.
fn blame_register(r: &crdt::LwwRegister, arrivals: &Arrivals) -> (Vec<String>, Value) {
    let holder = r.winner().map(|(d, _)| d.clone());
    let mut lines = Vec::new();
    let mut docs = Vec::new();
    // The holder first, then the others, newest first.
    let mut writes: Vec<_> = r.writes().collect();
    writes.sort_by(|a, b| {
        (Some(a.0) != holder.as_ref(), b.1.ts).cmp(&(Some(b.0) != holder.as_ref(), a.1.ts))
    });
    for (d, w) in writes {
        let holds = Some(d) == holder.as_ref();
        let what = if holds { "holds" } else { "lost " };
        lines.push(format!(
            "{what}  {}  written by {d} at {}  {}",
            value_words(&w.value),
            fmt_ts(w.ts),
            when(arrivals.of(d))
        ));
        if let (true, Some(lost)) = (holds, &w.lost) {
            lines.push(format!(
                "       it replaced {} by {} at {} (a concurrent write it won against)",
                value_words(&lost.value),
                lost.writer,
                fmt_ts(lost.ts)
            ));
        }
        docs.push(
            json!({"holds": holds, "value": w.value, "replica": d.replica.as_str(), "seq": d.seq,
            "timestamp": fmt_ts(w.ts), "arrived": when_json(arrivals.of(d))}),
        );
    }
    if lines.is_empty() {
        lines.push("(never written)".into());
    }
    (lines, json!({"writes": docs}))
}

/// Each key's value with the write that holds it (and the concurrent ones
/// that lost): who wrote it, when, and when it came here.
fn blame_map(m: &crdt::LwwMap, arrivals: &Arrivals) -> (Vec<String>, Value) {
    let mut lines = Vec::new();
    let mut docs = Vec::new();
    for key in m.keys() {
        let writes = crdt::diff::key_writes(m, key);
        for (i, w) in writes.iter().enumerate() {
            let what = if i == 0 { "holds" } else { "lost " };
            lines.push(format!(
                "{what}  {} = {}  written by {} at {}  {}",
                quoted(key),
                value_words(&w.value),
                w.dot,
                fmt_ts(w.ts),
                when(arrivals.of(&w.dot))
            ));
        }
        docs.push(
            json!({"key": key, "writes": writes.iter().enumerate().map(|(i, w)| json!({
            "holds": i == 0, "value": w.value, "replica": w.dot.replica.as_str(), "seq": w.dot.seq,
            "timestamp": fmt_ts(w.ts), "arrived": when_json(arrivals.of(&w.dot)),
        })).collect::<Vec<_>>()}),
        );
    }
    if lines.is_empty() {
        lines.push("(no keys)".into());
    }
    (lines, json!({"keys": docs}))
}

/// Each replica's contributions over time: what each history row added
/// to its entry.
fn blame_counter(entries: &[&Entry]) -> (Vec<String>, Value) {
    // Per replica: its entry's last (up, down) and each change.
    let mut last: BTreeMap<ReplicaId, (u128, u128)> = BTreeMap::new();
    let mut changes: BTreeMap<ReplicaId, Vec<(i128, &Entry)>> = BTreeMap::new();
    for e in entries {
        let parts: Vec<(ReplicaId, u128, u128)> = match &e.delta {
            Object::GCounter(c) => c
                .entries()
                .map(|(r, x)| (r.clone(), u128::from(x.count), 0))
                .collect(),
            Object::PnCounter(c) => c
                .entries()
                .map(|(r, x)| (r.clone(), u128::from(x.p), u128::from(x.n)))
                .collect(),
            // A bounded counter: what each replica allocated and released.
            Object::BoundedCounter(c) => c
                .entries()
                .map(|(r, x)| (r.clone(), u128::from(x.allocated), u128::from(x.released)))
                .collect(),
            _ => Vec::new(),
        };
        for (r, up, down) in parts {
            let (p0, n0) = last.get(&r).copied().unwrap_or((0, 0));
            if up <= p0 && down <= n0 {
                continue;
            }
            let (p1, n1) = (up.max(p0), down.max(n0));
            let amount = (p1 - p0) as i128 - (n1 - n0) as i128;
            last.insert(r.clone(), (p1, n1));
            changes.entry(r).or_default().push((amount, e));
        }
    }
    let mut lines = Vec::new();
    let mut docs = Vec::new();
    for (r, list) in &changes {
        let (p, n) = last[r];
        let total = &(p as i128 - n as i128);
        lines.push(format!(
            "{r}: {total} in {} change{}",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        ));
        for (amount, e) in list {
            let sign = if *amount < 0 { "" } else { "+" };
            lines.push(format!(
                "  {sign}{amount}  @{} {} ({})",
                e.id,
                fmt_ms(e.time_ms),
                e.source
            ));
        }
        docs.push(json!({"replica": r.as_str(), "total": number(*total), "changes": list.iter().map(|(a, e)| json!({
            "amount": number(*a), "id": e.id, "time_ms": e.time_ms, "time": fmt_ms(e.time_ms), "source": e.source,
        })).collect::<Vec<_>>()}));
    }
    if lines.is_empty() {
        lines.push("(no contributions in the history)".into());
    }
    (lines, json!({"replicas": docs}))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn blame_prints_a_heading_per_type_and_its_lines() {
        let blamed = vec![
            (
                CrdtType::OrSet,
                vec!["\"a\" added by agent-1".to_string()],
                json!({"type": "or-set"}),
            ),
            (CrdtType::GCounter, vec![], json!({"type": "g-counter"})),
        ];
        let (text, doc) = printed(&Blamed {
            name: "n",
            blamed: blamed.clone(),
        });
        assert_eq!(
            text,
            "n (or-set)\n  \"a\" added by agent-1\nn (g-counter)\n"
        );
        assert_eq!(doc["conflict"], true);
        let (_, doc) = printed(&Blamed {
            name: "n",
            blamed: blamed[..1].to_vec(),
        });
        assert_eq!(doc, json!({"type": "or-set", "conflict": false}));
    }
}

//! `crdt diff`: the semantic diff of two states, and what merging gives.

use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use colored::Color;
use crdt::diff::{
    CountEntry, Detail, ElementDiff, KeyDiff, NameDiff, ObjectDiff, RegisterDiff, Status,
    WriteInfo, diff_stores,
};
use crdt::{Causality, CrdtType, Dot, Object};
use serde_json::{Value, json};

use super::*;
use crate::cli::Ctx;
use crate::cli::files::read_snapshot;
use crate::cli::output::{Out, Report, Style};

fn relation_text(r: Causality) -> &'static str {
    match r {
        Causality::Equal => "same version, different state",
        Causality::Before => "A is behind B (B has seen everything A has)",
        Causality::After => "A is ahead of B (A has seen everything B has)",
        Causality::Concurrent => "concurrent (each side has changes the other lacks)",
    }
}

fn relation_word(r: Causality) -> &'static str {
    match r {
        Causality::Equal => "equal-version",
        Causality::Before => "A-behind",
        Causality::After => "A-ahead",
        Causality::Concurrent => "concurrent",
    }
}

fn entry_text(e: Option<CountEntry>, ty: CrdtType) -> String {
    match (e, ty) {
        (None, _) => "—".into(),
        (Some(e), CrdtType::GCounter) => format!("+{} ({})", e.p, ops(e.seq)),
        (Some(e), _) => format!("+{} -{} ({})", e.p, e.n, ops(e.seq)),
    }
}

fn ops(n: u64) -> String {
    if n == 1 {
        "1 op".into()
    } else {
        format!("{n} ops")
    }
}

pub(super) fn write_text(st: Style, w: &WriteInfo) -> String {
    format!(
        "{} by {} at {}",
        st.cut(&w.value.to_string(), 50),
        w.dot.replica,
        fmt_ts(w.ts)
    )
}

/// Why the merge keeps the write it keeps.
fn register_verdict(st: Style, d: &RegisterDiff, relation: Causality) -> String {
    let Some(win) = d.merged.first() else {
        return "merge: still no value".into();
    };
    let from = match (d.a.contains(win), d.b.contains(win)) {
        (true, true) => "both sides'",
        (true, false) => "A's",
        (false, true) => "B's",
        (false, false) => "a",
    };
    let why = if d.merged.len() == 1 {
        match relation {
            Causality::Before => "it was written after seeing A's value".to_string(),
            Causality::After => "it was written after seeing B's value".to_string(),
            _ => "it replaced the other writes it had seen".to_string(),
        }
    } else {
        let second = &d.merged[1];
        if win.ts > second.ts {
            format!(
                "the writes are concurrent and it has the later timestamp ({} > {})",
                fmt_ts(win.ts),
                fmt_ts(second.ts)
            )
        } else {
            format!(
                "the writes are concurrent with equal timestamps; the replica id breaks the tie ({} > {})",
                win.dot.replica, second.dot.replica
            )
        }
    };
    format!("merge keeps {from} write {}: {why}", write_text(st, win))
}

/// One key of a map: each side's value, then what the merge keeps and why
/// ("\"ai-review\": agent-2's write wins; agent-1's true lost").
fn key_lines(st: Style, k: &KeyDiff) -> Vec<String> {
    let d = &k.writes;
    let side = |list: &Vec<WriteInfo>| match list.first() {
        Some(w) if list.len() > 1 => {
            format!("{} (+{} concurrent)", write_text(st, w), list.len() - 1)
        }
        Some(w) => write_text(st, w),
        None => "—".to_string(),
    };
    let key = crdt::history::quoted(&k.key);
    let mut lines = vec![format!("{key}: A {}; B {}", side(&d.a), side(&d.b))];
    let only = |from: &str, other: &str| {
        format!("{from}'s write is one {other} has not seen; merge keeps it")
    };
    let outcome = match d.merged.as_slice() {
        [] if d.a.is_empty() => "unset in A after A saw B's write; merge drops the key".to_string(),
        [] if d.b.is_empty() => "unset in B after B saw A's write; merge drops the key".to_string(),
        [] => "each side unset what the other wrote; merge drops the key".to_string(),
        [win] => match (d.a.contains(win), d.b.contains(win)) {
            (true, _) if d.b.is_empty() => only("A", "B"),
            (_, true) if d.a.is_empty() => only("B", "A"),
            (true, _) => "A's write was made after seeing B's; merge keeps it".to_string(),
            _ => "B's write was made after seeing A's; merge keeps it".to_string(),
        },
        [win, rest @ ..] => {
            let why = if win.ts > rest[0].ts {
                "the later timestamp"
            } else {
                "equal timestamps, the greater replica id"
            };
            format!(
                "{}'s write wins ({why}); {}",
                win.dot.replica,
                lost_writes(st, rest)
            )
        }
    };
    lines.push(format!("  {outcome}"));
    lines
}

fn element_text(st: Style, e: &ElementDiff) -> (String, String) {
    let v = st.cut(&e.value.to_string(), 50);
    let what = match (e.a_dots.is_empty(), e.b_dots.is_empty(), e.kept) {
        (false, true, true) => format!(
            "only in A (added {}, an add B has not seen); merge adds it to B",
            dots_text(&e.a_dots)
        ),
        (false, true, false) => format!(
            "in A (added {}), removed in B after B saw that add; merge drops it",
            dots_text(&e.a_dots)
        ),
        (true, false, true) => format!(
            "only in B (added {}, an add A has not seen); merge adds it to A",
            dots_text(&e.b_dots)
        ),
        (true, false, false) => format!(
            "in B (added {}), removed in A after A saw that add; merge drops it",
            dots_text(&e.b_dots)
        ),
        _ => format!(
            "in both, by different adds (A: {}; B: {}); merge keeps it{}",
            dots_text(&e.a_dots),
            dots_text(&e.b_dots),
            if e.kept { "" } else { " nowhere" }
        ),
    };
    let sign = if !e.kept {
        "-"
    } else if e.a_dots.is_empty() || e.b_dots.is_empty() {
        "+"
    } else {
        "~"
    };
    (format!("{sign} {v}"), what)
}

/// A colored inline character diff: removed text red and struck, added green.
fn inline_diff(st: Style, a: &str, b: &str) -> String {
    let plain = !st.color;
    let diff = similar::TextDiff::from_chars(a, b);
    let mut s = String::new();
    for change in diff.iter_all_changes() {
        let v = change.value();
        match change.tag() {
            similar::ChangeTag::Equal => s.push_str(v),
            similar::ChangeTag::Delete if plain => s.push_str(&format!("[-{v}-]")),
            similar::ChangeTag::Insert if plain => s.push_str(&format!("{{+{v}+}}")),
            similar::ChangeTag::Delete => s.push_str(&st.struck(v, Color::Red)),
            similar::ChangeTag::Insert => s.push_str(&st.underlined(v, Color::Green)),
        }
    }
    // Adjacent same-kind markers read better merged: "[-a-][-b-]" -> "[-ab-]".
    s.replace("-][-", "").replace("+}{+", "")
}

fn object_diff_lines(st: Style, od: &ObjectDiff, ty: CrdtType) -> Vec<String> {
    let mut lines = Vec::new();
    match &od.detail {
        Detail::Counter(rows) => {
            for r in rows {
                lines.push(format!(
                    "{}: A {}, B {}",
                    r.replica,
                    entry_text(r.a, ty),
                    entry_text(r.b, ty)
                ));
            }
        }
        Detail::Register(d) => {
            for (side, list) in [("A", &d.a), ("B", &d.b)] {
                match list.first() {
                    Some(w) => lines.push(format!(
                        "{side}: {}{}",
                        write_text(st, w),
                        if list.len() > 1 {
                            format!(" (+{} concurrent)", list.len() - 1)
                        } else {
                            String::new()
                        }
                    )),
                    None => lines.push(format!("{side}: never written")),
                }
            }
            lines.push(register_verdict(st, d, od.relation));
            for w in d.merged.iter().skip(1) {
                lines.push(format!("loses: {}", write_text(st, w)));
            }
        }
        Detail::Set(elems) => {
            for e in elems {
                let (head, what) = element_text(st, e);
                lines.push(format!("{head}  {what}"));
            }
        }
        Detail::Text { a, b, .. } => {
            lines.push(format!("A → B: {}", inline_diff(st, a, b)));
        }
        Detail::Map(keys) => {
            for k in keys {
                lines.extend(key_lines(st, k));
            }
        }
    }
    lines
}

/// What merging gives, in one line.
fn verdict(st: Style, od: &ObjectDiff) -> String {
    let merged = od.merged.value_json();
    let shown = match &od.merged {
        Object::Rga(t) => format!("{:?}", st.cut(&t.text(), 60)),
        _ => st.summary(&merged, 60),
    };
    let a_changes = od.a != od.merged;
    let b_changes = od.b != od.merged;
    match (a_changes, b_changes) {
        (false, _) => format!("merge gives A's state ({shown}); only B changes"),
        (true, false) => format!("merge gives B's state ({shown}); only A changes"),
        (true, true) => format!("merge gives {shown}; both sides change"),
    }
}

fn status_word(n: &NameDiff) -> &'static str {
    match &n.status {
        Status::OnlyA(_) => "only-a",
        Status::OnlyB(_) => "only-b",
        Status::Equal(_) => "equal",
        Status::Different(_) => "different",
    }
}

/// Each side's writes and the merged ones, best first.
fn writes_json(d: &RegisterDiff) -> Value {
    let w = |l: &Vec<WriteInfo>| -> Value {
        l.iter().map(|w| json!({"dot": [w.dot.replica.as_str(), w.dot.seq], "ts": [w.ts.ms, w.ts.counter], "value": w.value})).collect()
    };
    json!({"a": w(&d.a), "b": w(&d.b), "merged": w(&d.merged)})
}

fn diff_json(n: &NameDiff) -> Value {
    let mut v = json!({"name": n.name, "type": n.ty.as_str(), "status": status_word(n)});
    match &n.status {
        Status::OnlyA(o) => v["a"] = o.value_json(),
        Status::OnlyB(o) => v["b"] = o.value_json(),
        Status::Equal(o) => {
            v["a"] = o.value_json();
            v["b"] = o.value_json();
        }
        Status::Different(od) => {
            v["a"] = od.a.value_json();
            v["b"] = od.b.value_json();
            v["merged"] = od.merged.value_json();
            v["relation"] = json!(relation_word(od.relation));
            v["verdict"] = json!(verdict(Style::plain(), od));
            v["detail"] = match &od.detail {
                Detail::Counter(rows) => Value::Array(
                    rows.iter()
                        .map(|r| {
                            let e = |x: Option<CountEntry>| x.map_or(Value::Null, |e| json!({"seq": e.seq, "p": e.p, "n": e.n}));
                            json!({"replica": r.replica.as_str(), "a": e(r.a), "b": e(r.b)})
                        })
                        .collect(),
                ),
                Detail::Register(d) => writes_json(d),
                Detail::Map(keys) => keys
                    .iter()
                    .map(|k| {
                        let mut v = writes_json(&k.writes);
                        v["key"] = json!(k.key);
                        v
                    })
                    .collect(),
                Detail::Set(elems) => Value::Array(
                    elems
                        .iter()
                        .map(|e| {
                            let dots = |l: &Vec<Dot>| -> Value { l.iter().map(|d| json!([d.replica.as_str(), d.seq])).collect() };
                            json!({"value": e.value, "a_dots": dots(&e.a_dots), "b_dots": dots(&e.b_dots), "kept": e.kept})
                        })
                        .collect(),
                ),
                Detail::Text { a, b, merged } => {
                    let ops: Vec<Value> = similar::TextDiff::from_chars(a.as_str(), b.as_str())
                        .iter_all_changes()
                        .map(|c| json!([match c.tag() { similar::ChangeTag::Equal => "=", similar::ChangeTag::Delete => "-", similar::ChangeTag::Insert => "+" }, c.value()]))
                        .collect();
                    json!({"a": a, "b": b, "merged": merged, "changes": ops})
                }
            };
        }
    }
    v
}

pub fn diff(
    ctx: &Ctx,
    out: &mut Out<impl Write>,
    local: bool,
    stat: bool,
    at: &[String],
    args: &[String],
) -> Result<bool> {
    let local_at = |when: Option<&String>| -> Result<(Store, String)> {
        let ctx = ctx.at(when.cloned())?;
        let Some(store) = ctx.load()? else {
            bail!(
                "no replica at {} yet: nothing to compare",
                ctx.state.display()
            );
        };
        let label = when.map_or("local".to_string(), |w| format!("local at {w}"));
        Ok((store, label))
    };
    let (a, b, select, names) = if local {
        if at.len() > 2 {
            bail!("--at is given at most twice: A's moment, then B's");
        }
        let (a, a_name) = local_at(at.first())?;
        if at.len() == 2 {
            let (b, b_name) = local_at(at.get(1))?;
            (a, b, args, (a_name, b_name))
        } else {
            let Some(file) = args.first() else {
                bail!("diff --local needs B: a snapshot file (or a second --at WHEN)");
            };
            let b = read_snapshot(Path::new(file))?;
            (a, b, &args[1..], (a_name, file.clone()))
        }
    } else {
        if args.len() < 2 {
            bail!("diff needs two snapshots: crdt diff A.json B.json (or --local B.json)");
        }
        if args[0] == "-" && args[1] == "-" {
            bail!("only one side can be read from stdin");
        }
        (
            read_snapshot(Path::new(&args[0]))?,
            read_snapshot(Path::new(&args[1]))?,
            &args[2..],
            (args[0].clone(), args[1].clone()),
        )
    };
    let diffs = diff_stores(&a, &b, select);
    if diffs.is_empty() && !select.is_empty() {
        // Selecting nothing is a typo more often than an answer.
        bail!(
            "nothing in {} or {} matches {} (see `crdt ls`)",
            names.0,
            names.1,
            select.join(" ")
        );
    }
    let differs = diffs.iter().any(|n| !matches!(n.status, Status::Equal(_)));
    out.report(&Diffed {
        names: (&names.0, &names.1),
        diffs: &diffs,
        stat,
    })?;
    Ok(differs)
}

/// `diff`: how the names of A and B differ (`--stat`: a line per name).
struct Diffed<'a> {
    names: (&'a str, &'a str),
    diffs: &'a [NameDiff],
    stat: bool,
}

impl Report for Diffed<'_> {
    fn json(&self) -> Value {
        let equal = self
            .diffs
            .iter()
            .all(|n| matches!(n.status, Status::Equal(_)));
        let names: Vec<Value> = self.diffs.iter().map(diff_json).collect();
        json!({"a": self.names.0, "b": self.names.1, "equal": equal, "names": names})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        if self.stat {
            write_stat(out, self.diffs)
        } else {
            write_diff(out, self.names, self.diffs)
        }
    }
}

/// `diff --stat`: one line per name.
pub(super) fn write_stat(out: &mut Out<impl Write>, diffs: &[NameDiff]) -> std::io::Result<()> {
    let st = out.style();
    let rows = diffs
        .iter()
        .map(|n| {
            let (rel, what) = match &n.status {
                Status::OnlyA(o) => (
                    "only-a".to_string(),
                    format!("A={}", st.summary(&o.value_json(), 30)),
                ),
                Status::OnlyB(o) => (
                    "only-b".to_string(),
                    format!("B={}", st.summary(&o.value_json(), 30)),
                ),
                Status::Equal(o) => ("equal".to_string(), st.summary(&o.value_json(), 30)),
                Status::Different(od) => (
                    relation_word(od.relation).to_string(),
                    format!(
                        "A={} B={} merge={}",
                        st.summary(&od.a.value_json(), 20),
                        st.summary(&od.b.value_json(), 20),
                        st.summary(&od.merged.value_json(), 20)
                    ),
                ),
            };
            vec![n.name.clone(), n.ty.to_string(), rel, what]
        })
        .collect();
    out.table(&["name", "type", "status", "values"], rows)?;
    Ok(())
}

/// The whole diff: per name, what differs, why, and what merging gives.
pub(super) fn write_diff(
    out: &mut Out<impl Write>,
    names: (&str, &str),
    diffs: &[NameDiff],
) -> std::io::Result<()> {
    let st = out.style();
    writeln!(out, "A = {}   B = {}", names.0, names.1)?;
    if diffs.is_empty() {
        writeln!(out, "no objects to compare")?;
    }
    for n in diffs {
        let head = st.bold(&format!("{} ({})", n.name, n.ty));
        match &n.status {
            Status::Equal(_) => writeln!(out, "{head}: {}", st.paint("equal", Color::Green))?,
            Status::OnlyA(o) | Status::OnlyB(o) => {
                let (here, other) = if matches!(n.status, Status::OnlyA(_)) {
                    ("A", "B")
                } else {
                    ("B", "A")
                };
                writeln!(
                    out,
                    "{head}: {}",
                    st.paint(&format!("only in {here}"), Color::Yellow)
                )?;
                writeln!(
                    out,
                    "  verdict: merge adds it to {other} ({})",
                    st.summary(&o.value_json(), 60)
                )?;
            }
            Status::Different(od) => {
                writeln!(
                    out,
                    "{head}: {}, {}",
                    st.paint("different", Color::Red),
                    relation_text(od.relation)
                )?;
                writeln!(out, "  A = {}", st.summary(&od.a.value_json(), 80))?;
                writeln!(out, "  B = {}", st.summary(&od.b.value_json(), 80))?;
                for line in object_diff_lines(st, od, n.ty) {
                    writeln!(out, "  {line}")?;
                }
                writeln!(out, "  verdict: {}", verdict(st, od))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;
    use crdt::{ReplicaId, Store};

    #[test]
    fn a_diff_prints_its_verdict_or_its_stat_line_and_a_document() {
        let (a, b) = (
            ReplicaId::new("agent-1").unwrap(),
            ReplicaId::new("agent-2").unwrap(),
        );
        let (mut left, mut right) = (Store::new(a.clone()), Store::new(b.clone()));
        for (store, who, n) in [(&mut left, &a, 2), (&mut right, &b, 3)] {
            if let Object::GCounter(c) = store.get_or_create("m", CrdtType::GCounter) {
                c.inc(who, n).unwrap();
            }
        }
        let diffs = diff_stores(&left, &right, &[]);
        let diffed = |stat| Diffed {
            names: ("a.json", "b.json"),
            diffs: &diffs,
            stat,
        };
        let (text, doc) = printed(&diffed(false));
        assert!(text.contains("verdict: merge gives 5"), "{text}");
        assert_eq!(
            (doc["equal"].clone(), doc["a"].clone()),
            (json!(false), json!("a.json"))
        );
        assert_eq!(doc["names"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            printed(&diffed(true)).0,
            "m  g-counter  concurrent  A=2 B=3 merge=5\n"
        );
        let same = diff_stores(&left, &left, &[]);
        let (_, doc) = printed(&Diffed {
            names: ("a", "a"),
            diffs: &same,
            stat: false,
        });
        assert_eq!(doc["equal"], true);
    }
}

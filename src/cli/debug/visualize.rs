//! `crdt visualize NAME`: a picture of an object, as text or Graphviz dot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use colored::Color;
use crdt::diff::{key_writes, writes};
use crdt::{CrdtType, Dot, Object, ReplicaId};
use crdt::{GCounter, LwwMap, LwwRegister, OrSet, PnCounter, Rga};
use serde_json::{Value, json};

use super::*;
use crate::cli::Ctx;
use crate::cli::args::VizFormat;
use crate::cli::output::{Out, Report, Style};
use crate::cli::read::{objects, peers};

pub fn visualize(
    ctx: &Ctx,
    out: &mut Out<impl Write>,
    name: &str,
    format: VizFormat,
    from: Option<PathBuf>,
) -> Result<()> {
    let store = source(ctx, name, from.as_deref())?;
    let list = objects(&store, name)?;
    for o in list {
        let picture = match format {
            VizFormat::Text => viz_text(out.style(), name, o),
            VizFormat::Dot => viz_dot(out.style(), name, o),
        };
        out.report(&Picture {
            name,
            ty: o.ty(),
            format,
            picture,
        })?;
    }
    Ok(())
}

/// `visualize`: one object's picture (a JSON document per object).
struct Picture<'a> {
    name: &'a str,
    ty: CrdtType,
    format: VizFormat,
    picture: String,
}

impl Report for Picture<'_> {
    fn json(&self) -> Value {
        let format = format!("{:?}", self.format).to_lowercase();
        json!({"name": self.name, "type": self.ty.as_str(), "format": format, "picture": self.picture})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        write!(out, "{}", self.picture)
    }
}

fn bar(n: u128, max: u128, width: usize) -> String {
    let len = if max == 0 {
        0
    } else {
        ((n * width as u128).div_ceil(max)) as usize
    };
    "█".repeat(len)
}

pub(super) fn viz_text(st: Style, name: &str, o: &Object) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}) = {}",
        st.bold(name),
        o.ty(),
        st.summary(&o.value_json(), 80)
    );
    match o {
        Object::GCounter(c) => picture_g_counter(st, &mut s, c),
        Object::PnCounter(c) => picture_pn_counter(st, &mut s, c),
        Object::LwwRegister(r) => picture_register(st, &mut s, r),
        Object::OrSet(set) => picture_set(st, &mut s, set),
        Object::Rga(t) => picture_text(st, &mut s, t),
        Object::Map(m) => picture_map(st, &mut s, m),
        Object::BoundedCounter(c) => picture_bounded(st, &mut s, c),
    }
    s
}

/// A Graphviz string literal.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn viz_dot(st: Style, name: &str, o: &Object) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", q(name));
    let _ = writeln!(
        s,
        "  label={}; labelloc=t; rankdir=LR;",
        q(&format!(
            "{name} ({}) = {}",
            o.ty(),
            st.summary(&o.value_json(), 60)
        ))
    );
    let _ = writeln!(s, "  node [shape=box, fontname=\"monospace\"];");
    match o {
        Object::GCounter(_) | Object::PnCounter(_) | Object::BoundedCounter(_) => {
            dot_counter(&mut s, o)
        }
        Object::LwwRegister(r) => dot_register(st, &mut s, o, r),
        Object::OrSet(set) => dot_set(st, &mut s, set),
        Object::Rga(t) => dot_text(st, &mut s, t),
        Object::Map(m) => dot_map(st, &mut s, m),
    }
    s.push_str("}\n");
    s
}

fn picture_g_counter(st: Style, s: &mut String, c: &GCounter) {
    let max = c
        .entries()
        .map(|(_, e)| u128::from(e.count))
        .max()
        .unwrap_or(0);
    let w = widest(c.entries().map(|(r, _)| r));
    let colors = replica_colors(c.entries().map(|(r, _)| r.clone()));
    for (r, e) in c.entries() {
        let _ = writeln!(
            s,
            "  {:w$} {} {}",
            r.as_str(),
            st.paint(&bar(e.count.into(), max, 40), colors[r]),
            e.count
        );
    }
}

fn picture_pn_counter(st: Style, s: &mut String, c: &PnCounter) {
    let max = c
        .entries()
        .map(|(_, e)| u128::from(e.p.max(e.n)))
        .max()
        .unwrap_or(0);
    let w = widest(c.entries().map(|(r, _)| r));
    for (r, e) in c.entries() {
        let _ = writeln!(
            s,
            "  {:w$} + {} {}",
            r.as_str(),
            st.paint(&bar(e.p.into(), max, 40), Color::Green),
            e.p
        );
        let _ = writeln!(
            s,
            "  {:w$} - {} {}",
            "",
            st.paint(&bar(e.n.into(), max, 40), Color::Red),
            e.n
        );
    }
}

fn picture_register(st: Style, s: &mut String, r: &LwwRegister) {
    let list = writes(r);
    let _ = writeln!(s, "  writes no later write replaced, best first:");
    for (i, w) in list.iter().enumerate() {
        let mark = if i == 0 {
            st.paint("★", Color::Green)
        } else {
            " ".into()
        };
        let why = match i {
            0 if list.len() == 1 => "value".to_string(),
            0 => "value: greatest (timestamp, replica) of the concurrent writes".to_string(),
            _ => "concurrent, loses".to_string(),
        };
        let _ = writeln!(
            s,
            "  {mark} {:<12} {}  {:<30} {}",
            w.dot.to_string(),
            fmt_ts(w.ts),
            st.cut(&w.value.to_string(), 30),
            st.dim(&why)
        );
    }
    if let Some(l) = r.lost() {
        let _ = writeln!(
            s,
            "    last conflict lost: {} by {} at {}",
            st.cut(&l.value.to_string(), 40),
            l.writer,
            fmt_ts(l.ts)
        );
    }
    let _ = writeln!(s, "  seen: {}", context_text(r.context()));
}

fn picture_bounded(st: Style, s: &mut String, c: &crdt::BoundedCounter) {
    let holders = c.holders();
    let max = c.limit().max(1);
    let w = widest(holders.iter().map(|h| &h.replica));
    for h in &holders {
        let used = st.paint(&bar(u128::from(h.allocated), max, 40), Color::Red);
        let free = st.paint(
            &bar(h.rights.max(0) as u128, max, 40).replace('█', "░"),
            Color::Green,
        );
        let _ = writeln!(
            s,
            "  {:w$} {used}{free} {} allocated, {} unused",
            h.replica.as_str(),
            h.allocated,
            h.rights
        );
    }
    let _ = writeln!(
        s,
        "  limit {}: █ allocated, ░ unused rights (each replica allocates only its own)",
        c.limit()
    );
}

fn picture_map(st: Style, s: &mut String, m: &LwwMap) {
    let colors = replica_colors(m.context().iter().map(|(r, _)| r.clone()));
    let width = m
        .keys()
        .map(|k| st.cut(k, 24).chars().count())
        .max()
        .unwrap_or(0);
    for key in m.keys() {
        for (i, w) in key_writes(m, key).iter().enumerate() {
            let (shown, mark, why) = match i {
                0 => (st.cut(key, 24), st.paint("★", Color::Green), ""),
                _ => (String::new(), " ".into(), "concurrent, loses"),
            };
            let line = format!(
                "  {shown:width$} {mark} {} {}  {:<30} {}",
                st.paint(
                    &format!("{:<12}", w.dot.to_string()),
                    colors[&w.dot.replica]
                ),
                fmt_ts(w.ts),
                st.cut(&w.value.to_string(), 30),
                st.dim(why)
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
    }
    let _ = writeln!(s, "  seen: {}", context_text(m.context()));
    let _ = writeln!(
        s,
        "  (each key is a register: ★ marks its value; an event not listed was an unset or a replaced write)"
    );
}

fn picture_set(st: Style, s: &mut String, set: &OrSet) {
    // Per replica: the events it made that this replica has seen, and
    // which of them are adds still keeping a member alive.
    let mut live: BTreeMap<ReplicaId, Vec<(u64, String)>> = BTreeMap::new();
    for e in set.elements() {
        for d in &e.dots {
            live.entry(d.replica.clone())
                .or_default()
                .push((d.seq, st.cut(&e.value.to_string(), 24)));
        }
    }
    let colors = replica_colors(set.context().iter().map(|(r, _)| r.clone()));
    for (r, ranges) in set.context().iter() {
        let mut adds = live.remove(r).unwrap_or_default();
        adds.sort();
        let seen: Vec<String> = ranges
            .as_slice()
            .iter()
            .map(|&(lo, hi)| format!("{lo}..{hi}"))
            .collect();
        let _ = writeln!(
            s,
            "  {} events {}",
            st.paint(r.as_str(), colors[r]),
            seen.join(",")
        );
        for (seq, v) in adds {
            let _ = writeln!(s, "    {r}:{seq} adds {v}");
        }
    }
    let _ = writeln!(
        s,
        "  (an event not listed as an add was a remove or an add that a later event replaced)"
    );
}

fn picture_text(st: Style, s: &mut String, t: &Rga) {
    let colors = replica_colors(t.elements().iter().map(|e| e.id.replica.clone()));
    let plain = !st.color;
    let mut line = String::new();
    for run in t.runs() {
        let c = colors[&run.elems[0].id.replica];
        let mut i = 0;
        while i < run.elems.len() {
            let del = run.elems[i].deleted.is_some();
            let j = (i..run.elems.len())
                .find(|&j| run.elems[j].deleted.is_some() != del)
                .unwrap_or(run.elems.len());
            let chunk: String = run.elems[i..j].iter().map(|e| e.ch).collect();
            let chunk = if del && plain {
                format!("[-{chunk}-]")
            } else {
                chunk
            };
            let painted = if del {
                st.struck(&chunk, c)
            } else {
                st.paint(&chunk, c)
            };
            line.push_str(&painted);
            i = j;
        }
    }
    let _ = writeln!(s, "  {line}");
    let legend: Vec<String> = colors
        .iter()
        .map(|(r, c)| st.paint(r.as_str(), *c))
        .collect();
    let deleted = if plain {
        "[-x-] deleted"
    } else {
        "struck: deleted"
    };
    let _ = writeln!(s, "  legend: {}; {deleted}", legend.join(", "));
    let _ = writeln!(s, "  runs in document order:");
    for run in t.runs() {
        let first = &run.elems[0];
        let text: String = run.elems.iter().map(|e| e.ch).collect();
        let dels = run.elems.iter().filter(|e| e.deleted.is_some()).count();
        let origin = first
            .origin
            .as_ref()
            .map_or("start".to_string(), Dot::to_string);
        let _ = writeln!(
            s,
            "    {:<14} after {:<14} {:?}{}",
            format!(
                "{}..{}",
                first.id,
                first.id.seq + run.elems.len() as u64 - 1
            ),
            origin,
            st.cut(&text, 40),
            if dels > 0 {
                format!(" ({dels} deleted)")
            } else {
                String::new()
            }
        );
    }
}

fn dot_counter(s: &mut String, o: &Object) {
    let _ = writeln!(
        s,
        "  value [shape=doublecircle, label={}];",
        q(&o.value_json().to_string())
    );
    for (r, what) in peers(o) {
        let _ = writeln!(s, "  {} [shape=ellipse];", q(&r));
        let _ = writeln!(s, "  {} -> value [label={}];", q(&r), q(&what));
    }
}

fn dot_register(st: Style, s: &mut String, o: &Object, r: &LwwRegister) {
    let list = writes(r);
    let _ = writeln!(
        s,
        "  value [shape=doublecircle, label={}];",
        q(&st.cut(&o.value_json().to_string(), 40))
    );
    for w in &list {
        let _ = writeln!(s, "  {} [shape=ellipse];", q(w.dot.replica.as_str()));
    }
    dot_writes(st, s, &list, "value");
}

/// A node per write (best first: the one that wins, bold), from its
/// writer's node to `target` (a node id as written).
fn dot_writes(st: Style, s: &mut String, list: &[crdt::diff::WriteInfo], target: &str) {
    for (i, w) in list.iter().enumerate() {
        let id = w.dot.to_string();
        let style = if i == 0 {
            ", style=bold"
        } else {
            ", style=dashed"
        };
        let _ = writeln!(
            s,
            "  {} [label={}{style}];",
            q(&id),
            q(&format!(
                "{id}\n{}\n{}",
                fmt_ts(w.ts),
                st.cut(&w.value.to_string(), 40)
            ))
        );
        let _ = writeln!(s, "  {} -> {};", q(w.dot.replica.as_str()), q(&id));
        let label = if i == 0 { "wins" } else { "loses" };
        let _ = writeln!(s, "  {} -> {target} [label={}];", q(&id), q(label));
    }
}

fn dot_map(st: Style, s: &mut String, m: &LwwMap) {
    for (r, _) in m.context().iter() {
        let _ = writeln!(s, "  {} [shape=ellipse];", q(r.as_str()));
    }
    for (i, key) in m.keys().enumerate() {
        let node = format!("key {i}");
        let value = m
            .get(key)
            .map_or(String::new(), |v| st.cut(&v.to_string(), 40));
        let _ = writeln!(
            s,
            "  {} [shape=doublecircle, label={}];",
            q(&node),
            q(&format!("{}\n{value}", st.cut(key, 30)))
        );
        dot_writes(st, s, &key_writes(m, key), &q(&node));
    }
}

fn dot_set(st: Style, s: &mut String, set: &OrSet) {
    for (r, _) in set.context().iter() {
        let _ = writeln!(s, "  {} [shape=ellipse];", q(r.as_str()));
    }
    for (i, e) in set.elements().enumerate() {
        let el = format!("element {i}");
        let _ = writeln!(
            s,
            "  {} [label={}];",
            q(&el),
            q(&st.cut(&e.value.to_string(), 40))
        );
        for d in &e.dots {
            let _ = writeln!(
                s,
                "  {} [shape=circle, label={}];",
                q(&d.to_string()),
                q(&d.seq.to_string())
            );
            let _ = writeln!(s, "  {} -> {};", q(d.replica.as_str()), q(&d.to_string()));
            let _ = writeln!(s, "  {} -> {} [label=\"adds\"];", q(&d.to_string()), q(&el));
        }
    }
}

fn dot_text(st: Style, s: &mut String, t: &Rga) {
    let _ = writeln!(s, "  start [shape=point];");
    let runs = t.runs();
    // Which run holds each element id, to draw origin edges run to run.
    let mut run_of: BTreeMap<&Dot, usize> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for e in &run.elems {
            run_of.insert(&e.id, i);
        }
    }
    for (i, run) in runs.iter().enumerate() {
        let first = &run.elems[0];
        let text: String = run.elems.iter().map(|e| e.ch).collect();
        let dels = run.elems.iter().filter(|e| e.deleted.is_some()).count();
        let label = format!(
            "{:?}\n{}..{} lamport {}{}",
            st.cut(&text, 30),
            first.id,
            first.id.seq + run.elems.len() as u64 - 1,
            first.lamport,
            if dels > 0 {
                format!("\n{dels} deleted")
            } else {
                String::new()
            }
        );
        let style = if dels == run.elems.len() {
            ", style=dashed, fontcolor=gray"
        } else {
            ""
        };
        let _ = writeln!(s, "  r{i} [label={}{style}];", q(&label));
        match &first.origin {
            None => {
                let _ = writeln!(s, "  start -> r{i};");
            }
            Some(o) => {
                let from = run_of
                    .get(o)
                    .map_or("start".to_string(), |j| format!("r{j}"));
                let _ = writeln!(s, "  {from} -> r{i} [label={}];", q(&format!("after {o}")));
            }
        }
    }
    // Document order, as an invisible chain that keeps the picture readable.
    for i in 1..runs.len() {
        let _ = writeln!(
            s,
            "  r{} -> r{i} [style=dotted, arrowhead=none, constraint=false];",
            i - 1
        );
    }
}

/// The width of the longest replica id.
fn widest<'a>(replicas: impl Iterator<Item = &'a ReplicaId>) -> usize {
    replicas.map(|r| r.as_str().len()).max().unwrap_or(0)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn a_picture_is_printed_as_drawn_or_inside_a_document() {
        for o in &super::super::test::objects() {
            let picture = viz_dot(Style::plain(), "n", o);
            let (text, doc) = printed(&Picture {
                name: "n",
                ty: o.ty(),
                format: VizFormat::Dot,
                picture: picture.clone(),
            });
            assert_eq!(text, picture);
            assert_eq!(
                (doc["format"].clone(), doc["picture"].clone()),
                (json!("dot"), json!(picture))
            );
        }
    }
}

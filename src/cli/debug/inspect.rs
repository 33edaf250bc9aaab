//! `crdt inspect NAME`: an object's whole state, per type.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use crdt::diff::{key_writes, writes};
use crdt::{GCounter, LwwMap, LwwRegister, OrSet, PnCounter, Rga};
use crdt::{Object, ReplicaId};
use serde_json::{Value, json};

use super::*;
use crate::cli::Ctx;
use crate::cli::output::{Out, Report, Style, per_type};
use crate::cli::read::{header, objects, peers, peers_json, version_json};

pub fn inspect(
    ctx: &Ctx,
    out: &mut Out<impl Write>,
    name: &str,
    from: Option<PathBuf>,
) -> Result<()> {
    let store = source(ctx, name, from.as_deref())?;
    let list = objects(&store, name)?;
    out.report(&Inspected { name, list })?;
    Ok(())
}

/// `inspect`: the whole state of each object of a name.
struct Inspected<'a> {
    name: &'a str,
    list: Vec<&'a Object>,
}

impl Report for Inspected<'_> {
    fn json(&self) -> Value {
        let docs = self.list.iter().map(|o| inspect_json(self.name, o));
        per_type(self.name, docs.collect())
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        for (i, o) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            inspect_text(out, self.name, o)?;
        }
        Ok(())
    }
}

fn state_size(o: &Object) -> usize {
    o.state_json().to_string().len()
}

fn inspect_json(name: &str, o: &Object) -> Value {
    let mut doc = json!({"name": name, "type": o.ty().as_str(), "value": o.value_json(), "state": o.state_json(),
           "version": version_json(o), "peers": peers_json(o), "size": state_size(o)});
    if let Some(d) = crate::cli::read::deleted_json(o) {
        doc["deleted"] = d;
    }
    doc
}

pub(super) fn inspect_text(out: &mut Out<impl Write>, name: &str, o: &Object) -> io::Result<()> {
    let st = out.style();
    header(out, name, o, false)?;
    writeln!(
        out,
        "{}    {} bytes of state JSON",
        st.bold("size:"),
        state_size(o)
    )?;
    writeln!(out, "{}", st.bold("peers:"))?;
    for (r, what) in peers(o) {
        writeln!(out, "  {r}: {what}")?;
    }
    writeln!(out, "{}", st.bold("state:"))?;
    match o {
        Object::GCounter(c) => state_g_counter(out, c),
        Object::PnCounter(c) => state_pn_counter(out, c),
        Object::LwwRegister(r) => state_register(out, st, r),
        Object::OrSet(s) => state_set(out, st, s),
        Object::Rga(t) => state_text(out, t),
        Object::Map(m) => state_map(out, st, m),
        Object::BoundedCounter(c) => state_bounded(out, c),
    }
}

fn state_bounded(out: &mut Out<impl Write>, c: &crdt::BoundedCounter) -> io::Result<()> {
    let rows = c
        .holders()
        .into_iter()
        .map(|h| {
            vec![
                h.replica.to_string(),
                h.granted.to_string(),
                h.received.to_string(),
                h.sent.to_string(),
                h.allocated.to_string(),
                h.rights.to_string(),
            ]
        })
        .collect();
    out.labeled_table(
        &[
            "replica",
            "created",
            "received",
            "sent",
            "allocated",
            "unused",
        ],
        rows,
    )?;
    writeln!(
        out,
        "  limit {}: {} allocated, {} unused (a replica allocates only rights it holds)",
        c.limit(),
        c.value(),
        c.limit() as i128 - c.value()
    )?;
    Ok(())
}

fn state_map(out: &mut Out<impl Write>, st: Style, m: &LwwMap) -> io::Result<()> {
    let mut rows = Vec::new();
    for key in m.keys() {
        for (i, w) in key_writes(m, key).iter().enumerate() {
            let role = if i == 0 {
                "value"
            } else {
                "loses (concurrent)"
            };
            rows.push(vec![
                st.cut(key, 30),
                w.dot.to_string(),
                fmt_ts(w.ts),
                st.cut(&w.value.to_string(), 40),
                role.into(),
            ]);
        }
    }
    out.labeled_table(&["key", "dot", "timestamp", "value", "role"], rows)?;
    let live: usize = m.entries().map(|(_, w)| w.len()).sum();
    writeln!(out, "  causal context: {}", context_text(m.context()))?;
    writeln!(
        out,
        "  {} events seen, {live} writes live: {} unsets and replaced writes left no tombstone",
        m.context().count(),
        m.context().count() as usize - live
    )?;
    Ok(())
}

fn state_g_counter(out: &mut Out<impl Write>, c: &GCounter) -> io::Result<()> {
    let rows = c
        .entries()
        .map(|(r, e)| vec![r.to_string(), e.count.to_string(), e.seq.to_string()])
        .collect();
    out.labeled_table(&["replica", "count", "increments"], rows)?;
    Ok(())
}

fn state_pn_counter(out: &mut Out<impl Write>, c: &PnCounter) -> io::Result<()> {
    let rows = c
        .entries()
        .map(|(r, e)| {
            let net = i128::from(e.p) - i128::from(e.n);
            vec![
                r.to_string(),
                e.p.to_string(),
                e.n.to_string(),
                net.to_string(),
                e.seq.to_string(),
            ]
        })
        .collect();
    out.labeled_table(&["replica", "P (up)", "N (down)", "net", "changes"], rows)?;
    Ok(())
}

fn state_register(out: &mut Out<impl Write>, st: Style, r: &LwwRegister) -> io::Result<()> {
    let list = writes(r);
    let rows = list
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let role = if i == 0 {
                "value"
            } else {
                "loses (concurrent)"
            };
            vec![
                w.dot.to_string(),
                w.dot.replica.to_string(),
                fmt_ts(w.ts),
                st.cut(&w.value.to_string(), 50),
                role.into(),
            ]
        })
        .collect();
    out.labeled_table(&["dot", "writer", "timestamp", "value", "role"], rows)?;
    match r.lost() {
        Some(l) => writeln!(
            out,
            "  last conflict lost: {} by {} at {}",
            st.cut(&l.value.to_string(), 60),
            l.writer,
            fmt_ts(l.ts)
        )?,
        None => writeln!(
            out,
            "  last conflict lost: none (no concurrent writes seen)"
        )?,
    }
    writeln!(out, "  causal context: {}", context_text(r.context()))?;
    Ok(())
}

fn state_set(out: &mut Out<impl Write>, st: Style, s: &OrSet) -> io::Result<()> {
    let rows = s
        .elements()
        .map(|e| {
            vec![
                st.cut(&e.value.to_string(), 50),
                dots_text(&e.dots.iter().cloned().collect::<Vec<_>>()),
            ]
        })
        .collect();
    out.labeled_table(&["element", "dots (adds keeping it)"], rows)?;
    let live: usize = s.elements().map(|e| e.dots.len()).sum();
    writeln!(out, "  causal context: {}", context_text(s.context()))?;
    writeln!(
        out,
        "  {} events seen, {live} dots live: {} adds and removes left no tombstone",
        s.context().count(),
        s.context().count() as usize - live
    )?;
    Ok(())
}

fn state_text(out: &mut Out<impl Write>, t: &Rga) -> io::Result<()> {
    let total = t.elements().len();
    let visible = t.len();
    writeln!(
        out,
        "  {total} elements: {visible} visible, {} tombstones",
        total - visible
    )?;
    let mut by: BTreeMap<ReplicaId, (usize, usize, usize)> = BTreeMap::new();
    for run in t.runs() {
        let e = by.entry(run.elems[0].id.replica.clone()).or_default();
        e.0 += 1;
        e.1 += run.elems.len();
        e.2 += run.elems.iter().filter(|x| x.deleted.is_some()).count();
    }
    let rows = by
        .iter()
        .map(|(r, (runs, chars, del))| {
            vec![
                r.to_string(),
                runs.to_string(),
                chars.to_string(),
                del.to_string(),
            ]
        })
        .collect();
    out.labeled_table(&["replica", "runs", "characters", "deleted"], rows)?;
    writeln!(out, "  causal context: {}", context_text(t.context()))?;
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn inspect_prints_every_type_both_ways() {
        let objects = super::super::test::objects();
        for o in &objects {
            let (text, doc) = printed(&Inspected {
                name: "n",
                list: vec![o],
            });
            assert!(text.starts_with("name:    n\n"), "{text}");
            assert_eq!(doc["type"], o.ty().as_str());
            assert_eq!(doc["state"], o.state_json());
        }
        let (text, doc) = printed(&Inspected {
            name: "n",
            list: objects.iter().collect(),
        });
        assert_eq!(text.matches("name:    n\n").count(), 6, "{text}");
        assert_eq!(doc["objects"].as_array().map(Vec::len), Some(6));
    }
}

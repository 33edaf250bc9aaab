//! `crdt explain NAME`: why an object has its value, in sentences.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use crdt::diff::{WriteInfo, key_writes, writes};
use crdt::{Dot, Object, ReplicaId};
use crdt::{GCounter, LwwMap, LwwRegister, OrSet, PnCounter, Rga};
use serde_json::{Value, json};

use super::diff::write_text;
use super::*;
use crate::cli::Ctx;
use crate::cli::output::{Out, Report, Style, per_type};
use crate::cli::read::objects;

pub fn explain(
    ctx: &Ctx,
    out: &mut Out<impl Write>,
    name: &str,
    from: Option<PathBuf>,
) -> Result<()> {
    let st = out.style();
    let store = source(ctx, name, from.as_deref())?;
    let list = objects(&store, name)?;
    let explained = list
        .iter()
        .map(|o| (*o, explain_lines(st, name, o, list.len())))
        .collect();
    out.report(&Explained { name, explained })?;
    Ok(())
}

/// `explain`: each object of a name with the lines that explain its value.
struct Explained<'a> {
    name: &'a str,
    explained: Vec<(&'a Object, Vec<String>)>,
}

impl Report for Explained<'_> {
    fn json(&self) -> Value {
        let docs = self.explained.iter().map(|(o, lines)| {
            json!({"name": self.name, "type": o.ty().as_str(), "value": o.value_json(), "explanation": lines})
        });
        per_type(self.name, docs.collect())
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        for l in self.explained.iter().flat_map(|(_, lines)| lines) {
            writeln!(out, "{l}")?;
        }
        Ok(())
    }
}

pub(super) fn explain_lines(st: Style, name: &str, o: &Object, types: usize) -> Vec<String> {
    let mut l = Vec::new();
    if types > 1 {
        l.push(format!("{name} holds {types} objects of different types: replicas created it with different types, and a merge keeps them all. This is the {} one.", o.ty()));
    }
    if let Some(d) = o.deleted_by() {
        let by: Vec<String> =
            d.by.iter()
                .map(|(r, t)| format!("{r} at {}", fmt_ms(*t)))
                .collect();
        l.push(if d.gone {
            format!("{name} was deleted ({}): every change it holds is one a delete saw, so it is gone; a change made after it, or concurrently elsewhere, brings it back.", by.join(", "))
        } else {
            format!("{name} was deleted ({}), and is back: it holds changes those deletes had not seen (made concurrently or since); what the deletes saw is gone.", by.join(", "))
        });
    }
    match o {
        Object::GCounter(c) => explain_g_counter(&mut l, name, c),
        Object::PnCounter(c) => explain_pn_counter(&mut l, name, c),
        Object::LwwRegister(r) => explain_register(st, &mut l, name, r),
        Object::OrSet(s) => explain_set(st, &mut l, name, s),
        Object::Rga(t) => explain_text(&mut l, name, t),
        Object::Map(m) => explain_map(st, &mut l, name, m),
        Object::BoundedCounter(c) => explain_bounded(&mut l, name, c),
    }
    l
}

fn explain_bounded(l: &mut Vec<String>, name: &str, c: &crdt::BoundedCounter) {
    l.push(format!(
        "{name} is {} allocated of a limit of {}: the limit is made of rights, and a replica allocates only rights it holds, so no two replicas can allocate the same right, whatever they do concurrently.",
        c.value(),
        c.limit()
    ));
    for h in c.holders() {
        let mut from = Vec::new();
        if h.granted > 0 {
            from.push(format!("created {}", h.granted));
        }
        if h.received > 0 {
            from.push(format!("received {}", h.received));
        }
        if h.released > 0 {
            from.push(format!("released {} it had allocated", h.released));
        }
        if h.sent > 0 {
            from.push(format!("sent {} on", h.sent));
        }
        l.push(format!(
            "{}: holds {} allocated and {} unused ({}).",
            h.replica,
            h.allocated,
            h.rights,
            if from.is_empty() {
                "no rights yet".to_string()
            } else {
                from.join(", ")
            }
        ));
    }
    l.push("An allocation beyond a replica's unused rights is refused there; a transfer from a replica that holds some makes room.".into());
}

/// Why the first of concurrent writes (best first) wins over the second.
fn why_wins(win: &WriteInfo, second: &WriteInfo) -> String {
    if win.ts > second.ts {
        format!(
            "its timestamp {} is later than {}",
            fmt_ts(win.ts),
            fmt_ts(second.ts)
        )
    } else {
        format!(
            "the timestamps are equal and the replica id {} sorts after {} (the tie-break every replica applies)",
            win.dot.replica, second.dot.replica
        )
    }
}

fn explain_map(st: Style, l: &mut Vec<String>, name: &str, m: &LwwMap) {
    if m.is_empty() {
        l.push(format!("{name} has no keys: every key it has seen was unset by a replica that had seen its writes."));
    } else {
        l.push(format!("{name} has {} key(s); each key is a register of its own (a write made after seeing another replaces it; concurrent writes are settled by timestamp, then replica id), so agents writing different keys never lose each other's writes.", m.len()));
    }
    for key in m.keys() {
        let k = crdt::history::quoted(key);
        match key_writes(m, key).as_slice() {
            [] => {}
            [only] => l.push(format!(
                "{k}: {}, written by {} at {}; no concurrent write is known.",
                st.cut(&only.value.to_string(), 60),
                only.dot.replica,
                fmt_ts(only.ts)
            )),
            [win, rest @ ..] => {
                l.push(format!(
                    "{k}: {}'s write {} wins, {}: the writes are concurrent and {}.",
                    win.dot.replica,
                    st.cut(&win.value.to_string(), 60),
                    lost_writes(st, rest),
                    why_wins(win, &rest[0])
                ));
            }
        }
    }
    let live: usize = m.entries().map(|(_, w)| w.len()).sum();
    let gone = m.context().count() as usize - live;
    if gone > 0 {
        l.push(format!("{gone} other events (unsets, and writes a later write replaced) were seen; they need no tombstones. An unset removes only the writes it has seen: a concurrent put keeps its key."));
    }
}

fn explain_g_counter(l: &mut Vec<String>, name: &str, c: &GCounter) {
    let parts: Vec<String> = c
        .entries()
        .map(|(r, e)| {
            format!(
                "{r} added {} in {}",
                e.count,
                if e.seq == 1 {
                    "1 increment".into()
                } else {
                    format!("{} increments", e.seq)
                }
            )
        })
        .collect();
    l.push(format!(
        "{name} is {} because it is the sum of what each replica added: {}.",
        c.value(),
        if parts.is_empty() {
            "nobody has added anything yet".into()
        } else {
            parts.join("; ")
        }
    ));
    l.push(
        "A merge takes each replica's highest count, so no increment is counted twice or lost."
            .into(),
    );
}

fn explain_pn_counter(l: &mut Vec<String>, name: &str, c: &PnCounter) {
    let parts: Vec<String> = c
        .entries()
        .map(|(r, e)| format!("{r} added {} and subtracted {}", e.p, e.n))
        .collect();
    l.push(format!(
        "{name} is {} = increments minus decrements over all replicas: {}.",
        c.value(),
        if parts.is_empty() {
            "no changes yet".into()
        } else {
            parts.join("; ")
        }
    ));
}

fn explain_register(st: Style, l: &mut Vec<String>, name: &str, r: &LwwRegister) {
    let list = writes(r);
    match list.as_slice() {
        [] => l.push(format!(
            "{name} has never been written, so it has no value (null)."
        )),
        [only] => {
            l.push(format!("{name} is {} because {} wrote it at {}, after seeing every earlier write known here; no concurrent write is known.", st.cut(&only.value.to_string(), 60), only.dot.replica, fmt_ts(only.ts)));
            if let Some(lost) = r.lost() {
                l.push(format!(
                    "The last conflict it settled: {} written by {} at {} lost.",
                    st.cut(&lost.value.to_string(), 60),
                    lost.writer,
                    fmt_ts(lost.ts)
                ));
            }
        }
        [win, rest @ ..] => {
            let why = why_wins(win, &rest[0]);
            l.push(format!(
                "{name} is {}, written by {} at {}.",
                st.cut(&win.value.to_string(), 60),
                win.dot.replica,
                fmt_ts(win.ts)
            ));
            l.push(format!("{} writes were made concurrently (none saw the others); this one wins because {why}.", list.len()));
            for w in rest {
                l.push(format!("Lost: {}.", write_text(st, w)));
            }
            l.push("The next write on any replica that has seen these replaces them all.".into());
        }
    }
}

fn explain_set(st: Style, l: &mut Vec<String>, name: &str, s: &OrSet) {
    if s.is_empty() {
        l.push(format!("{name} is empty: every add it has seen was removed by a replica that had seen that add."));
    }
    for e in s.elements() {
        let v = st.cut(&e.value.to_string(), 50);
        let dots: Vec<Dot> = e.dots.iter().cloned().collect();
        if dots.len() == 1 {
            l.push(format!(
                "{v} is a member: the add {} keeps it alive; no remove has seen that add.",
                dots[0]
            ));
        } else {
            l.push(format!("{v} is a member: {} concurrent adds keep it alive ({}); a remove must see all of them to drop it (add wins over a concurrent remove).", dots.len(), dots_text(&dots)));
        }
    }
    let live: usize = s.elements().map(|e| e.dots.len()).sum();
    let gone = s.context().count() as usize - live;
    if gone > 0 {
        l.push(format!("{gone} other events (removes, and adds that were removed or replaced) were seen; they need no tombstones."));
    }
}

fn explain_text(l: &mut Vec<String>, name: &str, t: &Rga) {
    let mut by: BTreeMap<ReplicaId, (usize, usize)> = BTreeMap::new();
    for e in t.elements() {
        let x = by.entry(e.id.replica.clone()).or_default();
        x.0 += 1;
        x.1 += usize::from(e.deleted.is_some());
    }
    l.push(format!(
        "{name} is {} characters of text built from {} runs.",
        t.len(),
        t.runs().len()
    ));
    for (r, (typed, deleted)) in by {
        l.push(format!(
            "{r} typed {typed} characters; {deleted} of them have been deleted (by any replica)."
        ));
    }
    l.push("Characters typed after the same character are ordered newest first, the same on every replica; each run stays together.".into());
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn the_explanation_is_the_text_and_a_field_of_the_document() {
        for o in &super::super::test::objects() {
            let lines = explain_lines(Style::plain(), "n", o, 1);
            let (text, doc) = printed(&Explained {
                name: "n",
                explained: vec![(o, lines.clone())],
            });
            assert_eq!(
                text,
                lines.iter().map(|l| format!("{l}\n")).collect::<String>()
            );
            assert_eq!(doc["explanation"], json!(lines));
            assert_eq!(doc["conflict"], false);
        }
    }
}

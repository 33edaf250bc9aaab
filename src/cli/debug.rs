//! The debugger: inspect, visualize, diff, explain and `merge --dry-run`.
//! Builds on the library's semantic diff (`crdt::diff`); only renders.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use colored::{Color, Colorize};
use crdt::diff::{
    CountEntry, Detail, ElementDiff, NameDiff, ObjectDiff, RegisterDiff, Status, WriteInfo,
    diff_stores, writes,
};
use crdt::{CausalContext, Causality, CrdtType, Dot, Hlc, Object, ReplicaId, Store, snapshot};
use serde_json::{Value, json};

use super::Ctx;
use super::args::VizFormat;
use super::files::read_snapshot;
use super::output::{Out, summary, truncate};
use super::read::{objects, peers, peers_json, version_json};

/// The objects of `name` in the local replica or in a snapshot file (the
/// store may hold more).
fn source(ctx: &Ctx, name: &str, from: Option<&Path>) -> Result<Store> {
    match from {
        Some(p) => read_snapshot(p),
        None => match ctx.load_name(name)? {
            Some(s) => Ok(s),
            None => bail!(
                "no replica at {} yet (use --from FILE to read a snapshot)",
                ctx.state.display()
            ),
        },
    }
}

/// `2023-11-14T22:13:20.000Z`, with `#N` when the logical counter is not 0.
pub fn fmt_ts(ts: Hlc) -> String {
    let secs = (ts.ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ts.ms % 1000
    );
    if ts.counter > 0 {
        let _ = write!(s, "#{}", ts.counter);
    }
    s
}

fn context_text(cc: &CausalContext) -> String {
    let parts: Vec<String> = cc
        .iter()
        .map(|(r, ranges)| {
            let rs: Vec<String> = ranges
                .as_slice()
                .iter()
                .map(|&(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}..{hi}")
                    }
                })
                .collect();
            format!("{r} {}", rs.join(","))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn dots_text(dots: &[Dot]) -> String {
    dots.iter()
        .map(Dot::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Green,
    Color::Blue,
    Color::Red,
];

/// A stable color per replica of one object.
fn replica_colors(replicas: impl Iterator<Item = ReplicaId>) -> BTreeMap<ReplicaId, Color> {
    let mut set: Vec<ReplicaId> = replicas.collect();
    set.sort();
    set.dedup();
    set.into_iter()
        .enumerate()
        .map(|(i, r)| (r, PALETTE[i % PALETTE.len()]))
        .collect()
}

// ---------------------------------------------------------------- inspect

pub fn inspect(ctx: &Ctx, out: &mut Out, name: &str, from: Option<PathBuf>) -> Result<()> {
    let store = source(ctx, name, from.as_deref())?;
    let list = objects(&store, name)?;
    if ctx.json {
        let docs: Vec<Value> = list.iter().map(|o| inspect_json(name, o)).collect();
        out.json_docs(name, docs)?;
        return Ok(());
    }
    for (i, o) in list.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        inspect_text(out, name, o)?;
    }
    Ok(())
}

fn state_size(o: &Object) -> usize {
    o.state_json().to_string().len()
}

fn inspect_json(name: &str, o: &Object) -> Value {
    json!({"name": name, "type": o.ty().as_str(), "value": o.value_json(), "state": o.state_json(),
           "version": version_json(o), "peers": peers_json(o), "size": state_size(o)})
}

fn inspect_text(out: &mut Out, name: &str, o: &Object) -> Result<()> {
    writeln!(out, "{}    {name}", "name:".bold())?;
    writeln!(out, "{}    {}", "type:".bold(), o.ty())?;
    writeln!(
        out,
        "{}   {}",
        "value:".bold(),
        summary(&o.value_json(), 200)
    )?;
    writeln!(out, "{} {}", "version:".bold(), o.version())?;
    writeln!(
        out,
        "{}    {} bytes of state JSON",
        "size:".bold(),
        state_size(o)
    )?;
    writeln!(out, "{}", "peers:".bold())?;
    for (r, what) in peers(o) {
        writeln!(out, "  {r}: {what}")?;
    }
    writeln!(out, "{}", "state:".bold())?;
    match o {
        Object::GCounter(c) => {
            let rows = c
                .entries()
                .map(|(r, e)| vec![r.to_string(), e.count.to_string(), e.seq.to_string()])
                .collect();
            out.labeled_table(&["replica", "count", "increments"], rows)?;
        }
        Object::PnCounter(c) => {
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
        }
        Object::LwwRegister(r) => {
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
                        truncate(&w.value.to_string(), 50),
                        role.into(),
                    ]
                })
                .collect();
            out.labeled_table(&["dot", "writer", "timestamp", "value", "role"], rows)?;
            match r.lost() {
                Some(l) => writeln!(
                    out,
                    "  last conflict lost: {} by {} at {}",
                    truncate(&l.value.to_string(), 60),
                    l.writer,
                    fmt_ts(l.ts)
                )?,
                None => writeln!(
                    out,
                    "  last conflict lost: none (no concurrent writes seen)"
                )?,
            }
            writeln!(out, "  causal context: {}", context_text(r.context()))?;
        }
        Object::OrSet(s) => {
            let rows = s
                .elements()
                .map(|e| {
                    vec![
                        truncate(&e.value.to_string(), 50),
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
        }
        Object::Rga(t) => {
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
        }
    }
    Ok(())
}

// -------------------------------------------------------------- visualize

pub fn visualize(
    ctx: &Ctx,
    out: &mut Out,
    name: &str,
    format: VizFormat,
    from: Option<PathBuf>,
) -> Result<()> {
    let store = source(ctx, name, from.as_deref())?;
    let list = objects(&store, name)?;
    for o in list {
        let text = match format {
            VizFormat::Text => viz_text(name, o),
            VizFormat::Dot => viz_dot(name, o),
        };
        if ctx.json {
            out.json(&json!({"name": name, "type": o.ty().as_str(), "format": format!("{format:?}").to_lowercase(), "picture": text}))?;
        } else {
            write!(out, "{text}")?;
        }
    }
    Ok(())
}

fn bar(n: u128, max: u128, width: usize) -> String {
    let len = if max == 0 {
        0
    } else {
        ((n * width as u128).div_ceil(max)) as usize
    };
    "█".repeat(len)
}

fn viz_text(name: &str, o: &Object) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}) = {}",
        name.bold(),
        o.ty(),
        summary(&o.value_json(), 80)
    );
    match o {
        Object::GCounter(c) => {
            let max = c
                .entries()
                .map(|(_, e)| u128::from(e.count))
                .max()
                .unwrap_or(0);
            let w = c
                .entries()
                .map(|(r, _)| r.as_str().len())
                .max()
                .unwrap_or(0);
            let colors = replica_colors(c.entries().map(|(r, _)| r.clone()));
            for (r, e) in c.entries() {
                let _ = writeln!(
                    s,
                    "  {:w$} {} {}",
                    r.as_str(),
                    bar(e.count.into(), max, 40).color(colors[r]),
                    e.count
                );
            }
        }
        Object::PnCounter(c) => {
            let max = c
                .entries()
                .map(|(_, e)| u128::from(e.p.max(e.n)))
                .max()
                .unwrap_or(0);
            let w = c
                .entries()
                .map(|(r, _)| r.as_str().len())
                .max()
                .unwrap_or(0);
            for (r, e) in c.entries() {
                let _ = writeln!(
                    s,
                    "  {:w$} + {} {}",
                    r.as_str(),
                    bar(e.p.into(), max, 40).green(),
                    e.p
                );
                let _ = writeln!(
                    s,
                    "  {:w$} - {} {}",
                    "",
                    bar(e.n.into(), max, 40).red(),
                    e.n
                );
            }
        }
        Object::LwwRegister(r) => {
            let list = writes(r);
            let _ = writeln!(s, "  writes no later write replaced, best first:");
            for (i, w) in list.iter().enumerate() {
                let mark = if i == 0 {
                    "★".green().to_string()
                } else {
                    " ".into()
                };
                let why = match i {
                    0 if list.len() == 1 => "value".to_string(),
                    0 => {
                        "value: greatest (timestamp, replica) of the concurrent writes".to_string()
                    }
                    _ => "concurrent, loses".to_string(),
                };
                let _ = writeln!(
                    s,
                    "  {mark} {:<12} {}  {:<30} {}",
                    w.dot.to_string(),
                    fmt_ts(w.ts),
                    truncate(&w.value.to_string(), 30),
                    why.dimmed()
                );
            }
            if let Some(l) = r.lost() {
                let _ = writeln!(
                    s,
                    "    last conflict lost: {} by {} at {}",
                    truncate(&l.value.to_string(), 40),
                    l.writer,
                    fmt_ts(l.ts)
                );
            }
            let _ = writeln!(s, "  seen: {}", context_text(r.context()));
        }
        Object::OrSet(set) => {
            // Per replica: the events it made that this replica has seen, and
            // which of them are adds still keeping a member alive.
            let mut live: BTreeMap<ReplicaId, Vec<(u64, String)>> = BTreeMap::new();
            for e in set.elements() {
                for d in &e.dots {
                    live.entry(d.replica.clone())
                        .or_default()
                        .push((d.seq, truncate(&e.value.to_string(), 24)));
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
                    r.as_str().color(colors[r]),
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
        Object::Rga(t) => {
            let colors = replica_colors(t.elements().iter().map(|e| e.id.replica.clone()));
            let plain = !colored::control::SHOULD_COLORIZE.should_colorize();
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
                        chunk.color(c).strikethrough().dimmed()
                    } else {
                        chunk.color(c)
                    };
                    line.push_str(&painted.to_string());
                    i = j;
                }
            }
            let _ = writeln!(s, "  {line}");
            let legend: Vec<String> = colors
                .iter()
                .map(|(r, c)| r.as_str().color(*c).to_string())
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
                    truncate(&text, 40),
                    if dels > 0 {
                        format!(" ({dels} deleted)")
                    } else {
                        String::new()
                    }
                );
            }
        }
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

fn viz_dot(name: &str, o: &Object) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", q(name));
    let _ = writeln!(
        s,
        "  label={}; labelloc=t; rankdir=LR;",
        q(&format!(
            "{name} ({}) = {}",
            o.ty(),
            summary(&o.value_json(), 60)
        ))
    );
    let _ = writeln!(s, "  node [shape=box, fontname=\"monospace\"];");
    match o {
        Object::GCounter(_) | Object::PnCounter(_) => {
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
        Object::LwwRegister(r) => {
            let list = writes(r);
            let _ = writeln!(
                s,
                "  value [shape=doublecircle, label={}];",
                q(&truncate(&o.value_json().to_string(), 40))
            );
            for (i, w) in list.iter().enumerate() {
                let id = w.dot.to_string();
                let _ = writeln!(s, "  {} [shape=ellipse];", q(w.dot.replica.as_str()));
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
                        truncate(&w.value.to_string(), 40)
                    ))
                );
                let _ = writeln!(s, "  {} -> {};", q(w.dot.replica.as_str()), q(&id));
                let _ = writeln!(
                    s,
                    "  {} -> value [label={}];",
                    q(&id),
                    q(if i == 0 { "wins" } else { "loses" })
                );
            }
        }
        Object::OrSet(set) => {
            for (r, _) in set.context().iter() {
                let _ = writeln!(s, "  {} [shape=ellipse];", q(r.as_str()));
            }
            for (i, e) in set.elements().enumerate() {
                let el = format!("element {i}");
                let _ = writeln!(
                    s,
                    "  {} [label={}];",
                    q(&el),
                    q(&truncate(&e.value.to_string(), 40))
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
        Object::Rga(t) => {
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
                    truncate(&text, 30),
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
                        let _ =
                            writeln!(s, "  {from} -> r{i} [label={}];", q(&format!("after {o}")));
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
    }
    s.push_str("}\n");
    s
}

// ------------------------------------------------------------------- diff

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

fn write_text(w: &WriteInfo) -> String {
    format!(
        "{} by {} at {}",
        truncate(&w.value.to_string(), 50),
        w.dot.replica,
        fmt_ts(w.ts)
    )
}

/// Why the merge keeps the write it keeps.
fn register_verdict(d: &RegisterDiff, relation: Causality) -> String {
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
    format!("merge keeps {from} write {}: {why}", write_text(win))
}

fn element_text(e: &ElementDiff) -> (String, String) {
    let v = truncate(&e.value.to_string(), 50);
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
fn inline_diff(a: &str, b: &str) -> String {
    let plain = !colored::control::SHOULD_COLORIZE.should_colorize();
    let diff = similar::TextDiff::from_chars(a, b);
    let mut s = String::new();
    for change in diff.iter_all_changes() {
        let v = change.value();
        match change.tag() {
            similar::ChangeTag::Equal => s.push_str(v),
            similar::ChangeTag::Delete if plain => s.push_str(&format!("[-{v}-]")),
            similar::ChangeTag::Insert if plain => s.push_str(&format!("{{+{v}+}}")),
            similar::ChangeTag::Delete => s.push_str(&v.red().strikethrough().to_string()),
            similar::ChangeTag::Insert => s.push_str(&v.green().underline().to_string()),
        }
    }
    // Adjacent same-kind markers read better merged: "[-a-][-b-]" -> "[-ab-]".
    s.replace("-][-", "").replace("+}{+", "")
}

fn object_diff_lines(od: &ObjectDiff, ty: CrdtType) -> Vec<String> {
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
                        write_text(w),
                        if list.len() > 1 {
                            format!(" (+{} concurrent)", list.len() - 1)
                        } else {
                            String::new()
                        }
                    )),
                    None => lines.push(format!("{side}: never written")),
                }
            }
            lines.push(register_verdict(d, od.relation));
            for w in d.merged.iter().skip(1) {
                lines.push(format!("loses: {}", write_text(w)));
            }
        }
        Detail::Set(elems) => {
            for e in elems {
                let (head, what) = element_text(e);
                lines.push(format!("{head}  {what}"));
            }
        }
        Detail::Text { a, b, .. } => {
            lines.push(format!("A → B: {}", inline_diff(a, b)));
        }
    }
    lines
}

/// What merging gives, in one line.
fn verdict(od: &ObjectDiff) -> String {
    let merged = od.merged.value_json();
    let shown = match &od.merged {
        Object::Rga(t) => format!("{:?}", truncate(&t.text(), 60)),
        _ => summary(&merged, 60),
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
            v["verdict"] = json!(verdict(od));
            v["detail"] = match &od.detail {
                Detail::Counter(rows) => Value::Array(
                    rows.iter()
                        .map(|r| {
                            let e = |x: Option<CountEntry>| x.map_or(Value::Null, |e| json!({"seq": e.seq, "p": e.p, "n": e.n}));
                            json!({"replica": r.replica.as_str(), "a": e(r.a), "b": e(r.b)})
                        })
                        .collect(),
                ),
                Detail::Register(d) => {
                    let w = |l: &Vec<WriteInfo>| -> Value {
                        l.iter().map(|w| json!({"dot": [w.dot.replica.as_str(), w.dot.seq], "ts": [w.ts.ms, w.ts.counter], "value": w.value})).collect()
                    };
                    json!({"a": w(&d.a), "b": w(&d.b), "merged": w(&d.merged)})
                }
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

pub fn diff(ctx: &Ctx, out: &mut Out, local: bool, stat: bool, args: &[String]) -> Result<bool> {
    let (a, b, select, names) = if local {
        let Some(a) = ctx.load()? else {
            bail!(
                "no replica at {} yet: nothing to compare",
                ctx.state.display()
            );
        };
        let b = read_snapshot(Path::new(&args[0]))?;
        (a, b, &args[1..], ("local".to_string(), args[0].clone()))
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
    if ctx.json {
        out.json(&json!({"a": names.0, "b": names.1, "equal": !differs, "names": diffs.iter().map(diff_json).collect::<Vec<_>>()}))?;
        return Ok(differs);
    }
    if stat {
        let rows = diffs
            .iter()
            .map(|n| {
                let (rel, what) = match &n.status {
                    Status::OnlyA(o) => (
                        "only-a".to_string(),
                        format!("A={}", summary(&o.value_json(), 30)),
                    ),
                    Status::OnlyB(o) => (
                        "only-b".to_string(),
                        format!("B={}", summary(&o.value_json(), 30)),
                    ),
                    Status::Equal(o) => ("equal".to_string(), summary(&o.value_json(), 30)),
                    Status::Different(od) => (
                        relation_word(od.relation).to_string(),
                        format!(
                            "A={} B={} merge={}",
                            summary(&od.a.value_json(), 20),
                            summary(&od.b.value_json(), 20),
                            summary(&od.merged.value_json(), 20)
                        ),
                    ),
                };
                vec![n.name.clone(), n.ty.to_string(), rel, what]
            })
            .collect();
        out.table(&["name", "type", "status", "values"], rows)?;
        return Ok(differs);
    }
    writeln!(out, "A = {}   B = {}", names.0, names.1)?;
    if diffs.is_empty() {
        writeln!(out, "no objects to compare")?;
    }
    for n in &diffs {
        let head = format!("{} ({})", n.name, n.ty).bold();
        match &n.status {
            Status::Equal(_) => writeln!(out, "{head}: {}", "equal".green())?,
            Status::OnlyA(o) | Status::OnlyB(o) => {
                let (here, other) = if matches!(n.status, Status::OnlyA(_)) {
                    ("A", "B")
                } else {
                    ("B", "A")
                };
                writeln!(out, "{head}: {}", format!("only in {here}").yellow())?;
                writeln!(
                    out,
                    "  verdict: merge adds it to {other} ({})",
                    summary(&o.value_json(), 60)
                )?;
            }
            Status::Different(od) => {
                writeln!(
                    out,
                    "{head}: {}, {}",
                    "different".red(),
                    relation_text(od.relation)
                )?;
                writeln!(out, "  A = {}", summary(&od.a.value_json(), 80))?;
                writeln!(out, "  B = {}", summary(&od.b.value_json(), 80))?;
                for line in object_diff_lines(od, n.ty) {
                    writeln!(out, "  {line}")?;
                }
                writeln!(out, "  verdict: {}", verdict(od))?;
            }
        }
    }
    Ok(differs)
}

// ------------------------------------------------------- merge --dry-run

pub fn merge_dry_run(ctx: &Ctx, out: &mut Out, files: &[PathBuf]) -> Result<()> {
    let inputs: Vec<(&PathBuf, Store)> = files
        .iter()
        .map(|f| Ok((f, read_snapshot(f)?)))
        .collect::<Result<_>>()?;
    let mut merged = inputs[0].1.clone();
    for (_, s) in &inputs[1..] {
        merged.merge(s);
    }
    let mut report = Vec::new();
    for (path, input) in &inputs {
        let mut changes: Vec<Value> = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        for n in diff_stores(input, &merged, &[]) {
            match &n.status {
                Status::Equal(_) => {}
                Status::OnlyA(_) => unreachable!("the merge has every input object"),
                Status::OnlyB(o) => {
                    lines.push(format!(
                        "{} ({}): gained from another file = {}",
                        n.name,
                        n.ty,
                        summary(&o.value_json(), 60)
                    ));
                    changes.push(json!({"name": n.name, "type": n.ty.as_str(), "change": "gained", "value": o.value_json()}));
                }
                Status::Different(od) => {
                    let mut what = format!(
                        "{} ({}): {} → {}",
                        n.name,
                        n.ty,
                        summary(&od.a.value_json(), 40),
                        summary(&od.b.value_json(), 40)
                    );
                    let mut extra = Vec::new();
                    match &od.detail {
                        Detail::Register(d) => match (d.a.first(), d.b.first()) {
                            (Some(mine), Some(win)) if mine != win => {
                                extra.push(format!(
                                    "its write {} loses to {}",
                                    write_text(mine),
                                    write_text(win)
                                ));
                            }
                            _ => {
                                for w in d.b.iter().skip(1).filter(|w| !d.a.contains(w)) {
                                    extra.push(format!("value unchanged; learns of the concurrent write {} that loses", write_text(w)));
                                }
                            }
                        },
                        Detail::Set(elems) => {
                            for e in elems.iter().filter(|e| !e.a_dots.is_empty() && !e.kept) {
                                extra.push(format!("drops {}: another replica removed it after seeing its add ({})", truncate(&e.value.to_string(), 40), dots_text(&e.a_dots)));
                            }
                        }
                        _ => {}
                    }
                    if !extra.is_empty() {
                        what.push_str(&format!("\n    {}", extra.join("\n    ")));
                    }
                    lines.push(what);
                    changes.push(json!({"name": n.name, "type": n.ty.as_str(), "change": "changed", "from": od.a.value_json(), "to": od.b.value_json(), "notes": extra}));
                }
            }
        }
        report.push((path.display().to_string(), lines, changes));
    }
    if ctx.json {
        let files: Vec<Value> = report
            .iter()
            .map(|(f, _, c)| json!({"file": f, "changes": c}))
            .collect();
        out.json(&json!({"files": files, "objects": merged.len(), "merged": snapshot::to_value(&merged)}))?;
        return Ok(());
    }
    for (f, lines, _) in &report {
        if lines.is_empty() {
            writeln!(out, "{}: unchanged by the merge", f.bold())?;
        } else {
            writeln!(out, "{}: {} objects change", f.bold(), lines.len())?;
            for l in lines {
                writeln!(out, "  {l}")?;
            }
        }
    }
    writeln!(
        out,
        "(dry run: nothing written; the merge has {} objects)",
        merged.len()
    )?;
    Ok(())
}

// ---------------------------------------------------------------- explain

pub fn explain(ctx: &Ctx, out: &mut Out, name: &str, from: Option<PathBuf>) -> Result<()> {
    let store = source(ctx, name, from.as_deref())?;
    let list = objects(&store, name)?;
    let mut docs = Vec::new();
    for o in &list {
        let lines = explain_lines(name, o, list.len());
        if !ctx.json {
            for l in &lines {
                writeln!(out, "{l}")?;
            }
        }
        docs.push(json!({"name": name, "type": o.ty().as_str(), "value": o.value_json(), "explanation": lines}));
    }
    if ctx.json {
        out.json_docs(name, docs)?;
    }
    Ok(())
}

fn explain_lines(name: &str, o: &Object, types: usize) -> Vec<String> {
    let mut l = Vec::new();
    if types > 1 {
        l.push(format!("{name} holds {types} objects of different types: replicas created it with different types, and a merge keeps them all. This is the {} one.", o.ty()));
    }
    match o {
        Object::GCounter(c) => {
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
            l.push("A merge takes each replica's highest count, so no increment is counted twice or lost.".into());
        }
        Object::PnCounter(c) => {
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
        Object::LwwRegister(r) => {
            let list = writes(r);
            match list.as_slice() {
                [] => l.push(format!(
                    "{name} has never been written, so it has no value (null)."
                )),
                [only] => {
                    l.push(format!("{name} is {} because {} wrote it at {}, after seeing every earlier write known here; no concurrent write is known.", truncate(&only.value.to_string(), 60), only.dot.replica, fmt_ts(only.ts)));
                    if let Some(lost) = r.lost() {
                        l.push(format!(
                            "The last conflict it settled: {} written by {} at {} lost.",
                            truncate(&lost.value.to_string(), 60),
                            lost.writer,
                            fmt_ts(lost.ts)
                        ));
                    }
                }
                [win, rest @ ..] => {
                    let second = &rest[0];
                    let why = if win.ts > second.ts {
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
                    };
                    l.push(format!(
                        "{name} is {}, written by {} at {}.",
                        truncate(&win.value.to_string(), 60),
                        win.dot.replica,
                        fmt_ts(win.ts)
                    ));
                    l.push(format!("{} writes were made concurrently (none saw the others); this one wins because {why}.", list.len()));
                    for w in rest {
                        l.push(format!("Lost: {}.", write_text(w)));
                    }
                    l.push(
                        "The next write on any replica that has seen these replaces them all."
                            .into(),
                    );
                }
            }
        }
        Object::OrSet(s) => {
            if s.is_empty() {
                l.push(format!("{name} is empty: every add it has seen was removed by a replica that had seen that add."));
            }
            for e in s.elements() {
                let v = truncate(&e.value.to_string(), 50);
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
        Object::Rga(t) => {
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
                l.push(format!("{r} typed {typed} characters; {deleted} of them have been deleted (by any replica)."));
            }
            l.push("Characters typed after the same character are ordered newest first, the same on every replica; each run stays together.".into());
        }
    }
    l
}

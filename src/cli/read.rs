//! Read commands: get, ls, show, info.

use std::io::Write;

use anyhow::{Result, bail};
use crdt::{CrdtType, Object, Store};
use serde_json::{Value, json};

use super::Ctx;
use super::output::{Out, one_line};
use colored::Color;

/// The store (at least the objects of `name`), or an error saying there is nothing yet.
fn existing(ctx: &Ctx, name: &str) -> Result<Store> {
    match ctx.load_name(name)? {
        Some(s) => Ok(s),
        // Reads are local: with an endpoint, the way to its state is a sync.
        None if ctx.url.is_some() => bail!(
            "no replica at {} yet: reads are local; `crdt sync` fetches what the endpoint holds",
            ctx.state.display()
        ),
        None => bail!(
            "no replica at {} yet: change something first (e.g. `crdt inc metrics:requests`)",
            ctx.state.display()
        ),
    }
}

/// The objects of `name`, or an error saying there is none.
pub fn objects<'a>(store: &'a Store, name: &str) -> Result<Vec<&'a Object>> {
    let list = store.objects(name);
    if list.is_empty() {
        bail!("no object named {name} (see `crdt ls`)");
    }
    Ok(list)
}

/// What a change command prints: the new value on one line.
pub fn print_value_line(
    ctx: &Ctx,
    out: &mut Out,
    name: &str,
    ty: CrdtType,
    value: &Value,
) -> Result<()> {
    if ctx.json {
        out.json(&json!({"name": name, "type": ty.as_str(), "value": value}))?;
    } else {
        writeln!(out, "{}", one_line(value, ty == CrdtType::Rga))?;
    }
    Ok(())
}

pub fn get(ctx: &Ctx, out: &mut Out<impl Write>, name: &str, raw: bool) -> Result<()> {
    let store = existing(ctx, name)?;
    let list = objects(&store, name)?;
    if ctx.json {
        let values: Vec<Value> = list
            .iter()
            .map(|o| json!({"name": name, "type": o.ty().as_str(), "value": o.value_json()}))
            .collect();
        out.json_docs(name, values)?;
        return Ok(());
    }
    if list.len() > 1 {
        let types: Vec<&str> = list.iter().map(|o| o.ty().as_str()).collect();
        eprintln!(
            "crdt: warning: {name} holds objects of {} types ({}): replicas created it with different types",
            list.len(),
            types.join(", ")
        );
    }
    for o in list {
        write_value(out, o, raw)?;
    }
    Ok(())
}

/// The value only: a number, a JSON value, set members one per line, the text.
/// With `raw`, strings (a register's value, set members) without quotes.
pub fn write_value(out: &mut impl Write, o: &Object, raw: bool) -> std::io::Result<()> {
    let line = |out: &mut dyn Write, v: &Value| match v {
        Value::String(s) if raw => writeln!(out, "{s}"),
        other => writeln!(out, "{other}"),
    };
    match o {
        Object::OrSet(s) => {
            for v in s.values() {
                line(out, v)?;
            }
            Ok(())
        }
        Object::Rga(r) => writeln!(out, "{}", r.text()),
        other => line(out, &other.value_json()),
    }
}

pub fn ls(ctx: &Ctx, out: &mut Out<impl Write>, prefix: &str) -> Result<()> {
    // The one selector rule (as export and sync): a name, or a namespace
    // (`metrics` and `metrics:` both select `metrics:requests`), read from
    // the database alone.
    let select: Vec<String> = if prefix.is_empty() {
        Vec::new()
    } else {
        vec![prefix.to_string()]
    };
    let store = ctx.load_selected(&select)?;
    let store = store.as_ref();
    let items: Vec<(&str, &Object)> = store.map(|s| s.iter().collect()).unwrap_or_default();
    let conflicted = |name: &str| store.is_some_and(|s| s.objects(name).len() > 1);
    if ctx.json {
        let list: Vec<Value> = items
            .iter()
            .map(|(n, o)| {
                json!({"name": n, "type": o.ty().as_str(), "value": o.value_json(), "conflict": conflicted(n)})
            })
            .collect();
        out.json(&json!({ "objects": list }))?;
        return Ok(());
    }
    if items.is_empty() && ctx.tty {
        eprintln!(
            "crdt: no objects{} yet",
            if prefix.is_empty() {
                String::new()
            } else {
                format!(" under {prefix:?}")
            }
        );
        return Ok(());
    }
    let st = out.style();
    let rows = items
        .iter()
        .map(|(n, o)| {
            let mut ty = o.ty().to_string();
            if conflicted(n) {
                ty = format!("{ty} {}", st.paint("(type conflict)", Color::Red));
            }
            vec![n.to_string(), ty, st.summary(&o.value_json(), 60)]
        })
        .collect();
    out.table(&["name", "type", "value"], rows)?;
    Ok(())
}

/// Each replica that contributed and what it contributed, in words.
pub fn peers(o: &Object) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    match o {
        Object::GCounter(c) => {
            for (r, e) in c.entries() {
                out.push((
                    r.to_string(),
                    format!("+{} in {}", e.count, plural(e.seq, "increment")),
                ));
            }
        }
        Object::PnCounter(c) => {
            for (r, e) in c.entries() {
                out.push((
                    r.to_string(),
                    format!("+{} -{} in {}", e.p, e.n, plural(e.seq, "change")),
                ));
            }
        }
        _ => {
            for (r, s) in o.version().iter() {
                out.push((r.to_string(), plural(s, "event")));
            }
        }
    }
    out
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `{replica: what it contributed}` for `--json` output, as data:
/// `{"count", "increments"}` for a g-counter, `{"added", "subtracted",
/// "changes"}` for a pn-counter, `{"events"}` otherwise.
pub fn peers_json(o: &Object) -> Value {
    let mut map = serde_json::Map::new();
    match o {
        Object::GCounter(c) => {
            for (r, e) in c.entries() {
                map.insert(
                    r.to_string(),
                    json!({"count": e.count, "increments": e.seq}),
                );
            }
        }
        Object::PnCounter(c) => {
            for (r, e) in c.entries() {
                map.insert(
                    r.to_string(),
                    json!({"added": e.p, "subtracted": e.n, "changes": e.seq}),
                );
            }
        }
        _ => {
            for (r, s) in o.version().iter() {
                map.insert(r.to_string(), json!({ "events": s }));
            }
        }
    }
    Value::Object(map)
}

/// `{replica: seq}` for `--json` output.
pub fn version_json(o: &Object) -> Value {
    Value::Object(
        o.version()
            .iter()
            .map(|(r, s)| (r.to_string(), Value::from(s)))
            .collect(),
    )
}

/// The lines `show` and `inspect` begin with: name, type (and a type
/// conflict), value, version.
pub fn header(
    out: &mut Out<impl Write>,
    name: &str,
    o: &Object,
    conflict: bool,
) -> std::io::Result<()> {
    let st = out.style();
    writeln!(out, "{}    {name}", st.bold("name:"))?;
    let conflict = if conflict {
        format!(
            " {}",
            st.paint("(type conflict: this name has several types)", Color::Red)
        )
    } else {
        String::new()
    };
    writeln!(out, "{}    {}{conflict}", st.bold("type:"), o.ty())?;
    writeln!(
        out,
        "{}   {}",
        st.bold("value:"),
        st.summary(&o.value_json(), 200)
    )?;
    writeln!(out, "{} {}", st.bold("version:"), o.version())
}

pub fn show(ctx: &Ctx, out: &mut Out<impl Write>, name: &str) -> Result<()> {
    let store = existing(ctx, name)?;
    let list = objects(&store, name)?;
    if ctx.json {
        let docs: Vec<Value> = list
            .iter()
            .map(|o| {
                json!({"name": name, "type": o.ty().as_str(), "value": o.value_json(),
                       "version": version_json(o), "peers": peers_json(o)})
            })
            .collect();
        out.json_docs(name, docs)?;
        return Ok(());
    }
    for (i, o) in list.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        header(out, name, o, list.len() > 1)?;
        if let Some((_, when)) = &ctx.at {
            writeln!(
                out,
                "{}      {when} (as this replica had it then)",
                out.style().bold("at:")
            )?;
        }
        writeln!(out, "{}", out.style().bold("peers:"))?;
        for (r, what) in peers(o) {
            writeln!(out, "  {r}: {what}")?;
        }
    }
    Ok(())
}

pub fn info(ctx: &Ctx, out: &mut Out<impl Write>) -> Result<()> {
    let path = ctx.state.display().to_string();
    let Some(db) = ctx.open_db()? else {
        if ctx.json {
            out.json(
                &json!({"state": path, "exists": false, "replica": Value::Null, "objects": 0,
                "history": 0, "bytes": 0, "conflicts": 0}),
            )?;
        } else {
            writeln!(
                out,
                "state:    {path} (not created yet; the first change creates it)"
            )?;
        }
        return Ok(());
    };
    // Counted by the database: info stays quick at any size.
    let (objects, history) = db.counts()?;
    // The database and its write-ahead log (changes not yet folded in).
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let bytes = size(&ctx.state) + size(&crdt::db::wal_path(&ctx.state));
    let span = db.history_span()?;
    let conflicts = db.conflict_count()?;
    if ctx.json {
        out.json(
            &json!({"state": path, "exists": true, "replica": db.replica().as_str(),
            "objects": objects, "history": history, "bytes": bytes,
            "history_from_ms": span.map(|s| s.0), "history_to_ms": span.map(|s| s.1),
            "conflicts": conflicts}),
        )?;
    } else {
        writeln!(out, "state:     {path} (SQLite)")?;
        writeln!(out, "replica:   {}", db.replica())?;
        writeln!(out, "objects:   {objects}")?;
        let when = |ms: u64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
            )
            .to_string()
        };
        match span {
            Some((a, b)) => writeln!(out, "history:   {history} rows, {} to {}", when(a), when(b))?,
            None => writeln!(out, "history:   {history} rows")?,
        }
        writeln!(out, "size:      {bytes} bytes")?;
        if conflicts > 0 {
            writeln!(
                out,
                "conflicts: {} {}",
                conflicts,
                out.style()
                    .paint("(names with several types; see `crdt ls`)", Color::Red)
            )?;
        }
    }
    Ok(())
}

/// A moment given as an RFC 3339 time, a duration ago (`30d`) or
/// milliseconds since the epoch, in milliseconds since the epoch.
pub fn parse_moment(text: &str, now_ms: u64) -> Result<u64> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(ms);
    }
    if let Ok(at) = humantime::parse_rfc3339_weak(t) {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        return Ok(ms);
    }
    if let Ok(ago) = humantime::parse_duration(t) {
        return Ok(now_ms.saturating_sub(ago.as_millis() as u64));
    }
    bail!(
        "{text:?} is not a time: give an RFC 3339 time (2026-12-01T10:00:00Z), a duration ago (30d, 12h, 10m) or milliseconds since the epoch"
    )
}

pub fn history_trim(ctx: &Ctx, out: &mut Out<impl Write>, before: &str) -> Result<()> {
    let before_ms = parse_moment(before, super::ops::now_ms())?;
    let Some(mut db) = ctx.open_db()? else {
        bail!(
            "no replica at {} yet: no history to trim",
            ctx.state.display()
        );
    };
    let removed = db.trim_history(before_ms)?;
    let (_, left) = db.counts()?;
    if ctx.json {
        out.json(&json!({"removed": removed, "left": left, "before_ms": before_ms}))?;
    } else {
        writeln!(out, "removed {removed} history rows; {left} left")?;
    }
    Ok(())
}

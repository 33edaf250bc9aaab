//! Read commands: get, ls, show, info.

use std::io::Write;

use anyhow::{Result, bail};
use colored::Colorize;
use crdt::statefile;
use crdt::{CrdtType, Object, Store};
use serde_json::{Value, json};

use super::Ctx;
use super::output::{Out, one_line, summary};

/// The store (at least the objects of `name`), or an error saying there is nothing yet.
fn existing(ctx: &Ctx, name: &str) -> Result<Store> {
    match ctx.load_name(name)? {
        Some(s) => Ok(s),
        None => bail!(
            "no state file at {} yet: change something first (e.g. `crdt inc metrics:requests`)",
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

pub fn get(ctx: &Ctx, out: &mut Out, name: &str) -> Result<()> {
    let store = existing(ctx, name)?;
    let list = objects(&store, name)?;
    if ctx.json {
        let values: Vec<Value> = list
            .iter()
            .map(|o| json!({"name": name, "type": o.ty().as_str(), "value": o.value_json()}))
            .collect();
        out.json_docs(values)?;
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
        write_value(out, o)?;
    }
    Ok(())
}

/// The value only: a number, a JSON value, set members one per line, the text.
pub fn write_value(out: &mut impl Write, o: &Object) -> std::io::Result<()> {
    match o {
        Object::OrSet(s) => {
            for v in s.values() {
                writeln!(out, "{v}")?;
            }
            Ok(())
        }
        Object::Rga(r) => writeln!(out, "{}", r.text()),
        other => writeln!(out, "{}", other.value_json()),
    }
}

pub fn ls(ctx: &Ctx, out: &mut Out, prefix: &str) -> Result<()> {
    let store = ctx.load()?;
    let store = store.as_ref();
    let items: Vec<(&str, &Object)> = store.map(|s| s.list(prefix).collect()).unwrap_or_default();
    let conflicted = |name: &str| store.is_some_and(|s| s.objects(name).len() > 1);
    if ctx.json {
        let list: Vec<Value> = items
            .iter()
            .map(|(n, o)| {
                json!({"name": n, "type": o.ty().as_str(), "value": o.value_json(), "conflict": conflicted(n)})
            })
            .collect();
        out.json(&Value::Array(list))?;
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
    let rows = items
        .iter()
        .map(|(n, o)| {
            let mut ty = o.ty().to_string();
            if conflicted(n) {
                ty = format!("{ty} {}", "(type conflict)".red());
            }
            vec![n.to_string(), ty, summary(&o.value_json(), 60)]
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

/// `{replica: what it contributed}` for `--json` output.
pub fn peers_json(o: &Object) -> Value {
    Value::Object(
        peers(o)
            .into_iter()
            .map(|(r, what)| (r, Value::from(what)))
            .collect(),
    )
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

pub fn show(ctx: &Ctx, out: &mut Out, name: &str) -> Result<()> {
    let store = existing(ctx, name)?;
    let list = objects(&store, name)?;
    if ctx.json {
        let docs: Vec<Value> = list
            .iter()
            .map(|o| {
                json!({"name": name, "type": o.ty().as_str(), "value": o.value_json(),
                       "version": version_json(o), "peers": peers_json(o), "conflict": list.len() > 1})
            })
            .collect();
        out.json_docs(docs)?;
        return Ok(());
    }
    for (i, o) in list.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}    {}", "name:".bold(), name)?;
        let conflict = if list.len() > 1 {
            format!(" {}", "(type conflict: this name has several types)".red())
        } else {
            String::new()
        };
        writeln!(out, "{}    {}{conflict}", "type:".bold(), o.ty())?;
        writeln!(
            out,
            "{}   {}",
            "value:".bold(),
            summary(&o.value_json(), 200)
        )?;
        writeln!(out, "{} {}", "version:".bold(), o.version())?;
        writeln!(out, "{}", "peers:".bold())?;
        for (r, what) in peers(o) {
            writeln!(out, "  {r}: {what}")?;
        }
    }
    Ok(())
}

pub fn info(ctx: &Ctx, out: &mut Out) -> Result<()> {
    let store = ctx.load()?;
    let size = std::fs::metadata(&ctx.state).map(|m| m.len()).ok();
    let journal = std::fs::metadata(statefile::journal_path(&ctx.state)).map_or(0, |m| m.len());
    let path = ctx.state.display().to_string();
    let Some(store) = store else {
        if ctx.json {
            out.json(&json!({"state": path, "exists": false, "replica": Value::Null, "objects": 0, "bytes": 0, "journal_bytes": 0, "conflicts": 0}))?;
        } else {
            writeln!(
                out,
                "state:    {path} (not created yet; the first change creates it)"
            )?;
        }
        return Ok(());
    };
    let conflicts = store.conflicts().len();
    if ctx.json {
        out.json(
            &json!({"state": path, "exists": true, "replica": store.replica().as_str(),
            "objects": store.len(), "bytes": size.unwrap_or(0), "journal_bytes": journal, "conflicts": conflicts}),
        )?;
    } else {
        writeln!(out, "state:     {path}")?;
        writeln!(out, "replica:   {}", store.replica())?;
        writeln!(out, "objects:   {}", store.len())?;
        writeln!(out, "size:      {} bytes", size.unwrap_or(0))?;
        writeln!(
            out,
            "journal:   {journal} bytes (changes not yet folded into the state file)"
        )?;
        if conflicts > 0 {
            writeln!(
                out,
                "conflicts: {} {}",
                conflicts,
                "(names with several types; see `crdt ls`)".red()
            )?;
        }
    }
    Ok(())
}

//! Read commands: get, ls, show, info.

use std::io::{self, Write};

use anyhow::{Result, bail};
use crdt::{CrdtType, Object, Store};
use serde_json::{Value, json};

use super::Ctx;
use super::output::{Out, Report, one_line, per_type};
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

/// The objects of `name` that are not deleted, or an error saying there
/// is none (and who deleted them, when they were).
pub fn live_objects<'a>(store: &'a Store, name: &str) -> Result<Vec<&'a Object>> {
    match live_of(store, name)? {
        Ok(live) => Ok(live),
        Err(words) => bail!("{words} (see `crdt show --deleted {name}`)"),
    }
}

/// The live objects of `name`, or (`Err`) who deleted them all.
fn live_of<'a>(store: &'a Store, name: &str) -> Result<Result<Vec<&'a Object>, String>> {
    let all = objects(store, name)?;
    let live: Vec<&Object> = all.iter().copied().filter(|o| !o.is_deleted()).collect();
    Ok(if live.is_empty() {
        Err(deleted_words(name, &all))
    } else {
        Ok(live)
    })
}

/// `tasks:done was deleted by agent-2 at 2026-12-01T10:00:00.000Z`.
pub fn deleted_words(name: &str, list: &[&Object]) -> String {
    let latest = list
        .iter()
        .filter_map(|o| o.deleted_by())
        .map(|d| {
            let (r, t) = d.latest();
            (t, r.clone())
        })
        .max();
    match latest {
        Some((t, r)) => format!(
            "{name} was deleted by {r} at {}",
            crdt::clock::rfc3339_ms(t)
        ),
        None => format!("{name} was deleted"),
    }
}

/// `{"by": {replica: ms}, "gone": bool}` for an object that saw deletes.
pub fn deleted_json(o: &Object) -> Option<Value> {
    o.deleted_by().map(|d| {
        let by: serde_json::Map<String, Value> =
            d.by.iter()
                .map(|(r, t)| (r.to_string(), json!(t)))
                .collect();
        json!({"by": by, "gone": d.gone})
    })
}

/// `del` and `resolve`: the objects deleted.
pub struct Deleted<'a> {
    pub list: &'a [(String, CrdtType)],
}

impl Report for Deleted<'_> {
    fn json(&self) -> Value {
        let list: Vec<Value> = self
            .list
            .iter()
            .map(|(n, t)| json!({"name": n, "type": t.as_str()}))
            .collect();
        json!({ "deleted": list })
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        for (n, t) in self.list {
            writeln!(out, "deleted {n} ({t})")?;
        }
        Ok(())
    }
}

/// What a change command prints: the new value on one line.
pub struct ValueLine<'a> {
    pub name: &'a str,
    pub ty: CrdtType,
    pub value: &'a Value,
}

impl Report for ValueLine<'_> {
    fn json(&self) -> Value {
        json!({"name": self.name, "type": self.ty.as_str(), "value": self.value})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        writeln!(out, "{}", one_line(self.value, self.ty == CrdtType::Rga))
    }
}

/// `get`: the value of each object of a name.
struct Values<'a> {
    name: &'a str,
    list: Vec<&'a Object>,
    raw: bool,
}

impl Report for Values<'_> {
    fn json(&self) -> Value {
        let values = self
            .list
            .iter()
            .map(|o| json!({"name": self.name, "type": o.ty().as_str(), "value": o.value_json()}));
        per_type(self.name, values.collect())
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        if self.list.len() > 1 {
            let types: Vec<&str> = self.list.iter().map(|o| o.ty().as_str()).collect();
            eprintln!(
                "crdt: warning: {} holds objects of {} types ({}): replicas created it with different types",
                self.name,
                self.list.len(),
                types.join(", ")
            );
        }
        for o in &self.list {
            write_value(out, o, self.raw)?;
        }
        Ok(())
    }
}

/// `get NAME`: false (a note on stderr, nothing on stdout: exit 1) when
/// the object was deleted.
pub fn get(ctx: &Ctx, out: &mut Out<impl Write>, name: &str, raw: bool) -> Result<bool> {
    let store = existing(ctx, name)?;
    let Some(list) = live_or_note(&store, name)? else {
        return Ok(false);
    };
    out.report(&Values { name, list, raw })?;
    Ok(true)
}

/// The objects of `name` that are not deleted; `None` (and who deleted
/// them, on stderr) when every one is.
fn live_or_note<'a>(store: &'a Store, name: &str) -> Result<Option<Vec<&'a Object>>> {
    Ok(match live_of(store, name)? {
        Ok(live) => Some(live),
        Err(words) => {
            eprintln!("crdt: {words}");
            None
        }
    })
}

/// `get NAME KEY`: one key of a map. False (a note on stderr, nothing on
/// stdout: exit 1) when the map has no such key.
pub fn get_key(
    ctx: &Ctx,
    out: &mut Out<impl Write>,
    name: &str,
    key: &str,
    raw: bool,
) -> Result<bool> {
    let store = existing(ctx, name)?;
    let Some(list) = live_or_note(&store, name)? else {
        return Ok(false);
    };
    let Some(value) = key_value(&list, name, key)? else {
        eprintln!("crdt: {name} has no key {key}");
        return Ok(false);
    };
    out.report(&KeyValue {
        name,
        key,
        value,
        raw,
    })?;
    Ok(true)
}

/// The value of `key` in the map among `list` (the objects of `name`);
/// an error when `name` is not a map.
pub fn key_value<'a>(list: &[&'a Object], name: &str, key: &str) -> Result<Option<&'a Value>> {
    match list.iter().find_map(|o| match o {
        Object::Map(m) => Some(m),
        _ => None,
    }) {
        Some(m) => Ok(m.get(key)),
        None => bail!(
            "`get NAME KEY` reads a key of a map, but {name} is {} {}",
            list[0].ty().article(),
            list[0].ty()
        ),
    }
}

/// A value on one line; a string without its quotes when `raw`.
pub fn json_line(v: &Value, raw: bool) -> String {
    match v {
        Value::String(s) if raw => format!("{s}\n"),
        other => format!("{other}\n"),
    }
}

/// `get NAME KEY`: one key's value.
struct KeyValue<'a> {
    name: &'a str,
    key: &'a str,
    value: &'a Value,
    raw: bool,
}

impl Report for KeyValue<'_> {
    fn json(&self) -> Value {
        json!({"name": self.name, "type": "map", "key": self.key, "value": self.value})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        write!(out, "{}", json_line(self.value, self.raw))
    }
}

/// The value only: a number, a JSON value, set members one per line, the text.
/// With `raw`, strings (a register's value, set members) without quotes.
pub fn write_value(out: &mut impl Write, o: &Object, raw: bool) -> std::io::Result<()> {
    let line = |out: &mut dyn Write, v: &Value| write!(out, "{}", json_line(v, raw));
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
    let items = store
        .map(|s| {
            // Deleted objects are not listed (`show --deleted` shows them).
            let live = |name: &str| s.objects(name).iter().filter(|o| !o.is_deleted()).count();
            s.iter()
                .filter(|(_, o)| !o.is_deleted())
                .map(|(n, o)| (n, o, live(n) > 1))
                .collect()
        })
        .unwrap_or_default();
    out.report(&Listing { prefix, items })?;
    Ok(())
}

/// `ls`: each name, its type (and whether it has several), its value.
struct Listing<'a> {
    prefix: &'a str,
    items: Vec<(&'a str, &'a Object, bool)>,
}

impl Report for Listing<'_> {
    fn json(&self) -> Value {
        let list: Vec<Value> = self
            .items
            .iter()
            .map(|(n, o, conflict)| {
                json!({"name": n, "type": o.ty().as_str(), "value": o.value_json(), "conflict": conflict})
            })
            .collect();
        json!({ "objects": list })
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        if self.items.is_empty() && out.is_tty() {
            eprintln!(
                "crdt: no objects{} yet",
                if self.prefix.is_empty() {
                    String::new()
                } else {
                    format!(" under {:?}", self.prefix)
                }
            );
            return Ok(());
        }
        let st = out.style();
        let rows = self
            .items
            .iter()
            .map(|(n, o, conflict)| {
                let mut ty = o.ty().to_string();
                if *conflict {
                    ty = format!("{ty} {}", st.paint("(type conflict)", Color::Red));
                }
                vec![n.to_string(), ty, st.summary(&o.value_json(), 60)]
            })
            .collect();
        out.table(&["name", "type", "value"], rows)
    }
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
        Object::BoundedCounter(c) => {
            for h in c.holders() {
                out.push((
                    h.replica.to_string(),
                    format!(
                        "{} allocated, {} unused (created {}, received {}, sent {})",
                        h.allocated, h.rights, h.granted, h.received, h.sent
                    ),
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
/// "changes"}` for a pn-counter, `{"allocated", "unused", "created",
/// "received", "sent"}` for a bounded counter, `{"events"}` otherwise.
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
        Object::BoundedCounter(c) => {
            for h in c.holders() {
                map.insert(
                    h.replica.to_string(),
                    json!({"allocated": h.allocated, "unused": number(h.rights), "created": h.granted,
                           "received": number(h.received as i128), "sent": number(h.sent as i128)}),
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

fn number(n: i128) -> Value {
    Value::from(n)
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
    if let Some(d) = o.deleted_by() {
        let (r, t) = d.latest();
        let state = if d.gone {
            "gone".to_string()
        } else {
            "back: changes it had not seen keep it".to_string()
        };
        writeln!(
            out,
            "{} by {r} at {} ({state})",
            st.bold("deleted:"),
            crdt::clock::rfc3339_ms(t)
        )?;
    }
    writeln!(
        out,
        "{}   {}",
        st.bold("value:"),
        st.summary(&o.value_json(), 200)
    )?;
    writeln!(out, "{} {}", st.bold("version:"), o.version())
}

pub fn show(ctx: &Ctx, out: &mut Out<impl Write>, name: &str, deleted: bool) -> Result<()> {
    let store = existing(ctx, name)?;
    let list = if deleted {
        objects(&store, name)?
    } else {
        live_objects(&store, name)?
    };
    let at = ctx.at.as_ref().map(|(_, when)| when.as_str());
    out.report(&Shown { name, list, at })?;
    Ok(())
}

/// `show`: each object of a name with its version and contributors.
struct Shown<'a> {
    name: &'a str,
    list: Vec<&'a Object>,
    /// The moment of `--at`, as the user wrote it.
    at: Option<&'a str>,
}

impl Report for Shown<'_> {
    fn json(&self) -> Value {
        let docs = self.list.iter().map(|o| {
            let mut doc = json!({"name": self.name, "type": o.ty().as_str(), "value": o.value_json(),
                   "version": version_json(o), "peers": peers_json(o)});
            if let Some(d) = deleted_json(o) {
                doc["deleted"] = d;
            }
            doc
        });
        per_type(self.name, docs.collect())
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        for (i, o) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            header(out, self.name, o, self.list.len() > 1)?;
            if let Some(when) = self.at {
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
}

pub fn info(ctx: &Ctx, out: &mut Out<impl Write>) -> Result<()> {
    let path = ctx.state.display().to_string();
    let Some(db) = ctx.open_db()? else {
        out.report(&Info { path, db: None })?;
        return Ok(());
    };
    // Counted by the database: info stays quick at any size.
    let (objects, history) = db.counts()?;
    // The database and its write-ahead log (changes not yet folded in).
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let found = Found {
        replica: db.replica().to_string(),
        objects,
        history,
        bytes: size(&ctx.state) + size(&crdt::db::wal_path(&ctx.state)),
        span: db.history_span()?,
        conflicts: db.conflict_count()?,
    };
    out.report(&Info {
        path,
        db: Some(found),
    })?;
    Ok(())
}

/// `info`: the replica's database, or that there is none yet.
struct Info {
    path: String,
    db: Option<Found>,
}

/// What `info` counts in a database.
struct Found {
    replica: String,
    objects: u64,
    history: u64,
    bytes: u64,
    /// The times of the oldest and newest history rows.
    span: Option<(u64, u64)>,
    conflicts: u64,
}

impl Report for Info {
    fn json(&self) -> Value {
        let path = &self.path;
        match &self.db {
            None => json!({"state": path, "exists": false, "replica": Value::Null, "objects": 0,
                "history": 0, "bytes": 0, "conflicts": 0}),
            Some(f) => json!({"state": path, "exists": true, "replica": f.replica,
                "objects": f.objects, "history": f.history, "bytes": f.bytes,
                "history_from_ms": f.span.map(|s| s.0), "history_to_ms": f.span.map(|s| s.1),
                "conflicts": f.conflicts}),
        }
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        let path = &self.path;
        let Some(f) = &self.db else {
            return writeln!(
                out,
                "state:    {path} (not created yet; the first change creates it)"
            );
        };
        writeln!(out, "state:     {path} (SQLite)")?;
        writeln!(out, "replica:   {}", f.replica)?;
        writeln!(out, "objects:   {}", f.objects)?;
        let when = |ms: u64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
            )
            .to_string()
        };
        let history = f.history;
        match f.span {
            Some((a, b)) => writeln!(out, "history:   {history} rows, {} to {}", when(a), when(b))?,
            None => writeln!(out, "history:   {history} rows")?,
        }
        writeln!(out, "size:      {} bytes", f.bytes)?;
        if f.conflicts > 0 {
            writeln!(
                out,
                "conflicts: {} {}",
                f.conflicts,
                out.style()
                    .paint("(names with several types; see `crdt ls`)", Color::Red)
            )?;
        }
        Ok(())
    }
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
    out.report(&Trimmed {
        removed,
        left,
        before_ms,
    })?;
    Ok(())
}

/// `history trim`: how many rows went, how many are left.
struct Trimmed {
    removed: u64,
    left: u64,
    before_ms: u64,
}

impl Report for Trimmed {
    fn json(&self) -> Value {
        json!({"removed": self.removed, "left": self.left, "before_ms": self.before_ms})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
        writeln!(
            out,
            "removed {} history rows; {} left",
            self.removed, self.left
        )
    }
}

/// The read commands' reports, printed both ways into buffers.
#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;
    use crdt::{GCounter, OrSet, ReplicaId};

    fn objects() -> (Object, Object) {
        let a = ReplicaId::new("agent-1").unwrap();
        let mut g = GCounter::default();
        g.inc(&a, 5).unwrap();
        let mut s = OrSet::default();
        s.add(&a, json!("task-1")).unwrap();
        (Object::GCounter(g), Object::OrSet(s))
    }

    #[test]
    fn values_print_alone_and_as_documents() {
        let value = json!("Hello");
        let (text, doc) = printed(&ValueLine {
            name: "doc",
            ty: CrdtType::Rga,
            value: &value,
        });
        assert_eq!(text, "Hello\n");
        assert_eq!(doc, json!({"name": "doc", "type": "rga", "value": "Hello"}));
        let (g, s) = objects();
        let (text, doc) = printed(&Values {
            name: "n",
            list: vec![&s],
            raw: true,
        });
        assert_eq!(text, "task-1\n");
        assert_eq!(doc["conflict"], false);
        assert_eq!(doc["value"], json!(["task-1"]));
        // A type conflict: one document per type, wrapped.
        let (text, doc) = printed(&Values {
            name: "n",
            list: vec![&g, &s],
            raw: false,
        });
        assert_eq!(text, "5\n\"task-1\"\n");
        assert_eq!(doc["conflict"], true);
        assert_eq!(doc["objects"][0]["value"], 5);
    }

    #[test]
    fn a_listing_is_a_table_or_a_list_of_objects() {
        let (g, s) = objects();
        let (text, doc) = printed(&Listing {
            prefix: "",
            items: vec![("metrics:requests", &g, false), ("tasks", &s, true)],
        });
        assert!(text.starts_with("metrics:requests  g-counter"), "{text}");
        assert!(text.contains("or-set (type conflict)"), "{text}");
        assert_eq!(doc["objects"][1]["conflict"], true);
        assert_eq!(doc["objects"][0]["value"], 5);
        let (text, doc) = printed(&Listing {
            prefix: "x",
            items: vec![],
        });
        assert_eq!((text.as_str(), doc), ("", json!({"objects": []})));
    }

    #[test]
    fn show_info_and_trim_say_the_same_both_ways() {
        let (g, _) = objects();
        let (text, doc) = printed(&Shown {
            name: "n",
            list: vec![&g],
            at: Some("1h"),
        });
        assert!(
            text.contains("at:      1h (as this replica had it then)"),
            "{text}"
        );
        assert!(text.contains("  agent-1: +5 in 1 increment"), "{text}");
        assert_eq!(doc["peers"]["agent-1"]["count"], 5);
        let (text, doc) = printed(&Info {
            path: "r.db".into(),
            db: None,
        });
        assert!(text.contains("not created yet"), "{text}");
        assert_eq!(doc["exists"], false);
        let (text, doc) = printed(&Info {
            path: "r.db".into(),
            db: Some(Found {
                replica: "agent-1".into(),
                objects: 2,
                history: 3,
                bytes: 4096,
                span: Some((0, 1000)),
                conflicts: 1,
            }),
        });
        assert!(
            text.contains("history:   3 rows, 1970-01-01T00:00:00Z to 1970-01-01T00:00:01Z"),
            "{text}"
        );
        assert!(text.contains("conflicts: 1"), "{text}");
        assert_eq!(
            (doc["history_to_ms"].clone(), doc["bytes"].clone()),
            (json!(1000), json!(4096))
        );
        let (text, doc) = printed(&Trimmed {
            removed: 7,
            left: 2,
            before_ms: 9,
        });
        assert_eq!(text, "removed 7 history rows; 2 left\n");
        assert_eq!(doc, json!({"removed": 7, "left": 2, "before_ms": 9}));
    }
}

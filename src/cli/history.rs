//! The history: `crdt log`, and `--at` (reading the replica as it was).

use std::collections::BTreeMap;
use std::io::Write;

use colored::Color;

use anyhow::{Context as _, Result, anyhow, bail};
use crdt::db::{Db, Entry, LogQuery, Moment};
use crdt::history::describe_delta;
use crdt::objects_line::decode_objects;
use crdt::{CrdtType, Object, ReplicaId, Store};
use serde_json::{Value, json};

use super::args::LogArgs;
use super::debug::{fmt_ms, palette};
use super::output::Out;
use super::{Ctx, read};

/// `--at WHEN`: `@N` (just after history entry N), else a moment as
/// `history trim` takes it (RFC 3339, a duration ago, ms since the epoch).
pub fn parse_when(text: &str) -> Result<Moment> {
    if let Some(n) = text.trim().strip_prefix('@') {
        let n: u64 = n.parse().with_context(|| {
            format!(
                "--at {text:?}: @N is a history position, a number as `crdt log` shows it (@12)"
            )
        })?;
        return Ok(Moment::Position(n));
    }
    let ms = read::parse_moment(text, super::ops::now_ms()).with_context(|| {
        format!("--at {text:?}: give an RFC 3339 time, a duration ago (10m, 2h, 1d) or @N")
    })?;
    Ok(Moment::Time(ms))
}

/// The objects `select` picks as the replica had them at `moment`; a
/// position past the newest entry is an error (nothing is there yet).
pub fn load_at(db: &Db, select: &[String], moment: Moment, when: &str) -> Result<Store> {
    if let Moment::Position(n) = moment {
        let last = db.last_history_id()?;
        if n > last {
            bail!(
                "--at {when}: the history of {} ends at @{last}",
                db.path().display()
            );
        }
    }
    Ok(db.load_at(select, moment)?)
}

/// The database whose history is read: another replica's (`--from`,
/// read-only), else this one (which must exist).
pub fn history_db(ctx: &Ctx, from: Option<&std::path::Path>) -> Result<Db> {
    match from {
        Some(path) => Ok(Db::open_read_only(path)?),
        None => match ctx.open_db()? {
            Some(db) => Ok(db),
            None => bail!(
                "no replica at {} yet: no history (change something first, or read another replica's database with --from FILE)",
                ctx.state.display()
            ),
        },
    }
}

/// `crdt log`.
pub fn log(ctx: &Ctx, out: &mut Out<impl Write>, args: &LogArgs) -> Result<()> {
    let now = super::ops::now_ms();
    let moment = |flag: &str, t: &Option<String>| -> Result<Option<u64>> {
        t.as_deref()
            .map(|t| read::parse_moment(t, now).with_context(|| format!("{flag} {t:?}")))
            .transpose()
    };
    let replica = args
        .replica
        .as_deref()
        .map(|r| ReplicaId::new(r).with_context(|| format!("--replica {r:?}")))
        .transpose()?;
    let query = LogQuery {
        select: args.select.clone(),
        since: moment("--since", &args.since)?,
        until: moment("--until", &args.until)?,
        replica,
        limit: args.max_count,
    };
    if ctx.url_given {
        let entries = server_log(ctx, &query)?;
        return render(ctx, out, &entries);
    }
    let db = history_db(ctx, args.from.as_deref())?;
    let mut p = Printer::new(ctx.json);
    db.log_each(&query, |e| p.entry(out, &e))?;
    p.finish(out)
}

/// The server's recent pushes (`log --url`) as entries: position `seq`
/// (from 1 at the server's start), the pushing replica, source `push`,
/// what each object's delta holds ([`describe_delta`]).
fn server_log(ctx: &Ctx, q: &LogQuery) -> Result<Vec<Entry>> {
    let url = ctx.url.clone().unwrap_or_default();
    let mut client = ctx.connect().map_err(|e| anyhow!("{e}"))?;
    let limit = q
        .limit
        .unwrap_or(100)
        .clamp(1, crdt::sync::recent::MAX_LOG_LIMIT);
    client
        .send(
            &json!({"type": "log", "id": 1, "select": q.select, "limit": limit,
            "replica": q.replica.as_ref().map(|r| r.as_str()), "since": q.since, "until": q.until}),
        )
        .map_err(|e| anyhow!("{e}"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let reply = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match client.recv(left).map_err(|e| anyhow!("{e}"))? {
            Some(v) if v["type"] == "log-reply" => break v,
            Some(v) if v["type"] == "error" => bail!(
                "{url} refused the log request: {}: {} (a server older than this client has no log)",
                v["code"].as_str().unwrap_or("?"),
                v["message"].as_str().unwrap_or("")
            ),
            Some(_) => continue,
            None => bail!("{url} did not answer the log request within 30 s"),
        }
    };
    client.close();
    let bad = |what: &str| anyhow!("{url} sent a log-reply that does not decode: {what}");
    let mut entries = Vec::new();
    for e in reply["entries"]
        .as_array()
        .ok_or_else(|| bad("no \"entries\" list"))?
    {
        let seq = e["seq"]
            .as_u64()
            .ok_or_else(|| bad("an entry without \"seq\""))?;
        let time_ms = e["time_ms"]
            .as_u64()
            .ok_or_else(|| bad("an entry without \"time_ms\""))?;
        let replica = e["replica"]
            .as_str()
            .and_then(|r| ReplicaId::new(r).ok())
            .ok_or_else(|| bad("an entry without a valid \"replica\""))?;
        let entry = |name: &str, delta: Object, summary: String| Entry {
            id: seq,
            time_ms,
            source: format!("push to {url}"),
            name: name.to_string(),
            ty: delta.ty(),
            delta,
            replicas: vec![replica.clone()],
            summary,
        };
        if let Some(omitted) = e["omitted"].as_array() {
            for o in omitted {
                let ty = o["type"].as_str().and_then(|t| t.parse::<CrdtType>().ok());
                if let (Some(name), Some(ty)) = (o["name"].as_str(), ty) {
                    entries.push(entry(
                        name,
                        Object::new(ty),
                        "(too large for the server to keep)".into(),
                    ));
                }
            }
            continue;
        }
        let store = decode_objects(e.get("objects"), &replica)
            .map_err(|why| bad(&format!("entry {seq}: {why}")))?;
        for (name, o) in store.iter() {
            entries.push(entry(name, o.clone(), describe_delta(o)));
        }
    }
    counter_steps(&mut entries);
    entries.retain(|e| {
        q.replica.as_ref().is_none_or(|r| e.replicas.contains(r))
            && q.since.is_none_or(|t| e.time_ms >= t)
            && q.until.is_none_or(|t| e.time_ms <= t)
    });
    Ok(entries)
}

/// A counter's entries on the wire are totals: where the entries (newest
/// first) hold an earlier total of the same replica, say what was added.
fn counter_steps(entries: &mut [Entry]) {
    let mut last: std::collections::HashMap<(String, ReplicaId), i128> = Default::default();
    for e in entries.iter_mut().rev() {
        let totals: Vec<(ReplicaId, i128)> = match &e.delta {
            Object::GCounter(c) => c
                .entries()
                .map(|(r, x)| (r.clone(), i128::from(x.count)))
                .collect(),
            Object::PnCounter(c) => c
                .entries()
                .map(|(r, x)| (r.clone(), i128::from(x.p) - i128::from(x.n)))
                .collect(),
            _ => continue,
        };
        let words: Vec<String> = totals
            .into_iter()
            .map(|(r, total)| {
                let before = last.insert((e.name.clone(), r.clone()), total);
                match before {
                    Some(b) if total >= b => format!("+{} ({r} total {total})", total - b),
                    Some(b) => format!("{} ({r} total {total})", total - b),
                    None => format!("{r} total {total}"),
                }
            })
            .collect();
        e.summary = words.join(", ");
    }
}

fn render(ctx: &Ctx, out: &mut Out<impl Write>, entries: &[Entry]) -> Result<()> {
    let mut p = Printer::new(ctx.json);
    for e in entries {
        p.entry(out, e)?;
    }
    p.finish(out)
}

/// Writes entries as they come: lines, or one JSON array (the same text
/// as `Out::json` of the whole array), without holding them all.
struct Printer {
    json: bool,
    first: bool,
    /// A color per replica, in the order they are first seen.
    colors: BTreeMap<ReplicaId, Color>,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer {
            json,
            first: true,
            colors: BTreeMap::new(),
        }
    }

    fn entry(&mut self, out: &mut Out<impl Write>, e: &Entry) -> Result<()> {
        if self.json {
            let mut text = String::from(if self.first { "[\n  " } else { ",\n  " });
            crdt::snapshot::write_pretty(&mut text, &entry_json(e), 1);
            out.write_all(text.as_bytes())?;
            self.first = false;
            return Ok(());
        }
        let style = out.style();
        let mut by = Vec::new();
        for r in &e.replicas {
            let next = palette(self.colors.len());
            let c = *self.colors.entry(r.clone()).or_insert(next);
            by.push(style.paint(r.as_str(), c));
        }
        let by = if by.is_empty() {
            "-".to_string()
        } else {
            by.join(",")
        };
        let what = if e.summary.is_empty() {
            "(no visible change)"
        } else {
            e.summary.as_str()
        };
        writeln!(
            out,
            "{}  {}  {}  {}  {}  by {}  {}",
            style.dim(&format!("@{}", e.id)),
            fmt_ms(e.time_ms),
            style.bold(&e.name),
            e.ty,
            what,
            by,
            style.dim(&format!("({})", e.source))
        )?;
        Ok(())
    }

    fn finish(self, out: &mut Out<impl Write>) -> Result<()> {
        if self.json {
            out.write_all(if self.first { b"[]\n" } else { b"\n]\n" })?;
        }
        Ok(())
    }
}

/// One entry of `crdt --json log` (see docs/history.md).
pub fn entry_json(e: &Entry) -> Value {
    json!({
        "id": e.id,
        "time_ms": e.time_ms,
        "time": fmt_ms(e.time_ms),
        "name": e.name,
        "type": e.ty.as_str(),
        "summary": e.summary,
        "replicas": e.replicas.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "source": e.source,
        "delta": e.delta.state_json(),
    })
}

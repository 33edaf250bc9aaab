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
use super::output::{Out, Report};
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
        return render(out, &entries);
    }
    let db = history_db(ctx, args.from.as_deref())?;
    let mut palette = Palette::default();
    let mut list = out.list();
    db.log_each(&query, |e| -> Result<()> {
        Ok(list.item(&palette.line(&e))?)
    })?;
    list.finish()?;
    Ok(())
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

fn render(out: &mut Out<impl Write>, entries: &[Entry]) -> Result<()> {
    let mut palette = Palette::default();
    let mut list = out.list();
    for e in entries {
        list.item(&palette.line(e))?;
    }
    list.finish()?;
    Ok(())
}

/// A color per replica, in the order they are first seen.
#[derive(Default)]
struct Palette(BTreeMap<ReplicaId, Color>);

impl Palette {
    fn line<'a>(&mut self, entry: &'a Entry) -> LogLine<'a> {
        let colors = entry
            .replicas
            .iter()
            .map(|r| {
                let next = palette(self.0.len());
                *self.0.entry(r.clone()).or_insert(next)
            })
            .collect();
        LogLine { entry, colors }
    }
}

/// One entry of `log`, with the colors of its replicas.
struct LogLine<'a> {
    entry: &'a Entry,
    colors: Vec<Color>,
}

impl Report for LogLine<'_> {
    fn json(&self) -> Value {
        entry_json(self.entry)
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        let e = self.entry;
        let style = out.style();
        let by: Vec<String> = e
            .replicas
            .iter()
            .zip(&self.colors)
            .map(|(r, c)| style.paint(r.as_str(), *c))
            .collect();
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
        )
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

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::{Format, Style, printed};
    use crdt::GCounter;

    fn entry(id: u64, replicas: &[&str]) -> Entry {
        let a = ReplicaId::new("agent-1").unwrap();
        let mut g = GCounter::default();
        g.inc(&a, 1).unwrap();
        Entry {
            id,
            time_ms: 0,
            source: "local".into(),
            name: "metrics:requests".into(),
            ty: CrdtType::GCounter,
            delta: Object::GCounter(g),
            replicas: replicas
                .iter()
                .map(|r| ReplicaId::new(*r).unwrap())
                .collect(),
            summary: "+1".into(),
        }
    }

    #[test]
    fn a_log_line_says_when_what_and_by_whom() {
        let e = entry(12, &["agent-1"]);
        let (text, doc) = printed(&Palette::default().line(&e));
        assert_eq!(
            text,
            "@12  1970-01-01T00:00:00.000Z  metrics:requests  g-counter  +1  by agent-1  (local)\n"
        );
        assert_eq!(
            (doc["id"].clone(), doc["summary"].clone()),
            (json!(12), json!("+1"))
        );
        let none = entry(1, &[]);
        assert!(
            printed(&Palette::default().line(&none))
                .0
                .contains("  by -  ")
        );
    }

    #[test]
    fn a_replica_keeps_its_color_down_the_log() {
        let mut palette = Palette::default();
        let (one, two, again) = (
            entry(1, &["agent-1"]),
            entry(2, &["agent-2"]),
            entry(3, &["agent-2", "agent-1"]),
        );
        let colors: Vec<Vec<Color>> = [&one, &two, &again]
            .iter()
            .map(|e| palette.line(e).colors)
            .collect();
        assert_ne!(colors[0][0], colors[1][0]);
        assert_eq!(colors[2], vec![colors[1][0], colors[0][0]]);
        // The whole log as --json: one array, as `render` prints it.
        let mut out = Out::to(Vec::new(), false, Style::plain()).in_format(Format::Json);
        render(&mut out, &[one, two]).unwrap();
        let doc: Value = serde_json::from_slice(&out.into_inner()).unwrap();
        assert_eq!(doc.as_array().map(Vec::len), Some(2));
    }
}

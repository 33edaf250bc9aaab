//! The history: `crdt log`, and `--at` (reading the replica as it was).

use std::io::Write;

use anyhow::{Context as _, Result, bail};
use crdt::db::{Db, Entry, LogQuery, Moment};
use crdt::{ReplicaId, Store};
use serde_json::{Value, json};

use super::args::LogArgs;
use super::debug::{fmt_ms, replica_colors};
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
        upto: None,
        replica,
        limit: args.max_count,
    };
    let db = match &args.from {
        Some(path) => Db::open_read_only(path)?,
        None => match ctx.open_db()? {
            Some(db) => db,
            None => bail!(
                "no replica at {} yet: no history (change something first, or read another replica's database with --from FILE)",
                ctx.state.display()
            ),
        },
    };
    let entries = db.log(&query)?;
    if ctx.json {
        let docs: Vec<Value> = entries.iter().map(entry_json).collect();
        out.json(&Value::Array(docs))?;
        return Ok(());
    }
    let colors = replica_colors(entries.iter().flat_map(|e| e.replicas.iter().cloned()));
    let style = out.style();
    for e in &entries {
        let by: Vec<String> = e
            .replicas
            .iter()
            .map(|r| match colors.get(r) {
                Some(c) => style.paint(r.as_str(), *c),
                None => r.to_string(),
            })
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
        )?;
    }
    Ok(())
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

//! Snapshot files: export, import, merge.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use crdt::db::Db;
use crdt::statefile::{self, write_atomic};
use crdt::store::StoreVersion;
use crdt::{Store, snapshot};
use serde_json::{Value, json};

use super::output::{Out, Report};
use super::{Ctx, Exit};

/// Reads and validates a snapshot file (`-` is stdin), or another replica's
/// database (an SQLite file), or a JSON state file of an earlier version
/// with the journal beside it: each counts as a snapshot of everything that
/// replica has.
pub fn read_snapshot(path: &Path) -> Result<Store> {
    if path != Path::new("-") && Db::is_database(path) {
        return Ok(Db::open_read_only(path)?.load()?);
    }
    if path != Path::new("-") && statefile::journal_path(path).exists() {
        return statefile::load(path)?
            .with_context(|| format!("cannot read {}: it does not exist", path.display()));
    }
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the snapshot from stdin")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    snapshot::decode(&text).with_context(|| format!("{} is not a valid snapshot", path.display()))
}

/// Writes snapshot text to a file (atomically) or to stdout (`-` or none).
fn write_output(out: &mut Out, output: Option<&Path>, text: &str) -> Result<()> {
    match output {
        Some(p) if p != Path::new("-") => write_atomic(p, text.as_bytes())
            .with_context(|| format!("cannot write {}", p.display())),
        _ => Ok(out.write_all(text.as_bytes())?),
    }
}

/// The versions `--since` names: a version document (inline JSON or a
/// file), or a snapshot, replica database or state file (their versions).
fn since_versions(arg: &str) -> Result<StoreVersion> {
    if arg.trim_start().starts_with('{') {
        return snapshot::decode_versions(arg)
            .context("--since is not a version document (see `crdt version`)");
    }
    let path = Path::new(arg);
    if path != Path::new("-") && !Db::is_database(path) && path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let format = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_string));
        if format.as_deref() == Some(snapshot::VERSION_FORMAT) {
            return snapshot::decode_versions(&text)
                .with_context(|| format!("{} is not a valid version document", path.display()));
        }
    }
    Ok(read_snapshot(path)?.versions())
}

pub fn version(ctx: &Ctx, out: &mut Out, select: &[String]) -> Result<()> {
    let store = match ctx.load_selected(select)? {
        Some(s) => s,
        None => Store::new(ctx.replica_id()?),
    };
    let part = store.select(select);
    let text = snapshot::encode_versions(part.replica().as_str(), &part.versions());
    out.write_all(text.as_bytes())?;
    Ok(())
}

pub fn export(
    ctx: &Ctx,
    out: &mut Out,
    select: &[String],
    output: Option<PathBuf>,
    since: Option<&str>,
) -> Result<()> {
    let since = since.map(since_versions).transpose()?;
    let Some(store) = ctx.load_selected(select)? else {
        bail!(
            "no replica at {} yet: nothing to export",
            ctx.state.display()
        );
    };
    let part = store.select(select);
    if part.is_empty() && !select.is_empty() {
        bail!("nothing matches {} (see `crdt ls`)", select.join(" "));
    }
    let (text, count) = match &since {
        Some(since) => {
            let delta = part.delta_since(since);
            (snapshot::encode_since(&delta, since), delta.len())
        }
        None => (snapshot::encode(&part), part.len()),
    };
    write_output(out, output.as_deref(), &text)?;
    if let Some(p) = output.filter(|p| p != Path::new("-")) {
        // The snapshot went to a file: --json says what was written.
        out.report(&Written(
            json!({"file": p.display().to_string(), "objects": count,
                "delta": since.is_some(), "bytes": text.len()}),
        ))?;
        let what = if since.is_some() { "deltas of " } else { "" };
        let objects = if count == 1 { "object" } else { "objects" };
        eprintln!("crdt: exported {what}{count} {objects} to {}", p.display());
    }
    Ok(())
}

pub fn import(ctx: &Ctx, out: &mut Out, files: &[PathBuf]) -> Result<Exit> {
    // Read and check every file before touching the local replica.
    let incoming: Vec<(&PathBuf, Store)> = files
        .iter()
        .map(|f| Ok((f, read_snapshot(f)?)))
        .collect::<Result<_>>()?;
    // With --url, the endpoint is asked first: one that refuses changes nothing.
    let link = if ctx.url.is_some() {
        Some(super::net::link_before_change(ctx)?)
    } else {
        None
    };
    let mut names: Vec<String> = incoming
        .iter()
        .flat_map(|(_, s)| s.iter().map(|(n, _)| n.to_string()))
        .collect();
    names.sort();
    names.dedup();
    let (report, spent) = ctx.update_spent("import", |c| {
        c.merging();
        c.load_all()?;
        let mut report = Vec::new();
        for (path, other) in &incoming {
            let store = c.store_mut();
            // The gate: a file that contradicts what this replica holds
            // (a counter that goes down, one dot with two contents) is
            // refused, and nothing of any file is saved.
            store.check_mergeable(other).map_err(|why| {
                anyhow::anyhow!("{} cannot be merged here: {why}", path.display())
            })?;
            store.merge(other);
            let changed = c.record_merges(Some(&format!("import {}", path.display())));
            report.push((
                path.display().to_string(),
                other.replica().to_string(),
                other.len(),
                changed,
            ));
        }
        Ok(report)
    })?;
    let code = match link {
        Some(link) => Some(super::net::sync_changed(ctx, link, &names)?),
        None => None,
    };
    out.report(&Imported {
        files: &report,
        synced: code.map(|c| c == Exit::Success),
    })?;
    // The process exits next: freeing every object read and merged one by
    // one would cost 10% of a large import, for nothing.
    std::mem::forget((spent, incoming));
    Ok(code.unwrap_or(Exit::Success))
}

/// A snapshot written to a file: stderr says so in words; `--json` prints
/// this document of what was written, and the text prints nothing.
struct Written(Value);

impl Report for Written {
    fn json(&self) -> Value {
        self.0.clone()
    }

    fn text<W: Write>(&self, _: &mut Out<W>) -> std::io::Result<()> {
        Ok(())
    }
}

/// `import`: per file, its replica, its objects, how many changed here;
/// with `--url`, whether the sync after it succeeded.
struct Imported<'a> {
    files: &'a [(String, String, usize, usize)],
    synced: Option<bool>,
}

impl Report for Imported<'_> {
    fn json(&self) -> Value {
        let files: Vec<_> = self
            .files
            .iter()
            .map(|(f, r, n, c)| json!({"file": f, "replica": r, "objects": n, "changed": c}))
            .collect();
        let mut doc = json!({ "imported": files });
        if let Some(synced) = self.synced {
            doc["synced"] = json!(synced);
        }
        doc
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        for (f, r, n, c) in self.files {
            let objects = if *n == 1 { "object" } else { "objects" };
            writeln!(out, "{f}: {n} {objects} from replica {r}, {c} changed here")?;
        }
        Ok(())
    }
}

pub fn merge(out: &mut Out, files: &[PathBuf], output: Option<PathBuf>) -> Result<()> {
    let mut stores = files.iter().map(|f| (f, read_snapshot(f)));
    let (_, first) = stores.next().expect("clap requires one file");
    let mut merged = first?;
    for (f, s) in stores {
        let s = s?;
        merged.check_mergeable(&s).map_err(|why| {
            anyhow::anyhow!("{} contradicts the files before it: {why}", f.display())
        })?;
        merged.merge(&s);
    }
    let text = snapshot::encode(&merged);
    write_output(out, output.as_deref(), &text)?;
    if let Some(p) = output.filter(|p| p != Path::new("-")) {
        out.report(&Written(
            json!({"file": p.display().to_string(), "files": files.len(),
                "objects": merged.len(), "bytes": text.len()}),
        ))?;
        eprintln!(
            "crdt: merged {} files ({} objects) into {}",
            files.len(),
            merged.len(),
            p.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn a_written_file_is_said_on_stderr_and_in_json_only() {
        let (text, doc) = printed(&Written(json!({"file": "a.json", "objects": 2})));
        assert_eq!(text, "");
        assert_eq!(doc["objects"], 2);
    }

    #[test]
    fn an_import_says_what_each_file_changed() {
        let files = [("a.json".to_string(), "agent-2".to_string(), 1, 0)];
        let (text, doc) = printed(&Imported {
            files: &files,
            synced: None,
        });
        assert_eq!(
            text,
            "a.json: 1 object from replica agent-2, 0 changed here\n"
        );
        assert_eq!(
            doc,
            json!({"imported": [{"file": "a.json", "replica": "agent-2", "objects": 1, "changed": 0}]})
        );
        let (_, doc) = printed(&Imported {
            files: &files,
            synced: Some(false),
        });
        assert_eq!(doc["synced"], false);
    }
}

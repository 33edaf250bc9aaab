//! Commands that talk to a sync endpoint: serve, sync, watch, wait, and the
//! sync after a change command given `--url`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use crdt::db::Db;
use crdt::store::selected;
use crdt::store::{Store, StoreVersion};
use crdt::sync::client::{Client, ClientError, SyncReport};
use crdt::sync::parts::{Local, Range};
use crdt::{CrdtType, Object, ReplicaId};
use serde_json::{Value, json};

use super::output::{Out, Report, one_line};
use super::{Ctx, Exit};

impl Ctx {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout.max(0.05))
    }

    fn url(&self) -> Result<&str> {
        self.url.as_deref().ok_or_else(|| {
            anyhow!("no sync endpoint: give --url ws://HOST:PORT/ws or set CRDT_URL")
        })
    }

    pub(super) fn connect(&self) -> Result<Client, ClientError> {
        let url = self.url.as_deref().unwrap_or_default();
        // The replica id is the database's (or the one it will be created with).
        let me = self
            .replica_id()
            .map_err(|e| ClientError::Refused(format!("{e:#}")))?;
        Client::connect(url, self.token.as_deref(), self.timeout(), &me)
    }

    /// Syncs the selected objects of the local replica.
    pub fn sync_selected(
        &self,
        select: &[String],
        watch: bool,
    ) -> Result<(Client, SyncReport), ClientError> {
        let client = self.connect()?;
        self.sync_with(client, select, watch)
    }

    /// [`Ctx::sync_selected`] over a connection already open.
    fn sync_with(
        &self,
        mut client: Client,
        select: &[String],
        watch: bool,
    ) -> Result<(Client, SyncReport), ClientError> {
        let local = |e: anyhow::Error| ClientError::Local(format!("{e:#}"));
        let db = self.open_or_create().map_err(local)?;
        let source = format!("sync {}", self.url.as_deref().unwrap_or_default());
        let mut local = DbLocal::new(db, source);
        let result = client.sync(&mut local, select, watch, self.timeout());
        // What arrived is kept, also when the sync broke off halfway.
        let kept = local.flush();
        let report = result?;
        kept.map_err(ClientError::Local)?;
        Ok((client, report))
    }
}

/// The local replica's database as the sync client's local side. Parts
/// are merged into the objects they change (loaded from the database) and
/// committed in transactions of their own: every 1 MiB of parts, or, for a
/// large object arriving in many parts, once the parts since the last commit
/// are as large as what was committed of it (so writing a large object
/// costs about twice its size, not a whole rewrite per part), and at the end
/// of every reply. So memory holds about 1 MiB of parts and the large
/// objects they change, and a sync cut off halfway keeps what was committed.
struct DbLocal {
    db: Db,
    replica: ReplicaId,
    source: String,
    /// Objects changed by parts not committed yet (with what the database
    /// held of them before).
    held: Store,
    /// Part bytes merged into `held`.
    pending: usize,
    /// Per name, the part bytes of it committed in this sync.
    committed: std::collections::HashMap<String, usize>,
}

/// Names read per page when listing versions.
const VERSION_PAGE: usize = 256;

/// Part bytes held before a commit (at least).
const FLUSH_BYTES: usize = 1 << 20;

impl DbLocal {
    fn new(db: Db, source: String) -> DbLocal {
        DbLocal {
            replica: db.replica().clone(),
            held: Store::new(db.replica().clone()),
            db,
            source,
            pending: 0,
            committed: std::collections::HashMap::new(),
        }
    }
}

impl Local for DbLocal {
    fn replica(&self) -> ReplicaId {
        self.replica.clone()
    }

    fn versions_after(
        &mut self,
        select: &[String],
        after: Option<&str>,
        budget: usize,
    ) -> Result<(StoreVersion, Option<String>), String> {
        self.flush()?;
        let mut range = Range::new(budget);
        let mut cursor = after.map(str::to_string);
        loop {
            let page = self
                .db
                .page_after(cursor.as_deref(), VERSION_PAGE)
                .map_err(|e| e.to_string())?;
            let Some((end, _)) = page.last() else {
                return Ok(range.to_end());
            };
            let end = end.clone();
            for (name, o) in page.iter().filter(|(n, _)| selected(select, n)) {
                if !range.add(name, o) {
                    return Ok(range.full());
                }
            }
            cursor = Some(end);
        }
    }

    fn merge_part(
        &mut self,
        delta: &Store,
        bytes: usize,
    ) -> Result<Vec<(String, crdt::CrdtType)>, String> {
        let names: Vec<String> = delta.names_after(None).map(str::to_string).collect();
        let fresh: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !self.held.contains_name(n))
            .collect();
        if !fresh.is_empty() {
            let stored = self.db.load_names(&fresh).map_err(|e| e.to_string())?;
            for (n, o) in stored.iter() {
                self.held.insert_object(n, o.clone());
            }
        }
        let changed = Local::merge_part(&mut self.held, delta, bytes)?;
        self.pending += bytes;
        // A part of one object may be part of a large one: what arrived of
        // it is counted (only then: the map stays as small as the large
        // objects).
        let large = match names.as_slice() {
            [one] => {
                let n = self.committed.entry(one.clone()).or_default();
                *n += bytes;
                *n - bytes
            }
            _ => 0,
        };
        if self.pending >= FLUSH_BYTES.max(large) {
            self.flush()?;
        }
        Ok(changed)
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::replace(&mut self.held, Store::new(self.replica.clone()));
        self.pending = 0;
        let mut c = self
            .db
            .change(&self.source, super::ops::now_ms())
            .map_err(|e| e.to_string())?;
        c.merging();
        for name in held.names_after(None) {
            c.load_name(name).map_err(|e| e.to_string())?;
        }
        // Another process may have changed these objects meanwhile: merged
        // (through the gate), nothing of it is lost.
        let store = c.store_mut();
        store.check_mergeable(&held).map_err(|e| e.to_string())?;
        store.merge(&held);
        c.commit().map_err(|e| e.to_string())
    }

    fn deltas(&mut self, want: &StoreVersion) -> Result<Store, String> {
        let mut delta = Store::new(self.replica.clone());
        let mut name: Option<&str> = None;
        let mut held = Store::new(self.replica.clone());
        for ((n, ty), vv) in want {
            if name != Some(n.as_str()) {
                held = self.db.load_name(n).map_err(|e| e.to_string())?;
                name = Some(n);
            }
            if let Some(o) = held.get(n, *ty) {
                delta.merge_object(n, &o.delta_since(vv));
            }
        }
        Ok(delta)
    }
}

/// The endpoint of a change command with `--url`, asked before the change.
pub enum Link {
    /// Connected and greeted: the change is synced through it.
    Open(Box<Client>),
    /// Unreachable: the change stays local (exit 3), and this says why.
    Unreachable(ClientError),
}

/// Connects before a change is made: an endpoint that refuses (a URL that is
/// not `ws://`/`wss://`, a wrong path, a missing or wrong token) is an
/// error, and nothing changes; one that cannot be reached is not.
pub fn link_before_change(ctx: &Ctx) -> Result<Link> {
    match ctx.connect() {
        Ok(client) => Ok(Link::Open(Box::new(client))),
        Err(e @ (ClientError::Unreachable { .. } | ClientError::Lost(_))) => {
            Ok(Link::Unreachable(e))
        }
        Err(e) => Err(anyhow!(e).context("nothing was changed")),
    }
}

/// After a change command with `--url`: sync the changed name. Returns the
/// exit code and the value the replica now knows.
pub fn sync_after_change(
    ctx: &Ctx,
    link: Link,
    name: &str,
    local_value: Value,
    ty: crdt::CrdtType,
) -> Result<(Exit, Value)> {
    let client = match link {
        Link::Open(c) => *c,
        Link::Unreachable(e) => {
            eprintln!(
                "crdt: warning: the change is saved locally but not synced: {e}; the next sync sends it"
            );
            return Ok((Exit::Unreachable, local_value));
        }
    };
    match ctx.sync_with(client, &[name.to_string()], false) {
        Ok((client, report)) => {
            client.close();
            unsendable(&report).context("the change is saved locally, but the sync failed")?;
            let store = ctx.load_name(name)?.context("the local replica vanished")?;
            Ok((
                Exit::Success,
                store.get(name, ty).map_or(local_value, Object::value_json),
            ))
        }
        Err(e @ (ClientError::Unreachable { .. } | ClientError::Lost(_))) => {
            eprintln!(
                "crdt: warning: the change is saved locally but not synced: {e}; the next sync sends it"
            );
            Ok((Exit::Unreachable, local_value))
        }
        Err(e) => Err(anyhow!(e).context("the change is saved locally, but the sync failed")),
    }
}

/// After a command that changed several names with `--url` (`batch`,
/// `import`): sync them (everything, when there are many: a selection is
/// sent with every request). Exit 3 when the endpoint is unreachable: the
/// changes stay local, and the next sync sends them.
pub fn sync_changed(ctx: &Ctx, link: Link, names: &[String]) -> Result<Exit> {
    let unsynced = |e: &ClientError| {
        eprintln!(
            "crdt: warning: the changes are saved locally but not synced: {e}; the next sync sends them"
        );
        Ok(Exit::Unreachable)
    };
    let client = match link {
        Link::Open(c) => *c,
        Link::Unreachable(e) => return unsynced(&e),
    };
    if names.is_empty() {
        client.close();
        return Ok(Exit::Success);
    }
    let select: Vec<String> = if names.len() > MAX_SELECTED_NAMES {
        Vec::new()
    } else {
        names.to_vec()
    };
    match ctx.sync_with(client, &select, false) {
        Ok((client, report)) => {
            client.close();
            unsendable(&report).context("the changes are saved locally, but the sync failed")?;
            Ok(Exit::Success)
        }
        Err(e @ (ClientError::Unreachable { .. } | ClientError::Lost(_))) => unsynced(&e),
        Err(e) => Err(anyhow!(e).context("the changes are saved locally, but the sync failed")),
    }
}

/// Most names [`sync_changed`] selects one by one.
const MAX_SELECTED_NAMES: usize = 256;

pub(super) fn client_failure(e: ClientError) -> Result<Exit> {
    match e {
        ClientError::Unreachable { .. } | ClientError::Lost(_) => {
            eprintln!("crdt: error: {e}");
            Ok(Exit::Unreachable)
        }
        other => Err(anyhow!(other)),
    }
}

pub fn sync(ctx: &Ctx, out: &mut Out, select: &[String]) -> Result<Exit> {
    ctx.url()?;
    let (client, report) = match ctx.sync_selected(select, false) {
        Ok(x) => x,
        Err(e) => return client_failure(e),
    };
    let server = client.server_replica.clone();
    client.close();
    out.report(&Synced {
        server: &server,
        report: &report,
    })?;
    if let Err(e) = unsendable(&report) {
        out.flush()?;
        return Err(e);
    }
    Ok(Exit::Success)
}

/// Objects a sync could not send (a register larger than the server's
/// message limit): an error naming them; the rest was synced.
fn unsendable(report: &SyncReport) -> Result<()> {
    match report.unsent.as_slice() {
        [] => Ok(()),
        [one] => bail!("cannot send {one}"),
        many => bail!(
            "cannot send {} objects:\n  {}",
            many.len(),
            many.join("\n  ")
        ),
    }
}

/// How one followed connection ended.
enum FollowEnd {
    /// SIGINT or SIGTERM: stop, exit 0.
    Stopped,
    /// The connection dropped: reconnect.
    Lost(ClientError),
}

/// `crdt sync --follow`: stays connected and keeps the replica in sync both
/// ways. Changes other processes make to this replica are noticed within a
/// quarter of a second (SQLite's `data_version`, then the names of their
/// history rows) and synced; what other replicas push arrives as updates.
/// A dropped connection is retried with backoff (0.5 s doubling to 30 s);
/// SIGINT or SIGTERM end it with exit 0.
pub fn follow(ctx: &Ctx, out: &mut Out, select: &[String]) -> Result<Exit> {
    let url = ctx.url()?.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .context("cannot install the signal handlers")?;
    }
    let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
    let pause = |d: Duration| {
        let until = Instant::now() + d;
        while !stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let first_backoff = Duration::from_millis(500);
    let mut backoff = first_backoff;
    let mut dropped = false;
    while !stopped() {
        let client = match ctx.connect() {
            Ok(c) => c,
            Err(e @ (ClientError::Unreachable { .. } | ClientError::Lost(_))) => {
                eprintln!("crdt: {e}; trying again in {:.1} s", backoff.as_secs_f64());
                pause(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
                dropped = true;
                continue;
            }
            Err(e) => return Err(anyhow!(e)),
        };
        if dropped {
            eprintln!("crdt: connected to {url} again");
        }
        backoff = first_backoff;
        match follow_connection(ctx, out, client, select, &stopped) {
            Ok(FollowEnd::Stopped) => break,
            // A signal interrupts a read: that is a stop, not a drop.
            Ok(FollowEnd::Lost(_)) if stopped() => break,
            Ok(FollowEnd::Lost(e)) => {
                eprintln!("crdt: {e}; reconnecting");
                dropped = true;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Exit::Success)
}

/// One connection of [`follow`]: a first sync (watching), then updates in
/// and local changes out, until it drops or a signal stops it.
fn follow_connection(
    ctx: &Ctx,
    out: &mut Out,
    mut client: Client,
    select: &[String],
    stopped: &dyn Fn() -> bool,
) -> Result<FollowEnd> {
    let timeout = ctx.timeout();
    let db = ctx.open_or_create()?;
    let source = format!("sync {}", ctx.url.as_deref().unwrap_or_default());
    let mut local = DbLocal::new(db, source.clone());
    let lost = |local: &mut DbLocal, e: ClientError| -> Result<FollowEnd> {
        // What arrived is kept.
        local.flush().map_err(|e| anyhow!(e))?;
        match e {
            ClientError::Unreachable { .. } | ClientError::Lost(_) => Ok(FollowEnd::Lost(e)),
            other => Err(anyhow!(other)),
        }
    };
    // Changes after this row that are not this connection's own get sent.
    let mut last_id = local.db.last_history_id()?;
    let mut seen_version = local.db.data_version()?;
    let report = match client.sync(&mut local, select, true, timeout) {
        Ok(r) => r,
        Err(e) => return lost(&mut local, e),
    };
    exchange_line(out, "sync", &report, &[])?;
    loop {
        if stopped() {
            client.close();
            return Ok(FollowEnd::Stopped);
        }
        match client.recv(Duration::from_millis(250)) {
            Ok(Some(msg)) if msg["type"] == "update" => {
                let delta =
                    crdt::sync::protocol::decode_objects(msg.get("objects"), &local.replica)?;
                let names: Vec<String> = delta.iter().map(|(n, _)| n.to_string()).collect();
                let bytes = client.last_len;
                match Local::merge_part(&mut local, &delta, bytes) {
                    Ok(changed) => {
                        local.flush().map_err(|e| anyhow!(e))?;
                        let report = SyncReport {
                            received: changed.len(),
                            bytes_received: bytes as u64,
                            ..SyncReport::default()
                        };
                        exchange_line(out, "update", &report, &names)?;
                    }
                    // A text change this replica cannot place yet: catch up.
                    Err(_) => match client.sync(&mut local, select, false, timeout) {
                        Ok(report) => exchange_line(out, "sync", &report, &[])?,
                        Err(e) => return lost(&mut local, e),
                    },
                }
            }
            Ok(_) => {}
            Err(e) => return lost(&mut local, e),
        }
        let version = local.db.data_version()?;
        if version == seen_version {
            continue;
        }
        seen_version = version;
        let (names, last) = local.db.changed_since(last_id, &source)?;
        last_id = last;
        let names: Vec<String> = names.into_iter().filter(|n| selected(select, n)).collect();
        if names.is_empty() {
            continue;
        }
        let narrow = if names.len() > MAX_SELECTED_NAMES {
            select.to_vec()
        } else {
            names.clone()
        };
        match client.sync(&mut local, &narrow, false, timeout) {
            Ok(report) => exchange_line(out, "push", &report, &names)?,
            Err(e) => return lost(&mut local, e),
        }
    }
}

fn objects(n: usize) -> &'static str {
    if n == 1 { "object" } else { "objects" }
}

/// `sync`: what went each way.
struct Synced<'a> {
    server: &'a str,
    report: &'a SyncReport,
}

impl Report for Synced<'_> {
    fn json(&self) -> Value {
        let r = self.report;
        json!({"server": self.server, "received": r.received, "sent": r.sent,
            "bytes_sent": r.bytes_sent, "bytes_received": r.bytes_received})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        let r = self.report;
        writeln!(
            out,
            "synced with {}: {} {} received, {} sent ({} bytes out, {} bytes in)",
            self.server,
            r.received,
            objects(r.received),
            r.sent,
            r.bytes_sent,
            r.bytes_received
        )
    }
}

/// One line per exchange of `sync --follow`: text, or a JSON line.
fn exchange_line(out: &mut Out, kind: &str, r: &SyncReport, names: &[String]) -> Result<()> {
    for why in &r.unsent {
        eprintln!("crdt: error: cannot send {why}");
    }
    out.line(&Exchange { kind, r, names })?;
    out.flush()?;
    Ok(())
}

/// One exchange of `sync --follow`: what went each way, and the names.
struct Exchange<'a> {
    kind: &'a str,
    r: &'a SyncReport,
    names: &'a [String],
}

impl Report for Exchange<'_> {
    fn json(&self) -> Value {
        let r = self.r;
        json!({"exchange": self.kind, "received": r.received, "sent": r.sent,
            "bytes_sent": r.bytes_sent, "bytes_received": r.bytes_received, "names": self.names})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        let (r, names) = (self.r, self.names);
        let mut line = format!(
            "{}: {} {} received, {} sent ({} bytes out, {} bytes in)",
            self.kind,
            r.received,
            objects(r.received),
            r.sent,
            r.bytes_sent,
            r.bytes_received
        );
        if !names.is_empty() {
            let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
            line.push_str(&format!(": {}", shown.join(" ")));
            if names.len() > 5 {
                line.push_str(&format!(" and {} more", names.len() - 5));
            }
        }
        writeln!(out, "{line}")
    }
}

/// Merges an `update` into the local replica; returns the changed objects.
pub(super) fn apply_update(ctx: &Ctx, msg: &Value) -> Result<Vec<(String, crdt::CrdtType, Value)>> {
    let source = format!("sync {}", ctx.url.as_deref().unwrap_or_default());
    ctx.update(&source, |c| {
        let delta = crdt::sync::protocol::decode_objects(msg.get("objects"), c.replica())?;
        for (name, _) in delta.iter() {
            c.load_name(name)?;
        }
        let store = c.store_mut();
        let changed = store.merge_changed(&delta).map_err(|e| anyhow!(e))?;
        Ok(changed
            .into_iter()
            .map(|(name, ty)| {
                let value = store.get(&name, ty).expect("just merged").value_json();
                (name, ty, value)
            })
            .collect())
    })
}

pub fn watch(
    ctx: &Ctx,
    out: &mut Out,
    select: &[String],
    count: Option<u64>,
    timeout: Option<f64>,
) -> Result<Exit> {
    ctx.url()?;
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t));
    let (mut client, _) = match ctx.sync_selected(select, true) {
        Ok(x) => x,
        Err(e) => return client_failure(e),
    };
    let mut seen = 0u64;
    loop {
        if count.is_some_and(|c| seen >= c) {
            break;
        }
        let wait = match deadline {
            Some(d) if Instant::now() >= d => break,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1)),
            None => Duration::from_secs(1),
        };
        let msg = match client.recv(wait) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => return client_failure(e),
        };
        if msg["type"] != "update" {
            continue;
        }
        for (name, ty, value) in apply_update(ctx, &msg)? {
            out.line(&Update {
                name: &name,
                ty,
                value: &value,
            })?;
            out.flush()?;
            seen += 1;
            if count.is_some_and(|c| seen >= c) {
                break;
            }
        }
    }
    client.close();
    Ok(Exit::Success)
}

/// `watch`: one object's new value, as it arrived.
struct Update<'a> {
    name: &'a str,
    ty: CrdtType,
    value: &'a Value,
}

impl Report for Update<'_> {
    fn json(&self) -> Value {
        json!({"name": self.name, "type": self.ty.as_str(), "value": self.value})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        let text = one_line(self.value, self.ty == CrdtType::Rga);
        writeln!(out, "{} ({}) = {text}", self.name, self.ty)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn sync_and_watch_reports_print_both_ways() {
        let report = SyncReport {
            received: 1,
            sent: 2,
            bytes_sent: 30,
            bytes_received: 40,
            ..SyncReport::default()
        };
        let (text, doc) = printed(&Synced {
            server: "server-1",
            report: &report,
        });
        assert_eq!(
            text,
            "synced with server-1: 1 object received, 2 sent (30 bytes out, 40 bytes in)\n"
        );
        assert_eq!(
            (doc["server"].clone(), doc["sent"].clone()),
            (json!("server-1"), json!(2))
        );
        let names: Vec<String> = (0..7).map(|i| format!("n{i}")).collect();
        let (text, doc) = printed(&Exchange {
            kind: "push",
            r: &report,
            names: &names,
        });
        assert!(text.ends_with(": n0 n1 n2 n3 n4 and 2 more\n"), "{text}");
        assert_eq!(doc["names"].as_array().unwrap().len(), 7);
        let value = json!("Hi");
        let (text, doc) = printed(&Update {
            name: "doc",
            ty: CrdtType::Rga,
            value: &value,
        });
        assert_eq!(text, "doc (rga) = Hi\n");
        assert_eq!(doc["type"], "rga");
    }
}

//! The cluster's threads: one connection catches up, publishes and beats;
//! the stream reader blocks on XREAD; the compactor holds the lease and
//! folds the stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::Waker;
use redis::{Connection, RedisResult, Value};

use super::lines::*;
use super::*;
use crate::sync::persist::encode_entry;

/// What a catch-up reads: the compacted copy's id and fields, and the stream.
type Held = (Option<Vec<u8>>, Fields, Value);
/// A hash's fields and values, as bytes.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;
/// What a tick reads: heartbeats, stream length, compacted id.
type Beat = (Fields, u64, Option<Vec<u8>>);

/// A reply of a shape Redis does not give (not what entries hold: those
/// are checked one by one, and skipped).
fn unreadable(why: String) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "stream reply", why))
}

/// How one connection to Redis ended.
enum End {
    Stop,
    /// Read everything again at once.
    Resync(String),
    Failed(String),
}

impl From<redis::RedisError> for End {
    fn from(e: redis::RedisError) -> End {
        End::Failed(e.to_string())
    }
}

/// The cluster thread.
pub(super) struct Node {
    pub(super) config: ClusterConfig,
    pub(super) keys: Keys,
    pub(super) client: redis::Client,
    pub(super) node: ReplicaId,
    pub(super) to_loop: Sender<FromLink>,
    pub(super) waker: Arc<Waker>,
    pub(super) status: Arc<Mutex<Status>>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) log: Log,
}

/// What the stream reader shares with the cluster thread.
#[derive(Default)]
struct Reader {
    stop: AtomicBool,
    /// Why it stopped reading (the connection failed).
    failed: Mutex<Option<String>>,
    /// The last id it read.
    at: Mutex<String>,
}

impl Node {
    pub(super) fn run(self, from_loop: Receiver<ToLink>) {
        let mut backoff = Duration::from_millis(100);
        let mut down_since: Option<Instant> = None;
        loop {
            let end = self.connected(&from_loop, &mut backoff, &mut down_since);
            let why = match end {
                End::Stop => return,
                End::Resync(why) => {
                    (self.log)(format!("cluster: reading everything again ({why})"));
                    lock(&self.status).resyncs += 1;
                    continue;
                }
                End::Failed(why) => why,
            };
            {
                let mut s = lock(&self.status);
                s.connected = false;
                s.redis_errors += 1;
                s.error = Some(why.clone());
            }
            if down_since.is_none() {
                down_since = Some(Instant::now());
                (self.log)(format!(
                    "cluster: cannot reach redis {} ({why}); serving alone, retrying",
                    redact(&self.config.url)
                ));
            }
            // What is accepted meanwhile is published at the next connect
            // (Redis lacks it then): the queue is dropped, not kept.
            let until = Instant::now() + backoff;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                match from_loop.recv_timeout(left.min(Duration::from_millis(100))) {
                    Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let con = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(con)
    }

    /// One connection: catch up, then publish and tick until it fails.
    fn connected(
        &self,
        from_loop: &Receiver<ToLink>,
        backoff: &mut Duration,
        down_since: &mut Option<Instant>,
    ) -> End {
        let mut con = match self.connect() {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        let (redis, last, entries) = match self.read_all(&mut con) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let objects = redis.len();
        if self.to_loop.send(FromLink::Caught(redis)).is_err() {
            return End::Stop;
        }
        let _ = self.waker.wake();
        let reader = Arc::new(Reader {
            at: Mutex::new(last.clone()),
            ..Reader::default()
        });
        // Stops the reader however this connection ends.
        struct StopReader(Arc<Reader>);
        impl Drop for StopReader {
            fn drop(&mut self) {
                self.0.stop.store(true, Ordering::Relaxed);
            }
        }
        let _guard = StopReader(reader.clone());
        let stream = StreamReader {
            client: self.client.clone(),
            keys: self.keys.clone(),
            node: self.node.clone(),
            to_loop: self.to_loop.clone(),
            waker: self.waker.clone(),
            log: self.log.clone(),
            reader: reader.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("crdt-cluster-read".into())
            .spawn(move || stream.run(last));
        if let Err(e) = spawned {
            return End::Failed(format!("cannot start the stream reader: {e}"));
        }
        {
            let mut s = lock(&self.status);
            s.connected = true;
            s.error = None;
        }
        let was_down = down_since.take();
        (self.log)(format!(
            "cluster: connected to redis {} as node {}{}: {objects} objects and {entries} stream entries read",
            redact(&self.config.url),
            self.node,
            was_down.map_or(String::new(), |t| format!(
                " after {:.1} s",
                t.elapsed().as_secs_f64()
            )),
        ));
        *backoff = Duration::from_millis(100);
        let mut last_tick: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return End::Stop;
            }
            if let Some(why) = reader.failed.lock().ok().and_then(|mut f| f.take()) {
                return End::Failed(why);
            }
            let first = match from_loop.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return End::Stop,
            };
            if let Some(first) = first {
                // Everything waiting goes in one round trip.
                let mut batch = vec![first];
                while let Ok(m) = from_loop.try_recv() {
                    batch.push(m);
                }
                if let Err(e) = self.publish(&mut con, batch) {
                    return e;
                }
            }
            if last_tick.is_none_or(|t| t.elapsed() >= TICK) {
                last_tick = Some(Instant::now());
                if let Err(e) = self.tick(&mut con, &reader) {
                    return e;
                }
            }
        }
    }

    /// Everything Redis holds: the compacted copy and the stream after it,
    /// merged; the last id read; entries read. Read in pages, under a WATCH
    /// of the compacted copy's id, which every compaction changes: a
    /// compaction meanwhile (it may have folded entries into fields already
    /// read, and trimmed them) makes it read again, and after
    /// [`PAGED_TRIES`] spoiled tries it reads everything in one
    /// transaction. What a spoiled try merged stays merged (it was Redis's).
    fn read_all(&self, con: &mut Connection) -> Result<(Store, String, usize), End> {
        let mut all = Store::new(self.node.clone());
        let mut misfits = 0;
        let mut read = None;
        for _ in 0..PAGED_TRIES {
            read = self.read_paged(con, &mut all, &mut misfits, &mut || {})?;
            if read.is_some() {
                break;
            }
        }
        let (last, entries) = match read {
            Some(r) => r,
            None => self.read_at_once(con, &mut all, &mut misfits)?,
        };
        if misfits > 0 {
            (self.log)(format!(
                "cluster: {misfits} objects in redis refer to characters it lacks (left out; their nodes publish them again)"
            ));
        }
        Ok((all, last, entries))
    }

    /// One paged read: `None` when a compaction spoiled it. `between` runs
    /// between the compacted copy's pages and the stream's (for a test to
    /// compact there).
    fn read_paged(
        &self,
        con: &mut Connection,
        all: &mut Store,
        misfits: &mut usize,
        between: &mut dyn FnMut(),
    ) -> RedisResult<Option<(String, usize)>> {
        let k = &self.keys;
        redis::cmd("WATCH").arg(&k.state_id).exec(con)?;
        let state_id = checked_id(redis::cmd("GET").arg(&k.state_id).query(con)?);
        let mut cursor = "0".to_string();
        loop {
            let (next, page): (String, Fields) = redis::cmd("HSCAN")
                .arg(&k.state)
                .arg(&cursor)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query(con)?;
            for (f, value) in &page {
                *misfits += self.merge_field(all, f, value);
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }
        between();
        let mut from = state_id.as_deref().map(|s| format!("({s}"));
        let mut last = state_id.clone().unwrap_or_else(|| "0-0".into());
        let mut entries = 0;
        loop {
            let range = range_entries(
                redis::cmd("XRANGE")
                    .arg(&k.stream)
                    .arg(from.as_deref().unwrap_or("-"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(RANGE_COUNT)
                    .query(con)?,
            )
            .map_err(unreadable)?;
            entries += self.merge_entries(all, &range, state_id.as_deref(), &mut last, misfits);
            if range.len() < RANGE_COUNT {
                break;
            }
            from = range.last().map(|e| format!("({}", e.id));
        }
        // Aborted (nil) when the compacted id changed since the WATCH.
        let unchanged: Option<(Option<Vec<u8>>,)> = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&k.state_id)
            .query(con)?;
        Ok(unchanged.map(|_| (last, entries)))
    }

    /// Everything in one transaction (Redis answers nobody else meanwhile).
    fn read_at_once(
        &self,
        con: &mut Connection,
        all: &mut Store,
        misfits: &mut usize,
    ) -> RedisResult<(String, usize)> {
        let k = &self.keys;
        let (state_id, state, range): Held = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&k.state_id)
            .cmd("HGETALL")
            .arg(&k.state)
            .cmd("XRANGE")
            .arg(&k.stream)
            .arg("-")
            .arg("+")
            .query(con)?;
        for (f, value) in &state {
            *misfits += self.merge_field(all, f, value);
        }
        let state_id = checked_id(state_id);
        let range = range_entries(range).map_err(unreadable)?;
        let mut last = state_id.clone().unwrap_or_else(|| "0-0".into());
        let entries = self.merge_entries(all, &range, state_id.as_deref(), &mut last, misfits);
        Ok((last, entries))
    }

    /// Merges a field of the compacted copy: objects that did not fit.
    fn merge_field(&self, all: &mut Store, f: &[u8], value: &[u8]) -> usize {
        let lines = std::str::from_utf8(value)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|t| decode_lines(t, &self.node));
        match lines {
            Ok(lines) => lines
                .iter()
                .map(|line| merge_fitting(all, &line.delta))
                .sum(),
            Err(why) => {
                (self.log)(format!(
                    "cluster: skipped {}[{}]: {why}",
                    self.keys.state,
                    String::from_utf8_lossy(f).escape_debug()
                ));
                0
            }
        }
    }

    /// Merges the entries after the compacted id `cut`: entries merged;
    /// `last` is the last one's id.
    fn merge_entries(
        &self,
        all: &mut Store,
        range: &[RawEntry],
        cut: Option<&str>,
        last: &mut String,
        misfits: &mut usize,
    ) -> usize {
        let from = cut.and_then(parse_id);
        let mut entries = 0;
        for e in range {
            let id = parse_id(&e.id);
            if id.is_none() || from.is_some_and(|f| id <= Some(f)) {
                continue;
            }
            last.clone_from(&e.id);
            entries += 1;
            match decode_entry(e, &self.node) {
                Ok(entry) => {
                    for line in &entry.lines {
                        *misfits += merge_fitting(all, &line.delta);
                    }
                }
                Err(why) => (self.log)(format!("cluster: skipped entry {}: {why}", e.id)),
            }
        }
        entries
    }

    fn publish(&self, con: &mut Connection, batch: Vec<ToLink>) -> Result<(), End> {
        let mut pipe = redis::pipe();
        let mut started = Vec::new();
        let mut resync = None;
        let now = now_ms();
        for m in &batch {
            match m {
                ToLink::Publish(lines, merged, at) => {
                    let mut xadd = |fields: &[(&str, &str)]| {
                        let cmd = pipe.cmd("XADD");
                        cmd.arg(&self.keys.stream)
                            .arg("*")
                            .arg("node")
                            .arg(self.node.as_str())
                            .arg("ms")
                            .arg(now);
                        for (k, v) in fields {
                            cmd.arg(*k).arg(*v);
                        }
                        cmd.ignore();
                        started.push(*at);
                    };
                    // One entry: the lines merged, which the others merge
                    // instead of decoding each line, and who pushed when.
                    let delta = merged.as_ref().map(|(d, pushes)| {
                        let mut line = String::new();
                        encode_entry(&mut line, &crate::sync::persist::Entry::Delta(d));
                        (line, pushes)
                    });
                    if let Some((delta, pushes)) =
                        delta.filter(|(d, p)| d.len() + p.len() <= ENTRY_BYTES)
                    {
                        xadd(&[("delta", &delta), ("pushes", pushes)]);
                        continue;
                    }
                    for entry in split_entries(lines) {
                        xadd(&[("lines", entry)]);
                    }
                }
                ToLink::Resync(why) => resync = Some(why.clone()),
            }
        }
        if !started.is_empty() {
            pipe.exec(con)?;
            let mut s = lock(&self.status);
            for at in started {
                s.published += 1;
                s.publish_lag.observe(at.elapsed().as_secs_f64() * 1e3);
            }
        }
        match resync {
            Some(why) => Err(End::Resync(why)),
            None => Ok(()),
        }
    }

    /// Heartbeat, the others' heartbeats, the stream's length, the lease,
    /// and a compaction when due; a reader that fell behind the compacted
    /// copy reads everything again.
    fn tick(&self, con: &mut Connection, reader: &Reader) -> Result<(), End> {
        let k = &self.keys;
        let now = now_ms();
        let (nodes, len, state_id): Beat = redis::pipe()
            .cmd("HSET")
            .arg(&k.nodes)
            .arg(self.node.as_str())
            .arg(now)
            .ignore()
            .cmd("HGETALL")
            .arg(&k.nodes)
            .cmd("XLEN")
            .arg(&k.stream)
            .cmd("GET")
            .arg(&k.state_id)
            .query(con)?;
        let state_id = checked_id(state_id);
        {
            let mut s = lock(&self.status);
            s.nodes = heartbeats(nodes).0;
            s.stream_len = len;
        }
        let at = reader.at.lock().map(|a| a.clone()).unwrap_or_default();
        if let (Some(cut), Some(read)) = (state_id.as_deref().and_then(parse_id), parse_id(&at))
            && cut > read
        {
            return Err(End::Resync(format!(
                "the stream was trimmed to {} past {at}, where this node was reading",
                state_id.unwrap_or_default()
            )));
        }
        Ok(())
    }
}

/// The compactor thread: takes (or renews) the lease every tick, and while
/// it holds it, compacts the stream once it is longer than `stream_max`. A
/// thread of its own, so that a compaction does not hold up the publishes.
pub(super) struct Compactor {
    pub(super) client: redis::Client,
    pub(super) keys: Keys,
    pub(super) config: ClusterConfig,
    pub(super) node: ReplicaId,
    pub(super) log: Log,
    pub(super) status: Arc<Mutex<Status>>,
    pub(super) stop: Arc<AtomicBool>,
}

impl Compactor {
    pub(super) fn run(self) {
        let mut con = None;
        while !self.stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            if con.is_none() {
                con = self
                    .client
                    .get_connection_with_timeout(IO_TIMEOUT)
                    .and_then(|c| {
                        c.set_read_timeout(Some(IO_TIMEOUT))?;
                        Ok(c)
                    })
                    .ok();
            }
            if let Some(c) = con.as_mut()
                && self.turn(c).is_err()
            {
                // The cluster thread reports Redis's state; this one
                // connects again next tick.
                con = None;
            }
            while started.elapsed() < TICK && !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The lease, and a compaction when due.
    fn turn(&self, con: &mut Connection) -> RedisResult<()> {
        let k = &self.keys;
        let lease_ms = LEASE.as_millis() as u64;
        // (The holder as bytes: whatever the key holds, the lease comes
        // back once it expires.)
        let (got, holder, len): (Option<String>, Option<Vec<u8>>, u64) = redis::pipe()
            .cmd("SET")
            .arg(&k.compactor)
            .arg(self.node.as_str())
            .arg("NX")
            .arg("PX")
            .arg(lease_ms)
            .cmd("GET")
            .arg(&k.compactor)
            .cmd("XLEN")
            .arg(&k.stream)
            .query(con)?;
        if got.is_none() && holder.as_deref() != Some(self.node.as_str().as_bytes()) {
            return Ok(());
        }
        if got.is_none() {
            redis::cmd("PEXPIRE")
                .arg(&k.compactor)
                .arg(lease_ms)
                .exec(con)?;
        }
        if len as usize > self.config.stream_max && self.compact(con)? > 0 {
            lock(&self.status).compactions += 1;
        }
        self.forget(con)
    }

    /// Removes the heartbeats of nodes gone for [`FORGET`] (a node that
    /// comes back beats again) and the fields that are not heartbeats, so
    /// that the nodes' view (and `/metrics`) keeps only nodes of the cluster.
    fn forget(&self, con: &mut Connection) -> RedisResult<()> {
        let k = &self.keys;
        let raw: Fields = redis::cmd("HGETALL").arg(&k.nodes).query(con)?;
        let (beats, mut gone) = heartbeats(raw);
        for bad in &gone {
            (self.log)(format!(
                "cluster: removed {}[{}]: not a node's heartbeat",
                k.nodes,
                String::from_utf8_lossy(bad).escape_debug()
            ));
        }
        let now = now_ms();
        let forget = FORGET.as_millis() as u64;
        for (node, ms) in beats {
            let ago = now.saturating_sub(ms);
            if ago > forget {
                (self.log)(format!(
                    "cluster: forgot node {node} (its last heartbeat {} s ago)",
                    ago / 1000
                ));
                gone.push(node.into_bytes());
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        redis::cmd("HDEL").arg(&k.nodes).arg(&gone).exec(con)
    }

    /// Folds the entries older than `keep` (at most [`FOLD_COUNT`]) into
    /// the compacted copy and trims them: entries folded.
    fn compact(&self, con: &mut Connection) -> RedisResult<usize> {
        let k = self.keys.clone();
        let cut_ms = now_ms().saturating_sub(self.config.keep.as_millis() as u64);
        let node = self.node.clone();
        let log = self.log.clone();
        redis::transaction(con, &[&k.state_id], |con, pipe| {
            let state_id = checked_id(redis::cmd("GET").arg(&k.state_id).query(con)?);
            let start = state_id
                .as_ref()
                .map_or("-".to_string(), |s| format!("({s}"));
            // Only what is old enough (an id's end bound of just a time
            // takes every entry of that millisecond).
            let Some(end) = cut_ms.checked_sub(1) else {
                return Ok(Some(0));
            };
            let reply: Value = redis::cmd("XRANGE")
                .arg(&k.stream)
                .arg(&start)
                .arg(end)
                .arg("COUNT")
                .arg(FOLD_COUNT)
                .query(con)?;
            let range = range_entries(reply).map_err(unreadable)?;
            let old: Vec<&RawEntry> = range
                .iter()
                .take_while(|e| parse_id(&e.id).is_some_and(|(ms, _)| ms < cut_ms))
                .collect();
            let Some(last) = old.last().map(|e| e.id.clone()) else {
                return Ok(Some(0));
            };
            let mut deltas = Vec::new();
            for e in &old {
                match decode_entry(e, &node) {
                    Ok(entry) => deltas.extend(entry.lines.into_iter().map(|l| l.delta)),
                    Err(why) => log(format!("cluster: compaction skipped entry {}: {why}", e.id)),
                }
            }
            let mut fields: Vec<String> = Vec::new();
            for d in &deltas {
                for (name, o) in d.iter() {
                    fields.push(field(name, o.ty()));
                }
            }
            fields.sort();
            fields.dedup();
            let mut base = Store::new(node.clone());
            if !fields.is_empty() {
                let values: Vec<Option<Vec<u8>>> =
                    redis::cmd("HMGET").arg(&k.state).arg(&fields).query(con)?;
                for v in values.iter().flatten() {
                    if let Ok(lines) = std::str::from_utf8(v)
                        .map_err(|_| String::new())
                        .and_then(|t| decode_lines(t, &node))
                    {
                        for l in lines {
                            merge_fitting(&mut base, &l.delta);
                        }
                    }
                }
            }
            let mut misfits = 0;
            for d in &deltas {
                misfits += merge_fitting(&mut base, d);
            }
            if misfits > 0 {
                log(format!(
                    "cluster: compaction left out {misfits} objects that refer to characters the compacted copy lacks (their nodes publish them again)"
                ));
            }
            let mut hset = redis::cmd("HSET");
            hset.arg(&k.state);
            let mut any = false;
            for (name, o) in base.iter() {
                let mut line = String::new();
                object_line(&mut line, name, o);
                hset.arg(field(name, o.ty())).arg(line);
                any = true;
            }
            if any {
                pipe.add_command(hset).ignore();
            }
            let minid = next_id(&last).unwrap_or_else(|| last.clone());
            pipe.cmd("SET")
                .arg(&k.state_id)
                .arg(&last)
                .ignore()
                .cmd("XTRIM")
                .arg(&k.stream)
                .arg("MINID")
                .arg(&minid)
                .ignore()
                .cmd("GET")
                .arg(&k.state_id);
            let done: Option<(String,)> = pipe.query(con)?;
            Ok(done.map(|_| old.len()))
        })
    }
}

/// The stream reader: blocks on XREAD, hands other nodes' entries to the
/// loop, until told to stop or its connection fails.
struct StreamReader {
    client: redis::Client,
    keys: Keys,
    node: ReplicaId,
    to_loop: Sender<FromLink>,
    waker: Arc<Waker>,
    log: Log,
    reader: Arc<Reader>,
}

impl StreamReader {
    fn run(self, mut last: String) {
        let StreamReader {
            client,
            keys,
            node,
            to_loop,
            waker,
            log,
            reader,
        } = self;
        let fail = |why: String| {
            if let Ok(mut f) = reader.failed.lock() {
                *f = Some(why);
            }
        };
        let mut con = match client
            .get_connection_with_timeout(IO_TIMEOUT)
            .and_then(|c| {
                c.set_read_timeout(Some(IO_TIMEOUT))?;
                Ok(c)
            }) {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        while !reader.stop.load(Ordering::Relaxed) {
            let reply: RedisResult<Value> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(250)
                .arg("STREAMS")
                .arg(&keys.stream)
                .arg(&last)
                .query(&mut con);
            let entries = match reply.map_err(|e| e.to_string()).and_then(read_entries) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let mut batch = Vec::new();
            for e in entries {
                last = e.id.clone();
                // This node's own entries: not even decoded.
                if text_field(&e, "node") == Some(node.as_str().as_bytes()) {
                    continue;
                }
                match decode_entry(&e, &node) {
                    Ok(entry) => {
                        let mut pushes = Some(entry.pushes);
                        batch.extend(entry.lines.into_iter().map(|line| Incoming {
                            line,
                            sent_ms: entry.sent_ms,
                            pushes: pushes.take().unwrap_or_default(),
                        }))
                    }
                    Err(why) => log(format!("cluster: skipped entry {}: {why}", e.id)),
                }
            }
            if let Ok(mut at) = reader.at.lock() {
                at.clone_from(&last);
            }
            if !batch.is_empty() {
                if to_loop.send(FromLink::Entries(batch)).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{CrdtType, Object};
    use std::process::{Command, Stdio};

    const G: CrdtType = CrdtType::GCounter;

    /// A redis-server on an ephemeral port (no persistence), killed on drop.
    struct Redis(
        std::process::Child,
        u16,
        #[allow(dead_code)] tempfile::TempDir,
    );

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn redis() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed; .ci/run installs Debian's redis-server"
            );
            eprintln!("note: redis-server is not installed: this test did not run");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let r = Redis(child, port, dir);
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    /// A g-counter where `who` counted once, as the compacted copy's field
    /// holds it.
    fn counted(who: &str) -> String {
        let mut s = Store::new(ReplicaId::new(who).unwrap());
        let mut c = crate::gcounter::GCounter::default();
        c.inc(&ReplicaId::new(who).unwrap(), 1).unwrap();
        s.insert_object(who, Object::GCounter(c));
        let mut line = String::new();
        let (name, o) = s.iter().next().unwrap();
        object_line(&mut line, name, o);
        line
    }

    /// A compaction between the pages of a catch-up (it folds an entry
    /// into the compacted copy and trims it) spoils that read: the node
    /// reads again and misses nothing.
    #[test]
    fn a_compaction_during_a_paged_catch_up_makes_it_read_again() {
        let Some(r) = redis() else { return };
        let url = format!("redis://127.0.0.1:{}", r.1);
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut other = client.get_connection().unwrap();
        let keys = Keys::new("crdt:");
        let _: () = redis::cmd("HSET")
            .arg(&keys.state)
            .arg("g-counter:a")
            .arg(counted("a"))
            .query(&mut other)
            .unwrap();
        let entry_id: String = redis::cmd("XADD")
            .arg(&keys.stream)
            .arg("*")
            .arg("node")
            .arg("n2")
            .arg("ms")
            .arg(1)
            .arg("lines")
            .arg(counted("c") + "\n")
            .query(&mut other)
            .unwrap();
        let poll = mio::Poll::new().unwrap();
        let (to_loop, _rx) = std::sync::mpsc::channel();
        let node = Node {
            config: ClusterConfig {
                url: url.clone(),
                prefix: "crdt:".into(),
                stream_max: 10,
                keep: Duration::ZERO,
                tls: ClusterTls::default(),
            },
            keys: keys.clone(),
            client: client.clone(),
            node: ReplicaId::new("n1").unwrap(),
            to_loop,
            waker: Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap()),
            status: Arc::default(),
            stop: Arc::default(),
            log: Arc::new(|_| {}),
        };
        let mut con = node.connect().unwrap();
        let mut all = Store::new(node.node.clone());
        let mut misfits = 0;
        // After the compacted copy was read: `b` is folded into it (the
        // entry that held it trimmed), as a compaction does.
        let mut compact = || {
            let _: () = redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(&keys.state)
                .arg("g-counter:b")
                .arg(counted("b"))
                .ignore()
                .cmd("SET")
                .arg(&keys.state_id)
                .arg("5-0")
                .ignore()
                .query(&mut other)
                .unwrap();
        };
        let spoiled = node
            .read_paged(&mut con, &mut all, &mut misfits, &mut compact)
            .unwrap();
        assert!(spoiled.is_none(), "the compaction went unnoticed");
        assert!(all.get("a", G).is_some() && all.get("b", G).is_none());
        let (all, last, entries) = node.read_all(&mut con).ok().unwrap();
        for name in ["a", "b", "c"] {
            assert!(all.get(name, G).is_some(), "{name}");
        }
        assert_eq!((&last, entries), (&entry_id, 1));
        // What three spoiled tries fall back to reads the same.
        let mut at_once = Store::new(node.node.clone());
        let (last, entries) = node
            .read_at_once(&mut con, &mut at_once, &mut misfits)
            .unwrap();
        assert_eq!((&last, entries), (&entry_id, 1));
        assert_eq!(at_once.versions(), all.versions());
    }
}

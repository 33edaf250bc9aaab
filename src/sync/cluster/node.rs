//! The cluster's threads: one connection catches up, publishes and beats;
//! the stream reader blocks on XREAD; the compactor holds the lease and
//! folds the stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::Waker;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{Connection, RedisResult};

use super::lines::*;
use super::*;
use crate::sync::persist::encode_entry;

/// What a catch-up reads: the compacted copy's id and fields, and the stream.
type Held = (Option<String>, Vec<(String, Vec<u8>)>, StreamRangeReply);
/// What a tick reads: heartbeats, stream length, compacted id.
type Beat = (BTreeMap<String, u64>, u64, Option<String>);

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

    /// Everything Redis holds, read in one transaction: the compacted copy
    /// and the stream after it, merged; the last id read; entries read.
    fn read_all(&self, con: &mut Connection) -> Result<(Store, String, usize), End> {
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
        let mut all = Store::new(self.node.clone());
        let mut misfits = 0;
        for (f, value) in &state {
            let lines = std::str::from_utf8(value)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|t| decode_lines(t, &self.node));
            match lines {
                Ok(lines) => {
                    for line in lines {
                        misfits += merge_fitting(&mut all, &line.delta);
                    }
                }
                Err(why) => (self.log)(format!("cluster: skipped {}[{f}]: {why}", k.state)),
            }
        }
        let from = state_id.as_deref().and_then(parse_id);
        let mut last = state_id.clone().unwrap_or_else(|| "0-0".into());
        let mut entries = 0;
        for e in &range.ids {
            let id = parse_id(&e.id);
            if id.is_none() || from.is_some_and(|f| id <= Some(f)) {
                continue;
            }
            last = e.id.clone();
            entries += 1;
            match decode_entry(e, &self.node) {
                Ok(entry) => {
                    for line in &entry.lines {
                        misfits += merge_fitting(&mut all, &line.delta);
                    }
                }
                Err(why) => (self.log)(format!("cluster: skipped entry {}: {why}", e.id)),
            }
        }
        if misfits > 0 {
            (self.log)(format!(
                "cluster: {misfits} objects in redis refer to characters it lacks (left out; their nodes publish them again)"
            ));
        }
        Ok((all, last, entries))
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
        {
            let mut s = lock(&self.status);
            s.nodes = nodes;
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
        let (got, holder, len): (Option<String>, Option<String>, u64) = redis::pipe()
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
        if got.is_none() && holder.as_deref() != Some(self.node.as_str()) {
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
        Ok(())
    }

    /// Folds the entries older than `keep` (at most [`FOLD_COUNT`]) into
    /// the compacted copy and trims them: entries folded.
    fn compact(&self, con: &mut Connection) -> RedisResult<usize> {
        let k = self.keys.clone();
        let cut_ms = now_ms().saturating_sub(self.config.keep.as_millis() as u64);
        let node = self.node.clone();
        let log = self.log.clone();
        redis::transaction(con, &[&k.state_id], |con, pipe| {
            let state_id: Option<String> = redis::cmd("GET").arg(&k.state_id).query(con)?;
            let start = state_id
                .as_ref()
                .map_or("-".to_string(), |s| format!("({s}"));
            // Only what is old enough (an id's end bound of just a time
            // takes every entry of that millisecond).
            let Some(end) = cut_ms.checked_sub(1) else {
                return Ok(Some(0));
            };
            let range: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&k.stream)
                .arg(&start)
                .arg(end)
                .arg("COUNT")
                .arg(FOLD_COUNT)
                .query(con)?;
            let old: Vec<&StreamId> = range
                .ids
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
            let reply: RedisResult<Option<StreamReadReply>> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(250)
                .arg("STREAMS")
                .arg(&keys.stream)
                .arg(&last)
                .query(&mut con);
            let reply = match reply {
                Ok(r) => r,
                Err(e) => return fail(e.to_string()),
            };
            let mut batch = Vec::new();
            for key in reply.into_iter().flat_map(|r| r.keys) {
                for e in key.ids {
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

//! The server's durable state: a snapshot plus an append-only log of the
//! deltas accepted since, each fsynced before it is acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::clock::ReplicaId;
use crate::snapshot;
use crate::statefile::{open_lock_file, write_atomic};
use crate::store::Store;
use crate::sync::protocol::{decode_objects, objects_line};

/// Compact once the log is this large.
pub const COMPACT_BYTES: u64 = 64 << 20;

/// One line of the log.
pub enum Entry<'a> {
    /// The `objects` of a push as the client sent them (already decoded and
    /// checked: replaying them decodes to the same delta).
    Objects(&'a str),
    /// A delta to encode.
    Delta(&'a Store),
}

/// Adds the log line of `e` (newline included) to `buf`.
pub fn encode_entry(buf: &mut String, e: &Entry<'_>) -> io::Result<()> {
    match e {
        Entry::Objects(raw) if !raw.contains(['\n', '\r']) => {
            buf.push_str("{\"objects\":");
            buf.push_str(raw);
            buf.push('}');
        }
        Entry::Objects(raw) => {
            let v: serde_json::Value = serde_json::from_str(raw).map_err(io::Error::other)?;
            buf.push_str(&json!({"objects": v}).to_string());
        }
        Entry::Delta(d) => buf.push_str(&objects_line(d, "")),
    }
    buf.push('\n');
    Ok(())
}

pub struct Durable {
    dir: PathBuf,
    log: File,
    log_bytes: u64,
    /// An exclusive lock on `DATA/lock`: one server per data directory.
    _lock: File,
}

/// What was found on start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: usize,
    pub log_entries: usize,
    /// A torn last log line (from a crash mid-write) that was dropped.
    pub torn: bool,
}

impl Durable {
    /// Opens (or creates) `dir` and loads the store it holds.
    pub fn open(
        dir: &Path,
        new_replica: impl FnOnce() -> ReplicaId,
    ) -> Result<(Durable, Store, Loaded), String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Two servers appending to one log would lose each other's changes.
        let lock_path = dir.join("lock");
        let lock = open_lock_file(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "{} is in use by another crdt serve (it holds {})",
                    dir.display(),
                    lock_path.display()
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()));
            }
        }
        let snap = dir.join("snapshot.json");
        let mut store = match fs::read_to_string(&snap) {
            Ok(text) => snapshot::decode(&text)
                .map_err(|e| format!("{} is damaged: {e}", snap.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let s = Store::new(new_replica());
                write_atomic(&snap, snapshot::encode(&s).as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", snap.display()))?;
                s
            }
            Err(e) => return Err(format!("cannot read {}: {e}", snap.display())),
        };
        let log_path = dir.join("log.jsonl");
        let mut loaded = Loaded::default();
        if let Ok(text) = fs::read_to_string(&log_path) {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for (i, line) in lines.iter().enumerate() {
                let complete = line.ends_with('\n');
                let parsed = serde_json::from_str::<serde_json::Value>(line.trim_end())
                    .ok()
                    .and_then(|v| decode_objects(v.get("objects"), store.replica()).ok());
                match parsed {
                    Some(delta) if complete => {
                        store.merge(&delta);
                        loaded.log_entries += 1;
                    }
                    // Only the last line can be torn: it was never acknowledged.
                    _ if i + 1 == lines.len() => loaded.torn = true,
                    _ => return Err(format!("{} line {} is damaged", log_path.display(), i + 1)),
                }
            }
            if loaded.torn {
                // Drop the torn tail so new entries start on a fresh line.
                let keep: usize = lines[..lines.len() - 1].iter().map(|l| l.len()).sum();
                let f = OpenOptions::new()
                    .write(true)
                    .open(&log_path)
                    .map_err(|e| e.to_string())?;
                f.set_len(keep as u64).map_err(|e| e.to_string())?;
                f.sync_all().map_err(|e| e.to_string())?;
            }
        }
        loaded.objects = store.len();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let log_bytes = log.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((
            Durable {
                dir: dir.to_path_buf(),
                log,
                log_bytes,
                _lock: lock,
            },
            store,
            loaded,
        ))
    }

    /// Appends deltas and fsyncs once for all of them (group commit).
    pub fn append(&mut self, entries: &[Entry<'_>]) -> io::Result<()> {
        let mut buf = String::new();
        for e in entries {
            encode_entry(&mut buf, e)?;
        }
        self.write(&buf)
    }

    /// Appends lines made by [`encode_entry`] and fsyncs them.
    pub fn write(&mut self, lines: &str) -> io::Result<()> {
        self.log.write_all(lines.as_bytes())?;
        self.log.sync_data()?;
        self.log_bytes += lines.len() as u64;
        Ok(())
    }

    /// Writes a snapshot of `store` and starts an empty log, when the log is big.
    pub fn maybe_compact(&mut self, store: &Store) -> io::Result<bool> {
        if self.log_bytes < COMPACT_BYTES {
            return Ok(false);
        }
        self.compact(store)?;
        Ok(true)
    }

    pub fn compact(&mut self, store: &Store) -> io::Result<()> {
        write_atomic(
            &self.dir.join("snapshot.json"),
            snapshot::encode(store).as_bytes(),
        )?;
        // The snapshot has everything the log had: start the log again.
        let log_path = self.dir.join("log.jsonl");
        let fresh = File::create(&log_path)?;
        fresh.sync_all()?;
        File::open(&self.dir)?.sync_all()?;
        self.log = OpenOptions::new().append(true).open(&log_path)?;
        self.log_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::{CrdtType, Object};

    #[test]
    fn the_log_survives_restarts_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let rid = || ReplicaId::new("server-x").unwrap();
        let (mut d, store, loaded) = Durable::open(dir.path(), rid).unwrap();
        assert_eq!((loaded.objects, store.replica().as_str()), (0, "server-x"));
        let mut delta = Store::new(ReplicaId::new("a").unwrap());
        if let Object::GCounter(c) = delta.get_or_create("n", CrdtType::GCounter) {
            c.inc(&ReplicaId::new("a").unwrap(), 5).unwrap();
        }
        d.append(&[Entry::Delta(&delta)]).unwrap();
        d.append(&[Entry::Objects("[{\"name\": \"n\", \"type\": \"g-counter\",\n \"state\": {\"counts\": {\"b\": {\"seq\": 1, \"count\": 2}}}}]")]).unwrap();
        drop(d);
        // A crash in the middle of the next write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("log.jsonl"))
            .unwrap();
        f.write_all(b"{\"objects\": [{\"na").unwrap();
        let (mut d, store, loaded) = Durable::open(dir.path(), || unreachable!()).unwrap();
        assert!(loaded.torn);
        assert_eq!(store.get("n", CrdtType::GCounter).unwrap().value_json(), 7);
        d.compact(&store).unwrap();
        drop(d);
        let (held, store, loaded) = Durable::open(dir.path(), || unreachable!()).unwrap();
        assert_eq!((loaded.log_entries, store.len()), (0, 1));
        // One server per data directory.
        let err = Durable::open(dir.path(), || unreachable!()).err().unwrap();
        assert!(err.contains("in use by another crdt serve"), "{err}");
        drop(held);
        assert!(Durable::open(dir.path(), || unreachable!()).is_ok());
    }
}

//! The server's durable state: a snapshot plus an append-only log of the
//! deltas accepted since, each on disk before it is acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::clock::ReplicaId;
use crate::snapshot;
use crate::statefile::{open_lock_file, write_atomic};
use crate::store::Store;
use crate::sync::protocol::{ObjectIn, decode_objects, objects_line, push_objects_in};

/// Why the server's durable state cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("cannot {doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is in use by another crdt serve (it holds {})", dir.display(), lock.display())]
    InUse { dir: PathBuf, lock: PathBuf },
    /// A snapshot or log line that does not decode, or contradicts the
    /// state before it: damage, never something the server wrote.
    #[error("{}{} is damaged{}", path.display(), line.map_or(String::new(), |n| format!(" line {n}")), why.as_ref().map_or(String::new(), |w| format!(": {w}")))]
    Damaged {
        path: PathBuf,
        /// The log line (none: the whole file).
        line: Option<usize>,
        why: Option<String>,
    },
}

fn io_error<'a>(
    doing: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> DurableError + 'a {
    move |source| DurableError::Io {
        doing,
        path: path.to_path_buf(),
        source,
    }
}

/// Compact once the log is this large.
pub const COMPACT_BYTES: u64 = 64 << 20;

/// The log file grows by this many zeroed bytes at a time, written and
/// fsynced ahead of use. A group commit then writes over bytes that are
/// already on disk, so its fdatasync flushes only those bytes: growing the
/// file with every write would also make it write the inode (its size), a
/// second synchronous disk write. The zeros end the log: JSON text never
/// holds a NUL byte. Small steps, because the round that writes the zeros
/// waits for them (the measurements are in the README, *The sync endpoint*).
const LOG_STEP: u64 = 64 << 10;

/// One line of the log.
pub enum Entry<'a> {
    /// A push's objects as the client sent them, already decoded into
    /// `delta`: written with their states as sent (replaying them decodes
    /// to `delta`), or `delta` encoded when a state spans lines.
    Sent {
        objects: &'a [ObjectIn<'a>],
        delta: &'a Store,
    },
    /// A delta to encode.
    Delta(&'a Store),
}

/// Adds the log line of `e` (newline included) to `buf`.
pub fn encode_entry(buf: &mut String, e: &Entry<'_>) {
    match e {
        Entry::Sent { objects, delta } => {
            let start = buf.len();
            buf.push_str("{\"objects\":");
            if push_objects_in(buf, objects).is_some() {
                buf.push('}');
            } else {
                buf.truncate(start);
                buf.push_str(&objects_line(delta, ""));
            }
        }
        Entry::Delta(d) => buf.push_str(&objects_line(d, "")),
    }
    buf.push('\n');
}

pub struct Durable {
    dir: PathBuf,
    log: LogWriter,
    /// An exclusive lock on `DATA/lock`: one server per data directory.
    _lock: File,
    /// A compaction in progress (see [`Durable::begin_compaction`]).
    compacting: bool,
    /// After a snapshot write failed (a full disk), no new attempt before this.
    retry_after: Option<std::time::Instant>,
}

/// The log lines from before a compaction that has not finished.
pub const OLD_LOG: &str = "log.old.jsonl";

/// How the log is written: [`LogWriter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogIo {
    /// Direct I/O where the file system allows it, else buffered.
    Direct,
    /// Buffered writes, each followed by an fdatasync.
    Buffered,
}

/// Writes the log, durably: every write is on disk when it returns.
///
/// Where the file system allows it (Linux; not tmpfs before 6.6), the log is opened
/// with `O_DIRECT | O_DSYNC`: a round's lines go from memory to the disk in
/// one system call, written over whole 4 KiB blocks (the last block's earlier
/// lines are kept in `tail` and written again with it; the rest of the block
/// is zeros, which end the log). Buffered writes with an fdatasync copy the
/// lines into the page cache and then make ext4 find and write the dirty
/// pages back, slower and with more CPU (figures: README, *The sync
/// endpoint*).
struct LogWriter {
    file: File,
    path: PathBuf,
    direct: bool,
    /// Where the lines end (the next write goes here).
    end: u64,
    /// The file's length: zeros from `end` on.
    allocated: u64,
    /// Direct I/O: the bytes of the block `end` is in, before `end` (not
    /// kept up to date once buffered).
    tail: Vec<u8>,
    /// Direct I/O: room for a block-aligned window of one write (a `Vec`
    /// a block longer than the window, the window starting at its first
    /// aligned byte), kept between writes.
    window: Vec<u8>,
}

/// What was found on start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: usize,
    pub log_entries: usize,
    /// A torn last log line (from a crash mid-write) that was dropped.
    pub torn: bool,
    /// The log is written with direct I/O (else buffered: the file system
    /// refuses direct I/O).
    pub direct: bool,
    /// A compaction left unfinished could not be finished now (why): both
    /// logs stay, and the next compaction covers them.
    pub unfinished_compaction: Option<String>,
    /// The pushes of the log lines (those that say who and when).
    pub recent: crate::sync::recent::Recent,
}

impl Durable {
    /// Opens (or creates) `dir` and loads the store it holds.
    pub fn open(
        dir: &Path,
        new_replica: impl FnOnce() -> ReplicaId,
    ) -> Result<(Durable, Store, Loaded), DurableError> {
        Durable::open_with(dir, new_replica, LogIo::Direct)
    }

    /// [`Durable::open`], the log written as `io` says.
    pub fn open_with(
        dir: &Path,
        new_replica: impl FnOnce() -> ReplicaId,
        io: LogIo,
    ) -> Result<(Durable, Store, Loaded), DurableError> {
        fs::create_dir_all(dir).map_err(io_error("create", dir))?;
        // Two servers appending to one log would lose each other's changes.
        let lock_path = dir.join("lock");
        let lock = open_lock_file(&lock_path).map_err(io_error("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(DurableError::InUse {
                    dir: dir.to_path_buf(),
                    lock: lock_path,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error("lock", &lock_path)(e)),
        }
        let snap = dir.join("snapshot.json");
        // A snapshot write killed halfway leaves its temporary file: the
        // snapshot it was to replace is whole, and the logs hold the rest.
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with("snapshot.json.tmp.")
                {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let mut store = match fs::read_to_string(&snap) {
            Ok(text) => snapshot::decode(&text).map_err(|e| DurableError::Damaged {
                path: snap.clone(),
                line: None,
                why: Some(e.to_string()),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let s = Store::new(new_replica());
                write_atomic(&snap, snapshot::encode(&s).as_bytes())
                    .map_err(io_error("write", &snap))?;
                s
            }
            Err(e) => return Err(io_error("read", &snap)(e)),
        };
        // A compaction that did not finish: its lines first (they were all
        // whole and durable when it began), then the log after them.
        let old = dir.join(OLD_LOG);
        let mut old_entries = 0;
        if old.exists() {
            let (_, l) = replay_log(&old, &mut store, LogIo::Buffered)?;
            old_entries = l.log_entries;
        }
        let log_path = dir.join("log.jsonl");
        let (log, mut loaded) = replay_log(&log_path, &mut store, io)?;
        loaded.log_entries += old_entries;
        if old.exists() {
            // Finish that compaction now: the snapshot then holds both logs;
            // the lines of the current one merge again harmlessly. On a full
            // disk it stays unfinished (nothing is lost: both logs stay, and
            // `begin_compaction` keeps them apart).
            if let Err(e) = write_atomic(&snap, snapshot::encode(&store).as_bytes())
                .and_then(|()| fs::remove_file(&old))
                .and_then(|()| File::open(dir)?.sync_all())
            {
                loaded.unfinished_compaction = Some(e.to_string());
            }
        }
        loaded.objects = store.len();
        loaded.direct = log.direct;
        Ok((
            Durable {
                dir: dir.to_path_buf(),
                log,
                _lock: lock,
                compacting: false,
                retry_after: None,
            },
            store,
            loaded,
        ))
    }

    /// Appends deltas and fsyncs once for all of them (group commit).
    pub fn append(&mut self, entries: &[Entry<'_>]) -> io::Result<()> {
        let mut buf = String::new();
        for e in entries {
            encode_entry(&mut buf, e);
        }
        self.write(&buf)
    }

    /// Appends lines made by [`encode_entry`] and makes them durable.
    pub fn write(&mut self, lines: &str) -> io::Result<()> {
        self.log.write(lines.as_bytes())
    }

    /// Writes a snapshot of `store` and starts an empty log, all at once
    /// (on shutdown; the server compacts a step at a time while it runs).
    pub fn compact(&mut self, store: &Store) -> io::Result<()> {
        write_atomic(
            &self.dir.join("snapshot.json"),
            snapshot::encode(store).as_bytes(),
        )?;
        // The snapshot has everything the logs had: start the log again.
        self.log.restart()?;
        self.compacting = false;
        match fs::remove_file(self.dir.join(OLD_LOG)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        File::open(&self.dir)?.sync_all()
    }

    /// True when the log has outgrown `limit` (normally [`COMPACT_BYTES`])
    /// and no compaction runs: time for [`Durable::begin_compaction`].
    pub fn wants_compaction(&self, limit: u64) -> bool {
        !self.compacting
            && self.log.end >= limit
            && self
                .retry_after
                .is_none_or(|t| std::time::Instant::now() >= t)
    }

    /// Starts a compaction that does not stop the server: the log becomes
    /// `log.old.jsonl` and a new log starts. The caller then writes a
    /// snapshot of the store *as it is now* (a frozen copy, on another
    /// thread) and calls [`Durable::finish_compaction`]: the snapshot and
    /// the new log hold everything, and until the snapshot is durable the
    /// old snapshot and both logs do.
    ///
    /// After a snapshot write that failed, `log.old.jsonl` is still there:
    /// then the log stays as it is (renaming it would replace those lines),
    /// and the snapshot, of everything held, covers both logs.
    pub fn begin_compaction(&mut self) -> io::Result<()> {
        if !self.dir.join(OLD_LOG).exists() {
            fs::rename(&self.log.path, self.dir.join(OLD_LOG))?;
            File::open(&self.dir)?.sync_all()?;
            self.log.restart()?;
        }
        self.compacting = true;
        Ok(())
    }

    /// Where the snapshot goes, for whoever writes it.
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join("snapshot.json")
    }

    /// The snapshot of [`Durable::begin_compaction`] is durable (`Ok`):
    /// the old lines go. On `Err` they stay (a restart replays them), and
    /// the next attempt, no sooner than 10 s later, snapshots everything.
    pub fn finish_compaction(&mut self, written: io::Result<()>) -> io::Result<()> {
        self.compacting = false;
        if written.is_err() {
            self.retry_after = Some(std::time::Instant::now() + std::time::Duration::from_secs(10));
        }
        written?;
        self.retry_after = None;
        fs::remove_file(self.dir.join(OLD_LOG))?;
        File::open(&self.dir)?.sync_all()
    }
}

/// Whole blocks for direct I/O: 4 KiB, a multiple of the logical block size
/// of the disks in use (512 or 4,096 bytes).
const BLOCK: u64 = 4096;

impl LogWriter {
    /// Opens the log at `path` for writing after its first `end` bytes
    /// (`tail`: the bytes of the block `end` is in, before it), with direct
    /// I/O when `io` asks for it and the file system allows it.
    fn open(path: &Path, end: u64, tail: &[u8], io: LogIo) -> io::Result<LogWriter> {
        let (file, direct) = open_log_file(path, io == LogIo::Direct)?;
        let allocated = file.metadata()?.len();
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            direct,
            end,
            allocated,
            tail: tail.to_vec(),
            window: Vec::new(),
        })
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.direct {
            match self.write_direct(lines) {
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    // The disk wants larger blocks, or the file system took
                    // O_DIRECT at open but not for writes: buffered from now on.
                    self.file = open_log_file(&self.path, false)?.0;
                    self.direct = false;
                }
                done => return done,
            }
        }
        self.write_buffered(lines)
    }

    /// Writes the blocks from the one `end` is in to the end of the lines
    /// (or, when that passes the file's end, to the next [`LOG_STEP`]: the
    /// file grows zeroed in the same write).
    fn write_direct(&mut self, lines: &[u8]) -> io::Result<()> {
        let start = self.end - self.tail.len() as u64;
        let end = self.end + lines.len() as u64;
        let mut to = end.next_multiple_of(BLOCK);
        if to > self.allocated {
            to = next_step(end);
        }
        let len = (to - start) as usize;
        if self.window.len() < len + BLOCK as usize {
            self.window = vec![0; len + BLOCK as usize];
        }
        let at = self.window.as_ptr().align_offset(BLOCK as usize);
        if at >= BLOCK as usize {
            // No aligned address to be had: as the disk refusing it.
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let window = &mut self.window[at..at + len];
        let (old, rest) = window.split_at_mut(self.tail.len());
        old.copy_from_slice(&self.tail);
        let (new, zeros) = rest.split_at_mut(lines.len());
        new.copy_from_slice(lines);
        zeros.fill(0);
        self.file.write_all_at(window, start)?;
        let last = (end - end % BLOCK - start) as usize;
        self.tail.clear();
        self.tail
            .extend_from_slice(&window[last..(end - start) as usize]);
        self.end = end;
        self.allocated = self.allocated.max(to);
        Ok(())
    }

    /// Writes the lines at `end` (after zero-filling the file to the next
    /// [`LOG_STEP`] when they pass its end) and fdatasyncs them.
    fn write_buffered(&mut self, lines: &[u8]) -> io::Result<()> {
        let end = self.end + lines.len() as u64;
        if end > self.allocated {
            let to = next_step(end);
            let zeros = vec![0u8; (to - self.allocated) as usize];
            self.file.write_all_at(&zeros, self.allocated)?;
            self.file.sync_data()?;
            self.allocated = to;
        }
        self.file.write_all_at(lines, self.end)?;
        self.file.sync_data()?;
        self.end = end;
        Ok(())
    }

    /// Empties the log (its lines are in a snapshot now).
    fn restart(&mut self) -> io::Result<()> {
        let fresh = File::create(&self.path)?;
        fresh.sync_all()?;
        drop(fresh);
        (self.file, self.direct) = open_log_file(&self.path, self.direct)?;
        self.end = 0;
        self.allocated = 0;
        self.tail.clear();
        Ok(())
    }
}

/// Where the log file ends when it grows past `end`: the next [`LOG_STEP`]
/// boundary after it.
fn next_step(end: u64) -> u64 {
    (end / LOG_STEP + 1) * LOG_STEP
}

/// Opens the log for writing, with `O_DIRECT | O_DSYNC` when `direct` and
/// the file system allows it (tmpfs before Linux 6.6 does not): the file, and
/// whether it is direct.
fn open_log_file(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        let mut direct = options.clone();
        direct.custom_flags(libc::O_DIRECT | libc::O_DSYNC);
        match direct.open(path) {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = direct;
    Ok((options.open(path)?, false))
}

/// Replays the log at `path` into `store` and opens it for writing: the
/// lines end at the first NUL byte (the zeroed space after them) or at the
/// end of the file. A last line without its newline is the torn remains of
/// a write that was never acknowledged: it is dropped, and so is anything
/// after it (the file is cut to the lines it keeps). A whole line that does
/// not decode, or contradicts the state before it, is damage: an error.
fn replay_log(
    path: &Path,
    store: &mut Store,
    io: LogIo,
) -> Result<(LogWriter, Loaded), DurableError> {
    let mut loaded = Loaded::default();
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error("read", path)(e)),
    };
    let used = memchr::memchr(0, &bytes).unwrap_or(bytes.len());
    let lines: Vec<&[u8]> = bytes[..used].split_inclusive(|b| *b == b'\n').collect();
    let mut keep = 0;
    for (i, line) in lines.iter().enumerate() {
        let text = std::str::from_utf8(line).ok().filter(|l| l.ends_with('\n'));
        let parsed = text
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l.trim_end()).ok())
            .and_then(|v| decode_objects(v.get("objects"), store.replica()).ok());
        match parsed {
            Some(delta) => {
                loaded
                    .recent
                    .replay(text.unwrap_or_default().trim_end(), &delta);
                // The same gate as a push: a line that contradicts the state
                // before it is damage, not something the server wrote.
                if let Err(why) = store.check_mergeable(&delta) {
                    return Err(DurableError::Damaged {
                        path: path.to_path_buf(),
                        line: Some(i + 1),
                        why: Some(why.to_string()),
                    });
                }
                store.merge(&delta);
                loaded.log_entries += 1;
                keep += line.len();
            }
            // Only an incomplete last line is torn (it was never
            // acknowledged); a whole line that does not decode is damage,
            // kept for whoever looks into it.
            None if i + 1 == lines.len() && !line.ends_with(b"\n") => {}
            None => {
                return Err(DurableError::Damaged {
                    path: path.to_path_buf(),
                    line: Some(i + 1),
                    why: None,
                });
            }
        }
    }
    // A torn write leaves bytes after the kept lines: its start, or (the disk
    // wrote its sectors out of order) some of its later sectors past zeros.
    loaded.torn = bytes[keep..].iter().any(|b| *b != 0);
    if bytes.len() > keep {
        // Cut the torn tail and the zeros: new lines start right after the
        // kept ones, and no old bytes are left behind them.
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(keep as u64).and_then(|()| f.sync_all()))
            .map_err(io_error("cut", path))?;
    }
    let tail = &bytes[keep - keep % BLOCK as usize..keep];
    let log = LogWriter::open(path, keep as u64, tail, io).map_err(io_error("open", path))?;
    Ok((log, loaded))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::{CrdtType, Object};

    /// Both ways of writing the log.
    const BOTH: [LogIo; 2] = [LogIo::Direct, LogIo::Buffered];

    /// A compaction off the event loop: new lines go to a new log while a
    /// frozen copy is written; killed before the snapshot is written, or
    /// after but before the old log goes, a restart has everything.
    #[test]
    fn a_compaction_off_the_loop_loses_nothing_wherever_it_stops() {
        let dir = tempfile::tempdir().unwrap();
        let rid = || ReplicaId::new("server-x").unwrap();
        let (mut d, mut store, _) = Durable::open_with(dir.path(), rid, LogIo::Buffered).unwrap();
        let push = |d: &mut Durable, store: &mut Store, name: &str, who: &str, n: u64| {
            let mut delta = Store::new(ReplicaId::new(who).unwrap());
            if let Object::GCounter(c) = delta.get_or_create(name, CrdtType::GCounter) {
                c.inc(&ReplicaId::new(who).unwrap(), n).unwrap();
            }
            d.append(&[Entry::Delta(&delta)]).unwrap();
            store.merge(&delta);
        };
        for i in 0..50 {
            push(&mut d, &mut store, &format!("n:{i:02}"), "a", 1);
        }
        let value = |s: &Store| -> u128 {
            s.iter()
                .map(|(_, o)| o.value_json().as_u64().unwrap() as u128)
                .sum()
        };
        let reopen = |d: Durable| {
            drop(d);
            Durable::open_with(dir.path(), || unreachable!(), LogIo::Buffered).unwrap()
        };
        // Killed before the snapshot is written: the old log and the new one.
        d.begin_compaction().unwrap();
        assert!(dir.path().join(OLD_LOG).exists());
        let frozen = store.clone();
        for i in 0..60 {
            push(&mut d, &mut store, &format!("n:{i:02}"), "b", 2);
        }
        assert_ne!(frozen, store, "the frozen copy does not see later changes");
        let want = value(&store);
        let (mut d, s2, _) = reopen(d);
        assert_eq!(value(&s2), want);
        // Written, killed before the old log is removed.
        d.begin_compaction().unwrap();
        let frozen = s2.clone();
        let mut s2 = s2;
        push(&mut d, &mut s2, "n:99", "c", 5);
        crate::statefile::write_atomic(&d.snapshot_path(), snapshot::encode(&frozen).as_bytes())
            .unwrap();
        let want = value(&s2);
        let (mut d, s3, _) = reopen(d);
        assert_eq!(value(&s3), want);
        // Finished: the old log goes; the snapshot and the new log hold all.
        d.begin_compaction().unwrap();
        let frozen = s3.clone();
        crate::statefile::write_atomic(&d.snapshot_path(), snapshot::encode(&frozen).as_bytes())
            .unwrap();
        d.finish_compaction(Ok(())).unwrap();
        assert!(!dir.path().join(OLD_LOG).exists());
        let (_, s4, loaded) = reopen(d);
        assert_eq!((value(&s4), loaded.log_entries), (want, 0));
    }

    /// A snapshot write that fails (a full disk) leaves `log.old.jsonl`;
    /// the next compaction must not rename the log over it.
    #[test]
    fn a_compaction_after_a_failed_snapshot_keeps_the_old_lines() {
        let dir = tempfile::tempdir().unwrap();
        let rid = || ReplicaId::new("server-x").unwrap();
        let (mut d, mut store, _) = Durable::open_with(dir.path(), rid, LogIo::Buffered).unwrap();
        let push = |d: &mut Durable, store: &mut Store, name: &str, n: u64| {
            let mut delta = Store::new(ReplicaId::new("a").unwrap());
            if let Object::GCounter(c) = delta.get_or_create(name, CrdtType::GCounter) {
                c.inc(&ReplicaId::new("a").unwrap(), n).unwrap();
            }
            d.append(&[Entry::Delta(&delta)]).unwrap();
            store.merge(&delta);
        };
        push(&mut d, &mut store, "first", 1);
        d.begin_compaction().unwrap();
        d.finish_compaction(Err(io::Error::other("no space left")))
            .unwrap_err();
        push(&mut d, &mut store, "second", 2);
        // The next compaction; killed before its snapshot is written.
        d.begin_compaction().unwrap();
        push(&mut d, &mut store, "third", 3);
        drop(d);
        let (mut d, s2, _) =
            Durable::open_with(dir.path(), || unreachable!(), LogIo::Buffered).unwrap();
        assert_eq!(s2, store, "a line was lost");
        // And when it does finish, the old lines go and nothing is lost.
        d.begin_compaction().unwrap();
        crate::statefile::write_atomic(&d.snapshot_path(), snapshot::encode(&s2).as_bytes())
            .unwrap();
        d.finish_compaction(Ok(())).unwrap();
        drop(d);
        let (_, s3, _) =
            Durable::open_with(dir.path(), || unreachable!(), LogIo::Buffered).unwrap();
        assert_eq!(s3, store);
        assert!(!dir.path().join(OLD_LOG).exists());
    }

    /// A start that cannot finish a compaction (its snapshot cannot be
    /// written: here a directory sits where the temporary file goes, as a
    /// full disk would refuse it) still starts, with everything, and says so.
    #[test]
    fn a_start_that_cannot_finish_a_compaction_still_serves_everything() {
        let dir = tempfile::tempdir().unwrap();
        let rid = || ReplicaId::new("server-x").unwrap();
        let (mut d, mut store, _) = Durable::open_with(dir.path(), rid, LogIo::Buffered).unwrap();
        let mut delta = Store::new(ReplicaId::new("a").unwrap());
        if let Object::GCounter(c) = delta.get_or_create("n", CrdtType::GCounter) {
            c.inc(&ReplicaId::new("a").unwrap(), 4).unwrap();
        }
        d.append(&[Entry::Delta(&delta)]).unwrap();
        store.merge(&delta);
        d.begin_compaction().unwrap();
        drop(d);
        let blocker = dir
            .path()
            .join(format!("snapshot.json.tmp.{}", std::process::id()));
        fs::create_dir(&blocker).unwrap();
        let (d, s2, loaded) =
            Durable::open_with(dir.path(), || unreachable!(), LogIo::Buffered).unwrap();
        assert!(loaded.unfinished_compaction.is_some());
        assert_eq!(s2, store);
        assert!(dir.path().join(OLD_LOG).exists());
        drop(d);
        fs::remove_dir(&blocker).unwrap();
        let (_, s3, loaded) =
            Durable::open_with(dir.path(), || unreachable!(), LogIo::Buffered).unwrap();
        assert_eq!((s3, loaded.unfinished_compaction), (store, None));
        assert!(!dir.path().join(OLD_LOG).exists());
    }

    /// A snapshot write killed with -9 leaves its temporary file: the next
    /// start removes it (and keeps everything).
    #[test]
    fn a_killed_snapshot_writes_temporary_file_is_removed_on_start() {
        let dir = tempfile::tempdir().unwrap();
        let rid = || ReplicaId::new("server-x").unwrap();
        drop(Durable::open_with(dir.path(), rid, LogIo::Buffered).unwrap());
        let left = dir.path().join("snapshot.json.tmp.4242");
        fs::write(&left, "{\"format\": \"crdt-snap").unwrap();
        let other = dir.path().join("notes.txt");
        fs::write(&other, "mine").unwrap();
        drop(Durable::open_with(dir.path(), || unreachable!(), LogIo::Buffered).unwrap());
        assert!(!left.exists(), "the temporary file is still there");
        assert!(other.exists(), "a file of someone else's was removed");
    }

    #[test]
    fn the_log_survives_restarts_and_a_torn_tail() {
        BOTH.into_iter().for_each(survives_restarts);
    }

    fn survives_restarts(io: LogIo) {
        let dir = tempfile::tempdir().unwrap();
        let rid = || ReplicaId::new("server-x").unwrap();
        let (mut d, store, loaded) = Durable::open_with(dir.path(), rid, io).unwrap();
        assert_eq!((loaded.objects, store.replica().as_str()), (0, "server-x"));
        let mut delta = Store::new(ReplicaId::new("a").unwrap());
        if let Object::GCounter(c) = delta.get_or_create("n", CrdtType::GCounter) {
            c.inc(&ReplicaId::new("a").unwrap(), 5).unwrap();
        }
        d.append(&[Entry::Delta(&delta)]).unwrap();
        // As sent, with a state over two lines: written as the delta.
        let sent = "[{\"name\": \"n\", \"type\": \"g-counter\", \"state\": {\"counts\":\n {\"b\": {\"seq\": 1, \"count\": 2}}}}]";
        let objects: Vec<ObjectIn<'_>> = serde_json::from_str(sent).unwrap();
        let delta =
            crate::sync::protocol::decode_objects_in(&objects, &ReplicaId::new("b").unwrap())
                .unwrap();
        d.append(&[Entry::Sent {
            objects: &objects,
            delta: &delta,
        }])
        .unwrap();
        let path = dir.path().join("log.jsonl");
        // The file is zeroed ahead of the lines.
        let lines = d.log.end;
        let len = fs::metadata(&path).unwrap().len();
        assert!(len > lines && len.is_multiple_of(LOG_STEP), "{len} {lines}");
        drop(d);
        // A crash in the middle of the next write.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"{\"objects\": [{\"na", lines).unwrap();
        let (mut d, store, loaded) = Durable::open_with(dir.path(), || unreachable!(), io).unwrap();
        assert!(loaded.torn);
        assert_eq!(store.get("n", CrdtType::GCounter).unwrap().value_json(), 7);
        d.compact(&store).unwrap();
        drop(d);
        let (held, store, loaded) = Durable::open_with(dir.path(), || unreachable!(), io).unwrap();
        assert_eq!((loaded.log_entries, store.len()), (0, 1));
        // One server per data directory.
        let err = Durable::open_with(dir.path(), || unreachable!(), io)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("in use by another crdt serve"),
            "{err}"
        );
        drop(held);
        assert!(Durable::open_with(dir.path(), || unreachable!(), io).is_ok());
    }

    fn counter_line(replica: &str, n: u64) -> String {
        let mut delta = Store::new(ReplicaId::new(replica).unwrap());
        if let Object::GCounter(c) = delta.get_or_create("n", CrdtType::GCounter) {
            c.inc(&ReplicaId::new(replica).unwrap(), n).unwrap();
        }
        let mut line = String::new();
        encode_entry(&mut line, &Entry::Delta(&delta));
        line
    }

    /// A new data directory, its log's path and the server's log on it.
    fn fresh(io: LogIo) -> (tempfile::TempDir, PathBuf, Durable) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let rid = || ReplicaId::new("server-x").unwrap();
        let (d, _, _) = Durable::open_with(dir.path(), rid, io).unwrap();
        (dir, path, d)
    }

    fn value(store: &Store) -> serde_json::Value {
        store.get("n", CrdtType::GCounter).unwrap().value_json()
    }

    /// The log's first `len` bytes, and whether all after them up to a
    /// block further are zeros.
    fn log_bytes(path: &Path, len: usize) -> (Vec<u8>, bool) {
        let mut bytes = vec![1u8; len + BLOCK as usize];
        let n = File::open(path).unwrap().read_at(&mut bytes, 0).unwrap();
        bytes.truncate(n);
        let zeros = bytes[len..].iter().all(|b| *b == 0);
        bytes.truncate(len);
        (bytes, zeros)
    }

    #[test]
    fn direct_writes_rewrite_their_block_with_the_lines_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let rid = || ReplicaId::new("server-x").unwrap();
        let (mut d, _, loaded) = Durable::open_with(dir.path(), rid, LogIo::Direct).unwrap();
        // Direct wherever the file system takes O_DIRECT (old tmpfs does not).
        let (_, allowed) = open_log_file(&dir.path().join("probe"), true).unwrap();
        assert_eq!(loaded.direct, allowed, "said at start");
        let mut want = Vec::new();
        let mut entries = 0;
        for round in 0..2 {
            for i in 0..150u64 {
                // One to three lines a write, so writes start and end
                // anywhere in a block and some cross into the next.
                let mut batch = String::new();
                for j in 0..=i % 3 {
                    batch.push_str(&counter_line(&format!("r{round}-{i}-{j}"), 1));
                    entries += 1;
                }
                d.write(&batch).unwrap();
                want.extend_from_slice(batch.as_bytes());
                let (bytes, zeros) = log_bytes(&path, want.len());
                assert!(bytes == want && zeros, "after write {i} of round {round}");
            }
            drop(d);
            // Reopened, the next write starts in the block the last one ended in.
            let (again, store, loaded) =
                Durable::open_with(dir.path(), || unreachable!(), LogIo::Direct).unwrap();
            assert_eq!((loaded.log_entries, loaded.torn), (entries, false));
            assert_eq!(loaded.direct, allowed);
            assert_eq!(value(&store), serde_json::json!(entries));
            d = again;
        }
    }

    #[test]
    fn torn_writes_in_the_zeroed_space_are_dropped_and_overwritten() {
        BOTH.into_iter().for_each(torn_writes);
    }

    fn torn_writes(io: LogIo) {
        let (dir, path, mut d) = fresh(io);
        d.write(&counter_line("a", 1)).unwrap();
        let end = d.log.end;
        drop(d);
        // Sectors written out of order: a later part of an unacknowledged
        // write landed past zeros, its start did not.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"\"count\": 9}}}}]}\n{\"objects\"", end + 700)
            .unwrap();
        let (mut d, store, loaded) = Durable::open_with(dir.path(), || unreachable!(), io).unwrap();
        assert!(loaded.torn);
        assert_eq!((loaded.log_entries, value(&store)), (1, 1.into()));
        assert_eq!(fs::metadata(&path).unwrap().len(), end, "cut to its lines");
        // New lines go where the torn write was, with nothing stale after them.
        d.write(&counter_line("b", 2)).unwrap();
        drop(d);
        let (mut d, store, loaded) = Durable::open_with(dir.path(), || unreachable!(), io).unwrap();
        assert!(!loaded.torn);
        assert_eq!((loaded.log_entries, value(&store)), (2, 3.into()));
        // A write torn in the middle of a character: only its first
        // sector made it, the rest of the line is still zeros.
        let end = d.log.end;
        let line = counter_line("c", 4);
        d.write(&line).unwrap();
        drop(d);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&vec![0; line.len()], end).unwrap();
        f.write_all_at("{\"objects\": [{\"name\": \"\u{e9}".as_bytes(), end)
            .unwrap();
        f.write_all_at(&[0xc3], end + 24).unwrap();
        let (_, store, loaded) = Durable::open_with(dir.path(), || unreachable!(), io).unwrap();
        assert!(loaded.torn);
        assert_eq!((loaded.log_entries, value(&store)), (2, 3.into()));
        // The same bytes in a whole line (newline and all) are damage: the
        // server never wrote them, so it refuses to start and names the line.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at("{\"objects\": [{\"name\": \"\u{e9}".as_bytes(), end)
            .unwrap();
        f.write_all_at(&[0xc3, b'\n'], end + 24).unwrap();
        let Err(e) = Durable::open_with(dir.path(), || unreachable!(), io) else {
            panic!("a damaged whole line was accepted");
        };
        assert!(e.to_string().contains("line 3 is damaged"), "{e}");
    }

    #[test]
    fn the_log_grows_in_zeroed_steps_and_a_damaged_line_is_named() {
        BOTH.into_iter().for_each(grows_in_steps);
    }

    fn grows_in_steps(io: LogIo) {
        let (dir, path, mut d) = fresh(io);
        // Past the first step: the writes that straddle it are kept whole.
        let line = counter_line("a", 1);
        let n = LOG_STEP as usize / line.len() + 50;
        let mut batch = String::new();
        for i in 0..n {
            batch.push_str(&line);
            if i % 1000 == 999 {
                d.write(&batch).unwrap();
                batch.clear();
            }
        }
        d.write(&batch).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * LOG_STEP);
        drop(d);
        let (d, store, loaded) = Durable::open_with(dir.path(), || unreachable!(), io).unwrap();
        assert_eq!((loaded.log_entries, loaded.torn), (n, false));
        assert_eq!(value(&store), serde_json::json!(1));
        drop(d);
        // A damaged line before the last is not a torn write: it is an error.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"#", line.len() as u64 * 3 + 5).unwrap();
        let err = Durable::open_with(dir.path(), || unreachable!(), io)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("log.jsonl line 4 is damaged"),
            "{err}"
        );
    }
}

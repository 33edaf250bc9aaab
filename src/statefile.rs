//! The local state file: one replica's store on disk, shared safely by many
//! processes.
//!
//! A state file is a snapshot (`state.json`, format v1) plus a journal beside
//! it (`state.json.log`): one JSON line per change, `{"objects": [{"name",
//! "type", "state"}]}` holding the change's delta, like the sync server's log.
//! A change to one name appends its delta and fsyncs the journal, without
//! rewriting the snapshot, so its cost does not grow with the other objects.
//! When the journal outgrows half the snapshot (at least 64 KiB), the change
//! that crossed the line folds it into a new snapshot.
//!
//! Writers hold an exclusive lock on `<state>.lock`, a file that is never
//! replaced (a lock on the state file itself would be lost when the file is
//! renamed over). A snapshot is saved through a temporary file in the same
//! directory, fsynced and renamed over the state file, then the directory is
//! fsynced and the journal removed; a crash or `kill -9` leaves either the old
//! or the new state, never a torn one. A journal line torn by a crash was never
//! acknowledged and is dropped. Replaying a delta the snapshot already has
//! changes nothing (merges are idempotent), which is what makes the order
//! "rename, then remove the journal" safe.
//!
//! Readers need no lock: they read the journal first, then the snapshot. A
//! save that lands in between gives them a snapshot that already holds the
//! journal they read, never one that lacks it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use memchr::memmem;
use serde_json::{Value, json};
use thiserror::Error;

use crate::error::SnapshotError;
use crate::snapshot::{self, FORMAT, VERSION};
use crate::store::Store;
use crate::sync::protocol::{decode_objects, objects_line};

/// The journal is folded into the snapshot once it is larger than this or
/// than half the snapshot, whichever is more.
pub const JOURNAL_MIN_COMPACT_BYTES: u64 = 64 << 10;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot read state file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file {path} is damaged and was left untouched")]
    Parse {
        path: PathBuf,
        #[source]
        source: SnapshotError,
    },
    #[error("cannot write state file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("journal {path} line {line} is damaged; the state was left untouched: {message}")]
    Journal {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The journal beside a state file: `<state>.log`.
pub fn journal_path(path: &Path) -> PathBuf {
    sibling(path, ".log")
}

/// Reads a whole file; `Ok(None)` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a state file (snapshot and journal); `Ok(None)` when it does not exist yet.
pub fn load(path: &Path) -> Result<Option<Store>, StateError> {
    // The journal first: see the module docs.
    let journal_file = journal_path(path);
    let journal = read_optional(&journal_file)?.unwrap_or_default();
    let Some(bytes) = read_optional(path)? else {
        return Ok(None);
    };
    let parse_err = |source| StateError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(e.as_bytes(), e.utf8_error().valid_up_to());
        parse_err(SnapshotError::Syntax {
            line,
            column,
            message: "invalid UTF-8".into(),
        })
    })?;
    let mut store = snapshot::decode(&text).map_err(parse_err)?;
    replay(&journal_file, &journal, &mut store, None)?;
    Ok(Some(store))
}

/// 1-based line and column of byte `at`.
fn position(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let column = at
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line, column)
}

/// The start every journal line of `name` has: the name comes first,
/// written by the encoder [`objects_line`] uses, so the two always match.
fn journal_prefix(name: &str) -> String {
    let mut prefix = String::from("{\"objects\":[{\"name\":");
    crate::codec::push_json_str(&mut prefix, name);
    prefix.push(',');
    prefix
}

/// A journal line holding `delta` (all of one name), newline included;
/// `full` marks it as holding the name's whole state.
fn journal_line(delta: &Store, full: bool) -> String {
    let mut line = objects_line(delta, if full { FULL_TAIL } else { "" });
    line.push('\n');
    line
}

/// What a journal line that holds the whole state of its name has after its
/// objects. Replaying one name starts at its last such line (the lines before
/// it are in it).
const FULL_TAIL: &str = ",\"full\":true";
/// How such a line ends.
const FULL_END: &str = "],\"full\":true}";

/// A name's lines since its last whole-state line, at most: the next change
/// to it writes its whole state, so a change never replays more.
pub const JOURNAL_FULL_EVERY: usize = 64;

/// Merges the complete lines of a journal into `store` (only those starting
/// with `only`, from the last one holding that name's whole state, when
/// given). A last line without its newline was torn by a crash before it was
/// acknowledged, and is skipped. Returns how many lines were merged.
fn replay(
    path: &Path,
    journal: &[u8],
    store: &mut Store,
    only: Option<&str>,
) -> Result<usize, StateError> {
    let mut lines: Vec<(usize, &[u8])> = Vec::new();
    let mut start = 0;
    for (i, end) in memchr::memchr_iter(b'\n', journal).enumerate() {
        let line = &journal[start..end];
        start = end + 1;
        match only {
            Some(p) if !line.starts_with(p.as_bytes()) => {}
            Some(_) if line.ends_with(FULL_END.as_bytes()) => {
                lines.clear();
                lines.push((i, line));
            }
            _ => lines.push((i, line)),
        }
    }
    for &(i, line) in &lines {
        let damaged = |message: String| StateError::Journal {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let value: Value = serde_json::from_slice(line).map_err(|e| damaged(e.to_string()))?;
        let delta = decode_objects(value.get("objects"), store.replica())
            .map_err(|e| damaged(e.message))?;
        store.check_mergeable(&delta).map_err(damaged)?;
        store.merge(&delta);
    }
    Ok(lines.len())
}

/// An exclusive hold on a state file, released when dropped.
pub struct Locked {
    path: PathBuf,
    /// [`JOURNAL_MIN_COMPACT_BYTES`], smaller in tests.
    compact_min: u64,
    _lock: File,
}

impl Locked {
    /// Waits for the exclusive lock of `path`, creating its directory if needed.
    pub fn acquire(path: &Path) -> Result<Locked, StateError> {
        let lock_path = sibling(path, ".lock");
        let lock_err = |source| StateError::Lock {
            path: lock_path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(lock_err)?;
        }
        let file = open_lock_file(&lock_path).map_err(lock_err)?;
        file.lock().map_err(lock_err)?;
        remove_stale_temporaries(path);
        Ok(Locked {
            path: path.to_path_buf(),
            compact_min: JOURNAL_MIN_COMPACT_BYTES,
            _lock: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Option<Store>, StateError> {
        load(&self.path)
    }

    /// Replaces the state file with `store`, durably and atomically, and
    /// empties the journal (the snapshot holds all of it).
    pub fn save(&self, store: &Store) -> Result<(), StateError> {
        let write_err = |path: &Path, source| StateError::Write {
            path: path.to_path_buf(),
            source,
        };
        write_atomic(&self.path, snapshot::encode(store).as_bytes())
            .map_err(|e| write_err(&self.path, e))?;
        // Not fsynced: should the removal be lost in a crash, the journal is
        // replayed onto a snapshot that has it already, which changes nothing.
        let journal = journal_path(&self.path);
        match fs::remove_file(&journal) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(write_err(&journal, e)),
            _ => Ok(()),
        }
    }

    /// Changes the objects of one name by appending the change's delta to the
    /// journal: the snapshot is neither decoded beyond that name's objects nor
    /// rewritten, so a change costs a search of the file, not a parse of every
    /// object. `f` gets a store with only the objects of `name` (and the
    /// file's replica id) and must change nothing else.
    ///
    /// Returns `Ok(None)` when the file is missing or not laid out as this
    /// crate writes snapshots: the caller then takes the full path, which
    /// creates it or reports exactly what is wrong. When `f` fails nothing is
    /// written.
    pub fn update_name<T, E>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Store) -> Result<T, E>,
    ) -> Result<Option<Result<T, E>>, StateError> {
        let Some(NameView {
            mut store,
            journal,
            snapshot_len,
            since_full,
        }) = name_view(&self.path, name)?
        else {
            return Ok(None);
        };
        let journal_file = journal_path(&self.path);
        let journal_bytes = journal.as_deref().unwrap_or_default();
        let before = store.versions();
        let out = match f(&mut store) {
            Ok(t) => t,
            Err(e) => return Ok(Some(Err(e))),
        };
        let mut delta = store.delta_since(&before);
        // A new object with no event yet (`crdt new`) is recorded too.
        for o in store.objects(name) {
            if !before.contains_key(&(name.to_string(), o.ty()))
                && delta.get(name, o.ty()).is_none()
            {
                delta.insert_object(name, o.clone());
            }
        }
        if delta.is_empty() {
            return Ok(Some(Ok(out)));
        }
        // Every so often the name's whole state, so replaying it stays short.
        let line = if since_full >= JOURNAL_FULL_EVERY {
            let mut whole = Store::new(store.replica().clone());
            for o in store.objects(name) {
                whole.insert_object(name, o.clone());
            }
            journal_line(&whole, true)
        } else {
            journal_line(&delta, false)
        };
        // A torn last line (a crash mid-append) is cut off first, so the new
        // line starts on a line of its own.
        let keep = journal_bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let size =
            append(&journal_file, journal.is_some(), keep, line.as_bytes()).map_err(|source| {
                StateError::Write {
                    path: journal_file.clone(),
                    source,
                }
            })?;
        if size > self.compact_min.max(snapshot_len / 2) {
            // Fold the journal into the snapshot.
            if let Some(full) = self.load()? {
                self.save(&full)?;
            }
        }
        Ok(Some(Ok(out)))
    }
}

/// One name's objects read from a state file without parsing the rest.
struct NameView {
    store: Store,
    /// The whole journal (`None`: there is none).
    journal: Option<Vec<u8>>,
    snapshot_len: u64,
    /// The name's journal lines replayed (since its last whole-state line).
    since_full: usize,
}

/// The objects of `name` (snapshot and journal) with the file's replica id;
/// `Ok(None)` when the file is missing or not laid out as this crate writes it.
fn name_view(path: &Path, name: &str) -> Result<Option<NameView>, StateError> {
    let journal_file = journal_path(path);
    let journal = read_optional(&journal_file)?;
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let Some(mut store) = objects_of(&text, name) else {
        return Ok(None);
    };
    let since_full = replay(
        &journal_file,
        journal.as_deref().unwrap_or_default(),
        &mut store,
        Some(&journal_prefix(name)),
    )?;
    Ok(Some(NameView {
        store,
        journal,
        snapshot_len: text.len() as u64,
        since_full,
    }))
}

/// Reads what a state file holds for one name: a store with the objects of
/// `name` (or more: when the file is not laid out as this crate writes it,
/// the whole store). `Ok(None)` when the file does not exist.
pub fn load_name(path: &Path, name: &str) -> Result<Option<Store>, StateError> {
    match name_view(path, name)? {
        Some(view) => Ok(Some(view.store)),
        None => load(path),
    }
}

/// Appends `line` to the journal (cut to `keep` bytes first when it is
/// longer) and fsyncs it; returns the journal's new size. A journal that did
/// not exist gets its directory entry fsynced too.
fn append(path: &Path, existed: bool, keep: usize, line: &[u8]) -> io::Result<u64> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut len = file.metadata()?.len();
    if len > keep as u64 {
        file.set_len(keep as u64)?;
        len = keep as u64;
    }
    file.write_all(line)?;
    file.sync_data()?;
    if !existed {
        File::open(parent_dir(path))?.sync_all()?;
    }
    Ok(len + line.len() as u64)
}

/// The objects of `name` in a snapshot written by [`snapshot::encode`], found
/// by searching its text instead of parsing it: in that layout each object
/// starts on a line `    {` followed by `      "name": <name>,` and ends on
/// the next line `    }` (deeper lines are indented more, and strings hold no
/// raw newlines). `None` when the text is not laid out so.
fn objects_of(text: &[u8], name: &str) -> Option<Store> {
    const HEAD: &[u8] = b"{\n  \"format\": \"crdt-snapshot\",\n  \"objects\": [";
    const REPLICA: &[u8] = b"\n  \"replica\": ";
    const TAIL: &[u8] = b",\n  \"version\": 1\n}\n";
    if !text.starts_with(HEAD) || !text.ends_with(TAIL) {
        return None;
    }
    let at = memmem::rfind(text, REPLICA)?;
    let replica: &str =
        serde_json::from_slice(&text[at + REPLICA.len()..text.len() - TAIL.len()]).ok()?;
    let needle = format!("\n    {{\n      \"name\": {},\n", Value::from(name));
    let mut mine: Vec<Value> = Vec::new();
    for start in memmem::find_iter(text, needle.as_bytes()) {
        let body = start + 5; // the `{`
        let len = memmem::find(&text[body..], b"\n    }")?;
        mine.push(serde_json::from_slice(&text[body..body + len + 6]).ok()?);
    }
    let part = json!({"format": FORMAT, "version": VERSION, "replica": replica, "objects": mine});
    snapshot::from_value(&part).ok()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes `<state>.tmp.<pid>` files left by a writer killed mid-save.
/// Only a writer holding the lock makes one, so under the lock any that
/// exists is left over.
fn remove_stale_temporaries(path: &Path) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!("{name}.tmp.");
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        if let Some(rest) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            && !rest.is_empty()
            && rest.bytes().all(|b| b.is_ascii_digit())
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Opens (or creates) a file that is only ever locked, never written.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// fsynced and renamed into place, then fsyncs the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::clock::ReplicaId;
    use crate::{CrdtType, Object};

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    fn change(name: &'static str, ty: CrdtType) -> impl Fn(&mut Store) -> Result<(), ()> {
        move |s: &mut Store| {
            let me = s.replica().clone();
            match s.get_or_create(name, ty) {
                Object::GCounter(c) => c.inc(&me, 1).unwrap(),
                Object::PnCounter(c) => c.dec(&me, 1).unwrap(),
                Object::OrSet(x) => {
                    x.add(&me, serde_json::json!("m")).unwrap();
                }
                Object::Rga(t) => t.append(&me, "hi").unwrap(),
                Object::LwwRegister(r) => {
                    r.set(&me, json!([name]), 1).unwrap();
                }
            }
            Ok(())
        }
    }

    /// Changes through the journal give the same state as decoding the whole
    /// file, changing it and saving it.
    #[test]
    fn changing_one_name_gives_the_same_state_as_the_full_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let me = id("agent-1");
        let mut full = Store::new(me.clone());
        for n in ["a", "b:x", "b:y", "z\"q", "é"] {
            if let Object::GCounter(c) = full.get_or_create(n, CrdtType::GCounter) {
                c.inc(&me, 2).unwrap();
            }
        }
        if let Object::OrSet(s) = full.get_or_create("b:x", CrdtType::OrSet) {
            s.add(&me, serde_json::json!({"name": "b:y", "k": [1, 2.5]}))
                .unwrap();
        }
        fs::write(&path, snapshot::encode(&full)).unwrap();
        let locked = Locked::acquire(&path).unwrap();
        let names = [
            ("b:x", CrdtType::GCounter),
            ("b:w", CrdtType::Rga),
            ("zz", CrdtType::PnCounter),
            ("0", CrdtType::OrSet),
            ("é", CrdtType::GCounter),
            ("z\"q", CrdtType::LwwRegister),
            ("b:w", CrdtType::Rga),
            ("b:y", CrdtType::GCounter),
        ];
        for (name, ty) in names {
            change(name, ty)(&mut full).unwrap();
            assert!(matches!(
                locked.update_name(name, change(name, ty)).unwrap(),
                Some(Ok(()))
            ));
            assert_eq!(
                snapshot::encode(&locked.load().unwrap().unwrap()),
                snapshot::encode(&full),
                "after changing {name}"
            );
            // Reading one name finds the same objects.
            let one = load_name(&path, name).unwrap().unwrap();
            let values = |s: &Store| -> Vec<Value> {
                s.objects(name)
                    .iter()
                    .map(|o| snapshot::object_value(name, o))
                    .collect()
            };
            assert_eq!(values(&one), values(&full), "reading {name}");
            assert_eq!(one.replica(), full.replica());
        }
        // The snapshot was not rewritten: the changes are in the journal.
        let journal = fs::read_to_string(journal_path(&path)).unwrap();
        assert_eq!(journal.lines().count(), names.len());
        // A failing change writes nothing.
        let before = fs::read(&path).unwrap();
        assert!(matches!(
            locked.update_name("a", |_| Err::<(), _>("no")).unwrap(),
            Some(Err("no"))
        ));
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(fs::read_to_string(journal_path(&path)).unwrap(), journal);
        // A save folds the journal into the snapshot.
        locked.save(&full).unwrap();
        assert!(!journal_path(&path).exists());
        assert_eq!(fs::read_to_string(&path).unwrap(), snapshot::encode(&full));
        // A file laid out otherwise is left to the full path.
        fs::write(&path, snapshot::to_value(&full).to_string()).unwrap();
        assert!(
            locked
                .update_name("a", |_| Ok::<(), ()>(()))
                .unwrap()
                .is_none()
        );
        fs::write(&path, "{ oops").unwrap();
        assert!(
            locked
                .update_name("a", |_| Ok::<(), ()>(()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_save_killed_midway_leaves_no_temporary_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let stale = dir.path().join("state.json.tmp.4242");
        let other = dir.path().join("notes.json.tmp.4242");
        fs::write(&stale, "{ half").unwrap();
        fs::write(&other, "not ours").unwrap();
        let _locked = Locked::acquire(&path).unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
    }

    #[test]
    fn a_torn_journal_line_is_dropped_and_a_damaged_one_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let locked = Locked::acquire(&path).unwrap();
        locked.save(&Store::new(id("agent-1"))).unwrap();
        let n = change("n", CrdtType::GCounter);
        locked.update_name("n", &n).unwrap().unwrap().unwrap();
        // A crash in the middle of the next append.
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(&path))
            .unwrap();
        f.write_all(b"{\"objects\":[{\"na").unwrap();
        let value = |l: &Locked| {
            l.load()
                .unwrap()
                .unwrap()
                .get("n", CrdtType::GCounter)
                .unwrap()
                .value_json()
        };
        assert_eq!(value(&locked), 1);
        // The next change cuts the torn line off and starts a fresh one.
        locked.update_name("n", &n).unwrap().unwrap().unwrap();
        assert_eq!(value(&locked), 2);
        let journal = fs::read_to_string(journal_path(&path)).unwrap();
        assert_eq!(journal.lines().count(), 2, "{journal}");
        // A damaged line that is not the last is an error naming the line.
        fs::write(
            journal_path(&path),
            format!("{{\"objects\": 7}}\n{journal}"),
        )
        .unwrap();
        let err = locked.load().unwrap_err();
        assert!(matches!(&err, StateError::Journal { line: 1, .. }), "{err}");
        assert!(err.to_string().contains("state.json.log line 1"), "{err}");
        // A change to the name of a damaged line reports it, and writes nothing.
        fs::write(
            journal_path(&path),
            format!(
                "{{\"objects\":[{{\"name\":\"n\",\"type\":\"g-counter\",\"state\":7}}]}}\n{journal}"
            ),
        )
        .unwrap();
        let before = fs::read(journal_path(&path)).unwrap();
        assert!(matches!(
            locked.update_name("n", &n),
            Err(StateError::Journal { line: 1, .. })
        ));
        assert_eq!(fs::read(journal_path(&path)).unwrap(), before);
    }

    /// A name changed often gets its whole state written every so often, so
    /// a change replays a bounded number of its lines.
    #[test]
    fn a_hot_name_replays_only_since_its_last_whole_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut locked = Locked::acquire(&path).unwrap();
        locked.compact_min = u64::MAX; // no folding here
        locked.save(&Store::new(id("agent-1"))).unwrap();
        let n = change("hot", CrdtType::GCounter);
        let other = change("other", CrdtType::OrSet);
        for i in 0..200 {
            locked.update_name("hot", &n).unwrap().unwrap().unwrap();
            if i % 3 == 0 {
                locked
                    .update_name("other", &other)
                    .unwrap()
                    .unwrap()
                    .unwrap();
            }
            let view = name_view(&path, "hot").unwrap().unwrap();
            assert!(
                view.since_full <= JOURNAL_FULL_EVERY + 1,
                "{}",
                view.since_full
            );
            assert_eq!(
                view.store
                    .get("hot", CrdtType::GCounter)
                    .unwrap()
                    .value_json(),
                i + 1
            );
        }
        let journal = fs::read_to_string(journal_path(&path)).unwrap();
        let full = journal
            .lines()
            .filter(|l| l.starts_with(&journal_prefix("hot")) && l.ends_with(FULL_END))
            .count();
        assert_eq!(full, 200 / (JOURNAL_FULL_EVERY + 1), "{journal}");
        // Everything together still gives the same state.
        let store = locked.load().unwrap().unwrap();
        assert_eq!(
            store.get("hot", CrdtType::GCounter).unwrap().value_json(),
            200
        );
        assert_eq!(
            store.get("other", CrdtType::OrSet).unwrap().value_json(),
            json!(["m"])
        );
    }

    #[test]
    fn a_long_journal_is_folded_into_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut locked = Locked::acquire(&path).unwrap();
        locked.compact_min = 4 << 10;
        locked.save(&Store::new(id("agent-1"))).unwrap();
        let n = change("metrics:requests", CrdtType::GCounter);
        let mut folded = false;
        for _ in 0..200 {
            locked
                .update_name("metrics:requests", &n)
                .unwrap()
                .unwrap()
                .unwrap();
            folded |= !journal_path(&path).exists();
        }
        assert!(folded, "the journal was never folded into the snapshot");
        let size = fs::metadata(journal_path(&path)).map_or(0, |m| m.len());
        assert!(size <= locked.compact_min, "{size}");
        let store = locked.load().unwrap().unwrap();
        assert_eq!(
            store
                .get("metrics:requests", CrdtType::GCounter)
                .unwrap()
                .value_json(),
            200
        );
    }
}

//! The JSON state files of earlier versions, read to migrate them into a
//! replica database ([`crate::db`]) and to import them; and the atomic file
//! writes the server's snapshot and `export -o` use.
//!
//! Such a state file was a snapshot (`state.json`, format v1) plus a journal
//! beside it (`state.json.log`): one JSON line per change, `{"objects":
//! [{"name", "type", "state"}]}` holding the change's delta. Writers held an
//! exclusive lock on `<state>.lock`; the migration takes it too, so a
//! process of an earlier version never writes while a file is migrated.
//! A last journal line without its newline was torn by a crash before it
//! was acknowledged, and is dropped; any other line that does not load is
//! damage, reported with its line number.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use crate::error::SnapshotError;
use crate::objects_line::decode_objects;
#[cfg(test)]
use crate::objects_line::objects_line;
use crate::snapshot;
use crate::store::Store;

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
    replay(&journal_file, &journal, &mut store)?;
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

/// Merges the complete lines of a journal into `store`. A last line
/// without its newline was torn by a crash before it was acknowledged, and
/// is skipped. Returns how many lines were merged.
fn replay(path: &Path, journal: &[u8], store: &mut Store) -> Result<usize, StateError> {
    let mut lines: Vec<(usize, &[u8])> = Vec::new();
    let mut start = 0;
    for (i, end) in memchr::memchr_iter(b'\n', journal).enumerate() {
        lines.push((i, &journal[start..end]));
        start = end + 1;
    }
    for &(i, line) in &lines {
        let damaged = |message: String| StateError::Journal {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let value: Value = serde_json::from_slice(line).map_err(|e| damaged(e.to_string()))?;
        let delta = decode_objects(value.get("objects"), store.replica())
            .map_err(|e| damaged(e.message().to_string()))?;
        store
            .check_mergeable(&delta)
            .map_err(|e| damaged(e.to_string()))?;
        store.merge(&delta);
    }
    Ok(lines.len())
}

/// An exclusive hold on a state file, released when dropped (a migration
/// holds it, so an old version's writer cannot change the file meanwhile).
pub(crate) struct Locked {
    path: PathBuf,
    _lock: File,
}

impl Locked {
    /// Waits for the exclusive lock of `path`.
    pub fn acquire(path: &Path) -> Result<Locked, StateError> {
        let lock_path = sibling(path, ".lock");
        let file = open_lock_file(&lock_path).and_then(|f| f.lock().map(|()| f));
        let file = file.map_err(|source| StateError::Lock {
            path: lock_path.clone(),
            source,
        })?;
        remove_stale_temporaries(path);
        Ok(Locked {
            path: path.to_path_buf(),
            _lock: file,
        })
    }

    pub fn load(&self) -> Result<Option<Store>, StateError> {
        load(&self.path)
    }
}

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
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
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
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
        let me = ReplicaId::new("agent-1").unwrap();
        let mut store = Store::new(me.clone());
        fs::write(&path, snapshot::encode(&store)).unwrap();
        if let Object::GCounter(c) = store.get_or_create("n", CrdtType::GCounter) {
            c.inc(&me, 1).unwrap();
        }
        let line = objects_line(&store, "");
        fs::write(
            journal_path(&path),
            format!("{line}\n{{\"objects\":[{{\"na"),
        )
        .unwrap();
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(loaded.get("n", CrdtType::GCounter).unwrap().value_json(), 1);
        fs::write(journal_path(&path), format!("{{\"objects\": 7}}\n{line}\n")).unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(&err, StateError::Journal { line: 1, .. }), "{err}");
        assert!(err.to_string().contains("state.json.log line 1"), "{err}");
    }
}

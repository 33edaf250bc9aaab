//! The local state file: one replica's store on disk, shared safely by many
//! processes.
//!
//! Writers hold an exclusive lock on `<state>.lock`, a file that is never
//! replaced (a lock on the state file itself would be lost when the file is
//! renamed over). A save writes a temporary file in the same directory,
//! fsyncs it, renames it over the state file and fsyncs the directory, so a
//! crash or `kill -9` leaves either the old or the new state, never a torn one.
//! Readers need no lock: they always see a whole file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::error::SnapshotError;
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
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Reads a state file; `Ok(None)` when it does not exist yet.
pub fn load(path: &Path) -> Result<Option<Store>, StateError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    snapshot::decode(&text)
        .map(Some)
        .map_err(|source| StateError::Parse {
            path: path.to_path_buf(),
            source,
        })
}

/// An exclusive hold on a state file, released when dropped.
pub struct Locked {
    path: PathBuf,
    _lock: File,
}

impl Locked {
    /// Waits for the exclusive lock of `path`, creating its directory if needed.
    pub fn acquire(path: &Path) -> Result<Locked, StateError> {
        let lock_path = lock_path(path);
        let lock_err = |source| StateError::Lock {
            path: lock_path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(lock_err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_err)?;
        file.lock().map_err(lock_err)?;
        Ok(Locked {
            path: path.to_path_buf(),
            _lock: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Option<Store>, StateError> {
        load(&self.path)
    }

    /// Replaces the state file with `store`, durably and atomically.
    pub fn save(&self, store: &Store) -> Result<(), StateError> {
        write_atomic(&self.path, snapshot::encode(store).as_bytes()).map_err(|source| {
            StateError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// fsynced and renamed into place, then fsyncs the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
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

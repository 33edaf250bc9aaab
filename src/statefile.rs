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

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use thiserror::Error;

use crate::clock::ReplicaId;
use crate::error::SnapshotError;
use crate::snapshot::{self, FORMAT, VERSION};
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

/// The top level of a state file, with every object left as raw JSON text.
#[derive(Deserialize)]
struct RawDoc<'a> {
    format: &'a str,
    version: u64,
    replica: &'a str,
    #[serde(borrow)]
    objects: Vec<&'a RawValue>,
}

/// An object's name and type, read without decoding its state.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(rename = "type")]
    ty: &'a str,
}

/// The name (and type) of a raw object. Objects are written with sorted
/// keys, so `"name"` comes first: read just that string instead of scanning
/// the whole object; anything unusual takes the full parse.
fn head_of(raw: &str) -> Option<Head<'_>> {
    let rest = raw.strip_prefix('{')?.trim_start();
    if let Some(after) = rest.strip_prefix("\"name\":") {
        // A name without escapes is the text between the quotes.
        if let Some(body) = after.trim_start().strip_prefix('"')
            && let Some(end) = body.find('"')
            && !body[..end].contains('\\')
        {
            return Some(Head {
                name: Cow::Borrowed(&body[..end]),
                ty: "",
            });
        }
        let mut names = serde_json::Deserializer::from_str(after).into_iter::<Cow<'_, str>>();
        if let Some(Ok(name)) = names.next() {
            // The type is only needed for the objects being changed, which are
            // decoded in full anyway.
            return Some(Head { name, ty: "" });
        }
    }
    serde_json::from_str::<Head<'_>>(raw).ok()
}

impl Locked {
    /// Changes the objects of one name without decoding or re-encoding the
    /// others: their text is copied through unchanged, so a change costs a
    /// scan of the file, not a parse of every object. `f` gets a store with
    /// only the objects of `name` (and the file's replica id) and must change
    /// nothing else.
    ///
    /// Returns `Ok(None)` when the file is missing or not a well-formed
    /// snapshot: the caller then takes the full path, which reports exactly
    /// what is wrong. When `f` fails nothing is written.
    pub fn update_name<T, E>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Store) -> Result<T, E>,
    ) -> Result<Option<Result<T, E>>, StateError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let Ok(doc) = serde_json::from_str::<RawDoc<'_>>(&text) else {
            return Ok(None);
        };
        if doc.format != FORMAT || doc.version != VERSION || ReplicaId::new(doc.replica).is_err() {
            return Ok(None);
        }
        let mut heads = Vec::with_capacity(doc.objects.len());
        let mut mine: Vec<Value> = Vec::new();
        for raw in &doc.objects {
            let Some(head) = head_of(raw.get()) else {
                return Ok(None);
            };
            if head.name == name {
                match serde_json::from_str::<Value>(raw.get()) {
                    Ok(v) => mine.push(v),
                    Err(_) => return Ok(None),
                }
            }
            heads.push((head.name, head.ty, *raw));
        }
        let part =
            json!({"format": FORMAT, "version": VERSION, "replica": doc.replica, "objects": mine});
        let Ok(mut store) = snapshot::from_value(&part) else {
            return Ok(None);
        };
        let out = match f(&mut store) {
            Ok(t) => t,
            Err(e) => return Ok(Some(Err(e))),
        };
        // The same text `snapshot::encode` writes for the whole store.
        let mut changed: Vec<String> = Vec::new();
        for o in store.objects(name) {
            let mut item = String::new();
            snapshot::write_pretty(&mut item, &snapshot::object_value(name, o), 2);
            changed.push(item);
        }
        let mut items: Vec<&str> = Vec::with_capacity(heads.len() + changed.len());
        let mut placed = false;
        for (n, _, raw) in &heads {
            if !placed && n.as_ref() >= name {
                items.extend(changed.iter().map(String::as_str));
                placed = true;
            }
            if n.as_ref() != name {
                items.push(raw.get());
            }
        }
        if !placed {
            items.extend(changed.iter().map(String::as_str));
        }
        let mut buf = String::with_capacity(text.len() + 256);
        buf.push_str("{\n  \"format\": \"crdt-snapshot\",\n  \"objects\": ");
        if items.is_empty() {
            buf.push_str("[]");
        } else {
            buf.push_str("[\n    ");
            buf.push_str(&items.join(",\n    "));
            buf.push_str("\n  ]");
        }
        buf.push_str(",\n  \"replica\": ");
        buf.push_str(&Value::from(doc.replica).to_string());
        buf.push_str(&format!(",\n  \"version\": {VERSION}\n}}\n"));
        write_atomic(&self.path, buf.as_bytes()).map_err(|source| StateError::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok(Some(Ok(out)))
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

#[cfg(test)]
mod test {
    use super::*;
    use crate::{CrdtType, Object};

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    /// The fast path writes exactly what a full decode, change and encode would.
    #[test]
    fn changing_one_name_writes_the_same_bytes_as_the_full_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let me = id("agent-1");
        let mut store = Store::new(me.clone());
        for n in ["a", "b:x", "b:y", "z\"q", "é"] {
            if let Object::GCounter(c) = store.get_or_create(n, CrdtType::GCounter) {
                c.inc(&me, 2).unwrap();
            }
        }
        if let Object::OrSet(s) = store.get_or_create("b:x", CrdtType::OrSet) {
            s.add(&me, serde_json::json!({"k": [1, 2.5]}));
        }
        fs::write(&path, snapshot::encode(&store)).unwrap();
        let locked = Locked::acquire(&path).unwrap();
        for (name, ty) in [
            ("b:x", CrdtType::GCounter),
            ("b:w", CrdtType::Rga),
            ("zz", CrdtType::PnCounter),
            ("0", CrdtType::OrSet),
            ("é", CrdtType::GCounter),
        ] {
            let change = |s: &mut Store| -> Result<(), ()> {
                let me = s.replica().clone();
                match s.get_or_create(name, ty) {
                    Object::GCounter(c) => c.inc(&me, 1).unwrap(),
                    Object::PnCounter(c) => c.dec(&me, 1).unwrap(),
                    Object::OrSet(x) => {
                        x.add(&me, serde_json::json!("m"));
                    }
                    Object::Rga(t) => t.append(&me, "hi").unwrap(),
                    Object::LwwRegister(_) => unreachable!(),
                }
                Ok(())
            };
            let mut full = locked.load().unwrap().unwrap();
            change(&mut full).unwrap();
            assert!(matches!(
                locked.update_name(name, change).unwrap(),
                Some(Ok(()))
            ));
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                snapshot::encode(&full),
                "after changing {name}"
            );
        }
        // A failing change writes nothing.
        let before = fs::read_to_string(&path).unwrap();
        assert!(matches!(
            locked.update_name("a", |_| Err::<(), _>("no")).unwrap(),
            Some(Err("no"))
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
        // A damaged file is left to the full path.
        fs::write(&path, "{ oops").unwrap();
        assert!(
            locked
                .update_name("a", |_| Ok::<(), ()>(()))
                .unwrap()
                .is_none()
        );
    }
}

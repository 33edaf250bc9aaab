//! The local replica: one SQLite database file, shared safely by many
//! processes.
//!
//! ```text
//! meta     (key, value)                 format, version, replica, migrated_from
//! objects  (name, type, state)          one row per object; `state` is the
//!                                       snapshot format's JSON of its state
//! issued   (name, type, seq)            the last seq this replica gave an
//!                                       event of that object
//! history  (id, time_ms, source, name,  every change applied here, oldest
//!           type, delta, replicas,      first: what it brought, as a delta,
//!           summary)                    and in the type's words
//! checkpoints (name, type, id, state)   an object's state at history row id
//! tally    (name, type, rows, bytes,    how far each object is from its last
//!           size)                       checkpoint (when the next is due)
//! ```
//!
//! The database is in WAL mode with `synchronous=FULL`: a transaction that
//! committed is on disk, and a crash (or `kill -9`) leaves the state before
//! or after a transaction, never between. Writers take the write lock at
//! the start of their transaction (`BEGIN IMMEDIATE`) and wait for one
//! another (a busy timeout); readers never wait for writers.
//!
//! **A dot is never reused.** A replica numbers its events in each object
//! 1, 2, 3... (a counter's entry, the dots of a set, a register, a text);
//! `issued` keeps the last number given, apart from the object's row. When a
//! row has lost events this replica made (edited by hand, restored from an
//! old copy), a local change to it would give a new event a number its
//! peers already know with other content; it is refused
//! ([`DbError::Behind`]) until the missing events come back (an import or
//! a sync from a peer that has them).
//!
//! Everything read is checked like a snapshot: a row that does not decode is
//! [`DbError::Damaged`], naming the row and the field, and nothing is written.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;

use crate::clock::{ReplicaId, VersionVector};
use crate::error::SnapshotError;
use crate::object::{CrdtType, Object};
use crate::snapshot;
use crate::store::{Store, selects};

/// `PRAGMA application_id` of a replica database: "crdt".
pub const APPLICATION_ID: i32 = 0x6372_6474;
/// `PRAGMA user_version`: the schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 2;
/// `meta.format`.
pub const FORMAT: &str = "crdt-replica";
/// A WAL larger than this after a change is folded into the database and
/// emptied by that change (see [`tidy`]).
const WAL_TRUNCATE_BYTES: u64 = 256 << 10;

/// How long a writer waits for another one before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// What version 2 added to version 1's history (`summary` and the index by
/// name) and its checkpoints: the statements of a new database, and of an
/// upgrade (after `ALTER TABLE ... ADD COLUMN`, see [`SCHEMA`]).
macro_rules! added_in_2 {
    () => {
        "CREATE INDEX history_name ON history (name);
CREATE TABLE checkpoints (
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    id INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (name, type, id)
) WITHOUT ROWID;
CREATE TABLE tally (
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (name, type)
) WITHOUT ROWID;
"
    };
}

/// The tables of schema version 2. `history.summary` (what a change did,
/// in its type's words) came with version 2: the table is written the way
/// `ALTER TABLE ... ADD COLUMN` leaves a version 1 table, so an upgraded
/// database and a new one have one schema text.
const SCHEMA: &str = concat!(
    "
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE objects (
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (name, type)
) WITHOUT ROWID;
CREATE TABLE issued (
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (name, type)
) WITHOUT ROWID;
CREATE TABLE history (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    delta TEXT NOT NULL,
    replicas TEXT NOT NULL
, summary TEXT NOT NULL DEFAULT '');
",
    added_in_2!()
);

/// What upgrades a version 1 database to [`SCHEMA`].
const UPGRADE_FROM_1: &str = concat!(
    "ALTER TABLE history ADD COLUMN summary TEXT NOT NULL DEFAULT '';\n",
    added_in_2!()
);

/// The tables of schema version 1 (read, and upgraded when opened to write).
fn schema_v1() -> String {
    SCHEMA
        .replace("\n, summary TEXT NOT NULL DEFAULT '')", "\n)")
        .replace(added_in_2!(), "")
}

#[derive(Debug, Error)]
pub enum DbError {
    #[error("cannot {doing} {path}")]
    Io {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot create a replica at {path}: {why}")]
    Create { path: PathBuf, why: String },
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is not a crdt replica: {why}; it was left untouched")]
    NotReplica { path: PathBuf, why: String },
    #[error("{path} is damaged and was left untouched: {what}")]
    Damaged { path: PathBuf, what: String },
    #[error("{path}: object {row} is damaged; nothing was changed")]
    Row {
        path: PathBuf,
        row: String,
        #[source]
        source: SnapshotError,
    },
    #[error("cannot {doing} {path}; nothing was changed")]
    Sqlite {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path}: {name} ({ty}) lacks changes this replica made to it (it made {issued}, the database holds {held}): \
         its row was edited or lost, and a new change would reuse their ids; nothing was changed. \
         Bring them back with `crdt import` of a snapshot that has them (a peer's export), or use a new replica"
    )]
    Behind {
        path: PathBuf,
        name: String,
        ty: CrdtType,
        issued: u64,
        held: u64,
    },
    #[error("cannot migrate the JSON state file {path}: {why}; it was left untouched")]
    Migrate { path: PathBuf, why: String },
    #[error(transparent)]
    Legacy(#[from] crate::statefile::StateError),
}

/// What opening found at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No file, or an empty one: a new replica.
    Missing,
    Sqlite,
    /// A JSON state file of an earlier version (to migrate).
    Json,
    Other,
}

fn kind_of(path: &Path) -> io::Result<Kind> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kind::Missing),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    Ok(if head.is_empty() {
        Kind::Missing
    } else if head == SQLITE_HEADER {
        Kind::Sqlite
    } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Kind::Json
    } else {
        Kind::Other
    })
}

/// What a migration of a JSON state file did, for the one line the
/// command line prints about it.
#[derive(Debug, Clone)]
pub struct Migration {
    pub from: PathBuf,
    pub objects: usize,
    /// Where the old files are kept.
    pub kept: Vec<PathBuf>,
}

/// The name the old files of a migration are kept under: `state.json` ->
/// `state.json.pre-sqlite`.
pub fn kept_name(path: &Path) -> PathBuf {
    crate::statefile::sibling(path, ".pre-sqlite")
}

/// The WAL beside a database: `<db>-wal`.
pub fn wal_path(path: &Path) -> PathBuf {
    crate::statefile::sibling(path, "-wal")
}

/// A replica database, open.
pub struct Db {
    conn: Connection,
    path: PathBuf,
    replica: ReplicaId,
    /// Its schema version: older than [`SCHEMA_VERSION`] only when opened
    /// read-only (no `history.summary` then).
    version: i32,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.path)
            .field("replica", &self.replica)
            .finish()
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

impl Db {
    /// Opens the replica at `path` for reading and writing; `Ok(None)` when
    /// there is none yet (no file, or an empty one). A JSON state file of an
    /// earlier version is migrated first (see [`Db::migrate`]).
    pub fn open(path: &Path) -> Result<Option<(Db, Option<Migration>)>, DbError> {
        let kind = kind_of(path).map_err(|source| DbError::Io {
            path: path.to_path_buf(),
            doing: "read",
            source,
        })?;
        match kind {
            Kind::Missing => Ok(None),
            Kind::Sqlite => {
                // One connection per process: the first one to open a WAL
                // database reads the WAL, so a second would read it again.
                let conn = raw_connection(path, false)?;
                let Some((replica, version)) = check_schema_or_blank(&conn, path)? else {
                    // Being created by another process, or left empty: none yet.
                    return Ok(None);
                };
                let db = Db::upgraded(conn, path, replica, version)?;
                db.finish_migration();
                Ok(Some((db, None)))
            }
            Kind::Json => {
                let m = Db::migrate(path, path)?;
                Ok(Some((Db::connect(path, false)?, m)))
            }
            Kind::Other => Err(DbError::NotReplica {
                path: path.to_path_buf(),
                why: "it is neither an SQLite database nor a JSON state file".into(),
            }),
        }
    }

    /// Opens another replica's database (or this one) without writing to it.
    pub fn open_read_only(path: &Path) -> Result<Db, DbError> {
        Db::connect(path, true)
    }

    /// True when the file at `path` is an SQLite database (by its header).
    pub fn is_database(path: &Path) -> bool {
        matches!(kind_of(path), Ok(Kind::Sqlite))
    }

    /// Opens the replica at `path`, creating it (with the replica id
    /// `new_replica` gives) when there is none: no file, or an empty one.
    pub fn open_or_create(
        path: &Path,
        new_replica: impl FnOnce() -> Result<ReplicaId, String>,
    ) -> Result<(Db, Option<Migration>), DbError> {
        if let Some(found) = Db::open(path)? {
            return Ok(found);
        }
        // A WAL beside a missing or empty file belongs to a deleted
        // database (creating one writes the file's first page before its
        // WAL): SQLite would replay it into the new one.
        let wal = wal_path(path);
        if matches!(kind_of(path), Ok(Kind::Missing))
            && fs::metadata(&wal).is_ok_and(|m| m.len() > 0)
        {
            return Err(DbError::NotReplica {
                path: path.to_path_buf(),
                why: format!(
                    "it is missing or empty, but {} is left from a deleted database \
                     (delete a replica's -wal and -shm files with it); remove them, or restore the file",
                    wal.display()
                ),
            });
        }
        let create = |why: String| DbError::Create {
            path: path.to_path_buf(),
            why,
        };
        let replica = new_replica().map_err(create)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| create(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = raw_connection(path, false)?;
        create_schema(&conn, path, &replica, true)?;
        let (replica, version) = check_schema(&conn, path)?;
        Ok((Db::upgraded(conn, path, replica, version)?, None))
    }

    fn connect(path: &Path, read_only: bool) -> Result<Db, DbError> {
        let conn = raw_connection(path, read_only)?;
        let (replica, version) = check_schema(&conn, path)?;
        if read_only {
            return Ok(Db {
                conn,
                path: path.to_path_buf(),
                replica,
                version,
            });
        }
        Db::upgraded(conn, path, replica, version)
    }

    /// The database, upgraded to this build's schema when older.
    fn upgraded(
        conn: Connection,
        path: &Path,
        replica: ReplicaId,
        version: i32,
    ) -> Result<Db, DbError> {
        if version < SCHEMA_VERSION {
            upgrade(&conn, path)?;
        }
        Ok(Db {
            conn,
            path: path.to_path_buf(),
            replica,
            version: SCHEMA_VERSION,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A migration in place stopped (killed) after the database took the
    /// state file's place: the old journal, already in the database, is
    /// moved to its kept name as the migration would have.
    fn finish_migration(&self) {
        let journal = crate::statefile::journal_path(&self.path);
        if !journal.exists() {
            return;
        }
        let from: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'migrated_from'",
                [],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        if from.as_deref() == Some(&*self.path.display().to_string()) {
            let _ = fs::rename(&journal, kept_name(&journal));
        }
    }

    pub fn replica(&self) -> &ReplicaId {
        &self.replica
    }

    fn sqlite_err(&self, doing: &'static str) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        move |source| wrap(&self.path, doing, source)
    }

    /// Every object.
    pub fn load(&self) -> Result<Store, DbError> {
        let mut store = Store::new(self.replica.clone());
        for (name, o) in rows_where(&self.conn, &self.path, "true", &[])? {
            store.insert_object(&name, o);
        }
        Ok(store)
    }

    /// The objects of `name`.
    pub fn load_name(&self, name: &str) -> Result<Store, DbError> {
        let mut store = Store::new(self.replica.clone());
        for (n, o) in rows_of(&self.conn, &self.path, name)? {
            store.insert_object(&n, o);
        }
        Ok(store)
    }

    /// The objects `patterns` select (a name, or a namespace such as
    /// `metrics` or `metrics:`); every object when `patterns` is empty.
    pub fn load_selected(&self, patterns: &[String]) -> Result<Store, DbError> {
        if patterns.is_empty() {
            return self.load();
        }
        let mut store = Store::new(self.replica.clone());
        for p in patterns {
            let ns = if p.ends_with(':') {
                p.clone()
            } else {
                format!("{p}:")
            };
            for (n, o) in rows_of(&self.conn, &self.path, p.trim_end_matches(':'))?
                .into_iter()
                .chain(rows_in(&self.conn, &self.path, &ns)?)
            {
                if selects(p, &n) && store.get(&n, o.ty()).is_none() {
                    store.insert_object(&n, o);
                }
            }
        }
        Ok(store)
    }

    /// Up to `limit` distinct names that start with `prefix`, in order
    /// (for shell completion: one index range scan).
    pub fn names_starting(&self, prefix: &str, limit: usize) -> Result<Vec<String>, DbError> {
        let fail = |e: rusqlite::Error| DbError::Sqlite {
            path: self.path.clone(),
            doing: "read the object names",
            source: e,
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT name FROM objects WHERE name >= ?1 ORDER BY name")
            .map_err(fail)?;
        let mut rows = stmt.query([prefix]).map_err(fail)?;
        let mut names = Vec::new();
        while names.len() < limit
            && let Some(row) = rows.next().map_err(fail)?
        {
            let name: String = row.get(0).map_err(fail)?;
            if !name.starts_with(prefix) {
                break;
            }
            names.push(name);
        }
        Ok(names)
    }

    /// The objects of the next `names` names after `after` (from the first
    /// when `None`), in name order: a page of a walk over every object
    /// that holds a page in memory, not the replica.
    pub fn page_after(
        &self,
        after: Option<&str>,
        names: usize,
    ) -> Result<Vec<(String, Object)>, DbError> {
        let mut rows = rows_where(
            &self.conn,
            &self.path,
            &format!(
                "name IN (SELECT DISTINCT name FROM objects WHERE name > ?1 ORDER BY name LIMIT {names})"
            ),
            &[after.unwrap_or("")],
        )?;
        rows.sort_by(|a, b| (a.0.as_str(), a.1.ty()).cmp(&(b.0.as_str(), b.1.ty())));
        Ok(rows)
    }

    /// The objects of these names, a few hundred names per query: the
    /// objects a part of a sync changes are read at once, not a lookup each.
    pub fn load_names(&self, names: &[&str]) -> Result<Store, DbError> {
        let mut store = Store::new(self.replica.clone());
        for chunk in names.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let filter = format!("name IN ({})", marks.join(","));
            for (n, o) in rows_where(&self.conn, &self.path, &filter, chunk)? {
                store.insert_object(&n, o);
            }
        }
        Ok(store)
    }

    /// How many objects and history rows there are.
    pub fn counts(&self) -> Result<(u64, u64), DbError> {
        let count = |sql: &str| -> Result<u64, DbError> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(self.sqlite_err("read"))
        };
        Ok((
            count("SELECT count(*) FROM objects")?,
            count("SELECT count(*) FROM history")?,
        ))
    }

    /// How many names hold objects of several types (type conflicts).
    pub fn conflict_count(&self) -> Result<u64, DbError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM (SELECT name FROM objects GROUP BY name HAVING count(*) > 1)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.sqlite_err("read"))
    }

    /// The time of the oldest and newest history rows, if any.
    pub fn history_span(&self) -> Result<Option<(u64, u64)>, DbError> {
        self.conn
            .query_row("SELECT min(time_ms), max(time_ms) FROM history", [], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .map(|(a, b)| Some((a? as u64, b? as u64)))
            .map_err(self.sqlite_err("read"))
    }

    /// A number that changes whenever another connection (another process)
    /// commits to the database, and not for this one's own commits
    /// (`PRAGMA data_version`): a cheap "did anyone else write?".
    pub fn data_version(&self) -> Result<u64, DbError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .map(|v| v as u64)
            .map_err(self.sqlite_err("read"))
    }

    /// The last history row's id (0: none).
    pub fn last_history_id(&self) -> Result<u64, DbError> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM history", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(self.sqlite_err("read"))
    }

    /// The names changed by history rows after `after_id` whose source is
    /// not `except`, and the last row's id: what other processes changed.
    pub fn changed_since(
        &self,
        after_id: u64,
        except: &str,
    ) -> Result<(Vec<String>, u64), DbError> {
        // The last id first: a row committed meanwhile is seen next time.
        let last = self.last_history_id()?;
        let read = self.sqlite_err("read");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT name FROM history WHERE id > ?1 AND id <= ?2 AND source <> ?3 ORDER BY name",
            )
            .map_err(&read)?;
        let names = stmt
            .query_map(
                rusqlite::params![after_id as i64, last as i64, except],
                |r| r.get(0),
            )
            .map_err(&read)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(&read)?;
        Ok((names, last))
    }

    /// Trims the history rows older than `before_ms`: those of each object
    /// become one row (source `trim`, at the position and time of the last
    /// of them) holding what they brought, merged, so that time travel to
    /// any moment after the cut still gives the state as it was. Returns
    /// how many rows went.
    pub fn trim_history(&mut self, before_ms: u64) -> Result<u64, DbError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| wrap(&path, "lock", e))?;
        // Each object's rows before the cut, merged. Rows an earlier
        // version's trim left without their start (it deleted them) do not
        // merge from nothing: they are deleted as that trim did.
        let objects: Vec<(String, String)> = tx
            .prepare("SELECT DISTINCT name, type FROM history WHERE time_ms < ?1")
            .and_then(|mut s| {
                s.query_map(params![before_ms as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(|e| wrap(&path, "read", e))?;
        let mut store = Store::new(self.replica.clone());
        let mut folded = log::FoldedRows::new();
        for (name, ty) in objects {
            let mut one = Store::new(self.replica.clone());
            match log::fold_into(
                &tx,
                &path,
                &mut one,
                "SELECT name, type, delta, id, time_ms, replicas FROM history \
                 WHERE name = ?1 AND type = ?2 AND time_ms < CAST(?3 AS INTEGER) ORDER BY id",
                &[name, ty, before_ms.to_string()],
            ) {
                Ok(f) => {
                    folded.extend(f);
                    for (n, o) in one.iter() {
                        store.insert_object(n, o.clone());
                    }
                }
                Err(DbError::Row { .. } | DbError::Damaged { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let n = tx
            .execute(
                "DELETE FROM history WHERE time_ms < ?1",
                params![before_ms as i64],
            )
            .map_err(|e| wrap(&path, "write", e))?;
        // A checkpoint at or before the last trimmed row of its object is
        // what that object's trim row now holds; its tally is counted again
        // at its next change.
        for ((name, ty), f) in &folded {
            tx.execute(
                "DELETE FROM checkpoints WHERE name = ?1 AND type = ?2 AND id <= ?3",
                params![name, ty.as_str(), f.last_id as i64],
            )
            .and_then(|_| {
                tx.execute(
                    "DELETE FROM tally WHERE name = ?1 AND type = ?2",
                    params![name, ty.as_str()],
                )
            })
            .map_err(|e| wrap(&path, "write", e))?;
        }
        let mut stmt = tx
            .prepare(
                "INSERT INTO history (id, time_ms, source, name, type, delta, replicas, summary)
                 VALUES (?1, ?2, 'trim', ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(|e| wrap(&path, "write", e))?;
        for ((name, ty), f) in &folded {
            let Some(o) = store.get(name, *ty) else {
                continue;
            };
            let summary = format!(
                "{} change{} before the trim, merged: {}",
                f.rows,
                if f.rows == 1 { "" } else { "s" },
                crate::history::describe_merge(None, o, &VersionVector::new())
            );
            stmt.execute(params![
                f.last_id as i64,
                f.last_time as i64,
                name,
                ty.as_str(),
                state_text(o),
                replicas_json(f.replicas.iter()),
                summary
            ])
            .map_err(|e| wrap(&path, "write", e))?;
        }
        drop(stmt);
        tx.commit().map_err(|e| wrap(&path, "write", e))?;
        tidy(&self.conn, &path);
        Ok(n as u64 - folded.len() as u64)
    }

    /// Starts a change: a transaction that holds the write lock (other
    /// writers wait) until it is committed or dropped. Dropped uncommitted,
    /// it changes nothing.
    ///
    /// Its history rows get `time_ms`, or the last row's time if that is
    /// later: the history's times never go back (a clock set back records
    /// the time of the last change), so a time cuts it in one place.
    pub fn change(&mut self, source: &str, time_ms: u64) -> Result<Change<'_>, DbError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| wrap(&self.path, "lock", e))?;
        let last: Option<i64> = tx
            .query_row(
                "SELECT time_ms FROM history ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| wrap(&self.path, "read", e))?;
        let time_ms = time_ms.max(last.unwrap_or(0).max(0) as u64);
        Ok(Change {
            tx,
            conn: &self.conn,
            path: &self.path,
            store: Store::new(self.replica.clone()),
            all: false,
            loaded: HashSet::new(),
            base: HashMap::new(),
            rows: Vec::new(),
            touched: BTreeMap::new(),
            last: None,
            me_json: Arc::from(replicas_json(std::iter::once(&self.replica))),
            source: Arc::from(source),
            time_ms,
            merging: false,
            checkpoints: Vec::new(),
            fold: false,
            run: None,
            unrecorded: false,
        })
    }

    /// Migrates the JSON state file `from` (with its journal) into a new
    /// database at `to` (which may be the same path). The old files are kept
    /// under [`kept_name`]; every object gets a history row (source
    /// `migrate FROM`). A state file that fails to load is left as it was.
    ///
    /// Safe against crashes and concurrent processes (of this and earlier
    /// versions, which lock `<from>.lock`): the database is built beside the
    /// target and renamed into place; the old file is first linked to its
    /// kept name, so at every moment one of the two holds every change.
    pub fn migrate(from: &Path, to: &Path) -> Result<Option<Migration>, DbError> {
        let fail = |why: String| DbError::Migrate {
            path: from.to_path_buf(),
            why,
        };
        let lock = crate::statefile::Locked::acquire(from)?;
        // Another process may have migrated it while this one waited.
        if kind_of(from).map_err(|e| fail(e.to_string()))? != Kind::Json {
            return Ok(None);
        }
        let store = lock.load()?.ok_or_else(|| fail("it vanished".into()))?;
        let tmp = crate::statefile::sibling(to, ".migrating");
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(crate::statefile::sibling(&tmp, "-journal"));
        {
            let conn = raw_connection(&tmp, false)?;
            create_schema(&conn, &tmp, store.replica(), false)?;
            let mut conn = conn;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| wrap(&tmp, "write", e))?;
            tx.execute(
                "INSERT INTO meta VALUES ('migrated_from', ?1)",
                params![from.display().to_string()],
            )
            .map_err(|e| wrap(&tmp, "write", e))?;
            let source = format!("migrate {}", from.display());
            let now = crate::clock::now_ms();
            for (name, o) in store.iter() {
                write_object(&tx, &tmp, store.replica(), name, o, None)?;
                insert_history(
                    &tx,
                    &tmp,
                    &HistoryRow {
                        time_ms: now,
                        source: Arc::from(source.as_str()),
                        name: Arc::from(name),
                        ty: o.ty(),
                        delta: state_text(o),
                        replicas: Arc::from(replicas_json(o.version().iter().map(|(r, _)| r))),
                        summary: crate::history::describe_merge(None, o, &VersionVector::new()),
                    },
                )?;
            }
            tx.commit().map_err(|e| wrap(&tmp, "write", e))?;
            // The database is whole in its file (rollback-journal mode):
            // it can be renamed.
        }
        let kept = kept_name(from);
        let io_fail = |what: &str, e: io::Error| fail(format!("{what}: {e}"));
        let mut kept_files = vec![kept.clone()];
        let _ = fs::remove_file(&kept);
        if from == to {
            fs::hard_link(from, &kept)
                .or_else(|_| fs::copy(from, &kept).map(|_| ()))
                .map_err(|e| io_fail("cannot keep the old file", e))?;
            sync_dir(from).map_err(|e| io_fail("cannot sync its directory", e))?;
            fs::rename(&tmp, to).map_err(|e| io_fail("cannot move the database into place", e))?;
        } else {
            fs::rename(&tmp, to).map_err(|e| io_fail("cannot move the database into place", e))?;
            sync_dir(to).map_err(|e| io_fail("cannot sync its directory", e))?;
            fs::rename(from, &kept).map_err(|e| io_fail("cannot keep the old file", e))?;
        }
        let journal = crate::statefile::journal_path(from);
        if journal.exists() {
            let kept_journal = kept_name(&journal);
            fs::rename(&journal, &kept_journal)
                .map_err(|e| io_fail("cannot keep the old journal", e))?;
            kept_files.push(kept_journal);
        }
        sync_dir(to).map_err(|e| io_fail("cannot sync its directory", e))?;
        let _ = fs::remove_file(crate::statefile::sibling(from, ".lock"));
        drop(lock);
        // WAL from here on.
        let conn = raw_connection(to, false)?;
        set_wal(&conn, to)?;
        Ok(Some(Migration {
            from: from.to_path_buf(),
            objects: store.len(),
            kept: kept_files,
        }))
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    fs::File::open(crate::statefile::parent_dir(path))?.sync_all()
}

fn wrap(path: &Path, doing: &'static str, source: rusqlite::Error) -> DbError {
    if is_damage(&source) {
        return DbError::Damaged {
            path: path.to_path_buf(),
            what: source.to_string(),
        };
    }
    DbError::Sqlite {
        path: path.to_path_buf(),
        doing,
        source,
    }
}

fn raw_connection(path: &Path, read_only: bool) -> Result<Connection, DbError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|source| DbError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The last process to close does not fold the WAL into the
        // database (that costs two more fsyncs per command); SQLite does it
        // every 1000 pages, and any reader reads the WAL.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        // synchronous = FULL: an exit 0 means the change is on disk.
        // wal_autocheckpoint = 0: SQLite's own checkpoints leave the WAL
        // file as it is, to be reused by the next writer of the same
        // process; here the next writer is another process, which reads
        // the whole WAL again. So checkpoints are [`tidy`]'s, which empty it.
        // cell_size_check: each page read is checked (crafted files).
        // cache_size: up to 64 MiB of pages (taken only as used): with
        // SQLite's 2 MiB, a large change (an import of 100,000 objects)
        // spilled pages to the WAL before its commit and wrote them again
        // (12% more writes, ~8% of its time).
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; PRAGMA cell_size_check = ON; PRAGMA cache_size = -65536;",
        )?;
        // A database from elsewhere (`import`, `--from`) is input like any
        // other: no triggers or views run, no schema functions, and SQLite's
        // checks for crafted files on (its "defense against the dark arts").
        use rusqlite::config::DbConfig;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
        Ok(())
    };
    setup().map_err(|e| wrap(path, "open", e))?;
    Ok(conn)
}

/// After a commit: a WAL grown past [`WAL_TRUNCATE_BYTES`] is folded into
/// the database and truncated. Every process is the first to open the
/// database, and the first reads the whole WAL to index it; SQLite's own
/// checkpoints (which rewind the WAL for the next writer of the same
/// process) would leave it growing, each checkpoint copying it all again.
/// Best effort: the change is committed already; a checkpoint that cannot
/// run now (a reader holds the WAL) runs after a later change.
fn tidy(conn: &Connection, path: &Path) {
    if fs::metadata(wal_path(path)).is_ok_and(|m| m.len() > WAL_TRUNCATE_BYTES) {
        // Without waiting: a command does not hang after its change
        // because another process writes or reads for long.
        let _ = conn.busy_timeout(Duration::ZERO);
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
    }
}

mod change;
mod log;
mod rows;
mod schema;
#[cfg(test)]
mod tests;

use change::*;
pub use change::{Change, Spent};
pub use log::{Entry, LogQuery, Moment};
use rows::*;
use schema::*;

//! Creating a replica's tables, and checking a file is one before any use.

use super::*;

pub(super) fn set_wal(conn: &Connection, path: &Path) -> Result<(), DbError> {
    // Setting WAL needs a moment alone with the file, and SQLite does not
    // wait for it: processes creating one replica together take turns here.
    let start = std::time::Instant::now();
    let mode: String = loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => break other.map_err(|e| wrap(path, "open", e))?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::NotReplica {
            path: path.to_path_buf(),
            why: format!("its journal mode is {mode}, and WAL could not be set"),
        });
    }
    Ok(())
}

/// True for a database without any table yet (no replica in it).
pub(super) fn is_blank(conn: &Connection, path: &Path) -> Result<bool, DbError> {
    let err = |e| wrap(path, "read", e);
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(err)?;
    Ok(version == 0 && tables == 0)
}

/// Creates the tables in an empty database (another process may have done
/// it meanwhile: then nothing happens).
pub(super) fn create_schema(
    conn: &Connection,
    path: &Path,
    replica: &ReplicaId,
    wal: bool,
) -> Result<(), DbError> {
    if wal {
        set_wal(conn, path)?;
    }
    let err = |e| wrap(path, "create", e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    if is_blank(conn, path)? {
        let created = (|| {
            conn.execute_batch(SCHEMA)?;
            conn.execute(
                "INSERT INTO meta VALUES ('format', ?1), ('version', ?2), ('replica', ?3)",
                params![FORMAT, SCHEMA_VERSION.to_string(), replica.as_str()],
            )?;
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            conn.execute_batch("COMMIT")
        })();
        if let Err(e) = created {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(err(e));
        }
    } else {
        conn.execute_batch("COMMIT").map_err(err)?;
    }
    Ok(())
}

/// Checks what a replica database must have; returns its replica id and
/// schema version.
pub(super) fn check_schema(conn: &Connection, path: &Path) -> Result<(ReplicaId, i32), DbError> {
    check_schema_or_blank(conn, path)?.ok_or_else(|| DbError::NotReplica {
        path: path.to_path_buf(),
        why: "it has no tables".into(),
    })
}

/// [`check_schema`], or `None` for a database without any table yet.
/// Every command runs it: few statements.
pub(super) fn check_schema_or_blank(
    conn: &Connection,
    path: &Path,
) -> Result<Option<(ReplicaId, i32)>, DbError> {
    let not = |why: String| DbError::NotReplica {
        path: path.to_path_buf(),
        why,
    };
    let err = |e| wrap(path, "read", e);
    // One read transaction: its reads see one moment of the file. Read one
    // by one, a process creating the replica meanwhile could commit between
    // them (the header read before, the tables after: "another application").
    let _snapshot = conn.unchecked_transaction().map_err(err)?;
    let (app, version): (i32, i32) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id),
                    (SELECT user_version FROM pragma_user_version)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(err)?;
    let mut stmt = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_schema")
        .map_err(err)?;
    let found: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(err)?;
    if version == 0 && found.is_empty() {
        return Ok(None);
    }
    if app != APPLICATION_ID {
        return Err(not(format!(
            "it is an SQLite database of another application (application_id {app:#x})"
        )));
    }
    check_tables(path, version, &found)?;
    read_meta(conn, path, version).map(|r| Some((r, version)))
}

/// Exactly the tables and indexes schema `version` has: nothing else (a
/// view or a trigger in their place, another index) runs or is read.
fn check_tables(
    path: &Path,
    version: i32,
    found: &[(String, String, String)],
) -> Result<(), DbError> {
    let not = |why: String| DbError::NotReplica {
        path: path.to_path_buf(),
        why,
    };
    let v1 = schema_v1();
    let schema = match version {
        1 => v1.as_str(),
        SCHEMA_VERSION => SCHEMA,
        _ => {
            return Err(not(format!(
                "its schema version is {version}; this build reads versions 1 to {SCHEMA_VERSION}"
            )));
        }
    };
    let expected: Vec<(&str, &str)> = schema
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            (
                if t.starts_with("CREATE INDEX") {
                    "index"
                } else {
                    "table"
                },
                t,
            )
        })
        .collect();
    for (kind, name, sql) in found {
        if !expected.contains(&(kind.as_str(), sql.as_str())) {
            return Err(not(format!(
                "its schema has {kind} {name:?}, which a crdt replica does not have"
            )));
        }
    }
    if found.len() != expected.len() {
        return Err(not(format!(
            "its schema has {} tables and indexes, not the {} of a crdt replica",
            found.len(),
            expected.len()
        )));
    }
    Ok(())
}

/// The replica id in `meta`, with its format and `version` checked.
fn read_meta(conn: &Connection, path: &Path, version: i32) -> Result<ReplicaId, DbError> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT key, value FROM meta WHERE key IN ('format', 'version', 'replica')")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| {
            if matches!(e, rusqlite::Error::SqliteFailure(..)) && !is_damage(&e) {
                DbError::Damaged {
                    path: path.to_path_buf(),
                    what: format!("its meta table cannot be read: {e}"),
                }
            } else {
                wrap(path, "read", e)
            }
        })?;
    let meta = |key: &str| -> Result<Option<String>, DbError> {
        Ok(rows.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    };
    let damaged = |what: String| DbError::Damaged {
        path: path.to_path_buf(),
        what,
    };
    match meta("format")? {
        Some(f) if f == FORMAT => {}
        other => {
            return Err(damaged(format!(
                "meta.format is {other:?}, expected {FORMAT:?}"
            )));
        }
    }
    match meta("version")? {
        Some(v) if v == version.to_string() => {}
        other => {
            return Err(damaged(format!(
                "meta.version is {other:?}, expected \"{version}\""
            )));
        }
    }
    let replica = meta("replica")?.ok_or_else(|| damaged("meta.replica is missing".into()))?;
    ReplicaId::new(replica).map_err(|e| damaged(format!("meta.replica: {e}")))
}

/// Upgrades a version 1 database to this build's schema, in one
/// transaction (another process may have done it meanwhile).
pub(super) fn upgrade(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let err = |e| wrap(path, "upgrade", e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let done = (|| {
        let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 1 {
            conn.execute_batch(UPGRADE_FROM_1)?;
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'version'",
                params![SCHEMA_VERSION.to_string()],
            )?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        conn.execute_batch("COMMIT")
    })();
    if let Err(e) = done {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(err(e));
    }
    Ok(())
}

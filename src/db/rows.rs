//! Object rows: read and checked like a snapshot, written in its format.

use super::*;

pub(super) fn decode_row(
    path: &Path,
    row: &rusqlite::Row<'_>,
) -> Result<(String, Object), DbError> {
    let text = |i: usize| -> Result<String, DbError> {
        row.get::<_, String>(i).map_err(|e| DbError::Damaged {
            path: path.to_path_buf(),
            what: format!("a row of objects holds something other than text: {e}"),
        })
    };
    let (name, ty, state) = (text(0)?, text(1)?, text(2)?);
    let place = format!("{name:?} ({ty})");
    let (_, o) = snapshot::decode_state_text(&name, &ty, &state, "state").map_err(|source| {
        DbError::Row {
            path: path.to_path_buf(),
            row: place,
            source,
        }
    })?;
    Ok((name, o))
}

/// The objects `filter` (an SQL condition on `name`, with `args`) selects,
/// each checked as it is decoded.
pub(super) fn rows_where(
    conn: &Connection,
    path: &Path,
    filter: &str,
    args: &[&str],
) -> Result<Vec<(String, Object)>, DbError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT name, type, state FROM objects WHERE {filter}"
        ))
        .map_err(|e| wrap(path, "read", e))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(|e| wrap(path, "read", e))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| wrap(path, "read", e))? {
        out.push(decode_row(path, row)?);
    }
    Ok(out)
}

pub(super) fn rows_of(
    conn: &Connection,
    path: &Path,
    name: &str,
) -> Result<Vec<(String, Object)>, DbError> {
    rows_where(conn, path, "name = ?1", &[name])
}

/// The objects whose names start with `prefix`.
pub(super) fn rows_in(
    conn: &Connection,
    path: &Path,
    prefix: &str,
) -> Result<Vec<(String, Object)>, DbError> {
    // [prefix, prefix with its last byte + 1): names are UTF-8 and `:` is ASCII.
    let mut upper = prefix.as_bytes().to_vec();
    if let Some(last) = upper.last_mut() {
        *last += 1;
    }
    let upper = String::from_utf8(upper).unwrap_or_default();
    rows_where(conn, path, "name >= ?1 AND name < ?2", &[prefix, &upper])
}

/// The last seq this replica gave each object (of `name`, or all).
pub(super) fn issued_where(
    conn: &Connection,
    path: &Path,
    name: Option<&str>,
) -> Result<HashMap<(String, CrdtType), u64>, DbError> {
    let err = |e| wrap(path, "read", e);
    let (sql, args): (&str, Vec<&str>) = match name {
        Some(n) => (
            "SELECT name, type, seq FROM issued WHERE name = ?1",
            vec![n],
        ),
        None => ("SELECT name, type, seq FROM issued", vec![]),
    };
    let mut stmt = conn.prepare_cached(sql).map_err(err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(err)?;
    let mut out = HashMap::new();
    for row in rows {
        let (n, ty, seq) = row.map_err(err)?;
        if let Ok(ty) = ty.parse() {
            out.insert((n, ty), seq.max(0) as u64);
        }
    }
    Ok(out)
}

pub(super) fn state_text(o: &Object) -> String {
    let mut s = String::new();
    o.write_state(&mut s);
    s
}

pub(super) fn replicas_json<'a>(replicas: impl Iterator<Item = &'a ReplicaId>) -> String {
    let list: Vec<&str> = replicas.map(ReplicaId::as_str).collect();
    serde_json::to_string(&list).expect("strings serialize")
}

/// Writes an object's row, and raises `issued` to the last event of
/// `replica` it holds.
pub(super) fn write_object(
    tx: &Connection,
    path: &Path,
    replica: &ReplicaId,
    name: &str,
    o: &Object,
    text: Option<&str>,
) -> Result<(), DbError> {
    let err = |e| wrap(path, "write", e);
    let owned;
    let text = match text {
        Some(t) => t,
        None => {
            owned = state_text(o);
            &owned
        }
    };
    tx.prepare_cached("INSERT OR REPLACE INTO objects (name, type, state) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![name, o.ty().as_str(), text]))
        .map_err(err)?;
    let own = o.max_seq(replica);
    if own > 0 {
        tx.prepare_cached(
            "INSERT INTO issued (name, type, seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, type) DO UPDATE SET seq = max(seq, excluded.seq)",
        )
        .and_then(|mut s| s.execute(params![name, o.ty().as_str(), own as i64]))
        .map_err(err)?;
    }
    Ok(())
}

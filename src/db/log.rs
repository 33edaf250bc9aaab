//! Reading the history: the changes applied here (`crdt log`), and the
//! objects as they were at a moment (time travel: the deltas up to it,
//! merged).

use super::*;
use serde_json::Value;

/// One history row, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Its position in the history (`@N`): increasing, never reused.
    pub id: u64,
    pub time_ms: u64,
    /// `local`, `batch`, `import FILE`, `sync URL`, `migrate FILE`, `trim`.
    pub source: String,
    pub name: String,
    pub ty: CrdtType,
    /// What it brought, as a delta.
    pub delta: Object,
    /// The replicas whose new events it brought.
    pub replicas: Vec<ReplicaId>,
    /// What it did in the type's words; empty when nothing visible.
    pub summary: String,
}

/// Which rows [`Db::log`] reads.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// Names or namespaces (`metrics`, `metrics:`); all when empty.
    pub select: Vec<String>,
    /// Rows at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// Rows at or before this time.
    pub until: Option<u64>,
    /// Rows that brought events of this replica.
    pub replica: Option<ReplicaId>,
    /// The newest this many.
    pub limit: Option<usize>,
}

/// A moment of the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// Just after the row at this position (`@N`).
    Position(u64),
    /// Every row recorded at or before this time (ms since the epoch).
    Time(u64),
}

/// The SQL condition that selects the names `patterns` select (see
/// [`crate::store::selects`]), and its arguments.
fn name_filter(patterns: &[String]) -> (String, Vec<String>) {
    name_filter_after(patterns, 0)
}

/// [`name_filter`] with its parameters numbered after `before` others.
fn name_filter_after(patterns: &[String], before: usize) -> (String, Vec<String>) {
    if patterns.is_empty() {
        return ("1".into(), Vec::new());
    }
    let mut parts = Vec::new();
    let mut args = Vec::new();
    for p in patterns {
        let exact = p.trim_end_matches(':');
        let ns = format!("{exact}:");
        let mut upper = ns.as_bytes().to_vec();
        *upper.last_mut().expect("ends with ':'") += 1;
        let n = before + args.len();
        if p.ends_with(':') {
            parts.push(format!("(name >= ?{} AND name < ?{})", n + 1, n + 2));
        } else {
            parts.push(format!(
                "(name = ?{} OR (name >= ?{} AND name < ?{}))",
                n + 3,
                n + 1,
                n + 2
            ));
        }
        args.push(ns);
        args.push(String::from_utf8(upper).expect("':' + 1 is ';'"));
        if !p.ends_with(':') {
            args.push(exact.to_string());
        }
    }
    (format!("({})", parts.join(" OR ")), args)
}

fn decode_entry(path: &Path, row: &rusqlite::Row<'_>) -> Result<Entry, DbError> {
    let damaged = |what: String| DbError::Damaged {
        path: path.to_path_buf(),
        what,
    };
    let id: i64 = row
        .get(0)
        .map_err(|e| damaged(format!("history id: {e}")))?;
    let at = |field: &str, e: rusqlite::Error| damaged(format!("history row @{id}, {field}: {e}"));
    let time: i64 = row.get(1).map_err(|e| at("time_ms", e))?;
    let source: String = row.get(2).map_err(|e| at("source", e))?;
    let name: String = row.get(3).map_err(|e| at("name", e))?;
    let ty: String = row.get(4).map_err(|e| at("type", e))?;
    let delta: String = row.get(5).map_err(|e| at("delta", e))?;
    let replicas: String = row.get(6).map_err(|e| at("replicas", e))?;
    let summary: String = row.get(7).map_err(|e| at("summary", e))?;
    let (ty, delta) =
        snapshot::decode_delta_text(&name, &ty, &delta, "delta").map_err(|source| {
            DbError::Row {
                path: path.to_path_buf(),
                row: format!("{name:?} in history row @{id}"),
                source,
            }
        })?;
    let ids: Vec<String> = serde_json::from_str(&replicas)
        .map_err(|e| damaged(format!("history row @{id}, replicas: {e}")))?;
    let replicas = ids
        .into_iter()
        .map(|r| {
            ReplicaId::new(r).map_err(|e| damaged(format!("history row @{id}, replicas: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if time < 0 || id < 0 {
        return Err(damaged(format!("history row @{id}: a negative time or id")));
    }
    Ok(Entry {
        id: id as u64,
        time_ms: time as u64,
        source,
        name,
        ty,
        delta,
        replicas,
        summary,
    })
}

/// What [`fold_into`] merged into one object.
#[derive(Debug, Default)]
pub(super) struct Folded {
    pub(super) rows: u64,
    pub(super) last_id: u64,
    pub(super) last_time: u64,
    pub(super) replicas: BTreeSet<ReplicaId>,
}

/// Per object, what [`fold_into`] merged.
pub(super) type FoldedRows = BTreeMap<(String, CrdtType), Folded>;

/// Merges into `store` (which may hold objects already: checkpoints) the
/// deltas of the history rows `sql` selects (`name, type, delta, id,
/// time_ms, replicas`, oldest first), each checked: the first row of an
/// object holds it whole; a later one may refer to what earlier ones
/// brought, and must fit them.
pub(super) fn fold_into(
    conn: &Connection,
    path: &Path,
    store: &mut Store,
    sql: &str,
    args: &[String],
) -> Result<FoldedRows, DbError> {
    let read = |e| wrap(path, "read the history of", e);
    let mut stmt = conn.prepare_cached(sql).map_err(read)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(read)?;
    let mut folded = FoldedRows::new();
    while let Some(row) = rows.next().map_err(read)? {
        let id: i64 = row.get(3).map_err(read)?;
        let damaged = |what: String| DbError::Damaged {
            path: path.to_path_buf(),
            what: format!("history row @{id}: {what}"),
        };
        let text = |i: usize| -> Result<String, DbError> {
            row.get::<_, String>(i).map_err(|e| damaged(e.to_string()))
        };
        let (name, ty) = (text(0)?, text(1)?);
        let as_row = |source| DbError::Row {
            path: path.to_path_buf(),
            row: format!("{name:?} in history row @{id}"),
            source,
        };
        let held = ty.parse().ok().and_then(|t| store.get(&name, t));
        let (ty, delta) = match held {
            None => snapshot::decode_state_text(&name, &ty, &text(2)?, "delta").map_err(as_row)?,
            Some(o) => {
                let (t, d) =
                    snapshot::decode_delta_text(&name, &ty, &text(2)?, "delta").map_err(as_row)?;
                o.check_merge(&d).map_err(|why| {
                    damaged(format!("its delta does not fit the rows before it: {why}"))
                })?;
                (t, d)
            }
        };
        store.merge_object(&name, &delta);
        let time: i64 = row.get(4).map_err(read)?;
        let ids: Vec<String> =
            serde_json::from_str(&text(5)?).map_err(|e| damaged(format!("replicas: {e}")))?;
        let f = folded.entry((name, ty)).or_default();
        f.rows += 1;
        f.last_id = f.last_id.max(id.max(0) as u64);
        f.last_time = f.last_time.max(time.max(0) as u64);
        for r in ids {
            f.replicas
                .insert(ReplicaId::new(r).map_err(|e| damaged(format!("replicas: {e}")))?);
        }
    }
    Ok(folded)
}

/// Up to this many objects, [`Db::load_at`] reads each from its last
/// checkpoint (a few queries each); above, all their rows in one pass.
const PER_OBJECT: usize = 1000;

/// Up to this many names, [`Db::log`] reads each name's newest rows by the
/// index; above, it walks the history from the newest row.
const PER_NAME: usize = 200;

impl Db {
    /// `history.summary`, or an empty text in a version 1 database.
    fn summary_column(&self) -> &'static str {
        if self.version >= 2 { "summary" } else { "''" }
    }

    /// The history rows `q` selects, newest first.
    pub fn log(&self, q: &LogQuery) -> Result<Vec<Entry>, DbError> {
        let mut all = Vec::new();
        self.log_each(q, |e| {
            all.push(e);
            Ok::<_, DbError>(())
        })?;
        Ok(all)
    }

    /// [`Db::log`], each entry handed to `f` as it is read (a history of
    /// a million rows is not held in memory at once).
    pub fn log_each<E: From<DbError>>(
        &self,
        q: &LogQuery,
        f: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut args = Vec::new();
        let mut cond = Vec::new();
        let mut arg = |v: String, sql: &str| {
            args.push(v);
            cond.push(sql.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = q.since {
            arg(t.to_string(), "time_ms >= CAST(? AS INTEGER)");
        }
        if let Some(t) = q.until {
            arg(t.to_string(), "time_ms <= CAST(? AS INTEGER)");
        }
        if let Some(r) = &q.replica {
            arg(
                Value::from(r.as_str()).to_string(),
                "instr(replicas, ?) > 0",
            );
        }
        let limit = q.limit.map_or(String::new(), |n| format!(" LIMIT {n}"));
        let cols = format!(
            "id, time_ms, source, name, type, delta, replicas, {}",
            self.summary_column()
        );
        // A few names: one query each (the index by name finds its newest
        // rows at once), merged newest first. Many: one walk from the
        // newest row (`+name`: not by the index, which would sort them all).
        let mut terms = Vec::new();
        let names = match q.select.is_empty() {
            true => None,
            false => self.objects_selected(&q.select, PER_NAME)?,
        };
        match names {
            Some(list) => {
                let mut list: Vec<String> = list.into_iter().map(|(n, _)| n).collect();
                list.dedup();
                for n in list {
                    args.push(n);
                    terms.push(format!("name = ?{}", args.len()));
                }
                if terms.is_empty() {
                    return Ok(());
                }
            }
            None => {
                let (names, more) = name_filter_after(&q.select, args.len());
                args.extend(more);
                terms.push(names.replace("name", "+name"));
            }
        }
        let rest: String = cond.iter().map(|c| format!(" AND {c}")).collect();
        let arms: Vec<String> = terms
            .iter()
            .map(|t| {
                format!(
                    "SELECT * FROM (SELECT {cols} FROM history WHERE {t}{rest} ORDER BY id DESC{limit})"
                )
            })
            .collect();
        let sql = format!("{} ORDER BY 1 DESC{limit}", arms.join(" UNION "));
        self.each_entry(&sql, &args, f)
    }

    fn entries(&self, sql: &str, args: &[String]) -> Result<Vec<Entry>, DbError> {
        let mut out = Vec::new();
        self.each_entry(sql, args, |e| {
            out.push(e);
            Ok::<_, DbError>(())
        })?;
        Ok(out)
    }

    fn each_entry<E: From<DbError>>(
        &self,
        sql: &str,
        args: &[String],
        mut f: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let read = self.sqlite_err("read the history of");
        let mut stmt = self.conn.prepare(sql).map_err(&read)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args))
            .map_err(&read)?;
        while let Some(row) = rows.next().map_err(&read)? {
            f(decode_entry(&self.path, row)?)?;
        }
        Ok(())
    }

    /// Every history row of the objects named `name`, oldest first.
    pub fn entries_of(&self, name: &str) -> Result<Vec<Entry>, DbError> {
        let sql = format!(
            "SELECT id, time_ms, source, name, type, delta, replicas, {} FROM history \
             WHERE name = ?1 ORDER BY id",
            self.summary_column()
        );
        self.entries(&sql, &[name.to_string()])
    }

    /// The history row at position `id`, if any.
    pub fn entry(&self, id: u64) -> Result<Option<Entry>, DbError> {
        let sql = format!(
            "SELECT id, time_ms, source, name, type, delta, replicas, {} FROM history WHERE id = ?1",
            self.summary_column()
        );
        Ok(self.entries(&sql, &[id.to_string()])?.pop())
    }

    /// The position of the last history row recorded at or before `time`
    /// (0: none). Times never go back along the history (see
    /// [`Db::change`]), so a binary search finds it.
    pub fn position_at(&self, time: u64) -> Result<u64, DbError> {
        let read = self.sqlite_err("read the history of");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, time_ms FROM history WHERE id >= ?1 ORDER BY id LIMIT 1")
            .map_err(&read)?;
        let mut first_from = |id: u64| -> Result<Option<(u64, u64)>, DbError> {
            stmt.query_row([id as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get::<_, i64>(1)?.max(0) as u64,
                ))
            })
            .optional()
            .map_err(&read)
        };
        // Rows up to `lo` are at or before `time`; rows from `hi` are after.
        let (mut lo, mut hi) = (0, self.last_history_id()? + 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match first_from(mid)? {
                Some((id, t)) if id < hi && t <= time => lo = id,
                _ => hi = mid,
            }
        }
        Ok(lo)
    }

    /// The objects `select` picks (all when empty) as this replica had
    /// them at `at`: each object's last checkpoint up to then and the
    /// deltas recorded after it, merged. Names with no row up to then are
    /// absent (they did not exist yet).
    pub fn load_at(&self, select: &[String], at: Moment) -> Result<Store, DbError> {
        let upto = match at {
            Moment::Position(n) => n,
            Moment::Time(t) => self.position_at(t)?,
        };
        let cols = "SELECT name, type, delta, id, time_ms, replicas FROM history";
        let mut store = Store::new(self.replica.clone());
        let objects = match self.objects_selected(select, PER_OBJECT)? {
            Some(list) if self.version >= 2 => list,
            // Many objects: one pass over their rows, from the start.
            _ => {
                let (names, mut args) = name_filter(select);
                args.push(upto.to_string());
                let sql = format!(
                    "{cols} WHERE {names} AND id <= CAST(?{} AS INTEGER) ORDER BY id",
                    args.len()
                );
                fold_into(&self.conn, &self.path, &mut store, &sql, &args)?;
                return Ok(store);
            }
        };
        // Few objects: each from its last checkpoint up to then.
        let read = self.sqlite_err("read the checkpoints of");
        let mut cp = self
            .conn
            .prepare_cached(
                "SELECT id, state FROM checkpoints WHERE name = ?1 AND type = ?2 AND id <= ?3
                 ORDER BY id DESC LIMIT 1",
            )
            .map_err(&read)?;
        for (name, ty) in objects {
            let found: Option<(i64, String)> = cp
                .query_row(params![name, ty.as_str(), upto as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(&read)?;
            let mut from = 0;
            if let Some((id, state)) = found {
                let (_, o) = snapshot::decode_state_text(&name, ty.as_str(), &state, "state")
                    .map_err(|source| DbError::Row {
                        path: self.path.clone(),
                        row: format!("{name:?} in checkpoint @{id}"),
                        source,
                    })?;
                store.insert_object(&name, o);
                from = id.max(0) as u64;
            }
            fold_into(
                &self.conn,
                &self.path,
                &mut store,
                &format!(
                    "{cols} WHERE name = ?1 AND type = ?2 AND id > ?3 AND id <= ?4 ORDER BY id"
                ),
                &[
                    name,
                    ty.as_str().to_string(),
                    from.to_string(),
                    upto.to_string(),
                ],
            )?;
        }
        Ok(store)
    }

    /// The objects (name, type) `select` picks (all when empty), from the
    /// objects table; `None` when there are more than `limit`.
    fn objects_selected(
        &self,
        select: &[String],
        limit: usize,
    ) -> Result<Option<Vec<(String, CrdtType)>>, DbError> {
        let (names, args) = name_filter(select);
        let read = self.sqlite_err("read the object names of");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT name, type FROM objects WHERE {names} ORDER BY name, type LIMIT {}",
                limit + 1
            ))
            .map_err(&read)?;
        let rows: Vec<(String, String)> = stmt
            .query_map(rusqlite::params_from_iter(&args), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(&read)?
            .collect::<Result<_, _>>()
            .map_err(&read)?;
        if rows.len() > limit {
            return Ok(None);
        }
        Ok(Some(
            rows.into_iter()
                .filter_map(|(n, t)| Some((n, t.parse().ok()?)))
                .collect(),
        ))
    }

    /// The first history row of `name`, if any: when it came to exist
    /// here (its position, time and source).
    pub fn first_entry_of(&self, name: &str) -> Result<Option<(u64, u64, String)>, DbError> {
        self.conn
            .query_row(
                "SELECT id, time_ms, source FROM history WHERE name = ?1 ORDER BY id LIMIT 1",
                [name],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                        r.get(2)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sqlite_err("read the history of"))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn names_select_as_stores_do() {
        let (sql, args) = name_filter(&["metrics".into(), "tasks:".into()]);
        assert_eq!(
            sql,
            "((name = ?3 OR (name >= ?1 AND name < ?2)) OR (name >= ?4 AND name < ?5))"
        );
        assert_eq!(
            args,
            ["metrics:", "metrics;", "metrics", "tasks:", "tasks;"]
        );
    }
}

//! A change: one transaction that loads objects, applies, records
//! history rows and commits whole or not at all.

use super::*;

/// One history row, not written yet.
pub(super) struct HistoryRow {
    pub(super) time_ms: u64,
    pub(super) source: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) ty: CrdtType,
    pub(super) delta: String,
    pub(super) replicas: Arc<str>,
    /// What it did, in the type's words (see [`crate::history`]).
    pub(super) summary: String,
}

/// Time travel merges the deltas after an object's last checkpoint (a
/// copy of its state at a history row): one is written once this many rows
/// of it came after the last...
const CHECKPOINT_ROWS: u64 = if cfg!(test) { 3 } else { 3000 };
/// ...and their deltas are this many times the last checkpoint's size. So
/// time travel merges at most about that many bytes of deltas, and the
/// checkpoints cost about 1/CHECKPOINT_GROWTH of the deltas again.
const CHECKPOINT_GROWTH: u64 = 2;

/// A checkpoint to write with the history row it follows.
pub(super) struct Checkpoint {
    /// Index of its row in [`Change::rows`].
    pub(super) row: usize,
    pub(super) name: Arc<str>,
    pub(super) ty: CrdtType,
    pub(super) state: String,
}

/// How far an object is from its last checkpoint.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SinceCheckpoint {
    pub(super) rows: u64,
    pub(super) bytes: u64,
    /// The size of the last checkpoint's state.
    pub(super) size: u64,
}

impl SinceCheckpoint {
    /// Read from the database: its tally, else (an object without one:
    /// new, upgraded or trimmed) the rows after its last checkpoint.
    fn read(tx: &Connection, path: &Path, name: &str, ty: CrdtType) -> Result<Self, DbError> {
        let err = |e| wrap(path, "read", e);
        let kept: Option<(i64, i64, i64)> = tx
            .prepare_cached("SELECT rows, bytes, size FROM tally WHERE name = ?1 AND type = ?2")
            .and_then(|mut s| {
                s.query_row(params![name, ty.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .map_err(err)?;
        if let Some((rows, bytes, size)) = kept {
            return Ok(SinceCheckpoint {
                rows: rows.max(0) as u64,
                bytes: bytes.max(0) as u64,
                size: size.max(0) as u64,
            });
        }
        // Prepared once per change: an import asks for every object.
        let (id, size): (i64, i64) = tx
            .prepare_cached(
                "SELECT coalesce(max(id), 0), coalesce(length(state), 0) FROM checkpoints
                 WHERE name = ?1 AND type = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![name, ty.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            })
            .map_err(err)?;
        let (rows, bytes): (i64, i64) = tx
            .prepare_cached(
                "SELECT count(*), coalesce(sum(length(delta)), 0) FROM history
                 WHERE name = ?1 AND id > ?2 AND type = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![name, id, ty.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .map_err(err)?;
        Ok(SinceCheckpoint {
            rows: rows.max(0) as u64,
            bytes: bytes.max(0) as u64,
            size: size.max(0) as u64,
        })
    }

    /// Counts a row of `bytes`; true when a checkpoint is due after it.
    fn add(&mut self, bytes: usize) -> bool {
        self.rows += 1;
        self.bytes += bytes as u64;
        self.rows >= CHECKPOINT_ROWS && self.bytes >= CHECKPOINT_GROWTH * self.size
    }

    fn reset(&mut self, size: usize) {
        *self = SinceCheckpoint {
            rows: 0,
            bytes: 0,
            size: size as u64,
        };
    }
}

/// Inserts rows with one statement, prepared once, and the checkpoints
/// that follow them (at the id each row got).
pub(super) fn insert_history_rows(
    tx: &Connection,
    path: &Path,
    rows: &[HistoryRow],
) -> Result<(), DbError> {
    insert_history_with(tx, path, rows, &[])
}

pub(super) fn insert_history_with(
    tx: &Connection,
    path: &Path,
    rows: &[HistoryRow],
    checkpoints: &[Checkpoint],
) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO history (time_ms, source, name, type, delta, replicas, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(|e| wrap(path, "write", e))?;
    let mut cp = tx
        .prepare_cached("INSERT INTO checkpoints (name, type, id, state) VALUES (?1, ?2, ?3, ?4)")
        .map_err(|e| wrap(path, "write", e))?;
    let mut next = checkpoints.iter().peekable();
    for (i, row) in rows.iter().enumerate() {
        stmt.execute(params![
            row.time_ms as i64,
            &*row.source,
            &*row.name,
            row.ty.as_str(),
            row.delta,
            &*row.replicas,
            row.summary
        ])
        .map_err(|e| wrap(path, "write", e))?;
        while let Some(c) = next.next_if(|c| c.row == i) {
            cp.execute(params![
                &*c.name,
                c.ty.as_str(),
                tx.last_insert_rowid(),
                c.state
            ])
            .map_err(|e| wrap(path, "write", e))?;
        }
    }
    Ok(())
}

pub(super) fn insert_history(
    tx: &Connection,
    path: &Path,
    row: &HistoryRow,
) -> Result<(), DbError> {
    insert_history_rows(tx, path, std::slice::from_ref(row))
}

/// A batch's lines that edit one text one after another get a history row
/// each up to this many; the rest of such a run is one row (see
/// [`Change::fold_runs`]).
pub(super) const FOLD_AFTER: usize = if cfg!(test) { 2 } else { 16 };

/// The run of recorded changes to one object that a batch is in.
pub(super) struct Run {
    pub(super) key: (String, CrdtType),
    /// Its changes so far, with a row or folded.
    pub(super) lines: usize,
    /// The first and last batch lines applied without a row of their own,
    /// to be recorded as one ([`Change::flush_run`]).
    pub(super) folded: Option<(usize, usize)>,
}

/// What an object was when loaded into a change.
#[derive(Default)]
pub(super) struct Base {
    /// Its version at the last history row recorded (or at load).
    pub(super) mark: VersionVector,
    /// This replica's last event in it at that point.
    pub(super) own: u64,
    /// The last seq this replica gave an event of it (`issued`).
    pub(super) issued: u64,
    /// The object at that point, for the summary of a merge (kept when
    /// [`Change::merging`] asked, and not for texts, whose summary needs
    /// only `mark`).
    /// (Shared with the store until either changes it.)
    pub(super) before: Option<Arc<Object>>,
    /// Read at its first row in this change.
    pub(super) since_checkpoint: Option<SinceCheckpoint>,
    /// Not in the database before this change, and its one row holds it
    /// whole: it needs no tally (reading one without it counts that row).
    pub(super) new_whole: bool,
}

/// What a committed change held: its objects and rows. Dropping it frees
/// them; a process about to exit may `std::mem::forget` it instead (freeing
/// the 100,000 objects of an import one by one is a tenth of its time).
pub struct Spent {
    _store: Store,
    _base: HashMap<(String, CrdtType), Base>,
    _rows: Vec<HistoryRow>,
    _touched: BTreeMap<(String, CrdtType), Option<usize>>,
}

/// One change to the replica: a transaction holding the write lock, with
/// the objects it loaded. Record each change (`record`, `record_merges`),
/// then [`Change::commit`]; dropped, it changes nothing.
pub struct Change<'a> {
    pub(super) tx: rusqlite::Transaction<'a>,
    pub(super) conn: &'a Connection,
    pub(super) path: &'a Path,
    pub(super) store: Store,
    pub(super) all: bool,
    pub(super) loaded: HashSet<String>,
    pub(super) base: HashMap<(String, CrdtType), Base>,
    pub(super) rows: Vec<HistoryRow>,
    /// The objects to write; `Some(i)`: history row `i`'s delta is the
    /// object's whole state (a new object), written once for both.
    pub(super) touched: BTreeMap<(String, CrdtType), Option<usize>>,
    /// The object recorded last, and its name shared by its history rows.
    pub(super) last: Option<((String, CrdtType), Arc<str>)>,
    /// `["<this replica>"]`, the `replicas` of a local change's rows.
    pub(super) me_json: Arc<str>,
    pub(super) source: Arc<str>,
    pub(super) time_ms: u64,
    /// Keep each loaded object as it was (see [`Base::before`]).
    pub(super) merging: bool,
    /// Checkpoints to write, in the order of their rows.
    pub(super) checkpoints: Vec<Checkpoint>,
    /// Long runs of text edits are folded ([`Change::fold_runs`]).
    pub(super) fold: bool,
    pub(super) run: Option<Run>,
    /// The store was lent out ([`Change::store_mut`]) since
    /// [`Change::record_merges`] last looked: the commit looks again.
    pub(super) unrecorded: bool,
}

impl Change<'_> {
    pub fn replica(&self) -> &ReplicaId {
        self.store.replica()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The loaded objects, to change. Each change must be recorded.
    pub fn store_mut(&mut self) -> &mut Store {
        self.unrecorded = true;
        &mut self.store
    }

    /// This change merges (an import, a sync): objects loaded from now on
    /// are also kept as they were, so that the history says what each
    /// merge brought (`+3`, `add "x"`).
    pub fn merging(&mut self) {
        self.merging = true;
    }

    /// This change is a batch: after [`FOLD_AFTER`] lines in a row that
    /// edit one text, each with its history row, the run's further lines
    /// are applied with [`Store::apply_untracked`] and recorded with
    /// [`Change::record_folded`]: one row for them all, its delta and
    /// summary made from the text before and after them. (A row per
    /// keystroke of a replayed editing trace cost a batch of 260,000 lines
    /// 1.5 s and 78 MB of history for a 180 KB text.)
    pub fn fold_runs(&mut self) {
        self.fold = true;
    }

    /// True when an edit of the text `name` is to be applied untracked and
    /// recorded with [`Change::record_folded`]: folding is on, the changes
    /// just before were [`FOLD_AFTER`] or more to that text, and `name` has
    /// no other live object (so a text edit lands on that one).
    pub fn folds(&self, name: &str) -> bool {
        let Some(run) = self.run.as_ref().filter(|_| self.fold) else {
            return false;
        };
        if run.folded.is_some() {
            // Checked at its first folded line; only folded lines (and
            // lines that change nothing) came since.
            return run.key.0 == name;
        }
        run.key.0 == name
            && run.key.1 == CrdtType::Rga
            && run.lines >= FOLD_AFTER
            && self
                .store
                .objects_of(name)
                .all(|o| o.ty() == CrdtType::Rga || o.is_deleted())
    }

    /// Records batch line `line`, a text edit applied untracked to the run's
    /// text (when [`Change::folds`] said so; otherwise a programming error).
    pub fn record_folded(&mut self, name: &str, line: usize) {
        let run = self.run.as_mut().expect("folds() said so");
        debug_assert_eq!(run.key.0, name);
        run.lines += 1;
        run.folded = Some(match run.folded {
            Some((first, _)) => (first, line),
            None => (line, line),
        });
        if let Some(whole) = self.touched.get_mut(&run.key) {
            *whole = None;
        }
    }

    /// Records the run's folded lines as one row: what the text gained since
    /// its last row, in the type's words, with the lines it covers. A batch
    /// calls it before a change that is not folded, so that the row holds
    /// only the folded lines; recording anything else calls it too.
    pub fn flush_run(&mut self) -> Result<(), DbError> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        let Some((first, last)) = run.folded.take() else {
            return Ok(());
        };
        let (name, ty) = run.key.clone();
        let Some(now) = self.store.get(&name, ty) else {
            return Ok(());
        };
        let empty = VersionVector::new();
        let mark = self.base.get(&run.key).map_or(&empty, |b| &b.mark);
        // When the run made most of the text (a trace replayed into a new
        // one), the row holds it whole, written once for the row and the
        // object: merging what time travel already has changes nothing.
        let events = |v: &VersionVector| v.iter().map(|(_, s)| s).fold(0u64, u64::saturating_add);
        let whole = events(mark).saturating_mul(2) < events(&now.version());
        let delta = if whole {
            state_text(now)
        } else {
            state_text(&now.delta_since(mark))
        };
        let what = crate::history::describe_merge(None, now, mark);
        let lines = if first == last {
            format!("line {first}")
        } else {
            format!("lines {first}-{last}")
        };
        let summary = if what.is_empty() {
            format!("no visible change ({lines})")
        } else {
            format!("{what} ({lines})")
        };
        self.record_row(&name, ty, delta, summary, None)?;
        if whole {
            self.touched.insert((name, ty), Some(self.rows.len() - 1));
        }
        Ok(())
    }

    /// Adds loaded rows and what `issued` says of them; an `issued` entry
    /// without a row (a row lost) is remembered too, for the check.
    pub(super) fn add_loaded(
        &mut self,
        rows: Vec<(String, Object)>,
        mut issued: HashMap<(String, CrdtType), u64>,
    ) {
        for (name, o) in rows {
            let me = self.store.replica();
            let key = (name, o.ty());
            let keep = self.merging && o.ty() != CrdtType::Rga;
            let o = Arc::new(o);
            let base = Base {
                mark: o.version(),
                own: o.max_seq(me),
                issued: issued.remove(&key).unwrap_or(0),
                before: keep.then(|| o.clone()),
                since_checkpoint: None,
                new_whole: false,
            };
            self.store.insert_object(&key.0, o);
            self.base.insert(key, base);
        }
        for (key, seq) in issued {
            self.base.entry(key).or_insert(Base {
                issued: seq,
                ..Base::default()
            });
        }
    }

    /// Loads the objects of `name` (once).
    pub fn load_name(&mut self, name: &str) -> Result<(), DbError> {
        if self.all || self.loaded.contains(name) {
            return Ok(());
        }
        let rows = rows_of(&self.tx, self.path, name)?;
        let issued = issued_where(&self.tx, self.path, Some(name))?;
        self.add_loaded(rows, issued);
        self.loaded.insert(name.to_string());
        Ok(())
    }

    /// Loads every object.
    pub fn load_all(&mut self) -> Result<(), DbError> {
        if self.all {
            return Ok(());
        }
        let mut rows = rows_where(&self.tx, self.path, "true", &[])?;
        rows.retain(|(n, _)| !self.loaded.contains(n));
        let mut issued = issued_where(&self.tx, self.path, None)?;
        issued.retain(|(n, _), _| !self.loaded.contains(n));
        self.add_loaded(rows, issued);
        self.all = true;
        Ok(())
    }

    /// Records a local change to `name` (`ty`): `delta` is what it made
    /// (it holds only this replica's new events). Refused when the object
    /// lacks events this replica made before (see the module docs). Record
    /// after each change: a batch records each line.
    pub fn record(
        &mut self,
        name: &str,
        ty: CrdtType,
        delta: &Object,
        summary: String,
        source: Option<&str>,
    ) -> Result<(), DbError> {
        self.record_text(name, ty, state_text(delta), summary, source)
    }

    /// [`Change::record`] with the delta as its snapshot-format text (as
    /// `Object::write_state` writes it; `Rga::insert_delta_text` gives it
    /// without building the delta). `summary`: what it did, in the type's
    /// words ([`crate::history::describe_edit`]).
    pub fn record_text(
        &mut self,
        name: &str,
        ty: CrdtType,
        delta: String,
        summary: String,
        source: Option<&str>,
    ) -> Result<(), DbError> {
        self.flush_run()?;
        self.record_row(name, ty, delta, summary, source)?;
        if self.fold {
            match &mut self.run {
                Some(run) if run.key.0 == name && run.key.1 == ty => run.lines += 1,
                run => {
                    *run = Some(Run {
                        key: (name.to_string(), ty),
                        lines: 1,
                        folded: None,
                    })
                }
            }
        }
        Ok(())
    }

    /// One history row for the change to `name` just made.
    fn record_row(
        &mut self,
        name: &str,
        ty: CrdtType,
        delta: String,
        summary: String,
        source: Option<&str>,
    ) -> Result<(), DbError> {
        let Some(now) = self.store.get(name, ty) else {
            return Ok(());
        };
        let version = now.version();
        let own = now.max_seq(self.store.replica());
        // A batch records one object many times over: its key and name
        // are made once.
        let same = matches!(&self.last, Some((k, _)) if k.0 == name && k.1 == ty);
        if !same {
            self.last = Some(((name.to_string(), ty), Arc::from(name)));
        }
        let (key, shared_name) = self.last.as_ref().expect("just set");
        let base = match self.base.get_mut(key) {
            Some(b) => b,
            None => self.base.entry(key.clone()).or_default(),
        };
        if base.issued > base.own && own > base.own {
            return Err(DbError::Behind {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                ty,
                issued: base.issued,
                held: base.own,
            });
        }
        let made = own > base.own;
        base.mark = version;
        base.own = own;
        base.issued = base.issued.max(own);
        if base.before.is_some() {
            base.before = self.store.get_shared(name, ty).cloned();
        }
        let replicas = if made {
            self.me_json.clone()
        } else {
            Arc::from("[]")
        };
        let source = match source {
            Some(s) => Arc::from(s),
            None => self.source.clone(),
        };
        let since = match &mut base.since_checkpoint {
            Some(s) => s,
            None => base
                .since_checkpoint
                .insert(SinceCheckpoint::read(&self.tx, self.path, name, ty)?),
        };
        if since.add(delta.len()) {
            let state = state_text(now);
            since.reset(state.len());
            self.checkpoints.push(Checkpoint {
                row: self.rows.len(),
                name: shared_name.clone(),
                ty,
                state,
            });
        }
        self.rows.push(HistoryRow {
            time_ms: self.time_ms,
            source,
            name: shared_name.clone(),
            ty,
            delta,
            replicas,
            summary,
        });
        match self.touched.get_mut(key) {
            Some(whole) => *whole = None,
            None => {
                self.touched.insert(key.clone(), None);
            }
        }
        Ok(())
    }

    /// Records every loaded object that changed since it was loaded or
    /// last recorded (merges: an import, a sync), one history row each,
    /// with what it gained and the replicas whose events it gained.
    /// Returns how many objects changed.
    pub fn record_merges(&mut self, source: Option<&str>) -> usize {
        self.unrecorded = false;
        let me = self.store.replica().clone();
        let source: Arc<str> = match source {
            Some(s) => Arc::from(s),
            None => self.source.clone(),
        };
        let mut rows = Vec::new();
        // Merged objects mostly gained the same replicas' events: their
        // rows share one `replicas` text.
        let mut last_replicas: Option<(Vec<ReplicaId>, Arc<str>)> = None;
        for (name, o) in self.store.iter() {
            let key = (name.to_string(), o.ty());
            let version = o.version();
            let base = self.base.get(&key);
            let empty = VersionVector::new();
            let mark = base.map_or(&empty, |b| &b.mark);
            if base.is_some() && *mark == version {
                continue;
            }
            let gained: Vec<ReplicaId> = version
                .iter()
                .filter(|(r, s)| *s > mark.get(r))
                .map(|(r, _)| r.clone())
                .collect();
            // New here: the delta is the whole object.
            let whole = base.is_none();
            let delta = if whole {
                state_text(o)
            } else {
                state_text(&o.delta_since(mark))
            };
            let summary = match base {
                Some(Base { before: None, .. }) if o.ty() != CrdtType::Rga => String::new(),
                _ => {
                    crate::history::describe_merge(base.and_then(|b| b.before.as_deref()), o, mark)
                }
            };
            rows.push((
                key,
                version.clone(),
                o.max_seq(&me),
                whole,
                HistoryRow {
                    time_ms: self.time_ms,
                    source: source.clone(),
                    name: Arc::from(name),
                    ty: o.ty(),
                    delta,
                    replicas: match &last_replicas {
                        Some((list, text)) if *list == gained => text.clone(),
                        _ => {
                            let text: Arc<str> = Arc::from(replicas_json(gained.iter()));
                            last_replicas.insert((gained, text)).1.clone()
                        }
                    },
                    summary,
                },
            ));
        }
        let changed = rows.len();
        for (key, version, own, whole, row) in rows {
            let keep = self.merging && key.1 != CrdtType::Rga;
            let now = if keep {
                self.store.get_shared(&key.0, key.1).cloned()
            } else {
                None
            };
            let b = self.base.entry(key.clone()).or_default();
            b.before = now;
            b.mark = version;
            b.own = own;
            b.issued = b.issued.max(own);
            // A new object's row holds it whole: time travel starts there
            // (nothing to read of it). A read that fails here fails the
            // commit too.
            b.new_whole = whole && b.since_checkpoint.is_none();
            if whole {
                b.since_checkpoint
                    .get_or_insert_with(SinceCheckpoint::default)
                    .reset(row.delta.len());
            } else if b
                .since_checkpoint
                .get_or_insert_with(|| {
                    SinceCheckpoint::read(&self.tx, self.path, &key.0, key.1).unwrap_or_default()
                })
                .add(row.delta.len())
                && let Some(o) = self.store.get(&key.0, key.1)
            {
                let since = b.since_checkpoint.as_mut().expect("just read");
                let state = state_text(o);
                since.reset(state.len());
                self.checkpoints.push(Checkpoint {
                    row: self.rows.len(),
                    name: row.name.clone(),
                    ty: key.1,
                    state,
                });
            }
            self.touched.insert(key, whole.then_some(self.rows.len()));
            self.rows.push(row);
        }
        changed
    }

    /// Writes every recorded object and its history rows, and commits: on
    /// `Ok` the change is on disk; on `Err` nothing was changed.
    pub fn commit(self) -> Result<(), DbError> {
        self.commit_spent().map(drop)
    }

    /// [`Change::commit`], handing back what the change held.
    pub fn commit_spent(mut self) -> Result<Spent, DbError> {
        // Folded lines are a row of their own; a change not recorded is
        // recorded now, with the change's source.
        self.flush_run()?;
        if self.unrecorded {
            self.record_merges(None);
        }
        let me = self.store.replica().clone();
        for ((name, ty), whole) in &self.touched {
            if let Some(o) = self.store.get(name, *ty) {
                let text = whole.map(|i| self.rows[i].delta.as_str());
                write_object(&self.tx, self.path, &me, name, o, text)?;
            }
        }
        insert_history_with(&self.tx, self.path, &self.rows, &self.checkpoints)?;
        let mut tally = self
            .tx
            .prepare_cached(
                "INSERT OR REPLACE INTO tally (name, type, rows, bytes, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(|e| wrap(self.path, "write", e))?;
        for ((name, ty), base) in &self.base {
            if let Some(s) = base.since_checkpoint.filter(|_| !base.new_whole) {
                tally
                    .execute(params![
                        name,
                        ty.as_str(),
                        s.rows as i64,
                        s.bytes as i64,
                        s.size as i64
                    ])
                    .map_err(|e| wrap(self.path, "write", e))?;
            }
        }
        drop(tally);
        self.tx.commit().map_err(|e| wrap(self.path, "write", e))?;
        tidy(self.conn, self.path);
        Ok(Spent {
            _store: self.store,
            _base: self.base,
            _rows: self.rows,
            _touched: self.touched,
        })
    }
}

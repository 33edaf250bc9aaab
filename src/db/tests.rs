//! The database: changes and their history, lost rows, refused files.

use super::*;

fn id(s: &str) -> ReplicaId {
    ReplicaId::new(s).unwrap()
}

fn inc(db: &mut Db, name: &str) -> Result<(), DbError> {
    let mut c = db.change("local", 1)?;
    c.load_name(name)?;
    let me = c.replica().clone();
    let o = c.store_mut().get_or_create(name, CrdtType::GCounter);
    let before = o.version();
    if let Object::GCounter(g) = o {
        g.inc(&me, 1).unwrap();
    }
    let delta = o.delta_since(&before);
    c.record(name, CrdtType::GCounter, &delta, String::new(), None)?;
    c.commit()
}

#[test]
fn a_change_is_written_with_its_history_and_a_dropped_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    assert!(Db::open(&path).unwrap().is_none());
    let (mut db, _) = Db::open_or_create(&path, || Ok(id("agent-1"))).unwrap();
    inc(&mut db, "metrics:requests").unwrap();
    inc(&mut db, "metrics:requests").unwrap();
    {
        let mut c = db.change("local", 1).unwrap();
        c.load_name("other").unwrap();
        c.store_mut().get_or_create("other", CrdtType::OrSet);
        // dropped: nothing written
    }
    let store = db.load().unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(
        store
            .get("metrics:requests", CrdtType::GCounter)
            .unwrap()
            .value_json(),
        2
    );
    assert_eq!(db.counts().unwrap(), (1, 2));
    // The history replays to the state.
    let mut replay = Store::new(id("agent-1"));
    let mut stmt = db
        .conn
        .prepare("SELECT name, type, delta FROM history ORDER BY id")
        .unwrap();
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (n, t, d) in rows {
        let (_, o) = snapshot::decode_delta_text(&n, &t, &d, "delta").unwrap();
        replay.merge_object(&n, &o);
    }
    assert_eq!(snapshot::encode(&replay), snapshot::encode(&store));
}

#[test]
fn a_lost_row_is_never_given_new_events_with_old_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let (mut db, _) = Db::open_or_create(&path, || Ok(id("agent-1"))).unwrap();
    for _ in 0..3 {
        inc(&mut db, "n").unwrap();
    }
    let saved = db.load().unwrap();
    db.conn.execute("DELETE FROM objects", []).unwrap();
    let err = inc(&mut db, "n").unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Behind {
                issued: 3,
                held: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(db.counts().unwrap().0, 0, "nothing written");
    // The events come back (an import): changes go on from 3.
    {
        let mut c = db.change("import x", 1).unwrap();
        c.load_all().unwrap();
        c.store_mut().merge(&saved);
        c.record_merges(None);
        c.commit().unwrap();
    }
    inc(&mut db, "n").unwrap();
    let o = db.load().unwrap();
    let n = o.get("n", CrdtType::GCounter).unwrap();
    assert_eq!(n.value_json(), 4);
    assert_eq!(n.max_seq(&id("agent-1")), 4);
}

#[test]
fn a_file_that_is_not_a_replica_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    fs::write(&junk, b"hello world, not a database").unwrap();
    let err = Db::open(&junk).unwrap_err();
    assert!(matches!(err, DbError::NotReplica { .. }), "{err}");
    assert_eq!(fs::read(&junk).unwrap(), b"hello world, not a database");
    // An SQLite database of something else.
    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = Db::open(&other).unwrap_err();
    assert!(err.to_string().contains("another application"), "{err}");
    // A database deleted without its WAL: the WAL is not replayed into
    // a new one at its path.
    let gone = dir.path().join("gone.db");
    let (mut db, _) = Db::open_or_create(&gone, || Ok(id("agent-1"))).unwrap();
    inc(&mut db, "n").unwrap();
    drop(db);
    fs::remove_file(&gone).unwrap();
    let err = Db::open_or_create(&gone, || Ok(id("agent-2"))).unwrap_err();
    assert!(
        err.to_string().contains("left from a deleted database"),
        "{err}"
    );
    // An empty file is a new replica.
    let empty = dir.path().join("empty.db");
    fs::write(&empty, b"").unwrap();
    assert!(Db::open(&empty).unwrap().is_none());
    let (db, _) = Db::open_or_create(&empty, || Ok(id("agent-9"))).unwrap();
    assert_eq!(db.replica().as_str(), "agent-9");
}

/// A crafted database (from `import` or `--from`): a view or a trigger
/// in place of a table, an extra table, is refused before anything in
/// it is read.
#[test]
fn a_crafted_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (i, sql) in [
        "DROP TABLE objects; CREATE VIEW objects AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT 'n', 'g-counter', x FROM c",
        "CREATE TRIGGER t AFTER INSERT ON history BEGIN DELETE FROM objects; END",
        "CREATE TABLE extra (x)",
        "CREATE INDEX i ON history (name)",
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("r{i}.db"));
        let (mut db, _) = Db::open_or_create(&path, || Ok(id("agent-1"))).unwrap();
        inc(&mut db, "n").unwrap();
        drop(db);
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let err = Db::open_read_only(&path).unwrap_err();
        assert!(matches!(err, DbError::NotReplica { .. }), "{sql}: {err}");
        assert!(err.to_string().contains("its schema has"), "{err}");
        assert!(Db::open(&path).is_err());
    }
}

/// What durability and the checks rest on is set on every connection.
#[test]
fn connections_are_durable_and_defensive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let (db, _) = Db::open_or_create(&path, || Ok(id("agent-1"))).unwrap();
    let get = |pragma: &str| -> i64 {
        db.conn
            .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(get("synchronous"), 2, "FULL");
    assert_eq!(get("wal_autocheckpoint"), 0);
    assert_eq!(get("cell_size_check"), 1);
    assert_eq!(get("trusted_schema"), 0);
    let mode: String = db
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_damaged_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let (mut db, _) = Db::open_or_create(&path, || Ok(id("agent-1"))).unwrap();
    inc(&mut db, "n").unwrap();
    db.conn
        .execute("UPDATE objects SET state = '{\"counts\": 7}'", [])
        .unwrap();
    let err = db.load().unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("\"n\" (g-counter)"), "{text}");
    assert!(text.contains("state.counts"), "{text}");
    assert!(inc(&mut db, "n").is_err());
}

mod time_travel {
    use super::*;
    use crate::edit::Edit;
    use proptest::prelude::*;
    use serde_json::json;

    #[derive(Clone, Debug)]
    enum Step {
        /// A local edit of the replica (several edits make one change).
        Local(Vec<(usize, Edit)>),
        /// The peer edits its copy.
        Peer(usize, Edit),
        /// The peer's state is imported.
        Import,
        /// A batch: local edits, long runs on one text folded.
        Batch(Vec<(usize, Edit)>),
    }

    const NAMES: [&str; 3] = ["c", "s", "t"];

    fn edit(name: usize) -> BoxedStrategy<Edit> {
        match name {
            0 => (1u64..5)
                .prop_map(|amount| Edit::Inc { amount, ty: None })
                .boxed(),
            1 => prop_oneof![
                (0u8..4).prop_map(|v| Edit::Add {
                    values: vec![json!(v)]
                }),
                (0u8..4).prop_map(|v| Edit::Rm {
                    values: vec![json!(v)]
                }),
            ]
            .boxed(),
            _ => prop_oneof![
                ("[a-z]{1,3}").prop_map(|text| Edit::Append { text }),
                (0usize..4, "[A-Z]{1,2}").prop_map(|(pos, text)| Edit::Insert { pos, text }),
                (0usize..3, 1usize..3).prop_map(|(pos, len)| Edit::Delete { pos, len }),
            ]
            .boxed(),
        }
    }

    fn named_edit() -> impl Strategy<Value = (usize, Edit)> {
        (0usize..3).prop_flat_map(|n| edit(n).prop_map(move |e| (n, e)))
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => proptest::collection::vec(named_edit(), 1..4).prop_map(Step::Local),
            2 => named_edit().prop_map(|(n, e)| Step::Peer(n, e)),
            1 => Just(Step::Import),
            2 => proptest::collection::vec(
                prop_oneof![3 => edit(2).prop_map(|e| (2, e)), 1 => named_edit()],
                1..12
            )
            .prop_map(Step::Batch),
        ]
    }

    /// Applies a batch's edits as `crdt batch` does, folding long runs on
    /// a text. Returns the replica after each history row it records.
    fn batch(c: &mut Change<'_>, edits: &[(usize, Edit)], now: u64) -> Vec<String> {
        let mut after_rows = Vec::new();
        let mut rows = c.rows.len();
        let mut moment = |c: &Change<'_>, after_rows: &mut Vec<String>| {
            for _ in rows..c.rows.len() {
                after_rows.push(snapshot::encode(c.store()));
            }
            rows = c.rows.len();
        };
        c.load_all().unwrap();
        for (n, e) in edits {
            let name = NAMES[*n];
            let text_edit = matches!(
                e,
                Edit::Insert { .. } | Edit::Append { .. } | Edit::Delete { .. }
            );
            if text_edit && c.folds(name) {
                if c.store_mut().apply_untracked(name, e, now).is_ok() {
                    c.record_folded(name, 0);
                }
                continue;
            }
            c.flush_run().unwrap();
            moment(c, &mut after_rows);
            if let Some(a) = apply(c.store_mut(), name, e, now) {
                c.record_text(name, a.ty, a.delta, a.summary, None).unwrap();
                moment(c, &mut after_rows);
            }
        }
        c.flush_run().unwrap();
        moment(c, &mut after_rows);
        after_rows
    }

    /// Applies an edit; one that does not apply (a delete past the end)
    /// changes nothing and is skipped.
    fn apply(store: &mut Store, name: &str, e: &Edit, now: u64) -> Option<crate::Applied> {
        store.apply(name, e, now).ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Time travel to every position gives the replica as it was then,
        /// with checkpoints (every 3 rows in tests) and without, whole and
        /// by name; to a time, as it was after the last change at or
        /// before it (times never go back, even when the clock does).
        #[test]
        fn each_moment_reads_as_it_was(steps in proptest::collection::vec(step(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("replica.db");
            let (mut db, _) = Db::open_or_create(&path, || Ok(id("agent-1"))).unwrap();
            let mut peer = Store::new(id("agent-2"));
            let mut moments: Vec<(u64, u64, String)> = Vec::new();
            for (i, s) in steps.iter().enumerate() {
                // The clock goes back now and then.
                let now = 1000 + (i as u64 * 10) - if i % 7 == 6 { 35 } else { 0 };
                match s {
                    Step::Peer(n, e) => {
                        apply(&mut peer, NAMES[*n], e, now);
                        continue;
                    }
                    Step::Local(edits) => {
                        let mut c = db.change("local", now).unwrap();
                        for (n, e) in edits {
                            c.load_name(NAMES[*n]).unwrap();
                            if let Some(a) = apply(c.store_mut(), NAMES[*n], e, now) {
                                c.record_text(NAMES[*n], a.ty, a.delta, a.summary, None).unwrap();
                            }
                        }
                        c.commit().unwrap();
                    }
                    Step::Batch(edits) => {
                        let first = db.last_history_id().unwrap() + 1;
                        let mut c = db.change("batch", now).unwrap();
                        c.fold_runs();
                        let states = batch(&mut c, edits, now);
                        c.commit().unwrap();
                        // Each row reads as the replica was after it (the
                        // last also below, as every step's).
                        let time = db.history_span().unwrap().map_or(0, |s| s.1);
                        let n = states.len();
                        for (i, state) in states.into_iter().enumerate().take(n.saturating_sub(1)) {
                            moments.push((first + i as u64, time, state));
                        }
                    }
                    Step::Import => {
                        let mut c = db.change("import", now).unwrap();
                        c.merging();
                        c.load_all().unwrap();
                        if c.store().check_mergeable(&peer).is_err() {
                            continue;
                        }
                        c.store_mut().merge(&peer);
                        c.record_merges(None);
                        c.commit().unwrap();
                    }
                }
                let last = db.last_history_id().unwrap();
                let time: i64 = db
                    .conn
                    .query_row("SELECT coalesce(max(time_ms), 0) FROM history", [], |r| r.get(0))
                    .unwrap();
                moments.push((last, time as u64, snapshot::encode(&db.load().unwrap())));
            }
            let none = snapshot::encode(&Store::new(id("agent-1")));
            prop_assert_eq!(
                snapshot::encode(&db.load_at(&[], Moment::Position(0)).unwrap()),
                none
            );
            for (pos, time, state) in &moments {
                let at = db.load_at(&[], Moment::Position(*pos)).unwrap();
                prop_assert_eq!(&snapshot::encode(&at), state, "at @{}", pos);
                // The last moment of a time is the state after its last change.
                let last_at_time = moments.iter().rev().find(|m| m.1 <= *time).unwrap();
                let at = db.load_at(&[], Moment::Time(*time)).unwrap();
                prop_assert_eq!(&snapshot::encode(&at), &last_at_time.2, "at time {}", time);
                for n in NAMES {
                    let one = db.load_at(&[n.to_string()], Moment::Position(*pos)).unwrap();
                    let want = snapshot::decode(state).unwrap().select(&[n.to_string()]);
                    prop_assert_eq!(snapshot::encode(&one), snapshot::encode(&want));
                }
            }
            // The history's times never go back.
            let times: Vec<i64> = db
                .conn
                .prepare("SELECT time_ms FROM history ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            prop_assert!(times.windows(2).all(|w| w[0] <= w[1]));
            // Trimming keeps every moment after the cut as it was.
            if let Some((_, cut, _)) = moments.get(moments.len() / 2) {
                db.trim_history(*cut).unwrap();
                for (pos, time, state) in &moments {
                    if *time >= *cut {
                        let at = db.load_at(&[], Moment::Position(*pos)).unwrap();
                        prop_assert_eq!(&snapshot::encode(&at), state, "at @{} after trim", pos);
                    }
                }
            }
        }
    }
}

#[test]
fn a_history_an_earlier_trim_cut_is_trimmed_as_that_trim_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let (mut db, _) = Db::open_or_create(&path, || Ok(id("agent-1"))).unwrap();
    for (i, text) in ["Hello", " world", "!"].iter().enumerate() {
        let mut c = db.change("local", 1000 * (i as u64 + 1)).unwrap();
        c.load_name("t").unwrap();
        let a = c
            .store_mut()
            .apply(
                "t",
                &crate::Edit::Append {
                    text: text.to_string(),
                },
                0,
            )
            .unwrap();
        c.record_text("t", a.ty, a.delta, a.summary, None).unwrap();
        c.commit().unwrap();
    }
    // The trim of the build before deleted rows: "Hello" is gone, and
    // " world" refers to it.
    db.conn
        .execute("DELETE FROM history WHERE id = 1", [])
        .unwrap();
    assert!(matches!(
        db.load_at(&[], Moment::Position(2)),
        Err(DbError::Row { .. } | DbError::Damaged { .. })
    ));
    assert_eq!(db.trim_history(2500).unwrap(), 1);
    assert_eq!(db.counts().unwrap(), (1, 1));
    // A history that merges from nothing is merged, as before.
    inc(&mut db, "n").unwrap();
    inc(&mut db, "n").unwrap();
    assert_eq!(db.trim_history(u64::MAX >> 1).unwrap(), 2);
    let left = db.load_at(&[], Moment::Position(u64::MAX >> 1)).unwrap();
    assert_eq!(left.get("n", CrdtType::GCounter).unwrap().value_json(), 2);
}

//! The local replica's database, from the outside: what is acknowledged is
//! there, what failed changed nothing, ids are never reused, old JSON state
//! files are migrated whole, history is recorded and can be trimmed.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use crdt::db::Db;
use crdt::{CrdtType, Store, snapshot};
use serde_json::Value;

mod common;
use common::Replica;

/// JSON text as Python's `json.dump(indent=2, sort_keys=True)` writes it:
/// other indentation, and every non-ASCII character as a `\u` escape.
fn python_style(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    let text = serde_json::to_string_pretty(&sort(v)).unwrap();
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out + "\n"
}

#[test]
fn an_empty_file_is_a_new_replica() {
    let r = Replica::new("agent-1");
    std::fs::write(r.state(), b"").unwrap();
    assert_eq!(
        r.exits(2, &["get", "n"]).lines().next().unwrap(),
        format!(
            "crdt: error: no replica at {} yet: change something first (e.g. `crdt inc metrics:requests`)",
            r.state().display()
        )
    );
    assert_eq!(r.ok(&["inc", "n"]), "1\n");
    assert_eq!(r.ok(&["get", "n"]), "1\n");
}

/// The case that lost data with the JSON state file: a valid rewrite of a
/// snapshot (other layout, escaped names) reads as the same state, and a
/// change after it never reuses an id.
#[test]
fn a_rewritten_snapshot_is_the_same_state_and_ids_are_never_reused() {
    let a = Replica::new("agent-1");
    for _ in 0..5 {
        a.ok(&["inc", "métriques:requêtes"]);
    }
    a.ok(&["add", "tâches:actives", "un", "deux"]);
    a.ok(&["append", "doc:é", "héllo"]);
    let export = a.ok(&["export"]);
    let rewritten = a.dir.path().join("rewritten.json");
    let v: Value = serde_json::from_str(&export).unwrap();
    let text = python_style(&v);
    assert!(text.contains("m\\u00e9triques"), "not rewritten: {text}");
    std::fs::write(&rewritten, &text).unwrap();
    let file = rewritten.to_str().unwrap();
    // --from and import read it as the same state.
    for name in ["métriques:requêtes", "tâches:actives", "doc:é"] {
        assert_eq!(
            a.ok(&["inspect", name, "--from", file]),
            a.ok(&["inspect", name])
        );
    }
    let b = Replica::new("agent-2");
    b.ok(&["import", file]);
    assert_eq!(b.ok(&["export"]).replace("agent-2", "agent-1"), export);
    // Imported back into its own replica it changes nothing, and the next
    // changes go on from the ids already given.
    a.ok(&["import", file]);
    assert_eq!(a.ok(&["export"]), export);
    assert_eq!(a.ok(&["inc", "métriques:requêtes"]), "6\n");
    a.ok(&["add", "tâches:actives", "trois"]);
    let s = a.store();
    let set = s.get("tâches:actives", CrdtType::OrSet).unwrap();
    assert_eq!(set.value_json().as_array().unwrap().len(), 3);
    // B merges it without a conflict (one dot, one member).
    std::fs::write(b.dir.path().join("a.json"), a.ok(&["export"])).unwrap();
    b.ok(&["import", "a.json"]);
    assert_eq!(b.ok(&["get", "métriques:requêtes"]), "6\n");
}

#[test]
fn a_row_edited_or_lost_is_refused_a_new_change_until_its_events_come_back() {
    let a = Replica::new("agent-1");
    a.ok(&["add", "tasks:active", "task-1", "task-2"]);
    a.ok(&["inc", "n", "5"]);
    let backup = a.dir.path().join("backup.json");
    std::fs::write(&backup, a.ok(&["export"])).unwrap();
    // The set's row is lost, the counter's is rolled back by hand.
    a.exec(
        "DELETE FROM objects WHERE name = 'tasks:active';
         UPDATE objects SET state = '{\"counts\":{}}' WHERE name = 'n';",
    );
    let before = std::fs::read(a.state()).unwrap();
    for args in [&["add", "tasks:active", "task-3"][..], &["inc", "n"]] {
        let err = a.exits(2, args);
        assert!(err.contains("lacks changes this replica made"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
    }
    let batch = a.dir.path().join("b.txt");
    std::fs::write(&batch, "inc other\nadd tasks:active task-3\n").unwrap();
    let err = a.exits(2, &["batch", batch.to_str().unwrap()]);
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(
        std::fs::read(a.state()).unwrap(),
        before,
        "something was written"
    );
    assert!(a.run(&["get", "other"]).status.code() == Some(2));
    // The events come back from a copy that has them: changes go on.
    a.ok(&["import", backup.to_str().unwrap()]);
    a.ok(&["add", "tasks:active", "task-3"]);
    assert_eq!(a.ok(&["inc", "n"]), "6\n");
    let s = a.store();
    assert_eq!(
        s.get("tasks:active", CrdtType::OrSet).unwrap().value_json(),
        serde_json::json!(["task-1", "task-2", "task-3"])
    );
}

/// A JSON state file of an earlier version with its journal: every object
/// arrives, byte for byte in `export`, and the old files are kept.
#[test]
fn a_json_state_file_with_its_journal_is_migrated_whole() {
    let src = Replica::new("agent-1");
    src.ok(&["inc", "metrics:requests", "3"]);
    src.ok(&["dec", "resources:gpu", "2"]);
    src.ok(&["set", "config:global", r#"{"mode": "safe"}"#]);
    src.ok(&["add", "tasks:active", "task-1", "task-2"]);
    src.ok(&["append", "document:main", "Hello"]);
    let base_text = src.ok(&["export"]);
    let base = snapshot::decode(&base_text).unwrap();
    src.ok(&["inc", "metrics:requests"]);
    src.ok(&["rm", "tasks:active", "task-1"]);
    src.ok(&["insert", "document:main", "5", ", World"]);
    src.ok(&["inc", "new:one"]);
    let full_text = src.ok(&["export"]);
    let full = snapshot::decode(&full_text).unwrap();
    // The old layout: the snapshot, and the later changes in the journal.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, &base_text).unwrap();
    let delta = full.delta_since(&base.versions());
    let line = crdt::sync::protocol::objects_line(&delta, "");
    std::fs::write(dir.path().join("state.json.log"), format!("{line}\n")).unwrap();
    let r = Replica::at("agent-1", state.clone());
    let out = r.run(&["export"]);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("crdt: migrated the JSON state file"),
        "{err}"
    );
    assert!(
        err.contains("(5 objects)") || err.contains("(6 objects)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), full_text);
    // The old files are kept under names that say so; the path is a database.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state.json.pre-sqlite")).unwrap(),
        base_text
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state.json.log.pre-sqlite")).unwrap(),
        format!("{line}\n")
    );
    assert!(!dir.path().join("state.json.log").exists());
    assert!(Db::is_database(&state));
    // Once: the next command says nothing, and every object has a history row.
    let out = r.run(&["inc", "metrics:requests"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "5\n");
    let migrated: i64 = r.sql("SELECT count(*) FROM history WHERE source LIKE 'migrate %'");
    assert_eq!(migrated as usize, full.len());
}

#[test]
fn the_default_json_state_file_moves_into_the_default_database() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("crdt");
    std::fs::create_dir_all(&data).unwrap();
    let src = Replica::new("agent-7");
    src.ok(&["inc", "n", "7"]);
    let text = src.ok(&["export"]);
    std::fs::write(data.join("state.json"), &text).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_crdt"))
            .env_remove("CRDT_STATE")
            .env_remove("CRDT_REPLICA")
            .env("XDG_DATA_HOME", home.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["get", "n"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("replica.db"), "{err}");
    assert!(data.join("replica.db").exists());
    assert!(!data.join("state.json").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("state.json.pre-sqlite")).unwrap(),
        text
    );
    let out = run(&["--json", "info"]);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["replica"], "agent-7");
}

#[test]
fn a_damaged_json_state_file_is_not_migrated_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let text = "{\"format\": \"crdt-snapshot\", \"version\": 1, \"replica\": \"agent-1\", \"objects\": [,]}\n";
    std::fs::write(&state, text).unwrap();
    let r = Replica::at("agent-1", state.clone());
    let err = r.exits(2, &["inc", "n"]);
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(err.contains("line 1, column"), "{err}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), text);
    assert!(!dir.path().join("state.json.pre-sqlite").exists());
}

/// The history: a row per change, with its source; the deltas together
/// give the state; `history trim` drops the old rows only.
#[test]
fn every_change_is_recorded_and_the_history_replays_to_the_state() {
    let a = Replica::new("agent-1");
    let at = |ms: &str, args: &[&str]| {
        let out = a.cmd().env("CRDT_NOW_MS", ms).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    at("1000", &["inc", "n", "2"]);
    at("1000", &["add", "s", "a", "b"]);
    at("2000", &["set", "r", "1"]);
    at("2000", &["append", "t", "Hello"]);
    let batch = a.dir.path().join("b.txt");
    std::fs::write(
        &batch,
        "insert t 5 ', World'\ndelete t 0 1\nrm s a\nset r 2\nget n\ninc n\n",
    )
    .unwrap();
    at("3000", &["batch", batch.to_str().unwrap()]);
    let b = Replica::new("agent-2");
    b.ok(&["inc", "n", "10"]);
    b.ok(&["add", "s", "c"]);
    let file = a.dir.path().join("b.json");
    std::fs::write(&file, b.ok(&["export"])).unwrap();
    at("4000", &["import", file.to_str().unwrap()]);
    let conn = rusqlite::Connection::open(a.state()).unwrap();
    let mut stmt = conn
        .prepare("SELECT time_ms, source, name, type, delta, replicas FROM history ORDER BY id")
        .unwrap();
    type Row = (i64, String, String, String, String, String);
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let sources: Vec<(i64, &str, &str)> = rows
        .iter()
        .map(|r| (r.0, r.1.as_str(), r.2.as_str()))
        .collect();
    let import = format!("import {}", file.display());
    assert_eq!(
        sources,
        [
            (1000, "local", "n"),
            (1000, "local", "s"),
            (2000, "local", "r"),
            (2000, "local", "t"),
            (3000, "batch", "t"),
            (3000, "batch", "t"),
            (3000, "batch", "s"),
            (3000, "batch", "r"),
            (3000, "batch", "n"),
            (4000, import.as_str(), "n"),
            (4000, import.as_str(), "s"),
        ]
    );
    assert_eq!(rows[0].5, r#"["agent-1"]"#);
    assert_eq!(rows[9].5, r#"["agent-2"]"#);
    // Merged in order from nothing, the deltas are the state.
    let mut replay = Store::new(crdt::ReplicaId::new("agent-1").unwrap());
    for (_, _, name, ty, delta, _) in &rows {
        let (_, o) = snapshot::decode_delta_text(name, ty, delta, "delta").unwrap();
        replay.check_mergeable_object(name, &o).unwrap();
        replay.merge_object(name, &o);
    }
    assert_eq!(snapshot::encode(&replay), snapshot::encode(&a.store()));
    // Trimming merges each object's rows older than the moment into one
    // (one row each here: nothing goes), and time travel after the cut
    // still gives every state as it was.
    let states = |a: &Replica| -> Vec<String> {
        ["1500", "2500", "3500", "4500"]
            .iter()
            .map(|t| a.ok(&["export", "--at", t]))
            .collect()
    };
    let before = states(&a);
    let out = a.ok(&["--json", "history", "trim", "--before", "2500"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["removed"].as_u64(), v["left"].as_u64()),
        (Some(0), Some(11))
    );
    assert_eq!(a.ok(&["get", "t"]), "ello, World\n");
    assert_eq!(states(&a), before);
    let out = a.ok(&["history", "trim", "--before", "1970-01-01T00:00:04Z"]);
    assert_eq!(out, "removed 5 history rows; 6 left\n");
    assert_eq!(states(&a)[2..], before[2..]);
    assert_eq!(a.ok(&["export", "--at", "4500"]), a.ok(&["export"]));
    // Before the cut, the trimmed objects did not exist yet.
    let err = a.exits(1, &["get", "t", "--at", "2500"]);
    assert!(err.contains("was trimmed"), "{err}");
    let err = a.exits(2, &["history", "trim", "--before", "yesterday-ish"]);
    assert!(err.contains("is not a time"), "{err}");
    let sources: Vec<String> = {
        let conn = rusqlite::Connection::open(a.state()).unwrap();
        let mut stmt = conn
            .prepare("SELECT source FROM history ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        sources,
        [
            "trim",
            "trim",
            "trim",
            "trim",
            import.as_str(),
            import.as_str()
        ]
    );
}

/// True when this process may mount file systems.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn small_disk(dir: &Path, size: &str) -> Option<Tmpfs> {
    let at = dir.join("disk");
    std::fs::create_dir_all(&at).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&at)
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(Tmpfs(at))
}

/// A 1.5 MB tmpfs in `dir` for a full-disk test; `None` (the test says why
/// it cannot run, and fails when `CI` is set) without root.
fn full_disk_test(dir: &Path) -> Option<Tmpfs> {
    let disk = is_root().then(|| small_disk(dir, "1536k")).flatten();
    if disk.is_none() {
        let why = "a full disk needs a small tmpfs, and mounting one needs root";
        assert!(std::env::var_os("CI").is_none(), "{why} (CI is set)");
        eprintln!("skipped: {why}");
    }
    disk
}

/// A full disk: every command that exited 0 is there, every one that failed
/// changed nothing, and reading still works.
#[test]
fn on_a_full_disk_what_exited_0_is_there_and_what_failed_changed_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = full_disk_test(dir.path()) else {
        return;
    };
    let r = Replica::at("agent-1", disk.0.join("state.db"));
    let big = "x".repeat(20_000);
    let (mut ok, mut failed) = (Vec::new(), 0);
    let mut total = 0u64;
    for i in 0..400u64 {
        // Registers fill the disk; a counter is changed in between.
        let out = r.run(&["set", &format!("big:{i}"), &big]);
        match out.status.code() {
            Some(0) => ok.push(i),
            Some(2) => {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("nothing was changed"), "{err}");
                assert!(err.contains("full"), "{err}");
                failed += 1;
            }
            other => panic!("exit {other:?}: {}", String::from_utf8_lossy(&out.stderr)),
        }
        let out = r.run(&["inc", "n", &(i + 1).to_string()]);
        match out.status.code() {
            Some(0) => {
                total += i + 1;
                assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{total}\n"));
            }
            Some(2) => failed += 1,
            other => panic!("exit {other:?}"),
        }
        if failed >= 20 {
            break;
        }
    }
    assert!(failed >= 20, "the disk never filled: {} writes", ok.len());
    assert!(!ok.is_empty(), "nothing fit");
    let store = r.store();
    let bigs: Vec<u64> = store
        .list("big:")
        .map(|(n, _)| n[4..].parse().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        bigs, ok,
        "the registers on disk are not the ones acknowledged"
    );
    let n = store
        .get("n", CrdtType::GCounter)
        .map_or(0, |o| o.value_json().as_u64().unwrap());
    assert_eq!(n, total);
    assert_eq!(r.ok(&["get", "n"]), format!("{total}\n"));
    let rows: i64 = r.sql("SELECT count(*) FROM history");
    let counted = ok.len() as i64
        + store.get("n", CrdtType::GCounter).map_or(0, |o| {
            o.max_seq(&crdt::ReplicaId::new("agent-1").unwrap()) as i64
        });
    assert_eq!(rows, counted, "history rows of failed commands");
}

/// Processes that create one replica at the same moment take turns: each
/// change is there, and none fails.
#[test]
fn processes_creating_one_replica_together_all_succeed() {
    for round in 0..3 {
        let r = Replica::new("agent-1");
        let children: Vec<_> = (0..8)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_crdt"))
                    .args(["inc", "n"])
                    .env("CRDT_STATE", r.state())
                    .env_remove("CRDT_REPLICA")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let store = r.store();
        assert_eq!(
            store.get("n", CrdtType::GCounter).unwrap().value_json(),
            8,
            "round {round}"
        );
    }
}

/// A migration killed at any moment: the next command migrates (or finds
/// migrated) every object, byte for byte.
#[test]
fn a_migration_killed_at_any_moment_loses_nothing() {
    let src = Replica::new("agent-1");
    let lines: String = (0..20_000).map(|i| format!("inc obj:{i:05}\n")).collect();
    let batch = src.dir.path().join("b.txt");
    std::fs::write(&batch, lines).unwrap();
    src.ok(&["batch", batch.to_str().unwrap()]);
    let text = src.ok(&["export"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_crdt"))
            .args(["info"])
            .env("CRDT_STATE", &state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole migration takes here.
    std::fs::write(&state, &text).unwrap();
    let start = std::time::Instant::now();
    assert!(migrate().wait().unwrap().success());
    let full = start.elapsed();
    for fraction in [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0] {
        for f in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        std::fs::write(&state, &text).unwrap();
        let mut child = migrate();
        std::thread::sleep(full.mul_f64(fraction));
        let _ = child.kill();
        child.wait().unwrap();
        let r = Replica::at("agent-1", state.clone());
        assert_eq!(r.ok(&["export"]), text, "after a kill at {fraction}");
    }
}

/// #20's commands on a full disk: every `put` that exited 0 is there, every
/// one that failed changed nothing, and a `del` either deleted (exit 0) or
/// left the map as it was (exit 2).
#[test]
fn map_writes_and_a_delete_on_a_full_disk_keep_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = full_disk_test(dir.path()) else {
        return;
    };
    let r = Replica::at("agent-1", disk.0.join("state.db"));
    let big = "x".repeat(20_000);
    let (mut ok, mut failed) = (Vec::new(), 0);
    for i in 0..400u64 {
        let out = r.run(&["put", "config:big", &format!("k{i}"), &big]);
        match out.status.code() {
            Some(0) => ok.push(format!("k{i}")),
            Some(2) => {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("full"), "{err}");
                failed += 1;
                if failed >= 10 {
                    break;
                }
            }
            other => panic!("exit {other:?}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    assert!(failed >= 10 && !ok.is_empty(), "the disk never filled");
    let keys = |r: &Replica| -> Vec<String> {
        match r.store().get("config:big", CrdtType::Map) {
            Some(crdt::Object::Map(m)) => m.keys().map(String::from).collect(),
            _ => Vec::new(),
        }
    };
    let mut want = ok.clone();
    want.sort();
    assert_eq!(
        keys(&r),
        want,
        "the keys on disk are not the ones acknowledged"
    );
    let out = r.run(&["del", "config:big"]);
    let gone = r
        .store()
        .get("config:big", CrdtType::Map)
        .is_some_and(|o| o.is_deleted());
    match out.status.code() {
        Some(0) => assert!(gone, "del exited 0 but the map is there"),
        Some(2) => {
            assert!(!gone, "del failed but deleted");
            assert_eq!(keys(&r), want);
        }
        other => panic!("exit {other:?}"),
    }
}

//! Fuzzing on stable Rust: every decoder gets inputs made by mutating valid
//! ones (the checked-in seeds of `tests/fuzz-corpus/` and `tests/golden/`,
//! and states built by random operations), for a bounded time per target.
//!
//! Invariant after every input: the decoder refuses it with an error, or
//! what it yields encodes, decodes to the same thing, passes or fails the
//! merge gate against a valid state, and when it passes, the merge encodes
//! and reloads too. A panic, an abort or a hang is a failure.
//!
//! `CRDT_FUZZ_SECS` (default 2) is the time per target; a failure prints
//! the input that replays it alone (`CRDT_FUZZ_INPUT=N cargo test --test
//! fuzz TARGET`); `CRDT_FUZZ_SEED` fixes a run's base seed (default: the
//! clock); `scripts/fuzz.sh MINUTES` runs longer. Each target prints its
//! iterations.

use std::path::Path;
use std::time::{Duration, Instant};

use crdt::sync::persist::{Durable, LogIo};
use crdt::sync::protocol::{self, Effect, Session};
use crdt::{CrdtType, Object, ReplicaId, Store, snapshot};
use serde_json::{Value, json};

/// xorshift64*: small, fast, replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

fn secs() -> Duration {
    let s: f64 = std::env::var("CRDT_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn seed(target: &str) -> u64 {
    let base = std::env::var("CRDT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    base ^ target
        .bytes()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b))
        | 1
}

/// Runs `one` on fresh inputs until the time is up; a panic names the seed.
fn fuzz(target: &str, mut one: impl FnMut(&mut Rng)) {
    // One input again, as a failure names it.
    if let Some(input) = std::env::var("CRDT_FUZZ_INPUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        one(&mut Rng(input));
        return;
    }
    let seed = seed(target);
    let deadline = Instant::now() + secs();
    let mut rng = Rng(seed);
    let mut n = 0u64;
    while Instant::now() < deadline {
        // Each input gets its own seed, so a failure replays alone.
        let input_seed = rng.next() | 1;
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one(&mut Rng(input_seed))));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{target}: input {n} failed (replay it: CRDT_FUZZ_INPUT={input_seed} cargo test --test fuzz {target}): {msg}"
            );
        }
        n += 1;
    }
    eprintln!("fuzz {target}: {n} inputs in {:?}", secs());
}

// ------------------------------------------------------------- the inputs

fn corpus() -> Vec<Value> {
    let mut out = Vec::new();
    for dir in ["tests/fuzz-corpus", "tests/golden"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            out.push(
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display())),
            );
        }
    }
    assert!(out.len() >= 5, "the seed corpus is missing");
    out
}

fn id(i: usize) -> ReplicaId {
    ReplicaId::new(["alice", "bob", "m", "agent-1"][i % 4]).unwrap()
}

/// A store built by random operations on a few objects of every type.
fn random_store(rng: &mut Rng) -> Store {
    let mut store = Store::new(id(rng.below(4)));
    for _ in 0..rng.below(12) {
        let me = id(rng.below(4));
        let name = ["c", "p", "r", "s", "t", "m", "b"][rng.below(7)];
        let ty = CrdtType::ALL[rng.below(CrdtType::ALL.len())];
        if store.objects(name).iter().any(|o| o.ty() != ty) {
            continue;
        }
        let amount = [1, 2, 1000, u64::MAX / 4][rng.below(4)];
        if rng.chance(8) {
            // A delete: what follows brings the object back.
            drop(
                store
                    .get_or_create(name, ty)
                    .delete_object(&me, rng.next() % 5000),
            );
            continue;
        }
        match store.get_or_create(name, ty) {
            Object::GCounter(c) => drop(c.inc(&me, amount)),
            Object::PnCounter(c) => drop(c.dec(&me, amount)),
            Object::LwwRegister(r) => {
                drop(r.set(&me, json!({"k": rng.below(3)}), rng.next() % 5000))
            }
            Object::OrSet(s) => {
                let v = json!(format!("task-{}", rng.below(4)));
                if rng.chance(3) {
                    drop(s.remove(&me, &v));
                } else {
                    drop(s.add(&me, v));
                }
            }
            Object::Rga(t) => {
                let len = t.len();
                if len > 0 && rng.chance(3) {
                    let pos = rng.below(len);
                    drop(t.delete(&me, pos, 1 + rng.below(len - pos)));
                } else {
                    drop(t.insert(&me, rng.below(len + 1), ["ab", "é", "xyz"][rng.below(3)]));
                }
            }
            Object::BoundedCounter(b) => {
                let n = [1, 5, 40][rng.below(3)];
                drop(match rng.below(4) {
                    0 => b.create(&me, n * 3),
                    1 => b.allocate(&me, n),
                    2 => b.release(&me, n),
                    _ => b.transfer(&me, &id(rng.below(4)), n),
                });
            }
            Object::Map(m) => {
                let key = ["ai-review", "dark-mode", "é"][rng.below(3)];
                if rng.chance(3) {
                    drop(m.unset(&me, key));
                } else {
                    drop(m.put(&me, key, json!(rng.below(3)), rng.next() % 5000));
                }
            }
        }
    }
    store
}

const NUMBERS: [i128; 12] = [
    0,
    1,
    2,
    -1,
    9,
    1 << 32,
    (1 << 53) - 1,
    1 << 53,
    1_000_000_000_000_000_000,
    u64::MAX as i128,
    50_000_000,
    4,
];

fn number(rng: &mut Rng) -> Value {
    let n = NUMBERS[rng.below(NUMBERS.len())];
    match u64::try_from(n) {
        Ok(u) => json!(u),
        Err(_) => json!(n as i64),
    }
}

/// Every node of `v`, by path of indices (for picking one at random).
fn nodes(v: &Value, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(path.clone());
    let children: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        _ => return,
    };
    for (i, c) in children.into_iter().enumerate() {
        path.push(i);
        nodes(c, path, out);
        path.pop();
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
    let mut cur = v;
    for &i in path {
        cur = match cur {
            Value::Array(a) => &mut a[i],
            Value::Object(m) => m.values_mut().nth(i).unwrap(),
            _ => unreachable!(),
        };
    }
    cur
}

/// One to four structural mutations of a JSON value.
fn mutate(rng: &mut Rng, v: &mut Value) {
    for _ in 0..1 + rng.below(4) {
        let mut all = Vec::new();
        nodes(v, &mut Vec::new(), &mut all);
        let path = all[rng.below(all.len())].clone();
        let donor = node_mut(v, &all[rng.below(all.len())]).clone();
        let node = node_mut(v, &path);
        match rng.below(11) {
            0 => *node = number(rng),
            1 => {
                if let Some(n) = node.as_u64() {
                    *node = json!(n.wrapping_add(rng.below(3) as u64).wrapping_sub(1));
                } else {
                    *node = number(rng);
                }
            }
            2 => *node = json!(["alice", "m", "", "a b", "x\u{202E}", "bob"][rng.below(6)]),
            3 => *node = Value::Null,
            4 => *node = json!([node.clone()]),
            5 => *node = donor,
            6 => {
                if let Value::Object(m) = node
                    && !m.is_empty()
                {
                    let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
                    m.remove(&k);
                }
            }
            7 => {
                if let Value::Array(a) = node
                    && !a.is_empty()
                {
                    let i = rng.below(a.len());
                    if rng.chance(2) {
                        a.remove(i);
                    } else {
                        let x = a[i].clone();
                        a.insert(i, x);
                    }
                }
            }
            8 => *node = (0..40 + rng.below(100)).fold(json!(1), |x, _| json!([x])),
            9 => {
                if let Value::Object(m) = node {
                    m.insert(["alice", "extra", "m"][rng.below(3)].into(), donor);
                }
            }
            _ => {
                if let Value::Array(a) = node {
                    a.push(donor);
                }
            }
        }
    }
}

/// Sometimes a byte-level change of the text, too (syntax errors, UTF-8).
fn mutate_text(rng: &mut Rng, text: String) -> String {
    if !rng.chance(8) || text.is_empty() {
        return text;
    }
    let mut bytes = text.into_bytes();
    let i = rng.below(bytes.len());
    match rng.below(3) {
        0 => bytes[i] ^= 1 << rng.below(8),
        1 => bytes.truncate(i),
        _ => bytes.insert(i, [b'"', b'{', 0xc3, b'\n', b'9'][rng.below(5)]),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The invariant for whatever a decoder let in.
fn holds(store: &Store, held: &Store) {
    let text = snapshot::encode(store);
    let back = snapshot::decode(&text)
        .unwrap_or_else(|e| panic!("accepted, but does not reload: {e}\n{text}"));
    assert_eq!(&back, store, "reloads differently");
    assert_eq!(snapshot::encode(&back), text, "encodes differently");
    let wire = protocol::objects_json(store).to_string();
    let sent =
        protocol::decode_objects(Some(&serde_json::from_str(&wire).unwrap()), store.replica())
            .unwrap_or_else(|e| panic!("accepted, but cannot be sent: {e}"));
    assert_eq!(&sent, store);
    if held.check_mergeable(store).is_ok() {
        let mut merged = held.clone();
        merged.merge(store);
        let text = snapshot::encode(&merged);
        let back = snapshot::decode(&text)
            .unwrap_or_else(|e| panic!("merged, but does not reload: {e}\n{text}"));
        assert_eq!(back, merged);
    }
}

fn seed_input(rng: &mut Rng, corpus: &[Value]) -> Value {
    if rng.chance(3) {
        snapshot::to_value(&random_store(rng))
    } else {
        corpus[rng.below(corpus.len())].clone()
    }
}

// ----------------------------------------------------------------- targets

#[test]
fn fuzz_snapshots_and_type_states() {
    let corpus = corpus();
    fuzz("snapshot", |rng| {
        let held = random_store(rng);
        let mut v = seed_input(rng, &corpus);
        mutate(rng, &mut v);
        let text = mutate_text(rng, v.to_string());
        let decoded = snapshot::decode(&text);
        // The decoder's fast paths (counters straight from their text)
        // accept exactly what the value decoder accepts.
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let slow = snapshot::from_value(&value);
            assert_eq!(
                decoded.as_ref().ok(),
                slow.as_ref().ok(),
                "fast and value decoders disagree: {:?} vs {:?}",
                decoded.as_ref().err(),
                slow.as_ref().err()
            );
        }
        if let Ok(store) = decoded {
            holds(&store, &held);
        }
    });
}

#[test]
fn fuzz_protocol_messages() {
    let corpus = corpus();
    fuzz("protocol", |rng| {
        let mut server = random_store(rng);
        let mut session = Session::default();
        let hello = json!({"type": "hello", "replica": "m", "protocol": 1});
        if !rng.chance(5) {
            protocol::handle(&server, &mut session, &hello.to_string());
        }
        let objects = match seed_input(rng, &corpus).get("objects") {
            Some(o) => o.clone(),
            None => json!([]),
        };
        let mut msg = match rng.below(5) {
            0 => json!({"type": "push", "id": 1, "objects": objects}),
            1 => {
                json!({"type": "sync", "id": 2, "select": ["c", "t:"], "versions": [{"name": "c", "type": "g-counter", "version": {"alice": 2}}], "watch": true, "after": "b", "upto": "t:z"})
            }
            2 => hello,
            3 => json!({"type": "unwatch", "id": 3}),
            _ => {
                json!({"type": "push", "id": 4, "objects": protocol::objects_json(&random_store(rng))})
            }
        };
        mutate(rng, &mut msg);
        let frame = mutate_text(rng, msg.to_string());
        for effect in protocol::handle(&server, &mut session, &frame) {
            // A reply, however it was asked for, is JSON messages under the limit.
            if let Effect::Stream(mut reply) = effect {
                while let Some(text) = reply.next_message(&server) {
                    assert!(text.len() <= session.max_message_bytes);
                    serde_json::from_str::<serde_json::Value>(&text)
                        .unwrap_or_else(|e| panic!("a reply that is not JSON ({e}): {text}"));
                }
                continue;
            }
            if let Effect::Persist { delta, id } = effect {
                // A delta (it may refer to what the receiver holds) travels
                // as it decoded; merged, it must give a state that reloads.
                let wire = protocol::objects_json(&delta).to_string();
                let back = protocol::decode_objects(
                    Some(&serde_json::from_str(&wire).unwrap()),
                    &id_of(&delta),
                )
                .unwrap_or_else(|e| panic!("accepted, but cannot be sent on: {e}"));
                assert_eq!(back, delta);
                if protocol::check_push(&server, &session, &delta).is_ok() {
                    protocol::commit_push(&mut server, &delta, id.as_ref());
                    holds(&server, &Store::new(id_of(&server)));
                }
            }
        }
    });
}

fn id_of(s: &Store) -> ReplicaId {
    s.replica().clone()
}

/// The server's own files: a snapshot and log lines, as found on start.
#[test]
fn fuzz_server_log_and_snapshot() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    fuzz("server-log", |rng| {
        let data = dir.path().join(format!("d{}", rng.next()));
        std::fs::create_dir_all(&data).unwrap();
        let mut log = String::new();
        for _ in 0..1 + rng.below(3) {
            let mut v = json!({"objects": seed_input(rng, &corpus).get("objects").cloned().unwrap_or(json!([]))});
            if rng.chance(2) {
                mutate(rng, &mut v);
            }
            log.push_str(&v.to_string());
            log.push('\n');
        }
        std::fs::write(data.join("log.jsonl"), mutate_text(rng, log)).unwrap();
        if rng.chance(3) {
            let mut snap = seed_input(rng, &corpus);
            mutate(rng, &mut snap);
            std::fs::write(data.join("snapshot.json"), snap.to_string()).unwrap();
        }
        if let Ok((_d, store, _)) = Durable::open_with(&data, || id(0), LogIo::Buffered) {
            holds(&store, &Store::new(id(0)));
        }
        let _ = std::fs::remove_dir_all(&data);
    });
}

/// What a cluster node reads from Redis: log lines another node published
/// (a stream entry), and the compacted copy's lines (one object each).
#[test]
fn fuzz_cluster_entries() {
    use crdt::sync::cluster::{decode_lines, decode_pushes, object_line};
    let corpus = corpus();
    fuzz("cluster-entry", |rng| {
        let mut text = String::new();
        for _ in 0..1 + rng.below(3) {
            let mut v = json!({"objects": seed_input(rng, &corpus).get("objects").cloned().unwrap_or(json!([]))});
            if rng.chance(2) {
                mutate(rng, &mut v);
            }
            if let Some(o) = v.as_object_mut().filter(|_| rng.chance(2)) {
                o.insert("replica".into(), json!("agent-1"));
                o.insert("time_ms".into(), json!(rng.next() % 10_000_000_000_000));
            }
            text.push_str(&v.to_string());
            text.push('\n');
        }
        let text = mutate_text(rng, text);
        // An entry with its lines merged says who pushed when: as text.
        for (who, _) in decode_pushes(&text) {
            assert!(crdt::ReplicaId::new(who.as_str()).is_ok(), "{who}");
        }
        let Ok(lines) = decode_lines(&text, &id(0)) else {
            return;
        };
        // A node merges what fits its state (a delta may refer to what it
        // holds): the result must reload.
        let mut node = random_store(rng);
        for crdt::sync::cluster::Line { delta, .. } in lines {
            if node.check_mergeable(&delta).is_ok() {
                node.merge(&delta);
                holds(&node, &Store::new(id(0)));
            }
            // The compacted copy's form of each object reads back the same.
            for (name, o) in delta.iter() {
                let mut line = String::new();
                object_line(&mut line, name, o);
                let back = decode_lines(&line, &id(0)).expect("an object's line decodes");
                assert_eq!(back.len(), 1);
                assert_eq!(back[0].delta.get(name, o.ty()), Some(o), "{line}");
            }
        }
    });
}

/// A replica's state file, as `crdt` finds it.
#[test]
fn fuzz_state_files() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    fuzz("state-file", |rng| {
        let path = dir.path().join(format!("s{}.json", rng.next()));
        let mut v = seed_input(rng, &corpus);
        mutate(rng, &mut v);
        std::fs::write(&path, mutate_text(rng, v.to_string())).unwrap();
        if rng.chance(2) {
            let mut line = json!({"objects": seed_input(rng, &corpus).get("objects").cloned().unwrap_or(json!([]))});
            mutate(rng, &mut line);
            std::fs::write(crdt::statefile::journal_path(&path), format!("{line}\n")).unwrap();
        }
        if let Ok(Some(store)) = crdt::statefile::load(&path) {
            holds(&store, &Store::new(id(0)));
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(crdt::statefile::journal_path(&path));
    });
}

/// A replica database's rows (name, type, state) and history deltas, as
/// `crdt` reads them: what is accepted reloads, is sent, and merges.
#[test]
fn fuzz_database_rows() {
    let corpus = corpus();
    fuzz("db-row", |rng| {
        let held = random_store(rng);
        let v = seed_input(rng, &corpus);
        let Some(objects) = v.get("objects").and_then(Value::as_array) else {
            return;
        };
        if objects.is_empty() {
            return;
        }
        let mut item = objects[rng.below(objects.len())].clone();
        mutate(rng, &mut item);
        let name = item["name"].as_str().unwrap_or("x").to_string();
        let ty = item["type"].as_str().unwrap_or("g-counter").to_string();
        let state = mutate_text(rng, item["state"].to_string());
        let delta = rng.chance(2);
        let decoded = if delta {
            snapshot::decode_delta_text(&name, &ty, &state, "row")
        } else {
            snapshot::decode_state_text(&name, &ty, &state, "row")
        };
        if let Ok((_, o)) = decoded {
            let mut store = Store::new(id(0));
            store.insert_object(&name, o);
            if delta {
                if held.check_mergeable(&store).is_ok() {
                    let mut merged = held.clone();
                    merged.merge(&store);
                    holds(&merged, &Store::new(id(0)));
                }
            } else {
                holds(&store, &held);
            }
        }
    });
}

/// A replica database file as `import` or `--from` finds it: the bytes of
/// a real one with some changed (pages, headers, rows, the schema). What
/// opens and loads holds; nothing panics or runs unbounded.
#[test]
fn fuzz_database_files() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    // A few real databases to mutate, made from the seeds.
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let mut rng = Rng(7);
    for i in 0..6 {
        let store = match snapshot::from_value(&seed_input(&mut rng, &corpus)) {
            Ok(s) => s,
            Err(_) => random_store(&mut rng),
        };
        let path = dir.path().join(format!("seed{i}.db"));
        let (mut db, _) =
            crdt::db::Db::open_or_create(&path, || Ok(store.replica().clone())).unwrap();
        let mut c = db.change("import seed", 1).unwrap();
        c.load_all().unwrap();
        c.store_mut().merge(&store);
        c.record_merges(None);
        c.commit().unwrap();
        drop(db);
        // Folded into one file, as a copy someone hands over would be.
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        seeds.push(std::fs::read(&path).unwrap());
    }
    let mut n = 0u64;
    fuzz("db-file", |rng| {
        let mut bytes = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(8) {
            let at = if rng.chance(3) {
                rng.below(100.min(bytes.len())) // the header
            } else {
                rng.below(bytes.len())
            };
            bytes[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => bytes[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        if rng.chance(10) {
            bytes.truncate(rng.below(bytes.len()));
        }
        n += 1;
        let path = dir.path().join(format!("f{n}.db"));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(db) = crdt::db::Db::open_read_only(&path) {
            if let Ok(store) = db.load() {
                holds(&store, &Store::new(id(0)));
            }
            // The history as `log`, `--at` and `blame` read it.
            let _ = db.log(&crdt::db::LogQuery::default());
            if let Ok(then) = db.load_at(&[], crdt::db::Moment::Position(1 << 40)) {
                holds(&then, &Store::new(id(0)));
            }
            let _ = db.load_at(&[], crdt::db::Moment::Time(rng.next()));
            if let Some((name, _)) = db
                .load()
                .ok()
                .and_then(|s| s.iter().next().map(|(n, _)| (n.to_string(), ())))
            {
                let _ = db.entries_of(&name);
            }
        }
        let _ = std::fs::remove_file(&path);
    });
}

//! Sync of any size: a fresh replica pulls, with `crdt sync`, a state of
//! 1,000,000 small objects (g-counters) and, separately, one or-set of about
//! 100 MB, from `crdt serve` at its default limits (16 MiB messages). For
//! each: the time of the whole `crdt sync` process, the bytes on the wire
//! (as the client counts them), the peak RSS of the server and of the
//! client, and the largest message. The peer, in the same run: a redis
//! replica's full transfer of the same data (`redis-cli --rdb`, which is how
//! a new redis replica pulls the state), from a redis holding 1,000,000
//! keys, and one set of the same members.
//!
//! `cargo bench --bench pull [-- RUNS]` (default 3 runs per row, medians;
//! `CRDT_BENCH_OBJECTS` and `CRDT_BENCH_SET_MB` make it smaller)

mod common;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crdt::{CrdtType, Object, ReplicaId, Store, snapshot};
use serde_json::{Value, json};

const CRDT: &str = env!("CARGO_BIN_EXE_crdt");

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak RSS (VmHWM) of a running process, in MB.
fn hwm_mb(pid: u32) -> f64 {
    common::status_mb(pid, "VmHWM")
}

/// Runs `cmd` to the end, watching its peak RSS: (seconds, peak MB, stdout).
fn timed(mut cmd: Command) -> (f64, f64, String) {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let mut peak = 0f64;
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut s);
        s
    });
    loop {
        let m = hwm_mb(pid);
        if m.is_finite() {
            peak = peak.max(m);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{cmd:?} failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (start.elapsed().as_secs_f64(), peak, reader.join().unwrap())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Row {
    what: String,
    secs: f64,
    bytes: f64,
    server_mb: f64,
    client_mb: f64,
}

/// Pulls the server's state into fresh replicas `runs` times.
fn pull_rows(what: &str, data: &Path, dir: &Path, runs: usize) -> Row {
    let server = common::serve_on(data, &[]);
    let port = server.port;
    let (mut secs, mut bytes, mut client) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let state = dir.join(format!("pull-{run}.db"));
        let mut cmd = Command::new(CRDT);
        cmd.env("CRDT_STATE", &state)
            .env("CRDT_REPLICA", format!("puller-{run}"))
            .env_remove("CRDT_TOKEN")
            .args(["--json", "--connect-timeout", "120"])
            .arg("--url")
            .arg(format!("ws://127.0.0.1:{port}/ws"))
            .arg("sync");
        let (s, peak, out) = timed(cmd);
        let report: Value = serde_json::from_str(&out).unwrap();
        secs.push(s);
        bytes.push(report["bytes_received"].as_f64().unwrap());
        client.push(peak);
        let _ = std::fs::remove_file(&state);
        let _ = std::fs::remove_file(state.with_extension("db-wal"));
    }
    let server_mb = hwm_mb(server.child.id());
    drop(server);
    Row {
        what: what.to_string(),
        secs: median(secs),
        bytes: median(bytes),
        server_mb,
        client_mb: median(client),
    }
}

/// redis with the same data: a full transfer as a new replica pulls it.
fn redis_rows(what: &str, load: &dyn Fn(&mut dyn Write), runs: usize) -> Option<Row> {
    let server = common::Redis::start(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync-delay",
        "0",
    ])?;
    let port = server.port;
    let rdir = tempfile::tempdir().unwrap();
    let rdir = rdir.path();
    let mut pipe = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    load(pipe.stdin.as_mut().unwrap());
    drop(pipe.stdin.take());
    assert!(pipe.wait().unwrap().success());
    let (mut secs, mut bytes, mut client) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let file = rdir.join(format!("pull-{run}.rdb"));
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &port.to_string(), "--rdb"])
            .arg(&file)
            .stderr(Stdio::null());
        let (s, peak, _) = timed(cmd);
        secs.push(s);
        bytes.push(std::fs::metadata(&file).map_or(0, |m| m.len()) as f64);
        client.push(peak);
        let _ = std::fs::remove_file(&file);
    }
    let server_mb = hwm_mb(server.child.id());
    drop(server);
    Some(Row {
        what: what.to_string(),
        secs: median(secs),
        bytes: median(bytes),
        server_mb,
        client_mb: median(client),
    })
}

/// RESP for one command.
fn resp(out: &mut dyn Write, args: &[&str]) {
    let mut s = format!("*{}\r\n", args.len());
    for a in args {
        s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    out.write_all(s.as_bytes()).unwrap();
}

fn write_snapshot(data: &Path, store: &Store) {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(data.join("snapshot.json"), snapshot::encode(store)).unwrap();
}

fn print(rows: &[Row]) {
    println!("| pull | time | bytes on the wire | server peak RSS | client peak RSS |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.2} s | {:.1} MB | {:.0} MB | {:.0} MB |",
            r.what,
            r.secs,
            r.bytes / 1e6,
            r.server_mb,
            r.client_mb
        );
    }
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let objects = env_num("CRDT_BENCH_OBJECTS", 1_000_000);
    let set_mb = env_num("CRDT_BENCH_SET_MB", 100);
    let base = std::env::var_os("CRDT_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let me = ReplicaId::new("bench-writer").unwrap();
    let mut rows = Vec::new();

    // 1,000,000 counters.
    let mut store = Store::new(ReplicaId::new("server-bench").unwrap());
    for i in 0..objects {
        if let Object::GCounter(c) = store.get_or_create(&format!("obj:{i:07}"), CrdtType::GCounter)
        {
            c.inc(&me, 1 + (i as u64 % 7)).unwrap();
        }
    }
    let data = dir.path().join("counters");
    write_snapshot(&data, &store);
    drop(store);
    rows.push(pull_rows(
        &format!("crdt: {objects} counters"),
        &data,
        dir.path(),
        runs,
    ));
    let n = objects;
    if let Some(r) = redis_rows(
        &format!("redis --rdb: {objects} keys"),
        &move |out| {
            for i in 0..n {
                resp(
                    out,
                    &["SET", &format!("obj:{i:07}"), &(1 + i % 7).to_string()],
                );
            }
        },
        runs,
    ) {
        rows.push(r);
    }

    // One or-set of about 100 MB: members of about 100 bytes.
    let member = |i: usize| format!("member-{i:09}-{}", "m".repeat(80));
    let count = set_mb * 1_000_000 / 150;
    let mut store = Store::new(ReplicaId::new("server-bench").unwrap());
    if let Object::OrSet(s) = store.get_or_create("tasks:huge", CrdtType::OrSet) {
        for i in 0..count {
            s.add(&me, json!(member(i))).unwrap();
        }
    }
    let data = dir.path().join("set");
    write_snapshot(&data, &store);
    let size = std::fs::metadata(data.join("snapshot.json")).unwrap().len();
    drop(store);
    rows.push(pull_rows(
        &format!(
            "crdt: one or-set, {count} members, {:.0} MB snapshot",
            size as f64 / 1e6
        ),
        &data,
        dir.path(),
        runs,
    ));
    if let Some(r) = redis_rows(
        &format!("redis --rdb: one set, {count} members"),
        &move |out| {
            for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
                let members: Vec<String> = chunk.iter().map(|&i| member(i)).collect();
                let mut args = vec!["SADD", "tasks:huge"];
                args.extend(members.iter().map(String::as_str));
                resp(out, &args);
            }
        },
        runs,
    ) {
        rows.push(r);
    }
    print(&rows);
}

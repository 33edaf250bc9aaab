//! `crdt serve --cluster` with 1 and 3 nodes on one redis-server (all on
//! this machine, sharing its cores): 100 clients spread over the nodes, each
//! pushing counter increments and waiting for the ack; a probe on node 1
//! pushes to a key a watcher on the last node watches (cross-node fan-out:
//! send on node 1 → update on node 3). Prints changes/s, p50/p99 of send →
//! ack and of the fan-out, and each process's CPU; the two setups take
//! turns, three times over, then the medians and the ratio. Last, Redis's
//! memory once a million changes went through 3 nodes with trimming on.
//!
//! `cargo bench --bench cluster [-- SECONDS_PER_ROW [--repeat N] [--million]]`
//! (default 3 seconds, 3 repeats; the million-change row only with --million)

mod common;
use common::{Redis, Serve, Ws, connect, pct, read_json, serve_with};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::Message;

const CLIENTS: usize = 100;

struct Row {
    changes_per_s: f64,
    ack_p50: f64,
    ack_p99: f64,
    fan_p50: f64,
    fan_p99: f64,
}

fn push(ws: &mut Ws, id: u64, name: &str, who: &str, n: u64) {
    let msg = json!({"type": "push", "id": id, "objects": [{"name": name, "type": "g-counter",
        "state": {"counts": {who: {"seq": n, "count": n}}}}]});
    ws.send(Message::text(msg.to_string())).unwrap();
}

/// Waits until every node reads `/healthz` ok.
fn healthy(nodes: &[Serve]) {
    for n in nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let body = std::process::Command::new("curl")
                .args(["-s", &format!("http://127.0.0.1:{}/healthz", n.port)])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if body == "ok\n" {
                break;
            }
            assert!(Instant::now() < deadline, "node not healthy: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `nodes` nodes of one cluster (keys under `prefix`), each healthy.
fn cluster(redis: &Redis, nodes: usize, prefix: &str) -> Vec<Serve> {
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let servers: Vec<Serve> = (0..nodes)
        .map(|_| {
            serve_with(&[
                "--max-connections",
                "5000",
                "--cluster",
                &url,
                "--cluster-prefix",
                prefix,
            ])
        })
        .collect();
    healthy(&servers);
    servers
}

/// One row: `secs` seconds of load on `servers`.
fn row(servers: &[Serve], secs: f64) -> Row {
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let acks: Arc<Mutex<Vec<f64>>> = Arc::default();
    // The watcher on the last node, the probe on the first.
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let fan: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut watcher = connect(*ports.last().unwrap(), "watcher");
    watcher
        .send(Message::text(
            json!({"type": "sync", "id": 1, "select": ["probe"], "versions": [], "watch": true})
                .to_string(),
        ))
        .unwrap();
    let _ = read_json(&mut watcher);
    let watch = {
        let (stop, sent, fan) = (stop.clone(), sent.clone(), fan.clone());
        std::thread::spawn(move || {
            if let tungstenite::stream::MaybeTlsStream::Plain(s) = watcher.get_ref() {
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            }
            while !stop.load(Ordering::Relaxed) {
                let Ok(Message::Text(t)) = watcher.read() else {
                    continue;
                };
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                let seq = v["objects"][0]["state"]["counts"]["probe"]["seq"].as_u64();
                if let Some(at) = seq.and_then(|s| sent.lock().unwrap().remove(&s)) {
                    fan.lock().unwrap().push(at.elapsed().as_secs_f64() * 1e3);
                }
            }
        })
    };
    let probe = {
        let (stop, sent, port) = (stop.clone(), sent.clone(), ports[0]);
        std::thread::spawn(move || {
            let mut ws = connect(port, "probe");
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                sent.lock().unwrap().insert(n, Instant::now());
                push(&mut ws, n, "probe", "probe", n);
                let _ = read_json(&mut ws);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (stop, changes, acks) = (stop.clone(), changes.clone(), acks.clone());
            let port = ports[i % ports.len()];
            std::thread::spawn(move || {
                let who = format!("c{i}");
                let mut ws = connect(port, &who);
                let mut mine = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    push(&mut ws, n, &format!("bench:{}", i % 10), &who, n);
                    let _ = read_json(&mut ws);
                    mine.push(t.elapsed().as_secs_f64() * 1e3);
                    changes.fetch_add(1, Ordering::Relaxed);
                }
                acks.lock().unwrap().extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs / 4.0));
    changes.store(0, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let done = changes.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    probe.join().unwrap();
    watch.join().unwrap();
    let mut acks = acks.lock().unwrap().clone();
    acks.sort_by(f64::total_cmp);
    let mut fan = fan.lock().unwrap().clone();
    fan.sort_by(f64::total_cmp);
    Row {
        changes_per_s: done,
        ack_p50: pct(&acks, 0.5),
        ack_p99: pct(&acks, 0.99),
        fan_p50: pct(&fan, 0.5),
        fan_p99: pct(&fan, 0.99),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    pct(&v, 0.5)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let secs: f64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(3.0);
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let Some(redis) = Redis::start(&["--save", "", "--appendonly", "no"]) else {
        return;
    };
    println!(
        "{CLIENTS} clients over the nodes, {secs} s per row; fan-out: a push on node 1 seen by a watcher on the last node"
    );
    println!(
        "{:<8} {:>10} {:>9} {:>9} {:>10} {:>10}",
        "nodes", "changes/s", "ack p50", "ack p99", "fan p50", "fan p99"
    );
    let mut rows: HashMap<usize, Vec<Row>> = HashMap::new();
    for turn in 0..repeat {
        for nodes in [1, 3] {
            let servers = cluster(&redis, nodes, &format!("b{turn}n{nodes}:"));
            let r = row(&servers, secs);
            println!(
                "{:<8} {:>10.0} {:>7.2}ms {:>7.2}ms {:>8.2}ms {:>8.2}ms",
                nodes, r.changes_per_s, r.ack_p50, r.ack_p99, r.fan_p50, r.fan_p99
            );
            rows.entry(nodes).or_default().push(r);
        }
    }
    println!("medians of {repeat}:");
    let mut per = HashMap::new();
    for nodes in [1, 3] {
        let rs = &rows[&nodes];
        let m = |f: fn(&Row) -> f64| median(rs.iter().map(f).collect());
        let cps = m(|r| r.changes_per_s);
        per.insert(nodes, cps);
        println!(
            "{:<8} {:>10.0} {:>7.2}ms {:>7.2}ms {:>8.2}ms {:>8.2}ms",
            nodes,
            cps,
            m(|r| r.ack_p50),
            m(|r| r.ack_p99),
            m(|r| r.fan_p50),
            m(|r| r.fan_p99)
        );
    }
    println!("3 nodes / 1 node: {:.2}x the changes/s", per[&3] / per[&1]);
    if args.iter().any(|a| a == "--million") {
        million(&redis);
    }
}

/// A million changes through 3 nodes (trimming at its defaults), then
/// Redis's memory and the stream's length.
fn million(redis: &Redis) {
    // The rows before left their keys: start from an empty Redis.
    let _ = redis.cli(&["flushall"]).status();
    let before = redis_memory(redis);
    let servers = cluster(redis, 3, "m:");
    let start = Instant::now();
    let mut total = 0.0;
    // Rows of 10 s until a million changes went through (each row also
    // runs 2.5 s before it counts).
    while total < 1e6 && start.elapsed() < Duration::from_secs(600) {
        total += row(&servers, 10.0).changes_per_s * 12.5;
    }
    // The compactor folds what is older than 10 s: let it.
    std::thread::sleep(Duration::from_secs(15));
    let len = redis
        .cli(&["xlen", "m:stream"])
        .stdout(std::process::Stdio::piped())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "after about {total:.0} changes through 3 nodes: redis used_memory {:.1} MB (empty: {before:.1} MB), stream length {len}",
        redis_memory(redis),
    );
}

fn redis_memory(redis: &Redis) -> f64 {
    let out = redis
        .cli(&["info", "memory"])
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |b| b / 1e6)
}

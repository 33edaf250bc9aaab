//! Fairness of `crdt serve`: how long one good client waits for its acks
//! while another client sends the largest valid messages at the default
//! limits, one after another: a sync naming 100,000 versions (6.5 MB), a
//! push of a 15 MiB register value, a push of an or-set with 150,000
//! members, and `/metrics` scrapes. Prints the good client's p50, p99 and
//! max send->ack latency with and without the big messages (same run), and
//! how long each big message took to be answered.
//!
//! `cargo bench --bench fairness [-- SECONDS_PER_PHASE]` (default 5).
//! `CRDT_BENCH_BIN=PATH` runs another build (A/B on one machine).

mod common;
use common::{Ws, connect, pct, serve_with};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::Message;

/// The next JSON message (a close is a failure: the server dropped us).
fn reply(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// The good client: a counter increment, wait for the ack, again, for `secs`.
fn good_client(port: u16, secs: f64, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut ws = connect(port, "good");
    let mut lat = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        n += 1;
        let push = json!({"type": "push", "id": n, "objects": [{"name": "good", "type": "g-counter", "state": {"counts": {"good": {"seq": n, "count": n}}}}]});
        let t = Instant::now();
        ws.send(Message::text(push.to_string())).unwrap();
        let r = reply(&mut ws);
        assert_eq!(r["type"], "ack", "{r}");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat
}

fn metrics(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.contains("crdt_objects"));
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5.0);
    let server = serve_with(&[]);
    let port = server.port;
    // 100,000 small objects, so that a sync can name 100,000 versions.
    let mut loader = connect(port, "loader");
    let mut versions = Vec::new();
    for batch in 0..100 {
        let objects: Vec<Value> = (0..1000)
            .map(|i| {
                let name = format!("obj:{:06}", batch * 1000 + i);
                versions.push(json!({"name": name, "type": "g-counter", "version": {"loader": 1}}));
                json!({"name": name, "type": "g-counter", "state": {"counts": {"loader": {"seq": 1, "count": 1}}}})
            })
            .collect();
        loader
            .send(Message::text(
                json!({"type": "push", "id": batch, "objects": objects}).to_string(),
            ))
            .unwrap();
        assert_eq!(reply(&mut loader)["type"], "ack");
    }
    let sync =
        json!({"type": "sync", "id": 1, "select": ["obj:"], "versions": versions}).to_string();
    let big_value = "x".repeat(15 << 20);
    let members: Vec<Value> = (1..=150_000u64)
        .map(|i| json!({"value": format!("member-{i:08}"), "dots": [["big", i]]}))
        .collect();
    let mut seq = 0u64;
    let big_frames = |seq: &mut u64| -> Vec<(&'static str, String)> {
        *seq += 1;
        vec![
            ("sync of 100,000 versions", sync.clone()),
            ("push of a 15 MiB register", json!({"type": "push", "id": 2, "objects": [{"name": "big:r", "type": "lww-register", "state": {"context": {"big": *seq}, "writes": [{"dot": ["big", *seq], "ts": [*seq, 0], "value": big_value, "lost": null}]}}]}).to_string()),
            ("push of a 150,000-member or-set", json!({"type": "push", "id": 3, "objects": [{"name": format!("big:s{seq}"), "type": "or-set", "state": {"context": {"big": 150_000}, "elements": members}}]}).to_string()),
        ]
    };
    eprintln!(
        "sizes: sync {:.1} MB, register push {:.1} MB, or-set push {:.1} MB",
        sync.len() as f64 / 1e6,
        big_frames(&mut seq)[1].1.len() as f64 / 1e6,
        big_frames(&mut seq)[2].1.len() as f64 / 1e6
    );

    // Phase 1: the good client alone.
    let quiet = good_client(port, secs, Arc::new(AtomicBool::new(false)));
    // Phase 2: the big messages, one after another, while it pushes.
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || good_client(port, secs, stop))
    };
    let mut big = connect(port, "big");
    let mut handled: Vec<(&str, f64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        for (what, frame) in big_frames(&mut seq) {
            let t = Instant::now();
            big.send(Message::text(frame)).unwrap();
            let r = reply(&mut big);
            assert!(
                r["type"] == "ack" || r["type"] == "sync-reply",
                "{what}: {r}"
            );
            handled.push((what, t.elapsed().as_secs_f64() * 1e3));
        }
        let t = Instant::now();
        metrics(port);
        handled.push(("/metrics", t.elapsed().as_secs_f64() * 1e3));
    }
    stop.store(true, Ordering::Relaxed);
    let loaded = good.join().unwrap();
    drop(server);

    println!("good client, send->ack (ms)    n       p50     p99     max");
    for (label, l) in [("alone", &quiet), ("with big messages", &loaded)] {
        println!(
            "  {label:<24} {:>7} {:>8.3} {:>7.2} {:>7.1}",
            l.len(),
            pct(l, 0.5),
            pct(l, 0.99),
            l.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!("big messages, send->answer (ms), median / max:");
    let mut kinds: Vec<&str> = handled.iter().map(|h| h.0).collect();
    kinds.dedup();
    kinds.sort();
    kinds.dedup();
    for k in kinds {
        let mut t: Vec<f64> = handled.iter().filter(|h| h.0 == k).map(|h| h.1).collect();
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "  {k:<34} {:>4}x  {:>7.1} / {:>7.1}",
            t.len(),
            pct(&t, 0.5),
            t.last().unwrap()
        );
    }
}

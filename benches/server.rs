//! Load generator for `crdt serve`: starts it on an ephemeral loopback port,
//! runs N = 1, 10, 100 and 1,000 clients (on one thread with an event loop,
//! like redis-benchmark) that each push counter increments through the
//! protocol and wait for the acknowledgement (which comes only
//! once the change is on disk), and prints changes/s, p50 and p99 latency
//! from send to ack, the fan-out latency to a watcher, and the server's RSS;
//! then 100 clients again with the watcher watching their counter (the
//! fan-out's cost to the writers).
//! When redis-server and redis-benchmark are installed, it runs the redis
//! INCR rows in the same run (appendfsync always, and no persistence), both
//! with redis-benchmark and with this generator's clients speaking RESP (the
//! same client code as crdt's rows, so the ratio compares the servers and not
//! the generators), the two taking turns, three times over; then the medians
//! and the ratios.
//!
//! With `--cluster`, rows of `crdt serve --cluster` instead: 1 and 3 nodes on
//! one redis-server, the 100 clients spread over the nodes, the probe on the
//! first node and the watcher on the last (the fan-out crosses nodes); with
//! `--million` too, Redis's memory after a million changes through 3 nodes.
//!
//! `cargo bench --bench server [-- SECONDS_PER_ROW [--repeat N] [CLIENTS... [--fanout]]]`
//! `cargo bench --bench server -- [SECONDS_PER_ROW] --cluster [--repeat N] [--million]`
//! (default 3 seconds, 3 repeats; given client counts, only those rows, once,
//! and no redis)

mod common;
use common::{Serve, Ws, connect, pct, read_json, serve};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

fn rss_mb(pid: u32) -> f64 {
    common::status_mb(pid, "VmRSS")
}

/// User + system CPU time of a process so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A client of the load generator: greeted through tungstenite, then driven
/// with hand-written frames (as lean as redis-benchmark's hand-written RESP,
/// so the generator leaves the CPU to the server). Every ack is checked.
///
/// The same client speaks RESP to redis (`INCR`, answered `:N`), so that
/// redis can be driven by this generator too, not only by redis-benchmark.
struct Client {
    stream: TcpStream,
    /// Speaks RESP to redis instead of the WebSocket protocol.
    resp: bool,
    me: String,
    seq: u64,
    sent: Instant,
    buf: Vec<u8>,
    mask: u32,
    /// Reused for every frame.
    payload: String,
    frame: Vec<u8>,
    want: String,
}

impl Client {
    fn connect(port: u16, i: usize, poll: &Poll, resp: bool) -> Client {
        let me = format!("c{i}");
        let stream = if resp {
            TcpStream::connect(("127.0.0.1", port)).expect("connect to redis")
        } else {
            let ws = connect(port, &me);
            let MaybeTlsStream::Plain(s) = ws.get_ref() else {
                unreachable!("ws:// is plain TCP")
            };
            s.try_clone().unwrap()
        };
        stream.set_nodelay(true).unwrap();
        stream.set_nonblocking(true).unwrap();
        poll.registry()
            .register(
                &mut SourceFd(&stream.as_raw_fd()),
                Token(i),
                Interest::READABLE,
            )
            .unwrap();
        Client {
            stream,
            resp,
            me,
            seq: 0,
            sent: Instant::now(),
            buf: Vec::with_capacity(4096),
            mask: 0x9e37_79b9 ^ i as u32,
            payload: String::with_capacity(256),
            frame: Vec::with_capacity(256),
            want: String::with_capacity(32),
        }
    }

    /// Sends the next increment as one masked text frame.
    fn push(&mut self) {
        use std::fmt::Write as _;
        self.seq += 1;
        if self.resp {
            self.frame.clear();
            self.frame
                .extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$14\r\nbench:requests\r\n");
            self.sent = Instant::now();
            self.send_frame();
            return;
        }
        self.payload.clear();
        let _ = write!(
            self.payload,
            r#"{{"type":"push","id":{seq},"objects":[{{"name":"bench:requests","type":"g-counter","state":{{"counts":{{"{me}":{{"seq":{seq},"count":{seq}}}}}}}}}]}}"#,
            seq = self.seq,
            me = self.me
        );
        let payload = &self.payload;
        // xorshift: a new masking key per frame.
        self.mask ^= self.mask << 13;
        self.mask ^= self.mask >> 17;
        self.mask ^= self.mask << 5;
        let key = self.mask.to_be_bytes();
        let frame = &mut self.frame;
        frame.clear();
        frame.push(0x81); // FIN, text
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend((payload.len() as u16).to_be_bytes());
        }
        frame.extend(key);
        frame.extend(payload.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.sent = Instant::now();
        self.send_frame();
    }

    fn send_frame(&mut self) {
        let mut rest = &self.frame[..];
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("client {}: {e}", self.me),
            }
        }
    }

    /// Reads what arrived; returns how many acks of the current push came
    /// (0 or 1), checking each is the ack of that push.
    fn read_acks(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("client {}: the server closed the connection", self.me),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    // A short read: the socket is empty until the next event.
                    if n < chunk.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("client {}: {e}", self.me),
            }
        }
        let mut acks = 0;
        if self.resp {
            // Replies to INCR: `:N\r\n`.
            while let Some(end) = memchr::memmem::find(&self.buf, b"\r\n") {
                assert_eq!(self.buf[0], b':', "redis answered {:?}", &self.buf[..end]);
                acks += 1;
                self.buf.drain(..end + 2);
            }
            return acks;
        }
        while let Some((head, len)) = next_frame(&self.buf) {
            let b = &self.buf;
            if b[0] & 0x0f == 1 {
                let text = std::str::from_utf8(&b[head..head + len]).unwrap();
                use std::fmt::Write as _;
                self.want.clear();
                let _ = write!(self.want, "{{\"id\":{},\"type\":\"ack\"", self.seq);
                assert!(
                    text.starts_with(&self.want),
                    "client {}: not the ack of push {}: {text}",
                    self.me,
                    self.seq
                );
                acks += 1;
            }
            self.buf.drain(..head + len);
        }
        acks
    }
}

const WATCHER: Token = Token(usize::MAX);

/// A watcher of the counter the clients push to and of a probe register
/// whose value is its send time (it measures the fan-out latency). It is
/// read on the clients' event loop, by hand, parsing only frames that carry
/// the probe: it costs the generator little, as a watcher on another machine
/// would.
struct Watcher {
    stream: TcpStream,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    /// Send-to-update latencies of the probe's writes (ms).
    lat: Vec<f64>,
    /// Probe writes sent before this (ns; while the clients were still
    /// connecting, when nobody read the watcher) are not counted.
    since: u64,
}

impl Watcher {
    /// With `counter`, it watches the counter too (every push is forwarded
    /// to it); without, only the probe (a push every 20 ms).
    fn connect(port: u16, poll: &Poll, counter: bool) -> Watcher {
        let mut ws = connect(port, "watcher");
        let select = if counter {
            json!(["probe", "bench:requests"])
        } else {
            json!(["probe"])
        };
        let select =
            json!({"type": "sync", "id": 1, "select": select, "versions": [], "watch": true});
        ws.send(Message::text(select.to_string())).unwrap();
        let _ = read_json(&mut ws);
        let MaybeTlsStream::Plain(s) = ws.get_ref() else {
            unreachable!("ws:// is plain TCP")
        };
        let stream = s.try_clone().unwrap();
        stream.set_nonblocking(true).unwrap();
        poll.registry()
            .register(
                &mut SourceFd(&stream.as_raw_fd()),
                WATCHER,
                Interest::READABLE,
            )
            .unwrap();
        Watcher {
            stream,
            buf: Vec::new(),
            chunk: vec![0u8; 1 << 16],
            lat: Vec::new(),
            since: u64::MAX,
        }
    }

    fn read(&mut self) {
        loop {
            match self.stream.read(&mut self.chunk) {
                Ok(0) => panic!("the server closed the watcher's connection"),
                Ok(n) => {
                    self.buf.extend_from_slice(&self.chunk[..n]);
                    if n < self.chunk.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("watcher: {e}"),
            }
        }
        let mut used = 0;
        while let Some((head, len)) = next_frame(&self.buf[used..]) {
            let payload = &self.buf[used + head..used + head + len];
            used += head + len;
            if memchr::memmem::find(payload, b"\"probe\"").is_none() {
                continue;
            }
            let v: Value = serde_json::from_slice(payload).unwrap();
            for o in v["objects"].as_array().into_iter().flatten() {
                for w in o["state"]["writes"].as_array().into_iter().flatten() {
                    if let Some(sent) = w["value"].as_u64()
                        && sent >= self.since
                    {
                        self.lat.push((now_ns().saturating_sub(sent)) as f64 / 1e6);
                    }
                }
            }
        }
        self.buf.drain(..used);
    }
}

/// The next whole frame from the server (unmasked) at the start of `b`:
/// the length of its header and of its payload.
fn next_frame(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (len, head) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (
            u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (b.len() >= head + len).then_some((head, len))
}

/// `n` clients on one thread with an event loop (as redis-benchmark does),
/// each pushing an increment, waiting for its ack, and pushing the next, for
/// `secs` seconds. Returns the send-to-ack latencies (ms) and the time taken.
/// With `redis`, the clients speak RESP to a redis on `port`, and there is
/// no watcher (its fan-out latencies come back empty). `fanout`: the
/// watcher watches the pushed counter too.
/// With several `ports` (the nodes of a cluster), client i connects to
/// `ports[i % len]` and the watcher to the last.
fn drive(
    ports: &[u16],
    n: usize,
    secs: f64,
    redis: bool,
    fanout: bool,
) -> (Vec<f64>, Vec<f64>, f64) {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let last = *ports.last().expect("a port");
    let mut watcher = (!redis).then(|| Watcher::connect(last, &poll, fanout));
    let mut clients: Vec<Client> = (0..n)
        .map(|i| Client::connect(ports[i % ports.len()], i, &poll, redis))
        .collect();
    let t0 = Instant::now();
    if let Some(w) = watcher.as_mut() {
        w.since = now_ns();
    }
    for c in clients.iter_mut() {
        c.push();
    }
    let mut lat = Vec::new();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut running = n;
    while running > 0 {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        let now = Instant::now();
        let mut watched = false;
        for e in events.iter() {
            if e.token() == WATCHER {
                // After the clients: their next pushes do not wait for it.
                watched = true;
                continue;
            }
            let c = &mut clients[e.token().0];
            if c.read_acks() == 1 {
                lat.push(c.sent.elapsed().as_secs_f64() * 1e3);
                if now < end {
                    c.push();
                } else {
                    running -= 1;
                }
            }
        }
        if watched && let Some(w) = watcher.as_mut() {
            w.read();
        }
        assert!(now < end + Duration::from_secs(10), "acks stopped coming");
    }
    let fan = watcher.map(|w| w.lat).unwrap_or_default();
    (lat, fan, t0.elapsed().as_secs_f64())
}

/// Changes per second, p50 and p99 latency (ms) of one run.
#[derive(Clone, Copy)]
struct Stats {
    rps: f64,
    p50: f64,
    p99: f64,
}

/// One row: `n` clients pushing for `secs` seconds, plus a probe whose
/// writes time the fan-out to a watcher; with `fanout` the watcher also
/// watches the counter the clients push to (every push is forwarded to it,
/// as to a dashboard).
fn row(n: usize, secs: f64, fanout: bool) -> Stats {
    let server = serve();
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe(port, stop.clone());
    let cpu0 = cpu_secs(server.child.id());
    let me0 = cpu_secs(std::process::id());
    let (mut lat, mut fan, elapsed) = drive(&[port], n, secs, false, fanout);
    let cpu = cpu_secs(server.child.id()) - cpu0;
    let me = cpu_secs(std::process::id()) - me0;
    let rss = rss_mb(server.child.id());
    stop.store(true, Ordering::Relaxed);
    probe.join().unwrap();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    fan.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "peer=crdt clients={n} watcher={} changes={} changes_per_s={:.0} p50_ms={:.3} p99_ms={:.3} fanout_p50_ms={:.3} fanout_p99_ms={:.3} server_rss_mb={rss:.1} server_cpu_us_per_change={:.1} loadgen_cpu_us_per_change={:.1}",
        if fanout { "counter" } else { "probe" },
        lat.len(),
        lat.len() as f64 / elapsed,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&fan, 0.5),
        pct(&fan, 0.99),
        cpu * 1e6 / lat.len() as f64,
        me * 1e6 / lat.len() as f64,
    );
    Stats::of(&lat, elapsed)
}

impl Stats {
    /// Of latencies (sorted, ms) taken in `elapsed` seconds.
    fn of(sorted: &[f64], elapsed: f64) -> Stats {
        Stats {
            rps: sorted.len() as f64 / elapsed,
            p50: pct(sorted, 0.5),
            p99: pct(sorted, 0.99),
        }
    }
}

/// Writes the probe register on `port` every 20 ms, its value the send
/// time (ns), until `stop`.
fn probe(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut ws = connect(port, "probe");
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            let state = json!({"context": {"probe": seq}, "writes": [{"dot": ["probe", seq], "ts": [seq, 0], "value": now_ns(), "lost": null}]});
            ws.send(Message::text(json!({"type": "push", "id": seq, "objects": [{"name": "probe", "type": "lww-register", "state": state}]}).to_string())).unwrap();
            let _ = read_json(&mut ws);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// A row of `--cluster`: `nodes` nodes of one cluster on `redis` (keys
/// under `prefix`), 100 clients spread over them, the probe on the first
/// node and its watcher on the last (the fan-out crosses nodes). CPU is
/// that of every node and of redis, per change.
fn cluster_row(
    redis: &common::Redis,
    nodes: usize,
    secs: f64,
    prefix: &str,
) -> (Stats, f64, f64, f64) {
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let servers: Vec<Serve> = (0..nodes)
        .map(|_| {
            common::serve_with(&[
                "--max-connections",
                "5000",
                "--cluster",
                &url,
                "--cluster-prefix",
                prefix,
            ])
        })
        .collect();
    for s in &servers {
        common::wait_healthy(s.port);
    }
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe(ports[0], stop.clone());
    let pids: Vec<u32> = servers
        .iter()
        .map(|s| s.child.id())
        .chain([redis.child.id()])
        .collect();
    let cpu = |pids: &[u32]| pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let (cpu0, redis0) = (cpu(&pids[..nodes]), cpu(&pids[nodes..]));
    let (mut lat, mut fan, elapsed) = drive(&ports, 100, secs, false, false);
    let node_cpu = cpu(&pids[..nodes]) - cpu0;
    let redis_cpu = cpu(&pids[nodes..]) - redis0;
    stop.store(true, Ordering::Relaxed);
    probe.join().unwrap();
    lat.sort_by(f64::total_cmp);
    fan.sort_by(f64::total_cmp);
    let changes = lat.len() as f64;
    let stats = Stats::of(&lat, elapsed);
    println!(
        "peer=crdt-cluster nodes={nodes} clients=100 changes={changes} changes_per_s={:.0} p50_ms={:.3} p99_ms={:.3} cross_node_fanout_p50_ms={:.3} cross_node_fanout_p99_ms={:.3} nodes_cpu_us_per_change={:.1} redis_cpu_us_per_change={:.1}",
        stats.rps,
        stats.p50,
        stats.p99,
        pct(&fan, 0.5),
        pct(&fan, 0.99),
        node_cpu * 1e6 / changes,
        redis_cpu * 1e6 / changes,
    );
    (
        stats,
        pct(&fan, 0.5),
        pct(&fan, 0.99),
        node_cpu * 1e6 / changes,
    )
}

/// `--cluster`: 1 and 3 nodes taking turns; then, with `--million`, Redis's
/// memory once a million changes went through 3 nodes (trimming on).
fn cluster_rows(secs: f64, repeat: usize, million: bool) {
    let Some(redis) = common::Redis::start(&["--save", "", "--appendonly", "no"]) else {
        return;
    };
    let mut runs: Vec<Vec<(Stats, f64, f64, f64)>> = vec![Vec::new(), Vec::new()];
    for turn in 0..repeat {
        for (i, nodes) in [1, 3].into_iter().enumerate() {
            runs[i].push(cluster_row(
                &redis,
                nodes,
                secs,
                &format!("t{turn}n{nodes}:"),
            ));
        }
    }
    println!("\nmedians of {repeat} runs:");
    let mut rps = [0.0; 2];
    for (i, nodes) in [1, 3].into_iter().enumerate() {
        let r = &runs[i];
        let m = medians(&r.iter().map(|x| x.0).collect::<Vec<_>>());
        rps[i] = m.rps;
        println!(
            "median peer=crdt-cluster nodes={nodes} changes_per_s={:.0} p50_ms={:.3} p99_ms={:.3} cross_node_fanout_p50_ms={:.3} cross_node_fanout_p99_ms={:.3} nodes_cpu_us_per_change={:.1}",
            m.rps,
            m.p50,
            m.p99,
            median(r.iter().map(|x| x.1).collect()),
            median(r.iter().map(|x| x.2).collect()),
            median(r.iter().map(|x| x.3).collect()),
        );
    }
    println!("ratio 3 nodes / 1 node throughput={:.2}", rps[1] / rps[0]);
    if !million {
        return;
    }
    let _ = redis.cli(&["flushall"]).status();
    let info = |field: &str| -> f64 {
        let out = redis
            .cli(&["info", "memory"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let before = info("used_memory");
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let servers: Vec<Serve> = (0..3)
        .map(|_| common::serve_with(&["--max-connections", "5000", "--cluster", &url]))
        .collect();
    for s in &servers {
        common::wait_healthy(s.port);
    }
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let mut total = 0;
    let started = Instant::now();
    while total < 1_000_000 && started.elapsed() < Duration::from_secs(600) {
        total += drive(&ports, 100, 10.0, false, false).0.len();
    }
    // The compactor folds what is older than 10 s (at most 5,000 entries a second).
    std::thread::sleep(Duration::from_secs(15));
    let len = redis
        .cli(&["xlen", "crdt:stream"])
        .stdout(Stdio::piped())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "cluster nodes=3 changes={total} redis_used_memory_mb={:.1} (empty: {:.1}) stream_length={len}",
        info("used_memory") / 1e6,
        before / 1e6
    );
}

/// 1,000 idle connected clients: the server's RSS.
fn idle_memory() {
    let server = serve();
    let before = rss_mb(server.child.id());
    let conns: Vec<Ws> = (0..1000)
        .map(|i| connect(server.port, &format!("idle{i}")))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_mb(server.child.id());
    println!(
        "peer=crdt idle_clients={} server_rss_mb={after:.1} (empty server {before:.1})",
        conns.len()
    );
}

/// One run of the redis rows; empty when redis is not installed.
fn redis_rows() -> Vec<(String, usize, Stats)> {
    let mut rows = Vec::new();
    let have = |c: &str| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !have("redis-server") || !have("redis-benchmark") {
        println!(
            "peer=redis skipped: redis-server and redis-benchmark are not installed (apt-get install redis-server)"
        );
        return rows;
    }
    for (label, args) in [
        (
            "appendfsync-always",
            vec!["--appendonly", "yes", "--appendfsync", "always"],
        ),
        ("no-persistence", vec!["--appendonly", "no", "--save", ""]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let port = 16379 + (std::process::id() % 1000) as u16;
        let mut server = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .args(&args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        for clients in [1, 100] {
            let out = Command::new("redis-benchmark")
                .args([
                    "-p",
                    &port.to_string(),
                    "-t",
                    "incr",
                    "-n",
                    if clients == 1 { "20000" } else { "100000" },
                    "-c",
                    &clients.to_string(),
                    "-q",
                    "--csv",
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().find(|l| l.contains("INCR")).unwrap_or("");
            let cols: Vec<&str> = line.split(',').map(|c| c.trim_matches('"')).collect();
            println!(
                "peer=redis mode={label} clients={clients} changes_per_s={} p50_ms={} p99_ms={}",
                cols.get(1).unwrap_or(&"?"),
                cols.get(4).unwrap_or(&"?"),
                cols.get(6).unwrap_or(&"?")
            );
            let col = |i: usize| cols.get(i).and_then(|r| r.parse::<f64>().ok());
            if let (Some(rps), Some(p50), Some(p99)) = (col(1), col(4), col(6)) {
                rows.push((label.to_string(), clients, Stats { rps, p50, p99 }));
            }
            // The same redis driven by this generator, as crdt is.
            let secs = if clients == 1 { 2.0 } else { 3.0 };
            let cpu0 = cpu_secs(server.id());
            let (mut lat, _, elapsed) = drive(&[port], clients, secs, true, false);
            let cpu = cpu_secs(server.id()) - cpu0;
            lat.sort_by(f64::total_cmp);
            let stats = Stats::of(&lat, elapsed);
            println!(
                "peer=redis mode={label}+our-generator clients={clients} changes_per_s={:.0} p50_ms={:.3} p99_ms={:.3} server_cpu_us_per_change={:.1}",
                stats.rps,
                stats.p50,
                stats.p99,
                cpu * 1e6 / lat.len() as f64
            );
            rows.push((format!("{label}+our-generator"), clients, stats));
        }
        let _ = server.kill();
        let _ = server.wait();
    }
    rows
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The median of each statistic over runs.
fn medians(runs: &[Stats]) -> Stats {
    Stats {
        rps: median(runs.iter().map(|s| s.rps).collect()),
        p50: median(runs.iter().map(|s| s.p50).collect()),
        p99: median(runs.iter().map(|s| s.p99).collect()),
    }
}

fn main() {
    // `[SECONDS_PER_ROW [CLIENTS...]] [--fanout]`: with client counts, only
    // those rows (once each, no redis; `--fanout`: the watcher watches the
    // counter). Otherwise every row, crdt and redis taking turns,
    // `--repeat N` times (default 3), then the medians.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cluster = args.iter().any(|a| a == "--cluster");
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let nums: Vec<f64> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--repeat"))
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let secs = nums.first().copied().unwrap_or(3.0);
    if cluster {
        cluster_rows(secs, repeat, args.iter().any(|a| a == "--million"));
        return;
    }
    let only: Vec<usize> = nums.iter().skip(1).map(|n| *n as usize).collect();
    if !only.is_empty() {
        let fanout = args.iter().any(|a| a == "--fanout");
        for n in only {
            row(n, secs, fanout);
        }
        return;
    }
    // (clients, the watcher watches the counter): the writers alone (what
    // redis's rows compare with), then 100 writers with the fan-out.
    let rows = [
        (1, false),
        (10, false),
        (100, false),
        (1000, false),
        (100, true),
    ];
    let mut ours: Vec<Vec<Stats>> = vec![Vec::new(); rows.len()];
    let mut redis: Vec<(String, usize, Vec<Stats>)> = Vec::new();
    for _ in 0..repeat {
        for (i, (n, fanout)) in rows.iter().enumerate() {
            ours[i].push(row(*n, secs, *fanout));
        }
        for (mode, clients, stats) in redis_rows() {
            match redis
                .iter_mut()
                .find(|(m, c, _)| *m == mode && *c == clients)
            {
                Some((_, _, runs)) => runs.push(stats),
                None => redis.push((mode, clients, vec![stats])),
            }
        }
    }
    idle_memory();
    println!("\nmedians of {repeat} runs:");
    for (i, (n, fanout)) in rows.iter().enumerate() {
        let m = medians(&ours[i]);
        println!(
            "median peer=crdt clients={n} watcher={} changes_per_s={:.0} p50_ms={:.3} p99_ms={:.3}",
            if *fanout { "counter" } else { "probe" },
            m.rps,
            m.p50,
            m.p99
        );
    }
    for (mode, clients, runs) in &redis {
        let m = medians(runs);
        println!(
            "median peer=redis mode={mode} clients={clients} changes_per_s={:.0} p50_ms={:.3} p99_ms={:.3}",
            m.rps, m.p50, m.p99
        );
        if let Some(i) = rows.iter().position(|r| *r == (*clients, false)) {
            println!(
                "ratio crdt/redis mode={mode} clients={clients} throughput={:.2}",
                medians(&ours[i]).rps / m.rps
            );
        }
    }
}

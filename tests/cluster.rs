//! `crdt serve --cluster`: several nodes sharing one Redis. Each test starts
//! its own redis-server on an ephemeral loopback port with its own directory
//! (AOF, fsynced always), and nodes on their own ports and data directories;
//! every process is killed when its guard drops, every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

mod common;
use common::{Agent, Server, next_json, watching};

/// A redis-server of the test's own; killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

/// `tool` runs (`tool ARG` succeeds); else false with a note, or a
/// failure under CI (`.ci/run` installs Debian's package of that name).
fn installed(tool: &str, arg: &str) -> bool {
    match StdCommand::new(tool).arg(arg).output() {
        Ok(o) if o.status.success() => true,
        _ if std::env::var_os("CI").is_some() => {
            panic!("{tool} is not installed; .ci/run installs Debian's {tool}")
        }
        _ => {
            eprintln!("note: {tool} is not installed: this cluster test did not run");
            false
        }
    }
}

/// redis-server is there (see [`installed`]).
fn redis_installed() -> bool {
    installed("redis-server", "--version")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    fn start() -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        r.spawn();
        r
    }

    /// Starts (again) on its port and directory: its AOF is read back.
    fn spawn(&mut self) {
        let child = StdCommand::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}: {pong:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn con(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits (at most 30 s) until `f` gives something.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain GET on a node's port: the body.
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

fn node(redis_url: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--cluster", redis_url];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    wait_healthy(&s);
    s
}

fn wait_healthy(s: &Server) {
    eventually("the node reaches redis", || {
        (http_get(s.port, "/healthz") == "ok\n").then_some(())
    });
}

/// The value of `name` as a fresh replica syncing through `server` reads it.
fn read_through(server: &Server, name: &str) -> Option<String> {
    let reader = Agent::new("reader");
    let (code, _, _) = reader.run(Some(&server.url()), &["sync"]);
    if code != 0 {
        return None;
    }
    let (code, out, _) = reader.run(None, &["get", name]);
    (code == 0).then(|| out.trim_end().to_string())
}

/// Waits until a fresh replica reads `want` for `name` through `server`.
fn converges(server: &Server, name: &str, want: &str) {
    eventually(
        &format!("{name} = {want} through port {}", server.port),
        || (read_through(server, name).as_deref() == Some(want)).then_some(()),
    );
}

#[test]
fn replicas_on_three_nodes_converge_and_a_watcher_sees_every_node() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start();
    let nodes: Vec<Server> = (0..3).map(|_| node(&redis.url(), &[])).collect();
    let (mut watcher, _) = watching(nodes[2].port, &["metrics:requests"]);
    let (a, b) = (Agent::new("agent-1"), Agent::new("agent-2"));
    a.ok(Some(&nodes[0].url()), &["inc", "metrics:requests", "2"]);
    // The watcher on node 3 gets the change made through node 1.
    loop {
        let update = next_json(&mut watcher);
        assert_eq!(update["type"], "update", "{update}");
        let counts = &update["objects"][0]["state"]["counts"];
        if counts["agent-1"]["count"] == 2 {
            break;
        }
    }
    b.ok(Some(&nodes[1].url()), &["inc", "metrics:requests", "3"]);
    a.ok(Some(&nodes[0].url()), &["append", "document:main", "Hello"]);
    for n in &nodes {
        converges(n, "metrics:requests", "5");
        converges(n, "document:main", "Hello");
    }
    // A text edited through two nodes at once converges to one text.
    b.ok(Some(&nodes[1].url()), &["sync"]);
    a.ok(None, &["append", "document:main", " world"]);
    b.ok(None, &["insert", "document:main", "0", ">> "]);
    a.ok(Some(&nodes[0].url()), &["sync"]);
    b.ok(Some(&nodes[2].url()), &["sync"]);
    for n in &nodes {
        converges(n, "document:main", ">> Hello world");
    }
    // Node 3's view of the pushes (`log --url`) has those made through the
    // others, with who made them.
    let log = a.ok(None, &["log", "--url", &nodes[2].url(), "metrics:requests"]);
    assert!(log.contains("agent-1") && log.contains("agent-2"), "{log}");
    // Each node sees the others (heartbeats, every second), and says how
    // the cluster goes.
    let metrics = eventually("node 1 sees three nodes", || {
        let m = http_get(nodes[0].port, "/metrics");
        (m.matches("crdt_cluster_node_last_seen_seconds{node=")
            .count()
            == 3)
            .then_some(m)
    });
    for m in [
        "crdt_cluster_connected 1",
        "crdt_cluster_published_total ",
        "crdt_cluster_apply_lag_seconds_count ",
        "crdt_cluster_stream_length ",
        "crdt_cluster_redis_errors_total 0",
    ] {
        assert!(metrics.contains(m), "no {m:?} in {metrics}");
    }
}

/// A node killed with -9 during a burst of pushes restarts and catches up:
/// every write any node acknowledged is visible through every node.
#[test]
fn a_node_killed_during_a_burst_loses_no_acknowledged_write() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start();
    // Node a reaches Redis through a proxy (cut below).
    let proxy = Proxy::start(redis.port);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let proxied = format!("redis://127.0.0.1:{}", proxy.port);
    let args = ["--cluster", &proxied];
    let mut a = Server::start_at(&data, &args);
    wait_healthy(&a);
    let b = node(&redis.url(), &[]);
    let port = a.port;
    let url = a.url();
    // What each writer saw acknowledged: its own count, as the node had it.
    let acked: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; 4]));
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let (acked, url) = (acked.clone(), url.clone());
            std::thread::spawn(move || {
                let id: &'static str = ["w-1", "w-2", "w-3", "w-4"][i];
                let agent = Agent::new(id);
                let deadline = Instant::now() + Duration::from_secs(20);
                for _ in 0..30 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let (code, out, _) = agent.run(Some(&url), &["inc", &format!("c:{id}")]);
                    if code == 0 {
                        acked.lock().unwrap()[i] = out.trim().parse().unwrap();
                    }
                }
            })
        })
        .collect();
    eventually("some writes acknowledged", || {
        (acked.lock().unwrap().iter().sum::<u64>() >= 8).then_some(())
    });
    a.kill9();
    let before_restart = acked.lock().unwrap().clone();
    std::thread::sleep(Duration::from_millis(300));
    let a = Server::start_listening(&data, None, &format!("127.0.0.1:{port}"), &args);
    wait_healthy(&a);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked
            .iter()
            .zip(&before_restart)
            .all(|(now, then)| now >= then),
        "{acked:?} {before_restart:?}"
    );
    for (i, want) in acked.iter().enumerate() {
        let name = format!("c:w-{}", i + 1);
        for n in [&a, &b] {
            eventually(&format!("{name} >= {want} through port {}", n.port), || {
                read_through(n, &name)
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|v| v >= want)
            });
        }
    }
    // Acknowledged, never published (Redis out of reach), then killed: the
    // restarted node publishes them from its log.
    let mut a = a;
    proxy.cut();
    eventually("node a says it is degraded", || {
        http_get(port, "/healthz")
            .starts_with("degraded:")
            .then_some(())
    });
    let late = Agent::new("late");
    for _ in 0..3 {
        late.ok(Some(&url), &["inc", "c:late"]);
    }
    a.kill9();
    proxy.heal();
    let a = Server::start_listening(&data, None, &format!("127.0.0.1:{port}"), &args);
    wait_healthy(&a);
    converges(&b, "c:late", "3");
    let log = a.log();
    assert!(log.contains("1 published to it"), "{log}");
}

/// A node started later with an empty data directory serves everything,
/// also once the stream was compacted and trimmed.
#[test]
fn a_new_node_serves_everything_after_the_stream_was_trimmed() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start();
    let trim = ["--cluster-stream-max", "3", "--cluster-keep-ms", "0"];
    let a = node(&redis.url(), &trim);
    let agent = Agent::new("agent-1");
    for i in 0..12 {
        agent.ok(Some(&a.url()), &["inc", &format!("jobs:{}", i % 4)]);
    }
    agent.ok(Some(&a.url()), &["append", "document:main", "Hello"]);
    agent.ok(Some(&a.url()), &["append", "document:main", ", world"]);
    agent.ok(Some(&a.url()), &["add", "tasks:active", "t1", "t2"]);
    let mut con = redis.con();
    eventually("the stream compacted and trimmed", || {
        let len: u64 = redis::cmd("XLEN").arg("crdt:stream").query(&mut con).ok()?;
        let cut: Option<String> = redis::cmd("GET")
            .arg("crdt:state-id")
            .query(&mut con)
            .ok()?;
        (len <= 3 && cut.is_some()).then_some(())
    });
    let fresh = node(&redis.url(), &[]);
    for i in 0..4 {
        converges(&fresh, &format!("jobs:{i}"), "3");
    }
    converges(&fresh, "document:main", "Hello, world");
    converges(&fresh, "tasks:active", "\"t1\"\n\"t2\"");
    let log = fresh.log();
    assert!(log.contains("caught up:"), "{log}");
}

/// A compacted copy of thousands of objects and a stream of more than a
/// page: a node joining reads both in pages (HSCAN, XRANGE with COUNT),
/// never as one reply, and serves all of it.
#[test]
fn a_new_node_reads_a_large_state_from_redis_in_pages() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start();
    let a = node(
        &redis.url(),
        &["--cluster-stream-max", "3", "--cluster-keep-ms", "0"],
    );
    let agent = Agent::new("agent-1");
    let objects = 3000;
    let batch = agent.dir.path().join("jobs.txt");
    let lines: String = (0..objects).map(|i| format!("inc jobs:{i}\n")).collect();
    std::fs::write(&batch, lines).unwrap();
    agent.ok(None, &["batch", batch.to_str().unwrap()]);
    agent.ok(Some(&a.url()), &["sync"]);
    // The stream longer than --cluster-stream-max: compacted.
    for _ in 0..4 {
        agent.ok(Some(&a.url()), &["inc", "counter:x"]);
    }
    let mut con = redis.con();
    eventually("the compacted copy holds every object", || {
        let n: usize = redis::cmd("HLEN").arg("crdt:state").query(&mut con).ok()?;
        (n == objects + 1).then_some(())
    });
    // The compactor (a, with its lease) gone, the stream grows past a page.
    drop(a);
    let b = node(&redis.url(), &[]);
    let pushes = 120;
    for _ in 0..pushes {
        agent.ok(Some(&b.url()), &["inc", "counter:x"]);
    }
    let len: usize = redis::cmd("XLEN")
        .arg("crdt:stream")
        .query(&mut con)
        .unwrap();
    assert!(len > 100, "the stream holds {len} entries");
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let fresh = node(&redis.url(), &[]);
    let reader = Agent::new("reader");
    eventually("the new node serves every object", || {
        let (code, _, _) = reader.run(Some(&fresh.url()), &["sync"]);
        let (_, out, _) = reader.run(None, &["ls", "jobs"]);
        (code == 0 && out.lines().count() == objects).then_some(())
    });
    converges(&fresh, "jobs:2999", "1");
    converges(&fresh, "counter:x", &(pushes + 4).to_string());
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    let calls = |cmd: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|r| r.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert!(calls("hscan") >= 3, "{stats}");
    assert!(calls("xrange") >= 2, "{stats}");
    let log = fresh.log();
    let want = format!(": {} objects and ", objects + 1);
    assert!(log.contains(&want), "{want:?} in {log}");
}

/// What no node writes, found in Redis (entries and a compacted field named
/// in bytes that are not UTF-8, a garbled compacted id, heartbeats
/// that are not one, one whose field would inject a line into /metrics) and
/// a node gone for hours: the nodes serve and converge (not degraded), the
/// compactor writes a good id and removes those heartbeats, /metrics shows
/// only real nodes.
#[test]
fn what_no_node_writes_in_redis_neither_stops_the_nodes_nor_reaches_metrics() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start();
    let mut con = redis.con();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let _: () = redis::pipe()
        .cmd("SET")
        .arg("crdt:state-id")
        .arg("not-an-id")
        .cmd("HSET")
        .arg("crdt:nodes")
        .arg("bogus")
        .arg("not-a-number")
        .arg("x\"} 1\nevil_metric 2")
        .arg(now_ms)
        .arg("ghost")
        .arg(now_ms - 2 * 3600 * 1000)
        .cmd("HSET")
        .arg("crdt:state")
        .arg(&b"\xff"[..])
        .arg("x")
        .query(&mut con)
        .unwrap();
    // An entry whose field name is not UTF-8: once in the catch-up, once
    // read as it comes.
    let bad_entry = |con: &mut redis::Connection| {
        let _: String = redis::cmd("XADD")
            .arg("crdt:stream")
            .arg("*")
            .arg("node")
            .arg("n9")
            .arg(&b"\xff\xfe"[..])
            .arg("x")
            .query(con)
            .unwrap();
    };
    bad_entry(&mut con);
    let trim = ["--cluster-stream-max", "3", "--cluster-keep-ms", "0"];
    let a = node(&redis.url(), &trim);
    let b = node(&redis.url(), &[]);
    bad_entry(&mut con);
    let agent = Agent::new("agent-1");
    for _ in 0..6 {
        agent.ok(Some(&a.url()), &["inc", "jobs:done"]);
    }
    converges(&b, "jobs:done", "6");
    eventually(
        "the compactor wrote a good id and removed the bad heartbeats",
        || {
            let id: Option<String> = redis::cmd("GET")
                .arg("crdt:state-id")
                .query(&mut con)
                .ok()?;
            let nodes: Vec<String> = redis::cmd("HKEYS").arg("crdt:nodes").query(&mut con).ok()?;
            let good = id?
                .split_once('-')
                .is_some_and(|(ms, _)| ms.parse::<u64>().is_ok());
            (good && nodes.len() == 2 && nodes.iter().all(|n| n.starts_with("server-")))
                .then_some(())
        },
    );
    let metrics = http_get(b.port, "/metrics");
    assert!(!metrics.contains("evil_metric"), "{metrics}");
    let seen: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("crdt_cluster_node_last_seen_seconds{"))
        .collect();
    assert_eq!(seen.len(), 2, "{metrics}");
    assert_eq!(http_get(a.port, "/healthz"), "ok\n");
    assert_eq!(http_get(b.port, "/healthz"), "ok\n");
    let mut log = String::new();
    eventually("node a skipped both entries (catch-up, reader)", || {
        log += &a.log_now();
        (log.matches("cluster: skipped entry").count() == 2).then_some(())
    });
    log += &(a.log() + &b.log());
    assert!(
        log.contains("skipped crdt:state[\u{fffd}]: line 1"),
        "{log}"
    );
    assert!(log.contains("forgot node ghost"), "{log}");
    assert!(log.contains("not a node's heartbeat"), "{log}");
}

/// Redis killed and restarted (with its AOF): the nodes serve alone
/// meanwhile (degraded), then carry on and converge.
#[test]
fn nodes_carry_on_while_redis_is_down_and_converge_after() {
    if !redis_installed() {
        return;
    }
    let mut redis = Redis::start();
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let (x, y) = (Agent::new("agent-1"), Agent::new("agent-2"));
    x.ok(Some(&a.url()), &["inc", "metrics:requests"]);
    converges(&b, "metrics:requests", "1");
    redis.kill9();
    for n in [&a, &b] {
        eventually("the node says it is degraded", || {
            http_get(n.port, "/healthz")
                .starts_with("degraded: redis redis://127.0.0.1:")
                .then_some(())
        });
    }
    // Both still take changes.
    x.ok(Some(&a.url()), &["inc", "metrics:requests", "10"]);
    y.ok(Some(&b.url()), &["inc", "metrics:requests", "100"]);
    assert_eq!(read_through(&a, "metrics:requests").as_deref(), Some("11"));
    redis.spawn();
    wait_healthy(&a);
    wait_healthy(&b);
    converges(&a, "metrics:requests", "111");
    converges(&b, "metrics:requests", "111");
    let log = a.log();
    assert!(log.contains("cannot reach redis"), "{log}");
    assert!(log.contains("serving alone"), "{log}");
}

/// A TCP proxy to Redis that can be cut (every connection closed, new ones
/// refused) and healed.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                list.push(conn.try_clone().unwrap());
                list.push(up.try_clone().unwrap());
                for (mut from, mut to) in [
                    (conn.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up, conn),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// A node cut off from Redis keeps serving its clients, then converges
/// with the others once it reaches Redis again.
#[test]
fn a_node_cut_off_from_redis_keeps_serving_and_converges_after_healing() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    let a = node(&redis.url(), &[]);
    let b = node(&format!("redis://127.0.0.1:{}", proxy.port), &[]);
    let (x, y) = (Agent::new("agent-1"), Agent::new("agent-2"));
    x.ok(Some(&a.url()), &["add", "tasks:active", "a1"]);
    converges(&b, "tasks:active", "\"a1\"");
    proxy.cut();
    eventually("node b says it is degraded", || {
        http_get(b.port, "/healthz")
            .starts_with("degraded:")
            .then_some(())
    });
    assert_eq!(http_get(a.port, "/healthz"), "ok\n");
    x.ok(Some(&a.url()), &["add", "tasks:active", "a2"]);
    y.ok(Some(&b.url()), &["add", "tasks:active", "b1"]);
    y.ok(Some(&b.url()), &["rm", "tasks:active", "a1"]);
    // Apart, each serves what it has.
    converges(&b, "tasks:active", "\"b1\"");
    converges(&a, "tasks:active", "\"a1\"\n\"a2\"");
    proxy.heal();
    wait_healthy(&b);
    converges(&a, "tasks:active", "\"a2\"\n\"b1\"");
    converges(&b, "tasks:active", "\"a2\"\n\"b1\"");
    let metrics = http_get(b.port, "/metrics");
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("crdt_cluster_redis_errors_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(errors >= 1, "{metrics}");
}

/// A wrong --cluster URL is refused at start (exit 2), naming the flag.
/// A round too large for one entry (its merged delta over 4 MiB: here one
/// register of 5 MB, which no part can split) is published as its log
/// lines, a line longer than an entry being an entry of its own; the other
/// nodes read and merge it.
#[test]
fn a_round_larger_than_an_entry_reaches_the_other_nodes() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start();
    let nodes: Vec<Server> = (0..2).map(|_| node(&redis.url(), &[])).collect();
    let a = Agent::new("agent-1");
    let big: String = (0..5_000_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let batch = a.dir.path().join("big.txt");
    std::fs::write(&batch, format!("set config:big {big}\n")).unwrap();
    a.ok(None, &["batch", batch.to_str().unwrap()]);
    a.ok(Some(&nodes[0].url()), &["sync"]);
    let want = format!("{big:?}");
    eventually("node 2 holds the 5 MB register", || {
        (read_through(&nodes[1], "config:big")? == want).then_some(())
    });
    // It went as lines (the delta form would be over an entry's size).
    let mut con = redis.con();
    // (id, [(field, value)]) per entry.
    type Entry = (String, Vec<(String, Vec<u8>)>);
    let entries: Vec<Entry> = redis::cmd("XRANGE")
        .arg("crdt:stream")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    let fields: Vec<Vec<&str>> = entries
        .iter()
        .map(|(_, f)| f.iter().map(|(k, _)| k.as_str()).collect())
        .collect();
    let as_lines = entries
        .iter()
        .filter(|(_, f)| f.iter().any(|(k, v)| k == "lines" && v.len() > 5_000_000))
        .count();
    assert_eq!(as_lines, 1, "entries' fields: {fields:?}");
}

#[test]
fn a_wrong_cluster_url_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = StdCommand::new(common::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("d"))
        .args(["--cluster", "http://nope"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--cluster http://nope"), "{err}");
    // Refused before anything was written.
    assert!(!dir.path().join("d").exists());
}

/// In `dir`: a CA (`ca.pem`), a certificate for 127.0.0.1 it signed
/// (`server.pem`, `server.key`) and a client certificate (`client.pem`,
/// `client.key`).
fn certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = StdCommand::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let key = ["-newkey", "rsa:2048", "-nodes", "-keyout"];
    run(&[
        &["req", "-x509"][..],
        &key,
        &[
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    ]
    .concat());
    for (who, cn) in [("server", "127.0.0.1"), ("client", "node")] {
        let (k, csr, pem, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.pem"),
            format!("{who}.ext"),
        );
        run(&[
            &["req"][..],
            &key,
            &[&k, "-out", &csr, "-subj", &format!("/CN={cn}")],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

/// `rediss://` to a Redis with its own CA that asks nodes for a
/// certificate (tls-auth-clients, its default): nodes given the CA and a
/// client certificate share changes; one without a client certificate, or
/// without the CA, serves alone (degraded) and says why; files that are
/// not PEM are refused at start.
#[test]
fn nodes_reach_redis_over_tls_with_its_ca_and_their_certificate() {
    if !redis_installed() || !installed("openssl", "version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let port = free_port();
    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _redis = Killed(
        StdCommand::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
            ])
            .args([
                "--tls-ca-cert-file",
                "ca.pem",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--logfile", "redis.log", "--dir"])
            .arg(dir.path())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("redis-server listens (TLS)", || {
        let log = std::fs::read_to_string(dir.path().join("redis.log")).ok()?;
        log.contains("Ready to accept connections").then_some(())
    });
    let url = format!("rediss://127.0.0.1:{port}");
    let file = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let tls = [
        "--cluster-ca",
        &ca,
        "--cluster-cert",
        &cert,
        "--cluster-key",
        &key,
    ];
    let a = node(&url, &tls);
    let b = node(&url, &tls);
    let agent = Agent::new("agent-1");
    agent.ok(Some(&a.url()), &["inc", "jobs:done"]);
    converges(&b, "jobs:done", "1");
    let no_cert = Server::start(&["--cluster", &url, "--cluster-ca", &ca]);
    let no_ca = Server::start(&["--cluster", &url]);
    for (s, why) in [(&no_cert, "CertificateRequired"), (&no_ca, "UnknownIssuer")] {
        eventually(&format!("degraded: {why}"), || {
            let health = http_get(s.port, "/healthz");
            (health.starts_with("degraded") && health.contains(why)).then_some(())
        });
    }
    // Not PEM, PEM of the wrong kind, or endless: refused at start (exit 2).
    for (flags, says) in [
        (
            vec!["--cluster-ca", "/dev/zero"],
            "--cluster-ca /dev/zero: larger than 1048576 bytes",
        ),
        (
            vec!["--cluster-ca", &key],
            "--cluster-ca: the file holds no PEM certificate",
        ),
        (
            vec![
                "--cluster-ca",
                &ca,
                "--cluster-cert",
                &cert,
                "--cluster-key",
                &cert,
            ],
            "--cluster-key: no PEM private key",
        ),
    ] {
        let out = StdCommand::new(common::BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("refused"))
            .args(["--cluster", &url])
            .args(&flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
    let out = StdCommand::new(common::BIN)
        .args([
            "serve",
            "--cluster",
            "redis://127.0.0.1:1",
            "--cluster-ca",
            &ca,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a rediss:// URL"), "{err}");
}

/// A node whose Redis is not there at start serves alone from the start,
/// and says why.
#[test]
fn a_node_without_its_redis_at_start_serves_alone_and_says_so() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let n = Server::start(&["--cluster", &url]);
    eventually("the node says it is degraded", || {
        let h = http_get(n.port, "/healthz");
        h.starts_with(&format!("degraded: redis {url} unreachable: "))
            .then_some(())
    });
    let a = Agent::new("agent-1");
    assert_eq!(a.ok(Some(&n.url()), &["inc", "metrics:requests"]), "1\n");
    let log = n.log();
    assert!(log.contains("serving alone, retrying"), "{log}");
}

//! What the benchmarks share: starting `crdt serve` (or `CRDT_BENCH_BIN`)
//! and redis-server on ephemeral loopback ports, greeted clients,
//! percentiles, a process's memory.
#![allow(dead_code)] // each benchmark uses a part

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// A client that said hello as `who`.
pub fn connect(port: u16, who: &str) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/ws")).expect("connect");
    ws.send(Message::text(
        json!({"type": "hello", "replica": who, "protocol": 1}).to_string(),
    ))
    .unwrap();
    let _ = read_json(&mut ws);
    ws
}

pub fn read_json(ws: &mut Ws) -> Value {
    loop {
        if let Message::Text(t) = ws.read().expect("read") {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// The `p`-quantile of sorted figures.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A running `crdt serve`: SIGTERM on drop (the server closes its
/// connections and writes a snapshot), SIGKILL if it lingers.
pub struct Serve {
    pub child: Child,
    pub port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Serve {
    /// SIGTERM (the server closes its connections and writes a snapshot; a
    /// profiler it runs under writes its output), SIGKILL if it lingers.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `crdt serve` with the generator's settings (many connections).
pub fn serve() -> Serve {
    serve_with(&["--max-connections", "5000"])
}

/// `crdt serve --quiet` with `args`, its data in a temporary directory.
pub fn serve_with(args: &[&str]) -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve_on(&dir.path().join("data"), args);
    s._dir = Some(dir);
    s
}

/// `crdt serve --quiet` with `args` on the data directory `data` (a state
/// prepared by the benchmark).
pub fn serve_on(data: &Path, args: &[&str]) -> Serve {
    // CRDT_BENCH_BIN: another build of crdt to compare (A/B on one machine).
    let bin = std::env::var("CRDT_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_crdt").into());
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--quiet", "--data"])
        .arg(data)
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("crdt serve starts");
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("ws://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    Serve {
        child,
        port,
        _dir: None,
    }
}

/// Waits (at most 20 s) until the server on `port` says `ok` at `/healthz`
/// (a cluster node: once it reached Redis).
pub fn wait_healthy(port: u16) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut body = String::new();
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let _ = s.read_to_string(&mut body);
        }
        if body.ends_with("\r\n\r\nok\n") {
            return;
        }
        assert!(Instant::now() < deadline, "not healthy: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A redis-server on an ephemeral loopback port with its files in a
/// temporary directory; killed when dropped.
pub struct Redis {
    pub port: u16,
    pub child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// Starts one with `args` (persistence settings), or `None` (and says
    /// so) when redis-server or redis-cli is not installed.
    pub fn start(args: &[&str]) -> Option<Redis> {
        let found = |tool: &str| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok()
        };
        if !found("redis-server") || !found("redis-cli") {
            println!("(redis-server or redis-cli not installed: the redis rows are skipped)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r
            .cli(&["ping"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    /// `redis-cli` for this server (stdout discarded).
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new("redis-cli");
        c.args(["-p", &self.port.to_string()])
            .args(args)
            .stdout(Stdio::null());
        c
    }
}

/// A line of `/proc/PID/status` in MB (`VmRSS`, `VmHWM`: the peak), NaN
/// when the process is gone.
pub fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Runs a command to its end; its wall time in ms (it must succeed).
pub fn once(mut c: Command) -> f64 {
    let start = Instant::now();
    let status = c.status().expect("run");
    assert!(status.success(), "{c:?} failed");
    start.elapsed().as_secs_f64() * 1e3
}

/// `runs` rounds of `jobs` jobs, each round in its own order (a fixed
/// xorshift shuffle): no job always runs first, and a noisy moment hits
/// them all alike. `run(j)` runs job j and gives its time; per job, the
/// times in run order.
pub fn in_turns(jobs: usize, runs: usize, mut run: impl FnMut(usize) -> f64) -> Vec<Vec<f64>> {
    let mut times = vec![Vec::new(); jobs];
    let mut order: Vec<usize> = (0..jobs).collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..runs {
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &j in &order {
            times[j].push(run(j));
        }
    }
    times
}

/// `crdt` on the replica at `state` (replica `bench-1`), its output dropped.
pub fn crdt(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crdt"));
    c.env("CRDT_STATE", state)
        .env("CRDT_REPLICA", "bench-1")
        .env_remove("CRDT_URL")
        .stdout(Stdio::null());
    c
}

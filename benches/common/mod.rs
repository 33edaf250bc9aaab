//! What the benchmarks share: starting `crdt serve` (or `CRDT_BENCH_BIN`)
//! on an ephemeral loopback port, greeted clients, percentiles.
#![allow(dead_code)] // each benchmark uses a part

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
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
    _dir: tempfile::TempDir,
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
    // CRDT_BENCH_BIN: another build of crdt to compare (A/B on one machine).
    let bin = std::env::var("CRDT_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_crdt").into());
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--quiet", "--data"])
        .arg(dir.path().join("data"))
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
        _dir: dir,
    }
}

//! `crdt serve` and agents for the tests that sync: a server on an
//! ephemeral loopback port, killed when its guard drops, and agents with
//! their own state files. Every process is bounded in time.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_crdt");

/// A running `crdt serve`; killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data: PathBuf,
    pub _dir: Option<TempDir>,
    /// The server's log lines (stderr) after the first.
    pub lines: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = Server::start_at(&data, args);
        s._dir = Some(dir);
        s
    }

    pub fn start_at(data: &Path, args: &[&str]) -> Server {
        Server::start_limited(data, None, args)
    }

    /// On a port given (to restart a server where its clients expect it).
    pub fn start_on(data: &Path, port: u16) -> Server {
        Server::start_listening(data, None, &format!("127.0.0.1:{port}"), &[])
    }

    /// With `ulimit`, the server runs under `ulimit ULIMIT` (say `-n 40`).
    pub fn start_limited(data: &Path, ulimit: Option<&str>, args: &[&str]) -> Server {
        Server::start_listening(data, ulimit, "127.0.0.1:0", args)
    }

    pub fn start_listening(
        data: &Path,
        ulimit: Option<&str>,
        listen: &str,
        args: &[&str],
    ) -> Server {
        let mut cmd = match ulimit {
            Some(limit) => {
                let mut c = StdCommand::new("sh");
                let script = format!("ulimit {limit} && exec \"$0\" \"$@\"");
                c.args(["-c", &script, BIN]);
                c
            }
            None => StdCommand::new(BIN),
        };
        let mut child = cmd
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .args(args)
            .env_remove("CRDT_TOKEN")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server says where it listens");
        let port = first
            .split("ws://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        Server {
            child,
            port,
            data: data.to_path_buf(),
            _dir: None,
            lines: rx,
        }
    }

    /// What the server logged since the last call, without waiting.
    pub fn log_now(&self) -> String {
        self.lines.try_iter().map(|l| l + "\n").collect()
    }

    /// What the server logged since the last call.
    pub fn log(&self) -> String {
        let mut out = String::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An agent: its own state file and replica id.
pub struct Agent {
    pub dir: TempDir,
    pub id: &'static str,
}

impl Agent {
    pub fn new(id: &'static str) -> Agent {
        Agent {
            dir: tempfile::tempdir().unwrap(),
            id,
        }
    }

    pub fn cmd(&self, url: Option<&str>) -> Command {
        let mut c = Command::new(BIN);
        c.env("CRDT_STATE", self.dir.path().join("state.db"))
            .env("CRDT_REPLICA", self.id)
            .env_remove("CRDT_URL")
            .env_remove("CRDT_TOKEN")
            .args(["--connect-timeout", "5"])
            .timeout(Duration::from_secs(30));
        if let Some(u) = url {
            c.env("CRDT_URL", u);
        }
        c
    }

    pub fn run(&self, url: Option<&str>, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(url).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ok(&self, url: Option<&str>, args: &[&str]) -> String {
        let (code, out, err) = self.run(url, args);
        assert_eq!(code, 0, "crdt {args:?} failed: {err}");
        out
    }
}

pub fn raw_ws(port: u16) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/ws")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws
}

pub fn next_json(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
) -> Value {
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            tungstenite::Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

pub type RawWs = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// A raw connection that said hello as `replica`.
pub fn greeted(port: u16, replica: &str) -> RawWs {
    let mut ws = raw_ws(port);
    let hello = json!({"type": "hello", "replica": replica, "protocol": 1});
    ws.send(tungstenite::Message::text(hello.to_string()))
        .unwrap();
    assert_eq!(next_json(&mut ws)["type"], "welcome");
    ws
}

/// A raw connection (replica "w") watching `select`, and its sync-reply.
pub fn watching(port: u16, select: &[&str]) -> (RawWs, Value) {
    let mut ws = greeted(port, "w");
    let sync = json!({"type": "sync", "id": 1, "select": select, "versions": [], "watch": true});
    ws.send(tungstenite::Message::text(sync.to_string()))
        .unwrap();
    let reply = next_json(&mut ws);
    assert_eq!(reply["type"], "sync-reply", "{reply}");
    (ws, reply)
}

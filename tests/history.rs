//! The history as users read it: `crdt log`, `--at` (time travel) and
//! `crdt blame`, on real histories (local changes, imports, a sync through
//! a running `crdt serve`), each process bounded in time.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_crdt");

use common::Replica;

/// Running a replica's commands at a moment, with input, or with one more
/// variable.
trait Timed {
    fn run_at(&self, now: Option<u64>, args: &[&str]) -> Output;
    /// Runs at `now` (ms since the epoch); must succeed.
    fn at(&self, now: u64, args: &[&str]) -> String;
    /// Exports to a file in its directory; returns the path.
    fn export(&self, name: &str) -> PathBuf;
    /// Runs with `input` on stdin; its stdout, or `None` when it failed.
    fn cmd_stdin(&self, args: &[&str], input: Vec<u8>) -> Option<String>;
    /// Runs with one more variable; must succeed.
    fn cmd_env(&self, args: &[&str], key: &str, value: &str) -> String;
}

impl Timed for Replica {
    fn run_at(&self, now: Option<u64>, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        if let Some(ms) = now {
            c.env("CRDT_NOW_MS", ms.to_string());
        }
        c.output().unwrap()
    }

    fn at(&self, now: u64, args: &[&str]) -> String {
        let out = self.run_at(Some(now), args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn export(&self, name: &str) -> PathBuf {
        let path = self.file(name);
        self.ok(&["export", "-o", path.to_str().unwrap()]);
        path
    }

    fn cmd_stdin(&self, args: &[&str], input: Vec<u8>) -> Option<String> {
        let out = self.cmd().args(args).write_stdin(input).output().unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    fn cmd_env(&self, args: &[&str], key: &str, value: &str) -> String {
        let out = self.cmd().args(args).env(key, value).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// 2026-12-01T10:00:00Z plus `minutes`.
fn t(minutes: u64) -> u64 {
    1_764_583_200_000 + 86_400_000 * 365 + minutes * 60_000
}

/// The log lines without their positions and times (which the tests
/// check apart).
fn log_words(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| l.splitn(3, "  ").nth(2).unwrap_or("").to_string())
        .collect()
}

#[test]
fn log_says_what_each_change_did_by_whom_and_from_where() {
    let a = Replica::new("agent-1");
    a.at(t(0), &["inc", "metrics:requests"]);
    a.at(t(1), &["inc", "metrics:requests", "3"]);
    a.at(t(2), &["add", "tasks:active", "task-1", "task-2"]);
    a.at(t(3), &["set", "config:global", r#"{"mode":"safe"}"#]);
    a.at(t(4), &["append", "document:main", "Hello world"]);
    a.at(t(5), &["delete", "document:main", "5", "6"]);
    a.at(t(6), &["rm", "tasks:active", "task-2"]);
    let b = Replica::new("agent-2");
    b.at(t(7), &["import", a.export("a.json").to_str().unwrap()]);
    b.at(t(8), &["inc", "metrics:requests", "5"]);
    b.at(t(8), &["append", "document:main", " there"]);
    std::fs::write(b.file("lines.txt"), "dec votes 2\ninc votes 4\n").unwrap();
    // A pn-counter through a batch: `inc --type pn-counter` first.
    b.at(t(9), &["inc", "--type", "pn-counter", "votes", "1"]);
    b.at(t(9), &["batch", b.file("lines.txt").to_str().unwrap()]);
    let from_b = b.export("b.json");
    a.at(t(10), &["import", from_b.to_str().unwrap()]);
    let import = format!("import {}", from_b.display());
    let log = a.ok(&["log"]);
    assert_eq!(
        log_words(&log),
        [
            format!("votes  pn-counter  +3  by agent-2  ({import})"),
            format!("metrics:requests  g-counter  +5  by agent-2  ({import})"),
            format!("document:main  rga  insert \" there\" at 5  by agent-2  ({import})"),
            "tasks:active  or-set  rm \"task-2\"  by agent-1  (local)".into(),
            "document:main  rga  delete 6 at 5  by agent-1  (local)".into(),
            "document:main  rga  insert \"Hello world\" at 0  by agent-1  (local)".into(),
            "config:global  lww-register  set {\"mode\":\"safe\"}  by agent-1  (local)".into(),
            "tasks:active  or-set  add \"task-1\", \"task-2\"  by agent-1  (local)".into(),
            "metrics:requests  g-counter  +3  by agent-1  (local)".into(),
            "metrics:requests  g-counter  +1  by agent-1  (local)".into(),
        ],
        "{log}"
    );
    // Positions count up from @1; times are the clock's (CRDT_NOW_MS).
    let first = log.lines().last().unwrap();
    assert!(
        first.starts_with("@1  2026-12-01T10:00:00.000Z  metrics:requests"),
        "{first}"
    );
    // On agent-2: what the import brought, then its own changes.
    assert_eq!(
        log_words(&b.ok(&["log", "votes", "document:main"])),
        [
            "votes  pn-counter  +4  by agent-2  (batch)",
            "votes  pn-counter  -2  by agent-2  (batch)",
            "votes  pn-counter  +1  by agent-2  (local)",
            "document:main  rga  insert \" there\" at 5  by agent-2  (local)",
            &format!(
                "document:main  rga  insert \"Hello\" at 0  by agent-1  (import {})",
                a.file("a.json").display()
            ),
        ]
    );
    // Selecting: names and namespaces, -n, --replica, --since/--until.
    assert_eq!(a.ok(&["log", "metrics", "-n", "1"]).lines().count(), 1);
    let by2 = log_words(&a.ok(&["log", "--replica", "agent-2"]));
    assert_eq!(by2.len(), 3);
    assert!(by2.iter().all(|l| l.contains("by agent-2")));
    let window = a.ok(&[
        "log",
        "--since",
        "2026-12-01T10:02:00Z",
        "--until",
        "2026-12-01T10:04:00Z",
    ]);
    assert_eq!(log_words(&window).len(), 3, "{window}");
    assert_eq!(a.ok(&["log", "nothing:here"]), "");
    // Another replica's database, read-only.
    let other = a.ok(&["log", "--from", b.state().to_str().unwrap(), "votes"]);
    assert_eq!(log_words(&other).len(), 3);
    // --json: one document, every entry in the documented shape.
    let v = a.json(&["log"]);
    common::check_schema("log", &v);
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 10);
    assert_eq!(entries[0]["summary"], "+3");
    assert_eq!(entries[0]["replicas"][0], "agent-2");
    assert_eq!(entries[9]["id"], 1);
    assert_eq!(entries[9]["time_ms"], t(0));
    assert_eq!(entries[9]["delta"]["counts"]["agent-1"]["count"], 1);
    // Bad input: clear errors, exit 2.
    let err = a.exits(2, &["log", "--since", "soon"]);
    assert!(err.contains("--since \"soon\""), "{err}");
    let err = a.exits(2, &["log", "--replica", "bad id"]);
    assert!(err.contains("--replica"), "{err}");
    let none = Replica::new("agent-3");
    let err = none.exits(2, &["log"]);
    assert!(err.contains("no replica at"), "{err}");
}

#[test]
fn time_travel_reads_the_replica_as_it_was() {
    let a = Replica::new("agent-1");
    a.at(t(0), &["inc", "metrics:requests", "2"]);
    a.at(t(10), &["append", "document:main", "Hello"]);
    // Two imports of a peer's changes, ten minutes apart.
    let b = Replica::new("agent-2");
    b.at(t(11), &["add", "tasks:active", "task-1"]);
    let first = b.export("first.json");
    b.at(t(12), &["add", "tasks:active", "task-2"]);
    b.at(t(12), &["inc", "metrics:requests", "5"]);
    let second = b.export("second.json");
    a.at(t(20), &["import", first.to_str().unwrap()]);
    a.at(t(30), &["import", second.to_str().unwrap()]);
    a.at(t(40), &["rm", "tasks:active", "task-1"]);
    let at = |when: &str, args: &[&str]| -> String {
        let mut all = args.to_vec();
        all.extend(["--at", when]);
        a.ok(&all)
    };
    // Between the two imports: the first one's member only.
    assert_eq!(
        at("2026-12-01T10:25:00Z", &["get", "tasks:active"]),
        "\"task-1\"\n"
    );
    assert_eq!(
        at("2026-12-01T10:25:00Z", &["get", "metrics:requests"]),
        "2\n"
    );
    assert_eq!(
        at("2026-12-01T10:35:00Z", &["get", "tasks:active"]),
        "\"task-1\"\n\"task-2\"\n"
    );
    assert_eq!(
        at("2026-12-01T10:35:00Z", &["get", "metrics:requests"]),
        "7\n"
    );
    assert_eq!(a.ok(&["get", "tasks:active"]), "\"task-2\"\n");
    // @N: just after the N-th entry.
    assert_eq!(at("@1", &["get", "metrics:requests"]), "2\n");
    let ls = at("@2", &["ls"]);
    assert!(
        ls.contains("document:main") && !ls.contains("tasks:active"),
        "{ls}"
    );
    // Before the object existed: a clear answer, exit 1.
    let err = a.exits(1, &["get", "document:main", "--at", "@1"]);
    assert!(
        err.contains("document:main did not exist yet at @1: its history here starts at 2026-12-01T10:10:00.000Z (@2)"),
        "{err}"
    );
    let err = a.exits(1, &["show", "tasks:active", "--at", "2026-12-01T10:15:00Z"]);
    assert!(err.contains("did not exist yet"), "{err}");
    // A duration ago: 1,000 days ago is before all of it.
    let err = a.exits(1, &["get", "metrics:requests", "--at", "1000d"]);
    assert!(err.contains("did not exist yet"), "{err}");
    // Every reader takes --at: show, inspect, visualize, explain, export.
    let show = at("@1", &["show", "metrics:requests"]);
    assert!(show.contains("value:   2"), "{show}");
    assert!(
        show.contains("at:      @1 (as this replica had it then)"),
        "{show}"
    );
    let v: Value =
        serde_json::from_str(&at("@1", &["--json", "inspect", "metrics:requests"])).unwrap();
    assert_eq!(v["value"], 2);
    assert!(at("@2", &["visualize", "document:main"]).contains("Hello"));
    assert!(at("@3", &["explain", "tasks:active"]).contains("task-1"));
    let snap: Value = serde_json::from_str(&at("@3", &["export"])).unwrap();
    assert_eq!(snap["objects"].as_array().unwrap().len(), 3);
    // Two moments of one replica, with the semantic diff (exit 1: differ).
    let out = a.run_at(
        None,
        &[
            "diff",
            "--local",
            "--at",
            "@3",
            "--at",
            "@6",
            "tasks:active",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let diff = String::from_utf8(out.stdout).unwrap();
    assert!(
        diff.starts_with("A = local at @3   B = local at @6"),
        "{diff}"
    );
    assert!(diff.contains("task-2"), "{diff}");
    // A moment against a file.
    let out = a.run_at(
        None,
        &["diff", "--local", "--at", "@1", first.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    // Bad moments: exit 2, saying what is wrong.
    let err = a.exits(2, &["get", "metrics:requests", "--at", "@99"]);
    assert!(err.contains("ends at @6"), "{err}");
    let err = a.exits(2, &["get", "metrics:requests", "--at", "@x"]);
    assert!(err.contains("history position"), "{err}");
    let err = a.exits(2, &["get", "metrics:requests", "--at", "yesterday"]);
    assert!(err.contains("RFC 3339"), "{err}");
    let err = a.exits(2, &["diff", "--at", "@1", "x.json", "y.json"]);
    assert!(err.contains("--local"), "{err}");
    let err = a.exits(
        2,
        &["inspect", "tasks:active", "--at", "@1", "--from", "x.json"],
    );
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn blame_says_who_typed_each_run_and_who_added_each_member() {
    // Three replicas type into one text concurrently, from a shared start.
    let a = Replica::new("agent-1");
    let b = Replica::new("agent-2");
    let c = Replica::new("agent-3");
    a.at(t(0), &["append", "document:main", "Hello"]);
    let start = a.export("start.json");
    b.at(t(1), &["import", start.to_str().unwrap()]);
    c.at(t(1), &["import", start.to_str().unwrap()]);
    a.at(t(2), &["append", "document:main", "!"]);
    b.at(t(2), &["insert", "document:main", "0", ">> "]);
    c.at(t(2), &["insert", "document:main", "5", ", world"]);
    b.at(t(3), &["add", "tasks:active", "review"]);
    c.at(t(3), &["add", "tasks:active", "review"]);
    a.at(t(4), &["import", b.export("b.json").to_str().unwrap()]);
    a.at(t(5), &["import", c.export("c.json").to_str().unwrap()]);
    assert_eq!(
        a.ok(&["get", "--raw", "document:main"]),
        ">> Hello, world!\n"
    );
    let blame = a.ok(&["blame", "document:main"]);
    let b_file = b.file("b.json").display().to_string();
    let c_file = c.file("c.json").display().to_string();
    assert_eq!(
        blame,
        format!(
            "document:main (rga)\n  \
             agent-2  \">> \"  @3 2026-12-01T10:04:00.000Z (import {})\n  \
             agent-1  \"Hello\"  @1 2026-12-01T10:00:00.000Z (local)\n  \
             agent-3  \", world\"  @5 2026-12-01T10:05:00.000Z (import {})\n  \
             agent-1  \"!\"  @2 2026-12-01T10:02:00.000Z (local)\n",
            b_file, c_file
        ),
        "{blame}"
    );
    // At a terminal's request, the text is colored per replica too.
    let colored = a.ok(&["--color", "always", "blame", "document:main"]);
    assert!(colored.contains("\x1b["), "{colored}");
    let set = a.ok(&["blame", "tasks:active"]);
    assert!(set.contains("\"review\"  added by agent-2:1 @4"), "{set}");
    assert!(set.contains("added by agent-3:1 @6"), "{set}");
    // Registers: the write that holds and the one that lost.
    b.at(t(6), &["set", "config:global", "\"slow\""]);
    c.at(t(7), &["set", "config:global", "\"fast\""]);
    a.at(t(8), &["import", b.export("b2.json").to_str().unwrap()]);
    a.at(t(8), &["import", c.export("c2.json").to_str().unwrap()]);
    let reg = a.ok(&["blame", "config:global"]);
    let lines: Vec<&str> = reg.lines().collect();
    assert!(
        lines[1].starts_with("  holds  \"fast\"  written by agent-3:1"),
        "{reg}"
    );
    assert!(
        lines[2].starts_with("  lost   \"slow\"  written by agent-2:1"),
        "{reg}"
    );
    // Counters: each replica's contributions over time.
    a.at(t(9), &["inc", "metrics:requests", "2"]);
    b.at(t(9), &["inc", "metrics:requests", "5"]);
    a.at(t(10), &["import", b.export("b3.json").to_str().unwrap()]);
    a.at(t(11), &["inc", "metrics:requests"]);
    let counter = a.ok(&["blame", "metrics:requests"]);
    assert!(counter.contains("agent-1: 3 in 2 changes"), "{counter}");
    assert!(
        counter.contains("agent-2: 5 in 1 change\n    +5  @"),
        "{counter}"
    );
    // --json in the documented shape, for every type.
    for name in [
        "document:main",
        "tasks:active",
        "config:global",
        "metrics:requests",
    ] {
        let v = a.json(&["blame", name]);
        common::check_schema("blame", &v);
    }
    let v = a.json(&["blame", "document:main"]);
    let runs: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["replica"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["agent-2", "agent-1", "agent-3", "agent-1"]);
    let err = a.exits(2, &["blame", "nothing:here"]);
    assert!(err.contains("no object named nothing:here"), "{err}");
}

/// A running `crdt serve` on an ephemeral loopback port; killed on drop.
struct Server {
    child: Child,
    url: String,
    data: TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_in(tempfile::tempdir().unwrap())
    }

    /// Stops it as SIGTERM does (it compacts its log on the way out) and
    /// starts it again on the same data.
    fn restart(mut self) -> Server {
        let pid = self.child.id().to_string();
        let status = StdCommand::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let data = tempfile::tempdir().unwrap();
        let old = std::mem::replace(&mut self.data, data);
        Server::start_in(old)
    }

    fn start_in(data: TempDir) -> Server {
        let mut child = StdCommand::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .env_remove("CRDT_TOKEN")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        // The rest of its log is read (and dropped) while it runs.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("ws://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches([',', '.'])
            .to_string();
        Server { child, url, data }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_sync_is_logged_with_its_url_and_travels_in_time() {
    let server = Server::start();
    let a = Replica::new("agent-1");
    let b = Replica::new("agent-2");
    a.at(
        t(0),
        &["--url", &server.url, "add", "tasks:active", "task-1"],
    );
    b.at(
        t(1),
        &["--url", &server.url, "add", "tasks:active", "task-2"],
    );
    a.at(t(2), &["--url", &server.url, "sync"]);
    let log = a.ok(&["log", "tasks:active"]);
    let sync = format!("sync {}", server.url);
    assert_eq!(
        log_words(&log),
        [
            format!("tasks:active  or-set  add \"task-2\"  by agent-2  ({sync})"),
            "tasks:active  or-set  add \"task-1\"  by agent-1  (local)".to_string(),
        ],
        "{log}"
    );
    assert_eq!(a.ok(&["get", "tasks:active", "--at", "@1"]), "\"task-1\"\n");
    // The server's log, in the same words; and one frame, and bad input.
    let log = std::fs::read(server.data.path().join("log.jsonl")).unwrap();
    let out = a
        .cmd_stdin(&["decode", "-"], log)
        .expect("decode reads the server's log");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("1: log line: pushed by agent-1 at 20"),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "  tasks:active  or-set  add \"task-1\"  (events up to agent-1:1)"
    );
    assert!(
        lines[2].starts_with("2: log line: pushed by agent-2 at 20"),
        "{out}"
    );
    assert_eq!(
        lines[3],
        "  tasks:active  or-set  add \"task-2\"  (events up to agent-2:1)"
    );
    let frame = r#"{"type":"push","id":7,"objects":[{"name":"document:main","type":"rga","state":{"context":{"agent-1":2},"deletes":{},"inserts":{"agent-1":[0,2,0,null]},"text":{"agent-1":"Hi"}}}]}"#;
    assert_eq!(
        a.ok(&["decode", frame]),
        "push (id 7)\n  document:main  rga  insert \"Hi\"  (events up to agent-1:2)\n"
    );
    let err = a.exits(2, &["decode", "{\"type\":\"push\",\"objects\":[{\"name\":\"x\",\"type\":\"or-set\",\"state\":{\"elements\":7}}]}"]);
    assert!(
        err.contains("the frame does not decode") && err.contains("objects[0] (\"x\").state"),
        "{err}"
    );
    let err = a.exits(2, &["decode", "[1,2"]);
    assert!(err.contains("not JSON") && err.contains("column"), "{err}");
    // A bad line among good ones: named, and nothing half printed, as text or JSON.
    for json in [false, true] {
        let mut args = vec!["decode", "-"];
        if json {
            args.insert(0, "--json");
        }
        let out = a
            .cmd()
            .args(&args)
            .write_stdin(format!("{frame}\n[1,2\n"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("line 2 does not decode"));
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let blame = a.ok(&["blame", "tasks:active"]);
    assert!(
        blame.contains(&format!(
            "added by agent-2:1 @2 2026-12-01T10:02:00.000Z ({sync})"
        )),
        "{blame}"
    );

    // The server's view: who pushed what, when (positions from its start).
    let push = format!("push to {}", server.url);
    let want = [
        format!("tasks:active  or-set  add \"task-2\"  by agent-2  ({push})"),
        format!("tasks:active  or-set  add \"task-1\"  by agent-1  ({push})"),
    ];
    let remote = b.ok(&["log", "--url", &server.url]);
    assert_eq!(log_words(&remote), want, "{remote}");
    assert!(remote.starts_with("@2  "), "{remote}");
    assert_eq!(
        log_words(&b.ok(&["log", "--url", &server.url, "-n", "1"])),
        want[..1]
    );
    assert_eq!(b.ok(&["log", "--url", &server.url, "metrics:"]), "");
    // The server picks by replica before the limit.
    assert_eq!(
        log_words(&b.ok(&[
            "log",
            "--url",
            &server.url,
            "-n",
            "1",
            "--replica",
            "agent-1"
        ])),
        want[1..]
    );
    let v = b.json(&["log", "--url", &server.url, "--replica", "agent-1"]);
    common::check_schema("log", &v);
    assert_eq!(v.as_array().unwrap().len(), 1);
    // A counter's pushes say what they added when the earlier total is known.
    a.at(
        t(3),
        &["--url", &server.url, "inc", "metrics:requests", "2"],
    );
    a.at(
        t(4),
        &["--url", &server.url, "inc", "metrics:requests", "3"],
    );
    let counter = b.ok(&["log", "--url", &server.url, "metrics"]);
    assert_eq!(
        log_words(&counter),
        [
            format!("metrics:requests  g-counter  +3 (agent-1 total 5)  by agent-1  ({push})"),
            format!("metrics:requests  g-counter  agent-1 total 2  by agent-1  ({push})"),
        ],
        "{counter}"
    );
    // Without --url on the command line, CRDT_URL does not make `log` remote.
    let local = a.cmd_env(&["log", "-n", "1"], "CRDT_URL", &server.url);
    assert!(local.contains("(local)"), "{local}");
    // A restart keeps the view (positions start again at 1).
    let server = server.restart();
    let push = format!("push to {}", server.url);
    let again = b.ok(&["log", "--url", &server.url, "tasks:"]);
    assert_eq!(
        log_words(&again),
        [
            format!("tasks:active  or-set  add \"task-2\"  by agent-2  ({push})"),
            format!("tasks:active  or-set  add \"task-1\"  by agent-1  ({push})"),
        ],
        "{again}"
    );
}

#[test]
fn a_version_1_database_is_upgraded_and_its_history_kept() {
    let a = Replica::new("agent-1");
    a.at(t(0), &["inc", "metrics:requests", "2"]);
    a.at(t(1), &["inc", "metrics:requests"]);
    // Back to the schema of version 1, as an earlier build left it.
    let conn = rusqlite::Connection::open(a.state()).unwrap();
    conn.execute_batch(
        "DROP INDEX history_name; DROP TABLE checkpoints; DROP TABLE tally; ALTER TABLE history DROP COLUMN summary;
         UPDATE meta SET value = '1' WHERE key = 'version'; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    // Read-only (--from), it is read as it is: no summaries yet.
    let b = Replica::new("agent-2");
    let old = b.ok(&["log", "--from", a.state().to_str().unwrap()]);
    assert_eq!(
        log_words(&old),
        [
            "metrics:requests  g-counter  (no visible change)  by agent-1  (local)",
            "metrics:requests  g-counter  (no visible change)  by agent-1  (local)",
        ]
    );
    // Opened to write, it is upgraded; the old rows travel in time.
    a.at(t(2), &["inc", "metrics:requests", "4"]);
    let version: i64 = rusqlite::Connection::open(a.state())
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    assert_eq!(a.ok(&["get", "metrics:requests", "--at", "@1"]), "2\n");
    assert_eq!(
        log_words(&a.ok(&["log", "-n", "1"])),
        ["metrics:requests  g-counter  +4  by agent-1  (local)"]
    );
}

#[test]
fn the_history_of_a_large_text_travels_in_time_through_checkpoints() {
    // 4,000 one-character appends, each a row of its own (a counter's
    // change between them: no run to fold): past the first checkpoint.
    let a = Replica::new("agent-1");
    let text: String = (0..4000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let lines: String = text
        .chars()
        .map(|c| format!("append doc {c}\ninc n\n"))
        .collect();
    std::fs::write(a.file("lines.txt"), lines).unwrap();
    a.at(t(0), &["batch", a.file("lines.txt").to_str().unwrap()]);
    let checkpoints: i64 = rusqlite::Connection::open(a.state())
        .unwrap()
        .query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))
        .unwrap();
    assert!(checkpoints >= 1, "no checkpoint after 4,000 rows");
    for n in [1, 2999, 3000, 3001, 3999, 4000] {
        // The n-th append is row 2n - 1.
        let at = format!("@{}", 2 * n - 1);
        let got = a.ok(&["get", "--raw", "doc", "--at", &at]);
        assert_eq!(got.trim_end(), &text[..n], "at {at}");
    }
    let entry = a.ok(&["log", "doc", "-n", "1"]);
    assert!(
        entry.contains("insert \"") && entry.contains("at 3999"),
        "{entry}"
    );
}

#[test]
fn a_batch_folds_a_long_run_of_edits_to_one_text_into_one_row() {
    let a = Replica::new("agent-1");
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let mut lines = String::new();
    // Lines 1-20: appends; 21: another object; 22-41: appends; 42: delete
    // the text.
    for c in &letters[..20] {
        lines.push_str(&format!("append doc {c}\n"));
    }
    lines.push_str("inc n\n");
    for c in &letters[20..40] {
        lines.push_str(&format!("append doc {c}\n"));
    }
    lines.push_str("del doc\n");
    std::fs::write(a.file("lines.txt"), lines).unwrap();
    a.at(t(0), &["batch", a.file("lines.txt").to_str().unwrap()]);
    let log = a.ok(&["log"]);
    let words = log_words(&log);
    // Oldest first: 16 rows, one for lines 17-20, the counter, 16 rows,
    // one for lines 38-41, the delete.
    let words: Vec<&str> = words.iter().rev().map(String::as_str).collect();
    assert_eq!(words.len(), 16 + 1 + 1 + 16 + 1 + 1, "{log}");
    assert_eq!(words[0], "doc  rga  insert \"a\" at 0  by agent-1  (batch)");
    assert_eq!(
        words[15],
        "doc  rga  insert \"p\" at 15  by agent-1  (batch)"
    );
    assert_eq!(
        words[16],
        "doc  rga  insert \"qrst\" at 16 (lines 17-20)  by agent-1  (batch)"
    );
    assert_eq!(words[17], "n  g-counter  +1  by agent-1  (batch)");
    assert_eq!(
        words[18],
        "doc  rga  insert \"u\" at 20  by agent-1  (batch)"
    );
    assert_eq!(
        words[34],
        "doc  rga  insert \"KLMN\" at 36 (lines 38-41)  by agent-1  (batch)"
    );
    assert_eq!(words[35], "doc  rga  delete  by agent-1  (batch)");
    // Every row reads as the text was after it: the folded rows hold their
    // lines and nothing of the delete after them.
    let text: String = letters[..40].iter().collect();
    let mut len = 0;
    for (i, w) in words.iter().enumerate().take(35) {
        if w.starts_with("n  ") {
            continue;
        }
        len = match w.find("(lines ") {
            Some(_) => len + 4,
            None => len + 1,
        };
        let at = format!("@{}", i + 1);
        let got = a.ok(&["get", "--raw", "doc", "--at", &at]);
        assert_eq!(got.trim_end(), &text[..len], "at {at}");
    }
    assert_eq!(len, 40);
    // 36 rows in the database, not 42.
    let rows: i64 = rusqlite::Connection::open(a.state())
        .unwrap()
        .query_row("SELECT count(*) FROM history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 36);
}

/// The README's "What happened?" example prints what the README says: its
/// commands run in order in one directory, the clock one minute on for
/// each. `UPDATE_README=1 cargo test --test history readme` rewrites the
/// outputs from the real ones.
#[test]
fn the_readme_history_example_prints_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    common::check_readme(
        "## What happened? History, time travel and blame",
        10,
        "history",
        |i, args| {
            let out = Command::new(BIN)
                .args(args)
                .env_remove("CRDT_URL")
                .env_remove("CRDT_STATE")
                .env_remove("CRDT_REPLICA")
                .env("CRDT_NOW_MS", t(i as u64).to_string())
                .current_dir(dir.path())
                .timeout(Duration::from_secs(60))
                .output()
                .unwrap();
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        },
    );
}

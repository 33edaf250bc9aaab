//! The debugger (inspect, visualize, diff, explain, merge --dry-run) on
//! replicas that diverged through real commands. Text output is pinned with
//! insta snapshots (`tests/snapshots/`, plain, no color); update them with
//! `INSTA_UPDATE=always cargo test --test debugger` and review the diff.

use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

mod common;

/// Two agents share a base, then diverge on every type:
/// concurrent increments, concurrent register writes, a remove racing a
/// re-add, and concurrent edits of one text. Files: a.json, b.json, m.json.
fn fixture() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = |who: &str, now: u64, args: &[&str]| {
            let (state, id) = if who == "a" {
                ("a.state", "agent-1")
            } else {
                ("b.state", "agent-2")
            };
            Command::new(env!("CARGO_BIN_EXE_crdt"))
                .args(args)
                .current_dir(dir.path())
                .env("CRDT_STATE", state)
                .env("CRDT_REPLICA", id)
                .env("CRDT_NOW_MS", now.to_string())
                .assert()
                .success();
        };
        let t0 = 1_700_000_000_000;
        run("a", t0, &["inc", "metrics:requests"]);
        run("a", t0, &["dec", "resources:gpu", "10"]);
        run("a", t0, &["set", "config:global", r#"{"mode": "fast"}"#]);
        run("a", t0, &["add", "tasks:active", "task-1", "task-2"]);
        run("a", t0, &["append", "document:main", "Hello World"]);
        run("a", t0, &["put", "config:flags", "ai-review", "false"]);
        run("a", t0, &["put", "config:flags", "beta", "true"]);
        run(
            "a",
            t0,
            &[
                "new",
                "resources:gpus",
                "--type",
                "bounded-counter",
                "--limit",
                "100",
            ],
        );
        run(
            "a",
            t0,
            &["transfer", "resources:gpus", "40", "--to", "agent-2"],
        );
        run("a", t0, &["export", "-o", "base.json"]);
        run("b", t0, &["import", "base.json"]);
        // Diverge.
        run("a", t0 + 100, &["inc", "metrics:requests", "2"]);
        run("b", t0 + 100, &["inc", "metrics:requests"]);
        run(
            "a",
            t0 + 100,
            &["inc", "--type", "pn-counter", "resources:gpu", "30"],
        );
        run("b", t0 + 100, &["dec", "resources:gpu", "5"]);
        run(
            "a",
            t0 + 500,
            &["set", "config:global", r#"{"mode": "safe"}"#],
        );
        run(
            "b",
            t0 + 900,
            &["set", "config:global", r#"{"mode": "slow"}"#],
        );
        run("a", t0 + 100, &["rm", "tasks:active", "task-1"]);
        run("b", t0 + 100, &["add", "tasks:active", "task-1", "task-3"]);
        run("a", t0 + 100, &["rm", "tasks:active", "task-2"]);
        run("a", t0 + 100, &["insert", "document:main", "5", ","]);
        run("b", t0 + 100, &["delete", "document:main", "6", "5"]);
        run("b", t0 + 100, &["append", "document:main", "there"]);
        // Flags: different keys, one key written by both, an unset.
        run("a", t0 + 100, &["put", "config:flags", "dark-mode", "true"]);
        run("a", t0 + 200, &["put", "config:flags", "ai-review", "true"]);
        run(
            "b",
            t0 + 300,
            &["put", "config:flags", "ai-review", "false"],
        );
        run("b", t0 + 300, &["unset", "config:flags", "beta"]);
        run("a", t0 + 100, &["inc", "resources:gpus", "50"]);
        run("b", t0 + 100, &["inc", "resources:gpus", "40"]);
        run("a", t0, &["export", "-o", "a.json"]);
        run("b", t0, &["export", "-o", "b.json"]);
        run("a", t0, &["merge", "a.json", "b.json", "-o", "m.json"]);
        run("a", t0, &["merge", "a.json", "b.json", "-o", "merged.json"]);
        dir
    })
    .path()
}

fn crdt(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crdt"))
        .arg("--color")
        .arg("never")
        .args(args)
        .current_dir(fixture())
        .env_remove("CRDT_STATE")
        .env("CRDT_STATE", "a.state")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(2),
        "crdt {args:?} failed: {stderr}"
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

const NAMES: [&str; 7] = [
    "metrics:requests",
    "resources:gpu",
    "config:global",
    "tasks:active",
    "document:main",
    "config:flags",
    "resources:gpus",
];

fn snap_name(cmd: &str, name: &str) -> String {
    format!("{cmd}__{}", name.replace(':', "_"))
}

#[test]
fn inspect_every_type() {
    for name in NAMES {
        let (_, out) = crdt(&["inspect", name, "--from", "m.json"]);
        insta::assert_snapshot!(snap_name("inspect", name), out);
    }
}

#[test]
fn visualize_every_type() {
    for name in NAMES {
        let (_, out) = crdt(&["visualize", name, "--from", "m.json"]);
        insta::assert_snapshot!(snap_name("visualize", name), out);
    }
}

#[test]
fn explain_every_type() {
    for name in NAMES {
        let (_, out) = crdt(&["explain", name, "--from", "m.json"]);
        insta::assert_snapshot!(snap_name("explain", name), out);
    }
}

#[test]
fn diff_every_type() {
    for name in NAMES {
        let (code, out) = crdt(&["diff", "a.json", "b.json", name]);
        assert_eq!(code, 1, "{name} differs");
        insta::assert_snapshot!(snap_name("diff", name), out);
    }
    let (_, stat) = crdt(&["diff", "--stat", "a.json", "b.json"]);
    insta::assert_snapshot!("diff__stat", stat);
}

#[test]
fn merge_dry_run_lists_losing_writes_and_dropped_members() {
    let (_, out) = crdt(&["merge", "--dry-run", "a.json", "b.json"]);
    assert!(
        out.contains("its write {\"mode\":\"safe\"} by agent-1"),
        "{out}"
    );
    assert!(out.contains("drops \"task-2\""), "{out}");
    insta::assert_snapshot!("merge__dry_run", out);
}

#[test]
fn diff_exit_codes() {
    assert_eq!(crdt(&["diff", "a.json", "a.json"]).0, 0);
    assert_eq!(crdt(&["diff", "a.json", "b.json"]).0, 1);
    // Against the local replica (a.state is agent-1's, exported as a.json).
    assert_eq!(crdt(&["diff", "--local", "a.json"]).0, 0);
    assert_eq!(crdt(&["diff", "--local", "b.json"]).0, 1);
    // A merge has everything: comparing it with itself through stdin is equal.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crdt"))
        .args(["diff", "m.json", "-"])
        .current_dir(fixture())
        .stdin(std::fs::File::open(fixture().join("m.json")).unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(0));
    // Errors are 2.
    let bad = Command::new(env!("CARGO_BIN_EXE_crdt"))
        .args(["diff", "a.json", "missing.json"])
        .current_dir(fixture())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn diff_json_is_data() {
    let (code, out) = crdt(&["--json", "diff", "a.json", "b.json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["equal"], false);
    let by_name = |n: &str| {
        v["names"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap()
            .clone()
    };
    let counter = by_name("metrics:requests");
    assert_eq!(
        (
            counter["a"].clone(),
            counter["b"].clone(),
            counter["merged"].clone()
        ),
        (json!(3), json!(2), json!(4))
    );
    assert_eq!(counter["relation"], "concurrent");
    let reg = by_name("config:global");
    assert_eq!(reg["merged"], json!({"mode": "slow"}));
    assert_eq!(
        reg["detail"]["merged"].as_array().unwrap().len(),
        2,
        "both concurrent writes are kept, one wins"
    );
    let set = by_name("tasks:active");
    let kept: Vec<(Value, Value)> = set["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["value"].clone(), e["kept"].clone()))
        .collect();
    assert_eq!(
        kept,
        [
            (json!("task-1"), json!(true)),
            (json!("task-2"), json!(false)),
            (json!("task-3"), json!(true))
        ]
    );
    let text = by_name("document:main");
    assert_eq!(text["merged"], "Hello, there");
    assert!(
        text["detail"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c[0] == "+")
    );
}

#[test]
fn inspect_json_is_like_a_debuggers_visualize_call() {
    for name in NAMES {
        let (_, out) = crdt(&["--json", "inspect", name, "--from", "m.json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        for field in ["type", "state", "version", "peers", "size"] {
            assert!(!v[field].is_null(), "{name}: no {field}");
        }
        assert_eq!(v["size"], json!(v["state"].to_string().len()));
    }
    let (_, out) = crdt(&["--json", "inspect", "metrics:requests", "--from", "m.json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], json!({"agent-1": 2, "agent-2": 1}));
    assert_eq!(v["state"]["counts"]["agent-1"]["count"], 3);
}

#[test]
fn dot_output_is_valid_graphviz() {
    let have_dot = std::process::Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !have_dot {
        assert!(
            std::env::var_os("CI").is_none(),
            "Graphviz `dot` is not installed; .ci/run installs it (apt-get install graphviz)"
        );
        eprintln!(
            "note: Graphviz `dot` not installed; checked only that the output looks like a digraph"
        );
    }
    for name in NAMES {
        let (_, out) = crdt(&["visualize", name, "--format", "dot", "--from", "m.json"]);
        assert!(
            out.starts_with("digraph ") && out.trim_end().ends_with('}'),
            "{out}"
        );
        if have_dot {
            let mut child = std::process::Command::new("dot")
                .arg("-Tsvg")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(out.as_bytes())
                .unwrap();
            let result = child.wait_with_output().unwrap();
            assert!(
                result.status.success(),
                "dot rejected {name}: {}\n{out}",
                String::from_utf8_lossy(&result.stderr)
            );
            assert!(String::from_utf8_lossy(&result.stdout).contains("<svg"));
        }
    }
}

/// The README's debugging examples print what the README says (run on the
/// fixture: two agents that shared a base and diverged), so they cannot
/// drift. `UPDATE_README=1 cargo test --test debugger readme` rewrites them
/// from the real outputs.
#[test]
fn the_readme_debugging_examples_print_what_it_says() {
    common::check_readme(
        "## Debugging: why do two replicas disagree?",
        6,
        "debugger",
        |_, args| crdt(args).1,
    );
}

/// The README's first example, run on a new replica, prints what it says.
#[test]
fn the_readme_intro_prints_what_it_says() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let examples = common::readme_examples(&readme, "# crdt\n");
    assert!(
        examples.len() >= 3,
        "the README's intro example was not found"
    );
    let dir = tempfile::tempdir().unwrap();
    for (line, words, want) in examples {
        let out = Command::new(env!("CARGO_BIN_EXE_crdt"))
            .args(&words[1..])
            .env("CRDT_STATE", dir.path().join("replica.db"))
            .env("CRDT_REPLICA", "agent-1")
            .env_remove("CRDT_URL")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            want,
            "README: {line}"
        );
    }
}

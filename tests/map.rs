//! The map type from the shell: `put`, `unset`, `get NAME KEY`, `new --type
//! map`, batch lines, the history, the debugger, snapshots between replicas
//! and a sync through `crdt serve`.

use serde_json::{Value, json};

mod common;
use common::{Agent, Replica, Server};

#[test]
fn put_unset_and_get_a_key() {
    let r = Replica::new("agent-1");
    assert_eq!(
        r.ok(&["put", "config:flags", "ai-review", "true"]),
        "{\"ai-review\":true}\n"
    );
    r.ok(&["put", "config:flags", "theme", r#"{"dark": true}"#]);
    r.ok(&["put", "--string", "config:flags", "version", "1.10"]);
    assert_eq!(r.ok(&["get", "config:flags", "ai-review"]), "true\n");
    assert_eq!(r.ok(&["get", "config:flags", "version"]), "\"1.10\"\n");
    assert_eq!(r.ok(&["get", "--raw", "config:flags", "version"]), "1.10\n");
    assert_eq!(
        r.json(&["get", "config:flags"])["value"],
        json!({"ai-review": true, "theme": {"dark": true}, "version": "1.10"})
    );
    assert_eq!(
        r.json(&["get", "config:flags", "theme"]),
        json!({"name": "config:flags", "type": "map", "key": "theme", "value": {"dark": true}})
    );
    // A key the map does not have: exit 1, a note, nothing on stdout.
    let out = r.run(&["get", "config:flags", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config:flags has no key nope"));
    // unset: the key goes; one not here is a note, not an error.
    let out = r.run(&["unset", "config:flags", "theme", "nope"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"ai-review\":true,\"version\":\"1.10\"}\n"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("config:flags has no key nope: nothing removed for it")
    );
    r.exits(1, &["get", "config:flags", "theme"]);
    // An unset of a map this replica does not have creates nothing.
    let err = r.exits(0, &["unset", "config:none", "k"]);
    assert!(err.contains("no object named config:none (yet)"), "{err}");
    r.exits(2, &["show", "config:none"]);
    // new --type map makes an empty map.
    assert_eq!(r.ok(&["new", "config:empty", "--type", "map"]), "{}\n");
    assert_eq!(r.json(&["show", "config:empty"])["type"], "map");
    // The history speaks per key.
    let log = r.ok(&["log", "config:flags"]);
    for want in [
        "put \"ai-review\" = true",
        "put \"theme\" = {\"dark\":true}",
        "unset \"theme\", \"nope\"",
    ] {
        assert!(log.contains(want), "{want:?} not in\n{log}");
    }
}

#[test]
fn a_name_keeps_its_type_and_bad_values_change_nothing() {
    let r = Replica::new("agent-1");
    r.ok(&["inc", "metrics:requests"]);
    let err = r.exits(2, &["put", "metrics:requests", "k", "1"]);
    assert!(
        err.contains("`put` needs a map, but metrics:requests is a g-counter"),
        "{err}"
    );
    let err = r.exits(2, &["get", "metrics:requests", "k"]);
    assert!(
        err.contains("reads a key of a map, but metrics:requests is a g-counter"),
        "{err}"
    );
    r.ok(&["put", "config:flags", "a", "1"]);
    let err = r.exits(2, &["set", "config:flags", "1"]);
    assert!(
        err.contains("`set` needs an lww-register, but config:flags is a map"),
        "{err}"
    );
    let err = r.exits(2, &["put", "config:flags", "b", "{oops"]);
    assert!(err.contains("is not valid JSON"), "{err}");
    let err = r.exits(2, &["put", "bad name", "b", "1"]);
    assert!(err.contains("whitespace"), "{err}");
    assert_eq!(r.json(&["get", "config:flags"])["value"], json!({"a": 1}));
    assert_eq!(
        r.sql::<i64>("select count(*) from objects where name = 'bad name'"),
        0
    );
}

/// The guide's feature flags: two agents change different keys at the same
/// time and both changes survive; one key written by both is settled the
/// same way everywhere, and `diff`/`explain` say why per key.
#[test]
fn concurrent_flags_merge_key_by_key_between_replicas() {
    let (a, b) = (Replica::new("agent-1"), Replica::new("agent-2"));
    a.cmd()
        .env("CRDT_NOW_MS", "1700000000000")
        .args(["put", "config:flags", "ai-review", "true"])
        .assert()
        .success();
    let af = a.file("a.json");
    a.ok(&["export", "-o", af.to_str().unwrap()]);
    b.ok(&["import", af.to_str().unwrap()]);
    // Concurrently: agent-1 turns dark-mode on, agent-2 turns ai-review off
    // (a later clock), and both write "owner".
    a.cmd()
        .env("CRDT_NOW_MS", "1700000000010")
        .write_stdin("put config:flags dark-mode true\nput config:flags owner agent-1\n")
        .arg("batch")
        .assert()
        .success();
    b.cmd()
        .env("CRDT_NOW_MS", "1700000000020")
        .write_stdin("put config:flags ai-review false\nput config:flags owner agent-2\nget config:flags owner\n")
        .arg("batch")
        .assert()
        .success()
        .stdout("\"agent-2\"\n");
    let (af, bf) = (a.file("a.json"), b.file("b.json"));
    a.ok(&["export", "-o", af.to_str().unwrap()]);
    b.ok(&["export", "-o", bf.to_str().unwrap()]);
    let (af, bf) = (af.to_str().unwrap(), bf.to_str().unwrap());
    let diff = String::from_utf8(a.run(&["diff", af, bf]).stdout).unwrap();
    for want in [
        "config:flags (map): different",
        "\"owner\": A \"agent-1\" by agent-1 at 2023-11-14T22:13:20.010Z; B \"agent-2\" by agent-2 at 2023-11-14T22:13:20.020Z",
        "  agent-2's write wins (the later timestamp); agent-1's \"agent-1\" lost",
        "\"dark-mode\": A true by agent-1 at 2023-11-14T22:13:20.010Z; B —",
        "  A's write is one B has not seen; merge keeps it",
        "  B's write was made after seeing A's; merge keeps it",
    ] {
        assert!(diff.contains(want), "{want:?} not in\n{diff}");
    }
    let d = a.cmd().args(["--json", "diff", af, bf]).output().unwrap();
    let d: Value = serde_json::from_slice(&d.stdout).unwrap();
    common::check_schema("diff", &d);
    let keys: Vec<&str> = d["names"][0]["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["ai-review", "dark-mode", "owner"]);
    let dry = a.ok(&["merge", af, bf, "--dry-run"]);
    assert!(dry.contains("config:flags"), "{dry}");
    a.ok(&["import", bf]);
    b.ok(&["import", af]);
    let want = json!({"ai-review": false, "dark-mode": true, "owner": "agent-2"});
    assert_eq!(a.json(&["get", "config:flags"])["value"], want);
    assert_eq!(b.json(&["get", "config:flags"])["value"], want);
    // Both replicas hold the same state, byte for byte.
    assert_eq!(
        common::exported_objects(&a, &["config:flags"]),
        common::exported_objects(&b, &["config:flags"])
    );
    let explain = a.ok(&["explain", "config:flags"]);
    assert!(
        explain.contains("\"owner\": agent-2's write \"agent-2\" wins, agent-1's \"agent-1\" lost: the writes are concurrent and its timestamp"),
        "{explain}"
    );
    // An unset concurrent with a put keeps the key (observed-remove).
    a.ok(&["unset", "config:flags", "dark-mode"]);
    b.ok(&["put", "config:flags", "dark-mode", "false"]);
    a.ok(&["export", "-o", af]);
    b.ok(&["import", af]);
    assert_eq!(b.ok(&["get", "config:flags", "dark-mode"]), "false\n");
    let blame = b.ok(&["blame", "config:flags"]);
    assert!(
        blame.contains("holds  \"dark-mode\" = false  written by agent-2:"),
        "{blame}"
    );
}

#[test]
fn a_map_syncs_through_the_endpoint() {
    let server = Server::start(&["--max-message-bytes", "65536"]);
    let url = server.url();
    let (a, b) = (Agent::new("agent-1"), Agent::new("agent-2"));
    a.ok(Some(&url), &["put", "config:flags", "ai-review", "true"]);
    let out = b.ok(Some(&url), &["put", "config:flags", "dark-mode", "false"]);
    assert_eq!(out, "{\"ai-review\":true,\"dark-mode\":false}\n");
    // An unset removes what this replica has seen: agent-1 syncs first.
    a.ok(Some(&url), &["sync"]);
    a.ok(Some(&url), &["unset", "config:flags", "dark-mode"]);
    b.ok(Some(&url), &["sync"]);
    assert_eq!(
        b.ok(None, &["get", "config:flags"]),
        "{\"ai-review\":true}\n"
    );
    // A map larger than a message (3,000 keys, about 300 KB) travels in
    // parts under the limit.
    let lines: String = (0..3000)
        .map(|i| format!("put config:big key-{i} {}\n", "x".repeat(40)))
        .collect();
    a.cmd(None)
        .arg("batch")
        .write_stdin(lines)
        .assert()
        .success();
    a.ok(Some(&url), &["sync"]);
    b.ok(Some(&url), &["sync"]);
    let v: Value = serde_json::from_str(&b.ok(None, &["--json", "get", "config:big"])).unwrap();
    assert_eq!(v["value"].as_object().map(|m| m.len()), Some(3000));
}

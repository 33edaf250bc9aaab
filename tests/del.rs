//! Deleting objects from the shell: `del`, `resolve`, what reads say of a
//! deleted object, a delete racing a change between two replicas, batch
//! lines, and a delete through `crdt serve`.

use serde_json::{Value, json};

mod common;
use common::{Agent, Replica, Server};

/// One object of every type, made by `r`.
fn one_of_each(r: &Replica) {
    r.ok(&["inc", "metrics:requests", "5"]);
    r.ok(&["dec", "resources:gpu", "30"]);
    r.ok(&["set", "config:global", r#"{"mode":"fast"}"#]);
    r.ok(&["add", "tasks:done", "t1", "t2"]);
    r.ok(&["append", "document:main", "Hello"]);
    r.ok(&["put", "config:flags", "ai-review", "true"]);
}

const NAMES: [&str; 6] = [
    "metrics:requests",
    "resources:gpu",
    "config:global",
    "tasks:done",
    "document:main",
    "config:flags",
];

#[test]
fn del_hides_an_object_and_reads_say_who_deleted_it() {
    let r = Replica::new("agent-1");
    one_of_each(&r);
    let mut args = vec!["--json", "del"];
    args.extend(NAMES);
    let v: Value = serde_json::from_str(&r.ok(&args)).unwrap();
    common::check_schema("del", &v);
    assert_eq!(v["deleted"].as_array().map(Vec::len), Some(6), "{v}");
    assert_eq!(r.ok(&["ls"]), "");
    for name in NAMES {
        let err = r.exits(1, &["get", name]);
        assert!(
            err.contains(&format!("{name} was deleted by agent-1 at 20")),
            "{err}"
        );
        let err = r.exits(2, &["show", name]);
        assert!(err.contains("show --deleted"), "{err}");
        let show = r.json(&["show", "--deleted", name]);
        common::check_schema("show", &show);
        assert_eq!(show["deleted"]["gone"], true, "{show}");
        assert!(show["deleted"]["by"]["agent-1"].is_u64());
        let inspect = r.json(&["inspect", name]);
        common::check_schema("inspect", &inspect);
        assert_eq!(inspect["deleted"]["gone"], true);
        let explain = r.ok(&["explain", name]);
        assert!(explain.contains("was deleted (agent-1 at"), "{explain}");
    }
    assert_eq!(
        r.exits(1, &["get", "config:flags", "ai-review"])
            .lines()
            .count(),
        1
    );
    // Deleting again, or what is not here, is a note; nothing changes.
    let err = r.exits(0, &["del", "metrics:requests", "nope"]);
    assert!(err.contains("metrics:requests is already deleted"), "{err}");
    assert!(err.contains("no object named nope (yet)"), "{err}");
    // The history says so.
    let log = r.ok(&["log", "metrics:requests"]);
    assert!(
        log.lines()
            .next()
            .unwrap()
            .contains("g-counter  delete  by agent-1"),
        "{log}"
    );
    // A change after the delete brings the object back with just itself;
    // `new` of the deleted type is refused (a change brings it back).
    assert_eq!(r.ok(&["inc", "metrics:requests", "2"]), "2\n");
    assert_eq!(r.ok(&["get", "metrics:requests"]), "2\n");
    assert_eq!(r.ok(&["add", "tasks:done", "t3"]), "[\"t3\"]\n");
    let err = r.exits(2, &["new", "document:main", "--type", "rga"]);
    assert!(
        err.contains("document:main was deleted by agent-1"),
        "{err}"
    );
    // A deleted name may hold another type now.
    assert_eq!(r.ok(&["add", "config:global", "x"]), "[\"x\"]\n");
    let ls = r.ok(&["ls"]);
    assert!(ls.contains("config:global     or-set"), "{ls}");
    assert!(!ls.contains("lww-register"), "{ls}");
}

/// The guide's cleanup story: agent-1 deletes a finished task list while
/// agent-2, not having seen the delete, adds to it. Agent-2's add survives;
/// what agent-1 saw is gone, on both replicas, whatever the order.
#[test]
fn a_change_made_concurrently_with_a_delete_survives_it() {
    let (a, b) = (Replica::new("agent-1"), Replica::new("agent-2"));
    one_of_each(&a);
    let base = a.file("base.json");
    a.ok(&["export", "-o", base.to_str().unwrap()]);
    b.ok(&["import", base.to_str().unwrap()]);
    let mut args = vec!["del"];
    args.extend(NAMES);
    a.ok(&args);
    b.ok(&["inc", "metrics:requests", "10"]);
    b.ok(&["add", "tasks:done", "t3"]);
    b.ok(&["append", "document:main", " world"]);
    b.ok(&["put", "config:flags", "dark-mode", "false"]);
    common::exchange(&a, &b);
    for r in [&a, &b] {
        assert_eq!(r.ok(&["get", "metrics:requests"]), "10\n");
        assert_eq!(r.ok(&["get", "tasks:done"]), "\"t3\"\n");
        assert_eq!(r.ok(&["get", "document:main"]), " world\n");
        assert_eq!(r.ok(&["get", "config:flags"]), "{\"dark-mode\":false}\n");
        // Untouched by agent-2: gone for both.
        r.exits(1, &["get", "config:global"]);
        r.exits(1, &["get", "resources:gpu"]);
        let show = r.json(&["show", "tasks:done"]);
        assert_eq!(show["deleted"]["gone"], false, "{show}");
    }
    let explain = a.ok(&["explain", "tasks:done"]);
    assert!(explain.contains("and is back"), "{explain}");
    // Both hold the same state.
    assert_eq!(
        common::exported_objects(&a, &[]),
        common::exported_objects(&b, &[])
    );
}

#[test]
fn resolve_keeps_one_type_of_a_name() {
    let (a, b) = (Replica::new("agent-1"), Replica::new("agent-2"));
    a.ok(&["inc", "votes"]);
    b.ok(&["add", "votes", "yes"]);
    let bf = b.file("b.json");
    b.ok(&["export", "-o", bf.to_str().unwrap()]);
    a.ok(&["import", bf.to_str().unwrap()]);
    assert!(a.ok(&["ls"]).contains("type conflict"));
    let err = a.exits(2, &["resolve", "votes", "--keep", "rga"]);
    assert!(
        err.contains("votes has no rga to keep (it has: g-counter, or-set)"),
        "{err}"
    );
    let v = a.json(&["resolve", "votes", "--keep", "g-counter"]);
    common::check_schema("del", &v);
    assert_eq!(v, json!({"deleted": [{"name": "votes", "type": "or-set"}]}));
    assert_eq!(a.ok(&["ls"]), "votes  g-counter  1\n");
    assert_eq!(a.ok(&["get", "votes"]), "1\n");
    let err = a.exits(0, &["resolve", "votes", "--keep", "g-counter"]);
    assert!(err.contains("no type conflict"), "{err}");
}

#[test]
fn batch_lines_delete_and_a_failing_batch_deletes_nothing() {
    let r = Replica::new("agent-1");
    one_of_each(&r);
    r.cmd()
        .arg("batch")
        .write_stdin("del metrics:requests tasks:done\nget document:main\n")
        .assert()
        .success()
        .stdout("Hello\n");
    r.exits(1, &["get", "metrics:requests"]);
    r.exits(1, &["get", "tasks:done"]);
    let out = r
        .cmd()
        .args(["batch", "--stop-on-error"])
        .write_stdin("del document:main\nfrobnicate\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(r.ok(&["get", "document:main"]), "Hello\n");
}

#[test]
fn a_delete_reaches_other_agents_through_the_endpoint() {
    let server = Server::start(&[]);
    let url = server.url();
    let (a, b) = (Agent::new("agent-1"), Agent::new("agent-2"));
    a.ok(Some(&url), &["add", "tasks:done", "t1", "t2"]);
    a.ok(Some(&url), &["inc", "metrics:requests", "3"]);
    b.ok(Some(&url), &["sync"]);
    assert_eq!(b.ok(None, &["get", "metrics:requests"]), "3\n");
    let out = a.ok(Some(&url), &["del", "tasks:done", "metrics:requests"]);
    assert!(out.contains("deleted tasks:done (or-set)"), "{out}");
    b.ok(Some(&url), &["sync"]);
    let (code, _, err) = b.run(None, &["get", "tasks:done"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("tasks:done was deleted by agent-1"), "{err}");
    assert_eq!(b.ok(None, &["ls"]), "");
    // agent-2 brings the counter back; agent-1 sees just that change.
    assert_eq!(b.ok(Some(&url), &["inc", "metrics:requests"]), "1\n");
    a.ok(Some(&url), &["sync"]);
    assert_eq!(a.ok(None, &["get", "metrics:requests"]), "1\n");
}

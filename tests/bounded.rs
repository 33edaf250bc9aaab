//! The bounded counter from the shell: `new --type bounded-counter
//! --limit N`, `inc` (allocate), `dec` (release), `transfer`, what `show`
//! and the debugger say, and the guide's GPU allocation between two agents
//! through files and through `crdt serve`.

use serde_json::Value;

mod common;
use common::{Agent, Replica, Server};

#[test]
fn allocations_stay_within_the_rights_a_replica_holds() {
    let r = Replica::new("agent-1");
    let v = r.json(&[
        "new",
        "resources:gpus",
        "--type",
        "bounded-counter",
        "--limit",
        "100",
    ]);
    common::check_schema("change", &v);
    assert_eq!(v["value"], 0);
    assert_eq!(r.ok(&["inc", "resources:gpus", "30"]), "30\n");
    assert_eq!(
        r.ok(&["transfer", "resources:gpus", "40", "--to", "agent-2"]),
        "30\n"
    );
    // 30 unused rights left here: 31 is refused (exit 1), nothing changes.
    let err = r.exits(1, &["inc", "resources:gpus", "31"]);
    assert!(
        err.contains("agent-1 holds 30 unused rights, not 31; agent-2 holds 40 (a transfer from them makes room)"),
        "{err}"
    );
    assert_eq!(r.ok(&["get", "resources:gpus"]), "30\n");
    assert_eq!(r.ok(&["dec", "resources:gpus", "10"]), "20\n");
    let err = r.exits(1, &["dec", "resources:gpus", "21"]);
    assert!(
        err.contains("agent-1 has 20 allocated, so it cannot release 21"),
        "{err}"
    );
    let show = r.json(&["show", "resources:gpus"]);
    common::check_schema("show", &show);
    assert_eq!(show["peers"]["agent-1"]["allocated"], 20);
    assert_eq!(show["peers"]["agent-1"]["unused"], 40);
    assert_eq!(show["peers"]["agent-2"]["unused"], 40);
    let text = r.ok(&["show", "resources:gpus"]);
    assert!(
        text.contains("agent-1: 20 allocated, 40 unused (created 100, received 0, sent 40)"),
        "{text}"
    );
    let inspect = r.json(&["inspect", "resources:gpus"]);
    common::check_schema("inspect", &inspect);
    let explain = r.ok(&["explain", "resources:gpus"]);
    assert!(
        explain.starts_with("resources:gpus is 20 allocated of a limit of 100"),
        "{explain}"
    );
    let picture = r.ok(&["visualize", "resources:gpus"]);
    assert!(picture.contains("agent-2 ░"), "{picture}");
    let log = r.ok(&["log", "resources:gpus"]);
    assert!(log.contains("transfer 40 to agent-2"), "{log}");
    assert!(log.contains("new bounded-counter, limit 100"), "{log}");
    // Wrong input is refused before anything changes.
    let err = r.exits(2, &["new", "x", "--type", "bounded-counter"]);
    assert!(err.contains("needs --limit N"), "{err}");
    let err = r.exits(2, &["new", "x", "--type", "map", "--limit", "3"]);
    assert!(err.contains("--limit is for a bounded-counter"), "{err}");
    let err = r.exits(2, &["transfer", "resources:gpus", "1", "--to", "agent-1"]);
    assert!(err.contains("another replica"), "{err}");
    let err = r.exits(2, &["transfer", "resources:gpus", "1", "--to", "a b"]);
    assert!(err.contains("replica"), "{err}");
    r.exits(2, &["show", "x"]);
    // In a batch too.
    r.cmd()
        .arg("batch")
        .write_stdin(
            "inc resources:gpus 5\ntransfer resources:gpus 5 --to agent-3\nget resources:gpus\n",
        )
        .assert()
        .success()
        .stdout("25\n");
}

/// The guide's GPU allocation: "allocate 30 GPUs of 100". Two agents that
/// each want 25 of the 70 left, at once, can never give more than 100 in
/// all: each allocates only the rights it holds.
#[test]
fn concurrent_allocations_never_pass_the_limit() {
    let (a, b) = (Replica::new("agent-1"), Replica::new("agent-2"));
    a.ok(&[
        "new",
        "resources:gpus",
        "--type",
        "bounded-counter",
        "--limit",
        "100",
    ]);
    a.ok(&["inc", "resources:gpus", "30"]);
    a.ok(&["transfer", "resources:gpus", "35", "--to", "agent-2"]);
    let af = a.file("a.json");
    a.ok(&["export", "-o", af.to_str().unwrap()]);
    b.ok(&["import", af.to_str().unwrap()]);
    // Concurrently: both allocate 25, then try 25 more.
    a.ok(&["inc", "resources:gpus", "25"]);
    b.ok(&["inc", "resources:gpus", "25"]);
    a.exits(1, &["inc", "resources:gpus", "25"]);
    b.exits(1, &["inc", "resources:gpus", "25"]);
    let (af, bf) = common::exchange(&a, &b);
    for r in [&a, &b] {
        assert_eq!(r.ok(&["get", "resources:gpus"]), "80\n");
    }
    let d = a
        .cmd()
        .args(["--json", "diff", af.to_str().unwrap(), bf.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(d.status.code(), Some(1));
    common::check_schema("diff", &serde_json::from_slice::<Value>(&d.stdout).unwrap());
    // A delete hides the counter but keeps what is allocated.
    a.ok(&["del", "resources:gpus"]);
    a.exits(1, &["get", "resources:gpus"]);
    let show = a.json(&["show", "--deleted", "resources:gpus"]);
    assert_eq!(show["value"], 80);
}

#[test]
fn rights_move_through_the_endpoint() {
    let server = Server::start(&[]);
    let url = server.url();
    let (a, b) = (Agent::new("agent-1"), Agent::new("agent-2"));
    a.ok(
        Some(&url),
        &[
            "new",
            "resources:gpus",
            "--type",
            "bounded-counter",
            "--limit",
            "10",
        ],
    );
    // agent-2 holds nothing yet: refused, exit 1.
    b.ok(Some(&url), &["sync"]);
    let (code, _, err) = b.run(Some(&url), &["inc", "resources:gpus", "3"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("agent-2 holds 0 unused rights, not 3; agent-1 holds 10"),
        "{err}"
    );
    a.ok(
        Some(&url),
        &["transfer", "resources:gpus", "4", "--to", "agent-2"],
    );
    b.ok(Some(&url), &["sync"]);
    assert_eq!(b.ok(Some(&url), &["inc", "resources:gpus", "3"]), "3\n");
    a.ok(Some(&url), &["inc", "resources:gpus", "6"]);
    a.ok(Some(&url), &["sync"]);
    assert_eq!(a.ok(None, &["get", "resources:gpus"]), "9\n");
    let (code, _, _) = a.run(Some(&url), &["inc", "resources:gpus", "1"]);
    assert_eq!(code, 1, "agent-1 used its 6");
}

//! The merge gate (`Store::check_mergeable`): what no honest replica could
//! send against a held state is refused, per type, and the decoders refuse
//! states with numbers past their limits. Each case is one of the forged
//! states of the hostile-input issue.

use crdt::snapshot;
use crdt::sync::protocol::decode_objects;
use crdt::{ReplicaId, Store};
use serde_json::{Value, json};

fn id(s: &str) -> ReplicaId {
    ReplicaId::new(s).unwrap()
}

/// A store holding one object, decoded from its state; it must also load
/// as a full state (a snapshot of it reloads).
fn held(name: &str, ty: &str, state: Value) -> Store {
    let objects = json!([{"name": name, "type": ty, "state": state}]);
    let store = decode_objects(Some(&objects), &id("server")).unwrap();
    assert_eq!(snapshot::decode(&snapshot::encode(&store)).unwrap(), store);
    store
}

/// An incoming delta, decoded as a push would be.
fn incoming(name: &str, ty: &str, state: Value) -> Result<Store, String> {
    let objects = json!([{"name": name, "type": ty, "state": state}]);
    decode_objects(Some(&objects), &id("mallory")).map_err(|e| e.to_string())
}

fn refused(held: &Store, delta: &Store, why: &str) {
    let err = held
        .check_mergeable(delta)
        .expect_err("a forged change was let in");
    assert!(err.to_string().contains(why), "{err}");
}

#[test]
fn a_pn_counter_entry_whose_increments_fall_is_refused() {
    // alice: 3 changes, +10 -2; a forged "1000 changes, +0 -1000" would
    // make her next inc 5 vanish.
    let h = held(
        "gpu",
        "pn-counter",
        json!({"counts": {"alice": {"seq": 3, "p": 10, "n": 2}}}),
    );
    let d = incoming(
        "gpu",
        "pn-counter",
        json!({"counts": {"alice": {"seq": 1000, "p": 0, "n": 1000}}}),
    )
    .unwrap();
    refused(&h, &d, "only grow");
    // An honest later entry passes.
    let ok = incoming(
        "gpu",
        "pn-counter",
        json!({"counts": {"alice": {"seq": 4, "p": 15, "n": 2}}}),
    )
    .unwrap();
    h.check_mergeable(&ok).unwrap();
}

#[test]
fn a_g_counter_that_goes_down_or_differs_at_one_seq_is_refused() {
    let h = held(
        "c",
        "g-counter",
        json!({"counts": {"alice": {"seq": 1, "count": 100}}}),
    );
    let down = incoming(
        "c",
        "g-counter",
        json!({"counts": {"alice": {"seq": 2, "count": 2}}}),
    )
    .unwrap();
    refused(&h, &down, "counts only grow");
    let other = incoming(
        "c",
        "g-counter",
        json!({"counts": {"alice": {"seq": 1, "count": 7}}}),
    )
    .unwrap();
    refused(&h, &other, "two sums");
    let ok = incoming(
        "c",
        "g-counter",
        json!({"counts": {"alice": {"seq": 2, "count": 101}}}),
    )
    .unwrap();
    h.check_mergeable(&ok).unwrap();
}

#[test]
fn a_forged_text_character_under_a_held_dot_is_refused() {
    // alice typed "hello" (alice:1..5); a forged alice:3 with another letter.
    let h = held(
        "doc",
        "rga",
        json!({"context": {"alice": 5}, "deletes": {}, "inserts": {"alice": [0, 5, 0, null]}, "text": {"alice": "hello"}}),
    );
    let forged = incoming("doc", "rga", json!({"context": {"alice": [[3, 3]]}, "deletes": {}, "inserts": {"alice": [2, 1, 2, ["alice", 2]]}, "text": {"alice": "X"}})).unwrap();
    refused(&h, &forged, "differs from the one held");
    // A character new here whose dot is a delete the text has seen.
    let h = held(
        "doc",
        "rga",
        json!({"context": {"alice": 2}, "deletes": {"alice": [2, 0, 1, 1, 1]}, "inserts": {"alice": [0, 1, 0, null]}, "text": {"alice": "a"}}),
    );
    let reused = incoming("doc", "rga", json!({"context": {"alice": [[2, 2]]}, "deletes": {}, "inserts": {"alice": [1, 1, 1, ["alice", 1]]}, "text": {"alice": "b"}})).unwrap();
    refused(&h, &reused, "already another event");
}

/// A replica's characters are numbered in the order it typed them, each
/// after all it had seen: along its seqs, Lamport numbers grow. A delta
/// whose new characters break that (found by the fuzzer: the merged text
/// could not even be written) is refused; honest continuations pass.
#[test]
fn text_characters_out_of_lamport_order_with_their_replica_are_refused() {
    // alice typed "abc" (alice:1..3, lamport 1..3).
    let h = held(
        "doc",
        "rga",
        json!({"context": {"alice": 3}, "deletes": {}, "inserts": {"alice": [0, 3, 0, null]}, "text": {"alice": "abc"}}),
    );
    // alice:11 with lamport 2: typed after alice:3 (lamport 3), yet lower.
    let low = incoming("doc", "rga", json!({"context": {"alice": [[11, 11]]}, "deletes": {}, "inserts": {"alice": [10, 1, 1, null]}, "text": {"alice": "y"}})).unwrap();
    refused(&h, &low, "not in Lamport order");
    // Equal is refused too: two characters of one replica, one Lamport number.
    let equal = incoming("doc", "rga", json!({"context": {"alice": [[4, 4]]}, "deletes": {}, "inserts": {"alice": [3, 1, 2, null]}, "text": {"alice": "y"}})).unwrap();
    refused(&h, &equal, "not in Lamport order");
    // The honest continuations pass: alice:4 at lamport 4, or later ones.
    for (gap, lamport_gap) in [(3, 3), (3, 10), (20, 5)] {
        let ok = incoming("doc", "rga", json!({"context": {"alice": [[gap + 1, gap + 2]]}, "deletes": {}, "inserts": {"alice": [gap, 2, lamport_gap, null]}, "text": {"alice": "yz"}})).unwrap();
        h.check_mergeable(&ok)
            .unwrap_or_else(|e| panic!("gap {gap}: {e}"));
        let mut merged = h.clone();
        merged.merge(&ok);
        assert_eq!(
            snapshot::decode(&snapshot::encode(&merged)).unwrap(),
            merged
        );
    }
    // Filling a gap: alice:1..2 and alice:10 held; alice:5 must sit between.
    let h = held(
        "doc",
        "rga",
        json!({"context": {"alice": [[1, 2], [10, 10]]}, "deletes": {}, "inserts": {"alice": [0, 2, 0, null, 7, 1, 7, null]}, "text": {"alice": "abz"}}),
    );
    let above = incoming("doc", "rga", json!({"context": {"alice": [[5, 5]]}, "deletes": {}, "inserts": {"alice": [4, 1, 20, null]}, "text": {"alice": "m"}})).unwrap();
    refused(&h, &above, "comes before alice:10");
    let between = incoming("doc", "rga", json!({"context": {"alice": [[5, 5]]}, "deletes": {}, "inserts": {"alice": [4, 1, 3, null]}, "text": {"alice": "m"}})).unwrap();
    h.check_mergeable(&between).unwrap();
}

#[test]
fn one_dot_for_two_set_members_or_two_register_writes_is_refused() {
    let h = held(
        "s",
        "or-set",
        json!({"context": {"alice": 1}, "elements": [{"value": "task-1", "dots": [["alice", 1]]}]}),
    );
    let d = incoming(
        "s",
        "or-set",
        json!({"context": {"alice": 1}, "elements": [{"value": "task-2", "dots": [["alice", 1]]}]}),
    )
    .unwrap();
    refused(&h, &d, "one add cannot add two members");
    let h = held(
        "r",
        "lww-register",
        json!({"context": {"alice": 1}, "writes": [{"dot": ["alice", 1], "ts": [5, 0], "value": "safe", "lost": null}]}),
    );
    let d = incoming("r", "lww-register", json!({"context": {"alice": 1}, "writes": [{"dot": ["alice", 1], "ts": [5, 0], "value": "unsafe", "lost": null}]})).unwrap();
    refused(&h, &d, "two writes");
}

#[test]
fn numbers_past_the_limits_are_refused_when_decoded() {
    let big = (1u64 << 53) + 1;
    for (ty, state) in [
        (
            "g-counter",
            json!({"counts": {"a": {"seq": big, "count": big}}}),
        ),
        (
            "or-set",
            json!({"context": {"a": [[1, u64::MAX]]}, "elements": []}),
        ),
        ("or-set", json!({"context": {"a": big}, "elements": []})),
        (
            "lww-register",
            json!({"context": {"a": 1}, "writes": [{"dot": ["a", 1], "ts": [u64::MAX, 0], "value": 1, "lost": null}]}),
        ),
        (
            "rga",
            json!({"context": {"m": 1_000_000_000_000_000_000u64}, "deletes": {}, "inserts": {}, "text": {}}),
        ),
        (
            "rga",
            json!({"context": {}, "deletes": {}, "inserts": {"m": [big, 1, 0, null]}, "text": {"m": "x"}}),
        ),
    ] {
        let e = incoming("x", ty, state.clone()).expect_err(&format!("{ty} {state} was accepted"));
        assert!(e.contains("2^53"), "{ty}: {e}");
    }
}

#[test]
fn an_honest_delta_of_every_type_passes() {
    let h = held(
        "doc",
        "rga",
        json!({"context": {"alice": 5}, "deletes": {}, "inserts": {"alice": [0, 5, 0, null]}, "text": {"alice": "hello"}}),
    );
    // bob appends "!" after alice:5 and deletes alice:1.
    let d = incoming("doc", "rga", json!({"context": {"bob": 2}, "deletes": {"bob": [2, 0, ["alice", 1], 1, 1]}, "inserts": {"alice": [0, 1, 0, null], "bob": [0, 1, 5, ["alice", 5]]}, "text": {"alice": "h", "bob": "!"}})).unwrap();
    h.check_mergeable(&d).unwrap();
    let mut m = h.clone();
    m.merge(&d);
    let text = snapshot::encode(&m);
    assert_eq!(snapshot::decode(&text).unwrap(), m);
}

#[test]
fn an_entry_below_what_a_held_delete_saw_of_it_is_refused() {
    // The held counter's delete saw bob's first change, +1,000; bob's
    // entry itself has not come yet. An entry "2 changes, +2" for bob can
    // never follow that: merged, the state would not load again.
    let h = held(
        "c",
        "g-counter",
        json!({"counts": {"alice": {"seq": 1, "count": 5}},
               "deleted": {"by": {"alice": 10}, "seen": {"counts": {"bob": {"seq": 1, "count": 1000}}}}}),
    );
    let d = incoming(
        "c",
        "g-counter",
        json!({"counts": {"bob": {"seq": 2, "count": 2}}}),
    )
    .unwrap();
    refused(&h, &d, "bob");
    // The entry that follows it is let in, and the merge loads again.
    let ok = incoming(
        "c",
        "g-counter",
        json!({"counts": {"bob": {"seq": 2, "count": 1001}}}),
    )
    .unwrap();
    h.check_mergeable(&ok).unwrap();
    let mut merged = h.clone();
    merged.merge(&ok);
    assert_eq!(
        snapshot::decode(&snapshot::encode(&merged)).unwrap(),
        merged
    );
}

//! Snapshot format v1: round trips, golden files checked against the JSON
//! Schema, and one rejected input per error kind.

use std::path::Path;

use crdt::{CrdtType, Object, ReplicaId, SnapshotError, Store, snapshot};
use serde_json::{Value, json};

fn id(s: &str) -> ReplicaId {
    ReplicaId::new(s).unwrap()
}

/// Two agents that worked on every type, then exchanged state once: the
/// result has concurrent writes, a remove racing an add, deletes and runs.
fn two_agents() -> (Store, Store) {
    let (a, b) = (id("agent-1"), id("agent-2"));
    let mut x = Store::new(a.clone());
    let mut y = Store::new(b.clone());
    let edit = |s: &mut Store, me: &ReplicaId, now: u64| {
        if let Object::GCounter(c) = s.get_or_create("metrics:requests", CrdtType::GCounter) {
            c.inc(me, 2).unwrap();
        }
        if let Object::PnCounter(c) = s.get_or_create("resources:gpu", CrdtType::PnCounter) {
            c.inc(me, 30).unwrap();
            c.dec(me, 10).unwrap();
        }
        if let Object::LwwRegister(r) = s.get_or_create("config:global", CrdtType::LwwRegister) {
            r.set(
                me,
                json!({"feature:ai-review": me.as_str() == "agent-1", "n": 1.5}),
                now,
            )
            .unwrap();
        }
        if let Object::OrSet(set) = s.get_or_create("tasks:active", CrdtType::OrSet) {
            set.add(me, json!({"id": "task-1"})).unwrap();
            set.add(me, json!(format!("task-{}", me))).unwrap();
        }
        if let Object::Rga(t) = s.get_or_create("document:main", CrdtType::Rga) {
            t.append(
                me,
                if me.as_str() == "agent-1" {
                    "Hello "
                } else {
                    "World"
                },
            )
            .unwrap();
        }
        // agent-1 creates 100 GPUs and gives agent-2 40; each allocates.
        if let Object::BoundedCounter(g) =
            s.get_or_create("resources:gpus", CrdtType::BoundedCounter)
            && me.as_str() == "agent-1"
        {
            g.create(me, 100).unwrap();
            g.transfer(me, &ReplicaId::new("agent-2").unwrap(), 40)
                .unwrap();
            g.allocate(me, 30).unwrap();
        }
        // Both write "ai-review" (a conflict left open); each its own key.
        if let Object::Map(m) = s.get_or_create("config:flags", CrdtType::Map) {
            m.put(me, "ai-review", json!(me.as_str() == "agent-1"), now)
                .unwrap();
            m.put(me, &format!("owner:{me}"), json!({"since": now}), now)
                .unwrap();
        }
    };
    edit(&mut x, &a, 1_700_000_000_000);
    // agent-2 learns of the GPUs first, then allocates from its own rights.
    y.merge_object(
        "resources:gpus",
        x.get("resources:gpus", CrdtType::BoundedCounter).unwrap(),
    );
    edit(&mut y, &b, 1_700_000_000_005);
    if let Some(Object::BoundedCounter(g)) = y.get_mut("resources:gpus", CrdtType::BoundedCounter) {
        g.allocate(&b, 25).unwrap();
    }
    x.merge(&y);
    if let Some(Object::OrSet(set)) = x.get_mut("tasks:active", CrdtType::OrSet) {
        set.remove(&a, &json!("task-agent-2")).unwrap();
    }
    if let Some(Object::Rga(t)) = x.get_mut("document:main", CrdtType::Rga) {
        t.delete(&a, 0, 2).unwrap();
        t.insert(&a, 0, "¡").unwrap();
    }
    if let Some(Object::Map(m)) = x.get_mut("config:flags", CrdtType::Map) {
        m.unset(&a, "owner:agent-2").unwrap();
    }
    (x, y)
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/snapshot.schema.json"),
    )
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("the schema compiles")
}

/// What the schema says is wrong with `value` (nothing: empty).
fn schema_errors(value: &Value) -> Vec<String> {
    schema()
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn check_golden(name: &str, store: &Store) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let text = snapshot::encode(store);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run UPDATE_GOLDEN=1 cargo test --test snapshot",
            path.display()
        )
    });
    assert_eq!(
        text, golden,
        "{name} changed; if that is intended, run UPDATE_GOLDEN=1 cargo test --test snapshot"
    );
    let errors = schema_errors(&serde_json::from_str(&golden).unwrap());
    assert!(
        errors.is_empty(),
        "{name} does not match the schema: {errors:#?}"
    );
    assert_eq!(&snapshot::decode(&golden).unwrap(), store);
}

#[test]
fn golden_snapshots_are_stable_and_match_the_schema() {
    let (x, y) = two_agents();
    check_golden("agent-1.json", &x);
    check_golden("agent-2.json", &y);
    check_golden("empty.json", &Store::new(id("fresh")));
}

/// A delta snapshot (`export --since`) and a version document: the delta
/// matches the schema, decodes (a text delta may follow characters it does
/// not hold), and merged into the replica at that version gives the whole.
#[test]
fn delta_snapshots_and_version_documents_round_trip() {
    let (x, y) = two_agents();
    let since = y.versions();
    let doc = snapshot::encode_versions("agent-2", &since);
    assert_eq!(snapshot::decode_versions(&doc).unwrap(), since);
    assert!(snapshot::decode_versions(&doc.replace("crdt-version", "crdt-snapshot")).is_err());
    let delta = x.delta_since(&since);
    let text = snapshot::encode_since(&delta, &since);
    let errors = schema_errors(&serde_json::from_str(&text).unwrap());
    assert!(
        errors.is_empty(),
        "a delta snapshot does not match the schema: {errors:#?}"
    );
    let back = snapshot::decode(&text).unwrap();
    assert_eq!(back, delta);
    let mut merged = y.clone();
    merged.check_mergeable(&back).unwrap();
    merged.merge(&back);
    let mut want = y.clone();
    want.merge(&x);
    assert_eq!(merged.versions(), want.versions());
    assert_eq!(
        snapshot::encode(&merged).replace("agent-2", "?"),
        snapshot::encode(&want).replace("agent-2", "?")
    );
}

#[test]
fn round_trip_is_identity_and_byte_stable() {
    let (x, _) = two_agents();
    let text = snapshot::encode(&x);
    let back = snapshot::decode(&text).unwrap();
    assert_eq!(back, x);
    assert_eq!(snapshot::encode(&back), text);
}

#[test]
fn equal_states_give_identical_bytes_whatever_the_merge_order() {
    let (x, y) = two_agents();
    let mut xy = x.clone();
    xy.merge(&y);
    let mut yx = Store::new(id("agent-1"));
    yx.merge(&y);
    yx.merge(&x);
    assert_eq!(snapshot::encode(&xy), snapshot::encode(&yx));
}

#[test]
fn numbers_round_trip_exactly() {
    let me = id("a");
    let mut s = Store::new(me.clone());
    let values = [
        json!(0.1),
        json!(1e-300),
        json!(123456789.12345678),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(2.5e20),
    ];
    for (i, v) in values.iter().enumerate() {
        if let Object::LwwRegister(r) = s.get_or_create(&format!("n:{i}"), CrdtType::LwwRegister) {
            r.set(&me, v.clone(), 1).unwrap();
        }
    }
    let back = snapshot::decode(&snapshot::encode(&s)).unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            &back
                .get(&format!("n:{i}"), CrdtType::LwwRegister)
                .unwrap()
                .value_json(),
            v
        );
    }
}

#[test]
fn type_conflicts_are_kept_and_round_trip() {
    let (a, b) = (id("agent-1"), id("agent-2"));
    let mut x = Store::new(a.clone());
    let mut y = Store::new(b.clone());
    if let Object::GCounter(c) = x.get_or_create("votes", CrdtType::GCounter) {
        c.inc(&a, 1).unwrap();
    }
    if let Object::OrSet(s) = y.get_or_create("votes", CrdtType::OrSet) {
        s.add(&b, json!("yes")).unwrap();
    }
    x.merge(&y);
    assert_eq!(
        x.conflicts(),
        vec![("votes", vec![CrdtType::GCounter, CrdtType::OrSet])]
    );
    assert_eq!(snapshot::decode(&snapshot::encode(&x)).unwrap(), x);
}

/// The agent-1 golden snapshot as a value, to break on purpose.
fn golden_value() -> Value {
    serde_json::to_value(snapshot::to_value(&two_agents().0)).unwrap()
}

fn object_mut<'a>(v: &'a mut Value, name: &str) -> &'a mut Value {
    v["objects"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["name"] == name)
        .unwrap()
}

fn reject(v: &Value) -> SnapshotError {
    snapshot::decode(&v.to_string()).expect_err("malformed input was accepted")
}

#[test]
fn rejects_invalid_json_with_line_and_column() {
    let err = snapshot::decode("{\n  \"format\": \"crdt-snapshot\",\n  oops\n}").unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::Syntax {
                line: 3,
                column: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_another_format() {
    let mut v = golden_value();
    v["format"] = json!("automerge");
    assert_eq!(reject(&v).kind(), "format");
}

#[test]
fn rejects_an_unknown_version() {
    let mut v = golden_value();
    v["version"] = json!(2);
    let err = reject(&v);
    assert_eq!(err, SnapshotError::Version { found: "2".into() });
}

#[test]
fn rejects_an_unknown_type_naming_the_object() {
    let mut v = golden_value();
    object_mut(&mut v, "tasks:active")["type"] = json!("2p-set");
    let err = reject(&v);
    assert_eq!(err.kind(), "unknown-type");
    assert!(err.to_string().contains("\"tasks:active\").type"), "{err}");
}

#[test]
fn rejects_a_value_of_the_wrong_shape_naming_the_field() {
    let mut v = golden_value();
    object_mut(&mut v, "metrics:requests")["state"]["counts"]["agent-1"]["count"] = json!("two");
    let err = reject(&v);
    assert_eq!(err.kind(), "shape");
    let msg = err.to_string();
    assert!(
        msg.contains("\"metrics:requests\").state.counts.agent-1.count"),
        "{msg}"
    );
    assert!(
        msg.contains("expected a non-negative integer, found the string \"two\""),
        "{msg}"
    );
}

/// The one-pass reader of regular snapshots ([`snapshot::decode`]) and
/// the value decoder agree on the cases it must hand over: a `since` of
/// `null` (absent for an `Option`), objects out of order, a duplicate.
#[test]
fn irregular_snapshots_are_read_as_the_value_decoder_reads_them() {
    let slow = |v: &Value| snapshot::from_value(v);
    let mut v = golden_value();
    v["since"] = Value::Null;
    assert_eq!(reject(&v), slow(&v).unwrap_err());
    assert!(reject(&v).to_string().contains("since"), "{}", reject(&v));
    // Out of order: the same store.
    let mut v = golden_value();
    v["objects"].as_array_mut().unwrap().reverse();
    let back = snapshot::decode(&v.to_string()).unwrap();
    assert_eq!(back, slow(&v).unwrap());
    assert_eq!(snapshot::encode(&back), snapshot::encode(&two_agents().0));
    // The same object twice: refused, naming the second.
    let mut v = golden_value();
    let first = v["objects"][0].clone();
    v["objects"].as_array_mut().unwrap().push(first.clone());
    let err = reject(&v);
    assert_eq!(err, slow(&v).unwrap_err());
    assert!(err.to_string().contains("a second"), "{err}");
    // Escaped names and pretty-printing change nothing.
    let text = serde_json::to_string_pretty(&golden_value())
        .unwrap()
        .replace("metrics:requests", "metrics:r\\u0065quests");
    let back = snapshot::decode(&text).unwrap();
    assert_eq!(snapshot::encode(&back), snapshot::encode(&two_agents().0));
}

#[test]
fn rejects_unknown_fields() {
    let mut v = golden_value();
    object_mut(&mut v, "config:global")["state"]["winner"] = json!(1);
    let err = reject(&v);
    assert_eq!(err.kind(), "shape");
    assert!(err.to_string().contains("state.winner"), "{err}");
}

#[test]
fn rejects_impossible_causal_states() {
    // A counter whose count is smaller than its number of increments.
    let mut v = golden_value();
    object_mut(&mut v, "metrics:requests")["state"]["counts"]["agent-1"]["seq"] = json!(9);
    object_mut(&mut v, "metrics:requests")["version"]["agent-1"] = json!(9);
    assert_eq!(reject(&v).kind(), "causal");

    // A version that does not match the state.
    let mut v = golden_value();
    object_mut(&mut v, "resources:gpu")["version"]["agent-2"] = json!(7);
    let err = reject(&v);
    assert_eq!(err.kind(), "causal");
    assert!(
        err.to_string().contains("\"resources:gpu\").version"),
        "{err}"
    );

    // A set member tagged with a dot the context never saw.
    let mut v = golden_value();
    object_mut(&mut v, "tasks:active")["state"]["elements"][0]["dots"] = json!([["agent-9", 1]]);
    assert_eq!(reject(&v).kind(), "causal");

    // Text whose origin is not an earlier character.
    let mut v = golden_value();
    let inserts = &mut object_mut(&mut v, "document:main")["state"]["inserts"];
    inserts["agent-2"][3] = json!(["agent-1", 7]);
    let err = reject(&v);
    assert_eq!(err.kind(), "causal", "{err}");

    // A delete of a character that does not exist.
    let mut v = golden_value();
    let deletes = &mut object_mut(&mut v, "document:main")["state"]["deletes"];
    deletes["agent-1"][2] = json!(["agent-2", 9]);
    assert_eq!(reject(&v).kind(), "causal");

    // Text that does not match the runs' lengths.
    let mut v = golden_value();
    object_mut(&mut v, "document:main")["state"]["text"]["agent-2"] = json!("Worl");
    assert_eq!(reject(&v).kind(), "shape");

    // A map write whose dot the context never saw, one dot as two writes,
    // a key without writes, the same key twice.
    let flags = |v: &mut Value| -> Value { object_mut(v, "config:flags")["state"].clone() };
    let mut v = golden_value();
    object_mut(&mut v, "config:flags")["state"]["entries"][0]["writes"][0]["dot"] =
        json!(["agent-9", 1]);
    let err = reject(&v);
    assert_eq!(err.kind(), "causal", "{err}");
    assert!(err.to_string().contains("not in the context"), "{err}");
    let mut v = golden_value();
    let state = flags(&mut v);
    object_mut(&mut v, "config:flags")["state"]["entries"][1]["writes"][0]["dot"] =
        state["entries"][0]["writes"][0]["dot"].clone();
    assert_eq!(reject(&v).kind(), "causal");
    let mut v = golden_value();
    object_mut(&mut v, "config:flags")["state"]["entries"][0]["writes"] = json!([]);
    assert_eq!(reject(&v).kind(), "causal");
    let mut v = golden_value();
    object_mut(&mut v, "config:flags")["state"]["entries"][1]["key"] =
        state["entries"][0]["key"].clone();
    assert_eq!(reject(&v).kind(), "causal");
    let mut v = golden_value();
    object_mut(&mut v, "config:flags")["state"]["entries"][0]["writes"][0]["ts"] = json!("now");
    assert_eq!(reject(&v).kind(), "shape");

    // Deletes: one that saw an event nobody has, one without a deleter, a
    // counter's delete that saw more changes than it has, an unknown field.
    // (What a delete saw beyond the state is refused when it would merge,
    // into any replica: the state may be one part of several.)
    let mut v = golden_value();
    object_mut(&mut v, "tasks:active")["state"]["deleted"] =
        json!({"seen": {"agent-1": 3, "agent-9": 1}, "by": {"agent-1": 5}});
    let store = snapshot::decode(&v.to_string()).unwrap();
    let err = Store::new(id("fresh")).check_mergeable(&store).unwrap_err();
    assert!(
        err.to_string().contains("a delete saw event agent-9:1"),
        "{err}"
    );
    let mut v = golden_value();
    object_mut(&mut v, "tasks:active")["state"]["deleted"] =
        json!({"seen": {"agent-1": 1}, "by": {}});
    assert_eq!(reject(&v).kind(), "causal");
    let mut v = golden_value();
    object_mut(&mut v, "metrics:requests")["state"]["deleted"] = json!({
        "seen": {"counts": {"agent-1": {"seq": 9, "count": 9}}}, "by": {"agent-1": 5}});
    let err = reject(&v);
    assert_eq!(err.kind(), "causal", "{err}");
    let mut v = golden_value();
    object_mut(&mut v, "metrics:requests")["state"]["deleted"] = json!({
        "seen": {"counts": {"agent-1": {"seq": 1, "count": 2}}}, "by": {"agent-1": 5}, "why": 1});
    assert_eq!(reject(&v).kind(), "shape");
    // A counter's delete that saw a count its change never had.
    let mut v = golden_value();
    object_mut(&mut v, "metrics:requests")["state"]["deleted"] = json!({
        "seen": {"counts": {"agent-1": {"seq": 1, "count": 7}}}, "by": {"agent-1": 5}});
    assert_eq!(reject(&v).kind(), "causal");

    // The same object twice.
    let mut v = golden_value();
    let dup = object_mut(&mut v, "resources:gpu").clone();
    v["objects"].as_array_mut().unwrap().push(dup);
    assert_eq!(reject(&v).kind(), "causal");
}

/// A deleted object round trips with its deletes, and a delete that saw
/// events neither side holds is refused before anything merges.
#[test]
fn deletes_round_trip_and_impossible_ones_are_refused() {
    let (mut x, y) = two_agents();
    for (name, ty) in [
        ("metrics:requests", CrdtType::GCounter),
        ("tasks:active", CrdtType::OrSet),
        ("document:main", CrdtType::Rga),
        ("config:flags", CrdtType::Map),
    ] {
        x.get_mut(name, ty)
            .unwrap()
            .delete_object(&id("agent-1"), 1_700_000_000_100)
            .unwrap();
        assert!(x.get(name, ty).unwrap().is_deleted());
    }
    let text = snapshot::encode(&x);
    let errors = schema_errors(&serde_json::from_str(&text).unwrap());
    assert!(errors.is_empty(), "{errors:#?}");
    let back = snapshot::decode(&text).unwrap();
    assert_eq!(back, x);
    assert_eq!(
        back.get("metrics:requests", CrdtType::GCounter)
            .unwrap()
            .value_json(),
        json!(0)
    );
    // The other replica takes the deletes: gone there too.
    let mut z = y.clone();
    z.check_mergeable(&x).unwrap();
    z.merge(&x);
    assert!(z.get("tasks:active", CrdtType::OrSet).unwrap().is_deleted());
    // A delete (sent alone, as a delta would) that saw what nobody has.
    let since = y.versions();
    let mut forged: Value =
        serde_json::from_str(&snapshot::encode_since(&x.delta_since(&since), &since)).unwrap();
    object_mut(&mut forged, "tasks:active")["state"]["deleted"]["seen"]["agent-7"] = json!(4);
    let forged = snapshot::decode(&forged.to_string()).unwrap();
    let err = y.check_mergeable(&forged).unwrap_err().to_string();
    assert!(err.contains("a delete saw event agent-7:1"), "{err}");
}

#[test]
fn a_delta_is_small_and_sufficient() {
    let (x, y) = two_agents();
    let delta = x.delta_since(&y.versions());
    let mut y2 = y.clone();
    y2.merge(&delta);
    let mut y3 = y.clone();
    y3.merge(&x);
    assert_eq!(y2, y3);
    // Nothing to send to a replica that has everything.
    assert!(x.delta_since(&x.versions()).is_empty());
    let counter = delta.get("metrics:requests", CrdtType::GCounter).unwrap();
    assert!(
        counter.version().get(&id("agent-2")) == 0,
        "agent-2 already has its own increments"
    );
}

#[test]
fn every_type_has_a_distinct_json_name() {
    for t in CrdtType::ALL {
        assert_eq!(t.as_str().parse::<CrdtType>().unwrap(), t);
    }
}

//! Snapshot format v1: the JSON form of a store (see `docs/snapshot-format.md`).
//!
//! ```json
//! {"format": "crdt-snapshot", "version": 1, "replica": "agent-1",
//!  "objects": [{"name": "metrics:requests", "type": "g-counter",
//!               "version": {"agent-1": 1},
//!               "state": {"counts": {"agent-1": {"count": 1, "seq": 1}}}}]}
//! ```
//!
//! Encoding is deterministic: keys sorted, objects sorted by name then type,
//! so equal stores give byte-identical text. Decoding checks everything and
//! returns a [`SnapshotError`] naming the object and field at fault.

use std::collections::{BTreeMap, HashSet};

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::codec::{At, canonical_value, describe, vv_json};
use crate::error::SnapshotError;
use crate::object::{CrdtType, Object};
use crate::store::{Store, StoreVersion, validate_name};

pub const FORMAT: &str = "crdt-snapshot";
pub const VERSION: u64 = 1;

/// The snapshot as a JSON value (keys sorted).
pub fn to_value(store: &Store) -> Value {
    let objects: Vec<Value> = store
        .iter()
        .map(|(name, o)| object_value(name, o))
        .collect();
    canonical_value(json!({
        "format": FORMAT,
        "version": VERSION,
        "replica": store.replica().as_str(),
        "objects": objects,
    }))
}

/// One entry of `objects`, keys sorted.
pub fn object_value(name: &str, o: &Object) -> Value {
    canonical_value(json!({
        "name": name,
        "type": o.ty().as_str(),
        "version": vv_json(&o.version()),
        "state": o.state_json(),
    }))
}

/// The snapshot text: pretty-printed, keys sorted, ending in a newline.
/// The same text as `write_pretty(&to_value(store), 0)`, written one object
/// at a time so a large store never exists twice as a JSON tree.
pub fn encode(store: &Store) -> String {
    encode_with(store, None)
}

/// A *delta snapshot*: what a replica at `since` lacks (`crdt export
/// --since`). It carries `since`, the versions it is relative to, and its
/// objects are deltas: a text's characters may follow ones it does not
/// hold, which the replica it is imported into must have.
pub fn encode_since(store: &Store, since: &StoreVersion) -> String {
    encode_with(store, Some(since))
}

fn encode_with(store: &Store, since: Option<&StoreVersion>) -> String {
    let mut text = String::from("{\n  \"format\": \"crdt-snapshot\",\n  \"objects\": ");
    if store.is_empty() {
        text.push_str("[]");
    } else {
        text.push_str("[\n");
        for (i, (name, o)) in store.iter().enumerate() {
            if i > 0 {
                text.push_str(",\n");
            }
            text.push_str("    ");
            write_pretty(&mut text, &object_value(name, o), 2);
        }
        text.push_str("\n  ]");
    }
    text.push_str(",\n  \"replica\": ");
    text.push_str(&Value::from(store.replica().as_str()).to_string());
    if let Some(since) = since {
        text.push_str(",\n  \"since\": ");
        write_pretty(&mut text, &versions_value(since), 1);
    }
    text.push_str(&format!(",\n  \"version\": {VERSION}\n}}\n"));
    text
}

/// `[{"name", "type", "version"}]`, in (name, type) order.
pub fn versions_value(versions: &StoreVersion) -> Value {
    Value::Array(
        versions
            .iter()
            .map(|((n, t), vv)| {
                canonical_value(json!({"name": n, "type": t.as_str(), "version": vv_json(vv)}))
            })
            .collect(),
    )
}

/// Decodes `[{"name", "type", "version"}]` (a version document's
/// `versions`, a delta snapshot's `since`, a sync request's `versions`).
pub(crate) fn versions_from(at: &At<'_>) -> Result<StoreVersion, SnapshotError> {
    let mut out = StoreVersion::new();
    for item in at.array()? {
        item.fields(&["name", "type", "version"], &[])?;
        let name_at = item.field("name")?;
        let name = name_at.str()?;
        let type_at = item.field("type")?;
        let ty: CrdtType = type_at
            .str()?
            .parse()
            .map_err(|_| SnapshotError::UnknownType {
                path: type_at.path.clone(),
                found: type_at.value.to_string(),
            })?;
        let vv = item.field("version")?.version_vector()?;
        if out.insert((name.to_string(), ty), vv).is_some() {
            return Err(item.causal(format!("a second version of {name:?} ({ty})")));
        }
    }
    Ok(out)
}

/// The format of a version document (`crdt version`).
pub const VERSION_FORMAT: &str = "crdt-version";

/// A version document: what a replica has seen of each object, for `crdt
/// export --since` on another replica. Pretty-printed, ending in a newline.
pub fn encode_versions(replica: &str, versions: &StoreVersion) -> String {
    let mut text = String::new();
    write_pretty(
        &mut text,
        &json!({"format": VERSION_FORMAT, "version": VERSION, "replica": replica,
                "versions": versions_value(versions)}),
        0,
    );
    text.push('\n');
    text
}

/// Decodes a version document.
pub fn decode_versions(text: &str) -> Result<StoreVersion, SnapshotError> {
    let value: Value = serde_json::from_str(text).map_err(|e| SnapshotError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let root = At::root(&value);
    root.object()?;
    let format = root.field("format")?;
    if format.value.as_str() != Some(VERSION_FORMAT) {
        return Err(SnapshotError::Format {
            found: describe(format.value),
        });
    }
    if root.field("version")?.value.as_u64() != Some(VERSION) {
        return Err(SnapshotError::Version {
            found: root.field("version")?.value.to_string(),
        });
    }
    root.fields(&["format", "version", "replica", "versions"], &[])?;
    root.field("replica")?.replica()?;
    versions_from(&root.field("versions")?)
}

/// Pretty JSON that keeps arrays without objects on one line (`["agent-1", 3]`),
/// so dots, timestamps and ranges stay readable and files stay small.
pub fn write_pretty(out: &mut String, v: &Value, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n("  ", n));
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (k, item)) in map.iter().enumerate() {
                pad(out, indent + 1);
                crate::codec::push_json_str(out, k);
                out.push_str(": ");
                write_pretty(out, item, indent + 1);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
        Value::Array(items) if items.iter().any(has_object) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(out, indent + 1);
                write_pretty(out, item, indent + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        Value::Array(items) => {
            // Long lists of numbers (text runs) stay dense.
            let sep = if items.len() > 8 { "," } else { ", " };
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                write_pretty(out, item, indent);
            }
            out.push(']');
        }
        Value::String(s) => crate::codec::push_json_str(out, s),
        scalar => {
            use std::fmt::Write as _;
            let _ = write!(out, "{scalar}");
        }
    }
}

fn has_object(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(items) => items.iter().any(has_object),
        _ => false,
    }
}

/// Parses and validates a snapshot. A snapshot as this tool writes it is
/// read in one typed pass ([`decode_regular`]); anything else (an error, a
/// field out of place) takes the slower path below, which reads the
/// objects one at a time (the top level keeps them as raw text, so a large
/// file never exists whole as a JSON tree) and, for anything unusual at the
/// top level, [`from_value`]: both report exactly what is wrong.
pub fn decode(text: &str) -> Result<Store, SnapshotError> {
    if let Some(store) = decode_regular(text) {
        return Ok(store);
    }
    let syntax = |e: serde_json::Error| SnapshotError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    };
    let top: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(syntax)?;
    let objects = top
        .get("objects")
        .and_then(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok());
    let Some(objects) = objects else {
        return from_value(&serde_json::from_str(text).map_err(syntax)?);
    };
    let mut head = serde_json::Map::new();
    for (k, raw) in &top {
        let v = if k == "objects" {
            Value::Array(Vec::new())
        } else {
            serde_json::from_str(raw.get()).map_err(syntax)?
        };
        head.insert(k.clone(), v);
    }
    let delta = head.contains_key("since");
    let mut store = from_value(&Value::Object(head))?;
    let mut seen = HashSet::new();
    for (i, raw) in objects.iter().enumerate() {
        if decode_counter(&mut store, &mut seen, raw.get()) {
            continue;
        }
        let item: Value = serde_json::from_str(raw.get()).map_err(syntax)?;
        let (name, object) = decode_object(Some(&mut seen), i, &item, delta)?;
        store.insert_new(name, object);
    }
    Ok(store)
}

/// A field present in the text, `null` included (an `Option` alone would
/// read `null` as absent, and the checks must see it).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// [`decode`] of a snapshot that is well-formed in every respect, in one
/// typed pass over the text (each object's state is read once more, by its
/// type's decoder): 100,000 counters read in half the instructions of the
/// object-at-a-time path. `None` for anything else, however small (an
/// unknown field, a version that does not match, a duplicate object):
/// [`decode`]'s other path then finds and names it.
fn decode_regular(text: &str) -> Option<Store> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top<'a> {
        #[serde(borrow)]
        format: &'a RawValue,
        #[serde(borrow)]
        version: &'a RawValue,
        #[serde(borrow)]
        replica: &'a RawValue,
        #[serde(borrow, default, deserialize_with = "present")]
        since: Option<&'a RawValue>,
        #[serde(borrow)]
        objects: Vec<Item<'a>>,
    }
    let top: Top<'_> = serde_json::from_str(text).ok()?;
    let parse = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).ok();
    let mut head = serde_json::Map::new();
    head.insert("format".into(), parse(top.format)?);
    head.insert("version".into(), parse(top.version)?);
    head.insert("replica".into(), parse(top.replica)?);
    head.insert("objects".into(), Value::Array(Vec::new()));
    if let Some(since) = top.since {
        head.insert("since".into(), parse(since)?);
    }
    let delta = head.contains_key("since");
    let mut store = from_value(&Value::Object(head)).ok()?;
    let mut objects = Vec::with_capacity(top.objects.len());
    for (i, item) in top.objects.into_iter().enumerate() {
        let object = match item.counter() {
            Some(object) => object,
            None => {
                let value = json!({
                    "name": &*item.name,
                    "type": &*item.ty,
                    "version": parse(item.version)?,
                    "state": parse(item.state)?,
                });
                decode_object(None, i, &value, delta).ok()?.1
            }
        };
        objects.push((item.name.into_owned(), object));
    }
    // In name then type order, each once (as written); else the other path.
    let ordered = objects
        .windows(2)
        .all(|w| (&w[0].0, w[0].1.ty()) < (&w[1].0, w[1].1.ty()));
    if !ordered {
        return None;
    }
    store.set_sorted(objects);
    Some(store)
}

/// One entry of `objects` as read, its version and state kept as text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Item<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    version: &'a RawValue,
    #[serde(borrow)]
    state: &'a RawValue,
}

impl Item<'_> {
    /// The counter it holds, straight from its text and checked as
    /// [`decode_object`] checks it (name, state, the version it states);
    /// `None` when it is not a counter or anything is off: [`decode_object`]
    /// then decides, and names the problem.
    fn counter(&self) -> Option<Object> {
        let ty = match &*self.ty {
            "g-counter" => CrdtType::GCounter,
            "pn-counter" => CrdtType::PnCounter,
            _ => return None,
        };
        validate_name(&self.name).ok()?;
        let object = Object::decode_state_text(ty, self.state.get())?;
        // Read as it is: equal to the decoded object's version, it is one.
        let stated: BTreeMap<std::borrow::Cow<'_, str>, u64> =
            serde_json::from_str(self.version.get()).ok()?;
        let held = object.version();
        let same = stated.len() == held.iter().count()
            && stated
                .iter()
                .zip(held.iter())
                .all(|((r, s), (hr, hs))| **r == *hr.as_str() && *s == hs);
        same.then_some(object)
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Validates a parsed snapshot.
pub fn from_value(value: &Value) -> Result<Store, SnapshotError> {
    let root = At::root(value);
    root.object()?;
    let format = root.field("format")?;
    if format.value.as_str() != Some(FORMAT) {
        return Err(SnapshotError::Format {
            found: describe(format.value),
        });
    }
    let version = root.field("version")?;
    if version.value.as_u64() != Some(VERSION) {
        return Err(SnapshotError::Version {
            found: version.value.to_string(),
        });
    }
    root.fields(&["format", "version", "replica", "objects"], &["since"])?;
    let replica = root.field("replica")?.replica()?;
    // A delta snapshot: its objects are deltas since these versions.
    let delta = match root.value.get("since") {
        Some(_) => {
            versions_from(&root.field("since")?)?;
            true
        }
        None => false,
    };
    let mut store = Store::new(replica);
    let mut seen = HashSet::new();
    for (i, item) in root.field("objects")?.array()?.into_iter().enumerate() {
        let (name, object) = decode_object(Some(&mut seen), i, item.value, delta)?;
        store.insert_new(name, object);
    }
    Ok(store)
}

/// Decodes one object's `state` held apart from a snapshot (a row of a
/// replica database): the name, the type and the state are checked as in
/// a snapshot; errors name `place` (e.g. the row).
pub fn decode_state_text(
    name: &str,
    type_name: &str,
    state: &str,
    place: &str,
) -> Result<(CrdtType, Object), SnapshotError> {
    decode_text(name, type_name, state, place, false)
}

/// [`decode_state_text`] for a delta (a history row's, a protocol
/// message's): it may refer to characters it does not hold, which the
/// state it is merged into must have ([`Store::check_mergeable`]).
pub fn decode_delta_text(
    name: &str,
    type_name: &str,
    delta: &str,
    place: &str,
) -> Result<(CrdtType, Object), SnapshotError> {
    decode_text(name, type_name, delta, place, true)
}

fn decode_text(
    name: &str,
    type_name: &str,
    state: &str,
    place: &str,
    delta: bool,
) -> Result<(CrdtType, Object), SnapshotError> {
    validate_name(name).map_err(|e| SnapshotError::Shape {
        path: format!("{place}.name"),
        expected: "an object name".into(),
        found: e.to_string(),
    })?;
    let ty: CrdtType = type_name.parse().map_err(|_| SnapshotError::UnknownType {
        path: format!("{place}.type"),
        found: format!("{type_name:?}"),
    })?;
    // Counters straight from their text (most rows); anything off takes
    // the value decoder, which names the problem.
    if let Some(o) = Object::decode_state_text(ty, state) {
        return Ok((ty, o));
    }
    let value: Value = serde_json::from_str(state).map_err(|e| SnapshotError::Syntax {
        line: e.line(),
        column: e.column(),
        message: format!("{place}.state: {}", strip_position(&e.to_string())),
    })?;
    let at = At {
        value: &value,
        path: format!("{place}.state"),
        delta,
        track: true,
    };
    Ok((ty, Object::decode_state(ty, &at)?))
}

/// A counter object of a snapshot straight from its text, checked as
/// [`decode_object`] checks it; false (and nothing added) when it is not
/// one or anything is off: [`decode_object`] then names the problem.
fn decode_counter(store: &mut Store, seen: &mut HashSet<(String, CrdtType)>, text: &str) -> bool {
    let Some((item, object)) = serde_json::from_str::<Item<'_>>(text)
        .ok()
        .and_then(|item| item.counter().map(|o| (item, o)))
    else {
        return false;
    };
    if !seen.insert((item.name.to_string(), object.ty())) {
        return false;
    }
    store.insert_new(item.name.into_owned(), object);
    true
}

/// Validates `objects[i]`, a second object of its name and type in `seen`
/// (when given), and returns it.
fn decode_object(
    seen: Option<&mut HashSet<(String, CrdtType)>>,
    i: usize,
    value: &Value,
    delta: bool,
) -> Result<(String, Object), SnapshotError> {
    let item = At {
        value,
        path: format!("$.objects[{i}]"),
        delta,
        track: true,
    };
    {
        // Name the object in the path as soon as its name is known.
        let name_at = item.field("name")?;
        let name = name_at.str()?;
        validate_name(name).map_err(|e| SnapshotError::Shape {
            path: name_at.path.clone(),
            expected: "an object name".into(),
            found: e.to_string(),
        })?;
        let at = At {
            value: item.value,
            path: format!("$.objects[{i}] ({name:?})"),
            delta,
            track: true,
        };
        at.fields(&["name", "type", "version", "state"], &[])?;
        let type_at = at.field("type")?;
        let type_name = type_at.str()?;
        let ty: CrdtType = type_name.parse().map_err(|_| SnapshotError::UnknownType {
            path: type_at.path.clone(),
            found: format!("{type_name:?}"),
        })?;
        if let Some(seen) = seen
            && !seen.insert((name.to_string(), ty))
        {
            return Err(at.causal(format!("a second {ty} object named {name:?}")));
        }
        let object = Object::decode_state(ty, &at.field("state")?)?;
        let version_at = at.field("version")?;
        let stated = version_at.version_vector()?;
        let actual = object.version();
        if stated != actual {
            return Err(version_at.causal(format!(
                "version {stated} does not match the state, which has seen {actual}"
            )));
        }
        Ok((name.to_string(), object))
    }
}

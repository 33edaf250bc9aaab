//! The `objects` list: `[{"name", "type", "state"}, ...]`, the one codec
//! of named object states that the sync messages, the server's log and the
//! old state file's journal share. It sits below the store's users and the
//! sync layer, which both use it.

use std::borrow::Cow;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::clock::ReplicaId;
use crate::codec::{At, push_json_str};
use crate::error::SnapshotError;
use crate::object::{CrdtType, Object};
use crate::store::Store;

/// Why an `objects` list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectsError {
    /// The list or an entry is malformed (a name, a type, the shape).
    #[error("{0}")]
    Malformed(String),
    /// A state does not decode, or is not one an honest replica could have.
    #[error("{0}")]
    BadState(String),
}

impl ObjectsError {
    /// What the refusal says.
    pub fn message(&self) -> &str {
        match self {
            ObjectsError::Malformed(m) | ObjectsError::BadState(m) => m,
        }
    }
}

fn bad(message: impl Into<String>) -> ObjectsError {
    ObjectsError::Malformed(message.into())
}

/// `[{"name", "type", "state"}]` for every object of `store`.
pub fn objects_json(store: &Store) -> Value {
    Value::Array(
        store
            .iter()
            .map(|(n, o)| json!({"name": n, "type": o.ty().as_str(), "state": o.state_json()}))
            .collect(),
    )
}

/// `{"objects":[{"name","type","state"},...]` and then `tail` and `}` on one
/// line (no newline): a log line of the server and of the local journal.
/// Each object's name comes first, so a reader looking for one name can
/// match the start of a line without parsing it.
pub fn objects_line(store: &Store, tail: &str) -> String {
    let mut line = String::from("{\"objects\":");
    push_objects(&mut line, store);
    line.push_str(tail);
    line.push('}');
    line
}

/// [`objects_json`] written straight as text.
pub fn push_objects(out: &mut String, store: &Store) {
    out.push('[');
    for (i, (name, o)) in store.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_object(out, name, o);
    }
    out.push(']');
}

/// One entry of `objects`: `{"name","type","state"}`.
pub fn push_object(out: &mut String, name: &str, o: &Object) {
    push_object_head(out, name, o.ty());
    out.push_str("\"state\":");
    o.write_state(out);
    out.push('}');
}

/// Reads `[{"name", "type", "state"}]` into a store (replica `from`).
pub fn decode_objects(v: Option<&Value>, from: &ReplicaId) -> Result<Store, ObjectsError> {
    let list = v
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"objects\" must be a list"))?;
    let mut store = Store::new(from.clone());
    for (i, item) in list.iter().enumerate() {
        let name = item["name"]
            .as_str()
            .ok_or_else(|| bad(format!("objects[{i}].name must be a string")))?;
        add_object(&mut store, i, name, item["type"].as_str(), &item["state"])?;
    }
    Ok(store)
}

/// One entry of `objects`, its state still JSON text.
#[derive(Deserialize)]
pub struct ObjectIn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    state: Option<&'a RawValue>,
}

/// Adds `[{"name","type","state"},...]` for `list` to `out`, the states as
/// sent, on one line; `None` (and `out` as it was) when a state spans lines
/// or a type is unknown (the caller then encodes the decoded delta).
pub fn push_objects_in(out: &mut String, list: &[ObjectIn<'_>]) -> Option<()> {
    let start = out.len();
    out.push('[');
    for (i, o) in list.iter().enumerate() {
        let state = o.state.map_or("null", |s| s.get());
        let Ok(ty) = CrdtType::from_str(&o.ty) else {
            out.truncate(start);
            return None;
        };
        if memchr::memchr2(b'\n', b'\r', state.as_bytes()).is_some() {
            out.truncate(start);
            return None;
        }
        if i > 0 {
            out.push(',');
        }
        push_object_head(out, &o.name, ty);
        out.push_str("\"state\":");
        out.push_str(state);
        out.push('}');
    }
    out.push(']');
    Some(())
}

/// [`decode_objects`] from the JSON text of the list: the entries are read
/// into a typed form, and counter states straight into counters (a push is
/// decoded on every change); anything unusual takes [`decode_objects`],
/// which names exactly what is wrong.
pub fn decode_objects_text(text: &str, from: &ReplicaId) -> Result<Store, ObjectsError> {
    let Ok(list) = serde_json::from_str::<Vec<ObjectIn<'_>>>(text) else {
        let value = serde_json::from_str::<Value>(text).ok();
        return decode_objects(value.as_ref(), from);
    };
    decode_objects_in(&list, from)
}

/// [`decode_objects_text`] of a list already read into its typed form.
pub fn decode_objects_in(list: &[ObjectIn<'_>], from: &ReplicaId) -> Result<Store, ObjectsError> {
    let mut store = Store::new(from.clone());
    for (i, o) in list.iter().enumerate() {
        let fast = CrdtType::from_str(&o.ty).ok().and_then(|ty| {
            let state = o.state.map_or("null", |s| s.get());
            Object::decode_state_text(ty, state).map(|obj| (ty, obj))
        });
        match fast {
            Some((ty, object)) => {
                check_name(i, &o.name)?;
                insert_new(&mut store, i, &o.name, ty, object)?;
            }
            None => {
                let state = match o.state {
                    Some(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
                    None => Value::Null,
                };
                add_object(&mut store, i, &o.name, Some(&o.ty), &state)?;
            }
        }
    }
    Ok(store)
}

fn check_name(i: usize, name: &str) -> Result<(), ObjectsError> {
    crate::store::validate_name(name).map_err(|e| bad(format!("objects[{i}].name: {e}")))
}

/// Checks and decodes `objects[i]` into `store`.
fn add_object(
    store: &mut Store,
    i: usize,
    name: &str,
    ty: Option<&str>,
    state: &Value,
) -> Result<(), ObjectsError> {
    check_name(i, name)?;
    let ty: CrdtType = ty
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad(format!("objects[{i}].type must be one of the six types")))?;
    let at = At {
        value: state,
        path: state_path(i, name),
        delta: true,
        track: true,
    };
    let object = Object::decode_state(ty, &at)
        .map_err(|e: SnapshotError| ObjectsError::BadState(e.to_string()))?;
    insert_new(store, i, name, ty, object)
}

/// Adds a decoded `objects[i]`, refusing a second object of one name and type.
fn insert_new(
    store: &mut Store,
    i: usize,
    name: &str,
    ty: CrdtType,
    object: Object,
) -> Result<(), ObjectsError> {
    // Kept as sent: a delta may refer to what the receiver has, so it is
    // only ever merged into the receiver's object.
    if store.get(name, ty).is_some() {
        return Err(bad(format!("objects[{i}]: {name} ({ty}) appears twice")));
    }
    store.insert_object(name, object);
    Ok(())
}

/// `objects[i] ("name").state`, without the formatting machinery for plain names.
fn state_path(i: usize, name: &str) -> String {
    if name
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        let mut p = String::with_capacity(name.len() + 24);
        p.push_str("objects[");
        p.push_str(&i.to_string());
        p.push_str("] (\"");
        p.push_str(name);
        p.push_str("\").state");
        p
    } else {
        format!("objects[{i}] ({name:?}).state")
    }
}

/// `{"name":NAME,"type":"TYPE",` - the start of an object entry, name first.
pub fn push_object_head(out: &mut String, name: &str, ty: CrdtType) {
    out.push_str("{\"name\":");
    push_json_str(out, name);
    out.push_str(",\"type\":\"");
    out.push_str(ty.as_str());
    out.push_str("\",");
}

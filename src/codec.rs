//! JSON encoding of the causal metadata, and a small cursor that decodes JSON
//! while remembering where it is, so every error names the object and field.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::clock::{Dot, Hlc, MAX_SEQ, ReplicaId, VersionVector};
use crate::context::{CausalContext, Ranges};
use crate::error::SnapshotError;

/// How deep a value (a register's, a set member) may nest: arrays and
/// objects inside each other, the value itself being level 1. One limit,
/// checked wherever a value enters (a local change, a state from anywhere),
/// and far enough below serde_json's 128 that every line or message that
/// carries an accepted value can be read back.
pub const MAX_DEPTH: usize = 64;

/// The nesting depth of `v` (a scalar is 1), without recursion; stops
/// counting past `limit` (work bounded by the value's size either way).
pub fn value_depth(v: &Value, limit: usize) -> usize {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 1)];
    let mut deepest = 0;
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        if deepest > limit {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Encoding and decoding of one type's `state` object.
pub(crate) trait Codec: Sized {
    fn encode(&self) -> Value;
    fn decode(at: &At<'_>) -> Result<Self, SnapshotError>;
}

/// A JSON value and the path that led to it (`objects["a:b"].state.counts`).
#[derive(Clone)]
pub(crate) struct At<'a> {
    pub value: &'a Value,
    pub path: String,
    /// Decoding a delta from the wire: it may refer to what the receiver has
    /// (an rga run whose origin is not in the delta).
    pub delta: bool,
    /// Build the paths of children. Decoding first runs without (no string
    /// per field) and, only when it fails, again with, to name the place.
    pub track: bool,
}

pub(crate) fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "the number",
        Value::String(_) => "the string",
        Value::Array(_) => return "an array".into(),
        Value::Object(_) => return "an object".into(),
    };
    let mut text = v.to_string();
    if text.len() > 40 {
        text.truncate(40);
        text.push('…');
    }
    format!("{kind} {text}")
}

impl<'a> At<'a> {
    pub fn root(value: &'a Value) -> Self {
        At {
            value,
            path: "$".into(),
            delta: false,
            track: true,
        }
    }

    pub fn child(&self, value: &'a Value, seg: &str) -> At<'a> {
        self.child_parts(value, &[seg])
    }

    /// A child whose path is this path and `parts` (no formatting machinery:
    /// decoding builds one path per field).
    fn child_parts(&self, value: &'a Value, parts: &[&str]) -> At<'a> {
        if !self.track {
            return At {
                value,
                path: String::new(),
                delta: self.delta,
                track: false,
            };
        }
        let len = self.path.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut path = String::with_capacity(len);
        path.push_str(&self.path);
        for p in parts {
            path.push_str(p);
        }
        At {
            value,
            path,
            delta: self.delta,
            track: true,
        }
    }

    pub fn shape(&self, expected: &str) -> SnapshotError {
        SnapshotError::Shape {
            path: self.path.clone(),
            expected: expected.into(),
            found: describe(self.value),
        }
    }

    pub fn causal(&self, detail: impl Into<String>) -> SnapshotError {
        SnapshotError::Causal {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    pub fn object(&self) -> Result<&'a Map<String, Value>, SnapshotError> {
        self.value
            .as_object()
            .ok_or_else(|| self.shape("an object"))
    }

    /// An object with exactly these fields (all required unless listed in `optional`).
    pub fn fields(&self, required: &[&str], optional: &[&str]) -> Result<(), SnapshotError> {
        let map = self.object()?;
        for key in map.keys() {
            if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
                return Err(SnapshotError::Shape {
                    path: format!("{}.{}", self.path, key),
                    expected: format!("no such field (allowed: {})", required.join(", ")),
                    found: "an unknown field".into(),
                });
            }
        }
        for key in required {
            if !map.contains_key(*key) {
                return Err(SnapshotError::Shape {
                    path: format!("{}.{}", self.path, key),
                    expected: "a required field".into(),
                    found: "nothing".into(),
                });
            }
        }
        Ok(())
    }

    pub fn field(&self, key: &str) -> Result<At<'a>, SnapshotError> {
        let map = self.object()?;
        match map.get(key) {
            Some(v) => Ok(self.child_parts(v, &[".", key])),
            None => Err(SnapshotError::Shape {
                path: format!("{}.{}", self.path, key),
                expected: "a required field".into(),
                found: "nothing".into(),
            }),
        }
    }

    pub fn array(&self) -> Result<Vec<At<'a>>, SnapshotError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.shape("an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if self.track {
                    self.child(v, &format!("[{i}]"))
                } else {
                    self.child_parts(v, &[])
                }
            })
            .collect())
    }

    pub fn entries(&self) -> Result<Vec<(&'a String, At<'a>)>, SnapshotError> {
        Ok(self
            .object()?
            .iter()
            .map(|(k, v)| (k, self.child_parts(v, &[".", k])))
            .collect())
    }

    pub fn u64(&self) -> Result<u64, SnapshotError> {
        self.value
            .as_u64()
            .ok_or_else(|| self.shape("a non-negative integer"))
    }

    /// A sequence number: 1 to [`MAX_SEQ`] (2^53 - 1).
    pub fn seq(&self) -> Result<u64, SnapshotError> {
        match self.value.as_u64() {
            Some(n) if n > 0 && n <= MAX_SEQ => Ok(n),
            _ => Err(self.shape("a sequence number from 1 to 2^53-1")),
        }
    }

    /// A user's JSON value (a register's, a set member's), at most
    /// [`MAX_DEPTH`] deep.
    pub fn user_value(&self) -> Result<Value, SnapshotError> {
        if value_depth(self.value, MAX_DEPTH) > MAX_DEPTH {
            return Err(self.shape(&format!("a value nested at most {MAX_DEPTH} deep")));
        }
        Ok(self.value.clone())
    }

    pub fn str(&self) -> Result<&'a str, SnapshotError> {
        self.value.as_str().ok_or_else(|| self.shape("a string"))
    }

    pub fn replica(&self) -> Result<ReplicaId, SnapshotError> {
        ReplicaId::new(self.str()?).map_err(|_| self.shape("a replica id (A-Z a-z 0-9 . _ - : @)"))
    }

    pub fn replica_key(&self, key: &str) -> Result<ReplicaId, SnapshotError> {
        ReplicaId::new(key).map_err(|_| SnapshotError::Shape {
            path: format!("{}.{}", self.path, key),
            expected: "a replica id as key (A-Z a-z 0-9 . _ - : @)".into(),
            found: format!("the key {key:?}"),
        })
    }

    /// `[replica, seq]`
    pub fn dot(&self) -> Result<Dot, SnapshotError> {
        match self.value.as_array().map(Vec::as_slice) {
            Some([_, _]) => {
                let items = self.array()?;
                Ok(Dot::new(items[0].replica()?, items[1].seq()?))
            }
            _ => Err(self.shape("a dot [replica, seq]")),
        }
    }

    /// `[ms, counter]`
    pub fn hlc(&self) -> Result<Hlc, SnapshotError> {
        match self.value.as_array().map(Vec::as_slice) {
            Some([_, _]) => {
                let items = self.array()?;
                let counter = u32::try_from(items[1].u64()?)
                    .map_err(|_| items[1].shape("a counter below 2^32"))?;
                let ms = items[0].u64()?;
                if ms > MAX_SEQ {
                    return Err(items[0].shape("milliseconds below 2^53"));
                }
                Ok(Hlc { ms, counter })
            }
            _ => Err(self.shape("a timestamp [milliseconds, counter]")),
        }
    }

    pub fn version_vector(&self) -> Result<VersionVector, SnapshotError> {
        let mut vv = VersionVector::new();
        for (k, v) in self.entries()? {
            vv.set(self.replica_key(k)?, v.seq()?);
        }
        Ok(vv)
    }

    /// `{replica: n}` for the range `1..=n`, or `{replica: [[lo, hi], ...]}`.
    pub fn context(&self) -> Result<CausalContext, SnapshotError> {
        let mut map = BTreeMap::new();
        for (k, v) in self.entries()? {
            let replica = self.replica_key(k)?;
            let ranges = if let Some(n) = v.value.as_u64() {
                Ranges::from_sorted(vec![(1, n)])
                    .filter(|_| n <= MAX_SEQ)
                    .ok_or_else(|| v.shape("a sequence number up to 2^53-1 or a list of ranges"))?
            } else {
                let mut list = Vec::new();
                for item in v.array()? {
                    match item.value.as_array().map(Vec::as_slice) {
                        Some([lo, hi]) => match (lo.as_u64(), hi.as_u64()) {
                            (Some(lo), Some(hi)) => list.push((lo, hi)),
                            _ => return Err(item.shape("a range [lo, hi] of integers")),
                        },
                        _ => return Err(item.shape("a range [lo, hi]")),
                    }
                }
                Ranges::from_sorted(list)
                    .filter(|r| r.max() <= MAX_SEQ)
                    .ok_or_else(|| {
                        v.shape(
                            "sorted, disjoint, non-adjacent ranges [lo, hi] with 1 <= lo <= hi <= 2^53-1",
                        )
                    })?
            };
            map.insert(replica, ranges);
        }
        Ok(CausalContext::from_map(map))
    }
}

/// A JSON string literal, without a detour through `Value` for plain text.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::from(s).to_string());
    }
}

/// Writes `{"counts":{"replica":{...},...}}` as [`Codec::encode`] would for
/// a counter, straight as text: `fields` writes one entry's fields.
pub(crate) fn counts_to_text<T>(
    out: &mut String,
    entries: &BTreeMap<ReplicaId, T>,
    fields: impl Fn(&mut String, &T),
) {
    out.push_str("{\"counts\":{");
    for (i, (r, e)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, r.as_str());
        out.push_str(":{");
        fields(out, e);
        out.push('}');
    }
    out.push_str("}}");
}

/// A counter's state, `{"counts": {replica: entry}}`, read straight from
/// its JSON text into entries: no tree of values (a counter push is decoded
/// on every change). `check` turns a wire entry into the counter's entry, or
/// `None` when it breaks a rule. `None` when anything is off: the value
/// decoder then says exactly what.
pub(crate) fn counts_from_text<'a, E, T>(
    text: &'a str,
    check: impl Fn(E) -> Option<T>,
) -> Option<BTreeMap<ReplicaId, T>>
where
    E: serde::Deserialize<'a>,
{
    use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};
    use std::borrow::Cow;
    use std::marker::PhantomData;
    /// `{"counts": {...}}` and nothing else.
    struct State<'f, E, F>(&'f F, PhantomData<E>);
    /// The entries, straight into the counter's map (no map of wire entries
    /// first); a key seen twice keeps its last entry, as a JSON object does.
    struct Counts<'f, E, F>(&'f F, PhantomData<E>);
    impl<'de, E: serde::Deserialize<'de>, T, F: Fn(E) -> Option<T>> Visitor<'de> for State<'_, E, F> {
        type Value = BTreeMap<ReplicaId, T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a counter's state")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut counts = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key != "counts" || counts.is_some() {
                    return Err(A::Error::custom("not a counter's field"));
                }
                counts = Some(map.next_value_seed(Counts(self.0, PhantomData))?);
            }
            counts.ok_or_else(|| A::Error::custom("no counts"))
        }
    }
    impl<'de, E: serde::Deserialize<'de>, T, F: Fn(E) -> Option<T>> DeserializeSeed<'de>
        for Counts<'_, E, F>
    {
        type Value = BTreeMap<ReplicaId, T>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de, E: serde::Deserialize<'de>, T, F: Fn(E) -> Option<T>> Visitor<'de> for Counts<'_, E, F> {
        type Value = BTreeMap<ReplicaId, T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a counter's entries")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = BTreeMap::new();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                let e: E = map.next_value()?;
                let (Ok(r), Some(e)) = (ReplicaId::shared(&key), (self.0)(e)) else {
                    return Err(A::Error::custom("not a counter's entry"));
                };
                entries.insert(r, e);
            }
            Ok(entries)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = serde::Deserializer::deserialize_map(&mut de, State(&check, PhantomData)).ok()?;
    de.end().ok()?;
    Some(entries)
}

/// A counter's entries in groups of about `budget` bytes (the parts of
/// [`crate::GCounter::parts`] and [`crate::PnCounter::parts`]).
pub(crate) fn entry_parts<E: Copy>(
    entries: &BTreeMap<ReplicaId, E>,
    budget: usize,
) -> Vec<BTreeMap<ReplicaId, E>> {
    let mut out = vec![BTreeMap::new()];
    let mut size = 0;
    for (r, e) in entries {
        let weight = r.as_str().len() + 48;
        if size > 0 && size + weight > budget {
            out.push(BTreeMap::new());
            size = 0;
        }
        size += weight;
        out.last_mut().expect("one part").insert(r.clone(), *e);
    }
    out
}

pub(crate) fn dot_json(d: &Dot) -> Value {
    json!([d.replica.as_str(), d.seq])
}

pub(crate) fn hlc_json(t: &Hlc) -> Value {
    json!([t.ms, t.counter])
}

pub(crate) fn vv_json(vv: &VersionVector) -> Value {
    Value::Object(
        vv.iter()
            .map(|(r, s)| (r.to_string(), Value::from(s)))
            .collect(),
    )
}

pub(crate) fn context_json(cc: &CausalContext) -> Value {
    Value::Object(
        cc.iter()
            .map(|(r, ranges)| {
                let v = match ranges.as_slice() {
                    [(1, hi)] => Value::from(*hi),
                    list => list.iter().map(|&(lo, hi)| json!([lo, hi])).collect(),
                };
                (r.to_string(), v)
            })
            .collect(),
    )
}

/// [`context_json`]'s text, written straight.
pub(crate) fn context_text(cc: &CausalContext, out: &mut String) {
    use std::fmt::Write as _;
    let mut list: Vec<(&ReplicaId, &crate::context::Ranges)> = cc.iter().collect();
    list.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    out.push('{');
    for (i, (r, ranges)) in list.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, r.as_str());
        out.push(':');
        match ranges.as_slice() {
            [(1, hi)] => {
                let _ = write!(out, "{hi}");
            }
            spans => {
                out.push('[');
                for (j, (lo, hi)) in spans.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "[{lo},{hi}]");
                }
                out.push(']');
            }
        }
    }
    out.push('}');
}

/// A canonical text of a JSON value (sorted keys, no spaces), used to order
/// and compare set elements.
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => canonical_value(v.clone()).to_string(),
        _ => v.to_string(),
    }
}

/// The same value with every object's keys in sorted order, whatever map
/// type serde_json was built with (a dependency may turn on `preserve_order`).
/// Consumes the value: nothing is cloned.
pub(crate) fn canonical_value(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical_value(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_value).collect()),
        other => other,
    }
}

//! What the nodes write to Redis and read back: stream ids, log lines
//! (a stream entry's `lines`, the compacted copy's fields). Everything read
//! is checked as the server's own log is at start.

use redis::Value;

use crate::clock::ReplicaId;
use crate::object::{CrdtType, Object};
use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::objects_line::{ObjectIn, decode_objects, decode_objects_in, push_object};
use crate::store::Store;

use super::ENTRY_BYTES;

/// A stream id `MS-SEQ`, comparable.
pub(super) fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The compacted copy's id as read: `None` when absent or not an id (no
/// node writes one; reading the whole stream is then what is safe).
pub(super) fn checked_id(raw: Option<Vec<u8>>) -> Option<String> {
    let id = String::from_utf8(raw?).ok()?;
    parse_id(&id).map(|_| id)
}

/// The nodes' heartbeats as read: those a node writes (a replica id, ms
/// since 1970), and the fields that are not one.
pub(super) fn heartbeats(raw: Vec<(Vec<u8>, Vec<u8>)>) -> (BTreeMap<String, u64>, Vec<Vec<u8>>) {
    let mut good = BTreeMap::new();
    let mut bad = Vec::new();
    for (field, value) in raw {
        let ms = std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.parse().ok());
        match (String::from_utf8(field), ms) {
            (Ok(node), Some(ms)) if ReplicaId::new(node.as_str()).is_ok() => {
                good.insert(node, ms);
            }
            (Ok(node), _) => bad.push(node.into_bytes()),
            (Err(e), _) => bad.push(e.into_bytes()),
        }
    }
    (good, bad)
}

/// The id just after `id` (XTRIM MINID keeps ids from it on).
pub(super) fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = parse_id(id)?;
    Some(match seq.checked_add(1) {
        Some(s) => format!("{ms}-{s}"),
        None => format!("{}-0", ms + 1),
    })
}

/// The log line of one object (no newline): how the compacted copy keeps it.
pub fn object_line(out: &mut String, name: &str, o: &Object) {
    out.push_str("{\"objects\":[");
    push_object(out, name, o);
    out.push_str("]}");
}

/// The compacted copy's field of an object: `TYPE:NAME`.
pub(super) fn field(name: &str, ty: CrdtType) -> String {
    format!("{}:{name}", ty.as_str())
}

/// Decodes log lines (newline-separated) as published to the stream: each
/// line a JSON object with `objects`, checked as the server's log is at
/// start. The error names the line.
/// One decoded log line.
#[derive(Debug)]
pub struct Line {
    /// As written (no newline).
    pub text: String,
    pub delta: Store,
    /// The replica and time of the push, when the line says them.
    pub origin: Option<(ReplicaId, u64)>,
}

/// A log line in its typed form (states still JSON text).
#[derive(Deserialize)]
struct LineIn<'a> {
    #[serde(borrow)]
    objects: Vec<ObjectIn<'a>>,
    #[serde(default, borrow)]
    replica: Option<Cow<'a, str>>,
    #[serde(default)]
    time_ms: Option<u64>,
}

pub fn decode_lines(text: &str, replica: &ReplicaId) -> Result<Vec<Line>, String> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let at = |e: &dyn std::fmt::Display| format!("line {}: {e}", i + 1);
        let (delta, origin) = match serde_json::from_str::<LineIn<'_>>(line) {
            Ok(l) => {
                let delta = decode_objects_in(&l.objects, replica).map_err(|e| at(&e.message()))?;
                let who = l.replica.and_then(|r| ReplicaId::new(r.into_owned()).ok());
                (delta, who.zip(l.time_ms))
            }
            // The slow way, which names exactly what is wrong.
            Err(_) => {
                let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(&e))?;
                let delta =
                    decode_objects(v.get("objects"), replica).map_err(|e| at(&e.message()))?;
                let who = v["replica"].as_str().and_then(|r| ReplicaId::new(r).ok());
                (delta, who.zip(v["time_ms"].as_u64()))
            }
        };
        out.push(Line {
            text: line.to_string(),
            delta,
            origin,
        });
    }
    Ok(out)
}

/// Splits log lines into entries of at most [`ENTRY_BYTES`] (a longer line
/// is an entry by itself).
pub(super) fn split_entries(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, _) in text.match_indices('\n') {
        if i + 1 - start > ENTRY_BYTES && end > start {
            out.push(&text[start..end]);
            start = end;
        }
        end = i + 1;
    }
    if end > start {
        out.push(&text[start..end]);
    }
    out
}

/// A stream entry as read: its id and its fields, names and values as
/// bytes. Redis holds bytes, and an entry whose field names are not UTF-8
/// (no node writes one) must be skipped, not fail the whole reply.
#[derive(Debug, Default)]
pub(super) struct RawEntry {
    pub(super) id: String,
    pub(super) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What kind of reply `v` is, for an error (never the reply itself: it
/// may be megabytes).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Set(_) => "a set",
        _ => "another kind of reply",
    }
}

/// The bytes of a string reply.
fn bytes(v: Value) -> Result<Vec<u8>, String> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::VerbatimString { text, .. } => Ok(text.into_bytes()),
        other => Err(format!(
            "a stream reply holds {} where a string goes",
            kind(&other)
        )),
    }
}

/// Name-value pairs, as an array of both in turn (RESP2) or a map (RESP3).
fn pairs(v: Value) -> Result<Vec<(Value, Value)>, String> {
    match v {
        Value::Map(m) => Ok(m),
        Value::Array(a) | Value::Set(a) => {
            if a.len() % 2 != 0 {
                return Err("a stream reply has an odd number of names and values".into());
            }
            let mut out = Vec::with_capacity(a.len() / 2);
            let mut it = a.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            Ok(out)
        }
        Value::Nil => Ok(Vec::new()),
        other => Err(format!(
            "a stream reply holds {} where pairs go",
            kind(&other)
        )),
    }
}

/// The entries of an XRANGE reply (and of each stream of an XREAD's).
pub(super) fn range_entries(v: Value) -> Result<Vec<RawEntry>, String> {
    let list = match v {
        Value::Array(a) => a,
        Value::Nil => return Ok(Vec::new()),
        other => {
            return Err(format!(
                "a stream reply holds {} where entries go",
                kind(&other)
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let Value::Array(parts) = e else {
            return Err(format!(
                "a stream entry is {}, not an id and fields",
                kind(&e)
            ));
        };
        let mut parts = parts.into_iter();
        let (Some(id), fields) = (parts.next(), parts.next()) else {
            return Err("a stream entry without an id".into());
        };
        let id = String::from_utf8(bytes(id)?).map_err(|_| "a stream id that is not text")?;
        let fields = match fields {
            Some(f) => pairs(f)?
                .into_iter()
                .map(|(k, v)| Ok((bytes(k)?, bytes(v)?)))
                .collect::<Result<_, String>>()?,
            None => Vec::new(),
        };
        out.push(RawEntry { id, fields });
    }
    Ok(out)
}

/// The entries of an XREAD reply on one stream: none when it timed out.
pub(super) fn read_entries(v: Value) -> Result<Vec<RawEntry>, String> {
    let streams = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(m) => m,
        Value::Array(a) => a
            .into_iter()
            .map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => {
                    let mut kv = kv.into_iter();
                    Ok((
                        kv.next().unwrap_or(Value::Nil),
                        kv.next().unwrap_or(Value::Nil),
                    ))
                }
                other => Err(format!(
                    "an XREAD reply holds {} where a stream goes",
                    kind(&other)
                )),
            })
            .collect::<Result<_, String>>()?,
        other => return Err(format!("an XREAD reply is {}", kind(&other))),
    };
    let mut out = Vec::new();
    for (_, entries) in streams {
        out.extend(range_entries(entries)?);
    }
    Ok(out)
}

/// A field of a stream entry.
pub(super) fn text_field<'a>(e: &'a RawEntry, name: &str) -> Option<&'a [u8]> {
    e.fields
        .iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// One stream entry: when it was published, and its lines (its `node`
/// field, who published it, is checked: the reader skips its own).
pub(super) struct Entry {
    pub(super) sent_ms: u64,
    pub(super) lines: Vec<Line>,
    /// With a `delta` field: `lines` is that one line, and these the pushes
    /// it merges (who, when).
    pub(super) pushes: Vec<(ReplicaId, u64)>,
}

/// The `pushes` field of an entry: a `REPLICA TIME_MS` line per push the
/// entry's delta merges. Only for the view of the pushes: a line that is
/// not one is left out.
pub fn decode_pushes(text: &str) -> Vec<(ReplicaId, u64)> {
    text.split('\n')
        .filter_map(|line| {
            let (who, ms) = line.split_once(' ')?;
            Some((ReplicaId::new(who).ok()?, ms.parse().ok()?))
        })
        .collect()
}

/// An entry's fields, checked: `node`, `ms`, and either `lines` (log lines,
/// each decoded) or `delta` (the lines merged, one line) and `pushes`.
pub(super) fn decode_entry(e: &RawEntry, replica: &ReplicaId) -> Result<Entry, String> {
    text_field(e, "node")
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or("no node field")?;
    let sent_ms = text_field(e, "ms")
        .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
        .ok_or("no ms field (a number)")?;
    let utf8 = |field: &str| {
        text_field(e, field)
            .map(|b| std::str::from_utf8(b).map_err(|_| format!("{field} are not UTF-8")))
    };
    if let Some(delta) = utf8("delta") {
        let lines = decode_lines(delta?, replica).map_err(|e| format!("delta: {e}"))?;
        if lines.len() != 1 {
            return Err(format!("delta: {} lines, not one", lines.len()));
        }
        let pushes = match utf8("pushes") {
            Some(p) => decode_pushes(p?),
            None => Vec::new(),
        };
        return Ok(Entry {
            sent_ms,
            lines,
            pushes,
        });
    }
    let text = utf8("lines").ok_or("no lines field")??;
    Ok(Entry {
        sent_ms,
        lines: decode_lines(text, replica)?,
        pushes: Vec::new(),
    })
}

/// Merges `delta` into `into` object by object; what does not fit (a text
/// that refers to characters `into` lacks) is left out and counted.
pub(super) fn merge_fitting(into: &mut Store, delta: &Store) -> usize {
    let mut misfits = 0;
    for (name, o) in delta.iter_shared() {
        if into.check_mergeable_object(name, o).is_ok() {
            // (What `into` lacks is shared, not copied.)
            into.merge_shared(name, o);
        } else {
            misfits += 1;
        }
    }
    misfits
}

//! The server's view of its history: the pushes it accepted lately, who
//! sent them and when (`crdt log --url`). Kept in memory, within a budget,
//! and rebuilt at start from the log lines since the last compaction (each
//! line names its replica and time). Pure: the server loop records and
//! asks; nothing here touches a socket.

use std::collections::VecDeque;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::clock::ReplicaId;
use crate::object::CrdtType;
use crate::store::{Store, selects};

/// Bytes of log lines kept (older entries go first).
pub const RECENT_BYTES: usize = 4 << 20;
/// Entries kept.
pub const RECENT_ENTRIES: usize = 10_000;
/// A longer line keeps its names, not its objects.
pub const RECENT_LINE: usize = 1 << 20;
/// Entries a `log` request may ask for at most (and gets without `limit`: 100).
pub const MAX_LOG_LIMIT: usize = 10_000;

/// One push.
#[derive(Clone, Debug)]
pub struct RecentEntry {
    /// Increasing, from 1 at the server's start (positions do not survive
    /// a restart; times do).
    pub seq: u64,
    pub time_ms: u64,
    pub replica: ReplicaId,
    /// Its log line (`{"objects":[...],...}`, without its newline); only
    /// the names of its objects when it was too long to keep whole.
    pub line: Kept,
}

/// What an entry keeps of its push.
#[derive(Clone, Debug)]
pub enum Kept {
    Line(String),
    Names(Vec<(String, CrdtType)>),
    /// A push another node took, merged with that node's other pushes of
    /// its round (shared by them): the push is its replica's part of it,
    /// found when asked. With the bytes it counts for: the first push of
    /// the round counts the merged line's, the others a counter entry's.
    Part(std::sync::Arc<Store>, usize),
}

impl Kept {
    fn bytes(&self) -> usize {
        match self {
            Kept::Line(l) => l.len(),
            Kept::Names(n) => n.iter().map(|(s, _)| s.len() + 16).sum(),
            Kept::Part(_, bytes) => *bytes,
        }
    }
}

/// What a `log` request asks for.
#[derive(Clone, Debug, Default)]
pub struct LogAsk {
    /// Names or namespaces; all when empty.
    pub select: Vec<String>,
    /// The newest this many entries.
    pub limit: usize,
    /// Pushes by this replica only.
    pub replica: Option<ReplicaId>,
    /// Pushes at or after, at or before these times (ms since the epoch).
    pub since: Option<u64>,
    pub until: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Recent {
    entries: VecDeque<RecentEntry>,
    bytes: usize,
    next: u64,
}

/// The fields of a log line that say who and when.
#[derive(serde::Deserialize)]
struct LineMeta<'a> {
    #[serde(borrow)]
    objects: &'a RawValue,
    replica: Option<String>,
    time_ms: Option<u64>,
}

#[derive(serde::Deserialize)]
struct NamedObject<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
}

/// `line` (ending in `}\n`, as [`crate::sync::persist::encode_entry`]
/// writes it) with who pushed it and when, for the log.
pub fn with_origin(line: &mut String, replica: &ReplicaId, time_ms: u64) {
    use std::fmt::Write as _;
    if line.ends_with("}\n") {
        line.truncate(line.len() - 2);
        // A replica id is ASCII letters, digits and .-_:@: no escaping.
        let _ = writeln!(line, ",\"replica\":\"{replica}\",\"time_ms\":{time_ms}}}");
    }
}

impl Recent {
    /// Records a push of `delta` by `replica`, with its log line (moved
    /// in, not copied).
    pub fn record(&mut self, time_ms: u64, replica: &ReplicaId, delta: &Store, mut line: String) {
        let kept = if line.len() > RECENT_LINE {
            Kept::Names(delta.iter().map(|(n, o)| (n.to_string(), o.ty())).collect())
        } else {
            if line.ends_with('\n') {
                line.pop();
            }
            Kept::Line(line)
        };
        self.push(time_ms, replica.clone(), kept);
    }

    /// Records the pushes (who, when) another node took in one round,
    /// `merged` as one delta of `line_bytes` bytes (its log line). The
    /// merged delta counts once against the budget, with the first push;
    /// one longer than a line may be keeps only its names, as a push does.
    pub fn record_parts(
        &mut self,
        pushes: Vec<(ReplicaId, u64)>,
        merged: Store,
        line_bytes: usize,
    ) {
        if line_bytes > RECENT_LINE {
            let names: Vec<(String, CrdtType)> = merged
                .iter()
                .map(|(n, o)| (n.to_string(), o.ty()))
                .collect();
            for (replica, time_ms) in pushes {
                self.push(time_ms, replica, Kept::Names(names.clone()));
            }
            return;
        }
        let merged = std::sync::Arc::new(merged);
        for (i, (replica, time_ms)) in pushes.into_iter().enumerate() {
            let bytes = if i == 0 { line_bytes.max(64) } else { 64 };
            self.push(time_ms, replica, Kept::Part(merged.clone(), bytes));
        }
    }

    fn push(&mut self, time_ms: u64, replica: ReplicaId, line: Kept) {
        self.next += 1;
        self.bytes += line.bytes();
        self.entries.push_back(RecentEntry {
            seq: self.next,
            time_ms,
            replica,
            line,
        });
        while self.bytes > RECENT_BYTES || self.entries.len() > RECENT_ENTRIES {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.line.bytes();
        }
    }

    /// Records a log line read at start; a line without its replica and
    /// time (written by an earlier version) is not an entry.
    pub fn replay(&mut self, line: &str, delta: &Store) {
        let Ok(meta) = serde_json::from_str::<LineMeta<'_>>(line) else {
            return;
        };
        let (Some(replica), Some(time)) = (meta.replica, meta.time_ms) else {
            return;
        };
        let Ok(replica) = ReplicaId::new(replica) else {
            return;
        };
        self.record(time, &replica, delta, line.to_string());
    }

    /// The kept log lines, oldest first, each with its newline: what a new
    /// log starts with so that a restart keeps them.
    pub fn lines(&self) -> String {
        let mut out = String::with_capacity(self.bytes + self.entries.len());
        for e in &self.entries {
            if let Kept::Line(l) = &e.line {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `log-reply` to a `log` request: the newest `limit` entries that
    /// changed a name `select` picks (all when empty), newest first, each
    /// with those objects as they were pushed; within `budget` bytes (then
    /// `"more": true`).
    pub fn reply(&self, id: Option<&Value>, ask: &LogAsk, budget: usize) -> String {
        let (select, limit) = (&ask.select, ask.limit);
        let picks = |name: &str| select.is_empty() || select.iter().any(|p| selects(p, name));
        let mut out = String::from("{\"type\":\"log-reply\"");
        if let Some(id) = id {
            out.push_str(&format!(",\"id\":{id}"));
        }
        out.push_str(",\"entries\":[");
        let (mut n, mut more) = (0, false);
        for e in self.entries.iter().rev() {
            if ask.replica.as_ref().is_some_and(|r| *r != e.replica)
                || ask.since.is_some_and(|t| e.time_ms < t)
                || ask.until.is_some_and(|t| e.time_ms > t)
            {
                continue;
            }
            if n == limit {
                more = true;
                break;
            }
            let mut item = format!(
                "{{\"seq\":{},\"time_ms\":{},\"replica\":\"{}\"",
                e.seq, e.time_ms, e.replica
            );
            match &e.line {
                Kept::Line(line) => {
                    let objects = objects_of(line, &picks).unwrap_or_default();
                    if objects.is_empty() {
                        continue;
                    }
                    item.push_str(",\"objects\":[");
                    item.push_str(&objects.join(","));
                    item.push(']');
                }
                Kept::Part(merged, _) => {
                    let objects = part_of(merged, &e.replica, &picks);
                    if objects.is_empty() {
                        continue;
                    }
                    item.push_str(",\"objects\":");
                    item.push_str(&objects);
                }
                Kept::Names(names) => {
                    let names: Vec<Value> = names
                        .iter()
                        .filter(|(name, _)| picks(name))
                        .map(|(name, ty)| json!({"name": name, "type": ty.as_str()}))
                        .collect();
                    if names.is_empty() {
                        continue;
                    }
                    item.push_str(&format!(",\"omitted\":{}", Value::from(names)));
                }
            }
            item.push('}');
            if out.len() + item.len() + 64 > budget {
                more = true;
                break;
            }
            if n > 0 {
                out.push(',');
            }
            out.push_str(&item);
            n += 1;
        }
        out.push(']');
        if more {
            out.push_str(",\"more\":true");
        }
        out.push('}');
        out
    }
}

/// The events of `replica` in the objects of `merged` that `picks`
/// selects (what each holds beyond the others' events), as a JSON array;
/// empty when there are none.
fn part_of(merged: &Store, replica: &ReplicaId, picks: &impl Fn(&str) -> bool) -> String {
    let mut part = Store::new(replica.clone());
    for (name, o) in merged.iter().filter(|(name, _)| picks(name)) {
        let mut others = crate::clock::VersionVector::new();
        // (Not `version()`: a delta's stops at its first gap.)
        for (r, seq) in o.max_seqs().iter() {
            if r != replica {
                others.set(r.clone(), seq);
            }
        }
        let mine = o.delta_since(&others);
        if !mine.max_seqs().is_empty() {
            part.insert_object(name, mine);
        }
    }
    if part.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    crate::objects_line::push_objects(&mut out, &part);
    out
}

/// The objects of a log line that `picks` selects, as they were written.
fn objects_of(line: &str, picks: &impl Fn(&str) -> bool) -> Option<Vec<String>> {
    let meta = serde_json::from_str::<LineMeta<'_>>(line).ok()?;
    let list = serde_json::from_str::<Vec<&RawValue>>(meta.objects.get()).ok()?;
    Some(
        list.into_iter()
            .filter(|o| {
                serde_json::from_str::<NamedObject<'_>>(o.get()).is_ok_and(|n| picks(&n.name))
            })
            .map(|o| o.get().to_string())
            .collect(),
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::objects_line::decode_objects_text;

    fn push(recent: &mut Recent, who: &str, time: u64, objects: &str) {
        let r = ReplicaId::new(who).unwrap();
        let delta = decode_objects_text(objects, &r).unwrap();
        let mut line = format!("{{\"objects\":{objects}}}\n");
        with_origin(&mut line, &r, time);
        recent.record(time, &r, &delta, line);
    }

    fn ask(select: &[&str], limit: usize) -> LogAsk {
        LogAsk {
            select: select.iter().map(|s| s.to_string()).collect(),
            limit,
            ..LogAsk::default()
        }
    }

    /// Pushes another node took, merged there: each is its replica's part.
    #[test]
    fn a_merged_push_shows_as_its_replicas_part() {
        let r = ReplicaId::new("s").unwrap();
        let merged = decode_objects_text(
            r#"[{"name":"n","type":"g-counter","state":{"counts":{"a":{"seq":2,"count":5},"b":{"seq":1,"count":7}}}},
                {"name":"t","type":"or-set","state":{"context":{"a":1},"elements":[{"value":"x","dots":[["a",1]]}]}}]"#,
            &r,
        )
        .unwrap();
        let mut recent = Recent::default();
        let pushes = vec![
            (ReplicaId::new("a").unwrap(), 10),
            (ReplicaId::new("b").unwrap(), 11),
        ];
        recent.record_parts(pushes.clone(), merged.clone(), 300);
        // The merged delta counts once, with the first push.
        assert_eq!(recent.bytes, 300 + 64);
        let v: Value = serde_json::from_str(&recent.reply(None, &ask(&[], 100), 1 << 20)).unwrap();
        let entries = v["entries"].as_array().unwrap();
        // b: its counter entry only.
        assert_eq!(entries[0]["replica"], "b");
        let objects = entries[0]["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 1, "{v}");
        assert_eq!(objects[0]["state"]["counts"]["b"]["count"], 7);
        assert!(objects[0]["state"]["counts"].get("a").is_none(), "{v}");
        // a: its counter entry and its add.
        let objects = entries[1]["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 2, "{v}");
        assert_eq!(objects[0]["state"]["counts"]["a"]["count"], 5);
        assert_eq!(objects[1]["name"], "t");
        // Picking names applies to the parts.
        let v: Value =
            serde_json::from_str(&recent.reply(None, &ask(&["t"], 100), 1 << 20)).unwrap();
        assert_eq!(v["entries"].as_array().unwrap().len(), 1);
        // Large merged rounds stay within the budget (each counts its
        // line once), and one past a line's size keeps its names.
        for i in 0..100 {
            recent.record_parts(pushes.clone(), merged.clone(), RECENT_LINE - 1);
            assert!(
                recent.bytes <= RECENT_BYTES,
                "round {i}: {} bytes",
                recent.bytes
            );
        }
        assert!(recent.len() <= 2 * (RECENT_BYTES / (RECENT_LINE - 1)));
        recent.record_parts(pushes, merged, RECENT_LINE + 1);
        assert!(matches!(
            recent.entries.back().unwrap().line,
            Kept::Names(_)
        ));
    }

    #[test]
    fn a_reply_lists_the_newest_pushes_of_the_names_asked() {
        let mut r = Recent::default();
        let c = |n: &str| {
            format!(
                r#"[{{"name":"{n}","type":"g-counter","state":{{"counts":{{"a":{{"seq":1,"count":2}}}}}}}}]"#
            )
        };
        push(&mut r, "a", 10, &c("metrics:x"));
        push(&mut r, "a", 20, &c("tasks:y"));
        push(&mut r, "b", 30, &c("metrics:z"));
        let v: Value =
            serde_json::from_str(&r.reply(Some(&json!(4)), &ask(&["metrics"], 100), 1 << 20))
                .unwrap();
        assert_eq!(v["id"], 4);
        let entries = v["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0]["seq"].as_u64(), entries[0]["replica"].as_str()),
            (Some(3), Some("b"))
        );
        assert_eq!(entries[1]["objects"][0]["name"], "metrics:x");
        assert_eq!(entries[1]["time_ms"], 10);
        // limit and budget: "more".
        let v: Value = serde_json::from_str(&r.reply(None, &ask(&[], 1), 1 << 20)).unwrap();
        assert_eq!(
            (v["entries"].as_array().unwrap().len(), v["more"].as_bool()),
            (1, Some(true))
        );
        let v: Value = serde_json::from_str(&r.reply(None, &ask(&[], 100), 150)).unwrap();
        assert_eq!(v["more"], true);
        // By replica and time, before the limit.
        let by_a = LogAsk {
            replica: Some(ReplicaId::new("a").unwrap()),
            ..ask(&[], 1)
        };
        let v: Value = serde_json::from_str(&r.reply(None, &by_a, 1 << 20)).unwrap();
        assert_eq!(v["entries"][0]["seq"], 2);
        let window = LogAsk {
            since: Some(15),
            until: Some(25),
            ..ask(&[], 100)
        };
        let v: Value = serde_json::from_str(&r.reply(None, &window, 1 << 20)).unwrap();
        assert_eq!(v["entries"].as_array().unwrap().len(), 1);
        assert_eq!(v["entries"][0]["time_ms"], 20);
        // A replayed line without who and when is not an entry.
        let mut again = Recent::default();
        let delta = Store::new(ReplicaId::new("s").unwrap());
        again.replay(r#"{"objects":[]}"#, &delta);
        assert!(again.is_empty());
        again.replay(r#"{"objects":[],"replica":"a","time_ms":5}"#, &delta);
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn old_entries_go_first_within_the_budget() {
        let mut r = Recent::default();
        let big = "x".repeat(RECENT_LINE / 2);
        let who = ReplicaId::new("a").unwrap();
        let delta = Store::new(who.clone());
        for i in 0..40 {
            r.push(i, who.clone(), Kept::Line(big.clone()));
        }
        assert!(r.bytes <= RECENT_BYTES);
        assert!(r.len() < 40);
        assert_eq!(r.entries.front().unwrap().seq, 40 - r.len() as u64 + 1);
        r.record(99, &who, &delta, "y".repeat(RECENT_LINE + 1));
        assert!(matches!(r.entries.back().unwrap().line, Kept::Names(_)));
    }
}

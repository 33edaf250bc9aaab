//! Messages under a size limit. A `sync-reply` or a `push` too large for
//! one message goes as several: many objects per message, and an object
//! too large for one message split by [`Object::parts`] (every part a valid
//! delta on its own, merged as it arrives). The server sends a reply a part
//! at a time as the client reads it ([`Reply`]); a client asks for its
//! objects a range of names at a time (`after`, `upto`), so no request is
//! larger than a part either. See `docs/protocol.md`, *Large states*.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};

use crate::clock::VersionVector;
use crate::codec::vv_json;
use crate::object::{CrdtType, Object};
use crate::store::selected;
use crate::store::{Store, StoreVersion};
use crate::sync::protocol::{ProtoError, SyncRequest, push_object_head};

/// What a message may carry besides its objects (type, id, `want`, `more`).
const HEADROOM: usize = 512;

/// The size of the parts of a message for an endpoint whose limit is `limit`:
/// a quarter of it, between 1 KiB and 4 MiB (so a part is merged and written
/// while the next one travels).
pub fn part_budget(limit: usize) -> usize {
    (limit / 4).clamp(1024, 1 << 20)
}

/// `{"name":N,"type":T,"state":S}` of `o`, as one entry or, when it is
/// larger than `budget`, as the entries of its parts. An entry that is over
/// `limit` and cannot be split further (a register) is `too-big`.
pub fn entries(
    name: &str,
    o: &Object,
    budget: usize,
    limit: usize,
) -> Result<Vec<String>, ProtoError> {
    let mut out = Vec::new();
    entries_into(&mut out, name, o, budget, limit.saturating_sub(HEADROOM), 0)?;
    Ok(out)
}

fn entries_into(
    out: &mut Vec<String>,
    name: &str,
    o: &Object,
    budget: usize,
    max: usize,
    depth: u32,
) -> Result<(), ProtoError> {
    let text = entry(name, o);
    if text.len() <= budget.max(1) {
        out.push(text);
        return Ok(());
    }
    let parts = o.parts(budget);
    if parts.len() <= 1 {
        if text.len() <= max {
            out.push(text);
            return Ok(());
        }
        // The estimate of a part's size was too generous: halve it.
        if depth < 12 && o.parts(budget / 2).len() > 1 {
            return entries_into(out, name, o, budget / 2, max, depth + 1);
        }
        return Err(ProtoError::new(
            "too-big",
            format!(
                "{name} ({}) is {} bytes and cannot be split into parts under the message limit of {} bytes (a register's value travels whole)",
                o.ty(),
                text.len(),
                max + HEADROOM
            ),
        ));
    }
    for p in parts {
        let t = entry(name, &p);
        if t.len() <= max {
            out.push(t);
        } else {
            entries_into(out, name, &p, budget / 2, max, depth + 1)?;
        }
    }
    Ok(())
}

fn entry(name: &str, o: &Object) -> String {
    let mut s = String::new();
    push_object_head(&mut s, name, o.ty());
    s.push_str("\"state\":");
    o.write_state(&mut s);
    s.push('}');
    s
}

/// Packs entries into messages of about `budget` bytes: `head` (for example
/// `{"type":"push","id":3,"objects":[`), the entries, `]` and `tail`.
pub fn pack(entries: Vec<String>, budget: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut size = 0;
    for e in entries {
        if out.is_empty() || (size > 0 && size + e.len() + 1 > budget) {
            out.push(Vec::new());
            size = 0;
        }
        size += e.len() + 1;
        out.last_mut().expect("one message").push(e);
    }
    out
}

/// `head` + entries joined by commas + `tail`.
pub fn message(head: &str, entries: &[String], tail: &str) -> String {
    let len = entries.iter().map(|e| e.len() + 1).sum::<usize>();
    let mut s = String::with_capacity(head.len() + len + tail.len());
    s.push_str(head);
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(e);
    }
    s.push_str(tail);
    s
}

/// A `sync-reply` being sent, a message at a time: the server walks the
/// selected names in order from where it stopped, so what it holds unsent
/// is one part (and the parts of one large object), never the whole reply.
/// A name changed by a push after the walk passed it reaches the client as
/// an `update` (when it watches) or with its next sync.
#[derive(Debug)]
pub struct Reply {
    id: Option<Value>,
    select: Vec<String>,
    /// The client's versions, by name.
    theirs: BTreeMap<String, Vec<(CrdtType, VersionVector)>>,
    /// The range of names: after `after`, up to `upto` (inclusive).
    after: Option<String>,
    upto: Option<String>,
    /// The last name walked.
    walked: Option<String>,
    /// Entries of walked names not sent yet.
    pending: VecDeque<String>,
    want: Vec<Value>,
    done: bool,
    budget: usize,
    limit: usize,
}

impl Reply {
    pub fn new(id: Option<Value>, req: &SyncRequest, limit: usize) -> Reply {
        let mut theirs: BTreeMap<String, Vec<(CrdtType, VersionVector)>> = BTreeMap::new();
        for ((name, ty), vv) in &req.versions {
            theirs
                .entry(name.clone())
                .or_default()
                .push((*ty, vv.clone()));
        }
        Reply {
            id,
            select: req.select.clone(),
            theirs,
            after: req.after.clone(),
            upto: req.upto.clone(),
            walked: None,
            pending: VecDeque::new(),
            want: Vec::new(),
            done: false,
            budget: part_budget(limit),
            limit,
        }
    }

    /// The next message of the reply (`"more": true` on all but the last),
    /// or `None` once the last was given. An object that cannot be sent
    /// ends the reply with an `error` (`too-big`).
    pub fn next_message(&mut self, server: &Store) -> Option<String> {
        if self.done {
            return None;
        }
        let mut entries = Vec::new();
        let mut size = 0;
        loop {
            while let Some(e) = self.pending.front() {
                if !entries.is_empty() && size + e.len() + 1 > self.budget {
                    return Some(self.part(&entries, true));
                }
                size += e.len() + 1;
                entries.push(self.pending.pop_front().expect("peeked"));
            }
            let Some(name) = self.next_name(server) else {
                break;
            };
            if let Err(e) = self.walk(server, &name) {
                self.done = true;
                return Some(e.to_json(self.id.as_ref()).to_string());
            }
            self.walked = Some(name);
        }
        let want = serde_json::to_string(&self.want).expect("values serialize");
        if !entries.is_empty() && size + want.len() > self.budget {
            // The want list goes alone, in the last message.
            return Some(self.part(&entries, true));
        }
        self.done = true;
        let head = self.head();
        Some(message(&head, &entries, &format!("],\"want\":{want}}}")))
    }

    fn head(&self) -> String {
        match &self.id {
            Some(id) => format!("{{\"type\":\"sync-reply\",\"id\":{id},\"objects\":["),
            None => "{\"type\":\"sync-reply\",\"objects\":[".to_string(),
        }
    }

    fn part(&self, entries: &[String], more: bool) -> String {
        let tail = if more {
            "],\"want\":[],\"more\":true}"
        } else {
            "],\"want\":[]}"
        };
        message(&self.head(), entries, tail)
    }

    /// The next name after the last walked, of the server's or the client's,
    /// in the range and selected.
    fn next_name(&self, server: &Store) -> Option<String> {
        let from = self.walked.as_deref().or(self.after.as_deref());
        let in_range = |n: &str| {
            from.is_none_or(|f| n > f)
                && self.upto.as_deref().is_none_or(|u| n <= u)
                && selected(&self.select, n)
        };
        let mine = server.names_after(from).find(|n| in_range(n));
        let theirs = match from {
            Some(f) => self
                .theirs
                .range::<str, _>((std::ops::Bound::Excluded(f), std::ops::Bound::Unbounded))
                .map(|(n, _)| n.as_str())
                .find(|n| in_range(n)),
            None => self.theirs.keys().map(String::as_str).find(|n| in_range(n)),
        };
        match (mine, theirs) {
            (Some(a), Some(b)) => Some(a.min(b).to_string()),
            (a, b) => a.or(b).map(str::to_string),
        }
    }

    /// Queues what the client lacks of `name`, and notes what it has more of.
    fn walk(&mut self, server: &Store, name: &str) -> Result<(), ProtoError> {
        let empty = VersionVector::new();
        let theirs = self.theirs.get(name).cloned().unwrap_or_default();
        for o in server.objects(name) {
            let vv = theirs
                .iter()
                .find(|(t, _)| *t == o.ty())
                .map_or(&empty, |(_, v)| v);
            if vv.is_empty() {
                // All of it (a fresh replica): no copy.
                self.pending
                    .extend(entries(name, o, self.budget, self.limit)?);
            } else if !o.covered_by(vv) {
                let delta = o.delta_since(vv);
                self.pending
                    .extend(entries(name, &delta, self.budget, self.limit)?);
            }
            if !o.has_seen(vv) {
                self.want.push(json!({"name": name, "type": o.ty().as_str(), "version": vv_json(&o.version())}));
            }
        }
        for (ty, vv) in &theirs {
            if server.get(name, *ty).is_none() && !vv.is_empty() {
                self.want
                    .push(json!({"name": name, "type": ty.as_str(), "version": {}}));
            }
        }
        Ok(())
    }
}

/// The `update` messages that carry `delta` to a watcher, each under the
/// limit: one message when it fits (the common case, written once), else
/// its objects in parts as a reply's are.
pub fn update_messages(delta: &Store, limit: usize) -> Vec<String> {
    let text = crate::sync::protocol::update_text(delta);
    let budget = part_budget(limit);
    if text.len() <= budget {
        return vec![text];
    }
    let mut all = Vec::new();
    for (name, o) in delta.iter() {
        match entries(name, o, budget, limit) {
            Ok(list) => all.extend(list),
            // Cannot be split (a register as large as the limit): whole.
            Err(_) => all.push(entry(name, o)),
        }
    }
    pack(all, budget)
        .into_iter()
        .map(|group| message("{\"type\":\"update\",\"objects\":[", &group, "]}"))
        .collect()
}

/// Every message of a reply at once (tests, and clients of the library).
pub fn reply_messages(
    server: &Store,
    id: Option<Value>,
    req: &SyncRequest,
    limit: usize,
) -> Vec<String> {
    let mut r = Reply::new(id, req, limit);
    std::iter::from_fn(|| r.next_message(server)).collect()
}

/// The local side of a sync, as the client sees it: a store in memory, or
/// the local replica's database (which the CLI implements, a part per
/// transaction, so a client's memory holds a part, not the state).
pub trait Local {
    fn replica(&self) -> crate::ReplicaId;

    /// The versions of the selected objects named after `after`, about
    /// `budget` bytes of them (a name's types together), and the last name
    /// given: `None` when no selected name follows the ones given.
    fn versions_after(
        &mut self,
        select: &[String],
        after: Option<&str>,
        budget: usize,
    ) -> Result<(StoreVersion, Option<String>), String>;

    /// Merges a part that arrived (`bytes` long on the wire), after the
    /// checks of [`Store::check_mergeable`]; returns the objects it changed
    /// here. It may be kept in memory until [`Local::flush`].
    fn merge_part(
        &mut self,
        delta: &Store,
        bytes: usize,
    ) -> Result<Vec<(String, CrdtType)>, String>;

    /// Makes every part merged so far durable (the end of a reply, an update).
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// What the server lacks: the deltas since its versions in `want`.
    fn deltas(&mut self, want: &StoreVersion) -> Result<Store, String>;
}

impl Local for Store {
    fn replica(&self) -> crate::ReplicaId {
        Store::replica(self).clone()
    }

    fn versions_after(
        &mut self,
        select: &[String],
        after: Option<&str>,
        budget: usize,
    ) -> Result<(StoreVersion, Option<String>), String> {
        let mut range = Range::new(budget);
        for name in self.names_after(after).filter(|n| selected(select, n)) {
            for o in self.objects(name) {
                if !range.add(name, o) {
                    return Ok(range.full());
                }
            }
        }
        Ok(range.to_end())
    }

    fn merge_part(
        &mut self,
        delta: &Store,
        _bytes: usize,
    ) -> Result<Vec<(String, CrdtType)>, String> {
        self.merge_changed(delta).map_err(|e| e.to_string())
    }

    fn deltas(&mut self, want: &StoreVersion) -> Result<Store, String> {
        let mut delta = Store::new(Store::replica(self).clone());
        for ((name, ty), vv) in want {
            if let Some(o) = self.get(name, *ty) {
                delta.merge_object(name, &o.delta_since(vv));
            }
        }
        Ok(delta)
    }
}

/// The versions of one ranged request, collected in name order: about
/// `budget` bytes of them, a name's types together.
pub struct Range {
    budget: usize,
    size: usize,
    versions: StoreVersion,
    last: Option<String>,
}

impl Range {
    pub fn new(budget: usize) -> Range {
        Range {
            budget,
            size: 0,
            versions: StoreVersion::new(),
            last: None,
        }
    }

    /// Adds an object of `name`; false (and nothing added) when the range
    /// is full and `name` belongs to the next one.
    pub fn add(&mut self, name: &str, o: &Object) -> bool {
        let same = self.last.as_deref() == Some(name);
        if self.size > self.budget && !same {
            return false;
        }
        let vv = o.version();
        self.size += version_weight(name, &vv);
        self.versions.insert((name.to_string(), o.ty()), vv);
        if !same {
            self.last = Some(name.to_string());
        }
        true
    }

    /// A full range: its versions and its last name (`upto`).
    pub fn full(self) -> (StoreVersion, Option<String>) {
        (self.versions, self.last)
    }

    /// The last range: it goes to the end (`upto` none).
    pub fn to_end(self) -> (StoreVersion, Option<String>) {
        (self.versions, None)
    }
}

/// About how many bytes a version takes in a request.
pub fn version_weight(name: &str, vv: &VersionVector) -> usize {
    name.len() + 40 + vv.iter().map(|(r, _)| r.as_str().len() + 12).sum::<usize>()
}

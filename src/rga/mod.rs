//! Replicated growable array of Unicode characters: collaborative text.
//!
//! # Representation
//! Characters typed in one go by one replica are stored as one *run*:
//! consecutive sequence numbers and Lamport numbers, each character's origin
//! being the one before. Runs live in chunks of at most [`CHUNK`] runs, each
//! chunk caching its visible and total length, so finding a position walks
//! chunks (starting from where the last operation was, since edits cluster)
//! and then at most one chunk's runs: no scan of the whole text per edit.
//! The characters themselves are stored once per replica, indexed by
//! sequence number, so splitting a run copies no text; a per-replica index
//! maps each sequence number to its chunk, so merges find origins directly.
//! Deletes mark runs with the dot of the delete; consecutive one-character
//! deletes (backspacing, or the delete key) stay one run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::clock::{Dot, MAX_SEQ, ReplicaId, VersionVector};
use crate::codec::{At, Codec, context_json};
use crate::context::CausalContext;
use crate::error::{OpError, SnapshotError};
use crate::traits::Crdt;

mod column;
use column::{Column, NOWHERE};

/// Where the last lookup was: a chunk index and the visible characters
/// before it, updated by `&self` lookups. One atomic word, so a text can be
/// shared between threads (the server measures and snapshots objects on
/// another thread); every pair written is consistent with the text, since
/// only `&mut self` changes the text. Pairs past 32 bits each are not kept
/// (the start of the text is always a valid place to start).
#[derive(Debug, Default)]
struct Cursor(AtomicU64);

impl Cursor {
    fn get(&self) -> (usize, usize) {
        let v = self.0.load(Ordering::Relaxed);
        ((v >> 32) as usize, (v & 0xffff_ffff) as usize)
    }
    fn set(&self, (c, before): (usize, usize)) {
        let v = match (u32::try_from(c), u32::try_from(before)) {
            (Ok(c), Ok(b)) => (u64::from(c) << 32) | u64::from(b),
            _ => 0,
        };
        self.0.store(v, Ordering::Relaxed);
    }
}

impl Clone for Cursor {
    fn clone(&self) -> Self {
        Cursor(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

/// The replica index of the last local edit (a hint: checked before use).
#[derive(Debug, Default)]
struct Hint(AtomicU32);

impl Hint {
    fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, v: u32) {
        self.0.store(v, Ordering::Relaxed);
    }
}

impl Clone for Hint {
    fn clone(&self) -> Self {
        Hint(AtomicU32::new(self.get()))
    }
}

/// The chunk of a character being decoded that is not placed yet.
const PENDING: u32 = u32::MAX - 1;

/// Most runs a chunk holds before it splits in two.
pub const CHUNK: usize = 48;

/// A character id inside one `Rga`: replica index and seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Id {
    r: u32,
    seq: u64,
}

/// The deletes of a run: character `i` was deleted by dot `(r, seq + step * i)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Del {
    r: u32,
    seq: u64,
    step: i8,
}

impl Del {
    fn at(&self, i: u32) -> u64 {
        (self.seq as i128 + i128::from(self.step) * i128::from(i)) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    r: u32,
    seq: u64,
    lamport: u64,
    len: u32,
    /// Origin of the first character; each later one follows the one before.
    origin: Option<Id>,
    del: Option<Del>,
}

impl Span {
    fn visible(&self) -> usize {
        if self.del.is_some() {
            0
        } else {
            self.len as usize
        }
    }

    fn contains(&self, id: Id) -> bool {
        id.r == self.r && id.seq >= self.seq && id.seq < self.seq + u64::from(self.len)
    }

    fn last(&self) -> Id {
        Id {
            r: self.r,
            seq: self.seq + u64::from(self.len) - 1,
        }
    }

    /// Keeps `[0, at)` and returns `[at, len)`.
    fn split(&mut self, at: u32) -> Span {
        debug_assert!(at > 0 && at < self.len);
        let right = Span {
            r: self.r,
            seq: self.seq + u64::from(at),
            lamport: self.lamport + u64::from(at),
            len: self.len - at,
            origin: Some(Id {
                r: self.r,
                seq: self.seq + u64::from(at) - 1,
            }),
            del: self.del.map(|d| Del { seq: d.at(at), ..d }),
        };
        self.len = at;
        right
    }

    /// `next` continues this span: the same characters' chain and deletes
    /// that follow one pattern. Returns the step of the joined deletes.
    fn joinable(&self, next: &Span) -> Option<Option<i8>> {
        let chained = next.r == self.r
            && next.seq == self.seq + u64::from(self.len)
            && next.lamport == self.lamport + u64::from(self.len)
            && next.origin == Some(self.last());
        if !chained {
            return None;
        }
        match (self.del, next.del) {
            (None, None) => Some(None),
            (Some(a), Some(b)) if a.r == b.r => {
                let step = if self.len > 1 {
                    a.step
                } else {
                    match b.seq as i128 - a.seq as i128 {
                        d @ -1..=1 => d as i8,
                        _ => return None,
                    }
                };
                let follows =
                    b.seq as i128 == a.seq as i128 + i128::from(step) * i128::from(self.len);
                (follows && (next.len == 1 || b.step == step)).then_some(Some(step))
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Chunk {
    id: u32,
    spans: Vec<Span>,
    visible: usize,
    chars: usize,
}

impl Chunk {
    fn recount(&mut self) {
        self.visible = self.spans.iter().map(Span::visible).sum();
        self.chars = self.spans.iter().map(|s| s.len as usize).sum();
    }
}

/// Where a character is: chunk index, span index, offset in the span.
#[derive(Clone, Copy, Debug)]
struct Pos {
    c: usize,
    s: usize,
    off: u32,
}

/// Ordered text where every character has a unique id (a dot).
///
/// Each character is inserted after an *origin* (the character before it
/// when it was typed, or the start) and carries a Lamport number greater than
/// every number its replica had seen. Characters with the same origin are
/// ordered by descending `(lamport, replica, seq)`, which every replica
/// computes alike. A run typed in one go chains each character to the one
/// before, so concurrent runs at one place never interleave character by
/// character. Deletes keep the character as a tombstone, marked with the
/// dot of the delete.
///
/// Positions count Unicode characters (code points), not bytes.
///
/// ```
/// use crdt::{Crdt, Rga, ReplicaId};
/// let (a, b) = (ReplicaId::new("agent-1").unwrap(), ReplicaId::new("agent-2").unwrap());
/// let mut x = Rga::default();
/// x.insert(&a, 0, "Hello!").unwrap();
/// let mut y = x.clone();
/// x.insert(&a, 5, ", World").unwrap();
/// y.delete(&b, 5, 1).unwrap(); // remove the "!"
/// x.merge(&y);
/// assert_eq!(x.text(), "Hello, World");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Rga {
    replicas: Vec<ReplicaId>,
    index_of: HashMap<ReplicaId, u32>,
    /// Per replica, the character of each seq and the chunk holding it.
    cols: Vec<Column>,
    chunks: Vec<Chunk>,
    /// Chunk id -> index in `chunks`.
    slot: Vec<u32>,
    context: CausalContext,
    max_lamport: u64,
    visible: usize,
    /// The chunk of the last lookup and the visible characters before it.
    cursor: Cursor,
    /// The replica index of the last local edit.
    last_replica: Hint,
}

/// One character of an [`Rga`], as seen from outside.
#[derive(Clone, Debug, PartialEq)]
pub struct Elem {
    pub id: Dot,
    pub lamport: u64,
    /// The character it was inserted after; `None` for the start of the text.
    pub origin: Option<Dot>,
    pub ch: char,
    /// The delete that removed it (the least dot when several did).
    pub deleted: Option<Dot>,
}

/// Consecutive characters typed in one go by one replica.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub elems: Vec<Elem>,
}

impl PartialEq for Rga {
    /// Equal when they hold the same characters in the same order with the
    /// same deletes and have seen the same events; how runs are chunked does
    /// not matter.
    fn eq(&self, other: &Self) -> bool {
        self.visible == other.visible
            && self.max_lamport == other.max_lamport
            && self.context == other.context
            && self.elements() == other.elements()
    }
}

impl Rga {
    fn intern(&mut self, replica: &ReplicaId) -> u32 {
        // The same replica edits many times in a row: skip the hash then.
        let last = self.last_replica.get() as usize;
        if self.replicas.get(last) == Some(replica) {
            return last as u32;
        }
        if let Some(&i) = self.index_of.get(replica) {
            self.last_replica.set(i);
            return i;
        }
        let i = self.replicas.len() as u32;
        self.replicas.push(replica.clone());
        self.index_of.insert(replica.clone(), i);
        self.cols.push(Column::default());
        i
    }

    fn dot(&self, id: Id) -> Dot {
        Dot::new(self.replicas[id.r as usize].clone(), id.seq)
    }

    fn key(&self, s: &Span, off: u32) -> (u64, &ReplicaId, u64) {
        (
            s.lamport + u64::from(off),
            &self.replicas[s.r as usize],
            s.seq + u64::from(off),
        )
    }

    /// Records the characters or the delete of seqs `seq..seq+n` of replica `r`.
    fn record(&mut self, r: u32, seq: u64, chars: &[char], chunk: u32) {
        self.record_iter(r, seq, chars.len(), chars.iter().copied(), chunk);
    }

    fn record_iter(
        &mut self,
        r: u32,
        seq: u64,
        n: usize,
        chars: impl Iterator<Item = char>,
        chunk: u32,
    ) {
        self.cols[r as usize].record(seq, n, chars, chunk);
    }

    fn has(&self, r: u32, seq: u64) -> bool {
        self.cols[r as usize].has(seq)
    }

    /// Where the character `id` is (it must be here).
    fn locate_id(&self, id: Id) -> Pos {
        let chunk_id = self.cols[id.r as usize].chunk(id.seq);
        let c = self.slot[chunk_id as usize] as usize;
        let s = self.chunks[c]
            .spans
            .iter()
            .position(|s| s.contains(id))
            .expect("the index points at the chunk holding the character");
        let off = (id.seq - self.chunks[c].spans[s].seq) as u32;
        Pos { c, s, off }
    }

    /// Where the `p`-th visible character is (`p < len`).
    fn locate_visible(&self, p: usize) -> Pos {
        let (mut c, mut before) = self.cursor.get();
        if c >= self.chunks.len() {
            (c, before) = (0, 0);
        }
        while before > p {
            c -= 1;
            before -= self.chunks[c].visible;
        }
        while before + self.chunks[c].visible <= p {
            before += self.chunks[c].visible;
            c += 1;
        }
        self.cursor.set((c, before));
        let mut acc = before;
        for (s, span) in self.chunks[c].spans.iter().enumerate() {
            let v = span.visible();
            if acc + v > p {
                return Pos {
                    c,
                    s,
                    off: (p - acc) as u32,
                };
            }
            acc += v;
        }
        unreachable!("chunk lengths are consistent")
    }

    /// Inserts `span` before span index `s` of chunk `c` (`s` may be the end).
    /// Returns the id of the chunk that holds it. The characters' slots
    /// must exist (see `record`).
    fn insert_span(&mut self, c: usize, s: usize, span: Span) -> u32 {
        if self.chunks.is_empty() {
            self.chunks.push(Chunk::default());
            self.slot = vec![0];
        }
        let chunk = &mut self.chunks[c];
        chunk.spans.insert(s, span);
        chunk.visible += span.visible();
        chunk.chars += span.len as usize;
        self.visible += span.visible();
        let (cc, before) = self.cursor.get();
        if cc > c {
            self.cursor.set((cc, before + span.visible()));
        }
        if self.chunks[c].spans.len() > CHUNK {
            self.split_chunk(c);
            if s >= self.chunks[c].spans.len() {
                return self.chunks[c + 1].id;
            }
        }
        self.chunks[c].id
    }

    fn split_chunk(&mut self, c: usize) {
        let half = self.chunks[c].spans.len() / 2;
        let moved: Vec<Span> = self.chunks[c].spans.split_off(half);
        self.chunks[c].recount();
        let id = self.slot.len() as u32;
        let mut new = Chunk {
            id,
            spans: moved,
            ..Chunk::default()
        };
        new.recount();
        for s in &new.spans {
            self.cols[s.r as usize].fill_chunk(s.seq, s.len as usize, id);
        }
        self.chunks.insert(c + 1, new);
        self.slot.push(0);
        for (i, ch) in self.chunks.iter().enumerate().skip(c) {
            self.slot[ch.id as usize] = i as u32;
        }
        let (cc, before) = self.cursor.get();
        if cc > c {
            self.cursor.set((cc + 1, before));
        }
    }

    /// Splits the span at `pos` so that a span boundary falls at `pos.off`;
    /// returns the span index that now starts there (maybe past the end).
    fn split_at(&mut self, pos: Pos) -> (usize, usize) {
        if pos.off == 0 {
            return (pos.c, pos.s);
        }
        let right = self.chunks[pos.c].spans[pos.s].split(pos.off);
        self.chunks[pos.c].spans.insert(pos.s + 1, right);
        if self.chunks[pos.c].spans.len() > CHUNK {
            self.split_chunk(pos.c);
            let left_len = self.chunks[pos.c].spans.len();
            if pos.s + 1 >= left_len {
                return (pos.c + 1, pos.s + 1 - left_len);
            }
        }
        (pos.c, pos.s + 1)
    }

    /// The position right after `pos`, in document order.
    fn after(&self, pos: Pos) -> Pos {
        let span = &self.chunks[pos.c].spans[pos.s];
        if pos.off + 1 < span.len {
            return Pos {
                off: pos.off + 1,
                ..pos
            };
        }
        Pos {
            c: pos.c,
            s: pos.s + 1,
            off: 0,
        }
    }

    /// Normalizes a position past the end of a chunk to the next chunk's start.
    fn next_valid(&self, mut pos: Pos) -> Option<Pos> {
        while pos.s >= self.chunks.get(pos.c)?.spans.len() {
            pos = Pos {
                c: pos.c + 1,
                s: 0,
                off: 0,
            };
        }
        Some(pos)
    }

    /// Inserts `text` as `replica` before the character at `pos` (`pos == len` appends).
    pub fn insert(&mut self, replica: &ReplicaId, pos: usize, text: &str) -> Result<(), OpError> {
        self.insert_seqs(replica, pos, text).map(|_| ())
    }

    /// [`Rga::insert`], also returning the change as a delta: the new
    /// characters and their dots, found through the index (no walk of the text).
    pub fn insert_delta(
        &mut self,
        replica: &ReplicaId,
        pos: usize,
        text: &str,
    ) -> Result<Rga, OpError> {
        let Some((seq, n)) = self.insert_seqs(replica, pos, text)? else {
            return Ok(Rga::default());
        };
        let r = self.intern(replica);
        let mut context = CausalContext::new();
        context.add_range(replica, seq, seq + u64::from(n) - 1);
        Ok(self.delta_of(&[(r, seq, n)], context))
    }

    /// The spans holding characters `(r, seq..seq+len)` of each piece, cut to
    /// them, as a delta with `context`.
    fn delta_of(&self, pieces: &[(u32, u64, u32)], context: CausalContext) -> Rga {
        let spans = self.clip(pieces);
        Rga::from_spans(self.replicas.clone(), &self.cols, spans, context)
    }

    /// [`Rga::insert_delta`] as the delta's snapshot-format text (what
    /// `Object::write_state` gives for it), without building the delta.
    pub fn insert_delta_text(
        &mut self,
        replica: &ReplicaId,
        pos: usize,
        text: &str,
    ) -> Result<String, OpError> {
        let mut out = String::new();
        let Some((seq, n)) = self.insert_seqs(replica, pos, text)? else {
            Rga::default().write_text(&mut out);
            return Ok(out);
        };
        let r = self.intern(replica);
        let mut context = CausalContext::new();
        context.add_range(replica, seq, seq + u64::from(n) - 1);
        let spans = self.clip(&[(r, seq, n)]);
        self.write_spans_text(spans.iter(), &context, &mut out);
        Ok(out)
    }

    /// [`Rga::delete_delta`] as the delta's snapshot-format text.
    pub fn delete_delta_text(
        &mut self,
        replica: &ReplicaId,
        pos: usize,
        count: usize,
    ) -> Result<String, OpError> {
        let mut out = String::new();
        let Some((dot, pieces)) = self.delete_pieces(replica, pos, count)? else {
            Rga::default().write_text(&mut out);
            return Ok(out);
        };
        let mut context = CausalContext::new();
        context.add(&dot);
        let spans = self.clip(&pieces);
        self.write_spans_text(spans.iter(), &context, &mut out);
        Ok(out)
    }

    /// The spans holding characters `(r, seq..seq+len)` of each piece, cut
    /// to them.
    fn clip(&self, pieces: &[(u32, u64, u32)]) -> Vec<Span> {
        let mut spans = Vec::new();
        for &(r, mut seq, len) in pieces {
            let end = seq + u64::from(len);
            while seq < end {
                let p = self.locate_id(Id { r, seq });
                let mut part = self.chunks[p.c].spans[p.s];
                if p.off > 0 {
                    part = part.split(p.off);
                }
                let want = (end - seq).min(u64::from(part.len)) as u32;
                if want < part.len {
                    part.split(want);
                }
                seq += u64::from(part.len);
                spans.push(part);
            }
        }
        spans
    }

    /// Inserts and returns the first seq and the number of characters
    /// (`None`: the text was empty).
    fn insert_seqs(
        &mut self,
        replica: &ReplicaId,
        pos: usize,
        text: &str,
    ) -> Result<Option<(u64, u32)>, OpError> {
        let len = self.visible;
        if pos > len {
            return Err(OpError::PositionOutOfRange { pos, len });
        }
        let n = text.chars().count() as u32;
        if n == 0 {
            return Ok(None);
        }
        let seq = self.context.fresh(replica, u64::from(n))?;
        if self.max_lamport + u64::from(n) > MAX_SEQ {
            return Err(OpError::Exhausted {
                replica: replica.to_string(),
            });
        }
        let r = self.intern(replica);
        let lamport = self.max_lamport + 1;
        self.context.add_range(replica, seq, seq + u64::from(n) - 1);
        self.max_lamport += u64::from(n);

        let (origin, at) = if pos == 0 {
            (None, None)
        } else {
            let p = self.locate_visible(pos - 1);
            let span = self.chunks[p.c].spans[p.s];
            (
                Some(Id {
                    r: span.r,
                    seq: span.seq + u64::from(p.off),
                }),
                Some(p),
            )
        };
        // Typing on: the character before is the end of this replica's last run.
        if let Some(p) = at {
            let span = &mut self.chunks[p.c].spans[p.s];
            if p.off + 1 == span.len
                && span.r == r
                && span.del.is_none()
                && span.seq + u64::from(span.len) == seq
                && span.lamport + u64::from(span.len) == lamport
            {
                span.len += n;
                let chunk = &mut self.chunks[p.c];
                chunk.visible += n as usize;
                chunk.chars += n as usize;
                self.visible += n as usize;
                let id = chunk.id;
                self.record_iter(r, seq, n as usize, text.chars(), id);
                return Ok(Some((seq, n)));
            }
        }
        let span = Span {
            r,
            seq,
            lamport,
            len: n,
            origin,
            del: None,
        };
        // New characters have the greatest Lamport numbers: they go right after
        // their origin, before any sibling.
        let (c, s) = match at {
            None => (0, 0),
            Some(p) => self.split_at(self.after(p)),
        };
        let (c, s) = self.clamp_insert_point(c, s);
        self.record_iter(r, seq, n as usize, text.chars(), NOWHERE);
        let id = self.insert_span(c, s, span);
        self.cols[r as usize].fill_chunk(seq, n as usize, id);
        Ok(Some((seq, n)))
    }

    /// A chunk index may be one past the end after a split at the very end.
    fn clamp_insert_point(&self, c: usize, s: usize) -> (usize, usize) {
        if c >= self.chunks.len() && c > 0 {
            (c - 1, self.chunks[c - 1].spans.len())
        } else {
            (c, s)
        }
    }

    /// Appends `text` at the end.
    pub fn append(&mut self, replica: &ReplicaId, text: &str) -> Result<(), OpError> {
        self.insert(replica, self.visible, text)
    }

    /// Deletes `count` characters starting at `pos`, as one event of `replica`.
    pub fn delete(&mut self, replica: &ReplicaId, pos: usize, count: usize) -> Result<(), OpError> {
        self.delete_pieces(replica, pos, count).map(|_| ())
    }

    /// [`Rga::delete`], also returning the change as a delta: the deleted
    /// characters marked with the delete's dot.
    pub fn delete_delta(
        &mut self,
        replica: &ReplicaId,
        pos: usize,
        count: usize,
    ) -> Result<Rga, OpError> {
        let Some((dot, pieces)) = self.delete_pieces(replica, pos, count)? else {
            return Ok(Rga::default());
        };
        let mut context = CausalContext::new();
        context.add(&dot);
        Ok(self.delta_of(&pieces, context))
    }

    /// Deletes and returns the delete's dot and the characters it deleted
    /// (`None`: nothing to delete).
    #[allow(clippy::type_complexity)]
    fn delete_pieces(
        &mut self,
        replica: &ReplicaId,
        pos: usize,
        count: usize,
    ) -> Result<Option<(Dot, Vec<(u32, u64, u32)>)>, OpError> {
        let len = self.visible;
        let end = pos.saturating_add(count);
        if end > len {
            return Err(OpError::RangeOutOfRange { pos, end, len });
        }
        if count == 0 {
            return Ok(None);
        }
        let mut pieces = Vec::new();
        let dot = Dot::new(replica.clone(), self.context.fresh(replica, 1)?);
        let r = self.intern(replica);
        self.context.add(&dot);
        self.record(r, dot.seq, &['\0'], NOWHERE);
        let del = Del {
            r,
            seq: dot.seq,
            step: 0,
        };
        let mut left = count;
        let mut p = self.locate_visible(pos);
        loop {
            let (c, s) = self.split_at(p);
            let Some(Pos { c, s, .. }) = self.next_valid(Pos { c, s, off: 0 }) else {
                break;
            };
            let span = self.chunks[c].spans[s];
            if span.del.is_some() {
                p = self.after(Pos {
                    c,
                    s,
                    off: span.len - 1,
                });
                continue;
            }
            if span.len as usize > left {
                self.split_at(Pos {
                    c,
                    s,
                    off: left as u32,
                });
            }
            let (c, s) = self.refind(span.r, span.seq);
            let span = &mut self.chunks[c].spans[s];
            span.del = Some(del);
            pieces.push((span.r, span.seq, span.len));
            let n = span.len as usize;
            self.chunks[c].visible -= n;
            self.visible -= n;
            left -= n;
            let (cc, before) = self.cursor.get();
            if cc > c {
                self.cursor.set((cc, before - n));
            }
            let (c, s) = self.coalesce(c, s);
            if left == 0 {
                break;
            }
            let len = self.chunks[c].spans[s].len;
            p = self.after(Pos { c, s, off: len - 1 });
        }
        Ok(Some((dot, pieces)))
    }

    /// The span starting exactly at (r, seq).
    fn refind(&self, r: u32, seq: u64) -> (usize, usize) {
        let p = self.locate_id(Id { r, seq });
        debug_assert_eq!(p.off, 0);
        (p.c, p.s)
    }

    /// Joins the span at (c, s) with its neighbours in the chunk when they
    /// continue each other. Returns where the (joined) span is.
    fn coalesce(&mut self, c: usize, mut s: usize) -> (usize, usize) {
        let spans = &mut self.chunks[c].spans;
        if s + 1 < spans.len()
            && let Some(step) = spans[s].joinable(&spans[s + 1])
        {
            let next = spans.remove(s + 1);
            spans[s].len += next.len;
            if let Some(d) = &mut spans[s].del {
                d.step = step.unwrap_or(0);
            }
        }
        if s > 0
            && let Some(step) = spans[s - 1].joinable(&spans[s])
        {
            let cur = spans.remove(s);
            spans[s - 1].len += cur.len;
            if let Some(d) = &mut spans[s - 1].del {
                d.step = step.unwrap_or(0);
            }
            s -= 1;
        }
        (c, s)
    }

    /// The text without tombstones.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.visible);
        for chunk in &self.chunks {
            for s in chunk.spans.iter().filter(|s| s.del.is_none()) {
                out.extend(self.cols[s.r as usize].chars(s.seq, s.len as usize));
            }
        }
        out
    }

    /// Number of visible characters.
    pub fn len(&self) -> usize {
        self.visible
    }

    pub fn is_empty(&self) -> bool {
        self.visible == 0
    }

    /// A character `delta` places after (or deletes) that neither this text
    /// nor `delta` has, if any. Merging such a delta would have to guess where
    /// its text goes, so callers refuse it (it comes from a replica that
    /// assumed this one knew more than it does).
    pub fn missing_reference(&self, delta: &Rga) -> Option<Dot> {
        let known = |id: Id| {
            delta.has(id.r, id.seq)
                || self
                    .index_of
                    .get(&delta.replicas[id.r as usize])
                    .is_some_and(|&r| self.has(r, id.seq))
        };
        for s in delta.spans() {
            if let Some(o) = s.origin
                && !known(o)
            {
                return Some(delta.dot(o));
            }
        }
        None
    }

    /// Why merging `delta` would give a text no honest replica has, if it
    /// would (merge itself never fails; callers refuse such a delta): a
    /// character this text holds with other content, a new character outside
    /// the delta's context or whose dot is already another event here, one
    /// placed after a later character, or a delete whose dot is unseen or is
    /// a character. Work: one look per character of `delta`.
    pub fn check_merge(&self, delta: &Rga) -> Result<(), String> {
        for s in delta.spans() {
            let replica = &delta.replicas[s.r as usize];
            let mine = self.index_of.get(replica).copied();
            let col = &delta.cols[s.r as usize];
            for i in 0..s.len {
                let seq = s.seq + u64::from(i);
                let dot = Dot::new(replica.clone(), seq);
                let held = mine.is_some_and(|r| self.has(r, seq));
                if held {
                    let r = mine.expect("held");
                    let same_char = self.cols[r as usize].char_at(seq) == col.char_at(seq);
                    // Lamport and origin: once per run (the rest follow from it).
                    let same_place = i > 0 || {
                        let p = self.locate_id(Id { r, seq });
                        let span = &self.chunks[p.c].spans[p.s];
                        let lamport = span.lamport + u64::from(p.off);
                        let origin = if p.off == 0 {
                            span.origin.map(|o| self.dot(o))
                        } else {
                            Some(Dot::new(replica.clone(), seq - 1))
                        };
                        lamport == s.lamport && origin == s.origin.map(|o| delta.dot(o))
                    };
                    if !same_char || !same_place {
                        return Err(format!(
                            "character {dot} differs from the one held here: one event cannot be two characters"
                        ));
                    }
                } else {
                    if !delta.context.contains(&dot) {
                        return Err(format!(
                            "character {dot} is new here but outside the change's context"
                        ));
                    }
                    if self.context.contains(&dot) {
                        return Err(format!(
                            "character {dot} is new here, but {dot} is already another event here"
                        ));
                    }
                    if i == 0
                        && let Some(o) = s.origin
                        && !delta.has(o.r, o.seq)
                    {
                        let od = delta.dot(o);
                        if let Some(&or) = self.index_of.get(&od.replica)
                            && self.has(or, od.seq)
                        {
                            let p = self.locate_id(Id { r: or, seq: od.seq });
                            let ol = self.chunks[p.c].spans[p.s].lamport + u64::from(p.off);
                            if ol >= s.lamport {
                                return Err(format!(
                                    "character {dot} (lamport {}) follows {od} (lamport {ol}): it must come after what it follows",
                                    s.lamport
                                ));
                            }
                        }
                    }
                }
                if let Some(d) = s.del {
                    let del = delta.dot(Id {
                        r: d.r,
                        seq: d.at(i),
                    });
                    if !delta.context.contains(&del) && !self.context.contains(&del) {
                        return Err(format!("delete {del} of {dot} is an event nobody has seen"));
                    }
                    let is_char = |rga: &Rga| {
                        rga.index_of
                            .get(&del.replica)
                            .is_some_and(|&r| rga.has(r, del.seq))
                    };
                    if is_char(self) || is_char(delta) {
                        return Err(format!("delete {del} of {dot} is also a character"));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Splits into deltas of about `budget` bytes each. The characters go
    /// in Lamport order, so every character's origin is in an earlier part,
    /// the same one, or already at a receiver this text is a delta for: each
    /// part merges on its own as it arrives, in order, and all of them give
    /// `self`. A part's context is the dots it carries (characters and their
    /// deletes); the rest of the context (a second delete of a character)
    /// goes with the last part.
    pub fn parts(&self, budget: usize) -> Vec<Rga> {
        let weight = |s: &Span| {
            let chars = self.cols[s.r as usize].chars(s.seq, s.len as usize);
            chars.iter().map(|c| c.len_utf8()).sum::<usize>() + 40
        };
        // Spans in document order, cut so that none is over the budget.
        let mut spans: Vec<Span> = Vec::new();
        for s in self.spans() {
            let mut s = *s;
            let w = weight(&s);
            if w > budget && s.len > 1 {
                let per = (budget.saturating_sub(40) * s.len as usize / (w - 40)).max(1);
                let per = u32::try_from(per).unwrap_or(u32::MAX);
                while s.len > per {
                    let right = s.split(per);
                    spans.push(s);
                    s = right;
                }
            }
            spans.push(s);
        }
        // Lamport order decides the part of each span.
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&spans[a], &spans[b]);
            (x.lamport, &self.replicas[x.r as usize], x.seq).cmp(&(
                y.lamport,
                &self.replicas[y.r as usize],
                y.seq,
            ))
        });
        let mut part_of = vec![0usize; spans.len()];
        let (mut part, mut size) = (0, 0);
        for i in order {
            let w = weight(&spans[i]);
            if size > 0 && size + w > budget {
                part += 1;
                size = 0;
            }
            size += w;
            part_of[i] = part;
        }
        let count = part + 1;
        let mut groups: Vec<Vec<Span>> = vec![Vec::new(); count];
        let mut contexts = vec![CausalContext::new(); count];
        for (s, p) in spans.into_iter().zip(part_of) {
            let r = &self.replicas[s.r as usize];
            let last = s.seq + u64::from(s.len) - 1;
            contexts[p].add_range(r, s.seq, last);
            if let Some(d) = s.del {
                let dr = &self.replicas[d.r as usize];
                let (a, b) = (d.seq, d.at(s.len - 1));
                contexts[p].add_range(dr, a.min(b), a.max(b));
            }
            groups[p].push(s);
        }
        let mut carried = CausalContext::new();
        for cc in &contexts {
            carried.union(cc);
        }
        contexts[count - 1].union(&self.context.subtract(&carried));
        groups
            .into_iter()
            .zip(contexts)
            .map(|(g, cc)| Rga::from_spans(self.replicas.clone(), &self.cols, g, cc))
            .collect()
    }

    fn spans(&self) -> impl Iterator<Item = &Span> + Clone {
        self.chunks.iter().flat_map(|c| c.spans.iter())
    }

    fn elems_of(&self, s: &Span) -> impl Iterator<Item = Elem> + '_ {
        let s = *s;
        (0..s.len).map(move |i| {
            let seq = s.seq + u64::from(i);
            Elem {
                id: self.dot(Id { r: s.r, seq }),
                lamport: s.lamport + u64::from(i),
                origin: if i == 0 {
                    s.origin.map(|o| self.dot(o))
                } else {
                    Some(self.dot(Id {
                        r: s.r,
                        seq: seq - 1,
                    }))
                },
                ch: self.cols[s.r as usize].char_at(seq),
                deleted: s.del.map(|d| {
                    self.dot(Id {
                        r: d.r,
                        seq: d.at(i),
                    })
                }),
            }
        })
    }

    /// Every character in document order, tombstones included.
    pub fn elements(&self) -> Vec<Elem> {
        self.spans()
            .flat_map(|s| self.elems_of(s).collect::<Vec<_>>())
            .collect()
    }

    /// The characters grouped into runs: same replica, consecutive seqs and
    /// Lamport numbers, each chained to the one before.
    pub fn runs(&self) -> Vec<Run> {
        self.joined_spans()
            .into_iter()
            .map(|(_, parts)| Run {
                elems: parts
                    .iter()
                    .flat_map(|s| self.elems_of(s).collect::<Vec<_>>())
                    .collect(),
            })
            .collect()
    }

    /// Spans grouped into maximal chains (a chain may hold spans that differ
    /// only in their deletes).
    fn joined_spans(&self) -> Vec<(usize, Vec<Span>)> {
        let mut out: Vec<(usize, Vec<Span>)> = Vec::new();
        for (i, s) in self.spans().enumerate() {
            if let Some((_, group)) = out.last_mut() {
                let prev = group.last().expect("groups are never empty");
                let chained = s.r == prev.r
                    && s.seq == prev.seq + u64::from(prev.len)
                    && s.lamport == prev.lamport + u64::from(prev.len)
                    && s.origin == Some(prev.last());
                if chained {
                    group.push(*s);
                    continue;
                }
            }
            out.push((i, vec![*s]));
        }
        out
    }

    /// Places a span of new characters after its origin (or at the start),
    /// skipping the characters that sort before it. Returns its chunk id.
    fn integrate(&mut self, span: Span) -> u32 {
        let start = match span.origin {
            None => Pos { c: 0, s: 0, off: 0 },
            Some(o) => self.after(self.locate_id(o)),
        };
        let mut pos = start;
        let key_r = self.replicas[span.r as usize].clone();
        let new_key = (span.lamport, &key_r, span.seq);
        // Skip characters with a greater key; a span's later characters have
        // even greater keys, so a skipped character takes its span's rest along.
        while let Some(p) = self.next_valid(pos) {
            let s = &self.chunks[p.c].spans[p.s];
            if self.key(s, p.off) > new_key {
                pos = Pos {
                    c: p.c,
                    s: p.s + 1,
                    off: 0,
                };
            } else {
                pos = p;
                break;
            }
        }
        let (c, s) = if pos.c >= self.chunks.len() {
            (
                self.chunks.len().saturating_sub(1),
                self.chunks.last().map_or(0, |c| c.spans.len()),
            )
        } else {
            self.split_at(pos)
        };
        let (c, s) = self.clamp_insert_point(c, s);
        self.insert_span(c, s, span)
    }

    /// Applies another replica's delete dots to characters `seq..seq+len` of
    /// replica `r`, which are here: a character keeps the least delete dot.
    fn merge_deletes(&mut self, r: u32, seq: u64, len: u32, del: Del) {
        let mut i = 0;
        while i < len {
            let id = Id {
                r,
                seq: seq + u64::from(i),
            };
            let p = self.locate_id(id);
            let span = self.chunks[p.c].spans[p.s];
            let take = (span.len - p.off).min(len - i);
            let theirs = Del {
                seq: del.at(i),
                ..del
            };
            let dot_of = |d: &Del, k: u32| (d.r, d.at(k));
            let replace = match span.del {
                None => true,
                Some(mine) => {
                    // Compare dot by dot: keep the least (by replica id, then seq).
                    (0..take).any(|k| {
                        let (mr, ms) = dot_of(&mine, p.off + k);
                        let (tr, ts) = dot_of(&theirs, k);
                        (&self.replicas[tr as usize], ts) < (&self.replicas[mr as usize], ms)
                    })
                }
            };
            if replace {
                // Mixed cases are rare (two replicas deleting the same characters):
                // go character by character then.
                let uniform = span.del.is_none_or(|mine| {
                    (0..take).all(|k| {
                        let (mr, ms) = dot_of(&mine, p.off + k);
                        let (tr, ts) = dot_of(&theirs, k);
                        (&self.replicas[tr as usize], ts) < (&self.replicas[mr as usize], ms)
                    })
                });
                let take = if uniform { take } else { 1 };
                let (c, s) = self.split_at(p);
                let (c, s) = self
                    .next_valid(Pos { c, s, off: 0 })
                    .map(|p| (p.c, p.s))
                    .expect("the character is here");
                if self.chunks[c].spans[s].len > take {
                    self.split_at(Pos { c, s, off: take });
                }
                let (c, s) = self.refind(r, id.seq);
                let target = &mut self.chunks[c].spans[s];
                let was_visible = target.del.is_none();
                target.del = Some(Del {
                    step: if take == 1 { 0 } else { theirs.step },
                    ..theirs
                });
                if was_visible {
                    self.chunks[c].visible -= take as usize;
                    self.visible -= take as usize;
                    let (cc, before) = self.cursor.get();
                    if cc > c {
                        self.cursor.set((cc, before - take as usize));
                    }
                }
                self.coalesce(c, s);
                i += take;
            } else {
                i += take;
            }
        }
    }

    fn rebuild_slots(&mut self) {
        self.slot = vec![
            0;
            self.chunks
                .iter()
                .map(|c| c.id as usize + 1)
                .max()
                .unwrap_or(0)
        ];
        for (i, c) in self.chunks.iter().enumerate() {
            self.slot[c.id as usize] = i as u32;
        }
    }

    /// Builds from spans in document order (deltas), copying their
    /// characters from `source` (only theirs: a delta holds what it carries).
    fn from_spans(
        replicas: Vec<ReplicaId>,
        source: &[Column],
        spans: Vec<Span>,
        context: CausalContext,
    ) -> Rga {
        let mut rga = Rga {
            index_of: replicas
                .iter()
                .enumerate()
                .map(|(i, r)| (r.clone(), i as u32))
                .collect(),
            cols: vec![Column::default(); replicas.len()],
            replicas,
            context,
            ..Rga::default()
        };
        for (i, group) in spans.chunks(CHUNK / 2).enumerate() {
            let mut chunk = Chunk {
                id: i as u32,
                spans: group.to_vec(),
                ..Chunk::default()
            };
            chunk.recount();
            for s in &chunk.spans {
                let n = s.len as usize;
                let chars = source[s.r as usize].chars(s.seq, n).iter().copied();
                rga.cols[s.r as usize].record(s.seq, n, chars, i as u32);
            }
            rga.visible += chunk.visible;
            rga.max_lamport = rga.max_lamport.max(
                chunk
                    .spans
                    .iter()
                    .map(|s| s.lamport + u64::from(s.len) - 1)
                    .max()
                    .unwrap_or(0),
            );
            rga.chunks.push(chunk);
        }
        rga.rebuild_slots();
        rga
    }
}

impl Crdt for Rga {
    fn merge(&mut self, other: &Self) {
        if self.chunks.is_empty() && self.context.is_empty() {
            *self = other.clone();
            return;
        }
        let map: Vec<u32> = other.replicas.iter().map(|r| self.intern(r)).collect();
        let remap = |id: Id| Id {
            r: map[id.r as usize],
            seq: id.seq,
        };
        // In Lamport order, every origin is here before what follows it, even
        // when `other` is a delta whose own order is only partial.
        let mut ordered: Vec<&Span> = other.spans().collect();
        ordered.sort_by(|a, b| {
            (a.lamport, &other.replicas[a.r as usize], a.seq).cmp(&(
                b.lamport,
                &other.replicas[b.r as usize],
                b.seq,
            ))
        });
        for ospan in ordered {
            let r = map[ospan.r as usize];
            let mut i = 0;
            while i < ospan.len {
                let present = self.has(r, ospan.seq + u64::from(i));
                let mut j = i + 1;
                while j < ospan.len && self.has(r, ospan.seq + u64::from(j)) == present {
                    j += 1;
                }
                let part_seq = ospan.seq + u64::from(i);
                let del = ospan.del.map(|d| Del {
                    r: map[d.r as usize],
                    seq: d.at(i),
                    step: d.step,
                });
                if present {
                    if let Some(d) = del {
                        self.merge_deletes(r, part_seq, j - i, d);
                    }
                } else {
                    let span = Span {
                        r,
                        seq: part_seq,
                        lamport: ospan.lamport + u64::from(i),
                        len: j - i,
                        origin: if i == 0 {
                            ospan.origin.map(remap)
                        } else {
                            Some(Id {
                                r,
                                seq: part_seq - 1,
                            })
                        },
                        del,
                    };
                    let chars = other.cols[ospan.r as usize].chars(part_seq, span.len as usize);
                    self.cols[r as usize].record(
                        part_seq,
                        chars.len(),
                        chars.iter().copied(),
                        NOWHERE,
                    );
                    let chunk = self.integrate(span);
                    self.cols[r as usize].fill_chunk(part_seq, span.len as usize, chunk);
                    self.max_lamport = self.max_lamport.max(span.lamport + u64::from(span.len) - 1);
                }
                i = j;
            }
        }
        self.context.union(&other.context);
        self.max_lamport = self.max_lamport.max(other.max_lamport);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    /// New characters and new deletes since `vv`. Merge it only into a replica
    /// at or after `vv`: it leaves out the characters `vv` already covers.
    fn delta_since(&self, vv: &VersionVector) -> Self {
        let covers = |r: u32, seq: u64| vv.contains(&self.dot(Id { r, seq }));
        let mut spans = Vec::new();
        for s in self.spans() {
            // Cut the span where "needed" changes.
            let needed = |i: u32| {
                !covers(s.r, s.seq + u64::from(i)) || s.del.is_some_and(|d| !covers(d.r, d.at(i)))
            };
            let mut i = 0;
            while i < s.len {
                let want = needed(i);
                let mut j = i + 1;
                while j < s.len && needed(j) == want {
                    j += 1;
                }
                if want {
                    let mut part = *s;
                    if i > 0 {
                        part = part.split(i);
                    }
                    if j - i < part.len {
                        part.split(j - i);
                    }
                    spans.push(part);
                }
                i = j;
            }
        }
        Rga::from_spans(
            self.replicas.clone(),
            &self.cols,
            spans,
            self.context.minus(vv),
        )
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.context.covered_by(vv)
    }

    fn value_json(&self) -> Value {
        Value::String(self.text())
    }
}

/// One insert run in creation order, for the snapshot.
struct InsertRun {
    seq: u64,
    lamport: u64,
    len: u32,
    origin: Option<Id>,
}

impl Rga {
    /// Each replica's characters as runs in seq order (creation order).
    fn insert_runs(&self) -> Vec<Vec<InsertRun>> {
        self.insert_runs_of(self.spans())
    }

    /// [`Rga::insert_runs`] of some of this text's spans.
    fn insert_runs_of<'s>(&self, spans: impl Iterator<Item = &'s Span>) -> Vec<Vec<InsertRun>> {
        let mut per: Vec<Vec<InsertRun>> = (0..self.replicas.len()).map(|_| Vec::new()).collect();
        for s in spans {
            per[s.r as usize].push(InsertRun {
                seq: s.seq,
                lamport: s.lamport,
                len: s.len,
                origin: s.origin,
            });
        }
        for (r, list) in per.iter_mut().enumerate() {
            list.sort_unstable_by_key(|x| x.seq);
            let mut joined: Vec<InsertRun> = Vec::with_capacity(list.len());
            for x in list.drain(..) {
                if let Some(p) = joined.last_mut() {
                    let last = Id {
                        r: r as u32,
                        seq: p.seq + u64::from(p.len) - 1,
                    };
                    if x.seq == last.seq + 1
                        && x.lamport == p.lamport + u64::from(p.len)
                        && x.origin == Some(last)
                    {
                        p.len += x.len;
                        continue;
                    }
                }
                joined.push(x);
            }
            *list = joined;
        }
        per
    }

    /// Every (delete dot, deleted character) pair, per deleting replica,
    /// run-length encoded as (dot, dot step, target, target step, count).
    fn delete_runs(&self) -> Vec<Vec<[i128; 6]>> {
        self.delete_runs_of(self.spans())
    }

    /// [`Rga::delete_runs`] of some of this text's spans.
    fn delete_runs_of<'s>(&self, spans: impl Iterator<Item = &'s Span>) -> Vec<Vec<[i128; 6]>> {
        let mut pairs: Vec<Vec<(u64, u32, u64)>> =
            (0..self.replicas.len()).map(|_| Vec::new()).collect();
        for s in spans {
            if let Some(d) = s.del {
                for i in 0..s.len {
                    pairs[d.r as usize].push((d.at(i), s.r, s.seq + u64::from(i)));
                }
            }
        }
        pairs
            .into_iter()
            .map(|mut list| {
                // By replica id, not index: indexes depend on arrival order.
                list.sort_unstable_by(|a, b| {
                    (a.0, &self.replicas[a.1 as usize], a.2).cmp(&(
                        b.0,
                        &self.replicas[b.1 as usize],
                        b.2,
                    ))
                });
                // [dot, dot_step, target_replica, target_seq, target_step, count]
                let mut out: Vec<[i128; 6]> = Vec::new();
                for (dot, tr, tseq) in list {
                    if let Some(last) = out.last_mut() {
                        let [d0, ds, r0, t0, ts, n] = *last;
                        let (dot, tr, tseq) = (i128::from(dot), i128::from(tr), i128::from(tseq));
                        if r0 == tr {
                            if n == 1 {
                                let (nds, nts) = (dot - d0, tseq - t0);
                                if (0..=1).contains(&nds) && (-1..=1).contains(&nts) && nts != 0 {
                                    *last = [d0, nds, r0, t0, nts, 2];
                                    continue;
                                }
                            } else if dot == d0 + ds * n && tseq == t0 + ts * n {
                                last[5] += 1;
                                continue;
                            }
                        }
                    }
                    out.push([i128::from(dot), 0, i128::from(tr), i128::from(tseq), 1, 1]);
                }
                out
            })
            .collect()
    }
}

impl Rga {
    /// [`Codec::encode`]'s text, written straight (a history row per batch
    /// line is written so): keys and replicas in order, as serde writes them.
    pub(crate) fn write_text(&self, out: &mut String) {
        self.write_spans_text(self.spans(), &self.context, out);
    }

    /// The text [`Rga::write_text`] gives for an `Rga` of `spans` (some of
    /// this one's) and `context`, without building it: a local change's
    /// delta, written as a history row.
    fn write_spans_text<'s>(
        &self,
        spans: impl Iterator<Item = &'s Span> + Clone,
        context: &CausalContext,
        out: &mut String,
    ) {
        use crate::codec::push_json_str;
        use std::fmt::Write as _;
        let runs = self.insert_runs_of(spans.clone());
        let dels = self.delete_runs_of(spans);
        let mut order: Vec<usize> = (0..self.replicas.len()).collect();
        order.sort_by(|a, b| self.replicas[*a].as_str().cmp(self.replicas[*b].as_str()));
        let origin_of = |out: &mut String, r: usize, seq: u64| {
            out.push('[');
            push_json_str(out, self.replicas[r].as_str());
            let _ = write!(out, ",{seq}]");
        };
        out.push_str("{\"context\":");
        crate::codec::context_text(context, out);
        out.push_str(",\"deletes\":");
        self.per_replica(out, &order, &dels, |out, r, list| {
            out.push('[');
            let mut prev = 0i128;
            for (i, [dot, ds, tr, tseq, ts, n]) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{},{},", (dot - prev) as u64, *ds as u64);
                if *tr as usize == r {
                    let _ = write!(out, "{}", *tseq as u64);
                } else {
                    origin_of(out, *tr as usize, *tseq as u64);
                }
                let _ = write!(out, ",{},{}", *ts as i64, *n as u64);
                prev = dot + ds * (n - 1);
            }
            out.push(']');
        });
        out.push_str(",\"inserts\":");
        self.per_replica(out, &order, &runs, |out, r, list| {
            out.push('[');
            let (mut prev_end, mut prev_lamport_end) = (0u64, 0u64);
            for (i, x) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "{},{},{},",
                    x.seq - prev_end - 1,
                    x.len,
                    x.lamport - prev_lamport_end - 1
                );
                match x.origin {
                    None => out.push_str("null"),
                    Some(o) if o.r as usize == r && o.seq < x.seq => {
                        let _ = write!(out, "{}", x.seq - o.seq);
                    }
                    Some(o) => origin_of(out, o.r as usize, o.seq),
                }
                prev_end = x.seq + u64::from(x.len) - 1;
                prev_lamport_end = x.lamport + u64::from(x.len) - 1;
            }
            out.push(']');
        });
        out.push_str(",\"text\":");
        let mut chars = String::new();
        self.per_replica(out, &order, &runs, |out, r, list| {
            chars.clear();
            for x in list {
                chars.extend(self.cols[r].chars(x.seq, x.len as usize));
            }
            push_json_str(out, &chars);
        });
        out.push('}');
    }

    /// `{"<replica>": <item>, ...}` for the replicas (in `order`) whose list
    /// is not empty, as serde writes a map.
    fn per_replica<T>(
        &self,
        out: &mut String,
        order: &[usize],
        lists: &[Vec<T>],
        mut item: impl FnMut(&mut String, usize, &[T]),
    ) {
        out.push('{');
        let mut first = true;
        for &r in order {
            let list = &lists[r];
            if list.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            crate::codec::push_json_str(out, self.replicas[r].as_str());
            out.push(':');
            item(out, r, list);
        }
        out.push('}');
    }
}

impl Codec for Rga {
    /// Creation order, compactly: per replica its insert runs as flat numbers
    /// `[seq gap, length, lamport gap, origin]...` and its text, and its
    /// deletes as flat numbers `[dot gap, dot step, target, target step, count]...`
    /// (see docs/snapshot-format.md). Loading replays the runs in Lamport order.
    fn encode(&self) -> Value {
        let runs = self.insert_runs();
        let dels = self.delete_runs();
        let mut inserts = serde_json::Map::new();
        let mut text = serde_json::Map::new();
        let mut deletes = serde_json::Map::new();
        for (r, list) in runs.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let name = self.replicas[r].to_string();
            let mut nums: Vec<Value> = Vec::with_capacity(list.len() * 4);
            let mut chars = String::new();
            let (mut prev_end, mut prev_lamport_end) = (0u64, 0u64);
            for x in list {
                nums.push(Value::from(x.seq - prev_end - 1));
                nums.push(Value::from(x.len));
                nums.push(Value::from(x.lamport - prev_lamport_end - 1));
                nums.push(match x.origin {
                    None => Value::Null,
                    Some(o) if o.r as usize == r && o.seq < x.seq => Value::from(x.seq - o.seq),
                    Some(o) => json!([self.replicas[o.r as usize].as_str(), o.seq]),
                });
                chars.extend(self.cols[r].chars(x.seq, x.len as usize));
                prev_end = x.seq + u64::from(x.len) - 1;
                prev_lamport_end = x.lamport + u64::from(x.len) - 1;
            }
            inserts.insert(name.clone(), Value::Array(nums));
            text.insert(name, Value::String(chars));
        }
        for (r, list) in dels.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let mut nums: Vec<Value> = Vec::with_capacity(list.len() * 5);
            let mut prev = 0i128;
            for [dot, ds, tr, tseq, ts, n] in list {
                nums.push(Value::from((dot - prev) as u64));
                nums.push(Value::from(*ds as u64));
                nums.push(if *tr as usize == r {
                    Value::from(*tseq as u64)
                } else {
                    json!([self.replicas[*tr as usize].as_str(), *tseq as u64])
                });
                nums.push(Value::from(*ts as i64));
                nums.push(Value::from(*n as u64));
                prev = dot + ds * (n - 1);
            }
            deletes.insert(self.replicas[r].to_string(), Value::Array(nums));
        }
        json!({"context": context_json(&self.context), "inserts": inserts, "text": text, "deletes": deletes})
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["context", "inserts", "text", "deletes"], &[])?;
        let context = at.field("context")?.context()?;
        let mut rga = Rga {
            context: CausalContext::new(),
            ..Rga::default()
        };
        // Every replica the context knows (no room is made for its seqs:
        // slots are made for the characters that are here).
        for (replica, _) in context.iter() {
            rga.intern(replica);
        }
        let inserts = at.field("inserts")?;
        let texts = at.field("text")?;
        // Numbers are read straight from the arrays; a path is built only for an error.
        let item = |list: &At<'_>, i: usize, expected: &str| SnapshotError::Shape {
            path: format!("{}[{i}]", list.path),
            expected: expected.into(),
            found: crate::codec::describe(&list.value[i]),
        };
        let causal = |list: &At<'_>, i: usize, detail: String| SnapshotError::Causal {
            path: format!("{}[{i}]", list.path),
            detail,
        };
        let mut all: Vec<(Span, String, usize)> = Vec::new();
        for (name, list) in inserts.entries()? {
            let replica = inserts.replica_key(name)?;
            let r = match rga.index_of.get(&replica) {
                Some(&r) => r,
                // A delta carries old characters of replicas it has no new
                // events of (to deliver their deletes).
                None if at.delta => rga.intern(&replica),
                None => return Err(list.causal(format!("replica {replica} is not in the context"))),
            };
            let text_at = texts.field(name)?;
            let chars: Vec<char> = text_at.str()?.chars().collect();
            let items = list
                .value
                .as_array()
                .ok_or_else(|| list.shape("an array"))?;
            if items.len() % 4 != 0 {
                return Err(list.shape("groups of 4: [seq gap, length, lamport gap, origin]"));
            }
            let num = |i: usize| {
                items[i]
                    .as_u64()
                    .ok_or_else(|| item(&list, i, "a non-negative integer"))
            };
            let (mut prev_end, mut prev_lamport_end, mut used) = (0u64, 0u64, 0usize);
            for g in (0..items.len()).step_by(4) {
                let seq = prev_end
                    .checked_add(num(g)?)
                    .filter(|&s| s < MAX_SEQ)
                    .ok_or_else(|| item(&list, g, "a seq gap within 2^53"))?
                    + 1;
                let len = num(g + 1)?;
                if len == 0 || len > u64::from(u32::MAX) {
                    return Err(item(&list, g + 1, "a length from 1 to 2^32-1"));
                }
                let lamport = prev_lamport_end
                    .checked_add(num(g + 2)?)
                    .filter(|&l| l < MAX_SEQ)
                    .ok_or_else(|| item(&list, g + 2, "a lamport gap within 2^53"))?
                    + 1;
                if lamport.checked_add(len - 1).is_none_or(|l| l > MAX_SEQ) {
                    return Err(item(&list, g + 2, "lamport numbers within 2^53"));
                }
                let origin = match &items[g + 3] {
                    Value::Null => None,
                    Value::Number(n) => match n.as_u64() {
                        Some(back) if back > 0 && back < seq => Some(Id { r, seq: seq - back }),
                        _ => {
                            return Err(item(
                                &list,
                                g + 3,
                                "a positive distance back to an earlier character",
                            ));
                        }
                    },
                    _ => {
                        let d = list.child(&items[g + 3], &format!("[{}]", g + 3)).dot()?;
                        if d.replica == replica && d.seq >= seq {
                            return Err(causal(
                                &list,
                                g + 3,
                                format!("origin {d} is not an earlier character"),
                            ));
                        }
                        let or = match rga.index_of.get(&d.replica) {
                            Some(&or) => or,
                            // A delta may start after a character of a replica it
                            // says nothing else about.
                            None if at.delta => rga.intern(&d.replica),
                            None => {
                                return Err(causal(
                                    &list,
                                    g + 3,
                                    format!("origin {d} is not in the context"),
                                ));
                            }
                        };
                        Some(Id { r: or, seq: d.seq })
                    }
                };
                let end = seq
                    .checked_add(len - 1)
                    .filter(|&e| e <= MAX_SEQ)
                    .ok_or_else(|| item(&list, g + 1, "seqs within 2^53"))?;
                if !at.delta && !context.contains_range(&replica, seq, end) {
                    return Err(causal(
                        &list,
                        g,
                        format!("characters {replica}:{seq}..{end} are not in the context"),
                    ));
                }
                if used + len as usize > chars.len() {
                    return Err(
                        text_at.shape(&format!("at least {} characters", used + len as usize))
                    );
                }
                let run = &chars[used..used + len as usize];
                rga.cols[r as usize].record(seq, run.len(), run.iter().copied(), NOWHERE);
                used += len as usize;
                all.push((
                    Span {
                        r,
                        seq,
                        lamport,
                        len: len as u32,
                        origin,
                        del: None,
                    },
                    list.path.clone(),
                    g,
                ));
                prev_end = end;
                prev_lamport_end = lamport + len - 1;
            }
            if used != chars.len() {
                return Err(text_at.shape(&format!(
                    "exactly {used} characters, one per inserted character"
                )));
            }
        }
        // Every character of the state is pending until placed: an origin
        // that is pending when its follower's turn comes has the greater
        // Lamport number (a delta may only refer *outside* itself).
        for (span, _, _) in &all {
            rga.cols[span.r as usize].fill_chunk(span.seq, span.len as usize, PENDING);
        }
        // Replay in Lamport order: every origin comes before what follows it.
        all.sort_by(|a, b| {
            (a.0.lamport, &rga.replicas[a.0.r as usize], a.0.seq).cmp(&(
                b.0.lamport,
                &rga.replicas[b.0.r as usize],
                b.0.seq,
            ))
        });
        for (span, path, g) in all {
            let at_run = |detail: String| SnapshotError::Causal {
                path: format!("{path}[{g}]"),
                detail,
            };
            let mut detached = false;
            if let Some(o) = span.origin {
                let origin_chunk = rga.cols[o.r as usize].chunk(o.seq);
                if origin_chunk == PENDING {
                    return Err(at_run(format!(
                        "origin {} comes after the character (its lamport is greater)",
                        rga.dot(o)
                    )));
                }
                if origin_chunk == NOWHERE {
                    if !at.delta {
                        return Err(at_run(format!(
                            "origin {} is not an earlier character",
                            rga.dot(o)
                        )));
                    }
                    // A delta refers to characters the receiver has: keep the run
                    // aside; merging places it by its origin.
                    detached = true;
                } else {
                    let p = rga.locate_id(o);
                    let ol = rga.chunks[p.c].spans[p.s].lamport + u64::from(p.off);
                    if ol >= span.lamport {
                        return Err(at_run(format!(
                            "lamport {} is not greater than its origin's ({ol})",
                            span.lamport
                        )));
                    }
                }
            }
            if rga.cols[span.r as usize].chunk(span.seq) != PENDING {
                return Err(at_run(format!(
                    "character {} appears twice",
                    rga.dot(Id {
                        r: span.r,
                        seq: span.seq
                    })
                )));
            }
            // Mark the seqs as present before placing (the index needs the slots).
            let n = span.len as usize;
            rga.cols[span.r as usize].fill_chunk(span.seq, n, 0);
            let chunk = if detached {
                let c = rga.chunks.len().saturating_sub(1);
                let s = rga.chunks.last().map_or(0, |ch| ch.spans.len());
                rga.insert_span(c, s, span)
            } else {
                rga.integrate(span)
            };
            rga.cols[span.r as usize].fill_chunk(span.seq, n, chunk);
            rga.max_lamport = rga.max_lamport.max(span.lamport + u64::from(span.len) - 1);
        }
        let deletes = at.field("deletes")?;
        for (name, list) in deletes.entries()? {
            let replica = deletes.replica_key(name)?;
            let dr = match rga.index_of.get(&replica) {
                Some(&dr) => dr,
                None if at.delta => rga.intern(&replica),
                None => return Err(list.causal(format!("replica {replica} is not in the context"))),
            };
            let items = list
                .value
                .as_array()
                .ok_or_else(|| list.shape("an array"))?;
            if items.len() % 5 != 0 {
                return Err(
                    list.shape("groups of 5: [dot gap, dot step, target, target step, count]")
                );
            }
            let num = |i: usize| {
                items[i]
                    .as_u64()
                    .ok_or_else(|| item(&list, i, "a non-negative integer"))
            };
            let mut prev = 0u64;
            for g in (0..items.len()).step_by(5) {
                let dot = prev
                    .checked_add(num(g)?)
                    .filter(|&d| d > 0)
                    .ok_or_else(|| item(&list, g, "a gap to a dot of at least 1"))?;
                let ds = match num(g + 1)? {
                    v @ 0..=1 => v,
                    _ => return Err(item(&list, g + 1, "a dot step of 0 or 1")),
                };
                let (tr, tseq) = if let Some(t) = items[g + 2].as_u64() {
                    (dr, t)
                } else {
                    let d = list.child(&items[g + 2], &format!("[{}]", g + 2)).dot()?;
                    let tr = *rga
                        .index_of
                        .get(&d.replica)
                        .ok_or_else(|| causal(&list, g + 2, format!("target {d} is not here")))?;
                    (tr, d.seq)
                };
                let ts = match items[g + 3].as_i64() {
                    Some(v @ (-1 | 1)) => v,
                    _ => return Err(item(&list, g + 3, "a target step of -1 or 1")),
                };
                let n = num(g + 4)?;
                if n == 0 || n > u64::from(u32::MAX) {
                    return Err(item(&list, g + 4, "a count from 1 to 2^32-1"));
                }
                let last_dot = (ds * (n - 1))
                    .checked_add(dot)
                    .filter(|&d| d <= MAX_SEQ)
                    .ok_or_else(|| item(&list, g, "delete dots within 2^53"))?;
                if tseq > MAX_SEQ {
                    return Err(item(&list, g + 2, "a target seq within 2^53"));
                }
                if !at.delta && !context.contains_range(&replica, dot, last_dot) {
                    return Err(causal(
                        &list,
                        g,
                        format!("deletes {replica}:{dot}..{last_dot} are not in the context"),
                    ));
                }
                let last_t = tseq as i128 + i128::from(ts) * (n as i128 - 1);
                let (lo, first_dot, step) = if ts == 1 {
                    (tseq, dot, ds as i8)
                } else {
                    (last_t.max(0) as u64, last_dot, -(ds as i8))
                };
                if last_t < 1 || tseq == 0 || (0..n).any(|k| !rga.has(tr, lo + k)) {
                    return Err(causal(
                        &list,
                        g + 2,
                        "a deleted character is not in the text".into(),
                    ));
                }
                // (After the targets: n is then bounded by the characters here.)
                if (dot..=last_dot).any(|d| rga.has(dr, d)) {
                    return Err(causal(
                        &list,
                        g,
                        format!("a delete {replica}:{dot}..{last_dot} is also a character"),
                    ));
                }
                // As an ascending target range: dots run the other way for ts = -1.
                rga.merge_deletes(
                    tr,
                    lo,
                    n as u32,
                    Del {
                        r: dr,
                        seq: first_dot,
                        step,
                    },
                );
                prev = last_dot;
            }
        }
        rga.context = context;
        Ok(rga)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    /// Internal consistency: cached lengths, the chunk index, the slots.
    fn check(rga: &Rga) {
        let mut text = String::new();
        rga.write_text(&mut text);
        assert_eq!(
            text,
            rga.encode().to_string(),
            "write_text differs from encode"
        );
        let mut visible = 0;
        for (i, c) in rga.chunks.iter().enumerate() {
            assert_eq!(rga.slot[c.id as usize] as usize, i);
            assert_eq!(c.visible, c.spans.iter().map(Span::visible).sum::<usize>());
            assert_eq!(
                c.chars,
                c.spans.iter().map(|s| s.len as usize).sum::<usize>()
            );
            for s in &c.spans {
                assert!(s.len > 0);
                for k in 0..s.len {
                    assert_eq!(rga.cols[s.r as usize].chunk(s.seq + u64::from(k)), c.id);
                }
            }
            visible += c.visible;
        }
        assert_eq!(visible, rga.visible);
        assert_eq!(rga.text().chars().count(), rga.visible);
    }

    #[test]
    fn backspacing_stays_one_span() {
        let me = id("a");
        let mut t = Rga::default();
        t.insert(&me, 0, "hello world").unwrap();
        for p in (5..11).rev() {
            t.delete(&me, p, 1).unwrap();
        }
        assert_eq!(t.text(), "hello");
        assert_eq!(t.spans().count(), 2, "{:?}", t.spans().collect::<Vec<_>>());
        check(&t);
        let back = Rga::decode(&At::root(&t.encode())).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn many_edits_keep_the_index_consistent() {
        let me = id("a");
        let mut t = Rga::default();
        let mut model: Vec<char> = Vec::new();
        let mut x: u64 = 7;
        for i in 0..3000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = model.len();
            if len > 0 && (x >> 60) < 5 {
                let p = (x >> 20) as usize % len;
                let n = ((x >> 8) as usize % 3 + 1).min(len - p);
                t.delete(&me, p, n).unwrap();
                model.drain(p..p + n);
            } else {
                let p = if i % 7 == 0 {
                    (x >> 20) as usize % (len + 1)
                } else {
                    len.min((x >> 30) as usize % (len + 1))
                };
                let ch = char::from(b'a' + (i % 26) as u8);
                t.insert(&me, p, &ch.to_string()).unwrap();
                model.insert(p, ch);
            }
            if i % 97 == 0 {
                check(&t);
            }
        }
        check(&t);
        assert_eq!(t.text(), model.iter().collect::<String>());
        assert!(t.chunks.len() > 1, "the test should exercise chunk splits");
    }
}

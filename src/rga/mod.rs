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
use crate::deletion::{Deleted, Deletion};
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
    chunk: usize,
    span: usize,
    offset: u32,
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
    /// The deletes of the whole text this replica has seen.
    deleted: Deleted<CausalContext>,
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
            && self.deleted == other.deleted
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
        Pos {
            chunk: c,
            span: s,
            offset: off,
        }
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
                    chunk: c,
                    span: s,
                    offset: (p - acc) as u32,
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
        if pos.offset == 0 {
            return (pos.chunk, pos.span);
        }
        let right = self.chunks[pos.chunk].spans[pos.span].split(pos.offset);
        self.chunks[pos.chunk].spans.insert(pos.span + 1, right);
        if self.chunks[pos.chunk].spans.len() > CHUNK {
            self.split_chunk(pos.chunk);
            let left_len = self.chunks[pos.chunk].spans.len();
            if pos.span + 1 >= left_len {
                return (pos.chunk + 1, pos.span + 1 - left_len);
            }
        }
        (pos.chunk, pos.span + 1)
    }

    /// The position right after `pos`, in document order.
    fn after(&self, pos: Pos) -> Pos {
        let span = &self.chunks[pos.chunk].spans[pos.span];
        if pos.offset + 1 < span.len {
            return Pos {
                offset: pos.offset + 1,
                ..pos
            };
        }
        Pos {
            chunk: pos.chunk,
            span: pos.span + 1,
            offset: 0,
        }
    }

    /// Normalizes a position past the end of a chunk to the next chunk's start.
    fn next_valid(&self, mut pos: Pos) -> Option<Pos> {
        while pos.span >= self.chunks.get(pos.chunk)?.spans.len() {
            pos = Pos {
                chunk: pos.chunk + 1,
                span: 0,
                offset: 0,
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
                let mut part = self.chunks[p.chunk].spans[p.span];
                if p.offset > 0 {
                    part = part.split(p.offset);
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
            let span = self.chunks[p.chunk].spans[p.span];
            (
                Some(Id {
                    r: span.r,
                    seq: span.seq + u64::from(p.offset),
                }),
                Some(p),
            )
        };
        // Typing on: the character before is the end of this replica's last run.
        if let Some(p) = at {
            let span = &mut self.chunks[p.chunk].spans[p.span];
            if p.offset + 1 == span.len
                && span.r == r
                && span.del.is_none()
                && span.seq + u64::from(span.len) == seq
                && span.lamport + u64::from(span.len) == lamport
            {
                span.len += n;
                let chunk = &mut self.chunks[p.chunk];
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
            let Some(Pos {
                chunk: c, span: s, ..
            }) = self.next_valid(Pos {
                chunk: c,
                span: s,
                offset: 0,
            })
            else {
                break;
            };
            let span = self.chunks[c].spans[s];
            if span.del.is_some() {
                p = self.after(Pos {
                    chunk: c,
                    span: s,
                    offset: span.len - 1,
                });
                continue;
            }
            if span.len as usize > left {
                self.split_at(Pos {
                    chunk: c,
                    span: s,
                    offset: left as u32,
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
            p = self.after(Pos {
                chunk: c,
                span: s,
                offset: len - 1,
            });
        }
        Ok(Some((dot, pieces)))
    }

    /// The span starting exactly at (r, seq).
    fn refind(&self, r: u32, seq: u64) -> (usize, usize) {
        let p = self.locate_id(Id { r, seq });
        debug_assert_eq!(p.offset, 0);
        (p.chunk, p.span)
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
        let mut parts: Vec<Rga> = groups
            .into_iter()
            .zip(contexts)
            .map(|(g, cc)| Rga::from_spans(self.replicas.clone(), &self.cols, g, cc))
            .collect();
        if let Some(last) = parts.last_mut() {
            last.deleted = self.deleted.clone();
        }
        parts
    }

    /// Deletes the whole text as `replica` at wall time `now_ms`: every
    /// character here is deleted (one event), and the delete records what
    /// it saw, so text typed concurrently elsewhere survives it.
    pub fn delete_object(&mut self, replica: &ReplicaId, now_ms: u64) -> Result<(), OpError> {
        if self.visible > 0 {
            self.delete(replica, 0, self.visible)?;
            Deletion::record(&mut self.deleted, replica, now_ms, self.context.clone());
            Ok(())
        } else {
            // Nothing visible: the delete is an event of its own.
            crate::deletion::delete_seen(&mut self.context, &mut self.deleted, replica, now_ms)
        }
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
}

mod check;
mod codec;
mod merge;
#[cfg(test)]
mod tests;

crate::deletion::deletion_access!(Rga, CausalContext);

//! One replica's characters inside an [`Rga`](super::Rga), by sequence number.
//!
//! A replica's sequence numbers are dense in an honest state (each is a
//! character it typed or a delete it made), so they are kept in arrays
//! indexed by seq. The arrays are *segments* that cover only the seqs that
//! are here (plus gaps of at most [`GAP`] between them), never `1..max`:
//! a state or delta that names seq 10^12 allocates room for the characters
//! it holds, not for a number inside it.

/// The chunk of a seq that is not a character here.
pub(super) const NOWHERE: u32 = u32::MAX;

/// Segments closer than this are joined (the gap filled with empty slots).
const GAP: u64 = 8;

#[derive(Clone, Debug, Default)]
struct Seg {
    /// The seq of `chars[0]`.
    start: u64,
    /// The character of each seq (`'\0'` for a delete event or a gap).
    chars: Vec<char>,
    /// The chunk id holding each seq (`NOWHERE` for deletes and gaps).
    chunks: Vec<u32>,
}

impl Seg {
    fn end(&self) -> u64 {
        self.start + self.chars.len() as u64
    }
}

/// Sorted, disjoint segments of slots, one per seq.
#[derive(Clone, Debug, Default)]
pub(super) struct Column {
    segs: Vec<Seg>,
}

impl Column {
    /// The segment and offset of `seq`, if a slot exists for it.
    #[inline]
    fn find(&self, seq: u64) -> Option<(usize, usize)> {
        // Almost always one segment (or the last one): check it first.
        let last = self.segs.len().checked_sub(1)?;
        let s = &self.segs[last];
        if seq >= s.start {
            return (seq < s.end()).then(|| (last, (seq - s.start) as usize));
        }
        let i = self
            .segs
            .partition_point(|s| s.start <= seq)
            .checked_sub(1)?;
        let s = &self.segs[i];
        (seq < s.end()).then(|| (i, (seq - s.start) as usize))
    }

    /// The chunk id of character `seq`, `NOWHERE` when it is not here.
    #[inline]
    pub fn chunk(&self, seq: u64) -> u32 {
        self.find(seq)
            .map_or(NOWHERE, |(i, off)| self.segs[i].chunks[off])
    }

    /// The greatest seq below `seq` and above `floor` that is a character
    /// here. Scans slots (deletes and gaps) down to `floor`, which a caller
    /// that asks in ascending order sets to what it already scanned.
    pub fn prev_char(&self, seq: u64, floor: u64) -> Option<u64> {
        let mut i = self.segs.partition_point(|s| s.start < seq);
        while i > 0 {
            i -= 1;
            let s = &self.segs[i];
            if s.end() <= floor + 1 {
                return None;
            }
            let top = (seq.min(s.end()) - s.start) as usize;
            let low = floor.saturating_add(1).saturating_sub(s.start) as usize;
            if let Some(k) = (low..top).rev().find(|&k| s.chunks[k] != NOWHERE) {
                return Some(s.start + k as u64);
            }
        }
        None
    }

    /// The smallest seq above `seq` and below `ceiling` that is a
    /// character here (the mirror of [`Column::prev_char`]).
    pub fn next_char(&self, seq: u64, ceiling: u64) -> Option<u64> {
        let mut i = self.segs.partition_point(|s| s.end() <= seq + 1);
        while i < self.segs.len() {
            let s = &self.segs[i];
            if s.start >= ceiling {
                return None;
            }
            let from = (seq + 1).saturating_sub(s.start) as usize;
            let to = (ceiling.min(s.end()) - s.start) as usize;
            if let Some(k) = (from..to).find(|&k| s.chunks[k] != NOWHERE) {
                return Some(s.start + k as u64);
            }
            i += 1;
        }
        None
    }

    #[inline]
    pub fn has(&self, seq: u64) -> bool {
        self.chunk(seq) != NOWHERE
    }

    /// The characters `seq..seq+len`, which must have slots (one segment
    /// holds them: slots are made a run at a time and segments only join).
    pub fn chars(&self, seq: u64, len: usize) -> &[char] {
        let (i, off) = self.find(seq).expect("the run has slots");
        &self.segs[i].chars[off..off + len]
    }

    pub fn char_at(&self, seq: u64) -> char {
        self.chars(seq, 1)[0]
    }

    /// Makes slots for `seq..seq+len` in one segment.
    fn reserve(&mut self, seq: u64, len: usize) -> (usize, usize) {
        let (lo, hi) = (seq, seq + len as u64);
        // Typing on: the run extends the last segment.
        let count = self.segs.len();
        if let Some(last) = self.segs.last_mut()
            && lo >= last.start
            && lo <= last.end() + GAP
        {
            let end = last.end().max(hi);
            let n = (end - last.start) as usize;
            last.chars.resize(n, '\0');
            last.chunks.resize(n, NOWHERE);
            return (count - 1, (lo - last.start) as usize);
        }
        // Segments that overlap or nearly touch [lo, hi) join it.
        let a = self.segs.partition_point(|s| s.end() + GAP < lo);
        let b = self.segs.partition_point(|s| s.start <= hi + GAP);
        if a >= b {
            self.segs.insert(
                a,
                Seg {
                    start: lo,
                    chars: vec!['\0'; len],
                    chunks: vec![NOWHERE; len],
                },
            );
            return (a, 0);
        }
        let start = lo.min(self.segs[a].start);
        let end = hi.max(self.segs[b - 1].end());
        let n = (end - start) as usize;
        let mut joined = Seg {
            start,
            chars: vec!['\0'; n],
            chunks: vec![NOWHERE; n],
        };
        for s in self.segs.drain(a..b) {
            let off = (s.start - start) as usize;
            joined.chars[off..off + s.chars.len()].copy_from_slice(&s.chars);
            joined.chunks[off..off + s.chunks.len()].copy_from_slice(&s.chunks);
        }
        self.segs.insert(a, joined);
        (a, (lo - start) as usize)
    }

    /// Records characters `seq..seq+n` (making their slots) in `chunk`.
    pub fn record(&mut self, seq: u64, n: usize, chars: impl Iterator<Item = char>, chunk: u32) {
        let (i, off) = self.reserve(seq, n);
        let seg = &mut self.segs[i];
        for (slot, c) in seg.chars[off..off + n].iter_mut().zip(chars) {
            *slot = c;
        }
        seg.chunks[off..off + n].fill(chunk);
    }

    /// Sets the chunk of characters `seq..seq+n`, which have slots.
    pub fn fill_chunk(&mut self, seq: u64, n: usize, chunk: u32) {
        let (i, off) = self.find(seq).expect("the run has slots");
        self.segs[i].chunks[off..off + n].fill(chunk);
    }

    /// Slots allocated (for tests of the allocation bound).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.segs.iter().map(|s| s.chars.len()).sum()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn slots_follow_the_characters_not_their_seqs() {
        let mut c = Column::default();
        c.record(1_000_000_000_000, 2, "ab".chars(), 0);
        c.record(5, 1, "x".chars(), 1);
        assert_eq!(c.slots(), 3);
        assert!(c.has(5) && c.has(1_000_000_000_001) && !c.has(6));
        // Near neighbours join into one segment; the run stays readable.
        c.record(8, 2, "yz".chars(), 2);
        c.record(6, 2, "pq".chars(), 3);
        assert_eq!(c.chars(5, 5), ['x', 'p', 'q', 'y', 'z']);
        assert_eq!(c.chunk(7), 3);
        assert_eq!(c.slots(), 7);
    }

    #[test]
    fn neighbours_skip_deletes_and_gaps() {
        let mut c = Column::default();
        c.record(1, 2, "ab".chars(), 0);
        c.record(3, 3, "\0\0\0".chars(), NOWHERE); // delete events
        c.record(100, 1, "z".chars(), 1);
        assert_eq!(c.prev_char(6, 0), Some(2));
        assert_eq!(c.prev_char(2, 0), Some(1));
        assert_eq!(c.prev_char(1, 0), None);
        assert_eq!(c.prev_char(6, 2), None, "nothing above the floor");
        assert_eq!(c.prev_char(u64::MAX, 0), Some(100));
        assert_eq!(c.next_char(2, u64::MAX), Some(100));
        assert_eq!(c.next_char(0, u64::MAX), Some(1));
        assert_eq!(c.next_char(100, u64::MAX), None);
        assert_eq!(c.next_char(2, 100), None, "nothing below the ceiling");
    }
}

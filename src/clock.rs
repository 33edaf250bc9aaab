//! Causal metadata: replica ids, dots, version vectors and the hybrid logical
//! clock used to timestamp register writes.
//!
//! Nothing here does I/O; the wall-clock time is always passed in by the caller.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crate::error::InvalidReplicaId;

/// The unique name of one replica (`agent-1`).
///
/// 1 to 128 characters from `A-Z a-z 0-9 . _ - : @`, so it is safe in file
/// names, shell words and JSON keys alike.
///
/// ```
/// use crdt::ReplicaId;
/// let id = ReplicaId::new("agent-1").unwrap();
/// assert_eq!(id.as_str(), "agent-1");
/// assert!(ReplicaId::new("has space").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplicaId(std::sync::Arc<str>);

impl ReplicaId {
    /// Validates and wraps a replica id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidReplicaId> {
        let id = id.into();
        let ok_char = |c: char| c.is_ascii_alphanumeric() || ".-_:@".contains(c);
        if id.is_empty() || id.len() > 128 || !id.chars().all(ok_char) {
            return Err(InvalidReplicaId(id));
        }
        Ok(ReplicaId(id.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// [`ReplicaId::new`] of a borrowed id, sharing the text of the id this
    /// thread made last this way when it is the same one: a snapshot's
    /// 100,000 counters mostly name one or two replicas, and each would
    /// otherwise hold a copy of them.
    pub fn shared(id: &str) -> Result<Self, InvalidReplicaId> {
        thread_local! {
            static LAST: std::cell::RefCell<Option<ReplicaId>> =
                const { std::cell::RefCell::new(None) };
        }
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            if let Some(r) = last.as_ref().filter(|r| r.as_str() == id) {
                return Ok(r.clone());
            }
            let r = ReplicaId::new(id)?;
            *last = Some(r.clone());
            Ok(r)
        })
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The largest sequence (and Lamport) number a state may hold: 2^53 - 1,
/// the largest integer every JSON reader keeps exact. No replica makes that
/// many events; a state that claims more is refused, and a local change that
/// would go past it is an error, so every state stays loadable and sendable.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// One event of one replica: the `seq`-th change it made to one object.
/// Sequence numbers start at 1 and are contiguous per replica and object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    pub replica: ReplicaId,
    pub seq: u64,
}

impl Dot {
    pub fn new(replica: ReplicaId, seq: u64) -> Self {
        Dot { replica, seq }
    }
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.replica, self.seq)
    }
}

/// How two version vectors relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causality {
    Equal,
    /// The left side has seen strictly less than the right side.
    Before,
    /// The left side has seen strictly more than the right side.
    After,
    /// Each side has seen something the other has not.
    Concurrent,
}

/// Replica -> highest contiguous sequence number seen from it.
///
/// ```
/// use crdt::{Causality, ReplicaId, VersionVector};
/// let a = ReplicaId::new("a").unwrap();
/// let b = ReplicaId::new("b").unwrap();
/// let mut x = VersionVector::new();
/// x.set(a.clone(), 2);
/// let mut y = VersionVector::new();
/// y.set(b.clone(), 1);
/// assert_eq!(x.compare(&y), Causality::Concurrent);
/// y.join(&x);
/// assert_eq!(x.compare(&y), Causality::Before);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVector(BTreeMap<ReplicaId, u64>);

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest contiguous seq seen from `replica` (0 when none).
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.0.get(replica).copied().unwrap_or(0)
    }

    /// Sets the entry; 0 removes it, so equal vectors compare equal.
    pub fn set(&mut self, replica: ReplicaId, seq: u64) {
        if seq == 0 {
            self.0.remove(&replica);
        } else {
            self.0.insert(replica, seq);
        }
    }

    pub fn contains(&self, dot: &Dot) -> bool {
        dot.seq <= self.get(&dot.replica)
    }

    /// Pointwise maximum.
    pub fn join(&mut self, other: &VersionVector) {
        for (r, &s) in &other.0 {
            let e = self.0.entry(r.clone()).or_insert(0);
            *e = (*e).max(s);
        }
    }

    pub fn compare(&self, other: &VersionVector) -> Causality {
        let mut less = false;
        let mut greater = false;
        for r in self.0.keys().chain(other.0.keys()) {
            match self.get(r).cmp(&other.get(r)) {
                Ordering::Less => less = true,
                Ordering::Greater => greater = true,
                Ordering::Equal => {}
            }
        }
        match (less, greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }

    /// True when every event in `self` is also in `other`.
    pub fn le(&self, other: &VersionVector) -> bool {
        matches!(self.compare(other), Causality::Equal | Causality::Before)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ReplicaId, u64)> {
        self.0.iter().map(|(r, &s)| (r, s))
    }
}

impl fmt::Display for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (r, s)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}: {s}")?;
        }
        f.write_str("}")
    }
}

impl FromIterator<(ReplicaId, u64)> for VersionVector {
    fn from_iter<T: IntoIterator<Item = (ReplicaId, u64)>>(iter: T) -> Self {
        let mut vv = VersionVector::new();
        for (r, s) in iter {
            let s = s.max(vv.get(&r));
            vv.set(r, s);
        }
        vv
    }
}

/// A hybrid logical clock reading: wall-clock milliseconds plus a logical
/// counter that breaks ties when the wall clock has not moved (or went back).
///
/// ```
/// use crdt::Hlc;
/// let seen = Hlc { ms: 1_000, counter: 3 };
/// // The wall clock is behind what we have seen: the logical counter moves on.
/// assert_eq!(seen.next(900), Hlc { ms: 1_000, counter: 4 });
/// // The wall clock is ahead: it wins and the counter resets.
/// assert_eq!(seen.next(2_000), Hlc { ms: 2_000, counter: 0 });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    pub ms: u64,
    pub counter: u32,
}

impl Hlc {
    /// The timestamp of an event made after observing `self`, at wall time `now_ms`.
    /// Always strictly greater than `self`.
    pub fn next(self, now_ms: u64) -> Hlc {
        if now_ms > self.ms {
            Hlc {
                ms: now_ms,
                counter: 0,
            }
        } else if self.counter == u32::MAX {
            Hlc {
                ms: self.ms + 1,
                counter: 0,
            }
        } else {
            Hlc {
                ms: self.ms,
                counter: self.counter + 1,
            }
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ms, self.counter)
    }
}

/// Wall-clock milliseconds, the clock of register timestamps and history
/// rows; `CRDT_NOW_MS` fixes it (reproducible examples and tests).
pub fn now_ms() -> u64 {
    if let Some(ms) = std::env::var("CRDT_NOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return ms;
    }
    wall_ms()
}

/// The wall clock in milliseconds, without `CRDT_NOW_MS` (an environment
/// lookup the server does not pay per push).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `2023-11-14T22:13:20.000Z`, with `#N` when the logical counter is not 0.
pub fn rfc3339(ts: Hlc) -> String {
    let secs = (ts.ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ts.ms % 1000
    );
    if ts.counter > 0 {
        s.push_str(&format!("#{}", ts.counter));
    }
    s
}

/// A time in milliseconds since the epoch, as [`rfc3339`] writes it.
pub fn rfc3339_ms(ms: u64) -> String {
    rfc3339(Hlc { ms, counter: 0 })
}

#[cfg(test)]
mod test {
    use super::*;

    fn r(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    #[test]
    fn compare_covers_all_four_relations() {
        let a: VersionVector = [(r("a"), 1)].into_iter().collect();
        let ab: VersionVector = [(r("a"), 1), (r("b"), 1)].into_iter().collect();
        let b: VersionVector = [(r("b"), 2)].into_iter().collect();
        assert_eq!(a.compare(&a.clone()), Causality::Equal);
        assert_eq!(a.compare(&ab), Causality::Before);
        assert_eq!(ab.compare(&a), Causality::After);
        assert_eq!(a.compare(&b), Causality::Concurrent);
    }

    #[test]
    fn zero_entries_do_not_count() {
        let mut a = VersionVector::new();
        a.set(r("x"), 0);
        assert_eq!(a, VersionVector::new());
    }

    #[test]
    fn replica_ids_are_validated() {
        assert!(ReplicaId::new("").is_err());
        assert!(ReplicaId::new("a/b").is_err());
        assert!(ReplicaId::new("x".repeat(129)).is_err());
        assert!(ReplicaId::new("host-1.example:7@x_y").is_ok());
    }

    #[test]
    fn hlc_is_strictly_monotonic_even_at_counter_overflow() {
        let t = Hlc {
            ms: 5,
            counter: u32::MAX,
        };
        assert!(t.next(0) > t);
    }
}

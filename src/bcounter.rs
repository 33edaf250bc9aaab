//! A bounded counter: allocations that never exceed a limit, without
//! coordination (the escrow counter of Balegas et al., "Extending
//! Eventually Consistent Cloud Databases for Enforcing Numeric
//! Invariants", 2015, as in AntidoteDB).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::{MAX_SEQ, ReplicaId, VersionVector};
use crate::codec::{At, Codec};
use crate::deletion::{Deleted, Deletion, Horizon};
use crate::error::{OpError, SnapshotError};
use crate::traits::Crdt;

/// A counter of allocations under a limit ("30 GPUs of 100").
///
/// The limit is made of *rights*: the creator holds all of them, and a
/// replica may only allocate rights it holds, so two replicas can never
/// allocate the same right, whatever they do concurrently. Rights move
/// between replicas as part of the state (a transfer), and come back to a
/// replica that releases what it allocated. Each replica owns one entry,
/// changed only by itself, and entries merge by keeping the later one, so
/// the merged value is always between 0 and the limit.
///
/// ```
/// use crdt::{BoundedCounter, Crdt, ReplicaId};
/// let (a, b) = (ReplicaId::new("agent-1").unwrap(), ReplicaId::new("agent-2").unwrap());
/// let mut x = BoundedCounter::default();
/// x.create(&a, 100).unwrap();
/// x.transfer(&a, &b, 30).unwrap();
/// let mut y = x.clone();
/// x.allocate(&a, 70).unwrap();
/// y.allocate(&b, 25).unwrap();
/// assert!(y.allocate(&b, 25).is_err()); // agent-2 holds only 5 more
/// x.merge(&y);
/// assert_eq!((x.value(), x.limit()), (95, 100));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BoundedCounter {
    entries: BTreeMap<ReplicaId, BEntry>,
    deleted: Deleted<BoundedCounter>,
}

/// One replica's part of a [`BoundedCounter`]; every field only grows.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct BEntry {
    /// How many changes the replica made (its version).
    pub seq: u64,
    /// Rights it created (the limit, for the creator).
    pub granted: u64,
    /// What it allocated, in all.
    pub allocated: u64,
    /// What it released of that, in all.
    pub released: u64,
    /// Rights it moved to each other replica, in all.
    pub sent: BTreeMap<ReplicaId, u64>,
}

/// One replica's rights, as [`BoundedCounter::holders`] lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub replica: ReplicaId,
    /// Rights it created.
    pub granted: u64,
    /// Rights other replicas moved to it.
    pub received: u128,
    /// Rights it moved to others.
    pub sent: u128,
    /// What it holds allocated now (allocated less released).
    pub allocated: u64,
    /// What it released, in all.
    pub released: u64,
    /// Its unused rights.
    pub rights: i128,
}

/// Why a change of a bounded counter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundedError {
    #[error("{replica} holds {holds} unused rights, not {wanted}{}", others_text(.others))]
    NotEnoughRights {
        replica: ReplicaId,
        holds: u64,
        wanted: u64,
        /// The other replicas' unused rights, as this replica knows them.
        others: Vec<(ReplicaId, u64)>,
    },
    #[error("{replica} has {allocated} allocated, so it cannot release {wanted}")]
    NotAllocated {
        replica: ReplicaId,
        allocated: u64,
        wanted: u64,
    },
    #[error("a transfer goes to another replica")]
    ToItself,
    #[error(transparent)]
    Op(#[from] OpError),
}

fn others_text(others: &[(ReplicaId, u64)]) -> String {
    let holding: Vec<String> = others
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r} holds {n}"))
        .collect();
    if holding.is_empty() {
        "; no other replica holds unused rights".to_string()
    } else {
        format!("; {} (a transfer from them makes room)", holding.join(", "))
    }
}

impl BoundedCounter {
    /// Creates `limit` rights held by `replica` (the creator).
    pub fn create(&mut self, replica: &ReplicaId, limit: u64) -> Result<(), BoundedError> {
        self.change(replica, |e| {
            e.granted = e.granted.checked_add(limit)?;
            Some(())
        })
    }

    /// Allocates `amount` of the rights `replica` holds.
    pub fn allocate(&mut self, replica: &ReplicaId, amount: u64) -> Result<(), BoundedError> {
        self.spend(replica, amount)?;
        self.change(replica, |e| {
            e.allocated = e.allocated.checked_add(amount)?;
            Some(())
        })
    }

    /// Releases `amount` of what `replica` allocated: the rights are its
    /// own again.
    pub fn release(&mut self, replica: &ReplicaId, amount: u64) -> Result<(), BoundedError> {
        nonzero(amount)?;
        let e = self.entry(replica);
        let outstanding = e.allocated - e.released;
        if outstanding < amount {
            return Err(BoundedError::NotAllocated {
                replica: replica.clone(),
                allocated: outstanding,
                wanted: amount,
            });
        }
        self.change(replica, |e| {
            e.released += amount;
            Some(())
        })
    }

    /// Moves `amount` of the rights `replica` holds to `to`.
    pub fn transfer(
        &mut self,
        replica: &ReplicaId,
        to: &ReplicaId,
        amount: u64,
    ) -> Result<(), BoundedError> {
        if replica == to {
            return Err(BoundedError::ToItself);
        }
        self.spend(replica, amount)?;
        self.change(replica, |e| {
            let sent = e.sent.entry(to.clone()).or_default();
            *sent = sent.checked_add(amount)?;
            Some(())
        })
    }

    /// The unused rights of `replica`: what it created, released and was
    /// sent, less what it allocated and sent on.
    pub fn rights(&self, replica: &ReplicaId) -> i128 {
        let e = self.entry(replica);
        let received: i128 = self
            .entries
            .values()
            .filter_map(|o| o.sent.get(replica))
            .map(|n| i128::from(*n))
            .sum();
        let sent: i128 = e.sent.values().map(|n| i128::from(*n)).sum();
        i128::from(e.granted) + i128::from(e.released) + received - sent - i128::from(e.allocated)
    }

    /// Every replica's unused rights ([`BoundedCounter::rights`]), in one
    /// pass over the entries (a hostile state may hold many replicas: work
    /// grows with its size, not with replicas times entries).
    pub fn all_rights(&self) -> BTreeMap<&ReplicaId, i128> {
        let mut rights: BTreeMap<&ReplicaId, i128> = BTreeMap::new();
        for (r, e) in &self.entries {
            let sent: i128 = e.sent.values().map(|n| i128::from(*n)).sum();
            *rights.entry(r).or_default() +=
                i128::from(e.granted) + i128::from(e.released) - sent - i128::from(e.allocated);
            for (to, n) in &e.sent {
                *rights.entry(to).or_default() += i128::from(*n);
            }
        }
        rights
    }

    /// What is allocated now, over all replicas.
    pub fn value(&self) -> i128 {
        self.entries
            .values()
            .map(|e| i128::from(e.allocated) - i128::from(e.released))
            .sum()
    }

    /// The rights created, over all replicas.
    pub fn limit(&self) -> u128 {
        self.entries.values().map(|e| u128::from(e.granted)).sum()
    }

    /// Each replica that holds or used rights, with where its rights came
    /// from and went, in replica order.
    pub fn holders(&self) -> Vec<Holder> {
        let mut received: BTreeMap<&ReplicaId, u128> = BTreeMap::new();
        for e in self.entries.values() {
            for (to, n) in &e.sent {
                *received.entry(to).or_default() += u128::from(*n);
            }
        }
        let rights = self.all_rights();
        rights
            .iter()
            .map(|(r, unused)| {
                let e = self.entry(r);
                Holder {
                    replica: (*r).clone(),
                    granted: e.granted,
                    received: received.get(r).copied().unwrap_or(0),
                    sent: e.sent.values().map(|n| u128::from(*n)).sum(),
                    allocated: e.allocated - e.released,
                    released: e.released,
                    rights: *unused,
                }
            })
            .collect()
    }

    /// How many changes of `replica` this counter has (its version entry).
    pub fn seq_of(&self, replica: &ReplicaId) -> u64 {
        self.entries.get(replica).map_or(0, |e| e.seq)
    }

    /// Each replica's entry, in replica order.
    pub fn entries(&self) -> impl Iterator<Item = (&ReplicaId, &BEntry)> {
        self.entries.iter()
    }

    fn entry(&self, replica: &ReplicaId) -> BEntry {
        self.entries.get(replica).cloned().unwrap_or_default()
    }

    /// Refuses to spend more than `replica` holds.
    fn spend(&self, replica: &ReplicaId, amount: u64) -> Result<(), BoundedError> {
        nonzero(amount)?;
        let holds = self.rights(replica).max(0);
        if holds < i128::from(amount) {
            let others = self
                .all_rights()
                .into_iter()
                .filter(|(r, _)| *r != replica)
                .map(|(r, n)| (r.clone(), clamp(n)))
                .collect();
            return Err(BoundedError::NotEnoughRights {
                replica: replica.clone(),
                holds: clamp(holds),
                wanted: amount,
                others,
            });
        }
        Ok(())
    }

    /// One change of `replica`'s entry (`None` from `f`: an overflow).
    fn change(
        &mut self,
        replica: &ReplicaId,
        f: impl FnOnce(&mut BEntry) -> Option<()>,
    ) -> Result<(), BoundedError> {
        let mut e = self.entry(replica);
        if e.seq >= MAX_SEQ {
            return Err(OpError::Exhausted {
                replica: replica.to_string(),
            }
            .into());
        }
        f(&mut e).ok_or_else(|| OpError::Overflow {
            current: self.value().to_string(),
            amount: 0,
        })?;
        e.seq += 1;
        self.entries.insert(replica.clone(), e);
        Ok(())
    }

    /// Deletes the counter as `replica` at wall time `now_ms`. A delete
    /// hides it but keeps its rights and allocations: it cannot take back
    /// rights another replica may be spending concurrently, so the limit
    /// holds through it. One change of `replica`; any later change (or one
    /// made concurrently) brings the counter back as it is.
    pub fn delete_object(&mut self, replica: &ReplicaId, now_ms: u64) -> Result<(), OpError> {
        self.change(replica, |_| Some(())).map_err(|e| match e {
            BoundedError::Op(e) => e,
            other => OpError::Overflow {
                current: other.to_string(),
                amount: 0,
            },
        })?;
        let seen = BoundedCounter {
            entries: self.entries.clone(),
            deleted: None,
        };
        Deletion::record(&mut self.deleted, replica, now_ms, seen);
        Ok(())
    }

    /// True when no entry has moved on since the deletes saw it.
    pub(crate) fn all_seen(&self) -> bool {
        let seen = |r: &ReplicaId| {
            self.deleted
                .as_ref()
                .and_then(|d| d.seen.entries.get(r))
                .map_or(0, |e| e.seq)
        };
        self.entries.iter().all(|(r, e)| seen(r) >= e.seq)
    }

    /// Why the deletes' view of a replica is impossible against its entry
    /// here and in `held` (a later change than either has). Alone
    /// (`held: None`), only the replicas with an entry here are checked: a
    /// delta may leave out entries the receiver has.
    pub(crate) fn check_deletion(&self, held: Option<&BoundedCounter>) -> Result<(), String> {
        let Some(d) = &self.deleted else {
            return Ok(());
        };
        for (r, seen) in &d.seen.entries {
            let mine = self.entries.get(r).map(|e| e.seq);
            if held.is_none() && mine.is_none() {
                continue;
            }
            let theirs = held.and_then(|h| h.entries.get(r)).map_or(0, |e| e.seq);
            let entry = theirs.max(mine.unwrap_or(0));
            if seen.seq > entry {
                return Err(format!(
                    "a delete saw change {} of replica {r}, which has made {entry} here",
                    seen.seq
                ));
            }
        }
        Ok(())
    }

    /// Why merging `other` would give a state no honest replica has, if it
    /// would: a replica's entries must only grow with its seq (equal seqs,
    /// equal entries), nobody may release more than it allocated, and
    /// nobody may have spent more rights than it held.
    pub fn check_merge(&self, other: &BoundedCounter) -> Result<(), String> {
        for (r, theirs) in &other.entries {
            if theirs.released > theirs.allocated {
                return Err(format!(
                    "replica {r} released {} of {} allocated",
                    theirs.released, theirs.allocated
                ));
            }
            let Some(mine) = self.entries.get(r) else {
                continue;
            };
            let (older, newer) = if mine.seq <= theirs.seq {
                (mine, theirs)
            } else {
                (theirs, mine)
            };
            if older.seq == newer.seq && older != newer {
                return Err(format!(
                    "replica {r}'s change {} is two different entries",
                    older.seq
                ));
            }
            let shrinks = newer.granted < older.granted
                || newer.allocated < older.allocated
                || newer.released < older.released
                || older
                    .sent
                    .iter()
                    .any(|(to, n)| newer.sent.get(to).copied().unwrap_or(0) < *n);
            if shrinks {
                return Err(format!(
                    "replica {r}'s entry shrinks from change {} to {}: a bounded counter's entries only grow",
                    older.seq, newer.seq
                ));
            }
        }
        other.check_deletion(Some(self))?;
        let mut merged = self.clone();
        merged.merge(other);
        if let Some((r, n)) = merged.all_rights().into_iter().find(|(_, n)| *n < 0) {
            return Err(format!("replica {r} spent {} rights more than it held", -n));
        }
        Ok(())
    }
}

fn nonzero(amount: u64) -> Result<(), BoundedError> {
    if amount == 0 {
        Err(OpError::ZeroAmount.into())
    } else {
        Ok(())
    }
}

fn clamp(n: i128) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(u64::MAX)
}

impl Crdt for BoundedCounter {
    fn merge(&mut self, other: &Self) {
        for (r, theirs) in &other.entries {
            match self.entries.get_mut(r) {
                // The later entry; at an equal seq (never, honestly) the
                // greater, so the merge stays a join.
                Some(mine) => {
                    if (theirs.seq, theirs) > (mine.seq, &*mine) {
                        *mine = theirs.clone();
                    }
                }
                None => {
                    self.entries.insert(r.clone(), theirs.clone());
                }
            }
        }
        Deletion::merge(&mut self.deleted, &other.deleted);
    }

    fn version(&self) -> VersionVector {
        self.entries
            .iter()
            .map(|(r, e)| (r.clone(), e.seq))
            .collect()
    }

    fn delta_since(&self, vv: &VersionVector) -> Self {
        BoundedCounter {
            entries: self
                .entries
                .iter()
                .filter(|(r, e)| e.seq > vv.get(r))
                .map(|(r, e)| (r.clone(), e.clone()))
                .collect(),
            deleted: Deletion::delta_since(&self.deleted, vv),
        }
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.entries.iter().all(|(r, e)| e.seq <= vv.get(r))
    }

    fn value_json(&self) -> Value {
        Value::from(self.value())
    }
}

impl Horizon for BoundedCounter {
    fn join(&mut self, other: &Self) {
        let deleted = self.deleted.take();
        self.merge(&BoundedCounter {
            entries: other.entries.clone(),
            deleted: None,
        });
        self.deleted = deleted;
    }
    fn covered_by(&self, vv: &VersionVector) -> bool {
        Crdt::covered_by(self, vv)
    }
    fn encode(&self) -> Value {
        Codec::encode(self)
    }
    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        <BoundedCounter as Codec>::decode(at)
    }
}

impl Codec for BoundedCounter {
    fn encode(&self) -> Value {
        let entries: serde_json::Map<String, Value> = self
            .entries
            .iter()
            .map(|(r, e)| {
                let sent: serde_json::Map<String, Value> = e
                    .sent
                    .iter()
                    .map(|(to, n)| (to.to_string(), json!(n)))
                    .collect();
                (
                    r.to_string(),
                    json!({"seq": e.seq, "granted": e.granted, "allocated": e.allocated,
                           "released": e.released, "sent": sent}),
                )
            })
            .collect();
        json!({ "entries": entries })
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["entries"], &[])?;
        let list = at.field("entries")?;
        let mut entries = BTreeMap::new();
        for (key, e) in list.entries()? {
            let replica = list.replica_key(key)?;
            e.fields(&["seq", "granted", "allocated", "released", "sent"], &[])?;
            let sent_at = e.field("sent")?;
            let mut sent = BTreeMap::new();
            for (to, n) in sent_at.entries()? {
                let to = sent_at.replica_key(to)?;
                if to == replica {
                    return Err(n.causal("a replica does not send rights to itself"));
                }
                sent.insert(to, n.u64()?);
            }
            let entry = BEntry {
                seq: e.field("seq")?.seq()?,
                granted: e.field("granted")?.u64()?,
                allocated: e.field("allocated")?.u64()?,
                released: e.field("released")?.u64()?,
                sent,
            };
            if entry.released > entry.allocated {
                return Err(e.causal(format!(
                    "released {} of {} allocated",
                    entry.released, entry.allocated
                )));
            }
            entries.insert(replica, entry);
        }
        Ok(BoundedCounter {
            entries,
            deleted: None,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    fn id(i: usize) -> ReplicaId {
        ReplicaId::new(format!("agent-{i}")).unwrap()
    }

    fn merged(a: &BoundedCounter, b: &BoundedCounter) -> BoundedCounter {
        let mut m = a.clone();
        m.merge(b);
        m
    }

    #[test]
    fn two_concurrent_allocations_cannot_pass_the_limit() {
        // "allocate 25 of the 70 left" on two replicas at once.
        let mut x = BoundedCounter::default();
        x.create(&id(1), 100).unwrap();
        x.allocate(&id(1), 30).unwrap();
        x.transfer(&id(1), &id(2), 35).unwrap();
        let mut y = x.clone();
        x.allocate(&id(1), 25).unwrap();
        y.allocate(&id(2), 25).unwrap();
        let err = y.allocate(&id(2), 25).unwrap_err().to_string();
        assert_eq!(
            err,
            "agent-2 holds 10 unused rights, not 25; agent-1 holds 35 (a transfer from them makes room)"
        );
        let m = merged(&x, &y);
        assert_eq!((m.value(), m.limit()), (80, 100));
        assert_eq!(m, merged(&y, &x));
        // Releasing gives the rights back to the releaser.
        let mut z = m.clone();
        z.release(&id(2), 25).unwrap();
        assert_eq!(z.rights(&id(2)), 35);
        assert!(z.release(&id(2), 1).is_err());
        assert_eq!(z.value(), 55);
    }

    #[test]
    fn forged_states_are_refused() {
        let mut x = BoundedCounter::default();
        x.create(&id(1), 10).unwrap();
        // A replica that spends rights it never had.
        let mut forged = BoundedCounter::default();
        forged.entries.insert(
            id(2),
            BEntry {
                seq: 1,
                allocated: 5,
                ..BEntry::default()
            },
        );
        let err = x.check_merge(&forged).unwrap_err();
        assert!(
            err.contains("agent-2 spent 5 rights more than it held"),
            "{err}"
        );
        // An entry that shrinks.
        let mut older = x.clone();
        x.allocate(&id(1), 4).unwrap();
        older.entries.get_mut(&id(1)).unwrap().seq = 3;
        assert!(x.check_merge(&older).unwrap_err().contains("shrinks"));
        // Round trip, and a release past the allocation in a snapshot.
        let text = Codec::encode(&x);
        assert_eq!(
            <BoundedCounter as Codec>::decode(&At::root(&text)).unwrap(),
            x
        );
        let mut bad = text.clone();
        bad["entries"]["agent-1"]["released"] = json!(9);
        assert!(<BoundedCounter as Codec>::decode(&At::root(&bad)).is_err());
    }

    /// A forged state of many replicas, each sending rights it never had
    /// to another: refused, with work that grows with the state's size (a
    /// pass per replica over every entry would be 20,000 x 40,000 steps).
    #[test]
    fn a_state_of_many_replicas_is_checked_in_one_pass() {
        let mut forged = BoundedCounter::default();
        for i in 0..20_000 {
            forged.entries.insert(
                ReplicaId::new(format!("m{i}")).unwrap(),
                BEntry {
                    seq: 1,
                    sent: BTreeMap::from([(ReplicaId::new(format!("z{i}")).unwrap(), 1)]),
                    ..BEntry::default()
                },
            );
        }
        let err = BoundedCounter::default().check_merge(&forged).unwrap_err();
        assert!(err.contains("spent 1 rights more than it held"), "{err}");
        assert_eq!(forged.holders().len(), 40_000);
        assert_eq!(forged.all_rights().values().sum::<i128>(), 0);
    }

    /// (replica, op): allocate, release or transfer an amount (refused ops
    /// are skipped, as a user would see them refused), or send a delta.
    #[derive(Clone, Debug)]
    enum Op {
        Allocate(u64),
        Release(u64),
        Transfer(usize, u64),
        Send(usize),
    }

    fn op() -> impl Strategy<Value = (usize, Op)> {
        (
            0usize..3,
            prop_oneof![
                3 => (1u64..30).prop_map(Op::Allocate),
                2 => (1u64..30).prop_map(Op::Release),
                2 => (0usize..3, 1u64..30).prop_map(|(to, n)| Op::Transfer(to, n)),
                3 => (0usize..3).prop_map(Op::Send),
            ],
        )
    }

    proptest! {
        /// Under any concurrency and any delivery order, every replica's
        /// state and every merge of them stays between 0 and the limit;
        /// merges are a join, deltas bring what the state brings, and
        /// every merge an honest replica makes passes the gate.
        #[test]
        fn the_value_stays_within_the_limit(ops in prop::collection::vec(op(), 0..60)) {
            let mut states = vec![BoundedCounter::default(); 3];
            states[0].create(&id(0), 60).unwrap();
            let base = states[0].clone();
            for s in &mut states[1..] {
                s.merge(&base);
            }
            for (r, op) in &ops {
                let me = id(*r);
                let _ = match op {
                    Op::Allocate(n) => states[*r].allocate(&me, *n),
                    Op::Release(n) => states[*r].release(&me, *n),
                    Op::Transfer(to, n) => states[*r].transfer(&me, &id(*to), *n),
                    Op::Send(to) => {
                        let delta = states[*r].delta_since(&states[*to].version());
                        prop_assert!(states[*to].check_merge(&delta).is_ok());
                        states[*to].merge(&delta);
                        Ok(())
                    }
                };
                for s in &states {
                    prop_assert!(s.value() >= 0 && s.value() <= 60, "{s:?}");
                }
            }
            for a in &states {
                prop_assert_eq!(&merged(a, a), a);
                let text = Codec::encode(a);
                prop_assert_eq!(&<BoundedCounter as Codec>::decode(&At::root(&text)).unwrap(), a);
                for b in &states {
                    prop_assert!(a.check_merge(b).is_ok());
                    let m = merged(a, b);
                    prop_assert_eq!(&m, &merged(b, a));
                    prop_assert!(m.value() >= 0 && m.value() <= 60, "{m:?}");
                    for r in 0..3 {
                        prop_assert!(m.rights(&id(r)) >= 0);
                    }
                    for c in &states {
                        prop_assert_eq!(merged(&m, c), merged(a, &merged(b, c)));
                    }
                    prop_assert_eq!(merged(b, &a.delta_since(&b.version())), m);
                }
            }
            let all = states.iter().fold(BoundedCounter::default(), |m, s| merged(&m, s));
            prop_assert!(all.value() >= 0 && all.value() <= 60);
            prop_assert_eq!(all.limit(), 60);
        }
    }
}

crate::deletion::deletion_access!(BoundedCounter, BoundedCounter);

//! Property tests: every type's merge is a join (commutative, associative,
//! idempotent), replicas converge under any delivery order with duplicates,
//! and a delta is as good as the whole state.

use std::fmt::Debug;

use crdt::{
    BoundedCounter, Crdt, GCounter, LwwMap, LwwRegister, Object, OrSet, PnCounter, ReplicaId, Rga,
    Store, snapshot,
};
use proptest::prelude::*;
use serde_json::json;

/// A type the simulation can drive with random local operations.
trait Sim: Crdt {
    type Op: Debug + Clone + 'static;
    fn op() -> BoxedStrategy<Self::Op>;
    fn apply(&mut self, me: &ReplicaId, op: &Self::Op);
    fn wrap(self) -> Object;
    /// Deletes the whole object (see `crdt::deletion`).
    fn delete_object(&mut self, me: &ReplicaId, now: u64);
    /// Whether a delete empties the value (a bounded counter's keeps its
    /// allocations: a delete cannot take back rights in use).
    const DELETE_EMPTIES: bool = true;
    /// The type's own invariants (the text's index), after every step.
    fn check(&self) {}
}

impl Sim for GCounter {
    fn delete_object(&mut self, me: &ReplicaId, now: u64) {
        GCounter::delete_object(self, me, now).unwrap();
    }
    fn wrap(self) -> Object {
        Object::GCounter(self)
    }
    type Op = u64;
    fn op() -> BoxedStrategy<u64> {
        (1u64..5).boxed()
    }
    fn apply(&mut self, me: &ReplicaId, n: &u64) {
        self.inc(me, *n).unwrap();
    }
}

impl Sim for PnCounter {
    fn delete_object(&mut self, me: &ReplicaId, now: u64) {
        PnCounter::delete_object(self, me, now).unwrap();
    }
    fn wrap(self) -> Object {
        Object::PnCounter(self)
    }
    type Op = (bool, u64);
    fn op() -> BoxedStrategy<(bool, u64)> {
        (any::<bool>(), 1u64..5).boxed()
    }
    fn apply(&mut self, me: &ReplicaId, (up, n): &(bool, u64)) {
        if *up {
            self.inc(me, *n).unwrap()
        } else {
            self.dec(me, *n).unwrap()
        }
    }
}

impl Sim for LwwRegister {
    fn delete_object(&mut self, me: &ReplicaId, now: u64) {
        LwwRegister::delete_object(self, me, now).unwrap();
    }
    fn wrap(self) -> Object {
        Object::LwwRegister(self)
    }
    /// (value, wall clock): clocks are skewed and may go backwards.
    type Op = (u8, u64);
    fn op() -> BoxedStrategy<(u8, u64)> {
        (0u8..6, 0u64..20).boxed()
    }
    fn apply(&mut self, me: &ReplicaId, (v, now): &(u8, u64)) {
        self.set(me, json!(v), *now).unwrap();
    }
}

impl Sim for OrSet {
    fn delete_object(&mut self, me: &ReplicaId, now: u64) {
        OrSet::delete_object(self, me, now).unwrap();
    }
    fn wrap(self) -> Object {
        Object::OrSet(self)
    }
    type Op = (bool, u8);
    fn op() -> BoxedStrategy<(bool, u8)> {
        (prop::bool::weighted(0.6), 0u8..6).boxed()
    }
    fn apply(&mut self, me: &ReplicaId, (add, v): &(bool, u8)) {
        if *add {
            self.add(me, json!(v)).unwrap();
        } else {
            self.remove(me, &json!(v)).unwrap();
        }
    }
}

/// A put of (key, value) at a wall clock (skewed, may go backwards), or an
/// unset of a key.
#[derive(Clone, Debug)]
enum MapOp {
    Put(u8, u8, u64),
    Unset(u8),
}

impl Sim for LwwMap {
    fn delete_object(&mut self, me: &ReplicaId, now: u64) {
        LwwMap::delete_object(self, me, now).unwrap();
    }
    fn wrap(self) -> Object {
        Object::Map(self)
    }
    type Op = MapOp;
    fn op() -> BoxedStrategy<MapOp> {
        prop_oneof![
            3 => (0u8..4, 0u8..4, 0u64..20).prop_map(|(k, v, t)| MapOp::Put(k, v, t)),
            1 => (0u8..4).prop_map(MapOp::Unset),
        ]
        .boxed()
    }
    fn apply(&mut self, me: &ReplicaId, op: &MapOp) {
        match op {
            MapOp::Put(k, v, now) => drop(self.put(me, &format!("k{k}"), json!(v), *now).unwrap()),
            MapOp::Unset(k) => drop(self.unset(me, &format!("k{k}")).unwrap()),
        }
    }
}

/// A bounded counter's change; one it refuses (not enough rights) is
/// skipped, as a user would see it refused.
#[derive(Clone, Debug)]
enum BoundedOp {
    Create(u64),
    Allocate(u64),
    Release(u64),
    Transfer(usize, u64),
}

impl Sim for BoundedCounter {
    const DELETE_EMPTIES: bool = false;
    fn delete_object(&mut self, me: &ReplicaId, now: u64) {
        BoundedCounter::delete_object(self, me, now).unwrap();
    }
    fn wrap(self) -> Object {
        Object::BoundedCounter(self)
    }
    fn check(&self) {
        assert!(
            self.value() >= 0 && self.value() <= self.limit() as i128,
            "{self:?}"
        );
    }
    type Op = BoundedOp;
    fn op() -> BoxedStrategy<BoundedOp> {
        prop_oneof![
            1 => (1u64..50).prop_map(BoundedOp::Create),
            3 => (1u64..20).prop_map(BoundedOp::Allocate),
            2 => (1u64..20).prop_map(BoundedOp::Release),
            2 => (0usize..5, 1u64..20).prop_map(|(to, n)| BoundedOp::Transfer(to, n)),
        ]
        .boxed()
    }
    fn apply(&mut self, me: &ReplicaId, op: &BoundedOp) {
        let _ = match op {
            BoundedOp::Create(n) => self.create(me, *n),
            BoundedOp::Allocate(n) => self.allocate(me, *n),
            BoundedOp::Release(n) => self.release(me, *n),
            BoundedOp::Transfer(to, n) => self.transfer(me, &replica(*to), *n),
        };
        self.check();
    }
}

#[derive(Clone, Debug)]
enum TextOp {
    Insert(f64, String),
    Delete(f64, usize),
}

impl Sim for Rga {
    fn delete_object(&mut self, me: &ReplicaId, now: u64) {
        Rga::delete_object(self, me, now).unwrap();
    }
    fn wrap(self) -> Object {
        Object::Rga(self)
    }
    fn check(&self) {
        self.dbg_check().unwrap();
    }
    type Op = TextOp;
    fn op() -> BoxedStrategy<TextOp> {
        prop_oneof![
            3 => (0.0..=1.0f64, "[ab€😀]{1,4}").prop_map(|(p, s)| TextOp::Insert(p, s)),
            1 => (0.0..=1.0f64, 1usize..4).prop_map(|(p, n)| TextOp::Delete(p, n)),
        ]
        .boxed()
    }
    fn apply(&mut self, me: &ReplicaId, op: &TextOp) {
        let len = self.len();
        match op {
            TextOp::Insert(p, s) => {
                let pos = (p * len as f64) as usize;
                self.insert(me, pos.min(len), s).unwrap();
            }
            TextOp::Delete(p, n) => {
                if len > 0 {
                    let pos = ((p * len as f64) as usize).min(len - 1);
                    self.delete(me, pos, (*n).min(len - pos)).unwrap();
                }
            }
        }
        self.check();
    }
}

#[derive(Clone, Debug)]
enum Step<Op> {
    Local(usize, Op),
    /// The replica deletes the whole object at a wall clock.
    Delete(usize, u64),
    /// Send the whole state from one replica to another (queued).
    SendState(usize, usize),
    /// Send what the receiver lacks, computed now against its version (queued).
    SendDelta(usize, usize),
    /// Deliver a queued message; `keep` leaves it queued to be delivered again.
    Deliver(usize, bool),
}

fn steps<T: Sim>() -> impl Strategy<Value = (usize, Vec<Step<T::Op>>)> {
    (3usize..=5).prop_flat_map(|n| {
        let step = prop_oneof![
            4 => (0..n, T::op()).prop_map(|(r, op)| Step::Local(r, op)),
            1 => (0..n, 0u64..20).prop_map(|(r, now)| Step::Delete(r, now)),
            1 => (0..n, 0..n).prop_map(|(a, b)| Step::SendState(a, b)),
            2 => (0..n, 0..n).prop_map(|(a, b)| Step::SendDelta(a, b)),
            3 => (any::<prop::sample::Index>(), any::<bool>()).prop_map(|(i, keep)| Step::Deliver(i.index(usize::MAX / 2), keep)),
        ];
        (Just(n), prop::collection::vec(step, 0..60))
    })
}

fn replica(i: usize) -> ReplicaId {
    ReplicaId::new(format!("r{i}")).unwrap()
}

fn merged<T: Crdt>(a: &T, b: &T) -> T {
    let mut m = a.clone();
    m.merge(b);
    m
}

/// Runs the schedule; returns the replicas' states before the final exchange.
fn run<T: Sim>(n: usize, schedule: &[Step<T::Op>]) -> Vec<T> {
    let ids: Vec<ReplicaId> = (0..n).map(replica).collect();
    let mut states = vec![T::default(); n];
    let mut queue: Vec<(usize, T)> = Vec::new();
    for step in schedule {
        match step {
            Step::Local(r, op) => states[*r].apply(&ids[*r], op),
            Step::Delete(r, now) => {
                Sim::delete_object(&mut states[*r], &ids[*r], *now);
                states[*r].check();
            }
            Step::SendState(a, b) => queue.push((*b, states[*a].clone())),
            Step::SendDelta(a, b) => {
                let delta = states[*a].delta_since(&states[*b].version());
                queue.push((*b, delta));
            }
            Step::Deliver(i, keep) => {
                if queue.is_empty() {
                    continue;
                }
                let i = i % queue.len();
                let (to, msg) = if *keep {
                    queue[i].clone()
                } else {
                    queue.remove(i)
                };
                honest(&states[to], &msg);
                states[to].merge(&msg);
                states[to].check();
            }
        }
    }
    // Whatever is still in flight arrives, late and in reverse order.
    while let Some((to, msg)) = queue.pop() {
        honest(&states[to], &msg);
        states[to].merge(&msg);
        states[to].check();
    }
    states
}

/// The merge gate never refuses what honest replicas send each other, in
/// any order, duplicated or late.
fn honest<T: Sim>(held: &T, msg: &T) {
    let (held, msg) = (held.clone().wrap(), msg.clone().wrap());
    if let Err(why) = held.check_merge(&msg) {
        panic!("an honest merge was refused: {why}\nheld: {held:?}\nmsg: {msg:?}");
    }
}

fn check_laws<T: Crdt>(states: &[T]) -> Result<(), TestCaseError> {
    for a in states {
        prop_assert_eq!(&merged(a, a), a, "merge is not idempotent");
        for b in states {
            prop_assert_eq!(merged(a, b), merged(b, a), "merge is not commutative");
            for c in states.iter().take(3) {
                prop_assert_eq!(
                    merged(&merged(a, b), c),
                    merged(a, &merged(b, c)),
                    "merge is not associative"
                );
            }
            // A delta since b's version brings b as far as the whole state would.
            let delta = a.delta_since(&b.version());
            prop_assert_eq!(
                merged(b, &delta),
                merged(b, a),
                "delta differs from the full state"
            );
        }
    }
    Ok(())
}

/// Converge by deltas only: everyone sends to replica 0, then 0 to everyone.
fn converge_by_deltas<T: Crdt>(states: &mut [T]) {
    for i in 1..states.len() {
        let d = states[i].delta_since(&states[0].version());
        states[0].merge(&d);
    }
    for i in 1..states.len() {
        let d = states[0].delta_since(&states[i].version());
        states[i].merge(&d);
    }
}

fn check_convergence<T: Crdt>(mut states: Vec<T>) -> Result<(), TestCaseError> {
    let mut by_state = states.clone();
    let full = states.iter().fold(T::default(), |acc, s| merged(&acc, s));
    converge_by_deltas(&mut states);
    for s in &states {
        prop_assert_eq!(s, &full, "delta exchange did not converge to the join");
        prop_assert_eq!(s.value_json(), full.value_json());
        prop_assert!(full.version().le(&s.version()));
    }
    // And by whole states in reverse order.
    for s in by_state.iter_mut() {
        for other in states.iter().rev() {
            s.merge(other);
        }
        prop_assert_eq!(&*s, &full);
    }
    Ok(())
}

macro_rules! properties {
    ($($name:ident: $ty:ty),* $(,)?) => {$(
        mod $name {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(cases(96)))]
                #[test]
                fn merge_is_a_join_and_deltas_equal_states((n, schedule) in steps::<$ty>()) {
                    let states = run::<$ty>(n, &schedule);
                    check_laws(&states)?;
                }

                #[test]
                fn replicas_converge_under_any_delivery((n, schedule) in steps::<$ty>()) {
                    let states = run::<$ty>(n, &schedule);
                    check_convergence(states)?;
                }

                #[test]
                fn deltas_survive_the_wire((n, schedule) in steps::<$ty>()) {
                    let states = run::<$ty>(n, &schedule);
                    for a in &states {
                        for b in &states {
                            let mut delta = Store::new(replica(0));
                            delta.insert_object("x", a.delta_since(&b.version()).wrap());
                            // The text writers say what the value encoders say.
                            let text = crdt::sync::protocol::update_text(&delta);
                            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
                            prop_assert_eq!(parsed, crdt::sync::protocol::update(&delta));
                            let wire = crdt::sync::protocol::objects_json(&delta).to_string();
                            let back = crdt::sync::protocol::decode_objects(Some(&serde_json::from_str(&wire).unwrap()), &replica(0))
                                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                            let mut got = Store::new(replica(0));
                            got.insert_object("x", b.clone().wrap());
                            got.check_mergeable(&back).map_err(|e| TestCaseError::fail(e.to_string()))?;
                            got.merge(&back);
                            let mut want = Store::new(replica(0));
                            want.insert_object("x", merged(b, a).wrap());
                            prop_assert_eq!(got, want);
                        }
                    }
                }

                /// A delta split into parts for messages under a size limit:
                /// each part passes the gate on its own once the parts before
                /// it are merged, and all of them give what the whole delta
                /// gives; in any order they give the same state.
                #[test]
                fn delta_parts_merge_like_the_delta((n, schedule) in steps::<$ty>(), budget in 1usize..300) {
                    let states = run::<$ty>(n, &schedule);
                    for a in &states {
                        for b in &states {
                            let delta = a.delta_since(&b.version()).wrap();
                            let parts = delta.parts(budget);
                            prop_assert!(!parts.is_empty());
                            let mut got = Store::new(replica(0));
                            got.insert_object("x", b.clone().wrap());
                            for p in &parts {
                                got.check_mergeable_object("x", p).map_err(|e| TestCaseError::fail(e.to_string()))?;
                                got.merge_object("x", p);
                            }
                            let got = got.get("x", delta.ty()).unwrap().clone();
                            let want = merged(b, a).wrap();
                            prop_assert_eq!(&got, &want);
                            if !matches!(delta, Object::Rga(_)) {
                                let mut rev = b.clone().wrap();
                                for p in parts.iter().rev() {
                                    rev.merge(p);
                                }
                                prop_assert_eq!(&rev, &want);
                                // Merged together, the parts are the delta.
                                let mut whole = parts[0].clone();
                                for p in &parts[1..] {
                                    whole.merge(p);
                                }
                                prop_assert_eq!(&whole, &delta);
                            }
                        }
                    }
                }

                /// A delete removes everything it saw, on every replica it
                /// reaches; a change made concurrently survives it (the
                /// object comes back), and one it saw does not.
                #[test]
                fn a_delete_removes_what_it_saw_and_a_concurrent_change_survives(
                    (n, schedule) in steps::<$ty>(),
                    op in <$ty as Sim>::op(),
                ) {
                    let mut states = run::<$ty>(n, &schedule);
                    converge_by_deltas(&mut states);
                    let empty = <$ty>::default().wrap().value_json();
                    let mut a = states[0].clone();
                    Sim::delete_object(&mut a, &replica(0), 7);
                    let gone = a.clone().wrap();
                    prop_assert!(gone.is_deleted());
                    let kept = states[0].clone().wrap().value_json();
                    let after = if <$ty as Sim>::DELETE_EMPTIES { empty.clone() } else { kept };
                    prop_assert_eq!(gone.value_json(), after.clone());
                    // Every other replica, once it has the delete.
                    for s in &states[1..] {
                        let m = merged(s, &a).wrap();
                        prop_assert!(m.is_deleted());
                        prop_assert_eq!(m.value_json(), after.clone());
                    }
                    // A change made without seeing the delete.
                    let mut b = states[1].clone();
                    let before = b.version();
                    b.apply(&replica(1), &op);
                    let changed = b.version() != before;
                    let m = merged(&a, &b).wrap();
                    prop_assert_eq!(m.is_deleted(), !changed);
                    prop_assert_eq!(merged(&b, &a).wrap(), m.clone());
                    if !changed {
                        prop_assert_eq!(m.value_json(), after.clone());
                    }
                    // A change made after seeing the delete brings it back.
                    let mut c = merged(&states[2], &a);
                    let before = c.version();
                    c.apply(&replica(2), &op);
                    prop_assert_eq!(c.clone().wrap().is_deleted(), c.version() == before);
                }

                #[test]
                fn snapshots_round_trip((n, schedule) in steps::<$ty>()) {
                    let states = run::<$ty>(n, &schedule);
                    let mut store = Store::new(replica(0));
                    for (i, s) in states.into_iter().enumerate() {
                        store.merge_object(&format!("x:{i}"), &s.wrap());
                    }
                    let text = snapshot::encode(&store);
                    let back = snapshot::decode(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(&back, &store);
                    prop_assert_eq!(snapshot::encode(&back), text);
                }
            }
        }
    )*};
}

properties! {
    g_counter: GCounter,
    pn_counter: PnCounter,
    lww_register: LwwRegister,
    or_set: OrSet,
    rga: Rga,
    map: LwwMap,
    bounded_counter: BoundedCounter,
}

proptest! {
    /// One replica's edits behave exactly like editing a plain vector of characters.
    #[test]
    fn rga_matches_a_plain_text_model(ops in prop::collection::vec(<Rga as Sim>::op(), 0..80)) {
        let me = replica(0);
        let mut rga = Rga::default();
        let mut model: Vec<char> = Vec::new();
        for op in &ops {
            let len = model.len();
            match op {
                TextOp::Insert(p, s) => {
                    let pos = ((p * len as f64) as usize).min(len);
                    model.splice(pos..pos, s.chars());
                }
                TextOp::Delete(p, n) if len > 0 => {
                    let pos = ((p * len as f64) as usize).min(len - 1);
                    model.drain(pos..pos + (*n).min(len - pos));
                }
                TextOp::Delete(..) => {}
            }
            rga.apply(&me, op);
            prop_assert_eq!(rga.text(), model.iter().collect::<String>());
        }
    }

    /// Runs typed concurrently at one place stay contiguous.
    #[test]
    fn concurrent_runs_never_interleave(
        base in "[xyz]{0,6}",
        runs in prop::collection::vec("[a-w]{2,6}", 2..5),
        at in 0.0..=1.0f64,
    ) {
        let mut start = Rga::default();
        start.insert(&replica(99), 0, &base).unwrap();
        let pos = ((at * base.chars().count() as f64) as usize).min(base.chars().count());
        let mut all = start.clone();
        for (i, run) in runs.iter().enumerate() {
            let mut r = start.clone();
            r.insert(&replica(i), pos, run).unwrap();
            all.merge(&r);
        }
        let text = all.text();
        for run in &runs {
            prop_assert!(text.contains(run.as_str()), "{run:?} is split in {text:?}");
        }
    }
}

/// Cases per property: `default`, or `PROPTEST_CASES` for a longer run.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Local changes with their own deltas (what the history records and a
/// batch line costs): the delta merged into the state before the change
/// gives the state after it, the gate takes it, and a replica that gets
/// only the deltas, in order, ends equal.
trait OpDelta: Sim {
    fn apply_delta(&mut self, me: &ReplicaId, op: &Self::Op) -> Self;
}

impl OpDelta for OrSet {
    fn apply_delta(&mut self, me: &ReplicaId, (add, v): &(bool, u8)) -> OrSet {
        if *add {
            self.add_delta(me, json!(v)).unwrap().1
        } else {
            self.remove_delta(me, &json!(v))
                .unwrap()
                .unwrap_or_default()
        }
    }
}

impl OpDelta for Rga {
    fn apply_delta(&mut self, me: &ReplicaId, op: &TextOp) -> Rga {
        let len = self.len();
        // The same change made on a copy, as text written straight.
        let mut twin = self.clone();
        let (delta, text) = match op {
            TextOp::Insert(p, s) => {
                let pos = ((p * len as f64) as usize).min(len);
                (
                    self.insert_delta(me, pos, s).unwrap(),
                    twin.insert_delta_text(me, pos, s).unwrap(),
                )
            }
            TextOp::Delete(p, n) if len > 0 => {
                let pos = ((p * len as f64) as usize).min(len - 1);
                let n = (*n).min(len - pos);
                (
                    self.delete_delta(me, pos, n).unwrap(),
                    twin.delete_delta_text(me, pos, n).unwrap(),
                )
            }
            TextOp::Delete(..) => (Rga::default(), {
                let mut t = String::new();
                Object::Rga(Rga::default()).write_state(&mut t);
                t
            }),
        };
        assert_eq!(&twin, self, "the two ways changed the text differently");
        let mut want = String::new();
        Object::Rga(delta.clone()).write_state(&mut want);
        assert_eq!(text, want, "the delta written straight differs");
        delta
    }
}

fn check_op_deltas<T: OpDelta>(
    start: &[(usize, T::Op)],
    ops: &[(usize, T::Op)],
) -> Result<(), TestCaseError> {
    let ids: Vec<ReplicaId> = (0..3).map(replica).collect();
    // A shared past made by three replicas.
    let mut parts = vec![T::default(); 3];
    for (r, op) in start {
        parts[*r % 3].apply(&ids[*r % 3], op);
    }
    let mut state = T::default();
    for p in &parts {
        state.merge(p);
    }
    let mut follower = state.clone();
    let mut from_nothing = T::default();
    from_nothing.merge(&state);
    for (r, op) in ops {
        let before = state.clone();
        let delta = state.apply_delta(&ids[*r % 3], op);
        honest(&before, &delta);
        prop_assert_eq!(
            &merged(&before, &delta),
            &state,
            "the delta is not the change"
        );
        honest(&follower, &delta);
        // The text written straight is the snapshot encoder's.
        for o in [state.clone().wrap(), delta.clone().wrap()] {
            let mut text = String::new();
            o.write_state(&mut text);
            prop_assert_eq!(text, o.state_json().to_string());
        }
        follower.merge(&delta);
        from_nothing.merge(&delta);
    }
    prop_assert_eq!(&follower, &state);
    prop_assert_eq!(&from_nothing, &state);
    Ok(())
}

proptest! {
    #[test]
    fn or_set_op_deltas_are_the_changes(
        start in prop::collection::vec((0usize..3, OrSet::op()), 0..20),
        ops in prop::collection::vec((0usize..3, OrSet::op()), 1..30),
    ) {
        check_op_deltas::<OrSet>(&start, &ops)?;
    }

    #[test]
    fn rga_op_deltas_are_the_changes(
        start in prop::collection::vec((0usize..3, Rga::op()), 0..30),
        ops in prop::collection::vec((0usize..3, Rga::op()), 1..40),
    ) {
        check_op_deltas::<Rga>(&start, &ops)?;
    }
}

//! The algebra every type shares.

use std::fmt::Debug;

use serde_json::Value;

use crate::clock::VersionVector;

/// A state-based CRDT whose states form a join-semilattice.
///
/// `merge` is the join: commutative, associative and idempotent, and it never
/// fails. `delta_since(vv)` is a (usually small) state holding what a replica
/// at `vv` lacks; merging it into a replica whose version is at or after
/// `vv` gives the same state as merging the whole of `self`.
pub trait Crdt: Clone + Debug + Default + PartialEq {
    /// Merges `other` into `self`.
    fn merge(&mut self, other: &Self);

    /// The events this state has seen, as a version vector.
    fn version(&self) -> VersionVector;

    /// What a replica at `vv` lacks, as a state to merge.
    fn delta_since(&self, vv: &VersionVector) -> Self;

    /// True when a replica at `vv` already has everything in `self`.
    fn covered_by(&self, vv: &VersionVector) -> bool;

    /// The user-visible value as JSON (a number, a value, a list, a string).
    fn value_json(&self) -> Value;
}

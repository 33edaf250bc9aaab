//! Typed errors of the library. The CLI turns them into messages and exit codes.

use thiserror::Error;

/// A replica id that is empty, too long or has characters outside `A-Z a-z 0-9 . _ - : @`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid replica id {0:?}: use 1 to 128 characters from A-Z a-z 0-9 . _ - : @")]
pub struct InvalidReplicaId(pub String);

/// A local change that cannot be applied. The state is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpError {
    #[error("counter overflow: adding {amount} to {current} exceeds the largest count")]
    Overflow { current: String, amount: u64 },
    #[error(
        "counter overflow: subtracting {amount} from {current} passes the smallest count (one replica's decrements add up to at most 2^64 - 1)"
    )]
    Underflow { current: String, amount: u64 },
    #[error("the amount must be at least 1")]
    ZeroAmount,
    #[error("position {pos} is past the end of the text (length {len})")]
    PositionOutOfRange { pos: usize, len: usize },
    #[error("range {pos}..{end} is past the end of the text (length {len})")]
    RangeOutOfRange { pos: usize, end: usize, len: usize },
    #[error(
        "replica {replica} has used every sequence number of this object (2^53 - 1); no replica makes that many changes, so the state holds a forged one"
    )]
    Exhausted { replica: String },
}

/// Why a snapshot could not be loaded. Every variant names where the problem is.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SnapshotError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("not a crdt snapshot: field \"format\" is {found}, expected \"crdt-snapshot\"")]
    Format { found: String },
    #[error("unsupported snapshot version {found} (this build reads version 1)")]
    Version { found: String },
    #[error(
        "{path}: unknown type {found} (expected g-counter, pn-counter, lww-register, or-set, rga or map)"
    )]
    UnknownType { path: String, found: String },
    #[error("{path}: expected {expected}, found {found}")]
    Shape {
        path: String,
        expected: String,
        found: String,
    },
    #[error("{path}: impossible causal state: {detail}")]
    Causal { path: String, detail: String },
}

impl SnapshotError {
    /// A short stable name of the kind of error, for `--json` output and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            SnapshotError::Syntax { .. } => "syntax",
            SnapshotError::Format { .. } => "format",
            SnapshotError::Version { .. } => "version",
            SnapshotError::UnknownType { .. } => "unknown-type",
            SnapshotError::Shape { .. } => "shape",
            SnapshotError::Causal { .. } => "causal",
        }
    }
}

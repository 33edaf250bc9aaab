//! `crdt`: named CRDTs that converge without coordination.
//!
//! This library holds the data types, the store and the sync layer; it has
//! no terminal code, and network code only with the `net` feature. Layers
//! (each uses only those below it):
//!
//! - types: [`GCounter`], [`PnCounter`], [`LwwRegister`], [`OrSet`], [`Rga`],
//!   the causal metadata ([`Dot`], [`VersionVector`], [`CausalContext`],
//!   [`Hlc`]) and the [`Crdt`] trait (merge, version, delta);
//! - store: [`Store`] of named objects, the JSON [`snapshot`] format and
//!   the [`objects_line`] codec, the local replica on SQLite ([`db`]) and
//!   the old JSON state files ([`statefile`]);
//! - sync: the protocol as pure functions, server persistence and metrics;
//!   with the `net` feature (not in `--no-default-features`), the
//!   WebSocket server and client. Nothing below it uses it.
//!
//! ```
//! use crdt::{Crdt, GCounter, ReplicaId};
//! let mut agent1 = GCounter::default();
//! let mut agent2 = GCounter::default();
//! agent1.inc(&ReplicaId::new("agent-1").unwrap(), 1).unwrap();
//! agent2.inc(&ReplicaId::new("agent-2").unwrap(), 1).unwrap();
//! agent1.merge(&agent2);
//! assert_eq!(agent1.value(), 2);
//! ```

pub mod bcounter;
pub mod clock;
mod codec;
pub mod context;
mod counts;
pub mod db;
pub mod deletion;
pub mod diff;
pub mod edit;
pub mod error;
pub mod gcounter;
pub mod history;
pub mod lww;
pub mod map;
pub mod object;
pub mod objects_line;
pub mod orset;
pub mod pncounter;
pub mod rga;
pub mod snapshot;
pub mod statefile;
pub mod store;
pub mod sync;
mod traits;

pub use bcounter::BoundedCounter;
pub use clock::{Causality, Dot, Hlc, MAX_SEQ, ReplicaId, VersionVector};
pub use codec::{MAX_DEPTH, value_depth};
pub use context::CausalContext;
pub use edit::{Applied, Edit, EditError};
pub use error::{InvalidReplicaId, OpError, SnapshotError};
pub use gcounter::GCounter;
pub use lww::LwwRegister;
pub use map::LwwMap;
pub use object::{CrdtType, Object};
pub use orset::OrSet;
pub use pncounter::PnCounter;
pub use rga::Rga;
pub use store::{Store, StoreVersion};
pub use traits::Crdt;

//! The sync layer: protocol messages (pure, tested without sockets), server
//! persistence and metrics, and with the `net` feature the WebSocket server
//! and client. See `docs/protocol.md`. Nothing here prints.

pub mod metrics;
pub mod persist;
pub mod protocol;

#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "net")]
pub mod server;

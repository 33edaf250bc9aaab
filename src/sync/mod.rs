//! The sync layer: protocol messages (pure, tested without sockets), server
//! persistence and metrics, and with the `net` feature the WebSocket server
//! and client. See `docs/protocol.md`. Nothing here prints.

pub mod auth;
pub mod metrics;
pub mod parts;
pub mod persist;
pub mod protocol;
pub mod recent;

#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "net")]
pub mod cluster;
#[cfg(feature = "net")]
pub(crate) mod offload;
#[cfg(feature = "net")]
pub mod server;

/// A read that timed out (the socket has a read timeout): try again later.
#[cfg(feature = "net")]
pub(crate) fn is_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

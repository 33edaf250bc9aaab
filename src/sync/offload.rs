//! Work the server takes off its event loop, so that one large message
//! does not make every other client wait: decoding a large frame (its JSON
//! and its states, and the log line of a push), and measuring the encoded
//! size of a large object for `/metrics`. One worker thread; it wakes the
//! loop (a `mio::Waker`) when a result is ready. The loop keeps everything
//! that touches the store, the log and the sockets.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use mio::{Token, Waker};

use crate::clock::ReplicaId;
use crate::object::{CrdtType, Object};
use crate::store::Store;
use crate::sync::protocol::{self, Request};

/// Frames larger than this are decoded by the worker (smaller ones cost
/// less than the hand-off).
pub(crate) const BIG_FRAME: usize = 64 << 10;

/// Objects whose state is larger than this are measured by the worker.
pub(crate) const BIG_OBJECT: usize = 64 << 10;

pub(crate) enum Job {
    /// Decode one text frame of connection `token` (`replica`: its hello).
    Frame {
        token: Token,
        /// The frame as tungstenite read it (shared bytes: not copied).
        text: tungstenite::Utf8Bytes,
        replica: Option<ReplicaId>,
        started: Instant,
    },
    /// Measure an object's encoded state (shared: a pointer, not a copy).
    Size {
        key: (String, CrdtType),
        object: Arc<Object>,
    },
}

pub(crate) enum Done {
    Frame {
        token: Token,
        started: Instant,
        decoded: Request,
    },
    Size {
        key: (String, CrdtType),
        bytes: usize,
    },
    Snapshot(std::io::Result<()>),
}

/// The encoded size of an object's state, in bytes.
pub(crate) fn state_size(o: &Object) -> usize {
    let mut s = String::new();
    o.write_state(&mut s);
    s.len()
}

pub(crate) struct Worker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// For the snapshot writer: where it reports, and how it wakes the loop.
    report: Sender<Done>,
    waker: Arc<Waker>,
    /// A compaction's snapshot being written (its own thread: it takes
    /// seconds for a large state, and frames must not wait behind it).
    snapshot: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn start(waker: Arc<Waker>) -> std::io::Result<Worker> {
        let (jobs, inbox) = channel::<Job>();
        let (outbox, done) = channel::<Done>();
        let (report, wake) = (outbox.clone(), waker.clone());
        let thread = std::thread::Builder::new()
            .name("crdt-decode".into())
            .spawn(move || {
                for job in inbox {
                    let result = match job {
                        Job::Frame {
                            token,
                            text,
                            replica,
                            started,
                        } => Done::Frame {
                            token,
                            started,
                            decoded: protocol::decode_request(text.as_str(), replica.as_ref()),
                        },
                        Job::Size { key, object } => Done::Size {
                            bytes: state_size(&object),
                            key,
                        },
                    };
                    if outbox.send(result).is_err() {
                        break;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Worker {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            report,
            waker: wake,
            snapshot: None,
        })
    }

    /// Encodes a frozen copy of the store (a pointer per object) and writes
    /// it durably as the snapshot at `path` (atomically, then the
    /// directory), on a thread of its own; reports [`Done::Snapshot`].
    pub fn write_snapshot(&mut self, path: PathBuf, store: Store) -> std::io::Result<()> {
        if let Some(t) = self.snapshot.take() {
            let _ = t.join();
        }
        let (report, waker) = (self.report.clone(), self.waker.clone());
        self.snapshot = Some(
            std::thread::Builder::new()
                .name("crdt-snapshot".into())
                .spawn(move || {
                    let text = crate::snapshot::encode(&store);
                    drop(store);
                    let written = crate::statefile::write_atomic(&path, text.as_bytes());
                    let _ = report.send(Done::Snapshot(written));
                    let _ = waker.wake();
                })?,
        );
        Ok(())
    }

    pub fn send(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The worker lives as long as the server: a send cannot fail
            // unless it panicked, and then the loop sees no result.
            let _ = jobs.send(job);
        }
    }

    pub fn try_recv(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // A snapshot write in flight finishes before the server writes its
        // own (they share the temporary file's name).
        if let Some(t) = self.snapshot.take() {
            let _ = t.join();
        }
    }
}

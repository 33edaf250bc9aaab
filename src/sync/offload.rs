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
use serde_json::Value;

use crate::clock::ReplicaId;
use crate::object::{CrdtType, Object};
use crate::store::Store;
use crate::sync::persist::{Entry, encode_entry};
use crate::sync::protocol::{self, ObjectIn, ProtoError};

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
        decoded: Decoded,
    },
    Size {
        key: (String, CrdtType),
        bytes: usize,
    },
    Snapshot(std::io::Result<()>),
}

/// A frame, decoded as the loop would have.
pub(crate) enum Decoded {
    /// A push from a greeted connection: its delta (or why not) and, when
    /// it decoded, its log line (newline included).
    Push {
        id: Option<Value>,
        delta: Result<Store, ProtoError>,
        line: String,
    },
    /// A `sync`: its id and fields (or why they do not decode).
    Sync {
        id: Option<Value>,
        request: Result<protocol::SyncRequest, ProtoError>,
    },
    /// Any other message: the parsed JSON, or a `bad-json` error.
    Message(Result<Value, ProtoError>),
}

/// The top level of a message, its values left as JSON text.
#[derive(serde::Deserialize)]
pub(crate) struct PushFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub id: Option<&'a serde_json::value::RawValue>,
    /// Read in the same pass (a list of another shape fails the whole
    /// frame, which then takes the value path and its precise errors).
    #[serde(borrow)]
    pub objects: Option<Vec<ObjectIn<'a>>>,
}

/// A push read at its top level: its id and its objects decoded (the
/// server's inline path and the worker share it).
pub(crate) fn decode_push(
    top: &PushFrame<'_>,
    from: &ReplicaId,
) -> (Option<Value>, Result<Store, ProtoError>) {
    let id = top
        .id
        .and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
    let delta = match &top.objects {
        Some(list) => protocol::decode_objects_in(list, from),
        None => protocol::decode_objects(None, from),
    };
    (id, delta.map_err(ProtoError::from))
}

/// Decodes a frame: what [`Decoded`] says. Pure; the worker runs it.
pub(crate) fn decode_frame(text: &str, replica: Option<&ReplicaId>) -> Decoded {
    if let Some(from) = replica
        && let Ok(top) = serde_json::from_str::<PushFrame<'_>>(text)
        && top.ty == "push"
    {
        let (id, delta) = decode_push(&top, from);
        let mut line = String::new();
        if let (Ok(d), Some(objects)) = (&delta, top.objects.as_deref()) {
            encode_entry(&mut line, &Entry::Sent { objects, delta: d });
        } else if let Ok(d) = &delta {
            encode_entry(&mut line, &Entry::Delta(d));
        }
        return Decoded::Push { id, delta, line };
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if replica.is_some() && v.get("type").and_then(Value::as_str) == Some("sync") => {
            Decoded::Sync {
                id: v.get("id").cloned(),
                request: protocol::decode_sync(&v),
            }
        }
        Ok(v) => Decoded::Message(Ok(v)),
        Err(e) => Decoded::Message(Err(ProtoError::new("bad-json", e.to_string()))),
    }
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
                            decoded: decode_frame(text.as_str(), replica.as_ref()),
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

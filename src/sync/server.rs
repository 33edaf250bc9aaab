//! `crdt serve`: a thread per connection, plain HTTP (`/healthz`, `/metrics`)
//! and WebSocket (`/ws`) on one port. The protocol logic is in
//! [`super::protocol`]; this file moves frames and keeps the shared state.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::clock::ReplicaId;
use crate::store::Store;
use crate::sync::metrics::Metrics;
use crate::sync::persist::{Durable, Loaded};
use crate::sync::protocol::{self, Effect, Session};

/// Settings of `crdt serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data: PathBuf,
    pub token: Option<String>,
    pub max_message_bytes: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// Receives one line per connection event (the CLI prints them).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

struct Conn {
    tx: Sender<String>,
    watching: Option<Vec<String>>,
}

struct State {
    store: Store,
    metrics: Metrics,
    /// The connections that watch something (a push visits only these).
    watchers: std::collections::BTreeSet<u64>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
}

/// A push waiting for the committer: written with others in one fsync.
struct Commit {
    delta: Store,
    msg_id: Option<serde_json::Value>,
    conn: u64,
    started: Instant,
    reply: Sender<serde_json::Value>,
}

/// Pushes waiting to be written; the first thread to find no leader leads.
#[derive(Default)]
struct Queue {
    pending: Vec<Commit>,
    leading: bool,
}

struct Shared {
    state: Mutex<State>,
    config: Config,
    log: Log,
    stop: Arc<AtomicBool>,
    queue: Mutex<Queue>,
    durable: Mutex<Durable>,
}

pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Loads the durable state and binds the port. `stop` ends [`Server::run`].
    pub fn bind(
        config: Config,
        log: Log,
        stop: Arc<AtomicBool>,
    ) -> Result<(Server, Loaded), String> {
        let (durable, store, loaded) = Durable::open(&config.data, new_server_id)?;
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let state = State {
            store,
            metrics: Metrics::default(),
            watchers: Default::default(),
            conns: HashMap::new(),
            next_conn: 1,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            config,
            log,
            stop,
            queue: Mutex::new(Queue::default()),
            durable: Mutex::new(durable),
        });
        Ok((Server { listener, shared }, loaded))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn replica(&self) -> ReplicaId {
        self.lock().store.replica().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts connections until the stop flag is set, then waits for the
    /// connections to end (they notice the flag too) and compacts the log.
    pub fn run(&self) -> io::Result<()> {
        let mut workers = Vec::new();
        while !self.shared.stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    let shared = self.shared.clone();
                    workers.push(std::thread::spawn(move || {
                        if let Err(e) = serve_stream(&shared, stream, peer) {
                            (shared.log)(format!("{peer}: connection error: {e}"));
                        }
                    }));
                    workers.retain(|w| !w.is_finished());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(e),
            }
        }
        for w in workers {
            let _ = w.join();
        }
        // Everything acknowledged is in the log already; write a snapshot.
        // Same lock order as the writers: the log, then the state.
        let mut durable = self
            .shared
            .durable
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let state = self.lock();
        durable.compact(&state.store)
    }
}

/// Group commit: a thread with a push joins the queue; if no thread is
/// writing, it becomes the leader and writes every queued push with one
/// fsync, merges, acknowledges and forwards them, until the queue is empty.
/// A lone client pays one fsync and no thread hand-off.
fn commit(shared: &Shared, commit: Commit) -> Option<serde_json::Value> {
    let (tx, rx) = mpsc::channel();
    let lead = {
        let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.pending.push(Commit {
            reply: tx,
            ..commit
        });
        !std::mem::replace(&mut q.leading, true)
    };
    if lead {
        loop {
            let batch = {
                let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
                if q.pending.is_empty() {
                    q.leading = false;
                    break;
                }
                std::mem::take(&mut q.pending)
            };
            write_batch(shared, batch);
        }
    }
    rx.recv().ok()
}

fn write_batch(shared: &Shared, batch: Vec<Commit>) {
    // A text delta that refers to characters the server lacks is refused
    // before anything is written.
    let batch: Vec<Commit> = {
        let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        batch
            .into_iter()
            .filter_map(|c| match state.store.check_mergeable(&c.delta) {
                Ok(()) => Some(c),
                Err(why) => {
                    let _ = c.reply.send(
                        protocol::ProtoError::new("bad-state", why).to_json(c.msg_id.as_ref()),
                    );
                    None
                }
            })
            .collect()
    };
    if batch.is_empty() {
        return;
    }
    let mut durable = shared.durable.lock().unwrap_or_else(|p| p.into_inner());
    let written = durable.append(&batch.iter().map(|c| &c.delta).collect::<Vec<_>>());
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let State {
        store,
        metrics,
        conns,
        watchers,
        ..
    } = &mut *state;
    for c in batch {
        let reply = match &written {
            Err(err) => protocol::ProtoError::new(
                "internal",
                format!("could not write the change durably: {err}"),
            )
            .to_json(c.msg_id.as_ref()),
            Ok(()) => {
                let (ack, resolutions) = protocol::commit_push(store, &c.delta, c.msg_id.as_ref());
                for r in resolutions {
                    metrics.conflict(r.ty.as_str(), r.kind);
                }
                for other in watchers.iter().filter(|w| **w != c.conn) {
                    let Some(conn) = conns.get(other) else {
                        continue;
                    };
                    if let Some(update) = conn
                        .watching
                        .as_ref()
                        .and_then(|sel| protocol::update_for(&c.delta, sel))
                    {
                        let _ = conn.tx.send(update.to_string());
                    }
                }
                let ms = c.started.elapsed().as_secs_f64() * 1e3;
                let mut types: Vec<&str> = c.delta.iter().map(|(_, o)| o.ty().as_str()).collect();
                types.dedup();
                for t in types {
                    metrics.observe(t, "push", ms);
                }
                ack
            }
        };
        let _ = c.reply.send(reply);
    }
    let _ = durable.maybe_compact(store);
}

fn new_server_id() -> ReplicaId {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::process::id()) as u32;
    ReplicaId::new(format!("server-{n:08x}")).expect("valid")
}

/// The request line and headers, read without consuming them (tungstenite
/// reads the upgrade request itself).
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    len: usize,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn peek_head(stream: &TcpStream) -> io::Result<Head> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.peek(&mut buf)?;
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]);
            let mut lines = text.split("\r\n");
            let mut first = lines.next().unwrap_or("").split(' ');
            let method = first.next().unwrap_or("").to_string();
            let path = first.next().unwrap_or("").to_string();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            return Ok(Head {
                method,
                path,
                headers,
                len: end + 4,
            });
        }
        if n == buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        if n == 0 && Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no request"));
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "incomplete request",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn respond(
    mut stream: TcpStream,
    head: &Head,
    status: &str,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let mut discard = vec![0u8; head.len];
    stream.read_exact(&mut discard)?;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn serve_stream(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = peek_head(&stream)?;
    let path = head.path.split('?').next().unwrap_or("");
    match (head.method.as_str(), path) {
        ("GET", "/healthz") => respond(stream, &head, "200 OK", "text/plain", "ok\n"),
        ("GET", "/metrics") => {
            let body = {
                let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
                state.metrics.render(&state.store)
            };
            respond(stream, &head, "200 OK", "text/plain; version=0.0.4", &body)
        }
        (_, "/ws") => {
            if let Some(token) = &shared.config.token {
                let expected = format!("Bearer {token}");
                if head.header("authorization") != Some(expected.as_str()) {
                    (shared.log)(format!("{peer}: refused: missing or wrong bearer token"));
                    return respond(
                        stream,
                        &head,
                        "401 Unauthorized",
                        "text/plain",
                        "a bearer token is required\n",
                    );
                }
            }
            let full = {
                let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
                state.conns.len() >= shared.config.max_connections
            };
            if full {
                (shared.log)(format!(
                    "{peer}: refused: {} connections already",
                    shared.config.max_connections
                ));
                return respond(
                    stream,
                    &head,
                    "503 Service Unavailable",
                    "text/plain",
                    "too many connections\n",
                );
            }
            websocket(shared, stream, peer)
        }
        _ => respond(
            stream,
            &head,
            "404 Not Found",
            "text/plain",
            "try /ws, /healthz or /metrics\n",
        ),
    }
}

fn websocket(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    // Small buffers: 1,000 idle clients should cost little memory.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(shared.config.max_message_bytes))
        .max_frame_size(Some(shared.config.max_message_bytes));
    let mut ws = tungstenite::accept_with_config(stream, Some(config))
        .map_err(|e| io::Error::other(e.to_string()))?;
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))?;
    let (tx, rx) = mpsc::channel();
    let id = {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = state.next_conn;
        state.next_conn += 1;
        state.conns.insert(id, Conn { tx, watching: None });
        state.metrics.connected += 1;
        state.metrics.connections_total += 1;
        id
    };
    (shared.log)(format!("{peer}: connected (connection {id})"));
    let result = connection_loop(shared, &mut ws, id, &rx, peer);
    {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.conns.remove(&id);
        state.watchers.remove(&id);
        state.metrics.connected -= 1;
    }
    match &result {
        Ok(why) => (shared.log)(format!("{peer}: disconnected ({why})")),
        Err(e) => (shared.log)(format!("{peer}: disconnected ({e})")),
    }
    result.map(|_| ())
}

fn close(ws: &mut WebSocket<TcpStream>, code: CloseCode, reason: &str) {
    let _ = ws.close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }));
    // Let the close frame go out; the peer may already be gone.
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(_) => {}
            Err(e) if super::is_timeout(&e) => {}
            Err(_) => break,
        }
    }
}

fn send(ws: &mut WebSocket<TcpStream>, shared: &Shared, text: String) -> io::Result<()> {
    let n = text.len() as u64;
    ws.send(Message::text(text))
        .map_err(|e| io::Error::other(e.to_string()))?;
    shared
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .metrics
        .bytes_out += n;
    Ok(())
}

fn connection_loop(
    shared: &Arc<Shared>,
    ws: &mut WebSocket<TcpStream>,
    id: u64,
    rx: &Receiver<String>,
    peer: SocketAddr,
) -> io::Result<String> {
    let mut session = Session::default();
    let mut last_heard = Instant::now();
    let mut pinged = false;
    let mut tick = 50;
    let idle = shared.config.idle_timeout;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            close(ws, CloseCode::Away, "server shutting down");
            return Ok("server shutting down".into());
        }
        while let Ok(update) = rx.try_recv() {
            send(ws, shared, update)?;
        }
        // Watchers wake up often so forwarded updates go out quickly.
        let want_tick = if session.watching.is_some() { 5 } else { 50 };
        if want_tick != tick {
            tick = want_tick;
            let _ = ws
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(tick)));
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                last_heard = Instant::now();
                pinged = false;
                let effects = handle_text(shared, &mut session, id, text.as_str());
                for e in effects {
                    match e {
                        Effect::Reply(v) => send(ws, shared, v.to_string())?,
                        Effect::Close(code) => {
                            close(ws, CloseCode::from(code), "closing");
                            return Ok(format!("closed with code {code}"));
                        }
                        Effect::Persist { .. } => unreachable!("handled in handle_text"),
                    }
                }
            }
            Ok(Message::Binary(_)) => {
                last_heard = Instant::now();
                let e = protocol::ProtoError::new(
                    "bad-message",
                    "frames must be JSON text, not binary",
                );
                send(ws, shared, e.to_json(None).to_string())?;
            }
            Ok(Message::Close(_)) => return Ok("closed by the client".into()),
            Ok(_) => {
                // Ping, pong, raw frames: tungstenite answers pings itself.
                last_heard = Instant::now();
                pinged = false;
            }
            Err(e) if super::is_timeout(&e) => {
                let quiet = last_heard.elapsed();
                if quiet > idle {
                    close(ws, CloseCode::Away, "idle timeout");
                    return Ok("idle timeout".into());
                }
                if quiet > idle / 2 && !pinged {
                    let _ = ws.send(Message::Ping(Vec::new().into()));
                    pinged = true;
                }
                let _ = ws.flush();
            }
            Err(tungstenite::Error::Capacity(e)) => {
                (shared.log)(format!("{peer}: message too big ({e}); closing with 1009"));
                let err = protocol::ProtoError::new("too-big", format!("message too big: {e}"));
                let _ = ws.send(Message::text(err.to_json(None).to_string()));
                close(ws, CloseCode::Size, "message too big");
                return Ok("message too big".into());
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok("closed".into());
            }
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
    }
}

/// Runs the protocol on one frame under the state lock; a push goes to the
/// committer, which writes it durably before it is merged, acknowledged and
/// forwarded to watchers. The lock is not held while waiting for the disk.
fn handle_text(shared: &Shared, session: &mut Session, id: u64, text: &str) -> Vec<Effect> {
    let started = Instant::now();
    // A push is parsed and decoded before the lock is taken: many clients
    // pushing at once then only meet in the committer.
    if session.replica.is_some()
        && let Ok(msg) = serde_json::from_str::<serde_json::Value>(text)
        && msg["type"] == "push"
    {
        let msg_id = msg.get("id").cloned();
        let from = session.replica.clone().expect("checked");
        let effects = match protocol::decode_objects(msg.get("objects"), &from) {
            Ok(delta) => vec![Effect::Persist {
                delta,
                id: msg_id.clone(),
            }],
            Err(e) => vec![Effect::Reply(e.to_json(msg_id.as_ref()))],
        };
        {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            state.metrics.bytes_in += text.len() as u64;
            state.metrics.message("push");
        }
        return commit_effects(shared, id, started, effects);
    }
    let effects = {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.metrics.bytes_in += text.len() as u64;
        let effects = protocol::handle(&state.store, session, text);
        let kind = if effects.iter().any(|e| matches!(e, Effect::Persist { .. })) {
            "push".to_string()
        } else {
            serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v["type"].as_str().map(String::from))
                .unwrap_or_else(|| "invalid".into())
        };
        state.metrics.message(&kind);
        if let Some(c) = state.conns.get_mut(&id)
            && c.watching != session.watching
        {
            c.watching = session.watching.clone();
            if c.watching.is_some() {
                state.watchers.insert(id);
            } else {
                state.watchers.remove(&id);
            }
        }
        if kind == "sync" {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            state.metrics.observe("all", "sync", ms);
        }
        effects
    };
    commit_effects(shared, id, started, effects)
}

/// Sends pushes to the committer and waits for their acknowledgements.
fn commit_effects(shared: &Shared, id: u64, started: Instant, effects: Vec<Effect>) -> Vec<Effect> {
    let mut out = Vec::new();
    for e in effects {
        let Effect::Persist { delta, id: msg_id } = e else {
            out.push(e);
            continue;
        };
        let (tx, _) = mpsc::channel();
        let reply = commit(
            shared,
            Commit {
                delta,
                msg_id: msg_id.clone(),
                conn: id,
                started,
                reply: tx,
            },
        );
        out.push(Effect::Reply(reply.unwrap_or_else(|| {
            protocol::ProtoError::new(
                "internal",
                "the server is shutting down; nothing was written",
            )
            .to_json(msg_id.as_ref())
        })));
    }
    out
}

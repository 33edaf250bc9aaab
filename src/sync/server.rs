//! `crdt serve`: one thread, one event loop (mio), plain HTTP (`/healthz`,
//! `/metrics`) and WebSocket (`/ws`) on one port. The protocol logic is in
//! [`super::protocol`]; this file moves frames and keeps the state.
//!
//! A round of the loop reads every frame that arrived, runs the protocol on
//! each (a push is merged at once, so later frames see it), then appends all
//! the round's pushes to the log with one fsync (group commit), and only then
//! sends what the round produced: acknowledgements, replies and updates to
//! watchers. Nothing leaves the server before the changes it reflects are on
//! disk; should the fsync fail the server stops rather than serve changes it
//! could not keep.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::Value;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::clock::ReplicaId;
use crate::object::CrdtType;
use crate::store::Store;
use crate::sync::auth::{Auth, Grant, Tokens};
use crate::sync::metrics::{Metrics, StateSizes};
use crate::sync::offload::{self, BIG_FRAME, BIG_OBJECT, Decoded, Done, Job, Worker};
use crate::sync::parts::{self, Reply};
use crate::sync::persist::{Durable, Entry, Loaded, encode_entry};
use crate::sync::protocol::{self, Effect, Session};

/// Settings of `crdt serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data: PathBuf,
    /// Who may connect, as which replicas.
    pub auth: Auth,
    /// Where `auth`'s tokens came from (`--tokens`), read again on [`Server::reload`].
    pub tokens_file: Option<PathBuf>,
    /// `/metrics` answers without a token even when one is required.
    pub metrics_public: bool,
    /// The log size that starts a compaction (`persist::COMPACT_BYTES`).
    pub compact_bytes: u64,
    pub max_message_bytes: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// Receives one line per connection event (the CLI prints them).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

const LISTENER: Token = Token(0);
/// The worker's results are ready (see [`offload`]).
const WAKER: Token = Token(usize::MAX);

/// Bytes a connection reads from its socket at a time.
const READ_CHUNK: usize = 1024;
/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to answer the close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest request head read.
const HEAD_MAX: usize = 16 * 1024;
/// Replies and updates a slow client has not read yet, at most; beyond this
/// it is disconnected rather than allowed to grow the server's memory.
const MAX_UNSENT_BYTES: usize = 16 << 20;

pub struct Server {
    listener: TcpListener,
    store: Store,
    metrics: Metrics,
    durable: Durable,
    config: Config,
    log: Log,
    stop: Arc<AtomicBool>,
    /// Set (by SIGHUP) to read the tokens file again.
    reload: Arc<AtomicBool>,
    /// A compaction's frozen copy of the store, for the snapshot writer.
    snapshot_due: Option<Store>,
    /// The last accept failed (out of descriptors, say): connections may be
    /// waiting in the backlog, and the listener will not signal them again.
    accept_failing: bool,
}

/// A connection before its WebSocket upgrade, or answering plain HTTP.
struct Http {
    stream: TcpStream,
    since: Instant,
    /// A response being written; the connection ends once it is out.
    out: Option<(Vec<u8>, usize)>,
}

/// A socket that remembers a short read: the kernel had no more bytes then,
/// and (edge-triggered) a new readable event comes when more arrive, so the
/// next read can answer "would block" without a system call.
struct Sock {
    stream: TcpStream,
    drained: bool,
    /// Bytes it may still read in this turn: a large message is read a
    /// turn at a time, so it does not hold up the other connections.
    budget: usize,
    /// The budget ran out with bytes left: read again next turn (the socket
    /// will not signal them again).
    paused: bool,
}

/// Bytes a connection reads per turn of the loop.
const READ_BUDGET: usize = 1 << 20;

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.budget == 0 {
            self.paused = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.stream.read(buf)?;
        self.drained = n < buf.len();
        self.budget = self.budget.saturating_sub(n);
        Ok(n)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

struct Ws {
    ws: WebSocket<Sock>,
    session: Session,
    /// A large frame of it is with the worker: nothing more is read from
    /// it until that frame is answered (messages are handled in order).
    busy: bool,
    /// The `Authorization` header it connected with (its grant is looked
    /// up again when the tokens are reloaded).
    authorization: Option<String>,
    /// Messages of this round, sent once the round's changes are on disk.
    outbox: Vec<String>,
    /// Sync replies being sent, a message at a time as the client reads
    /// them (in order: a second sync is answered after the first).
    replies: VecDeque<Box<Reply>>,
    /// A watcher's update of this round so far: the changes of the round's
    /// pushes that it selects, merged (sent after the outbox).
    update: Option<Store>,
    last_heard: Instant,
    pinged: bool,
    /// A close frame went out: wait for the answer (or the deadline).
    closing: Option<(Instant, String)>,
    /// Reading frames failed while closing: discard raw bytes instead.
    draining: bool,
    /// On this round's list of connections to send to.
    dirty: bool,
}

enum Io {
    Http(Http),
    Ws(Box<Ws>),
}

/// The connections by token. Every event looks its connection up (and takes
/// it out and puts it back): foldhash hashes a token in a few instructions,
/// the standard SipHash in about a hundred.
type Conns = foldhash::HashMap<Token, Conn>;

struct Conn {
    peer: SocketAddr,
    io: Io,
}

/// A push of this round, acknowledged once the log is fsynced.
struct Pending {
    /// The types it changed (bit i: `CrdtType::ALL[i]`), for the latency metric.
    types: u8,
    started: Instant,
}

/// Everything one round of the loop produces (kept between rounds, so its
/// buffers are not allocated anew: a large allocation per round costs
/// glibc's allocator a consolidation of its free lists).
struct Round {
    pending: Vec<Pending>,
    /// The log lines of the round's pushes.
    log: String,
    /// Connections with something to send, in the order they first had
    /// (each once: [`Ws::dirty`]).
    dirty: Vec<Token>,
    /// The order to send in (writers, then watchers).
    order: Vec<Token>,
    /// Connections to drop, with the reason to log.
    gone: Vec<(Token, String)>,
    /// Connections whose read budget ran out: read again next turn.
    again: Vec<Token>,
}

/// Objects changed since their size was measured: name -> types (bit i:
/// `CrdtType::ALL[i]`), looked up without allocating.
type Resized = std::collections::BTreeMap<String, u8>;

/// What the event handlers need besides the connection they serve.
struct Ctx<'a> {
    store: &'a mut Store,
    metrics: &'a mut Metrics,
    sizes: &'a StateSizes,
    /// Objects that have no size yet (measured at the end of the turn).
    fresh: &'a mut Vec<(String, CrdtType)>,
    /// Objects changed since their size was last measured.
    resized: &'a mut Resized,
    config: &'a Config,
    log: &'a Log,
    round: &'a mut Round,
    /// Connections that watch something (a push visits only these).
    watchers: &'a mut BTreeSet<Token>,
    worker: &'a Worker,
}

impl Server {
    /// Loads the durable state and binds the port. `stop` ends [`Server::run`].
    pub fn bind(
        config: Config,
        log: Log,
        stop: Arc<AtomicBool>,
    ) -> Result<(Server, Loaded), String> {
        let (durable, store, loaded) = Durable::open(&config.data, new_server_id)?;
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?
            .next()
            .ok_or_else(|| format!("cannot listen on {}: no address", config.listen))?;
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;

        Ok((
            Server {
                listener,
                store,
                metrics: Metrics::default(),
                durable,
                config,
                log,
                stop,
                reload: Arc::new(AtomicBool::new(false)),
                snapshot_due: None,
                accept_failing: false,
            },
            loaded,
        ))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn replica(&self) -> ReplicaId {
        self.store.replica().clone()
    }

    /// A flag that, once set, makes the server read its tokens file again
    /// (the CLI sets it on SIGHUP).
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        self.reload.clone()
    }

    /// Reads the tokens file again: new connections get the new tokens, and
    /// a connection whose token is gone, or no longer allows its replica, is
    /// closed (1008). A file that does not parse changes nothing.
    fn reload_tokens(&mut self, conns: &mut Conns, round: &mut Round) {
        let Some(path) = self.config.tokens_file.clone() else {
            return;
        };
        let tokens = match read_tokens(&path) {
            Ok(t) => t,
            Err(e) => {
                (self.log)(format!("{e}; keeping the tokens loaded before"));
                return;
            }
        };
        (self.log)(format!(
            "reloaded {} ({} tokens)",
            path.display(),
            tokens.len()
        ));
        self.config.auth = Auth::Tokens(tokens);
        for (token, conn) in conns.iter_mut() {
            if let Io::Ws(ws) = &mut conn.io {
                let grant = self.config.auth.grant(ws.authorization.as_deref());
                let still = grant
                    .as_ref()
                    .is_some_and(|g| ws.session.replica.as_ref().is_none_or(|r| g.allows(r)));
                match grant {
                    Some(g) if still => ws.session.grant = g,
                    _ => {
                        let err = protocol::ProtoError::new(
                            "forbidden",
                            "the token of this connection was withdrawn",
                        );
                        ws.outbox.push(err.to_json(None).to_string());
                        close(ws, CloseCode::Policy, "token withdrawn");
                    }
                }
                round.mark(*token, ws);
            }
        }
    }

    /// Serves until the stop flag is set, then closes the connections and
    /// writes a snapshot.
    pub fn run(mut self) -> io::Result<()> {
        let max = self.config.max_connections;
        if let Some(short) = raise_fd_limit(max as u64 + SPARE_FDS) {
            (self.log)(format!(
                "only {short} file descriptors (ulimit -n): fewer than --max-connections {max} connections fit"
            ));
        }
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(1024);
        let mut worker = Worker::start(Arc::new(Waker::new(poll.registry(), WAKER)?))?;
        let mut sizes = StateSizes::default();
        for (name, o) in self.store.iter() {
            sizes.set(name, o.ty(), offload::state_size(o));
        }
        let mut resized = Resized::new();
        let mut measuring: BTreeSet<(String, CrdtType)> = BTreeSet::new();
        let mut pending_sizes: Vec<(String, CrdtType)> = Vec::new();
        let mut fresh: Vec<(String, CrdtType)> = Vec::new();
        let mut last_sizes = Instant::now();
        poll.registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let mut conns = Conns::default();
        let mut watchers = BTreeSet::new();
        let mut next = 1usize;
        let mut last_sweep = Instant::now();
        let mut stopping: Option<Instant> = None;
        // Kept between rounds, so its lists are not allocated every time.
        let mut round = Round::new();
        // The context of one event's handler (what it borrows of the loop's state).
        macro_rules! handler {
            () => {
                Ctx {
                    store: &mut self.store,
                    metrics: &mut self.metrics,
                    sizes: &sizes,
                    fresh: &mut fresh,
                    resized: &mut resized,
                    config: &self.config,
                    log: &self.log,
                    round: &mut round,
                    watchers: &mut watchers,
                    worker: &worker,
                }
            };
        }
        loop {
            if stopping.is_none() && self.stop.load(Ordering::Relaxed) {
                // Close every connection, then give them a moment to answer.
                stopping = Some(Instant::now());
                for (token, conn) in conns.iter_mut() {
                    match &mut conn.io {
                        Io::Ws(ws) => {
                            close(ws, CloseCode::Away, "server shutting down");
                            round.mark(*token, ws);
                        }
                        Io::Http(_) => round.gone.push((*token, "server shutting down".into())),
                    }
                }
                self.finish_round(&mut conns, &mut watchers, &mut round)?;
            }
            if let Some(since) = stopping
                && (conns.is_empty() || since.elapsed() > CLOSE_TIMEOUT)
            {
                break;
            }
            if self.reload.swap(false, Ordering::Relaxed) {
                self.reload_tokens(&mut conns, &mut round);
            }
            // Connections with bytes left over from their last turn: no waiting.
            let wait = if round.again.is_empty() { 50 } else { 0 };
            match poll.poll(&mut events, Some(Duration::from_millis(wait))) {
                Ok(()) => {}
                // A signal (SIGTERM sets the stop flag): look at the flag.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    while let Some(done) = worker.try_recv() {
                        match done {
                            Done::Size { key, bytes } => {
                                sizes.set(&key.0, key.1, bytes);
                                measuring.remove(&key);
                            }
                            Done::Snapshot(written) => {
                                if let Err(e) = self.durable.finish_compaction(written) {
                                    (self.log)(format!(
                                        "compaction failed (a restart replays the old log too): {e}"
                                    ));
                                }
                            }
                            Done::Frame {
                                token,
                                started,
                                decoded,
                            } => {
                                let Some(mut conn) = conns.remove(&token) else {
                                    continue;
                                };
                                let mut ctx = handler!();
                                ctx.decoded(token, &mut conn, decoded, started, &mut conns);
                                conns.insert(token, conn);
                            }
                        }
                    }
                    continue;
                }
                if event.token() == LISTENER {
                    self.accept(&poll, &mut conns, &mut next, stopping.is_some())?;
                    continue;
                }
                let token = event.token();
                let Some(conn) = conns.remove(&token) else {
                    continue;
                };
                let mut ctx = handler!();
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                let conn = ctx.event(token, readable, conn, &mut conns);
                conns.insert(token, conn);
            }
            // Their next turn (after everyone who had an event).
            let again = std::mem::take(&mut round.again);
            for token in again {
                let Some(conn) = conns.remove(&token) else {
                    continue;
                };
                let mut ctx = handler!();
                let conn = ctx.event(token, true, conn, &mut conns);
                conns.insert(token, conn);
            }
            if self.accept_failing {
                // Descriptors may have freed up since: try again.
                self.accept(&poll, &mut conns, &mut next, stopping.is_some())?;
            }
            if last_sweep.elapsed() >= Duration::from_millis(100) {
                last_sweep = Instant::now();
                self.sweep(&mut conns, &mut round);
            }
            self.finish_round(&mut conns, &mut watchers, &mut round)?;
            // Sizes for /metrics of what changed: small objects here, large
            // ones by the worker (one job per object at a time).
            if let Some(frozen) = self.snapshot_due.take()
                && let Err(e) = worker.write_snapshot(self.durable.snapshot_path(), frozen)
            {
                let _ = self.durable.finish_compaction(Err(e));
            }
            // At most every 100 ms: a counter pushed by every round is
            // measured once per period, not once per push.
            if last_sizes.elapsed() >= Duration::from_millis(100) {
                last_sizes = Instant::now();
                for (name, types) in std::mem::take(&mut resized) {
                    for (i, ty) in CrdtType::ALL.iter().enumerate() {
                        if types & (1 << i) != 0 {
                            pending_sizes.push((name.clone(), *ty));
                        }
                    }
                }
            }
            pending_sizes.append(&mut fresh);
            while let Some(key) = pending_sizes.pop() {
                let Some(o) = self.store.get_shared(&key.0, key.1) else {
                    continue;
                };
                if sizes.get(&key.0, key.1).is_some_and(|n| n < BIG_OBJECT) {
                    sizes.set(&key.0, key.1, offload::state_size(o));
                } else if measuring.insert(key.clone()) {
                    worker.send(Job::Size {
                        object: o.clone(),
                        key,
                    });
                } else {
                    // Measured again once the job in flight is done.
                    let bit = 1u8 << CrdtType::ALL.iter().position(|t| *t == key.1).unwrap_or(0);
                    *resized.entry(key.0).or_default() |= bit;
                }
            }
        }
        drop(worker);
        for (_, conn) in conns.drain() {
            if let Io::Ws(_) = conn.io {
                self.metrics.connected -= 1;
            }
        }
        // Everything acknowledged is in the log already; write a snapshot.
        self.durable.compact(&self.store)
    }

    fn accept(
        &mut self,
        poll: &Poll,
        conns: &mut Conns,
        next: &mut usize,
        stopping: bool,
    ) -> io::Result<()> {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    if stopping {
                        continue;
                    }
                    *next += 1;
                    let token = Token(*next);
                    poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    let _ = stream.set_nodelay(true);
                    conns.insert(
                        token,
                        Conn {
                            peer,
                            io: Io::Http(Http {
                                stream,
                                since: Instant::now(),
                                out: None,
                            }),
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_failing = false;
                    return Ok(());
                }
                // The peer gave up before we accepted; or out of descriptors:
                // every round tries again (the loop wakes at least every
                // 50 ms), and the log says so once per spell of failures.
                Err(e) => {
                    if !self.accept_failing {
                        (self.log)(format!("accept failed: {e} (retrying)"));
                    }
                    self.accept_failing = true;
                    return Ok(());
                }
            }
        }
    }

    /// Idle and stuck connections: pings, closes, drops.
    fn sweep(&mut self, conns: &mut Conns, round: &mut Round) {
        let idle = self.config.idle_timeout;
        for (token, conn) in conns.iter_mut() {
            match &mut conn.io {
                Io::Http(h) => {
                    if h.since.elapsed() > HEAD_TIMEOUT {
                        round.gone.push((*token, "no request in time".into()));
                    }
                }
                Io::Ws(ws) => {
                    if let Some((deadline, why)) = &ws.closing {
                        if Instant::now() > *deadline {
                            round.gone.push((*token, why.clone()));
                        }
                        continue;
                    }
                    let quiet = ws.last_heard.elapsed();
                    if quiet > idle {
                        close(ws, CloseCode::Away, "idle timeout");
                        round.mark(*token, ws);
                    } else if quiet > idle / 2 && !ws.pinged {
                        ws.pinged = true;
                        let _ = ws.ws.write(Message::Ping(Vec::new().into()));
                        round.mark(*token, ws);
                    }
                }
            }
        }
    }

    /// Writes the round's pushes durably, then sends what the round produced
    /// and drops the connections that ended.
    fn finish_round(
        &mut self,
        conns: &mut Conns,
        watchers: &mut BTreeSet<Token>,
        round: &mut Round,
    ) -> io::Result<()> {
        if !round.pending.is_empty() {
            if let Err(e) = self.durable.write(&round.log) {
                (self.log)(format!(
                    "cannot write the log durably ({e}); stopping without acknowledging"
                ));
                return Err(io::Error::other(format!(
                    "cannot write the log durably: {e}"
                )));
            }
            for p in &round.pending {
                let ms = p.started.elapsed().as_secs_f64() * 1e3;
                for (i, ty) in CrdtType::ALL.iter().enumerate() {
                    if p.types & (1 << i) != 0 {
                        self.metrics.observe(ty.as_str(), "push", ms);
                    }
                }
            }
            // A large log is compacted off the loop: new lines go to a new
            // log, and the worker writes a frozen copy of the store (a
            // pointer per object) as the snapshot.
            if self.durable.wants_compaction(self.config.compact_bytes) {
                match self.durable.begin_compaction() {
                    Ok(()) => self.snapshot_due = Some(self.store.clone()),
                    Err(e) => (self.log)(format!(
                        "cannot start a compaction (the log keeps growing): {e}"
                    )),
                }
            }
        }
        let gone = &mut round.gone;
        // Acks and replies first, then the watchers' updates: a writer's
        // ack does not wait for the fan-out. Each in the order the
        // connections had something to send (first come, first served: in
        // the order of their tokens, the same clients would wait longest in
        // every round).
        let mut order = std::mem::take(&mut round.order);
        order.extend(round.dirty.iter().filter(|t| !watchers.contains(t)));
        order.extend(round.dirty.iter().filter(|t| watchers.contains(t)));
        for token in order.drain(..) {
            let Some(Conn {
                io: Io::Ws(ws),
                peer,
            }) = conns.get_mut(&token)
            else {
                continue;
            };
            ws.dirty = false;
            match flush(ws, &mut self.metrics, &self.store) {
                Ok(Flushed::Done) => {}
                // The socket takes more: the reply goes on next turn.
                Ok(Flushed::More) => round.again.push(token),
                Err(why) => {
                    (self.log)(format!("{peer}: {why}"));
                    gone.push((token, why));
                }
            }
        }
        for (token, why) in gone.drain(..) {
            if let Some(Conn {
                io: Io::Ws(_),
                peer,
            }) = conns.remove(&token)
            {
                self.metrics.connected -= 1;
                watchers.remove(&token);
                (self.log)(format!("{peer}: disconnected ({why})"));
            }
        }
        round.order = order;
        round.dirty.clear();
        round.pending.clear();
        round.log.clear();
        Ok(())
    }
}

impl Round {
    /// Puts a connection on the round's list of those to send to.
    fn mark(&mut self, token: Token, ws: &mut Ws) {
        if !ws.dirty {
            ws.dirty = true;
            self.dirty.push(token);
        }
    }

    fn new() -> Round {
        Round {
            log: String::new(),
            pending: Vec::new(),
            dirty: Vec::new(),
            order: Vec::new(),
            gone: Vec::new(),
            again: Vec::new(),
        }
    }
}

impl Ctx<'_> {
    fn event(&mut self, token: Token, readable: bool, conn: Conn, conns: &mut Conns) -> Conn {
        let Conn { peer, io } = conn;
        let io = match io {
            Io::Http(mut h) => match self.http(token, peer, &mut h) {
                Some((config, grant, authorization)) => {
                    self.metrics.connected += 1;
                    self.metrics.connections_total += 1;
                    (self.log)(format!("{peer}: connected (connection {})", token.0));
                    Io::Ws(Box::new(Ws {
                        ws: WebSocket::from_raw_socket(
                            Sock {
                                stream: h.stream,
                                drained: false,
                                budget: READ_BUDGET,
                                paused: false,
                            },
                            Role::Server,
                            Some(config),
                        ),
                        session: Session {
                            grant,
                            max_message_bytes: self.config.max_message_bytes,
                            ..Session::default()
                        },
                        busy: false,
                        authorization,
                        outbox: Vec::new(),
                        replies: VecDeque::new(),
                        update: None,
                        last_heard: Instant::now(),
                        pinged: false,
                        closing: None,
                        draining: false,
                        dirty: false,
                    }))
                }
                None => Io::Http(h),
            },
            Io::Ws(mut ws) => {
                let sock = ws.ws.get_mut();
                if readable || sock.paused {
                    sock.drained = false;
                }
                sock.paused = false;
                sock.budget = READ_BUDGET;
                Io::Ws(ws)
            }
        };
        let mut conn = Conn { peer, io };
        // Frames (those sent right behind the upgrade request too).
        self.frames(token, &mut conn, conns);
        if let Io::Ws(ws) = &conn.io
            && ws.ws.get_ref().paused
        {
            self.round.again.push(token);
        }
        conn
    }

    /// Reads the request head (without consuming it) and answers it, or
    /// upgrades the connection to a WebSocket.
    fn http(&mut self, token: Token, peer: SocketAddr, h: &mut Http) -> Option<Upgraded> {
        if h.out.is_some() {
            self.write_response(token, h);
            return None;
        }
        let mut buf = vec![0u8; HEAD_MAX];
        let n = match h.stream.peek(&mut buf) {
            Ok(0) => {
                self.round.gone.push((token, "closed".into()));
                return None;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => {
                self.round.gone.push((token, e.to_string()));
                return None;
            }
        };
        let parsed = Head::parse(&buf[..n]);
        let refused = match &parsed {
            Ok(Some(_)) => false,
            Ok(None) => n == HEAD_MAX,
            Err(_) => true,
        };
        if refused {
            // Consume what was peeked: closing with unread bytes would reset
            // the connection and lose the answer. (A head that is whole is
            // consumed below, to its end and not beyond: frames may follow.)
            let _ = h.stream.read(&mut buf[..n]);
        }
        let head = match parsed {
            Ok(Some(head)) => head,
            Ok(None) => {
                if refused {
                    self.respond(
                        token,
                        h,
                        "431 Request Header Fields Too Large",
                        "text/plain",
                        "request head too large\n",
                    );
                }
                return None;
            }
            Err(httparse::Error::TooManyHeaders) => {
                self.respond(
                    token,
                    h,
                    "431 Request Header Fields Too Large",
                    "text/plain",
                    "more than 64 header fields\n",
                );
                return None;
            }
            Err(e) => {
                self.respond(
                    token,
                    h,
                    "400 Bad Request",
                    "text/plain",
                    &format!("not an HTTP/1.1 request: {e}\n"),
                );
                return None;
            }
        };
        // Consume the head: it was only peeked.
        let mut consumed = vec![0u8; head.len];
        if h.stream.read_exact(&mut consumed).is_err() {
            self.round.gone.push((token, "closed".into()));
            return None;
        }
        let path = head.path.split('?').next().unwrap_or("");
        match (head.method.as_str(), path) {
            ("GET", "/healthz") => self.respond(token, h, "200 OK", "text/plain", "ok\n"),
            ("GET", "/metrics") => {
                let open = self.config.metrics_public || !self.config.auth.required();
                if !open
                    && self
                        .config
                        .auth
                        .grant(head.header("authorization"))
                        .is_none()
                {
                    self.unauthorized(token, peer, h, head.header("authorization").is_some());
                } else {
                    let body = self.metrics.render(self.sizes, self.store.len());
                    self.respond(token, h, "200 OK", "text/plain; version=0.0.4", &body)
                }
            }
            (_, "/ws") => return self.upgrade(token, peer, h, &head),
            _ => self.respond(
                token,
                h,
                "404 Not Found",
                "text/plain",
                "try /ws, /healthz or /metrics\n",
            ),
        }
        None
    }

    /// A 401 that says whether the token was missing or not accepted.
    fn unauthorized(&mut self, token: Token, peer: SocketAddr, h: &mut Http, presented: bool) {
        let why = if presented {
            "the bearer token is not accepted"
        } else {
            "a bearer token is required (Authorization: Bearer TOKEN)"
        };
        (self.log)(format!("{peer}: refused: {why}"));
        self.respond(
            token,
            h,
            "401 Unauthorized",
            "text/plain",
            &format!("{why}\n"),
        );
    }

    fn upgrade(
        &mut self,
        token: Token,
        peer: SocketAddr,
        h: &mut Http,
        head: &Head,
    ) -> Option<Upgraded> {
        let authorization = head.header("authorization").map(str::to_string);
        let Some(grant) = self.config.auth.grant(authorization.as_deref()) else {
            self.unauthorized(token, peer, h, authorization.is_some());
            return None;
        };
        if self.metrics.connected as usize >= self.config.max_connections {
            (self.log)(format!(
                "{peer}: refused: {} connections already",
                self.config.max_connections
            ));
            self.respond(
                token,
                h,
                "503 Service Unavailable",
                "text/plain",
                "too many connections\n",
            );
            return None;
        }
        let has = |name: &str, word: &str| {
            head.header(name)
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(word)))
        };
        let key = head.header("sec-websocket-key");
        if head.method != "GET"
            || !has("upgrade", "websocket")
            || !has("connection", "upgrade")
            || head.header("sec-websocket-version") != Some("13")
            || key.is_none()
        {
            self.respond(
                token,
                h,
                "400 Bad Request",
                "text/plain",
                "a WebSocket upgrade request (version 13) is expected on /ws\n",
            );
            return None;
        }
        let accept = tungstenite::handshake::derive_accept_key(key.unwrap_or("").as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        // A fresh connection's send buffer is empty: the response goes out whole.
        if write_now(&mut h.stream, response.as_bytes()).is_err() {
            self.round
                .gone
                .push((token, "closed during the upgrade".into()));
            return None;
        }
        // Small read buffers: 1,000 idle clients should cost little memory,
        // and tungstenite zeroes the buffer's free space before every read
        // (twice per push: the second read finds the socket empty). A push
        // is ~200 bytes; a large message is read in as many calls as it takes.
        Some((
            WebSocketConfig::default()
                .read_buffer_size(READ_CHUNK)
                .write_buffer_size(64 << 10)
                .max_write_buffer_size(MAX_UNSENT_BYTES)
                .max_message_size(Some(self.config.max_message_bytes))
                .max_frame_size(Some(self.config.max_message_bytes)),
            grant,
            authorization,
        ))
    }

    fn respond(
        &mut self,
        token: Token,
        h: &mut Http,
        status: &str,
        content_type: &str,
        body: &str,
    ) {
        let text = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        h.out = Some((text.into_bytes(), 0));
        self.write_response(token, h);
    }

    /// Writes what fits of the response; the rest when the socket is
    /// writable again. The connection ends once it is out.
    fn write_response(&mut self, token: Token, h: &mut Http) {
        let Some((out, sent)) = &mut h.out else {
            return;
        };
        loop {
            match h.stream.write(&out[*sent..]) {
                Ok(0) => break,
                Ok(n) => {
                    *sent += n;
                    if *sent == out.len() {
                        self.round.gone.push((token, "answered".into()));
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.round.gone.push((token, "closed".into()));
                    break;
                }
            }
        }
    }

    /// Reads every frame that arrived and runs the protocol on it.
    fn frames(&mut self, token: Token, conn: &mut Conn, conns: &mut Conns) {
        let peer = conn.peer;
        let Io::Ws(ws) = &mut conn.io else {
            return;
        };
        if ws.closing.is_some() {
            self.drain(token, ws);
            return;
        }
        // Writable again: send what a full socket held back.
        self.round.mark(token, ws);
        if ws.busy {
            return;
        }
        let now = Instant::now();
        loop {
            match ws.ws.read() {
                Ok(Message::Text(text)) if text.len() > BIG_FRAME => {
                    ws.last_heard = now;
                    ws.pinged = false;
                    self.metrics.bytes_in += text.len() as u64;
                    ws.busy = true;
                    self.worker.send(Job::Frame {
                        token,
                        text,
                        replica: ws.session.replica.clone(),
                        started: now,
                    });
                    return;
                }
                Ok(Message::Text(text)) => {
                    ws.last_heard = now;
                    ws.pinged = false;
                    self.frame(token, ws, text.as_str(), now, conns);
                    if ws.closing.is_some() {
                        return;
                    }
                }
                Ok(Message::Binary(_)) => {
                    ws.last_heard = now;
                    let e = protocol::ProtoError::new(
                        "bad-message",
                        "frames must be JSON text, not binary",
                    );
                    ws.outbox.push(e.to_json(None).to_string());
                }
                Ok(Message::Close(_)) => {
                    // tungstenite queued the answer; it goes out with the round.
                    ws.closing = Some((
                        Instant::now() + CLOSE_TIMEOUT,
                        "closed by the client".into(),
                    ));
                    self.drain(token, ws);
                    return;
                }
                Ok(_) => {
                    // Ping, pong, raw frames: tungstenite answers pings itself.
                    ws.last_heard = now;
                    ws.pinged = false;
                }
                Err(e) if super::is_timeout(&e) => return,
                Err(tungstenite::Error::Capacity(e)) => {
                    (self.log)(format!("{peer}: message too big ({e}); closing with 1009"));
                    let err = protocol::ProtoError::new("too-big", format!("message too big: {e}"));
                    ws.outbox.push(err.to_json(None).to_string());
                    close(ws, CloseCode::Size, "message too big");
                    ws.draining = true;
                    self.drain(token, ws);
                    return;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.round.gone.push((token, "closed".into()));
                    return;
                }
                Err(e) => {
                    self.round.gone.push((token, e.to_string()));
                    return;
                }
            }
        }
    }

    /// A closing connection: read (and drop) whatever comes until the peer
    /// closes, so the close frame reaches it before the socket goes away.
    fn drain(&mut self, token: Token, ws: &mut Ws) {
        self.round.mark(token, ws);
        loop {
            if ws.draining {
                let mut buf = [0u8; 4096];
                match ws.ws.get_mut().stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => break,
                }
            }
            match ws.ws.read() {
                Ok(_) => {}
                Err(e) if super::is_timeout(&e) => return,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    break;
                }
                Err(_) => ws.draining = true,
            }
        }
        let why = ws
            .closing
            .as_ref()
            .map_or("closed".into(), |(_, w)| w.clone());
        self.round.gone.push((token, why));
    }

    /// One text frame: the protocol's effects go to this round.
    /// `started`: when the frame was read (one clock reading per event).
    fn frame(
        &mut self,
        token: Token,
        ws: &mut Ws,
        text: &str,
        started: Instant,
        conns: &mut Conns,
    ) {
        self.metrics.bytes_in += text.len() as u64;
        // A push, the message that comes by the thousand, is read at its top
        // level only: its objects are parsed once, and logged as sent,
        // straight into the round's log.
        if let Some(from) = &ws.session.replica
            && let Ok(top) = serde_json::from_str::<offload::PushFrame<'_>>(text)
            && top.ty == "push"
        {
            self.metrics.message("push");
            let (id, delta) = offload::decode_push(&top, from);
            match delta {
                Ok(delta) => {
                    let line = match top.objects.as_deref() {
                        Some(objects) => LogLine::Sent(objects),
                        None => LogLine::Text(String::new()),
                    };
                    self.push(token, ws, delta, line, id, started, conns);
                }
                Err(e) => ws.outbox.push(e.to_json(id.as_ref()).to_string()),
            }
            return;
        }
        let decoded = offload::decode_frame(text, ws.session.replica.as_ref());
        self.apply(token, ws, decoded, started, conns);
    }

    /// A large frame the worker decoded: handled as if it had just arrived,
    /// then the connection's next frames are read.
    fn decoded(
        &mut self,
        token: Token,
        conn: &mut Conn,
        decoded: Decoded,
        started: Instant,
        conns: &mut Conns,
    ) {
        let Io::Ws(ws) = &mut conn.io else {
            return;
        };
        ws.busy = false;
        if ws.closing.is_none() {
            self.apply(token, ws, decoded, started, conns);
            self.round.mark(token, ws);
        }
        // Frames that came behind it wait in the buffers, and the socket
        // will not signal them again.
        let sock = ws.ws.get_mut();
        sock.drained = false;
        sock.paused = false;
        sock.budget = READ_BUDGET;
        self.frames(token, conn, conns);
        if let Io::Ws(ws) = &conn.io
            && ws.ws.get_ref().paused
        {
            self.round.again.push(token);
        }
    }

    /// Runs the protocol on one decoded frame: its effects go to this round.
    /// `started`: when the frame was read (one clock reading per event).
    fn apply(
        &mut self,
        token: Token,
        ws: &mut Ws,
        decoded: Decoded,
        started: Instant,
        conns: &mut Conns,
    ) {
        // A push, the message that comes by the thousand, was read at its
        // top level only: its objects are parsed once, and logged as sent.
        let msg = match decoded {
            Decoded::Push { id, delta, line } => {
                self.metrics.message("push");
                match delta {
                    Ok(delta) => {
                        self.push(token, ws, delta, LogLine::Text(line), id, started, conns)
                    }
                    Err(e) => ws.outbox.push(e.to_json(id.as_ref()).to_string()),
                }
                return;
            }
            Decoded::Sync { id, request } => {
                self.metrics.message("sync");
                let effects = match request {
                    Ok(req) => protocol::handle_sync(&mut ws.session, id.as_ref(), req),
                    Err(e) => vec![Effect::Reply(e.to_json(id.as_ref()))],
                };
                if ws.session.watching.is_some() {
                    self.watchers.insert(token);
                }
                let ms = started.elapsed().as_secs_f64() * 1e3;
                self.metrics.observe("all", "sync", ms);
                for effect in effects {
                    match effect {
                        Effect::Reply(v) => ws.outbox.push(v.to_string()),
                        Effect::Stream(r) => queue_reply(ws, r),
                        _ => {}
                    }
                }
                return;
            }
            Decoded::Message(Ok(msg)) => msg,
            Decoded::Message(Err(err)) => {
                self.metrics.message("invalid");
                ws.outbox.push(err.to_json(None).to_string());
                return;
            }
        };
        // Only the protocol's types become metric labels.
        let kind = msg
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| ["hello", "sync", "push", "unwatch"].contains(t))
            .unwrap_or("invalid");
        self.metrics.message(kind);
        let effects = protocol::handle_parsed(self.store, &mut ws.session, &msg);
        if ws.session.watching.is_some() {
            self.watchers.insert(token);
        } else {
            self.watchers.remove(&token);
        }
        if kind == "sync" {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            self.metrics.observe("all", "sync", ms);
        }
        for effect in effects {
            match effect {
                Effect::Reply(v) => ws.outbox.push(v.to_string()),
                Effect::Stream(r) => queue_reply(ws, r),
                Effect::Close(code) => {
                    close(ws, CloseCode::from(code), "closing");
                    return;
                }
                Effect::Persist { delta, id } => {
                    self.push(
                        token,
                        ws,
                        delta,
                        LogLine::Text(String::new()),
                        id,
                        started,
                        conns,
                    );
                }
            }
        }
    }

    /// A push: checked, merged, acknowledged and forwarded to watchers (all
    /// of which leaves the server only after this round's fsync).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        token: Token,
        ws: &mut Ws,
        delta: Store,
        line: LogLine<'_>,
        id: Option<Value>,
        started: Instant,
        conns: &mut Conns,
    ) {
        // The gate: dots this connection may not introduce, a text delta
        // that refers to characters the server lacks, a change no honest
        // replica makes: refused before anything is written.
        if let Err(err) = protocol::check_push(self.store, &ws.session, &delta) {
            if err.code == "forbidden" {
                self.metrics.message("forbidden");
            }
            ws.outbox.push(err.to_json(id.as_ref()).to_string());
            return;
        }
        let (ack, resolutions) = protocol::commit_push(self.store, &delta, id.as_ref());
        for r in resolutions {
            self.metrics.conflict(r.ty.as_str(), r.kind);
        }
        ws.outbox.push(ack);
        for other in self.watchers.iter().filter(|w| **w != token) {
            let Some(Conn {
                io: Io::Ws(watcher),
                ..
            }) = conns.get_mut(other)
            else {
                continue;
            };
            if watcher.add_update(&delta) {
                self.round.mark(*other, watcher);
            }
        }
        // The log line: the objects as sent, as the worker wrote it, or the delta.
        match line {
            LogLine::Sent(objects) => encode_entry(
                &mut self.round.log,
                &Entry::Sent {
                    objects,
                    delta: &delta,
                },
            ),
            LogLine::Text(t) if !t.is_empty() => self.round.log.push_str(&t),
            LogLine::Text(_) => encode_entry(&mut self.round.log, &Entry::Delta(&delta)),
        }
        let mut types = 0u8;
        for (name, o) in delta.iter() {
            let bit = 1u8 << CrdtType::ALL.iter().position(|t| *t == o.ty()).unwrap_or(0);
            types |= bit;
            if self.sizes.get(name, o.ty()).is_none() {
                // New here: /metrics shows it from the end of this turn on.
                self.fresh.push((name.to_string(), o.ty()));
            } else {
                match self.resized.get_mut(name) {
                    Some(t) => *t |= bit,
                    None => {
                        self.resized.insert(name.to_string(), bit);
                    }
                }
            }
        }
        self.round.pending.push(Pending { types, started });
    }
}

impl Ws {
    /// Adds what this watcher watches of a push's `delta` to its update of
    /// the round; false when it watches none of it. The round's
    /// changes travel merged in one message: a watcher costs one message per
    /// round, not one per push, so watching does not slow the writers down.
    /// A text change that refers to characters the update so far lacks
    /// cannot be merged into it: that update goes first, and the change
    /// starts the next one.
    fn add_update(&mut self, delta: &Store) -> bool {
        let Some(select) = self.session.watching.as_ref() else {
            return false;
        };
        let mut added = false;
        for (name, o) in delta.iter() {
            if !crate::store::selected(select, name) {
                continue;
            }
            added = true;
            let u = self
                .update
                .get_or_insert_with(|| Store::new(delta.replica().clone()));
            if u.check_mergeable_object(name, o).is_ok() {
                u.merge_object(name, o);
            } else {
                let mut next = Store::new(delta.replica().clone());
                next.insert_object(name, o.clone());
                let done = std::mem::replace(u, next);
                let limit = self.session.max_message_bytes;
                self.outbox.extend(parts::update_messages(&done, limit));
            }
        }
        added
    }
}

/// Descriptors the server needs besides its connections (listener, poll,
/// log, lock, snapshot writes, standard streams).
const SPARE_FDS: u64 = 32;

/// Raises the soft limit on open files to `want` (within the hard limit), as
/// a server that holds a socket per client must: many systems start processes
/// at 1,024. The limit it has when that is short of `want`.
fn raise_fd_limit(want: u64) -> Option<u64> {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().ok()?;
    let mut now = soft;
    if soft < want && Resource::NOFILE.set(want.min(hard), hard).is_ok() {
        now = want.min(hard);
    }
    (now < want).then_some(now)
}

/// Most sync replies a connection may have waiting: an honest client waits
/// for each reply; one that pipelines syncs without reading them would
/// otherwise grow the server's memory without bound.
const MAX_QUEUED_REPLIES: usize = 64;

/// Queues a sync reply, or closes a connection that has too many waiting.
fn queue_reply(ws: &mut Ws, reply: Box<Reply>) {
    if ws.replies.len() >= MAX_QUEUED_REPLIES {
        let e = protocol::ProtoError::new(
            "too-big",
            format!("more than {MAX_QUEUED_REPLIES} syncs wait for their replies: read them first"),
        );
        ws.outbox.push(e.to_json(None).to_string());
        close(ws, CloseCode::Policy, "too many syncs unanswered");
        return;
    }
    ws.replies.push_back(reply);
}

/// Starts the close handshake: the close frame goes out with the round.
fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    if ws.closing.is_some() {
        return;
    }
    // What was said before closing (the error that says why) goes first:
    // once the close frame is queued, tungstenite sends nothing else.
    for text in ws.outbox.drain(..) {
        let _ = ws.ws.write(Message::text(text));
    }
    let _ = ws.ws.close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }));
    ws.closing = Some((Instant::now() + CLOSE_TIMEOUT, reason.to_string()));
}

/// Bytes of sync replies a connection is given per turn of the loop, so
/// one client pulling a large state does not hold up the others.
const REPLY_BUDGET: usize = 4 << 20;

/// What [`flush`] left.
enum Flushed {
    /// Everything out, or the socket is full (its writable event comes).
    Done,
    /// A reply has more to send and the socket takes more: next turn.
    More,
}

/// Sends the outbox and whatever a full socket held back, then the next
/// messages of its sync replies while the socket takes them: a reply is
/// made a message at a time, only when the one before it is out of the
/// server's buffers (flow control: the server holds at most a message of
/// a reply unsent, whatever the reply's size).
fn flush(ws: &mut Ws, metrics: &mut Metrics, store: &Store) -> Result<Flushed, String> {
    if let Some(update) = ws.update.take() {
        let limit = ws.session.max_message_bytes;
        ws.outbox.extend(parts::update_messages(&update, limit));
    }
    for text in ws.outbox.drain(..) {
        metrics.bytes_out += text.len() as u64;
        match ws.ws.write(Message::text(text)) {
            Ok(()) => {}
            Err(e) if super::is_timeout(&e) => {}
            Err(tungstenite::Error::WriteBufferFull(_)) => {
                return Err("too slow to read its updates; disconnected".into());
            }
            // Closing or closed: what is left cannot be sent.
            Err(_) => return Ok(Flushed::Done),
        }
    }
    let mut given = 0;
    loop {
        match ws.ws.flush() {
            Ok(()) => {}
            Err(e) if super::is_timeout(&e) => return Ok(Flushed::Done),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(Flushed::Done);
            }
            Err(e) => return Err(e.to_string()),
        }
        if ws.closing.is_some() {
            return Ok(Flushed::Done);
        }
        let Some(reply) = ws.replies.front_mut() else {
            return Ok(Flushed::Done);
        };
        if given >= REPLY_BUDGET {
            return Ok(Flushed::More);
        }
        match reply.next_message(store) {
            Some(text) => {
                given += text.len();
                metrics.bytes_out += text.len() as u64;
                match ws.ws.write(Message::text(text)) {
                    Ok(()) => {}
                    Err(e) if super::is_timeout(&e) => {}
                    Err(tungstenite::Error::WriteBufferFull(_)) => {
                        return Err("too slow to read its replies; disconnected".into());
                    }
                    Err(_) => return Ok(Flushed::Done),
                }
            }
            None => {
                ws.replies.pop_front();
            }
        }
    }
}

/// Writes all of `bytes` to a non-blocking socket, or fails.
fn write_now(stream: &mut TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(100);
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::yield_now()
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How a push's log line is made: from the objects as sent (in the frame's
/// text), or already written (by the worker; empty: encode the delta).
enum LogLine<'a> {
    Sent(&'a [protocol::ObjectIn<'a>]),
    Text(String),
}

/// What an accepted upgrade brings: the socket's settings, the grant of its
/// token, and the `Authorization` header (for reloads).
type Upgraded = (WebSocketConfig, Grant, Option<String>);

/// Reads and parses a tokens file (`--tokens`), naming the file and line.
pub fn read_tokens(path: &std::path::Path) -> Result<Tokens, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
    let tokens = Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if tokens.is_empty() {
        return Err(format!("{}: no tokens in the file", path.display()));
    }
    Ok(tokens)
}

fn new_server_id() -> ReplicaId {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::process::id()) as u32;
    ReplicaId::new(format!("server-{n:08x}")).expect("valid")
}

/// The request line and headers of an HTTP request.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    /// Bytes up to and including the blank line.
    len: usize,
}

impl Head {
    /// `Ok(None)` until the blank line that ends the head has arrived; an
    /// error for a head that is not HTTP/1.x.
    fn parse(buf: &[u8]) -> Result<Option<Head>, httparse::Error> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(len) = req.parse(buf)? else {
            return Ok(None);
        };
        Ok(Some(Head {
            method: req.method.unwrap_or_default().to_string(),
            path: req.path.unwrap_or_default().to_string(),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).trim().to_string();
                    (h.name.to_string(), value)
                })
                .collect(),
            len,
        }))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

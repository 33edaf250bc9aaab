//! `crdt serve`: one thread, one event loop (mio), plain HTTP (`/healthz`,
//! `/metrics`) and WebSocket (`/ws`) on one port. The protocol logic is in
//! [`super::protocol`]; this module moves frames and keeps the state: the
//! loop and the round here, plain HTTP in `http`, a connection in `conn`.
//!
//! A round of the loop reads every frame that arrived, runs the protocol on
//! each (a push is merged at once, so later frames see it), then appends all
//! the round's pushes to the log with one fsync (group commit), and only then
//! sends what the round produced: acknowledgements, replies and updates to
//! watchers. Nothing leaves the server before the changes it reflects are on
//! disk; should the fsync fail the server stops rather than serve changes it
//! could not keep.
//!
//! With `--cluster`, other nodes' changes come first in a turn and go to the
//! watchers at once (they are on the disk of the node that acknowledged
//! them); they are logged here with the round (`nodes`).

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
use crate::clock::wall_ms as now_ms;
use crate::object::CrdtType;
use crate::store::Store;
use crate::sync::auth::{Auth, Grant, Tokens};
use crate::sync::cluster::{ClusterConfig, Link};
use crate::sync::metrics::{Metrics, StateSizes};
use crate::sync::offload::{self, BIG_FRAME, BIG_OBJECT, Done, Job, Worker};
use crate::sync::parts::{self, Reply};
use crate::sync::persist::{Durable, DurableError, Entry, Loaded, encode_entry};
use crate::sync::protocol::{self, Effect, Request, Session};
use crate::sync::recent::{Recent, with_origin};

mod conn;
mod http;
mod nodes;
use conn::*;
use http::*;

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
    /// Share the state with other nodes through Redis (`--cluster`).
    pub cluster: Option<ClusterConfig>,
}

/// Receives one line per connection event (the CLI prints them).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

const LISTENER: Token = Token(0);
/// Polls a round gathers events in (the first waits, the others do not).
const GATHER_PASSES: usize = 4;
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
    /// The pushes accepted lately (rebuilt from the log at start).
    recent: Recent,
    /// The cluster threads (`--cluster`), started by [`Server::run`].
    link: Option<Link>,
    /// The last accept failed (out of descriptors, say): connections may be
    /// waiting in the backlog, and the listener will not signal them again.
    accept_failing: bool,
}

/// The connections by token. Every event looks its connection up (and takes
/// it out and puts it back): foldhash hashes a token in a few instructions,
/// where the standard SipHash takes many more.
type Conns = foldhash::HashMap<Token, Conn>;

struct Conn {
    peer: SocketAddr,
    io: Io,
}

/// The bit sets of types (`Pending::types`, [`Resized`]) are a `u8`.
const _: () = assert!(CrdtType::ALL.len() <= 8);

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
    /// The log lines of the round's pushes (and of other nodes' changes).
    log: String,
    /// The lines to publish to the other nodes once durable (`--cluster`).
    publish: String,
    /// What those lines hold, merged: the others merge this one delta
    /// instead of decoding every line...
    publish_delta: Option<Store>,
    /// ...and learn who pushed when from these lines (`REPLICA TIME_MS`).
    publish_pushes: String,
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

/// What the event loop keeps between turns, beside the server's fields
/// (the round's lists are kept so they are not allocated every time).
struct Looping {
    sizing: Sizing,
    /// Connections that watch something.
    watchers: BTreeSet<Token>,
    round: Round,
    worker: Worker,
}

/// The encoded size of each object, for `/metrics`: measured when it
/// changes, small objects on the loop, large ones by the worker.
struct Sizing {
    sizes: StateSizes,
    /// Changed since measured.
    resized: Resized,
    /// With the worker now.
    measuring: BTreeSet<(String, CrdtType)>,
    /// To measure this turn.
    pending: Vec<(String, CrdtType)>,
    /// New this turn (no size yet).
    fresh: Vec<(String, CrdtType)>,
    last: Instant,
}

impl Sizing {
    fn new(store: &Store) -> Sizing {
        let mut sizes = StateSizes::default();
        for (name, o) in store.iter() {
            sizes.set(name, o.ty(), offload::state_size(o));
        }
        Sizing {
            sizes,
            resized: Resized::new(),
            measuring: BTreeSet::new(),
            pending: Vec::new(),
            fresh: Vec::new(),
            last: Instant::now(),
        }
    }

    /// Measures what changed: new objects at once, changed ones at most
    /// every 100 ms (a counter pushed by every round is measured once per
    /// period, not once per push), large ones by the worker (one job per
    /// object at a time).
    fn measure(&mut self, store: &Store, worker: &Worker) {
        if self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            for (name, types) in std::mem::take(&mut self.resized) {
                for (i, ty) in CrdtType::ALL.iter().enumerate() {
                    if types & (1 << i) != 0 {
                        self.pending.push((name.clone(), *ty));
                    }
                }
            }
        }
        self.pending.append(&mut self.fresh);
        while let Some(key) = self.pending.pop() {
            let Some(o) = store.get_shared(&key.0, key.1) else {
                continue;
            };
            if self
                .sizes
                .get(&key.0, key.1)
                .is_some_and(|n| n < BIG_OBJECT)
            {
                self.sizes.set(&key.0, key.1, offload::state_size(o));
            } else if self.measuring.insert(key.clone()) {
                worker.send(Job::Size {
                    object: o.clone(),
                    key,
                });
            } else {
                // Measured again once the job in flight is done.
                let bit = 1u8 << CrdtType::ALL.iter().position(|t| *t == key.1).unwrap_or(0);
                *self.resized.entry(key.0).or_default() |= bit;
            }
        }
    }
}

/// Objects changed since their size was measured: name -> types (bit i:
/// `CrdtType::ALL[i]`), looked up without allocating.
type Resized = std::collections::BTreeMap<String, u8>;

/// What the event handlers need during one turn of the loop, besides the
/// connection they serve.
struct Turn<'a> {
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
    /// The pushes accepted lately, for `log` requests.
    recent: &'a mut Recent,
    /// The cluster (`--cluster`): pushes are published, `/healthz` says
    /// whether Redis is reachable.
    link: Option<&'a Link>,
}

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: io::Error,
    },
}

impl Server {
    /// Loads the durable state and binds the port. `stop` ends [`Server::run`].
    pub fn bind(
        config: Config,
        log: Log,
        stop: Arc<AtomicBool>,
    ) -> Result<(Server, Loaded), BindError> {
        let (durable, store, mut loaded) = Durable::open(&config.data, new_server_id)?;
        let listen = |source: io::Error| BindError::Listen {
            addr: config.listen.clone(),
            source,
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&config.listen)
            .map_err(listen)?
            .next()
            .ok_or_else(|| listen(io::Error::other("no address")))?;
        let listener = TcpListener::bind(addr).map_err(listen)?;

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
                recent: std::mem::take(&mut loaded.recent),
                accept_failing: false,
                link: None,
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
        self.check_fd_limit();
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(1024);
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let worker = Worker::start(waker.clone())?;
        self.join_cluster(waker)?;
        poll.registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let mut conns = Conns::default();
        let mut next = 1usize;
        let mut last_sweep = Instant::now();
        let mut stopping: Option<Instant> = None;
        let mut l = Looping {
            sizing: Sizing::new(&self.store),
            watchers: BTreeSet::new(),
            round: Round::new(),
            worker,
        };
        loop {
            if self.signalled(&mut stopping, &mut conns, &mut l.watchers, &mut l.round)? {
                break;
            }
            // Connections with bytes left over from their last turn: no waiting.
            let wait = if l.round.again.is_empty() { 50 } else { 0 };
            match poll.poll(&mut events, Some(Duration::from_millis(wait))) {
                Ok(()) => {}
                // A signal (SIGTERM sets the stop flag): look at the flag.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for pass in 0..GATHER_PASSES {
                if pass > 0 {
                    // What came in meanwhile joins this round (one write for
                    // more pushes), without waiting for anything.
                    if l.round.pending.is_empty() {
                        break;
                    }
                    match poll.poll(&mut events, Some(Duration::ZERO)) {
                        Ok(()) if !events.is_empty() => {}
                        Ok(()) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                        Err(e) => return Err(e),
                    }
                }
                if self.link.is_some() && events.iter().any(|e| e.token() == WAKER) {
                    self.cluster_turn(&mut l, &mut conns);
                }
                for event in events.iter() {
                    if event.token() == WAKER {
                        self.worker_turn(&mut l, &mut conns);
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
                    let readable =
                        event.is_readable() || event.is_read_closed() || event.is_error();
                    let conn = self.turn(&mut l).event(token, readable, conn, &mut conns);
                    conns.insert(token, conn);
                }
                // Their next turn (after everyone who had an event).
                let again = std::mem::take(&mut l.round.again);
                for token in again {
                    if let Some(conn) = conns.remove(&token) {
                        let conn = self.turn(&mut l).event(token, true, conn, &mut conns);
                        conns.insert(token, conn);
                    }
                }
            }
            if self.accept_failing {
                // Descriptors may have freed up since: try again.
                self.accept(&poll, &mut conns, &mut next, stopping.is_some())?;
            }
            if last_sweep.elapsed() >= Duration::from_millis(100) {
                last_sweep = Instant::now();
                self.sweep(&mut conns, &mut l.round);
            }
            self.finish_round(&mut conns, &mut l.watchers, &mut l.round)?;
            // Sizes for /metrics of what changed: small objects here, large
            // ones by the worker (one job per object at a time).
            if let Some(frozen) = self.snapshot_due.take()
                && let Err(e) = l
                    .worker
                    .write_snapshot(self.durable.snapshot_path(), frozen)
            {
                let _ = self.durable.finish_compaction(Err(e));
            }
            l.sizing.measure(&self.store, &l.worker);
        }
        drop(l);
        self.shut_down(conns)
    }

    /// The context of one connection's turn: what it borrows of the server
    /// and of the loop.
    fn turn<'a>(&'a mut self, l: &'a mut Looping) -> Turn<'a> {
        Turn {
            store: &mut self.store,
            metrics: &mut self.metrics,
            sizes: &l.sizing.sizes,
            fresh: &mut l.sizing.fresh,
            resized: &mut l.sizing.resized,
            config: &self.config,
            log: &self.log,
            round: &mut l.round,
            watchers: &mut l.watchers,
            worker: &l.worker,
            recent: &mut self.recent,
            link: self.link.as_ref(),
        }
    }

    /// Other nodes' changes (`--cluster`) come first in a turn, and their
    /// watchers get them at once: they are on their node's disk already (it
    /// acknowledged them), and logged here with this round.
    fn cluster_turn(&mut self, l: &mut Looping, conns: &mut Conns) {
        while let Some(msg) = self.link.as_ref().and_then(Link::try_recv) {
            self.turn(l).cluster_message(msg, conns);
        }
        self.send(conns, &mut l.watchers, &mut l.round);
    }

    /// The worker's finished jobs; a decoded frame goes on with its connection.
    fn worker_turn(&mut self, l: &mut Looping, conns: &mut Conns) {
        while let Some(done) = l.worker.try_recv() {
            let Some((token, started, decoded)) = self.job_done(done, &mut l.sizing) else {
                continue;
            };
            if let Some(mut conn) = conns.remove(&token) {
                self.turn(l)
                    .decoded(token, &mut conn, decoded, started, conns);
                conns.insert(token, conn);
            }
        }
    }

    /// Looks at the flags the signal handlers set: SIGTERM starts closing
    /// the connections (true once they are closed, or after a timeout),
    /// SIGHUP reads the tokens again.
    fn signalled(
        &mut self,
        stopping: &mut Option<Instant>,
        conns: &mut Conns,
        watchers: &mut BTreeSet<Token>,
        round: &mut Round,
    ) -> io::Result<bool> {
        if stopping.is_none() && self.stop.load(Ordering::Relaxed) {
            *stopping = Some(Instant::now());
            self.close_all(conns, watchers, round)?;
        }
        if let Some(since) = *stopping
            && (conns.is_empty() || since.elapsed() > CLOSE_TIMEOUT)
        {
            return Ok(true);
        }
        if self.reload.swap(false, Ordering::Relaxed) {
            self.reload_tokens(conns, round);
        }
        Ok(false)
    }

    /// Warns when the descriptor limit is below what `--max-connections` needs.
    fn check_fd_limit(&self) {
        let max = self.config.max_connections;
        if let Some(short) = raise_fd_limit(max as u64 + SPARE_FDS) {
            (self.log)(format!(
                "only {short} file descriptors (ulimit -n): fewer than --max-connections {max} connections fit"
            ));
        }
    }

    /// With `--cluster`: starts the Redis link, which wakes the loop.
    fn join_cluster(&mut self, waker: Arc<Waker>) -> io::Result<()> {
        if let Some(cluster) = self.config.cluster.clone() {
            let link = Link::start(
                cluster,
                self.store.replica().clone(),
                waker,
                self.log.clone(),
            )
            .map_err(io::Error::other)?;
            self.link = Some(link);
        }
        Ok(())
    }

    /// A finished worker job: a measured size or a written snapshot is
    /// taken in here; a decoded frame is handed back for its connection.
    fn job_done(&mut self, done: Done, sizing: &mut Sizing) -> Option<(Token, Instant, Request)> {
        match done {
            Done::Size { key, bytes } => {
                sizing.sizes.set(&key.0, key.1, bytes);
                sizing.measuring.remove(&key);
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
            } => return Some((token, started, decoded)),
        }
        None
    }

    /// After the loop: everything acknowledged is in the log already; a
    /// snapshot is written, and the new log starts with the recent pushes
    /// (merged again at the next start, they change nothing), so `log`
    /// requests still see them.
    fn shut_down(&mut self, mut conns: Conns) -> io::Result<()> {
        for (_, conn) in conns.drain() {
            if let Io::Ws(_) = conn.io {
                self.metrics.connected -= 1;
            }
        }
        self.durable.compact(&self.store)?;
        let lines = self.recent.lines();
        if lines.is_empty() {
            return Ok(());
        }
        self.durable.write(&lines)
    }

    /// Shutting down: closes every connection (they get a moment to answer).
    fn close_all(
        &mut self,
        conns: &mut Conns,
        watchers: &mut BTreeSet<Token>,
        round: &mut Round,
    ) -> io::Result<()> {
        for (token, conn) in conns.iter_mut() {
            match &mut conn.io {
                Io::Ws(ws) => {
                    close(ws, CloseCode::Away, "server shutting down");
                    round.mark(*token, ws);
                }
                Io::Http(_) => round.gone.push((*token, "server shutting down".into())),
            }
        }
        self.finish_round(conns, watchers, round)
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
        if !round.log.is_empty() {
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
        // What the other nodes lack goes out once durable here.
        if let Some(link) = &self.link
            && !round.publish.is_empty()
        {
            let merged = round
                .publish_delta
                .take()
                .map(|d| (d, std::mem::take(&mut round.publish_pushes)));
            link.publish(std::mem::take(&mut round.publish), merged);
        }
        self.send(conns, watchers, round);
        round.pending.clear();
        round.log.clear();
        round.publish.clear();
        round.publish_delta = None;
        round.publish_pushes.clear();
        Ok(())
    }

    /// Sends what the connections have to send, and drops those that ended.
    fn send(&mut self, conns: &mut Conns, watchers: &mut BTreeSet<Token>, round: &mut Round) {
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
            publish: String::new(),
            publish_delta: None,
            publish_pushes: String::new(),
            pending: Vec::new(),
            dirty: Vec::new(),
            order: Vec::new(),
            gone: Vec::new(),
            again: Vec::new(),
        }
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

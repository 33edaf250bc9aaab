//! `crdt serve --cluster`: nodes share their changes through Redis.
//!
//! A node acknowledges a client once the change is in its own log (as
//! without a cluster), then publishes the round's log lines as one entry of
//! the stream `PREFIX stream`. Every node reads the stream, merges what the
//! others published (durably, in its own log) and forwards it to its
//! watchers.
//!
//! Stream entries are hints. At every (re)connect a node reads everything
//! Redis holds in one transaction: the compacted copy `PREFIX state` (a field
//! per object), the stream id it covers (`PREFIX state-id`) and the stream.
//! It merges what it lacks and publishes what Redis lacks (its state since
//! Redis's versions). So a change acknowledged just before a kill -9, taken
//! while Redis was unreachable, or lost by Redis is published at the next
//! connect, and a node that missed entries, or whose place in the stream was
//! trimmed, is repaired: no lost message leaves two nodes different for good.
//!
//! One node at a time (a lease, `PREFIX compactor`) folds the entries older
//! than `keep` into the compacted copy and trims them from the stream, in a
//! transaction that aborts when another node compacted meanwhile (WATCH).
//!
//! The Redis work runs on three threads beside the event loop (one blocks
//! on the stream, one compacts, one does everything else); they talk to the loop over
//! channels and wake it with its `mio::Waker`. Nothing here touches the
//! loop's state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::clock::{ReplicaId, wall_ms as now_ms};
use crate::store::Store;
use crate::sync::metrics::Histogram;

/// Settings of `crdt serve --cluster`.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]` or `rediss://...`.
    pub url: String,
    /// The start of every key name (`crdt:`).
    pub prefix: String,
    /// The stream is compacted once it holds more entries than this.
    pub stream_max: usize,
    /// Entries younger than this are never trimmed: a node reading the
    /// stream is far less behind (one that is more is repaired anyway).
    pub keep: Duration,
    /// For a `rediss://` URL: whom to trust, and what to show.
    pub tls: ClusterTls,
}

/// TLS to Redis beyond the public CAs: PEM bytes, read at start.
#[derive(Clone, Default)]
pub struct ClusterTls {
    /// The CA that signed Redis's certificate (instead of the web's roots).
    pub ca: Option<Vec<u8>>,
    /// A client certificate and its key, for a Redis that asks for one.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClusterTls")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// The server's log: one line per cluster event.
pub use crate::sync::server::Log;

/// What the cluster threads hand the event loop.
pub enum FromLink {
    /// Connected (again): everything Redis holds. The loop merges what it
    /// lacks and publishes what Redis lacks ([`Link::publish`]).
    Caught(Store),
    /// Entries other nodes published, in stream order.
    Entries(Vec<Incoming>),
}

/// One log line another node published.
pub struct Incoming {
    /// The line as that node wrote it in its log: its objects, and the
    /// replica and time of the push when it says them; or an entry's
    /// pushes merged (then `pushes` has each).
    pub line: Line,
    /// When that node published it (its wall clock, ms since 1970).
    pub sent_ms: u64,
    /// The pushes merged in `line` (who, when), for this node's view of
    /// the pushes (`crdt log --url`).
    pub pushes: Vec<(ReplicaId, u64)>,
}

enum ToLink {
    /// Log lines to publish (one entry; large ones split at line ends),
    /// with what they hold merged and who pushed when (`REPLICA TIME_MS`
    /// lines).
    Publish(String, Option<(Store, String)>, Instant),
    /// Read everything again (an entry did not fit the state).
    Resync(String),
}

/// The key names, all under the prefix.
#[derive(Debug, Clone)]
struct Keys {
    stream: String,
    state: String,
    state_id: String,
    compactor: String,
    nodes: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            stream: format!("{prefix}stream"),
            state: format!("{prefix}state"),
            state_id: format!("{prefix}state-id"),
            compactor: format!("{prefix}compactor"),
            nodes: format!("{prefix}nodes"),
        }
    }
}

/// The cluster's state as `/healthz` and `/metrics` show it.
#[derive(Debug, Default)]
pub struct Status {
    pub connected: bool,
    /// Why not connected (the last error), for `/healthz`.
    pub error: Option<String>,
    pub redis_errors: u64,
    pub published: u64,
    pub applied: u64,
    pub stream_len: u64,
    pub compactions: u64,
    pub resyncs: u64,
    /// Round durable → its entry in the stream.
    pub publish_lag: Histogram,
    /// Published by another node → merged here (wall clocks of two nodes).
    pub apply_lag: Histogram,
    /// Each node's last heartbeat, ms since 1970.
    pub nodes: BTreeMap<String, u64>,
}

/// The event loop's handle on the cluster threads (they stop when it is
/// dropped).
pub struct Link {
    tx: Sender<ToLink>,
    rx: Receiver<FromLink>,
    status: Arc<Mutex<Status>>,
    stop: Arc<AtomicBool>,
    url: String,
}

/// Largest stream entry published: a larger publish is split at line ends.
const ENTRY_BYTES: usize = 4 << 20;
/// Entries read from the stream at a time.
const READ_COUNT: usize = 1000;
/// Entries folded by one compaction at most.
const FOLD_COUNT: usize = 5000;
/// A catch-up's pages: fields of the compacted copy per HSCAN, entries
/// per XRANGE (so a large state never is one reply that holds Redis up).
const SCAN_COUNT: usize = 1000;
const RANGE_COUNT: usize = 100;
/// Paged catch-ups a compaction may spoil (it folds and trims while the
/// pages are read) before one reads everything in one transaction.
const PAGED_TRIES: usize = 3;
/// How long the compactor's lease lasts (renewed every tick).
const LEASE: Duration = Duration::from_secs(5);
/// Heartbeat, lease, stream length and trim check.
const TICK: Duration = Duration::from_secs(1);
/// A node whose last heartbeat is older than this is forgotten.
const FORGET: Duration = Duration::from_secs(3600);
/// Longest wait between two attempts to reach Redis.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A Redis reply takes at most this long (an XREAD blocks for less).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a cluster's URL and certificates without connecting (for
/// `serve` to refuse wrong ones at start).
pub fn check(config: &ClusterConfig) -> Result<(), String> {
    client(config).map(|_| ())
}

/// The Redis client of `config`: its URL, and its certificates if any.
fn client(config: &ClusterConfig) -> Result<redis::Client, String> {
    let url = &config.url;
    let ClusterTls { ca, client } = &config.tls;
    if ca.is_none() && client.is_none() {
        return redis::Client::open(url.as_str())
            .map_err(|e| format!("--cluster {}: {e}", redact(url)));
    }
    if !url.starts_with("rediss://") {
        return Err(format!(
            "--cluster-ca and --cluster-cert are for TLS: --cluster {} is not a rediss:// URL",
            redact(url)
        ));
    }
    // What the files hold, checked here: the TLS layer would only fail at
    // each connect.
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificates = |pem: &[u8], flag: &str| match CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(list) if !list.is_empty() => Ok(()),
        Ok(_) => Err(format!("{flag}: the file holds no PEM certificate")),
        Err(e) => Err(format!("{flag}: {e}")),
    };
    if let Some(ca) = ca {
        certificates(ca, "--cluster-ca")?;
    }
    if let Some((cert, key)) = client {
        certificates(cert, "--cluster-cert")?;
        PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| format!("--cluster-key: no PEM private key in the file ({e})"))?;
    }
    let certs = redis::TlsCertificates {
        client_tls: client.as_ref().map(|(cert, key)| redis::ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        }),
        root_cert: ca.clone(),
    };
    redis::Client::build_with_tls(url.as_str(), certs).map_err(|e| {
        format!(
            "--cluster {} with --cluster-ca/--cluster-cert/--cluster-key: {e}",
            redact(url)
        )
    })
}

/// `url` without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

impl Link {
    /// Starts the cluster threads for node `node` (the server's replica id).
    pub fn start(
        config: ClusterConfig,
        node: ReplicaId,
        waker: Arc<Waker>,
        log: Log,
    ) -> Result<Link, String> {
        let client = client(&config)?;
        let (tx, from_loop) = mpsc::channel();
        let (to_loop, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(Status::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let url = redact(&config.url);
        let compactor = Compactor {
            client: client.clone(),
            keys: Keys::new(&config.prefix),
            config: config.clone(),
            node: node.clone(),
            log: log.clone(),
            status: status.clone(),
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name("crdt-cluster-compact".into())
            .spawn(move || compactor.run())
            .map_err(|e| format!("cannot start the compactor thread: {e}"))?;
        let node_thread = Node {
            keys: Keys::new(&config.prefix),
            config,
            client,
            node,
            to_loop,
            waker,
            status: status.clone(),
            stop: stop.clone(),
            log,
        };
        std::thread::Builder::new()
            .name("crdt-cluster".into())
            .spawn(move || node_thread.run(from_loop))
            .map_err(|e| format!("cannot start the cluster thread: {e}"))?;
        Ok(Link {
            tx,
            rx,
            status,
            stop,
            url,
        })
    }

    pub fn try_recv(&self) -> Option<FromLink> {
        self.rx.try_recv().ok()
    }

    /// Publishes log lines (each ending in a newline) once they are
    /// durable, with `merged`: what they hold, and who pushed when. The
    /// entry then holds that instead of the lines (smaller, and one delta
    /// for the other nodes to decode and merge); `None`, or a merged delta
    /// larger than an entry: the lines.
    pub fn publish(&self, lines: String, merged: Option<(Store, String)>) {
        let _ = self.tx.send(ToLink::Publish(lines, merged, Instant::now()));
    }

    /// Asks for everything Redis holds again (something did not fit).
    pub fn resync(&self, why: String) {
        let _ = self.tx.send(ToLink::Resync(why));
    }

    /// Records entries merged here, `sent_ms` when each was published.
    pub fn applied(&self, sent: impl Iterator<Item = u64>) {
        let now = now_ms();
        let mut s = lock(&self.status);
        for ms in sent {
            s.applied += 1;
            s.apply_lag.observe(now.saturating_sub(ms) as f64);
        }
    }

    /// `None` when connected; else why not, for `/healthz`.
    pub fn degraded(&self) -> Option<String> {
        let s = lock(&self.status);
        if s.connected {
            return None;
        }
        Some(match &s.error {
            // Not tried yet (the node just started).
            None => format!("connecting to redis {}", self.url),
            Some(why) => format!("redis {} unreachable: {why}", self.url),
        })
    }

    /// The `crdt_cluster_*` metrics.
    pub fn render(&self, out: &mut String) {
        let s = lock(&self.status);
        let now = now_ms();
        let mut gauge = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        gauge(
            "crdt_cluster_connected",
            "gauge",
            "1 while this node reaches Redis.",
            u64::from(s.connected),
        );
        gauge(
            "crdt_cluster_redis_errors_total",
            "counter",
            "Redis commands or connections that failed.",
            s.redis_errors,
        );
        gauge(
            "crdt_cluster_published_total",
            "counter",
            "Stream entries this node published.",
            s.published,
        );
        gauge(
            "crdt_cluster_applied_total",
            "counter",
            "Log lines of other nodes merged here.",
            s.applied,
        );
        gauge(
            "crdt_cluster_stream_length",
            "gauge",
            "Entries in the stream (last read).",
            s.stream_len,
        );
        gauge(
            "crdt_cluster_compactions_total",
            "counter",
            "Compactions of the stream this node made.",
            s.compactions,
        );
        gauge(
            "crdt_cluster_resyncs_total",
            "counter",
            "Times this node read everything Redis holds again.",
            s.resyncs,
        );
        s.publish_lag.render(
            out,
            "crdt_cluster_publish_lag_seconds",
            "From a round on disk to its entry in the stream, in seconds.",
            "",
            1e3,
        );
        s.apply_lag.render(
            out,
            "crdt_cluster_apply_lag_seconds",
            "From another node's publish to its merge here, in seconds.",
            "",
            1e3,
        );
        let _ = writeln!(
            out,
            "# HELP crdt_cluster_node_last_seen_seconds Seconds since each node's last heartbeat.\n# TYPE crdt_cluster_node_last_seen_seconds gauge"
        );
        for (node, ms) in &s.nodes {
            let ago = now.saturating_sub(*ms) as f64 / 1e3;
            let _ = writeln!(
                out,
                "crdt_cluster_node_last_seen_seconds{{node=\"{node}\"}} {ago}"
            );
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock(s: &Mutex<Status>) -> std::sync::MutexGuard<'_, Status> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

mod lines;
mod node;
pub use lines::{Line, decode_lines, decode_pushes, object_line};
use node::{Compactor, Node};

#[cfg(test)]
mod tests {
    use super::lines::*;
    use super::*;

    #[test]
    fn ids_compare_and_step() {
        assert!(parse_id("10-2") < parse_id("11-0"));
        assert!(parse_id("10-2") > parse_id("10-1"));
        assert_eq!(parse_id("x-1"), None);
        assert_eq!(next_id("5-1").as_deref(), Some("5-2"));
        assert_eq!(next_id(&format!("5-{}", u64::MAX)).as_deref(), Some("6-0"));
    }

    #[test]
    fn stream_replies_are_read_as_bytes_in_either_protocol() {
        use redis::Value;
        let b = |s: &[u8]| Value::BulkString(s.to_vec());
        let entry = |id: &str, fields: Value| Value::Array(vec![b(id.as_bytes()), fields]);
        let fields = Value::Array(vec![b(b"node"), b(b"n2"), b(b"\xff"), b(b"x")]);
        let range = Value::Array(vec![entry("1-0", fields.clone()), entry("2-0", Value::Nil)]);
        let got = range_entries(range.clone()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(text_field(&got[0], "node"), Some(&b"n2"[..]));
        assert_eq!(got[0].fields[1].0, b"\xff");
        assert!(got[1].fields.is_empty());
        // XREAD: [[key, entries]] (RESP2), {key: entries} (RESP3), nil.
        let resp2 = Value::Array(vec![Value::Array(vec![b(b"crdt:stream"), range.clone()])]);
        let resp3 = Value::Map(vec![(b(b"crdt:stream"), range)]);
        assert_eq!(read_entries(resp2).unwrap().len(), 2);
        assert_eq!(read_entries(resp3).unwrap().len(), 2);
        assert!(read_entries(Value::Nil).unwrap().is_empty());
        // Shapes Redis never sends are refused, not guessed at.
        let odd = Value::Array(vec![entry("1-0", Value::Array(vec![b(b"node")]))]);
        assert!(range_entries(odd).is_err());
        assert!(range_entries(Value::Int(3)).is_err());
        assert!(range_entries(Value::Array(vec![entry("1-0", Value::Int(1))])).is_err());
        // The error names the kind of reply, not the reply (it may be large).
        let big = Value::Array(vec![Value::Int(7); 100_000]);
        let err = range_entries(Value::Map(vec![(big.clone(), big)])).unwrap_err();
        assert_eq!(err, "a stream reply holds a map where entries go");
    }

    /// A catch-up's store shares what it lacked with the decoded delta (a
    /// new node holds one copy of Redis's state, not one per step).
    #[test]
    fn what_a_store_lacks_is_shared_not_copied() {
        let r = ReplicaId::new("server-a").unwrap();
        let line = r#"{"objects":[{"name":"a","type":"g-counter","state":{"counts":{"x":{"seq":1,"count":2}}}}]}"#;
        let delta = decode_lines(line, &r).unwrap().remove(0).delta;
        let mut into = Store::new(r.clone());
        assert_eq!(merge_fitting(&mut into, &delta), 0);
        let g = crate::CrdtType::GCounter;
        assert!(Arc::ptr_eq(
            into.get_shared("a", g).unwrap(),
            delta.get_shared("a", g).unwrap()
        ));
        // Merged into one it has: its own, merged (the delta untouched).
        let more = line
            .replace(r#""count":2"#, r#""count":5"#)
            .replace(r#""seq":1"#, r#""seq":2"#);
        let more = decode_lines(&more, &r).unwrap().remove(0).delta;
        merge_fitting(&mut into, &more);
        assert_eq!(into.get("a", g).unwrap().value_json(), 5);
        assert_eq!(delta.get("a", g).unwrap().value_json(), 2);
    }

    #[test]
    fn only_heartbeats_a_node_writes_are_kept() {
        let raw = vec![
            (b"server-1".to_vec(), b"1700000000000".to_vec()),
            (b"bogus".to_vec(), b"soon".to_vec()),
            (b"x\"} 1\nevil 2".to_vec(), b"5".to_vec()),
            (vec![0xff, 0xfe], b"5".to_vec()),
        ];
        let (good, bad) = heartbeats(raw);
        assert_eq!(
            good.into_iter().collect::<Vec<_>>(),
            [("server-1".to_string(), 1_700_000_000_000)]
        );
        assert_eq!(bad.len(), 3);
        assert_eq!(checked_id(Some(b"12-3".to_vec())).as_deref(), Some("12-3"));
        assert_eq!(checked_id(Some(b"not-an-id".to_vec())), None);
        assert_eq!(checked_id(Some(vec![0xff])), None);
    }

    #[test]
    fn entries_split_at_line_ends() {
        let line = "x".repeat(ENTRY_BYTES / 3) + "\n";
        let text = line.repeat(7);
        let parts = split_entries(&text);
        assert_eq!(parts.concat(), text);
        assert!(
            parts
                .iter()
                .all(|p| p.len() <= ENTRY_BYTES && p.ends_with('\n'))
        );
        // Two lines fit an entry (three are a few bytes over): 2, 2, 2, 1.
        assert_eq!(parts.len(), 4);
        let long = "y".repeat(ENTRY_BYTES + 5) + "\n";
        assert_eq!(split_entries(&long), vec![long.as_str()]);
    }

    /// An entry with its pushes merged (`delta`): that one line is what
    /// the node merges; `pushes` says who pushed when, for the view.
    #[test]
    fn an_entry_with_its_delta_is_merged_whole() {
        let r = ReplicaId::new("server-a").unwrap();
        let push = |who: &str, n: u64| {
            format!(
                r#"{{"objects":[{{"name":"a","type":"g-counter","state":{{"counts":{{"{who}":{{"seq":{n},"count":{n}}}}}}}}}]}}"#
            ) + "\n"
        };
        let lines = push("agent-1", 1) + &push("agent-2", 2);
        let mut merged = Store::new(r.clone());
        for l in decode_lines(&lines, &r).unwrap() {
            merged.merge(&l.delta);
        }
        let mut delta = String::new();
        crate::sync::persist::encode_entry(
            &mut delta,
            &crate::sync::persist::Entry::Delta(&merged),
        );
        let entry = |fields: &[(&str, &str)]| RawEntry {
            id: "1-0".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        };
        let pushes = "agent-1 1001\nagent-2 1002\nbad id! 5\nagent-3 x\n";
        let e = decode_entry(
            &entry(&[
                ("node", "n2"),
                ("ms", "5"),
                ("delta", &delta),
                ("pushes", pushes),
            ]),
            &r,
        )
        .unwrap();
        assert_eq!(e.lines.len(), 1);
        assert_eq!(
            e.lines[0]
                .delta
                .get("a", crate::CrdtType::GCounter)
                .unwrap()
                .value_json(),
            3
        );
        // Lines that say no push are left out of the view.
        let who: Vec<(&str, u64)> = e.pushes.iter().map(|(p, t)| (p.as_str(), *t)).collect();
        assert_eq!(who, [("agent-1", 1001), ("agent-2", 1002)]);
        // A damaged delta is refused, named; an entry of lines as before.
        let err = decode_entry(
            &entry(&[("node", "n2"), ("ms", "5"), ("delta", "{\"objects\":3}")]),
            &r,
        )
        .err()
        .unwrap();
        assert!(err.starts_with("delta: line 1:"), "{err}");
        let e = decode_entry(
            &entry(&[("node", "n2"), ("ms", "5"), ("lines", &lines)]),
            &r,
        )
        .unwrap();
        assert_eq!((e.lines.len(), e.pushes.len()), (2, 0));
    }

    #[test]
    fn decoding_lines_names_the_bad_one() {
        let r = ReplicaId::new("server-a").unwrap();
        let good = r#"{"objects":[{"name":"a","type":"g-counter","state":{"counts":{"x":{"seq":1,"count":2}}}}]}"#;
        assert_eq!(
            decode_lines(&format!("{good}\n{good}\n"), &r)
                .unwrap()
                .len(),
            2
        );
        let err = decode_lines(&format!("{good}\n{{\"objects\":3}}\n"), &r).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(redact("redis://:s3cret@h:6379/0"), "redis://***@h:6379/0");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }
}

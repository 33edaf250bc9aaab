//! Server metrics in the Prometheus text format (rendered by hand: a few
//! counters, gauges and one histogram need no client library).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::object::CrdtType;

/// The encoded state size of every object, and its totals by type and
/// namespace, kept up to date as objects change (so `/metrics` costs a walk
/// of the totals, not a re-serialization of the state).
#[derive(Debug, Default)]
pub struct StateSizes {
    /// Name -> size per type (`CrdtType::ALL` order), looked up by `&str`.
    objects: HashMap<String, [Option<usize>; CrdtType::ALL.len()]>,
    totals: BTreeMap<(CrdtType, String), usize>,
}

fn slot(ty: CrdtType) -> usize {
    CrdtType::ALL.iter().position(|t| *t == ty).unwrap_or(0)
}

impl StateSizes {
    /// Sets the size of one object.
    pub fn set(&mut self, name: &str, ty: CrdtType, bytes: usize) {
        let ns = name.split(':').next().unwrap_or("").to_string();
        let sizes = match self.objects.get_mut(name) {
            Some(s) => s,
            None => self.objects.entry(name.to_string()).or_default(),
        };
        let old = sizes[slot(ty)].replace(bytes).unwrap_or(0);
        let total = self.totals.entry((ty, ns)).or_default();
        *total = *total - old + bytes;
    }

    pub fn get(&self, name: &str, ty: CrdtType) -> Option<usize> {
        self.objects.get(name).and_then(|s| s[slot(ty)])
    }
}

/// The (type, rule) pairs the server resolves conflicts by (see
/// `protocol::commit_push`): each counter exists from the start.
const KNOWN_RESOLUTIONS: [(&str, &str); 4] = [
    ("lww-register", "last-writer-wins"),
    ("or-set", "add-wins"),
    ("rga", "rga-order"),
    ("map", "last-writer-wins"),
];

/// The message types counted (the protocol's, and what is refused).
const KNOWN_MESSAGES: [&str; 7] = {
    let [hello, sync, push, unwatch, log] = crate::sync::protocol::MESSAGE_TYPES;
    [hello, sync, push, unwatch, log, "invalid", "forbidden"]
};

/// A label value, escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Upper bounds of the latency histogram buckets, in milliseconds.
pub const BUCKETS_MS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0,
];

/// Milliseconds, counted in [`BUCKETS_MS`].
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS_MS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, ms: f64) {
        for (i, &b) in BUCKETS_MS.iter().enumerate() {
            if ms <= b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += ms;
    }

    /// Its lines as `name`, with `labels` (`a="b",` or empty), the
    /// milliseconds divided by `per`; with HELP and TYPE when `help` is set.
    pub fn render(&self, s: &mut String, name: &str, help: &str, labels: &str, per: f64) {
        if !help.is_empty() {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} histogram");
        }
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                s,
                "{name}_bucket{{{labels}le=\"{}\"}} {}",
                b / per,
                self.counts[i]
            );
        }
        let _ = writeln!(s, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", self.count);
        let l = labels.trim_end_matches(',');
        let l = if l.is_empty() {
            String::new()
        } else {
            format!("{{{l}}}")
        };
        let _ = writeln!(s, "{name}_sum{l} {}", self.sum / per);
        let _ = writeln!(s, "{name}_count{l} {}", self.count);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    latency: BTreeMap<(&'static str, &'static str), Histogram>,
    conflicts: BTreeMap<(&'static str, &'static str), u64>,
    messages: BTreeMap<String, u64>,
    pub connected: u64,
    pub connections_total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Metrics {
    /// Records how long one operation on one type took.
    pub fn observe(&mut self, crdt_type: &'static str, operation: &'static str, ms: f64) {
        self.latency
            .entry((crdt_type, operation))
            .or_default()
            .observe(ms);
    }

    pub fn conflict(&mut self, crdt_type: &'static str, resolution: &'static str) {
        *self.conflicts.entry((crdt_type, resolution)).or_default() += 1;
    }

    pub fn message(&mut self, ty: &str) {
        match self.messages.get_mut(ty) {
            Some(n) => *n += 1,
            None => {
                self.messages.insert(ty.into(), 1);
            }
        }
    }

    /// The latency histogram as `name`, its milliseconds divided by `per`.
    fn latency_histogram(&self, s: &mut String, name: &str, unit: &str, per: f64) {
        let _ = writeln!(s, "# HELP {name} Time to handle a sync or push, in {unit}.");
        let _ = writeln!(s, "# TYPE {name} histogram");
        for ((t, op), h) in &self.latency {
            let l = format!("crdt_type=\"{}\",operation=\"{}\",", label(t), label(op));
            h.render(s, name, "", &l, per);
        }
    }

    /// The whole exposition, with the state sizes kept in `sizes` and the
    /// number of objects held.
    pub fn render(&self, sizes: &StateSizes, objects: usize) -> String {
        let mut s = String::new();
        // The guide's milliseconds (its dashboards use them), and the same
        // histogram in base units, Prometheus's convention.
        self.latency_histogram(&mut s, "crdt_sync_latency_ms", "milliseconds", 1.0);
        self.latency_histogram(&mut s, "crdt_sync_latency_seconds", "seconds", 1e3);
        s.push_str("# HELP crdt_conflicts_resolved_total Merges of concurrent changes, by type and rule.\n");
        s.push_str("# TYPE crdt_conflicts_resolved_total counter\n");
        // Every known (type, rule) from the start, at 0 until it happens.
        let mut conflicts = self.conflicts.clone();
        for known in KNOWN_RESOLUTIONS {
            conflicts.entry(known).or_default();
        }
        for ((t, r), n) in &conflicts {
            let _ = writeln!(
                s,
                "crdt_conflicts_resolved_total{{crdt_type=\"{}\",resolution_type=\"{}\"}} {n}",
                label(t),
                label(r)
            );
        }
        s.push_str("# HELP crdt_state_size_bytes Size of the state JSON, by type and namespace.\n");
        s.push_str("# TYPE crdt_state_size_bytes gauge\n");
        for ((t, ns), n) in &sizes.totals {
            let _ = writeln!(
                s,
                "crdt_state_size_bytes{{crdt_type=\"{}\",namespace=\"{}\"}} {n}",
                label(t.as_str()),
                label(ns)
            );
        }
        s.push_str("# HELP crdt_connected_clients WebSocket clients connected now.\n");
        s.push_str("# TYPE crdt_connected_clients gauge\n");
        let _ = writeln!(s, "crdt_connected_clients {}", self.connected);
        s.push_str("# HELP crdt_connections_total WebSocket connections accepted.\n");
        s.push_str("# TYPE crdt_connections_total counter\n");
        let _ = writeln!(s, "crdt_connections_total {}", self.connections_total);
        s.push_str("# HELP crdt_messages_total Messages received, by type.\n");
        s.push_str("# TYPE crdt_messages_total counter\n");
        let mut messages = self.messages.clone();
        for known in KNOWN_MESSAGES {
            messages.entry(known.to_string()).or_default();
        }
        for (t, n) in &messages {
            let _ = writeln!(s, "crdt_messages_total{{type=\"{}\"}} {n}", label(t));
        }
        s.push_str("# HELP crdt_objects Objects the server holds.\n");
        s.push_str("# TYPE crdt_objects gauge\n");
        let _ = writeln!(s, "crdt_objects {objects}");
        s
    }
}

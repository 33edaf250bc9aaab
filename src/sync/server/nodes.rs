//! The loop's side of `--cluster`: other nodes' changes merged into the
//! state (durably, with the round), what Redis lacks published.

use super::*;
use crate::objects_line::push_object;
use crate::sync::cluster::{FromLink, Line};

/// Objects of a catch-up's publish per log line, at most.
const CATCH_UP_LINE_OBJECTS: usize = 64;

impl Turn<'_> {
    /// A message of the cluster threads.
    pub(super) fn cluster_message(&mut self, msg: FromLink, conns: &mut Conns) {
        let Some(link) = self.link else {
            return;
        };
        match msg {
            FromLink::Caught(redis) => {
                // What Redis holds that this node lacks: merged and logged
                // like a push (its watchers get it).
                // (What this node has none of is shared with `redis`, and
                // `merged` shares what the store takes: a new node's
                // catch-up holds one copy of the state, not three.)
                let lack = redis.delta_since_sharing(&self.store.versions());
                let mut merged = Store::new(self.store.replica().clone());
                let mut misfits = Vec::new();
                for (name, o) in lack.iter_shared() {
                    match self.store.check_mergeable_object(name, o) {
                        Ok(()) => {
                            self.store.merge_shared(name, o);
                            merged.insert_object(name, o.clone());
                        }
                        Err(why) => misfits.push(format!("{name}: {why}")),
                    }
                }
                if !misfits.is_empty() {
                    (self.log)(format!(
                        "cluster: {} objects from redis do not fit here (left out): {}",
                        misfits.len(),
                        misfits.join("; ")
                    ));
                }
                if !merged.is_empty() {
                    encode_entry(&mut self.round.log, &Entry::Delta(&merged));
                    self.forward(&merged, None, conns);
                    self.changed(&merged);
                }
                // What this node holds that Redis lacks (changes taken while
                // Redis was away, or acknowledged just before a crash):
                // published with the round, once durable.
                let ahead = self.store.delta_since(&redis.versions());
                let mut lines = 0;
                for (i, (name, o)) in ahead.iter().enumerate() {
                    if i % CATCH_UP_LINE_OBJECTS == 0 {
                        if i > 0 {
                            self.round.publish.push_str("]}\n");
                        }
                        self.round.publish.push_str("{\"objects\":[");
                        lines += 1;
                    } else {
                        self.round.publish.push(',');
                    }
                    push_object(&mut self.round.publish, name, o);
                }
                if lines > 0 {
                    self.round.publish.push_str("]}\n");
                    self.round
                        .publish_delta
                        .get_or_insert_with(|| Store::new(self.store.replica().clone()))
                        .merge(&ahead);
                }
                (self.log)(format!(
                    "cluster: caught up: {} objects merged from redis, {} published to it",
                    merged.len(),
                    ahead.len()
                ));
            }
            FromLink::Entries(list) => {
                let mut sent = Vec::with_capacity(list.len());
                for inc in list {
                    let Line {
                        text,
                        delta,
                        origin,
                    } = inc.line;
                    if let Err(why) = self.store.check_mergeable(&delta) {
                        // A gap (an entry this node never got): read
                        // everything again rather than merge out of order.
                        link.resync(format!("an entry does not fit here: {why}"));
                        break;
                    }
                    self.store.merge(&delta);
                    self.round.log.push_str(&text);
                    self.round.log.push('\n');
                    self.forward(&delta, None, conns);
                    self.changed(&delta);
                    let line_bytes = text.len();
                    if let Some((replica, time_ms)) = origin {
                        self.recent.record(time_ms, &replica, &delta, text);
                    }
                    if !inc.pushes.is_empty() {
                        self.recent.record_parts(inc.pushes, delta, line_bytes);
                    }
                    sent.push(inc.sent_ms);
                }
                link.applied(sent.into_iter());
            }
        }
    }
}

//! The snapshot format of a text: insert runs, delete runs, characters.

use super::*;

/// One insert run in creation order, for the snapshot.
pub(super) struct InsertRun {
    seq: u64,
    lamport: u64,
    len: u32,
    origin: Option<Id>,
}

impl Rga {
    /// Each replica's characters as runs in seq order (creation order).
    pub(super) fn insert_runs(&self) -> Vec<Vec<InsertRun>> {
        self.insert_runs_of(self.spans())
    }

    /// [`Rga::insert_runs`] of some of this text's spans.
    pub(super) fn insert_runs_of<'s>(
        &self,
        spans: impl Iterator<Item = &'s Span>,
    ) -> Vec<Vec<InsertRun>> {
        let mut per: Vec<Vec<InsertRun>> = (0..self.replicas.len()).map(|_| Vec::new()).collect();
        for s in spans {
            per[s.r as usize].push(InsertRun {
                seq: s.seq,
                lamport: s.lamport,
                len: s.len,
                origin: s.origin,
            });
        }
        for (r, list) in per.iter_mut().enumerate() {
            list.sort_unstable_by_key(|x| x.seq);
            let mut joined: Vec<InsertRun> = Vec::with_capacity(list.len());
            for x in list.drain(..) {
                if let Some(p) = joined.last_mut() {
                    let last = Id {
                        r: r as u32,
                        seq: p.seq + u64::from(p.len) - 1,
                    };
                    if x.seq == last.seq + 1
                        && x.lamport == p.lamport + u64::from(p.len)
                        && x.origin == Some(last)
                    {
                        p.len += x.len;
                        continue;
                    }
                }
                joined.push(x);
            }
            *list = joined;
        }
        per
    }

    /// Every (delete dot, deleted character) pair, per deleting replica,
    /// run-length encoded as (dot, dot step, target, target step, count).
    pub(super) fn delete_runs(&self) -> Vec<Vec<[i128; 6]>> {
        self.delete_runs_of(self.spans())
    }

    /// [`Rga::delete_runs`] of some of this text's spans.
    pub(super) fn delete_runs_of<'s>(
        &self,
        spans: impl Iterator<Item = &'s Span>,
    ) -> Vec<Vec<[i128; 6]>> {
        let mut pairs: Vec<Vec<(u64, u32, u64)>> =
            (0..self.replicas.len()).map(|_| Vec::new()).collect();
        for s in spans {
            if let Some(d) = s.del {
                for i in 0..s.len {
                    pairs[d.r as usize].push((d.at(i), s.r, s.seq + u64::from(i)));
                }
            }
        }
        pairs
            .into_iter()
            .map(|mut list| {
                // By replica id, not index: indexes depend on arrival order.
                list.sort_unstable_by(|a, b| {
                    (a.0, &self.replicas[a.1 as usize], a.2).cmp(&(
                        b.0,
                        &self.replicas[b.1 as usize],
                        b.2,
                    ))
                });
                // [dot, dot_step, target_replica, target_seq, target_step, count]
                let mut out: Vec<[i128; 6]> = Vec::new();
                for (dot, tr, tseq) in list {
                    if let Some(last) = out.last_mut() {
                        let [d0, ds, r0, t0, ts, n] = *last;
                        let (dot, tr, tseq) = (i128::from(dot), i128::from(tr), i128::from(tseq));
                        if r0 == tr {
                            if n == 1 {
                                let (nds, nts) = (dot - d0, tseq - t0);
                                if (0..=1).contains(&nds) && (-1..=1).contains(&nts) && nts != 0 {
                                    *last = [d0, nds, r0, t0, nts, 2];
                                    continue;
                                }
                            } else if dot == d0 + ds * n && tseq == t0 + ts * n {
                                last[5] += 1;
                                continue;
                            }
                        }
                    }
                    out.push([i128::from(dot), 0, i128::from(tr), i128::from(tseq), 1, 1]);
                }
                out
            })
            .collect()
    }
}

impl Rga {
    /// [`Codec::encode`]'s text, written straight (a history row per batch
    /// line is written so): keys and replicas in order, as serde writes them.
    pub(crate) fn write_text(&self, out: &mut String) {
        self.write_spans_text(self.spans(), &self.context, out);
    }

    /// The text [`Rga::write_text`] gives for an `Rga` of `spans` (some of
    /// this one's) and `context`, without building it: a local change's
    /// delta, written as a history row.
    pub(super) fn write_spans_text<'s>(
        &self,
        spans: impl Iterator<Item = &'s Span> + Clone,
        context: &CausalContext,
        out: &mut String,
    ) {
        use crate::codec::push_json_str;
        use std::fmt::Write as _;
        let runs = self.insert_runs_of(spans.clone());
        let dels = self.delete_runs_of(spans);
        let mut order: Vec<usize> = (0..self.replicas.len()).collect();
        order.sort_by(|a, b| self.replicas[*a].as_str().cmp(self.replicas[*b].as_str()));
        let origin_of = |out: &mut String, r: usize, seq: u64| {
            out.push('[');
            push_json_str(out, self.replicas[r].as_str());
            let _ = write!(out, ",{seq}]");
        };
        out.push_str("{\"context\":");
        crate::codec::context_text(context, out);
        out.push_str(",\"deletes\":");
        self.per_replica(out, &order, &dels, |out, r, list| {
            out.push('[');
            let mut prev = 0i128;
            for (i, [dot, ds, tr, tseq, ts, n]) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{},{},", (dot - prev) as u64, *ds as u64);
                if *tr as usize == r {
                    let _ = write!(out, "{}", *tseq as u64);
                } else {
                    origin_of(out, *tr as usize, *tseq as u64);
                }
                let _ = write!(out, ",{},{}", *ts as i64, *n as u64);
                prev = dot + ds * (n - 1);
            }
            out.push(']');
        });
        out.push_str(",\"inserts\":");
        self.per_replica(out, &order, &runs, |out, r, list| {
            out.push('[');
            let (mut prev_end, mut prev_lamport_end) = (0u64, 0u64);
            for (i, x) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "{},{},{},",
                    x.seq - prev_end - 1,
                    x.len,
                    x.lamport - prev_lamport_end - 1
                );
                match x.origin {
                    None => out.push_str("null"),
                    Some(o) if o.r as usize == r && o.seq < x.seq => {
                        let _ = write!(out, "{}", x.seq - o.seq);
                    }
                    Some(o) => origin_of(out, o.r as usize, o.seq),
                }
                prev_end = x.seq + u64::from(x.len) - 1;
                prev_lamport_end = x.lamport + u64::from(x.len) - 1;
            }
            out.push(']');
        });
        out.push_str(",\"text\":");
        let mut chars = String::new();
        self.per_replica(out, &order, &runs, |out, r, list| {
            chars.clear();
            for x in list {
                chars.extend(self.cols[r].chars(x.seq, x.len as usize));
            }
            push_json_str(out, &chars);
        });
        out.push('}');
    }

    /// `{"<replica>": <item>, ...}` for the replicas (in `order`) whose list
    /// is not empty, as serde writes a map.
    pub(super) fn per_replica<T>(
        &self,
        out: &mut String,
        order: &[usize],
        lists: &[Vec<T>],
        mut item: impl FnMut(&mut String, usize, &[T]),
    ) {
        out.push('{');
        let mut first = true;
        for &r in order {
            let list = &lists[r];
            if list.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            crate::codec::push_json_str(out, self.replicas[r].as_str());
            out.push(':');
            item(out, r, list);
        }
        out.push('}');
    }
}

impl Codec for Rga {
    /// Creation order, compactly: per replica its insert runs as flat numbers
    /// `[seq gap, length, lamport gap, origin]...` and its text, and its
    /// deletes as flat numbers `[dot gap, dot step, target, target step, count]...`
    /// (see docs/snapshot-format.md). Loading replays the runs in Lamport order.
    fn encode(&self) -> Value {
        let runs = self.insert_runs();
        let dels = self.delete_runs();
        let mut inserts = serde_json::Map::new();
        let mut text = serde_json::Map::new();
        let mut deletes = serde_json::Map::new();
        for (r, list) in runs.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let name = self.replicas[r].to_string();
            let mut nums: Vec<Value> = Vec::with_capacity(list.len() * 4);
            let mut chars = String::new();
            let (mut prev_end, mut prev_lamport_end) = (0u64, 0u64);
            for x in list {
                nums.push(Value::from(x.seq - prev_end - 1));
                nums.push(Value::from(x.len));
                nums.push(Value::from(x.lamport - prev_lamport_end - 1));
                nums.push(match x.origin {
                    None => Value::Null,
                    Some(o) if o.r as usize == r && o.seq < x.seq => Value::from(x.seq - o.seq),
                    Some(o) => json!([self.replicas[o.r as usize].as_str(), o.seq]),
                });
                chars.extend(self.cols[r].chars(x.seq, x.len as usize));
                prev_end = x.seq + u64::from(x.len) - 1;
                prev_lamport_end = x.lamport + u64::from(x.len) - 1;
            }
            inserts.insert(name.clone(), Value::Array(nums));
            text.insert(name, Value::String(chars));
        }
        for (r, list) in dels.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let mut nums: Vec<Value> = Vec::with_capacity(list.len() * 5);
            let mut prev = 0i128;
            for [dot, ds, tr, tseq, ts, n] in list {
                nums.push(Value::from((dot - prev) as u64));
                nums.push(Value::from(*ds as u64));
                nums.push(if *tr as usize == r {
                    Value::from(*tseq as u64)
                } else {
                    json!([self.replicas[*tr as usize].as_str(), *tseq as u64])
                });
                nums.push(Value::from(*ts as i64));
                nums.push(Value::from(*n as u64));
                prev = dot + ds * (n - 1);
            }
            deletes.insert(self.replicas[r].to_string(), Value::Array(nums));
        }
        json!({"context": context_json(&self.context), "inserts": inserts, "text": text, "deletes": deletes})
    }

    fn decode(at: &At<'_>) -> Result<Self, SnapshotError> {
        at.fields(&["context", "inserts", "text", "deletes"], &[])?;
        let context = at.field("context")?.context()?;
        let mut rga = Rga {
            context: CausalContext::new(),
            ..Rga::default()
        };
        // Every replica the context knows (no room is made for its seqs:
        // slots are made for the characters that are here).
        for (replica, _) in context.iter() {
            rga.intern(replica);
        }
        let all = decode_inserts(&mut rga, at, &context)?;
        place_runs(&mut rga, all, at.delta)?;
        decode_deletes(&mut rga, at, &context)?;
        rga.context = context;
        Ok(rga)
    }
}

/// `list[i]` is not what was expected (numbers are read straight from the
/// arrays; a path is built only for an error).
fn item(list: &At<'_>, i: usize, expected: &str) -> SnapshotError {
    SnapshotError::Shape {
        path: format!("{}[{i}]", list.path),
        expected: expected.into(),
        found: crate::codec::describe(&list.value[i]),
    }
}

/// `list[i]` is causally impossible.
fn causal(list: &At<'_>, i: usize, detail: String) -> SnapshotError {
    SnapshotError::Causal {
        path: format!("{}[{i}]", list.path),
        detail,
    }
}

/// Reads every replica's insert runs and their characters (recorded in
/// the columns, not placed yet): the runs, each with where it was read.
fn decode_inserts(
    rga: &mut Rga,
    at: &At<'_>,
    context: &CausalContext,
) -> Result<Vec<(Span, String, usize)>, SnapshotError> {
    let inserts = at.field("inserts")?;
    let texts = at.field("text")?;
    let mut all: Vec<(Span, String, usize)> = Vec::new();
    for (name, list) in inserts.entries()? {
        let replica = inserts.replica_key(name)?;
        let r = match rga.index_of.get(&replica) {
            Some(&r) => r,
            // A delta carries old characters of replicas it has no new
            // events of (to deliver their deletes).
            None if at.delta => rga.intern(&replica),
            None => return Err(list.causal(format!("replica {replica} is not in the context"))),
        };
        let text_at = texts.field(name)?;
        let chars: Vec<char> = text_at.str()?.chars().collect();
        let items = list
            .value
            .as_array()
            .ok_or_else(|| list.shape("an array"))?;
        if items.len() % 4 != 0 {
            return Err(list.shape("groups of 4: [seq gap, length, lamport gap, origin]"));
        }
        let num = |i: usize| {
            items[i]
                .as_u64()
                .ok_or_else(|| item(&list, i, "a non-negative integer"))
        };
        let (mut prev_end, mut prev_lamport_end, mut used) = (0u64, 0u64, 0usize);
        for g in (0..items.len()).step_by(4) {
            let seq = prev_end
                .checked_add(num(g)?)
                .filter(|&s| s < MAX_SEQ)
                .ok_or_else(|| item(&list, g, "a seq gap within 2^53"))?
                + 1;
            let len = num(g + 1)?;
            if len == 0 || len > u64::from(u32::MAX) {
                return Err(item(&list, g + 1, "a length from 1 to 2^32-1"));
            }
            let lamport = prev_lamport_end
                .checked_add(num(g + 2)?)
                .filter(|&l| l < MAX_SEQ)
                .ok_or_else(|| item(&list, g + 2, "a lamport gap within 2^53"))?
                + 1;
            if lamport.checked_add(len - 1).is_none_or(|l| l > MAX_SEQ) {
                return Err(item(&list, g + 2, "lamport numbers within 2^53"));
            }
            let origin = decode_origin(
                rga,
                &list,
                &items[g + 3],
                g + 3,
                (r, &replica, seq),
                at.delta,
            )?;
            let end = seq
                .checked_add(len - 1)
                .filter(|&e| e <= MAX_SEQ)
                .ok_or_else(|| item(&list, g + 1, "seqs within 2^53"))?;
            if !at.delta && !context.contains_range(&replica, seq, end) {
                return Err(causal(
                    &list,
                    g,
                    format!("characters {replica}:{seq}..{end} are not in the context"),
                ));
            }
            if used + len as usize > chars.len() {
                return Err(text_at.shape(&format!("at least {} characters", used + len as usize)));
            }
            let run = &chars[used..used + len as usize];
            rga.cols[r as usize].record(seq, run.len(), run.iter().copied(), NOWHERE);
            used += len as usize;
            all.push((
                Span {
                    r,
                    seq,
                    lamport,
                    len: len as u32,
                    origin,
                    del: None,
                },
                list.path.clone(),
                g,
            ));
            prev_end = end;
            prev_lamport_end = lamport + len - 1;
        }
        if used != chars.len() {
            return Err(text_at.shape(&format!(
                "exactly {used} characters, one per inserted character"
            )));
        }
    }
    Ok(all)
}

/// The origin of an insert run (`items[i]` of `list`): none, a distance
/// back within its replica, or a dot; `(r, replica, seq)` is the run's.
fn decode_origin(
    rga: &mut Rga,
    list: &At<'_>,
    value: &Value,
    i: usize,
    (r, replica, seq): (u32, &ReplicaId, u64),
    delta: bool,
) -> Result<Option<Id>, SnapshotError> {
    Ok(match value {
        Value::Null => None,
        Value::Number(n) => match n.as_u64() {
            Some(back) if back > 0 && back < seq => Some(Id { r, seq: seq - back }),
            _ => {
                return Err(item(
                    list,
                    i,
                    "a positive distance back to an earlier character",
                ));
            }
        },
        _ => {
            let d = list.child(value, &format!("[{i}]")).dot()?;
            if &d.replica == replica && d.seq >= seq {
                return Err(causal(
                    list,
                    i,
                    format!("origin {d} is not an earlier character"),
                ));
            }
            let or = match rga.index_of.get(&d.replica) {
                Some(&or) => or,
                // A delta may start after a character of a replica it
                // says nothing else about.
                None if delta => rga.intern(&d.replica),
                None => {
                    return Err(causal(list, i, format!("origin {d} is not in the context")));
                }
            };
            Some(Id { r: or, seq: d.seq })
        }
    })
}

/// Places the runs in Lamport order (every origin before what follows
/// it), refusing an origin that comes later or is not a character.
fn place_runs(
    rga: &mut Rga,
    mut all: Vec<(Span, String, usize)>,
    delta: bool,
) -> Result<(), SnapshotError> {
    // Every character of the state is pending until placed: an origin
    // that is pending when its follower's turn comes has the greater
    // Lamport number (a delta may only refer *outside* itself).
    for (span, _, _) in &all {
        rga.cols[span.r as usize].fill_chunk(span.seq, span.len as usize, PENDING);
    }
    // Replay in Lamport order: every origin comes before what follows it.
    all.sort_by(|a, b| {
        (a.0.lamport, &rga.replicas[a.0.r as usize], a.0.seq).cmp(&(
            b.0.lamport,
            &rga.replicas[b.0.r as usize],
            b.0.seq,
        ))
    });
    for (span, path, g) in all {
        let at_run = |detail: String| SnapshotError::Causal {
            path: format!("{path}[{g}]"),
            detail,
        };
        let mut detached = false;
        if let Some(o) = span.origin {
            let origin_chunk = rga.cols[o.r as usize].chunk(o.seq);
            if origin_chunk == PENDING {
                return Err(at_run(format!(
                    "origin {} comes after the character (its lamport is greater)",
                    rga.dot(o)
                )));
            }
            if origin_chunk == NOWHERE {
                if !delta {
                    return Err(at_run(format!(
                        "origin {} is not an earlier character",
                        rga.dot(o)
                    )));
                }
                // A delta refers to characters the receiver has: keep the run
                // aside; merging places it by its origin.
                detached = true;
            } else {
                let p = rga.locate_id(o);
                let ol = rga.chunks[p.chunk].spans[p.span].lamport + u64::from(p.offset);
                if ol >= span.lamport {
                    return Err(at_run(format!(
                        "lamport {} is not greater than its origin's ({ol})",
                        span.lamport
                    )));
                }
            }
        }
        if rga.cols[span.r as usize].chunk(span.seq) != PENDING {
            return Err(at_run(format!(
                "character {} appears twice",
                rga.dot(Id {
                    r: span.r,
                    seq: span.seq
                })
            )));
        }
        // Mark the seqs as present before placing (the index needs the slots).
        let n = span.len as usize;
        rga.cols[span.r as usize].fill_chunk(span.seq, n, 0);
        let chunk = if detached {
            let c = rga.chunks.len().saturating_sub(1);
            let s = rga.chunks.last().map_or(0, |ch| ch.spans.len());
            rga.insert_span(c, s, span)
        } else {
            rga.integrate(span)
        };
        rga.cols[span.r as usize].fill_chunk(span.seq, n, chunk);
        rga.max_lamport = rga.max_lamport.max(span.lamport + u64::from(span.len) - 1);
    }
    Ok(())
}

/// One group of a replica's delete runs, read and bounded: dots `dot`,
/// `dot + ds`, ... up to `last_dot` delete `n` characters of replica `tr`
/// from `tseq` on, in steps of `ts`.
struct DeleteRun {
    dot: u64,
    ds: u64,
    tr: u32,
    tseq: u64,
    ts: i64,
    n: u64,
    last_dot: u64,
}

/// The group of five at `items` (index `g` of `list`), whose dot gap counts
/// from `prev`; `dr` is the deleting replica, the target's when it is a number.
fn read_delete_run(
    rga: &Rga,
    list: &At<'_>,
    items: &[Value],
    g: usize,
    prev: u64,
    dr: u32,
) -> Result<DeleteRun, SnapshotError> {
    let num = |i: usize| {
        items[i]
            .as_u64()
            .ok_or_else(|| item(list, g + i, "a non-negative integer"))
    };
    let dot = prev
        .checked_add(num(0)?)
        .filter(|&d| d > 0)
        .ok_or_else(|| item(list, g, "a gap to a dot of at least 1"))?;
    let ds = match num(1)? {
        v @ 0..=1 => v,
        _ => return Err(item(list, g + 1, "a dot step of 0 or 1")),
    };
    let (tr, tseq) = if let Some(t) = items[2].as_u64() {
        (dr, t)
    } else {
        let d = list.child(&items[2], &format!("[{}]", g + 2)).dot()?;
        let tr = *rga
            .index_of
            .get(&d.replica)
            .ok_or_else(|| causal(list, g + 2, format!("target {d} is not here")))?;
        (tr, d.seq)
    };
    let ts = match items[3].as_i64() {
        Some(v @ (-1 | 1)) => v,
        _ => return Err(item(list, g + 3, "a target step of -1 or 1")),
    };
    let n = num(4)?;
    if n == 0 || n > u64::from(u32::MAX) {
        return Err(item(list, g + 4, "a count from 1 to 2^32-1"));
    }
    let last_dot = (ds * (n - 1))
        .checked_add(dot)
        .filter(|&d| d <= MAX_SEQ)
        .ok_or_else(|| item(list, g, "delete dots within 2^53"))?;
    if tseq > MAX_SEQ {
        return Err(item(list, g + 2, "a target seq within 2^53"));
    }
    Ok(DeleteRun {
        dot,
        ds,
        tr,
        tseq,
        ts,
        n,
        last_dot,
    })
}

/// Reads every replica's delete runs and marks the characters they delete.
fn decode_deletes(
    rga: &mut Rga,
    at: &At<'_>,
    context: &CausalContext,
) -> Result<(), SnapshotError> {
    let deletes = at.field("deletes")?;
    for (name, list) in deletes.entries()? {
        let replica = deletes.replica_key(name)?;
        let dr = match rga.index_of.get(&replica) {
            Some(&dr) => dr,
            None if at.delta => rga.intern(&replica),
            None => return Err(list.causal(format!("replica {replica} is not in the context"))),
        };
        let items = list
            .value
            .as_array()
            .ok_or_else(|| list.shape("an array"))?;
        if items.len() % 5 != 0 {
            return Err(list.shape("groups of 5: [dot gap, dot step, target, target step, count]"));
        }
        let mut prev = 0u64;
        for g in (0..items.len()).step_by(5) {
            let DeleteRun {
                dot,
                ds,
                tr,
                tseq,
                ts,
                n,
                last_dot,
            } = read_delete_run(rga, &list, &items[g..g + 5], g, prev, dr)?;
            if !at.delta && !context.contains_range(&replica, dot, last_dot) {
                return Err(causal(
                    &list,
                    g,
                    format!("deletes {replica}:{dot}..{last_dot} are not in the context"),
                ));
            }
            let last_t = tseq as i128 + i128::from(ts) * (n as i128 - 1);
            let (lo, first_dot, step) = if ts == 1 {
                (tseq, dot, ds as i8)
            } else {
                (last_t.max(0) as u64, last_dot, -(ds as i8))
            };
            if last_t < 1 || tseq == 0 || (0..n).any(|k| !rga.has(tr, lo + k)) {
                return Err(causal(
                    &list,
                    g + 2,
                    "a deleted character is not in the text".into(),
                ));
            }
            // (After the targets: n is then bounded by the characters here.)
            if (dot..=last_dot).any(|d| rga.has(dr, d)) {
                return Err(causal(
                    &list,
                    g,
                    format!("a delete {replica}:{dot}..{last_dot} is also a character"),
                ));
            }
            // As an ascending target range: dots run the other way for ts = -1.
            rga.merge_deletes(
                tr,
                lo,
                n as u32,
                Del {
                    r: dr,
                    seq: first_dot,
                    step,
                },
            );
            prev = last_dot;
        }
    }
    Ok(())
}

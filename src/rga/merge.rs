//! Merging: placing runs after their origins, deletes, and the join.

use super::*;

impl Rga {
    /// Places a span of new characters after its origin (or at the start),
    /// skipping the characters that sort before it. Returns its chunk id.
    pub(super) fn integrate(&mut self, span: Span) -> u32 {
        let start = match span.origin {
            None => Pos {
                chunk: 0,
                span: 0,
                offset: 0,
            },
            Some(o) => self.after(self.locate_id(o)),
        };
        let mut pos = start;
        let key_r = self.replicas[span.r as usize].clone();
        let new_key = (span.lamport, &key_r, span.seq);
        // Skip characters with a greater key; a span's later characters have
        // even greater keys, so a skipped character takes its span's rest along.
        while let Some(p) = self.next_valid(pos) {
            let s = &self.chunks[p.chunk].spans[p.span];
            if self.key(s, p.offset) > new_key {
                pos = Pos {
                    chunk: p.chunk,
                    span: p.span + 1,
                    offset: 0,
                };
            } else {
                pos = p;
                break;
            }
        }
        let (c, s) = if pos.chunk >= self.chunks.len() {
            (
                self.chunks.len().saturating_sub(1),
                self.chunks.last().map_or(0, |c| c.spans.len()),
            )
        } else {
            self.split_at(pos)
        };
        let (c, s) = self.clamp_insert_point(c, s);
        self.insert_span(c, s, span)
    }

    /// Applies another replica's delete dots to characters `seq..seq+len` of
    /// replica `r`, which are here: a character keeps the least delete dot.
    pub(super) fn merge_deletes(&mut self, r: u32, seq: u64, len: u32, del: Del) {
        let mut i = 0;
        while i < len {
            let id = Id {
                r,
                seq: seq + u64::from(i),
            };
            let p = self.locate_id(id);
            let span = self.chunks[p.chunk].spans[p.span];
            let take = (span.len - p.offset).min(len - i);
            let theirs = Del {
                seq: del.at(i),
                ..del
            };
            let dot_of = |d: &Del, k: u32| (d.r, d.at(k));
            let replace = match span.del {
                None => true,
                Some(mine) => {
                    // Compare dot by dot: keep the least (by replica id, then seq).
                    (0..take).any(|k| {
                        let (mr, ms) = dot_of(&mine, p.offset + k);
                        let (tr, ts) = dot_of(&theirs, k);
                        (&self.replicas[tr as usize], ts) < (&self.replicas[mr as usize], ms)
                    })
                }
            };
            if replace {
                // Mixed cases are rare (two replicas deleting the same characters):
                // go character by character then.
                let uniform = span.del.is_none_or(|mine| {
                    (0..take).all(|k| {
                        let (mr, ms) = dot_of(&mine, p.offset + k);
                        let (tr, ts) = dot_of(&theirs, k);
                        (&self.replicas[tr as usize], ts) < (&self.replicas[mr as usize], ms)
                    })
                });
                let take = if uniform { take } else { 1 };
                let (c, s) = self.split_at(p);
                let (c, s) = self
                    .next_valid(Pos {
                        chunk: c,
                        span: s,
                        offset: 0,
                    })
                    .map(|p| (p.chunk, p.span))
                    .expect("the character is here");
                if self.chunks[c].spans[s].len > take {
                    self.split_at(Pos {
                        chunk: c,
                        span: s,
                        offset: take,
                    });
                }
                let (c, s) = self.refind(r, id.seq);
                let target = &mut self.chunks[c].spans[s];
                let was_visible = target.del.is_none();
                target.del = Some(Del {
                    step: if take == 1 { 0 } else { theirs.step },
                    ..theirs
                });
                if was_visible {
                    self.chunks[c].visible -= take as usize;
                    self.visible -= take as usize;
                    let (cc, before) = self.cursor.get();
                    if cc > c {
                        self.cursor.set((cc, before - take as usize));
                    }
                }
                self.coalesce(c, s);
                i += take;
            } else {
                i += take;
            }
        }
    }

    pub(super) fn rebuild_slots(&mut self) {
        self.slot = vec![
            0;
            self.chunks
                .iter()
                .map(|c| c.id as usize + 1)
                .max()
                .unwrap_or(0)
        ];
        for (i, c) in self.chunks.iter().enumerate() {
            self.slot[c.id as usize] = i as u32;
        }
    }

    /// Builds from spans in document order (deltas), copying their
    /// characters from `source` (only theirs: a delta holds what it carries).
    pub(super) fn from_spans(
        replicas: Vec<ReplicaId>,
        source: &[Column],
        spans: Vec<Span>,
        context: CausalContext,
    ) -> Rga {
        let mut rga = Rga {
            index_of: replicas
                .iter()
                .enumerate()
                .map(|(i, r)| (r.clone(), i as u32))
                .collect(),
            cols: vec![Column::default(); replicas.len()],
            replicas,
            context,
            ..Rga::default()
        };
        for (i, group) in spans.chunks(CHUNK / 2).enumerate() {
            let mut chunk = Chunk {
                id: i as u32,
                spans: group.to_vec(),
                ..Chunk::default()
            };
            chunk.recount();
            for s in &chunk.spans {
                let n = s.len as usize;
                let chars = source[s.r as usize].chars(s.seq, n).iter().copied();
                rga.cols[s.r as usize].record(s.seq, n, chars, i as u32);
            }
            rga.visible += chunk.visible;
            rga.max_lamport = rga.max_lamport.max(
                chunk
                    .spans
                    .iter()
                    .map(|s| s.lamport + u64::from(s.len) - 1)
                    .max()
                    .unwrap_or(0),
            );
            rga.chunks.push(chunk);
        }
        rga.rebuild_slots();
        rga
    }
}

impl Crdt for Rga {
    fn merge(&mut self, other: &Self) {
        if self.chunks.is_empty() && self.context.is_empty() {
            *self = other.clone();
            return;
        }
        let map: Vec<u32> = other.replicas.iter().map(|r| self.intern(r)).collect();
        let remap = |id: Id| Id {
            r: map[id.r as usize],
            seq: id.seq,
        };
        // In Lamport order, every origin is here before what follows it, even
        // when `other` is a delta whose own order is only partial.
        let mut ordered: Vec<&Span> = other.spans().collect();
        ordered.sort_by(|a, b| {
            (a.lamport, &other.replicas[a.r as usize], a.seq).cmp(&(
                b.lamport,
                &other.replicas[b.r as usize],
                b.seq,
            ))
        });
        for ospan in ordered {
            let r = map[ospan.r as usize];
            let mut i = 0;
            while i < ospan.len {
                let present = self.has(r, ospan.seq + u64::from(i));
                let mut j = i + 1;
                while j < ospan.len && self.has(r, ospan.seq + u64::from(j)) == present {
                    j += 1;
                }
                let part_seq = ospan.seq + u64::from(i);
                let del = ospan.del.map(|d| Del {
                    r: map[d.r as usize],
                    seq: d.at(i),
                    step: d.step,
                });
                if present {
                    if let Some(d) = del {
                        self.merge_deletes(r, part_seq, j - i, d);
                    }
                } else {
                    let span = Span {
                        r,
                        seq: part_seq,
                        lamport: ospan.lamport + u64::from(i),
                        len: j - i,
                        origin: if i == 0 {
                            ospan.origin.map(remap)
                        } else {
                            Some(Id {
                                r,
                                seq: part_seq - 1,
                            })
                        },
                        del,
                    };
                    let chars = other.cols[ospan.r as usize].chars(part_seq, span.len as usize);
                    self.cols[r as usize].record(
                        part_seq,
                        chars.len(),
                        chars.iter().copied(),
                        NOWHERE,
                    );
                    let chunk = self.integrate(span);
                    self.cols[r as usize].fill_chunk(part_seq, span.len as usize, chunk);
                    self.max_lamport = self.max_lamport.max(span.lamport + u64::from(span.len) - 1);
                }
                i = j;
            }
        }
        self.context.union(&other.context);
        self.max_lamport = self.max_lamport.max(other.max_lamport);
        crate::deletion::Deletion::merge(&mut self.deleted, &other.deleted);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    /// New characters and new deletes since `vv`. Merge it only into a replica
    /// at or after `vv`: it leaves out the characters `vv` already covers.
    fn delta_since(&self, vv: &VersionVector) -> Self {
        let covers = |r: u32, seq: u64| vv.contains(&self.dot(Id { r, seq }));
        let mut spans = Vec::new();
        for s in self.spans() {
            // Cut the span where "needed" changes.
            let needed = |i: u32| {
                !covers(s.r, s.seq + u64::from(i)) || s.del.is_some_and(|d| !covers(d.r, d.at(i)))
            };
            let mut i = 0;
            while i < s.len {
                let want = needed(i);
                let mut j = i + 1;
                while j < s.len && needed(j) == want {
                    j += 1;
                }
                if want {
                    let mut part = *s;
                    if i > 0 {
                        part = part.split(i);
                    }
                    if j - i < part.len {
                        part.split(j - i);
                    }
                    spans.push(part);
                }
                i = j;
            }
        }
        let mut delta = Rga::from_spans(
            self.replicas.clone(),
            &self.cols,
            spans,
            self.context.minus(vv),
        );
        delta.deleted = crate::deletion::Deletion::delta_since(&self.deleted, vv);
        delta
    }

    fn covered_by(&self, vv: &VersionVector) -> bool {
        self.context.covered_by(vv)
    }

    fn value_json(&self) -> Value {
        Value::String(self.text())
    }
}

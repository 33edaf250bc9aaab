//! The gate of a text delta: what an honest replica could not send.

use super::*;

impl Rga {
    /// A character `delta` places after (or deletes) that neither this text
    /// nor `delta` has, if any. Merging such a delta would have to guess where
    /// its text goes, so callers refuse it (it comes from a replica that
    /// assumed this one knew more than it does).
    pub fn missing_reference(&self, delta: &Rga) -> Option<Dot> {
        let known = |id: Id| {
            delta.has(id.r, id.seq)
                || self
                    .index_of
                    .get(&delta.replicas[id.r as usize])
                    .is_some_and(|&r| self.has(r, id.seq))
        };
        for s in delta.spans() {
            if let Some(o) = s.origin
                && !known(o)
            {
                return Some(delta.dot(o));
            }
        }
        None
    }

    /// Why merging `delta` would give a text no honest replica has, if it
    /// would (merge itself never fails; callers refuse such a delta): a
    /// character this text holds with other content, a new character outside
    /// the delta's context or whose dot is already another event here, one
    /// placed after a later character, or a delete whose dot is unseen or is
    /// a character. Work: one look per character of `delta`.
    pub fn check_merge(&self, delta: &Rga) -> Result<(), String> {
        // Runs of new characters of replicas this text knows: (replica here,
        // first seq, last seq, first lamport), checked against the held
        // characters around them once all are known.
        let mut fresh: Vec<(u32, u64, u64, u64)> = Vec::new();
        for s in delta.spans() {
            let replica = &delta.replicas[s.r as usize];
            let mine = self.index_of.get(replica).copied();
            let col = &delta.cols[s.r as usize];
            for i in 0..s.len {
                let seq = s.seq + u64::from(i);
                let dot = Dot::new(replica.clone(), seq);
                let held = mine.is_some_and(|r| self.has(r, seq));
                if let (false, Some(r)) = (held, mine) {
                    match fresh.last_mut() {
                        Some(run) if run.0 == r && run.2 + 1 == seq && i > 0 => run.2 = seq,
                        _ => fresh.push((r, seq, seq, s.lamport + u64::from(i))),
                    }
                }
                if held {
                    let r = mine.expect("held");
                    let same_char = self.cols[r as usize].char_at(seq) == col.char_at(seq);
                    // Lamport and origin: once per run (the rest follow from it).
                    let same_place = i > 0 || {
                        let p = self.locate_id(Id { r, seq });
                        let span = &self.chunks[p.chunk].spans[p.span];
                        let lamport = span.lamport + u64::from(p.offset);
                        let origin = if p.offset == 0 {
                            span.origin.map(|o| self.dot(o))
                        } else {
                            Some(Dot::new(replica.clone(), seq - 1))
                        };
                        lamport == s.lamport && origin == s.origin.map(|o| delta.dot(o))
                    };
                    if !same_char || !same_place {
                        return Err(format!(
                            "character {dot} differs from the one held here: one event cannot be two characters"
                        ));
                    }
                } else {
                    if !delta.context.contains(&dot) {
                        return Err(format!(
                            "character {dot} is new here but outside the change's context"
                        ));
                    }
                    if self.context.contains(&dot) {
                        return Err(format!(
                            "character {dot} is new here, but {dot} is already another event here"
                        ));
                    }
                    if i == 0
                        && let Some(o) = s.origin
                        && !delta.has(o.r, o.seq)
                    {
                        let od = delta.dot(o);
                        if let Some(&or) = self.index_of.get(&od.replica)
                            && self.has(or, od.seq)
                        {
                            let p = self.locate_id(Id { r: or, seq: od.seq });
                            let ol =
                                self.chunks[p.chunk].spans[p.span].lamport + u64::from(p.offset);
                            if ol >= s.lamport {
                                return Err(format!(
                                    "character {dot} (lamport {}) follows {od} (lamport {ol}): it must come after what it follows",
                                    s.lamport
                                ));
                            }
                        }
                    }
                }
                if let Some(d) = s.del {
                    let del = delta.dot(Id {
                        r: d.r,
                        seq: d.at(i),
                    });
                    if !delta.context.contains(&del) && !self.context.contains(&del) {
                        return Err(format!("delete {del} of {dot} is an event nobody has seen"));
                    }
                    let is_char = |rga: &Rga| {
                        rga.index_of
                            .get(&del.replica)
                            .is_some_and(|&r| rga.has(r, del.seq))
                    };
                    if is_char(self) || is_char(delta) {
                        return Err(format!("delete {del} of {dot} is also a character"));
                    }
                }
            }
        }
        self.check_lamport_order(fresh)
    }

    /// A replica numbers its characters in the order it types them, each
    /// after everything it has seen: along its seqs, Lamport numbers only
    /// grow. New characters must fit between the held ones of their replica
    /// (the snapshot format cannot even write a text where they do not).
    /// Work: the slots between the runs, once (the runs are visited in seq
    /// order, and what was scanned is not scanned again).
    fn check_lamport_order(&self, mut fresh: Vec<(u32, u64, u64, u64)>) -> Result<(), String> {
        fresh.sort_unstable();
        let lamport_of = |r: u32, seq: u64| {
            let p = self.locate_id(Id { r, seq });
            self.chunks[p.chunk].spans[p.span].lamport + u64::from(p.offset)
        };
        // For the runs of one replica in seq order: the last run's first seq
        // (less 1) and the character below it; the character above the last
        // run (none lies between the two).
        let mut prev_memo: Option<(u32, u64, Option<u64>)> = None;
        let mut next_memo: Option<(u32, u64, Option<u64>)> = None;
        for &(r, first, last, lamport) in &fresh {
            let col = &self.cols[r as usize];
            let prev = match prev_memo {
                Some((mr, scanned, found)) if mr == r && scanned < first => {
                    col.prev_char(first, scanned).or(found)
                }
                _ => col.prev_char(first, 0),
            };
            prev_memo = Some((r, first.saturating_sub(1), prev));
            let next = match next_memo {
                // No character between the last run and the one found after it.
                Some((mr, found_at, found)) if mr == r && last < found_at => found,
                _ => col.next_char(last, u64::MAX),
            };
            next_memo = Some((r, next.unwrap_or(u64::MAX), next));
            let last_lamport = lamport + (last - first);
            let who = &self.replicas[r as usize];
            if let Some(p) = prev
                && lamport_of(r, p) >= lamport
            {
                return Err(format!(
                    "character {} (lamport {lamport}) comes after {} (lamport {}) in its replica's typing order but not in Lamport order",
                    Dot::new(who.clone(), first),
                    Dot::new(who.clone(), p),
                    lamport_of(r, p)
                ));
            }
            if let Some(n) = next
                && lamport_of(r, n) <= last_lamport
            {
                return Err(format!(
                    "character {} (lamport {last_lamport}) comes before {} (lamport {}) in its replica's typing order but not in Lamport order",
                    Dot::new(who.clone(), last),
                    Dot::new(who.clone(), n),
                    lamport_of(r, n)
                ));
            }
        }
        Ok(())
    }
}

impl Rga {
    /// Checks the text's internal invariants: the snapshot text written
    /// straight equals the encoded one, each chunk's cached lengths match
    /// its runs, the chunk index and the per-replica slots point where the
    /// characters are. For the tests and the reference model, after every
    /// operation; `Err` says which invariant broke.
    #[doc(hidden)]
    pub fn dbg_check(&self) -> Result<(), String> {
        let mut text = String::new();
        self.write_text(&mut text);
        let encoded = self.encode().to_string();
        if text != encoded {
            return Err("write_text differs from encode".into());
        }
        let mut visible = 0;
        for (i, c) in self.chunks.iter().enumerate() {
            if self.slot[c.id as usize] as usize != i {
                return Err(format!(
                    "chunk {i}: its slot says {}",
                    self.slot[c.id as usize]
                ));
            }
            if c.visible != c.spans.iter().map(Span::visible).sum::<usize>() {
                return Err(format!("chunk {i}: cached visible length is wrong"));
            }
            if c.chars != c.spans.iter().map(|s| s.len as usize).sum::<usize>() {
                return Err(format!("chunk {i}: cached length is wrong"));
            }
            for s in &c.spans {
                if s.len == 0 {
                    return Err(format!("chunk {i}: an empty run"));
                }
                for k in 0..s.len {
                    if self.cols[s.r as usize].chunk(s.seq + u64::from(k)) != c.id {
                        return Err(format!(
                            "chunk {i}: character {} of replica {} is indexed elsewhere",
                            s.seq + u64::from(k),
                            self.replicas[s.r as usize]
                        ));
                    }
                }
            }
            visible += c.visible;
        }
        if visible != self.visible {
            return Err(format!("visible length {} != {visible}", self.visible));
        }
        if self.text().chars().count() != self.visible {
            return Err("the text's length is not the visible length".into());
        }
        Ok(())
    }
}

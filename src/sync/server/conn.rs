//! A WebSocket connection: its frames in, the protocol run on them, and
//! what it is sent (acks, sync replies a part at a time, updates).

use super::*;

/// A socket that remembers a short read: the kernel had no more bytes then,
/// and (edge-triggered) a new readable event comes when more arrive, so the
/// next read can answer "would block" without a system call.
pub(super) struct Sock {
    pub(super) stream: TcpStream,
    pub(super) drained: bool,
    /// Bytes it may still read in this turn: a large message is read a
    /// turn at a time, so it does not hold up the other connections.
    pub(super) budget: usize,
    /// The budget ran out with bytes left: read again next turn (the socket
    /// will not signal them again).
    pub(super) paused: bool,
}

/// Bytes a connection reads per turn of the loop.
pub(super) const READ_BUDGET: usize = 1 << 20;

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

pub(super) struct Ws {
    pub(super) ws: WebSocket<Sock>,
    pub(super) session: Session,
    /// A large frame of it is with the worker: nothing more is read from
    /// it until that frame is answered (messages are handled in order).
    pub(super) busy: bool,
    /// The `Authorization` header it connected with (its grant is looked
    /// up again when the tokens are reloaded).
    pub(super) authorization: Option<String>,
    /// Messages of this round, sent once the round's changes are on disk.
    pub(super) outbox: Vec<String>,
    /// Sync replies being sent, a message at a time as the client reads
    /// them (in order: a second sync is answered after the first).
    pub(super) replies: VecDeque<Box<Reply>>,
    /// A watcher's update of this round so far: the changes of the round's
    /// pushes that it selects, merged (sent after the outbox).
    pub(super) update: Option<Store>,
    pub(super) last_heard: Instant,
    pub(super) pinged: bool,
    /// A close frame went out: wait for the answer (or the deadline).
    pub(super) closing: Option<(Instant, String)>,
    /// Reading frames failed while closing: discard raw bytes instead.
    pub(super) draining: bool,
    /// On this round's list of connections to send to.
    pub(super) dirty: bool,
}

pub(super) enum Io {
    Http(Http),
    Ws(Box<Ws>),
}

impl Turn<'_> {
    pub(super) fn event(
        &mut self,
        token: Token,
        readable: bool,
        conn: Conn,
        conns: &mut Conns,
    ) -> Conn {
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

    /// Reads every frame that arrived and runs the protocol on it.
    pub(super) fn frames(&mut self, token: Token, conn: &mut Conn, conns: &mut Conns) {
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
                Err(e) if crate::sync::is_timeout(&e) => return,
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
    pub(super) fn drain(&mut self, token: Token, ws: &mut Ws) {
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
                Err(e) if crate::sync::is_timeout(&e) => return,
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
    pub(super) fn frame(
        &mut self,
        token: Token,
        ws: &mut Ws,
        text: &str,
        started: Instant,
        conns: &mut Conns,
    ) {
        self.metrics.bytes_in += text.len() as u64;
        let decoded = protocol::decode_request(text, ws.session.replica.as_ref());
        self.apply(token, ws, decoded, started, conns);
    }

    /// A large frame the worker decoded: handled as if it had just arrived,
    /// then the connection's next frames are read.
    pub(super) fn decoded(
        &mut self,
        token: Token,
        conn: &mut Conn,
        decoded: Request,
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
    pub(super) fn apply(
        &mut self,
        token: Token,
        ws: &mut Ws,
        decoded: Request,
        started: Instant,
        conns: &mut Conns,
    ) {
        let (kind, effects) = match decoded {
            Request::Push { id, delta, line } => {
                self.metrics.message("push");
                match delta {
                    Ok(delta) => {
                        let push = Push {
                            delta,
                            line,
                            id,
                            started,
                        };
                        self.push(token, ws, push, conns)
                    }
                    Err(e) => ws.outbox.push(e.to_json(id.as_ref()).to_string()),
                }
                return;
            }
            Request::Sync { id, request } => {
                let effects = match request {
                    Ok(req) => protocol::handle_sync(&mut ws.session, id.as_ref(), req),
                    Err(e) => vec![Effect::Reply(e.to_json(id.as_ref()))],
                };
                ("sync", effects)
            }
            Request::Message(Ok(msg)) => {
                // Only the protocol's types become metric labels.
                let kind = msg
                    .get("type")
                    .and_then(Value::as_str)
                    .and_then(|t| protocol::MESSAGE_TYPES.into_iter().find(|k| *k == t))
                    .unwrap_or("invalid");
                (
                    kind,
                    protocol::handle_parsed(self.store, &mut ws.session, &msg),
                )
            }
            Request::Message(Err(err)) => {
                self.metrics.message("invalid");
                ws.outbox.push(err.to_json(None).to_string());
                return;
            }
        };
        self.metrics.message(kind);
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
                Effect::Log { id, ask } => {
                    let budget = ws.session.max_message_bytes;
                    ws.outbox.push(self.recent.reply(id.as_ref(), &ask, budget));
                }
                Effect::Persist { delta, id } => {
                    let line = String::new();
                    let push = Push {
                        delta,
                        line,
                        id,
                        started,
                    };
                    self.push(token, ws, push, conns);
                }
            }
        }
    }

    /// A push: checked, merged, acknowledged and forwarded to watchers (all
    /// of which leaves the server only after this round's fsync).
    pub(super) fn push(&mut self, token: Token, ws: &mut Ws, push: Push, conns: &mut Conns) {
        let Push {
            delta,
            line,
            id,
            started,
        } = push;
        // The gate: dots this connection may not introduce, a text delta
        // that refers to characters the server lacks, a change no honest
        // replica makes: refused before anything is written.
        let outcome = match protocol::handle_push(self.store, &ws.session, &delta, id.as_ref()) {
            Ok(outcome) => outcome,
            Err(err) => {
                if err.code == "forbidden" {
                    self.metrics.message("forbidden");
                }
                ws.outbox.push(err.to_json(id.as_ref()).to_string());
                return;
            }
        };
        for r in outcome.resolutions {
            self.metrics.conflict(r.ty.as_str(), r.kind);
        }
        ws.outbox.push(outcome.ack);
        self.forward(&delta, Some(token), conns);
        // The log line: the objects as sent, as the worker wrote it, or
        // the delta; with who sent it and when.
        let mut line = line;
        if line.is_empty() {
            encode_entry(&mut line, &Entry::Delta(&delta));
        }
        // The wall clock (not CRDT_NOW_MS, which costs an environment
        // lookup per push).
        let origin = ws.session.replica.as_ref().map(|from| (from, now_ms()));
        if let Some((from, now)) = origin {
            with_origin(&mut line, from, now);
        }
        self.round.log.push_str(&line);
        if self.link.is_some() {
            // The other nodes get the line as logged here, and the
            // round's pushes merged.
            self.round.publish.push_str(&line);
            self.round
                .publish_delta
                .get_or_insert_with(|| Store::new(self.store.replica().clone()))
                .merge(&delta);
        }
        if let Some((from, now)) = origin {
            if self.link.is_some() {
                use std::fmt::Write as _;
                let _ = writeln!(self.round.publish_pushes, "{from} {now}");
            }
            self.recent.record(now, from, &delta, line);
        }
        let types = self.changed(&delta);
        self.round.pending.push(Pending { types, started });
    }

    /// Sends what each watcher (but `except`) watches of `delta` with this round.
    pub(super) fn forward(&mut self, delta: &Store, except: Option<Token>, conns: &mut Conns) {
        for other in self.watchers.iter().filter(|w| Some(**w) != except) {
            let Some(Conn {
                io: Io::Ws(watcher),
                ..
            }) = conns.get_mut(other)
            else {
                continue;
            };
            if watcher.add_update(delta) {
                self.round.mark(*other, watcher);
            }
        }
    }

    /// Notes the objects of `delta` as changed (their sizes for `/metrics`
    /// are measured again); the types it holds (bit i: `CrdtType::ALL[i]`).
    pub(super) fn changed(&mut self, delta: &Store) -> u8 {
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
        types
    }
}

/// A push that decoded, on its way in.
pub(super) struct Push {
    pub(super) delta: Store,
    /// Its log line as the decoder wrote it (empty: encode the delta).
    pub(super) line: String,
    pub(super) id: Option<Value>,
    /// When its frame was read.
    pub(super) started: Instant,
}

impl Ws {
    /// Adds what this watcher watches of a push's `delta` to its update of
    /// the round; false when it watches none of it. The round's
    /// changes travel merged in one message: a watcher costs one message per
    /// round, not one per push, so watching does not slow the writers down.
    /// A text change that refers to characters the update so far lacks
    /// cannot be merged into it: that update goes first, and the change
    /// starts the next one.
    pub(super) fn add_update(&mut self, delta: &Store) -> bool {
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

/// Most sync replies a connection may have waiting: an honest client waits
/// for each reply; one that pipelines syncs without reading them would
/// otherwise grow the server's memory without bound.
pub(super) const MAX_QUEUED_REPLIES: usize = 64;

/// Queues a sync reply, or closes a connection that has too many waiting.
pub(super) fn queue_reply(ws: &mut Ws, reply: Box<Reply>) {
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
pub(super) fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
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
pub(super) const REPLY_BUDGET: usize = 4 << 20;

/// What [`flush`] left.
pub(super) enum Flushed {
    /// Everything out, or the socket is full (its writable event comes).
    Done,
    /// A reply has more to send and the socket takes more: next turn.
    More,
}

/// Queues one message on the socket; false when the connection is closing
/// or closed (what is left cannot be sent), an error when the client reads
/// too slowly (its buffer is full: `what` it was sent).
fn send(ws: &mut Ws, metrics: &mut Metrics, text: String, what: &str) -> Result<bool, String> {
    metrics.bytes_out += text.len() as u64;
    match ws.ws.write(Message::text(text)) {
        Ok(()) => Ok(true),
        Err(e) if crate::sync::is_timeout(&e) => Ok(true),
        Err(tungstenite::Error::WriteBufferFull(_)) => {
            Err(format!("too slow to read its {what}; disconnected"))
        }
        Err(_) => Ok(false),
    }
}

/// Sends the outbox and whatever a full socket held back, then the next
/// messages of its sync replies while the socket takes them: a reply is
/// made a message at a time, only when the one before it is out of the
/// server's buffers (flow control: the server holds at most a message of
/// a reply unsent, whatever the reply's size).
pub(super) fn flush(ws: &mut Ws, metrics: &mut Metrics, store: &Store) -> Result<Flushed, String> {
    if let Some(update) = ws.update.take() {
        let limit = ws.session.max_message_bytes;
        ws.outbox.extend(parts::update_messages(&update, limit));
    }
    let outbox = std::mem::take(&mut ws.outbox);
    for text in outbox {
        if !send(ws, metrics, text, "updates")? {
            return Ok(Flushed::Done);
        }
    }
    let mut given = 0;
    loop {
        match ws.ws.flush() {
            Ok(()) => {}
            Err(e) if crate::sync::is_timeout(&e) => return Ok(Flushed::Done),
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
                if !send(ws, metrics, text, "replies")? {
                    return Ok(Flushed::Done);
                }
            }
            None => {
                ws.replies.pop_front();
            }
        }
    }
}

/// Writes all of `bytes` to a non-blocking socket, or fails.
pub(super) fn write_now(stream: &mut TcpStream, mut bytes: &[u8]) -> io::Result<()> {
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

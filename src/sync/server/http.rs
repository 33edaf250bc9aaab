//! Plain HTTP on the server's port: `/healthz`, `/metrics`, and the
//! WebSocket upgrade of `/ws` (with its token check).

use super::*;

/// A connection before its WebSocket upgrade, or answering plain HTTP.
pub(super) struct Http {
    pub(super) stream: TcpStream,
    pub(super) since: Instant,
    /// A response being written; the connection ends once it is out.
    pub(super) out: Option<(Vec<u8>, usize)>,
}

impl Turn<'_> {
    /// Reads the request head (without consuming it) and answers it, or
    /// upgrades the connection to a WebSocket.
    pub(super) fn http(
        &mut self,
        token: Token,
        peer: SocketAddr,
        h: &mut Http,
    ) -> Option<Upgraded> {
        if h.out.is_some() {
            self.write_response(token, h);
            return None;
        }
        let head = self.read_head(token, h)?;
        self.route(token, peer, h, &head)
    }

    /// The request head, once it is whole: peeked, parsed, then consumed
    /// to its end and not beyond (frames may follow). None while it is
    /// incomplete, or when it was refused (answered with 400 or 431).
    fn read_head(&mut self, token: Token, h: &mut Http) -> Option<Head> {
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
        Some(head)
    }

    /// Answers a whole request: /healthz, /metrics, or the upgrade at /ws.
    fn route(
        &mut self,
        token: Token,
        peer: SocketAddr,
        h: &mut Http,
        head: &Head,
    ) -> Option<Upgraded> {
        let path = head.path.split('?').next().unwrap_or("");
        match (head.method.as_str(), path) {
            ("GET", "/healthz") => {
                // A node cut off from Redis still serves its clients: it says
                // so, and stays in the load balancer's rotation (200).
                let body = match self.link.and_then(Link::degraded) {
                    Some(why) => format!("degraded: {why}\n"),
                    None => "ok\n".to_string(),
                };
                self.respond(token, h, "200 OK", "text/plain", &body)
            }
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
                    let mut body = self.metrics.render(self.sizes, self.store.len());
                    if let Some(link) = self.link {
                        link.render(&mut body);
                    }
                    self.respond(token, h, "200 OK", "text/plain; version=0.0.4", &body)
                }
            }
            (_, "/ws") => return self.upgrade(token, peer, h, head),
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
    pub(super) fn unauthorized(
        &mut self,
        token: Token,
        peer: SocketAddr,
        h: &mut Http,
        presented: bool,
    ) {
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

    pub(super) fn upgrade(
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

    pub(super) fn respond(
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
    pub(super) fn write_response(&mut self, token: Token, h: &mut Http) {
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
}

/// The request line and headers of an HTTP request.
pub(super) struct Head {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    /// Bytes up to and including the blank line.
    pub(super) len: usize,
}

impl Head {
    /// `Ok(None)` until the blank line that ends the head has arrived; an
    /// error for a head that is not HTTP/1.x.
    pub(super) fn parse(buf: &[u8]) -> Result<Option<Head>, httparse::Error> {
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

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

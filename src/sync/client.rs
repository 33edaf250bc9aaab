//! The client side: connect to a sync endpoint, say hello, sync a replica's
//! objects, and receive updates.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::Value;
use thiserror::Error;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::clock::ReplicaId;
use crate::sync::parts::{self, Local};
use crate::sync::protocol::{self, ProtoError};

#[derive(Debug, Error)]
pub enum ClientError {
    /// The endpoint could not be reached: nothing was exchanged.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the endpoint refused the connection: {0}")]
    Refused(String),
    #[error("invalid sync URL {0:?}: use ws://HOST:PORT/ws or wss://HOST:PORT/ws")]
    BadUrl(String),
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtoError),
    #[error("connection lost: {0}")]
    Lost(String),
    /// The local replica could not be read or written.
    #[error("{0}")]
    Local(String),
}

/// An open, greeted connection.
pub struct Client {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    pub server_replica: String,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The server's message limit (from `welcome`): messages are split to fit.
    pub limit: usize,
    /// The length of the last message received.
    pub last_len: usize,
    next_id: u64,
}

/// What one sync exchanged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Objects that changed here.
    pub received: usize,
    /// Objects sent to the server.
    pub sent: usize,
    /// Why objects the server lacks could not be sent (a register larger
    /// than its message limit): the rest was synced.
    pub unsent: Vec<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A TCP connection to the URL's host (each of its addresses in turn,
/// each within `timeout`), with `timeout` on reads and writes.
fn open_tcp(uri: &tungstenite::http::Uri, timeout: Duration) -> Result<TcpStream, String> {
    let host = uri
        .host()
        .ok_or_else(|| "the URL has no host".to_string())?
        .trim_matches(['[', ']']);
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    let mut last = String::from("no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!(
                    "no connection within {:.1} s (--connect-timeout)",
                    timeout.as_secs_f64()
                );
            }
            Err(e) => last = e.to_string(),
        }
    }
    let stream = stream.ok_or(last)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).ok();
    Ok(stream)
}

impl Client {
    /// Connects within `timeout`, sends `hello` and waits for `welcome`.
    pub fn connect(
        url: &str,
        token: Option<&str>,
        timeout: Duration,
        me: &ReplicaId,
    ) -> Result<Client, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            url: url.to_string(),
            reason,
        };
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(ClientError::BadUrl(url.to_string()));
        }
        // wss:// uses rustls with ring; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut request = url
            .into_client_request()
            .map_err(|e| unreachable(format!("bad URL: {e}")))?;
        if let Some(t) = token {
            let value = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|e| unreachable(e.to_string()))?;
            request.headers_mut().insert("Authorization", value);
        }
        let stream = open_tcp(request.uri(), timeout).map_err(unreachable)?;
        // A server with a large --max-message-bytes may send a register
        // that large in one message: read what it may send.
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(1 << 30))
            .max_frame_size(Some(1 << 30));
        let (ws, _) = tungstenite::client_tls_with_config(request, stream, Some(config), None)
            .map_err(|e| match e {
                tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp)) => {
                    let body = resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).trim().to_string())
                        .unwrap_or_default();
                    ClientError::Refused(format!("HTTP {} {body}", resp.status()))
                }
                // The socket's timeout passed mid-handshake.
                tungstenite::HandshakeError::Interrupted(_) => unreachable(format!(
                    "no answer to the WebSocket handshake within {:.1} s (--connect-timeout)",
                    timeout.as_secs_f64()
                )),
                tungstenite::HandshakeError::Failure(e) if super::is_timeout(&e) => {
                    unreachable(format!(
                        "no answer to the WebSocket handshake within {:.1} s (--connect-timeout)",
                        timeout.as_secs_f64()
                    ))
                }
                other => unreachable(other.to_string()),
            })?;
        let mut client = Client {
            ws,
            server_replica: String::new(),
            bytes_sent: 0,
            bytes_received: 0,
            limit: protocol::DEFAULT_MAX_MESSAGE_BYTES,
            last_len: 0,
            next_id: 1,
        };
        client.send(&protocol::hello(me))?;
        let welcome = client
            .recv(timeout)?
            .ok_or_else(|| ClientError::Lost("no welcome".into()))?;
        protocol::expect_type(&welcome, "welcome")?;
        client.server_replica = welcome["replica"].as_str().unwrap_or("").to_string();
        if let Some(limit) = welcome["max_message_bytes"].as_u64() {
            client.limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1024);
        }
        Ok(client)
    }

    pub fn send(&mut self, msg: &Value) -> Result<(), ClientError> {
        self.send_text(msg.to_string())
    }

    fn send_text(&mut self, text: String) -> Result<(), ClientError> {
        self.bytes_sent += text.len() as u64;
        self.ws
            .send(Message::text(text))
            .map_err(|e| ClientError::Lost(e.to_string()))
    }

    /// The next JSON message, or `None` when `timeout` passes first.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Value>, ClientError> {
        match self.recv_text(timeout)? {
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| ClientError::Protocol(ProtoError::new("bad-json", e.to_string()))),
            None => Ok(None),
        }
    }

    /// [`Client::recv`] without parsing: the message's text.
    pub fn recv_text(&mut self, timeout: Duration) -> Result<Option<String>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
                let _ = s.set_read_timeout(Some(left.min(Duration::from_millis(250))));
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    self.bytes_received += t.len() as u64;
                    self.last_len = t.len();
                    return Ok(Some(t.as_str().to_string()));
                }
                Ok(Message::Close(frame)) => {
                    let why = frame.map_or("no reason".to_string(), |f| {
                        format!("{} {}", u16::from(f.code), f.reason)
                    });
                    return Err(ClientError::Lost(format!("closed by the server ({why})")));
                }
                Ok(_) => {}
                Err(e) if super::is_timeout(&e) => {}
                Err(e) => return Err(ClientError::Lost(e.to_string())),
            }
        }
    }

    /// The reply to the message with `id`; `update`s that arrive first are
    /// merged into `local` on the way.
    fn reply(
        &mut self,
        id: u64,
        local: &mut dyn Local,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let text = self.reply_text(id, local, timeout)?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Protocol(ProtoError::new("bad-json", e.to_string())))
    }

    /// [`Client::reply`] as text: a large reply's objects are decoded from
    /// it straight, without a tree of values.
    fn reply_text(
        &mut self,
        id: u64,
        local: &mut dyn Local,
        timeout: Duration,
    ) -> Result<String, ClientError> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            ty: Option<std::borrow::Cow<'a, str>>,
            id: Option<Value>,
            #[serde(borrow)]
            objects: Option<&'a serde_json::value::RawValue>,
        }
        loop {
            let text = self
                .recv_text(timeout)?
                .ok_or_else(|| ClientError::Lost("no reply in time".into()))?;
            let head: Head<'_> = serde_json::from_str(&text)
                .map_err(|e| ClientError::Protocol(ProtoError::new("bad-json", e.to_string())))?;
            match head.ty.as_deref() {
                Some("update") => {
                    let objects = head.objects.map_or("null", |r| r.get());
                    let delta = protocol::decode_objects_text(objects, &local.replica())
                        .map_err(ProtoError::from)?;
                    // An update this replica cannot place yet arrives again with the sync.
                    if local.merge_part(&delta, text.len()).is_ok() {
                        local.flush().map_err(ClientError::Local)?;
                    }
                }
                Some("error") => return Ok(text),
                _ if head.id.as_ref().and_then(Value::as_u64) == Some(id) => return Ok(text),
                _ => {}
            }
        }
    }

    /// Pulls what `local` lacks of the selected objects and pushes what the
    /// server lacks, until both have the same versions. It goes a range of
    /// names at a time, and each range's reply and pushes a part at a time
    /// (see [`parts`]): every part is merged (and, for the local database,
    /// written) as it arrives, so a sync cut off halfway keeps what arrived
    /// and the next one asks only for the rest. With `watch`, the server
    /// then sends `update`s for them (see [`Client::recv`]).
    pub fn sync(
        &mut self,
        local: &mut dyn Local,
        select: &[String],
        watch: bool,
        timeout: Duration,
    ) -> Result<SyncReport, ClientError> {
        let (sent0, recv0) = (self.bytes_sent, self.bytes_received);
        let budget = parts::part_budget(self.limit);
        // Objects changed here: the parts of one object come one after
        // another, so it counts once (without a set as large as the state).
        let mut received = 0;
        let mut last: Option<(String, crate::CrdtType)> = None;
        let mut sent = 0;
        let mut unsent = Vec::new();
        let mut after: Option<String> = None;
        let mut first = true;
        loop {
            let (versions, upto) = local
                .versions_after(select, after.as_deref(), budget)
                .map_err(ClientError::Local)?;
            let id = self.take_id();
            let range = (after.as_deref(), upto.as_deref());
            self.send(&protocol::sync_request(
                select,
                &versions,
                range,
                watch && first,
                id,
            ))?;
            let want = loop {
                let msg = self.reply_text(id, local, timeout)?;
                let (changed, more, want) = protocol::apply_reply_part(local, &msg)?;
                for key in changed {
                    if last.as_ref() != Some(&key) {
                        received += 1;
                        last = Some(key);
                    }
                }
                if !more {
                    break want;
                }
            };
            local.flush().map_err(ClientError::Local)?;
            if !want.is_empty() {
                let delta = local.deltas(&want).map_err(ClientError::Local)?;
                let (pushes, refused) =
                    protocol::push_messages(&delta, self.limit, self.next_id + 1);
                unsent.extend(refused.into_iter().map(|e| e.message));
                self.next_id += pushes.len() as u64;
                for (id, text, _) in pushes {
                    self.send_text(text)?;
                    let ack = self.reply(id, local, timeout)?;
                    protocol::expect_type(&ack, "ack")?;
                }
                sent += delta.len() - unsent.len().min(delta.len());
            }
            match upto {
                Some(u) => after = Some(u),
                None => break,
            }
            first = false;
        }
        Ok(SyncReport {
            received,
            sent,
            unsent,
            bytes_sent: self.bytes_sent - sent0,
            bytes_received: self.bytes_received - recv0,
        })
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

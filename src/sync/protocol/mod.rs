//! Protocol version 1 as pure functions: (state, message) -> (new state,
//! replies). The socket code only moves frames (see `docs/protocol.md`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::clock::{Causality, ReplicaId};
use crate::codec::{At, push_json_str, vv_json};
use crate::object::{CrdtType, Object};
use crate::objects_line::ObjectsError;
pub use crate::objects_line::{
    ObjectIn, decode_objects, decode_objects_in, decode_objects_text, objects_json, objects_line,
    push_object_head, push_objects, push_objects_in,
};
use crate::store::selected;
use crate::store::{Store, StoreVersion};
use crate::sync::auth::Grant;
use crate::sync::parts::{self, Local, Reply};
use crate::sync::persist::{Entry, encode_entry};

pub const PROTOCOL: u64 = 1;

/// The message types a client sends (the dispatcher's, and the metrics'
/// labels: any other type is counted as `invalid`).
pub const MESSAGE_TYPES: [&str; 5] = ["hello", "sync", "push", "unwatch", "log"];

/// The server's default `--max-message-bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

/// A protocol error: a code from `docs/protocol.md` and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtoError {
    pub code: &'static str,
    pub message: String,
}

impl ProtoError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ProtoError {
            code,
            message: message.into(),
        }
    }

    pub fn to_json(&self, id: Option<&Value>) -> Value {
        let mut v = json!({"type": "error", "code": self.code, "message": self.message});
        if let Some(id) = id {
            v["id"] = id.clone();
        }
        v
    }
}

impl From<ObjectsError> for ProtoError {
    fn from(e: ObjectsError) -> Self {
        match e {
            ObjectsError::Malformed(m) => ProtoError::new("bad-message", m),
            ObjectsError::BadState(m) => ProtoError::new("bad-state", m),
        }
    }
}

fn bad(message: impl Into<String>) -> ProtoError {
    ProtoError::new("bad-message", message)
}

/// `[{"name", "type", "version"}]` of the objects of `store` that `select` picks.
pub fn versions_json(store: &Store, select: &[String]) -> Value {
    Value::Array(
        store
            .iter()
            .filter(|(n, _)| selected(select, n))
            .map(|(n, o)| json!({"name": n, "type": o.ty().as_str(), "version": vv_json(&o.version())}))
            .collect(),
    )
}

pub fn decode_versions(v: Option<&Value>) -> Result<StoreVersion, ProtoError> {
    let v = v.ok_or_else(|| bad("\"versions\" must be a list"))?;
    let at = At {
        value: v,
        path: "versions".into(),
        delta: true,
        track: true,
    };
    crate::snapshot::versions_from(&at).map_err(|e| bad(e.to_string()))
}

fn decode_select(v: Option<&Value>) -> Result<Vec<String>, ProtoError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| {
                s.as_str()
                    .map(String::from)
                    .ok_or_else(|| bad("\"select\" must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(bad("\"select\" must be a list of strings")),
    }
}

/// One connection's state on the server.
#[derive(Debug, Clone)]
pub struct Session {
    /// Set by `hello`.
    pub replica: Option<ReplicaId>,
    /// What `update`s this connection receives (`None`: none).
    pub watching: Option<Vec<String>>,
    /// The replicas this connection's token may speak for.
    pub grant: Grant,
    /// The server's `--max-message-bytes` (told to the client in `welcome`,
    /// so it can size its messages; replies are split to fit it).
    pub max_message_bytes: usize,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            replica: None,
            watching: None,
            grant: Grant::Any,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// The gate of a push: the connection may introduce the dots it brings
/// (`forbidden` otherwise), and merging them gives a state an honest
/// replica could have (`bad-state` otherwise). Nothing is merged or
/// written when either fails.
pub fn check_push(server: &Store, session: &Session, delta: &Store) -> Result<(), ProtoError> {
    if session.grant != Grant::Any {
        for r in server.new_replicas(delta) {
            if !session.grant.allows(&r) {
                return Err(ProtoError::new(
                    "forbidden",
                    format!(
                        "this token may introduce changes of {} only, not of replica {r}",
                        session.grant.describe()
                    ),
                ));
            }
        }
    }
    server
        .check_mergeable(delta)
        .map_err(|why| ProtoError::new("bad-state", why.to_string()))
}

/// A client frame, decoded once (by the server's loop, or its worker for a
/// large frame): what the protocol then acts on.
pub enum Request {
    /// A push from a greeted connection: its delta (or why not) and, when
    /// it decoded, its log line (newline included).
    Push {
        id: Option<Value>,
        delta: Result<Store, ProtoError>,
        line: String,
    },
    /// A `sync`: its id and fields (or why they do not decode).
    Sync {
        id: Option<Value>,
        request: Result<SyncRequest, ProtoError>,
    },
    /// Any other message: the parsed JSON, or a `bad-json` error.
    Message(Result<Value, ProtoError>),
}

/// The top level of a message, its values left as JSON text.
#[derive(serde::Deserialize)]
struct PushFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    /// Read in the same pass (a list of another shape fails the whole
    /// frame, which then takes the value path and its precise errors).
    #[serde(borrow)]
    objects: Option<Vec<ObjectIn<'a>>>,
}

/// A push read at its top level: its id and its objects decoded.
fn decode_push(
    top: &PushFrame<'_>,
    from: &ReplicaId,
) -> (Option<Value>, Result<Store, ProtoError>) {
    let id = top
        .id
        .and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
    let delta = match &top.objects {
        Some(list) => decode_objects_in(list, from),
        None => decode_objects(None, from),
    };
    (id, delta.map_err(ProtoError::from))
}

/// Decodes a frame: what [`Request`] says. A push, the message that comes
/// by the thousand, is read at its top level only: its objects are parsed
/// once, and its log line is the objects as sent. Pure.
pub fn decode_request(text: &str, replica: Option<&ReplicaId>) -> Request {
    if let Some(from) = replica
        && let Ok(top) = serde_json::from_str::<PushFrame<'_>>(text)
        && top.ty == "push"
    {
        let (id, delta) = decode_push(&top, from);
        let mut line = String::new();
        if let (Ok(d), Some(objects)) = (&delta, top.objects.as_deref()) {
            encode_entry(&mut line, &Entry::Sent { objects, delta: d });
        } else if let Ok(d) = &delta {
            encode_entry(&mut line, &Entry::Delta(d));
        }
        return Request::Push { id, delta, line };
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if replica.is_some() && v.get("type").and_then(Value::as_str) == Some("sync") => {
            Request::Sync {
                id: v.get("id").cloned(),
                request: decode_sync(&v),
            }
        }
        Ok(v) => Request::Message(Ok(v)),
        Err(e) => Request::Message(Err(ProtoError::new("bad-json", e.to_string()))),
    }
}

/// A push the server accepted: the ack to send once it is on disk, and
/// the conflicts it resolved.
pub struct PushOutcome {
    pub ack: String,
    pub resolutions: Vec<Resolution>,
}

/// A push, whole: the gate ([`check_push`]), then the merge
/// ([`commit_push`]). The one place the rules of a push live; the server
/// adds only the log, the metrics and the fan-out to watchers.
pub fn handle_push(
    server: &mut Store,
    session: &Session,
    delta: &Store,
    id: Option<&Value>,
) -> Result<PushOutcome, ProtoError> {
    check_push(server, session, delta)?;
    let (ack, resolutions) = commit_push(server, delta, id);
    Ok(PushOutcome { ack, resolutions })
}

/// What the socket layer must do after a message.
#[derive(Debug)]
pub enum Effect {
    /// Send this message to the client.
    Reply(Value),
    /// Send this reply, a message at a time as the client reads them.
    Stream(Box<Reply>),
    /// A push to accept: the server runs [`handle_push`] on it at once
    /// (later frames see it), logs it, and sends the ack (with `id`) only
    /// once the round's log is on disk.
    Persist { delta: Store, id: Option<Value> },
    /// Close the connection with this close code after the replies.
    Close(u16),
    /// Answer with the server's recent pushes (see [`crate::sync::recent`]):
    /// those `ask` picks.
    Log {
        id: Option<Value>,
        ask: crate::sync::recent::LogAsk,
    },
}

/// Handles one text frame from a client. Never panics on bad input: errors
/// become `error` replies.
pub fn handle(server: &Store, session: &mut Session, frame: &str) -> Vec<Effect> {
    match serde_json::from_str(frame) {
        Ok(msg) => handle_parsed(server, session, &msg),
        Err(e) => vec![Effect::Reply(
            ProtoError::new("bad-json", e.to_string()).to_json(None),
        )],
    }
}

/// [`handle`] for a frame already parsed as JSON.
pub fn handle_parsed(server: &Store, session: &mut Session, msg: &Value) -> Vec<Effect> {
    let id = msg.get("id").cloned();
    match handle_value(server, session, msg) {
        Ok(effects) => effects,
        Err(e) => {
            let mut out = vec![Effect::Reply(e.to_json(id.as_ref()))];
            if e.code == "unsupported-protocol" {
                out.push(Effect::Close(1002));
            }
            out
        }
    }
}

/// A `push` of `objects` from replica `from`: the delta to persist, or the
/// error to reply.
pub fn push_effect(from: &ReplicaId, id: Option<&Value>, objects: Option<&Value>) -> Effect {
    push_effect_of(id, decode_objects(objects, from).map_err(ProtoError::from))
}

/// The effect of a push whose objects were decoded into `delta`.
pub fn push_effect_of(id: Option<&Value>, delta: Result<Store, ProtoError>) -> Effect {
    match delta {
        Ok(delta) => Effect::Persist {
            delta,
            id: id.cloned(),
        },
        Err(e) => Effect::Reply(e.to_json(id)),
    }
}

fn with_id(mut v: Value, id: Option<&Value>) -> Value {
    if let Some(id) = id {
        v["id"] = id.clone();
    }
    v
}

/// `hello`: once per connection, a replica id this token may act as, our protocol.
fn answer_hello(
    server: &Store,
    session: &mut Session,
    msg: &Value,
    id: Option<&Value>,
) -> Result<Vec<Effect>, ProtoError> {
    if let Some(r) = &session.replica {
        return Err(bad(format!(
            "hello was already sent: this connection is replica {r} (open another connection for another replica)"
        )));
    }
    let replica = msg["replica"]
        .as_str()
        .and_then(|r| ReplicaId::new(r).ok())
        .ok_or_else(|| bad("hello needs a valid \"replica\" id"))?;
    match msg["protocol"].as_u64() {
        Some(PROTOCOL) => {}
        other => {
            return Err(ProtoError::new(
                "unsupported-protocol",
                format!(
                    "this server speaks protocol {PROTOCOL}, not {}",
                    other.map_or("?".into(), |p| p.to_string())
                ),
            ));
        }
    }
    if !session.grant.allows(&replica) {
        return Err(ProtoError::new(
            "forbidden",
            format!(
                "this token may act as {}, not as replica {replica}",
                session.grant.describe()
            ),
        ));
    }
    session.replica = Some(replica);
    Ok(vec![Effect::Reply(with_id(
        json!({"type": "welcome", "replica": server.replica().as_str(), "protocol": PROTOCOL,
               "max_message_bytes": session.max_message_bytes}),
        id,
    ))])
}

/// A `log` request's fields: the selection, a limit, a replica, a time range.
fn decode_log(msg: &Value) -> Result<crate::sync::recent::LogAsk, ProtoError> {
    let select = decode_select(msg.get("select"))?;
    let limit = match msg.get("limit") {
        None => 100,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=crate::sync::recent::MAX_LOG_LIMIT as u64).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "\"limit\" must be a whole number from 1 to {}",
                    crate::sync::recent::MAX_LOG_LIMIT
                ))
            })? as usize,
    };
    let replica = match msg.get("replica") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|r| ReplicaId::new(r).ok())
                .ok_or_else(|| bad("\"replica\" must be a replica id"))?,
        ),
    };
    let time = |key: &str| -> Result<Option<u64>, ProtoError> {
        msg.get(key)
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| bad(format!("\"{key}\" must be milliseconds since the epoch")))
            })
            .transpose()
    };
    Ok(crate::sync::recent::LogAsk {
        select,
        limit,
        replica,
        since: time("since")?,
        until: time("until")?,
    })
}

fn handle_value(
    server: &Store,
    session: &mut Session,
    msg: &Value,
) -> Result<Vec<Effect>, ProtoError> {
    let id = msg.get("id");
    let ty = msg
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a message needs a string \"type\""))?;
    if ty != "hello" && session.replica.is_none() {
        return Err(ProtoError::new(
            "hello-first",
            format!("send hello before {ty}"),
        ));
    }
    match ty {
        "hello" => answer_hello(server, session, msg, id),
        "sync" => Ok(handle_sync(session, id, decode_sync(msg)?)),
        "push" => {
            let from = session.replica.as_ref().expect("checked above");
            Ok(vec![push_effect(from, id, msg.get("objects"))])
        }
        "log" => Ok(vec![Effect::Log {
            id: id.cloned(),
            ask: decode_log(msg)?,
        }]),
        "unwatch" => {
            session.watching = None;
            Ok(vec![Effect::Reply(with_id(
                json!({"type": "ack", "versions": []}),
                id,
            ))])
        }
        other => Err(bad(format!("unknown message type {other:?}"))),
    }
}

/// The fields of a `sync`, decoded (the server decodes a large one off its
/// event loop, then answers it with [`handle_sync`]).
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub select: Vec<String>,
    pub versions: StoreVersion,
    pub watch: bool,
    /// The range of names this request covers: after `after` (exclusive),
    /// up to `upto` (inclusive); `None`: unbounded.
    pub after: Option<String>,
    pub upto: Option<String>,
}

pub fn decode_sync(msg: &Value) -> Result<SyncRequest, ProtoError> {
    let select = decode_select(msg.get("select"))?;
    let versions = decode_versions(msg.get("versions"))?;
    let watch = match msg.get("watch") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("\"watch\" must be true or false")),
    };
    let bound = |field: &str| match msg.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("\"{field}\" must be a name or null"))),
    };
    Ok(SyncRequest {
        select,
        versions,
        watch,
        after: bound("after")?,
        upto: bound("upto")?,
    })
}

/// Answers a decoded `sync` of a greeted connection.
pub fn handle_sync(session: &mut Session, id: Option<&Value>, req: SyncRequest) -> Vec<Effect> {
    // A watching sync replaces what the connection watches.
    if req.watch {
        session.watching = Some(req.select.clone());
    }
    vec![Effect::Stream(Box::new(Reply::new(
        id.cloned(),
        &req,
        session.max_message_bytes,
    )))]
}

/// How a merge on the server resolved concurrent changes, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub ty: CrdtType,
    pub kind: &'static str,
}

/// Merges a push into the server's store. Returns the `ack` text (sent once
/// the push is on disk) and the conflicts it resolved (objects whose
/// versions were concurrent). The ack is written directly as text: this runs
/// for every push.
pub fn commit_push(
    server: &mut Store,
    delta: &Store,
    id: Option<&Value>,
) -> (String, Vec<Resolution>) {
    let mut resolutions = Vec::new();
    let mut ack = String::with_capacity(128);
    if let Some(id) = id {
        ack.push_str("{\"id\":");
        ack.push_str(&id.to_string());
        ack.push_str(",\"type\":\"ack\",\"versions\":[");
    } else {
        ack.push_str("{\"type\":\"ack\",\"versions\":[");
    }
    for (i, (name, o)) in delta.iter_shared().enumerate() {
        // Counters never conflict (increments commute). Registers resolve a
        // conflict when concurrent writes meet; sets and text when changes
        // made without seeing each other merge. Cheap checks only.
        let kind = match o.ty() {
            CrdtType::GCounter | CrdtType::PnCounter | CrdtType::BoundedCounter => None,
            CrdtType::LwwRegister => Some("last-writer-wins"),
            CrdtType::OrSet => Some("add-wins"),
            CrdtType::Rga => Some("rga-order"),
            CrdtType::Map => Some("last-writer-wins"),
        };
        let concurrent = kind.is_some()
            && !matches!(**o, Object::LwwRegister(_))
            && server
                .get(name, o.ty())
                .is_some_and(|mine| mine.version().compare(&o.version()) == Causality::Concurrent);
        // A new object is taken as it came (a pointer, not a copy).
        server.merge_shared(name, o);
        let lww_conflict = matches!(server.get(name, o.ty()), Some(Object::LwwRegister(r)) if r.writes().nth(1).is_some());
        if let Some(kind) = kind
            && (concurrent || lww_conflict)
        {
            resolutions.push(Resolution { ty: o.ty(), kind });
        }
        // What was accepted: the pushed delta's version (the whole object's
        // version could be as large as the number of replicas).
        if i > 0 {
            ack.push(',');
        }
        push_object_head(&mut ack, name, o.ty());
        ack.push_str("\"version\":{");
        for (j, (r, seq)) in o.version().iter().enumerate() {
            if j > 0 {
                ack.push(',');
            }
            push_json_str(&mut ack, r.as_str());
            ack.push(':');
            ack.push_str(&seq.to_string());
        }
        ack.push_str("}}");
    }
    ack.push_str("]}");
    (ack, resolutions)
}

/// The `update` that carries `objects` to a watcher.
pub fn update(objects: &Store) -> Value {
    json!({"type": "update", "objects": objects_json(objects)})
}

/// [`update`] written straight as text (a watcher gets one every round).
pub fn update_text(objects: &Store) -> String {
    let mut out = String::from("{\"type\":\"update\",\"objects\":");
    push_objects(&mut out, objects);
    out.push('}');
    out
}

// ----------------------------------------------------------- client side

/// The `hello` a client sends first.
pub fn hello(replica: &ReplicaId) -> Value {
    json!({"type": "hello", "replica": replica.as_str(), "protocol": PROTOCOL})
}

/// The `sync` a client sends: its `versions` of the selected objects in
/// the range of names after `after`, up to `upto` (see [`parts::Local`]).
pub fn sync_request(
    select: &[String],
    versions: &StoreVersion,
    range: (Option<&str>, Option<&str>),
    watch: bool,
    id: u64,
) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|((n, t), vv)| json!({"name": n, "type": t.as_str(), "version": vv_json(vv)}))
        .collect();
    let mut msg =
        json!({"type": "sync", "id": id, "select": select, "versions": versions, "watch": watch});
    if let Some(a) = range.0 {
        msg["after"] = json!(a);
    }
    if let Some(u) = range.1 {
        msg["upto"] = json!(u);
    }
    msg
}

/// One message of a `sync-reply` (its text), merged into `local`: the
/// objects that changed here, whether more messages of the reply follow,
/// and (in the last) the server's versions of what it wants.
pub type ReplyPart = (Vec<(String, CrdtType)>, bool, StoreVersion);

pub fn apply_reply_part(local: &mut dyn Local, text: &str) -> Result<ReplyPart, ProtoError> {
    #[derive(Deserialize)]
    struct Part<'a> {
        #[serde(rename = "type", borrow)]
        ty: Option<Cow<'a, str>>,
        #[serde(borrow)]
        objects: Option<&'a RawValue>,
        want: Option<Value>,
        more: Option<Value>,
    }
    let part: Part<'_> =
        serde_json::from_str(text).map_err(|e| ProtoError::new("bad-json", e.to_string()))?;
    if part.ty.as_deref() != Some("sync-reply") {
        let v: Value =
            serde_json::from_str(text).map_err(|e| ProtoError::new("bad-json", e.to_string()))?;
        expect_type(&v, "sync-reply")?;
    }
    let server = ReplicaId::new("server").expect("valid");
    let objects = part.objects.map_or("null", |r| r.get());
    let incoming = decode_objects_text(objects, &server)?;
    let changed = if incoming.is_empty() {
        Vec::new()
    } else {
        local
            .merge_part(&incoming, text.len())
            .map_err(|e| ProtoError::new("bad-state", e))?
    };
    let more = match part.more {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(bad("\"more\" must be true or false")),
    };
    let want = match part.want {
        None | Some(Value::Null) if more => StoreVersion::new(),
        w => decode_versions(w.as_ref())?,
    };
    Ok((changed, more, want))
}

/// The `push` messages that carry `delta` under a server's message limit,
/// numbered from `first_id`: `(id, text, objects)`; and the objects that
/// cannot be sent at all (`too-big`: a register larger than the limit),
/// which are left out so the rest still goes.
pub type Pushes = (Vec<(u64, String, usize)>, Vec<ProtoError>);

pub fn push_messages(delta: &Store, limit: usize, first_id: u64) -> Pushes {
    let budget = parts::part_budget(limit);
    let mut all = Vec::new();
    let mut refused = Vec::new();
    for (name, o) in delta.iter() {
        match parts::entries(name, o, budget, limit) {
            Ok(list) => all.extend(list),
            Err(e) => refused.push(e),
        }
    }
    let messages = parts::pack(all, budget)
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            let id = first_id + i as u64;
            let text = parts::message(
                &format!("{{\"type\":\"push\",\"id\":{id},\"objects\":["),
                &group,
                "]}",
            );
            (id, text, group.len())
        })
        .collect();
    (messages, refused)
}

/// What a sync exchanged: messages and their bytes, both ways.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exchanged {
    pub messages: usize,
    pub bytes: usize,
}

/// A whole client sync of `client` against a server's store, without
/// sockets: what [`crate::sync::client::Client::sync`] and the server do
/// over a connection, with the server's message limit `limit` (tests and
/// embedders use it; every message is checked against the limit).
pub fn sync_in_memory(
    server: &mut Store,
    client: &mut Store,
    select: &[String],
    limit: usize,
) -> Result<Exchanged, ProtoError> {
    let mut session = Session {
        max_message_bytes: limit,
        ..Session::default()
    };
    let mut ex = Exchanged::default();
    let count = |ex: &mut Exchanged, text: &str| -> Result<(), ProtoError> {
        ex.messages += 1;
        ex.bytes += text.len();
        if text.len() > limit {
            return Err(ProtoError::new(
                "too-big",
                format!(
                    "a message of {} bytes, over the limit of {limit}",
                    text.len()
                ),
            ));
        }
        Ok(())
    };
    handle(server, &mut session, &hello(client.replica()).to_string());
    let budget = parts::part_budget(limit);
    let mut after: Option<String> = None;
    let mut next_id = 1;
    loop {
        let (versions, upto) = Local::versions_after(client, select, after.as_deref(), budget)
            .map_err(|e| ProtoError::new("bad-state", e))?;
        let req = sync_request(
            select,
            &versions,
            (after.as_deref(), upto.as_deref()),
            false,
            next_id,
        )
        .to_string();
        next_id += 1;
        count(&mut ex, &req)?;
        let mut want = StoreVersion::new();
        for effect in handle(server, &mut session, &req) {
            let mut reply = match effect {
                Effect::Stream(r) => r,
                Effect::Reply(v) => return Err(ProtoError::new("server-error", v.to_string())),
                _ => continue,
            };
            while let Some(text) = reply.next_message(server) {
                count(&mut ex, &text)?;
                let (_, _, w) = apply_reply_part(client, &text)?;
                want.extend(w);
            }
        }
        if !want.is_empty() {
            let delta =
                Local::deltas(client, &want).map_err(|e| ProtoError::new("bad-state", e))?;
            let (pushes, refused) = push_messages(&delta, limit, next_id);
            if let Some(e) = refused.into_iter().next() {
                return Err(e);
            }
            for (_, text, _) in pushes {
                next_id += 1;
                count(&mut ex, &text)?;
                for effect in handle(server, &mut session, &text) {
                    match effect {
                        Effect::Persist { delta, id } => {
                            handle_push(server, &session, &delta, id.as_ref())?;
                        }
                        Effect::Reply(v) => {
                            return Err(ProtoError::new("server-error", v.to_string()));
                        }
                        _ => {}
                    }
                }
            }
        }
        match upto {
            Some(u) => after = Some(u),
            None => return Ok(ex),
        }
    }
}

/// Checks a reply's type; an `error` reply becomes a [`ProtoError`].
pub fn expect_type(reply: &Value, ty: &str) -> Result<(), ProtoError> {
    match reply["type"].as_str() {
        Some(t) if t == ty => Ok(()),
        Some("error") => Err(ProtoError::new(
            "server-error",
            format!(
                "{}: {}",
                reply["code"].as_str().unwrap_or("?"),
                reply["message"].as_str().unwrap_or("")
            ),
        )),
        _ => Err(bad(format!("expected {ty}, got {reply}"))),
    }
}

#[cfg(test)]
mod tests;

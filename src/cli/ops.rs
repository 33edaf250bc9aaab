//! Change commands, shared by the command line and `batch`.

use anyhow::{Result, anyhow, bail};
use crdt::store::validate_name;
use crdt::{CrdtType, Object, Store};
use serde_json::Value;

use super::args::{Command, CounterType, TypeArg};

/// Wall-clock milliseconds for register timestamps. `CRDT_NOW_MS` fixes the
/// clock, for reproducible examples and tests (the hybrid logical clock still
/// moves forward on every write).
pub fn now_ms() -> u64 {
    if let Some(ms) = std::env::var("CRDT_NOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return ms;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl From<TypeArg> for CrdtType {
    fn from(t: TypeArg) -> CrdtType {
        match t {
            TypeArg::GCounter => CrdtType::GCounter,
            TypeArg::PnCounter => CrdtType::PnCounter,
            TypeArg::LwwRegister => CrdtType::LwwRegister,
            TypeArg::OrSet => CrdtType::OrSet,
            TypeArg::Rga => CrdtType::Rga,
        }
    }
}

/// VALUE and ELEM arguments: JSON when they parse as JSON, else strings.
/// Text that starts like a JSON object, array or string but does not parse
/// is an error (a typo would otherwise be stored as a string, silently).
pub fn parse_value(text: &str, force_string: bool) -> anyhow::Result<Value> {
    if force_string {
        return Ok(Value::String(text.to_string()));
    }
    match serde_json::from_str(text) {
        Ok(v) if crdt::value_depth(&v, crdt::MAX_DEPTH) > crdt::MAX_DEPTH => bail!(
            "the value nests deeper than {} levels (arrays and objects inside each other); a replica stores at most that",
            crdt::MAX_DEPTH
        ),
        Ok(v) => Ok(v),
        Err(e) if text.trim_start().starts_with(['{', '[', '"']) => {
            bail!("{text:?} is not valid JSON: {e}; pass --string to store it as text")
        }
        Err(_) => Ok(Value::String(text.to_string())),
    }
}

fn article(t: CrdtType) -> &'static str {
    match t {
        // "an rga": said letter by letter.
        CrdtType::OrSet | CrdtType::LwwRegister | CrdtType::Rga => "an",
        _ => "a",
    }
}

/// Which object of `name` a command acts on. `accepts` lists the types the
/// command works with (first = the one it creates); `explicit` is a --type.
fn resolve(
    store: &Store,
    name: &str,
    verb: &str,
    accepts: &[CrdtType],
    explicit: Option<CrdtType>,
) -> Result<CrdtType> {
    let existing: Vec<CrdtType> = store.objects(name).iter().map(|o| o.ty()).collect();
    if existing.is_empty() {
        // Names already in the store were checked when they were created.
        validate_name(name)?;
        return Ok(explicit.unwrap_or(accepts[0]));
    }
    if let Some(t) = explicit {
        if existing.contains(&t) {
            return Ok(t);
        }
        bail!(
            "{name} is {} {}, not {} {t}: a name keeps its type (pick another name for a {t})",
            article(existing[0]),
            existing[0],
            article(t)
        );
    }
    if let Some(t) = existing.iter().find(|t| accepts.contains(t)) {
        return Ok(*t);
    }
    let have = existing[0];
    let want = accepts[0];
    let hint = match (verb, have) {
        ("dec", CrdtType::GCounter) => {
            ("a g-counter only grows; for a counter that goes down, use a new name created \
             with `crdt new NAME --type pn-counter` (or `crdt inc --type pn-counter NAME`)")
                .to_string()
        }
        _ => format!(
            "{verb} works on {} {want}; see what {name} holds with `crdt show {name}`, \
             or use another name",
            article(want)
        ),
    };
    Err(anyhow!(
        "`{verb}` needs {} {want}, but {name} is {} {have}\n  hint: {hint}",
        article(want),
        article(have)
    ))
}

/// Applies one change command. Returns the name and the type of the object
/// it changed. On error the store is as it was.
pub fn apply(store: &mut Store, cmd: &Command, now: u64) -> Result<(String, CrdtType)> {
    let name = command_name(cmd);
    let existed = name.map(|n| store.objects(n).len());
    let result = apply_inner(store, cmd, now);
    if result.is_err()
        && let Some(n) = name
        && Some(store.objects(n).len()) != existed
    {
        // The failing command created an empty object first: take it back.
        store.remove_empty(n);
    }
    result
}

pub fn command_name(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Inc { name, .. }
        | Command::Dec { name, .. }
        | Command::Set { name, .. }
        | Command::Add { name, .. }
        | Command::Rm { name, .. }
        | Command::Insert { name, .. }
        | Command::Delete { name, .. }
        | Command::Append { name, .. }
        | Command::New { name, .. } => Some(name),
        _ => None,
    }
}

fn apply_inner(store: &mut Store, cmd: &Command, now: u64) -> Result<(String, CrdtType)> {
    let me = store.replica().clone();
    let (name, ty) = match cmd {
        Command::Inc { name, amount, ty } => {
            let explicit = ty.map(|t| match t {
                CounterType::GCounter => CrdtType::GCounter,
                CounterType::PnCounter => CrdtType::PnCounter,
            });
            let accepts = [CrdtType::GCounter, CrdtType::PnCounter];
            let t = resolve(store, name, "inc", &accepts, explicit)?;
            match store.get_or_create(name, t) {
                Object::GCounter(c) => c.inc(&me, *amount)?,
                Object::PnCounter(c) => c.inc(&me, *amount)?,
                _ => unreachable!("resolved to a counter"),
            }
            (name, t)
        }
        Command::Dec { name, amount } => {
            let t = resolve(store, name, "dec", &[CrdtType::PnCounter], None)?;
            if let Object::PnCounter(c) = store.get_or_create(name, t) {
                c.dec(&me, *amount)?;
            }
            (name, t)
        }
        Command::Set {
            name,
            value,
            string,
        } => {
            let t = resolve(store, name, "set", &[CrdtType::LwwRegister], None)?;
            if let Object::LwwRegister(r) = store.get_or_create(name, t) {
                r.set(&me, parse_value(value, *string)?, now)?;
            }
            (name, t)
        }
        Command::Add {
            name,
            elems,
            string,
        } => {
            let t = resolve(store, name, "add", &[CrdtType::OrSet], None)?;
            if let Object::OrSet(s) = store.get_or_create(name, t) {
                for e in elems {
                    s.add(&me, parse_value(e, *string)?)?;
                }
            }
            (name, t)
        }
        Command::Rm {
            name,
            elems,
            string,
        } => {
            let t = resolve(store, name, "rm", &[CrdtType::OrSet], None)?;
            if store.get(name, t).is_none() {
                bail!("no object named {name} (see `crdt ls`)");
            }
            if let Some(Object::OrSet(s)) = store.get_mut(name, t) {
                for e in elems {
                    s.remove(&me, &parse_value(e, *string)?)?;
                }
            }
            (name, t)
        }
        Command::Insert { name, pos, text } => {
            let t = resolve(store, name, "insert", &[CrdtType::Rga], None)?;
            if let Object::Rga(r) = store.get_or_create(name, t) {
                r.insert(&me, *pos, text)?;
            }
            (name, t)
        }
        Command::Append { name, text } => {
            let t = resolve(store, name, "append", &[CrdtType::Rga], None)?;
            if let Object::Rga(r) = store.get_or_create(name, t) {
                r.append(&me, text)?;
            }
            (name, t)
        }
        Command::Delete { name, pos, len } => {
            let t = resolve(store, name, "delete", &[CrdtType::Rga], None)?;
            if store.get(name, t).is_none() {
                bail!("no object named {name} (see `crdt ls`)");
            }
            if let Some(Object::Rga(r)) = store.get_mut(name, t) {
                r.delete(&me, *pos, *len)?;
            }
            (name, t)
        }
        Command::New { name, ty } => {
            let t = CrdtType::from(*ty);
            validate_name(name)?;
            if let Some(o) = store.objects(name).first() {
                bail!(
                    "{name} already exists (it is {} {})",
                    article(o.ty()),
                    o.ty()
                );
            }
            store.get_or_create(name, t);
            (name, t)
        }
        other => bail!("{other:?} is not a change command"),
    };
    Ok((name.clone(), ty))
}

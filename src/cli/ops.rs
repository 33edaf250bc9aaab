//! Change commands, shared by the command line and `batch`.

use anyhow::{Result, anyhow, bail};
use crdt::store::validate_name;
use crdt::{Crdt, CrdtType, Object, Store};
use serde_json::Value;

use super::args::{Command, CounterType, TypeArg};

/// Wall-clock milliseconds for register timestamps. `CRDT_NOW_MS` fixes the
/// clock, for reproducible examples and tests (the hybrid logical clock still
/// moves forward on every write).
pub fn now_ms() -> u64 {
    crdt::clock::now_ms()
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

pub(super) fn article(t: CrdtType) -> &'static str {
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
/// it changed, and the change as a delta in the snapshot format's text
/// (what the history records). On error the store is as it was.
pub fn apply(store: &mut Store, cmd: &Command, now: u64) -> Result<(String, CrdtType, String)> {
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

/// The delta of a change to a counter or a register: what it has beyond
/// the version it had before (small: a counter entry, a register's writes).
fn delta_after(o: &mut Object, f: impl FnOnce(&mut Object) -> Result<()>) -> Result<Object> {
    let before = o.version();
    f(o)?;
    Ok(o.delta_since(&before))
}

fn text_of(o: &Object) -> String {
    let mut t = String::new();
    o.write_state(&mut t);
    t
}

fn apply_inner(store: &mut Store, cmd: &Command, now: u64) -> Result<(String, CrdtType, String)> {
    let me = store.replica().clone();
    let (name, ty, delta) = match cmd {
        Command::Inc { name, amount, ty } => {
            let explicit = ty.map(|t| match t {
                CounterType::GCounter => CrdtType::GCounter,
                CounterType::PnCounter => CrdtType::PnCounter,
            });
            let accepts = [CrdtType::GCounter, CrdtType::PnCounter];
            let t = resolve(store, name, "inc", &accepts, explicit)?;
            let d = delta_after(store.get_or_create(name, t), |o| {
                match o {
                    Object::GCounter(c) => c.inc(&me, *amount)?,
                    Object::PnCounter(c) => c.inc(&me, *amount)?,
                    _ => unreachable!("resolved to a counter"),
                }
                Ok(())
            })?;
            (name, t, text_of(&d))
        }
        Command::Dec { name, amount } => {
            let t = resolve(store, name, "dec", &[CrdtType::PnCounter], None)?;
            let d = delta_after(store.get_or_create(name, t), |o| {
                if let Object::PnCounter(c) = o {
                    c.dec(&me, *amount)?;
                }
                Ok(())
            })?;
            (name, t, text_of(&d))
        }
        Command::Set {
            name,
            value,
            string,
        } => {
            let t = resolve(store, name, "set", &[CrdtType::LwwRegister], None)?;
            let value = parse_value(value, *string)?;
            let d = delta_after(store.get_or_create(name, t), |o| {
                if let Object::LwwRegister(r) = o {
                    r.set(&me, value, now)?;
                }
                Ok(())
            })?;
            (name, t, text_of(&d))
        }
        Command::Add {
            name,
            elems,
            string,
        } => {
            let t = resolve(store, name, "add", &[CrdtType::OrSet], None)?;
            // Every member is parsed before any is added: a bad one changes nothing.
            let values = elems
                .iter()
                .map(|e| parse_value(e, *string))
                .collect::<Result<Vec<_>>>()?;
            let mut delta = crdt::OrSet::default();
            if let Object::OrSet(s) = store.get_or_create(name, t) {
                for v in values {
                    delta.merge(&s.add_delta(&me, v)?.1);
                }
            }
            (name, t, text_of(&Object::OrSet(delta)))
        }
        Command::Rm {
            name,
            elems,
            string,
        } => {
            let t = resolve(store, name, "rm", &[CrdtType::OrSet], None)?;
            let values = elems
                .iter()
                .map(|e| parse_value(e, *string))
                .collect::<Result<Vec<_>>>()?;
            // A set this replica has not seen, or a member it does not
            // hold, may not have arrived yet: nothing to remove, not an
            // error (a note says so). Nothing is created.
            let mut delta = crdt::OrSet::default();
            let mut absent = Vec::new();
            match store.get_mut(name, t) {
                Some(Object::OrSet(s)) => {
                    for (v, e) in values.iter().zip(elems) {
                        match s.remove_delta(&me, v)? {
                            Some(d) => delta.merge(&d),
                            None => absent.push(e.as_str()),
                        }
                    }
                    if !absent.is_empty() {
                        eprintln!(
                            "crdt: note: {name} has no member {}: nothing removed for {}",
                            absent.join(", "),
                            if absent.len() == 1 { "it" } else { "them" }
                        );
                    }
                }
                _ => eprintln!(
                    "crdt: note: this replica has no object named {name} (yet): nothing was removed"
                ),
            }
            (name, t, text_of(&Object::OrSet(delta)))
        }
        Command::Insert { name, pos, text } => {
            let t = resolve(store, name, "insert", &[CrdtType::Rga], None)?;
            let Object::Rga(r) = store.get_or_create(name, t) else {
                unreachable!("resolved to an rga")
            };
            let d = r.insert_delta_text(&me, *pos, text)?;
            (name, t, d)
        }
        Command::Append { name, text } => {
            let t = resolve(store, name, "append", &[CrdtType::Rga], None)?;
            let Object::Rga(r) = store.get_or_create(name, t) else {
                unreachable!("resolved to an rga")
            };
            let end = r.len();
            let d = r.insert_delta_text(&me, end, text)?;
            (name, t, d)
        }
        Command::Delete { name, pos, len } => {
            let t = resolve(store, name, "delete", &[CrdtType::Rga], None)?;
            if store.get(name, t).is_none() {
                bail!("no object named {name} (see `crdt ls`)");
            }
            let Some(Object::Rga(r)) = store.get_mut(name, t) else {
                unreachable!("resolved to an rga")
            };
            let d = r.delete_delta_text(&me, *pos, *len)?;
            (name, t, d)
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
            let o = text_of(store.get_or_create(name, t));
            (name, t, o)
        }
        other => bail!("{other:?} is not a change command"),
    };
    Ok((name.clone(), ty, delta))
}

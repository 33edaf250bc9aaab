//! Change commands, shared by the command line and `batch`.

use anyhow::{Result, bail};
use crdt::{CrdtType, Edit, Store};
use serde_json::Value;

use super::args::{
    AddArgs, AppendArgs, Command, CounterType, DecArgs, DelArgs, DeleteArgs, IncArgs, InsertArgs,
    NewArgs, PutArgs, ResolveArgs, RmArgs, SetArgs, TransferArgs, TypeArg, UnsetArgs,
};

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
            TypeArg::Map => CrdtType::Map,
            TypeArg::BoundedCounter => CrdtType::BoundedCounter,
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

/// Applies one change command: its arguments become an [`Edit`], which the
/// store applies whole or not at all. Returns the name and the type of the
/// object it changed, and the change as a delta in the snapshot format's
/// text and in words (what the history records). On error the store is as
/// it was.
pub fn apply(
    store: &mut Store,
    cmd: &Command,
    now: u64,
) -> Result<(String, CrdtType, String, String)> {
    let Some((name, edit)) = edit_of(cmd)? else {
        bail!("{cmd:?} is not a change command");
    };
    let applied = store.apply(name, &edit, now)?;
    let asked = match cmd {
        Command::Rm(RmArgs { elems, .. }) => Some(("member", elems)),
        Command::Unset(UnsetArgs { keys, .. }) => Some(("key", keys)),
        _ => None,
    };
    if let Some((what, asked)) = asked {
        if applied.no_object {
            eprintln!(
                "crdt: note: this replica has no object named {name} (yet): nothing was removed"
            );
        } else if !applied.absent.is_empty() {
            let absent: Vec<&str> = applied.absent.iter().map(|&i| asked[i].as_str()).collect();
            eprintln!(
                "crdt: note: {name} has no {what} {}: nothing removed for {}",
                absent.join(", "),
                if absent.len() == 1 { "it" } else { "them" }
            );
        }
    }
    Ok((name.to_string(), applied.ty, applied.delta, applied.summary))
}

/// [`apply`] of a text edit (insert, append, delete) without its delta and
/// summary ([`crdt::Store::apply_untracked`]): a batch's folded run.
pub fn apply_untracked(store: &mut Store, cmd: &Command, now: u64) -> Result<()> {
    let Some((name, edit)) = edit_of(cmd)? else {
        bail!("{cmd:?} is not a change command");
    };
    store.apply_untracked(name, &edit, now)?;
    Ok(())
}

/// The edit a change command asks for, its values parsed (every one before
/// anything changes: a bad one changes nothing); `None` for other commands.
fn edit_of(cmd: &Command) -> Result<Option<(&str, Edit)>> {
    let values = |elems: &[String], string: bool| {
        elems
            .iter()
            .map(|e| parse_value(e, string))
            .collect::<Result<Vec<_>>>()
    };
    Ok(Some(match cmd {
        Command::Inc(IncArgs { name, amount, ty }) => {
            let ty = ty.map(|t| match t {
                CounterType::GCounter => CrdtType::GCounter,
                CounterType::PnCounter => CrdtType::PnCounter,
            });
            (
                name,
                Edit::Inc {
                    amount: *amount,
                    ty,
                },
            )
        }
        Command::Dec(DecArgs { name, amount }) => (name, Edit::Dec { amount: *amount }),
        Command::Set(SetArgs {
            name,
            value,
            string,
        }) => (
            name,
            Edit::Set {
                value: parse_value(value, *string)?,
            },
        ),
        Command::Add(AddArgs {
            name,
            elems,
            string,
        }) => (
            name,
            Edit::Add {
                values: values(elems, *string)?,
            },
        ),
        Command::Rm(RmArgs {
            name,
            elems,
            string,
        }) => (
            name,
            Edit::Rm {
                values: values(elems, *string)?,
            },
        ),
        Command::Insert(InsertArgs { name, pos, text }) => (
            name,
            Edit::Insert {
                pos: *pos,
                text: text.clone(),
            },
        ),
        Command::Append(AppendArgs { name, text }) => (name, Edit::Append { text: text.clone() }),
        Command::Delete(DeleteArgs { name, pos, len }) => (
            name,
            Edit::Delete {
                pos: *pos,
                len: *len,
            },
        ),
        Command::New(NewArgs { name, ty, limit }) => {
            let ty = CrdtType::from(*ty);
            match (ty, limit) {
                (CrdtType::BoundedCounter, Some(limit)) => (name, Edit::Create { limit: *limit }),
                (CrdtType::BoundedCounter, None) => {
                    bail!("a bounded-counter needs --limit N: how many rights there are")
                }
                (_, Some(_)) => bail!(
                    "--limit is for a bounded-counter, not {} {ty}",
                    ty.article()
                ),
                (_, None) => (name, Edit::New { ty }),
            }
        }
        Command::Transfer(TransferArgs { name, amount, to }) => (
            name,
            Edit::Transfer {
                amount: *amount,
                to: crdt::ReplicaId::new(to.clone())?,
            },
        ),
        Command::Put(PutArgs {
            name,
            key,
            value,
            string,
        }) => (
            name,
            Edit::Put {
                key: key.clone(),
                value: parse_value(value, *string)?,
            },
        ),
        Command::Unset(UnsetArgs { name, keys }) => (name, Edit::Unset { keys: keys.clone() }),
        _ => return Ok(None),
    }))
}

pub fn command_name(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Inc(IncArgs { name, .. })
        | Command::Dec(DecArgs { name, .. })
        | Command::Set(SetArgs { name, .. })
        | Command::Add(AddArgs { name, .. })
        | Command::Rm(RmArgs { name, .. })
        | Command::Insert(InsertArgs { name, .. })
        | Command::Delete(DeleteArgs { name, .. })
        | Command::Append(AppendArgs { name, .. })
        | Command::New(NewArgs { name, .. })
        | Command::Put(PutArgs { name, .. })
        | Command::Transfer(TransferArgs { name, .. })
        | Command::Unset(UnsetArgs { name, .. }) => Some(name),
        _ => None,
    }
}

/// The objects a `del` or `resolve` deletes, as (name, type): the live
/// objects of each name (`del`), or those of a name not of the type kept
/// (`resolve`). A name with nothing to delete is a note on stderr; a
/// `resolve` of a name without an object of the type kept is an error.
pub fn deletions(store: &Store, cmd: &Command) -> Result<Vec<(String, CrdtType)>> {
    let live = |name: &str| -> Vec<CrdtType> {
        store
            .objects(name)
            .iter()
            .filter(|o| !o.is_deleted())
            .map(|o| o.ty())
            .collect()
    };
    let mut out = Vec::new();
    match cmd {
        Command::Del(DelArgs { names }) => {
            for name in names {
                let types = live(name);
                if types.is_empty() {
                    if store.objects(name).is_empty() {
                        eprintln!(
                            "crdt: note: this replica has no object named {name} (yet): nothing was deleted"
                        );
                    } else {
                        eprintln!("crdt: note: {name} is already deleted");
                    }
                }
                out.extend(types.into_iter().map(|t| (name.clone(), t)));
            }
        }
        Command::Resolve(ResolveArgs { name, keep }) => {
            let keep = CrdtType::from(*keep);
            let types = live(name);
            if !types.contains(&keep) {
                let have: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
                bail!(
                    "{name} has no {keep} to keep (it has: {})",
                    if have.is_empty() {
                        "nothing".to_string()
                    } else {
                        have.join(", ")
                    }
                );
            }
            if types.len() == 1 {
                eprintln!("crdt: note: {name} has no type conflict: nothing was deleted");
            }
            out.extend(
                types
                    .into_iter()
                    .filter(|t| *t != keep)
                    .map(|t| (name.clone(), t)),
            );
        }
        _ => bail!("{cmd:?} is not a delete command"),
    }
    Ok(out)
}

/// The names a `del` or `resolve` acts on.
pub fn deletion_names(cmd: &Command) -> Vec<String> {
    match cmd {
        Command::Del(DelArgs { names }) => names.clone(),
        Command::Resolve(ResolveArgs { name, .. }) => vec![name.clone()],
        _ => Vec::new(),
    }
}

/// Deletes `list` in the transaction `c`, each with its history row.
pub fn apply_deletions(
    c: &mut crdt::db::Change<'_>,
    list: &[(String, CrdtType)],
    now: u64,
) -> Result<()> {
    for (name, ty) in list {
        let applied = c.store_mut().apply(name, &Edit::Del { ty: *ty }, now)?;
        c.record_text(name, *ty, applied.delta, applied.summary, None)?;
    }
    Ok(())
}

//! A change to a named object, built first and then applied: the command
//! line (and `batch`) turns its arguments into an [`Edit`];
//! [`Store::apply`] picks the object (a name keeps its type), applies it
//! whole or not at all, and returns the delta the history records.

use serde_json::Value;
use thiserror::Error;

use crate::error::OpError;
use crate::object::{CrdtType, Object};
use crate::store::{InvalidName, Store, validate_name};
use crate::traits::Crdt;

/// One change, as a command asks for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Add `amount` to a g-counter (or a pn-counter; `ty` creates either).
    Inc { amount: u64, ty: Option<CrdtType> },
    /// Subtract `amount` from a pn-counter.
    Dec { amount: u64 },
    /// Write a register.
    Set { value: Value },
    /// Add members to a set.
    Add { values: Vec<Value> },
    /// Remove members from a set: one not here (yet) is not an error.
    Rm { values: Vec<Value> },
    /// Insert text before character `pos`.
    Insert { pos: usize, text: String },
    /// Insert text at the end.
    Append { text: String },
    /// Delete `len` characters from `pos`.
    Delete { pos: usize, len: usize },
    /// Create an empty object of a type.
    New { ty: CrdtType },
    /// Write `value` under `key` in a map.
    Put { key: String, value: Value },
    /// Remove keys from a map: one not here (yet) is not an error.
    Unset { keys: Vec<String> },
    /// Delete the object of type `ty` (see [`crate::deletion`]).
    Del { ty: CrdtType },
    /// Create a bounded counter whose `limit` rights this replica holds.
    Create { limit: u64 },
    /// Move `amount` of a bounded counter's rights to replica `to`.
    Transfer { amount: u64, to: crate::ReplicaId },
}

impl Edit {
    /// The command that asks for it (`inc`, `set`, ...), for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Edit::Inc { .. } => "inc",
            Edit::Dec { .. } => "dec",
            Edit::Set { .. } => "set",
            Edit::Add { .. } => "add",
            Edit::Rm { .. } => "rm",
            Edit::Insert { .. } => "insert",
            Edit::Append { .. } => "append",
            Edit::Delete { .. } => "delete",
            Edit::New { .. } => "new",
            Edit::Put { .. } => "put",
            Edit::Unset { .. } => "unset",
            Edit::Del { .. } => "del",
            Edit::Create { .. } => "new",
            Edit::Transfer { .. } => "transfer",
        }
    }

    /// The type of the object it creates (`new`), if it is a creation.
    fn created(&self) -> Option<CrdtType> {
        match self {
            Edit::New { ty } => Some(*ty),
            Edit::Create { .. } => Some(CrdtType::BoundedCounter),
            _ => None,
        }
    }

    /// The types it acts on, the one it creates first.
    fn accepts(&self) -> &'static [CrdtType] {
        match self {
            Edit::Inc { .. } => &[
                CrdtType::GCounter,
                CrdtType::PnCounter,
                CrdtType::BoundedCounter,
            ],
            Edit::Dec { .. } => &[CrdtType::PnCounter, CrdtType::BoundedCounter],
            Edit::Create { .. } | Edit::Transfer { .. } => &[CrdtType::BoundedCounter],
            Edit::Set { .. } => &[CrdtType::LwwRegister],
            Edit::Add { .. } | Edit::Rm { .. } => &[CrdtType::OrSet],
            Edit::Insert { .. } | Edit::Append { .. } | Edit::Delete { .. } => &[CrdtType::Rga],
            Edit::New { .. } | Edit::Del { .. } => &CrdtType::ALL,
            Edit::Put { .. } | Edit::Unset { .. } => &[CrdtType::Map],
        }
    }
}

/// What an applied edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The type of the object it changed.
    pub ty: CrdtType,
    /// The change as a delta, in the snapshot format's text.
    pub delta: String,
    /// The change in the type's words (`+3`, `insert "Hello" at 0`).
    pub summary: String,
    /// For [`Edit::Rm`]: the members (indexes into its values) this replica
    /// does not hold, so nothing was removed for them; for [`Edit::Unset`],
    /// the keys (indexes) the map does not have.
    pub absent: Vec<usize>,
    /// For [`Edit::Rm`] and [`Edit::Unset`]: this replica has no such set
    /// or map (yet).
    pub no_object: bool,
}

/// Why an edit was refused; the store is as it was.
#[derive(Debug, Error)]
pub enum EditError {
    #[error(transparent)]
    Name(#[from] InvalidName),
    #[error(transparent)]
    Op(#[from] OpError),
    /// A bounded counter refused: not enough rights, or nothing to release.
    #[error(transparent)]
    Bounded(#[from] crate::bcounter::BoundedError),
    /// `--type` names another type than the name has.
    #[error(
        "{name} is {} {have}, not {} {want}: a name keeps its type (pick another name for a {want})",
        have.article(),
        want.article()
    )]
    KeepsItsType {
        name: String,
        have: CrdtType,
        want: CrdtType,
    },
    /// The command works on another type than the name has.
    #[error("`{verb}` needs {} {want}, but {name} is {} {have}\n  hint: {}", want.article(), have.article(), wrong_type_hint(verb, name, *have, *want))]
    WrongType {
        verb: &'static str,
        name: String,
        have: CrdtType,
        want: CrdtType,
    },
    #[error("{name} already exists (it is {} {ty})", ty.article())]
    Exists { name: String, ty: CrdtType },
    #[error("no object named {name} (see `crdt ls`)")]
    NoObject { name: String },
    #[error("{name} was deleted{}", deleted_text(.by))]
    Deleted {
        name: String,
        by: Option<(crate::ReplicaId, u64)>,
    },
}

/// [`EditError::Deleted`] for the object `o` of `name`.
fn deleted_error(name: &str, o: &Object) -> EditError {
    EditError::Deleted {
        name: name.to_string(),
        by: o.deleted_by().map(|d| {
            let (r, t) = d.latest();
            (r.clone(), t)
        }),
    }
}

fn deleted_text(by: &Option<(crate::ReplicaId, u64)>) -> String {
    match by {
        Some((r, ms)) => format!(" by {r} at {}", crate::clock::rfc3339_ms(*ms)),
        None => String::new(),
    }
}

fn wrong_type_hint(verb: &str, name: &str, have: CrdtType, want: CrdtType) -> String {
    match (verb, have) {
        ("dec", CrdtType::GCounter) => {
            "a g-counter only grows; for a counter that goes down, use a new name created \
             with `crdt new NAME --type pn-counter` (or `crdt inc --type pn-counter NAME`)"
                .to_string()
        }
        _ => format!(
            "{verb} works on {} {want}; see what {name} holds with `crdt show {name}`, \
             or use another name",
            want.article()
        ),
    }
}

impl Store {
    /// Applies `edit` to the object `name` as this store's replica (`now`:
    /// the wall clock for register timestamps), creating it when the name
    /// is new. Whole or not at all: on error the store is as it was.
    pub fn apply(&mut self, name: &str, edit: &Edit, now: u64) -> Result<Applied, EditError> {
        self.apply_as(name, edit, now, false)
    }

    /// [`Store::apply`] without the change's delta and summary for a text
    /// edit (`Applied::delta` and `summary` are empty then): for a run of
    /// edits whose history is one row, made from the text before and after.
    pub fn apply_untracked(
        &mut self,
        name: &str,
        edit: &Edit,
        now: u64,
    ) -> Result<Applied, EditError> {
        self.apply_as(name, edit, now, true)
    }

    fn apply_as(
        &mut self,
        name: &str,
        edit: &Edit,
        now: u64,
        untracked: bool,
    ) -> Result<Applied, EditError> {
        let existed = self.objects_of(name).count();
        let result = self.apply_inner(name, edit, now, untracked);
        if result.is_err() && self.objects_of(name).count() != existed {
            // The failing edit created an empty object first: take it back.
            self.remove_empty(name);
        }
        result
    }

    /// Which object of `name` `edit` acts on: a name keeps its type.
    fn resolve(&self, name: &str, edit: &Edit) -> Result<CrdtType, EditError> {
        let accepts = edit.accepts();
        let explicit = match edit {
            Edit::Inc { ty, .. } => *ty,
            Edit::New { ty } | Edit::Del { ty } => Some(*ty),
            Edit::Create { .. } => Some(CrdtType::BoundedCounter),
            _ => None,
        };
        if let Edit::Del { ty } = edit {
            // Only a live object can be deleted.
            return match self.get(name, *ty) {
                Some(o) if !o.is_deleted() => Ok(*ty),
                Some(o) => Err(deleted_error(name, o)),
                None => Err(EditError::NoObject {
                    name: name.to_string(),
                }),
            };
        }
        // A deleted object no longer holds its name's type: the name may
        // be used again, for any type (a change to the deleted object's
        // type brings that object back).
        let existing: Vec<CrdtType> = self
            .objects_of(name)
            .filter(|o| !o.is_deleted())
            .map(|o| o.ty())
            .collect();
        if existing.is_empty() {
            // Names already in the store were checked when they were created.
            validate_name(name)?;
            let deleted: Vec<CrdtType> = self.objects(name).iter().map(|o| o.ty()).collect();
            if let Some(ty) = edit.created()
                && let Some(o) = self.get(name, ty)
            {
                // The deleted object holds that place: a change brings it back.
                return Err(deleted_error(name, o));
            }
            // A deleted object of a type the edit takes comes back.
            let back = deleted.iter().find(|t| accepts.contains(t)).copied();
            return Ok(explicit.or(back).unwrap_or(accepts[0]));
        }
        if let Some(ty) = edit.created() {
            return Err(EditError::Exists {
                name: name.to_string(),
                ty: *existing.first().unwrap_or(&ty),
            });
        }
        if let Some(want) = explicit {
            if existing.contains(&want) {
                return Ok(want);
            }
            return Err(EditError::KeepsItsType {
                name: name.to_string(),
                have: existing[0],
                want,
            });
        }
        if let Some(t) = existing.iter().find(|t| accepts.contains(t)) {
            return Ok(*t);
        }
        Err(EditError::WrongType {
            verb: edit.verb(),
            name: name.to_string(),
            have: existing[0],
            want: accepts[0],
        })
    }

    fn apply_inner(
        &mut self,
        name: &str,
        edit: &Edit,
        now: u64,
        untracked: bool,
    ) -> Result<Applied, EditError> {
        let me = self.replica().clone();
        let ty = self.resolve(name, edit)?;
        let mut applied = Applied {
            ty,
            delta: String::new(),
            summary: String::new(),
            absent: Vec::new(),
            no_object: false,
        };
        applied.delta = match edit {
            Edit::Inc { amount, .. } => bounded_after(self.get_or_create(name, ty), |o| match o {
                Object::GCounter(c) => Ok(c.inc(&me, *amount)?),
                Object::PnCounter(c) => Ok(c.inc(&me, *amount)?),
                Object::BoundedCounter(c) => Ok(c.allocate(&me, *amount)?),
                _ => unreachable!("resolved to a counter"),
            })?,
            Edit::Dec { amount } => bounded_after(self.get_or_create(name, ty), |o| match o {
                Object::PnCounter(c) => Ok(c.dec(&me, *amount)?),
                Object::BoundedCounter(c) => Ok(c.release(&me, *amount)?),
                _ => unreachable!("resolved to a pn-counter"),
            })?,
            Edit::Create { limit } => bounded_after(self.get_or_create(name, ty), |o| match o {
                Object::BoundedCounter(c) => Ok(c.create(&me, *limit)?),
                _ => unreachable!("resolved to a bounded counter"),
            })?,
            Edit::Transfer { amount, to } => {
                let Some(o @ Object::BoundedCounter(_)) = self.get_mut(name, ty) else {
                    return Err(EditError::NoObject {
                        name: name.to_string(),
                    });
                };
                bounded_after(o, |o| match o {
                    Object::BoundedCounter(c) => Ok(c.transfer(&me, to, *amount)?),
                    _ => unreachable!("resolved to a bounded counter"),
                })?
            }
            Edit::Set { value } => delta_after(self.get_or_create(name, ty), |o| match o {
                Object::LwwRegister(r) => r.set(&me, value.clone(), now).map(|_| ()),
                _ => unreachable!("resolved to a register"),
            })?,
            Edit::Add { values } => {
                let Object::OrSet(s) = self.get_or_create(name, ty) else {
                    unreachable!("resolved to a set")
                };
                let mut delta = crate::OrSet::default();
                for v in values {
                    delta.merge(&s.add_delta(&me, v.clone())?.1);
                }
                text_of(&Object::OrSet(delta))
            }
            Edit::Rm { values } => {
                // A set this replica has not seen, or a member it does not
                // hold, may not have arrived yet: nothing to remove, not an
                // error. Nothing is created.
                let mut delta = crate::OrSet::default();
                match self.get_mut(name, ty) {
                    Some(Object::OrSet(s)) => {
                        for (i, v) in values.iter().enumerate() {
                            match s.remove_delta(&me, v)? {
                                Some(d) => delta.merge(&d),
                                None => applied.absent.push(i),
                            }
                        }
                    }
                    _ => {
                        applied.no_object = true;
                        applied.absent = (0..values.len()).collect();
                    }
                }
                text_of(&Object::OrSet(delta))
            }
            Edit::Insert { pos, text } if untracked => {
                self.text_mut(name, ty).insert(&me, *pos, text)?;
                return Ok(applied);
            }
            Edit::Insert { pos, text } => {
                self.text_mut(name, ty).insert_delta_text(&me, *pos, text)?
            }
            Edit::Append { text } => {
                let r = self.text_mut(name, ty);
                let end = r.len();
                if untracked {
                    r.insert(&me, end, text)?;
                    return Ok(applied);
                }
                applied.summary = crate::history::describe_edit(edit, end);
                r.insert_delta_text(&me, end, text)?
            }
            Edit::Delete { pos, len } => {
                let Some(Object::Rga(r)) = self.get_mut(name, ty) else {
                    return Err(EditError::NoObject {
                        name: name.to_string(),
                    });
                };
                if untracked {
                    r.delete(&me, *pos, *len)?;
                    return Ok(applied);
                }
                r.delete_delta_text(&me, *pos, *len)?
            }
            Edit::New { .. } => text_of(self.get_or_create(name, ty)),
            Edit::Del { .. } => {
                let o = self
                    .get_mut(name, ty)
                    .expect("resolved to an object of this type");
                delta_after(o, |o| o.delete_object(&me, now))?
            }
            Edit::Put { key, value } => delta_after(self.get_or_create(name, ty), |o| match o {
                Object::Map(m) => m.put(&me, key, value.clone(), now).map(|_| ()),
                _ => unreachable!("resolved to a map"),
            })?,
            Edit::Unset { keys } => match self.get_mut(name, ty) {
                // A map or key this replica has not seen may not have
                // arrived yet: nothing to remove, not an error.
                Some(o @ Object::Map(_)) => delta_after(o, |o| match o {
                    Object::Map(m) => {
                        for (i, key) in keys.iter().enumerate() {
                            if !m.unset(&me, key)? {
                                applied.absent.push(i);
                            }
                        }
                        Ok(())
                    }
                    _ => unreachable!("resolved to a map"),
                })?,
                _ => {
                    applied.no_object = true;
                    applied.absent = (0..keys.len()).collect();
                    text_of(&Object::new(CrdtType::Map))
                }
            },
        };
        if applied.summary.is_empty() {
            applied.summary = crate::history::describe_edit(edit, 0);
        }
        Ok(applied)
    }

    fn text_mut(&mut self, name: &str, ty: CrdtType) -> &mut crate::Rga {
        match self.get_or_create(name, ty) {
            Object::Rga(r) => r,
            _ => unreachable!("resolved to an rga"),
        }
    }
}

/// [`delta_after`] for a change that a bounded counter may refuse.
fn bounded_after(
    o: &mut Object,
    f: impl FnOnce(&mut Object) -> Result<(), EditError>,
) -> Result<String, EditError> {
    let before = o.version();
    f(o)?;
    Ok(text_of(&o.delta_since(&before)))
}

/// The delta of a change to a counter or a register, as text: what it has
/// beyond the version it had before (small: a counter entry, a write).
fn delta_after(
    o: &mut Object,
    f: impl FnOnce(&mut Object) -> Result<(), OpError>,
) -> Result<String, OpError> {
    let before = o.version();
    f(o)?;
    Ok(text_of(&o.delta_since(&before)))
}

fn text_of(o: &Object) -> String {
    let mut t = String::new();
    o.write_state(&mut t);
    t
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::ReplicaId;
    use serde_json::json;

    fn store() -> Store {
        Store::new(ReplicaId::new("agent-1").unwrap())
    }

    #[test]
    fn an_edit_applies_whole_or_not_at_all() {
        let mut s = store();
        let a = s
            .apply(
                "n",
                &Edit::Inc {
                    amount: 2,
                    ty: None,
                },
                0,
            )
            .unwrap();
        assert_eq!(a.ty, CrdtType::GCounter);
        assert_eq!(a.delta, r#"{"counts":{"agent-1":{"seq":1,"count":2}}}"#);
        // A name keeps its type; the refusal names both, and changes nothing.
        let before = s.clone();
        let e = s.apply("n", &Edit::Dec { amount: 1 }, 0).unwrap_err();
        assert!(
            e.to_string()
                .contains("`dec` needs a pn-counter, but n is a g-counter")
        );
        let e = s
            .apply(
                "n",
                &Edit::Inc {
                    amount: 1,
                    ty: Some(CrdtType::PnCounter),
                },
                0,
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("n is a g-counter, not a pn-counter"),
            "{e}"
        );
        assert!(matches!(
            s.apply("n", &Edit::New { ty: CrdtType::Rga }, 0),
            Err(EditError::Exists { .. })
        ));
        assert_eq!(s, before);
        // A failing edit on a new name leaves no empty object behind.
        let e = s.apply(
            "doc",
            &Edit::Insert {
                pos: 3,
                text: "x".into(),
            },
            0,
        );
        assert!(matches!(
            e,
            Err(EditError::Op(OpError::PositionOutOfRange { .. }))
        ));
        assert!(s.objects("doc").is_empty());
        assert!(matches!(
            s.apply("bad name", &Edit::Set { value: json!(1) }, 0),
            Err(EditError::Name(_))
        ));
        assert!(matches!(
            s.apply("gone", &Edit::Delete { pos: 0, len: 1 }, 0),
            Err(EditError::NoObject { .. })
        ));
        assert!(s.objects("gone").is_empty());
    }

    #[test]
    fn removing_what_is_not_here_is_reported_not_refused() {
        let mut s = store();
        let rm = Edit::Rm {
            values: vec![json!("a"), json!("b")],
        };
        let a = s.apply("tasks", &rm, 0).unwrap();
        assert!(a.no_object && a.absent == [0, 1]);
        assert!(s.objects("tasks").is_empty(), "rm creates nothing");
        s.apply(
            "tasks",
            &Edit::Add {
                values: vec![json!("b")],
            },
            0,
        )
        .unwrap();
        let a = s.apply("tasks", &rm, 0).unwrap();
        assert!(!a.no_object && a.absent == [0]);
        assert_eq!(
            s.get("tasks", CrdtType::OrSet).unwrap().value_json(),
            json!([])
        );
    }
}

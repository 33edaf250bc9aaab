//! Named objects of one replica.
//!
//! # Type conflicts
//! Each name normally holds one object. When two replicas create the same
//! name with different types, a merge keeps *both*: the name then holds one
//! object per type, sorted by type, and [`Store::conflicts`] lists it.
//! Nothing is dropped. Objects of the same name and type merge as usual, so
//! all replicas agree on the conflict and on every object in it; a reader
//! picks the type it wants (`Store::get(name, ty)`).

use std::collections::BTreeMap;
use std::sync::Arc;

use thiserror::Error;

use crate::clock::{ReplicaId, VersionVector};
use crate::object::{CrdtType, Object};

/// An object name: 1 to 256 bytes of UTF-8 without whitespace, control,
/// format (Cf: zero-width, bidi controls, tags, U+FEFF) or unassigned
/// characters, so that two names that print alike are the same name.
/// `:` separates namespaces (`metrics:requests`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid name {name:?}: {why} (a name is 1 to 256 bytes without spaces, control, invisible or unassigned characters, e.g. metrics:requests)"
)]
pub struct InvalidName {
    pub name: String,
    pub why: String,
}

pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    let bad = |why: String| {
        Err(InvalidName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty".into());
    }
    if name.len() > 256 {
        return bad(format!("it is {} bytes long", name.len()));
    }
    // Printable ASCII (most names): no table lookups.
    if name.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    for (i, c) in name.char_indices() {
        let kind = match get_general_category(c) {
            _ if c.is_whitespace() => "whitespace",
            G::Control => "a control character",
            G::Format => "an invisible format character",
            G::Unassigned => "an unassigned code point",
            _ => continue,
        };
        return bad(format!("byte {i} is {kind} (U+{:04X})", c as u32));
    }
    Ok(())
}

/// Why a delta cannot be merged into a store: it is not a change an honest
/// replica could make against what is held, or it refers to a character
/// the store lacks (`missing`: the delta is fine, the store must sync first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Refused {
    pub name: String,
    pub ty: CrdtType,
    /// What no honest replica could do (empty with `missing`).
    pub why: String,
    pub missing: Option<crate::Dot>,
}

impl Refused {
    fn describe(&self) -> String {
        match &self.missing {
            Some(dot) => format!(
                "{}: the change refers to character {dot}, which this replica does not have; sync first",
                self.name
            ),
            None => format!("{} ({}): {}", self.name, self.ty, self.why),
        }
    }
}

/// True when one of `select` picks `name` (see [`selects`]); an empty list
/// picks everything. The one selector rule of `ls`, `export`, `sync`,
/// `watch`, `diff` and the server.
pub fn selected(select: &[String], name: &str) -> bool {
    select.is_empty() || select.iter().any(|p| selects(p, name))
}

/// True when `pattern` selects `name`: the name itself, or a namespace
/// (`metrics` and `metrics:` both select `metrics:requests`).
pub fn selects(pattern: &str, name: &str) -> bool {
    if name == pattern {
        return true;
    }
    if pattern.ends_with(':') {
        return name.starts_with(pattern);
    }
    name.strip_prefix(pattern)
        .is_some_and(|rest| rest.starts_with(':'))
}

/// The version of every object of a store, by name and type.
pub type StoreVersion = BTreeMap<(String, CrdtType), VersionVector>;

/// A replica's named objects.
///
/// ```
/// use crdt::{CrdtType, Object, ReplicaId, Store};
/// let mut store = Store::new(ReplicaId::new("agent-1").unwrap());
/// let me = store.replica().clone();
/// if let Object::GCounter(c) = store.get_or_create("metrics:requests", CrdtType::GCounter) {
///     c.inc(&me, 1).unwrap();
/// }
/// assert_eq!(store.list("metrics:").count(), 1);
/// ```
///
/// Objects are shared, copy-on-write (`Arc`): cloning a store costs a
/// pointer per object, so the server can hand a frozen copy to a thread that
/// writes the snapshot while it goes on; the first change to an object after
/// that copies that object alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    replica: ReplicaId,
    objects: BTreeMap<String, Vec<Arc<Object>>>,
}

impl Store {
    pub fn new(replica: ReplicaId) -> Self {
        Store {
            replica,
            objects: BTreeMap::new(),
        }
    }

    pub fn replica(&self) -> &ReplicaId {
        &self.replica
    }

    /// Every object under `name` (more than one only during a type conflict).
    pub fn objects(&self, name: &str) -> Vec<&Object> {
        self.objects
            .get(name)
            .map_or_else(Vec::new, |list| list.iter().map(|o| &**o).collect())
    }

    /// [`Store::objects`] without collecting them.
    pub fn objects_of(&self, name: &str) -> impl Iterator<Item = &Object> {
        self.objects
            .get(name)
            .into_iter()
            .flat_map(|list| list.iter().map(|o| &**o))
    }

    pub fn get(&self, name: &str, ty: CrdtType) -> Option<&Object> {
        self.objects
            .get(name)?
            .iter()
            .find(|o| o.ty() == ty)
            .map(|o| &**o)
    }

    /// The shared handle of an object (cloning it costs a pointer).
    pub fn get_shared(&self, name: &str, ty: CrdtType) -> Option<&Arc<Object>> {
        self.objects.get(name)?.iter().find(|o| o.ty() == ty)
    }

    pub fn get_mut(&mut self, name: &str, ty: CrdtType) -> Option<&mut Object> {
        self.objects
            .get_mut(name)?
            .iter_mut()
            .find(|o| o.ty() == ty)
            .map(Arc::make_mut)
    }

    /// The object of type `ty` under `name`, created empty when missing.
    /// Creating a second type under a name makes a type conflict; callers
    /// that want to prevent that check [`Store::objects`] first.
    pub fn get_or_create(&mut self, name: &str, ty: CrdtType) -> &mut Object {
        if !self.objects.contains_key(name) {
            self.objects.insert(name.to_string(), Vec::new());
        }
        let list = self.objects.get_mut(name).expect("just ensured");
        let i = match list.iter().position(|o| o.ty() == ty) {
            Some(i) => i,
            None => {
                list.push(Arc::new(Object::new(ty)));
                list.sort_by_key(|o| o.ty());
                list.iter().position(|o| o.ty() == ty).expect("just added")
            }
        };
        Arc::make_mut(&mut list[i])
    }

    /// Merges a shared object: when this store has none of its name and
    /// type, it takes the object itself (a pointer), not a copy.
    pub fn merge_shared(&mut self, name: &str, object: &Arc<Object>) {
        if self.get(name, object.ty()).is_none() {
            let list = self.objects.entry(name.to_string()).or_default();
            list.push(object.clone());
            list.sort_by_key(|o| o.ty());
        } else {
            self.merge_object(name, object);
        }
    }

    /// Merges `object` into the one of the same name and type (or adds it).
    pub fn merge_object(&mut self, name: &str, object: &Object) {
        let mine = self.get_or_create(name, object.ty());
        mine.merge(object);
    }

    /// Why `delta` cannot be merged here, if it cannot: a text delta that
    /// refers to characters this store does not have, or a change no honest
    /// replica could make against what is held (a counter that goes down,
    /// one dot with two contents: see [`Object::check_merge`]). The gate of
    /// every state that enters a replica; nothing is merged when it fails.
    pub fn check_mergeable(&self, delta: &Store) -> Result<(), Refused> {
        for (name, o) in delta.iter() {
            self.check_mergeable_object(name, o)?;
        }
        Ok(())
    }

    /// Checks `delta` ([`Store::check_mergeable`]), then merges it; returns
    /// the objects whose version it changed (nothing is merged when the
    /// check fails). The step every import, sync reply and update takes.
    pub fn merge_changed(&mut self, delta: &Store) -> Result<Vec<(String, CrdtType)>, Refused> {
        self.check_mergeable(delta)?;
        let mut changed = Vec::new();
        for (name, o) in delta.iter() {
            let before = self.get(name, o.ty()).map(Object::version);
            self.merge_object(name, o);
            if before.as_ref() != self.get(name, o.ty()).map(Object::version).as_ref() {
                changed.push((name.to_string(), o.ty()));
            }
        }
        Ok(changed)
    }

    /// [`Store::check_mergeable`] for one object of a delta.
    pub fn check_mergeable_object(&self, name: &str, o: &Object) -> Result<(), Refused> {
        let refused = |why: String| Refused {
            name: name.to_string(),
            ty: o.ty(),
            why,
            missing: None,
        };
        if let Some(mine) = self.get(name, o.ty()) {
            mine.check_merge(o).map_err(refused)?;
        } else {
            // A new object, checked as merged into an empty one: a new
            // text's characters must be in its context, and what a delete
            // saw must be in the object.
            Object::new(o.ty()).check_merge(o).map_err(refused)?;
        }
        if let Object::Rga(d) = o {
            let empty = crate::Rga::default();
            let mine = match self.get(name, o.ty()) {
                Some(Object::Rga(r)) => r,
                _ => &empty,
            };
            if let Some(dot) = mine.missing_reference(d) {
                return Err(Refused {
                    missing: Some(dot),
                    ..refused(String::new())
                });
            }
        }
        Ok(())
    }

    /// The replicas whose new dots merging `delta` would introduce here
    /// (relaying dots this store already holds introduces nothing).
    pub fn new_replicas(&self, delta: &Store) -> std::collections::BTreeSet<ReplicaId> {
        delta
            .iter()
            .flat_map(|(name, o)| o.new_replicas(self.get(name, o.ty())))
            .collect()
    }

    /// Merges every object of `other` into this store.
    pub fn merge(&mut self, other: &Store) {
        if self.objects.is_empty() {
            // Merging into nothing gives the other's objects (shared).
            self.objects = other.objects.clone();
            return;
        }
        for (name, list) in &other.objects {
            for o in list {
                self.merge_shared(name, o);
            }
        }
    }

    /// Every (name, shared object), in name then type order.
    pub fn iter_shared(&self) -> impl Iterator<Item = (&str, &Arc<Object>)> {
        self.objects
            .iter()
            .flat_map(|(n, list)| list.iter().map(move |o| (n.as_str(), o)))
    }

    /// Every (name, object), in name then type order.
    /// The names after `after` (all names when `None`), in order.
    pub fn names_after<'a>(&'a self, after: Option<&'a str>) -> impl Iterator<Item = &'a str> + 'a {
        use std::ops::Bound;
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        self.objects
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(n, _)| n.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Object)> {
        self.objects
            .iter()
            .flat_map(|(n, list)| list.iter().map(move |o| (n.as_str(), &**o)))
    }

    /// Objects whose name starts with `prefix` (plain text prefix; "" lists all).
    pub fn list<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Object)> {
        self.objects
            .range(prefix.to_string()..)
            .take_while(move |(n, _)| n.starts_with(prefix))
            .flat_map(|(n, list)| list.iter().map(move |o| (n.as_str(), &**o)))
    }

    /// Names that hold objects of more than one type.
    pub fn conflicts(&self) -> Vec<(&str, Vec<CrdtType>)> {
        self.objects
            .iter()
            .filter(|(_, list)| list.len() > 1)
            .map(|(n, list)| (n.as_str(), list.iter().map(|o| o.ty()).collect()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.objects.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn contains_name(&self, name: &str) -> bool {
        self.objects.contains_key(name)
    }

    /// A store with only the objects selected by one of `patterns` (see
    /// [`selects`]); no patterns selects everything.
    pub fn select(&self, patterns: &[String]) -> Store {
        let mut out = Store::new(self.replica.clone());
        for (name, list) in &self.objects {
            if selected(patterns, name) {
                out.objects.insert(name.clone(), list.clone());
            }
        }
        out
    }

    pub fn versions(&self) -> StoreVersion {
        self.iter()
            .map(|(n, o)| ((n.to_string(), o.ty()), o.version()))
            .collect()
    }

    /// What a replica at `versions` lacks: a delta of every object it is behind on.
    pub fn delta_since(&self, versions: &StoreVersion) -> Store {
        self.delta_with(versions, false)
    }

    /// As [`Store::delta_since`], but an object `versions` does not name at
    /// all is shared whole, not rebuilt as a delta (its whole state merges
    /// as its delta does): for a replica that takes all of it and keeps it,
    /// one copy instead of two.
    pub fn delta_since_sharing(&self, versions: &StoreVersion) -> Store {
        self.delta_with(versions, true)
    }

    fn delta_with(&self, versions: &StoreVersion, share_unnamed: bool) -> Store {
        let empty = VersionVector::new();
        let mut out = Store::new(self.replica.clone());
        for (name, o) in self.iter_shared() {
            let named = versions.get(&(name.to_string(), o.ty()));
            let vv = named.unwrap_or(&empty);
            if o.covered_by(vv) {
                continue;
            }
            let delta = if share_unnamed && named.is_none() {
                o.clone()
            } else {
                Arc::new(o.delta_since(vv))
            };
            out.objects.entry(name.to_string()).or_default().push(delta);
        }
        out
    }

    /// Drops the objects under `name` that have seen no event at all (a
    /// local clean-up after a failed first change; never a replicated delete).
    pub fn remove_empty(&mut self, name: &str) {
        if let Some(list) = self.objects.get_mut(name) {
            list.retain(|o| !o.version().is_empty());
            if list.is_empty() {
                self.objects.remove(name);
            }
        }
    }

    /// Puts an object in place without merging. The caller makes sure no
    /// object of that name and type exists (it would be replaced).
    pub fn insert_object(&mut self, name: &str, object: impl Into<Arc<Object>>) {
        let object = object.into();
        let list = self.objects.entry(name.to_string()).or_default();
        list.retain(|o| o.ty() != object.ty());
        list.push(object);
        list.sort_by_key(|o| o.ty());
    }

    /// Holds `objects` (in name then type order, each once: the snapshot
    /// decoder checked) instead of what it held: built at once, not object
    /// by object.
    pub(crate) fn set_sorted(&mut self, objects: Vec<(String, Object)>) {
        let mut lists: Vec<(String, Vec<Arc<Object>>)> = Vec::with_capacity(objects.len());
        for (name, o) in objects {
            match lists.last_mut() {
                Some((last, list)) if *last == name => list.push(Arc::new(o)),
                _ => lists.push((name, vec![Arc::new(o)])),
            }
        }
        self.objects = lists.into_iter().collect();
    }

    /// Puts an object in place without merging (used by the snapshot decoder,
    /// which has already checked that (name, type) is new).
    pub(crate) fn insert_new(&mut self, name: String, object: Object) {
        let list = self.objects.entry(name).or_default();
        list.push(Arc::new(object));
        list.sort_by_key(|o| o.ty());
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn selectors_match_names_and_namespaces() {
        assert!(selects("metrics:requests", "metrics:requests"));
        assert!(selects("metrics", "metrics:requests"));
        assert!(selects("metrics:", "metrics:requests"));
        assert!(!selects("metrics:req", "metrics:requests"));
        assert!(!selects("metric", "metrics:requests"));
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("metrics:/api/v1/contexts").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a\u{7}").is_err());
        // Invisible and bidi characters, and code points with no character.
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{0378}',
            '\u{2028}',
        ] {
            let name = format!("metrics:{c}requests");
            let e = validate_name(&name).unwrap_err();
            assert!(e.to_string().contains("byte 8"), "{e}");
        }
        assert!(validate_name("métriques:requêtes").is_ok());
        assert!(validate_name("文档:主要").is_ok());
    }

    #[test]
    fn list_uses_a_plain_prefix() {
        let mut s = Store::new(ReplicaId::new("r").unwrap());
        for n in ["a:x", "a:y", "ab", "b"] {
            s.get_or_create(n, CrdtType::GCounter);
        }
        let names: Vec<&str> = s.list("a").map(|(n, _)| n).collect();
        assert_eq!(names, ["a:x", "a:y", "ab"]);
    }

    /// The sharing delta holds what `delta_since` holds, and the objects
    /// the versions do not name are the store's own (a pointer).
    #[test]
    fn the_sharing_delta_is_the_delta_with_unnamed_objects_shared() {
        let me = ReplicaId::new("r").unwrap();
        let mut s = Store::new(me.clone());
        let g = CrdtType::GCounter;
        for n in ["known", "behind", "new"] {
            let Object::GCounter(c) = s.get_or_create(n, g) else {
                unreachable!()
            };
            c.inc(&me, 1).unwrap();
        }
        s.get_or_create("empty", g);
        let mut versions = s.select(&["known".into(), "behind".into()]).versions();
        let Object::GCounter(c) = s.get_mut("behind", g).unwrap() else {
            unreachable!()
        };
        c.inc(&me, 2).unwrap();
        let plain = s.delta_since(&versions);
        let shared = s.delta_since_sharing(&versions);
        assert_eq!(plain.versions(), shared.versions());
        let names: Vec<&str> = shared.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["behind", "new"]);
        assert!(Arc::ptr_eq(
            shared.get_shared("new", g).unwrap(),
            s.get_shared("new", g).unwrap()
        ));
        assert!(!Arc::ptr_eq(
            shared.get_shared("behind", g).unwrap(),
            s.get_shared("behind", g).unwrap()
        ));
        versions.clear();
        assert_eq!(s.delta_since_sharing(&versions).len(), 3);
    }
}

//! Shell completion: clap_complete's dynamic engine, so object names complete
//! from the local replica. The scripts `crdt completions SHELL` prints call
//! `crdt` back at each TAB with `CRDT_COMPLETE=SHELL` set; this module
//! answers, reading the replica's database without writing or creating it,
//! and says nothing on errors (a completion never prints one).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::Shells;
use clap_complete::{CompleteEnv, Shell};
use crdt::db::Db;

/// The variable the completion scripts set when they call `crdt` back.
pub const VAR: &str = "CRDT_COMPLETE";

/// At most this many names are offered; with more, names are folded to
/// their namespaces (`metrics:`), which complete further on the next TAB.
const MAX_NAMES: usize = 100;

/// `--state` as given on the command line being completed.
static STATE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Answers a completion request and exits when `CRDT_COMPLETE` is set;
/// returns otherwise.
pub fn answer_if_asked() {
    if std::env::var_os(VAR).is_none_or(|v| v.is_empty()) {
        return;
    }
    let words: Vec<OsString> = std::env::args_os().collect();
    let _ = STATE.set(state_option(&words));
    CompleteEnv::with_factory(tree)
        .var(VAR)
        .completer("crdt")
        .complete();
}

/// The registration script for `shell`: what `crdt completions SHELL`
/// prints and `completions/` holds.
pub fn registration(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let Some(completer) = shells.completer(&name) else {
        return Err(std::io::Error::other(format!("no completions for {name}")));
    };
    completer.write_registration(VAR, "crdt", "crdt", "crdt", out)
}

/// The command tree, with object names completing for every NAME and
/// NAME|PREFIX argument.
fn tree() -> clap::Command {
    let mut tree = super::completion_tree();
    let subs: Vec<String> = tree
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for sub in subs {
        tree = tree.mut_subcommand(sub, |s| {
            s.mut_args(|a| {
                let names_arg = a.is_positional()
                    && a.get_value_names()
                        .is_some_and(|v| v.iter().any(|n| n.as_str().starts_with("NAME")));
                if names_arg {
                    a.add(ArgValueCompleter::new(names))
                } else {
                    a
                }
            })
        });
    }
    tree
}

/// `--state PATH` or `--state=PATH` among the words being completed.
fn state_option(words: &[OsString]) -> Option<PathBuf> {
    let mut it = words.iter().skip_while(|w| *w != "--").skip(1);
    while let Some(w) = it.next() {
        if w == "--state" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = w.to_str().and_then(|w| w.strip_prefix("--state=")) {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// The object names in the local replica that start with `current`.
fn names(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = current.to_str() else {
        return Vec::new();
    };
    let state = STATE
        .get()
        .cloned()
        .flatten()
        .or_else(|| {
            std::env::var_os("CRDT_STATE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(super::default_state_path);
    // Only an existing database is read: completing never creates one.
    if !Db::is_database(&state) {
        return Vec::new();
    }
    let Ok(db) = Db::open_read_only(&state) else {
        return Vec::new();
    };
    let Ok(found) = db.names_starting(prefix, MAX_NAMES * 10) else {
        return Vec::new();
    };
    fold(prefix, found)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// More than [`MAX_NAMES`] names fold to their namespace after `prefix`
/// (`metrics:requests` and `metrics:errors` to `metrics:`).
fn fold(prefix: &str, names: Vec<String>) -> Vec<String> {
    if names.len() <= MAX_NAMES {
        return names;
    }
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let cut = name[prefix.len()..]
            .find(':')
            .map_or(name.len(), |i| prefix.len() + i + 1);
        let short = &name[..cut];
        if out.last().is_none_or(|l| l != short) {
            out.push(short.to_string());
        }
        if out.len() >= MAX_NAMES {
            break;
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn many_names_fold_to_namespaces() {
        let names: Vec<String> = (0..300)
            .map(|i| format!("metrics:{}:n{i}", i % 3))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            fold("met", sorted.clone()),
            ["metrics:"].map(String::from).to_vec()
        );
        assert_eq!(
            fold("metrics:", sorted),
            ["metrics:0:", "metrics:1:", "metrics:2:"]
                .map(String::from)
                .to_vec()
        );
        let few = vec!["a:b".to_string(), "a:c".to_string()];
        assert_eq!(fold("a", few.clone()), few);
    }

    #[test]
    fn the_state_option_is_found_among_the_words() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            state_option(&words(&[
                "crdt", "--", "crdt", "--state", "x.db", "get", ""
            ])),
            Some(PathBuf::from("x.db"))
        );
        assert_eq!(
            state_option(&words(&["crdt", "--", "crdt", "--state=y.db", "get"])),
            Some(PathBuf::from("y.db"))
        );
        assert_eq!(state_option(&words(&["crdt", "--", "crdt", "get"])), None);
    }
}

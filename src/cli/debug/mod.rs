//! The debugger: inspect, visualize, diff, explain and `merge --dry-run`.
//! Builds on the library's semantic diff (`crdt::diff`); only renders.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use colored::Color;
use crdt::{CausalContext, Dot, Hlc, ReplicaId, Store};

use super::Ctx;
use super::files::read_snapshot;

mod blame;
mod diff;
mod explain;
mod inspect;
mod merge;
mod visualize;

pub use blame::blame;
pub use diff::diff;
pub use explain::explain;
pub use inspect::inspect;
pub use merge::merge_dry_run;
pub use visualize::visualize;

/// The objects of `name` in the local replica or in a snapshot file (the
/// store may hold more).
pub(super) fn source(ctx: &Ctx, name: &str, from: Option<&Path>) -> Result<Store> {
    match from {
        Some(p) => read_snapshot(p),
        None => match ctx.load_name(name)? {
            Some(s) => Ok(s),
            None => bail!(
                "no replica at {} yet (use --from FILE to read a snapshot)",
                ctx.state.display()
            ),
        },
    }
}

/// `2023-11-14T22:13:20.000Z`, with `#N` when the logical counter is not 0.
pub fn fmt_ts(ts: Hlc) -> String {
    crdt::clock::rfc3339(ts)
}

/// A time in milliseconds since the epoch, as [`fmt_ts`] writes it.
pub fn fmt_ms(ms: u64) -> String {
    crdt::clock::rfc3339_ms(ms)
}

pub(super) fn context_text(cc: &CausalContext) -> String {
    let parts: Vec<String> = cc
        .iter()
        .map(|(r, ranges)| {
            let rs: Vec<String> = ranges
                .as_slice()
                .iter()
                .map(|&(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}..{hi}")
                    }
                })
                .collect();
            format!("{r} {}", rs.join(","))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `agent-1's true lost, agent-3's 5 lost`: the writes of a map key that
/// lost to its value (diff and explain say it alike).
pub(super) fn lost_writes(st: crate::cli::output::Style, lost: &[crdt::diff::WriteInfo]) -> String {
    lost.iter()
        .map(|w| {
            format!(
                "{}'s {} lost",
                w.dot.replica,
                st.cut(&w.value.to_string(), 40)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn dots_text(dots: &[Dot]) -> String {
    dots.iter()
        .map(Dot::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Green,
    Color::Blue,
    Color::Red,
];

/// The `i`-th color of the replicas' palette.
pub(in crate::cli) fn palette(i: usize) -> Color {
    PALETTE[i % PALETTE.len()]
}

/// A stable color per replica of one object.
pub(in crate::cli) fn replica_colors(
    replicas: impl Iterator<Item = ReplicaId>,
) -> BTreeMap<ReplicaId, Color> {
    let mut set: Vec<ReplicaId> = replicas.collect();
    set.sort();
    set.dedup();
    set.into_iter()
        .enumerate()
        .map(|(i, r)| (r, PALETTE[i % PALETTE.len()]))
        .collect()
}

/// The renderers, written into a buffer: plain (what a script reads) and
/// colored (what a terminal shows), for every type.
#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::{Out, Style};
    use crdt::diff::diff_stores;
    use crdt::{Crdt, CrdtType, GCounter, LwwMap, LwwRegister, Object, OrSet, PnCounter, Rga};
    use serde_json::json;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    /// One object of each type, made by two replicas.
    pub(super) fn objects() -> Vec<Object> {
        let (a, b) = (id("agent-1"), id("agent-2"));
        let mut g = GCounter::default();
        g.inc(&a, 5).unwrap();
        g.inc(&b, 1).unwrap();
        let mut p = PnCounter::default();
        p.inc(&a, 30).unwrap();
        p.dec(&b, 50).unwrap();
        let mut r = LwwRegister::default();
        r.set(&a, json!({"mode": "fast"}), 1_700_000_000_000)
            .unwrap();
        let mut s = OrSet::default();
        s.add(&a, json!("task-1")).unwrap();
        s.add(&b, json!("task-2")).unwrap();
        s.remove(&a, &json!("task-1")).unwrap();
        let mut t = Rga::default();
        t.insert(&a, 0, "Hello world").unwrap();
        t.delete(&b, 5, 6).unwrap();
        // Two agents write one key concurrently; another key was unset.
        let mut m = LwwMap::default();
        m.put(&a, "dark-mode", json!(true), 1_700_000_000_000)
            .unwrap();
        m.put(&a, "old", json!(1), 1_700_000_000_000).unwrap();
        m.unset(&a, "old").unwrap();
        let mut m2 = LwwMap::default();
        m2.put(&b, "ai-review", json!(true), 1_700_000_000_005)
            .unwrap();
        m.put(&a, "ai-review", json!(false), 1_700_000_000_001)
            .unwrap();
        m.merge(&m2);
        vec![
            Object::GCounter(g),
            Object::PnCounter(p),
            Object::LwwRegister(r),
            Object::OrSet(s),
            Object::Rga(t),
            Object::Map(m),
        ]
    }

    fn render(style: Style, f: impl FnOnce(&mut Out<Vec<u8>>)) -> String {
        let mut out = Out::to(Vec::new(), false, style);
        f(&mut out);
        String::from_utf8(out.into_inner()).unwrap()
    }

    const COLOR: Style = Style {
        color: true,
        whole: false,
    };

    #[test]
    fn inspect_shows_each_type_plain_or_colored() {
        for o in objects() {
            let plain = render(Style::plain(), |out| {
                inspect::inspect_text(out, "n", &o).unwrap()
            });
            assert!(plain.starts_with("name:    n\ntype:    "), "{plain}");
            assert!(plain.contains("\nstate:\n"), "{plain}");
            assert!(!plain.contains('\u{1b}'), "{plain}");
            let colored = render(COLOR, |out| inspect::inspect_text(out, "n", &o).unwrap());
            assert!(colored.contains("\u{1b}[1mname:\u{1b}[0m"), "{colored}");
        }
        let counter = render(Style::plain(), |out| {
            inspect::inspect_text(out, "n", &objects()[0]).unwrap()
        });
        assert!(counter.contains("value:   6\n"), "{counter}");
        assert!(counter.contains("agent-1  5"), "{counter}");
    }

    #[test]
    fn visualize_draws_text_and_dot() {
        for o in objects() {
            let text = visualize::viz_text(Style::plain(), "n", &o);
            assert!(text.starts_with("n ("), "{text}");
            let dot = visualize::viz_dot(Style::plain(), "n", &o);
            assert!(
                dot.starts_with("digraph \"n\" {") && dot.ends_with("}\n"),
                "{dot}"
            );
        }
        // Deleted text is marked in brackets when plain, struck when colored.
        let text = &objects()[4];
        assert!(visualize::viz_text(Style::plain(), "doc", text).contains("Hello[- world-]"));
        let colored = visualize::viz_text(COLOR, "doc", text);
        assert!(colored.contains("\u{1b}[2;9;"), "{colored}");
        assert!(!colored.contains("[-"), "{colored}");
    }

    #[test]
    fn explain_speaks_per_type_and_cuts_only_at_a_terminal() {
        let lines: Vec<Vec<String>> = objects()
            .iter()
            .map(|o| explain::explain_lines(Style::plain(), "n", o, 1))
            .collect();
        assert!(lines[0][0].contains("is 6 because"), "{:?}", lines[0]);
        assert!(lines[1][0].contains("is -20"), "{:?}", lines[1]);
        assert!(
            lines[3]
                .iter()
                .any(|l| l.contains("\"task-2\" is a member"))
        );
        // A map speaks per key: who won a conflict, and whose value lost.
        assert!(
            lines[5].iter().any(|l| l.starts_with(
                "\"ai-review\": agent-2's write true wins, agent-1's false lost: the writes are concurrent and its timestamp"
            )),
            "{:?}",
            lines[5]
        );
        assert!(
            lines[5]
                .iter()
                .any(|l| l.starts_with("\"dark-mode\": true, written by agent-1")),
            "{:?}",
            lines[5]
        );
        let mut r = LwwRegister::default();
        r.set(&id("a"), json!("x".repeat(100)), 1).unwrap();
        let long = Object::LwwRegister(r);
        let whole = explain::explain_lines(Style::plain(), "n", &long, 1);
        assert!(whole[0].contains(&"x".repeat(100)), "{whole:?}");
        let cut = explain::explain_lines(COLOR, "n", &long, 1);
        assert!(cut[0].contains('…') && !cut[0].contains(&"x".repeat(100)));
    }

    #[test]
    fn diff_renders_what_differs_and_the_verdict() {
        let (a, b) = (id("agent-1"), id("agent-2"));
        let mut left = Store::new(a.clone());
        let mut right = Store::new(b.clone());
        for (store, who, n) in [(&mut left, &a, 2), (&mut right, &b, 3)] {
            let Object::GCounter(c) = store.get_or_create("m", CrdtType::GCounter) else {
                unreachable!()
            };
            c.inc(who, n).unwrap();
        }
        let diffs = diff_stores(&left, &right, &[]);
        let full = render(Style::plain(), |out| {
            diff::write_diff(out, ("a.json", "b.json"), &diffs).unwrap()
        });
        assert!(
            full.starts_with("A = a.json   B = b.json\nm (g-counter): different"),
            "{full}"
        );
        assert!(
            full.contains("verdict: merge gives 5; both sides change"),
            "{full}"
        );
        let stat = render(Style::plain(), |out| diff::write_stat(out, &diffs).unwrap());
        assert_eq!(stat, "m  g-counter  concurrent  A=2 B=3 merge=5\n");
        let colored = render(COLOR, |out| {
            diff::write_diff(out, ("a", "b"), &diffs).unwrap()
        });
        assert!(
            colored.contains("\u{1b}[31mdifferent\u{1b}[0m"),
            "{colored}"
        );
    }

    #[test]
    fn a_map_is_shown_key_by_key() {
        let map = &objects()[5];
        let plain = render(Style::plain(), |out| {
            inspect::inspect_text(out, "flags", map).unwrap()
        });
        assert!(plain.contains("KEY        DOT        TIMESTAMP"), "{plain}");
        assert!(
            plain.contains(
                "ai-review  agent-1:4  2023-11-14T22:13:20.001Z  false  loses (concurrent)"
            ),
            "{plain}"
        );
        assert!(plain.contains("2 unsets and replaced writes"), "{plain}");
        let picture = visualize::viz_text(Style::plain(), "flags", map);
        assert!(
            picture.contains("ai-review ★ agent-2:1    2023-11-14T22:13:20.005Z  true"),
            "{picture}"
        );
        let dot = visualize::viz_dot(Style::plain(), "flags", map);
        assert!(
            dot.contains("\"agent-1:4\" -> \"key 0\" [label=\"loses\"];"),
            "{dot}"
        );
        // Two sides that wrote different keys and one key concurrently.
        let (a, b) = (id("agent-1"), id("agent-2"));
        let mut left = Store::new(a.clone());
        let mut right = Store::new(b.clone());
        for (store, who, key, t) in [(&mut left, &a, "x", 10), (&mut right, &b, "y", 20)] {
            let Object::Map(m) = store.get_or_create("flags", CrdtType::Map) else {
                unreachable!()
            };
            m.put(who, key, json!(1), t).unwrap();
            m.put(who, "shared", json!(who.as_str()), t).unwrap();
        }
        let diffs = diff_stores(&left, &right, &[]);
        let full = render(Style::plain(), |out| {
            diff::write_diff(out, ("a", "b"), &diffs).unwrap()
        });
        for want in [
            "\"shared\": A \"agent-1\" by agent-1 at 1970-01-01T00:00:00.010Z; B \"agent-2\" by agent-2 at 1970-01-01T00:00:00.020Z",
            "  agent-2's write wins (the later timestamp); agent-1's \"agent-1\" lost",
            "\"x\": A 1 by agent-1 at 1970-01-01T00:00:00.010Z; B —",
            "  A's write is one B has not seen; merge keeps it",
        ] {
            assert!(full.contains(want), "{want:?} not in\n{full}");
        }
    }

    #[test]
    fn show_and_inspect_share_their_header() {
        let o = &objects()[0];
        let show = render(Style::plain(), |out| {
            crate::cli::read::header(out, "n", o, true).unwrap()
        });
        assert_eq!(
            show,
            "name:    n\ntype:    g-counter (type conflict: this name has several types)\nvalue:   6\nversion: {agent-1: 1, agent-2: 1}\n"
        );
    }
}

//! `crdt merge --dry-run`: what merging files would change in each.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use crdt::diff::{Detail, Status, diff_stores};
use crdt::{Store, snapshot};
use serde_json::{Value, json};

use super::diff::write_text;
use super::*;
use crate::cli::files::read_snapshot;
use crate::cli::output::{Out, Report};

pub fn merge_dry_run(out: &mut Out<impl Write>, files: &[PathBuf]) -> Result<()> {
    let st = out.style();
    let inputs: Vec<(&PathBuf, Store)> = files
        .iter()
        .map(|f| Ok((f, read_snapshot(f)?)))
        .collect::<Result<_>>()?;
    let mut merged = inputs[0].1.clone();
    for (_, s) in &inputs[1..] {
        merged.merge(s);
    }
    let mut report = Vec::new();
    for (path, input) in &inputs {
        let mut changes: Vec<Value> = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        for n in diff_stores(input, &merged, &[]) {
            match &n.status {
                Status::Equal(_) => {}
                Status::OnlyA(_) => unreachable!("the merge has every input object"),
                Status::OnlyB(o) => {
                    lines.push(format!(
                        "{} ({}): gained from another file = {}",
                        n.name,
                        n.ty,
                        st.summary(&o.value_json(), 60)
                    ));
                    changes.push(json!({"name": n.name, "type": n.ty.as_str(), "change": "gained", "value": o.value_json()}));
                }
                Status::Different(od) => {
                    let mut what = format!(
                        "{} ({}): {} → {}",
                        n.name,
                        n.ty,
                        st.summary(&od.a.value_json(), 40),
                        st.summary(&od.b.value_json(), 40)
                    );
                    let mut extra = Vec::new();
                    match &od.detail {
                        Detail::Register(d) => match (d.a.first(), d.b.first()) {
                            (Some(mine), Some(win)) if mine != win => {
                                extra.push(format!(
                                    "its write {} loses to {}",
                                    write_text(st, mine),
                                    write_text(st, win)
                                ));
                            }
                            _ => {
                                for w in d.b.iter().skip(1).filter(|w| !d.a.contains(w)) {
                                    extra.push(format!("value unchanged; learns of the concurrent write {} that loses", write_text(st, w)));
                                }
                            }
                        },
                        Detail::Map(keys) => {
                            for k in keys {
                                let key = crdt::history::quoted(&k.key);
                                let d = &k.writes;
                                match (d.a.first(), d.b.first()) {
                                    (Some(mine), Some(win)) if mine != win => extra.push(format!(
                                        "{key}: its write {} loses to {}",
                                        write_text(st, mine),
                                        write_text(st, win)
                                    )),
                                    (Some(mine), None) => extra.push(format!(
                                        "{key}: drops its write {}: another replica unset the key after seeing it",
                                        write_text(st, mine)
                                    )),
                                    _ => {}
                                }
                            }
                        }
                        Detail::Set(elems) => {
                            for e in elems.iter().filter(|e| !e.a_dots.is_empty() && !e.kept) {
                                extra.push(format!("drops {}: another replica removed it after seeing its add ({})", st.cut(&e.value.to_string(), 40), dots_text(&e.a_dots)));
                            }
                        }
                        _ => {}
                    }
                    if !extra.is_empty() {
                        what.push_str(&format!("\n    {}", extra.join("\n    ")));
                    }
                    lines.push(what);
                    changes.push(json!({"name": n.name, "type": n.ty.as_str(), "change": "changed", "from": od.a.value_json(), "to": od.b.value_json(), "notes": extra}));
                }
            }
        }
        report.push((path.display().to_string(), lines, changes));
    }
    out.report(&DryRun {
        report: &report,
        merged: &merged,
    })?;
    Ok(())
}

/// `merge --dry-run`: per input file, what the merge changes in it (as
/// lines and as data), and the merged state.
struct DryRun<'a> {
    report: &'a [(String, Vec<String>, Vec<Value>)],
    merged: &'a Store,
}

impl Report for DryRun<'_> {
    fn json(&self) -> Value {
        let files: Vec<Value> = self
            .report
            .iter()
            .map(|(f, _, c)| json!({"file": f, "changes": c}))
            .collect();
        json!({"files": files, "objects": self.merged.len(), "merged": snapshot::to_value(self.merged)})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        let st = out.style();
        for (f, lines, _) in self.report {
            if lines.is_empty() {
                writeln!(out, "{}: unchanged by the merge", st.bold(f))?;
            } else {
                writeln!(out, "{}: {} objects change", st.bold(f), lines.len())?;
                for l in lines {
                    writeln!(out, "  {l}")?;
                }
            }
        }
        writeln!(
            out,
            "(dry run: nothing written; the merge has {} objects)",
            self.merged.len()
        )
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;
    use crdt::ReplicaId;

    #[test]
    fn a_dry_run_says_what_changes_per_file_and_writes_nothing() {
        let merged = Store::new(ReplicaId::new("agent-1").unwrap());
        let report = [
            ("a.json".to_string(), vec![], vec![]),
            (
                "b.json".to_string(),
                vec!["m (g-counter): 2 -> 5".to_string()],
                vec![json!({"name": "m", "change": "changed"})],
            ),
        ];
        let (text, doc) = printed(&DryRun {
            report: &report,
            merged: &merged,
        });
        assert_eq!(
            text,
            "a.json: unchanged by the merge\nb.json: 1 objects change\n  m (g-counter): 2 -> 5\n(dry run: nothing written; the merge has 0 objects)\n"
        );
        assert_eq!(doc["files"][1]["changes"][0]["name"], "m");
        assert_eq!(doc["objects"], 0);
    }
}

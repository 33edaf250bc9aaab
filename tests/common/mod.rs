//! What the integration tests share.
#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

mod serve;
#[allow(unused_imports)] // the tests that sync use it
pub use serve::*;

/// A scratch replica: its own directory and database (`state.db`), the
/// commands run in that directory with its `CRDT_STATE` and `CRDT_REPLICA`
/// and nothing else of the caller's `CRDT_*` or `NO_COLOR`.
pub struct Replica {
    pub dir: TempDir,
    pub id: &'static str,
    state: PathBuf,
}

impl Replica {
    pub fn new(id: &'static str) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        Replica { dir, id, state }
    }

    /// A replica whose database is at `state` (another disk, a shared file).
    pub fn at(id: &'static str, state: PathBuf) -> Replica {
        Replica {
            dir: tempfile::tempdir().unwrap(),
            id,
            state,
        }
    }

    pub fn state(&self) -> PathBuf {
        self.state.clone()
    }

    /// A file in its directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_crdt"));
        for var in ["CRDT_URL", "CRDT_NOW_MS", "CRDT_TOKEN", "NO_COLOR"] {
            c.env_remove(var);
        }
        c.env("CRDT_STATE", self.state())
            .env("CRDT_REPLICA", self.id)
            .current_dir(self.dir.path())
            .timeout(Duration::from_secs(60));
        c
    }

    /// Runs and returns stdout, asserting success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--json` and parses its stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs, whatever the outcome.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().unwrap()
    }

    /// The database as it is on disk, read-only.
    pub fn store(&self) -> crdt::Store {
        crdt::db::Db::open_read_only(&self.state)
            .unwrap()
            .load()
            .unwrap()
    }

    /// One value of an SQL query on the database.
    pub fn sql<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        rusqlite::Connection::open(&self.state)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// Statements run on the database behind crdt's back, as a user with
    /// `sqlite3` would.
    pub fn exec(&self, sql: &str) {
        rusqlite::Connection::open(&self.state)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    /// Runs and expects exit `code`; returns stderr.
    pub fn exits(&self, code: i32, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

/// Each replica exports everything and imports the other's file; the
/// files (a.json in `a`'s folder, b.json in `b`'s).
#[allow(dead_code)]
pub fn exchange(a: &Replica, b: &Replica) -> (PathBuf, PathBuf) {
    let (af, bf) = (a.file("a.json"), b.file("b.json"));
    a.ok(&["export", "-o", af.to_str().unwrap()]);
    b.ok(&["export", "-o", bf.to_str().unwrap()]);
    a.ok(&["import", bf.to_str().unwrap()]);
    b.ok(&["import", af.to_str().unwrap()]);
    (af, bf)
}

/// The `objects` of a snapshot `r` exports of `select` (all when empty):
/// what two replicas that converged hold alike, byte for byte.
#[allow(dead_code)]
pub fn exported_objects(r: &Replica, select: &[&str]) -> Value {
    let file = r.file("exported.json");
    let mut args = vec!["export"];
    args.extend_from_slice(select);
    args.extend(["-o", file.to_str().unwrap()]);
    r.ok(&args);
    serde_json::from_str::<Value>(&std::fs::read_to_string(&file).unwrap()).unwrap()["objects"]
        .clone()
}

/// Checks `value` against `docs/json/{schema}.schema.json`, the documented
/// shape of a command's `--json` output.
pub fn check_schema(schema: &str, value: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/json")
        .join(format!("{schema}.schema.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} is missing", path.display()));
    let validator = jsonschema::validator_for(&serde_json::from_str(&text).unwrap())
        .unwrap_or_else(|e| panic!("{schema}.schema.json does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{schema}: {errors:#?}\n{value:#}");
}

/// The `$ crdt ...` examples of a README section with their outputs: each
/// command line, its shell words, and what it prints.
pub fn readme_examples(readme: &str, section: &str) -> Vec<(String, Vec<String>, String)> {
    let start = readme
        .find(section)
        .unwrap_or_else(|| panic!("no {section} in the README"));
    let rest = &readme[start + section.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    let mut out = Vec::new();
    let mut in_block = false;
    let mut current: Option<(String, Vec<String>, String)> = None;
    for line in rest[..end].lines() {
        if line.starts_with("```") {
            in_block = line == "```console";
            if let Some(c) = current.take() {
                out.push(c);
            }
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            if let Some(c) = current.take() {
                out.push(c);
            }
            let words = shlex::split(cmd).unwrap_or_else(|| panic!("cannot split {cmd:?}"));
            current = Some((line.to_string(), words, String::new()));
        } else if let Some((_, _, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// Runs the `$ crdt ...` examples of a README section (at least `min` of
/// them) through `run` (the example's index and its words after `crdt`;
/// it returns the stdout) and checks each prints what the README says.
/// With `UPDATE_README` set, rewrites the outputs from the real ones
/// instead (`test` names the test binary, for the hint).
pub fn check_readme(
    section: &str,
    min: usize,
    test: &str,
    mut run: impl FnMut(usize, &[&str]) -> String,
) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let mut readme = std::fs::read_to_string(&path).unwrap();
    let examples = readme_examples(&readme, section);
    assert!(
        examples.len() >= min,
        "the README's examples in {section:?} were not found"
    );
    let update = std::env::var_os("UPDATE_README").is_some();
    for (i, (line, words, want)) in examples.into_iter().enumerate() {
        assert_eq!(words[0], "crdt", "{words:?}");
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let got = run(i, &args);
        if update {
            readme = readme.replacen(&format!("{line}\n{want}"), &format!("{line}\n{got}"), 1);
        } else {
            assert_eq!(
                got, want,
                "README: {line} (UPDATE_README=1 cargo test --test {test} readme rewrites it)"
            );
        }
    }
    if update {
        std::fs::write(&path, readme).unwrap();
    }
}

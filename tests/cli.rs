//! The real binary, driven as a user would: every command, `--json`, errors,
//! concurrency, crashes and the checked-in completions.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};

mod common;

use common::Replica;

/// What the CLI tests read of a replica besides its commands' output.
trait Held {
    fn state_bytes(&self) -> Vec<u8>;
}

impl Held for Replica {
    /// What the replica holds, whole: its snapshot, and its history rows
    /// (empty when there is no database yet).
    fn state_bytes(&self) -> Vec<u8> {
        if !self.state().exists() {
            return Vec::new();
        }
        let db = crdt::db::Db::open_read_only(&self.state()).unwrap();
        let conn = rusqlite::Connection::open(self.state()).unwrap();
        let mut stmt = conn.prepare("SELECT * FROM history ORDER BY id").unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                Ok(format!(
                    "{} {} {} {} {} {}",
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        format!(
            "{}\n{}",
            crdt::snapshot::encode(&db.load().unwrap()),
            rows.join("\n")
        )
        .into_bytes()
    }
}

mod change {
    use super::*;

    #[test]
    fn inc_creates_a_g_counter_and_prints_the_total() {
        let r = Replica::new("agent-1");
        assert_eq!(r.ok(&["inc", "metrics:requests"]), "1\n");
        assert_eq!(r.ok(&["inc", "metrics:requests", "41"]), "42\n");
        assert_eq!(r.ok(&["get", "metrics:requests"]), "42\n");
        assert_eq!(r.json(&["show", "metrics:requests"])["type"], "g-counter");
    }

    #[test]
    fn inc_with_type_and_dec_make_pn_counters() {
        let r = Replica::new("agent-1");
        assert_eq!(
            r.ok(&["inc", "--type", "pn-counter", "resources:gpu", "30"]),
            "30\n"
        );
        assert_eq!(r.ok(&["dec", "resources:gpu", "50"]), "-20\n");
        assert_eq!(r.ok(&["dec", "budget"]), "-1\n");
        assert_eq!(r.json(&["show", "budget"])["type"], "pn-counter");
    }

    /// #16 item 1: a counter's value is a number however large, in text, in
    /// JSON and for `wait`.
    #[test]
    fn counter_values_past_64_bits_are_numbers() {
        let max = "18446744073709551615";
        let a = Replica::new("agent-1");
        let b = Replica::new("agent-2");
        a.ok(&["inc", "big:c", max]);
        b.ok(&["inc", "big:c", max]);
        a.ok(&["dec", "big:low", max]);
        b.ok(&["dec", "big:low", max]);
        let bf = b.dir.path().join("b.json");
        b.ok(&["export", "-o", bf.to_str().unwrap()]);
        a.ok(&["import", bf.to_str().unwrap()]);
        assert_eq!(a.ok(&["get", "big:c"]), "36893488147419103230\n");
        assert_eq!(a.ok(&["get", "big:low"]), "-36893488147419103230\n");
        let text = a.ok(&["--json", "get", "big:c"]);
        assert!(
            text.contains("36893488147419103230") && !text.contains("\"3689"),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["value"].is_number(), "{v}");
        assert_eq!(
            v["value"].as_number().and_then(serde_json::Number::as_u128),
            Some(36893488147419103230)
        );
        // `wait` compares exactly: a bound one above the value is not met.
        a.ok(&["wait", "big:c", "--until", ">= 5", "--timeout", "5"]);
        a.ok(&[
            "wait",
            "big:c",
            "--until",
            "== 36893488147419103230",
            "--timeout",
            "5",
        ]);
        a.ok(&[
            "wait",
            "big:low",
            "--until",
            "< -36893488147419103229",
            "--timeout",
            "5",
        ]);
        a.cmd()
            .args(["wait", "big:c", "--until", ">= 36893488147419103231"])
            .args(["--timeout", "0.2"])
            .assert()
            .code(1);
        // The batch's JSON and show's JSON carry the number too.
        let out = a
            .cmd()
            .args(["--json", "batch"])
            .write_stdin("get big:c\n")
            .assert()
            .success();
        let batch = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(
            batch.contains("36893488147419103230") && !batch.contains("\"3689"),
            "{batch}"
        );
        let show = a.ok(&["--json", "show", "big:c"]);
        assert!(
            show.contains("36893488147419103230") && !show.contains("\"3689"),
            "{show}"
        );
    }

    #[test]
    fn set_parses_json_or_takes_a_string() {
        let r = Replica::new("agent-1");
        assert_eq!(
            r.ok(&["set", "config:global", r#"{"b": 2, "a": [1, 2.5]}"#]),
            "{\"a\":[1,2.5],\"b\":2}\n"
        );
        assert_eq!(r.ok(&["set", "config:mode", "fast"]), "\"fast\"\n");
        assert_eq!(
            r.ok(&["set", "--string", "config:version", "1.10"]),
            "\"1.10\"\n"
        );
        // A number is kept as written (serde_json's arbitrary precision).
        assert_eq!(r.ok(&["set", "config:version", "1.10"]), "1.10\n");
    }

    #[test]
    fn a_value_that_looks_like_json_but_is_broken_is_refused() {
        let r = Replica::new("agent-1");
        r.ok(&["set", "config:global", "1"]);
        let before = r.state_bytes();
        for (args, at) in [
            (
                vec!["set", "config:global", r#"{"a": 1"#],
                "line 1 column 7",
            ),
            (vec!["set", "config:global", "[1, 2,]"], "line 1 column 7"),
            (
                vec!["add", "tasks:active", "ok", r#"{"id": }"#],
                "line 1 column 8",
            ),
        ] {
            let out = r.cmd().args(&args).assert().code(2).get_output().clone();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("not valid JSON") && err.contains(at),
                "{args:?}: {err}"
            );
            assert!(err.contains("--string"), "{err}");
        }
        assert_eq!(r.state_bytes(), before, "the state file is untouched");
        // Taken as text when asked to.
        assert_eq!(
            r.ok(&["set", "--string", "config:global", r#"{"a": 1"#]),
            "\"{\\\"a\\\": 1\"\n"
        );
    }

    #[test]
    fn add_and_rm_change_an_or_set() {
        let r = Replica::new("agent-1");
        r.ok(&["add", "tasks:active", "task-1", "task-2", r#"{"id": 3}"#]);
        assert_eq!(
            r.ok(&["rm", "tasks:active", "task-1"]),
            "[\"task-2\",{\"id\":3}]\n"
        );
        assert_eq!(r.ok(&["get", "tasks:active"]), "\"task-2\"\n{\"id\":3}\n");
        assert_eq!(
            r.json(&["get", "tasks:active"])["value"],
            json!(["task-2", {"id": 3}])
        );
    }

    #[test]
    fn text_commands_count_characters_not_bytes() {
        let r = Replica::new("agent-1");
        assert_eq!(r.ok(&["append", "document:main", "héllo"]), "héllo\n");
        assert_eq!(
            r.ok(&["insert", "document:main", "5", " wörld"]),
            "héllo wörld\n"
        );
        assert_eq!(r.ok(&["delete", "document:main", "1"]), "hllo wörld\n");
        assert_eq!(r.ok(&["delete", "document:main", "4", "6"]), "hllo\n");
        assert_eq!(r.ok(&["insert", "document:main", "0", "😀"]), "😀hllo\n");
    }

    #[test]
    fn new_creates_an_empty_object_of_any_type() {
        let r = Replica::new("agent-1");
        for (name, ty, value) in [
            ("a", "g-counter", json!(0)),
            ("b", "pn-counter", json!(0)),
            ("c", "lww-register", Value::Null),
            ("d", "or-set", json!([])),
            ("e", "rga", json!("")),
        ] {
            r.ok(&["new", name, "--type", ty]);
            let shown = r.json(&["show", name]);
            assert_eq!(
                (shown["type"].clone(), shown["value"].clone()),
                (json!(ty), value)
            );
        }
        r.cmd()
            .args(["new", "a", "--type", "rga"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("already exists"));
    }

    #[test]
    fn change_commands_print_json_with_the_flag() {
        let r = Replica::new("agent-1");
        assert_eq!(
            r.json(&["inc", "n"]),
            json!({"name": "n", "type": "g-counter", "value": 1})
        );
    }
}

mod errors {
    use super::*;

    fn assert_untouched(r: &Replica, args: &[&str], expect: &[&str]) {
        let before = r.state_bytes();
        let assert = r.cmd().args(args).assert().code(2);
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert!(stderr.starts_with("crdt: error: "), "{stderr}");
        for e in expect {
            assert!(stderr.contains(e), "{args:?}: {stderr:?} lacks {e:?}");
        }
        assert_eq!(r.state_bytes(), before, "{args:?} changed the state file");
    }

    #[test]
    fn wrong_types_name_both_types_and_leave_the_file_untouched() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "metrics:requests"]);
        r.ok(&["add", "tasks:active", "t"]);
        assert_untouched(
            &r,
            &["dec", "metrics:requests"],
            &["pn-counter", "g-counter", "hint:"],
        );
        assert_untouched(
            &r,
            &["add", "metrics:requests", "x"],
            &["or-set", "g-counter"],
        );
        assert_untouched(&r, &["inc", "tasks:active"], &["g-counter", "or-set"]);
        assert_untouched(&r, &["append", "tasks:active", "x"], &["rga", "or-set"]);
        assert_untouched(
            &r,
            &["inc", "--type", "pn-counter", "metrics:requests"],
            &["g-counter", "pn-counter"],
        );
    }

    #[test]
    fn bad_input_is_refused_without_writing() {
        let r = Replica::new("agent-1");
        r.ok(&["append", "doc", "abc"]);
        assert_untouched(
            &r,
            &["insert", "doc", "4", "x"],
            &["position 4", "length 3"],
        );
        assert_untouched(&r, &["delete", "doc", "2", "5"], &["past the end"]);
        assert_untouched(&r, &["inc", "n", "0"], &["at least 1"]);
        r.ok(&["dec", "low", "18446744073709551615"]);
        assert_untouched(
            &r,
            &["dec", "low", "1"],
            &["subtracting 1 from -18446744073709551615"],
        );
        assert_untouched(&r, &["inc", "bad name"], &["invalid name"]);
        assert_untouched(&r, &["get", "missing"], &["no object named missing"]);
        // A set not here yet, or a member it lacks, may still arrive: rm
        // changes nothing, exits 0, and says so.
        let before = r.state_bytes();
        let out = r.cmd().args(["rm", "missing", "x"]).assert().success();
        let o = out.get_output();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "[]\n");
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("no object named missing (yet): nothing was removed"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(r.state_bytes(), before, "rm of nothing wrote something");
        assert!(!r.ok(&["ls"]).contains("missing"));
        r.ok(&["add", "s", "a"]);
        let out = r.cmd().args(["rm", "s", "b", "a"]).assert().success();
        let o = out.get_output();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "[]\n");
        assert!(String::from_utf8_lossy(&o.stderr).contains("s has no member b"));
        // A failed first change does not leave an empty object behind.
        assert_untouched(&r, &["insert", "other", "3", "x"], &["position 3"]);
        assert!(!r.ok(&["ls"]).contains("other"));
    }

    #[test]
    fn usage_errors_exit_2() {
        let r = Replica::new("agent-1");
        r.cmd()
            .args(["inc"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("NAME"));
        r.cmd().args(["frobnicate"]).assert().code(2);
        r.cmd().args(["inc", "x", "-3"]).assert().code(2);
    }

    #[test]
    fn a_damaged_row_is_reported_with_its_object_and_field_and_kept() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n"]);
        r.ok(&["add", "s", "x"]);
        r.exec(r#"UPDATE objects SET state = '{"counts": {"agent-1": {"seq": 1, "count": 1,,}}}' WHERE name = 'n'"#);
        let state = r.state().display().to_string();
        let before = std::fs::read(r.state()).unwrap();
        for args in [&["inc", "n"][..], &["get", "n"], &["ls"], &["export"]] {
            let out = r.cmd().args(args).assert().code(2);
            let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
            for want in [state.as_str(), "\"n\" (g-counter)", "damaged", "column"] {
                assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
            }
        }
        // Other objects still work, and nothing was written.
        assert_eq!(r.ok(&["get", "s"]), "\"x\"\n");
        assert_eq!(std::fs::read(r.state()).unwrap(), before);
        // A row a decoder refuses (a forged state) is named with its field.
        r.exec(r#"UPDATE objects SET state = '{"counts": {"agent-1": {"seq": 0, "count": 5}}}' WHERE name = 'n'"#);
        let out = r.cmd().args(["get", "n"]).assert().code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("state.counts"), "{err}");
        // A file that is not a replica at all.
        std::fs::write(r.state(), "not a database\n").unwrap();
        let out = r.cmd().args(["inc", "n"]).assert().code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("is not a crdt replica"), "{err}");
        assert_eq!(std::fs::read(r.state()).unwrap(), b"not a database\n");
    }

    #[test]
    fn one_state_file_is_one_replica() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n"]);
        let before = r.state_bytes();
        r.cmd()
            .args(["--replica", "agent-2", "inc", "n"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("belongs to replica \"agent-1\""));
        assert_eq!(r.state_bytes(), before);
        r.cmd()
            .args(["--replica", "bad id", "inc", "m"])
            .env("CRDT_STATE", r.dir.path().join("other.json"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid replica id"));
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        let r = Replica::new("agent-1");
        let lines: String = (0..3000).map(|i| format!("inc metrics:n{i}\n")).collect();
        r.cmd().arg("batch").write_stdin(lines).assert().success();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; '{}' ls | head -1",
                env!("CARGO_BIN_EXE_crdt")
            ))
            .env("CRDT_STATE", r.state())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

mod read {
    use super::*;

    /// ls, export and diff select alike: a name or a namespace, never a
    /// bare prefix; selecting nothing in a diff is an error.
    #[test]
    fn one_selector_rule() {
        let r = Replica::new("agent-1");
        for n in ["team-a:x", "team-ab:y", "team-a", "other"] {
            r.ok(&["inc", n]);
        }
        let names = |v: Value| -> Vec<String> {
            v["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(r.json(&["ls", "team-a"])), ["team-a", "team-a:x"]);
        assert_eq!(names(r.json(&["ls", "team-a:"])), ["team-a:x"]);
        let export = r.ok(&["export", "team-a"]);
        assert!(export.contains("team-a:x") && !export.contains("team-ab"));
        std::fs::write(r.dir.path().join("a.json"), r.ok(&["export"])).unwrap();
        let out = r
            .cmd()
            .args(["diff", "a.json", "a.json", "nomatch:"])
            .assert()
            .code(2);
        assert!(
            String::from_utf8_lossy(&out.get_output().stderr).contains("matches nomatch:"),
            "{:?}",
            out.get_output()
        );
        r.cmd()
            .args(["diff", "a.json", "a.json", "team-a"])
            .assert()
            .code(0);
    }

    #[test]
    fn ls_lists_a_namespace_plainly_when_piped() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "metrics:requests", "3"]);
        r.ok(&["inc", "metrics:errors"]);
        r.ok(&["set", "config:global", "1"]);
        let out = r.ok(&["ls", "metrics:"]);
        assert_eq!(
            out,
            "metrics:errors    g-counter  1\nmetrics:requests  g-counter  3\n"
        );
        assert!(!out.contains('\u{1b}'), "no colors when piped");
        let all = r.json(&["ls"])["objects"].clone();
        assert_eq!(all.as_array().unwrap().len(), 3);
        assert_eq!(
            all[0],
            json!({"name": "config:global", "type": "lww-register", "value": 1, "conflict": false})
        );
    }

    #[test]
    fn show_gives_version_and_peers() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n", "2"]);
        r.ok(&["inc", "n", "3"]);
        let shown = r.json(&["show", "n"]);
        assert_eq!(shown["version"], json!({"agent-1": 2}));
        assert_eq!(
            shown["peers"],
            json!({"agent-1": {"count": 5, "increments": 2}})
        );
        assert_eq!(shown["conflict"], false);
        let text = r.ok(&["show", "n"]);
        assert!(text.contains("version: {agent-1: 2}"), "{text}");
    }

    #[test]
    fn info_describes_the_database() {
        let r = Replica::new("agent-1");
        let fresh = r.json(&["info"]);
        assert_eq!(fresh["exists"], false);
        assert!(!r.state().exists(), "info created the database");
        r.ok(&["inc", "n"]);
        r.ok(&["add", "s", "a", "b"]);
        r.ok(&["inc", "n"]);
        let info = r.json(&["info"]);
        assert_eq!(info["replica"], "agent-1");
        assert_eq!(info["objects"], 2);
        assert_eq!(info["history"], 3);
        let wal = std::fs::metadata(r.dir.path().join("state.db-wal")).map_or(0, |m| m.len());
        let size = std::fs::metadata(r.state()).unwrap().len() + wal;
        assert_eq!(info["bytes"], json!(size));
        assert_eq!(info["state"], json!(r.state().display().to_string()));
        let text = r.ok(&["info"]);
        assert!(text.contains("history:   3 rows"), "{text}");
        assert_eq!(r.ok(&["get", "n"]), "2\n");
    }

    #[test]
    fn another_replicas_database_and_old_state_file_are_read_whole() {
        let (a, b) = (Replica::new("agent-1"), Replica::new("agent-2"));
        a.ok(&["inc", "n"]);
        a.ok(&["inc", "n", "4"]);
        let state = a.state().display().to_string();
        b.ok(&["import", &state]);
        assert_eq!(b.ok(&["get", "n"]), "5\n");
        assert_eq!(
            b.ok(&["inspect", "n", "--from", &state]),
            a.ok(&["inspect", "n"])
        );
        // A JSON state file of an earlier version, with its journal.
        let old = a.dir.path().join("old.json");
        std::fs::write(&old, a.ok(&["export"])).unwrap();
        let line = r#"{"objects":[{"name":"m","type":"g-counter","state":{"counts":{"agent-1":{"seq":1,"count":7}}}}]}"#;
        std::fs::write(a.dir.path().join("old.json.log"), format!("{line}\n")).unwrap();
        b.ok(&["import", old.to_str().unwrap()]);
        assert_eq!(b.ok(&["get", "m"]), "7\n");
    }

    #[test]
    fn colors_follow_the_flag() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n"]);
        let colored = r.ok(&["--color", "always", "show", "n"]);
        assert!(colored.contains('\u{1b}'), "{colored:?}");
        let plain = r.ok(&["--color", "never", "show", "n"]);
        assert!(!plain.contains('\u{1b}'));
    }

    #[test]
    fn the_default_state_file_is_under_xdg_data_home_or_home() {
        let home = tempfile::tempdir().unwrap();
        let run = |xdg: Option<&Path>| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_crdt"));
            c.env_remove("CRDT_STATE")
                .env_remove("CRDT_REPLICA")
                .env_remove("XDG_DATA_HOME")
                .env("HOME", home.path());
            if let Some(x) = xdg {
                c.env("XDG_DATA_HOME", x);
            }
            c.args(["inc", "metrics:requests"]).assert().success();
        };
        run(None);
        assert!(home.path().join(".local/share/crdt/replica.db").exists());
        let xdg = home.path().join("xdg");
        run(Some(&xdg));
        assert!(xdg.join("crdt/replica.db").exists());
        // A generated replica id is stored and kept.
        let db = crdt::db::Db::open_read_only(&xdg.join("crdt/replica.db")).unwrap();
        assert!(db.replica().as_str().len() > 8, "{}", db.replica());
    }
}

mod files {
    use super::*;

    #[test]
    fn two_agents_exchange_snapshots_and_both_read_two() {
        let a = Replica::new("agent-1");
        let b = Replica::new("agent-2");
        a.ok(&["inc", "metrics:requests"]);
        b.ok(&["inc", "metrics:requests"]);
        let a_file = a.dir.path().join("a.json");
        let b_file = b.dir.path().join("b.json");
        a.ok(&["export", "-o", a_file.to_str().unwrap()]);
        b.ok(&["export", "-o", b_file.to_str().unwrap()]);
        let imported = a.json(&["import", b_file.to_str().unwrap()]);
        assert_eq!(imported["imported"][0]["changed"], 1);
        b.ok(&["import", a_file.to_str().unwrap()]);
        assert_eq!(a.ok(&["get", "metrics:requests"]), "2\n");
        assert_eq!(b.ok(&["get", "metrics:requests"]), "2\n");
        // Importing again changes nothing.
        let again = a.json(&["import", b_file.to_str().unwrap()]);
        assert_eq!(again["imported"][0]["changed"], 0);
    }

    #[test]
    fn export_selects_names_and_namespaces_and_writes_stdout() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "metrics:a"]);
        r.ok(&["inc", "metrics:b"]);
        r.ok(&["set", "config:global", "1"]);
        let v: Value = serde_json::from_str(&r.ok(&["export", "metrics"])).unwrap();
        let names: Vec<&str> = v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["metrics:a", "metrics:b"]);
        let v: Value =
            serde_json::from_str(&r.ok(&["export", "config:global", "-o", "-"])).unwrap();
        assert_eq!(v["objects"].as_array().unwrap().len(), 1);
        r.cmd()
            .args(["export", "nothing:here"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("nothing matches"));
    }

    #[test]
    fn merge_combines_files_without_touching_the_replica() {
        let a = Replica::new("agent-1");
        let b = Replica::new("agent-2");
        a.ok(&["add", "tasks:active", "t1"]);
        b.ok(&["add", "tasks:active", "t2"]);
        let af = a.dir.path().join("a.json");
        let bf = b.dir.path().join("b.json");
        a.ok(&["export", "-o", af.to_str().unwrap()]);
        b.ok(&["export", "-o", bf.to_str().unwrap()]);
        let before = a.state_bytes();
        let out = a.dir.path().join("m.json");
        a.ok(&[
            "merge",
            af.to_str().unwrap(),
            bf.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(a.state_bytes(), before);
        let c = Replica::new("agent-3");
        c.ok(&["import", out.to_str().unwrap()]);
        assert_eq!(c.ok(&["get", "tasks:active"]), "\"t1\"\n\"t2\"\n");
        // Merge order does not matter: the objects are byte for byte the same
        // (the output takes the replica id of the first file).
        let m1: Value =
            serde_json::from_str(&a.ok(&["merge", af.to_str().unwrap(), bf.to_str().unwrap()]))
                .unwrap();
        let m2: Value =
            serde_json::from_str(&a.ok(&["merge", bf.to_str().unwrap(), af.to_str().unwrap()]))
                .unwrap();
        assert_eq!(m1["objects"], m2["objects"]);
        assert_eq!(
            (m1["replica"].as_str(), m2["replica"].as_str()),
            (Some("agent-1"), Some("agent-2"))
        );
    }

    #[test]
    fn a_bad_snapshot_names_the_file_and_imports_nothing() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n"]);
        let bad = r.dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"format": "crdt-snapshot", "version": 7}"#).unwrap();
        let before = r.state_bytes();
        r.cmd()
            .args(["import", bad.to_str().unwrap()])
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains("bad.json is not a valid snapshot")
                    .and(predicate::str::contains("version 7")),
            );
        assert_eq!(r.state_bytes(), before);
    }

    #[test]
    fn type_conflicts_are_kept_and_shown() {
        let a = Replica::new("agent-1");
        let b = Replica::new("agent-2");
        a.ok(&["inc", "votes"]);
        b.ok(&["add", "votes", "yes"]);
        let bf = b.dir.path().join("b.json");
        b.ok(&["export", "-o", bf.to_str().unwrap()]);
        a.ok(&["import", bf.to_str().unwrap()]);
        let ls = a.json(&["ls"])["objects"].clone();
        assert_eq!(ls.as_array().unwrap().len(), 2);
        assert!(ls.as_array().unwrap().iter().all(|o| o["conflict"] == true));
        // Each command acts on the object of its own type.
        assert_eq!(a.ok(&["inc", "votes"]), "2\n");
        assert_eq!(a.ok(&["add", "votes", "no"]), "[\"no\",\"yes\"]\n");
        a.cmd()
            .args(["get", "votes"])
            .assert()
            .success()
            .stderr(predicate::str::contains("different types"));
        assert_eq!(a.json(&["info"])["conflicts"], 1);
        // One JSON object, whatever the name holds.
        let got = a.json(&["get", "votes"]);
        assert_eq!(got["conflict"], true, "{got}");
        assert_eq!(got["objects"].as_array().map(Vec::len), Some(2), "{got}");
        assert_eq!(a.json(&["inspect", "votes"])["conflict"], true);
    }
}

mod batch {
    use super::*;

    #[test]
    fn applies_every_line_with_one_write() {
        let r = Replica::new("agent-1");
        let script = "# comment\ninc metrics:requests\ninc metrics:requests 4\n\nadd tasks:active 'task one' task-2\nset config:global '{\"a\": 1}'\nappend doc 'Hello'\ninsert doc 5 ', World'\nget metrics:requests\n";
        let out = r.cmd().arg("batch").write_stdin(script).assert().success();
        assert_eq!(
            String::from_utf8(out.get_output().stdout.clone()).unwrap(),
            "5\n"
        );
        assert!(
            String::from_utf8(out.get_output().stderr.clone())
                .unwrap()
                .contains("7 applied, 0 failed")
        );
        assert_eq!(r.ok(&["get", "doc"]), "Hello, World\n");
        assert_eq!(r.ok(&["get", "tasks:active"]), "\"task one\"\n\"task-2\"\n");
        // With --json, what the get lines read is in the document.
        let out = r
            .cmd()
            .args(["--json", "batch"])
            .write_stdin("get doc\ninc metrics:requests\nget metrics:requests\nget nope\n")
            .assert()
            .code(2);
        let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(
            v["gets"],
            json!([
                {"line": 1, "name": "doc", "type": "rga", "value": "Hello, World"},
                {"line": 3, "name": "metrics:requests", "type": "g-counter", "value": 6}
            ])
        );
        assert_eq!(v["errors"][0]["line"], 4);
    }

    #[test]
    fn reports_failing_lines_and_applies_the_rest() {
        let r = Replica::new("agent-1");
        let script = "inc n\ndec n\ninc n 'unclosed\nls\ninc n\n";
        let out = r
            .cmd()
            .args(["--json", "batch"])
            .write_stdin(script)
            .assert()
            .code(2);
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(
            stderr.contains("line 2: `dec` needs a pn-counter"),
            "{stderr}"
        );
        assert!(stderr.contains("line 3: unbalanced quotes"), "{stderr}");
        assert!(stderr.contains("line 4: `ls` is not allowed"), "{stderr}");
        let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(
            (report["applied"].clone(), report["failed"].clone()),
            (json!(2), json!(3))
        );
        assert_eq!(report["errors"][0]["line"], 2);
        assert_eq!(r.ok(&["get", "n"]), "2\n");
    }

    #[test]
    fn stop_on_error_saves_nothing() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n"]);
        let before = r.state_bytes();
        r.cmd()
            .args(["batch", "--stop-on-error"])
            .write_stdin("inc n\nget n\ninc n 0\ninc n\n")
            .assert()
            .code(2)
            // The get read a value that was never saved: not printed.
            .stdout("")
            .stderr(
                predicate::str::contains("line 3:")
                    .and(predicate::str::contains("stopped at line 3")),
            );
        assert_eq!(r.state_bytes(), before);
    }

    #[test]
    fn reads_a_file() {
        let r = Replica::new("agent-1");
        let f = r.dir.path().join("ops.txt");
        std::fs::write(&f, "inc a\ninc a\n").unwrap();
        r.cmd()
            .args(["batch", f.to_str().unwrap()])
            .assert()
            .success();
        assert_eq!(r.ok(&["get", "a"]), "2\n");
    }
}

mod durability {
    use super::*;

    #[test]
    fn eight_processes_incrementing_one_file_lose_nothing() {
        let r = Replica::new("agent-1");
        r.ok(&["new", "metrics:requests", "--type", "g-counter"]);
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let state = r.state();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let status = std::process::Command::new(env!("CARGO_BIN_EXE_crdt"))
                            .args(["inc", "metrics:requests"])
                            .env("CRDT_STATE", &state)
                            .stdout(Stdio::null())
                            .status()
                            .unwrap();
                        assert!(status.success());
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(r.ok(&["get", "metrics:requests"]), "400\n");
    }

    /// Each change is one SQLite transaction: a kill at any moment keeps
    /// every acknowledged change and never leaves a database that fails to load.
    #[test]
    fn kill_9_during_changes_keeps_every_acknowledged_one() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n"]);
        let mut acked = 1u64;
        for i in 0..60u64 {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crdt"))
                .args(["inc", "n"])
                .env("CRDT_STATE", r.state())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(500 * (i % 20)));
            let _ = child.kill(); // SIGKILL; it may have finished already
            let finished = child.wait().unwrap().success();
            let value: u64 = r.ok(&["get", "n"]).trim().parse().unwrap();
            if finished {
                acked += 1;
                assert_eq!(value, acked, "an acknowledged change was lost");
            } else {
                assert!(
                    value == acked || value == acked + 1,
                    "{value} after {acked}"
                );
                acked = value;
            }
        }
        assert!(acked > 5, "no change finished before its kill: {acked}");
        assert_eq!(r.ok(&["inc", "n"]), format!("{}\n", acked + 1));
    }

    #[test]
    fn kill_9_during_a_large_batch_leaves_the_old_or_the_new_state() {
        let r = Replica::new("agent-1");
        r.ok(&["inc", "n"]);
        let old = r.state_bytes();
        const N: usize = 50_000;
        let script: String = (0..N).map(|i| format!("add big:set item-{i}\n")).collect();
        let ops = r.dir.path().join("ops.txt");
        std::fs::write(&ops, script).unwrap();
        let batch = |state: &Path| {
            std::process::Command::new(env!("CARGO_BIN_EXE_crdt"))
                .args(["batch", ops.to_str().unwrap()])
                .env("CRDT_STATE", state)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        // How long a whole run takes here, on a copy.
        let copy = r.dir.path().join("copy.db");
        let start = Instant::now();
        assert!(batch(&copy).wait().unwrap().success());
        let full = start.elapsed();
        // Kill at moments spread over the run, the write near its end included.
        for fraction in [0.2, 0.6, 0.85, 0.92, 0.96, 0.98, 1.0, 1.05] {
            let mut child = batch(&r.state());
            std::thread::sleep(full.mul_f64(fraction));
            let _ = child.kill(); // SIGKILL; it may have finished already
            child.wait().unwrap();
            let now = r.state_bytes();
            let store = crdt::db::Db::open_read_only(&r.state())
                .and_then(|db| db.load())
                .unwrap_or_else(|e| {
                    panic!("damaged database after a kill at {fraction} of the run: {e}")
                });
            let members = store
                .get("big:set", crdt::CrdtType::OrSet)
                .map(|o| o.value_json().as_array().unwrap().len());
            assert!(
                now == old || members == Some(N),
                "a partial batch was saved"
            );
        }
        let start = Instant::now();
        r.ok(&["inc", "n"]);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lock was released by the killed process"
        );
    }
}

mod generated {
    use super::*;

    #[test]
    fn completions_and_man_page_are_fresh() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let r = Replica::new("agent-1");
        for (args, file) in [
            (vec!["completions", "bash"], "completions/crdt.bash"),
            (vec!["completions", "zsh"], "completions/_crdt"),
            (vec!["completions", "fish"], "completions/crdt.fish"),
            (vec!["completions", "elvish"], "completions/crdt.elv"),
            (vec!["completions", "powershell"], "completions/_crdt.ps1"),
            (vec!["manpage"], "docs/man/crdt.1"),
        ] {
            let fresh = r.ok(&args);
            let checked_in = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            assert!(
                fresh == checked_in,
                "{file} is stale: regenerate it with scripts/gen-completions.sh and commit it"
            );
        }
    }

    /// What the completion scripts get back from `crdt` for the words
    /// before the cursor (the last word is the one being completed).
    fn complete(r: &Replica, shell: &str, words: &[&str]) -> Vec<String> {
        let out = r
            .cmd()
            .env("CRDT_COMPLETE", shell)
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .env("_CLAP_IFS", "\n")
            .arg("--")
            .args(words)
            .assert()
            .success()
            .get_output()
            .clone();
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// #16 item 8: object names complete from the local replica (the one
    /// `--state` names on the line being completed, else CRDT_STATE); no
    /// hidden command and no file names where a name or an expression goes.
    #[test]
    fn object_names_complete_from_the_replica() {
        let r = Replica::new("agent-1");
        // No replica yet: nothing, silently, and none is created.
        assert_eq!(
            complete(&r, "bash", &["crdt", "get", "met"]),
            Vec::<String>::new()
        );
        assert!(!r.state().exists());
        r.ok(&["inc", "metrics:requests"]);
        r.ok(&["inc", "metrics:errors"]);
        r.ok(&["add", "tasks:active", "t1"]);
        std::fs::write(r.dir.path().join("metrics.txt"), "a file").unwrap();
        assert_eq!(
            complete(&r, "bash", &["crdt", "get", "met"]),
            ["metrics:errors", "metrics:requests"]
        );
        assert_eq!(
            complete(&r, "bash", &["crdt", "export", "tasks:active", "metrics:r"]),
            ["metrics:requests"]
        );
        assert_eq!(
            complete(&r, "fish", &["crdt", "show", "ta"]),
            ["tasks:active"]
        );
        // --state on the line wins over CRDT_STATE.
        let other = Replica::new("agent-2");
        other.ok(&["inc", "other:x"]);
        let path = other.state();
        let path = path.to_str().unwrap();
        assert_eq!(
            complete(&r, "bash", &["crdt", "--state", path, "get", ""])
                .into_iter()
                .filter(|c| !c.starts_with('-'))
                .collect::<Vec<_>>(),
            ["other:x"]
        );
        // Subcommands without the hidden ones; no file names for --until.
        let subs = complete(&r, "bash", &["crdt", ""]);
        assert!(subs.iter().any(|s| s == "wait"), "{subs:?}");
        assert!(!subs.iter().any(|s| s == "manpage"), "{subs:?}");
        assert_eq!(
            complete(
                &r,
                "bash",
                &["crdt", "wait", "tasks:active", "--until", "me"]
            ),
            Vec::<String>::new()
        );
        // The checked-in bash script, sourced as bash-completion would, with
        // crdt found on PATH.
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_crdt")).parent().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/crdt.bash");
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(
                "source \"$1\"; COMP_WORDS=(crdt get met); COMP_CWORD=2; COMP_TYPE=9; \
                 _clap_complete_crdt crdt met get; printf '%s\\n' \"${COMPREPLY[@]}\"",
            )
            .arg("bash")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("CRDT_STATE", r.state())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "metrics:errors\nmetrics:requests\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Many names fold to their namespaces.
        let lines: String = (0..150)
            .map(|i| format!("inc many:{}:n{i}\n", i % 2))
            .collect();
        r.cmd().arg("batch").write_stdin(lines).assert().success();
        assert_eq!(complete(&r, "bash", &["crdt", "get", "man"]), ["many:"]);
        assert_eq!(
            complete(&r, "bash", &["crdt", "get", "many:"]),
            ["many:0:", "many:1:"]
        );
    }

    /// Every page crdt.1 refers to exists, and each is fresh.
    #[test]
    fn the_man_pages_are_fresh_and_complete() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
        let r = Replica::new("agent-1");
        let fresh = r.dir.path().join("man");
        r.ok(&["manpage", "--dir", fresh.to_str().unwrap()]);
        let names = |dir: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&fresh),
            names(&root),
            "docs/man is stale: regenerate it with scripts/gen-completions.sh and commit it"
        );
        for name in names(&fresh) {
            let text = std::fs::read_to_string(fresh.join(&name)).unwrap();
            assert_eq!(
                text,
                std::fs::read_to_string(root.join(&name)).unwrap(),
                "docs/man/{name} is stale: regenerate it with scripts/gen-completions.sh"
            );
            for part in text.split("crdt\\-").skip(1) {
                if let Some(end) = part.find("(1)") {
                    let page = format!("crdt-{}.1", part[..end].replace("\\-", "-"));
                    assert!(
                        fresh.join(&page).exists(),
                        "{name} refers to {page}, which does not exist"
                    );
                }
            }
        }
        let main = std::fs::read_to_string(fresh.join("crdt.1")).unwrap();
        for section in [
            ".SH ENVIRONMENT",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
            "CRDT_NOW_MS",
        ] {
            assert!(main.contains(section), "crdt.1 lacks {section}");
        }
    }

    #[test]
    fn help_documents_exit_codes_and_examples() {
        let r = Replica::new("agent-1");
        let help = r.ok(&["--help"]);
        assert!(
            help.contains("Exit codes:") && help.contains("3  applied locally"),
            "{help}"
        );
        for cmd in [
            "inc",
            "dec",
            "set",
            "add",
            "rm",
            "insert",
            "delete",
            "append",
            "new",
            "get",
            "ls",
            "show",
            "export",
            "import",
            "merge",
            "batch",
            "inspect",
            "visualize",
            "diff",
            "explain",
            "serve",
            "sync",
            "watch",
            "wait",
            "completions",
        ] {
            let h = r.ok(&[cmd, "--help"]);
            assert!(h.contains("Example"), "`crdt {cmd} --help` has no example");
        }
    }
}

/// A type error names the types with their articles ("an rga").
#[test]
fn a_type_error_says_an_rga() {
    let r = Replica::new("agent-1");
    r.cmd().args(["append", "doc", "hi"]).assert().success();
    let out = r.cmd().args(["inc", "doc"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("doc is an rga"), "{err}");
}

/// An empty CRDT_* variable means unset; a bad one is an error naming it.
#[test]
fn empty_environment_variables_are_unset_and_bad_ones_are_named() {
    let home = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_crdt"));
        c.env_remove("CRDT_STATE")
            .env_remove("CRDT_REPLICA")
            .env_remove("CRDT_URL")
            .env_remove("CRDT_TOKEN")
            .env_remove("CRDT_NOW_MS")
            .env("XDG_DATA_HOME", home.path())
            .env("HOME", home.path());
        for (k, v) in vars {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    };
    let empty = [
        ("CRDT_STATE", ""),
        ("CRDT_REPLICA", ""),
        ("CRDT_URL", ""),
        ("CRDT_NOW_MS", ""),
    ];
    let out = run(&empty, &["inc", "x"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    assert!(home.path().join("crdt").join("replica.db").exists());
    for (var, value) in [("CRDT_NOW_MS", "abc"), ("CRDT_REPLICA", "a b")] {
        let out = run(&[(var, value)], &["get", "x"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(var), "{var}: {err}");
    }
}

/// `wait` with a condition the object's type can never meet is an error at
/// once; a name not here yet is waited for.
#[test]
fn wait_refuses_a_condition_the_type_never_meets() {
    let r = Replica::new("agent-1");
    r.ok(&["inc", "n", "2"]);
    r.ok(&["add", "s", "a"]);
    r.ok(&["append", "t", "hello"]);
    for (name, until) in [
        ("n", "contains x"),
        ("n", "len >= 1"),
        ("s", ">= 1"),
        ("t", "< 3"),
    ] {
        let start = Instant::now();
        let out = r
            .cmd()
            .args(["wait", name, "--until", until, "--timeout", "20"])
            .assert()
            .code(2);
        assert!(start.elapsed() < Duration::from_secs(10), "{name} {until}");
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("can never hold"), "{name} {until}: {err}");
    }
    // What can hold is waited for; a missing name too, until the timeout.
    assert_eq!(
        r.ok(&["wait", "n", "--until", ">= 2", "--timeout", "1"]),
        "2\n"
    );
    assert_eq!(
        r.ok(&["wait", "s", "--until", "len >= 1", "--timeout", "1"]),
        "[\"a\"]\n"
    );
    r.cmd()
        .args(["wait", "later", "--until", "contains x", "--timeout", "0.3"])
        .assert()
        .code(1);
}

/// Delta files: `export --since` another replica's version (a version
/// document or its snapshot) writes only what it lacks; imported there, it
/// gives the state a full export gives.
#[test]
fn an_export_since_a_version_carries_what_the_other_replica_lacks() {
    let (a, b) = (Replica::new("agent-1"), Replica::new("agent-2"));
    a.ok(&["append", "doc:main", &"Hello World ".repeat(200)]);
    for i in 0..200 {
        a.ok(&["add", "tasks:active", &format!("t{i}")]);
    }
    a.ok(&["inc", "metrics:requests", "5"]);
    let full = a.dir.path().join("full.json");
    a.ok(&["export", "-o", full.to_str().unwrap()]);
    b.ok(&["import", full.to_str().unwrap()]);
    // a goes on; b makes a change of its own.
    a.ok(&["insert", "doc:main", "5", ","]);
    a.ok(&["rm", "tasks:active", "t7"]);
    a.ok(&["add", "tasks:active", "t-new"]);
    a.ok(&["set", "config:global", r#"{"mode":"safe"}"#]);
    b.ok(&["inc", "metrics:requests"]);
    let version = b.dir.path().join("version.json");
    std::fs::write(&version, b.ok(&["version"])).unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&version).unwrap()).unwrap();
    assert_eq!(v["format"], "crdt-version");
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(3), "{v}");
    for since in [version.clone(), b.state()] {
        let delta = a.dir.path().join("delta.json");
        a.ok(&[
            "export",
            "--since",
            since.to_str().unwrap(),
            "-o",
            delta.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&delta).unwrap();
        assert!(
            text.len() * 4 < std::fs::metadata(&full).unwrap().len() as usize,
            "the delta is not small: {} bytes",
            text.len()
        );
        assert!(!text.contains("\"t100\""), "a member b has travelled again");
        let c = Replica::new("agent-2");
        c.ok(&["import", b.state().to_str().unwrap()]);
        c.ok(&["import", delta.to_str().unwrap()]);
        // b's state plus the delta is b's state plus all of a.
        let a_all = a.dir.path().join("all.json");
        a.ok(&["export", "-o", a_all.to_str().unwrap()]);
        let d = Replica::new("agent-2");
        d.ok(&[
            "import",
            b.state().to_str().unwrap(),
            a_all.to_str().unwrap(),
        ]);
        assert_eq!(
            c.json(&["export"])["objects"],
            d.json(&["export"])["objects"]
        );
    }
    // An inline version document works too; a bad one is an error naming it.
    let inline = b.ok(&["version", "metrics:"]);
    a.ok(&["export", "--since", &inline]);
    a.cmd()
        .args(["export", "--since", r#"{"format":"crdt-version"}"#])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a version document"));
}

/// Every `--json` output is one JSON object (or, for streams, one per
/// line), documented by a JSON Schema in docs/json/ that real outputs match.
mod json_schemas {
    use super::*;

    /// Outputs that need a sync endpoint: checked in tests/sync.rs.
    const NETWORK: [&str; 4] = ["sync", "sync-follow", "watch", "wait"];

    fn check(schema: &str, value: &Value) {
        common::check_schema(schema, value);
    }

    #[test]
    fn every_json_output_matches_its_schema() {
        let (a, b) = (Replica::new("agent-1"), Replica::new("agent-2"));
        let covered = std::cell::RefCell::new(Vec::<String>::new());
        let run = |r: &Replica, schema: &str, args: &[&str]| -> Value {
            let v = r.json(args);
            assert!(v.is_object(), "{args:?}: not one JSON object");
            check(schema, &v);
            covered.borrow_mut().push(schema.to_string());
            v
        };
        for args in [
            &["inc", "metrics:requests"][..],
            &["dec", "res:gpu", "2"],
            &["set", "config:global", r#"{"a":1}"#],
            &["add", "tasks:active", "t1", "t2"],
            &["rm", "tasks:active", "t1"],
            &["append", "doc:main", "Hello"],
            &["insert", "doc:main", "0", "X"],
            &["delete", "doc:main", "0"],
            &["new", "res:cpu", "--type", "pn-counter"],
            &["put", "config:flags", "ai-review", "true"],
            &["put", "config:flags", "dark-mode", "false"],
            &["unset", "config:flags", "dark-mode"],
            &["new", "config:empty", "--type", "map"],
            &[
                "new",
                "res:gpus",
                "--type",
                "bounded-counter",
                "--limit",
                "10",
            ],
            &["inc", "res:gpus", "3"],
            &["transfer", "res:gpus", "2", "--to", "agent-2"],
            &["dec", "res:gpus", "1"],
        ] {
            run(&a, "change", args);
        }
        run(&a, "get", &["get", "metrics:requests"]);
        run(&a, "get", &["get", "config:flags"]);
        let v = run(&a, "get", &["get", "config:flags", "ai-review"]);
        assert_eq!(v["value"], true);
        run(&a, "ls", &["ls"]);
        for name in [
            "metrics:requests",
            "res:gpu",
            "tasks:active",
            "doc:main",
            "config:global",
            "config:flags",
            "res:gpus",
        ] {
            run(&a, "show", &["show", name]);
            run(&a, "inspect", &["inspect", name]);
            run(&a, "explain", &["explain", name]);
            run(&a, "visualize", &["visualize", name]);
        }
        run(&a, "del", &["del", "res:cpu"]);
        run(&a, "show", &["show", "--deleted", "res:cpu"]);
        run(&a, "inspect", &["inspect", "res:cpu"]);
        run(&a, "info", &["info"]);
        run(&a, "history-trim", &["history", "trim", "--before", "30d"]);
        run(&a, "version", &["version"]);
        let file = a.dir.path().join("a.json");
        let f = file.to_str().unwrap();
        run(&a, "export", &["export", "-o", f]);
        b.ok(&["add", "votes", "yes"]);
        a.ok(&["inc", "votes"]);
        run(
            &a,
            "export",
            &["export", "--since", b.state().to_str().unwrap(), "-o", f],
        );
        let bf = b.dir.path().join("b.json");
        b.ok(&["export", "-o", bf.to_str().unwrap()]);
        let bf = bf.to_str().unwrap();
        a.ok(&["export", "-o", f]);
        run(
            &a,
            "merge",
            &[
                "merge",
                f,
                bf,
                "-o",
                a.dir.path().join("m.json").to_str().unwrap(),
            ],
        );
        run(&a, "merge-dry-run", &["merge", f, bf, "--dry-run"]);
        // diff exits 1 when the two differ.
        let out = a.cmd().args(["--json", "diff", f, bf]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        check("diff", &serde_json::from_slice(&out.stdout).unwrap());
        covered.borrow_mut().push("diff".into());
        run(&a, "import", &["import", bf]);
        // A type conflict (votes was a counter here): one object, with every type.
        run(&a, "get", &["get", "votes"]);
        run(&a, "show", &["show", "votes"]);
        run(&a, "inspect", &["inspect", "votes"]);
        run(&a, "explain", &["explain", "votes"]);
        run(&a, "blame", &["blame", "votes"]);
        run(&a, "blame", &["blame", "metrics:requests"]);
        run(&a, "blame", &["blame", "config:flags"]);
        // log and decode print one array (of entries, of messages).
        let frame = r#"{"type":"push","id":1,"objects":[{"name":"n","type":"g-counter","state":{"counts":{"a":{"seq":1,"count":2}}}}]}"#;
        for (schema, args) in [("log", &["log"][..]), ("decode", &["decode", frame][..])] {
            let v = a.json(args);
            assert!(v.as_array().is_some_and(|l| !l.is_empty()), "{args:?}: {v}");
            check(schema, &v);
            covered.borrow_mut().push(schema.to_string());
        }
        let out = a
            .cmd()
            .args(["--json", "batch"])
            .write_stdin("inc metrics:requests\nget metrics:requests\nget config:flags ai-review\nput config:flags k 1\nfrobnicate\n")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        check("batch", &v);
        covered.borrow_mut().push("batch".into());
        // Not JSON: refused instead of printing a script.
        a.cmd()
            .args(["--json", "completions", "bash"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("not JSON"));
        // Every schema is exercised, here or by the sync tests.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json");
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let schema = name.trim_end_matches(".schema.json");
            assert!(
                covered.borrow().iter().any(|c| c == schema) || NETWORK.contains(&schema),
                "docs/json/{name} is not checked by any test"
            );
        }
    }
}

/// Piped output is for scripts: values are never cut; `get --raw` prints
/// strings without quotes; names are opaque apart from the selector rule.
#[test]
fn piped_values_are_whole_raw_strings_and_opaque_names() {
    let r = Replica::new("agent-1");
    let members: Vec<String> = (0..12)
        .map(|i| format!("member-number-{i:02}-{}", "x".repeat(20)))
        .collect();
    let mut args = vec!["add", "tasks:big"];
    args.extend(members.iter().map(String::as_str));
    r.ok(&args);
    let ls = r.ok(&["ls"]);
    for m in &members {
        assert!(ls.contains(m.as_str()), "piped ls cut {m}: {ls}");
    }
    assert!(!ls.contains('…'), "{ls}");
    let a = r.dir.path().join("a.json");
    r.ok(&["export", "-o", a.to_str().unwrap()]);
    r.ok(&["rm", "tasks:big", &members[11]]);
    let out = r
        .cmd()
        .args(["diff", "--local", "--stat", a.to_str().unwrap()])
        .output()
        .unwrap();
    let stat = String::from_utf8(out.stdout).unwrap();
    assert!(
        stat.contains(members[10].as_str()) && !stat.contains('…'),
        "{stat}"
    );
    // explain, inspect and visualize too (they cut long values at a terminal).
    let long = "y".repeat(120);
    r.ok(&["set", "--string", "config:long", &long]);
    for cmd in ["explain", "inspect", "visualize", "show"] {
        let text = r.ok(&[cmd, "config:long"]);
        assert!(text.contains(&long) && !text.contains('…'), "{cmd}: {text}");
    }
    // --raw
    r.ok(&["set", "config:mode", "fast"]);
    assert_eq!(r.ok(&["get", "config:mode"]), "\"fast\"\n");
    assert_eq!(r.ok(&["get", "--raw", "config:mode"]), "fast\n");
    r.ok(&["add", "tasks:small", "a b"]);
    assert_eq!(r.ok(&["get", "--raw", "tasks:small"]), "a b\n");
    // Names: a::b is in namespace a; -x after --.
    r.ok(&["inc", "a::b"]);
    r.ok(&["inc", "--", "-x"]);
    assert_eq!(r.ok(&["get", "--", "-x"]), "1\n");
    let names: Vec<String> = r.json(&["ls", "a"])["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a::b"]);
}

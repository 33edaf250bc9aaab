//! The history at 1,000,000 rows: `crdt log -n 20` and time travel (`get
//! --at`) as whole processes, on a replica that took the automerge-paper
//! trace through `batch` four times over (four texts, two batches each
//! typing two of them a line of each in turn: 1,039,112 history rows), against `crdt get` of the same text now and `redis-cli get` in
//! the same run (rows take turns in a shuffled order). `@N` is the
//! costliest moment: just before the text's last checkpoint, where the most
//! rows follow the one before. A batch's rows share one time, so `--at
//! TIME` is the end of the text's batch.
//!
//! `cargo bench --bench history [-- RUNS]` (default 30 runs per row)

mod common;
use common::{Redis, crdt, once};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn sql(state: &Path, q: &str) -> i64 {
    rusqlite::Connection::open(state)
        .unwrap()
        .query_row(q, [], |r| r.get(0))
        .unwrap()
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let dir = match std::env::var_os("CRDT_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/trace-to-batch.py"))
        .arg(root.join("../shared/traces/automerge-paper.json.gz"))
        .output()
        .expect("python3 runs scripts/trace-to-batch.py");
    assert!(out.status.success(), "trace-to-batch failed");
    let paper = String::from_utf8(out.stdout).unwrap();
    let state = dir.path().join("history.db");
    let start = Instant::now();
    // Two batches, each typing two texts a line of each in turn: no run of
    // lines on one text for a batch to fold, so a row per line.
    for i in [1, 3] {
        let lines = dir.path().join(format!("paper-{i}.txt"));
        let mut both = String::with_capacity(paper.len() * 2 + 64);
        for line in paper.lines() {
            for d in [i, i + 1] {
                both.push_str(&line.replacen("document:main", &format!("document:d{d}"), 1));
                both.push('\n');
            }
        }
        std::fs::write(&lines, both).unwrap();
        let mut c = crdt(&state);
        c.args(["batch", lines.to_str().unwrap()])
            .stderr(Stdio::null());
        once(c);
    }
    let rows = sql(&state, "SELECT count(*) FROM history");
    let checkpoints = sql(&state, "SELECT count(*) FROM checkpoints");
    eprintln!(
        "built {rows} history rows, {checkpoints} checkpoints in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    // The costliest moment of d2: the row before its last checkpoint (the
    // largest state before it, and the most rows after it).
    let worst = sql(
        &state,
        "SELECT max(id) - 1 FROM checkpoints WHERE name = 'document:d2'",
    );
    let after = worst
        - sql(
            &state,
            &format!("SELECT max(id) FROM checkpoints WHERE name = 'document:d2' AND id < {worst}"),
        );
    eprintln!("the worst moment: @{worst}, {after} rows after its checkpoint");
    let middle_time = sql(
        &state,
        &format!("SELECT time_ms FROM history WHERE id = {worst}"),
    );
    let at = format!("@{worst}");
    let time = middle_time.to_string();
    let redis = Redis::start(&["--save", ""]);
    if let Some(r) = &redis {
        assert!(r.cli(&["set", "k", "v"]).status().unwrap().success());
    }
    type Job<'a> = (&'a str, Box<dyn Fn() -> Command + 'a>);
    let mut jobs: Vec<Job> = vec![
        (
            "`crdt log -n 20`",
            Box::new(|| {
                let mut c = crdt(&state);
                c.args(["log", "-n", "20"]);
                c
            }),
        ),
        (
            "`crdt log document:d2 -n 20`",
            Box::new(|| {
                let mut c = crdt(&state);
                c.args(["log", "document:d2", "-n", "20"]);
                c
            }),
        ),
        (
            "`crdt get document:d2` (now)",
            Box::new(|| {
                let mut c = crdt(&state);
                c.args(["get", "document:d2"]);
                c
            }),
        ),
        (
            "`crdt get document:d2 --at @N` (worst N)",
            Box::new(|| {
                let mut c = crdt(&state);
                c.args(["get", "document:d2", "--at", &at]);
                c
            }),
        ),
        (
            "`crdt get document:d2 --at TIME` (the end of its batch)",
            Box::new(|| {
                let mut c = crdt(&state);
                c.args(["get", "document:d2", "--at", &time]);
                c
            }),
        ),
    ];
    if let Some(r) = &redis {
        jobs.push((
            "`redis-cli get k`",
            Box::new(|| {
                let mut c = r.cli(&["get", "k"]);
                c.stdout(Stdio::null());
                c
            }),
        ));
    }
    let mut times = common::in_turns(jobs.len(), runs, |j| once((jobs[j].1)()));
    println!(
        "\nHistory of {rows} rows ({checkpoints} checkpoints), {runs} runs each, whole process\n"
    );
    println!("| command | p50 | p90 | max |");
    println!("|---|---:|---:|---:|");
    let mut medians = Vec::new();
    for (j, (label, _)) in jobs.iter().enumerate() {
        let t = &mut times[j];
        t.sort_by(f64::total_cmp);
        let p = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms |",
            p(0.5),
            p(0.9),
            t[t.len() - 1]
        );
        medians.push(p(0.5));
    }
    println!(
        "\n`get --at` (worst) / `get` now: {:.2}x",
        medians[3] / medians[2]
    );
    if redis.is_some() {
        println!(
            "`log -n 20` / `redis-cli get`: {:.2}x",
            medians[0] / medians[5]
        );
    }
}

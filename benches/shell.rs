//! The shell's cost of one change: `crdt inc NAME` as a whole process (open,
//! one transaction, fsync) on replicas holding 1, 1,000, 100,000 and
//! 1,000,000 objects, and `crdt get` at 1,000,000, against `redis-cli incr`
//! and `get` on a redis with `appendfsync always` in the same run (rows take
//! turns in a shuffled order, so a noisy moment hits them all alike); then `crdt batch` of the
//! automerge-paper trace (with its history rows), and `export` and `import`
//! of 100,000 objects.
//!
//! `cargo bench --bench shell [-- RUNS]` (default 60 runs per row;
//! `CRDT_BENCH_MAX=100000` leaves out the million)

mod common;
use common::{Redis, crdt, once};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn row(what: &str, times: &[f64]) -> f64 {
    let p50 = pct(times, 0.5);
    println!(
        "| {what} | {p50:.2} ms | {:.2} ms | {:.2} ms |",
        pct(times, 0.9),
        times[times.len() - 1]
    );
    p50
}

/// A replica with `n` counters besides `metrics:requests`.
fn state_with(dir: &Path, n: usize) -> std::path::PathBuf {
    let state = dir.join(format!("state-{n}.db"));
    let lines: String = (0..n).map(|i| format!("inc obj:{i:06}\n")).collect();
    let batch = dir.join("batch.txt");
    std::fs::write(&batch, lines).unwrap();
    let ok = crdt(&state)
        .args(["batch", batch.to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "batch failed");
    // The first change creates the object; the runs change it.
    assert!(
        crdt(&state)
            .args(["inc", "metrics:requests"])
            .status()
            .unwrap()
            .success()
    );
    state
}

/// A redis-server with `appendfsync always`, holding `metrics:requests`.
fn redis() -> Option<Redis> {
    let r = Redis::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
    ])?;
    let ok = r.cli(&["incr", "metrics:requests"]).status();
    assert!(ok.is_ok_and(|s| s.success()), "redis-cli incr failed");
    Some(r)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let max: usize = std::env::var("CRDT_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Where the replicas live: the system's temporary directory, or
    // CRDT_BENCH_DIR (a disk like the one you deploy on).
    let dir = match std::env::var_os("CRDT_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .unwrap();
    let sizes: Vec<usize> = [0, 1_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    let states: Vec<(String, std::path::PathBuf)> = sizes
        .iter()
        .map(|&n| {
            let start = Instant::now();
            let state = state_with(dir.path(), n);
            let bytes = std::fs::metadata(&state).map_or(0, |m| m.len());
            eprintln!(
                "built {} objects in {:.1} s",
                n + 1,
                start.elapsed().as_secs_f64()
            );
            let label = match n {
                0 => "`crdt inc`, 1 object".to_string(),
                n => format!("`crdt inc`, {} objects ({} MB)", n + 1, bytes / 1_000_000),
            };
            (label, state)
        })
        .collect();
    let biggest = states.last().expect("one size at least").1.clone();
    let redis = redis();
    // Every row: a command to run. They take turns.
    type Row<'a> = (String, Box<dyn Fn() -> Command + 'a>);
    let mut rows: Vec<Row<'_>> = Vec::new();
    for (label, state) in &states {
        rows.push((
            label.clone(),
            Box::new(move || {
                let mut c = crdt(state);
                c.args(["inc", "metrics:requests"]);
                c
            }),
        ));
    }
    rows.push((
        format!("`crdt get`, {} objects", sizes.last().unwrap() + 1),
        Box::new(|| {
            let mut c = crdt(&biggest);
            c.args(["get", "metrics:requests"]);
            c
        }),
    ));
    if let Some(r) = &redis {
        rows.push((
            "`redis-cli incr` (appendfsync always)".into(),
            Box::new(|| r.cli(&["incr", "metrics:requests"])),
        ));
        rows.push((
            "`redis-cli get`".into(),
            Box::new(|| r.cli(&["get", "metrics:requests"])),
        ));
    }
    println!("Whole process, {runs} runs per row, rows taking turns\n");
    println!("| command | p50 | p90 | max |");
    println!("|---|---:|---:|---:|");
    for (_, cmd) in &rows {
        once(cmd()); // warm the page cache
    }
    // Each round in its own order: no row always runs first, or right
    // after redis.
    let times = common::in_turns(rows.len(), runs, |i| once((rows[i].1)()));
    let mut medians = Vec::new();
    for ((label, _), mut t) in rows.iter().zip(times) {
        t.sort_by(f64::total_cmp);
        medians.push((label.clone(), row(label, &t)));
    }
    let find = |what: &str| {
        medians
            .iter()
            .find(|(l, _)| l.starts_with(what))
            .map(|m| m.1)
    };
    if let (Some(incr), Some(get)) = (find("`redis-cli incr`"), find("`redis-cli get`")) {
        println!();
        for (label, m) in &medians {
            if label.starts_with("`crdt inc`") {
                println!("{label} / redis-cli incr: {:.2}x", m / incr);
            }
            if label.starts_with("`crdt get`") {
                println!("{label} / redis-cli get: {:.2}x", m / get);
            }
        }
    }
    drop(rows);
    drop(redis);
    whole_jobs(dir.path(), runs.clamp(3, 9));
}

/// `batch` of the automerge-paper trace and `export`/`import` of 100,000
/// objects, whole process.
fn whole_jobs(dir: &Path, runs: usize) {
    println!("\nWhole jobs, {runs} runs each\n");
    println!("| job | p50 | min | max |");
    println!("|---|---:|---:|---:|");
    let job = |label: &str, times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        println!(
            "| {label} | {:.0} ms | {:.0} ms | {:.0} ms |",
            pct(times, 0.5),
            times[0],
            times[times.len() - 1]
        );
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let trace = root.join("../shared/traces/automerge-paper.json.gz");
    let lines = dir.join("paper.txt");
    let out = Command::new("python3")
        .arg(root.join("scripts/trace-to-batch.py"))
        .arg(&trace)
        .output()
        .expect("python3 runs scripts/trace-to-batch.py");
    assert!(out.status.success(), "trace-to-batch failed");
    std::fs::write(&lines, &out.stdout).unwrap();
    let mut times = Vec::new();
    let mut last = dir.join("none");
    for i in 0..runs {
        last = dir.join(format!("paper-{i}.db"));
        let mut c = crdt(&last);
        c.args(["batch", lines.to_str().unwrap()])
            .stderr(Stdio::null());
        times.push(once(c));
    }
    job(
        "`crdt batch` automerge-paper (with history rows)",
        &mut times,
    );
    // What the history holds: its rows (a long run of edits to one text is
    // one row) and the database's size.
    let conn = rusqlite::Connection::open(&last).unwrap();
    let (rows, bytes): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(length(delta)) FROM history",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let size = std::fs::metadata(&last).map_or(0, |m| m.len());
    println!(
        "| its history: {rows} rows, {:.2} MB of deltas; the database {:.2} MB | | | |",
        bytes as f64 / 1e6,
        size as f64 / 1e6
    );
    drop(conn);
    // Export and import of 100,000 objects.
    let big = dir.join("state-100000.db");
    if big.exists() {
        let mut ex = Vec::new();
        let mut im = Vec::new();
        let file = dir.join("export.json");
        for i in 0..runs {
            let mut c = crdt(&big);
            c.args(["export", "-o", file.to_str().unwrap()])
                .stderr(Stdio::null());
            ex.push(once(c));
            let mut c = crdt(&dir.join(format!("import-{i}.db")));
            c.env("CRDT_REPLICA", "bench-2")
                .args(["import", file.to_str().unwrap()]);
            im.push(once(c));
        }
        job("`crdt export` 100,001 objects", &mut ex);
        job("`crdt import` 100,001 objects into a new replica", &mut im);
    }
}

//! The shell's cost of one change: `crdt inc NAME` as a whole process (lock,
//! load, change, fsync) on local state files holding 1, 1,000 and 100,000
//! objects, timed over many runs; and `redis-cli incr` against a redis with
//! `appendfsync always` in the same run, when redis-server and redis-cli are
//! installed.
//!
//! `cargo bench --bench shell [-- RUNS]` (default 60 runs per row)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CRDT: &str = env!("CARGO_BIN_EXE_crdt");

fn crdt(state: &Path) -> Command {
    let mut c = Command::new(CRDT);
    c.env("CRDT_STATE", state)
        .env("CRDT_REPLICA", "bench-1")
        .env_remove("CRDT_URL")
        .stdout(Stdio::null());
    c
}

/// Wall times of `runs` runs of `cmd`, sorted, in ms.
fn time_runs(runs: usize, mut cmd: impl FnMut() -> Command) -> Vec<f64> {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let mut c = cmd();
            let start = Instant::now();
            let status = c.status().expect("run");
            let t = start.elapsed();
            assert!(status.success(), "{c:?} failed");
            t.as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

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

/// A state file with `n` counters besides `metrics:requests`.
fn state_with(dir: &Path, n: usize) -> std::path::PathBuf {
    let state = dir.join(format!("state-{n}.json"));
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

fn redis(runs: usize) -> Option<Vec<f64>> {
    let found = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok()
    };
    if !found("redis-server") || !found("redis-cli") {
        println!("(redis-server or redis-cli not installed: the redis row is skipped)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let cli = || {
        let mut c = Command::new("redis-cli");
        c.args(["-p", &port.to_string(), "incr", "metrics:requests"])
            .stdout(Stdio::null());
        c
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cli()
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let times = time_runs(runs, cli);
    let _ = server.kill();
    let _ = server.wait();
    Some(times)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    println!("`crdt inc metrics:requests`, whole process, {runs} runs per row\n");
    println!("| state file | p50 | p90 | max |");
    println!("|---|---:|---:|---:|");
    let states: Vec<(String, std::path::PathBuf)> = [0, 1_000, 100_000]
        .into_iter()
        .map(|n| {
            let state = state_with(dir.path(), n);
            let bytes = std::fs::metadata(&state).map_or(0, |m| m.len());
            let label = match n {
                0 => "1 object".to_string(),
                n => format!("{} objects ({} KB)", n + 1, bytes / 1000),
            };
            (label, state)
        })
        .collect();
    let inc = |state: &Path| {
        let mut c = crdt(state);
        c.args(["inc", "metrics:requests"]);
        c
    };
    // One run each first, so the page cache holds the files as it would;
    // then the rows take turns, so a noisy moment hits them all alike.
    let mut times: Vec<Vec<f64>> = states
        .iter()
        .map(|(_, state)| {
            time_runs(1, || inc(state));
            Vec::new()
        })
        .collect();
    for _ in 0..runs {
        for (i, (_, state)) in states.iter().enumerate() {
            times[i].extend(time_runs(1, || inc(state)));
        }
    }
    let mut medians = Vec::new();
    for ((label, _), mut t) in states.into_iter().zip(times) {
        t.sort_by(f64::total_cmp);
        medians.push((label.clone(), row(&label, &t)));
    }
    if let Some(times) = redis(runs) {
        let p50 = row("`redis-cli incr` (appendfsync always)", &times);
        println!();
        for (label, m) in medians {
            println!("crdt / redis-cli, {label}: {:.2}x", m / p50);
        }
    }
}

//! Replays real editing traces into an `rga`, like `shared/peerbench` does
//! for published text CRDTs, and prints one line per trace:
//!
//! `peer=crdt trace=NAME ops=N replay_ms=MEDIAN final_len=CHARS encoded_bytes=BYTES check=OK|MISMATCH ...`
//!
//! Usage: `cargo bench --bench traces [-- TRACE.json.gz ...]` (default: every
//! `*.json.gz` in `../shared/traces/`). Also measures the snapshot save and
//! load of the final state, a whole-state merge of three concurrent replicas,
//! and the process's peak memory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crdt::{Crdt, CrdtType, Object, ReplicaId, Rga, Store, snapshot};
use serde_json::Value;

const RUNS: usize = 5;

struct Trace {
    name: String,
    patches: Vec<(usize, usize, String)>,
    end: String,
}

fn load(path: &Path) -> Trace {
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    let mut text = String::new();
    gz.read_to_string(&mut text)
        .expect("a gzip-compressed JSON trace");
    let v: Value = serde_json::from_str(&text).expect("trace JSON");
    let mut patches = Vec::new();
    for txn in v["txns"].as_array().expect("txns") {
        for p in txn["patches"].as_array().expect("patches") {
            patches.push((
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
                p[2].as_str().unwrap().to_string(),
            ));
        }
    }
    Trace {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        patches,
        end: v["endContent"].as_str().unwrap().to_string(),
    }
}

fn replay(t: &Trace, me: &ReplicaId) -> Rga {
    let mut doc = Rga::default();
    for (pos, del, ins) in &t.patches {
        if *del > 0 {
            doc.delete(me, *pos, *del).unwrap();
        }
        if !ins.is_empty() {
            doc.insert(me, *pos, ins).unwrap();
        }
    }
    doc
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Three replicas each type `n` characters at pseudo-random positions, then
/// all merge. Returns (median local typing ms, median merge ms).
fn concurrent(n: usize) -> (f64, f64) {
    let mut local = Vec::new();
    let mut merge = Vec::new();
    for run in 0..RUNS {
        let ids: Vec<ReplicaId> = (0..3)
            .map(|i| ReplicaId::new(format!("r{i}")).unwrap())
            .collect();
        let start = Instant::now();
        let docs: Vec<Rga> = ids
            .iter()
            .enumerate()
            .map(|(k, me)| {
                let mut doc = Rga::default();
                let mut x = (run * 3 + k) as u64 + 1;
                for i in 0..n {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let pos = (x >> 33) as usize % (doc.len() + 1);
                    doc.insert(me, pos, if i % 2 == 0 { "a" } else { "b" })
                        .unwrap();
                }
                doc
            })
            .collect();
        local.push(ms(start));
        let start = Instant::now();
        let mut all = docs[0].clone();
        all.merge(&docs[1]);
        all.merge(&docs[2]);
        merge.push(ms(start));
        assert_eq!(all.len(), 3 * n);
    }
    (median(local), median(merge))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let paths: Vec<PathBuf> = if args.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces");
        let mut list: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (pass trace paths after --)", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
            .collect();
        list.sort();
        list
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let me = ReplicaId::new("trace").unwrap();
    for path in paths {
        let t = load(&path);
        let mut times = Vec::new();
        let mut doc = Rga::default();
        for _ in 0..RUNS {
            let start = Instant::now();
            doc = replay(&t, &me);
            times.push(ms(start));
        }
        let mut store = Store::new(me.clone());
        if let Object::Rga(d) = store.get_or_create("document:main", CrdtType::Rga) {
            *d = doc.clone();
        }
        let mut save = Vec::new();
        let mut text = String::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            text = snapshot::encode(&store);
            save.push(ms(start));
        }
        let mut load_t = Vec::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            let back = snapshot::decode(&text).expect("the snapshot loads");
            load_t.push(ms(start));
            assert_eq!(
                back.get("document:main", CrdtType::Rga)
                    .unwrap()
                    .value_json()
                    .as_str()
                    .map(str::len),
                Some(doc.text().len())
            );
        }
        let check = if doc.text() == t.end {
            "OK"
        } else {
            "MISMATCH"
        };
        println!(
            "peer=crdt trace={} ops={} replay_ms={:.2} final_len={} encoded_bytes={} check={check} runs={RUNS} save_ms={:.2} load_ms={:.2} peak_rss_mb={:.1}",
            t.name,
            t.patches.len(),
            median(times.clone()),
            doc.len(),
            text.len(),
            median(save),
            median(load_t),
            peak_rss_mb()
        );
        println!(
            "  all_runs_ms={:?}",
            times
                .iter()
                .map(|x| (x * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        );
    }
    let (local, merge) = concurrent(20_000);
    println!(
        "peer=crdt bench=concurrent-3x20000 local_ms={local:.2} merge_ms={merge:.2} ratio={:.2}",
        merge / local
    );
}

//! A real editing trace through the command line: `scripts/trace-to-batch.py`
//! turns it into `crdt batch` lines, and `crdt get` must give its endContent.

use std::path::Path;
use std::process::Command;

#[test]
fn an_editing_trace_through_batch_gives_the_end_content() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let trace = root.join("../shared/traces/seph-blog1.json.gz");
    assert!(
        trace.exists(),
        "{} is missing: the shared folder must sit beside the project",
        trace.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (lines, end) = (dir.path().join("ops.txt"), dir.path().join("end.txt"));
    let convert = Command::new("python3")
        .arg(root.join("scripts/trace-to-batch.py"))
        .arg(&trace)
        .arg("--end")
        .arg(&end)
        .stdout(std::fs::File::create(&lines).unwrap())
        .status();
    let status = match convert {
        Ok(s) => s,
        Err(e) => panic!(
            "python3 is needed to convert the trace ({e}); install it (it is on every machine of this kind)"
        ),
    };
    assert!(status.success());
    let state = dir.path().join("state.db");
    let batch = Command::new(env!("CARGO_BIN_EXE_crdt"))
        .args(["--replica", "trace", "batch"])
        .arg(&lines)
        .env("CRDT_STATE", &state)
        .output()
        .unwrap();
    assert!(
        batch.status.success(),
        "{}",
        String::from_utf8_lossy(&batch.stderr)
    );
    let get = Command::new(env!("CARGO_BIN_EXE_crdt"))
        .args(["get", "document:main"])
        .env("CRDT_STATE", &state)
        .output()
        .unwrap();
    let expected = std::fs::read_to_string(&end).unwrap();
    let got = String::from_utf8(get.stdout).unwrap();
    assert!(
        got == format!("{expected}\n"),
        "the replayed text differs from endContent"
    );
}

//! What the integration tests share.
#![allow(dead_code)] // each test binary uses a part

use std::path::Path;

use serde_json::Value;

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

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

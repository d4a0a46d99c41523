//! The JSON Schemas of `schemas/`: every JSON document a test reads through [`crate::Run::json`]
//! is checked against the schema of its kind, so a change to what `--json` prints that the
//! schema does not allow fails the test that made it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// The repository's `schemas/` folder.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

/// The schema file a document of extpy answers to: `error.schema.json` for the document a
/// failed command prints, `<command>.schema.json` (`bundle create` -> `bundle-create`) for a
/// command's result, `plan.schema.json` for `plan --format json`.
pub fn file_for(doc: &Value) -> String {
    if doc.get("error").is_some() && doc.get("exit_code").is_some() {
        return "error.schema.json".into();
    }
    if let Some(command) = doc.get("command").and_then(Value::as_str) {
        return format!("{}.schema.json", command.replace(' ', "-"));
    }
    if doc.get("schema").and_then(Value::as_str) == Some("extpy-plan/1") {
        return "plan.schema.json".into();
    }
    panic!("no schema for this JSON document (no command, not a plan):\n{doc:#}")
}

/// The compiled schema of `file` (compiled once per test process).
fn validator(file: &str) -> &'static jsonschema::Validator {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache.entry(file.to_string()).or_insert_with(|| {
        let path = dir().join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}: every document needs its schema", path.display()));
        let schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let v = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{}: not a valid schema: {e}", path.display()));
        Box::leak(Box::new(v))
    })
}

/// Every way `doc` breaks the schema `file`, as `path: message` lines.
pub fn errors(file: &str, doc: &Value) -> Vec<String> {
    validator(file)
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Panics, naming each violation, unless `doc` matches the schema of its kind.
#[track_caller]
pub fn check(doc: &Value) {
    let file = file_for(doc);
    let errors = errors(&file, doc);
    assert!(
        errors.is_empty(),
        "the document does not match schemas/{file}:\n  {}\n{doc:#}",
        errors.join("\n  ")
    );
}

/// Why `schema` is not a valid JSON Schema (checked against its draft's meta-schema).
pub fn meta_error(schema: &Value) -> Option<String> {
    jsonschema::meta::validate(schema)
        .err()
        .map(|e| format!("{}: {e}", e.instance_path()))
}

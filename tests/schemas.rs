//! The machine-readable contracts in `schemas/`: each file is a valid JSON Schema (draft
//! 2020-12); every `--json` document the suite reads is checked against its schema by
//! `Run::json` (tests/support/schema.rs), and this file runs the commands whose `--json` no
//! other test reads; the shipped manifest and the example topology name their schema for
//! editors (`# yaml-language-server: $schema=...`) and match it; a document or file that
//! breaks its contract is refused, naming where.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{World, run, schema};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every schema file, by name.
fn schema_files() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(schema::dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema() {
    let names = schema_files();
    for expected in [
        "audit",
        "build",
        "bundle-create",
        "bundle-inspect",
        "bundle-verify",
        "key-generate",
        "doctor",
        "error",
        "fetch",
        "layout",
        "lock",
        "mail-check",
        "manifest",
        "plan",
        "report-merge",
        "rollout",
        "selftest",
        "rollback",
        "topology",
        "verify",
        "version",
        "watch-install",
        "watch-remove",
        "watch-run",
        "watch-status",
    ] {
        let file = format!("{expected}.schema.json");
        assert!(
            names.contains(&file),
            "schemas/{file} is missing: {names:?}"
        );
    }
    for name in &names {
        assert!(name.ends_with(".schema.json"), "{name}");
        let doc: Value =
            serde_json::from_str(&fs::read_to_string(schema::dir().join(name)).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            doc["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Some(e) = schema::meta_error(&doc) {
            panic!("{name} is not a valid schema: {e}");
        }
        assert!(
            doc["title"].is_string() && doc["description"].is_string(),
            "{name}"
        );
    }
}

/// The commands no other test reads the `--json` of: layout (dry run and real), bundle
/// create and verify, rollout. `Run::json` checks each document against its schema.
#[test]
fn layout_bundle_and_rollout_documents_match_their_schemas() {
    let w = World::new();
    let topology = w.path("topology.yaml");
    fs::write(
        &topology,
        "schema: 1\nsystem: Two nodes\nnodes:\n  - name: HAC1\n    host: hac1.example.com\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n  - name: HAC2\n    vu_root: 'E:\\vu'\n    cores: [Core3]\n",
    )
    .unwrap();
    let stage = w.path("stage");
    let dry = w
        .run(&[
            "layout",
            s(&topology),
            "--out",
            s(&stage),
            "--dry-run",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(dry["command"], "layout");
    let done = w
        .run(&["layout", s(&topology), "--out", s(&stage), "--json"])
        .ok()
        .json();
    assert_eq!(done["ok"], true);

    let bundle = w.path("b.zip");
    let created = w
        .run(&[
            "bundle",
            "create",
            s(&bundle),
            "--topology",
            s(&topology),
            "--include-self",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(created["command"], "bundle create");
    let verified = w
        .run(&["bundle", "verify", s(&bundle), "--json"])
        .ok()
        .json();
    assert_eq!(verified["command"], "bundle verify");
    // A bundle with a changed byte: the failing document matches the same schema.
    let mut bytes = fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = w.path("bad.zip");
    fs::write(&bad, bytes).unwrap();
    let r = w.run(&["bundle", "verify", s(&bad), "--json"]);
    assert_ne!(r.code, 0);
    r.json();

    let project = w.path("project");
    let mut c = w.cmd();
    c.args(["rollout", s(&topology), "--bundle", s(&bundle)])
        .args(["--out", s(&project), "--target", "linux", "--json"]);
    let rollout = run(c).ok().json();
    assert_eq!(rollout["command"], "rollout");
}

/// The first line of a YAML file that names its schema for editors.
fn schema_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("# yaml-language-server:"))
        .unwrap_or_else(|| panic!("{} names no schema", path.display()));
    line.strip_prefix("# yaml-language-server: $schema=")
        .unwrap_or_else(|| panic!("{}: {line:?}", path.display()))
        .to_string()
}

fn yaml_as_json(path: &Path) -> Value {
    let yaml: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(yaml).unwrap()
}

#[test]
fn the_shipped_files_name_their_schema_and_match_it() {
    // Every shipped manifest (3.12, and the 3.13 and 3.14 ones an upgrade starts from).
    let mut manifests: Vec<String> = fs::read_dir(repo().join("manifests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("python-") && f.ends_with("-win-amd64.yaml"))
        .map(|f| format!("manifests/{f}"))
        .collect();
    manifests.sort();
    assert_eq!(
        manifests,
        [
            "manifests/python-3.12-win-amd64.yaml",
            "manifests/python-3.13-win-amd64.yaml",
            "manifests/python-3.14-win-amd64.yaml"
        ]
    );
    let files = manifests
        .iter()
        .map(|m| (m.as_str(), "manifest.schema.json"))
        .chain([("manifests/topology.example.yaml", "topology.schema.json")]);
    for (file, schema_file) in files {
        let path = repo().join(file);
        let named = schema_line(&path);
        assert_eq!(named, format!("../schemas/{schema_file}"), "{file}");
        let target = path.parent().unwrap().join(&named);
        assert!(
            target.is_file(),
            "{file} names {named}, which does not exist"
        );
        let errors = schema::errors(schema_file, &yaml_as_json(&path));
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
    // The topologies of the plan tests (three nodes, mail settings) match too.
    let plan_tests = fs::read_to_string(repo().join("tests/plan.rs")).unwrap();
    let north = plan_tests
        .split("const THREE_NODES: &str = r#\"")
        .nth(1)
        .and_then(|rest| rest.split("\"#;").next())
        .unwrap();
    let north: serde_yaml::Value = serde_yaml::from_str(north).unwrap();
    let errors = schema::errors(
        "topology.schema.json",
        &serde_json::to_value(north).unwrap(),
    );
    assert!(errors.is_empty(), "{errors:?}");
    // A node's Windows version (os:) is a string: a name, a version or a build number.
    let mut with_os = yaml_as_json(&repo().join("manifests/topology.example.yaml"));
    with_os["nodes"][0]["os"] = json!("Server 2012 R2");
    let errors = schema::errors("topology.schema.json", &with_os);
    assert!(errors.is_empty(), "{errors:?}");
    with_os["nodes"][0]["os"] = json!(9600);
    let errors = schema::errors("topology.schema.json", &with_os);
    assert!(
        errors.iter().any(|e| e.starts_with("/nodes/0/os")),
        "{errors:?}"
    );
}

#[test]
fn documents_and_files_that_break_their_contract_are_refused() {
    // A real document, then the ways a consumer would be broken.
    let w = World::new();
    let doc = w.run(&["fetch", "--json"]).ok().json();
    assert!(schema::errors("fetch.schema.json", &doc).is_empty());
    let mut missing = doc.clone();
    missing.as_object_mut().unwrap().remove("ok");
    assert!(!schema::errors("fetch.schema.json", &missing).is_empty());
    let mut wrong_type = doc.clone();
    wrong_type["ok"] = json!("yes");
    let errors = schema::errors("fetch.schema.json", &wrong_type);
    assert!(errors.iter().any(|e| e.starts_with("/ok:")), "{errors:?}");
    let mut unknown = doc.clone();
    unknown["surprise"] = json!(1);
    assert!(!schema::errors("fetch.schema.json", &unknown).is_empty());
    let mut other = doc.clone();
    other["command"] = json!("build");
    assert!(!schema::errors("fetch.schema.json", &other).is_empty());

    // A manifest with a misspelt key, a short sha256 or an unknown platform.
    let manifest = yaml_as_json(&repo().join("manifests/python-3.12-win-amd64.yaml"));
    let mut typo = manifest.clone();
    typo["wheels"][0]["sha265"] = typo["wheels"][0]["sha256"].take();
    let errors = schema::errors("manifest.schema.json", &typo);
    assert!(
        errors.iter().any(|e| e.starts_with("/wheels/0")),
        "{errors:?}"
    );
    let mut short = manifest.clone();
    short["embeddable"]["sha256"] = json!("abc");
    assert!(!schema::errors("manifest.schema.json", &short).is_empty());
    let mut platform = manifest.clone();
    platform["python"]["platform"] = json!("linux_x86_64");
    assert!(!schema::errors("manifest.schema.json", &platform).is_empty());

    // runtime_trust: system is the one other value the manifest takes.
    let mut system = manifest.clone();
    system["runtime_trust"] = json!("system");
    assert!(schema::errors("manifest.schema.json", &system).is_empty());
    system["runtime_trust"] = json!("windows");
    assert!(!schema::errors("manifest.schema.json", &system).is_empty());

    // A topology with a secret written into it, or without nodes.
    let topology = yaml_as_json(&repo().join("manifests/topology.example.yaml"));
    let mut secret = topology.clone();
    secret["mail"] = json!({"outgoing": {"tenant": "t", "auth": "oauth_service",
        "server_user": "6ba7b812-9dad-11d1-80b4-00c04fd430c8", "password": "hunter2"}});
    let errors = schema::errors("topology.schema.json", &secret);
    assert!(
        errors.iter().any(|e| e.contains("/mail/outgoing")),
        "{errors:?}"
    );
    // protocol: each side takes its own names, and auto; the other side's is refused.
    let mut protocols = topology.clone();
    protocols["mail"] = json!({
        "incoming": [{"name": "In", "tenant": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "auth": "oauth_service", "client_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "secret_env": "S", "protocol": "graph"}],
        "outgoing": {"tenant": "t", "auth": "oauth_service",
            "server_user": "6ba7b812-9dad-11d1-80b4-00c04fd430c8", "password_env": "P",
            "protocol": "smtp"}});
    let errors = schema::errors("topology.schema.json", &protocols);
    assert!(errors.is_empty(), "{errors:?}");
    for (side, value) in [("incoming", "auto"), ("incoming", "imap")] {
        protocols["mail"][side][0]["protocol"] = json!(value);
        assert!(schema::errors("topology.schema.json", &protocols).is_empty());
    }
    protocols["mail"]["outgoing"]["protocol"] = json!("graph");
    assert!(schema::errors("topology.schema.json", &protocols).is_empty());
    protocols["mail"]["incoming"][0]["protocol"] = json!("smtp");
    let errors = schema::errors("topology.schema.json", &protocols);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/mail/incoming/0/protocol")),
        "{errors:?}"
    );
    protocols["mail"]["incoming"][0]["protocol"] = json!("graph");
    protocols["mail"]["outgoing"]["protocol"] = json!("imap");
    let errors = schema::errors("topology.schema.json", &protocols);
    assert!(
        errors.iter().any(|e| e.contains("/mail/outgoing/protocol")),
        "{errors:?}"
    );
    let mut empty = topology.clone();
    empty["nodes"] = json!([]);
    assert!(!schema::errors("topology.schema.json", &empty).is_empty());
}

//! `extpy watch`: the scheduled drift watch of a node. The Windows commands are data, so off
//! Windows they are printed (asserted here as exact lines, paths with spaces quoted) and,
//! through `EXTPY_WATCH_RUNNER`, handed to a stand-in that logs every argument and can fail
//! the way schtasks fails; `watch run` checks real VU folders laid out here and shows the one
//! event log entry it writes on Windows.

use std::fs;
use std::path::{Path, PathBuf};

use support::{WheelSpec, World, extpy, extpy_bin, run};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A two-core topology in a folder whose name has a space.
fn topology(w: &World) -> PathBuf {
    let dir = w.path("site files");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("topology.yaml");
    fs::write(
        &path,
        "schema: 1\nsystem: Test system\nnodes:\n  - name: HAC1\n    host: hac1.example.com\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n",
    )
    .unwrap();
    path
}

/// `watch install` of the topology's node HAC1, with `extra` options first.
fn install(w: &World, topo: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = w.cmd();
    c.args(extra);
    c.args(["watch", "install", "--topology", s(topo), "--node", "HAC1"]);
    c
}

/// The line each task runs, as `watch install` builds it for this world.
fn run_line(w: &World, topo: &Path) -> String {
    let exe = fs::canonicalize(extpy_bin()).unwrap();
    format!(
        "{} --manifest {} --cache-dir {} --offline --quiet watch run --topology \"{}\" --node HAC1",
        exe.display(),
        w.manifest.display(),
        w.cache.display(),
        topo.display()
    )
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn off_windows_install_prints_the_exact_commands_with_paths_quoted() {
    let w = World::new();
    let topo = topology(&w);
    let r = w
        .run(&["watch", "install", "--topology", s(&topo), "--node", "hac1"])
        .ok();
    // The /TR value is one argument: the run line in quotes, its own quotes escaped.
    let tr = format!("\"{}\"", run_line(&w, &topo).replace('"', "\\\""));
    let expected = format!(
        "not Windows: nothing was run. On the node, in an elevated prompt, this runs:\n  \
         powershell.exe -NoProfile -NonInteractive -Command \"if (-not [System.Diagnostics.EventLog]::SourceExists('extpy')) {{ New-EventLog -LogName Application -Source extpy }}\"\n  \
         schtasks.exe /Create /TN extpy\\watch-HAC1-daily /TR {tr} /SC DAILY /ST 03:00 /RU SYSTEM /RL HIGHEST /F\n  \
         schtasks.exe /Create /TN extpy\\watch-HAC1-start /TR {tr} /SC ONSTART /RU SYSTEM /RL HIGHEST /F\n  \
         schtasks.exe /Run /TN extpy\\watch-HAC1-daily\n"
    );
    assert_eq!(r.stdout, expected);

    let mut c = install(&w, &topo, &["--json"]);
    c.arg("--selftest");
    let doc = run(c).ok().json();
    assert_eq!(doc["executed"], false);
    assert_eq!(
        doc["runs"],
        format!("{} --selftest", run_line(&w, &topo)).as_str()
    );
    assert_eq!(doc["tasks"][1], "extpy\\watch-HAC1-start");
    assert_eq!(doc["commands"].as_array().unwrap().len(), 4);

    let r = w.run(&["watch", "remove", "--node", "HAC1"]).ok();
    assert!(
        r.stdout.ends_with(
            "  schtasks.exe /Delete /TN extpy\\watch-HAC1-daily /F\n  schtasks.exe /Delete /TN extpy\\watch-HAC1-start /F\n"
        ),
        "{}",
        r.stdout
    );
    let r = w.run(&["--json", "watch", "status", "--node", "HAC1"]).ok();
    assert_eq!(
        r.json()["commands"][0],
        "schtasks.exe /Query /TN extpy\\watch-HAC1-daily /V /FO LIST"
    );
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn unknown_node_missing_topology_and_a_line_too_long_are_input_errors() {
    let w = World::new();
    let topo = topology(&w);
    let r = w
        .run(&["watch", "install", "--topology", s(&topo), "--node", "HAC9"])
        .code(2);
    assert!(
        r.stderr
            .contains("has no node \"HAC9\"; its nodes are: HAC1"),
        "{}",
        r.stderr
    );
    let missing = w.path("nowhere/topology.yaml");
    let r = w
        .run(&[
            "watch",
            "install",
            "--topology",
            s(&missing),
            "--node",
            "HAC1",
        ])
        .code(2);
    assert!(
        r.stderr
            .contains(&format!("{}: cannot read the topology", missing.display())),
        "{}",
        r.stderr
    );
    let r = w
        .run(&[
            "watch",
            "install",
            "--bundle",
            s(&w.path("no.zip")),
            "--node",
            "HAC1",
        ])
        .code(2);
    assert!(r.stderr.contains("no.zip does not exist"), "{}", r.stderr);
    let deep = w.path(&"t".repeat(200));
    fs::create_dir_all(&deep).unwrap();
    let long = deep.join("topology.yaml");
    fs::copy(&topo, &long).unwrap();
    let r = w
        .run(&["watch", "install", "--topology", s(&long), "--node", "HAC1"])
        .code(2);
    assert!(
        r.stderr.contains("over the 261 schtasks /TR accepts") && r.stderr.contains("help: "),
        "{}",
        r.stderr
    );
    let r = w.run(&["watch", "remove", "--node", "..\\x"]).code(2);
    assert!(r.stderr.contains("--node"), "{}", r.stderr);
}

fn logged(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn install_runs_each_command_and_a_failure_leaves_no_half_installed_watch() {
    let w = World::new();
    let topo = topology(&w);
    let (script, log) = support::watch_runner(&w);
    let mut c = install(&w, &topo, &["--json"]);
    c.env("EXTPY_WATCH_RUNNER", &script);
    let doc = run(c).ok().json();
    assert_eq!(doc["executed"], true);
    assert_eq!(doc["ran"][3]["output"], "SUCCESS: done");
    let calls = logged(&log);
    let line = run_line(&w, &topo);
    assert_eq!(
        calls,
        [
            "|powershell.exe|-NoProfile|-NonInteractive|-Command|if (-not [System.Diagnostics.EventLog]::SourceExists('extpy')) { New-EventLog -LogName Application -Source extpy }".to_string(),
            format!("|schtasks.exe|/Create|/TN|extpy\\watch-HAC1-daily|/TR|{line}|/SC|DAILY|/ST|03:00|/RU|SYSTEM|/RL|HIGHEST|/F"),
            format!("|schtasks.exe|/Create|/TN|extpy\\watch-HAC1-start|/TR|{line}|/SC|ONSTART|/RU|SYSTEM|/RL|HIGHEST|/F"),
            "|schtasks.exe|/Run|/TN|extpy\\watch-HAC1-daily".to_string(),
        ]
    );

    fs::remove_file(&log).unwrap();
    let mut c = install(&w, &topo, &[]);
    c.env("EXTPY_WATCH_RUNNER", &script)
        .env("WATCH_FAIL", "watch-HAC1-start /TR");
    let r = run(c).code(1);
    assert!(
        r.stderr.contains(
            "cannot install the watch of node HAC1 (the tasks created before it were deleted again): `schtasks.exe /Create /TN extpy\\watch-HAC1-start"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("exited with 1:\n  ERROR: Access is denied.\n  help: run extpy watch install in an elevated prompt"),
        "{}",
        r.stderr
    );
    let calls = logged(&log);
    assert_eq!(calls.len(), 5, "{calls:#?}");
    assert_eq!(
        calls[3],
        "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-daily|/F"
    );
    assert_eq!(
        calls[4],
        "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-start|/F"
    );
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn status_says_which_task_is_missing_and_remove_deletes_both() {
    let w = World::new();
    let (script, log) = support::watch_runner(&w);
    let mut c = extpy();
    c.env("EXTPY_WATCH_RUNNER", &script)
        .env("WATCH_FAIL", "start");
    c.args(["watch", "status", "--node", "HAC1"]);
    let r = run(c).code(3);
    assert!(
        r.stdout
            .contains("ok    extpy\\watch-HAC1-daily\n    SUCCESS: done\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("MISSING  extpy\\watch-HAC1-start"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("the watch of node HAC1 is not installed: extpy\\watch-HAC1-start missing"),
        "{}",
        r.stderr
    );
    let mut c = extpy();
    c.env("EXTPY_WATCH_RUNNER", &script);
    c.args(["--json", "watch", "status", "--node", "HAC1"]);
    let doc = run(c).ok().json();
    assert_eq!(doc["tasks"][1]["installed"], true);

    fs::remove_file(&log).unwrap();
    let mut c = extpy();
    c.env("EXTPY_WATCH_RUNNER", &script);
    c.args(["watch", "remove", "--node", "HAC1"]);
    let r = run(c).ok();
    assert!(
        r.stdout.contains("watch removed for node HAC1"),
        "{}",
        r.stdout
    );
    assert_eq!(
        logged(&log),
        [
            "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-daily|/F",
            "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-start|/F"
        ]
    );
}

/// `c` running `watch run` for node HAC1 with its VU root at `root`, offline as the tasks do.
fn watch_run_with(
    mut c: std::process::Command,
    topo: &Path,
    root: &Path,
    tail: &[&str],
) -> support::Run {
    c.args([
        "--offline",
        "watch",
        "run",
        "--topology",
        s(topo),
        "--node",
        "HAC1",
        "--vu-root",
        s(root),
    ]);
    c.args(tail);
    run(c)
}

fn watch_run(w: &World, topo: &Path, root: &Path, extra: &[&str]) -> support::Run {
    let mut c = w.cmd();
    c.args(extra);
    watch_run_with(c, topo, root, &[])
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn a_run_is_information_when_all_match_and_an_error_naming_each_vu_and_file() {
    let w = World::new();
    let topo = topology(&w);
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    let root = out.join("HAC1");

    let doc = watch_run(&w, &topo, &root, &["--json"]).ok().json();
    assert_eq!(doc["event"]["level"], "information");
    assert_eq!(doc["event"]["id"], 100);
    assert_eq!(doc["event_written"], false);
    let text = doc["event"]["description"].as_str().unwrap();
    assert!(
        text.starts_with("extpy watch, node HAC1: all 2 VUs match seal "),
        "{text}"
    );

    fs::write(
        root.join("ExternalPython2/Python/External/Lib/site-packages/alpha/core.py"),
        "tampered\n",
    )
    .unwrap();
    let r = watch_run(&w, &topo, &root, &[]).code(3);
    assert!(
        r.stdout.contains("not Windows: this entry was not written to the event log:\nApplication log, source extpy, error, event id 101:\n  extpy watch, node HAC1: 1 of 2 VUs differ from the distribution the manifest"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\n  FAIL  HAC1 ExternalPython2 (Core2) "),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("1 of 2 VU folders do not hold the expected distribution")
    );
    let doc = watch_run(&w, &topo, &root, &["--json"]).code(3).json();
    let text = doc["event"]["description"].as_str().unwrap();
    assert!(
        text.contains("\r\nFAIL  HAC1 ExternalPython2 (Core2) ")
            && text.contains("1 changed: Lib/site-packages/alpha/core.py"),
        "{text}"
    );
    assert!(!text.contains("ExternalPython1"), "{text}");
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn a_run_that_cannot_check_still_leaves_an_entry_saying_why() {
    let w = World::new();
    let topo = topology(&w);
    let empty = w.path("empty-cache");
    let mut c = extpy();
    c.arg("--manifest").arg(&w.manifest);
    c.arg("--cache-dir").arg(&empty);
    let r = watch_run_with(c, &topo, &w.path("vu"), &[]).code(4);
    assert!(
        r.stderr.contains("Application log, source extpy, error, event id 102:\n  extpy watch, node HAC1: the VUs could not be checked\n  "),
        "{}",
        r.stderr
    );
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn a_self_test_that_fails_is_its_own_error_naming_the_vu() {
    // certifi (the self-test refuses a tree without it), and no msal, requests, cryptography.
    let pems = tempfile::tempdir().unwrap();
    let pem = fs::read(support::Ca::root("any root").write_pem(pems.path(), "root.pem")).unwrap();
    let mut certifi = WheelSpec::pure("certifi", "1.0");
    certifi.files = vec![
        (
            "certifi/__init__.py".into(),
            b"import os\n\ndef where():\n    return os.path.join(os.path.dirname(__file__), 'cacert.pem')\n".to_vec(),
        ),
        ("certifi/cacert.pem".into(), pem),
    ];
    let w = World::with_wheels(&[certifi]);
    let topo = topology(&w);
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 must be installed for this test");
    let python = String::from_utf8(python.stdout).unwrap();
    let mut c = w.cmd();
    c.env("EXTPY_SELFTEST_PYTHON", python.trim());
    c.args(["--json"]);
    // The world's wheels are not msal, requests and cryptography: the imports fail.
    let doc = watch_run_with(c, &topo, &out.join("HAC1"), &["--selftest"])
        .code(4)
        .json();
    assert_eq!(doc["event"]["id"], 103, "{doc:#}");
    let text = doc["event"]["description"].as_str().unwrap();
    assert!(
        text.starts_with("extpy watch, node HAC1: all 2 VUs match the seal the manifest produces, but 2 failed the self-test\r\nSELFTEST FAIL  HAC1 ExternalPython1 (Core1) "),
        "{text}"
    );
    assert_eq!(doc["selftest"]["folders"].as_array().unwrap().len(), 2);
}

/// A key pair made by `extpy key generate --unencrypted`: (secret, public, its key line).
fn keypair(w: &World, name: &str) -> (PathBuf, PathBuf, String) {
    let secret = w.path(&format!("{name}.key"));
    let mut c = extpy();
    c.args(["--json", "key", "generate", "--unencrypted", s(&secret)]);
    let doc = run(c).ok().json();
    let public = PathBuf::from(doc["public_key"].as_str().unwrap());
    let line = fs::read_to_string(&public)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    (secret, public, line)
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn with_a_trusted_key_a_vu_sealed_by_anyone_else_is_drift_naming_the_vu_and_key() {
    let w = World::new();
    let topo = topology(&w);
    let (secret, public, line) = keypair(&w, "site");
    let (other, _, _) = keypair(&w, "other");
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out), "--sign", s(&secret)])
        .ok();
    let root = out.join("HAC1");
    let sig = |n: u8| {
        root.join(format!(
            "ExternalPython{n}/Python/External/extpy-seal.json.minisig"
        ))
    };

    let run_keyed = |keys: &[&str]| {
        let mut tail = Vec::new();
        for k in keys {
            tail.extend(["--trusted-key", *k]);
        }
        watch_run_with(w.cmd(), &topo, &root, &tail)
    };
    let r = run_keyed(&[s(&public)]).ok();
    assert!(
        r.stdout
            .contains("event id 100:\n  extpy watch, node HAC1: all 2 VUs match seal "),
        "{}",
        r.stdout
    );

    // VU 2 sealed by another key: the same seal, a valid signature, but not a trusted one.
    let elsewhere = w.path("elsewhere");
    w.run(&[
        "layout",
        s(&topo),
        "--out",
        s(&elsewhere),
        "--sign",
        s(&other),
    ])
    .ok();
    fs::copy(
        elsewhere.join("HAC1/ExternalPython2/Python/External/extpy-seal.json.minisig"),
        sig(2),
    )
    .unwrap();
    let r = run_keyed(&[s(&public)]).code(3);
    assert!(
        r.stdout.contains("event id 101:\n  extpy watch, node HAC1: 1 of 2 VUs differ from the distribution the manifest")
            && r.stdout.contains("or are not sealed by a trusted key"),
        "{}",
        r.stdout
    );
    let entry = r.stdout.split("event id 101:").nth(1).unwrap();
    assert!(
        entry.contains("FAIL  HAC1 ExternalPython2 (Core2) ") && entry.contains("; signature: "),
        "{entry}"
    );
    assert!(!entry.contains("ExternalPython1"), "{entry}");
    // The key line itself is a key too; without any key, who sealed it does not matter.
    run_keyed(&[&line]).code(3);
    run_keyed(&[]).ok();

    // Unsigned is drift as well, and so it is when the topology names the key.
    fs::remove_file(sig(2)).unwrap();
    let r = run_keyed(&[s(&public)]).code(3);
    assert!(
        r.stdout.contains("; signature: the seal is not signed"),
        "{}",
        r.stdout
    );
    let keyed = w.path("site files/keyed.yaml");
    let text = fs::read_to_string(&topo).unwrap();
    fs::write(
        &keyed,
        text.replacen("nodes:", &format!("trusted_keys:\n  - {line}\nnodes:"), 1),
    )
    .unwrap();
    let r = watch_run_with(w.cmd(), &keyed, &root, &[]).code(3);
    assert!(r.stdout.contains("event id 101:"), "{}", r.stdout);

    // A key that cannot be read stops the check, and the entry says why.
    let r = run_keyed(&[s(&w.path("nowhere.pub"))]).code(2);
    assert!(
        r.stderr.contains("event id 102:") && r.stderr.contains("nowhere.pub"),
        "{}",
        r.stderr
    );
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows the commands run and the entry is written: these show them off Windows (the runner is a shell script)"
)]
fn install_writes_the_key_lines_and_a_bundle_the_key_did_not_sign_is_refused() {
    let w = World::new();
    let topo = topology(&w);
    let (secret, public, line) = keypair(&w, "site");
    // A key line is 56 characters: without --manifest, the test's paths leave room for it.
    let mut c = extpy();
    c.arg("--cache-dir").arg(&w.cache);
    c.args([
        "--json",
        "watch",
        "install",
        "--topology",
        s(&topo),
        "--node",
        "HAC1",
    ]);
    c.args(["--trusted-key", s(&public)]);
    let doc = run(c).ok().json();
    let exe = fs::canonicalize(extpy_bin()).unwrap();
    assert_eq!(
        doc["runs"],
        format!(
            "{} --cache-dir {} --offline --quiet watch run --topology \"{}\" --node HAC1 --trusted-key {line}",
            exe.display(),
            w.cache.display(),
            topo.display()
        )
        .as_str()
    );
    let mut c = install(&w, &topo, &[]);
    c.args(["--trusted-key", s(&w.path("nowhere.pub"))]);
    let r = run(c).code(2);
    assert!(r.stderr.contains("nowhere.pub"), "{}", r.stderr);
    assert!(!r.stdout.contains("schtasks"), "{}", r.stdout);

    // A bundle holding the topology: unsigned, it is refused when a key is required.
    let unsigned = w.path("unsigned.zip");
    w.run(&["bundle", "create", s(&unsigned), "--topology", s(&topo)])
        .ok();
    let signed = w.path("signed.zip");
    w.run(&[
        "bundle",
        "create",
        s(&signed),
        "--topology",
        s(&topo),
        "--sign",
        s(&secret),
    ])
    .ok();
    let bundle_install = |bundle: &Path| {
        let mut c = extpy();
        c.args([
            "watch",
            "install",
            "--bundle",
            s(bundle),
            "--node",
            "HAC1",
            "--trusted-key",
            s(&public),
        ]);
        run(c)
    };
    let r = bundle_install(&unsigned).code(3);
    assert!(r.stderr.contains("is required"), "{}", r.stderr);
    assert!(!r.stdout.contains("schtasks"), "{}", r.stdout);
    let r = bundle_install(&signed).ok();
    assert!(
        r.stdout.contains(&format!("--trusted-key {line}")),
        "{}",
        r.stdout
    );
}

//! `extpy selftest`: a tree built here by `extpy build` is tried by a real CPython standing in
//! for its python.exe (`EXTPY_SELFTEST_PYTHON`), with the probe CEM's imports go through.
//! The wheels are small stand-ins for msal, requests, certifi, cryptography and cffi with the
//! module layout of the real ones (`requests.certs.where`, cryptography's
//! `hazmat.bindings._rust` and its OpenSSL backend, `_cffi_backend`); each failure verdict is
//! provoked by the tree (a module removed, a CA bundle without the endpoint's root, a path over
//! MAX_PATH, a native module failing the way Windows fails it), and the folder is checked to
//! be byte for byte unchanged afterwards.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Ca, Run, WheelSpec, World, embeddable, extpy, run, sha256_hex, tree};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The real CPython behind `python3` (not a shim), which stands in for python.exe.
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 must be installed for this test");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn wheel(name: &str, files: &[(&str, &str)]) -> WheelSpec {
    let mut spec = WheelSpec::pure(name, "1.0");
    spec.files = files
        .iter()
        .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
        .collect();
    spec
}

/// The stand-in wheels; `pem` is certifi's bundle, `edit` changes a file's text.
fn wheels(pem: &str, edit: &dyn Fn(&str) -> Option<String>) -> Vec<(String, Vec<u8>)> {
    let specs = vec![
        wheel(
            "certifi",
            &[
                (
                    "certifi/__init__.py",
                    "import os\n\ndef where():\n    return os.path.join(os.path.dirname(__file__), 'cacert.pem')\n",
                ),
                ("certifi/cacert.pem", pem),
            ],
        ),
        wheel(
            "requests",
            &[
                ("requests/__init__.py", "from . import certs\n"),
                ("requests/certs.py", "from certifi import where\n"),
            ],
        ),
        wheel("msal", &[("msal/__init__.py", "import requests\n")]),
        wheel(
            "cryptography",
            &[
                ("cryptography/__init__.py", "__version__ = '44.0.0'\n"),
                ("cryptography/hazmat/__init__.py", ""),
                ("cryptography/hazmat/bindings/__init__.py", ""),
                (
                    "cryptography/hazmat/bindings/_rust.py",
                    "OPENSSL = 'OpenSSL 3.4.0 (stand-in)'\n",
                ),
                ("cryptography/hazmat/backends/__init__.py", ""),
                ("cryptography/hazmat/backends/openssl/__init__.py", ""),
                (
                    "cryptography/hazmat/backends/openssl/backend.py",
                    "from cryptography.hazmat.bindings import _rust\n\nclass Backend:\n    def openssl_version_text(self):\n        return _rust.OPENSSL\n\nbackend = Backend()\n",
                ),
            ],
        ),
        wheel("cffi", &[("_cffi_backend.py", "__version__ = '1.17.1'\n")]),
    ];
    specs
        .into_iter()
        .map(|mut spec| {
            for (path, text) in spec.files.iter_mut() {
                if let Some(t) = edit(path) {
                    *text = t.into_bytes();
                }
            }
            (spec.filename(), spec.build())
        })
        .collect()
}

/// A world whose mirror (with its test CA) also stands in for the token endpoint.
fn world(pem: &str, edit: &dyn Fn(&str) -> Option<String>) -> World {
    World::with_artifacts(embeddable(support::PY), wheels(pem, edit))
}

/// A world whose builds trust its mirror: see [`build_trusting`].
fn trusting() -> World {
    world(&other_root(), &|_| None)
}

/// A bundle holding one root that is not the mirror's.
fn other_root() -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::read_to_string(Ca::root("Some Other Root").write_pem(dir.path(), "other.pem")).unwrap()
}

/// Builds, then puts the world's test CA into certifi's bundle and reseals, as a site that
/// adds its proxy's CA to certifi by hand would: requests in the tree then trusts the mirror.
fn build_trusting(w: &World) -> PathBuf {
    let dest = build(w);
    fs::copy(&w.ca_pem, dest.join("Lib/site-packages/certifi/cacert.pem")).unwrap();
    support::reseal(&dest, |_| true);
    dest
}

fn build(w: &World) -> PathBuf {
    let dest = w.path("dist");
    w.run(&["build", s(&dest)]).ok();
    dest
}

/// Every file of a tree with its sha256.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    tree(dir)
        .into_iter()
        .map(|p| {
            let h = sha256_hex(&fs::read(dir.join(&p)).unwrap());
            (p, h)
        })
        .collect()
}

fn selftest(w: &World, args: &[&str]) -> Run {
    let mut c = w.cmd();
    c.env("EXTPY_SELFTEST_PYTHON", python());
    c.arg("selftest").args(args);
    c.arg("--authority-url").arg(w.mirror.url());
    run(c)
}

fn verdicts(doc: &Value) -> Vec<String> {
    doc["folders"][0]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_complete_tree_passes_and_is_left_byte_for_byte_as_it_was() {
    let w = trusting();
    let dest = build_trusting(&w);
    let before = snapshot(&dest);
    let r = selftest(&w, &["--json", s(&dest)]).ok();
    let doc = r.json();
    let f = &doc["folders"][0];
    assert_eq!(doc["ok"], true, "{doc:#}");
    assert_eq!(f["stand_in"], true);
    let imports: Vec<&str> = f["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["ok"] == true)
        .map(|i| i["module"].as_str().unwrap())
        .collect();
    assert_eq!(
        imports,
        [
            "ssl",
            "certifi",
            "requests",
            "msal",
            "cryptography",
            "cryptography.hazmat.bindings._rust",
            "_cffi_backend"
        ]
    );
    // Every module but the stand-in's own ssl came from the tree.
    let msal = f["imports"][3]["file"].as_str().unwrap();
    assert!(msal.starts_with(s(&dest)), "{msal}");
    assert!(
        f["openssl"]["ssl"].as_str().unwrap().starts_with("OpenSSL"),
        "{f:#}"
    );
    assert_eq!(f["openssl"]["cryptography"], "OpenSSL 3.4.0 (stand-in)");
    assert_eq!(f["openssl"]["cryptography_version"], "44.0.0");
    let bundle = f["ca_bundle"].as_str().unwrap();
    assert!(
        bundle.starts_with(s(&dest)) && bundle.ends_with("cacert.pem"),
        "{bundle}"
    );
    assert_eq!(f["trust"], "certifi");
    assert_eq!(f["tls"]["status"], "ok", "{f:#}");
    assert!(f["tls"]["version"].as_str().unwrap().starts_with("TLSv1."));
    assert!(f["longest_path"]["length"].as_u64().unwrap() < 259);
    assert_eq!(
        snapshot(&dest),
        before,
        "the self-test wrote into the folder"
    );
    assert!(!tree(&dest).iter().any(|p| p.contains("__pycache__")));
    // The folder still matches its seal (extpy's own; the CA was added by hand).
    let mut c = extpy();
    c.args(["verify", "--strict", s(&dest)]);
    run(c).ok();

    // The human report names each part.
    let r = selftest(&w, &[s(&dest)]).ok();
    for part in [
        "import",
        "msal ok",
        "openssl",
        "ca bundle",
        "tls",
        "ok, TLSv1.",
        "longest path",
        "verdict      ok",
        "1 of 1 folder passed",
    ] {
        assert!(r.stdout.contains(part), "{part}:\n{}", r.stdout);
    }
    assert!(r.stdout.is_ascii());
}

#[test]
fn a_module_that_does_not_import_is_named_with_its_fix() {
    let w = trusting();
    let dest = build_trusting(&w);
    fs::remove_file(dest.join("Lib/site-packages/msal/__init__.py")).unwrap();
    fs::remove_dir(dest.join("Lib/site-packages/msal")).unwrap();
    let before = snapshot(&dest);
    let r = selftest(&w, &["--json", s(&dest)]).code(4);
    let doc = r.json();
    assert_eq!(verdicts(&doc), ["import_failed"]);
    let v = &doc["folders"][0]["verdicts"][0];
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("import msal failed: ModuleNotFoundError"),
        "{v:#}"
    );
    assert!(
        v["fix"]["steps"][0]
            .as_str()
            .unwrap()
            .starts_with("extpy verify "),
        "{v:#}"
    );
    assert!(
        r.stderr.contains("1 of 1 folders failed the self-test"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&dest), before);
}

#[test]
fn a_ca_bundle_without_the_endpoints_root_is_untrusted_root_with_the_runtime_trust_fix() {
    let w = world(&other_root(), &|_| None);
    let dest = build(&w);
    let before = snapshot(&dest);
    let doc = selftest(&w, &["--json", s(&dest)]).code(4).json();
    assert_eq!(verdicts(&doc), ["untrusted_root"], "{doc:#}");
    let f = &doc["folders"][0];
    assert_eq!(f["tls"]["status"], "failed");
    assert_eq!(f["tls"]["issuer"], "extpy test root CA", "{f:#}");
    let v = &f["verdicts"][0];
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("CERTIFICATE_VERIFY_FAILED"),
        "{v:#}"
    );
    assert!(
        v["fix"]["summary"]
            .as_str()
            .unwrap()
            .contains("runtime_trust: system"),
        "{v:#}"
    );
    assert_eq!(snapshot(&dest), before);

    // --offline tries no TLS.
    let mut c = w.cmd();
    c.env("EXTPY_SELFTEST_PYTHON", python());
    c.args(["--offline", "--json", "selftest", s(&dest)]);
    let doc = run(c).ok().json();
    assert_eq!(doc["folders"][0]["tls"]["status"], "skipped");
}

#[test]
fn a_path_over_max_path_is_path_too_long() {
    let w = trusting();
    let dest = build_trusting(&w);
    // The tree moved (by hand) under a deep folder: the build itself refuses such a place.
    let deep = w.path(&format!("{}/{}/dist", "a".repeat(90), "b".repeat(90)));
    fs::create_dir_all(deep.parent().unwrap()).unwrap();
    fs::rename(&dest, &deep).unwrap();
    let doc = selftest(&w, &["--json", s(&deep)]).code(4).json();
    let f = &doc["folders"][0];
    assert_eq!(verdicts(&doc), ["path_too_long"], "{doc:#}");
    let longest = f["longest_path"]["path"].as_str().unwrap();
    assert!(longest.starts_with(s(&deep)), "{longest}");
    assert!(f["longest_path"]["length"].as_u64().unwrap() > 259);
    let v = &f["verdicts"][0];
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("LongPathsEnabled is not set"),
        "{v:#}"
    );
    assert!(
        v["fix"]["steps"][1]
            .as_str()
            .unwrap()
            .contains("long_paths: true"),
        "{v:#}"
    );
}

#[test]
fn native_modules_failing_as_windows_fails_them_are_blocked_or_missing_their_runtime() {
    // The error texts CPython raises on Windows when a .pyd is refused by WDAC and when a
    // DLL it needs is missing; here the tree's stand-ins raise them in a real import.
    let w = world(&other_root(), &|path| {
        match path {
        "_cffi_backend.py" => Some("raise ImportError('DLL load failed while importing _cffi_backend: An Application Control policy has blocked this file.')\n".into()),
        "cryptography/hazmat/bindings/_rust.py" => Some("raise ImportError('DLL load failed while importing _rust: The specified module could not be found.')\n".into()),
        _ => None,
    }
    });
    let dest = build(&w);
    fs::remove_file(dest.join("vcruntime140.dll")).unwrap();
    let mut c = w.cmd();
    c.env("EXTPY_SELFTEST_PYTHON", python());
    c.args(["--offline", "--json", "selftest", s(&dest)]);
    let doc = run(c).code(4).json();
    let codes = verdicts(&doc);
    assert!(codes.contains(&"dll_blocked".to_string()), "{doc:#}");
    assert!(codes.contains(&"missing_runtime".to_string()), "{doc:#}");
    let all = doc["folders"][0]["verdicts"].to_string();
    assert!(
        all.contains("vcruntime140.dll and vcruntime140_1.dll missing"),
        "{all}"
    );
    assert!(
        all.contains("Visual C++ 2015-2022 Redistributable"),
        "{all}"
    );
    assert!(all.contains("New-CIPolicy -Level Hash"), "{all}");
}

#[test]
fn a_probe_that_hangs_is_stopped_at_the_time_limit() {
    let w = world(&other_root(), &|path| {
        (path == "msal/__init__.py").then(|| "import time\ntime.sleep(60)\n".into())
    });
    let dest = build(&w);
    let start = Instant::now();
    let mut c = w.cmd();
    c.env("EXTPY_SELFTEST_PYTHON", python());
    c.args([
        "--offline",
        "--json",
        "selftest",
        "--time-limit",
        "2",
        s(&dest),
    ]);
    let doc = run(c).code(4).json();
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(verdicts(&doc), ["timed_out"], "{doc:#}");
}

#[test]
fn every_vu_of_a_node_is_tried_with_its_pairing() {
    let w = trusting();
    let dest = build_trusting(&w);
    let topology = w.path("topology.yaml");
    fs::write(&topology, "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n").unwrap();
    let root = w.path("vu");
    w.run(&[
        "layout",
        s(&topology),
        "--node",
        "HAC1",
        "--vu-root",
        s(&root),
        "--dist",
        s(&dest),
        // The tree trusts the test's CA, so it was resealed: not the seal the manifest makes.
        "--trust-dist-seal",
    ])
    .ok();
    fs::remove_dir_all(root.join("ExternalPython2/Python/External/Lib/site-packages/msal"))
        .unwrap();
    let doc = selftest(
        &w,
        &[
            "--json",
            "--topology",
            s(&topology),
            "--node",
            "HAC1",
            "--vu-root",
            s(&root),
        ],
    )
    .code(4)
    .json();
    let folders = doc["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 2);
    assert_eq!(
        (
            folders[0]["vu"].as_str(),
            folders[0]["core"].as_str(),
            folders[0]["ok"].as_bool()
        ),
        (Some("ExternalPython1"), Some("Core1"), Some(true))
    );
    assert_eq!(
        (folders[1]["vu"].as_str(), folders[1]["ok"].as_bool()),
        (Some("ExternalPython2"), Some(false))
    );
    // The length is counted where the folder is used: here --vu-root (else the topology's).
    let longest = folders[0]["longest_path"]["path"].as_str().unwrap();
    let vu1 = root.join("ExternalPython1/Python/External/");
    assert!(longest.starts_with(s(&vu1)), "{longest}");
}

#[test]
fn bad_input_is_refused_with_help() {
    // A CA bundle without a certificate: requests in it cannot verify anything.
    let w = world("# no roots\n", &|_| None);
    let dest = build(&w);
    let r = selftest(&w, &[s(&dest)]).code(2);
    assert!(
        r.stderr.contains("certifi's bundle cannot be used"),
        "{}",
        r.stderr
    );
    let w = trusting();
    // Not a distribution.
    let r = selftest(&w, &[s(&w.path("nowhere"))]).code(2);
    assert!(
        r.stderr.contains("cannot read it") && r.stderr.contains("help:"),
        "{}",
        r.stderr
    );
    // Without a stand-in, only Windows can run python.exe.
    let dest = build_trusting(&w);
    let r = w.run(&["selftest", s(&dest)]);
    if cfg!(windows) {
        return;
    }
    let r = r.code(2);
    assert!(
        r.stderr.contains("EXTPY_SELFTEST_PYTHON") && r.stderr.contains("help:"),
        "{}",
        r.stderr
    );
}

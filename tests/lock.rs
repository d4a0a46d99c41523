//! `extpy lock` against the local HTTPS mirror: several versions per project, extras,
//! markers, requires-python, yanked files, metadata files and a lying index.

use std::fs;

use support::sigstore::{Sign, TestSigstore};
use support::{WheelSpec, World};

fn spec(name: &str, version: &str, tag: &str, requires: &[&str]) -> WheelSpec {
    let mut w = WheelSpec::pure(name, version);
    w.tag = tag.into();
    w.requires = requires.iter().map(|s| s.to_string()).collect();
    w
}

const ANY: &str = "py3-none-any";

/// A small index shaped like the real set: msal -> requests, PyJWT[crypto], cryptography
/// -> cffi -> pycparser; versions that the target cannot use for each reason.
fn index_specs() -> Vec<WheelSpec> {
    vec![
        spec(
            "msal",
            "1.39.0",
            ANY,
            &[
                "requests<3,>=2.0.0",
                "PyJWT[crypto]<3,>=1.0.0",
                "cryptography<51,>=2.5",
                "pymsalruntime<0.21,>=0.20; (python_version >= \"3.9\" and platform_system == \"Windows\") and extra == 'broker'",
            ],
        ),
        spec("msal", "1.38.0", ANY, &["requests<3,>=2.0.0"]),
        spec(
            "requests",
            "2.34.2",
            ANY,
            &[
                "urllib3<3,>=1.26",
                "idna<4,>=2.5",
                "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
            ],
        ),
        spec("urllib3", "2.7.0", ANY, &[]),
        spec("urllib3", "2.8.0", ANY, &[]),
        spec("idna", "3.20", ANY, &[]),
        spec("idna", "3.21", ANY, &[]), // requires-python >=3.13 below
        spec(
            "PyJWT",
            "2.15.1",
            ANY,
            &[
                "typing_extensions>=4.0; python_version < \"3.11\"",
                "cryptography>=3.4.0; extra == \"crypto\"",
            ],
        ),
        spec(
            "cryptography",
            "50.0.2",
            "cp311-abi3-win_amd64",
            &["cffi>=2.0.0; platform_python_implementation != 'PyPy'"],
        ),
        spec(
            "cryptography",
            "50.0.3",
            "cp311-abi3-manylinux_2_28_x86_64",
            &[],
        ),
        spec("cryptography", "51.0.0", "cp311-abi3-win_amd64", &[]),
        spec(
            "cffi",
            "2.1.1",
            "cp312-cp312-win_amd64",
            &["pycparser; implementation_name != \"PyPy\""],
        ),
        spec("cffi", "2.1.1", "cp311-cp311-win_amd64", &["pycparser"]),
        spec("pycparser", "3.12", ANY, &[]),
        spec("pycparser", "3.13", ANY, &[]), // yanked below
    ]
}

const EXPECTED: &[&str] = &[
    "cffi-2.1.1-cp312-cp312-win_amd64.whl",
    "cryptography-50.0.2-cp311-abi3-win_amd64.whl",
    "idna-3.20-py3-none-any.whl",
    "msal-1.39.0-py3-none-any.whl",
    "pycparser-3.12-py3-none-any.whl",
    "PyJWT-2.15.1-py3-none-any.whl",
    "requests-2.34.2-py3-none-any.whl",
    "urllib3-2.8.0-py3-none-any.whl",
];

/// A world serving the index, with a manifest that requires msal and pins nothing yet.
fn world() -> World {
    let w = World::with_wheels(&index_specs());
    w.mirror
        .requires_python("idna-3.21-py3-none-any.whl", ">=3.13");
    w.mirror
        .yank("pycparser-3.13-py3-none-any.whl", "broken on Windows");
    // Some files offer PEP 658 metadata files, the others are read from the wheel.
    for f in [
        "msal-1.39.0-py3-none-any.whl",
        "requests-2.34.2-py3-none-any.whl",
        "cffi-2.1.1-cp312-cp312-win_amd64.whl",
    ] {
        w.mirror.serve_metadata(f);
    }
    write_manifest(&w, &["msal>=1.38"], &[]);
    w
}

fn write_manifest(w: &World, requires: &[&str], pins: &[&str]) {
    let mut text = format!(
        "# CEM's External Python (test)\nschema: 1\nname: test-dist\npython:\n  version: 3.12.10   # the last with Windows binaries\n  platform: win_amd64\nembeddable:\n  file: python-3.12.10-embed-amd64.zip\n  sha256: {}\nrequires:\n",
        support::sha256_hex(&w.embed)
    );
    for r in requires {
        text.push_str(&format!("  - \"{r}\"\n"));
    }
    text.push_str("wheels:\n");
    for p in pins {
        let bytes = &w
            .wheels
            .iter()
            .find(|(f, _)| f == p)
            .expect("pinned wheel")
            .1;
        text.push_str(&format!(
            "  # pin of {p}\n  - file: {p}\n    sha256: {}\n    provenance: none\n",
            support::sha256_hex(bytes)
        ));
    }
    fs::write(&w.manifest, text).unwrap();
}

fn pinned_files(w: &World) -> Vec<String> {
    let text = fs::read_to_string(&w.manifest).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("the lock writes YAML");
    let mut files: Vec<String> = doc["wheels"]
        .as_sequence()
        .expect("a wheels list")
        .iter()
        .map(|w| w["file"].as_str().expect("a file name").to_string())
        .collect();
    files.sort_by_key(|f| f.to_lowercase());
    files
}

#[test]
fn lock_resolves_for_cpython_on_windows_and_writes_pins_with_urls() {
    let w = world();
    let r = w.run(&["lock"]).ok();
    assert_eq!(pinned_files(&w), EXPECTED, "{}", r.stderr);
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        text.starts_with("# CEM's External Python (test)\n"),
        "{text}"
    );
    assert!(
        text.contains("version: 3.12.10   # the last with Windows binaries"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "    url: {}/files/urllib3-2.8.0-py3-none-any.whl\n",
            w.mirror.url()
        )),
        "{text}"
    );
    assert!(r.stdout.contains("msal"), "{}", r.stdout);
    assert!(r.stdout.contains("(none) -> 1.39.0"), "{}", r.stdout);
    // Metadata files were used where offered; the wheel where not.
    assert_eq!(
        w.mirror
            .requests_to("/files/msal-1.39.0-py3-none-any.whl.metadata")
            .len(),
        1
    );
    assert!(
        w.mirror
            .requests_to("/files/msal-1.39.0-py3-none-any.whl")
            .is_empty()
    );
    assert_eq!(
        w.mirror
            .requests_to("/files/urllib3-2.8.0-py3-none-any.whl")
            .len(),
        1
    );

    // fetch goes straight to the locked URLs: no index page is read.
    let before = w.mirror.requests().len();
    w.run(&["fetch"]).ok();
    let after: Vec<_> = w.mirror.requests()[before..].to_vec();
    assert!(
        after.iter().all(|r| !r.path.starts_with("/simple/")),
        "{after:?}"
    );

    // A second lock changes nothing, writes nothing, and reads no metadata again (only
    // each pin's publisher, which may have changed since).
    let mtime = fs::metadata(&w.manifest).unwrap().modified().unwrap();
    let before = w.mirror.requests().len();
    let r = w.run(&["lock", "--json"]).ok();
    let doc = r.json();
    assert_eq!(doc["stale"], false);
    assert_eq!(doc["changes"].as_array().unwrap().len(), 0);
    assert_eq!(
        fs::metadata(&w.manifest).unwrap().modified().unwrap(),
        mtime
    );
    let again: Vec<_> = w.mirror.requests()[before..].to_vec();
    assert!(
        again
            .iter()
            .all(|r| r.path.starts_with("/simple/") || r.path.starts_with("/integrity/")),
        "{again:?}"
    );
    w.run(&["lock", "--check", "--upgrade"]).ok();
}

#[test]
fn html_index_without_metadata_files_gives_the_same_lock() {
    let w = world();
    w.mirror.html_only();
    w.run(&["lock", "--no-urls"]).ok();
    assert_eq!(pinned_files(&w), EXPECTED);
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(!text.contains("url:"), "{text}");
}

#[test]
fn new_urllib3_fails_check_upgrade_and_upgrade_package_changes_only_urllib3() {
    let w = world();
    write_manifest(
        &w,
        &["msal>=1.38"],
        &[
            "msal-1.38.0-py3-none-any.whl",
            "requests-2.34.2-py3-none-any.whl",
            "urllib3-2.7.0-py3-none-any.whl",
            "idna-3.20-py3-none-any.whl",
        ],
    );
    // The pins meet the requirements: nothing changes without an upgrade.
    w.run(&["lock", "--check"]).ok();
    let r = w.run(&["lock", "--check", "--upgrade"]).code(3);
    assert!(r.stderr.contains("the lock is stale"), "{}", r.stderr);
    assert!(r.stdout.contains("urllib3"), "{}", r.stdout);
    let text_before = fs::read_to_string(&w.manifest).unwrap();

    let r = w
        .run(&["lock", "--upgrade-package", "urllib3", "--no-urls"])
        .ok();
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert_eq!(
        pinned_files(&w),
        [
            "idna-3.20-py3-none-any.whl",
            "msal-1.38.0-py3-none-any.whl",
            "requests-2.34.2-py3-none-any.whl",
            "urllib3-2.8.0-py3-none-any.whl",
        ]
    );
    assert!(r.stdout.contains("2.7.0 -> 2.8.0"), "{}", r.stdout);
    assert!(r.stdout.contains("upgrade asked"), "{}", r.stdout);
    // Only the urllib3 lines differ; its comment stays.
    let changed: Vec<(&str, &str)> = text_before
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(
        text.contains("  # pin of urllib3-2.7.0-py3-none-any.whl\n  - file: urllib3-2.8.0"),
        "{text}"
    );

    // --upgrade takes msal to 1.39.0 and adds what it needs.
    let r = w.run(&["lock", "--upgrade"]).ok();
    assert_eq!(pinned_files(&w), EXPECTED);
    assert!(r.stdout.contains("new: needed by"), "{}", r.stdout);
}

#[test]
fn a_yanked_pin_is_replaced_and_reported_and_an_exact_pin_keeps_it() {
    let w = world();
    write_manifest(&w, &["pycparser"], &["pycparser-3.12-py3-none-any.whl"]);
    w.mirror
        .yank("pycparser-3.12-py3-none-any.whl", "bad build");
    // The only other version is yanked too: with nothing left, the chain says why.
    let r2 = w.run(&["lock"]).code(2);
    assert!(
        r2.stderr
            .contains("pycparser 3.13 is yanked (broken on Windows)"),
        "{}",
        r2.stderr
    );
    assert!(
        r2.stderr.contains("pycparser 3.12 is yanked (bad build)"),
        "{}",
        r2.stderr
    );
    assert!(!r2.stderr.contains("requires 0"), "{}", r2.stderr);
    let fresh = WheelSpec::pure("pycparser", "3.14");
    w.mirror.add_wheel(&fresh.filename(), fresh.build());
    let r = w.run(&["lock", "--check"]).code(3);
    assert!(
        r.stdout.contains("3.12 is yanked (bad build)"),
        "{}",
        r.stdout
    );
    let r = w.run(&["lock"]).ok();
    assert!(r.stdout.contains("3.12 -> 3.14"), "{}", r.stdout);
    assert_eq!(pinned_files(&w), ["pycparser-3.14-py3-none-any.whl"]);
    write_manifest(
        &w,
        &["pycparser==3.12"],
        &["pycparser-3.12-py3-none-any.whl"],
    );
    let r = w.run(&["lock"]).ok();
    assert!(
        r.stderr.contains("is yanked on the index (bad build)"),
        "{}",
        r.stderr
    );
    assert_eq!(pinned_files(&w), ["pycparser-3.12-py3-none-any.whl"]);
}

#[test]
fn unsatisfiable_requirements_are_explained_as_a_chain() {
    let w = world();
    write_manifest(&w, &["msal>=1.39", "cryptography>=50.0.3"], &[]);
    let before = fs::read_to_string(&w.manifest).unwrap();
    let r = w.run(&["lock"]).code(2);
    assert!(r.stderr.contains("cannot be met together"), "{}", r.stderr);
    assert!(r.stderr.contains("cryptography"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cryptography 50.0.3 has no wheel for CPython 3.12 on win_amd64"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("help:"), "{}", r.stderr);
    assert!(r.stderr.is_ascii());
    assert_eq!(
        fs::read_to_string(&w.manifest).unwrap(),
        before,
        "no manifest written"
    );

    write_manifest(&w, &["idna>=3.21"], &[]);
    let r = w.run(&["lock"]).code(2);
    assert!(
        r.stderr
            .contains("idna 3.21 requires Python >=3.13, not 3.12.10"),
        "{}",
        r.stderr
    );
}

#[test]
fn lying_index_gives_clear_errors_and_never_a_manifest() {
    let w = world();
    let before = fs::read_to_string(&w.manifest).unwrap();

    // The metadata file is not what the page announces.
    w.mirror
        .publish_metadata_hash("msal-1.39.0-py3-none-any.whl", &"0".repeat(64));
    let r = w.run(&["lock"]).code(3);
    assert!(
        r.stderr.contains("msal-1.39.0-py3-none-any.whl.metadata"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("but the index page publishes 0000"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), before);

    // A wheel whose bytes differ from the page's hash (no metadata file: the wheel is read).
    let w = world();
    w.mirror
        .publish_hash("urllib3-2.8.0-py3-none-any.whl", &"1".repeat(64));
    let r = w.run(&["lock"]).code(3);
    assert!(
        r.stderr
            .contains("urllib3-2.8.0-py3-none-any.whl has sha256"),
        "{}",
        r.stderr
    );

    // A metadata file describing another project.
    let w = world();
    w.mirror.serve_metadata_bytes(
        "requests-2.34.2-py3-none-any.whl",
        b"Metadata-Version: 2.1\nName: evil\nVersion: 6.6.6\n".to_vec(),
    );
    let r = w.run(&["lock"]).code(3);
    assert!(r.stderr.contains("describes evil 6.6.6"), "{}", r.stderr);

    // A page that is not JSON.
    let w = world();
    w.mirror.put("/simple/msal/", b"nope".to_vec());
    let r = w.run(&["lock"]);
    assert_ne!(r.code, 0);

    // An index without the project.
    let w = world();
    write_manifest(&w, &["no-such-project"], &[]);
    let r = w.run(&["lock"]).code(4);
    assert!(
        r.stderr.contains("has no project \"no-such-project\""),
        "{}",
        r.stderr
    );
}

#[test]
fn lock_needs_requires_and_a_writable_manifest() {
    let w = world();
    write_manifest(&w, &[], &[]);
    let text = fs::read_to_string(&w.manifest)
        .unwrap()
        .replace("requires:\n", "");
    fs::write(&w.manifest, text).unwrap();
    let r = w.run(&["lock"]).code(2);
    assert!(r.stderr.contains("has no `requires:`"), "{}", r.stderr);

    let mut c = support::extpy();
    c.args(["lock", "--index-url", &w.mirror.index_url(), "--ca-cert"])
        .arg(&w.ca_pem)
        .arg("--cache-dir")
        .arg(&w.cache);
    let r = support::run(c).code(2);
    assert!(
        r.stderr.contains("built-in manifest cannot be rewritten"),
        "{}",
        r.stderr
    );

    let w = world();
    let out = w.path("locked.yaml");
    let before = fs::read_to_string(&w.manifest).unwrap();
    w.run(&["lock", "--out", out.to_str().unwrap()]).ok();
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), before);
    assert!(fs::read_to_string(&out).unwrap().contains("msal-1.39.0"));
}

fn locked_world() -> World {
    let w = world();
    w.run(&["lock"]).ok();
    w
}

#[test]
fn audit_names_the_cve_and_the_fix_of_a_vulnerable_pin_and_exits_3() {
    let w = locked_world();
    let r = w.run(&["audit"]).ok();
    assert!(r.stdout.contains("8 pinned wheels audited"), "{}", r.stdout);
    assert!(r.stdout.contains("CPython 3.12.10: "), "{}", r.stdout);
    assert!(
        r.stdout.contains("no known vulnerabilities"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("3.12.10 is the last release with Windows binaries"),
        "{}",
        r.stderr
    );

    w.mirror.add_vulnerability(
        "cryptography",
        "50.0.2",
        serde_json::json!({
            "id": "GHSA-aaaa-bbbb-cccc",
            "aliases": ["CVE-2026-12345"],
            "summary": "NULL dereference when loading PKCS#12 files",
            "fixed_in": ["50.0.4"],
            "link": "https://osv.dev/vulnerability/GHSA-aaaa-bbbb-cccc",
            "withdrawn": null
        }),
    );
    w.mirror.add_vulnerability(
        "requests",
        "2.34.2",
        serde_json::json!({ "id": "PYSEC-0", "aliases": [], "fixed_in": [], "withdrawn": "2026-01-01T00:00:00Z" }),
    );
    let r = w.run(&["audit"]).code(3);
    assert!(r.stdout.contains("cryptography 50.0.2"), "{}", r.stdout);
    assert!(r.stdout.contains("CVE-2026-12345"), "{}", r.stdout);
    assert!(r.stdout.contains("50.0.4"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("extpy lock --upgrade-package cryptography"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("PYSEC-0"),
        "a withdrawn advisory is not shown: {}",
        r.stdout
    );
    assert!(
        r.stderr.contains("1 finding affected: cryptography"),
        "{}",
        r.stderr
    );

    let doc = w.run(&["audit", "--json"]).code(3).json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["findings"], 1);
    // The pinned CPython's line, with its schedule's PEP (the status itself depends on the
    // month; src/job/audit.rs tests it at fixed dates).
    let python = &doc["python"];
    assert_eq!(python["pep"], "PEP 693", "{python}");
    assert_eq!(python["end_of_life"], "2028-10", "{python}");
    assert!(
        ["bugfix", "security_only", "end_of_life"].contains(&python["support"].as_str().unwrap()),
        "{python}"
    );

    // An accepted risk, with its reason, passes; an --ignore without a reason is refused.
    let r = w
        .run(&[
            "audit",
            "--ignore",
            "CVE-2026-12345=CEM loads no PKCS#12 files",
        ])
        .ok();
    assert!(
        r.stdout.contains("ignored: CEM loads no PKCS#12 files"),
        "{}",
        r.stdout
    );
    let r = w.run(&["audit", "--ignore", "CVE-2026-12345"]).code(2);
    assert!(r.stderr.contains("has no reason"), "{}", r.stderr);
}

#[test]
fn audit_lists_each_artifacts_publisher_the_pinned_one_or_provenance_none() {
    let w = locked_world();
    let requests = wheel_bytes(&w, "requests-2.34.2-py3-none-any.whl");
    w.pin_provenance(
        &requests,
        "{repository: psf/requests, workflow: publish.yml}",
    );
    w.pin_provenance(
        &w.embed.clone(),
        "{identity: thomas@python.org, issuer: 'https://accounts.google.com'}",
    );
    let r = w.run(&["audit"]).ok();
    let row = |file: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(file))
            .unwrap_or_else(|| panic!("no row for {file}:\n{}", r.stdout))
            .to_string()
    };
    assert!(
        row("requests-2.34.2-py3-none-any.whl")
            .ends_with("GitHub repository psf/requests, workflow publish.yml"),
        "{}",
        r.stdout
    );
    assert!(
        row("python-3.12.10-embed-amd64.zip")
            .ends_with("thomas@python.org (issuer https://accounts.google.com)"),
        "{}",
        r.stdout
    );
    assert!(
        row("msal-1.39.0-py3-none-any.whl").ends_with("provenance: none"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "7 of 9 artifacts pin no publisher (provenance: none): nothing proves who published them"
        ),
        "{}",
        r.stdout
    );

    let doc = w.run(&["audit", "--json"]).ok().json();
    assert_eq!(
        doc["embeddable"]["provenance"],
        serde_json::json!({"identity": "thomas@python.org", "issuer": "https://accounts.google.com"})
    );
    let packages = doc["packages"].as_array().unwrap();
    let by_file = |f: &str| packages.iter().find(|p| p["file"] == f).unwrap();
    assert_eq!(
        by_file("requests-2.34.2-py3-none-any.whl")["provenance"],
        serde_json::json!({"repository": "psf/requests", "workflow": "publish.yml"})
    );
    assert_eq!(
        by_file("msal-1.39.0-py3-none-any.whl")["provenance"],
        "none"
    );
}

/// The bytes of the world's wheel `file`.
fn wheel_bytes(w: &World, file: &str) -> Vec<u8> {
    w.wheels
        .iter()
        .find(|(f, _)| f == file)
        .map(|(_, b)| b.clone())
        .unwrap_or_else(|| panic!("no wheel {file}"))
}

#[test]
fn a_yanked_pin_is_reported_by_lock_check_and_by_audit() {
    let w = locked_world();
    w.mirror
        .yank("urllib3-2.8.0-py3-none-any.whl", "breaks proxies");
    let r = w.run(&["audit"]).code(3);
    assert!(r.stdout.contains("urllib3 2.8.0  yanked"), "{}", r.stdout);
    assert!(r.stdout.contains("breaks proxies"), "{}", r.stdout);
    let r = w.run(&["lock", "--check"]).code(3);
    assert!(r.stdout.contains("2.8.0 -> 2.7.0"), "{}", r.stdout);
    assert!(
        r.stdout.contains("2.8.0 is yanked (breaks proxies)"),
        "{}",
        r.stdout
    );
}

#[test]
fn audit_without_a_json_api_says_what_it_needs() {
    let w = locked_world();
    let text = fs::read_to_string(&w.manifest).unwrap();
    let text = text.replace("idna-3.20-py3-none-any.whl", "idna-3.19-py3-none-any.whl");
    fs::write(&w.manifest, text).unwrap();
    let r = w.run(&["audit"]).code(4);
    assert!(r.stderr.contains("/pypi/idna/3.19/json"), "{}", r.stderr);
    assert!(r.stderr.contains("JSON API"), "{}", r.stderr);
}

/// The oracle: pip, asked for the same requirement for CPython 3.12 on win_amd64 from the
/// same index (metadata files, yanks, requires-python and all), picks the same files.
#[test]
fn lock_picks_what_pip_download_picks_from_the_same_index() {
    let w = world();
    w.run(&["lock"]).ok();
    let dest = w.path("pip-picks");
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "--isolated",
            "download",
            "--quiet",
            "--no-cache-dir",
        ])
        .args([
            "--only-binary=:all:",
            "--platform",
            "win_amd64",
            "--python-version",
            "3.12",
        ])
        .arg("--index-url")
        .arg(w.mirror.index_url())
        // pip is the oracle for what is picked, not for TLS: it refuses the test CA's chain
        // ("unable to get local issuer certificate"), so it trusts the loopback host as is.
        .args(["--trusted-host", "127.0.0.1"])
        .arg("-d")
        .arg(&dest)
        .arg("msal>=1.38")
        .output()
        .expect("python3 -m pip must be installed for this oracle test");
    assert!(
        out.status.success(),
        "pip download failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut picked: Vec<String> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    picked.sort_by_key(|f| f.to_lowercase());
    assert_eq!(picked, pinned_files(&w));
    assert_eq!(picked, EXPECTED);
}

/// The world with a manifest pinned to CPython 3.12.9, and the mirror serving 3.12.9 and
/// 3.12.10 (each with the `.spdx.json` python.org publishes beside it), 3.12.11 and 3.12.12
/// as source only, and 3.13.0 with an embeddable zip (another branch).
fn python_world() -> World {
    let w = world();
    let old = support::embeddable("3.12.9");
    w.mirror
        .add_python("3.12.9", "python-3.12.9-embed-amd64.zip", old.clone());
    w.mirror.add_python_spdx(
        "3.12.9",
        "python-3.12.9-embed-amd64.zip",
        &support::sha256_hex(&old),
    );
    w.mirror.add_python_spdx(
        "3.12.10",
        "python-3.12.10-embed-amd64.zip",
        &support::sha256_hex(&w.embed),
    );
    for v in ["3.12.11", "3.12.12"] {
        w.mirror
            .add_python(v, &format!("Python-{v}.tgz"), b"source".to_vec());
    }
    w.mirror.add_python(
        "3.13.0",
        "python-3.13.0-embed-amd64.zip",
        support::embeddable("3.13.0"),
    );
    let text = fs::read_to_string(&w.manifest)
        .unwrap()
        .replace("3.12.10", "3.12.9")
        .replace(&support::sha256_hex(&w.embed), &support::sha256_hex(&old));
    fs::write(&w.manifest, text).unwrap();
    w
}

#[test]
fn lock_python_pins_the_embeddable_zip_from_the_published_sbom() {
    let w = python_world();
    // Stale: the manifest has 3.12.9.
    let r = w.run(&["lock", "--check", "--python", "3.12.10"]).code(3);
    assert!(
        r.stdout.contains("python") && r.stdout.contains("3.12.9 -> 3.12.10"),
        "{}",
        r.stdout
    );
    let r = w.run(&["lock", "--python", "3.12.10", "--json"]).ok();
    let doc = r.json();
    let sha = support::sha256_hex(&w.embed);
    assert_eq!(doc["python"], "3.12.10");
    assert_eq!(doc["embeddable"]["sha256"], sha);
    assert_eq!(doc["embeddable"]["size"], w.embed.len());
    let url = format!(
        "{}python-3.12.10-embed-amd64.zip",
        w.mirror.python_mirror() + "3.12.10/"
    );
    assert_eq!(doc["embeddable"]["url"], url);
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        text.contains(&format!(
            "  version: 3.12.10   # the last with Windows binaries\n  platform: win_amd64\nembeddable:\n  file: python-3.12.10-embed-amd64.zip\n  sha256: {sha}\n  url: {url}\n  size: {}\n  provenance: none\nrequires:\n",
            w.embed.len()
        )),
        "{text}"
    );
    assert!(
        text.starts_with("# CEM's External Python (test)\n"),
        "{text}"
    );
    // Up to date now; the zip was checked into the cache, so fetch needs no download of it.
    w.run(&["lock", "--check", "--python", "3.12.10"]).ok();
    let before = w
        .mirror
        .requests_to("/python/3.12.10/python-3.12.10-embed-amd64.zip")
        .len();
    assert_eq!(before, 1);
    w.run(&["fetch"]).ok();
    assert_eq!(
        w.mirror
            .requests_to("/python/3.12.10/python-3.12.10-embed-amd64.zip")
            .len(),
        1
    );
    // Going back is a change too, and --check says so without writing.
    let r = w.run(&["lock", "--check", "--python", "3.12.9"]).code(3);
    assert!(r.stdout.contains("3.12.10 -> 3.12.9"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), text);
}

#[test]
fn lock_python_refuses_a_release_without_an_embeddable_zip_naming_the_last_one() {
    let w = python_world();
    let before = fs::read_to_string(&w.manifest).unwrap();
    for v in ["3.12.12", "3.12.99"] {
        let r = w.run(&["lock", "--python", v]).code(2);
        assert!(
            r.stderr.contains(&format!(
                "CPython {v} has no embeddable zip for win_amd64 on {}",
                w.mirror.python_mirror()
            )),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(
                "help: the last 3.12 release with one is 3.12.10: extpy lock --python 3.12.10"
            ),
            "{}",
            r.stderr
        );
    }
    let r = w.run(&["lock", "--python", "3.11.4"]).code(2);
    assert!(
        r.stderr
            .contains("help: no 3.11 release on that mirror has one"),
        "{}",
        r.stderr
    );
    // The zip without the .spdx.json python.org puts beside it: no published sha256.
    w.mirror.add_python(
        "3.12.8",
        "python-3.12.8-embed-amd64.zip",
        support::embeddable("3.12.8"),
    );
    let r = w.run(&["lock", "--python", "3.12.8"]).code(2);
    assert!(
        r.stderr.contains(&format!(
            "{}3.12.8/python-3.12.8-embed-amd64.zip.spdx.json does not exist, so the mirror publishes no sha256",
            w.mirror.python_mirror()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), before);
}

/// A world on CPython 3.14.3 (`python-3.14.3-embed-amd64.zip`) whose mirror also has
/// 3.14.10 under the name later 3.14 releases carry, `python-3.14.10-embeddable-amd64.zip`.
fn world_3_14() -> World {
    let w = World::with_wheels(&[spec("requests", "2.34.2", ANY, &[])]);
    let mut first = String::new();
    for (v, file) in [
        ("3.14.3", "python-3.14.3-embed-amd64.zip"),
        ("3.14.10", "python-3.14.10-embeddable-amd64.zip"),
    ] {
        let zip = support::embeddable(v);
        w.mirror.add_python(v, file, zip.clone());
        w.mirror
            .add_python_spdx(v, file, &support::sha256_hex(&zip));
        if first.is_empty() {
            first = support::sha256_hex(&zip);
        }
    }
    fs::write(
        &w.manifest,
        format!(
            "schema: 1\nname: test-3.14\npython:\n  version: 3.14.3\n  platform: win_amd64\nembeddable:\n  file: python-3.14.3-embed-amd64.zip\n  sha256: {first}\nrequires:\n  - requests\nwheels: []\n"
        ),
    )
    .unwrap();
    w
}

#[test]
fn lock_python_pins_a_3_14_zip_under_the_embeddable_name_and_builds_it() {
    let w = world_3_14();
    w.run(&["lock"]).ok();
    let doc = w
        .run(&["lock", "--python", "3.14.10", "--json"])
        .ok()
        .json();
    let file = "python-3.14.10-embeddable-amd64.zip";
    let url = format!("{}3.14.10/{file}", w.mirror.python_mirror());
    assert_eq!(doc["embeddable"]["url"], url, "{doc}");
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        text.contains(&format!("embeddable:\n  file: {file}\n")),
        "{text}"
    );
    // The short name was asked for first, and the mirror has no such file.
    assert_eq!(
        w.mirror
            .requests_to("/python/3.14.10/python-3.14.10-embed-amd64.zip.spdx.json")
            .len(),
        1
    );
    w.run(&["lock", "--check", "--python", "3.14.10"]).ok();
    let dist = w.path("dist");
    w.run(&["build", dist.to_str().unwrap()]).ok();
    assert!(dist.join("python314._pth").is_file());
    let seal = fs::read_to_string(dist.join("extpy-seal.json")).unwrap();
    assert!(seal.contains(file), "{seal}");

    // Back to 3.14.3: the short name again.
    w.run(&["lock", "--python", "3.14.3"]).ok();
    let back = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        back.contains("  file: python-3.14.3-embed-amd64.zip\n"),
        "{back}"
    );

    // A zip of the long name without its SBOM has no published sha256, and a release with
    // neither name names the last one that has a zip, whichever its name.
    w.mirror.add_python(
        "3.14.11",
        "python-3.14.11-embeddable-amd64.zip",
        support::embeddable("3.14.11"),
    );
    w.mirror
        .add_python("3.14.12", "Python-3.14.12.tgz", b"source".to_vec());
    let r = w.run(&["lock", "--python", "3.14.11"]).code(2);
    assert!(
        r.stderr.contains(&format!(
            "{}3.14.11/python-3.14.11-embeddable-amd64.zip.spdx.json does not exist",
            w.mirror.python_mirror()
        )),
        "{}",
        r.stderr
    );
    let r = w.run(&["lock", "--python", "3.14.12"]).code(2);
    assert!(
        r.stderr.contains(
            "help: the last 3.14 release with one is 3.14.11: extpy lock --python 3.14.11"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), back);
}

#[test]
fn lock_python_refuses_lying_or_malformed_sha_data() {
    let w = python_world();
    let before = fs::read_to_string(&w.manifest).unwrap();
    let file = "python-3.12.10-embed-amd64.zip";
    let lie = "ab".repeat(32);
    w.mirror.add_python_spdx("3.12.10", file, &lie);
    let r = w.run(&["lock", "--python", "3.12.10"]).code(3);
    assert!(
        r.stderr.contains(&format!(
            "{file} has sha256 {}, but {file}.spdx.json beside it publishes {lie}",
            support::sha256_hex(&w.embed)
        )),
        "{}",
        r.stderr
    );
    assert!(!w.cache.join("sha256").join(&lie).exists());
    let spdx = format!("/python/3.12.10/{file}.spdx.json");
    for (body, needle) in [
        (b"<html>not json</html>".to_vec(), "is not the SPDX document of"),
        (
            br#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"CPython","packageFileName":"python-3.12.9-embed-amd64.zip","checksums":[]}]}"#.to_vec(),
            "describes no package with packageFileName python-3.12.10-embed-amd64.zip",
        ),
        (
            format!(r#"{{"spdxVersion":"SPDX-2.3","packages":[{{"packageFileName":"{file}","checksums":[{{"algorithm":"SHA256","checksumValue":"xyz"}}]}}]}}"#).into_bytes(),
            "is not one",
        ),
    ] {
        w.mirror.put(&spdx, body);
        let r = w.run(&["lock", "--python", "3.12.10"]).code(3);
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("{file}.spdx.json")), "{}", r.stderr);
    }
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), before);
}

#[test]
fn lock_python_explains_a_network_failure() {
    let w = python_world();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut c = support::extpy();
    c.arg("--manifest").arg(&w.manifest);
    c.arg("--cache-dir").arg(&w.cache);
    c.arg("--index-url").arg(w.mirror.index_url());
    c.arg("--ca-cert").arg(&w.ca_pem);
    c.args(["--retries", "0", "--timeout", "2"]);
    c.arg("--python-mirror")
        .arg(format!("https://127.0.0.1:{port}/python/"));
    c.args(["lock", "--python", "3.12.10"]);
    let r = support::run(c).code(4);
    assert!(
        r.stderr.contains(&format!(
            "cannot connect to 127.0.0.1 (url https://127.0.0.1:{port}/python/3.12.10/"
        )),
        "{}",
        r.stderr
    );
    // A server error on the SBOM is a network failure too, named with its URL.
    w.mirror.fault(
        "/python/3.12.10/python-3.12.10-embed-amd64.zip.spdx.json",
        support::mirror::Fault::Status(503),
    );
    let r = w
        .run(&["--retries", "0", "lock", "--python", "3.12.10"])
        .code(4);
    assert!(
        r.stderr
            .contains("python-3.12.10-embed-amd64.zip.spdx.json"),
        "{}",
        r.stderr
    );
}

/// The trust root of a test Sigstore, written into the world; and the index serving the
/// requests wheel's provenance signed by `repository`'s publish.yml.
fn sign_requests(w: &World, sig: &TestSigstore, repository: &str) -> String {
    let root = w.path("trusted_root.json");
    fs::write(&root, sig.trust_root_json()).unwrap();
    let file = "requests-2.34.2-py3-none-any.whl";
    let i = w.wheels.iter().position(|(f, _)| f == file).unwrap();
    let doc = sig.provenance(
        file,
        &support::sha256_hex(&w.wheels[i].1),
        &Sign::github(repository, "publish.yml"),
    );
    w.serve_provenance(i, &doc);
    root.to_string_lossy().into_owned()
}

/// The manifest's entry of `file`: its lines from `- file:` to the next entry.
fn entry_of(text: &str, file: &str) -> String {
    let start = text
        .find(&format!("- file: {file}"))
        .unwrap_or_else(|| panic!("{file} in:\n{text}"));
    let rest = &text[start + 2..];
    let end = rest.find("- file:").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn lock_records_the_verified_publisher_of_a_signed_wheel_and_none_for_the_others() {
    let w = world();
    let sig = TestSigstore::new();
    let root = sign_requests(&w, &sig, "psf/requests");
    let doc = w
        .run(&["lock", "--json", "--sigstore-trust-root", &root])
        .ok()
        .json();
    let pins = doc["pins"].as_array().unwrap();
    let pin = |p: &str| pins.iter().find(|x| x["package"] == p).unwrap().clone();
    assert_eq!(
        pin("requests")["provenance"],
        serde_json::json!({"repository": "psf/requests", "workflow": "publish.yml"})
    );
    assert_eq!(pin("msal")["provenance"], "none");
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        entry_of(&text, "requests-2.34.2-py3-none-any.whl")
            .contains("    provenance: {repository: psf/requests, workflow: publish.yml}\n"),
        "{text}"
    );
    assert!(
        entry_of(&text, "msal-1.39.0-py3-none-any.whl").contains("    provenance: none\n"),
        "{text}"
    );
    // What lock recorded is what fetch then verifies.
    let doc = w
        .run(&["fetch", "--json", "--sigstore-trust-root", &root])
        .ok()
        .json();
    let fetched = doc["artifacts"].as_array().unwrap();
    let requests = fetched
        .iter()
        .find(|a| a["file"] == "requests-2.34.2-py3-none-any.whl")
        .unwrap();
    assert_eq!(requests["publisher"]["status"], "verified", "{requests}");
    // Up to date, and --check agrees.
    w.run(&["lock", "--check", "--sigstore-trust-root", &root])
        .ok();
}

/// The diff row of `package` in a `lock --check` that found the lock stale.
fn stale_row(r: &support::Run, package: &str) -> String {
    assert!(r.stderr.contains("the lock is stale"), "{}", r.stderr);
    r.stdout
        .lines()
        .find(|l| l.starts_with(package))
        .unwrap_or_else(|| panic!("no {package} row:\n{}", r.stdout))
        .to_string()
}

#[test]
fn lock_check_fails_naming_old_and_new_when_a_publisher_changed() {
    let w = world();
    let sig = TestSigstore::new();
    let root = sign_requests(&w, &sig, "psf/requests");
    w.run(&["lock", "--sigstore-trust-root", &root]).ok();
    let locked = fs::read_to_string(&w.manifest).unwrap();

    sign_requests(&w, &sig, "attacker/requests");
    let r = w
        .run(&["lock", "--check", "--sigstore-trust-root", &root])
        .code(3);
    let row = stale_row(&r, "requests");
    assert!(row.contains("2.34.2 -> 2.34.2"), "{row}");
    assert!(
        row.contains("publisher changed: GitHub repository psf/requests, workflow publish.yml -> GitHub repository attacker/requests, workflow publish.yml"),
        "{row}"
    );
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), locked);

    // The index now answers 404: the pinned publisher went away, as loudly.
    w.mirror.fault(
        "/integrity/requests/2.34.2/requests-2.34.2-py3-none-any.whl/provenance",
        support::mirror::Fault::Status(404),
    );
    let r = w
        .run(&["lock", "--check", "--sigstore-trust-root", &root])
        .code(3);
    assert!(
        r.stdout
            .contains("publisher changed: GitHub repository psf/requests, workflow publish.yml -> provenance: none"),
        "{}",
        r.stdout
    );

    // Without --check, lock writes the new publisher and shows the same row.
    let r = w.run(&["lock", "--sigstore-trust-root", &root]).ok();
    assert!(r.stdout.contains("attacker/requests"), "{}", r.stdout);
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        entry_of(&text, "requests-2.34.2-py3-none-any.whl")
            .contains("provenance: {repository: attacker/requests, workflow: publish.yml}"),
        "{text}"
    );
}

#[test]
fn an_attestation_that_does_not_verify_fails_the_lock_naming_its_url() {
    let w = world();
    let sig = TestSigstore::new();
    let root = sign_requests(&w, &sig, "psf/requests");
    let before = fs::read_to_string(&w.manifest).unwrap();
    // The public trust root (the default) does not know the test Sigstore.
    let r = w.run(&["lock"]).code(3);
    assert!(
        r.stderr.contains(
            "/integrity/requests/2.34.2/requests-2.34.2-py3-none-any.whl/provenance: the provenance of requests-2.34.2-py3-none-any.whl does not verify"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("signed by: https://github.com/psf/requests/"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    // One signed for other bytes is refused too.
    let file = "requests-2.34.2-py3-none-any.whl";
    let i = w.wheels.iter().position(|(f, _)| f == file).unwrap();
    let mut s = Sign::github("psf/requests", "publish.yml");
    s.subject_sha256 = Some(support::sha256_hex(b"other bytes"));
    w.serve_provenance(
        i,
        &sig.provenance(file, &support::sha256_hex(&w.wheels[i].1), &s),
    );
    let r = w.run(&["lock", "--sigstore-trust-root", &root]).code(3);
    assert!(r.stderr.contains("the signed sha256 is"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), before);
}

const ZIP_3_12_10: &str = "python-3.12.10-embed-amd64.zip";

/// python.org's release manager for 3.12, as its Sigstore page names them.
fn thomas() -> Sign {
    Sign::signer("thomas@python.org", "https://accounts.google.com")
}

/// The world of [`python_world`] with a test Sigstore's trust root written into it; the
/// root's path.
fn python_signed_world(sig: &TestSigstore) -> (World, String) {
    let w = python_world();
    let root = w.path("trusted_root.json");
    fs::write(&root, sig.trust_root_json()).unwrap();
    (w, root.to_string_lossy().into_owned())
}

fn sigstore_url(w: &World, version: &str, file: &str) -> String {
    format!("{}{version}/{file}.sigstore", w.mirror.python_mirror())
}

#[test]
fn lock_python_records_the_verified_cpython_signer_and_fetch_verifies_it_from_the_cache() {
    let sig = TestSigstore::new();
    let (w, root) = python_signed_world(&sig);
    w.mirror
        .add_python_sigstore("3.12.10", ZIP_3_12_10, &sig.bundle(&w.embed, &thomas()));
    let r = w
        .run(&[
            "lock",
            "--python",
            "3.12.10",
            "--json",
            "--sigstore-trust-root",
            &root,
        ])
        .ok();
    assert_eq!(
        r.json()["embeddable"]["provenance"],
        serde_json::json!({"identity": "thomas@python.org", "issuer": "https://accounts.google.com"})
    );
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        text.contains(&format!(
            "  size: {}\n  provenance: {{identity: thomas@python.org, issuer: 'https://accounts.google.com'}}\nrequires:\n",
            w.embed.len()
        )),
        "{text}"
    );
    // The verified bundle is where fetch looks: it verifies it without asking again.
    assert!(w.blob(&w.embed).with_extension("sigstore").is_file());
    let path = format!("/python/3.12.10/{ZIP_3_12_10}.sigstore");
    assert_eq!(w.mirror.requests_to(&path).len(), 1);
    let doc = w
        .run(&["fetch", "--json", "--sigstore-trust-root", &root])
        .ok()
        .json();
    let zip = doc["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["file"] == ZIP_3_12_10)
        .unwrap()
        .clone();
    assert_eq!(zip["publisher"]["status"], "verified", "{zip}");
    assert_eq!(zip["publisher"]["identity"], "thomas@python.org", "{zip}");
    w.run(&["--offline", "fetch", "--sigstore-trust-root", &root])
        .ok();
    assert_eq!(w.mirror.requests_to(&path).len(), 1);
    // Up to date, and --check agrees.
    w.run(&[
        "lock",
        "--check",
        "--python",
        "3.12.10",
        "--sigstore-trust-root",
        &root,
    ])
    .ok();
}

#[test]
fn lock_python_refuses_a_cpython_signer_python_org_does_not_name() {
    let sig = TestSigstore::new();
    let (w, root) = python_signed_world(&sig);
    let before = fs::read_to_string(&w.manifest).unwrap();
    let mallory = Sign::signer("mallory@example.org", "https://accounts.google.com");
    w.mirror
        .add_python_sigstore("3.12.10", ZIP_3_12_10, &sig.bundle(&w.embed, &mallory));
    for check in [false, true] {
        let mut args = vec![
            "lock",
            "--python",
            "3.12.10",
            "--sigstore-trust-root",
            &root,
        ];
        if check {
            args.push("--check");
        }
        let r = w.run(&args).code(3);
        assert!(
            r.stderr.contains(&format!(
                "{}: {ZIP_3_12_10} is signed by another identity than python.org names for CPython 3.12",
                sigstore_url(&w, "3.12.10", ZIP_3_12_10)
            )),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("expected: thomas@python.org (issuer https://accounts.google.com)"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("found:    mallory@example.org (issuer https://accounts.google.com)"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    }
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), before);
    assert!(!w.blob(&w.embed).with_extension("sigstore").exists());
}

#[test]
fn lock_python_refuses_a_cpython_bundle_that_does_not_verify() {
    let sig = TestSigstore::new();
    let (w, root) = python_signed_world(&sig);
    let before = fs::read_to_string(&w.manifest).unwrap();
    let url = sigstore_url(&w, "3.12.10", ZIP_3_12_10);
    // Signed by the right release manager, but over other bytes.
    w.mirror.add_python_sigstore(
        "3.12.10",
        ZIP_3_12_10,
        &sig.bundle(b"another zip", &thomas()),
    );
    let r = w
        .run(&[
            "lock",
            "--python",
            "3.12.10",
            "--sigstore-trust-root",
            &root,
        ])
        .code(3);
    assert!(
        r.stderr.contains(&format!(
            "{url}: the provenance of {ZIP_3_12_10} does not verify: the signed sha256 is"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&support::sha256_hex(&w.embed)),
        "{}",
        r.stderr
    );
    // A good bundle, but the default (public) trust root does not know the test Sigstore.
    w.mirror
        .add_python_sigstore("3.12.10", ZIP_3_12_10, &sig.bundle(&w.embed, &thomas()));
    let r = w.run(&["lock", "--python", "3.12.10"]).code(3);
    assert!(
        r.stderr.contains(&format!(
            "{url}: the provenance of {ZIP_3_12_10} does not verify"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--sigstore-trust-root"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), before);
    assert!(!w.blob(&w.embed).with_extension("sigstore").exists());
}

#[test]
fn lock_python_without_a_sigstore_bundle_records_provenance_none_and_warns() {
    let sig = TestSigstore::new();
    let (w, root) = python_signed_world(&sig);
    let r = w
        .run(&[
            "lock",
            "--python",
            "3.12.10",
            "--sigstore-trust-root",
            &root,
        ])
        .ok();
    assert!(
        r.stderr.contains(&format!(
            "{} does not exist, so the CPython signer of {ZIP_3_12_10} is not recorded (provenance: none)",
            sigstore_url(&w, "3.12.10", ZIP_3_12_10)
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("did not copy the .sigstore files"),
        "{}",
        r.stderr
    );
    let text = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        text.contains(&format!(
            "  size: {}\n  provenance: none\nrequires:\n",
            w.embed.len()
        )),
        "{text}"
    );
    // A bundle appearing later is a change --check shows: the signer is found.
    w.mirror
        .add_python_sigstore("3.12.10", ZIP_3_12_10, &sig.bundle(&w.embed, &thomas()));
    let r = w
        .run(&[
            "lock",
            "--check",
            "--python",
            "3.12.10",
            "--sigstore-trust-root",
            &root,
        ])
        .code(3);
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("python"))
        .unwrap_or_else(|| panic!("no python row:\n{}", r.stdout));
    assert!(row.contains("3.12.10 -> 3.12.10"), "{row}");
    assert!(
        row.contains("publisher found: thomas@python.org (issuer https://accounts.google.com)"),
        "{row}"
    );
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), text);
}

#[test]
fn lock_check_fails_naming_old_and_new_when_the_cpython_signer_changed() {
    let sig = TestSigstore::new();
    let (w, root) = python_signed_world(&sig);
    // A line python.org's page names no signer for: what verifies is recorded, and said so.
    write_manifest(&w, &["idna"], &[]);
    let zip = support::embeddable("3.15.0");
    let file = "python-3.15.0-embed-amd64.zip";
    w.mirror.add_python("3.15.0", file, zip.clone());
    w.mirror
        .add_python_spdx("3.15.0", file, &support::sha256_hex(&zip));
    let first = Sign::signer("rm@example.org", "https://github.com/login/oauth");
    w.mirror
        .add_python_sigstore("3.15.0", file, &sig.bundle(&zip, &first));
    let lock = |check: bool| {
        let mut args = vec!["lock", "--python", "3.15.0", "--sigstore-trust-root", &root];
        if check {
            args.push("--check");
        }
        w.run(&args)
    };
    let r = lock(false).ok();
    assert!(
        r.stderr.contains(&format!(
            "python.org's Sigstore page names no signer for CPython 3.15 to check against; {file} is recorded as signed by rm@example.org (issuer https://github.com/login/oauth)"
        )),
        "{}",
        r.stderr
    );
    let locked = fs::read_to_string(&w.manifest).unwrap();
    assert!(
        locked.contains(
            "  provenance: {identity: rm@example.org, issuer: 'https://github.com/login/oauth'}\n"
        ),
        "{locked}"
    );
    lock(true).ok();

    let second = Sign::signer("other@example.org", "https://accounts.google.com");
    w.mirror
        .add_python_sigstore("3.15.0", file, &sig.bundle(&zip, &second));
    let r = lock(true).code(3);
    let row = stale_row(&r, "python");
    assert!(row.contains("3.15.0 -> 3.15.0"), "{row}");
    assert!(
        row.contains("publisher changed: rm@example.org (issuer https://github.com/login/oauth) -> other@example.org (issuer https://accounts.google.com)"),
        "{row}"
    );
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), locked);

    // The bundle went away: the pinned signer is gone, as loudly.
    w.mirror.fault(
        &format!("/python/3.15.0/{file}.sigstore"),
        support::mirror::Fault::Status(404),
    );
    let r = lock(true).code(3);
    assert!(
        r.stdout.contains(
            "publisher changed: rm@example.org (issuer https://github.com/login/oauth) -> provenance: none"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(fs::read_to_string(&w.manifest).unwrap(), locked);
}

/// `lock` on the shipped 3.13 manifest, served its own real wheels (the ones scripts/test.sh
/// downloads by their pinned sha256) by the local index, which also serves PEP 740
/// provenance for requests and urllib3. This machine's index answers 404 for every
/// `/integrity` URL, so those documents are signed by the test's own Sigstore and the
/// publishers are the test's; what is real is the manifest and every wheel and its metadata.
/// The lock keeps every pin as shipped, writes each publisher it verified, and writes
/// `provenance: none` for msal and the others that have none.
#[test]
#[ignore = "needs the real wheels scripts/test.sh downloads (EXTPY_TEST_UPGRADE_WHEELS)"]
fn lock_on_the_shipped_3_13_manifest_writes_the_publishers_found_and_none_for_msal() {
    let wheels = support::upgrade_wheels("3.13");
    let w = World::with_artifacts(support::embeddable("3.13.16"), wheels);
    let shipped = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests/python-3.13-win-amd64.yaml"),
    )
    .unwrap();
    fs::write(&w.manifest, &shipped).unwrap();
    let sig = TestSigstore::new();
    let root = w.path("trusted_root.json");
    fs::write(&root, sig.trust_root_json()).unwrap();
    let root = root.to_str().unwrap();
    let publishers = [
        ("requests-", "psf/requests"),
        ("urllib3-", "urllib3/urllib3"),
    ];
    for (prefix, repository) in publishers {
        let i = w
            .wheels
            .iter()
            .position(|(f, _)| f.starts_with(prefix))
            .unwrap_or_else(|| {
                panic!(
                    "no {prefix} wheel among {:?}",
                    w.wheels.iter().map(|(f, _)| f).collect::<Vec<_>>()
                )
            });
        let (file, bytes) = &w.wheels[i];
        let doc = sig.provenance(
            file,
            &support::sha256_hex(bytes),
            &Sign::github(repository, "publish.yml"),
        );
        w.serve_provenance(i, &doc);
    }

    let r = w
        .run(&["lock", "--no-urls", "--sigstore-trust-root", root])
        .ok();
    let text = fs::read_to_string(&w.manifest).unwrap();
    // Every pin is the shipped one.
    for line in shipped
        .lines()
        .filter(|l| l.starts_with("  - file:") || l.starts_with("    sha256:"))
    {
        assert!(
            text.contains(&format!("{line}\n")),
            "{line} is gone:\n{text}\n{}",
            r.stdout
        );
    }
    for (prefix, repository) in publishers {
        let file = &w
            .wheels
            .iter()
            .find(|(f, _)| f.starts_with(prefix))
            .unwrap()
            .0;
        assert!(
            entry_of(&text, file).contains(&format!(
                "    provenance: {{repository: {repository}, workflow: publish.yml}}\n"
            )),
            "{file}:\n{text}"
        );
    }
    let msal = &w
        .wheels
        .iter()
        .find(|(f, _)| f.starts_with("msal-"))
        .unwrap()
        .0;
    assert!(
        entry_of(&text, msal).contains("    provenance: none\n"),
        "{text}"
    );
    // Every wheel now says who published it, or that nobody is known to have.
    assert_eq!(
        text.matches("\n    provenance: ").count(),
        w.wheels.len(),
        "{text}"
    );
    // And the lock is what the index says now.
    w.run(&[
        "lock",
        "--check",
        "--no-urls",
        "--sigstore-trust-root",
        root,
    ])
    .ok();
}

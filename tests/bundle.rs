//! Offline bundles: deterministic bytes, strict verification, and builds, layouts and plans
//! that never touch the network.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use support::fixtures::{RawEntry, raw_zip, windows_exe};
use support::sigstore::{Sign, TestSigstore};
use support::{World, extpy, run};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The example-like topology of the world (one node, two cores).
fn topology(w: &World) -> PathBuf {
    let path = w.path("topology.yaml");
    fs::write(&path, "schema: 1\nsystem: Air-gapped site\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n").unwrap();
    path
}

fn create(w: &World, out: &Path) -> String {
    let topo = topology(w);
    let r = w
        .run(&["bundle", "create", s(out), "--topology", s(&topo)])
        .ok();
    r.stdout
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Every entry of a zip: name, bytes.
fn entries(zip: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
    (0..a.len())
        .map(|i| {
            let mut f = a.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().unwrap().to_string(), data)
        })
        .collect()
}

/// Writes `entries` as a stored zip (to tamper with a bundle).
fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut w = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn two_creates_at_different_times_and_cache_orders_give_identical_bytes() {
    let w = World::new();
    let a = w.path("a.zip");
    let first = create(&w, &a);

    // A second cache filled in the opposite order, later, with other file times.
    let other_cache = w.path("cache2");
    fs::create_dir_all(other_cache.join("sha256")).unwrap();
    let mut blobs: Vec<PathBuf> = fs::read_dir(w.cache.join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    blobs.sort();
    blobs.reverse();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for b in &blobs {
        fs::copy(b, other_cache.join("sha256").join(b.file_name().unwrap())).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let b = w.path("b.zip");
    let topo = topology(&w);
    let mut c = extpy();
    c.args([
        "--manifest",
        s(&w.manifest),
        "--cache-dir",
        s(&other_cache),
        "--offline",
        "bundle",
        "create",
        s(&b),
        "--topology",
        s(&topo),
    ]);
    let r = run(c).ok();
    let second = r
        .stdout
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(first, second, "the printed sha256 is the same");
    assert_eq!(
        fs::read(&a).unwrap(),
        fs::read(&b).unwrap(),
        "the bytes are the same"
    );
    assert_eq!(first, support::sha256_hex(&fs::read(&a).unwrap()));
}

#[test]
fn entries_are_sorted_stored_with_fixed_times_and_the_artifacts_are_byte_identical() {
    let w = World::new();
    let out = w.path("b.zip");
    create(&w, &out);
    let mut a = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
    let names: Vec<String> = (0..a.len())
        .map(|i| a.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for i in 0..a.len() {
        let f = a.by_index(i).unwrap();
        assert_eq!(
            f.compression(),
            zip::CompressionMethod::Stored,
            "{}",
            f.name().unwrap()
        );
        let t = f.last_modified().unwrap();
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (1980, 1, 1, 0, 0, 0)
        );
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o644));
    }
    let all = entries(&out);
    for (file, bytes) in &w.wheels {
        let inside = all
            .iter()
            .find(|(n, _)| n == &format!("artifacts/{file}"))
            .unwrap();
        assert_eq!(&inside.1, bytes);
    }
    let sums = String::from_utf8(
        all.iter()
            .find(|(n, _)| n == "SHA256SUMS")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert_eq!(
        sums.lines().count(),
        all.len() - 1,
        "every other entry is listed"
    );
    assert_eq!(
        sums.matches("\r\n").count(),
        all.len() - 1,
        "CRLF: a bundle is read on Windows"
    );
    let plan = &all.iter().find(|(n, _)| n == "plan.md").unwrap().1;
    let plan = String::from_utf8(plan.clone()).unwrap();
    assert!(plan.is_ascii());
    assert_eq!(plan.matches('\n').count(), plan.matches("\r\n").count());
}

#[test]
fn source_date_epoch_is_honoured() {
    let w = World::new();
    let out = w.path("b.zip");
    let topo = topology(&w);
    let mut c = w.cmd();
    c.env("SOURCE_DATE_EPOCH", "1700000000").args([
        "bundle",
        "create",
        s(&out),
        "--topology",
        s(&topo),
    ]);
    run(c).ok();
    let mut a = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
    let t = a.by_index(0).unwrap().last_modified().unwrap();
    assert_eq!(
        (t.year(), t.month(), t.day(), t.hour(), t.minute()),
        (2023, 11, 14, 22, 13)
    );
    let mut c = w.cmd();
    c.env("SOURCE_DATE_EPOCH", "yesterday")
        .args(["bundle", "create", s(&w.path("x.zip"))]);
    let r = run(c).code(2);
    assert!(
        r.stderr
            .contains("SOURCE_DATE_EPOCH=\"yesterday\" is not a number"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_and_inspect_a_good_bundle() {
    let w = World::new();
    let out = w.path("b.zip");
    let sha = create(&w, &out);
    let r = run({
        let mut c = extpy();
        c.args(["bundle", "verify", s(&out)]);
        c
    })
    .ok();
    assert!(
        r.stdout.starts_with(&format!(
            "ok    {}: 10 entries match SHA256SUMS and their pins (sha256 {sha})",
            out.display()
        )),
        "{}",
        r.stdout
    );
    let mut c = extpy();
    c.args(["bundle", "inspect", "--json", s(&out)]);
    let doc = run(c).ok().json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["meta"]["python"], "3.12.10");
    assert_eq!(doc["meta"]["artifacts"].as_array().unwrap().len(), 4);
    assert_eq!(doc["topology"]["system"], "Air-gapped site");
    assert_eq!(doc["topology"]["pairs"][1]["vu"], "ExternalPython2");
    assert_eq!(doc["check"]["sha256"], sha);
    let mut c = extpy();
    c.args(["bundle", "inspect", s(&out)]);
    let human = run(c).ok().stdout;
    assert!(
        human.contains("python   3.12.10 (win_amd64)")
            && human.contains("HAC1       Core2      ExternalPython2"),
        "{human}"
    );
}

/// Asserts the bundle is refused by verify and by build (nothing written) with `needle`.
fn refused(w: &World, bundle: &Path, needle: &str) {
    let mut c = extpy();
    c.args(["bundle", "verify", s(bundle)]);
    let r = run(c).code(3);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains(needle),
        "verify: expected {needle:?} in:\n{all}"
    );
    let dest = w.path("dest-from-bad-bundle");
    let mut c = extpy();
    c.args(["build", "--bundle", s(bundle), s(&dest)]);
    let r = run(c).code(3);
    assert!(
        r.stderr.contains(needle),
        "build: expected {needle:?} in:\n{}",
        r.stderr
    );
    assert!(!dest.exists(), "nothing written");
    let leftovers: Vec<_> = fs::read_dir(w.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("extpy-tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_tampered_artifact_is_refused() {
    let w = World::new();
    let good = w.path("b.zip");
    create(&w, &good);
    let mut all = entries(&good);
    let target = format!("artifacts/{}", w.wheels[0].0);
    for (n, d) in all.iter_mut() {
        if *n == target {
            d[10] ^= 0xff;
        }
    }
    let bad = w.path("tampered.zip");
    write_zip(&bad, &all);
    refused(&w, &bad, &format!("{target} changed"));
    refused(&w, &bad, &format!("{target} does not match its pin"));
}

/// `entries` with `name` replaced by `data` and SHA256SUMS made to agree (what someone who
/// edits a bundle consistently does).
fn replace_consistently(all: &mut Vec<(String, Vec<u8>)>, name: &str, data: Option<Vec<u8>>) {
    match data {
        Some(d) => all
            .iter_mut()
            .filter(|(n, _)| n == name)
            .for_each(|e| e.1 = d.clone()),
        None => all.retain(|(n, _)| n != name),
    }
    let sums: String = all
        .iter()
        .filter(|(n, _)| n != "SHA256SUMS")
        .map(|(n, d)| format!("{}  {n}\r\n", support::sha256_hex(d)))
        .collect();
    for (n, d) in all.iter_mut() {
        if n == "SHA256SUMS" {
            *d = sums.clone().into_bytes();
        }
    }
}

#[test]
fn the_bundle_carries_the_sbom_of_its_build_and_verify_checks_it() {
    let w = World::new();
    let good = w.path("b.zip");
    create(&w, &good);
    let all = entries(&good);
    let sbom = all
        .iter()
        .find(|(n, _)| n == "extpy-sbom.cdx.json")
        .map(|(_, d)| d.clone())
        .expect("the bundle has the SBOM");
    // The tree built from the bundle carries the same bytes.
    let dest = w.path("dist");
    let mut c = no_network();
    c.args([
        "--cache-dir",
        s(&w.path("empty")),
        "build",
        "--bundle",
        s(&good),
        s(&dest),
    ]);
    run(c).ok();
    assert_eq!(fs::read(dest.join("extpy-sbom.cdx.json")).unwrap(), sbom);

    // Edited, with SHA256SUMS made to agree: the SBOM is not what the artifacts give.
    let mut edited = all.clone();
    let text = String::from_utf8(sbom.clone())
        .unwrap()
        .replace("\"gamma\"", "\"gammo\"");
    replace_consistently(&mut edited, "extpy-sbom.cdx.json", Some(text.into_bytes()));
    let bad = w.path("edited-sbom.zip");
    write_zip(&bad, &edited);
    refused(
        &w,
        &bad,
        "extpy-sbom.cdx.json is not the SBOM of the distribution this bundle builds",
    );

    // Left out, with SHA256SUMS made to agree.
    let mut missing = all.clone();
    replace_consistently(&mut missing, "extpy-sbom.cdx.json", None);
    let bad = w.path("no-sbom.zip");
    write_zip(&bad, &missing);
    refused(&w, &bad, "extpy-sbom.cdx.json is missing");
}

#[test]
fn an_extra_entry_is_refused_even_when_listed() {
    let w = World::new();
    let good = w.path("b.zip");
    create(&w, &good);
    let mut all = entries(&good);
    all.push((
        "artifacts/evil-1.0-py3-none-any.whl".into(),
        b"evil".to_vec(),
    ));
    let bad = w.path("extra.zip");
    write_zip(&bad, &all);
    refused(
        &w,
        &bad,
        "extra entry artifacts/evil-1.0-py3-none-any.whl: it is not listed in SHA256SUMS",
    );
    // Listed in SHA256SUMS too: still not part of the manifest.
    for (n, d) in all.iter_mut() {
        if n == "SHA256SUMS" {
            d.extend_from_slice(
                format!(
                    "{}  artifacts/evil-1.0-py3-none-any.whl\n",
                    support::sha256_hex(b"evil")
                )
                .as_bytes(),
            );
        }
    }
    write_zip(&bad, &all);
    refused(
        &w,
        &bad,
        "extra entry artifacts/evil-1.0-py3-none-any.whl: the bundle's manifest does not account for it",
    );
}

#[test]
fn a_truncated_bundle_is_refused() {
    let w = World::new();
    let good = w.path("b.zip");
    create(&w, &good);
    let bytes = fs::read(&good).unwrap();
    let bad = w.path("truncated.zip");
    fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    // The stored wheels hold zip structures of their own, so a cut-off bundle may still
    // parse as some zip: it is refused either way.
    let mut c = extpy();
    c.args(["bundle", "verify", s(&bad)]);
    let r = run(c).code(3);
    let all = format!("{}{}", r.stdout, r.stderr);
    let needle = if all.contains("not a readable zip archive") {
        "not a readable zip archive"
    } else {
        "damaged or truncated"
    };
    refused(&w, &bad, needle);
}

#[test]
fn a_wrong_sha256sums_is_refused() {
    let w = World::new();
    let good = w.path("b.zip");
    create(&w, &good);
    let mut all = entries(&good);
    for (n, d) in all.iter_mut() {
        if n == "SHA256SUMS" {
            let text = String::from_utf8(d.clone()).unwrap();
            let first = text.lines().next().unwrap().to_string();
            let (_, name) = first.split_once("  ").unwrap();
            *d = text
                .replacen(&first, &format!("{}  {name}", "0".repeat(64)), 1)
                .into_bytes();
        }
    }
    let bad = w.path("sums.zip");
    write_zip(&bad, &all);
    refused(
        &w,
        &bad,
        "SHA256SUMS says 0000000000000000000000000000000000000000000000000000000000000000",
    );
    let mut missing = entries(&good);
    missing.retain(|(n, _)| n != "SHA256SUMS");
    write_zip(&bad, &missing);
    refused(
        &w,
        &bad,
        "it has no SHA256SUMS: this is not an extpy bundle",
    );
}

#[test]
fn a_hostile_entry_name_is_refused() {
    let w = World::new();
    let bad = w.path("hostile.zip");
    fs::write(
        &bad,
        raw_zip(&[
            RawEntry {
                name: "SHA256SUMS",
                data: b"",
                mode: None,
            },
            RawEntry {
                name: "../../evil.dll",
                data: b"MZ",
                mode: None,
            },
        ]),
    )
    .unwrap();
    refused(
        &w,
        &bad,
        "refused entry \"../../evil.dll\": it climbs out of the destination",
    );
    assert!(!w.dir.path().parent().unwrap().join("evil.dll").exists());
}

/// extpy with every proxy and mirror pointed at a closed port: any connection fails.
fn no_network() -> std::process::Command {
    let closed = "https://127.0.0.1:9/";
    let mut c = extpy();
    c.env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9");
    c.args([
        "--index-url",
        closed,
        "--python-mirror",
        closed,
        "--timeout",
        "1",
        "--retries",
        "0",
    ]);
    c
}

#[test]
fn build_layout_verify_and_plan_from_a_bundle_without_network() {
    let w = World::new();
    let b = w.path("b.zip");
    create(&w, &b);
    let empty_cache = w.path("empty-cache");
    let dest = w.path("dist");
    let mut c = no_network();
    c.args([
        "--cache-dir",
        s(&empty_cache),
        "build",
        "--bundle",
        s(&b),
        s(&dest),
    ]);
    let r = run(c).ok();
    assert!(
        r.stdout.starts_with("Generating python at location:"),
        "{}",
        r.stdout
    );
    let mut c = extpy();
    c.arg("verify").arg(&dest);
    run(c).ok();

    let root = w.path("node");
    let mut c = no_network();
    c.args([
        "--cache-dir",
        s(&empty_cache),
        "layout",
        "--bundle",
        s(&b),
        "--node",
        "HAC1",
        "--vu-root",
        s(&root),
    ]);
    let r = run(c).ok();
    assert!(r.stdout.contains("2 VU folders written"), "{}", r.stdout);
    let mut c = no_network();
    c.args([
        "verify",
        "--bundle",
        s(&b),
        "--node",
        "HAC1",
        "--vu-root",
        s(&root),
        "--json",
    ]);
    let doc = run(c).ok().json();
    assert_eq!(doc["vus"].as_array().unwrap().len(), 2);

    let mut c = no_network();
    c.args(["plan", "--bundle", s(&b)]);
    let md = run(c).ok().stdout;
    assert!(md.contains("extpy build --bundle b.zip"), "{md}");
    assert!(md.contains("Create ExternalPython2 on HAC1 for Core2"));
    assert!(
        !empty_cache.join("sha256").exists()
            || fs::read_dir(empty_cache.join("sha256"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn include_self_adds_the_executable() {
    let w = World::new();
    let out = w.path("b.zip");
    w.run(&["bundle", "create", s(&out), "--include-self"]).ok();
    let mut a = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
    let exe = if cfg!(windows) {
        "bin/extpy.exe"
    } else {
        "bin/extpy"
    };
    let f = a.by_name(exe).unwrap();
    assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o755));
    assert_eq!(
        f.size(),
        fs::metadata(env!("CARGO_BIN_EXE_extpy")).unwrap().len()
    );
    drop(f);
    let mut c = extpy();
    c.args(["bundle", "verify", s(&out)]);
    run(c).ok();
}

#[test]
fn include_exe_carries_a_windows_exe_made_elsewhere() {
    let w = World::new();
    let exe = w.path("extpy-0.1.0.exe");
    fs::write(&exe, windows_exe(b"the rest of extpy.exe")).unwrap();
    let (a, b) = (w.path("a.zip"), w.path("b.zip"));
    for out in [&a, &b] {
        w.run(&["bundle", "create", s(out), "--include-exe", s(&exe)])
            .ok();
    }
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    let all = entries(&a);
    let find = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone());
    // Whatever the file is called, the entry is the one `rollout --target windows` takes.
    assert_eq!(find("bin/extpy.exe"), Some(fs::read(&exe).unwrap()));
    let sums = String::from_utf8(find("SHA256SUMS").unwrap()).unwrap();
    let digest = support::sha256_hex(&fs::read(&exe).unwrap());
    let line = format!("{digest}  bin/extpy.exe");
    assert!(sums.lines().any(|l| l.trim_end() == line), "{sums}");
    let meta: serde_json::Value =
        serde_json::from_slice(&find("extpy-bundle.json").unwrap()).unwrap();
    assert_eq!(meta["executable"], "bin/extpy.exe");
    let mut c = extpy();
    c.args(["bundle", "verify", s(&a)]);
    run(c).ok();

    // The exe is held to SHA256SUMS like everything else.
    let tampered: Vec<(String, Vec<u8>)> = all
        .into_iter()
        .map(|(n, mut d)| {
            if n == "bin/extpy.exe" {
                *d.last_mut().unwrap() ^= 1;
            }
            (n, d)
        })
        .collect();
    let bad = w.path("bad.zip");
    write_zip(&bad, &tampered);
    let mut c = extpy();
    c.args(["bundle", "verify", s(&bad)]);
    let r = run(c).code(3);
    assert!(
        r.stdout.contains("bin/extpy.exe") || r.stderr.contains("bin/extpy.exe"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn include_exe_refuses_a_missing_file_and_anything_but_a_windows_program() {
    let w = World::new();
    let out = w.path("b.zip");
    let missing = w.path("nope.exe");
    let r = w
        .run(&["bundle", "create", s(&out), "--include-exe", s(&missing)])
        .code(2);
    assert!(r.stderr.contains("nope.exe: no such file"), "{}", r.stderr);
    assert!(
        r.stderr.contains("scripts/build-windows.sh"),
        "{}",
        r.stderr
    );
    let linux = w.path("extpy");
    fs::copy(env!("CARGO_BIN_EXE_extpy"), &linux).unwrap();
    let script = w.path("get-py.ps1");
    fs::write(&script, "param($Dest)\n").unwrap();
    let mut x86 = windows_exe(b"");
    x86[0x44..0x46].copy_from_slice(&0x14cu16.to_le_bytes());
    x86[0x58..0x5a].copy_from_slice(&0x10bu16.to_le_bytes());
    let x86_path = w.path("extpy32.exe");
    fs::write(&x86_path, x86).unwrap();
    for (file, why) in [
        (&linux, "it is an ELF (Linux) executable"),
        (&script, "does not start with the MZ header"),
        (&x86_path, "32-bit"),
    ] {
        let r = w
            .run(&["bundle", "create", s(&out), "--include-exe", s(file)])
            .code(2);
        assert!(
            r.stderr.contains("not a Windows x86-64 executable") && r.stderr.contains(why),
            "{}",
            r.stderr
        );
    }
    let r = w
        .run(&[
            "bundle",
            "create",
            s(&out),
            "--include-exe",
            s(&linux),
            "--include-self",
        ])
        .code(2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn a_failed_create_leaves_nothing() {
    let w = World::new();
    let out = w.path("b.zip");
    let r = w.run(&["--offline", "bundle", "create", s(&out)]).code(4);
    assert!(r.stderr.contains("not in the cache"), "{}", r.stderr);
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(w.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("extpy-tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_missing_bundle_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.zip");
    for args in [
        vec!["bundle", "verify"],
        vec!["bundle", "inspect"],
        vec!["build", "--bundle"],
    ] {
        let mut c = extpy();
        c.args(&args).arg(&missing);
        let r = run(c).code(2);
        assert!(
            r.stderr.contains("nope.zip does not exist"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            !r.stdout.contains("Generating python"),
            "nothing is announced before the inputs are checked"
        );
    }
}

/// A world whose alpha wheel pins example/alpha's publish.yml, the index serving the
/// provenance the test Sigstore signs, and a bundle of it; returns the world, the Sigstore,
/// its trust root file and the bundle.
fn signed_bundle() -> (World, TestSigstore, String, PathBuf) {
    let w = World::new();
    let sig = TestSigstore::new();
    let root = w.path("trusted_root.json");
    fs::write(&root, sig.trust_root_json()).unwrap();
    let (file, bytes) = w.wheels[0].clone();
    let doc = sig.provenance(&file, &support::sha256_hex(&bytes), &alpha_publisher());
    w.serve_provenance(0, &doc);
    w.pin_provenance(&bytes, "{repository: example/alpha, workflow: publish.yml}");
    let root = s(&root).to_string();
    let b = w.path("signed.zip");
    let topo = topology(&w);
    w.run(&[
        "bundle",
        "create",
        s(&b),
        "--topology",
        s(&topo),
        "--sigstore-trust-root",
        &root,
    ])
    .ok();
    (w, sig, root, b)
}

fn alpha_publisher() -> Sign {
    Sign::github("example/alpha", "publish.yml")
}

const ALPHA_PROVENANCE: &str = "artifacts/alpha-1.0-py3-none-any.whl.provenance";

/// `build --bundle B --offline` with an empty cache and no network, trusting `root`.
fn offline_build(w: &World, b: &Path, root: Option<&str>) -> support::Run {
    let stem = b.file_stem().unwrap().to_string_lossy();
    let dest = w.path(&format!("dist-{stem}-{}", root.is_some()));
    let mut c = no_network();
    c.args(["--cache-dir", s(&w.path("empty-cache")), "--offline"]);
    if let Some(root) = root {
        c.args(["--sigstore-trust-root", root]);
    }
    c.args(["build", "--bundle", s(b), s(&dest)]);
    let r = run(c);
    if r.code != 0 {
        assert!(
            !dest.exists(),
            "nothing is placed when the bundle is refused"
        );
    }
    r
}

#[test]
fn a_bundle_carries_the_pinned_publishers_attestation_and_builds_offline_verifying_it() {
    let (w, _sig, root, b) = signed_bundle();
    let all = entries(&b);
    let doc = &all.iter().find(|(n, _)| n == ALPHA_PROVENANCE).unwrap().1;
    let cached = fs::read(w.blob(&w.wheels[0].1).with_extension("provenance")).unwrap();
    assert_eq!(doc, &cached, "the bundle carries the verified attestation");
    let sums = &all.iter().find(|(n, _)| n == "SHA256SUMS").unwrap().1;
    let line = format!("{}  {ALPHA_PROVENANCE}", support::sha256_hex(doc));
    assert!(String::from_utf8_lossy(sums).contains(&line));
    assert!(
        !all.iter().any(|(n, _)| n.ends_with(".sigstore")),
        "only the pinned publishers' documents are carried"
    );
    let mut c = extpy();
    c.args(["--sigstore-trust-root", &root, "bundle", "verify", s(&b)]);
    run(c).ok();

    let r = offline_build(&w, &b, Some(&root));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(w.path("dist-signed-true").join("extpy-seal.json").is_file());
    let empty = w.path("empty-cache").join("sha256");
    assert!(!empty.exists() || fs::read_dir(&empty).unwrap().next().is_none());

    // Offline it still verifies: against the public root the test signature is refused.
    let r = offline_build(&w, &b, None);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("alpha-1.0-py3-none-any.whl"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("is not in the trust root"),
        "{}",
        r.stderr
    );
    let mut c = extpy();
    c.args(["bundle", "verify", s(&b)]);
    let r = run(c).code(3);
    assert!(
        r.stdout.contains("is not in the trust root"),
        "{}",
        r.stdout
    );

    let mut c = no_network();
    c.args([
        "--cache-dir",
        s(&w.path("empty-cache")),
        "--offline",
        "--sigstore-trust-root",
        &root,
        "layout",
        "--bundle",
        s(&b),
        "--node",
        "HAC1",
        "--vu-root",
        s(&w.path("node")),
    ]);
    let r = run(c).ok();
    assert!(r.stdout.contains("2 VU folders written"), "{}", r.stdout);
}

#[test]
fn bundle_inspect_names_each_artifacts_publisher_and_the_document_it_carries() {
    let (w, _sig, _root, b) = signed_bundle();
    let doc_size = entries(&b)
        .iter()
        .find(|(n, _)| n == ALPHA_PROVENANCE)
        .unwrap()
        .1
        .len() as u64;
    let mut c = extpy();
    c.args(["bundle", "inspect", "--json", s(&b)]);
    let doc = run(c).ok().json();
    let publishers = doc["publishers"].as_array().unwrap();
    assert_eq!(publishers.len(), 4, "{doc}");
    let alpha = publishers
        .iter()
        .find(|p| p["file"] == w.wheels[0].0.as_str())
        .unwrap();
    assert_eq!(alpha["provenance"]["repository"], "example/alpha");
    assert_eq!(alpha["provenance"]["workflow"], "publish.yml");
    assert_eq!(alpha["document"], ALPHA_PROVENANCE);
    assert_eq!(alpha["document_size"], doc_size);
    let unpinned: Vec<_> = publishers
        .iter()
        .filter(|p| p["provenance"] == "none")
        .collect();
    assert_eq!(unpinned.len(), 3, "{doc}");
    assert!(unpinned.iter().all(|p| p["document"].is_null()), "{doc}");

    let mut c = extpy();
    c.args(["bundle", "inspect", s(&b)]);
    let human = run(c).ok().stdout;
    let section = &human[human.find("publishers:\n").expect(&human)..];
    assert!(
        section.contains("alpha-1.0-py3-none-any.whl")
            && section.contains("GitHub repository example/alpha, workflow publish.yml")
            && section.contains(&format!("carried as {ALPHA_PROVENANCE} (")),
        "{human}"
    );
    assert_eq!(section.matches("provenance: none").count(), 3, "{human}");
}

#[test]
fn a_bundle_whose_attestation_was_altered_is_refused() {
    let (w, sig, root, b) = signed_bundle();
    // One byte changed, SHA256SUMS left alone.
    let mut all = entries(&b);
    for (n, d) in all.iter_mut() {
        if n == ALPHA_PROVENANCE {
            let i = d.len() / 2;
            d[i] ^= 0x01;
        }
    }
    let bad = w.path("altered.zip");
    write_zip(&bad, &all);
    let r = offline_build(&w, &bad, Some(&root));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{ALPHA_PROVENANCE} changed")),
        "{}",
        r.stderr
    );

    // Replaced by another publisher's attestation, SHA256SUMS made to agree.
    let mut all = entries(&b);
    let other = sig.provenance(
        &w.wheels[0].0,
        &support::sha256_hex(&w.wheels[0].1),
        &Sign::github("attacker/alpha", "publish.yml"),
    );
    replace_consistently(&mut all, ALPHA_PROVENANCE, Some(other.into_bytes()));
    let bad = w.path("replaced.zip");
    write_zip(&bad, &all);
    let r = offline_build(&w, &bad, Some(&root));
    assert_eq!(r.code, 3, "{}", r.stderr);
    for needle in [
        "alpha-1.0-py3-none-any.whl: provenance does not verify",
        "expected: GitHub repository example/alpha, workflow publish.yml",
        "found:    https://github.com/attacker/alpha/.github/workflows/publish.yml@",
    ] {
        assert!(r.stderr.contains(needle), "{needle:?} in:\n{}", r.stderr);
    }
    let mut c = extpy();
    c.args(["--sigstore-trust-root", &root, "bundle", "verify", s(&bad)]);
    let r = run(c).code(3);
    assert!(r.stdout.contains("attacker/alpha"), "{}", r.stdout);
}

#[test]
fn a_bundle_missing_the_attestation_is_refused_naming_the_artifact() {
    let (w, _sig, root, b) = signed_bundle();
    let mut all = entries(&b);
    replace_consistently(&mut all, ALPHA_PROVENANCE, None);
    let bad = w.path("missing.zip");
    write_zip(&bad, &all);
    let needle = format!(
        "{ALPHA_PROVENANCE} is missing: the manifest pins the publisher of alpha-1.0-py3-none-any.whl"
    );
    let r = offline_build(&w, &bad, Some(&root));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains(&needle), "{}", r.stderr);
    let mut c = extpy();
    c.args(["--sigstore-trust-root", &root, "bundle", "verify", s(&bad)]);
    let r = run(c).code(3);
    assert!(r.stdout.contains(&needle), "{}", r.stdout);
}

#[test]
fn a_bundle_whose_sbom_names_another_publisher_is_refused() {
    let (w, _sig, root, b) = signed_bundle();
    let mut all = entries(&b);
    let sbom = &all
        .iter()
        .find(|(n, _)| n == "extpy-sbom.cdx.json")
        .unwrap()
        .1;
    let text = String::from_utf8(sbom.clone()).unwrap();
    assert!(text.contains("\"value\": \"example/alpha\""), "{text}");
    let edited = text.replace("example/alpha", "attacker/alpha").into_bytes();
    replace_consistently(&mut all, "extpy-sbom.cdx.json", Some(edited));
    let bad = w.path("sbom-edited.zip");
    write_zip(&bad, &all);
    let mut c = extpy();
    c.args(["--sigstore-trust-root", &root, "bundle", "verify", s(&bad)]);
    let r = run(c).code(3);
    assert!(
        r.stdout
            .contains("is not the SBOM of the distribution this bundle builds"),
        "{}",
        r.stdout
    );
}

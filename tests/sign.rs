//! Site signatures: `key generate`, bundles signed with `--sign` and refused by
//! `--trusted-key` when unsigned, signed by another key or changed after signing; and the
//! same files checked by the real `minisign` tool, both ways.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{World, extpy, run};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A key pair made by `extpy key generate --unencrypted`: (secret, public, key id).
fn keypair(w: &World, name: &str) -> (PathBuf, PathBuf, String) {
    let secret = w.path(&format!("{name}.key"));
    let mut c = extpy();
    c.args(["--json", "key", "generate", "--unencrypted", s(&secret)]);
    let doc = run(c).ok().json();
    let public = w.path(&format!("{name}.pub"));
    assert_eq!(doc["public_key"], s(&public));
    assert_eq!(doc["encrypted"], false);
    let id = doc["key_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16, "{id}");
    (secret, public, id)
}

fn create(w: &World, out: &Path, extra: &[&str]) -> support::Run {
    let mut args = vec!["bundle", "create", s(out)];
    args.extend_from_slice(extra);
    w.run(&args)
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

fn entry(zip: &Path, name: &str) -> Vec<u8> {
    entries(zip)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} is not in {}", zip.display()))
        .1
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

/// `bundle` with the entry `name` replaced (or added) by `data`.
fn with_entry(w: &World, bundle: &Path, out: &str, name: &str, data: Vec<u8>) -> PathBuf {
    let mut all: Vec<_> = entries(bundle)
        .into_iter()
        .filter(|(n, _)| n != name)
        .collect();
    all.push((name.to_string(), data));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let path = w.path(out);
    write_zip(&path, &all);
    path
}

fn verify(bundle: &Path, keys: &[&Path]) -> support::Run {
    let mut c = extpy();
    c.args(["bundle", "verify", s(bundle)]);
    for k in keys {
        c.args(["--trusted-key", s(k)]);
    }
    run(c)
}

/// Asserts that `bundle verify`, `build --bundle` and `layout --bundle` with `key` all refuse
/// `bundle` with exit 3 and `needle`, and write nothing.
fn refused(w: &World, bundle: &Path, key: &Path, needle: &str) {
    let r = verify(bundle, &[key]).code(3);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains(needle),
        "verify: expected {needle:?} in:\n{all}"
    );
    let dest = w.path("dest-from-refused");
    let mut c = extpy();
    c.args([
        "build",
        "--bundle",
        s(bundle),
        "--trusted-key",
        s(key),
        s(&dest),
    ]);
    let r = run(c).code(3);
    assert!(
        r.stderr.contains(needle),
        "build: {needle:?} in:\n{}",
        r.stderr
    );
    assert!(!dest.exists(), "nothing built");
    let out = w.path("layout-from-refused");
    let topo = w.path("topology.yaml");
    fs::write(&topo, "schema: 1\nsystem: Site\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\n").unwrap();
    let mut c = extpy();
    c.args([
        "layout",
        s(&topo),
        "--bundle",
        s(bundle),
        "--trusted-key",
        s(key),
        "--out",
        s(&out),
    ]);
    let r = run(c).code(3);
    assert!(
        r.stderr.contains(needle),
        "layout: {needle:?} in:\n{}",
        r.stderr
    );
    assert!(!out.exists(), "nothing laid out");
}

#[test]
fn a_signed_bundle_verifies_with_its_key_and_signing_twice_gives_the_same_bytes() {
    let w = World::new();
    let (secret, public, id) = keypair(&w, "site");
    let a = w.path("a.zip");
    let r = create(&w, &a, &["--sign", s(&secret)]).ok();
    assert!(
        r.stdout.contains(&format!("SHA256SUMS signed by key {id}")),
        "{}",
        r.stdout
    );
    let r = verify(&a, &[&public]).ok();
    assert!(
        r.stdout.contains(&format!("signed by trusted key {id}")),
        "{}",
        r.stdout
    );
    let mut c = extpy();
    c.args([
        "--json",
        "bundle",
        "verify",
        s(&a),
        "--trusted-key",
        s(&public),
    ]);
    let doc = run(c).ok().json();
    assert_eq!(doc["signature"]["key_id"], id.as_str());
    assert_eq!(doc["signature"]["verified"], true);
    let comment = doc["signature"]["trusted_comment"].as_str().unwrap();
    assert!(comment.starts_with("extpy bundle "), "{comment}");
    assert!(!comment.contains("timestamp"), "{comment}");

    let b = w.path("b.zip");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    create(&w, &b, &["--sign", s(&secret)]).ok();
    assert_eq!(
        entry(&a, "SHA256SUMS.minisig"),
        entry(&b, "SHA256SUMS.minisig"),
        "the same signature"
    );
    assert_eq!(
        fs::read(&a).unwrap(),
        fs::read(&b).unwrap(),
        "the same bytes"
    );

    // Without --trusted-key the signature is named but not relied on.
    let r = verify(&a, &[]).ok();
    assert!(
        r.stdout.contains(&format!(
            "signed by key {id}, not checked (pass --trusted-key"
        )),
        "{}",
        r.stdout
    );

    // A build from the bundle with the trusted key works.
    let dest = w.path("dist");
    let mut c = extpy();
    c.args([
        "build",
        "--bundle",
        s(&a),
        "--trusted-key",
        s(&public),
        s(&dest),
    ]);
    run(c).ok();
    assert!(dest.join("extpy-seal.json").is_file());
}

#[test]
fn rotation_any_trusted_key_is_enough() {
    let w = World::new();
    let (old_secret, old_public, _) = keypair(&w, "old");
    let (new_secret, new_public, _) = keypair(&w, "new");
    let old = w.path("old.zip");
    create(&w, &old, &["--sign", s(&old_secret)]).ok();
    let new = w.path("new.zip");
    create(&w, &new, &["--sign", s(&new_secret)]).ok();
    for b in [&old, &new] {
        verify(b, &[&old_public, &new_public]).ok();
    }
    // Revoking the old key: it is no longer passed, and its bundles are refused.
    let r = verify(&old, &[&new_public]).code(3);
    assert!(r.stdout.contains("which is not trusted"), "{}", r.stdout);
}

#[test]
fn unsigned_foreign_and_changed_bundles_are_refused_with_exit_3() {
    let w = World::new();
    let (secret, public, id) = keypair(&w, "site");
    let (other_secret, _, other_id) = keypair(&w, "other");

    let unsigned = w.path("unsigned.zip");
    create(&w, &unsigned, &[]).ok();
    refused(
        &w,
        &unsigned,
        &public,
        &format!(
            "the bundle is not signed (it has no SHA256SUMS.minisig), and a signature by a trusted key ({id}) is required"
        ),
    );

    let foreign = w.path("foreign.zip");
    create(&w, &foreign, &["--sign", s(&other_secret)]).ok();
    refused(
        &w,
        &foreign,
        &public,
        &format!(
            "SHA256SUMS.minisig is signed by key {other_id}, which is not trusted (trusted: {id})"
        ),
    );

    let good = w.path("good.zip");
    create(&w, &good, &["--sign", s(&secret)]).ok();
    verify(&good, &[&public]).ok();

    // Re-signed: someone else's signature put over the site's.
    let resigned = with_entry(
        &w,
        &good,
        "resigned.zip",
        "SHA256SUMS.minisig",
        entry(&foreign, "SHA256SUMS.minisig"),
    );
    refused(
        &w,
        &resigned,
        &public,
        &format!("signed by key {other_id}, which is not trusted"),
    );

    // An entry changed after signing (SHA256SUMS left alone).
    let plan = String::from_utf8(entry(&good, "extpy-bundle.json")).unwrap();
    let edited = with_entry(
        &w,
        &good,
        "entry.zip",
        "extpy-bundle.json",
        plan.replace("3.12.10", "3.12.11").into_bytes(),
    );
    refused(&w, &edited, &public, "extpy-bundle.json changed");

    // SHA256SUMS changed after signing (a line dropped).
    let sums = String::from_utf8(entry(&good, "SHA256SUMS")).unwrap();
    let fewer: String = sums.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let sums_changed = with_entry(&w, &good, "sums.zip", "SHA256SUMS", fewer.into_bytes());
    refused(
        &w,
        &sums_changed,
        &public,
        &format!(
            "SHA256SUMS.minisig (key {id}) does not match SHA256SUMS: the bundle changed after it was signed"
        ),
    );

    // The signature file edited: its trusted comment is signed too.
    let sig = String::from_utf8(entry(&good, "SHA256SUMS.minisig")).unwrap();
    let comment_edited = with_entry(
        &w,
        &good,
        "comment.zip",
        "SHA256SUMS.minisig",
        sig.replace("trusted comment: extpy", "trusted comment: EXTPY")
            .into_bytes(),
    );
    refused(&w, &comment_edited, &public, "does not match SHA256SUMS");

    // A truncated signature.
    let truncated = with_entry(
        &w,
        &good,
        "truncated.zip",
        "SHA256SUMS.minisig",
        sig.as_bytes()[..sig.len() / 2].to_vec(),
    );
    refused(&w, &truncated, &public, "SHA256SUMS.minisig cannot be read");
    let r = verify(&truncated, &[&public]).code(3);
    assert!(
        r.stdout.contains(&format!("expected a signature by {id}")),
        "{}",
        r.stdout
    );
}

#[test]
fn an_encrypted_key_takes_its_passphrase_from_the_named_variable_only() {
    let w = World::new();
    let secret = w.path("enc.key");
    let mut c = extpy();
    c.env("SITE_PASS", "correct horse").args([
        "key",
        "generate",
        "--passphrase-env",
        "SITE_PASS",
        s(&secret),
    ]);
    let r = run(c).ok();
    assert!(r.stdout.contains("secret key encrypted"), "{}", r.stdout);
    let public = w.path("enc.pub");

    let sign = |env: Option<&str>, pass_arg: bool| {
        let out = w.path("enc.zip");
        let mut c = w.cmd();
        c.args(["bundle", "create", s(&out), "--sign", s(&secret)]);
        if pass_arg {
            c.args(["--passphrase-env", "SITE_PASS"]);
        }
        if let Some(p) = env {
            c.env("SITE_PASS", p);
        }
        run(c)
    };
    let r = sign(Some("wrong horse"), true).code(2);
    assert!(
        r.stderr
            .contains("enc.key: wrong passphrase for this secret key"),
        "{}",
        r.stderr
    );
    let r = sign(None, true).code(2);
    assert!(
        r.stderr
            .contains("the environment variable SITE_PASS (--passphrase-env) is not set"),
        "{}",
        r.stderr
    );
    // No variable named and no terminal: it says how to give one.
    let r = sign(Some("correct horse"), false).code(2);
    assert!(
        r.stderr.contains("no terminal to ask for its passphrase")
            && r.stderr.contains("--passphrase-env VAR"),
        "{}",
        r.stderr
    );
    assert!(!w.path("enc.zip").exists());
    sign(Some("correct horse"), true).ok();
    verify(&w.path("enc.zip"), &[&public]).ok();

    // The named variable unset: refused, naming it.
    let mut c = extpy();
    c.env_remove("NO_SUCH_PASS").args([
        "key",
        "generate",
        "--passphrase-env",
        "NO_SUCH_PASS",
        s(&w.path("unset.key")),
    ]);
    let r = run(c).code(2);
    assert!(
        r.stderr
            .contains("the environment variable NO_SUCH_PASS is not set or empty"),
        "{}",
        r.stderr
    );
    assert!(!w.path("unset.key").exists());
    // Generating without a terminal, passphrase variable or --unencrypted is refused.
    let mut c = extpy();
    c.args(["key", "generate", s(&w.path("none.key"))]);
    let r = run(c).code(2);
    assert!(
        r.stderr.contains("no terminal to ask for a passphrase"),
        "{}",
        r.stderr
    );
    assert!(!w.path("none.key").exists());
    // One half of a key pair where the other is needed.
    let r = create(&w, &w.path("x.zip"), &["--sign", s(&public)]).code(2);
    assert!(
        r.stderr.contains("enc.pub: not a minisign secret key"),
        "{}",
        r.stderr
    );
    let r = verify(&w.path("enc.zip"), &[&secret]).code(2);
    assert!(
        r.stderr.contains("enc.key: not a minisign public key"),
        "{}",
        r.stderr
    );
    // An existing key is never overwritten.
    let before = fs::read(&secret).unwrap();
    let mut c = extpy();
    c.args(["key", "generate", "--unencrypted", s(&secret)]);
    let r = run(c).code(2);
    assert!(r.stderr.contains("enc.key exists"), "{}", r.stderr);
    assert_eq!(fs::read(&secret).unwrap(), before);
}

#[cfg(unix)]
#[test]
fn a_secret_key_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let (secret, _, _) = keypair(&w, "site");
    let mode = fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "written private");
    let r = create(&w, &w.path("a.zip"), &["--sign", s(&secret)]).ok();
    assert!(!r.stderr.contains("readable by others"), "{}", r.stderr);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
    let r = create(&w, &w.path("b.zip"), &["--sign", s(&secret)]).ok();
    assert!(
        r.stderr
            .contains("site.key: the secret key is readable by others (mode 0640)")
            && r.stderr.contains("chmod 600"),
        "{}",
        r.stderr
    );
}

/// The `minisign` tool (scripts/test.sh installs Debian's); missing, the test fails.
fn minisign() -> Command {
    let found = Command::new("minisign").arg("-v").output();
    assert!(
        found.is_ok(),
        "the minisign tool is not installed: scripts/test.sh installs it (apt-get install minisign)"
    );
    Command::new("minisign")
}

fn tool(mut c: Command) -> std::process::Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "minisign failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_minisign_tool_verifies_what_extpy_signs_and_the_other_way_round() {
    let w = World::new();
    let dir = w.path("unpacked");
    fs::create_dir_all(&dir).unwrap();

    // extpy's key and signature, checked by the tool.
    let (secret, public, _) = keypair(&w, "site");
    let signed = w.path("signed.zip");
    create(&w, &signed, &["--sign", s(&secret)]).ok();
    fs::write(dir.join("SHA256SUMS"), entry(&signed, "SHA256SUMS")).unwrap();
    fs::write(
        dir.join("SHA256SUMS.minisig"),
        entry(&signed, "SHA256SUMS.minisig"),
    )
    .unwrap();
    let mut c = minisign();
    c.args(["-V", "-p", s(&public), "-m", s(&dir.join("SHA256SUMS"))]);
    let out = tool(c);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Trusted comment: extpy bundle "), "{said}");
    // Changed bytes fail with the tool too.
    fs::write(dir.join("SHA256SUMS"), b"changed\n").unwrap();
    let mut c = minisign();
    c.args(["-V", "-p", s(&public), "-m", s(&dir.join("SHA256SUMS"))]);
    assert!(!c.output().unwrap().status.success());

    // The tool's unencrypted key (-W) signs with extpy; the tool checks it.
    let (tsecret, tpublic) = (w.path("tool.key"), w.path("tool.pub"));
    let mut c = minisign();
    c.args(["-G", "-W", "-p", s(&tpublic), "-s", s(&tsecret)]);
    tool(c);
    let by_tool_key = w.path("tool-key.zip");
    create(&w, &by_tool_key, &["--sign", s(&tsecret)]).ok();
    verify(&by_tool_key, &[&tpublic]).ok();
    fs::write(dir.join("SHA256SUMS"), entry(&by_tool_key, "SHA256SUMS")).unwrap();
    fs::write(
        dir.join("SHA256SUMS.minisig"),
        entry(&by_tool_key, "SHA256SUMS.minisig"),
    )
    .unwrap();
    let mut c = minisign();
    c.args(["-V", "-p", s(&tpublic), "-m", s(&dir.join("SHA256SUMS"))]);
    tool(c);

    // The tool's own signature of an unsigned bundle's SHA256SUMS verifies with extpy.
    let unsigned = w.path("unsigned.zip");
    create(&w, &unsigned, &[]).ok();
    fs::write(dir.join("SHA256SUMS"), entry(&unsigned, "SHA256SUMS")).unwrap();
    fs::remove_file(dir.join("SHA256SUMS.minisig")).unwrap();
    let mut c = minisign();
    c.args(["-S", "-s", s(&tsecret), "-m", s(&dir.join("SHA256SUMS"))]);
    tool(c);
    let by_tool = with_entry(
        &w,
        &unsigned,
        "by-tool.zip",
        "SHA256SUMS.minisig",
        fs::read(dir.join("SHA256SUMS.minisig")).unwrap(),
    );
    let r = verify(&by_tool, &[&tpublic]).ok();
    assert!(r.stdout.contains("signed by trusted key"), "{}", r.stdout);
    refused(&w, &by_tool, &public, "which is not trusted");
}

/// `extpy verify PATH` with no manifest (the artifacts are not at hand: only the tree's own
/// seal and its signature are checked).
fn verify_tree(dir: &Path, keys: &[&Path]) -> support::Run {
    let mut c = extpy();
    c.args(["verify", s(dir)]);
    for k in keys {
        c.args(["--trusted-key", s(k)]);
    }
    run(c)
}

#[test]
fn a_signed_seal_names_a_tree_resealed_or_sealed_by_anyone_else() {
    let w = World::new();
    let (secret, public, id) = keypair(&w, "site");
    let (other_secret, _, other_id) = keypair(&w, "other");
    let dist = w.path("dist");
    w.run(&["build", "--sign", s(&secret), s(&dist)]).ok();
    let sig = dist.join("extpy-seal.json.minisig");
    assert!(sig.is_file());
    let r = verify_tree(&dist, &[&public]).ok();
    assert!(
        r.stdout
            .contains(&format!("seal signed by trusted key {id}")),
        "{}",
        r.stdout
    );
    // The signature file is no extra file of the tree, with or without a trusted key.
    let r = verify_tree(&dist, &[]).ok();
    assert!(!r.stdout.contains("extra"), "{}", r.stdout);

    // The same seal signed again gives the same bytes.
    let again = w.path("again");
    w.run(&["build", "--sign", s(&secret), s(&again)]).ok();
    assert_eq!(
        fs::read(&sig).unwrap(),
        fs::read(again.join("extpy-seal.json.minisig")).unwrap()
    );

    // The minisign tool checks the seal's signature too.
    let mut c = minisign();
    c.args([
        "-V",
        "-p",
        s(&public),
        "-m",
        s(&dist.join("extpy-seal.json")),
    ]);
    tool(c);

    // A file added and the tree resealed: consistent with itself, but not the signed seal.
    fs::write(dist.join("evil.pth"), "import os\n").unwrap();
    support::reseal(&dist, |p| p != "extpy-seal.json.minisig");
    verify_tree(&dist, &[]).ok();
    let r = verify_tree(&dist, &[&public]).code(3);
    assert!(
        r.stdout.contains(&format!(
            "extpy-seal.json.minisig (key {id}) does not match extpy-seal.json: the tree was resealed after it was signed"
        )),
        "{}",
        r.stdout
    );

    // Sealed by someone else: built and signed with another key.
    let foreign = w.path("foreign");
    w.run(&["build", "--sign", s(&other_secret), s(&foreign)])
        .ok();
    let r = verify_tree(&foreign, &[&public]).code(3);
    assert!(
        r.stdout.contains(&format!(
            "extpy-seal.json.minisig is signed by key {other_id}, which is not trusted (trusted: {id}): someone else sealed this tree"
        )),
        "{}",
        r.stdout
    );

    // Not signed at all, and a truncated signature.
    let plain = w.path("plain");
    w.run(&["build", s(&plain)]).ok();
    let r = verify_tree(&plain, &[&public]).code(3);
    assert!(
        r.stdout
            .contains("the seal is not signed (no extpy-seal.json.minisig)"),
        "{}",
        r.stdout
    );
    let text = fs::read(again.join("extpy-seal.json.minisig")).unwrap();
    fs::write(
        again.join("extpy-seal.json.minisig"),
        &text[..text.len() / 3],
    )
    .unwrap();
    let r = verify_tree(&again, &[&public]).code(3);
    assert!(
        r.stdout.contains("extpy-seal.json.minisig cannot be read"),
        "{}",
        r.stdout
    );
}

#[test]
fn layout_signs_every_vu_and_verify_topology_checks_them() {
    let w = World::new();
    let (secret, public, id) = keypair(&w, "site");
    let topo = w.path("topology.yaml");
    fs::write(&topo, "schema: 1\nsystem: Site\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n").unwrap();
    let out = w.path("staged");
    let r = w
        .run(&["layout", s(&topo), "--out", s(&out), "--sign", s(&secret)])
        .ok();
    assert!(
        r.stderr
            .contains(&format!("seal signed by key {id} in 2 VU folders")),
        "{}",
        r.stderr
    );
    let vu = |n: u8| out.join(format!("HAC1/ExternalPython{n}/Python/External"));
    for n in [1, 2] {
        assert!(vu(n).join("extpy-seal.json.minisig").is_file());
    }
    let check = |keys: &[&Path]| {
        let mut c = w.cmd();
        c.args(["verify", "--topology", s(&topo), "--out", s(&out)]);
        for k in keys {
            c.args(["--trusted-key", s(k)]);
        }
        run(c)
    };
    let r = check(&[&public]).ok();
    assert_eq!(
        r.stdout
            .matches(&format!("seal signed by trusted key {id}"))
            .count(),
        2,
        "{}",
        r.stdout
    );
    // A second layout changes nothing and signs the same bytes again.
    let before = fs::read(vu(1).join("extpy-seal.json.minisig")).unwrap();
    w.run(&["layout", s(&topo), "--out", s(&out), "--sign", s(&secret)])
        .ok();
    assert_eq!(
        before,
        fs::read(vu(1).join("extpy-seal.json.minisig")).unwrap()
    );

    fs::remove_file(vu(2).join("extpy-seal.json.minisig")).unwrap();
    check(&[]).ok();
    let r = check(&[&public]).code(3);
    assert!(
        r.stdout.contains("FAIL  HAC1 ExternalPython2")
            && r.stdout.contains("signature: the seal is not signed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("ok    HAC1 ExternalPython1"),
        "{}",
        r.stdout
    );
    let mut c = w.cmd();
    c.args([
        "--json",
        "verify",
        "--topology",
        s(&topo),
        "--out",
        s(&out),
        "--trusted-key",
        s(&public),
    ]);
    let doc = run(c).code(3).json();
    assert_eq!(doc["vus"][0]["signature"]["verified"], true);
    assert_eq!(doc["vus"][1]["ok"], false);
    assert_eq!(doc["vus"][1]["signature"]["verified"], false);
}

/// The key line of a `.pub` file (its second line, `RW...`).
fn key_line(public: &Path) -> String {
    fs::read_to_string(public)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn trusted_keys_of_the_topology_and_manifest_given_apply_without_flags() {
    let w = World::new();
    let (secret, public, id) = keypair(&w, "site");
    let line = key_line(&public);
    let topo = w.path("topology.yaml");
    fs::write(
        &topo,
        format!("schema: 1\nsystem: Site\ntrusted_keys:\n  - {line}\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\n"),
    )
    .unwrap();
    let unsigned = w.path("unsigned.zip");
    create(&w, &unsigned, &[]).ok();
    let signed = w.path("signed.zip");
    create(&w, &signed, &["--sign", s(&secret)]).ok();

    let layout = |bundle: &Path, out: &str| {
        let mut c = extpy();
        c.args([
            "layout",
            s(&topo),
            "--bundle",
            s(bundle),
            "--out",
            s(&w.path(out)),
        ]);
        run(c)
    };
    let r = layout(&unsigned, "refused").code(3);
    assert!(
        r.stderr
            .contains(&format!("a signature by a trusted key ({id}) is required")),
        "{}",
        r.stderr
    );
    assert!(!w.path("refused").exists());
    layout(&signed, "staged").ok();

    // The manifest's trusted_keys: apply to what is checked with --manifest.
    let manifest = w.path("manifest-with-keys.yaml");
    let text = fs::read_to_string(&w.manifest).unwrap();
    fs::write(&manifest, format!("{text}\ntrusted_keys: ['{line}']\n")).unwrap();
    let verify_with = |bundle: &Path| {
        let mut c = extpy();
        c.args(["--manifest", s(&manifest), "bundle", "verify", s(bundle)]);
        run(c)
    };
    let r = verify_with(&unsigned).code(3);
    assert!(
        r.stdout.contains("the bundle is not signed"),
        "{}",
        r.stdout
    );
    verify_with(&signed).ok();

    // --trusted-key takes the key line itself too.
    verify(&signed, &[Path::new(&line)]).ok();

    // A key that is not one is refused where it is written, exit 2.
    let bad = w.path("bad-topology.yaml");
    fs::write(
        &bad,
        "schema: 1\ntrusted_keys:\n  - RWnot-a-key\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\n",
    )
    .unwrap();
    let mut c = extpy();
    c.args([
        "layout",
        s(&bad),
        "--bundle",
        s(&signed),
        "--out",
        s(&w.path("x")),
    ]);
    let r = run(c).code(2);
    assert!(
        r.stderr.contains("bad-topology.yaml:3")
            && r.stderr.contains("trusted_keys[0]")
            && r.stderr.contains("is not a minisign public key"),
        "{}",
        r.stderr
    );
}

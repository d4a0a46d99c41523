//! `extpy verify --signatures`: the PE files of a built tree with their sha256, their
//! Authenticode sha256 and whether they are signed, and the AppLocker policy for the
//! unsigned ones. The PEs are made in the test (support::pe_image); the signed ones are
//! signed here by osslsigncode with a throw-away certificate, and osslsigncode's own digest
//! of each file is the reference the Authenticode hash is checked against.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::fixtures::zip_of;
use support::{World, pe_image};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A throw-away code-signing certificate and key (PEM) in `dir`.
fn signing_key(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("sign.pem"), dir.join("sign.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=extpy test signer", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `pe` signed by osslsigncode (scripts/test.sh installs it).
fn signed(pe: &[u8], dir: &Path, key: &(PathBuf, PathBuf)) -> Vec<u8> {
    let (input, output) = (dir.join("in.dll"), dir.join("out.dll"));
    fs::write(&input, pe).unwrap();
    let _ = fs::remove_file(&output);
    let out = Command::new("osslsigncode")
        .args(["sign", "-h", "sha256", "-certs"])
        .arg(&key.0)
        .arg("-key")
        .arg(&key.1)
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .output()
        .expect("osslsigncode must be installed for this test (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read(&output).unwrap()
}

/// osslsigncode's Authenticode digest of a signed PE ("Calculated message digest").
fn digest_by_osslsigncode(pe: &[u8], dir: &Path) -> String {
    let file = dir.join("check.dll");
    fs::write(&file, pe).unwrap();
    let out = Command::new("osslsigncode")
        .args(["verify", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("Calculated message digest"))
        .and_then(|l| l.split(':').nth(1))
        .map(|d| d.trim().to_ascii_lowercase())
        .unwrap_or_else(|| panic!("osslsigncode printed no digest:\n{text}"))
}

/// The image with one byte of its code changed, so that each file has its own hash.
fn variant(n: u8) -> Vec<u8> {
    let mut b = pe_image(None, 0);
    b[0x250] = n;
    b
}

/// An embeddable CPython whose programs and DLLs are real (small) PEs: python.exe,
/// pythonw.exe, python3.dll and _socket.pyd unsigned; python312.dll and vcruntime140.dll
/// signed.
fn embeddable(tmp: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let key = signing_key(tmp);
    let signed_dll = signed(&variant(5), tmp, &key);
    let runtime = signed(&variant(6), tmp, &key);
    let stdlib = zip_of(&[("os.pyc", b"fake os"), ("site.pyc", b"fake site")]);
    let pth = b"python312.zip\n.\nLib\\site-packages\n\n# Uncomment to run site.main() automatically\nimport site\n";
    let zip = zip_of(&[
        ("python.exe", &variant(1)),
        ("pythonw.exe", &variant(2)),
        ("python312.dll", &signed_dll),
        ("python3.dll", &variant(3)),
        ("python312.zip", &stdlib),
        ("python312._pth", pth),
        ("_socket.pyd", &variant(4)),
        ("vcruntime140.dll", &runtime),
        ("LICENSE.txt", b"A. HISTORY OF THE SOFTWARE\n"),
    ]);
    (zip, signed_dll, runtime)
}

#[test]
fn lists_each_pe_with_its_authenticode_hash_and_writes_rules_for_the_unsigned() {
    let tmp = tempfile::tempdir().unwrap();
    let (embed, signed_dll, runtime) = embeddable(tmp.path());
    let wheels = vec![(
        support::WheelSpec::pure("alpha", "1.0").filename(),
        support::WheelSpec::pure("alpha", "1.0").build(),
    )];
    let w = World::with_artifacts(embed, wheels);
    let dest = w.path("Python for CEM/external");
    w.run(&["build", s(&dest)]).ok();
    let policy = w.path("applocker.xml");
    let doc = w
        .run(&[
            "--json",
            "verify",
            s(&dest),
            "--signatures",
            "--applocker",
            s(&policy),
        ])
        .ok()
        .json();
    let files = doc["signatures"][0]["files"].as_array().unwrap();
    let by_path = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p} not listed: {files:#?}"))
    };
    let names: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "_socket.pyd",
            "python.exe",
            "python3.dll",
            "python312.dll",
            "pythonw.exe",
            "vcruntime140.dll"
        ]
    );
    // The signed ones: osslsigncode's digest is ours.
    for (path, bytes) in [
        ("python312.dll", &signed_dll),
        ("vcruntime140.dll", &runtime),
    ] {
        let f = by_path(path);
        assert_eq!(f["signature"], "signed");
        assert_eq!(
            f["authenticode_sha256"],
            digest_by_osslsigncode(bytes, tmp.path()).as_str()
        );
        assert_eq!(f["sha256"], support::sha256_hex(bytes).as_str());
        assert_ne!(f["sha256"], f["authenticode_sha256"]);
    }
    // An unsigned one: its hash is the digest osslsigncode computes once it is signed.
    let python = by_path("python.exe");
    assert_eq!(python["signature"], "unsigned");
    let key = signing_key(tmp.path());
    let expected = digest_by_osslsigncode(&signed(&variant(1), tmp.path(), &key), tmp.path());
    assert_eq!(python["authenticode_sha256"], expected.as_str());
    assert_eq!(doc["applocker_policy"]["rules"], 4);

    let xml = fs::read_to_string(&policy).unwrap();
    assert_eq!(xml.matches("<FileHashRule ").count(), 4, "{xml}");
    assert!(
        xml.contains(&format!(
            "<FileHash Type=\"SHA256\" Data=\"0x{}\" SourceFileName=\"python.exe\" SourceFileLength=\"1024\" />",
            expected.to_ascii_uppercase()
        )),
        "{xml}"
    );
    assert!(xml.contains("SourceFileName=\"_socket.pyd\""), "{xml}");
    assert!(
        !xml.contains("python312.dll") && !xml.contains("vcruntime140.dll"),
        "{xml}"
    );

    let r = w.run(&["verify", s(&dest), "--signatures"]).ok();
    assert!(
        r.stdout
            .contains(&format!("UNSIGNED {expected}  python.exe  (file sha256 ")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("6 PE files: 2 signed, 4 unsigned, 0 malformed"),
        "{}",
        r.stdout
    );
}

/// `verify DEST --signatures --applocker POLICY`.
fn with_policy(w: &World, dest: &Path, policy: &Path) -> support::Run {
    w.run(&["verify", s(dest), "--signatures", "--applocker", s(policy)])
}

#[test]
fn a_tree_that_does_not_verify_gets_no_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let (embed, _, _) = embeddable(tmp.path());
    let w = World::with_artifacts(embed, Vec::new());
    let dest = w.path("dist");
    w.run(&["build", s(&dest)]).ok();
    fs::write(dest.join("python.exe"), variant(9)).unwrap();
    let policy = w.path("applocker.xml");
    let r = with_policy(&w, &dest, &policy).code(3);
    assert!(
        r.stderr.contains(&format!(
            "the AppLocker policy {} was not written: rules made from a tree that does not verify would allow what changed",
            policy.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!policy.exists());
}

#[test]
fn malformed_pe_files_are_named_and_fail_the_check() {
    // The standard world's programs are stand-ins ("MZ fake python.exe"), not PEs.
    let w = World::new();
    let dest = w.path("dist");
    w.run(&["build", s(&dest)]).ok();
    let policy = w.path("applocker.xml");
    let r = with_policy(&w, &dest, &policy).code(3);
    assert!(
        r.stdout.contains("MALFORMED ") && r.stdout.contains("  python.exe  (file sha256 "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  not a valid PE: "), "{}", r.stdout);
    assert!(
        r.stderr.contains("6 files cannot be read as PE files: ")
            && r.stderr.contains("/python.exe"),
        "{}",
        r.stderr
    );
    assert!(!policy.exists());
    let doc = w
        .run(&["--json", "verify", s(&dest), "--signatures"])
        .code(3)
        .json();
    let f = &doc["signatures"][0]["files"][0];
    assert_eq!(f["signature"], "malformed");
    assert!(f["authenticode_sha256"].is_null());

    let r = w
        .run(&["verify", s(&dest), "--applocker", s(&policy)])
        .code(2);
    assert!(r.stderr.contains("--signatures"), "{}", r.stderr);
}

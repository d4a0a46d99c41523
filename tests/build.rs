//! `extpy build` and `extpy verify`: assembling the External Python from verified
//! artifacts, refusing bad or hostile ones, and never leaving a half-built destination.

use std::fs;
use std::path::Path;

use support::fixtures::{RawEntry, raw_wheel, raw_zip, zip_of};
use support::{PY, WheelSpec, World, embeddable, extpy, run, tree};

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

/// Every file's bytes under `root`, for byte-for-byte comparisons.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    tree(root)
        .into_iter()
        .map(|rel| (rel.clone(), fs::read(root.join(&rel)).unwrap()))
        .collect()
}

fn no_leftovers(parent: &Path) {
    let names: Vec<String> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".extpy-tmp-") && !n.contains(".extpy-old-")),
        "leftovers: {names:?}"
    );
}

#[test]
fn builds_a_ready_distribution_and_verify_catches_an_edit() {
    let w = World::new();
    let dest = w.path("x");
    let r = w.run(&["build", dest.to_str().unwrap()]).ok();
    assert!(
        r.stdout.starts_with(&format!(
            "Generating python at location: {}\n",
            dest.display()
        )),
        "{}",
        r.stdout
    );
    assert!(dest.join("python.exe").is_file());
    let pth = read(&dest.join("python312._pth"));
    assert_eq!(pth.matches("Lib\\site-packages\r\n").count(), 1, "{pth:?}");
    assert_eq!(pth.matches("import site").count(), 1);
    assert!(
        pth.contains("\r\nimport site\r\n") && !pth.contains("#import site"),
        "{pth:?}"
    );
    let sp = dest.join("Lib/site-packages");
    for di in [
        "alpha-1.0.dist-info",
        "beta_pkg-2.1.dist-info",
        "gamma-0.3.dist-info",
    ] {
        assert!(sp.join(di).join("METADATA").is_file(), "{di}");
        assert_eq!(read(&sp.join(di).join("INSTALLER")), "extpy\n");
    }
    assert!(sp.join("alpha/__init__.py").is_file());
    let seal: serde_json::Value =
        serde_json::from_str(&read(&dest.join("extpy-seal.json"))).unwrap();
    assert_eq!(seal["format"], "extpy-seal/1");
    assert_eq!(seal["python"]["version"], PY);
    assert_eq!(seal["packages"].as_array().unwrap().len(), 3);
    let sealed: Vec<&str> = seal["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let mut on_disk = tree(&dest);
    on_disk.retain(|p| p != "extpy-seal.json");
    assert_eq!(sealed, on_disk, "the seal lists exactly the files on disk");

    let ok = extpy().arg("verify").arg(&dest).output().unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok "));

    fs::write(sp.join("alpha/core.py"), "print('tampered')\n").unwrap();
    let bad = run({
        let mut c = extpy();
        c.arg("verify").arg(&dest);
        c
    })
    .code(3);
    assert!(
        bad.stdout
            .contains("changed  Lib/site-packages/alpha/core.py"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stderr
            .contains("1 of 1 folders do not match their seal"),
        "{}",
        bad.stderr
    );
    no_leftovers(w.dir.path());
}

#[test]
fn no_argument_builds_contents_python_external_in_the_current_folder() {
    let w = World::new();
    let cwd = w.path("install/7.0.12.0");
    fs::create_dir_all(&cwd).unwrap();
    let mut c = w.cmd();
    c.arg("build").current_dir(&cwd);
    let r = run(c).ok();
    let expected = cwd.join("contents/Python/external");
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        format!("Generating python at location: {}", expected.display())
    );
    assert!(expected.join("extpy-seal.json").is_file());
}

#[test]
fn rebuilding_gives_a_byte_identical_tree_and_seal() {
    let w = World::new();
    let dest = w.path("x");
    w.run(&["build", dest.to_str().unwrap()]).ok();
    let first = snapshot(&dest);
    w.run(&["build", dest.to_str().unwrap()]).ok();
    assert_eq!(snapshot(&dest), first);
    let other = w.path("y");
    w.run(&["build", other.to_str().unwrap(), "--jobs", "1"])
        .ok();
    assert_eq!(
        snapshot(&other),
        first,
        "the same inputs build the same bytes anywhere"
    );
}

/// A wheel with purelib and platlib `.data` folders, and a cp312 platlib wheel.
fn data_and_platlib_wheels() -> (WheelSpec, WheelSpec) {
    let mut data = WheelSpec::pure("datapkg", "1.0");
    data.files.push((
        "datapkg-1.0.data/purelib/datapkg_extra.py".into(),
        b"X = 1\n".to_vec(),
    ));
    data.files.push((
        "datapkg-1.0.data/platlib/datapkg_native.pyd".into(),
        b"MZ native".to_vec(),
    ));
    let mut plat = WheelSpec::pure("nativepkg", "3.1");
    plat.tag = "cp312-cp312-win_amd64".into();
    plat.purelib = false;
    plat.files.push((
        "nativepkg/_speedups.cp312-win_amd64.pyd".into(),
        b"MZ speedups".to_vec(),
    ));
    (data, plat)
}

#[test]
fn data_platlib_and_abi3_wheels_install_where_an_installer_puts_them() {
    let (mut data, plat) = data_and_platlib_wheels();
    data.files.push((
        "datapkg-1.0.data/scripts/datatool".into(),
        b"#!python\nprint('tool')\n".to_vec(),
    ));
    data.files.push((
        "datapkg-1.0.data/data/share/datapkg/readme.txt".into(),
        b"shared data\n".to_vec(),
    ));
    data.files.push((
        "datapkg-1.0.data/headers/datapkg.h".into(),
        b"#define DATAPKG 1\n".to_vec(),
    ));
    let mut abi3 = WheelSpec::pure("stablepkg", "50.0");
    abi3.tag = "cp311-abi3-win_amd64".into();
    abi3.purelib = false;
    abi3.files
        .push(("stablepkg/_rust.pyd".into(), b"MZ rust".to_vec()));
    let w = World::with_wheels(&[data, plat, abi3]);
    let dest = w.path("x");
    w.run(&["build", dest.to_str().unwrap()]).ok();
    let sp = dest.join("Lib/site-packages");
    assert!(dest.join("Scripts/datatool").is_file());
    assert!(dest.join("share/datapkg/readme.txt").is_file());
    assert!(dest.join("Include/datapkg/datapkg.h").is_file());
    assert!(sp.join("datapkg_extra.py").is_file());
    assert!(sp.join("datapkg_native.pyd").is_file());
    assert!(
        !sp.join("datapkg-1.0.data").exists(),
        ".data is mapped, not copied"
    );
    assert!(sp.join("nativepkg/_speedups.cp312-win_amd64.pyd").is_file());
    assert!(sp.join("stablepkg/_rust.pyd").is_file());
    let record = read(&sp.join("datapkg-1.0.dist-info/RECORD"));
    assert!(
        record.contains("../../Scripts/datatool,sha256="),
        "{record}"
    );
    assert!(
        record.contains("../../Include/datapkg/datapkg.h,sha256="),
        "{record}"
    );
    assert!(record.contains("datapkg/__init__.py,sha256="), "{record}");
    assert!(
        record.contains("datapkg-1.0.dist-info/INSTALLER,sha256="),
        "{record}"
    );
    assert!(
        record.ends_with("datapkg-1.0.dist-info/RECORD,,\n"),
        "{record}"
    );
    extpy()
        .arg("verify")
        .arg(&dest)
        .status()
        .unwrap()
        .success()
        .then_some(())
        .expect("verify");
}

/// Builds a good distribution at `dest`, then returns its snapshot.
fn good_build(w: &World, dest: &Path) -> Vec<(String, Vec<u8>)> {
    let good = World::new();
    let mut c = good.cmd();
    c.arg("build").arg(dest);
    run(c).ok();
    let _ = w;
    snapshot(dest)
}

fn assert_refused(w: &World, code: i32, needles: &[&str]) {
    let dest = w.path("dest");
    let before = good_build(w, &dest);
    let r = w.run(&["build", dest.to_str().unwrap()]).code(code);
    for n in needles {
        assert!(r.stderr.contains(n), "missing {n:?} in:\n{}", r.stderr);
    }
    assert_eq!(
        snapshot(&dest),
        before,
        "the previous destination is untouched"
    );
    no_leftovers(w.dir.path());
}

#[test]
fn a_wheel_whose_record_disagrees_is_rejected() {
    let mut lie = WheelSpec::pure("liar", "1.0");
    lie.record_lie.push("liar/core.py".into());
    assert_refused(
        &World::with_wheels(&[lie]),
        3,
        &[
            "wheel liar-1.0-py3-none-any.whl",
            "liar/core.py does not match its RECORD entry",
        ],
    );
}

#[test]
fn a_file_missing_from_record_is_rejected() {
    let mut skip = WheelSpec::pure("sneaky", "1.0");
    skip.record_skip.push("sneaky/core.py".into());
    assert_refused(
        &World::with_wheels(&[skip]),
        3,
        &["sneaky/core.py is not listed in RECORD"],
    );
}

#[test]
fn a_record_entry_without_a_file_is_rejected() {
    let mut extra = WheelSpec::pure("ghost", "1.0");
    extra.record_extra.push(format!(
        "ghost/missing.py,{},1",
        support::fixtures::record_hash(b"x")
    ));
    assert_refused(
        &World::with_wheels(&[extra]),
        3,
        &["RECORD lists ghost/missing.py, which the wheel does not contain"],
    );
}

#[test]
fn wheel_tags_that_cannot_run_are_rejected() {
    let mut wrong = WheelSpec::pure("wrongtag", "1.0");
    wrong.tag = "py3-none-any".into();
    let mut built = wrong.clone();
    built.tag = "cp311-cp311-manylinux_2_17_x86_64".into();
    // The file name says py3-none-any (so the manifest accepts it); WHEEL says otherwise.
    let bytes = built.build();
    let w = World::with_artifacts(embeddable(PY), vec![(wrong.filename(), bytes)]);
    assert_refused(
        &w,
        3,
        &[
            "its WHEEL tags (cp311-cp311-manylinux_2_17_x86_64) cannot run on CPython 3.12.10 for win_amd64",
        ],
    );
}

fn hostile(entries: &[RawEntry], needles: &[&str]) {
    let (file, bytes) = raw_wheel("hostile", "1.0", entries);
    let w = World::with_artifacts(embeddable(PY), vec![(file, bytes)]);
    let mut all = vec!["wheel hostile-1.0-py3-none-any.whl: refused entry"];
    all.extend_from_slice(needles);
    assert_refused(&w, 3, &all);
}

#[test]
fn hostile_entries_are_refused_naming_archive_and_entry() {
    let x: &[u8] = b"x";
    hostile(
        &[RawEntry {
            name: "../evil.py",
            data: x,
            mode: None,
        }],
        &["\"../evil.py\"", "'..'"],
    );
    hostile(
        &[RawEntry {
            name: "hostile/../../evil.py",
            data: x,
            mode: None,
        }],
        &["'..'"],
    );
    hostile(
        &[RawEntry {
            name: "/etc/evil",
            data: x,
            mode: None,
        }],
        &["\"/etc/evil\"", "absolute path"],
    );
    hostile(
        &[RawEntry {
            name: "C:/Windows/evil.dll",
            data: x,
            mode: None,
        }],
        &["drive letter"],
    );
    hostile(
        &[RawEntry {
            name: "\\\\server\\share\\evil",
            data: x,
            mode: None,
        }],
        &["UNC path"],
    );
    hostile(
        &[RawEntry {
            name: "..\\..\\evil.dll",
            data: x,
            mode: None,
        }],
        &["\"..\\\\..\\\\evil.dll\"", "'..'"],
    );
    hostile(
        &[RawEntry {
            name: "hostile/link",
            data: b"/etc/passwd",
            mode: Some(0o120777),
        }],
        &["\"hostile/link\"", "symbolic link"],
    );
    hostile(
        &[
            RawEntry {
                name: "hostile/a.py",
                data: x,
                mode: None,
            },
            RawEntry {
                name: "hostile/a.py",
                data: b"y",
                mode: None,
            },
        ],
        &["\"hostile/a.py\"", "two entries with this name"],
    );
    hostile(
        &[
            RawEntry {
                name: "hostile/Core.py",
                data: x,
                mode: None,
            },
            RawEntry {
                name: "hostile/core.py",
                data: x,
                mode: None,
            },
        ],
        &[
            "\"hostile/core.py\"",
            "collides with \"hostile/Core.py\" on a case-insensitive file system",
        ],
    );
    hostile(
        &[RawEntry {
            name: "hostile/aux.py",
            data: x,
            mode: None,
        }],
        &["device name"],
    );
}

#[test]
fn a_zip_bomb_is_refused() {
    let zeros = vec![0u8; 8 << 20];
    let wheel = WheelSpec {
        files: vec![("bomb/zeros.bin".into(), zeros)],
        ..WheelSpec::pure("bomb", "1.0")
    };
    assert_refused(
        &World::with_wheels(&[wheel]),
        3,
        &["refused entry \"bomb/zeros.bin\"", "zip bomb"],
    );
}

#[test]
fn a_hostile_embeddable_zip_is_refused() {
    let evil = raw_zip(&[
        RawEntry {
            name: "python312._pth",
            data: b"python312.zip\n.\n",
            mode: None,
        },
        RawEntry {
            name: "../../outside.dll",
            data: b"MZ",
            mode: None,
        },
    ]);
    let w = World::with_artifacts(evil, {
        let alpha = WheelSpec::pure("alpha", "1.0");
        vec![(alpha.filename(), alpha.build())]
    });
    assert_refused(
        &w,
        3,
        &["embeddable zip python-3.12.10-embed-amd64.zip: refused entry \"../../outside.dll\""],
    );
    assert!(!w.dir.path().parent().unwrap().join("outside.dll").exists());
}

#[test]
fn an_embeddable_zip_without_pth_is_refused() {
    let zip = zip_of(&[("python.exe", b"MZ")]);
    let w = World::with_artifacts(zip, vec![]);
    assert_refused(&w, 3, &["it has no python312._pth at its root"]);
}

#[test]
fn two_wheels_writing_one_file_is_an_input_error() {
    let a = WheelSpec::pure("alpha", "1.0");
    let mut b = WheelSpec::pure("other", "1.0");
    b.files.push(("alpha/core.py".into(), b"clash".to_vec()));
    let w = World::with_wheels(&[a, b]);
    let dest = w.path("dest");
    let r = w.run(&["build", dest.to_str().unwrap()]).code(2);
    assert!(r.stderr.contains("Lib/site-packages/alpha/core.py would be written by both alpha-1.0-py3-none-any.whl and other-1.0-py3-none-any.whl"), "{}", r.stderr);
    assert!(!dest.exists());
}

#[test]
fn a_foreign_destination_is_refused_unless_forced() {
    let w = World::new();
    let dest = w.path("dest");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("precious.txt"), "mine").unwrap();
    let r = w.run(&["build", dest.to_str().unwrap()]).code(2);
    assert!(
        r.stderr.contains("holds no extpy-seal.json") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(read(&dest.join("precious.txt")), "mine");
    w.run(&["build", dest.to_str().unwrap(), "--force"]).ok();
    assert!(!dest.join("precious.txt").exists());
    assert!(dest.join("extpy-seal.json").is_file());
}

#[test]
fn an_empty_destination_is_used_and_a_file_destination_refused() {
    let w = World::new();
    let dest = w.path("empty");
    fs::create_dir_all(&dest).unwrap();
    w.run(&["build", dest.to_str().unwrap()]).ok();
    let file = w.path("file");
    fs::write(&file, "x").unwrap();
    let r = w.run(&["build", file.to_str().unwrap()]).code(2);
    assert!(
        r.stderr.contains("exists and is not a folder"),
        "{}",
        r.stderr
    );
}

#[test]
fn dry_run_writes_nothing() {
    let w = World::new();
    w.run(&["fetch"]).ok();
    let dest = w.path("dest");
    let r = w.run(&["build", dest.to_str().unwrap(), "--dry-run"]).ok();
    assert!(
        r.stdout
            .contains(&format!("would create {} (absent now)", dest.display())),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("alpha 1.0: 4 files"), "{}", r.stdout);
    assert!(!dest.exists());
    no_leftovers(w.dir.path());
}

/// On a cold cache a dry run downloads nothing: it says what a real run would download,
/// and opens no connection at all.
#[test]
fn dry_run_on_a_cold_cache_makes_no_request() {
    let w = World::new();
    let dest = w.path("dest");
    let r = w.run(&["build", dest.to_str().unwrap(), "--dry-run"]).ok();
    assert_eq!(w.mirror.connections(), 0, "{:?}", w.mirror.requests());
    assert!(w.mirror.requests().is_empty());
    assert!(
        r.stdout
            .contains(&format!("would create {} (absent now)", dest.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("alpha 1.0: not in the cache yet"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("would download: alpha-1.0-py3-none-any.whl ("),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("nothing was downloaded (dry run)"),
        "{}",
        r.stdout
    );
    let doc = w
        .run(&["build", dest.to_str().unwrap(), "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(doc["to_download"].as_array().unwrap().len(), 4, "{doc}");
    assert!(doc["embeddable_files"].is_null(), "{doc}");
    assert_eq!(w.mirror.connections(), 0);
    assert!(!dest.exists());
    // A foreign destination is refused before anything else, cold cache or not.
    fs::create_dir_all(dest.join("keep")).unwrap();
    let r = w
        .run(&["build", dest.to_str().unwrap(), "--dry-run"])
        .code(2);
    assert!(
        r.stderr.contains("holds no extpy-seal.json"),
        "{}",
        r.stderr
    );
    assert_eq!(w.mirror.connections(), 0);
}

#[test]
fn offline_build_from_a_warm_cache() {
    let w = World::new();
    w.run(&["fetch"]).ok();
    let before = w.mirror.connections();
    w.run(&["build", w.path("x").to_str().unwrap(), "--offline"])
        .ok();
    assert_eq!(w.mirror.connections(), before);
}

#[test]
fn killing_a_build_leaves_the_previous_destination_intact() {
    // A wheel with many files makes the assembly long enough to be interrupted.
    let mut big = WheelSpec::pure("big", "1.0");
    for i in 0..4000 {
        big.files.push((
            format!("big/m{i:04}.py"),
            format!("X = {i}\n").repeat(40).into_bytes(),
        ));
    }
    let w = World::with_wheels(&[big]);
    let dest = w.path("dest");
    w.run(&["build", dest.to_str().unwrap()]).ok();
    let before = snapshot(&dest);
    let temp_prefix = ".dest.extpy-tmp-";
    let mut killed_mid_way = false;
    for _ in 0..5 {
        let mut c = w.cmd();
        c.args(["build", dest.to_str().unwrap(), "--jobs", "1"]);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let started = std::time::Instant::now();
        loop {
            let staging = fs::read_dir(w.dir.path())
                .unwrap()
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().starts_with(temp_prefix));
            if let Some(s) = staging
                && tree(&s.path()).len() > 50
            {
                child.kill().unwrap();
                killed_mid_way = child.wait().unwrap().code().is_none();
                break;
            }
            if child.try_wait().unwrap().is_some() || started.elapsed().as_secs() > 20 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let _ = child.wait();
        if killed_mid_way {
            break;
        }
    }
    assert!(
        killed_mid_way,
        "the build finished before it could be interrupted"
    );
    assert_eq!(snapshot(&dest), before, "the previous build is intact");
    extpy()
        .arg("verify")
        .arg(&dest)
        .status()
        .unwrap()
        .success()
        .then_some(())
        .expect("still verifies");
    // The next run removes the leftover and completes.
    w.run(&["build", dest.to_str().unwrap()]).ok();
    no_leftovers(w.dir.path());
}

#[test]
fn verify_reports_each_kind_of_difference_exactly() {
    let w = World::new();
    let dest = w.path("x");
    w.run(&["build", dest.to_str().unwrap()]).ok();
    let sp = dest.join("Lib/site-packages");
    let mut bytes = fs::read(sp.join("alpha/core.py")).unwrap();
    bytes[0] ^= 1;
    fs::write(sp.join("alpha/core.py"), &bytes).unwrap();
    fs::remove_file(sp.join("gamma/__init__.py")).unwrap();
    fs::write(sp.join("beta_pkg/added.py"), "x = 1\n").unwrap();
    fs::create_dir_all(sp.join("alpha/__pycache__")).unwrap();
    fs::write(sp.join("alpha/__pycache__/core.cpython-312.pyc"), "cache").unwrap();

    let mut c = extpy();
    c.args(["verify", "--json"]).arg(&dest);
    let r = run(c).code(3);
    let doc = r.json();
    let res = &doc["results"][0];
    assert_eq!(res["ok"], false);
    assert_eq!(res["changed"].as_array().unwrap().len(), 1);
    assert_eq!(res["changed"][0]["path"], "Lib/site-packages/alpha/core.py");
    assert_eq!(
        res["missing"],
        serde_json::json!(["Lib/site-packages/gamma/__init__.py"])
    );
    assert_eq!(
        res["extra"],
        serde_json::json!(["Lib/site-packages/beta_pkg/added.py"])
    );
    assert_eq!(
        res["ignored"], 1,
        "the runtime cache is not an extra file by default"
    );
    assert_eq!(res["seal_altered"], false);

    let mut c = extpy();
    c.args(["verify", "--strict"]).arg(&dest);
    let r = run(c).code(3);
    assert!(
        r.stdout
            .contains("extra    Lib/site-packages/alpha/__pycache__/core.cpython-312.pyc"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("missing  Lib/site-packages/gamma/__init__.py"),
        "{}",
        r.stdout
    );
}

#[test]
fn verify_detects_an_edited_seal() {
    let w = World::new();
    let dest = w.path("x");
    w.run(&["build", dest.to_str().unwrap()]).ok();
    let seal = dest.join("extpy-seal.json");
    // Make the seal agree with a tampered file: the digest over the seal no longer matches.
    fs::write(dest.join("LICENSE.txt"), "changed\n").unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&read(&seal)).unwrap();
    for f in doc["files"].as_array_mut().unwrap() {
        if f["path"] == "LICENSE.txt" {
            f["size"] = 8.into();
            f["sha256"] = support::sha256_hex(b"changed\n").into();
        }
    }
    fs::write(&seal, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let mut c = extpy();
    c.arg("verify").arg(&dest);
    let r = run(c).code(3);
    assert!(r.stdout.contains("seal altered"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("was edited: its digest does not match its content"),
        "{}",
        r.stdout
    );

    fs::write(&seal, "{ not json").unwrap();
    let mut c = extpy();
    c.arg("verify").arg(&dest);
    let r = run(c).code(3);
    assert!(r.stdout.contains("cannot be read"), "{}", r.stdout);
}

#[test]
fn verify_without_seal_or_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = extpy();
    c.arg("verify").arg(dir.path());
    let r = run(c).code(3);
    assert!(
        r.stdout.contains("holds no extpy-seal.json"),
        "{}",
        r.stdout
    );
    let mut c = extpy();
    c.arg("verify").arg(dir.path().join("nope"));
    let r = run(c).code(2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
}

/// The site-packages extpy builds equals, file by file, what pip installs from the same
/// wheels (ignoring only what differs by design: INSTALLER, RECORD, REQUESTED, caches, and
/// the console-script launchers pip generates).
#[test]
#[ignore = "needs python3 -m pip; scripts/test.sh runs it"]
fn site_packages_matches_pip_install_target() {
    let pip_ok = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(pip_ok, "python3 -m pip is not available");
    let (data, plat) = data_and_platlib_wheels();
    let mut abi3 = WheelSpec::pure("stable_pkg", "50.0");
    abi3.tag = "cp311-abi3-win_amd64".into();
    abi3.files
        .push(("stable_pkg/sub/deep.py".into(), b"DEEP = True\n".to_vec()));
    let specs = [WheelSpec::pure("alpha", "1.0"), data, plat, abi3];
    let w = World::with_wheels(&specs);
    let dest = w.path("x");
    w.run(&["build", dest.to_str().unwrap()]).ok();

    let wheel_dir = w.path("wheels");
    fs::create_dir_all(&wheel_dir).unwrap();
    for (file, bytes) in &w.wheels {
        fs::write(wheel_dir.join(file), bytes).unwrap();
    }
    let target = w.path("pip-target");
    support::pip_install_target(
        &target,
        &wheel_dir,
        "3.12",
        &["alpha", "datapkg", "nativepkg", "stable_pkg"],
    );
    let ours = support::site_packages_as_pip_compares(&dest.join("Lib/site-packages"));
    let pips = support::site_packages_as_pip_compares(&target);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&pips), "same files");
    assert_eq!(ours, pips, "same bytes");
    assert!(ours.len() > 10);
}

/// There is no PowerShell here: the shim is checked as text for what decides its behaviour
/// in Windows PowerShell 5.1 (its help, how it takes arguments, its exit codes).
#[test]
fn get_py_shim_keeps_the_old_contract() {
    let shim = read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/get-py.ps1"
    )));
    let code: Vec<&str> = {
        let after_help = &shim[shim.find("#>").expect("comment-based help") + 2..];
        after_help
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    };
    let code_text = code.join("\n");
    // `-?` and Get-Help show the contract: comment-based help first, with examples.
    assert!(shim.starts_with("<#\n.SYNOPSIS"), "help comes first");
    for section in [".DESCRIPTION", ".EXAMPLE"] {
        assert!(shim.contains(section), "{section}");
    }
    assert!(shim.contains("contents\\Python\\external beside this script"));
    assert!(
        shim.contains("Unblock-File .\\get-py.ps1"),
        "documents Unblock-File"
    );
    assert!(shim.contains("passed to `extpy build` unchanged"));
    // Extra arguments reach extpy: no advanced-script markers, which refuse undeclared
    // arguments (--ca-cert) and empty $args.
    for marker in ["[Parameter", "[CmdletBinding"] {
        assert!(
            !code_text.contains(marker),
            "{marker} makes it an advanced script"
        );
    }
    assert!(
        !code
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("param(")),
        "no script-level param() block"
    );
    assert!(code_text.contains("$rest = @($args)"));
    assert!(code_text.contains("& $extpy build @native"));
    assert!(
        code_text.contains("@($rest | ForEach-Object { ConvertTo-NativeArgument ([string]$_) })"),
        "every remaining argument is passed on, in order"
    );
    // The old contract: an optional first destination, its default beside the script.
    assert!(code_text.contains("-not ([string]$rest[0]).StartsWith('-')"));
    assert!(
        code_text.contains("$rest[0] -eq '-Destination'"),
        "the old named form"
    );
    assert!(code_text.contains("Join-Path $PSScriptRoot 'contents\\Python\\external'"));
    // A trailing backslash does not escape the quote PowerShell 5.1 adds.
    assert!(code_text.contains("$Destination.TrimEnd('\\')"));
    assert!(
        code_text.contains("'(\\\\+)$'"),
        "trailing backslashes doubled"
    );
    // stderr lines must not become terminating errors; exit codes are extpy's.
    assert!(!code_text.contains("$ErrorActionPreference = 'Stop'"));
    assert!(code_text.contains("$ErrorActionPreference = 'Continue'"));
    assert!(
        !code_text.contains("Write-Error"),
        "Write-Error under Stop exits 1"
    );
    assert!(
        code_text.contains("exit 2"),
        "extpy missing is a usage error"
    );
    assert!(
        code_text.ends_with("exit $LASTEXITCODE"),
        "passes the exit code through"
    );
    assert!(
        shim.is_ascii(),
        "Windows PowerShell 5.1 reads a BOM-less script as ANSI"
    );
}

/// A disk that fills up mid-build: a clear error, the previous build intact, nothing left
/// behind. Needs a small tmpfs, mounted in a private user and mount namespace.
#[test]
#[ignore = "needs a tmpfs in a private namespace (unshare -rm); scripts/test.sh runs it"]
fn a_full_disk_fails_cleanly_and_keeps_the_previous_build() {
    assert!(
        support::can_mount_tmpfs(),
        "cannot mount a tmpfs in a user namespace here (unshare -rm)"
    );
    let small = World::new();
    let good = small.path("good");
    small.run(&["build", good.to_str().unwrap()]).ok();

    let big = WheelSpec {
        files: vec![("big/blob.bin".into(), support::fixtures::noise(3 << 20, 7))],
        ..WheelSpec::pure("big", "1.0")
    };
    let w = World::with_wheels(&[big]);
    w.run(&["fetch"]).ok();
    let mnt = w.path("mnt");
    let script = format!(
        "cp -r '{good}' '{mnt}/dest' || exit 91
         \"$EXTPY\" --manifest '{manifest}' --cache-dir '{cache}' --offline --no-progress build '{mnt}/dest'; echo \"rc=$?\"
         \"$EXTPY\" verify '{mnt}/dest' >/dev/null; echo \"verify=$?\"; ls -a '{mnt}'",
        mnt = mnt.display(),
        good = good.display(),
        manifest = w.manifest.display(),
        cache = w.cache.display(),
    );
    let (stdout, stderr) = support::in_tmpfs(&mnt, "size=1m", &script);
    assert!(
        stdout.contains("rc=1\n"),
        "a local failure (exit 1)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("No space left on device") || stderr.contains("disk is full"),
        "{stderr}"
    );
    assert!(
        stdout.contains("verify=0\n"),
        "the previous build still verifies\n{stdout}"
    );
    assert!(
        !stdout.contains(".dest.extpy-tmp-"),
        "no temporary folder left behind\n{stdout}"
    );
}

#[test]
fn a_requirement_the_manifest_does_not_pin_is_named() {
    let mut alpha = WheelSpec::pure("alpha", "1.0");
    alpha.requires = vec![
        "beta_pkg[fast]>=2.0".into(),
        "typing-extensions>=4; python_version < \"3.11\"".into(),
    ];
    let mut beta = WheelSpec::pure("beta_pkg", "2.1");
    beta.requires = vec![
        "gamma>=1.0; extra == 'fast'".into(),
        "win-only; sys_platform == 'linux'".into(),
    ];
    let w = World::with_wheels(&[alpha, beta, WheelSpec::pure("gamma", "0.3")]);
    let dest = w.path("x");
    w.run(&["fetch"]).ok();
    let r = w.run(&["build", dest.to_str().unwrap(), "--dry-run"]).ok();
    assert!(r.stdout.contains("unmet: beta_pkg 2.1 requires gamma>=1.0; extra == 'fast', but the manifest pins gamma 0.3"), "{}", r.stdout);
    let r = w.run(&["build", dest.to_str().unwrap(), "--json"]).ok();
    assert!(
        r.stderr
            .contains("warning: beta_pkg 2.1 requires gamma>=1.0"),
        "{}",
        r.stderr
    );
    let doc = r.json();
    assert_eq!(
        doc["unmet_requirements"].as_array().unwrap().len(),
        1,
        "{doc}"
    );
    assert!(
        dest.join("extpy-seal.json").is_file(),
        "the build still runs"
    );
}

#[test]
fn inputs_are_extracted_while_the_last_one_still_downloads() {
    let w = World::new();
    // One download at a time: the embeddable, alpha, beta_pkg, then gamma, whose answer is
    // held back long enough for the others to be installed meanwhile.
    let gamma = format!("/files/{}", w.wheels[2].0);
    w.mirror.fault(
        &gamma,
        support::mirror::Fault::Stall(std::time::Duration::from_secs(3)),
    );
    let dest = w.path("x");
    let r = w
        .run(&["build", dest.to_str().unwrap(), "--jobs", "1", "-v"])
        .ok();
    let at = |needle: &str| {
        r.stderr
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{}", r.stderr))
    };
    let last_download = at(&format!("{} verified", w.wheels[2].0));
    for early in [
        format!("extracting python-{PY}-embed-amd64.zip"),
        format!("installing {}", w.wheels[0].0),
        format!("installing {}", w.wheels[1].0),
    ] {
        assert!(
            at(&early) < last_download,
            "{early:?} comes after the last download:\n{}",
            r.stderr
        );
    }
    w.run(&["verify", dest.to_str().unwrap()]).ok();
}

#[test]
fn a_wrong_last_download_fails_the_build_after_the_others_were_extracted_and_leaves_nothing() {
    let w = World::new();
    let previous = w.path("x");
    w.run(&["build", previous.to_str().unwrap()]).ok();
    let before = snapshot(&previous);
    fs::remove_dir_all(&w.cache).unwrap();
    // gamma is the last of the four downloads with --jobs 1, and it arrives wrong.
    let gamma = format!("/files/{}", w.wheels[2].0);
    w.mirror.fault(&gamma, support::mirror::Fault::WrongBytes);
    let r = w
        .run(&["build", previous.to_str().unwrap(), "--jobs", "1", "-v"])
        .code(3);
    assert!(
        r.stderr.contains(&format!("installing {}", w.wheels[0].0)),
        "the earlier inputs were extracted before the failure:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("do not match the pinned sha256"),
        "{}",
        r.stderr
    );
    assert_eq!(
        snapshot(&previous),
        before,
        "the previous build is untouched"
    );
    no_leftovers(previous.parent().unwrap());

    // A destination that did not exist is not created.
    let fresh = w.path("fresh");
    w.mirror.fault(&gamma, support::mirror::Fault::WrongBytes);
    w.run(&["build", fresh.to_str().unwrap(), "--jobs", "1"])
        .code(3);
    assert!(!fresh.exists(), "nothing at the destination");
    no_leftovers(fresh.parent().unwrap());
}

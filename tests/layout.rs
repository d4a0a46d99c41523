//! `extpy layout` and `extpy verify --topology`: ExternalPython VU folders paired with their
//! cores, staged or in place, verified, idempotent, and never half-copied.

use std::fs;
use std::path::{Path, PathBuf};

use support::{World, run, tree};

/// Writes a topology into the world: `nodes` as (name, vu_root, cores).
fn topology(w: &World, nodes: &[(&str, &str, &[&str])]) -> PathBuf {
    let mut s = String::from("schema: 1\nsystem: Test system\nnodes:\n");
    for (name, root, cores) in nodes {
        s.push_str(&format!(
            "  - name: {name}\n    host: {}.example.com\n    vu_root: '{root}'\n    cores: [{}]\n",
            name.to_lowercase(),
            cores.join(", ")
        ));
    }
    let path = w.path("topology.yaml");
    fs::write(&path, s).unwrap();
    path
}

fn eight_cores(w: &World) -> PathBuf {
    topology(
        w,
        &[
            ("HAC1", "D:\\SCP\\vu", &["Core1", "Core2", "Core3"]),
            (
                "HAC2",
                "E:\\Program Files\\SCP\\vu\\",
                &["Core4", "Core5", "Core6"],
            ),
            ("HAC3", "\\\\fs01\\scp\\vu", &["Core7", "Core8"]),
        ],
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn stages_every_vu_of_three_nodes_with_pairing() {
    let w = World::new();
    let topo = eight_cores(&w);
    let out = w.path("stage");
    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    assert!(r.stdout.contains("HAC2  Core5  ExternalPython5  E:\\Program Files\\SCP\\vu\\ExternalPython5\\Python\\External  created"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "HAC3  Core8  ExternalPython8  \\\\fs01\\scp\\vu\\ExternalPython8\\Python\\External"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("8 VU folders written and verified"),
        "{}",
        r.stdout
    );
    for (node, vus) in [("HAC1", 1..=3), ("HAC2", 4..=6), ("HAC3", 7..=8)] {
        for n in vus {
            let dir = out
                .join(node)
                .join(format!("ExternalPython{n}"))
                .join("Python/External");
            assert!(dir.join("python.exe").is_file(), "{}", dir.display());
            assert!(dir.join("extpy-seal.json").is_file());
        }
    }
    assert!(
        !out.join("HAC1/ExternalPython4").exists(),
        "a VU lives on its core's node only"
    );
    let pairing: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("pairing.json")).unwrap()).unwrap();
    let pairs = pairing["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 8);
    assert_eq!(pairs[3]["core"], "Core4");
    assert_eq!(pairs[3]["node"], "HAC2");
    assert_eq!(pairs[3]["host"], "hac2.example.com");
    assert_eq!(pairs[3]["vu"], "ExternalPython4");
    assert_eq!(
        pairs[3]["vu_path"],
        "E:\\Program Files\\SCP\\vu\\ExternalPython4"
    );
    assert_eq!(
        pairs[3]["external_python_directory"],
        "E:\\Program Files\\SCP\\vu\\ExternalPython4\\Python\\External"
    );
    assert_eq!(pairing["system"], "Test system");

    // Every node verifies from its staged root.
    for node in ["HAC1", "HAC2", "HAC3"] {
        let root = out.join(node);
        w.run(&[
            "verify",
            "--topology",
            s(&topo),
            "--node",
            node,
            "--vu-root",
            s(&root),
        ])
        .ok();
    }
    w.run(&["verify", "--topology", s(&topo), "--out", s(&out)])
        .ok();
}

#[test]
fn a_second_run_changes_nothing_and_says_so() {
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1", "Core2"])]);
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    let seal = out.join("HAC1/ExternalPython1/Python/External/extpy-seal.json");
    let before = fs::metadata(&seal).unwrap().modified().unwrap();
    let inode_dir = out.join("HAC1/ExternalPython2/Python/External");
    let files_before = tree(&inode_dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::remove_file(out.join("pairing.json")).unwrap();
    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    assert!(
        out.join("pairing.json").is_file(),
        "the pairing is written again"
    );
    assert!(
        r.stdout
            .contains("nothing to do: all 2 VU folders already match seal"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("unchanged"), "{}", r.stdout);
    assert_eq!(
        fs::metadata(&seal).unwrap().modified().unwrap(),
        before,
        "untouched"
    );
    assert_eq!(tree(&inode_dir), files_before);
}

#[test]
fn a_tampered_vu_is_reported_then_repaired_only_with_repair() {
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1", "Core2"])]);
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    let victim = out.join("HAC1/ExternalPython2/Python/External/Lib/site-packages/alpha/core.py");
    fs::write(&victim, "tampered\n").unwrap();

    let root = out.join("HAC1");
    let r = w
        .run(&[
            "verify",
            "--topology",
            s(&topo),
            "--node",
            "HAC1",
            "--vu-root",
            s(&root),
        ])
        .code(3);
    assert!(
        r.stdout.contains("ok    HAC1 ExternalPython1 (Core1)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("FAIL  HAC1 ExternalPython2 (Core2)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("differs from its seal: 1 changed: Lib/site-packages/alpha/core.py"),
        "{}",
        r.stdout
    );

    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).code(3);
    assert!(
        r.stdout.contains("DIFFERS (left; --repair replaces it)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("re-run with --repair"), "{}", r.stderr);
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "tampered\n",
        "left as it was"
    );

    let r = w
        .run(&["layout", s(&topo), "--out", s(&out), "--repair"])
        .ok();
    assert!(r.stdout.contains("repaired"), "{}", r.stdout);
    w.run(&[
        "verify",
        "--topology",
        s(&topo),
        "--node",
        "HAC1",
        "--vu-root",
        s(&root),
    ])
    .ok();
}

#[test]
fn a_missing_vu_fails_verify_and_is_laid_out_again() {
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1", "Core2"])]);
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    fs::remove_dir_all(out.join("HAC1/ExternalPython1")).unwrap();
    let mut c = w.cmd();
    c.args([
        "verify",
        "--json",
        "--topology",
        s(&topo),
        "--node",
        "hac1",
        "--vu-root",
        s(&out.join("HAC1")),
    ]);
    let r = run(c).code(3);
    let doc = r.json();
    assert_eq!(doc["ok"], false);
    let vus = doc["vus"].as_array().unwrap();
    assert_eq!(vus[0]["vu"], "ExternalPython1");
    assert_eq!(vus[0]["ok"], false);
    assert_eq!(vus[0]["found"]["state"], "absent");
    assert_eq!(vus[1]["ok"], true);
    assert_eq!(vus[1]["core"], "Core2");
    assert_eq!(
        vus[1]["external_python_directory"],
        "D:\\SCP\\vu\\ExternalPython2\\Python\\External"
    );
    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    assert!(
        r.stdout.contains("1 VU folder written and verified"),
        "{}",
        r.stdout
    );
}

#[test]
fn one_node_in_place_with_node_and_vu_root() {
    let w = World::new();
    let topo = eight_cores(&w);
    let root = w.path("node2-vu");
    let r = w
        .run(&["layout", s(&topo), "--node", "HAC2", "--vu-root", s(&root)])
        .ok();
    assert!(r.stdout.contains("3 VU folders written"), "{}", r.stdout);
    let mut vus: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    vus.sort();
    assert_eq!(
        vus,
        ["ExternalPython4", "ExternalPython5", "ExternalPython6"]
    );
    assert!(
        !root.join("pairing.json").exists(),
        "pairing.json is written only when staging"
    );
}

#[test]
fn one_core_topology() {
    let w = World::new();
    let topo = topology(&w, &[("Solo", "C:\\vu", &["Core1"])]);
    let root = w.path("vu");
    w.run(&["layout", s(&topo), "--vu-root", s(&root)]).ok();
    assert!(
        root.join("ExternalPython1/Python/External/python.exe")
            .is_file()
    );
    w.run(&["verify", "--topology", s(&topo), "--vu-root", s(&root)])
        .ok();
}

#[test]
fn selection_errors_are_input_errors() {
    let w = World::new();
    let topo = eight_cores(&w);
    let r = w
        .run(&[
            "layout",
            s(&topo),
            "--node",
            "HAC9",
            "--out",
            s(&w.path("x")),
        ])
        .code(2);
    assert!(
        r.stderr
            .contains("has no node \"HAC9\"; its nodes are: HAC1, HAC2, HAC3"),
        "{}",
        r.stderr
    );
    let r = w
        .run(&["layout", s(&topo), "--vu-root", s(&w.path("x"))])
        .code(2);
    assert!(
        r.stderr.contains("name it with --node (HAC1, HAC2, HAC3)"),
        "{}",
        r.stderr
    );
    if !cfg!(windows) {
        let r = w.run(&["layout", s(&topo)]).code(2);
        assert!(
            r.stderr
                .contains("is a Windows path; on this machine pass --out DIR"),
            "{}",
            r.stderr
        );
    }
    assert!(!w.path("x").exists());
}

#[test]
fn topology_errors_point_at_the_line() {
    let w = World::new();
    let path = w.path("bad.yaml");
    fs::write(&path, "schema: 1\nnodes:\n  - name: A\n    vu_root: 'D:\\vu'\n    cores: [Core1]\n  - name: B\n    vu_root: 'vu'\n    cores: [Core2]\n").unwrap();
    let r = w
        .run(&["layout", s(&path), "--out", s(&w.path("x"))])
        .code(2);
    assert!(
        r.stderr.contains(&format!(
            "{}:7: nodes[1].vu_root: \"vu\" is not an absolute Windows path",
            path.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn dry_run_touches_nothing() {
    let w = World::new();
    let topo = eight_cores(&w);
    let out = w.path("stage");
    let r = w
        .run(&["layout", s(&topo), "--out", s(&out), "--dry-run"])
        .ok();
    assert!(r.stdout.contains("would create"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "dry run: 8 VU folders would be written, 0 already match; nothing was changed"
        ),
        "{}",
        r.stdout
    );
    assert!(!out.exists());
    assert!(!w.cache.exists(), "not even the cache");
}

/// Flips the first byte of `file`, keeping its size (a check by size alone passes it).
fn flip_first_byte(file: &Path) {
    let mut bytes = fs::read(file).unwrap();
    bytes[0] ^= 0xff;
    fs::write(file, bytes).unwrap();
}

#[test]
fn a_given_distribution_changed_in_place_is_refused_while_it_is_copied() {
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1", "Core2"])]);
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    flip_first_byte(&dist.join("python.exe"));
    let out = w.path("stage");
    let r = w
        .run(&["layout", s(&topo), "--out", s(&out), "--dist", s(&dist)])
        .code(3);
    assert!(
        r.stderr
            .contains("does not match its seal (python.exe changed"),
        "{}",
        r.stderr
    );
    for vu in ["ExternalPython1", "ExternalPython2"] {
        let python = out.join("HAC1").join(vu).join("Python");
        let left: Vec<_> = fs::read_dir(&python)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "no VU and no temporary folder: {left:?}");
    }
}

#[test]
fn a_given_distribution_is_checked_before_it_is_copied() {
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1"])]);
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out), "--dist", s(&dist)])
        .ok();
    // Same size, and the VU already matches: nothing needs copying, the files are hashed.
    flip_first_byte(&dist.join("python.exe"));
    // Another size, into a new folder: refused from the listing, before any copy.
    let out2 = w.path("stage2");
    for (out, tamper) in [(&out, None), (&out2, Some("tampered"))] {
        if let Some(text) = tamper {
            fs::write(dist.join("python.exe"), text).unwrap();
        }
        let r = w
            .run(&["layout", s(&topo), "--out", s(out), "--dist", s(&dist)])
            .code(3);
        assert!(
            r.stderr
                .contains("does not match its seal (1 changed: python.exe)"),
            "{}",
            r.stderr
        );
    }
    assert!(!out2.join("HAC1/ExternalPython1").exists());
}

#[test]
fn a_vu_from_another_manifest_is_updated() {
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1"])]);
    let out = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    // The same pins under another name make another manifest (and seal).
    let text = fs::read_to_string(&w.manifest)
        .unwrap()
        .replace("name: test-dist", "name: test-dist-next");
    fs::write(&w.manifest, text).unwrap();
    let root = out.join("HAC1");
    let r = w
        .run(&["verify", "--topology", s(&topo), "--vu-root", s(&root)])
        .code(3);
    assert!(
        r.stdout.contains("holds another distribution (test-dist@"),
        "{}",
        r.stdout
    );
    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    assert!(r.stdout.contains("updated"), "{}", r.stdout);
    w.run(&["verify", "--topology", s(&topo), "--vu-root", s(&root)])
        .ok();
}

/// A full disk while copying: a clear error, no half-copied VU, the VUs already there
/// intact. Needs a small tmpfs in a private user and mount namespace.
#[test]
#[ignore = "needs a tmpfs in a private namespace (unshare -rm); scripts/test.sh runs it"]
fn a_full_destination_leaves_no_half_copied_vu() {
    assert!(
        support::can_mount_tmpfs(),
        "cannot mount a tmpfs in a user namespace here (unshare -rm)"
    );
    let mut big = support::WheelSpec::pure("big", "1.0");
    big.files.push((
        "big/blob.bin".into(),
        (0..(400 * 1024u32))
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect(),
    ));
    let w = World::with_wheels(&[big]);
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1", "Core2", "Core3"])]);
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    let mnt = w.path("mnt");
    let script = format!(
        "\"$EXTPY\" --manifest '{manifest}' --cache-dir '{cache}' --offline --no-progress --jobs 1 layout '{topo}' --vu-root '{mnt}' --node HAC1 --dist '{dist}'; echo \"rc=$?\"
         for d in '{mnt}'/*; do echo \"vu=$(basename \"$d\")\"; ls -a \"$d/Python\" 2>/dev/null; done
         \"$EXTPY\" --manifest '{manifest}' --cache-dir '{cache}' --offline verify --topology '{topo}' --vu-root '{mnt}' --node HAC1; echo \"verify=$?\"",
        mnt = mnt.display(),
        cache = w.cache.display(),
        manifest = w.manifest.display(),
        topo = topo.display(),
        dist = dist.display(),
    );
    let (stdout, stderr) = support::in_tmpfs(&mnt, "size=1m", &script);
    assert!(
        stdout.contains("rc=1\n"),
        "a local failure\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("No space left on device") && stderr.contains("the disk is full"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("extpy-tmp"),
        "no half-copied VU left behind\n{stdout}"
    );
    // Whatever VU folders exist are complete: verify reports only missing ones, never damaged.
    assert!(!stdout.contains("differs from its seal"), "{stdout}");
    assert!(
        stdout.contains("missing: no distribution in the VU folder"),
        "{stdout}"
    );
}

/// A read-only VU root: a clear error and nothing written.
#[test]
#[ignore = "needs a tmpfs in a private namespace (unshare -rm); scripts/test.sh runs it"]
fn a_read_only_destination_is_a_clear_local_error() {
    assert!(
        support::can_mount_tmpfs(),
        "cannot mount a tmpfs in a user namespace here (unshare -rm)"
    );
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1"])]);
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    let mnt = w.path("ro");
    let script = format!(
        "\"$EXTPY\" --manifest '{manifest}' --cache-dir '{cache}' --offline --no-progress layout '{topo}' --vu-root '{mnt}' --node HAC1 --dist '{dist}'; echo \"rc=$?\"
         echo \"entries=$(ls -A '{mnt}' | wc -l)\"",
        mnt = mnt.display(),
        cache = w.cache.display(),
        manifest = w.manifest.display(),
        topo = topo.display(),
        dist = dist.display(),
    );
    let (stdout, stderr) = support::in_tmpfs(&mnt, "size=1m,ro", &script);
    assert!(
        stdout.contains("rc=1\n"),
        "a local failure\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("Read-only file system") && stderr.contains("not writable"),
        "{stderr}"
    );
    assert!(stdout.contains("entries=0\n"), "nothing written\n{stdout}");
}

#[test]
fn a_layout_that_cannot_download_explains_the_certificate() {
    let w = World::new();
    let topo = topology(&w, &[("HAC1", "D:\\SCP\\vu", &["Core1"])]);
    let mut c = support::extpy();
    c.args(["--manifest", s(&w.manifest), "--cache-dir", s(&w.cache)]);
    c.args([
        "--python-mirror",
        &w.mirror.python_mirror(),
        "--index-url",
        &w.mirror.index_url(),
    ]);
    c.args(["layout", s(&topo), "--out", s(&w.path("stage"))]);
    let r = run(c).code(4);
    assert!(
        r.stderr
            .contains("TLS with 127.0.0.1 failed: root not trusted by this machine"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("extpy layout --ca-cert"),
        "the fix names the command: {}",
        r.stderr
    );
    assert!(!w.path("stage/HAC1/ExternalPython1").exists());
}

/// A topology whose nodes say their Windows version (`os:`): HAC1 Server 2019, HAC2
/// Server 2012 R2, HAC3 unknown.
fn nodes_with_os(w: &World) -> PathBuf {
    let path = w.path("topology.yaml");
    fs::write(
        &path,
        "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    os: Server 2019\n    cores: [Core1]\n  - name: HAC2\n    vu_root: 'D:\\SCP\\vu'\n    os: 6.3.9600\n    cores: [Core2]\n  - name: HAC3\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core3]\n",
    )
    .unwrap();
    path
}

#[test]
fn a_node_whose_windows_cannot_run_the_cpython_is_refused_before_anything_is_written() {
    let w = World::new();
    let topo = nodes_with_os(&w);
    let old = fs::read_to_string(&w.manifest).unwrap();
    let version = old
        .lines()
        .find_map(|l| l.trim().strip_prefix("version: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    fs::write(&w.manifest, old.replace(&version, "3.13.9")).unwrap();
    let out = w.path("stage");
    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).code(2);
    assert!(
        r.stderr.contains("node HAC2 (os: \"6.3.9600\" in the topology: Windows 8.1 / Server 2012 R2 (6.3.9600)): CPython 3.13.9 needs Windows 10 / Server 2016 (10.0) or newer")
            && r.stderr.contains("the CPython lines that run there are 3.9 to 3.12")
            && r.stderr.contains("help: keep these nodes on a manifest"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("node HAC1 ("), "{}", r.stderr);
    assert!(!out.exists(), "nothing is written for a refused layout");
    // The other nodes can go ahead; the node without os: is laid out with a warning.
    let r = w
        .run(&[
            "layout",
            s(&topo),
            "--out",
            s(&out),
            "--node",
            "HAC1",
            "--dry-run",
        ])
        .ok();
    assert!(!r.stderr.contains("unknown"), "{}", r.stderr);
    let r = w
        .run(&[
            "layout",
            s(&topo),
            "--out",
            s(&out),
            "--node",
            "HAC3",
            "--dry-run",
        ])
        .ok();
    assert!(
        r.stderr.contains("the Windows version of node HAC3 is unknown, so extpy cannot check that it runs CPython 3.13; add os:"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_3_12_line_lays_out_on_server_2012_r2() {
    let w = World::new();
    let topo = nodes_with_os(&w);
    let out = w.path("stage");
    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
    assert!(
        out.join("HAC2/ExternalPython2/Python/External/python.exe")
            .is_file()
    );
    assert!(r.stderr.contains("node HAC3 is unknown"), "{}", r.stderr);
}

#[test]
fn an_os_that_is_not_a_windows_version_points_at_its_line() {
    let w = World::new();
    let path = w.path("topology.yaml");
    fs::write(
        &path,
        "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    os: Server 2013\n    cores: [Core1]\n",
    )
    .unwrap();
    let r = w
        .run(&["layout", s(&path), "--out", s(&w.path("stage"))])
        .code(2);
    assert!(
        r.stderr.contains("topology.yaml:5")
            && r.stderr.contains("nodes[0].os")
            && r.stderr
                .contains("\"Server 2013\" is not a Windows version extpy knows")
            && r.stderr.contains("help: or leave os: out"),
        "{}",
        r.stderr
    );
}

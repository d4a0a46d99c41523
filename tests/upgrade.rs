//! Upgrades side by side: lay out 3.12, upgrade to 3.13 keeping the previous tree, verify
//! what is in place and kept, roll back; a rollback with nothing kept is refused; a
//! rollback killed half-way is finished by the next run.

use std::fs;
use std::path::{Path, PathBuf};

use support::{World, embeddable, plan_step, sha256_hex, tree};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn topology(w: &World) -> PathBuf {
    let path = w.path("topology.yaml");
    fs::write(
        &path,
        "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP Data\\vu'\n    os: Server 2019\n    cores: [Core1, Core2]\n",
    )
    .unwrap();
    path
}

/// Turns the world's manifest into a 3.13 one (same wheels) and serves its embeddable zip;
/// returns where the 3.12 manifest was saved.
fn manifest_3_13(w: &World) -> PathBuf {
    let text = fs::read_to_string(&w.manifest).unwrap();
    let old_sha = text
        .lines()
        .skip_while(|l| !l.contains("embed-amd64.zip"))
        .find_map(|l| l.trim().strip_prefix("sha256: "))
        .unwrap()
        .to_string();
    let embed = embeddable("3.13.9");
    w.mirror
        .add_python("3.13.9", "python-3.13.9-embed-amd64.zip", embed.clone());
    let text = text
        .replace("3.12.10", "3.13.9")
        .replace(&old_sha, &sha256_hex(&embed))
        .replace("name: test-dist", "name: test-dist-3.13");
    let path = w.path("python-3.12.yaml");
    fs::copy(&w.manifest, &path).unwrap();
    fs::write(&w.manifest, text).unwrap();
    path
}

/// Every file under `dir` with its bytes, in path order.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|rel| {
            let bytes = fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// One node (HAC1, two VUs) staged under `out` with the world's 3.12 manifest.
struct Site {
    w: World,
    topo: PathBuf,
    out: PathBuf,
    root: PathBuf,
}

impl Site {
    fn laid_out() -> Self {
        let w = World::new();
        let topo = topology(&w);
        let out = w.path("stage");
        let root = out.join("HAC1");
        w.run(&["layout", s(&topo), "--out", s(&out)]).ok();
        Site { w, topo, out, root }
    }

    /// Runs `extpy ARGS TOPOLOGY --out OUT MORE...`.
    fn run(&self, command: &str, more: &[&str]) -> support::Run {
        let mut args = vec![command];
        if command == "verify" {
            args.push("--topology");
        }
        args.extend([s(&self.topo), "--out", s(&self.out)]);
        args.extend(more);
        self.w.run(&args)
    }

    fn rollback(&self, more: &[&str]) -> support::Run {
        let mut args = vec!["--node", "HAC1"];
        args.extend(more);
        self.run("rollback", &args)
    }

    /// Moves the world to 3.13 and lays it out keeping the previous trees; returns the saved
    /// 3.12 manifest.
    fn upgrade(&self) -> PathBuf {
        let old = manifest_3_13(&self.w);
        let r = self.run("layout", &["--keep-previous"]).ok();
        assert!(r.stdout.contains("updated, previous kept"), "{}", r.stdout);
        old
    }

    fn python(&self, vu: u32) -> PathBuf {
        self.root.join(format!("ExternalPython{vu}/Python"))
    }
}

#[test]
fn upgrade_keeping_the_previous_tree_then_roll_back() {
    let site = Site::laid_out();
    let root = &site.root;
    let before = contents(root);
    let old = site.upgrade();
    let kept = site.python(1).join("External.previous");
    assert!(kept.join("extpy-seal.json").is_file());
    assert!(site.python(1).join("External/python313._pth").is_file());

    let r = site.run("verify", &[]).ok();
    assert!(
        r.stdout
            .contains("in place: test-dist-3.13 (CPython 3.13.9, seal ")
            && r.stdout
                .contains("previous copy kept: test-dist (CPython 3.12.10, seal "),
        "{}",
        r.stdout
    );
    let doc = site.run("verify", &["--json"]).ok().json();
    assert_eq!(doc["vus"][1]["in_place"]["python"], "3.13.9");
    assert_eq!(doc["vus"][1]["previous"]["sealed"]["python"], "3.12.10");
    assert_eq!(doc["vus"][1]["previous"]["intact"], true);
    assert!(
        doc["vus"][1]["previous"]["path"]
            .as_str()
            .unwrap()
            .ends_with("External.previous")
    );

    let r = site.rollback(&[]).ok();
    assert!(
        r.stdout.contains("ExternalPython2")
            && r.stdout
                .contains("rolled back; in place: test-dist (CPython 3.12.10"),
        "{}",
        r.stdout
    );
    assert_eq!(
        contents(root),
        before,
        "the 3.12 trees are back byte for byte, and nothing else changed"
    );
    fs::copy(&old, &site.w.manifest).unwrap();
    let r = site.run("verify", &[]).ok();
    assert!(
        r.stdout.contains("in place: test-dist (CPython 3.12.10")
            && r.stdout.contains("no previous copy kept"),
        "{}",
        r.stdout
    );
    let doc = site.rollback(&["--json"]).code(2).json();
    assert_eq!(doc["command"], "rollback");
}

#[test]
fn a_rollback_with_nothing_kept_is_refused_and_changes_nothing() {
    let site = Site::laid_out();
    let before = tree(&site.out);
    let r = site.rollback(&[]).code(2);
    assert!(
        r.stderr.contains("no previous copy is kept")
            && r.stderr.contains("External.previous does not exist")
            && r.stderr
                .contains("help: roll back only VUs laid out with `extpy layout --keep-previous`"),
        "{}",
        r.stderr
    );
    assert_eq!(tree(&site.out), before);
    let r = site
        .w
        .run(&[
            "rollback",
            s(&site.topo),
            "--node",
            "HAC9",
            "--out",
            s(&site.out),
        ])
        .code(2);
    assert!(r.stderr.contains("has no node \"HAC9\""), "{}", r.stderr);
}

/// The two states a rollback killed between its renames leaves (made here with the same
/// renames, since each takes microseconds): the next rollback finishes either.
#[test]
fn a_rollback_killed_half_way_is_finished_by_the_next_run() {
    let site = Site::laid_out();
    let before = contents(&site.root);
    let old = site.upgrade();
    let (py1, py2) = (site.python(1), site.python(2));
    let aside = ".External.extpy-old-rollback-99999";
    // VU 1 killed after the first rename (the 3.13 tree moved aside, nothing in place);
    // VU 2 after the second (3.12 in place, the 3.13 tree not yet deleted).
    fs::rename(py1.join("External"), py1.join(aside)).unwrap();
    fs::rename(py2.join("External"), py2.join(aside)).unwrap();
    fs::rename(py2.join("External.previous"), py2.join("External")).unwrap();
    let r = site.rollback(&[]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("HAC1 ExternalPython1 (")
            && lines[0].contains("): rolled back; in place: test-dist (CPython 3.12.10")
            && lines[1].starts_with("HAC1 ExternalPython2 (")
            && lines[1].contains(
                "): finished an interrupted rollback; in place: test-dist (CPython 3.12.10"
            ),
        "{}",
        r.stdout
    );
    assert_eq!(contents(&site.root), before);
    fs::copy(&old, &site.w.manifest).unwrap();
    site.run("verify", &[]).ok();
}

#[test]
fn a_kept_copy_that_differs_from_its_seal_is_not_put_back() {
    let site = Site::laid_out();
    site.upgrade();
    // VU 1's kept copy is fine; VU 2's was changed after it was kept.
    let kept = site.python(2).join("External.previous");
    fs::write(kept.join("python.exe"), b"MZ not the sealed bytes").unwrap();
    let before = contents(&site.root);
    let r = site.rollback(&[]).code(3);
    assert!(
        r.stderr
            .contains(&format!("the copy kept at {}", kept.display()))
            && r.stderr
                .contains("does not match its seal (1 changed: python.exe)")
            && r.stderr.contains("nothing was rolled back"),
        "{}",
        r.stderr
    );
    assert_eq!(contents(&site.root), before, "no VU was rolled back");
    let r = site.run("verify", &[]).ok();
    assert!(
        r.stdout
            .contains("which DIFFERS from its seal (1 changed: python.exe)"),
        "{}",
        r.stdout
    );
}

/// A layout --keep-previous killed between its renames (the tree in place moved to where
/// it is kept, the new one not yet in): the next layout puts the new one in, keeping it.
#[test]
fn a_layout_keeping_the_previous_copy_killed_half_way_is_completed_by_the_next() {
    let site = Site::laid_out();
    let py = site.python(1);
    let before = contents(&py.join("External"));
    fs::rename(py.join("External"), py.join("External.previous")).unwrap();
    fs::create_dir(py.join(".External.extpy-tmp-99999")).unwrap();
    fs::write(py.join(".External.extpy-tmp-99999/half"), "x").unwrap();
    site.upgrade();
    assert!(py.join("External/python313._pth").is_file());
    assert_eq!(contents(&py.join("External.previous")), before);
    let mut names: Vec<String> = fs::read_dir(&py)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["External", "External.previous"]);
    let doc = site.rollback(&["--json"]).ok().json();
    assert_eq!(doc["vus"][0]["outcome"], "rolled_back");
    assert_eq!(doc["vus"][0]["in_place"]["python"], "3.12.10");
    assert_eq!(contents(&py.join("External")), before);
}

/// A folder a plain layout moved aside and could not delete is not a rollback to finish:
/// with nothing kept, the rollback is refused.
#[test]
fn a_leftover_of_a_plain_layout_is_not_taken_for_an_interrupted_rollback() {
    let site = Site::laid_out();
    let stale = site.python(1).join(".External.extpy-old-4242");
    fs::create_dir(&stale).unwrap();
    let r = site.rollback(&[]).code(2);
    assert!(
        r.stderr.contains("no previous copy is kept"),
        "{}",
        r.stderr
    );
    assert!(stale.is_dir());
}

/// `plan --upgrade-from` given what a node holds (a VU folder, or its seal copied off the
/// node) instead of a manifest: the runbook names that manifest and seal, and checks each VU
/// folder against its own seal before and after a rollback.
#[test]
fn the_upgrade_runbook_from_the_seal_found_on_a_node() {
    let site = Site::laid_out();
    let vu = site.python(1).join("External");
    let seal: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(vu.join("extpy-seal.json")).unwrap()).unwrap();
    manifest_3_13(&site.w);
    let doc = site
        .w
        .run(&[
            "plan",
            s(&site.topo),
            "--upgrade-from",
            s(&vu),
            "--format",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(doc["upgrade"]["from"]["name"], "test-dist");
    assert_eq!(doc["upgrade"]["from"]["python"], "3.12.10");
    assert_eq!(doc["upgrade"]["from_seal_digest"], seal["digest"]);
    assert_eq!(doc["manifest"]["python"], "3.13.9");
    let step = |id: &str| plan_step(&doc, id);
    let verify = "extpy verify \"D:\\SCP Data\\vu\\ExternalPython1\\Python\\External\" \"D:\\SCP Data\\vu\\ExternalPython2\\Python\\External\"";
    let before = step("precheck.in-place.hac1");
    assert_eq!(before["check"], verify);
    let short = &seal["digest"].as_str().unwrap()[..12];
    assert!(
        before["instruction"].as_str().unwrap().contains(&format!(
            "Each must hold the seal {short} that --upgrade-from read"
        )),
        "{before}"
    );
    assert_eq!(step("rollback.hac1")["check"], verify);

    // The seal copied off the node works the same; one changed after extpy wrote it does not.
    let copy = site.w.path("seal-from-hac1.json");
    fs::copy(vu.join("extpy-seal.json"), &copy).unwrap();
    let r = site
        .w
        .run(&[
            "plan",
            s(&site.topo),
            "--upgrade-from",
            s(&copy),
            "--format",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(r["upgrade"]["from_seal_digest"], seal["digest"]);
    let text = fs::read_to_string(&copy).unwrap();
    fs::write(&copy, text.replacen("test-dist", "test-dust", 1)).unwrap();
    let r = site
        .w
        .run(&["plan", s(&site.topo), "--upgrade-from", s(&copy)])
        .code(2);
    assert!(
        r.stderr
            .contains("the seal's digest does not match its contents"),
        "{}",
        r.stderr
    );
    // A folder without a seal is not what a node runs.
    let r = site
        .w
        .run(&["plan", s(&site.topo), "--upgrade-from", s(&site.out)])
        .code(3);
    assert!(
        r.stderr.contains("holds no extpy-seal.json"),
        "{}",
        r.stderr
    );
}

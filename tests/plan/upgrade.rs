//! `extpy plan --upgrade-from`: the upgrade runbook, in every format, for the example
//! topology with a second node on Server 2012 R2; the refusals of an old manifest that is not
//! older or cannot be read.

use std::fs;
use std::path::Path;

use support::{Run, assert_snapshot, plan_step as step};

use super::{check_well_formed, plan, workspace};

/// The shipped 3.12 manifest made into a 3.13 one (same pins, tags and names for 3.13): the
/// plan reads a manifest and downloads nothing, so its hashes need not be real ones.
pub(super) fn manifest_3_13(dir: &Path) {
    let text = fs::read_to_string(dir.join("python-3.12-win-amd64.yaml")).unwrap();
    let text = text
        .replace("3.12.10", "3.13.9")
        .replace("cem-external-python-3.12", "cem-external-python-3.13")
        .replace("cp312-cp312", "cp313-cp313")
        .replace("# the last 3.12 release with Windows binaries", "");
    fs::write(dir.join("python-3.13-win-amd64.yaml"), text).unwrap();
}

/// The example topology with HAC1 on Server 2019 and a second node, HAC2, on Server 2012 R2.
pub(super) fn two_nodes(dir: &Path) {
    let text = fs::read_to_string(dir.join("topology.example.yaml")).unwrap();
    let text = text.replace(
        "    cores: [Core1, Core2]\n",
        "    os: Server 2019\n    cores: [Core1, Core2]\n  - name: HAC2\n    vu_root: 'E:\\SCP\\vu'\n    os: Server 2012 R2\n    cores: [Core3, Core4]\n",
    );
    assert!(text.contains("HAC2"), "the example topology changed");
    fs::write(dir.join("upgrade.yaml"), text).unwrap();
}

pub(super) const UPGRADE: &[&str] = &[
    "upgrade.yaml",
    "--manifest",
    "python-3.13-win-amd64.yaml",
    "--upgrade-from",
    "python-3.12-win-amd64.yaml",
];

fn upgrade_plan(dir: &Path, more: &[&str]) -> Run {
    let mut args = UPGRADE.to_vec();
    args.extend(more);
    plan(dir, &args)
}

/// `extpy plan TOPOLOGY --manifest NEW --upgrade-from OLD MORE...`.
fn plan_from(dir: &Path, topology: &str, new: &str, old: &str, more: &[&str]) -> Run {
    let mut args = vec![topology, "--manifest", new, "--upgrade-from", old];
    args.extend(more);
    plan(dir, &args)
}

fn upgrade_workspace() -> tempfile::TempDir {
    let dir = workspace();
    manifest_3_13(dir.path());
    two_nodes(dir.path());
    dir
}

#[test]
fn upgrade_runbook_snapshots_in_every_format() {
    let dir = upgrade_workspace();
    for (format, ext) in [
        ("markdown", "md"),
        ("json", "json"),
        ("yaml", "yaml"),
        ("html", "html"),
    ] {
        let r = upgrade_plan(dir.path(), &["--format", format]).ok();
        assert!(r.stdout.is_ascii(), "{format} is ASCII");
        assert_snapshot(&format!("plan-upgrade.{ext}"), &r.stdout);
    }
    let html = upgrade_plan(dir.path(), &["--format", "html"]).ok().stdout;
    check_well_formed(&html);
    assert!(html.contains("<h1>External Python upgrade runbook: Contact Center (example)</h1>"));
}

#[test]
fn the_node_on_server_2012_r2_is_named_and_left_as_it_is() {
    let dir = upgrade_workspace();
    let doc = upgrade_plan(dir.path(), &["--format", "json"]).ok().json();
    let nodes = &doc["upgrade"]["nodes"];
    assert_eq!(nodes[0]["node"], "HAC1");
    assert_eq!(nodes[0]["verdict"], "ok");
    assert_eq!(nodes[1]["node"], "HAC2");
    assert_eq!(nodes[1]["os"], "Server 2012 R2");
    assert_eq!(nodes[1]["verdict"], "refused");
    assert_eq!(doc["upgrade"]["from"]["python"], "3.12.10");
    assert_eq!(doc["manifest"]["python"], "3.13.9");
    let warnings = doc["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().starts_with(
            "HAC2 cannot take CPython 3.13.9 (CPython 3.13.9 needs Windows 10 / Server 2016"
        )),
        "{warnings:?}"
    );
    let steps = doc["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    // What HAC2 is told to do, and that no step touches it.
    let windows = &steps[0];
    assert_eq!(windows["id"], "precheck.windows");
    let what = windows["warnings"][0].as_str().unwrap();
    assert!(
        what.starts_with("HAC2 cannot take CPython 3.13.9: it stays on cem-external-python-3.12@")
            && what.contains(
                "this runbook leaves its VUs (ExternalPython3, ExternalPython4) as they are"
            )
            && what.contains("Upgrade its Windows to Windows 10 / Server 2016 or newer"),
        "{what}"
    );
    assert!(!ids.iter().any(|id| id.contains("hac2")), "{ids:?}");
    let text = serde_json::to_string(&doc["steps"]).unwrap();
    assert!(
        !text.contains("ExternalPython3\\\\Python"),
        "no HAC2 path in a step"
    );

    // The procedure's order.
    let order = [
        "precheck.windows",
        "precheck.in-place.hac1",
        "precheck.backup",
        "precheck.maintenance",
        "prepare.certificates",
        "prepare.build",
        "switch.hac1",
        "ia.refresh-hosts",
        "ia.external-python-directory",
        "ia.synchronize",
        "ia.apply.hac1",
        "ia.activate-vus",
        "ia.save-model",
        "ia.monitoring-mode",
        "verify.upgraded.hac1",
        "rollback.maintenance",
        "rollback.hac1",
        "rollback.ia.refresh-hosts",
        "rollback.ia.external-python-directory",
        "rollback.ia.synchronize",
        "rollback.ia.apply.hac1",
        "rollback.ia.monitoring-mode",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|id| {
            ids.iter()
                .position(|i| i == id)
                .unwrap_or_else(|| panic!("{id}: {ids:?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // The switch keeps the current tree, and the rollback names each kept copy exactly.
    let switch = &steps[ids.iter().position(|i| *i == "switch.hac1").unwrap()];
    assert_eq!(
        switch["commands"][1],
        "extpy layout upgrade.yaml --node HAC1 --manifest python-3.13-win-amd64.yaml --keep-previous"
    );
    let back = &steps[ids.iter().position(|i| *i == "rollback.hac1").unwrap()];
    assert_eq!(
        back["commands"][0],
        "extpy rollback upgrade.yaml --node HAC1"
    );
    assert_eq!(
        back["check"],
        "extpy verify --topology upgrade.yaml --node HAC1 --manifest python-3.12-win-amd64.yaml"
    );
    let kept: Vec<&str> = back["table"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[2].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        [
            "D:\\SCP\\vu\\ExternalPython1\\Python\\External.previous",
            "D:\\SCP\\vu\\ExternalPython2\\Python\\External.previous"
        ]
    );
}

/// The installation runbook and the upgrade runbook switch with the very same IA steps.
#[test]
fn the_ia_steps_are_the_installation_runbooks() {
    let dir = upgrade_workspace();
    let install = plan(dir.path(), &["topology.example.yaml", "--format", "json"])
        .ok()
        .json();
    let upgrade = upgrade_plan(dir.path(), &["--format", "json"]).ok().json();
    for id in [
        "ia.refresh-hosts",
        "ia.synchronize",
        "ia.apply.hac1",
        "ia.activate-vus",
        "ia.save-model",
        "ia.monitoring-mode",
    ] {
        assert_eq!(step(&install, id), step(&upgrade, id), "{id}");
        let mut back = step(&upgrade, &format!("rollback.{id}"));
        assert_eq!(back["phase"], "rollback");
        back["id"] = id.into();
        back["phase"] = "ia".into();
        assert_eq!(step(&install, id), back, "rollback.{id}");
    }
    assert_eq!(
        step(&install, "ia.external-python-directory")["table"],
        step(&upgrade, "ia.external-python-directory")["table"]
    );
}

#[test]
fn a_single_node_that_cannot_move_gets_the_windows_check_alone() {
    let dir = workspace();
    manifest_3_13(dir.path());
    let text = fs::read_to_string(dir.path().join("topology.example.yaml"))
        .unwrap()
        .replace(
            "    cores: [Core1, Core2]\n",
            "    os: Server 2012 R2\n    cores: [Core1, Core2]\n",
        );
    fs::write(dir.path().join("old-windows.yaml"), text).unwrap();
    let md = plan_from(
        dir.path(),
        "old-windows.yaml",
        "python-3.13-win-amd64.yaml",
        "python-3.12-win-amd64.yaml",
        &[],
    )
    .ok()
    .stdout;
    assert_eq!(md.matches("- [ ] **").count(), 1, "{md}");
    assert!(
        md.contains(
            "to CPython 3.13.9: 0 of 1 nodes; HAC1 stays on CPython 3.12.10 (Windows too old)."
        ),
        "{md}"
    );
    assert!(md.contains("| HAC1 | Server 2012 R2 | CANNOT take it: CPython 3.13.9 needs Windows 10 / Server 2016 (10.0) or newer"), "{md}");
    assert!(md.contains("Upgrade its Windows to Windows 10 / Server 2016 or newer, set its os: in the topology, then make this plan again"), "{md}");
}

#[test]
fn a_node_without_os_is_upgraded_with_a_warning() {
    let dir = workspace();
    manifest_3_13(dir.path());
    let doc = plan_from(
        dir.path(),
        "topology.example.yaml",
        "python-3.13-win-amd64.yaml",
        "python-3.12-win-amd64.yaml",
        &["--format", "json"],
    )
    .ok()
    .json();
    assert_eq!(doc["upgrade"]["nodes"][0]["verdict"], "unknown");
    let steps = doc["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["id"] == "switch.hac1"));
    assert!(
        steps[0]["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("The Windows version of HAC1 is unknown"),
        "{}",
        steps[0]
    );
}

#[test]
fn an_old_manifest_that_is_not_older_is_refused() {
    let dir = upgrade_workspace();
    // Swapped: the "old" one pins the newer CPython.
    let r = plan_from(
        dir.path(),
        "upgrade.yaml",
        "python-3.12-win-amd64.yaml",
        "python-3.13-win-amd64.yaml",
        &[],
    )
    .code(2);
    assert!(
        r.stderr.contains("--upgrade-from python-3.13-win-amd64.yaml: it pins CPython 3.13.9, newer than the 3.12.10 of cem-external-python-3.12@")
            && r.stderr.contains("help: to go back to the copy an upgrade kept, run `extpy rollback TOPOLOGY --node NAME`"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "", "no plan is written");
    // The same manifest on both sides.
    let r = plan_from(
        dir.path(),
        "upgrade.yaml",
        "python-3.13-win-amd64.yaml",
        "python-3.13-win-amd64.yaml",
        &[],
    )
    .code(2);
    assert!(
        r.stderr
            .contains("it is the manifest being planned (cem-external-python-3.13@")
            && r.stderr.contains("nothing to upgrade"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_old_manifest_that_cannot_be_read_is_refused() {
    let dir = upgrade_workspace();
    let out = dir.path().join("plan.md");
    let missing = plan_from(
        dir.path(),
        "upgrade.yaml",
        "python-3.13-win-amd64.yaml",
        "gone.yaml",
        &["--out", out.to_str().unwrap()],
    )
    .code(2);
    assert!(
        missing
            .stderr
            .contains("gone.yaml: cannot read the manifest")
            && missing
                .stderr
                .contains("help: check the path given to --upgrade-from"),
        "{}",
        missing.stderr
    );
    assert!(!out.exists(), "no plan is written");
    fs::write(
        dir.path().join("broken.yaml"),
        "schema: 1\nname: [unclosed\n",
    )
    .unwrap();
    let broken = plan_from(
        dir.path(),
        "upgrade.yaml",
        "python-3.13-win-amd64.yaml",
        "broken.yaml",
        &["--json"],
    )
    .code(2);
    assert!(
        broken.stderr.contains("broken.yaml:2:"),
        "{}",
        broken.stderr
    );
    assert_eq!(broken.json()["command"], "plan");
    let r = upgrade_plan(dir.path(), &["--rollout", "site.yml"]).code(2);
    assert!(r.stderr.contains("--rollout"), "{}", r.stderr);
}

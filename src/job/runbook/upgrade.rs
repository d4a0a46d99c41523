//! The upgrade runbook (`extpy plan TOPOLOGY --upgrade-from OLD`): the checks before (each
//! node's Windows against the new CPython's minimum, CEM stopped, backups), the new
//! distribution staged beside the current one in each VU and swapped in with the current one
//! kept (`layout --keep-previous`), the same IA steps as the installation runbook, the checks
//! after, and the way back (`extpy rollback`) with the exact paths of the kept copies.

use super::install::{
    arg, build_step, certificate_steps, finish, refresh_hosts_step, switch_steps,
};
use super::plan::{
    Actor, Certificates, Gate, NodeGate, Phase, Plan, PlanManifest, PlanOptions, PlanUpgrade, Step,
};
use crate::base::report::slug;
use crate::job::assemble::seal::Seal;
use crate::mechanism::digest::Sha256Digest;
use crate::model::manifest::{Manifest, PythonVersion};
use crate::model::topology::{Node, Pair, Topology};
use crate::model::winver;

/// What the nodes run now, as `--upgrade-from` gives it: a manifest file, or the seal of a
/// distribution found on a node (its folder, or its `extpy-seal.json` copied off the node).
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The manifest as the plan names it.
    plan: PlanManifest,
    /// Its digest.
    digest: Sha256Digest,
    /// Its CPython.
    python: PythonVersion,
    /// The seal's digest, when read from a seal.
    seal: Option<Sha256Digest>,
}

impl Current {
    /// From the manifest file the nodes were laid out with.
    pub(crate) fn of_manifest(m: &Manifest) -> Self {
        Self {
            plan: PlanManifest::of(m),
            digest: m.digest,
            python: m.python,
            seal: None,
        }
    }

    /// From the seal of a distribution found on a node, checked against its own digest.
    pub(crate) fn of_seal(seal: &Seal, file: &str) -> Result<Self, String> {
        if seal.compute_digest() != seal.digest {
            return Err(format!(
                "--upgrade-from {file}: the seal's digest does not match its contents: it was changed after extpy wrote it\n  help: take the extpy-seal.json of a VU that `extpy verify` passes, or give the manifest the nodes were laid out with"
            ));
        }
        let python = seal
            .python
            .version
            .parse()
            .map_err(|e| format!("--upgrade-from {file}: the seal's CPython version: {e}"))?;
        Ok(Self {
            plan: PlanManifest {
                name: seal.manifest.name.clone(),
                sha256: seal.manifest.sha256.to_string(),
                python: seal.python.version.clone(),
                platform: seal.python.platform.clone(),
                packages: seal
                    .packages
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.version))
                    .collect(),
            },
            digest: seal.manifest.sha256,
            python,
            seal: Some(seal.digest),
        })
    }

    /// `name@digest`, as a manifest's identity reads.
    fn identity(&self) -> String {
        format!("{}@{}", self.plan.name, self.digest.short())
    }
}

/// What the upgrade plan is made from, besides the installation plan's inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpgradeInputs<'a> {
    /// What the nodes run now.
    pub old: &'a Current,
    /// Its file as the user named it.
    pub old_arg: &'a str,
    /// The new manifest's file for `--manifest FILE` in the plan's commands, or `None` when
    /// they find it on their own (the topology's `manifest:`, the built-in one, a bundle's).
    pub new_arg: Option<&'a str>,
}

/// Refuses an old manifest that is not older: the same manifest, or one whose CPython is
/// newer than the new one's. The same CPython with other pins is an upgrade of packages.
pub(crate) fn check_older(old: &Current, old_arg: &str, new: &Manifest) -> Result<(), String> {
    if old.digest == new.digest {
        return Err(format!(
            "--upgrade-from {old_arg}: it is the manifest being planned ({}), so there is nothing to upgrade\n  help: give --upgrade-from the manifest the nodes run now, and the new one with --manifest (or the topology's manifest:)",
            new.identity()
        ));
    }
    if old.python > new.python {
        return Err(format!(
            "--upgrade-from {old_arg}: it pins CPython {}, newer than the {} of {}: an upgrade goes to a newer CPython (or, with the same CPython, to other pins)\n  help: to go back to the copy an upgrade kept, run `extpy rollback TOPOLOGY --node NAME`; otherwise swap the two manifests",
            old.python,
            new.python,
            new.identity()
        ));
    }
    Ok(())
}

/// Each node's verdict for `python`.
fn gates(topology: &Topology, new: &Manifest) -> Vec<NodeGate> {
    topology
        .nodes
        .iter()
        .map(|n| match &n.os {
            None => NodeGate {
                node: n.name.clone(),
                os: None,
                verdict: Gate::Unknown,
                reason: format!(
                    "unknown: the topology has no os: for {}; extpy layout on the node itself checks the running Windows",
                    n.name
                ),
            },
            Some(os) => {
                let (verdict, reason) = match winver::check(new.python, os.version) {
                    Ok(()) => (Gate::Ok, format!("{} runs CPython {}", os.version, new.python)),
                    Err(why) => (Gate::Refused, why),
                };
                NodeGate {
                    node: n.name.clone(),
                    os: Some(os.given.clone()),
                    verdict,
                    reason,
                }
            }
        })
        .collect()
}

/// Stopping CEM on the nodes being changed, so no python.exe runs from their VU folders.
fn maintenance_step(id: &str, pairs: &[&Pair]) -> Step {
    let cores: Vec<&str> = pairs.iter().map(|p| p.core.as_str()).collect();
    Step::new(
        id,
        Phase::Precheck,
        Actor::Ia,
        "Stop CEM: set Maintenance Mode",
        format!(
            "Set Infrastructure Administrator to Maintenance Mode and stop the CEM instances of {}, so that no python.exe runs from their ExternalPython VUs: extpy refuses to replace a folder whose Python is running, and changes nothing then.",
            cores.join(", ")
        ),
    )
}

/// Builds the upgrade runbook for `topology`, from `inputs.old` to `new` (pure: no I/O).
/// Nodes whose Windows cannot run the new CPython are named, with what to do, and left on the
/// old manifest; when no node can take it, the plan is that check alone.
pub(crate) fn build(
    topology: &Topology,
    new: &Manifest,
    inputs: UpgradeInputs<'_>,
    certificates: Certificates,
    options: &PlanOptions,
) -> Plan {
    let old = inputs.old;
    let topo = arg(&options.topology_arg);
    let flag = match (&options.bundle, inputs.new_arg) {
        (Some(b), _) => format!(" --bundle {}", arg(b)),
        (None, Some(m)) => format!(" --manifest {}", arg(m)),
        (None, None) => String::new(),
    };
    let gates = gates(topology, new);
    let upgraded: Vec<&Node> = topology
        .nodes
        .iter()
        .zip(&gates)
        .filter(|(_, g)| g.verdict != Gate::Refused)
        .map(|(n, _)| n)
        .collect();
    let pairs: Vec<&Pair> = topology
        .pairs
        .iter()
        .filter(|p| upgraded.iter().any(|n| n.name == p.node))
        .collect();
    let from = format!("{} (CPython {})", old.identity(), old.python);
    let mut steps = Vec::new();

    // Before: Windows, what is in place, backups, CEM stopped.
    let mut windows = Step::new(
        "precheck.windows",
        Phase::Precheck,
        Actor::Extpy,
        format!("Check that every node's Windows runs CPython {}", new.python),
        format!(
            "CPython {} needs {} or newer. Each node's Windows version, as the topology's os: gives it (winver on the node shows it):",
            new.python,
            winver::minimum(new.python).map_or("a supported Windows", |m| m.products)
        ),
    )
    .table(
        &["node", "Windows (os:)", "verdict"],
        gates
            .iter()
            .map(|g| {
                vec![
                    g.node.clone(),
                    g.os.clone().unwrap_or_else(|| "-".into()),
                    match g.verdict {
                        Gate::Ok => format!("ok: {}", g.reason),
                        Gate::Refused => format!("CANNOT take it: {}", g.reason),
                        Gate::Unknown => g.reason.clone(),
                    },
                ]
            })
            .collect(),
    );
    for (node, g) in topology.nodes.iter().zip(&gates) {
        let vus: Vec<&str> = topology
            .pairs_of(&node.name)
            .map(|p| p.vu.as_str())
            .collect();
        match g.verdict {
            Gate::Refused => {
                windows = windows.warn(format!(
                    "{} cannot take CPython {}: it stays on {from}, and this runbook leaves its VUs ({}) as they are. Upgrade its Windows to {} or newer, set its os: in the topology, then make this plan again (`extpy plan {topo} --upgrade-from {}{flag}`) to upgrade it too.",
                    node.name,
                    new.python,
                    vus.join(", "),
                    winver::minimum(new.python).map_or("a newer Windows", |m| m.products),
                    arg(inputs.old_arg),
                ));
            }
            Gate::Unknown => {
                windows = windows.warn(format!(
                    "The Windows version of {} is unknown: check it with winver before you start and add os: to it in the topology; extpy layout run on the node refuses a CPython its Windows cannot run.",
                    node.name
                ));
            }
            Gate::Ok => {}
        }
    }
    steps.push(windows);
    if !upgraded.is_empty() {
        steps.extend(switch_and_back(&Context {
            new,
            old,
            old_arg: inputs.old_arg,
            topo: &topo,
            flag: &flag,
            pairs: &pairs,
            upgraded: &upgraded,
            certificates: &certificates,
            options,
        }));
    }
    let mut plan = finish(topology, new, certificates, options, steps);
    for g in gates.iter().filter(|g| g.verdict == Gate::Refused) {
        plan.warnings.push(format!(
            "{} cannot take CPython {} ({}): it stays on {from}; the step precheck.windows says what to do",
            g.node, new.python, g.reason
        ));
    }
    plan.upgrade = Some(PlanUpgrade {
        from: old.plan.clone(),
        from_file: inputs.old_arg.to_string(),
        from_seal_digest: old.seal,
        nodes: gates,
    });
    plan
}

/// What the steps of an upgrade are made from.
struct Context<'a> {
    new: &'a Manifest,
    old: &'a Current,
    old_arg: &'a str,
    topo: &'a str,
    /// ` --manifest NEW` (or ` --bundle B`) where the commands need it.
    flag: &'a str,
    /// The pairs of the nodes upgraded.
    pairs: &'a [&'a Pair],
    /// The nodes whose Windows can take the new CPython (or may: os: unknown).
    upgraded: &'a [&'a Node],
    certificates: &'a Certificates,
    options: &'a PlanOptions,
}

impl Context<'_> {
    /// The command that shows the old distribution in place on `node`: against the old
    /// manifest's seal when `--upgrade-from` named a manifest; with a seal from a node, each
    /// VU folder against its own seal (whose digest the step names).
    fn old_check(&self, node: &Node) -> String {
        if self.old.seal.is_some() {
            let dirs: Vec<String> = self
                .pairs
                .iter()
                .filter(|p| p.node == node.name)
                .map(|p| arg(p.external_python_directory.as_str()))
                .collect();
            format!("extpy verify {}", dirs.join(" "))
        } else {
            format!(
                "extpy verify --topology {} --node {} --manifest {}",
                self.topo,
                arg(&node.name),
                arg(self.old_arg)
            )
        }
    }

    /// A row per VU of `node`: its name, then `cells`.
    fn rows(&self, node: &Node, cells: impl Fn(&Pair) -> Vec<String>) -> Vec<Vec<String>> {
        self.pairs
            .iter()
            .filter(|p| p.node == node.name)
            .map(|p| {
                let mut row = vec![p.vu.clone()];
                row.extend(cells(p));
                row
            })
            .collect()
    }
}

/// Where `layout --keep-previous` keeps a VU's distribution, as its node sees it.
fn kept(p: &Pair) -> String {
    format!("{}.previous", p.external_python_directory)
}

/// The steps after the Windows check, for the nodes that take the new CPython.
fn switch_and_back(c: &Context<'_>) -> Vec<Step> {
    let (new, old, topo, flag, pairs) = (c.new, c.old, c.topo, c.flag, c.pairs);
    let from = format!("{} (CPython {})", old.identity(), old.python);
    let to = format!("{} (CPython {})", new.identity(), new.python);
    let mut steps = Vec::new();
    for node in c.upgraded {
        let check = c.old_check(node);
        let seal = old
            .seal
            .map(|d| {
                format!(
                    " Each must hold the seal {} that --upgrade-from read ({}).",
                    d.short(),
                    c.old_arg
                )
            })
            .unwrap_or_default();
        steps.push(
            Step::new(
                format!("precheck.in-place.{}", slug(&node.name)),
                Phase::Precheck,
                Actor::Extpy,
                format!("Check what the VUs of {} hold now", node.name),
                format!(
                    "On {}, check that every ExternalPython VU holds {from}, matching its seal: that is the copy the upgrade keeps beside it, and the one a rollback puts back. A VU that differs is replaced, but not kept.{seal}",
                    node.name
                ),
            )
            .command(check.clone())
            .check(check),
        );
    }
    steps.push(Step::new(
        "precheck.backup",
        Phase::Precheck,
        Actor::Ia,
        "Back up the HAC system model and the IA files",
        "Save the current system model and copy the Infrastructure Administrator files, as the install package's upgrade guide describes, to a place off the HAC nodes, so the system can be put back as it is now.",
    ));
    steps.push(maintenance_step("precheck.maintenance", pairs));

    // Prepare the new distribution, as for an installation.
    steps.extend(certificate_steps(new, c.certificates));
    steps.push(build_step(new, c.options, flag));

    // Stage and switch, node by node.
    for node in c.upgraded {
        let n = arg(&node.name);
        let layout = format!("extpy layout {topo} --node {n}{flag} --keep-previous");
        let rows = c.rows(node, |p| vec![from.clone(), to.clone(), kept(p)]);
        steps.push(
            Step::new(
                format!("switch.{}", slug(&node.name)),
                Phase::Switch,
                Actor::Extpy,
                format!("Stage CPython {} beside the current one on {} and switch", new.python, node.name),
                format!(
                    "On {}, with CEM stopped: extpy writes {to} beside the current distribution in each VU (a hidden folder next to Python\\External), verifies every file against the seal, and only then renames it into place; the distribution it replaces is kept, sealed, beside it as Python\\External.previous. The dry run shows what will change and writes nothing. Run on the node itself, the layout also checks the running Windows version.",
                    node.name
                ),
            )
            .table(&["VU", "in place now", "after the switch", "kept copy (Directory)"], rows)
            .command(format!("{layout} --dry-run"))
            .command(layout)
            .check(format!("extpy verify --topology {topo} --node {n}{flag}")),
        );
    }

    // IA: the same steps as the installation; the External Python Directory stays.
    steps.push(refresh_hosts_step());
    steps.extend(switch_steps(
        pairs,
        c.upgraded,
        "The External Python Directory of each core does not change (the new distribution was renamed into the same folder): check that every CEM core still has the folder of its own ExternalPython VU:",
    ));

    // After: what is in place, and that it runs.
    for node in c.upgraded {
        let n = arg(&node.name);
        let verify = format!("extpy verify --topology {topo} --node {n}{flag}");
        steps.push(
            Step::new(
                format!("verify.upgraded.{}", slug(&node.name)),
                Phase::Verify,
                Actor::Extpy,
                format!("Check the upgraded VUs on {}", node.name),
                format!(
                    "On {}, check that every VU holds {to} matching the seal the new manifest produces, with {from} kept beside it; then try the installed Python of each VU (imports, TLS, the DLLs it loads). If a check fails, roll back (below).",
                    node.name
                ),
            )
            .command(verify.clone())
            .command(format!("extpy selftest --topology {topo} --node {n}"))
            .check(verify),
        );
    }

    // The way back.
    let mut back = maintenance_step("rollback.maintenance", pairs);
    back.phase = Phase::Rollback;
    steps.push(back);
    for node in c.upgraded {
        let n = arg(&node.name);
        let rows = c.rows(node, |p| vec![from.clone(), kept(p)]);
        steps.push(
            Step::new(
                format!("rollback.{}", slug(&node.name)),
                Phase::Rollback,
                Actor::Extpy,
                format!("Put {} back on {}", old.python, node.name),
                format!(
                    "On {}, with CEM stopped: extpy checks every kept copy against its seal first (and changes nothing if one is missing or differs), then renames each back into Python\\External with the same retries and recovery as the layout, and deletes the CPython {} tree. A rollback that is interrupted is completed by the next run.",
                    node.name, new.python
                ),
            )
            .table(&["VU", "goes back to", "from the kept copy (Directory)"], rows)
            .command(format!("extpy rollback {topo} --node {n}"))
            .check(c.old_check(node)),
        );
    }
    for mut s in std::iter::once(refresh_hosts_step()).chain(switch_steps(
        pairs,
        c.upgraded,
        "The External Python Directory of each core does not change on the way back either: check that every CEM core still has the folder of its own ExternalPython VU:",
    )) {
        s.id = format!("rollback.{}", s.id);
        s.phase = Phase::Rollback;
        steps.push(s);
    }

    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::yaml::Origin;

    fn topology() -> Topology {
        Topology::parse(
            Origin("t.yaml".into()),
            "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    os: Server 2022\n    cores: [Core1]\n",
        )
        .unwrap()
    }

    /// The built-in manifest, and what the nodes run now: the same CPython, other pins.
    fn manifests() -> (Manifest, Current) {
        let new = Manifest::builtin().unwrap();
        let mut old = Current::of_manifest(&new);
        old.digest = Sha256Digest::of(b"the pins before");
        old.plan.sha256 = old.digest.to_string();
        (new, old)
    }

    fn step<'p>(plan: &'p Plan, id: &str) -> &'p Step {
        plan.steps.iter().find(|s| s.id == id).unwrap()
    }

    #[test]
    fn the_same_cpython_with_other_pins_is_an_upgrade() {
        let (new, old) = manifests();
        assert_eq!(check_older(&old, "old.yaml", &new), Ok(()));
        let same = Current::of_manifest(&new);
        assert!(check_older(&same, "new.yaml", &new).is_err());
    }

    #[test]
    fn from_a_bundle_the_commands_name_the_bundle() {
        let (new, old) = manifests();
        let options = PlanOptions {
            topology_arg: "t.yaml".into(),
            bundle: Some("site bundle.zip".into()),
            ..PlanOptions::default()
        };
        let plan = build(
            &topology(),
            &new,
            UpgradeInputs {
                old: &old,
                old_arg: "old.yaml",
                new_arg: None,
            },
            Certificates::Skipped { note: "n".into() },
            &options,
        );
        assert_eq!(
            step(&plan, "switch.hac1").commands[1],
            "extpy layout t.yaml --node HAC1 --bundle \"site bundle.zip\" --keep-previous"
        );
        assert_eq!(
            step(&plan, "prepare.build").commands,
            [
                "extpy bundle verify \"site bundle.zip\"",
                "extpy build --bundle \"site bundle.zip\""
            ]
        );
        assert_eq!(
            step(&plan, "precheck.in-place.hac1").commands,
            ["extpy verify --topology t.yaml --node HAC1 --manifest old.yaml"]
        );
        assert_eq!(plan.upgrade.unwrap().nodes[0].verdict, Gate::Ok);
    }
}

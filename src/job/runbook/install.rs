//! The installation runbook: the steps of a first installation, instantiated with the
//! topology's names and values, and the step builders the upgrade runbook shares.

use crate::base::report::slug;
use crate::job::mail::check::{PlanCheck, PlanChecks};
use crate::model::mail::{AuthType, Mail};
use crate::model::manifest::{Manifest, RuntimeTrust};
use crate::model::topology::{Node, Pair, Topology};

use super::plan::{Actor, Certificates, Phase, Plan, PlanManifest, PlanOptions, SCHEMA, Step};

/// The longest full path in each VU of `node`, against MAX_PATH.
fn path_lengths(
    topology: &Topology,
    node: &crate::model::topology::Node,
    files: &[String],
) -> Vec<Vec<String>> {
    use crate::mechanism::pathlen::{self, MAX_PATH_CHARS};
    topology
        .pairs_of(&node.name)
        .filter_map(|p| {
            let l = pathlen::longest(
                p.external_python_directory.as_str(),
                files.iter().map(String::as_str),
            )?;
            let verdict = match (l.fits(), node.long_paths) {
                (true, _) => format!("{} of {MAX_PATH_CHARS}", l.length),
                (false, true) => format!("{} (over {MAX_PATH_CHARS}; long_paths: true)", l.length),
                (false, false) => format!(
                    "{} (over {MAX_PATH_CHARS}: layout refuses it without LongPathsEnabled)",
                    l.length
                ),
            };
            Some(vec![p.vu.clone(), l.path, verdict])
        })
        .collect()
}

/// Quotes an argument for a command line when it needs it.
pub(super) fn arg(s: &str) -> String {
    if s.is_empty() || s.contains([' ', '\'', '"', '&', '(', ')']) {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

/// What the certificate step says about the trust CEM's Python uses at run time.
fn runtime_trust_words(trust: RuntimeTrust) -> &'static str {
    match trust {
        RuntimeTrust::Certifi => {
            "This is the trust of this machine only: at run time CEM's Python (requests, msal) verifies Microsoft 365 against certifi's bundle inside the distribution, not the Windows store, so a TLS-inspecting proxy's CA that only Windows trusts makes CEM's OAuth fail (see `extpy mail check TOPOLOGY --dist DIR`; the fix is runtime_trust: system in the manifest)."
        }
        RuntimeTrust::System => {
            "At run time CEM's Python (requests, msal) verifies Microsoft 365 against the Windows certificate store (runtime_trust: system, through truststore): every CEM node must trust the roots that Microsoft 365 (or the site's TLS-inspecting proxy) presents."
        }
    }
}

/// What the build step says about the run-time trust it builds in.
fn build_trust_words(trust: RuntimeTrust) -> &'static str {
    match trust {
        RuntimeTrust::Certifi => {
            "Runtime trust: certifi's bundle (the manifest's runtime_trust: certifi)."
        }
        RuntimeTrust::System => {
            "Runtime trust: the Windows certificate store (runtime_trust: system): the build installs the pinned truststore wheel and the hook Lib\\site-packages\\extpy-truststore.pth, both covered by the seal."
        }
    }
}

/// The certificate check of the build machine, and a step per host that fails it.
pub(super) fn certificate_steps(manifest: &Manifest, certificates: &Certificates) -> Vec<Step> {
    let mut steps = Vec::new();
    let doctor = Step::new(
        "prepare.certificates",
        Phase::Prepare,
        Actor::Extpy,
        "Check that this machine trusts the download hosts",
        format!(
            "On the machine that builds the distribution, check DNS, proxy and the certificate chain of every host the manifest downloads from. A host that fails names the root certificate to trust and how to install it. {}",
            runtime_trust_words(manifest.runtime_trust)
        ),
    )
    .command("extpy doctor")
    .check("extpy doctor");
    steps.push(match certificates {
        Certificates::Skipped { .. } => {
            doctor.warn("not checked when this plan was made: run it before the download")
        }
        Certificates::Checked { source, hosts } => {
            let rows = hosts
                .iter()
                .map(|h| {
                    vec![
                        h.host.clone(),
                        if h.ok {
                            "trusted".into()
                        } else {
                            "FAILS".into()
                        },
                        h.verdict.clone(),
                    ]
                })
                .collect();
            doctor
                .table(&["host", "result", "verdict"], rows)
                .warn(format!("results from {source}"))
        }
    });
    if let Certificates::Checked { hosts, .. } = certificates {
        for h in hosts.iter().filter(|h| !h.ok) {
            let id = format!("prepare.trust.{}", slug(&h.host));
            let step = match &h.trust {
                Some(fix) => Step::new(
                    id,
                    Phase::Prepare,
                    Actor::Extpy,
                    format!("Trust the root certificate \"{}\" for {}", fix.name, h.host),
                    format!(
                        "{}: {}. Export the certificate, check that its SHA-256 fingerprint is {} (compare with your security team), then install it into the machine's Trusted Root Certification Authorities, or pass it to extpy with --ca-cert.",
                        h.host, h.verdict, fix.sha256_fingerprint
                    ),
                )
                .command(format!("extpy doctor --export C:\\extpy-roots {}", h.host))
                .command(format!(
                    "Import-Certificate -FilePath \"C:\\extpy-roots\\{}.cer\" -CertStoreLocation Cert:\\LocalMachine\\Root",
                    fix.file_stem
                ))
                .command(format!("certutil -addstore -f Root \"C:\\extpy-roots\\{}.cer\"", fix.file_stem))
                .check(format!("extpy doctor {}", h.host)),
                None => Step::new(
                    id,
                    Phase::Prepare,
                    Actor::Extpy,
                    format!("Make {} reachable", h.host),
                    format!("{}: {}. Fix this before the download.", h.host, h.verdict),
                )
                .check(format!("extpy doctor {}", h.host)),
            };
            steps.push(step);
        }
    }
    steps
}

/// Building the distribution (from the bundle when there is one) in the install package;
/// `flag` names the manifest in the command when it must (` --manifest FILE`).
pub(super) fn build_step(manifest: &Manifest, options: &PlanOptions, flag: &str) -> Step {
    match &options.bundle {
        Some(b) => Step::new(
            "prepare.build",
            Phase::Prepare,
            Actor::Extpy,
            "Build the External Python from the offline bundle",
            format!("In the \"Python for CEM\" folder of the install package, build the distribution from {b}; no network is used."),
        )
        .command(format!("extpy bundle verify {}", arg(b)))
        .command(format!("extpy build --bundle {}", arg(b))),
        None => Step::new(
            "prepare.build",
            Phase::Prepare,
            Actor::Extpy,
            "Build the External Python",
            format!(
                "In the \"Python for CEM\" folder of the install package (install\\7.0.xx.x), build CPython {} ({}) with {} packages into contents\\Python\\external, as get-py.ps1 did. Every download is checked against its pinned sha256. {}",
                manifest.python,
                manifest.platform,
                manifest.wheels.len(),
                build_trust_words(manifest.runtime_trust)
            ),
        )
        .command(format!("extpy build{flag}")),
    }
    .check("extpy verify contents\\Python\\external")
}

/// Refreshing every host in IA, before IA is used.
pub(super) fn refresh_hosts_step() -> Step {
    Step::new(
        "ia.refresh-hosts",
        Phase::Ia,
        Actor::Ia,
        "Refresh all hosts",
        "In Infrastructure Administrator, right-click HAC Nodes -> Refresh all hosts, so that IA sees the current state of every node.",
    )
}

/// The IA steps that make CEM take the distribution in its ExternalPython VUs, for `pairs`
/// on `nodes`: External Python Directory on every core (`directory` says what to do with
/// it), Synchronize Instances, Apply Changes per host, activate the VUs, save the system
/// model, Monitoring Mode. The installation and the upgrade runbooks both switch this way.
pub(super) fn switch_steps(pairs: &[&Pair], nodes: &[&Node], directory: &str) -> Vec<Step> {
    let rows = pairs
        .iter()
        .map(|p| {
            vec![
                p.core.clone(),
                p.node.clone(),
                p.vu.clone(),
                p.external_python_directory.to_string(),
            ]
        })
        .collect();
    let mut steps = vec![
        Step::new(
            "ia.external-python-directory",
            Phase::Ia,
            Actor::Ia,
            "Set External Python Directory on every CEM core",
            directory,
        )
        .table(&["core", "node", "VU", "External Python Directory"], rows),
        Step::new(
            "ia.synchronize",
            Phase::Ia,
            Actor::Ia,
            "Synchronize Instances",
            "Right-click Virtual Units -> Synchronize Instances, so that every CEM instance takes its new External Python Directory.",
        ),
    ];
    for node in nodes {
        steps.push(
            Step::new(
                format!("ia.apply.{}", slug(&node.name)),
                Phase::Ia,
                Actor::Ia,
                format!("Apply changes to {}", node.name),
                format!(
                    "Select host {} and choose Deployment -> Apply Changes To Host.",
                    node.name
                ),
            )
            .warn("Or, once for all nodes: Apply All Changes To All Hosts."),
        );
    }
    let vus: Vec<&str> = pairs.iter().map(|p| p.vu.as_str()).collect();
    steps.push(Step::new(
        "ia.activate-vus",
        Phase::Ia,
        Actor::Ia,
        "Activate the ExternalPython VUs",
        format!("Activate the virtual units {}.", vus.join(", ")),
    ));
    steps.push(
        Step::new(
            "ia.save-model",
            Phase::Ia,
            Actor::Ia,
            "Save the system model",
            "Save the system model.",
        )
        .warn("Every instance must be Active or Spare before the model is saved."),
    );
    steps.push(Step::new(
        "ia.monitoring-mode",
        Phase::Ia,
        Actor::Ia,
        "Set Monitoring Mode",
        "Set Infrastructure Administrator to Monitoring Mode.",
    ));
    steps
}

/// Builds the runbook for `topology` (pure: no I/O).
pub fn build(
    topology: &Topology,
    manifest: &Manifest,
    certificates: Certificates,
    options: &PlanOptions,
) -> Plan {
    let topo = arg(&options.topology_arg);
    let mut steps = Vec::new();

    // Prepare: certificates, then the distribution.
    steps.extend(certificate_steps(manifest, &certificates));
    steps.push(build_step(manifest, options, ""));

    // IA: the VUs.
    steps.push(refresh_hosts_step());
    for p in &topology.pairs {
        let host = p
            .host
            .as_ref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        steps.push(Step::new(
            format!("ia.create-vu.{}", slug(&p.vu)),
            Phase::Ia,
            Actor::Ia,
            format!("Create {} on {} for {}", p.vu, p.node, p.core),
            format!(
                "On host {}{host}, create an empty virtual unit named {}. Add the External Python software and an instance to it, then Apply. Its folder is {}.",
                p.node, p.vu, p.vu_path
            ),
        ));
    }
    for node in &topology.nodes {
        let vus: Vec<&str> = topology
            .pairs_of(&node.name)
            .map(|p| p.vu.as_str())
            .collect();
        let mut s = Step::new(
            format!("verify.copy.{}", slug(&node.name)),
            Phase::Verify,
            Actor::Extpy,
            format!("Check the copies on {}", node.name),
            format!(
                "On {}, check that the distribution reached the folder Python\\External of {} under {} and matches its seal.",
                node.name,
                vus.join(", "),
                node.vu_root
            ),
        )
        .check(format!("extpy verify --topology {topo} --node {}", arg(&node.name)));
        if let Some(files) = &options.tree_files {
            s = s.table(
                &["VU", "longest path", "characters"],
                path_lengths(topology, node, files),
            );
        }
        if let Some(r) = &options.rollout {
            s.instruction.push_str(&format!(" With the scripted rollout ({r}), the playbook lays out and verifies every node and fetches each node's report; merge them with `extpy report merge`."));
            s = s.command(format!(
                "ansible-playbook -i inventory.yml {r} --limit {}",
                arg(&node.name)
            ));
        }
        steps.push(s);
    }
    for p in &topology.pairs {
        steps.push(Step::new(
            format!("ia.purge-variables.{}", slug(&p.core)),
            Phase::Ia,
            Actor::Ia,
            format!("Purge unused variables of {}", p.core),
            format!(
                "On the CEM software of core instance {} (node {}), purge unused variables.",
                p.core, p.node
            ),
        ));
    }

    steps.push(
        Step::new(
            "upgrade.continue",
            Phase::Upgrade,
            Actor::Ia,
            "Continue the normal upgrade",
            "Continue the normal upgrade procedure of the install package up to the configuration of the CEM VUs.",
        )
        .warn("Do not activate the ExternalPython VUs before the External Python Directory is set on every core."),
    );

    let pairs: Vec<&Pair> = topology.pairs.iter().collect();
    steps.extend(switch_steps(
        &pairs,
        &topology.nodes.iter().collect::<Vec<_>>(),
        "On the CEM software of every core instance, set the variable External Python Directory to the folder of its own ExternalPython VU:",
    ));

    if let Some(mail) = &topology.mail {
        steps.extend(mail_steps(mail, &topo, options.mail_check.as_ref()));
    }

    let checks: Vec<String> = topology
        .nodes
        .iter()
        .map(|n| format!("extpy verify --topology {topo} --node {}", arg(&n.name)))
        .collect();
    let mut last = Step::new(
        "verify.final",
        Phase::Verify,
        Actor::Extpy,
        "Final check of every VU",
        "On each node, check every ExternalPython VU once more after activation.",
    );
    for c in &checks {
        last = last.command(c.clone());
    }
    steps.push(last.check(checks.join(" && ")));

    finish(topology, manifest, certificates, options, steps)
}

/// The plan of `steps`, with the warnings its inputs give.
pub(super) fn finish(
    topology: &Topology,
    manifest: &Manifest,
    certificates: Certificates,
    options: &PlanOptions,
    steps: Vec<Step>,
) -> Plan {
    let mut warnings: Vec<String> = topology
        .mail
        .as_ref()
        .map(|m| m.warnings.clone())
        .unwrap_or_default();
    if let Some(m) = &options.mail_check {
        let failed = m.checks.iter().filter(|c| !c.ok).count();
        if failed > 0 {
            warnings.push(format!(
                "{failed} mail check(s) failed; the SC steps say what to fix"
            ));
        }
    }
    if let Certificates::Checked { hosts, .. } = &certificates {
        let failed = hosts.iter().filter(|h| !h.ok).count();
        if failed > 0 {
            warnings.push(format!("{failed} download host(s) failed the certificate check; the prepare steps say what to trust"));
        }
    }

    Plan {
        schema: SCHEMA,
        system: topology.system.clone(),
        generated_by: format!("extpy {}", env!("CARGO_PKG_VERSION")),
        topology: options.topology_arg.clone(),
        manifest: PlanManifest::of(manifest),
        upgrade: None,
        pairs: topology.pairs.clone(),
        certificates,
        mail: topology.mail.clone(),
        mail_check: options.mail_check.clone(),
        warnings,
        steps,
    }
}

/// The step that proves the mail settings, with the results when there are some.
fn mail_check_step(topo: &str, checks: Option<&PlanChecks>) -> Step {
    let step = Step::new(
        "sc.mail-check",
        Phase::Sc,
        Actor::Extpy,
        "Try the mail settings before entering them",
        "With the secrets in the environment variables the topology names, ask for each token and log in to each queue's mailbox (IMAP, read-only) and to SMTP (nothing is sent). Every failure names its cause and its fix.",
    )
    .command(format!("extpy mail check {topo}"))
    .check(format!("extpy mail check {topo}"));
    match checks {
        None => step.warn("not checked when this plan was made: run it before entering the settings in SC (or make this plan with --mail-check or --mail-report FILE)"),
        Some(m) => {
            let rows = m
                .checks
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        if c.protocol.is_empty() {
                            "?".into()
                        } else {
                            c.protocol.clone()
                        },
                        if c.ok { "ok".into() } else { "FAILS".into() },
                        c.verdict.summary.clone(),
                    ]
                })
                .collect();
            step.table(&["check", "protocol", "result", "verdict"], rows)
                .warn(format!("results from {}", m.source))
        }
    }
}

/// A failed check as a warning of the SC step it concerns.
fn with_results<'a>(mut step: Step, checks: impl Iterator<Item = &'a PlanCheck>) -> Step {
    for c in checks {
        step = step.warn(if c.ok {
            format!(
                "mail check {} ({}): ok: {}",
                c.id, c.protocol, c.verdict.summary
            )
        } else {
            let fix = c
                .fix
                .as_ref()
                .map(|f| format!("; fix: {}", f.summary))
                .unwrap_or_default();
            format!(
                "mail check {} ({}): FAILS: {}{fix}",
                c.id, c.protocol, c.verdict.summary
            )
        });
    }
    step
}

fn mail_steps(mail: &Mail, topo: &str, checks: Option<&PlanChecks>) -> Vec<Step> {
    let mut steps = vec![mail_check_step(topo, checks)];
    let results = checks.map(|m| m.checks.as_slice()).unwrap_or_default();
    for s in &mail.incoming {
        let mut rows = vec![
            vec!["Name".to_string(), s.name.clone()],
            vec!["Server address".into(), s.address.clone()],
            vec!["Authentication type".into(), s.auth.label().into()],
            vec!["Client ID".into(), s.client_id.clone()],
        ];
        if let Some(secret) = &s.secret {
            rows.push(vec!["Client secret".into(), secret.describe()]);
        }
        rows.push(vec![
            "Protocol and permission (Entra, not SC)".into(),
            s.protocol.needs(true, s.auth),
        ]);
        let step = Step::new(
            format!("sc.incoming.{}", slug(&s.name)),
            Phase::Sc,
            Actor::Sc,
            format!("Incoming mail server {}", s.name),
            "In System Configurator, create or edit the incoming mail server:",
        )
        .table(&["field", "value"], rows);
        steps.push(with_results(
            step,
            results
                .iter()
                .filter(|c| c.server == s.name && c.queue.is_none()),
        ));
    }
    if let Some(o) = &mail.outgoing {
        let mut rows = vec![
            vec!["Tenant ID or domain".to_string(), o.tenant.clone()],
            vec!["Authentication type".into(), o.auth.label().into()],
            vec!["Server user".into(), o.server_user.clone()],
        ];
        if let Some(p) = &o.password {
            let label = if o.auth == AuthType::OauthService {
                "Secret"
            } else {
                "Password"
            };
            rows.push(vec![label.into(), p.describe()]);
        }
        rows.push(vec![
            "Protocol and permission (Entra, not SC)".into(),
            o.protocol.needs(false, o.auth),
        ]);
        let step = Step::new(
            "sc.outgoing",
            Phase::Sc,
            Actor::Sc,
            "External outgoing mail server",
            "In System Configurator, set the external outgoing server:",
        )
        .table(&["field", "value"], rows);
        steps.push(with_results(
            step,
            results
                .iter()
                .filter(|c| c.server == "outgoing" && c.queue.is_none()),
        ));
    }
    for q in &mail.queues {
        let mut rows = vec![
            vec!["Address".to_string(), q.address.clone()],
            vec!["Account".into(), q.account.clone()],
            vec!["Server".into(), q.server.clone()],
        ];
        if let Some(p) = &q.password {
            rows.push(vec!["Password".into(), p.describe()]);
        }
        let step = Step::new(
            format!("sc.queue.{}", slug(&q.address)),
            Phase::Sc,
            Actor::Sc,
            format!("E-mail queue {}", q.address),
            "In System Configurator, set the e-mail queue:",
        )
        .table(&["field", "value"], rows);
        steps.push(with_results(
            step,
            results
                .iter()
                .filter(|c| c.queue.as_deref() == Some(q.address.as_str())),
        ));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_stable_ids() {
        assert_eq!(slug("ExternalPython1"), "externalpython1");
        assert_eq!(slug("M365 Inbox (main)"), "m365-inbox-main");
        assert_eq!(slug("support@contoso.example"), "support-contoso-example");
    }

    #[test]
    fn arguments_with_spaces_are_quoted() {
        assert_eq!(arg("topology.yaml"), "topology.yaml");
        assert_eq!(arg("my topology.yaml"), "\"my topology.yaml\"");
    }
}

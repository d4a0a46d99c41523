//! One function per command: the arguments each takes (plain data; `main.rs` parses them with
//! clap), the work, and an [`Outcome`] that `main.rs` prints. Commands speak to the user only
//! through the Reporter.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::app::config::Settings;
use crate::app::error::Error;
use crate::app::inputs::{self, DistSource, InputSource};
use crate::base::report::Reporter;
use crate::job::assemble::seal::{self, CheckedAgainst, VerifyOptions};
use crate::job::assemble::{self, BuildOptions};
use crate::job::bundle::{self, Bundle};
use crate::job::doctor::explain::{self, Explained, Failure};
use crate::job::doctor::render;
use crate::job::doctor::summary::DoctorSummary;
use crate::job::doctor::{Advice, Doctor, DoctorOptions, Resolve, Target};
use crate::job::fetch;
use crate::job::layout::{self, NodeTarget};
use crate::job::mail::check::{self as mail_check, MailError, MailOptions, MailReport, PlanChecks};
use crate::job::rollout;
use crate::job::runbook;
use crate::mechanism::fsio::IoError;
use crate::mechanism::sign::{self, KeyError, SigningKey, TrustedKey};
use crate::model::manifest::Manifest;
/// The CPython version type the lock command takes (parsed by the binary's `--python`).
pub use crate::model::manifest::PythonVersion;
use crate::model::topology::Topology;

/// The commands, as `--json` documents and error reports name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandName {
    /// `extpy fetch`.
    Fetch,
    /// `extpy build`.
    Build,
    /// `extpy verify`.
    Verify,
    /// `extpy layout`.
    Layout,
    /// `extpy plan`.
    Plan,
    /// `extpy bundle create`.
    BundleCreate,
    /// `extpy bundle verify`.
    BundleVerify,
    /// `extpy bundle inspect`.
    BundleInspect,
    /// `extpy key generate`.
    KeyGenerate,
    /// `extpy doctor`.
    Doctor,
    /// `extpy rollout`.
    Rollout,
    /// `extpy report merge`.
    ReportMerge,
    /// `extpy mail check`.
    MailCheck,
    /// `extpy lock`.
    Lock,
    /// `extpy audit`.
    Audit,
    /// `extpy selftest`.
    Selftest,
    /// `extpy rollback`.
    Rollback,
    /// `extpy watch install`.
    WatchInstall,
    /// `extpy watch remove`.
    WatchRemove,
    /// `extpy watch status`.
    WatchStatus,
    /// `extpy watch run`.
    WatchRun,
    /// `extpy version`.
    Version,
    /// `extpy completions`.
    Completions,
    /// `extpy man`.
    Man,
    /// `extpy help TOPIC`.
    Help,
}

impl CommandName {
    /// The name as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Fetch => "fetch",
            CommandName::Build => "build",
            CommandName::Verify => "verify",
            CommandName::Layout => "layout",
            CommandName::Plan => "plan",
            CommandName::BundleCreate => "bundle create",
            CommandName::BundleVerify => "bundle verify",
            CommandName::BundleInspect => "bundle inspect",
            CommandName::KeyGenerate => "key generate",
            CommandName::Doctor => "doctor",
            CommandName::Rollout => "rollout",
            CommandName::ReportMerge => "report merge",
            CommandName::MailCheck => "mail check",
            CommandName::Lock => "lock",
            CommandName::Audit => "audit",
            CommandName::Selftest => "selftest",
            CommandName::Rollback => "rollback",
            CommandName::WatchInstall => "watch install",
            CommandName::WatchRemove => "watch remove",
            CommandName::WatchStatus => "watch status",
            CommandName::WatchRun => "watch run",
            CommandName::Version => "version",
            CommandName::Completions => "completions",
            CommandName::Man => "man",
            CommandName::Help => "help",
        }
    }
}

/// What a command produced: its JSON document, its human rendering, and whether it found
/// something that does not match (exit 3 after the report is printed).
#[derive(Debug)]
pub struct Outcome {
    /// The command.
    pub command: CommandName,
    /// False when the report says something does not match.
    pub ok: bool,
    /// The JSON document (`command` and `ok` are added when printed).
    pub document: Value,
    /// The human result for stdout.
    pub human: String,
    /// The error to end with after printing, when `ok` is false.
    pub failure: Option<Error>,
}

impl Outcome {
    fn new<T: Serialize>(command: CommandName, document: &T, human: String) -> Self {
        Self {
            command,
            ok: true,
            document: serde_json::to_value(document).expect(
                "serializing plain data (string keys, no failing Serialize impl) cannot fail",
            ),
            human,
            failure: None,
        }
    }

    fn failing_if(self, failed: bool, message: impl FnOnce() -> String) -> Self {
        self.failing_with(failed, || Error::Mismatch(message()))
    }

    fn failing_with(mut self, failed: bool, error: impl FnOnce() -> Error) -> Self {
        if failed {
            self.ok = false;
            self.failure = Some(error());
        }
        self
    }

    /// The JSON document with `command` and `ok`.
    pub fn json(&self) -> Value {
        let mut doc = self.document.clone();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("command".into(), json!(self.command.as_str()));
            obj.insert("ok".into(), json!(self.ok));
        }
        doc
    }
}

/// `extpy fetch`.
pub fn fetch(s: &Settings, reporter: &Reporter) -> Result<Outcome, Error> {
    let manifest = s.load_manifest()?;
    let report = fetch::fetch(&manifest, &s.fetch_options()?, reporter)
        .map_err(|e| explain_tls(e.into(), s, "fetch"))?;
    Ok(Outcome::new(CommandName::Fetch, &report, report.render()))
}

/// Arguments of `extpy build`.
#[derive(Debug)]
pub struct BuildArgs {
    /// Destination folder [default: contents/Python/external]
    pub dest: Option<PathBuf>,
    /// Replace DEST even if extpy did not build it
    pub force: bool,
    /// Show what would be built; change nothing at DEST
    pub dry_run: bool,
    /// Build from this offline bundle (verified first; no network is used)
    pub bundle: Option<PathBuf>,
    /// Refuse the bundle unless one of these public keys signed it
    pub trusted_key: Vec<PathBuf>,
    /// Sign the seal with this secret key (`extpy-seal.json.minisig` beside it)
    pub sign: Option<PathBuf>,
    /// The environment variable that holds the secret key's passphrase
    pub passphrase_env: Option<String>,
}

/// `extpy build`.
pub fn build(s: &Settings, args: BuildArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    let dest = args
        .dest
        .unwrap_or_else(|| PathBuf::from(assemble::DEFAULT_DEST));
    // The inputs are checked first; then the line get-py.ps1 printed, then the work.
    let mut bundle = args
        .bundle
        .as_deref()
        .map(|b| open_bundle(b, &trust(s, &args.trusted_key, None)?, s, reporter))
        .transpose()?;
    let signer = match (&args.sign, args.dry_run) {
        (Some(k), false) => Some(signing_key(k, args.passphrase_env.as_deref(), reporter)?),
        _ => None,
    };
    let manifest = match &bundle {
        Some(b) => b.manifest.clone(),
        None => s.load_manifest()?,
    };
    // On Windows the distribution is built for this machine: refuse a CPython it cannot run.
    if let Some(os) = crate::model::winver::running()
        && let Err(why) = crate::model::winver::check(manifest.python, os)
    {
        return Err(Error::Usage(format!(
            "{}: {why}\n  help: build the 3.12 manifest (--manifest manifests/python-3.12-win-amd64.yaml) on this machine, or build on a Windows 10 / Server 2016 or newer machine",
            manifest.identity()
        )));
    }
    reporter.result_line(format!(
        "Generating python at location: {}",
        assemble::absolute_dest(&dest).display()
    ));
    let options = BuildOptions {
        dest,
        force: args.force,
        jobs: s.jobs,
    };
    if args.dry_run && bundle.is_none() {
        // A dry run plans from the cache and downloads nothing.
        let summary = match inputs::cached(&manifest, s, reporter)? {
            inputs::Cached::All(inputs) => assemble::plan(&manifest, &inputs, &options)?.summary(),
            inputs::Cached::Missing(missing) => {
                assemble::summary_without_inputs(&manifest, &options, missing)?
            }
        };
        return Ok(Outcome::new(CommandName::Build, &summary, summary.render()));
    }
    let Some(b) = bundle.as_mut() else {
        // Each input is extracted the moment it is verified in the cache, while the others
        // still download.
        let fetch_options = s.fetch_options()?;
        let (fetched, report) = assemble::build_as_inputs_arrive(
            &manifest,
            &options,
            reporter,
            |arrived: &(dyn Fn(assemble::Arrival) + Sync)| {
                fetch::fetch_each(&manifest, &fetch_options, reporter, &|i, f| {
                    arrived((i.checked_sub(1), f.path.clone()))
                })
            },
        )
        .map_err(|e| explain_tls(e.into(), s, "build"))?;
        reporter.info(fetched.summary());
        let report = report?;
        sign_built_seal(&options.dest, signer.as_ref(), reporter)?;
        return Ok(Outcome::new(CommandName::Build, &report, report.render()));
    };
    let source = InputSource::Bundle(b);
    let resolved =
        inputs::resolve(&manifest, s, source, reporter).map_err(|e| explain_tls(e, s, "build"))?;
    let plan = assemble::plan(&manifest, &resolved.inputs, &options)?;
    if args.dry_run {
        let summary = plan.summary();
        return Ok(Outcome::new(CommandName::Build, &summary, summary.render()));
    }
    let report = assemble::execute(&plan, &manifest, &options, reporter)?;
    drop(resolved);
    sign_built_seal(&options.dest, signer.as_ref(), reporter)?;
    Ok(Outcome::new(CommandName::Build, &report, report.render()))
}

/// Signs the seal of the tree at `dest` with `key` (`--sign`), when given.
fn sign_built_seal(
    dest: &Path,
    key: Option<&SigningKey>,
    reporter: &Reporter,
) -> Result<(), Error> {
    if let Some(key) = key {
        seal::sign_seal(dest, key)?;
        reporter.info(format!(
            "seal of {} signed by key {} ({})",
            assemble::absolute_dest(dest).display(),
            key.id(),
            seal::SEAL_SIG
        ));
    }
    Ok(())
}

/// Arguments of `extpy lock`.
#[derive(Debug)]
pub struct LockArgs {
    /// Upgrade every pin to the newest version the requirements allow.
    pub upgrade: bool,
    /// Upgrade only these packages.
    pub upgrade_package: Vec<String>,
    /// Change nothing; fail when the pins are stale.
    pub check: bool,
    /// Write the locked manifest here instead of over the manifest.
    pub out: Option<PathBuf>,
    /// Leave url: and size: out of the pins.
    pub no_urls: bool,
    /// Pin this CPython release's embeddable zip and resolve for it.
    pub python: Option<PythonVersion>,
}

/// `extpy lock`.
pub fn lock(s: &Settings, args: LockArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    let inputs = crate::job::lock::LockInputs {
        path: s.manifest.clone(),
        manifest: s.load_manifest()?,
        sources: s.sources()?,
        net: s.net_options()?,
        cache_dir: s.cache_dir.clone(),
        trust_root: s.provenance_policy()?.trust_root,
    };
    let options = crate::job::lock::LockOptions {
        upgrade: args.upgrade,
        upgrade_packages: args.upgrade_package,
        check: args.check,
        out: args.out,
        no_urls: args.no_urls,
        python: args.python,
    };
    let report = crate::job::lock::lock(&inputs, &options, reporter).map_err(|e| {
        let e = match e {
            crate::job::lock::LockError::Net(n)
            | crate::job::lock::LockError::Source(crate::job::source::SourceError::Net(n)) => {
                Error::Net(n)
            }
            other => Error::Lock(other),
        };
        explain_tls(e, s, "lock")
    })?;
    for w in &report.warnings {
        reporter.warn(w);
    }
    let stale = report.stale && args.check;
    let count = report.changes.len();
    Ok(
        Outcome::new(CommandName::Lock, &report, report.render()).failing_if(stale, || {
            format!(
                "the lock is stale: {count} pin(s) would change\n  help: run `extpy lock{}` and commit the manifest",
                if args.upgrade { " --upgrade" } else { "" }
            )
        }),
    )
}

/// Arguments of `extpy audit`.
#[derive(Debug)]
pub struct AuditArgs {
    /// Accepted advisories, `ID=REASON`.
    pub ignore: Vec<String>,
}

/// `extpy audit`.
pub fn audit(s: &Settings, args: AuditArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    let ignores = args
        .ignore
        .iter()
        .map(|i| crate::job::audit::Ignore::parse(i))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = crate::job::audit::AuditInputs {
        manifest: s.load_manifest()?,
        sources: s.sources()?,
        net: s.net_options()?,
        jobs: s.jobs,
        ignores,
        today: crate::job::audit::today(),
    };
    let report = crate::job::audit::audit(&inputs, reporter).map_err(|e| {
        let e = match e {
            crate::job::audit::AuditError::Net(n) => Error::Net(n),
            other => Error::Audit(other),
        };
        explain_tls(e, s, "audit")
    })?;
    for w in &report.python.warnings {
        reporter.warn(w);
    }
    let affected = report.affected();
    Ok(
        Outcome::new(CommandName::Audit, &report, report.render()).failing_if(!affected.is_empty(), || {
            let names: Vec<String> = affected.keys().cloned().collect();
            format!(
                "{} affected: {}\n  help: run `extpy lock --upgrade-package NAME` for each (or accept a risk with --ignore ID=REASON)",
                crate::base::report::plural(report.findings, "finding"),
                names.join(", ")
            )
        }),
    )
}

/// Arguments of `extpy verify`.
#[derive(Debug)]
pub struct VerifyArgs {
    /// Folders holding an extpy-seal.json
    pub paths: Vec<PathBuf>,
    /// Check the VU folders of this topology instead
    pub topology: Option<PathBuf>,
    /// Take the topology and manifest from this offline bundle
    pub bundle: Option<PathBuf>,
    /// Only this node of the topology
    pub node: Option<String>,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    pub vu_root: Option<PathBuf>,
    /// Check a staged layout (DIR/<node>/...) made by `extpy layout --out DIR`
    pub out: Option<PathBuf>,
    /// Count __pycache__ files that Python writes at run time as extra files too
    pub strict: bool,
    /// List every PE file with its hashes and whether it is signed
    pub signatures: bool,
    /// Write an AppLocker policy allowing the unsigned PE files by hash here
    pub applocker: Option<PathBuf>,
    /// Require the seal (and a bundle) to be signed by one of these public keys
    pub trusted_key: Vec<PathBuf>,
}

/// `extpy verify`.
pub fn verify(s: &Settings, args: VerifyArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    let trusted = trust(s, &args.trusted_key, args.topology.as_deref())?;
    if args.topology.is_some() || args.bundle.is_some() {
        let mut checked = check_vus(
            s,
            args.topology.as_deref(),
            args.bundle.as_deref(),
            &trusted,
            &args.out,
            &args.node,
            &args.vu_root,
            reporter,
        )?;
        check_seal_signatures(&mut checked, args.bundle.is_some(), &trusted);
        let checks = &checked.checks;
        let failed = checks.iter().filter(|c| !c.ok).count();
        let doc = json!({
            "manifest": checked.manifest.identity(),
            "checked_against": CheckedAgainst::ExpectedSeal,
            "expected_seal_digest": checked.expected_seal_digest,
            "vus": checks,
        });
        return Ok(
            Outcome::new(CommandName::Verify, &doc, layout::render_checks(checks)).failing_if(
                failed > 0,
                || {
                    format!(
                        "{failed} of {} VU folders do not hold the expected distribution",
                        checks.len()
                    )
                },
            ),
        );
    }
    let options = VerifyOptions {
        jobs: s.jobs,
        strict: args.strict,
    };
    // With --manifest, each folder must also hold the seal that manifest produces; without
    // it, only the folder's own seal is known (and the report says so).
    let reference = match &s.manifest {
        Some(p) => {
            let manifest = Manifest::load(p)?;
            Some(expected_seal(
                &manifest,
                s,
                DistSource::Cached,
                reporter,
                "verify",
            )?)
        }
        None => None,
    };
    let expected = reference.as_ref().map(|r| &r.seal);
    let mut results = args
        .paths
        .iter()
        .map(|p| seal::verify_or_explain(p, options, expected))
        .collect::<Result<Vec<_>, _>>()?;
    for r in results.iter_mut() {
        seal::check_signature(r, &trusted);
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    let mut human: String = results.iter().map(|r| r.render()).collect();
    let mut doc = json!({ "results": results });
    let mut problems = Vec::new();
    if failed > 0 {
        problems.push(format!(
            "{failed} of {} folders do not match their seal",
            results.len()
        ));
    }
    if args.signatures {
        let listed = signatures(&args.paths, s.jobs, &mut human)?;
        let malformed: Vec<String> = listed
            .iter()
            .flat_map(|(dir, files)| {
                files
                    .iter()
                    .filter(|f| f.error.is_some())
                    .map(move |f| format!("{}/{}", dir.display(), f.path))
            })
            .collect();
        if !malformed.is_empty() {
            problems.push(format!(
                "{} cannot be read as PE files: {}",
                crate::base::report::plural(malformed.len(), "file"),
                malformed.join(", ")
            ));
        }
        if let Some(out) = &args.applocker {
            if problems.is_empty() {
                let files: Vec<_> = listed.iter().flat_map(|(_, f)| f.iter().cloned()).collect();
                let label = args
                    .paths
                    .iter()
                    .map(|p| assemble::absolute_dest(p).display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let policy = crate::job::signatures::applocker_policy(&files, &label);
                crate::mechanism::place::write_atomic(out, policy.as_bytes())?;
                let rules = policy.matches("<FileHashRule ").count();
                human.push_str(&format!(
                    "AppLocker policy written: {} ({}); import it with Set-AppLockerPolicy -XmlPolicy {} -Merge\n",
                    out.display(),
                    crate::base::report::plural(rules, "hash rule"),
                    out.display()
                ));
                doc["applocker_policy"] = json!({ "path": out, "rules": rules });
            } else {
                problems.push(format!(
                    "the AppLocker policy {} was not written: rules made from a tree that does not verify would allow what changed",
                    out.display()
                ));
            }
        }
        doc["signatures"] = json!(
            listed
                .iter()
                .map(|(dir, files)| json!({ "path": dir, "files": files }))
                .collect::<Vec<_>>()
        );
    }
    Ok(Outcome::new(CommandName::Verify, &doc, human)
        .failing_if(!problems.is_empty(), || problems.join("; ")))
}

/// The PE files of each tree, with their signature state, appended to `human`.
fn signatures(
    paths: &[PathBuf],
    jobs: usize,
    human: &mut String,
) -> Result<Vec<(PathBuf, Vec<crate::job::signatures::PeFile>)>, Error> {
    let mut out = Vec::new();
    for p in paths {
        let files = crate::job::signatures::list(p, jobs)?;
        human.push_str(&format!("PE files of {}:\n", p.display()));
        human.push_str(&crate::job::signatures::render(&files));
        out.push((p.clone(), files));
    }
    Ok(out)
}

/// The VUs of a topology checked against the seal its manifest (or bundle) produces.
struct CheckedVus {
    topology: Topology,
    manifest: Manifest,
    targets: Vec<NodeTarget>,
    expected_seal_digest: crate::mechanism::digest::Sha256Digest,
    checks: Vec<layout::VuCheck>,
}

/// Each checked VU's seal signature, against `trusted`; a VU whose seal is unsigned or
/// signed by another key then fails. From a bundle, each VU is compared with the seal the
/// (signed) bundle produces, which says more than a signature of the seal in the VU: only
/// without one is that signature required. Shared by `verify --topology` and `watch run`.
fn check_seal_signatures(checked: &mut CheckedVus, from_bundle: bool, trusted: &[TrustedKey]) {
    let seal_trust: &[TrustedKey] = if from_bundle { &[] } else { trusted };
    for c in checked.checks.iter_mut() {
        c.signature = seal::seal_signature(&c.path, seal_trust);
        if c.signature.as_ref().is_some_and(|s| s.problem.is_some()) {
            c.ok = false;
        }
    }
}

/// `verify --topology` (or `--bundle`): every VU of the selected nodes checked.
#[allow(clippy::too_many_arguments)]
fn check_vus(
    s: &Settings,
    topology: Option<&Path>,
    bundle: Option<&Path>,
    trusted: &[TrustedKey],
    out: &Option<PathBuf>,
    node: &Option<String>,
    vu_root: &Option<PathBuf>,
    reporter: &Reporter,
) -> Result<CheckedVus, Error> {
    let mut bundle = bundle
        .map(|b| open_bundle(b, trusted, s, reporter))
        .transpose()?;
    let (topology, manifest) = open_topology(s, topology, bundle.as_ref())?;
    let targets = targets(&topology, out, node, vu_root)?;
    let source = match bundle.as_mut() {
        Some(b) => DistSource::Bundle(b),
        None => DistSource::Cached,
    };
    let reference = expected_seal(&manifest, s, source, reporter, "verify")?;
    let checks = layout::check(&topology, &targets, &manifest, &reference.seal, s.jobs)?;
    Ok(CheckedVus {
        expected_seal_digest: reference.seal.digest,
        topology,
        manifest,
        targets,
        checks,
    })
}

/// Arguments of `extpy layout`.
#[derive(Debug)]
pub struct LayoutArgs {
    /// Topology file (see manifests/topology.example.yaml); default: the bundle's
    pub topology: Option<PathBuf>,
    /// Stage every node under this folder, and write DIR/pairing.json
    pub out: Option<PathBuf>,
    /// Only this node
    pub node: Option<String>,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    pub vu_root: Option<PathBuf>,
    /// Copy this built distribution instead of building one
    pub dist: Option<PathBuf>,
    /// With `dist`: copy it on its own seal, not compared with the seal the manifest produces
    pub trust_dist_seal: bool,
    /// Build from this offline bundle (verified first; no network is used)
    pub bundle: Option<PathBuf>,
    /// Replace VU folders that differ from their seal or hold foreign files
    pub repair: bool,
    /// Show what would be created or changed; touch nothing
    pub dry_run: bool,
    /// Keep each replaced distribution beside its VU folder, for `extpy rollback`
    pub keep_previous: bool,
    /// Refuse the bundle unless one of these public keys signed it
    pub trusted_key: Vec<PathBuf>,
    /// Sign the seal of every VU folder that holds the expected distribution
    pub sign: Option<PathBuf>,
    /// The environment variable that holds the secret key's passphrase
    pub passphrase_env: Option<String>,
}

/// Arguments of `extpy rollback`.
#[derive(Debug)]
pub struct RollbackArgs {
    /// Topology file
    pub topology: PathBuf,
    /// The node to roll back
    pub node: String,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    pub vu_root: Option<PathBuf>,
    /// Roll back a staged layout made by `extpy layout --out DIR`
    pub out: Option<PathBuf>,
}

/// `extpy rollback`.
pub fn rollback(s: &Settings, args: RollbackArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    let topology = Topology::load(&args.topology)?;
    let targets = targets(&topology, &args.out, &Some(args.node), &args.vu_root)?;
    let vus = layout::rollback(&topology, &targets, s.jobs, reporter)?;
    Ok(Outcome::new(
        CommandName::Rollback,
        &json!({ "vus": vus }),
        layout::render_rollback(&vus),
    ))
}

/// `extpy layout`.
pub fn layout(s: &Settings, args: LayoutArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    let mut bundle = args
        .bundle
        .as_deref()
        .map(|b| {
            let trusted = trust(s, &args.trusted_key, args.topology.as_deref())?;
            open_bundle(b, &trusted, s, reporter)
        })
        .transpose()?;
    let (topology, manifest) = open_topology(s, args.topology.as_deref(), bundle.as_ref())?;
    let targets = targets(&topology, &args.out, &args.node, &args.vu_root)?;
    let signer = match (&args.sign, args.dry_run) {
        (Some(k), false) => Some(signing_key(k, args.passphrase_env.as_deref(), reporter)?),
        _ => None,
    };
    // Laying out on the node itself (no --out) gates on this machine's Windows version;
    // staging for other nodes on their os: in the topology.
    let running = if args.out.is_none() {
        crate::model::winver::running()
    } else {
        None
    };
    for w in layout::os_gate(manifest.python, &manifest.identity(), &targets, running)? {
        reporter.warn(w);
    }
    let source = match (&args.dist, bundle.as_mut()) {
        (Some(d), _) => DistSource::Dir {
            path: d,
            trust_own_seal: args.trust_dist_seal,
        },
        (None, Some(b)) => DistSource::Bundle(b),
        (None, None) => DistSource::Cached,
    };
    // Every VU is compared with the seal the manifest (or bundle) produces, not only with
    // the seal found in it. A dry run downloads nothing: without the artifacts in the cache
    // it can only compare each VU with its own seal, and says so.
    let reference = if args.dry_run {
        inputs::cached_reference(&manifest, s, source, reporter)?
    } else {
        Some(
            inputs::reference(&manifest, s, source, reporter)
                .map_err(|e| explain_tls(e, s, "layout"))?,
        )
    };
    if reference.is_none() {
        reporter.warn(format!(
            "the artifacts of {} are not all in the cache: VU folders were checked against their own seals only (run `extpy fetch` for the full check)",
            manifest.identity()
        ));
    }
    let mut plan = layout::plan(
        &topology,
        &targets,
        &manifest,
        reference.as_ref().map(|r| &r.seal),
        args.repair,
        args.dry_run,
        s.jobs,
    )?;
    if args.keep_previous {
        plan.keep_previous();
    }
    let report = if args.dry_run {
        plan.report(&manifest)
    } else {
        let mut report = if let (true, Some(reference)) = (plan.writes(), &reference) {
            let prepared = inputs::prepare_distribution(&manifest, s, reference, reporter)
                .map_err(|e| explain_tls(e, s, "layout"))?;
            layout::execute(
                &plan,
                &targets,
                &prepared.dir,
                &prepared.seal,
                &manifest,
                s.jobs,
                reporter,
            )?
        } else {
            if let Some(reference) = &reference {
                reference.check_contents(s)?;
            }
            let mut report = plan.report(&manifest);
            report.seal_digest = plan.matching_seal();
            report
        };
        if let (Some(out), Some(digest)) = (&args.out, report.seal_digest) {
            report.pairing_file = Some(layout::write_pairing(out, &topology, &manifest, digest)?);
        }
        if let (Some(key), Some(reference)) = (&signer, &reference) {
            let signed = sign_vu_seals(&topology, &targets, &reference.seal, key)?;
            reporter.info(format!(
                "seal signed by key {} in {}",
                key.id(),
                crate::base::report::plural(signed, "VU folder")
            ));
        }
        report
    };
    let left = report.left;
    Ok(Outcome::new(CommandName::Layout, &report, report.render()).failing_if(left > 0, || {
        format!("{left} VU folders differ from their seal and were left as they are; re-run with --repair to replace them")
    }))
}

/// Signs the seal of every VU folder of `targets` that holds the `expected` seal; the number
/// signed. The signature vouches for the seal: a folder whose files differ from it still
/// fails verification.
fn sign_vu_seals(
    topology: &Topology,
    targets: &[NodeTarget],
    expected: &seal::Seal,
    key: &SigningKey,
) -> Result<usize, Error> {
    let mut signed = 0;
    for t in targets {
        for pair in topology.pairs_of(&t.node.name) {
            let dir = layout::vu_dir(&t.root, &pair.vu);
            if seal::Seal::read(&dir).is_ok_and(|found| found.digest == expected.digest) {
                seal::sign_seal(&dir, key)?;
                signed += 1;
            }
        }
    }
    Ok(signed)
}

/// Arguments of `extpy plan`.
#[derive(Debug)]
pub struct PlanArgs {
    /// Topology file (see manifests/topology.example.yaml); default: the bundle's
    pub topology: Option<PathBuf>,
    /// Output format
    pub format: runbook::Format,
    /// Write to this file (atomically) instead of stdout
    pub out: Option<PathBuf>,
    /// Plan for building from this offline bundle (its topology and manifest; no network)
    pub bundle: Option<PathBuf>,
    /// The copy and verify steps run by this generated playbook (`extpy rollout`)
    pub rollout: Option<String>,
    /// Run the certificate diagnosis now and put its results in the plan
    pub doctor: bool,
    /// Put the results of a saved `extpy doctor --json` in the plan
    pub doctor_report: Option<PathBuf>,
    /// Try the topology's mail settings now (`extpy mail check`) and put the results in the plan
    pub mail_check: bool,
    /// Put the results of a saved `extpy mail check --json` in the plan
    pub mail_report: Option<PathBuf>,
    /// Where the live mail check goes.
    pub endpoints: MailEndpointArgs,
    /// Make the upgrade runbook from this manifest (the one the nodes run now)
    pub upgrade_from: Option<PathBuf>,
}

/// `extpy plan`.
pub fn plan(s: &Settings, args: PlanArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    let bundle = args
        .bundle
        .as_deref()
        .map(|b| open_bundle(b, &trust(s, &[], args.topology.as_deref())?, s, reporter))
        .transpose()?;
    let (topology, manifest) = open_topology(s, args.topology.as_deref(), bundle.as_ref())?;
    // The manifest upgraded from is read and compared first: a wrong one stops the plan
    // before anything is looked up.
    let upgrade_from = match &args.upgrade_from {
        Some(file) => {
            let old_arg = file.display().to_string();
            let old = current_from(file, &old_arg)?;
            runbook::upgrade::check_older(&old, &old_arg, &manifest).map_err(Error::Usage)?;
            Some((old, old_arg))
        }
        None => None,
    };
    for w in topology.mail.iter().flat_map(|m| &m.warnings) {
        reporter.warn(w);
    }
    let mut options = runbook::PlanOptions {
        topology_arg: match &args.topology {
            Some(p) => p.display().to_string(),
            None => bundle::TOPOLOGY.to_string(),
        },
        bundle: bundle.as_ref().map(Bundle::file_name),
        rollout: args.rollout.clone(),
        mail_check: None,
        tree_files: None,
    };
    // With the artifacts in the cache, the plan shows each VU's longest path.
    if bundle.is_none()
        && let inputs::Cached::All(inputs) = inputs::cached(&manifest, s, reporter)?
    {
        options.tree_files = Some(assemble::tree_files(&manifest, &inputs, s.jobs)?);
    }
    options.mail_check = if args.mail_check {
        if bundle.is_some() || s.offline {
            return Err(Error::Usage("--mail-check needs the network; with a bundle or --offline, pass --mail-report FILE from a connected machine".into()));
        }
        let report = run_mail_check(
            s,
            &topology,
            &options.topology_arg,
            &args.endpoints,
            MailSelection {
                server: None,
                queue: None,
                dist: None,
            },
            reporter,
        )?;
        Some(PlanChecks::from_report(&report))
    } else if let Some(file) = &args.mail_report {
        let bytes =
            crate::mechanism::limits::read_regular(file, crate::mechanism::limits::MAX_JSON)
                .map_err(|source| {
                    IoError::new(file.clone(), "cannot read the mail check report", source)
                })?;
        let text = crate::base::wintext::decode(&bytes)
            .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
        Some(
            PlanChecks::from_saved(&text, file.display().to_string()).map_err(|e| {
                Error::Usage(format!(
                    "{}: {e}\n  help: save one with `extpy mail check TOPOLOGY --json > FILE`",
                    file.display()
                ))
            })?,
        )
    } else {
        None
    };
    let certificates = if args.doctor {
        if bundle.is_some() || s.offline {
            return Err(Error::Usage("--doctor needs the network; with a bundle or --offline, pass --doctor-report FILE from a connected machine".into()));
        }
        let doctor = Doctor::new(
            doctor_options(
                s,
                Vec::new(),
                Advice {
                    command: "build".into(),
                    export: None,
                    after_failure: false,
                },
            )?,
            reporter,
        )?;
        let report = doctor.diagnose_sources(&manifest, &s.sources()?);
        runbook::Certificates::from_doctor(
            &DoctorSummary::from(&report),
            "live (extpy doctor)".into(),
        )
    } else if let Some(file) = &args.doctor_report {
        let bytes =
            crate::mechanism::limits::read_regular(file, crate::mechanism::limits::MAX_JSON)
                .map_err(|source| {
                    IoError::new(file.clone(), "cannot read the doctor report", source)
                })?;
        let text = crate::base::wintext::decode(&bytes)
            .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
        let summary = DoctorSummary::parse(text.as_bytes())
            .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
        runbook::Certificates::from_doctor(&summary, file.display().to_string())
    } else {
        not_checked()
    };
    let runbook = match &upgrade_from {
        None => runbook::build(&topology, &manifest, certificates, &options),
        Some((old, old_arg)) => {
            let new_arg = s.manifest.as_ref().map(|p| p.display().to_string());
            runbook::upgrade::build(
                &topology,
                &manifest,
                runbook::upgrade::UpgradeInputs {
                    old,
                    old_arg,
                    new_arg: new_arg.as_deref(),
                },
                certificates,
                &options,
            )
        }
    };
    let format = if reporter.json() {
        runbook::Format::Json
    } else {
        args.format
    };
    let text = runbook.render(format);
    let human = match &args.out {
        Some(file) => {
            let text = crate::base::report::text_for(&text, cfg!(windows));
            crate::mechanism::place::write_atomic(file, text.as_bytes())?;
            reporter.info(format!(
                "plan written to {} ({} steps)",
                file.display(),
                runbook.steps.len()
            ));
            String::new()
        }
        None => text,
    };
    Ok(Outcome::new(CommandName::Plan, &runbook, human))
}

/// What `--upgrade-from FILE` says the nodes run now: a distribution folder or a seal file
/// (`*.json`) found on a node, or else a manifest.
fn current_from(file: &Path, old_arg: &str) -> Result<runbook::upgrade::Current, Error> {
    let seal = if file.is_dir() {
        Some(seal::Seal::read(file)?)
    } else if file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        Some(seal::Seal::read_file(file)?)
    } else {
        None
    };
    Ok(match seal {
        Some(seal) => runbook::upgrade::Current::of_seal(&seal, old_arg).map_err(Error::Usage)?,
        None => runbook::upgrade::Current::of_manifest(&Manifest::load_given_as(
            file,
            "--upgrade-from",
        )?),
    })
}

fn not_checked() -> runbook::Certificates {
    runbook::Certificates::Skipped {
        note: "run `extpy doctor` on the machine that downloads, or make this plan with --doctor (live) or --doctor-report FILE (a saved `extpy doctor --json`)".into(),
    }
}

/// Arguments of `extpy bundle create`.
#[derive(Debug)]
pub struct BundleCreateArgs {
    /// The bundle to write (a .zip)
    pub out: PathBuf,
    /// Include this topology and its rendered plan
    pub topology: Option<PathBuf>,
    /// Include this extpy executable (bin/extpy or bin/extpy.exe)
    pub include_self: bool,
    /// Include this extpy.exe for Windows nodes (bin/extpy.exe)
    pub include_exe: Option<PathBuf>,
    /// Sign SHA256SUMS with this secret key (minisign's format, `extpy key generate`)
    pub sign: Option<PathBuf>,
    /// The environment variable that holds the secret key's passphrase
    pub passphrase_env: Option<String>,
}

/// Arguments of `extpy bundle verify`.
#[derive(Debug)]
pub struct BundleVerifyArgs {
    /// The bundle
    pub bundle: PathBuf,
    /// Require a signature by one of these public keys
    pub trusted_key: Vec<PathBuf>,
}

/// Arguments of `extpy key generate`.
#[derive(Debug)]
pub struct KeyGenerateArgs {
    /// The secret key file to write
    pub secret_key: PathBuf,
    /// The public key file to write [default: the secret key's path with .pub]
    pub public_key: Option<PathBuf>,
    /// Leave the secret key unencrypted (for CI, where no one types a passphrase)
    pub unencrypted: bool,
    /// The environment variable that holds the passphrase
    pub passphrase_env: Option<String>,
}

/// `extpy key generate`.
pub fn key_generate(args: KeyGenerateArgs) -> Result<Outcome, Error> {
    let public = args
        .public_key
        .clone()
        .unwrap_or_else(|| args.secret_key.with_extension("pub"));
    if public == args.secret_key {
        return Err(Error::Usage(format!(
            "{}: the public key would overwrite the secret key\n  help: give the secret key another extension (site.key), or pass --public-key PATH",
            public.display()
        )));
    }
    let passphrase = match (&args.passphrase_env, args.unencrypted) {
        (_, true) => None,
        (Some(var), false) => Some(passphrase_from_env(var)?),
        (None, false) => Some(new_passphrase()?),
    };
    let generated = sign::generate(&args.secret_key, &public, passphrase)?;
    let human = format!(
        "key {} generated ({})\n  secret key  {} (keep it on the build host; it signs as this site)\n  public key  {} (give it to every site that checks: --trusted-key, or trusted_keys: in the manifest or topology)\n",
        generated.key_id,
        if generated.encrypted {
            "secret key encrypted with the passphrase"
        } else {
            "secret key NOT encrypted"
        },
        generated.secret_key.display(),
        generated.public_key.display()
    );
    Ok(Outcome::new(CommandName::KeyGenerate, &generated, human))
}

/// The passphrase in the environment variable `var` (`--passphrase-env VAR`).
fn passphrase_from_env(var: &str) -> Result<String, Error> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(Error::Usage(format!(
            "--passphrase-env {var}: the environment variable {var} is not set or empty\n  help: set it to the passphrase (from the CI's secret store), or leave --passphrase-env out to be asked"
        ))),
    }
}

/// A new passphrase, typed twice on the terminal.
fn new_passphrase() -> Result<String, Error> {
    use std::io::IsTerminal;
    let no = |why: &str| {
        Error::Usage(format!(
            "{why}\n  help: pass --passphrase-env VAR (an environment variable holding it), or --unencrypted for a key that CI uses without one"
        ))
    };
    if !std::io::stdin().is_terminal() {
        return Err(no("no terminal to ask for a passphrase"));
    }
    let first = rpassword::prompt_password("passphrase for the new secret key: ")
        .map_err(|e| no(&format!("cannot read the passphrase: {e}")))?;
    let second = rpassword::prompt_password("the same passphrase again: ")
        .map_err(|e| no(&format!("cannot read the passphrase: {e}")))?;
    if first != second {
        return Err(Error::Usage(
            "the two passphrases differ; nothing was written\n  help: run `extpy key generate` again".into(),
        ));
    }
    if first.is_empty() {
        return Err(no("an empty passphrase protects nothing"));
    }
    Ok(first)
}

/// The secret key at `path`, decrypted with the passphrase from `passphrase_env` (or asked
/// on the terminal) when it is encrypted.
fn signing_key(
    path: &Path,
    passphrase_env: Option<&str>,
    reporter: &Reporter,
) -> Result<SigningKey, Error> {
    let ask = || -> Result<String, KeyError> {
        use std::io::IsTerminal;
        let none = |why: String| KeyError::NoPassphrase {
            path: path.to_path_buf(),
            why,
        };
        match passphrase_env {
            Some(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    none(format!(
                        "the environment variable {var} (--passphrase-env) is not set or empty"
                    ))
                }),
            None if std::io::stdin().is_terminal() => {
                rpassword::prompt_password(format!("passphrase for {}: ", path.display()))
                    .map_err(|e| none(format!("its passphrase cannot be read: {e}")))
            }
            None => Err(none(
                "there is no terminal to ask for its passphrase".into(),
            )),
        }
    };
    Ok(SigningKey::load(path, ask, &|w| reporter.warn(w))?)
}

/// The keys a command trusts: `--trusted-key` (files or key lines), and the `trusted_keys:`
/// of the `--manifest` file and of the topology file given on the command line. Never those
/// of a bundle's own manifest or topology: a bundle cannot vouch for itself.
fn trust(
    s: &Settings,
    given: &[PathBuf],
    topology: Option<&Path>,
) -> Result<Vec<TrustedKey>, Error> {
    let mut keys = given
        .iter()
        .map(|p| TrustedKey::from_arg(p))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(m) = &s.manifest {
        keys.extend(Manifest::load(m)?.trusted_keys);
    }
    if let Some(t) = topology {
        keys.extend(Topology::load(t)?.trusted_keys);
    }
    let mut seen = std::collections::BTreeSet::new();
    keys.retain(|k| seen.insert(k.id()));
    Ok(keys)
}

/// Arguments of `extpy rollout`.
#[derive(Debug)]
pub struct RolloutArgs {
    /// Topology file; default: the bundle's
    pub topology: Option<PathBuf>,
    /// The offline bundle every node lays out from
    pub bundle: PathBuf,
    /// The Ansible project folder to write
    pub out: PathBuf,
    /// The nodes' operating system
    pub target: rollout::Target,
    /// Linux: put each node's VU root at DIR/<node> (and run every host on this machine)
    pub vu_root_base: Option<PathBuf>,
    /// The Ansible connection [default: winrm for windows; for linux local with --vu-root-base, else ssh]
    pub connection: Option<String>,
    /// The extpy executable the nodes run [default: this one, when it fits the target]
    pub extpy: Option<PathBuf>,
    /// Replace --out even if extpy rollout did not write it
    pub force: bool,
    /// Install the drift watch on every node once its VUs verify
    pub watch: bool,
    /// The public keys the nodes require the bundle to be signed by
    pub trusted_key: Vec<PathBuf>,
}

/// `extpy rollout`.
pub fn rollout(s: &Settings, args: RolloutArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    // The nodes check the bundle with the same keys as this machine does now.
    let trusted = trust(s, &args.trusted_key, args.topology.as_deref())?;
    let mut bundle = open_bundle(&args.bundle, &trusted, s, reporter)?;
    let (topology, manifest) = open_topology(s, args.topology.as_deref(), Some(&bundle))?;
    let runs_here = matches!(
        (args.target, cfg!(windows)),
        (rollout::Target::Windows, true) | (rollout::Target::Linux, false)
    );
    let mut temp = None;
    let extpy = match (&args.extpy, runs_here) {
        (Some(p), _) => p.clone(),
        (None, true) => std::env::current_exe().map_err(|source| {
            IoError::new(
                PathBuf::from("extpy"),
                "cannot find the running executable",
                source,
            )
        })?,
        (None, false) => {
            let wanted = if args.target == rollout::Target::Windows {
                bundle::WINDOWS_EXE
            } else {
                "bin/extpy"
            };
            let dir = crate::mechanism::place::temp_dir("extpy-rollout-")?;
            let dest = dir.path().join("extpy");
            if !bundle.extract_entry(wanted, &dest)? {
                return Err(rollout::RolloutError::NoExecutable(format!(
                    "the nodes need an extpy built for {:?}: pass --extpy PATH, or make the bundle with --include-exe PATH (an extpy.exe for Windows) or on such a machine with --include-self",
                    args.target
                ))
                .into());
            }
            temp = Some(dir);
            dest
        }
    };
    let options = rollout::RolloutOptions {
        out: args.out.clone(),
        target: args.target,
        vu_root_base: args.vu_root_base.clone(),
        connection: args.connection.clone(),
        extpy,
        force: args.force,
        watch: args.watch,
        trusted_keys: trusted.iter().map(TrustedKey::key_line).collect(),
    };
    let project = rollout::generate(&topology, &bundle, &options, reporter)?;
    drop(temp);
    let plan_options = runbook::PlanOptions {
        topology_arg: "topology.yaml".into(),
        bundle: Some(bundle.file_name()),
        rollout: Some("rollout.yml".into()),
        mail_check: None,
        tree_files: None,
    };
    let plan_text = runbook::build(&topology, &manifest, not_checked(), &plan_options)
        .render(runbook::Format::Markdown);
    let windows = options.target == rollout::Target::Windows;
    crate::mechanism::place::write_atomic(
        &project.dir.join("plan.md"),
        crate::base::report::text_for(&plan_text, windows).as_bytes(),
    )?;
    let human = format!(
        "Ansible project written to {} for {} ({}):\n  inventory  {}\n  playbook   {}\n  runbook    {}\nRun:\n  ansible-playbook -i {} {}\n  extpy report merge {}\n",
        project.dir.display(),
        crate::base::report::plural(project.nodes.len(), "node"),
        project.nodes.join(", "),
        project.inventory.display(),
        project.playbook.display(),
        project.dir.join("plan.md").display(),
        project.inventory.display(),
        project.playbook.display(),
        project.dir.display()
    );
    Ok(Outcome::new(CommandName::Rollout, &project, human))
}

/// Arguments of `extpy report merge`.
#[derive(Debug)]
pub struct MergeArgs {
    /// Folders with the nodes' `extpy verify --json` reports (a rollout project, or its reports/)
    pub dirs: Vec<PathBuf>,
    /// The topology whose nodes must all report [default: a rollout project's topology.yaml]
    pub topology: Option<PathBuf>,
}

/// `extpy report merge`.
pub fn report_merge(args: MergeArgs) -> Result<Outcome, Error> {
    let topology_file = args.topology.clone().or_else(|| {
        args.dirs
            .iter()
            .map(|d| d.join("topology.yaml"))
            .find(|p| p.is_file())
    });
    let topology = topology_file.as_deref().map(Topology::load).transpose()?;
    let merged =
        rollout::merge(&args.dirs, topology.as_ref()).map_err(|e| Error::Usage(e.to_string()))?;
    let bad = (merged.rows.iter())
        .filter(|r| r.status != rollout::VuStatus::Ok)
        .count();
    let missing = merged.missing_nodes.len();
    let ok = merged.ok;
    Ok(
        Outcome::new(CommandName::ReportMerge, &merged, merged.render()).failing_if(!ok, || {
            if merged.rows.is_empty() {
                "no node reports were found".to_string()
            } else {
                format!("{bad} VUs failed or did not report ({missing} nodes without a report)")
            }
        }),
    )
}

/// `extpy bundle create`.
pub fn bundle_create(
    s: &Settings,
    args: BundleCreateArgs,
    reporter: &Reporter,
) -> Result<Outcome, Error> {
    let topology = args.topology.as_deref().map(Topology::load).transpose()?;
    let manifest = manifest_for(s, topology.as_ref())?;
    // The key is read (and its passphrase asked) before anything is downloaded.
    let signer = args
        .sign
        .as_deref()
        .map(|k| signing_key(k, args.passphrase_env.as_deref(), reporter))
        .transpose()?;
    let resolved = inputs::resolve(&manifest, s, InputSource::Fetch, reporter)
        .map_err(|e| explain_tls(e, s, "bundle create"))?;
    let fetched =
        (resolved.fetched.as_ref()).expect("inputs resolved by fetching carry their fetch report");
    // The plan inside names the bundle generically: its bytes must not depend on OUT's name.
    let plan_text = topology.as_ref().map(|t| {
        let options = runbook::PlanOptions {
            topology_arg: bundle::TOPOLOGY.into(),
            bundle: Some("<bundle>.zip".into()),
            rollout: None,
            mail_check: None,
            tree_files: None,
        };
        runbook::build(t, &manifest, not_checked(), &options).render(runbook::Format::Markdown)
    });
    let executable = if let Some(exe) = &args.include_exe {
        bundle::check_windows_exe(exe)?;
        Some((exe.clone(), bundle::WINDOWS_EXE.to_string()))
    } else if args.include_self {
        let exe = running_exe()?;
        let name = if cfg!(windows) {
            bundle::WINDOWS_EXE
        } else {
            "bin/extpy"
        };
        Some((exe, name.to_string()))
    } else {
        None
    };
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        })?),
        Err(_) => None,
    };
    let sbom = assemble::sbom::for_wheels(&manifest, &resolved.inputs.wheels, s.jobs)
        .map_err(assemble::BuildError::from)?;
    let extras = bundle::Extras {
        signer,
        topology: topology.as_ref().map(|t| t.text.clone()),
        plan: plan_text,
        executable,
        epoch,
        sbom,
    };
    let created = bundle::create(&args.out, &manifest, fetched, extras)?;
    let signed = match created.signed_by {
        Some(id) => format!("SHA256SUMS signed by key {id}\n"),
        None => String::new(),
    };
    let human = format!(
        "bundle written: {} ({} entries, {})\n{signed}{}  {}\n",
        created.path.display(),
        created.entries,
        crate::base::report::human_bytes(created.size),
        created.sha256,
        created.path.display()
    );
    Ok(Outcome::new(CommandName::BundleCreate, &created, human))
}

/// `extpy bundle verify`.
pub fn bundle_verify(s: &Settings, args: BundleVerifyArgs) -> Result<Outcome, Error> {
    let trusted = trust(s, &args.trusted_key, None)?;
    let (bundle, mut check) = bundle::open(&args.bundle, &trusted)?;
    if let Some(mut b) = bundle {
        // Every entry matches SHA256SUMS; the pinned publishers must verify too.
        let temp = crate::mechanism::place::temp_dir("extpy-bundle-verify-")?;
        let inputs = b.extract_artifacts(temp.path())?;
        match b.check_provenance(&inputs, &s.provenance_policy()?) {
            Ok(_) => {}
            Err(bundle::BundleError::Provenance(failures)) => {
                check.ok = false;
                check
                    .problems
                    .extend(failures.iter().map(|f| f.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let failed = !check.ok;
    let n = check.problems.len();
    Ok(
        Outcome::new(CommandName::BundleVerify, &check, check.render()).failing_if(failed, || {
            format!("the bundle does not verify ({n} problem(s))")
        }),
    )
}

/// `extpy bundle inspect`.
pub fn bundle_inspect(path: &Path) -> Result<Outcome, Error> {
    match bundle::open(path, &[])? {
        (Some(b), check) => {
            let inspection = b.inspect(check);
            Ok(Outcome::new(
                CommandName::BundleInspect,
                &inspection,
                inspection.render(),
            ))
        }
        (None, check) => {
            let n = check.problems.len();
            Ok(
                Outcome::new(CommandName::BundleInspect, &check, check.render())
                    .failing_if(true, || {
                        format!("the bundle does not verify ({n} problem(s))")
                    }),
            )
        }
    }
}

fn open_bundle(
    path: &Path,
    trusted: &[TrustedKey],
    s: &Settings,
    reporter: &Reporter,
) -> Result<Bundle, Error> {
    let b = bundle::open_verified(path, trusted)?;
    if let Some(m) = &s.manifest {
        reporter.warn(format!(
            "--manifest {} is ignored: the bundle brings its own manifest ({})",
            m.display(),
            b.manifest.identity()
        ));
    }
    reporter.info(format!(
        "bundle {} verified (sha256 {})",
        path.display(),
        b.sha256.short()
    ));
    Ok(b)
}

/// The manifest for a topology: --manifest when given, else the one the topology names,
/// else the built-in one.
fn manifest_for(s: &Settings, topology: Option<&Topology>) -> Result<Manifest, Error> {
    Ok(
        match (&s.manifest, topology.and_then(|t| t.manifest.as_ref())) {
            (Some(p), _) | (None, Some(p)) => Manifest::load(p)?,
            (None, None) => Manifest::builtin()?,
        },
    )
}

/// The topology (the file given, else the bundle's) and its manifest (the bundle's, else as
/// [`manifest_for`]).
fn open_topology(
    s: &Settings,
    path: Option<&Path>,
    bundle: Option<&Bundle>,
) -> Result<(Topology, Manifest), Error> {
    let topology = match (path, bundle.and_then(|b| b.topology.clone())) {
        (Some(p), _) => Topology::load(p)?,
        (None, Some(t)) => t,
        (None, None) => {
            return Err(Error::Usage("give a topology file: this bundle carries none (make it with `extpy bundle create --topology`)".into()));
        }
    };
    let manifest = match bundle {
        Some(b) => b.manifest.clone(),
        None => manifest_for(s, Some(&topology))?,
    };
    Ok((topology, manifest))
}

/// The seal the manifest (or bundle) produces, for a check that needs it.
fn expected_seal(
    manifest: &Manifest,
    s: &Settings,
    source: DistSource,
    reporter: &Reporter,
    command: &str,
) -> Result<inputs::Reference, Error> {
    inputs::reference(manifest, s, source, reporter).map_err(|e| explain_tls(e, s, command))
}

/// The node folders that --out, --node and --vu-root select.
fn targets(
    t: &Topology,
    out: &Option<PathBuf>,
    node: &Option<String>,
    vu_root: &Option<PathBuf>,
) -> Result<Vec<NodeTarget>, Error> {
    Ok(layout::targets(
        t,
        out.as_deref(),
        node.as_deref(),
        vu_root.as_deref(),
    )?)
}

/// Arguments of `extpy doctor`.
#[derive(Debug)]
pub struct DoctorArgs {
    /// Hosts to check: HOST, HOST:PORT or an http(s) URL [default: the sources' hosts]
    pub targets: Vec<String>,
    /// Write the certificate to trust into DIR as PEM (.pem) and DER (.cer)
    pub export: Option<PathBuf>,
    /// Connect to ADDR for HOST:PORT instead of asking DNS, like curl (repeatable)
    pub resolve: Vec<String>,
}

/// `extpy doctor`.
pub fn doctor(s: &Settings, args: DoctorArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    if s.offline {
        return Err(Error::Usage(
            "extpy doctor needs the network, and --offline (or EXTPY_OFFLINE) forbids it".into(),
        ));
    }
    let resolve = args
        .resolve
        .iter()
        .map(|r| r.parse::<Resolve>())
        .collect::<Result<Vec<_>, _>>()?;
    let targets = args
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let advice = Advice {
        command: "build".into(),
        export: args.export,
        after_failure: false,
    };
    let doctor = Doctor::new(doctor_options(s, resolve, advice)?, reporter)?;
    let report = if targets.is_empty() {
        let manifest = s.load_manifest()?;
        doctor.diagnose_sources(&manifest, &s.sources()?)
    } else {
        doctor.diagnose_all(&targets)
    };
    let failed = report.failed();
    let total = report.hosts.len();
    Ok(
        Outcome::new(CommandName::Doctor, &report, render::report(&report))
            .failing_with(failed > 0, || {
                Error::Diagnosed(format!("{failed} of {total} hosts failed the diagnosis"))
            }),
    )
}

fn doctor_options(
    s: &Settings,
    resolve: Vec<Resolve>,
    advice: Advice,
) -> Result<DoctorOptions, Error> {
    Ok(DoctorOptions {
        net: s.net_options()?,
        resolve,
        advice,
        jobs: s.jobs,
    })
}

/// A fetch that failed on TLS: the doctor diagnoses each host concerned, so that the error
/// says the cause and the fix instead of the generic TLS message.
fn explain_tls(e: Error, s: &Settings, command: &str) -> Error {
    let failure = match &e {
        Error::Fetch(f) => Failure::Fetch(f),
        Error::Net(n) => Failure::Net(n),
        _ => return e,
    };
    let advice = Advice {
        command: command.into(),
        export: None,
        after_failure: true,
    };
    let Ok(options) = doctor_options(s, Vec::new(), advice) else {
        return e;
    };
    match explain::explain(failure, options) {
        Some(Explained { message, report }) => Error::Explained {
            message,
            source: Box::new(e),
            report,
        },
        None => e,
    }
}

/// Where the mail check's endpoints are (`mail check`, and `plan --mail-check`).
#[derive(Debug)]
pub struct MailEndpointArgs {
    /// The identity platform's base URL (sovereign clouds, tests)
    pub authority_url: String,
    /// Microsoft Graph's base URL
    pub graph_url: String,
    /// IMAP over TLS
    pub imap_host: String,
    /// SMTP submission (STARTTLS)
    pub smtp_host: String,
    /// Seconds before one more try of a failure that propagation may explain
    pub retry_after: Option<u64>,
}

/// Arguments of `extpy mail check`.
#[derive(Debug)]
pub struct MailCheckArgs {
    /// Topology file with a mail: block (secrets come from the variables it names)
    pub topology: PathBuf,
    /// Check only this incoming server and its queues
    pub server: Option<String>,
    /// Check only the queue with this address
    pub queue: Option<String>,
    /// The built distribution whose run-time trust every endpoint is checked against too
    pub dist: Option<PathBuf>,
    pub endpoints: MailEndpointArgs,
}

/// `extpy mail check`.
pub fn mail_check(
    s: &Settings,
    args: MailCheckArgs,
    reporter: &Reporter,
) -> Result<Outcome, Error> {
    let topology = Topology::load(&args.topology)?;
    let report = run_mail_check(
        s,
        &topology,
        &args.topology.display().to_string(),
        &args.endpoints,
        MailSelection {
            server: args.server,
            queue: args.queue,
            dist: args.dist,
        },
        reporter,
    )?;
    let failed = report.failed();
    let total = report.checks.len();
    let human = crate::job::mail::render::report(
        &report,
        reporter.verbosity() > crate::base::report::Verbosity::Normal,
    );
    let runtime_rejects = report.runtime_trust.ok == Some(false);
    Ok(
        Outcome::new(CommandName::MailCheck, &report, human).failing_with(
            !report.ok(),
            || {
                Error::Diagnosed(match (failed, runtime_rejects) {
                    (0, _) => "CEM's Python would not trust every mail endpoint (see runtime trust above)".to_string(),
                    (f, false) => format!("{f} of {total} mail checks failed"),
                    (f, true) => format!("{f} of {total} mail checks failed, and CEM's Python would not trust every mail endpoint"),
                })
            },
        ),
    )
}

/// Which part of the mail settings a check covers, and the distribution to compare with.
struct MailSelection {
    server: Option<String>,
    queue: Option<String>,
    dist: Option<PathBuf>,
}

fn run_mail_check(
    s: &Settings,
    topology: &Topology,
    name: &str,
    endpoints: &MailEndpointArgs,
    selection: MailSelection,
    reporter: &Reporter,
) -> Result<MailReport, Error> {
    if s.offline {
        return Err(Error::Usage(
            "the mail check needs the network, and --offline (or EXTPY_OFFLINE) forbids it".into(),
        ));
    }
    let Some(mail) = &topology.mail else {
        return Err(MailError::NoMail {
            topology: name.into(),
        }
        .into());
    };
    for w in &mail.warnings {
        reporter.warn(w);
    }
    let mut options = MailOptions::parse(
        &endpoints.authority_url,
        &endpoints.graph_url,
        &endpoints.imap_host,
        &endpoints.smtp_host,
        s.net_options()?,
    )?;
    options.server = selection.server;
    options.queue = selection.queue;
    options.dist = selection.dist;
    options.retry_after = endpoints.retry_after.map(std::time::Duration::from_secs);
    Ok(mail_check::check(mail, name, &options, reporter)?)
}

/// `extpy version` (and `extpy --version --verbose`).
pub fn version(s: &Settings) -> Result<Outcome, Error> {
    let info = crate::app::version::BuildInfo::collect(s)?;
    Ok(Outcome::new(CommandName::Version, &info, info.render()))
}

/// Arguments of `extpy selftest`.
#[derive(Debug)]
pub struct SelftestArgs {
    /// Distributions, or VU `Python\External` folders
    pub paths: Vec<PathBuf>,
    /// Try every VU folder of this topology instead
    pub topology: Option<PathBuf>,
    /// Only this node of the topology
    pub node: Option<String>,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    pub vu_root: Option<PathBuf>,
    /// The endpoint TLS is opened to (the token endpoint's base)
    pub authority_url: String,
    /// Seconds the probe may run in each folder before it is stopped
    pub time_limit: u64,
}

/// `extpy selftest`.
pub fn selftest(s: &Settings, args: SelftestArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    use crate::job::selftest::Folder;
    use crate::mechanism::pathlen::LongPaths;
    let options = selftest_options(s, &args.authority_url, args.time_limit)?;
    let folders: Vec<Folder> = if let Some(t) = &args.topology {
        let topology = Topology::load(t)?;
        let targets = targets(&topology, &None, &args.node, &args.vu_root)?;
        topology_folders(&topology, &targets)
    } else {
        args.paths
            .iter()
            .map(|p| Folder {
                dir: p.clone(),
                on_node: assemble::absolute_dest(p).display().to_string(),
                vu: None,
                long_paths: LongPaths::here(None),
            })
            .collect()
    };
    let report = run_selftests(&folders, &options, reporter)?;
    let failed = report.failed();
    let total = report.folders.len();
    Ok(Outcome::new(
        CommandName::Selftest,
        &report,
        crate::job::selftest::render(&report),
    )
    .failing_with(failed > 0, || {
        Error::Diagnosed(format!("{failed} of {total} folders failed the self-test"))
    }))
}

/// How the self-test runs here: the stand-in python (needed off Windows), the endpoint
/// (none with --offline), the proxy and the limits.
fn selftest_options(
    s: &Settings,
    authority_url: &str,
    time_limit: u64,
) -> Result<crate::job::selftest::SelftestOptions, Error> {
    use crate::job::selftest;
    let stand_in = std::env::var_os(selftest::PYTHON_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if stand_in.is_none() && !cfg!(windows) {
        return Err(Error::Usage(format!(
            "extpy selftest runs each folder's own python.exe, which needs Windows\n  help: run it on the node, or set {} to a CPython that stands in for python.exe",
            selftest::PYTHON_ENV
        )));
    }
    let endpoint = if s.offline {
        None
    } else {
        Some(url::Url::parse(authority_url).map_err(|e| {
            Error::Usage(format!(
                "--authority-url {authority_url}: not a URL: {e}\n  help: give the identity platform's base, e.g. https://login.microsoftonline.com"
            ))
        })?)
    };
    Ok(selftest::SelftestOptions {
        stand_in,
        endpoint,
        proxy: crate::mechanism::net::proxy::ProxyConfig::resolve(),
        connect_timeout: s.timeout,
        time_limit: std::time::Duration::from_secs(time_limit),
    })
}

/// The `Python\External` folder of every VU of the selected nodes.
fn topology_folders(
    topology: &Topology,
    targets: &[NodeTarget],
) -> Vec<crate::job::selftest::Folder> {
    use crate::mechanism::pathlen::LongPaths;
    targets
        .iter()
        .flat_map(|target| {
            topology
                .pairs_of(&target.node.name)
                .map(move |p| crate::job::selftest::Folder {
                    dir: layout::vu_dir(&target.root, &p.vu),
                    on_node: target.vu_dir_on_node(&p.vu),
                    vu: Some((p.node.clone(), p.vu.clone(), p.core.clone())),
                    long_paths: LongPaths::here(Some(target.node.long_paths)),
                })
        })
        .collect()
}

fn run_selftests(
    folders: &[crate::job::selftest::Folder],
    options: &crate::job::selftest::SelftestOptions,
    reporter: &Reporter,
) -> Result<crate::job::selftest::SelftestReport, Error> {
    let mut tested = Vec::new();
    for f in folders {
        reporter.detail(format!("selftest {}", f.dir.display()));
        tested
            .push(crate::job::selftest::test(f, options).map_err(|e| Error::Usage(e.to_string()))?);
    }
    Ok(crate::job::selftest::SelftestReport { folders: tested })
}

/// Arguments of `extpy watch install` and `extpy watch run`.
#[derive(Debug)]
pub struct WatchArgs {
    /// The topology whose node is watched
    pub topology: Option<PathBuf>,
    /// Take the topology and manifest from this offline bundle instead
    pub bundle: Option<PathBuf>,
    /// The node (this machine)
    pub node: String,
    /// The node's VU root on this machine (default: the topology's)
    pub vu_root: Option<PathBuf>,
    /// Self-test every VU too
    pub selftest: bool,
    /// Require the seals (or the bundle) to be signed by one of these public keys
    pub trusted_key: Vec<PathBuf>,
}

/// Arguments of `extpy watch remove` and `extpy watch status`.
#[derive(Debug)]
pub struct WatchNodeArgs {
    /// The node whose watch it is
    pub node: String,
}

/// The program that stands in for the Windows commands ([`watch::RUNNER_ENV`]), if any.
fn watch_runner() -> Option<PathBuf> {
    std::env::var_os(crate::job::watch::RUNNER_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// True when the Windows commands run here (on Windows, or through the stand-in).
fn watch_executes(runner: &Option<PathBuf>) -> bool {
    cfg!(windows) || runner.is_some()
}

/// This extpy executable.
fn running_exe() -> Result<PathBuf, Error> {
    Ok(std::env::current_exe().map_err(|source| {
        IoError::new(
            PathBuf::from("extpy"),
            "cannot find the running executable",
            source,
        )
    })?)
}

/// A path as the task will read it: absolute.
fn absolute_text(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn watch_lines_text(intro: &str, lines: &[crate::job::watch::CommandLine]) -> String {
    let mut out = format!("{intro}\n");
    for l in lines {
        out.push_str(&format!("  {}\n", l.render()));
    }
    out
}

const NOT_WINDOWS: &str =
    "not Windows: nothing was run. On the node, in an elevated prompt, this runs:";

/// `extpy watch install`.
pub fn watch_install(s: &Settings, args: WatchArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    use crate::job::watch::{self, Reference, TaskSpec};
    // The node must be one of the topology's (the same check every run makes).
    // The keys are read now, so that a bad one stops the install rather than every run.
    let trusted = trust(s, &args.trusted_key, args.topology.as_deref())?;
    let topology = match (&args.topology, &args.bundle) {
        (Some(t), _) => Topology::load(t)?,
        (None, Some(b)) => open_topology(s, None, Some(&open_bundle(b, &trusted, s, reporter)?))?.0,
        (None, None) => {
            return Err(Error::Usage(
                "extpy watch install needs --topology FILE or --bundle FILE".into(),
            ));
        }
    };
    // The VU root is the node's own (it need not exist here: off Windows this only shows
    // the commands).
    let node = topology
        .node(&args.node)
        .map_err(|e| Error::Layout(crate::job::layout::LayoutError::Selection(e)))?
        .name
        .clone();
    let exe = running_exe()?;
    let reference = match (&args.topology, &args.bundle) {
        (Some(t), _) => Reference::Topology {
            topology: absolute_text(t),
            cache_dir: absolute_text(&s.cache_dir),
        },
        (None, Some(b)) => Reference::Bundle(absolute_text(b)),
        (None, None) => unreachable!("checked above"),
    };
    let spec = TaskSpec {
        node: node.clone(),
        extpy: absolute_text(&exe),
        reference,
        manifest: s.manifest.as_deref().map(absolute_text),
        vu_root: args.vu_root.as_deref().map(absolute_text),
        selftest: args.selftest,
        // As key lines: the task then needs no key file (the topology's and manifest's
        // trusted_keys: are read again by every run).
        trusted_keys: args
            .trusted_key
            .iter()
            .map(|k| TrustedKey::from_arg(k).map(|k| k.key_line()))
            .collect::<Result<_, _>>()?,
    };
    let lines = watch::install(&spec)?;
    let runner = watch_runner();
    let names: Vec<String> = watch::tasks(&node).into_iter().map(|(n, _)| n).collect();
    let mut ran = Vec::new();
    let human = if watch_executes(&runner) {
        for (i, line) in lines.iter().enumerate() {
            let r = watch::execute(line, runner.as_deref());
            if !r.ok() {
                // A task created before the failure goes again: no half-installed watch.
                let undone = if i > 1 {
                    for l in watch::remove(&node) {
                        watch::execute(&l, runner.as_deref());
                    }
                    " (the tasks created before it were deleted again)"
                } else {
                    ""
                };
                return Err(watch::WatchError::Command {
                    what: format!("cannot install the watch of node {node}{undone}"),
                    ran: r,
                    help: "run extpy watch install in an elevated prompt (as an administrator); `extpy watch status` shows what is there",
                }
                .into());
            }
            ran.push(r);
        }
        format!(
            "watch installed for node {node}: task {} (daily at 03:00) and task {} (at start-up), run as SYSTEM\neach run checks every VU of the node and writes one entry into the Application event log (source {}); the first run has started\n",
            names[0],
            names[1],
            watch::SOURCE
        )
    } else {
        watch_lines_text(NOT_WINDOWS, &lines)
    };
    let mut doc = watch_doc(&node, &lines, watch_executes(&runner));
    doc["tasks"] = json!(names);
    doc["runs"] = json!(watch::run_line(&spec).render());
    doc["ran"] = json!(ran);
    Ok(Outcome::new(CommandName::WatchInstall, &doc, human))
}

/// The document of a watch command: the node, its Windows commands, whether they ran.
fn watch_doc(node: &str, lines: &[crate::job::watch::CommandLine], executed: bool) -> Value {
    json!({
        "node": node,
        "commands": lines.iter().map(|l| l.render()).collect::<Vec<_>>(),
        "executed": executed,
    })
}

/// The node `watch remove` or `watch status` names, checked as a task name part.
fn check_watch_node(node: &str) -> Result<(), Error> {
    crate::mechanism::archive::check_windows_component(node)
        .map_err(|why| Error::Usage(format!("--node {node:?}: {why}")))
}

/// `extpy watch remove`.
pub fn watch_remove(args: WatchNodeArgs) -> Result<Outcome, Error> {
    use crate::job::watch;
    check_watch_node(&args.node)?;
    let lines = watch::remove(&args.node);
    let runner = watch_runner();
    let mut ran = Vec::new();
    let human = if watch_executes(&runner) {
        ran = lines
            .iter()
            .map(|l| watch::execute(l, runner.as_deref()))
            .collect();
        if let Some(r) = ran.iter().find(|r| !r.ok()) {
            return Err(watch::WatchError::Command {
                what: format!("cannot remove the watch of node {}", args.node),
                ran: r.clone(),
                help: "run it in an elevated prompt; `extpy watch status` shows which tasks are there",
            }
            .into());
        }
        format!(
            "watch removed for node {}: both tasks deleted (the event source {} and its entries stay)\n",
            args.node,
            watch::SOURCE
        )
    } else {
        watch_lines_text(NOT_WINDOWS, &lines)
    };
    let mut doc = watch_doc(&args.node, &lines, watch_executes(&runner));
    doc["ran"] = json!(ran);
    Ok(Outcome::new(CommandName::WatchRemove, &doc, human))
}

/// `extpy watch status`.
pub fn watch_status(args: WatchNodeArgs) -> Result<Outcome, Error> {
    use crate::job::watch;
    check_watch_node(&args.node)?;
    let lines = watch::status(&args.node);
    let runner = watch_runner();
    if !watch_executes(&runner) {
        let doc = watch_doc(&args.node, &lines, false);
        return Ok(Outcome::new(
            CommandName::WatchStatus,
            &doc,
            watch_lines_text(NOT_WINDOWS, &lines),
        ));
    }
    let names = watch::tasks(&args.node);
    let mut tasks = Vec::new();
    let mut human = String::new();
    for ((name, _), line) in names.iter().zip(&lines) {
        let r = watch::execute(line, runner.as_deref());
        let installed = r.ok();
        human.push_str(&format!(
            "{}  {name}\n",
            if installed { "ok  " } else { "MISSING" }
        ));
        for l in r.output.lines() {
            human.push_str(&format!("    {}\n", l.trim_end()));
        }
        tasks.push(json!({ "task": name, "installed": installed, "ran": r }));
    }
    let missing: Vec<String> = tasks
        .iter()
        .filter(|t| t["installed"] == false)
        .filter_map(|t| t["task"].as_str().map(String::from))
        .collect();
    let mut doc = watch_doc(&args.node, &lines, true);
    doc["tasks"] = json!(tasks);
    let node = args.node.clone();
    Ok(
        Outcome::new(CommandName::WatchStatus, &doc, human).failing_if(!missing.is_empty(), || {
            format!(
                "the watch of node {node} is not installed: {} missing\n  help: run `extpy watch install --topology FILE --node {node}` in an elevated prompt",
                missing.join(", ")
            )
        }),
    )
}

/// `extpy watch run`: what the tasks run. One check, one event log entry, whatever happens.
pub fn watch_run(s: &Settings, args: WatchArgs, reporter: &Reporter) -> Result<Outcome, Error> {
    use crate::job::watch::{self, EVENT_DRIFT, EVENT_NOT_CHECKED, EVENT_OK, EVENT_SELFTEST};
    let checked = watch_check(s, &args, reporter);
    let (checked, tests) = match checked {
        Ok(c) => c,
        Err(e) => {
            let event = watch::event(
                &args.node,
                EVENT_NOT_CHECKED,
                "the VUs could not be checked",
                &[crate::base::report::console(&e.to_string()).into_owned()],
            );
            record_event(&event, reporter)?;
            return Err(e);
        }
    };
    let checks = &checked.checks;
    // One line a failing VU: its verdict, and why its seal signature is refused if it is.
    let drifted: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| {
            let text = layout::render_checks(std::slice::from_ref(c));
            let first = text.lines().next().unwrap_or_default();
            match c.signature.as_ref().and_then(|s| s.problem.as_ref()) {
                Some(p) => format!("{first}; signature: {p}"),
                None => first.to_string(),
            }
        })
        .collect();
    let or_unsigned = if checks.iter().any(|c| c.signature.is_some()) {
        " or are not sealed by a trusted key"
    } else {
        ""
    };
    let failed_tests: Vec<String> = tests
        .iter()
        .flat_map(|r| &r.folders)
        .filter(|f| !f.ok)
        .map(|f| {
            let verdicts: Vec<&str> = f.verdicts.iter().map(|v| v.summary.as_str()).collect();
            format!(
                "SELFTEST FAIL  {} {} ({}) {}: {}",
                f.node.as_deref().unwrap_or("-"),
                f.vu.as_deref().unwrap_or("-"),
                f.core.as_deref().unwrap_or("-"),
                f.path,
                verdicts.join("; ")
            )
        })
        .collect();
    let total = checks.len();
    let node = checked
        .targets
        .first()
        .map(|t| t.node.name.clone())
        .unwrap_or(args.node.clone());
    let tested = if tests.is_some() {
        " and passed the self-test"
    } else {
        ""
    };
    let event = match (drifted.len(), failed_tests.len()) {
        (0, 0) => watch::event(
            &node,
            EVENT_OK,
            &format!(
                "all {} match seal {}, the seal the manifest {} produces{tested}",
                crate::base::report::plural(total, "VU"),
                checked.expected_seal_digest.short(),
                checked.manifest.identity()
            ),
            &[],
        ),
        (0, t) => watch::event(
            &node,
            EVENT_SELFTEST,
            &format!(
                "all {} match the seal the manifest produces, but {t} failed the self-test",
                crate::base::report::plural(total, "VU")
            ),
            &failed_tests,
        ),
        (d, _) => watch::event(
            &node,
            EVENT_DRIFT,
            &format!(
                "{d} of {} differ from the distribution the manifest {} produces (seal {}){or_unsigned}",
                crate::base::report::plural(total, "VU"),
                checked.manifest.identity(),
                checked.expected_seal_digest.short()
            ),
            &[drifted.clone(), failed_tests.clone()].concat(),
        ),
    };
    let written = record_event(&event, reporter)?;
    let mut human = layout::render_checks(checks);
    if let Some(r) = &tests {
        human.push_str(&crate::job::selftest::render(r));
    }
    human.push_str(&if written {
        format!(
            "written to the Application event log (source {}, event id {})\n",
            watch::SOURCE,
            event.id
        )
    } else {
        format!(
            "not Windows: this entry was not written to the event log:\n{}",
            event.render()
        )
    });
    let doc = json!({
        "node": node,
        "manifest": checked.manifest.identity(),
        "expected_seal_digest": checked.expected_seal_digest,
        "vus": checks,
        "selftest": tests,
        "event": event,
        "event_written": written,
    });
    let (d, t) = (drifted.len(), failed_tests.len());
    Ok(Outcome::new(CommandName::WatchRun, &doc, human)
        .failing_if(d > 0, || {
            format!("{d} of {total} VU folders do not hold the expected distribution")
        })
        .failing_with(d == 0 && t > 0, || {
            Error::Diagnosed(format!("{t} of {total} VU folders failed the self-test"))
        }))
}

/// The check of one watch run: the VUs, and their self-test when asked.
fn watch_check(
    s: &Settings,
    args: &WatchArgs,
    reporter: &Reporter,
) -> Result<(CheckedVus, Option<crate::job::selftest::SelftestReport>), Error> {
    let trusted = trust(s, &args.trusted_key, args.topology.as_deref())?;
    let mut checked = check_vus(
        s,
        args.topology.as_deref(),
        args.bundle.as_deref(),
        &trusted,
        &None,
        &Some(args.node.clone()),
        &args.vu_root,
        reporter,
    )?;
    check_seal_signatures(&mut checked, args.bundle.is_some(), &trusted);
    let tests = if args.selftest {
        let options = selftest_options(s, crate::job::mail::check::DEFAULT_AUTHORITY, 60)?;
        let folders = topology_folders(&checked.topology, &checked.targets);
        Some(run_selftests(&folders, &options, reporter)?)
    } else {
        None
    };
    Ok((checked, tests))
}

/// Writes the entry on Windows (true); elsewhere shows it (false).
fn record_event(event: &crate::job::watch::Event, reporter: &Reporter) -> Result<bool, Error> {
    #[cfg(windows)]
    {
        let _ = reporter;
        crate::job::watch::write_event(event)?;
        Ok(true)
    }
    #[cfg(not(windows))]
    {
        if event.id == crate::job::watch::EVENT_NOT_CHECKED {
            reporter.info(format!(
                "not Windows: this entry was not written to the event log:\n{}",
                event.render()
            ));
        }
        Ok(false)
    }
}

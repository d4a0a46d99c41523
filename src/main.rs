//! The extpy command line: parse, dispatch to the library, print results, exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use extpy::config::Settings;
use extpy::dist::seal::{self, VerifyOptions};
use extpy::dist::{self, BuildOptions, Inputs};
use extpy::error::{EXIT_CODES_HELP, Error};
use extpy::fetch;
use extpy::layout;
use extpy::manifest::Manifest;
use extpy::plan;
use extpy::report::{Reporter, Verbosity};
use extpy::topology::Topology;

/// Fetch, verify, build and lay out the External Python for Sinch Contact Pro CEM.
#[derive(Parser)]
#[command(name = "extpy", version, after_help = EXIT_CODES_HELP, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Distribution manifest (YAML); the built-in CPython 3.12 manifest when absent
    #[arg(long, global = true, env = "EXTPY_MANIFEST", value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Cache folder [default: the user cache folder, e.g. %LOCALAPPDATA%\extpy]
    #[arg(long, global = true, env = "EXTPY_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Package index (Simple API) [env: EXTPY_INDEX_URL, then PIP_INDEX_URL]
    #[arg(
        long,
        global = true,
        env = "EXTPY_INDEX_URL",
        value_name = "URL",
        hide_env = true
    )]
    index_url: Option<String>,
    /// Base of the python download area (<base>/<version>/<file>) [default: python.org]
    #[arg(long, global = true, env = "EXTPY_PYTHON_MIRROR", value_name = "URL")]
    python_mirror: Option<String>,
    /// Also trust the CA certificates in this PEM file (repeatable; SSL_CERT_FILE is read too)
    #[arg(long, global = true, env = "EXTPY_CA_CERT", value_name = "PEM")]
    ca_cert: Vec<PathBuf>,
    /// Never use the network; fail naming what is missing from the cache
    #[arg(long, global = true, env = "EXTPY_OFFLINE", value_parser = BoolishValueParser::new())]
    offline: bool,
    /// Parallel downloads and copies
    #[arg(long, short = 'j', global = true, env = "EXTPY_JOBS", value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Seconds to wait for a connection or for data before retrying
    #[arg(long, global = true, env = "EXTPY_TIMEOUT", value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Retries of a transient failure (timeouts, resets, 5xx, 429)
    #[arg(
        long,
        global = true,
        env = "EXTPY_RETRIES",
        value_name = "N",
        default_value_t = 4
    )]
    retries: u32,
    /// Print one JSON document on stdout instead of human results
    #[arg(long, global = true, env = "EXTPY_JSON", value_parser = BoolishValueParser::new())]
    json: bool,
    /// Print errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print details
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Never draw progress bars (they are drawn only on a terminal anyway)
    #[arg(long, global = true, env = "EXTPY_NO_PROGRESS", value_parser = BoolishValueParser::new())]
    no_progress: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Download and verify every artifact of the manifest into the cache
    Fetch,
    /// Fetch what is missing, then assemble the External Python and seal it
    ///
    /// Drop-in for get-py.ps1: DEST defaults to contents/Python/external under the current
    /// folder. The distribution is built beside DEST and renamed into place only when complete.
    Build {
        /// Destination folder [default: contents/Python/external]
        dest: Option<PathBuf>,
        /// Replace DEST even if extpy did not build it
        #[arg(long)]
        force: bool,
        /// Show what would be built; change nothing at DEST
        #[arg(long)]
        dry_run: bool,
    },
    /// Check built distributions (or VU folders) against their seal: missing, changed, extra files
    ///
    /// With --topology, checks every ExternalPython VU of the node(s): one line per VU.
    Verify {
        /// Folders holding an extpy-seal.json
        #[arg(required_unless_present = "topology", conflicts_with = "topology")]
        paths: Vec<PathBuf>,
        /// Check the VU folders of this topology instead
        #[arg(long, value_name = "FILE")]
        topology: Option<PathBuf>,
        /// Only this node of the topology
        #[arg(long, requires = "topology")]
        node: Option<String>,
        /// The node's VU root on this machine (default: the topology's, on Windows)
        #[arg(
            long,
            value_name = "PATH",
            requires = "topology",
            conflicts_with = "out"
        )]
        vu_root: Option<PathBuf>,
        /// Check a staged layout (DIR/<node>/…) made by `extpy layout --out DIR`
        #[arg(long, value_name = "DIR", requires = "topology")]
        out: Option<PathBuf>,
        /// Count __pycache__ files that Python writes at run time as extra files too
        #[arg(long)]
        strict: bool,
    },
    /// Write the step plan (runbook) for a topology: every IA/SC step with its concrete values
    Plan {
        /// Topology file (see manifests/topology.example.yaml)
        topology: PathBuf,
        /// Output format
        #[arg(long, value_enum, default_value_t = plan::Format::Markdown)]
        format: plan::Format,
        /// Write to this file (atomically) instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Lay out the ExternalPythonN VU folders of a topology, paired with their cores
    ///
    /// Stages every node under --out DIR (DIR/<node>/<VU>/Python/External), or lays out one
    /// node in place with --node NAME [--vu-root PATH]. Every copy is verified against the
    /// seal; a second run changes nothing.
    Layout {
        /// Topology file (see manifests/topology.example.yaml)
        topology: PathBuf,
        /// Stage every node under this folder, and write DIR/pairing.json
        #[arg(long, value_name = "DIR", conflicts_with = "vu_root")]
        out: Option<PathBuf>,
        /// Only this node
        #[arg(long)]
        node: Option<String>,
        /// The node's VU root on this machine (default: the topology's, on Windows)
        #[arg(long, value_name = "PATH")]
        vu_root: Option<PathBuf>,
        /// Copy this built distribution instead of building one
        #[arg(long, value_name = "PATH")]
        dist: Option<PathBuf>,
        /// Replace VU folders that differ from their seal or hold foreign files
        #[arg(long)]
        repair: bool,
        /// Show what would be created or changed; touch nothing
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    let reporter = Reporter::new(verbosity, !cli.global.no_progress);
    let json = cli.global.json;
    let name = command_name(&cli.command);
    match run(cli, &reporter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code() as u8;
            eprintln!("error: {e}");
            // A mismatch comes after its report was printed: that document already says ok: false.
            if json && !matches!(e, Error::Mismatch(_)) {
                let doc = json!({ "command": name, "ok": false, "exit_code": code, "error": e.to_string() });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            ExitCode::from(code)
        }
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Fetch => "fetch",
        Command::Build { .. } => "build",
        Command::Verify { .. } => "verify",
        Command::Layout { .. } => "layout",
        Command::Plan { .. } => "plan",
    }
}

fn settings(g: &Global) -> Result<Settings, Error> {
    let mut s = Settings::with_defaults(
        g.cache_dir.clone(),
        g.index_url.clone(),
        g.python_mirror.clone(),
    )?;
    s.manifest = g.manifest.clone();
    s.ca_certs = g.ca_cert.clone();
    s.offline = g.offline;
    s.jobs = g.jobs as usize;
    s.timeout = Duration::from_secs(g.timeout);
    s.retries = g.retries;
    Ok(s)
}

fn run(cli: Cli, reporter: &Reporter) -> Result<(), Error> {
    let s = settings(&cli.global)?;
    match cli.command {
        Command::Fetch => {
            let manifest = s.load_manifest()?;
            let report = extpy::fetch::fetch(&manifest, &s.fetch_options()?, reporter)?;
            emit(&cli.global, reporter, "fetch", true, &report, || {
                report.render()
            })
        }
        Command::Build {
            dest,
            force,
            dry_run,
        } => {
            let dest = dest.unwrap_or_else(|| PathBuf::from(dist::DEFAULT_DEST));
            let manifest = s.load_manifest()?;
            if !cli.global.json && reporter.verbosity() > Verbosity::Quiet {
                println!(
                    "Generating python at location: {}",
                    dist::absolute_dest(&dest).display()
                );
            }
            let fetched = fetch::fetch(&manifest, &s.fetch_options()?, reporter)?;
            reporter.info(fetched.summary());
            let options = BuildOptions {
                dest,
                force,
                jobs: s.jobs,
            };
            let inputs = Inputs::from_fetch(&fetched);
            let plan = dist::plan(&manifest, &inputs, &options)?;
            if dry_run {
                let summary = plan.summary();
                return emit(&cli.global, reporter, "build", true, &summary, || {
                    summary.render()
                });
            }
            let report = dist::execute(&plan, &manifest, &options, reporter)?;
            emit(&cli.global, reporter, "build", true, &report, || {
                report.render()
            })
        }
        Command::Verify {
            topology: Some(topology),
            node,
            vu_root,
            out,
            ..
        } => {
            let (topology, manifest, targets) =
                open_topology(&s, &topology, &out, &node, &vu_root)?;
            let checks = layout::check(&topology, &targets, &manifest, s.jobs)?;
            let failed = checks.iter().filter(|c| !c.ok).count();
            let doc = json!({ "manifest": manifest.identity(), "vus": checks });
            emit(&cli.global, reporter, "verify", failed == 0, &doc, || {
                layout::render_checks(&checks)
            })?;
            if failed > 0 {
                return Err(Error::Mismatch(format!(
                    "{failed} of {} VU folders do not hold the expected distribution",
                    checks.len()
                )));
            }
            Ok(())
        }
        Command::Verify { paths, strict, .. } => {
            let options = VerifyOptions {
                jobs: s.jobs,
                strict,
            };
            let mut results = Vec::new();
            for p in &paths {
                results.push(seal::verify_or_explain(p, options)?);
            }
            let failed = results.iter().filter(|r| !r.ok).count();
            let doc = json!({ "results": results });
            emit(&cli.global, reporter, "verify", failed == 0, &doc, || {
                results.iter().map(|r| r.render()).collect()
            })?;
            if failed > 0 {
                return Err(Error::Mismatch(format!(
                    "{failed} of {} folders do not match their seal",
                    results.len()
                )));
            }
            Ok(())
        }
        Command::Plan {
            topology: path,
            format,
            out,
        } => {
            let topology = Topology::load(&path)?;
            let manifest = match (&s.manifest, &topology.manifest) {
                (Some(p), _) | (None, Some(p)) => Manifest::load(p)?,
                (None, None) => Manifest::builtin()?,
            };
            for w in topology.mail.iter().flat_map(|m| &m.warnings) {
                reporter.warn(w);
            }
            let certificates = plan::Certificates::Skipped {
                note: "run `extpy doctor` on the machine that downloads, or make this plan with --doctor (live) or --doctor-report FILE (a saved `extpy doctor --json`)".into(),
            };
            let options = plan::PlanOptions {
                topology_arg: path.display().to_string(),
                ..Default::default()
            };
            let runbook = plan::build(&topology, &manifest, certificates, &options);
            let text = runbook.render(if cli.global.json {
                plan::Format::Json
            } else {
                format
            });
            match out {
                Some(file) => {
                    extpy::place::write_atomic(&file, text.as_bytes())
                        .map_err(extpy::dist::BuildError::from)?;
                    reporter.info(format!(
                        "plan written to {} ({} steps)",
                        file.display(),
                        runbook.steps.len()
                    ));
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Layout {
            topology,
            out,
            node,
            vu_root,
            dist,
            repair,
            dry_run,
        } => {
            let (topology, manifest, targets) =
                open_topology(&s, &topology, &out, &node, &vu_root)?;
            let plan = layout::plan(&topology, &targets, &manifest, repair, dry_run, s.jobs)?;
            let report = if dry_run {
                plan.report(&manifest)
            } else {
                let mut report = if plan.writes() {
                    let (dist, seal) =
                        layout::prepare_distribution(&manifest, &s, dist.as_deref(), reporter)?;
                    layout::execute(&plan, &targets, &dist, &seal, &manifest, s.jobs, reporter)?
                } else {
                    let mut report = plan.report(&manifest);
                    report.seal_digest = plan.matching_seal();
                    report
                };
                if let (Some(out), Some(digest)) = (&out, report.seal_digest) {
                    report.pairing_file =
                        Some(layout::write_pairing(out, &topology, &manifest, digest)?);
                }
                report
            };
            emit(
                &cli.global,
                reporter,
                "layout",
                report.left == 0,
                &report,
                || report.render(),
            )?;
            if report.left > 0 {
                return Err(Error::Mismatch(format!(
                    "{} VU folders differ from their seal and were left as they are; re-run with --repair to replace them",
                    report.left
                )));
            }
            Ok(())
        }
    }
}

/// The topology, its manifest (--manifest when given, else the one the topology names, else
/// the built-in one) and the node folders that --out, --node and --vu-root select.
fn open_topology(
    s: &Settings,
    path: &Path,
    out: &Option<PathBuf>,
    node: &Option<String>,
    vu_root: &Option<PathBuf>,
) -> Result<(Topology, Manifest, Vec<layout::NodeTarget>), Error> {
    let topology = Topology::load(path)?;
    let manifest = match (&s.manifest, &topology.manifest) {
        (Some(p), _) | (None, Some(p)) => Manifest::load(p)?,
        (None, None) => Manifest::builtin()?,
    };
    let targets = layout::targets(
        &topology,
        out.as_deref(),
        node.as_deref(),
        vu_root.as_deref(),
    )?;
    Ok((topology, manifest, targets))
}

/// Prints a result: one JSON document with `--json`, else the human rendering (unless `-q`).
fn emit<T: serde::Serialize>(
    g: &Global,
    reporter: &Reporter,
    command: &str,
    ok: bool,
    result: &T,
    human: impl FnOnce() -> String,
) -> Result<(), Error> {
    if g.json {
        let mut doc = serde_json::to_value(result).unwrap_or_default();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("command".into(), json!(command));
            obj.insert("ok".into(), json!(ok));
        }
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if reporter.verbosity() > Verbosity::Quiet {
        print!("{}", human());
    }
    Ok(())
}

//! The extpy command line: parse, dispatch to the library, print results, exit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use extpy::config::Settings;
use extpy::dist::seal::{self, VerifyOptions};
use extpy::dist::{self, BuildOptions, Inputs};
use extpy::error::{EXIT_CODES_HELP, Error};
use extpy::fetch::{self, ArtifactError, FetchError};
use extpy::net::NetError;
use extpy::report::{Reporter, Verbosity};
use extpy::tls::render::{self, Detail};
use extpy::tls::{Advice, Doctor, DoctorOptions, DoctorReport, Resolve, Target};

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
    Verify {
        /// Folders holding an extpy-seal.json
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Count __pycache__ files that Python writes at run time as extra files too
        #[arg(long)]
        strict: bool,
    },
    /// Diagnose TLS to the download hosts: the chain presented, who trusts it, the cause, the fix
    ///
    /// Without arguments: every host the sources use (python mirror, index, and the file
    /// hosts the index points to). For each: proxy, DNS, TCP, TLS handshake, the chain the
    /// server presented, its verification against this machine's trust store, the Mozilla
    /// roots and --ca-cert, a verdict, the fix, and an HTTP probe once TLS is trusted.
    /// Exit code 4 when any host fails.
    Doctor {
        /// Hosts to check: HOST, HOST:PORT or an http(s) URL [default: the sources' hosts]
        #[arg(value_name = "URL|HOST")]
        targets: Vec<String>,
        /// Write the certificate to trust into DIR as PEM (.pem) and DER (.cer)
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Connect to ADDR for HOST:PORT instead of asking DNS, like curl (repeatable)
        #[arg(long, value_name = "HOST:PORT:ADDR")]
        resolve: Vec<String>,
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
            let diagnoses = match &e {
                Error::Explained { report, .. } => Some(report),
                _ => None,
            };
            if let Some(report) = diagnoses {
                for h in &report.hosts {
                    eprint!("\n{}", render::host(h, Detail::Brief));
                }
                let urls: Vec<&str> = report.hosts.iter().map(|h| h.url.as_str()).collect();
                eprintln!(
                    "\n`extpy doctor {}` shows every detail (proxy, DNS, handshake, each certificate).",
                    urls.join(" ")
                );
            }
            // A mismatch or a failed diagnosis comes after its report was printed: that
            // document already says ok: false.
            if json && !matches!(e, Error::Mismatch(_) | Error::Diagnosed(_)) {
                let mut doc = json!({ "command": name, "ok": false, "exit_code": code, "error": e.to_string() });
                if let Some(report) = diagnoses {
                    doc["diagnoses"] = serde_json::to_value(&report.hosts).unwrap_or_default();
                }
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
        Command::Doctor { .. } => "doctor",
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
            let report = extpy::fetch::fetch(&manifest, &s.fetch_options()?, reporter)
                .map_err(|e| explain_tls(e.into(), &s, "fetch"))?;
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
            let fetched = fetch::fetch(&manifest, &s.fetch_options()?, reporter)
                .map_err(|e| explain_tls(e.into(), &s, "build"))?;
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
        Command::Verify { paths, strict } => {
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
        Command::Doctor {
            targets,
            export,
            resolve,
        } => {
            if s.offline {
                return Err(Error::Usage(
                    "extpy doctor needs the network, and --offline (or EXTPY_OFFLINE) forbids it"
                        .into(),
                ));
            }
            let resolve = resolve
                .iter()
                .map(|r| r.parse::<Resolve>())
                .collect::<Result<Vec<_>, _>>()?;
            let targets = targets
                .iter()
                .map(|t| Target::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            let advice = Advice {
                command: "build".into(),
                export,
                after_failure: false,
            };
            let doctor = Doctor::new(doctor_options(&s, resolve, advice)?, reporter)?;
            let report = if targets.is_empty() {
                let manifest = s.load_manifest()?;
                doctor.diagnose_sources(&manifest, &s.sources()?)
            } else {
                doctor.diagnose_all(&targets)
            };
            emit(
                &cli.global,
                reporter,
                "doctor",
                report.ok(),
                &report,
                || render::report(&report),
            )?;
            if !report.ok() {
                return Err(Error::Diagnosed(format!(
                    "{} of {} hosts failed the diagnosis",
                    report.failed(),
                    report.hosts.len()
                )));
            }
            Ok(())
        }
    }
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

/// A fetch that failed on TLS: diagnose each host concerned (once), so that the error says
/// the cause and the fix instead of the generic TLS message.
fn explain_tls(e: Error, s: &Settings, command: &str) -> Error {
    let mut targets: Vec<Target> = Vec::new();
    for url in tls_failures(&e) {
        if let Some(t) = Target::from_url(url, "download")
            && !targets.iter().any(|x| x.authority() == t.authority())
        {
            targets.push(t);
        }
    }
    if targets.is_empty() {
        return e;
    }
    let advice = Advice {
        command: command.into(),
        export: None,
        after_failure: true,
    };
    let Ok(options) = doctor_options(s, Vec::new(), advice) else {
        return e;
    };
    let Ok(doctor) = Doctor::new(options, &Reporter::silent()) else {
        return e;
    };
    let report = doctor.diagnose_all(&targets);
    Error::Explained {
        message: tls_message(&e, &report),
        source: Box::new(e),
        report,
    }
}

/// The URLs whose TLS failed, in the order of the failures.
fn tls_failures(e: &Error) -> Vec<&url::Url> {
    fn tls_url(n: &NetError) -> Option<&url::Url> {
        match n.root() {
            NetError::Tls { url, .. } => Some(url),
            _ => None,
        }
    }
    match e {
        Error::Fetch(FetchError::Artifacts(failures)) => failures
            .iter()
            .filter_map(|f| f.net().and_then(tls_url))
            .collect(),
        Error::Fetch(FetchError::Net(n)) | Error::Net(n) => tls_url(n).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The error with each TLS failure replaced by its host's verdict.
fn tls_message(e: &Error, report: &DoctorReport) -> String {
    let verdict_for = |n: &NetError| -> Option<String> {
        let NetError::Tls { url, .. } = n.root() else {
            return None;
        };
        let t = Target::from_url(url, "download")?;
        let d = report
            .hosts
            .iter()
            .find(|h| h.host == t.host && h.port == t.port)?;
        Some(format!("TLS with {} failed: {}", t.host, d.verdict.summary))
    };
    let line = |f: &ArtifactError| -> String {
        let (file, origin, line) = match f {
            ArtifactError::Net {
                file, origin, line, ..
            }
            | ArtifactError::Source {
                file, origin, line, ..
            } => (file, origin, line),
            other => return other.to_string(),
        };
        match f.net().and_then(verdict_for) {
            Some(v) => format!("{file} ({origin}:{line}): {v}"),
            None => f.to_string(),
        }
    };
    match e {
        Error::Fetch(FetchError::Artifacts(failures)) if failures.len() == 1 => line(&failures[0]),
        Error::Fetch(FetchError::Artifacts(failures)) => {
            let mut s = format!("{} artifacts could not be fetched:", failures.len());
            for f in failures {
                s.push_str("\n- ");
                s.push_str(&line(f).replace('\n', "\n  "));
            }
            s
        }
        Error::Fetch(FetchError::Net(n)) | Error::Net(n) => {
            verdict_for(n).unwrap_or_else(|| n.to_string())
        }
        other => other.to_string(),
    }
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

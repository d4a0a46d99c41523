//! `extpy selftest`: a built distribution (or a VU's `Python\External`) tried by its own
//! python.exe, as CEM will start it. A folder can match its seal byte for byte and still fail
//! there: a path over MAX_PATH, a Visual C++ runtime that is missing, an Application Control
//! policy that blocks an unsigned `.pyd`, a CA bundle that does not trust the TLS-inspecting
//! proxy. The probe (`probe.py`) imports what CEM imports, prints the OpenSSL versions and the
//! CA bundle requests uses, and opens TLS to the token endpoint through the proxy this machine
//! uses; each failure becomes a verdict with its fix. It writes nothing into the folder.

mod child;
mod tls;
pub(crate) mod verdict;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::job::doctor::connect::parse_proxy;
use crate::job::mail::runtime::{DistError, Distribution};
use crate::mechanism::net::auth::shown_text;
use crate::mechanism::net::proxy::ProxyConfig;
use crate::mechanism::pathlen::{self, LongPaths, LongestPath};
use crate::model::manifest::RuntimeTrust;

pub use child::PYTHON_ENV;
use child::{Ended, Interpreter};
use tls::TlsKind;
pub use tls::{TlsCheck, TlsStatus};
pub use verdict::{Verdict, VerdictCode};

/// What CEM imports, natives included (`_ssl` through ssl, cryptography's Rust part, cffi's
/// backend), in the order a failure is easiest to read.
const IMPORTS: [&str; 7] = [
    "ssl",
    "certifi",
    "requests",
    "msal",
    "cryptography",
    "cryptography.hazmat.bindings._rust",
    "_cffi_backend",
];

/// How a self-test runs.
#[derive(Debug, Clone)]
pub(crate) struct SelftestOptions {
    /// A CPython to run instead of each folder's python.exe ([`PYTHON_ENV`]).
    pub stand_in: Option<PathBuf>,
    /// The endpoint TLS is opened to; `None` with `--offline`.
    pub endpoint: Option<Url>,
    /// The proxy this machine uses.
    pub proxy: ProxyConfig,
    /// The probe's connection timeout.
    pub connect_timeout: Duration,
    /// The most the probe may take before it is killed.
    pub time_limit: Duration,
}

/// One folder to try.
#[derive(Debug, Clone)]
pub(crate) struct Folder {
    /// The folder on this machine.
    pub dir: PathBuf,
    /// The folder as the node sees it (the topology's Windows path), for the path length.
    pub on_node: String,
    /// Node, VU and core, with `--topology`.
    pub vu: Option<(String, String, String)>,
    /// Long paths on that machine.
    pub long_paths: LongPaths,
}

/// One import as the probe saw it.
#[derive(Debug, Clone, Serialize)]
pub struct ImportResult {
    /// The module.
    pub module: String,
    /// True when it imported.
    pub ok: bool,
    /// The file it came from.
    pub file: Option<String>,
    /// `Type: message` when it failed.
    pub error: Option<String>,
    /// The Windows error of loading its DLL (126, 1260, 4551), when known.
    pub winerror: Option<i64>,
}

/// The OpenSSL versions in the distribution.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenSsl {
    /// `ssl.OPENSSL_VERSION`: the OpenSSL of CPython's `_ssl`.
    pub ssl: Option<String>,
    /// The OpenSSL cryptography is built with.
    pub cryptography: Option<String>,
    /// cryptography's version.
    pub cryptography_version: Option<String>,
}

/// One folder's self-test.
#[derive(Debug, Clone, Serialize)]
pub struct FolderTest {
    /// The folder on this machine.
    pub path: String,
    /// The node, with `--topology`.
    pub node: Option<String>,
    /// The VU, with `--topology`.
    pub vu: Option<String>,
    /// The core the VU serves, with `--topology`.
    pub core: Option<String>,
    /// The interpreter that ran the probe.
    pub interpreter: String,
    /// True when a CPython stood in for the folder's python.exe.
    pub stand_in: bool,
    /// True when every check passed.
    pub ok: bool,
    /// How long the probe took, in seconds.
    pub seconds: f64,
    /// The Python version the probe reported.
    pub python: Option<String>,
    /// Each import.
    pub imports: Vec<ImportResult>,
    /// The OpenSSL versions.
    pub openssl: Option<OpenSsl>,
    /// What requests verifies TLS against: `certifi` or `system`.
    pub trust: Option<RuntimeTrust>,
    /// The CA bundle requests uses (`requests.certs.where()`).
    pub ca_bundle: Option<String>,
    /// The TLS check.
    pub tls: TlsCheck,
    /// The longest path in the folder, at its place on the node.
    pub longest_path: Option<LongestPath>,
    /// Whether paths over MAX_PATH work there.
    pub long_paths: LongPaths,
    /// Every failure, with its fix.
    pub verdicts: Vec<Verdict>,
    /// Remarks.
    pub notes: Vec<String>,
}

/// The self-test of every folder.
#[derive(Debug, Clone, Serialize)]
pub struct SelftestReport {
    /// One per folder.
    pub folders: Vec<FolderTest>,
}

impl SelftestReport {
    /// Folders that failed.
    pub fn failed(&self) -> usize {
        self.folders.iter().filter(|f| !f.ok).count()
    }
}

/// A folder that is not a distribution: the reason and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}\n  help: {help}")]
pub struct NotADistribution {
    /// The folder.
    pub path: String,
    /// What is wrong.
    pub reason: String,
    /// What to do.
    pub help: String,
}

impl From<DistError> for NotADistribution {
    fn from(e: DistError) -> Self {
        Self {
            path: e.path,
            reason: e.reason,
            help: e.help,
        }
    }
}

/// What the probe prints.
#[derive(Debug, Deserialize)]
struct Probe {
    python: ProbePython,
    imports: Vec<ProbeImport>,
    openssl: Option<OpenSsl>,
    trust: Option<ProbeTrust>,
    tls: Option<ProbeTls>,
}

#[derive(Debug, Deserialize)]
struct ProbePython {
    version: String,
}

#[derive(Debug, Deserialize)]
struct ProbeError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
    winerror: Option<i64>,
}

impl ProbeError {
    fn text(&self) -> String {
        format!("{}: {}", self.kind, self.message)
    }
}

#[derive(Debug, Deserialize)]
struct ProbeImport {
    module: String,
    ok: bool,
    file: Option<String>,
    error: Option<ProbeError>,
}

#[derive(Debug, Deserialize)]
struct ProbeTrust {
    bundle: Option<String>,
    truststore: bool,
}

#[derive(Debug, Deserialize)]
struct ProbeTls {
    ok: bool,
    kind: Option<TlsKind>,
    error: Option<ProbeError>,
    version: Option<String>,
    leaf: Option<String>,
}

/// The probe's JSON argument.
#[derive(Debug, Serialize)]
struct ProbeConfig<'a> {
    site: String,
    imports: Vec<&'a str>,
    tls: Option<ProbeTlsConfig>,
}

#[derive(Debug, Serialize)]
struct ProbeTlsConfig {
    host: String,
    port: u16,
    timeout: f64,
    proxy: Option<ProbeProxy>,
}

#[derive(Debug, Serialize)]
struct ProbeProxy {
    host: String,
    port: u16,
    authorization: Option<String>,
}

/// The interpreter for `dir`: the stand-in when one is set, else the folder's python.exe.
fn interpreter(dir: &Path, options: &SelftestOptions) -> Interpreter {
    match &options.stand_in {
        Some(p) => Interpreter::StandIn(p.clone()),
        None => Interpreter::Own(dir.join("python.exe")),
    }
}

/// Tries one folder. A folder that is not a distribution is an error (a verdict needs a
/// distribution to be about).
pub(crate) fn test(
    folder: &Folder,
    options: &SelftestOptions,
) -> Result<FolderTest, NotADistribution> {
    let dist = Distribution::open(&folder.dir)?;
    let rels = relative_files(&folder.dir);
    let longest = pathlen::longest(&folder.on_node, rels.iter().map(String::as_str));
    let interpreter = interpreter(&folder.dir, options);
    let site = folder.dir.join("Lib").join("site-packages");
    let mut imports: Vec<&str> = IMPORTS.to_vec();
    if dist.trust() == RuntimeTrust::System {
        imports.push("truststore");
    }
    let (tls_config, mut tls) = tls_plan(options);
    let config = ProbeConfig {
        site: site.display().to_string(),
        imports,
        tls: tls_config,
    };
    let config = serde_json::to_string(&config)
        .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail");
    let start = Instant::now();
    let ended = match &interpreter {
        Interpreter::Own(p) if !p.is_file() => None,
        _ => Some(match crate::mechanism::place::temp_dir("extpy-selftest-") {
            Ok(temp) => child::run(
                &interpreter,
                &config,
                temp.path(),
                temp.path(),
                options.time_limit,
            ),
            Err(e) => Ended::NotStarted(std::io::Error::other(e.to_string())),
        }),
    };
    let seconds = (start.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    let probe = match &ended {
        Some(Ended::Exited { stdout, .. }) => parse_probe(stdout),
        _ => None,
    };
    let minor = probe
        .as_ref()
        .and_then(|p| p.python.version.split('.').nth(1)?.parse::<u32>().ok());
    let too_long = longest
        .as_ref()
        .filter(|l| !l.fits() && !folder.long_paths.honoured(minor))
        .cloned();
    let mut verdicts = Vec::new();
    if let Some(l) = &too_long {
        verdicts.push(verdict::path_too_long(l, folder.long_paths));
    }
    let found = verdict::Found {
        dir: &folder.dir,
        dist: &dist,
        too_long: too_long.is_some(),
        time_limit: options.time_limit,
        endpoint: tls.endpoint.clone().unwrap_or_default(),
    };
    match (&ended, &probe) {
        (None, _) => verdicts.push(verdict::no_python(&found, interpreter.program())),
        (Some(e), None) => verdicts.push(verdict::no_report(&found, e)),
        (Some(_), Some(_)) => {}
    }
    let mut results = Vec::new();
    if let Some(p) = &probe {
        for i in &p.imports {
            let winerror = i.error.as_ref().and_then(|e| e.winerror);
            if let (false, Some(e)) = (i.ok, &i.error) {
                verdicts.push(verdict::import(&found, &i.module, &e.text(), winerror));
            }
            results.push(ImportResult {
                module: i.module.clone(),
                ok: i.ok,
                file: i.file.clone(),
                error: i.error.as_ref().map(ProbeError::text),
                winerror,
            });
        }
        if let (Some(t), TlsStatus::NotRun) = (&p.tls, tls.status) {
            tls.version = t.version.clone();
            if t.ok {
                tls.status = TlsStatus::Ok;
            } else {
                tls.status = TlsStatus::Failed;
                tls.error = t.error.as_ref().map(ProbeError::text);
                tls.issuer = t.leaf.as_deref().and_then(issuer_of);
                verdicts.push(verdict::tls(&found, t.kind, &tls));
            }
        }
    }
    let trust = probe.as_ref().and_then(|p| p.trust.as_ref());
    let ca_bundle = trust.and_then(|t| match (t.truststore, &t.bundle) {
        (true, _) => Some("the system certificate store (truststore)".to_string()),
        (false, b) => b.clone(),
    });
    let mut notes = dist.notes().to_vec();
    if matches!(interpreter, Interpreter::StandIn(_)) {
        notes.push(format!(
            "{} stood in for the folder's python.exe ({PYTHON_ENV}): the imports used this folder's site-packages, but the interpreter, its _ssl and OpenSSL are the stand-in's",
            interpreter.program().display()
        ));
    }
    Ok(FolderTest {
        path: folder.dir.display().to_string(),
        node: folder.vu.as_ref().map(|v| v.0.clone()),
        vu: folder.vu.as_ref().map(|v| v.1.clone()),
        core: folder.vu.as_ref().map(|v| v.2.clone()),
        interpreter: interpreter.program().display().to_string(),
        stand_in: matches!(interpreter, Interpreter::StandIn(_)),
        ok: verdicts.is_empty(),
        seconds,
        python: probe.as_ref().map(|p| p.python.version.clone()),
        imports: results,
        openssl: probe.as_ref().and_then(|p| p.openssl.clone()),
        trust: Some(dist.trust()),
        ca_bundle,
        tls,
        longest_path: longest,
        long_paths: folder.long_paths,
        verdicts,
        notes,
    })
}

/// The TLS part of the probe's configuration, and the check as planned.
fn tls_plan(options: &SelftestOptions) -> (Option<ProbeTlsConfig>, TlsCheck) {
    let mut check = TlsCheck {
        status: TlsStatus::Skipped,
        endpoint: None,
        proxy: None,
        proxy_source: None,
        version: None,
        error: None,
        issuer: None,
    };
    let Some(url) = &options.endpoint else {
        return (None, check);
    };
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    check.status = TlsStatus::NotRun;
    check.endpoint = Some(format!("{host}:{port}"));
    let mut proxy = None;
    if let Some(choice) = options.proxy.for_url(url) {
        check.proxy_source = Some(choice.origin());
        match parse_proxy(&choice.value) {
            Ok((shown, p)) => {
                check.proxy = Some(shown);
                proxy = Some(ProbeProxy {
                    host: p.host,
                    port: p.port,
                    authorization: p.authorization,
                });
            }
            Err(why) => {
                check.proxy = Some(shown_text(&choice.value));
                check.error = Some(format!("the proxy setting cannot be used: {why}"));
            }
        }
    }
    let config = ProbeTlsConfig {
        host: host.trim_matches(['[', ']']).to_string(),
        port,
        timeout: options.connect_timeout.as_secs_f64(),
        proxy,
    };
    (Some(config), check)
}

/// The probe's report: the last line carrying the mark.
fn parse_probe(stdout: &str) -> Option<Probe> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(child::MARK))?;
    serde_json::from_str(line.trim()).ok()
}

/// The issuer named by a base64 DER certificate.
fn issuer_of(leaf: &str) -> Option<String> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(leaf)
        .ok()?;
    let der = rustls::pki_types::CertificateDer::from(der);
    let chain = crate::job::doctor::chain::Chain::parse(&[der]);
    chain.top().map(|c| c.issuer_name.clone())
}

/// Every file under `dir`, relative and `/`-separated.
fn relative_files(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?;
            Some(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            )
        })
        .collect()
}

/// The report for people.
pub fn render(report: &SelftestReport) -> String {
    let mut out = String::new();
    for f in &report.folders {
        out.push_str(&render_folder(f));
    }
    let failed = report.failed();
    out.push_str(&format!(
        "{} of {} passed the self-test\n",
        report.folders.len() - failed,
        crate::base::report::plural(report.folders.len(), "folder")
    ));
    out
}

fn render_folder(f: &FolderTest) -> String {
    let mut out = format!("selftest {}", f.path);
    if let (Some(node), Some(vu), Some(core)) = (&f.node, &f.vu, &f.core) {
        out.push_str(&format!(" (node {node}, {vu} for {core})"));
    }
    out.push('\n');
    let row = |out: &mut String, key: &str, value: &str| {
        out.push_str(&format!("  {key:<13}{}\n", ascii(value)));
    };
    row(
        &mut out,
        "python",
        &format!(
            "{} ({}{})",
            f.python.as_deref().unwrap_or("did not report"),
            f.interpreter,
            if f.stand_in { ", a stand-in" } else { "" }
        ),
    );
    for i in &f.imports {
        let state = match &i.error {
            None => "ok".to_string(),
            Some(e) => format!("FAILED: {e}"),
        };
        row(&mut out, "import", &format!("{} {state}", i.module));
    }
    if let Some(o) = &f.openssl {
        row(
            &mut out,
            "openssl",
            &format!(
                "_ssl: {}; cryptography {}: {}",
                o.ssl.as_deref().unwrap_or("unknown"),
                o.cryptography_version.as_deref().unwrap_or("?"),
                o.cryptography.as_deref().unwrap_or("unknown")
            ),
        );
    }
    if let Some(b) = &f.ca_bundle {
        row(&mut out, "ca bundle", b);
    }
    let tls = match f.tls.status {
        TlsStatus::Skipped => "skipped (--offline)".to_string(),
        status => format!(
            "{}{}: {}",
            f.tls.endpoint.as_deref().unwrap_or(""),
            match (&f.tls.proxy, &f.tls.proxy_source) {
                (Some(p), Some(s)) => format!(" via {p} ({s})"),
                _ => " direct".into(),
            },
            match status {
                TlsStatus::Ok => format!("ok, {}", f.tls.version.as_deref().unwrap_or("TLS")),
                TlsStatus::Failed => format!("FAILED: {}", f.tls.error.as_deref().unwrap_or("")),
                _ => "not run".into(),
            }
        ),
    };
    row(&mut out, "tls", &tls);
    if let Some(l) = &f.longest_path {
        row(
            &mut out,
            "longest path",
            &format!(
                "{} characters of {} ({})",
                l.length,
                pathlen::MAX_PATH_CHARS,
                l.path
            ),
        );
    }
    for n in &f.notes {
        row(&mut out, "note", n);
    }
    if f.verdicts.is_empty() {
        out.push_str("  verdict      ok\n");
    }
    for v in &f.verdicts {
        out.push_str(&format!(
            "  FAIL {}: {}\n",
            v.code.as_str(),
            ascii(&v.summary)
        ));
        out.push_str(&format!("    fix: {}\n", ascii(&v.fix.summary)));
        for (i, s) in v.fix.steps.iter().enumerate() {
            out.push_str(&format!("      {}. {}\n", i + 1, ascii(s)));
        }
    }
    out.push('\n');
    out
}

/// Console text is ASCII: what the probe reports (a localized Windows message) may not be.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_report_is_the_last_marked_line() {
        let out = "noise\nEXTPY-SELFTEST {\"python\":{\"version\":\"3.12.10\",\"executable\":\"x\"},\"imports\":[],\"openssl\":null,\"trust\":null,\"tls\":null}\n";
        let p = parse_probe(out).unwrap();
        assert_eq!(p.python.version, "3.12.10");
        assert!(parse_probe("no mark\n").is_none());
        assert!(parse_probe("EXTPY-SELFTEST {broken\n").is_none());
    }

    #[test]
    fn proxy_credentials_are_decoded_for_the_connect_header() {
        let env =
            |n: &str| (n == "HTTPS_PROXY").then(|| "http://u%40x:p%3A@proxy:3128".to_string());
        let options = SelftestOptions {
            stand_in: None,
            endpoint: Some(Url::parse("https://login.example/").unwrap()),
            proxy: ProxyConfig::resolve_from(&env, &Default::default()),
            connect_timeout: Duration::from_secs(5),
            time_limit: Duration::from_secs(10),
        };
        let (config, check) = tls_plan(&options);
        let proxy = config.unwrap().proxy.unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy", 3128));
        use base64::Engine;
        let auth = proxy.authorization.unwrap();
        let auth = base64::engine::general_purpose::STANDARD
            .decode(auth.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(auth, b"u@x:p:");
        assert_eq!(check.proxy.as_deref(), Some("http://u%40x:****@proxy:3128"));
        assert_eq!(check.endpoint.as_deref(), Some("login.example:443"));
    }
}

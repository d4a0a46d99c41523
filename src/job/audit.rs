//! `extpy audit`: known vulnerabilities and yanks of every pinned wheel, from the index's
//! JSON API (`<index>/../pypi/<name>/<version>/json`), and the pinned CPython's support
//! status. A finding fails the audit (exit 3) unless accepted with `--ignore ID=REASON`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::base::report::Reporter;
use crate::job::source::Sources;
use crate::mechanism::net::{Client, NetError, NetOptions};
use crate::model::manifest::{Manifest, PythonVersion};

/// Why an audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An `--ignore` without a reason.
    #[error(
        "--ignore {0:?} has no reason\n  help: write --ignore ID=REASON, e.g. --ignore GHSA-xxxx=\"not reachable: CEM never parses untrusted certificates\""
    )]
    IgnoreWithoutReason(String),
    /// The JSON API is missing or broken.
    #[error(
        "{url}: {reason}\n  help: audit reads the index's JSON API (<index>/../pypi/<project>/<version>/json); point --index-url at an index that serves it"
    )]
    Api {
        /// The URL.
        url: Url,
        /// What is wrong.
        reason: String,
    },
    /// A request failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// One `--ignore`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ignore {
    /// The advisory id or alias.
    pub id: String,
    /// Why the risk is accepted.
    pub reason: String,
}

impl AuditError {
    /// The exit code: 2 for a bad `--ignore`, 4 when the index cannot answer.
    pub fn exit_code(&self) -> crate::base::exit::ExitCode {
        use crate::base::exit::ExitCode;
        match self {
            AuditError::IgnoreWithoutReason(_) => ExitCode::Input,
            AuditError::Api { .. } => ExitCode::Network,
            AuditError::Net(n) => n.exit_code(),
        }
    }
}

impl Ignore {
    /// Parses `ID=REASON`.
    pub(crate) fn parse(s: &str) -> Result<Self, AuditError> {
        match s.split_once('=') {
            Some((id, reason)) if !id.trim().is_empty() && !reason.trim().is_empty() => Ok(Self {
                id: id.trim().to_string(),
                reason: reason.trim().to_string(),
            }),
            _ => Err(AuditError::IgnoreWithoutReason(s.to_string())),
        }
    }
}

#[derive(Deserialize)]
struct ApiRelease {
    #[serde(default)]
    urls: Vec<ApiFile>,
    #[serde(default)]
    vulnerabilities: Vec<ApiVulnerability>,
}

#[derive(Deserialize)]
struct ApiFile {
    filename: String,
    #[serde(default)]
    yanked: bool,
    #[serde(default)]
    yanked_reason: Option<String>,
}

#[derive(Deserialize)]
struct ApiVulnerability {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    fixed_in: Vec<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
}

/// A known vulnerability of a pinned version.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Vulnerability {
    /// The advisory id (`GHSA-…`, `PYSEC-…`).
    pub id: String,
    /// Other ids, such as the CVE.
    pub aliases: Vec<String>,
    /// One line about it.
    pub summary: String,
    /// Versions that fix it.
    pub fixed_in: Vec<String>,
    /// Where to read more.
    pub link: Option<String>,
    /// The reason given with `--ignore`, when accepted.
    pub ignored: Option<String>,
}

/// One pinned wheel's audit.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PackageAudit {
    /// Normalized project name.
    pub package: String,
    /// Pinned version.
    pub version: String,
    /// Pinned file.
    pub file: String,
    /// Yanked on the index.
    pub yanked: bool,
    /// The yank reason.
    pub yanked_reason: Option<String>,
    /// Known, not withdrawn, vulnerabilities.
    pub vulnerabilities: Vec<Vulnerability>,
}

/// The pinned CPython's support status.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PythonStatus {
    /// `X.Y.Z`.
    pub version: String,
    /// End of life, `YYYY-MM`, when known.
    pub end_of_life: Option<String>,
    /// The last release with Windows binaries, once the branch ships source only.
    pub last_windows_binaries: Option<String>,
    /// Warnings for the reader.
    pub warnings: Vec<String>,
}

/// What `extpy audit` found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuditReport {
    /// The manifest.
    pub manifest: String,
    /// CPython.
    pub python: PythonStatus,
    /// Every pinned wheel.
    pub packages: Vec<PackageAudit>,
    /// Findings that fail the audit (vulnerabilities not ignored, yanked pins).
    pub findings: usize,
    /// `--ignore` entries that matched nothing.
    pub unused_ignores: Vec<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// What an audit needs.
#[derive(Debug, Clone)]
pub(crate) struct AuditInputs {
    /// The manifest.
    pub manifest: Manifest,
    /// Sources (the JSON API lives beside the Simple API).
    pub sources: Sources,
    /// HTTP settings.
    pub net: NetOptions,
    /// Parallel requests.
    pub jobs: usize,
    /// Accepted risks.
    pub ignores: Vec<Ignore>,
    /// Today as (year, month), for the CPython support status.
    pub today: (i32, u32),
}

/// The JSON API URL of one release.
pub(crate) fn release_url(sources: &Sources, project: &str, version: &str) -> Url {
    sources
        .index_url
        .join(&format!("../pypi/{project}/{version}/json"))
        .unwrap_or_else(|_| sources.index_url.clone())
}

/// Audits every pinned wheel and the CPython.
pub(crate) fn audit(inputs: &AuditInputs, reporter: &Reporter) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    let m = &inputs.manifest;
    let client = Client::new(inputs.net.clone(), reporter.clone())?;
    let results: Vec<Result<PackageAudit, AuditError>> =
        crate::parallel(inputs.jobs, &m.wheels, |w| {
            let project = w.filename.normalized_name();
            let version = w.filename.version.clone();
            let url = release_url(&inputs.sources, &project, &version);
            let page = client
                .get_page(&url, "application/json")
                .map_err(|e| match e.root() {
                    NetError::Status { status, .. } if status.as_u16() == 404 => AuditError::Api {
                        url: url.clone(),
                        reason: format!("the index knows no release {project} {version} (404)"),
                    },
                    _ => AuditError::Net(e),
                })?;
            let release: ApiRelease =
                serde_json::from_slice(&page.body).map_err(|e| AuditError::Api {
                    url: url.clone(),
                    reason: format!("not a JSON API release document: {e}"),
                })?;
            let file = release.urls.iter().find(|f| f.filename == w.artifact.file);
            let vulnerabilities = release
                .vulnerabilities
                .into_iter()
                .filter(|v| v.withdrawn.is_none())
                .map(|v| {
                    let ignored = inputs
                        .ignores
                        .iter()
                        .find(|i| i.id == v.id || v.aliases.contains(&i.id))
                        .map(|i| i.reason.clone());
                    Vulnerability {
                        summary: v
                            .summary
                            .or(v.details)
                            .and_then(|s| s.lines().next().map(|l| ascii(l.trim())))
                            .unwrap_or_default(),
                        id: v.id,
                        aliases: v.aliases,
                        fixed_in: v.fixed_in,
                        link: v.link,
                        ignored,
                    }
                })
                .collect();
            Ok(PackageAudit {
                package: project,
                version,
                file: w.artifact.file.clone(),
                yanked: file.is_some_and(|f| f.yanked),
                yanked_reason: file.and_then(|f| f.yanked_reason.clone()),
                vulnerabilities,
            })
        });
    let packages: Vec<PackageAudit> = results.into_iter().collect::<Result<_, _>>()?;
    let findings = packages
        .iter()
        .map(|p| {
            usize::from(p.yanked)
                + p.vulnerabilities
                    .iter()
                    .filter(|v| v.ignored.is_none())
                    .count()
        })
        .sum();
    let unused_ignores = inputs
        .ignores
        .iter()
        .filter(|i| {
            !packages.iter().any(|p| {
                p.vulnerabilities
                    .iter()
                    .any(|v| v.id == i.id || v.aliases.contains(&i.id))
            })
        })
        .map(|i| i.id.clone())
        .collect();
    Ok(AuditReport {
        manifest: m.identity(),
        python: python_status(m.python, inputs.today),
        packages,
        findings,
        unused_ignores,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// The last release with Windows binaries and the month it came out.
type LastBinaries = Option<(&'static str, &'static str)>;

/// CPython branches: (minor, end of life, last release with Windows binaries and its month).
/// From the release schedules (PEP 596, 619, 664, 693, 719, 745); a branch ships Windows
/// binaries only in its bugfix phase, source-only security releases after that.
const BRANCHES: &[(u8, &str, LastBinaries)] = &[
    (8, "2024-10", Some(("3.8.10", "2021-05"))),
    (9, "2025-10", Some(("3.9.13", "2022-05"))),
    (10, "2026-10", Some(("3.10.11", "2023-04"))),
    (11, "2027-10", Some(("3.11.9", "2024-04"))),
    (12, "2028-10", Some(("3.12.10", "2025-04"))),
    (13, "2029-10", None),
    (14, "2030-10", None),
];

/// The support status of CPython `v` as of `today` (year, month).
pub(crate) fn python_status(v: PythonVersion, today: (i32, u32)) -> PythonStatus {
    let now = format!("{:04}-{:02}", today.0, today.1);
    let branch = BRANCHES
        .iter()
        .find(|(minor, ..)| *minor == v.minor && v.major == 3);
    let mut warnings = Vec::new();
    let (eol, last) = match branch {
        Some((_, eol, last)) => (Some(eol.to_string()), *last),
        None if v.minor < 8 => {
            warnings.push(format!(
                "CPython {}.{} is past its end of life",
                v.major, v.minor
            ));
            (None, None)
        }
        None => (None, None),
    };
    if let Some(eol) = &eol
        && *eol <= now
    {
        warnings.push(format!(
            "CPython {}.{} reached its end of life in {eol}: it gets no security fixes at all; move to a supported version (extpy lock --python X.Y.Z)",
            v.major, v.minor
        ));
    }
    if let Some((last_binary, since)) = last {
        warnings.push(format!(
            "CPython {}.{} gets security fixes as source only since {since}: {last_binary} is the last release with Windows binaries (an embeddable zip), so fixes made after it do not reach this distribution",
            v.major, v.minor
        ));
    }
    PythonStatus {
        version: v.to_string(),
        end_of_life: eol,
        last_windows_binaries: last.map(|(l, _)| l.to_string()),
        warnings,
    }
}

/// Today's (year, month) from the system clock (UTC).
pub(crate) fn today() -> (i32, u32) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
        / 86_400;
    let (y, m, _) = crate::job::bundle::civil_from_days(days as i64);
    (y as i32, u32::from(m))
}

impl AuditReport {
    /// The table of findings and a summary line.
    pub(crate) fn render(&self) -> String {
        let mut rows: Vec<[String; 5]> = Vec::new();
        for p in &self.packages {
            let fix = format!("extpy lock --upgrade-package {}", p.package);
            if p.yanked {
                rows.push([
                    format!("{} {}", p.package, p.version),
                    "yanked".into(),
                    p.yanked_reason
                        .clone()
                        .unwrap_or_else(|| "no reason given".into()),
                    "-".into(),
                    fix.clone(),
                ]);
            }
            for v in &p.vulnerabilities {
                let mut ids = vec![v.id.clone()];
                ids.extend(v.aliases.iter().cloned());
                let fixed = if v.fixed_in.is_empty() {
                    "no fix yet".to_string()
                } else {
                    v.fixed_in.join(", ")
                };
                rows.push([
                    format!("{} {}", p.package, p.version),
                    ids.join(" "),
                    match &v.ignored {
                        Some(r) => format!("ignored: {r}"),
                        None => v.summary.clone(),
                    },
                    fixed,
                    if v.ignored.is_some() {
                        "-".into()
                    } else {
                        fix.clone()
                    },
                ]);
            }
        }
        let mut s = String::new();
        if !rows.is_empty() {
            s.push_str(&crate::model::topology::render_table(
                &["package", "advisory", "summary", "fixed in", "fix"],
                &rows,
            ));
        }
        for i in &self.unused_ignores {
            s.push_str(&format!(
                "note: --ignore {i} matched no advisory of the pins\n"
            ));
        }
        let summary = if self.findings == 0 {
            "no known vulnerabilities or yanked pins".to_string()
        } else {
            format!(
                "{} affected",
                crate::base::report::plural(self.findings, "finding")
            )
        };
        s.push_str(&format!(
            "{} audited ({}): {summary}\n",
            crate::base::report::plural(self.packages.len(), "pinned wheel"),
            self.manifest
        ));
        s
    }

    /// Findings by package, for the failure message.
    pub(crate) fn affected(&self) -> BTreeMap<String, usize> {
        self.packages
            .iter()
            .map(|p| {
                (
                    p.package.clone(),
                    usize::from(p.yanked)
                        + p.vulnerabilities
                            .iter()
                            .filter(|v| v.ignored.is_none())
                            .count(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_support_status() {
        let v = |s: &str| s.parse::<PythonVersion>().unwrap();
        let s = python_status(v("3.12.10"), (2026, 11));
        assert_eq!(s.last_windows_binaries.as_deref(), Some("3.12.10"));
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("source only since 2025-04"));
        let s = python_status(v("3.10.11"), (2026, 11));
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("end of life in 2026-10"))
        );
        let s = python_status(v("3.14.1"), (2026, 11));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn ignore_needs_a_reason() {
        assert!(Ignore::parse("GHSA-1=not reachable").is_ok());
        assert!(Ignore::parse("GHSA-1").is_err());
        assert!(Ignore::parse("GHSA-1=").is_err());
    }
}

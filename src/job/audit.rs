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
use crate::mechanism::sigstore::Identity;
use crate::model::manifest::{Manifest, PythonVersion, describe_pin, serialize_pin};

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
    /// The publisher the manifest pins (`fetch` and `build` verify it), or `"none"`.
    #[serde(serialize_with = "serialize_pin")]
    pub provenance: Option<Identity>,
}

/// The embeddable CPython and the publisher the manifest pins for it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmbeddableAudit {
    /// The zip's file name.
    pub file: String,
    /// The publisher the manifest pins, or `"none"`.
    #[serde(serialize_with = "serialize_pin")]
    pub provenance: Option<Identity>,
}

/// The pinned CPython's support status.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PythonStatus {
    /// `X.Y.Z`.
    pub version: String,
    /// Where its line stands: bugfix, security_only, end_of_life or unknown.
    pub support: Support,
    /// The release-schedule PEP of its line, when known.
    pub pep: Option<String>,
    /// The month its line's bugfix phase (Windows binaries) ends or ended, `YYYY-MM`.
    pub bugfix_until: Option<String>,
    /// End of life, `YYYY-MM`, when known.
    pub end_of_life: Option<String>,
    /// The last release with Windows binaries, once the branch ships source only.
    pub last_windows_binaries: Option<String>,
    /// The line to move to (the newest in its bugfix phase), when this one has no binaries.
    pub upgrade_to: Option<String>,
    /// The shipped manifest of that line, when there is one.
    pub upgrade_manifest: Option<String>,
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
    /// The embeddable zip and its publisher.
    pub embeddable: EmbeddableAudit,
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
                provenance: w.artifact.provenance.clone(),
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
        embeddable: EmbeddableAudit {
            file: m.embeddable.file.clone(),
            provenance: m.embeddable.provenance.clone(),
        },
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

/// One CPython line's schedule, from its release-schedule PEP.
struct Branch {
    /// `Y` of `3.Y`.
    minor: u8,
    /// The PEP that sets the schedule.
    pep: u16,
    /// The month of its `3.Y.0`, `YYYY-MM`.
    released: &'static str,
    /// The month of the last bugfix release (the last one with Windows binaries), `YYYY-MM`:
    /// the month it came out for a finished phase, the schedule's planned end otherwise.
    bugfix_until: &'static str,
    /// End of life, `YYYY-MM`.
    end_of_life: &'static str,
    /// The last release with Windows binaries, once known (the phase is over).
    last_binaries: Option<&'static str>,
}

/// CPython lines and their schedules. A line ships Windows binaries (an embeddable zip) only
/// in its bugfix phase and source-only security releases after that, until its end of life.
/// Sources: PEP 569 (3.8), PEP 596 (3.9), PEP 619 (3.10), PEP 664 (3.11), PEP 693 (3.12:
/// 3.12.10 of 2025-04 the last bugfix release, end of life 2028-10), PEP 719 (3.13: 3.13.0 of
/// 2024-10, bugfix releases for about two years, to 2026-10; end of life 2029-10), PEP 745
/// (3.14: 3.14.0 of 2025-10, bugfix releases to 2027-10, end of life 2030-10). The last
/// release with binaries is recorded only for a phase that has ended and whose final bugfix
/// release the PEP names; the newest release of a line in its bugfix phase has them.
const BRANCHES: &[Branch] = &[
    Branch {
        minor: 8,
        pep: 569,
        released: "2019-10",
        bugfix_until: "2021-05",
        end_of_life: "2024-10",
        last_binaries: Some("3.8.10"),
    },
    Branch {
        minor: 9,
        pep: 596,
        released: "2020-10",
        bugfix_until: "2022-05",
        end_of_life: "2025-10",
        last_binaries: Some("3.9.13"),
    },
    Branch {
        minor: 10,
        pep: 619,
        released: "2021-10",
        bugfix_until: "2023-04",
        end_of_life: "2026-10",
        last_binaries: Some("3.10.11"),
    },
    Branch {
        minor: 11,
        pep: 664,
        released: "2022-10",
        bugfix_until: "2024-04",
        end_of_life: "2027-10",
        last_binaries: Some("3.11.9"),
    },
    Branch {
        minor: 12,
        pep: 693,
        released: "2023-10",
        bugfix_until: "2025-04",
        end_of_life: "2028-10",
        last_binaries: Some("3.12.10"),
    },
    Branch {
        minor: 13,
        pep: 719,
        released: "2024-10",
        bugfix_until: "2026-10",
        end_of_life: "2029-10",
        last_binaries: None,
    },
    Branch {
        minor: 14,
        pep: 745,
        released: "2025-10",
        bugfix_until: "2027-10",
        end_of_life: "2030-10",
        last_binaries: None,
    },
];

/// Where a CPython line stands in its support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Support {
    /// Bugfix releases, each with Windows binaries.
    Bugfix,
    /// Source-only security releases: no new Windows binaries.
    SecurityOnly,
    /// No fixes at all.
    EndOfLife,
    /// Not a line this extpy knows the schedule of.
    Unknown,
}

impl Support {
    fn describe(self) -> &'static str {
        match self {
            Support::Bugfix => "bugfix releases (with Windows binaries)",
            Support::SecurityOnly => "security fixes only, as source (no new Windows binaries)",
            Support::EndOfLife => "end of life (no fixes at all)",
            Support::Unknown => "support status unknown",
        }
    }
}

/// The line to move to: the newest one in its bugfix phase as of `now`.
fn upgrade_line(v: PythonVersion, now: &str) -> Option<&'static Branch> {
    BRANCHES
        .iter()
        .filter(|b| b.minor > v.minor && b.released <= now && now <= b.bugfix_until)
        .max_by_key(|b| b.minor)
}

/// The support status of CPython `v` as of `today` (year, month).
pub(crate) fn python_status(v: PythonVersion, today: (i32, u32)) -> PythonStatus {
    let now = format!("{:04}-{:02}", today.0, today.1);
    let branch = BRANCHES.iter().find(|b| b.minor == v.minor && v.major == 3);
    let line = format!("{}.{}", v.major, v.minor);
    let mut warnings = Vec::new();
    let support = match branch {
        Some(b) if b.end_of_life <= now.as_str() => Support::EndOfLife,
        Some(b) if b.bugfix_until < now.as_str() => Support::SecurityOnly,
        Some(_) => Support::Bugfix,
        None if v.major == 3 && v.minor < 8 => Support::EndOfLife,
        None => Support::Unknown,
    };
    match (support, branch) {
        (Support::EndOfLife, Some(b)) => warnings.push(format!(
            "CPython {line} reached its end of life in {} (PEP {}): it gets no security fixes at all",
            b.end_of_life, b.pep
        )),
        (Support::EndOfLife, None) => {
            warnings.push(format!("CPython {line} is past its end of life"))
        }
        (Support::SecurityOnly, Some(b)) => warnings.push(match b.last_binaries {
            Some(last) => format!(
                "CPython {line} gets security fixes as source only since {} (PEP {}): {last} is the last release with Windows binaries (an embeddable zip), so fixes made after it do not reach this distribution",
                b.bugfix_until, b.pep
            ),
            None => format!(
                "CPython {line} gets security fixes as source only since {} (PEP {}): its last release with Windows binaries is not recorded in this extpy; fixes made after it do not reach this distribution",
                b.bugfix_until, b.pep
            ),
        }),
        (Support::Unknown, _) => warnings.push(format!(
            "extpy does not know the support schedule of CPython {line}: check its release-schedule PEP"
        )),
        _ => {}
    }
    let upgrade = if matches!(support, Support::SecurityOnly | Support::EndOfLife) {
        upgrade_line(v, &now)
    } else {
        None
    };
    let upgrade_manifest = upgrade.and_then(|b| {
        let file = format!("manifests/python-3.{}-win-amd64.yaml", b.minor);
        SHIPPED_MANIFESTS.contains(&file.as_str()).then_some(file)
    });
    if let Some(b) = upgrade {
        warnings.push(format!(
            "upgrade: CPython 3.{} has bugfix releases with Windows binaries until {} (PEP {}; it needs Windows 10 / Server 2016 or later): {}",
            b.minor,
            b.bugfix_until,
            b.pep,
            match &upgrade_manifest {
                Some(f) => format!(
                    "start from {f} and pin the line's newest release in it with `extpy lock --python 3.{}.Z`",
                    b.minor
                ),
                None => format!("pin its newest release with `extpy lock --python 3.{}.Z`", b.minor),
            }
        ));
    }
    PythonStatus {
        version: v.to_string(),
        support,
        pep: branch.map(|b| format!("PEP {}", b.pep)),
        bugfix_until: branch.map(|b| b.bugfix_until.to_string()),
        end_of_life: branch.map(|b| b.end_of_life.to_string()),
        last_windows_binaries: branch.and_then(|b| b.last_binaries).map(str::to_string),
        upgrade_to: upgrade.map(|b| format!("3.{}", b.minor)),
        upgrade_manifest,
        warnings,
    }
}

/// The manifests this repository ships (an upgrade is suggested from them), each with its
/// embeddable zip's sha256 checked against the SBOM python.org publishes beside the zip.
const SHIPPED_MANIFESTS: &[&str] = &[
    "manifests/python-3.12-win-amd64.yaml",
    "manifests/python-3.13-win-amd64.yaml",
    "manifests/python-3.14-win-amd64.yaml",
];

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

impl PythonStatus {
    /// One line: the CPython, its support status with the dates, and what to move to.
    fn render(&self) -> String {
        let mut s = format!("CPython {}: {}", self.version, self.support.describe());
        let mut dates = Vec::new();
        if let Some(b) = &self.bugfix_until {
            dates.push(match self.support {
                Support::Bugfix => format!("bugfix until {b}"),
                _ => format!("bugfix ended {b}"),
            });
        }
        if let Some(e) = &self.end_of_life {
            dates.push(format!("end of life {e}"));
        }
        if let Some(p) = &self.pep {
            dates.push(p.clone());
        }
        if !dates.is_empty() {
            s.push_str(&format!(" ({})", dates.join(", ")));
        }
        if let Some(l) = &self.last_windows_binaries {
            s.push_str(&format!("; last release with Windows binaries: {l}"));
        }
        if let Some(u) = &self.upgrade_to {
            s.push_str(&format!("; upgrade to {u}"));
            if let Some(m) = &self.upgrade_manifest {
                s.push_str(&format!(" ({m})"));
            }
        }
        s.push('\n');
        s
    }
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
        s.push_str(&self.render_publishers());
        s.push_str(&self.python.render());
        s.push_str(&format!(
            "{} audited ({}): {summary}\n",
            crate::base::report::plural(self.packages.len(), "pinned wheel"),
            self.manifest
        ));
        s
    }

    /// Every artifact with the publisher the manifest pins, and how many pin none: what
    /// `--require-provenance` would refuse.
    fn render_publishers(&self) -> String {
        let mut rows = vec![[
            self.embeddable.file.clone(),
            describe_pin(&self.embeddable.provenance),
        ]];
        rows.extend(
            self.packages
                .iter()
                .map(|p| [p.file.clone(), describe_pin(&p.provenance)]),
        );
        let none = std::iter::once(&self.embeddable.provenance)
            .chain(self.packages.iter().map(|p| &p.provenance))
            .filter(|p| p.is_none())
            .count();
        let mut s = crate::model::topology::render_table(&["artifact", "publisher"], &rows);
        if none > 0 {
            s.push_str(&format!(
                "{} of {} pin no publisher (provenance: none): nothing proves who published {}; `--require-provenance` refuses {}\n",
                none,
                crate::base::report::plural(rows.len(), "artifact"),
                if none == 1 { "it" } else { "them" },
                if none == 1 { "it" } else { "them" },
            ));
        }
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

    fn v(s: &str) -> PythonVersion {
        s.parse().unwrap()
    }

    #[test]
    fn a_security_only_line_names_its_last_binaries_and_the_line_to_move_to() {
        let s = python_status(v("3.12.10"), (2026, 11));
        assert_eq!(s.support, Support::SecurityOnly);
        assert_eq!(s.pep.as_deref(), Some("PEP 693"));
        assert_eq!(s.bugfix_until.as_deref(), Some("2025-04"));
        assert_eq!(s.end_of_life.as_deref(), Some("2028-10"));
        assert_eq!(s.last_windows_binaries.as_deref(), Some("3.12.10"));
        // 3.13's bugfix phase ended 2026-10 (PEP 719): 3.14 is the line with binaries.
        assert_eq!(s.upgrade_to.as_deref(), Some("3.14"));
        assert_eq!(
            s.upgrade_manifest.as_deref(),
            Some("manifests/python-3.14-win-amd64.yaml")
        );
        assert!(
            s.warnings[0].contains("source only since 2025-04"),
            "{:?}",
            s.warnings
        );
        assert!(
            s.warnings[1].contains(
                "start from manifests/python-3.14-win-amd64.yaml and pin the line's newest release in it with `extpy lock --python 3.14.Z`"
            ),
            "{:?}",
            s.warnings
        );
        let line = s.render();
        assert_eq!(
            line,
            "CPython 3.12.10: security fixes only, as source (no new Windows binaries) (bugfix ended 2025-04, end of life 2028-10, PEP 693); last release with Windows binaries: 3.12.10; upgrade to 3.14 (manifests/python-3.14-win-amd64.yaml)\n"
        );
        // Before 3.13's bugfix phase ended, 3.14 was already the newest line to move to.
        assert_eq!(
            python_status(v("3.12.10"), (2026, 1)).upgrade_to.as_deref(),
            Some("3.14")
        );
        // Before 3.14.0 (2025-10), 3.13 was.
        assert_eq!(
            python_status(v("3.12.10"), (2025, 6)).upgrade_to.as_deref(),
            Some("3.13")
        );
    }

    #[test]
    fn every_shipped_manifest_is_known_and_pins_its_line() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk: Vec<String> = std::fs::read_dir(root.join("manifests"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with("python-"))
            .map(|f| format!("manifests/{f}"))
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, SHIPPED_MANIFESTS);
        for file in SHIPPED_MANIFESTS {
            let m = crate::model::manifest::Manifest::load(&root.join(file)).unwrap();
            let line = format!("3.{}", m.python.minor);
            assert!(file.contains(&format!("python-{line}-")), "{file}");
            assert!(
                m.python
                    .embed_files(m.platform)
                    .contains(&m.embeddable.file),
                "{file}"
            );
        }
    }

    #[test]
    fn a_line_in_its_bugfix_phase_needs_no_upgrade() {
        let s = python_status(v("3.14.1"), (2026, 11));
        assert_eq!(s.support, Support::Bugfix);
        assert_eq!(s.pep.as_deref(), Some("PEP 745"));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.upgrade_to, None);
        assert!(s.render().contains("bugfix releases (with Windows binaries) (bugfix until 2027-10, end of life 2030-10, PEP 745)"));
        // 3.13 is in bugfix until 2026-10 and security-only after (PEP 719).
        assert_eq!(
            python_status(v("3.13.5"), (2026, 10)).support,
            Support::Bugfix
        );
        let s = python_status(v("3.13.5"), (2026, 11));
        assert_eq!(s.support, Support::SecurityOnly);
        assert_eq!(
            s.last_windows_binaries, None,
            "not recorded: no PEP names it"
        );
        assert!(s.warnings[0].contains("not recorded"), "{:?}", s.warnings);
        assert_eq!(s.upgrade_to.as_deref(), Some("3.14"));
    }

    #[test]
    fn an_end_of_life_line_says_so_and_points_to_a_supported_line() {
        let s = python_status(v("3.10.11"), (2026, 11));
        assert_eq!(s.support, Support::EndOfLife);
        assert!(
            s.warnings[0].contains("end of life in 2026-10 (PEP 619)"),
            "{:?}",
            s.warnings
        );
        assert_eq!(s.upgrade_to.as_deref(), Some("3.14"));
        assert!(
            s.render()
                .starts_with("CPython 3.10.11: end of life (no fixes at all)")
        );
        // A line older than the table is past its end of life, without dates.
        let s = python_status(v("3.7.9"), (2026, 11));
        assert_eq!(s.support, Support::EndOfLife);
        assert_eq!(s.end_of_life, None);
        // When no line is in its bugfix phase any more, nothing is suggested.
        let s = python_status(v("3.12.10"), (2031, 1));
        assert_eq!(s.support, Support::EndOfLife);
        assert_eq!(s.upgrade_to, None);
    }

    #[test]
    fn an_unknown_line_is_not_guessed() {
        let s = python_status(v("3.15.0"), (2026, 11));
        assert_eq!(s.support, Support::Unknown);
        assert_eq!(
            (&s.pep, &s.end_of_life, &s.upgrade_to),
            (&None, &None, &None)
        );
        assert!(s.warnings[0].contains("does not know the support schedule of CPython 3.15"));
        assert_eq!(s.render(), "CPython 3.15.0: support status unknown\n");
    }

    #[test]
    fn ignore_needs_a_reason() {
        assert!(Ignore::parse("GHSA-1=not reachable").is_ok());
        assert!(Ignore::parse("GHSA-1").is_err());
        assert!(Ignore::parse("GHSA-1=").is_err());
    }
}

//! What other commands read of a doctor run: per host, whether downloads from it can work, the
//! verdict in words and the certificate to trust. One type serves a live run and a saved
//! `extpy doctor --json`, so the runbook never walks JSON by key names.

use serde::Deserialize;

use super::DoctorReport;

/// The hosts of a doctor run, as much as a runbook needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DoctorSummary {
    /// One entry per host, in the run's order.
    pub hosts: Vec<HostSummary>,
}

/// One host of a doctor run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HostSummary {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// True when downloads from it can work.
    pub ok: bool,
    /// The verdict.
    #[serde(default)]
    pub verdict: Option<VerdictSummary>,
    /// What to do.
    #[serde(default)]
    pub fix: Option<FixSummary>,
}

/// A verdict in words.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VerdictSummary {
    /// One line.
    pub summary: String,
}

/// The part of a fix a runbook shows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FixSummary {
    /// The certificate to trust, when trusting one is the fix.
    #[serde(default)]
    pub certificate: Option<CertSummary>,
}

/// A certificate to trust.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CertSummary {
    /// Its short name.
    pub name: String,
    /// SHA-256 of its DER bytes, lowercase hex.
    pub sha256: String,
    /// The file name without extension that `--export` writes.
    #[serde(default = "root_stem")]
    pub file_stem: String,
}

fn root_stem() -> String {
    "root".into()
}

/// The document as read, so that a JSON file without `hosts` gets its own message.
#[derive(Deserialize)]
struct Saved {
    hosts: Option<Vec<HostSummary>>,
}

impl DoctorSummary {
    /// Reads a saved `extpy doctor --json` document.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let saved: Saved = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a saved `extpy doctor --json` report: {e}"))?;
        let hosts = saved
            .hosts
            .ok_or("it has no `hosts` list: not an `extpy doctor --json` report")?;
        Ok(Self { hosts })
    }
}

impl From<&DoctorReport> for DoctorSummary {
    fn from(report: &DoctorReport) -> Self {
        let hosts = report
            .hosts
            .iter()
            .map(|h| HostSummary {
                host: h.host.clone(),
                port: h.port,
                ok: h.ok,
                verdict: Some(VerdictSummary {
                    summary: h.verdict.summary.clone(),
                }),
                fix: h.fix.as_ref().map(|f| FixSummary {
                    certificate: f.certificate.as_ref().map(|c| CertSummary {
                        name: c.name.clone(),
                        sha256: c.sha256.clone(),
                        file_stem: c.file_stem.clone(),
                    }),
                }),
            })
            .collect();
        Self { hosts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_report_reads_into_the_summary() {
        let doc = br#"{"command": "doctor", "ok": false, "notes": [], "hosts": [
            {"host": "files.example.com", "port": 443, "ok": false, "roles": ["index"],
             "verdict": {"kind": "unknown_issuer", "summary": "not trusted", "explanation": "x"},
             "fix": {"summary": "trust it", "commands": [], "notes": [],
                     "certificate": {"name": "Corp Root", "sha256": "ab12", "file_stem": "corp-root",
                                     "role": "root", "origin": "presented", "subject": "CN=Corp Root"}}},
            {"host": "pypi.example", "port": 8443, "ok": true}
        ]}"#;
        let s = DoctorSummary::parse(doc).unwrap();
        assert_eq!(s.hosts.len(), 2);
        let cert = s.hosts[0]
            .fix
            .as_ref()
            .unwrap()
            .certificate
            .as_ref()
            .unwrap();
        assert_eq!(cert.file_stem, "corp-root");
        assert_eq!(s.hosts[0].verdict.as_ref().unwrap().summary, "not trusted");
        assert_eq!(
            (s.hosts[1].port, s.hosts[1].ok, &s.hosts[1].fix),
            (8443, true, &None)
        );
    }

    #[test]
    fn a_document_that_is_not_a_report_says_so() {
        let e = DoctorSummary::parse(br#"{"hello": 1}"#).unwrap_err();
        assert!(e.contains("it has no `hosts` list"), "{e}");
        let e = DoctorSummary::parse(b"{").unwrap_err();
        assert!(
            e.contains("not a saved `extpy doctor --json` report"),
            "{e}"
        );
        let e = DoctorSummary::parse(br#"{"hosts": [{"port": 443, "ok": true}]}"#).unwrap_err();
        assert!(e.contains("missing field `host`"), "{e}");
    }
}

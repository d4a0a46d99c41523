//! A download that failed on TLS, explained: each host concerned is diagnosed once, and the
//! error names its verdict (the cause and the fix) instead of the generic TLS message.

use super::{Doctor, DoctorOptions, DoctorReport, Target};
use crate::base::report::Reporter;
use crate::job::fetch::{ArtifactError, FetchError};
use crate::mechanism::net::NetError;

/// A failure that may have been TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure<'a> {
    /// A fetch failed.
    Fetch(&'a FetchError),
    /// A request outside a fetch failed.
    Net(&'a NetError),
}

/// The failure in words, with the diagnosis of every host whose TLS failed.
#[derive(Debug)]
pub(crate) struct Explained {
    /// The error with each TLS failure replaced by its host's verdict.
    pub message: String,
    /// The diagnosis of each host concerned.
    pub report: DoctorReport,
}

/// Diagnoses the hosts whose TLS failed (none: `None`, the error speaks for itself).
pub(crate) fn explain(failure: Failure, options: DoctorOptions) -> Option<Explained> {
    let mut targets: Vec<Target> = Vec::new();
    for url in tls_failures(&failure) {
        if let Some(t) = Target::from_url(url, "download")
            && !targets.iter().any(|x| x.authority() == t.authority())
        {
            targets.push(t);
        }
    }
    if targets.is_empty() {
        return None;
    }
    let doctor = Doctor::new(options, &Reporter::silent()).ok()?;
    let report = doctor.diagnose_all(&targets);
    Some(Explained {
        message: tls_message(&failure, &report),
        report,
    })
}

/// The URLs whose TLS failed, in the order of the failures.
fn tls_failures<'a>(failure: &Failure<'a>) -> Vec<&'a url::Url> {
    fn tls_url(n: &NetError) -> Option<&url::Url> {
        match n.root() {
            NetError::Tls { url, .. } => Some(url),
            _ => None,
        }
    }
    match *failure {
        Failure::Fetch(FetchError::Artifacts(failures)) => failures
            .iter()
            .filter_map(|f| f.net().and_then(tls_url))
            .collect(),
        Failure::Fetch(FetchError::Net(n)) | Failure::Net(n) => tls_url(n).into_iter().collect(),
        Failure::Fetch(_) => Vec::new(),
    }
}

/// The error with each TLS failure replaced by its host's verdict.
fn tls_message(failure: &Failure, report: &DoctorReport) -> String {
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
    match *failure {
        Failure::Fetch(FetchError::Artifacts(failures)) if failures.len() == 1 => {
            line(&failures[0])
        }
        Failure::Fetch(FetchError::Artifacts(failures)) => {
            let (messages, advice) =
                crate::mechanism::net::proxy::shared_advice(failures.iter().map(line).collect());
            let mut s = format!("{} artifacts could not be fetched:", failures.len());
            for m in messages {
                s.push_str("\n- ");
                s.push_str(&m.replace('\n', "\n  "));
            }
            s.push_str(advice.as_deref().unwrap_or(""));
            s
        }
        Failure::Fetch(FetchError::Net(n)) | Failure::Net(n) => {
            verdict_for(n).unwrap_or_else(|| n.to_string())
        }
        Failure::Fetch(other) => other.to_string(),
    }
}

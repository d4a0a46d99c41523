//! `extpy doctor`: capture the chain a server presents, verify it against each trust source,
//! classify the cause, and advise the fix.
//!
//! Decide first, then act: every host becomes a [`Diagnosis`], plain data that the human
//! report, `--json`, and the failure reports of `fetch` and `build` all read.

pub(crate) mod chain;
pub(crate) mod connect;
pub(crate) mod explain;
pub(crate) mod fix;
pub mod render;
pub(crate) mod summary;
pub(crate) mod target;
pub(crate) mod verdict;
pub(crate) mod verify;

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use serde::Serialize;
use url::Url;

use crate::base::report::Reporter;
use crate::job::source::Sources;
use crate::mechanism::fsio::at;
use crate::mechanism::net::{Client, NetOptions};
use crate::model::manifest::{ArtifactKind, Manifest};
use crate::parallel;

use chain::{CertInfo, Chain};
use connect::{Connect, Dns, Handshake, ProxyInfo, Reached};
pub use fix::{Advice, Fix};
pub use target::{DoctorError, Target};
pub use verdict::Verdict;
use verdict::{Facts, classify, clock_hint, duration_words};
use verify::{TrustCheck, TrustSources};

/// A `--resolve HOST:PORT:ADDR[,ADDR…]` override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    /// The host name.
    pub host: String,
    /// The port it applies to.
    pub port: u16,
    /// The addresses to use instead of DNS.
    pub addrs: Vec<IpAddr>,
}

impl std::str::FromStr for Resolve {
    type Err = DoctorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| DoctorError::Resolve {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let (host, rest) = s.split_once(':').ok_or_else(|| bad("it has no PORT"))?;
        let (port, addrs) = rest.split_once(':').ok_or_else(|| bad("it has no ADDR"))?;
        if host.is_empty() {
            return Err(bad("HOST is empty"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("{port:?} is not a port number")))?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                let a = a.trim().trim_start_matches('[').trim_end_matches(']');
                a.parse::<IpAddr>()
                    .map_err(|_| bad(&format!("{a:?} is not an IP address")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            host: host.to_string(),
            port,
            addrs,
        })
    }
}

/// What a diagnosis needs.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Extra roots, timeout (and the probe's client settings).
    pub net: NetOptions,
    /// `--resolve` overrides.
    pub resolve: Vec<Resolve>,
    /// The command named in advice, and `--export`.
    pub advice: Advice,
    /// Hosts diagnosed at once.
    pub jobs: usize,
}

/// The verdict with its words, as the JSON document carries it.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictDoc {
    /// The verdict (`kind` and its fields).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// One line.
    pub summary: String,
    /// Why, in a few sentences.
    pub explanation: String,
}

impl VerdictDoc {
    /// The verdict with its words.
    pub fn new(verdict: Verdict) -> Self {
        Self {
            summary: verdict.summary(),
            explanation: verdict.explanation(),
            verdict,
        }
    }
}

/// The HTTP probe of one real URL, made with extpy's own client once TLS is trusted.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The URL requested.
    pub url: String,
    /// The final HTTP status.
    pub status: Option<u16>,
    /// Each redirect target, in order.
    pub redirects: Vec<String>,
    /// The URL that gave the final status.
    pub final_url: Option<String>,
    /// The announced length.
    pub content_length: Option<u64>,
    /// The server's `Date`, RFC 3339.
    pub server_date: Option<String>,
    /// The server's clock minus this machine's, in seconds.
    pub clock_skew_s: Option<i64>,
    /// Milliseconds the request took.
    pub ms: f64,
    /// Why it got no HTTP answer.
    pub error: Option<String>,
}

/// Everything learnt about one host.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The URL probed.
    pub url: String,
    /// What the host is to extpy.
    pub roles: Vec<String>,
    /// True when downloads from it can work.
    pub ok: bool,
    /// The cause, in words.
    pub verdict: VerdictDoc,
    /// The proxy, from the same resolution the downloads use, and where it came from.
    pub proxy: ProxyInfo,
    /// Name resolution.
    pub dns: Option<Dns>,
    /// The TCP connection.
    pub connect: Option<Connect>,
    /// The TLS handshake.
    pub tls: Option<Handshake>,
    /// The certificates the server presented, leaf first.
    pub chain: Vec<CertInfo>,
    /// The chain against each trust source.
    pub trust: Vec<TrustCheck>,
    /// What to do.
    pub fix: Option<Fix>,
    /// The HTTP probe.
    pub probe: Option<ProbeReport>,
    /// Remarks that are not the verdict (a certificate expiring soon, unneeded certificates).
    pub notes: Vec<String>,
}

/// Every host of one run.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// One diagnosis per host.
    pub hosts: Vec<Diagnosis>,
    /// Remarks about the run (a file host that could not be found).
    pub notes: Vec<String>,
}

impl DoctorReport {
    /// True when every host is fine.
    pub fn ok(&self) -> bool {
        self.hosts.iter().all(|h| h.ok)
    }

    /// How many hosts failed.
    pub fn failed(&self) -> usize {
        self.hosts.iter().filter(|h| !h.ok).count()
    }
}

/// A diagnosis run: the trust sources and the probe's client, built once.
pub struct Doctor {
    options: DoctorOptions,
    sources: TrustSources,
    client: Result<Client, String>,
}

impl Doctor {
    /// Prepares the trust sources and the HTTP client for probes.
    pub fn new(mut options: DoctorOptions, reporter: &Reporter) -> Result<Self, DoctorError> {
        if let Some(dir) = &options.advice.export {
            std::fs::create_dir_all(dir).map_err(at(dir, "cannot create the export folder"))?;
        }
        options.net.resolve = options
            .resolve
            .iter()
            .filter_map(|r| {
                r.addrs
                    .first()
                    .map(|ip| (r.host.clone(), SocketAddr::new(*ip, r.port)))
            })
            .collect();
        let sources = TrustSources::new(&options.net.extra_roots);
        let client = Client::new(options.net.clone(), reporter.clone()).map_err(|e| e.to_string());
        Ok(Self {
            options,
            sources,
            client,
        })
    }

    /// Diagnoses every target (in parallel, results in order).
    pub fn diagnose_all(&self, targets: &[Target]) -> DoctorReport {
        let mut hosts = parallel(self.options.jobs, targets, |t| self.diagnose(t));
        share_clock_skew(&mut hosts);
        DoctorReport {
            hosts,
            notes: Vec::new(),
        }
    }

    /// Diagnoses the hosts the sources use: the python mirror, the index, any explicit URL
    /// of the manifest, then the file host(s) the index points to.
    pub fn diagnose_sources(&self, manifest: &Manifest, sources: &Sources) -> DoctorReport {
        let mut targets: Vec<Target> = Vec::new();
        let embeddable = sources.embeddable_url(manifest);
        add_target(&mut targets, Target::from_url(&embeddable, "python mirror"));
        let first_wheel = manifest
            .artifacts()
            .find(|a| a.kind == ArtifactKind::Wheel && a.url.is_none());
        if let Some(w) = first_wheel {
            let project = w.project.as_deref().unwrap_or(&w.file);
            add_target(
                &mut targets,
                Target::from_url(&sources.project_page(project), "index"),
            );
        }
        for a in manifest.artifacts() {
            if let Some(url) = &a.url {
                add_target(&mut targets, Target::from_url(url, "manifest url"));
            }
        }
        let mut report = self.diagnose_all(&targets);
        let Some(wheel) = first_wheel else {
            return report;
        };
        let index_ok = report
            .hosts
            .iter()
            .any(|h| h.roles.iter().any(|r| r == "index") && h.ok);
        if !index_ok {
            report.notes.push(
                "the file host(s) the index points to are unknown until the index can be reached"
                    .into(),
            );
            return report;
        }
        let located = match &self.client {
            Ok(client) => sources
                .locate(client, manifest, wheel)
                .map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
        };
        match located {
            Ok(found) => {
                let Some(files) = Target::from_url(&found.url, "files") else {
                    return report;
                };
                if let Some((i, _)) = targets
                    .iter()
                    .enumerate()
                    .find(|(_, t)| t.same_endpoint(&files))
                {
                    report.hosts[i].roles.push("files".into());
                } else {
                    let mut more = self.diagnose_all(std::slice::from_ref(&files));
                    report.hosts.append(&mut more.hosts);
                    share_clock_skew(&mut report.hosts);
                }
            }
            Err(why) => report.notes.push(format!(
                "could not find the file host from the index page of {}: {}",
                wheel.file,
                why.lines().next().unwrap_or("")
            )),
        }
        report
    }

    /// Diagnoses one host.
    pub fn diagnose(&self, target: &Target) -> Diagnosis {
        let proxy = ProxyInfo::from_config(&self.options.net.proxy, &target.url);
        let resolve: Vec<(String, u16, Vec<IpAddr>)> = self
            .options
            .resolve
            .iter()
            .map(|r| (r.host.clone(), r.port, r.addrs.clone()))
            .collect();
        let reached = connect::reach(target, &proxy, &resolve, self.options.net.timeout);
        let chain = Chain::parse(&reached.presented);
        let trust = if chain.certs.is_empty() {
            Vec::new()
        } else {
            self.sources.check(&chain, &target.server_name())
        };
        let mut verdict = self.verdict(target, &proxy, &reached, &chain, &trust);
        let mut probe = None;
        if verdict.ok() {
            let p = self.probe(target);
            if let Some(error) = &p.error {
                verdict = Verdict::ProbeFailed {
                    url: p.url.clone(),
                    error: error.lines().next().unwrap_or("").to_string(),
                };
            }
            probe = Some(p);
        }
        let fix = fix::fix_for(
            &verdict,
            target,
            &chain,
            &self.sources,
            &self.options.advice,
        );
        let mut notes = chain_notes(&chain, now_secs(), &verdict);
        if let Some(auto) = &proxy.auto_config
            && matches!(
                verdict,
                Verdict::DnsFailed { .. } | Verdict::ConnectFailed { .. }
            )
        {
            notes.push(format!("{}\n{}", auto.summary(), auto.help(&target.url)));
        }
        if let Some(status) = probe.as_ref().and_then(|p| p.status)
            && status >= 400
            && target.roles.iter().any(|r| r != "argument")
        {
            notes.push(format!(
                "TLS is fine, but {} answered HTTP {status}: check the {} URL",
                target.url,
                target.roles.join(" / ")
            ));
        }
        Diagnosis {
            host: target.host.clone(),
            port: target.port,
            url: target.url.to_string(),
            roles: target.roles.clone(),
            ok: verdict.ok(),
            verdict: VerdictDoc::new(verdict),
            proxy,
            dns: reached.dns,
            connect: reached.connect,
            tls: reached.handshake,
            chain: chain.certs,
            trust,
            fix,
            probe,
            notes,
        }
    }

    /// The verdict and fix for a chain that another client's handshake captured (a mail
    /// server's, after STARTTLS), judged with the same trust sources and the same rules;
    /// `error` is why that handshake failed.
    pub fn judge(
        &self,
        target: &Target,
        presented: &[CertificateDer<'static>],
        error: &str,
    ) -> (VerdictDoc, Option<Fix>) {
        let chain = Chain::parse(presented);
        let failed = || Verdict::HandshakeFailed {
            reason: error.to_string(),
        };
        let verdict = if chain.certs.is_empty() {
            failed()
        } else {
            let trust = self.sources.check(&chain, &target.server_name());
            let verdict = classify(&self.facts(target, &chain, &trust));
            if verdict.ok() { failed() } else { verdict }
        };
        let fix = fix::fix_for(
            &verdict,
            target,
            &chain,
            &self.sources,
            &self.options.advice,
        );
        (VerdictDoc::new(verdict), fix)
    }

    fn verdict(
        &self,
        target: &Target,
        proxy: &ProxyInfo,
        reached: &Reached,
        chain: &Chain,
        trust: &[TrustCheck],
    ) -> Verdict {
        if let Some(v) = reach_failure(target, proxy, reached) {
            return v;
        }
        if !target.tls {
            return Verdict::PlainHttp;
        }
        let handshake_error = reached.handshake.as_ref().and_then(|h| {
            h.error.as_ref().map(|e| {
                if h.not_tls {
                    Verdict::NotTls {
                        answer: h.answer.clone(),
                    }
                } else {
                    Verdict::HandshakeFailed { reason: e.clone() }
                }
            })
        });
        if chain.certs.is_empty() {
            return handshake_error.unwrap_or(Verdict::HandshakeFailed {
                reason: "the server presented no certificate".into(),
            });
        }
        let facts = self.facts(target, chain, trust);
        let from_chain = classify(&facts);
        match handshake_error {
            // The chain was seen before the handshake failed: a certificate problem comes
            // first, else the handshake failure is the cause.
            Some(h) if from_chain.ok() => h,
            _ => from_chain,
        }
    }

    fn facts<'a>(
        &self,
        target: &'a Target,
        chain: &'a Chain,
        trust: &'a [TrustCheck],
    ) -> Facts<'a> {
        let name_covered = chain.leaf().is_none_or(|leaf| {
            match rustls::server::ParsedCertificate::try_from(leaf.der()) {
                Ok(parsed) => {
                    rustls::client::verify_server_name(&parsed, &target.server_name()).is_ok()
                }
                Err(_) => true,
            }
        });
        let top = chain.top();
        let top_issuer_known = top.is_some_and(|t| {
            !t.self_signed
                && (self.sources.public_root(&t.issuer_raw).is_some()
                    || self.sources.extra_knows(&t.issuer_raw))
        });
        let public_root = top.and_then(|t| {
            if chain.root_presented() {
                Some(t.name.clone())
            } else {
                self.sources
                    .public_root(&t.issuer_raw)
                    .map(|r| r.name.clone())
            }
        });
        Facts {
            host: &target.host,
            chain,
            checks: trust,
            name_covered,
            top_issuer_known,
            public_root,
            now: now_secs(),
            skew: None,
        }
    }

    fn probe(&self, target: &Target) -> ProbeReport {
        let started = Instant::now();
        let mut report = ProbeReport {
            url: target.url.to_string(),
            status: None,
            redirects: Vec::new(),
            final_url: None,
            content_length: None,
            server_date: None,
            clock_skew_s: None,
            ms: 0.0,
            error: None,
        };
        let result = match &self.client {
            Ok(client) => client.probe(&target.url).map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
        };
        report.ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
        match result {
            Ok(p) => {
                report.status = Some(p.status.as_u16());
                report.redirects = p.redirects.iter().map(Url::to_string).collect();
                report.final_url = Some(p.url.to_string());
                report.content_length = p.content_length;
                if let Some(date) = p.date {
                    let secs = unix(date);
                    report.server_date = Some(chain::rfc3339(secs));
                    report.clock_skew_s = Some(secs - now_secs());
                }
            }
            Err(e) => report.error = Some(e),
        }
        report
    }
}

/// The verdict for a host that could not be reached (DNS, TCP, proxy), if so.
fn reach_failure(target: &Target, proxy: &ProxyInfo, reached: &Reached) -> Option<Verdict> {
    if let Some(dns) = &reached.dns
        && let Some(error) = &dns.error
    {
        return Some(if proxy.used {
            Verdict::ProxyFailed {
                proxy: proxy.shown(),
                answer: None,
                error: format!("cannot resolve the proxy's name {}: {error}", dns.name),
            }
        } else {
            Verdict::DnsFailed {
                name: target.host.clone(),
                error: error.clone(),
            }
        });
    }
    let connect = reached.connect.as_ref()?;
    let error = connect.error.as_ref()?;
    Some(if proxy.used {
        Verdict::ProxyFailed {
            proxy: proxy.shown(),
            answer: connect.proxy_answer.clone(),
            error: error.clone(),
        }
    } else {
        Verdict::ConnectFailed {
            address: connect.address.clone(),
            error: error.clone(),
        }
    })
}

/// Remarks about a chain beyond its verdict.
fn chain_notes(chain: &Chain, now: i64, verdict: &Verdict) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(leaf) = chain.leaf()
        && leaf.error.is_none()
        && !matches!(
            verdict,
            Verdict::Expired { .. } | Verdict::NotYetValid { .. }
        )
    {
        let left = leaf.validity().1 - now;
        if (0..14 * 86_400).contains(&left) {
            notes.push(format!(
                "the server's certificate expires in {} ({})",
                duration_words(left),
                leaf.not_after
            ));
        }
    }
    let strays = chain.strays();
    if !strays.is_empty() {
        let names: Vec<String> = strays
            .iter()
            .map(|&i| format!("#{i} \"{}\"", chain.certs[i].name))
            .collect();
        notes.push(format!(
            "the server also sent certificates that are not on the path from its own: {} (unneeded, or sent in the wrong order)",
            names.join(", ")
        ));
    }
    notes
}

/// A clock skew seen by one probe explains dates on every host of the run.
fn share_clock_skew(hosts: &mut [Diagnosis]) {
    let Some(skew) = hosts
        .iter()
        .filter_map(|h| h.probe.as_ref()?.clock_skew_s)
        .find(|s| s.abs() > 300)
    else {
        return;
    };
    for h in hosts.iter_mut() {
        let hint = match &mut h.verdict.verdict {
            Verdict::Expired {
                clock_hint: hint, ..
            } => Some((hint, true)),
            Verdict::NotYetValid {
                clock_hint: hint, ..
            } => Some((hint, false)),
            _ => None,
        };
        if let Some((hint, expired)) = hint {
            *hint = clock_hint(now_secs(), 0, Some(skew), expired);
            h.verdict = VerdictDoc::new(h.verdict.verdict.clone());
        } else if h.ok && h.probe.as_ref().and_then(|p| p.clock_skew_s) == Some(skew) {
            h.notes.push(format!(
                "this machine's clock and the server's differ by {}",
                duration_words(skew.abs())
            ));
        }
    }
}

fn add_target(targets: &mut Vec<Target>, target: Option<Target>) {
    let Some(t) = target else { return };
    match targets.iter_mut().find(|x| x.same_endpoint(&t)) {
        Some(existing) => {
            for r in t.roles {
                if !existing.roles.contains(&r) {
                    existing.roles.push(r);
                }
            }
        }
        None => targets.push(t),
    }
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn now_secs() -> i64 {
    unix(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_hosts_ports_and_urls() {
        let t = Target::parse("files.example.com").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("files.example.com", 443, true)
        );
        assert_eq!(t.url.as_str(), "https://files.example.com/");
        let t = Target::parse("127.0.0.1:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8443));
        assert_eq!(t.authority(), "127.0.0.1:8443");
        let t = Target::parse("https://[::1]:9000/simple/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert_eq!(t.authority(), "[::1]:9000");
        let t = Target::parse("http://mirror.example/python/").unwrap();
        assert_eq!((t.port, t.tls), (80, false));
        for bad in ["", "ftp://x.example/", "https://", "a b", "host:notaport"] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolve_overrides() {
        let r: Resolve = "files.example.com:443:127.0.0.1".parse().unwrap();
        assert_eq!(r.host, "files.example.com");
        assert_eq!(r.port, 443);
        assert_eq!(r.addrs, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        let r: Resolve = "h.example:8443:[::1],10.0.0.5".parse().unwrap();
        assert_eq!(r.addrs.len(), 2);
        for bad in [
            "h.example",
            "h.example:443",
            "h.example:x:1.2.3.4",
            ":443:1.2.3.4",
            "h:443:nope",
        ] {
            assert!(bad.parse::<Resolve>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn targets_are_merged_by_endpoint() {
        let mut targets = Vec::new();
        let a = Url::parse("https://m.example/python/3.12.10/x.zip").unwrap();
        let b = Url::parse("https://M.example:443/simple/msal/").unwrap();
        let c = Url::parse("https://m.example:8443/simple/").unwrap();
        add_target(&mut targets, Target::from_url(&a, "python mirror"));
        add_target(&mut targets, Target::from_url(&b, "index"));
        add_target(&mut targets, Target::from_url(&c, "index"));
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].roles, vec!["python mirror", "index"]);
        assert_eq!(targets[0].url, a, "the first role's URL is probed");
    }
}

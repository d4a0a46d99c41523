//! The human report of a diagnosis: one verdict line per host, the detail indented under it.

use super::chain::CertInfo;
use super::verify::Source;
use super::{Diagnosis, DoctorReport};

/// How much of a diagnosis to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Every step, every certificate in full (`extpy doctor`).
    Full,
    /// The verdict, the chain one line per certificate, and the fix (after a failed fetch).
    Brief,
}

const INDENT: &str = "      ";

/// The whole report: each host, then one summary line.
pub fn report(r: &DoctorReport) -> String {
    let mut out = String::new();
    for (i, h) in r.hosts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&host(h, Detail::Full));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let failed = r.failed();
    let total = r.hosts.len();
    out.push('\n');
    out.push_str(&match (failed, total) {
        (0, 1) => "1 host checked: ok\n".to_string(),
        (0, n) => format!("{n} hosts checked: all ok\n"),
        (f, n) => format!(
            "{n} host{} checked: {f} failed\n",
            if n == 1 { "" } else { "s" }
        ),
    });
    out
}

/// One host: the verdict line, then its detail.
pub fn host(d: &Diagnosis, detail: Detail) -> String {
    let mut out = String::new();
    let mark = if d.ok { "OK" } else { "FAIL" };
    out.push_str(&format!(
        "{mark:<5} {}  {}\n",
        authority(d),
        d.verdict.summary
    ));
    let field = |out: &mut String, name: &str, value: &str| {
        let mut lines = value.lines();
        out.push_str(&format!(
            "{INDENT}{name:<10} {}\n",
            lines.next().unwrap_or("")
        ));
        for l in lines {
            out.push_str(&format!("{INDENT}{:<10} {l}\n", ""));
        }
    };
    if detail == Detail::Full {
        field(&mut out, "url", &d.url);
        if !d.roles.is_empty() && d.roles != ["argument"] {
            field(&mut out, "serves", &d.roles.join(", "));
        }
        field(&mut out, "proxy", &proxy_line(d));
        if let Some(dns) = &d.dns {
            field(&mut out, "dns", &dns_line(dns));
        }
        if let Some(c) = &d.connect {
            field(&mut out, "connect", &connect_line(c));
        }
        if let Some(t) = &d.tls {
            field(&mut out, "tls", &tls_line(t));
        }
    }
    if !d.chain.is_empty() {
        field(
            &mut out,
            "chain",
            &format!(
                "{} certificate{} presented",
                d.chain.len(),
                if d.chain.len() == 1 { "" } else { "s" }
            ),
        );
        for c in &d.chain {
            out.push_str(&cert_block(c, detail));
        }
    }
    if detail == Detail::Full && !d.trust.is_empty() {
        let lines: Vec<String> = d.trust.iter().map(trust_line).collect();
        field(&mut out, "trust", &lines.join("\n"));
    }
    if !d.ok
        || detail == Detail::Full && matches!(d.verdict.verdict, super::Verdict::Trusted { .. })
    {
        field(&mut out, "why", &sentences(&d.verdict.explanation));
    }
    if let Some(fix) = &d.fix {
        let mut text = sentences(&fix.summary);
        if let Some(c) = &fix.certificate {
            text.push_str(&format!(
                "\ncertificate \"{}\" ({}), sha256 {}",
                c.name,
                c.role.replace('_', "-"),
                c.sha256
            ));
            if let (Some(pem), Some(cer)) = (&c.pem, &c.cer) {
                text.push_str(&format!(
                    "\nexported  {}\n          {}",
                    pem.display(),
                    cer.display()
                ));
            }
            if let Some(e) = &c.export_error {
                text.push_str(&format!("\nnot exported: {e}"));
            }
        }
        for cmd in &fix.commands {
            text.push_str(&format!("\n{}:\n  {}", cmd.label, cmd.command));
        }
        for n in &fix.notes {
            text.push('\n');
            text.push_str(&sentences(&format!("note: {n}")));
        }
        field(&mut out, "fix", &text);
    }
    if detail == Detail::Full {
        match &d.probe {
            Some(p) => field(&mut out, "probe", &probe_text(p)),
            None if d.tls.is_some() || d.connect.is_some() => {
                field(&mut out, "probe", "not made: the connection is not trusted")
            }
            None => {}
        }
    }
    for n in &d.notes {
        field(&mut out, "note", &sentences(n));
    }
    out
}

fn authority(d: &Diagnosis) -> String {
    if d.host.contains(':') {
        format!("[{}]:{}", d.host, d.port)
    } else {
        format!("{}:{}", d.host, d.port)
    }
}

fn proxy_line(d: &Diagnosis) -> String {
    let p = &d.proxy;
    if p.url.is_none()
        && let Some(auto) = &p.auto_config
    {
        return auto.summary();
    }
    match (&p.url, p.bypassed) {
        (None, _) if cfg!(windows) => {
            "none (not in the environment, the user registry or WinHTTP)".into()
        }
        (None, _) => "none (HTTPS_PROXY is not set)".into(),
        (Some(_), true) => format!("{}, bypassed: its bypass list names this host", p.shown()),
        (Some(_), false) => format!("{}, used", p.shown()),
    }
}

fn dns_line(dns: &super::Dns) -> String {
    let addrs = dns.addresses.join(", ");
    match (dns.source, &dns.error) {
        (_, Some(e)) => format!("{}: failed: {e}", dns.name),
        ("literal", _) => format!("{addrs} (an IP address, no lookup)"),
        ("resolve", _) => format!("{addrs} (from --resolve, no lookup)"),
        ("proxy", _) => format!(
            "the proxy resolves the host; the proxy {} is {addrs}",
            dns.name
        ),
        _ => format!("{addrs} in {} ms", dns.ms),
    }
}

fn connect_line(c: &super::Connect) -> String {
    let via = if c.via_proxy {
        " (the proxy, then a CONNECT tunnel)"
    } else {
        ""
    };
    let mut s = match (&c.error, &c.address) {
        (Some(e), _) => format!("failed: {e}"),
        (None, Some(a)) => format!("{a}{via} in {} ms", c.ms),
        (None, None) => "ok".into(),
    };
    for f in &c.failed {
        s.push_str(&format!("\nfailed first: {f}"));
    }
    s
}

fn tls_line(t: &super::Handshake) -> String {
    if let Some(e) = &t.error {
        return format!("failed after {} ms: {e}", t.ms);
    }
    let parts: Vec<&str> = [&t.version, &t.cipher, &t.key_exchange]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    let alpn = t
        .alpn
        .as_ref()
        .map(|a| format!(", ALPN {a}"))
        .unwrap_or_default();
    format!("{}{alpn} in {} ms", parts.join(", "), t.ms)
}

fn cert_block(c: &CertInfo, detail: Detail) -> String {
    let pad = format!("{INDENT}  ");
    let mut kind = Vec::new();
    if c.self_signed {
        kind.push(if c.ca {
            "root, self-signed"
        } else {
            "self-signed"
        });
    } else if c.ca {
        kind.push("CA");
    }
    let kind = if kind.is_empty() {
        String::new()
    } else {
        format!(" ({})", kind.join(", "))
    };
    if let Some(e) = &c.error {
        return format!("{pad}#{} {e}\n{pad}   sha256   {}\n", c.position, c.sha256);
    }
    if detail == Detail::Brief {
        return format!(
            "{pad}#{} \"{}\"{kind}, issued by \"{}\", sha256 {}\n",
            c.position,
            c.name,
            c.issuer_name,
            &c.sha256[..16.min(c.sha256.len())]
        );
    }
    let mut s = format!("{pad}#{} {}{kind}\n", c.position, c.name);
    let line = |s: &mut String, k: &str, v: &str| s.push_str(&format!("{pad}   {k:<9}{v}\n"));
    line(&mut s, "subject", &c.subject);
    line(&mut s, "issuer", &c.issuer);
    if !c.names.is_empty() {
        line(&mut s, "names", &c.names.join(", "));
    }
    line(
        &mut s,
        "valid",
        &format!("{} to {}", c.not_before, c.not_after),
    );
    line(&mut s, "key", &c.key);
    line(&mut s, "sha256", &c.sha256);
    for u in &c.ca_issuers {
        line(&mut s, "issuer at", u);
    }
    s
}

fn trust_line(t: &super::TrustCheck) -> String {
    let what = match t.source {
        Source::System => "this machine".to_string(),
        Source::Mozilla => "Mozilla roots".to_string(),
        Source::Extra => "extra roots".to_string(),
    };
    let detail = match t.source {
        Source::Extra => format!(" ({})", t.label),
        _ => String::new(),
    };
    if t.ok {
        format!("{what:<14} trusted{detail}")
    } else {
        format!(
            "{what:<14} not trusted: {}{detail}",
            t.message.as_deref().unwrap_or("no reason given")
        )
    }
}

fn probe_text(p: &super::ProbeReport) -> String {
    if let Some(e) = &p.error {
        return format!("GET {}\nfailed: {e}", p.url);
    }
    let mut s = format!("GET {}", p.url);
    for r in &p.redirects {
        s.push_str(&format!("\n-> {r}"));
    }
    let status = p.status.map(|s| s.to_string()).unwrap_or_default();
    let reason = p
        .status
        .and_then(|s| reqwest::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let len = p
        .content_length
        .map(|l| format!(", {} ({l} bytes)", crate::base::report::human_bytes(l)))
        .unwrap_or_default();
    s.push_str(&format!("\n{status} {reason}{len} in {} ms", p.ms));
    if let Some(skew) = p.clock_skew_s
        && skew.abs() > 300
    {
        s.push_str(&format!(
            "\nthe server's clock differs from this machine's by {}",
            super::verdict::duration_words(skew.abs())
        ));
    }
    s
}

/// One sentence per line: prose stays readable without wrapping words, so that every
/// phrase can still be found with grep in a log.
pub fn sentences(text: &str) -> String {
    text.replace(". ", ".\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sentence_per_line() {
        assert_eq!(
            sentences("One. Two, 2.5 MiB. Three"),
            "One.\nTwo, 2.5 MiB.\nThree"
        );
    }
}

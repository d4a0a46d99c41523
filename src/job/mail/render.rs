//! The human report of a mail check: one verdict line per check, the detail under it.

use crate::model::manifest::RuntimeTrust;

use super::check::{Check, MailReport, Step};
use super::runtime::{Comparison, RuntimeReport};
use super::verdict::MailFix;

const INDENT: &str = "      ";

/// The whole report: each check, the notes, then one summary line.
pub(crate) fn report(r: &MailReport, verbose: bool) -> String {
    let mut out = String::new();
    for (i, c) in r.checks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&check(c, r.counts(c), verbose));
    }
    if !r.servers.is_empty() {
        out.push('\n');
    }
    for s in &r.servers {
        let mark = if s.ok { "OK" } else { "FAIL" };
        out.push_str(&format!("{mark:<5} server {}  {}\n", s.server, s.summary));
    }
    out.push_str(&runtime(&r.runtime_trust));
    for n in r.notes.iter().chain(&r.runtime_trust.notes) {
        out.push_str(&format!("note: {n}\n"));
    }
    let failed = r.failed();
    let total = r.checks.len();
    out.push('\n');
    out.push_str(&match failed {
        0 => format!("{total} mail checks: all ok"),
        f => format!("{total} mail checks: {f} failed"),
    });
    let rejected = r.runtime_trust.endpoints.iter().filter(|e| !e.ok).count();
    match r.runtime_trust.ok {
        Some(true) => out.push_str("; CEM's Python trusts every endpoint\n"),
        Some(false) => out.push_str(&format!(
            "; CEM's Python would not trust {rejected} of {} endpoints\n",
            r.runtime_trust.endpoints.len()
        )),
        None => out.push('\n'),
    }
    out
}

/// The run-time trust comparison: which bundle, then one line per endpoint.
fn runtime(r: &RuntimeReport) -> String {
    let mut out = String::new();
    if !r.compared {
        return out;
    }
    let what = match (r.trust, &r.bundle) {
        (Some(RuntimeTrust::System), _) => {
            "the system certificate store (runtime_trust: system, truststore)".to_string()
        }
        (_, Some(b)) => {
            let n = r.bundle_certificates.unwrap_or(0);
            format!(
                "certifi{}'s bundle {b} ({n} certificate{})",
                r.certifi_version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default(),
                if n == 1 { "" } else { "s" }
            )
        }
        _ => "nothing".to_string(),
    };
    out.push_str(&format!(
        "\nruntime trust of {}: CEM's Python verifies TLS against {what}\n",
        r.distribution.as_deref().unwrap_or("?")
    ));
    let mut fixes_shown: Vec<&str> = Vec::new();
    for e in &r.endpoints {
        let mark = match e.kind {
            Comparison::Trusted => "OK",
            Comparison::NotCaptured => "?",
            _ => "FAIL",
        };
        out.push_str(&format!(
            "{mark:<5} trust  {} {}  {}\n",
            e.role, e.endpoint, e.summary
        ));
        if let Some(f) = &e.fix {
            if fixes_shown.contains(&f.summary.as_str()) {
                field(&mut out, "fix", "as above");
            } else {
                fixes_shown.push(&f.summary);
                field(&mut out, "fix", &fix_text(f));
            }
        }
    }
    out
}

/// One check: the verdict line, then its detail (the session only when it failed, or -v).
/// A failed check that does not count (an `auto` server passed on its other path) is
/// marked `-`.
pub(crate) fn check(c: &Check, counts: bool, verbose: bool) -> String {
    let mut out = String::new();
    let mark = match (c.ok, counts) {
        (true, _) => "OK",
        (false, true) => "FAIL",
        (false, false) => "-",
    };
    let subject = match (&c.step, &c.queue) {
        (Step::Token, Some(q)) => format!("{} ({q})", c.server),
        (Step::Token, None) => c.server.clone(),
        (_, Some(q)) => q.clone(),
        (_, None) => c.server.clone(),
    };
    out.push_str(&format!(
        "{mark:<5} {:<5}  {subject}  {}\n",
        c.step.label(),
        c.verdict.summary
    ));
    field(&mut out, "endpoint", &c.endpoint);
    field(&mut out, "protocol", c.protocol);
    if let Some(t) = &c.token {
        let who = match &t.account {
            Some(a) => format!(" as {a}"),
            None => String::new(),
        };
        field(
            &mut out,
            "grant",
            &format!(
                "{}{who}, client {}, tenant {} (secrets from {})",
                t.grant,
                t.client_id,
                t.tenant,
                t.secret_variables.join(", ")
            ),
        );
        if let Some(cl) = &t.claims {
            let perms = if cl.roles.is_empty() && cl.scopes.is_empty() {
                "none".to_string()
            } else {
                cl.roles
                    .iter()
                    .chain(&cl.scopes)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut line = format!(
                "tenant {}, app {}",
                cl.tenant.as_deref().unwrap_or("?"),
                cl.app_id.as_deref().unwrap_or("?")
            );
            if let Some(u) = &cl.user {
                line.push_str(&format!(", user {u}"));
            }
            line.push_str(&format!(", permissions {perms}"));
            if let Some(e) = &t.expires {
                line.push_str(&format!(", expires {e}"));
            }
            field(&mut out, "claims", &format!("{line} (unverified)"));
        }
        if let Some(e) = &t.claims_error {
            field(&mut out, "claims", e);
        }
    }
    if !c.ok {
        field(&mut out, "why", &c.verdict.explanation);
    }
    if let Some(f) = &c.fix {
        field(&mut out, "fix", &fix_text(f));
    }
    for n in &c.notes {
        field(&mut out, "note", n);
    }
    if (verbose || !c.ok) && !c.transcript.is_empty() {
        field(&mut out, "session", &c.transcript.join("\n"));
    }
    out
}

/// A detail under a verdict line: its name, then its lines indented.
fn field(out: &mut String, name: &str, value: &str) {
    let mut lines = value.lines();
    out.push_str(&format!(
        "{INDENT}{name:<9} {}\n",
        lines.next().unwrap_or("")
    ));
    for l in lines {
        out.push_str(&format!("{INDENT}{:<9} {l}\n", ""));
    }
}

/// A fix: its sentence, then one `- step` line each.
fn fix_text(f: &MailFix) -> String {
    let mut text = f.summary.clone();
    for s in &f.steps {
        text.push_str(&format!("\n- {s}"));
    }
    text
}

//! The human report of a mail check: one verdict line per check, the detail under it.

use super::check::{Check, MailReport, Step};

const INDENT: &str = "      ";

/// The whole report: each check, the notes, then one summary line.
pub fn report(r: &MailReport, verbose: bool) -> String {
    let mut out = String::new();
    for (i, c) in r.checks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&check(c, verbose));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let failed = r.failed();
    let total = r.checks.len();
    out.push('\n');
    out.push_str(&match failed {
        0 => format!("{total} mail checks: all ok\n"),
        f => format!("{total} mail checks: {f} failed\n"),
    });
    out
}

/// One check: the verdict line, then its detail (the session only when it failed, or -v).
pub fn check(c: &Check, verbose: bool) -> String {
    let mut out = String::new();
    let mark = if c.ok { "OK" } else { "FAIL" };
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
    let field = |out: &mut String, name: &str, value: &str| {
        let mut lines = value.lines();
        out.push_str(&format!(
            "{INDENT}{name:<9} {}\n",
            lines.next().unwrap_or("")
        ));
        for l in lines {
            out.push_str(&format!("{INDENT}{:<9} {l}\n", ""));
        }
    };
    field(&mut out, "endpoint", &c.endpoint);
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
        let mut text = f.summary.clone();
        for s in &f.steps {
            text.push_str(&format!("\n- {s}"));
        }
        field(&mut out, "fix", &text);
    }
    for n in &c.notes {
        field(&mut out, "note", n);
    }
    if (verbose || !c.ok) && !c.transcript.is_empty() {
        field(&mut out, "session", &c.transcript.join("\n"));
    }
    out
}

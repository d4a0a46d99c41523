//! `extpy mail check` against a local identity provider, a local IMAP/SMTP server and a
//! local Microsoft Graph (TLS with a test CA): every scenario gives its verdict and its fix,
//! and no secret (client secret, password, access token) ever appears in stdout, stderr,
//! the --json document or any file the run leaves.

use std::path::PathBuf;

use serde_json::Value;
use support::mail::{App, Directory, Exchange, Mailbox, Microsoft, User};
use support::{Ca, Run, extpy, run};

const TENANT: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
const OTHER_TENANT: &str = "9a8b7c6d-0000-4000-8000-00000000abcd";
const APP: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
const OUT_APP: &str = "6ba7b812-9dad-11d1-80b4-00c04fd430c8";
const UNKNOWN_APP: &str = "00000000-1111-2222-3333-444444444444";
const SECRET: &str = "Qx8~SecretValue.For-Tests_0123456789";
const OUT_SECRET: &str = "Zz9~OutgoingSecret.For-Tests_987654";
const PASSWORD: &str = "Corr3ct-Horse-Battery!Staple";
const SUPPORT: &str = "support@contoso.example.com";
const SALES: &str = "sales@contoso.example.com";

/// One setup of directory, mailboxes and topology.
struct Scenario {
    directory: Directory,
    exchange: Exchange,
    tenant: String,
    client_id: String,
    user_server: bool,
    outgoing: bool,
    env: Vec<(&'static str, String)>,
    args: Vec<String>,
    /// IMAP/SMTP present a certificate from a CA the test does not trust.
    mail_untrusted: bool,
    /// `protocol:` of the incoming servers (None: not written, so auto).
    in_protocol: Option<&'static str>,
    /// `protocol:` of the outgoing server (None: not written, so auto).
    out_protocol: Option<&'static str>,
}

fn good() -> Scenario {
    Scenario {
        directory: Directory {
            tenant: TENANT.into(),
            domain: "contoso.example.com".into(),
            apps: vec![
                App {
                    client_id: APP.into(),
                    secret: SECRET.into(),
                    expired: false,
                    consented: true,
                    roles: vec!["IMAP.AccessAsApp".into(), "SMTP.SendAsApp".into()],
                    scopes: vec!["IMAP.AccessAsUser.All".into(), "SMTP.Send".into()],
                    // The vendor's OAuth Service guide: Mail.ReadWrite, Mail.Send.
                    graph_roles: vec!["Mail.ReadWrite".into(), "Mail.Send".into()],
                    graph_scopes: vec!["Mail.ReadWrite".into(), "Mail.Send".into()],
                },
                App {
                    client_id: OUT_APP.into(),
                    secret: OUT_SECRET.into(),
                    expired: false,
                    consented: true,
                    roles: vec!["SMTP.SendAsApp".into()],
                    scopes: vec![],
                    graph_roles: vec!["Mail.Send".into()],
                    graph_scopes: vec![],
                },
            ],
            users: vec![User {
                name: SALES.into(),
                password: PASSWORD.into(),
                mfa: false,
            }],
            html: false,
            hang: false,
            wrong_audience: false,
            propagating: 0,
            app_requests: Default::default(),
        },
        exchange: Exchange {
            mailboxes: vec![
                Mailbox {
                    address: SUPPORT.into(),
                    apps: vec![APP.into(), OUT_APP.into()],
                    users: vec![],
                    smtp_auth: true,
                    messages: 42,
                    rest_enabled: true,
                    policy_excludes: vec![],
                    rbac_excludes: vec![],
                },
                Mailbox {
                    address: SALES.into(),
                    apps: vec![APP.into(), OUT_APP.into()],
                    users: vec![SALES.into()],
                    smtp_auth: true,
                    messages: 7,
                    rest_enabled: true,
                    policy_excludes: vec![],
                    rbac_excludes: vec![],
                },
            ],
            imap_hangs: false,
            smtp_tenant_disabled: false,
            security_defaults: false,
        },
        tenant: TENANT.into(),
        client_id: APP.into(),
        user_server: false,
        outgoing: true,
        env: vec![
            ("EXTPY_TEST_MAIL_SECRET", SECRET.into()),
            ("EXTPY_TEST_MAIL_OUTGOING", OUT_SECRET.into()),
            ("EXTPY_TEST_SALES_PASSWORD", PASSWORD.into()),
        ],
        args: vec![],
        mail_untrusted: false,
        in_protocol: Some("imap"),
        out_protocol: Some("smtp"),
    }
}

/// The good setup on the path the vendor's OAuth Service guide describes: Graph both ways.
fn graph_good() -> Scenario {
    let mut s = good();
    s.in_protocol = Some("graph");
    s.out_protocol = Some("graph");
    s
}

impl Scenario {
    fn topology(&self) -> String {
        let mut t = format!(
            "schema: 1\nsystem: Mail test\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\nmail:\n  incoming:\n    - name: M365 Service\n      tenant: {}\n      auth: oauth_service\n      client_id: {}\n      secret_env: EXTPY_TEST_MAIL_SECRET\n",
            self.tenant, self.client_id
        );
        let in_protocol = self
            .in_protocol
            .map(|p| format!("      protocol: {p}\n"))
            .unwrap_or_default();
        t.push_str(&in_protocol);
        if self.user_server {
            t.push_str(&format!(
                "    - name: M365 Users\n      tenant: {}\n      auth: oauth_user\n      client_id: {}\n{in_protocol}",
                self.tenant, self.client_id
            ));
        }
        if self.outgoing {
            t.push_str(&format!(
                "  outgoing:\n    tenant: {}\n    auth: oauth_service\n    server_user: {OUT_APP}\n    password_env: EXTPY_TEST_MAIL_OUTGOING\n",
                self.tenant
            ));
            if let Some(p) = self.out_protocol {
                t.push_str(&format!("    protocol: {p}\n"));
            }
        }
        t.push_str(&format!(
            "  queues:\n    - address: {SUPPORT}\n      account: {SUPPORT}\n      server: M365 Service\n"
        ));
        if self.user_server {
            t.push_str(&format!(
                "    - address: {SALES}\n      account: {SALES}\n      password_env: EXTPY_TEST_SALES_PASSWORD\n      server: M365 Users\n"
            ));
        }
        t
    }

    /// Starts fresh servers and writes the topology.
    fn start(self) -> Started {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::root("extpy mail test CA");
        let ca_pem = ca.write_pem(dir.path(), "ca.pem");
        let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
        let mail_tls = if self.mail_untrusted {
            Ca::root("Somebody Else's CA")
                .leaf(&["127.0.0.1"])
                .server_config(&[])
        } else {
            leaf.server_config(&[])
        };
        let ms = Microsoft::start(
            self.directory.clone(),
            self.exchange.clone(),
            leaf.server_config(&[]),
            mail_tls,
        );
        let topo: PathBuf = dir.path().join("topology.yaml");
        std::fs::write(&topo, self.topology()).unwrap();
        Started {
            dir,
            ca_pem,
            topo,
            ms,
            scenario: self,
        }
    }

    /// Runs `extpy mail check` (with `--json` when asked) against fresh servers.
    fn run(self, json: bool) -> (Run, Microsoft) {
        let started = self.start();
        let args: Vec<String> = started.scenario.args.clone();
        let mut c = started.command(&["mail", "check"]);
        c.arg(&started.topo);
        if json {
            c.arg("--json");
        }
        c.args(&args);
        let r = run(c);
        assert_no_secrets(&r, &started.ms);
        assert_no_secrets_in_files(started.dir.path(), &started.ms);
        (r, started.ms)
    }
}

/// A scenario whose servers run.
struct Started {
    dir: tempfile::TempDir,
    ca_pem: PathBuf,
    topo: PathBuf,
    ms: Microsoft,
    scenario: Scenario,
}

impl Started {
    /// extpy `sub…` with the CA, a short timeout, the servers' endpoints and the secrets.
    fn command(&self, sub: &[&str]) -> std::process::Command {
        let mut c = extpy();
        c.args(["--ca-cert"]).arg(&self.ca_pem);
        c.args(["--timeout", "3", "--retries", "0"]);
        c.args(sub);
        for (opt, value) in [
            ("--authority-url", self.ms.authority()),
            ("--graph-url", self.ms.graph_url()),
            ("--imap-host", format!("127.0.0.1:{}", self.ms.imap.port())),
            ("--smtp-host", format!("127.0.0.1:{}", self.ms.smtp.port())),
        ] {
            if !self.scenario.args.iter().any(|a| a == opt) {
                c.args([opt, &value]);
            }
        }
        for v in [
            "EXTPY_TEST_MAIL_SECRET",
            "EXTPY_TEST_MAIL_OUTGOING",
            "EXTPY_TEST_SALES_PASSWORD",
        ] {
            c.env_remove(v);
        }
        for (k, v) in &self.scenario.env {
            c.env(k, v);
        }
        c
    }
}

/// No secret value and no issued token in anything extpy printed.
#[track_caller]
fn assert_no_secrets(r: &Run, ms: &Microsoft) {
    assert_no_secrets_in(&format!("{}\n{}", r.stdout, r.stderr), ms);
}

/// No secret value and no issued token in any file under `dir` (reports, plans, the
/// topology, anything a run wrote).
#[track_caller]
fn assert_no_secrets_in_files(dir: &std::path::Path, ms: &Microsoft) {
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                seen += 1;
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                assert_no_secrets_in(&text, ms);
            }
        }
    }
    assert!(seen > 0, "no file under {}", dir.display());
}

#[track_caller]
fn assert_no_secrets_in(all: &str, ms: &Microsoft) {
    for s in [SECRET, OUT_SECRET, PASSWORD] {
        assert!(!all.contains(s), "a secret leaked into the output:\n{all}");
    }
    for t in ms.tokens() {
        assert!(!all.contains(&t), "an access token leaked:\n{all}");
        let payload = t.split('.').nth(1).unwrap().to_string();
        assert!(
            !all.contains(&payload),
            "a token's claims leaked raw:\n{all}"
        );
    }
    assert!(all.is_ascii(), "output is not ASCII:\n{all}");
}

/// The check with `id` from a `--json` run.
#[track_caller]
fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {doc:#}"))
}

#[track_caller]
fn kind(doc: &Value, id: &str) -> String {
    check(doc, id)["verdict"]["kind"]
        .as_str()
        .unwrap()
        .to_string()
}

#[track_caller]
fn fix_text(doc: &Value, id: &str) -> String {
    let f = &check(doc, id)["fix"];
    assert!(!f.is_null(), "no fix for {id}: {:#}", check(doc, id));
    format!("{} {}", f["summary"], f["steps"])
}

/// Runs with `--json`, expects `code`, returns the document.
fn json(s: Scenario, code: i32) -> (Value, Microsoft) {
    let (r, ms) = s.run(true);
    let r = r.code(code);
    (r.json(), ms)
}

#[test]
fn all_good_proves_every_login_and_changes_nothing() {
    let mut s = good();
    s.user_server = true;
    let (doc, ms) = json(s, 0);
    assert_eq!(doc["schema"], "extpy-mail-check/1");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["command"], "mail check");
    assert_eq!(kind(&doc, "token.m365-service"), "token_issued");
    assert_eq!(kind(&doc, "token.outgoing"), "token_issued");
    assert_eq!(
        kind(&doc, "token.m365-users.sales-contoso-example-com"),
        "token_issued"
    );
    let t = &check(&doc, "token.m365-service")["token"];
    assert_eq!(t["claims"]["tenant"], TENANT);
    assert_eq!(t["claims"]["roles"][0], "IMAP.AccessAsApp");
    assert_eq!(t["secret_variables"][0], "EXTPY_TEST_MAIL_SECRET");
    let imap = check(&doc, "imap.support-contoso-example-com");
    assert_eq!(imap["verdict"]["kind"], "mailbox_opened");
    assert_eq!(imap["verdict"]["messages"], 42);
    assert_eq!(
        kind(&doc, "imap.sales-contoso-example-com"),
        "mailbox_opened"
    );
    assert_eq!(
        kind(&doc, "smtp.support-contoso-example-com"),
        "smtp_authenticated"
    );
    assert!(imap["fix"].is_null());
    // Read-only: IMAP heard AUTHENTICATE, EXAMINE and LOGOUT only; SMTP never MAIL, RCPT or DATA.
    let imap_log = ms.imap_log.lock().unwrap().clone();
    for cmd in &imap_log {
        assert!(
            cmd == "AUTHENTICATE XOAUTH2" || cmd == "EXAMINE INBOX" || cmd == "LOGOUT",
            "IMAP command {cmd:?} in {imap_log:?}"
        );
    }
    assert!(imap_log.contains(&"EXAMINE INBOX".to_string()));
    let smtp_log = ms.smtp_log.lock().unwrap().clone();
    assert!(
        smtp_log.contains(&"AUTH XOAUTH2".to_string()),
        "{smtp_log:?}"
    );
    assert!(smtp_log.contains(&"QUIT".to_string()), "{smtp_log:?}");
    for cmd in &smtp_log {
        let verb = cmd
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        assert!(
            !["MAIL", "RCPT", "DATA", "BDAT"].contains(&verb.as_str()),
            "SMTP {cmd:?}"
        );
    }
    // The OAuth User server brings the warning about the password grant.
    let notes = doc["notes"].to_string();
    assert!(
        notes.contains("discourages") && notes.contains("MFA"),
        "{notes}"
    );
}

#[test]
fn all_good_in_words() {
    let (r, _) = good().run(false);
    let r = r.ok();
    assert!(
        r.stdout
            .contains("OK    token  M365 Service  token issued, with IMAP.AccessAsApp"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "OK    imap   {SUPPORT}  {SUPPORT}: INBOX opened read-only (42 messages)"
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("4 mail checks: all ok"), "{}", r.stdout);
}

#[test]
fn wrong_tenant() {
    let mut s = good();
    s.tenant = OTHER_TENANT.into();
    let (doc, _) = json(s, 4);
    assert_eq!(kind(&doc, "token.m365-service"), "tenant_not_found");
    assert!(fix_text(&doc, "token.m365-service").contains("Directory (tenant) ID"));
    assert_eq!(kind(&doc, "imap.support-contoso-example-com"), "skipped");
    assert_eq!(doc["ok"], false);
}

#[test]
fn unknown_client() {
    let mut s = good();
    s.client_id = UNKNOWN_APP.into();
    let (doc, _) = json(s, 4);
    assert_eq!(kind(&doc, "token.m365-service"), "app_not_found");
    let fix = fix_text(&doc, "token.m365-service");
    assert!(
        fix.contains("Application (client) ID") && fix.contains(UNKNOWN_APP),
        "{fix}"
    );
}

#[test]
fn wrong_secret_names_the_variable_never_the_value() {
    let mut s = good();
    s.env[0].1 = "Wr0ng~Secret.Value_That-Is-Not-It".into();
    let (r, ms) = s.run(false);
    let r = r.code(4);
    assert!(
        r.stdout
            .contains("invalid client secret in EXTPY_TEST_MAIL_SECRET (AADSTS7000215)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Value (not its Secret ID)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Wr0ng~Secret") && !r.stderr.contains("Wr0ng~Secret"));
    assert!(
        r.stderr.contains("2 of 4 mail checks failed"),
        "{}",
        r.stderr
    );
    assert_no_secrets(&r, &ms);
}

#[test]
fn expired_secret() {
    let mut s = good();
    s.directory.apps[0].expired = true;
    let (doc, _) = json(s, 4);
    assert_eq!(kind(&doc, "token.m365-service"), "secret_expired");
    let fix = fix_text(&doc, "token.m365-service");
    assert!(
        fix.contains("New client secret") && fix.contains("EXTPY_TEST_MAIL_SECRET"),
        "{fix}"
    );
}

#[test]
fn consent_missing() {
    let mut s = good();
    s.directory.apps[0].consented = false;
    let (doc, _) = json(s, 4);
    assert_eq!(kind(&doc, "token.m365-service"), "consent_missing");
    assert!(fix_text(&doc, "token.m365-service").contains("Grant admin consent"));
    assert_eq!(kind(&doc, "imap.support-contoso-example-com"), "skipped");
}

#[test]
fn imap_permission_missing() {
    let mut s = good();
    s.directory.apps[0].roles = vec!["SMTP.SendAsApp".into()];
    let (doc, _) = json(s, 4);
    let c = check(&doc, "token.m365-service");
    assert_eq!(c["verdict"]["kind"], "permission_missing");
    assert_eq!(c["verdict"]["permission"], "IMAP.AccessAsApp");
    assert_eq!(c["verdict"]["granted"][0], "SMTP.SendAsApp");
    let fix = fix_text(&doc, "token.m365-service");
    assert!(
        fix.contains("Application permissions") && fix.contains("IMAP.AccessAsApp"),
        "{fix}"
    );
    // The outgoing token has what SMTP needs: SMTP still proves its login.
    assert_eq!(
        kind(&doc, "smtp.support-contoso-example-com"),
        "smtp_authenticated"
    );
}

#[test]
fn mailbox_not_permitted() {
    let mut s = good();
    s.exchange.mailboxes[0].apps.clear();
    let (doc, _) = json(s, 4);
    assert_eq!(kind(&doc, "token.m365-service"), "token_issued");
    let c = check(&doc, "imap.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "mailbox_not_permitted");
    assert_eq!(c["verdict"]["answer"], "a1 NO AUTHENTICATE failed.");
    let fix = fix_text(&doc, "imap.support-contoso-example-com");
    assert!(
        fix.contains("New-ServicePrincipal -AppId 6ba7b810")
            && fix.contains("Add-MailboxPermission -Identity support@contoso.example.com")
            && fix.contains("Test-ApplicationAccessPolicy"),
        "{fix}"
    );
    let transcript = c["transcript"].to_string();
    assert!(
        transcript.contains("AUTHENTICATE XOAUTH2 <token for support@contoso.example.com hidden>"),
        "{transcript}"
    );
}

#[test]
fn oauth_user_blocked_by_mfa() {
    let mut s = good();
    s.user_server = true;
    s.directory.users[0].mfa = true;
    let (r, ms) = s.run(false);
    let r = r.code(4);
    assert!(
        r.stdout.contains(&format!(
            "sign-in of {SALES} blocked by MFA or Conditional Access (AADSTS50076)"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("switch the server to OAuth Service"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Microsoft discourages"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("FAIL  imap   {SALES}  not tried")),
        "{}",
        r.stdout
    );
    assert_no_secrets(&r, &ms);
}

#[test]
fn smtp_auth_disabled() {
    let mut s = good();
    s.exchange.mailboxes[0].smtp_auth = false;
    let (doc, _) = json(s, 4);
    assert_eq!(
        kind(&doc, "imap.support-contoso-example-com"),
        "mailbox_opened"
    );
    let c = check(&doc, "smtp.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "smtp_auth_disabled");
    assert!(
        c["verdict"]["answer"]
            .as_str()
            .unwrap()
            .starts_with("535 5.7.139")
    );
    assert!(fix_text(&doc, "smtp.support-contoso-example-com").contains("Set-CASMailbox -Identity support@contoso.example.com -SmtpClientAuthenticationDisabled $false"));
}

#[test]
fn imap_server_that_hangs_times_out() {
    let mut s = good();
    s.exchange.imap_hangs = true;
    let (doc, _) = json(s, 4);
    let c = check(&doc, "imap.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "timeout");
    assert_eq!(c["verdict"]["waiting_for"], "the IMAP greeting");
    assert_eq!(c["verdict"]["secs"], 3);
    assert!(
        fix_text(&doc, "imap.support-contoso-example-com")
            .contains("Test-NetConnection 127.0.0.1 -Port")
    );
    // The hang did not hold up the rest.
    assert_eq!(
        kind(&doc, "smtp.support-contoso-example-com"),
        "smtp_authenticated"
    );
}

#[test]
fn token_endpoint_that_hangs_times_out() {
    let mut s = good();
    s.directory.hang = true;
    let (doc, _) = json(s, 4);
    let c = check(&doc, "token.m365-service");
    assert_eq!(c["verdict"]["kind"], "timeout");
    assert_eq!(c["verdict"]["waiting_for"], "the token endpoint's answer");
}

#[test]
fn token_endpoint_answering_html() {
    let mut s = good();
    s.directory.html = true;
    let (doc, _) = json(s, 4);
    let c = check(&doc, "token.m365-service");
    assert_eq!(c["verdict"]["kind"], "token_not_json");
    assert_eq!(c["verdict"]["content_type"], "text/html");
    assert_eq!(c["verdict"]["answer"], "<!DOCTYPE html>");
    assert!(fix_text(&doc, "token.m365-service").contains("--authority-url"));
}

#[test]
fn untrusted_mail_server_certificate_is_judged_by_the_doctor() {
    let mut s = good();
    s.mail_untrusted = true;
    let (doc, _) = json(s, 4);
    let c = check(&doc, "imap.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "tls");
    assert_eq!(c["verdict"]["doctor"]["kind"], "root_not_trusted");
    assert!(
        c["verdict"]["summary"]
            .as_str()
            .unwrap()
            .contains("Somebody Else's CA"),
        "{c:#}"
    );
    assert!(fix_text(&doc, "imap.support-contoso-example-com").contains("Import-Certificate"));
    // After STARTTLS too.
    let c = check(&doc, "smtp.support-contoso-example-com");
    assert_eq!(c["verdict"]["doctor"]["kind"], "root_not_trusted");
}

#[test]
fn missing_secret_variables_are_named_before_anything_is_sent() {
    let mut s = good();
    s.env.retain(|(k, _)| *k == "EXTPY_TEST_SALES_PASSWORD");
    let (r, ms) = s.run(false);
    let r = r.code(2);
    assert!(
        r.stderr.contains(
            "EXTPY_TEST_MAIL_SECRET (the client secret of incoming server \"M365 Service\")"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("EXTPY_TEST_MAIL_OUTGOING (the client secret of the outgoing server)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("help:"), "{}", r.stderr);
    assert!(ms.tokens().is_empty() && ms.imap_log.lock().unwrap().is_empty());
}

#[test]
fn a_mail_block_without_queues() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("t.yaml");
    std::fs::write(
        &topo,
        format!("schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\nmail:\n  incoming:\n    - name: In\n      tenant: {TENANT}\n      auth: oauth_service\n      client_id: {APP}\n      secret_env: X_SECRET\n"),
    )
    .unwrap();
    let mut c = extpy();
    c.args(["mail", "check"]).arg(&topo);
    let r = run(c).code(2);
    assert!(r.stderr.contains("mail.queues is empty"), "{}", r.stderr);
    // No mail block at all.
    std::fs::write(
        &topo,
        "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\n",
    )
    .unwrap();
    let mut c = extpy();
    c.args(["mail", "check", "--json"]).arg(&topo);
    let r = run(c).code(2);
    assert!(r.stderr.contains("has no mail: block"), "{}", r.stderr);
    assert_eq!(r.json()["exit_code"], 2);
}

#[test]
fn unknown_server_and_queue() {
    let mut s = good();
    s.args = vec!["--server".into(), "Nope".into()];
    let (r, _) = s.run(false);
    let r = r.code(2);
    assert!(r.stderr.contains("--server \"Nope\": no incoming server of that name in mail.incoming (known: M365 Service)"), "{}", r.stderr);
    let mut s = good();
    s.args = vec!["--queue".into(), "who@contoso.example.com".into()];
    let (r, _) = s.run(false);
    let r = r.code(2);
    assert!(
        r.stderr.contains(&format!("(known: {SUPPORT})")),
        "{}",
        r.stderr
    );
}

#[test]
fn one_queue_with_queue() {
    let mut s = good();
    s.user_server = true;
    s.args = vec!["--queue".into(), SALES.into()];
    let (doc, _) = json(s, 0);
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "token.m365-users.sales-contoso-example-com",
            "token.outgoing",
            "imap.sales-contoso-example-com",
            "smtp.sales-contoso-example-com"
        ]
    );
}

#[test]
fn bad_endpoints_are_input_errors() {
    for (opt, value, needle) in [
        (
            "--authority-url",
            "http://login.example",
            "must be an https:// URL",
        ),
        ("--imap-host", "host:notaport", "is not a port number"),
        ("--smtp-host", "", "is not a host name"),
    ] {
        let mut s = good();
        s.args = vec![opt.into(), value.into()];
        let (r, _) = s.run(false);
        let r = r.code(2);
        assert!(
            r.stderr.contains(needle) && r.stderr.contains(opt),
            "{opt}: {}",
            r.stderr
        );
    }
}

/// The plan's step with `id` from `plan --format json`.
#[track_caller]
fn step<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

#[test]
fn plan_with_a_saved_mail_report_shows_results_and_fixes_in_the_sc_steps() {
    let mut s = good();
    s.exchange.mailboxes[0].smtp_auth = false;
    let st = s.start();
    let mut c = st.command(&["mail", "check", "--json"]);
    c.arg(&st.topo);
    let saved = run(c).code(4);
    assert_no_secrets(&saved, &st.ms);
    let report = st.dir.path().join("mail.json");
    std::fs::write(&report, &saved.stdout).unwrap();

    let mut c = extpy();
    c.args(["plan", "--format", "json"])
        .arg(&st.topo)
        .arg("--mail-report")
        .arg(&report);
    let plan = run(c).ok().json();
    let check = step(&plan, "sc.mail-check");
    let rows = check["table"]["rows"].to_string();
    assert!(
        rows.contains("smtp.support-contoso-example-com") && rows.contains("FAILS"),
        "{rows}"
    );
    assert!(
        check["warnings"].to_string().contains("mail.json"),
        "{check:#}"
    );
    let queue = step(&plan, "sc.queue.support-contoso-example-com")["warnings"].to_string();
    assert!(
        queue.contains("mail check smtp.support-contoso-example-com (smtp): FAILS")
            && queue.contains("fix: enable SMTP AUTH for support@contoso.example.com")
            && queue.contains("mail check imap.support-contoso-example-com (imap): ok"),
        "{queue}"
    );
    let incoming = step(&plan, "sc.incoming.m365-service")["warnings"].to_string();
    assert!(
        incoming.contains("token.m365-service (imap): ok"),
        "{incoming}"
    );
    assert_eq!(plan["mail_check"]["checks"].as_array().unwrap().len(), 4);
    assert!(
        plan["warnings"]
            .to_string()
            .contains("1 mail check(s) failed")
    );

    // Markdown shows the same.
    let mut c = extpy();
    c.arg("plan")
        .arg(&st.topo)
        .arg("--mail-report")
        .arg(&report);
    let md = run(c).ok().stdout;
    assert!(md.contains("| smtp.support-contoso-example-com | smtp | FAILS | support@contoso.example.com: SMTP AUTH is disabled (535 5.7.139) |"), "{md}");

    // A file that is not a mail check report.
    std::fs::write(&report, r#"{"schema":"extpy-plan/1","checks":[]}"#).unwrap();
    let mut c = extpy();
    c.arg("plan")
        .arg(&st.topo)
        .arg("--mail-report")
        .arg(&report);
    let r = run(c).code(2);
    assert!(
        r.stderr.contains("not \"extpy-mail-check/1\"") && r.stderr.contains("help:"),
        "{}",
        r.stderr
    );
}

#[test]
fn plan_with_a_live_mail_check() {
    let mut s = good();
    s.directory.apps[0].expired = true;
    let st = s.start();
    let mut c = st.command(&["plan", "--format", "json", "--mail-check"]);
    c.arg(&st.topo);
    let r = run(c).ok();
    assert_no_secrets(&r, &st.ms);
    let plan = r.json();
    assert_eq!(plan["mail_check"]["source"], "live (extpy mail check)");
    let incoming = step(&plan, "sc.incoming.m365-service")["warnings"].to_string();
    assert!(
        incoming.contains(
            "FAILS: the client secret in EXTPY_TEST_MAIL_SECRET has expired (AADSTS7000222)"
        ),
        "{incoming}"
    );
    // Without the network, only a saved report will do.
    let mut c = st.command(&["--offline", "plan", "--mail-check"]);
    c.arg(&st.topo);
    let r = run(c).code(2);
    assert!(r.stderr.contains("--mail-report FILE"), "{}", r.stderr);
}

// ---- The trust CEM will use at run time (--dist) ----

/// A built distribution's trust files under `dir`: certifi's bundle holding `pems`, and,
/// when `hook`, the truststore package and the `.pth` hook that `runtime_trust: system`
/// installs.
fn fake_dist(dir: &std::path::Path, pems: &[&str], hook: bool) -> PathBuf {
    let root = dir.join("dist");
    let site = root.join("Lib").join("site-packages");
    std::fs::create_dir_all(site.join("certifi")).unwrap();
    std::fs::create_dir_all(site.join("certifi-2025.10.5.dist-info")).unwrap();
    std::fs::write(site.join("certifi").join("cacert.pem"), pems.concat()).unwrap();
    if hook {
        std::fs::create_dir_all(site.join("truststore")).unwrap();
        std::fs::write(
            site.join("extpy-truststore.pth"),
            "import truststore; truststore.inject_into_ssl()\n",
        )
        .unwrap();
    }
    root
}

/// Runs `mail check --json --dist <made by dist>` against fresh servers.
fn with_dist(
    s: Scenario,
    dist: impl FnOnce(&Started) -> PathBuf,
    code: i32,
) -> (Value, Run, Microsoft) {
    let started = s.start();
    let dist = dist(&started);
    let mut c = started.command(&["mail", "check"]);
    c.arg(&started.topo).arg("--json").arg("--dist").arg(&dist);
    let r = run(c);
    assert_no_secrets(&r, &started.ms);
    let r = r.code(code);
    let doc = r.json();
    (doc, r, started.ms)
}

#[track_caller]
fn endpoint<'a>(doc: &'a Value, role: &str) -> &'a Value {
    doc["runtime_trust"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == role)
        .unwrap_or_else(|| panic!("no {role} endpoint in {:#}", doc["runtime_trust"]))
}

/// The TLS-inspecting proxy case: this machine trusts the CA (here through --ca-cert), the
/// distribution's certifi bundle does not hold it. Every login works from here, and the
/// report still fails, naming the CA and the runtime_trust fix.
#[test]
fn a_ca_trusted_here_but_not_by_certifi_is_what_cem_would_reject() {
    let public = Ca::root("Some Public Root CA");
    let (doc, _, _) = with_dist(
        good(),
        |st| fake_dist(st.dir.path(), &[&public.pem], false),
        4,
    );
    assert_eq!(doc["ok"], false);
    for c in doc["checks"].as_array().unwrap() {
        assert_eq!(c["ok"], true, "every login works from here: {c:#}");
    }
    let rt = &doc["runtime_trust"];
    assert_eq!(rt["compared"], true);
    assert_eq!(rt["trust"], "certifi");
    assert_eq!(rt["ok"], false);
    assert_eq!(rt["bundle_certificates"], 1);
    assert_eq!(rt["certifi_version"], "2025.10.5");
    assert!(
        rt["bundle"]
            .as_str()
            .unwrap()
            .ends_with("site-packages/certifi/cacert.pem"),
        "{rt:#}"
    );
    for role in ["identity platform", "imap", "smtp"] {
        let e = endpoint(&doc, role);
        assert_eq!(e["kind"], "runtime_rejects", "{e:#}");
        assert_eq!(e["ok"], false);
        assert_eq!(e["issuer"], "extpy mail test CA");
        assert_eq!(e["here"]["ok"], true);
        assert_eq!(
            e["system"]["ok"], false,
            "the test CA is not in the OS store"
        );
        assert_eq!(e["runtime"]["problem"], "unknown_issuer");
        let summary = e["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("CEM would reject")
                && summary.contains("\"extpy mail test CA\"")
                && summary.contains("certifi"),
            "{summary}"
        );
        let fix = format!("{} {}", e["fix"]["summary"], e["fix"]["steps"]);
        for needed in [
            "runtime_trust: system",
            "extpy build --manifest",
            "extpy layout",
            "only through --ca-cert",
            "Cert:\\\\LocalMachine\\\\Root",
        ] {
            assert!(fix.contains(needed), "{needed:?} missing from {fix}");
        }
    }
}

#[test]
fn the_difference_in_words() {
    let public = Ca::root("Some Public Root CA");
    let started = good().start();
    let dist = fake_dist(started.dir.path(), &[&public.pem], false);
    let mut c = started.command(&["mail", "check"]);
    c.arg(&started.topo).arg("--dist").arg(&dist);
    let r = run(c).code(4);
    assert_no_secrets(&r, &started.ms);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(
        out.contains("CEM's Python verifies TLS against certifi 2025.10.5's bundle")
            && out.contains("(1 certificate)"),
        "{out}"
    );
    assert!(out.contains("FAIL  trust  imap 127.0.0.1:"), "{out}");
    assert!(
        out.contains("fix       let CEM's Python use the Windows certificate store"),
        "{out}"
    );
    assert!(
        out.contains("4 mail checks: all ok; CEM's Python would not trust 3 of 3 endpoints"),
        "{out}"
    );
    assert!(
        r.stderr
            .contains("error: CEM's Python would not trust every mail endpoint"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_ca_in_both_is_clean() {
    let public = Ca::root("Some Public Root CA");
    let (doc, _, _) = with_dist(
        good(),
        |st| {
            let ours = std::fs::read_to_string(&st.ca_pem).unwrap();
            fake_dist(st.dir.path(), &[&public.pem, &ours], false)
        },
        0,
    );
    assert_eq!(doc["ok"], true);
    let rt = &doc["runtime_trust"];
    assert_eq!(rt["ok"], true, "{rt:#}");
    assert_eq!(rt["bundle_certificates"], 2);
    for role in ["identity platform", "imap", "smtp"] {
        let e = endpoint(&doc, role);
        assert_eq!(e["kind"], "trusted", "{e:#}");
        assert!(e["fix"].is_null());
    }
}

/// With runtime_trust: system (the hook is in the distribution) the comparison is with the
/// system store: a CA trusted here only through --ca-cert is not in it, and the fix is to
/// install it into the store, not to rebuild.
#[test]
fn a_distribution_with_the_truststore_hook_uses_the_system_store() {
    let public = Ca::root("Some Public Root CA");
    let (doc, _, _) = with_dist(
        good(),
        |st| fake_dist(st.dir.path(), &[&public.pem], true),
        4,
    );
    let rt = &doc["runtime_trust"];
    assert_eq!(rt["trust"], "system");
    assert!(
        rt["notes"]
            .to_string()
            .contains("uses the system certificate store"),
        "{rt:#}"
    );
    let e = endpoint(&doc, "imap");
    assert_eq!(e["kind"], "runtime_rejects");
    let summary = e["summary"].as_str().unwrap();
    assert!(
        summary.contains("uses the system certificate store (runtime_trust: system)"),
        "{summary}"
    );
    let fix = format!("{} {}", e["fix"]["summary"], e["fix"]["steps"]);
    assert!(
        fix.contains("install \\\"extpy mail test CA\\\" into Cert:"),
        "{fix}"
    );
    assert!(!fix.contains("extpy build"), "{fix}");
}

#[test]
fn without_dist_the_runtime_trust_is_not_compared_and_says_how() {
    let (doc, _) = json(good(), 0);
    let rt = &doc["runtime_trust"];
    assert_eq!(rt["compared"], false);
    assert!(rt["ok"].is_null());
    assert!(rt["endpoints"].as_array().unwrap().is_empty());
    assert!(
        rt["notes"].to_string().contains("pass --dist DIR"),
        "{rt:#}"
    );
}

#[test]
fn a_dist_that_is_not_a_distribution_or_lacks_certifi_is_refused_before_anything_is_sent() {
    let started = good().start();
    let base = started.dir.path();
    let no_site = base.join("empty");
    std::fs::create_dir_all(&no_site).unwrap();
    let no_certifi = base.join("nocertifi");
    std::fs::create_dir_all(no_certifi.join("Lib").join("site-packages")).unwrap();
    let bad_pem = fake_dist(&base.join("bad"), &["not a certificate\n"], false);
    for (dist, says) in [
        (base.join("missing"), "cannot read it"),
        (no_site.clone(), "it has no Lib\\site-packages"),
        (no_certifi.clone(), "it has no certifi bundle"),
        (bad_pem.clone(), "certifi's bundle cannot be used"),
    ] {
        let mut c = started.command(&["mail", "check"]);
        c.arg(&started.topo).arg("--dist").arg(&dist);
        let r = run(c).code(2);
        assert!(
            r.stderr.contains(&format!("--dist {}", dist.display())) && r.stderr.contains(says),
            "{says}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("help:"), "{}", r.stderr);
    }
    assert!(started.ms.tokens().is_empty(), "nothing was sent");
}

/// When no login reaches IMAP or SMTP (the token failed), their chains are captured by a
/// connection that stops after the handshake (SMTP: after STARTTLS) and sends no login.
#[test]
fn endpoints_are_compared_even_when_no_login_reached_them() {
    let public = Ca::root("Some Public Root CA");
    let mut s = good();
    for (k, v) in s.env.iter_mut() {
        if *k != "EXTPY_TEST_SALES_PASSWORD" {
            *v = "wrong".into();
        }
    }
    let (doc, _, ms) = with_dist(s, |st| fake_dist(st.dir.path(), &[&public.pem], false), 4);
    assert_eq!(kind(&doc, "imap.support-contoso-example-com"), "skipped");
    for role in ["identity platform", "imap", "smtp"] {
        assert_eq!(endpoint(&doc, role)["kind"], "runtime_rejects", "{role}");
    }
    let imap_log = ms.imap_log.lock().unwrap().clone();
    assert!(
        imap_log.is_empty(),
        "no IMAP command was sent: {imap_log:?}"
    );
    let smtp_log = ms.smtp_log.lock().unwrap().clone();
    assert!(
        !smtp_log.iter().any(|c| c.starts_with("AUTH")),
        "no SMTP login: {smtp_log:?}"
    );
    assert!(smtp_log.contains(&"STARTTLS".to_string()), "{smtp_log:?}");
}

// ---- Microsoft Graph, and the paths of protocol: auto ----

/// The server report of `name`.
#[track_caller]
fn server<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == name)
        .unwrap_or_else(|| panic!("no server {name} in {doc:#}"))
}

#[track_caller]
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn graph_good_reads_the_inbox_and_sends_nothing() {
    let mut s = graph_good();
    s.user_server = true;
    // The outgoing app may also look users up: the mailbox resolves.
    s.directory.apps[1].graph_roles.push("User.Read.All".into());
    let (doc, ms) = json(s, 0);
    assert_eq!(doc["ok"], true);
    let t = check(&doc, "token.m365-service.graph");
    assert_eq!(t["verdict"]["kind"], "token_issued");
    assert_eq!(t["verdict"]["permission"], "Mail.ReadWrite");
    assert_eq!(t["protocol"], "graph");
    assert_eq!(
        t["token"]["claims"]["audience"][0],
        "https://graph.microsoft.com"
    );
    let inbox = check(&doc, "graph-inbox.support-contoso-example-com");
    assert_eq!(inbox["verdict"]["kind"], "graph_inbox_read");
    assert_eq!(inbox["verdict"]["messages"], 42);
    assert_eq!(inbox["step"], "graph_inbox");
    assert_eq!(
        kind(&doc, "graph-inbox.sales-contoso-example-com"),
        "graph_inbox_read"
    );
    let send = check(&doc, "graph-send.support-contoso-example-com");
    assert_eq!(send["verdict"]["kind"], "graph_send_ready");
    assert_eq!(send["verdict"]["looked_up"], true);
    assert_eq!(send["verdict"]["permission"], "Mail.Send");
    // Only Graph was tried, and only with GETs.
    assert!(ms.imap_log.lock().unwrap().is_empty());
    assert!(ms.smtp_log.lock().unwrap().is_empty());
    let graph_log = ms.graph_log.lock().unwrap().clone();
    assert!(
        graph_log.iter().all(|l| l.starts_with("GET /v1.0/users/")),
        "{graph_log:?}"
    );
    assert!(
        graph_log.contains(&format!("GET /v1.0/users/{SUPPORT}/mailFolders/inbox")),
        "{graph_log:?}"
    );
    assert!(
        graph_log.contains(&format!("GET /v1.0/users/{SUPPORT}")),
        "{graph_log:?}"
    );
    let out = server(&doc, "outgoing");
    assert_eq!(out["protocol"], "graph");
    assert_eq!(strings(&out["tested"]), ["graph"]);
    assert_eq!(strings(&out["passed"]), ["graph"]);
    assert!(
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["protocol"] == "graph")
    );
}

#[test]
fn graph_send_with_only_the_vendor_s_permissions_says_the_mailbox_was_not_looked_up() {
    let (doc, _) = json(graph_good(), 0);
    let send = check(&doc, "graph-send.support-contoso-example-com");
    assert_eq!(send["verdict"]["looked_up"], false);
    let words = send["verdict"]["explanation"].as_str().unwrap();
    assert!(
        words.contains("Authorization_RequestDenied") && words.contains("User.Read.All"),
        "{words}"
    );
}

#[test]
fn auto_reports_both_paths_and_which_the_permissions_allow() {
    // The vendor's guide followed: Graph permissions only, none for IMAP or SMTP.
    let mut s = good();
    s.in_protocol = None;
    s.out_protocol = None;
    s.directory.apps[0].roles = vec![];
    s.directory.apps[1].roles = vec![];
    let started = s.start();
    let mut c = started.command(&["mail", "check", "--json"]);
    c.arg(&started.topo);
    let r = run(c).ok();
    assert_no_secrets(&r, &started.ms);
    let doc = r.json();
    let inc = server(&doc, "M365 Service");
    assert_eq!(inc["protocol"], "auto");
    assert_eq!(strings(&inc["tested"]), ["graph", "imap"]);
    assert_eq!(strings(&inc["passed"]), ["graph"]);
    assert_eq!(strings(&inc["allowed"]), ["graph"]);
    let out = server(&doc, "outgoing");
    assert_eq!(strings(&out["tested"]), ["graph", "smtp"]);
    assert_eq!(strings(&out["allowed"]), ["graph"]);
    assert_eq!(kind(&doc, "token.m365-service"), "consent_missing");
    let fix = fix_text(&doc, "token.m365-service");
    assert!(
        fix.contains("Office 365 Exchange Online > IMAP.AccessAsApp"),
        "{fix}"
    );
    assert_eq!(
        kind(&doc, "graph-inbox.support-contoso-example-com"),
        "graph_inbox_read"
    );
    // In words: the path that did not pass is marked, not counted.
    let mut c = started.command(&["mail", "check"]);
    c.arg(&started.topo);
    let r = run(c).ok();
    assert_no_secrets(&r, &started.ms);
    assert!(
        r.stdout
            .contains("-     token  M365 Service  admin consent missing"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("OK    server M365 Service  protocol: auto; tested graph, imap; passed graph; failed imap; the tokens' permissions allow graph"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("protocol: auto (not set) checks both paths"),
        "{}",
        r.stdout
    );
    // Both paths set up: both pass and both are allowed.
    let mut s = good();
    s.in_protocol = None;
    let (doc, _) = json(s, 0);
    assert_eq!(
        strings(&server(&doc, "M365 Service")["allowed"]),
        ["graph", "imap"]
    );
    assert_eq!(
        strings(&server(&doc, "M365 Service")["passed"]),
        ["graph", "imap"]
    );
}

#[test]
fn a_path_set_explicitly_counts_alone() {
    let mut s = graph_good();
    s.directory.apps[0].graph_roles = vec!["Mail.Send".into()];
    let (doc, _) = json(s, 4);
    let t = check(&doc, "token.m365-service.graph");
    assert_eq!(t["verdict"]["kind"], "permission_missing");
    assert_eq!(t["verdict"]["api"], "graph");
    let fix = fix_text(&doc, "token.m365-service.graph");
    assert!(
        fix.contains("Microsoft Graph > Application permissions > Mail.ReadWrite"),
        "{fix}"
    );
    assert!(fix.contains("up to 30 minutes"), "{fix}");
    assert_eq!(server(&doc, "M365 Service")["ok"], false);
}

#[test]
fn graph_access_policy_excludes_the_mailbox() {
    let mut s = graph_good();
    s.exchange.mailboxes[0].policy_excludes = vec![APP.into()];
    let (doc, _) = json(s, 4);
    let c = check(&doc, "graph-inbox.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "graph_scope_excludes");
    assert_eq!(c["verdict"]["access_policy"], true);
    assert!(
        c["verdict"]["answer"]
            .as_str()
            .unwrap()
            .contains("ErrorAccessDenied")
    );
    let fix = fix_text(&doc, "graph-inbox.support-contoso-example-com");
    assert!(
        fix.contains(&format!(
            "Test-ApplicationAccessPolicy -Identity {SUPPORT} -AppId {APP}"
        )),
        "{fix}"
    );
}

#[test]
fn graph_rbac_for_applications_scope_excludes_the_mailbox() {
    let mut s = graph_good();
    s.exchange.mailboxes[0].rbac_excludes = vec![APP.into()];
    let (doc, _) = json(s, 4);
    let c = check(&doc, "graph-inbox.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "graph_scope_excludes");
    assert_eq!(c["verdict"]["access_policy"], false);
    let fix = fix_text(&doc, "graph-inbox.support-contoso-example-com");
    assert!(fix.contains("Test-ServicePrincipalAuthorization"), "{fix}");
}

#[test]
fn graph_mailbox_not_enabled_for_rest() {
    let mut s = graph_good();
    s.exchange.mailboxes[0].rest_enabled = false;
    let (doc, _) = json(s, 4);
    let c = check(&doc, "graph-inbox.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "graph_mailbox_not_enabled");
    assert!(
        c["verdict"]["answer"]
            .as_str()
            .unwrap()
            .contains("MailboxNotEnabledForRESTAPI")
    );
    let fix = fix_text(&doc, "graph-inbox.support-contoso-example-com");
    assert!(
        fix.contains("Exchange Online licence") && fix.contains("on-premises"),
        "{fix}"
    );
}

#[test]
fn graph_mailbox_not_found() {
    let mut s = graph_good();
    s.exchange.mailboxes.remove(0);
    let (doc, _) = json(s, 4);
    assert_eq!(
        kind(&doc, "graph-inbox.support-contoso-example-com"),
        "graph_mailbox_not_found"
    );
    let send = check(&doc, "graph-send.support-contoso-example-com");
    assert_eq!(send["verdict"]["kind"], "graph_mailbox_not_found");
    assert!(
        send["verdict"]["answer"]
            .as_str()
            .unwrap()
            .contains("Request_ResourceNotFound")
    );
    assert!(fix_text(&doc, "graph-send.support-contoso-example-com").contains("Get-Mailbox"));
}

#[test]
fn a_token_for_the_wrong_resource_is_named_with_each_server_s_answer() {
    let mut s = good();
    s.in_protocol = None;
    s.outgoing = false;
    s.directory.wrong_audience = true;
    let (doc, _) = json(s, 4);
    // An Exchange token sent to Graph: 401.
    let t = check(&doc, "token.m365-service.graph");
    assert_eq!(t["verdict"]["kind"], "wrong_resource");
    assert_eq!(t["verdict"]["needed"], "https://graph.microsoft.com");
    let g = check(&doc, "graph-inbox.support-contoso-example-com");
    assert_eq!(g["verdict"]["kind"], "wrong_resource");
    assert!(
        g["verdict"]["answer"]
            .as_str()
            .unwrap()
            .contains("Invalid audience"),
        "{g:#}"
    );
    // A Graph token sent to IMAP: AUTHENTICATE failed.
    assert_eq!(kind(&doc, "token.m365-service"), "wrong_resource");
    let i = check(&doc, "imap.support-contoso-example-com");
    assert_eq!(i["verdict"]["kind"], "wrong_resource");
    assert!(
        i["verdict"]["answer"]
            .as_str()
            .unwrap()
            .contains("AUTHENTICATE failed"),
        "{i:#}"
    );
    let fix = fix_text(&doc, "imap.support-contoso-example-com");
    assert!(
        fix.contains("https://outlook.office365.com/.default"),
        "{fix}"
    );
}

#[test]
fn the_app_registration_s_object_id_in_new_service_principal() {
    // New-ServicePrincipal got the App registration's Object ID: Exchange knows no service
    // principal for the app, so IMAP refuses; Graph (Entra's permissions) still reads.
    let mut s = good();
    s.in_protocol = None;
    s.exchange.mailboxes[0].apps.retain(|a| a != APP);
    let (doc, _) = json(s, 0);
    let i = check(&doc, "imap.support-contoso-example-com");
    assert_eq!(i["verdict"]["kind"], "mailbox_not_permitted");
    assert!(
        i["verdict"]["answer"]
            .as_str()
            .unwrap()
            .contains("AUTHENTICATE failed")
    );
    let fix = fix_text(&doc, "imap.support-contoso-example-com");
    assert!(
        fix.contains("the Object ID shown under Enterprise applications, not the one on the App registration's Overview")
            && fix.contains("Get-ServicePrincipal"),
        "{fix}"
    );
    assert_eq!(strings(&server(&doc, "M365 Service")["passed"]), ["graph"]);
}

#[test]
fn smtp_auth_disabled_for_the_tenant() {
    let mut s = good();
    s.exchange.smtp_tenant_disabled = true;
    let (doc, _) = json(s, 4);
    let c = check(&doc, "smtp.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "smtp_auth_disabled");
    assert!(
        c["verdict"]["summary"]
            .as_str()
            .unwrap()
            .contains("for the tenant (535 5.7.139)")
    );
    let fix = fix_text(&doc, "smtp.support-contoso-example-com");
    assert!(
        fix.contains("Set-TransportConfig -SmtpClientAuthenticationDisabled $false"),
        "{fix}"
    );
}

#[test]
fn smtp_auth_blocked_by_security_defaults() {
    let mut s = good();
    s.exchange.security_defaults = true;
    let (doc, _) = json(s, 4);
    let c = check(&doc, "smtp.support-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "smtp_security_defaults");
    assert!(
        c["verdict"]["answer"]
            .as_str()
            .unwrap()
            .contains("535 5.7.139")
    );
    let fix = fix_text(&doc, "smtp.support-contoso-example-com");
    assert!(
        fix.contains("Manage security defaults") && fix.contains("protocol: graph"),
        "{fix}"
    );
}

#[test]
fn a_permission_granted_minutes_ago_is_retried_once_when_asked() {
    // Without --retry-after: the failure, and the word on propagation.
    let mut s = graph_good();
    s.directory.propagating = 2;
    let (doc, _) = json(s, 4);
    assert_eq!(kind(&doc, "token.m365-service.graph"), "consent_missing");
    let fix = fix_text(&doc, "token.m365-service.graph");
    assert!(
        fix.contains("up to 30 minutes") && fix.contains("--retry-after"),
        "{fix}"
    );
    // With it: one more try after the pause, which passes.
    let mut s = graph_good();
    s.directory.propagating = 2;
    s.args = vec!["--retry-after".into(), "1".into()];
    let (r, _) = s.run(true);
    let r = r.ok();
    let doc = r.json();
    let t = check(&doc, "token.m365-service.graph");
    assert_eq!(t["verdict"]["kind"], "token_issued");
    assert!(t["notes"].to_string().contains("passed 1s later"), "{t:#}");
    assert!(
        r.stderr.contains("waiting 1s, then trying once more"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_client_secret_s_expiry_cannot_be_known_from_here() {
    let (doc, _) = json(graph_good(), 0);
    let notes = check(&doc, "token.m365-service.graph")["notes"].to_string();
    assert!(
        notes.contains("cannot be known from here")
            && notes.contains("Certificates & secrets (the Expires column)"),
        "{notes}"
    );
}

#[test]
fn plan_with_a_live_mail_check_shows_the_protocol_of_each_check() {
    let mut s = good();
    s.in_protocol = Some("graph");
    let st = s.start();
    let mut c = st.command(&["plan", "--mail-check"]);
    c.arg(&st.topo);
    let r = run(c).ok();
    assert_no_secrets(&r, &st.ms);
    assert!(
        r.stdout.contains("| check | protocol | result | verdict |"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("| graph-inbox.support-contoso-example-com | graph | ok |"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("| smtp.support-contoso-example-com | smtp | ok |"),
        "{}",
        r.stdout
    );
    let out = st.dir.path().join("plan.md");
    let mut c = st.command(&["plan", "--mail-check", "--out", out.to_str().unwrap()]);
    c.arg(&st.topo);
    run(c).ok();
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("| graph-inbox.support-contoso-example-com | graph | ok |")
    );
    assert_no_secrets_in_files(st.dir.path(), &st.ms);
}

#[test]
fn graph_for_a_user_without_rights_on_the_mailbox() {
    let mut s = graph_good();
    s.user_server = true;
    s.exchange.mailboxes[1].users.clear();
    let (doc, _) = json(s, 4);
    let c = check(&doc, "graph-inbox.sales-contoso-example-com");
    assert_eq!(c["verdict"]["kind"], "mailbox_not_permitted");
    assert_eq!(c["verdict"]["protocol"], "graph");
    assert!(fix_text(&doc, "graph-inbox.sales-contoso-example-com").contains("FullAccess"));
    assert_eq!(
        kind(&doc, "graph-inbox.support-contoso-example-com"),
        "graph_inbox_read"
    );
}

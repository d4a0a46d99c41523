//! `extpy mail check`: the SC mail settings tried live. First the work is decided (which
//! tokens, which mailboxes, which secrets), then each check runs and becomes a [`Check`]:
//! plain data that the human report, `--json` and the runbook all read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use url::Url;

use crate::base::exit::ExitCode;
use crate::base::report::Reporter;
use crate::base::report::slug;
use crate::job::doctor::chain::rfc3339;
use crate::job::doctor::connect::{self, ProxyInfo};
use crate::job::doctor::{Advice, Doctor, DoctorOptions, Fix, Target, VerdictDoc};
use crate::mechanism::net::{Client, NetError, NetOptions, trust};

use super::jwt::{self, Claims};
use super::runtime::{self, DistError, Distribution, Presented, RuntimeReport};
use super::token::{self, Answer, Grant, Secret};
use super::verdict::{AadContext, AadError, MailFix, MailVerdict, MailVerdictDoc, from_aadsts};
use super::wire::{self, Dial, Endpoint, Login, Session, WireFailure};
use crate::model::mail::{Api, AuthType, Mail, Protocol, Queue, is_guid};

/// The report's schema name, bumped on incompatible changes.
pub const SCHEMA: &str = "extpy-mail-check/1";
/// Microsoft Graph (global service).
pub const DEFAULT_GRAPH: &str = "https://graph.microsoft.com";
/// Microsoft's global identity platform.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Exchange Online IMAP.
pub const DEFAULT_IMAP: &str = "outlook.office365.com:993";
/// Exchange Online SMTP submission.
pub const DEFAULT_SMTP: &str = "smtp.office365.com:587";

/// Bad `mail check` input.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The topology has no `mail:` block.
    #[error(
        "{topology} has no mail: block, so there are no mail settings to check\n  help: add the SC e-mail settings as `extpy help topology` shows (the guide's First installation page too)"
    )]
    NoMail {
        /// The topology file.
        topology: String,
    },
    /// The `mail:` block lists no queue.
    #[error(
        "{topology}: mail.queues is empty: a check needs at least one e-mail queue (its mailbox is what IMAP and SMTP log in to)\n  help: add the queues under mail.queues (address, account, server)"
    )]
    NoQueues {
        /// The topology file.
        topology: String,
    },
    /// `--server` names no incoming server.
    #[error(
        "--server {name:?}: no incoming server of that name in mail.incoming (known: {known})\n  help: pass one of the names above"
    )]
    UnknownServer {
        /// The argument.
        name: String,
        /// The names there are.
        known: String,
    },
    /// `--queue` names no queue.
    #[error(
        "--queue {address:?}: no queue with that address in mail.queues (known: {known})\n  help: pass one of the addresses above"
    )]
    UnknownQueue {
        /// The argument.
        address: String,
        /// The addresses there are.
        known: String,
    },
    /// The selection left nothing.
    #[error("{what}: no queue matches, so there is nothing to check\n  help: {help}")]
    NothingSelected {
        /// The selection.
        what: String,
        /// What to do.
        help: String,
    },
    /// Secrets the checks need are not in the environment.
    #[error(
        "the mail check needs secrets that are not set here:\n{}\n  help: set each variable in this shell (PowerShell: $env:NAME = '...'; cmd: set NAME=...), then run again; extpy never reads secrets from files",
        missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n")
    )]
    MissingSecrets {
        /// One line per missing secret: the variable and what it is for.
        missing: Vec<String>,
    },
    /// A bad `--authority-url`, `--graph-url`, `--imap-host` or `--smtp-host`.
    #[error("{option} {value:?}: {reason}\n  help: {help}")]
    Endpoint {
        /// The option.
        option: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
        /// An example.
        help: &'static str,
    },
    /// The trust settings are unusable (a bad `--ca-cert`).
    #[error(transparent)]
    Net(#[from] NetError),
    /// `--dist` is not a distribution whose run-time trust can be read.
    #[error(transparent)]
    Dist(#[from] DistError),
}

impl MailError {
    /// The exit code: bad input (everything but an unreadable trust store) is input.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            MailError::Net(n) if n.exit_code() == ExitCode::Input => ExitCode::Input,
            MailError::Net(_) => ExitCode::Network,
            _ => ExitCode::Input,
        }
    }
}

/// Where the checks go, and what they cover.
#[derive(Debug, Clone)]
pub struct MailOptions {
    /// The identity platform (`--authority-url`).
    pub authority: Url,
    /// Microsoft Graph (`--graph-url`).
    pub graph: Url,
    /// IMAP over TLS (`--imap-host`).
    pub imap: Endpoint,
    /// SMTP submission (`--smtp-host`).
    pub smtp: Endpoint,
    /// The HTTP client's settings; their timeout bounds every wait.
    pub net: NetOptions,
    /// `--server`: one incoming server and its queues.
    pub server: Option<String>,
    /// `--queue`: one queue.
    pub queue: Option<String>,
    /// `--dist`: the built distribution whose run-time trust every endpoint is checked
    /// against too.
    pub dist: Option<PathBuf>,
    /// `--retry-after SECS`: a failure that a permission granted minutes ago explains is
    /// tried once more after this pause.
    pub retry_after: Option<std::time::Duration>,
}

impl MailOptions {
    /// Options from the command line's strings.
    pub fn parse(
        authority: &str,
        graph: &str,
        imap: &str,
        smtp: &str,
        net: NetOptions,
    ) -> Result<Self, MailError> {
        let bad = |option, value: &str, reason: String, help| MailError::Endpoint {
            option,
            value: value.to_string(),
            reason,
            help,
        };
        let authority_help = "the base URL of the identity platform, e.g. https://login.microsoftonline.com (or https://login.microsoftonline.us for US Government)";
        let url = Url::parse(authority)
            .map_err(|e| bad("--authority-url", authority, e.to_string(), authority_help))?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(bad(
                "--authority-url",
                authority,
                "it must be an https:// URL with a host".into(),
                authority_help,
            ));
        }
        let graph_help = "the base URL of Microsoft Graph, e.g. https://graph.microsoft.com (or https://graph.microsoft.us for US Government)";
        let graph_url =
            Url::parse(graph).map_err(|e| bad("--graph-url", graph, e.to_string(), graph_help))?;
        if graph_url.scheme() != "https"
            || graph_url.host_str().is_none_or(str::is_empty)
            || !graph_url.path().trim_matches('/').is_empty()
        {
            return Err(bad(
                "--graph-url",
                graph,
                "it must be an https:// URL with a host and no path".into(),
                graph_help,
            ));
        }
        let imap = Endpoint::parse(imap, 993).map_err(|r| {
            bad(
                "--imap-host",
                imap,
                r,
                "HOST or HOST:PORT, e.g. outlook.office365.com:993",
            )
        })?;
        let smtp = Endpoint::parse(smtp, 587).map_err(|r| {
            bad(
                "--smtp-host",
                smtp,
                r,
                "HOST or HOST:PORT, e.g. smtp.office365.com:587",
            )
        })?;
        Ok(Self {
            authority: url,
            graph: graph_url,
            imap,
            smtp,
            net,
            server: None,
            queue: None,
            dist: None,
            retry_after: None,
        })
    }
}

/// What a check proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// A token request.
    Token,
    /// An IMAP login and EXAMINE INBOX.
    Imap,
    /// An SMTP login.
    Smtp,
    /// Microsoft Graph: the queue mailbox's inbox folder read.
    #[serde(rename = "graph_inbox")]
    GraphInbox,
    /// Microsoft Graph: the send permission and the mailbox looked up.
    #[serde(rename = "graph_send")]
    GraphSend,
}

impl Step {
    /// The label the report shows.
    pub fn label(self) -> &'static str {
        match self {
            Step::Token => "token",
            Step::Imap => "imap",
            Step::Smtp => "smtp",
            Step::GraphInbox => "graph-inbox",
            Step::GraphSend => "graph-send",
        }
    }
}

/// The token request behind a check, and what the token says (unverified).
#[derive(Debug, Clone, Serialize)]
pub struct TokenReport {
    /// `client_credentials` or `password`.
    pub grant: &'static str,
    /// The tenant asked.
    pub tenant: String,
    /// The client ID.
    pub client_id: String,
    /// The account, for the password grant.
    pub account: Option<String>,
    /// The variables whose values were sent (names only).
    pub secret_variables: Vec<String>,
    /// The permission mail needs from this token.
    pub needs: String,
    /// The token's claims, when one was issued and could be read.
    pub claims: Option<Claims>,
    /// Why the claims could not be read.
    pub claims_error: Option<String>,
    /// The token's expiry (RFC 3339).
    pub expires: Option<String>,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id: `token.<server>`, `token.<server>.<account>`, `imap.<queue>`, `smtp.<queue>`.
    pub id: String,
    /// What it proves.
    pub step: Step,
    /// The path it tests: `graph`, `imap` or `smtp` (a token: the path it is asked for).
    pub protocol: &'static str,
    /// The SC server it belongs to (an incoming server's name, or `outgoing`).
    pub server: String,
    /// The queue address, for IMAP and SMTP checks and per-user tokens.
    pub queue: Option<String>,
    /// How it signs in.
    pub auth: AuthType,
    /// The URL or `host:port`.
    pub endpoint: String,
    /// True when it passed.
    pub ok: bool,
    /// The cause, in words.
    pub verdict: MailVerdictDoc,
    /// What to do.
    pub fix: Option<MailFix>,
    /// The token request, for token checks.
    pub token: Option<TokenReport>,
    /// The IMAP or SMTP dialogue, tokens hidden.
    pub transcript: Vec<String>,
    /// Remarks beside the verdict.
    pub notes: Vec<String>,
    /// Milliseconds it took.
    pub ms: f64,
}

/// Every check of one run.
#[derive(Debug, Clone, Serialize)]
pub struct MailReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The topology file.
    pub topology: String,
    /// The identity platform.
    pub authority: String,
    /// The IMAP endpoint.
    pub imap: String,
    /// The SMTP endpoint.
    pub smtp: String,
    /// Microsoft Graph.
    pub graph: String,
    /// Each SC server: the protocol set, the paths tested, and which passed.
    pub servers: Vec<ServerReport>,
    /// The checks, tokens first, then each queue's mailbox checks.
    pub checks: Vec<Check>,
    /// Every endpoint checked as CEM's Python will check it (`--dist`).
    pub runtime_trust: RuntimeReport,
    /// Remarks about the settings.
    pub notes: Vec<String>,
}

/// One SC server's paths: with `protocol: auto` both are tested and one passing is enough.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// The incoming server's name, or `outgoing`.
    pub server: String,
    /// `protocol:` as the topology sets it.
    pub protocol: Protocol,
    /// The paths tested (`graph`, `imap`, `smtp`).
    pub tested: Vec<&'static str>,
    /// The paths whose permission the server's tokens carry (read without trusting them).
    pub allowed: Vec<&'static str>,
    /// The paths on which every check passed.
    pub passed: Vec<&'static str>,
    /// True when the path CEM takes passed (with auto: any path).
    pub ok: bool,
    /// In words.
    pub summary: String,
}

impl MailReport {
    /// True when every server passed on its path and CEM's Python would trust every
    /// endpoint.
    pub fn ok(&self) -> bool {
        self.servers.iter().all(|s| s.ok) && self.runtime_trust.ok != Some(false)
    }

    /// How many failed, not counting an `auto` server's path that did not pass when the
    /// other one did.
    pub fn failed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| !c.ok && self.counts(c))
            .count()
    }

    /// False for a check of an `auto` server that passed on another path.
    pub fn counts(&self, c: &Check) -> bool {
        !self.servers.iter().any(|s| {
            s.server == c.server
                && s.protocol == Protocol::Auto
                && s.ok
                && !s.passed.contains(&c.protocol)
        })
    }
}

/// Which secret a check needs, by variable.
#[derive(Debug, Clone)]
enum GrantPlan {
    App {
        secret_env: String,
    },
    User {
        account: String,
        password_env: Option<String>,
        secret_env: Option<String>,
    },
}

/// A token to ask for.
#[derive(Debug, Clone)]
struct TokenJob {
    id: String,
    server: String,
    queue: Option<String>,
    auth: AuthType,
    tenant: String,
    client_id: String,
    grant: GrantPlan,
    api: Api,
    protocol: &'static str,
    needs: &'static str,
}

/// One mailbox check of a queue on one path, and the token it uses.
#[derive(Debug, Clone)]
struct PathJob {
    step: Step,
    protocol: &'static str,
    server: String,
    token: String,
    auth: AuthType,
    client: String,
    needs: &'static str,
}

/// A queue's mailbox checks.
#[derive(Debug, Clone)]
struct QueueJob {
    queue: Queue,
    paths: Vec<PathJob>,
}

/// The work, decided before anything is sent.
#[derive(Debug)]
struct Work {
    tokens: Vec<TokenJob>,
    queues: Vec<QueueJob>,
    /// Each server's protocol setting and the paths it tests.
    servers: Vec<(String, Protocol, Vec<&'static str>)>,
    notes: Vec<String>,
}

/// The path label of an API on a side: Graph, or IMAP (incoming) / SMTP (outgoing).
fn path_label(api: Api, incoming: bool) -> &'static str {
    match (api, incoming) {
        (Api::Graph, _) => "graph",
        (Api::Exchange, true) => "imap",
        (Api::Exchange, false) => "smtp",
    }
}

/// The check of a queue on a path.
fn path_step(api: Api, incoming: bool) -> Step {
    match (api, incoming) {
        (Api::Graph, true) => Step::GraphInbox,
        (Api::Graph, false) => Step::GraphSend,
        (Api::Exchange, true) => Step::Imap,
        (Api::Exchange, false) => Step::Smtp,
    }
}

/// A token id: `base` for Exchange (as before Graph was checked), `base.graph` for Graph.
fn token_id(base: String, api: Api) -> String {
    match api {
        Api::Exchange => base,
        Api::Graph => format!("{base}.graph"),
    }
}

fn decide(mail: &Mail, topology: &str, o: &MailOptions) -> Result<Work, MailError> {
    if mail.queues.is_empty() {
        return Err(MailError::NoQueues {
            topology: topology.into(),
        });
    }
    if let Some(name) = &o.server {
        let names = mail.incoming.iter().map(|s| s.name.as_str());
        if let Some(known) = unknown_choice(name, names) {
            return Err(MailError::UnknownServer {
                name: name.clone(),
                known,
            });
        }
    }
    if let Some(address) = &o.queue {
        let addresses = mail.queues.iter().map(|q| q.address.as_str());
        if let Some(known) = unknown_choice(address, addresses) {
            return Err(MailError::UnknownQueue {
                address: address.clone(),
                known,
            });
        }
    }
    let queues: Vec<&Queue> = mail
        .queues
        .iter()
        .filter(|q| {
            o.server
                .as_ref()
                .is_none_or(|s| q.server.eq_ignore_ascii_case(s))
        })
        .filter(|q| {
            o.queue
                .as_ref()
                .is_none_or(|a| q.address.eq_ignore_ascii_case(a))
        })
        .collect();
    if queues.is_empty() {
        let what = match (&o.server, &o.queue) {
            (Some(s), Some(q)) => format!("--server {s:?} --queue {q}"),
            (Some(s), None) => format!("--server {s:?}"),
            _ => "the selection".into(),
        };
        return Err(MailError::NothingSelected {
            what,
            help: "a queue is checked with the incoming server it names (mail.queues[].server)"
                .into(),
        });
    }
    let mut tokens: Vec<TokenJob> = Vec::new();
    let mut jobs = Vec::new();
    let mut notes = Vec::new();
    let push = |tokens: &mut Vec<TokenJob>, job: TokenJob| {
        if !tokens.iter().any(|t| t.id == job.id) {
            tokens.push(job);
        }
    };
    let mut servers: Vec<(String, Protocol, Vec<&'static str>)> = Vec::new();
    let mut server_seen = |name: &str, protocol: Protocol, incoming: bool| {
        if !servers.iter().any(|(n, _, _)| n == name) {
            let tested = protocol
                .apis()
                .iter()
                .map(|a| path_label(*a, incoming))
                .collect();
            servers.push((name.to_string(), protocol, tested));
        }
    };
    for q in &queues {
        let Some(s) = mail.incoming.iter().find(|s| s.name == q.server) else {
            continue;
        };
        server_seen(&s.name, s.protocol, true);
        let mut paths = Vec::new();
        for &api in s.protocol.apis() {
            let needs = api.permission(true, s.auth);
            let protocol = path_label(api, true);
            let job = match s.auth {
                AuthType::OauthService => TokenJob {
                    id: token_id(format!("token.{}", slug(&s.name)), api),
                    server: s.name.clone(),
                    queue: None,
                    auth: s.auth,
                    tenant: s.tenant.clone(),
                    client_id: s.client_id.clone(),
                    grant: GrantPlan::App {
                        secret_env: s.secret.as_ref().map(|r| r.env.clone()).unwrap_or_default(),
                    },
                    api,
                    protocol,
                    needs,
                },
                AuthType::OauthUser => TokenJob {
                    id: token_id(format!("token.{}.{}", slug(&s.name), slug(&q.account)), api),
                    server: s.name.clone(),
                    queue: Some(q.address.clone()),
                    auth: s.auth,
                    tenant: s.tenant.clone(),
                    client_id: s.client_id.clone(),
                    grant: GrantPlan::User {
                        account: q.account.clone(),
                        password_env: q.password.as_ref().map(|r| r.env.clone()),
                        secret_env: s.secret.as_ref().map(|r| r.env.clone()),
                    },
                    api,
                    protocol,
                    needs,
                },
            };
            paths.push(PathJob {
                step: path_step(api, true),
                protocol,
                server: s.name.clone(),
                token: job.id.clone(),
                auth: s.auth,
                client: s.client_id.clone(),
                needs,
            });
            push(&mut tokens, job);
        }
        if let Some(out) = &mail.outgoing {
            server_seen("outgoing", out.protocol, false);
            for &api in out.protocol.apis() {
                let needs = api.permission(false, out.auth);
                let protocol = path_label(api, false);
                let job = match out.auth {
                    AuthType::OauthService => TokenJob {
                        id: token_id("token.outgoing".to_string(), api),
                        server: "outgoing".into(),
                        queue: None,
                        auth: out.auth,
                        tenant: out.tenant.clone(),
                        client_id: out.server_user.clone(),
                        grant: GrantPlan::App {
                            secret_env: out
                                .password
                                .as_ref()
                                .map(|r| r.env.clone())
                                .unwrap_or_default(),
                        },
                        api,
                        protocol,
                        needs,
                    },
                    AuthType::OauthUser => TokenJob {
                        id: token_id(format!("token.outgoing.{}", slug(&q.account)), api),
                        server: "outgoing".into(),
                        queue: Some(q.address.clone()),
                        auth: out.auth,
                        tenant: out.tenant.clone(),
                        client_id: out.server_user.clone(),
                        grant: GrantPlan::User {
                            account: q.account.clone(),
                            password_env: q.password.as_ref().map(|r| r.env.clone()),
                            secret_env: out.password.as_ref().map(|r| r.env.clone()),
                        },
                        api,
                        protocol,
                        needs,
                    },
                };
                paths.push(PathJob {
                    step: path_step(api, false),
                    protocol,
                    server: "outgoing".into(),
                    token: job.id.clone(),
                    auth: out.auth,
                    client: out.server_user.clone(),
                    needs,
                });
                push(&mut tokens, job);
            }
        }
        jobs.push(QueueJob {
            queue: (*q).clone(),
            paths,
        });
    }
    if tokens.iter().any(|t| t.auth == AuthType::OauthUser) {
        notes.push("OAuth User signs in with the resource-owner password grant: Microsoft discourages it, and MFA or Conditional Access on the account blocks it; OAuth Service (client credentials) avoids both".into());
    }
    if mail.outgoing.is_none() {
        notes.push("no outgoing server in mail.outgoing: SMTP was not checked".into());
    }
    if servers.iter().any(|(_, p, _)| *p == Protocol::Auto) {
        notes.push("protocol: auto (not set) checks both paths of a server: set protocol: graph, imap or smtp in the topology to the one CEM takes (see the guide's mail page), so that only it counts".into());
    }
    Ok(Work {
        tokens,
        queues: jobs,
        servers,
        notes,
    })
}

/// The secrets of every token job, or the list of what is missing.
fn read_secrets(jobs: &[TokenJob]) -> Result<HashMap<String, Grant>, MailError> {
    let mut missing = Vec::new();
    let mut grants = HashMap::new();
    fn need(missing: &mut Vec<String>, var: &str, what: String) -> Option<Secret> {
        let s = Secret::from_env(var);
        if s.is_none() {
            let line = format!("{var} ({what})");
            if !missing.contains(&line) {
                missing.push(line);
            }
        }
        s
    }
    for j in jobs {
        let grant = match &j.grant {
            GrantPlan::App { secret_env } => need(
                &mut missing,
                secret_env,
                format!("the client secret of {}", server_words(&j.server)),
            )
            .map(|secret| Grant::ClientCredentials { secret }),
            GrantPlan::User {
                account,
                password_env,
                secret_env,
            } => {
                let secret = secret_env.as_ref().and_then(|v| {
                    need(
                        &mut missing,
                        v,
                        format!("the client secret of {}", server_words(&j.server)),
                    )
                });
                let password = match password_env {
                    Some(v) => need(&mut missing, v, format!("the password of {account}")),
                    None => {
                        missing.push(format!(
                            "no password_env for the queue of {account}: OAuth User signs in with the account's password; name its variable in mail.queues"
                        ));
                        None
                    }
                };
                password.map(|password| Grant::Password {
                    username: account.clone(),
                    password,
                    secret,
                })
            }
        };
        if let Some(g) = grant {
            grants.insert(j.id.clone(), g);
        }
    }
    if missing.is_empty() {
        Ok(grants)
    } else {
        Err(MailError::MissingSecrets { missing })
    }
}

fn server_words(server: &str) -> String {
    if server == "outgoing" {
        "the outgoing server".into()
    } else {
        format!("incoming server {server:?}")
    }
}

/// Runs every check of `mail` that the options select.
pub fn check(
    mail: &Mail,
    topology: &str,
    options: &MailOptions,
    reporter: &Reporter,
) -> Result<MailReport, MailError> {
    let work = decide(mail, topology, options)?;
    let grants = read_secrets(&work.tokens)?;
    let dist = options
        .dist
        .as_deref()
        .map(Distribution::open)
        .transpose()?;
    let client = Client::new(options.net.clone(), reporter.clone())?;
    let verifier = trust::platform_verifier(&options.net.extra_roots)?;
    let runner = Runner {
        options,
        client,
        verifier,
        doctor: OnceLock::new(),
        chains: RefCell::new(HashMap::new()),
        guid_tenants: mail
            .incoming
            .iter()
            .map(|s| s.tenant.as_str())
            .chain(mail.outgoing.iter().map(|o| o.tenant.as_str()))
            .filter(|t| is_guid(t))
            .map(str::to_ascii_lowercase)
            .collect(),
    };
    let mut checks = runner.run(&work, &grants, reporter);
    if let Some(pause) = options.retry_after
        && checks
            .iter()
            .any(|c| !c.ok && c.verdict.verdict.may_be_propagating())
    {
        reporter.info(format!(
            "a failure may be a permission granted minutes ago: waiting {}s, then trying once more",
            pause.as_secs()
        ));
        std::thread::sleep(pause);
        let first: Vec<(String, String)> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| (c.id.clone(), c.verdict.summary.clone()))
            .collect();
        checks = runner.run(&work, &grants, reporter);
        for c in &mut checks {
            if let Some((_, before)) = first.iter().find(|(id, _)| *id == c.id) {
                c.notes.push(if c.ok {
                    format!("failed at first ({before}), passed {}s later: the permission had not reached every server yet", pause.as_secs())
                } else {
                    format!("tried again after {}s (--retry-after), with the same result", pause.as_secs())
                });
            }
        }
    }
    let servers = server_reports(&work, &checks);
    let runtime_trust = match &dist {
        None => RuntimeReport::not_compared(),
        Some(d) => {
            reporter.info(format!(
                "comparing with the trust of the distribution in {}",
                options
                    .dist
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display()
            ));
            let smtp = work
                .queues
                .iter()
                .any(|q| q.paths.iter().any(|p| p.step == Step::Smtp));
            runtime::compare(
                d,
                &runner.verifier,
                !options.net.extra_roots.certs.is_empty(),
                runner.presented(smtp),
            )
        }
    };
    Ok(MailReport {
        schema: SCHEMA,
        topology: topology.into(),
        authority: options.authority.to_string(),
        imap: options.imap.authority(),
        smtp: options.smtp.authority(),
        graph: options.graph.to_string(),
        servers,
        checks,
        runtime_trust,
        notes: work.notes,
    })
}

fn skipped(p: &PathJob, q: &QueueJob, endpoint: String, reason: String) -> Check {
    let verdict = MailVerdict::Skipped { reason };
    Check {
        id: format!("{}.{}", p.step.label(), slug(&q.queue.address)),
        step: p.step,
        protocol: p.protocol,
        server: p.server.clone(),
        queue: Some(q.queue.address.clone()),
        auth: p.auth,
        endpoint,
        ok: false,
        fix: None,
        verdict: verdict.into(),
        token: None,
        transcript: Vec::new(),
        notes: Vec::new(),
        ms: 0.0,
    }
}

/// Each server's paths, from its checks.
fn server_reports(work: &Work, checks: &[Check]) -> Vec<ServerReport> {
    work.servers
        .iter()
        .map(|(name, protocol, tested)| {
            let of = |path: &'static str| {
                checks
                    .iter()
                    .filter(move |c| c.server == *name && c.protocol == path)
            };
            let passed: Vec<&'static str> = tested
                .iter()
                .copied()
                .filter(|p| of(p).next().is_some() && of(p).all(|c| c.ok))
                .collect();
            let allowed: Vec<&'static str> = tested
                .iter()
                .copied()
                .filter(|p| {
                    of(p).filter_map(|c| c.token.as_ref()).any(|t| {
                        t.claims.as_ref().is_some_and(|cl| {
                            cl.roles
                                .iter()
                                .chain(&cl.scopes)
                                .any(|g| g.eq_ignore_ascii_case(&t.needs))
                        })
                    })
                })
                .collect();
            let ok = match protocol {
                Protocol::Auto => !passed.is_empty(),
                _ => tested.iter().all(|p| passed.contains(p)),
            };
            let list = |v: &[&str]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            let failed: Vec<&str> = tested
                .iter()
                .copied()
                .filter(|p| !passed.contains(p))
                .collect();
            let mut summary = format!(
                "protocol: {}; tested {}; passed {}",
                protocol.label(),
                list(tested),
                list(&passed)
            );
            if !failed.is_empty() {
                summary.push_str(&format!("; failed {}", list(&failed)));
            }
            summary.push_str(&format!(
                "; the tokens' permissions allow {}",
                list(&allowed)
            ));
            ServerReport {
                server: name.clone(),
                protocol: *protocol,
                tested: tested.clone(),
                allowed,
                passed,
                ok,
                summary,
            }
        })
        .collect()
}

/// An issued token, what it says, and whether it is for another resource.
struct IssuedToken {
    token: String,
    claims: Option<Claims>,
    /// The token's audience, when it is not the one its path accepts.
    wrong_audience: Option<Vec<String>>,
}

struct Runner<'a> {
    options: &'a MailOptions,
    client: Client,
    verifier: std::sync::Arc<dyn ServerCertVerifier>,
    doctor: OnceLock<Option<Doctor>>,
    guid_tenants: Vec<String>,
    /// The chain each mail endpoint presented in a session, by `host:port`.
    chains: RefCell<HashMap<String, Vec<CertificateDer<'static>>>>,
}

impl Runner<'_> {
    /// Every token, then every mailbox check of every queue.
    fn run(&self, work: &Work, grants: &HashMap<String, Grant>, reporter: &Reporter) -> Vec<Check> {
        let mut checks = Vec::new();
        let mut issued: HashMap<String, IssuedToken> = HashMap::new();
        for job in &work.tokens {
            let Some(grant) = grants.get(&job.id) else {
                continue;
            };
            reporter.info(format!("asking for a token: {}", job.id));
            let (check, token) = self.token(job, grant);
            if let Some(t) = token {
                issued.insert(job.id.clone(), t);
            }
            checks.push(check);
        }
        let mut out = Vec::new();
        for q in &work.queues {
            for p in &q.paths {
                let endpoint = match p.step {
                    Step::Imap => self.options.imap.authority(),
                    Step::Smtp => self.options.smtp.authority(),
                    _ => self.options.graph.to_string(),
                };
                out.push(match issued.get(&p.token) {
                    Some(t) => match p.step {
                        Step::GraphInbox | Step::GraphSend => self.graph(p, q, t),
                        _ => self.mailbox(p, q, t),
                    },
                    None => {
                        let reason = checks
                            .iter()
                            .find(|c: &&Check| c.id == p.token)
                            .map(|c| {
                                format!("no usable token ({}: {})", p.token, c.verdict.summary)
                            })
                            .unwrap_or_else(|| format!("no token ({})", p.token));
                        skipped(p, q, endpoint, reason)
                    }
                });
            }
        }
        checks.extend(out);
        checks
    }

    /// The chain of the identity platform, IMAP and (when checked) SMTP: from the sessions
    /// when they reached TLS, else from a connection that stops after the handshake.
    fn presented(&self, smtp: bool) -> Vec<Presented> {
        let o = self.options;
        let mut out = Vec::new();
        let authority = Target::from_url(&o.authority, "identity platform");
        out.push(match authority {
            Some(t) => {
                let proxy = ProxyInfo::from_config(&o.net.proxy, &t.url);
                let reached = connect::reach(&t, &proxy, &[], o.net.timeout);
                let why = || {
                    reached
                        .handshake
                        .as_ref()
                        .and_then(|h| h.error.clone())
                        .or_else(|| reached.connect.as_ref().and_then(|c| c.error.clone()))
                        .or_else(|| reached.dns.as_ref().and_then(|d| d.error.clone()))
                        .unwrap_or_else(|| "the server presented no certificate".into())
                };
                Presented {
                    role: "identity platform",
                    endpoint: t.authority(),
                    host: t.host.clone(),
                    chain: if reached.presented.is_empty() {
                        Err(why())
                    } else {
                        Ok(reached.presented.clone())
                    },
                }
            }
            None => Presented {
                role: "identity platform",
                endpoint: o.authority.to_string(),
                host: String::new(),
                chain: Err("the authority URL names no host".into()),
            },
        });
        let mut mail = vec![("imap", &o.imap, false)];
        if smtp {
            mail.push(("smtp", &o.smtp, true));
        }
        for (role, endpoint, starttls) in mail {
            let seen = self.chains.borrow().get(&endpoint.authority()).cloned();
            let chain = match seen {
                Some(c) => Ok(c),
                None => {
                    wire::capture(endpoint, o.net.timeout, starttls).map_err(|f| wire_words(&f))
                }
            };
            out.push(Presented {
                role,
                endpoint: endpoint.authority(),
                host: endpoint.host.clone(),
                chain,
            });
        }
        out
    }

    fn secs(&self) -> u64 {
        self.options.net.timeout.as_secs().max(1)
    }

    fn doctor(&self) -> Option<&Doctor> {
        self.doctor
            .get_or_init(|| {
                let options = DoctorOptions {
                    net: self.options.net.clone(),
                    resolve: Vec::new(),
                    advice: Advice {
                        command: "mail check".into(),
                        export: None,
                        after_failure: true,
                    },
                    jobs: 1,
                };
                Doctor::new(options, &Reporter::silent()).ok()
            })
            .as_ref()
    }

    /// Asks for one token and judges it; returns the token when it is usable (or for
    /// another resource, to show what the server answers to it).
    fn token(&self, job: &TokenJob, grant: &Grant) -> (Check, Option<IssuedToken>) {
        let started = Instant::now();
        let mut notes = Vec::new();
        let mut report = TokenReport {
            grant: grant.name(),
            tenant: job.tenant.clone(),
            client_id: job.client_id.clone(),
            account: match &job.grant {
                GrantPlan::User { account, .. } => Some(account.clone()),
                GrantPlan::App { .. } => None,
            },
            secret_variables: match &job.grant {
                GrantPlan::App { secret_env } => vec![secret_env.clone()],
                GrantPlan::User {
                    password_env,
                    secret_env,
                    ..
                } => password_env.iter().chain(secret_env).cloned().collect(),
            },
            needs: job.needs.into(),
            claims: None,
            claims_error: None,
            expires: None,
        };
        let (secret_variable, user) = match &job.grant {
            GrantPlan::App { secret_env } => (Some(secret_env.as_str()), None),
            GrantPlan::User {
                account,
                password_env,
                secret_env,
            } => (
                secret_env.as_deref(),
                Some((account.as_str(), password_env.as_deref().unwrap_or(""))),
            ),
        };
        let mut fix = None;
        let mut usable = None;
        let (endpoint, verdict) = match token::token_url(&self.options.authority, &job.tenant) {
            Err(e) => (
                self.options.authority.to_string(),
                MailVerdict::ConnectFailed {
                    endpoint: self.options.authority.to_string(),
                    error: format!("cannot make the token URL for tenant {:?}: {e}", job.tenant),
                },
            ),
            Ok(url) => {
                let scope = token::scope(job.api);
                let verdict = match token::request(
                    &self.client,
                    &url,
                    &job.client_id,
                    grant,
                    &scope,
                ) {
                    Err(e) => {
                        let (v, f) = self.net_verdict(
                            &e,
                            "identity platform",
                            "the token endpoint's answer",
                        );
                        fix = f;
                        v
                    }
                    Ok(answer) => {
                        let skew_s = answer.date.map(|d| unix(d) - unix(SystemTime::now()));
                        if let Some(s) = skew_s.filter(|s| s.abs() > 300) {
                            notes.push(format!(
                                "the identity platform's clock and this machine's differ by {}s: set this machine's clock right",
                                s.abs()
                            ));
                        }
                        match token::read(&answer) {
                            Answer::Other { first_line } => MailVerdict::TokenNotJson {
                                url: url.to_string(),
                                status: answer.status.as_u16(),
                                content_type: answer.content_type.clone(),
                                answer: first_line,
                            },
                            Answer::Refused(r) => from_aadsts(
                                &AadError {
                                    code: r.code(),
                                    error: &token::ascii(&r.error, 80),
                                    description: &r.words(),
                                    correlation_id: r.correlation_id.as_deref(),
                                    trace_id: r.trace_id.as_deref(),
                                },
                                &AadContext {
                                    tenant: &job.tenant,
                                    client_id: &job.client_id,
                                    secret_variable,
                                    user,
                                    permission: job.needs,
                                    api: job.api,
                                    skew_s,
                                },
                            ),
                            Answer::Issued(issued) => {
                                let v = self.judge_token(job, &issued.access_token, &mut report);
                                let wrong_audience = match &v {
                                    MailVerdict::WrongResource { audience, .. } => {
                                        Some(audience.clone())
                                    }
                                    _ => None,
                                };
                                if v.ok() || wrong_audience.is_some() {
                                    usable = Some(IssuedToken {
                                        token: issued.access_token,
                                        claims: report.claims.clone(),
                                        wrong_audience,
                                    });
                                }
                                v
                            }
                        }
                    }
                };
                (url.to_string(), verdict)
            }
        };
        let fix = verdict.fix().or(fix);
        if job.auth == AuthType::OauthService {
            notes.push(format!(
                "when the client secret expires cannot be known from here: a token answer does not say, and reading the app's credentials needs a permission CEM's app should not have; see {} > {} > Certificates & secrets (the Expires column)",
                "Entra admin center > Identity > Applications > App registrations", job.client_id
            ));
        }
        let check = Check {
            id: job.id.clone(),
            step: Step::Token,
            protocol: job.protocol,
            server: job.server.clone(),
            queue: job.queue.clone(),
            auth: job.auth,
            endpoint,
            ok: verdict.ok(),
            verdict: verdict.into(),
            fix,
            token: Some(report),
            transcript: Vec::new(),
            notes,
            ms: millis(started),
        };
        (check, usable)
    }

    /// The verdict on an issued token: its claims, read without trusting them.
    fn judge_token(&self, job: &TokenJob, token: &str, report: &mut TokenReport) -> MailVerdict {
        let claims = match jwt::decode(token) {
            Ok(c) => c,
            Err(e) => {
                report.claims_error = Some(e.to_string());
                return MailVerdict::TokenIssued {
                    grant: report.grant,
                    permission: format!("{} (not readable: {e})", job.needs),
                };
            }
        };
        report.expires = claims.expires_at.map(rfc3339);
        let granted = match job.auth {
            AuthType::OauthService => &claims.roles,
            AuthType::OauthUser => &claims.scopes,
        };
        let verdict = if let Some(tid) = claims.tenant.as_deref()
            && !is_guid(&job.tenant)
            && self.guid_tenants.len() == 1
            && !self.guid_tenants.contains(&tid.to_ascii_lowercase())
        {
            MailVerdict::TenantElsewhere {
                domain: job.tenant.clone(),
                resolved: tid.to_string(),
                expected: self.guid_tenants[0].clone(),
            }
        } else if !claims.audience.is_empty()
            && !claims.audience.iter().any(|a| audience_is(a, job.api))
        {
            MailVerdict::WrongResource {
                protocol: job.protocol,
                needed: job.api.audience().into(),
                audience: claims.audience.clone(),
                answer: None,
            }
        } else if granted.is_empty() {
            MailVerdict::ConsentMissing {
                client_id: job.client_id.clone(),
                permission: job.needs.into(),
                api: job.api,
                code: None,
            }
        } else if !granted.iter().any(|g| g.eq_ignore_ascii_case(job.needs)) {
            MailVerdict::PermissionMissing {
                client_id: job.client_id.clone(),
                permission: job.needs.into(),
                api: job.api,
                auth: job.auth,
                granted: granted.clone(),
            }
        } else {
            MailVerdict::TokenIssued {
                grant: report.grant,
                permission: job.needs.into(),
            }
        };
        report.claims = Some(claims);
        verdict
    }

    /// A request that got no answer, judged (a TLS failure by the doctor).
    fn net_verdict(
        &self,
        e: &NetError,
        role: &str,
        waiting_for: &str,
    ) -> (MailVerdict, Option<MailFix>) {
        match e.root() {
            NetError::Tls { url, .. } => {
                let endpoint = url.to_string();
                let judged = Target::from_url(url, role).and_then(|t| {
                    let d = self.doctor()?.diagnose(&t);
                    Some((d.verdict, d.fix))
                });
                match judged {
                    Some((doctor, fix)) => (
                        MailVerdict::Tls { endpoint, doctor },
                        fix.as_ref().map(doctor_fix),
                    ),
                    None => (
                        MailVerdict::ConnectFailed {
                            endpoint,
                            error: first_line(&e.to_string()),
                        },
                        None,
                    ),
                }
            }
            NetError::Timeout { url, .. } => (
                MailVerdict::Timeout {
                    endpoint: url.to_string(),
                    waiting_for: waiting_for.into(),
                    secs: self.secs(),
                },
                None,
            ),
            NetError::Resolve { host, detail, .. } => (
                MailVerdict::DnsFailed {
                    name: host.clone(),
                    error: detail.clone(),
                },
                None,
            ),
            NetError::Connect {
                url, detail, proxy, ..
            } => (
                MailVerdict::ConnectFailed {
                    endpoint: url.to_string(),
                    error: format!("{detail}{}", proxy.replace("\n  note:", ";")),
                },
                None,
            ),
            other => (
                MailVerdict::ConnectFailed {
                    endpoint: self.options.authority.to_string(),
                    error: first_line(&other.to_string()),
                },
                None,
            ),
        }
    }

    /// An IMAP or SMTP login for a queue.
    fn mailbox(&self, p: &PathJob, q: &QueueJob, t: &IssuedToken) -> Check {
        let (step, auth, client_id, token) = (p.step, p.auth, p.client.as_str(), t.token.as_str());
        let started = Instant::now();
        let endpoint = match step {
            Step::Smtp => &self.options.smtp,
            _ => &self.options.imap,
        };
        let dial = Dial {
            endpoint,
            verifier: self.verifier.clone(),
            timeout: self.options.net.timeout,
            user: &q.queue.address,
            token,
        };
        let Session {
            transcript,
            result,
            presented,
        } = match step {
            Step::Smtp => wire::smtp(&dial),
            _ => wire::imap(&dial),
        };
        let seen = match &result {
            Err(WireFailure::Tls { presented, .. }) => presented.clone(),
            _ => presented,
        };
        if !seen.is_empty() {
            self.chains
                .borrow_mut()
                .entry(endpoint.authority())
                .or_insert(seen);
        }
        let protocol = if step == Step::Smtp { "smtp" } else { "imap" };
        let mailbox = q.queue.address.clone();
        let mut fix = None;
        let verdict = match result {
            Ok(Login::ImapOpened { messages }) => MailVerdict::MailboxOpened { mailbox, messages },
            Ok(Login::SmtpAccepted) => MailVerdict::SmtpAuthenticated { mailbox },
            Ok(Login::ImapRefused { answer } | Login::SmtpRefused { answer })
                if t.wrong_audience.is_some() =>
            {
                MailVerdict::WrongResource {
                    protocol,
                    needed: Api::Exchange.audience().into(),
                    audience: t.wrong_audience.clone().unwrap_or_default(),
                    answer: Some(answer),
                }
            }
            Ok(Login::SmtpRefused { answer })
                if answer.contains("5.7.139")
                    && answer.to_ascii_lowercase().contains("security defaults") =>
            {
                MailVerdict::SmtpSecurityDefaults { mailbox, answer }
            }
            Ok(Login::SmtpRefused { answer }) if answer.contains("5.7.139") => {
                MailVerdict::SmtpAuthDisabled { mailbox, answer }
            }
            Ok(
                Login::ImapRefused { answer }
                | Login::ImapNoInbox { answer }
                | Login::SmtpRefused { answer },
            ) => MailVerdict::MailboxNotPermitted {
                mailbox,
                protocol,
                auth,
                client_id: client_id.into(),
                answer,
            },
            Err(WireFailure::Dns { error }) => MailVerdict::DnsFailed {
                name: endpoint.host.clone(),
                error,
            },
            Err(WireFailure::Connect { error }) => MailVerdict::ConnectFailed {
                endpoint: endpoint.authority(),
                error,
            },
            Err(WireFailure::Timeout { waiting_for }) => MailVerdict::Timeout {
                endpoint: endpoint.authority(),
                waiting_for,
                secs: self.secs(),
            },
            Err(WireFailure::Unexpected { expected, answer }) => MailVerdict::ProtocolError {
                protocol,
                endpoint: endpoint.authority(),
                expected,
                answer,
            },
            Err(WireFailure::Tls { error, presented }) => {
                let judged = Target::parse(&endpoint.authority())
                    .ok()
                    .and_then(|t| Some(self.doctor()?.judge(&t, &presented, &error)));
                let doctor = match judged {
                    Some((doc, f)) => {
                        fix = f.as_ref().map(doctor_fix);
                        doc
                    }
                    None => VerdictDoc::new(crate::job::doctor::Verdict::HandshakeFailed {
                        reason: error,
                    }),
                };
                MailVerdict::Tls {
                    endpoint: endpoint.authority(),
                    doctor,
                }
            }
        };
        let fix = verdict.fix().or(fix);
        Check {
            id: format!("{}.{}", step.label(), slug(&q.queue.address)),
            step,
            protocol,
            server: p.server.clone(),
            queue: Some(q.queue.address.clone()),
            auth,
            endpoint: endpoint.authority(),
            ok: verdict.ok(),
            verdict: verdict.into(),
            fix,
            token: None,
            transcript,
            notes: Vec::new(),
            ms: millis(started),
        }
    }
}

impl Runner<'_> {
    /// A Graph check of a queue: read its inbox folder (incoming), or look its mailbox up
    /// for sending; only GETs, so nothing is sent or changed.
    fn graph(&self, p: &PathJob, q: &QueueJob, t: &IssuedToken) -> Check {
        let started = Instant::now();
        let mailbox = q.queue.address.clone();
        let mut url = self.options.graph.clone();
        {
            let Ok(mut segs) = url.path_segments_mut() else {
                unreachable!("an https URL has path segments")
            };
            segs.clear().extend(["v1.0", "users", &mailbox]);
            if p.step == Step::GraphInbox {
                segs.extend(["mailFolders", "inbox"]);
            }
        }
        let path = url.path().to_string();
        let mut transcript = vec![format!("GET {path}")];
        let mut fix = None;
        let granted = t.claims.as_ref().is_some_and(|cl| {
            cl.roles
                .iter()
                .chain(&cl.scopes)
                .any(|g| g.eq_ignore_ascii_case(p.needs))
        });
        let verdict = match self.client.get_bearer(&url, &t.token) {
            Err(e) => {
                let (v, f) = self.net_verdict(&e, "Microsoft Graph", "Graph's answer");
                fix = f;
                v
            }
            Ok(answer) => {
                let status = answer.status.as_u16();
                let doc: serde_json::Value =
                    serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
                let code = doc["error"]["code"].as_str().unwrap_or("").to_string();
                let message = doc["error"]["message"].as_str().unwrap_or("");
                let words = if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    token::ascii(&format!("{code}: {message}"), 200)
                };
                transcript.push(format!(
                    "-> {status} {}",
                    if answer.status.is_success() {
                        "OK".to_string()
                    } else {
                        words.clone()
                    }
                ));
                graph_verdict(GraphAnswer {
                    step: p.step,
                    status,
                    code: &code,
                    message,
                    words,
                    body: &doc,
                    mailbox,
                    client_id: &p.client,
                    needs: p.needs,
                    auth: p.auth,
                    granted,
                    wrong_audience: t.wrong_audience.as_deref(),
                })
            }
        };
        let fix = verdict.fix().or(fix);
        Check {
            id: format!("{}.{}", p.step.label(), slug(&q.queue.address)),
            step: p.step,
            protocol: p.protocol,
            server: p.server.clone(),
            queue: Some(q.queue.address.clone()),
            auth: p.auth,
            endpoint: self.options.graph.to_string(),
            ok: verdict.ok(),
            verdict: verdict.into(),
            fix,
            token: None,
            transcript,
            notes: Vec::new(),
            ms: millis(started),
        }
    }
}

/// Graph's answer to one check, and what the check knows about its token.
struct GraphAnswer<'a> {
    step: Step,
    status: u16,
    code: &'a str,
    message: &'a str,
    words: String,
    body: &'a serde_json::Value,
    mailbox: String,
    client_id: &'a str,
    needs: &'static str,
    auth: AuthType,
    /// The token's claims carry the permission.
    granted: bool,
    wrong_audience: Option<&'a [String]>,
}

/// Graph's answer as a verdict.
fn graph_verdict(a: GraphAnswer<'_>) -> MailVerdict {
    let GraphAnswer {
        step,
        status,
        code,
        message,
        words,
        body,
        mailbox,
        client_id,
        needs,
        auth,
        granted,
        wrong_audience,
    } = a;
    if (200..300).contains(&status) {
        return match step {
            Step::GraphSend => MailVerdict::GraphSendReady {
                mailbox,
                permission: needs.into(),
                looked_up: true,
            },
            _ => MailVerdict::GraphInboxRead {
                mailbox,
                messages: body["totalItemCount"].as_u64(),
            },
        };
    }
    match (status, code) {
        (401, _) if wrong_audience.is_some() => MailVerdict::WrongResource {
            protocol: "graph",
            needed: Api::Graph.audience().into(),
            audience: wrong_audience.map(<[String]>::to_vec).unwrap_or_default(),
            answer: Some(words),
        },
        (401, _) => MailVerdict::GraphUnauthorized { answer: words },
        (403, "Authorization_RequestDenied") if step == Step::GraphSend && granted => {
            MailVerdict::GraphSendReady {
                mailbox,
                permission: needs.into(),
                looked_up: false,
            }
        }
        (_, "ErrorAccessDenied") | (403, _) if auth == AuthType::OauthUser && granted => {
            // A user token with the permission: the account may not open this mailbox.
            MailVerdict::MailboxNotPermitted {
                mailbox,
                protocol: "graph",
                auth,
                client_id: client_id.into(),
                answer: words,
            }
        }
        (_, "ErrorAccessDenied") | (403, _) => {
            let policy = message.contains("AccessPolicy") || message.contains("[RAOP]");
            if policy || granted {
                MailVerdict::GraphScopeExcludes {
                    mailbox,
                    client_id: client_id.into(),
                    access_policy: policy,
                    answer: words,
                }
            } else {
                MailVerdict::GraphAccessDenied {
                    mailbox,
                    client_id: client_id.into(),
                    permission: needs.into(),
                    auth,
                    answer: words,
                }
            }
        }
        (_, "MailboxNotEnabledForRESTAPI" | "MailboxNotSupportedForRESTAPI") => {
            MailVerdict::GraphMailboxNotEnabled {
                mailbox,
                answer: words,
            }
        }
        (
            _,
            "ResourceNotFound"
            | "Request_ResourceNotFound"
            | "ErrorInvalidUser"
            | "ErrorNonExistentMailbox",
        )
        | (404, "") => MailVerdict::GraphMailboxNotFound {
            mailbox,
            answer: words,
        },
        _ => MailVerdict::GraphError {
            status,
            answer: words,
        },
    }
}

/// True when `aud` names `api` (its URL, with or without a slash, or its app ID).
fn audience_is(aud: &str, api: Api) -> bool {
    let id = match api {
        Api::Graph => "00000003-0000-0000-c000-000000000000",
        Api::Exchange => "00000002-0000-0ff1-ce00-000000000000",
    };
    aud.trim_end_matches('/')
        .eq_ignore_ascii_case(api.audience())
        || aud.eq_ignore_ascii_case(id)
}

/// The doctor's fix as mail fixes carry it.
fn doctor_fix(f: &Fix) -> MailFix {
    let mut steps: Vec<String> = f
        .commands
        .iter()
        .map(|c| format!("{}: {}", c.label, c.command))
        .collect();
    steps.extend(f.notes.iter().cloned());
    MailFix {
        summary: f.summary.clone(),
        steps,
    }
}

/// Why a capture connection got no chain, in a few words.
fn wire_words(f: &WireFailure) -> String {
    match f {
        WireFailure::Dns { error } => format!("cannot resolve the name: {error}"),
        WireFailure::Connect { error } => format!("no connection: {error}"),
        WireFailure::Timeout { waiting_for } => {
            format!("nothing came while waiting for {waiting_for}")
        }
        WireFailure::Tls { error, .. } => format!("the TLS handshake failed: {error}"),
        WireFailure::Unexpected { expected, answer } => {
            format!("expected {expected}, the server answered {answer:?}")
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

fn millis(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A mail check's results as the runbook carries them: read from a live run or a saved
/// `extpy mail check --json` document through the same typed shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PlanChecks {
    /// `live (extpy mail check)`, or the report file.
    #[serde(default)]
    pub source: String,
    /// Every check.
    pub checks: Vec<PlanCheck>,
}

/// One check in the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PlanCheck {
    /// Its id.
    pub id: String,
    /// `token`, `imap`, `smtp`, `graph_inbox` or `graph_send`.
    pub step: Step,
    /// The path tested: `graph`, `imap` or `smtp` (empty in reports made before it).
    #[serde(default)]
    pub protocol: String,
    /// The SC server (`outgoing` for the outgoing server).
    pub server: String,
    /// The queue address.
    pub queue: Option<String>,
    /// True when it passed.
    pub ok: bool,
    /// The verdict.
    pub verdict: PlanVerdict,
    /// The fix.
    pub fix: Option<MailFix>,
}

/// The verdict's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PlanVerdict {
    /// Its kind.
    pub kind: String,
    /// Its line.
    pub summary: String,
}

#[derive(serde::Deserialize)]
struct Saved {
    schema: String,
    checks: Vec<PlanCheck>,
}

impl PlanChecks {
    /// The results of a live run.
    pub fn from_report(report: &MailReport) -> Self {
        let saved = serde_json::to_value(report)
            .ok()
            .and_then(|v| serde_json::from_value::<Saved>(v).ok());
        Self {
            source: "live (extpy mail check)".into(),
            checks: saved.map(|s| s.checks).unwrap_or_default(),
        }
    }

    /// The results of a saved `extpy mail check --json`.
    pub fn from_saved(text: &str, source: String) -> Result<Self, String> {
        let saved: Saved = serde_json::from_str(text)
            .map_err(|e| format!("not a saved `extpy mail check --json` report: {e}"))?;
        if saved.schema != SCHEMA {
            return Err(format!(
                "its schema is {:?}, not {SCHEMA:?}: make it again with this extpy",
                saved.schema
            ));
        }
        Ok(Self {
            source,
            checks: saved.checks,
        })
    }
}

/// `None` when `wanted` is one of `choices` (ignoring ASCII case, as SC does); otherwise the
/// choices joined for the error that names them.
fn unknown_choice<'a>(
    wanted: &str,
    choices: impl Iterator<Item = &'a str> + Clone,
) -> Option<String> {
    if choices.clone().any(|c| c.eq_ignore_ascii_case(wanted)) {
        return None;
    }
    Some(choices.collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod graph_tests {
    use super::*;

    fn answer(
        step: Step,
        status: u16,
        code: &str,
        message: &str,
        auth: AuthType,
        granted: bool,
    ) -> MailVerdict {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        graph_verdict(GraphAnswer {
            step,
            status,
            code,
            message,
            words: format!("{code}: {message}"),
            body: &body,
            mailbox: "q@x.example".into(),
            client_id: "c",
            needs: "Mail.ReadWrite",
            auth,
            granted,
            wrong_audience: None,
        })
    }

    #[test]
    fn graph_errors_map_to_their_verdicts() {
        use AuthType::*;
        let denied = "Access is denied. Check credentials and try again.";
        let raop = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.";
        // (step, status, code, message, auth, token has the permission, kind, passes)
        let inbox = Step::GraphInbox;
        let cases = [
            (
                inbox,
                403,
                "ErrorAccessDenied",
                denied,
                OauthService,
                false,
                "graph_access_denied",
                false,
            ),
            (
                inbox,
                403,
                "ErrorAccessDenied",
                denied,
                OauthService,
                true,
                "graph_scope_excludes",
                false,
            ),
            (
                inbox,
                403,
                "ErrorAccessDenied",
                raop,
                OauthService,
                false,
                "graph_scope_excludes",
                false,
            ),
            (
                inbox,
                403,
                "ErrorAccessDenied",
                denied,
                OauthUser,
                true,
                "mailbox_not_permitted",
                false,
            ),
            (
                inbox,
                404,
                "MailboxNotEnabledForRESTAPI",
                "inactive",
                OauthService,
                true,
                "graph_mailbox_not_enabled",
                false,
            ),
            (
                inbox,
                404,
                "ResourceNotFound",
                "no",
                OauthService,
                true,
                "graph_mailbox_not_found",
                false,
            ),
            (
                inbox,
                401,
                "InvalidAuthenticationToken",
                "expired",
                OauthService,
                true,
                "graph_unauthorized",
                false,
            ),
            (
                inbox,
                500,
                "UnknownError",
                "boom",
                OauthService,
                true,
                "graph_error",
                false,
            ),
            (
                Step::GraphSend,
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges",
                OauthService,
                true,
                "graph_send_ready",
                true,
            ),
        ];
        for (step, status, code, message, auth, granted, kind, ok) in cases {
            let v = answer(step, status, code, message, auth, granted);
            let doc = serde_json::to_value(&v).unwrap();
            assert_eq!(doc["kind"], kind, "{status} {code}: {v:?}");
            assert_eq!(v.ok(), ok, "{v:?}");
            assert_eq!(v.fix().is_some(), !ok, "{v:?}");
        }
        let v = answer(inbox, 403, "ErrorAccessDenied", raop, OauthService, false);
        assert!(
            matches!(
                v,
                MailVerdict::GraphScopeExcludes {
                    access_policy: true,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn audiences_by_url_or_app_id() {
        assert!(audience_is("https://graph.microsoft.com", Api::Graph));
        assert!(audience_is("https://graph.microsoft.com/", Api::Graph));
        assert!(audience_is(
            "00000003-0000-0000-c000-000000000000",
            Api::Graph
        ));
        assert!(audience_is(
            "00000002-0000-0ff1-ce00-000000000000",
            Api::Exchange
        ));
        assert!(!audience_is("https://outlook.office365.com", Api::Graph));
        assert!(!audience_is("https://graph.microsoft.com", Api::Exchange));
    }
}

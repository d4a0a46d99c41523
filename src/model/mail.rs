//! SC e-mail settings for OAuth with Microsoft 365 (the optional `mail:` block of a
//! topology): checked at the edge, secrets only ever named by an environment variable.
//! `extpy mail check`, which tries them live, is the job `crate::job::mail`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::model::manifest::yaml::{self, InputError, Origin};

/// How a mail server authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// OAuth User: each queue signs in with its own account.
    OauthUser,
    /// OAuth Service: the application signs in with a client secret.
    OauthService,
}

impl AuthType {
    /// The name SC shows.
    pub fn label(self) -> &'static str {
        match self {
            AuthType::OauthUser => "OAuth User",
            AuthType::OauthService => "OAuth Service",
        }
    }
}

/// The web API a mail path goes through, and so the resource a token is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// Microsoft Graph (`/v1.0/users/{address}/...`).
    Graph,
    /// Exchange Online's IMAP and SMTP AUTH.
    Exchange,
}

impl Api {
    /// The token's audience (`aud`) for this API.
    pub fn audience(self) -> &'static str {
        match self {
            Api::Graph => "https://graph.microsoft.com",
            Api::Exchange => "https://outlook.office365.com",
        }
    }

    /// The name Entra's "API permissions" page gives it.
    pub fn label(self) -> &'static str {
        match self {
            Api::Graph => "Microsoft Graph",
            Api::Exchange => "Office 365 Exchange Online",
        }
    }

    /// The permission a server needs on this API: incoming (read the queue mailboxes) or
    /// outgoing (send), as an application (`roles`) or for a user (`scp`).
    pub fn permission(self, incoming: bool, auth: AuthType) -> &'static str {
        match (self, incoming, auth) {
            (Api::Graph, true, _) => "Mail.ReadWrite",
            (Api::Graph, false, _) => "Mail.Send",
            (Api::Exchange, true, AuthType::OauthService) => "IMAP.AccessAsApp",
            (Api::Exchange, true, AuthType::OauthUser) => "IMAP.AccessAsUser.All",
            (Api::Exchange, false, AuthType::OauthService) => "SMTP.SendAsApp",
            (Api::Exchange, false, AuthType::OauthUser) => "SMTP.Send",
        }
    }
}

/// The way a server reaches its mailboxes (`protocol:`): Microsoft Graph, Exchange's
/// IMAP (incoming) or SMTP (outgoing), or `auto`, which checks both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Both, each reported, with the ones the token's permissions allow.
    #[default]
    Auto,
    /// Microsoft Graph.
    Graph,
    /// IMAP (incoming servers only).
    Imap,
    /// SMTP AUTH (the outgoing server only).
    Smtp,
}

impl Protocol {
    /// As written in the topology.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Graph => "graph",
            Protocol::Imap => "imap",
            Protocol::Smtp => "smtp",
        }
    }

    /// The APIs to check, Graph first.
    pub fn apis(self) -> &'static [Api] {
        match self {
            Protocol::Auto => &[Api::Graph, Api::Exchange],
            Protocol::Graph => &[Api::Graph],
            Protocol::Imap | Protocol::Smtp => &[Api::Exchange],
        }
    }

    /// The protocol and permission a server needs, in words for the runbook:
    /// `Microsoft Graph: application permission Mail.ReadWrite`.
    pub fn needs(self, incoming: bool, auth: AuthType) -> String {
        let kind = match auth {
            AuthType::OauthService => "application permission",
            AuthType::OauthUser => "delegated permission",
        };
        let one = |api: Api| {
            let how = match (api, incoming) {
                (Api::Graph, _) => "Microsoft Graph",
                (Api::Exchange, true) => "IMAP",
                (Api::Exchange, false) => "SMTP AUTH",
            };
            let of = match api {
                Api::Graph => String::new(),
                Api::Exchange => format!(" of {}", api.label()),
            };
            format!("{how}: {kind} {}{of}", api.permission(incoming, auth))
        };
        match self {
            Protocol::Auto => format!(
                "not set (auto): {} or {}; set protocol: in the topology to the one CEM uses",
                one(Api::Graph),
                one(Api::Exchange)
            ),
            p => one(p.apis()[0]),
        }
    }
}

/// A secret, named by the environment variable that holds it; its value is never read
/// into a plan or printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    /// The variable's name.
    pub env: String,
    /// Whether the variable is set where the plan was made.
    pub present: bool,
}

impl SecretRef {
    fn new(env: String) -> Self {
        let present = std::env::var_os(&env).is_some_and(|v| !v.is_empty());
        Self { env, present }
    }

    /// How the plan refers to it.
    pub fn describe(&self) -> String {
        format!(
            "the value of environment variable {}{}",
            self.env,
            if self.present { "" } else { " (not set here)" }
        )
    }
}

/// An incoming mail server (SC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incoming {
    /// Its name in SC.
    pub name: String,
    /// `https://login.microsoftonline.com/<tenant>`.
    pub address: String,
    /// The tenant (GUID, or a domain with a warning).
    pub tenant: String,
    /// Authentication type.
    pub auth: AuthType,
    /// The application (client) ID.
    pub client_id: String,
    /// The client secret (OAuth Service).
    pub secret: Option<SecretRef>,
    /// How it reads the queue mailboxes: `graph`, `imap` or `auto`.
    pub protocol: Protocol,
}

/// The external outgoing server (SC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outgoing {
    /// Tenant ID or domain.
    pub tenant: String,
    /// Authentication type.
    pub auth: AuthType,
    /// The server user (GUID).
    pub server_user: String,
    /// The password or secret.
    pub password: Option<SecretRef>,
    /// How it sends: `graph`, `smtp` or `auto`.
    pub protocol: Protocol,
}

/// An e-mail queue (SC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queue {
    /// The queue's address.
    pub address: String,
    /// The mailbox account.
    pub account: String,
    /// The account's password (OAuth User).
    pub password: Option<SecretRef>,
    /// The incoming server it reads from.
    pub server: String,
}

/// The validated mail settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    /// Incoming servers.
    pub incoming: Vec<Incoming>,
    /// The external outgoing server, if set.
    pub outgoing: Option<Outgoing>,
    /// Queues.
    pub queues: Vec<Queue>,
    /// Things accepted but worth a second look.
    pub warnings: Vec<String>,
}

/// The `mail:` block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    #[serde(default)]
    incoming: Vec<RawIncoming>,
    #[serde(default)]
    outgoing: Option<RawOutgoing>,
    #[serde(default)]
    queues: Vec<RawQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncoming {
    name: String,
    tenant: String,
    auth: AuthType,
    client_id: String,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret: Option<serde_yaml::Value>,
    #[serde(default)]
    protocol: Protocol,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutgoing {
    tenant: String,
    auth: AuthType,
    server_user: String,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password: Option<serde_yaml::Value>,
    #[serde(default)]
    protocol: Protocol,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    address: String,
    account: String,
    server: String,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password: Option<serde_yaml::Value>,
}

/// True for a GUID in its usual 8-4-4-4-12 hex form.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// True for a plausible mailbox address (`local@domain.tld`, no spaces).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

fn is_domain(s: &str) -> bool {
    s.contains('.')
        && s.split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RawMail {
    /// Validates the block; `text` is the whole topology, for line numbers.
    pub fn validate(self, origin: &Origin, text: &str) -> Result<Mail, InputError> {
        let at = |needle: &str, field: String, msg: String| {
            InputError::at(origin, yaml::locate(text, needle, 0), field, msg)
        };
        let secret_in_file = |key: &str, field: String| {
            InputError::at(
                origin,
                yaml::locate(text, key, 0),
                field,
                "a secret must not be written in the topology file".to_string(),
            )
            .with_help(format!(
                "put it in an environment variable and name that variable with {key}_env"
            ))
        };
        let env_ref =
            |name: Option<String>, field: String| -> Result<Option<SecretRef>, InputError> {
                match name {
                    None => Ok(None),
                    Some(n) if is_env_name(&n) => Ok(Some(SecretRef::new(n))),
                    Some(n) => Err(at(
                        &n,
                        field,
                        format!("{n:?} is not an environment variable name"),
                    )),
                }
            };
        let mut warnings = Vec::new();
        let mut incoming = Vec::new();
        let mut names = HashSet::new();
        for (i, r) in self.incoming.into_iter().enumerate() {
            let f = |k: &str| format!("mail.incoming[{i}].{k}");
            if r.secret.is_some() {
                return Err(secret_in_file("secret", f("secret")));
            }
            if !names.insert(r.name.to_lowercase()) {
                return Err(at(
                    &r.name,
                    f("name"),
                    format!("incoming server {:?} is listed twice", r.name),
                ));
            }
            if !is_guid(&r.tenant) {
                if is_domain(&r.tenant) {
                    warnings.push(format!(
                        "incoming server {:?}: tenant {:?} is a domain; SC's server address asks for the tenant ID (a GUID), so prefer it",
                        r.name, r.tenant
                    ));
                } else {
                    return Err(at(
                        &r.tenant,
                        f("tenant"),
                        format!("{:?} is neither a tenant ID (GUID) nor a domain", r.tenant),
                    ));
                }
            }
            if !is_guid(&r.client_id) {
                return Err(at(
                    &r.client_id,
                    f("client_id"),
                    format!(
                        "{:?} is not a client ID (a GUID like 00000000-0000-0000-0000-000000000000)",
                        r.client_id
                    ),
                ));
            }
            if r.protocol == Protocol::Smtp {
                return Err(at(
                    "protocol: smtp",
                    f("protocol"),
                    format!(
                        "incoming server {:?}: smtp is how the outgoing server sends, not how an incoming server reads",
                        r.name
                    ),
                )
                .with_help("use protocol: graph, imap or auto (the default: check both)"));
            }
            let secret = env_ref(r.secret_env, f("secret_env"))?;
            if r.auth == AuthType::OauthService && secret.is_none() {
                return Err(at(
                    &r.name,
                    f("secret_env"),
                    format!(
                        "incoming server {:?} uses OAuth Service, which needs a client secret",
                        r.name
                    ),
                )
                .with_help(
                    "name the environment variable that holds it: secret_env: MAIL_CLIENT_SECRET",
                ));
            }
            incoming.push(Incoming {
                address: format!("https://login.microsoftonline.com/{}", r.tenant),
                name: r.name,
                tenant: r.tenant,
                auth: r.auth,
                client_id: r.client_id,
                secret,
                protocol: r.protocol,
            });
        }
        let outgoing = match self.outgoing {
            None => None,
            Some(r) => {
                let f = |k: &str| format!("mail.outgoing.{k}");
                if r.password.is_some() {
                    return Err(secret_in_file("password", f("password")));
                }
                if !is_guid(&r.tenant) && !is_domain(&r.tenant) {
                    return Err(at(
                        &r.tenant,
                        f("tenant"),
                        format!("{:?} is neither a tenant ID (GUID) nor a domain", r.tenant),
                    ));
                }
                if !is_guid(&r.server_user) {
                    return Err(at(
                        &r.server_user,
                        f("server_user"),
                        format!("{:?} is not a server user ID (a GUID)", r.server_user),
                    ));
                }
                if r.protocol == Protocol::Imap {
                    return Err(at(
                        "protocol: imap",
                        f("protocol"),
                        "the outgoing server: imap is how an incoming server reads, not how the outgoing server sends".into(),
                    )
                    .with_help("use protocol: graph, smtp or auto (the default: check both)"));
                }
                let password = env_ref(r.password_env, f("password_env"))?;
                if r.auth == AuthType::OauthService && password.is_none() {
                    return Err(at("outgoing", f("password_env"), "the outgoing server uses OAuth Service, which needs a secret".into())
                        .with_help("name the environment variable that holds it: password_env: MAIL_OUTGOING_SECRET"));
                }
                Some(Outgoing {
                    tenant: r.tenant,
                    auth: r.auth,
                    server_user: r.server_user,
                    password,
                    protocol: r.protocol,
                })
            }
        };
        let mut queues = Vec::new();
        for (i, r) in self.queues.into_iter().enumerate() {
            let f = |k: &str| format!("mail.queues[{i}].{k}");
            if r.password.is_some() {
                return Err(secret_in_file("password", f("password")));
            }
            if !is_email(&r.address) {
                return Err(at(
                    &r.address,
                    f("address"),
                    format!("{:?} is not an e-mail address", r.address),
                ));
            }
            if !is_email(&r.account) {
                return Err(at(
                    &r.account,
                    f("account"),
                    format!(
                        "{:?} is not a mailbox account (an e-mail address)",
                        r.account
                    ),
                ));
            }
            let Some(server) = incoming
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&r.server))
            else {
                let known: Vec<&str> = incoming.iter().map(|s| s.name.as_str()).collect();
                return Err(at(
                    &r.server,
                    f("server"),
                    format!(
                        "queue {} reads from {:?}, which is not an incoming server here (known: {})",
                        r.address,
                        r.server,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            let password = env_ref(r.password_env, f("password_env"))?;
            if server.auth == AuthType::OauthUser && password.is_none() {
                warnings.push(format!(
                    "queue {}: its server {:?} uses OAuth User, where SC asks for the account's password; name it with password_env",
                    r.address, server.name
                ));
            }
            queues.push(Queue {
                address: r.address,
                account: r.account,
                password,
                server: server.name.clone(),
            });
        }
        Ok(Mail {
            incoming,
            outgoing,
            queues,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_addresses() {
        assert!(is_guid("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"));
        assert!(!is_guid("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(is_email("support@contoso.example"));
        assert!(!is_email("support@contoso"));
        assert!(!is_email("sup port@contoso.example"));
        assert!(!is_email("@contoso.example"));
        assert!(!is_email("a@b@c.example"));
        assert!(is_env_name("MAIL_SECRET_1"));
        assert!(!is_env_name("1SECRET"));
        assert!(!is_env_name("s3cr3t value"));
    }

    /// The mail block with `incoming` and `outgoing` lines added, validated.
    fn topology(incoming: &str, outgoing: &str) -> Result<Mail, String> {
        let text = format!(
            "incoming:\n  - name: In\n    tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\n    auth: oauth_service\n    client_id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8\n    secret_env: S\n{incoming}outgoing:\n  tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\n  auth: oauth_service\n  server_user: 6ba7b812-9dad-11d1-80b4-00c04fd430c8\n  password_env: P\n{outgoing}"
        );
        let raw: RawMail = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
        raw.validate(&Origin("t.yaml".into()), &text)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn protocols_default_to_auto_and_take_their_side_s_names() {
        let m = topology("", "").unwrap();
        assert_eq!(m.incoming[0].protocol, Protocol::Auto);
        assert_eq!(m.outgoing.as_ref().unwrap().protocol, Protocol::Auto);
        assert_eq!(Protocol::Auto.apis(), &[Api::Graph, Api::Exchange]);
        let m = topology("    protocol: graph\n", "  protocol: smtp\n").unwrap();
        assert_eq!(m.incoming[0].protocol, Protocol::Graph);
        assert_eq!(m.outgoing.unwrap().protocol.apis(), &[Api::Exchange]);
        let e = topology("    protocol: smtp\n", "").unwrap_err();
        assert!(
            e.contains("t.yaml:7")
                && e.contains("mail.incoming[0].protocol")
                && e.contains("help: use protocol: graph, imap or auto"),
            "{e}"
        );
        let e = topology("", "  protocol: imap\n").unwrap_err();
        assert!(
            e.contains("mail.outgoing.protocol") && e.contains("graph, smtp or auto"),
            "{e}"
        );
        let e = topology("    protocol: pop3\n", "").unwrap_err();
        assert!(e.contains("pop3"), "{e}");
    }

    #[test]
    fn each_path_names_its_permission() {
        use AuthType::*;
        assert_eq!(Api::Graph.permission(true, OauthService), "Mail.ReadWrite");
        assert_eq!(Api::Graph.permission(false, OauthService), "Mail.Send");
        assert_eq!(
            Api::Exchange.permission(true, OauthService),
            "IMAP.AccessAsApp"
        );
        assert_eq!(Api::Exchange.permission(false, OauthUser), "SMTP.Send");
        assert_eq!(
            Protocol::Graph.needs(true, OauthService),
            "Microsoft Graph: application permission Mail.ReadWrite"
        );
        let auto = Protocol::Auto.needs(false, OauthService);
        assert!(
            auto.contains("Mail.Send")
                && auto.contains("SMTP.SendAsApp")
                && auto.starts_with("not set (auto)"),
            "{auto}"
        );
    }
}

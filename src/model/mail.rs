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
}

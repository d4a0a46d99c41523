//! The verdict of one mail check (a token request, an IMAP or SMTP login), in plain words,
//! and its fix. Pure data in, data out, as the doctor's verdicts are.

use serde::Serialize;

use crate::job::doctor::VerdictDoc;

use crate::model::mail::{Api, AuthType};

/// Where Entra ID's app registrations are, for fixes.
const ENTRA_APPS: &str = "Entra admin center > Identity > Applications > App registrations";

/// How long a new permission or mailbox right can take to reach every server.
const PROPAGATION: &str = "a permission, consent or mailbox right granted minutes ago can take up to 30 minutes to reach every Microsoft server: if it was just granted, wait and run again (--retry-after SECS retries such a failure once)";

/// The one cause that decides a check.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MailVerdict {
    /// A token was issued and carries the permission mail needs.
    TokenIssued {
        /// `client_credentials` or `password`.
        grant: &'static str,
        /// The permission that was looked for and found.
        permission: String,
    },
    /// The mailbox opened (read-only) and the session ended.
    MailboxOpened {
        /// The mailbox.
        mailbox: String,
        /// Messages in INBOX, as the server said.
        messages: Option<u64>,
    },
    /// SMTP accepted the login; the session ended before any message.
    SmtpAuthenticated {
        /// The sender mailbox.
        mailbox: String,
    },
    /// Not tried, because what it needs failed first.
    Skipped {
        /// Why.
        reason: String,
    },
    /// The tenant does not exist (AADSTS90002 and kin).
    TenantNotFound {
        /// The tenant as written.
        tenant: String,
        /// The AADSTS code.
        code: u64,
    },
    /// The tenant, given as a domain, is another tenant than the one named elsewhere.
    TenantElsewhere {
        /// The domain.
        domain: String,
        /// The tenant it resolved to (the token's `tid`).
        resolved: String,
        /// The tenant ID the rest of the settings use.
        expected: String,
    },
    /// The application (client) ID is not registered in the tenant (AADSTS700016).
    AppNotFound {
        /// The client ID.
        client_id: String,
        /// The tenant.
        tenant: String,
    },
    /// The client secret is wrong (AADSTS7000215).
    SecretInvalid {
        /// The environment variable that holds it.
        variable: String,
        /// The client ID.
        client_id: String,
    },
    /// The client secret has expired (AADSTS7000222).
    SecretExpired {
        /// The environment variable that holds it.
        variable: String,
        /// The client ID.
        client_id: String,
    },
    /// Nobody consented to the application's permissions (AADSTS65001, or a token with
    /// no permission at all).
    ConsentMissing {
        /// The client ID.
        client_id: String,
        /// The permission mail needs.
        permission: String,
        /// The API it is a permission of.
        api: Api,
        /// The AADSTS code, when the identity provider refused.
        code: Option<u64>,
    },
    /// The token lacks the permission mail needs, though it has others.
    PermissionMissing {
        /// The client ID.
        client_id: String,
        /// The permission needed.
        permission: String,
        /// The API it is a permission of.
        api: Api,
        /// Application (`roles`) or delegated (`scp`).
        auth: AuthType,
        /// What the token does carry.
        granted: Vec<String>,
    },
    /// The account's password is wrong or the account unknown (AADSTS50126, 50034).
    UserSignInFailed {
        /// The account.
        account: String,
        /// The environment variable with its password.
        variable: String,
        /// The AADSTS code.
        code: u64,
    },
    /// MFA or Conditional Access blocks the password grant (AADSTS50076, 50079, 53003, …).
    UserBlocked {
        /// The account.
        account: String,
        /// The AADSTS code.
        code: u64,
        /// Microsoft's words (first line).
        description: String,
    },
    /// The account is disabled, locked or its password expired (AADSTS50057, 50053, 50055).
    AccountUnusable {
        /// The account.
        account: String,
        /// The AADSTS code.
        code: u64,
        /// Microsoft's words (first line).
        description: String,
    },
    /// The password grant needs the app to allow public client flows, or a secret
    /// (AADSTS7000218).
    PublicClientDisabled {
        /// The client ID.
        client_id: String,
    },
    /// This machine's clock is too far from Microsoft's (AADSTS700024, 500133, or the
    /// token's issue time).
    ClockSkew {
        /// Microsoft's clock minus this machine's, in seconds, when known.
        skew_s: Option<i64>,
        /// The AADSTS code, when the identity provider refused.
        code: Option<u64>,
    },
    /// Another AADSTS error, shown verbatim.
    AadError {
        /// The AADSTS code.
        code: Option<u64>,
        /// The OAuth error (`invalid_request`, …).
        error: String,
        /// Microsoft's words (first line).
        description: String,
        /// The correlation ID, for Microsoft support.
        correlation_id: Option<String>,
        /// The trace ID.
        trace_id: Option<String>,
    },
    /// The token endpoint answered something that is not the JSON of OAuth.
    TokenNotJson {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Its content type.
        content_type: String,
        /// Its first non-empty line, shortened.
        answer: String,
    },
    /// The mailbox refused the login although the token is good: the mailbox does not
    /// exist, or the application (or user) may not open it.
    MailboxNotPermitted {
        /// The mailbox.
        mailbox: String,
        /// `imap` or `smtp`.
        protocol: &'static str,
        /// How the queue signs in.
        auth: AuthType,
        /// The client ID.
        client_id: String,
        /// The server's answer.
        answer: String,
    },
    /// SMTP AUTH is disabled for the mailbox or the tenant (535 5.7.139).
    SmtpAuthDisabled {
        /// The mailbox.
        mailbox: String,
        /// The server's answer.
        answer: String,
    },
    /// SMTP AUTH is refused because the tenant's security defaults block legacy-style
    /// SMTP authentication (535 5.7.139 ... security defaults policy).
    SmtpSecurityDefaults {
        /// The mailbox.
        mailbox: String,
        /// The server's answer.
        answer: String,
    },
    /// The token is for another resource than the protocol accepts (a Graph token to
    /// IMAP/SMTP, or an Exchange token to Graph).
    WrongResource {
        /// `graph`, `imap` or `smtp`.
        protocol: &'static str,
        /// The audience the protocol accepts.
        needed: String,
        /// The token's audience.
        audience: Vec<String>,
        /// The server's answer, when the token was tried.
        answer: Option<String>,
    },
    /// Graph read the queue mailbox's inbox folder (nothing changed).
    GraphInboxRead {
        /// The mailbox.
        mailbox: String,
        /// Items in the inbox, as Graph said.
        messages: Option<u64>,
    },
    /// The token may send as the mailbox over Graph (Mail.Send), and the mailbox resolved
    /// (or could not be looked up with this token's permissions); nothing was sent.
    GraphSendReady {
        /// The mailbox.
        mailbox: String,
        /// The permission found in the token.
        permission: String,
        /// False when Graph would not look the mailbox up for this token.
        looked_up: bool,
    },
    /// Graph refused access to the mailbox (ErrorAccessDenied) and the token lacks the
    /// permission.
    GraphAccessDenied {
        /// The mailbox.
        mailbox: String,
        /// The client ID.
        client_id: String,
        /// The permission needed.
        permission: String,
        /// How the server signs in.
        auth: AuthType,
        /// Graph's error code and message.
        answer: String,
    },
    /// The token carries the permission, but Graph refused this mailbox: an application
    /// access policy or an RBAC for Applications management scope leaves it out.
    GraphScopeExcludes {
        /// The mailbox.
        mailbox: String,
        /// The client ID.
        client_id: String,
        /// True when Graph's words name an application access policy.
        access_policy: bool,
        /// Graph's error code and message.
        answer: String,
    },
    /// The mailbox exists but Graph cannot reach it (MailboxNotEnabledForRESTAPI):
    /// inactive, soft-deleted, on-premises, or without an Exchange Online licence.
    GraphMailboxNotEnabled {
        /// The mailbox.
        mailbox: String,
        /// Graph's error code and message.
        answer: String,
    },
    /// Graph knows no user or mailbox by this address (ResourceNotFound, ErrorInvalidUser).
    GraphMailboxNotFound {
        /// The mailbox.
        mailbox: String,
        /// Graph's error code and message.
        answer: String,
    },
    /// Graph refused the token itself (401) though it is for Graph.
    GraphUnauthorized {
        /// Graph's error code and message.
        answer: String,
    },
    /// Another Graph error, as it came.
    GraphError {
        /// The HTTP status.
        status: u16,
        /// Graph's error code and message.
        answer: String,
    },
    /// The server answered something the protocol does not allow here.
    ProtocolError {
        /// `imap` or `smtp`.
        protocol: &'static str,
        /// `host:port`.
        endpoint: String,
        /// What was expected.
        expected: String,
        /// What came (shortened).
        answer: String,
    },
    /// Nothing within the timeout.
    Timeout {
        /// The URL or `host:port`.
        endpoint: String,
        /// What was awaited.
        waiting_for: String,
        /// The timeout.
        secs: u64,
    },
    /// TLS failed; the doctor's verdict says why.
    Tls {
        /// The URL or `host:port`.
        endpoint: String,
        /// The doctor's verdict.
        doctor: VerdictDoc,
    },
    /// The host name does not resolve.
    DnsFailed {
        /// The name.
        name: String,
        /// The resolver's words.
        error: String,
    },
    /// No connection (or the proxy refused).
    ConnectFailed {
        /// The URL or `host:port`.
        endpoint: String,
        /// Why.
        error: String,
    },
}

/// What to do about a failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MailFix {
    /// The fix in a sentence.
    pub summary: String,
    /// Steps or commands, in order.
    pub steps: Vec<String>,
}

impl MailFix {
    fn new(summary: impl Into<String>, steps: &[String]) -> Self {
        Self {
            summary: summary.into(),
            steps: steps.to_vec(),
        }
    }
}

impl MailVerdict {
    /// True when the check passed.
    pub fn ok(&self) -> bool {
        matches!(
            self,
            MailVerdict::TokenIssued { .. }
                | MailVerdict::MailboxOpened { .. }
                | MailVerdict::SmtpAuthenticated { .. }
                | MailVerdict::GraphInboxRead { .. }
                | MailVerdict::GraphSendReady { .. }
        )
    }

    /// True when a failure can be a permission granted too recently to have reached every
    /// server: worth one retry after a pause.
    pub fn may_be_propagating(&self) -> bool {
        matches!(
            self,
            MailVerdict::ConsentMissing { .. }
                | MailVerdict::PermissionMissing { .. }
                | MailVerdict::MailboxNotPermitted { .. }
                | MailVerdict::GraphAccessDenied { .. }
                | MailVerdict::GraphScopeExcludes { .. }
        )
    }

    /// The verdict on one line.
    pub fn summary(&self) -> String {
        match self {
            MailVerdict::TokenIssued { permission, .. } => {
                format!("token issued, with {permission}")
            }
            MailVerdict::MailboxOpened { mailbox, messages } => match messages {
                Some(n) => format!("{mailbox}: INBOX opened read-only ({n} messages)"),
                None => format!("{mailbox}: INBOX opened read-only"),
            },
            MailVerdict::SmtpAuthenticated { mailbox } => {
                format!("{mailbox}: SMTP login accepted (nothing sent)")
            }
            MailVerdict::Skipped { reason } => format!("not tried: {reason}"),
            MailVerdict::TenantNotFound { tenant, code } => {
                format!("tenant not found: {tenant} (AADSTS{code})")
            }
            MailVerdict::TenantElsewhere {
                domain, resolved, ..
            } => format!("the domain {domain} belongs to another tenant ({resolved})"),
            MailVerdict::AppNotFound { client_id, .. } => {
                format!("application {client_id} not found in the tenant (AADSTS700016)")
            }
            MailVerdict::SecretInvalid { variable, .. } => {
                format!("invalid client secret in {variable} (AADSTS7000215)")
            }
            MailVerdict::SecretExpired { variable, .. } => {
                format!("the client secret in {variable} has expired (AADSTS7000222)")
            }
            MailVerdict::ConsentMissing {
                permission, code, ..
            } => match code {
                Some(c) => format!("admin consent missing (AADSTS{c})"),
                None => format!(
                    "admin consent missing: the token carries no permission, not even {permission}"
                ),
            },
            MailVerdict::PermissionMissing { permission, .. } => {
                format!("permission missing: {permission}")
            }
            MailVerdict::UserSignInFailed { account, code, .. } => {
                format!(
                    "sign-in of {account} failed: wrong password or unknown account (AADSTS{code})"
                )
            }
            MailVerdict::UserBlocked { account, code, .. } => {
                format!("sign-in of {account} blocked by MFA or Conditional Access (AADSTS{code})")
            }
            MailVerdict::AccountUnusable {
                account,
                code,
                description,
            } => format!("account {account} cannot sign in (AADSTS{code}): {description}"),
            MailVerdict::PublicClientDisabled { client_id } => {
                format!("application {client_id} does not allow the password grant (AADSTS7000218)")
            }
            MailVerdict::ClockSkew { skew_s, .. } => match skew_s {
                Some(s) => format!(
                    "this machine's clock is {} Microsoft's by {}s",
                    if *s > 0 { "behind" } else { "ahead of" },
                    s.abs()
                ),
                None => "this machine's clock is too far from Microsoft's".into(),
            },
            MailVerdict::AadError {
                code,
                error,
                description,
                correlation_id,
                ..
            } => {
                let code = code.map(|c| format!("AADSTS{c} ")).unwrap_or_default();
                let corr = correlation_id
                    .as_ref()
                    .map(|c| format!(" (correlation id {c})"))
                    .unwrap_or_default();
                format!("token refused: {code}{error}: {description}{corr}")
            }
            MailVerdict::TokenNotJson {
                status,
                content_type,
                ..
            } => format!(
                "the token endpoint answered {status} with {} instead of OAuth JSON",
                if content_type.is_empty() {
                    "no content type"
                } else {
                    content_type
                }
            ),
            MailVerdict::MailboxNotPermitted {
                mailbox, protocol, ..
            } => format!(
                "{mailbox}: {} login refused: the mailbox does not exist or may not be opened with this token",
                protocol.to_ascii_uppercase()
            ),
            MailVerdict::SmtpAuthDisabled { mailbox, answer } => {
                if answer.to_ascii_lowercase().contains("for the tenant") {
                    format!("{mailbox}: SMTP AUTH is disabled for the tenant (535 5.7.139)")
                } else {
                    format!("{mailbox}: SMTP AUTH is disabled (535 5.7.139)")
                }
            }
            MailVerdict::SmtpSecurityDefaults { mailbox, .. } => {
                format!(
                    "{mailbox}: SMTP AUTH blocked by the tenant's security defaults (535 5.7.139)"
                )
            }
            MailVerdict::WrongResource {
                protocol,
                needed,
                audience,
                ..
            } => format!(
                "the token is for {}, but {} accepts only tokens for {needed}",
                if audience.is_empty() {
                    "no audience".to_string()
                } else {
                    audience.join(", ")
                },
                protocol_name(protocol)
            ),
            MailVerdict::GraphInboxRead { mailbox, messages } => match messages {
                Some(n) => format!("{mailbox}: Graph read the inbox folder ({n} messages)"),
                None => format!("{mailbox}: Graph read the inbox folder"),
            },
            MailVerdict::GraphSendReady {
                mailbox,
                permission,
                looked_up: true,
            } => format!(
                "{mailbox}: resolves in Graph, and the token has {permission} (nothing sent)"
            ),
            MailVerdict::GraphSendReady {
                mailbox,
                permission,
                looked_up: false,
            } => format!(
                "{mailbox}: the token has {permission}; Graph would not look the mailbox up with this token (nothing sent)"
            ),
            MailVerdict::GraphAccessDenied {
                mailbox,
                permission,
                ..
            } => format!(
                "{mailbox}: Graph denied access (ErrorAccessDenied): the token lacks {permission}"
            ),
            MailVerdict::GraphScopeExcludes {
                mailbox,
                access_policy,
                ..
            } => format!(
                "{mailbox}: Graph denied access (ErrorAccessDenied): {} leaves this mailbox out",
                if *access_policy {
                    "an application access policy"
                } else {
                    "an application access policy or an RBAC for Applications scope"
                }
            ),
            MailVerdict::GraphMailboxNotEnabled { mailbox, .. } => {
                format!("{mailbox}: Graph cannot reach this mailbox (MailboxNotEnabledForRESTAPI)")
            }
            MailVerdict::GraphMailboxNotFound { mailbox, answer } => {
                format!("{mailbox}: Graph knows no such user or mailbox ({answer})")
            }
            MailVerdict::GraphUnauthorized { answer } => {
                format!("Graph refused the token (401): {answer}")
            }
            MailVerdict::GraphError { status, answer } => {
                format!("Graph answered {status}: {answer}")
            }
            MailVerdict::ProtocolError {
                protocol, answer, ..
            } => format!(
                "{} protocol error: unexpected answer \"{answer}\"",
                protocol.to_ascii_uppercase()
            ),
            MailVerdict::Timeout {
                endpoint,
                waiting_for,
                secs,
            } => format!("timed out after {secs}s waiting for {waiting_for} from {endpoint}"),
            MailVerdict::Tls { doctor, .. } => format!("TLS failed: {}", doctor.summary),
            MailVerdict::DnsFailed { name, error } => format!("DNS failure: {name}: {error}"),
            MailVerdict::ConnectFailed { endpoint, error } => {
                format!("connect failure: {endpoint}: {error}")
            }
        }
    }

    /// Why, in a sentence or two.
    pub fn explanation(&self) -> String {
        match self {
            MailVerdict::TokenIssued { grant, .. } => format!(
                "Microsoft's identity platform issued an access token with the {grant} grant, and its claims (read without trusting them) carry the permission mail needs."
            ),
            MailVerdict::MailboxOpened { .. } => "IMAP over TLS accepted the token (SASL XOAUTH2) and opened INBOX with EXAMINE, which changes nothing; extpy then logged out.".into(),
            MailVerdict::SmtpAuthenticated { .. } => "SMTP submission upgraded to TLS with STARTTLS and accepted the token (AUTH XOAUTH2); extpy quit before MAIL FROM, so nothing was sent.".into(),
            MailVerdict::Skipped { .. } => "This check needs the result of an earlier one that failed.".into(),
            MailVerdict::TenantNotFound { .. } => "Microsoft's identity platform knows no tenant by this ID or domain: a typo, a GUID from another directory, or a domain that is not verified in any tenant.".into(),
            MailVerdict::TenantElsewhere { .. } => "A domain stands for the tenant that verified it. This one resolved to a different tenant than the tenant ID used in the other mail settings, so the two servers sign in to different directories.".into(),
            MailVerdict::AppNotFound { .. } => "The tenant has no application with this client ID: it is registered in another tenant, was deleted, or the ID was mistyped (a client ID is the Application ID, not the Object ID).".into(),
            MailVerdict::SecretInvalid { .. } => "The secret does not match any secret of the application. The usual causes: the secret's ID was copied instead of its value, or the value was copied after it was hidden.".into(),
            MailVerdict::SecretExpired { .. } => "Client secrets expire (at most 24 months). When this one expired, every token request of CEM started failing in the same way.".into(),
            MailVerdict::ConsentMissing { .. } => "The application's API permissions are requested but an administrator has not granted consent for the organisation, so tokens carry none of them.".into(),
            MailVerdict::PermissionMissing { auth: AuthType::OauthService, .. } => "The token carries application permissions, but not the one Exchange Online checks for this protocol; Exchange will refuse the login.".into(),
            MailVerdict::PermissionMissing { .. } => "The token carries delegated permissions, but not the one Exchange Online checks for this protocol; Exchange will refuse the login.".into(),
            MailVerdict::UserSignInFailed { .. } => "The resource-owner password grant sent the account and the password from the environment variable, and Microsoft refused them.".into(),
            MailVerdict::UserBlocked { .. } => "OAuth User signs in with the resource-owner password grant, which cannot answer a second factor: Microsoft discourages this flow, and any MFA or Conditional Access policy that applies to the account blocks it.".into(),
            MailVerdict::AccountUnusable { .. } => "The account exists but cannot sign in as it is.".into(),
            MailVerdict::PublicClientDisabled { .. } => "The password grant without a client secret needs the application to allow public client flows.".into(),
            MailVerdict::ClockSkew { .. } => "Tokens are valid for a time window; a clock far off makes Microsoft refuse assertions and makes CEM treat fresh tokens as expired (or expired ones as fresh).".into(),
            MailVerdict::AadError { .. } => "Microsoft refused the token request with an error extpy has no specific advice for; its words and the correlation ID are shown as they came.".into(),
            MailVerdict::TokenNotJson { .. } => "An OAuth token endpoint answers JSON. An HTML page means something else answered: a proxy's login or block page, a captive portal, or a wrong --authority-url.".into(),
            MailVerdict::MailboxNotPermitted { auth: AuthType::OauthService, .. } => "The token is valid, but Exchange Online refused it for this mailbox: the mailbox does not exist, the application's service principal is not registered in Exchange or has no permission on the mailbox, or an application access policy excludes it.".into(),
            MailVerdict::MailboxNotPermitted { .. } => "The token is valid, but Exchange Online refused it for this mailbox: the mailbox does not exist, the account has no access to it, or IMAP/SMTP is disabled for it.".into(),
            MailVerdict::SmtpAuthDisabled { .. } => "Exchange Online disables SMTP AUTH (client submission) by default, for the whole organisation and per mailbox; CEM sends through it.".into(),
            MailVerdict::SmtpSecurityDefaults { .. } => "Security defaults in Entra ID block SMTP AUTH client submission for the tenant, whatever the mailbox's own setting says.".into(),
            MailVerdict::WrongResource { .. } => "An access token is issued for one resource (its audience, from the scope asked for): a token for Microsoft Graph cannot log in to IMAP or SMTP, and a token for Exchange Online (outlook.office365.com) is refused by Graph with 401. The client asked for the scope of the other API.".into(),
            MailVerdict::GraphInboxRead { .. } => "Microsoft Graph accepted the token and returned the queue mailbox's inbox folder (GET /v1.0/users/{address}/mailFolders/inbox), which changes nothing.".into(),
            MailVerdict::GraphSendReady { looked_up: true, .. } => "The token carries the send permission, and Graph resolved the mailbox (GET /v1.0/users/{address}). Nothing was sent, so the last proof, a message that leaves, is not made here.".into(),
            MailVerdict::GraphSendReady { .. } => "The token carries the send permission. Graph refused to look the mailbox up (Authorization_RequestDenied): that needs User.Read.All, which the vendor's guide does not grant and sending does not need. Nothing was sent.".into(),
            MailVerdict::GraphAccessDenied { .. } => "Graph checks the token's permission for every mailbox request; this token does not carry the one the request needs, so Graph answered ErrorAccessDenied.".into(),
            MailVerdict::GraphScopeExcludes { .. } => "The token carries the permission, yet Graph refused this mailbox: Exchange Online limits an application to the mailboxes of an application access policy (New-ApplicationAccessPolicy) or of an RBAC for Applications management scope, and this mailbox is outside it.".into(),
            MailVerdict::GraphMailboxNotEnabled { .. } => "The user exists, but Graph has no Exchange Online mailbox to serve for it: the mailbox is inactive, soft-deleted, hosted on-premises, or the user has no Exchange Online licence.".into(),
            MailVerdict::GraphMailboxNotFound { .. } => "Graph found no user with this address in the tenant: a typo, a mailbox in another tenant, or an alias that is not the user's address.".into(),
            MailVerdict::GraphUnauthorized { .. } => "Graph validates every token; this one was refused as a whole (expired, not yet valid, or not signed for this tenant).".into(),
            MailVerdict::GraphError { .. } => "Graph answered with an error extpy has no specific advice for; its code and message are shown as they came.".into(),
            MailVerdict::ProtocolError { .. } => "The server's answer is not what the protocol allows at this point: the host or port is not the mail service, or something in between answers instead.".into(),
            MailVerdict::Timeout { .. } => "The connection opened but nothing came within the timeout: a firewall that swallows the traffic, a proxy, or a server that hangs.".into(),
            MailVerdict::Tls { doctor, .. } => doctor.explanation.clone(),
            MailVerdict::DnsFailed { .. } => "This machine cannot turn the host name into an address.".into(),
            MailVerdict::ConnectFailed { .. } => "No connection could be opened: a firewall, a wrong port, or the proxy.".into(),
        }
    }

    /// What to do, for a failed check.
    pub fn fix(&self) -> Option<MailFix> {
        let f = MailFix::new;
        Some(match self {
            MailVerdict::TokenIssued { .. }
            | MailVerdict::MailboxOpened { .. }
            | MailVerdict::SmtpAuthenticated { .. } => return None,
            MailVerdict::Skipped { .. } => return None,
            MailVerdict::TenantNotFound { tenant, .. } => f(
                format!("use the tenant ID (a GUID) of the directory the application is registered in, not {tenant}"),
                &[format!("{ENTRA_APPS} > your app > Overview shows \"Directory (tenant) ID\""), "put it in the topology's mail: block (tenant:) and in SC's server address https://login.microsoftonline.com/<tenant ID>".into()],
            ),
            MailVerdict::TenantElsewhere { domain, resolved, expected } => f(
                format!("use the tenant ID {expected} instead of the domain {domain}, or check which tenant {resolved} is"),
                &[],
            ),
            MailVerdict::AppNotFound { client_id, tenant } => f(
                format!("use the Application (client) ID of an app registered in tenant {tenant}"),
                &[format!("{ENTRA_APPS}: look for {client_id}; if it is not there, the app lives in another tenant or was deleted"), "copy \"Application (client) ID\" from the app's Overview, not its Object ID".into()],
            ),
            MailVerdict::SecretInvalid { variable, client_id } => f(
                format!("put the secret's Value (not its Secret ID) into {variable}"),
                &[format!("{ENTRA_APPS} > {client_id} > Certificates & secrets: a Value is shown only when the secret is created; if it is lost, create a new secret"), format!("set {variable} to it where extpy and CEM read it, and in SC")],
            ),
            MailVerdict::SecretExpired { variable, client_id } => f(
                format!("create a new client secret and put its value into {variable} and SC"),
                &[format!("{ENTRA_APPS} > {client_id} > Certificates & secrets > New client secret"), format!("set {variable}, update the secret in SC, and note the new expiry date")],
            ),
            MailVerdict::ConsentMissing { client_id, permission, api, .. } => f(
                format!("grant admin consent for {permission}"),
                &[format!("{ENTRA_APPS} > {client_id} > API permissions: add {} > {permission} if it is not listed", api.label()), "then \"Grant admin consent for <organisation>\" (a Global or Privileged Role Administrator)".into(), PROPAGATION.into()],
            ),
            MailVerdict::PermissionMissing { client_id, permission, api, auth, .. } => f(
                format!("add the permission {permission} and grant admin consent"),
                &[format!(
                    "{ENTRA_APPS} > {client_id} > API permissions > Add a permission > {} > {} > {permission}",
                    match api { Api::Graph => "Microsoft APIs > Microsoft Graph", Api::Exchange => "APIs my organization uses > Office 365 Exchange Online" },
                    if *auth == AuthType::OauthService { "Application permissions" } else { "Delegated permissions" }
                ), "then \"Grant admin consent for <organisation>\"".into(), PROPAGATION.into()],
            ),
            MailVerdict::UserSignInFailed { account, variable, .. } => f(
                format!("check the account {account} and the password in {variable}"),
                &[format!("sign in as {account} once in a browser to confirm the password"), format!("set {variable} to it, and the same password in SC's e-mail queue")],
            ),
            MailVerdict::UserBlocked { account, .. } => f(
                format!("exclude {account} from MFA and Conditional Access for this sign-in, or switch the server to OAuth Service"),
                &["Microsoft discourages the password grant; OAuth Service (client credentials, IMAP.AccessAsApp) needs no user sign-in".into(), format!("if OAuth User must stay: an Entra administrator excludes {account} from the policies that require MFA (Sign-in logs show which policy applied)")],
            ),
            MailVerdict::AccountUnusable { account, .. } => f(format!("have an administrator enable, unlock or reset the password of {account}"), &[]),
            MailVerdict::PublicClientDisabled { client_id } => f(
                "allow public client flows for the app, or give the incoming server a client secret".to_string(),
                &[format!("{ENTRA_APPS} > {client_id} > Authentication > Allow public client flows: Yes")],
            ),
            MailVerdict::ClockSkew { .. } => f(
                "set this machine's clock right (time synchronisation)".to_string(),
                &["w32tm /resync (Windows, as administrator), or check the NTP settings".into()],
            ),
            MailVerdict::AadError { code, correlation_id, .. } => f(
                match code {
                    Some(c) => format!("look up AADSTS{c} in Microsoft's error reference; give Microsoft support the correlation ID"),
                    None => "read Microsoft's words above; give Microsoft support the correlation ID".into(),
                },
                &correlation_id.iter().map(|c| format!("correlation id {c}")).collect::<Vec<_>>(),
            ),
            MailVerdict::TokenNotJson { url, .. } => f(
                format!("make {url} reachable without a login page: check --authority-url and the proxy (HTTPS_PROXY, NO_PROXY)"),
                &[],
            ),
            MailVerdict::MailboxNotPermitted { mailbox, auth: AuthType::OauthService, client_id, protocol, .. } => f(
                format!("register the app's service principal in Exchange Online and give it access to {mailbox}"),
                &[
                    "Exchange Online PowerShell: Connect-ExchangeOnline".into(),
                    format!("New-ServicePrincipal -AppId {client_id} -ObjectId <object ID of the Enterprise application {client_id}>: the Object ID shown under Enterprise applications, not the one on the App registration's Overview (that one registers a service principal Exchange never sees in a token); Get-ServicePrincipal | Format-List AppId,ObjectId shows what was registered"),
                    if *protocol == "smtp" {
                        format!("Add-RecipientPermission -Identity {mailbox} -Trustee <that object ID> -AccessRights SendAs")
                    } else {
                        format!("Add-MailboxPermission -Identity {mailbox} -User <that object ID> -AccessRights FullAccess")
                    },
                    format!("an application access policy that scopes the app may exclude {mailbox}: Test-ApplicationAccessPolicy -Identity {mailbox} -AppId {client_id}"),
                    format!("check that {mailbox} is a mailbox (Get-Mailbox {mailbox})"),
                    PROPAGATION.into(),
                ],
            ),
            MailVerdict::MailboxNotPermitted { mailbox, protocol, .. } => f(
                format!("check that {mailbox} exists and allows {} for this account", protocol.to_ascii_uppercase()),
                &[
                    format!("Get-CASMailbox {mailbox} | Format-List ImapEnabled,SmtpClientAuthenticationDisabled"),
                    format!("Set-CASMailbox {mailbox} -ImapEnabled $true"),
                    format!("a shared mailbox: give the account FullAccess (Add-MailboxPermission -Identity {mailbox} -User <account> -AccessRights FullAccess)"),
                ],
            ),
            MailVerdict::SmtpAuthDisabled { answer, .. } if answer.to_ascii_lowercase().contains("for the tenant") => f(
                "enable SMTP AUTH for the organisation (it is disabled for the whole tenant), or for the mailbox alone".to_string(),
                &[
                    "Exchange Online PowerShell: Set-TransportConfig -SmtpClientAuthenticationDisabled $false".into(),
                    "or per mailbox, which wins over the organisation's setting: Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false".into(),
                ],
            ),
            MailVerdict::SmtpAuthDisabled { mailbox, .. } => f(
                format!("enable SMTP AUTH for {mailbox}"),
                &[
                    format!("Exchange Online PowerShell: Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false"),
                    "if the organisation disables it: Set-TransportConfig -SmtpClientAuthenticationDisabled $false (or enable it per mailbox as above; the mailbox setting wins)".into(),
                ],
            ),
            MailVerdict::SmtpSecurityDefaults { .. } => f(
                "turn security defaults off for the tenant and use Conditional Access instead, or send over Microsoft Graph (protocol: graph, Mail.Send)".to_string(),
                &[
                    "Entra admin center > Identity > Overview > Properties > Manage security defaults: Disabled (a Global Administrator; replace them with Conditional Access policies)".into(),
                    "then enable SMTP AUTH for the mailbox: Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false".into(),
                ],
            ),
            MailVerdict::WrongResource { protocol, needed, .. } => f(
                format!("ask for the token with the scope {needed}/.default, the resource {} accepts", protocol_name(protocol)),
                &[
                    format!("set protocol: in the topology to the path CEM takes, and grant the permission on that API ({} for {})", match *protocol { "graph" => "Microsoft Graph", _ => "Office 365 Exchange Online" }, protocol_name(protocol)),
                    "a token for https://graph.microsoft.com cannot log in to IMAP or SMTP; a token for https://outlook.office365.com is refused by Graph".into(),
                ],
            ),
            MailVerdict::GraphInboxRead { .. } | MailVerdict::GraphSendReady { .. } => return None,
            MailVerdict::GraphAccessDenied { client_id, permission, auth, .. } => f(
                format!("add the Microsoft Graph permission {permission} and grant admin consent"),
                &[
                    format!("{ENTRA_APPS} > {client_id} > API permissions > Add a permission > Microsoft Graph > {} > {permission}", if *auth == AuthType::OauthService { "Application permissions" } else { "Delegated permissions" }),
                    "then \"Grant admin consent for <organisation>\"".into(),
                    PROPAGATION.into(),
                ],
            ),
            MailVerdict::GraphScopeExcludes { mailbox, client_id, .. } => f(
                format!("let the application reach {mailbox}: add it to the group of the application access policy, or to the RBAC for Applications management scope"),
                &[
                    "Exchange Online PowerShell: Connect-ExchangeOnline".into(),
                    format!("Test-ApplicationAccessPolicy -Identity {mailbox} -AppId {client_id} (AccessCheckResult: Denied names the policy; Get-ApplicationAccessPolicy lists them)"),
                    format!("Add-DistributionGroupMember -Identity <the policy's PolicyScopeGroupId> -Member {mailbox}"),
                    format!("RBAC for Applications: Test-ServicePrincipalAuthorization -Identity <service principal> -Resource {mailbox} shows whether its management scope covers the mailbox (Get-ManagementScope, Get-ManagementRoleAssignment -RoleAssignee <service principal>)"),
                    PROPAGATION.into(),
                ],
            ),
            MailVerdict::GraphMailboxNotEnabled { mailbox, .. } => f(
                format!("give {mailbox} an Exchange Online mailbox Graph can reach"),
                &[
                    format!("Get-Mailbox {mailbox} | Format-List RecipientTypeDetails,IsInactiveMailbox,IsSoftDeletedByRemove (Exchange Online PowerShell)"),
                    "an on-premises mailbox is not served by Graph: move it to Exchange Online, or use a cloud mailbox for the queue".into(),
                    format!("a user mailbox needs an Exchange Online licence (Microsoft 365 admin center > Users > {mailbox} > Licenses and apps); a shared mailbox needs none"),
                ],
            ),
            MailVerdict::GraphMailboxNotFound { mailbox, .. } => f(
                format!("check the address {mailbox}: it must be a user or shared mailbox of this tenant"),
                &[format!("Get-Mailbox {mailbox} (Exchange Online PowerShell), or Microsoft 365 admin center > Teams & groups > Shared mailboxes")],
            ),
            MailVerdict::GraphUnauthorized { .. } => f(
                "check this machine's clock and the tenant of the token; Graph's words above say which".to_string(),
                &[],
            ),
            MailVerdict::GraphError { .. } => f("read Graph's code and message above (Microsoft Graph error reference)".to_string(), &[]),
            MailVerdict::ProtocolError { endpoint, .. } => f(format!("check that {endpoint} is the mail service (--imap-host, --smtp-host)"), &[]),
            MailVerdict::Timeout { endpoint, .. } => f(
                format!("check that this machine may reach {endpoint} (firewall, proxy); a slow link may need --timeout SECS"),
                &[format!("Test-NetConnection {} (PowerShell)", endpoint.replace(':', " -Port "))],
            ),
            MailVerdict::Tls { .. } => return None,
            MailVerdict::DnsFailed { name, .. } => f(
                format!("check the name {name} and this machine's DNS settings"),
                &[format!("Resolve-DnsName {name} (PowerShell)")],
            ),
            MailVerdict::ConnectFailed { endpoint, .. } => f(
                format!("open the way to {endpoint} (firewall, proxy settings)"),
                &[],
            ),
        })
    }
}

/// A protocol's name in a sentence.
fn protocol_name(protocol: &str) -> &'static str {
    match protocol {
        "graph" => "Microsoft Graph",
        "imap" => "IMAP",
        _ => "SMTP",
    }
}

/// A verdict with its words, as the JSON document carries it.
#[derive(Debug, Clone, Serialize)]
pub struct MailVerdictDoc {
    /// The verdict (`kind` and its fields).
    #[serde(flatten)]
    pub verdict: MailVerdict,
    /// One line.
    pub summary: String,
    /// Why.
    pub explanation: String,
}

impl From<MailVerdict> for MailVerdictDoc {
    fn from(verdict: MailVerdict) -> Self {
        Self {
            summary: verdict.summary(),
            explanation: verdict.explanation(),
            verdict,
        }
    }
}

/// What an AADSTS code means for the check, given the request's context.
pub(crate) struct AadContext<'a> {
    /// The tenant as written.
    pub tenant: &'a str,
    /// The client ID.
    pub client_id: &'a str,
    /// The variable with the client secret, if one was sent.
    pub secret_variable: Option<&'a str>,
    /// The account and its password variable, for the password grant.
    pub user: Option<(&'a str, &'a str)>,
    /// The permission mail needs.
    pub permission: &'a str,
    /// The API the token is asked for.
    pub api: Api,
    /// Microsoft's clock minus this machine's, when its answer had a `Date`.
    pub skew_s: Option<i64>,
}

/// An AADSTS error as Microsoft's token endpoint gives it.
pub(crate) struct AadError<'a> {
    /// The code.
    pub code: Option<u64>,
    /// `error`.
    pub error: &'a str,
    /// The first line of `error_description`.
    pub description: &'a str,
    /// `correlation_id`.
    pub correlation_id: Option<&'a str>,
    /// `trace_id`.
    pub trace_id: Option<&'a str>,
}

/// Maps an AADSTS error to its verdict; codes without advice keep Microsoft's words.
pub(crate) fn from_aadsts(e: &AadError<'_>, cx: &AadContext<'_>) -> MailVerdict {
    let account = cx.user.map(|u| u.0.to_string()).unwrap_or_default();
    let secret = || {
        cx.secret_variable
            .unwrap_or("the secret variable")
            .to_string()
    };
    match e.code {
        Some(code @ (90002 | 900023 | 90033)) => MailVerdict::TenantNotFound {
            tenant: cx.tenant.into(),
            code,
        },
        Some(700016) => MailVerdict::AppNotFound {
            client_id: cx.client_id.into(),
            tenant: cx.tenant.into(),
        },
        Some(7000215) => MailVerdict::SecretInvalid {
            variable: secret(),
            client_id: cx.client_id.into(),
        },
        Some(7000222) => MailVerdict::SecretExpired {
            variable: secret(),
            client_id: cx.client_id.into(),
        },
        Some(code @ (65001 | 65004 | 90094 | 90095)) => MailVerdict::ConsentMissing {
            client_id: cx.client_id.into(),
            permission: cx.permission.into(),
            api: cx.api,
            code: Some(code),
        },
        Some(code @ (50126 | 50034)) if cx.user.is_some() => MailVerdict::UserSignInFailed {
            account,
            variable: cx.user.map(|u| u.1.to_string()).unwrap_or_default(),
            code,
        },
        Some(code @ (50076 | 50079 | 53003 | 50158 | 50074 | 53000 | 53001)) => {
            MailVerdict::UserBlocked {
                account,
                code,
                description: e.description.into(),
            }
        }
        Some(code @ (50057 | 50053 | 50055 | 50173)) => MailVerdict::AccountUnusable {
            account,
            code,
            description: e.description.into(),
        },
        Some(7000218) => MailVerdict::PublicClientDisabled {
            client_id: cx.client_id.into(),
        },
        Some(code @ (700024 | 500133)) => MailVerdict::ClockSkew {
            skew_s: cx.skew_s,
            code: Some(code),
        },
        code => MailVerdict::AadError {
            code,
            error: e.error.into(),
            description: e.description.into(),
            correlation_id: e.correlation_id.map(str::to_string),
            trace_id: e.trace_id.map(str::to_string),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> AadContext<'static> {
        AadContext {
            tenant: "contoso.example",
            client_id: "c",
            secret_variable: Some("MAIL_SECRET"),
            user: None,
            permission: "IMAP.AccessAsApp",
            api: Api::Exchange,
            skew_s: None,
        }
    }

    fn code(c: u64) -> MailVerdict {
        from_aadsts(
            &AadError {
                code: Some(c),
                error: "invalid_request",
                description: "words",
                correlation_id: Some("corr-1"),
                trace_id: None,
            },
            &cx(),
        )
    }

    #[test]
    fn codes_map_to_verdicts_with_fixes() {
        assert!(matches!(code(90002), MailVerdict::TenantNotFound { .. }));
        assert!(matches!(code(700016), MailVerdict::AppNotFound { .. }));
        assert!(matches!(code(7000222), MailVerdict::SecretExpired { .. }));
        assert!(matches!(code(53003), MailVerdict::UserBlocked { .. }));
        assert!(matches!(code(700024), MailVerdict::ClockSkew { .. }));
        let v = code(7000215);
        assert!(v.summary().contains("MAIL_SECRET"), "{}", v.summary());
        assert!(v.fix().unwrap().summary.contains("MAIL_SECRET"));
        for c in [90002, 700016, 7000215, 7000222, 65001, 50076, 700024] {
            let v = code(c);
            assert!(!v.ok() && v.fix().is_some(), "{c}: {v:?}");
        }
    }

    #[test]
    fn unknown_codes_keep_microsofts_words_and_correlation_id() {
        let v = code(1234567);
        let s = v.summary();
        assert!(
            s.contains("AADSTS1234567") && s.contains("words") && s.contains("corr-1"),
            "{s}"
        );
        assert!(v.fix().unwrap().steps.iter().any(|l| l.contains("corr-1")));
    }
}

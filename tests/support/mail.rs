//! A local identity provider (HTTPS, the v2.0 token endpoint with Microsoft's AADSTS error
//! answers), a local IMAP (TLS) and SMTP (STARTTLS) server and a local Microsoft Graph
//! (HTTPS, `/v1.0/users/...` with Graph's error documents) that accept its tokens, all on
//! 127.0.0.1 with a test CA. Each is told how the directory and the mailboxes are set up;
//! it then behaves as Entra ID and Exchange Online do for that setup.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;

/// An application registration.
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub secret: String,
    /// The secret has expired (AADSTS7000222).
    pub expired: bool,
    /// Admin consent granted: app tokens carry `roles`, user tokens `scp`.
    pub consented: bool,
    /// Application permissions (client credentials).
    pub roles: Vec<String>,
    /// Delegated permissions (password grant).
    pub scopes: Vec<String>,
    /// Microsoft Graph application permissions (client credentials, Graph scope).
    pub graph_roles: Vec<String>,
    /// Microsoft Graph delegated permissions (password grant, Graph scope).
    pub graph_scopes: Vec<String>,
}

/// A user account.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    /// MFA or Conditional Access applies (AADSTS50076).
    pub mfa: bool,
}

/// The directory (one tenant, known by its ID and a domain).
#[derive(Debug, Clone)]
pub struct Directory {
    pub tenant: String,
    pub domain: String,
    pub apps: Vec<App>,
    pub users: Vec<User>,
    /// Answer every request with an HTML page (a proxy's login page).
    pub html: bool,
    /// Never answer.
    pub hang: bool,
    /// Issue tokens for the other resource than the scope asks (a Graph token for an
    /// Exchange scope and the reverse), as a client that asks the wrong scope gets.
    pub wrong_audience: bool,
    /// Consent granted just now: this many app token requests still carry no roles, as
    /// while a grant propagates.
    pub propagating: u32,
    /// App token requests so far (shared by clones).
    pub app_requests: Arc<std::sync::atomic::AtomicU32>,
}

/// A mailbox of the mail server.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub address: String,
    /// Apps (client IDs) registered in Exchange with access to it.
    pub apps: Vec<String>,
    /// Users with access to it.
    pub users: Vec<String>,
    /// SMTP AUTH enabled for it.
    pub smtp_auth: bool,
    pub messages: u32,
    /// Graph serves it (false: MailboxNotEnabledForRESTAPI).
    pub rest_enabled: bool,
    /// Apps an application access policy keeps away from it (Graph: ErrorAccessDenied).
    pub policy_excludes: Vec<String>,
    /// Apps whose RBAC for Applications scope leaves it out (Graph: ErrorAccessDenied).
    pub rbac_excludes: Vec<String>,
}

/// The mail server's setup.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub mailboxes: Vec<Mailbox>,
    /// IMAP accepts TLS, then never says a word.
    pub imap_hangs: bool,
    /// SMTP AUTH is disabled for the whole organisation (Set-TransportConfig).
    pub smtp_tenant_disabled: bool,
    /// The tenant's security defaults are on (SMTP AUTH blocked).
    pub security_defaults: bool,
}

/// What a token stands for, as the identity provider issued it.
#[derive(Debug, Clone)]
struct Issued {
    aud: String,
    app: String,
    user: Option<String>,
    roles: Vec<String>,
    scopes: Vec<String>,
}

type Tokens = Arc<Mutex<HashMap<String, Issued>>>;

struct Stop(Arc<AtomicBool>, SocketAddr);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.1);
    }
}

fn listen(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> (SocketAddr, Stop) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let sp = stop.clone();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if sp.load(Ordering::SeqCst) {
                break;
            }
            let Ok(s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
            let h = handler.clone();
            std::thread::spawn(move || h(s));
        }
    });
    (addr, Stop(stop, addr))
}

/// The identity provider, the IMAP and the SMTP server, sharing the tokens issued.
pub struct Microsoft {
    pub idp: SocketAddr,
    pub imap: SocketAddr,
    pub smtp: SocketAddr,
    pub graph: SocketAddr,
    tokens: Tokens,
    /// Every Graph request (method and path).
    pub graph_log: Arc<Mutex<Vec<String>>>,
    /// Every IMAP command received (the XOAUTH2 payload cut off).
    pub imap_log: Arc<Mutex<Vec<String>>>,
    /// Every SMTP command received (the XOAUTH2 payload cut off).
    pub smtp_log: Arc<Mutex<Vec<String>>>,
    _stops: Vec<Stop>,
}

impl Microsoft {
    /// Starts the three servers; `tls` for the identity provider and IMAP/SMTP.
    pub fn start(
        directory: Directory,
        exchange: Exchange,
        idp_tls: Arc<rustls::ServerConfig>,
        mail_tls: Arc<rustls::ServerConfig>,
    ) -> Self {
        let tokens: Tokens = Arc::default();
        let imap_log: Arc<Mutex<Vec<String>>> = Arc::default();
        let smtp_log: Arc<Mutex<Vec<String>>> = Arc::default();
        let dir = Arc::new(directory);
        let ex = Arc::new(exchange);
        let (idp, s1) = {
            let (tokens, dir, tls) = (tokens.clone(), dir.clone(), idp_tls);
            listen(move |s| serve_idp(s, &dir, &tokens, tls.clone()))
        };
        let (imap, s2) = {
            let (tokens, ex, tls, log) = (
                tokens.clone(),
                ex.clone(),
                mail_tls.clone(),
                imap_log.clone(),
            );
            listen(move |s| serve_imap(s, &ex, &tokens, tls.clone(), &log))
        };
        let (smtp, s3) = {
            let (tokens, ex, tls, log) = (
                tokens.clone(),
                ex.clone(),
                mail_tls.clone(),
                smtp_log.clone(),
            );
            listen(move |s| serve_smtp(s, &ex, &tokens, tls.clone(), &log))
        };
        let graph_log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (graph, s4) = {
            let (tokens, ex, tls, log) = (tokens.clone(), ex.clone(), mail_tls, graph_log.clone());
            listen(move |s| serve_graph(s, &ex, &tokens, tls.clone(), &log))
        };
        Self {
            idp,
            imap,
            smtp,
            graph,
            tokens,
            graph_log,
            imap_log,
            smtp_log,
            _stops: vec![s1, s2, s3, s4],
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.idp.port())
    }

    /// `https://127.0.0.1:<port>` of Graph.
    pub fn graph_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.graph.port())
    }

    /// Every access token issued so far.
    pub fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().keys().cloned().collect()
    }
}

// ---------- identity provider ----------

fn serve_idp(tcp: TcpStream, dir: &Directory, tokens: &Tokens, tls: Arc<rustls::ServerConfig>) {
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let Some((path, body)) = read_post(&mut stream) else {
        return;
    };
    if dir.hang {
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    if dir.html {
        let page = b"<!DOCTYPE html>\n<html><head><title>Proxy login</title></head><body>Sign in to continue</body></html>";
        respond(&mut stream, 200, "text/html; charset=utf-8", page);
        return;
    }
    let (status, json) = token_answer(&path, &body, dir, tokens);
    respond(
        &mut stream,
        status,
        "application/json; charset=utf-8",
        json.as_bytes(),
    );
}

fn read_post(stream: &mut impl Read) -> Option<(String, HashMap<String, String>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    let fields = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some((path, fields))
}

fn respond(w: &mut impl Write, status: u16, content_type: &str, body: &[u8]) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(body);
    let _ = w.flush();
}

/// Microsoft's error document for `code`.
fn aadsts(status: u16, error: &str, code: u64, words: &str) -> (u16, String) {
    let doc = serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {words}\r\nTrace ID: 0c1d2e3f-0000-4000-8000-000000000001\r\nCorrelation ID: 5a6b7c8d-0000-4000-8000-000000000002\r\nTimestamp: 2026-01-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "0c1d2e3f-0000-4000-8000-000000000001",
        "correlation_id": "5a6b7c8d-0000-4000-8000-000000000002",
        "error_uri": "https://login.example/error?code=".to_string() + &code.to_string(),
    });
    (status, doc.to_string())
}

fn token_answer(
    path: &str,
    f: &HashMap<String, String>,
    dir: &Directory,
    tokens: &Tokens,
) -> (u16, String) {
    let tenant = path
        .trim_start_matches('/')
        .strip_suffix("/oauth2/v2.0/token")
        .unwrap_or("");
    if !tenant.eq_ignore_ascii_case(&dir.tenant) && !tenant.eq_ignore_ascii_case(&dir.domain) {
        return aadsts(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    const EXCHANGE: &str = "https://outlook.office365.com";
    const GRAPH: &str = "https://graph.microsoft.com";
    let graph = get("scope") == format!("{GRAPH}/.default");
    if !graph && get("scope") != format!("{EXCHANGE}/.default") {
        return aadsts(
            400,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let Some(app) = dir.apps.iter().find(|a| a.client_id == get("client_id")) else {
        return aadsts(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{}'.",
                get("client_id"),
                dir.domain
            ),
        );
    };
    let check_secret = |s: &str| -> Option<(u16, String)> {
        if s != app.secret {
            return Some(aadsts(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            ));
        }
        if app.expired {
            return Some(aadsts(
                401,
                "invalid_client",
                7000222,
                "The provided client secret keys for app are expired.",
            ));
        }
        None
    };
    let (user, roles, scopes) = match get("grant_type") {
        "client_credentials" => {
            if let Some(e) = check_secret(get("client_secret")) {
                return e;
            }
            let n = dir.app_requests.fetch_add(1, Ordering::SeqCst);
            (
                None,
                match (app.consented && n >= dir.propagating, graph) {
                    (false, _) => Vec::new(),
                    (true, true) => app.graph_roles.clone(),
                    (true, false) => app.roles.clone(),
                },
                Vec::new(),
            )
        }
        "password" => {
            if let Some(s) = f.get("client_secret")
                && let Some(e) = check_secret(s)
            {
                return e;
            }
            let Some(u) = dir
                .users
                .iter()
                .find(|u| u.name.eq_ignore_ascii_case(get("username")))
            else {
                return aadsts(
                    400,
                    "invalid_grant",
                    50034,
                    "The user account does not exist in the directory.",
                );
            };
            if u.password != get("password") {
                return aadsts(
                    400,
                    "invalid_grant",
                    50126,
                    "Error validating credentials due to invalid username or password.",
                );
            }
            if u.mfa {
                return aadsts(
                    400,
                    "invalid_grant",
                    50076,
                    "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access this resource.",
                );
            }
            if !app.consented {
                return aadsts(
                    400,
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application.",
                );
            }
            let scopes = if graph {
                app.graph_scopes.clone()
            } else {
                app.scopes.clone()
            };
            (Some(u.name.clone()), Vec::new(), scopes)
        }
        other => {
            return aadsts(
                400,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            );
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let aud = if graph != dir.wrong_audience {
        GRAPH
    } else {
        EXCHANGE
    };
    let mut claims = serde_json::json!({
        "aud": aud,
        "iss": format!("https://sts.example/{}/", dir.tenant),
        "iat": now - 300,
        "nbf": now - 300,
        "exp": now + 3600,
        "tid": dir.tenant,
        "appid": app.client_id,
        "app_displayname": "CEM mail",
    });
    if !roles.is_empty() {
        claims["roles"] = serde_json::json!(roles);
    }
    if !scopes.is_empty() {
        claims["scp"] = serde_json::json!(scopes.join(" "));
    }
    if let Some(u) = &user {
        claims["upn"] = serde_json::json!(u);
    }
    let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let nonce: u64 = rand_u64();
    let token = format!(
        "{}.{}.{}",
        b(r#"{"typ":"JWT","alg":"RS256","kid":"test"}"#),
        b(&claims.to_string()),
        b(&format!("signature-{nonce}"))
    );
    tokens.lock().unwrap().insert(
        token.clone(),
        Issued {
            aud: aud.into(),
            app: app.client_id.clone(),
            user,
            roles,
            scopes,
        },
    );
    (
        200,
        serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}).to_string(),
    )
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(7);
    h.finish()
}

/// Whether `token` may use `protocol` on `mailbox`, as Exchange decides.
fn allowed(
    ex: &Exchange,
    tokens: &Tokens,
    sasl_b64: &str,
    protocol: &str,
) -> Result<String, &'static str> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sasl_b64.trim())
        .map_err(|_| "bad base64")?;
    let raw = String::from_utf8(raw).map_err(|_| "bad utf-8")?;
    let mut user = "";
    let mut token = "";
    for part in raw.split('\x01') {
        if let Some(u) = part.strip_prefix("user=") {
            user = u;
        } else if let Some(t) = part.strip_prefix("auth=Bearer ") {
            token = t;
        }
    }
    let issued = tokens
        .lock()
        .unwrap()
        .get(token)
        .cloned()
        .ok_or("unknown token")?;
    let mb = ex
        .mailboxes
        .iter()
        .find(|m| m.address.eq_ignore_ascii_case(user))
        .ok_or("no mailbox")?;
    let (role, scope) = if protocol == "imap" {
        ("IMAP.AccessAsApp", "IMAP.AccessAsUser.All")
    } else {
        ("SMTP.SendAsApp", "SMTP.Send")
    };
    if issued.aud != "https://outlook.office365.com" {
        return Err("wrong audience");
    }
    let ok = match &issued.user {
        None => issued.roles.iter().any(|r| r == role) && mb.apps.contains(&issued.app),
        Some(u) => {
            issued.scopes.iter().any(|s| s == scope)
                && mb.users.iter().any(|x| x.eq_ignore_ascii_case(u))
        }
    };
    if ok {
        Ok(mb.address.clone())
    } else {
        Err("not permitted")
    }
}

// ---------- IMAP ----------

fn serve_imap(
    tcp: TcpStream,
    ex: &Exchange,
    tokens: &Tokens,
    tls: Arc<rustls::ServerConfig>,
    log: &Mutex<Vec<String>>,
) {
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    if ex.imap_hangs {
        let _ = stream.conn.complete_io(&mut stream.sock);
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        return;
    }
    let w = |s: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>, line: &str| {
        let _ = s.write_all(format!("{line}\r\n").as_bytes());
        let _ = s.flush();
    };
    w(
        &mut stream,
        "* OK The Microsoft Exchange IMAP4 service is ready. [test]",
    );
    let mut user: Option<String> = None;
    loop {
        let Some(line) = read_line(&mut stream) else {
            return;
        };
        let mut parts = line.splitn(3, ' ');
        let tag = parts.next().unwrap_or("").to_string();
        let cmd = parts.next().unwrap_or("").to_ascii_uppercase();
        let rest = parts.next().unwrap_or("").to_string();
        log.lock().unwrap().push(if cmd == "AUTHENTICATE" {
            "AUTHENTICATE XOAUTH2".to_string()
        } else {
            format!("{cmd} {rest}").trim().to_string()
        });
        match cmd.as_str() {
            "AUTHENTICATE" => {
                let b64 = rest.strip_prefix("XOAUTH2 ").unwrap_or("");
                match allowed(ex, tokens, b64, "imap") {
                    Ok(mb) => {
                        user = Some(mb);
                        w(&mut stream, &format!("{tag} OK AUTHENTICATE completed."));
                    }
                    Err(_) => w(&mut stream, &format!("{tag} NO AUTHENTICATE failed.")),
                }
            }
            "EXAMINE" | "SELECT" if user.is_some() => {
                let n = ex
                    .mailboxes
                    .iter()
                    .find(|m| Some(&m.address) == user.as_ref())
                    .map(|m| m.messages)
                    .unwrap_or(0);
                w(
                    &mut stream,
                    "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)",
                );
                w(&mut stream, &format!("* {n} EXISTS"));
                w(&mut stream, "* 0 RECENT");
                w(
                    &mut stream,
                    &format!("{tag} OK [READ-ONLY] EXAMINE completed."),
                );
            }
            "LOGOUT" => {
                w(
                    &mut stream,
                    "* BYE Microsoft Exchange Server IMAP4 server signing off.",
                );
                w(&mut stream, &format!("{tag} OK LOGOUT completed."));
                return;
            }
            _ => w(&mut stream, &format!("{tag} BAD Command Error. 12")),
        }
    }
}

fn read_line(r: &mut impl Read) -> Option<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => out.push(b[0]),
        }
        if out.len() > 64 * 1024 {
            return None;
        }
    }
    Some(
        String::from_utf8_lossy(&out)
            .trim_end_matches('\r')
            .to_string(),
    )
}

// ---------- SMTP ----------

fn serve_smtp(
    mut tcp: TcpStream,
    ex: &Exchange,
    tokens: &Tokens,
    tls: Arc<rustls::ServerConfig>,
    log: &Mutex<Vec<String>>,
) {
    say(
        &mut tcp,
        "220 test.outlook.example Microsoft ESMTP MAIL Service ready",
    );
    if !smtp_session(&mut tcp, false, ex, tokens, log) {
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut s = rustls::StreamOwned::new(conn, tcp);
    smtp_session(&mut s, true, ex, tokens, log);
}

fn say(w: &mut dyn Write, line: &str) {
    let _ = w.write_all(format!("{line}\r\n").as_bytes());
    let _ = w.flush();
}

/// Serves commands until QUIT or the end (false), or until STARTTLS on a plain
/// connection (true).
fn smtp_session<S: Read + Write>(
    s: &mut S,
    secure: bool,
    ex: &Exchange,
    tokens: &Tokens,
    log: &Mutex<Vec<String>>,
) -> bool {
    loop {
        let Some(line) = read_line(s) else {
            return false;
        };
        let cmd = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        log.lock().unwrap().push(if cmd == "AUTH" {
            "AUTH XOAUTH2".to_string()
        } else {
            line.clone()
        });
        match cmd.as_str() {
            "EHLO" => {
                say(s, "250-test.outlook.example Hello [127.0.0.1]");
                say(s, "250-SIZE 157286400");
                say(
                    s,
                    if secure {
                        "250-AUTH LOGIN XOAUTH2"
                    } else {
                        "250-STARTTLS"
                    },
                );
                say(s, "250 SMTPUTF8");
            }
            "STARTTLS" if !secure => {
                say(s, "220 2.0.0 SMTP server ready");
                return true;
            }
            "AUTH" if secure => {
                let b64 = line.split_whitespace().nth(2).unwrap_or("");
                match allowed(ex, tokens, b64, "smtp") {
                    Ok(_) if ex.security_defaults => say(
                        s,
                        "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator. [test]",
                    ),
                    Ok(_) if ex.smtp_tenant_disabled => say(
                        s,
                        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [test]",
                    ),
                    Ok(mb) => {
                        let enabled = ex.mailboxes.iter().any(|m| m.address == mb && m.smtp_auth);
                        if enabled {
                            say(s, "235 2.7.0 Authentication successful");
                        } else {
                            say(
                                s,
                                "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. [test]",
                            );
                        }
                    }
                    Err(_) => say(s, "535 5.7.3 Authentication unsuccessful [test]"),
                }
            }
            "QUIT" => {
                say(s, "221 2.0.0 Service closing transmission channel");
                return false;
            }
            _ if !secure => say(s, "530 5.7.57 Client not authenticated to send mail"),
            _ => say(s, "503 5.5.1 Bad sequence of commands"),
        }
    }
}

// ---------- Microsoft Graph ----------

/// Graph's error document.
fn graph_error(status: u16, code: &str, message: &str) -> (u16, String) {
    let doc = serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": "2026-01-01T00:00:00",
                "request-id": "7e8f9a0b-0000-4000-8000-000000000003",
                "client-request-id": "7e8f9a0b-0000-4000-8000-000000000003"
            }
        }
    });
    (status, doc.to_string())
}

fn serve_graph(
    tcp: TcpStream,
    ex: &Exchange,
    tokens: &Tokens,
    tls: Arc<rustls::ServerConfig>,
    log: &Mutex<Vec<String>>,
) {
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut bearer = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            bearer = v.trim().strip_prefix("Bearer ").unwrap_or("").to_string();
        }
    }
    drop(reader);
    log.lock().unwrap().push(format!("{method} {path}"));
    let (status, body) = graph_answer(&method, &path, &bearer, ex, tokens);
    respond(
        &mut stream,
        status,
        "application/json; odata.metadata=minimal",
        body.as_bytes(),
    );
}

fn graph_answer(
    method: &str,
    path: &str,
    bearer: &str,
    ex: &Exchange,
    tokens: &Tokens,
) -> (u16, String) {
    let Some(issued) = tokens.lock().unwrap().get(bearer).cloned() else {
        return graph_error(
            401,
            "InvalidAuthenticationToken",
            "IDX14100: JWT is not well formed.",
        );
    };
    if issued.aud != "https://graph.microsoft.com" {
        return graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        );
    }
    if method != "GET" {
        return graph_error(
            405,
            "Request_BadRequest",
            "extpy must never change a mailbox",
        );
    }
    let rest = path.strip_prefix("/v1.0/users/").unwrap_or("");
    let (user, folder) = match rest.split_once('/') {
        Some((u, f)) => (u.replace("%40", "@"), Some(f)),
        None => (rest.replace("%40", "@"), None),
    };
    let Some(mb) = ex
        .mailboxes
        .iter()
        .find(|m| m.address.eq_ignore_ascii_case(&user))
    else {
        return graph_error(
            404,
            if folder.is_some() {
                "ErrorInvalidUser"
            } else {
                "Request_ResourceNotFound"
            },
            &format!(
                "Resource '{user}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let has = |perm: &str| issued.roles.iter().chain(&issued.scopes).any(|r| r == perm);
    match folder {
        None => {
            if issued.user.is_none()
                && !["User.Read.All", "User.ReadBasic.All", "Directory.Read.All"]
                    .iter()
                    .any(|p| has(p))
            {
                return graph_error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                );
            }
            (
                200,
                serde_json::json!({"id": "0f1e2d3c-0000-4000-8000-000000000004", "mail": mb.address, "userPrincipalName": mb.address}).to_string(),
            )
        }
        Some("mailFolders/inbox") => {
            if !mb.rest_enabled {
                return graph_error(
                    404,
                    "MailboxNotEnabledForRESTAPI",
                    "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                );
            }
            let permitted = match &issued.user {
                None => has("Mail.ReadWrite") || has("Mail.Read"),
                Some(u) => {
                    (has("Mail.ReadWrite") || has("Mail.Read"))
                        && mb.users.iter().any(|x| x.eq_ignore_ascii_case(u))
                }
            };
            if !permitted || mb.rbac_excludes.contains(&issued.app) {
                return graph_error(
                    403,
                    "ErrorAccessDenied",
                    "Access is denied. Check credentials and try again.",
                );
            }
            if mb.policy_excludes.contains(&issued.app) {
                return graph_error(
                    403,
                    "ErrorAccessDenied",
                    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
                );
            }
            (
                200,
                serde_json::json!({"id": "AAMkAD-inbox", "displayName": "Inbox", "totalItemCount": mb.messages, "unreadItemCount": 0}).to_string(),
            )
        }
        Some(_) => graph_error(400, "BadRequest", "Resource not found for the segment."),
    }
}

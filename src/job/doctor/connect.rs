//! Reaching a host step by step, so that each step can fail on its own: the proxy from the
//! environment, DNS, the TCP connection (or a CONNECT tunnel through the proxy), and a TLS
//! handshake that records the chain the server presented.
//!
//! The handshake accepts any certificate so that it can be captured: that connection
//! carries no request and is closed right after the handshake. Trust is decided
//! afterwards, by checking the captured chain against each trust source.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConnection, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use url::Url;

use crate::mechanism::net::trust::{self, classify};
use crate::mechanism::net::{AutoConfig, ProxyConfig, ProxySource, TlsProblem};

use super::target::Target;

/// The proxy set for a host (by the run's one proxy resolution), and whether the host
/// bypasses it.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyInfo {
    /// Where the proxy setting came from (`environment`, `user_registry`, `winhttp`, `none`).
    pub source: ProxySource,
    /// The setting (`HTTPS_PROXY`, the registry value, `netsh winhttp show proxy`), if any.
    pub variable: Option<String>,
    /// The proxy URL, without any password.
    pub url: Option<String>,
    /// True when `NO_PROXY` lists the host.
    pub bypassed: bool,
    /// True when the connection goes through the proxy.
    pub used: bool,
    /// The PAC file or WPAD detection set when no proxy is (extpy does not evaluate it).
    pub auto_config: Option<AutoConfig>,
    #[serde(skip)]
    pub(crate) endpoint: Option<ProxyEndpoint>,
    #[serde(skip)]
    pub(crate) unusable: Option<String>,
}

/// Where to reach a proxy, and its credentials.
#[derive(Debug, Clone)]
pub(crate) struct ProxyEndpoint {
    /// The proxy's host (an IPv6 address without brackets).
    pub(crate) host: String,
    /// Its port.
    pub(crate) port: u16,
    /// The `Proxy-Authorization` value (`Basic ...`) when the setting holds credentials.
    pub(crate) authorization: Option<String>,
}

impl ProxyInfo {
    /// The proxy for `url` as `config` (the same the downloads use) sets it.
    pub fn from_config(config: &ProxyConfig, url: &Url) -> Self {
        let Some(choice) = config.setting(url) else {
            return Self {
                source: ProxySource::None,
                variable: None,
                url: None,
                bypassed: false,
                used: false,
                auto_config: config.auto_config().cloned(),
                endpoint: None,
                unusable: None,
            };
        };
        let bypassed = config.bypasses(url.host_str().unwrap_or(""));
        let (shown, endpoint, unusable) = match parse_proxy(&choice.value) {
            Ok((shown, endpoint)) => (shown, Some(endpoint), None),
            Err(why) => (
                crate::mechanism::net::auth::shown_text(&choice.value),
                None,
                Some(why),
            ),
        };
        Self {
            source: choice.source,
            variable: Some(choice.setting),
            url: Some(shown),
            bypassed,
            used: !bypassed,
            auto_config: None,
            endpoint,
            unusable,
        }
    }

    /// The proxy as shown to people.
    pub fn shown(&self) -> String {
        match (&self.url, &self.variable) {
            (Some(u), Some(v)) => format!("{u} (from {}: {v})", self.source.label()),
            (Some(u), None) => u.clone(),
            _ => "none".into(),
        }
    }
}

/// Parses a proxy setting (`http://user:pass@proxy:3128`, or `proxy:3128`), hiding the
/// password in what is shown.
pub(crate) fn parse_proxy(value: &str) -> Result<(String, ProxyEndpoint), String> {
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| format!("it is not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "extpy doctor tunnels through http:// proxies only, not {}://",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("it names no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port().unwrap_or(80);
    let authorization = (!url.username().is_empty()).then(|| {
        let user = percent_decode(url.username());
        let pass = percent_decode(url.password().unwrap_or(""));
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {token}")
    });
    let shown = crate::mechanism::net::auth::shown_text(url.as_str().trim_end_matches('/'));
    Ok((
        shown,
        ProxyEndpoint {
            host,
            port,
            authorization,
        },
    ))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the host's name became addresses.
#[derive(Debug, Clone, Serialize)]
pub struct Dns {
    /// `literal` (an IP address), `resolve` (`--resolve`), `system` (the resolver), or
    /// `proxy` (the proxy resolves it).
    pub source: &'static str,
    /// The name looked up (the proxy's own name when a proxy is used).
    pub name: String,
    /// The addresses found.
    pub addresses: Vec<String>,
    /// Milliseconds the lookup took.
    pub ms: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The TCP connection (to the host, or to the proxy and through its tunnel).
#[derive(Debug, Clone, Serialize)]
pub struct Connect {
    /// The address that answered (or the last one tried).
    pub address: Option<String>,
    /// True when connected through a proxy's CONNECT tunnel.
    pub via_proxy: bool,
    /// Milliseconds to connect (and open the tunnel).
    pub ms: f64,
    /// Addresses that failed before one answered, with why.
    pub failed: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The proxy's answer when it refused the tunnel (`403 Forbidden`).
    pub proxy_answer: Option<String>,
}

/// The TLS handshake.
#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    /// `TLS 1.3` or `TLS 1.2`.
    pub version: Option<String>,
    /// The negotiated cipher suite.
    pub cipher: Option<String>,
    /// The key exchange group.
    pub key_exchange: Option<String>,
    /// The negotiated application protocol (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// Milliseconds the handshake took.
    pub ms: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// True when the server's first bytes were not TLS at all.
    pub not_tls: bool,
    /// What the server sent instead of TLS (its first line), when readable.
    pub answer: Option<String>,
}

/// What reaching a host produced.
pub(crate) struct Reached {
    /// Name resolution.
    pub dns: Option<Dns>,
    /// The connection.
    pub connect: Option<Connect>,
    /// The handshake (none for `http://` targets).
    pub handshake: Option<Handshake>,
    /// The certificates presented, in order.
    pub presented: Vec<CertificateDer<'static>>,
}

/// Connects to `target` (through the proxy when one applies) and, for https, shakes hands
/// recording the presented chain.
pub(crate) fn reach(
    target: &Target,
    proxy: &ProxyInfo,
    resolve: &[(String, u16, Vec<IpAddr>)],
    timeout: Duration,
) -> Reached {
    let mut reached = Reached {
        dns: None,
        connect: None,
        handshake: None,
        presented: Vec::new(),
    };
    let via_proxy = proxy.used;
    if via_proxy && let Some(why) = &proxy.unusable {
        reached.connect = Some(connect_error(
            false,
            format!("cannot use the proxy {}: {why}", proxy.shown()),
        ));
        return reached;
    }
    let (name, port, forced) = match (via_proxy, &proxy.endpoint) {
        (true, Some(p)) => (p.host.clone(), p.port, None),
        _ => (
            target.host.clone(),
            target.port,
            resolve
                .iter()
                .find(|(h, p, _)| h.eq_ignore_ascii_case(&target.host) && *p == target.port)
                .map(|(_, _, a)| a.clone()),
        ),
    };
    let dns = lookup(&name, port, forced, via_proxy);
    let addresses = dns.1.clone();
    reached.dns = Some(dns.0);
    if addresses.is_empty() {
        return reached;
    }
    let started = Instant::now();
    let (stream, mut connect) = tcp_connect(&addresses, timeout);
    connect.via_proxy = via_proxy;
    let Some(mut stream) = stream else {
        connect.ms = millis(started);
        if via_proxy {
            let why = connect.error.take().unwrap_or_default();
            connect.error = Some(format!(
                "cannot connect to the proxy {}: {why}",
                proxy.shown()
            ));
        }
        reached.connect = Some(connect);
        return reached;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    if via_proxy
        && let Some(endpoint) = &proxy.endpoint
        && let Err((answer, why)) = tunnel(&mut stream, target, endpoint)
    {
        connect.ms = millis(started);
        connect.error = Some(format!("the proxy {} {why}", proxy.shown()));
        connect.proxy_answer = answer;
        reached.connect = Some(connect);
        return reached;
    }
    connect.ms = millis(started);
    reached.connect = Some(connect);
    if target.tls {
        let (handshake, presented) = handshake(stream, target, timeout);
        reached.handshake = Some(handshake);
        reached.presented = presented;
    }
    reached
}

fn connect_error(via_proxy: bool, error: String) -> Connect {
    Connect {
        address: None,
        via_proxy,
        ms: 0.0,
        failed: Vec::new(),
        error: Some(error),
        proxy_answer: None,
    }
}

fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

fn lookup(
    name: &str,
    port: u16,
    forced: Option<Vec<IpAddr>>,
    for_proxy: bool,
) -> (Dns, Vec<SocketAddr>) {
    let started = Instant::now();
    let dns = |source, addresses: &[SocketAddr], error| Dns {
        source: if for_proxy { "proxy" } else { source },
        name: name.to_string(),
        addresses: addresses.iter().map(|a| a.ip().to_string()).collect(),
        ms: millis(started),
        error,
    };
    if let Some(ips) = forced {
        let addrs: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        return (dns("resolve", &addrs, None), addrs);
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        let addrs = vec![SocketAddr::new(ip, port)];
        return (dns("literal", &addrs, None), addrs);
    }
    let source = "system";
    match (name, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let error = addrs
                .is_empty()
                .then(|| "the name has no addresses".to_string());
            (dns(source, &addrs, error), addrs)
        }
        Err(e) => (dns(source, &[], Some(resolver_words(&e))), Vec::new()),
    }
}

fn resolver_words(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    text.to_string()
}

fn tcp_connect(addresses: &[SocketAddr], timeout: Duration) -> (Option<TcpStream>, Connect) {
    let mut connect = Connect {
        address: None,
        via_proxy: false,
        ms: 0.0,
        failed: Vec::new(),
        error: None,
        proxy_answer: None,
    };
    for addr in addresses {
        connect.address = Some(addr.to_string());
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => return (Some(s), connect),
            Err(e) => {
                let why = connect_words(&e, timeout);
                connect.failed.push(format!("{addr}: {why}"));
                connect.error = Some(why);
            }
        }
    }
    if connect.failed.len() == 1 {
        connect.failed.clear();
    }
    (None, connect)
}

fn connect_words(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens on that port, or a firewall rejects it)".into()
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
            "no answer within {}s (a firewall may drop the packets)",
            timeout.as_secs()
        ),
        _ => e.to_string(),
    }
}

/// Asks the proxy for a tunnel; on refusal, its status line and the reason in words.
fn tunnel(
    stream: &mut TcpStream,
    target: &Target,
    proxy: &ProxyEndpoint,
) -> Result<(), (Option<String>, String)> {
    let authority = target.authority();
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str(concat!(
        "User-Agent: extpy/",
        env!("CARGO_PKG_VERSION"),
        "\r\n\r\n"
    ));
    stream
        .write_all(request.as_bytes())
        .map_err(|e| (None, format!("closed the connection: {e}")))?;
    let head = read_head(stream)
        .map_err(|e| (None, format!("gave no answer to CONNECT: {}", io_words(&e))))?;
    let status_line = head.lines().next().unwrap_or("").trim().to_string();
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let code = parts.next().unwrap_or("");
    let answer = status_line
        .split_once(' ')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| status_line.clone());
    if code.starts_with('2') {
        return Ok(());
    }
    if status_line.is_empty() {
        return Err((
            None,
            "closed the connection without answering CONNECT".into(),
        ));
    }
    let hint = match code {
        "407" => {
            " (it wants credentials: put them in the proxy URL, http://user:password@proxy:port)"
        }
        "403" => {
            " (its policy does not allow this host or port; ask the proxy's administrators to allow it)"
        }
        _ => "",
    };
    Err((
        Some(answer.clone()),
        format!("refused the tunnel to {authority}: it answered \"{answer}\"{hint}"),
    ))
}

/// Reads an HTTP response head byte by byte, so nothing of the tunnel is consumed.
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte)? {
            0 => break,
            _ => head.push(byte[0]),
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn io_words(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".into(),
        _ => e.to_string(),
    }
}

/// Keeps the certificates a server presents. Without an inner verifier it accepts every
/// certificate (capture only: such a connection never carries a request); with one, that
/// verifier decides, as for a mail server's handshake that the doctor may judge afterwards.
#[derive(Debug)]
pub(crate) struct Recorder {
    presented: Mutex<Vec<CertificateDer<'static>>>,
    algorithms: WebPkiSupportedAlgorithms,
    inner: Option<Arc<dyn ServerCertVerifier>>,
}

impl Recorder {
    /// A recorder that accepts everything.
    pub(crate) fn capturing() -> Self {
        Self {
            presented: Mutex::new(Vec::new()),
            algorithms: trust::provider().signature_verification_algorithms,
            inner: None,
        }
    }

    /// A recorder that lets `inner` decide.
    pub(crate) fn checking(inner: Arc<dyn ServerCertVerifier>) -> Self {
        Self {
            inner: Some(inner),
            ..Self::capturing()
        }
    }

    /// What the server presented, leaf first.
    pub(crate) fn presented(&self) -> Vec<CertificateDer<'static>> {
        self.presented.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut presented) = self.presented.lock() {
            presented.clear();
            presented.push(end_entity.clone().into_owned());
            presented.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.inner {
            Some(v) => v.verify_tls12_signature(message, cert, dss),
            None => rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.inner {
            Some(v) => v.verify_tls13_signature(message, cert, dss),
            None => rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.inner {
            Some(v) => v.supported_verify_schemes(),
            None => self.algorithms.supported_schemes(),
        }
    }
}

/// A stream that keeps the first bytes the server sent, to name what answered when it was
/// not TLS.
struct Peek<S> {
    inner: S,
    first: Vec<u8>,
}

impl<S: Read> Read for Peek<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = 256usize.saturating_sub(self.first.len());
        self.first.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

impl<S: Write> Write for Peek<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn handshake(
    stream: TcpStream,
    target: &Target,
    timeout: Duration,
) -> (Handshake, Vec<CertificateDer<'static>>) {
    let recorder = Arc::new(Recorder::capturing());
    let mut hs = Handshake {
        version: None,
        cipher: None,
        key_exchange: None,
        alpn: None,
        ms: 0.0,
        error: None,
        not_tls: false,
        answer: None,
    };
    let started = Instant::now();
    let result = shake(stream, target, recorder.clone(), &mut hs);
    hs.ms = millis(started);
    let presented = recorder.presented();
    if let Err(failure) = result {
        let (text, not_tls, answer) = failure.in_words(timeout);
        hs.error = Some(text);
        hs.not_tls = not_tls;
        hs.answer = answer;
    }
    (hs, presented)
}

/// Why a handshake failed: a TLS error, or the socket, with the bytes the server sent.
struct Failure {
    tls: Option<rustls::Error>,
    io: Option<io::Error>,
    first: Vec<u8>,
}

impl Failure {
    fn in_words(&self, timeout: Duration) -> (String, bool, Option<String>) {
        let answer = plain_answer(&self.first);
        if let Some(line) = &answer {
            return (
                format!(
                    "the server does not speak TLS on this port: it answered in plain HTTP (\"{line}\")"
                ),
                true,
                answer,
            );
        }
        if let Some(tls) = &self.tls {
            let text = match classify(tls) {
                TlsProblem::NotTls(_) => {
                    return (
                        "the server does not speak TLS on this port: its answer is not a TLS record".into(),
                        true,
                        None,
                    );
                }
                TlsProblem::Handshake(why) => why,
                other => other.to_string(),
            };
            return (text, false, None);
        }
        let text = match &self.io {
            Some(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => format!(
                "the server sent nothing for {}s after the connection opened (is this a TLS port? a firewall may hold the connection)",
                timeout.as_secs()
            ),
            Some(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted) || self.first.is_empty() && e.kind() == io::ErrorKind::BrokenPipe => {
                "the server closed the connection during the handshake (it may refuse this TLS version or name, or not speak TLS)".into()
            }
            Some(e) => e.to_string(),
            None => "the server closed the connection during the handshake".into(),
        };
        (text, false, None)
    }
}

/// The first line of a plain-text (HTTP) answer, if that is what the server sent.
fn plain_answer(first: &[u8]) -> Option<String> {
    if !first.starts_with(b"HTTP/") {
        return None;
    }
    let line = first.split(|&b| b == b'\n').next().unwrap_or(first);
    let line = String::from_utf8_lossy(line).trim().to_string();
    Some(line)
}

fn shake(
    stream: TcpStream,
    target: &Target,
    recorder: Arc<Recorder>,
    hs: &mut Handshake,
) -> Result<(), Failure> {
    let fail = |tls, io, first: &[u8]| Failure {
        tls,
        io,
        first: first.to_vec(),
    };
    let config = trust::config_with_verifier(recorder)
        .map_err(|e| fail(None, Some(io::Error::other(e.to_string())), &[]))?;
    let server_name = target.server_name();
    let mut conn = ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| fail(Some(e), None, &[]))?;
    let mut io = Peek {
        inner: stream,
        first: Vec::new(),
    };
    while conn.is_handshaking() {
        match conn.complete_io(&mut io) {
            Ok((0, 0)) => {
                return Err(fail(
                    None,
                    Some(io::ErrorKind::UnexpectedEof.into()),
                    &io.first,
                ));
            }
            Ok(_) => {}
            Err(e) => {
                let tls = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .cloned();
                return Err(if tls.is_some() {
                    fail(tls, None, &io.first)
                } else {
                    fail(None, Some(e), &io.first)
                });
            }
        }
    }
    hs.version = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
        other => format!("{other:?}"),
    });
    hs.cipher = conn.negotiated_cipher_suite().map(|s| {
        let suite = s.suite();
        suite
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{suite:?}"))
    });
    hs.key_exchange = conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()));
    hs.alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    conn.send_close_notify();
    let _ = conn.complete_io(&mut io);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_settings_are_parsed_and_passwords_hidden() {
        let (shown, p) = parse_proxy("http://me:s%40cret@proxy.example:3128").unwrap();
        assert_eq!(shown, "http://me:****@proxy.example:3128");
        assert_eq!(p.host, "proxy.example");
        assert_eq!(p.port, 3128);
        let token = base64::engine::general_purpose::STANDARD.encode("me:s@cret");
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {token}").as_str())
        );
        let (shown, p) = parse_proxy("proxy.example:8080").unwrap();
        assert_eq!(shown, "http://proxy.example:8080");
        assert_eq!((p.port, p.authorization), (8080, None));
        assert!(
            parse_proxy("socks5://proxy.example:1080")
                .unwrap_err()
                .contains("http:// proxies only")
        );
    }

    #[test]
    fn plain_http_answers_are_recognised() {
        assert_eq!(
            plain_answer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n").as_deref(),
            Some("HTTP/1.1 400 Bad Request")
        );
        assert_eq!(plain_answer(&[0x15, 0x03, 0x03, 0x00, 0x02]), None);
    }
}

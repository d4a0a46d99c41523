//! IMAP and SMTP sessions that prove a login and change nothing: IMAP over TLS with SASL
//! XOAUTH2 then EXAMINE INBOX (read-only) and LOGOUT; SMTP submission with STARTTLS and
//! AUTH XOAUTH2, then QUIT before any MAIL FROM. Every wait is bounded.
//!
//! They connect directly, as CEM's IMAP and SMTP clients do (an HTTP proxy carries the
//! token request only). The TLS verifier is the one the HTTP client uses, wrapped to keep
//! the chain the server presented, so a TLS failure can be judged by the doctor.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::job::doctor::connect::Recorder;
use crate::mechanism::net::trust;

/// The longest line a server may send.
const MAX_LINE: usize = 16 * 1024;
/// The longest multi-line SMTP reply, in lines.
const MAX_REPLY_LINES: usize = 64;
/// Lines of an IMAP answer before its tagged status.
const MAX_UNTAGGED: usize = 256;

/// A mail server's `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `host` or `host:port` (`[v6]:port`), `default_port` when none is given.
    pub fn parse(s: &str, default_port: u16) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, tail) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: unclosed '['"))?;
            (h, tail.strip_prefix(':'))
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (s, None),
            }
        };
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            return Err(format!("{s:?} is not a host name or address"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{s:?}: {p:?} is not a port number"))?,
        };
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a session ended before the server said yes or no.
#[derive(Debug, Clone)]
pub(crate) enum WireFailure {
    /// The name does not resolve.
    Dns {
        /// The resolver's words.
        error: String,
    },
    /// No TCP connection.
    Connect {
        /// Why.
        error: String,
    },
    /// Nothing within the timeout.
    Timeout {
        /// What was awaited.
        waiting_for: String,
    },
    /// The TLS handshake failed.
    Tls {
        /// Why, in words.
        error: String,
        /// What the server presented (for the doctor).
        presented: Vec<CertificateDer<'static>>,
    },
    /// An answer the protocol does not allow here (or the server closed).
    Unexpected {
        /// What was expected.
        expected: String,
        /// What came.
        answer: String,
    },
}

/// How a session ended, when the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Login {
    /// IMAP: authenticated, INBOX examined.
    ImapOpened {
        /// `* N EXISTS`.
        messages: Option<u64>,
    },
    /// IMAP: AUTHENTICATE refused.
    ImapRefused {
        /// The tagged answer.
        answer: String,
    },
    /// IMAP: authenticated, but EXAMINE INBOX refused.
    ImapNoInbox {
        /// The tagged answer.
        answer: String,
    },
    /// SMTP: AUTH accepted.
    SmtpAccepted,
    /// SMTP: AUTH refused.
    SmtpRefused {
        /// The reply.
        answer: String,
    },
}

/// One session: what was said (tokens hidden), and how it ended.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// `S: …` and `C: …` lines.
    pub transcript: Vec<String>,
    /// The ending.
    pub result: Result<Login, WireFailure>,
    /// The chain the server presented, when the handshake completed (leaf first).
    pub presented: Vec<CertificateDer<'static>>,
}

/// What a session needs.
pub(crate) struct Dial<'a> {
    /// Where.
    pub endpoint: &'a Endpoint,
    /// TLS settings (the verifier is wrapped to record the chain).
    pub verifier: Arc<dyn ServerCertVerifier>,
    /// Per connect and per read.
    pub timeout: Duration,
    /// The mailbox (`user=` of XOAUTH2).
    pub user: &'a str,
    /// The access token.
    pub token: &'a str,
}

/// Logs in to IMAP over TLS and examines INBOX.
pub(crate) fn imap(d: &Dial<'_>) -> Session {
    let mut c = Conn::new(d);
    let result = c.imap();
    Session {
        transcript: c.transcript,
        result,
        presented: c.presented,
    }
}

/// Logs in to SMTP submission (STARTTLS) and quits.
pub(crate) fn smtp(d: &Dial<'_>) -> Session {
    let mut c = Conn::new(d);
    let result = c.smtp();
    Session {
        transcript: c.transcript,
        result,
        presented: c.presented,
    }
}

/// Connects as a session does and stops right after the TLS handshake (for SMTP, the one
/// after STARTTLS), sending no login: the chain the server presents, whoever signed it.
/// Nothing is trusted on such a connection, and nothing but the greeting dialogue and
/// QUIT (SMTP) is sent over it.
pub(crate) fn capture(
    endpoint: &Endpoint,
    timeout: Duration,
    starttls: bool,
) -> Result<Vec<CertificateDer<'static>>, WireFailure> {
    let dial = Dial {
        endpoint,
        verifier: Arc::new(Recorder::capturing()),
        timeout,
        user: "",
        token: "",
    };
    let mut c = Conn::new(&dial);
    if starttls {
        c.smtp_to_tls()?;
        c.smtp_quit();
    } else {
        let tcp = c.connect()?;
        c.start_tls(tcp)?;
    }
    Ok(c.presented)
}

enum Stream {
    None,
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::None => Ok(0),
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::None => Err(io::ErrorKind::NotConnected.into()),
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::None => Ok(()),
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

struct Conn<'a> {
    dial: &'a Dial<'a>,
    stream: Stream,
    buf: Vec<u8>,
    deadline: Instant,
    transcript: Vec<String>,
    hidden: [String; 2],
    presented: Vec<CertificateDer<'static>>,
}

impl<'a> Conn<'a> {
    fn new(dial: &'a Dial<'a>) -> Self {
        let sasl = xoauth2(dial.user, dial.token);
        Self {
            dial,
            stream: Stream::None,
            buf: Vec::new(),
            // Each read waits at most the timeout; the whole session at most a few times it,
            // so a server that trickles bytes cannot hold the check forever.
            deadline: Instant::now() + dial.timeout * 6,
            transcript: Vec::new(),
            hidden: [dial.token.to_string(), sasl],
            presented: Vec::new(),
        }
    }

    fn connect(&mut self) -> Result<TcpStream, WireFailure> {
        let e = self.dial.endpoint;
        let addrs: Vec<SocketAddr> = (e.host.as_str(), e.port)
            .to_socket_addrs()
            .map_err(|err| WireFailure::Dns {
                error: err.to_string(),
            })?
            .collect();
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.dial.timeout) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(self.dial.timeout));
                    let _ = s.set_write_timeout(Some(self.dial.timeout));
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                    return Err(WireFailure::Timeout {
                        waiting_for: format!("a TCP connection to {addr}"),
                    });
                }
                Err(err) => last = format!("{addr}: {err}"),
            }
        }
        Err(WireFailure::Connect { error: last })
    }

    fn start_tls(&mut self, tcp: TcpStream) -> Result<(), WireFailure> {
        let recorder = Arc::new(Recorder::checking(self.dial.verifier.clone()));
        let config = tls_config(recorder.clone()).map_err(|e| WireFailure::Tls {
            error: e,
            presented: Vec::new(),
        })?;
        let name = ServerName::try_from(self.dial.endpoint.host.clone()).map_err(|e| {
            WireFailure::Tls {
                error: format!(
                    "{:?} cannot be verified by TLS: {e}",
                    self.dial.endpoint.host
                ),
                presented: Vec::new(),
            }
        })?;
        let mut conn =
            ClientConnection::new(Arc::new(config), name).map_err(|e| WireFailure::Tls {
                error: e.to_string(),
                presented: Vec::new(),
            })?;
        let mut tcp = tcp;
        while conn.is_handshaking() {
            if let Err(err) = conn.complete_io(&mut tcp) {
                let presented = recorder.presented();
                if is_timeout(&err) {
                    return Err(WireFailure::Timeout {
                        waiting_for: "the TLS handshake".into(),
                    });
                }
                let error = match trust::find_tls_problem(&err) {
                    Some(p) => p.to_string(),
                    None if err.kind() == io::ErrorKind::UnexpectedEof => {
                        "the server closed the connection during the handshake".into()
                    }
                    None => err.to_string(),
                };
                return Err(WireFailure::Tls { error, presented });
            }
        }
        self.presented = recorder.presented();
        self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, tcp)));
        self.transcript.push("-- TLS established".into());
        Ok(())
    }

    fn send(&mut self, line: &str, shown: &str) -> Result<(), WireFailure> {
        self.transcript.push(format!("C: {shown}"));
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.stream
            .write_all(&bytes)
            .and_then(|_| self.stream.flush())
            .map_err(|err| self.io_failure(&err, "the server to take our command"))
    }

    fn read_line(&mut self, waiting_for: &str) -> Result<String, WireFailure> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=i).collect();
                let line = self.clean(&raw);
                self.transcript.push(format!("S: {line}"));
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                let answer = self.clean(&self.buf[..200.min(self.buf.len())]);
                return Err(WireFailure::Unexpected {
                    expected: waiting_for.into(),
                    answer: format!("{answer}... (a line longer than {MAX_LINE} bytes)"),
                });
            }
            if Instant::now() > self.deadline {
                return Err(WireFailure::Timeout {
                    waiting_for: waiting_for.into(),
                });
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    let answer = if self.buf.is_empty() {
                        "the server closed the connection".to_string()
                    } else {
                        format!(
                            "{} (then the server closed the connection)",
                            self.clean(&self.buf)
                        )
                    };
                    return Err(WireFailure::Unexpected {
                        expected: waiting_for.into(),
                        answer,
                    });
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.io_failure(&err, waiting_for)),
            }
        }
    }

    fn io_failure(&self, err: &io::Error, waiting_for: &str) -> WireFailure {
        if is_timeout(err) {
            return WireFailure::Timeout {
                waiting_for: waiting_for.into(),
            };
        }
        if let Some(p) = trust::find_tls_problem(err) {
            return WireFailure::Tls {
                error: p.to_string(),
                presented: Vec::new(),
            };
        }
        WireFailure::Unexpected {
            expected: waiting_for.into(),
            answer: format!("the connection failed: {err}"),
        }
    }

    /// A server line as shown: ASCII, shortened, with anything secret replaced.
    fn clean(&self, raw: &[u8]) -> String {
        let mut s: String = String::from_utf8_lossy(raw)
            .trim_end_matches(['\r', '\n'])
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        for h in &self.hidden {
            if !h.is_empty() && s.contains(h.as_str()) {
                s = s.replace(h.as_str(), "<hidden>");
            }
        }
        if s.len() > 300 {
            s.truncate(300);
            s.push_str("...");
        }
        s
    }

    fn imap(&mut self) -> Result<Login, WireFailure> {
        let tcp = self.connect()?;
        self.start_tls(tcp)?;
        let greeting = self.read_line("the IMAP greeting")?;
        if !greeting.starts_with("* OK") {
            return Err(WireFailure::Unexpected {
                expected: "an IMAP greeting (* OK)".into(),
                answer: greeting,
            });
        }
        let sasl = self.hidden[1].clone();
        self.send(
            &format!("a1 AUTHENTICATE XOAUTH2 {sasl}"),
            &format!(
                "a1 AUTHENTICATE XOAUTH2 <token for {} hidden>",
                self.dial.user
            ),
        )?;
        let answer = self.imap_tagged("a1", "the answer to AUTHENTICATE")?;
        if !is_imap_ok("a1", &answer) {
            self.imap_logout();
            return Ok(Login::ImapRefused { answer });
        }
        self.send("a2 EXAMINE INBOX", "a2 EXAMINE INBOX")?;
        let mut messages = None;
        let answer = loop {
            let line = self.read_line("the answer to EXAMINE INBOX")?;
            if let Some(n) = line
                .strip_prefix("* ")
                .and_then(|r| r.strip_suffix(" EXISTS"))
                .and_then(|n| n.trim().parse().ok())
            {
                messages = Some(n);
            }
            if line.starts_with("a2 ") {
                break line;
            }
            if self.transcript.len() > MAX_UNTAGGED {
                return Err(WireFailure::Unexpected {
                    expected: "the end of the answer to EXAMINE INBOX".into(),
                    answer: line,
                });
            }
        };
        self.imap_logout();
        if is_imap_ok("a2", &answer) {
            Ok(Login::ImapOpened { messages })
        } else {
            Ok(Login::ImapNoInbox { answer })
        }
    }

    /// Reads to the tagged answer, answering a SASL continuation (the server's error
    /// details) with the empty response that ends the exchange.
    fn imap_tagged(&mut self, tag: &str, waiting_for: &str) -> Result<String, WireFailure> {
        for _ in 0..MAX_UNTAGGED {
            let line = self.read_line(waiting_for)?;
            if line.starts_with(&format!("{tag} ")) {
                return Ok(line);
            }
            if line.starts_with('+') {
                self.send("", "")?;
                continue;
            }
            if !line.starts_with("* ") {
                return Err(WireFailure::Unexpected {
                    expected: waiting_for.into(),
                    answer: line,
                });
            }
        }
        Err(WireFailure::Unexpected {
            expected: waiting_for.into(),
            answer: format!("more than {MAX_UNTAGGED} lines without it"),
        })
    }

    fn imap_logout(&mut self) {
        if self.send("a9 LOGOUT", "a9 LOGOUT").is_ok() {
            let _ = self.imap_tagged("a9", "the answer to LOGOUT");
        }
    }

    /// The greeting, EHLO and STARTTLS, then the TLS handshake.
    fn smtp_to_tls(&mut self) -> Result<(), WireFailure> {
        let tcp = self.connect()?;
        self.stream = Stream::Plain(tcp);
        let (code, greeting) = self.smtp_reply("the SMTP greeting")?;
        if code != 220 {
            return Err(WireFailure::Unexpected {
                expected: "an SMTP greeting (220)".into(),
                answer: greeting.join(" / "),
            });
        }
        let (code, lines) = self.smtp_command("EHLO extpy.invalid", "the answer to EHLO")?;
        if code != 250 {
            return Err(WireFailure::Unexpected {
                expected: "250 to EHLO".into(),
                answer: lines.join(" / "),
            });
        }
        if !lines
            .iter()
            .any(|l| l[4..].eq_ignore_ascii_case("STARTTLS"))
        {
            return Err(WireFailure::Unexpected {
                expected: "STARTTLS among the extensions (port 587 is submission with STARTTLS)"
                    .into(),
                answer: lines.join(" / "),
            });
        }
        let (code, lines) = self.smtp_command("STARTTLS", "the answer to STARTTLS")?;
        if code != 220 {
            return Err(WireFailure::Unexpected {
                expected: "220 to STARTTLS".into(),
                answer: lines.join(" / "),
            });
        }
        if !self.buf.is_empty() {
            return Err(WireFailure::Unexpected {
                expected: "nothing before the TLS handshake".into(),
                answer: self.clean(&self.buf.clone()),
            });
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::None) else {
            return Err(WireFailure::Unexpected {
                expected: "a plain connection before STARTTLS".into(),
                answer: String::new(),
            });
        };
        self.start_tls(tcp)
    }

    fn smtp(&mut self) -> Result<Login, WireFailure> {
        self.smtp_to_tls()?;
        let (code, lines) = self.smtp_command("EHLO extpy.invalid", "the answer to EHLO")?;
        if code != 250 {
            return Err(WireFailure::Unexpected {
                expected: "250 to EHLO after STARTTLS".into(),
                answer: lines.join(" / "),
            });
        }
        let xoauth2 = lines.iter().any(|l| {
            let ext = l[4..].to_ascii_uppercase();
            ext.starts_with("AUTH") && ext.split([' ', '=']).any(|m| m == "XOAUTH2")
        });
        if !xoauth2 {
            self.smtp_quit();
            return Err(WireFailure::Unexpected {
                expected: "AUTH XOAUTH2 among the extensions".into(),
                answer: lines.join(" / "),
            });
        }
        let sasl = self.hidden[1].clone();
        self.send(
            &format!("AUTH XOAUTH2 {sasl}"),
            &format!("AUTH XOAUTH2 <token for {} hidden>", self.dial.user),
        )?;
        let (mut code, mut lines) = self.smtp_reply("the answer to AUTH")?;
        if code == 334 {
            // The server's error details as a challenge: the empty response ends it.
            self.send("", "")?;
            (code, lines) = self.smtp_reply("the answer to AUTH")?;
        }
        self.smtp_quit();
        if code == 235 {
            Ok(Login::SmtpAccepted)
        } else {
            Ok(Login::SmtpRefused {
                answer: lines.join(" / "),
            })
        }
    }

    fn smtp_command(
        &mut self,
        line: &str,
        waiting_for: &str,
    ) -> Result<(u16, Vec<String>), WireFailure> {
        self.send(line, line)?;
        self.smtp_reply(waiting_for)
    }

    /// A reply: `NNN-…` lines then `NNN …`; every line's text kept (code included).
    fn smtp_reply(&mut self, waiting_for: &str) -> Result<(u16, Vec<String>), WireFailure> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(waiting_for)?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|_| matches!(line.as_bytes().get(3), None | Some(b' ' | b'-')));
            let Some(code) = code else {
                return Err(WireFailure::Unexpected {
                    expected: waiting_for.into(),
                    answer: line,
                });
            };
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(if line.len() < 4 {
                format!("{line} ")
            } else {
                line
            });
            if !more {
                return Ok((code, lines));
            }
            if lines.len() > MAX_REPLY_LINES {
                return Err(WireFailure::Unexpected {
                    expected: waiting_for.into(),
                    answer: format!("more than {MAX_REPLY_LINES} reply lines"),
                });
            }
        }
    }

    fn smtp_quit(&mut self) {
        if self.send("QUIT", "QUIT").is_ok() {
            let _ = self.smtp_reply("the answer to QUIT");
        }
    }
}

fn is_imap_ok(tag: &str, line: &str) -> bool {
    line.strip_prefix(tag)
        .map(str::trim_start)
        .is_some_and(|r| r.len() >= 2 && r[..2].eq_ignore_ascii_case("OK"))
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// The SASL XOAUTH2 initial response, base64.
fn xoauth2(user: &str, token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// extpy's TLS policy for a mail protocol: no ALPN (IMAP and SMTP do not negotiate one).
fn tls_config(verifier: Arc<dyn ServerCertVerifier>) -> Result<ClientConfig, String> {
    let mut config = trust::config_with_verifier(verifier).map_err(|e| e.to_string())?;
    config.alpn_protocols.clear();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_default_ports() {
        let e = Endpoint::parse("outlook.office365.com", 993).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("outlook.office365.com", 993));
        let e = Endpoint::parse("127.0.0.1:1143", 993).unwrap();
        assert_eq!(e.authority(), "127.0.0.1:1143");
        let e = Endpoint::parse("[::1]:25", 587).unwrap();
        assert_eq!((e.host.as_str(), e.authority()), ("::1", "[::1]:25".into()));
        for bad in ["", "host:0", "host:x", "a b", "[::1", "user@host"] {
            assert!(Endpoint::parse(bad, 993).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn xoauth2_is_the_documented_string() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(xoauth2("a@b.example", "tok"))
            .unwrap();
        assert_eq!(raw, b"user=a@b.example\x01auth=Bearer tok\x01\x01");
    }

    #[test]
    fn imap_status_lines() {
        assert!(is_imap_ok("a1", "a1 OK AUTHENTICATE completed."));
        assert!(is_imap_ok("a2", "a2 ok [READ-ONLY] EXAMINE completed"));
        assert!(!is_imap_ok("a1", "a1 NO AUTHENTICATE failed."));
        assert!(!is_imap_ok("a1", "a10 OK"));
    }
}

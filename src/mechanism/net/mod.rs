//! The one HTTP client: trust (OS store plus extra roots), proxies from the environment,
//! timeouts, retries with backoff, and resumable downloads hashed while they stream.

pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod proxy;
pub(crate) mod trust;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use url::Url;

use crate::base::report::{Progress, Reporter};
use crate::mechanism::digest::{Hasher, Sha256Digest};
use crate::mechanism::fsio::IoError;
pub(crate) use auth::{Logins, shown};
pub(crate) use error::{MAX_PAGE_BYTES, MAX_RETRY_AFTER, NetError, TlsProblem};
pub(crate) use proxy::{AutoConfig, ProxyConfig, ProxySource};
pub(crate) use trust::ExtraRoots;

/// Bytes an interrupted attempt must add to the partial file for the next one to count as a
/// resumption rather than a retry.
const RESUME_PROGRESS: u64 = 64 * 1024;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Settings of the HTTP client.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Roots trusted besides the operating system's.
    pub extra_roots: ExtraRoots,
    /// Connect timeout and the longest wait for any data.
    pub timeout: Duration,
    /// How many times a transient failure is retried.
    pub retries: u32,
    /// Addresses to use instead of DNS for some host names (`doctor --resolve`).
    pub resolve: Vec<(String, SocketAddr)>,
    /// The proxy of this run, the same for downloads and the doctor.
    pub proxy: ProxyConfig,
    /// Logins for private mirrors, each sent to its own origin only.
    pub(crate) logins: Logins,
}

/// A fetched page (Simple API document).
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL after redirects.
    pub url: Url,
    /// The `Content-Type` without parameters, lowercase.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The result of a download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The URL after redirects.
    pub url: Url,
    /// The digest of the whole file.
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// Bytes that came over the network in this call.
    pub transferred: u64,
    /// True when an earlier partial file was continued with a Range request.
    pub resumed: bool,
    /// Requests made.
    pub attempts: u32,
}

/// What one request saw, redirects followed one by one, body left unread.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The final status.
    pub status: StatusCode,
    /// Every `Location` followed, in order.
    pub redirects: Vec<Url>,
    /// The URL that gave the final status.
    pub url: Url,
    /// The announced length of the final body.
    pub content_length: Option<u64>,
    /// The server's clock (`Date` header) when it answered.
    pub date: Option<SystemTime>,
}

/// The answer to a form POST, whatever its status: an OAuth token endpoint says why it
/// refused in the body of a 400 or 401.
#[derive(Debug, Clone)]
pub struct FormAnswer {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type` without parameters, lowercase.
    pub content_type: String,
    /// The body (at most [`MAX_FORM_ANSWER_BYTES`]).
    pub body: Vec<u8>,
    /// The server's clock (`Date` header) when it answered.
    pub date: Option<SystemTime>,
}

/// The largest answer to a form POST that extpy reads.
pub(crate) const MAX_FORM_ANSWER_BYTES: u64 = 1024 * 1024;

/// Redirects followed by a probe, as many as the client follows.
const MAX_REDIRECTS: usize = 10;

/// HTTP/2 flow-control windows: how much a server may send on one file, and on the whole
/// connection, before extpy acknowledges. A window caps throughput at window / round trip:
/// hyper's 2 MiB per stream held one large file to 56 Mbit/s at a 300 ms round trip
/// (measured on a 150 ms one way, 100 Mbit/s link: 3.3 s against 2.3 s over HTTP/1.1).
/// 4 MiB per file and 8 MiB in all carry 110 and 220 Mbit/s at 300 ms (2.3 s there).
/// Larger is not better: 16 MiB let the server queue so much ahead of a late index page on
/// the one connection that a 5 Mbit/s fetch took one round trip longer. (An adaptive window
/// starts at 64 KiB and grows over round trips: too slow for files of a few MiB.)
const H2_STREAM_WINDOW: u32 = 4 << 20;
const H2_CONNECTION_WINDOW: u32 = 8 << 20;

/// The HTTP client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    /// The same client without automatic redirects, built on the first probe.
    probe_http: Arc<OnceLock<reqwest::blocking::Client>>,
    options: NetOptions,
    reporter: Reporter,
}

enum Outcome<T> {
    Done(T),
    Retry {
        error: NetError,
        after: Option<Duration>,
    },
    /// The connection broke after the file grew: continue at once with a Range request.
    /// This is not a failed try: a link that drops every few MiB still gets through.
    Resume(NetError),
    Fail(NetError),
}

impl Client {
    /// Builds the client; this is the only place HTTP policy is set.
    pub fn new(options: NetOptions, reporter: Reporter) -> Result<Self, NetError> {
        let http = build_http(&options, reqwest::redirect::Policy::limited(MAX_REDIRECTS))?;
        Ok(Self {
            http,
            probe_http: Arc::new(OnceLock::new()),
            options,
            reporter,
        })
    }

    /// One GET whose body is not read: status, redirects, length and the server's clock.
    /// Redirects are followed here, one by one, so that each hop is on record.
    pub fn probe(&self, url: &Url) -> Result<Probe, NetError> {
        let http = match self.probe_http.get() {
            Some(h) => h.clone(),
            None => {
                let h = build_http(&self.options, reqwest::redirect::Policy::none())?;
                self.probe_http.get_or_init(|| h).clone()
            }
        };
        let mut current = url.clone();
        let mut redirects = Vec::new();
        loop {
            let resp = self
                .options
                .logins
                .authorize(http.get(current.clone()), &current)
                .send()
                .map_err(|e| self.send_error(&current, &e).0)?;
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            if resp.status().is_redirection()
                && let Some(location) = location
            {
                let next = current.join(location).map_err(|e| NetError::Redirect {
                    url: current.clone(),
                    detail: format!("bad Location {location:?}: {e}"),
                })?;
                if redirects.len() >= MAX_REDIRECTS {
                    return Err(NetError::Redirect {
                        url: url.clone(),
                        detail: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                redirects.push(next.clone());
                current = next;
                continue;
            }
            let date = resp
                .headers()
                .get(header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok());
            return Ok(Probe {
                status: resp.status(),
                redirects,
                url: current,
                content_length: resp.content_length(),
                date,
            });
        }
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded`, retrying only failures that
    /// got no answer; any status is an answer. The fields may hold secrets: they travel in
    /// the body only, and no error here shows them.
    pub fn post_form(&self, url: &Url, fields: &[(&str, &str)]) -> Result<FormAnswer, NetError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.retrying(url, || self.form_attempt(url, &body))
    }

    fn form_attempt(&self, url: &Url, body: &str) -> Outcome<FormAnswer> {
        let req = self
            .options
            .logins
            .authorize(self.http.post(url.clone()), url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(body.to_string());
        match req.send() {
            Ok(resp) => self.read_answer(url, resp),
            Err(e) => self.send_failure(url, &e),
        }
    }

    /// An answer of any status, its body read up to [`MAX_FORM_ANSWER_BYTES`].
    fn read_answer(&self, url: &Url, resp: reqwest::blocking::Response) -> Outcome<FormAnswer> {
        let status = resp.status();
        let content_type = media_type(resp.headers());
        let date = resp
            .headers()
            .get(header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let mut body = Vec::new();
        match resp.take(MAX_FORM_ANSWER_BYTES).read_to_end(&mut body) {
            Ok(_) => Outcome::Done(FormAnswer {
                status,
                content_type,
                body,
                date,
            }),
            Err(e) => Outcome::Retry {
                error: self.read_failure(url, &e, body.len() as u64, None),
                after: None,
            },
        }
    }

    /// GETs `url` with `Authorization: Bearer <token>` and no other login, retrying only
    /// failures that got no answer; any status is an answer (a web API says why it refused
    /// in the body). The token travels in the header only, and no error here shows it.
    pub fn get_bearer(&self, url: &Url, token: &str) -> Result<FormAnswer, NetError> {
        self.retrying(url, || {
            let req = self
                .http
                .get(url.clone())
                .bearer_auth(token)
                .header(header::ACCEPT, "application/json");
            match req.send() {
                Ok(resp) => self.read_answer(url, resp),
                Err(e) => self.send_failure(url, &e),
            }
        })
    }

    /// GETs a page, retrying transient failures.
    pub fn get_page(&self, url: &Url, accept: &str) -> Result<Page, NetError> {
        self.retrying(url, || self.page_attempt(url, accept))
    }

    fn page_attempt(&self, url: &Url, accept: &str) -> Outcome<Page> {
        let req = self
            .options
            .logins
            .authorize(self.http.get(url.clone()), url)
            .header(header::ACCEPT, accept);
        let resp = match req.send() {
            Ok(r) => r,
            Err(e) => return self.send_failure(url, &e),
        };
        if let Some(o) = self.status_outcome(url, &resp) {
            return o;
        }
        let final_url = resp.url().clone();
        let content_type = media_type(resp.headers());
        let mut body = Vec::new();
        match resp.take(MAX_PAGE_BYTES + 1).read_to_end(&mut body) {
            Ok(_) if body.len() as u64 > MAX_PAGE_BYTES => {
                Outcome::Fail(NetError::TooLarge { url: url.clone() })
            }
            Ok(_) => Outcome::Done(Page {
                url: final_url,
                content_type,
                body,
            }),
            Err(e) => Outcome::Retry {
                error: self.read_failure(url, &e, body.len() as u64, None),
                after: None,
            },
        }
    }

    /// Downloads `url` into `part`, continuing a partial file with a Range request when the
    /// server allows it, hashing as the bytes arrive.
    /// `limit` is the most bytes the file may have (its pinned size, or a cap), and
    /// `pinned` says which: a response that exceeds it is stopped at once.
    pub fn download(
        &self,
        url: &Url,
        part: &Path,
        bar: &dyn Progress,
        (limit, pinned): (u64, bool),
    ) -> Result<Downloaded, NetError> {
        let mut validator: Option<String> = None;
        let mut attempts = 0;
        let mut transferred = 0;
        // The longest the partial file has been: only real growth past it counts as progress,
        // so a server that ignores Range, or cuts every answer after a few bytes, still runs
        // out of retries.
        let part_len = || fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut longest = part_len();
        let mut result = self.retrying(url, || {
            attempts += 1;
            match self.download_attempt(
                url,
                part,
                &mut validator,
                &mut transferred,
                bar,
                (limit, pinned),
            ) {
                Outcome::Retry { error, .. } if part_len() >= longest + RESUME_PROGRESS => {
                    longest = part_len();
                    Outcome::Resume(error)
                }
                other => other,
            }
        })?;
        result.attempts = attempts;
        result.transferred = transferred;
        Ok(result)
    }

    fn download_attempt(
        &self,
        url: &Url,
        part: &Path,
        validator: &mut Option<String>,
        transferred: &mut u64,
        bar: &dyn Progress,
        (limit, pinned): (u64, bool),
    ) -> Outcome<Downloaded> {
        let too_large = |announced| {
            let _ = fs::remove_file(part);
            Outcome::Fail(NetError::Oversized {
                url: url.clone(),
                limit,
                pinned,
                announced,
            })
        };
        let io_err = |source| NetError::Io(IoError::new(part, "cannot write", source));
        let existing = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut req = self
            .options
            .logins
            .authorize(self.http.get(url.clone()), url);
        if existing > 0 {
            req = req.header(header::RANGE, format!("bytes={existing}-"));
            if let Some(v) = validator.as_deref() {
                req = req.header(header::IF_RANGE, v);
            }
        }
        let resp = match req.send() {
            Ok(r) => r,
            Err(e) => return self.send_failure(url, &e),
        };
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && existing > 0 {
            // The partial file is no prefix of this resource: start over at once.
            if let Err(e) = fs::remove_file(part) {
                return Outcome::Fail(io_err(e));
            }
            return Outcome::Retry {
                error: NetError::Status {
                    url: url.clone(),
                    status: resp.status(),
                },
                after: Some(Duration::ZERO),
            };
        }
        if let Some(o) = self.status_outcome(url, &resp) {
            return o;
        }
        let resumed = existing > 0
            && resp.status() == StatusCode::PARTIAL_CONTENT
            && content_range_start(resp.headers()) == Some(existing);
        if resp.status() == StatusCode::PARTIAL_CONTENT && !resumed {
            // A range we did not ask for: drop what we have and ask for the whole file.
            let _ = fs::remove_file(part);
            return Outcome::Retry {
                error: NetError::Status {
                    url: url.clone(),
                    status: resp.status(),
                },
                after: Some(Duration::ZERO),
            };
        }
        *validator = strong_validator(resp.headers());
        let final_url = resp.url().clone();

        let mut hasher = Hasher::new();
        let mut file = if resumed {
            match File::open(part).and_then(|f| hasher.consume(f)) {
                Ok(_) => {}
                Err(e) => return Outcome::Fail(io_err(e)),
            }
            match OpenOptions::new().append(true).open(part) {
                Ok(f) => f,
                Err(e) => return Outcome::Fail(io_err(e)),
            }
        } else {
            match File::create(part) {
                Ok(f) => f,
                Err(e) => return Outcome::Fail(io_err(e)),
            }
        };
        let offset = hasher.len();
        let expected = resp.content_length().map(|l| l + offset);
        // Announced more than allowed: nothing is read. Never read beyond the announced
        // length either.
        if expected.is_some_and(|e| e > limit) {
            return too_large(true);
        }
        let cap = expected.unwrap_or(limit);
        bar.start(expected.unwrap_or(0), offset);

        let mut resp = resp;
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = file.flush();
                    return Outcome::Retry {
                        error: self.read_failure(url, &e, hasher.len(), expected),
                        after: None,
                    };
                }
            };
            if hasher.len() + n as u64 > cap {
                return too_large(false);
            }
            if let Err(e) = file.write_all(&buf[..n]) {
                return Outcome::Fail(io_err(e));
            }
            hasher.update(&buf[..n]);
            *transferred += n as u64;
            bar.advance(n as u64);
        }
        if let Err(e) = file.flush().and_then(|_| file.sync_all()) {
            return Outcome::Fail(io_err(e));
        }
        if let Some(expected) = expected
            && hasher.len() != expected
        {
            return Outcome::Retry {
                error: NetError::Incomplete {
                    url: url.clone(),
                    got: hasher.len(),
                    expected: Some(expected),
                },
                after: None,
            };
        }
        let (sha256, size) = hasher.finish();
        Outcome::Done(Downloaded {
            url: final_url,
            sha256,
            size,
            transferred: 0,
            resumed,
            attempts: 0,
        })
    }

    fn retrying<T>(
        &self,
        url: &Url,
        mut attempt: impl FnMut() -> Outcome<T>,
    ) -> Result<T, NetError> {
        let mut tries: u32 = 0;
        loop {
            tries += 1;
            match attempt() {
                Outcome::Done(v) => return Ok(v),
                Outcome::Fail(e) => return Err(e),
                Outcome::Resume(error) => {
                    self.reporter
                        .detail(format!("{error}; resuming where it stopped"));
                    tries = 0;
                }
                Outcome::Retry { error, after } => {
                    if tries > self.options.retries {
                        return Err(if tries > 1 {
                            NetError::GaveUp {
                                attempts: tries,
                                last: Box::new(error),
                            }
                        } else {
                            error
                        });
                    }
                    let wait = after.unwrap_or_else(|| backoff(tries));
                    if wait > MAX_RETRY_AFTER {
                        let status = match &error {
                            NetError::Status { status, .. } => *status,
                            _ => StatusCode::TOO_MANY_REQUESTS,
                        };
                        return Err(NetError::RetryAfterTooLong {
                            url: url.clone(),
                            status,
                            after: wait,
                        });
                    }
                    if !wait.is_zero() {
                        self.reporter.warn(format!(
                            "{error}; retrying in {:.1}s (attempt {} of {})",
                            wait.as_secs_f64(),
                            tries + 1,
                            self.options.retries + 1
                        ));
                        std::thread::sleep(wait);
                    }
                }
            }
        }
    }

    fn status_outcome<T>(
        &self,
        url: &Url,
        resp: &reqwest::blocking::Response,
    ) -> Option<Outcome<T>> {
        let status = resp.status();
        if status.is_success() {
            return None;
        }
        // The client follows http(s) redirects itself; one it handed back points elsewhere.
        if status.is_redirection()
            && let Some(to) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
            && !matches!(to.scheme(), "http" | "https")
        {
            return Some(Outcome::Fail(NetError::RedirectScheme {
                from: resp.url().clone(),
                to: to.to_string(),
            }));
        }
        let error = NetError::Status {
            url: resp.url().clone(),
            status,
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let after = retry_after(resp.headers(), SystemTime::now());
            if let Some(a) = after
                && a > MAX_RETRY_AFTER
            {
                return Some(Outcome::Fail(NetError::RetryAfterTooLong {
                    url: url.clone(),
                    status,
                    after: a,
                }));
            }
            return Some(Outcome::Retry { error, after });
        }
        Some(Outcome::Fail(error))
    }

    fn send_failure<T>(&self, url: &Url, err: &reqwest::Error) -> Outcome<T> {
        match self.send_error(url, err) {
            (error, true) => Outcome::Retry { error, after: None },
            (error, false) => Outcome::Fail(error),
        }
    }

    /// A request that got no answer, in plain words, and whether trying again may help.
    fn send_error(&self, url: &Url, err: &reqwest::Error) -> (NetError, bool) {
        let host = url.host_str().unwrap_or("").to_string();
        if let Some(problem) = trust::find_tls_problem(err) {
            let error = NetError::Tls {
                url: url.clone(),
                host,
                problem,
            };
            return (error, false);
        }
        if err.is_timeout() {
            return (self.timeout_error(url), true);
        }
        if err.is_redirect() {
            let error = NetError::Redirect {
                url: url.clone(),
                detail: chain(err),
            };
            return (error, false);
        }
        if err.is_dns() {
            let error = NetError::Resolve {
                url: url.clone(),
                host,
                detail: chain(err),
                auto_proxy: auto_proxy_note(&self.options.proxy, url),
            };
            return (error, false);
        }
        let error = NetError::Connect {
            url: url.clone(),
            host,
            detail: chain(err),
            proxy: proxy_note(&self.options.proxy, url),
            auto_proxy: auto_proxy_note(&self.options.proxy, url),
        };
        (error, true)
    }

    fn read_failure(
        &self,
        url: &Url,
        err: &io::Error,
        got: u64,
        expected: Option<u64>,
    ) -> NetError {
        let timed_out = err.kind() == io::ErrorKind::TimedOut
            || err
                .get_ref()
                .and_then(|e| e.downcast_ref::<reqwest::Error>())
                .is_some_and(|e| e.is_timeout());
        if timed_out {
            self.timeout_error(url)
        } else {
            NetError::Incomplete {
                url: url.clone(),
                got,
                expected,
            }
        }
    }

    fn timeout_error(&self, url: &Url) -> NetError {
        NetError::Timeout {
            url: url.clone(),
            secs: self.options.timeout.as_secs().max(1),
            auto_proxy: auto_proxy_note(&self.options.proxy, url),
        }
    }
}

/// The HTTP client: one connection pool per origin, HTTP/2 where the server offers it
/// (ALPN), keep-alive otherwise.
///
/// Parallel requests start at once, each on a pooled connection that is free, else a new
/// one. The client cannot know whether a server speaks HTTP/2 before a connection to it
/// exists, and holding the others back until the first request is answered would delay
/// every other file by that answer's round trips on an HTTP/1.1 server (measured on the
/// shaped link: the wheels of an unlocked fetch started two round trips later, 0.2 s on a
/// 50 ms link). So the opening burst opens up to `--jobs` connections, and every later
/// request reuses them: multiplexed over HTTP/2, kept alive over HTTP/1.1, never one
/// connection per artifact.
fn build_http(
    options: &NetOptions,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::blocking::Client, NetError> {
    let tls = trust::client_config(&options.extra_roots)?;
    let mut builder = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("extpy/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.timeout)
        .timeout(options.timeout)
        .redirect(redirects)
        .http2_initial_stream_window_size(H2_STREAM_WINDOW)
        .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .no_zstd();
    // The one proxy resolution (environment, else the Windows settings), never reqwest's own.
    let proxy = options.proxy.clone();
    builder = builder.proxy(reqwest::Proxy::custom(move |url| {
        proxy.for_url(url).map(|c| c.value)
    }));
    for (host, addr) in &options.resolve {
        builder = builder.resolve(host, *addr);
    }
    builder.build().map_err(|e| NetError::Client(chain(&e)))
}

/// Exponential backoff: 250 ms, 500 ms, 1 s, … capped at 8 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(BACKOFF_MAX)
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Content-Type` without parameters, lowercase; empty when absent.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let range = v.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

fn strong_validator(headers: &HeaderMap) -> Option<String> {
    if let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok())
        && !etag.starts_with("W/")
    {
        return Some(etag.to_string());
    }
    headers
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An error and its causes on one line, without repeats.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

fn proxy_note(proxy: &ProxyConfig, url: &Url) -> String {
    match proxy.for_url(url) {
        Some(choice) => format!(
            "\n  note: the connection goes through the proxy {} (from {}); check it, or list the host in NO_PROXY",
            auth::shown_text(&choice.value),
            choice.origin()
        ),
        None => String::new(),
    }
}

/// The PAC or WPAD advice for a failed connection to `url` that went direct, else empty.
fn auto_proxy_note(proxy: &ProxyConfig, url: &Url) -> String {
    match proxy.auto_config() {
        Some(auto) if proxy.for_url(url).is_none() => auto.advice(url),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(30), BACKOFF_MAX);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_secs(3))
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(20));
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(20)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn content_range_and_validators() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_static("bytes 100-199/200"),
        );
        assert_eq!(content_range_start(&h), Some(100));
        h.insert(header::ETAG, HeaderValue::from_static("W/\"weak\""));
        assert_eq!(strong_validator(&h), None);
        h.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Tue, 01 Jan 2030 00:00:00 GMT"),
        );
        assert_eq!(
            strong_validator(&h).as_deref(),
            Some("Tue, 01 Jan 2030 00:00:00 GMT")
        );
        h.insert(header::ETAG, HeaderValue::from_static("\"strong\""));
        assert_eq!(strong_validator(&h).as_deref(), Some("\"strong\""));
    }

    #[test]
    fn no_proxy_matching() {
        let bypasses = |host: &str, no_proxy: &str| {
            let env = |name: &str| match name {
                "HTTPS_PROXY" => Some("http://proxy:3128".to_string()),
                "NO_PROXY" => Some(no_proxy.to_string()),
                _ => None,
            };
            ProxyConfig::resolve_from(&env, &proxy::WindowsSettings::default()).bypasses(host)
        };
        assert!(bypasses("files.example.org", "example.org"));
        assert!(bypasses("files.example.org", ".example.org"));
        assert!(bypasses("example.org", "*.example.org"));
        assert!(bypasses("127.0.0.1", "localhost, 127.0.0.1"));
        assert!(bypasses("anything", "*"));
        assert!(!bypasses("badexample.org", "example.org"));
        assert!(!bypasses("example.org", ""));
    }
}

//! A local HTTPS mirror on 127.0.0.1: a python download area and a Simple API index, that
//! can be told to misbehave on purpose. Hand-written HTTP/1.1 so every fault is exact;
//! [`Mirror::start_http2`] serves the same routes and faults in HTTP/2 (mirror/http2.rs).

mod http2;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{normalize_name, sha256_hex};

/// One way to misbehave, used for one request to a path.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooMany(u64),
    /// The right length, one byte flipped.
    WrongBytes,
    /// Announce the full length, send this many bytes, close cleanly.
    Truncate(usize),
    /// Announce the full length, send this many bytes, reset the connection.
    Reset(usize),
    /// Wait this long before answering.
    Stall(Duration),
    /// Redirect (302) to this absolute URL.
    Redirect(String),
    /// Serve the whole file even when a Range is asked for.
    IgnoreRange,
    /// Send this many bytes of the body, then go silent (the connection stays open).
    StallAfter(usize, Duration),
    /// An endless body of zeros (announcing this Content-Length, or none), until the client
    /// hangs up.
    Endless(Option<u64>),
}

/// A request as the mirror saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
}

struct IndexFile {
    filename: String,
    path: String,
    sha256: String,
    requires_python: Option<String>,
    yanked: Option<String>,
    /// Served at `<path>.metadata` and announced (PEP 658/714) when set.
    metadata: Option<Vec<u8>>,
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Vec<u8>>>,
    index: Mutex<BTreeMap<String, Vec<IndexFile>>>,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    log: Mutex<Vec<Logged>>,
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    body_bytes: AtomicU64,
    drop_every: AtomicUsize,
    html_only: AtomicBool,
    hide_hashes: AtomicBool,
    hash_override: Mutex<HashMap<String, String>>,
    metadata_hash_override: Mutex<HashMap<String, String>>,
    vulnerabilities: Mutex<HashMap<(String, String), Vec<serde_json::Value>>>,
    chaos: Mutex<Chaos>,
}

/// Random faults for a soak: `percent` of the requests misbehave, each kind counted.
#[derive(Default)]
struct Chaos {
    percent: u64,
    rng: u64,
    injected: BTreeMap<&'static str, u64>,
}

impl Chaos {
    /// xorshift64*: deterministic for a seed, no dependency.
    fn next(&mut self) -> u64 {
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick(&mut self) -> Option<Fault> {
        if self.percent == 0 || self.next() % 100 >= self.percent {
            return None;
        }
        // Where a body is cut: within the first bytes (so that pages are cut too), or
        // anywhere in the first 4 MiB of a file.
        let n = match self.next() % 2 {
            0 => self.next() % 256,
            _ => self.next() % (4 << 20),
        } as usize;
        let stall = Duration::from_millis(2_500);
        let (kind, fault) = match self.next() % 8 {
            0 => ("reset", Fault::Reset(n)),
            1 => ("truncate", Fault::Truncate(n)),
            2 => ("status-500", Fault::Status(500)),
            3 => ("status-503", Fault::Status(503)),
            4 => ("status-502", Fault::Status(502)),
            5 => ("stall", Fault::Stall(stall)),
            6 => ("stall-after", Fault::StallAfter(n, stall)),
            _ => ("wrong-bytes", Fault::WrongBytes),
        };
        *self.injected.entry(kind).or_default() += 1;
        Some(fault)
    }
}

/// The running mirror.
pub struct Mirror {
    pub addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
}

impl Mirror {
    /// An HTTPS mirror presenting `tls` (`None`: plain HTTP).
    pub fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        Self::start_on(0, tls)
    }

    /// An HTTPS mirror presenting `tls` that offers ALPN `h2` and serves HTTP/2 to the
    /// clients that take it, HTTP/1.1 to the others (hyper's servers), on `port` (0: any
    /// free one). Same routes, state and faults as [`Mirror::start`]; over HTTP/2 a
    /// `Reset` or `StallAfter` resets the stream (RST_STREAM), a `Truncate` and
    /// [`Mirror::drop_every`] drop the whole connection.
    pub fn start_http2(port: u16, tls: &rustls::ServerConfig) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || http2::serve(listener, Arc::new(tls), st, sp));
        Self {
            addr,
            scheme: "https",
            state,
            stop,
        }
    }

    /// Like [`Mirror::start`], on a chosen port (0: any free one).
    pub fn start_on(port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let stop = Arc::new(AtomicBool::new(false));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                st.connections.fetch_add(1, Ordering::SeqCst);
                let (st2, tls2) = (st.clone(), tls.clone());
                std::thread::spawn(move || serve_connection(&st2, tls2, stream));
            }
        });
        Self {
            addr,
            scheme,
            state,
            stop,
        }
    }

    /// `https://127.0.0.1:<port>` (`http://` for a plain mirror).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.addr.port())
    }

    /// The same server under the name `localhost` (another host to the client).
    pub fn localhost_url(&self) -> String {
        format!("{}://localhost:{}", self.scheme, self.addr.port())
    }

    /// Base of the python download area.
    pub fn python_mirror(&self) -> String {
        format!("{}/python/", self.url())
    }

    /// Base of the Simple API.
    pub fn index_url(&self) -> String {
        format!("{}/simple/", self.url())
    }

    /// Serves `body` at `path`.
    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), body);
    }

    /// Adds an embeddable zip at `/python/<version>/<file>`.
    pub fn add_python(&self, version: &str, file: &str, body: Vec<u8>) {
        self.put(&format!("/python/{version}/{file}"), body);
    }

    /// Adds a wheel at `/files/<file>` and lists it in the index.
    /// Publishes the SPDX document python.org puts beside a release file
    /// (`<file>.spdx.json`), naming `sha256` as the file's checksum (true or not).
    pub fn add_python_spdx(&self, version: &str, file: &str, sha256: &str) {
        let doc = serde_json::json!({
            "SPDXID": "SPDXRef-DOCUMENT",
            "spdxVersion": "SPDX-2.3",
            "name": "CPython SBOM",
            "dataLicense": "CC0-1.0",
            "documentNamespace": format!("https://www.python.org/ftp/python/{version}/{file}.spdx.json"),
            "packages": [
                {
                    "SPDXID": "SPDXRef-PACKAGE-OpenSSL",
                    "name": "OpenSSL",
                    "versionInfo": "3.0.16",
                    "checksums": [{ "algorithm": "SHA256", "checksumValue": "0".repeat(64) }],
                },
                {
                    "SPDXID": "SPDXRef-PACKAGE-cpython",
                    "name": "CPython",
                    "versionInfo": version,
                    "licenseConcluded": "PSF-2.0",
                    "packageFileName": file,
                    "primaryPackagePurpose": "SOURCE",
                    "checksums": [{ "algorithm": "SHA256", "checksumValue": sha256 }],
                }
            ],
            "relationships": [],
        });
        self.put(
            &format!("/python/{version}/{file}.spdx.json"),
            serde_json::to_vec_pretty(&doc).unwrap(),
        );
    }

    /// Serves `bundle` as the Sigstore bundle python.org publishes beside a release file
    /// (`/python/<version>/<file>.sigstore`).
    pub fn add_python_sigstore(&self, version: &str, file: &str, bundle: &str) {
        self.put(
            &format!("/python/{version}/{file}.sigstore"),
            bundle.as_bytes().to_vec(),
        );
    }

    pub fn add_wheel(&self, file: &str, body: Vec<u8>) {
        let project = normalize_name(file.split('-').next().unwrap_or(file));
        let path = format!("/files/{file}");
        let sha256 = sha256_hex(&body);
        self.put(&path, body);
        self.state
            .index
            .lock()
            .unwrap()
            .entry(project)
            .or_default()
            .push(IndexFile {
                filename: file.to_string(),
                path,
                sha256,
                requires_python: None,
                yanked: None,
                metadata: None,
            });
    }

    fn edit_file(&self, file: &str, f: impl FnOnce(&mut IndexFile)) {
        let mut index = self.state.index.lock().unwrap();
        let entry = index
            .values_mut()
            .flatten()
            .find(|e| e.filename == file)
            .unwrap_or_else(|| panic!("{file} is not on the mirror"));
        f(entry);
    }

    /// Also serves the wheel's METADATA as `<file>.metadata` and announces it (PEP 658).
    pub fn serve_metadata(&self, file: &str) {
        let body = self.state.routes.lock().unwrap()[&format!("/files/{file}")].clone();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a wheel");
        let name = (0..zip.len())
            .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
            .find(|n| n.ends_with(".dist-info/METADATA"))
            .expect("METADATA");
        let mut meta = Vec::new();
        zip.by_name(&name).unwrap().read_to_end(&mut meta).unwrap();
        self.serve_metadata_bytes(file, meta);
    }

    /// Serves `meta` as the metadata file of `file` (to lie on purpose).
    pub fn serve_metadata_bytes(&self, file: &str, meta: Vec<u8>) {
        self.put(&format!("/files/{file}.metadata"), meta.clone());
        self.edit_file(file, |e| e.metadata = Some(meta));
    }

    /// Announces `sha256` for the metadata file of `file` instead of the real one.
    pub fn publish_metadata_hash(&self, file: &str, sha256: &str) {
        self.state
            .metadata_hash_override
            .lock()
            .unwrap()
            .insert(file.to_string(), sha256.to_string());
    }

    /// Marks `file` yanked with `reason`.
    pub fn yank(&self, file: &str, reason: &str) {
        self.edit_file(file, |e| e.yanked = Some(reason.to_string()));
    }

    /// Publishes `Requires-Python` for `file`.
    pub fn requires_python(&self, file: &str, spec: &str) {
        self.edit_file(file, |e| e.requires_python = Some(spec.to_string()));
    }

    /// Adds a vulnerability record to the JSON API of `project` `version`.
    pub fn add_vulnerability(&self, project: &str, version: &str, record: serde_json::Value) {
        self.state
            .vulnerabilities
            .lock()
            .unwrap()
            .entry((normalize_name(project), version.to_string()))
            .or_default()
            .push(record);
    }

    /// Makes the next request to `path` misbehave (faults queue up in order).
    pub fn fault(&self, path: &str, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Serve only PEP 503 HTML, whatever the client asks.
    pub fn html_only(&self) {
        self.state.html_only.store(true, Ordering::SeqCst);
    }

    /// Publish no hashes in the index.
    pub fn hide_hashes(&self) {
        self.state.hide_hashes.store(true, Ordering::SeqCst);
    }

    /// Publish `sha256` for `file` instead of the real one.
    pub fn publish_hash(&self, file: &str, sha256: &str) {
        self.state
            .hash_override
            .lock()
            .unwrap()
            .insert(file.to_string(), sha256.to_string());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// A flaky link: every connection is closed after `bytes` bytes of response body.
    pub fn drop_every(&self, bytes: usize) {
        self.state.drop_every.store(bytes, Ordering::SeqCst);
    }

    /// Bytes of response bodies written to the network so far (pages and files).
    pub fn body_bytes_sent(&self) -> u64 {
        self.state.body_bytes.load(Ordering::SeqCst)
    }

    /// From now on, `percent` of the requests without a queued fault get a random one
    /// (reset, truncation, 5xx, stall, wrong bytes), drawn from `seed`. A soak sets this;
    /// `GET /_soak/chaos/PERCENT` changes it and `GET /_soak/faults` answers the counts.
    pub fn chaos(&self, percent: u64, seed: u64) {
        let mut c = self.state.chaos.lock().unwrap();
        c.percent = percent.min(100);
        c.rng = seed;
    }

    /// Random faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.state.chaos.lock().unwrap().injected.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.state.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn serve_connection(state: &State, tls: Option<Arc<rustls::ServerConfig>>, tcp: TcpStream) {
    let raw = tcp.try_clone().expect("clone");
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let stream: Box<dyn Stream> = match tls {
        Some(cfg) => {
            let Ok(mut conn) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            let mut tcp = tcp;
            while conn.is_handshaking() {
                if conn.complete_io(&mut tcp).is_err() {
                    return;
                }
            }
            state.handshakes.fetch_add(1, Ordering::SeqCst);
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
        None => Box::new(tcp),
    };
    let mut reader = BufReader::new(stream);
    let mut budget = match state.drop_every.load(Ordering::SeqCst) {
        0 => usize::MAX,
        n => n,
    };
    while let Some(req) = read_request(&mut reader) {
        if let Some(control) = req.path.strip_prefix("/_soak/") {
            if !soak_control(state, control, reader.get_mut()) {
                return;
            }
            continue;
        }
        let fault = log_and_pick_fault(state, &req);
        if !respond(state, &req, fault, reader.get_mut(), &raw, &mut budget) {
            return;
        }
    }
}

/// Logs `req` and takes the fault it gets: the next one queued for its path, or a random
/// one under chaos.
fn log_and_pick_fault(state: &State, req: &Logged) -> Option<Fault> {
    state.log.lock().unwrap().push(req.clone());
    state
        .faults
        .lock()
        .unwrap()
        .get_mut(&req.path)
        .and_then(VecDeque::pop_front)
        .or_else(|| state.chaos.lock().unwrap().pick())
}

/// The answer to `/_soak/faults` (the injected faults as JSON) and `/_soak/chaos/PERCENT`
/// (which also sets the percentage).
fn soak_document(state: &State, control: &str) -> String {
    let mut c = state.chaos.lock().unwrap();
    if let Some(p) = control
        .strip_prefix("chaos/")
        .and_then(|p| p.parse::<u64>().ok())
    {
        c.percent = p.min(100);
    }
    serde_json::json!({ "percent": c.percent, "injected": c.injected }).to_string()
}

fn soak_control(state: &State, control: &str, w: &mut dyn Write) -> bool {
    let body = soak_document(state, control);
    head(
        w,
        200,
        &[("Content-Type", "application/json".into())],
        body.len(),
    )
    .and_then(|_| w.write_all(body.as_bytes()))
    .and_then(|_| w.flush())
    .is_ok()
}

fn read_request(reader: &mut BufReader<Box<dyn Stream>>) -> Option<Logged> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let version = parts.next().unwrap_or("HTTP/1.0").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Logged {
        method,
        path,
        headers,
        version,
    })
}

fn head(
    w: &mut dyn Write,
    status: u16,
    headers: &[(&str, String)],
    len: usize,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    };
    let mut s = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    w.write_all(s.as_bytes())
}

/// What the mirror answers to one request, whatever the protocol it is written in.
enum Reply {
    /// A status and headers, no body.
    Empty(u16, Vec<(&'static str, String)>),
    /// An endless body of zeros (announcing this length, or none).
    Endless(Option<u64>),
    /// A body, cut as `cut` says (`Truncate`, `Reset` or `StallAfter`; `None`: all of it).
    Body {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        cut: Option<Fault>,
    },
}

/// The answer to `req` under `fault` (a `Stall` is the caller's to wait out first), with
/// `budget` bytes of body left before the connection drops (`drop_every`).
fn plan(state: &State, req: &Logged, fault: Option<Fault>, budget: &mut usize) -> Reply {
    let mut fault = fault;
    match &fault {
        Some(Fault::Status(code)) => return Reply::Empty(*code, vec![]),
        Some(Fault::TooMany(secs)) => {
            return Reply::Empty(429, vec![("Retry-After", secs.to_string())]);
        }
        Some(Fault::Endless(announce)) => return Reply::Endless(*announce),
        Some(Fault::Redirect(to)) => return Reply::Empty(302, vec![("Location", to.clone())]),
        _ => {}
    }
    let Some((mut body, content_type)) = lookup(state, req) else {
        return Reply::Empty(404, vec![]);
    };
    if matches!(fault, Some(Fault::WrongBytes)) && !body.is_empty() {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let etag = format!("\"{}\"", &sha256_hex(&body)[..16]);
    let mut headers = vec![
        ("Content-Type", content_type),
        ("ETag", etag.clone()),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    let mut status = 200;
    let mut start = 0;
    let range = req
        .headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'));
    let if_range_ok = req.headers.get("if-range").is_none_or(|v| *v == etag);
    if let Some(from) = range.and_then(|r| r.parse::<usize>().ok())
        && !matches!(fault, Some(Fault::IgnoreRange))
        && if_range_ok
    {
        if from >= body.len() {
            return Reply::Empty(
                416,
                vec![("Content-Range", format!("bytes */{}", body.len()))],
            );
        }
        status = 206;
        start = from;
        headers.push((
            "Content-Range",
            format!("bytes {from}-{}/{}", body.len() - 1, body.len()),
        ));
    }
    body.drain(..start);
    if body.len() > *budget && fault.is_none() {
        fault = Some(Fault::Truncate(*budget));
    }
    *budget = budget.saturating_sub(body.len());
    let cut = fault.filter(|f| {
        matches!(
            f,
            Fault::Truncate(_) | Fault::Reset(_) | Fault::StallAfter(..)
        )
    });
    let sent = match &cut {
        Some(Fault::Truncate(n) | Fault::Reset(n) | Fault::StallAfter(n, _)) => {
            (*n).min(body.len())
        }
        _ => body.len(),
    };
    state.body_bytes.fetch_add(sent as u64, Ordering::SeqCst);
    Reply::Body {
        status,
        headers,
        body,
        cut,
    }
}

/// Writes one response in HTTP/1.1; false closes the connection.
fn respond(
    state: &State,
    req: &Logged,
    fault: Option<Fault>,
    w: &mut dyn Write,
    raw: &TcpStream,
    budget: &mut usize,
) -> bool {
    let mut fault = fault;
    if let Some(Fault::Stall(d)) = fault {
        std::thread::sleep(d);
        fault = None;
    }
    let (status, headers, body, cut) = match plan(state, req, fault, budget) {
        Reply::Empty(status, headers) => {
            return head(w, status, &headers, 0).and_then(|_| w.flush()).is_ok();
        }
        Reply::Endless(announce) => {
            let length = announce
                .map(|n| format!("Content-Length: {n}\r\n"))
                .unwrap_or_default();
            let head = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n{length}\r\n");
            if w.write_all(head.as_bytes()).is_err() {
                return false;
            }
            let zeros = vec![0u8; 64 * 1024];
            // Bounded so that a client that never stops cannot keep the test running.
            for _ in 0..ENDLESS_CHUNKS {
                if w.write_all(&zeros).is_err() {
                    break;
                }
            }
            return false;
        }
        Reply::Body {
            status,
            headers,
            body,
            cut,
        } => (status, headers, body, cut),
    };
    if head(w, status, &headers, body.len()).is_err() {
        return false;
    }
    match cut {
        Some(Fault::StallAfter(n, d)) => {
            let _ = w.write_all(&body[..n.min(body.len())]);
            let _ = w.flush();
            std::thread::sleep(d);
            false
        }
        Some(Fault::Truncate(n)) => {
            let _ = w.write_all(&body[..n.min(body.len())]);
            let _ = w.flush();
            let _ = raw.shutdown(std::net::Shutdown::Both);
            false
        }
        Some(Fault::Reset(n)) => {
            let _ = w.write_all(&body[..n.min(body.len())]);
            let _ = w.flush();
            std::thread::sleep(Duration::from_millis(50));
            let _ = socket2::SockRef::from(raw).set_linger(Some(Duration::ZERO));
            let _ = raw.shutdown(std::net::Shutdown::Both);
            false
        }
        _ => w.write_all(&body).and_then(|_| w.flush()).is_ok(),
    }
}

/// 64 KiB chunks an endless body sends at most (4 GiB).
const ENDLESS_CHUNKS: usize = 64 * 1024;

fn lookup(state: &State, req: &Logged) -> Option<(Vec<u8>, String)> {
    // A page put at a Simple API path replaces the generated one (to serve garbage).
    if req.path.starts_with("/simple/")
        && let Some(body) = state.routes.lock().unwrap().get(&req.path)
    {
        return Some((body.clone(), "application/vnd.pypi.simple.v1+json".into()));
    }
    if let Some(project) = req
        .path
        .strip_prefix("/simple/")
        .map(|p| p.trim_end_matches('/'))
    {
        let index = state.index.lock().unwrap();
        let files = index.get(project)?;
        let overrides = state.hash_override.lock().unwrap();
        let hide = state.hide_hashes.load(Ordering::SeqCst);
        let hash_of = |f: &IndexFile| {
            overrides
                .get(&f.filename)
                .cloned()
                .unwrap_or_else(|| f.sha256.clone())
        };
        let meta_overrides = state.metadata_hash_override.lock().unwrap();
        let meta_hash_of = |f: &IndexFile, m: &[u8]| {
            meta_overrides
                .get(&f.filename)
                .cloned()
                .unwrap_or_else(|| sha256_hex(m))
        };
        let wants_json = req
            .headers
            .get("accept")
            .is_some_and(|a| a.contains("vnd.pypi.simple.v1+json"));
        if wants_json && !state.html_only.load(Ordering::SeqCst) {
            let files: Vec<serde_json::Value> = files
                .iter()
                .map(|f| {
                    let hashes = if hide { serde_json::json!({}) } else { serde_json::json!({ "sha256": hash_of(f) }) };
                    let mut doc = serde_json::json!({ "filename": f.filename, "url": format!("../..{}", f.path), "hashes": hashes });
                    if let Some(rp) = &f.requires_python {
                        doc["requires-python"] = serde_json::json!(rp);
                    }
                    if let Some(y) = &f.yanked {
                        doc["yanked"] = if y.is_empty() { serde_json::json!(true) } else { serde_json::json!(y) };
                    }
                    if let Some(m) = &f.metadata {
                        doc["core-metadata"] = serde_json::json!({ "sha256": meta_hash_of(f, m) });
                    }
                    doc
                })
                .collect();
            let doc = serde_json::json!({ "meta": { "api-version": "1.1" }, "name": project, "files": files });
            return Some((
                serde_json::to_vec(&doc).unwrap(),
                "application/vnd.pypi.simple.v1+json".into(),
            ));
        }
        let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
        for f in files {
            let frag = if hide {
                String::new()
            } else {
                format!("#sha256={}", hash_of(f))
            };
            let mut attrs = String::new();
            if let Some(rp) = &f.requires_python {
                attrs.push_str(&format!(
                    " data-requires-python=\"{}\"",
                    rp.replace('<', "&lt;").replace('>', "&gt;")
                ));
            }
            if let Some(y) = &f.yanked {
                attrs.push_str(&format!(" data-yanked=\"{y}\""));
            }
            if let Some(m) = &f.metadata {
                attrs.push_str(&format!(
                    " data-core-metadata=\"sha256={}\"",
                    meta_hash_of(f, m)
                ));
            }
            html.push_str(&format!(
                "<a href=\"{}{frag}\"{attrs}>{}</a><br/>\n",
                f.path, f.filename
            ));
        }
        html.push_str("</body></html>\n");
        return Some((html.into_bytes(), "text/html".into()));
    }
    if let Some(rest) = req.path.strip_prefix("/pypi/") {
        let mut parts = rest.trim_end_matches('/').split('/');
        let (Some(project), Some(version), Some("json")) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let project = normalize_name(project);
        let index = state.index.lock().unwrap();
        let files: Vec<&IndexFile> = index
            .get(&project)?
            .iter()
            .filter(|f| f.filename.split('-').nth(1) == Some(version))
            .collect();
        if files.is_empty() {
            return None;
        }
        let urls: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "filename": f.filename,
                    "digests": { "sha256": f.sha256 },
                    "yanked": f.yanked.is_some(),
                    "yanked_reason": f.yanked.clone().filter(|y| !y.is_empty()),
                })
            })
            .collect();
        let vulns = state
            .vulnerabilities
            .lock()
            .unwrap()
            .get(&(project.clone(), version.to_string()))
            .cloned()
            .unwrap_or_default();
        let doc = serde_json::json!({
            "info": { "name": project, "version": version },
            "urls": urls,
            "vulnerabilities": vulns,
        });
        return Some((serde_json::to_vec(&doc).unwrap(), "application/json".into()));
    }
    let routes = state.routes.lock().unwrap();
    if req.path.starts_with("/python/") && req.path.ends_with('/') {
        return autoindex(&routes, &req.path);
    }
    routes
        .get(&req.path)
        .map(|b| (b.clone(), "application/octet-stream".into()))
}

/// A folder of the python download area listed as nginx's autoindex does (python.org's
/// download area is listed this way): one link per file and subfolder.
fn autoindex(routes: &HashMap<String, Vec<u8>>, folder: &str) -> Option<(Vec<u8>, String)> {
    let children: std::collections::BTreeSet<String> = routes
        .keys()
        .filter_map(|k| k.strip_prefix(folder))
        .map(|rest| match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_string(),
        })
        .collect();
    if children.is_empty() {
        return None;
    }
    let mut html = format!(
        "<html>\r\n<head><title>Index of {folder}</title></head>\r\n<body>\r\n<h1>Index of {folder}</h1><hr><pre><a href=\"../\">../</a>\r\n"
    );
    for c in children {
        html.push_str(&format!(
            "<a href=\"{c}\">{c}</a>{:>width$}08-Apr-2025 21:20       -\r\n",
            "",
            width = 51usize.saturating_sub(c.len())
        ));
    }
    html.push_str("</pre><hr></body>\r\n</html>\r\n");
    Some((html.into_bytes(), "text/html".into()))
}

//! The mirror over hyper's servers: HTTP/2 for the clients that negotiate ALPN `h2`,
//! HTTP/1.1 for the others. Routes, faults and bookkeeping are the hand-written server's
//! ([`plan`]); only the writing differs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Notify;

use super::{ENDLESS_CHUNKS, Fault, Logged, Reply, State, log_and_pick_fault, plan, soak_document};

type Body = Channel<Bytes, std::io::Error>;

/// Bytes per DATA frame the body task hands to hyper.
const CHUNK: usize = 64 * 1024;

/// One TLS connection: what is left of its `drop_every` budget, and the signal that drops it.
struct Conn {
    budget: Mutex<usize>,
    kill: Notify,
}

/// Accepts and serves until `stop` is set (and one more connection wakes the loop).
pub(super) fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            if stop.load(Ordering::SeqCst) {
                break;
            }
            state.connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, state) = (acceptor.clone(), state.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                state.handshakes.fetch_add(1, Ordering::SeqCst);
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let budget = match state.drop_every.load(Ordering::SeqCst) {
                    0 => usize::MAX,
                    n => n,
                };
                let conn = Arc::new(Conn {
                    budget: Mutex::new(budget),
                    kill: Notify::new(),
                });
                let service = {
                    let conn = conn.clone();
                    hyper::service::service_fn(move |req| handle(state.clone(), conn.clone(), req))
                };
                let io = TokioIo::new(tls);
                let killed = conn.kill.notified();
                if h2 {
                    let serving = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service);
                    first_of(serving, killed).await;
                } else {
                    let serving =
                        hyper::server::conn::http1::Builder::new().serve_connection(io, service);
                    first_of(serving, killed).await;
                }
                // Dropping the connection here closes the socket with no GOAWAY: a drop.
            });
        }
    });
}

/// Waits for whichever of `a` and `b` ends first.
async fn first_of(a: impl Future, b: impl Future) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

async fn handle(
    state: Arc<State>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let logged = Logged {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_ascii_lowercase(), v)
            })
            .collect(),
        version: format!("{:?}", req.version()),
    };
    if let Some(control) = logged.path.strip_prefix("/_soak/") {
        let body = soak_document(&state, control).into_bytes();
        let headers = vec![("Content-Type", "application/json".to_string())];
        return Ok(body_response(200, &headers, body, None, conn));
    }
    let mut fault = log_and_pick_fault(&state, &logged);
    if let Some(Fault::Stall(d)) = fault {
        tokio::time::sleep(d).await;
        fault = None;
    }
    let reply = plan(&state, &logged, fault, &mut conn.budget.lock().unwrap());
    Ok(match reply {
        Reply::Empty(status, headers) => body_response(status, &headers, Vec::new(), None, conn),
        Reply::Endless(announce) => {
            let (mut tx, body) = Channel::new(2);
            tokio::spawn(async move {
                let zeros = Bytes::from(vec![0u8; CHUNK]);
                // Bounded so that a client that never stops cannot keep the test running.
                for _ in 0..ENDLESS_CHUNKS {
                    if tx.send_data(zeros.clone()).await.is_err() {
                        break;
                    }
                }
            });
            let mut response = Response::builder().status(200);
            if let Some(n) = announce {
                response = response.header("Content-Length", n);
            }
            response.body(body).expect("a valid response")
        }
        Reply::Body {
            status,
            headers,
            body,
            cut,
        } => body_response(status, &headers, body, cut, conn),
    })
}

/// A response announcing all of `body`, sent as `cut` says: `Reset` and `StallAfter` reset
/// the stream after their bytes, `Truncate` drops the connection.
fn body_response(
    status: u16,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
    cut: Option<Fault>,
    conn: Arc<Conn>,
) -> Response<Body> {
    let mut response = Response::builder()
        .status(status)
        .header("Content-Length", body.len());
    for (k, v) in headers {
        response = response.header(*k, v);
    }
    let (tx, channel) = Channel::new(4);
    tokio::spawn(send_body(tx, Bytes::from(body), cut, conn));
    response.body(channel).expect("a valid response")
}

async fn send_body(
    mut tx: Sender<Bytes, std::io::Error>,
    body: Bytes,
    cut: Option<Fault>,
    conn: Arc<Conn>,
) {
    let n = match &cut {
        Some(Fault::Truncate(n) | Fault::Reset(n) | Fault::StallAfter(n, _)) => {
            (*n).min(body.len())
        }
        _ => body.len(),
    };
    let mut at = 0;
    while at < n {
        let end = (at + CHUNK).min(n);
        if tx.send_data(body.slice(at..end)).await.is_err() {
            return;
        }
        at = end;
    }
    let Some(cut) = cut else {
        return;
    };
    // Let hyper write what was sent before the cut, as the HTTP/1.1 server flushes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    match cut {
        Fault::StallAfter(_, d) => {
            tokio::time::sleep(d).await;
            tx.abort(std::io::Error::other("stalled"));
        }
        Fault::Truncate(_) => conn.kill.notify_one(),
        _ => tx.abort(std::io::Error::other("reset on purpose")),
    }
}

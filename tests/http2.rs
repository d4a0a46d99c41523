//! Connections per host: HTTP/2 where the mirror offers it, keep-alive over HTTP/1.1, at
//! most one connection per job either way (never one per artifact), and the breaks of an
//! HTTP/2 link (a reset stream, a dropped connection) resumed with a Range.

use support::mirror::Fault;
use support::{WheelSpec, World};

/// Runs a fetch that must verify `n` artifacts.
fn fetch(w: &World, args: &[&str], n: usize) {
    let mut all = vec!["fetch"];
    all.extend(args);
    let out = w.run(&all).ok();
    let verified = format!("{n} artifacts verified");
    assert!(out.stdout.contains(&verified), "{}", out.stdout);
}

fn versions(w: &World) -> Vec<String> {
    w.mirror.requests().into_iter().map(|q| q.version).collect()
}

/// A 3 MiB embeddable and a 2 MiB wheel beside a small one, from a mirror offering HTTP/2.
fn large_http2_world() -> World {
    let (embed, wheels) = support::fixtures::large_set();
    World::with_artifacts_http2(embed, wheels)
}

#[test]
fn a_cold_fetch_over_http2_speaks_http2_on_one_connection_per_job_at_most() {
    // Three index pages and four files on two jobs: the opening burst opens at most two
    // connections, and every later request is carried on them.
    let w = World::http2();
    fetch(&w, &["--jobs", "2"], 4);
    let versions = versions(&w);
    assert_eq!(versions.len(), 7, "three index pages and four files");
    assert!(
        versions.iter().all(|v| v == "HTTP/2.0"),
        "every request in HTTP/2: {versions:?}"
    );
    let handshakes = w.mirror.handshakes();
    assert!(
        (1..=2).contains(&handshakes),
        "{handshakes} TLS handshakes for 7 requests on 2 jobs"
    );
    assert_eq!(w.mirror.connections(), handshakes);
}

#[test]
fn one_job_carries_a_whole_fetch_over_http2_on_one_connection() {
    let w = World::http2();
    fetch(&w, &["--jobs", "1"], 4);
    assert_eq!(versions(&w), vec!["HTTP/2.0"; 7]);
    assert_eq!(w.mirror.handshakes(), 1, "one TLS handshake for the host");
}

#[test]
fn over_http1_connections_are_kept_alive_one_per_job_at_most() {
    let specs: Vec<WheelSpec> = (0..8)
        .map(|i| WheelSpec::pure(&format!("pkg{i}"), "1.0"))
        .collect();
    let w = World::with_wheels(&specs);
    let jobs = 3;
    fetch(&w, &["--jobs", &jobs.to_string()], 9);
    let versions = versions(&w);
    assert_eq!(versions.len(), 17, "eight index pages and nine files");
    assert!(
        versions.iter().all(|v| v == "HTTP/1.1"),
        "a mirror without ALPN h2 is spoken to in HTTP/1.1: {versions:?}"
    );
    let handshakes = w.mirror.handshakes();
    assert!(
        (1..=jobs).contains(&handshakes),
        "{handshakes} TLS handshakes for 17 requests on {jobs} jobs: kept alive, not one per artifact"
    );
    assert_eq!(w.mirror.connections(), handshakes);
}

#[test]
fn a_reset_http2_stream_resumes_with_a_range_on_the_same_connection() {
    let w = large_http2_world();
    let path = w.embed_path();
    let cut = 1 << 20;
    w.mirror.fault(&path, Fault::Reset(cut));
    let r = w.run(&["fetch", "--json", "--jobs", "1"]).ok();
    assert_eq!(r.json()["artifacts"][0]["resumed"], true, "{}", r.stdout);
    w.assert_all_cached();
    let reqs = w.mirror.requests_to(&path);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let from: usize = reqs[1].headers["range"]
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .expect("a Range request");
    assert!(
        from > 0 && from <= cut,
        "continues where the stream stopped: {from}"
    );
    assert!(versions(&w).iter().all(|v| v == "HTTP/2.0"));
    assert_eq!(
        w.mirror.handshakes(),
        1,
        "a reset stream leaves the connection to the others"
    );
}

#[test]
fn a_dropped_http2_connection_resumes_with_a_range_on_a_new_one() {
    let w = large_http2_world();
    let path = w.embed_path();
    w.mirror.fault(&path, Fault::Truncate(1 << 20));
    let r = w.run(&["fetch", "--json"]).ok();
    assert_eq!(r.json()["artifacts"][0]["resumed"], true, "{}", r.stdout);
    w.assert_all_cached();
    let reqs = w.mirror.requests_to(&path);
    assert!(
        reqs[1..].iter().all(|q| q.headers.contains_key("range")),
        "{reqs:?}"
    );
    assert!(versions(&w).iter().all(|v| v == "HTTP/2.0"));
    assert!(
        w.mirror.handshakes() >= 2,
        "the drop took the connection: {}",
        w.mirror.handshakes()
    );
}

#[test]
fn an_http2_link_that_drops_every_512_kib_completes_without_fetching_twice() {
    let w = large_http2_world();
    w.mirror.drop_every(512 * 1024);
    let r = w.run(&["fetch", "--json", "-v"]).ok();
    assert_eq!(r.json()["artifacts"].as_array().unwrap().len(), 3);
    w.assert_all_cached();
    w.assert_sent_within_1_2x(&r.stderr);
    assert!(w.mirror.handshakes() >= 10, "5 MiB in 512 KiB pieces");
}

#[test]
fn a_stalled_http2_stream_is_resumed_with_a_range_on_the_same_connection() {
    let w = large_http2_world();
    let path = w.embed_path();
    let stalled_at = 256 * 1024;
    w.mirror.fault(
        &path,
        Fault::StallAfter(stalled_at, std::time::Duration::from_secs(4)),
    );
    let r = w
        .run(&["fetch", "--json", "--timeout", "2", "-v", "--jobs", "1"])
        .ok();
    assert_eq!(r.json()["artifacts"][0]["resumed"], true, "{}", r.stderr);
    w.assert_all_cached();
    let reqs = w.mirror.requests_to(&path);
    assert_eq!(
        reqs.last().and_then(|q| q.headers.get("range")),
        Some(&format!("bytes={stalled_at}-")),
        "continues where the stream stalled: {reqs:?}"
    );
    assert!(versions(&w).iter().all(|v| v == "HTTP/2.0"));
    assert_eq!(
        w.mirror.handshakes(),
        1,
        "the resume keeps the connection of the stalled stream"
    );
}

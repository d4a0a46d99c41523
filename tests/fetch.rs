//! `extpy fetch` against the local HTTPS mirror, behaving and misbehaving.

use std::time::Duration;

use support::mirror::Fault;
use support::{PY, World, extpy, run};

fn wheel_path(w: &World, i: usize) -> String {
    format!("/files/{}", w.wheels[i].0)
}

#[test]
fn fetches_everything_then_serves_from_cache_without_connecting() {
    let w = World::new();
    let first = w.run(&["fetch"]).ok();
    assert!(
        first.stdout.contains("4 artifacts verified"),
        "{}",
        first.stdout
    );
    assert_eq!(
        first.stdout.matches("fetched ").count(),
        4,
        "{}",
        first.stdout
    );
    for (_, bytes) in &w.wheels {
        assert!(w.blob(bytes).is_file());
    }
    assert!(w.blob(&w.embed).is_file());

    let connections = w.mirror.connections();
    let second = w.run(&["fetch"]).ok();
    assert_eq!(
        second.stdout.matches("cached ").count(),
        4,
        "{}",
        second.stdout
    );
    assert_eq!(
        w.mirror.connections(),
        connections,
        "a warm cache must open no connection"
    );
}

#[test]
fn json_document_lists_every_artifact() {
    let w = World::new();
    let doc = w.run(&["fetch", "--json"]).ok().json();
    assert_eq!(doc["command"], "fetch");
    assert_eq!(doc["ok"], true);
    let arts = doc["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 4);
    assert_eq!(arts[0]["kind"], "embeddable");
    assert_eq!(arts[0]["from"], "network");
    assert_eq!(arts[0]["size"], w.embed.len());
    assert_eq!(arts[0]["sha256"], support::sha256_hex(&w.embed));
    assert!(arts[0]["url"].as_str().unwrap().ends_with(&w.embed_path()));
    assert_eq!(arts[1]["kind"], "wheel");
    assert_eq!(
        doc["downloaded_bytes"],
        arts.iter()
            .map(|a| a["size"].as_u64().unwrap())
            .sum::<u64>()
    );
    let again = w.run(&["fetch", "--json"]).ok().json();
    assert!(
        again["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["from"] == "cache" && a["url"].is_null())
    );
}

#[test]
fn wrong_bytes_are_a_hash_mismatch_and_never_cached() {
    let w = World::new();
    let path = wheel_path(&w, 1);
    w.mirror.fault(&path, Fault::WrongBytes);
    let r = w.run(&["fetch"]).code(3);
    let expected = support::sha256_hex(&w.wheels[1].1);
    assert!(
        r.stderr.contains("do not match the pinned sha256"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("expected: {expected}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("actual:"), "{}", r.stderr);
    assert!(r.stderr.contains(&path), "names the URL: {}", r.stderr);
    assert!(
        !w.blob(&w.wheels[1].1).exists(),
        "a mismatching download must not enter the cache"
    );
    assert!(
        w.blob(&w.wheels[0].1).exists(),
        "the good artifacts are still cached"
    );
    // The next run gets the right bytes.
    w.run(&["fetch"]).ok();
    assert!(w.blob(&w.wheels[1].1).exists());
}

#[test]
fn truncated_body_is_resumed_with_a_range_request() {
    let w = World::new();
    let path = w.embed_path();
    w.mirror.fault(&path, Fault::Truncate(w.embed.len() / 2));
    let r = w.run(&["fetch", "--json"]).ok();
    let doc = r.json();
    assert_eq!(doc["artifacts"][0]["resumed"], true, "{}", r.stdout);
    let reqs = w.mirror.requests_to(&path);
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].headers.get("range").map(String::as_str),
        Some(format!("bytes={}-", w.embed.len() / 2).as_str())
    );
    assert!(
        reqs[1].headers.contains_key("if-range"),
        "resume is conditional on the same file"
    );
    assert!(w.blob(&w.embed).is_file());
}

#[test]
fn connection_reset_mid_body_then_success() {
    let w = World::new();
    let path = wheel_path(&w, 0);
    w.mirror.fault(&path, Fault::Reset(100));
    let r = w.run(&["fetch"]).ok();
    assert!(r.stderr.contains("retrying"), "{}", r.stderr);
    assert_eq!(w.mirror.requests_to(&path).len(), 2);
    assert!(w.blob(&w.wheels[0].1).is_file());
}

#[test]
fn server_that_ignores_range_restarts_from_zero() {
    let w = World::new();
    let path = w.embed_path();
    w.mirror.fault(&path, Fault::Truncate(300));
    w.mirror.fault(&path, Fault::IgnoreRange);
    let doc = w.run(&["fetch", "--json"]).ok().json();
    assert_eq!(doc["artifacts"][0]["resumed"], false);
    assert!(w.blob(&w.embed).is_file());
}

#[test]
fn truncation_every_time_gives_up_cleanly() {
    let w = World::new();
    let path = wheel_path(&w, 2);
    for _ in 0..3 {
        w.mirror.fault(&path, Fault::Truncate(10));
    }
    let r = w.run(&["fetch", "--retries", "2"]).code(4);
    let len = w.wheels[2].1.len();
    assert!(
        r.stderr
            .contains(&format!("connection closed after 30 of {len} bytes")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("gave up after 3 attempts"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&w.wheels[2].0),
        "names the artifact: {}",
        r.stderr
    );
    assert!(!w.blob(&w.wheels[2].1).exists());
}

#[test]
fn server_error_then_success() {
    let w = World::new();
    let path = wheel_path(&w, 0);
    w.mirror.fault(&path, Fault::Status(500));
    let r = w.run(&["fetch"]).ok();
    assert!(
        r.stderr
            .contains("answered 500 Internal Server Error; retrying"),
        "{}",
        r.stderr
    );
    assert_eq!(w.mirror.requests_to(&path).len(), 2);
}

#[test]
fn not_found_names_artifact_and_manifest_line() {
    let w = World::new();
    let path = wheel_path(&w, 1);
    w.mirror.fault(&path, Fault::Status(404));
    let r = w.run(&["fetch"]).code(4);
    let manifest = w.manifest.display().to_string();
    // wheels[1].file is on line 12 of the generated manifest
    assert!(
        r.stderr
            .contains(&format!("{} ({manifest}:12)", w.wheels[1].0)),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("answered 404 Not Found"), "{}", r.stderr);
    assert_eq!(w.mirror.requests_to(&path).len(), 1, "a 404 is not retried");
}

#[test]
fn missing_project_on_the_index_says_so() {
    let w = World::new();
    let project_page = "/simple/gamma/";
    w.mirror.fault(project_page, Fault::Status(404));
    let r = w.run(&["fetch"]).code(4);
    assert!(
        r.stderr.contains("has no project \"gamma\""),
        "{}",
        r.stderr
    );
}

#[test]
fn too_many_requests_honours_retry_after() {
    let w = World::new();
    let path = wheel_path(&w, 0);
    w.mirror.fault(&path, Fault::TooMany(1));
    let r = w.run(&["fetch"]).ok();
    assert!(
        r.stderr
            .contains("answered 429 Too Many Requests; retrying in 1.0s"),
        "{}",
        r.stderr
    );
    assert_eq!(w.mirror.requests_to(&path).len(), 2);
}

#[test]
fn retry_after_longer_than_we_wait_fails_with_advice() {
    let w = World::new();
    let path = wheel_path(&w, 0);
    w.mirror.fault(&path, Fault::TooMany(3600));
    let r = w.run(&["fetch"]).code(4);
    assert!(
        r.stderr.contains("asked to retry after 3600s"),
        "{}",
        r.stderr
    );
}

#[test]
fn slow_server_times_out() {
    let w = World::new();
    let path = wheel_path(&w, 0);
    w.mirror.fault(&path, Fault::Stall(Duration::from_secs(4)));
    let r = w
        .run(&["fetch", "--timeout", "1", "--retries", "0"])
        .code(4);
    assert!(
        r.stderr.contains("sent nothing for 1s (timed out)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--timeout"), "{}", r.stderr);
    assert!(!w.blob(&w.wheels[0].1).exists());
}

#[test]
fn redirect_to_another_host_is_followed_and_reported() {
    let w = World::new();
    let path = wheel_path(&w, 0);
    w.mirror.fault(
        &path,
        Fault::Redirect(format!("{}{path}", w.mirror.localhost_url())),
    );
    let doc = w.run(&["fetch", "--json"]).ok().json();
    let url = doc["artifacts"][1]["url"].as_str().unwrap();
    assert!(url.starts_with("https://localhost:"), "{url}");
}

#[test]
fn untrusted_certificate_is_explained_and_ca_cert_fixes_it() {
    let w = World::new();
    let mut c = extpy();
    c.args(["fetch", "--manifest"])
        .arg(&w.manifest)
        .arg("--cache-dir")
        .arg(&w.cache);
    c.args([
        "--python-mirror",
        &w.mirror.python_mirror(),
        "--index-url",
        &w.mirror.index_url(),
    ]);
    let r = run(c).code(4);
    assert!(
        r.stderr.contains("TLS with 127.0.0.1 failed"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("certificate authority this machine does not trust"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--ca-cert FILE"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("rustls"),
        "no raw library error chain: {}",
        r.stderr
    );
    assert!(!w.cache.join("sha256").exists() || support::tree(&w.cache.join("sha256")).is_empty());
    w.run(&["fetch"]).ok();
}

#[test]
fn ca_cert_from_the_environment() {
    let w = World::new();
    // As Windows writes a certificate file: the PEM, a DER `.cer` (the default export),
    // and the PEM through Windows PowerShell 5.1 `>` (UTF-16 with a BOM, CRLF).
    let pem = std::fs::read_to_string(&w.ca_pem).unwrap();
    let cer = w.path("root.cer");
    std::fs::write(&cer, w.ca.der.as_ref()).unwrap();
    let ps51 = w.path("root-ps51.pem");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        pem.replace('\n', "\r\n")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    std::fs::write(&ps51, utf16).unwrap();
    for (i, file) in [&w.ca_pem, &cer, &ps51].into_iter().enumerate() {
        let mut c = extpy();
        c.args(["fetch", "--manifest"])
            .arg(&w.manifest)
            .arg("--cache-dir")
            .arg(w.path(&format!("cache-{i}")));
        c.env("EXTPY_PYTHON_MIRROR", w.mirror.python_mirror())
            .env("PIP_INDEX_URL", w.mirror.index_url());
        c.env("SSL_CERT_FILE", file);
        let r = run(c).ok();
        assert!(r.stdout.contains("4 artifacts verified"), "{}", r.stdout);
    }
}

#[test]
fn index_hash_disagreeing_with_pin_is_refused() {
    let w = World::new();
    let other = "0".repeat(64);
    w.mirror.publish_hash(&w.wheels[0].0, &other);
    let r = w.run(&["fetch"]).code(3);
    assert!(
        r.stderr.contains(&format!(
            "the index publishes sha256 {other} for {}",
            w.wheels[0].0
        )),
        "{}",
        r.stderr
    );
    assert!(
        w.mirror.requests_to(&wheel_path(&w, 0)).is_empty(),
        "the file is not even downloaded"
    );
}

#[test]
fn html_index_and_index_without_hashes_work() {
    let w = World::new();
    w.mirror.html_only();
    w.mirror.hide_hashes();
    w.run(&["fetch"]).ok();
    let page = w.mirror.requests_to("/simple/alpha/");
    assert!(page[0].headers["accept"].contains("application/vnd.pypi.simple.v1+json"));
}

#[test]
fn explicit_url_in_manifest_wins() {
    let w = World::new();
    w.mirror.put("/elsewhere/alpha.whl", w.wheels[0].1.clone());
    let text = std::fs::read_to_string(&w.manifest).unwrap();
    let sha = support::sha256_hex(&w.wheels[0].1);
    let text = text.replace(
        &format!("sha256: {sha}\n"),
        &format!(
            "sha256: {sha}\n    url: {}/elsewhere/alpha.whl\n",
            w.mirror.url()
        ),
    );
    std::fs::write(&w.manifest, text).unwrap();
    w.run(&["fetch"]).ok();
    assert_eq!(w.mirror.requests_to("/elsewhere/alpha.whl").len(), 1);
    assert!(
        w.mirror.requests_to("/simple/alpha/").is_empty(),
        "no index lookup for an explicit url"
    );
}

#[test]
fn two_fetches_at_once_download_each_file_once() {
    let w = World::new();
    for i in 0..3 {
        w.mirror
            .fault(&wheel_path(&w, i), Fault::Stall(Duration::from_millis(300)));
    }
    let spawn = || {
        let mut c = w.cmd();
        c.arg("fetch");
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    for i in 0..3 {
        assert_eq!(
            w.mirror.requests_to(&wheel_path(&w, i)).len(),
            1,
            "wheel {i} downloaded once"
        );
    }
    assert_eq!(w.mirror.requests_to(&w.embed_path()).len(), 1);
}

#[test]
fn corrupt_cache_entry_is_detected_and_downloaded_again() {
    let w = World::new();
    w.run(&["fetch"]).ok();
    let blob = w.blob(&w.wheels[0].1);
    std::fs::write(&blob, b"bit rot").unwrap();
    let r = w.run(&["fetch"]).ok();
    // The warning names the artifact, the cached file, that it was corrupt and what happens.
    let warning = r
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("warning: {}: the cached copy ", w.wheels[0].0)))
        .unwrap_or_else(|| panic!("no warning for the corrupt copy:\n{}", r.stderr));
    assert!(warning.contains(&blob.display().to_string()), "{warning}");
    assert!(
        warning.contains("was corrupt") && warning.ends_with("it is downloaded again"),
        "{warning}"
    );
    assert_eq!(std::fs::read(&blob).unwrap(), w.wheels[0].1);
    assert_eq!(w.mirror.requests_to(&wheel_path(&w, 0)).len(), 2);
}

#[test]
fn offline_names_missing_artifacts_and_never_connects() {
    let w = World::new();
    let r = w.run(&["fetch", "--offline"]).code(4);
    assert!(
        r.stderr.contains("4 of 4 artifacts are not in the cache"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "python-{PY}-embed-amd64.zip ({}:7)",
            w.manifest.display()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(w.mirror.connections(), 0);
    w.run(&["fetch"]).ok();
    let before = w.mirror.connections();
    w.run(&["fetch", "--offline"]).ok();
    assert_eq!(w.mirror.connections(), before);
}

#[test]
fn bad_ca_cert_file_is_an_input_error() {
    let w = World::new();
    let missing = w.path("nope.pem");
    let r = w
        .run(&["fetch", "--ca-cert", missing.to_str().unwrap()])
        .code(2);
    assert!(
        r.stderr.contains("nope.pem") && r.stderr.contains("cannot read it"),
        "{}",
        r.stderr
    );
}

#[test]
fn invalid_manifest_is_an_input_error_with_location() {
    let w = World::new();
    let text = std::fs::read_to_string(&w.manifest)
        .unwrap()
        .replace("platform: win_amd64", "platform: win64");
    std::fs::write(&w.manifest, text).unwrap();
    let r = w.run(&["fetch"]).code(2);
    assert!(
        r.stderr.contains(&format!("{}:5:", w.manifest.display())),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("unknown platform \"win64\""),
        "{}",
        r.stderr
    );
    assert_eq!(w.mirror.connections(), 0);
}

#[test]
fn bad_index_url_is_an_input_error() {
    let w = World::new();
    let r = w
        .run(&["fetch", "--index-url", "ftp://mirror.example/simple"])
        .code(2);
    assert!(
        r.stderr
            .contains("--index-url \"ftp://mirror.example/simple\" is not a usable http(s) URL"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_interrupted_run_is_resumed_by_the_next_one() {
    let w = World::new();
    // What a killed run leaves: the first half of the file in the cache's partial folder.
    let sha = support::sha256_hex(&w.embed);
    let partial = w.cache.join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    let half = w.embed.len() / 2;
    std::fs::write(partial.join(format!("{sha}.part")), &w.embed[..half]).unwrap();
    let doc = w.run(&["fetch", "--json"]).ok().json();
    assert_eq!(doc["artifacts"][0]["resumed"], true);
    let reqs = w.mirror.requests_to(&w.embed_path());
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].headers.get("range").map(String::as_str),
        Some(format!("bytes={half}-").as_str())
    );
    assert_eq!(std::fs::read(w.blob(&w.embed)).unwrap(), w.embed);
    assert!(!partial.join(format!("{sha}.part")).exists());
}

#[test]
fn a_stale_partial_file_is_discarded_and_downloaded_again() {
    let w = World::new();
    let sha = support::sha256_hex(&w.embed);
    let partial = w.cache.join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(
        partial.join(format!("{sha}.part")),
        b"not the start of this file",
    )
    .unwrap();
    let r = w.run(&["fetch", "--json"]).ok();
    assert!(
        r.stderr
            .contains("the resumed download did not verify; downloading it again from the start"),
        "{}",
        r.stderr
    );
    let reqs = w.mirror.requests_to(&w.embed_path());
    assert_eq!(reqs.len(), 2);
    assert!(
        !reqs[1].headers.contains_key("range"),
        "the second request is for the whole file"
    );
    assert_eq!(std::fs::read(w.blob(&w.embed)).unwrap(), w.embed);
}

#[test]
fn downloads_go_through_https_proxy_unless_no_proxy_says_otherwise() {
    let w = World::new();
    let proxy = support::servers::Proxy::start();
    let mut c = w.cmd();
    c.env("HTTPS_PROXY", proxy.url()).arg("fetch");
    run(c).ok();
    let tunnels = proxy.requests();
    assert!(!tunnels.is_empty(), "no CONNECT seen");
    assert!(
        tunnels
            .iter()
            .all(|r| r.starts_with(&format!("CONNECT 127.0.0.1:{}", w.mirror.addr.port()))),
        "{tunnels:?}"
    );

    let w2 = World::new();
    let proxy2 = support::servers::Proxy::start();
    let mut c = w2.cmd();
    c.env("HTTPS_PROXY", proxy2.url())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .arg("fetch");
    run(c).ok();
    assert!(proxy2.requests().is_empty(), "NO_PROXY bypasses the proxy");
}

/// One proxy resolution: the doctor, run with the environment of a download, reports the
/// proxy that download went through, and where the setting came from.
#[test]
fn the_doctor_reports_the_proxy_the_download_used_and_its_source() {
    let w = World::new();
    let proxy = support::servers::Proxy::start();
    // Without a scheme, as people often set it: both take it as http://.
    let setting = proxy.url().trim_start_matches("http://").to_string();
    let mut c = w.cmd();
    c.env("HTTPS_PROXY", &setting).arg("fetch");
    run(c).ok();
    let tunnels = proxy.requests().len();
    assert!(tunnels > 0, "the download went through the proxy");

    let mut c = w.cmd();
    c.env("HTTPS_PROXY", &setting)
        .args(["--json", "doctor", &w.mirror.index_url()]);
    let doc = run(c).ok().json();
    let h = &doc["hosts"][0];
    assert_eq!(h["proxy"]["url"], proxy.url(), "{h}");
    assert_eq!(h["proxy"]["source"], "environment");
    assert_eq!(h["proxy"]["variable"], "HTTPS_PROXY");
    assert_eq!(h["proxy"]["used"], true);
    assert_eq!(h["connect"]["via_proxy"], true);
    assert!(proxy.requests().len() > tunnels, "the doctor tunnelled too");
}

#[test]
fn an_unreachable_proxy_is_named() {
    let w = World::new();
    let port = support::servers::closed_port();
    let mut c = w.cmd();
    c.env("HTTPS_PROXY", format!("http://127.0.0.1:{port}"))
        .args(["--retries", "0", "fetch"]);
    let r = run(c).code(4);
    assert!(
        r.stderr.contains(&format!(
            "through the proxy http://127.0.0.1:{port} (from the environment: HTTPS_PROXY)"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn empty_settings_in_the_environment_count_as_unset() {
    let w = World::new();
    let mut c = w.cmd();
    for v in [
        "EXTPY_TIMEOUT",
        "EXTPY_JOBS",
        "EXTPY_OFFLINE",
        "EXTPY_MANIFEST",
        "EXTPY_CA_CERT",
        "EXTPY_JSON",
    ] {
        c.env(v, "");
    }
    c.arg("fetch");
    run(c).ok();
}

/// A world with large artifacts: a 3 MiB embeddable and a 2 MiB wheel beside a small one.
fn large_world() -> World {
    let (embed, wheels) = support::fixtures::large_set();
    World::with_artifacts(embed, wheels)
}

#[test]
fn a_link_that_drops_every_512_kib_completes_without_fetching_twice() {
    let w = large_world();
    w.mirror.drop_every(512 * 1024);
    let r = w.run(&["fetch", "--json", "-v"]).ok();
    let doc = r.json();
    w.assert_all_cached();
    assert_eq!(
        doc["artifacts"].as_array().unwrap().len(),
        3,
        "{}",
        r.stdout
    );
    assert_eq!(
        doc["artifacts"][0]["resumed"], true,
        "the embeddable was resumed: {}",
        r.stdout
    );
    let embed_requests = w.mirror.requests_to(&w.embed_path());
    assert!(
        embed_requests.len() >= 6,
        "3 MiB in 512 KiB pieces: {}",
        embed_requests.len()
    );
    assert!(
        embed_requests[1..]
            .iter()
            .all(|q| q.headers.contains_key("range")),
        "every request after the first continues with a Range"
    );
    w.assert_sent_within_1_2x(&r.stderr);
}

#[test]
fn a_stalled_connection_is_resumed_with_a_range_in_the_same_run() {
    let w = large_world();
    let path = w.embed_path();
    let stalled_at = 256 * 1024;
    // Twice: should the first answer not reach the client at all on a loaded machine, the
    // second one stalls at the same byte.
    for _ in 0..2 {
        w.mirror
            .fault(&path, Fault::StallAfter(stalled_at, Duration::from_secs(4)));
    }
    let r = w.run(&["fetch", "--json", "--timeout", "2", "-v"]).ok();
    assert_eq!(r.json()["artifacts"][0]["resumed"], true, "{}", r.stderr);
    let reqs = w.mirror.requests_to(&path);
    assert!(
        reqs.iter()
            .any(|q| q.headers.get("range") == Some(&format!("bytes={stalled_at}-"))),
        "continues where the stall began: {reqs:?}\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("resuming where it stopped"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(w.blob(&w.embed)).unwrap(), w.embed);
}

#[test]
fn a_killed_run_is_continued_by_the_next_one() {
    let w = large_world();
    let path = w.embed_path();
    let got = 512 * 1024;
    w.mirror
        .fault(&path, Fault::StallAfter(got, Duration::from_secs(30)));
    let mut child = w.cmd().args(["fetch", "--jobs", "1"]).spawn().unwrap();
    let part = w
        .cache
        .join("partial")
        .join(format!("{}.part", support::sha256_hex(&w.embed)));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < got as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never got {got} bytes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let doc = w.run(&["fetch", "--json"]).ok().json();
    assert_eq!(doc["artifacts"][0]["resumed"], true);
    let reqs = w.mirror.requests_to(&path);
    assert_eq!(
        reqs.last()
            .and_then(|q| q.headers.get("range"))
            .map(String::as_str),
        Some(format!("bytes={got}-").as_str())
    );
    assert_eq!(std::fs::read(w.blob(&w.embed)).unwrap(), w.embed);
}

#[test]
fn one_connection_carries_every_request_to_a_host() {
    let w = World::new();
    w.run(&["fetch", "--jobs", "1"]).ok();
    assert_eq!(
        w.mirror.requests().len(),
        7,
        "three index pages and four files"
    );
    assert_eq!(
        w.mirror.connections(),
        1,
        "kept alive: no TCP or TLS handshake per artifact"
    );
}

#[test]
fn the_largest_kinds_start_first() {
    let wheels = vec![
        support::WheelSpec::pure("alpha", "1.0"),
        support::WheelSpec {
            tag: "cp312-cp312-win_amd64".into(),
            purelib: false,
            ..support::WheelSpec::pure("native", "1.0")
        },
    ];
    let w = World::with_wheels(&wheels);
    w.run(&["fetch", "--jobs", "1"]).ok();
    let files: Vec<String> = w
        .mirror
        .requests()
        .into_iter()
        .map(|q| q.path)
        .filter(|p| !p.starts_with("/simple/"))
        .collect();
    assert_eq!(
        files,
        vec![
            w.embed_path(),
            format!("/files/{}", w.wheels[1].0),
            format!("/files/{}", w.wheels[0].0),
        ],
        "the embeddable, then compiled wheels, then pure ones"
    );
}

#[test]
fn a_locked_manifest_makes_no_index_request_and_starts_the_largest_first() {
    // Sizes that the kinds would order differently: a pure wheel larger than the embeddable
    // and than a compiled wheel.
    let wheels = vec![
        (
            support::WheelSpec::pure("alpha", "1.0").filename(),
            support::fixtures::noise(300 << 10, 3),
        ),
        (
            "native-1.0-cp312-cp312-win_amd64.whl".to_string(),
            support::fixtures::noise(20 << 10, 4),
        ),
        (
            "beta_pkg-2.1-py3-none-any.whl".to_string(),
            support::fixtures::noise(100 << 10, 5),
        ),
    ];
    let w = World::with_artifacts(support::fixtures::noise(50 << 10, 6), wheels);
    w.pin_urls_and_sizes();
    let doc = w.run(&["fetch", "--jobs", "1", "--json"]).ok().json();
    assert_eq!(doc["artifacts"].as_array().unwrap().len(), 4);
    let requests = w.mirror.requests();
    assert!(
        requests.iter().all(|q| !q.path.starts_with("/simple/")),
        "no index page for locked URLs: {requests:?}"
    );
    let paths: Vec<String> = requests.into_iter().map(|q| q.path).collect();
    assert_eq!(
        paths,
        vec![
            wheel_path(&w, 0),
            wheel_path(&w, 2),
            w.embed_path(),
            wheel_path(&w, 1),
        ],
        "one request per file, by pinned size: 300, 100, 50, 20 KiB"
    );
    assert_eq!(w.mirror.connections(), 1, "one connection for all four");
}

//! `extpy doctor` against local servers, one per fault: each run names the verdict, and where a
//! certificate is to be trusted, exports exactly the certificate the test made.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

use support::mirror::Mirror;
use support::pki::{Ca, Leaf, aia_ca_issuers, now_unix, valid_between};
use support::servers::{self, Proxy, Raw};
use support::{Run, World, extpy, run};

/// A file the mirrors serve, so that probes have a real artifact to ask for.
const FILE: &str = "/files/pkg-1.0-py3-none-any.whl";
const FILE_BYTES: &[u8] = b"not really a wheel, but 44 bytes of content.";

/// A mirror presenting `leaf` followed by `chain`, serving [`FILE`].
fn serve(leaf: &Leaf, chain: &[&CertificateDer<'static>]) -> Mirror {
    let m = Mirror::start(Some(leaf.server_config(chain)));
    m.put(FILE, FILE_BYTES.to_vec());
    m
}

fn url_of(m: &Mirror) -> String {
    format!("{}{FILE}", m.url())
}

/// Runs `extpy doctor ARGS` twice, for people and with `--json`; returns both.
fn doctor(args: &[&str]) -> (Run, Value) {
    doctor_env(args, &[])
}

fn doctor_env(args: &[&str], env: &[(&str, &str)]) -> (Run, Value) {
    let make = |json: bool| {
        let mut c = extpy();
        c.args(["doctor", "--timeout", "5"]);
        if json {
            c.arg("--json");
        }
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c)
    };
    let human = make(false);
    let machine = make(true);
    assert_eq!(human.code, machine.code, "same exit code with --json");
    let doc = machine.json();
    (human, doc)
}

fn host(doc: &Value) -> &Value {
    &doc["hosts"][0]
}

fn kind(doc: &Value) -> &str {
    host(doc)["verdict"]["kind"].as_str().unwrap_or("")
}

/// Asserts the human verdict line: `FAIL  <authority>  <summary>`.
#[track_caller]
fn says(r: &Run, authority: &str, summary: &str) {
    let line = format!("FAIL  {authority}  {summary}");
    assert!(
        r.stdout.lines().any(|l| l.starts_with(&line)),
        "expected a line starting with {line:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
}

/// Asserts that `dir` holds `<stem>.pem` and `<stem>.cer` of the certificate `der`.
#[track_caller]
fn exported(dir: &Path, stem: &str, der: &CertificateDer<'_>) -> PathBuf {
    let want = support::sha256_hex(der.as_ref());
    let cer = dir.join(format!("{stem}.cer"));
    let pem = dir.join(format!("{stem}.pem"));
    let cer_bytes = std::fs::read(&cer).unwrap_or_else(|e| panic!("{}: {e}", cer.display()));
    assert_eq!(
        support::sha256_hex(&cer_bytes),
        want,
        "the .cer is the certificate the test made"
    );
    let from_pem = CertificateDer::from_pem_file(&pem).expect("exported PEM");
    assert_eq!(
        support::sha256_hex(from_pem.as_ref()),
        want,
        "the .pem is the certificate the test made"
    );
    pem
}

fn authority(m: &Mirror) -> String {
    format!("127.0.0.1:{}", m.addr.port())
}

#[test]
fn trusted_with_ca_cert_through_an_intermediate_and_probed() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let inter = root.intermediate("Doctor Issuing CA");
    let leaf = inter.leaf(&["127.0.0.1"]);
    let m = serve(&leaf, &[&inter.der]);
    let pem = root.write_pem(dir.path(), "root.pem");
    let url = url_of(&m);
    let (r, doc) = doctor(&["--ca-cert", pem.to_str().unwrap(), &url]);
    let r = r.ok();
    assert!(
        r.stdout.starts_with(&format!(
            "OK    {}  trusted (with --ca-cert)",
            authority(&m)
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 host checked: ok"), "{}", r.stdout);
    assert_eq!(doc["ok"], true);
    let h = host(&doc);
    assert_eq!(h["verdict"]["by"], "extra");
    assert_eq!(h["chain"].as_array().unwrap().len(), 2);
    assert_eq!(h["chain"][1]["name"], "Doctor Issuing CA");
    assert_eq!(h["chain"][0]["sha256"], leaf.sha256());
    let trust = h["trust"].as_array().unwrap();
    assert_eq!(trust[0]["source"], "system");
    assert_eq!(trust[0]["problem"], "unknown_issuer");
    assert_eq!(trust[1]["source"], "mozilla");
    assert_eq!(trust[1]["ok"], false);
    assert_eq!(trust[2]["source"], "extra");
    assert_eq!(trust[2]["ok"], true);
    assert_eq!(h["probe"]["status"], 200);
    assert_eq!(h["probe"]["content_length"], FILE_BYTES.len());
    assert!(h["fix"].is_null());
    assert!(
        r.stdout.contains("200 OK, 44 B (44 bytes)"),
        "the probe is shown: {}",
        r.stdout
    );
}

#[test]
fn unknown_root_is_named_exported_and_then_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots");
    let root = Ca::root("Doctor Test Root");
    let leaf = root.leaf(&["127.0.0.1"]);
    let m = serve(&leaf, &[&root.der]);
    let url = format!("{}/", m.url());
    let (r, doc) = doctor(&["--export", roots.to_str().unwrap(), &url]);
    let r = r.code(4);
    says(
        &r,
        &authority(&m),
        "root not trusted by this machine: \"Doctor Test Root\"",
    );
    assert_eq!(kind(&doc), "root_not_trusted");
    let h = host(&doc);
    assert_eq!(h["verdict"]["public"], false);
    assert_eq!(h["verdict"]["presented"], true);
    let pem = exported(&roots, "Doctor-Test-Root", &root.der);
    assert_eq!(h["fix"]["certificate"]["sha256"], root.sha256());
    assert_eq!(h["fix"]["certificate"]["role"], "root");
    let pem_text = pem.display().to_string();
    assert!(
        r.stdout
            .contains(&format!("extpy build --ca-cert {pem_text}")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "Import-Certificate -FilePath \"Doctor-Test-Root.cer\" -CertStoreLocation Cert:\\LocalMachine\\Root"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("certutil -addstore -f Root \"Doctor-Test-Root.cer\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "sudo cp {pem_text} /usr/local/share/ca-certificates/Doctor-Test-Root.crt && sudo update-ca-certificates"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("1 of 1 hosts failed the diagnosis"),
        "{}",
        r.stderr
    );

    let (again, doc) = doctor(&["--ca-cert", pem.to_str().unwrap(), &url]);
    let again = again.ok();
    assert!(
        again.stdout.starts_with(&format!(
            "OK    {}  trusted (with --ca-cert)",
            authority(&m)
        )),
        "{}",
        again.stdout
    );
    assert_eq!(kind(&doc), "trusted");
}

#[test]
fn without_export_the_commands_name_a_placeholder_folder() {
    let root = Ca::root("Doctor Test Root");
    let leaf = root.leaf(&["127.0.0.1"]);
    let m = serve(&leaf, &[&root.der]);
    let (r, doc) = doctor(&[&m.url()]);
    let r = r.code(4);
    assert!(
        r.stdout
            .contains("certutil -addstore -f Root \"DIR\\Doctor-Test-Root.cer\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("extpy build --ca-cert DIR/Doctor-Test-Root.pem"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Add --export DIR"), "{}", r.stdout);
    assert!(host(&doc)["fix"]["certificate"]["pem"].is_null());
}

#[test]
fn root_not_sent_is_named_from_the_issuer_and_cannot_be_exported() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Unsent Private Root");
    let leaf = root.leaf(&["127.0.0.1"]);
    let m = serve(&leaf, &[]);
    let (r, doc) = doctor(&["--export", dir.path().to_str().unwrap(), &m.url()]);
    says(
        &r.code(4),
        &authority(&m),
        "root not trusted by this machine: \"Unsent Private Root\"",
    );
    let h = host(&doc);
    assert_eq!(h["verdict"]["presented"], false);
    assert!(h["fix"]["certificate"].is_null());
    assert!(
        h["fix"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("sent only its own certificate"),
        "{h}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn root_not_sent_above_an_intermediate_exports_the_intermediate() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Unsent Private Root");
    let inter = root.intermediate("Private Issuing CA");
    let leaf = inter.leaf(&["localhost"]);
    let m = serve(&leaf, &[&inter.der]);
    let url = format!("https://localhost:{}{FILE}", m.addr.port());
    let (r, doc) = doctor(&["--export", dir.path().to_str().unwrap(), &url]);
    says(
        &r.code(4),
        &format!("localhost:{}", m.addr.port()),
        "root not trusted by this machine: \"Unsent Private Root\"",
    );
    let h = host(&doc);
    assert_eq!(h["fix"]["certificate"]["role"], "intermediate");
    let pem = exported(dir.path(), "Private-Issuing-CA", &inter.der);
    let (again, _) = doctor(&["--ca-cert", pem.to_str().unwrap(), &url]);
    again.ok();
}

#[test]
fn private_ca_for_a_public_name_is_a_tls_inspecting_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("Corp TLS Inspection CA");
    let leaf = ca.leaf(&["files.example.com"]);
    let m = serve(&leaf, &[&ca.der]);
    let port = m.addr.port();
    let resolve = format!("files.example.com:{port}:127.0.0.1");
    let url = format!("https://files.example.com:{port}{FILE}");
    let (r, doc) = doctor(&[
        "--resolve",
        &resolve,
        "--export",
        dir.path().to_str().unwrap(),
        &url,
    ]);
    says(
        &r.code(4),
        &format!("files.example.com:{port}"),
        "TLS-inspecting proxy or private CA: \"Corp TLS Inspection CA\"",
    );
    assert_eq!(kind(&doc), "tls_inspection");
    assert_eq!(host(&doc)["dns"]["source"], "resolve");
    let pem = exported(dir.path(), "Corp-TLS-Inspection-CA", &ca.der);

    let (again, doc) = doctor(&[
        "--resolve",
        &resolve,
        "--ca-cert",
        pem.to_str().unwrap(),
        &url,
    ]);
    again.ok();
    let probe = &host(&doc)["probe"];
    assert_eq!(probe["status"], 200, "the probe honours --resolve: {probe}");
    assert_eq!(probe["content_length"], FILE_BYTES.len());
}

#[test]
fn missing_intermediate_names_the_issuer_and_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let inter = root.intermediate("Doctor Issuing CA 7");
    let aia = "http://pki.example.com/issuing-ca-7.cer";
    let leaf = inter.leaf_with(&["127.0.0.1"], |p| {
        p.custom_extensions.push(aia_ca_issuers(aia))
    });
    let m = serve(&leaf, &[]);
    let root_pem = root.write_pem(dir.path(), "root.pem");
    let export = dir.path().join("out");
    let url = m.url();
    for extra in [&["--ca-cert", root_pem.to_str().unwrap()][..], &[]] {
        let mut args = extra.to_vec();
        args.extend(["--export", export.to_str().unwrap(), &url]);
        let (r, doc) = doctor(&args);
        let r = r.code(4);
        says(
            &r,
            &authority(&m),
            "missing intermediate: the server does not send \"Doctor Issuing CA 7\"",
        );
        let v = &host(&doc)["verdict"];
        assert_eq!(v["issuer"], "Doctor Issuing CA 7");
        assert_eq!(v["url"], aia);
        assert!(r.stdout.contains(aia), "{}", r.stdout);
        assert_eq!(host(&doc)["chain"][0]["ca_issuers"][0], aia);
        assert!(
            r.stdout.contains("certutil -addstore -f CA"),
            "installs as an intermediate: {}",
            r.stdout
        );
    }
    assert_eq!(
        std::fs::read_dir(&export).unwrap().count(),
        0,
        "nothing is fetched or exported"
    );
}

#[test]
fn expired_certificate_gives_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let leaf = root.leaf_with(&["127.0.0.1"], |p| {
        valid_between(p, 1_577_836_800, 1_609_459_200)
    });
    let m = serve(&leaf, &[&root.der]);
    let pem = root.write_pem(dir.path(), "root.pem");
    let export = dir.path().join("out");
    let (r, doc) = doctor(&[
        "--ca-cert",
        pem.to_str().unwrap(),
        "--export",
        export.to_str().unwrap(),
        &m.url(),
    ]);
    says(
        &r.code(4),
        &authority(&m),
        "expired: \"127.0.0.1\" was valid until 2021-01-01T00:00:00Z",
    );
    let v = &host(&doc)["verdict"];
    assert_eq!(v["kind"], "expired");
    assert_eq!(v["not_after"], "2021-01-01T00:00:00Z");
    assert!(
        v["clock_hint"].is_null(),
        "years ago is no clock problem: {v}"
    );
    assert_eq!(host(&doc)["trust"][2]["problem"], "expired");
    assert_eq!(std::fs::read_dir(&export).unwrap().count(), 0);
    // Untrusted as well as expired: the dates come first, no root fixes them.
    let (r, doc) = doctor(&[&m.url()]);
    r.code(4);
    assert_eq!(kind(&doc), "expired");
}

#[test]
fn not_yet_valid_certificate_gives_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let leaf = root.leaf_with(&["127.0.0.1"], |p| {
        valid_between(p, 3_471_292_800, 3_786_912_000)
    });
    let m = serve(&leaf, &[&root.der]);
    let pem = root.write_pem(dir.path(), "root.pem");
    let (r, doc) = doctor(&["--ca-cert", pem.to_str().unwrap(), &m.url()]);
    says(
        &r.code(4),
        &authority(&m),
        "not yet valid: \"127.0.0.1\" is valid from 2080-01-01T00:00:00Z",
    );
    assert!(host(&doc)["verdict"]["clock_hint"].is_null());
}

#[test]
fn certificate_valid_in_minutes_hints_at_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let now = now_unix();
    let leaf = root.leaf_with(&["127.0.0.1"], |p| {
        valid_between(p, now + 600, now + 400 * 86_400)
    });
    let m = serve(&leaf, &[&root.der]);
    let pem = root.write_pem(dir.path(), "root.pem");
    let (r, doc) = doctor(&["--ca-cert", pem.to_str().unwrap(), &m.url()]);
    let r = r.code(4);
    assert_eq!(kind(&doc), "not_yet_valid");
    let hint = host(&doc)["verdict"]["clock_hint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        hint.contains("becomes valid in") && hint.contains("clock is probably behind"),
        "{hint}"
    );
    assert!(r.stdout.contains("w32tm"), "{}", r.stdout);
}

#[test]
fn certificate_expiring_soon_is_noted_but_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let now = now_unix();
    let leaf = root.leaf_with(&["127.0.0.1"], |p| {
        valid_between(p, now - 86_400, now + 3 * 86_400 + 3600)
    });
    let m = serve(&leaf, &[&root.der]);
    let pem = root.write_pem(dir.path(), "root.pem");
    let (r, doc) = doctor(&["--ca-cert", pem.to_str().unwrap(), &url_of(&m)]);
    let r = r.ok();
    let note = host(&doc)["notes"][0].as_str().unwrap();
    assert!(
        note.starts_with("the server's certificate expires in 3 days"),
        "{note}"
    );
    assert!(r.stdout.contains("expires in 3 days"), "{}", r.stdout);
}

#[test]
fn wrong_host_name_lists_the_names_covered() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let leaf = root.leaf(&["other.example.com", "www.other.example.com"]);
    let m = serve(&leaf, &[&root.der]);
    let pem = root.write_pem(dir.path(), "root.pem");
    let (r, doc) = doctor(&["--ca-cert", pem.to_str().unwrap(), &m.url()]);
    says(
        &r.code(4),
        &authority(&m),
        "host name mismatch: the certificate is for other.example.com, www.other.example.com, not 127.0.0.1",
    );
    let v = &host(&doc)["verdict"];
    assert_eq!(v["host"], "127.0.0.1");
    assert_eq!(
        v["names"],
        serde_json::json!(["other.example.com", "www.other.example.com"])
    );
}

#[test]
fn self_signed_leaf_is_exported_and_then_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = Leaf::self_signed(&["127.0.0.1"]);
    let m = serve(&leaf, &[]);
    let (r, doc) = doctor(&["--export", dir.path().to_str().unwrap(), &m.url()]);
    says(
        &r.code(4),
        &authority(&m),
        "self-signed certificate: \"127.0.0.1\"",
    );
    assert_eq!(host(&doc)["fix"]["certificate"]["role"], "self_signed");
    let pem = exported(dir.path(), "127.0.0.1", &leaf.der);
    let (again, _) = doctor(&["--ca-cert", pem.to_str().unwrap(), &m.url()]);
    again.ok();
}

#[test]
fn server_that_speaks_no_tls() {
    let raw = Raw::start(servers::PLAIN_HTTP_400);
    let url = format!("https://127.0.0.1:{}/", raw.addr.port());
    let (r, doc) = doctor(&[&url]);
    says(
        &r.code(4),
        &format!("127.0.0.1:{}", raw.addr.port()),
        "handshake failure: the server speaks no TLS on this port (it answered \"HTTP/1.1 400 Bad Request\")",
    );
    assert_eq!(kind(&doc), "not_tls");
    assert_eq!(host(&doc)["tls"]["not_tls"], true);
    assert!(host(&doc)["chain"].as_array().unwrap().is_empty());
}

#[test]
fn server_that_refuses_the_handshake() {
    let raw = Raw::start(servers::HANDSHAKE_FAILURE_ALERT);
    let url = format!("https://127.0.0.1:{}/", raw.addr.port());
    let (r, doc) = doctor(&[&url]);
    let r = r.code(4);
    assert_eq!(kind(&doc), "handshake_failed");
    let reason = host(&doc)["verdict"]["reason"].as_str().unwrap();
    assert!(reason.contains("HandshakeFailure"), "{reason}");
    says(
        &r,
        &format!("127.0.0.1:{}", raw.addr.port()),
        "handshake failure: ",
    );
    assert!(
        raw.received()[0].starts_with(&[0x16, 0x03]),
        "a TLS ClientHello was sent"
    );
}

#[test]
fn closed_port() {
    let port = servers::closed_port();
    let (r, doc) = doctor(&[&format!("127.0.0.1:{port}")]);
    let r = r.code(4);
    says(
        &r,
        &format!("127.0.0.1:{port}"),
        &format!("connect failure: 127.0.0.1:{port}: connection refused"),
    );
    assert_eq!(kind(&doc), "connect_failed");
    assert!(host(&doc)["tls"].is_null());
    assert!(
        r.stdout.contains("Test-NetConnection 127.0.0.1 -Port"),
        "{}",
        r.stdout
    );
}

#[test]
fn name_that_does_not_resolve() {
    let (r, doc) = doctor(&["https://nothing.invalid/simple/"]);
    says(
        &r.code(4),
        "nothing.invalid:443",
        "DNS failure: nothing.invalid: ",
    );
    assert_eq!(kind(&doc), "dns_failed");
    assert_eq!(host(&doc)["dns"]["source"], "system");
    assert!(host(&doc)["connect"].is_null());
}

#[test]
fn proxy_that_refuses_connect_is_named_with_its_answer() {
    let proxy = Raw::start(servers::PROXY_403);
    let (r, doc) = doctor_env(
        &["https://files.example.com/"],
        &[("HTTPS_PROXY", &proxy.http_url())],
    );
    let r = r.code(4);
    says(
        &r,
        "files.example.com:443",
        &format!(
            "proxy failure: the proxy {} (from the environment: HTTPS_PROXY) refused the tunnel to files.example.com:443: it answered \"403 Forbidden\"",
            proxy.http_url()
        ),
    );
    let h = host(&doc);
    assert_eq!(h["verdict"]["kind"], "proxy_failed");
    assert_eq!(h["verdict"]["answer"], "403 Forbidden");
    assert_eq!(h["proxy"]["used"], true);
    assert_eq!(h["proxy"]["variable"], "HTTPS_PROXY");
    let first = String::from_utf8_lossy(&proxy.received()[0]).into_owned();
    assert!(
        first.starts_with("CONNECT files.example.com:443 HTTP/1.1\r\n"),
        "{first:?}"
    );
}

#[test]
fn proxy_that_cannot_be_reached() {
    let port = servers::closed_port();
    let proxy = format!("http://127.0.0.1:{port}");
    let (r, doc) = doctor_env(&["files.example.com"], &[("HTTPS_PROXY", &proxy)]);
    says(
        &r.code(4),
        "files.example.com:443",
        &format!(
            "proxy failure: cannot connect to the proxy {proxy} (from the environment: HTTPS_PROXY)"
        ),
    );
    assert_eq!(kind(&doc), "proxy_failed");
}

#[test]
fn proxy_tunnel_is_used_and_no_proxy_bypasses_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let leaf = root.leaf(&["127.0.0.1"]);
    let m = serve(&leaf, &[]);
    let pem = root.write_pem(dir.path(), "root.pem");
    let proxy = Proxy::start();
    let url = url_of(&m);
    let args = ["--ca-cert", pem.to_str().unwrap(), &url];
    let (r, doc) = doctor_env(&args, &[("HTTPS_PROXY", &proxy.url())]);
    let r = r.ok();
    let h = host(&doc);
    assert_eq!(h["proxy"]["used"], true);
    assert_eq!(h["connect"]["via_proxy"], true);
    assert_eq!(h["dns"]["source"], "proxy");
    assert_eq!(h["probe"]["status"], 200);
    assert!(
        r.stdout
            .contains("(from the environment: HTTPS_PROXY), used"),
        "{}",
        r.stdout
    );
    let connect = format!("CONNECT {} HTTP/1.1", authority(&m));
    assert!(
        proxy.requests().iter().filter(|l| **l == connect).count() >= 4,
        "the handshake and the probe both tunnel, for each of the two runs: {:?}",
        proxy.requests()
    );

    let before = proxy.requests().len();
    let (r, doc) = doctor_env(
        &args,
        &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")],
    );
    let r = r.ok();
    let h = host(&doc);
    assert_eq!(h["proxy"]["bypassed"], true);
    assert_eq!(h["proxy"]["used"], false);
    assert_eq!(h["connect"]["via_proxy"], false);
    assert!(
        r.stdout
            .contains("bypassed: its bypass list names this host"),
        "{}",
        r.stdout
    );
    assert_eq!(
        proxy.requests().len(),
        before,
        "NO_PROXY: the proxy is not asked"
    );
}

#[test]
fn json_schema_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Doctor Test Root");
    let leaf = root.leaf(&["127.0.0.1"]);
    let m = serve(&leaf, &[&root.der]);
    let closed = servers::closed_port();
    let (_, doc) = doctor(&[
        "--export",
        dir.path().to_str().unwrap(),
        &m.url(),
        &format!("127.0.0.1:{closed}"),
    ]);
    let obj = doc.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["command", "extpy_version", "hosts", "notes", "ok"]);
    assert_eq!(doc["command"], "doctor");
    assert_eq!(doc["ok"], false);
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "in the order given");
    let h = &hosts[0];
    let mut keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "chain", "connect", "dns", "fix", "host", "notes", "ok", "port", "probe", "proxy",
            "roles", "tls", "trust", "url", "verdict"
        ]
    );
    assert!(h["host"].is_string() && h["port"].is_u64() && h["url"].is_string());
    assert!(h["roles"].is_array() && h["ok"].is_boolean() && h["notes"].is_array());
    for k in ["kind", "summary", "explanation"] {
        assert!(h["verdict"][k].is_string(), "verdict.{k}");
    }
    for k in ["bypassed", "used"] {
        assert!(h["proxy"][k].is_boolean(), "proxy.{k}");
    }
    assert!(h["proxy"]["url"].is_null() && h["proxy"]["variable"].is_null());
    assert!(h["dns"]["source"].is_string() && h["dns"]["addresses"].is_array());
    assert!(h["dns"]["ms"].is_number() && h["dns"]["error"].is_null());
    assert!(h["connect"]["address"].is_string() && h["connect"]["ms"].is_number());
    assert!(h["connect"]["via_proxy"].is_boolean() && h["connect"]["failed"].is_array());
    for k in ["version", "cipher", "key_exchange"] {
        assert!(h["tls"][k].is_string(), "tls.{k}");
    }
    assert!(h["tls"]["ms"].is_number() && h["tls"]["not_tls"].is_boolean());
    let c = &h["chain"][0];
    for k in [
        "subject",
        "name",
        "issuer",
        "issuer_name",
        "not_before",
        "not_after",
        "key",
        "sha256",
    ] {
        assert!(c[k].is_string(), "chain[].{k}");
    }
    assert!(c["names"].is_array() && c["ca_issuers"].is_array());
    assert!(c["position"].is_u64() && c["ca"].is_boolean() && c["self_signed"].is_boolean());
    assert!(c["error"].is_null());
    for t in h["trust"].as_array().unwrap() {
        assert!(t["source"].is_string() && t["label"].is_string() && t["ok"].is_boolean());
        assert!(t["problem"].is_string() && t["message"].is_string());
    }
    let fix = &h["fix"];
    assert!(fix["summary"].is_string() && fix["notes"].is_array());
    let cert = &fix["certificate"];
    for k in [
        "name",
        "subject",
        "sha256",
        "role",
        "origin",
        "file_stem",
        "pem",
        "cer",
    ] {
        assert!(cert[k].is_string(), "fix.certificate.{k}");
    }
    let platforms: Vec<&str> = fix["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["label"].is_string() && c["command"].is_string());
            c["platform"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        platforms,
        [
            "windows-powershell",
            "windows-cmd",
            "linux-debian",
            "linux-rhel",
            "extpy"
        ]
    );
    assert!(h["probe"].is_null(), "no probe of an untrusted host");
    let closed_host = &hosts[1];
    assert_eq!(closed_host["verdict"]["kind"], "connect_failed");
    assert!(closed_host["tls"].is_null() && closed_host["chain"].as_array().unwrap().is_empty());

    // A trusted host has a probe with its own fields.
    let pem = root.write_pem(dir.path(), "root.pem");
    let (_, doc) = doctor(&["--ca-cert", pem.to_str().unwrap(), &url_of(&m)]);
    let p = &host(&doc)["probe"];
    assert!(p["url"].is_string() && p["final_url"].is_string() && p["status"].is_u64());
    assert!(p["redirects"].is_array() && p["ms"].is_number() && p["error"].is_null());
    assert!(p["content_length"].is_u64());
    assert!(p.as_object().unwrap().contains_key("server_date"));
    assert!(p.as_object().unwrap().contains_key("clock_skew_s"));
}

#[test]
fn without_arguments_every_source_host_is_checked() {
    let w = World::new();
    let (r, doc) = {
        let r = w.run(&["doctor"]);
        let j = w.run(&["doctor", "--json"]);
        (r, j.json())
    };
    let r = r.ok();
    assert!(
        r.stdout.contains("serves     python mirror, index, files"),
        "{}",
        r.stdout
    );
    let h = host(&doc);
    assert_eq!(
        h["roles"],
        serde_json::json!(["python mirror", "index", "files"])
    );
    assert!(
        h["url"].as_str().unwrap().ends_with(&w.embed_path()),
        "the python mirror's probe asks for the embeddable zip: {h}"
    );
    assert_eq!(h["probe"]["status"], 200);
    assert_eq!(h["probe"]["content_length"], w.embed.len());

    // Without the CA: the hosts fail, and the file hosts cannot be listed.
    let mut c = extpy();
    c.args(["doctor", "--json", "--manifest"]).arg(&w.manifest);
    c.args(["--python-mirror", &w.mirror.python_mirror()]);
    c.args(["--index-url", &w.mirror.index_url()]);
    let failed = run(c).code(4);
    let doc = failed.json();
    assert_eq!(kind(&doc), "root_not_trusted");
    assert!(
        doc["notes"][0].as_str().unwrap().contains("file host"),
        "{doc}"
    );
}

#[test]
fn bad_arguments_are_input_errors() {
    let r = run({
        let mut c = extpy();
        c.args([
            "doctor",
            "--resolve",
            "files.example.com:443",
            "files.example.com",
        ]);
        c
    })
    .code(2);
    assert!(
        r.stderr.contains("--resolve \"files.example.com:443\""),
        "{}",
        r.stderr
    );
    let r = run({
        let mut c = extpy();
        c.args(["doctor", "ftp://files.example.com/"]);
        c
    })
    .code(2);
    assert!(r.stderr.contains("is not https or http"), "{}", r.stderr);
    let r = run({
        let mut c = extpy();
        c.args(["doctor", "--offline", "files.example.com"]);
        c
    })
    .code(2);
    assert!(r.stderr.contains("needs the network"), "{}", r.stderr);
}

#[test]
fn fetch_on_an_untrusted_mirror_prints_the_diagnosis_and_the_fix() {
    let w = World::new();
    let cmd = |json: bool| {
        let mut c = extpy();
        c.arg("fetch");
        if json {
            c.arg("--json");
        }
        c.arg("--manifest").arg(&w.manifest);
        c.arg("--cache-dir").arg(&w.cache);
        c.args(["--python-mirror", &w.mirror.python_mirror()]);
        c.args(["--index-url", &w.mirror.index_url()]);
        run(c).code(4)
    };
    let r = cmd(false);
    let auth = format!("127.0.0.1:{}", w.mirror.addr.port());
    assert!(
        r.stderr.contains(
            "TLS with 127.0.0.1 failed: root not trusted by this machine: \"extpy test root CA\""
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr
            .matches(&format!("FAIL  {auth}  root not trusted by this machine"))
            .count(),
        1,
        "one diagnosis per host: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("extpy fetch --ca-cert DIR/extpy-test-root-CA.pem"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("certutil -addstore -f Root"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("The server sent only its own certificate"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("`extpy doctor https://{auth}/")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("rustls"), "{}", r.stderr);

    let doc = cmd(true).json();
    assert_eq!(doc["command"], "fetch");
    assert_eq!(doc["exit_code"], 4);
    assert_eq!(doc["diagnoses"][0]["verdict"]["kind"], "root_not_trusted");
    assert_eq!(doc["diagnoses"][0]["verdict"]["root"], "extpy test root CA");
}

#[test]
fn build_on_an_untrusted_mirror_prints_the_diagnosis() {
    let w = World::new();
    let mut c = extpy();
    c.arg("build").arg(w.path("dest"));
    c.arg("--manifest").arg(&w.manifest);
    c.arg("--cache-dir").arg(&w.cache);
    c.args(["--python-mirror", &w.mirror.python_mirror()]);
    c.args(["--index-url", &w.mirror.index_url()]);
    let r = run(c).code(4);
    assert!(
        r.stderr
            .contains("root not trusted by this machine: \"extpy test root CA\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("extpy build --ca-cert"), "{}", r.stderr);
    assert!(!w.path("dest").exists());
}

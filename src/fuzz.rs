//! Fuzzing on stable: bounded property tests (proptest) over every parser that reads what a
//! user, a mirror or an attacker hands extpy: the manifest, the topology and its mail block,
//! PEP 508 requirements and markers, PEP 440 versions and specifiers, the zip reader and the
//! wheel planner, seals, bundles (their manifest, metadata and SHA256SUMS), Simple API pages
//! (JSON and HTML), and saved doctor and mail-check reports.
//!
//! Each property feeds both arbitrary input and valid seeds with random edits (the edits
//! reach far deeper than random bytes do), and asserts that the parser returns, Ok or Err,
//! without a panic, within a time limit, and that the process's peak memory stays bounded.
//! The case counts keep the whole file well under two minutes on a two-core machine;
//! `EXTPY_FUZZ_SCALE=N` multiplies them for a longer run. Inputs that once broke a parser
//! are kept as plain tests at the end of this file.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;

use crate::job::assemble::requires::{Environment, Package, graph};
use crate::job::assemble::seal::{Seal, VerifyOptions, verify};
use crate::job::doctor::summary::DoctorSummary;
use crate::job::mail::check::PlanChecks;
use crate::job::source::parse_project_page;
use crate::mechanism::archive::{Archive, Limits};
use crate::model::manifest::Manifest;
use crate::model::manifest::yaml::Origin;
use crate::model::topology::Topology;

/// The longest one parse may take before it counts as a hang (generous: debug build, and a
/// machine shared with other builds).
const HANG: Duration = Duration::from_secs(20);
/// Peak resident memory the whole fuzz process may reach.
const MAX_PEAK_RSS_KIB: u64 = 1536 * 1024;

/// The seed of every property when PROPTEST_RNG_SEED is not set.
const FIXED_SEED: u64 = 0x0e87_7095_2026_1129;

fn cases(n: u32) -> ProptestConfig {
    let scale = std::env::var("EXTPY_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let mut config = ProptestConfig {
        cases: n * scale,
        // Failures are turned into plain tests below by hand; no files are written.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // The same cases on every run unless PROPTEST_RNG_SEED says otherwise, so that a test
    // run passes or fails for what changed in the code, not for the draw. Exploring is a
    // run with a seed of its own: `PROPTEST_RNG_SEED=$RANDOM EXTPY_FUZZ_SCALE=10`.
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(FIXED_SEED);
    }
    config
}

/// Runs `f` on its own thread and fails the case if it panics or takes longer than [`HANG`];
/// then checks the process's peak memory.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(HANG) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no answer within {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {} // it panicked: join says so
    }
    let r = match handle.join() {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    };
    if let Some(peak) = peak_rss_kib() {
        assert!(
            peak < MAX_PEAK_RSS_KIB,
            "{what}: peak memory {peak} KiB is over {MAX_PEAK_RSS_KIB} KiB"
        );
    }
    r
}

/// VmHWM of this process (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Tokens that matter to the formats read here; edits insert them.
const TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    ":",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "..",
    "/",
    "\\",
    "\0",
    "&a ",
    "*a",
    "!!binary ",
    "{{ x }}",
    "~",
    "null",
    "-1",
    "1e999",
    "18446744073709551616",
    "\u{202e}",
    "\u{e9}",
    "CON",
    "  ",
    "\t",
    "#",
    "%",
    ",",
    "<a href=\"",
    "</a>",
    "&amp;",
    "&#x41;",
    "&#9999999999;",
    ";",
    "==",
    ">=",
    "~=",
    "!=",
    "===",
    ".*",
    "[extra]",
    " ; python_version > '3'",
    " and ",
    " or ",
    "(",
    ")",
    " @ ",
    "file:///etc/passwd",
    "#sha256=",
    "data-yanked=",
    "?",
    "=",
    "\u{feff}",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "  ",
    "a",
];

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Replace(usize, u8),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, t)| Edit::Insert(p, t)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Replace(p, b)),
        (any::<usize>(), 1usize..256).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match *e {
            Edit::Insert(p, t) => {
                let i = at(p, v.len());
                v.splice(i..i, TOKENS[t].bytes());
            }
            Edit::Delete(p, n) => {
                let i = at(p, v.len());
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Replace(p, b) => {
                if !v.is_empty() {
                    let i = p % v.len();
                    v[i] = b;
                }
            }
            Edit::Duplicate(p, n) => {
                let i = at(p, v.len());
                let end = (i + n).min(v.len());
                let chunk = v[i..end].to_vec();
                v.splice(i..i, chunk);
            }
        }
    }
    v
}

/// Arbitrary bytes, or a seed with up to 12 edits.
fn input(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..512),
        4 => proptest::collection::vec(edit(), 0..12).prop_map(move |e| apply(seed, &e)),
    ]
}

fn text(seed: &'static str) -> impl Strategy<Value = String> {
    input(seed.as_bytes()).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

const MANIFEST: &str = include_str!("../manifests/python-3.12-win-amd64.yaml");

const TOPOLOGY: &str = "schema: 1
system: Contact Center
manifest: m.yaml
vu_prefix: ExternalPython
nodes:
  - name: HAC1
    host: scp-hac1.example.com
    vu_root: 'D:\\SCP\\vu'
    cores: [Core1, Core2, { core: CoreSpare, vu: ExternalPython9 }]
  - name: HAC2
    host: 10.0.0.2
    vu_root: '\\\\server\\share\\vu'
    cores: [Core3]
mail:
  incoming:
    - name: M365 Service
      tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301
      auth: oauth_service
      client_id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8
      secret_env: CEM_MAIL_SECRET
    - name: M365 Users
      tenant: contoso.example.com
      auth: oauth_user
      client_id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8
  outgoing:
    tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301
    auth: oauth_service
    server_user: 6ba7b812-9dad-11d1-80b4-00c04fd430c8
    password_env: CEM_OUT_SECRET
  queues:
    - address: support@contoso.example.com
      account: support@contoso.example.com
      server: M365 Users
      password_env: CEM_QUEUE_PASSWORD
";

const SIMPLE_JSON: &str = r#"{"meta":{"api-version":"1.1"},"name":"msal","files":[
{"filename":"msal-1.39.0-py3-none-any.whl","url":"../../files/msal-1.39.0-py3-none-any.whl","hashes":{"sha256":"2d2577886906cd7293850dffa2da29119966c213bfc6ec0cecf8bf7621e1ca77"},"requires-python":">=3.8","yanked":false,"core-metadata":{"sha256":"2d2577886906cd7293850dffa2da29119966c213bfc6ec0cecf8bf7621e1ca77"},"size":123},
{"filename":"msal-1.0.0.tar.gz","url":"https://files.example/msal-1.0.0.tar.gz","hashes":{},"yanked":"broken","dist-info-metadata":true}
]}"#;

const SIMPLE_HTML: &str = r#"<!DOCTYPE html><html><body>
<a href="../../files/msal-1.39.0-py3-none-any.whl#sha256=2d2577886906cd7293850dffa2da29119966c213bfc6ec0cecf8bf7621e1ca77" data-requires-python="&gt;=3.8" data-core-metadata="sha256=2d2577886906cd7293850dffa2da29119966c213bfc6ec0cecf8bf7621e1ca77">msal-1.39.0-py3-none-any.whl</a><br/>
<A HREF='https://files.example/msal-1.0.0.tar.gz' data-yanked="broken &amp; gone">msal-1.0.0.tar.gz</A>
</body></html>"#;

const DOCTOR: &str = r#"{"schema":"extpy-doctor/1","hosts":[{"host":"files.example","port":443,"ok":false,"verdict":{"kind":"unknown_issuer","summary":"the server's root is not trusted"},"fix":{"summary":"install the root","certificate":{"name":"Inspecting CA","sha256":"2d2577886906cd7293850dffa2da29119966c213bfc6ec0cecf8bf7621e1ca77","file_stem":"inspecting-ca"}}},{"host":"index.example","port":8443,"ok":true}]}"#;

const MAIL_REPORT: &str = r#"{"schema":"extpy-mail-check/1","checks":[{"id":"token-incoming","step":"token","server":"incoming","queue":null,"ok":false,"verdict":{"kind":"bad_secret","summary":"AADSTS7000215: the secret is wrong"},"fix":{"summary":"set CEM_MAIL_SECRET","steps":["a","b"]}},{"id":"imap-support","step":"imap","server":"incoming","queue":"support@example.com","ok":true,"verdict":{"kind":"ok","summary":"logged in"},"fix":null}]}"#;

const REQUIREMENTS: &str = "cryptography>=2.5,<48 ; python_version >= \"3.8\" and platform_system == 'Windows' or extra == 'crypto'";

const VERSIONS: &str = "1.0.post1.dev2+local.7 ~=3.12,!=3.12.*,>=1!2.0a1,===x";

fn origin() -> Origin {
    Origin("fuzz.yaml".into())
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn manifest_parsing_returns(t in text(MANIFEST)) {
        bounded("manifest", move || { let _ = Manifest::parse(origin(), &t); });
    }

    #[test]
    fn topology_and_mail_parsing_returns(t in text(TOPOLOGY)) {
        bounded("topology", move || { let _ = Topology::parse(origin(), &t); });
    }
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn pep508_requirements_and_markers_parse_or_fail(t in text(REQUIREMENTS)) {
        bounded("pep508", move || {
            // As build's completeness check and the SBOM read a wheel's Requires-Dist.
            let env = Environment::target(
                crate::model::manifest::PythonVersion::from_str("3.12.10").unwrap(),
                crate::model::manifest::Platform::WinAmd64,
            );
            let p = Package { name: "a".into(), version: "1".into(), requires: vec![t.clone()] };
            let _ = graph(&[p], &env);
            let _ = crate::model::manifest::requirement(&t);
        });
    }

    #[test]
    fn pep440_versions_and_specifiers_parse_or_fail(t in text(VERSIONS)) {
        bounded("pep440", move || {
            use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
            for part in t.split_whitespace().chain([t.as_str()]) {
                if let (Ok(v), Ok(s)) = (Version::from_str(part), VersionSpecifiers::from_str(&t)) {
                    let _ = s.contains(&v);
                }
            }
        });
    }

    #[test]
    fn simple_api_pages_parse_or_fail(json in text(SIMPLE_JSON), html in text(SIMPLE_HTML)) {
        bounded("simple api", move || {
            let url = url::Url::parse("https://index.example/simple/msal/").unwrap();
            let _ = parse_project_page(&url, "application/vnd.pypi.simple.v1+json", json.as_bytes());
            let _ = parse_project_page(&url, "text/html", html.as_bytes());
            let _ = parse_project_page(&url, "", html.as_bytes());
        });
    }

    #[test]
    fn saved_reports_parse_or_fail(doctor in text(DOCTOR), mail in text(MAIL_REPORT)) {
        bounded("reports", move || {
            let _ = DoctorSummary::parse(doctor.as_bytes());
            let _ = PlanChecks::from_saved(&mail, "fuzz.json".into());
        });
    }
}

/// A small wheel and an embeddable-like zip, the seeds of the archive properties.
fn seed_zips() -> &'static [Vec<u8>] {
    static Z: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    Z.get_or_init(|| {
        let wheel = support::WheelSpec::pure("alpha", "1.0").build();
        vec![wheel, support::embeddable(support::PY)]
    })
}

fn zip_input() -> impl Strategy<Value = Vec<u8>> {
    (0..2usize, proptest::collection::vec(edit(), 0..10))
        .prop_map(|(i, e)| apply(&seed_zips()[i], &e))
}

proptest! {
    #![proptest_config(cases(600))]

    #[test]
    fn the_zip_reader_and_wheel_planner_return(bytes in zip_input()) {
        bounded("zip", move || {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("alpha-1.0-py3-none-any.whl");
            fs::write(&path, &bytes).unwrap();
            // Small limits, so that a bomb is refused rather than inflated.
            let limits = Limits { max_entry_size: 1 << 20, max_total_size: 4 << 20, ..Limits::default() };
            if let Ok(mut a) = Archive::open_with(&path, "fuzz.zip", limits) {
                let entries: Vec<_> = a.files().cloned().collect();
                for e in &entries {
                    let _ = a.copy(e, &mut std::io::sink());
                }
            }
            let manifest = Manifest::parse(origin(), &support::manifest_text(
                support::PY,
                &seed_zips()[1],
                &[("alpha-1.0-py3-none-any.whl".into(), seed_zips()[0].clone())],
            ));
            if let Ok(m) = manifest {
                let _ = crate::job::assemble::wheel::plan(&path, &m.wheels[0], m.python, m.platform);
            }
        });
    }
}

/// A real seal, the seed of the seal property.
fn seed_seal() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| {
        use crate::job::assemble::seal::{SealPackage, SealedFile};
        use crate::mechanism::digest::Sha256Digest;
        let d = Sha256Digest::of(b"x");
        let files = [
            "python.exe",
            "Lib/site-packages/a/__init__.py",
            "Lib/site-packages/a/b.py",
        ]
        .iter()
        .map(|p| SealedFile {
            path: (*p).into(),
            size: 1,
            sha256: Sha256Digest::of(b"1"),
        })
        .collect();
        let seal = Seal::for_test(
            d,
            vec![SealPackage {
                name: "a".into(),
                version: "1".into(),
                wheel: "a-1-py3-none-any.whl".into(),
                sha256: d,
            }],
            files,
        );
        String::from_utf8(seal.to_bytes()).unwrap()
    })
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn a_seal_is_read_and_verified_or_refused(t in text(seed_seal())) {
        bounded("seal", move || {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("Lib/site-packages/a")).unwrap();
            for p in ["python.exe", "Lib/site-packages/a/__init__.py", "Lib/site-packages/a/B.py"] {
                fs::write(dir.path().join(p), "1").unwrap();
            }
            fs::write(dir.path().join("extpy-seal.json"), &t).unwrap();
            if let Ok(v) = verify(dir.path(), VerifyOptions { jobs: 2, strict: false }) {
                let _ = v.render();
                // One file is never both missing and extra.
                for m in &v.missing {
                    assert!(!v.extra.contains(m), "{m} is both missing and extra");
                }
            }
        });
    }
}

/// A real bundle's entries, the seed of the bundle property. Made by the library itself from
/// a cache that already holds every pinned artifact, offline: no binary to run and no TLS to
/// trust, so the property runs the same under the Windows lane's Wine.
fn seed_bundle() -> &'static [(String, Vec<u8>)] {
    static B: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    B.get_or_init(|| {
        let w = support::World::new();
        for bytes in std::iter::once(&w.embed).chain(w.wheels.iter().map(|(_, b)| b)) {
            let blob = w.blob(bytes);
            fs::create_dir_all(blob.parent().unwrap()).unwrap();
            fs::write(&blob, bytes).unwrap();
        }
        let topo = w.path("topology.yaml");
        fs::write(
            &topo,
            "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\vu'\n    cores: [Core1]\n",
        )
        .unwrap();
        let out = w.path("b.zip");
        let mut settings = crate::app::config::Settings::with_defaults(
            Some(w.cache.clone()),
            Some(w.mirror.index_url()),
            Some(w.mirror.python_mirror()),
        )
        .unwrap();
        settings.manifest = Some(w.manifest.clone());
        settings.offline = true;
        let args = crate::app::commands::BundleCreateArgs {
            out: out.clone(),
            topology: Some(topo),
            include_self: false,
            include_exe: None,
            sign: None,
            passphrase_env: None,
        };
        crate::app::commands::bundle_create(
            &settings,
            args,
            &crate::base::report::Reporter::silent(),
        )
        .expect("a bundle from a full cache, offline");
        let mut z = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).unwrap();
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut v).unwrap();
                (f.name().unwrap().to_string(), v)
            })
            .collect()
    })
}

fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        // A name the writer refuses is skipped: the reader's own names are fuzzed above.
        if z.start_file(name.as_str(), opts).is_ok() {
            z.write_all(bytes).unwrap();
        }
    }
    z.finish().unwrap();
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn a_bundle_is_opened_or_refused(
        which in 0usize..8,
        edits in proptest::collection::vec(edit(), 0..10),
        rename in proptest::option::of(0..TOKENS.len()),
    ) {
        bounded("bundle", move || {
            let mut entries = seed_bundle().to_vec();
            let i = which % entries.len();
            entries[i].1 = apply(&entries[i].1, &edits);
            if let Some(t) = rename {
                entries[i].0.push_str(TOKENS[t]);
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("b.zip");
            write_zip(&path, &entries);
            if let Ok((bundle, check)) = crate::job::bundle::open(&path, &[]) {
                let _ = check.render();
                if let Some(mut b) = bundle {
                    let _ = b.extract_artifacts(dir.path());
                }
            }
        });
    }
}

// Inputs that once broke a parser (found by the properties above), kept as plain tests.

#[test]
fn a_project_name_ending_in_a_separator_is_refused_not_a_panic() {
    // pep508_rs 0.9.2 panics on these ("`PackageName` validation should match PEP 508
    // parsing"); a manifest's requires: or an index's Requires-Dist could hold them.
    for bad in [
        "cryptogcryptograph_{=2.5,<48",
        "msal- >=1.39",
        "a. ; python_version > '3'",
        "x_[y]",
    ] {
        let e = crate::model::manifest::requirement(bad).unwrap_err();
        assert!(e.contains("must end with a letter or digit"), "{bad}: {e}");
        let text = MANIFEST.replace("  - msal>=1.39 ", &format!("  - {bad:?} "));
        assert_ne!(text, MANIFEST);
        let e = Manifest::parse(origin(), &text).unwrap_err().to_string();
        assert!(
            e.contains("is not a PEP 508 requirement") && e.contains("requires[0]"),
            "{e}"
        );
    }
    // The same check on an extra ("`ExtraName` validation should match PEP 508 parsing"):
    // the second was found by a random run of the property above.
    for bad in [
        "msal[broker- ]>=1",
        "cryptography[ryptogon-]",
        "cryptography [ryptogon- ,x]>=2.5",
        "a [x, y_]",
        "a[x.,y]",
    ] {
        let e = crate::model::manifest::requirement(bad).unwrap_err();
        assert!(e.contains("the extra"), "{bad}: {e}");
    }
    // pep508_rs 0.9.2 also slices inside a non-ASCII character of a marker and panics.
    for bad in [
        "cryptography>=2.5 ; python_version >= \"3.8\" an\u{e9} x",
        "a ; os_name == '\u{2603}'",
    ] {
        let e = crate::model::manifest::requirement(bad).unwrap_err();
        assert!(e.contains("write requirements in ASCII"), "{bad}: {e}");
    }
    // A wheel's Requires-Dist goes through the same parser in build's completeness check.
    let env = Environment::target(
        crate::model::manifest::PythonVersion::from_str("3.12.10").unwrap(),
        crate::model::manifest::Platform::WinAmd64,
    );
    let p = Package {
        name: "a".into(),
        version: "1".into(),
        requires: vec!["msal- >=1".into()],
    };
    let g = graph(&[p], &env);
    assert!(
        format!("{g:?}").contains("must end with a letter or digit"),
        "{g:?}"
    );
    for good in [
        "msal>=1.39",
        "a",
        "a.b-c_d[x]>=1 ; python_version >= '3.8'",
        "  pyjwt[crypto]",
        "a [x , y-z ]",
    ] {
        crate::model::manifest::requirement(good).unwrap();
    }
}

//! `runtime_trust: system`: the build installs the pinned truststore wheel and a `.pth` hook
//! in site-packages, both sealed; a real CPython that processes that site-packages the way
//! the embeddable one does (`site`) then has requests verifying TLS through truststore, that
//! is against the system store instead of certifi's bundle.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{PY, WheelSpec, World, embeddable, manifest_text};

const HOOK: &str = "extpy-truststore.pth";
const HOOK_TEXT: &str = "import truststore; truststore.inject_into_ssl()\n";

/// A world whose manifest pins `wheels` in `wheels:` and `truststore` in its own section,
/// with `runtime_trust: <trust>` (left out when empty).
fn world(wheels: Vec<(String, Vec<u8>)>, truststore: (String, Vec<u8>), trust: &str) -> World {
    let embed = embeddable(PY);
    let mut served = wheels.clone();
    served.push(truststore.clone());
    let w = World::with_artifacts(embed.clone(), served);
    let mut text = manifest_text(PY, &embed, &wheels);
    if !trust.is_empty() {
        text.push_str(&format!("runtime_trust: {trust}\n"));
    }
    text.push_str(&format!(
        "truststore:\n  file: {}\n  sha256: {}\n",
        truststore.0,
        support::sha256_hex(&truststore.1)
    ));
    fs::write(&w.manifest, text).unwrap();
    w
}

/// A stand-in truststore whose `inject_into_ssl` replaces `ssl.SSLContext` as the real one
/// does (the test with the real wheels is below).
fn fake_truststore() -> (String, Vec<u8>) {
    let mut spec = WheelSpec::pure("truststore", "0.10.5");
    spec.files = vec![(
        "truststore/__init__.py".into(),
        b"import ssl\n\nclass SSLContext(ssl.SSLContext):\n    pass\n\ndef inject_into_ssl():\n    ssl.SSLContext = SSLContext\n"
            .to_vec(),
    )];
    (spec.filename(), spec.build())
}

fn certifi() -> (String, Vec<u8>) {
    let mut spec = WheelSpec::pure("certifi", "2025.10.5");
    spec.files.push((
        "certifi/cacert.pem".into(),
        b"# no roots in this test bundle\n".to_vec(),
    ));
    (spec.filename(), spec.build())
}

fn site_packages(dest: &Path) -> PathBuf {
    dest.join("Lib").join("site-packages")
}

/// Runs `code` in a real CPython whose only site directory is `site` (processed by `site`,
/// .pth files included, as the embeddable Python processes its `Lib\site-packages` once its
/// `._pth` enables `import site`), with `env` set.
fn python(site: &Path, code: &str, env: &[(&str, &Path)]) -> std::process::Output {
    let script = format!(
        "import site, sys\nsite.addsitedir({:?})\n{code}",
        site.display().to_string()
    );
    let mut c = Command::new("python3");
    c.args(["-I", "-S", "-c", &script]);
    for v in [
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("python3 must be installed for this test")
}

#[test]
fn runtime_trust_system_installs_truststore_and_a_sealed_hook() {
    let w = world(vec![certifi()], fake_truststore(), "system");
    let dest = w.path("dist");
    let r = w.run(&["build", dest.to_str().unwrap()]).ok();
    assert!(
        r.stderr.contains(
            "Runtime trust: requests and msal verify TLS against the Windows certificate store"
        ) || r.stdout.contains(
            "Runtime trust: requests and msal verify TLS against the Windows certificate store"
        ),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let site = site_packages(&dest);
    assert_eq!(fs::read_to_string(site.join(HOOK)).unwrap(), HOOK_TEXT);
    assert!(site.join("truststore").join("__init__.py").is_file());
    // The seal covers the hook and the wheel.
    let seal: serde_json::Value =
        serde_json::from_slice(&fs::read(dest.join("extpy-seal.json")).unwrap()).unwrap();
    let sealed = seal["files"].to_string();
    assert!(
        sealed.contains(&format!("Lib/site-packages/{HOOK}"))
            && sealed.contains(&support::sha256_hex(HOOK_TEXT.as_bytes())),
        "{sealed}"
    );
    assert!(
        seal["packages"].to_string().contains("truststore"),
        "{}",
        seal["packages"]
    );
    // The SBOM lists it among the installed wheels.
    let sbom = fs::read_to_string(dest.join("extpy-sbom.cdx.json")).unwrap();
    assert!(sbom.contains("pkg:pypi/truststore@0.10.5"), "{sbom}");
    w.run(&["verify", dest.to_str().unwrap()]).ok();
    fs::write(site.join(HOOK), "import os\n").unwrap();
    let r = w.run(&["verify", dest.to_str().unwrap()]).code(3);
    assert!(r.stdout.contains(HOOK), "{}", r.stdout);

    // The hook runs in a real CPython: ssl.SSLContext is truststore's before anything else.
    fs::write(site.join(HOOK), HOOK_TEXT).unwrap();
    let out = python(
        &site,
        "import ssl, truststore\nprint(ssl.SSLContext is truststore.SSLContext)",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "True");
}

#[test]
fn the_default_installs_neither_truststore_nor_the_hook() {
    let w = world(vec![certifi()], fake_truststore(), "");
    let dest = w.path("dist");
    let r = w.run(&["build", dest.to_str().unwrap()]).ok();
    assert!(
        format!("{}{}", r.stdout, r.stderr)
            .contains("Runtime trust: requests and msal verify TLS against certifi's bundle"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let site = site_packages(&dest);
    assert!(!site.join(HOOK).exists());
    assert!(!site.join("truststore").exists());
    assert!(
        !w.mirror
            .requests()
            .iter()
            .any(|r| format!("{r:?}").contains("truststore")),
        "the unused pin is not even downloaded"
    );
}

#[test]
fn runtime_trust_errors_name_the_manifest_line() {
    let w = world(vec![certifi()], fake_truststore(), "windows");
    let r = w.run(&["build", w.path("dist").to_str().unwrap()]).code(2);
    assert!(
        r.stderr.contains("manifest.yaml:")
            && r.stderr.contains("unknown runtime_trust \"windows\""),
        "{}",
        r.stderr
    );
    assert!(!w.path("dist").exists());
}

/// The real thing: the shipped manifest's requests, urllib3, idna, certifi,
/// charset_normalizer and truststore wheels (downloaded by scripts/test.sh with their pinned
/// sha256), built by extpy with and without `runtime_trust: system`, then imported by a real
/// CPython (3.10 or later) that asks the local HTTPS mirror for a page. The mirror's test CA
/// is in the "system store" (SSL_CERT_FILE, which OpenSSL and so truststore read on Linux)
/// and not in certifi's bundle: with the hook requests trusts it, without it requests fails.
#[test]
#[ignore = "needs python3 >= 3.10 and the real wheels scripts/test.sh downloads (EXTPY_TEST_REAL_WHEELS)"]
fn requests_in_the_built_distribution_uses_truststore_under_a_real_cpython() {
    let dir = std::env::var_os("EXTPY_TEST_REAL_WHEELS")
        .map(PathBuf::from)
        .expect("EXTPY_TEST_REAL_WHEELS is not set: run scripts/test.sh");
    let mut wheels = Vec::new();
    let mut truststore = None;
    for e in fs::read_dir(&dir).expect("the real wheels folder") {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".whl") {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        if name.starts_with("truststore-") {
            truststore = Some((name, bytes));
        } else {
            wheels.push((name, bytes));
        }
    }
    wheels.sort();
    assert_eq!(wheels.len(), 5, "{wheels:?}");
    let truststore = truststore.expect("the truststore wheel");
    let probe = |trust: &str| {
        let w = world(wheels.clone(), truststore.clone(), trust);
        w.mirror.put("/hello", b"hello from the mirror".to_vec());
        let dest = w.path("dist");
        w.run(&["build", dest.to_str().unwrap()]).ok();
        let site = site_packages(&dest);
        let url = format!("{}/hello", w.mirror.url());
        let code = format!(
            "import ssl, requests, urllib3.util.ssl_\n\
             try:\n    import truststore\n    injected = ssl.SSLContext is truststore.SSLContext\n\
             except ImportError:\n    injected = False\n\
             print('injected', injected, urllib3.util.ssl_.SSLContext.__module__)\n\
             try:\n    print('answer', requests.get({url:?}, timeout=10).text)\n\
             except requests.exceptions.SSLError as e:\n    print('refused', 'CERTIFICATE_VERIFY_FAILED' in str(e))\n"
        );
        let out = python(&site, &code, &[("SSL_CERT_FILE", &w.ca_pem)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let system = probe("system");
    assert!(
        system.contains("injected True truststore._api"),
        "ssl's and urllib3's SSLContext are truststore's: {system}"
    );
    assert!(system.contains("answer hello from the mirror"), "{system}");
    let certifi = probe("certifi");
    assert!(certifi.contains("injected False ssl"), "{certifi}");
    assert!(!certifi.contains("answer"), "{certifi}");
    assert!(
        certifi.contains("refused True"),
        "certifi's bundle does not hold the test CA: {certifi}"
    );
}

/// The shipped upgrade manifests, built for real: `manifests/python-3.13-win-amd64.yaml` and
/// `python-3.14-win-amd64.yaml` with every wheel they pin (downloaded by scripts/test.sh by
/// their pinned sha256, for that CPython), served by the local mirror. The embeddable zip is
/// the one pin replaced (python.org's zip cannot be fetched here): a synthetic zip of that
/// version, whose `pythonXY._pth` names the version. pip is the oracle: the built
/// site-packages equals, file by file, what `pip install --target` makes of the same wheels for
/// that CPython; and its pure-Python part (requests, idna, urllib3, certifi, pycparser)
/// imports under a real CPython, requests fetching a page from the mirror.
#[test]
#[ignore = "needs python3 -m pip and the wheels scripts/test.sh downloads (EXTPY_TEST_UPGRADE_WHEELS)"]
fn the_shipped_3_13_and_3_14_manifests_build_with_their_real_wheels_as_pip_installs_them() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for line in ["3.13", "3.14"] {
        let shipped =
            fs::read_to_string(repo.join(format!("manifests/python-{line}-win-amd64.yaml")))
                .unwrap();
        let field = |key: &str| {
            shipped
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .map(str::trim)
                .unwrap_or_else(|| panic!("no {key} in the {line} manifest"))
                .to_string()
        };
        let version = field("version:");
        // The first file: is the embeddable zip's, under either of python.org's names.
        let embed_file = field("file:");
        assert!(
            [
                format!("python-{version}-embed-amd64.zip"),
                format!("python-{version}-embeddable-amd64.zip"),
            ]
            .contains(&embed_file),
            "{line}: {embed_file}"
        );
        let wheels = support::upgrade_wheels(line);
        let pinned = shipped.matches(".whl\n").count() - 1; // all but truststore's
        assert_eq!(wheels.len(), pinned, "{line}: {:?}", names(&wheels));
        let abi = format!("cp{}", line.replace('.', ""));
        assert!(
            wheels
                .iter()
                .any(|(n, _)| n.contains(&format!("-{abi}-{abi}-win_amd64"))),
            "{line}: the native wheels are built for {abi}: {:?}",
            names(&wheels)
        );

        let w = World::with_artifacts(embeddable(PY), wheels.clone());
        let embed = embeddable(&version);
        w.mirror.add_python(&version, &embed_file, embed.clone());
        let old_sha = field("sha256:");
        let text = shipped.replacen(&old_sha, &support::sha256_hex(&embed), 1);
        fs::write(&w.manifest, text).unwrap();
        let dest = w.path("dist");
        w.run(&["build", dest.to_str().unwrap()]).ok();
        let seal = fs::read_to_string(dest.join("extpy-seal.json")).unwrap();
        assert!(
            seal.contains(&format!("cem-external-python-{line}")),
            "{seal}"
        );
        let pth = fs::read_to_string(dest.join(format!("python{}._pth", &abi[2..]))).unwrap();
        assert!(pth.contains(&format!("python{}.zip", &abi[2..])), "{pth}");
        assert!(
            pth.contains("Lib\\site-packages") && pth.contains("import site"),
            "{pth}"
        );

        let found = w.path("links");
        fs::create_dir_all(&found).unwrap();
        for (n, b) in &wheels {
            fs::write(found.join(n), b).unwrap();
        }
        let target = w.path("pip-target");
        let projects: Vec<&str> = wheels
            .iter()
            .map(|(n, _)| n.split('-').next().unwrap())
            .collect();
        support::pip_install_target(&target, &found, line, &projects);
        let ours = support::site_packages_as_pip_compares(&site_packages(&dest));
        let pips = support::site_packages_as_pip_compares(&target);
        assert_eq!(
            ours.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            pips.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            "{line}: the same files as pip"
        );
        assert!(ours == pips, "{line}: the same bytes as pip");
        assert!(
            ours.iter().any(|(p, _)| p.ends_with(".pyd")),
            "{line}: native modules installed"
        );

        w.mirror.put("/hello", b"hello from the mirror".to_vec());
        let url = format!("{}/hello", w.mirror.url());
        let code = format!(
            "import requests, idna, urllib3, certifi, pycparser\n\
             print('answer', requests.get({url:?}, timeout=10, verify={:?}).text)\n",
            w.ca_pem.display().to_string()
        );
        let out = python(&site_packages(&dest), &code, &[]);
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("answer hello from the mirror"),
            "{line}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

fn names(wheels: &[(String, Vec<u8>)]) -> Vec<&str> {
    wheels.iter().map(|(n, _)| n.as_str()).collect()
}

//! Shared test support: certificates, the local HTTPS mirror, artifact builders, and a
//! `World` that wires them to the extpy binary. No test touches the internet.

pub mod fixtures;
pub mod mail;
pub mod mirror;
pub mod pki;
pub mod schema;
pub mod servers;
pub mod sigstore;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub use fixtures::{WheelSpec, embeddable, manifest_text, pe_image};
use mirror::Mirror;
pub use pki::Ca;

pub const PY: &str = "3.12.10";

/// The environment variables a test run must not inherit.
const ISOLATE: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "PIP_INDEX_URL",
    "SSL_CERT_FILE",
    "EXTPY_MANIFEST",
    "EXTPY_CACHE_DIR",
    "EXTPY_INDEX_URL",
    "EXTPY_PYTHON_MIRROR",
    "EXTPY_CA_CERT",
    "EXTPY_OFFLINE",
    "EXTPY_JOBS",
    "EXTPY_JSON",
    "EXTPY_TIMEOUT",
    "EXTPY_RETRIES",
    "EXTPY_SELFTEST_PYTHON",
    "EXTPY_WATCH_RUNNER",
    "EXTPY_WINDOWS_PROXY_SETTINGS",
    "EXTPY_AUTHORITY_URL",
    "EXTPY_INDEX_USERNAME",
    "EXTPY_INDEX_PASSWORD",
    "NETRC",
];

/// A finished extpy run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "extpy failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the exit code and returns self.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The stdout as JSON: one document whose first key is `extpy_version`, matching the
    /// schema of its kind in `schemas/`.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let doc = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout));
        let first = self.stdout.lines().nth(1).unwrap_or_default();
        assert_eq!(
            first,
            format!("  \"extpy_version\": \"{}\",", extpy_version()),
            "a JSON document starts with extpy_version"
        );
        schema::check(&doc);
        doc
    }
}

/// The extpy binary under test: `CARGO_BIN_EXE_extpy` when set, else the `extpy` that cargo
/// builds next to the test executable's `deps` folder before it runs integration tests.
pub fn extpy_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("CARGO_BIN_EXE_extpy") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test executable under target/<profile>/deps");
        let bin = profile.join(format!("extpy{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "no extpy binary at {}: run the tests through cargo test, which builds it",
            bin.display()
        );
        bin
    })
}

/// The version the binary under test reports (`extpy --version`), for the checks on every
/// JSON document's first line.
pub fn extpy_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let out = Command::new(extpy_bin())
            .arg("--version")
            .output()
            .expect("run extpy --version");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("extpy --version printed {text:?}"))
            .to_string()
    })
}

/// The extpy binary with an isolated environment.
pub fn extpy() -> Command {
    let mut c = Command::new(extpy_bin());
    for v in ISOLATE {
        c.env_remove(v);
    }
    c.env("EXTPY_NO_PROGRESS", "1");
    c
}

/// Runs a command to its end.
pub fn run(mut c: Command) -> Run {
    Run::from(c.output().expect("run extpy"))
}

/// A synthetic distribution served by a local HTTPS mirror, with a manifest and a cache.
pub struct World {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    pub ca_pem: PathBuf,
    pub mirror: Mirror,
    pub manifest: PathBuf,
    pub cache: PathBuf,
    pub embed: Vec<u8>,
    pub wheels: Vec<(String, Vec<u8>)>,
}

impl World {
    /// The standard world: an embeddable zip and three small wheels.
    #[expect(
        clippy::new_without_default,
        reason = "a World starts a server: it is made, not defaulted"
    )]
    pub fn new() -> Self {
        Self::with_wheels(&Self::standard_wheels())
    }

    /// The standard world, its mirror offering HTTP/2 ([`Mirror::start_http2`]).
    pub fn http2() -> Self {
        let wheels: Vec<(String, Vec<u8>)> = Self::standard_wheels()
            .iter()
            .map(|s| (s.filename(), s.build()))
            .collect();
        Self::with_artifacts_http2(embeddable(PY), wheels)
    }

    /// A world serving these exact artifacts from a mirror offering HTTP/2.
    pub fn with_artifacts_http2(embed: Vec<u8>, wheels: Vec<(String, Vec<u8>)>) -> Self {
        Self::serving(embed, wheels, |config| Mirror::start_http2(0, &config))
    }

    fn standard_wheels() -> Vec<WheelSpec> {
        vec![
            WheelSpec::pure("alpha", "1.0"),
            WheelSpec::pure("beta_pkg", "2.1"),
            WheelSpec::pure("gamma", "0.3"),
        ]
    }

    /// A world serving the given wheels.
    pub fn with_wheels(specs: &[WheelSpec]) -> Self {
        let wheels: Vec<(String, Vec<u8>)> =
            specs.iter().map(|s| (s.filename(), s.build())).collect();
        Self::with_artifacts(embeddable(PY), wheels)
    }

    /// A world serving these exact artifacts.
    pub fn with_artifacts(embed: Vec<u8>, wheels: Vec<(String, Vec<u8>)>) -> Self {
        Self::serving(embed, wheels, |config| Mirror::start(Some(config)))
    }

    /// A world whose mirror `start` starts from the server's TLS configuration.
    fn serving(
        embed: Vec<u8>,
        wheels: Vec<(String, Vec<u8>)>,
        start: impl FnOnce(std::sync::Arc<rustls::ServerConfig>) -> Mirror,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::root("extpy test root CA");
        let ca_pem = ca.write_pem(dir.path(), "test-root.pem");
        let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
        let mirror = start(leaf.server_config(&[]));
        mirror.add_python(PY, &format!("python-{PY}-embed-amd64.zip"), embed.clone());
        for (file, bytes) in &wheels {
            mirror.add_wheel(file, bytes.clone());
        }
        let manifest = dir.path().join("manifest.yaml");
        std::fs::write(&manifest, manifest_text(PY, &embed, &wheels)).expect("write manifest");
        let cache = dir.path().join("cache");
        Self {
            dir,
            ca,
            ca_pem,
            mirror,
            manifest,
            cache,
            embed,
            wheels,
        }
    }

    /// A path inside the world's temporary folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// extpy with this world's manifest, cache, mirror and CA.
    pub fn cmd(&self) -> Command {
        let mut c = extpy();
        c.arg("--manifest").arg(&self.manifest);
        c.arg("--cache-dir").arg(&self.cache);
        c.arg("--python-mirror").arg(self.mirror.python_mirror());
        c.arg("--index-url").arg(self.mirror.index_url());
        c.arg("--ca-cert").arg(&self.ca_pem);
        c
    }

    /// Runs extpy with `args` after the world's options.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut c = self.cmd();
        c.args(args);
        run(c)
    }

    /// Number of artifacts.
    pub fn count(&self) -> usize {
        self.wheels.len() + 1
    }

    /// The cache path of a blob.
    pub fn blob(&self, bytes: &[u8]) -> PathBuf {
        self.cache.join("sha256").join(sha256_hex(bytes))
    }

    /// The embeddable zip's URL path on the mirror.
    pub fn embed_path(&self) -> String {
        format!("/python/{PY}/python-{PY}-embed-amd64.zip")
    }

    /// Asserts that every artifact is in the cache with exactly its bytes.
    pub fn assert_all_cached(&self) {
        for (name, bytes) in self
            .wheels
            .iter()
            .map(|(n, b)| (n.as_str(), b))
            .chain([("embeddable", &self.embed)])
        {
            let blob = std::fs::read(self.blob(bytes))
                .unwrap_or_else(|e| panic!("{name} not cached: {e}"));
            assert!(blob == *bytes, "{name}: the cached copy is the pinned file");
        }
    }

    /// Asserts that the mirror sent every artifact byte, and at most 1.2x their sum in all
    /// (`context`: what to show when it did not).
    pub fn assert_sent_within_1_2x(&self, context: &str) {
        let sizes: u64 =
            self.wheels.iter().map(|(_, b)| b.len() as u64).sum::<u64>() + self.embed.len() as u64;
        let sent = self.mirror.body_bytes_sent();
        assert!(sent >= sizes, "the mirror sent {sent} bytes of {sizes}");
        assert!(
            sent * 10 <= sizes * 12,
            "the mirror sent {sent} bytes for {sizes} bytes of artifacts (more than 1.2x)\n{context}"
        );
    }

    /// Pins a publisher for the artifact with these bytes: `yaml` is the value of its
    /// `provenance:` field (`none`, `{repository: .., workflow: ..}`, `{identity: .., issuer: ..}`).
    pub fn pin_provenance(&self, bytes: &[u8], yaml: &str) {
        let text = std::fs::read_to_string(&self.manifest).expect("read manifest");
        let pin = format!("sha256: {}\n", sha256_hex(bytes));
        let at = text.find(&pin).expect("the pin is in the manifest");
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let indent = text[line_start..at].to_string();
        // A `provenance:` among the entry's other keys (as `extpy lock` writes it) goes.
        let after = at + pin.len();
        let mut rest: Vec<&str> = text[after..].split_inclusive('\n').collect();
        let entry_len = rest
            .iter()
            .position(|l| !l.starts_with(&indent) || l[indent.len()..].starts_with([' ', '-']))
            .unwrap_or(rest.len());
        if let Some(i) = rest[..entry_len]
            .iter()
            .position(|l| l[indent.len()..].starts_with("provenance:"))
        {
            rest.remove(i);
        }
        let text = format!(
            "{}{pin}{indent}provenance: {yaml}\n{}",
            &text[..at],
            rest.concat()
        );
        std::fs::write(&self.manifest, text).expect("write manifest");
    }

    /// Serves `doc` as wheel `i`'s PEP 740 provenance at the index's integrity endpoint.
    pub fn serve_provenance(&self, i: usize, doc: &str) {
        let file = &self.wheels[i].0;
        let mut parts = file.split('-');
        let (name, version) = (parts.next().unwrap(), parts.next().unwrap());
        self.mirror.put(
            &format!(
                "/integrity/{}/{version}/{file}/provenance",
                normalize_name(name)
            ),
            doc.as_bytes().to_vec(),
        );
    }

    /// Serves `bundle` as the embeddable zip's Sigstore bundle (`<zip>.sigstore`).
    pub fn serve_embeddable_bundle(&self, bundle: &str) {
        self.mirror.put(
            &format!("{}.sigstore", self.embed_path()),
            bundle.as_bytes().to_vec(),
        );
    }

    /// Gives every artifact of the manifest a `url:` and `size:`, as `extpy lock` writes.
    pub fn pin_urls_and_sizes(&self) {
        let mut text = std::fs::read_to_string(&self.manifest).expect("read manifest");
        let embed_url = format!(
            "{}{PY}/python-{PY}-embed-amd64.zip",
            self.mirror.python_mirror()
        );
        let artifacts = self
            .wheels
            .iter()
            .map(|(n, b)| (format!("{}/files/{n}", self.mirror.url()), b))
            .chain([(embed_url, &self.embed)]);
        for (url, bytes) in artifacts {
            let pin = format!("sha256: {}\n", sha256_hex(bytes));
            let at = text.find(&pin).expect("the pin is in the manifest");
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let indent = text[line_start..at].to_string();
            let pinned = format!("{pin}{indent}url: {url}\n{indent}size: {}\n", bytes.len());
            text = text.replacen(&pin, &pinned, 1);
        }
        std::fs::write(&self.manifest, text).expect("write manifest");
    }
}

/// Files under `root` (relative, `/`-separated, sorted).
pub fn tree(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    out.sort();
    out
}

/// True when this machine lets a test mount a small tmpfs in a private user and mount
/// namespace (`unshare -rm`): the way tests fill a disk on purpose.
pub fn can_mount_tmpfs() -> bool {
    std::process::Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs /tmp && true",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `extpy 1.2.3` becomes `extpy [version]`: a release does not rewrite the snapshots.
pub fn redact_version(text: &str) -> String {
    const NAME: &str = "extpy ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(NAME) {
        let (head, tail) = rest.split_at(i + NAME.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || ".+-".contains(c)))
            .unwrap_or(tail.len());
        let word = tail[..end].trim_end_matches('.');
        if word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('.') {
            out.push_str("[version]");
            rest = &tail[word.len()..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Compares `actual` (its version redacted) with `tests/snapshots/<name>`; with `EXTPY_UPDATE_SNAPSHOTS=1` writes
/// it instead (then review the diff before committing).
#[track_caller]
pub fn assert_snapshot(name: &str, actual: &str) {
    let actual = redact_version(actual);
    let actual = actual.as_str();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../snapshots")
        .join(name);
    if std::env::var_os("EXTPY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with EXTPY_UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its snapshot at line {}:\n  expected: {:?}\n  actual:   {:?}\n(re-run with EXTPY_UPDATE_SNAPSHOTS=1 if the change is intended)",
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>")
        );
    }
}

/// Runs the shell `script` in a private user and mount namespace where a tmpfs mounted with
/// `options` (e.g. `size=1m`, `size=1m,ro`) sits at `mnt`; `$EXTPY` names the extpy binary.
/// Returns stdout and stderr.
pub fn in_tmpfs(mnt: &Path, options: &str, script: &str) -> (String, String) {
    std::fs::create_dir_all(mnt).expect("mount point");
    let full = format!(
        "mount -t tmpfs -o {options} tmpfs '{}' || exit 90\n{script}",
        mnt.display()
    );
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", &full])
        .env("EXTPY", extpy_bin())
        // A script that forgets its mirror must fail on a dead port, never reach the internet.
        .env("EXTPY_PYTHON_MIRROR", "https://127.0.0.1:9/")
        .env("EXTPY_INDEX_URL", "https://127.0.0.1:9/simple/")
        .output()
        .expect("run unshare");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lowercase hex SHA-256 of `bytes`, computed here rather than by extpy's own digest code.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A project name normalized as PEP 503 says: runs of `-`, `_` and `.` become one `-`,
/// lowercase. The mirror's own copy, so it does not borrow the code under test.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Rewrites `dest`'s `extpy-seal.json` so that it agrees with the files on disk again, as
/// someone who edits a tree and its seal together would: every file for which `keep` holds
/// is listed with its size and sha256, and the seal's digest is recomputed. Only the seal's
/// published format is used (the digest is the sha256 of the compact JSON of every field
/// before `digest`, in order), not extpy's code.
pub fn reseal(dest: &Path, keep: impl Fn(&str) -> bool) {
    const SEAL: &str = "extpy-seal.json";
    let text = std::fs::read_to_string(dest.join(SEAL)).expect("read the seal");
    let compact = minify_json(&text);
    let head = compact
        .find(",\"files\":")
        .map(|i| &compact[..i])
        .expect("a seal lists its files after format, manifest, python and packages");
    let files: Vec<String> = tree(dest)
        .into_iter()
        .filter(|p| p != SEAL && keep(p))
        .map(|p| {
            let bytes = std::fs::read(dest.join(&p)).expect("read a sealed file");
            format!(
                "{{\"path\":{},\"size\":{},\"sha256\":\"{}\"}}",
                serde_json::Value::String(p.clone()),
                bytes.len(),
                sha256_hex(&bytes)
            )
        })
        .collect();
    let body = format!("{head},\"files\":[{}]}}", files.join(","));
    let digest = sha256_hex(body.as_bytes());
    let sealed = format!("{},\"digest\":\"{digest}\"}}\n", &body[..body.len() - 1]);
    std::fs::write(dest.join(SEAL), sealed).expect("write the seal");
}

/// JSON without the whitespace between tokens: serde_json's compact form of a pretty
/// document it wrote.
fn minify_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The step `id` of a runbook's JSON (`extpy plan --format json`); panics naming it when the
/// plan has none.
pub fn plan_step(plan: &serde_json::Value, id: &str) -> serde_json::Value {
    plan["steps"]
        .as_array()
        .expect("a plan has steps")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("the plan has no step {id}"))
}

/// `pip install --target TARGET --no-deps --no-index` of `projects` from the wheels in
/// `links`, for CPython `python` (`3.12`) on win_amd64: pip is the oracle of what an install
/// A stand-in for the Windows programs `extpy watch` runs (`EXTPY_WATCH_RUNNER`): it logs
/// each call's arguments into the returned log (a line a call, each argument after a `|`),
/// and fails with schtasks' words when the call contains `$WATCH_FAIL`. Returns (the
/// script, its log).
pub fn watch_runner(w: &World) -> (PathBuf, PathBuf) {
    let log = w.path("runner.log");
    let script = w.path("runner.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '|%s' \"$@\" >> '{}'\necho >> '{}'\nif [ -n \"$WATCH_FAIL\" ]; then case \"$*\" in *\"$WATCH_FAIL\"*) echo 'ERROR: Access is denied.' >&2; exit 1;; esac; fi\necho 'SUCCESS: done'\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (script, log)
}

/// The real wheels scripts/test.sh downloads for a shipped manifest's line (`3.13`, `3.14`),
/// by their pinned sha256, into `$EXTPY_TEST_UPGRADE_WHEELS/<line>`: `(file, bytes)` sorted
/// by name. Panics, naming what to run, when they are not there.
pub fn upgrade_wheels(line: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(
        std::env::var_os("EXTPY_TEST_UPGRADE_WHEELS")
            .expect("EXTPY_TEST_UPGRADE_WHEELS is not set: run scripts/test.sh"),
    )
    .join(line);
    let mut wheels: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    wheels.sort();
    wheels
}

/// of those wheels holds. Fails the test when pip does.
pub fn pip_install_target(target: &Path, links: &Path, python: &str, projects: &[&str]) {
    let abi = format!("cp{}", python.replace('.', ""));
    let out = Command::new("python3")
        .args(["-m", "pip", "--isolated", "install", "--quiet", "--no-deps"])
        .args([
            "--no-index",
            "--only-binary=:all:",
            "--platform",
            "win_amd64",
        ])
        .args([
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--abi",
        ])
        .arg(&abi)
        .arg("--target")
        .arg(target)
        .arg("--find-links")
        .arg(links)
        .args(projects)
        .output()
        .expect("python3 -m pip must be installed for this test");
    assert!(
        out.status.success(),
        "pip failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under a site-packages `root` with its bytes, sorted, less what extpy and pip
/// write differently by design (INSTALLER, RECORD, REQUESTED, caches, and the console-script
/// launchers pip generates in `bin/`): the two sides of a comparison with pip.
pub fn site_packages_as_pip_compares(root: &Path) -> Vec<(String, Vec<u8>)> {
    tree(root)
        .into_iter()
        .filter(|p| {
            !(p.contains("__pycache__/")
                || p.starts_with("bin/")
                || p.ends_with(".dist-info/INSTALLER")
                || p.ends_with(".dist-info/RECORD")
                || p.ends_with(".dist-info/REQUESTED"))
        })
        .map(|p| {
            let bytes = std::fs::read(root.join(&p)).expect("read");
            (p, bytes)
        })
        .collect()
}

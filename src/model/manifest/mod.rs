//! The distribution manifest: which embeddable CPython and which wheels, each pinned by
//! file name and sha256; parsed at the edge into checked types.

pub(crate) mod platform;
pub(crate) mod wheel;
pub(crate) mod yaml;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder, Requirement, VersionOrUrl};

use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::sign::TrustedKey;
use crate::mechanism::sigstore::Identity;
pub(crate) use platform::Platform;
pub use platform::PythonVersion;
pub(crate) use wheel::{WheelFilename, normalize_name};
pub(crate) use yaml::{InputError, Origin};

/// The manifest shipped with extpy and used when `--manifest` is not given.
pub(crate) const DEFAULT_MANIFEST_NAME: &str = "python-3.12-win-amd64.yaml";
const DEFAULT_MANIFEST_TEXT: &str = include_str!("../../../manifests/python-3.12-win-amd64.yaml");

/// Which certificate authorities the External Python's `requests` and `msal` trust at run
/// time (`runtime_trust:` in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeTrust {
    /// certifi's bundle inside the distribution (what requests does by default).
    #[default]
    Certifi,
    /// The Windows certificate store, through the `truststore` wheel and a `.pth` hook.
    System,
}

impl RuntimeTrust {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeTrust::Certifi => "certifi",
            RuntimeTrust::System => "system",
        }
    }
}

impl FromStr for RuntimeTrust {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "certifi" => Ok(RuntimeTrust::Certifi),
            "system" => Ok(RuntimeTrust::System),
            other => Err(format!(
                "unknown runtime_trust {other:?}; expected certifi (certifi's bundle, the default) or system (the Windows certificate store, through truststore)"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for RuntimeTrust {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(crate::base::parse::ParseVisitor::new(
            "a runtime trust: certifi or system",
        ))
    }
}

/// The project whose wheel `runtime_trust: system` installs.
pub(crate) const TRUSTSTORE_PROJECT: &str = "truststore";

/// The oldest CPython truststore supports.
pub(crate) const TRUSTSTORE_MIN_PYTHON: (u8, u8) = (3, 10);

/// The environment markers are evaluated in: CPython X.Y.Z on Windows.
pub(crate) fn marker_environment(python: PythonVersion, platform: Platform) -> MarkerEnvironment {
    let machine = match platform {
        Platform::WinAmd64 => "AMD64",
        Platform::Win32 => "x86",
        Platform::WinArm64 => "ARM64",
    };
    let full = python.to_string();
    let short = format!("{}.{}", python.major, python.minor);
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: &full,
        os_name: "nt",
        platform_machine: machine,
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system: "Windows",
        platform_version: "",
        python_full_version: &full,
        python_version: &short,
        sys_platform: "win32",
    })
    .expect("a CPython release version is a PEP 440 version")
}

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// The embeddable CPython zip.
    Embeddable,
    /// A wheel.
    Wheel,
}

/// One pinned file of the distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Embeddable zip or wheel.
    pub kind: ArtifactKind,
    /// The file name (also its name in bundles and on mirrors).
    pub file: String,
    /// The pinned digest.
    pub sha256: Sha256Digest,
    /// An explicit URL that overrides the configured sources.
    pub url: Option<Url>,
    /// The manifest line that pins it.
    pub line: Option<usize>,
    /// For wheels: the PEP 503 project name used on the index.
    pub project: Option<String>,
    /// The pinned size in bytes (optional `size:`): a download is stopped the moment it
    /// exceeds it.
    pub size: Option<u64>,
    /// Whose Sigstore signature it must carry (`provenance:`); `None` for `provenance: none`
    /// or no `provenance:` at all (the publisher publishes none, or it was never recorded).
    pub provenance: Option<Identity>,
}

/// Writes a `provenance:` pin as JSON: `"none"`, or the identity's object as the manifest
/// spells it (`{repository, workflow}` or `{identity, issuer}`).
pub(crate) fn serialize_pin<S: serde::Serializer>(
    pin: &Option<Identity>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match pin {
        Some(identity) => identity.serialize(s),
        None => s.serialize_str("none"),
    }
}

/// A `provenance:` pin in words: the identity, or `provenance: none`.
pub(crate) fn describe_pin(pin: &Option<Identity>) -> String {
    match pin {
        Some(identity) => identity.to_string(),
        None => "provenance: none".into(),
    }
}

/// The most a download without a pinned size may send (the largest real artifact, the
/// embeddable zip, is about 11 MB): an endless response is stopped here.
pub(crate) const MAX_UNPINNED_DOWNLOAD: u64 = 512 << 20;

impl Artifact {
    /// The most bytes a download of this artifact may send.
    pub fn download_limit(&self) -> u64 {
        self.size.unwrap_or(MAX_UNPINNED_DOWNLOAD)
    }
}

/// A pinned wheel with its parsed file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    /// The pin.
    pub artifact: Artifact,
    /// The parsed file name.
    pub filename: WheelFilename,
}

/// A validated distribution manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it was read from.
    pub origin: Origin,
    /// Its text as given (bundles carry it unchanged).
    pub text: String,
    /// Its name, part of the identity in seals.
    pub name: String,
    /// The CPython release.
    pub python: PythonVersion,
    /// The Windows platform.
    pub platform: Platform,
    /// The embeddable zip.
    pub embeddable: Artifact,
    /// The wheels, in manifest order.
    pub wheels: Vec<Wheel>,
    /// What CEM needs (`requires:`, PEP 508), which `extpy lock` resolves into the pins.
    pub requires: Vec<Requirement>,
    /// What `requests` and `msal` trust at run time (`runtime_trust:`); with `system` the
    /// truststore wheel is among [`Manifest::wheels`] and the build writes its `.pth` hook.
    pub runtime_trust: RuntimeTrust,
    /// The wheel of the `truststore:` section, as pinned (installed, and among `wheels`, only
    /// with `runtime_trust: system`).
    pub truststore: Option<String>,
    /// The site's public keys (`trusted_keys:`): the bundles and seals a command checks with
    /// this manifest, given on the command line, must be signed by one of them.
    pub trusted_keys: Vec<TrustedKey>,
    /// A digest over the manifest's meaning (not its comments or layout).
    pub digest: Sha256Digest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    schema: u32,
    name: String,
    python: RawPython,
    embeddable: RawArtifact,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    runtime_trust: Option<RuntimeTrust>,
    #[serde(default)]
    truststore: Option<RawArtifact>,
    #[serde(default)]
    wheels: Vec<RawArtifact>,
    #[serde(default)]
    trusted_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPython {
    version: PythonVersion,
    platform: Platform,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifact {
    file: String,
    sha256: Sha256Digest,
    #[serde(default)]
    url: Option<Url>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    provenance: Option<RawProvenance>,
}

/// `provenance:` as written: `none`, `{repository, workflow}` (a GitHub Trusted Publisher)
/// or `{identity, issuer}` (a Sigstore signer such as a CPython release manager).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawProvenance {
    Word(String),
    GitHub(RawGitHub),
    Signer(RawSigner),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitHub {
    repository: String,
    workflow: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    identity: String,
    issuer: String,
}

/// The checked identity of a `provenance:` field.
fn provenance_of(
    origin: &Origin,
    text: &str,
    field: &str,
    file: &str,
    raw: Option<RawProvenance>,
) -> Result<Option<Identity>, InputError> {
    let bad = |msg: String| {
        InputError::at(origin, yaml::locate(text, file, 0), field, msg).with_help(
            "write `provenance: none`, `provenance: {repository: OWNER/NAME, workflow: FILE.yml}` or `provenance: {identity: SIGNER, issuer: URL}` (`extpy lock` writes it)",
        )
    };
    match raw {
        None => Ok(None),
        Some(RawProvenance::Word(w)) if w == "none" => Ok(None),
        Some(RawProvenance::Word(w)) => Err(bad(format!("{w:?} is not a provenance"))),
        Some(RawProvenance::GitHub(RawGitHub {
            repository,
            workflow,
        })) => {
            let parts: Vec<&str> = repository.split('/').collect();
            if parts.len() != 2
                || parts.iter().any(|p| p.is_empty())
                || workflow.contains('/')
                || workflow.is_empty()
            {
                return Err(bad(format!(
                    "repository {repository:?} must be OWNER/NAME and workflow {workflow:?} a file name"
                )));
            }
            Ok(Some(Identity::GitHub {
                repository,
                workflow,
            }))
        }
        Some(RawProvenance::Signer(RawSigner { identity, issuer })) => {
            if identity.is_empty() || !issuer.starts_with("https://") {
                return Err(bad(format!(
                    "identity {identity:?} must not be empty and issuer {issuer:?} must be an https URL"
                )));
            }
            Ok(Some(Identity::Signer { identity, issuer }))
        }
    }
}

#[derive(Serialize)]
struct Canonical<'a> {
    schema: u32,
    name: &'a str,
    python: String,
    platform: &'a str,
    artifacts: Vec<(&'a str, String, Option<&'a str>)>,
    // Only `system` changes the distribution (the hook file); leaving the default out keeps
    // every digest made before runtime_trust existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime_trust: Option<&'static str>,
    // A pinned publisher changes what is trusted; left out when none is pinned, which keeps
    // every digest made before `provenance:` existed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    provenance: Vec<(&'a str, String)>,
}

impl Manifest {
    /// The manifest shipped inside extpy.
    pub fn builtin() -> Result<Self, InputError> {
        Self::parse(
            Origin(format!("builtin:{DEFAULT_MANIFEST_NAME}")),
            DEFAULT_MANIFEST_TEXT,
        )
    }

    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        Self::load_given_as(path, "--manifest (or EXTPY_MANIFEST)")
    }

    /// Reads and validates a manifest file given with `option`, which an unreadable file's
    /// help names.
    pub fn load_given_as(path: &Path, option: &str) -> Result<Self, InputError> {
        let (origin, text) = yaml::read_file(
            path,
            "manifest",
            &format!("check the path given to {option}"),
        )?;
        Self::parse(origin, &text)
    }

    /// Parses and validates manifest text.
    pub fn parse(origin: Origin, text: &str) -> Result<Self, InputError> {
        let raw: RawManifest = yaml::parse(&origin, text)?;
        let locate = |needle: &str, nth: usize| yaml::locate(text, needle, nth);
        if raw.schema != 1 {
            return Err(InputError::at(
                &origin,
                locate("schema", 0),
                "schema",
                format!(
                    "schema {} is not known; this extpy reads schema 1",
                    raw.schema
                ),
            )
            .with_help("use a manifest written for this version of extpy"));
        }
        if raw.name.trim().is_empty() {
            return Err(InputError::at(
                &origin,
                locate("name", 0),
                "name",
                "the manifest needs a non-empty name",
            ));
        }
        let python = raw.python.version;
        let platform = raw.python.platform;

        let [short, long] = python.embed_files(platform);
        if raw.embeddable.file != short && raw.embeddable.file != long {
            return Err(InputError::at(
                &origin,
                locate(&raw.embeddable.file, 0),
                "embeddable.file",
                format!(
                    "{:?} does not match Python {python} for {platform}",
                    raw.embeddable.file
                ),
            )
            .with_help(format!(
                "python.org names it {short} (later 3.14 releases: {long})"
            )));
        }
        check_url(&origin, text, "embeddable.url", raw.embeddable.url.as_ref())?;
        let embeddable_provenance = provenance_of(
            &origin,
            text,
            "embeddable.provenance",
            &raw.embeddable.file,
            raw.embeddable.provenance,
        )?;
        let embeddable = Artifact {
            provenance: embeddable_provenance,
            kind: ArtifactKind::Embeddable,
            line: locate(&raw.embeddable.file, 0),
            file: raw.embeddable.file,
            sha256: raw.embeddable.sha256,
            url: raw.embeddable.url,
            project: None,
            size: raw.embeddable.size,
        };

        let mut wheels: Vec<Wheel> = Vec::new();
        let mut by_project: HashMap<String, String> = HashMap::new();
        let mut by_digest: HashMap<Sha256Digest, String> =
            HashMap::from([(embeddable.sha256, "embeddable".to_string())]);
        let mut file_seen: HashMap<String, usize> = HashMap::new();
        let runtime_trust = raw.runtime_trust.unwrap_or_default();
        let mut raw_wheels: Vec<(String, RawArtifact)> = raw
            .wheels
            .into_iter()
            .enumerate()
            .map(|(i, w)| (format!("wheels[{i}]"), w))
            .collect();
        let truststore = raw.truststore.as_ref().map(|t| t.file.clone());
        if let Some(t) = raw.truststore {
            let line = locate(&t.file, 0);
            let named = t
                .file
                .parse::<WheelFilename>()
                .map(|f| f.normalized_name() == TRUSTSTORE_PROJECT)
                .unwrap_or(false);
            if !named {
                return Err(InputError::at(
                    &origin,
                    line,
                    "truststore.file",
                    format!("{:?} is not a truststore wheel", t.file),
                )
                .with_help(
                    "pin truststore's own wheel here, e.g. truststore-0.10.5-py3-none-any.whl",
                ));
            }
            // Installed only when asked for; otherwise it is neither fetched nor built.
            if runtime_trust == RuntimeTrust::System {
                raw_wheels.push(("truststore".to_string(), t));
            }
        }
        if runtime_trust == RuntimeTrust::System {
            let line = locate("runtime_trust", 0);
            let (major, minor) = TRUSTSTORE_MIN_PYTHON;
            if (python.major, python.minor) < (major, minor) {
                return Err(InputError::at(
                    &origin,
                    line,
                    "runtime_trust",
                    format!(
                        "runtime_trust: system needs CPython {major}.{minor} or later (truststore does), and this manifest pins {python}"
                    ),
                )
                .with_help(format!(
                    "pin CPython {major}.{minor} or later, or remove runtime_trust (requests then trusts certifi's bundle)"
                )));
            }
            let pinned = raw_wheels.iter().any(|(_, w)| {
                w.file
                    .parse::<WheelFilename>()
                    .is_ok_and(|f| f.normalized_name() == TRUSTSTORE_PROJECT)
            });
            if !pinned {
                return Err(InputError::at(
                    &origin,
                    line,
                    "runtime_trust",
                    "runtime_trust: system needs the truststore wheel, and none is pinned",
                )
                .with_help("pin it in a truststore: section (file and sha256), as the shipped manifest does"));
            }
        }
        for (place, raw_wheel) in raw_wheels {
            let nth = *file_seen
                .entry(raw_wheel.file.clone())
                .and_modify(|n| *n += 1)
                .or_insert(0);
            let line = locate(&raw_wheel.file, nth);
            let field = |f: &str| format!("{place}.{f}");
            let filename: WheelFilename =
                raw_wheel.file.parse().map_err(|e: wheel::WheelNameError| {
                    InputError::at(&origin, line, field("file"), e.to_string())
                })?;
            if !filename.is_compatible(python, platform) {
                let tags: Vec<String> = filename.tags().iter().map(ToString::to_string).collect();
                return Err(InputError::at(
                    &origin,
                    line,
                    field("file"),
                    format!(
                        "{filename} cannot run on CPython {python} for {platform} (its tags: {})",
                        tags.join(", ")
                    ),
                )
                .with_help(format!(
                    "pin a wheel built for {}-{platform}, abi3, or py3-none-any",
                    python.cp_tag()
                )));
            }
            let project = filename.normalized_name();
            if let Some(first) = by_project.get(&project) {
                return Err(InputError::at(
                    &origin,
                    line,
                    field("file"),
                    format!("package {project:?} is pinned twice (also {first})"),
                )
                .with_help("keep exactly one wheel per package"));
            }
            if let Some(other) = by_digest.get(&raw_wheel.sha256) {
                return Err(InputError::at(
                    &origin,
                    locate(&raw_wheel.sha256.to_string(), 1).or(line),
                    field("sha256"),
                    format!(
                        "the same sha256 as {other}; two different files cannot share a digest"
                    ),
                )
                .with_help("copy the sha256 of this very file from the index"));
            }
            check_url(&origin, text, &field("url"), raw_wheel.url.as_ref())?;
            let provenance = provenance_of(
                &origin,
                text,
                &field("provenance"),
                &raw_wheel.file,
                raw_wheel.provenance,
            )?;
            by_project.insert(project.clone(), place.clone());
            by_digest.insert(raw_wheel.sha256, place.clone());
            wheels.push(Wheel {
                artifact: Artifact {
                    provenance,
                    kind: ArtifactKind::Wheel,
                    file: raw_wheel.file,
                    sha256: raw_wheel.sha256,
                    url: raw_wheel.url,
                    line,
                    project: Some(project),
                    size: raw_wheel.size,
                },
                filename,
            });
        }

        let requires = parse_requires(&origin, text, &raw.requires)?;
        let trusted_keys = trusted_keys(&origin, text, &raw.trusted_keys)?;
        let mut manifest = Manifest {
            origin,
            text: text.to_string(),
            name: raw.name,
            python,
            platform,
            embeddable,
            wheels,
            requires,
            runtime_trust,
            truststore,
            trusted_keys,
            digest: Sha256Digest::of(b""),
        };
        manifest.digest = manifest.compute_digest();
        Ok(manifest)
    }

    // The digest identifies the distribution a build makes: `requires:` is the input of
    // `extpy lock` and changes no byte of it, so it stays out (as does `size:`, which the
    // sha256 already fixes).
    fn compute_digest(&self) -> Sha256Digest {
        let canonical = Canonical {
            schema: 1,
            name: &self.name,
            python: self.python.to_string(),
            platform: self.platform.tag(),
            artifacts: self
                .artifacts()
                .map(|a| {
                    (
                        a.file.as_str(),
                        a.sha256.to_string(),
                        a.url.as_ref().map(Url::as_str),
                    )
                })
                .collect(),
            runtime_trust: (self.runtime_trust == RuntimeTrust::System)
                .then_some(RuntimeTrust::System.as_str()),
            provenance: self
                .artifacts()
                .filter_map(|a| Some((a.file.as_str(), a.provenance.as_ref()?.to_string())))
                .collect(),
        };
        let bytes = serde_json::to_vec(&canonical)
            .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail");
        Sha256Digest::of(&bytes)
    }

    /// Every artifact: the embeddable zip first, then the wheels in manifest order.
    pub fn artifacts(&self) -> impl Iterator<Item = &Artifact> {
        std::iter::once(&self.embeddable).chain(self.wheels.iter().map(|w| &w.artifact))
    }

    /// The wheels of the `wheels:` list, which `extpy lock` owns (not the `truststore:`
    /// section's).
    pub fn listed_wheels(&self) -> impl Iterator<Item = &Wheel> {
        self.wheels
            .iter()
            .filter(|w| self.truststore.as_deref() != Some(w.artifact.file.as_str()))
    }

    /// A short `name@digest` identity for human lines.
    pub fn identity(&self) -> String {
        format!("{}@{}", self.name, self.digest.short())
    }

    /// The manifest's file name, for bundles (`manifest.yaml` when it has none).
    pub fn file_name(&self) -> String {
        let o = &self.origin.0;
        let o = o.strip_prefix("builtin:").unwrap_or(o);
        Path::new(o)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "manifest.yaml".into())
    }
}

/// Parses one PEP 508 requirement; the error is its first line. pep508_rs 0.9 panics on a
/// project name or an extra that ends in `.`, `-` or `_` and is followed by anything
/// (`msal- >=1`, `msal[broker- ]`): its parser lets the name through and its name check
/// then refuses it with `expect`. Those cases are refused here first, and so is any
/// character outside ASCII, on which its cursor slices inside a character and panics (the
/// fuzz tests found all three).
pub(crate) fn requirement(text: &str) -> Result<Requirement, String> {
    if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "it holds the character {c:?}: write requirements in ASCII"
        ));
    }
    let rest = text.trim_start();
    let name_end = identifier(rest, "the project name")?;
    // Each extra is read as the parser reads it: the name characters after `[` or `,` and
    // any spaces, whatever follows them.
    if let Some(extras) = rest[name_end..].trim_start().strip_prefix('[') {
        let extras = extras.split(']').next().unwrap_or(extras);
        for piece in extras.split(',') {
            identifier(piece.trim_start(), "the extra")?;
        }
    }
    Requirement::from_str(text).map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())
}

/// The length of the name at the start of `text` (letters, digits, `.`, `-`, `_`), refused
/// when it ends in one of the three separators.
fn identifier(text: &str, what: &str) -> Result<usize, String> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .unwrap_or(text.len());
    match text[..end].chars().last() {
        Some(last) if !last.is_ascii_alphanumeric() => Err(format!(
            "{what} {:?} must end with a letter or digit, not '{last}'",
            &text[..end]
        )),
        _ => Ok(end),
    }
}

/// Parses `requires:`: PEP 508 requirements on index projects, each project named once.
/// The `trusted_keys:` of a manifest or topology: each the key line of a minisign `.pub` file.
/// They sign nothing into the digest: which keys a site trusts changes no byte it builds.
pub(crate) fn trusted_keys(
    origin: &Origin,
    text: &str,
    raw: &[String],
) -> Result<Vec<TrustedKey>, InputError> {
    raw.iter()
        .enumerate()
        .map(|(i, k)| {
            let field = format!("trusted_keys[{i}]");
            TrustedKey::parse(k, &format!("{}: {field}", origin.0)).map_err(|e| {
                InputError::at(
                    origin,
                    yaml::locate(text, k, 0),
                    field,
                    format!("{k:?} is not a minisign public key: {}", e.reason()),
                )
                .with_help("write the second line of the key's .pub file (it starts with RW), as `extpy key generate` wrote it")
            })
        })
        .collect()
}

fn parse_requires(
    origin: &Origin,
    text: &str,
    raw: &[String],
) -> Result<Vec<Requirement>, InputError> {
    let mut out: Vec<Requirement> = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let line = yaml::locate(text, item.trim(), 0).or_else(|| yaml::locate(text, "requires", 0));
        let field = format!("requires[{i}]");
        let req = requirement(item).map_err(|first| {
            InputError::at(origin, line, &field, format!("{item:?} is not a PEP 508 requirement: {first}"))
                .with_help("write a project name with optional extras, versions and marker, like `msal[broker]>=1.39; python_version >= \"3.9\"`")
        })?;
        if matches!(req.version_or_url, Some(VersionOrUrl::Url(_))) {
            return Err(InputError::at(
                origin,
                line,
                &field,
                format!("{item:?} names a URL; extpy locks requirements from the index only"),
            )
            .with_help("name the project and a version range; the index supplies the files"));
        }
        if let Some(j) = out.iter().position(|r| r.name == req.name) {
            return Err(InputError::at(
                origin,
                line,
                &field,
                format!(
                    "project {:?} is required twice (also requires[{j}])",
                    req.name.to_string()
                ),
            )
            .with_help("combine the two into one requirement, e.g. `name>=1,<2`"));
        }
        out.push(req);
    }
    Ok(out)
}

fn check_url(
    origin: &Origin,
    text: &str,
    field: &str,
    url: Option<&Url>,
) -> Result<(), InputError> {
    match url {
        Some(u) if !matches!(u.scheme(), "https" | "http") => Err(InputError::at(
            origin,
            yaml::locate(text, u.as_str(), 0).or_else(|| yaml::locate(text, "url:", 0)),
            field,
            format!("{u} is not an http(s) URL"),
        )),
        Some(u) if !u.username().is_empty() || u.password().is_some() => Err(InputError::at(
            origin,
            yaml::locate(text, "url:", 0),
            field,
            format!(
                "{} holds a user name or password; a manifest is shared and recorded in seals, SBOMs and bundles, so it must not hold credentials",
                crate::mechanism::net::shown(u)
            ),
        )
        .with_help("remove the user info from the URL and put the login in a netrc file (NETRC, or .netrc in your home folder)")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn doc(wheels: &str) -> String {
        format!(
            "schema: 1\nname: test\npython:\n  version: 3.12.10\n  platform: win_amd64\nembeddable:\n  file: python-3.12.10-embed-amd64.zip\n  sha256: {SHA_A}\nwheels:\n{wheels}"
        )
    }

    fn parse(text: &str) -> Result<Manifest, InputError> {
        Manifest::parse(Origin("m.yaml".into()), text)
    }

    const TS: &str = "9aaaedaefaf06d8b206278cf8b5012bc897f485a874503501e12d776df78951c";

    #[test]
    fn a_pinned_publisher_is_parsed_and_part_of_the_digest_and_none_is_not() {
        let wheel = |p: &str| {
            doc(&format!(
                "  - file: demo-1.0-py3-none-any.whl\n    sha256: {SHA_B}\n{p}"
            ))
        };
        let plain = parse(&wheel("")).unwrap();
        let none = parse(&wheel("    provenance: none\n")).unwrap();
        let pinned = parse(&wheel(
            "    provenance: {repository: example/demo, workflow: publish.yml}\n",
        ))
        .unwrap();
        assert_eq!(none.wheels[0].artifact.provenance, None);
        assert_eq!(
            pinned.wheels[0].artifact.provenance,
            Some(Identity::GitHub {
                repository: "example/demo".into(),
                workflow: "publish.yml".into()
            })
        );
        assert_eq!(plain.digest, none.digest);
        assert_ne!(plain.digest, pinned.digest);
        let other = parse(&wheel(
            "    provenance: {repository: attacker/demo, workflow: publish.yml}\n",
        ))
        .unwrap();
        assert_ne!(other.digest, pinned.digest);
        for bad in [
            "    provenance: somebody\n",
            "    provenance: {repository: demo, workflow: publish.yml}\n",
            "    provenance: {identity: a@b.org, issuer: 'http://plain'}\n",
        ] {
            let e = parse(&wheel(bad)).unwrap_err().to_string();
            assert!(e.contains("wheels[0].provenance"), "{bad}: {e}");
        }
    }

    fn with_trust(version: &str, trust: &str, section: bool) -> String {
        let mut t = format!(
            "schema: 1\nname: test\npython:\n  version: {version}\n  platform: win_amd64\nembeddable:\n  file: python-{version}-embed-amd64.zip\n  sha256: {SHA_A}\n"
        );
        if !trust.is_empty() {
            t.push_str(&format!("runtime_trust: {trust}\n"));
        }
        if section {
            t.push_str(&format!(
                "truststore:\n  file: truststore-0.10.5-py3-none-any.whl\n  sha256: {TS}\n"
            ));
        }
        t.push_str(&format!(
            "wheels:\n  - file: certifi-2025.10.5-py3-none-any.whl\n    sha256: {SHA_B}\n"
        ));
        t
    }

    #[test]
    fn the_truststore_wheel_is_installed_only_with_runtime_trust_system() {
        let plain = parse(&with_trust("3.12.10", "", false)).unwrap();
        let certifi = parse(&with_trust("3.12.10", "certifi", true)).unwrap();
        assert_eq!(certifi.runtime_trust, RuntimeTrust::Certifi);
        assert_eq!(certifi.wheels.len(), 1, "not fetched, not built");
        assert_eq!(
            certifi.digest, plain.digest,
            "the default and an unused section change no digest"
        );
        let system = parse(&with_trust("3.12.10", "system", true)).unwrap();
        assert_eq!(system.runtime_trust, RuntimeTrust::System);
        let names: Vec<&str> = system
            .wheels
            .iter()
            .map(|w| w.filename.name.as_str())
            .collect();
        assert_eq!(names, ["certifi", "truststore"]);
        assert_eq!(system.listed_wheels().count(), 1, "lock owns wheels: only");
        assert_ne!(
            system.digest, certifi.digest,
            "the build differs, so does the digest"
        );
        // The shipped manifest: certifi, with truststore pinned for those who switch.
        let shipped = Manifest::builtin().unwrap();
        assert_eq!(shipped.runtime_trust, RuntimeTrust::Certifi);
        assert_eq!(
            shipped.truststore.as_deref(),
            Some("truststore-0.10.5-py3-none-any.whl")
        );
        let switched = shipped
            .text
            .replace("runtime_trust: certifi", "runtime_trust: system");
        let switched = parse(&switched).unwrap();
        assert_eq!(switched.wheels.len(), shipped.wheels.len() + 1);
    }

    #[test]
    fn bad_runtime_trust_is_refused_with_its_line() {
        let e = parse(&with_trust("3.12.10", "windows", true)).unwrap_err();
        assert_eq!(e.line, Some(9), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("m.yaml:9")
                && text.contains("unknown runtime_trust \"windows\"")
                && text.contains("certifi")
                && text.contains("system"),
            "{text}"
        );

        let e = parse(&with_trust("3.9.13", "system", true)).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.line, Some(9), "{text}");
        assert!(
            text.contains("runtime_trust: system needs CPython 3.10 or later")
                && text.contains("3.9.13")
                && text.contains("help:"),
            "{text}"
        );
        // Python 3.9 with the default is fine.
        parse(&with_trust("3.9.13", "certifi", true)).unwrap();

        let e = parse(&with_trust("3.12.10", "system", false)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("needs the truststore wheel, and none is pinned")
                && text.contains("truststore: section"),
            "{text}"
        );

        let other = with_trust("3.12.10", "system", true).replace(
            "truststore-0.10.5-py3-none-any.whl",
            "idna-3.20-py3-none-any.whl",
        );
        let e = parse(&other).unwrap_err();
        assert!(e.to_string().contains("is not a truststore wheel"), "{e}");
    }

    #[test]
    fn builtin_manifest_is_valid_and_complete() {
        let m = Manifest::builtin().unwrap();
        assert_eq!(m.python.to_string(), "3.12.10");
        assert_eq!(m.wheels.len(), 10);
        assert_eq!(m.artifacts().count(), 11);
        assert_eq!(
            m.embeddable.sha256.to_string(),
            "4acbed6dd1c744b0376e3b1cf57ce906f9dc9e95e68824584c8099a63025a3c3"
        );
    }

    #[test]
    fn good_manifest_parses_with_lines() {
        let m = parse(&doc(&format!(
            "  - file: msal-1.39.0-py3-none-any.whl\n    sha256: {SHA_B}\n"
        )))
        .unwrap();
        assert_eq!(m.wheels[0].artifact.line, Some(10));
        assert_eq!(m.wheels[0].artifact.project.as_deref(), Some("msal"));
        assert_eq!(m.embeddable.line, Some(7));
    }

    #[test]
    fn digest_ignores_comments_but_not_pins() {
        let a = parse(&doc(&format!(
            "  - file: msal-1.39.0-py3-none-any.whl\n    sha256: {SHA_B}\n"
        )))
        .unwrap();
        let b = parse(&format!(
            "# comment\n{}",
            doc(&format!(
                "  - file: msal-1.39.0-py3-none-any.whl\n    sha256: {SHA_B}\n"
            ))
        ))
        .unwrap();
        let c = parse(&doc(&format!(
            "  - file: msal-1.39.0-py3-none-any.whl\n    sha256: {SHA_C}\n"
        )))
        .unwrap();
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn bad_hex_names_line_and_field() {
        let err = parse(&doc(
            "  - file: msal-1.39.0-py3-none-any.whl\n    sha256: 12zz\n",
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(11), "{err}");
        assert_eq!(err.field.as_deref(), Some("wheels[0].sha256"));
        assert!(err.message.contains("hexadecimal"), "{err}");
    }

    #[test]
    fn unknown_platform_is_rejected() {
        let text = doc("").replace("win_amd64", "linux_x86_64");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert!(
            err.message.contains("unknown platform \"linux_x86_64\""),
            "{err}"
        );
    }

    #[test]
    fn incompatible_wheel_is_rejected() {
        let err = parse(&doc(&format!(
            "  - file: cffi-2.1.1-cp311-cp311-win_amd64.whl\n    sha256: {SHA_B}\n"
        )))
        .unwrap_err();
        assert_eq!(err.line, Some(10));
        assert_eq!(err.field.as_deref(), Some("wheels[0].file"));
        assert!(
            err.message
                .contains("cannot run on CPython 3.12.10 for win_amd64"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_package_is_rejected_at_second_line() {
        let wheels = format!(
            "  - file: PyJWT-2.15.1-py3-none-any.whl\n    sha256: {SHA_B}\n  - file: pyjwt-2.15.0-py3-none-any.whl\n    sha256: {SHA_C}\n"
        );
        let err = parse(&doc(&wheels)).unwrap_err();
        assert_eq!(err.line, Some(12), "{err}");
        assert!(
            err.message
                .contains("\"pyjwt\" is pinned twice (also wheels[0])"),
            "{err}"
        );
    }

    #[test]
    fn shared_digest_is_rejected() {
        let wheels = format!(
            "  - file: a-1-py3-none-any.whl\n    sha256: {SHA_B}\n  - file: b-1-py3-none-any.whl\n    sha256: {SHA_B}\n"
        );
        let err = parse(&doc(&wheels)).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("wheels[1].sha256"));
        assert_eq!(err.line, Some(13), "{err}");
    }

    #[test]
    fn unknown_key_and_missing_key() {
        let err = parse(&doc(&format!(
            "  - file: a-1-py3-none-any.whl\n    sha256: {SHA_B}\n    sha512: x\n"
        )))
        .unwrap_err();
        assert!(err.message.contains("unknown field `sha512`"), "{err}");
        assert_eq!(err.line, Some(12));
        let err = parse(&doc("  - file: a-1-py3-none-any.whl\n")).unwrap_err();
        assert!(err.message.contains("missing field `sha256`"), "{err}");
    }

    #[test]
    fn float_version_and_wrong_embed_name() {
        let err = parse(&doc("").replace("version: 3.12.10", "version: 3.12")).unwrap_err();
        assert!(err.message.contains("3.12.10"), "{err}");
        assert_eq!(err.line, Some(4));
        let err = parse(&doc("").replace("embed-amd64", "embed-arm64")).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("embeddable.file"));
        assert!(
            err.to_string().contains("python-3.12.10-embed-amd64.zip")
                && err
                    .to_string()
                    .contains("python-3.12.10-embeddable-amd64.zip"),
            "{err}"
        );
        // The name later 3.14 releases carry is python.org's too; a third one is not.
        let m = parse(&doc("").replace("-embed-amd64", "-embeddable-amd64")).unwrap();
        assert_eq!(m.embeddable.file, "python-3.12.10-embeddable-amd64.zip");
        let err = parse(&doc("").replace("-embed-amd64", "-embedded-amd64")).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("embeddable.file"));
    }

    #[test]
    fn requires_are_parsed_and_checked_with_lines() {
        let text = doc(&format!(
            "  - file: msal-1.39.0-py3-none-any.whl\n    sha256: {SHA_B}\n"
        ))
        .replace(
            "wheels:\n",
            "requires:\n  - msal[broker]>=1.39\n  - \"requests; sys_platform == 'win32'\"\nwheels:\n",
        );
        let m = parse(&text).unwrap();
        assert_eq!(m.requires.len(), 2);
        assert_eq!(m.requires[0].name.to_string(), "msal");
        assert_eq!(m.requires[0].extras[0].to_string(), "broker");
        let a = parse(&doc(&format!(
            "  - file: msal-1.39.0-py3-none-any.whl\n    sha256: {SHA_B}\n"
        )))
        .unwrap();
        assert_eq!(
            a.digest, m.digest,
            "requires: does not change the distribution"
        );

        let bad = text.replace("msal[broker]>=1.39", "msal >>= 1");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("requires[0]"), "{err}");
        assert_eq!(err.line, Some(10), "{err}");
        assert!(err.message.contains("not a PEP 508 requirement"), "{err}");

        let url = text.replace("msal[broker]>=1.39", "msal @ https://example.invalid/m.whl");
        let err = parse(&url).unwrap_err();
        assert!(err.message.contains("names a URL"), "{err}");

        let twice = text.replace("requests;", "MSAL;");
        let err = parse(&twice).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("requires[1]"), "{err}");
        assert!(err.message.contains("required twice"), "{err}");
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_showing_them() {
        let err = parse(&doc(&format!(
            "  - file: a-1-py3-none-any.whl\n    sha256: {SHA_B}\n    url: https://u:SECRET@example.invalid/a.whl\n"
        )))
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("wheels[0].url"));
        let shown = err.to_string();
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("u:****@example.invalid") && shown.contains("netrc"),
            "{shown}"
        );
    }

    #[test]
    fn non_http_url_is_rejected() {
        let wheels = format!(
            "  - file: a-1-py3-none-any.whl\n    sha256: {SHA_B}\n    url: ftp://example.invalid/a.whl\n"
        );
        let err = parse(&doc(&wheels)).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("wheels[0].url"));
        assert_eq!(err.line, Some(12));
    }
}

//! The SBOM of a distribution: a CycloneDX 1.6 JSON document (`extpy-sbom.cdx.json` at the
//! distribution's root, sealed like every other file) listing the embeddable CPython and
//! every installed wheel with version, purl, sha256 and the licence its metadata declares,
//! and which package needs which (`Requires-Dist`, evaluated for the target).
//!
//! One function makes the document from a [`Subject`], and a subject comes from the build's
//! plan, from a bundle's artifacts, or from a built tree and its seal. So the document a tree
//! carries can be recomputed from the tree itself: `verify` does that and compares.
//! The bytes depend only on the subject and extpy's version: no timestamp, and the serial
//! number is a name-based UUID derived from the document's content.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha1::Digest as _;

pub(crate) use crate::job::assemble::contents::Licence;
use crate::job::assemble::contents::{Contents, native};
use crate::job::assemble::requires::{self, Environment};
use crate::job::assemble::wheel::{SITE_PACKAGES, WheelPlan, headers};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::sigstore::Identity;
use crate::model::manifest::{Manifest, Platform, PythonVersion, normalize_name};

/// The SBOM's file name, at a distribution's root and in a bundle.
pub(crate) const SBOM_FILE: &str = "extpy-sbom.cdx.json";
const SPEC_VERSION: &str = "1.6";
/// Longest `License` value used as a licence name; a longer one (a whole licence text) is
/// kept as the licence's text, named by its first line.
const NAME_MAX: usize = 100;

impl Licence {
    fn choices(&self) -> Vec<LicenseChoice> {
        let declared = Some("declared".to_string());
        if let Some(e) = &self.expression {
            return vec![LicenseChoice::Expression {
                expression: e.clone(),
                acknowledgement: declared,
            }];
        }
        if let Some(t) = &self.text {
            let first = t.lines().find(|l| !l.trim().is_empty()).unwrap_or(t).trim();
            let whole = t.lines().count() > 1 || first.len() > NAME_MAX;
            let name: String = first.chars().take(NAME_MAX).collect();
            return vec![LicenseChoice::License {
                license: License {
                    id: None,
                    name: Some(name),
                    text: whole.then(|| Attachment {
                        content_type: "text/plain".into(),
                        content: t.clone(),
                    }),
                    acknowledgement: declared,
                },
            }];
        }
        self.classifiers
            .iter()
            .map(|c| LicenseChoice::License {
                license: License {
                    id: None,
                    name: Some(c.rsplit("::").next().unwrap_or(c).trim().to_string()),
                    text: None,
                    acknowledgement: declared.clone(),
                },
            })
            .collect()
    }
}

/// An installed package as the SBOM describes it.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// Project name as in its metadata.
    pub name: String,
    /// Version.
    pub version: String,
    /// The wheel file.
    pub wheel: String,
    /// The wheel's sha256.
    pub sha256: Sha256Digest,
    /// `Requires-Dist` values.
    pub requires: Vec<String>,
    /// Declared licence.
    pub licence: Licence,
    /// The publisher the manifest pins (`None` for `provenance: none`).
    pub provenance: Option<Identity>,
}

/// What an SBOM describes.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    /// The manifest's name.
    pub manifest: String,
    /// The manifest's digest.
    pub manifest_sha256: Sha256Digest,
    /// CPython.
    pub python: PythonVersion,
    /// Platform.
    pub platform: Platform,
    /// The embeddable zip's file name.
    pub embeddable: String,
    /// Its sha256.
    pub embeddable_sha256: Sha256Digest,
    /// The publisher the manifest pins for it.
    pub embeddable_provenance: Option<Identity>,
    /// The wheels, in manifest order.
    pub packages: Vec<Package>,
}

impl Subject {
    /// The subject of a build: the manifest and its planned wheels.
    pub(crate) fn of_plan(manifest: &Manifest, wheels: &[WheelPlan]) -> Self {
        Subject {
            manifest: manifest.name.clone(),
            manifest_sha256: manifest.digest,
            python: manifest.python,
            platform: manifest.platform,
            embeddable: manifest.embeddable.file.clone(),
            embeddable_sha256: manifest.embeddable.sha256,
            embeddable_provenance: manifest.embeddable.provenance.clone(),
            packages: wheels
                .iter()
                .map(|w| Package {
                    name: w.name.clone(),
                    version: w.version.clone(),
                    wheel: w.wheel.clone(),
                    sha256: w.sha256,
                    requires: w.requires.clone(),
                    licence: w.licence.clone(),
                    provenance: manifest
                        .wheels
                        .iter()
                        .find(|m| m.artifact.file == w.wheel)
                        .and_then(|m| m.artifact.provenance.clone()),
                })
                .collect(),
        }
    }

    /// The CycloneDX document.
    pub(crate) fn document(&self) -> Bom {
        let python_ref = python_ref(self.python);
        let mut components = vec![Component {
            kind: "platform".into(),
            bom_ref: python_ref.clone(),
            supplier: Some(Supplier {
                name: "Python Software Foundation".into(),
            }),
            name: "python".into(),
            version: self.python.to_string(),
            description: Some(format!(
                "CPython {} embeddable package for {}",
                self.python, self.platform
            )),
            hashes: vec![Hash::sha256(self.embeddable_sha256)],
            licenses: vec![LicenseChoice::License {
                license: License {
                    id: Some("PSF-2.0".into()),
                    name: None,
                    text: None,
                    acknowledgement: Some("declared".into()),
                },
            }],
            cpe: Some(format!(
                "cpe:2.3:a:python:python:{}:*:*:*:*:*:*:*",
                self.python
            )),
            purl: format!("{python_ref}?file_name={}", escape(&self.embeddable)),
            properties: provenance_properties(&self.embeddable_provenance),
        }];
        let refs: BTreeMap<String, String> = self
            .packages
            .iter()
            .map(|p| (normalize_name(&p.name), pypi_ref(p)))
            .collect();
        for p in &self.packages {
            let bom_ref = pypi_ref(p);
            components.push(Component {
                kind: "library".into(),
                purl: format!("{bom_ref}?file_name={}", escape(&p.wheel)),
                bom_ref,
                supplier: None,
                name: p.name.clone(),
                version: p.version.clone(),
                description: None,
                hashes: vec![Hash::sha256(p.sha256)],
                licenses: p.licence.choices(),
                cpe: None,
                properties: provenance_properties(&p.provenance),
            });
        }

        let packages: Vec<requires::Package> = self
            .packages
            .iter()
            .map(|p| requires::Package {
                name: p.name.clone(),
                version: p.version.clone(),
                requires: p.requires.clone(),
            })
            .collect();
        let graph = requires::graph(&packages, &Environment::target(self.python, self.platform));
        let needed: BTreeSet<&String> = graph.edges.values().flatten().collect();
        let root_ref = format!("extpy-distribution:{}", self.manifest);
        let mut top = vec![python_ref.clone()];
        top.extend(
            self.packages
                .iter()
                .map(|p| normalize_name(&p.name))
                .filter(|n| !needed.contains(n))
                .filter_map(|n| refs.get(&n).cloned()),
        );
        let mut dependencies = vec![Dependency {
            bom_ref: root_ref.clone(),
            depends_on: top,
        }];
        dependencies.push(Dependency {
            bom_ref: python_ref,
            depends_on: vec![],
        });
        for p in &self.packages {
            let key = normalize_name(&p.name);
            dependencies.push(Dependency {
                bom_ref: pypi_ref(p),
                depends_on: graph
                    .edges
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| refs.get(d).cloned())
                    .collect(),
            });
        }

        let mut bom = Bom {
            bom_format: "CycloneDX".into(),
            spec_version: SPEC_VERSION.into(),
            serial_number: None,
            version: 1,
            metadata: Metadata {
                tools: Tools {
                    components: vec![Tool {
                        kind: "application".into(),
                        name: "extpy".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                    }],
                },
                component: Root {
                    kind: "application".into(),
                    bom_ref: root_ref,
                    name: self.manifest.clone(),
                    description: format!(
                        "External Python for Sinch Contact Pro CEM: CPython {} ({}) and {} wheels",
                        self.python,
                        self.platform,
                        self.packages.len()
                    ),
                },
                properties: vec![Property {
                    name: "extpy:manifest:sha256".into(),
                    value: self.manifest_sha256.to_string(),
                }],
            },
            components,
            dependencies,
        };
        bom.serial_number = Some(serial_of(&bom.to_bytes()));
        bom
    }
}

fn python_ref(python: PythonVersion) -> String {
    format!("pkg:generic/python@{}", escape(&python.to_string()))
}

fn pypi_ref(p: &Package) -> String {
    let name = p.name.to_ascii_lowercase().replace('_', "-");
    format!("pkg:pypi/{}@{}", escape(&name), escape(&p.version))
}

/// Percent-encodes what a purl segment or qualifier value may not hold as is.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A version 5 (name-based) UUID URN over the document's bytes: the same content gives the
/// same serial number, another content another one.
fn serial_of(bytes: &[u8]) -> String {
    // RFC 4122's URL namespace, 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
    const NAMESPACE: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let name = format!("urn:extpy:sbom:sha256:{}", Sha256Digest::of(bytes));
    let mut h = sha1::Sha1::new();
    h.update(NAMESPACE);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u[6] = (u[6] & 0x0f) | 0x50;
    u[8] = (u[8] & 0x3f) | 0x80;
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A CycloneDX document (the part extpy writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bom {
    /// `CycloneDX`.
    #[serde(rename = "bomFormat")]
    pub bom_format: String,
    /// `1.6`.
    #[serde(rename = "specVersion")]
    pub spec_version: String,
    /// `urn:uuid:...`, derived from the content.
    #[serde(
        rename = "serialNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub serial_number: Option<String>,
    /// Always 1.
    pub version: u32,
    /// Tool and subject.
    pub metadata: Metadata,
    /// CPython and the wheels.
    pub components: Vec<Component>,
    /// Who needs whom.
    pub dependencies: Vec<Dependency>,
}

/// The document's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Metadata {
    /// extpy.
    pub tools: Tools,
    /// The distribution.
    pub component: Root,
    /// The manifest's digest.
    pub properties: Vec<Property>,
}

/// The tools that made the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tools {
    /// extpy.
    pub components: Vec<Tool>,
}

/// A tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tool {
    /// `application`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `extpy`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The distribution the document describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Root {
    /// `application`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its reference.
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    /// The manifest's name.
    pub name: String,
    /// In words.
    pub description: String,
}

/// A name and value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Property {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// CPython or a wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Component {
    /// `platform` (CPython) or `library`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its reference (the purl without qualifiers).
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    /// Who supplies it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<Supplier>,
    /// Project name.
    pub name: String,
    /// Version.
    pub version: String,
    /// In words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The sha256 of the file installed from.
    pub hashes: Vec<Hash>,
    /// Declared licences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    /// CPython's CPE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
    /// Package URL, with the file name.
    pub purl: String,
    /// The publisher the manifest pins ([`provenance_properties`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

const PROVENANCE: &str = "extpy:provenance";
const REPOSITORY: &str = "extpy:provenance:repository";
const WORKFLOW: &str = "extpy:provenance:workflow";
const IDENTITY: &str = "extpy:provenance:identity";
const ISSUER: &str = "extpy:provenance:issuer";

/// A component's publisher as CycloneDX properties: `extpy:provenance` is `none`, or
/// `github` with the Trusted Publisher's repository and workflow, or `sigstore` with the
/// signer's identity and OIDC issuer; `fetch` and `build` verified that publisher's
/// signature before the component was installed.
fn provenance_properties(pin: &Option<Identity>) -> Vec<Property> {
    let p = |name: &str, value: &str| Property {
        name: name.into(),
        value: value.into(),
    };
    match pin {
        None => vec![p(PROVENANCE, "none")],
        Some(Identity::GitHub {
            repository,
            workflow,
        }) => vec![
            p(PROVENANCE, "github"),
            p(REPOSITORY, repository),
            p(WORKFLOW, workflow),
        ],
        Some(Identity::Signer { identity, issuer }) => vec![
            p(PROVENANCE, "sigstore"),
            p(IDENTITY, identity),
            p(ISSUER, issuer),
        ],
    }
}

/// The publisher a component's properties name (the inverse of [`provenance_properties`]).
fn provenance_of(properties: &[Property]) -> Option<Identity> {
    let get = |name: &str| {
        properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.clone())
    };
    match get(PROVENANCE).as_deref() {
        Some("github") => Some(Identity::GitHub {
            repository: get(REPOSITORY)?,
            workflow: get(WORKFLOW)?,
        }),
        Some("sigstore") => Some(Identity::Signer {
            identity: get(IDENTITY)?,
            issuer: get(ISSUER)?,
        }),
        _ => None,
    }
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Supplier {
    /// Its name.
    pub name: String,
}

/// A digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hash {
    /// `SHA-256`.
    pub alg: String,
    /// Hex.
    pub content: String,
}

impl Hash {
    fn sha256(d: Sha256Digest) -> Self {
        Hash {
            alg: "SHA-256".into(),
            content: d.to_string(),
        }
    }
}

/// A licence or an SPDX expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub(crate) enum LicenseChoice {
    /// An SPDX expression.
    Expression {
        /// The expression.
        expression: String,
        /// `declared`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acknowledgement: Option<String>,
    },
    /// One licence.
    License {
        /// It.
        license: License,
    },
}

/// A licence by SPDX id or name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct License {
    /// SPDX id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name, as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The text, when the declaration is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Attachment>,
    /// `declared`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<String>,
}

/// A licence text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attachment {
    /// `text/plain`.
    #[serde(rename = "contentType")]
    pub content_type: String,
    /// The text.
    pub content: String,
}

/// One node of the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dependency {
    /// The component.
    #[serde(rename = "ref")]
    pub bom_ref: String,
    /// What it needs.
    #[serde(rename = "dependsOn")]
    pub depends_on: Vec<String>,
}

impl Bom {
    /// The file's bytes: pretty JSON, stable order, trailing newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self)
            .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail");
        v.push(b'\n');
        v
    }
}

/// The SBOM's bytes for a build of `manifest` from the verified wheels at `wheels`
/// (manifest order): what `bundle create` stores and `bundle verify` recomputes.
pub(crate) fn for_wheels(
    manifest: &Manifest,
    wheels: &[std::path::PathBuf],
    jobs: usize,
) -> Result<Vec<u8>, crate::job::assemble::wheel::WheelError> {
    let plans = crate::job::assemble::wheel::plan_all(manifest, wheels, jobs)?;
    Ok(Subject::of_plan(manifest, &plans).document().to_bytes())
}

/// Checks the SBOM of a built tree against the tree: it must be sealed, and equal to the
/// document its seal and its installed `.dist-info` folders imply. Returns the problems.
pub(crate) fn check(dir: &Path, seal: Contents<'_>) -> Vec<String> {
    if !seal.files.iter().any(|f| f.path == SBOM_FILE) {
        return vec![format!(
            "the seal lists no {SBOM_FILE}: extpy writes one into every distribution it builds, so this one was built by an older extpy or its SBOM was removed and the seal rewritten\n  help: rebuild it with `extpy build`"
        )];
    }
    let path = dir.join(SBOM_FILE);
    let bytes =
        match crate::mechanism::limits::read_regular(&path, crate::mechanism::limits::MAX_JSON) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return vec![format!(
                    "{SBOM_FILE} is missing\n  help: rebuild the distribution with `extpy build`"
                )];
            }
            Err(e) => return vec![format!("{SBOM_FILE} cannot be read: {e}")],
        };
    let actual: Bom = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return vec![format!(
                "{SBOM_FILE} is not the CycloneDX document extpy writes: {e}"
            )];
        }
    };
    let (subject, mut problems) = subject_of_tree(dir, seal);
    let Some(mut subject) = subject else {
        return problems;
    };
    // The pinned publishers come from the manifest, which the tree holds only by its digest:
    // they are taken from the document itself (sealed like every file, and compared with the
    // manifest's expected seal wherever the manifest is at hand).
    let pins: BTreeMap<&str, Option<Identity>> = actual
        .components
        .iter()
        .map(|c| (c.bom_ref.as_str(), provenance_of(&c.properties)))
        .collect();
    let pin = |bom_ref: &str| pins.get(bom_ref).cloned().flatten();
    subject.embeddable_provenance = pin(&python_ref(subject.python));
    for p in &mut subject.packages {
        p.provenance = pin(&pypi_ref(p));
    }
    let expected = subject.document();
    problems.extend(differences(&expected, &actual));
    if problems.is_empty() && expected.to_bytes() != bytes {
        problems.push(format!(
            "{SBOM_FILE} is not byte for byte the document the tree implies"
        ));
    }
    problems
}

/// What differs between the document the tree implies and the one it carries, in words.
fn differences(expected: &Bom, actual: &Bom) -> Vec<String> {
    let mut out = Vec::new();
    let by_ref = |b: &Bom| -> BTreeMap<String, Component> {
        b.components
            .iter()
            .map(|c| (c.bom_ref.clone(), c.clone()))
            .collect()
    };
    let (want, have) = (by_ref(expected), by_ref(actual));
    for (r, c) in &want {
        match have.get(r) {
            None => out.push(format!(
                "{SBOM_FILE} does not list {} {}, which is installed",
                c.name, c.version
            )),
            Some(h) if h != c => out.push(format!(
                "{SBOM_FILE} describes {} {} otherwise than the tree (hashes, licences or purl)",
                c.name, c.version
            )),
            Some(_) => {}
        }
    }
    for (r, c) in &have {
        if !want.contains_key(r) {
            out.push(format!(
                "{SBOM_FILE} lists {} {}, which is not installed",
                c.name, c.version
            ));
        }
    }
    if out.is_empty() {
        if expected.dependencies != actual.dependencies {
            out.push(format!(
                "{SBOM_FILE}'s dependencies differ from the installed packages' Requires-Dist"
            ));
        } else if expected != actual {
            out.push(format!(
                "{SBOM_FILE}'s metadata differs from the tree's (manifest, tool or serial number)"
            ));
        }
    }
    out
}

/// The subject a tree implies: CPython and the manifest from its seal, each package from
/// the seal and its installed `.dist-info` (its METADATA as the wheel had it).
fn subject_of_tree(dir: &Path, seal: Contents<'_>) -> (Option<Subject>, Vec<String>) {
    let mut problems = Vec::new();
    let python = seal.python.version.parse::<PythonVersion>();
    let platform = seal.python.platform.parse::<Platform>();
    let (Ok(python), Ok(platform)) = (python, platform) else {
        return (
            None,
            vec![format!(
                "the seal's python {} {} is not a CPython version and platform",
                seal.python.version, seal.python.platform
            )],
        );
    };
    let site = native(dir, SITE_PACKAGES);
    let mut dist_infos: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(&site) {
        for e in entries.flatten() {
            let folder = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = folder.strip_suffix(".dist-info")
                && e.path().is_dir()
            {
                let name = stem.split('-').next().unwrap_or(stem);
                dist_infos.insert(normalize_name(name), folder);
            }
        }
    }
    let mut packages = Vec::new();
    for p in seal.packages {
        let key = normalize_name(&p.name);
        let Some(folder) = dist_infos.remove(&key) else {
            problems.push(format!(
                "{} {} is in the seal but has no .dist-info in {SITE_PACKAGES}",
                p.name, p.version
            ));
            continue;
        };
        let meta_path = site.join(&folder).join("METADATA");
        let meta = match crate::mechanism::limits::read_regular(
            &meta_path,
            crate::mechanism::limits::MAX_JSON,
        ) {
            Ok(b) => headers(&String::from_utf8_lossy(&b)),
            Err(e) => {
                problems.push(format!(
                    "{SITE_PACKAGES}/{folder}/METADATA cannot be read: {e}"
                ));
                continue;
            }
        };
        let version = meta.get("version").and_then(|v| v.first());
        if version != Some(&p.version) {
            problems.push(format!(
                "{SITE_PACKAGES}/{folder}/METADATA says version {}, the seal {}",
                version.map_or("(none)", String::as_str),
                p.version
            ));
        }
        packages.push(Package {
            name: p.name.clone(),
            version: p.version.clone(),
            wheel: p.wheel.clone(),
            sha256: p.sha256,
            requires: meta.get("requires-dist").cloned().unwrap_or_default(),
            licence: Licence::from_headers(&meta),
            provenance: None,
        });
    }
    for folder in dist_infos.values() {
        problems.push(format!(
            "{SITE_PACKAGES}/{folder} is installed, but neither the seal nor {SBOM_FILE} lists its package"
        ));
    }
    let subject = Subject {
        manifest: seal.manifest.name.clone(),
        manifest_sha256: seal.manifest.sha256,
        python,
        platform,
        embeddable: seal.python.embeddable.clone(),
        embeddable_sha256: seal.python.sha256,
        embeddable_provenance: None,
        packages,
    };
    (Some(subject), problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn headers_of(text: &str) -> HashMap<String, Vec<String>> {
        headers(text)
    }

    #[test]
    fn licence_prefers_expression_then_text_then_classifiers() {
        let h = headers_of(
            "Name: a\nLicense-Expression: Apache-2.0 OR BSD-3-Clause\nLicense: BSD\nClassifier: License :: OSI Approved :: MIT License\n",
        );
        assert_eq!(
            Licence::from_headers(&h).choices(),
            vec![LicenseChoice::Expression {
                expression: "Apache-2.0 OR BSD-3-Clause".into(),
                acknowledgement: Some("declared".into())
            }]
        );
        let h = headers_of(
            "Name: a\nLicense: Copyright (c) 2024 Someone\n        Permission is hereby granted\nClassifier: License :: OSI Approved :: MIT License\n",
        );
        let c = Licence::from_headers(&h).choices();
        let [LicenseChoice::License { license }] = c.as_slice() else {
            panic!("{c:?}")
        };
        assert_eq!(license.name.as_deref(), Some("Copyright (c) 2024 Someone"));
        assert_eq!(
            license.text.as_ref().map(|t| t.content.as_str()),
            Some("Copyright (c) 2024 Someone\nPermission is hereby granted")
        );
        let h = headers_of(
            "Name: a\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\nClassifier: Programming Language :: Python\n",
        );
        let c = Licence::from_headers(&h).choices();
        assert_eq!(c.len(), 1);
        let LicenseChoice::License { license } = &c[0] else {
            panic!()
        };
        assert_eq!(license.name.as_deref(), Some("MIT License"));
        assert!(
            Licence::from_headers(&headers_of("Name: a\n"))
                .choices()
                .is_empty()
        );
    }

    #[test]
    fn a_publisher_pin_round_trips_through_its_properties() {
        let pins = [
            None,
            Some(Identity::GitHub {
                repository: "psf/requests".into(),
                workflow: "publish.yml".into(),
            }),
            Some(Identity::Signer {
                identity: "thomas@python.org".into(),
                issuer: "https://accounts.google.com".into(),
            }),
        ];
        for pin in pins {
            let props = provenance_properties(&pin);
            assert_eq!(provenance_of(&props), pin, "{props:?}");
        }
        let none = provenance_properties(&None);
        assert_eq!(
            (none[0].name.as_str(), none[0].value.as_str()),
            (PROVENANCE, "none")
        );
        // A github pin without its workflow names nobody.
        let mut partial = provenance_properties(&pins_github());
        partial.retain(|p| p.name != WORKFLOW);
        assert_eq!(provenance_of(&partial), None);
    }

    fn pins_github() -> Option<Identity> {
        Some(Identity::GitHub {
            repository: "a/b".into(),
            workflow: "w.yml".into(),
        })
    }

    #[test]
    fn purls_escape_and_serial_is_a_v5_uuid_of_the_content() {
        assert_eq!(escape("1.0+local"), "1.0%2Blocal");
        let p = Package {
            name: "Charset_Normalizer".into(),
            version: "3.4.2".into(),
            wheel: "x.whl".into(),
            sha256: Sha256Digest::of(b""),
            requires: vec![],
            licence: Licence::default(),
            provenance: None,
        };
        assert_eq!(pypi_ref(&p), "pkg:pypi/charset-normalizer@3.4.2");
        let a = serial_of(b"a");
        assert_eq!(a, serial_of(b"a"));
        assert_ne!(a, serial_of(b"b"));
        let hex = a.trim_start_matches("urn:uuid:");
        assert_eq!(hex.len(), 36);
        assert_eq!(&hex[14..15], "5");
        assert!("89ab".contains(&hex[19..20]));
    }
}

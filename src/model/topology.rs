//! The topology: HAC nodes, their CEM cores and VU roots, and the pairing of every core with
//! its `ExternalPythonN` virtual unit, computed as data before anything is laid out.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mechanism::archive::check_windows_component;
use crate::model::manifest::yaml::{self, InputError, Origin};
use crate::model::winver::WindowsVersion;

/// The VU name prefix the vendor documents.
pub(crate) const DEFAULT_VU_PREFIX: &str = "ExternalPython";

/// An absolute Windows path (`D:\SCP\vu`, `\\server\share\vu`), kept in Windows form for
/// rendering whatever the machine extpy runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct WinPath(String);

impl WinPath {
    /// Parses and normalizes (`/` becomes `\`, repeated and trailing separators go).
    pub fn parse(s: &str) -> Result<Self, String> {
        let raw = s.trim();
        let unified = raw.replace('/', "\\");
        let (prefix, rest) = if let Some(unc) = unified.strip_prefix("\\\\") {
            let mut parts = unc.split('\\').filter(|p| !p.is_empty());
            let (Some(server), Some(share)) = (parts.next(), parts.next()) else {
                return Err(format!(
                    "{raw:?} is not a complete UNC path (\\\\server\\share\\...)"
                ));
            };
            (format!("\\\\{server}\\{share}"), parts.collect::<Vec<_>>())
        } else {
            let b = unified.as_bytes();
            if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
                if b.len() == 2 || b[2] != b'\\' {
                    return Err(format!(
                        "{raw:?} is relative to the current folder of drive {}: write {}:\\...",
                        &unified[..1],
                        &unified[..1]
                    ));
                }
                (
                    unified[..2].to_ascii_uppercase(),
                    unified[3..].split('\\').filter(|p| !p.is_empty()).collect(),
                )
            } else {
                return Err(format!(
                    "{raw:?} is not an absolute Windows path; write it with a drive (D:\\SCP\\vu) or as \\\\server\\share\\..."
                ));
            }
        };
        for part in &rest {
            if *part == "." || *part == ".." {
                return Err(format!("{raw:?} uses '{part}'; write the folder itself"));
            }
            check_windows_component(part).map_err(|why| format!("{raw:?}: {why}"))?;
        }
        let mut path = prefix;
        if rest.is_empty() && !path.starts_with("\\\\") {
            path.push('\\');
        }
        for part in rest {
            if !path.ends_with('\\') {
                path.push('\\');
            }
            path.push_str(part);
        }
        Ok(Self(path))
    }

    /// This path with `part` appended.
    pub fn join(&self, part: &str) -> WinPath {
        let mut s = self.0.clone();
        if !s.ends_with('\\') {
            s.push('\\');
        }
        s.push_str(&part.replace('/', "\\"));
        WinPath(s)
    }

    /// The path as Windows writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same path on this machine, when this machine is Windows.
    pub fn to_native(&self) -> Option<PathBuf> {
        cfg!(windows).then(|| PathBuf::from(&self.0))
    }
}

impl fmt::Display for WinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A HAC node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Its name (also its folder when staging).
    pub name: String,
    /// Its host name, if given.
    pub host: Option<String>,
    /// The VU root folder on the node.
    pub vu_root: WinPath,
    /// Its CEM core instances, in file order.
    pub cores: Vec<String>,
    /// `long_paths: true`: the node has `LongPathsEnabled` set, so full paths over MAX_PATH
    /// work there (stated in the topology, since another machine cannot read the node's
    /// registry).
    pub long_paths: bool,
    /// Its Windows version (`os:`), when the topology says it.
    #[serde(skip)]
    pub os: Option<NodeOs>,
}

/// A node's `os:`: the text as written and the version it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOs {
    /// As written in the topology (`Server 2012 R2`, `6.3.9600`).
    pub given: String,
    /// What it stands for.
    pub(crate) version: WindowsVersion,
}

/// One core and its ExternalPython VU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    /// The node both live on.
    pub node: String,
    /// The node's host name, if given.
    pub host: Option<String>,
    /// The CEM core instance.
    pub core: String,
    /// The ExternalPython VU name.
    pub vu: String,
    /// The VU folder on the node.
    pub vu_path: WinPath,
    /// The value of the CEM variable External Python Directory for this core.
    pub external_python_directory: WinPath,
}

/// A validated topology with its pairing.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Where it was read from.
    pub origin: Origin,
    /// Its text as given.
    pub text: String,
    /// The system's name (for the plan).
    pub system: String,
    /// The distribution manifest it names, resolved against the topology's folder.
    pub manifest: Option<PathBuf>,
    /// The VU name prefix.
    pub vu_prefix: String,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Every core with its VU, node by node in file order.
    pub pairs: Vec<Pair>,
    /// SC e-mail settings, if the topology has a `mail:` block.
    pub mail: Option<crate::model::mail::Mail>,
    /// The site's public keys (`trusted_keys:`): the bundles and seals checked with this
    /// topology file must be signed by one of them.
    pub trusted_keys: Vec<crate::mechanism::sign::TrustedKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    schema: u32,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    manifest: Option<String>,
    #[serde(default)]
    vu_prefix: Option<String>,
    nodes: Vec<RawNode>,
    #[serde(default)]
    mail: Option<crate::model::mail::RawMail>,
    #[serde(default)]
    trusted_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    #[serde(default)]
    host: Option<String>,
    vu_root: String,
    #[serde(default)]
    os: Option<String>,
    cores: Vec<RawCore>,
    #[serde(default)]
    long_paths: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCore {
    Name(String),
    Explicit(ExplicitCore),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplicitCore {
    core: String,
    vu: String,
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let (origin, text) = yaml::read_file(
            path,
            "topology",
            "check the path (an example ships as manifests/topology.example.yaml)",
        )?;
        let mut t = Self::parse(origin, &text)?;
        if let Some(m) = &t.manifest
            && m.is_relative()
        {
            t.manifest = Some(path.parent().unwrap_or(Path::new(".")).join(m));
        }
        Ok(t)
    }

    /// Parses and validates topology text.
    pub fn parse(origin: Origin, text: &str) -> Result<Self, InputError> {
        let raw: RawTopology = yaml::parse(&origin, text)?;
        let at = |needle: &str, nth: usize, field: String, msg: String| {
            InputError::at(&origin, yaml::locate(text, needle, nth), field, msg)
        };
        if raw.schema != 1 {
            return Err(at(
                "schema",
                0,
                "schema".into(),
                format!(
                    "schema {} is not known; this extpy reads schema 1",
                    raw.schema
                ),
            ));
        }
        let vu_prefix = raw
            .vu_prefix
            .unwrap_or_else(|| DEFAULT_VU_PREFIX.to_string());
        check_windows_component(&vu_prefix).map_err(|why| {
            at(
                "vu_prefix",
                0,
                "vu_prefix".into(),
                format!("{vu_prefix:?} cannot name a folder: {why}"),
            )
        })?;
        if raw.nodes.is_empty() {
            return Err(at(
                "nodes",
                0,
                "nodes".into(),
                "the topology needs at least one node".into(),
            ));
        }

        let mut occurrences: HashMap<String, usize> = HashMap::new();
        let mut nth = |s: &str| {
            let n = occurrences.entry(s.to_string()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let mut nodes: Vec<Node> = Vec::new();
        let mut pairs: Vec<Pair> = Vec::new();
        let mut node_names: HashMap<String, usize> = HashMap::new();
        let mut core_nodes: HashMap<String, String> = HashMap::new();
        let mut vu_owner: HashMap<String, (String, String)> = HashMap::new();
        for (i, raw_node) in raw.nodes.into_iter().enumerate() {
            let name_nth = nth(&raw_node.name);
            let field = |f: &str| format!("nodes[{i}].{f}");
            let name = raw_node.name.trim().to_string();
            check_windows_component(&name).map_err(|why| {
                at(
                    &raw_node.name,
                    name_nth,
                    field("name"),
                    format!("{name:?} cannot name a folder: {why}"),
                )
            })?;
            if let Some(first) = node_names.insert(name.to_lowercase(), i) {
                return Err(at(
                    &raw_node.name,
                    name_nth,
                    field("name"),
                    format!("node {name:?} is listed twice (also nodes[{first}])"),
                ));
            }
            let vu_root = WinPath::parse(&raw_node.vu_root).map_err(|why| {
                at(
                    &raw_node.vu_root,
                    nth(&raw_node.vu_root),
                    field("vu_root"),
                    why,
                )
            })?;
            if let Some(host) = &raw_node.host {
                check_host(host).map_err(|why| {
                    at(host, nth(host), field("host"), format!("{host:?} {why}"))
                        .with_help("write a host name (hac1.example.com) or an IP address")
                })?;
            }
            let os = match &raw_node.os {
                Some(given) => Some(NodeOs {
                    version: WindowsVersion::parse(given).map_err(|why| {
                        at(given, nth(given), field("os"), why)
                            .with_help("or leave os: out; extpy then warns that it cannot check the node's Windows version")
                    })?,
                    given: given.trim().to_string(),
                }),
                None => None,
            };
            if raw_node.cores.is_empty() {
                return Err(at(
                    &raw_node.name,
                    name_nth,
                    field("cores"),
                    format!("node {name:?} lists no CEM cores"),
                ));
            }
            let mut cores = Vec::new();
            for (j, core) in raw_node.cores.into_iter().enumerate() {
                let (core, explicit) = match core {
                    RawCore::Name(c) => (c, None),
                    RawCore::Explicit(e) => (e.core, Some(e.vu)),
                };
                let core_nth = nth(&core);
                let cfield = format!("nodes[{i}].cores[{j}]");
                let core = core.trim().to_string();
                if core.is_empty() {
                    return Err(at("cores", 0, cfield, "a core name is empty".into()));
                }
                if let Some(other) = core_nodes.insert(core.to_lowercase(), name.clone()) {
                    let msg = if other == name {
                        format!("core {core:?} is listed twice on node {name:?}")
                    } else {
                        format!(
                            "core {core:?} is listed on node {other:?} and on node {name:?}; a core lives on one node"
                        )
                    };
                    return Err(at(&core, core_nth, cfield, msg));
                }
                let vu = match explicit {
                    Some(vu) => {
                        let vu = vu.trim().to_string();
                        check_windows_component(&vu).map_err(|why| {
                            at(
                                &vu,
                                0,
                                format!("{cfield}.vu"),
                                format!("{vu:?} cannot name a VU folder: {why}"),
                            )
                        })?;
                        vu
                    }
                    None => match core_number(&core) {
                        Some(n) => format!("{vu_prefix}{n}"),
                        None => {
                            return Err(at(
                                &core,
                                core_nth,
                                cfield,
                                format!("core {core:?} has no number, so its VU cannot be named {vu_prefix}N"),
                            )
                            .with_help(format!("name it like Core1, or pair it explicitly: {{ core: {core}, vu: {vu_prefix}1 }}")));
                        }
                    },
                };
                if let Some((other_core, other_node)) =
                    vu_owner.insert(vu.to_lowercase(), (core.clone(), name.clone()))
                {
                    return Err(at(
                        &core,
                        core_nth,
                        format!("nodes[{i}].cores[{j}]"),
                        format!(
                            "{vu} would pair with both {other_core} (node {other_node}) and {core} (node {name}); each core needs its own VU"
                        ),
                    ));
                }
                let vu_path = vu_root.join(&vu);
                pairs.push(Pair {
                    node: name.clone(),
                    host: raw_node.host.clone(),
                    core: core.clone(),
                    external_python_directory: vu_path.join("Python\\External"),
                    vu_path,
                    vu,
                });
                cores.push(core);
            }
            nodes.push(Node {
                name,
                host: raw_node.host,
                vu_root,
                cores,
                long_paths: raw_node.long_paths,
                os,
            });
        }
        let mail = match raw.mail {
            Some(m) => Some(m.validate(&origin, text)?),
            None => None,
        };
        let trusted_keys = crate::model::manifest::trusted_keys(&origin, text, &raw.trusted_keys)?;
        Ok(Topology {
            mail,
            trusted_keys,
            origin,
            text: text.to_string(),
            system: raw
                .system
                .unwrap_or_else(|| "Sinch Contact Pro".to_string()),
            manifest: raw.manifest.map(PathBuf::from),
            vu_prefix,
            nodes,
            pairs,
        })
    }

    /// The node called `name` (case-insensitively), or an error listing the nodes.
    pub fn node(&self, name: &str) -> Result<&Node, String> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
                format!(
                    "the topology {} has no node {name:?}; its nodes are: {}",
                    self.origin,
                    names.join(", ")
                )
            })
    }

    /// The pairs of one node.
    pub fn pairs_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Pair> + 'a {
        self.pairs.iter().filter(move |p| p.node == node)
    }

    /// The pairing table as people read it.
    pub fn render_pairing(&self) -> String {
        let headers = ["node", "core", "VU", "External Python Directory"];
        let rows: Vec<[String; 4]> = self
            .pairs
            .iter()
            .map(|p| {
                [
                    p.node.clone(),
                    p.core.clone(),
                    p.vu.clone(),
                    p.external_python_directory.to_string(),
                ]
            })
            .collect();
        render_table(&headers, &rows)
    }
}

/// A host name (letters, digits, `-` and `_` in dot-separated labels, at most 253
/// characters) or an IPv4/IPv6 address; anything else could be a template or an option to
/// the tools that get it.
pub(crate) fn check_host(host: &str) -> Result<(), &'static str> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if host.is_empty() || host.len() > 253 {
        return Err("is not a host name (1 to 253 characters)");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if host.trim_end_matches('.').split('.').all(label_ok) {
        Ok(())
    } else {
        Err(
            "is not a host name or IP address (letters, digits, '-' and '_' in dot-separated labels)",
        )
    }
}

/// The number at the end of a core's name (`Core12` → 12).
pub(crate) fn core_number(core: &str) -> Option<u32> {
    let digits: String = core
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if digits.is_empty() || digits.len() == core.len() {
        return None;
    }
    digits.parse().ok()
}

/// A plain text table with aligned columns.
pub(crate) fn render_table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Topology, InputError> {
        Topology::parse(Origin("t.yaml".into()), text)
    }

    #[test]
    fn windows_paths_render_as_windows_writes_them() {
        assert_eq!(
            WinPath::parse("D:\\SCP\\vu").unwrap().as_str(),
            "D:\\SCP\\vu"
        );
        assert_eq!(
            WinPath::parse("d:/SCP//vu/").unwrap().as_str(),
            "D:\\SCP\\vu"
        );
        assert_eq!(
            WinPath::parse("D:\\SCP\\vu\\\\").unwrap().as_str(),
            "D:\\SCP\\vu"
        );
        assert_eq!(
            WinPath::parse("E:\\")
                .unwrap()
                .join("ExternalPython1")
                .as_str(),
            "E:\\ExternalPython1"
        );
        assert_eq!(
            WinPath::parse("C:\\Program Files\\SCP vu")
                .unwrap()
                .join("ExternalPython2")
                .join("Python\\External")
                .as_str(),
            "C:\\Program Files\\SCP vu\\ExternalPython2\\Python\\External"
        );
        assert_eq!(
            WinPath::parse("\\\\fs01\\scp$\\vu\\").unwrap().as_str(),
            "\\\\fs01\\scp$\\vu"
        );
        for bad in [
            "vu",
            "D:vu",
            "\\SCP\\vu",
            "/opt/vu",
            "\\\\server",
            "D:\\a\\..\\b",
            "D:\\a|b",
            "",
        ] {
            assert!(WinPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_names_and_addresses() {
        for ok in [
            "hac1",
            "hac1.example.com",
            "HAC_2.corp",
            "10.0.0.1",
            "::1",
            "[fe80::1]",
            "a.b.",
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "{{ lookup('pipe', 'id') }}",
            "-oProxyCommand=x",
            "a..b",
            "a b",
            "host:22",
            "a/b",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn core_numbers() {
        assert_eq!(core_number("Core1"), Some(1));
        assert_eq!(core_number("CEM_Core12"), Some(12));
        assert_eq!(core_number("Core"), None);
        assert_eq!(core_number("12"), None);
    }

    const ONE_NODE: &str = "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n";

    #[test]
    fn pairs_cores_with_their_numbered_vu() {
        let t = parse(ONE_NODE).unwrap();
        assert_eq!(t.pairs.len(), 2);
        assert_eq!(t.pairs[1].vu, "ExternalPython2");
        assert_eq!(
            t.pairs[1].external_python_directory.as_str(),
            "D:\\SCP\\vu\\ExternalPython2\\Python\\External"
        );
        let table = t.render_pairing();
        assert!(
            table.contains(
                "HAC1  Core2  ExternalPython2  D:\\SCP\\vu\\ExternalPython2\\Python\\External"
            ),
            "{table}"
        );
    }

    #[test]
    fn explicit_pairing_and_prefix() {
        let t = parse("schema: 1\nvu_prefix: ExtPy\nnodes:\n  - name: A\n    vu_root: 'E:\\vu'\n    cores:\n      - Core1\n      - { core: Special, vu: ExtPy9 }\n").unwrap();
        assert_eq!(t.pairs[0].vu, "ExtPy1");
        assert_eq!(t.pairs[1].vu, "ExtPy9");
    }

    #[test]
    fn validation_errors_have_lines() {
        let cases: [(&str, usize, &str); 8] = [
            (
                "schema: 1\nnodes:\n  - name: A\n    vu_root: 'D:\\v'\n    cores: [Core1]\n  - name: A\n    vu_root: 'D:\\v'\n    cores: [Core2]\n",
                6,
                "node \"A\" is listed twice",
            ),
            (
                "schema: 1\nnodes:\n  - name: A\n    vu_root: 'D:\\v'\n    cores: [Core1, Core1]\n",
                5,
                "listed twice on node",
            ),
            (
                "schema: 1\nnodes:\n  - name: A\n    vu_root: 'D:\\v'\n    cores: [Core1]\n  - name: B\n    vu_root: 'D:\\v'\n    cores:\n      - Core1\n",
                9,
                "listed on node \"A\" and on node \"B\"",
            ),
            (
                "schema: 1\nnodes:\n  - name: A\n    vu_root: 'D:\\v'\n    cores: [Primary]\n",
                5,
                "has no number",
            ),
            (
                "schema: 1\nnodes:\n  - name: A\n    vu_root: 'vu'\n    cores: [Core1]\n",
                4,
                "not an absolute Windows path",
            ),
            (
                "schema: 1\nnodes:\n  - name: A\n    vu_root: 'D:\\v'\n    cores: [Core1]\n    cpus: 4\n",
                6,
                "unknown field `cpus`",
            ),
            (
                "schema: 1\nnodes:\n  - name: A\n    vu_root: 'D:\\v'\n    cores:\n      - Core1\n      - { core: X, vu: ExternalPython1 }\n",
                7,
                "would pair with both Core1",
            ),
            ("schema: 2\nnodes: []\n", 1, "schema 2"),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, Some(line), "{needle}: {err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}

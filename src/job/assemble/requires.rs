//! Are the pinned wheels complete? Each wheel's `Requires-Dist` (PEP 508), with its markers
//! evaluated for the target (CPython X.Y on Windows) and extras followed, must be met by a
//! pinned wheel of a matching version. The manifest pins a closed set by hand; this catches
//! the pin that was bumped without the dependency it now needs. The same walk gives the SBOM
//! its dependency graph. PEP 440/508 parsing and marker evaluation are pep508_rs's, the
//! implementation `extpy lock` resolves with, so the two cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use pep508_rs::pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerEnvironment, Requirement, VersionOrUrl};

use crate::model::manifest::{Platform, PythonVersion, marker_environment, normalize_name};

/// The environment a marker is evaluated in: the target, not this machine.
#[derive(Debug, Clone)]
pub(crate) struct Environment(MarkerEnvironment);

impl Environment {
    /// CPython `python` on Windows `platform`.
    pub(crate) fn target(python: PythonVersion, platform: Platform) -> Self {
        Self(marker_environment(python, platform))
    }
}

/// A pinned package and what its metadata requires.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// Project name as in its metadata.
    pub name: String,
    /// Version.
    pub version: String,
    /// `Requires-Dist` values.
    pub requires: Vec<String>,
}

/// What the pinned set's metadata says about itself, for the target.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// Per package (normalized name): the pinned packages its requirements name, with the
    /// markers true for the target and the extras asked of it followed.
    pub edges: BTreeMap<String, BTreeSet<String>>,
    /// Requirements that no pinned wheel meets, in words.
    pub unmet: Vec<String>,
}

/// Every requirement of `packages` that no pinned wheel meets, in words.
pub(crate) fn unmet(packages: &[Package], env: &Environment) -> Vec<String> {
    graph(packages, env).unmet
}

/// True when the pinned `version` satisfies what `r` asks (a URL requirement is taken as met:
/// the pin is what was locked).
fn satisfied(r: &Requirement, version: &str) -> bool {
    match &r.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(s)) => {
            Version::from_str(version).is_ok_and(|v| s.contains(&v))
        }
        Some(VersionOrUrl::Url(_)) | None => true,
    }
}

/// Evaluates every `Requires-Dist` of `packages` for `env`: which pinned package needs
/// which, and which requirements no pin meets.
pub(crate) fn graph(packages: &[Package], env: &Environment) -> Graph {
    let by_name: BTreeMap<String, &Package> = packages
        .iter()
        .map(|p| (normalize_name(&p.name), p))
        .collect();
    let mut problems = BTreeSet::new();
    /// A package with its requirements parsed: (normalized name, package, (text, requirement)).
    type Parsed<'a> = (String, &'a Package, Vec<(&'a str, Requirement)>);
    let mut parsed: Vec<Parsed> = Vec::new();
    for p in packages {
        let mut reqs = Vec::new();
        for text in &p.requires {
            // Through the one guarded parser: pep508_rs panics on some inputs a wheel can hold.
            match crate::model::manifest::requirement(text) {
                Ok(r) => reqs.push((text.trim(), r)),
                Err(why) => {
                    problems.insert(format!(
                        "{} {}: cannot read the requirement {:?}: {why}",
                        p.name,
                        p.version,
                        text.trim(),
                    ));
                }
            }
        }
        parsed.push((normalize_name(&p.name), p, reqs));
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = by_name
        .keys()
        .map(|k| (k.clone(), BTreeSet::new()))
        .collect();
    // Extras asked of each package by the others, followed until nothing new is asked.
    let mut extras: BTreeMap<String, BTreeSet<ExtraName>> = BTreeMap::new();
    loop {
        let mut asked: Vec<(String, ExtraName)> = Vec::new();
        for (key, p, reqs) in &parsed {
            let mine: Vec<ExtraName> = extras.get(key).into_iter().flatten().cloned().collect();
            for (text, r) in reqs {
                if !r.marker.evaluate(&env.0, &mine) {
                    continue;
                }
                let dep_key = normalize_name(r.name.as_ref());
                let Some(dep) = by_name.get(&dep_key) else {
                    problems.insert(format!(
                        "{} {} requires {text}, which the manifest does not pin",
                        p.name, p.version
                    ));
                    continue;
                };
                if dep_key != *key {
                    edges
                        .entry(key.clone())
                        .or_default()
                        .insert(dep_key.clone());
                }
                if !satisfied(r, &dep.version) {
                    problems.insert(format!(
                        "{} {} requires {text}, but the manifest pins {} {}",
                        p.name, p.version, dep.name, dep.version
                    ));
                }
                for e in &r.extras {
                    if !extras.get(&dep_key).is_some_and(|s| s.contains(e)) {
                        asked.push((dep_key.clone(), e.clone()));
                    }
                }
            }
        }
        if asked.is_empty() {
            break;
        }
        for (name, extra) in asked {
            extras.entry(name).or_default().insert(extra);
        }
    }
    Graph {
        edges,
        unmet: problems.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::target("3.12.10".parse().unwrap(), Platform::WinAmd64)
    }

    fn pkg(name: &str, version: &str, requires: &[&str]) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_shipped_set_is_complete() {
        let set = [
            pkg(
                "msal",
                "1.39.0",
                &[
                    "requests <3,>=2.0.0",
                    "PyJWT[crypto] <3,>=1.0.0",
                    "cryptography <51,>=2.5",
                    "pymsalruntime <0.21,>=0.20 ; (python_version >= \"3.9\" and platform_system == \"Windows\") and extra == 'broker'",
                ],
            ),
            pkg(
                "requests",
                "2.34.2",
                &[
                    "charset_normalizer<4,>=2",
                    "idna<4,>=2.5",
                    "urllib3<3,>=1.26",
                    "certifi>=2023.5.7",
                    "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
                ],
            ),
            pkg(
                "PyJWT",
                "2.15.1",
                &[
                    "typing_extensions>=4.0; python_version < \"3.11\"",
                    "cryptography>=3.4.0; extra == \"crypto\"",
                ],
            ),
            pkg(
                "cryptography",
                "50.0.2",
                &["cffi>=2.0.0 ; platform_python_implementation != 'PyPy'"],
            ),
            pkg(
                "cffi",
                "2.1.1",
                &["pycparser; implementation_name != \"PyPy\""],
            ),
            pkg("pycparser", "3.12", &[]),
            pkg("charset-normalizer", "3.5.3", &[]),
            pkg("idna", "3.20", &[]),
            pkg("urllib3", "2.8.0", &[]),
            pkg("certifi", "2026.10.19.post1", &[]),
        ];
        assert_eq!(unmet(&set, &env()), Vec::<String>::new());
    }

    #[test]
    fn missing_and_mismatched_pins_are_named() {
        let set = [
            pkg(
                "msal",
                "1.39.0",
                &["PyJWT[crypto] <3,>=1.0.0", "requests<3"],
            ),
            pkg(
                "PyJWT",
                "2.15.1",
                &["cryptography>=3.4.0; extra == \"crypto\""],
            ),
            pkg("requests", "3.0.0", &[]),
        ];
        assert_eq!(
            unmet(&set, &env()),
            vec![
                "PyJWT 2.15.1 requires cryptography>=3.4.0; extra == \"crypto\", which the manifest does not pin".to_string(),
                "msal 1.39.0 requires requests<3, but the manifest pins requests 3.0.0".to_string(),
            ]
        );
    }

    #[test]
    fn markers_are_for_cpython_on_windows_and_extras_are_followed() {
        let env = env();
        let set = [
            pkg(
                "a",
                "1",
                &[
                    "b[fast]>=1",
                    "linux-only; sys_platform == 'linux'",
                    "old; python_full_version < '3.11'",
                    "c; platform_machine == 'AMD64' and os_name == 'nt'",
                ],
            ),
            pkg("b", "1.5", &["d; extra == 'fast'", "e; extra == 'slow'"]),
            pkg("c", "2.0.0rc1", &[]),
            pkg("d", "3", &[]),
        ];
        let g = graph(&set, &env);
        assert_eq!(g.unmet, Vec::<String>::new());
        let e = |k: &str| g.edges[k].iter().cloned().collect::<Vec<_>>();
        assert_eq!(e("a"), vec!["b", "c"]);
        assert_eq!(e("b"), vec!["d"]);
        let pre = [pkg("a", "1", &["c>=2"]), pkg("c", "2.0.0rc1", &[])];
        assert_eq!(
            graph(&pre, &env).unmet,
            vec!["a 1 requires c>=2, but the manifest pins c 2.0.0rc1".to_string()]
        );
        let bad = [pkg("a", "1", &["b >>1"])];
        assert!(
            graph(&bad, &env).unmet[0].starts_with("a 1: cannot read the requirement \"b >>1\"")
        );
    }
}

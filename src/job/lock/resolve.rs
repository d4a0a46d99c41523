//! The resolver: PubGrub (backtracking with conflict learning) over the index as the
//! target sees it. Extras are their own packages (`name[extra]`) tied to the base
//! project's version, as uv does; current pins are preferred unless upgraded (minimal
//! churn); a failure is explained as a chain of reasons.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use pep508_rs::pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider,
    PackageResolutionStatistics, PubGrubError, Ranges, Reporter,
};

use super::error::LockError;
use super::index::{Candidate, Index, Unusable};
use crate::model::manifest::{Platform, PythonVersion};

/// A node of the resolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Pkg {
    /// The manifest's `requires:`.
    Root,
    /// A project.
    Project(PackageName),
    /// A project with one extra (its extra's requirements, at the project's version).
    Extra(PackageName, ExtraName),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the manifest's requires"),
            Pkg::Project(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// What the resolver is asked.
pub(crate) struct Request<'a> {
    /// The top-level requirements.
    pub requires: &'a [Requirement],
    /// Versions to keep when the requirements allow (the current pins).
    pub preferences: BTreeMap<PackageName, Version>,
}

/// The result: every project with its version and chosen wheel, and why each is there.
#[derive(Debug)]
pub(crate) struct Resolution {
    /// Project, version, wheel.
    pub pins: BTreeMap<PackageName, (Version, Candidate)>,
    /// Who asked for each project (parents, or `requires` for a top-level one).
    pub required_by: BTreeMap<PackageName, BTreeSet<String>>,
}

struct Provider<'a, 'i> {
    index: &'a Index<'i>,
    env: MarkerEnvironment,
    request: &'a Request<'a>,
    order: RefCell<HashMap<Pkg, usize>>,
}

fn range_of(r: &Requirement) -> Ranges<Version> {
    match &r.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(s)) => Ranges::from(s.clone()),
        _ => Ranges::full(),
    }
}

impl Provider<'_, '_> {
    /// The constraints of `reqs` whose markers hold with `extras`, merged per package.
    fn constraints<'r>(
        &self,
        reqs: impl Iterator<Item = &'r Requirement>,
        extras: &[ExtraName],
    ) -> DependencyConstraints<Pkg, Ranges<Version>> {
        let mut merged: Vec<(Pkg, Ranges<Version>)> = Vec::new();
        let mut add = |p: Pkg, r: Ranges<Version>| match merged.iter_mut().find(|(q, _)| *q == p) {
            Some((_, existing)) => *existing = existing.intersection(&r),
            None => merged.push((p, r)),
        };
        for r in reqs {
            if !r.marker.evaluate(&self.env, extras) {
                continue;
            }
            let range = range_of(r);
            add(Pkg::Project(r.name.clone()), range.clone());
            for e in &r.extras {
                add(Pkg::Extra(r.name.clone(), e.clone()), range.clone());
            }
        }
        merged.into_iter().collect()
    }
}

impl DependencyProvider for Provider<'_, '_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = LockError;
    type Priority = (u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Pkg,
        _range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let mut order = self.order.borrow_mut();
        let n = order.len();
        let seen = *order.entry(package.clone()).or_insert(n);
        (stats.conflict_count(), Reverse(seen))
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, LockError> {
        let name = match package {
            Pkg::Root => return Ok(Some(Version::new([0]))),
            Pkg::Project(n) | Pkg::Extra(n, _) => n,
        };
        let project = self.index.project(name)?;
        if let Some(v) = range.as_singleton()
            && project.yanked.contains_key(v)
        {
            return Ok(Some(v.clone())); // PEP 592: a yanked version pinned exactly
        }
        if let Some(p) = self.request.preferences.get(name)
            && range.contains(p)
            && project.usable.contains_key(p)
        {
            return Ok(Some(p.clone()));
        }
        let in_range = || project.usable.keys().rev().filter(|v| range.contains(*v));
        // Pre-releases only when no final release fits (as `packaging` filters them).
        Ok(in_range()
            .find(|v| !v.any_prerelease())
            .or_else(|| in_range().next())
            .cloned())
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>, LockError> {
        match package {
            Pkg::Root => Ok(Dependencies::Available(
                self.constraints(self.request.requires.iter(), &[]),
            )),
            Pkg::Project(name) => {
                let meta = self.metadata(name, version)?;
                Ok(Dependencies::Available(
                    self.constraints(meta.requires.iter(), &[]),
                ))
            }
            Pkg::Extra(name, extra) => {
                let meta = self.metadata(name, version)?;
                let mut deps: Vec<(Pkg, Ranges<Version>)> = self
                    .constraints(meta.requires.iter(), std::slice::from_ref(extra))
                    .into_iter()
                    .filter(|(p, _)| !matches!(p, Pkg::Project(n) if n == name))
                    .collect();
                deps.push((
                    Pkg::Project(name.clone()),
                    Ranges::singleton(version.clone()),
                ));
                Ok(Dependencies::Available(deps.into_iter().collect()))
            }
        }
    }
}

impl Provider<'_, '_> {
    fn candidate(&self, name: &PackageName, version: &Version) -> Result<Candidate, LockError> {
        let project = self.index.project(name)?;
        project
            .usable
            .get(version)
            .or_else(|| project.yanked.get(version))
            .cloned()
            .ok_or_else(|| {
                LockError::Internal(format!("{name} {version} was chosen but is not listed"))
            })
    }

    fn metadata(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<std::rc::Rc<super::index::CoreMetadata>, LockError> {
        let c = self.candidate(name, version)?;
        self.index.metadata(name, version, &c)
    }
}

/// Resolves `request` against `index`.
pub(crate) fn resolve(
    index: &Index<'_>,
    platform: Platform,
    request: &Request<'_>,
) -> Result<Resolution, LockError> {
    let provider = Provider {
        index,
        env: crate::model::manifest::marker_environment(index.python(), platform),
        request,
        order: RefCell::default(),
    };
    let solution = match pubgrub::resolve(&provider, Pkg::Root, Version::new([0])) {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(mut tree)) => {
            tree.collapse_no_versions();
            let chain = DefaultStringReporter::report(&tree);
            let mut notes = Vec::new();
            let mut names: Vec<&PackageName> = tree
                .packages()
                .into_iter()
                .filter_map(|p| match p {
                    Pkg::Project(n) | Pkg::Extra(n, _) => Some(n),
                    Pkg::Root => None,
                })
                .collect();
            names.sort();
            names.dedup();
            for name in names {
                if let Ok(project) = index.project(name) {
                    notes.extend(explain_unusable(
                        name,
                        &project.unusable,
                        index.python(),
                        platform,
                    ));
                }
            }
            return Err(LockError::Unsatisfiable {
                chain: ascii(&chain),
                notes,
            });
        }
        Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
        | Err(PubGrubError::ErrorChoosingVersion { source, .. })
        | Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source),
    };
    let mut pins = BTreeMap::new();
    for (pkg, version) in solution.iter() {
        if let Pkg::Project(name) = pkg {
            let c = provider.candidate(name, version)?;
            pins.insert(name.clone(), (version.clone(), c));
        }
    }
    // Who needs what: walk the chosen versions' requirements once more (all cached).
    let mut required_by: BTreeMap<PackageName, BTreeSet<String>> = BTreeMap::new();
    for r in request.requires {
        if r.marker.evaluate(&provider.env, &[]) {
            required_by
                .entry(r.name.clone())
                .or_default()
                .insert("requires".into());
        }
    }
    for (pkg, version) in solution.iter() {
        let (name, extras): (&PackageName, Vec<ExtraName>) = match pkg {
            Pkg::Project(n) => (n, vec![]),
            Pkg::Extra(n, e) => (n, vec![e.clone()]),
            Pkg::Root => continue,
        };
        let meta = provider.metadata(name, version)?;
        for r in &meta.requires {
            if r.marker.evaluate(&provider.env, &extras) && &r.name != name {
                required_by
                    .entry(r.name.clone())
                    .or_default()
                    .insert(name.to_string());
            }
        }
    }
    Ok(Resolution { pins, required_by })
}

fn explain_unusable(
    name: &PackageName,
    unusable: &BTreeMap<Version, Unusable>,
    python: PythonVersion,
    platform: Platform,
) -> Vec<String> {
    // The newest few are what a reader needs; older ones say the same.
    unusable
        .iter()
        .rev()
        .take(4)
        .map(|(v, why)| match why {
            Unusable::NoWheel => format!(
                "{name} {v} has no wheel for CPython {}.{} on {platform} ({}, abi3 or py3-none-any)",
                python.major,
                python.minor,
                python.cp_tag()
            ),
            Unusable::RequiresPython(rp) => {
                format!("{name} {v} requires Python {rp}, not {python}")
            }
            Unusable::Yanked(why) if why.is_empty() => format!("{name} {v} is yanked"),
            Unusable::Yanked(why) => format!("{name} {v} is yanked ({why})"),
        })
        .collect()
}

/// PowerShell 5.1 shows only ASCII: the solver's empty-set sign becomes words.
fn ascii(s: &str) -> String {
    s.replace('\u{2205}', "no version")
        .replace("the manifest's requires 0 ", "the manifest's requires ")
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

//! Wheel file names (PEP 427), project name normalization (PEP 503) and the tags a
//! Windows CPython accepts (the order `packaging.tags` uses).

use std::fmt;
use std::str::FromStr;

use super::platform::{Platform, PythonVersion};

/// A parsed wheel file name: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    raw: String,
    /// The distribution name as written in the file name.
    pub name: String,
    /// The version as written.
    pub version: String,
    /// The optional build tag.
    pub build: Option<String>,
    /// Python tags (`py3`, `cp312`, …), split on `.`.
    pub python_tags: Vec<String>,
    /// ABI tags (`none`, `abi3`, `cp312`, …).
    pub abi_tags: Vec<String>,
    /// Platform tags (`any`, `win_amd64`, …).
    pub platform_tags: Vec<String>,
}

/// Why a string is not a wheel file name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name:?} is not a wheel file name ({why}); expected name-version-python-abi-platform.whl")]
pub struct WheelNameError {
    name: String,
    why: &'static str,
}

impl FromStr for WheelFilename {
    type Err = WheelNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| WheelNameError {
            name: s.to_string(),
            why,
        };
        if s.contains(['/', '\\']) {
            return Err(err("it contains a path separator"));
        }
        let stem = s
            .strip_suffix(".whl")
            .ok_or_else(|| err("it does not end in .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, py, abi, plat) = match parts.as_slice() {
            [n, v, p, a, pl] => (*n, *v, None, *p, *a, *pl),
            [n, v, b, p, a, pl] => (*n, *v, Some(*b), *p, *a, *pl),
            _ => return Err(err("it needs 5 or 6 dash-separated parts")),
        };
        if [name, version, py, abi, plat].iter().any(|p| p.is_empty()) {
            return Err(err("a part is empty"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._".contains(c))
        {
            return Err(err("the name may hold only letters, digits, '.' and '_'"));
        }
        if let Some(b) = build
            && !b.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(err("a build tag must start with a digit"));
        }
        let split = |t: &str| t.split('.').map(str::to_string).collect::<Vec<_>>();
        Ok(Self {
            raw: s.to_string(),
            name: name.to_string(),
            version: version.to_string(),
            build: build.map(str::to_string),
            python_tags: split(py),
            abi_tags: split(abi),
            platform_tags: split(plat),
        })
    }
}

impl fmt::Display for WheelFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl WheelFilename {
    /// The file name as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The PEP 503 normalized project name (used for the Simple API and duplicates).
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
    }

    /// Every `python-abi-platform` triple this file name claims.
    pub fn tags(&self) -> Vec<Tag> {
        let mut out = Vec::new();
        for p in &self.python_tags {
            for a in &self.abi_tags {
                for pl in &self.platform_tags {
                    out.push(Tag::new(p, a, pl));
                }
            }
        }
        out
    }

    /// True when one of its tags runs on CPython `python` for `platform`.
    pub fn is_compatible(&self, python: PythonVersion, platform: Platform) -> bool {
        let supported = supported_tags(python, platform);
        self.tags().iter().any(|t| supported.contains(t))
    }
}

/// One compatibility tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    /// Interpreter tag.
    pub python: String,
    /// ABI tag.
    pub abi: String,
    /// Platform tag.
    pub platform: String,
}

impl Tag {
    /// A tag from its three parts.
    pub fn new(python: &str, abi: &str, platform: &str) -> Self {
        Self {
            python: python.into(),
            abi: abi.into(),
            platform: platform.into(),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// The tags CPython `python` on `platform` accepts, most specific first.
///
/// Mirrors `packaging.tags.sys_tags()` for CPython on Windows: the interpreter's own ABI,
/// abi3 back to cp32, `none`, then the generic `py3x` tags and `any`.
pub(crate) fn supported_tags(python: PythonVersion, platform: Platform) -> Vec<Tag> {
    let plat = platform.tag();
    let cp = format!("cp{}{}", python.major, python.minor);
    let mut tags = vec![
        Tag::new(&cp, &cp, plat),
        Tag::new(&cp, "abi3", plat),
        Tag::new(&cp, "none", plat),
    ];
    for minor in (2..python.minor).rev() {
        tags.push(Tag::new(
            &format!("cp{}{}", python.major, minor),
            "abi3",
            plat,
        ));
    }
    let generic = |minor: Option<u8>| match minor {
        Some(m) => format!("py{}{}", python.major, m),
        None => format!("py{}", python.major),
    };
    let mut generics = vec![generic(Some(python.minor)), generic(None)];
    generics.extend((0..python.minor).rev().map(|m| generic(Some(m))));
    for g in &generics {
        tags.push(Tag::new(g, "none", plat));
    }
    tags.push(Tag::new(&cp, "none", "any"));
    for g in &generics {
        tags.push(Tag::new(g, "none", "any"));
    }
    tags
}

/// PEP 503: lowercase, runs of `-`, `_`, `.` become one `-`.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py312() -> PythonVersion {
        "3.12.10".parse().unwrap()
    }

    #[test]
    fn parses_names_with_and_without_build_tag() {
        let w: WheelFilename = "cryptography-50.0.2-cp311-abi3-win_amd64.whl"
            .parse()
            .unwrap();
        assert_eq!(w.name, "cryptography");
        assert_eq!(w.abi_tags, vec!["abi3"]);
        let b: WheelFilename = "foo-1.0-1b-py2.py3-none-any.whl".parse().unwrap();
        assert_eq!(b.build.as_deref(), Some("1b"));
        assert_eq!(b.python_tags, vec!["py2", "py3"]);
        assert!("foo-1.0.tar.gz".parse::<WheelFilename>().is_err());
        assert!("foo-1.0-py3-none.whl".parse::<WheelFilename>().is_err());
        assert!(
            "foo-1.0-x-py3-none-any.whl"
                .parse::<WheelFilename>()
                .is_err()
        );
        assert!(
            "../foo-1.0-py3-none-any.whl"
                .parse::<WheelFilename>()
                .is_err()
        );
    }

    #[test]
    fn compatibility_follows_cpython_on_windows() {
        let ok = [
            "a-1-py3-none-any.whl",
            "a-1-cp312-cp312-win_amd64.whl",
            "a-1-cp311-abi3-win_amd64.whl",
            "a-1-cp37-abi3-win_amd64.whl",
            "a-1-py2.py3-none-any.whl",
            "a-1-py312-none-win_amd64.whl",
        ];
        for n in ok {
            let w: WheelFilename = n.parse().unwrap();
            assert!(w.is_compatible(py312(), Platform::WinAmd64), "{n}");
        }
        let bad = [
            "a-1-cp311-cp311-win_amd64.whl",
            "a-1-cp313-abi3-win_amd64.whl",
            "a-1-cp312-cp312-win32.whl",
            "a-1-cp312-cp312-manylinux_2_17_x86_64.whl",
            "a-1-py2-none-any.whl",
            "a-1-pp310-pypy310_pp73-win_amd64.whl",
        ];
        for n in bad {
            let w: WheelFilename = n.parse().unwrap();
            assert!(!w.is_compatible(py312(), Platform::WinAmd64), "{n}");
        }
        let arm: WheelFilename = "a-1-cp312-cp312-win_arm64.whl".parse().unwrap();
        assert!(arm.is_compatible(py312(), Platform::WinArm64));
    }

    #[test]
    fn normalizes_like_pep_503() {
        assert_eq!(normalize_name("Charset_Normalizer"), "charset-normalizer");
        assert_eq!(normalize_name("a.-_b"), "a-b");
        assert_eq!(normalize_name("PyJWT"), "pyjwt");
    }
}

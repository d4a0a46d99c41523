//! The target of a distribution: the Windows platform and the CPython version, below the
//! manifest (`mod.rs`) and the wheel file names (`wheel.rs`), which both read them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// The Windows platforms an embeddable CPython exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Platform {
    /// 64-bit x86.
    #[serde(rename = "win_amd64")]
    WinAmd64,
    /// 32-bit x86.
    #[serde(rename = "win32")]
    Win32,
    /// 64-bit ARM.
    #[serde(rename = "win_arm64")]
    WinArm64,
}

impl Platform {
    /// The wheel platform tag.
    pub fn tag(self) -> &'static str {
        match self {
            Platform::WinAmd64 => "win_amd64",
            Platform::Win32 => "win32",
            Platform::WinArm64 => "win_arm64",
        }
    }

    /// The suffix python.org gives the embeddable zip: `python-X.Y.Z-embed-<suffix>.zip`.
    pub fn embed_suffix(self) -> &'static str {
        match self {
            Platform::WinAmd64 => "amd64",
            Platform::Win32 => "win32",
            Platform::WinArm64 => "arm64",
        }
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "win_amd64" => Ok(Platform::WinAmd64),
            "win32" => Ok(Platform::Win32),
            "win_arm64" => Ok(Platform::WinArm64),
            other => Err(format!(
                "unknown platform {other:?}; expected one of win_amd64, win32, win_arm64"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(crate::base::parse::ParseVisitor::new(
            "a platform: win_amd64, win32 or win_arm64",
        ))
    }
}

/// A final CPython release version `X.Y.Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PythonVersion {
    /// Major (3).
    pub major: u8,
    /// Minor (12).
    pub minor: u8,
    /// Micro (10).
    pub patch: u8,
}

impl PythonVersion {
    /// `python312._pth`: the file that sets the embeddable Python's path.
    pub fn pth_name(self) -> String {
        format!("python{}{}._pth", self.major, self.minor)
    }

    /// `cp312`.
    pub fn cp_tag(self) -> String {
        format!("cp{}{}", self.major, self.minor)
    }

    /// The names python.org gives this release's embeddable zip for `platform`, in the order
    /// to look for them: `python-X.Y.Z-embed-<arch>.zip`, its name up to 3.13 and for the
    /// first 3.14 releases, then `python-X.Y.Z-embeddable-<arch>.zip`, the name later 3.14
    /// releases carry (python.org's SBOMs
    /// `3.14.7/python-3.14.7-embeddable-win32.zip.spdx.json` and
    /// `3.14.10/python-3.14.10-embeddable-amd64.zip.spdx.json` describe files of that name;
    /// `3.14.3/python-3.14.3-embed-amd64.zip.spdx.json` and 3.13.16's still the short one).
    pub fn embed_files(self, platform: Platform) -> [String; 2] {
        let arch = platform.embed_suffix();
        [
            format!("python-{self}-embed-{arch}.zip"),
            format!("python-{self}-embeddable-{arch}.zip"),
        ]
    }
}

impl FromStr for PythonVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("{s:?} is not a Python release version; write all three parts, like 3.12.10")
        };
        let parts: Vec<&str> = s.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad());
        };
        let num = |p: &str| p.parse::<u8>().map_err(|_| bad());
        let v = Self {
            major: num(major)?,
            minor: num(minor)?,
            patch: num(patch)?,
        };
        if v.major != 3 {
            return Err(format!(
                "Python {s} is not supported; the embeddable distribution is CPython 3"
            ));
        }
        Ok(v)
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for PythonVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PythonVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(crate::base::parse::ParseVisitor::new(
            "a Python release version like 3.12.10 (quote it if YAML reads it as a number)",
        ))
    }
}

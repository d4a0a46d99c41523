//! Windows versions and the CPython lines each can run: the OS gate of `build`, `layout` and
//! the upgrade runbook.
//!
//! Where the table comes from (CPython's own documentation, following PEP 11's rule that a
//! release supports a Windows version while Microsoft gives it extended support):
//! - 3.9 to 3.12: "Python 3.x supports Windows 8.1 and newer" (Doc/using/windows.rst of those
//!   releases; 3.9 dropped Windows 7). CPython issue 121458 notes that by PEP 11's letter 8.1
//!   left support with 3.12 (its extended support ended in January 2023), but the 3.12
//!   Windows binaries still run there, and Server 2012 R2 (the same kernel, 6.3) was in
//!   extended support until October 2023, after 3.12.0 was released.
//! - 3.13 and 3.14: "Python 3.13 supports Windows 10 and newer ... If you require Windows 8.1
//!   support, please install Python 3.12" (CPython pull request 124822, gh-124487); on the
//!   server side that is Windows Server 2016 (10.0.14393) or newer.
//! - Later lines are taken to need Windows 10 / Server 2016 too until this table says more.

use std::fmt;

use crate::model::manifest::PythonVersion;

/// A Windows version: `major.minor` and, when known, the build number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowsVersion {
    /// 6 for Windows 8.1 / Server 2012 R2, 10 for Windows 10 and 11 / Server 2016 and later.
    pub major: u32,
    /// 3 for 8.1 / 2012 R2.
    pub minor: u32,
    /// The build (9600, 14393, 17763, ...), when known.
    pub build: Option<u32>,
}

/// Product names people write in a topology, with the version they stand for.
const PRODUCTS: &[(&str, u32, u32, u32)] = &[
    ("server 2008 r2", 6, 1, 7601),
    ("7", 6, 1, 7601),
    ("server 2012 r2", 6, 3, 9600),
    ("8.1", 6, 3, 9600),
    ("server 2012", 6, 2, 9200),
    ("8", 6, 2, 9200),
    ("server 2016", 10, 0, 14393),
    ("server 2019", 10, 0, 17763),
    ("server 2022", 10, 0, 20348),
    ("server 2025", 10, 0, 26100),
    ("10", 10, 0, 10240),
    ("11", 10, 0, 22000),
];

impl WindowsVersion {
    /// Parses what a topology's `os:` holds: a product name (`Server 2012 R2`, `Windows
    /// Server 2019`, `Windows 10`), a version (`6.3.9600`, `10.0.17763`, `6.3`) or a build
    /// number alone (`9600`, `17763`).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let bad = || {
            format!(
                "{text:?} is not a Windows version extpy knows; write a product name (Server 2012 R2, Server 2019, Windows 10), a version (6.3.9600, 10.0.17763) or a build number (9600, 17763)"
            )
        };
        let lower = text.to_ascii_lowercase();
        let words: Vec<&str> = lower
            .split_whitespace()
            .filter(|w| *w != "microsoft" && *w != "windows")
            .collect();
        let name = words.join(" ");
        if let Some((_, major, minor, build)) = PRODUCTS.iter().find(|(n, ..)| *n == name)
            && (words.first() == Some(&"server") || lower.contains("windows"))
        {
            return Ok(Self {
                major: *major,
                minor: *minor,
                build: Some(*build),
            });
        }
        let numbers: Vec<u32> = text
            .split('.')
            .map(|p| p.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        if numbers.len() > 1 && numbers[0] != 6 && numbers[0] != 10 {
            return Err(bad());
        }
        match numbers.as_slice() {
            [build] => Self::from_build(*build).ok_or_else(bad),
            [major, minor] => Ok(Self {
                major: *major,
                minor: *minor,
                build: None,
            }),
            [major, minor, build] => Ok(Self {
                major: *major,
                minor: *minor,
                build: Some(*build),
            }),
            _ => Err(bad()),
        }
    }

    /// The version a build number alone stands for.
    fn from_build(build: u32) -> Option<Self> {
        let (major, minor) = match build {
            10240.. => (10, 0),
            9600 => (6, 3),
            9200 => (6, 2),
            7600 | 7601 => (6, 1),
            _ => return None,
        };
        Some(Self {
            major,
            minor,
            build: Some(build),
        })
    }

    fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The products this version is, as people name them.
    pub(crate) fn products(self) -> &'static str {
        match (self.major, self.minor) {
            (10, _) => match self.build {
                Some(14393) => "Windows 10 1607 / Server 2016",
                Some(17763) => "Windows 10 1809 / Server 2019",
                Some(20348) => "Server 2022",
                Some(26100) => "Windows 11 24H2 / Server 2025",
                Some(b) if b >= 22000 => "Windows 11",
                _ => "Windows 10 / Server 2016 or later",
            },
            (6, 3) => "Windows 8.1 / Server 2012 R2",
            (6, 2) => "Windows 8 / Server 2012",
            (6, 1) => "Windows 7 / Server 2008 R2",
            _ => "an older Windows",
        }
    }
}

impl fmt::Display for WindowsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.build {
            Some(b) => write!(f, "{} ({}.{}.{b})", self.products(), self.major, self.minor),
            None => write!(f, "{} ({}.{})", self.products(), self.major, self.minor),
        }
    }
}

/// What a CPython line needs of Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Minimum {
    /// Its `major.minor`.
    pub major: u32,
    /// See `major`.
    pub minor: u32,
    /// The oldest products it runs on.
    pub products: &'static str,
}

/// The oldest Windows a CPython line runs on, or `None` for lines older than this table
/// (3.8 and earlier, which extpy does not gate).
pub(crate) fn minimum(python: PythonVersion) -> Option<Minimum> {
    match (python.major, python.minor) {
        (3, 9..=12) => Some(Minimum {
            major: 6,
            minor: 3,
            products: "Windows 8.1 / Server 2012 R2",
        }),
        (3, 13..) => Some(Minimum {
            major: 10,
            minor: 0,
            products: "Windows 10 / Server 2016",
        }),
        _ => None,
    }
}

/// The CPython lines (of those the table knows) that run on `os`, as people read them.
pub(crate) fn lines_that_run_on(os: WindowsVersion) -> &'static str {
    if os.at_least(10, 0) {
        "3.9 and later (3.13 and 3.14 included)"
    } else if os.at_least(6, 3) {
        "3.9 to 3.12"
    } else {
        "none of 3.9 and later (3.8 was the last for Windows 7)"
    }
}

/// Whether CPython `python` runs on `os`; the refusal says which lines do.
pub(crate) fn check(python: PythonVersion, os: WindowsVersion) -> Result<(), String> {
    let Some(min) = minimum(python) else {
        return Ok(());
    };
    if os.at_least(min.major, min.minor) {
        return Ok(());
    }
    Err(format!(
        "CPython {}.{}.{} needs {} ({}.{}) or newer, and {os} cannot run it; the CPython lines that run there are {}",
        python.major,
        python.minor,
        python.patch,
        min.products,
        min.major,
        min.minor,
        lines_that_run_on(os)
    ))
}

/// The Windows version this machine runs, read from the registry
/// (`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`); `None` off Windows or when unreadable.
pub(crate) fn running() -> Option<WindowsVersion> {
    #[cfg(windows)]
    {
        use crate::mechanism::registry;
        use windows_sys::Win32::System::Registry::HKEY_LOCAL_MACHINE;
        const KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";
        let build = registry::string(HKEY_LOCAL_MACHINE, KEY, "CurrentBuildNumber")
            .and_then(|b| b.trim().parse::<u32>().ok());
        // Windows 10 and later keep CurrentVersion at "6.3" for old programs and write the
        // real numbers in these two values.
        if let Some(major) = registry::dword(HKEY_LOCAL_MACHINE, KEY, "CurrentMajorVersionNumber") {
            let minor =
                registry::dword(HKEY_LOCAL_MACHINE, KEY, "CurrentMinorVersionNumber").unwrap_or(0);
            return Some(WindowsVersion {
                major,
                minor,
                build,
            });
        }
        let current = registry::string(HKEY_LOCAL_MACHINE, KEY, "CurrentVersion")?;
        let (major, minor) = current.trim().split_once('.')?;
        Some(WindowsVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
            build,
        })
    }
    #[cfg(not(windows))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(s: &str) -> PythonVersion {
        s.parse().unwrap()
    }

    #[test]
    fn names_versions_and_builds_parse_to_the_same_version() {
        let r2 = WindowsVersion::parse("Server 2012 R2").unwrap();
        assert_eq!(r2, WindowsVersion::parse("Windows Server 2012 R2").unwrap());
        assert_eq!(r2, WindowsVersion::parse("6.3.9600").unwrap());
        assert_eq!(r2, WindowsVersion::parse("9600").unwrap());
        assert_eq!(r2.to_string(), "Windows 8.1 / Server 2012 R2 (6.3.9600)");
        let s2019 = WindowsVersion::parse("server 2019").unwrap();
        assert_eq!(s2019, WindowsVersion::parse("10.0.17763").unwrap());
        assert_eq!(s2019, WindowsVersion::parse("17763").unwrap());
        assert_eq!(
            WindowsVersion::parse("Windows 10").unwrap().major,
            10,
            "a client product name"
        );
        assert_eq!(WindowsVersion::parse("6.3").unwrap().build, None);
    }

    #[test]
    fn what_is_not_a_windows_version_is_refused_with_examples() {
        for bad in [
            "",
            "Server 2013",
            "10",
            "8.1",
            "1234",
            "6.3.x",
            "1.2.3.4",
            "Linux",
        ] {
            let e = WindowsVersion::parse(bad).unwrap_err();
            assert!(
                e.contains("Server 2012 R2") && e.contains("17763"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn cpython_3_13_and_later_need_windows_10_and_3_12_runs_on_2012_r2() {
        let r2 = WindowsVersion::parse("Server 2012 R2").unwrap();
        let s2016 = WindowsVersion::parse("Server 2016").unwrap();
        assert_eq!(check(py("3.12.10"), r2), Ok(()));
        for v in ["3.13.9", "3.14.0", "3.15.1"] {
            let e = check(py(v), r2).unwrap_err();
            assert!(
                e.contains(&format!(
                    "CPython {v} needs Windows 10 / Server 2016 (10.0)"
                )) && e.contains("Server 2012 R2 (6.3.9600) cannot run it")
                    && e.contains("are 3.9 to 3.12"),
                "{e}"
            );
            assert_eq!(check(py(v), s2016), Ok(()));
        }
        let s2012 = WindowsVersion::parse("Server 2012").unwrap();
        let e = check(py("3.12.10"), s2012).unwrap_err();
        assert!(
            e.contains("needs Windows 8.1 / Server 2012 R2 (6.3)"),
            "{e}"
        );
        assert_eq!(check(py("3.8.10"), s2012), Ok(()), "not gated");
    }
}

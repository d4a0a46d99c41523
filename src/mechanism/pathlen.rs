//! The longest path of a tree at its destination, known before a byte is written: Windows
//! programs that are not long-path aware, and CPython on a machine without
//! `LongPathsEnabled`, cannot open a file whose full path is longer than MAX_PATH (260
//! characters with the terminating NUL, so 259 usable). A tree that would hold such a file
//! imports fine on the build machine and fails on the node.

use serde::Serialize;

/// The most characters a full path may have without long-path support (MAX_PATH - 1).
pub(crate) const MAX_PATH_CHARS: usize = 259;

/// Where the `LongPathsEnabled` value lives (HKLM).
pub(crate) const LONG_PATHS_KEY: &str = "SYSTEM\\CurrentControlSet\\Control\\FileSystem";

/// The longest full path of a tree at its destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LongestPath {
    /// The full path, as the node will see it.
    pub path: String,
    /// Its length in characters (UTF-16 units, as Windows counts).
    pub length: usize,
}

impl LongestPath {
    /// True when it fits within MAX_PATH.
    pub(crate) fn fits(&self) -> bool {
        self.length <= MAX_PATH_CHARS
    }
}

/// The longest of `root` joined with each `/`-separated relative path in `rels`. A root in
/// Windows form (a drive letter or a backslash) is joined with backslashes.
pub(crate) fn longest<'a>(
    root: &str,
    rels: impl IntoIterator<Item = &'a str>,
) -> Option<LongestPath> {
    let windows = root.contains('\\') || root.as_bytes().get(1) == Some(&b':');
    let sep = if windows { '\\' } else { '/' };
    let root = root.trim_end_matches(['\\', '/']);
    let root_len = root.encode_utf16().count() + 1;
    let (rel, len) = rels
        .into_iter()
        .map(|r| (r, root_len + r.encode_utf16().count()))
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))?;
    let rel = if windows {
        rel.replace('/', "\\")
    } else {
        rel.to_string()
    };
    Some(LongestPath {
        path: format!("{root}{sep}{rel}"),
        length: len,
    })
}

/// Whether full paths over MAX_PATH work for CPython on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LongPaths {
    /// `LongPathsEnabled` is 1 in this machine's registry.
    Registry,
    /// The topology says the node has it (`long_paths: true`).
    Topology,
    /// Not enabled, or not known (then the limit holds).
    Off,
}

impl LongPaths {
    /// This machine's setting: the registry on Windows; elsewhere `topology` (a node's
    /// `long_paths:`), since the node's registry cannot be read from here.
    pub(crate) fn here(topology: Option<bool>) -> Self {
        if registry_enabled() {
            LongPaths::Registry
        } else if topology == Some(true) {
            LongPaths::Topology
        } else {
            LongPaths::Off
        }
    }

    /// True when paths over the limit work, for a CPython of `minor` (3.`minor`): its
    /// python.exe is long-path aware since 3.6.
    pub(crate) fn honoured(self, minor: Option<u32>) -> bool {
        self != LongPaths::Off && minor.is_none_or(|m| m >= 6)
    }
}

#[cfg(windows)]
fn registry_enabled() -> bool {
    use windows_sys::Win32::System::Registry::HKEY_LOCAL_MACHINE;
    crate::mechanism::registry::dword(HKEY_LOCAL_MACHINE, LONG_PATHS_KEY, "LongPathsEnabled")
        == Some(1)
}

#[cfg(not(windows))]
fn registry_enabled() -> bool {
    false
}

/// A tree that would hold a path over MAX_PATH where long paths do not work.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: this path would be {} characters long, over the {MAX_PATH_CHARS} Windows allows without LongPathsEnabled, so Python could not import from it; nothing was written\n  help: {}",
    .0.path,
    .0.length,
    help(.0)
)]
pub struct PathTooLong(pub LongestPath);

/// The longest path of a tree at `root` made of `rels`, refused when it is over the limit
/// and `long_paths` does not lift it for a CPython 3.`minor`.
pub(crate) fn preflight<'a>(
    root: &str,
    rels: impl IntoIterator<Item = &'a str>,
    long_paths: LongPaths,
    minor: Option<u32>,
) -> Result<Option<LongestPath>, PathTooLong> {
    match longest(root, rels) {
        Some(l) if !l.fits() && !long_paths.honoured(minor) => Err(PathTooLong(l)),
        other => Ok(other),
    }
}

/// The fix for a path over the limit, in a line.
pub(crate) fn help(longest: &LongestPath) -> String {
    format!(
        "choose a shorter VU root or destination (this one is {} characters over), or set LongPathsEnabled=1 on the node (reg add HKLM\\{LONG_PATHS_KEY} /v LongPathsEnabled /t REG_DWORD /d 1 /f, or the policy \"Enable Win32 long paths\"; on Linux for a node, long_paths: true in the topology)",
        longest.length - MAX_PATH_CHARS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_path_is_joined_in_the_roots_form_and_counted_in_utf16() {
        let l = longest(
            "C:\\usr\\sap\\VU\\",
            ["a/b.py", "Lib/site-packages/x.py", "c"],
        )
        .unwrap();
        assert_eq!(l.path, "C:\\usr\\sap\\VU\\Lib\\site-packages\\x.py");
        assert_eq!(l.length, l.path.len());
        let l = longest("/tmp/d", ["\u{e9}t\u{e9}.py"]).unwrap();
        assert_eq!((l.path.as_str(), l.length), ("/tmp/d/\u{e9}t\u{e9}.py", 13));
        assert!(longest("C:\\x", std::iter::empty()).is_none());
    }

    #[test]
    fn the_limit_is_259_characters() {
        let root = format!("C:\\{}", "d".repeat(250));
        let at = |n: usize| longest(&root, [&*"f".repeat(n)]).unwrap();
        assert_eq!(at(5).length, 259);
        assert!(at(5).fits());
        assert!(!at(6).fits());
        assert!(help(&at(6)).contains("1 characters over"));
    }

    #[test]
    fn the_preflight_refuses_only_where_long_paths_do_not_help() {
        let root = format!("C:\\{}", "d".repeat(255));
        let rels = ["Lib/x.py"];
        let e = preflight(&root, rels, LongPaths::Off, Some(12)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "{root}\\Lib\\x.py: this path would be 267 characters"
            )),
            "{text}"
        );
        assert!(
            text.contains("\n  help: ") && text.contains("long_paths: true"),
            "{text}"
        );
        assert!(
            preflight(&root, rels, LongPaths::Topology, Some(12))
                .unwrap()
                .is_some()
        );
        assert!(preflight(&root, rels, LongPaths::Registry, Some(5)).is_err());
        assert!(
            preflight("C:\\x", rels, LongPaths::Off, None)
                .unwrap()
                .unwrap()
                .fits()
        );
    }

    #[test]
    fn long_paths_count_only_where_cpython_honours_them() {
        assert!(!LongPaths::Off.honoured(Some(12)));
        assert!(LongPaths::Topology.honoured(Some(12)));
        assert!(!LongPaths::Registry.honoured(Some(5)));
        assert_eq!(
            LongPaths::here(Some(true)),
            if cfg!(windows) && registry_enabled() {
                LongPaths::Registry
            } else {
                LongPaths::Topology
            }
        );
    }
}

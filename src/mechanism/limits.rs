//! Size and nesting limits for every file extpy reads (manifests, topologies, seals, reports,
//! PEM files, bundle entries), and the refusal of anything that is not a regular file: a
//! `manifest: /dev/zero` or a FIFO must end in a clear error, not in memory or a hang.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Manifests, topologies and bundle manifests (YAML).
pub(crate) const MAX_YAML: u64 = 4 << 20;
/// Seals and reports (JSON); a seal lists every file of a distribution.
pub(crate) const MAX_JSON: u64 = 64 << 20;
/// PEM certificate files.
pub(crate) const MAX_PEM: u64 = 4 << 20;
/// Deepest YAML nesting accepted (real manifests and topologies use fewer than 10 levels).
pub(crate) const MAX_YAML_DEPTH: usize = 64;

/// The cause inside an `io::Error` when a limit refused a file: the input is hostile or
/// wrong (exit 2, or 3 for what is verified, such as a seal), not a local failure.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(kind: io::ErrorKind, why: String) -> io::Error {
    io::Error::new(kind, Refused(why))
}

/// True when `e` is a refusal by one of these limits (too large, not a regular file, not
/// text), not a failure of the file system.
pub(crate) fn is_refusal(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Refused>())
}

/// Reads a whole regular file of at most `max` bytes.
///
/// A device, FIFO, socket or folder is refused before it is opened (opening a FIFO would
/// wait for a writer), and reading stops at `max + 1` bytes, so neither `/dev/zero` nor a
/// growing file can fill memory.
pub(crate) fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    check_regular(&std::fs::metadata(path)?)?;
    let file = File::open(path)?;
    check_regular(&file.metadata()?)?;
    let mut out = Vec::new();
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(refused(
            io::ErrorKind::InvalidData,
            format!(
                "it is larger than the {} allowed for this kind of file",
                crate::base::report::human_bytes(max)
            ),
        ));
    }
    Ok(out)
}

/// [`read_regular`] for text: the bytes must be UTF-8.
pub(crate) fn read_regular_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, max)?)
        .map_err(|_| refused(io::ErrorKind::InvalidData, "it is not UTF-8 text".into()))
}

fn check_regular(meta: &std::fs::Metadata) -> io::Result<()> {
    if meta.is_file() {
        Ok(())
    } else {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, pipe or socket)"
        };
        Err(refused(
            io::ErrorKind::InvalidInput,
            format!("it is {what}; extpy reads only regular files"),
        ))
    }
}

/// Checks that YAML text nests no deeper than `max` levels, before a parser sees it: a
/// parser takes seconds to reject 100,000 levels, this scan takes one pass. Block nesting
/// is bounded through indentation and `- ` markers on a line, flow nesting by counting
/// `[`/`{` outside quotes and comments. Returns the 1-based line that goes too deep.
pub(crate) fn check_yaml_nesting(text: &str, max: usize) -> Result<(), usize> {
    let mut flow = 0usize;
    let (mut single, mut double) = (false, false);
    for (i, line) in text.lines().enumerate() {
        if !single && !double && flow == 0 {
            let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
            let mut rest = line[indent..].trim_end();
            let mut dashes = 0;
            while let Some(r) = rest
                .strip_prefix('-')
                .filter(|r| r.is_empty() || r.starts_with([' ', '\t']))
            {
                dashes += 1;
                rest = r.trim_start();
            }
            // Each block level needs at least one column of indentation or one marker;
            // allow generous indentation steps before counting a line as too deep.
            if dashes > max || indent > 4 * max {
                return Err(i + 1);
            }
        }
        let mut chars = line.chars().peekable();
        let mut prev_space = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' if double => {
                    chars.next();
                }
                '"' if !single => double = !double,
                '\'' if !double => single = !single,
                '#' if !single && !double && prev_space => break,
                '[' | '{' if !single && !double => {
                    flow += 1;
                    if flow > max {
                        return Err(i + 1);
                    }
                }
                ']' | '}' if !single && !double => flow = flow.saturating_sub(1),
                _ => {}
            }
            prev_space = c.is_whitespace();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_yaml_is_refused_at_its_line() {
        assert_eq!(check_yaml_nesting(&"[".repeat(100_000), 64), Err(1));
        assert_eq!(
            check_yaml_nesting(&format!("a: 1\nb:\n{}x", "- ".repeat(100_000)), 64),
            Err(3)
        );
        let indented: String = (0..1000)
            .map(|d| format!("{}k{d}:\n", " ".repeat(d)))
            .collect();
        assert_eq!(check_yaml_nesting(&indented, 64), Err(258));
        assert_eq!(check_yaml_nesting(&"{a: ".repeat(65), 64), Err(1));
    }

    #[test]
    fn ordinary_yaml_and_brackets_in_strings_pass() {
        let text = "schema: 1\nnodes:\n  - name: A # [[[[\n    cores: [Core1, { core: X, vu: Y }]\n    host: \"{{{{{{{{\"\n    x: '[[[[[['\n";
        assert_eq!(check_yaml_nesting(text, 3), Ok(()));
        assert_eq!(check_yaml_nesting(&"[".repeat(64), 64), Ok(()));
    }

    #[test]
    fn devices_folders_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular(dir.path(), 10).unwrap_err();
        assert!(err.to_string().contains("a folder"), "{err}");
        #[cfg(unix)]
        {
            let err = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 11]).unwrap();
        let err = read_regular(&big, 10).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        std::fs::write(&big, vec![b'x'; 10]).unwrap();
        assert_eq!(read_regular(&big, 10).unwrap().len(), 10);
    }
}

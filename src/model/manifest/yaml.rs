//! Loading YAML with errors that point at file, line and field.

use std::fmt;

use serde::de::DeserializeOwned;

/// Where a manifest or topology came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub String);

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A problem in an input file, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or `builtin:` name).
    pub origin: Origin,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path such as `wheels[2].sha256`, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl InputError {
    /// An error at a field, with the line found by `locate`.
    pub fn at(
        origin: &Origin,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            origin: origin.clone(),
            line,
            column: None,
            field: Some(field.into()),
            message: message.into(),
            help: None,
        }
    }

    /// Adds what the user should do.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// Reads an input file; a failure names the file, says what it is and what to check.
pub(crate) fn read_file(
    path: &std::path::Path,
    what: &str,
    help: &str,
) -> Result<(Origin, String), InputError> {
    let origin = Origin(path.display().to_string());
    match crate::mechanism::limits::read_regular_text(path, crate::mechanism::limits::MAX_YAML) {
        Ok(text) => Ok((origin, text)),
        Err(e) => Err(InputError {
            origin,
            line: None,
            column: None,
            field: None,
            message: format!("cannot read the {what}: {e}"),
            help: Some(help.to_string()),
        }),
    }
}

/// Parses `text` as `T`, turning serde's error into an [`InputError`] with line, column and field.
pub(crate) fn parse<T: DeserializeOwned>(origin: &Origin, text: &str) -> Result<T, InputError> {
    let max = crate::mechanism::limits::MAX_YAML_DEPTH;
    if let Err(line) = crate::mechanism::limits::check_yaml_nesting(text, max) {
        return Err(InputError {
            origin: origin.clone(),
            line: Some(line),
            column: None,
            field: None,
            message: format!("the YAML nests deeper than the {max} levels extpy reads"),
            help: Some(
                "this is not a manifest or topology extpy wrote or documents; check the file"
                    .into(),
            ),
        });
    }
    serde_yaml::from_str(text).map_err(|e| {
        let location = e.location();
        let mut message = e.to_string();
        if let Some(loc) = &location {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        // serde prefixes the field path as `a.b[2].c: `; keep it apart so it reads like ours.
        let (field, message) = match message.split_once(": ") {
            Some((path, rest)) if looks_like_path(path) => {
                (Some(path.to_string()), rest.to_string())
            }
            _ => (None, message),
        };
        InputError {
            origin: origin.clone(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            field,
            message,
            help: None,
        }
    })
}

fn looks_like_path(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(' ')
        && s.chars()
            .all(|c| c.is_alphanumeric() || "._-[]".contains(c))
}

/// The 1-based line of the `nth` (0-based) occurrence of `needle` in `text`, as a whole
/// YAML token (so `vu` does not match inside `vu_root`), outside comments.
///
/// serde does not keep positions after deserialization, so checks that span several
/// fields (duplicates, tag compatibility) find the offending value's line this way.
pub(crate) fn locate(text: &str, needle: &str, nth: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let boundary =
        |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || "'\"[]{},:#".contains(c));
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let code = match line.find(" #") {
            Some(at) if !line.trim_start().starts_with('#') => &line[..at],
            _ if line.trim_start().starts_with('#') => "",
            _ => line,
        };
        let mut from = 0;
        while let Some(pos) = code[from..].find(needle) {
            let start = from + pos;
            let end = start + needle.len();
            if boundary(code[..start].chars().next_back()) && boundary(code[end..].chars().next()) {
                if seen == nth {
                    return Some(i + 1);
                }
                seen += 1;
            }
            from = end;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
    }

    #[test]
    fn unknown_key_has_line_and_field() {
        let origin = Origin("t.yaml".into());
        let err = parse::<Doc>(&origin, "items:\n  - name: a\n  - nmae: b\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.field.as_deref(), Some("items[1]"));
        assert!(err.message.contains("unknown field `nmae`"), "{err}");
        assert!(err.to_string().starts_with("t.yaml:3:"), "{err}");
    }

    #[test]
    fn locate_counts_occurrences_and_skips_comments() {
        let text = "a: x # x\nb: x\nc: y\n# y\n";
        assert_eq!(locate(text, "x", 0), Some(1));
        assert_eq!(locate(text, "x", 1), Some(2));
        assert_eq!(locate(text, "x", 2), None);
        assert_eq!(locate(text, "y", 0), Some(3));
        assert_eq!(locate(text, "y", 1), None);
    }

    #[test]
    fn locate_matches_whole_tokens_only() {
        let text = "vu_root: 'D:\\v'\nvu: vu\ncores: [Core1, Core10]\n";
        assert_eq!(locate(text, "vu", 0), Some(2));
        assert_eq!(locate(text, "vu", 1), Some(2));
        assert_eq!(locate(text, "Core1", 0), Some(3));
        assert_eq!(locate(text, "Core1", 1), None);
        assert_eq!(locate(text, "D:\\v", 0), Some(1));
    }
}

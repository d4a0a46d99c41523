//! The embeddable Python's `pythonXY._pth`: it ignores PYTHONPATH, so this file is what puts
//! `Lib\site-packages` on the path and runs `import site`.

/// The `.pth` file in `Lib\site-packages` that makes `requests` and `msal` verify TLS against
/// the Windows certificate store (`runtime_trust: system`). `site` runs a `.pth` line that
/// starts with `import` at every interpreter start, which it does only because the `._pth`
/// file enables `import site` (see [`enable_site_packages`]).
pub(crate) const TRUSTSTORE_HOOK: &str = "extpy-truststore.pth";

/// The hook's one line: truststore replaces `ssl.SSLContext` before anything imports
/// requests or urllib3.
pub(crate) const TRUSTSTORE_HOOK_TEXT: &str = "import truststore; truststore.inject_into_ssl()\n";

/// The path line extpy guarantees.
pub(crate) const SITE_PACKAGES_LINE: &str = "Lib\\site-packages";

/// Returns `text` with `Lib\site-packages` listed and `import site` enabled, each exactly
/// once, every other line kept in order, and the file's own line endings.
pub(crate) fn enable_site_packages(text: &str) -> String {
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = Vec::new();
    let mut has_site_packages = false;
    let mut has_import_site = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if is_site_packages(trimmed) {
            if !has_site_packages {
                lines.push(SITE_PACKAGES_LINE.to_string());
                has_site_packages = true;
            }
            continue;
        }
        if is_import_site(trimmed) {
            if !has_import_site {
                lines.push("import site".to_string());
                has_import_site = true;
            }
            continue;
        }
        lines.push(line.to_string());
    }
    if !has_site_packages {
        // After the last path entry (the stdlib zip and `.`), before comments and imports.
        let at = lines
            .iter()
            .rposition(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#') && !t.starts_with("import ")
            })
            .map(|i| i + 1)
            .unwrap_or(0);
        lines.insert(at, SITE_PACKAGES_LINE.to_string());
    }
    if !has_import_site {
        lines.push("import site".to_string());
    }
    let mut out = lines.join(eol);
    out.push_str(eol);
    out
}

fn is_site_packages(line: &str) -> bool {
    let l = line.replace('/', "\\").to_ascii_lowercase();
    l.trim_end_matches('\\') == "lib\\site-packages"
        || l.trim_end_matches('\\') == ".\\lib\\site-packages"
}

fn is_import_site(line: &str) -> bool {
    let uncommented = line.trim_start_matches('#').trim();
    uncommented.split_whitespace().collect::<Vec<_>>() == ["import", "site"]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = "python312.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n";

    #[test]
    fn edits_the_file_python_org_ships() {
        let out = enable_site_packages(SHIPPED);
        assert_eq!(
            out,
            "python312.zip\r\n.\r\nLib\\site-packages\r\n\r\n# Uncomment to run site.main() automatically\r\nimport site\r\n"
        );
    }

    #[test]
    fn is_idempotent() {
        let once = enable_site_packages(SHIPPED);
        assert_eq!(enable_site_packages(&once), once);
    }

    #[test]
    fn keeps_one_of_each_and_other_lines() {
        let text = "python312.zip\n.\nlib/site-packages\nC:\\extra\nLib\\site-packages\\\n# import site\nimport site\n";
        let out = enable_site_packages(text);
        assert_eq!(
            out,
            "python312.zip\n.\nLib\\site-packages\nC:\\extra\nimport site\n"
        );
        assert_eq!(out.matches("import site").count(), 1);
    }

    #[test]
    fn adds_both_to_a_bare_file() {
        assert_eq!(
            enable_site_packages("python312.zip\n."),
            "python312.zip\n.\nLib\\site-packages\nimport site\n"
        );
        assert_eq!(
            enable_site_packages(""),
            "Lib\\site-packages\nimport site\n"
        );
    }

    #[test]
    fn does_not_mistake_other_imports_or_comments() {
        let out = enable_site_packages(
            "python312.zip\n# import site-specific things\nimport sitecustomize\n",
        );
        assert!(out.contains("# import site-specific things\n"));
        assert!(out.contains("import sitecustomize\n"));
        assert!(out.ends_with("import site\n"));
    }
}

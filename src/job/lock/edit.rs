//! Rewrites a manifest's pins in its own text: unchanged entries stay byte for byte, changed
//! ones get their values replaced in place (comments and key order kept), new ones are
//! appended in the style of the first, dropped ones go with the comments just above them.
//! The caller parses the result again and refuses it unless it says exactly what was meant.

use std::collections::BTreeMap;

use crate::mechanism::sigstore::Identity;
use crate::model::manifest::normalize_name;

/// One pin as it is to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PinText {
    /// File name.
    pub file: String,
    /// sha256, hex.
    pub sha256: String,
    /// The URL to write, if any.
    pub url: Option<String>,
    /// The size to write, if any.
    pub size: Option<u64>,
    /// The `provenance:` value to write ([`pin_yaml`]); `None` leaves the entry's as it is.
    pub provenance: Option<String>,
}

/// A publisher pin as the manifest writes it: `none`, or a flow mapping whose values are
/// quoted unless they are plain words and paths.
pub(crate) fn pin_yaml(pin: &Option<Identity>) -> String {
    let v = |s: &str| {
        let plain = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._/-@".contains(c))
            && s != "none";
        if plain {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "''"))
        }
    };
    match pin {
        None => "none".into(),
        Some(Identity::GitHub {
            repository,
            workflow,
        }) => format!(
            "{{repository: {}, workflow: {}}}",
            v(repository),
            v(workflow)
        ),
        Some(Identity::Signer { identity, issuer }) => {
            format!("{{identity: {}, issuer: {}}}", v(identity), v(issuer))
        }
    }
}

/// The embeddable change of `--python`.
#[derive(Debug, Clone)]
pub(crate) struct PythonChange {
    /// Old and new `X.Y.Z`.
    pub old_version: String,
    /// New version.
    pub new_version: String,
    /// Old file name.
    pub old_file: String,
    /// Old sha256.
    pub old_sha256: String,
    /// New file name.
    pub new_file: String,
    /// New sha256.
    pub new_sha256: String,
    /// The `url:` to write, if any.
    pub url: Option<String>,
    /// The `size:` to write, if any.
    pub size: Option<u64>,
    /// The `provenance:` to write ([`pin_yaml`]), replacing the old one.
    pub provenance: String,
}

struct Entry {
    lines: Vec<String>,
    project: Option<String>,
}

/// The new text: `pins` (in this order) as the wheels, the rest of `text` as it was.
pub(crate) fn rewrite(text: &str, pins: &[PinText], python: Option<&PythonChange>) -> String {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let top_level = |l: &str| !l.is_empty() && !l.starts_with([' ', '\t', '#']);
    let start = lines.iter().position(|l| l.starts_with("wheels:"));
    let mut out: Vec<String> = Vec::new();
    let (before, block, after): (Vec<String>, Vec<String>, Vec<String>) = match start {
        Some(s) => {
            let end = lines[s + 1..]
                .iter()
                .position(|l| top_level(l))
                .map_or(lines.len(), |e| s + 1 + e);
            // Blank lines and column-0 comments at the end belong to what follows.
            let mut body_end = end;
            while body_end > s + 1 {
                let l = &lines[body_end - 1];
                if l.trim().is_empty() || l.starts_with('#') {
                    body_end -= 1;
                } else {
                    break;
                }
            }
            (
                lines[..s].to_vec(),
                lines[s + 1..body_end].to_vec(),
                lines[body_end..].to_vec(),
            )
        }
        None => (lines.clone(), Vec::new(), Vec::new()),
    };

    // Split the block into a head (comments before the first entry) and entries, each with
    // the comment lines just above it.
    let mut head: Vec<String> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for l in block {
        let t = l.trim_start();
        if t.starts_with("- ") || t == "-" {
            let mut e = Entry {
                lines: std::mem::take(&mut pending),
                project: None,
            };
            e.lines.push(l);
            entries.push(e);
        } else if (t.starts_with('#') || t.is_empty()) && !entries.is_empty() {
            pending.push(l);
        } else if let Some(e) = entries.last_mut() {
            e.lines.append(&mut pending);
            e.lines.push(l);
        } else {
            head.push(l);
        }
    }
    let trailing = pending;
    for e in &mut entries {
        e.project = e
            .lines
            .iter()
            .find_map(|l| value_of(l, "file"))
            .map(|f| normalize_name(f.split('-').next().unwrap_or(&f)));
    }
    let item_indent = entries
        .first()
        .and_then(|e| e.lines.iter().find(|l| l.trim_start().starts_with('-')))
        .map(|l| l[..l.len() - l.trim_start().len()].to_string())
        .unwrap_or_else(|| "  ".to_string());

    let mut by_project: BTreeMap<String, Entry> = BTreeMap::new();
    for e in entries {
        if let Some(p) = e.project.clone() {
            by_project.insert(p, e);
        }
    }

    let mut new_block: Vec<String> = head;
    for pin in pins {
        let project = normalize_name(pin.file.split('-').next().unwrap_or(&pin.file));
        match by_project.remove(&project) {
            // A flow-style entry is written anew; a flow-style `provenance:` is a value.
            Some(e)
                if !e
                    .lines
                    .iter()
                    .any(|l| l.contains('{') && key_of(l) != Some("provenance")) =>
            {
                new_block.extend(update_entry(e.lines, pin));
            }
            _ => new_block.extend(fresh_entry(&item_indent, pin)),
        }
    }
    new_block.extend(trailing);

    let mut before = before;
    if let Some(change) = python {
        before = update_python(before, change);
    }
    out.extend(before);
    if start.is_some() || !pins.is_empty() {
        out.push(if pins.is_empty() {
            "wheels: []".to_string()
        } else {
            "wheels:".to_string()
        });
    }
    out.extend(new_block);
    out.extend(after);
    let mut s = out.join(newline);
    if text.ends_with('\n') || text.is_empty() {
        s.push_str(newline);
    }
    s
}

/// The scalar value of `key:` on this line, unquoted, without a trailing comment.
fn value_of(line: &str, key: &str) -> Option<String> {
    let t = line.trim_start().trim_start_matches("- ").trim_start();
    let rest = t.strip_prefix(key)?.trim_start().strip_prefix(':')?;
    let rest = match rest.find(" #") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let v = rest.trim().trim_matches(['"', '\'']);
    (!v.is_empty()).then(|| v.to_string())
}

/// The key of a `key: value` (or `- key: value`) line.
fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start().trim_start_matches("- ").trim_start();
    let (key, _) = t.split_once(':')?;
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(key)
}

/// Replaces the value of `key:` on `line` in place: indentation, spacing and comment kept.
fn set_value(line: &str, key: &str, value: &str) -> String {
    let Some(k) = line.find(&format!("{key}:")) else {
        return line.to_string();
    };
    let after_key = k + key.len() + 1;
    let rest = &line[after_key..];
    let code_end = rest.find(" #").unwrap_or(rest.len());
    let code = &rest[..code_end];
    let start = after_key + (code.len() - code.trim_start().len());
    let end = after_key + code.trim_end().len();
    if start >= end {
        return format!("{} {value}{}", &line[..after_key], &line[after_key..]);
    }
    format!("{}{value}{}", &line[..start], &line[end..])
}

fn update_entry(lines: Vec<String>, pin: &PinText) -> Vec<String> {
    let key_indent = lines
        .iter()
        .find_map(|l| {
            let t = l.trim_start();
            t.starts_with("- ")
                .then(|| " ".repeat(l.len() - t.len() + 2))
        })
        .unwrap_or_else(|| "    ".to_string());
    let mut out = Vec::with_capacity(lines.len() + 3);
    let (mut has_url, mut has_size, mut has_provenance) = (false, false, false);
    let mut sha_at = None;
    // The indentation of a block-style `provenance:` whose nested lines are replaced.
    let mut nested_under: Option<usize> = None;
    for l in lines {
        let indent = l.len() - l.trim_start().len();
        if let Some(at) = nested_under {
            if !l.trim().is_empty() && indent > at && !l.trim_start().starts_with('#') {
                continue;
            }
            nested_under = None;
        }
        let v = |k| value_of(&l, k);
        if key_of(&l) == Some("provenance")
            && let Some(p) = &pin.provenance
        {
            has_provenance = true;
            if v("provenance").is_none() {
                nested_under = Some(indent);
                out.push(format!("{}provenance: {p}", &l[..indent]));
            } else {
                out.push(set_value(&l, "provenance", p));
            }
        } else if v("file").is_some() {
            out.push(set_value(&l, "file", &pin.file));
        } else if v("sha256").is_some() {
            out.push(set_value(&l, "sha256", &pin.sha256));
            sha_at = Some(out.len());
        } else if v("url").is_some() {
            has_url = true;
            if let Some(u) = &pin.url {
                out.push(set_value(&l, "url", u));
            }
        } else if v("size").is_some() {
            has_size = true;
            if let Some(s) = pin.size {
                out.push(set_value(&l, "size", &s.to_string()));
            }
        } else {
            out.push(l);
        }
    }
    let mut at = sha_at.unwrap_or(out.len());
    if !has_url && let Some(u) = &pin.url {
        out.insert(at, format!("{key_indent}url: {u}"));
        at += 1;
    }
    if !has_size && let Some(s) = pin.size {
        out.insert(at, format!("{key_indent}size: {s}"));
        at += 1;
    }
    if !has_provenance && let Some(p) = &pin.provenance {
        out.insert(at, format!("{key_indent}provenance: {p}"));
    }
    out
}

fn fresh_entry(indent: &str, pin: &PinText) -> Vec<String> {
    let key = format!("{indent}  ");
    let mut out = vec![
        format!("{indent}- file: {}", pin.file),
        format!("{key}sha256: {}", pin.sha256),
    ];
    if let Some(u) = &pin.url {
        out.push(format!("{key}url: {u}"));
    }
    if let Some(s) = pin.size {
        out.push(format!("{key}size: {s}"));
    }
    if let Some(p) = &pin.provenance {
        out.push(format!("{key}provenance: {p}"));
    }
    out
}

/// Replaces whole tokens only, so `3.12.1` does not change inside `3.12.10`.
fn replace_token(line: &str, old: &str, new: &str) -> String {
    let boundary =
        |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || "'\"[]{},:#".contains(c));
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(old) {
        let before = out.chars().next_back().or(None);
        let prev = rest[..i].chars().next_back().or(before);
        let next = rest[i + old.len()..].chars().next();
        out.push_str(&rest[..i]);
        if boundary(prev) && boundary(next) {
            out.push_str(new);
        } else {
            out.push_str(old);
        }
        rest = &rest[i + old.len()..];
    }
    out.push_str(rest);
    out
}

fn update_python(lines: Vec<String>, c: &PythonChange) -> Vec<String> {
    let mut section = String::new();
    let mut out = Vec::with_capacity(lines.len() + 3);
    // The indentation of a block-style `provenance:` whose nested lines go with it.
    let mut nested_under: Option<usize> = None;
    for l in lines {
        if !l.is_empty() && !l.starts_with([' ', '\t', '#']) {
            section = l.split(':').next().unwrap_or("").trim().to_string();
        }
        let indent = l.len() - l.trim_start().len();
        if let Some(at) = nested_under {
            if !l.trim().is_empty() && indent > at && !l.trim_start().starts_with('#') {
                continue;
            }
            nested_under = None;
        }
        let code_end = l.find(" #").unwrap_or(l.len());
        let (code, comment) = l.split_at(code_end);
        let code = match section.as_str() {
            "python" => replace_token(code, &c.old_version, &c.new_version),
            "embeddable" => {
                if value_of(code, "url").is_some() || value_of(code, "size").is_some() {
                    continue; // the old zip's; the new ones follow the sha256
                }
                if l.starts_with([' ', '\t']) && key_of(code) == Some("provenance") {
                    if value_of(code, "provenance").is_none() {
                        nested_under = Some(indent);
                    }
                    continue; // the old zip's signer; the new one follows the sha256
                }
                let code = replace_token(code, &c.old_file, &c.new_file);
                let code = replace_token(&code, &c.old_sha256, &c.new_sha256);
                if value_of(&code, "sha256").is_some() && l.starts_with([' ', '\t']) {
                    let indent = &code[..code.len() - code.trim_start().len()];
                    out.push(format!("{code}{comment}"));
                    if let Some(u) = &c.url {
                        out.push(format!("{indent}url: {u}"));
                    }
                    if let Some(s) = c.size {
                        out.push(format!("{indent}size: {s}"));
                    }
                    out.push(format!("{indent}provenance: {}", c.provenance));
                    continue;
                }
                code
            }
            _ => code.to_string(),
        };
        out.push(format!("{code}{comment}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn pin(file: &str, sha: &str) -> PinText {
        PinText {
            file: file.into(),
            sha256: sha.into(),
            url: None,
            size: None,
            provenance: None,
        }
    }

    fn text() -> String {
        format!(
            "# top comment\nschema: 1\nname: t\npython: {{ version: 3.12.10, platform: win_amd64 }}  # keep\nembeddable:\n  file: python-3.12.10-embed-amd64.zip   # zip\n  sha256: {A}\nrequires:\n  - a>=1\nwheels:\n  # the a library\n  - file: a-1.0-py3-none-any.whl   # first\n    sha256: {B}\n  # b, soon gone\n  - file: b-2.0-py3-none-any.whl\n    sha256: {C}\n\n# trailing comment\n"
        )
    }

    #[test]
    fn provenance_is_added_replaced_in_place_and_a_block_style_one_rewritten() {
        let t = text();
        let github = Some(Identity::GitHub {
            repository: "psf/requests".into(),
            workflow: "publish.yml".into(),
        });
        let mut a = pin("a-1.0-py3-none-any.whl", B);
        a.provenance = Some(pin_yaml(&github));
        let mut b = pin("b-2.0-py3-none-any.whl", C);
        b.provenance = Some(pin_yaml(&None));
        let out = rewrite(&t, &[a.clone(), b.clone()], None);
        assert!(
            out.contains(&format!(
                "  - file: a-1.0-py3-none-any.whl   # first\n    sha256: {B}\n    provenance: {{repository: psf/requests, workflow: publish.yml}}\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!("    sha256: {C}\n    provenance: none\n")),
            "{out}"
        );
        // The comment of the first entry is kept: a flow `provenance:` is not a flow entry.
        a.provenance = Some(pin_yaml(&None));
        let again = rewrite(&out, &[a.clone(), b.clone()], None);
        assert!(again.contains("whl   # first\n"), "{again}");
        assert!(!again.contains("psf/requests"), "{again}");
        assert_eq!(again.matches("provenance: none").count(), 2, "{again}");
        let block = out.replace(
            "provenance: {repository: psf/requests, workflow: publish.yml}",
            "provenance:\n      repository: psf/requests\n      workflow: publish.yml",
        );
        let from_block = rewrite(&block, &[a, b], None);
        assert_eq!(from_block, again);
        let signer = Some(Identity::Signer {
            identity: "it's@example.org".into(),
            issuer: "https://accounts.example.org".into(),
        });
        assert_eq!(
            pin_yaml(&signer),
            "{identity: 'it''s@example.org', issuer: 'https://accounts.example.org'}"
        );
    }

    #[test]
    fn unchanged_pins_give_the_same_text() {
        let t = text();
        let out = rewrite(
            &t,
            &[
                pin("a-1.0-py3-none-any.whl", B),
                pin("b-2.0-py3-none-any.whl", C),
            ],
            None,
        );
        assert_eq!(out, t);
    }

    #[test]
    fn changed_pin_keeps_comments_removed_pin_takes_its_comment() {
        let mut p = pin("a-1.1-py3-none-any.whl", C);
        p.url = Some("https://m.example/f/a-1.1-py3-none-any.whl".into());
        p.size = Some(42);
        let out = rewrite(&text(), &[p, pin("c-3-py3-none-any.whl", A)], None);
        assert!(
            out.contains("  # the a library\n  - file: a-1.1-py3-none-any.whl   # first\n"),
            "{out}"
        );
        assert!(out.contains(&format!("    sha256: {C}\n    url: https://m.example/f/a-1.1-py3-none-any.whl\n    size: 42\n")), "{out}");
        assert!(!out.contains("b, soon gone"), "{out}");
        assert!(!out.contains("b-2.0"), "{out}");
        assert!(
            out.contains(&format!(
                "  - file: c-3-py3-none-any.whl\n    sha256: {A}\n\n# trailing comment\n"
            )),
            "{out}"
        );
        assert!(out.starts_with("# top comment\nschema: 1\n"), "{out}");
        assert!(out.contains("requires:\n  - a>=1\n"), "{out}");
    }

    #[test]
    fn python_change_edits_flow_and_block_values() {
        let change = PythonChange {
            old_version: "3.12.10".into(),
            new_version: "3.12.9".into(),
            old_file: "python-3.12.10-embed-amd64.zip".into(),
            old_sha256: A.into(),
            new_file: "python-3.12.9-embed-amd64.zip".into(),
            new_sha256: C.into(),
            url: Some("https://m.example/python/3.12.9/python-3.12.9-embed-amd64.zip".into()),
            size: Some(11),
            provenance: "{identity: thomas@python.org, issuer: 'https://accounts.google.com'}"
                .into(),
        };
        let out = rewrite(
            &text(),
            &[
                pin("a-1.0-py3-none-any.whl", B),
                pin("b-2.0-py3-none-any.whl", C),
            ],
            Some(&change),
        );
        assert!(
            out.contains("python: { version: 3.12.9, platform: win_amd64 }  # keep\n"),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "  file: python-3.12.9-embed-amd64.zip   # zip\n  sha256: {C}\n  url: https://m.example/python/3.12.9/python-3.12.9-embed-amd64.zip\n  size: 11\n  provenance: {{identity: thomas@python.org, issuer: 'https://accounts.google.com'}}\nrequires:"
            )),
            "{out}"
        );
        // The old signer goes, flow or block style, and the new one is written once.
        let mut signed = change.clone();
        signed.old_version = "3.12.9".into();
        signed.old_file = signed.new_file.clone();
        signed.old_sha256 = C.into();
        signed.provenance = "none".into();
        let block = out.replace(
            "  provenance: {identity: thomas@python.org, issuer: 'https://accounts.google.com'}\n",
            "  provenance:   # signer\n    identity: thomas@python.org\n    issuer: https://accounts.google.com\n",
        );
        for before in [&out, &block] {
            let again = rewrite(
                before,
                &[
                    pin("a-1.0-py3-none-any.whl", B),
                    pin("b-2.0-py3-none-any.whl", C),
                ],
                Some(&signed),
            );
            assert!(
                again.contains("  size: 11\n  provenance: none\nrequires:"),
                "{again}"
            );
            assert!(!again.contains("thomas"), "{again}");
        }
        assert_eq!(replace_token("3.12.10 3.12.1", "3.12.1", "X"), "3.12.10 X");
    }

    #[test]
    fn crlf_and_missing_wheels_block() {
        let t = "schema: 1\r\nname: t\r\nrequires: [a]\r\n";
        let out = rewrite(t, &[pin("a-1-py3-none-any.whl", A)], None);
        assert_eq!(
            out,
            format!(
                "schema: 1\r\nname: t\r\nrequires: [a]\r\nwheels:\r\n  - file: a-1-py3-none-any.whl\r\n    sha256: {A}\r\n"
            )
        );
    }
}

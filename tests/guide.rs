//! The user guide (`docs/src/`) and the README say only what is true: every command shown in a
//! `console` block runs here, against the local HTTPS mirror of the test kit, and gives the
//! output shown; every relative link and `#anchor` resolves. The convention is written in
//! `docs/README.md`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use support::{World, extpy, run};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The guide's pages and the README, by path relative to the repository.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    pages.extend(
        walkdir::WalkDir::new(root().join("docs/src"))
            .into_iter()
            .map(|e| e.expect("read docs/src").into_path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    pages.sort();
    pages
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// One fenced block: its info string, its first line number and its lines.
struct Block {
    info: String,
    line: usize,
    lines: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_string(),
                    line: n + 1,
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(_)) => out.push(open.take().unwrap()),
            (Some(b), None) => b.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    out
}

/// The expected exit code of a `console` block: `console` is 0, `console,exit=N` is N.
fn exit_of(info: &str) -> Option<i32> {
    let mut parts = info.split(',');
    if parts.next()? != "console" {
        return None;
    }
    Some(
        parts
            .find_map(|p| p.strip_prefix("exit="))
            .map_or(0, |n| n.parse().expect("exit=N")),
    )
}

/// Whether `line` (trimmed) matches `pattern`, where `...` matches any text.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let mut rest = line;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty() || parts.len() > 1 && parts.last() == Some(&"")
}

/// Each expected line matches an output line, in order.
fn check_output(expected: &[String], output: &str) -> Result<(), String> {
    let mut lines = output.lines().map(str::trim);
    for want in expected.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        if want == "..." {
            continue;
        }
        if !lines.any(|l| matches(want, l)) {
            return Err(format!("no line matching `{want}` (in order)"));
        }
    }
    Ok(())
}

/// The sandbox every command runs in: the kit's mirror and CA given through the environment
/// (as a site gives its mirror), and a working folder holding a copy of `manifests/`.
struct Sandbox {
    world: World,
    work: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let world = World::new();
        let work = world.path("work");
        fs::create_dir_all(work.join("manifests")).unwrap();
        for entry in fs::read_dir(root().join("manifests")).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), work.join("manifests").join(entry.file_name())).unwrap();
        }
        Self { world, work }
    }

    fn run(&self, args: &[String]) -> support::Run {
        let mut c = extpy();
        c.current_dir(&self.work)
            .args(args)
            .env("EXTPY_MANIFEST", &self.world.manifest)
            .env("EXTPY_CACHE_DIR", &self.world.cache)
            .env("EXTPY_PYTHON_MIRROR", self.world.mirror.python_mirror())
            .env("EXTPY_INDEX_URL", self.world.mirror.index_url())
            .env("EXTPY_CA_CERT", &self.world.ca_pem)
            .env("EXTPY_NO_PROGRESS", "1");
        run(c)
    }
}

/// Splits a command line on spaces; a quoted argument keeps its spaces.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for ch in line.chars() {
        match (quote, ch) {
            (None, '"' | '\'') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn every_console_block_of_the_guide_runs_and_shows_what_it_says() {
    let mut ran = 0;
    let mut failures = Vec::new();
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        // One sandbox per page: a page's blocks build on each other, as a reader's session does.
        let mut sandbox: Option<Sandbox> = None;
        for block in blocks(&text) {
            let Some(exit) = exit_of(&block.info) else {
                continue;
            };
            let sandbox = sandbox.get_or_insert_with(Sandbox::new);
            let mut commands: Vec<(usize, String, Vec<String>)> = Vec::new();
            for (i, line) in block.lines.iter().enumerate() {
                if let Some(cmd) = line.strip_prefix("$ ") {
                    commands.push((block.line + 1 + i, cmd.to_string(), Vec::new()));
                } else if let Some(last) = commands.last_mut() {
                    last.2.push(line.clone());
                } else {
                    failures.push(format!(
                        "{}:{}: a console block starts with output, not a `$ ` command",
                        shown(&page),
                        block.line
                    ));
                }
            }
            let last = commands.len().saturating_sub(1);
            for (i, (line, cmd, expected)) in commands.iter().enumerate() {
                let w = words(cmd);
                let at = format!("{}:{line}: `{cmd}`", shown(&page));
                if w.first().map(String::as_str) != Some("extpy") {
                    failures.push(format!("{at}: a console command must run extpy"));
                    continue;
                }
                let r = sandbox.run(&w[1..]);
                ran += 1;
                // Only the last command of a block may end with the block's exit code.
                let want = if i == last { exit } else { 0 };
                if r.code != want {
                    failures.push(format!(
                        "{at}: exit {}, the guide says {want}\n{}{}",
                        r.code, r.stdout, r.stderr
                    ));
                    continue;
                }
                let output = format!("{}\n{}", r.stdout, r.stderr);
                if let Err(e) = check_output(expected, &output) {
                    failures.push(format!("{at}: {e}; it printed:\n{output}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        ran >= 5,
        "only {ran} guide commands ran: the README's tour alone has five"
    );
}

/// What commands outside `console` blocks still wait to be made runnable: the pages moved
/// from the README kept their `sh` and `powershell` examples. The test fails when that number
/// changes, so a new unrun example cannot slip in and a converted one is counted off.
#[test]
fn commands_outside_console_blocks_are_counted_in_docs_readme() {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for block in blocks(&text) {
            if block.info.starts_with("console") {
                continue;
            }
            let n = block
                .lines
                .iter()
                .filter(|l| {
                    // `$ extpy`, `PS D:\x> extpy`, or the bare command of a script block.
                    let l = l.trim_start();
                    let l = l.strip_prefix("$ ").unwrap_or(l);
                    let l = match l.split_once("> ") {
                        Some((prompt, rest)) if prompt.starts_with("PS ") => rest,
                        _ => l,
                    };
                    l.starts_with("extpy ") || l.starts_with(".\\extpy") || l == "extpy"
                })
                .count();
            if n > 0 {
                *counts.entry(shown(&page)).or_default() += n;
            }
        }
    }
    let listed = fs::read_to_string(root().join("docs/README.md")).unwrap();
    let listed: BTreeMap<String, usize> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("- unrun: "))
        .map(|l| {
            let (page, n) = l.rsplit_once(' ').expect("- unrun: PAGE N");
            (page.to_string(), n.parse().expect("a count"))
        })
        .collect();
    assert_eq!(
        counts, listed,
        "docs/README.md's `- unrun:` lines must list, per page, the extpy commands shown outside `console` blocks"
    );
}

/// mdBook's id of a heading: lower case, spaces to `-`, only letters, digits, `-` and `_`.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        } else if !fence && line.starts_with('#') {
            out.push(anchor_of(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of inline links `[text](target)` and images, outside code.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut fence = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        // Drop code spans, whose brackets are not links.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_of_the_guide_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for (line, target) in links(&text) {
            if target.starts_with("https://") || target.starts_with("http://") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let dest = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let at = format!("{}:{line}: ({target})", shown(&page));
            if !dest.exists() {
                broken.push(format!("{at}: no file {}", dest.display()));
                continue;
            }
            if page.starts_with(root().join("docs/src"))
                && !dest.starts_with(root().join("docs/src"))
            {
                broken.push(format!(
                    "{at}: leaves docs/src, so the built book cannot hold it"
                ));
            }
            if !anchor.is_empty() {
                let there = fs::read_to_string(&dest).unwrap();
                if !anchors(&there).iter().any(|a| a == anchor) {
                    broken.push(format!("{at}: no heading with the id `{anchor}`"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn every_page_is_in_the_summary_and_every_summary_entry_is_a_page() {
    let summary = fs::read_to_string(root().join("docs/src/SUMMARY.md")).unwrap();
    let listed: Vec<String> = links(&summary).into_iter().map(|(_, t)| t).collect();
    for page in pages()
        .iter()
        .filter(|p| p.starts_with(root().join("docs/src")))
    {
        let rel = page
            .strip_prefix(root().join("docs/src"))
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel != "SUMMARY.md" {
            assert!(listed.contains(&rel), "docs/src/{rel} is not in SUMMARY.md");
        }
    }
    for target in &listed {
        assert!(
            root().join("docs/src").join(target).is_file(),
            "SUMMARY.md names {target}, which does not exist"
        );
    }
}

/// The checker itself: a wrong line, a wrong order and a wrong anchor are found.
#[test]
fn the_checkers_find_what_is_wrong() {
    let out = "fetched 3 artifacts in 0.2 s\nbuilt C:\\x\n";
    assert!(check_output(&["fetched 3 artifacts in ...".into()], out).is_ok());
    assert!(check_output(&["fetched 4 artifacts...".into()], out).is_err());
    assert!(check_output(&["built ...".into(), "fetched ...".into()], out).is_err());
    assert!(matches("a...c", "abc") && !matches("a...c", "abd") && matches("abc", "abc"));
    assert!(!matches("abc", "abcd"));
    assert_eq!(
        anchor_of(" The SBOM (`extpy-sbom.cdx.json`)"),
        "the-sbom-extpy-sbomcdxjson"
    );
    assert_eq!(
        links("see [a](b.md#c) and `[x](y)`\n```\n[no](link)\n```"),
        vec![(1, "b.md#c".to_string())]
    );
    assert_eq!(
        words(r#"extpy plan "a b.yaml" --out x"#),
        ["extpy", "plan", "a b.yaml", "--out", "x"]
    );
    assert_eq!(exit_of("console,exit=3"), Some(3));
    assert_eq!(exit_of("sh"), None);
}

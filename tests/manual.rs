//! What shells and people expect around the CLI: completion scripts that really complete,
//! the man page, help topics that say what the user guide says, and `extpy version`.

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{extpy, run};

/// Runs extpy with `args`.
fn ext(args: &[&str]) -> support::Run {
    let mut c = extpy();
    c.args(args);
    run(c)
}

/// A page of the user guide (`docs/src/`), where the manual's facts live.
fn guide(page: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/src")
        .join(page);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What bash's completion function offers for `words` (the last one being completed).
fn bash_complete(words: &[&str]) -> Vec<String> {
    let exe = env!("CARGO_BIN_EXE_extpy");
    let array: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"source <("{exe}" completions bash) || exit 9
complete -p extpy >/dev/null || exit 8
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE="{line}"
COMP_POINT=${{#COMP_LINE}}
fn=$(complete -p extpy | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
"$fn" extpy "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        words = array.join(" "),
        cword = words.len() - 1,
        line = words.join(" "),
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    got.sort();
    got
}

#[test]
fn bash_completes_subcommands_and_values() {
    assert_eq!(bash_complete(&["extpy", "bu"]), ["build", "bundle"]);
    assert_eq!(bash_complete(&["extpy", "bundle", "c"]), ["create"]);
    assert_eq!(bash_complete(&["extpy", "rep"]), ["report"]);
    assert_eq!(
        bash_complete(&["extpy", "plan", "--format", ""]),
        ["html", "json", "markdown", "yaml"]
    );
    assert_eq!(
        bash_complete(&["extpy", "completions", "p"]),
        ["powershell"]
    );
    // A word nothing starts with completes to nothing, rather than to everything.
    assert!(bash_complete(&["extpy", "zzz"]).is_empty());
    let options = bash_complete(&["extpy", "layout", "--dr"]);
    assert_eq!(options, ["--dry-run"]);
}

#[test]
fn powershell_registers_a_completer_for_extpy() {
    let r = ext(&["completions", "powershell"]).ok();
    assert!(
        r.stdout
            .contains("Register-ArgumentCompleter -Native -CommandName 'extpy'"),
        "{}",
        r.stdout
    );
    for sub in ["build", "layout", "plan", "doctor", "completions"] {
        assert!(
            r.stdout
                .contains(&format!("[CompletionResult]::new('{sub}'")),
            "no completion for {sub}"
        );
    }
    assert!(r.stdout.is_ascii(), "PowerShell 5.1 reads scripts as ANSI");
}

#[test]
fn zsh_and_fish_scripts_name_the_commands() {
    for (shell, marker) in [("zsh", "#compdef extpy"), ("fish", "complete -c extpy")] {
        let r = ext(&["completions", shell]).ok();
        assert!(
            r.stdout.starts_with(marker) || r.stdout.contains(marker),
            "{shell}"
        );
        assert!(r.stdout.contains("layout"), "{shell}");
    }
    let bad = ext(&["completions", "cmd"]).code(2);
    assert!(bad.stderr.contains("possible values"), "{}", bad.stderr);
}

#[test]
fn guide_gives_the_install_line_of_every_shell_powershell_first() {
    let page = guide("reference/shell.md");
    let section = page
        .split_once("## Shell completions")
        .expect("the guide has a completions section")
        .1;
    let lines = [
        "extpy completions powershell | Out-String | Invoke-Expression",
        "source <(extpy completions bash)",
        "source <(extpy completions zsh)",
        "extpy completions fish >",
    ];
    let positions: Vec<usize> = lines
        .iter()
        .map(|l| {
            section
                .find(l)
                .unwrap_or_else(|| panic!("the guide lacks `{l}`"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(section[..positions[0]].contains("$PROFILE"));
}

#[test]
fn man_page_renders_with_every_command_and_the_exit_codes() {
    let r = ext(&["man"]).ok();
    assert!(r.stdout.contains("\n.TH extpy 1 "), "{}", &r.stdout[..200]);
    for needle in [
        ".SH \"EXIT STATUS\"",
        ".SH \"MANIFEST\"",
        ".SH \"TOPOLOGY\"",
        "layout",
        "completions",
    ] {
        assert!(r.stdout.contains(needle), "man page lacks {needle}");
    }
    // When man(1) is here, it must be able to typeset the page without complaint.
    if Command::new("man").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("extpy.1");
        fs::write(&page, &r.stdout).unwrap();
        let out = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        // man overstrikes for bold (X\bX); keep the last character of each.
        let text = String::from_utf8_lossy(&out.stdout)
            .split('\u{8}')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    &part[part.char_indices().nth(1).map_or(part.len(), |(j, _)| j)..]
                }
            })
            .collect::<String>();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("EXIT STATUS"), "{text}");
        assert!(
            text.contains(r"D:\SCP\vu"),
            "backslashes survive roff: {text}"
        );
    }
}

#[test]
fn man_out_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    run({
        let mut c = extpy();
        c.args(["man", "--out"]).arg(&out);
        c
    })
    .ok();
    for page in ["extpy.1", "extpy-build.1", "extpy-plan.1", "extpy-bundle.1"] {
        let text = fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains("\n.TH "), "{page}");
    }
    // A file where the folder should be: a local failure, named.
    let blocked = dir.path().join("file");
    fs::write(&blocked, "x").unwrap();
    let r = run({
        let mut c = extpy();
        c.args(["man", "--out"]).arg(&blocked);
        c
    })
    .code(1);
    assert!(
        r.stderr.contains("cannot write the man pages"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("help:"), "{}", r.stderr);
}

#[test]
fn exit_code_topic_is_the_table_of_error_rs_and_the_guide() {
    let r = ext(&["help", "exit-codes"]).ok();
    // The guide's table, row for row, is the help's table (continuation lines joined).
    let page = guide("reference/exit-codes.md");
    let rows: Vec<String> = page
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes()[2].is_ascii_digit())
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            format!("{}  {}", cells[0], cells[1].replace('`', ""))
        })
        .collect();
    let mut table: Vec<String> = Vec::new();
    for line in extpy::app::error::EXIT_CODES_HELP.lines().skip(1) {
        let text = line.trim();
        match table.last_mut() {
            Some(row) if !text.starts_with(|c: char| c.is_ascii_digit()) => {
                row.push(' ');
                row.push_str(text);
            }
            _ => table.push(text.to_string()),
        }
    }
    assert_eq!(rows, table);
    assert_eq!(rows.len(), 5);
    // The topic is that page, as a console shows it.
    for row in page.lines().filter(|l| l.starts_with("| ")) {
        assert!(r.stdout.contains(row), "{row} not in:\n{}", r.stdout);
    }
    assert!(!r.stdout.contains("<!--"), "{}", r.stdout);
}

/// The YAML of the first ```yaml block after `heading` on a guide page.
fn yaml_after(page: &str, heading: &str) -> String {
    let text = guide(page);
    let rest = text
        .split_once(heading)
        .unwrap_or_else(|| panic!("{page} lacks {heading}"))
        .1;
    let block = rest.split_once("```yaml\n").unwrap().1;
    block.split_once("```").unwrap().0.to_string()
}

#[test]
fn manifest_and_topology_topics_are_the_guide_pages() {
    let topic = |name: &str| ext(&["help", name]).ok().stdout;
    let manifest = topic("manifest");
    assert!(manifest.starts_with("# The manifest\n"), "{manifest}");
    assert!(
        manifest.contains(&yaml_after("reference/manifest.md", "# The manifest")),
        "{manifest}"
    );
    assert!(manifest.contains("## `runtime_trust:`"), "{manifest}");
    let topology = topic("topology");
    assert!(topology.contains(&yaml_after("reference/topology.md", "## The mail block")));
    // The page includes the example with mdBook's directive; the topic shows the file itself.
    let example = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/topology.example.yaml"),
    )
    .unwrap();
    assert!(topology.contains(example.trim_end()), "{topology}");
    assert!(!topology.contains("{{#include"), "{topology}");
    // Links are shown as their text.
    assert!(topology.contains("see the upgrade page)"), "{topology}");
    assert!(!topology.contains("](../"), "{topology}");
    assert!(manifest.is_ascii() && topology.is_ascii());
}

#[test]
fn reference_pages_are_what_the_command_line_says() {
    let dir = tempfile::tempdir().unwrap();
    let r = run({
        let mut c = extpy();
        c.args(["man", "--markdown", "--out"]).arg(dir.path());
        c
    })
    .ok();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference");
    let refresh = "run `cargo run -- man --markdown --out docs/src/reference` and commit the pages \
                   (and list a new one in docs/src/SUMMARY.md)";
    let mut generated = Vec::new();
    for line in r.stdout.lines() {
        let path = Path::new(line);
        let rel = path.strip_prefix(dir.path()).unwrap();
        let want = fs::read_to_string(path).unwrap();
        let have = fs::read_to_string(committed.join(rel))
            .unwrap_or_else(|e| panic!("docs/src/reference/{}: {e}: {refresh}", rel.display()));
        assert!(
            have == want,
            "docs/src/reference/{} is not what the command line says: {refresh}",
            rel.display()
        );
        generated.push(rel.to_path_buf());
    }
    assert!(generated.len() > 20, "{generated:?}");
    // No page of a command that is gone.
    for entry in fs::read_dir(committed.join("commands")).unwrap() {
        let rel = Path::new("commands").join(entry.unwrap().file_name());
        assert!(
            generated.contains(&rel),
            "docs/src/reference/{} is of no command: delete it, or {refresh}",
            rel.display()
        );
    }
    // A page where the folder should be: a local failure, named.
    let blocked = dir.path().join("commands/build.md");
    fs::remove_file(&blocked).unwrap();
    fs::create_dir(&blocked).unwrap();
    let r = run({
        let mut c = extpy();
        c.args(["man", "--markdown", "--out"]).arg(dir.path());
        c
    })
    .code(1);
    assert!(r.stderr.contains("help:"), "{}", r.stderr);
}

#[test]
fn man_markdown_needs_a_folder() {
    let r = ext(&["man", "--markdown"]).code(2);
    assert!(r.stderr.contains("--out"), "{}", r.stderr);
}

#[test]
fn help_names_commands_and_topics_and_refuses_the_unknown() {
    let r = ext(&["help"]).ok();
    assert!(r.stdout.contains("Usage: extpy"), "{}", r.stdout);
    assert!(r.stdout.contains("  exit-codes  "), "{}", r.stdout);
    let r = ext(&["help", "bundle", "create"]).ok();
    assert!(
        r.stdout.contains("Usage: extpy bundle create"),
        "{}",
        r.stdout
    );
    let r = ext(&["help", "bundel"]).code(2);
    assert!(
        r.stderr
            .contains("`bundel` is neither a command nor a help topic")
    );
    assert!(r.stderr.contains("help: commands here:"), "{}", r.stderr);
    // No command at all: the help, and the usage exit code.
    let r = run(extpy()).code(2);
    assert!(r.stderr.contains("Usage: extpy"), "{}", r.stderr);
    let r = ext(&["--offline"]).code(2);
    assert!(r.stderr.contains("a command is required"), "{}", r.stderr);
}

#[test]
fn version_short_verbose_and_json() {
    let short = ext(&["--version"]).ok();
    assert_eq!(
        short.stdout,
        format!("extpy {}\n", env!("CARGO_PKG_VERSION"))
    );
    let long = ext(&["--version", "--verbose"]).ok();
    let same = ext(&["version"]).ok();
    assert_eq!(long.stdout, same.stdout);
    for key in [
        "commit",
        "build date",
        "target",
        "built-in manifest  cem-external-python-3.12 sha256 ",
        "TLS                rustls 0.23",
        "trust",
    ] {
        assert!(long.stdout.contains(key), "{key}:\n{}", long.stdout);
    }
    assert!(long.stdout.is_ascii());
    let doc = ext(&["version", "--json"]).ok().json();
    assert_eq!(doc["command"], "version");
    let target = doc["target"].as_str().unwrap();
    assert!(target.starts_with(std::env::consts::ARCH), "{target}");
    assert!(target.contains(std::env::consts::OS), "{target}");
    let digest = doc["builtin_manifest"]["sha256"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    let commit = doc["commit"].as_str().unwrap();
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
    let date = doc["build_date"].as_str().unwrap();
    assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{date}");
}

#[test]
fn version_lists_each_trust_source_and_names_an_unusable_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = support::Ca::root("version test CA");
    let pem = ca.write_pem(dir.path(), "extra.pem");
    let broken = dir.path().join("broken.pem");
    fs::write(&broken, "not a certificate").unwrap();
    let doc = run({
        let mut c = extpy();
        c.args(["version", "--json", "--ca-cert"])
            .arg(&pem)
            .arg("--ca-cert")
            .arg(&broken);
        c
    })
    .ok()
    .json();
    let sources = doc["trust_sources"].as_array().unwrap();
    let kinds: Vec<&str> = sources
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["system", "extra", "extra", "mozilla"]);
    assert_eq!(sources[1]["certificates"], 1);
    assert_eq!(sources[1]["error"], serde_json::Value::Null);
    assert_eq!(sources[2]["certificates"], serde_json::Value::Null);
    assert!(
        sources[2]["error"].as_str().unwrap().contains("broken.pem"),
        "{}",
        sources[2]
    );
    assert_eq!(sources[3]["downloads"], false);
    let human = run({
        let mut c = extpy();
        c.args(["version", "--ca-cert"]).arg(&broken);
        c
    })
    .ok();
    assert!(human.stdout.contains("UNUSABLE"), "{}", human.stdout);
}

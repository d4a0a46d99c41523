//! The manual around the command line: `extpy help TOPIC`, the man page and the shell
//! completion scripts, all made from the one clap definition in `main.rs`.

use std::io::Write;
use std::path::Path;

use clap::Command;
use extpy::app::error::EXIT_CODES_HELP;

/// The help topics and their one-line summaries. The texts say what the user guide (docs/src) says.
pub const TOPICS: &[(&str, &str)] = &[
    ("manifest", "the distribution manifest: what extpy builds"),
    (
        "topology",
        "the topology file: HAC nodes, CEM cores, VUs, SC mail settings",
    ),
    ("exit-codes", "what each exit code means"),
];

/// The guide's pages that are also help topics: `extpy help manifest` prints the page the
/// guide shows, so the two cannot disagree.
const MANIFEST_PAGE: &str = include_str!("../docs/src/reference/manifest.md");
const TOPOLOGY_PAGE: &str = include_str!("../docs/src/reference/topology.md");
const EXIT_CODES_PAGE: &str = include_str!("../docs/src/reference/exit-codes.md");

/// The files a page may include with mdBook's `{{#include PATH}}`, by the path the page gives.
const INCLUDES: &[(&str, &str)] = &[(
    "../../../manifests/topology.example.yaml",
    include_str!("../manifests/topology.example.yaml"),
)];

/// The text of a topic, if `name` is one.
pub fn topic(name: &str) -> Option<String> {
    let page = match name {
        "manifest" => MANIFEST_PAGE,
        "topology" => TOPOLOGY_PAGE,
        "exit-codes" => EXIT_CODES_PAGE,
        _ => return None,
    };
    Some(page_as_text(page))
}

/// A guide page as a terminal shows it: includes resolved, links reduced to their text (the
/// guide's relative links mean nothing on a console), everything else as written.
fn page_as_text(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for line in page.lines() {
        if line.starts_with("<!--") && line.ends_with("-->") {
            continue;
        }
        if let Some(path) = line
            .trim()
            .strip_prefix("{{#include ")
            .and_then(|rest| rest.strip_suffix("}}"))
        {
            match INCLUDES.iter().find(|(p, _)| *p == path) {
                Some((_, text)) => out.push_str(text.trim_end()),
                None => out.push_str(line),
            }
        } else {
            out.push_str(&unlink(line));
        }
        out.push('\n');
    }
    out
}

/// `[text](target)` becomes `text`; anything else is left as it is.
fn unlink(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The list of topics for `extpy help` and the root's help.
pub fn topics_help() -> String {
    let mut out = String::from("Help topics (extpy help TOPIC):\n");
    for (name, line) in TOPICS {
        out.push_str(&format!("  {name:<12}{line}\n"));
    }
    out
}

/// `extpy help [COMMAND...|TOPIC]`: the long help of a command, or a topic's text.
pub fn help(mut root: Command, words: &[String]) -> Result<String, String> {
    if let [word] = words
        && let Some(text) = topic(word)
    {
        return Ok(text);
    }
    root = root.styles(clap::builder::Styles::plain());
    root.build();
    let mut cmd = &mut root;
    for w in words {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        cmd = match cmd.find_subcommand_mut(w) {
            Some(c) => c,
            None => {
                let topics: Vec<&str> = TOPICS.iter().map(|t| t.0).collect();
                return Err(format!(
                    "`{w}` is neither a command nor a help topic\nhelp: commands here: {}; topics: {}",
                    names.join(", "),
                    topics.join(", ")
                ));
            }
        };
    }
    Ok(cmd.render_long_help().to_string())
}

/// The man page of `extpy` (roff): clap's sections, then the exit codes and the topics.
pub fn man_page(root: Command, date: &str) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(root)
        .date(date)
        .manual("extpy manual")
        .source(format!("extpy {}", extpy::app::version::VERSION));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    section(&mut out, "EXIT STATUS", EXIT_CODES_HELP)?;
    for name in ["manifest", "topology"] {
        section(
            &mut out,
            &name.to_uppercase(),
            &topic(name).unwrap_or_default(),
        )?;
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// A man page section holding `text` as it is (no filling), escaped for roff.
fn section(out: &mut Vec<u8>, title: &str, text: &str) -> std::io::Result<()> {
    writeln!(out, ".SH \"{title}\"")?;
    writeln!(out, ".nf")?;
    for line in text.lines() {
        let line = line.replace('\\', "\\e");
        // A line starting with . or ' would be read as a request.
        let lead = if line.starts_with(['.', '\'']) {
            "\\&"
        } else {
            ""
        };
        writeln!(out, "{lead}{line}")?;
    }
    writeln!(out, ".fi")
}

/// Writes the man pages of extpy and of every command (`extpy-build.1`, ...) into `dir`.
pub fn man_pages_to(root: Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let main = dir.join("extpy.1");
    std::fs::write(&main, man_page(root.clone(), env!("EXTPY_BUILD_DATE"))?)?;
    let mut written = vec![main];
    let mut root = root.disable_help_subcommand(true);
    root.build();
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub = sub
            .clone()
            .display_name(format!("extpy-{}", sub.get_name()));
        let man = clap_mangen::Man::new(sub).date(env!("EXTPY_BUILD_DATE"));
        let path = dir.join(man.get_filename());
        let mut bytes = Vec::new();
        man.render(&mut bytes)?;
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// The guide's generated reference: one Markdown page per command (`commands/build.md`,
/// `commands/bundle-create.md`, ...) and the exit-code table, as (path under
/// `docs/src/reference`, text). `extpy man --markdown --out docs/src/reference` writes them, and a
/// test fails when the committed pages are not what the command line says.
pub fn reference_pages(root: Command) -> Vec<(String, String)> {
    let mut root = root.styles(clap::builder::Styles::plain());
    root.build();
    let mut pages = vec![("exit-codes.md".to_string(), exit_codes_page())];
    command_pages(&root, &[], &mut pages);
    pages
}

/// The exit-code page, made from the table `--help` and the man page show.
fn exit_codes_page() -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    for line in EXIT_CODES_HELP.lines().skip(1) {
        let trimmed = line.trim();
        match trimmed.split_once(char::is_whitespace) {
            Some((code, meaning)) if code.parse::<u8>().is_ok() => {
                rows.push((code.to_string(), meaning.trim().to_string()))
            }
            _ => {
                if let Some(last) = rows.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(trimmed);
                }
            }
        }
    }
    let mut out = String::from(
        "# Exit codes\n\n<!-- Made by `extpy man --markdown --out docs/src/reference`: edit \
         src/base/exit.rs, not this page. -->\n\n",
    );
    out.push_str(EXIT_CODES_INTRO);
    out.push_str("\n\n| code | meaning |\n| --- | --- |\n");
    for (code, meaning) in rows {
        out.push_str(&format!("| {code} | {} |\n", cell(&meaning)));
    }
    out
}

const EXIT_CODES_INTRO: &str = "Every extpy command ends with one of these codes; scripts (and \
get-py.ps1) pass it on. `extpy help exit-codes` prints this page.";

/// The page of `cmd` (reached through `path`, the names of its parents below the root) and of
/// every visible command below it.
fn command_pages(cmd: &Command, path: &[&str], pages: &mut Vec<(String, String)>) {
    let subs: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let file = |p: &[&str]| match p {
        [] => "extpy.md".to_string(),
        _ => format!("{}.md", p.join("-")),
    };
    let title = std::iter::once("extpy")
        .chain(path.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = format!(
        "# `{title}`\n\n<!-- Made by `extpy man --markdown --out docs/src/reference` from the \
         command line's definition: edit src/main.rs, not this page. -->\n\n"
    );
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    if !about.is_empty() {
        out.push_str(&prose(&about));
        out.push_str("\n\n");
    }
    out.push_str("```text\n");
    out.push_str(cmd.clone().render_usage().to_string().trim_end());
    out.push_str("\n```\n\n");
    let args: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && (path.is_empty() || !a.is_global_set()))
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    let positionals: Vec<&&clap::Arg> = args.iter().filter(|a| a.is_positional()).collect();
    if !positionals.is_empty() {
        out.push_str("## Arguments\n\n| argument | what it is |\n| --- | --- |\n");
        for a in positionals {
            let names = a
                .get_value_names()
                .map(|v| {
                    v.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
            let shown = if a.is_required_set() {
                format!("<{names}>")
            } else {
                format!("[{names}]")
            };
            out.push_str(&format!("| `{shown}` | {} |\n", arg_text(a)));
        }
        out.push('\n');
    }
    let options: Vec<&&clap::Arg> = args.iter().filter(|a| !a.is_positional()).collect();
    if !options.is_empty() {
        out.push_str(if path.is_empty() {
            "## Global options\n\nThese go before or after any command.\n\n"
        } else {
            "## Options\n\n"
        });
        out.push_str("| option | what it does |\n| --- | --- |\n");
        for a in options {
            let mut flag = match (a.get_short(), a.get_long()) {
                (Some(s), Some(l)) => format!("-{s}, --{l}"),
                (None, Some(l)) => format!("--{l}"),
                (Some(s), None) => format!("-{s}"),
                (None, None) => a.get_id().to_string(),
            };
            if a.get_action().takes_values() {
                let names = a
                    .get_value_names()
                    .map(|v| v.iter().map(|n| format!("<{n}>")).collect::<Vec<_>>())
                    .unwrap_or_else(|| vec![format!("<{}>", a.get_id().as_str().to_uppercase())]);
                flag = format!("{flag} {}", names.join(" "));
            }
            out.push_str(&format!("| `{flag}` | {} |\n", arg_text(a)));
        }
        out.push('\n');
        if !path.is_empty() {
            out.push_str("The [global options](extpy.md#global-options) apply too.\n\n");
        }
    } else if !path.is_empty() && subs.is_empty() {
        out.push_str("## Options\n\nOnly the [global options](extpy.md#global-options).\n\n");
    }
    if !subs.is_empty() {
        out.push_str("## Commands\n\n| command | what it does |\n| --- | --- |\n");
        for s in &subs {
            let mut p = path.to_vec();
            p.push(s.get_name());
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "| [`{}`]({}) | {} |\n",
                s.get_name(),
                file(&p),
                cell(&about)
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "## Exit codes\n\n0 on success; otherwise the code of [the table](../exit-codes.md) that \
         fits the failure (1 local, 2 input, 3 verification, 4 network or offline).\n",
    );
    pages.push((format!("commands/{}", file(path)), out));
    for s in subs {
        let mut p = path.to_vec();
        p.push(s.get_name());
        command_pages(s, &p, pages);
    }
}

/// An argument's help with what clap knows beside it: default, environment variable, values.
fn arg_text(a: &clap::Arg) -> String {
    let help = a
        .get_long_help()
        .or(a.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut text = cell(&help);
    let mut extra = Vec::new();
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && a.get_action().takes_values() {
        extra.push(format!("default: `{}`", defaults.join(" ")));
    }
    if let Some(env) = a.get_env().filter(|_| !a.is_hide_env_set()) {
        extra.push(format!("environment: `{}`", env.to_string_lossy()));
    }
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() && a.get_action().takes_values() {
        extra.push(format!("values: {}", values.join(", ")));
    }
    if !extra.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("({})", extra.join("; ")));
    }
    text
}

/// Text for a Markdown table cell: one line, `|` escaped, and what Markdown would read as HTML
/// or emphasis outside code spans made literal.
fn cell(text: &str) -> String {
    escape_markdown(&text.split_whitespace().collect::<Vec<_>>().join(" "), true)
}

/// Paragraphs of clap's about text as Markdown: lines of one paragraph joined.
fn prose(text: &str) -> String {
    text.split("\n\n")
        .map(|p| escape_markdown(&p.split_whitespace().collect::<Vec<_>>().join(" "), false))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Escapes `<`, `>`, `*` and `_` outside backtick code spans, and in a table cell `|`
/// everywhere (a table splits at `|` even inside a code span).
fn escape_markdown(text: &str, in_table: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '|' if in_table => out.push_str("\\|"),
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            '*' | '_' if !in_code => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Writes the reference pages into `dir` (the guide's `docs/src/reference`), each through a
/// temporary file renamed into place, and returns the paths written.
pub fn reference_pages_to(root: Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for (rel, text) in reference_pages(root) {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("md.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// The completion script for `shell`.
pub fn completions(mut root: Command, shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut root, "extpy", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_topic_has_a_text() {
        for (name, _) in TOPICS {
            assert!(topic(name).is_some_and(|t| t.len() > 100), "{name}");
        }
        assert_eq!(topic("build"), None);
    }

    #[test]
    fn pages_become_console_text_and_clap_text_becomes_markdown() {
        let page = "<!-- made -->\nsee [the page](../a.md#x) and [b](c)\n{{#include nowhere.yaml}}\n[not a link\n";
        assert_eq!(
            page_as_text(page),
            "see the page and b\n{{#include nowhere.yaml}}\n[not a link\n"
        );
        assert!(
            page_as_text("{{#include ../../../manifests/topology.example.yaml}}")
                .contains("nodes:")
        );
        assert_eq!(
            cell("a | b <DIR> *x* `a|b <c>`"),
            "a \\| b &lt;DIR&gt; \\*x\\* `a\\|b <c>`"
        );
        assert_eq!(prose("`x | y`\nz\n\nnext"), "`x | y` z\n\nnext");
    }

    #[test]
    fn roff_requests_and_backslashes_are_escaped() {
        let mut out = Vec::new();
        section(&mut out, "X", ".hidden\n'quote\nD:\\SCP").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\\&.hidden\n\\&'quote\nD:\\eSCP\n"), "{text}");
    }
}

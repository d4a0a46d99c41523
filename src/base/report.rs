//! The one reporter: human lines on stderr, progress bars on a terminal, nothing else.
//!
//! Results (and `--json` documents) are written to stdout by `main.rs`; everything below it
//! speaks to the user only through a `Reporter`.

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use crate::base::wintext::console;

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only (`-q`).
    Quiet,
    /// The usual lines.
    Normal,
    /// Also details (`-v`).
    Verbose,
}

/// Where human lines and progress go.
#[derive(Clone)]
pub struct Reporter {
    verbosity: Verbosity,
    json: bool,
    multi: Option<MultiProgress>,
    captured: Option<Arc<Mutex<Vec<String>>>>,
}

impl Reporter {
    /// A reporter for a command-line run; bars only when stderr is a terminal and wanted.
    /// With `json`, stdout carries only the one JSON document.
    pub fn new(verbosity: Verbosity, progress: bool, json: bool) -> Self {
        let bars = progress && verbosity > Verbosity::Quiet && std::io::stderr().is_terminal();
        let multi =
            bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Self {
            verbosity,
            json,
            multi,
            captured: None,
        }
    }

    /// A reporter that keeps its lines in memory, for tests.
    pub fn capture() -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                verbosity: Verbosity::Verbose,
                json: false,
                multi: None,
                captured: Some(lines.clone()),
            },
            lines,
        )
    }

    /// A reporter that says nothing.
    pub fn silent() -> Self {
        Self {
            verbosity: Verbosity::Quiet,
            json: false,
            multi: None,
            captured: None,
        }
    }

    /// The verbosity.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn emit(&self, line: String) {
        let line = console(&line).into_owned();
        if let Some(c) = &self.captured {
            if let Ok(mut lines) = c.lock() {
                lines.push(line);
            }
            return;
        }
        match &self.multi {
            Some(m) => m.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// True when stdout is reserved for one JSON document.
    pub fn json(&self) -> bool {
        self.json
    }

    /// A result line on stdout that comes before the command's result (such as the line
    /// `get-py.ps1` printed); silent with `-q` or `--json`.
    pub fn result_line(&self, msg: impl Display) {
        if self.json || self.verbosity == Verbosity::Quiet {
            return;
        }
        let msg = console(&msg.to_string()).into_owned();
        match &self.captured {
            Some(c) => {
                if let Ok(mut lines) = c.lock() {
                    lines.push(msg);
                }
            }
            None => println!("{msg}"),
        }
    }

    /// A normal human line.
    pub fn info(&self, msg: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            self.emit(msg.to_string());
        }
    }

    /// A warning: something the user should know, not a failure.
    pub fn warn(&self, msg: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            self.emit(format!("warning: {msg}"));
        }
    }

    /// A detail shown with `-v`.
    pub fn detail(&self, msg: impl Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.emit(msg.to_string());
        }
    }

    /// A byte-progress bar for one file (hidden when bars are off).
    pub fn file_bar(&self, name: &str) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>40.dim} {bar:25.cyan/blue} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta:>3}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(truncate(name, 40));
        bar
    }

    /// A bar counting items (files, VUs) with a total.
    pub fn count_bar(&self, total: u64, what: &str) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = m.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>40.bold} {bar:25.green/white} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

/// How a transfer reports its bytes as they arrive; the reporter decides whether and how
/// that is drawn, so the code that transfers does not know about terminals.
pub trait Progress: Sync {
    /// The transfer is `total` bytes long (0 when unknown) and `done` are already here.
    fn start(&self, total: u64, done: u64);
    /// `n` more bytes arrived.
    fn advance(&self, n: u64);
}

impl Progress for ProgressBar {
    fn start(&self, total: u64, done: u64) {
        self.set_length(total);
        self.set_position(done);
    }

    fn advance(&self, n: u64) {
        self.inc(n);
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(max.saturating_sub(3))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("...{tail}")
}

/// `value` as the pretty JSON extpy prints, every non-ASCII character escaped (`\u00fc`):
/// Windows PowerShell 5.1 mangles UTF-8 it captures or redirects, but not an escape. DEL,
/// which JSON may hold raw, is escaped too, so the text holds no control character at all.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let pretty = serde_json::to_string_pretty(value)
        .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail");
    let mut out = String::with_capacity(pretty.len());
    // serde_json writes non-ASCII only inside strings, where an escape means the same.
    for c in pretty.chars() {
        if c.is_ascii() && c != '\x7f' {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0u16; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `text` with the line ends its reader expects: CRLF for a file a Windows user opens
/// (Notepad before 2018 shows an LF file as one line), LF otherwise.
pub fn text_for(text: &str, windows: bool) -> String {
    let lf = text.replace("\r\n", "\n");
    if windows {
        lf.replace('\n', "\r\n")
    } else {
        lf
    }
}

/// A JSON document as printed (`--json`, `plan --format json`): [`json_text`], with
/// `extpy_version` as its first key, so that a reader knows which extpy wrote it before
/// reading anything else. `doc` must serialize as a map (a struct or a JSON object).
pub fn json_document<T: serde::Serialize>(doc: &T) -> String {
    #[derive(serde::Serialize)]
    struct Versioned<'a, T> {
        extpy_version: &'static str,
        #[serde(flatten)]
        doc: &'a T,
    }
    let versioned = Versioned {
        extpy_version: env!("CARGO_PKG_VERSION"),
        doc,
    };
    json_text(&versioned)
}

/// `1 VU folder`, `2 VU folders`.
pub fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Bytes in human units (`1.5 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Lowercase, `-` for anything but letters and digits: a stable id part.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_is_not_ascii() {
        let v = serde_json::json!({ "system": "Z\u{fc}rich \u{26a0} \u{1f600}", "n": 1 });
        let text = json_text(&v);
        assert!(text.is_ascii(), "{text}");
        assert!(text.contains(r"Z\u00fcrich \u26a0 \ud83d\ude00"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn text_for_windows_has_crlf_and_never_doubles_it() {
        assert_eq!(text_for("a\nb\r\nc\n", true), "a\r\nb\r\nc\r\n");
        assert_eq!(text_for("a\r\nb\n", false), "a\nb\n");
    }

    /// Every string a user sees is written in the sources (data from their own files
    /// aside); outside comments and tests, those sources must be ASCII (the help text,
    /// from doc comments, is checked by the binary's own test).
    #[test]
    fn console_text_in_the_sources_is_ascii() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    if line.trim_start().starts_with("mod tests") {
                        break;
                    }
                    let t = line.trim_start();
                    if !line.is_ascii() && !t.starts_with("//") {
                        bad.push(format!("{}:{}: {line}", path.display(), i + 1));
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "non-ASCII text a user may see:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn capture_keeps_lines_in_order() {
        let (r, lines) = Reporter::capture();
        r.info("one");
        r.warn("two");
        r.detail("three");
        assert_eq!(*lines.lock().unwrap(), vec!["one", "warning: two", "three"]);
    }

    #[test]
    fn json_documents_start_with_the_version() {
        let doc = serde_json::json!({ "a": 1, "command": "x", "ok": true });
        let text = json_document(&doc);
        let second = text.lines().nth(1).unwrap();
        assert_eq!(
            second,
            format!("  \"extpy_version\": \"{}\",", env!("CARGO_PKG_VERSION"))
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["a"], 1);
        assert_eq!(back["command"], "x");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024), "10.0 MiB");
        assert_eq!(truncate("abcdefgh", 6), "...fgh");
    }
}

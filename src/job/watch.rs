//! `extpy watch`: the drift watch of a node, the way a Windows admin expects it. Two
//! scheduled tasks (daily, and at start-up) run `extpy watch run` as SYSTEM; each run checks
//! every VU of the node against the seal the manifest produces (what `verify --topology`
//! does; and, if asked, self-tests it) and writes one entry into the Application event log
//! under the source `extpy`, through ReportEventW.
//!
//! Every Windows command is plain data ([`CommandLine`]) before it runs: the same lines are
//! printed on Linux, shown by `--json`, and run on Windows (or, for tests, handed to the
//! program named by [`RUNNER_ENV`]); every entry is plain data ([`Event`]) before it is
//! written. `schtasks.exe` takes one trigger per task from its command line, hence two tasks.
//! The source is registered by Windows PowerShell's `New-EventLog`, which points it at the
//! .NET message file whose every id is "%1": the entry shows our text with no "description
//! cannot be found" preamble.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::base::exit::ExitCode;

/// The event source every watch entry is written under.
pub const SOURCE: &str = "extpy";

/// Names a program that receives each Windows command line instead of it being run (its
/// arguments: the program, then the command's arguments). A test seam.
pub const RUNNER_ENV: &str = "EXTPY_WATCH_RUNNER";

/// The most characters `schtasks /Create /TR` accepts.
const TR_MAX: usize = 261;

/// When the daily task runs.
const DAILY_AT: &str = "03:00";

/// The event ids: all VUs match; a VU differs; the check could not run; a self-test failed.
pub const EVENT_OK: u16 = 100;
/// A VU differs from the distribution the manifest produces.
pub const EVENT_DRIFT: u16 = 101;
/// The check could not run (the error is the text).
pub const EVENT_NOT_CHECKED: u16 = 102;
/// Every VU matches, but a self-test failed.
pub const EVENT_SELFTEST: u16 = 103;

/// The longest event description written; the rest is cut (an entry's string holds 31,839
/// characters at most).
const DESCRIPTION_MAX: usize = 8000;

/// What went wrong with the watch.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The task's command line is longer than schtasks accepts.
    #[error(
        "the scheduled task's command line is {length} characters, over the {TR_MAX} schtasks /TR accepts:\n  {line}\n  help: put extpy.exe, the topology (or bundle) and the cache in shorter folders (e.g. C:\\extpy\\){}",
        if *keys { "; or list the keys under trusted_keys: in the topology, which every run reads, instead of --trusted-key" } else { "" }
    )]
    TooLong {
        /// The line.
        line: String,
        /// Its length.
        length: usize,
        /// The line holds `--trusted-key` key lines.
        keys: bool,
    },
    /// A Windows command failed.
    #[error(
        "{what}: `{}` {}{}\n  help: {help}",
        ran.command,
        ran.code.map(|c| format!("exited with {c}")).unwrap_or_else(|| "did not start".into()),
        if ran.output.is_empty() { String::new() } else { format!(":\n  {}", ran.output.replace('\n', "\n  ")) }
    )]
    Command {
        /// What was being done.
        what: String,
        /// The command and what it said.
        ran: Ran,
        /// What to do.
        help: &'static str,
    },
    /// ReportEventW failed.
    #[error(
        "cannot write the entry into the Application event log (source {SOURCE}): {cause}\n  help: register the source first with `extpy watch install` (as an administrator), or run as SYSTEM or an administrator"
    )]
    EventLog {
        /// The error Windows gave.
        cause: std::io::Error,
    },
}

impl WatchError {
    /// The exit code: a line too long is the user's input; a command that failed is local.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            WatchError::TooLong { .. } => ExitCode::Input,
            WatchError::Command { .. } | WatchError::EventLog { .. } => ExitCode::Local,
        }
    }
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl CommandLine {
    fn new(program: &str, args: &[&str]) -> Self {
        Self {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The line as typed at a Windows prompt (quoted as CommandLineToArgvW reads it back).
    pub fn render(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One argument quoted for CommandLineToArgvW: in double quotes when it holds a space, a tab
/// or a quote (or is empty); a quote escaped as `\"`, and the backslashes before a quote or
/// the closing quote doubled.
fn quote(a: &str) -> String {
    if !a.is_empty() && !a.contains([' ', '\t', '"']) {
        return a.to_string();
    }
    let mut out = String::from("\"");
    let mut backslashes = 0;
    for c in a.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.push_str(&"\\".repeat(backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            c => {
                out.push_str(&"\\".repeat(backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.push_str(&"\\".repeat(backslashes * 2));
    out.push('"');
    out
}

/// What the check of a watch compares the VUs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A topology; the expected seal comes from the artifacts in this cache, absolute.
    Topology {
        /// The topology, absolute.
        topology: String,
        /// The cache.
        cache_dir: String,
    },
    /// An offline bundle (topology and manifest inside), absolute.
    Bundle(String),
}

/// What the scheduled tasks run.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The node.
    pub node: String,
    /// extpy.exe, absolute.
    pub extpy: String,
    /// What the VUs are compared with.
    pub reference: Reference,
    /// `--manifest`, absolute, when given.
    pub manifest: Option<String>,
    /// `--vu-root`, when given.
    pub vu_root: Option<String>,
    /// Self-test every VU too.
    pub selftest: bool,
    /// `--trusted-key` key lines (`RW...`) every run requires a seal (or the bundle) to be
    /// signed by, any one.
    pub trusted_keys: Vec<String>,
}

/// The two tasks of a node: (name, schedule).
pub fn tasks(node: &str) -> [(String, &'static str); 2] {
    [
        (format!("extpy\\watch-{node}-daily"), "DAILY"),
        (format!("extpy\\watch-{node}-start"), "ONSTART"),
    ]
}

/// The command a task runs: `extpy watch run`, offline (a watch never downloads).
pub fn run_line(spec: &TaskSpec) -> CommandLine {
    let mut args: Vec<String> = Vec::new();
    if let Some(m) = &spec.manifest {
        args.extend(["--manifest".into(), m.clone()]);
    }
    if let Reference::Topology { cache_dir, .. } = &spec.reference {
        args.extend(["--cache-dir".into(), cache_dir.clone()]);
    }
    args.extend([
        "--offline".into(),
        "--quiet".into(),
        "watch".into(),
        "run".into(),
    ]);
    match &spec.reference {
        Reference::Topology { topology, .. } => {
            args.extend(["--topology".into(), topology.clone()])
        }
        Reference::Bundle(b) => args.extend(["--bundle".into(), b.clone()]),
    }
    args.extend(["--node".into(), spec.node.clone()]);
    if let Some(r) = &spec.vu_root {
        args.extend(["--vu-root".into(), r.clone()]);
    }
    if spec.selftest {
        args.push("--selftest".into());
    }
    for k in &spec.trusted_keys {
        args.extend(["--trusted-key".into(), k.clone()]);
    }
    CommandLine {
        program: spec.extpy.clone(),
        args,
    }
}

/// The line that registers the event source (once; an existing source is left as it is).
pub fn register_source() -> CommandLine {
    CommandLine::new(
        "powershell.exe",
        &[
            "-NoProfile",
            "-NonInteractive",
            "-Command",
            &format!(
                "if (-not [System.Diagnostics.EventLog]::SourceExists('{SOURCE}')) {{ New-EventLog -LogName Application -Source {SOURCE} }}"
            ),
        ],
    )
}

/// The commands that install the watch: register the source, create the tasks (replacing
/// earlier ones: `/F`) daily at 03:00 and at start-up as SYSTEM, and run the daily one once
/// now, so that the first entry is there at once.
pub fn install(spec: &TaskSpec) -> Result<Vec<CommandLine>, WatchError> {
    let tr = run_line(spec).render();
    let length = tr.chars().count();
    if length > TR_MAX {
        return Err(WatchError::TooLong {
            line: tr,
            length,
            keys: !spec.trusted_keys.is_empty(),
        });
    }
    let [daily, start] = tasks(&spec.node);
    let mut lines = vec![register_source()];
    for (name, schedule) in [&daily, &start] {
        let mut args = vec!["/Create", "/TN", name, "/TR", &tr, "/SC", schedule];
        if *schedule == "DAILY" {
            args.extend(["/ST", DAILY_AT]);
        }
        args.extend(["/RU", "SYSTEM", "/RL", "HIGHEST", "/F"]);
        lines.push(CommandLine::new("schtasks.exe", &args));
    }
    lines.push(CommandLine::new("schtasks.exe", &["/Run", "/TN", &daily.0]));
    Ok(lines)
}

/// The commands that delete the tasks (the event source stays: removing it would leave the
/// entries written so far without their text).
pub fn remove(node: &str) -> Vec<CommandLine> {
    tasks(node)
        .iter()
        .map(|(name, _)| CommandLine::new("schtasks.exe", &["/Delete", "/TN", name, "/F"]))
        .collect()
}

/// The commands that show the tasks (last run, last result, next run).
pub fn status(node: &str) -> Vec<CommandLine> {
    tasks(node)
        .iter()
        .map(|(name, _)| {
            CommandLine::new(
                "schtasks.exe",
                &["/Query", "/TN", name, "/V", "/FO", "LIST"],
            )
        })
        .collect()
}

/// The level of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Every VU matches (and passed its self-test).
    Information,
    /// Something differs, failed, or could not be checked.
    Error,
}

/// An entry of the Application event log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Always `Application`.
    pub log: &'static str,
    /// Always [`SOURCE`].
    pub source: &'static str,
    /// Information or error.
    pub level: Level,
    /// The event id ([`EVENT_OK`], ...).
    pub id: u16,
    /// The text (lines end with CRLF, as Event Viewer shows them).
    pub description: String,
}

impl Event {
    /// The entry as `watch run` prints it where it cannot write it.
    pub fn render(&self) -> String {
        format!(
            "{} log, source {}, {}, event id {}:\n  {}\n",
            self.log,
            self.source,
            match self.level {
                Level::Information => "information",
                Level::Error => "error",
            },
            self.id,
            self.description.replace("\r\n", "\n  ")
        )
    }
}

/// The entry for a run: `failures` (one line per VU that differs or failed its self-test,
/// naming its files) empty means information.
pub fn event(node: &str, id: u16, headline: &str, failures: &[String]) -> Event {
    let level = if id == EVENT_OK {
        Level::Information
    } else {
        Level::Error
    };
    let mut description = format!("extpy watch, node {node}: {headline}");
    for f in failures {
        for line in f.trim_end().lines() {
            description.push_str("\r\n");
            description.push_str(line.trim_end());
        }
    }
    if description.chars().count() > DESCRIPTION_MAX {
        description = description.chars().take(DESCRIPTION_MAX).collect();
        description.push_str("\r\n(cut; run extpy verify --topology on the node for all of it)");
    }
    Event {
        log: "Application",
        source: SOURCE,
        level,
        id,
        description,
    }
}

/// Writes the entry into the Application event log (ReportEventW, one string).
#[cfg(windows)]
pub fn write_event(e: &Event) -> Result<(), WatchError> {
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE,
        RegisterEventSourceW, ReportEventW,
    };
    let wide = |s: &str| -> Vec<u16> { s.encode_utf16().chain(Some(0)).collect() };
    let source = wide(SOURCE);
    let text = wide(&e.description);
    // SAFETY: a null server name means this machine; `source` is NUL-terminated.
    let handle = unsafe { RegisterEventSourceW(std::ptr::null(), source.as_ptr()) };
    if handle.is_null() {
        return Err(WatchError::EventLog {
            cause: std::io::Error::last_os_error(),
        });
    }
    let kind = match e.level {
        Level::Information => EVENTLOG_INFORMATION_TYPE,
        Level::Error => EVENTLOG_ERROR_TYPE,
    };
    let strings = [text.as_ptr()];
    // SAFETY: `handle` is open; one NUL-terminated string; no SID and no raw data.
    let written = unsafe {
        ReportEventW(
            handle,
            kind,
            0,
            u32::from(e.id),
            std::ptr::null_mut(),
            1,
            0,
            strings.as_ptr(),
            std::ptr::null(),
        )
    };
    let cause = (written == 0).then(std::io::Error::last_os_error);
    // SAFETY: `handle` came from RegisterEventSourceW and is closed once.
    unsafe { DeregisterEventSource(handle) };
    match cause {
        Some(cause) => Err(WatchError::EventLog { cause }),
        None => Ok(()),
    }
}

/// What running one command gave.
#[derive(Debug, Clone, Serialize)]
pub struct Ran {
    /// The line.
    pub command: String,
    /// Its exit code (none when it could not start).
    pub code: Option<i32>,
    /// What it printed (stdout, then stderr), trimmed.
    pub output: String,
}

impl Ran {
    /// True when it exited with 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs one command (through `runner` when given).
pub fn execute(line: &CommandLine, runner: Option<&Path>) -> Ran {
    let mut c = match runner {
        Some(r) => {
            let mut c = Command::new(r);
            c.arg(&line.program);
            c
        }
        None => Command::new(&line.program),
    };
    c.args(&line.args);
    match c.output() {
        Ok(out) => Ran {
            command: line.render(),
            code: out.status.code(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim()
            .to_string(),
        },
        Err(e) => Ran {
            command: line.render(),
            code: None,
            output: format!("cannot run {}: {e}", line.program),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_as_windows_reads_them_back() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("C:\\Program Files\\x"), "\"C:\\Program Files\\x\"");
        assert_eq!(quote("a \"b\""), "\"a \\\"b\\\"\"");
        assert_eq!(quote("D:\\dir with space\\"), "\"D:\\dir with space\\\\\"");
        assert_eq!(quote("x\\\"y"), "\"x\\\\\\\"y\"");
    }

    fn spec() -> TaskSpec {
        TaskSpec {
            node: "HAC1".into(),
            extpy: "C:\\Program Files\\extpy\\extpy.exe".into(),
            reference: Reference::Topology {
                topology: "D:\\SCP\\topology.yaml".into(),
                cache_dir: "C:\\ProgramData\\extpy".into(),
            },
            manifest: None,
            vu_root: None,
            selftest: true,
            trusted_keys: Vec::new(),
        }
    }

    #[test]
    fn the_tasks_run_the_watch_offline_as_system_daily_and_at_start_up() {
        let lines: Vec<String> = install(&spec())
            .unwrap()
            .iter()
            .map(CommandLine::render)
            .collect();
        let tr = "\"\\\"C:\\Program Files\\extpy\\extpy.exe\\\" --cache-dir C:\\ProgramData\\extpy --offline --quiet watch run --topology D:\\SCP\\topology.yaml --node HAC1 --selftest\"";
        assert_eq!(
            lines,
            [
                "powershell.exe -NoProfile -NonInteractive -Command \"if (-not [System.Diagnostics.EventLog]::SourceExists('extpy')) { New-EventLog -LogName Application -Source extpy }\"".to_string(),
                format!(
                    "schtasks.exe /Create /TN extpy\\watch-HAC1-daily /TR {tr} /SC DAILY /ST 03:00 /RU SYSTEM /RL HIGHEST /F"
                ),
                format!(
                    "schtasks.exe /Create /TN extpy\\watch-HAC1-start /TR {tr} /SC ONSTART /RU SYSTEM /RL HIGHEST /F"
                ),
                "schtasks.exe /Run /TN extpy\\watch-HAC1-daily".to_string(),
            ]
        );
        assert_eq!(
            remove("HAC1")[1].render(),
            "schtasks.exe /Delete /TN extpy\\watch-HAC1-start /F"
        );
        assert_eq!(
            status("HAC1")[0].render(),
            "schtasks.exe /Query /TN extpy\\watch-HAC1-daily /V /FO LIST"
        );
    }

    #[test]
    fn a_bundle_watch_names_the_bundle_and_no_cache() {
        let mut s = spec();
        s.reference = Reference::Bundle("D:\\SCP\\site bundle.zip".into());
        s.vu_root = Some("D:\\SCP\\vu".into());
        s.selftest = false;
        s.manifest = Some("D:\\m.yaml".into());
        assert_eq!(
            run_line(&s).render(),
            "\"C:\\Program Files\\extpy\\extpy.exe\" --manifest D:\\m.yaml --offline --quiet watch run --bundle \"D:\\SCP\\site bundle.zip\" --node HAC1 --vu-root D:\\SCP\\vu"
        );
    }

    #[test]
    fn trusted_keys_go_into_the_task_line_as_key_lines() {
        let mut s = spec();
        s.selftest = false;
        s.trusted_keys = vec![
            "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3".into(),
            "RWTAPRW2qy9FjsBiMeJr6YAL2p5YHK8Tc7Wr9Tkb8OGzqI1NWm3O4cJv".into(),
        ];
        assert_eq!(
            run_line(&s).render(),
            "\"C:\\Program Files\\extpy\\extpy.exe\" --cache-dir C:\\ProgramData\\extpy --offline --quiet watch run --topology D:\\SCP\\topology.yaml --node HAC1 --trusted-key RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3 --trusted-key RWTAPRW2qy9FjsBiMeJr6YAL2p5YHK8Tc7Wr9Tkb8OGzqI1NWm3O4cJv"
        );
        // With the paths above, one key fits in what schtasks takes; a second does not, and
        // the help says where else the keys can go.
        let e = install(&s).unwrap_err().to_string();
        assert!(e.contains("under trusted_keys: in the topology"), "{e}");
        s.trusted_keys.pop();
        assert!(install(&s).is_ok());
    }

    #[test]
    fn a_task_line_over_what_schtasks_takes_is_refused() {
        let mut s = spec();
        s.reference = Reference::Topology {
            topology: format!("D:\\{}\\topology.yaml", "t".repeat(200)),
            cache_dir: "C:\\c".into(),
        };
        let e = install(&s).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Input);
        let e = e.to_string();
        assert!(
            e.contains("over the 261 schtasks /TR accepts") && e.contains("help: "),
            "{e}"
        );
        assert!(!e.contains("trusted_keys:"), "{e}");
    }

    #[test]
    fn events_are_information_when_all_match_and_errors_naming_each_failure() {
        let ok = event("HAC1", EVENT_OK, "all 2 VUs match", &[]);
        assert_eq!(ok.level, Level::Information);
        assert_eq!(
            ok.render(),
            "Application log, source extpy, information, event id 100:\n  extpy watch, node HAC1: all 2 VUs match\n"
        );
        let bad = event(
            "HAC1",
            EVENT_DRIFT,
            "1 of 2 VUs differ",
            &["FAIL  HAC1 ExternalPython2 (Core2) D:\\vu: differs from its seal: 1 changed: Lib/x.py\n".into()],
        );
        assert_eq!(bad.level, Level::Error);
        assert_eq!(
            bad.description,
            "extpy watch, node HAC1: 1 of 2 VUs differ\r\nFAIL  HAC1 ExternalPython2 (Core2) D:\\vu: differs from its seal: 1 changed: Lib/x.py"
        );
        let long = event("HAC1", EVENT_DRIFT, "x", &["y".repeat(20_000)]);
        assert!(long.description.chars().count() < DESCRIPTION_MAX + 100);
        assert!(long.description.ends_with("for all of it)"));
    }

    #[test]
    fn a_failed_command_names_the_line_its_code_and_what_it_said() {
        let e = WatchError::Command {
            what: "cannot create the task".into(),
            ran: Ran {
                command: "schtasks.exe /Create".into(),
                code: Some(1),
                output: "ERROR: Access is denied.".into(),
            },
            help: "run it as an administrator",
        };
        assert_eq!(e.exit_code(), ExitCode::Local);
        assert_eq!(
            e.to_string(),
            "cannot create the task: `schtasks.exe /Create` exited with 1:\n  ERROR: Access is denied.\n  help: run it as an administrator"
        );
    }
}

//! What each failure of a self-test means on a Windows node, and its fix. The Windows
//! messages are matched by text and, where the probe could get it, by error number, since
//! the text is in the machine's language: 126 (ERROR_MOD_NOT_FOUND, a DLL the module needs
//! is missing), 1260 (ERROR_ACCESS_DISABLED_BY_POLICY, "This program is blocked by group
//! policy": AppLocker or a software restriction policy), 4551
//! (ERROR_SYSTEM_INTEGRITY_POLICY_VIOLATION, "An Application Control policy has blocked this
//! file": WDAC, as reported against unsigned `.pyd` files in numpy/numpy#30832), and the
//! process status 0xC0000135 (STATUS_DLL_NOT_FOUND: python.exe itself cannot load a DLL).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::job::mail::runtime::{Distribution, TrustAnswer, runtime_fix};
use crate::job::mail::verdict::MailFix;
use crate::mechanism::pathlen::{self, LongPaths, LongestPath};

use super::child::Ended;
use super::tls::{TlsCheck, TlsKind};

/// The status a Windows process ends with when a DLL it imports is missing.
const STATUS_DLL_NOT_FOUND: u32 = 0xC000_0135;
/// ERROR_MOD_NOT_FOUND.
const ERROR_MOD_NOT_FOUND: i64 = 126;
/// ERROR_ACCESS_DISABLED_BY_POLICY (AppLocker, software restriction policies).
const ERROR_BLOCKED_BY_POLICY: i64 = 1260;
/// ERROR_SYSTEM_INTEGRITY_POLICY_VIOLATION (Windows Defender Application Control).
const ERROR_APPLICATION_CONTROL: i64 = 4551;
/// The runtime DLLs the embeddable CPython ships beside python.exe.
const RUNTIME_DLLS: [&str; 2] = ["vcruntime140.dll", "vcruntime140_1.dll"];

/// The kinds of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictCode {
    /// A file's full path is over MAX_PATH and long paths are not enabled.
    PathTooLong,
    /// The Visual C++ runtime (or another DLL a module needs) is missing.
    MissingRuntime,
    /// An Application Control (WDAC) or AppLocker policy blocked a DLL or python.exe.
    DllBlocked,
    /// The CA bundle requests uses does not trust the endpoint's chain.
    UntrustedRoot,
    /// A module did not import.
    ImportFailed,
    /// TLS to the endpoint failed for another reason (DNS, proxy, handshake).
    TlsFailed,
    /// The folder has no python.exe.
    NoPython,
    /// The interpreter did not start or ended without a report.
    PythonFailed,
    /// The probe ran past the time limit and was killed.
    TimedOut,
}

impl VerdictCode {
    /// The code as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictCode::PathTooLong => "path_too_long",
            VerdictCode::MissingRuntime => "missing_runtime",
            VerdictCode::DllBlocked => "dll_blocked",
            VerdictCode::UntrustedRoot => "untrusted_root",
            VerdictCode::ImportFailed => "import_failed",
            VerdictCode::TlsFailed => "tls_failed",
            VerdictCode::NoPython => "no_python",
            VerdictCode::PythonFailed => "python_failed",
            VerdictCode::TimedOut => "timed_out",
        }
    }
}

/// A failure and its fix.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Its kind.
    pub code: VerdictCode,
    /// What failed, in a sentence.
    pub summary: String,
    /// What to do.
    pub fix: MailFix,
}

/// What a verdict may need to know about the folder.
pub(crate) struct Found<'a> {
    pub dir: &'a Path,
    pub dist: &'a Distribution,
    /// True when a path in it is over the limit (a likely cause of an import failure).
    pub too_long: bool,
    pub time_limit: Duration,
    /// `host:port` of the TLS check.
    pub endpoint: String,
}

fn fix(summary: impl Into<String>, steps: Vec<String>) -> MailFix {
    MailFix {
        summary: summary.into(),
        steps,
    }
}

fn verify_step(dir: &Path) -> String {
    format!(
        "extpy verify {} shows whether a file was removed or changed (an antivirus quarantine, a hand edit); extpy layout TOPOLOGY --repair puts the sealed distribution back",
        dir.display()
    )
}

/// A path over MAX_PATH without long-path support.
pub(crate) fn path_too_long(l: &LongestPath, long_paths: LongPaths) -> Verdict {
    let why = match long_paths {
        LongPaths::Off => "LongPathsEnabled is not set",
        _ => "this CPython is older than 3.6, whose python.exe ignores LongPathsEnabled",
    };
    Verdict {
        code: VerdictCode::PathTooLong,
        summary: format!(
            "{} is {} characters long, over the {} Windows allows, and {why}: Python cannot import from it",
            l.path,
            l.length,
            pathlen::MAX_PATH_CHARS
        ),
        fix: fix(
            "shorten the VU root, or enable long paths on the node",
            vec![
                "give the node a shorter vu_root in the topology (e.g. D:\\usr\\sap\\VU), then extpy layout TOPOLOGY".into(),
                pathlen::help(l),
            ],
        ),
    }
}

/// The folder has no python.exe.
pub(crate) fn no_python(found: &Found, program: &Path) -> Verdict {
    Verdict {
        code: VerdictCode::NoPython,
        summary: format!(
            "{} is missing: CEM cannot start this Python",
            program.display()
        ),
        fix: fix(
            "put the distribution's python.exe back",
            vec![
                verify_step(found.dir),
                "if an antivirus quarantined it, restore it and add an exclusion for the VU folder"
                    .into(),
            ],
        ),
    }
}

/// The interpreter did not start, ran too long, or ended without a report.
pub(crate) fn no_report(found: &Found, ended: &Ended) -> Verdict {
    match ended {
        Ended::NotStarted(e) => {
            let code = e.raw_os_error().map(i64::from);
            if matches!(code, Some(ERROR_BLOCKED_BY_POLICY | ERROR_APPLICATION_CONTROL)) {
                return blocked(found, "python.exe", &e.to_string());
            }
            Verdict {
                code: VerdictCode::PythonFailed,
                summary: format!("python.exe could not be started: {e}"),
                fix: fix(
                    "check that the folder's python.exe is intact and may run",
                    vec![verify_step(found.dir)],
                ),
            }
        }
        Ended::TimedOut => Verdict {
            code: VerdictCode::TimedOut,
            summary: format!(
                "the self-test did not finish within {} s and was stopped",
                found.time_limit.as_secs()
            ),
            fix: fix(
                "find what holds it up",
                vec![
                    "run again with --offline: if that passes, the TLS connection hangs (a proxy that does not answer; extpy doctor shows the path)".into(),
                    "an antivirus scanning every DLL at first load can take long: add an exclusion for the VU folder, or raise --time-limit".into(),
                ],
            ),
        },
        Ended::Exited {
            code,
            stdout,
            stderr,
        } => {
            let text = format!("{stderr}\n{stdout}");
            let status = code.map(|c| c as u32);
            if status == Some(STATUS_DLL_NOT_FOUND) {
                return missing_runtime(found, "python.exe", "the process ended with STATUS_DLL_NOT_FOUND (0xC0000135)");
            }
            if let Some(v) = by_text(found, "python.exe", &text) {
                return v;
            }
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Verdict {
                code: VerdictCode::PythonFailed,
                summary: format!(
                    "python.exe ended (exit code {}) without the self-test's report: {}",
                    code.map_or("none".to_string(), |c| format!("{c} / 0x{:08X}", c as u32)),
                    if tail.is_empty() { "it printed nothing".to_string() } else { tail.join(" | ") }
                ),
                fix: fix(
                    "run the folder's python.exe by hand to see its error",
                    vec![
                        format!("{}\\python.exe -c \"import ssl, requests, msal\"", found.dir.display()),
                        verify_step(found.dir),
                    ],
                ),
            }
        }
    }
}

/// A verdict from a Windows message in `text`, if it holds one.
fn by_text(found: &Found, what: &str, text: &str) -> Option<Verdict> {
    let lower = text.to_ascii_lowercase();
    if lower.contains("application control policy")
        || lower.contains("blocked by group policy")
        || lower.contains("device guard")
    {
        return Some(blocked(found, what, text));
    }
    if lower.contains("vcruntime140") || lower.contains("msvcp140") {
        return Some(missing_runtime(found, what, text));
    }
    None
}

/// A module did not import.
pub(crate) fn import(found: &Found, module: &str, error: &str, winerror: Option<i64>) -> Verdict {
    match winerror {
        Some(ERROR_BLOCKED_BY_POLICY | ERROR_APPLICATION_CONTROL) => {
            return blocked(found, module, error);
        }
        Some(ERROR_MOD_NOT_FOUND) => return missing_runtime(found, module, error),
        _ => {}
    }
    if let Some(v) = by_text(found, module, error) {
        return v;
    }
    if error.contains("DLL load failed") && error.contains("could not be found") {
        return missing_runtime(found, module, error);
    }
    let mut steps = vec![verify_step(found.dir)];
    let mut summary = format!("import {module} failed: {error}");
    if found.too_long {
        summary.push_str(
            " (a path in the folder is over MAX_PATH: see path_too_long, the likely cause)",
        );
    }
    steps.push("if verify passes, the manifest lacks a package CEM needs: add it to requires: and run extpy lock, then build and lay out again".into());
    Verdict {
        code: VerdictCode::ImportFailed,
        summary,
        fix: fix(format!("make {module} importable again"), steps),
    }
}

fn blocked(found: &Found, what: &str, error: &str) -> Verdict {
    let policy = if error.contains("group policy") || error.contains("1260") {
        "an AppLocker (or software restriction) policy"
    } else {
        "an Application Control (WDAC) or AppLocker policy"
    };
    Verdict {
        code: VerdictCode::DllBlocked,
        summary: format!("{policy} blocked {what}: {error}"),
        fix: fix(
            "allow the distribution's executables and DLLs in the policy",
            vec![
                "the event logs name the rule: Applications and Services Logs > Microsoft > Windows > CodeIntegrity > Operational (events 3077, 3033) for WDAC, AppLocker > EXE and DLL (8004) for AppLocker".into(),
                format!(
                    "add allow rules for the PE files under {} (a hash rule for each unsigned .pyd and .dll; Get-ChildItem -Recurse -Include *.exe,*.dll,*.pyd | Get-AppLockerFileInformation | New-AppLockerPolicy -RuleType Hash, or New-CIPolicy -Level Hash -ScanPath for WDAC)",
                    found.dir.display()
                ),
                "rebuilding does not help: the same pinned wheels give the same unsigned files".into(),
            ],
        ),
    }
}

fn missing_runtime(found: &Found, what: &str, error: &str) -> Verdict {
    let missing: Vec<&str> = RUNTIME_DLLS
        .iter()
        .copied()
        .filter(|d| !found.dir.join(d).is_file())
        .collect();
    let mut steps = Vec::new();
    if !missing.is_empty() {
        steps.push(format!(
            "{} missing from the folder (the embeddable CPython ships it): {}",
            missing.join(" and "),
            verify_step(found.dir)
        ));
    }
    steps.push("install the Microsoft Visual C++ 2015-2022 Redistributable (x64), vc_redist.x64.exe, on the node; it puts vcruntime140.dll, vcruntime140_1.dll and msvcp140.dll into System32".into());
    Verdict {
        code: VerdictCode::MissingRuntime,
        summary: format!(
            "{what} cannot load a DLL it needs (the Visual C++ runtime, most often): {error}"
        ),
        fix: fix("give the node the Visual C++ runtime", steps),
    }
}

/// TLS to the endpoint failed.
pub(crate) fn tls(found: &Found, kind: Option<TlsKind>, check: &TlsCheck) -> Verdict {
    let error = check.error.clone().unwrap_or_else(|| "it failed".into());
    match kind {
        Some(TlsKind::Certificate | TlsKind::Bundle) => {
            let ca = check.issuer.clone().unwrap_or_else(|| "its root".into());
            let answer = TrustAnswer {
                ok: false,
                problem: None,
                message: Some(error.clone()),
            };
            let (_, mut fix) = runtime_fix(found.dist, &found.endpoint, &ca, false, &answer);
            // Its last step says where this machine's store stands, which a self-test does
            // not look at: only the node's store matters here.
            fix.steps.pop();
            fix.steps.push(format!(
                "\"{ca}\" must be in Cert:\\LocalMachine\\Root of every CEM node (extpy doctor {} --export DIR writes it as PEM and DER)",
                found.endpoint
            ));
            Verdict {
                code: VerdictCode::UntrustedRoot,
                summary: format!(
                    "requests in this folder would not trust {}: {error}{}",
                    found.endpoint,
                    check
                        .issuer
                        .as_ref()
                        .map(|i| format!(" (the certificate is issued by \"{i}\")"))
                        .unwrap_or_default()
                ),
                fix,
            }
        }
        _ => Verdict {
            code: VerdictCode::TlsFailed,
            summary: format!(
                "no TLS connection to {}{}: {error}",
                found.endpoint,
                check
                    .proxy
                    .as_ref()
                    .map(|p| format!(" through {p}"))
                    .unwrap_or_default()
            ),
            fix: fix(
                "check the way out to the endpoint",
                vec![
                    format!("extpy doctor {} shows the proxy, DNS, TCP and handshake step by step", found.endpoint),
                    "CEM runs as a service: it uses the WinHTTP proxy (netsh winhttp show proxy), which may differ from the user's".into(),
                ],
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_found(f: impl FnOnce(&Found)) {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("Lib").join("site-packages").join("certifi");
        std::fs::create_dir_all(&site).unwrap();
        support::Ca::root("a root").write_pem(&site, "cacert.pem");
        std::fs::write(dir.path().join("vcruntime140.dll"), "MZ").unwrap();
        let dist = Distribution::open(dir.path()).unwrap();
        f(&Found {
            dir: dir.path(),
            dist: &dist,
            too_long: false,
            time_limit: Duration::from_secs(60),
            endpoint: "login.example:443".into(),
        });
    }

    #[test]
    fn windows_errors_become_their_verdicts_in_any_language() {
        with_found(|found| {
            let wdac = "ImportError: DLL load failed while importing _rust: An Application Control policy has blocked this file.";
            assert_eq!(import(found, "x", wdac, None).code, VerdictCode::DllBlocked);
            let localized = "ImportError: DLL load failed while importing _rust: Una directiva de Control de aplicaciones bloqueo este archivo.";
            assert_eq!(
                import(found, "x", localized, Some(4551)).code,
                VerdictCode::DllBlocked
            );
            assert_eq!(
                import(found, "x", localized, None).code,
                VerdictCode::ImportFailed
            );
            let applocker = "ImportError: DLL load failed while importing _cffi_backend: This program is blocked by group policy. For more information, contact your system administrator.";
            let v = import(found, "_cffi_backend", applocker, None);
            assert_eq!(v.code, VerdictCode::DllBlocked);
            assert!(v.summary.contains("AppLocker"), "{}", v.summary);
            let missing = "ImportError: DLL load failed while importing _rust: The specified module could not be found.";
            let v = import(found, "x", missing, None);
            assert_eq!(v.code, VerdictCode::MissingRuntime);
            assert!(
                v.fix.steps[0].contains("vcruntime140_1.dll missing"),
                "{:?}",
                v.fix
            );
            assert_eq!(
                import(found, "x", "ImportError: ?", Some(126)).code,
                VerdictCode::MissingRuntime
            );
            let plain = "ModuleNotFoundError: No module named 'msal'";
            assert_eq!(
                import(found, "msal", plain, None).code,
                VerdictCode::ImportFailed
            );
        });
    }

    #[test]
    fn a_python_exe_that_cannot_load_its_runtime_or_is_blocked() {
        with_found(|found| {
            let ended = Ended::Exited {
                code: Some(STATUS_DLL_NOT_FOUND as i32),
                stdout: String::new(),
                stderr: String::new(),
            };
            assert_eq!(no_report(found, &ended).code, VerdictCode::MissingRuntime);
            let blocked = Ended::NotStarted(std::io::Error::from_raw_os_error(4551));
            // The number is Windows'; elsewhere the same number means something else, but
            // the classification goes by it alone.
            assert_eq!(no_report(found, &blocked).code, VerdictCode::DllBlocked);
            let crashed = Ended::Exited {
                code: Some(1),
                stdout: String::new(),
                stderr: "Fatal Python error: init_fs_encoding\n".into(),
            };
            let v = no_report(found, &crashed);
            assert_eq!(v.code, VerdictCode::PythonFailed);
            assert!(v.summary.contains("init_fs_encoding"), "{}", v.summary);
            let slow = Ended::TimedOut;
            assert!(no_report(found, &slow).summary.contains("within 60 s"));
        });
    }
}

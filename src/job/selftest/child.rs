//! Running the probe in a distribution's interpreter, bounded in time: the child is killed
//! when the limit passes, and its output is read while it runs so a full pipe cannot stall it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The probe script, run with `-c`.
pub(crate) const PROBE: &str = include_str!("probe.py");

/// The line the probe prints its report on.
pub(crate) const MARK: &str = "EXTPY-SELFTEST ";

/// The environment variable that names a CPython to run instead of the folder's python.exe
/// (tests, and trying a tree on a machine that cannot run it).
pub const PYTHON_ENV: &str = "EXTPY_SELFTEST_PYTHON";

/// Which interpreter runs the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interpreter {
    /// The folder's own python.exe (its `._pth` decides the paths).
    Own(PathBuf),
    /// A CPython standing in for it: run isolated, without `site`, and given the folder's
    /// site-packages by the probe.
    StandIn(PathBuf),
}

impl Interpreter {
    /// The program.
    pub(crate) fn program(&self) -> &Path {
        match self {
            Interpreter::Own(p) | Interpreter::StandIn(p) => p,
        }
    }

    /// The command line before `-c`: never write byte code, and put whatever Python would
    /// cache under `pycache` (a temporary folder), so nothing lands in the distribution.
    pub(crate) fn args(&self, pycache: &Path) -> Vec<String> {
        let mut args = vec!["-I".to_string()];
        if matches!(self, Interpreter::StandIn(_)) {
            args.push("-S".into());
        }
        args.extend([
            "-B".into(),
            "-X".into(),
            format!("pycache_prefix={}", pycache.display()),
        ]);
        args
    }
}

/// How the child ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It could not be started.
    NotStarted(std::io::Error),
    /// It ran past the limit and was killed.
    TimedOut,
    /// It exited (`code` is None when a signal ended it).
    Exited {
        code: Option<i32>,
        stdout: String,
        stderr: String,
    },
}

/// Runs `interpreter` with the probe and `config` (its JSON argument) in `cwd`, for at most
/// `limit`.
pub(crate) fn run(
    interpreter: &Interpreter,
    config: &str,
    cwd: &Path,
    pycache: &Path,
    limit: Duration,
) -> Ended {
    let mut c = Command::new(interpreter.program());
    c.args(interpreter.args(pycache))
        .arg("-c")
        .arg(PROBE)
        .arg(config)
        .current_dir(cwd)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match c.spawn() {
        Ok(child) => child,
        Err(e) => return Ended::NotStarted(e),
    };
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                // Bounded: a probe prints a few kilobytes; more is not read into memory.
                let _ = r.by_ref().take(4 << 20).read_to_end(&mut buf);
                let _ = std::io::copy(&mut r, &mut std::io::sink());
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(s) => Ended::Exited {
            code: s.code(),
            stdout,
            stderr,
        },
        None => Ended::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_runs_isolated_without_site_and_never_writes_byte_code() {
        let p = Path::new("/tmp/pyc");
        let own = Interpreter::Own("python.exe".into());
        assert_eq!(own.args(p), ["-I", "-B", "-X", "pycache_prefix=/tmp/pyc"]);
        let stand_in = Interpreter::StandIn("python3".into());
        assert_eq!(
            stand_in.args(p),
            ["-I", "-S", "-B", "-X", "pycache_prefix=/tmp/pyc"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_child_past_its_limit_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("slow");
        std::fs::write(&script, "#!/bin/sh\necho started\nexec sleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let start = Instant::now();
        let ended = run(
            &Interpreter::Own(script),
            "{}",
            dir.path(),
            dir.path(),
            Duration::from_millis(300),
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        match ended {
            Ended::TimedOut => {}
            other => panic!("{other:?}"),
        }
    }
}

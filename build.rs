//! Records what `extpy version` reports about the build: the git commit, the build date and
//! the target triple. Works in a clean clone, in a source tarball without `.git`, and where
//! git is not installed (the commit is then `unknown`). `SOURCE_DATE_EPOCH`, when set, is
//! the build date, so that a reproducible build gives the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let commit =
        git(&dir, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // A new commit reruns this script; without git only build.rs and the variable do.
    if commit != "unknown" {
        for f in git_files(&dir) {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }
    let (date, date_source) = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(secs) => (civil_date(secs), "SOURCE_DATE_EPOCH"),
            Err(_) => {
                println!(
                    "cargo:warning=SOURCE_DATE_EPOCH={v:?} is not a number of seconds; using the current date"
                );
                (now_date(), "build time")
            }
        },
        Err(_) => (now_date(), "build time"),
    };
    println!("cargo:rustc-env=EXTPY_COMMIT={commit}");
    println!("cargo:rustc-env=EXTPY_BUILD_DATE={date}");
    println!("cargo:rustc-env=EXTPY_BUILD_DATE_SOURCE={date_source}");
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap_or_default();
    for (var, krate) in [
        ("EXTPY_RUSTLS_VERSION", "rustls"),
        ("EXTPY_WEBPKI_ROOTS_VERSION", "webpki-roots"),
    ] {
        let version = locked_version(&lock, krate).unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env={var}={version}");
    }
    println!(
        "cargo:rustc-env=EXTPY_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
}

/// The trimmed output of a git command run in `dir`, or None when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The version of `krate` that Cargo.lock pins.
fn locked_version(lock: &str, krate: &str) -> Option<String> {
    let name = format!("name = \"{krate}\"");
    let mut lines = lock.lines();
    lines.find(|l| l.trim() == name)?;
    let version = lines.next()?.trim().strip_prefix("version = \"")?;
    Some(version.trim_end_matches('"').to_string())
}

/// The files whose change means another commit: HEAD, the branch it points to, packed refs.
fn git_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let absolute = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { dir.join(p) }
    };
    if let Some(git_dir) = git(dir, &["rev-parse", "--git-dir"]).map(absolute) {
        files.push(git_dir.join("HEAD"));
    }
    if let Some(common) = git(dir, &["rev-parse", "--git-common-dir"]).map(absolute) {
        if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
            files.push(common.join(branch));
        }
        files.push(common.join("packed-refs"));
    }
    files.into_iter().filter(|f| f.exists()).collect()
}

fn now_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_date(secs)
}

/// `YYYY-MM-DD` (UTC) of a Unix time (Howard Hinnant's days-to-civil algorithm).
fn civil_date(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

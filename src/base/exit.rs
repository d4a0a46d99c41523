//! The documented exit codes: every error type of the crate says which one it ends with.

/// Exit codes, documented in `extpy --help` and the guide's exit-code page (made from the table below).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything worked.
    Success = 0,
    /// A local failure: file system, permissions, disk full.
    Local = 1,
    /// Usage or input error: bad arguments, manifest, topology, `--ca-cert` or key file.
    Input = 2,
    /// Verification failed: a hash, seal or bundle does not match, or is not signed by a
    /// trusted key.
    Verification = 3,
    /// Network or TLS failure, a live check that failed, or artifacts missing with `--offline`.
    Network = 4,
}

/// The exit-code table shown in `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  local failure (file system, permissions, disk full)
  2  usage or input error (arguments, manifest, topology, --ca-cert or key file,
     wrong passphrase)
  3  verification failed (a sha256, seal or bundle does not match, or is not signed
     by a trusted key)
  4  network or TLS failure, a failed live check (doctor, mail check), or artifacts
     missing with --offline";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_table_lists_every_code_in_order() {
        let all = [
            ExitCode::Success,
            ExitCode::Local,
            ExitCode::Input,
            ExitCode::Verification,
            ExitCode::Network,
        ];
        // Exhaustive: a new code does not compile until it is listed above (and in the table).
        for c in all {
            match c {
                ExitCode::Success
                | ExitCode::Local
                | ExitCode::Input
                | ExitCode::Verification
                | ExitCode::Network => {}
            }
        }
        // A row starts with its code; deeper-indented lines continue the one above.
        let listed: Vec<u8> = EXIT_CODES_HELP
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse::<u8>().ok())
            .collect();
        assert_eq!(listed, all.map(|c| c as u8));
    }
}

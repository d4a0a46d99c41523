//! Site signatures in minisign's format (ed25519): key pairs, reading key files, signing and
//! checking a signature against the trusted keys. The key and signature files are those of
//! the `minisign` tool, so a site can check what extpy signed with the tool it knows, and the
//! other way round.
//!
//! The `minisign` crate reads and writes the key files (its scrypt encryption included) and
//! verifies. It signs with a random nonce mixed in, so two signatures of the same bytes
//! differ; extpy signs with plain RFC 8032 ed25519 instead (the secret key the crate decrypted,
//! through ring), so the same bundle signed twice gives the same signature file, and checks
//! each signature it makes with the crate before writing it.

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use blake2::{Blake2b512, Digest};

use crate::base::exit::ExitCode;
use crate::mechanism::fsio::IoError;

/// The largest key or signature file read (they are a few hundred bytes).
const MAX_KEY_FILE: u64 = 64 << 10;

/// A key's id: 8 bytes, shown as minisign shows it (16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(u64);

impl KeyId {
    fn of(keynum: &[u8]) -> Self {
        let mut b = [0u8; 8];
        b.copy_from_slice(&keynum[..8]);
        KeyId(u64::from_le_bytes(b))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file is not a minisign key of the expected kind.
    #[error("{}: not a minisign {kind}: {reason}\n  help: give the file `extpy key generate` (or `minisign -G`) wrote: the .pub file to verify, the secret key to sign", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// `public key` or `secret key`.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A trusted key given as text (in a manifest or topology) does not parse.
    #[error(
        "{origin}: {text:?} is not a minisign public key: {reason}\n  help: give the second line of the .pub file (it starts with RW), or the path of the .pub file"
    )]
    BadText {
        /// Where it was given.
        origin: String,
        /// The text.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// The passphrase does not decrypt the secret key.
    #[error("{}: wrong passphrase for this secret key\n  help: give the passphrase it was generated with; a lost passphrase cannot be recovered: generate a new key and trust its .pub instead", path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The secret key is encrypted and no passphrase can be had.
    #[error("{}: the secret key is encrypted and {why}\n  help: pass --passphrase-env VAR, naming an environment variable that holds the passphrase", path.display())]
    NoPassphrase {
        /// The key file.
        path: PathBuf,
        /// Why none could be had.
        why: String,
    },
    /// `key generate` would overwrite a key.
    #[error("{} exists: a key is never overwritten\n  help: pass another path, or delete the old key first (signatures it made then verify only with its .pub)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The random generator or the key derivation failed.
    #[error("cannot generate a key: {0}")]
    Generate(String),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl KeyError {
    /// What is wrong with the key, without where it came from.
    pub(crate) fn reason(&self) -> String {
        match self {
            KeyError::Bad { reason, .. } | KeyError::BadText { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }

    /// The exit code: a key that cannot be read or used is the user's input.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            // A key file that is not there is a wrong argument, as a missing manifest is.
            KeyError::Io(e) if e.source.kind() == std::io::ErrorKind::NotFound => ExitCode::Input,
            KeyError::Io(e) => e.exit_code(),
            KeyError::Generate(_) => ExitCode::Local,
            _ => ExitCode::Input,
        }
    }
}

/// A public key that signatures are checked against.
#[derive(Clone)]
pub struct TrustedKey {
    id: KeyId,
    key: minisign::PublicKey,
    /// Where it came from (a file, or a manifest's field), for messages.
    pub origin: String,
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedKey({} from {})", self.id, self.origin)
    }
}

impl TrustedKey {
    /// Reads a `.pub` file (minisign's: an untrusted comment, then the key).
    pub(crate) fn load(path: &Path) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::Bad {
            path: path.to_path_buf(),
            kind: "public key",
            reason,
        };
        let text = crate::mechanism::limits::read_regular_text(path, MAX_KEY_FILE)
            .map_err(|e| IoError::new(path, "cannot read the public key", e))?;
        let line = key_line(&text).ok_or_else(|| bad("it has no key line".into()))?;
        let key = minisign::PublicKey::from_base64(line).map_err(|e| bad(e.to_string()))?;
        Ok(Self::new(key, path.display().to_string()))
    }

    /// A key given on the command line: a `.pub` file, or its key line (`RW...`) itself.
    pub(crate) fn from_arg(arg: &Path) -> Result<Self, KeyError> {
        match arg.to_str() {
            Some(text) if text.starts_with("RW") && !arg.exists() => {
                Self::parse(text, "--trusted-key")
            }
            _ => Self::load(arg),
        }
    }

    /// Parses a key given as text: the key line of a `.pub` file (`RW...`).
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self, KeyError> {
        let key = minisign::PublicKey::from_base64(text.trim()).map_err(|e| KeyError::BadText {
            origin: origin.to_string(),
            text: text.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self::new(key, origin.to_string()))
    }

    fn new(key: minisign::PublicKey, origin: String) -> Self {
        Self {
            id: KeyId::of(key.keynum()),
            key,
            origin,
        }
    }

    /// The key's id.
    pub(crate) fn id(&self) -> KeyId {
        self.id
    }

    /// The key line of its `.pub` file (`RW...`), as `--trusted-key` and `trusted_keys:` take it.
    pub(crate) fn key_line(&self) -> String {
        self.key.to_base64()
    }
}

/// The key line of a minisign key file: the first line that is not a comment.
fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
}

/// A decrypted secret key, ready to sign.
pub(crate) struct SigningKey {
    id: KeyId,
    pair: ring::signature::Ed25519KeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

/// Offsets in minisign's secret key bytes: algorithms (6), salt (32), limits (16), key id (8),
/// then the ed25519 secret key (seed and public key, 64) and a checksum (32).
const SK_KEYNUM: usize = 54;
const SK_SEED: usize = SK_KEYNUM + 8;
const SK_PUBLIC: usize = SK_SEED + 32;
const SK_END: usize = SK_PUBLIC + 32;

impl SigningKey {
    /// Reads a secret key file; `passphrase` is asked only when the key is encrypted.
    /// `warn` hears about a key file that others can read.
    pub(crate) fn load(
        path: &Path,
        passphrase: impl FnOnce() -> Result<String, KeyError>,
        warn: &dyn Fn(String),
    ) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::Bad {
            path: path.to_path_buf(),
            kind: "secret key",
            reason,
        };
        let text = crate::mechanism::limits::read_regular_text(path, MAX_KEY_FILE)
            .map_err(|e| IoError::new(path, "cannot read the secret key", e))?;
        if let Some(w) = exposed(path) {
            warn(w);
        }
        let line = key_line(&text).ok_or_else(|| bad("it has no key line".into()))?;
        let raw = STANDARD
            .decode(line)
            .map_err(|e| bad(format!("the key line is not base64: {e}")))?;
        let parsed = minisign::SecretKey::from_bytes(&raw).map_err(|e| bad(e.to_string()))?;
        let sk = if parsed.is_encrypted() {
            let boxed =
                minisign::SecretKeyBox::from_string(&text).map_err(|e| bad(e.to_string()))?;
            let pass = passphrase()?;
            minisign::SecretKey::from_box(boxed, Some(pass)).map_err(|e| match e.kind() {
                minisign::ErrorKind::Verify => KeyError::WrongPassphrase {
                    path: path.to_path_buf(),
                },
                _ => bad(e.to_string()),
            })?
        } else {
            // The minisign tool writes a zero checksum into an unencrypted key (`-W`), which
            // the crate refuses: such a key is taken as it is, and ring checks below that its
            // seed and public key belong together.
            parsed
        };
        // The key id is encrypted with the key: it is known only now.
        let id = KeyId::of(sk.keynum());
        let bytes = sk.to_bytes();
        if bytes.len() < SK_END {
            return Err(bad("it is too short".into()));
        }
        let pair = ring::signature::Ed25519KeyPair::from_seed_and_public_key(
            &bytes[SK_SEED..SK_PUBLIC],
            &bytes[SK_PUBLIC..SK_END],
        )
        .map_err(|e| bad(format!("its ed25519 key is inconsistent: {e}")))?;
        Ok(Self { id, pair })
    }

    /// The key's id.
    pub(crate) fn id(&self) -> KeyId {
        self.id
    }

    /// The minisign signature file of `data` (prehashed, with `trusted_comment`, one line
    /// of printable ASCII). The same key, data and comment give the same bytes.
    pub(crate) fn sign(&self, data: &[u8], trusted_comment: &str) -> String {
        let trusted_comment: String = trusted_comment
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .collect();
        let hash = Blake2b512::digest(data);
        let sig = self.pair.sign(&hash);
        let mut sig_line = b"ED".to_vec();
        sig_line.extend_from_slice(&self.id.0.to_le_bytes());
        sig_line.extend_from_slice(sig.as_ref());
        let mut global = sig.as_ref().to_vec();
        global.extend_from_slice(trusted_comment.as_bytes());
        let global = self.pair.sign(&global);
        format!(
            "untrusted comment: signature from extpy secret key {}\n{}\ntrusted comment: {}\n{}\n",
            self.id,
            STANDARD.encode(&sig_line),
            trusted_comment,
            STANDARD.encode(global.as_ref())
        )
    }
}

/// The warning for a secret key file that its group or others can read (Unix).
#[cfg(unix)]
fn exposed(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{}: the secret key is readable by others (mode {mode:04o}): anyone who can read it can sign as this site\n  help: chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}

/// On Windows a file's readers are set by its ACL, which extpy does not judge.
#[cfg(not(unix))]
fn exposed(_path: &Path) -> Option<String> {
    None
}

/// A signature that verified: who signed, and what the signer wrote in the trusted comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Signer {
    /// The key that made it.
    pub key_id: KeyId,
    /// The trusted comment (signed with the data).
    pub trusted_comment: String,
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigProblem {
    /// The signature file is not minisign's (damaged or truncated).
    Unreadable(String),
    /// It was made by a key that is not trusted.
    UntrustedKey {
        /// The key that signed.
        found: KeyId,
    },
    /// The key is trusted but the signature does not match the data (or its comment).
    Mismatch {
        /// The key.
        key: KeyId,
    },
}

/// The key ids of `trusted`, for messages.
pub(crate) fn ids(trusted: &[TrustedKey]) -> String {
    trusted
        .iter()
        .map(|k| k.id().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key id a signature file names, when it can be read at all.
pub(crate) fn signed_by(signature: &str) -> Option<KeyId> {
    minisign::SignatureBox::from_string(signature)
        .ok()
        .map(|b| KeyId::of(b.keynum()))
}

/// Checks `signature` (a `.minisig` file's text) over `data` against `trusted`.
pub(crate) fn verify(
    signature: &str,
    data: &[u8],
    trusted: &[TrustedKey],
) -> Result<Signer, SigProblem> {
    let sig = minisign::SignatureBox::from_string(signature)
        .map_err(|e| SigProblem::Unreadable(e.to_string()))?;
    let found = KeyId::of(sig.keynum());
    let key = trusted
        .iter()
        .find(|k| k.id == found)
        .ok_or(SigProblem::UntrustedKey { found })?;
    minisign::verify(&key.key, &sig, Cursor::new(data), true, false, false)
        .map_err(|_| SigProblem::Mismatch { key: found })?;
    let trusted_comment = sig
        .trusted_comment()
        .map_err(|e| SigProblem::Unreadable(e.to_string()))?;
    Ok(Signer {
        key_id: found,
        trusted_comment,
    })
}

/// What `key generate` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Generated {
    /// The key id.
    pub key_id: KeyId,
    /// The secret key file.
    pub secret_key: PathBuf,
    /// The public key file.
    pub public_key: PathBuf,
    /// False with `--unencrypted`.
    pub encrypted: bool,
}

/// Generates a key pair and writes the secret key (readable by its owner only, on Unix) and
/// the public key; `passphrase` encrypts the secret key, `None` leaves it unencrypted.
/// Neither file may exist.
pub(crate) fn generate(
    secret: &Path,
    public: &Path,
    passphrase: Option<String>,
) -> Result<Generated, KeyError> {
    for p in [secret, public] {
        if p.symlink_metadata().is_ok() {
            return Err(KeyError::Exists {
                path: p.to_path_buf(),
            });
        }
    }
    let encrypted = passphrase.is_some();
    let minisign::KeyPair { pk, sk } = match passphrase {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p)),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| KeyError::Generate(e.to_string()))?;
    let key_id = KeyId::of(pk.keynum());
    let comment = if encrypted {
        "minisign encrypted secret key"
    } else {
        "minisign unencrypted secret key"
    };
    let sk_text = sk
        .to_box(Some(comment))
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .into_string();
    let pk_text = pk
        .to_box()
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .into_string();
    write_new(secret, sk_text.as_bytes(), true)?;
    if let Err(e) = write_new(public, pk_text.as_bytes(), false) {
        let _ = std::fs::remove_file(secret);
        return Err(e);
    }
    Ok(Generated {
        key_id,
        secret_key: secret.to_path_buf(),
        public_key: public.to_path_buf(),
        encrypted,
    })
}

/// Writes a file that must not exist yet (`private`: mode 0600 on Unix).
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), KeyError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::Exists {
            path: path.to_path_buf(),
        },
        _ => IoError::new(path, "cannot write the key", e).into(),
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| IoError::new(path, "cannot write the key", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, pass: Option<&str>) -> (SigningKey, TrustedKey) {
        let (s, p) = (dir.join("k.key"), dir.join("k.pub"));
        generate(&s, &p, pass.map(str::to_string)).unwrap();
        let key = SigningKey::load(
            &s,
            || {
                pass.map(str::to_string)
                    .ok_or(KeyError::Generate("no".into()))
            },
            &|w| panic!("{w}"),
        )
        .unwrap();
        (key, TrustedKey::load(&p).unwrap())
    }

    #[test]
    fn a_signature_verifies_with_its_key_only_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = pair(dir.path(), None);
        assert_eq!(key.id(), public.id());
        let sig = key.sign(b"data", "extpy test");
        assert_eq!(sig, key.sign(b"data", "extpy test"), "deterministic");
        let signer = verify(&sig, b"data", std::slice::from_ref(&public)).unwrap();
        assert_eq!(signer.key_id, key.id());
        assert_eq!(signer.trusted_comment, "extpy test");
        assert_eq!(
            verify(&sig, b"datA", std::slice::from_ref(&public)),
            Err(SigProblem::Mismatch { key: key.id() })
        );
        let edited = sig.replace("extpy test", "extpy tesT");
        assert_eq!(
            verify(&edited, b"data", std::slice::from_ref(&public)),
            Err(SigProblem::Mismatch { key: key.id() }),
            "the trusted comment is signed too"
        );
        let other = tempfile::tempdir().unwrap();
        let (_, stranger) = pair(other.path(), None);
        assert_eq!(
            verify(&sig, b"data", &[stranger]),
            Err(SigProblem::UntrustedKey { found: key.id() })
        );
        assert!(matches!(
            verify(&sig[..sig.len() / 2], b"data", &[public]),
            Err(SigProblem::Unreadable(_))
        ));
        assert_eq!(signed_by(&sig), Some(key.id()));
    }

    #[cfg(unix)]
    #[test]
    fn the_secret_key_is_private_and_a_readable_one_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (s, p) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        generate(&s, &p, None).unwrap();
        let mode = std::fs::metadata(&s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(exposed(&s), None);
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = exposed(&s).unwrap();
        assert!(w.contains("mode 0644") && w.contains("chmod 600"), "{w}");
        assert!(matches!(
            generate(&s, &dir.path().join("x.pub"), None),
            Err(KeyError::Exists { .. })
        ));
    }

    #[test]
    fn an_unencrypted_key_whose_halves_disagree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (s, p) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        generate(&s, &p, None).unwrap();
        let text = std::fs::read_to_string(&s).unwrap();
        let mut raw = STANDARD.decode(key_line(&text).unwrap()).unwrap();
        raw[SK_SEED] ^= 1;
        let edited = format!("untrusted comment: edited\n{}\n", STANDARD.encode(&raw));
        std::fs::write(&s, edited).unwrap();
        let err = SigningKey::load(&s, || unreachable!("not encrypted"), &|_| {}).unwrap_err();
        assert!(
            err.to_string().contains("its ed25519 key is inconsistent"),
            "{err}"
        );
        assert_eq!(err.exit_code(), ExitCode::Input);
    }

    #[test]
    fn a_text_key_is_the_pub_files_key_line() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = pair(dir.path(), None);
        let text = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
        let line = key_line(&text).unwrap();
        assert!(line.starts_with("RW"), "{line}");
        let parsed = TrustedKey::parse(line, "manifest.yaml: trusted_keys[0]").unwrap();
        assert_eq!(parsed.id(), public.id());
        let err = TrustedKey::parse("RWnope", "m.yaml: trusted_keys[1]").unwrap_err();
        assert!(
            err.to_string().starts_with("m.yaml: trusted_keys[1]: "),
            "{err}"
        );
    }
}

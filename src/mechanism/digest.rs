//! SHA-256 digests: the checked `Sha256Digest` newtype and the one streaming hash loop.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use sha2::{Digest, Sha256};

/// A SHA-256 digest; exists only if it was 64 hex digits (shown lowercase).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

/// Why a string is not a SHA-256 digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestParseError {
    #[error("a sha256 must be 64 hexadecimal digits, found {0} characters")]
    Length(usize),
    #[error("a sha256 must be hexadecimal, found {0:?}")]
    NotHex(char),
}

impl Sha256Digest {
    /// The digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as `sha256sum` prints it.
    pub fn to_hex(self) -> String {
        self.to_string()
    }

    /// The first 12 hex digits, for human lines.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_string()
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestParseError;

    /// Accepts upper or lower case (Windows' `Get-FileHash` prints upper case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(DigestParseError::NotHex(c));
        }
        if s.len() != 64 {
            return Err(DigestParseError::Length(s.chars().count()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).unwrap_or(0);
            let lo = (pair[1] as char).to_digit(16).unwrap_or(0);
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(crate::base::parse::ParseVisitor::new(
            "a sha256 of 64 hexadecimal digits",
        ))
    }
}

/// A running SHA-256 with a byte count: the one hash loop everything uses.
#[derive(Clone, Default)]
pub(crate) struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The digest and the byte count.
    pub(crate) fn finish(self) -> (Sha256Digest, u64) {
        (Sha256Digest(self.inner.finalize().into()), self.len)
    }

    /// Reads `reader` to its end, feeding every byte; returns the bytes read.
    pub(crate) fn consume<R: Read>(&mut self, mut reader: R) -> io::Result<u64> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.update(&buf[..n]);
            total += n as u64;
        }
    }
}

/// A writer that hashes what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// The writer back, with the digest and size of everything written.
    pub(crate) fn finish(self) -> (W, Sha256Digest, u64) {
        let (digest, len) = self.hasher.finish();
        (self.inner, digest, len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The digest and size of a file, read once.
pub(crate) fn hash_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Hasher::new();
    hasher.consume(File::open(path)?)?;
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lowercase() {
        let upper = "4ACBED6DD1C744B0376E3B1CF57CE906F9DC9E95E68824584C8099A63025A3C3";
        let d: Sha256Digest = upper.parse().unwrap();
        assert_eq!(d.to_string(), upper.to_lowercase());
        assert_eq!(d.short(), "4acbed6dd1c7");
    }

    #[test]
    fn rejects_bad_length_and_non_hex() {
        assert_eq!(
            "abc".parse::<Sha256Digest>(),
            Err(DigestParseError::Length(3))
        );
        let bad = format!("{}g", "a".repeat(63));
        assert_eq!(
            bad.parse::<Sha256Digest>(),
            Err(DigestParseError::NotHex('g'))
        );
    }

    #[test]
    fn digest_of_known_input() {
        assert_eq!(
            Sha256Digest::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new();
        h.consume(&b"abc"[..]).unwrap();
        assert_eq!(h.finish(), (Sha256Digest::of(b"abc"), 3));
    }
}

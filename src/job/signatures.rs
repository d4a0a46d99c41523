//! `extpy verify --signatures`: the answer to Windows Defender Application Control and
//! AppLocker. Every PE file of a tree (`.exe`, `.dll`, `.pyd`) with its flat sha256, its
//! Authenticode sha256 (the PE's hash with the checksum field, the certificate table's data
//! directory entry and the certificate table left out: the hash AppLocker's FileHashRule and
//! WDAC's hash rules hold), and whether it carries an Authenticode signature (a PKCS#7
//! SignedData entry in its certificate table; the signature itself is checked by Windows,
//! not here). For the unsigned ones, an AppLocker policy of FileHashRules that
//! `Set-AppLockerPolicy -XmlPolicy FILE -Merge` imports.
//!
//! The PE is parsed by goblin; before goblin's Authenticode ranges are hashed, every range it
//! will slice is checked against the file here, so a truncated or lying header is an error
//! naming the file, never a panic.

use std::path::{Path, PathBuf};

use goblin::pe::PE;
use goblin::pe::certificate_table::AttributeCertificateType;
use serde::Serialize;
use sha1::Digest as _;

use crate::base::exit::ExitCode;
use crate::mechanism::digest::{Hasher, Sha256Digest};
use crate::mechanism::fsio::IoError;

/// The extensions listed (compared without case).
const PE_EXTENSIONS: [&str; 3] = ["exe", "dll", "pyd"];

/// The largest PE file read (CPython's largest DLL is a few MiB).
const MAX_PE: u64 = 512 << 20;

/// Why the listing could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Reading the tree failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl SignatureError {
    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            SignatureError::Io(e) => e.exit_code(),
        }
    }
}

/// Whether a PE carries an Authenticode signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signature {
    /// Its certificate table holds a PKCS#7 SignedData entry (not verified here).
    Signed,
    /// It has no certificate table (or one without a PKCS#7 SignedData entry).
    Unsigned,
    /// Its headers could not be read (see `error`).
    Malformed,
}

/// One PE file of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct PeFile {
    /// Relative to the tree, `/`-separated (as in the seal).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of its bytes (what `Get-FileHash` shows).
    pub sha256: Sha256Digest,
    /// The Authenticode sha256 (what AppLocker and WDAC hash rules hold); none when malformed.
    pub authenticode_sha256: Option<Sha256Digest>,
    /// Signed, unsigned or malformed.
    pub signature: Signature,
    /// Why it could not be read as a PE, when it could not.
    pub error: Option<String>,
}

/// What the headers of a PE say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeInfo {
    /// The Authenticode sha256.
    pub authenticode_sha256: Sha256Digest,
    /// True when the certificate table holds a PKCS#7 SignedData entry.
    pub signed: bool,
}

/// Reads the headers of one PE and computes its Authenticode hash.
pub(crate) fn inspect(bytes: &[u8]) -> Result<PeInfo, String> {
    let mut options = goblin::pe::options::ParseOptions::default();
    options.parse_tls_data = false;
    let pe = PE::parse_with_opts(bytes, &options).map_err(|e| format!("not a valid PE: {e}"))?;
    check_ranges(&pe, bytes)?;
    let mut hasher = Hasher::new();
    for range in pe.authenticode_ranges() {
        hasher.update(range);
    }
    let signed = pe
        .certificates
        .iter()
        .any(|c| c.certificate_type == AttributeCertificateType::PkcsSignedData);
    Ok(PeInfo {
        authenticode_sha256: hasher.finish().0,
        signed,
    })
}

/// Every range [`PE::authenticode_ranges`] slices lies inside the file, in order, so that
/// hashing cannot panic (goblin slices without checking).
fn check_ranges(pe: &PE, bytes: &[u8]) -> Result<(), String> {
    let len = bytes.len();
    let optional = pe
        .header
        .optional_header
        .as_ref()
        .ok_or("it has no optional header (an object file, not a program or DLL)")?;
    let header_at = (pe.header.dos_header.pe_pointer as usize)
        .checked_add(4 + 20)
        .ok_or("its PE header offset is out of range")?;
    // The certificate table's entry is the fifth data directory (as goblin places it).
    let (entry_at, directories_needed) = match optional.standard_fields.magic {
        goblin::pe::optional_header::MAGIC_32 => (128, 96 + 5 * 8),
        _ => (144, 112 + 5 * 8),
    };
    if (pe.header.coff_header.size_of_optional_header as usize) < directories_needed {
        return Err(format!(
            "its optional header ({} bytes) is too short to hold a certificate table entry",
            pe.header.coff_header.size_of_optional_header
        ));
    }
    let entry_end = header_at + entry_at + 8;
    let headers = optional.windows_fields.size_of_headers as usize;
    if headers < entry_end || headers > len {
        return Err(format!(
            "its SizeOfHeaders ({headers}) does not fit the file ({len} bytes, headers at least {entry_end})"
        ));
    }
    let mut hashed = headers;
    for s in pe.sections.iter().filter(|s| s.size_of_raw_data != 0) {
        let end = (s.pointer_to_raw_data as usize).checked_add(s.size_of_raw_data as usize);
        if end.is_none_or(|end| end > len) {
            return Err(format!(
                "its section {} says it ends past the end of the file ({} + {} > {len} bytes): the file is truncated",
                String::from_utf8_lossy(&s.name).trim_end_matches('\0'),
                s.pointer_to_raw_data,
                s.size_of_raw_data
            ));
        }
        hashed = hashed.saturating_add(s.size_of_raw_data as usize);
    }
    let table = optional
        .data_directories
        .get_certificate_table()
        .map_or(0, |t| t.size as usize);
    if len > hashed && table > len - hashed {
        return Err(format!(
            "its certificate table ({table} bytes) is larger than what follows its sections"
        ));
    }
    Ok(())
}

/// True for a name whose extension is `.exe`, `.dll` or `.pyd` (any case).
fn is_pe_name(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| PE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// Every PE file under `dir` (links are not followed), sorted by path.
pub(crate) fn list(dir: &Path, jobs: usize) -> Result<Vec<PeFile>, SignatureError> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            IoError::new(
                path,
                "cannot list the folder",
                e.into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("a link loop")),
            )
        })?;
        if !entry.file_type().is_file() || !is_pe_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push((rel, entry.path().to_path_buf()));
    }
    found.sort();
    crate::parallel(
        jobs,
        &found,
        |(rel, path)| -> Result<PeFile, SignatureError> {
            let bytes = crate::mechanism::limits::read_regular(path, MAX_PE)
                .map_err(|e| IoError::new(path.clone(), "cannot read the file", e))?;
            let sha256 = Sha256Digest::of(&bytes);
            let size = bytes.len() as u64;
            Ok(match inspect(&bytes) {
                Ok(info) => PeFile {
                    path: rel.clone(),
                    size,
                    sha256,
                    authenticode_sha256: Some(info.authenticode_sha256),
                    signature: if info.signed {
                        Signature::Signed
                    } else {
                        Signature::Unsigned
                    },
                    error: None,
                },
                Err(why) => PeFile {
                    path: rel.clone(),
                    size,
                    sha256,
                    authenticode_sha256: None,
                    signature: Signature::Malformed,
                    error: Some(why),
                },
            })
        },
    )
    .into_iter()
    .collect()
}

/// One line per file, then a count.
pub(crate) fn render(files: &[PeFile]) -> String {
    let mut out = String::new();
    for f in files {
        let (tag, hash) = match (f.signature, f.authenticode_sha256) {
            (Signature::Signed, Some(a)) => ("signed  ", a.to_hex()),
            (Signature::Unsigned, Some(a)) => ("UNSIGNED", a.to_hex()),
            _ => ("MALFORMED", "-".repeat(64)),
        };
        out.push_str(&format!(
            "{tag} {hash}  {}  (file sha256 {})\n",
            f.path,
            f.sha256.short()
        ));
        if let Some(e) = &f.error {
            out.push_str(&format!("  {e}\n"));
        }
    }
    let count = |s: Signature| files.iter().filter(|f| f.signature == s).count();
    out.push_str(&format!(
        "{}: {} signed, {} unsigned, {} malformed (the first hash is the Authenticode sha256 that AppLocker and WDAC hash rules use)\n",
        crate::base::report::plural(files.len(), "PE file"),
        count(Signature::Signed),
        count(Signature::Unsigned),
        count(Signature::Malformed)
    ));
    out
}

/// An XML attribute value.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The namespace of the rule ids (a version 5 UUID: the same file gives the same rule id,
/// so a policy merged twice holds each rule once).
const RULE_NAMESPACE: [u8; 16] = [
    0x6b, 0x1e, 0x4f, 0x0c, 0x93, 0x2a, 0x4d, 0x57, 0x8e, 0x41, 0x0e, 0x78, 0x70, 0x79, 0x5f, 0x31,
];

/// An RFC 4122 version 5 UUID of `name` in [`RULE_NAMESPACE`].
fn rule_id(name: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(RULE_NAMESPACE);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The AppLocker policy that allows every unsigned PE of `files` by its Authenticode hash,
/// for everyone (S-1-1-0): `.exe` in the Exe collection, `.dll` and `.pyd` in the Dll
/// collection. The enforcement mode is NotConfigured, so a merge keeps the machine's own.
pub(crate) fn applocker_policy(files: &[PeFile], label: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n");
    out.push_str(&format!(
        "<!-- Written by extpy verify --signatures for {}: an allow rule for each unsigned PE file, by its Authenticode SHA256. Import: Set-AppLockerPolicy -XmlPolicy THIS_FILE -Merge -->\r\n",
        xml(label).replace("--", "- -")
    ));
    out.push_str("<AppLockerPolicy Version=\"1\">\r\n");
    for (collection, is_exe) in [("Exe", true), ("Dll", false)] {
        let rules: Vec<(&PeFile, Sha256Digest)> = files
            .iter()
            .filter(|f| f.signature == Signature::Unsigned)
            .filter(|f| f.path.to_ascii_lowercase().ends_with(".exe") == is_exe)
            .filter_map(|f| f.authenticode_sha256.map(|a| (f, a)))
            .collect();
        if rules.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  <RuleCollection Type=\"{collection}\" EnforcementMode=\"NotConfigured\">\r\n"
        ));
        for (f, hash) in rules {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            out.push_str(&format!(
                "    <FileHashRule Id=\"{}\" Name=\"{}\" Description=\"{}\" UserOrGroupSid=\"S-1-1-0\" Action=\"Allow\">\r\n      <Conditions>\r\n        <FileHashCondition>\r\n          <FileHash Type=\"SHA256\" Data=\"0x{}\" SourceFileName=\"{}\" SourceFileLength=\"{}\" />\r\n        </FileHashCondition>\r\n      </Conditions>\r\n    </FileHashRule>\r\n",
                rule_id(&format!("{collection}:{hash}")),
                xml(&format!("extpy: {name}")),
                xml(&format!("{} of {label}", f.path)),
                hash.to_hex().to_ascii_uppercase(),
                xml(name),
                f.size
            ));
        }
        out.push_str("  </RuleCollection>\r\n");
    }
    out.push_str("</AppLockerPolicy>\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use support::pe_image as pe;

    /// The Authenticode sha256 computed by hand for [`pe`]: the bytes before the checksum,
    /// between the checksum and the certificate table entry, after it to the end of the
    /// section (the certificate table is the file's tail and is left out).
    fn by_hand(b: &[u8]) -> Sha256Digest {
        let opt = 0x80 + 24;
        let mut h = Hasher::new();
        h.update(&b[..opt + 64]);
        h.update(&b[opt + 68..opt + 144]);
        h.update(&b[opt + 152..0x400]);
        h.finish().0
    }

    #[test]
    fn the_authenticode_hash_leaves_out_checksum_entry_and_certificate_table() {
        let unsigned = pe(None, 0);
        let info = inspect(&unsigned).unwrap();
        assert!(!info.signed);
        assert_eq!(info.authenticode_sha256, by_hand(&unsigned));
        assert_ne!(info.authenticode_sha256, Sha256Digest::of(&unsigned));

        // Signing changes the checksum, the entry and appends the table: the same hash.
        let signed = pe(Some(2), 0x1234_5678);
        let info = inspect(&signed).unwrap();
        assert!(info.signed);
        assert_eq!(info.authenticode_sha256, by_hand(&unsigned));

        // A certificate table with an X.509 entry only is not an Authenticode signature.
        assert!(!inspect(&pe(Some(1), 0)).unwrap().signed);

        // A changed byte of code changes it.
        let mut changed = unsigned.clone();
        changed[0x300] ^= 1;
        assert_ne!(
            inspect(&changed).unwrap().authenticode_sha256,
            by_hand(&unsigned)
        );
    }

    #[test]
    fn truncated_and_lying_headers_are_errors_not_panics() {
        let good = pe(Some(2), 0);
        for cut in [
            0,
            1,
            2,
            0x40,
            0x84,
            0x100,
            0x1ff,
            0x200,
            0x3ff,
            0x401,
            good.len() - 1,
        ] {
            let e = inspect(&good[..cut]).unwrap_err();
            assert!(!e.is_empty(), "cut at {cut}");
        }
        let e = inspect(&pe(None, 0)[..0x300]).unwrap_err();
        assert!(
            e.contains("truncated") || e.contains("not a valid PE"),
            "{e}"
        );
        let mut b = pe(None, 0);
        b[0x80 + 24 + 60..0x80 + 24 + 64].copy_from_slice(&0x10_0000u32.to_le_bytes());
        let e = inspect(&b).unwrap_err();
        assert!(e.contains("SizeOfHeaders"), "{e}");
        assert!(inspect(b"MZ").is_err());
        assert!(inspect(b"not a program at all").is_err());
    }

    #[test]
    fn every_single_byte_change_of_the_headers_parses_or_fails_cleanly() {
        let good = pe(Some(2), 0);
        for at in 0..0x200 {
            for v in [0x00, 0xff, 0x7f] {
                let mut b = good.clone();
                b[at] = v;
                let _ = inspect(&b);
            }
        }
    }

    #[test]
    fn the_applocker_policy_allows_each_unsigned_file_by_its_authenticode_hash() {
        let h = |c: u8| Sha256Digest::of(&[c]);
        let file = |path: &str, signature, hash: Option<Sha256Digest>| PeFile {
            path: path.into(),
            size: 1024,
            sha256: h(9),
            authenticode_sha256: hash,
            signature,
            error: None,
        };
        let files = [
            file("python.exe", Signature::Unsigned, Some(h(1))),
            file(
                "Lib/site-packages/x/_rust.pyd",
                Signature::Unsigned,
                Some(h(2)),
            ),
            file("vcruntime140.dll", Signature::Signed, Some(h(3))),
            file("bad.dll", Signature::Malformed, None),
        ];
        let xml = applocker_policy(&files, "CPython 3.12 <test> & co");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"));
        assert!(xml.contains("CPython 3.12 &lt;test&gt; &amp; co"));
        assert_eq!(xml.matches("<FileHashRule ").count(), 2);
        assert!(xml.contains(&format!(
            "<FileHash Type=\"SHA256\" Data=\"0x{}\" SourceFileName=\"python.exe\" SourceFileLength=\"1024\" />",
            h(1).to_hex().to_ascii_uppercase()
        )));
        let exe = xml.find("Type=\"Exe\"").unwrap();
        let dll = xml.find("Type=\"Dll\"").unwrap();
        let pyd = xml.find("SourceFileName=\"_rust.pyd\"").unwrap();
        assert!(exe < dll && dll < pyd, "{xml}");
        assert!(
            !xml.contains("vcruntime140") && !xml.contains("bad.dll"),
            "{xml}"
        );
        // Stable ids: the same policy twice is the same text.
        assert_eq!(xml, applocker_policy(&files, "CPython 3.12 <test> & co"));
        let id = rule_id("Exe:x");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "5");
        assert!("89ab".contains(&id[19..20]), "{id}");
    }

    #[test]
    fn pe_names_are_exe_dll_and_pyd_in_any_case() {
        assert!(is_pe_name("python.exe") && is_pe_name("X.DLL") && is_pe_name("_ssl.pyd"));
        assert!(!is_pe_name("python") && !is_pe_name("x.py") && !is_pe_name("exe"));
    }
}

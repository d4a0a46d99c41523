//! Artifacts built by code: a synthetic embeddable CPython zip and wheels with a correct
//! (or deliberately wrong) RECORD.

use std::io::Write;

use crate::sha256_hex;
use base64::Engine;
use zip::write::SimpleFileOptions;

/// The `._pth` python.org ships in the 3.12 embeddable zip (CRLF line ends).
pub const PTH_312: &str =
    "python312.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n";

/// A zip from `(name, bytes)` entries, deflated, in the given order.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).expect("start");
        w.write_all(data).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// A synthetic embeddable CPython for `version` (3.x.y).
pub fn embeddable(version: &str) -> Vec<u8> {
    let mut parts = version.split('.');
    let (maj, min) = (parts.next().unwrap(), parts.next().unwrap());
    let short = format!("{maj}{min}");
    let pth = PTH_312.replace("312", &short);
    let stdlib = zip_of(&[("os.pyc", b"fake os"), ("site.pyc", b"fake site")]);
    let files: Vec<(String, Vec<u8>)> = vec![
        ("python.exe".into(), b"MZ fake python.exe".to_vec()),
        ("pythonw.exe".into(), b"MZ fake pythonw.exe".to_vec()),
        (format!("python{short}.dll"), b"MZ fake dll".to_vec()),
        ("python3.dll".into(), b"MZ fake python3.dll".to_vec()),
        (format!("python{short}.zip"), stdlib),
        (format!("python{short}._pth"), pth.into_bytes()),
        ("_socket.pyd".into(), b"MZ fake _socket".to_vec()),
        ("vcruntime140.dll".into(), b"MZ fake vcruntime".to_vec()),
        (
            "LICENSE.txt".into(),
            b"A. HISTORY OF THE SOFTWARE\n".to_vec(),
        ),
    ];
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    zip_of(&refs)
}

/// RECORD's hash format: `sha256=<urlsafe base64, no padding>`.
pub fn record_hash(data: &[u8]) -> String {
    use sha2::Digest;
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data))
    )
}

/// What to put in a wheel.
#[derive(Clone)]
pub struct WheelSpec {
    pub name: String,
    pub version: String,
    pub tag: String,
    pub purelib: bool,
    pub files: Vec<(String, Vec<u8>)>,
    /// Lines appended to RECORD as-is (to break it on purpose).
    pub record_extra: Vec<String>,
    /// Files left out of RECORD.
    pub record_skip: Vec<String>,
    /// Files whose RECORD hash is wrong.
    pub record_lie: Vec<String>,
    /// `Requires-Dist` lines of its METADATA.
    pub requires: Vec<String>,
    /// METADATA's `Name` when it should differ from `name` (to lie on purpose).
    pub metadata_name: Option<String>,
    /// Further METADATA header lines (`License-Expression: MIT`, folded lines too).
    pub metadata_extra: Vec<String>,
}

impl WheelSpec {
    /// A pure-Python wheel with one module.
    pub fn pure(name: &str, version: &str) -> Self {
        let module = name.to_lowercase().replace('-', "_");
        Self {
            name: name.to_string(),
            version: version.to_string(),
            tag: "py3-none-any".into(),
            purelib: true,
            files: vec![
                (
                    format!("{module}/__init__.py"),
                    format!("__version__ = {version:?}\n").into_bytes(),
                ),
                (
                    format!("{module}/core.py"),
                    format!("def hello():\n    return {name:?}\n").into_bytes(),
                ),
            ],
            record_extra: vec![],
            record_skip: vec![],
            record_lie: vec![],
            requires: vec![],
            metadata_name: None,
            metadata_extra: vec![],
        }
    }

    /// The wheel's file name.
    pub fn filename(&self) -> String {
        format!(
            "{}-{}-{}.whl",
            self.name.replace('-', "_"),
            self.version,
            self.tag
        )
    }

    /// The dist-info folder name.
    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.name.replace('-', "_"), self.version)
    }

    /// Builds the wheel bytes.
    pub fn build(&self) -> Vec<u8> {
        let di = self.dist_info();
        let mut files = self.files.clone();
        let requires: String = self
            .metadata_extra
            .iter()
            .map(|l| format!("{l}\n"))
            .chain(
                self.requires
                    .iter()
                    .map(|r| format!("Requires-Dist: {r}\n")),
            )
            .collect();
        files.push((
            format!("{di}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{requires}",
                self.metadata_name.as_deref().unwrap_or(&self.name),
                self.version
            )
            .into_bytes(),
        ));
        files.push((
            format!("{di}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: extpy-tests\nRoot-Is-Purelib: {}\nTag: {}\n",
                self.purelib, self.tag
            )
            .into_bytes(),
        ));
        let mut record = String::new();
        for (path, data) in &files {
            if self.record_skip.contains(path) {
                continue;
            }
            let hash = if self.record_lie.contains(path) {
                record_hash(b"something else")
            } else {
                record_hash(data)
            };
            record.push_str(&format!("{path},{hash},{}\n", data.len()));
        }
        for extra in &self.record_extra {
            record.push_str(extra);
            record.push('\n');
        }
        record.push_str(&format!("{di}/RECORD,,\n"));
        files.push((format!("{di}/RECORD"), record.into_bytes()));
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        zip_of(&refs)
    }
}

/// Manifest text pinning `embed` and `wheels` (file name, bytes) for CPython `version`.
pub fn manifest_text(version: &str, embed: &[u8], wheels: &[(String, Vec<u8>)]) -> String {
    let mut s = format!(
        "schema: 1\nname: test-dist\npython:\n  version: {version}\n  platform: win_amd64\nembeddable:\n  file: python-{version}-embed-amd64.zip\n  sha256: {}\nwheels:\n",
        sha256_hex(embed)
    );
    for (file, bytes) in wheels {
        s.push_str(&format!(
            "  - file: {file}\n    sha256: {}\n",
            sha256_hex(bytes)
        ));
    }
    s
}

/// An entry for [`raw_zip`].
pub struct RawEntry<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
    /// Unix mode to record (e.g. `0o120777` for a symlink).
    pub mode: Option<u32>,
}

/// A stored (uncompressed) zip written byte by byte, so tests can make archives no zip
/// library would: duplicate names, symlinks, any name at all.
pub fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let crc = crc32(e.data);
        let name = e.name.as_bytes();
        let size = e.data.len() as u32;
        let mut local = Vec::new();
        local.extend_from_slice(&0x04034b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes()); // flags
        local.extend_from_slice(&0u16.to_le_bytes()); // stored
        local.extend_from_slice(&0u16.to_le_bytes()); // time
        local.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes());
        local.extend_from_slice(name);
        out.extend_from_slice(&local);
        out.extend_from_slice(e.data);

        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by unix
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
        let mode = e.mode.unwrap_or(0o100644);
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// CRC-32 (IEEE), bit by bit: small inputs only.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A wheel whose archive is exactly `entries` plus a valid dist-info (RECORD covers
/// every entry), written raw so hostile names survive.
pub fn raw_wheel(name: &str, version: &str, entries: &[RawEntry]) -> (String, Vec<u8>) {
    let di = format!("{name}-{version}.dist-info");
    let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    let wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_string();
    let mut record = String::new();
    for e in entries {
        record.push_str(&format!(
            "{},{},{}\n",
            e.name,
            record_hash(e.data),
            e.data.len()
        ));
    }
    record.push_str(&format!(
        "{di}/METADATA,{},{}\n",
        record_hash(metadata.as_bytes()),
        metadata.len()
    ));
    record.push_str(&format!(
        "{di}/WHEEL,{},{}\n",
        record_hash(wheel.as_bytes()),
        wheel.len()
    ));
    record.push_str(&format!("{di}/RECORD,,\n"));
    let (m, w, r) = (
        format!("{di}/METADATA"),
        format!("{di}/WHEEL"),
        format!("{di}/RECORD"),
    );
    let mut all: Vec<RawEntry> = entries
        .iter()
        .map(|e| RawEntry {
            name: e.name,
            data: e.data,
            mode: e.mode,
        })
        .collect();
    all.push(RawEntry {
        name: &m,
        data: metadata.as_bytes(),
        mode: None,
    });
    all.push(RawEntry {
        name: &w,
        data: wheel.as_bytes(),
        mode: None,
    });
    all.push(RawEntry {
        name: &r,
        data: record.as_bytes(),
        mode: None,
    });
    (format!("{name}-{version}-py3-none-any.whl"), raw_zip(&all))
}

/// Pseudo-random bytes that do not compress (a disk that really fills up, a download that
/// really takes many packets).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A file with the headers of a Windows x86-64 program (PE32+), followed by `body`: what
/// `bundle create --include-exe` accepts, without building a real extpy.exe.
pub fn windows_exe(body: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 0x200];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes());
    b[0x56..0x58].copy_from_slice(&0x22u16.to_le_bytes());
    b[0x58..0x5a].copy_from_slice(&0x20bu16.to_le_bytes());
    b.extend_from_slice(body);
    b
}

/// Large artifacts: a 3 MiB embeddable, and a 2 MiB wheel beside a small one.
pub fn large_set() -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let wheels = vec![
        ("big-1.0-py3-none-any.whl".to_string(), noise(2 << 20, 11)),
        (
            WheelSpec::pure("alpha", "1.0").filename(),
            WheelSpec::pure("alpha", "1.0").build(),
        ),
    ];
    (noise(3 << 20, 5), wheels)
}

/// A small PE32+ DLL, as Windows tools read it: headers (0x200 bytes), one `.text` section
/// of 0x200 bytes, and, when `certificate` is given, a certificate table after it holding
/// one WIN_CERTIFICATE of that type (2: PKCS#7 SignedData; its blob is a stand-in). The
/// checksum field is `checksum`.
pub fn pe_image(certificate: Option<u16>, checksum: u32) -> Vec<u8> {
    let mut b = vec![0u8; 0x400];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    let pe = 0x80;
    b[pe..pe + 4].copy_from_slice(b"PE\0\0");
    let coff = pe + 4;
    b[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    b[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes()); // one section
    b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes()); // optional header size
    b[coff + 18..coff + 20].copy_from_slice(&0x2022u16.to_le_bytes()); // DLL, executable
    let opt = coff + 20;
    b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    b[opt + 24..opt + 32].copy_from_slice(&0x1_8000_0000u64.to_le_bytes()); // image base
    b[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes()); // section alignment
    b[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes()); // file alignment
    b[opt + 48..opt + 50].copy_from_slice(&6u16.to_le_bytes()); // subsystem version
    b[opt + 56..opt + 60].copy_from_slice(&0x2000u32.to_le_bytes()); // size of image
    b[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes()); // size of headers
    b[opt + 64..opt + 68].copy_from_slice(&checksum.to_le_bytes());
    b[opt + 68..opt + 70].copy_from_slice(&3u16.to_le_bytes()); // console
    b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes()); // data directories
    let section = opt + 240;
    b[section..section + 5].copy_from_slice(b".text");
    b[section + 8..section + 12].copy_from_slice(&0x200u32.to_le_bytes());
    b[section + 12..section + 16].copy_from_slice(&0x1000u32.to_le_bytes());
    b[section + 16..section + 20].copy_from_slice(&0x200u32.to_le_bytes());
    b[section + 20..section + 24].copy_from_slice(&0x200u32.to_le_bytes());
    b[section + 36..section + 40].copy_from_slice(&0x6000_0020u32.to_le_bytes());
    for (i, x) in b[0x200..0x400].iter_mut().enumerate() {
        *x = (i % 251) as u8;
    }
    if let Some(kind) = certificate {
        let blob = b"0\x82 a stand-in for a PKCS#7 SignedData blob";
        let length = 8 + blob.len();
        let padded = length.div_ceil(8) * 8;
        let at = b.len();
        b.extend_from_slice(&(length as u32).to_le_bytes());
        b.extend_from_slice(&0x0200u16.to_le_bytes());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(blob);
        b.resize(at + padded, 0);
        let entry = opt + 144;
        b[entry..entry + 4].copy_from_slice(&(at as u32).to_le_bytes());
        b[entry + 4..entry + 8].copy_from_slice(&(padded as u32).to_le_bytes());
    }
    b
}

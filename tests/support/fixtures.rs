//! Artifacts built by code: a synthetic embeddable CPython zip and wheels with a correct
//! (or deliberately wrong) RECORD.

use std::io::Write;

use base64::Engine;
use extpy::digest::Sha256Digest;
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
    let d = Sha256Digest::of(data);
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_bytes())
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
        files.push((
            format!("{di}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
                self.name, self.version
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
        Sha256Digest::of(embed)
    );
    for (file, bytes) in wheels {
        s.push_str(&format!(
            "  - file: {file}\n    sha256: {}\n",
            Sha256Digest::of(bytes)
        ));
    }
    s
}

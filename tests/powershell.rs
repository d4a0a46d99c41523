//! scripts/get-py.ps1 as Windows PowerShell 5.1 reads it: parsed by the PowerShell grammar of
//! tree-sitter-powershell (scripts/check-ps1.py, run by the venv that scripts/test.sh fills
//! from scripts/test-requirements.txt), and ASCII or UTF-8 with a BOM.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// scripts/check-ps1.py on `file`, by the test venv's Python.
fn check(file: &Path) -> Output {
    let python = root().join("target/test-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test.sh, which installs tree-sitter-powershell there",
        python.display()
    );
    Command::new(python)
        .arg(root().join("scripts/check-ps1.py"))
        .arg(file)
        .output()
        .expect("run check-ps1.py")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn script() -> Vec<u8> {
    std::fs::read(root().join("scripts/get-py.ps1")).expect("read get-py.ps1")
}

/// A copy of get-py.ps1 with `bytes`, in a temporary folder.
fn copy(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
#[ignore = "needs tree-sitter-powershell in target/test-venv; scripts/test.sh installs it and runs this"]
fn get_py_ps1_parses_with_the_powershell_grammar_and_is_ascii_or_has_a_bom() {
    let o = check(&root().join("scripts/get-py.ps1"));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
#[ignore = "needs tree-sitter-powershell in target/test-venv; scripts/test.sh installs it and runs this"]
fn the_check_fails_on_a_syntax_error_and_names_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let good = String::from_utf8(script()).unwrap();
    let line = "if ($rest.Count -ge 2 -and $rest[0] -eq '-Destination') {";
    assert!(
        good.contains(line),
        "get-py.ps1 changed: pick another line to break"
    );
    let at = good.lines().position(|l| l == line).unwrap() + 1;
    // An operator without its left operand: the grammar stops at the second `-and`.
    let bad_line = line.replacen("-and", "-and -and", 1);
    let column = line.find("-and").unwrap() + 1 + "-and ".len();
    let broken = good.replacen(line, &bad_line, 1);
    let file = copy(dir.path(), "broken.ps1", broken.as_bytes());
    let o = check(&file);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "broken.ps1:{at}:{column}: syntax error near '-and'"
        )),
        "{}",
        text(&o)
    );
}

#[test]
#[ignore = "needs tree-sitter-powershell in target/test-venv; scripts/test.sh installs it and runs this"]
fn the_check_fails_on_non_ascii_without_a_bom_and_accepts_it_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = script();
    bytes.extend("# Destination fuer die VU\n# Größe\n".as_bytes());
    let lines = bytes.iter().filter(|b| **b == b'\n').count();
    let file = copy(dir.path(), "no-bom.ps1", &bytes);
    let o = check(&file);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("no-bom.ps1:{lines}:5: byte 0xC3 is not ASCII")),
        "{}",
        text(&o)
    );
    let with_bom = copy(
        dir.path(),
        "bom.ps1",
        &[b"\xef\xbb\xbf", &bytes[..]].concat(),
    );
    let o = check(&with_bom);
    assert!(o.status.success(), "{}", text(&o));
}

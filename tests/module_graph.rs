//! scripts/module-graph.py, the gate `.ci/run` starts with: src/ as it is passes, and small
//! trees with each kind of fault (a file cycle inside a folder, a module cycle, a use of a
//! layer listed later in lib.rs) fail, naming the files.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn graph(src: &Path) -> Output {
    Command::new("python3")
        .arg(root().join("scripts/module-graph.py"))
        .arg(src)
        .output()
        .expect("run python3 scripts/module-graph.py")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const LIB: &str =
    "//! - `base`: below all.\n//! - `job`: uses `base`.\npub mod base;\npub mod job;\n";

/// A source tree of `files` (path, text), with a two-layer lib.rs.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("lib.rs", LIB)];
    all.extend_from_slice(files);
    for (path, text) in all {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn the_source_tree_has_no_cycle_and_keeps_its_layers() {
    let o = graph(&root().join("src"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("job::fetch ")), "{out}");
}

#[test]
fn a_folder_whose_mod_rs_and_child_use_each_other_fails_naming_both_files() {
    let dir = tree(&[
        ("base/mod.rs", "pub mod exit;\n"),
        ("base/exit.rs", "pub struct Code;\n"),
        ("job/mod.rs", "pub mod lock;\npub use lock::Lock;\n"),
        (
            "job/lock/mod.rs",
            "mod index;\npub struct Lock;\npub fn run() { index::read(); }\n",
        ),
        (
            "job/lock/index.rs",
            "use super::Lock;\npub fn read() -> Option<Lock> { None }\n",
        ),
    ]);
    let o = graph(dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("import cycle between the files job::lock, job::lock::index"),
        "{err}"
    );
    // The folder as one module has no cycle with anything: only the file check sees it.
    assert!(!err.contains("between the modules"), "{err}");
}

#[test]
fn a_test_module_using_its_own_file_is_no_cycle_and_neither_is_a_shared_child() {
    let dir = tree(&[
        ("base/mod.rs", "pub mod exit;\n"),
        ("base/exit.rs", "pub struct Code;\n"),
        ("job/mod.rs", "pub mod lock;\n"),
        (
            "job/lock/mod.rs",
            "mod error;\nmod index;\npub use error::LockError;\npub fn run() { index::read(); }\n#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn t() { run() }\n}\n",
        ),
        ("job/lock/error.rs", "pub struct LockError;\n"),
        (
            "job/lock/index.rs",
            "use super::error::LockError;\npub fn read() -> Option<LockError> { None }\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
    ]);
    let o = graph(dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn two_modules_that_use_each_other_through_different_files_fail_as_modules() {
    let dir = tree(&[
        ("base/mod.rs", "pub mod exit;\n"),
        ("base/exit.rs", "pub struct Code;\n"),
        ("job/mod.rs", "pub mod fetch;\npub mod lock;\n"),
        (
            "job/fetch.rs",
            "pub fn get() { crate::job::lock::index::read(); }\npub struct Fetched;\n",
        ),
        ("job/lock/mod.rs", "pub mod index;\npub mod resolve;\n"),
        ("job/lock/index.rs", "pub fn read() {}\n"),
        (
            "job/lock/resolve.rs",
            "use crate::job::fetch::Fetched;\npub fn f(_: Fetched) {}\n",
        ),
    ]);
    let o = graph(dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("import cycle between the modules job::fetch, job::lock"),
        "{err}"
    );
    assert!(!err.contains("between the files"), "{err}");
}

#[test]
fn a_lower_layer_using_a_higher_one_fails_but_a_string_or_comment_does_not() {
    let quiet = tree(&[
        (
            "base/mod.rs",
            "pub mod exit;\n// crate::job::fetch is what calls this\n",
        ),
        (
            "base/exit.rs",
            "pub const HINT: &str = \"see crate::job::fetch\";\n",
        ),
        ("job/mod.rs", "pub mod fetch;\n"),
        ("job/fetch.rs", "use crate::base::exit::HINT;\n"),
    ]);
    let o = graph(quiet.path());
    assert!(o.status.success(), "{}", stderr(&o));

    let loud = tree(&[
        ("base/mod.rs", "pub mod exit;\n"),
        (
            "base/exit.rs",
            "pub fn code() { crate::job::fetch::get(); }\n",
        ),
        ("job/mod.rs", "pub mod fetch;\n"),
        ("job/fetch.rs", "pub fn get() {}\n"),
    ]);
    let o = graph(loud.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("base::exit uses job::fetch, a layer listed after its own")
            && err.contains("lowest first: base, job"),
        "{err}"
    );
}

//! Hostile inputs: names that would become paths, inputs without limits, archives whose
//! headers disagree, reseals, endless downloads. Each test here is the regression test of
//! one defect an attack on the release binary found.

use std::fs;
use std::path::Path;

use support::{PY, WheelSpec, World, embeddable, tree};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `root`, so a test can show nothing was written outside DEST.
fn files_under(root: &Path) -> Vec<String> {
    tree(root)
}

#[test]
fn a_metadata_name_never_becomes_a_path() {
    for (meta_name, needle) in [
        (
            "../../escaped",
            "METADATA Name \"../../escaped\" is not a project name",
        ),
        (
            "/abs/escaped",
            "METADATA Name \"/abs/escaped\" is not a project name",
        ),
        ("..\\..\\escaped", "is not a project name"),
        (
            "otherproject",
            "is another project than the file name says (evil)",
        ),
    ] {
        let mut evil = WheelSpec::pure("evil", "1.0");
        evil.files
            .push(("evil-1.0.data/headers/evil.h".into(), b"int x;\n".to_vec()));
        evil.metadata_name = Some(meta_name.into());
        let w = World::with_artifacts(embeddable(PY), vec![(evil.filename(), evil.build())]);
        let before = files_under(w.dir.path());
        let dest = w.path("a/b/dest");
        let r = w.run(&["build", s(&dest)]).code(3);
        assert!(
            r.stderr.contains("wheel evil-1.0-py3-none-any.whl"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(needle), "{meta_name}: {}", r.stderr);
        let after: Vec<String> = files_under(w.dir.path())
            .into_iter()
            .filter(|p| !p.starts_with("cache/"))
            .collect();
        let before: Vec<String> = before
            .into_iter()
            .filter(|p| !p.starts_with("cache/"))
            .collect();
        assert_eq!(after, before, "{meta_name}: nothing written");
    }
}

#[test]
fn a_headers_folder_follows_the_metadata_name_when_it_is_the_same_project() {
    let mut ok = WheelSpec::pure("good_pkg", "1.0");
    ok.files
        .push(("good_pkg-1.0.data/headers/g.h".into(), b"int g;\n".to_vec()));
    ok.metadata_name = Some("Good.Pkg".into());
    let w = World::with_artifacts(embeddable(PY), vec![(ok.filename(), ok.build())]);
    let dest = w.path("dest");
    w.run(&["build", s(&dest)]).ok();
    assert!(dest.join("Include/Good.Pkg/g.h").is_file());
}

/// A topology with one node, whose YAML lines are `extra` inserted at the node.
fn one_node(w: &World, name: &str, prefix: Option<&str>, cores: &str) -> std::path::PathBuf {
    let mut t = String::from("schema: 1\n");
    if let Some(p) = prefix {
        t.push_str(&format!("vu_prefix: '{p}'\n"));
    }
    t.push_str(&format!(
        "nodes:\n  - name: '{name}'\n    vu_root: 'D:\\vu'\n    cores:\n{cores}"
    ));
    let path = w.path("topology.yaml");
    fs::write(&path, t).unwrap();
    path
}

#[test]
fn topology_names_that_would_become_paths_are_refused_with_their_line() {
    let w = World::new();
    let plain = "      - Core1\n";
    for (name, prefix, cores, line, needle) in [
        (
            "HAC1",
            None,
            "      - { core: Core1, vu: '../../x' }\n",
            6,
            "nodes[0].cores[0].vu: \"../../x\" cannot name a VU folder: it holds a path separator",
        ),
        (
            "HAC1",
            None,
            "      - { core: Core1, vu: '/abs' }\n",
            6,
            "cannot name a VU folder",
        ),
        (
            "HAC1",
            None,
            "      - { core: Core1, vu: 'a\\b' }\n",
            6,
            "cannot name a VU folder",
        ),
        (
            "HAC1",
            None,
            "      - { core: Core1, vu: '..' }\n",
            6,
            "cannot name a VU folder",
        ),
        (
            "HAC1",
            None,
            "      - { core: Core1, vu: 'COM1' }\n",
            6,
            "reserves",
        ),
        (
            "HAC1",
            Some("a/b"),
            plain,
            2,
            "vu_prefix: \"a/b\" cannot name a folder",
        ),
        ("HAC1", Some("..\\"), plain, 2, "vu_prefix"),
        (
            "a/b",
            None,
            plain,
            3,
            "nodes[0].name: \"a/b\" cannot name a folder",
        ),
        (
            "../x",
            None,
            plain,
            3,
            "nodes[0].name: \"../x\" cannot name a folder",
        ),
        ("NUL", None, plain, 3, "reserves"),
        ("node.", None, plain, 3, "dot or space"),
    ] {
        let topo = one_node(&w, name, prefix, cores);
        let r = w.run(&["plan", s(&topo)]).code(2);
        assert!(
            r.stderr.contains(&format!("{}:{line}: ", topo.display())),
            "{name} {prefix:?} {cores}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
}

#[test]
fn layout_never_writes_outside_the_vu_root() {
    let w = World::new();
    let topo = one_node(
        &w,
        "HAC1",
        None,
        "      - { core: Core1, vu: '../../escaped' }\n",
    );
    let root = w.path("deep/er/vu");
    fs::create_dir_all(&root).unwrap();
    let r = w
        .run(&["layout", s(&topo), "--node", "HAC1", "--vu-root", s(&root)])
        .code(2);
    assert!(r.stderr.contains("cannot name a VU folder"), "{}", r.stderr);
    assert!(!w.path("escaped").exists() && !w.path("deep/escaped").exists());
    assert!(
        fs::read_dir(&root).unwrap().next().is_none(),
        "nothing laid out"
    );
    let topo = one_node(&w, "../../escaped", None, "      - Core1\n");
    let out = w.path("deep/er/out");
    let r = w.run(&["layout", s(&topo), "--out", s(&out)]).code(2);
    assert!(r.stderr.contains("cannot name a folder"), "{}", r.stderr);
    assert!(!w.path("escaped").exists() && !out.exists());
}

#[test]
fn oversized_and_deeply_nested_inputs_are_refused() {
    let w = World::new();
    let big = w.path("big.yaml");
    let mut text = String::from("schema: 1\n");
    while text.len() <= 4 << 20 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    fs::write(&big, &text).unwrap();
    let mut c = support::extpy();
    c.args(["--manifest", s(&big), "fetch"]);
    let r = support::run(c).code(2);
    assert!(
        r.stderr.contains("larger than the 4.0 MiB allowed"),
        "{}",
        r.stderr
    );
    for (what, line, deep) in [
        (
            "flow",
            2,
            format!("schema: 1\nnodes: {}", "[".repeat(100_000)),
        ),
        (
            "block",
            3,
            format!("schema: 1\nnodes:\n{}x\n", "- ".repeat(100_000)),
        ),
    ] {
        let topo = w.path("deep.yaml");
        fs::write(&topo, deep).unwrap();
        let r = w.run(&["plan", s(&topo)]).code(2);
        assert!(
            r.stderr.contains(&format!(
                "{}:{line}: the YAML nests deeper than the 64 levels extpy reads",
                topo.display()
            )),
            "{what}: {}",
            r.stderr
        );
    }
}

#[cfg(unix)]
#[test]
fn a_device_or_fifo_as_input_is_refused() {
    let w = World::new();
    let topo = w.path("topology.yaml");
    fs::write(
        &topo,
        "schema: 1\nmanifest: /dev/zero\nnodes:\n  - name: A\n    vu_root: 'D:\\vu'\n    cores: [Core1]\n",
    )
    .unwrap();
    let mut c = support::extpy();
    c.args(["plan", s(&topo)]);
    let r = support::run(c).code(2);
    assert!(
        r.stderr
            .contains("/dev/zero: cannot read the manifest: it is not a regular file"),
        "{}",
        r.stderr
    );
    let fifo = w.path("fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut c = support::extpy();
    c.args(["--manifest", s(&fifo), "fetch"]);
    let r = support::run(c).code(2);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    let r = w.run(&["verify", s(&fifo)]).code(2);
    assert!(
        r.stderr
            .contains(&format!("{} is not a folder", fifo.display())),
        "{}",
        r.stderr
    );
}

/// `bytes` with the first occurrence of `from` (a local header's name) replaced by `to`.
fn patch_first(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the name is in the archive");
    bytes[at..at + to.len()].copy_from_slice(to);
    bytes
}

#[test]
fn a_local_header_that_disagrees_with_the_central_directory_is_refused() {
    let entry = support::fixtures::RawEntry {
        name: "hostile/ok.py",
        data: b"print('ok')\n",
        mode: None,
    };
    let (file, bytes) = support::fixtures::raw_wheel("hostile", "1.0", &[entry]);
    let patched = patch_first(bytes, b"hostile/ok.py", b"../../x/ok.py");
    let w = World::with_artifacts(embeddable(PY), vec![(file, patched)]);
    let dest = w.path("dest");
    let r = w.run(&["build", s(&dest)]).code(3);
    assert!(
        r.stderr.contains(
            "wheel hostile-1.0-py3-none-any.whl: refused entry \"hostile/ok.py\": its local header disagrees with the central directory: the local header names \"../../x/ok.py\""
        ),
        "{}",
        r.stderr
    );
    assert!(!dest.exists() && !w.path("x").exists());
}

#[test]
fn invalid_archives_are_explained_in_plain_words_with_exit_3() {
    // Not a zip at all, and a zip cut in half.
    let good = WheelSpec::pure("cut", "1.0");
    let whole = good.build();
    for (what, bytes) in [
        ("not a zip", b"this is not a zip file at all".to_vec()),
        ("truncated", whole[..whole.len() / 2].to_vec()),
    ] {
        let w = World::with_artifacts(embeddable(PY), vec![(good.filename(), bytes)]);
        let r = w.run(&["build", s(&w.path("dest"))]).code(3);
        assert!(
            r.stderr.contains("wheel cut-1.0-py3-none-any.whl: it is not a zip archive, or it is truncated or damaged"),
            "{what}: {}",
            r.stderr
        );
        for library_words in ["EOCD", "CDFH", "Invalid Zip archive"] {
            assert!(!r.stderr.contains(library_words), "{what}: {}", r.stderr);
        }
    }
    // A 5000-character entry name is an invalid archive, not a local failure.
    let long = format!("hostile/{}.py", "a".repeat(5000));
    let entry = support::fixtures::RawEntry {
        name: &long,
        data: b"x",
        mode: None,
    };
    let (file, bytes) = support::fixtures::raw_wheel("hostile", "1.0", &[entry]);
    let w = World::with_artifacts(embeddable(PY), vec![(file, bytes)]);
    let r = w.run(&["build", s(&w.path("dest"))]).code(3);
    assert!(
        r.stderr
            .contains("longer than the 255 characters Windows allows"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("extpy-tmp"), "{}", r.stderr);
}

#[test]
fn an_endless_download_stops_at_the_pinned_or_announced_size() {
    use support::mirror::Fault;
    let w = World::new();
    // Pinned: the manifest's size: stops a body without Content-Length at once.
    let text = fs::read_to_string(&w.manifest).unwrap();
    let pinned = text.replacen(
        "wheels:\n",
        &format!("  size: {}\nwheels:\n", w.embed.len()),
        1,
    );
    fs::write(&w.manifest, pinned).unwrap();
    w.mirror.fault(&w.embed_path(), Fault::Endless(None));
    let r = w.run(&["fetch"]).code(3);
    assert!(
        r.stderr.contains(&format!(
            "the server sent more than the {} bytes the manifest pins; the download was stopped",
            w.embed.len()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(
        w.mirror.requests_to(&w.embed_path()).len(),
        1,
        "not retried"
    );
    assert!(!w.blob(&w.embed).exists());
    // The pin holds for a good download too.
    w.run(&["fetch"]).ok();
    assert!(w.blob(&w.embed).is_file());

    // Unpinned: an announced size beyond the cap is refused before a byte is read.
    let w = World::new();
    w.mirror
        .fault(&w.embed_path(), Fault::Endless(Some(1 << 40)));
    let r = w.run(&["fetch"]).code(3);
    assert!(
        r.stderr.contains(
            "the server announces more than the 536870912 bytes a download without a pinned size may have"
        ),
        "{}",
        r.stderr
    );
    let partials: Vec<String> = tree(&w.cache);
    assert!(
        partials.iter().all(|p| !p.contains(".part")),
        "{partials:?}"
    );
}

#[test]
fn a_pinned_size_is_a_manifest_field_with_its_line() {
    let w = World::new();
    let text = fs::read_to_string(&w.manifest).unwrap();
    fs::write(
        &w.manifest,
        text.replacen("wheels:\n", "  size: -1\nwheels:\n", 1),
    )
    .unwrap();
    let r = w.run(&["fetch"]).code(2);
    assert!(r.stderr.contains("embeddable.size"), "{}", r.stderr);
}

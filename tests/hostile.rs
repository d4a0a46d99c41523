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

/// Rewrites `rel` in the distribution at `dir` and reseals it consistently: the file's seal
/// entry and the seal's own digest recomputed, as someone who can write the folder would.
fn reseal(dir: &Path, rel: &str, bytes: &[u8]) {
    fs::write(dir.join(rel), bytes).unwrap();
    support::reseal(dir, |_| true);
}

#[test]
fn a_consistent_reseal_passes_only_the_check_against_its_own_seal() {
    let w = World::new();
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    let target = "Lib/site-packages/alpha/__init__.py";
    reseal(&dist, target, b"import os; os.system('evil')\n");

    // Without a manifest, verify can only check the folder against the seal in it, and says so.
    let mut plain = support::extpy();
    plain.args(["verify", s(&dist)]);
    let r = support::run(plain).ok();
    assert!(
        r.stdout.contains("files match seal") && r.stdout.contains("against its own seal only"),
        "{}",
        r.stdout
    );
    // With the manifest, the seal it produces is computed and the reseal found, naming the file.
    let r = w.run(&["verify", s(&dist)]).code(3);
    assert!(
        r.stdout.contains("against the seal the manifest produces")
            && r.stdout.contains("1 not as the manifest builds")
            && r.stdout
                .contains(&format!("changed  {target} (against the manifest's build)")),
        "{}",
        r.stdout
    );
    let j = w.run(&["--json", "verify", s(&dist)]).code(3).json();
    assert_eq!(j["results"][0]["checked_against"], "expected_seal");
    assert_eq!(j["results"][0]["not_as_built"][0]["path"], target);

    // A laid-out VU resealed the same way: verify --topology, layout and --bundle all see it.
    let topo = w.path("topology.yaml");
    fs::write(
        &topo,
        "schema: 1\nnodes:\n  - name: HAC1\n    host: hac1.example.com\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n",
    )
    .unwrap();
    let stage = w.path("stage");
    w.run(&["layout", s(&topo), "--out", s(&stage)]).ok();
    let vu = stage.join("HAC1/ExternalPython2/Python/External");
    reseal(&vu, target, b"# rewritten\n");
    let mut own = support::extpy();
    own.args(["verify", s(&vu)]);
    support::run(own).ok();
    let r = w
        .run(&["verify", "--topology", s(&topo), "--out", s(&stage)])
        .code(3);
    assert!(
        r.stdout.contains("ok    HAC1 ExternalPython1")
            && r.stdout.contains("FAIL  HAC1 ExternalPython2")
            && r.stdout.contains("is not the seal")
            && r.stdout.contains(&format!("{target} changed")),
        "{}",
        r.stdout
    );
    let r = w.run(&["layout", s(&topo), "--out", s(&stage)]).code(3);
    assert!(
        r.stdout.contains("DIFFERS (left; --repair replaces it)")
            && r.stdout.contains("files and seal were rewritten"),
        "{}",
        r.stdout
    );
    w.run(&["layout", s(&topo), "--out", s(&stage), "--repair"])
        .ok();
    w.run(&["verify", "--topology", s(&topo), "--out", s(&stage)])
        .ok();

    // From a bundle: the seal its artifacts produce is the reference, with no network.
    let bundle = w.path("b.zip");
    w.run(&["bundle", "create", s(&bundle), "--topology", s(&topo)])
        .ok();
    let stage2 = w.path("stage2");
    w.run(&["layout", "--bundle", s(&bundle), "--out", s(&stage2)])
        .ok();
    let vu = stage2.join("HAC1/ExternalPython1/Python/External");
    reseal(&vu, target, b"# rewritten again\n");
    let mut offline = support::extpy();
    offline.args(["--offline", "--cache-dir", s(&w.path("empty-cache"))]);
    offline.args([
        "--json",
        "verify",
        "--bundle",
        s(&bundle),
        "--out",
        s(&stage2),
    ]);
    let r = support::run(offline).code(3);
    let j = r.json();
    assert_eq!(j["vus"][0]["found"]["state"], "resealed", "{}", r.stdout);
    assert_eq!(j["vus"][1]["found"]["state"], "matches", "{}", r.stdout);

    // That report, merged as a rollout merges its nodes' reports: RESEALED, failing.
    let reports = w.path("reports");
    fs::create_dir(&reports).unwrap();
    fs::write(reports.join("HAC1.json"), &r.stdout).unwrap();
    let mut merge = support::extpy();
    merge.args(["report", "merge", s(&reports)]);
    let m = support::run(merge);
    assert_ne!(m.code, 0, "{}", m.stdout);
    assert!(m.stdout.contains("RESEALED"), "{}", m.stdout);
    // A report edited to say "matches" while naming another seal than it expected fails too.
    let mut edited = j.clone();
    edited["vus"][0]["found"]["state"] = "matches".into();
    fs::write(reports.join("HAC1.json"), edited.to_string()).unwrap();
    let mut merge = support::extpy();
    merge.args(["report", "merge", s(&reports)]);
    let m = support::run(merge);
    assert_ne!(m.code, 0, "{}", m.stdout);
    assert!(m.stdout.contains("RESEALED"), "{}", m.stdout);
}

// Symbolic links are made with the Unix call; Windows links need privileges a test lacks.
#[cfg(unix)]
#[test]
fn a_destination_that_is_a_symlink_is_named_as_a_link() {
    let w = World::new();
    let real = w.path("real");
    fs::create_dir(&real).unwrap();
    let link = w.path("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let r = w.run(&["build", s(&link)]).code(2);
    assert!(
        r.stderr.contains(&format!(
            "{} is a symbolic link (to {}), not a folder",
            link.display(),
            real.display()
        )) && r
            .stderr
            .contains("help: give the folder the link points to"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("exists and is not a folder"),
        "{}",
        r.stderr
    );
    assert!(fs::read_link(&link).is_ok(), "the link is left as it was");
    // The folder it points to is a valid destination.
    w.run(&["build", s(&real)]).ok();

    // A VU folder that is a link is named the same way by layout.
    let topo = one_node(&w, "HAC1", None, "      - Core1\n");
    let root = w.path("vu");
    fs::create_dir_all(root.join("ExternalPython1/Python")).unwrap();
    std::os::unix::fs::symlink(&real, root.join("ExternalPython1/Python/External")).unwrap();
    let r = w
        .run(&["layout", s(&topo), "--node", "HAC1", "--vu-root", s(&root)])
        .code(2);
    assert!(r.stderr.contains("is a symbolic link (to"), "{}", r.stderr);
}

#[test]
fn a_redirect_to_a_local_file_url_is_refused_naming_both_urls() {
    let w = World::new();
    let from = format!(
        "{}/{PY}/python-{PY}-embed-amd64.zip",
        w.mirror.python_mirror().trim_end_matches('/')
    );
    w.mirror.fault(
        &w.embed_path(),
        support::mirror::Fault::Redirect("file:///etc/passwd".into()),
    );
    let r = w.run(&["fetch"]).code(4);
    assert!(
        r.stderr
            .contains("a download redirected to a local file URL is refused")
            && r.stderr
                .contains("redirected the download to file:///etc/passwd")
            && r.stderr.contains(&from),
        "{from}\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("302 Found"), "{}", r.stderr);
    assert!(!w.blob(&w.embed).exists());
}

#[test]
fn verify_never_lists_one_file_as_both_missing_and_extra() {
    let w = World::new();
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    let target = "Lib/site-packages/alpha/__init__.py";
    // A name that differs in case; a file replaced by a folder; a folder replaced by a file.
    let file = dist.join(target);
    fs::rename(&file, dist.join("Lib/site-packages/alpha/__INIT__.py")).unwrap();
    let exe = "python.exe";
    fs::remove_file(dist.join(exe)).unwrap();
    fs::create_dir_all(dist.join(exe).join("inside")).unwrap();
    fs::write(dist.join(exe).join("inside/x.dll"), b"x").unwrap();
    let beta = dist.join("Lib/site-packages/beta_pkg");
    fs::remove_dir_all(&beta).unwrap();
    fs::write(&beta, b"not a folder").unwrap();

    let r = w.run(&["verify", s(&dist)]).code(3);
    assert!(
        r.stdout.contains(&format!(
            "replaced {target}: on disk as Lib/site-packages/alpha/__INIT__.py: the name differs in case"
        )) && r.stdout.contains(&format!(
            "replaced {exe}: a folder is there instead of the file (holding 1 file)"
        )) && r.stdout.contains(
            "replaced Lib/site-packages/beta_pkg: a file is there instead of the folder of"
        ),
        "{}",
        r.stdout
    );
    let j = w.run(&["--json", "verify", s(&dist)]).code(3).json();
    let list = |k: &str| -> Vec<String> {
        j["results"][0][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (missing, extra) = (list("missing"), list("extra"));
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{missing:?} {extra:?}"
    );
    assert_eq!(j["results"][0]["replaced"].as_array().unwrap().len(), 3);
}

/// What a running process holds at most, sampled from /proc until it ends.
#[derive(Debug, Default)]
struct Peak {
    threads: u64,
    fds: usize,
    rss_kib: u64,
}

/// Runs `c` to its end, sampling its threads, open files and peak memory.
fn run_sampled(mut c: std::process::Command) -> (support::Run, Peak) {
    use std::process::Stdio;
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status_path = format!("/proc/{pid}/status");
    let fd_path = format!("/proc/{pid}/fd");
    // Read the pipes on their own threads, so a full pipe never stalls the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let mut peak = Peak::default();
    let field = |status: &str, key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if let Ok(status) = fs::read_to_string(&status_path) {
            peak.threads = peak.threads.max(field(&status, "Threads:"));
            peak.rss_kib = peak.rss_kib.max(field(&status, "VmHWM:"));
        }
        if let Ok(rd) = fs::read_dir(&fd_path) {
            peak.fds = peak.fds.max(rd.count());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let run = support::Run {
        code,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    (run, peak)
}

#[test]
fn a_node_with_ten_thousand_cores_lays_out_with_bounded_resources() {
    // The smallest distribution a build accepts: a Python and its ._pth, so that 10,000
    // copies stay quick.
    let embed = support::fixtures::zip_of(&[
        ("python.exe", b"MZ python"),
        ("python312._pth", support::fixtures::PTH_312.as_bytes()),
    ]);
    let w = World::with_artifacts(embed, vec![]);
    let cores: Vec<String> = (1..=10_000).map(|i| format!("Core{i}")).collect();
    let topo = w.path("topology.yaml");
    fs::write(
        &topo,
        format!(
            "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\vu'\n    cores: [{}]\n",
            cores.join(", ")
        ),
    )
    .unwrap();
    // 40,000 small files: on a tmpfs when the machine has one (seconds), else beside the world
    // (minutes on a slow disk); either way the same resources are bounded.
    let shm = Path::new("/dev/shm");
    let fast = shm
        .is_dir()
        .then(|| tempfile::tempdir_in(shm).ok())
        .flatten();
    let stage = fast
        .as_ref()
        .map_or_else(|| w.path("stage"), |d| d.path().join("stage"));
    let mut c = w.cmd();
    c.args(["layout", s(&topo), "--out", s(&stage)]);
    let (r, peak) = run_sampled(c);
    eprintln!("10,000 VUs: peak {peak:?}");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("10000 VU folders written and verified against seal"),
        "{}",
        r.stdout
    );
    // Bounded: threads by the job count, files open by what those threads copy, memory by
    // the distribution (not by the number of VUs).
    assert!(peak.threads <= 32, "{peak:?}");
    assert!(peak.fds <= 256, "{peak:?}");
    assert!(peak.rss_kib < 512 * 1024, "{peak:?}");
    let node = stage.join("HAC1");
    let names: Vec<String> = fs::read_dir(&node)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let vus = names
        .iter()
        .filter(|n| n.starts_with("ExternalPython"))
        .count();
    let others: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with("ExternalPython") && *n != ".extpy.lock")
        .collect();
    assert_eq!(vus, 10_000);
    assert!(others.is_empty(), "no temporary folder: {others:?}");
    for vu in [
        "ExternalPython1",
        "ExternalPython5000",
        "ExternalPython10000",
    ] {
        let left: Vec<_> = fs::read_dir(node.join(vu).join("Python"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["External"], "{vu}: nothing beside the VU folder");
    }
    let staged: Vec<String> = fs::read_dir(&stage)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(staged.len(), 2, "HAC1 and pairing.json only: {staged:?}");
    // The last VU verifies against the seal the manifest produces.
    let mut v = w.cmd();
    v.args([
        "verify",
        s(&node.join("ExternalPython10000/Python/External")),
    ]);
    support::run(v).ok();
}

/// The world's command with another `--index-url`.
fn with_index(w: &World, index: &str) -> std::process::Command {
    let mut c = support::extpy();
    c.arg("--manifest").arg(&w.manifest);
    c.arg("--cache-dir").arg(&w.cache);
    c.arg("--python-mirror").arg(w.mirror.python_mirror());
    c.arg("--ca-cert").arg(&w.ca_pem);
    c.arg("--index-url").arg(index);
    c
}

/// The mirror's URL with a login in it: `https://u:SECRET@127.0.0.1:<port>/simple/`.
fn with_login(url: &str) -> String {
    url.replacen("://", "://u:SECRET@", 1)
}

#[test]
fn index_credentials_are_never_shown_in_text_or_json() {
    let w = World::new();
    let dead = format!(
        "https://u:SECRET@127.0.0.1:{}/simple",
        support::servers::closed_port()
    );
    for json in [false, true] {
        let mut c = with_index(&w, &dead);
        c.args(["--retries", "2", "--timeout", "2"]);
        if json {
            c.arg("--json");
        }
        c.arg("fetch");
        let r = support::run(c).code(4);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(!all.contains("SECRET"), "json={json}: {all}");
        assert!(all.contains("127.0.0.1"), "the URL is still named: {all}");
    }
    // A URL that does not parse is shown without its login too.
    let mut c = with_index(&w, "https://u:SECRET@bad host/simple");
    c.arg("fetch");
    let r = support::run(c).code(2);
    assert!(!r.stderr.contains("SECRET"), "{}", r.stderr);
}

#[test]
fn a_login_in_the_index_url_goes_to_its_host_and_not_after_a_redirect() {
    let w = World::new();
    // A second server, another origin, holds one wheel; the mirror redirects there.
    let other = support::mirror::Mirror::start(Some(
        w.ca.leaf(&["127.0.0.1", "localhost"]).server_config(&[]),
    ));
    let (file, bytes) = w.wheels[0].clone();
    other.put(&format!("/files/{file}"), bytes);
    w.mirror.fault(
        &format!("/files/{file}"),
        support::mirror::Fault::Redirect(format!("{}/files/{file}", other.localhost_url())),
    );
    let mut c = with_index(&w, &with_login(&w.mirror.index_url()));
    c.arg("fetch");
    let r = support::run(c).ok();
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("SECRET"));
    // Nothing written from this run holds the login: seal, SBOM, bundle.
    let dest = w.path("dist");
    let bundle = w.path("b.zip");
    for args in [
        vec!["build", s(&dest)],
        vec!["bundle", "create", s(&bundle)],
    ] {
        let mut c = with_index(&w, &with_login(&w.mirror.index_url()));
        c.args(&args);
        let r = support::run(c).ok();
        assert!(!format!("{}{}", r.stdout, r.stderr).contains("SECRET"));
    }
    let mut written = vec![fs::read(&bundle).unwrap()];
    for f in files_under(&dest) {
        if let Ok(b) = fs::read(dest.join(&f)) {
            written.push(b);
        }
    }
    assert!(written.len() > 2);
    for b in &written {
        assert!(!String::from_utf8_lossy(b).contains("SECRET"));
    }
    let basic = "Basic dTpTRUNSRVQ="; // u:SECRET
    let pages = w.mirror.requests_to("/simple/alpha/");
    assert!(!pages.is_empty());
    for p in &pages {
        assert_eq!(
            p.headers.get("authorization").map(String::as_str),
            Some(basic)
        );
    }
    let moved = other.requests_to(&format!("/files/{file}"));
    assert_eq!(moved.len(), 1, "the redirect was followed");
    assert!(
        !moved[0].headers.contains_key("authorization"),
        "the login followed the redirect to another host: {:?}",
        moved[0].headers
    );
}

#[test]
fn logins_come_from_the_environment_and_from_netrc() {
    let w = World::new();
    let page = "/simple/alpha/";
    // EXTPY_INDEX_USERNAME/PASSWORD for the index.
    let empty = w.path("empty-netrc");
    fs::write(&empty, "").unwrap();
    let mut c = w.cmd();
    c.env("EXTPY_INDEX_USERNAME", "envuser")
        .env("EXTPY_INDEX_PASSWORD", "envpw")
        .env("NETRC", &empty)
        .arg("fetch");
    support::run(c).ok();
    let seen = w.mirror.requests_to(page);
    assert_eq!(
        seen.last()
            .unwrap()
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Basic ZW52dXNlcjplbnZwdw==")
    );
    // A netrc file, by host.
    let netrc = w.path("netrc");
    fs::write(&netrc, "machine 127.0.0.1 login nuser password npw\n").unwrap();
    let mut c = w.cmd();
    c.env("NETRC", &netrc)
        .arg("fetch")
        .arg("--cache-dir")
        .arg(w.path("c2"));
    support::run(c).ok();
    let seen = w.mirror.requests_to(page);
    assert_eq!(
        seen.last()
            .unwrap()
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Basic bnVzZXI6bnB3")
    );
    // A password without a user name is refused, and so is a broken netrc file.
    let mut c = w.cmd();
    c.env("EXTPY_INDEX_PASSWORD", "x").arg("fetch");
    let r = support::run(c).code(2);
    assert!(r.stderr.contains("EXTPY_INDEX_USERNAME"), "{}", r.stderr);
    fs::write(&netrc, "machine\n").unwrap();
    let mut c = w.cmd();
    c.env("NETRC", &netrc).arg("fetch");
    let r = support::run(c).code(2);
    assert!(
        r.stderr.contains("netrc") && r.stderr.contains("help:"),
        "{}",
        r.stderr
    );
}

/// Every C0 and C1 control, DEL, and every bidi override, isolate and mark.
fn every_control() -> String {
    (0u32..0x20)
        .chain([0x7f])
        .chain(0x80..0xa0)
        .chain(0x202a..=0x202e)
        .chain(0x2066..=0x2069)
        .chain([0x200e, 0x200f])
        .filter_map(char::from_u32)
        .collect()
}

/// `s` as a YAML double-quoted scalar, every control written as its escape.
fn yaml_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c as u32 {
            n if n < 0x20 || (0x7f..0xa0).contains(&n) => out.push_str(&format!("\\x{n:02x}")),
            n if n > 0xff => out.push_str(&format!("\\u{n:04x}")),
            _ if c == '"' || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The raw control characters in `text`, other than its own line ends and tabs.
fn raw_controls(text: &str) -> Vec<String> {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.char_indices()
        .filter(|&(i, c)| {
            (c.is_control() || bidi(c))
                && c != '\n'
                && c != '\t'
                && !(c == '\r' && text[i + 1..].starts_with('\n'))
        })
        .map(|(_, c)| format!("U+{:04X}", c as u32))
        .collect()
}

#[test]
fn control_characters_from_a_topology_never_reach_the_console() {
    let w = World::new();
    let hostile = yaml_quoted(&format!(
        "A\u{1b}]0;pwned\u{7}\u{1b}[31m{}Z",
        every_control()
    ));
    let topo = w.path("topology.yaml");
    fs::write(
        &topo,
        format!(
            "schema: 1\nsystem: {hostile}\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\nmail:\n  incoming:\n    - name: {hostile}\n      tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\n      auth: oauth_user\n      client_id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8\n  queues:\n    - address: support@contoso.example.com\n      account: support@contoso.example.com\n      password_env: EXTPY_TEST_QUEUE_PASSWORD\n      server: {hostile}\n"
        ),
    )
    .unwrap();
    let stage = w.path("stage");
    let dead = format!("https://127.0.0.1:{}", support::servers::closed_port());
    let runs: Vec<(&str, support::Run)> = vec![
        ("plan", w.run(&["plan", s(&topo)])),
        ("plan html", w.run(&["plan", s(&topo), "--format", "html"])),
        ("plan yaml", w.run(&["plan", s(&topo), "--format", "yaml"])),
        ("plan json", w.run(&["plan", s(&topo), "--format", "json"])),
        ("layout", w.run(&["layout", s(&topo), "--out", s(&stage)])),
        (
            "verify --topology",
            w.run(&["verify", "--topology", s(&topo), "--out", s(&stage)]),
        ),
        ("mail check", {
            let mut c = w.cmd();
            c.env("EXTPY_TEST_QUEUE_PASSWORD", "pw").args([
                "--retries",
                "0",
                "mail",
                "check",
                s(&topo),
                "--authority-url",
                &dead,
                "--imap-host",
                &dead[8..],
                "--smtp-host",
                &dead[8..],
            ]);
            support::run(c)
        }),
    ];
    let mut leaks = Vec::new();
    for (what, r) in &runs {
        for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            let raw = raw_controls(text);
            if !raw.is_empty() {
                leaks.push(format!(
                    "{what} {stream}: {} raw, first {}",
                    raw.len(),
                    raw[0]
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    // The values are shown, escaped, not dropped: the runbook names the system.
    let plan = &runs[0].1;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("runbook: A\\x1b]0;pwned\\x07\\x1b[31m\\x00"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("\\x0a\\x0b") && plan.stdout.contains("\\u202e"));
    // JSON stays JSON: its own escapes, the value whole.
    let j: serde_json::Value = serde_json::from_str(&runs[3].1.stdout).unwrap();
    assert_eq!(
        j["system"].as_str().unwrap(),
        format!("A\u{1b}]0;pwned\u{7}\u{1b}[31m{}Z", every_control())
    );
    let mail = &runs[6].1;
    assert!(
        mail.stdout.contains("\\x1b") || mail.stderr.contains("\\x1b"),
        "{mail:?}"
    );
}

#[test]
fn layout_dist_refuses_a_resealed_tree_and_stops_when_it_can_check_only_its_own_seal() {
    let w = World::new();
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    let target = "Lib/site-packages/alpha/__init__.py";
    reseal(&dist, target, b"import os; os.system('evil')\n");
    let topo = one_node(&w, "HAC1", None, "      - Core1\n      - Core2\n");
    let laid_out = |stage: &Path| stage.join("HAC1/ExternalPython1").exists();

    // The manifest's artifacts are at hand: the seal it produces is computed and the tree
    // refused, naming the file, before a VU is written.
    let stage = w.path("stage");
    let r = w
        .run(&["layout", s(&topo), "--out", s(&stage), "--dist", s(&dist)])
        .code(3);
    assert!(
        r.stderr.contains("matches its own seal, but not the seal")
            && r.stderr.contains(&format!("changed {target}"))
            && r.stderr.contains("help: ")
            && r.stderr.contains("--trust-dist-seal"),
        "{}",
        r.stderr
    );
    assert!(!laid_out(&stage));
    let r = w
        .run(&[
            "layout",
            s(&topo),
            "--out",
            s(&stage),
            "--dist",
            s(&dist),
            "--dry-run",
        ])
        .code(3);
    assert!(r.stderr.contains("not the seal"), "{}", r.stderr);

    // Offline without the artifacts: the tree could only be checked against its own seal,
    // and the layout says so and stops.
    let offline = |extra: &[&str]| {
        let mut c = support::extpy();
        c.args(["--offline", "--cache-dir", s(&w.path("empty-cache"))]);
        c.args(["--manifest", s(&w.manifest)]);
        c.args(["layout", s(&topo), "--out", s(&stage), "--dist", s(&dist)]);
        c.args(extra);
        support::run(c)
    };
    let r = offline(&[]).code(4);
    assert!(
        r.stderr.contains("was checked against its own seal only")
            && r.stderr.contains("nothing was laid out")
            && r.stderr.contains("help: "),
        "{}",
        r.stderr
    );
    assert!(!laid_out(&stage));
    // Trusting the tree's own seal is a choice the user makes by name, and is said.
    let r = offline(&["--trust-dist-seal"]).ok();
    assert!(
        r.stderr.contains("--trust-dist-seal:") && r.stderr.contains("on its own seal"),
        "{}",
        r.stderr
    );
    assert!(laid_out(&stage));
}

/// A sparse file one byte over `limit` (no disk is spent on it).
fn over(path: &Path, limit: u64) {
    fs::File::create(path).unwrap().set_len(limit + 1).unwrap();
}

/// Every limit of `src/mechanism/limits.rs` (and the netrc one), the input it refuses and
/// the exit code that ends with: 2 for an input, 3 for what is verified; never 1.
#[test]
fn every_limit_ends_with_the_exit_code_of_its_kind_of_input() {
    const MIB: u64 = 1 << 20;
    let w = World::new();
    let dist = w.path("dist");
    w.run(&["build", s(&dist)]).ok();
    let topo = one_node(&w, "HAC1", None, "      - Core1\n");
    let big = |name: &str, limit: u64| {
        let p = w.path(name);
        over(&p, limit);
        p
    };
    let deep = w.path("deep.yaml");
    fs::write(&deep, format!("schema: 1\nnodes: {}", "[".repeat(65))).unwrap();
    let manifest = big("big-manifest.yaml", 4 * MIB);
    let topology = big("topology-big.yaml", 4 * MIB);
    let pem = big("big-ca.pem", 4 * MIB);
    let doctor = big("big-doctor.json", 64 * MIB);
    let mail = big("big-mail.json", 64 * MIB);
    let netrc = big("big-netrc", MIB);
    let resealed = w.path("dist-big-seal");
    w.run(&["build", s(&resealed)]).ok();
    over(&resealed.join("extpy-seal.json"), 64 * MIB);

    let cmd = |args: &[&str], env: Option<(&str, &Path)>| {
        let mut c = w.cmd();
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        c.args(args);
        support::run(c)
    };
    let rows: Vec<(&str, support::Run, i32, &str)> = vec![
        (
            "MAX_YAML: manifest",
            {
                let mut c = support::extpy();
                c.args(["--manifest", s(&manifest), "fetch"]);
                support::run(c)
            },
            2,
            "larger than the 4.0 MiB allowed",
        ),
        (
            "MAX_YAML: topology",
            cmd(&["plan", s(&topology)], None),
            2,
            "larger than the 4.0 MiB allowed",
        ),
        (
            "MAX_YAML_DEPTH: topology",
            cmd(&["plan", s(&deep)], None),
            2,
            "nests deeper than the 64 levels",
        ),
        (
            "MAX_JSON: seal",
            cmd(&["verify", s(&resealed)], None),
            3,
            "larger than the 64.0 MiB allowed",
        ),
        (
            "MAX_JSON: doctor report",
            cmd(&["plan", s(&topo), "--doctor-report", s(&doctor)], None),
            2,
            "larger than the 64.0 MiB allowed",
        ),
        (
            "MAX_JSON: mail report",
            cmd(&["plan", s(&topo), "--mail-report", s(&mail)], None),
            2,
            "larger than the 64.0 MiB allowed",
        ),
        (
            "MAX_PEM: --ca-cert",
            {
                let mut c = support::extpy();
                c.args(["--manifest", s(&w.manifest), "--ca-cert", s(&pem), "fetch"]);
                support::run(c)
            },
            2,
            "larger than the 4.0 MiB allowed",
        ),
        (
            "MAX_NETRC: netrc",
            cmd(&["fetch"], Some(("NETRC", &netrc))),
            2,
            "larger than the 1.0 MiB allowed",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, r, code, needle) in &rows {
        if r.code != *code || !format!("{}{}", r.stdout, r.stderr).contains(needle) {
            wrong.push(format!(
                "{what}: exit {} (want {code}), {:?}",
                r.code,
                r.stderr.lines().next()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_corrupt_cached_artifact_is_named_corrupt_and_removed_not_called_missing() {
    let w = World::new();
    w.run(&["fetch"]).ok();
    let blob = w.blob(&w.embed);
    let damaged = b"bytes a disk or an antivirus changed".to_vec();
    fs::write(&blob, &damaged).unwrap();
    let found = support::sha256_hex(&damaged);
    let expected = support::sha256_hex(&w.embed);

    let r = w.run(&["--offline", "fetch"]).code(4);
    assert!(
        r.stderr.contains(&format!(
            "the cached copy {} was corrupt (sha256 {found}, expected {expected}) and was removed",
            blob.display()
        )) && r.stderr.contains("help: run `extpy fetch`"),
        "{}",
        r.stderr
    );
    assert!(!blob.exists(), "the corrupt copy is removed");
    // Online, the same is said as a warning and the artifact comes back.
    w.run(&["fetch"]).ok();
    fs::write(&blob, &damaged).unwrap();
    let r = w.run(&["fetch"]).ok();
    assert!(
        r.stderr.contains("was corrupt") && r.stderr.contains("it is downloaded again"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read(&blob).unwrap(), w.embed);
}

/// Stored Windows proxy settings, fed to extpy in place of the registry.
fn proxy_settings(w: &World, json: &str) -> std::path::PathBuf {
    let path = w.path("windows-proxy-settings.json");
    fs::write(&path, json).unwrap();
    path
}

/// `DefaultConnectionSettings` as Internet Options stores it, in hex: version, counter,
/// flags, then proxy, bypass list and auto-config URL, each length-prefixed.
fn connections_hex(flags: u32, pac: &str) -> String {
    let mut b = Vec::new();
    for dword in [0x46u32, 3, flags, 0, 0, pac.len() as u32] {
        b.extend(dword.to_le_bytes());
    }
    b.extend(pac.as_bytes());
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const PAC: &str = "http://pac.corp.example/proxy.pac";

#[track_caller]
fn says_set_https_proxy(text: &str) {
    for part in [
        "extpy does not evaluate PAC files",
        "find the `PROXY host:port` it returns for 127.0.0.1",
        "set HTTPS_PROXY=http://HOST:PORT",
        "$env:HTTPS_PROXY = \"http://HOST:PORT\"",
    ] {
        assert!(text.contains(part), "{part}\n{text}");
    }
}

#[test]
fn a_pac_file_or_wpad_is_named_with_the_https_proxy_to_set_when_a_download_cannot_connect() {
    let w = World::new();
    let dead = format!("https://127.0.0.1:{}/", support::servers::closed_port());
    let index = w.mirror.index_url();
    let fetch_at =
        |python: &str, index: &str, settings: &Path, env: &[(&str, &str)], json: bool| {
            let mut c = support::extpy();
            c.arg("--manifest").arg(&w.manifest);
            c.arg("--cache-dir").arg(&w.cache);
            c.arg("--index-url").arg(index);
            c.arg("--ca-cert").arg(&w.ca_pem);
            c.env("EXTPY_WINDOWS_PROXY_SETTINGS", settings);
            for (k, v) in env {
                c.env(k, v);
            }
            c.args([
                "--python-mirror",
                python,
                "--retries",
                "0",
                "--timeout",
                "5",
            ]);
            if json {
                c.arg("--json");
            }
            c.arg("fetch");
            let r = support::run(c).code(4);
            format!("{}{}", r.stdout, r.stderr)
        };
    let fetch_from = |index: &str, settings: &Path, env: &[(&str, &str)], json: bool| {
        fetch_at(&dead, index, settings, env, json)
    };
    let fetch =
        |settings: &Path, env: &[(&str, &str)], json: bool| fetch_from(&index, settings, env, json);

    // A PAC file in the user's AutoConfigURL, in text and with --json.
    let pac = proxy_settings(&w, &format!(r#"{{"user_autoconfig": "{PAC}"}}"#));
    // Every artifact failing alike (the cache is still empty): the advice is said once,
    // after the list.
    let dead_index = format!(
        "https://127.0.0.1:{}/simple/",
        support::servers::closed_port()
    );
    let all = fetch_from(&dead_index, &pac, &[], false);
    assert!(all.contains("4 artifacts could not be fetched"), "{all}");
    assert_eq!(
        all.matches("extpy does not evaluate PAC files").count(),
        1,
        "{all}"
    );
    says_set_https_proxy(&all);

    for json in [false, true] {
        let all = fetch(&pac, &[], json);
        assert!(
            all.contains(&format!(
                "no proxy is set, but a proxy auto-configuration (PAC) file is set: {PAC} (from the user registry: AutoConfigURL in HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings)"
            )),
            "json={json}: {all}"
        );
        assert!(all.contains(&format!("open {PAC}, find")), "{all}");
        says_set_https_proxy(&all);
    }

    // A name that does not resolve (no DNS outside the proxy) gets the advice too.
    let all = fetch_at("https://nothing.invalid/", &index, &pac, &[], false);
    assert!(
        all.contains("cannot resolve the host name nothing.invalid"),
        "{all}"
    );
    assert!(all.contains(&format!("PAC) file is set: {PAC}")), "{all}");
    assert!(all.contains("returns for nothing.invalid"), "{all}");

    // Only "Automatically detect settings" (WPAD), from the connection settings.
    let wpad = proxy_settings(
        &w,
        &format!(r#"{{"user_connections": "{}"}}"#, connections_hex(0x09, "")),
    );
    let all = fetch(&wpad, &[], false);
    assert!(
        all.contains("no proxy is set, but Windows' automatic proxy detection (WPAD) is on"),
        "{all}"
    );
    assert!(all.contains("open http://wpad/wpad.dat"), "{all}");
    says_set_https_proxy(&all);

    // The machine's PAC file under the ProxySettingsPerUser=0 policy.
    let machine = proxy_settings(
        &w,
        &format!(
            r#"{{"per_user": 0, "machine_connections": "{}"}}"#,
            connections_hex(0x05, PAC)
        ),
    );
    let all = fetch(&machine, &[], false);
    assert!(
        all.contains(&format!(
            "PAC) file is set: {PAC} (from the machine registry: DefaultConnectionSettings in HKLM"
        )),
        "{all}"
    );

    // An explicit proxy wins: it is named, and nothing is said about the PAC file.
    let proxy = format!("http://127.0.0.1:{}", support::servers::closed_port());
    let all = fetch(&pac, &[("HTTPS_PROXY", &proxy)], false);
    assert!(all.contains(&format!("through the proxy {proxy}")), "{all}");
    assert!(!all.contains("PAC") && !all.contains("HOST:PORT"), "{all}");
    // No auto-configuration: no advice.
    let none = proxy_settings(&w, "{}");
    let all = fetch(&none, &[], false);
    assert!(all.contains("cannot connect to 127.0.0.1"), "{all}");
    assert!(!all.contains("PAC") && !all.contains("HOST:PORT"), "{all}");
}

#[test]
fn the_doctor_names_a_pac_file_and_the_https_proxy_to_set_in_text_and_json() {
    let w = World::new();
    let port = support::servers::closed_port();
    let pac = proxy_settings(&w, &format!(r#"{{"user_autoconfig": "{PAC}"}}"#));
    let doctor = |json: bool| {
        let mut c = support::extpy();
        c.env("EXTPY_WINDOWS_PROXY_SETTINGS", &pac);
        c.args(["doctor", "--timeout", "5"]);
        if json {
            c.arg("--json");
        }
        c.arg(format!("127.0.0.1:{port}"));
        support::run(c).code(4)
    };
    let text = doctor(false).stdout;
    assert!(
        text.contains(&format!(
            "proxy      no proxy is set, but a proxy auto-configuration (PAC) file is set: {PAC}"
        )),
        "{text}"
    );
    assert!(text.contains("connect failure"), "{text}");
    says_set_https_proxy(&text);

    let doc = doctor(true).json();
    let h = &doc["hosts"][0];
    assert_eq!(h["verdict"]["kind"], "connect_failed");
    let auto = &h["proxy"]["auto_config"];
    assert_eq!(auto["pac_url"], PAC);
    assert_eq!(auto["auto_detect"], false);
    assert!(
        auto["setting"]
            .as_str()
            .unwrap()
            .starts_with("the user registry: AutoConfigURL in HKCU"),
        "{auto}"
    );
    let notes = h["notes"].to_string();
    says_set_https_proxy(&notes.replace("\\\"", "\""));

    // With HTTPS_PROXY set, the doctor shows that proxy and no auto-configuration.
    let mut c = support::extpy();
    c.env("EXTPY_WINDOWS_PROXY_SETTINGS", &pac)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{port}"))
        .args(["doctor", "--json", "--timeout", "5", "files.example.com"]);
    let doc = support::run(c).code(4).json();
    let h = &doc["hosts"][0];
    assert_eq!(h["proxy"]["source"], "environment");
    assert!(h["proxy"]["auto_config"].is_null(), "{h}");
    assert!(!h["notes"].to_string().contains("PAC"), "{h}");
}

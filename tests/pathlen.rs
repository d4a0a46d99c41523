//! The path preflight: a tree whose longest full path at its destination would be over
//! MAX_PATH (259 characters) is refused by `build` and `layout` with exit 2, naming the file
//! and its length, before anything reaches the destination, unless the node has long paths
//! (`long_paths: true` in the topology; the registry on Windows).

use std::fs;
use std::path::Path;

use support::{World, tree};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A destination whose files will be over the limit: the world's folder, then two long names.
fn deep(w: &World) -> std::path::PathBuf {
    w.path(&format!("{}/{}/dist", "a".repeat(120), "b".repeat(120)))
}

fn assert_names_the_longest_file(stderr: &str, dest: &Path) {
    let first = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    let prefix = format!("error: {}/", dest.display());
    assert!(first.starts_with(&prefix), "{stderr}");
    assert!(
        first.contains(": this path would be ") && first.contains(" characters long, over the 259"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: ") && stderr.contains("LongPathsEnabled"),
        "{stderr}"
    );
}

#[test]
fn a_build_into_a_deep_folder_is_refused_and_leaves_nothing_behind() {
    let w = World::new();
    let dest = deep(&w);
    let before = tree(w.dir.path());
    let r = w.run(&["build", s(&dest)]).code(2);
    assert_names_the_longest_file(&r.stderr, &dest);
    assert!(!dest.exists());
    // Not even the folders on the way, the staging folder or its lock.
    assert!(
        !w.path(&"a".repeat(120)).exists(),
        "{:?}",
        tree(w.dir.path())
    );
    let after: Vec<String> = tree(w.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("cache/"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|p| !p.starts_with("cache/"))
        .collect();
    assert_eq!(after, before);

    // From an offline bundle the plan is refused before the staging folder exists.
    let bundle = w.path("site.zip");
    w.run(&["bundle", "create", s(&bundle)]).ok();
    let r = w.run(&["build", "--bundle", s(&bundle), s(&dest)]).code(2);
    assert_names_the_longest_file(&r.stderr, &dest);
    assert!(!w.path(&"a".repeat(120)).exists());

    // The same tree one level up fits.
    w.run(&["build", s(&w.path("dist"))]).ok();
}

fn topology(w: &World, vu_root: &str, long_paths: bool) -> std::path::PathBuf {
    let path = w.path("topology.yaml");
    let extra = if long_paths {
        "    long_paths: true\n"
    } else {
        ""
    };
    fs::write(
        &path,
        format!("schema: 1\nnodes:\n  - name: HAC1\n    vu_root: '{vu_root}'\n    cores: [Core1]\n{extra}"),
    )
    .unwrap();
    path
}

#[test]
fn a_layout_whose_vu_paths_on_the_node_are_too_long_is_refused_unless_the_node_has_long_paths() {
    let w = World::new();
    let root = format!("D:\\{}\\{}", "v".repeat(120), "u".repeat(110));
    let t = topology(&w, &root, false);
    let out = w.path("staged");
    let r = w.run(&["layout", s(&t), "--out", s(&out)]).code(2);
    // Counted at the node's path, not at the staging folder here.
    let first = r.stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        first.starts_with(&format!(
            "error: {root}\\ExternalPython1\\Python\\External\\"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("long_paths: true"), "{}", r.stderr);
    assert!(!out.exists() || tree(&out).is_empty(), "{:?}", tree(&out));
    // A dry run says the same.
    w.run(&["layout", s(&t), "--out", s(&out), "--dry-run"])
        .code(2);

    // The node has LongPathsEnabled: the same layout goes ahead.
    let t = topology(&w, &root, true);
    w.run(&["layout", s(&t), "--out", s(&out)]).ok();
    assert!(
        out.join("HAC1/ExternalPython1/Python/External/extpy-seal.json")
            .is_file()
    );
}

#[test]
fn a_layout_in_place_counts_the_vu_root_it_is_given() {
    let w = World::new();
    let t = topology(&w, "D:\\SCP\\vu", false);
    let root = w.path(&format!("{}/{}", "r".repeat(120), "s".repeat(100)));
    let r = w
        .run(&["layout", s(&t), "--node", "HAC1", "--vu-root", s(&root)])
        .code(2);
    assert_names_the_longest_file(&r.stderr, &root.join("ExternalPython1/Python/External"));
    assert!(!root.join("ExternalPython1").exists());
}

#[test]
fn the_plan_shows_the_longest_path_of_each_vu_once_the_artifacts_are_cached() {
    let w = World::new();
    let long_root = format!("D:\\{}", "v".repeat(200));
    let path = w.path("topology.yaml");
    fs::write(
        &path,
        format!("schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1]\n  - name: HAC2\n    vu_root: '{long_root}'\n    cores: [Core2]\n"),
    )
    .unwrap();
    let before = w.run(&["plan", s(&path)]).ok();
    assert!(!before.stdout.contains("longest path"), "{}", before.stdout);
    w.run(&["fetch"]).ok();
    let md = w.run(&["plan", s(&path)]).ok().stdout;
    let row = md
        .lines()
        .find(|l| l.contains("| ExternalPython1 |") && l.contains(" of 259"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains("D:\\SCP\\vu\\ExternalPython1\\Python\\External\\") && row.contains(" of 259"),
        "{row}"
    );
    let row = md
        .lines()
        .find(|l| l.contains("| ExternalPython2 |") && l.contains("(over 259"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains("layout refuses it without LongPathsEnabled"),
        "{row}"
    );
}

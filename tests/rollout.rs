//! `extpy rollout` and `extpy report merge`, driven by a real ansible-playbook: the Linux
//! variant runs three nodes on the local connection, each with its own VU root.
//!
//! Needs ansible-playbook: `scripts/test.sh` installs it into target/test-venv and says so
//! through EXTPY_TEST_ANSIBLE_BIN; otherwise it is looked up on PATH.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::fixtures::windows_exe;
use support::{Run, World, extpy, run};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ansible(tool: &str) -> PathBuf {
    let from_env = std::env::var_os("EXTPY_TEST_ANSIBLE_BIN").map(|d| PathBuf::from(d).join(tool));
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-venv/bin")
        .join(tool);
    for candidate in from_env.into_iter().chain([venv]) {
        if candidate.is_file() {
            return candidate;
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|c| c.is_file())
    });
    on_path.unwrap_or_else(|| panic!("{tool} not found: run the tests with scripts/test.sh, which installs Ansible into target/test-venv"))
}

/// ansible-playbook in `project`, with its state kept inside the test's folder.
fn playbook(project: &Path, home: &Path, args: &[&str]) -> Run {
    run(playbook_command(project, home, args))
}

/// The `ansible-playbook` command [`playbook`] runs, to add to.
fn playbook_command(project: &Path, home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(ansible("ansible-playbook"));
    c.current_dir(project)
        .args(["-i", "inventory.yml", "rollout.yml"])
        .args(args)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_REMOTE_TEMP", home.join("remote-tmp"))
        .env_remove("EXTPY_CACHE_DIR");
    c
}

/// `changed=N` of every host in the PLAY RECAP.
fn changed(recap: &str) -> Vec<(String, u32)> {
    recap
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .skip(1)
        .filter_map(|l| {
            let host = l.split_whitespace().next()?.to_string();
            let n = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("changed="))?
                .parse()
                .ok()?;
            Some((host, n))
        })
        .collect()
}

struct Site {
    w: World,
    topology: PathBuf,
    bundle: PathBuf,
}

fn site() -> Site {
    let w = World::new();
    let topology = w.path("topology.yaml");
    fs::write(
        &topology,
        "schema: 1\nsystem: Three nodes\nnodes:\n  - name: HAC1\n    host: hac1.example.com\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core1, Core2]\n  - name: HAC2\n    host: hac2.example.com\n    vu_root: 'D:\\SCP\\vu'\n    cores: [Core3]\n  - name: HAC3\n    host: hac3.example.com\n    vu_root: 'E:\\vu'\n    cores: [Core4, Core5]\n",
    )
    .unwrap();
    let bundle = w.path("b.zip");
    w.run(&["bundle", "create", s(&bundle), "--topology", s(&topology)])
        .ok();
    Site {
        w,
        topology,
        bundle,
    }
}

fn merge(project: &Path) -> Run {
    let mut c = extpy();
    c.args(["report", "merge", s(project)]);
    run(c)
}

#[test]
fn linux_rollout_lays_out_verifies_and_is_idempotent() {
    let site = site();
    let project = site.w.path("ro");
    let nodes = site.w.path("nodes");
    let home = site.w.path("ansible-home");
    let mut c = extpy();
    c.args([
        "rollout",
        "--bundle",
        s(&site.bundle),
        "--out",
        s(&project),
        "--target",
        "linux",
        "--vu-root-base",
        s(&nodes),
    ]);
    let r = run(c).ok();
    assert!(
        r.stdout.contains("for 3 nodes (HAC1, HAC2, HAC3)"),
        "{}",
        r.stdout
    );
    let inventory = fs::read_to_string(project.join("inventory.yml")).unwrap();
    assert!(
        inventory.contains("ansible_connection: local"),
        "{inventory}"
    );
    assert!(
        inventory.contains(&format!(
            "extpy_vu_root: !unsafe {}",
            nodes.join("HAC3").display()
        )),
        "{inventory}"
    );
    assert!(
        inventory.contains("ansible_host: !unsafe hac2.example.com"),
        "{inventory}"
    );
    assert!(
        fs::read_to_string(project.join("plan.md"))
            .unwrap()
            .contains("ansible-playbook -i inventory.yml rollout.yml --limit HAC2")
    );
    assert!(
        !fs::read_to_string(project.join("plan.md"))
            .unwrap()
            .contains('\r'),
        "LF for a Linux target"
    );

    let syntax = playbook(&project, &home, &["--syntax-check"]).ok();
    assert!(
        syntax.stdout.contains("playbook: rollout.yml"),
        "{}",
        syntax.stdout
    );

    // --check on fresh nodes changes nothing there.
    playbook(&project, &home, &["--check"]).ok();
    assert!(
        !nodes.join("HAC1/ExternalPython1").exists(),
        "--check wrote a VU"
    );

    let first = playbook(&project, &home, &[]).ok();
    for (node, vus) in [("HAC1", &[1, 2][..]), ("HAC2", &[3]), ("HAC3", &[4, 5])] {
        for n in vus {
            let dir = nodes
                .join(node)
                .join(format!("ExternalPython{n}/Python/External"));
            assert!(dir.join("extpy-seal.json").is_file(), "{}", dir.display());
        }
        assert!(
            project
                .join("reports")
                .join(format!("{node}.json"))
                .is_file()
        );
    }
    assert!(
        changed(&first.stdout).iter().all(|(_, n)| *n > 0),
        "{}",
        first.stdout
    );
    let merged = merge(&project).ok();
    assert!(
        merged
            .stdout
            .contains("all 5 VUs match the seal the bundle produces"),
        "{}",
        merged.stdout
    );
    assert_eq!(
        merged.stdout.matches("  ok  ").count(),
        5,
        "{}",
        merged.stdout
    );

    let second = playbook(&project, &home, &[]).ok();
    let recap = changed(&second.stdout);
    assert_eq!(recap.len(), 3, "{}", second.stdout);
    assert!(
        recap.iter().all(|(_, n)| *n == 0),
        "a second run changes nothing: {recap:?}"
    );

    // A node whose VU was tampered with fails, and the merged report names it.
    fs::write(
        nodes.join("HAC2/ExternalPython3/Python/External/python.exe"),
        "tampered",
    )
    .unwrap();
    let third = playbook(&project, &home, &[]).code(2);
    assert!(
        third
            .stdout
            .contains("HAC2: some VUs do not hold the bundle's distribution"),
        "{}",
        third.stdout
    );
    let r = merge(&project).code(3);
    assert!(
        r.stdout.contains("HAC2  ExternalPython3  Core3  DIFFERS"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 of 5 VUs failed"), "{}", r.stdout);
    let mut c = extpy();
    c.args(["report", "merge", "--json", s(&project)]);
    let doc = run(c).code(3).json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["rows"][2]["node"], "HAC2");
    assert_eq!(doc["rows"][2]["status"], "differs");

    // -e extpy_repair=true puts it right.
    playbook(&project, &home, &["-e", "extpy_repair=true"]).ok();
    merge(&project).ok();
}

#[test]
fn topology_values_are_never_templated_by_ansible() {
    let site = site();
    let project = site.w.path("ro");
    // A folder name and a core name that are templates running a command on the control
    // machine (in the playbook's folder, where ansible-playbook runs).
    let template = "{{ lookup('pipe', 'touch pwned') }}";
    let base = site.w.path(template);
    let home = site.w.path("ansible-home");
    let topology = site.w.path("evil-topology.yaml");
    fs::write(
        &topology,
        format!("schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\vu'\n    cores:\n      - {{ core: \"{template}\", vu: ExternalPython1 }}\n"),
    )
    .unwrap();
    let mut c = extpy();
    c.args(["rollout", s(&topology), "--bundle", s(&site.bundle)])
        .args(["--out", s(&project), "--target", "linux"])
        .args(["--vu-root-base", s(&base)]);
    run(c).ok();
    let inventory = fs::read_to_string(project.join("inventory.yml")).unwrap();
    assert!(inventory.contains("- !unsafe '{{ lookup("), "{inventory}");
    playbook(&project, &home, &[]).ok();
    let pwned: Vec<String> = support::tree(site.w.dir.path())
        .into_iter()
        .filter(|p| p.ends_with("pwned"))
        .collect();
    assert!(
        pwned.is_empty(),
        "a topology value ran a command: {pwned:?}"
    );
    assert!(
        base.join("HAC1/ExternalPython1/Python/External/extpy-seal.json")
            .is_file(),
        "the VU root is the folder named, taken literally"
    );
}

#[test]
fn a_host_that_is_not_a_host_name_is_refused_with_its_line() {
    let site = site();
    let topology = site.w.path("evil-topology.yaml");
    fs::write(
        &topology,
        "schema: 1\nnodes:\n  - name: HAC1\n    host: \"{{ lookup('pipe', 'id') }}\"\n    vu_root: 'D:\\vu'\n    cores: [Core1]\n",
    )
    .unwrap();
    let mut c = extpy();
    c.args(["rollout", s(&topology), "--bundle", s(&site.bundle)])
        .args(["--out", s(&site.w.path("ro")), "--target", "linux"]);
    let r = run(c).code(2);
    assert!(
        r.stderr
            .contains(":4: nodes[0].host: \"{{ lookup('pipe', 'id') }}\" is not a host name"),
        "{}",
        r.stderr
    );
    assert!(!site.w.path("ro").exists());
}

#[test]
fn windows_project_passes_syntax_check() {
    let site = site();
    let project = site.w.path("ro-win");
    let fake_exe = site.w.path("extpy.exe");
    fs::write(&fake_exe, b"MZ not really").unwrap();
    let mut c = extpy();
    c.args([
        "rollout",
        s(&site.topology),
        "--bundle",
        s(&site.bundle),
        "--out",
        s(&project),
        "--extpy",
        s(&fake_exe),
    ]);
    run(c).ok();
    let inventory = fs::read_to_string(project.join("inventory.yml")).unwrap();
    assert!(
        inventory.contains("ansible_connection: winrm"),
        "{inventory}"
    );
    assert!(
        inventory.contains("ansible_user: '{{ winrm_user }}'"),
        "{inventory}"
    );
    assert!(
        inventory.contains("extpy_vu_root: !unsafe E:\\vu"),
        "{inventory}"
    );
    let playbook_text = fs::read_to_string(project.join("rollout.yml")).unwrap();
    assert!(
        playbook_text.contains("ansible.windows.win_copy")
            && playbook_text.contains("ansible.windows.win_command")
    );
    assert!(project.join("files/extpy.exe").is_file());
    // What a Windows user opens has Windows line ends, and nothing PowerShell 5.1 mangles.
    for file in ["plan.md", "README.txt"] {
        let text = fs::read_to_string(project.join(file)).unwrap();
        assert!(text.is_ascii(), "{file}");
        assert_eq!(
            text.matches('\n').count(),
            text.matches("\r\n").count(),
            "{file} has CRLF line ends"
        );
    }
    let home = site.w.path("ansible-home");
    let r = playbook(&project, &home, &["--syntax-check"]).ok();
    assert!(r.stdout.contains("playbook: rollout.yml"), "{}", r.stdout);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on Windows, rollout --target windows ships the extpy.exe that runs it"
)]
fn a_windows_rollout_takes_the_exe_from_a_bundle_made_on_linux() {
    let site = site();
    let exe = site.w.path("built/extpy.exe");
    fs::create_dir_all(exe.parent().unwrap()).unwrap();
    fs::write(&exe, windows_exe(b"made by scripts/build-windows.sh")).unwrap();
    let bundle = site.w.path("with-exe.zip");
    site.w
        .run(&[
            "bundle",
            "create",
            s(&bundle),
            "--topology",
            s(&site.topology),
            "--include-exe",
            s(&exe),
        ])
        .ok();
    let project = site.w.path("ro");
    let mut c = extpy();
    c.args(["rollout", "--bundle", s(&bundle), "--out", s(&project)]);
    run(c).ok();
    assert_eq!(
        fs::read(project.join("files/extpy.exe")).unwrap(),
        fs::read(&exe).unwrap()
    );
    let playbook_text = fs::read_to_string(project.join("rollout.yml")).unwrap();
    assert!(
        playbook_text.contains("ansible.windows.win_copy"),
        "{playbook_text}"
    );
}

#[test]
fn a_unc_vu_root_is_refused_for_windows_nodes_with_the_reason() {
    let site = site();
    let topology = site.w.path("unc.yaml");
    fs::write(
        &topology,
        "schema: 1\nsystem: Share\nnodes:\n  - name: HAC1\n    host: hac1.example.com\n    vu_root: '\\\\fs01\\scp\\vu'\n    cores: [Core1]\n",
    )
    .unwrap();
    let fake_exe = site.w.path("extpy.exe");
    fs::write(&fake_exe, b"MZ not really").unwrap();
    let project = site.w.path("ro-unc");
    let mut c = extpy();
    c.args([
        "rollout",
        s(&topology),
        "--bundle",
        s(&site.bundle),
        "--out",
        s(&project),
        "--extpy",
        s(&fake_exe),
    ]);
    let r = run(c).code(2);
    assert!(
        r.stderr
            .contains("node HAC1: its VU root \\\\fs01\\scp\\vu is a UNC path")
            && r.stderr.contains("no delegation")
            && r.stderr.contains("help: give the node its local VU root"),
        "{}",
        r.stderr
    );
    assert!(!project.exists(), "nothing written");
}

#[test]
fn a_windows_target_needs_a_windows_extpy() {
    if cfg!(windows) {
        return;
    }
    let site = site();
    let mut c = extpy();
    c.args([
        "rollout",
        "--bundle",
        s(&site.bundle),
        "--out",
        s(&site.w.path("ro")),
    ]);
    let r = run(c).code(2);
    assert!(r.stderr.contains("pass --extpy PATH"), "{}", r.stderr);
    assert!(r.stderr.contains("--include-exe PATH"), "{}", r.stderr);
    assert!(!site.w.path("ro").exists());
}

#[test]
fn a_foreign_output_folder_is_refused() {
    let site = site();
    let out = site.w.path("mine");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("notes.txt"), "keep me").unwrap();
    let mut c = extpy();
    c.args([
        "rollout",
        "--bundle",
        s(&site.bundle),
        "--out",
        s(&out),
        "--target",
        "linux",
    ]);
    let r = run(c).code(2);
    assert!(
        r.stderr.contains("was not written by `extpy rollout`"),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn merge_fails_for_a_node_without_a_report() {
    let site = site();
    let reports = site.w.path("reports");
    fs::create_dir_all(&reports).unwrap();
    // HAC1 laid out and verified by hand; HAC2 and HAC3 never report.
    let root = site.w.path("hac1");
    let mut c = extpy();
    c.args([
        "layout",
        "--bundle",
        s(&site.bundle),
        "--node",
        "HAC1",
        "--vu-root",
        s(&root),
    ]);
    run(c).ok();
    let mut c = extpy();
    c.args([
        "--json",
        "verify",
        "--bundle",
        s(&site.bundle),
        "--node",
        "HAC1",
        "--vu-root",
        s(&root),
    ]);
    fs::write(reports.join("HAC1.json"), run(c).ok().stdout).unwrap();
    let mut c = extpy();
    c.args([
        "report",
        "merge",
        s(&reports),
        "--topology",
        s(&site.topology),
    ]);
    let r = run(c).code(3);
    assert!(r.stdout.contains("node HAC2: no report"), "{}", r.stdout);
    assert!(
        r.stdout.contains("HAC3  ExternalPython5  Core5  NO REPORT"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("2 nodes without a report"),
        "{}",
        r.stderr
    );
    let empty = site.w.path("empty");
    fs::create_dir_all(&empty).unwrap();
    let mut c = extpy();
    c.args(["report", "merge", s(&empty)]);
    let r = run(c).code(3);
    assert!(
        r.stderr.contains("no node reports were found"),
        "{}",
        r.stderr
    );
}

#[test]
fn with_watch_every_node_that_verifies_installs_the_drift_watch() {
    let site = site();
    let home = site.w.path("ansible-home");
    for (watch, target) in [(true, "linux"), (true, "windows"), (false, "linux")] {
        let project = site.w.path(&format!("ro-{target}-{watch}"));
        let mut c = extpy();
        c.args(["rollout", "--bundle", s(&site.bundle), "--out", s(&project)]);
        // A small stand-in for the executable: only the project's text is looked at.
        let exe = site.w.path(&format!("extpy-{target}"));
        fs::write(&exe, windows_exe(b"x")).unwrap();
        c.args(["--target", target, "--extpy", s(&exe)]);
        if target == "linux" {
            c.args(["--vu-root-base", s(&site.w.path("nodes"))]);
        }
        if watch {
            c.arg("--watch");
        }
        run(c).ok();
        let inventory = fs::read_to_string(project.join("inventory.yml")).unwrap();
        assert!(
            inventory.contains(&format!("extpy_watch: {watch}")),
            "{inventory}"
        );
        let book = fs::read_to_string(project.join("rollout.yml")).unwrap();
        let module = if target == "linux" {
            "ansible.builtin.command"
        } else {
            "ansible.windows.win_command"
        };
        // After the assert that every VU matches: a node that differs gets no watch.
        let assert_at = book.find("- name: Every VU matches the bundle").unwrap();
        let task = format!(
            "- name: Install the drift watch (scheduled tasks that write the event log)\n      {module}:\n        argv: \"{{{{ [extpy_exe, '--no-progress', 'watch', 'install', '--bundle', extpy_bundle_path, '--node', inventory_hostname, '--vu-root', extpy_vu_root] + extpy_trust }}}}\"\n      changed_when: false\n      when: extpy_watch | bool and extpy_verify is not skipped\n"
        );
        let at = book
            .find(&task)
            .unwrap_or_else(|| panic!("{task}\nnot in:\n{book}"));
        assert!(at > assert_at);
        if target == "linux" {
            let syntax = playbook(&project, &home, &["--syntax-check"]).ok();
            assert!(
                syntax.stdout.contains("playbook: rollout.yml"),
                "{}",
                syntax.stdout
            );
        }
    }
}

#[test]
#[cfg_attr(windows, ignore = "the runner stand-in is a shell script")]
fn a_linux_rollout_with_watch_runs_watch_install_on_each_node() {
    let site = site();
    let project = site.w.path("ro");
    let nodes = site.w.path("nodes");
    let home = site.w.path("ansible-home");
    let mut c = extpy();
    c.args(["rollout", "--bundle", s(&site.bundle), "--out", s(&project)]);
    c.args(["--target", "linux", "--vu-root-base", s(&nodes), "--watch"]);
    run(c).ok();
    // The Windows commands go to a stand-in that logs them (the playbook's commands inherit
    // the environment over the local connection).
    let (runner, log) = support::watch_runner(&site.w);
    let mut c = playbook_command(&project, &home, &["--limit", "HAC1,HAC3"]);
    c.env("EXTPY_WATCH_RUNNER", &runner);
    let r = run(c).ok();
    assert!(r.stdout.contains("Install the drift watch"), "{}", r.stdout);
    let calls = fs::read_to_string(&log).unwrap();
    for node in ["HAC1", "HAC3"] {
        let work = nodes.join(".extpy-work").join(node);
        let line = format!(
            "|/TR|{} --offline --quiet watch run --bundle {} --node {node} --vu-root {}|/SC|DAILY|",
            work.join("extpy").display(),
            work.join("b.zip").display(),
            nodes.join(node).display()
        );
        assert!(calls.contains(&line), "{line}\nnot in:\n{calls}");
    }
    assert!(!calls.contains("HAC2"), "{calls}");
    assert_eq!(calls.lines().count(), 8, "{calls}");
}

#[test]
fn a_signed_rollout_carries_the_key_and_the_nodes_refuse_a_bundle_it_did_not_sign() {
    let site = site();
    let secret = site.w.path("site.key");
    let mut c = extpy();
    c.args(["key", "generate", "--unencrypted", s(&secret)]);
    run(c).ok();
    let public = site.w.path("site.pub");
    let line = fs::read_to_string(&public)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let signed = site.w.path("signed.zip");
    site.w
        .run(&[
            "bundle",
            "create",
            s(&signed),
            "--topology",
            s(&site.topology),
            "--sign",
            s(&secret),
        ])
        .ok();
    let project = site.w.path("ro");
    let nodes = site.w.path("nodes");
    let home = site.w.path("ansible-home");
    let rollout = |bundle: &Path| {
        let mut c = extpy();
        c.args([
            "rollout",
            "--bundle",
            s(bundle),
            "--out",
            s(&project),
            "--target",
            "linux",
            "--vu-root-base",
            s(&nodes),
            "--trusted-key",
            s(&public),
            "--force",
        ]);
        run(c)
    };
    // This machine refuses an unsigned bundle already.
    let r = rollout(&site.bundle).code(3);
    assert!(
        r.stderr.contains("the bundle is not signed"),
        "{}",
        r.stderr
    );
    rollout(&signed).ok();
    let inventory = fs::read_to_string(project.join("inventory.yml")).unwrap();
    assert!(
        inventory.contains(&format!("- !unsafe {line}")),
        "{inventory}"
    );
    playbook(&project, &home, &[]).ok();
    assert!(
        nodes
            .join("HAC1/ExternalPython1/Python/External/extpy-seal.json")
            .is_file()
    );
    // With the watch, each node's tasks require the same key of the bundle every run opens.
    let (runner, log) = support::watch_runner(&site.w);
    let mut c = playbook_command(
        &project,
        &home,
        &["--limit", "HAC1", "-e", "extpy_watch=true"],
    );
    c.env("EXTPY_WATCH_RUNNER", &runner);
    run(c).ok();
    let calls = fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains(&format!(
            "--node HAC1 --vu-root {} --trusted-key {line}|/SC|DAILY|",
            nodes.join("HAC1").display()
        )),
        "{calls}"
    );

    // The bundle swapped on the way for an unsigned one: the nodes refuse it, lay out nothing.
    fs::remove_dir_all(&nodes).unwrap();
    fs::copy(&site.bundle, project.join("files/signed.zip")).unwrap();
    let r = playbook(&project, &home, &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("the bundle is not signed"),
        "{}",
        r.stdout
    );
    assert!(!nodes.join("HAC1/ExternalPython1").exists());
}

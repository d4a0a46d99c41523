//! Scripted multi-node rollouts on Ansible: `extpy rollout` writes an Ansible project (one
//! inventory host per HAC node, a playbook that runs extpy on each node as the agent), and
//! `extpy report merge` combines the nodes' reports into one table.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value as Yaml};

use crate::base::exit::ExitCode;
use crate::base::report::{plural, text_for};
use crate::job::assemble::seal::{DestState, dest_state};
use crate::job::bundle::Bundle;
use crate::mechanism::fsio::{IoError, at};
use crate::mechanism::place::{PlaceError, Staging};
use crate::model::topology::{Topology, render_table};

/// The kind of nodes the playbook drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Windows nodes over WinRM (ansible.windows modules).
    Windows,
    /// Linux nodes (builtin modules), also for trying a rollout on one machine.
    Linux,
}

/// Why a rollout project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The output folder holds something else.
    #[error("{} is not empty and was not written by `extpy rollout`; choose another --out, or pass --force", path.display())]
    Foreign {
        /// The folder.
        path: PathBuf,
    },
    /// No extpy for the target's nodes.
    #[error("{0}")]
    NoExecutable(String),
    /// Writing failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A UNC VU root, which a rollout over WinRM cannot write.
    #[error(
        "node {node}: its VU root {root} is a UNC path, which a rollout over WinRM cannot write: with NTLM the node cannot pass your credentials on to the share (no delegation), so the share answers access denied\n  help: give the node its local VU root in the topology (for example D:\\SCP\\vu), or lay out the share from a machine that can write it with `extpy layout`"
    )]
    UncOverWinrm {
        /// The node.
        node: String,
        /// Its VU root.
        root: String,
    },
    /// A node name Ansible cannot take as an inventory host name as it is.
    #[error(
        "node {node:?} of the topology cannot be an Ansible inventory host: {why}\n  help: name the node with letters, digits, '.', '_' and '-' only"
    )]
    NodeName {
        /// The node.
        node: String,
        /// Why.
        why: &'static str,
    },
    /// Writing the project failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl RolloutError {
    /// The exit code: local I/O is local, the rest is the user's input.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RolloutError::Place(p) => p.exit_code(),
            RolloutError::Io(e) => e.exit_code(),
            RolloutError::Foreign { .. }
            | RolloutError::NoExecutable(_)
            | RolloutError::NodeName { .. }
            | RolloutError::UncOverWinrm { .. } => ExitCode::Input,
        }
    }
}

/// A Windows node's VU root must be a local path: over WinRM the node holds no credentials
/// it could pass on to a share.
fn check_vu_root(target: Target, node: &crate::model::topology::Node) -> Result<(), RolloutError> {
    let root = node.vu_root.as_str();
    if target == Target::Windows && (root.starts_with("\\\\") || root.starts_with("//")) {
        return Err(RolloutError::UncOverWinrm {
            node: node.name.clone(),
            root: root.to_string(),
        });
    }
    Ok(())
}

/// Inventory host names are Ansible host patterns and templated as `inventory_hostname`:
/// only plain names pass.
fn check_inventory_host(node: &str) -> Result<(), RolloutError> {
    let plain = !node.is_empty()
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        Ok(())
    } else {
        Err(RolloutError::NodeName {
            node: node.to_string(),
            why: "it holds characters that Ansible reads as patterns or templates",
        })
    }
}

/// What `extpy rollout` needs.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// The project folder.
    pub out: PathBuf,
    /// Windows or Linux nodes.
    pub target: Target,
    /// Linux: each node's VU root becomes `<base>/<node>` (and hosts use the local connection).
    pub vu_root_base: Option<PathBuf>,
    /// The Ansible connection, overriding the target's default.
    pub connection: Option<String>,
    /// The extpy executable the nodes run.
    pub extpy: PathBuf,
    /// Replace a folder that `extpy rollout` did not write.
    pub force: bool,
    /// Install the drift watch on every node once its VUs verify (`extpy watch install`).
    pub watch: bool,
    /// The public keys the nodes check the bundle with (their key lines): the playbook passes
    /// each as `--trusted-key` to every extpy that opens the bundle.
    pub trusted_keys: Vec<String>,
}

const MARKER: &str = ".extpy-rollout";

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// The inventory.
    pub inventory: PathBuf,
    /// The playbook.
    pub playbook: PathBuf,
    /// The nodes, in topology order.
    pub nodes: Vec<String>,
}

/// Writes the Ansible project for `topology`, with `bundle` and extpy in `files/`.
pub fn generate(
    topology: &Topology,
    bundle: &Bundle,
    options: &RolloutOptions,
    reporter: &crate::base::report::Reporter,
) -> Result<Project, RolloutError> {
    match dest_state(&options.out) {
        DestState::Foreign if !options.force && !options.out.join(MARKER).is_file() => {
            return Err(RolloutError::Foreign {
                path: options.out.clone(),
            });
        }
        DestState::NotAFolder => {
            return Err(PlaceError::not_a_folder(options.out.clone()).into());
        }
        _ => {}
    }
    for node in &topology.nodes {
        check_inventory_host(&node.name)?;
        check_vu_root(options.target, node)?;
    }
    let staging = Staging::begin(&options.out, reporter)?;
    let root = staging.path();
    let write = |rel: &str, bytes: &[u8]| -> Result<(), IoError> {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(at(parent, "cannot create the folder"))?;
        }
        fs::write(&path, bytes).map_err(at(&path, "cannot write"))
    };
    let copy = |from: &Path, rel: &str| -> Result<(), IoError> {
        let to = root.join(rel);
        fs::copy(from, &to).map_err(at(&to, "cannot copy"))?;
        Ok(())
    };
    for folder in ["files", "reports"] {
        let dir = root.join(folder);
        fs::create_dir_all(&dir).map_err(at(&dir, "cannot create the folder"))?;
    }
    let bundle_name = bundle.file_name();
    copy(&bundle.path, &format!("files/{bundle_name}"))?;
    let exe_name = match options.target {
        Target::Windows => "extpy.exe",
        Target::Linux => "extpy",
    };
    copy(&options.extpy, &format!("files/{exe_name}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = root.join("files").join(exe_name);
        let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o755));
    }
    write("topology.yaml", topology.text.as_bytes())?;
    write(
        "inventory.yml",
        inventory(topology, &bundle_name, options).as_bytes(),
    )?;
    write("rollout.yml", playbook(options.target).as_bytes())?;
    let windows = options.target == Target::Windows;
    write("README.txt", text_for(&readme(options), windows).as_bytes())?;
    write(
        MARKER,
        b"written by extpy rollout; extpy rollout may replace this folder\n",
    )?;
    write("reports/.keep", b"")?;
    staging.commit()?;
    let dir = std::path::absolute(&options.out).unwrap_or_else(|_| options.out.clone());
    Ok(Project {
        inventory: dir.join("inventory.yml"),
        playbook: dir.join("rollout.yml"),
        dir,
        nodes: topology.nodes.iter().map(|n| n.name.clone()).collect(),
    })
}

fn s(v: &str) -> Yaml {
    Yaml::String(v.to_string())
}

/// A value that came from the topology, the bundle or the command line, written `!unsafe` so
/// that Ansible never templates it: `{{ lookup('pipe', ...) }}` in a topology stays text.
fn unsafe_value(v: &str) -> Yaml {
    Yaml::Tagged(Box::new(serde_yaml::value::TaggedValue {
        tag: serde_yaml::value::Tag::new("unsafe"),
        value: s(v),
    }))
}

fn inventory(topology: &Topology, bundle: &str, o: &RolloutOptions) -> String {
    let mut vars = Mapping::new();
    vars.insert(s("extpy_bundle"), unsafe_value(bundle));
    vars.insert(
        s("extpy_sep"),
        s(match o.target {
            Target::Windows => "\\",
            Target::Linux => "/",
        }),
    );
    let connection = o
        .connection
        .clone()
        .unwrap_or_else(|| match (o.target, &o.vu_root_base) {
            (Target::Windows, _) => "winrm".into(),
            (Target::Linux, Some(_)) => "local".into(),
            (Target::Linux, None) => "ssh".into(),
        });
    vars.insert(s("ansible_connection"), s(&connection));
    vars.insert(s("extpy_watch"), Yaml::Bool(o.watch));
    vars.insert(
        s("extpy_trusted_keys"),
        Yaml::Sequence(o.trusted_keys.iter().map(|k| unsafe_value(k)).collect()),
    );
    match o.target {
        Target::Windows => {
            vars.insert(s("extpy_work_dir"), s("C:\\extpy"));
            vars.insert(s("ansible_port"), Yaml::Number(5986.into()));
            vars.insert(s("ansible_winrm_transport"), s("ntlm"));
            vars.insert(s("ansible_winrm_server_cert_validation"), s("validate"));
            vars.insert(s("ansible_user"), s("{{ winrm_user }}"));
            vars.insert(s("ansible_password"), s("{{ winrm_password }}"));
        }
        Target::Linux => {
            if connection == "local" {
                vars.insert(
                    s("ansible_python_interpreter"),
                    s("{{ ansible_playbook_python }}"),
                );
            }
        }
    }
    let mut hosts = Mapping::new();
    for node in &topology.nodes {
        let mut h = Mapping::new();
        h.insert(
            s("ansible_host"),
            unsafe_value(node.host.as_deref().unwrap_or(&node.name)),
        );
        let (vu_root, work_dir) = match (o.target, &o.vu_root_base) {
            (Target::Linux, Some(base)) => {
                let base = std::path::absolute(base).unwrap_or_else(|_| base.clone());
                (
                    base.join(&node.name).display().to_string(),
                    Some(
                        base.join(".extpy-work")
                            .join(&node.name)
                            .display()
                            .to_string(),
                    ),
                )
            }
            (Target::Linux, None) => (node.vu_root.to_string(), Some("/var/tmp/extpy".to_string())),
            (Target::Windows, _) => (node.vu_root.to_string(), None),
        };
        h.insert(s("extpy_vu_root"), unsafe_value(&vu_root));
        if let Some(w) = work_dir {
            h.insert(s("extpy_work_dir"), unsafe_value(&w));
        }
        h.insert(
            s("extpy_cores"),
            Yaml::Sequence(node.cores.iter().map(|c| unsafe_value(c)).collect()),
        );
        let vus = topology
            .pairs_of(&node.name)
            .map(|p| unsafe_value(&p.vu))
            .collect();
        h.insert(s("extpy_vus"), Yaml::Sequence(vus));
        hosts.insert(s(&node.name), Yaml::Mapping(h));
    }
    let mut all = Mapping::new();
    all.insert(s("vars"), Yaml::Mapping(vars));
    all.insert(s("hosts"), Yaml::Mapping(hosts));
    let mut doc = Mapping::new();
    doc.insert(s("all"), Yaml::Mapping(all));
    let header = match o.target {
        Target::Windows => {
            "# Written by extpy rollout: one host per HAC node of the topology.\n# Fill in the WinRM settings: define winrm_user and winrm_password (for example with\n# -e @winrm.yml or ansible-vault); adjust ansible_port, ansible_winrm_transport and\n# extpy_work_dir (where extpy and the bundle are copied on each node) to your site.\n"
        }
        Target::Linux => {
            "# Written by extpy rollout: one host per HAC node of the topology.\n# extpy_vu_root is each node's VU root; extpy_work_dir is where extpy and the bundle go.\n"
        }
    };
    format!(
        "{header}{}",
        serde_yaml::to_string(&Yaml::Mapping(doc))
            .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail")
    )
}

fn readme(o: &RolloutOptions) -> String {
    let extra = match o.target {
        Target::Windows => " -e @winrm.yml",
        Target::Linux => "",
    };
    format!(
        "Written by extpy rollout.\n\n\
         Check what would change (nothing is written on the nodes):\n    ansible-playbook -i inventory.yml rollout.yml --check{extra}\n\n\
         Roll out: copy extpy and the bundle to every node, verify the bundle, lay out the node's\n\
         ExternalPython VUs from it, verify them, and fetch each node's report into reports/:\n    ansible-playbook -i inventory.yml rollout.yml{extra}\n\n\
         Then see every node in one table (non-zero exit when a node failed or is missing):\n    extpy report merge .\n"
    )
}

/// The playbook, one text for both targets: `@NAME@` placeholders take the module names,
/// the executable's name and the `mode:` lines that only the builtin modules accept.
const PLAYBOOK: &str = r#"# Written by extpy rollout. On every node: copy extpy and the bundle, verify the bundle,
# lay out the node's ExternalPython VUs from it, verify them, and fetch the node's report.
# Idempotent (a second run changes nothing) and --check shows what would change.
# With extpy_watch true (extpy rollout --watch, or -e extpy_watch=true) each node whose VUs
# verify gets the drift watch (extpy watch install).
# A VU that differs from its seal is reported and left; -e extpy_repair=true replaces it.
- name: Lay out the ExternalPython VUs with extpy
  hosts: all
  gather_facts: false
  vars:
    extpy_exe: "{{ extpy_work_dir }}{{ extpy_sep }}@EXE@"
    extpy_bundle_path: "{{ extpy_work_dir }}{{ extpy_sep }}{{ extpy_bundle }}"
    extpy_report: "{{ extpy_work_dir }}{{ extpy_sep }}report.json"
    # The site's public keys (extpy rollout --trusted-key, or the topology's trusted_keys:):
    # a bundle not signed by one of them is refused on the node before anything is laid out.
    extpy_trust: "{{ extpy_trusted_keys | default([]) | map('regex_replace', '^', '--trusted-key=') | list }}"
  tasks:
    - name: Create the work folder
      @FILE@:
        path: "{{ extpy_work_dir }}"
        state: directory@MODE_DIR@
@LOCK_DOWN@
    - name: Copy extpy
      @COPY@:
        src: files/@EXE@
        dest: "{{ extpy_exe }}"@MODE_EXE@

    - name: Copy the bundle
      @COPY@:
        src: "files/{{ extpy_bundle }}"
        dest: "{{ extpy_bundle_path }}"@MODE_FILE@

    - name: Look for extpy on the node
      @STAT@:
        path: "{{ extpy_exe }}"
      register: extpy_present

    - name: Verify the bundle
      @COMMAND@:
        argv: "{{ [extpy_exe, '--no-progress', 'bundle', 'verify', extpy_bundle_path] + extpy_trust }}"
      changed_when: false
      check_mode: false
      when: extpy_present.stat.exists

    - name: Lay out this node's VUs from the bundle
      @COMMAND@:
        argv: "{{ [extpy_exe, '--json', '--no-progress', 'layout', '--bundle', extpy_bundle_path, '--node', inventory_hostname, '--vu-root', extpy_vu_root] + extpy_trust + (['--dry-run'] if ansible_check_mode else []) + (['--repair'] if extpy_repair | default(false) | bool else []) }}"
      register: extpy_layout
      changed_when: "(extpy_layout.stdout | from_json).vus | selectattr('action', 'in', ['create', 'update', 'repair']) | list | length > 0"
      failed_when: extpy_layout.rc not in [0, 3]
      check_mode: false
      when: extpy_present.stat.exists

    - name: Verify this node's VUs
      @COMMAND@:
        argv: "{{ [extpy_exe, '--json', '--no-progress', 'verify', '--bundle', extpy_bundle_path, '--node', inventory_hostname, '--vu-root', extpy_vu_root] + extpy_trust }}"
      register: extpy_verify
      changed_when: false
      failed_when: extpy_verify.rc not in [0, 3]
      check_mode: false
      when: extpy_present.stat.exists and not ansible_check_mode

    - name: Keep the report on the node
      @COPY@:
        content: "{{ extpy_verify.stdout }}\n"
        dest: "{{ extpy_report }}"@MODE_FILE@
      when: extpy_verify is not skipped

    - name: Fetch the report
      ansible.builtin.fetch:
        src: "{{ extpy_report }}"
        dest: "{{ playbook_dir }}/reports/{{ inventory_hostname }}.json"
        flat: true
      when: extpy_verify is not skipped

    - name: Every VU matches the bundle
      ansible.builtin.assert:
        that: extpy_verify.rc == 0
        fail_msg: "{{ inventory_hostname }}: some VUs do not hold the bundle's distribution; see reports/{{ inventory_hostname }}.json or run extpy report merge"
        quiet: true
      when: extpy_verify is not skipped

    # The watch's tasks run the extpy.exe and the bundle of the work folder, as SYSTEM, and
    # require the bundle to be signed by the site's keys as this play does.
    # /F replaces them with the same definition on every run: not a change.
    - name: Install the drift watch (scheduled tasks that write the event log)
      @COMMAND@:
        argv: "{{ [extpy_exe, '--no-progress', 'watch', 'install', '--bundle', extpy_bundle_path, '--node', inventory_hostname, '--vu-root', extpy_vu_root] + extpy_trust }}"
      changed_when: false
      when: extpy_watch | bool and extpy_verify is not skipped
"#;

/// On Windows the work folder would inherit `Users: create files` from C:\, so a local user
/// could plant a DLL beside the extpy.exe an administrator runs: only Administrators and
/// SYSTEM may write it, and anything extpy rollout did not put there stops the run.
const LOCK_DOWN_WINDOWS: &str = r#"
    - name: Let only Administrators and SYSTEM write the work folder, and check it
      ansible.windows.win_powershell:
        parameters:
          Path: "{{ extpy_work_dir }}"
          Bundle: "{{ extpy_bundle }}"
        script: |
          param([string]$Path, [string]$Bundle)
          $sidType = [System.Security.Principal.SecurityIdentifier]
          $admins = New-Object System.Security.Principal.SecurityIdentifier 'S-1-5-32-544'
          $system = New-Object System.Security.Principal.SecurityIdentifier 'S-1-5-18'
          $trusted = @($admins.Value, $system.Value)
          $acl = Get-Acl -LiteralPath $Path
          $others = @($acl.GetAccessRules($true, $true, $sidType) | Where-Object { $trusted -notcontains $_.IdentityReference.Value })
          $Ansible.Changed = $false
          if (-not $acl.AreAccessRulesProtected -or $others.Count -gt 0) {
            $new = New-Object System.Security.AccessControl.DirectorySecurity
            $new.SetAccessRuleProtection($true, $false)
            foreach ($sid in $admins, $system) {
              $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($sid, 'FullControl', 'ContainerInherit, ObjectInherit', 'None', 'Allow')
              $new.AddAccessRule($rule)
            }
            Set-Acl -LiteralPath $Path -AclObject $new
            $Ansible.Changed = $true
          }
          $writers = @((Get-Acl -LiteralPath $Path).GetAccessRules($true, $true, $sidType) | Where-Object { $_.AccessControlType -eq 'Allow' -and $trusted -notcontains $_.IdentityReference.Value })
          if ($writers.Count -gt 0) {
            throw "$Path can still be used by $(($writers | ForEach-Object { $_.IdentityReference.Value }) -join ', '): extpy.exe must not run from a folder others can write"
          }
          $planted = @(Get-ChildItem -LiteralPath $Path -Force | Where-Object { @('extpy.exe', $Bundle, 'report.json') -notcontains $_.Name })
          if ($planted.Count -gt 0) {
            throw "$Path holds $(($planted | ForEach-Object { $_.Name }) -join ', '), which extpy rollout did not put there: a DLL beside extpy.exe would run with administrator rights; remove them, find out who put them there, then run again"
          }
"#;

/// The playbook for `target`.
fn playbook(target: Target) -> String {
    let mode = |m: &str| format!("\n        mode: \"{m}\"");
    let (file, copy, stat, command, exe, dir, exe_mode, file_mode) = match target {
        Target::Linux => (
            "ansible.builtin.file",
            "ansible.builtin.copy",
            "ansible.builtin.stat",
            "ansible.builtin.command",
            "extpy",
            mode("0755"),
            mode("0755"),
            mode("0644"),
        ),
        Target::Windows => (
            "ansible.windows.win_file",
            "ansible.windows.win_copy",
            "ansible.windows.win_stat",
            "ansible.windows.win_command",
            "extpy.exe",
            String::new(),
            String::new(),
            String::new(),
        ),
    };
    PLAYBOOK
        .replace("@FILE@", file)
        .replace("@COPY@", copy)
        .replace("@STAT@", stat)
        .replace("@COMMAND@", command)
        .replace("@EXE@", exe)
        .replace("@MODE_DIR@", &dir)
        .replace(
            "@LOCK_DOWN@",
            match target {
                Target::Windows => LOCK_DOWN_WINDOWS,
                Target::Linux => "",
            },
        )
        .replace("@MODE_EXE@", &exe_mode)
        .replace("@MODE_FILE@", &file_mode)
}

/// One VU in the merged report.
#[derive(Debug, Clone, Serialize)]
pub struct MergedRow {
    /// The node.
    pub node: String,
    /// The VU.
    pub vu: String,
    /// Its core.
    pub core: String,
    /// What the node's report says of it.
    pub status: VuStatus,
    /// The seal digest found.
    pub seal_digest: Option<String>,
}

/// A VU's state in the merged report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VuStatus {
    /// It holds the distribution, matching its seal.
    Ok,
    /// No distribution in the VU folder.
    Missing,
    /// It differs from its seal.
    Differs,
    /// It matches its own seal, but not the seal the bundle produces (rewritten with its seal).
    Resealed,
    /// It holds another manifest's distribution.
    Outdated,
    /// It holds files without a seal.
    Foreign,
    /// The report says something this extpy does not know.
    Unknown,
    /// The node sent no report.
    #[serde(rename = "no report")]
    NoReport,
}

impl VuStatus {
    /// The word the table shows (upper case when it failed).
    fn shown(self) -> &'static str {
        match self {
            VuStatus::Ok => "ok",
            VuStatus::Missing => "MISSING",
            VuStatus::Differs => "DIFFERS",
            VuStatus::Resealed => "RESEALED",
            VuStatus::Outdated => "OUTDATED",
            VuStatus::Foreign => "FOREIGN",
            VuStatus::Unknown => "UNKNOWN",
            VuStatus::NoReport => "NO REPORT",
        }
    }
}

/// The part of an `extpy verify --json` report that merging reads.
#[derive(Deserialize)]
struct VerifyDoc {
    vus: Option<Vec<VuDoc>>,
    #[serde(default)]
    expected_seal_digest: Option<String>,
}

/// One VU of a verify report.
#[derive(Deserialize)]
struct VuDoc {
    #[serde(default)]
    node: String,
    #[serde(default)]
    vu: String,
    #[serde(default)]
    core: String,
    #[serde(default)]
    found: Option<FoundDoc>,
    #[serde(default)]
    seal_digest: Option<String>,
}

/// What the VU folder held (`layout::Found`, as its JSON says).
#[derive(Deserialize)]
struct FoundDoc {
    #[serde(default)]
    state: Option<FoundState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FoundState {
    Matches,
    Absent,
    Damaged,
    Resealed,
    Outdated,
    Foreign,
    #[serde(other)]
    Other,
}

/// The merged report.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    /// Every VU of every node.
    pub rows: Vec<MergedRow>,
    /// Nodes whose report is missing.
    pub missing_nodes: Vec<String>,
    /// Report files that could not be read.
    pub unreadable: Vec<String>,
    /// The seal the bundle produces, as each report states it (one, unless nodes verified
    /// against different bundles).
    pub expected_seal_digests: Vec<String>,
    /// True when every VU is ok and no node is missing.
    pub ok: bool,
}

/// Why reports could not be merged.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct MergeError {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Merges the `*.json` reports found in `dirs` (a rollout project folder holds them in
/// `reports/`); with a topology (given, or the project's `topology.yaml`), a node without a
/// report counts as failed.
pub fn merge(dirs: &[PathBuf], topology: Option<&Topology>) -> Result<Merged, MergeError> {
    let mut files = Vec::new();
    for d in dirs {
        let folder = if d.join("reports").is_dir() {
            d.join("reports")
        } else {
            d.clone()
        };
        let rd = fs::read_dir(&folder).map_err(|e| MergeError {
            path: folder.clone(),
            reason: format!("cannot read the folder: {e}"),
        })?;
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut rows: Vec<MergedRow> = Vec::new();
    let mut unreadable = Vec::new();
    let mut seen_nodes: BTreeMap<String, ()> = BTreeMap::new();
    let mut expected_seal_digests: Vec<String> = Vec::new();
    for f in &files {
        let doc: VerifyDoc =
            match crate::mechanism::limits::read_regular(f, crate::mechanism::limits::MAX_JSON)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(d) => d,
                None => {
                    unreadable.push(f.display().to_string());
                    continue;
                }
            };
        let Some(vus) = doc.vus else {
            unreadable.push(format!(
                "{} (not an `extpy verify --json` report)",
                f.display()
            ));
            continue;
        };
        if let Some(d) = &doc.expected_seal_digest
            && !expected_seal_digests.contains(d)
        {
            expected_seal_digests.push(d.clone());
        }
        for v in vus {
            seen_nodes.insert(v.node.clone(), ());
            let status = match v.found.and_then(|f| f.state) {
                // A report that says "matches" with a seal other than the one it expected
                // was not written by extpy verify as it stands.
                Some(FoundState::Matches)
                    if doc.expected_seal_digest.is_some()
                        && v.seal_digest != doc.expected_seal_digest =>
                {
                    VuStatus::Resealed
                }
                Some(FoundState::Matches) => VuStatus::Ok,
                Some(FoundState::Absent) => VuStatus::Missing,
                Some(FoundState::Damaged) => VuStatus::Differs,
                Some(FoundState::Resealed) => VuStatus::Resealed,
                Some(FoundState::Outdated) => VuStatus::Outdated,
                Some(FoundState::Foreign) => VuStatus::Foreign,
                Some(FoundState::Other) | None => VuStatus::Unknown,
            };
            rows.push(MergedRow {
                node: v.node,
                vu: v.vu,
                core: v.core,
                status,
                seal_digest: v.seal_digest,
            });
        }
    }
    let mut missing_nodes = Vec::new();
    if let Some(t) = topology {
        for n in &t.nodes {
            if !seen_nodes.contains_key(&n.name) {
                missing_nodes.push(n.name.clone());
                for p in t.pairs_of(&n.name) {
                    rows.push(MergedRow {
                        node: n.name.clone(),
                        vu: p.vu.clone(),
                        core: p.core.clone(),
                        status: VuStatus::NoReport,
                        seal_digest: None,
                    });
                }
            }
        }
        let order: BTreeMap<&str, usize> = t
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.vu.as_str(), i))
            .collect();
        rows.sort_by_key(|r| order.get(r.vu.as_str()).copied().unwrap_or(usize::MAX));
    }
    let ok = unreadable.is_empty()
        && missing_nodes.is_empty()
        && expected_seal_digests.len() <= 1
        && !rows.is_empty()
        && rows.iter().all(|r| r.status == VuStatus::Ok);
    Ok(Merged {
        rows,
        missing_nodes,
        unreadable,
        expected_seal_digests,
        ok,
    })
}

impl Merged {
    /// The table and a verdict line.
    pub fn render(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.node.clone(),
                    r.vu.clone(),
                    r.core.clone(),
                    r.status.shown().to_string(),
                    r.seal_digest
                        .as_deref()
                        .map(|d| d[..12.min(d.len())].to_string())
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let mut out = render_table(&["node", "VU", "core", "status", "seal"], &rows);
        for n in &self.missing_nodes {
            out.push_str(&format!(
                "node {n}: no report (did the playbook reach it?)\n"
            ));
        }
        for u in &self.unreadable {
            out.push_str(&format!("cannot read the report {u}\n"));
        }
        if self.expected_seal_digests.len() > 1 {
            out.push_str(&format!(
                "the nodes verified against different seals ({}): they were given different bundles\n",
                self.expected_seal_digests.join(", ")
            ));
        }
        let bad = self
            .rows
            .iter()
            .filter(|r| r.status != VuStatus::Ok)
            .count();
        if self.ok {
            out.push_str(&format!(
                "all {} match the seal the bundle produces\n",
                plural(self.rows.len(), "VU")
            ));
        } else {
            out.push_str(&format!("{} of {} VUs failed\n", bad, self.rows.len()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_gets_its_modules_and_no_placeholder_is_left() {
        let linux = playbook(Target::Linux);
        let windows = playbook(Target::Windows);
        for p in [&linux, &windows] {
            // Placeholders are @NAME@; PowerShell's @(...) arrays are not.
            let left = p.match_indices('@').find_map(|(i, _)| {
                let rest = &p[i + 1..];
                let name = rest.split('@').next().filter(|n| rest.len() > n.len())?;
                (!name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
                    .then_some(name)
            });
            assert!(left.is_none(), "a placeholder is left: {left:?}\n{p}");
        }
        assert!(linux.contains("ansible.builtin.copy:") && !linux.contains("ansible.windows"));
        assert!(linux.contains("src: files/extpy\n") && linux.contains("mode: \"0755\""));
        assert!(
            windows.contains("ansible.windows.win_command:")
                && windows.contains("src: files/extpy.exe")
        );
        assert!(
            !windows.contains("\n        mode:"),
            "win_copy takes no mode"
        );
        assert!(
            !windows.contains("ansible.builtin.copy")
                && !windows.contains("ansible.builtin.command")
        );
    }

    #[test]
    fn the_windows_work_folder_is_for_administrators_only() {
        let windows = playbook(Target::Windows);
        let lock = windows
            .find("Let only Administrators and SYSTEM write the work folder")
            .expect("the lock-down task");
        assert!(
            lock < windows.find("- name: Copy extpy").unwrap(),
            "before extpy is copied"
        );
        for needed in [
            "SetAccessRuleProtection($true, $false)",
            "'S-1-5-32-544'",
            "'S-1-5-18'",
            "which extpy rollout did not put there",
            "can still be used by",
        ] {
            assert!(windows.contains(needed), "{needed}");
        }
        assert!(!windows.contains("{{ $"), "no Jinja in the script");
        assert!(!playbook(Target::Linux).contains("win_powershell"));
        assert!(!windows.contains("@LOCK_DOWN@"));
    }

    #[test]
    fn inventory_hosts_are_plain_names() {
        assert!(check_inventory_host("HAC-1.site_a").is_ok());
        for bad in ["{{ x }}", "a,b", "a:b", "all[0]", "~re", ""] {
            assert!(check_inventory_host(bad).is_err(), "{bad}");
        }
    }
}

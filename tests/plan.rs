//! `extpy plan`: the runbook in every format, for the example topology and a larger one,
//! with the SC e-mail settings validated and secrets never shown.

#[path = "plan/browser.rs"]
mod browser;
#[path = "plan/upgrade.rs"]
mod upgrade;

use std::fs;
use std::path::Path;

use support::{Run, assert_snapshot, extpy, run};

const THREE_NODES: &str = r#"schema: 1
system: Contact Center North
manifest: python-3.12-win-amd64.yaml
nodes:
  - name: HAC1
    host: hac1.north.example.com
    vu_root: 'D:\SCP\vu'
    cores: [Core1, Core2]
  - name: HAC2
    host: hac2.north.example.com
    vu_root: 'D:\SCP\vu'
    cores: [Core3, Core4]
  - name: HAC3
    vu_root: 'E:\Contact Center\vu'
    cores: [Core5, { core: CoreSpare, vu: ExternalPython6 }]
mail:
  incoming:
    - name: M365 Service
      tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301
      auth: oauth_service
      client_id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8
      secret_env: EXTPY_TEST_CLIENT_SECRET
      protocol: graph
    - name: M365 Users
      tenant: contoso.example.com
      auth: oauth_user
      client_id: 6ba7b811-9dad-11d1-80b4-00c04fd430c8
  outgoing:
    tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301
    auth: oauth_service
    server_user: 6ba7b812-9dad-11d1-80b4-00c04fd430c8
    password_env: EXTPY_TEST_OUTGOING_SECRET
    protocol: smtp
  queues:
    - address: support@contoso.example.com
      account: support@contoso.example.com
      server: M365 Service
    - address: sales@contoso.example.com
      account: sales@contoso.example.com
      password_env: EXTPY_TEST_SALES_PASSWORD
      server: M365 Users
"#;

/// A folder with the shipped manifest and the example topology, plus the 3-node one.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    for f in ["python-3.12-win-amd64.yaml", "topology.example.yaml"] {
        fs::copy(repo.join(f), dir.path().join(f)).unwrap();
    }
    fs::write(dir.path().join("north.yaml"), THREE_NODES).unwrap();
    dir
}

fn plan(dir: &Path, args: &[&str]) -> Run {
    let mut c = extpy();
    c.current_dir(dir).arg("plan").args(args);
    run(c)
}

#[test]
fn example_topology_snapshots_in_every_format() {
    let dir = workspace();
    for (format, ext) in [
        ("markdown", "md"),
        ("json", "json"),
        ("yaml", "yaml"),
        ("html", "html"),
    ] {
        let r = plan(dir.path(), &["topology.example.yaml", "--format", format]).ok();
        // Windows PowerShell 5.1 mangles anything else when it captures or redirects.
        assert!(r.stdout.is_ascii(), "{format} is ASCII");
        assert_snapshot(&format!("plan-example.{ext}"), &r.stdout);
    }
}

#[test]
fn three_node_topology_snapshots_in_every_format() {
    let dir = workspace();
    for (format, ext) in [
        ("markdown", "md"),
        ("json", "json"),
        ("yaml", "yaml"),
        ("html", "html"),
    ] {
        let r = plan(dir.path(), &["north.yaml", "--format", format]).ok();
        assert!(r.stdout.is_ascii(), "{format} is ASCII");
        assert_snapshot(&format!("plan-north.{ext}"), &r.stdout);
    }
}

#[test]
fn the_checklist_names_every_vu_node_and_value_in_order() {
    let dir = workspace();
    let md = plan(dir.path(), &["north.yaml"]).ok().stdout;
    let boxes = md.matches("- [ ] **").count();
    assert!(boxes > 20, "{boxes} steps");
    for vu in 1..=6 {
        assert!(
            md.contains(&format!("Create ExternalPython{vu} on")),
            "ExternalPython{vu}"
        );
    }
    assert!(md.contains("Create ExternalPython6 on HAC3 for CoreSpare"));
    assert!(md.contains("| CoreSpare | HAC3 | ExternalPython6 | `E:\\Contact Center\\vu\\ExternalPython6\\Python\\External` |"), "{md}");
    // The procedure's order.
    let order = [
        "prepare.certificates",
        "prepare.build",
        "ia.refresh-hosts",
        "ia.create-vu.externalpython1",
        "verify.copy.hac1",
        "ia.purge-variables.core1",
        "upgrade.continue",
        "ia.external-python-directory",
        "ia.synchronize",
        "ia.apply.hac1",
        "ia.activate-vus",
        "ia.save-model",
        "ia.monitoring-mode",
        "sc.incoming.m365-service",
        "sc.outgoing",
        "sc.queue.support-contoso-example-com",
        "verify.final",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|id| {
            md.find(&format!("`{id}`"))
                .unwrap_or_else(|| panic!("{id} missing"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "steps out of order: {positions:?}"
    );
    assert!(md.contains("Every instance must be Active or Spare before the model is saved."));
    assert!(md.contains("extpy verify --topology north.yaml --node HAC3"));
    assert!(md.contains("https://login.microsoftonline.com/3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
}

#[test]
fn json_escapes_what_is_not_ascii_and_markdown_keeps_the_users_text() {
    let dir = workspace();
    let topo = THREE_NODES.replacen("system: ", "system: Z\u{fc}rich ", 1);
    assert_ne!(topo, THREE_NODES);
    fs::write(dir.path().join("zurich.yaml"), topo).unwrap();
    let r = plan(dir.path(), &["zurich.yaml", "--json"]).ok();
    assert!(r.stdout.is_ascii(), "{}", r.stdout);
    assert!(r.stdout.contains(r"Z\u00fcrich"), "{}", r.stdout);
    assert!(
        r.json()["system"]
            .as_str()
            .unwrap()
            .starts_with("Z\u{fc}rich ")
    );
    let md = plan(dir.path(), &["zurich.yaml"]).ok().stdout;
    assert!(
        md.contains("Z\u{fc}rich "),
        "data from the user's own file, as written"
    );
}

#[test]
fn json_lists_the_same_steps_and_parses() {
    let dir = workspace();
    let md = plan(dir.path(), &["north.yaml"]).ok().stdout;
    let doc = plan(dir.path(), &["north.yaml", "--format", "json"])
        .ok()
        .json();
    assert_eq!(doc["schema"], "extpy-plan/1");
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), md.matches("- [ ] **").count());
    for s in steps {
        let id = s["id"].as_str().unwrap();
        assert!(md.contains(&format!("`{id}`")), "{id}");
        for key in [
            "phase",
            "actor",
            "title",
            "instruction",
            "commands",
            "table",
            "check",
            "warnings",
        ] {
            assert!(s.get(key).is_some(), "{id} lacks {key}");
        }
    }
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "step ids are unique");
    assert_eq!(doc["pairs"].as_array().unwrap().len(), 6);
    // --json gives the same plan as one document with command and ok.
    let same = plan(dir.path(), &["north.yaml", "--json"]).ok().json();
    assert_eq!(same["command"], "plan");
    assert_eq!(same["ok"], true);
    assert_eq!(same["steps"], doc["steps"]);
    assert_eq!(same["pairs"], doc["pairs"]);
}

#[test]
fn html_is_one_well_formed_self_contained_page() {
    let dir = workspace();
    let html = plan(dir.path(), &["north.yaml", "--format", "html"])
        .ok()
        .stdout;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<html").count(), 1);
    for external in [
        "<link",
        "<script ",
        "src=",
        "@import",
        "url(",
        "href=\"http",
    ] {
        assert!(!html.contains(external), "external asset: {external}");
    }
    assert_eq!(html.matches("<script>").count(), 1, "one inline script");
    check_well_formed(&html);
    assert_eq!(
        html.matches("type=\"checkbox\"").count(),
        html.matches("class=\"step\"").count()
    );
}

/// Every element is closed in order (void elements excepted) and every attribute quoted.
fn check_well_formed(html: &str) {
    const VOID: &[&str] = &["meta", "input", "br", "hr", "img"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html.strip_prefix("<!DOCTYPE html>").unwrap();
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let attrs = &tag[name.len()..];
        let unquoted = attrs
            .split_whitespace()
            .filter(|a| a.contains('='))
            .find(|a| {
                let v = a.split_once('=').unwrap().1;
                !(v.starts_with('"'))
            });
        assert!(unquoted.is_none(), "unquoted attribute in <{tag}>");
        if !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
            stack.push(name);
        }
        for raw in ["style", "script"] {
            if stack.last().is_some_and(|t| t == raw) {
                let close = rest.find(&format!("</{raw}>")).expect("raw text closed");
                rest = &rest[close..];
            }
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn secrets_never_appear_in_any_output() {
    let dir = workspace();
    let secrets = [
        ("EXTPY_TEST_CLIENT_SECRET", "client-s3cr3t-9f8e7d"),
        ("EXTPY_TEST_OUTGOING_SECRET", "outgoing-s3cr3t-1a2b3c"),
        ("EXTPY_TEST_SALES_PASSWORD", "sales-p4ssw0rd-4d5e6f"),
    ];
    for format in ["markdown", "json", "yaml", "html"] {
        let mut c = extpy();
        c.current_dir(dir.path())
            .args(["plan", "north.yaml", "--format", format]);
        for (k, v) in secrets {
            c.env(k, v);
        }
        let r = run(c).ok();
        for (k, v) in secrets {
            assert!(
                !r.stdout.contains(v) && !r.stderr.contains(v),
                "{format} shows the value of {k}"
            );
            assert!(r.stdout.contains(k), "{format} names the variable {k}");
        }
        let out = dir.path().join(format!("plan.{format}"));
        let mut c = extpy();
        c.current_dir(dir.path())
            .args(["plan", "north.yaml", "--format", format, "--out"])
            .arg(&out);
        for (k, v) in secrets {
            c.env(k, v);
        }
        run(c).ok();
        let written = fs::read_to_string(&out).unwrap();
        assert!(secrets.iter().all(|(_, v)| !written.contains(v)));
    }
}

fn mail_error(block: &str) -> Run {
    let dir = workspace();
    let text = format!(
        "{}mail:\n{block}",
        THREE_NODES.split("mail:\n").next().unwrap()
    );
    fs::write(dir.path().join("bad.yaml"), text).unwrap();
    plan(dir.path(), &["bad.yaml"]).code(2)
}

const GUID: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

#[test]
fn every_mail_validation_error() {
    let incoming = |extra: &str| {
        format!(
            "  incoming:\n    - name: In\n      tenant: {GUID}\n      auth: oauth_user\n      client_id: {GUID}\n{extra}"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "  incoming:\n    - name: In\n      tenant: not a tenant\n      auth: oauth_user\n      client_id: {GUID}\n"
            ),
            "bad.yaml:19: mail.incoming[0].tenant: \"not a tenant\" is neither a tenant ID (GUID) nor a domain",
        ),
        (
            format!(
                "  incoming:\n    - name: In\n      tenant: {GUID}\n      auth: oauth_user\n      client_id: 12345\n"
            ),
            "mail.incoming[0].client_id: \"12345\" is not a client ID",
        ),
        (
            format!(
                "  incoming:\n    - name: In\n      tenant: {GUID}\n      auth: oauth_service\n      client_id: {GUID}\n"
            ),
            "uses OAuth Service, which needs a client secret",
        ),
        (
            incoming("      secret: hunter2\n"),
            "mail.incoming[0].secret: a secret must not be written in the topology file",
        ),
        (
            incoming("      secret_env: not a name\n"),
            "\"not a name\" is not an environment variable name",
        ),
        (
            format!(
                "  incoming:\n    - name: In\n      tenant: {GUID}\n      auth: oauth_basic\n      client_id: {GUID}\n"
            ),
            "unknown variant `oauth_basic`",
        ),
        (
            format!(
                "{}  outgoing:\n    tenant: {GUID}\n    auth: oauth_user\n    server_user: someone\n",
                incoming("")
            ),
            "mail.outgoing.server_user: \"someone\" is not a server user ID (a GUID)",
        ),
        (
            format!(
                "{}  outgoing:\n    tenant: {GUID}\n    auth: oauth_user\n    server_user: {GUID}\n    password: hunter2\n",
                incoming("")
            ),
            "mail.outgoing.password: a secret must not be written",
        ),
        (
            format!(
                "{}  outgoing:\n    tenant: {GUID}\n    auth: oauth_service\n    server_user: {GUID}\n",
                incoming("")
            ),
            "the outgoing server uses OAuth Service, which needs a secret",
        ),
        (
            format!(
                "{}  queues:\n    - address: support-at-contoso\n      account: support@contoso.example.com\n      server: In\n",
                incoming("")
            ),
            "mail.queues[0].address: \"support-at-contoso\" is not an e-mail address",
        ),
        (
            format!(
                "{}  queues:\n    - address: support@contoso.example.com\n      account: support\n      server: In\n",
                incoming("")
            ),
            "\"support\" is not a mailbox account",
        ),
        (
            format!(
                "{}  queues:\n    - address: support@contoso.example.com\n      account: support@contoso.example.com\n      server: Elsewhere\n",
                incoming("")
            ),
            "reads from \"Elsewhere\", which is not an incoming server here (known: In)",
        ),
        (
            format!(
                "{}  queues:\n    - address: support@contoso.example.com\n      account: support@contoso.example.com\n      password: hunter2\n      server: In\n",
                incoming("")
            ),
            "mail.queues[0].password: a secret must not be written",
        ),
    ];
    for (block, needle) in cases {
        let r = mail_error(&block);
        assert!(
            r.stderr.contains(needle),
            "expected {needle:?} in:\n{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("hunter2"),
            "the error must not echo a secret"
        );
    }
}

#[test]
fn a_domain_tenant_is_accepted_with_a_warning() {
    let dir = workspace();
    let r = plan(dir.path(), &["north.yaml"]).ok();
    assert!(
        r.stderr.contains(
            "tenant \"contoso.example.com\" is a domain; SC's server address asks for the tenant ID"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("is a domain; SC"),
        "the plan lists it too"
    );
}

#[test]
fn out_writes_the_file_atomically() {
    let dir = workspace();
    let out = dir.path().join("runbook.html");
    let r = plan(
        dir.path(),
        &[
            "topology.example.yaml",
            "--format",
            "html",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("plan written to"), "{}", r.stderr);
    assert!(
        fs::read_to_string(&out)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("extpy-tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

/// A saved `extpy doctor --json` of a mirror behind an unknown CA (which the server sends).
fn failing_doctor_report(dir: &Path) -> (std::path::PathBuf, support::mirror::Mirror, support::Ca) {
    let ca = support::Ca::root("Branch Office Proxy CA");
    let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
    let mirror = support::mirror::Mirror::start(Some(leaf.server_config(&[&ca.der])));
    let mut c = extpy();
    c.args(["--json", "doctor", &format!("{}/simple/", mirror.url())]);
    let r = run(c).code(4);
    let report = dir.join("doctor.json");
    fs::write(&report, &r.stdout).unwrap();
    (report, mirror, ca)
}

#[test]
fn a_failed_host_in_a_doctor_report_adds_the_remediation_step() {
    let dir = workspace();
    let (_report, mirror, ca) = failing_doctor_report(dir.path());
    let host = format!("127.0.0.1:{}", mirror.addr.port());
    let md = plan(
        dir.path(),
        &["topology.example.yaml", "--doctor-report", "doctor.json"],
    )
    .ok()
    .stdout;
    assert!(
        md.contains("Checked (doctor.json): 0 of 1 hosts trusted."),
        "{md}"
    );
    let trust_id = format!("`prepare.trust.127-0-0-1-{}`", mirror.addr.port());
    // The same report as Windows PowerShell 5.1 `>` writes it: UTF-16 with a BOM, CRLF.
    let text = fs::read_to_string(dir.path().join("doctor.json")).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        text.replace('\n', "\r\n")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    fs::write(dir.path().join("doctor16.json"), utf16).unwrap();
    let md16 = plan(
        dir.path(),
        &["topology.example.yaml", "--doctor-report", "doctor16.json"],
    )
    .ok()
    .stdout;
    assert!(md16.contains("Checked (doctor16.json): 0 of 1 hosts trusted."));
    assert!(md16.contains(&trust_id), "{md16}");
    let trust = md
        .find(&trust_id)
        .unwrap_or_else(|| panic!("no remediation step:\n{md}"));
    assert!(
        trust < md.find("`prepare.build`").unwrap(),
        "the remediation comes before the download"
    );
    assert!(
        md.contains(&format!(
            "Trust the root certificate \"Branch Office Proxy CA\" for {host}"
        )),
        "{md}"
    );
    assert!(
        md.contains(&ca.sha256()),
        "the fingerprint to compare is in the plan"
    );
    assert!(
        md.contains("Import-Certificate -FilePath \"C:\\extpy-roots\\Branch-Office-Proxy-CA.cer\""),
        "{md}"
    );
    let doc = plan(
        dir.path(),
        &[
            "topology.example.yaml",
            "--doctor-report",
            "doctor.json",
            "--format",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(doc["certificates"]["status"], "checked");
    assert_eq!(doc["certificates"]["hosts"][0]["ok"], false);
    assert_eq!(
        doc["certificates"]["hosts"][0]["trust"]["sha256_fingerprint"],
        ca.sha256()
    );
}

#[test]
fn doctor_live_with_a_trusted_mirror_adds_no_remediation() {
    let w = support::World::new();
    let topo = w.path("t.yaml");
    fs::write(
        &topo,
        "schema: 1\nnodes:\n  - name: N\n    vu_root: 'D:\\vu'\n    cores: [Core1]\n",
    )
    .unwrap();
    let r = w
        .run(&[
            "plan",
            topo.to_str().unwrap(),
            "--doctor",
            "--format",
            "json",
        ])
        .ok();
    let doc = r.json();
    assert_eq!(doc["certificates"]["source"], "live (extpy doctor)");
    let hosts = doc["certificates"]["hosts"].as_array().unwrap();
    assert!(!hosts.is_empty());
    assert!(hosts.iter().all(|h| h["ok"] == true), "{hosts:?}");
    assert!(
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s["id"].as_str().unwrap().starts_with("prepare.trust"))
    );
}

#[test]
fn a_doctor_report_that_is_not_one_is_an_input_error() {
    let dir = workspace();
    fs::write(dir.path().join("nope.json"), "{\"hello\": 1}").unwrap();
    let r = plan(
        dir.path(),
        &["topology.example.yaml", "--doctor-report", "nope.json"],
    )
    .code(2);
    assert!(
        r.stderr.contains("nope.json: it has no `hosts` list"),
        "{}",
        r.stderr
    );
    fs::write(dir.path().join("broken.json"), "{").unwrap();
    let r = plan(
        dir.path(),
        &["topology.example.yaml", "--doctor-report", "broken.json"],
    )
    .code(2);
    assert!(
        r.stderr
            .contains("not a saved `extpy doctor --json` report"),
        "{}",
        r.stderr
    );
}

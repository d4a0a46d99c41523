//! The HTML runbook in a real browser: Debian's `chromium`, headless. A screenshot and an A4 PDF
//! of the example and of the 3-node 6-core topology are written to `target/tmp/runbook/`; the
//! page is then driven through the DevTools protocol (`--remote-debugging-pipe`) to show that a
//! tick survives a reload under the plan's digest, and that at A4 print width no table is wider
//! than the page, no External Python Directory wraps and no raw backtick is left in the text.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{THREE_NODES, plan, workspace};

/// The browser to drive: `EXTPY_TEST_CHROMIUM`, else `chromium` on PATH.
fn chromium() -> String {
    std::env::var("EXTPY_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Flags every headless run takes: root (CI, containers) needs --no-sandbox.
const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
];

/// A4 at 96 CSS px per inch: 210 mm less the page's 13 mm side margins (the `@page` rule).
const A4_PRINT_WIDTH_PX: u32 = 695;

/// Runs chromium once with `args` and a fresh profile; panics with its output when it fails.
fn chromium_once(profile: &Path, args: &[String]) {
    let out = Command::new(chromium())
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}\nhelp: scripts/test.sh installs Debian's chromium (apt-get install chromium)",
                chromium()
            )
        });
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The width and height a PNG file declares (IHDR).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

/// The page boxes of a PDF chromium wrote: one `/MediaBox` per page, as (width, height) in
/// points. Skia writes the page dictionaries uncompressed.
fn pdf_pages(pdf: &[u8]) -> Vec<(f64, f64)> {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let text = String::from_utf8_lossy(pdf);
    let pages = text
        .match_indices("/Type /Page")
        .filter(|(i, m)| !text[i + m.len()..].starts_with('s'))
        .count();
    let boxes: Vec<(f64, f64)> = text
        .match_indices("/MediaBox [")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let nums: Vec<f64> = rest[..rest.find(']').unwrap()]
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            (nums[2] - nums[0], nums[3] - nums[1])
        })
        .collect();
    assert_eq!(boxes.len(), pages, "one MediaBox per page");
    boxes
}

/// A headless chromium driven through the DevTools protocol over its pipe (fd 3 in, fd 4 out;
/// the shell wires them to our stdin/stdout pipes, so no unsafe code is needed).
struct Browser {
    child: Child,
    to: ChildStdin,
    from: Receiver<Value>,
    next_id: u64,
    session: String,
    log: PathBuf,
}

impl Browser {
    fn start(profile: &Path, log: PathBuf) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>&2")
            .arg(chromium())
            .args(HEADLESS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let to = child.stdin.take().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let (tx, from) = channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            while reader.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop();
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        let mut b = Self {
            child,
            to,
            from,
            next_id: 0,
            session: String::new(),
            log,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b
    }

    /// Sends one command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        self.to.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.from.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "no answer to {method} ({e}); chromium said:\n{}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                )
            });
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until a new document (not the one marked before) has loaded.
    fn wait_loaded(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval("!window.__extpyOld && document.readyState === 'complete'") != json!(true) {
            assert!(Instant::now() < deadline, "the page did not load");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn open(&mut self, url: &str) {
        self.eval("window.__extpyOld = true");
        self.call("Page.navigate", json!({"url": url}));
        self.wait_loaded();
    }

    fn reload(&mut self) {
        self.eval("window.__extpyOld = true");
        self.call("Page.reload", json!({}));
        self.wait_loaded();
    }
}

impl Browser {
    /// What the page says about its ticks ([`TICKS`]).
    fn ticks(&mut self) -> Value {
        serde_json::from_str(self.eval(TICKS).as_str().unwrap()).unwrap()
    }

    /// The page writes local storage at once, but chromium hands the write from the page's
    /// process to the browser's asynchronously; on a loaded machine an immediate reload can
    /// overtake it. So reload until the expected ticks show, for at most 10 seconds: ticks
    /// that never persist still fail.
    fn reload_until(&mut self, checked: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.reload();
            let t = self.ticks();
            if t["checked"] == checked || Instant::now() > deadline {
                assert_eq!(t["checked"], checked, "after a reload");
                return t;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    /// Closes the browser (all its processes), or kills it after five seconds.
    fn drop(&mut self) {
        self.session.clear();
        self.next_id += 1;
        let close = json!({"id": self.next_id, "method": "Browser.close"});
        let mut bytes = serde_json::to_vec(&close).unwrap();
        bytes.push(0);
        let _ = self.to.write_all(&bytes);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the page says about its ticks: the checked step ids, the progress line, and the
/// local-storage value under `key`.
const TICKS: &str = "JSON.stringify({
  checked: Array.from(document.querySelectorAll('.step input:checked')).map(b => b.id),
  done: Array.from(document.querySelectorAll('.step.done')).map(s => s.querySelector('input').id),
  progress: document.getElementById('progress').textContent,
  digest: document.body.getAttribute('data-plan'),
  stored: localStorage.getItem('extpy-runbook:' + document.body.getAttribute('data-plan'))
})";

/// Layout at the page's print width, in print media: tables and blocks wider than the page,
/// External Python Directory values on more than one line or allowed to wrap, raw backticks.
const PRINT_LAYOUT: &str = "JSON.stringify((() => {
  const width = document.documentElement.clientWidth;
  const wide = Array.from(document.querySelectorAll('table, pre, .step, p'))
    .filter(e => e.getBoundingClientRect().right > width + 0.5 || e.scrollWidth > e.clientWidth + 1)
    .map(e => e.tagName + ': ' + e.textContent.slice(0, 60));
  const paths = Array.from(document.querySelectorAll('.path'));
  const wrapped = paths
    .filter(e => getComputedStyle(e).whiteSpace !== 'nowrap' || e.getClientRects().length !== 1)
    .map(e => e.textContent);
  const box = document.querySelector('.step input');
  const boxStyle = getComputedStyle(box);
  return {
    width,
    media: matchMedia('print').matches,
    tables: document.querySelectorAll('table').length,
    wide,
    paths: paths.map(e => e.textContent),
    wrapped,
    backticks: document.body.innerText.split('`').length - 1,
    text: document.body.innerText,
    codeInCertificates: document.querySelectorAll('h2 + p code').length,
    box: {appearance: boxStyle.appearance, border: boxStyle.borderTopWidth, adjust: boxStyle.printColorAdjust},
  };
})())";

struct Page {
    name: &'static str,
    topology: &'static str,
    pairs: usize,
    pages: std::ops::RangeInclusive<usize>,
}

#[test]
#[ignore = "needs Debian's chromium; scripts/test.sh installs it and runs this test"]
fn the_html_runbook_prints_on_a4_and_keeps_its_ticks_in_chromium() {
    let dir = workspace();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runbook");
    fs::create_dir_all(&out).unwrap();
    let pages = [
        // Two cores on one node: the header, the certificates and 16 steps.
        Page {
            name: "example",
            topology: "topology.example.yaml",
            pairs: 2,
            pages: 3..=5,
        },
        // Three nodes, six cores and the SC mail steps: 34 steps.
        Page {
            name: "north",
            topology: "north.yaml",
            pairs: 6,
            pages: 5..=9,
        },
    ];
    assert!(THREE_NODES.contains("HAC3"));
    let mut urls = Vec::new();
    for p in &pages {
        let html = out.join(format!("{}.html", p.name));
        plan(
            dir.path(),
            &[
                p.topology,
                "--format",
                "html",
                "--out",
                html.to_str().unwrap(),
            ],
        )
        .ok();
        let json = plan(dir.path(), &[p.topology, "--format", "json"])
            .ok()
            .stdout;
        let digest: String = Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let url = format!("file://{}", html.display());

        let png = out.join(format!("{}.png", p.name));
        let pdf = out.join(format!("{}.pdf", p.name));
        let _ = fs::remove_file(&png);
        let _ = fs::remove_file(&pdf);
        // A profile per run: a second run on the same profile could hand its work to the
        // first one while that one is still exiting.
        chromium_once(
            tempfile::tempdir().unwrap().path(),
            &[
                "--window-size=1000,1300".into(),
                format!("--screenshot={}", png.display()),
                url.clone(),
            ],
        );
        assert_eq!(png_size(&fs::read(&png).unwrap()), (1000, 1300), "{png:?}");
        chromium_once(
            tempfile::tempdir().unwrap().path(),
            &[
                "--no-pdf-header-footer".into(),
                format!("--print-to-pdf={}", pdf.display()),
                url.clone(),
            ],
        );
        let boxes = pdf_pages(&fs::read(&pdf).unwrap());
        for (w, h) in &boxes {
            // A4 is 595.28 x 841.89 points; chromium rounds to whole CSS pixels.
            assert!(
                (w - 595.28).abs() < 1.0 && (h - 841.89).abs() < 1.0,
                "{}: a page of {w} x {h} pt is not A4",
                p.name
            );
        }
        urls.push((url, digest, boxes.len()));
    }

    // One browser, one profile: what the page keeps, it keeps in this profile's local storage.
    let profile = tempfile::tempdir().unwrap();
    let mut b = Browser::start(profile.path(), out.join("chromium.log"));
    let ticks = |b: &mut Browser| b.ticks();
    let reload_until = |b: &mut Browser, checked: Value| b.reload_until(checked);

    let (example, example_digest, _) = &urls[0];
    b.open(example);
    let t = ticks(&mut b);
    assert_eq!(
        t["digest"],
        json!(example_digest),
        "keyed by the JSON plan's sha256"
    );
    assert_eq!(t["checked"], json!([]));
    assert_eq!(t["progress"], "0 of 16 steps done");
    b.eval("document.getElementById('prepare.build').click()");
    b.eval("document.getElementById('ia.synchronize').click()");
    let t = reload_until(&mut b, json!(["prepare.build", "ia.synchronize"]));
    assert_eq!(t["done"], t["checked"], "ticked steps are shown done");
    assert_eq!(t["progress"], "2 of 16 steps done");
    let stored: Value = serde_json::from_str(t["stored"].as_str().unwrap()).unwrap();
    assert_eq!(stored, json!({"prepare.build": 1, "ia.synchronize": 1}));
    // Unticking is kept too.
    b.eval("document.getElementById('ia.synchronize').click()");
    reload_until(&mut b, json!(["prepare.build"]));

    // Another plan in the same browser starts with none ticked, and its ticks are its own.
    let (north, north_digest, _) = &urls[1];
    b.open(north);
    let t = ticks(&mut b);
    assert_eq!(t["digest"], json!(north_digest));
    assert_eq!(
        t["checked"],
        json!([]),
        "another plan's ticks do not carry over"
    );
    assert_eq!(t["progress"], "0 of 34 steps done");
    b.eval("document.getElementById('verify.final').click()");
    b.open(example);
    assert_eq!(ticks(&mut b)["checked"], json!(["prepare.build"]));
    // "Clear all ticks" clears this plan's.
    b.eval("document.getElementById('reset').click()");
    reload_until(&mut b, json!([]));

    // The page at A4 print width, in print media.
    b.call("Emulation.setEmulatedMedia", json!({"media": "print"}));
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": A4_PRINT_WIDTH_PX, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    );
    for ((url, _, _), p) in urls.iter().zip(&pages) {
        b.open(url);
        let l: Value = serde_json::from_str(b.eval(PRINT_LAYOUT).as_str().unwrap()).unwrap();
        assert_eq!(l["width"], json!(A4_PRINT_WIDTH_PX), "{}", p.name);
        assert_eq!(l["media"], json!(true));
        assert!(l["tables"].as_u64().unwrap() >= 2, "{}: {l}", p.name);
        assert_eq!(l["wide"], json!([]), "{}: wider than A4", p.name);
        // Each value twice: the pairing table and the step that sets it.
        assert_eq!(
            l["paths"].as_array().unwrap().len(),
            2 * p.pairs,
            "{}",
            p.name
        );
        assert!(
            l["paths"][0]
                .as_str()
                .unwrap()
                .ends_with("\\ExternalPython1\\Python\\External")
        );
        assert_eq!(l["wrapped"], json!([]), "{}: a path wraps", p.name);
        assert_eq!(l["backticks"], json!(0), "{}: raw backticks", p.name);
        assert!(l["codeInCertificates"].as_u64().unwrap() >= 1, "{}", p.name);
        let text = l["text"].as_str().unwrap();
        for menu in [
            "right-click HAC Nodes \u{2192} Refresh all hosts",
            "Deployment \u{2192} Apply Changes To Host",
            "Right-click Virtual Units \u{2192} Synchronize Instances",
        ] {
            assert!(text.contains(menu), "{}: no {menu:?}", p.name);
        }
        assert!(
            !text.contains("Clear all ticks"),
            "the controls do not print"
        );
        // Checkboxes are drawn boxes with their colours kept on paper.
        assert_eq!(l["box"]["appearance"], "none");
        assert_ne!(l["box"]["border"], "0px");
        assert_eq!(l["box"]["adjust"], "exact");
    }
    // The page count last, so that a layout fault above is reported as what it is.
    for ((_, _, count), p) in urls.iter().zip(&pages) {
        assert!(
            p.pages.contains(count),
            "{}: {count} pages, expected {:?}",
            p.name,
            p.pages
        );
    }
    // The longest External Python Directory of the 6-core plan is the one with a space.
    assert!(
        fs::read_to_string(out.join("north.html"))
            .unwrap()
            .contains("E:\\Contact Center\\vu\\ExternalPython6\\Python\\External")
    );
}

/// The upgrade runbook (the example topology with a second node on Server 2012 R2): ticks kept
/// under its own digest across a reload, A4 pages, nothing wider than the page, no kept-copy
/// path or External Python Directory wrapped, the vendor's menu paths with arrows.
#[test]
#[ignore = "needs Debian's chromium; scripts/test.sh installs it and runs this test"]
fn the_html_upgrade_runbook_keeps_its_ticks_and_prints_on_a4_in_chromium() {
    let dir = workspace();
    super::upgrade::manifest_3_13(dir.path());
    super::upgrade::two_nodes(dir.path());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runbook");
    fs::create_dir_all(&out).unwrap();
    let html = out.join("upgrade.html");
    let mut args = super::upgrade::UPGRADE.to_vec();
    args.extend(["--format", "html", "--out", html.to_str().unwrap()]);
    plan(dir.path(), &args).ok();
    let mut args = super::upgrade::UPGRADE.to_vec();
    args.extend(["--format", "json"]);
    let json = plan(dir.path(), &args).ok().stdout;
    let digest: String = Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let steps = serde_json::from_str::<Value>(&json).unwrap()["steps"]
        .as_array()
        .unwrap()
        .len();
    let url = format!("file://{}", html.display());
    let pdf = out.join("upgrade.pdf");
    let _ = fs::remove_file(&pdf);
    chromium_once(
        tempfile::tempdir().unwrap().path(),
        &[
            "--no-pdf-header-footer".into(),
            format!("--print-to-pdf={}", pdf.display()),
            url.clone(),
        ],
    );
    let pages = pdf_pages(&fs::read(&pdf).unwrap());
    assert!((4..=9).contains(&pages.len()), "{} pages", pages.len());
    for (w, h) in &pages {
        assert!(
            (w - 595.28).abs() < 1.0 && (h - 841.89).abs() < 1.0,
            "{w} x {h} pt is not A4"
        );
    }

    let profile = tempfile::tempdir().unwrap();
    let mut b = Browser::start(profile.path(), out.join("chromium-upgrade.log"));
    b.open(&url);
    let t = b.ticks();
    assert_eq!(
        t["digest"],
        json!(digest),
        "keyed by the JSON plan's sha256"
    );
    assert_eq!(t["progress"], format!("0 of {steps} steps done"));
    b.eval("document.getElementById('precheck.windows').click()");
    b.eval("document.getElementById('switch.hac1').click()");
    let t = b.reload_until(json!(["precheck.windows", "switch.hac1"]));
    assert_eq!(t["done"], t["checked"]);
    assert_eq!(t["progress"], format!("2 of {steps} steps done"));
    b.eval("document.getElementById('reset').click()");
    b.reload_until(json!([]));

    b.call("Emulation.setEmulatedMedia", json!({"media": "print"}));
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": A4_PRINT_WIDTH_PX, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    );
    b.open(&url);
    let l: Value = serde_json::from_str(b.eval(PRINT_LAYOUT).as_str().unwrap()).unwrap();
    assert_eq!(l["media"], json!(true));
    assert_eq!(l["wide"], json!([]), "wider than A4");
    assert_eq!(l["wrapped"], json!([]), "a path wraps");
    assert_eq!(l["backticks"], json!(0), "raw backticks");
    let paths: Vec<&str> = l["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"D:\\SCP\\vu\\ExternalPython2\\Python\\External.previous"),
        "{paths:?}"
    );
    let text = l["text"].as_str().unwrap();
    for words in [
        "right-click HAC Nodes \u{2192} Refresh all hosts",
        "Deployment \u{2192} Apply Changes To Host",
        "Right-click Virtual Units \u{2192} Synchronize Instances",
        "HAC2 cannot take CPython 3.13.9",
        "External Python upgrade runbook",
    ] {
        assert!(text.contains(words), "no {words:?}");
    }
}

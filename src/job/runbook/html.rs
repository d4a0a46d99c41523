//! The runbook as one self-contained, printable HTML page (no external assets).

use super::plan::{Plan, Step, Table};

/// Escapes text for HTML content and attribute values. A control character cannot be
/// written in HTML at all (a character reference to one is an error, and to a C1 one
/// means another character), so it is shown as its visible escape, as on a console.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::base::wintext::visible(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Screen and A4 paper. Tables, steps and command blocks are never cut across pages; the
/// External Python Directory values never wrap mid-path (they are the values people type);
/// every other cell may wrap anywhere, so no table is wider than the page; the checkboxes are
/// drawn boxes, which print (a native checkbox does not print its state everywhere).
const STYLE: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:62em;margin:2em auto;padding:0 1em;color:#1b1b1b}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
.meta{color:#555}code,pre{font-family:Consolas,'Cascadia Mono','DejaVu Sans Mono',monospace;font-size:.9em}
code{background:#f1f1f1;padding:0 .15em;border-radius:2px}pre code{background:none}
pre{background:#f4f4f4;padding:.5em .7em;white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5em 0;max-width:100%}
td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#eee}
.path{white-space:nowrap}
.step{position:relative;margin:.8em 0;padding:.4em .6em .4em 2.3em;border-left:3px solid #4a7}
.step label{font-weight:600;cursor:pointer}.step.done{border-left-color:#aaa}.step.done label{color:#555}
.step input{-webkit-appearance:none;appearance:none;position:absolute;left:.55em;top:.6em;margin:0;width:1.05em;height:1.05em;border:1.5px solid #333;border-radius:2px;background:#fff;cursor:pointer}
.step input:checked{background:#2a7a3a;border-color:#2a7a3a}
.step input:checked::after{content:'';position:absolute;left:.3em;top:.05em;width:.3em;height:.6em;border:solid #fff;border-width:0 .15em .15em 0;transform:rotate(45deg)}
.id,.actor{color:#666;font-weight:normal;font-size:.85em}.warn{color:#8a4b00}.check{color:#234}
.progress{background:#eef5ee;padding:.3em .6em}.progress button{margin-left:1em}
@page{size:A4;margin:15mm 13mm}
@media print{body{font-size:10pt;margin:0;max-width:none;padding:0}.noprint{display:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
.step,table,tr,pre{break-inside:avoid}h2{break-after:avoid}.path{font-size:.85em}}";

/// Keeps the ticks in the browser's local storage under the plan's digest, so a reload (or
/// reopening the file) keeps them, and another plan starts with none. No `<` or `&` in it:
/// the page stays well-formed markup.
const SCRIPT: &str = "(function(){
var key='extpy-runbook:'+document.body.getAttribute('data-plan');
var done={};
try{done=JSON.parse(localStorage.getItem(key)||'{}')||{}}catch(e){done={}}
var boxes=document.querySelectorAll('.step input[type=checkbox]');
var progress=document.getElementById('progress');
function save(){try{localStorage.setItem(key,JSON.stringify(done))}catch(e){}}
function show(){var n=0;for(var i=0;i!==boxes.length;i++){var b=boxes[i];b.parentNode.className=b.checked?'step done':'step';if(b.checked){n++}}
progress.textContent=n+' of '+boxes.length+' steps done';}
for(var i=0;i!==boxes.length;i++){(function(b){b.checked=done[b.id]===1;b.addEventListener('change',function(){if(b.checked){done[b.id]=1}else{delete done[b.id]}save();show()})})(boxes[i])}
document.getElementById('reset').addEventListener('click',function(){done={};save();for(var i=0;i!==boxes.length;i++){boxes[i].checked=false}show()});
show();
})();";

/// Text as the Markdown shows it: its code spans (between backticks) as `<code>`, and menu
/// paths (`A -> B`) with arrows.
fn rich(s: &str) -> String {
    let arrows = |t: &str| esc(t).replace(" -&gt; ", " &rarr; ");
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        // An unpaired backtick is a character, not a code span (as in Markdown).
        return arrows(s);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(p))
            } else {
                arrows(p)
            }
        })
        .collect()
}

fn table(t: &Table) -> String {
    // The External Python Directory column holds paths: code that never wraps mid-path.
    let paths = t.headers.last().is_some_and(|h| h.contains("Directory"));
    let mut out = String::from("<table><thead><tr>");
    for h in &t.headers {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            if paths && i + 1 == r.len() {
                out.push_str(&format!("<td><code class=\"path\">{}</code></td>", esc(c)));
            } else {
                out.push_str(&format!("<td>{}</td>", rich(c)));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
    out
}

fn step(n: usize, s: &Step) -> String {
    let id = esc(&s.id);
    let mut out = format!(
        "<div class=\"step\"><input type=\"checkbox\" id=\"{id}\"/> <label for=\"{id}\">{n}. {}</label> <span class=\"actor\">{}</span> <span class=\"id\">{id}</span>\n<p>{}</p>\n",
        rich(&s.title),
        s.actor.label(),
        rich(&s.instruction)
    );
    if let Some(t) = &s.table {
        out.push_str(&table(t));
    }
    if !s.commands.is_empty() {
        out.push_str(&format!(
            "<pre>{}</pre>\n",
            s.commands
                .iter()
                .map(|c| esc(c))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if let Some(c) = &s.check {
        out.push_str(&format!(
            "<p class=\"check\">Check: <code>{}</code></p>\n",
            esc(c)
        ));
    }
    for w in &s.warnings {
        out.push_str(&format!("<p class=\"warn\">&#9888; {}</p>\n", rich(w)));
    }
    out.push_str("</div>\n");
    out
}

/// Renders the plan.
pub(crate) fn render(plan: &Plan) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"/>",
    );
    out.push_str(&format!(
        "<title>{}: {}</title>\n<style>\n{STYLE}\n</style></head>\n<body data-plan=\"{}\">\n",
        plan.kind(),
        esc(&plan.system),
        plan.digest()
    ));
    out.push_str(&format!(
        "<h1>{}: {}</h1>\n",
        plan.kind(),
        esc(&plan.system)
    ));
    out.push_str(&format!(
        "<p class=\"meta\">Generated by {} from <code>{}</code> with manifest <code>{}@{}</code> (CPython {}, {}, {} packages: {}).</p>\n",
        esc(&plan.generated_by),
        esc(&plan.topology),
        esc(&plan.manifest.name),
        esc(&plan.manifest.sha256[..12]),
        esc(&plan.manifest.python),
        esc(&plan.manifest.platform),
        plan.manifest.packages.len(),
        esc(&plan.manifest.packages.join(", "))
    ));
    out.push_str(&format!(
        "<p class=\"progress noprint\"><span id=\"progress\">{} steps</span> <button type=\"button\" id=\"reset\">Clear all ticks</button> <span class=\"meta\">Ticks stay in this browser, for this plan only.</span></p>\n",
        plan.steps.len()
    ));
    if let Some(u) = plan.upgrade_summary() {
        out.push_str(&format!("<p class=\"meta\">{}</p>\n", rich(&u)));
    }
    let pairs = plan.pairs_table();
    out.push_str(&table(&pairs));
    for w in &plan.warnings {
        out.push_str(&format!("<p class=\"warn\">&#9888; {}</p>\n", rich(w)));
    }
    out.push_str("<h2>Certificates</h2>\n");
    out.push_str(&format!("<p>{}</p>\n", rich(&plan.certificates_summary())));
    let mut phase = None;
    for (i, s) in plan.steps.iter().enumerate() {
        if phase != Some(s.phase) {
            out.push_str(&format!("<h2>{}</h2>\n", esc(s.phase.title())));
            phase = Some(s.phase);
        }
        out.push_str(&step(i + 1, s));
    }
    out.push_str(&format!("<script>\n{SCRIPT}\n</script>\n</body></html>\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_and_menu_paths() {
        assert_eq!(
            rich("merge with `extpy report merge <dir>` now"),
            "merge with <code>extpy report merge &lt;dir&gt;</code> now"
        );
        assert_eq!(
            rich("right-click HAC Nodes -> Refresh all hosts"),
            "right-click HAC Nodes &rarr; Refresh all hosts"
        );
        assert_eq!(rich("a ` b"), "a ` b", "an unpaired backtick stays");
        assert_eq!(
            rich("`a -> b`"),
            "<code>a -&gt; b</code>",
            "code is as written"
        );
        assert!(!SCRIPT.contains(['<', '&']));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

//! The manual around the command line: `extpy help TOPIC`, the man page and the shell
//! completion scripts, all made from the one clap definition in `main.rs`.

use std::io::Write;
use std::path::Path;

use clap::Command;
use extpy::app::error::EXIT_CODES_HELP;

/// The help topics and their one-line summaries. The texts say what the user guide (docs/src) says.
pub const TOPICS: &[(&str, &str)] = &[
    ("manifest", "the distribution manifest: what extpy builds"),
    (
        "topology",
        "the topology file: HAC nodes, CEM cores, VUs, SC mail settings",
    ),
    ("exit-codes", "what each exit code means"),
];

const MANIFEST: &str = "\
The distribution manifest

manifests/python-3.12-win-amd64.yaml is built into extpy and used unless --manifest (or
EXTPY_MANIFEST) names another. It pins the Windows embeddable CPython and every wheel by
file name and sha256 (taken from the index):

```yaml
schema: 1
name: cem-external-python-3.12
python: { version: 3.12.10, platform: win_amd64 }     # win_amd64, win32 or win_arm64
embeddable:
  file: python-3.12.10-embed-amd64.zip               # fetched from <python mirror>/3.12.10/<file>
  sha256: 4acbed6dd1c744b0376e3b1cf57ce906f9dc9e95e68824584c8099a63025a3c3
runtime_trust: certifi                               # optional: certifi (the default) or system
truststore:                                          # installed only with runtime_trust: system
  file: truststore-0.10.5-py3-none-any.whl
  sha256: 9aaaedaefaf06d8b206278cf8b5012bc897f485a874503501e12d776df78951c
requires:                                            # optional: what `extpy lock` resolves (PEP 508)
  - msal>=1.39
wheels:
  - file: msal-1.39.0-py3-none-any.whl               # found through the index's Simple API
    sha256: 2d2577886906cd7293850dffa2da29119966c213bfc6ec0cecf8bf7621e1ca77
    # url: https://mirror.example/msal.whl          # optional: overrides the sources
    # size: 117935                                   # optional: bytes (lock writes it with url)
```

requires: does not change the manifest's digest (nor the seal): it is the input of
`extpy lock`, not part of the distribution.

runtime_trust: certifi (the default) has requests and msal verify TLS against certifi's
bundle inside the distribution; system installs the truststore wheel of the truststore:
section and the hook Lib\\site-packages\\extpy-truststore.pth, so they verify against the
Windows certificate store (for a TLS-inspecting proxy whose CA only Windows trusts; check
with `extpy mail check TOPOLOGY --dist DIR`). It needs CPython 3.10 or later.

URLs are derived from the sources (--python-mirror, --index-url), so any mirror works; an
entry's url: overrides them. Every byte is checked against its sha256 before use.

Errors name the file, line and field: bad hex, unknown platform, a wheel whose tags cannot
run on the declared Python and platform, a package pinned twice, two pins with one sha256,
unknown keys. An index that publishes a different sha256 than the pin is refused.
";

const TOPOLOGY: &str = concat!(
    "\
The topology file

A topology names the HAC nodes of one system, each with its VU root (a Windows path such
as D:\\SCP\\vu) and its CEM core instances. Every core gets the VU with its own number on
its own node (Core1 - ExternalPython1, as the vendor documents), and its External Python
Directory value <vu root>\\ExternalPythonN\\Python\\External. `extpy layout`, `extpy plan`,
`extpy verify --topology`, `extpy bundle create --topology` and `extpy rollout` read it.

The example (manifests/topology.example.yaml):

",
    include_str!("../manifests/topology.example.yaml"),
    "
Errors name the line: duplicate nodes or cores, a core on two nodes, a core name without
a number (pair it explicitly: `{ core: CoreSpare, vu: ExternalPython9 }`), two cores on
one VU, paths that are not absolute Windows paths, unknown keys.

The optional mail: block adds the System Configurator steps to the plan:

```yaml
mail:
  incoming:
    - name: M365 Service
      tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301   # GUID; a domain is accepted with a warning
      auth: oauth_service                            # or oauth_user
      client_id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8
      secret_env: MAIL_CLIENT_SECRET                 # a secret is only ever named, never written
  outgoing: { tenant: 3f2504e0-4f89-11d3-9a0c-0305e82c3301, auth: oauth_service,
              server_user: 6ba7b812-9dad-11d1-80b4-00c04fd430c8, password_env: MAIL_OUTGOING_SECRET }
  queues:
    - { address: support@contoso.example.com, account: support@contoso.example.com, server: M365 Service }
```

Tenant, client ID and server user must be GUIDs, OAuth Service needs a secret, a secret
written into the file is refused, queue addresses must be e-mail addresses and a queue's
server must exist. Secret values never appear in any output.

"
);

const EXIT_CODES_INTRO: &str =
    "Every extpy command ends with one of these codes; scripts (and get-py.ps1) pass it on.";

/// The text of a topic, if `name` is one.
pub fn topic(name: &str) -> Option<String> {
    match name {
        "manifest" => Some(MANIFEST.to_string()),
        "topology" => Some(TOPOLOGY.to_string()),
        "exit-codes" => Some(format!("{EXIT_CODES_INTRO}\n\n{EXIT_CODES_HELP}\n")),
        _ => None,
    }
}

/// The list of topics for `extpy help` and the root's help.
pub fn topics_help() -> String {
    let mut out = String::from("Help topics (extpy help TOPIC):\n");
    for (name, line) in TOPICS {
        out.push_str(&format!("  {name:<12}{line}\n"));
    }
    out
}

/// `extpy help [COMMAND...|TOPIC]`: the long help of a command, or a topic's text.
pub fn help(mut root: Command, words: &[String]) -> Result<String, String> {
    if let [word] = words
        && let Some(text) = topic(word)
    {
        return Ok(text);
    }
    root = root.styles(clap::builder::Styles::plain());
    root.build();
    let mut cmd = &mut root;
    for w in words {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        cmd = match cmd.find_subcommand_mut(w) {
            Some(c) => c,
            None => {
                let topics: Vec<&str> = TOPICS.iter().map(|t| t.0).collect();
                return Err(format!(
                    "`{w}` is neither a command nor a help topic\nhelp: commands here: {}; topics: {}",
                    names.join(", "),
                    topics.join(", ")
                ));
            }
        };
    }
    Ok(cmd.render_long_help().to_string())
}

/// The man page of `extpy` (roff): clap's sections, then the exit codes and the topics.
pub fn man_page(root: Command, date: &str) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(root)
        .date(date)
        .manual("extpy manual")
        .source(format!("extpy {}", extpy::app::version::VERSION));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    section(&mut out, "EXIT STATUS", EXIT_CODES_HELP)?;
    for name in ["manifest", "topology"] {
        section(
            &mut out,
            &name.to_uppercase(),
            &topic(name).unwrap_or_default(),
        )?;
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// A man page section holding `text` as it is (no filling), escaped for roff.
fn section(out: &mut Vec<u8>, title: &str, text: &str) -> std::io::Result<()> {
    writeln!(out, ".SH \"{title}\"")?;
    writeln!(out, ".nf")?;
    for line in text.lines() {
        let line = line.replace('\\', "\\e");
        // A line starting with . or ' would be read as a request.
        let lead = if line.starts_with(['.', '\'']) {
            "\\&"
        } else {
            ""
        };
        writeln!(out, "{lead}{line}")?;
    }
    writeln!(out, ".fi")
}

/// Writes the man pages of extpy and of every command (`extpy-build.1`, ...) into `dir`.
pub fn man_pages_to(root: Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let main = dir.join("extpy.1");
    std::fs::write(&main, man_page(root.clone(), env!("EXTPY_BUILD_DATE"))?)?;
    let mut written = vec![main];
    let mut root = root.disable_help_subcommand(true);
    root.build();
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub = sub
            .clone()
            .display_name(format!("extpy-{}", sub.get_name()));
        let man = clap_mangen::Man::new(sub).date(env!("EXTPY_BUILD_DATE"));
        let path = dir.join(man.get_filename());
        let mut bytes = Vec::new();
        man.render(&mut bytes)?;
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// The completion script for `shell`.
pub fn completions(mut root: Command, shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut root, "extpy", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_topic_has_a_text() {
        for (name, _) in TOPICS {
            assert!(topic(name).is_some_and(|t| t.len() > 100), "{name}");
        }
        assert_eq!(topic("build"), None);
    }

    #[test]
    fn roff_requests_and_backslashes_are_escaped() {
        let mut out = Vec::new();
        section(&mut out, "X", ".hidden\n'quote\nD:\\SCP").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\\&.hidden\n\\&'quote\nD:\\eSCP\n"), "{text}");
    }
}

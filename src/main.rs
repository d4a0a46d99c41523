//! The extpy command line: parse, dispatch to the library, print results, exit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::json;

use extpy::app::commands::{self, CommandName, Outcome};
use extpy::app::config::{DEFAULT_JOBS, DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECS, Settings};
use extpy::app::error::{EXIT_CODES_HELP, Error};
use extpy::base::report::{Reporter, Verbosity, console};
use extpy::job::doctor::render::{self, Detail};
use extpy::{job::rollout, job::runbook};

mod manual;

/// Fetch, verify, build and lay out the External Python for Sinch Contact Pro CEM.
#[derive(Parser)]
#[command(
    name = "extpy",
    version,
    disable_version_flag = true,
    disable_help_subcommand = true,
    arg_required_else_help = true,
    after_help = format!("Help topics: extpy help manifest | topology | exit-codes\n\n{EXIT_CODES_HELP}"),
    max_term_width = 100
)]
struct Cli {
    /// Print the version (with -v: commit, build date, target, manifest, TLS and trust sources)
    #[arg(short = 'V', long)]
    version: bool,
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
#[command(next_help_heading = "Global options")]
struct Global {
    /// Distribution manifest (YAML); the built-in CPython 3.12 manifest when absent
    #[arg(long, global = true, env = "EXTPY_MANIFEST", value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Cache folder [default: the user cache folder, e.g. %LOCALAPPDATA%\extpy]
    #[arg(long, global = true, env = "EXTPY_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Package index (Simple API) [env: EXTPY_INDEX_URL, then PIP_INDEX_URL]
    #[arg(
        long,
        global = true,
        env = "EXTPY_INDEX_URL",
        value_name = "URL",
        hide_env = true
    )]
    index_url: Option<String>,
    /// Base of the python download area (<base>/<version>/<file>) [default: python.org]
    #[arg(long, global = true, env = "EXTPY_PYTHON_MIRROR", value_name = "URL")]
    python_mirror: Option<String>,
    /// Also trust the CA certificates in this PEM file (repeatable; SSL_CERT_FILE is read too)
    #[arg(long, global = true, env = "EXTPY_CA_CERT", value_name = "PEM")]
    ca_cert: Vec<PathBuf>,
    /// Never use the network; fail naming what is missing from the cache
    #[arg(long, global = true, env = "EXTPY_OFFLINE", value_parser = BoolishValueParser::new())]
    offline: bool,
    /// Parallel downloads and copies
    #[arg(long, short = 'j', global = true, env = "EXTPY_JOBS", value_name = "N", default_value_t = DEFAULT_JOBS,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Seconds to wait for a connection or for data before retrying
    #[arg(long, global = true, env = "EXTPY_TIMEOUT", value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Retries of a transient failure (timeouts, resets, 5xx, 429)
    #[arg(
        long,
        global = true,
        env = "EXTPY_RETRIES",
        value_name = "N",
        default_value_t = DEFAULT_RETRIES
    )]
    retries: u32,
    /// Verify provenance against this Sigstore trusted_root.json instead of the pinned one
    #[arg(
        long,
        global = true,
        env = "EXTPY_SIGSTORE_TRUST_ROOT",
        value_name = "FILE"
    )]
    sigstore_trust_root: Option<PathBuf>,
    /// Refuse artifacts whose manifest pins no publisher (provenance: none)
    #[arg(long, global = true, env = "EXTPY_REQUIRE_PROVENANCE", value_parser = BoolishValueParser::new())]
    require_provenance: bool,
    /// Print one JSON document on stdout instead of human results
    #[arg(long, global = true, env = "EXTPY_JSON", value_parser = BoolishValueParser::new())]
    json: bool,
    /// Print errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print details
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Never draw progress bars (they are drawn only on a terminal anyway)
    #[arg(long, global = true, env = "EXTPY_NO_PROGRESS", value_parser = BoolishValueParser::new())]
    no_progress: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Download and verify every artifact of the manifest into the cache
    Fetch,
    /// Fetch what is missing, then assemble the External Python and seal it
    ///
    /// Drop-in for get-py.ps1: DEST defaults to contents/Python/external under the current
    /// folder. The distribution is built beside DEST and renamed into place only when complete.
    Build(BuildArgs),
    /// Check built distributions (or VU folders) against their seal: missing, changed, extra files
    ///
    /// With --topology (or --bundle), checks every ExternalPython VU of the node(s): one line per VU.
    Verify(VerifyArgs),
    /// Diagnose TLS to the download hosts: the chain presented, who trusts it, the cause, the fix
    ///
    /// Without arguments: every host the sources use (python mirror, index, and the file
    /// hosts the index points to). For each: proxy, DNS, TCP, TLS handshake, the chain the
    /// server presented, its verification against this machine's trust store, the Mozilla
    /// roots and --ca-cert, a verdict, the fix, and an HTTP probe once TLS is trusted.
    /// Exit code 4 when any host fails.
    Doctor(DoctorArgs),
    /// Lay out the ExternalPythonN VU folders of a topology, paired with their cores
    ///
    /// Stages every node under --out DIR (DIR/<node>/<VU>/Python/External), or lays out one
    /// node in place with --node NAME [--vu-root PATH]. Every copy is verified against the
    /// seal; a second run changes nothing.
    Layout(LayoutArgs),
    /// Write the step plan (runbook) for a topology: every IA/SC step with its concrete values
    Plan(PlanArgs),
    /// Resolve the manifest's requires: into pins from the index, for its Python and platform
    ///
    /// Keeps current pins unless --upgrade/--upgrade-package or a requirement forces a change,
    /// prints what changed and why, and rewrites only the pins of the manifest (comments and
    /// order kept), atomically. --check changes nothing and exits 3 when the lock is stale.
    /// --python X.Y.Z also pins that release's embeddable zip from --python-mirror.
    Lock(LockArgs),
    /// Known vulnerabilities and yanked pins of every wheel, and the CPython's support status
    ///
    /// Reads the index's JSON API for each pin; exit 3 when any pin is affected, unless the
    /// advisory is accepted with --ignore ID=REASON.
    Audit(AuditArgs),
    /// Try a built distribution (or every VU of a node) with its own python.exe, as CEM will
    ///
    /// Imports msal, requests and cryptography (with their native parts), prints the OpenSSL
    /// of _ssl and of cryptography and the CA bundle requests uses, and opens TLS to the token
    /// endpoint through the proxy this machine uses (not with --offline). Each failure is a
    /// verdict with its fix: path too long, missing runtime, DLL blocked, untrusted root,
    /// import failure. Writes nothing into the folder. Exit code 4 when any folder fails.
    Selftest(SelftestArgs),
    /// Put back, in every VU of a node, the distribution `layout --keep-previous` kept
    ///
    /// The same swap, retries and recovery as build and layout: the folder in place moves
    /// aside, the kept copy is renamed in, the other is deleted. A rollback killed half-way is
    /// finished by the next run. Every VU is checked first: exit code 2 when one has no kept
    /// copy, 3 when its kept copy differs from its seal (then nothing changes).
    Rollback(RollbackArgs),
    /// The drift watch of a node: scheduled checks that write the Windows event log
    ///
    /// `watch install` registers two scheduled tasks (daily at 03:00, and at start-up) that
    /// run `extpy watch run` as SYSTEM; each run checks every VU of the node against the seal
    /// the manifest produces, as `verify --topology` does (and self-tests them with
    /// --selftest), and writes one entry into the Application event log, source extpy.
    /// Off Windows, install, remove and status print the commands they would run.
    #[command(subcommand)]
    Watch(WatchCommand),
    /// Offline bundles for air-gapped sites
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// The site's signing keys (minisign's format: the `minisign` tool reads them too)
    #[command(subcommand)]
    Key(KeyCommand),
    /// Write an Ansible project that lays out and verifies every node from a bundle
    ///
    /// One inventory host per HAC node; the playbook copies extpy and the bundle to each node,
    /// verifies the bundle, lays out the node's VUs, verifies them and fetches the report.
    Rollout(RolloutArgs),
    /// Reports of scripted rollouts
    #[command(subcommand)]
    Report(ReportCommand),
    /// The SC e-mail settings tried live
    #[command(subcommand)]
    Mail(MailCommand),
    /// Version, commit, build date, target, built-in manifest, TLS backend and trust sources
    Version,
    /// Print the completion script for a shell
    ///
    /// PowerShell: add `extpy completions powershell | Out-String | Invoke-Expression` to
    /// $PROFILE. bash: `source <(extpy completions bash)` in ~/.bashrc. zsh: the same with zsh,
    /// in ~/.zshrc. fish: `extpy completions fish > ~/.config/fish/completions/extpy.fish`.
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `extpy man | man -l -`
    Man {
        /// Write extpy.1 and one page per command (extpy-build.1, ...) into DIR instead
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// With --out: write the user guide's reference pages (Markdown: one per command and the
        /// exit codes) instead, as docs/src/reference holds them
        #[arg(long, requires = "out")]
        markdown: bool,
    },
    /// Print the help of a command, or a topic: manifest, topology, exit-codes
    Help {
        /// A command (`bundle create`) or a topic
        #[arg(value_name = "COMMAND|TOPIC")]
        words: Vec<String>,
    },
}

#[derive(Subcommand)]
enum WatchCommand {
    /// Register the node's scheduled tasks and the event source (as an administrator)
    Install(WatchArgs),
    /// Delete the node's scheduled tasks
    Remove(WatchNodeArgs),
    /// Show the node's scheduled tasks: last run, last result, next run (exit 3 if missing)
    Status(WatchNodeArgs),
    /// Check the node's VUs once and write one event log entry (what the tasks run)
    ///
    /// Event ids: 100 information, every VU matches; 101 error, a VU differs (each VU and
    /// its files named); 102 error, the check could not run; 103 error, a self-test failed.
    /// Exit code 3 when a VU differs, 4 when only a self-test failed.
    Run(WatchArgs),
}

#[derive(Subcommand)]
enum MailCommand {
    /// Token, IMAP and SMTP logins of the topology's mail settings: verdicts with fixes
    ///
    /// For each queue: a token (client credentials for OAuth Service, the password grant for
    /// OAuth User) with its permissions read from the token; IMAP over TLS with XOAUTH2 and
    /// EXAMINE INBOX (read-only); SMTP submission with STARTTLS and XOAUTH2, quitting before
    /// any message. Nothing is read, moved or sent. Secrets come only from the environment
    /// variables the topology names. Exit code 4 when any check fails.
    Check(MailCheckArgs),
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Combine the nodes' reports into one table (node, VU, core, status, seal)
    Merge(MergeArgs),
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Write a deterministic bundle: manifest, artifacts, topology and plan, SHA256SUMS
    Create(BundleCreateArgs),
    /// Check every entry of a bundle against SHA256SUMS and the manifest's pins
    ///
    /// With --trusted-key, the bundle must also carry a signature of SHA256SUMS
    /// (SHA256SUMS.minisig) by one of those keys: an unsigned bundle, one signed by another
    /// key, and one changed after signing exit 3.
    Verify(BundleVerifyArgs),
    /// Show a bundle's contents, pins, Python version and topology (and whether it verifies)
    Inspect {
        /// The bundle
        bundle: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Write a new ed25519 key pair: the secret key (signs) and its .pub (verifies)
    ///
    /// The secret key is encrypted with a passphrase, asked twice on the terminal or read from
    /// the environment variable --passphrase-env names (never given as an argument);
    /// --unencrypted leaves it plain, for CI. On Unix the secret key is written readable by its
    /// owner only. Existing files are never overwritten.
    Generate(KeyGenerateArgs),
}

/// Arguments of `extpy key generate`.
#[derive(Debug, Args)]
struct KeyGenerateArgs {
    /// The secret key file to write (e.g. site.key)
    secret_key: PathBuf,
    /// The public key file to write [default: the secret key's path with .pub]
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// Leave the secret key unencrypted (for CI, where no one types a passphrase)
    #[arg(long, conflicts_with = "passphrase_env")]
    unencrypted: bool,
    /// Read the passphrase from this environment variable instead of asking
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
}

/// Arguments of `extpy bundle verify`.
#[derive(Debug, Args)]
struct BundleVerifyArgs {
    /// The bundle
    bundle: PathBuf,
    /// Require a signature by this public key: a .pub file or its key line (RW...);
    /// repeatable, any one of them (added to the --manifest file's trusted_keys:)
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
}

/// Arguments of `extpy build`.
#[derive(Debug, Args)]
struct BuildArgs {
    /// Destination folder [default: contents/Python/external]
    dest: Option<PathBuf>,
    /// Replace DEST even if extpy did not build it
    #[arg(long)]
    force: bool,
    /// Show what would be built; change nothing at DEST and download nothing
    #[arg(long)]
    dry_run: bool,
    /// Build from this offline bundle (verified first; no network is used)
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Refuse the bundle unless this public key signed it: a .pub file or its key line (RW...);
    /// repeatable, any one (added to the trusted_keys: of the --manifest and topology files)
    #[arg(long, value_name = "PUB", requires = "bundle")]
    trusted_key: Vec<PathBuf>,
    /// Sign the seal with this secret key (`extpy key generate`, or minisign's): writes
    /// extpy-seal.json.minisig beside it
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Read the secret key's passphrase from this environment variable instead of asking
    #[arg(long, value_name = "VAR", requires = "sign")]
    passphrase_env: Option<String>,
}

/// Arguments of `extpy verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// Folders holding an extpy-seal.json
    #[arg(required_unless_present_any = ["topology", "bundle"], conflicts_with_all = ["topology", "bundle"])]
    paths: Vec<PathBuf>,
    /// Check the VU folders of this topology instead
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
    /// Take the topology and manifest from this offline bundle
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Only this node of the topology
    #[arg(long)]
    node: Option<String>,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    #[arg(long, value_name = "PATH", conflicts_with = "out")]
    vu_root: Option<PathBuf>,
    /// Check a staged layout (DIR/<node>/...) made by `extpy layout --out DIR`
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Count __pycache__ files that Python writes at run time as extra files too
    #[arg(long)]
    strict: bool,
    /// Also list every PE file (.exe, .dll, .pyd): sha256, Authenticode sha256, signed or not
    #[arg(long, conflicts_with_all = ["topology", "bundle"])]
    signatures: bool,
    /// With --signatures: write an AppLocker policy (XML) allowing each unsigned PE file by its
    /// Authenticode hash, for `Set-AppLockerPolicy -XmlPolicy FILE -Merge` (only when every
    /// tree verifies)
    #[arg(long, value_name = "FILE", requires = "signatures")]
    applocker: Option<PathBuf>,
    /// Require each seal to be signed by this public key: a .pub file or its key line (RW...);
    /// repeatable, any one (added to the trusted_keys: of the --manifest and topology files).
    /// A tree resealed by anyone else then fails. With --bundle, the bundle must be signed
    /// instead, and each VU is compared with the seal that bundle produces
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
}

/// Arguments of `extpy layout`.
#[derive(Debug, Args)]
struct LayoutArgs {
    /// Topology file (see manifests/topology.example.yaml); default: the bundle's
    #[arg(required_unless_present = "bundle")]
    topology: Option<PathBuf>,
    /// Stage every node under this folder, and write DIR/pairing.json
    #[arg(long, value_name = "DIR", conflicts_with = "vu_root")]
    out: Option<PathBuf>,
    /// Only this node
    #[arg(long)]
    node: Option<String>,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    #[arg(long, value_name = "PATH")]
    vu_root: Option<PathBuf>,
    /// Copy this built distribution instead of building one
    #[arg(long, value_name = "PATH", conflicts_with = "bundle")]
    dist: Option<PathBuf>,
    /// With --dist: copy it on its own seal when the seal the manifest produces is not known
    /// (its artifacts are not in the cache), or differs from it
    #[arg(long, requires = "dist")]
    trust_dist_seal: bool,
    /// Build from this offline bundle (verified first; no network is used)
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Replace VU folders that differ from their seal or hold foreign files
    #[arg(long)]
    repair: bool,
    /// Show what would be created or changed; touch nothing
    #[arg(long)]
    dry_run: bool,
    /// Keep each replaced distribution (sealed) beside its VU folder, as
    /// <VU>\Python\External.previous, for `extpy rollback` (replacing a copy kept before;
    /// a damaged tree that --repair replaces is not kept)
    #[arg(long)]
    keep_previous: bool,
    /// Refuse the bundle unless this public key signed it: a .pub file or its key line (RW...);
    /// repeatable, any one (added to the trusted_keys: of the --manifest and topology files)
    #[arg(long, value_name = "PUB", requires = "bundle")]
    trusted_key: Vec<PathBuf>,
    /// Sign the seal with this secret key (`extpy key generate`, or minisign's): writes
    /// extpy-seal.json.minisig beside it
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Read the secret key's passphrase from this environment variable instead of asking
    #[arg(long, value_name = "VAR", requires = "sign")]
    passphrase_env: Option<String>,
}

/// Arguments of `extpy rollback`.
#[derive(Debug, Args)]
struct RollbackArgs {
    /// Topology file (see manifests/topology.example.yaml)
    topology: PathBuf,
    /// The node whose VUs go back to the copy `layout --keep-previous` kept
    #[arg(long)]
    node: String,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    #[arg(long, value_name = "PATH", conflicts_with = "out")]
    vu_root: Option<PathBuf>,
    /// Roll back a staged layout (DIR/<node>/...) made by `extpy layout --out DIR`
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Arguments of `extpy plan`.
#[derive(Debug, Args)]
struct PlanArgs {
    /// Topology file (see manifests/topology.example.yaml); default: the bundle's
    #[arg(required_unless_present = "bundle")]
    topology: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Markdown)]
    format: FormatArg,
    /// Write to this file (atomically) instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Plan for building from this offline bundle (its topology and manifest; no network)
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The copy and verify steps run by this generated playbook (`extpy rollout`)
    #[arg(long, value_name = "PLAYBOOK")]
    rollout: Option<String>,
    /// Run the certificate diagnosis now and put its results in the plan
    #[arg(long, conflicts_with = "doctor_report")]
    doctor: bool,
    /// Put the results of a saved `extpy doctor --json` in the plan
    #[arg(long, value_name = "FILE")]
    doctor_report: Option<PathBuf>,
    /// Try the topology's mail settings now (`extpy mail check`) and put the results in the plan
    #[arg(long, conflicts_with = "mail_report")]
    mail_check: bool,
    /// Put the results of a saved `extpy mail check --json` in the plan
    #[arg(long, value_name = "FILE")]
    mail_report: Option<PathBuf>,
    #[command(flatten)]
    endpoints: MailEndpointArgs,
    /// Make the upgrade runbook from this manifest (the one the nodes run now; or the seal
    /// found on a node: a VU's Python\External folder or its extpy-seal.json) to the new one
    /// (--manifest, or the topology's): checks before, the switch with the current tree kept,
    /// the IA steps, checks after and the rollback
    #[arg(long, value_name = "OLD_MANIFEST", conflicts_with_all = ["rollout", "mail_check", "mail_report"])]
    upgrade_from: Option<PathBuf>,
}

/// Arguments of `extpy lock`.
#[derive(Debug, Args)]
struct LockArgs {
    /// Upgrade every pin to the newest version the requirements allow
    #[arg(long, conflicts_with = "upgrade_package")]
    upgrade: bool,
    /// Upgrade only this package (repeatable); every other pin stays if it can
    #[arg(long, value_name = "NAME")]
    upgrade_package: Vec<String>,
    /// Change nothing; exit 3 when the pins are stale (with --upgrade: when newer versions exist)
    #[arg(long, conflicts_with = "out")]
    check: bool,
    /// Write the locked manifest here instead of over --manifest
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Leave url: and size: out of the pins (fetch then finds the files through --index-url)
    #[arg(long)]
    no_urls: bool,
    /// Pin this CPython release's embeddable zip (sha256 from the .spdx.json --python-mirror
    /// publishes beside it) and resolve for it
    #[arg(long, value_name = "X.Y.Z")]
    python: Option<extpy::app::commands::PythonVersion>,
}

/// Arguments of `extpy audit`.
#[derive(Debug, Args)]
struct AuditArgs {
    /// Accept an advisory (its id or an alias such as the CVE) with a reason: ID=REASON (repeatable)
    #[arg(long, value_name = "ID=REASON")]
    ignore: Vec<String>,
}

/// Arguments of `extpy bundle create`.
#[derive(Debug, Args)]
struct BundleCreateArgs {
    /// The bundle to write (a .zip)
    out: PathBuf,
    /// Include this topology and its rendered plan
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
    /// Include this extpy executable (bin/extpy or bin/extpy.exe)
    #[arg(long, conflicts_with = "include_exe")]
    include_self: bool,
    /// Include this extpy.exe for Windows nodes (bin/extpy.exe), e.g. one built on Linux by
    /// scripts/build-windows.sh; `rollout --target windows` takes it from the bundle
    #[arg(long, value_name = "PATH")]
    include_exe: Option<PathBuf>,
    /// Sign SHA256SUMS with this secret key (`extpy key generate`, or minisign's); the
    /// signature is the entry SHA256SUMS.minisig
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Read the secret key's passphrase from this environment variable instead of asking
    #[arg(long, value_name = "VAR", requires = "sign")]
    passphrase_env: Option<String>,
}

/// Arguments of `extpy rollout`.
#[derive(Debug, Args)]
struct RolloutArgs {
    /// Topology file; default: the bundle's
    topology: Option<PathBuf>,
    /// The offline bundle every node lays out from
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The Ansible project folder to write
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The nodes' operating system
    #[arg(long, value_enum, default_value_t = TargetArg::Windows)]
    target: TargetArg,
    /// Linux: put each node's VU root at DIR/<node> (and run every host on this machine)
    #[arg(long, value_name = "DIR")]
    vu_root_base: Option<PathBuf>,
    /// The Ansible connection [default: winrm for windows; for linux local with --vu-root-base, else ssh]
    #[arg(long)]
    connection: Option<String>,
    /// The extpy executable the nodes run [default: this one, when it fits the target]
    #[arg(long, value_name = "PATH")]
    extpy: Option<PathBuf>,
    /// Replace --out even if extpy rollout did not write it
    #[arg(long)]
    force: bool,
    /// Also install the drift watch on every node whose VUs verify (`extpy watch install
    /// --bundle`: daily and start-up checks that write the Windows event log)
    #[arg(long)]
    watch: bool,
    /// Make the nodes refuse the bundle unless this public key signed it: a .pub file or its
    /// key line (RW...); repeatable (added to the topology file's trusted_keys:). The
    /// playbook passes the key lines to every extpy run on the nodes
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
}

/// Arguments of `extpy report merge`.
#[derive(Debug, Args)]
struct MergeArgs {
    /// Folders with the nodes' `extpy verify --json` reports (a rollout project, or its reports/)
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The topology whose nodes must all report [default: a rollout project's topology.yaml]
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
}

/// Arguments of `extpy doctor`.
#[derive(Debug, Args)]
struct DoctorArgs {
    /// Hosts to check: HOST, HOST:PORT or an http(s) URL [default: the sources' hosts]
    #[arg(value_name = "URL|HOST")]
    targets: Vec<String>,
    /// Write the certificate to trust into DIR as PEM (.pem) and DER (.cer)
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Connect to ADDR for HOST:PORT instead of asking DNS, like curl (repeatable)
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    resolve: Vec<String>,
}

/// Arguments of `extpy selftest`.
#[derive(Debug, Args)]
struct SelftestArgs {
    /// Distributions, or VU Python\External folders
    #[arg(required_unless_present = "topology", conflicts_with = "topology")]
    paths: Vec<PathBuf>,
    /// Try every VU folder of this topology instead
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
    /// Only this node of the topology
    #[arg(long, requires = "topology")]
    node: Option<String>,
    /// The node's VU root on this machine (default: the topology's, on Windows)
    #[arg(long, value_name = "PATH", requires = "topology")]
    vu_root: Option<PathBuf>,
    /// The endpoint TLS is opened to (the token endpoint's base)
    #[arg(long, value_name = "URL", env = "EXTPY_AUTHORITY_URL", default_value = extpy::job::mail::check::DEFAULT_AUTHORITY)]
    authority_url: String,
    /// Seconds the probe may run in each folder before it is stopped
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    time_limit: u64,
}

/// Arguments of `extpy watch install` and `extpy watch run`.
#[derive(Debug, Args)]
struct WatchArgs {
    /// The topology whose node is watched
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "bundle",
        conflicts_with = "bundle"
    )]
    topology: Option<PathBuf>,
    /// Take the topology and manifest from this offline bundle instead
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The node (this machine)
    #[arg(long)]
    node: String,
    /// The node's VU root on this machine (default: the topology's)
    #[arg(long, value_name = "PATH")]
    vu_root: Option<PathBuf>,
    /// Self-test every VU too (extpy selftest, offline)
    #[arg(long)]
    selftest: bool,
    /// Require each VU's seal to be signed by this public key: a .pub file or its key line
    /// (RW...); repeatable, any one (added to the trusted_keys: of the --manifest and topology
    /// files), as `verify --topology` does. A VU sealed by anyone else is drift. With
    /// --bundle, the bundle must be signed instead. Install writes the key lines into the task
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
}

/// Arguments of `extpy watch remove` and `extpy watch status`.
#[derive(Debug, Args)]
struct WatchNodeArgs {
    /// The node whose watch it is
    #[arg(long)]
    node: String,
}

/// Where the mail check's endpoints are (`mail check`, and `plan --mail-check`).
#[derive(Debug, Args)]
struct MailEndpointArgs {
    /// The identity platform's base URL (sovereign clouds, tests)
    #[arg(long, value_name = "URL", env = "EXTPY_AUTHORITY_URL", default_value = extpy::job::mail::check::DEFAULT_AUTHORITY)]
    authority_url: String,
    /// Microsoft Graph's base URL (sovereign clouds, tests)
    #[arg(long, value_name = "URL", env = "EXTPY_GRAPH_URL", default_value = extpy::job::mail::check::DEFAULT_GRAPH)]
    graph_url: String,
    /// IMAP over TLS
    #[arg(long, value_name = "HOST[:PORT]", env = "EXTPY_IMAP_HOST", default_value = extpy::job::mail::check::DEFAULT_IMAP)]
    imap_host: String,
    /// SMTP submission (STARTTLS)
    #[arg(long, value_name = "HOST[:PORT]", env = "EXTPY_SMTP_HOST", default_value = extpy::job::mail::check::DEFAULT_SMTP)]
    smtp_host: String,
    /// A failure a permission granted minutes ago explains (propagation takes up to 30
    /// minutes) is tried once more after this many seconds
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=1800))]
    retry_after: Option<u64>,
}

/// Arguments of `extpy mail check`.
#[derive(Debug, Args)]
struct MailCheckArgs {
    /// Topology file with a mail: block (secrets come from the variables it names)
    topology: PathBuf,
    /// Check only this incoming server and its queues
    #[arg(long, value_name = "NAME")]
    server: Option<String>,
    /// Check only the queue with this address
    #[arg(long, value_name = "ADDRESS")]
    queue: Option<String>,
    /// Also check every endpoint against the trust of this built distribution (its certifi
    /// bundle, or the system store with runtime_trust: system), as CEM's Python will
    #[arg(long, value_name = "DIR")]
    dist: Option<PathBuf>,
    #[command(flatten)]
    endpoints: MailEndpointArgs,
}

/// The formats a plan renders to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// A Markdown checklist.
    Markdown,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// One self-contained printable HTML page.
    Html,
}

impl From<FormatArg> for runbook::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Markdown => runbook::Format::Markdown,
            FormatArg::Json => runbook::Format::Json,
            FormatArg::Yaml => runbook::Format::Yaml,
            FormatArg::Html => runbook::Format::Html,
        }
    }
}

/// The kind of nodes the playbook drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    /// Windows nodes over WinRM (ansible.windows modules).
    Windows,
    /// Linux nodes (builtin modules), also for trying a rollout on one machine.
    Linux,
}

impl From<TargetArg> for rollout::Target {
    fn from(t: TargetArg) -> Self {
        match t {
            TargetArg::Windows => rollout::Target::Windows,
            TargetArg::Linux => rollout::Target::Linux,
        }
    }
}

/// The library's plain arguments from the parsed ones, field by field: a field added on one
/// side only does not compile.
macro_rules! plain_args {
    ($($name:ident { $($field:ident),* })*) => {$(
        impl From<$name> for commands::$name {
            fn from(a: $name) -> Self {
                let $name { $($field),* } = a;
                Self { $($field: $field.into()),* }
            }
        }
    )*};
}

plain_args! {
    BuildArgs { dest, force, dry_run, bundle, trusted_key, sign, passphrase_env }
    VerifyArgs { paths, topology, bundle, node, vu_root, out, strict, signatures, applocker, trusted_key }
    LayoutArgs { topology, out, node, vu_root, dist, trust_dist_seal, bundle, repair, dry_run, keep_previous, trusted_key, sign, passphrase_env }
    RollbackArgs { topology, node, vu_root, out }
    PlanArgs { topology, format, out, bundle, rollout, doctor, doctor_report, mail_check, mail_report, endpoints, upgrade_from }
    BundleCreateArgs { out, topology, include_self, include_exe, sign, passphrase_env }
    BundleVerifyArgs { bundle, trusted_key }
    KeyGenerateArgs { secret_key, public_key, unencrypted, passphrase_env }
    RolloutArgs { topology, bundle, out, target, vu_root_base, connection, extpy, force, watch, trusted_key }
    MergeArgs { dirs, topology }
    LockArgs { upgrade, upgrade_package, check, out, no_urls, python }
    AuditArgs { ignore }
    DoctorArgs { targets, export, resolve }
    MailEndpointArgs { authority_url, graph_url, imap_host, smtp_host, retry_after }
    MailCheckArgs { topology, server, queue, dist, endpoints }
    SelftestArgs { paths, topology, node, vu_root, authority_url, time_limit }
    WatchArgs { topology, bundle, node, vu_root, selftest, trusted_key }
    WatchNodeArgs { node }
}

fn main() -> ExitCode {
    forget_empty_settings();
    let mut cli = Cli::parse();
    if let Some(code) = manual_command(&cli) {
        return code;
    }
    let command = if cli.version {
        if cli.global.verbose == 0 {
            println!("extpy {}", extpy::app::version::VERSION);
            return ExitCode::SUCCESS;
        }
        Command::Version
    } else if let Some(c) = cli.command.take() {
        c
    } else {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "a command is required (extpy help lists them)",
            )
            .exit()
    };
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    let json = cli.global.json;
    let reporter = Reporter::new(verbosity, !cli.global.no_progress, json);
    let name = command_name(&command);
    let result = settings(&cli.global).and_then(|s| run(&s, command, &reporter));
    match result {
        Ok(outcome) => {
            if json {
                println!("{}", extpy::base::report::json_document(&outcome.json()));
            } else if verbosity > Verbosity::Quiet || outcome.command == CommandName::Plan {
                print!("{}", console(&outcome.human));
            }
            match outcome.failure {
                None => ExitCode::SUCCESS,
                Some(e) => fail(e, name, false),
            }
        }
        Err(e) => fail(e, name, json),
    }
}

/// The commands about extpy itself, which need no settings: help, man, completions.
fn manual_command(cli: &Cli) -> Option<ExitCode> {
    let written = match cli.command.as_ref()? {
        Command::Completions { shell } => {
            std::io::stdout().write_all(&manual::completions(Cli::command(), *shell))
        }
        Command::Man { out: None, .. } => {
            manual::man_page(Cli::command(), env!("EXTPY_BUILD_DATE"))
                .and_then(|page| std::io::stdout().write_all(&page))
        }
        Command::Man {
            out: Some(dir),
            markdown,
        } => match if *markdown {
            manual::reference_pages_to(Cli::command(), dir)
        } else {
            manual::man_pages_to(Cli::command(), dir)
        } {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                Ok(())
            }
            Err(e) => {
                eprintln!(
                    "error: {}: cannot write the man pages: {e}\nhelp: pass --out a folder you can write to",
                    dir.display()
                );
                return Some(ExitCode::from(extpy::app::error::ExitCode::Local as u8));
            }
        },
        Command::Help { words } => match manual::help(Cli::command(), words) {
            Ok(text) => {
                print!("{text}");
                if words.is_empty() {
                    print!("\n{}", manual::topics_help());
                }
                Ok(())
            }
            Err(message) => {
                eprintln!("error: {message}");
                return Some(ExitCode::from(extpy::app::error::ExitCode::Input as u8));
            }
        },
        _ => return None,
    };
    match written {
        Ok(()) => Some(ExitCode::SUCCESS),
        // A closed pipe (`extpy man | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Some(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            Some(ExitCode::from(extpy::app::error::ExitCode::Local as u8))
        }
    }
}

/// An empty `EXTPY_*` variable means "not set" (`X=` in a script, as `set X=` does in cmd),
/// not an empty path or number.
fn forget_empty_settings() {
    for (key, value) in std::env::vars_os() {
        if value.is_empty() && key.to_string_lossy().starts_with("EXTPY_") {
            // SAFETY: this runs first in main, before any other thread exists.
            unsafe { std::env::remove_var(&key) };
        }
    }
}

/// Prints the error (and, with --json, a document saying so) and gives its exit code.
fn fail(e: Error, command: CommandName, json: bool) -> ExitCode {
    let code = e.exit_code() as u8;
    eprintln!("error: {}", console(&e.to_string()));
    let diagnoses = match &e {
        Error::Explained { report, .. } => Some(report),
        _ => None,
    };
    if let Some(report) = diagnoses {
        for h in &report.hosts {
            eprint!("\n{}", console(&render::host(h, Detail::Brief)));
        }
        let urls: Vec<&str> = report.hosts.iter().map(|h| h.url.as_str()).collect();
        eprintln!(
            "\n`extpy doctor {}` shows every detail (proxy, DNS, handshake, each certificate).",
            console(&urls.join(" "))
        );
    }
    if json {
        let mut doc = json!({ "command": command.as_str(), "ok": false, "exit_code": code, "error": e.to_string() });
        if let Some(report) = diagnoses {
            doc["diagnoses"] = serde_json::to_value(&report.hosts).expect(
                "serializing plain data (string keys, no failing Serialize impl) cannot fail",
            );
        }
        println!("{}", extpy::base::report::json_document(&doc));
    }
    ExitCode::from(code)
}

fn command_name(c: &Command) -> CommandName {
    match c {
        Command::Fetch => CommandName::Fetch,
        Command::Build(_) => CommandName::Build,
        Command::Verify(_) => CommandName::Verify,
        Command::Layout(_) => CommandName::Layout,
        Command::Plan(_) => CommandName::Plan,
        Command::Bundle(BundleCommand::Create(_)) => CommandName::BundleCreate,
        Command::Bundle(BundleCommand::Verify(_)) => CommandName::BundleVerify,
        Command::Key(KeyCommand::Generate(_)) => CommandName::KeyGenerate,
        Command::Bundle(BundleCommand::Inspect { .. }) => CommandName::BundleInspect,
        Command::Doctor(_) => CommandName::Doctor,
        Command::Rollout(_) => CommandName::Rollout,
        Command::Lock(_) => CommandName::Lock,
        Command::Audit(_) => CommandName::Audit,
        Command::Report(ReportCommand::Merge(_)) => CommandName::ReportMerge,
        Command::Mail(MailCommand::Check(_)) => CommandName::MailCheck,
        Command::Selftest(_) => CommandName::Selftest,
        Command::Rollback(_) => CommandName::Rollback,
        Command::Watch(WatchCommand::Install(_)) => CommandName::WatchInstall,
        Command::Watch(WatchCommand::Remove(_)) => CommandName::WatchRemove,
        Command::Watch(WatchCommand::Status(_)) => CommandName::WatchStatus,
        Command::Watch(WatchCommand::Run(_)) => CommandName::WatchRun,
        Command::Version => CommandName::Version,
        Command::Completions { .. } => CommandName::Completions,
        Command::Man { .. } => CommandName::Man,
        Command::Help { .. } => CommandName::Help,
    }
}

fn settings(g: &Global) -> Result<Settings, Error> {
    let mut s = Settings::with_defaults(
        g.cache_dir.clone(),
        g.index_url.clone(),
        g.python_mirror.clone(),
    )?;
    s.manifest = g.manifest.clone();
    s.ca_certs = g.ca_cert.clone();
    s.offline = g.offline;
    s.jobs = g.jobs as usize;
    s.timeout = Duration::from_secs(g.timeout);
    s.retries = g.retries;
    s.sigstore_trust_root = g.sigstore_trust_root.clone();
    s.require_provenance = g.require_provenance;
    Ok(s)
}

fn run(s: &Settings, command: Command, reporter: &Reporter) -> Result<Outcome, Error> {
    match command {
        Command::Fetch => commands::fetch(s, reporter),
        Command::Build(args) => commands::build(s, args.into(), reporter),
        Command::Verify(args) => commands::verify(s, args.into(), reporter),
        Command::Layout(args) => commands::layout(s, args.into(), reporter),
        Command::Plan(args) => commands::plan(s, args.into(), reporter),
        Command::Bundle(BundleCommand::Create(args)) => {
            commands::bundle_create(s, args.into(), reporter)
        }
        Command::Bundle(BundleCommand::Verify(args)) => commands::bundle_verify(s, args.into()),
        Command::Key(KeyCommand::Generate(args)) => commands::key_generate(args.into()),
        Command::Bundle(BundleCommand::Inspect { bundle }) => commands::bundle_inspect(&bundle),
        Command::Doctor(args) => commands::doctor(s, args.into(), reporter),
        Command::Rollout(args) => commands::rollout(s, args.into(), reporter),
        Command::Lock(args) => commands::lock(s, args.into(), reporter),
        Command::Audit(args) => commands::audit(s, args.into(), reporter),
        Command::Report(ReportCommand::Merge(args)) => commands::report_merge(args.into()),
        Command::Mail(MailCommand::Check(args)) => commands::mail_check(s, args.into(), reporter),
        Command::Selftest(args) => commands::selftest(s, args.into(), reporter),
        Command::Rollback(args) => commands::rollback(s, args.into(), reporter),
        Command::Watch(WatchCommand::Install(args)) => {
            commands::watch_install(s, args.into(), reporter)
        }
        Command::Watch(WatchCommand::Remove(args)) => commands::watch_remove(args.into()),
        Command::Watch(WatchCommand::Status(args)) => commands::watch_status(args.into()),
        Command::Watch(WatchCommand::Run(args)) => commands::watch_run(s, args.into(), reporter),
        Command::Version => commands::version(s),
        Command::Completions { .. } | Command::Man { .. } | Command::Help { .. } => {
            Err(Error::Usage("handled before the settings are read".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn all_help(cmd: &mut clap::Command, out: &mut Vec<(String, String)>) {
        out.push((
            cmd.get_name().to_string(),
            cmd.render_long_help().to_string(),
        ));
        for sub in cmd.get_subcommands_mut() {
            all_help(sub, out);
        }
    }

    #[test]
    fn every_help_page_is_ascii() {
        let mut pages = Vec::new();
        all_help(&mut Cli::command(), &mut pages);
        assert!(pages.len() > 10);
        let bad: Vec<_> = pages
            .iter()
            .filter(|(_, text)| !text.is_ascii())
            .map(|(name, text)| {
                let line = text.lines().find(|l| !l.is_ascii()).unwrap_or_default();
                format!("{name}: {line}")
            })
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

//! One local server per TLS fault, to try `extpy doctor` by hand: the servers the doctor
//! tests use, started together. Prints one `extpy doctor …` command per fault, then serves
//! until stopped.
//!
//! ```text
//! cargo run --example tls_faults -- [--dir DIR]
//! ```

use std::path::PathBuf;

use support::{mirror, pki, servers};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Folder for the CA certificates the commands refer to
    #[arg(long, default_value = "tls-faults")]
    dir: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::path::absolute(&args.dir)?;
    let here = ["127.0.0.1", "localhost"];
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut lines: Vec<(String, String)> = Vec::new();
    let start = |leaf: &pki::Leaf, chain: &[&rustls::pki_types::CertificateDer<'static>]| {
        mirror::Mirror::start(Some(leaf.server_config(chain)))
    };

    let root = pki::Ca::root("Fault Demo Root");
    let ca_pem = root.write_pem(&dir, "fault-demo-root.pem");
    let with_ca = format!("--ca-cert {} ", ca_pem.display());
    let inter = root.intermediate("Fault Demo Issuing CA");
    let proxy_ca = pki::Ca::root("Corp TLS Inspection CA");
    let now = pki::now_unix();
    let cases: Vec<(
        &str,
        pki::Leaf,
        Vec<&rustls::pki_types::CertificateDer<'static>>,
        String,
    )> = vec![
        (
            "trusted (with --ca-cert)",
            root.leaf(&here),
            vec![],
            with_ca.clone(),
        ),
        (
            "root not trusted by this machine (the root is sent, so --export writes it)",
            root.leaf(&here),
            vec![&root.der],
            "--export /tmp/roots ".into(),
        ),
        (
            "missing intermediate (the server does not send it)",
            inter.leaf_with(&here, |p| {
                p.custom_extensions
                    .push(pki::aia_ca_issuers("http://pki.example.com/issuing.cer"))
            }),
            vec![],
            with_ca.clone(),
        ),
        (
            "expired",
            root.leaf_with(&here, |p| {
                pki::valid_between(p, now - 400 * 86_400, now - 30 * 86_400)
            }),
            vec![],
            with_ca.clone(),
        ),
        (
            "not yet valid",
            root.leaf_with(&here, |p| {
                pki::valid_between(p, now + 30 * 86_400, now + 400 * 86_400)
            }),
            vec![],
            with_ca.clone(),
        ),
        (
            "host name mismatch",
            root.leaf(&["mirror.example.com"]),
            vec![],
            with_ca.clone(),
        ),
        (
            "self-signed",
            pki::Leaf::self_signed(&here),
            vec![],
            String::new(),
        ),
    ];
    for (what, leaf, chain, extra) in cases {
        let m = start(&leaf, &chain);
        lines.push((
            what.to_string(),
            format!("extpy doctor {extra}{}/", m.url()),
        ));
        keep.push(Box::new(m));
    }
    let m = start(&proxy_ca.leaf(&["files.example.com"]), &[&proxy_ca.der]);
    lines.push((
        "TLS-inspecting proxy or private CA (a public name served by an unknown CA)".into(),
        format!(
            "extpy doctor --resolve files.example.com:{0}:127.0.0.1 https://files.example.com:{0}/",
            m.addr.port()
        ),
    ));
    keep.push(Box::new(m));
    let plain = servers::Raw::start(servers::PLAIN_HTTP_400);
    lines.push((
        "a server that speaks no TLS".into(),
        format!("extpy doctor https://127.0.0.1:{}/", plain.addr.port()),
    ));
    keep.push(Box::new(plain));
    lines.push((
        "a closed port".into(),
        format!("extpy doctor https://127.0.0.1:{}/", servers::closed_port()),
    ));
    lines.push((
        "a name that does not resolve".into(),
        "extpy doctor https://mirror.does-not-exist.invalid/".into(),
    ));
    let refusing = servers::Raw::start(servers::PROXY_403);
    lines.push((
        "a proxy that refuses CONNECT".into(),
        format!(
            "HTTPS_PROXY={} extpy doctor https://files.example.com/",
            refusing.http_url()
        ),
    ));
    keep.push(Box::new(refusing));

    for (what, cmd) in &lines {
        println!("# {what}\n{cmd}\n");
    }
    println!("ready: {} fault servers (stop with Ctrl-C)", keep.len());
    loop {
        std::thread::park();
    }
}

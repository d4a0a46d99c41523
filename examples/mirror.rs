//! A local HTTPS mirror for demos and benchmarks: the same server the tests use.
//!
//! It serves a python download area and a Simple API index on 127.0.0.1 with a CA made on
//! the spot, writes `manifest.yaml`, `ca.pem` and `env` (the `EXTPY_*` settings) into
//! `--out`, prints `ready`, and serves until it is stopped.
//!
//! ```text
//! cargo run --example mirror -- --out /tmp/mirror [--wheels DIR] [--metadata] [--python-zip FILE]
//!                                [--port N] [--plain] [--http2] [--fault PATH=KIND]...
//!                                [--chaos PERCENT]
//! ```
//! Without `--wheels` it serves three small synthetic wheels; without `--python-zip` a
//! synthetic embeddable CPython (python.org's real zip can be given when you have it).
//! `--plain` serves plain `http://` (no CA); `--http2` offers ALPN `h2` and serves HTTP/2
//! to the clients that take it (HTTP/1.1 to the others), as public CDNs do; `--fault` makes the next request to PATH
//! misbehave (`status:503`, `too-many:SECS`, `reset:BYTES`, `truncate:BYTES`, `wrong-bytes`),
//! in the order given, as the Windows lane does to see retries and resume. `--chaos PERCENT`
//! gives that share of all requests a random fault (scripts/soak.sh).

use std::path::PathBuf;

use support::{fixtures, mirror, pki};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Folder for manifest.yaml, ca.pem and env
    #[arg(long)]
    out: PathBuf,
    /// Serve the .whl files of this folder (else three synthetic wheels)
    #[arg(long)]
    wheels: Option<PathBuf>,
    /// Serve this embeddable zip (else a synthetic one)
    #[arg(long)]
    python_zip: Option<PathBuf>,
    /// Python version the manifest names
    #[arg(long, default_value = "3.12.10")]
    python: String,
    /// Also serve each wheel's METADATA as a PEP 658 metadata file, as the public index does
    #[arg(long)]
    metadata: bool,
    /// Port (0: any free port)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Plain HTTP instead of HTTPS
    #[arg(long, conflicts_with = "http2")]
    plain: bool,
    /// Offer HTTP/2 (ALPN h2) beside HTTP/1.1
    #[arg(long)]
    http2: bool,
    /// PATH=KIND: the next request to PATH misbehaves (repeatable, in order)
    #[arg(long, value_parser = parse_fault)]
    fault: Vec<(String, mirror::Fault)>,
    /// PERCENT of requests get a random fault (reset, truncation, 5xx, stall, wrong bytes);
    /// `GET /_soak/faults` answers the counts, `GET /_soak/chaos/N` changes the percentage
    #[arg(long, default_value_t = 0)]
    chaos: u64,
    /// Seed of the random faults
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_fault(s: &str) -> Result<(String, mirror::Fault), String> {
    let (path, kind) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: expected PATH=KIND"))?;
    let (name, arg) = kind.split_once(':').unwrap_or((kind, ""));
    let num = |what: &str| {
        arg.parse::<u64>()
            .map_err(|_| format!("{s}: {what} needs a number, as in {what}:100"))
    };
    let fault = match name {
        "status" => mirror::Fault::Status(num("status")? as u16),
        "too-many" => mirror::Fault::TooMany(num("too-many")?),
        "reset" => mirror::Fault::Reset(num("reset")? as usize),
        "truncate" => mirror::Fault::Truncate(num("truncate")? as usize),
        "wrong-bytes" => mirror::Fault::WrongBytes,
        _ => return Err(format!("{s}: unknown fault {name}")),
    };
    Ok((path.to_string(), fault))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let embed = match &args.python_zip {
        Some(p) => std::fs::read(p)?,
        None => fixtures::embeddable(&args.python),
    };
    let mut wheels = Vec::new();
    match &args.wheels {
        Some(dir) => {
            let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "whl"))
                .collect();
            names.sort();
            for p in names {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                wheels.push((name, std::fs::read(&p)?));
            }
        }
        None => {
            for (n, v) in [("alpha", "1.0"), ("beta_pkg", "2.1"), ("gamma", "0.3")] {
                let spec = fixtures::WheelSpec::pure(n, v);
                wheels.push((spec.filename(), spec.build()));
            }
        }
    }

    let (server, ca_line) = if args.plain {
        (mirror::Mirror::start_on(args.port, None), String::new())
    } else {
        let ca = pki::Ca::root("extpy demo mirror CA");
        let ca_pem = ca.write_pem(&args.out, "ca.pem");
        let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
        // Like many private CAs and TLS-inspecting proxies, the server sends its CA with the leaf.
        let config = leaf.server_config(&[&ca.der]);
        let server = if args.http2 {
            mirror::Mirror::start_http2(args.port, &config)
        } else {
            mirror::Mirror::start_on(args.port, Some(config))
        };
        (server, format!("EXTPY_CA_CERT={}\n", ca_pem.display()))
    };
    for (path, fault) in &args.fault {
        server.fault(path, fault.clone());
    }
    server.chaos(args.chaos, args.seed);
    server.add_python(
        &args.python,
        &format!("python-{}-embed-amd64.zip", args.python),
        embed.clone(),
    );
    for (file, bytes) in &wheels {
        server.add_wheel(file, bytes.clone());
        if args.metadata {
            server.serve_metadata(file);
        }
    }
    std::fs::write(
        args.out.join("manifest.yaml"),
        fixtures::manifest_text(&args.python, &embed, &wheels),
    )?;
    let env = format!(
        "EXTPY_PYTHON_MIRROR={}\nEXTPY_INDEX_URL={}\n{ca_line}MIRROR_URL={}\n",
        server.python_mirror(),
        server.index_url(),
        server.url()
    );
    std::fs::write(args.out.join("env"), &env)?;
    println!("ready {} ({} wheels)", server.url(), wheels.len());
    loop {
        std::thread::park();
    }
}

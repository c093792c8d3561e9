//! `ferrolb-test-apiserver`: the in-memory API server as a process, for lab tests where
//! ferrolb runs in other network namespaces and connects over plain HTTP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ferrolb_testapiserver::{KubeVersion, ServerConfig, TestApiServer, kubeconfig_for};
use serde_json::Value;
use tracing::{error, info};

/// An in-memory Kubernetes API server (plain HTTP, no authentication) for ferrolb's tests.
#[derive(Parser, Debug)]
#[command(name = "ferrolb-test-apiserver", version)]
struct Args {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long)]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at this server to FILE.
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// Address written into the kubeconfig when listening on an unspecified address
    /// (default 127.0.0.1).
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Create every object (CRDs, namespaces, anything) found in the YAML/JSON files of DIR.
    #[arg(long, value_name = "DIR")]
    crds: Option<PathBuf>,
    /// Kubernetes version reported at /version, as MAJOR.MINOR[.PATCH].
    #[arg(long, default_value = "1.31.0")]
    kube_version: String,
    /// Number of changes kept for watches and continue tokens.
    #[arg(long, default_value_t = 1000)]
    history_limit: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    bookmark_interval_secs: u64,
}

fn parse_version(s: &str) -> Result<KubeVersion, String> {
    let parts: Vec<&str> = s.trim_start_matches('v').split('.').collect();
    let num = |i: usize| -> Result<u32, String> {
        parts.get(i).map_or(Ok(0), |p| {
            p.parse().map_err(|_| format!("invalid version {s:?}"))
        })
    };
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!(
            "invalid version {s:?}: expected MAJOR.MINOR[.PATCH]"
        ));
    }
    Ok(KubeVersion {
        major: num(0)?,
        minor: num(1)?,
        patch: num(2)?,
    })
}

fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    Ok(files)
}

fn load_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let docs: Vec<Value> = if path.extension().and_then(|e| e.to_str()) == Some("json") {
        vec![serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?]
    } else {
        serde_saphyr::from_multiple(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let mut out = Vec::new();
    for d in docs {
        match d {
            Value::Null => {}
            Value::Object(ref o)
                if o.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                out.extend(
                    o.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

async fn run(args: Args) -> Result<(), String> {
    let config = ServerConfig {
        version: parse_version(&args.kube_version)?,
        history_limit: args.history_limit,
        bookmark_interval: Duration::from_secs(args.bookmark_interval_secs.max(1)),
        ..ServerConfig::default()
    };
    let server = TestApiServer::start_with(args.listen, config)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    if let Some(dir) = &args.crds {
        for file in manifest_files(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            for doc in load_documents(&file)? {
                let kind = doc
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let name = doc
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                server
                    .store()
                    .create(&doc, "ferrolb-test-apiserver")
                    .map_err(|e| format!("{}: {kind} {name}: {e}", file.display()))?;
                info!(file = %file.display(), kind = %kind, name = %name, "created");
            }
        }
    }
    let mut advertised = server.addr();
    if advertised.ip().is_unspecified() {
        advertised.set_ip(
            args.advertise_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        );
    }
    let url = format!("http://{advertised}");
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, kubeconfig_for(&url))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    info!(listen = %server.addr(), url = %url, "serving");
    // One line on stdout so a test harness can read the chosen port.
    println!("{url}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("ferrolb-test-apiserver: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

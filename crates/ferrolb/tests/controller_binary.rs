//! `ferrolb controller` as a process, against ferrolb-testapiserver reached through a kubeconfig
//! file: it warns about an API server older than 1.31, assigns an address, serves /readyz, and
//! on SIGTERM releases its Lease and exits 0.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_model::ResourceKind;
use ferrolb_model::manifests::crd_json;
use ferrolb_testapiserver::{KubeVersion, ServerConfig, TestApiServer};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

/// Kills the child if the test fails before it stopped it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_controller_process_assigns_warns_about_old_servers_and_releases_its_lease_on_sigterm()
{
    let config = ServerConfig {
        version: KubeVersion {
            major: 1,
            minor: 24,
            patch: 0,
        },
        ..ServerConfig::default()
    };
    let server = TestApiServer::start_with("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    for kind in ResourceKind::ALL {
        server
            .store()
            .create(crd_json(kind).unwrap(), "fixture")
            .unwrap();
    }
    for ns in ["ferrolb-system", "shop"] {
        server
            .store()
            .create(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                "fixture",
            )
            .unwrap();
    }
    server
        .store()
        .create(
            json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                   "metadata": {"name": "public", "namespace": "ferrolb-system"},
                   "spec": {"addresses": ["192.0.2.0/28"]}}),
            "fixture",
        )
        .unwrap();
    server
        .store()
        .create(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
            "fixture",
        )
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ferrolb-controller-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_ferrolb"))
            .args(["controller", "--kubeconfig"])
            .arg(&kubeconfig)
            .args([
                "--identity",
                "replica-1",
                "--lease-duration",
                "3s",
                "--metrics-address",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ingress = server
            .store()
            .get_as::<Service>("shop", "web")
            .and_then(|s| s.status?.load_balancer?.ingress)
            .unwrap_or_default();
        if ingress.first().and_then(|i| i.ip.as_deref()) == Some("192.0.2.0") {
            break;
        }
        assert!(Instant::now() < deadline, "no address assigned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lease = server
        .store()
        .get_as::<Lease>("ferrolb-system", "ferrolb-controller")
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-1")
    );

    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the controller did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The daemon logs to stdout.
    let mut log = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "exit {status:?}: {log}");
    assert!(log.contains("older than 1.31"), "{log}");
    let lease = server
        .store()
        .get_as::<Lease>("ferrolb-system", "ferrolb-controller")
        .unwrap();
    assert_ne!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-1"),
        "the Lease is released on exit"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

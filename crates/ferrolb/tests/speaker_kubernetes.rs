//! `ferrolb speaker --kubernetes` as a process against ferrolb-testapiserver: it reads the
//! configuration and Services from the cluster, becomes ready, and stops cleanly on SIGTERM.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_model::ResourceKind;
use ferrolb_model::manifests::crd_json;
use ferrolb_testapiserver::TestApiServer;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

#[tokio::test]
async fn the_speaker_reads_its_configuration_from_the_cluster_and_stops_on_sigterm() {
    let server = TestApiServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for kind in ResourceKind::ALL {
        server
            .store()
            .create(crd_json(kind).unwrap(), "fixture")
            .unwrap();
    }
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ferrolb-system"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
        json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
               "metadata": {"name": "public", "namespace": "ferrolb-system"},
               "spec": {"addresses": ["192.0.2.0/28"]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
    ] {
        server.store().create(object, "fixture").unwrap();
    }
    let dir = std::env::temp_dir().join(format!("ferrolb-speaker-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    let metrics_port = free_port();
    let status_port = free_port();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_ferrolb"))
            .args(["speaker", "--kubernetes", "--kubeconfig"])
            .arg(&kubeconfig)
            .args([
                "--node-name",
                "n1",
                "--listen-port",
                "0",
                "--router-id",
                "192.0.2.100",
            ])
            .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}")])
            .args(["--status-address", &format!("127.0.0.1:{status_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http_get(metrics_port, "/readyz")
            .is_some_and(|r| r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"));
        let metrics = http_get(metrics_port, "/metrics").unwrap_or_default();
        if ready && metrics.contains("ferrolb_config_generation 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the speaker never applied the cluster's configuration: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the speaker did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Shared setup: a server on a free loopback port and a kube-rs client reaching it through a
//! kubeconfig, as ferrolb's own code would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use ferrolb_testapiserver::{ServerConfig, ServerHandle, TestApiServer};

pub async fn start() -> (ServerHandle, kube::Client) {
    start_with(ServerConfig::default()).await
}

pub async fn start_with(config: ServerConfig) -> (ServerHandle, kube::Client) {
    let server = TestApiServer::start_with("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let client = client_for(&server).await;
    (server, client)
}

pub async fn client_for(server: &ServerHandle) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Waits (bounded) until `check` holds; the bound only guards against hangs.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bounds an await so a broken stream fails the test instead of hanging it.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

//! Shared setup: ferrolb-testapiserver with the ferrolb CRDs, a client reaching it through a
//! kubeconfig, and a controller running in a task until the test stops it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use ferrolb_controller::{
    ClassFilter, Controller, ControllerMetrics, ControllerOptions, ControllerStatus,
};
use ferrolb_model::ResourceKind;
use ferrolb_model::manifests::crd_json;
use ferrolb_testapiserver::{ServerHandle, TestApiServer};
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub async fn start() -> (ServerHandle, kube::Client) {
    let server = TestApiServer::start("127.0.0.1:0".parse().unwrap())
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
    let client = client_for(&server).await;
    (server, client)
}

pub async fn client_for(server: &ServerHandle) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A running controller; `stop` shuts it down as SIGTERM would.
pub struct Running {
    pub status: watch::Receiver<ControllerStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ferrolb_controller::ControllerError>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within("controller stops", &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }

    pub async fn wait_leading(&mut self) {
        within(
            "controller leads",
            self.status.wait_for(|s| s.leader && s.passes > 0),
        )
        .await
        .unwrap();
    }
}

pub fn options(identity: &str) -> ControllerOptions {
    ControllerOptions {
        filter: ClassFilter::default(),
        config_namespace: Some("ferrolb-system".into()),
        lease_namespace: "ferrolb-system".into(),
        lease_name: "ferrolb-controller".into(),
        identity: identity.into(),
        lease_duration_secs: 2,
        lease_grace_secs: 1,
        resync: Duration::from_secs(2),
    }
}

pub async fn run(client: &kube::Client, options: ControllerOptions) -> Running {
    let controller = Controller::new(client.clone(), options, ControllerMetrics::new().unwrap());
    let status = controller.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(controller.run(async move {
        let _ = stopped.await;
    }));
    Running {
        status,
        stop: Some(stop),
        task,
    }
}

pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Waits (bounded) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
           "metadata": {"name": name, "namespace": "ferrolb-system"},
           "spec": {"addresses": addresses}})
}

pub fn lb_service(name: &str, port: i32) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"type": "LoadBalancer", "selector": {"app": name},
                    "ports": [{"port": port, "protocol": "TCP"}]}})
}

pub fn service(server: &ServerHandle, name: &str) -> Service {
    server.store().get_as::<Service>("shop", name).unwrap()
}

pub fn ingress(server: &ServerHandle, name: &str) -> Vec<String> {
    server
        .store()
        .get_as::<Service>("shop", name)
        .and_then(|s| s.status?.load_balancer?.ingress)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.ip)
        .collect()
}

/// Our condition on a Service: (status, reason, message).
pub fn condition(server: &ServerHandle, name: &str) -> Option<(String, String, String)> {
    let service = server.store().get_as::<Service>("shop", name)?;
    service
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == ferrolb_controller::CONDITION_TYPE)
        .map(|c| (c.status, c.reason, c.message))
}

/// Events (events.k8s.io/v1) regarding a Service: (type, reason, note, reportingController).
pub fn events(server: &ServerHandle, name: &str) -> Vec<(String, String, String, String)> {
    server
        .store()
        .list("events.k8s.io/v1", "Event", Some("shop"))
        .into_iter()
        .filter(|e| e["regarding"]["name"] == json!(name))
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&e["type"]),
                text(&e["reason"]),
                text(&e["note"]),
                text(&e["reportingController"]),
            )
        })
        .collect()
}

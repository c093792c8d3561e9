//! The cluster source yields the same snapshot as the folder source for the same objects, and
//! refuses an invalid ferrolb.io object by field while the agent keeps the last good one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ferrolb_model::ResourceKind;
use ferrolb_model::manifests::crd_json;
use ferrolb_speaker::source::{ClusterSource, read_config_dir};
use ferrolb_testapiserver::TestApiServer;
use futures_util::StreamExt;
use serde_json::{Value, json};

fn objects() -> Vec<Value> {
    vec![
        json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
               "metadata": {"name": "public", "namespace": "ferrolb-system"},
               "spec": {"addresses": ["192.0.2.0/28"]}}),
        json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
               "metadata": {"name": "tor", "namespace": "ferrolb-system"},
               "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.51.100.1"}}),
        json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPAdvertisement",
               "metadata": {"name": "all", "namespace": "ferrolb-system"},
               "spec": {"ipAddressPools": ["public"]}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}],
                        "ipFamilies": ["IPv4"]},
               "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.3"}]}}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-1", "namespace": "shop",
                            "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "n1"},
                             {"addresses": ["10.0.0.2"], "nodeName": "n2",
                              "conditions": {"ready": false, "serving": false}}]}),
    ]
}

async fn cluster_with(objects: &[Value]) -> (ferrolb_testapiserver::ServerHandle, kube::Client) {
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
    for object in objects {
        let created = server.store().create(object, "fixture").unwrap();
        if let Some(status) = object.get("status") {
            let mut with_status = created.clone();
            with_status["status"] = status.clone();
            server.store().upsert(with_status).unwrap();
        }
    }
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    (server, kube::Client::try_from(config).unwrap())
}

#[tokio::test]
async fn the_cluster_source_yields_the_snapshot_the_folder_source_reads_from_the_same_objects() {
    let dir = std::env::temp_dir().join(format!("ferrolb-cluster-source-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, object) in objects().iter().enumerate() {
        // JSON is YAML: the folder reads it as any other document.
        std::fs::write(dir.join(format!("{i}.yaml")), object.to_string()).unwrap();
    }
    let from_folder = read_config_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let (_server, client) = cluster_with(&objects()).await;
    let source = ClusterSource::new(
        client,
        Some("ferrolb-system".into()),
        Duration::from_millis(10),
    );
    let mut updates = source.updates();
    let update = tokio::time::timeout(Duration::from_secs(20), updates.next())
        .await
        .unwrap()
        .unwrap();
    let from_cluster = update.result.unwrap();

    assert_eq!(from_cluster.config, from_folder.config);
    assert_eq!(from_cluster.endpoints, from_folder.endpoints);
    let web = |s: &ferrolb_speaker::source::Snapshot| {
        s.services
            .iter()
            .find(|v| v.name == "web")
            .cloned()
            .unwrap()
    };
    let (cluster_web, folder_web) = (web(&from_cluster), web(&from_folder));
    assert_eq!(cluster_web.key(), folder_web.key());
    assert_eq!(cluster_web.ingress_ips, folder_web.ingress_ips);
    assert_eq!(cluster_web.ports, folder_web.ports);
    assert_eq!(cluster_web.service_type, folder_web.service_type);
}

#[tokio::test]
async fn an_invalid_pool_in_the_cluster_refuses_the_update_naming_the_field() {
    let (server, client) = cluster_with(&objects()).await;
    let source = ClusterSource::new(
        client,
        Some("ferrolb-system".into()),
        Duration::from_millis(10),
    );
    let mut updates = source.updates();
    let first = tokio::time::timeout(Duration::from_secs(20), updates.next())
        .await
        .unwrap()
        .unwrap();
    assert!(first.result.is_ok());
    server
        .store()
        .create(
            json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                   "metadata": {"name": "overlap", "namespace": "ferrolb-system"},
                   "spec": {"addresses": ["192.0.2.8/29"]}}),
            "fixture",
        )
        .unwrap();
    let problems = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let update = updates.next().await.unwrap();
            if let Err(problems) = update.result {
                return problems;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.location.starts_with("IPAddressPool/")
                && p.message.contains("spec.addresses")),
        "{problems:?}"
    );
}

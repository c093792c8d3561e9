//! The cluster watch against ferrolb-testapiserver: no view before every initial list, the
//! view holds every kind, changes wake the caller, and the ferrolb.io objects become the
//! validated Config (or a refusal naming the object and field, with the last good one kept).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use ferrolb_cluster::{ClusterWatch, ConfigKeeper, ConfigVerdict, WatchOptions};
use ferrolb_model::ResourceKind;
use ferrolb_model::manifests::crd_json;
use ferrolb_testapiserver::{Fault, ServerHandle, TestApiServer};
use serde_json::json;

async fn start() -> (ServerHandle, kube::Client) {
    let server = TestApiServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for kind in ResourceKind::ALL {
        server
            .store()
            .create(crd_json(kind).unwrap(), "fixture")
            .unwrap();
    }
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    (server, kube::Client::try_from(config).unwrap())
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn pool(name: &str, addresses: &[&str]) -> serde_json::Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
           "metadata": {"name": name, "namespace": "ferrolb"}, "spec": {"addresses": addresses}})
}

fn namespace(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

#[tokio::test]
async fn no_view_exists_until_every_initial_list_has_completed() {
    let (server, client) = start().await;
    server
        .store()
        .create(namespace("ferrolb"), "fixture")
        .unwrap();
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    server.inject_fault(
        Fault::on_path("/apis/ferrolb.io/v1beta1/ipaddresspools")
            .method("GET")
            .times(usize::MAX)
            .respond(500),
    );
    let watch = ClusterWatch::start(&client, &WatchOptions::default());
    // Wait until the pool list has failed twice: every other kind has had time to list.
    within("two failed pool lists", async {
        while server
            .requests()
            .iter()
            .filter(|r| r.path.contains("ipaddresspools") && r.status == 500)
            .count()
            < 2
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(watch.view().is_none());
    server.clear_faults();
    within("ready", watch.ready()).await.unwrap();
    let view = watch.view().unwrap();
    assert_eq!(view.config_objects.len(), 1);
    assert!(
        view.namespaces
            .iter()
            .any(|ns| ns.metadata.name.as_deref() == Some("ferrolb"))
    );
}

#[tokio::test]
async fn every_watched_kind_is_in_the_view_and_a_change_wakes_the_reader() {
    let (server, client) = start().await;
    server.store().create(namespace("shop"), "fixture").unwrap();
    server
        .store()
        .create(namespace("ferrolb"), "fixture")
        .unwrap();
    server
        .store()
        .create(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"rack": "a"}}}),
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
    server
        .store()
        .create(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
                   "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "n1"}]}),
            "fixture",
        )
        .unwrap();
    let options = WatchOptions {
        config_namespace: Some("ferrolb".into()),
        endpoints_and_nodes: true,
    };
    let watch = ClusterWatch::start(&client, &options);
    within("ready", watch.ready()).await.unwrap();
    let view = watch.view().unwrap();
    assert!(
        view.services
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some("web"))
    );
    assert_eq!(view.nodes.len(), 1);
    assert_eq!(view.model_nodes()["n1"].labels["rack"], "a");
    let serving = view.serving_nodes();
    assert_eq!(
        serving[&ferrolb_model::ServiceKey::new("shop", "web")]
            .iter()
            .collect::<Vec<_>>(),
        vec!["n1"]
    );
    assert!(view.config_objects.is_empty());

    let mut changes = watch.changes();
    changes.borrow_and_update();
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    within("a change", changes.changed()).await.unwrap();
    within("the pool in the view", async {
        while watch.view().unwrap().config_objects.is_empty() {
            changes.changed().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_pool_outside_the_config_namespace_is_not_read() {
    let (server, client) = start().await;
    server
        .store()
        .create(namespace("ferrolb"), "fixture")
        .unwrap();
    server
        .store()
        .create(namespace("other"), "fixture")
        .unwrap();
    let mut elsewhere = pool("elsewhere", &["198.51.100.0/28"]);
    elsewhere["metadata"]["namespace"] = json!("other");
    server.store().create(elsewhere, "fixture").unwrap();
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    let options = WatchOptions {
        config_namespace: Some("ferrolb".into()),
        endpoints_and_nodes: false,
    };
    let watch = ClusterWatch::start(&client, &options);
    within("ready", watch.ready()).await.unwrap();
    let mut keeper = ConfigKeeper::new();
    let verdict = keeper.offer(&watch.view().unwrap().config_objects);
    assert_eq!(verdict, ConfigVerdict::Accepted { changed: true });
    let names: Vec<_> = keeper
        .current()
        .unwrap()
        .pools
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(names, vec!["public".to_string()]);
}

#[tokio::test]
async fn an_invalid_pool_in_the_cluster_is_refused_by_field_and_the_good_config_stays() {
    let (server, client) = start().await;
    server
        .store()
        .create(namespace("ferrolb"), "fixture")
        .unwrap();
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    let watch = ClusterWatch::start(&client, &WatchOptions::default());
    within("ready", watch.ready()).await.unwrap();
    let mut keeper = ConfigKeeper::new();
    keeper.offer(&watch.view().unwrap().config_objects);
    // Overlaps `public`: only a check across objects finds it.
    server
        .store()
        .create(pool("overlap", &["192.0.2.8/29"]), "fixture")
        .unwrap();
    let mut changes = watch.changes();
    within("the second pool", async {
        while watch.view().unwrap().config_objects.len() < 2 {
            changes.changed().await.unwrap();
        }
    })
    .await;
    let verdict = keeper.offer(&watch.view().unwrap().config_objects);
    let ConfigVerdict::Refused {
        problems,
        keeping_last_good,
    } = verdict
    else {
        panic!("expected a refusal: {verdict:?}");
    };
    assert!(keeping_last_good);
    assert!(
        problems
            .iter()
            .any(|p| p.field.starts_with("spec.addresses") && p.message.contains("overlap")),
        "{problems:?}"
    );
    assert_eq!(keeper.current().unwrap().pools.len(), 1);
}

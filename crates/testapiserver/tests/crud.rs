//! Create, read, update, patch and delete through kube-rs, checked against kube-apiserver's
//! behaviour: server-set metadata, Service defaults and allocation, optimistic concurrency,
//! the status subresource, patch formats, errors as Status objects, finalizers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::Status;
use serde_json::json;

fn service(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn api_error(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn created_service_gets_server_metadata_and_kube_apiserver_defaults() {
    let (server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let before = server.store().resource_version();
    let svc = svcs
        .create(
            &PostParams::default(),
            &service(
                "web",
                json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
            ),
        )
        .await
        .unwrap();
    let meta = &svc.metadata;
    assert_eq!(meta.uid.as_ref().map(String::len), Some(36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv: u64 = meta.resource_version.as_ref().unwrap().parse().unwrap();
    assert!(rv > before);
    let spec = svc.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    // 10.96.0.1 is the default/kubernetes Service a fresh cluster has.
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.2"));
    let port = &spec.ports.as_ref().unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert!((30000..=32767).contains(&port.node_port.unwrap()));
    assert_eq!(
        serde_json::to_value(svc.status.as_ref().unwrap()).unwrap(),
        json!({"loadBalancer": {}})
    );
}

#[tokio::test]
async fn dual_stack_policies_allocate_both_families() {
    let (_server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let svc = svcs
        .create(&PostParams::default(), &service("ds", json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 53, "protocol": "UDP"}]})))
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    assert_eq!(spec.ip_families.unwrap(), vec!["IPv4", "IPv6"]);
    let ips = spec.cluster_ips.unwrap();
    assert!(
        ips[0].starts_with("10.96.") && ips[1].starts_with("fd00:10:96::"),
        "{ips:?}"
    );
}

#[tokio::test]
async fn duplicate_create_is_already_exists_with_status_body() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let e = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"c\" already exists");
    let e = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );
}

#[tokio::test]
async fn generate_name_gets_a_five_character_suffix() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "cfg-"}})).unwrap();
    let a = cms.create(&PostParams::default(), &cm).await.unwrap();
    let b = cms.create(&PostParams::default(), &cm).await.unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("cfg-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn namespaced_create_needs_an_existing_namespace() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let e = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"team-a\" not found")
    );
    let nss: Api<Namespace> = Api::all(client);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    let ns = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(ns.spec.unwrap().finalizers.unwrap(), vec!["kubernetes"]);
    cms.create(&PostParams::default(), &cm).await.unwrap();
}

#[tokio::test]
async fn replace_with_stale_resource_version_conflicts() {
    let (server, client) = common::start().await;
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "ferrolb-controller"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "acquireTime": "2024-01-01T00:00:00Z", "renewTime": "2024-01-01T00:00:01.5Z"}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    // MicroTime is stored and served with microsecond precision, like kube-apiserver.
    let raw = server
        .store()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "kube-node-lease",
            "ferrolb-controller",
        )
        .unwrap();
    assert_eq!(raw["spec"]["renewTime"], "2024-01-01T00:00:01.500000Z");
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let updated = leases
        .replace("ferrolb-controller", &PostParams::default(), &mine)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    // A second writer still holding the first version loses.
    let mut theirs = created.clone();
    theirs.spec.as_mut().unwrap().holder_identity = Some("c".into());
    let e = api_error(
        leases
            .replace("ferrolb-controller", &PostParams::default(), &theirs)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"ferrolb-controller\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut bad = updated.clone();
    bad.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
    let e = api_error(
        leases
            .replace("ferrolb-controller", &PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .ends_with("spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn main_resource_writes_ignore_status_and_status_writes_ignore_spec() {
    let (_server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    svcs.create(
        &PostParams::default(),
        &service(
            "web",
            json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
        ),
    )
    .await
    .unwrap();
    let sneaky = json!({"spec": {"sessionAffinity": "ClientIP"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}});
    let after = svcs
        .patch("web", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await
        .unwrap();
    assert_eq!(
        after.spec.as_ref().unwrap().session_affinity.as_deref(),
        Some("ClientIP")
    );
    assert!(
        after
            .status
            .as_ref()
            .unwrap()
            .load_balancer
            .as_ref()
            .unwrap()
            .ingress
            .is_none(),
        "status ignored on the main resource"
    );
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    let status_patch = json!({"spec": {"sessionAffinity": "None"}, "metadata": {"labels": {"seen": "yes"}}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}});
    let after = svcs
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .unwrap();
    assert_eq!(
        after.spec.as_ref().unwrap().session_affinity.as_deref(),
        Some("ClientIP"),
        "spec ignored on /status"
    );
    let ingress = after
        .status
        .unwrap()
        .load_balancer
        .unwrap()
        .ingress
        .unwrap();
    assert_eq!(ingress[0].ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(
        ingress[0].ip_mode.as_deref(),
        Some("VIP"),
        "ipMode defaults to VIP"
    );
    // As in kube-apiserver, Service /status keeps metadata changes (only spec is reset).
    assert_eq!(after.metadata.labels.unwrap()["seen"], "yes");
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "status changes do not bump generation"
    );
    let got = svcs.get_status("web").await.unwrap();
    assert_eq!(
        got.status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn invalid_status_is_rejected_with_field_errors() {
    let (_server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    svcs.create(
        &PostParams::default(),
        &service(
            "web",
            json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
        ),
    )
    .await
    .unwrap();
    let bad = json!({"status": {"loadBalancer": {"ingress": [{"ip": "not-an-ip"}]},
        "conditions": [{"type": "ferrolb.io/IPAllocated", "status": "Yes", "reason": "not allowed", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    let e = api_error(
        svcs.patch_status("web", &PatchParams::default(), &Patch::Merge(&bad))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.contains("status.loadBalancer.ingress[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address"), "{}", e.message);
    assert!(
        e.message
            .contains("status.conditions[0].status: Unsupported value: \"Yes\""),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("status.conditions[0].reason: Invalid value: \"not allowed\""),
        "{}",
        e.message
    );
    // A condition without lastTransitionTime does not even decode (k8s-openapi requires it;
    // kube-apiserver rejects it at validation instead, with 422): rejected either way.
    let missing = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ok", "message": ""}]}});
    let e = api_error(
        svcs.patch_status("web", &PatchParams::default(), &Patch::Merge(&missing))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    assert!(e.message.contains("lastTransitionTime"), "{}", e.message);
}

#[tokio::test]
async fn json_patch_test_failure_is_unprocessable_and_strategic_patch_merges_ports() {
    let (_server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    svcs.create(
        &PostParams::default(),
        &service("web", json!({"ports": [{"name": "http", "port": 80}]})),
    )
    .await
    .unwrap();
    let patch: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/type", "value": "NodePort"}]))
            .unwrap();
    let e = api_error(
        svcs.patch("web", &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (
            422,
            "Invalid",
            "testing value /spec/type failed: test failed"
        )
    );
    let smp = json!({"spec": {"ports": [{"name": "https", "port": 443}]}});
    let after = svcs
        .patch("web", &PatchParams::default(), &Patch::Strategic(&smp))
        .await
        .unwrap();
    let ports: Vec<i32> = after
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(
        ports,
        vec![80, 443],
        "ports merged by their patch merge key"
    );
}

#[tokio::test]
async fn strategic_merge_patch_is_unsupported_for_custom_resources() {
    let (server, _client) = common::start().await;
    server
        .store()
        .create(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
            "test",
        )
        .unwrap();
    server.store().create(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}}), "test").unwrap();
    let reply = server.request(
        &ferrolb_testapiserver::ApiRequest::new(
            "PATCH",
            "/apis/example.com/v1/namespaces/default/widgets/w",
        )
        .with_body("application/strategic-merge-patch+json", "{}"),
    );
    let ferrolb_testapiserver::ApiReply::Error(e) = reply else {
        panic!("expected an error")
    };
    assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
}

#[tokio::test]
async fn delete_with_finalizer_marks_then_removes_when_last_finalizer_goes() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "c", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let pending = cms.delete("c", &DeleteParams::default()).await.unwrap();
    let obj = pending
        .left()
        .expect("object returned while finalizers remain");
    assert!(obj.metadata.deletion_timestamp.is_some());
    assert_eq!(obj.metadata.deletion_grace_period_seconds, Some(0));
    // A new finalizer on a terminating object is refused.
    let add = json!({"metadata": {"finalizers": ["example.com/hold", "example.com/other"]}});
    let e = api_error(
        cms.patch("c", &PatchParams::default(), &Patch::Merge(&add))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        e.message
    );
    let clear = json!({"metadata": {"finalizers": null}});
    cms.patch("c", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .unwrap();
    assert_eq!(api_error(cms.get("c").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn delete_answers_with_the_service_or_a_status_and_checks_preconditions() {
    let (_server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    svcs.create(
        &PostParams::default(),
        &service("web", json!({"ports": [{"port": 80}]})),
    )
    .await
    .unwrap();
    let stale = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: Some("1".into()),
            uid: None,
        }),
        ..Default::default()
    };
    let e = api_error(svcs.delete("web", &stale).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .contains("Precondition failed: ResourceVersion in precondition: 1"),
        "{}",
        e.message
    );
    // Services are returned on delete (ReturnDeletedObject); most kinds answer a Status.
    assert!(
        svcs.delete("web", &DeleteParams::default())
            .await
            .unwrap()
            .is_left()
    );
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"password": "x"}, "type": "kubernetes.io/basic-auth"})).unwrap();
    let created = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(
        created.data.unwrap()["password"].0,
        b"x",
        "stringData folds into data"
    );
    assert!(created.string_data.is_none());
    let status = secrets
        .delete("s", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("a Status");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
}

#[tokio::test]
async fn list_carries_resource_version_and_filters_by_selectors() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"tier": tier}}}))
                .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let list = cms
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert!(list.metadata.resource_version.is_some());
    let names: Vec<String> = list
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "c"]);
    let list = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let e = api_error(
        cms.list(&ListParams::default().fields("data.x=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (400, "BadRequest", "field label not supported: data.x")
    );
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
}

#[tokio::test]
async fn no_op_update_writes_nothing() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = server.store().resource_version();
    let same = cms
        .replace("c", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(server.store().resource_version(), rv);
    let log = server.writes();
    assert_eq!(log.last().unwrap().method, "PUT");
    assert_eq!(log.last().unwrap().status, 200);
}

#[tokio::test]
async fn delete_collection_removes_the_selected_objects() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}}))
                .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=x"),
        )
        .await
        .unwrap();
    assert_eq!(deleted.left().expect("the deleted objects").items.len(), 2);
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, vec!["c"]);
}

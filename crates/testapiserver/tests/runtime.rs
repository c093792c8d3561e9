//! kube-runtime helpers and whole-cluster behaviour: the finalizer helper (JSON Patch with
//! `test`), the event Recorder (POST, then PATCH for a series), a `#[derive(CustomResource)]`
//! type served after its CRD is created, discovery, CRD/namespace deletion, garbage
//! collection, and fault injection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrolb_testapiserver::Fault;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, Event as FinalizerEvent};
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "ferrolb.test",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd"
)]
pub struct WidgetSpec {
    pub size: u32,
    #[serde(default)]
    pub colors: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct WidgetStatus {
    pub ready: bool,
}

async fn install_widget_crd(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    common::within(
        "CRD established",
        await_condition(
            crds,
            "widgets.ferrolb.test",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap();
}

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed")]
struct ReconcileError;

#[tokio::test]
async fn finalizer_helper_adds_and_removes_its_finalizer_with_json_patch_tests() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let obj = Arc::new(cms.create(&PostParams::default(), &cm).await.unwrap());
    let cleanups = Arc::new(AtomicUsize::new(0));
    let run = |obj: Arc<ConfigMap>| {
        let cleanups = cleanups.clone();
        finalizer::finalizer(&cms, "ferrolb.io/cleanup", obj, move |event| async move {
            if let FinalizerEvent::Cleanup(_) = event {
                cleanups.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, ReconcileError>(Action::await_change())
        })
    };
    run(obj.clone()).await.unwrap();
    let with = cms.get("c").await.unwrap();
    assert_eq!(with.finalizers(), ["ferrolb.io/cleanup"]);
    let patch = server.writes().pop().unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/json-patch+json")
    );
    assert!(patch.body.contains("\"op\":\"test\""), "{}", patch.body);
    // A second finalizer helper working from a stale copy fails its test op.
    assert!(
        run(obj).await.is_err(),
        "stale view: the test op protects the list"
    );
    cms.delete("c", &DeleteParams::default()).await.unwrap();
    let deleting = cms.get("c").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    run(Arc::new(deleting)).await.unwrap();
    assert_eq!(cleanups.load(Ordering::SeqCst), 1);
    assert!(
        cms.get_opt("c").await.unwrap().is_none(),
        "gone once the last finalizer is removed"
    );
}

#[tokio::test]
async fn recorder_posts_then_patches_a_series() {
    let (server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = svcs.get("kubernetes").await.unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "ferrolb-controller".into(),
            instance: Some("ferrolb-0".into()),
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "IPAllocated".into(),
        note: Some("192.0.2.1 from pool default".into()),
        action: "Allocate".into(),
        secondary: None,
    };
    recorder.publish(&ev, &svc.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &svc.object_ref(&())).await.unwrap();
    let writes = server.writes();
    let event_writes: Vec<_> = writes
        .iter()
        .filter(|w| {
            w.path
                .starts_with("/apis/events.k8s.io/v1/namespaces/default/events")
        })
        .collect();
    assert_eq!(event_writes.len(), 2);
    assert_eq!(event_writes[0].method, "POST");
    assert_eq!(
        (
            event_writes[1].method.as_str(),
            event_writes[1].content_type.as_deref()
        ),
        ("PATCH", Some("application/merge-patch+json"))
    );
    assert_eq!(event_writes[1].status, 200);
    let events: Api<K8sEvent> = Api::namespaced(client, "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.series.as_ref().unwrap().count, 2);
    assert_eq!(
        e.reporting_controller.as_deref(),
        Some("ferrolb-controller")
    );
    assert_eq!(
        e.regarding.as_ref().unwrap().name.as_deref(),
        Some("kubernetes")
    );
}

#[tokio::test]
async fn events_v1_validation_rejects_a_changed_note() {
    let (_server, client) = common::start().await;
    let events: Api<K8sEvent> = Api::namespaced(client, "default");
    let e: K8sEvent = serde_json::from_value(json!({
        "metadata": {"name": "e1"}, "eventTime": "2024-01-01T00:00:00.000000Z", "type": "Normal",
        "reason": "R", "action": "A", "note": "first", "reportingController": "ferrolb.io/controller", "reportingInstance": "i"
    }))
    .unwrap();
    events.create(&PostParams::default(), &e).await.unwrap();
    let err = events
        .patch(
            "e1",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "second"})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("expected an API error")
    };
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .contains("note: Invalid value: \"second\": field is immutable"),
        "{}",
        s.message
    );
    let bad: K8sEvent = serde_json::from_value(
        json!({"metadata": {"name": "e2"}, "type": "Normal", "reason": "R", "action": "A"}),
    )
    .unwrap();
    let kube::Error::Api(s) = events
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert!(
        s.message.contains("eventTime: Required value")
            && s.message.contains("reportingController: Required value"),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn derived_custom_resource_is_served_after_its_crd_is_created() {
    let (server, client) = common::start().await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    assert!(
        widgets.list(&ListParams::default()).await.is_err(),
        "not served before the CRD exists"
    );
    install_widget_crd(&client).await;
    let w = Widget::new(
        "w1",
        WidgetSpec {
            size: 3,
            colors: vec![],
        },
    );
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let st = widgets
        .patch_status("w1", &PatchParams::apply("ferrolb-controller"), &Patch::Apply(json!({"apiVersion": "ferrolb.test/v1", "kind": "Widget", "status": {"ready": true}})))
        .await
        .unwrap();
    assert!(st.status.unwrap().ready);
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
    let grown = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(grown.metadata.generation, Some(2));
    assert!(
        grown.status.unwrap().ready,
        "status kept on main-resource writes"
    );
    // Unknown fields are pruned by the schema, like kube-apiserver's structural pruning.
    let pruned = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"typo": 1}})),
        )
        .await
        .unwrap();
    let raw = server
        .store()
        .get("ferrolb.test/v1", "Widget", "default", "w1")
        .unwrap();
    assert!(raw["spec"].get("typo").is_none());
    assert_eq!(pruned.spec.size, 4);
}

#[tokio::test]
async fn discovery_lists_builtins_and_custom_resources() {
    let (_server, client) = common::start().await;
    install_widget_crd(&client).await;
    for aggregated in [false, true] {
        let discovery = kube::Discovery::new(client.clone());
        let discovery = if aggregated {
            discovery.run_aggregated().await.unwrap()
        } else {
            discovery.run().await.unwrap()
        };
        assert!(discovery.has_group("ferrolb.test"));
        assert!(discovery.has_group("coordination.k8s.io"));
        let (ar, caps) = discovery
            .groups()
            .find(|g| g.name() == "ferrolb.test")
            .unwrap()
            .recommended_kind("Widget")
            .unwrap();
        assert_eq!(ar.plural, "widgets");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(
            caps.subresources
                .iter()
                .any(|(s, _)| s.plural == "widgets/status" || s.plural == "status"),
            "{:?}",
            caps.subresources
        );
        let core = discovery.groups().find(|g| g.name() == "").unwrap();
        let (svc, _) = core.recommended_kind("Service").unwrap();
        assert_eq!(svc.plural, "services");
    }
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (
            version.major.as_str(),
            version.minor.as_str(),
            version.git_version.as_str()
        ),
        ("1", "31", "v1.31.0")
    );
}

#[tokio::test]
async fn deleting_a_crd_waits_for_finalized_instances_then_stops_serving() {
    let (_server, client) = common::start().await;
    install_widget_crd(&client).await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let mut w = Widget::new(
        "w1",
        WidgetSpec {
            size: 1,
            colors: vec![],
        },
    );
    w.metadata.finalizers = Some(vec!["ferrolb.io/hold".into()]);
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.ferrolb.test", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = crds.get("widgets.ferrolb.test").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    let held = widgets.get("w1").await.unwrap();
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "instances are being deleted"
    );
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(
        crds.get_opt("widgets.ferrolb.test")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        widgets.list(&ListParams::default()).await.is_err(),
        "no longer served"
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let (_server, client) = common::start().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "gone");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap(),
    )
    .await
    .unwrap();
    nss.delete("gone", &DeleteParams::default()).await.unwrap();
    assert!(nss.get_opt("gone").await.unwrap().is_none());
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn dependents_follow_their_owner_unless_orphaned() {
    let (_server, client) = common::start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let owner = pods
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "speaker-0"}, "spec": {"containers": [{"name": "s", "image": "x"}]}})).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["dep-a", "dep-b"] {
        let mut cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        cm.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    pods.delete(
        "speaker-0",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let orphan = cms.get("dep-a").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    let owner = pods
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "speaker-1"}, "spec": {"containers": [{"name": "s", "image": "x"}]}})).unwrap())
        .await
        .unwrap();
    let mut cm = cms.get("dep-b").await.unwrap();
    cm.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
    cms.replace("dep-b", &PostParams::default(), &cm)
        .await
        .unwrap();
    pods.delete("speaker-1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        cms.get_opt("dep-b").await.unwrap().is_none(),
        "garbage collected with its owner"
    );
    assert!(cms.get_opt("dep-a").await.unwrap().is_some());
}

#[tokio::test]
async fn injected_faults_hit_the_next_matching_requests() {
    let (server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    server.inject_fault(
        Fault::on_path("/api/v1/namespaces/default/services/kubernetes")
            .method("GET")
            .respond(500),
    );
    let kube::Error::Api(s) = svcs.get("kubernetes").await.unwrap_err() else {
        panic!("expected an API error")
    };
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert!(
        svcs.get("kubernetes").await.is_ok(),
        "the fault was used up"
    );
    // kube-rs retries 429 after Retry-After; the request log shows both attempts.
    server.clear_requests();
    server.inject_fault(Fault::on_path("/api/v1/namespaces/default/services").too_many_requests(0));
    assert!(svcs.get("kubernetes").await.is_ok());
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    server.inject_fault(Fault::on_path("/api/v1/namespaces/default/services").close_connection());
    assert!(svcs.get("kubernetes").await.is_err());
    assert!(svcs.get("kubernetes").await.is_ok());
}

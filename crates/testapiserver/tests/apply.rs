//! Server-side apply through kube-rs: ownership per manager, conflicts and force, removal of
//! fields a manager stops applying, list semantics (atomic ingress, conditions keyed by type,
//! CRD map-lists from the schema), and the interplay with Update managers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ferrolb_testapiserver::{ApiReply, ApiRequest};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind, Status};
use serde_json::{Value, json};

fn api_error(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn managers(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Vec<(String, String, String)> {
    meta.managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                m.subresource.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn lb_service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
}

#[tokio::test]
async fn apply_creates_and_records_an_apply_manager() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
    let cm = cms
        .patch("c", &PatchParams::apply("alpha"), &Patch::Apply(&cfg))
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["k"], "v");
    assert_eq!(
        managers(&cm.metadata),
        vec![("alpha".into(), "Apply".into(), String::new())]
    );
    let entry = &cm.metadata.managed_fields.unwrap()[0];
    assert_eq!(entry.fields_type.as_deref(), Some("FieldsV1"));
    assert_eq!(
        entry.fields_v1.as_ref().unwrap().0,
        json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}),
        "an applied configuration owns its leaves, not the maps holding them"
    );
    let last = server.writes().pop().unwrap();
    assert_eq!((last.method.as_str(), last.status), ("PATCH", 201));
    assert_eq!(
        last.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(last.field_manager.as_deref(), Some("alpha"));
}

#[tokio::test]
async fn conflicting_managers_get_409_until_forced() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"owner": "alpha", "x": "1"}});
    cms.patch("c", &PatchParams::apply("alpha"), &Patch::Apply(&a))
        .await
        .unwrap();
    let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"owner": "beta", "x": "2"}});
    let e = api_error(
        cms.patch("c", &PatchParams::apply("beta"), &Patch::Apply(&b))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Apply failed with 2 conflicts: conflicts with \"alpha\":\n- .data.owner\n- .data.x"
    );
    let details = e.details.unwrap();
    assert_eq!(details.causes.len(), 2);
    assert_eq!(details.causes[0].reason, "FieldManagerConflict");
    assert_eq!(details.causes[0].message, "conflict with \"alpha\"");
    assert_eq!(details.causes[0].field, ".data.owner");
    // Same value: no conflict, shared ownership.
    let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
    cms.patch("c", &PatchParams::apply("beta"), &Patch::Apply(&same))
        .await
        .unwrap();
    let forced = cms
        .patch("c", &PatchParams::apply("beta").force(), &Patch::Apply(&b))
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["owner"], "beta");
    // alpha lost both fields; applying its old config again conflicts with beta now.
    let e = api_error(
        cms.patch("c", &PatchParams::apply("alpha"), &Patch::Apply(&a))
            .await
            .unwrap_err(),
    );
    assert!(
        e.message.contains("conflicts with \"beta\""),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn fields_a_manager_stops_applying_are_removed_unless_co_owned() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let both = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"shared": "s", "mine": "m"}}});
    cms.patch("c", &PatchParams::apply("alpha"), &Patch::Apply(&both))
        .await
        .unwrap();
    let shared = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"shared": "s"}}});
    cms.patch("c", &PatchParams::apply("beta"), &Patch::Apply(&shared))
        .await
        .unwrap();
    let none = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let after = cms
        .patch("c", &PatchParams::apply("alpha"), &Patch::Apply(&none))
        .await
        .unwrap();
    let labels = after.metadata.labels.unwrap();
    assert!(!labels.contains_key("mine"), "only alpha owned it");
    assert_eq!(labels["shared"], "s", "beta still owns it");
}

#[tokio::test]
async fn apply_needs_a_field_manager() {
    let (server, _client) = common::start().await;
    let reply = server.request(
        &ApiRequest::new("PATCH", "/api/v1/namespaces/default/configmaps/c").with_body(
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        ),
    );
    let ApiReply::Error(e) = reply else {
        panic!("expected an error")
    };
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
}

#[tokio::test]
async fn service_status_ingress_is_atomic_and_conditions_merge_by_type() {
    let (_server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    svcs.patch(
        "web",
        &PatchParams::apply("user"),
        &Patch::Apply(&lb_service("web")),
    )
    .await
    .unwrap();
    let status = |ips: &[&str], cond: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "status": {
            "loadBalancer": {"ingress": ips.iter().map(|ip| json!({"ip": ip, "ipMode": "VIP"})).collect::<Vec<_>>()},
            "conditions": [{"type": cond, "status": "True", "reason": "Allocated", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]
        }})
    };
    let ctl = svcs
        .patch_status(
            "web",
            &PatchParams::apply("ferrolb-controller"),
            &Patch::Apply(&status(
                &["192.0.2.1", "2001:db8::1"],
                "ferrolb.io/IPAllocated",
            )),
        )
        .await
        .unwrap();
    assert!(managers(&ctl.metadata).contains(&(
        "ferrolb-controller".into(),
        "Apply".into(),
        "status".into()
    )));
    // Another manager's condition of a different type does not conflict and both stay.
    let other = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "status": {
        "conditions": [{"type": "example.com/Other", "status": "False", "reason": "Nope", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    let both = svcs
        .patch_status("web", &PatchParams::apply("other"), &Patch::Apply(&other))
        .await
        .unwrap();
    let types: Vec<String> = both
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.clone())
        .collect();
    assert_eq!(types, vec!["ferrolb.io/IPAllocated", "example.com/Other"]);
    // Ingress is atomic: another manager setting a different list conflicts on the whole list.
    let rival = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.99", "ipMode": "VIP"}]}}});
    let e = api_error(
        svcs.patch_status("web", &PatchParams::apply("rival"), &Patch::Apply(&rival))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"ferrolb-controller\" with subresource \"status\": .status.loadBalancer.ingress"
    );
    // The controller re-applying one address replaces the list and keeps the other condition.
    let after = svcs
        .patch_status(
            "web",
            &PatchParams::apply("ferrolb-controller").force(),
            &Patch::Apply(&status(&["192.0.2.2"], "ferrolb.io/IPAllocated")),
        )
        .await
        .unwrap();
    let st = after.status.unwrap();
    let ips: Vec<String> = st
        .load_balancer
        .unwrap()
        .ingress
        .unwrap()
        .into_iter()
        .filter_map(|i| i.ip)
        .collect();
    assert_eq!(ips, vec!["192.0.2.2"]);
    assert_eq!(st.conditions.unwrap().len(), 2);
    // Dropping its condition removes only the controller's own entry.
    let no_cond = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.2", "ipMode": "VIP"}]}}});
    let after = svcs
        .patch_status(
            "web",
            &PatchParams::apply("ferrolb-controller"),
            &Patch::Apply(&no_cond),
        )
        .await
        .unwrap();
    let types: Vec<String> = after
        .status
        .unwrap()
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.clone())
        .collect();
    assert_eq!(types, vec!["example.com/Other"]);
    // Status applies never touch spec.
    assert_eq!(after.spec.unwrap().type_.as_deref(), Some("LoadBalancer"));
}

#[tokio::test]
async fn apply_to_status_of_a_missing_object_is_not_found() {
    let (_server, client) = common::start().await;
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let e = api_error(
        svcs.patch_status(
            "nope",
            &PatchParams::apply("ctl"),
            &Patch::Apply(&lb_service("nope")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn an_update_takes_ownership_from_the_applier() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
    cms.patch("c", &PatchParams::apply("alpha"), &Patch::Apply(&a))
        .await
        .unwrap();
    let edited = cms
        .patch(
            "c",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"x": "2"}})),
        )
        .await
        .unwrap();
    assert!(managers(&edited.metadata).contains(&(
        "kubectl-edit".into(),
        "Update".into(),
        String::new()
    )));
    let e = api_error(
        cms.patch("c", &PatchParams::apply("alpha"), &Patch::Apply(&a))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.x"
    );
}

#[tokio::test]
async fn lease_holders_contend_through_apply() {
    let (_server, client) = common::start().await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let claim = |holder: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "ferrolb"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": "2024-01-01T00:00:00.000000Z"}})
    };
    leases
        .patch(
            "ferrolb",
            &PatchParams::apply("ferrolb-a"),
            &Patch::Apply(&claim("a")),
        )
        .await
        .unwrap();
    // Renewing with the same fields but a new time is fine for the holder.
    let mut renew = claim("a");
    renew["spec"]["renewTime"] = json!("2024-01-01T00:00:05Z");
    let l = leases
        .patch(
            "ferrolb",
            &PatchParams::apply("ferrolb-a"),
            &Patch::Apply(&renew),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(l.spec.unwrap().renew_time).unwrap(),
        json!("2024-01-01T00:00:05.000000Z")
    );
    let e = api_error(
        leases
            .patch(
                "ferrolb",
                &PatchParams::apply("ferrolb-b"),
                &Patch::Apply(&claim("b")),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    let taken = leases
        .patch(
            "ferrolb",
            &PatchParams::apply("ferrolb-b").force(),
            &Patch::Apply(&claim("b")),
        )
        .await
        .unwrap();
    assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("b"));
}

#[tokio::test]
async fn crd_map_lists_merge_by_key_and_other_lists_are_atomic() {
    let (server, client) = common::start().await;
    server
        .store()
        .create(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "routers.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "routers", "kind": "Router"},
                    "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": {"type": "object", "properties": {
                            "peers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                "items": {"type": "object", "properties": {"name": {"type": "string"}, "asn": {"type": "integer"}}}},
                            "communities": {"type": "array", "items": {"type": "string"}}
                        }}}
                    }}}]}}),
            "test",
        )
        .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Router"),
        "routers",
    );
    let routers: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let cfg = |peer: &str, communities: &[&str]| {
        json!({"apiVersion": "example.com/v1", "kind": "Router", "metadata": {"name": "r"},
            "spec": {"peers": [{"name": peer, "asn": 64512}], "communities": communities}})
    };
    routers
        .patch(
            "r",
            &PatchParams::apply("a"),
            &Patch::Apply(&cfg("p1", &["65000:1"])),
        )
        .await
        .unwrap();
    let e = api_error(
        routers
            .patch(
                "r",
                &PatchParams::apply("b"),
                &Patch::Apply(&cfg("p2", &["65000:2"])),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message, "Apply failed with 1 conflict: conflict with \"a\": .spec.communities",
        "peers keyed by name do not conflict"
    );
    let r = routers
        .patch(
            "r",
            &PatchParams::apply("b").force(),
            &Patch::Apply(&cfg("p2", &["65000:2"])),
        )
        .await
        .unwrap();
    let names: Vec<&str> = r.data["spec"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["p1", "p2"]);
    assert_eq!(r.data["spec"]["communities"], json!(["65000:2"]));
}

#[tokio::test]
async fn put_by_a_controller_records_an_update_manager() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    let created = cms
        .create(
            &PostParams {
                field_manager: Some("creator".into()),
                ..Default::default()
            },
            &cm,
        )
        .await
        .unwrap();
    assert_eq!(
        managers(&created.metadata),
        vec![("creator".into(), "Update".into(), String::new())]
    );
    let mut next = created.clone();
    next.data.as_mut().unwrap().insert("b".into(), "2".into());
    let updated = cms
        .replace(
            "c",
            &PostParams {
                field_manager: Some("ctl".into()),
                ..Default::default()
            },
            &next,
        )
        .await
        .unwrap();
    let mf = updated.metadata.managed_fields.unwrap();
    let ctl = mf
        .iter()
        .find(|m| m.manager.as_deref() == Some("ctl"))
        .unwrap();
    assert_eq!(
        ctl.fields_v1.as_ref().unwrap().0,
        json!({"f:data": {"f:b": {}}}),
        "only the field it changed"
    );
}

//! kube-lease-manager (server-side apply plus strategic merge patches on a Lease, conflicts as
//! the lock signal) elects exactly one leader against this server, hands over on release, and
//! takes over an expired lease.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::coordination::v1::Lease;
use kube_lease_manager::LeaseManagerBuilder;

async fn manager(client: &kube::Client, identity: &str) -> kube_lease_manager::LeaseManager {
    LeaseManagerBuilder::new(client.clone(), "ferrolb-controller")
        .with_namespace("default")
        .with_identity(identity)
        .with_duration(2)
        .with_grace(1)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_leader_then_handover_on_release() {
    let (server, client) = common::start().await;
    let (mut a_leads, a_task) = manager(&client, "replica-a").await.watch().await;
    common::within("a leads", a_leads.wait_for(|l| *l))
        .await
        .unwrap();
    let b = manager(&client, "replica-b").await;
    let b_wait = tokio::spawn(async move { (b.changed().await.unwrap(), b) });
    // a renews through several lease durations while b waits: the lease stays a's.
    let renewals = |server: &ferrolb_testapiserver::ServerHandle| {
        // Renewals are strategic patches of renewTime alone (no holder change).
        server
            .requests()
            .iter()
            .filter(|r| {
                r.method == "PATCH"
                    && r.status == 200
                    && r.body.contains("renewTime")
                    && !r.body.contains("holderIdentity")
            })
            .count()
    };
    common::eventually("a renewed three times", || async { renewals(&server) >= 3 }).await;
    assert!(!b_wait.is_finished());
    let lease = server
        .store()
        .get_as::<Lease>("default", "ferrolb-controller")
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );
    // Dropping the receiver makes a release the lease; b takes it.
    drop(a_leads);
    common::within("a released", a_task).await.unwrap().unwrap();
    let (leads, _b) = common::within("b leads after release", b_wait)
        .await
        .unwrap();
    assert!(leads);
    let lease = server
        .store()
        .get_as::<Lease>("default", "ferrolb-controller")
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
}

#[tokio::test]
async fn expired_lease_is_taken_over() {
    let (server, client) = common::start().await;
    let a = manager(&client, "replica-a").await;
    assert!(common::within("a leads", a.changed()).await.unwrap());
    drop(a); // crashed: never renews, never releases
    let b = manager(&client, "replica-b").await;
    assert!(
        common::within("b leads after expiry", b.changed())
            .await
            .unwrap()
    );
    let lease = server
        .store()
        .get_as::<Lease>("default", "ferrolb-controller")
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
}

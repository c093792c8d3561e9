//! kube-runtime's watcher and reflector against the server: initial list and watch,
//! pagination over 500 objects, bookmarks, streaming lists, 410 Expired and relist recovery,
//! selector transitions, timeouts and closed streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use ferrolb_testapiserver::ServerConfig;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

async fn next_event<S>(stream: &mut S) -> watcher::Event<ConfigMap>
where
    S: futures_util::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    common::within("next watcher event", stream.next())
        .await
        .expect("stream ended")
        .expect("watcher error")
}

fn tokio_stream_from<T>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Unpin {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

fn name_of(e: &watcher::Event<ConfigMap>) -> Option<String> {
    match e {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o) => {
            o.metadata.name.clone()
        }
        _ => None,
    }
}

#[tokio::test]
async fn watcher_lists_then_streams_changes() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("before", json!({})))
        .await
        .unwrap();
    let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    assert!(matches!(
        next_event(&mut stream).await,
        watcher::Event::Init
    ));
    let e = next_event(&mut stream).await;
    assert!(matches!(e, watcher::Event::InitApply(_)) && name_of(&e).as_deref() == Some("before"));
    assert!(matches!(
        next_event(&mut stream).await,
        watcher::Event::InitDone
    ));
    cms.create(&PostParams::default(), &cm("after", json!({})))
        .await
        .unwrap();
    let e = next_event(&mut stream).await;
    assert!(matches!(e, watcher::Event::Apply(_)) && name_of(&e).as_deref() == Some("after"));
    cms.delete("before", &Default::default()).await.unwrap();
    let e = next_event(&mut stream).await;
    assert!(matches!(e, watcher::Event::Delete(_)) && name_of(&e).as_deref() == Some("before"));
}

#[tokio::test]
async fn reflector_pages_through_more_than_500_objects() {
    let (server, client) = common::start().await;
    for i in 0..1203 {
        server
            .store()
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:04}"), "namespace": "default"}}), "fixture")
            .unwrap();
    }
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(cms, watcher::Config::default())).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    common::within("reflector ready", reader.wait_until_ready())
        .await
        .unwrap();
    assert_eq!(reader.state().len(), 1203);
    let lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET" && r.path == "/api/v1/namespaces/default/configmaps" && !r.is_watch()
        })
        .collect();
    assert_eq!(lists.len(), 3, "500 + 500 + 203");
    assert!(
        lists
            .iter()
            .all(|r| r.param("limit").as_deref() == Some("500"))
    );
    assert!(
        lists[0].param("continue").is_none()
            && lists[1].param("continue").is_some()
            && lists[2].param("continue").is_some()
    );
    task.abort();
}

#[tokio::test]
async fn continue_tokens_page_a_consistent_snapshot_and_expire_after_compaction() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for n in ["a", "b", "c"] {
        cms.create(&PostParams::default(), &cm(n, json!({})))
            .await
            .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(1));
    let token = first.metadata.continue_.clone().unwrap();
    // A change after the first page is not visible in later pages (same snapshot).
    cms.delete("c", &Default::default()).await.unwrap();
    let second = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items[0].metadata.name.as_deref(), Some("c"));
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    assert!(second.metadata.continue_.is_none());
    server.compact_history();
    let e = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = e else {
        panic!("expected an API error")
    };
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn bookmarks_arrive_on_the_timer_and_on_demand() {
    let config = ServerConfig {
        bookmark_interval: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let (server, client) = common::start_with(config).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = server.store().resource_version().to_string();
    let mut events = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let first = common::within("timer bookmark", events.try_next())
        .await
        .unwrap()
        .unwrap();
    let WatchEvent::Bookmark(b) = first else {
        panic!("expected a bookmark, got {first:?}")
    };
    assert_eq!(b.metadata.resource_version, rv);
    assert_eq!(b.types.kind, "ConfigMap");
    cms.create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap();
    // Skip timer bookmarks until the change, then ask for one explicitly.
    loop {
        match common::within("added", events.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(o) => {
                assert_eq!(o.metadata.name.as_deref(), Some("x"));
                break;
            }
            WatchEvent::Bookmark(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    server.send_bookmarks();
    let WatchEvent::Bookmark(b) = common::within("bookmark", events.try_next())
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("expected a bookmark")
    };
    assert_eq!(
        b.metadata.resource_version,
        server.store().resource_version().to_string()
    );
}

#[tokio::test]
async fn streaming_list_ends_initial_events_with_a_marked_bookmark() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let mut stream = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    assert!(matches!(
        next_event(&mut stream).await,
        watcher::Event::Init
    ));
    assert!(matches!(
        next_event(&mut stream).await,
        watcher::Event::InitApply(_)
    ));
    assert!(matches!(
        next_event(&mut stream).await,
        watcher::Event::InitDone
    ));
    cms.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    assert_eq!(
        name_of(&next_event(&mut stream).await).as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn expired_resource_version_makes_the_watcher_relist() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    // The watcher only opens its watch when polled, so it runs in a task feeding a channel.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watch_stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    let pump = tokio::spawn(async move {
        while let Some(e) = watch_stream.next().await {
            if tx.send(e).is_err() {
                break;
            }
        }
    });
    let mut stream = tokio_stream_from(rx);
    for _ in 0..3 {
        next_event(&mut stream).await; // Init, InitApply(a), InitDone
    }
    common::eventually("watch open", || async { server.open_watches() == 1 }).await;
    // The watcher misses a change, the history is compacted, its stream is cut.
    server.pause_watches();
    cms.create(&PostParams::default(), &cm("missed", json!({})))
        .await
        .unwrap();
    server.compact_history();
    server.close_watches();
    server.resume_watches();
    let err = common::within("410", stream.next())
        .await
        .unwrap()
        .unwrap_err();
    let watcher::Error::WatchError(status) = err else {
        panic!("expected a watch error, got {err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    assert!(
        status.message.starts_with("too old resource version: "),
        "{}",
        status.message
    );
    assert!(matches!(
        next_event(&mut stream).await,
        watcher::Event::Init
    ));
    let mut names = Vec::new();
    loop {
        match next_event(&mut stream).await {
            watcher::Event::InitApply(o) => names.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, vec!["a", "missed"]);
    pump.abort();
    // A resourceVersion from the future is kube-apiserver's 504 "Too large resource version"
    // (kube-rs retries 504s, so this is checked in process).
    let reply = server.request(
        &ferrolb_testapiserver::ApiRequest::new("GET", "/api/v1/namespaces/default/configmaps")
            .with_query_string("watch=1&resourceVersion=999999"),
    );
    assert_eq!(reply.code(), 504);
}

#[tokio::test]
async fn leaving_the_label_selector_is_a_delete_for_the_watcher() {
    let (_server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("a", json!({"app": "web"})))
        .await
        .unwrap();
    let mut stream = watcher(cms.clone(), watcher::Config::default().labels("app=web")).boxed();
    for _ in 0..3 {
        next_event(&mut stream).await;
    }
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .unwrap();
    let e = next_event(&mut stream).await;
    assert!(matches!(e, watcher::Event::Delete(_)), "got {e:?}");
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    let e = next_event(&mut stream).await;
    assert!(matches!(e, watcher::Event::Apply(_)), "got {e:?}");
}

#[tokio::test]
async fn watch_ends_at_its_timeout_and_when_closed() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut ends = cms
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    assert!(
        common::within("timeout ends the stream", ends.try_next())
            .await
            .unwrap()
            .is_none()
    );
    let mut open = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    common::eventually("watch open", || async { server.open_watches() == 1 }).await;
    server.close_watches();
    assert!(
        common::within("close ends the stream", open.try_next())
            .await
            .unwrap()
            .is_none()
    );
    common::eventually("watch closed", || async { server.open_watches() == 0 }).await;
}

#[tokio::test]
async fn metadata_watcher_gets_partial_object_metadata() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a", json!({"k": "v"})))
        .await
        .unwrap();
    let meta: Api<kube::core::PartialObjectMeta<ConfigMap>> = Api::namespaced(client, "default");
    let mut stream = watcher(meta, watcher::Config::default()).boxed();
    let mut seen = None;
    while seen.is_none() {
        if let watcher::Event::InitApply(m) = common::within("metadata", stream.next())
            .await
            .unwrap()
            .unwrap()
        {
            seen = Some(m);
        }
    }
    let m = seen.unwrap();
    assert_eq!(m.metadata.labels.unwrap()["k"], "v");
    assert!(m.types.is_some_and(|t| t.kind == "PartialObjectMetadata"));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/configmaps"))
    );
}

#[tokio::test]
async fn bookmarks_follow_the_global_resource_version() {
    let (server, client) = common::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = server.store().resource_version();
    let mut events = cms
        .watch(&WatchParams::default(), &rv.to_string())
        .await
        .unwrap()
        .boxed();
    common::eventually("watch open", || async { server.open_watches() == 1 }).await;
    server.advance_resource_version(10);
    server.send_bookmarks();
    let WatchEvent::Bookmark(b) = common::within("bookmark", events.try_next())
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("expected a bookmark")
    };
    assert_eq!(b.metadata.resource_version, (rv + 10).to_string());
}

//! The server end to end on loopback with a fake source: every call answers from the source,
//! the watch stream reports changes, and health and reflection work without our proto files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_api_grpc::pb::route_change::Action;
use ferrolb_api_grpc::pb::watch_event::Event;
use ferrolb_api_grpc::{StatusSource, connect, pb, serve};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[derive(Default)]
struct State {
    sessions: Vec<pb::Session>,
    routes: Vec<pb::PeerRoutes>,
    generation: u64,
}

struct Fake {
    state: Mutex<State>,
    tx: watch::Sender<()>,
}

impl Fake {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap());
        self.tx.send_replace(());
    }
}

impl StatusSource for Fake {
    fn sessions(&self) -> pb::ListSessionsResponse {
        pb::ListSessionsResponse {
            sessions: self.state.lock().unwrap().sessions.clone(),
            peers_without_session: vec![pb::PeerProblem {
                peer: "far".into(),
                reason: "nodeSelectors do not select this node".into(),
            }],
        }
    }
    fn routes(&self) -> pb::ListRoutesResponse {
        pb::ListRoutesResponse {
            peers: self.state.lock().unwrap().routes.clone(),
        }
    }
    fn services(&self) -> pb::ListServicesResponse {
        pb::ListServicesResponse::default()
    }
    fn pools(&self) -> pb::ListPoolsResponse {
        pb::ListPoolsResponse {
            pools: vec![pb::Pool {
                name: "big".into(),
                ipv4: None,
                ipv6: Some(pb::FamilyUsage {
                    total: u128::MAX.to_string(),
                    in_use: "1".into(),
                    available: (u128::MAX - 1).to_string(),
                    used_ratio: 0.0,
                }),
            }],
        }
    }
    fn config(&self) -> pb::ConfigState {
        pb::ConfigState {
            generation: self.state.lock().unwrap().generation,
            ..Default::default()
        }
    }
    fn l2(&self) -> pb::ListL2Response {
        pb::ListL2Response {
            running: true,
            node: "n1".into(),
            groups: vec![pb::L2Group {
                key: "192.0.2.10".into(),
                owner: "n1".into(),
                owned_here: true,
                ..Default::default()
            }],
            ..Default::default()
        }
    }
    fn changes(&self) -> watch::Receiver<()> {
        self.tx.subscribe()
    }
}

fn session(name: &str, state: &str) -> pb::Session {
    pb::Session {
        name: name.into(),
        state: state.into(),
        established: state == "Established",
        ..Default::default()
    }
}

async fn start() -> (Arc<Fake>, String) {
    let (tx, _) = watch::channel(());
    let fake = Arc::new(Fake {
        state: Mutex::new(State {
            sessions: vec![session("rtr", "Established")],
            routes: vec![pb::PeerRoutes {
                peer: "rtr".into(),
                routes: vec![pb::Route {
                    prefix: "203.0.113.10/32".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            generation: 1,
        }),
        tx,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(listener, fake.clone(), std::future::pending()));
    (fake, address)
}

async fn channel(address: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_call_answers_from_the_source_and_a_peer_filter_applies() {
    let (_fake, address) = start().await;
    let mut client = connect(&address, Duration::from_secs(3)).await.unwrap();
    let sessions = client
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sessions.sessions[0].name, "rtr");
    assert_eq!(sessions.peers_without_session[0].peer, "far");
    let pools = client
        .list_pools(pb::ListPoolsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        pools.pools[0].ipv6.as_ref().unwrap().total,
        "340282366920938463463374607431768211455",
        "u128 counts travel exactly"
    );
    let l2 = client
        .list_l2(pb::ListL2Request::default())
        .await
        .unwrap()
        .into_inner();
    assert!(l2.running);
    assert_eq!(l2.groups[0].owner, "n1");
    let config = client
        .get_config(pb::GetConfigRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.generation, 1);
    let missing = client
        .list_routes(pb::ListRoutesRequest {
            peer: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn a_missing_speaker_is_one_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = connect(&address, Duration::from_secs(1)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("no ferrolb speaker answers on {address} (")),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn watch_starts_with_the_current_sessions_then_reports_session_and_route_changes() {
    let (fake, address) = start().await;
    let mut client = connect(&address, Duration::from_secs(3)).await.unwrap();
    let mut stream = client
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.initial);
    assert!(matches!(first.event, Some(Event::Session(ref s)) if s.state == "Established"));
    let second = stream.message().await.unwrap().unwrap();
    assert!(matches!(second.event, Some(Event::Config(_))));

    fake.update(|s| {
        s.sessions = vec![session("rtr", "Idle")];
        s.routes[0].routes.clear();
    });
    let down = tokio::time::timeout(Duration::from_secs(1), stream.message())
        .await
        .expect("a session change within 1 s")
        .unwrap()
        .unwrap();
    assert!(!down.initial);
    assert!(matches!(down.event, Some(Event::Session(ref s)) if s.state == "Idle"));
    let withdrawn = stream.message().await.unwrap().unwrap();
    match withdrawn.event {
        Some(Event::Route(r)) => {
            assert_eq!(r.action, i32::from(Action::Withdrawn));
            assert_eq!(r.route.unwrap().prefix, "203.0.113.10/32");
        }
        other => panic!("expected a withdrawn route, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_ignores_counter_only_changes() {
    let (fake, address) = start().await;
    let mut client = connect(&address, Duration::from_secs(3)).await.unwrap();
    let mut stream = client
        .watch(pb::WatchRequest { skip_initial: true })
        .await
        .unwrap()
        .into_inner();
    fake.update(|s| {
        s.sessions[0].uptime_seconds = 99;
        s.sessions[0].messages_sent = Some(pb::MessageCounters {
            keepalive: 7,
            total: 7,
            ..Default::default()
        });
    });
    let quiet = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(quiet.is_err(), "no event for keepalive counters: {quiet:?}");
}

#[tokio::test]
async fn health_reports_the_status_service_serving() {
    let (_fake, address) = start().await;
    let mut health = HealthClient::new(channel(&address).await);
    for service in ["", "ferrolb.v1.Status"] {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status, ServingStatus::Serving as i32, "{service:?}");
    }
}

#[tokio::test]
async fn reflection_lists_status_health_and_reflection_services() {
    let (_fake, address) = start().await;
    let mut reflection = ServerReflectionClient::new(channel(&address).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("expected a service list, got {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "ferrolb.v1.Status",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn reflection_v1alpha_answers_for_older_tools() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as Request;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as Client;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as Ask;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as Answer;

    let (_fake, address) = start().await;
    let mut reflection = Client::new(channel(&address).await);
    let request = Request {
        host: String::new(),
        message_request: Some(Ask::FileContainingSymbol("ferrolb.v1.Status".into())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(Answer::FileDescriptorResponse(files)) = reply.message_response else {
        panic!("expected file descriptors, got {reply:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

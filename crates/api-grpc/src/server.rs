//! The server side: [`StatusSource`] (what a status server answers from), the `Status`
//! service with its change-diffing `Watch` stream, and [`serve`], which adds `grpc.health.v1`
//! and server reflection (v1 and v1alpha) so that tools and clients in any language work from
//! the running server alone.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};
use tracing::debug;

use crate::pb;
use crate::pb::route_change::Action;
use crate::pb::status_server::StatusServer;
use crate::pb::watch_event::Event;

/// What a status server answers from: snapshots of the current state, and a signal that
/// anything may have changed. Implementations must be cheap to call (every RPC calls them).
pub trait StatusSource: Send + Sync + 'static {
    fn sessions(&self) -> pb::ListSessionsResponse;
    fn routes(&self) -> pb::ListRoutesResponse;
    fn services(&self) -> pb::ListServicesResponse;
    fn pools(&self) -> pb::ListPoolsResponse;
    fn config(&self) -> pb::ConfigState;
    /// Layer 2: VIP groups, owners, members.
    fn l2(&self) -> pb::ListL2Response;
    /// Marked changed whenever any snapshot above may differ.
    fn changes(&self) -> watch::Receiver<()>;
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `Status`, health and reflection on `listener` until `shutdown` completes.
pub async fn serve<S: StatusSource>(
    listener: TcpListener,
    source: Arc<S>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<StatusServer<StatusService<S>>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // Shutting down ends the open Watch streams too, so that the graceful shutdown, which
    // waits for every stream, is quick.
    let (closing_tx, closing) = watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        closing_tx.send_replace(true);
    };
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(StatusServer::new(StatusService { source, closing }))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// The `ferrolb.v1.Status` service over a [`StatusSource`].
pub struct StatusService<S> {
    source: Arc<S>,
    /// Becomes true when the server shuts down.
    closing: watch::Receiver<bool>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl<S: StatusSource> pb::status_server::Status for StatusService<S> {
    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let peer = request.into_inner().peer;
        let mut all = self.source.sessions();
        if !peer.is_empty() {
            all.sessions.retain(|s| s.name == peer);
            all.peers_without_session.retain(|p| p.peer == peer);
            if all.sessions.is_empty() && all.peers_without_session.is_empty() {
                return Err(Status::not_found(format!("no peer named {peer:?}")));
            }
        }
        Ok(Response::new(all))
    }

    async fn list_routes(
        &self,
        request: Request<pb::ListRoutesRequest>,
    ) -> Result<Response<pb::ListRoutesResponse>, Status> {
        let peer = request.into_inner().peer;
        let mut all = self.source.routes();
        if !peer.is_empty() {
            all.peers.retain(|p| p.peer == peer);
            if all.peers.is_empty() {
                return Err(Status::not_found(format!("no session named {peer:?}")));
            }
        }
        Ok(Response::new(all))
    }

    async fn list_services(
        &self,
        _: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        Ok(Response::new(self.source.services()))
    }

    async fn list_pools(
        &self,
        _: Request<pb::ListPoolsRequest>,
    ) -> Result<Response<pb::ListPoolsResponse>, Status> {
        Ok(Response::new(self.source.pools()))
    }

    async fn list_l2(
        &self,
        _: Request<pb::ListL2Request>,
    ) -> Result<Response<pb::ListL2Response>, Status> {
        Ok(Response::new(self.source.l2()))
    }

    async fn get_config(
        &self,
        _: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::ConfigState>, Status> {
        Ok(Response::new(self.source.config()))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let skip_initial = request.into_inner().skip_initial;
        let (tx, rx) = mpsc::channel(256);
        let source = self.source.clone();
        let mut closing = self.closing.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = watch_loop(source, skip_initial, tx) => {}
                _ = closing.wait_for(|closing| *closing) => {}
            }
            debug!("status watch stream ended");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// What of a session is worth an event: not its message counters or uptime, which move with
/// every KEEPALIVE.
fn significant(session: &pb::Session) -> pb::Session {
    pb::Session {
        uptime_seconds: 0,
        messages_sent: None,
        messages_received: None,
        ..session.clone()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

type RouteKey = (String, String);

fn route_map(routes: &pb::ListRoutesResponse) -> BTreeMap<RouteKey, pb::Route> {
    routes
        .peers
        .iter()
        .flat_map(|p| {
            p.routes
                .iter()
                .map(|r| ((p.peer.clone(), r.prefix.clone()), r.clone()))
        })
        .collect()
}

/// The changes from `before` to `after` as events, sessions first.
pub fn diff_events(
    before: &BTreeMap<String, pb::Session>,
    after: &BTreeMap<String, pb::Session>,
    routes_before: &BTreeMap<RouteKey, pb::Route>,
    routes_after: &BTreeMap<RouteKey, pb::Route>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for (name, session) in after {
        let changed = before
            .get(name)
            .is_none_or(|old| significant(old) != significant(session));
        if changed {
            events.push(Event::Session(session.clone()));
        }
    }
    for name in before.keys() {
        if !after.contains_key(name) {
            events.push(Event::SessionRemoved(name.clone()));
        }
    }
    for ((peer, prefix), route) in routes_after {
        let action = match routes_before.get(&(peer.clone(), prefix.clone())) {
            None => Action::Added,
            Some(old) if old != route => Action::Changed,
            Some(_) => continue,
        };
        events.push(Event::Route(pb::RouteChange {
            peer: peer.clone(),
            action: action.into(),
            route: Some(route.clone()),
        }));
    }
    for ((peer, _), route) in routes_before {
        if !routes_after.contains_key(&(peer.clone(), route.prefix.clone())) {
            events.push(Event::Route(pb::RouteChange {
                peer: peer.clone(),
                action: Action::Withdrawn.into(),
                route: Some(route.clone()),
            }));
        }
    }
    events
}

async fn watch_loop<S: StatusSource>(
    source: Arc<S>,
    skip_initial: bool,
    tx: mpsc::Sender<Result<pb::WatchEvent, Status>>,
) {
    let mut changes = source.changes();
    changes.mark_unchanged();
    let sessions_of = |s: &S| -> BTreeMap<String, pb::Session> {
        s.sessions()
            .sessions
            .into_iter()
            .map(|x| (x.name.clone(), x))
            .collect()
    };
    let mut sessions = sessions_of(&source);
    let mut routes = route_map(&source.routes());
    let config = source.config();
    let mut config_key = (config.generation, config.stale);
    if !skip_initial {
        let mut initial: Vec<Event> = sessions.values().cloned().map(Event::Session).collect();
        initial.push(Event::Config(config));
        for event in initial {
            let message = pb::WatchEvent {
                at_unix_ms: now_ms(),
                initial: true,
                event: Some(event),
            };
            if tx.send(Ok(message)).await.is_err() {
                return;
            }
        }
    }
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = tx.closed() => return,
        }
        let new_sessions = sessions_of(&source);
        let new_routes = route_map(&source.routes());
        let mut events = diff_events(&sessions, &new_sessions, &routes, &new_routes);
        let config = source.config();
        if (config.generation, config.stale) != config_key {
            config_key = (config.generation, config.stale);
            events.push(Event::Config(config));
        }
        sessions = new_sessions;
        routes = new_routes;
        for event in events {
            let message = pb::WatchEvent {
                at_unix_ms: now_ms(),
                initial: false,
                event: Some(event),
            };
            if tx.send(Ok(message)).await.is_err() {
                return;
            }
        }
    }
}

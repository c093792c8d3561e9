//! Shared pieces of the bgpd lab tests: a speaker running inside a lab node's network
//! namespace, and the routes and peers the tests give it. The routers' views are read with
//! `ferrolb_labtest::{frr, bird, gobgp}`.
//!
//! The speaker runs in-process on a tokio runtime whose worker threads were created by a thread
//! that joined the node's namespace, so every socket it opens lives there while the test thread
//! stays in the root namespace.

#![allow(dead_code)]
// Test support: a failed lab step should fail the test loudly, right where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_bgpd::fsm::State;
use ferrolb_bgpd::rib_out::RouteAttributes;
use ferrolb_bgpd::wire::{Community, LargeCommunity};
use ferrolb_bgpd::{PeerConfig, PeerStatus, Speaker, SpeakerConfig};
use ferrolb_labtest::{Lab, POLL, TIMEOUT, wait_for};
use ipnet::IpNet;
use tokio::runtime::Runtime;

/// A ferrolb speaker inside a lab node.
pub struct NodeSpeaker {
    rt: Option<Runtime>,
    speaker: Option<Arc<Speaker>>,
}

impl NodeSpeaker {
    /// Starts a speaker in node `node` (1-based) listening on `listen` (empty: active only).
    pub fn start(lab: &Lab, node: usize, listen: Vec<SocketAddr>) -> NodeSpeaker {
        let rt = ferrolb_labtest::spawn_in_netns(&lab.node_ns(node), || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        })
        .join()
        .expect("namespace thread")
        .expect("join namespace")
        .expect("tokio runtime");
        let speaker = run(&rt, async move {
            Speaker::start(SpeakerConfig { listen }).await
        })
        .expect("speaker starts");
        NodeSpeaker {
            rt: Some(rt),
            speaker: Some(Arc::new(speaker)),
        }
    }

    fn rt(&self) -> &Runtime {
        self.rt.as_ref().expect("runtime")
    }

    fn speaker(&self) -> Arc<Speaker> {
        self.speaker.clone().expect("speaker")
    }

    pub fn set_peers(&self, peers: Vec<PeerConfig>) {
        let s = self.speaker();
        run(self.rt(), async move { s.set_peers(peers).await }).expect("set_peers");
    }

    pub fn set_routes(&self, peer: &str, routes: Vec<(IpNet, RouteAttributes)>) {
        let s = self.speaker();
        let peer = peer.to_string();
        run(self.rt(), async move { s.set_routes(&peer, routes).await }).expect("set_routes");
    }

    pub fn status(&self, peer: &str) -> Option<PeerStatus> {
        self.speaker().status().borrow().peers.get(peer).cloned()
    }

    /// Waits until the peer is Established and has sent its initial table.
    pub fn wait_synced(&self, peer: &str) -> PeerStatus {
        wait_for(TIMEOUT, POLL, || {
            let s = self.status(peer);
            match s {
                Some(s) if s.state == State::Established && s.initial_sync_done => Ok(s),
                other => Err(other.map(|s| (s.state, s.last_error, s.last_connect_error))),
            }
        })
        .expect("session established and synced")
    }

    pub fn wait_state(&self, peer: &str, state: State) -> PeerStatus {
        wait_for(TIMEOUT, POLL, || match self.status(peer) {
            Some(s) if s.state == state => Ok(s),
            other => Err(other.map(|s| s.state)),
        })
        .unwrap_or_else(|e| panic!("peer {peer} never reached {state}: {e}"))
    }

    /// Stops with a Cease/Administrative Shutdown carrying `text`.
    pub fn shutdown(mut self, text: &str) {
        let speaker = self.speaker.take().expect("speaker");
        let speaker = Arc::try_unwrap(speaker).expect("no other handle");
        let text = text.to_string();
        run(self.rt(), async move {
            speaker.shutdown(Some(text)).await;
        });
    }

    /// Starts draining (see `Speaker::drain`) in the background; the returned handle finishes
    /// when the speaker has stopped.
    pub fn start_drain(mut self, hold: Duration, text: &str) -> std::thread::JoinHandle<()> {
        let speaker = self.speaker.take().expect("speaker");
        let speaker = Arc::try_unwrap(speaker).expect("no other handle");
        let text = text.to_string();
        let rt = self.rt.take().expect("runtime");
        std::thread::spawn(move || {
            rt.block_on(rt.spawn(async move { speaker.drain(hold, Some(text)).await }))
                .expect("drain task");
            rt.shutdown_background();
        })
    }

    /// Vanishes like a killed process: sockets close, no NOTIFICATION.
    pub fn crash(mut self) {
        self.speaker = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for NodeSpeaker {
    fn drop(&mut self) {
        self.speaker = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` on a worker thread of `rt` (inside the node's namespace) and waits for it.
fn run<T: Send + 'static>(rt: &Runtime, fut: impl Future<Output = T> + Send + 'static) -> T {
    rt.block_on(rt.spawn(fut)).expect("task panicked")
}

pub fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

pub fn attrs(
    communities: &[&str],
    large: &[(u32, u32, u32)],
    local_pref: Option<u32>,
) -> RouteAttributes {
    RouteAttributes::new(
        local_pref,
        None,
        communities.iter().map(|c| {
            let (a, b) = c.split_once(':').expect("A:B");
            Community::new(a.parse().expect("u16"), b.parse().expect("u16"))
        }),
        large.iter().map(|(g, l1, l2)| LargeCommunity {
            global_admin: *g,
            local_data1: *l1,
            local_data2: *l2,
        }),
    )
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// A peer with the test defaults: fast hold time and retries.
pub fn peer(name: &str, address: IpAddr, local_as: u32, peer_as: u32, node: usize) -> PeerConfig {
    let mut p = PeerConfig::new(name, address, local_as, peer_as, Lab::node_v4(node));
    p.hold_time = 9;
    p.connect_retry.initial = Duration::from_millis(500);
    p.connect_retry.max = Duration::from_secs(2);
    p
}

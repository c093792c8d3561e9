//! From a validated BGPPeer to the BGP speaker's session configuration.
//!
//! Fields ferrolb's speaker cannot honour yet are refused here with the field and the reason,
//! so the peer's status says why it has no session instead of the field being ignored.

use std::net::Ipv4Addr;
use std::time::Duration;

use ferrolb_bgpd::{Backoff, GracefulRestartConfig, PeerConfig};
use ferrolb_model::config::{Peer, PeerEndpoint, PeerPassword, RemoteAsn};

/// Restart time offered with `enableGracefulRestart` (FRR's and MetalLB's default).
pub const GRACEFUL_RESTART_TIME: u16 = 120;

/// A session configuration, and the things about it the user should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSetup {
    pub config: PeerConfig,
    pub warnings: Vec<String>,
}

/// Builds the session for `peer`; `router_id` is the node's, used unless the peer sets one.
pub fn session_setup(peer: &Peer, router_id: Ipv4Addr) -> Result<SessionSetup, String> {
    let address = match &peer.endpoint {
        PeerEndpoint::Address(a) => *a,
        PeerEndpoint::Interface(i) => {
            return Err(format!(
                "spec.interface ({i}): BGP unnumbered is not supported by ferrolb's speaker yet; \
                 use peerAddress"
            ));
        }
    };
    if let Some(vrf) = &peer.vrf {
        return Err(format!(
            "spec.vrf ({vrf}): VRFs are not supported by ferrolb's speaker yet"
        ));
    }
    let local_as = peer.session_asn();
    let peer_as = match peer.remote_asn {
        RemoteAsn::Fixed(asn) => asn,
        RemoteAsn::Internal => local_as,
        RemoteAsn::External => {
            return Err(
                "spec.dynamicASN: external is not supported by ferrolb's speaker yet; \
                        set peerASN"
                    .into(),
            );
        }
    };
    let password = match &peer.password {
        None => None,
        Some(PeerPassword::Inline(p)) => Some(p.clone()),
        Some(PeerPassword::Secret { name, .. }) => {
            return Err(format!(
                "spec.passwordSecret ({name}): Secrets are read from the Kubernetes API; \
                 in a configuration folder write the password in spec.password"
            ));
        }
    };
    let mut warnings = Vec::new();
    if let Some(profile) = &peer.bfd_profile {
        warnings.push(format!(
            "spec.bfdProfile ({profile}): BFD is not implemented yet; the session relies on the \
             BGP hold timer"
        ));
    }

    let mut config = PeerConfig::new(
        peer.name.clone(),
        address,
        local_as,
        peer_as,
        peer.router_id.unwrap_or(router_id),
    );
    config.port = peer.port;
    config.source_address = peer.source_address;
    config.password = password;
    config.hold_time = u16::try_from(peer.hold_time.as_secs()).unwrap_or(u16::MAX);
    config.keepalive_time = Some(peer.keepalive_time);
    if let Some(connect) = peer.connect_time {
        config.connect_retry = Backoff {
            initial: connect.min(Duration::from_secs(1)),
            max: connect,
        };
    }
    config.ebgp_multihop = peer.ebgp_multihop;
    if peer.graceful_restart {
        config.graceful_restart = Some(GracefulRestartConfig {
            restart_time: GRACEFUL_RESTART_TIME,
        });
    }
    Ok(SessionSetup { config, warnings })
}

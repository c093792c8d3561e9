//! From a validated BGPPeer to the BGP speaker's session configuration.
//!
//! Fields ferrolb's speaker cannot honour yet are refused here with the field and the reason,
//! so the peer's status says why it has no session instead of the field being ignored.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use ferrolb_bgpd::PeerConfig;
use ferrolb_bgpd::fsm::{Backoff, GracefulRestartConfig};
use ferrolb_model::config::{Peer, PeerEndpoint, PeerPassword, RemoteAsn};

/// Restart time offered with `enableGracefulRestart` (FRR's and MetalLB's default).
pub const GRACEFUL_RESTART_TIME: u16 = 120;

/// A session configuration, and the things about it the user should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSetup {
    /// What the BGP speaker runs.
    pub config: PeerConfig,
    /// What the user should know about it.
    pub warnings: Vec<PeerWarning>,
}

/// Why a BGPPeer selected for this node has no session.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerProblem {
    /// No router id: none configured and the node has no IPv4 address to derive one from.
    NoRouterId,
    /// `spec.interface`: BGP unnumbered.
    Unnumbered {
        /// The interface.
        interface: String,
    },
    /// `spec.vrf`.
    Vrf {
        /// The VRF.
        vrf: String,
    },
    /// `spec.dynamicASN: external`.
    DynamicExternalAsn,
    /// `spec.passwordSecret`: reading Secrets is not implemented yet, in a folder or a cluster.
    PasswordSecretOutsideCluster {
        /// The Secret's name.
        secret: String,
    },
}

impl PeerProblem {
    /// The field of the BGPPeer the problem is about, if it is one field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PeerProblem::NoRouterId => None,
            PeerProblem::Unnumbered { .. } => Some("spec.interface"),
            PeerProblem::Vrf { .. } => Some("spec.vrf"),
            PeerProblem::DynamicExternalAsn => Some("spec.dynamicASN"),
            PeerProblem::PasswordSecretOutsideCluster { .. } => Some("spec.passwordSecret"),
        }
    }
}

impl fmt::Display for PeerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerProblem::NoRouterId => f.write_str(
                "no router id: the node has no IPv4 address; set spec.routerID or --router-id",
            ),
            PeerProblem::Unnumbered { interface } => write!(
                f,
                "spec.interface ({interface}): BGP unnumbered is not supported by ferrolb's \
                 speaker yet; use peerAddress"
            ),
            PeerProblem::Vrf { vrf } => write!(
                f,
                "spec.vrf ({vrf}): VRFs are not supported by ferrolb's speaker yet"
            ),
            PeerProblem::DynamicExternalAsn => f.write_str(
                "spec.dynamicASN: external is not supported by ferrolb's speaker yet; set peerASN",
            ),
            PeerProblem::PasswordSecretOutsideCluster { secret } => write!(
                f,
                "spec.passwordSecret ({secret}): the speaker does not read passwords from Secrets \
                 yet; write the password in spec.password"
            ),
        }
    }
}

/// Something about a session the user should know, that does not stop it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerWarning {
    /// `spec.bfdProfile` is set but BFD does not run.
    BfdNotImplemented {
        /// The BFDProfile.
        profile: String,
    },
}

impl fmt::Display for PeerWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerWarning::BfdNotImplemented { profile } => write!(
                f,
                "spec.bfdProfile ({profile}): BFD is not implemented yet; the session relies on \
                 the BGP hold timer"
            ),
        }
    }
}

/// Builds the session for `peer`; `router_id` is the node's, used unless the peer sets one.
pub fn session_setup(peer: &Peer, router_id: Ipv4Addr) -> Result<SessionSetup, PeerProblem> {
    let address = match &peer.endpoint {
        PeerEndpoint::Address(a) => *a,
        PeerEndpoint::Interface(i) => {
            return Err(PeerProblem::Unnumbered {
                interface: i.clone(),
            });
        }
    };
    if let Some(vrf) = &peer.vrf {
        return Err(PeerProblem::Vrf { vrf: vrf.clone() });
    }
    let local_as = peer.session_asn();
    let peer_as = match peer.remote_asn {
        RemoteAsn::Fixed(asn) => asn,
        RemoteAsn::Internal => local_as,
        RemoteAsn::External => return Err(PeerProblem::DynamicExternalAsn),
    };
    let password = match &peer.password {
        None => None,
        Some(PeerPassword::Inline(p)) => Some(p.clone()),
        Some(PeerPassword::Secret { name, .. }) => {
            return Err(PeerProblem::PasswordSecretOutsideCluster {
                secret: name.clone(),
            });
        }
    };
    let mut warnings = Vec::new();
    if let Some(profile) = &peer.bfd_profile {
        warnings.push(PeerWarning::BfdNotImplemented {
            profile: profile.clone(),
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_model::load::{decode_object, split_documents};
    use ferrolb_model::{Config, Resources};

    fn peer(spec: &str) -> Peer {
        let yaml = format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: fast, namespace: ferrolb}}\nspec: {{}}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: rtr, namespace: ferrolb}}\nspec: {spec}\n"
        );
        let mut resources = Resources::default();
        for doc in split_documents(&yaml) {
            resources.add(decode_object(&doc.parse().unwrap()).unwrap());
        }
        let config = Config::build(&resources).unwrap_or_else(|e| panic!("{e:?}"));
        config.peers[0].clone()
    }

    const ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);

    #[test]
    fn plain_ebgp_peer_maps_field_by_field() {
        let p = peer(
            "{myASN: 4200000000, peerASN: 64500, peerAddress: 192.0.2.1, peerPort: 1179, holdTime: 9s, keepaliveTime: 2s, sourceAddress: 192.0.2.11, password: s3cret, ebgpMultiHop: true, enableGracefulRestart: true, connectTime: 5s}",
        );
        let setup = session_setup(&p, ID).unwrap();
        let c = setup.config;
        assert_eq!(
            (c.local_as, c.peer_as, c.port, c.hold_time),
            (4_200_000_000, 64500, 1179, 9)
        );
        assert_eq!(c.address, "192.0.2.1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(c.keepalive_time, Some(Duration::from_secs(2)));
        assert_eq!(c.source_address, Some("192.0.2.11".parse().unwrap()));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert!(c.ebgp_multihop);
        assert_eq!(
            c.graceful_restart,
            Some(GracefulRestartConfig { restart_time: 120 })
        );
        assert_eq!(
            c.connect_retry,
            Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(5)
            }
        );
        assert_eq!(c.router_id, ID);
        assert!(setup.warnings.is_empty());
    }

    #[test]
    fn peer_router_id_and_local_asn_win() {
        let p = peer(
            "{myASN: 64512, localASN: 64999, peerASN: 64500, peerAddress: 192.0.2.1, routerID: 192.0.2.99}",
        );
        let c = session_setup(&p, ID).unwrap().config;
        assert_eq!(c.router_id, Ipv4Addr::new(192, 0, 2, 99));
        assert_eq!(c.local_as, 64999);
    }

    #[test]
    fn dynamic_internal_asn_means_our_own() {
        let p = peer("{myASN: 64512, dynamicASN: internal, peerAddress: 192.0.2.1}");
        let c = session_setup(&p, ID).unwrap().config;
        assert_eq!((c.local_as, c.peer_as), (64512, 64512));
        assert!(c.is_ibgp());
    }

    #[test]
    fn unsupported_fields_are_refused_with_the_field_and_the_reason() {
        let cases = [
            (
                "{myASN: 64512, peerASN: 64500, interface: eth1}",
                "spec.interface (eth1): BGP unnumbered",
            ),
            (
                "{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, vrf: red}",
                "spec.vrf (red): VRFs",
            ),
            (
                "{myASN: 64512, dynamicASN: external, peerAddress: 192.0.2.1}",
                "spec.dynamicASN: external",
            ),
            (
                "{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, passwordSecret: {name: bgp}}",
                "spec.passwordSecret (bgp): the speaker does not read passwords from Secrets yet",
            ),
        ];
        for (spec, start) in cases {
            let err = session_setup(&peer(spec), ID).unwrap_err().to_string();
            assert!(err.starts_with(start), "{spec}: {err}");
        }
    }

    #[test]
    fn bfd_profile_is_a_warning_not_an_error() {
        let p = peer("{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, bfdProfile: fast}");
        let setup = session_setup(&p, ID).unwrap();
        assert_eq!(setup.warnings.len(), 1);
        assert!(
            setup.warnings[0]
                .to_string()
                .starts_with("spec.bfdProfile (fast): BFD is not implemented yet")
        );
    }
}

//! Validated BGP peers, and the rules on `BGPPeer`: AS numbers, one address or interface,
//! timers, the MD5 password, references to BFD profiles, and no two sessions to one router from
//! one node.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::{Problems, parse_selectors};
use crate::crd::{BGPPeer, DynamicAsn, ObjectRef};
use crate::duration::parse_duration;
use crate::names::{check_interface_name, check_object_name};
use crate::selector::SelectorList;

/// The hold time when neither holdTime nor keepaliveTime is set (MetalLB's native default).
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
/// The TCP port when peerPort is unset.
pub const DEFAULT_PEER_PORT: u16 = 179;
/// The longest TCP MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_PASSWORD_BYTES: usize = 80;

/// A validated BGP session definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// `metadata.name`, what advertisements' `peers` refer to.
    pub name: String,
    /// `spec.myASN`.
    pub my_asn: u32,
    /// `spec.peerASN` or `spec.dynamicASN`.
    pub remote_asn: RemoteAsn,
    /// `spec.localASN`: the AS presented to the router instead of myASN.
    pub local_asn: Option<u32>,
    /// `spec.peerAddress` or `spec.interface`.
    pub endpoint: PeerEndpoint,
    /// `spec.sourceAddress`.
    pub source_address: Option<IpAddr>,
    /// `spec.peerPort`, default 179.
    pub port: u16,
    /// Effective hold time (see `spec.holdTime`): whole seconds.
    pub hold_time: Duration,
    /// Effective keepalive interval: whole seconds, at most the hold time.
    pub keepalive_time: Duration,
    /// `spec.connectTime`; `None` leaves retries to the speaker's backoff.
    pub connect_time: Option<Duration>,
    /// `spec.routerID`.
    pub router_id: Option<Ipv4Addr>,
    /// `spec.nodeSelectors`.
    pub node_selectors: SelectorList,
    /// `spec.password` or `spec.passwordSecret`.
    pub password: Option<PeerPassword>,
    /// `spec.bfdProfile`, known to exist in the same `Config`.
    pub bfd_profile: Option<String>,
    /// `spec.enableGracefulRestart`, default false.
    pub graceful_restart: bool,
    /// `spec.ebgpMultiHop`, default false.
    pub ebgp_multihop: bool,
    /// `spec.vrf`; `None` is the default VRF.
    pub vrf: Option<String>,
    /// `spec.dualStackAddressFamily`, default false.
    pub dual_stack_address_family: bool,
}

impl Peer {
    /// The AS number this side presents on the session: localASN when set, else myASN.
    pub fn session_asn(&self) -> u32 {
        self.local_asn.unwrap_or(self.my_asn)
    }

    /// Whether the session is iBGP (same AS on both sides), which decides e.g. whether
    /// LOCAL_PREF is sent.
    pub fn is_internal(&self) -> bool {
        match self.remote_asn {
            RemoteAsn::Fixed(asn) => asn == self.session_asn(),
            RemoteAsn::Internal => true,
            RemoteAsn::External => false,
        }
    }
}

/// The AS number expected from the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteAsn {
    /// Exactly this AS (`peerASN`).
    Fixed(u32),
    /// Whatever the router presents, if equal to ours (`dynamicASN: internal`).
    Internal,
    /// Whatever the router presents, if different from ours (`dynamicASN: external`).
    External,
}

/// Where the router is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerEndpoint {
    /// At an address (`peerAddress`).
    Address(IpAddr),
    /// On the other end of a host interface (`interface`, BGP unnumbered).
    Interface(String),
}

impl fmt::Display for PeerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerEndpoint::Address(address) => address.fmt(f),
            PeerEndpoint::Interface(interface) => write!(f, "interface {interface}"),
        }
    }
}

/// Where the TCP MD5 password comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PeerPassword {
    /// Written in the BGPPeer (`password`).
    Inline(String),
    /// In the `password` key of a `kubernetes.io/basic-auth` Secret (`passwordSecret`); the
    /// namespace defaults to the BGPPeer's.
    Secret {
        /// The Secret's name.
        name: String,
        /// The Secret's namespace, if given.
        namespace: Option<String>,
    },
}

/// Hand-written so that a password never ends up in a log line through `{:?}`.
impl fmt::Debug for PeerPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerPassword::Inline(_) => f.write_str("Inline(<redacted>)"),
            PeerPassword::Secret { name, namespace } => f
                .debug_struct("Secret")
                .field("name", name)
                .field("namespace", namespace)
                .finish(),
        }
    }
}

pub(super) fn validate_peers(
    peers: &[(ObjectRef, &BGPPeer)],
    bfd_profiles: &BTreeSet<&str>,
    problems: &mut Problems,
) -> Vec<Peer> {
    let validated: Vec<Option<Peer>> = peers
        .iter()
        .map(|(object, peer)| validate_peer(object, peer, bfd_profiles, problems))
        .collect();
    report_duplicate_sessions(peers, &validated, problems);
    validated.into_iter().flatten().collect()
}

fn validate_peer(
    object: &ObjectRef,
    peer: &BGPPeer,
    bfd_profiles: &BTreeSet<&str>,
    problems: &mut Problems,
) -> Option<Peer> {
    let errors_before = problems.errors.len();
    let spec = &peer.spec;

    if spec.my_asn == 0 {
        problems.add(
            object,
            "spec.myASN",
            "myASN is required and must be between 1 and 4294967295",
        );
    }
    if spec.local_asn == Some(0) {
        problems.add(
            object,
            "spec.localASN",
            "localASN must be between 1 and 4294967295",
        );
    }
    let remote_asn = match (spec.peer_asn, spec.dynamic_asn) {
        (Some(_), Some(_)) => {
            problems.add(
                object,
                "spec.dynamicASN",
                "peerASN and dynamicASN are both set; set exactly one of them",
            );
            None
        }
        (None, None) => {
            problems.add(
                object,
                "spec.peerASN",
                "exactly one of peerASN or dynamicASN must be set",
            );
            None
        }
        (Some(0), None) => {
            problems.add(
                object,
                "spec.peerASN",
                "peerASN must be between 1 and 4294967295",
            );
            None
        }
        (Some(asn), None) => Some(RemoteAsn::Fixed(asn)),
        (None, Some(DynamicAsn::Internal)) => Some(RemoteAsn::Internal),
        (None, Some(DynamicAsn::External)) => Some(RemoteAsn::External),
    };

    let endpoint = match (&spec.peer_address, &spec.interface) {
        (Some(_), Some(_)) => {
            problems.add(
                object,
                "spec.interface",
                "peerAddress and interface are both set; set exactly one of them",
            );
            None
        }
        (None, None) => {
            problems.add(
                object,
                "spec.peerAddress",
                "exactly one of peerAddress or interface must be set",
            );
            None
        }
        (Some(address), None) => {
            parse_ip(object, "spec.peerAddress", address, problems).map(PeerEndpoint::Address)
        }
        (None, Some(interface)) => match check_interface_name(interface) {
            Ok(()) => Some(PeerEndpoint::Interface(interface.clone())),
            Err(message) => {
                problems.add(object, "spec.interface", message);
                None
            }
        },
    };

    let source_address = spec
        .source_address
        .as_deref()
        .and_then(|text| parse_ip(object, "spec.sourceAddress", text, problems));
    if let (Some(source), Some(PeerEndpoint::Address(address))) = (source_address, &endpoint)
        && source.is_ipv4() != address.is_ipv4()
    {
        problems.add(
            object,
            "spec.sourceAddress",
            format!(
                "sourceAddress {source} and peerAddress {address} are of different address families"
            ),
        );
    }

    let port = match spec.peer_port {
        Some(0) => {
            problems.add(
                object,
                "spec.peerPort",
                "peerPort must be between 1 and 65535",
            );
            DEFAULT_PEER_PORT
        }
        Some(port) => port,
        None => DEFAULT_PEER_PORT,
    };

    let (hold_time, keepalive_time) = timers(
        object,
        spec.hold_time.as_deref(),
        spec.keepalive_time.as_deref(),
        problems,
    );
    let connect_time = spec.connect_time.as_deref().and_then(|text| {
        let seconds = whole_seconds(object, "spec.connectTime", "connectTime", text, problems)?;
        if (1..=65_535).contains(&seconds.as_secs()) {
            Some(seconds)
        } else {
            problems.add(
                object,
                "spec.connectTime",
                format!("connectTime {text} is out of range; use 1s to 65535s"),
            );
            None
        }
    });

    let router_id = spec
        .router_id
        .as_deref()
        .and_then(|text| match text.parse::<Ipv4Addr>() {
            Ok(id) => Some(id),
            Err(_) => {
                problems.add(
                    object,
                    "spec.routerID",
                    format!("{text:?} is not an IPv4 address (the BGP identifier is 32 bits)"),
                );
                None
            }
        });

    let node_selectors =
        parse_selectors(object, "spec.nodeSelectors", &spec.node_selectors, problems);

    let password = match (&spec.password, &spec.password_secret) {
        (Some(_), Some(_)) => {
            problems.add(
                object,
                "spec.passwordSecret",
                "password and passwordSecret are mutually exclusive; set at most one",
            );
            None
        }
        (Some(password), None) => {
            if password.len() > MAX_PASSWORD_BYTES {
                problems.add(
                    object,
                    "spec.password",
                    format!(
                        "the password is {} bytes long; TCP MD5 keys are at most {MAX_PASSWORD_BYTES}",
                        password.len()
                    ),
                );
            }
            Some(PeerPassword::Inline(password.clone()))
        }
        (None, Some(secret)) => match secret.name.as_deref() {
            Some(name) if check_object_name(name).is_ok() => Some(PeerPassword::Secret {
                name: name.to_owned(),
                namespace: secret.namespace.clone(),
            }),
            Some(name) => {
                problems.add(
                    object,
                    "spec.passwordSecret.name",
                    format!("{name:?} is not a valid Secret name"),
                );
                None
            }
            None => {
                problems.add(
                    object,
                    "spec.passwordSecret.name",
                    "the Secret name is required",
                );
                None
            }
        },
        (None, None) => None,
    };

    if let Some(profile) = &spec.bfd_profile
        && !bfd_profiles.contains(profile.as_str())
    {
        problems.add(
            object,
            "spec.bfdProfile",
            format!("BFDProfile/{profile} does not exist"),
        );
    }

    if let Some(vrf) = &spec.vrf
        && let Err(message) = check_interface_name(vrf)
    {
        problems.add(
            object,
            "spec.vrf",
            message.replace("interface name", "VRF name"),
        );
    }

    let ebgp_multihop = spec.ebgp_multi_hop.unwrap_or(false);
    let session_asn = spec.local_asn.unwrap_or(spec.my_asn);
    let internal = match remote_asn {
        Some(RemoteAsn::Fixed(asn)) => asn == session_asn,
        Some(RemoteAsn::Internal) => true,
        Some(RemoteAsn::External) | None => false,
    };
    if ebgp_multihop && internal {
        problems.add(
            object,
            "spec.ebgpMultiHop",
            "ebgpMultiHop applies to eBGP sessions only, and this session is iBGP \
             (the peer's AS is our own)",
        );
    }

    if problems.errors.len() != errors_before {
        return None;
    }
    Some(Peer {
        name: object.name.clone(),
        my_asn: spec.my_asn,
        remote_asn: remote_asn?,
        local_asn: spec.local_asn,
        endpoint: endpoint?,
        source_address,
        port,
        hold_time,
        keepalive_time,
        connect_time,
        router_id,
        node_selectors,
        password,
        bfd_profile: spec.bfd_profile.clone(),
        graceful_restart: spec.enable_graceful_restart.unwrap_or(false),
        ebgp_multihop,
        vrf: spec.vrf.clone(),
        dual_stack_address_family: spec.dual_stack_address_family.unwrap_or(false),
    })
}

fn parse_ip(
    object: &ObjectRef,
    field: &str,
    text: &str,
    problems: &mut Problems,
) -> Option<IpAddr> {
    match text.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            problems.add(object, field, format!("{text:?} is not an IP address"));
            None
        }
    }
}

/// Parses a BGP timer: a duration that is a whole number of seconds (the protocol carries
/// seconds, and rounding silently would change what the user asked for).
fn whole_seconds(
    object: &ObjectRef,
    field: &str,
    name: &str,
    text: &str,
    problems: &mut Problems,
) -> Option<Duration> {
    match parse_duration(text) {
        Ok(duration) if duration.subsec_nanos() == 0 => Some(duration),
        Ok(_) => {
            problems.add(
                object,
                field,
                format!("{name} {text} is not a whole number of seconds; BGP timers are carried in seconds"),
            );
            None
        }
        Err(error) => {
            problems.add(object, field, error.to_string());
            None
        }
    }
}

/// The effective hold and keepalive times. When only one is set the other follows the usual
/// 3:1 ratio (RFC 4271 suggests keepalive = hold / 3).
fn timers(
    object: &ObjectRef,
    hold_text: Option<&str>,
    keepalive_text: Option<&str>,
    problems: &mut Problems,
) -> (Duration, Duration) {
    let hold = hold_text.and_then(|text| {
        let hold = whole_seconds(object, "spec.holdTime", "holdTime", text, problems)?;
        let seconds = hold.as_secs();
        if seconds == 0 || (3..=65_535).contains(&seconds) {
            Some(hold)
        } else {
            problems.add(
                object,
                "spec.holdTime",
                format!("holdTime {text} is out of range; use 0 (no keepalives) or 3s to 65535s"),
            );
            None
        }
    });
    let keepalive = keepalive_text.and_then(|text| {
        let keepalive = whole_seconds(
            object,
            "spec.keepaliveTime",
            "keepaliveTime",
            text,
            problems,
        )?;
        if keepalive.as_secs() <= 65_535 {
            Some(keepalive)
        } else {
            problems.add(
                object,
                "spec.keepaliveTime",
                format!("keepaliveTime {text} is out of range; use at most 65535s"),
            );
            None
        }
    });
    match (hold, keepalive) {
        (Some(hold), Some(keepalive)) => {
            if keepalive > hold {
                problems.add(
                    object,
                    "spec.keepaliveTime",
                    format!(
                        "keepaliveTime {} must not be longer than holdTime {}",
                        keepalive_text.unwrap_or_default(),
                        hold_text.unwrap_or_default()
                    ),
                );
            }
            (hold, keepalive)
        }
        (Some(hold), None) => (hold, hold / 3),
        (None, Some(keepalive)) => {
            let hold = keepalive * 3;
            if hold.as_secs() > 65_535 {
                problems.add(
                    object,
                    "spec.keepaliveTime",
                    format!(
                        "keepaliveTime {} implies a holdTime of {}s, more than 65535s; set holdTime too",
                        keepalive_text.unwrap_or_default(),
                        hold.as_secs()
                    ),
                );
            }
            (hold, keepalive)
        }
        (None, None) => (DEFAULT_HOLD_TIME, DEFAULT_HOLD_TIME / 3),
    }
}

/// Two sessions from one node to one router (same address or interface, same VRF) cannot both
/// come up. Nodes are not known here, so the check asks whether the node selectors could ever
/// select a common node.
fn report_duplicate_sessions(
    peers: &[(ObjectRef, &BGPPeer)],
    validated: &[Option<Peer>],
    problems: &mut Problems,
) {
    let valid: Vec<(&ObjectRef, &Peer)> = peers
        .iter()
        .zip(validated)
        .filter_map(|((object, _), peer)| peer.as_ref().map(|p| (object, p)))
        .collect();
    for (later_index, (object, peer)) in valid.iter().enumerate() {
        let clash = valid[..later_index].iter().find(|(_, earlier)| {
            earlier.endpoint == peer.endpoint
                && earlier.vrf == peer.vrf
                && !earlier
                    .node_selectors
                    .is_disjoint_from(&peer.node_selectors)
        });
        if let Some((earlier_object, _)) = clash {
            let field = match peer.endpoint {
                PeerEndpoint::Address(_) => "spec.peerAddress",
                PeerEndpoint::Interface(_) => "spec.interface",
            };
            let vrf = peer
                .vrf
                .as_deref()
                .map_or_else(|| "the default VRF".to_owned(), |v| format!("VRF {v}"));
            problems.add(
                object,
                field,
                format!(
                    "{earlier_object} already peers with {} in {vrf} and their nodeSelectors can \
                     select the same node; one node can have only one session to a router",
                    peer.endpoint
                ),
            );
        }
    }
}

//! What a BFD session is asked to do: its identity ([`SessionKey`]), its timers and options
//! ([`Profile`], the fields of the `BFDProfile` resource), and the validation of both.
//!
//! This module owns the configuration types and their rules. It does not decide how a change
//! is applied to a running session (see `session`: a profile change never resets the session).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// The shortest transmit or receive interval accepted (the same floor as MetalLB's
/// `BFDProfile`): below it a user-space daemon on a busy node would raise false alarms.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest transmit or receive interval accepted (MetalLB's ceiling).
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The longest network interface name Linux accepts (`IFNAMSIZ` minus the NUL).
const MAX_INTERFACE_NAME: usize = 15;

/// The timers and options of a session: the fields of a `BFDProfile`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// `receiveInterval`: bfd.RequiredMinRxInterval, the fastest rate we want to receive at.
    pub receive_interval: Duration,
    /// `transmitInterval`: bfd.DesiredMinTxInterval, the fastest rate we want to send at.
    pub transmit_interval: Duration,
    /// `detectMultiplier`: bfd.DetectMult, packets the peer may miss before it declares us
    /// down (1–255).
    pub detect_multiplier: u8,
    /// `echoMode`/`echoInterval`: `Some` asks for the echo function at that interval. It is
    /// not supported: [`Profile::validate`] refuses it (see [`ConfigError::EchoNotSupported`]).
    pub echo_interval: Option<Duration>,
    /// `passiveMode`: do not send until the peer has sent (RFC 5880 §6.1).
    pub passive: bool,
    /// `minimumTtl`: multihop packets arriving with a smaller TTL / hop limit are dropped.
    /// Single-hop sessions always demand 255 (RFC 5881 §5), which satisfies any minimum.
    pub minimum_ttl: u8,
}

impl Default for Profile {
    /// The `BFDProfile` defaults: 300 ms both ways, multiplier 3, active, minimum TTL 254.
    fn default() -> Self {
        Profile {
            receive_interval: Duration::from_millis(300),
            transmit_interval: Duration::from_millis(300),
            detect_multiplier: 3,
            echo_interval: None,
            passive: false,
            minimum_ttl: 254,
        }
    }
}

impl Profile {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.echo_interval.is_some() {
            return Err(ConfigError::EchoNotSupported);
        }
        for (field, value) in [
            ("receiveInterval", self.receive_interval),
            ("transmitInterval", self.transmit_interval),
        ] {
            if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&value) {
                return Err(ConfigError::IntervalOutOfRange { field, value });
            }
        }
        if self.detect_multiplier == 0 {
            return Err(ConfigError::ZeroDetectMultiplier);
        }
        if self.minimum_ttl == 0 {
            return Err(ConfigError::ZeroMinimumTtl);
        }
        Ok(())
    }
}

/// Which session a configuration describes. Two configurations with the same key are the same
/// session; changing any of these fields replaces the session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub peer: IpAddr,
    /// The address we send from and expect packets to; `None` lets the kernel choose.
    pub local: Option<IpAddr>,
    /// Bind the session to this interface (or VRF device) with `SO_BINDTODEVICE`.
    pub interface: Option<String>,
    /// RFC 5883 multihop (UDP 4784) instead of RFC 5881 single hop (UDP 3784).
    pub multihop: bool,
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.peer)?;
        if let Some(local) = self.local {
            write!(f, " from {local}")?;
        }
        if let Some(interface) = &self.interface {
            write!(f, " on {interface}")?;
        }
        if self.multihop {
            f.write_str(" (multihop)")?;
        }
        Ok(())
    }
}

/// One BFD session to run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    pub peer: IpAddr,
    /// The address to send from; `None` lets the kernel choose by route. When set, packets
    /// whose Your Discriminator is zero must also be addressed to it to match this session.
    pub local: Option<IpAddr>,
    /// An interface or VRF device to bind to; required for an IPv6 link-local peer.
    pub interface: Option<String>,
    pub multihop: bool,
    pub profile: Profile,
}

impl SessionConfig {
    /// A single-hop session to `peer` with the default profile.
    pub fn new(peer: IpAddr) -> SessionConfig {
        SessionConfig {
            peer,
            local: None,
            interface: None,
            multihop: false,
            profile: Profile::default(),
        }
    }

    pub fn key(&self) -> SessionKey {
        SessionKey {
            peer: self.peer,
            local: self.local,
            interface: self.interface.clone(),
            multihop: self.multihop,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_unicast(self.peer) {
            return Err(ConfigError::PeerNotUnicast { peer: self.peer });
        }
        if let Some(local) = self.local {
            if local.is_ipv4() != self.peer.is_ipv4() {
                return Err(ConfigError::FamilyMismatch {
                    peer: self.peer,
                    local,
                });
            }
            if !is_unicast(local) {
                return Err(ConfigError::LocalNotUnicast { local });
            }
        }
        if let Some(name) = &self.interface
            && (name.is_empty()
                || name.len() > MAX_INTERFACE_NAME
                || name.contains(['/', '\0'])
                || name.chars().any(char::is_whitespace))
        {
            return Err(ConfigError::InvalidInterface { name: name.clone() });
        }
        if let IpAddr::V6(v6) = self.peer
            && v6.is_unicast_link_local()
            && self.interface.is_none()
        {
            return Err(ConfigError::LinkLocalWithoutInterface { peer: self.peer });
        }
        self.profile.validate()
    }
}

fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// A configuration that cannot be run, with the field that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The echo function (RFC 5880 §6.4) needs the peer to loop our packets back through its
    /// forwarding plane, and measures that path rather than the BFD process; ferrolb runs
    /// asynchronous mode only.
    #[error(
        "echo mode is not supported: ferrolb runs BFD in asynchronous mode only; \
         remove echoMode/echoInterval from the profile"
    )]
    EchoNotSupported,
    #[error("{field} {value:?} is outside {MIN_INTERVAL:?}..={MAX_INTERVAL:?}")]
    IntervalOutOfRange {
        field: &'static str,
        value: Duration,
    },
    #[error("detectMultiplier must be at least 1")]
    ZeroDetectMultiplier,
    #[error("minimumTtl must be at least 1")]
    ZeroMinimumTtl,
    #[error("peer address {peer} is not a unicast address")]
    PeerNotUnicast { peer: IpAddr },
    #[error("local address {local} is not a unicast address")]
    LocalNotUnicast { local: IpAddr },
    #[error("local address {local} is not of the same family as peer {peer}")]
    FamilyMismatch { peer: IpAddr, local: IpAddr },
    #[error("interface name {name:?} is not a valid Linux interface name")]
    InvalidInterface { name: String },
    #[error("link-local peer {peer} needs an interface")]
    LinkLocalWithoutInterface { peer: IpAddr },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig::new("198.51.100.2".parse().unwrap())
    }

    #[test]
    fn default_profile_is_the_bfd_profile_default_and_valid() {
        let p = Profile::default();
        assert_eq!(p.receive_interval, Duration::from_millis(300));
        assert_eq!(p.transmit_interval, Duration::from_millis(300));
        assert_eq!(p.detect_multiplier, 3);
        assert_eq!(p.minimum_ttl, 254);
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn echo_mode_is_refused_with_a_clear_error() {
        let mut c = config();
        c.profile.echo_interval = Some(Duration::from_millis(50));
        let err = c.validate().unwrap_err();
        assert_eq!(err, ConfigError::EchoNotSupported);
        assert!(err.to_string().starts_with("echo mode is not supported"));
    }

    #[test]
    fn intervals_outside_10ms_to_60s_are_refused() {
        for (rx, tx) in [(9, 300), (300, 9), (60_001, 300), (300, 60_001)] {
            let mut c = config();
            c.profile.receive_interval = Duration::from_millis(rx);
            c.profile.transmit_interval = Duration::from_millis(tx);
            assert!(
                matches!(c.validate(), Err(ConfigError::IntervalOutOfRange { .. })),
                "rx {rx} tx {tx}"
            );
        }
        let mut c = config();
        c.profile.receive_interval = MIN_INTERVAL;
        c.profile.transmit_interval = MAX_INTERVAL;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn zero_multiplier_and_zero_minimum_ttl_are_refused() {
        let mut c = config();
        c.profile.detect_multiplier = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroDetectMultiplier));
        let mut c = config();
        c.profile.minimum_ttl = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroMinimumTtl));
    }

    #[test]
    fn addresses_must_be_unicast_and_of_one_family() {
        let mut c = config();
        c.peer = "224.0.0.1".parse().unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::PeerNotUnicast { .. })
        ));
        let mut c = config();
        c.local = Some("2001:db8::1".parse().unwrap());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::FamilyMismatch { .. })
        ));
        let mut c = config();
        c.local = Some("0.0.0.0".parse().unwrap());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::LocalNotUnicast { .. })
        ));
    }

    #[test]
    fn link_local_peer_needs_an_interface() {
        let mut c = config();
        c.peer = "fe80::2".parse().unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::LinkLocalWithoutInterface { .. })
        ));
        c.interface = Some("eth0".into());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn interface_names_linux_would_refuse_are_refused() {
        for name in ["", "a-name-that-is-too-long", "a/b", "a b"] {
            let mut c = config();
            c.interface = Some(name.into());
            assert!(
                matches!(c.validate(), Err(ConfigError::InvalidInterface { .. })),
                "{name:?}"
            );
        }
    }

    #[test]
    fn key_display_names_every_identifying_field() {
        let mut c = config();
        c.local = Some("198.51.100.1".parse().unwrap());
        c.interface = Some("eth0".into());
        c.multihop = true;
        assert_eq!(
            c.key().to_string(),
            "198.51.100.2 from 198.51.100.1 on eth0 (multihop)"
        );
    }
}

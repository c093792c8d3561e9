//! Validated BFD profiles. The ranges are the ones MetalLB (and FRR) enforce; the defaults are
//! FRR's.

use super::Problems;
use crate::crd::{BFDProfile, ObjectRef};

/// A BFD profile with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdProfile {
    /// `metadata.name`, what BGPPeer `bfdProfile` refers to.
    pub name: String,
    /// Milliseconds, 10-60000, default 300.
    pub receive_interval_ms: u32,
    /// Milliseconds, 10-60000, default 300.
    pub transmit_interval_ms: u32,
    /// 2-255, default 3.
    pub detect_multiplier: u32,
    /// Milliseconds, 10-60000, default 50.
    pub echo_interval_ms: u32,
    /// Default false.
    pub echo_mode: bool,
    /// Default false.
    pub passive_mode: bool,
    /// 1-254, default 254.
    pub minimum_ttl: u32,
}

pub(super) fn validate_bfd_profiles(
    profiles: &[(ObjectRef, &BFDProfile)],
    problems: &mut Problems,
) -> Vec<BfdProfile> {
    profiles
        .iter()
        .filter_map(|(object, profile)| {
            let spec = &profile.spec;
            let errors_before = problems.errors.len();
            let mut ranged = |field: &str, value: Option<u32>, default: u32, min: u32, max: u32| {
                let value = value.unwrap_or(default);
                if !(min..=max).contains(&value) {
                    problems.add(
                        object,
                        format!("spec.{field}"),
                        format!("{value} is out of range; use {min}-{max}"),
                    );
                }
                value
            };
            let validated = BfdProfile {
                name: object.name.clone(),
                receive_interval_ms: ranged(
                    "receiveInterval",
                    spec.receive_interval,
                    300,
                    10,
                    60_000,
                ),
                transmit_interval_ms: ranged(
                    "transmitInterval",
                    spec.transmit_interval,
                    300,
                    10,
                    60_000,
                ),
                detect_multiplier: ranged("detectMultiplier", spec.detect_multiplier, 3, 2, 255),
                echo_interval_ms: ranged("echoInterval", spec.echo_interval, 50, 10, 60_000),
                minimum_ttl: ranged("minimumTtl", spec.minimum_ttl, 254, 1, 254),
                echo_mode: spec.echo_mode.unwrap_or(false),
                passive_mode: spec.passive_mode.unwrap_or(false),
            };
            (problems.errors.len() == errors_before).then_some(validated)
        })
        .collect()
}

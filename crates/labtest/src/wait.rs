//! Waiting for the lab to reach a state: polling with a timeout, and a failure message that
//! carries the last thing seen.

use std::fmt;
use std::time::{Duration, Instant};

/// How long the router helpers wait for a state by default: routers converge in well under a
/// second here, so this only bounds a failing test.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How often the router helpers ask.
pub const POLL: Duration = Duration::from_millis(50);

/// What a [`wait_for`] probe saw: `Some`/`Ok` ends the wait, `None`/`Err` is recorded as the
/// last observation (`Err` values are shown with `Debug`, so return `Err(what_you_saw)` for a
/// useful failure message).
pub trait Observation {
    /// What the wait returns.
    type Value;
    /// `Ok` when the wait is over, else a description of what was seen.
    fn into_outcome(self) -> Result<Self::Value, String>;
}

impl<T> Observation for Option<T> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "None".to_owned())
    }
}

impl<T, E: fmt::Debug> Observation for Result<T, E> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Polls `probe` every `every` until it returns `Some`/`Ok` or `timeout` passes (the probe
/// always runs at least once, and once more at the deadline). `Err` says how long it waited
/// and carries the last observation.
pub fn wait_for<O: Observation>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> O,
) -> Result<O::Value, String> {
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match probe().into_outcome() {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(format!(
                "gave up after {elapsed:.1?} ({attempts} probes); last observation: {last}"
            ));
        }
        std::thread::sleep(every.min(timeout - elapsed));
    }
}

//! BIRD 2's view, read through `birdc`.

use crate::lab::Lab;
use crate::wait::{POLL, TIMEOUT, wait_for};

/// `birdc show route PREFIX all` (route, attributes, one per line), or None when BIRD has no
/// route for `prefix`.
pub fn route(lab: &Lab, prefix: &str) -> Option<String> {
    let out = lab.birdc(&format!("show route {prefix} all")).ok()?;
    out.contains(prefix).then_some(out)
}

/// Waits until BIRD has a route for `prefix`, and returns it.
pub fn wait_route(lab: &Lab, prefix: &str) -> String {
    wait_for(TIMEOUT, POLL, || route(lab, prefix))
        .unwrap_or_else(|e| panic!("BIRD never had a route for {prefix}: {e}"))
}

/// Waits until BIRD has no route for `prefix`.
pub fn wait_gone(lab: &Lab, prefix: &str) {
    wait_for(TIMEOUT, POLL, || match route(lab, prefix) {
        None => Ok(()),
        Some(r) => Err(r),
    })
    .unwrap_or_else(|e| panic!("BIRD kept {prefix}: {e}"));
}

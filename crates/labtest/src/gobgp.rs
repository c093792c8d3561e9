//! GoBGP's view, read through `gobgp -j` in the router namespace.

use serde_json::Value;

use crate::lab::Lab;
use crate::wait::{POLL, TIMEOUT, wait_for};

/// GoBGP's best path for `prefix` in `family` (`ipv4`, `ipv6`), or None.
pub fn best_path(lab: &Lab, family: &str, prefix: &str) -> Option<Value> {
    let rib = lab.gobgp_json(&["global", "rib", "-a", family]).ok()?;
    rib[prefix]
        .as_array()?
        .iter()
        .find(|p| p["best"] == true)
        .cloned()
}

/// The path attribute of type `type_code`, as GoBGP renders it.
pub fn attribute(path: &Value, type_code: u64) -> Option<Value> {
    path["attrs"]
        .as_array()?
        .iter()
        .find(|a| a["type"] == type_code)
        .cloned()
}

/// Waits until GoBGP has a best path for `prefix`, and returns it.
pub fn wait_best_path(lab: &Lab, family: &str, prefix: &str) -> Value {
    wait_for(TIMEOUT, POLL, || best_path(lab, family, prefix))
        .unwrap_or_else(|e| panic!("GoBGP never had a path for {prefix}: {e}"))
}

/// Waits until GoBGP has no path for `prefix`.
pub fn wait_gone(lab: &Lab, family: &str, prefix: &str) {
    wait_for(TIMEOUT, POLL, || match best_path(lab, family, prefix) {
        None => Ok(()),
        Some(p) => Err(p),
    })
    .unwrap_or_else(|e| panic!("GoBGP kept {prefix}: {e}"));
}

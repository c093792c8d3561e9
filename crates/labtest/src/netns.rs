//! Running code inside a lab namespace from the test process: one OS thread joins the
//! namespace, the rest of the process stays where it is.

use std::fs::File;
use std::path::Path;
use std::thread::JoinHandle;

use nix::sched::CloneFlags;

use crate::error::LabError;

/// Runs `f` on a new OS thread that first joins network namespace `ns` (`setns(2)` with
/// `CLONE_NEWNET` on that thread only; the rest of the process stays where it is). Sockets
/// the closure opens live in `ns`: use it to run a tokio current-thread runtime with a BGP
/// speaker inside a node namespace. The result is `Err` when the namespace cannot be joined.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<Result<T, LabError>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter_netns(&ns)?;
        Ok(f())
    })
}

fn enter_netns(ns: &str) -> Result<(), LabError> {
    let path = Path::new("/run/netns").join(ns);
    let file = File::open(&path).map_err(|e| LabError::Netns {
        ns: ns.to_owned(),
        reason: format!("opening {}: {e}", path.display()),
    })?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| LabError::Netns {
        ns: ns.to_owned(),
        reason: format!("setns: {e}"),
    })
}

//! ferrolb's cluster controller: the one writer of `LoadBalancer` addresses.
//!
//! Owns: the pass that turns the cluster's Services, Namespaces and IPAddressPools into writes
//! (`reconcile`, pure), the shell that reads through `ferrolb-cluster`, holds the Lease and
//! sends the writes (`run`), the server version check (`version`) and the controller's metrics
//! (`metrics`). Does not own the address rules (`ferrolb-allocator`), the validation of the
//! ferrolb.io resources (`ferrolb-model`, through `ferrolb-cluster`), nor process lifetime or
//! HTTP serving (the `ferrolb controller` subcommand).

pub mod reconcile;

pub use reconcile::{
    Action, CONDITION_TYPE, ClassFilter, EventNote, POOL_FINALIZER, POOL_IN_USE, PassInput,
    PoolObject, Reconciler,
};
pub mod metrics;
pub mod run;
pub mod version;

pub use metrics::ControllerMetrics;
pub use run::{
    Controller, ControllerError, ControllerOptions, ControllerStatus, FIELD_MANAGER,
    REPORTING_CONTROLLER,
};

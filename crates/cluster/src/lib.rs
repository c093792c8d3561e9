//! ferrolb's view of a Kubernetes cluster, shared by the controller and the speaker.
//!
//! Owns: the reflector stores (`watch`) for Services, EndpointSlices (`discovery.k8s.io/v1`),
//! Nodes, Namespaces and the six ferrolb.io resources, with one change signal and a view that
//! exists only once every initial list has completed; and the step from the ferrolb.io objects
//! to the validated model `Config` (`config`), which keeps the last good configuration when an
//! object is refused and says which object and field.
//!
//! Does not own: any decision (allocation is the controller's, announcements the speaker's),
//! and no writes to the cluster: this crate only reads.

pub mod config;
pub mod watch;

pub use config::{ConfigKeeper, ConfigProblem, ConfigVerdict, decode_config_objects};
pub use watch::{ClusterView, ClusterWatch, WatchError, WatchOptions};

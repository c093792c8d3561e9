//! ferrolb-testapiserver (docs written last)
pub mod catalog;
pub mod cluster;
pub mod fieldpath;
pub mod kinds;
pub mod patch;
pub mod request;
pub mod schema;
pub mod selector;
pub mod server;
pub mod ssa;
pub mod status;
pub mod store;
pub mod validation;
pub mod watch;

pub use cluster::{Cluster, KubeVersion, ServerConfig};
pub use kinds::ClusterNetwork;
pub use request::{ApiReply, ApiRequest};
pub use server::{
    Fault, FaultAction, RequestRecord, ServerHandle, StoreAccess, TestApiServer, kubeconfig_for,
};
pub use status::{ApiError, FieldError};

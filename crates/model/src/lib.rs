//! ferrolb's configuration model.
//!
//! Owns: the ferrolb.io custom resources (`crd`) and their CRD manifests (`manifests`); the
//! typed, validated `Config` everything else consumes (`config`), with every error carrying the
//! object and field path; the shared vocabulary of the other crates: a Service's typed reading
//! and identity (`service`), a node (`node`), where a Service's endpoints serve (`endpoints`);
//! reading YAML documents and files (`load`, `files`); and the conversion of MetalLB
//! configuration (`metallb`), with the `check` and `migrate` reports the `ferrolb` binary prints.
//!
//! Does not own: sockets, Kubernetes API calls, allocation or announcement decisions.
//!
//! Two types are called `Community`: `crd::Community` is the resource that defines aliases,
//! `community::Community` is a standard BGP community value.

pub mod address;
pub mod check;
pub mod community;
pub mod config;
pub mod crd;
pub mod duration;
pub mod endpoints;
pub mod files;
pub mod load;
pub mod manifests;
pub mod metallb;
pub mod migrate;
pub mod names;
pub mod node;
pub mod selector;
pub mod service;

pub use community::{CommunityValue, LargeCommunity};
pub use config::{Config, Resources, ValidationError};
pub use crd::{ConfigObject, ObjectRef, ResourceKind};
pub use node::Node;
pub use service::{ServiceError, ServiceKey, ServiceView};

//! ferrolb's gRPC status API: the generated `ferrolb.v1` types ([`pb`]), the read-only
//! [`StatusSource`] a server answers from, the server itself ([`serve`], with `grpc.health.v1`
//! and server reflection v1 and v1alpha) and the client [`connect`] used by `ferrolb status`.
//!
//! The crate knows nothing of BGP or the agent: whoever runs the server converts its own state
//! into these messages (see `ferrolb_speaker::status_api`).

pub mod client;
pub mod server;

/// The generated messages, server and client of `proto/ferrolb/v1/status.proto`.
#[allow(clippy::all, clippy::unwrap_used, clippy::expect_used, missing_docs)]
pub mod pb {
    tonic::include_proto!("ferrolb.v1");

    /// The encoded descriptors of `ferrolb.v1`, as server reflection serves them.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("ferrolb_v1_descriptor");
}

/// Enum fields by name in JSON and YAML (`"NOTIFICATION_RECEIVED"`, not `2`).
mod enum_names {
    use crate::pb;

    pub fn session_error_kind<S: serde::Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
        match pb::session_error::Kind::try_from(*v) {
            Ok(kind) => s.serialize_str(kind.as_str_name()),
            Err(_) => s.serialize_i32(*v),
        }
    }

    pub fn route_action<S: serde::Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
        match pb::route_change::Action::try_from(*v) {
            Ok(action) => s.serialize_str(action.as_str_name()),
            Err(_) => s.serialize_i32(*v),
        }
    }
}

pub use client::{ClientError, StatusClient, connect};
pub use server::{ServeError, StatusSource, serve};

/// The default address of the status API: loopback only.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:50061";

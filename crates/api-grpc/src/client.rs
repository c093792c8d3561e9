//! The client side: connecting to a speaker's status API with a bounded wait, so that a
//! missing speaker is one clear error instead of a hang.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// A connected `ferrolb.v1.Status` client.
pub type StatusClient = crate::pb::status_client::StatusClient<Channel>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{address}: not a valid address ({reason}); expected HOST:PORT")]
    Address { address: String, reason: String },
    /// One line on purpose: `reason` is the innermost cause (e.g. "Connection refused").
    #[error(
        "no ferrolb speaker answers on {address} ({reason}); is `ferrolb speaker` running with --status-address {address}?"
    )]
    Unreachable { address: String, reason: String },
}

/// Connects to `address` (`host:port`, or a full `http://` URI), waiting at most `timeout`.
pub async fn connect(address: &str, timeout: Duration) -> Result<StatusClient, ClientError> {
    let uri = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|e| ClientError::Address {
        address: address.to_string(),
        reason: innermost(&e),
    })?;
    let channel = endpoint
        .connect_timeout(timeout)
        .connect()
        .await
        .map_err(|e| ClientError::Unreachable {
            address: address.to_string(),
            reason: innermost(&e),
        })?;
    Ok(StatusClient::new(channel))
}

/// The deepest cause of an error: what actually went wrong, without the layers' prefixes.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

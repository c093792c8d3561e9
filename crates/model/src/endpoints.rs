//! Where a Service's backends run: the nodes with at least one serving endpoint, read from
//! `discovery.k8s.io/v1` EndpointSlices.
//!
//! Owns the serving rule (`serving`, else `ready`, else true, as Kubernetes and MetalLB count
//! it, so terminating-but-serving pods keep their node). Does not own what a node does with it
//! (the planner decides whether `externalTrafficPolicy` lets it announce).

use std::collections::BTreeSet;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use thiserror::Error;

use crate::service::ServiceKey;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Where a Service's backends can serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoints {
    /// No endpoint information (a plain host configured from a folder without EndpointSlices):
    /// the Service is taken to be served on every node.
    Unknown,
    /// From EndpointSlices: the nodes with at least one serving endpoint.
    Known {
        /// Node names.
        serving_nodes: BTreeSet<String>,
    },
}

/// An EndpointSlice that cannot be tied to a Service.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("EndpointSlice {slice}: metadata.labels[{SERVICE_NAME_LABEL}] is missing")]
pub struct EndpointSliceError {
    /// `namespace/name` of the slice.
    pub slice: String,
}

/// The Service an EndpointSlice belongs to, and the nodes where it has a serving endpoint.
pub fn serving_nodes(
    slice: &EndpointSlice,
) -> Result<(ServiceKey, BTreeSet<String>), EndpointSliceError> {
    let namespace = slice
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let Some(service) = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
    else {
        return Err(EndpointSliceError {
            slice: format!(
                "{namespace}/{}",
                slice.metadata.name.as_deref().unwrap_or_default()
            ),
        });
    };
    let nodes = slice
        .endpoints
        .iter()
        .flatten()
        .filter(|e| {
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            c.and_then(|c| c.serving).unwrap_or(ready)
        })
        .filter_map(|e| e.node_name.clone())
        .collect();
    Ok((ServiceKey::new(namespace, service.clone()), nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(json: &str) -> EndpointSlice {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn serving_counts_ready_when_unset_and_true_when_both_are_unset() {
        let s = slice(
            r#"{"metadata": {"name": "web-1", "namespace": "demo", "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "endpoints": [
                  {"addresses": ["10.0.0.1"], "nodeName": "n1"},
                  {"addresses": ["10.0.0.2"], "nodeName": "n2", "conditions": {"ready": false, "serving": false}},
                  {"addresses": ["10.0.0.3"], "nodeName": "n3", "conditions": {"ready": false, "serving": true}},
                  {"addresses": ["10.0.0.4"], "nodeName": "n4", "conditions": {"ready": false}},
                  {"addresses": ["10.0.0.5"]}
                ]}"#,
        );
        let (key, nodes) = serving_nodes(&s).unwrap();
        assert_eq!(key, ServiceKey::new("demo", "web"));
        assert_eq!(
            nodes.into_iter().collect::<Vec<_>>(),
            vec!["n1".to_string(), "n3".to_string()]
        );
    }

    #[test]
    fn a_slice_without_its_service_label_is_an_error_naming_the_slice() {
        let s = slice(
            r#"{"metadata": {"name": "web-1", "namespace": "demo"}, "addressType": "IPv4", "endpoints": []}"#,
        );
        assert_eq!(
            serving_nodes(&s).unwrap_err().to_string(),
            "EndpointSlice demo/web-1: metadata.labels[kubernetes.io/service-name] is missing"
        );
    }
}

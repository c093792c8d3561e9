//! A node as ferrolb sees it: its name and labels, which `nodeSelectors` match, and whether it
//! takes part in load balancing at all.
//!
//! Owns the exclusion rule. Does not own where the node comes from (a `--node-labels` flag, a
//! Node object in a folder or in the cluster) nor what it announces (the planner decides).

use std::collections::BTreeMap;

/// The node label that keeps a node out of every announcement, as in Kubernetes and MetalLB.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// A node: its name (what EndpointSlices' `nodeName` refer to) and its labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

impl Node {
    /// A node with no labels.
    pub fn named(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    /// Whether the node is kept out of load balancing by [`EXCLUDE_LABEL`].
    pub fn excluded(&self) -> bool {
        self.labels.contains_key(EXCLUDE_LABEL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exclude_label_excludes_whatever_its_value() {
        let mut node = Node::named("n1");
        assert!(!node.excluded());
        node.labels.insert(EXCLUDE_LABEL.into(), String::new());
        assert!(node.excluded());
    }
}

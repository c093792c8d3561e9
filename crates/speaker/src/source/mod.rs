//! Sources of the agent's inputs: each yields consistent snapshots (configuration, Services,
//! endpoints, nodes) as a stream of [`SourceUpdate`]s, all or nothing per update.
//!
//! [`folder`] reads a folder of YAML; [`cluster`] reads the same objects from a Kubernetes
//! cluster. The agent does not care where a snapshot comes from; it
//! only keeps the last good one when an update is refused.

pub mod cluster;
pub mod folder;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use ferrolb_model::Config;
use ferrolb_model::node::Node;
use ferrolb_model::service::{ServiceKey, ServiceView};

pub use cluster::{ClusterSource, snapshot_from_view};
pub use folder::{FolderSource, FolderWatch, read_config_dir};

/// Everything the agent decides from, read at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The validated ferrolb.io configuration.
    pub config: Config,
    /// The Services, in source order (folder order matters to folder-mode allocation).
    pub services: Vec<ServiceView>,
    /// Nodes with a serving endpoint, per Service that has EndpointSlices.
    pub endpoints: BTreeMap<ServiceKey, BTreeSet<String>>,
    /// The nodes the source knows, by name (empty when it knows none, as a folder without Node
    /// objects).
    pub nodes: BTreeMap<String, Node>,
    /// What the source read but does not use, as `where: apiVersion/kind`.
    pub ignored: Vec<String>,
}

/// One thing wrong with an update: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceProblem {
    /// `file`, `file (document N)`, or `Kind/name`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SourceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// One update from a source: a good snapshot, or every problem that refused it.
#[derive(Clone, Debug)]
pub struct SourceUpdate {
    /// When the source started reading it (for the change-to-UPDATE latency).
    pub started: Instant,
    /// The snapshot, or why there is none.
    pub result: Result<Snapshot, Vec<SourceProblem>>,
}

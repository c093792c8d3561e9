//! What a lab is: its fixed numbers (the router's AS and id, the state directory), the router
//! kinds, and the [`LabSpec`] a test asks for. `lab/netns/lab.sh env` prints the same numbers,
//! and a unit test checks the two agree.

use std::fmt;
use std::net::Ipv4Addr;

/// The router's AS number in every lab.
pub const ROUTER_ASN: u32 = 64500;
/// The router's BGP identifier in every lab.
pub const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The most nodes a lab can have.
pub const MAX_NODES: usize = 40;
/// Where `lab.sh` keeps each lab's state (`<root>/<name>/`).
pub const STATE_ROOT: &str = "/run/ferrolb-lab";
/// The GoBGP router's gRPC API port, on 127.0.0.1 inside the router namespace.
pub const GOBGP_API_PORT: u16 = 50051;

/// Environment variable that points the harness at another `lab.sh`.
pub const LAB_SH_ENV: &str = "FERROLB_LAB_SH";
/// Environment variable that keeps labs after the test (for debugging): set it to `1`.
pub const KEEP_ENV: &str = "FERROLB_LAB_KEEP";

/// Which router runs in the lab's router namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouterKind {
    /// FRR 8.4: zebra + bgpd, asked with `vtysh`.
    Frr,
    /// BIRD 2, asked with `birdc`.
    Bird,
    /// GoBGP, asked with `gobgp -j`.
    Gobgp,
}

impl RouterKind {
    /// The name `lab.sh --router` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            RouterKind::Frr => "frr",
            RouterKind::Bird => "bird",
            RouterKind::Gobgp => "gobgp",
        }
    }
}

impl fmt::Display for RouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What lab to bring up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// The router in `NAME-rtr`.
    pub router: RouterKind,
    /// The router's whole configuration text, replacing the default one (for FRR: the bgpd
    /// configuration). `lab.sh` substitutes `@NAME@`, `@STATE_DIR@`, `@ROUTER_PORT@`,
    /// `@ASN@` and `@ROUTER_ID@` in it.
    pub router_config: Option<String>,
    /// Number of node namespaces (1..=[`MAX_NODES`]).
    pub nodes: usize,
    /// The port the router listens on for BGP (default 179).
    pub router_port: Option<u16>,
    /// Add the layer-2 LAN (`lab.sh up --l2`): bridge br1 with the client's and every node's
    /// eth1.
    pub l2: bool,
    /// The first characters of the lab's name (default `t`; at most 5 letters or digits).
    pub name_prefix: Option<String>,
}

impl LabSpec {
    /// Three nodes, the router's default configuration, port 179.
    pub fn new(router: RouterKind) -> Self {
        LabSpec {
            router,
            router_config: None,
            nodes: 3,
            router_port: None,
            l2: false,
            name_prefix: None,
        }
    }

    /// Add the layer-2 LAN.
    pub fn with_l2(mut self) -> Self {
        self.l2 = true;
        self
    }

    /// Name the lab (and its namespaces) with this prefix.
    pub fn with_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Use this configuration instead of the router's default one.
    pub fn with_router_config(mut self, config: impl Into<String>) -> Self {
        self.router_config = Some(config.into());
        self
    }

    /// Use this many nodes.
    pub fn with_nodes(mut self, nodes: usize) -> Self {
        self.nodes = nodes;
        self
    }

    /// Let the router listen for BGP on this port.
    pub fn with_router_port(mut self, port: u16) -> Self {
        self.router_port = Some(port);
        self
    }
}

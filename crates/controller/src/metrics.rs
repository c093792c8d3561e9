//! The controller's Prometheus metrics: leadership, configuration validity, pool use, waiting
//! Services and writes. Owns the registry; serving it is the subcommand's.

use ferrolb_allocator::Allocator;
use prometheus::{GaugeVec, IntCounterVec, IntGauge, Opts, Registry};

/// The controller's metrics.
#[derive(Clone)]
pub struct ControllerMetrics {
    registry: Registry,
    /// 1 while this instance holds the Lease.
    pub leader: IntGauge,
    /// 1 while the ferrolb.io objects in the cluster form a valid configuration.
    pub config_valid: IntGauge,
    /// LoadBalancer Services waiting for an address.
    pub services_pending: IntGauge,
    /// Addresses per pool, family and state (`assigned`, `available`).
    pub pool_addresses: GaugeVec,
    /// Writes sent, by kind (`service_status`, `event`, `pool_finalizers`, `pool_status`) and
    /// result (`ok`, `error`).
    pub writes: IntCounterVec,
}

impl ControllerMetrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Result<ControllerMetrics, prometheus::Error> {
        let registry = Registry::new();
        let leader = IntGauge::new(
            "ferrolb_controller_leader",
            "1 while this controller instance holds the leader Lease",
        )?;
        let config_valid = IntGauge::new(
            "ferrolb_controller_config_valid",
            "1 while the ferrolb.io objects form a valid configuration",
        )?;
        let services_pending = IntGauge::new(
            "ferrolb_controller_services_pending",
            "LoadBalancer Services waiting for an address",
        )?;
        let pool_addresses = GaugeVec::new(
            Opts::new(
                "ferrolb_pool_addresses",
                "Addresses per pool, family and state",
            ),
            &["pool", "family", "state"],
        )?;
        let writes = IntCounterVec::new(
            Opts::new(
                "ferrolb_controller_writes_total",
                "Writes sent to the API server",
            ),
            &["kind", "result"],
        )?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(config_valid.clone()))?;
        registry.register(Box::new(services_pending.clone()))?;
        registry.register(Box::new(pool_addresses.clone()))?;
        registry.register(Box::new(writes.clone()))?;
        Ok(ControllerMetrics {
            registry,
            leader,
            config_valid,
            services_pending,
            pool_addresses,
            writes,
        })
    }

    /// The registry to serve.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Updates the pool and waiting gauges from the allocator.
    pub fn observe(&self, allocator: &Allocator) {
        self.pool_addresses.reset();
        for stats in allocator.stats() {
            for (family, counts) in [("ipv4", stats.ipv4), ("ipv6", stats.ipv6)] {
                // u128 counts: f64 is exact up to 2^53 and close enough beyond.
                self.pool_addresses
                    .with_label_values(&[stats.pool.as_ref(), family, "assigned"])
                    .set(counts.in_use as f64);
                self.pool_addresses
                    .with_label_values(&[stats.pool.as_ref(), family, "available"])
                    .set(counts.available as f64);
            }
        }
        self.services_pending
            .set(i64::try_from(allocator.pending().len()).unwrap_or(i64::MAX));
    }
}

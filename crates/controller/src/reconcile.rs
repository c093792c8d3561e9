//! The controller's decisions, without I/O: one [`Reconciler::pass`] over the cluster's
//! Services, Namespaces and pools returns the writes that bring the cluster in line (Service
//! status, Events, pool finalizers and pool status). Time is an input.
//!
//! Owns: restore-first (the first pass after a start or a leadership gain rebuilds the
//! allocator from the addresses Services already hold before anything new is assigned), the
//! class filter, releasing Services that left, the `ferrolb.io/AddressAssigned` condition and
//! which Event goes with which change, pool protection and pool counts. Does not own the
//! address rules (the allocator), the validation of ferrolb.io objects (`ferrolb-cluster`), nor
//! how a write is sent and whether this instance may send it (the shell in `run`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_allocator::{Allocator, Assignment, PoolSpec, ServiceRequest};
use ferrolb_model::Config;
use ferrolb_model::service::{ServiceKey, ServiceView};
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};
use tracing::{info, warn};

/// The condition type the controller owns in `Service.status.conditions`.
pub const CONDITION_TYPE: &str = "ferrolb.io/AddressAssigned";
/// The finalizer that keeps a pool while a Service holds one of its addresses.
pub const POOL_FINALIZER: &str = "ferrolb.io/pool-protection";
/// The condition type in `IPAddressPool.status.conditions` saying who holds its addresses.
pub const POOL_IN_USE: &str = "InUse";

pub use ferrolb_model::service::ClassFilter;

/// A pool as the cluster holds it (metadata and current status), for finalizers and status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolObject {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`: finalizer writes are conditional on it.
    pub resource_version: Option<String>,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// `status`, as read (`Null` when none).
    pub status: Value,
}

/// What one pass reads.
#[derive(Clone, Copy, Debug)]
pub struct PassInput<'a> {
    /// The configuration in force (`None` until a good one was read: then nothing is done).
    pub config: Option<&'a Config>,
    /// Every Service.
    pub services: &'a [Arc<Service>],
    /// Every Namespace's labels.
    pub namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// Every IPAddressPool object.
    pub pools: &'a [PoolObject],
    /// Now, for condition transition times.
    pub now: jiff::Timestamp,
}

/// An Event to publish on a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// `IPAllocated`, `AllocationFailed`, `IPReleased`, `AddressKept`, `InvalidService`.
    pub reason: &'static str,
    /// What the controller did: `Allocate`, `Release`.
    pub action: &'static str,
    /// The sentence `kubectl describe` shows.
    pub note: String,
}

/// One write the pass asks for, in the order they should be sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Server-side apply of `status` (a `ServiceStatus` object) on the Service's status
    /// subresource.
    ServiceStatus {
        /// The Service.
        service: ServiceKey,
        /// The whole status this controller owns: `loadBalancer.ingress` and its condition.
        status: Value,
    },
    /// An Event regarding the Service.
    ServiceEvent {
        /// The Service.
        service: ServiceKey,
        /// The Event.
        event: EventNote,
    },
    /// Replace the pool's finalizers, conditional on its resource version.
    PoolFinalizers {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The version the list was computed from.
        resource_version: Option<String>,
        /// The new list.
        finalizers: Vec<String>,
    },
    /// Server-side apply of the pool's status.
    PoolStatus {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The status this controller owns.
        status: Value,
    },
}

/// The controller's memory between passes. A new one (after a start or a leadership gain)
/// restores before it assigns.
#[derive(Debug)]
pub struct Reconciler {
    filter: ClassFilter,
    allocator: Allocator,
    restored: bool,
    pools_in_force: Option<Vec<PoolSpec>>,
    /// The request each Service was last assigned with (without its current addresses).
    requests: BTreeMap<ServiceKey, ServiceRequest>,
    /// What was last written, and the resource version of the object when it was: a store that
    /// has not caught up with the write is not written again.
    written: BTreeMap<String, (Value, Option<String>)>,
}

/// What a Service should look like after the pass.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Held(Assignment),
    Failed {
        reason: &'static str,
        message: String,
    },
}

impl Reconciler {
    /// A reconciler that will restore on its first pass.
    pub fn new(filter: ClassFilter) -> Reconciler {
        Reconciler {
            filter,
            allocator: Allocator::new(),
            restored: false,
            pools_in_force: None,
            requests: BTreeMap::new(),
            written: BTreeMap::new(),
        }
    }

    /// Whether the first pass (the restore) has run.
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// The allocator, for metrics.
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// One pass: configuration, restore (first time), releases, assignments, then the writes.
    pub fn pass(&mut self, input: &PassInput<'_>) -> Vec<Action> {
        let Some(config) = input.config else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        self.apply_pools(config, input.pools);
        for (namespace, labels) in input.namespaces {
            self.allocator
                .set_namespace_labels(namespace, labels.clone());
        }

        // Read every Service once.
        let mut handled: BTreeMap<ServiceKey, (Arc<Service>, ServiceView)> = BTreeMap::new();
        let mut invalid: BTreeMap<ServiceKey, (Arc<Service>, String)> = BTreeMap::new();
        let mut existing: BTreeMap<ServiceKey, Arc<Service>> = BTreeMap::new();
        for service in input.services {
            let key = key_of(service);
            existing.insert(key.clone(), service.clone());
            if !is_load_balancer(service) || service.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let class = service
                .spec
                .as_ref()
                .and_then(|s| s.load_balancer_class.as_deref());
            if !self.filter.handles(class) {
                continue;
            }
            match ServiceView::from_service(service) {
                Ok(view) => {
                    handled.insert(key, (service.clone(), view));
                }
                Err(errors) => {
                    let message = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    invalid.insert(key, (service.clone(), message));
                }
            }
        }

        if !self.restored {
            let requests: Vec<ServiceRequest> = handled
                .values()
                .map(|(_, view)| ServiceRequest::from_view(view))
                .collect();
            let report = self.allocator.restore(requests.clone());
            for request in requests {
                let key = ferrolb_model::ServiceKey::from(&request.service);
                self.requests.insert(key, without_current(request));
            }
            info!(
                services = report.assigned.len(),
                failed = report.failed.len(),
                "restored addresses from Service status before assigning anything new"
            );
            self.restored = true;
        }

        // Releases: Services the allocator knows that are gone or no longer ours.
        let known: BTreeSet<ServiceKey> = self
            .allocator
            .assignments()
            .iter()
            .map(|a| ServiceKey::from(&a.service))
            .chain(
                self.allocator
                    .pending()
                    .iter()
                    .map(|p| ServiceKey::from(&p.service)),
            )
            .collect();
        for key in known {
            if handled.contains_key(&key) || invalid.contains_key(&key) {
                continue;
            }
            self.requests.remove(&key);
            match self.allocator.release(&(&key).into()) {
                Ok(released) if !existing.contains_key(&key) => {
                    info!(service = %key, addresses = ?released.addresses, "Service deleted; addresses released");
                }
                Ok(released) => {
                    info!(service = %key, addresses = ?released.addresses, "Service no longer ours; addresses released");
                }
                Err(error) => warn!(service = %key, error = %error, "release failed"),
            }
        }

        // Assignments: new Services and changed requests.
        let mut failures: BTreeMap<ServiceKey, String> = BTreeMap::new();
        for (key, (_, view)) in &handled {
            let request = ServiceRequest::from_view(view);
            let bare = without_current(request.clone());
            let known = self.allocator.assignment(&request.service).is_some();
            if known && self.requests.get(key) == Some(&bare) {
                continue;
            }
            match self.allocator.assign(&request) {
                Ok(_) => {}
                Err(error) => {
                    failures.insert(key.clone(), error.failure.to_string());
                }
            }
            self.requests.insert(key.clone(), bare);
        }
        for pending in self.allocator.pending() {
            failures
                .entry(ServiceKey::from(&pending.service))
                .or_insert_with(|| pending.failure.to_string());
        }

        // Service status, condition and Events.
        for (key, (service, _)) in &handled {
            let outcome = match self.allocator.assignment(&key.into()) {
                Some(assignment) => Outcome::Held(assignment),
                None => Outcome::Failed {
                    reason: "AllocationFailed",
                    message: failures
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| "waiting for an address".into()),
                },
            };
            self.service_outcome(key, service, &outcome, input.now, &mut actions);
        }
        for (key, (service, message)) in &invalid {
            // A Service we cannot read keeps what it holds; the condition says why nothing
            // changes.
            let outcome = match self.allocator.assignment(&key.into()) {
                Some(assignment) => Outcome::Held(assignment),
                None => Outcome::Failed {
                    reason: "InvalidService",
                    message: message.clone(),
                },
            };
            self.service_outcome(key, service, &outcome, input.now, &mut actions);
        }
        // Services that are no longer ours but still carry our condition: clear what we wrote.
        for (key, service) in &existing {
            if handled.contains_key(key) || invalid.contains_key(key) {
                continue;
            }
            if current_condition(service).is_none() {
                continue;
            }
            let status = json!({"loadBalancer": {"ingress": []}});
            if self.already_written(&format!("svc/{key}"), &status, service) {
                continue;
            }
            let previous = ingress_of(service);
            actions.push(Action::ServiceStatus {
                service: key.clone(),
                status: status.clone(),
            });
            if !previous.is_empty() {
                actions.push(Action::ServiceEvent {
                    service: key.clone(),
                    event: EventNote {
                        warning: false,
                        reason: "IPReleased",
                        action: "Release",
                        note: format!(
                            "released {}: the Service is no longer a LoadBalancer handled by ferrolb",
                            join(&previous)
                        ),
                    },
                });
            }
            self.remember(format!("svc/{key}"), status, service);
        }

        self.pool_actions(config, input, &mut actions);
        actions
    }

    fn apply_pools(&mut self, config: &Config, pools: &[PoolObject]) {
        let terminating: BTreeSet<&str> = pools
            .iter()
            .filter(|p| p.terminating)
            .map(|p| p.name.as_str())
            .collect();
        // A pool being deleted hands out nothing more; its holders keep their addresses.
        let specs: Vec<PoolSpec> = config
            .pools
            .iter()
            .filter(|p| !terminating.contains(p.name.as_str()))
            .map(PoolSpec::from_model)
            .collect();
        if self.pools_in_force.as_ref() == Some(&specs) {
            return;
        }
        match self.allocator.set_pools(specs.clone()) {
            Ok(changes) => {
                for change in changes {
                    let new_conflicts = change
                        .after
                        .as_ref()
                        .map(|a| a.conflicts.clone())
                        .unwrap_or_default();
                    for conflict in new_conflicts {
                        warn!(
                            service = %change.service, address = %conflict.address, reason = %conflict.reason,
                            "pool change would strand an address; it is kept"
                        );
                    }
                }
                self.pools_in_force = Some(specs);
            }
            Err(error) => {
                warn!(error = %error, "the allocator refused the pools; keeping the previous ones")
            }
        }
    }

    fn service_outcome(
        &mut self,
        key: &ServiceKey,
        service: &Service,
        outcome: &Outcome,
        now: jiff::Timestamp,
        actions: &mut Vec<Action>,
    ) {
        let (ingress, condition_status, reason, message) = match outcome {
            Outcome::Held(assignment) if assignment.conflicts.is_empty() => (
                assignment.addresses.clone(),
                "True",
                "Assigned",
                format!(
                    "{} from pool {}",
                    join(&assignment.addresses),
                    assignment.pool.as_deref().unwrap_or("(none)")
                ),
            ),
            Outcome::Held(assignment) => (
                assignment.addresses.clone(),
                "True",
                "AddressKept",
                format!(
                    "{} kept although the configuration would not hand it out now: {}",
                    join(&assignment.addresses),
                    assignment
                        .conflicts
                        .iter()
                        .map(|c| format!("{}: {}", c.address, c.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            Outcome::Failed { reason, message } => (Vec::new(), "False", *reason, message.clone()),
        };
        // An address is never taken away silently: a Service that fails keeps its status only
        // when the allocator kept it (then the outcome is Held).
        let current = current_condition(service);
        let transition = match &current {
            Some(c) if c.status == condition_status => c.last_transition_time.clone(),
            _ => Value::String(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        };
        let status = json!({
            "loadBalancer": {"ingress": ingress.iter().map(|ip| json!({"ip": ip.to_string()})).collect::<Vec<_>>()},
            "conditions": [{
                "type": CONDITION_TYPE,
                "status": condition_status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": transition,
            }],
        });
        let previous = ingress_of(service);
        let unchanged = previous == ingress
            && current.as_ref().is_some_and(|c| {
                c.status == condition_status && c.reason == reason && c.message == message
            });
        let id = format!("svc/{key}");
        if unchanged || self.already_written(&id, &status, service) {
            return;
        }
        actions.push(Action::ServiceStatus {
            service: key.clone(),
            status: status.clone(),
        });
        let event = match outcome {
            Outcome::Held(assignment) if previous != ingress => Some(EventNote {
                warning: !assignment.conflicts.is_empty(),
                reason: if assignment.conflicts.is_empty() {
                    "IPAllocated"
                } else {
                    "AddressKept"
                },
                action: "Allocate",
                note: if assignment.conflicts.is_empty() {
                    format!("assigned {message}")
                } else {
                    message.clone()
                },
            }),
            Outcome::Held(_)
                if reason == "AddressKept" && current.is_none_or(|c| c.reason != reason) =>
            {
                Some(EventNote {
                    warning: true,
                    reason: "AddressKept",
                    action: "Allocate",
                    note: message.clone(),
                })
            }
            Outcome::Failed { reason, .. } => Some(EventNote {
                warning: true,
                reason,
                action: "Allocate",
                note: message.clone(),
            }),
            Outcome::Held(_) => None,
        };
        if let Some(event) = event {
            actions.push(Action::ServiceEvent {
                service: key.clone(),
                event,
            });
        }
        self.remember(id, status, service);
    }

    fn pool_actions(&mut self, config: &Config, input: &PassInput<'_>, actions: &mut Vec<Action>) {
        let assignments = self.allocator.assignments();
        for object in input.pools {
            let Some(pool) = config.pools.iter().find(|p| p.name == object.name) else {
                continue;
            };
            let holders: Vec<&Assignment> = assignments
                .iter()
                .filter(|a| a.addresses.iter().any(|ip| pool.contains(*ip)))
                .collect();
            let mut finalizers = object.finalizers.clone();
            let has = finalizers.iter().any(|f| f == POOL_FINALIZER);
            if !holders.is_empty() && !has && !object.terminating {
                finalizers.push(POOL_FINALIZER.to_owned());
            } else if holders.is_empty() && has {
                finalizers.retain(|f| f != POOL_FINALIZER);
            }
            if finalizers != object.finalizers {
                actions.push(Action::PoolFinalizers {
                    namespace: object.namespace.clone(),
                    name: object.name.clone(),
                    resource_version: object.resource_version.clone(),
                    finalizers,
                });
            }

            let names: Vec<String> = holders
                .iter()
                .map(|a| {
                    format!(
                        "{}/{} ({})",
                        a.service.namespace(),
                        a.service.name(),
                        join(&a.addresses)
                    )
                })
                .collect();
            let (in_use, reason, message) = if names.is_empty() {
                (
                    "False",
                    "Unused",
                    "no Service holds an address of this pool".to_owned(),
                )
            } else {
                let shown = names
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = names.len().saturating_sub(10);
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                let deleting = if object.terminating {
                    "being deleted; waiting for these Services to release their addresses: "
                } else {
                    "held by "
                };
                ("True", "HeldByServices", format!("{deleting}{shown}{tail}"))
            };
            let current_conditions = object.status.get("conditions").and_then(Value::as_array);
            let current = current_conditions.and_then(|list| {
                list.iter()
                    .find(|c| c.get("type") == Some(&json!(POOL_IN_USE)))
            });
            let transition = match current {
                Some(c) if c.get("status") == Some(&json!(in_use)) => {
                    c.get("lastTransitionTime").cloned().unwrap_or(Value::Null)
                }
                _ => Value::String(input.now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            };
            let mut status = json!({
                "conditions": [{
                    "type": POOL_IN_USE, "status": in_use, "reason": reason, "message": message,
                    "lastTransitionTime": transition,
                }],
            });
            if let Some(stats) = self.allocator.pool_stats(&object.name) {
                status["assignedIPv4"] = json!(stats.ipv4.in_use.to_string());
                status["availableIPv4"] = json!(stats.ipv4.available.to_string());
                status["assignedIPv6"] = json!(stats.ipv6.in_use.to_string());
                status["availableIPv6"] = json!(stats.ipv6.available.to_string());
            }
            let same = status.as_object().is_some_and(|fields| {
                fields.iter().all(|(field, value)| match field.as_str() {
                    "conditions" => current.is_some_and(|c| {
                        ["status", "reason", "message"]
                            .iter()
                            .all(|f| c.get(*f) == value[0].get(*f))
                    }),
                    _ => object.status.get(field) == Some(value),
                })
            });
            let id = format!("pool/{}/{}", object.namespace, object.name);
            let written = self
                .written
                .get(&id)
                .is_some_and(|(w, rv)| w == &status && rv == &object.resource_version);
            if same || written {
                continue;
            }
            actions.push(Action::PoolStatus {
                namespace: object.namespace.clone(),
                name: object.name.clone(),
                status: status.clone(),
            });
            self.written
                .insert(id, (status, object.resource_version.clone()));
        }
    }

    fn already_written(&self, id: &str, status: &Value, service: &Service) -> bool {
        self.written
            .get(id)
            .is_some_and(|(w, rv)| w == status && rv == &service.metadata.resource_version)
    }

    fn remember(&mut self, id: String, status: Value, service: &Service) {
        self.written
            .insert(id, (status, service.metadata.resource_version.clone()));
    }

    /// Forgets what was written for an object whose write failed, so the next pass retries.
    pub fn forget_write(&mut self, action: &Action) {
        let id = match action {
            Action::ServiceStatus { service, .. } => format!("svc/{service}"),
            Action::PoolStatus {
                namespace, name, ..
            } => format!("pool/{namespace}/{name}"),
            _ => return,
        };
        self.written.remove(&id);
    }
}

/// Our condition as read from the Service.
struct CurrentCondition {
    status: String,
    reason: String,
    message: String,
    last_transition_time: Value,
}

fn current_condition(service: &Service) -> Option<CurrentCondition> {
    let condition = service
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == CONDITION_TYPE)?;
    Some(CurrentCondition {
        status: condition.status.clone(),
        reason: condition.reason.clone(),
        message: condition.message.clone(),
        last_transition_time: serde_json::to_value(&condition.last_transition_time)
            .unwrap_or(Value::Null),
    })
}

fn key_of(service: &Service) -> ServiceKey {
    ServiceKey::new(
        service
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        service.metadata.name.clone().unwrap_or_default(),
    )
}

fn is_load_balancer(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

fn ingress_of(service: &Service) -> Vec<IpAddr> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}

fn without_current(mut request: ServiceRequest) -> ServiceRequest {
    request.current_addresses.clear();
    request
}

fn join(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferrolb_model::Resources;
    use ferrolb_model::load::decode_object;

    fn config(pools: &[(&str, &[&str])]) -> Config {
        let mut resources = Resources::default();
        for (name, addresses) in pools {
            let doc = json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                             "metadata": {"name": name, "namespace": "ferrolb-system"},
                             "spec": {"addresses": addresses}});
            resources.add(decode_object(&doc).unwrap());
        }
        Config::build(&resources).unwrap()
    }

    fn service(name: &str, extra: Value) -> Arc<Service> {
        let mut doc = json!({"metadata": {"name": name, "namespace": "shop", "resourceVersion": "1"},
                             "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"],
                                      "ports": [{"port": 80, "protocol": "TCP"}]}});
        if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                doc.insert(key.clone(), value.clone());
            }
        }
        Arc::new(serde_json::from_value(doc).unwrap())
    }

    fn pass(
        reconciler: &mut Reconciler,
        config: Option<&Config>,
        services: &[Arc<Service>],
    ) -> Vec<Action> {
        reconciler.pass(&PassInput {
            config,
            services,
            namespaces: &BTreeMap::new(),
            pools: &[],
            now: jiff::Timestamp::UNIX_EPOCH,
        })
    }

    fn events(actions: &[Action]) -> Vec<EventNote> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::ServiceEvent { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    fn statuses(actions: &[Action]) -> Vec<Value> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::ServiceStatus { status, .. } => Some(status.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_class_filter_takes_classless_services_unless_a_class_is_required() {
        let default = ClassFilter::default();
        assert!(default.handles(None));
        assert!(!default.handles(Some("ferrolb.io/bgp")));
        let ours = ClassFilter {
            class: Some("ferrolb.io/bgp".into()),
            require_class: false,
        };
        assert!(ours.handles(None) && ours.handles(Some("ferrolb.io/bgp")));
        assert!(!ours.handles(Some("example.com/other")));
        let required = ClassFilter {
            require_class: true,
            ..ours
        };
        assert!(!required.handles(None) && required.handles(Some("ferrolb.io/bgp")));
    }

    #[test]
    fn nothing_is_written_before_a_configuration_was_ever_valid() {
        let mut reconciler = Reconciler::new(ClassFilter::default());
        assert!(pass(&mut reconciler, None, &[service("web", json!({}))]).is_empty());
        assert!(!reconciler.restored());
    }

    #[test]
    fn a_pool_edit_that_strands_an_address_keeps_it_and_says_so() {
        let mut reconciler = Reconciler::new(ClassFilter::default());
        let wide = config(&[("public", &["192.0.2.0/28"])]);
        let held = service(
            "web",
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}}),
        );
        let first = pass(&mut reconciler, Some(&wide), std::slice::from_ref(&held));
        assert_eq!(
            statuses(&first)[0]["loadBalancer"]["ingress"],
            json!([{"ip": "192.0.2.9"}])
        );
        // A restored address that is already in status is not announced again.
        assert!(events(&first).is_empty());
        let narrow = config(&[("public", &["192.0.2.0/29"])]);
        let second = pass(&mut reconciler, Some(&narrow), &[held]);
        let status = &statuses(&second)[0];
        assert_eq!(
            status["loadBalancer"]["ingress"],
            json!([{"ip": "192.0.2.9"}])
        );
        assert_eq!(status["conditions"][0]["reason"], json!("AddressKept"));
        let event = &events(&second)[0];
        assert!(event.warning);
        assert_eq!(event.reason, "AddressKept");
        assert!(
            event.note.contains("192.0.2.9") && event.note.contains("in no pool"),
            "{}",
            event.note
        );
    }

    #[test]
    fn a_write_the_store_has_not_caught_up_with_is_not_sent_again() {
        let mut reconciler = Reconciler::new(ClassFilter::default());
        let cfg = config(&[("public", &["192.0.2.0/28"])]);
        let web = service("web", json!({}));
        let first = pass(&mut reconciler, Some(&cfg), std::slice::from_ref(&web));
        assert_eq!(statuses(&first).len(), 1);
        assert_eq!(events(&first)[0].reason, "IPAllocated");
        // Same resource version: the watch has not delivered the write yet.
        assert!(pass(&mut reconciler, Some(&cfg), &[web]).is_empty());
    }

    #[test]
    fn a_service_with_unreadable_annotations_is_told_why_it_gets_nothing() {
        let mut reconciler = Reconciler::new(ClassFilter::default());
        let cfg = config(&[("public", &["192.0.2.0/28"])]);
        let bad = service(
            "bad",
            json!({"metadata": {"name": "bad", "namespace": "shop", "resourceVersion": "1",
                                "annotations": {"ferrolb.io/loadBalancerIPs": "not-an-ip"}}}),
        );
        let actions = pass(&mut reconciler, Some(&cfg), &[bad]);
        let status = &statuses(&actions)[0];
        assert_eq!(status["conditions"][0]["status"], json!("False"));
        assert_eq!(status["conditions"][0]["reason"], json!("InvalidService"));
        assert!(
            status["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("loadBalancerIPs")
        );
        assert_eq!(events(&actions)[0].reason, "InvalidService");
    }
}

//! From the ferrolb.io objects in the cluster to the validated model `Config`.
//!
//! Owns: decoding each object on its own (strictly, with the field path of what does not fit,
//! the way `ferrolb check` reads a file), running the model's validation over all of them, and
//! [`ConfigKeeper`], which keeps the last good `Config` in force while the cluster holds a
//! refused one. Does not own the rules themselves (`ferrolb_model::Config::build`) nor what
//! the callers do with a refusal (log it, count it, report it in status).

use std::fmt;
use std::sync::Arc;

use ferrolb_model::load::decode_object;
use ferrolb_model::{Config, ResourceKind, Resources};
use kube::api::DynamicObject;

/// One reason the configuration was refused: the object, the field path, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// `Kind/name`, with the namespace when the object has one: `IPAddressPool/ferrolb/prod`.
    pub object: String,
    /// The field path, such as `spec.addresses[1]`; empty when the problem is the whole object.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.object, self.message)
        } else {
            write!(f, "{} {}: {}", self.object, self.field, self.message)
        }
    }
}

/// Decodes every ferrolb.io object; returns the decoded resources and a problem for each object
/// that did not decode (which is then left out).
pub fn decode_config_objects(
    objects: &[(ResourceKind, Arc<DynamicObject>)],
) -> (Resources, Vec<ConfigProblem>) {
    let mut resources = Resources::default();
    let mut problems = Vec::new();
    for (kind, object) in objects {
        let name = object.metadata.name.clone().unwrap_or_default();
        let label = match &object.metadata.namespace {
            Some(ns) => format!("{kind}/{ns}/{name}"),
            None => format!("{kind}/{name}"),
        };
        let mut json = match serde_json::to_value(object.as_ref()) {
            Ok(json) => json,
            Err(error) => {
                problems.push(ConfigProblem {
                    object: label,
                    field: String::new(),
                    message: error.to_string(),
                });
                continue;
            }
        };
        // The watcher's objects carry their type only in the list's apiVersion/kind; put the
        // single object's back so the decoder knows which resource it reads.
        if let Some(map) = json.as_object_mut() {
            map.insert("apiVersion".into(), ferrolb_model::crd::API_VERSION.into());
            map.insert("kind".into(), kind.as_str().into());
        }
        match decode_object(&json) {
            Ok(decoded) => resources.add(decoded),
            Err(errors) => problems.extend(errors.into_iter().map(|error| {
                let (field, message) = match error {
                    ferrolb_model::load::DocumentError::Field { field, message } => {
                        (field, message)
                    }
                    other => (String::new(), other.to_string()),
                };
                ConfigProblem {
                    object: label.clone(),
                    field,
                    message,
                }
            })),
        }
    }
    (resources, problems)
}

/// What [`ConfigKeeper::offer`] decided.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigVerdict {
    /// The objects form a valid configuration, now in force; `changed` when it differs from
    /// the one before.
    Accepted {
        /// Whether the configuration in force changed.
        changed: bool,
    },
    /// The objects were refused; the configuration in force (if any) stays.
    Refused {
        /// Every problem, by object.
        problems: Vec<ConfigProblem>,
        /// Whether a previous good configuration stays in force (false: none was ever good).
        keeping_last_good: bool,
    },
}

/// The configuration in force: the last set of ferrolb.io objects that decoded and validated
/// as a whole.
#[derive(Clone, Debug, Default)]
pub struct ConfigKeeper {
    current: Option<Config>,
    refused: Vec<ConfigProblem>,
}

impl ConfigKeeper {
    /// No configuration yet.
    pub fn new() -> ConfigKeeper {
        ConfigKeeper::default()
    }

    /// Decodes and validates the objects; a good set replaces the configuration in force, a
    /// refused one leaves it as it was.
    pub fn offer(&mut self, objects: &[(ResourceKind, Arc<DynamicObject>)]) -> ConfigVerdict {
        let (resources, mut problems) = decode_config_objects(objects);
        if problems.is_empty() {
            match Config::build(&resources) {
                Ok(config) => {
                    let changed = self.current.as_ref() != Some(&config);
                    self.current = Some(config);
                    self.refused.clear();
                    return ConfigVerdict::Accepted { changed };
                }
                Err(errors) => problems.extend(errors.into_iter().map(|e| ConfigProblem {
                    object: e.object.to_string(),
                    field: e.field,
                    message: e.message,
                })),
            }
        }
        self.refused = problems.clone();
        ConfigVerdict::Refused {
            problems,
            keeping_last_good: self.current.is_some(),
        }
    }

    /// The configuration in force, if any was ever good.
    pub fn current(&self) -> Option<&Config> {
        self.current.as_ref()
    }

    /// The problems of the last refused offer (empty after a good one).
    pub fn refused(&self) -> &[ConfigProblem] {
        &self.refused
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn object(kind: ResourceKind, value: serde_json::Value) -> (ResourceKind, Arc<DynamicObject>) {
        let mut object: DynamicObject = serde_json::from_value(value).unwrap();
        object.types = None;
        (kind, Arc::new(object))
    }

    fn pool(name: &str, addresses: serde_json::Value) -> (ResourceKind, Arc<DynamicObject>) {
        object(
            ResourceKind::IPAddressPool,
            json!({"metadata": {"name": name, "namespace": "ferrolb", "managedFields": [{"manager": "kubectl"}],
                   "resourceVersion": "7"},
                   "spec": {"addresses": addresses}, "status": {"assignedIPv4": "1"}}),
        )
    }

    #[test]
    fn a_valid_set_of_objects_becomes_the_config_in_force() {
        let mut keeper = ConfigKeeper::new();
        let verdict = keeper.offer(&[pool("public", json!(["192.0.2.0/28"]))]);
        assert_eq!(verdict, ConfigVerdict::Accepted { changed: true });
        assert_eq!(keeper.current().unwrap().pools[0].name, "public");
        assert_eq!(
            keeper.offer(&[pool("public", json!(["192.0.2.0/28"]))]),
            ConfigVerdict::Accepted { changed: false }
        );
    }

    #[test]
    fn a_refused_object_is_named_with_its_field_and_the_last_good_config_stays() {
        let mut keeper = ConfigKeeper::new();
        keeper.offer(&[pool("public", json!(["192.0.2.0/28"]))]);
        let verdict = keeper.offer(&[
            pool("public", json!(["192.0.2.0/28"])),
            pool("broken", json!(["192.0.2.20-192.0.2.10"])),
        ]);
        let ConfigVerdict::Refused {
            problems,
            keeping_last_good,
        } = verdict
        else {
            panic!("expected a refusal, got {verdict:?}");
        };
        assert!(keeping_last_good);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].object, "IPAddressPool/broken");
        assert_eq!(problems[0].field, "spec.addresses[0]");
        let config = keeper.current().unwrap();
        assert_eq!(config.pools.len(), 1);
        assert_eq!(config.pools[0].name, "public");
        assert_eq!(keeper.refused(), problems.as_slice());
    }

    #[test]
    fn an_object_that_does_not_decode_is_reported_with_the_field_that_does_not_fit() {
        let (resources, problems) = decode_config_objects(&[pool("odd", json!("192.0.2.0/28"))]);
        assert!(resources.is_empty());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].object, "IPAddressPool/ferrolb/odd");
        assert!(
            problems[0].field.starts_with("spec.addresses"),
            "{:?}",
            problems[0]
        );
    }

    #[test]
    fn without_any_good_config_a_refusal_says_nothing_stays_in_force() {
        let mut keeper = ConfigKeeper::new();
        let verdict = keeper.offer(&[pool("broken", json!(["not an address"]))]);
        assert!(matches!(
            verdict,
            ConfigVerdict::Refused {
                keeping_last_good: false,
                ..
            }
        ));
        assert!(keeper.current().is_none());
    }
}

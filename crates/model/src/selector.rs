//! Label selectors, validated and typed: the `nodeSelectors`, `serviceSelectors`,
//! `ipAddressPoolSelectors` and `namespaceSelectors` of ferrolb's resources.
//!
//! This module owns parsing a Kubernetes `LabelSelector`, matching label sets, and the
//! conservative "can these two ever select the same object?" test that `config` uses to decide
//! whether two objects may conflict. It does not fetch labels from anywhere.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::names::{check_label_key, check_label_value};

/// One requirement on one label key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// The label is present with one of these values (`matchLabels` is `In` with one value).
    In(String, BTreeSet<String>),
    /// The label is absent, or present with none of these values.
    NotIn(String, BTreeSet<String>),
    /// The label is present, with any value.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
}

impl Requirement {
    fn key(&self) -> &str {
        match self {
            Requirement::In(key, _)
            | Requirement::NotIn(key, _)
            | Requirement::Exists(key)
            | Requirement::DoesNotExist(key) => key,
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(self.key());
        match self {
            Requirement::In(_, values) => value.is_some_and(|v| values.contains(v)),
            Requirement::NotIn(_, values) => value.is_none_or(|v| !values.contains(v)),
            Requirement::Exists(_) => value.is_some(),
            Requirement::DoesNotExist(_) => value.is_none(),
        }
    }
}

/// A validated label selector: all requirements must hold. No requirements selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// A problem in a selector: the path below the selector (`matchExpressions[0].operator`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorProblem {
    /// Path relative to the selector, without a leading dot.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Selector {
    /// The selector that selects everything.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Validates and converts a Kubernetes label selector, reporting every problem.
    pub fn parse(selector: &LabelSelector) -> Result<Selector, Vec<SelectorProblem>> {
        let mut problems = Vec::new();
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            let field = format!("matchLabels[{key}]");
            if let Err(message) = check_label_key(key) {
                problems.push(SelectorProblem {
                    field: field.clone(),
                    message,
                });
            }
            if let Err(message) = check_label_value(value) {
                problems.push(SelectorProblem { field, message });
            }
            requirements.push(Requirement::In(
                key.clone(),
                BTreeSet::from([value.clone()]),
            ));
        }
        for (index, expression) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("matchExpressions[{index}]");
            if let Err(message) = check_label_key(&expression.key) {
                problems.push(SelectorProblem {
                    field: format!("{field}.key"),
                    message,
                });
            }
            let values: BTreeSet<String> = expression.values.iter().flatten().cloned().collect();
            for (value_index, value) in expression.values.iter().flatten().enumerate() {
                if let Err(message) = check_label_value(value) {
                    problems.push(SelectorProblem {
                        field: format!("{field}.values[{value_index}]"),
                        message,
                    });
                }
            }
            let key = expression.key.clone();
            let operator = expression.operator.as_str();
            let requirement = match operator {
                "In" | "NotIn" if values.is_empty() => {
                    problems.push(SelectorProblem {
                        field: format!("{field}.values"),
                        message: format!("operator {operator} needs at least one value"),
                    });
                    continue;
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    problems.push(SelectorProblem {
                        field: format!("{field}.values"),
                        message: format!("operator {operator} takes no values"),
                    });
                    continue;
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    problems.push(SelectorProblem {
                        field: format!("{field}.operator"),
                        message: format!(
                            "{other:?} is not an operator; use In, NotIn, Exists or DoesNotExist"
                        ),
                    });
                    continue;
                }
            };
            requirements.push(requirement);
        }
        if problems.is_empty() {
            Ok(Selector { requirements })
        } else {
            Err(problems)
        }
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The requirements, in the order written (`matchLabels` first).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True only when no label set can satisfy both selectors. "False" means "they might
    /// overlap": the test is exact for the usual shapes (`app: a` against `app: b`, `In` against
    /// `NotIn`, `Exists` against `DoesNotExist`) and errs on the side of "might".
    pub fn is_disjoint_from(&self, other: &Selector) -> bool {
        let keys: BTreeSet<&str> = self
            .requirements
            .iter()
            .chain(&other.requirements)
            .map(Requirement::key)
            .collect();
        keys.into_iter().any(|key| {
            let on_key: Vec<&Requirement> = self
                .requirements
                .iter()
                .chain(&other.requirements)
                .filter(|r| r.key() == key)
                .collect();
            requirements_contradict(&on_key)
        })
    }
}

fn requirements_contradict(on_one_key: &[&Requirement]) -> bool {
    let mut must_exist = false;
    let mut must_not_exist = false;
    let mut allowed: Option<BTreeSet<&String>> = None;
    let mut excluded: BTreeSet<&String> = BTreeSet::new();
    for requirement in on_one_key {
        match requirement {
            Requirement::In(_, values) => {
                must_exist = true;
                let these: BTreeSet<&String> = values.iter().collect();
                allowed = Some(match allowed {
                    Some(previous) => previous.intersection(&these).copied().collect(),
                    None => these,
                });
            }
            Requirement::NotIn(_, values) => excluded.extend(values),
            Requirement::Exists(_) => must_exist = true,
            Requirement::DoesNotExist(_) => must_not_exist = true,
        }
    }
    (must_exist && must_not_exist)
        || allowed.is_some_and(|allowed| allowed.iter().all(|value| excluded.contains(value)))
}

/// A list of selectors as ferrolb's resources use them: an object is selected when any selector
/// matches, and an empty list selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SelectorList(pub Vec<Selector>);

impl SelectorList {
    /// Whether the list selects an object with these labels.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s.matches(labels))
    }

    /// Whether the list is empty, i.e. selects everything.
    pub fn selects_everything(&self) -> bool {
        self.0.is_empty()
    }

    /// True only when no object can be selected by both lists (see [`Selector::is_disjoint_from`]).
    pub fn is_disjoint_from(&self, other: &SelectorList) -> bool {
        !self.0.is_empty()
            && !other.0.is_empty()
            && self
                .0
                .iter()
                .all(|mine| other.0.iter().all(|theirs| mine.is_disjoint_from(theirs)))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn match_labels(pairs: &[(&str, &str)]) -> Selector {
        Selector::parse(&LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        })
        .unwrap()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: if values.is_empty() {
                    None
                } else {
                    Some(values.iter().map(|v| v.to_string()).collect())
                },
            }]),
        }
    }

    #[test]
    fn match_labels_require_every_pair() {
        let selector = match_labels(&[("rack", "a"), ("zone", "1")]);
        assert!(selector.matches(&labels(&[("rack", "a"), ("zone", "1"), ("x", "y")])));
        assert!(!selector.matches(&labels(&[("rack", "a")])));
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(Selector::everything().matches(&labels(&[])));
        assert!(SelectorList::default().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn not_in_matches_when_the_label_is_absent() {
        let selector = Selector::parse(&expression("arch", "NotIn", &["arm64"])).unwrap();
        assert!(selector.matches(&labels(&[])));
        assert!(selector.matches(&labels(&[("arch", "amd64")])));
        assert!(!selector.matches(&labels(&[("arch", "arm64")])));
    }

    #[test]
    fn list_selects_when_any_selector_matches() {
        let list = SelectorList(vec![
            match_labels(&[("a", "1")]),
            match_labels(&[("b", "2")]),
        ]);
        assert!(list.matches(&labels(&[("b", "2")])));
        assert!(!list.matches(&labels(&[("c", "3")])));
    }

    #[test]
    fn unknown_operator_is_reported_with_its_path() {
        assert_eq!(
            Selector::parse(&expression("arch", "Equals", &["x"])).unwrap_err(),
            vec![SelectorProblem {
                field: "matchExpressions[0].operator".into(),
                message: "\"Equals\" is not an operator; use In, NotIn, Exists or DoesNotExist"
                    .into()
            }]
        );
    }

    #[test]
    fn in_without_values_and_exists_with_values_are_reported() {
        assert_eq!(
            Selector::parse(&expression("arch", "In", &[])).unwrap_err()[0].message,
            "operator In needs at least one value"
        );
        assert_eq!(
            Selector::parse(&expression("arch", "Exists", &["x"])).unwrap_err()[0].message,
            "operator Exists takes no values"
        );
    }

    #[test]
    fn different_values_of_one_key_are_disjoint() {
        assert!(match_labels(&[("app", "a")]).is_disjoint_from(&match_labels(&[("app", "b")])));
        assert!(!match_labels(&[("app", "a")]).is_disjoint_from(&match_labels(&[("tier", "b")])));
    }

    #[test]
    fn in_against_not_in_and_exists_against_does_not_exist_are_disjoint() {
        let in_a = Selector::parse(&expression("app", "In", &["a"])).unwrap();
        let not_in_a = Selector::parse(&expression("app", "NotIn", &["a"])).unwrap();
        let exists = Selector::parse(&expression("app", "Exists", &[])).unwrap();
        let absent = Selector::parse(&expression("app", "DoesNotExist", &[])).unwrap();
        assert!(in_a.is_disjoint_from(&not_in_a));
        assert!(exists.is_disjoint_from(&absent));
        assert!(!exists.is_disjoint_from(&not_in_a));
    }

    #[test]
    fn empty_list_overlaps_everything() {
        let list = SelectorList(vec![match_labels(&[("app", "a")])]);
        assert!(!SelectorList::default().is_disjoint_from(&list));
        assert!(!list.is_disjoint_from(&SelectorList::default()));
    }
}

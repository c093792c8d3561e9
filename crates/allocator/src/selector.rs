//! Kubernetes-style labels and label selectors, as plain data.
//!
//! Owns: [`Labels`], [`LabelSelector`] and its matching rules (the same as
//! `metav1.LabelSelector`: every `matchLabels` pair and every expression must hold; an empty
//! selector matches everything). Does not know where labels come from; the controller converts
//! the Kubernetes types into these.

use std::collections::{BTreeMap, BTreeSet};

/// Labels of a Service or a Namespace.
pub type Labels = BTreeMap<String, String>;

/// A label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    /// Every pair must be present with exactly this value.
    pub match_labels: BTreeMap<String, String>,
    /// Every expression must hold.
    pub match_expressions: Vec<LabelExpression>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LabelExpression {
    /// The label key.
    pub key: String,
    /// What must hold for it.
    pub operator: LabelOperator,
}

/// A `matchExpressions` operator with its values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LabelOperator {
    /// The label is present and its value is one of these.
    In(BTreeSet<String>),
    /// The label is absent, or its value is none of these.
    NotIn(BTreeSet<String>),
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl LabelSelector {
    /// A selector with only `matchLabels`.
    pub fn with_labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> LabelSelector {
        LabelSelector {
            match_labels: pairs
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            match_expressions: Vec::new(),
        }
    }

    /// Whether `labels` satisfy this selector.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
            && self.match_expressions.iter().all(|expression| {
                let value = labels.get(&expression.key);
                match &expression.operator {
                    LabelOperator::In(values) => value.is_some_and(|v| values.contains(v)),
                    LabelOperator::NotIn(values) => !value.is_some_and(|v| values.contains(v)),
                    LabelOperator::Exists => value.is_some(),
                    LabelOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::default().matches(&Labels::new()));
    }

    #[test]
    fn expressions_follow_kubernetes_semantics() {
        let values: BTreeSet<String> = ["a".to_owned()].into();
        let selector = |operator| LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![LabelExpression {
                key: "tier".to_owned(),
                operator,
            }],
        };
        let a = labels(&[("tier", "a")]);
        let b = labels(&[("tier", "b")]);
        let none = Labels::new();
        assert!(selector(LabelOperator::In(values.clone())).matches(&a));
        assert!(!selector(LabelOperator::In(values.clone())).matches(&none));
        assert!(selector(LabelOperator::NotIn(values.clone())).matches(&b));
        assert!(selector(LabelOperator::NotIn(values.clone())).matches(&none));
        assert!(!selector(LabelOperator::NotIn(values)).matches(&a));
        assert!(selector(LabelOperator::Exists).matches(&a));
        assert!(selector(LabelOperator::DoesNotExist).matches(&none));
    }
}

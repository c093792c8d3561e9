//! Community aliases: the rules on `Community` objects (valid names and values, names unique
//! across all objects), and the alias table advertisements resolve their communities against.

use std::collections::BTreeMap;

use super::Problems;
use crate::community::{CommunityValue, check_alias_name, parse_literal};
use crate::crd::{Community, ObjectRef};

/// The most aliases one Community object may hold (the CRD's `maxItems`).
pub const MAX_ALIASES_PER_OBJECT: usize = 1000;

/// An alias and where it was defined (for "already defined by" messages).
pub(super) struct Alias {
    pub value: CommunityValue,
    pub defined_by: ObjectRef,
}

pub(super) fn validate_communities(
    communities: &[(ObjectRef, &Community)],
    problems: &mut Problems,
) -> BTreeMap<String, Alias> {
    let mut aliases: BTreeMap<String, Alias> = BTreeMap::new();
    for (object, community) in communities {
        if community.spec.communities.len() > MAX_ALIASES_PER_OBJECT {
            problems.add(
                object,
                "spec.communities",
                format!(
                    "{} aliases; one Community object holds at most {MAX_ALIASES_PER_OBJECT} \
                     (use several objects)",
                    community.spec.communities.len()
                ),
            );
        }
        for (index, alias) in community.spec.communities.iter().enumerate() {
            let field = format!("spec.communities[{index}]");
            let name_ok = match check_alias_name(&alias.name) {
                Ok(()) => true,
                Err(message) => {
                    problems.add(object, format!("{field}.name"), message);
                    false
                }
            };
            let value = match parse_literal(&alias.value) {
                Ok(Some(value)) => Some(value),
                Ok(None) => {
                    problems.add(
                        object,
                        format!("{field}.value"),
                        format!(
                            "{:?} is not a community value: write A:B (16-bit numbers), \
                             large:A:B:C (32-bit numbers) or a well-known name; aliases cannot \
                             refer to other aliases",
                            alias.value
                        ),
                    );
                    None
                }
                Err(error) => {
                    problems.add(object, format!("{field}.value"), error.to_string());
                    None
                }
            };
            if let Some(existing) = aliases.get(&alias.name) {
                let where_defined = if existing.defined_by == *object {
                    "earlier in this object".to_owned()
                } else {
                    format!("by {}", existing.defined_by)
                };
                problems.add(
                    object,
                    format!("{field}.name"),
                    format!(
                        "alias {:?} is already defined {where_defined}; alias names must be unique",
                        alias.name
                    ),
                );
                continue;
            }
            if let (true, Some(value)) = (name_ok, value) {
                aliases.insert(
                    alias.name.clone(),
                    Alias {
                        value,
                        defined_by: object.clone(),
                    },
                );
            }
        }
    }
    aliases
}

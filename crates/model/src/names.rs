//! The naming rules Kubernetes and Linux impose on the strings in ferrolb's resources: object
//! names, namespaces, label keys and values, network interface names.
//!
//! The API server enforces the first ones for objects it stores, but ferrolb also reads the same
//! YAML from a directory (no API server in between), so the model checks them itself. Each check
//! returns the reason as text for the caller to put behind a field path.

/// Object names (`metadata.name`) are DNS subdomains (RFC 1123): at most 253 characters of
/// lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit.
pub fn check_object_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name is required".to_owned());
    }
    if name.len() > 253 {
        return Err(format!(
            "{name:?} is longer than 253 characters, the limit for Kubernetes names"
        ));
    }
    if !name.split('.').all(is_dns_label) {
        return Err(format!(
            "{name:?} is not a valid Kubernetes name: use lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Namespace names are DNS labels (RFC 1123): at most 63 lowercase letters, digits and `-`.
pub fn check_namespace_name(name: &str) -> Result<(), String> {
    if name.len() <= 63 && is_dns_label(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid namespace name: use at most 63 lowercase letters, digits \
             and '-', starting and ending with a letter or digit"
        ))
    }
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Label keys are an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.len() > 253 || !prefix.split('.').all(is_dns_label))
    {
        return Err(format!(
            "label key {key:?} has an invalid prefix: it must be a DNS subdomain such as example.com"
        ));
    }
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?} is not valid: the name part must be 1-63 characters of letters, \
             digits, '-', '_' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Label values are empty, or up to 63 characters like the name part of a key.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} is not valid: use at most 63 characters of letters, digits, \
             '-', '_' and '.', starting and ending with a letter or digit"
        ))
    }
}

fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Linux interface (and VRF device) names: 1 to 15 bytes (IFNAMSIZ minus the NUL), no `/`, no
/// whitespace, and not `.` or `..`.
pub fn check_interface_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid Linux interface name: use 1-15 characters without '/', ':' \
             or spaces"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_dns_subdomains() {
        assert_eq!(check_object_name("prod-pool.v4"), Ok(()));
        assert_eq!(
            check_object_name("Prod_Pool"),
            Err(
                "\"Prod_Pool\" is not a valid Kubernetes name: use lowercase letters, digits, \
                 '-' and '.', starting and ending with a letter or digit"
                    .to_owned()
            )
        );
        assert_eq!(check_object_name(""), Err("a name is required".to_owned()));
        assert!(check_object_name("-leading").is_err());
        assert!(check_object_name("double..dot").is_err());
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert_eq!(check_namespace_name("ferrolb-system"), Ok(()));
        assert!(check_namespace_name("has.dot").is_err());
    }

    #[test]
    fn label_keys_may_carry_a_dns_prefix() {
        assert_eq!(check_label_key("kubernetes.io/hostname"), Ok(()));
        assert_eq!(check_label_key("rack"), Ok(()));
        assert_eq!(
            check_label_key("Bad_Prefix/x"),
            Err(
                "label key \"Bad_Prefix/x\" has an invalid prefix: it must be a DNS subdomain \
                 such as example.com"
                    .to_owned()
            )
        );
        assert!(check_label_key("x/").is_err());
    }

    #[test]
    fn label_values_may_be_empty() {
        assert_eq!(check_label_value(""), Ok(()));
        assert_eq!(check_label_value("amd64"), Ok(()));
        assert!(check_label_value("has space").is_err());
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        assert_eq!(check_interface_name("eth0"), Ok(()));
        assert_eq!(check_interface_name("bond0.100"), Ok(()));
        assert!(check_interface_name("a-very-long-interface").is_err());
        assert!(check_interface_name("eth/0").is_err());
    }
}

//! The API server version check: ferrolb's CRDs use CEL functions (`isCIDR`, `ip()`) that
//! Kubernetes serves from 1.31; the controller itself only calls APIs that 1.24 has, so an
//! older server works but does not check the ferrolb.io objects on admission.

/// The oldest Kubernetes minor version whose API server evaluates every rule in the CRDs.
pub const MINIMUM_MINOR_FOR_CRDS: u32 = 31;

/// A warning to log for the version `/version` reported, or `None` when it is new enough.
/// `minor` may carry a suffix (`"31+"` on some distributions).
pub fn version_warning(major: &str, minor: &str) -> Option<String> {
    let digits = |text: &str| -> Option<u32> {
        let end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        text[..end].parse().ok()
    };
    match (digits(major), digits(minor)) {
        (Some(1), Some(minor)) if minor >= MINIMUM_MINOR_FOR_CRDS => None,
        (Some(major), _) if major > 1 => None,
        (Some(1), Some(minor)) => Some(format!(
            "Kubernetes 1.{minor} is older than 1.{MINIMUM_MINOR_FOR_CRDS}: the API server cannot evaluate the CEL rules of the ferrolb.io CRDs, so invalid objects are only refused by the controller (check the logs and `ferrolb check`)"
        )),
        _ => Some(format!(
            "cannot read the Kubernetes version from major {major:?} minor {minor:?}; ferrolb's CRDs need 1.{MINIMUM_MINOR_FOR_CRDS} or newer"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_1_31_need_no_warning_whatever_their_suffix() {
        assert_eq!(version_warning("1", "31"), None);
        assert_eq!(version_warning("1", "33+"), None);
        assert_eq!(version_warning("2", "0"), None);
    }

    #[test]
    fn an_older_server_gets_a_warning_naming_both_versions() {
        let warning = version_warning("1", "24").unwrap_or_default();
        assert!(
            warning.contains("1.24") && warning.contains("1.31"),
            "{warning}"
        );
    }

    #[test]
    fn an_unreadable_version_is_warned_about_not_ignored() {
        assert!(version_warning("", "x").is_some());
    }
}

//! Checks for conditions under which the kernel, not the announcer, would answer for a VIP, or
//! under which an answer would be useless: pure functions over what the caller and /proc/sys
//! say, plus a small reader of /proc/sys.
//!
//! - **ARP** (ip-sysctl `arp_ignore`): an IPv4 VIP configured as a local address anywhere on
//!   the host is answered by the kernel on an announce interface whose effective `arp_ignore`
//!   (the larger of `conf/all` and `conf/<if>`) is 0; with 1–3 only when the VIP sits on that
//!   very interface; 8 never. Then every node answers, not only the owner. IPVS's
//!   `kube-ipvs0` dummy holding the VIPs is the usual culprit and is reported as such.
//! - **NDP**: the kernel answers solicitations only for addresses of the receiving interface,
//!   so an IPv6 VIP configured on the announce interface itself is reported.
//! - **proxy_arp** (effective when set in `conf/all` or `conf/<if>`) makes the kernel answer
//!   for addresses it routes elsewhere.
//! - A VIP outside every connected subnet of its interface: clients on the link will not ARP
//!   for it directly, so the answer is never asked for (and routers may drop it).
//!
//! This module reports; it changes no setting and does not make anything ineligible.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use crate::config::{InterfaceFacts, VipGroup};

/// The interface whose `arp_ignore`/`proxy_arp` apply to all interfaces.
pub const ALL_INTERFACES: &str = "all";
/// The dummy interface kube-proxy's IPVS mode puts every Service IP on.
pub const KUBE_IPVS: &str = "kube-ipvs0";

/// The two ARP sysctls of one `conf/<name>` directory; `None` when unreadable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpSysctls {
    pub arp_ignore: Option<u8>,
    pub proxy_arp: Option<bool>,
}

/// What the kernel has that matters to the checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelView {
    /// Every local address, by interface (all interfaces, not only announce ones).
    pub local_addresses: BTreeMap<String, BTreeSet<IpAddr>>,
    /// `conf/all` and each announce interface's ARP sysctls.
    pub sysctls: BTreeMap<String, ArpSysctls>,
}

/// A reason the announcer may not be the only one answering, or may not be asked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreflightWarning {
    /// The kernel answers ARP for `vip` on `interface` because the VIP is a local address on
    /// `holder` and the effective `arp_ignore` is `arp_ignore`.
    KernelAnswersArp {
        vip: IpAddr,
        interface: String,
        holder: String,
        arp_ignore: u8,
    },
    /// Same, with IPVS's `kube-ipvs0` holding the VIP (set `strictARP: true` in kube-proxy).
    IpvsHoldsVip {
        vip: IpAddr,
        interface: String,
        arp_ignore: u8,
    },
    /// The IPv6 VIP is configured on its announce interface: the kernel answers too.
    KernelAnswersNdp { vip: IpAddr, interface: String },
    /// `proxy_arp` is on for the announce interface.
    ProxyArp { interface: String },
    /// The VIP is outside every connected subnet of its interface.
    OutsideSubnets { vip: IpAddr, interface: String },
    /// A sysctl could not be read, so the ARP checks for this interface were not made.
    SysctlUnreadable { interface: String },
}

impl fmt::Display for PreflightWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreflightWarning::KernelAnswersArp {
                vip,
                interface,
                holder,
                arp_ignore,
            } => write!(
                f,
                "{vip} is a local address on {holder} and arp_ignore={arp_ignore} on {interface}: the kernel answers ARP for it on every such node"
            ),
            PreflightWarning::IpvsHoldsVip {
                vip,
                interface,
                arp_ignore,
            } => write!(
                f,
                "{vip} is on {KUBE_IPVS} and arp_ignore={arp_ignore} on {interface}: the kernel answers ARP for it (enable kube-proxy strictARP)"
            ),
            PreflightWarning::KernelAnswersNdp { vip, interface } => write!(
                f,
                "{vip} is configured on {interface}: the kernel answers neighbour solicitations for it too"
            ),
            PreflightWarning::ProxyArp { interface } => {
                write!(
                    f,
                    "proxy_arp is on for {interface}: the kernel may answer for VIPs"
                )
            }
            PreflightWarning::OutsideSubnets { vip, interface } => write!(
                f,
                "{vip} is outside every connected subnet of {interface}: clients on the link will not ask for it"
            ),
            PreflightWarning::SysctlUnreadable { interface } => {
                write!(f, "cannot read ARP sysctls of {interface}")
            }
        }
    }
}

/// Runs every check for the groups this node may own.
pub fn check(
    groups: &BTreeMap<IpAddr, VipGroup>,
    interfaces: &BTreeMap<String, InterfaceFacts>,
    kernel: &KernelView,
) -> Vec<PreflightWarning> {
    let mut warnings = BTreeSet::new();
    let all = kernel
        .sysctls
        .get(ALL_INTERFACES)
        .copied()
        .unwrap_or_default();
    for group in groups.values() {
        let interface = group.interface.as_str();
        let own = kernel.sysctls.get(interface).copied().unwrap_or_default();
        let arp_ignore = match (all.arp_ignore, own.arp_ignore) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        let proxy_arp = match (all.proxy_arp, own.proxy_arp) {
            (Some(a), Some(b)) => Some(a || b),
            _ => None,
        };
        for &vip in &group.addresses {
            match vip {
                IpAddr::V4(_) => match (arp_ignore, proxy_arp) {
                    (Some(arp_ignore), Some(proxy_arp)) => {
                        for (holder, addresses) in &kernel.local_addresses {
                            if addresses.contains(&vip)
                                && kernel_answers_arp(arp_ignore, holder == interface)
                            {
                                warnings.insert(if holder == KUBE_IPVS {
                                    PreflightWarning::IpvsHoldsVip {
                                        vip,
                                        interface: interface.to_string(),
                                        arp_ignore,
                                    }
                                } else {
                                    PreflightWarning::KernelAnswersArp {
                                        vip,
                                        interface: interface.to_string(),
                                        holder: holder.clone(),
                                        arp_ignore,
                                    }
                                });
                            }
                        }
                        if proxy_arp {
                            warnings.insert(PreflightWarning::ProxyArp {
                                interface: interface.to_string(),
                            });
                        }
                    }
                    _ => {
                        warnings.insert(PreflightWarning::SysctlUnreadable {
                            interface: interface.to_string(),
                        });
                    }
                },
                IpAddr::V6(_) => {
                    if kernel
                        .local_addresses
                        .get(interface)
                        .is_some_and(|a| a.contains(&vip))
                    {
                        warnings.insert(PreflightWarning::KernelAnswersNdp {
                            vip,
                            interface: interface.to_string(),
                        });
                    }
                }
            }
            if let Some(facts) = interfaces.get(interface)
                && !facts.subnets.iter().any(|net| net.contains(&vip))
            {
                warnings.insert(PreflightWarning::OutsideSubnets {
                    vip,
                    interface: interface.to_string(),
                });
            }
        }
    }
    warnings.into_iter().collect()
}

/// Whether the kernel answers an ARP request for a local address, given the receiving
/// interface's effective `arp_ignore` and whether the address is on that interface
/// (ip-sysctl.rst). Mode 2 also wants the sender in the address's subnet, which a client on
/// the link usually is; 3 skips scope-host addresses, which a VIP usually is not.
pub fn kernel_answers_arp(arp_ignore: u8, on_receiving_interface: bool) -> bool {
    match arp_ignore {
        0 => true,
        1..=3 => on_receiving_interface,
        _ => false,
    }
}

/// Reads `conf/all` and each named interface's ARP sysctls under `/proc/sys/net/ipv4/conf`.
pub fn read_arp_sysctls<'a>(
    interfaces: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, ArpSysctls> {
    read_arp_sysctls_under(Path::new("/proc/sys/net/ipv4/conf"), interfaces)
}

/// [`read_arp_sysctls`] under another root (tests).
pub fn read_arp_sysctls_under<'a>(
    root: &Path,
    interfaces: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, ArpSysctls> {
    let mut names: BTreeSet<&str> = interfaces.into_iter().collect();
    names.insert(ALL_INTERFACES);
    names
        .into_iter()
        // An interface name is a single path component; anything else is not looked up.
        .filter(|n| !n.is_empty() && !n.contains('/') && *n != "." && *n != "..")
        .map(|name| {
            let read = |file: &str| -> Option<u8> {
                std::fs::read_to_string(root.join(name).join(file))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            };
            (
                name.to_string(),
                ArpSysctls {
                    arp_ignore: read("arp_ignore"),
                    proxy_arp: read("proxy_arp").map(|v| v != 0),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MacAddr;

    fn setup(vip: &str) -> (BTreeMap<IpAddr, VipGroup>, BTreeMap<String, InterfaceFacts>) {
        let group = VipGroup::new([vip.parse().unwrap()], "eth0").unwrap();
        let facts = InterfaceFacts {
            name: "eth0".into(),
            ifindex: 2,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            carrier_up: true,
            subnets: vec![
                "198.51.100.0/24".parse().unwrap(),
                "2001:db8::/64".parse().unwrap(),
            ],
        };
        (
            [(group.key, group)].into(),
            [("eth0".to_string(), facts)].into(),
        )
    }

    fn kernel(arp_ignore: u8, proxy_arp: bool, holder: &str, vip: &str) -> KernelView {
        let sysctl = |ignore, proxy| ArpSysctls {
            arp_ignore: Some(ignore),
            proxy_arp: Some(proxy),
        };
        KernelView {
            local_addresses: [(holder.to_string(), [vip.parse().unwrap()].into())].into(),
            sysctls: [
                ("all".to_string(), sysctl(0, false)),
                ("eth0".to_string(), sysctl(arp_ignore, proxy_arp)),
            ]
            .into(),
        }
    }

    #[test]
    fn a_vip_on_a_dummy_with_arp_ignore_0_is_answered_by_the_kernel() {
        let (groups, interfaces) = setup("198.51.100.10");
        let warnings = check(
            &groups,
            &interfaces,
            &kernel(0, false, "dummy0", "198.51.100.10"),
        );
        assert_eq!(
            warnings,
            vec![PreflightWarning::KernelAnswersArp {
                vip: "198.51.100.10".parse().unwrap(),
                interface: "eth0".into(),
                holder: "dummy0".into(),
                arp_ignore: 0,
            }]
        );
    }

    #[test]
    fn arp_ignore_1_silences_the_kernel_unless_the_vip_is_on_the_announce_interface() {
        let (groups, interfaces) = setup("198.51.100.10");
        assert!(
            check(
                &groups,
                &interfaces,
                &kernel(1, false, "dummy0", "198.51.100.10")
            )
            .is_empty()
        );
        assert_eq!(
            check(
                &groups,
                &interfaces,
                &kernel(1, false, "eth0", "198.51.100.10")
            )
            .len(),
            1
        );
        assert!(
            check(
                &groups,
                &interfaces,
                &kernel(8, false, "eth0", "198.51.100.10")
            )
            .is_empty()
        );
    }

    #[test]
    fn kube_ipvs0_and_proxy_arp_are_named() {
        let (groups, interfaces) = setup("198.51.100.10");
        let warnings = check(
            &groups,
            &interfaces,
            &kernel(0, true, KUBE_IPVS, "198.51.100.10"),
        );
        assert!(warnings.contains(&PreflightWarning::IpvsHoldsVip {
            vip: "198.51.100.10".parse().unwrap(),
            interface: "eth0".into(),
            arp_ignore: 0,
        }));
        assert!(warnings.contains(&PreflightWarning::ProxyArp {
            interface: "eth0".into()
        }));
    }

    #[test]
    fn an_ipv6_vip_on_the_announce_interface_and_a_vip_outside_the_subnets_are_reported() {
        let (groups, interfaces) = setup("2001:db8::10");
        let warnings = check(
            &groups,
            &interfaces,
            &kernel(1, false, "eth0", "2001:db8::10"),
        );
        assert_eq!(
            warnings,
            vec![PreflightWarning::KernelAnswersNdp {
                vip: "2001:db8::10".parse().unwrap(),
                interface: "eth0".into()
            }]
        );
        let (groups, interfaces) = setup("203.0.113.10");
        let warnings = check(&groups, &interfaces, &kernel(1, false, "lo", "192.0.2.1"));
        assert_eq!(
            warnings,
            vec![PreflightWarning::OutsideSubnets {
                vip: "203.0.113.10".parse().unwrap(),
                interface: "eth0".into()
            }]
        );
    }

    #[test]
    fn unreadable_sysctls_are_reported_not_guessed() {
        let (groups, interfaces) = setup("198.51.100.10");
        let view = KernelView::default();
        assert_eq!(
            check(&groups, &interfaces, &view),
            vec![PreflightWarning::SysctlUnreadable {
                interface: "eth0".into()
            }]
        );
    }

    #[test]
    fn sysctls_are_read_from_the_conf_directories() {
        let root = std::env::temp_dir().join(format!("l2-preflight-{}", std::process::id()));
        for (dir, ignore, proxy) in [("all", "0\n", "0\n"), ("eth0", "2\n", "1\n")] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("arp_ignore"), ignore).unwrap();
            std::fs::write(root.join(dir).join("proxy_arp"), proxy).unwrap();
        }
        let read = read_arp_sysctls_under(&root, ["eth0", "../etc", "missing"]);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            read["eth0"],
            ArpSysctls {
                arp_ignore: Some(2),
                proxy_arp: Some(true)
            }
        );
        assert_eq!(read["all"].arp_ignore, Some(0));
        assert_eq!(read["missing"], ArpSysctls::default());
        assert!(!read.contains_key("../etc"));
    }
}

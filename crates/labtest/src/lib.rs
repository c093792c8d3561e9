//! Test harness for the ferrolb network-namespace lab (`lab/netns/lab.sh`).
//!
//! This crate owns bringing a lab up and down from Rust tests, running commands inside its
//! namespaces, and asking the lab's router (FRR, BIRD 2 or GoBGP) for its view through the
//! router's own CLI. It knows nothing about BGP beyond starting those routers and relaying
//! their answers; assertions on routes and sessions belong to the tests that use it.
//!
//! The topology (see `lab/netns/README.md`):
//!
//! ```text
//! NAME-cl  eth0 198.51.100.10/24, 2001:db8:0:2::10/64
//!    |
//! NAME-rtr eth1 198.51.100.1/24, 2001:db8:0:2::1/64     router, AS 64500, id 192.0.2.1
//!          eth0 192.0.2.1/24,    2001:db8:0:1::1/64
//!    |
//! NAME-sw  br0
//!    |
//! NAME-n<i> eth0 192.0.2.(10+i)/24, 2001:db8:0:1::(10+i)/64
//! ```
//!
//! Layout: [`spec`] (what a lab is), [`lab`] (a running one), [`netns`] (code inside a
//! namespace), [`wait`] (polling), and one module per router, [`frr`], [`bird`] and [`gobgp`],
//! with the queries and waits tests use to read the router's view. Assertions stay in the tests.
//!
//! Lab tests need root. When namespaces cannot be created, [`Lab::up`] returns an error that
//! says exactly what is missing; tests must fail with it (never skip).
//!
//! ```no_run
//! use ferrolb_labtest::{Lab, LabSpec, RouterKind};
//! let lab = Lab::up(LabSpec::new(RouterKind::Frr))?;
//! let groups = lab.vtysh_json("show bgp peer-group json")?;
//! assert_eq!(groups["NODES"]["type"], "external");
//! # Ok::<(), ferrolb_labtest::LabError>(())
//! ```

pub mod bird;
mod error;
mod exec;
pub mod frr;
pub mod gobgp;
pub mod lab;
pub mod netns;
pub mod spec;
pub mod wait;

pub use error::LabError;
pub use lab::Lab;
pub use netns::spawn_in_netns;
pub use spec::{
    GOBGP_API_PORT, KEEP_ENV, LAB_SH_ENV, LabSpec, MAX_NODES, ROUTER_ASN, ROUTER_ID, RouterKind,
    STATE_ROOT,
};
pub use wait::{Observation, POLL, TIMEOUT, wait_for};

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::process::Command;
    use std::time::Duration;

    use super::*;
    use crate::exec::{run_ok, script_message};
    use crate::lab::base36;

    #[test]
    fn node_addresses_read_the_same_in_both_families() {
        assert_eq!(Lab::node_v4(1), Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(Lab::node_v6(1).to_string(), "2001:db8:0:1::11");
        assert_eq!(Lab::node_v4(3).to_string(), "192.0.2.13");
        assert_eq!(Lab::node_v6(3).to_string(), "2001:db8:0:1::13");
        assert_eq!(Lab::node_v6(40).to_string(), "2001:db8:0:1::50");
        assert_eq!(Lab::router_v6().to_string(), "2001:db8:0:1::1");
        assert_eq!(Lab::client_v6().to_string(), "2001:db8:0:2::10");
        assert_eq!(Lab::router_client_v6().to_string(), "2001:db8:0:2::1");
    }

    #[test]
    #[should_panic(expected = "node index must be 1..=40")]
    fn node_zero_is_a_bug_in_the_test() {
        let _ = Lab::node_v4(0);
    }

    #[test]
    fn lab_names_fit_six_characters() {
        assert_eq!(base36(0, 5), "00000");
        assert_eq!(base36(36u64.pow(5) - 1, 5), "zzzzz");
        assert_eq!(format!("t{}", base36(12345, 5)).len(), 6);
    }

    #[test]
    fn wait_for_returns_the_first_success() {
        let mut n = 0;
        let got = wait_for(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, Ok(3));
    }

    #[test]
    fn wait_for_reports_the_last_observation_on_timeout() {
        let mut n = 0;
        let err = wait_for(Duration::from_millis(30), Duration::from_millis(5), || {
            n += 1;
            Err::<(), _>(format!("state Active after {n} tries"))
        })
        .unwrap_err();
        assert!(err.contains("last observation"), "{err}");
        assert!(
            err.contains(&format!("state Active after {n} tries")),
            "{err}"
        );
    }

    #[test]
    fn wait_for_probes_at_least_once_with_a_zero_timeout() {
        assert_eq!(wait_for(Duration::ZERO, Duration::ZERO, || Some(7)), Ok(7));
    }

    #[test]
    fn command_errors_carry_command_exit_code_and_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let err = run_ok(&mut cmd).unwrap_err().to_string();
        assert!(err.contains("sh -c"), "{err}");
        assert!(err.contains("exit code 3"), "{err}");
        assert!(err.contains("boom"), "{err}");
    }

    #[test]
    fn script_message_keeps_the_error_line() {
        let output = Command::new("sh")
            .args([
                "-c",
                "echo 'lab.sh: ok' >&2; echo 'lab.sh: error: bird not found; run scripts/install-deps.sh as root' >&2; exit 1",
            ])
            .output()
            .unwrap();
        assert_eq!(
            script_message(&output),
            "lab.sh: error: bird not found; run scripts/install-deps.sh as root"
        );
    }
}

//! Which backend runs the virtual services: `global_defs { lvs_backend auto|ipvs|nftables }`.
//!
//! `auto` (the default) takes IPVS when the kernel has it — the `IPVS` generic netlink family
//! is registered, or the `ip_vs` module can be loaded (at start-up it is, as keepalived loads
//! it) — and nftables otherwise. `ipvs` insists: without IPVS it is an error with the reason.
//! [`detect`] answers without side effects (`-t`, reviews); [`choose_backend`] builds the
//! backend at start-up.

use std::process::{Command, Stdio};

use wasmalived_config::lvs::{LvsBackendChoice, Scheduler, VirtualServer};

use crate::backend::{review_stateless, Backend, Review};
use crate::ipvs::{self, Ipvs, IpvsError};
use crate::nft::{self, Commands, Nftables};
use crate::schedule;

/// A data path for the virtual services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// wasmalived's own nftables tables (stateless scheduling tables).
    Nftables,
    /// The kernel's IPVS (what keepalived drives).
    Ipvs,
}

impl BackendKind {
    /// `nftables`, `ipvs`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Nftables => nft::NAME,
            BackendKind::Ipvs => ipvs::NAME,
        }
    }

    /// What this backend cannot do, or does differently from keepalived, for `vs`.
    pub fn review(self, vs: &VirtualServer) -> Vec<Review> {
        match self {
            BackendKind::Nftables => review_stateless(vs),
            BackendKind::Ipvs => ipvs::review(vs),
        }
    }

    /// The scheduler that runs for `requested` (nftables falls back to `wrr` for the
    /// connection-count schedulers; IPVS runs them all).
    pub fn scheduler_used(self, requested: Scheduler) -> Scheduler {
        match self {
            BackendKind::Nftables => schedule::effective(requested).0,
            BackendKind::Ipvs => requested,
        }
    }

    /// Whether a direct-routing service needs the interface its address arrives on (nftables
    /// forwards at that interface's ingress hook; IPVS routes like the kernel does).
    pub fn needs_dr_ingress(self) -> bool {
        self == BackendKind::Nftables
    }
}

/// Whether this host can run IPVS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsPresence {
    /// The `IPVS` generic netlink family is registered.
    Registered,
    /// Not yet, but `modprobe` can load `ip_vs`.
    Loadable,
    /// No IPVS (the reason).
    Absent(String),
}

/// Look for IPVS without changing anything (a controller lookup, `modprobe -n`).
pub fn ipvs_presence() -> IpvsPresence {
    match ipvs::genl::ipvs_registered() {
        Ok(true) => IpvsPresence::Registered,
        Ok(false) if modprobe(true) => IpvsPresence::Loadable,
        Ok(false) => IpvsPresence::Absent(
            "the generic netlink family \"IPVS\" is not registered and modprobe cannot load ip_vs"
                .into(),
        ),
        Err(e) => IpvsPresence::Absent(e.to_string()),
    }
}

/// `modprobe [-n] -q ip_vs`: whether it succeeded (false without `modprobe`).
fn modprobe(dry_run: bool) -> bool {
    let mut cmd = Command::new("modprobe");
    if dry_run {
        cmd.arg("-n");
    }
    cmd.args(["-q", "ip_vs"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why the configured backend cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// `lvs_backend ipvs` on a kernel without IPVS.
    #[error("lvs_backend ipvs: this kernel has no IPVS ({0}); load the ip_vs module, or use lvs_backend nftables (or auto)")]
    NoIpvs(String),
    /// IPVS is there but does not answer (no privilege …).
    #[error("lvs_backend ipvs: {0}")]
    Ipvs(IpvsError),
}

/// The backend `choice` resolves to on this host, without side effects.
pub fn detect(choice: LvsBackendChoice) -> Result<BackendKind, SelectError> {
    match choice {
        LvsBackendChoice::Nftables => Ok(BackendKind::Nftables),
        LvsBackendChoice::Auto | LvsBackendChoice::Ipvs => match ipvs_presence() {
            IpvsPresence::Registered | IpvsPresence::Loadable => Ok(BackendKind::Ipvs),
            IpvsPresence::Absent(_) if choice == LvsBackendChoice::Auto => {
                Ok(BackendKind::Nftables)
            }
            IpvsPresence::Absent(why) => Err(SelectError::NoIpvs(why)),
        },
    }
}

/// The backend for `choice`, ready to apply (start-up). Loads `ip_vs` if it can and must (as
/// keepalived does); `auto` falls back to nftables when IPVS cannot be opened.
pub fn choose_backend(choice: LvsBackendChoice) -> Result<Box<dyn Backend>, SelectError> {
    let nftables = || Box::new(Nftables::new(Box::new(Commands))) as Box<dyn Backend>;
    if choice == LvsBackendChoice::Nftables {
        return Ok(nftables());
    }
    let opened = match ipvs_presence() {
        IpvsPresence::Absent(why) => Err(SelectError::NoIpvs(why)),
        IpvsPresence::Loadable if !modprobe(false) => {
            Err(SelectError::NoIpvs("modprobe ip_vs failed".into()))
        }
        _ => Ipvs::open().map_err(|e| match e {
            IpvsError::NoIpvs => SelectError::NoIpvs(e.to_string()),
            other => SelectError::Ipvs(other),
        }),
    };
    match (opened, choice) {
        (Ok(ipvs), _) => Ok(Box::new(ipvs)),
        (Err(_), LvsBackendChoice::Auto) => Ok(nftables()),
        (Err(e), _) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_review_and_schedule_as_their_data_paths_do() {
        assert_eq!(
            BackendKind::Nftables.scheduler_used(Scheduler::Wlc),
            Scheduler::Wrr
        );
        assert_eq!(
            BackendKind::Ipvs.scheduler_used(Scheduler::Wlc),
            Scheduler::Wlc
        );
        assert!(BackendKind::Nftables.needs_dr_ingress());
        assert!(!BackendKind::Ipvs.needs_dr_ingress());
        assert_eq!(BackendKind::Ipvs.name(), "ipvs");
    }

    #[test]
    fn nftables_needs_no_detection_and_ipvs_says_why_it_is_missing() {
        assert_eq!(
            detect(LvsBackendChoice::Nftables).unwrap(),
            BackendKind::Nftables
        );
        // Whatever this kernel has, auto never fails and ipvs agrees with it.
        let auto = detect(LvsBackendChoice::Auto).unwrap();
        match detect(LvsBackendChoice::Ipvs) {
            Ok(kind) => assert_eq!((kind, auto), (BackendKind::Ipvs, BackendKind::Ipvs)),
            Err(e) => {
                assert_eq!(auto, BackendKind::Nftables);
                assert!(
                    e.to_string()
                        .starts_with("lvs_backend ipvs: this kernel has no IPVS"),
                    "{e}"
                );
            }
        }
    }
}

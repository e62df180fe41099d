//! The data-path backends: what programs the kernel from [`ServicePlan`]s. One trait for
//! nftables ([`crate::nft`]) and IPVS ([`crate::ipvs`]); [`Unavailable`] stands in for a
//! configured backend the kernel lacks; [`Recording`] for tests.

use wasmalived_config::lvs::{Forwarding, ServiceAddr, VirtualServer};

use crate::plan::ServicePlan;
use crate::schedule;
use crate::select::BackendKind;

/// What a backend says about a virtual server before it runs it (`-t` and start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// It cannot run this service as configured (the reason says what to change).
    Refused(String),
    /// It runs it differently from keepalived with IPVS (the reason says how).
    Differs(String),
}

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The kernel (or its tool) refused the change; nothing of it was applied.
    #[error("{backend}: {message}")]
    Rejected {
        /// Which backend.
        backend: &'static str,
        /// What it said.
        message: String,
    },
}

/// A data path for virtual services.
pub trait Backend: Send {
    /// `nftables`, `ipvs`, ….
    fn name(&self) -> &'static str;

    /// Which data path this is (what its reviews and schedulers follow).
    fn kind(&self) -> BackendKind;

    /// What this backend cannot do, or does differently, for `vs`.
    fn review(&self, vs: &VirtualServer) -> Vec<Review>;

    /// Make the kernel's services exactly `services` (atomically where the kernel allows).
    fn apply(&mut self, services: &[ServicePlan]) -> Result<(), BackendError>;

    /// Remove everything this backend programmed (shutdown).
    fn clear(&mut self) -> Result<(), BackendError>;

    /// Problems of the last apply that did not stop it (e.g. connection-tracking cleanup),
    /// for the caller to log; taking them clears them.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// The review of a stateless packet-filter data path (nftables): schedulers that need
/// connection counts fall back to `wrr`, `TUN` is refused, as is a fwmark service with
/// direct routing (the mark is set after the ingress hook that forwards).
pub fn review_stateless(vs: &VirtualServer) -> Vec<Review> {
    let mut out = Vec::new();
    if let (_, Some(fallback)) = schedule::effective(vs.scheduler) {
        out.push(Review::Differs(format!(
            "lb_algo {} needs connection counts, which nftables does not keep; using {} (weighted round robin) instead — use lvs_backend ipvs on a kernel with IPVS for {}",
            fallback.requested.name(),
            fallback.used.name(),
            fallback.requested.name()
        )));
    }
    if vs.forwarding == Forwarding::Tun {
        out.push(Review::Refused(
            "lb_kind TUN has no nftables equivalent; use NAT or DR, or lvs_backend ipvs on a kernel with IPVS".into(),
        ));
    }
    if vs.forwarding == Forwarding::Dr && matches!(vs.addr, ServiceAddr::Fwmark(_)) {
        out.push(Review::Refused(
            "a fwmark service with lb_kind DR cannot run on nftables: packets are forwarded at ingress, before any rule can mark them".into(),
        ));
    }
    if vs.protocol == wasmalived_config::lvs::Protocol::Sctp {
        out.push(Review::Refused(
            "protocol SCTP is not supported on nftables".into(),
        ));
    }
    out
}

/// A backend that records what it was asked to do (tests of the daemon's logic).
#[derive(Debug, Default)]
pub struct Recording {
    /// Every `apply`, in order.
    pub applied: Vec<Vec<ServicePlan>>,
    /// How often `clear` was called.
    pub cleared: usize,
}

impl Backend for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Nftables
    }

    fn review(&self, vs: &VirtualServer) -> Vec<Review> {
        review_stateless(vs)
    }

    fn apply(&mut self, services: &[ServicePlan]) -> Result<(), BackendError> {
        self.applied.push(services.to_vec());
        Ok(())
    }

    fn clear(&mut self) -> Result<(), BackendError> {
        self.cleared += 1;
        Ok(())
    }
}

/// The configured backend when the kernel lacks it (`lvs_backend ipvs` without IPVS): it
/// programs nothing — the review refuses every virtual server with the reason — and says
/// why if it is asked to.
#[derive(Debug)]
pub struct Unavailable {
    kind: BackendKind,
    reason: String,
}

impl Unavailable {
    /// `kind` cannot run, for `reason`.
    pub fn new(kind: BackendKind, reason: impl Into<String>) -> Self {
        Unavailable {
            kind,
            reason: reason.into(),
        }
    }
}

impl Backend for Unavailable {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn review(&self, vs: &VirtualServer) -> Vec<Review> {
        self.kind.review(vs)
    }

    fn apply(&mut self, services: &[ServicePlan]) -> Result<(), BackendError> {
        if services.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Rejected {
                backend: self.kind.name(),
                message: self.reason.clone(),
            })
        }
    }

    fn clear(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

//! Host capabilities, one unit each (Spin's factors are the model): a module owns what its
//! config grant becomes at run time (allowlists parsed from `wasmalived_config::grants`), its
//! per-run state in the store ([`crate::state::HostState`]) and its linker function, and is
//! listed once in [`UNITS`] with the [`Capability`] it provides.
//!
//! Which units are linked for a check is decided by one policy,
//! [`Capability::linking`](crate::contract::Capability::linking):
//!
//! | unit          | import                              | grant (`vrrp_script`)  | linking |
//! |---------------|-------------------------------------|------------------------|---------|
//! | `wasi`        | wasi io, clocks, random; inert `wasi:cli`, filesystem (preopens = `allow_dir`) | — | always |
//! | `log`         | `wasmalived:plugin/log`             | —                      | always |
//! | `scratch`     | `wasmalived:plugin/scratch`         | —                      | always |
//! | `wake`        | `wasmalived:plugin/wake`            | `allow_processes` (to watch PIDs), `allow_dir` (to watch paths in it), `allow_tcp` (to watch servers) | always, PID watches denied unless granted, path watches outside the granted directories and server watches outside the TCP grants denied |
//! | `processes`   | `wasmalived:plugin/processes`       | `allow_processes`      | only when granted: an ungranted import refuses the plugin at load |
//! | `remediation` | `wasmalived:plugin/remediation`     | `remediation`          | always, deny-all unless granted (empty command table) |
//! | `http`        | `wasi:http/outgoing-handler, types` | `allow_http`           | always, deny-all unless granted (empty allowlist) |
//! | `sockets`     | `wasi:sockets/tcp…`, `network`, `instance-network` | `allow_tcp` | always, deny-all unless granted (TCP off) |
//! | `probe`       | `wasmalived:plugin/probe`           | `allow_tcp` (targets), `bindto` (source) | always, deny-all unless granted (every target checked) |
//! | `udp`         | `wasi:sockets/udp`, `udp-create-socket` | `allow_udp` (peers)  | only when granted; sends and receives only to/from the granted peers |
//!
//! A deny-all unit refuses every ungranted use at call time and records it in the run's
//! denials ([`crate::state::Denials`]), so a failing check says what it was refused.

pub mod http;
pub mod http_send;
pub mod log;
pub mod probe;
pub mod processes;
pub mod remediation;
pub mod scratch;
pub mod sockets;
pub mod stdio;
pub mod wake;
pub mod wasi;

use wasmtime::component::Linker;

use crate::contract::Capability;
use crate::state::HostState;

/// One capability unit: what it provides and how to link it.
#[derive(Clone, Copy)]
pub struct Unit {
    /// The capability (its grant and linking policy).
    pub capability: Capability,
    /// Adds the unit's interfaces to a linker.
    pub link: fn(&mut Linker<HostState>) -> wasmtime::Result<()>,
}

/// Every unit, in linking order.
pub const UNITS: [Unit; 10] = [
    Unit {
        capability: Capability::Baseline,
        link: wasi::add_to_linker,
    },
    Unit {
        capability: Capability::Always,
        link: log::add_to_linker,
    },
    Unit {
        capability: Capability::Always,
        link: scratch::add_to_linker,
    },
    Unit {
        capability: Capability::Always,
        link: wake::add_to_linker,
    },
    Unit {
        capability: Capability::Processes,
        link: processes::add_to_linker,
    },
    Unit {
        capability: Capability::Remediation,
        link: remediation::add_to_linker,
    },
    Unit {
        capability: Capability::Http,
        link: http::add_to_linker,
    },
    Unit {
        capability: Capability::Tcp,
        link: sockets::add_to_linker,
    },
    Unit {
        capability: Capability::Tcp,
        link: probe::add_to_linker,
    },
    Unit {
        capability: Capability::Udp,
        link: sockets::add_udp_to_linker,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Linking;

    #[test]
    fn every_capability_has_a_unit_and_only_processes_and_udp_need_their_grant_to_link() {
        for capability in Capability::ALL {
            if capability != Capability::Always && capability != Capability::Baseline {
                assert!(
                    UNITS.iter().any(|u| u.capability == capability),
                    "{capability:?} has no unit"
                );
            }
        }
        let none = wasmalived_config::grants::Grants::default();
        let linked: Vec<Capability> = UNITS
            .iter()
            .map(|u| u.capability)
            .filter(|c| c.linked_with(&none))
            .collect();
        assert!(!linked.contains(&Capability::Processes));
        assert!(!linked.contains(&Capability::Udp));
        assert_eq!(Capability::Processes.linking(), Linking::OnlyWhenGranted);
        assert_eq!(Capability::Udp.linking(), Linking::OnlyWhenGranted);
        assert_eq!(linked.len(), UNITS.len() - 2);
    }
}

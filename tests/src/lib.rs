//! Network-namespace lab for wasmalived's end-to-end tests and failover benchmark.
//!
//! A [`Lab`] is a Linux bridge in its own namespace plus one namespace per host, joined by
//! veth pairs; processes started in it run in their own process groups and everything is
//! killed and deleted when the lab is dropped, even on panic. On top of that: VIP sampling
//! ([`VipSampler`]), bridge captures and address monitors ([`BridgeCapture`],
//! [`AddrMonitor`]), keepalived-syntax configs ([`Proto`], [`KeepalivedConf`]) and daemons
//! ([`Lab::start_daemon`] for keepalived and wasmalived), and the keepalived-compatibility
//! comparison of configuration files ([`compat`]). Requires root, iproute2, tcpdump,
//! keepalived and ping.

pub mod alerts;
pub mod capture;
pub mod chaos;
pub mod checks;
pub mod cmd;
pub mod compat;
pub mod config;
pub mod daemon;
pub mod error;
pub mod features;
pub mod guards;
pub mod handover;
pub mod lab;
pub mod lvs;
pub mod metrics;
pub mod nginx;
pub mod partition;
pub mod pcap;
pub mod process;
pub mod sampler;
pub mod scenario;
pub mod stock_node;
pub mod systemd;
pub mod timing;

pub use capture::{AddrEvent, AddrMonitor, BridgeCapture, Packet, PacketKind};
pub use checks::{
    hostile_checks, plugin_check, plugin_path, script_check, with_checks, with_global, CheckStatus,
    CheckTiming, HOSTILE,
};
pub use config::{Instance, KeepalivedConf, Proto, INSTANCE, VRID};
pub use daemon::{wasmalived_bin, Daemon, Impl, InstanceStatus, TrackedProcessStatus};
pub use error::{LabError, Result};
pub use lab::{Lab, Node};
pub use nginx::page_of;
pub use process::Proc;
pub use sampler::{Timeline, VipSampler};
pub use scenario::{Pair, CLIENT, NODES, PRIORITIES};
pub use timing::{median, now_epoch, wait_for, wait_until};

impl Lab {
    /// Starts a [`VipSampler`] polling `nodes` for `vip` every `every`.
    pub fn sample_vip(
        &self,
        nodes: &[&str],
        vip: &str,
        every: std::time::Duration,
    ) -> Result<VipSampler> {
        VipSampler::start(self, nodes, vip, every)
    }

    /// Starts a [`BridgeCapture`] on `br0`.
    pub fn capture_bridge(&self, label: &str) -> Result<BridgeCapture> {
        BridgeCapture::start(self, label)
    }

    /// Starts an [`AddrMonitor`] in `node`.
    pub fn monitor_addresses(&self, node: &str, label: &str) -> Result<AddrMonitor> {
        AddrMonitor::start(self, node, label)
    }
}

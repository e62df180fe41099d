//! What `wasmalived status` shows of the director: each virtual server, its real servers
//! with their weights and checkers, and the last check results.

use serde::{Deserialize, Serialize};

/// One virtual server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VirtualServerStatus {
    /// `192.0.2.10:80/tcp`, `fwmark 1/tcp`, `group NAME/tcp`.
    pub name: String,
    /// The scheduler configured (`lb_algo`).
    pub scheduler: String,
    /// The scheduler the data path runs (differs after a fallback).
    pub scheduler_used: String,
    /// `NAT` or `DR`.
    pub forwarding: String,
    /// The data path (`nftables`).
    pub backend: String,
    /// The quorum is met.
    pub quorum_up: bool,
    /// The sorry server is serving instead of the pool.
    pub sorry_server_active: bool,
    /// Sum of the weights of the alive real servers.
    pub live_weight: u64,
    /// The configured quorum.
    pub quorum: u32,
    /// Checks paused by `ha_suspend` (this director does not hold the address).
    pub suspended: bool,
    /// Real servers in configuration order.
    pub real_servers: Vec<RealServerStatus>,
    /// The last error programming the data path, if the pool could not be applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_error: Option<String>,
    /// The pool shown is not in the data path yet: an apply is under way (or failed, see
    /// `apply_error`). The pool is decided first and programmed after, in milliseconds.
    #[serde(default)]
    pub pending: bool,
}

/// One real server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RealServerStatus {
    /// `IP:PORT`.
    pub address: String,
    /// Every checker passes.
    pub alive: bool,
    /// The configured weight.
    pub weight: u32,
    /// The weight it has in the pool now (`None`: not in the pool; `0`: draining, inhibited).
    pub pool_weight: Option<u32>,
    /// Its checkers.
    pub checkers: Vec<CheckerStatus>,
}

/// One checker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckerStatus {
    /// `TCP_CHECK 192.0.2.21:80`.
    pub name: String,
    /// `up` or `down`.
    pub state: String,
    /// What ran last (`tcp@digest`, a script, `icmp`, `udp`).
    pub runner: String,
    /// `ok` or why the last check failed; empty before the first.
    pub last: String,
    /// Checks run.
    pub runs: u64,
    /// Duration of the last check, in milliseconds.
    pub last_ms: f64,
}

//! Every default value of the configuration, in one place (STYLE principle 9).
//!
//! keepalived's defaults are taken from keepalived.conf(5) of keepalived 2.2.7.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use wasmalived_proto::vrrp::types::{Priority, Version};

/// `vrrp_version`: keepalived defaults to VRRPv2 (IPv6 instances always use v3).
pub const VRRP_VERSION: Version = Version::V2;
/// `vrrp_garp_master_delay`: second burst of gratuitous ARPs 5 s after becoming Master.
pub const GARP_MASTER_DELAY: Duration = Duration::from_secs(5);
/// `vrrp_garp_master_repeat`: gratuitous ARPs per burst.
pub const GARP_MASTER_REPEAT: u32 = 5;
/// `vrrp_garp_master_refresh`: 0 = no periodic refresh while Master.
pub const GARP_MASTER_REFRESH: Option<Duration> = None;
/// `vrrp_garp_master_refresh_repeat`: gratuitous ARPs per refresh.
pub const GARP_MASTER_REFRESH_REPEAT: u32 = 1;
/// `vrrp_garp_interval`: delay between gratuitous ARPs on one interface.
pub const GARP_INTERVAL: Duration = Duration::ZERO;
/// `vrrp_gna_interval`: delay between unsolicited neighbour adverts on one interface.
pub const GNA_INTERVAL: Duration = Duration::ZERO;
/// `vrrp_mcast_group4`: IANA's VRRP group (RFC 5798 §5.1.1.2).
pub const MCAST_GROUP4: Ipv4Addr = wasmalived_proto::wire::MCAST_V4;
/// `vrrp_mcast_group6`: IANA's VRRP group (RFC 5798 §5.1.2.2).
pub const MCAST_GROUP6: Ipv6Addr = wasmalived_proto::wire::MCAST_V6;
/// The administrator's plugin directory: first in the default search path.
pub const ADMIN_PLUGIN_DIR: &str = "/etc/wasmalived/plugins";
/// The packaged stock plugins (the Debian package installs them here).
pub const PACKAGED_PLUGIN_DIR: &str = "/usr/lib/wasmalived/plugins";
/// `plugin_dir`: where `plugin NAME` looks for `NAME.wasm`, in order (the first directory
/// holding it wins).
pub const PLUGIN_DIRS: [&str; 2] = [ADMIN_PLUGIN_DIR, PACKAGED_PLUGIN_DIR];

/// `smtp_connect_timeout`: keepalived's DEFAULT_SMTP_CONNECTION_TIMEOUT.
pub const SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `smtp_server HOST [PORT]`: the SMTP port.
pub const SMTP_PORT: u16 = 25;
/// `track_file` `weight`.
pub const TRACK_FILE_WEIGHT: i32 = 1;

/// `vrrp_script` `interval`.
pub const SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
/// `vrrp_script` `weight`.
pub const SCRIPT_WEIGHT: i32 = 0;
/// `vrrp_script` `rise`.
pub const SCRIPT_RISE: u32 = 1;
/// `vrrp_script` `fall`.
pub const SCRIPT_FALL: u32 = 1;
/// Largest `weight` magnitude keepalived accepts for scripts and tracked interfaces.
pub const MAX_WEIGHT: i32 = 253;
/// Largest `interval`/`timeout` accepted for a check (one day).
pub const MAX_SCRIPT_INTERVAL: Duration = Duration::from_secs(86_400);
/// Largest `rise`/`fall`.
pub const MAX_RISE_FALL: u32 = 1_000_000;

/// `priority`.
pub const PRIORITY: Priority = Priority::DEFAULT;
/// `advert_int`: 1 s.
pub const ADVERT_INT: Duration = Duration::from_secs(1);
/// Largest `preempt_delay` keepalived accepts.
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// `auth_pass`: only the first 8 characters are used (RFC 2338 §5.3.10).
pub const AUTH_PASS_MAX_LEN: usize = 8;

/// Smallest `memory_limit` accepted for a plugin.
pub const MIN_MEMORY_LIMIT: u64 = 1024 * 1024;
/// Largest `memory_limit` accepted (a 32-bit wasm memory).
pub const MAX_MEMORY_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

/// `vrrp_rt_priority` range: `sched_get_priority_min/max(SCHED_RR)` on Linux.
pub const RT_PRIORITY_MIN: u8 = 1;
/// See [`RT_PRIORITY_MIN`].
pub const RT_PRIORITY_MAX: u8 = 99;
/// `vrrp_priority` / `checker_priority` range: nice values (keepalived's `get_priority`).
pub const NICE_MIN: i8 = -20;
/// See [`NICE_MIN`].
pub const NICE_MAX: i8 = 19;
/// Without `checker_priority`, the plugin executor threads run this much nicer than the
/// protocol threads (nice 10 by default: about a tenth of a nice-0 thread's CPU share when
/// both want a CPU), so an advert's thread is not kept waiting behind a plugin burning its
/// timeout. Measured with `check_load_bench` (README, "Node CPU and advert timing").
pub const CHECKER_NICE_ABOVE_VRRP: i8 = 10;
/// `vrrp_cpu_affinity`: highest CPU number a `cpu_set_t` holds (`CPU_SETSIZE` − 1).
pub const MAX_CPU_ID: u16 = 1023;

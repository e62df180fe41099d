//! The typed, validated configuration. Nothing downstream re-parses strings.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::diag::Span;
use crate::defaults as def;
use crate::grants::Grants;
pub use crate::plugin_path::{PluginNotFound, PluginSearchPath};
use crate::vip::VipSpec;
pub use wasmalived_proto::track::process::{ParamMatch, ProcessPattern, ProcessRule};
use wasmalived_proto::vrrp::types::{AdvertInterval, Family, Priority, Version, Vrid};

/// A whole configuration. `PartialEq` compares definitions (the places they were written at
/// are ignored, see [`Origin`]), so the daemon can diff old and new on reload.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// `vrrp_script` blocks, in the order they were written.
    pub scripts: Vec<VrrpScript>,
    /// `vrrp_track_process` blocks, in the order they were written.
    pub track_processes: Vec<VrrpTrackProcess>,
    /// `vrrp_instance` blocks, in the order they were written.
    pub instances: Vec<VrrpInstance>,
    /// `vrrp_sync_group` blocks, in the order they were written.
    pub sync_groups: Vec<VrrpSyncGroup>,
    /// `virtual_server` blocks (keepalived's check module), in the order they were written.
    pub virtual_servers: Vec<crate::lvs::VirtualServer>,
    /// `virtual_server_group` blocks.
    pub virtual_server_groups: Vec<crate::lvs::VirtualServerGroup>,
    /// `track_file` (`vrrp_track_file`) blocks, in the order they were written.
    pub track_files: Vec<TrackFileDef>,
    /// `static_ipaddress`, `static_routes`, `static_rules`: installed while the daemon runs.
    pub statics: crate::route::StaticEntries,
}

impl Config {
    /// The script named `name`.
    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.scripts.iter().find(|s| s.name == name)
    }

    /// The `vrrp_track_process` named `name`.
    pub fn track_process(&self, name: &str) -> Option<&VrrpTrackProcess> {
        self.track_processes.iter().find(|p| p.name == name)
    }

    /// The `vrrp_track_process` blocks some instance or sync group tracks (the daemon
    /// watches only those, as keepalived frees the others).
    pub fn tracked_processes(&self) -> impl Iterator<Item = &VrrpTrackProcess> {
        self.track_processes.iter().filter(|p| {
            self.instances
                .iter()
                .flat_map(|i| &i.track_processes)
                .chain(self.sync_groups.iter().flat_map(|g| &g.track_processes))
                .any(|t| t.name == p.name)
        })
    }

    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The `track_file` block named `name`.
    pub fn track_file(&self, name: &str) -> Option<&TrackFileDef> {
        self.track_files.iter().find(|t| t.name == name)
    }

    /// Whether `instance` writes `MASTER_PRIORITY`/`BACKUP_PRIORITY` lines to the notify
    /// FIFOs: its own `notify_priority_changes`, else its sync group's, else the global
    /// `vrrp_notify_priority_changes` (keepalived's `vrrp_complete_instance`).
    pub fn notify_priority_changes(&self, instance: &VrrpInstance) -> bool {
        instance
            .notify_priority_changes
            .or_else(|| {
                self.sync_group_of(&instance.name)
                    .and_then(|g| g.notify_priority_changes)
            })
            .unwrap_or(self.global.notify_priority_changes)
    }

    /// Whether state changes of `instance` send alert mails: its own `smtp_alert`, else
    /// the global `smtp_alert_vrrp`, else the global `smtp_alert` (keepalived's
    /// `vrrp_complete_instance`; off when none is set).
    pub fn instance_smtp_alert(&self, instance: &VrrpInstance) -> bool {
        instance
            .smtp_alert
            .unwrap_or_else(|| self.global.smtp.vrrp_default())
    }

    /// Whether state changes of sync group `group` send alert mails (the same rule).
    pub fn group_smtp_alert(&self, group: &VrrpSyncGroup) -> bool {
        group
            .smtp_alert
            .unwrap_or_else(|| self.global.smtp.vrrp_default())
    }

    /// Whether quorum changes of `vs` send alert mails: its own `smtp_alert`, else the global
    /// `smtp_alert_checker`, else `smtp_alert`, else off.
    pub fn virtual_server_smtp_alert(&self, vs: &crate::lvs::VirtualServer) -> bool {
        vs.smtp_alert
            .unwrap_or_else(|| self.global.smtp.virtual_server_default())
    }

    /// Whether checker changes of real server `rs` send alert mails: its own `smtp_alert`,
    /// else the global `smtp_alert_checker`, else `smtp_alert`, else on (keepalived's
    /// default for real servers).
    pub fn real_server_smtp_alert(&self, rs: &crate::lvs::RealServer) -> bool {
        rs.smtp_alert
            .unwrap_or_else(|| self.global.smtp.real_server_default())
    }

    /// The sync group `instance` belongs to, if any.
    pub fn sync_group_of(&self, instance: &str) -> Option<&VrrpSyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
    }
}

/// Where an item was defined. Not part of its identity: any two `Origin`s compare equal, so
/// moving a block within the files does not count as a change on reload.
#[derive(Debug, Clone)]
pub struct Origin(pub Span);

impl PartialEq for Origin {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// `global_defs`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalDefs {
    /// `router_id`; `None` = the host name (keepalived's default).
    pub router_id: Option<String>,
    /// `vrrp_version` (default 2).
    pub vrrp_version: Version,
    /// `vrrp_garp_*` and `vrrp_gna_interval`: defaults for every instance.
    pub garp: GarpSettings,
    /// `vrrp_mcast_group4` (default 224.0.0.18).
    pub mcast_group4: Ipv4Addr,
    /// `vrrp_mcast_group6` (default ff02::12).
    pub mcast_group6: Ipv6Addr,
    /// `enable_script_security`: refuse scripts/plugins writable by non-root users.
    pub enable_script_security: bool,
    /// `script_user USER [GROUP]`: default user for scripts.
    pub script_user: Option<RunAs>,
    /// `vrrp_strict`: strict RFC compliance (see [`VrrpInstance::strict`]).
    pub vrrp_strict: bool,
    /// `plugin_dir DIR...` (ours; default `/etc/wasmalived/plugins
    /// /usr/lib/wasmalived/plugins`): where `plugin NAME` looks, in order.
    pub plugin_path: PluginSearchPath,
    /// `plugin_cache_dir` (ours): compiled-plugin cache; `None` = under the daemon's state dir.
    pub plugin_cache_dir: Option<PathBuf>,
    /// `plugin_memory_limit` (ours): default memory limit of plugin checks, bytes.
    pub plugin_memory_limit: u64,
    /// `plugin_timeout_default` (ours): timeout of plugin checks that set none; `None` = the
    /// check's interval (keepalived's rule for scripts).
    pub plugin_timeout_default: Option<Duration>,
    /// `lvs_backend auto|ipvs|nftables` (wasmalived): what programs the virtual servers.
    pub lvs_backend: crate::lvs::LvsBackendChoice,
    /// `lvs_sync_daemon …`: connection sync between the directors; `None` = off.
    pub lvs_sync_daemon: Option<crate::lvs::LvsSyncDaemon>,
    /// `metrics_listen IP:PORT` (ours): where the Prometheus endpoint listens; `None` = off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `notify_fifo PATH [USER [GROUP]]` (with `notify_fifo_script`): every state line.
    pub notify_fifo: Option<NotifyFifo>,
    /// `vrrp_notify_fifo PATH [USER [GROUP]]` (with `vrrp_notify_fifo_script`): the VRRP
    /// lines; `None` when it names the same FIFO as `notify_fifo` (keepalived ignores it then).
    pub vrrp_notify_fifo: Option<NotifyFifo>,
    /// `lvs_notify_fifo PATH [USER [GROUP]]` (with `lvs_notify_fifo_script`): the LVS
    /// director's lines (`VS …`, `RS …`); `None` when it names the same FIFO as
    /// `notify_fifo`. Naming the `vrrp_notify_fifo` shares that FIFO (and its script).
    pub lvs_notify_fifo: Option<NotifyFifo>,
    /// `vrrp_notify_priority_changes`: the default of the instances' `notify_priority_changes`.
    pub notify_priority_changes: bool,
    /// `notification_email`, `smtp_server` and the other alert-mail settings.
    pub smtp: SmtpSettings,
    /// `net_namespace NAME` (a top-level keyword in keepalived): the daemon opens the
    /// process connector, then runs in `/run/netns/NAME`. Read at start-up only.
    pub net_namespace: Option<String>,
    /// `process_monitor_rcv_bufs BYTES`: the process connector's receive buffer; `None` =
    /// the kernel's default.
    pub process_monitor_rcv_bufs: Option<u32>,
    /// `process_monitor_rcv_bufs_force`: set that buffer beyond `rmem_max` (SO_RCVBUFFORCE).
    pub process_monitor_rcv_bufs_force: bool,
    /// `vrrp_rt_priority`, `vrrp_cpu_affinity`, `vrrp_no_swap`, `vrrp_priority`: how the
    /// protocol threads run.
    pub protocol_threads: ProtocolThreads,
    /// `checker_priority`: how the plugin executor threads run.
    pub checker_threads: CheckerThreads,
}

/// keepalived's knobs for the VRRP process, applied here to the daemon's protocol threads
/// (the async workers that carry adverts, sockets and netlink; never the plugin executor,
/// the blocking pool or child processes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolThreads {
    /// `vrrp_rt_priority N`: run them `SCHED_RR` at priority N (1–99); `None` = normal.
    pub rt_priority: Option<u8>,
    /// `vrrp_cpu_affinity CPU...`: pin them to these CPUs; empty = anywhere.
    pub cpu_affinity: Vec<u16>,
    /// `vrrp_no_swap`: lock the daemon's memory (`mlockall`) so it is never swapped out.
    pub no_swap: bool,
    /// `vrrp_priority N`: their nice value (-20–19); `None` = the process's (keepalived's
    /// default: unchanged).
    pub nice: Option<i8>,
}

/// keepalived's `checker_priority` (the nice value of its checker process), applied here to
/// the plugin executor threads: every plugin run — `vrrp_script` plugin checks and the LVS
/// director's checkers alike — happens there (keepalived runs the first from its VRRP
/// process; here they never share a thread with adverts, so they follow the checkers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckerThreads {
    /// `checker_priority N`: their nice value (-20–19); `None` =
    /// [`crate::defaults::CHECKER_NICE_ABOVE_VRRP`] above the protocol threads' (at most 19),
    /// so that adverts win the CPU from a plugin burning its timeout.
    pub nice: Option<i8>,
}

impl GlobalDefs {
    /// The nice value of the protocol threads (`vrrp_priority`, else 0).
    pub fn vrrp_nice(&self) -> i8 {
        self.protocol_threads.nice.unwrap_or(0)
    }

    /// The nice value of the plugin executor threads: `checker_priority`, else
    /// [`crate::defaults::CHECKER_NICE_ABOVE_VRRP`] above the protocol threads' (at most
    /// 19, the weakest).
    pub fn checker_nice(&self) -> i8 {
        self.checker_threads.nice.unwrap_or_else(|| {
            self.vrrp_nice()
                .saturating_add(crate::defaults::CHECKER_NICE_ABOVE_VRRP)
                .min(crate::defaults::NICE_MAX)
        })
    }
}

impl Default for GlobalDefs {
    /// keepalived's defaults, as an empty `global_defs` gives them.
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            vrrp_version: def::VRRP_VERSION,
            garp: GarpSettings {
                master_delay: def::GARP_MASTER_DELAY,
                master_repeat: def::GARP_MASTER_REPEAT,
                master_refresh: def::GARP_MASTER_REFRESH,
                master_refresh_repeat: def::GARP_MASTER_REFRESH_REPEAT,
                lower_prio_delay: None,
                lower_prio_repeat: None,
                interval: def::GARP_INTERVAL,
                gna_interval: def::GNA_INTERVAL,
            },
            mcast_group4: def::MCAST_GROUP4,
            mcast_group6: def::MCAST_GROUP6,
            enable_script_security: false,
            script_user: None,
            vrrp_strict: false,
            plugin_path: PluginSearchPath::default(),
            plugin_cache_dir: None,
            plugin_memory_limit: crate::grants::DEFAULT_MEMORY_LIMIT,
            plugin_timeout_default: None,
            lvs_backend: crate::lvs::LvsBackendChoice::Auto,
            lvs_sync_daemon: None,
            metrics_listen: None,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_notify_fifo: None,
            notify_priority_changes: false,
            smtp: SmtpSettings::default(),
            net_namespace: None,
            process_monitor_rcv_bufs: None,
            process_monitor_rcv_bufs_force: false,
            protocol_threads: ProtocolThreads::default(),
            checker_threads: CheckerThreads::default(),
        }
    }
}

impl GlobalDefs {
    /// Where compiled plugins are cached: `plugin_cache_dir`, else `plugin-cache` under the
    /// daemon's `state_dir` (the daemon and `-t` both use this, so a check warms the cache the
    /// daemon reads).
    pub fn plugin_cache_dir_in(&self, state_dir: &std::path::Path) -> PathBuf {
        self.plugin_cache_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("plugin-cache"))
    }
}

/// A notify FIFO (`notify_fifo` / `vrrp_notify_fifo`): the daemon writes one line per state
/// change, `INSTANCE "NAME" STATE PRIORITY` or `GROUP "NAME" STATE 0` (keepalived's format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyFifo {
    /// Where; created (mode 0644) if missing, removed at exit if the daemon created it.
    pub path: PathBuf,
    /// Owner of a FIFO the daemon creates; `None` = `script_user`'s, as keepalived does.
    pub owner: Option<RunAs>,
    /// `*notify_fifo_script CMD [USER [GROUP]]`: started with the FIFO's path as its last
    /// argument, to read the lines; runs until the daemon stops.
    pub script: Option<NotifyScript>,
}

/// `smtp_server HOST [PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// An IP address or a host name.
    pub host: String,
    /// TCP port (default 25).
    pub port: u16,
}

/// Alert-mail settings of `global_defs` (keepalived's `smtp.c`): a mail per state change of
/// each instance or sync group whose `smtp_alert` is on, sent only when both `smtp_server`
/// and `notification_email` are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp_server`.
    pub server: Option<SmtpServer>,
    /// `smtp_helo_name`; `None` = the host name.
    pub helo_name: Option<String>,
    /// `smtp_connect_timeout` (default 30 s): bounds the whole exchange of one mail.
    pub connect_timeout: Duration,
    /// `notification_email_from`; `None` = `root@HOSTNAME` (the daemon's user).
    pub from: Option<String>,
    /// `notification_email { … }`: the recipients.
    pub to: Vec<String>,
    /// `smtp_alert [BOOL]`: the default of every `smtp_alert` (unset = off).
    pub alert: Option<bool>,
    /// `smtp_alert_vrrp [BOOL]`: the default for VRRP instances and sync groups.
    pub alert_vrrp: Option<bool>,
    /// `smtp_alert_checker [BOOL]`: the default for virtual and real servers.
    pub alert_checker: Option<bool>,
    /// `no_email_faults`: no mail for entering FAULT.
    pub no_email_faults: bool,
    /// `no_checker_emails [BOOL]`: a checker's change mails only when its real server's
    /// state changes too (not for every checker of a server already down).
    pub no_checker_emails: bool,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            server: None,
            helo_name: None,
            connect_timeout: def::SMTP_CONNECT_TIMEOUT,
            from: None,
            to: Vec::new(),
            alert: None,
            alert_vrrp: None,
            alert_checker: None,
            no_email_faults: false,
            no_checker_emails: false,
        }
    }
}

impl SmtpSettings {
    /// The `smtp_alert` of an instance or group that sets none: `smtp_alert_vrrp`, else
    /// `smtp_alert`, else off.
    pub fn vrrp_default(&self) -> bool {
        self.alert_vrrp.or(self.alert).unwrap_or(false)
    }

    /// The `smtp_alert` of a virtual server that sets none: `smtp_alert_checker`, else
    /// `smtp_alert`, else off (keepalived's `check_data.c`).
    pub fn virtual_server_default(&self) -> bool {
        self.alert_checker.or(self.alert).unwrap_or(false)
    }

    /// The `smtp_alert` of a real server that sets none: `smtp_alert_checker`, else
    /// `smtp_alert`, else **on** — keepalived's backward-compatible default, unlike every
    /// other `smtp_alert` (`check_data.c`).
    pub fn real_server_default(&self) -> bool {
        self.alert_checker.or(self.alert).unwrap_or(true)
    }

    /// Whether mails can be sent at all (keepalived sends none without both).
    pub fn enabled(&self) -> bool {
        self.server.is_some() && !self.to.is_empty()
    }
}

/// `track_file NAME { file PATH weight N [reverse] init_file [VALUE] [overwrite] }`: a file
/// whose integer contents, times the weight, adjust the priority of the instances that
/// track it (keepalived's `track_file.c`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackFileDef {
    /// The name `track_file { … }` blocks refer to.
    pub name: String,
    /// `file`: the file watched.
    pub path: PathBuf,
    /// `weight` (-254..=254, default 1).
    pub weight: i32,
    /// `weight N reverse`.
    pub reverse: bool,
    /// `init_file [VALUE] [overwrite]`: write VALUE when the daemon starts.
    pub init: Option<TrackFileInit>,
    /// Where it was defined.
    pub origin: Origin,
}

/// `init_file [VALUE] [overwrite]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackFileInit {
    /// What to write (default 0).
    pub value: i32,
    /// Write it even when the file exists (never on a reload); else only create it.
    pub overwrite: bool,
}

/// One line of an instance's or sync group's `track_file { NAME [weight N [reverse|noreverse]] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    /// The `track_file` block's name.
    pub name: String,
    /// The weight in force (this line's, else the block's).
    pub weight: i32,
    /// The reverse flag in force.
    pub reverse: bool,
}

/// Gratuitous ARP / unsolicited NA timing, global defaults resolved with instance overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpSettings {
    /// Delay of the second burst after becoming Master; zero = no second burst.
    pub master_delay: Duration,
    /// Messages per burst.
    pub master_repeat: u32,
    /// Periodic refresh while Master; `None` = off.
    pub master_refresh: Option<Duration>,
    /// Messages per refresh.
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_delay`: as Master, the second burst after a lower-priority advert,
    /// this long after the first; zero = no second burst; `None` = as `master_delay`
    /// (keepalived's default).
    pub lower_prio_delay: Option<Duration>,
    /// `garp_lower_prio_repeat`: messages per burst after a lower-priority advert; 0 = no
    /// burst; `None` = as `master_repeat` (keepalived's default).
    pub lower_prio_repeat: Option<u32>,
    /// Delay between gratuitous ARPs on one interface.
    pub interval: Duration,
    /// Delay between unsolicited neighbour adverts on one interface.
    pub gna_interval: Duration,
}

impl GarpSettings {
    /// The delay of the second burst after a lower-priority advert, defaults resolved.
    pub fn lower_prio_delay(&self) -> Duration {
        self.lower_prio_delay.unwrap_or(self.master_delay)
    }

    /// Messages per burst after a lower-priority advert, defaults resolved.
    pub fn lower_prio_repeat(&self) -> u32 {
        self.lower_prio_repeat.unwrap_or(self.master_repeat)
    }
}

/// A user (and optional group) to run a program as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User name.
    pub user: String,
    /// Group name; `None` = the user's group.
    pub group: Option<String>,
}

/// `vrrp_script NAME { … }`: a health check, keepalived's script form or our plugin form.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpScript {
    /// The name `track_script` refers to.
    pub name: String,
    /// Time between runs (default 1 s).
    pub interval: Duration,
    /// A run longer than this fails (default: `plugin_timeout_default` for plugins, else the
    /// interval, as keepalived).
    pub timeout: Duration,
    /// Priority adjustment, -253..=253 (default 0 = Fault while down).
    pub weight: i32,
    /// `weight N reverse`: apply the weight in the opposite direction.
    pub weight_reverse: bool,
    /// Consecutive successes to become OK (default 1).
    pub rise: u32,
    /// Consecutive failures to become KO (default 1).
    pub fall: u32,
    /// `init_fail`: start in the failed state.
    pub init_fail: bool,
    /// `user USER [GROUP]` for `script`; `None` = global `script_user`.
    pub user: Option<RunAs>,
    /// What to run.
    pub kind: ScriptKind,
    /// Where it was defined.
    pub origin: Origin,
}

impl VrrpScript {
    /// Whether `other` is the same check (same name and every setting; places ignored). A
    /// check with the same definition keeps its rise/fall counters on reload.
    pub fn same_definition(&self, other: &VrrpScript) -> bool {
        self == other
    }
}

/// What a check runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptKind {
    /// keepalived's `script "…"`: a program run without a shell; exit 0 = success.
    Exec {
        /// Program and arguments, split as keepalived splits them.
        argv: Vec<String>,
    },
    /// Our `plugin …`: a sandboxed WebAssembly component.
    Plugin {
        /// Which component.
        plugin: PluginRef,
        /// `param KEY VALUE` lines, in order.
        params: Vec<(String, String)>,
        /// What it may use (`allow_*`, `remediation`, `memory_limit`); boxed, the largest
        /// part of a check definition.
        grants: Box<Grants>,
        /// What a `fatal` verdict does beyond Fault.
        on_fatal: FatalAction,
    },
}

/// Which plugin component a check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// `plugin NAME`: `NAME.wasm` in the first directory of the plugin search path
    /// (`plugin_dir`) that holds one.
    Name(String),
    /// `plugin PATH.wasm`: a file (relative paths are resolved against the directory of the
    /// configuration file that names them).
    Path(PathBuf),
}

impl PluginRef {
    /// The component file this refers to now: a path as written, a name looked up in
    /// `search` (the first directory holding `NAME.wasm`).
    pub fn resolve(&self, search: &PluginSearchPath) -> Result<PathBuf, PluginNotFound> {
        match self {
            PluginRef::Name(name) => search.find(name),
            PluginRef::Path(path) => Ok(path.clone()),
        }
    }
}

/// `on_fatal`: what a plugin's `fatal` verdict does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FatalAction {
    /// Every instance tracking the check enters Fault (priority-0 advert, VIPs removed).
    #[default]
    Fault,
    /// As `Fault`, then the whole daemon stops.
    StopDaemon,
}

/// The state an instance starts in (keepalived's `state`): only a hint, see RFC 5798 §6.4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// `state MASTER`.
    Master,
    /// `state BACKUP` (default).
    #[default]
    Backup,
}

/// `vrrp_instance NAME { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    /// Name (notify scripts and sync groups use it).
    pub name: String,
    /// `state`.
    pub initial_state: InitialState,
    /// `interface`.
    pub interface: String,
    /// `virtual_router_id`.
    pub vrid: Vrid,
    /// `priority` (default 100).
    pub priority: Priority,
    /// Protocol version: `version`, else v3 for IPv6, else global `vrrp_version`.
    pub version: Version,
    /// Address family, from the addresses.
    pub family: Family,
    /// `advert_int`, in the unit of `version`.
    pub advert_int: AdvertInterval,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay` (zero = none).
    pub preempt_delay: Duration,
    /// `authentication { auth_type PASS auth_pass … }` (VRRPv2 only); `None` = none.
    pub auth_pass: Option<AuthPass>,
    /// `virtual_ipaddress`.
    pub vips: Vec<VipSpec>,
    /// `virtual_ipaddress_excluded`: installed like VIPs, not sent in adverts.
    pub excluded_vips: Vec<VipSpec>,
    /// `virtual_routes { … }`: installed with the VIPs while Master (after them), removed
    /// when leaving Master (before them).
    pub virtual_routes: Vec<crate::route::RouteSpec>,
    /// `virtual_rules { … }`: installed while Master, after the routes.
    pub virtual_rules: Vec<crate::route::RuleSpec>,
    /// `mcast_src_ip`.
    pub mcast_src_ip: Option<IpAddr>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer { … }`; empty = multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// `track_interface { … }`.
    pub track_interfaces: Vec<TrackInterface>,
    /// `track_script { … }`.
    pub track_scripts: Vec<TrackScript>,
    /// `track_file { … }`.
    pub track_files: Vec<TrackFile>,
    /// `notify_priority_changes [BOOL]`; `None` = the sync group's, else the global one
    /// (see [`Config::notify_priority_changes`]).
    pub notify_priority_changes: Option<bool>,
    /// `smtp_alert [BOOL]`; `None` = the global default (see [`Config::instance_smtp_alert`]).
    pub smtp_alert: Option<bool>,
    /// `track_process { … }`.
    pub track_processes: Vec<TrackProcess>,
    /// GARP timing (global defaults with this instance's `garp_*` overrides).
    pub garp: GarpSettings,
    /// `notify_*` scripts.
    pub notify: Notify,
    /// `use_vmac [IFNAME]` / `vmac_xmit_base`: the VIPs live on a macvlan interface with
    /// the RFC 5798 §7.3 virtual MAC.
    pub use_vmac: Option<Vmac>,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    /// `heartbeat_interface IFNAME...` (wasmalived extension, repeatable): more links the
    /// instance's adverts are sent and received on, besides `interface`, so losing one link
    /// does not split the pair. Adverts keep the instance's source address on every path,
    /// so peers see one router; VIPs stay on `interface`. Multicast instances (the group on
    /// every path) and IPv4 unicast ones (every peer over every path).
    pub heartbeat_interfaces: Vec<String>,
    /// Accept mode (`accept`/`no_accept`; default: on, or with strict mode only at priority 255).
    pub accept: bool,
    /// Strict RFC mode (`strict_mode`, default global `vrrp_strict`).
    pub strict: bool,
    /// Where it was defined.
    pub origin: Origin,
}

impl VrrpInstance {
    /// Whether `other` is the same definition (places ignored).
    pub fn same_definition(&self, other: &VrrpInstance) -> bool {
        self == other
    }

    /// Whether this instance sends adverts by unicast.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }
}

/// A VRRPv2 simple-text password, at most 8 bytes, NUL-padded on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPass(pub String);

/// `use_vmac [IFNAME]` and `vmac_xmit_base`: the instance's VIPs live on a macvlan
/// interface (mode private) on top of `interface`, with the RFC 5798 §7.3 virtual router MAC
/// (00-00-5E-00-01-VRID, IPv6 00-00-5E-00-02-VRID), so a failover never changes the MAC
/// clients hold for a VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmac {
    /// The macvlan interface: `use_vmac IFNAME`, else keepalived's default `vrrp.VRID`
    /// (unique across the configuration).
    pub ifname: String,
    /// Whether the name was configured (`use_vmac IFNAME`) rather than chosen.
    pub named: bool,
    /// `vmac_xmit_base`: adverts are sent and received on `interface` (with its own MAC)
    /// instead of the macvlan interface; always on for unicast instances.
    pub xmit_base: bool,
}

impl Vmac {
    /// keepalived's first choice of name for the VMAC interface of `vrid`.
    pub fn default_name(vrid: Vrid) -> String {
        format!("vrrp.{vrid}")
    }
}

/// One `track_interface` line: `IFNAME [weight N [reverse]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    /// Interface name.
    pub name: String,
    /// Weight (0 = Fault while down).
    pub weight: i32,
    /// Apply the weight in the opposite direction.
    pub reverse: bool,
}

/// One `track_script` line: `NAME [weight N [reverse|noreverse]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    /// The `vrrp_script` name.
    pub name: String,
    /// A weight given here replaces the script's weight and reverse flag.
    pub weight: Option<WeightOverride>,
}

impl TrackScript {
    /// The weight and reverse flag in force: this line's, else the script's.
    pub fn effective_weight(&self, script: &VrrpScript) -> (i32, bool) {
        match self.weight {
            Some(w) => (w.weight, w.reverse),
            None => (script.weight, script.weight_reverse),
        }
    }
}

/// One `track_process` line: `NAME [weight N [reverse|noreverse]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackProcess {
    /// The `vrrp_track_process` name.
    pub name: String,
    /// A weight given here replaces the block's weight and reverse flag.
    pub weight: Option<WeightOverride>,
}

impl TrackProcess {
    /// The weight and reverse flag in force: this line's, else the block's.
    pub fn effective_weight(&self, process: &VrrpTrackProcess) -> (i32, bool) {
        match self.weight {
            Some(w) => (w.weight, w.reverse),
            None => (process.weight, process.weight_reverse),
        }
    }
}

/// `vrrp_track_process NAME { process … }`: the quorum of matching processes as a tracker
/// (keepalived's in-process, event-driven process tracking).
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpTrackProcess {
    /// Name (`track_process` lines refer to it).
    pub name: String,
    /// `process NAME [PARAM…]`, `param_match`, `full_command`: which processes count.
    pub pattern: ProcessPattern,
    /// `quorum` (default 1).
    pub quorum: u32,
    /// `quorum_max` (default unlimited).
    pub quorum_max: u32,
    /// `fork_delay` (or `delay`).
    pub fork_delay: Option<Duration>,
    /// `terminate_delay` (or `delay`).
    pub terminate_delay: Option<Duration>,
    /// `weight` (default 0: Fault without quorum).
    pub weight: i32,
    /// `weight N reverse`.
    pub weight_reverse: bool,
    /// Where it was defined.
    pub origin: Origin,
}

impl VrrpTrackProcess {
    /// The rule the process tracker runs.
    pub fn rule(&self) -> ProcessRule {
        ProcessRule {
            name: self.name.clone(),
            pattern: self.pattern.clone(),
            quorum: self.quorum,
            quorum_max: self.quorum_max,
            fork_delay: self.fork_delay,
            terminate_delay: self.terminate_delay,
        }
    }
}

/// `weight N [reverse]` on a `track_script` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightOverride {
    /// -253..=253.
    pub weight: i32,
    /// Apply in the opposite direction.
    pub reverse: bool,
}

/// Notify scripts of an instance or a sync group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<NotifyScript>,
    /// `notify_backup`.
    pub backup: Option<NotifyScript>,
    /// `notify_fault`.
    pub fault: Option<NotifyScript>,
    /// `notify_stop`.
    pub stop: Option<NotifyScript>,
    /// `notify`: run on every transition with `TYPE NAME STATE PRIORITY` appended.
    pub any: Option<NotifyScript>,
    /// `notify_split_brain` (wasmalived extension): run when another Master is detected for
    /// the instance's VRID (`TYPE NAME SPLIT_BRAIN PRIORITY` appended) and again when it
    /// clears (`... SPLIT_BRAIN_CLEARED ...`).
    pub split_brain: Option<NotifyScript>,
}

/// A notify command: `notify_* "CMD ARGS" [USER [GROUP]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyScript {
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// User to run as; `None` = global `script_user`.
    pub user: Option<RunAs>,
}

/// `vrrp_sync_group NAME { … }`: instances that change state together.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpSyncGroup {
    /// Name.
    pub name: String,
    /// `group { … }`: member instance names.
    pub instances: Vec<String>,
    /// `track_script { … }` applied to every member.
    pub track_scripts: Vec<TrackScript>,
    /// `track_process { … }` applied to every member.
    pub track_processes: Vec<TrackProcess>,
    /// `track_interface { … }` applied to every member.
    pub track_interfaces: Vec<TrackInterface>,
    /// `track_file { … }` applied to every member.
    pub track_files: Vec<TrackFile>,
    /// `notify_priority_changes [BOOL]`: the members' default.
    pub notify_priority_changes: Option<bool>,
    /// `smtp_alert [BOOL]`; `None` = the global default (see [`Config::group_smtp_alert`]).
    pub smtp_alert: Option<bool>,
    /// `notify_*` scripts of the group.
    pub notify: Notify,
    /// `sync_group_tracking_weight`: keep members' tracking weights (keepalived otherwise
    /// sets weights of checks tracked by members to 0).
    pub tracking_weight: bool,
    /// Where it was defined.
    pub origin: Origin,
}

//! The sans-IO VRRP state machine of one virtual router (STYLE principles 1–2): events go in
//! with the current time, [`Action`]s and the next deadline come out. Initialize / Backup /
//! Master per RFC 5798 §6.4 (RFC 3768 §6.4 for VRRPv2) plus keepalived's Fault state.
//!
//! ```text
//!   start ──► Initialize ──(owner, §6.4.1)──────────────────────► Master
//!                 │                                                 ▲  │
//!                 └──(§6.4.1)──► Backup ──(Master_Down_Timer)───────┘  │
//!                                  ▲  ◄──(higher prio / higher addr)───┘ (§6.4.3)
//!   set_fault(true) from any running state ──► Fault ──set_fault(false)──► Backup (owner: Master)
//!   shutdown from any state ──► Initialize (a Master sends priority 0 and drops its VIPs)
//! ```
//!
//! keepalived semantics kept here (its `vrrp.c` / `vrrp_scheduler.c`):
//! - `state MASTER` does not take over at once: a non-owner always starts as Backup and
//!   waits a full master-down interval; initial MASTER only clears `nopreempt` and
//!   `preempt_delay` (with a [`ConfigWarning`]).
//! - A Master answers a lower-priority advert with an immediate advert (unless
//!   `lower_prio_no_advert`) and a gratuitous ARP / NA burst, and a priority-0 advert with
//!   an immediate advert.
//! - `preempt_delay`: a Backup keeps accepting a lower-priority Master's adverts until
//!   `preempt_delay` after the first one, then discards them, so it takes over one
//!   master-down interval after the last accepted advert. A higher-or-equal advert cancels
//!   the delay. The delay is a deadline compared on receive, not a wake-up, so it is not in
//!   the [`TimerTable`].
//! - Priority changes from tracking go out with the next regular advert.
//! - Gratuitous ARP / NA: one burst on becoming Master, a second after `garp_master_delay`,
//!   then every `garp_master_refresh`; those two timers live in the [`TimerTable`], the
//!   burst size (`garp_master_repeat`) travels in [`Action::SendGarp`] for the I/O layer.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::timer::{Timer, TimerTable};
use super::timing::{timing, Timing};
use super::types::{AdvertInterval, Family, Priority, Version, Vrid};
use super::validate::{validate, Counters, RxDrop};
use crate::wire::vrrp::{self as packet, Advert, V2Auth};

/// keepalived's upper bound for `preempt_delay`.
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// Protocol state (RFC 5798 §6.4, plus keepalived's Fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    /// Monitoring the Master.
    Backup,
    /// Forwarding for the virtual addresses.
    Master,
    /// keepalived extension: a tracked interface/check is down; neither advertises nor
    /// listens.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// Why a state change happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// RFC 5798 §6.4.1: a non-owner starts as Backup.
    Startup,
    /// RFC 5798 §6.4.1: the address owner (priority 255) starts as Master.
    OwnerStartup,
    /// RFC 5798 §6.4.2: Master_Down_Timer fired (no advert for the master-down interval,
    /// or a lower-priority Master was preempted).
    MasterDown,
    /// RFC 5798 §6.4.2: the Master sent priority 0 and the skew time passed.
    MasterReleased,
    /// RFC 5798 §6.4.3: an advert with a higher priority, or equal priority and a higher
    /// primary address, arrived.
    HigherPriority {
        /// Sender.
        from: IpAddr,
        /// Its priority.
        priority: Priority,
    },
    /// keepalived Fault: the caller's reason (tracked interface down, check failed, ...).
    Fault(String),
    /// The fault cleared.
    FaultCleared,
    /// [`Instance::shutdown`].
    Shutdown,
    /// keepalived `vrrp_sync_master` / `vrrp_sync_backup`: another member of the
    /// `vrrp_sync_group` changed role and this one follows ([`Instance::force_master`],
    /// [`Instance::force_backup`]).
    SyncGroup,
    /// The operator put the instance in maintenance ([`Instance::set_maintenance`]).
    Maintenance,
}

impl Reason {
    /// A short stable name of the kind, without its details (`startup`, `owner_startup`,
    /// `master_down`, `master_released`, `higher_priority`, `fault`, `fault_cleared`,
    /// `shutdown`, `sync_group`, `maintenance`): what a transition counter is labelled with.
    pub fn name(&self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::OwnerStartup => "owner_startup",
            Reason::MasterDown => "master_down",
            Reason::MasterReleased => "master_released",
            Reason::HigherPriority { .. } => "higher_priority",
            Reason::Fault(_) => "fault",
            Reason::FaultCleared => "fault_cleared",
            Reason::Shutdown => "shutdown",
            Reason::SyncGroup => "sync_group",
            Reason::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::OwnerStartup => f.write_str("address owner startup"),
            Reason::MasterDown => f.write_str("master down timer expired"),
            Reason::MasterReleased => f.write_str("master sent priority 0"),
            Reason::HigherPriority { from, priority } => {
                write!(f, "advert from {from} with priority {priority}")
            }
            Reason::Fault(why) => write!(f, "fault: {why}"),
            Reason::FaultCleared => f.write_str("fault cleared"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::SyncGroup => f.write_str("sync group"),
            Reason::Maintenance => f.write_str("maintenance"),
        }
    }
}

/// Something worth logging that does not change the state and is not a drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// RFC 5798 §7.1 "MAY verify": the advert's address list differs from ours.
    AddressListMismatch {
        /// Sender.
        from: IpAddr,
    },
    /// VRRPv3: the Master advertises another interval than ours (a Backup adopts it).
    IntervalDiffers {
        /// Sender.
        from: IpAddr,
        /// Its interval.
        theirs: AdvertInterval,
        /// Ours.
        ours: AdvertInterval,
    },
    /// Another router claims to be the address owner too (configuration error).
    OwnerConflict {
        /// Sender.
        from: IpAddr,
    },
    /// As Master we received a lower-priority advert (a lower router took over, e.g. after
    /// a partition); keepalived answers with an immediate advert.
    LowerPriorityAdvert {
        /// Sender.
        from: IpAddr,
        /// Its priority.
        priority: Priority,
    },
    /// As Master our advert went out this late: the process or the host was stalled (a
    /// frozen VM, SIGSTOP) longer than a Backup waits, so a Backup has probably taken over and
    /// announced the VIPs; we announce them again.
    ResumedAfterStall {
        /// How late the advert was.
        late: Duration,
    },
}

/// What the I/O layer must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advert to the multicast group or each unicast peer, with TTL 255; encode
    /// it per destination with [`packet::encode`] (the VRRPv3 checksum covers the
    /// destination address).
    SendAdvert(Advert),
    /// Install the virtual addresses (including `virtual_ipaddress_excluded`).
    AddVips,
    /// Remove the virtual addresses.
    DelVips,
    /// Send gratuitous ARPs (IPv4) / unsolicited NAs (IPv6) for every VIP, `repeat` each.
    SendGarp {
        /// How many per address (keepalived `garp_master_repeat` /
        /// `garp_master_refresh_repeat`).
        repeat: u32,
    },
    /// The state changed: log at info, run notify scripts.
    StateChanged {
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// Log it (rate-limited); nothing else to do.
    Notice(Notice),
    /// keepalived `wantstate`, for the `vrrp_sync_group` coordinator: `true` when, held by
    /// [`Instance::set_group_hold`], a Backup's Master_Down_Timer fired and it would take
    /// over; `false` when it no longer would (it accepted a Master's advert, or left
    /// Backup). Emitted on change only.
    WantMaster(bool),
}

/// keepalived `state` keyword.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InitialState {
    /// `state BACKUP` (default).
    #[default]
    Backup,
    /// `state MASTER`: keepalived still starts non-owners as Backup, but clears `nopreempt`
    /// and `preempt_delay`.
    Master,
}

/// Gratuitous ARP / NA timing on becoming Master (keepalived `garp_master_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// `garp_master_delay`: second burst after this delay; `None` = no second burst.
    pub master_delay: Option<Duration>,
    /// `garp_master_repeat`: messages per address in a burst.
    pub master_repeat: u32,
    /// `garp_master_refresh`: periodic refresh while Master; `None` = off.
    pub master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat`: messages per address per refresh.
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_delay`: as Master, a second burst this long after the one that
    /// answers a lower-priority advert; `None` = no second burst.
    pub lower_prio_delay: Option<Duration>,
    /// `garp_lower_prio_repeat`: messages per address in a burst answering a lower-priority
    /// advert; 0 = no burst.
    pub lower_prio_repeat: u32,
}

impl Default for GarpConfig {
    /// keepalived's defaults: 5 s delay, 5 repeats, no refresh, 1 refresh repeat; after a
    /// lower-priority advert the same as after becoming Master.
    fn default() -> Self {
        GarpConfig {
            master_delay: Some(Duration::from_secs(5)),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            lower_prio_delay: Some(Duration::from_secs(5)),
            lower_prio_repeat: 5,
        }
    }
}

/// The protocol configuration of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// `virtual_router_id`.
    pub vrid: Vrid,
    /// `vrrp_version` (must match the unit of `advert_int`).
    pub version: Version,
    /// Address family (IPv6 requires VRRPv3).
    pub family: Family,
    /// Configured `priority` (255 = address owner).
    pub priority: Priority,
    /// `advert_int`.
    pub advert_int: AdvertInterval,
    /// `false` = `nopreempt`.
    pub preempt: bool,
    /// `preempt_delay` (0 = none, at most [`MAX_PREEMPT_DELAY`]).
    pub preempt_delay: Duration,
    /// The advertised `virtual_ipaddress` entries (not the excluded ones).
    pub vips: Vec<IpAddr>,
    /// VRRPv2 `auth_type PASS` password, zero padded to 8 bytes; `None` = no auth.
    pub auth: Option<[u8; 8]>,
    /// Our source address (`mcast_src_ip`/`unicast_src_ip` or the interface's): the
    /// tie-break (RFC 5798 §6.4.3) and the pseudo-header source.
    pub primary_addr: IpAddr,
    /// `state`.
    pub initial_state: InitialState,
    /// Unicast peers configured: the TTL check is skipped, as keepalived does.
    pub unicast: bool,
    /// keepalived `lower_prio_no_advert`: as Master, do not answer lower-priority adverts.
    pub lower_prio_no_advert: bool,
    /// keepalived `owner_ignore_adverts`: an owner drops every advert (strict RFC §7.1).
    pub owner_ignore_adverts: bool,
    /// GARP / NA timing.
    pub garp: GarpConfig,
}

impl InstanceConfig {
    /// A configuration with keepalived's defaults: version from `advert_int`, family from
    /// `primary_addr`, priority 100, preempt, no delay, no VIPs, no auth.
    pub fn new(vrid: Vrid, advert_int: AdvertInterval, primary_addr: IpAddr) -> Self {
        InstanceConfig {
            vrid,
            version: advert_int.version(),
            family: Family::of(primary_addr),
            priority: Priority::DEFAULT,
            advert_int,
            preempt: true,
            preempt_delay: Duration::ZERO,
            vips: Vec::new(),
            auth: None,
            primary_addr,
            initial_state: InitialState::Backup,
            unicast: false,
            lower_prio_no_advert: false,
            owner_ignore_adverts: false,
            garp: GarpConfig::default(),
        }
    }
}

/// A configuration the protocol cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `advert_int` in the other version's unit.
    #[error("advert_int {interval} is a {} interval but the instance runs {version}", interval.version())]
    IntervalVersion {
        /// The interval.
        interval: AdvertInterval,
        /// The configured version.
        version: Version,
    },
    /// RFC 3768 is IPv4 only.
    #[error("VRRPv2 supports IPv4 only")]
    V2RequiresIpv4,
    /// The primary address is not of the instance's family.
    #[error("primary address {addr} is not {family}")]
    PrimaryFamily {
        /// The address.
        addr: IpAddr,
        /// The instance's family.
        family: Family,
    },
    /// A VIP is not of the instance's family.
    #[error("virtual address {addr} is not {family}")]
    VipFamily {
        /// The address.
        addr: IpAddr,
        /// The instance's family.
        family: Family,
    },
    /// The count field is 8 bits.
    #[error("{0} virtual addresses, at most 255 fit in an advert")]
    TooManyVips(usize),
    /// Priority 0 is reserved for the release advert (RFC 5798 §5.2.4).
    #[error("priority 0 is reserved for the release advert")]
    ReleasePriority,
    /// VRRPv3 has no authentication (RFC 5798 §9).
    #[error("VRRPv3 has no authentication")]
    AuthOnV3,
    /// keepalived accepts 0..=1000 s.
    #[error("preempt_delay {0:?} exceeds 1000 s")]
    PreemptDelay(Duration),
    /// [`Instance::reconfigure`] was asked to change the VRID, version or family.
    #[error("VRID, version and family cannot change in place")]
    IdentityChanged,
}

/// An option keepalived resets at load time, reported so the daemon can log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigWarning {
    /// `nopreempt` is meaningless for the address owner.
    NopreemptOnOwner,
    /// `nopreempt` with `state MASTER` is cleared.
    NopreemptWithInitialMaster,
    /// `preempt_delay` with `state MASTER` is cleared.
    PreemptDelayWithInitialMaster,
    /// `preempt_delay` with `nopreempt` is cleared.
    PreemptDelayWithNopreempt,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigWarning::NopreemptOnOwner => {
                "nopreempt is incompatible with priority 255 - cleared"
            }
            ConfigWarning::NopreemptWithInitialMaster => {
                "nopreempt will not work with initial state MASTER - cleared"
            }
            ConfigWarning::PreemptDelayWithInitialMaster => {
                "preempt_delay will not work with initial state MASTER - cleared"
            }
            ConfigWarning::PreemptDelayWithNopreempt => {
                "preempt_delay is incompatible with nopreempt - cleared"
            }
        })
    }
}

/// One VRRP instance's protocol state. See the module documentation.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    /// Effective priority (configured ± tracking), what we advertise and compare.
    priority: Priority,
    /// RFC 5798 §6.1 Master_Adver_Interval: ours when Master, the Master's when Backup (v3).
    master_adver_int: AdvertInterval,
    timers: TimerTable,
    /// keepalived `preempt_time`: after this, lower-priority adverts are discarded.
    preempt_until: Option<Instant>,
    /// The Master we last accepted an advert from, and its priority.
    master: Option<(IpAddr, Priority)>,
    /// The pending master-down deadline was set by a priority-0 advert.
    down_by_release: bool,
    fault: Option<String>,
    /// A `vrrp_sync_group` member: Master_Down only reports [`Action::WantMaster`].
    group_hold: bool,
    /// keepalived `wantstate == MASTER` while held in Backup.
    wants_master: bool,
    /// Another member of its sync group is in maintenance ([`Instance::set_group_blocked`]).
    group_blocked: bool,
    /// The operator's maintenance: never Master ([`Instance::set_maintenance`]).
    maintenance: bool,
    actions: VecDeque<Action>,
    counters: Counters,
    warnings: Vec<ConfigWarning>,
}

impl Instance {
    /// Validate `cfg` and build an instance in Initialize. Call [`Instance::start`] next.
    pub fn new(mut cfg: InstanceConfig) -> Result<Self, ConfigError> {
        if cfg.advert_int.version() != cfg.version {
            return Err(ConfigError::IntervalVersion {
                interval: cfg.advert_int,
                version: cfg.version,
            });
        }
        if cfg.version == Version::V2 && cfg.family != Family::V4 {
            return Err(ConfigError::V2RequiresIpv4);
        }
        if Family::of(cfg.primary_addr) != cfg.family {
            return Err(ConfigError::PrimaryFamily {
                addr: cfg.primary_addr,
                family: cfg.family,
            });
        }
        if let Some(addr) = cfg.vips.iter().find(|a| Family::of(**a) != cfg.family) {
            return Err(ConfigError::VipFamily {
                addr: *addr,
                family: cfg.family,
            });
        }
        if cfg.vips.len() > usize::from(u8::MAX) {
            return Err(ConfigError::TooManyVips(cfg.vips.len()));
        }
        if cfg.priority == Priority::RELEASE {
            return Err(ConfigError::ReleasePriority);
        }
        if cfg.version == Version::V3 && cfg.auth.is_some() {
            return Err(ConfigError::AuthOnV3);
        }
        if cfg.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelay(cfg.preempt_delay));
        }
        // keepalived's vrrp_complete_instance() resets these, in this order.
        let mut warnings = Vec::new();
        if cfg.priority.is_owner() && !cfg.preempt {
            cfg.preempt = true;
            warnings.push(ConfigWarning::NopreemptOnOwner);
        }
        if cfg.initial_state == InitialState::Master {
            if !cfg.preempt {
                cfg.preempt = true;
                warnings.push(ConfigWarning::NopreemptWithInitialMaster);
            }
            if !cfg.preempt_delay.is_zero() {
                cfg.preempt_delay = Duration::ZERO;
                warnings.push(ConfigWarning::PreemptDelayWithInitialMaster);
            }
        }
        if !cfg.preempt_delay.is_zero() && !cfg.preempt {
            cfg.preempt_delay = Duration::ZERO;
            warnings.push(ConfigWarning::PreemptDelayWithNopreempt);
        }
        Ok(Instance {
            priority: cfg.priority,
            master_adver_int: cfg.advert_int,
            cfg,
            state: State::Initialize,
            timers: TimerTable::default(),
            preempt_until: None,
            master: None,
            down_by_release: false,
            fault: None,
            group_hold: false,
            wants_master: false,
            group_blocked: false,
            maintenance: false,
            actions: VecDeque::new(),
            counters: Counters::default(),
            warnings,
        })
    }

    /// Leave Initialize (RFC 5798 §6.4.1): the owner becomes Master at once, others become
    /// Backup and wait a master-down interval; a pending fault goes to Fault instead.
    /// No effect unless in Initialize.
    pub fn start(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        if let Some(why) = self.fault.clone() {
            self.transition(State::Fault, Reason::Fault(why));
        } else if self.is_owner() && !self.maintenance && !self.group_blocked {
            self.become_master(now, Reason::OwnerStartup);
        } else {
            self.enter_backup(now, Reason::Startup);
        }
    }

    /// Decode, validate and process a received VRRP message (the IP payload) from `src` to
    /// `dst` that arrived with `ttl` (IPv4 TTL / IPv6 hop limit); returns the accepted
    /// advert's priority. Every rejection is counted before it is returned.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<Priority, RxDrop> {
        match packet::decode(payload, src, dst) {
            Ok(decoded) => {
                self.counters.record_checksum(decoded.checksum_form);
                self.handle_advert(now, src, ttl, &decoded.advert)
                    .map(|()| decoded.advert.priority)
            }
            Err(e) => {
                let drop = RxDrop::Decode(e);
                self.counters.record_drop(drop.reason());
                Err(drop)
            }
        }
    }

    /// Count a rejection decided before the advert reached this instance (the router's
    /// demultiplexing, e.g. [`RxDrop::NotUnicastPeer`]).
    pub fn record_drop(&mut self, drop: &RxDrop) {
        self.counters.record_drop(drop.reason());
    }

    /// Validate and process an already decoded advert from `src` received with `ttl`.
    /// Every rejection is counted before it is returned.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        ttl: u8,
        advert: &Advert,
    ) -> Result<(), RxDrop> {
        let result = self.receive(now, src, ttl, advert);
        if let Err(drop) = &result {
            self.counters.record_drop(drop.reason());
        }
        result
    }

    fn receive(
        &mut self,
        now: Instant,
        src: IpAddr,
        ttl: u8,
        advert: &Advert,
    ) -> Result<(), RxDrop> {
        // keepalived ignores adverts in Fault and Initialize before any check.
        if matches!(self.state, State::Initialize | State::Fault) {
            return Err(RxDrop::NotRunning);
        }
        let findings = validate(&self.cfg, self.priority, src, ttl, advert)?;
        self.counters.adverts_received += 1;
        if advert.priority == Priority::RELEASE {
            self.counters.priority_zero_received += 1;
        }
        if findings.address_list_mismatch {
            self.counters.address_list_mismatch += 1;
            self.notice(Notice::AddressListMismatch { from: src });
        }
        if findings.interval_differs {
            self.counters.interval_differs += 1;
            self.notice(Notice::IntervalDiffers {
                from: src,
                theirs: advert.interval,
                ours: self.cfg.advert_int,
            });
        }
        if self.is_owner() && advert.priority.is_owner() {
            self.counters.owner_conflict += 1;
            self.notice(Notice::OwnerConflict { from: src });
        }
        match self.state {
            State::Backup => self.backup_rx(now, src, advert),
            State::Master => self.master_rx(now, src, advert),
            State::Initialize | State::Fault => {}
        }
        Ok(())
    }

    /// RFC 5798 §6.4.2 (RFC 3768 §6.4.2): a Backup receives an advert.
    fn backup_rx(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer to
        // Skew_Time."
        if advert.priority == Priority::RELEASE {
            let skew = self.timing().skew;
            self.timers.set(Timer::MasterDown, now + skew);
            self.down_by_release = true;
            return;
        }
        let higher_or_equal = advert.priority >= self.priority;
        let preempt_held =
            !self.cfg.preempt_delay.is_zero() && self.preempt_until.is_none_or(|until| until > now);
        // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater than
        // or equal to the local Priority, then: ..." — plus keepalived's preempt_delay hold.
        if !self.cfg.preempt || higher_or_equal || preempt_held {
            if self.cfg.version == Version::V3 {
                // RFC 5798 §6.4.2: "Set Master_Adver_Interval to Adver Interval contained in
                // the ADVERTISEMENT", then recompute Skew_Time and Master_Down_Interval.
                self.master_adver_int = advert.interval;
            }
            let down = self.timing().master_down;
            self.timers.set(Timer::MasterDown, now + down);
            self.down_by_release = false;
            self.master = Some((src, advert.priority));
            // keepalived: "Now we have received a higher priority advert, we want to be in
            // BACKUP state" (`vrrp.c`, backup advert handling).
            self.set_want_master(false);
            if !self.cfg.preempt_delay.is_zero() {
                if higher_or_equal {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.cfg.preempt_delay);
                }
            }
        }
        // "Otherwise: Discard the ADVERTISEMENT" — the lower-priority Master is preempted
        // when Master_Down_Timer fires.
    }

    /// RFC 5798 §6.4.3 (RFC 3768 §6.4.3): a Master receives an advert.
    fn master_rx(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT, Reset
        // the Adver_Timer to Advertisement_Interval."
        if advert.priority == Priority::RELEASE {
            self.send_advert(now, self.priority);
            return;
        }
        let higher = advert.priority > self.priority
            || (advert.priority == self.priority && src > self.cfg.primary_addr);
        if higher {
            // "If the Priority in the ADVERTISEMENT is greater than the local Priority or
            // [equal and] the primary IPvX Address of the sender is greater than the local
            // primary IPvX Address, then: Cancel Adver_Timer, Set Master_Adver_Interval to
            // Adver Interval contained in the ADVERTISEMENT, Recompute the Skew_Time,
            // Recompute the Master_Down_Interval, Set Master_Down_Timer to
            // Master_Down_Interval, Transition to the {Backup} state."
            if self.cfg.version == Version::V3 {
                self.master_adver_int = advert.interval;
            }
            self.master = Some((src, advert.priority));
            self.counters.released_master += 1;
            self.stop_master_timers();
            self.preempt_until = None;
            self.down_by_release = false;
            let down = self.timing().master_down;
            self.timers.set(Timer::MasterDown, now + down);
            self.set_want_master(false);
            self.transition(
                State::Backup,
                Reason::HigherPriority {
                    from: src,
                    priority: advert.priority,
                },
            );
            self.actions.push_back(Action::DelVips);
        } else {
            // "Otherwise: Discard the ADVERTISEMENT." keepalived also answers at once so a
            // lower router that took over (partition, stalled Master) yields quickly, and
            // sends a gratuitous ARP / NA burst (its `garp_lower_prio_repeat`, by default
            // the master burst): that router announced the VIPs when it took over, so the
            // hosts' neighbour caches point at it, and it drops the VIPs when it yields.
            // Without the burst they keep the stale entry until it expires (seconds). A
            // second burst follows after `garp_lower_prio_delay`: a host ignores an update
            // that comes within its neighbour `locktime` (1 s on Linux) of the other router's
            // announcement, so the first burst can be lost to that race.
            self.notice(Notice::LowerPriorityAdvert {
                from: src,
                priority: advert.priority,
            });
            if !self.cfg.lower_prio_no_advert {
                self.send_advert(now, self.priority);
            }
            self.reannounce_after_lower_priority(now);
        }
    }

    /// As Master, announce the VIPs again the way an answer to a lower-priority advert does
    /// (`garp_lower_prio_repeat` now, again after `garp_lower_prio_delay`); nothing in
    /// another state or with a repeat of 0. The router also calls it for the other members
    /// of a sync group when one member heard the lower router (keepalived
    /// `vrrp_state_master_rx`): the lower node's other members yield with it, so their
    /// adverts never reach this node, yet hosts' neighbour caches point at them too.
    pub fn reannounce_after_lower_priority(&mut self, now: Instant) {
        if self.state != State::Master || self.cfg.garp.lower_prio_repeat == 0 {
            return;
        }
        self.actions.push_back(Action::SendGarp {
            repeat: self.cfg.garp.lower_prio_repeat,
        });
        if let Some(delay) = self.cfg.garp.lower_prio_delay {
            self.timers.set(Timer::GarpLowerPrio, now + delay);
        }
    }

    /// Process every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let advert_due = self.timers.get(Timer::Advert);
        while let Some(timer) = self.timers.pop_expired(now) {
            match (timer, self.state) {
                // RFC 5798 §6.4.2: "If the Master_Down_Timer fires, then: Send an
                // ADVERTISEMENT, Broadcast a gratuitous ARP ..., Set the Adver_Timer ...,
                // Transition to the {Master} state."
                (Timer::MasterDown, State::Backup) if self.maintenance => {
                    // In maintenance the Backup never takes over: it keeps listening and
                    // waits another master-down interval (not wanting MASTER, so a sync
                    // group it belongs to stays Backup too).
                    let down = self.timing().master_down;
                    self.timers.set(Timer::MasterDown, now + down);
                    self.down_by_release = false;
                }
                (Timer::MasterDown, State::Backup) if self.group_hold => {
                    // keepalived `vrrp_state_goto_master` with `vrrp_sync_can_goto_master`
                    // false: stay Backup wanting MASTER and time out again after a
                    // master-down interval; the group coordinator decides.
                    let down = self.timing().master_down;
                    self.timers.set(Timer::MasterDown, now + down);
                    self.set_want_master(true);
                }
                (Timer::MasterDown, State::Backup) => {
                    let reason = if self.down_by_release {
                        Reason::MasterReleased
                    } else {
                        Reason::MasterDown
                    };
                    self.become_master(now, reason);
                }
                // RFC 5798 §6.4.3: "If the Adver_Timer fires, then: Send an ADVERTISEMENT,
                // Reset the Adver_Timer to Advertisement_Interval."
                (Timer::Advert, State::Master) => {
                    self.send_advert(now, self.priority);
                    self.reannounce_after_stall(now, advert_due);
                }
                (Timer::GarpDelay, State::Master) => {
                    self.actions.push_back(Action::SendGarp {
                        repeat: self.cfg.garp.master_repeat,
                    });
                }
                (Timer::GarpLowerPrio, State::Master) => {
                    self.actions.push_back(Action::SendGarp {
                        repeat: self.cfg.garp.lower_prio_repeat,
                    });
                }
                (Timer::GarpRefresh, State::Master) => {
                    self.actions.push_back(Action::SendGarp {
                        repeat: self.cfg.garp.master_refresh_repeat,
                    });
                    if let Some(every) = self.cfg.garp.master_refresh {
                        self.timers.set(Timer::GarpRefresh, now + every);
                    }
                }
                // A timer of another state: transitions stop them, so nothing to do.
                _ => {}
            }
        }
    }

    /// Set the effective priority (configured priority adjusted by tracking, computed by
    /// the caller). Non-owners are clamped to 1..=254; the owner's priority is fixed at 255
    /// (keepalived ignores tracking weights for it). The new value goes out with the next
    /// regular advert and is used for the next master-down computation.
    pub fn set_priority(&mut self, _now: Instant, priority: Priority) {
        if self.cfg.priority.is_owner() {
            return;
        }
        self.priority = Priority::backup(i64::from(priority.get()));
    }

    /// Apply a changed configuration in place (daemon reload), keeping the state, the
    /// counters and the running timers: a Master stays Master and keeps its VIPs (the caller
    /// applies VIP-set differences itself), a Backup keeps waiting for the same Master.
    /// The new priority and interval go out with the next regular advert. VRID, version and
    /// family identify the instance and must not change (the caller replaces the instance
    /// instead). Fails, leaving everything as it was, if the new configuration is invalid.
    pub fn reconfigure(&mut self, cfg: InstanceConfig) -> Result<(), ConfigError> {
        if cfg.vrid != self.cfg.vrid
            || cfg.version != self.cfg.version
            || cfg.family != self.cfg.family
        {
            return Err(ConfigError::IdentityChanged);
        }
        let validated = Instance::new(cfg)?;
        let base_changed = validated.cfg.priority != self.cfg.priority;
        if base_changed || self.cfg.priority.is_owner() != validated.cfg.priority.is_owner() {
            self.priority = validated.cfg.priority;
        }
        if self.state == State::Master {
            self.master_adver_int = validated.cfg.advert_int;
        }
        self.warnings = validated.warnings;
        self.cfg = validated.cfg;
        Ok(())
    }

    /// Enter (`fault = true`) or leave Fault. A Master entering Fault sends a priority-0
    /// advert and removes its VIPs (keepalived); leaving Fault goes to Backup with a full
    /// master-down interval, or straight to Master for the owner. Before [`Instance::start`]
    /// the fault is remembered and `start` enters Fault.
    pub fn set_fault(&mut self, now: Instant, fault: bool, reason: impl Into<String>) {
        if fault {
            let why = reason.into();
            self.fault = Some(why.clone());
            match self.state {
                State::Initialize | State::Fault => {}
                State::Master => {
                    self.release(now);
                    self.transition(State::Fault, Reason::Fault(why));
                }
                State::Backup => {
                    self.timers.stop_all();
                    self.transition(State::Fault, Reason::Fault(why));
                }
            }
        } else {
            self.fault = None;
            if self.state == State::Fault {
                self.master_adver_int = self.cfg.advert_int;
                if self.is_owner() && !self.maintenance && !self.group_blocked {
                    self.become_master(now, Reason::FaultCleared);
                } else {
                    self.enter_backup(now, Reason::FaultCleared);
                }
            }
        }
    }

    /// Make this instance a `vrrp_sync_group` member (`true`) or a free-standing one. While
    /// held, a Backup whose Master_Down_Timer fires does not take over: it stays Backup,
    /// re-arms the timer and reports [`Action::WantMaster`]`(true)`; the coordinator then
    /// calls [`Instance::force_master`] when every member wants to (keepalived
    /// `vrrp_sync_can_goto_master`). Releasing the hold lets a waiting Backup take over at
    /// its next Master_Down expiry.
    pub fn set_group_hold(&mut self, hold: bool) {
        self.group_hold = hold;
        if !hold {
            self.set_want_master(false);
        }
    }

    /// Another member of this instance's sync group is in maintenance (`true`), so the group
    /// may not go Master: the address owner does not take over by itself at start-up or
    /// when its Fault clears (it starts Backup, held, and the group decides), exactly as in
    /// its own maintenance. Without it the owner would go Master while its sibling cannot
    /// follow, splitting the group (found by the `router_sim` fuzz target).
    pub fn set_group_blocked(&mut self, blocked: bool) {
        self.group_blocked = blocked;
    }

    /// Put the instance in maintenance (`true`) or take it out. In maintenance it is never
    /// Master: a Master stands down at once as at shutdown — a priority-0 advert, so a
    /// Backup takes over after its skew time (RFC 5798 §6.4.3 "priority zero" release),
    /// VIPs removed — and becomes Backup; a Backup keeps receiving adverts but its
    /// Master_Down_Timer never makes it Master (nor a sync group's `force_master`, nor the
    /// address owner's start-up or fault recovery). Leaving maintenance changes no state:
    /// the Backup runs its master-down timer as usual, so it takes over when no Master is
    /// heard, or preempts a lower-priority Master per its configuration.
    pub fn set_maintenance(&mut self, now: Instant, on: bool) {
        self.maintenance = on;
        if on {
            self.set_want_master(false);
        }
        if on && self.state == State::Master {
            self.release(now);
            self.enter_backup(now, Reason::Maintenance);
        }
    }

    /// Whether the instance is in maintenance ([`Instance::set_maintenance`]).
    pub fn maintenance(&self) -> bool {
        self.maintenance
    }

    /// Whether a held Backup currently wants to become Master (keepalived `wantstate`).
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// keepalived `vrrp_sync_master`: another member of the sync group became Master, so a
    /// Backup takes over now, with the same actions as a Master_Down takeover (advert, VIPs,
    /// GARP/NA). No effect in any other state.
    pub fn force_master(&mut self, now: Instant) {
        if self.state == State::Backup && !self.maintenance {
            self.become_master(now, Reason::SyncGroup);
        }
    }

    /// keepalived `vrrp_sync_backup`: another member of the sync group left Master for
    /// Backup, so a Master follows. As keepalived's `vrrp_state_leave_master(.., false)`
    /// it sends no priority-0 advert (the peer's members take over after their own
    /// master-down interval, in step), removes its VIPs and waits a full master-down
    /// interval. No effect in any other state.
    pub fn force_backup(&mut self, now: Instant) {
        if self.state == State::Master {
            self.actions.push_back(Action::DelVips);
            self.counters.released_master += 1;
            self.enter_backup(now, Reason::SyncGroup);
        }
    }

    /// Stop participating: a Master sends a priority-0 advert so a Backup takes over after
    /// its skew time, and removes the VIPs. Every state goes to Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        match self.state {
            State::Initialize => return,
            State::Master => self.release(now),
            State::Backup | State::Fault => self.timers.stop_all(),
        }
        self.master = None;
        self.transition(State::Initialize, Reason::Shutdown);
    }

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`Instance::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Statistics.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The (normalized) configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Options keepalived would have reset, as [`Instance::new`] did.
    pub fn config_warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The effective priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The current Master_Adver_Interval (ours, or the Master's for a VRRPv3 Backup).
    pub fn master_adver_int(&self) -> AdvertInterval {
        self.master_adver_int
    }

    /// Skew time and master-down interval for the current priority and Master interval.
    pub fn timing(&self) -> Timing {
        timing(self.priority, self.master_adver_int)
    }

    /// The Master we last accepted an advert from (Backup), with its priority.
    pub fn master(&self) -> Option<(IpAddr, Priority)> {
        self.master
    }

    /// The deadline of one timer, for tests and status output.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// The pending fault reason, if any.
    pub fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    fn is_owner(&self) -> bool {
        self.cfg.priority.is_owner()
    }

    /// The advert we send at `priority`.
    pub fn advert(&self, priority: Priority) -> Advert {
        Advert {
            vrid: self.cfg.vrid,
            priority,
            interval: self.cfg.advert_int,
            auth: match self.cfg.version {
                Version::V2 => Some(self.cfg.auth.map(V2Auth::pass).unwrap_or(V2Auth::NONE)),
                Version::V3 => None,
            },
            addresses: self.cfg.vips.clone(),
            checksum: 0,
        }
    }

    fn set_want_master(&mut self, want: bool) {
        if self.wants_master != want {
            self.wants_master = want;
            self.actions.push_back(Action::WantMaster(want));
        }
    }

    fn notice(&mut self, notice: Notice) {
        self.actions.push_back(Action::Notice(notice));
    }

    fn transition(&mut self, to: State, reason: Reason) {
        if to != State::Backup {
            self.set_want_master(false);
        }
        let from = self.state;
        self.state = to;
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }

    /// Send an advert at `priority` and (re)arm the Adver_Timer.
    fn send_advert(&mut self, now: Instant, priority: Priority) {
        self.counters.adverts_sent += 1;
        if priority == Priority::RELEASE {
            self.counters.priority_zero_sent += 1;
        }
        self.actions
            .push_back(Action::SendAdvert(self.advert(priority)));
        self.timers
            .set(Timer::Advert, now + self.cfg.advert_int.duration());
    }

    /// A Master whose advert is due at `due` but goes out at `now`: if it is later than a
    /// Backup waits before taking over (Master_Down_Interval is at least 3 × the interval
    /// after the last advert heard, i.e. 2 × after this one was due), the process or host was
    /// stalled and a Backup has probably become Master and sent its gratuitous ARPs. Our
    /// advert makes it yield, but only a lower-priority advert *we* hear would make us
    /// announce the VIPs again (`garp_lower_prio_repeat`), and the yielding router may hear
    /// ours first and never send one: the hosts would keep its MAC until their neighbour
    /// entries expire (tens of seconds). So announce now, as after becoming Master.
    fn reannounce_after_stall(&mut self, now: Instant, due: Option<Instant>) {
        let Some(due) = due else { return };
        let late = now.saturating_duration_since(due);
        if late <= self.cfg.advert_int.duration() * 2 {
            return;
        }
        self.notice(Notice::ResumedAfterStall { late });
        self.actions.push_back(Action::SendGarp {
            repeat: self.cfg.garp.master_repeat,
        });
        if let Some(delay) = self.cfg.garp.master_delay {
            self.timers.set(Timer::GarpDelay, now + delay);
        }
    }

    fn stop_master_timers(&mut self) {
        self.timers.stop(Timer::Advert);
        self.timers.stop(Timer::GarpDelay);
        self.timers.stop(Timer::GarpLowerPrio);
        self.timers.stop(Timer::GarpRefresh);
    }

    /// Master leaving: priority-0 advert, VIPs removed, all timers stopped.
    fn release(&mut self, now: Instant) {
        self.send_advert(now, Priority::RELEASE);
        self.actions.push_back(Action::DelVips);
        self.counters.released_master += 1;
        self.timers.stop_all();
    }

    fn enter_backup(&mut self, now: Instant, reason: Reason) {
        self.master_adver_int = self.cfg.advert_int;
        self.preempt_until = None;
        self.down_by_release = false;
        self.master = None;
        self.set_want_master(false);
        self.timers.stop_all();
        let down = self.timing().master_down;
        self.timers.set(Timer::MasterDown, now + down);
        self.transition(State::Backup, reason);
    }

    /// Become Master: the advert goes first so the old Master drops the VIPs before our
    /// gratuitous ARPs (keepalived `vrrp_state_master_tx`), then VIPs, then GARP/NA.
    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.master_adver_int = self.cfg.advert_int;
        self.preempt_until = None;
        self.down_by_release = false;
        self.master = None;
        self.timers.stop_all();
        self.counters.became_master += 1;
        self.transition(State::Master, reason);
        self.send_advert(now, self.priority);
        self.actions.push_back(Action::AddVips);
        self.actions.push_back(Action::SendGarp {
            repeat: self.cfg.garp.master_repeat,
        });
        let delay = self.cfg.garp.master_delay;
        if let Some(d) = delay {
            self.timers.set(Timer::GarpDelay, now + d);
        }
        if let Some(every) = self.cfg.garp.master_refresh {
            self.timers
                .set(Timer::GarpRefresh, now + delay.unwrap_or_default() + every);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::sim::{addr, router, v2, v3};

    #[test]
    fn config_errors() {
        let mut c = router(11, 100, v2(1));
        c.version = Version::V3;
        assert!(matches!(
            Instance::new(c),
            Err(ConfigError::IntervalVersion { .. })
        ));
        let mut c = router(11, 100, v3(100));
        c.auth = Some([0; 8]);
        assert_eq!(Instance::new(c).err(), Some(ConfigError::AuthOnV3));
        let mut c = router(11, 100, v2(1));
        c.vips.push("2001:db8::1".parse().unwrap());
        assert!(matches!(
            Instance::new(c),
            Err(ConfigError::VipFamily { .. })
        ));
        let mut c = router(11, 100, v2(1));
        c.family = Family::V6;
        assert_eq!(Instance::new(c).err(), Some(ConfigError::V2RequiresIpv4));
        let mut c = router(11, 100, v3(100));
        c.family = Family::V6;
        assert!(matches!(
            Instance::new(c),
            Err(ConfigError::PrimaryFamily { .. })
        ));
        assert_eq!(
            Instance::new(router(11, 0, v2(1))).err(),
            Some(ConfigError::ReleasePriority)
        );
        let mut c = router(11, 100, v2(1));
        c.preempt_delay = Duration::from_secs(1001);
        assert!(matches!(
            Instance::new(c),
            Err(ConfigError::PreemptDelay(_))
        ));
        let mut c = router(11, 100, v3(100));
        c.vips = (0..=255u8)
            .map(|n| IpAddr::from([198, 51, 100, n]))
            .chain([addr(1)])
            .collect();
        assert_eq!(Instance::new(c).err(), Some(ConfigError::TooManyVips(257)));
    }

    #[test]
    fn reconfigure_keeps_a_master_master_and_applies_the_new_priority() {
        let mut i = Instance::new(router(11, 255, v3(100))).unwrap();
        let now = Instant::now();
        i.start(now);
        while i.poll_action().is_some() {}
        let mut c = router(11, 200, v3(50));
        c.vips.push(addr(99));
        i.reconfigure(c).unwrap();
        assert_eq!(i.state(), State::Master);
        assert_eq!(i.priority(), Priority::new(200));
        // No actions: the Master neither re-adds its VIPs nor re-announces.
        assert_eq!(i.poll_action(), None);
        // The next regular advert carries the new priority and interval.
        i.handle_timeout(now + Duration::from_secs(1));
        match i.poll_action() {
            Some(Action::SendAdvert(a)) => {
                assert_eq!(a.priority, Priority::new(200));
                assert_eq!(a.interval, v3(50));
            }
            other => panic!("expected an advert, got {other:?}"),
        }
        let mut other = router(11, 200, v3(50));
        other.vrid = Vrid::new(56).unwrap();
        assert_eq!(i.reconfigure(other), Err(ConfigError::IdentityChanged));
    }

    #[test]
    fn keepalived_resets_incompatible_options() {
        let mut c = router(11, 255, v2(1));
        c.preempt = false;
        let i = Instance::new(c).unwrap();
        assert_eq!(i.config_warnings(), &[ConfigWarning::NopreemptOnOwner]);
        let mut c = router(11, 100, v2(1));
        c.preempt = false;
        c.preempt_delay = Duration::from_secs(3);
        let i = Instance::new(c).unwrap();
        assert_eq!(
            i.config_warnings(),
            &[ConfigWarning::PreemptDelayWithNopreempt]
        );
        assert_eq!(i.config().preempt_delay, Duration::ZERO);
        let mut c = router(11, 100, v2(1));
        c.initial_state = InitialState::Master;
        c.preempt_delay = Duration::from_secs(3);
        let i = Instance::new(c).unwrap();
        assert_eq!(
            i.config_warnings(),
            &[ConfigWarning::PreemptDelayWithInitialMaster]
        );
    }

    #[test]
    fn becoming_master_orders_advert_before_vips_and_garp() {
        let mut i = Instance::new(router(11, 255, v3(100))).unwrap();
        let now = Instant::now();
        i.start(now);
        let actions: Vec<_> = std::iter::from_fn(|| i.poll_action()).collect();
        assert!(matches!(
            actions.as_slice(),
            [
                Action::StateChanged {
                    from: State::Initialize,
                    to: State::Master,
                    reason: Reason::OwnerStartup
                },
                Action::SendAdvert(a),
                Action::AddVips,
                Action::SendGarp { repeat: 5 },
            ] if a.priority == Priority::OWNER
        ));
        assert_eq!(i.timer(Timer::Advert), Some(now + Duration::from_secs(1)));
        assert_eq!(
            i.timer(Timer::GarpDelay),
            Some(now + Duration::from_secs(5))
        );
        assert_eq!(i.poll_timeout(), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn shutdown_from_master_sends_priority_zero_and_removes_vips() {
        let mut i = Instance::new(router(11, 255, v2(1))).unwrap();
        let now = Instant::now();
        i.start(now);
        while i.poll_action().is_some() {}
        i.shutdown(now);
        let actions: Vec<_> = std::iter::from_fn(|| i.poll_action()).collect();
        assert!(matches!(
            actions.as_slice(),
            [
                Action::SendAdvert(a),
                Action::DelVips,
                Action::StateChanged { from: State::Master, to: State::Initialize, reason: Reason::Shutdown },
            ] if a.priority == Priority::RELEASE
        ));
        assert_eq!(i.poll_timeout(), None);
        assert_eq!(i.counters().priority_zero_sent, 1);
        i.shutdown(now);
        assert_eq!(i.poll_action(), None, "idempotent");
        i.start(now);
        assert_eq!(i.state(), State::Master, "restartable");
    }

    fn drain(i: &mut Instance) -> Vec<Action> {
        std::iter::from_fn(|| i.poll_action()).collect()
    }

    /// A non-owner Backup, started at `now`, actions drained.
    fn held_backup(now: Instant) -> Instance {
        let mut i = Instance::new(router(11, 100, v3(100))).unwrap();
        i.set_group_hold(true);
        i.start(now);
        drain(&mut i);
        i
    }

    #[test]
    fn held_backup_wants_master_instead_of_taking_over_keepalived_sync_can_goto_master() {
        let now = Instant::now();
        let mut i = held_backup(now);
        let down = i.timing().master_down;
        i.handle_timeout(now + down);
        assert_eq!(i.state(), State::Backup);
        assert_eq!(drain(&mut i), vec![Action::WantMaster(true)]);
        assert!(i.wants_master());
        // It times out again one master-down interval later, without repeating itself.
        assert_eq!(i.timer(Timer::MasterDown), Some(now + down + down));
        i.handle_timeout(now + down + down);
        assert_eq!(i.state(), State::Backup);
        assert_eq!(drain(&mut i), vec![]);
        // An accepted advert (higher priority) withdraws the wish (keepalived: wantstate
        // BACKUP on a higher priority advert).
        let higher = i.advert(Priority::new(200));
        i.handle_advert(now + down * 2, addr(12), 255, &higher)
            .unwrap();
        assert_eq!(drain(&mut i), vec![Action::WantMaster(false)]);
        assert!(!i.wants_master());
        // A lower-priority advert is discarded (preempt) and does not.
        i.handle_timeout(now + down * 4);
        assert_eq!(drain(&mut i), vec![Action::WantMaster(true)]);
        let lower = i.advert(Priority::new(50));
        i.handle_advert(now + down * 4, addr(12), 255, &lower)
            .unwrap();
        assert_eq!(drain(&mut i), vec![]);
        assert!(i.wants_master());
    }

    #[test]
    fn releasing_the_hold_lets_the_backup_take_over_at_its_next_expiry() {
        let now = Instant::now();
        let mut i = held_backup(now);
        let down = i.timing().master_down;
        i.handle_timeout(now + down);
        drain(&mut i);
        i.set_group_hold(false);
        assert_eq!(drain(&mut i), vec![Action::WantMaster(false)]);
        i.handle_timeout(now + down * 2);
        assert_eq!(i.state(), State::Master);
    }

    #[test]
    fn force_master_takes_over_like_a_master_down_expiry_keepalived_sync_master() {
        let now = Instant::now();
        let mut i = held_backup(now);
        let down = i.timing().master_down;
        i.handle_timeout(now + down);
        drain(&mut i);
        i.force_master(now + down);
        let actions = drain(&mut i);
        assert!(
            matches!(
                actions.as_slice(),
                [
                    Action::WantMaster(false),
                    Action::StateChanged {
                        from: State::Backup,
                        to: State::Master,
                        reason: Reason::SyncGroup
                    },
                    Action::SendAdvert(a),
                    Action::AddVips,
                    Action::SendGarp { repeat: 5 },
                ] if a.priority == Priority::new(100)
            ),
            "{actions:?}"
        );
        assert_eq!(i.timer(Timer::MasterDown), None);
        assert_eq!(
            i.timer(Timer::Advert),
            Some(now + down + Duration::from_secs(1))
        );
        // Only a Backup is forced.
        i.force_master(now + down);
        assert_eq!(drain(&mut i), vec![]);
        let mut f = held_backup(now);
        f.set_fault(now, true, "link");
        drain(&mut f);
        f.force_master(now);
        assert_eq!(f.state(), State::Fault);
    }

    #[test]
    fn force_backup_drops_vips_without_priority_zero_and_waits_master_down_keepalived_sync_backup()
    {
        let mut i = Instance::new(router(11, 100, v3(100))).unwrap();
        let now = Instant::now();
        i.start(now);
        i.force_master(now);
        drain(&mut i);
        let later = now + Duration::from_millis(250);
        i.force_backup(later);
        let actions = drain(&mut i);
        assert_eq!(
            actions,
            vec![
                Action::DelVips,
                Action::StateChanged {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::SyncGroup
                },
            ],
            "no advert at all, in particular no priority 0"
        );
        assert_eq!(i.counters().priority_zero_sent, 0);
        assert_eq!(i.timer(Timer::Advert), None);
        assert_eq!(i.timer(Timer::GarpDelay), None);
        assert_eq!(
            i.timer(Timer::MasterDown),
            Some(later + i.timing().master_down)
        );
        // Only a Master is forced.
        i.force_backup(later);
        assert_eq!(drain(&mut i), vec![]);
        assert_eq!(i.state(), State::Backup);
    }

    #[test]
    fn a_held_master_that_meets_a_higher_priority_steps_down_as_usual() {
        let now = Instant::now();
        let mut i = held_backup(now);
        i.force_master(now);
        drain(&mut i);
        let higher = i.advert(Priority::new(200));
        i.handle_advert(now, addr(12), 255, &higher).unwrap();
        assert_eq!(i.state(), State::Backup);
        assert!(!i.wants_master());
    }

    #[test]
    fn maintenance_releases_a_master_with_priority_zero_rfc5798_6_4_3_and_stays_backup() {
        let mut i = Instance::new(router(11, 100, v3(100))).unwrap();
        let now = Instant::now();
        i.start(now);
        let down = i.timing().master_down;
        i.handle_timeout(now + down);
        assert_eq!(i.state(), State::Master);
        drain(&mut i);
        let t = now + down;
        i.set_maintenance(t, true);
        let actions = drain(&mut i);
        assert!(
            matches!(
                actions.as_slice(),
                [
                    Action::SendAdvert(a),
                    Action::DelVips,
                    Action::StateChanged { from: State::Master, to: State::Backup, reason: Reason::Maintenance },
                ] if a.priority == Priority::RELEASE
            ),
            "{actions:?}"
        );
        assert!(i.maintenance());
        assert_eq!(i.counters().priority_zero_sent, 1);
        assert_eq!(i.counters().released_master, 1);
        // No Master is heard: the master-down timer fires again and again, never a takeover.
        let mut at = t;
        for _ in 0..10 {
            at = i
                .poll_timeout()
                .expect("a Backup keeps its master-down timer");
            i.handle_timeout(at);
            assert_eq!(i.state(), State::Backup);
            assert!(!i.wants_master());
        }
        assert_eq!(drain(&mut i), vec![]);
        // Adverts are still received and counted.
        let peer = i.advert(Priority::new(50));
        i.handle_advert(at, addr(12), 255, &peer).unwrap();
        assert_eq!(i.counters().adverts_received, 1);
        // Out of maintenance: the next expiry takes over as usual.
        i.set_maintenance(at, false);
        let next = i.poll_timeout().unwrap();
        i.handle_timeout(next);
        assert_eq!(i.state(), State::Master);
    }

    #[test]
    fn maintenance_keeps_the_owner_and_a_sync_group_member_from_mastering() {
        let now = Instant::now();
        let mut owner = Instance::new(router(11, 255, v3(100))).unwrap();
        owner.set_maintenance(now, true);
        owner.start(now);
        assert_eq!(owner.state(), State::Backup, "the owner starts as Backup");
        owner.set_fault(now, true, "link");
        owner.set_fault(now, false, "");
        assert_eq!(
            owner.state(),
            State::Backup,
            "nor does fault recovery make it Master"
        );
        let mut member = held_backup(now);
        member.set_maintenance(now, true);
        member.force_master(now);
        assert_eq!(member.state(), State::Backup);
        let down = member.timing().master_down;
        member.handle_timeout(now + down);
        assert!(!member.wants_master(), "a group waits for it in vain");
        member.set_maintenance(now + down, false);
        member.force_master(now + down);
        assert_eq!(member.state(), State::Master);
    }
}

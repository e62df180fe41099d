//! The sans-IO VRRP speaker of one node (model: quinn-proto's `Endpoint`): the [`Router`] owns
//! every instance of the node and everything that decides between them, and hands the I/O
//! layer [`Output`]s plus one next deadline.
//!
//! ```text
//!  datagram(path, src, dst, ttl, bytes) ──► demux (path, family, VRID; unicast peers)
//!  set_check / set_link ──► tracking ──► effective priority | Fault ─┐
//!  upsert / retain / set_sync_groups (reload) ──► VIP diff, holds    │
//!  handle_timeout(now) ──► cores, split-brain windows, GARP pacing   │
//!                                   │                                ▼
//!                     one vrrp::Instance per instance ◄── sync-group rules (vrrp_sync.c)
//!                                   │ Action
//!                                   ▼
//!              Output: Transmit, AddVips, DelVips, Announce, Hook, Event
//!              poll_timeout(): the earliest deadline of all of the above
//! ```
//!
//! What lives here and nowhere else:
//! - demultiplexing by the full key — receive path, family, VRID, and for unicast instances
//!   the configured peers (keepalived ignores adverts from non-peers; each such drop is
//!   counted as [`RxDrop::NotUnicastPeer`]); datagrams no instance takes are counted per path
//!   ([`Router::path_counters`]);
//! - heartbeat paths: an instance receives on, and sends on, its primary path and every
//!   `heartbeat_interface` path;
//! - tracking: keepalived's rules ([`crate::track`]) over the latest check and link states,
//!   and the union of a tracking Fault with the sync group's Fault;
//! - `vrrp_sync_group`s ([`sync_group`]): members move together;
//! - split-brain detection per instance ([`split_brain`]);
//! - gratuitous ARP / NA pacing ([`announce`]);
//! - reloads ([`Router::upsert`], [`Router::retain`]): an instance matched by its
//!   [`InstanceKey`] keeps its state; a Master keeps its VIPs and gets only the difference;
//! - the operator's maintenance ([`Router::set_maintenance`]), kept by instance name so a
//!   reload that re-creates an instance starts it in maintenance.
//!
//! The router never reads a clock: every entry point takes `now`. After each call, perform
//! every [`Output`] from [`Router::poll_output`] in order, then sleep until
//! [`Router::poll_timeout`].

pub mod announce;
pub mod split_brain;
pub mod sync_group;

// The simulated LAN serves the scenario tests and the `router_sim` fuzz target; outside
// tests only the part the fuzz target drives is used.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod sim;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use self::announce::{Announcements, BurstKind};
use self::split_brain::{Alarm, SplitBrainDetector};
use self::sync_group::{Group, SyncGroupSpec};
use crate::track::{self, CheckState, Effective, Tracked, TrackedFile};
use crate::vrrp::{
    Action, ConfigError, ConfigWarning, Counters, Family, Instance, InstanceConfig, Notice,
    Priority, Reason, RxDrop, State, Vrid,
};
use crate::wire::vrrp::{self as codec, DecodeError};

/// An instance's handle within its [`Router`], stable while the instance exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(u32);

impl InstanceId {
    fn index(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A receive/send path: the interface index the I/O layer's VRRP socket is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(pub u32);

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ifindex {}", self.0)
    }
}

/// The identity of an instance across reloads, as keepalived matches them: VRID, family,
/// interface, and unicast vs multicast — and, when two configured instances share those (two
/// unicast instances with disjoint peers on one VRID), the instance's name, so they never
/// merge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// `virtual_router_id`.
    pub vrid: Vrid,
    /// Address family.
    pub family: Family,
    /// `interface`.
    pub interface: String,
    /// Unicast peers configured.
    pub unicast: bool,
    /// The instance's name, when another configured instance shares the four fields above.
    pub shared_by: Option<String>,
}

/// What an instance tracks: a check (`vrrp_script`), an interface, a `track_file` or a
/// `vrrp_track_process`, by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrackSource {
    /// A check fed by [`Router::set_check`].
    Check(String),
    /// An interface fed by [`Router::set_link`] (missing = down).
    Interface(String),
    /// A `track_file` fed by [`Router::set_file_value`] (never set = 0, as a missing file).
    File(String),
    /// A `vrrp_track_process` fed by [`Router::set_process`] (never set = not reported yet).
    Process(String),
}

/// One tracked object with its keepalived `weight` and `reverse` for this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedItem {
    /// What.
    pub source: TrackSource,
    /// `weight` (0 = Fault while down).
    pub weight: i32,
    /// `reverse`.
    pub reverse: bool,
}

/// Everything the router needs to run one instance. `V` is the I/O layer's description of
/// one installed address, `R` of one virtual route or rule (the router only compares and
/// hands them back).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec<V, R = ()> {
    /// `vrrp_instance` name (unique on the node; sync groups refer to it).
    pub name: String,
    /// Reload identity.
    pub key: InstanceKey,
    /// Protocol configuration for the core.
    pub protocol: InstanceConfig,
    /// The instance's own interface.
    pub primary: PathId,
    /// `heartbeat_interface` paths: adverts are sent and received on these too.
    pub heartbeat: Vec<PathId>,
    /// Where adverts go: the multicast group, or each unicast peer.
    pub destinations: Vec<IpAddr>,
    /// Unicast peers (adverts from anyone else are dropped); empty = multicast.
    pub peers: Vec<IpAddr>,
    /// Every address installed while Master (advertised, then excluded).
    pub vips: Vec<V>,
    /// Virtual routes and rules (keepalived's `virtual_routes`, `virtual_rules`): installed
    /// while Master, after the addresses (a route may use a VIP as its source) and removed
    /// before them, as keepalived's `vrrp_state_become_master` / `vrrp_restore_interface`.
    pub routes: Vec<R>,
    /// Spacing of the gratuitous ARPs / NAs of one burst (0 = all at once).
    pub announce_interval: Duration,
    /// What the instance tracks (its own and its sync group's trackers, its interfaces).
    pub tracking: Vec<TrackedItem>,
}

impl<V, R> InstanceSpec<V, R> {
    /// Every path the instance uses, primary first.
    pub fn paths(&self) -> impl Iterator<Item = PathId> + '_ {
        std::iter::once(self.primary).chain(self.heartbeat.iter().copied())
    }
}

/// A VRRP message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The sending instance.
    pub instance: InstanceId,
    /// The path (interface) to send on.
    pub path: PathId,
    /// Whether `path` is a heartbeat path (a failure there is less severe).
    pub heartbeat: bool,
    /// Source address (the instance's primary address).
    pub src: IpAddr,
    /// Destination (the group or a unicast peer).
    pub dst: IpAddr,
    /// The encoded VRRP message (the checksum covers `src`/`dst`).
    pub payload: Vec<u8>,
}

/// keepalived's notify hook states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookState {
    /// Became Master.
    Master,
    /// Became Backup.
    Backup,
    /// Entered Fault.
    Fault,
    /// Stopped (shutdown or removed by a reload).
    Stop,
    /// Another Master is advertising this VRID.
    SplitBrain,
    /// One Master again.
    SplitBrainCleared,
}

/// Whose hooks run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HookTarget {
    /// An instance's.
    Instance(InstanceId),
    /// A `vrrp_sync_group`'s (by name).
    Group(String),
}

/// Run the notify hooks of `target` for `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Whose hooks.
    pub target: HookTarget,
    /// The new state.
    pub state: HookState,
    /// The priority passed to the generic `notify` hook (0 for groups).
    pub priority: Priority,
}

/// Something to log or count; nothing to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An instance changed state.
    StateChanged {
        /// Which.
        instance: InstanceId,
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
        /// Its effective priority now.
        priority: Priority,
    },
    /// Worth logging, changes nothing.
    Notice {
        /// Which instance.
        instance: InstanceId,
        /// What.
        notice: Notice,
    },
    /// A received datagram was dropped; emitted when the counter it bumped reaches a power
    /// of two, so a flood logs a handful of lines.
    Dropped {
        /// The instance that counted it (`None`: counted on the path).
        instance: Option<InstanceId>,
        /// Where it arrived.
        path: PathId,
        /// Its source (`None` when the I/O layer dropped it unread).
        src: Option<IpAddr>,
        /// Why.
        drop: RxDrop,
        /// How many of this reason so far.
        count: u64,
    },
    /// A held sync-group member's master-down timer fired: it waits for the group.
    HeldByGroup {
        /// Which instance.
        instance: InstanceId,
    },
    /// A sync group moved all its members to a role.
    GroupSynced {
        /// The group.
        group: String,
        /// The member that caused it.
        instance: InstanceId,
        /// `MASTER` or `BACKUP`.
        to: State,
    },
    /// The split-brain alarm of an instance changed.
    SplitBrain {
        /// Which instance.
        instance: InstanceId,
        /// Raised or cleared.
        alarm: Alarm,
    },
    /// An option keepalived would reset was reset.
    ConfigAdjusted {
        /// Which instance.
        instance: InstanceId,
        /// What.
        warning: ConfigWarning,
    },
    /// A reload changed a Master's VIP set in place.
    VipsUpdated {
        /// Which instance.
        instance: InstanceId,
        /// Addresses added.
        added: usize,
        /// Addresses removed.
        removed: usize,
    },
    /// Tracking changed the effective priority of an instance that is not in Fault
    /// (keepalived's `vrrp_set_effective_priority`; `notify_priority_changes` reports it).
    PriorityChanged {
        /// Which instance.
        instance: InstanceId,
        /// Its state now.
        state: State,
        /// The old effective priority.
        from: Priority,
        /// The new one.
        to: Priority,
    },
    /// The instance is gone (after its release outputs).
    Removed {
        /// Which instance.
        instance: InstanceId,
        /// Its name.
        name: String,
    },
}

/// What the I/O layer must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<V, R = ()> {
    /// Send a VRRP message.
    Transmit(Transmit),
    /// Install these addresses of an instance.
    AddVips {
        /// Which instance.
        instance: InstanceId,
        /// What.
        vips: Vec<V>,
    },
    /// Remove these addresses of an instance.
    DelVips {
        /// Which instance.
        instance: InstanceId,
        /// What.
        vips: Vec<V>,
    },
    /// Install these virtual routes and rules of an instance (after its addresses).
    AddRoutes {
        /// Which instance.
        instance: InstanceId,
        /// What.
        routes: Vec<R>,
    },
    /// Remove these virtual routes and rules of an instance (before its addresses).
    DelRoutes {
        /// Which instance.
        instance: InstanceId,
        /// What.
        routes: Vec<R>,
    },
    /// One gratuitous ARP (IPv4) / unsolicited NA (IPv6) per address, now.
    Announce {
        /// Which instance.
        instance: InstanceId,
        /// For which addresses.
        vips: Vec<V>,
    },
    /// Run notify hooks (asynchronously, in order per target).
    Hook(Hook),
    /// Log or count.
    Event(Event),
}

/// Why [`Router::upsert`] refused an instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpsertError {
    /// The protocol core refused the configuration (the running instance keeps its old one).
    #[error("{0}")]
    Protocol(#[from] ConfigError),
    /// Another running instance already has this name.
    #[error("another instance is already named {0}")]
    DuplicateName(String),
}

/// One running instance.
#[derive(Debug)]
struct Slot<V, R> {
    spec: InstanceSpec<V, R>,
    core: Instance,
    /// The last state an [`Event::StateChanged`] reported (sync-group hooks use it).
    reported: State,
    tracking_fault: Option<String>,
    group_fault: Option<String>,
    held: bool,
    announcements: Announcements<V>,
    split_brain: SplitBrainDetector,
}

/// A read-only view of one instance, for status output.
#[derive(Debug)]
pub struct InstanceView<'a, V, R = ()> {
    /// Its handle.
    pub id: InstanceId,
    /// What it runs.
    pub spec: &'a InstanceSpec<V, R>,
    /// The protocol core (state, priority, counters, Master).
    pub core: &'a Instance,
    /// Whether its split-brain alarm is up.
    pub split_brain: bool,
    /// How often the alarm was raised.
    pub split_brain_events: u64,
    /// Whether the operator put it in maintenance ([`Router::set_maintenance`]).
    pub maintenance: bool,
}

/// Demultiplexing key of a received datagram.
type DemuxKey = (PathId, Family, Vrid);

/// The VRRP speaker of one node. See the module documentation.
#[derive(Debug)]
pub struct Router<V, R = ()> {
    slots: Vec<Option<Slot<V, R>>>,
    demux: HashMap<DemuxKey, Vec<InstanceId>>,
    groups: Vec<Group>,
    checks: HashMap<String, CheckState>,
    links: HashMap<String, bool>,
    files: HashMap<String, i64>,
    /// `vrrp_track_process` quorum states.
    processes: HashMap<String, bool>,
    path_counters: BTreeMap<(PathId, Family), Counters>,
    /// Names of the instances the operator put in maintenance (running or not).
    maintenance: BTreeSet<String>,
    outputs: VecDeque<Output<V, R>>,
}

impl<V, R> Default for Router<V, R> {
    fn default() -> Self {
        Router {
            slots: Vec::new(),
            demux: HashMap::new(),
            groups: Vec::new(),
            checks: HashMap::new(),
            links: HashMap::new(),
            files: HashMap::new(),
            processes: HashMap::new(),
            path_counters: BTreeMap::new(),
            maintenance: BTreeSet::new(),
            outputs: VecDeque::new(),
        }
    }
}

/// The items of `a` that `b` lacks, in `a`'s order.
fn difference<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

/// Bound on rounds of one [`Router::pump`]: sync-group rules converge in a few rounds; more
/// means a bug, which must not hang the daemon.
const MAX_PUMP_ROUNDS: usize = 1_000;

impl<V: Clone + PartialEq, R: Clone + PartialEq> Router<V, R> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    // ----------------------------------------------------------------------------------
    // Inputs

    /// A VRRP datagram (the IP payload) arrived on `path` from `src` to `dst` with `ttl`
    /// (IPv4 TTL / IPv6 hop limit).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        path: PathId,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) {
        let family = Family::of(src);
        // The VRID is the second octet in VRRPv2 and v3 alike (RFC 3768 §5.3.3,
        // RFC 5798 §5.2.3); the owning instance decodes and validates the rest.
        let vrid = match payload.get(1).copied() {
            None => {
                let drop = RxDrop::Decode(DecodeError::Truncated {
                    what: "VRRP header",
                    needed: codec::HEADER_LEN,
                    got: payload.len(),
                });
                return self.path_drop(path, family, src, drop);
            }
            Some(byte) => match Vrid::new(byte) {
                Some(vrid) => vrid,
                None => return self.path_drop(path, family, src, DecodeError::ZeroVrid.into()),
            },
        };
        let Some(candidates) = self.demux.get(&(path, family, vrid)).cloned() else {
            // RFC 5798 §7.1: "MUST discard if the VRID is not configured on this interface".
            let drop = RxDrop::VridNotConfigured { vrid: vrid.get() };
            return self.path_drop(path, family, src, drop);
        };
        let takers = self.takers(&candidates, src, dst);
        if takers.is_empty() {
            // Only unicast instances, and `src` is none's peer or sent to a group.
            for id in candidates {
                self.instance_drop(id, path, src, RxDrop::NotUnicastPeer { src });
            }
            return;
        }
        for id in takers {
            let Some(slot) = self.slot_mut(id) else {
                continue;
            };
            match slot.core.handle_packet(now, src, dst, ttl, payload) {
                Ok(priority) => {
                    let state = slot.core.state();
                    let alarm = slot.split_brain.observe(now, state, src, priority);
                    self.on_alarm(id, alarm);
                }
                Err(drop) => {
                    let count = slot.core.counters().dropped(drop.reason());
                    self.dropped_event(Some(id), path, Some(src), drop, count);
                }
            }
        }
        self.pump(now);
    }

    /// Datagrams the I/O layer dropped on `path` before the router could see them (`n` of
    /// them, for `drop`: [`RxDrop::QueueFull`], [`RxDrop::IpLayer`]): counted on the path, so
    /// every drop appears in the counters.
    pub fn handle_io_drops(&mut self, path: PathId, family: Family, drop: RxDrop, n: u64) {
        if n == 0 {
            return;
        }
        let counters = self.path_counters.entry((path, family)).or_default();
        let before = counters.dropped(drop.reason());
        counters.record_drops(drop.reason(), n);
        let after = counters.dropped(drop.reason());
        // One event per power of two crossed, as for drops counted one at a time.
        if (before + 1..=after).any(u64::is_power_of_two) {
            self.push_dropped(None, path, None, drop, after);
        }
    }

    /// Process every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let id = InstanceId(u32::try_from(index).unwrap_or(u32::MAX));
            let Some(slot) = self.slot_mut(id) else {
                continue;
            };
            if slot.core.poll_timeout().is_some_and(|t| t <= now) {
                slot.core.handle_timeout(now);
            }
            if slot.split_brain.next_deadline().is_some_and(|t| t <= now) {
                let alarm = slot.split_brain.tick(now);
                self.on_alarm(id, alarm);
            }
            let Some(slot) = self.slot_mut(id) else {
                continue;
            };
            if slot.announcements.next_deadline().is_some_and(|t| t <= now) {
                let interval = slot.spec.announce_interval;
                for vips in slot.announcements.due(now, interval) {
                    self.outputs
                        .push_back(Output::Announce { instance: id, vips });
                }
            }
        }
        self.pump(now);
    }

    /// The latest state of check `name` (keepalived's rise/fall result). A check an
    /// instance tracks but that was never set counts as down.
    pub fn set_check(&mut self, now: Instant, name: &str, state: CheckState) {
        if self.checks.get(name) == Some(&state) {
            return;
        }
        self.checks.insert(name.to_owned(), state);
        let source = TrackSource::Check(name.to_owned());
        self.retrack(now, &source);
    }

    /// Forget check `name` (it no longer runs): trackers of it see it as down.
    pub fn remove_check(&mut self, now: Instant, name: &str) {
        if self.checks.remove(name).is_some() {
            self.retrack(now, &TrackSource::Check(name.to_owned()));
        }
    }

    /// Interface `name` is up or down (a missing interface is down).
    pub fn set_link(&mut self, now: Instant, name: &str, up: bool) {
        if self.links.get(name) == Some(&up) {
            return;
        }
        self.links.insert(name.to_owned(), up);
        self.retrack(now, &TrackSource::Interface(name.to_owned()));
    }

    /// The integer value of tracked file `name` (keepalived reads a missing, empty or
    /// non-numeric file as 0).
    pub fn set_file_value(&mut self, now: Instant, name: &str, value: i64) {
        if self.files.get(name) == Some(&value) {
            return;
        }
        self.files.insert(name.to_owned(), value);
        self.retrack(now, &TrackSource::File(name.to_owned()));
    }

    /// `vrrp_track_process` `name` has quorum (`up`) or not. Until it is first set, its
    /// trackers see it as not reported yet (weight 0: Fault; a weight: no contribution).
    pub fn set_process(&mut self, now: Instant, name: &str, up: bool) {
        if self.processes.get(name) == Some(&up) {
            return;
        }
        self.processes.insert(name.to_owned(), up);
        self.retrack(now, &TrackSource::Process(name.to_owned()));
    }

    /// Forget `vrrp_track_process` `name` (no longer configured).
    pub fn remove_process(&mut self, now: Instant, name: &str) {
        if self.processes.remove(name).is_some() {
            self.retrack(now, &TrackSource::Process(name.to_owned()));
        }
    }

    /// Put the instance named `name` in maintenance (`on`) or take it out: while in
    /// maintenance it is never Master — a Master stands down at once with a priority-0
    /// advert (RFC 5798 §6.4.3 release, so a Backup takes over after its skew time) and
    /// stays Backup, hearing adverts (see [`Instance::set_maintenance`]). The router keeps
    /// the name: an instance of that name started later (a reload that re-creates it)
    /// starts in maintenance. Returns whether an instance of that name runs now.
    pub fn set_maintenance(&mut self, now: Instant, name: &str, on: bool) -> bool {
        if on {
            self.maintenance.insert(name.to_owned());
        } else {
            self.maintenance.remove(name);
        }
        sync_group::block_for_maintenance(self);
        let Some(id) = self.find_by_name(name) else {
            return false;
        };
        if let Some(slot) = self.slot_mut(id) {
            slot.core.set_maintenance(now, on);
        }
        self.pump(now);
        true
    }

    /// Start an instance, or apply a changed definition to the running instance with the
    /// same [`InstanceKey`] (reload) keeping its protocol state: a Master stays Master and
    /// gets only the VIP difference (with its own gratuitous ARP / NA burst for the added
    /// addresses). On error nothing changes.
    pub fn upsert(
        &mut self,
        now: Instant,
        spec: InstanceSpec<V, R>,
    ) -> Result<InstanceId, UpsertError> {
        let existing = self.find(&spec.key);
        if self
            .find_by_name(&spec.name)
            .is_some_and(|id| Some(id) != existing)
        {
            return Err(UpsertError::DuplicateName(spec.name));
        }
        let id = match existing {
            Some(id) => {
                self.reconfigure(now, id, spec)?;
                id
            }
            None => self.start(now, spec)?,
        };
        self.pump(now);
        Ok(id)
    }

    /// Stop and remove every instance whose key `keep` rejects (reload): a Master sends
    /// priority 0 and removes its VIPs, `notify_stop` runs, then [`Event::Removed`].
    pub fn retain(&mut self, now: Instant, mut keep: impl FnMut(&InstanceKey) -> bool) {
        let removed: Vec<InstanceId> = self
            .ids()
            .filter(|id| self.slot(*id).is_some_and(|slot| !keep(&slot.spec.key)))
            .collect();
        for id in removed {
            self.stop(now, id);
            self.pump(now);
            self.unregister(id);
            if let Some(slot) = self.slots.get_mut(id.index()).and_then(Option::take) {
                self.outputs.push_back(Output::Event(Event::Removed {
                    instance: id,
                    name: slot.spec.name,
                }));
            }
        }
        self.resync_groups(now);
        self.pump(now);
    }

    /// Replace the sync groups (start-up, reload). Members are instance names; members that
    /// are not running are ignored until they start.
    pub fn set_sync_groups(&mut self, now: Instant, groups: Vec<SyncGroupSpec>) {
        sync_group::replace(self, groups);
        self.resync_groups(now);
        self.pump(now);
    }

    /// Release every instance (priority 0 and VIP removal for a Master, `notify_stop`).
    /// The router keeps the instances in Initialize; the I/O layer stops afterwards.
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<InstanceId> = self.ids().collect();
        for id in ids {
            self.stop(now, id);
        }
        self.pump(now);
    }

    // ----------------------------------------------------------------------------------
    // Outputs and queries

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output<V, R>> {
        self.outputs.pop_front()
    }

    /// When to call [`Router::handle_timeout`] next: the earliest protocol timer,
    /// split-brain window or paced announcement of any instance.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .flat_map(|s| {
                [
                    s.core.poll_timeout(),
                    s.split_brain.next_deadline(),
                    s.announcements.next_deadline(),
                ]
            })
            .flatten()
            .min()
    }

    /// The running instances.
    pub fn instances(&self) -> impl Iterator<Item = InstanceView<'_, V, R>> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let slot = slot.as_ref()?;
            Some(InstanceView {
                id: InstanceId(u32::try_from(index).ok()?),
                spec: &slot.spec,
                core: &slot.core,
                split_brain: slot.split_brain.is_raised(),
                split_brain_events: slot.split_brain.raised_count,
                maintenance: slot.core.maintenance(),
            })
        })
    }

    /// One instance.
    pub fn instance(&self, id: InstanceId) -> Option<InstanceView<'_, V, R>> {
        self.instances().find(|v| v.id == id)
    }

    /// The running instance with this reload identity.
    pub fn find(&self, key: &InstanceKey) -> Option<InstanceId> {
        self.instances().find(|v| &v.spec.key == key).map(|v| v.id)
    }

    /// The running instance with this name.
    pub fn find_by_name(&self, name: &str) -> Option<InstanceId> {
        self.instances().find(|v| v.spec.name == name).map(|v| v.id)
    }

    /// Drops counted on a path rather than an instance (too short, unknown VRID), by
    /// (path, family).
    pub fn path_counters(&self) -> impl Iterator<Item = ((PathId, Family), &Counters)> {
        self.path_counters.iter().map(|(k, c)| (*k, c))
    }

    // ----------------------------------------------------------------------------------
    // Instances

    fn ids(&self) -> impl Iterator<Item = InstanceId> + '_ {
        self.instances().map(|v| v.id)
    }

    fn slot(&self, id: InstanceId) -> Option<&Slot<V, R>> {
        self.slots.get(id.index()).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, id: InstanceId) -> Option<&mut Slot<V, R>> {
        self.slots.get_mut(id.index()).and_then(Option::as_mut)
    }

    fn start(&mut self, now: Instant, spec: InstanceSpec<V, R>) -> Result<InstanceId, UpsertError> {
        let core = Instance::new(spec.protocol.clone())?;
        let advert_int = spec.protocol.advert_int.duration();
        let index = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let id = InstanceId(u32::try_from(index).unwrap_or(u32::MAX));
        for warning in core.config_warnings() {
            self.outputs.push_back(Output::Event(Event::ConfigAdjusted {
                instance: id,
                warning: *warning,
            }));
        }
        self.slots[index] = Some(Slot {
            spec,
            reported: core.state(),
            core,
            tracking_fault: None,
            group_fault: None,
            held: false,
            announcements: Announcements::default(),
            split_brain: SplitBrainDetector::new(advert_int),
        });
        self.register(id);
        // Held by its sync group, tracked and in maintenance before it leaves Initialize,
        // so it never takes over on its own, with a stale priority or against the operator.
        self.resync_groups(now);
        self.apply_tracking(now, id);
        let maintenance = self
            .maintenance
            .contains(self.slot(id).map_or("", |s| &s.spec.name));
        if let Some(slot) = self.slot_mut(id) {
            slot.core.set_maintenance(now, maintenance);
            slot.core.start(now);
        }
        Ok(id)
    }

    fn reconfigure(
        &mut self,
        now: Instant,
        id: InstanceId,
        spec: InstanceSpec<V, R>,
    ) -> Result<(), UpsertError> {
        let Some(slot) = self.slot_mut(id) else {
            return Ok(());
        };
        if spec.protocol != slot.spec.protocol {
            slot.core.reconfigure(spec.protocol.clone())?;
            let warnings = slot.core.config_warnings().to_vec();
            for warning in warnings {
                self.outputs.push_back(Output::Event(Event::ConfigAdjusted {
                    instance: id,
                    warning,
                }));
            }
        }
        self.unregister(id);
        let Some(slot) = self.slot_mut(id) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut slot.spec, spec);
        let (old_vips, old_routes) = (old.vips, old.routes);
        let master = slot.core.state() == State::Master;
        let new_vips = slot.spec.vips.clone();
        let new_routes = slot.spec.routes.clone();
        self.register(id);
        if master {
            let stale = difference(&old_routes, &new_routes);
            if !stale.is_empty() {
                self.outputs.push_back(Output::DelRoutes {
                    instance: id,
                    routes: stale,
                });
            }
            let added: Vec<V> = new_vips
                .iter()
                .filter(|v| !old_vips.contains(v))
                .cloned()
                .collect();
            let removed: Vec<V> = old_vips
                .iter()
                .filter(|v| !new_vips.contains(v))
                .cloned()
                .collect();
            if !added.is_empty() || !removed.is_empty() {
                self.outputs.push_back(Output::Event(Event::VipsUpdated {
                    instance: id,
                    added: added.len(),
                    removed: removed.len(),
                }));
            }
            if !removed.is_empty() {
                self.outputs.push_back(Output::DelVips {
                    instance: id,
                    vips: removed,
                });
            }
            if !added.is_empty() {
                self.outputs.push_back(Output::AddVips {
                    instance: id,
                    vips: added.clone(),
                });
                self.announce(now, id, BurstKind::Reload, added, None);
            }
            let fresh = difference(&new_routes, &old_routes);
            if !fresh.is_empty() {
                self.outputs.push_back(Output::AddRoutes {
                    instance: id,
                    routes: fresh,
                });
            }
        }
        self.resync_groups(now);
        self.apply_tracking(now, id);
        Ok(())
    }

    /// Shut one instance down (its outputs follow with the next pump) and queue its
    /// `notify_stop`.
    fn stop(&mut self, now: Instant, id: InstanceId) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        if slot.core.state() == State::Initialize {
            return;
        }
        slot.core.shutdown(now);
        let priority = slot.core.priority();
        self.pump(now);
        self.outputs.push_back(Output::Hook(Hook {
            target: HookTarget::Instance(id),
            state: HookState::Stop,
            priority,
        }));
    }

    fn register(&mut self, id: InstanceId) {
        let Some(slot) = self.slot(id) else {
            return;
        };
        let (family, vrid) = (slot.spec.key.family, slot.spec.key.vrid);
        let keys: Vec<DemuxKey> = slot.spec.paths().map(|p| (p, family, vrid)).collect();
        for key in keys {
            let entry = self.demux.entry(key).or_default();
            if !entry.contains(&id) {
                entry.push(id);
            }
        }
    }

    fn unregister(&mut self, id: InstanceId) {
        self.demux.retain(|_, ids| {
            ids.retain(|i| *i != id);
            !ids.is_empty()
        });
    }

    /// Which of the instances registered for a datagram's (path, family, VRID) take it: a
    /// unicast instance takes what one of its peers sent to a unicast address; a multicast
    /// instance takes what was sent to a multicast group, and any other advert no unicast
    /// instance takes. So a unicast and a multicast instance, or unicast instances with
    /// disjoint peers, can share a VRID on one interface without hearing each other's peers.
    fn takers(&self, candidates: &[InstanceId], src: IpAddr, dst: IpAddr) -> Vec<InstanceId> {
        let is_unicast = |id: &InstanceId| self.slot(*id).is_some_and(|s| !s.spec.peers.is_empty());
        let mut takers: Vec<InstanceId> = candidates
            .iter()
            .copied()
            .filter(|id| {
                is_unicast(id)
                    && !dst.is_multicast()
                    && self.slot(*id).is_some_and(|s| s.spec.peers.contains(&src))
            })
            .collect();
        let unicast_taken = !takers.is_empty();
        takers.extend(
            candidates
                .iter()
                .copied()
                .filter(|id| !is_unicast(id) && (dst.is_multicast() || !unicast_taken)),
        );
        takers
    }

    fn path_drop(&mut self, path: PathId, family: Family, src: IpAddr, drop: RxDrop) {
        let counters = self.path_counters.entry((path, family)).or_default();
        counters.record_drop(drop.reason());
        let count = counters.dropped(drop.reason());
        self.dropped_event(None, path, Some(src), drop, count);
    }

    fn instance_drop(&mut self, id: InstanceId, path: PathId, src: IpAddr, drop: RxDrop) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        slot.core.record_drop(&drop);
        let count = slot.core.counters().dropped(drop.reason());
        self.dropped_event(Some(id), path, Some(src), drop, count);
    }

    fn dropped_event(
        &mut self,
        instance: Option<InstanceId>,
        path: PathId,
        src: Option<IpAddr>,
        drop: RxDrop,
        count: u64,
    ) {
        if count.is_power_of_two() {
            self.push_dropped(instance, path, src, drop, count);
        }
    }

    fn push_dropped(
        &mut self,
        instance: Option<InstanceId>,
        path: PathId,
        src: Option<IpAddr>,
        drop: RxDrop,
        count: u64,
    ) {
        self.outputs.push_back(Output::Event(Event::Dropped {
            instance,
            path,
            src,
            drop,
            count,
        }));
    }

    // ----------------------------------------------------------------------------------
    // Tracking

    /// Re-evaluate every instance that tracks `source`.
    fn retrack(&mut self, now: Instant, source: &TrackSource) {
        let ids: Vec<InstanceId> = self
            .instances()
            .filter(|v| v.spec.tracking.iter().any(|t| &t.source == source))
            .map(|v| v.id)
            .collect();
        for id in ids {
            self.apply_tracking(now, id);
        }
        self.pump(now);
    }

    /// keepalived's effective priority or Fault from what the instance tracks.
    fn evaluate(&self, spec: &InstanceSpec<V, R>) -> Effective {
        let files: Vec<TrackedFile<'_>> = spec
            .tracking
            .iter()
            .filter_map(|t| match &t.source {
                TrackSource::File(name) => Some(TrackedFile {
                    name,
                    weight: t.weight,
                    reverse: t.reverse,
                    value: self.files.get(name).copied().unwrap_or(0),
                }),
                _ => None,
            })
            .collect();
        // Checks, interfaces and processes, in the order of `spec.tracking` without the files.
        let states: Vec<(String, CheckState)> = spec
            .tracking
            .iter()
            .filter_map(|t| match &t.source {
                TrackSource::Check(name) => Some((
                    name.clone(),
                    self.checks.get(name).cloned().unwrap_or(CheckState::Down),
                )),
                TrackSource::Interface(name) => Some((
                    format!("interface {name}"),
                    if self.links.get(name).copied().unwrap_or(false) {
                        CheckState::Up
                    } else {
                        CheckState::Down
                    },
                )),
                TrackSource::Process(name) => Some((
                    format!("process {name}"),
                    match self.processes.get(name) {
                        Some(true) => CheckState::Up,
                        Some(false) => CheckState::Down,
                        None => CheckState::Init,
                    },
                )),
                TrackSource::File(_) => None,
            })
            .collect();
        let tracked: Vec<Tracked<'_>> = spec
            .tracking
            .iter()
            .filter(|t| !matches!(t.source, TrackSource::File(_)))
            .zip(&states)
            .map(|(t, (name, state))| Tracked {
                name,
                weight: t.weight,
                reverse: t.reverse,
                state,
            })
            .collect();
        track::effective_with_files(spec.protocol.priority, &tracked, &files)
    }

    /// Apply the tracking result to one instance, and its Fault to its sync group.
    fn apply_tracking(&mut self, now: Instant, id: InstanceId) {
        let Some(slot) = self.slot(id) else {
            return;
        };
        let effective = self.evaluate(&slot.spec);
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let was_faulted = slot.tracking_fault.is_some();
        let mut changed = None;
        match effective {
            Effective::Priority(p) => {
                slot.tracking_fault = None;
                let before = slot.core.priority();
                slot.core.set_priority(now, p);
                let after = slot.core.priority();
                if before != after && slot.core.fault().is_none() {
                    changed = Some(Event::PriorityChanged {
                        instance: id,
                        state: slot.core.state(),
                        from: before,
                        to: after,
                    });
                }
            }
            Effective::Fault(reasons) => {
                let why = reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                slot.tracking_fault = Some(why);
            }
        }
        let faulted = slot.tracking_fault.is_some();
        if let Some(event) = changed {
            self.outputs.push_back(Output::Event(event));
        }
        if faulted != was_faulted {
            sync_group::propagate_fault(self, now, id);
        }
        self.sync_fault(now, id);
    }

    /// Enter or leave Fault from the union of the instance's own and its group's faults.
    fn sync_fault(&mut self, now: Instant, id: InstanceId) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let why = match (&slot.tracking_fault, &slot.group_fault) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(g)) => Some(format!("sync group: {g}")),
            (None, None) => None,
        };
        match why {
            Some(why) if slot.core.fault() != Some(why.as_str()) => {
                slot.core.set_fault(now, true, why)
            }
            Some(_) => {}
            None if slot.core.fault().is_some() => slot.core.set_fault(now, false, ""),
            None => {}
        }
    }

    fn resync_groups(&mut self, now: Instant) {
        sync_group::resync(self, now);
    }

    // ----------------------------------------------------------------------------------
    // Actions of the cores

    /// Turn every pending core action into outputs, applying the cross-instance rules they
    /// trigger (which may give other cores actions), until every core is drained.
    fn pump(&mut self, now: Instant) {
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut progressed = false;
            for index in 0..self.slots.len() {
                let id = InstanceId(u32::try_from(index).unwrap_or(u32::MAX));
                while let Some(action) = self.slot_mut(id).and_then(|s| s.core.poll_action()) {
                    progressed = true;
                    self.on_action(now, id, action);
                }
            }
            if !progressed {
                return;
            }
        }
        debug_assert!(false, "router pump did not converge");
    }

    fn on_action(&mut self, now: Instant, id: InstanceId, action: Action) {
        // Borrow the slot through its field so outputs can be pushed beside it.
        let Some(slot) = self.slots.get_mut(id.index()).and_then(Option::as_mut) else {
            return;
        };
        match action {
            Action::SendAdvert(advert) => {
                let src = slot.spec.protocol.primary_addr;
                let primary = slot.spec.primary;
                for path in slot.spec.paths() {
                    for dst in &slot.spec.destinations {
                        self.outputs.push_back(Output::Transmit(Transmit {
                            instance: id,
                            path,
                            heartbeat: path != primary,
                            src,
                            dst: *dst,
                            payload: codec::encode(&advert, src, *dst),
                        }));
                    }
                }
            }
            Action::AddVips => {
                let vips = slot.spec.vips.clone();
                let routes = slot.spec.routes.clone();
                self.outputs
                    .push_back(Output::AddVips { instance: id, vips });
                if !routes.is_empty() {
                    self.outputs.push_back(Output::AddRoutes {
                        instance: id,
                        routes,
                    });
                }
            }
            Action::DelVips => {
                let vips = slot.spec.vips.clone();
                let routes = slot.spec.routes.clone();
                if !routes.is_empty() {
                    self.outputs.push_back(Output::DelRoutes {
                        instance: id,
                        routes,
                    });
                }
                self.outputs
                    .push_back(Output::DelVips { instance: id, vips });
            }
            Action::SendGarp { repeat } => {
                let vips = slot.spec.vips.clone();
                self.announce(now, id, BurstKind::State, vips, Some(repeat));
            }
            Action::StateChanged { from, to, reason } => {
                slot.reported = to;
                if to != State::Master {
                    slot.announcements.clear();
                }
                let alarm = if matches!(to, State::Fault | State::Initialize) {
                    slot.split_brain.reset()
                } else {
                    None
                };
                let priority = slot.core.priority();
                self.outputs.push_back(Output::Event(Event::StateChanged {
                    instance: id,
                    from,
                    to,
                    reason: reason.clone(),
                    priority,
                }));
                self.on_alarm(id, alarm);
                let hook = match to {
                    State::Master => Some(HookState::Master),
                    State::Backup => Some(HookState::Backup),
                    State::Fault => Some(HookState::Fault),
                    State::Initialize => None,
                };
                if let Some(state) = hook {
                    self.outputs.push_back(Output::Hook(Hook {
                        target: HookTarget::Instance(id),
                        state,
                        priority,
                    }));
                }
                sync_group::on_state_changed(self, now, id, from, to, &reason);
            }
            Action::Notice(notice) => {
                let lower_router_heard = matches!(notice, Notice::LowerPriorityAdvert { .. });
                self.outputs.push_back(Output::Event(Event::Notice {
                    instance: id,
                    notice,
                }));
                if lower_router_heard {
                    sync_group::on_lower_priority_advert(self, now, id);
                }
            }
            Action::WantMaster(want) => {
                if want {
                    self.outputs
                        .push_back(Output::Event(Event::HeldByGroup { instance: id }));
                    sync_group::on_want_master(self, now, id);
                }
            }
        }
    }

    /// Start a gratuitous ARP / NA burst of `vips` (`repeat`: the burst size; `None`: the
    /// instance's `garp_master_repeat`), emitting what is due now.
    fn announce(
        &mut self,
        now: Instant,
        id: InstanceId,
        kind: BurstKind,
        vips: Vec<V>,
        repeat: Option<u32>,
    ) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let repeat = repeat.unwrap_or(slot.spec.protocol.garp.master_repeat);
        let interval = slot.spec.announce_interval;
        let due = slot
            .announcements
            .start(now, kind, vips.clone(), repeat, interval);
        for _ in 0..due {
            self.outputs.push_back(Output::Announce {
                instance: id,
                vips: vips.clone(),
            });
        }
    }

    fn on_alarm(&mut self, id: InstanceId, alarm: Option<Alarm>) {
        let Some(alarm) = alarm else {
            return;
        };
        let Some(slot) = self.slot(id) else {
            return;
        };
        let priority = slot.core.priority();
        let state = match alarm {
            Alarm::Raised { .. } => HookState::SplitBrain,
            Alarm::Cleared => HookState::SplitBrainCleared,
        };
        self.outputs.push_back(Output::Event(Event::SplitBrain {
            instance: id,
            alarm,
        }));
        self.outputs.push_back(Output::Hook(Hook {
            target: HookTarget::Instance(id),
            state,
            priority,
        }));
    }
}

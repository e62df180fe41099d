//! The router driver: the one task that owns the node's sans-IO [`Router`] and carries its
//! outputs out. It is the only writer of VRRP state and of the instances' status entries.
//!
//! Inputs, in the order a `biased` select polls them: the router's next deadline (so a
//! flood of datagrams never delays an advert), commands from the daemon (reload, shutdown),
//! link-state changes, check-state changes, then datagrams from the sockets' receive tasks
//! (their own bounded queue, separate from commands, so a flood cannot block a reload).
//! After every input, every [`Output`] is performed in order: adverts via the path's socket,
//! VIPs via netlink, gratuitous ARP / NA via the instance's packet socket, notify hooks via
//! the instance's (or group's) hook queue, log lines in the instance's span. The VIPs of a
//! `no_accept` instance enter the accept-mode set of the nftables table
//! ([`crate::net::firewall`]) before they are added and leave it after they are removed.
//!
//! Under systemd the driver also sends the watchdog keep-alive, as one more input of its
//! loop (so a hung loop stops the pings: [`crate::systemd::watchdog`]), and the status line
//! when an instance's state or a check's verdict changed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, info, warn, Instrument, Span};

use super::links::Links;
use super::plan::InstanceIo;
use crate::alerts::Alerts;
use crate::checks::CheckUpdate;
use crate::control::{InstanceStatus, PathStatus, StatusBoard, TransitionCount};
use crate::net::firewall::SharedFirewall;
use crate::net::netlink::Netlink;
use crate::net::socket::Received;
use crate::notify::{Notifier, NotifyKind, NotifyScripts, NotifyState};
use crate::procs::ProcessStates;
use crate::systemd::status::{self as service_status, CheckCounts};
use crate::systemd::watchdog::Watchdog;
use crate::systemd::ServiceManager;
use wasmalived_config::route::VirtualEntry;
use wasmalived_config::vip::VipSpec;
use wasmalived_proto::router::split_brain::Alarm;
use wasmalived_proto::router::sync_group::SyncGroupSpec;
use wasmalived_proto::router::{
    Event, Hook, HookState, HookTarget, InstanceId, InstanceKey, InstanceSpec, InstanceView,
    Output, PathId, Router, Transmit, UpsertError,
};
use wasmalived_proto::vrrp::{DropReason, Family, Notice, RxDrop, Version};

/// Datagrams queued for the driver; beyond this a receive task drops (and counts) them.
pub const DATAGRAM_QUEUE: usize = 1024;

/// A datagram from a socket's receive task.
#[derive(Debug)]
pub struct Datagram {
    /// The socket's interface.
    pub path: PathId,
    /// The socket's family.
    pub family: Family,
    /// What arrived, or why its IP layer was unusable.
    pub packet: Result<Received, RxDrop>,
    /// Datagrams the receive task dropped since the last one it could queue (queue full).
    pub queue_full_before: u64,
}

/// Every interface by name (missing = down).
pub type LinkStates = watch::Receiver<Links>;

/// The last state each running `vrrp_instance` reported, by name (an instance that has not
/// reported one yet, or was removed, is absent). Followed by the connection sync.
pub type InstanceStates = std::collections::BTreeMap<String, NotifyState>;

/// What the daemon asks of the driver.
#[derive(Debug)]
pub enum Command {
    /// Start an instance or reconfigure the running one with the same key. `io` is required
    /// for a new instance; `None` keeps the running instance's I/O.
    Upsert {
        /// The router's view.
        spec: Box<InstanceSpec<VipSpec, VirtualEntry>>,
        /// Sockets, MAC, hooks.
        io: Option<Box<InstanceIo>>,
        /// The router's answer.
        reply: oneshot::Sender<Result<(), UpsertError>>,
    },
    /// Stop and remove every instance whose key is not in `keep`.
    Retain {
        /// Keys that stay.
        keep: HashSet<InstanceKey>,
        /// Signalled once the removed instances released.
        done: oneshot::Sender<()>,
    },
    /// Replace the sync groups and their notify hooks.
    SyncGroups {
        /// Groups by member names.
        groups: Vec<SyncGroupSpec>,
        /// Each group's hooks, by group name.
        notify: HashMap<String, NotifyScripts>,
    },
    /// The checks that run now (every tracked `vrrp_script` that started).
    Checks(Vec<(String, watch::Receiver<CheckUpdate>)>),
    /// Put the instance named `instance` in maintenance or take it out (the router keeps
    /// the name for an instance that starts later).
    Maintenance {
        /// The `vrrp_instance` name.
        instance: String,
        /// On or off.
        on: bool,
        /// Whether an instance of that name runs now.
        reply: oneshot::Sender<bool>,
    },
    /// The integer value of a `track_file` now (read at start-up, then on each change).
    TrackFile {
        /// The `track_file` name.
        name: String,
        /// Its value (keepalived's reading of the file).
        value: i64,
    },
    /// Where state and priority changes are also reported: notify FIFOs, alert mails.
    Alerts(Arc<Alerts>),
    /// Release every instance (priority 0, VIPs removed, `notify_stop` run), then stop.
    Shutdown(oneshot::Sender<()>),
}

/// The daemon's handle on the driver task.
#[derive(Debug)]
pub struct DriverHandle {
    /// Commands.
    pub commands: mpsc::Sender<Command>,
    /// The VIPs this node holds now.
    pub held_vips: watch::Receiver<BTreeSet<IpAddr>>,
    /// The instances' states.
    pub instance_states: watch::Receiver<InstanceStates>,
}

/// What the driver hears besides its commands.
#[derive(Debug)]
pub struct Inputs {
    /// Received adverts (see [`DATAGRAM_QUEUE`]).
    pub datagrams: mpsc::Receiver<Datagram>,
    /// Interface states ([`super::links`]).
    pub links: LinkStates,
    /// `vrrp_track_process` quorum states ([`crate::procs`]).
    pub processes: watch::Receiver<ProcessStates>,
}

/// Record `name`'s new `state` for [`InstanceStates`]' followers (the split-brain
/// notifications are not states; a stopped instance leaves the map).
fn publish_state(states: &watch::Sender<InstanceStates>, name: &str, state: NotifyState) {
    match state {
        NotifyState::Master | NotifyState::Backup | NotifyState::Fault => {
            states.send_if_modified(|map| map.insert(name.to_owned(), state) != Some(state));
        }
        NotifyState::Stop => {
            states.send_if_modified(|map| map.remove(name).is_some());
        }
        NotifyState::SplitBrain | NotifyState::SplitBrainCleared => {}
    }
}

/// Start the driver on its [`Inputs`]; `service` receives the watchdog pings and status
/// lines. The task's handle is for supervision: it only ends after [`Command::Shutdown`], or
/// by a panic.
pub fn spawn(
    inputs: Inputs,
    netlink: Arc<Netlink>,
    board: StatusBoard,
    grace: Duration,
    service: ServiceManager,
    firewall: SharedFirewall,
) -> (DriverHandle, JoinHandle<()>) {
    let (commands, command_rx) = mpsc::channel(16);
    let (check_changed, check_changed_rx) = mpsc::channel(64);
    let (held_vips, held_vips_rx) = watch::channel(BTreeSet::new());
    let (instance_states, instance_states_rx) = watch::channel(InstanceStates::new());
    let Inputs {
        datagrams,
        links,
        processes,
    } = inputs;
    let driver = Driver {
        router: Router::new(),
        live: HashMap::new(),
        groups: HashMap::new(),
        checks: HashMap::new(),
        check_forwarders: JoinSet::new(),
        check_changed,
        links,
        links_open: true,
        link_names: HashSet::new(),
        processes,
        processes_open: true,
        process_names: HashSet::new(),
        netlink,
        firewall,
        board,
        grace,
        dirty: BTreeSet::new(),
        shutting_down: false,
        path_drops_published: 0,
        stop_hooks: Vec::new(),
        held_vips,
        instance_states,
        watchdog: Watchdog::new(service.clone()),
        service,
        service_status: String::new(),
        service_status_stale: true,
        alerts: Arc::new(Alerts::default()),
    };
    let join = tokio::spawn(
        driver
            .run(command_rx, datagrams, check_changed_rx)
            .instrument(tracing::info_span!("router")),
    );
    (
        DriverHandle {
            commands,
            held_vips: held_vips_rx,
            instance_states: instance_states_rx,
        },
        join,
    )
}

/// One running instance's I/O, and the state changes it made.
struct Live {
    io: InstanceIo,
    notifier: Notifier,
    span: Span,
    transitions: Transitions,
    /// Its VIPs on the interfaces now (added and not removed since).
    held: BTreeSet<IpAddr>,
}

/// State changes by (from, to, reason kind), counted as the router reports them.
type Transitions = std::collections::BTreeMap<(String, String, &'static str), u64>;

struct Driver {
    router: Router<VipSpec, VirtualEntry>,
    live: HashMap<InstanceId, Live>,
    groups: HashMap<String, Notifier>,
    checks: HashMap<String, watch::Receiver<CheckUpdate>>,
    /// One task per check: sends its name to `check_changed` when its state changes.
    check_forwarders: JoinSet<()>,
    check_changed: mpsc::Sender<String>,
    links: LinkStates,
    links_open: bool,
    /// The interfaces the last link update named.
    link_names: HashSet<String>,
    /// `vrrp_track_process` quorum states ([`crate::procs`]).
    processes: watch::Receiver<ProcessStates>,
    processes_open: bool,
    /// The processes the last update named.
    process_names: HashSet<String>,
    netlink: Arc<Netlink>,
    /// The accept-mode sets (RFC 5798 §6.1) of the VRRP nftables table.
    firewall: SharedFirewall,
    board: StatusBoard,
    grace: Duration,
    /// Instances whose status entry is stale.
    dirty: BTreeSet<InstanceId>,
    /// Set by [`Driver::shutdown`]: `notify_stop` hooks are then waited for.
    shutting_down: bool,
    /// Path drops already on the status board.
    path_drops_published: u64,
    /// `notify_stop` runs to wait for (shutdown only): the hook queue and the priority.
    stop_hooks: Vec<(Notifier, u8)>,
    /// The VIPs this node holds (added and not removed since), for the LVS director's
    /// `ha_suspend`.
    held_vips: watch::Sender<BTreeSet<IpAddr>>,
    /// The instances' states, for the connection sync.
    instance_states: watch::Sender<InstanceStates>,
    /// The systemd watchdog's keep-alive schedule (polled by the loop itself).
    watchdog: Watchdog,
    /// systemd, for the status line.
    service: ServiceManager,
    /// The status line last sent.
    service_status: String,
    /// An instance's state or a check's verdict may have changed since.
    service_status_stale: bool,
    /// Notify FIFOs and alert mails of the running configuration.
    alerts: Arc<Alerts>,
}

type Timer = Pin<Box<dyn Future<Output = ()> + Send>>;

fn timer(at: Option<Instant>) -> Timer {
    match at {
        Some(at) => Box::pin(sleep_until_precise(at)),
        None => Box::pin(std::future::pending()),
    }
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut datagrams: mpsc::Receiver<Datagram>,
        mut check_changed: mpsc::Receiver<String>,
    ) {
        // The timer is rebuilt only when the deadline moves, so the fine-grained tail of a
        // sleep is never restarted by unrelated input.
        let mut armed: Option<Instant> = None;
        let mut sleep = timer(None);
        let mut fault = crate::fault::from_env(Instant::now());
        loop {
            inject(&mut fault).await;
            let deadline = self.router.poll_timeout();
            if deadline != armed {
                armed = deadline;
                sleep = timer(deadline);
            }
            tokio::select! {
                biased;
                () = &mut sleep => {
                    let due = armed.take();
                    sleep = timer(None);
                    self.received_before_timeout(due, &mut datagrams).await;
                    self.router.handle_timeout(Instant::now());
                }
                command = commands.recv() => match command {
                    Some(Command::Shutdown(ack)) => {
                        self.shutdown().await;
                        let _ = ack.send(());
                        return;
                    }
                    Some(command) => self.command(command).await,
                    None => break,
                },
                changed = self.links.changed(), if self.links_open => {
                    match changed {
                        Ok(()) => self.sync_links(Instant::now()),
                        Err(_) => self.links_open = false,
                    }
                }
                Some(name) = check_changed.recv() => self.sync_check(Instant::now(), &name),
                changed = self.processes.changed(), if self.processes_open => {
                    match changed {
                        Ok(()) => self.sync_processes(Instant::now()),
                        Err(_) => self.processes_open = false,
                    }
                }
                // Before datagrams: a flood must not starve the keep-alive of a live loop.
                () = self.watchdog.due() => self.watchdog.ping(),
                Some(datagram) = datagrams.recv() => self.datagram(datagram),
            }
            self.perform().await;
            self.publish();
            self.publish_service_status();
        }
        // The daemon went away without a shutdown request: still release.
        self.shutdown().await;
    }

    /// Before acting on a timer that fired at `due`: the adverts already received. After a
    /// stall (the process or host frozen for longer than a Backup waits) the expired
    /// master-down timer and the adverts queued meanwhile are ready at once; taking the timer
    /// first made a Backup whose Master was alive take over for a moment (stability bench,
    /// `advert_int 0.01`). When the timer fires late, the socket readers (woken in the same
    /// reactor pass) get up to [`LATE_TIMER`] to hand over what they read, then whatever is
    /// queued is processed; a received advert re-arms master-down, and `handle_timeout` then
    /// finds nothing due. A timer on time waits for nothing.
    async fn received_before_timeout(
        &mut self,
        due: Option<Instant>,
        datagrams: &mut mpsc::Receiver<Datagram>,
    ) {
        let late = due.is_some_and(|at| Instant::now().saturating_duration_since(at) > LATE_TIMER);
        if late {
            // The readers may run on the other worker: wait for their first datagram, briefly.
            if let Ok(Some(datagram)) = tokio::time::timeout(LATE_TIMER, datagrams.recv()).await {
                self.datagram(datagram);
            }
        }
        while let Ok(datagram) = datagrams.try_recv() {
            self.datagram(datagram);
        }
    }

    async fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Upsert { spec, io, reply } => {
                // Tracking reads link states: the daemon looked new interfaces up just before;
                // and process states: the daemon applied the process rules just before.
                self.sync_links(now);
                self.sync_processes(now);
                let _ = reply.send(self.upsert(now, *spec, io.map(|io| *io)));
            }
            Command::Retain { keep, done } => {
                self.router.retain(now, |key| keep.contains(key));
                self.perform().await;
                let _ = done.send(());
            }
            Command::SyncGroups { groups, notify } => {
                let old = std::mem::take(&mut self.groups);
                for (name, scripts) in notify {
                    let notifier = match old.get(&name) {
                        Some(existing) if existing.scripts() == &scripts => existing.clone(),
                        _ => Notifier::spawn(NotifyKind::Group, name.clone(), scripts),
                    };
                    self.groups.insert(name, notifier);
                }
                self.router.set_sync_groups(now, groups);
            }
            Command::Checks(checks) => self.replace_checks(now, checks),
            Command::TrackFile { name, value } => self.router.set_file_value(now, &name, value),
            Command::Alerts(alerts) => self.alerts = alerts,
            Command::Maintenance {
                instance,
                on,
                reply,
            } => {
                let running = self.router.set_maintenance(now, &instance, on);
                info!(%instance, on, running, "maintenance");
                let _ = reply.send(running);
            }
            Command::Shutdown(_) => {}
        }
        self.dirty.extend(self.live.keys().copied());
        self.service_status_stale = true;
    }

    fn upsert(
        &mut self,
        now: Instant,
        spec: InstanceSpec<VipSpec, VirtualEntry>,
        io: Option<InstanceIo>,
    ) -> Result<(), UpsertError> {
        let existing = self.router.find(&spec.key);
        if existing.is_none() && io.is_none() {
            // The daemon only omits the I/O for a running instance; treat a race as a no-op.
            return Ok(());
        }
        let (name, key) = (spec.name.clone(), spec.key.clone());
        let id = self.router.upsert(now, spec)?;
        if let Some(io) = io {
            match self.live.get_mut(&id) {
                Some(live) => {
                    if live.notifier.scripts() != &io.notify {
                        live.notifier =
                            Notifier::spawn(NotifyKind::Instance, name, io.notify.clone());
                    }
                    live.io = io;
                }
                None => {
                    let span = instance_span(&name, &key);
                    let notifier = Notifier::spawn(NotifyKind::Instance, name, io.notify.clone());
                    span.in_scope(|| info!("instance started"));
                    self.live.insert(
                        id,
                        Live {
                            io,
                            notifier,
                            span,
                            transitions: Transitions::new(),
                            held: BTreeSet::new(),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Take the new set of running checks: read each one's state now, follow its changes.
    fn replace_checks(
        &mut self,
        now: Instant,
        checks: Vec<(String, watch::Receiver<CheckUpdate>)>,
    ) {
        self.check_forwarders.abort_all();
        let names: HashSet<&str> = checks.iter().map(|(n, _)| n.as_str()).collect();
        let gone: Vec<String> = self
            .checks
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.checks.remove(&name);
            self.router.remove_check(now, &name);
        }
        for (name, mut updates) in checks {
            let state = updates.borrow_and_update().state.clone();
            self.router.set_check(now, &name, state);
            let mut follow = updates.clone();
            let tx = self.check_changed.clone();
            let forwarded = name.clone();
            self.check_forwarders.spawn(async move {
                while follow.changed().await.is_ok() {
                    if tx.send(forwarded.clone()).await.is_err() {
                        return;
                    }
                }
            });
            self.checks.insert(name, updates);
        }
    }

    fn sync_check(&mut self, now: Instant, name: &str) {
        if let Some(updates) = self.checks.get_mut(name) {
            let state = updates.borrow_and_update().state.clone();
            self.router.set_check(now, name, state);
            self.dirty.extend(self.live.keys().copied());
            self.service_status_stale = true;
        }
    }

    fn sync_links(&mut self, now: Instant) {
        let links = self.links.borrow_and_update().clone();
        for (name, link) in links.iter() {
            self.router.set_link(now, name, link.up);
        }
        // A deleted interface is down.
        for gone in self.link_names.difference(&links.keys().cloned().collect()) {
            self.router.set_link(now, gone, false);
        }
        self.link_names = links.keys().cloned().collect();
        self.dirty.extend(self.live.keys().copied());
    }

    fn sync_processes(&mut self, now: Instant) {
        let states = self.processes.borrow_and_update().clone();
        for (name, up) in &states {
            self.router.set_process(now, name, *up);
        }
        for gone in self
            .process_names
            .iter()
            .filter(|n| !states.contains_key(*n))
        {
            self.router.remove_process(now, gone);
        }
        self.process_names = states.into_keys().collect();
        self.dirty.extend(self.live.keys().copied());
        self.service_status_stale = true;
    }

    fn datagram(&mut self, datagram: Datagram) {
        let Datagram {
            path,
            family,
            packet,
            queue_full_before,
        } = datagram;
        self.router
            .handle_io_drops(path, family, RxDrop::QueueFull, queue_full_before);
        let packet = match packet {
            Ok(packet) => packet,
            Err(drop) => return self.router.handle_io_drops(path, family, drop, 1),
        };
        if let Some(&vrid) = packet.payload.get(1) {
            // Counters of the instances it may reach change even without outputs.
            let reached = self.router.instances().filter(|v| {
                v.spec.key.family == family
                    && v.spec.key.vrid.get() == vrid
                    && v.spec.paths().any(|p| p == path)
            });
            self.dirty.extend(reached.map(|v| v.id));
        }
        self.router.handle_datagram(
            Instant::now(),
            path,
            packet.src,
            packet.dst,
            packet.ttl_or_hop_limit,
            &packet.payload,
        );
    }

    /// Perform every pending output, in order.
    async fn perform(&mut self) {
        while let Some(output) = self.router.poll_output() {
            if let Some(id) = output_instance(&output) {
                self.dirty.insert(id);
            }
            match output {
                Output::Transmit(transmit) => self.transmit(transmit).await,
                Output::AddVips { instance, vips } => self.vips(instance, &vips, true).await,
                Output::DelVips { instance, vips } => self.vips(instance, &vips, false).await,
                Output::AddRoutes { instance, routes } => {
                    self.routes(instance, routes.iter(), true).await
                }
                // Rules before the routes they select, as keepalived removes them.
                Output::DelRoutes { instance, routes } => {
                    self.routes(instance, routes.iter().rev(), false).await
                }
                Output::Announce { instance, vips } => self.announce(instance, &vips),
                Output::Hook(hook) => self.hook(hook),
                Output::Event(event) => self.event(event),
            }
        }
        // Removed instances and reconfigured accept modes.
        self.sync_no_accept(&[]).await;
    }

    /// The VIPs held in `no_accept` mode, plus `adding` (about to be added), as the
    /// firewall's accept-mode sets.
    async fn sync_no_accept(&self, adding: &[IpAddr]) {
        let vips: BTreeSet<IpAddr> = self
            .live
            .values()
            .filter(|l| l.io.no_accept)
            .flat_map(|l| l.held.iter().copied())
            .chain(adding.iter().copied())
            .collect();
        if let Err(err) = self.firewall.lock().await.set_no_accept(vips).await {
            error!("accept mode not enforced: {err}");
        }
    }

    async fn transmit(&self, t: Transmit) {
        let Some(live) = self.live.get(&t.instance) else {
            return;
        };
        let Some(path) = live.io.socket(t.path) else {
            live.span
                .in_scope(|| error!(path = %t.path, "no socket for this path; advert not sent"));
            return;
        };
        // A heartbeat path sends with the primary link's source (one router to the peers).
        let sent = if t.heartbeat {
            path.socket.send_with_header(&t.payload, t.src, t.dst).await
        } else {
            path.socket.send_from(&t.payload, Some(t.src), t.dst).await
        };
        if let Err(err) = sent {
            live.span.in_scope(|| {
                if t.heartbeat {
                    debug!(path = %path.interface, dst = %t.dst, error = %err, "sending advert on a heartbeat path failed");
                } else {
                    warn!(dst = %t.dst, error = %err, "sending advert failed");
                }
            });
        }
    }

    async fn vips(&mut self, instance: InstanceId, vips: &[VipSpec], add: bool) {
        let Some(live) = self.live.get(&instance) else {
            return;
        };
        let (ifindex, no_accept) = (live.io.ifindex, live.io.no_accept);
        if add && no_accept {
            // RFC 5798 §6.1: not one packet to the VIP is accepted while it comes up.
            let adding: Vec<IpAddr> = vips.iter().map(|v| v.addr).collect();
            self.sync_no_accept(&adding).await;
        }
        for vip in vips {
            let result = if add {
                self.netlink.add_vip(vip, ifindex).await
            } else {
                self.netlink.del_vip(vip, ifindex).await
            };
            match result {
                Ok(()) => {
                    if let Some(live) = self.live.get_mut(&instance) {
                        if add {
                            live.held.insert(vip.addr);
                        } else {
                            live.held.remove(&vip.addr);
                        }
                    }
                    self.held_vips.send_if_modified(|held| {
                        if add {
                            held.insert(vip.addr)
                        } else {
                            held.remove(&vip.addr)
                        }
                    });
                }
                Err(err) => {
                    let what = if add { "adding" } else { "removing" };
                    if let Some(live) = self.live.get(&instance) {
                        live.span.in_scope(
                            || error!(vip = %vip.addr, error = %err, "{what} VIP failed"),
                        );
                    }
                }
            }
        }
        if !add && no_accept {
            self.sync_no_accept(&[]).await;
        }
    }

    /// Install or remove an instance's virtual routes and rules, in the order given.
    async fn routes(
        &self,
        instance: InstanceId,
        entries: impl Iterator<Item = &VirtualEntry>,
        add: bool,
    ) {
        let Some(live) = self.live.get(&instance) else {
            return;
        };
        for entry in entries {
            let result = if add {
                self.netlink.add_entry(entry).await
            } else {
                self.netlink.del_entry(entry).await
            };
            live.span.in_scope(|| match result {
                Ok(()) if add => debug!(%entry, "installed"),
                Ok(()) => debug!(%entry, "removed"),
                Err(err) => {
                    let what = if add { "installing" } else { "removing" };
                    error!(%entry, error = %err, "{what} virtual {} failed", entry.kind());
                }
            });
        }
    }

    fn announce(&self, instance: InstanceId, vips: &[VipSpec]) {
        let Some(live) = self.live.get(&instance) else {
            return;
        };
        let io = &live.io;
        for vip in vips {
            let sent = match vip.addr {
                IpAddr::V4(ip) => io.announcer.send_garp(io.ifindex, io.mac, ip),
                IpAddr::V6(ip) => io.announcer.send_unsolicited_na(io.ifindex, io.mac, ip),
            };
            if let Err(err) = sent {
                live.span
                    .in_scope(|| warn!(vip = %vip.addr, error = %err, "gratuitous ARP/NA failed"));
            }
        }
    }

    fn hook(&mut self, hook: Hook) {
        let state = match hook.state {
            HookState::Master => NotifyState::Master,
            HookState::Backup => NotifyState::Backup,
            HookState::Fault => NotifyState::Fault,
            HookState::Stop => NotifyState::Stop,
            HookState::SplitBrain => NotifyState::SplitBrain,
            HookState::SplitBrainCleared => NotifyState::SplitBrainCleared,
        };
        let priority = hook.priority.get();
        match &hook.target {
            HookTarget::Instance(id) => {
                if let Some(live) = self.live.get(id) {
                    let name = &live.io.name;
                    self.alerts
                        .state_changed(NotifyKind::Instance, name, state, priority);
                    publish_state(&self.instance_states, name, state);
                }
            }
            HookTarget::Group(name) => {
                self.alerts
                    .state_changed(NotifyKind::Group, name, state, priority)
            }
        }
        let notifier = match &hook.target {
            HookTarget::Instance(id) => self.live.get(id).map(|l| &l.notifier),
            HookTarget::Group(name) => self.groups.get(name),
        };
        let Some(notifier) = notifier else {
            return;
        };
        if state == NotifyState::Stop && self.shutting_down {
            // Shutdown waits (bounded) for every notify_stop; a reload does not.
            self.stop_hooks.push((notifier.clone(), priority));
        } else {
            notifier.notify(state, priority);
        }
    }

    fn event(&mut self, event: Event) {
        let span = |id: &InstanceId| {
            self.live
                .get(id)
                .map(|l| l.span.clone())
                .unwrap_or_else(Span::current)
        };
        match event {
            Event::StateChanged {
                instance,
                from,
                to,
                reason,
                priority,
            } => {
                self.service_status_stale = true;
                span(&instance).in_scope(
                    || info!(%from, %to, %reason, priority = priority.get(), "state change"),
                );
                if let Some(live) = self.live.get_mut(&instance) {
                    *live
                        .transitions
                        .entry((from.to_string(), to.to_string(), reason.name()))
                        .or_default() += 1;
                }
            }
            Event::Notice { instance, notice } => span(&instance).in_scope(|| log_notice(&notice)),
            Event::Dropped {
                instance,
                path,
                src,
                drop,
                count,
            } => {
                let span = instance.map(|id| span(&id)).unwrap_or_else(Span::current);
                let src = src.map(|s| s.to_string()).unwrap_or_default();
                span.in_scope(|| {
                    if drop == RxDrop::QueueFull {
                        warn!(%path, count, "router queue full: datagrams dropped (a flood?)")
                    } else {
                        debug!(%path, %src, reason = %drop.reason(), %drop, count, "advert dropped")
                    }
                });
            }
            Event::HeldByGroup { instance } => span(&instance).in_scope(|| {
                info!("master down, held by the sync group until every member wants MASTER")
            }),
            Event::GroupSynced {
                group,
                instance,
                to,
            } => span(&instance).in_scope(|| info!(%group, %to, "sync group follows this member")),
            Event::SplitBrain { instance, alarm } => span(&instance).in_scope(|| match alarm {
                Alarm::Raised { other } => {
                    error!(%other, "split brain: another Master advertises this VRID")
                }
                Alarm::Cleared => info!("split brain cleared: one Master again"),
            }),
            Event::ConfigAdjusted { instance, warning } => {
                span(&instance).in_scope(|| warn!(%warning, "configuration adjusted"))
            }
            Event::VipsUpdated {
                instance,
                added,
                removed,
            } => {
                span(&instance).in_scope(|| info!(added, removed, "reload: VIPs updated in place"))
            }
            Event::PriorityChanged {
                instance,
                state,
                from,
                to,
            } => {
                span(&instance).in_scope(|| {
                    info!(
                        from = from.get(),
                        to = to.get(),
                        "effective priority changed"
                    )
                });
                if let Some(live) = self.live.get(&instance) {
                    let master = state == wasmalived_proto::vrrp::State::Master;
                    self.alerts
                        .priority_changed(&live.io.name, master, to.get());
                }
            }
            Event::Removed { instance, name } => {
                self.service_status_stale = true;
                span(&instance).in_scope(|| info!("instance removed"));
                self.live.remove(&instance);
                self.dirty.remove(&instance);
                self.board.remove_instance(&name);
            }
        }
    }

    /// Release every instance, bounded by the grace period.
    async fn shutdown(&mut self) {
        self.shutting_down = true;
        self.router.shutdown(Instant::now());
        self.perform().await;
        let stops = std::mem::take(&mut self.stop_hooks);
        let stops = stops
            .iter()
            .map(|(notifier, priority)| notifier.notify_and_drain(NotifyState::Stop, *priority));
        if tokio::time::timeout(self.grace, futures::future::join_all(stops))
            .await
            .is_err()
        {
            warn!(grace = ?self.grace, "notify_stop hooks did not finish in time");
        }
        for live in self.live.values() {
            self.board.remove_instance(&live.io.name);
        }
        self.check_forwarders.abort_all();
    }

    /// Rewrite the status entries of the instances something touched, and the per-path
    /// drop counters when they changed.
    fn publish(&mut self) {
        for id in std::mem::take(&mut self.dirty) {
            if let Some(view) = self.router.instance(id) {
                let transitions = self.live.get(&id).map(|l| &l.transitions);
                self.board.set_instance(status_of(&view, transitions));
            }
        }
        let total: u64 = self
            .router
            .path_counters()
            .map(|(_, c)| c.total_dropped())
            .sum();
        if total != self.path_drops_published {
            self.path_drops_published = total;
            let paths = self
                .router
                .path_counters()
                .map(|((path, family), counters)| PathStatus {
                    interface: self.interface_of(path),
                    family: family_name(family).into(),
                    counters: counters
                        .drops()
                        .filter(|(_, n)| *n > 0)
                        .map(|(reason, n)| (format!("rx_{}", reason.name()), n))
                        .collect(),
                })
                .collect();
            self.board.set_paths(paths);
        }
    }

    /// Send systemd the status line when an instance's state or a check's verdict may have
    /// changed, and only if the line differs from the last one sent.
    fn publish_service_status(&mut self) {
        if !std::mem::take(&mut self.service_status_stale) || !self.service.is_active() {
            return;
        }
        let checks = CheckCounts {
            up: self
                .checks
                .values()
                .filter(|c| matches!(c.borrow().state, crate::checks::CheckState::Up))
                .count(),
            total: self.checks.len(),
        };
        let states: Vec<(String, String)> = self
            .router
            .instances()
            .map(|v| (v.spec.name.clone(), v.core.state().to_string()))
            .collect();
        let line =
            service_status::summary(states.iter().map(|(n, s)| (n.as_str(), s.as_str())), checks);
        if line != self.service_status {
            self.service.status(&line);
            self.service_status = line;
        }
    }

    /// The interface name of a path, from the instances' sockets.
    fn interface_of(&self, path: PathId) -> String {
        self.live
            .values()
            .find_map(|l| l.io.socket(path).map(|s| s.interface.clone()))
            .unwrap_or_else(|| path.to_string())
    }
}

/// The injected fault, if its time has come: a panic, or a stall (the loop awaits forever).
async fn inject(fault: &mut Option<crate::fault::Fault>) {
    use crate::fault::{Fault, BLOCK_FOR};
    match *fault {
        Some(Fault::PanicRouterAt(at)) => {
            assert!(Instant::now() < at, "injected fault: router driver panic");
        }
        Some(Fault::StallRouterAt(at)) if Instant::now() >= at => {
            error!("injected fault: the router driver stalls");
            std::future::pending::<()>().await;
        }
        Some(Fault::BlockRouterAt(at)) if Instant::now() >= at => {
            *fault = None;
            error!(
                ?BLOCK_FOR,
                "injected fault: the router driver blocks its thread"
            );
            std::thread::sleep(BLOCK_FOR);
        }
        _ => {}
    }
}

/// The instance an output concerns, if any.
fn output_instance<V, R>(output: &Output<V, R>) -> Option<InstanceId> {
    match output {
        Output::Transmit(t) => Some(t.instance),
        Output::AddVips { instance, .. }
        | Output::DelVips { instance, .. }
        | Output::AddRoutes { instance, .. }
        | Output::DelRoutes { instance, .. }
        | Output::Announce { instance, .. } => Some(*instance),
        Output::Hook(Hook {
            target: HookTarget::Instance(id),
            ..
        }) => Some(*id),
        Output::Hook(_) => None,
        Output::Event(event) => match event {
            Event::StateChanged { instance, .. }
            | Event::Notice { instance, .. }
            | Event::HeldByGroup { instance }
            | Event::GroupSynced { instance, .. }
            | Event::SplitBrain { instance, .. }
            | Event::ConfigAdjusted { instance, .. }
            | Event::VipsUpdated { instance, .. }
            | Event::PriorityChanged { instance, .. } => Some(*instance),
            Event::Dropped { instance, .. } => *instance,
            Event::Removed { .. } => None,
        },
    }
}

fn instance_span(name: &str, key: &InstanceKey) -> Span {
    tracing::info_span!(
        "vrrp",
        instance = %name,
        iface = %key.interface,
        vrid = key.vrid.get(),
        af = family_name(key.family),
    )
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// The status entry of one instance: state, priorities, Fault reasons, every counter and
/// the state changes.
fn status_of(
    view: &InstanceView<'_, VipSpec, VirtualEntry>,
    transitions: Option<&Transitions>,
) -> InstanceStatus {
    let core = view.core;
    let counters = core.counters();
    let mut map: std::collections::BTreeMap<String, u64> = counters
        .drops()
        .map(|(reason, count)| (format!("rx_{}", reason.name()), count))
        .collect();
    let named = [
        (
            "rx_auth_mismatch",
            counters.dropped(DropReason::AuthType) + counters.dropped(DropReason::AuthFailure),
        ),
        ("rx_adverts", counters.adverts_received),
        ("tx_adverts", counters.adverts_sent),
        ("rx_priority_zero", counters.priority_zero_received),
        ("tx_priority_zero", counters.priority_zero_sent),
        ("rx_checksum_pseudo_header", counters.checksum_pseudo_header),
        ("rx_checksum_plain", counters.checksum_plain),
        ("rx_address_list_mismatch", counters.address_list_mismatch),
        ("became_master", counters.became_master),
        ("released_master", counters.released_master),
        ("split_brain_events", view.split_brain_events),
    ];
    map.extend(named.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let protocol = &view.spec.protocol;
    InstanceStatus {
        name: view.spec.name.clone(),
        state: core.state().to_string(),
        interface: view.spec.key.interface.clone(),
        vrid: protocol.vrid.get(),
        version: match protocol.version {
            Version::V2 => 2,
            Version::V3 => 3,
        },
        family: family_name(protocol.family).into(),
        priority: protocol.priority.get(),
        effective_priority: core.priority().get(),
        fault_reasons: core.fault().map(|f| vec![f.to_owned()]).unwrap_or_default(),
        split_brain: view.split_brain,
        maintenance: view.maintenance,
        counters: map,
        transitions: transitions
            .into_iter()
            .flatten()
            .map(|((from, to, reason), count)| TransitionCount {
                from: from.clone(),
                to: to.clone(),
                reason: (*reason).to_owned(),
                count: *count,
            })
            .collect(),
    }
}

fn log_notice(notice: &Notice) {
    match notice {
        Notice::AddressListMismatch { from } => {
            debug!(%from, "advert's address list differs from ours (RFC 5798 §7.1)")
        }
        Notice::IntervalDiffers { from, theirs, ours } => {
            debug!(%from, ?theirs, ?ours, "Master advertises another interval; adopted")
        }
        Notice::OwnerConflict { from } => warn!(%from, "another router claims address ownership"),
        Notice::LowerPriorityAdvert { from, priority } => {
            debug!(%from, priority = priority.get(), "lower-priority advert while Master")
        }
        Notice::ResumedAfterStall { late } => warn!(
            ?late,
            "advert sent late: the daemon or the host was stalled (a Backup may have taken over); announcing the VIPs again"
        ),
    }
}

/// A timer that fires this much after its deadline was held up (a stalled process or host):
/// the socket readers get up to this long to hand over what they received before it is
/// acted on ([`Driver::received_before_timeout`]).
const LATE_TIMER: Duration = Duration::from_millis(1);

/// Sleep until `at` with sub-millisecond precision: tokio's timer wheel has a 1 ms resolution
/// and rounds deadlines up, which made every takeover ~1 ms late against the protocol bound
/// (measured: +1.2–1.7 ms, keepalived +0.2–0.3 ms). A timerfd wakes this runtime thread itself
/// ([`super::precise_timer`]); the wheel is the fallback if one cannot be made.
async fn sleep_until_precise(at: Instant) {
    if let Err(err) = super::precise_timer::sleep_until(at).await {
        debug!("no timerfd for the protocol timer ({err}); using the runtime's timer");
        tokio::time::sleep_until(at.into()).await;
    }
}

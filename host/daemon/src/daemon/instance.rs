//! The task that owns one VRRP instance: it feeds the sans-IO core with packets, tracking
//! results and timeouts, and carries out the core's actions (adverts, VIPs, GARP/NA, notify,
//! status) in order. Nothing else touches the instance's state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn, Instrument};

use super::plan::InstancePlan;
use super::split_brain::{Alarm, SplitBrainDetector};
use crate::control::{InstanceStatus, StatusBoard};
use crate::net::garp::Announcer;
use crate::net::netlink::Netlink;
use crate::net::socket::Received;
use crate::notify::{Notifier, NotifyKind, NotifyState};
use std::sync::Arc;
use wasmalived_proto::vrrp::{self, Action, Family, Instance, Notice, Priority, State, Version};

/// Depth of an instance's inbox; packets beyond it are dropped (and counted by the sender).
pub const INBOX_DEPTH: usize = 256;

/// What tracking (checks, interfaces) says about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracking {
    /// Run with this effective priority.
    Priority(u8),
    /// Stay in Fault for these reasons.
    Fault(String),
}

/// Messages into an instance task.
#[derive(Debug)]
pub enum InstanceMsg {
    /// A VRRP packet for this VRID arrived on the instance's socket.
    Packet(Received),
    /// Tracking changed.
    Tracking(Tracking),
    /// Apply a changed configuration in place (reload), keeping the protocol state.
    Reconfigure(Box<InstancePlan>),
    /// Force a state for sync-group membership: `Some(why)` = a member faulted.
    GroupFault(Option<String>),
    /// Sync-group membership: while `true`, a Backup whose master-down timer fires only
    /// reports [`GroupEvent::WantMaster`] and waits for [`InstanceMsg::ForceMaster`].
    GroupHold(bool),
    /// keepalived `vrrp_sync_master`: another member became Master; a Backup follows.
    ForceMaster,
    /// keepalived `vrrp_sync_backup`: another member left Master; a Master follows.
    ForceBackup,
    /// Stop: priority-0 advert and VIP removal if Master, run `notify_stop`, then ack.
    Shutdown(oneshot::Sender<()>),
}

/// A running instance task.
#[derive(Debug)]
pub struct InstanceTask {
    /// Inbox.
    pub tx: mpsc::Sender<InstanceMsg>,
    /// The task.
    pub join: JoinHandle<()>,
}

/// What instances tell the sync-group coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// Whether the instance's *own* tracking faults it (sent whenever that changes).
    OwnFault {
        /// Instance name.
        instance: String,
        /// Faulted by its own tracking.
        faulted: bool,
    },
    /// The group membership changed (start-up, reload): re-evaluate every group.
    Resync,
    /// A held Backup would (`true`) or would no longer (`false`) take over: keepalived's
    /// `wantstate` MASTER.
    WantMaster {
        /// Instance name.
        instance: String,
        /// Wants to be Master.
        want: bool,
    },
    /// The instance changed state.
    State {
        /// Instance name.
        instance: String,
        /// New state.
        state: State,
        /// The coordinator caused it ([`InstanceMsg::ForceMaster`]/[`InstanceMsg::ForceBackup`]);
        /// such transitions do not trigger the sync rules again.
        forced: bool,
    },
}

/// Where instances send [`GroupEvent`]s.
pub type StateEvents = mpsc::UnboundedSender<GroupEvent>;

/// Start the task owning `plan`'s instance.
pub fn spawn(
    plan: InstancePlan,
    initial: Tracking,
    netlink: Arc<Netlink>,
    board: StatusBoard,
    state_events: StateEvents,
) -> InstanceTask {
    let (tx, rx) = mpsc::channel(INBOX_DEPTH);
    let family = match plan.vrrp.family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    };
    let span = tracing::info_span!(
        "vrrp",
        instance = %plan.name,
        iface = %plan.interface,
        vrid = plan.vrrp.vrid.get(),
        af = family
    );
    let join = tokio::spawn(
        async move {
            let notifier =
                Notifier::spawn(NotifyKind::Instance, plan.name.clone(), plan.notify.clone());
            let advert_int = plan.vrrp.advert_int.duration();
            match Instance::new(plan.vrrp.clone()) {
                Ok(core) => {
                    let mut task = Task {
                        plan,
                        core,
                        netlink,
                        board,
                        notifier,
                        state_events,
                        tracking_fault: None,
                        group_fault: None,
                        garp_task: None,
                        split_brain: SplitBrainDetector::new(advert_int),
                        rx_other_peer: 0,
                        reported_fault_once: false,
                    };
                    task.run(rx, initial).await;
                }
                Err(err) => error!(error = %err, "instance refused by the protocol core"),
            }
        }
        .instrument(span),
    );
    InstanceTask { tx, join }
}

struct Task {
    plan: InstancePlan,
    core: Instance,
    netlink: Arc<Netlink>,
    board: StatusBoard,
    notifier: Notifier,
    state_events: StateEvents,
    tracking_fault: Option<String>,
    group_fault: Option<String>,
    garp_task: Option<JoinHandle<()>>,
    split_brain: SplitBrainDetector,
    rx_other_peer: u64,
    reported_fault_once: bool,
}

impl Task {
    async fn run(&mut self, mut rx: mpsc::Receiver<InstanceMsg>, initial: Tracking) {
        for warning in self.core.config_warnings() {
            warn!(%warning, "configuration adjusted");
        }
        let now = Instant::now();
        self.apply_tracking(now, initial);
        self.core.start(now);
        self.drain().await;
        loop {
            let deadline = match (self.core.poll_timeout(), self.split_brain.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match deadline {
                    Some(at) => sleep_until_precise(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    if let InstanceMsg::Shutdown(ack) = msg {
                        self.shutdown().await;
                        let _ = ack.send(());
                        return;
                    }
                    self.handle(msg);
                }
                () = sleep => {
                    let now = Instant::now();
                    self.core.handle_timeout(now);
                    let alarm = self.split_brain.tick(now);
                    self.on_alarm(alarm);
                }
            }
            self.drain().await;
        }
        // Inbox closed without a shutdown request (instance removed abruptly): still release.
        self.shutdown().await;
    }

    fn handle(&mut self, msg: InstanceMsg) {
        let now = Instant::now();
        match msg {
            InstanceMsg::Packet(packet) => self.receive(now, packet),
            InstanceMsg::Tracking(tracking) => self.apply_tracking(now, tracking),
            InstanceMsg::GroupFault(fault) => {
                self.group_fault = fault;
                self.sync_fault(now);
            }
            InstanceMsg::GroupHold(hold) => self.core.set_group_hold(hold),
            InstanceMsg::ForceMaster => self.core.force_master(now),
            InstanceMsg::ForceBackup => self.core.force_backup(now),
            InstanceMsg::Reconfigure(plan) => self.reconfigure(*plan),
            InstanceMsg::Shutdown(_) => {}
        }
    }

    fn receive(&mut self, now: Instant, packet: Received) {
        // keepalived: with unicast peers, adverts from anyone else are ignored.
        if !self.plan.peers.is_empty() && !self.plan.peers.contains(&packet.src) {
            self.rx_other_peer += 1;
            debug!(src = %packet.src, "advert from an address that is not a unicast peer");
            return;
        }
        let result = self.core.handle_packet(
            now,
            packet.src,
            packet.dst,
            packet.ttl_or_hop_limit,
            &packet.payload,
        );
        match result {
            Ok(()) => {
                // Priority is the third octet in VRRPv2 and v3 alike.
                let priority = packet.payload.get(2).copied().unwrap_or(0);
                let alarm = self
                    .split_brain
                    .observe(now, self.core.state(), packet.src, priority);
                self.on_alarm(alarm);
            }
            Err(drop) => {
                debug!(src = %packet.src, reason = %drop.reason(), %drop, "advert dropped")
            }
        }
    }

    fn on_alarm(&mut self, alarm: Option<Alarm>) {
        let priority = self.core.priority().get();
        match alarm {
            Some(Alarm::Raised { other }) => {
                error!(%other, state = %self.core.state(), "split brain: another Master advertises this VRID");
                self.notifier.notify(NotifyState::SplitBrain, priority);
            }
            Some(Alarm::Cleared) => {
                info!("split brain cleared: one Master again");
                self.notifier
                    .notify(NotifyState::SplitBrainCleared, priority);
            }
            None => {}
        }
    }

    fn apply_tracking(&mut self, now: Instant, tracking: Tracking) {
        let was_faulted = self.tracking_fault.is_some();
        match tracking {
            Tracking::Priority(p) => {
                self.tracking_fault = None;
                self.core.set_priority(now, Priority::new(p));
            }
            Tracking::Fault(why) => self.tracking_fault = Some(why),
        }
        let faulted = self.tracking_fault.is_some();
        if faulted != was_faulted || !self.reported_fault_once {
            self.reported_fault_once = true;
            let _ = self.state_events.send(GroupEvent::OwnFault {
                instance: self.plan.name.clone(),
                faulted,
            });
        }
        self.sync_fault(now);
    }

    /// Enter or leave Fault from the union of tracking and sync-group faults.
    fn sync_fault(&mut self, now: Instant) {
        let why = match (&self.tracking_fault, &self.group_fault) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(g)) => Some(format!("sync group: {g}")),
            (None, None) => None,
        };
        match why {
            Some(why) => {
                if self.core.fault() != Some(why.as_str()) {
                    self.core.set_fault(now, true, why);
                }
            }
            None => {
                if self.core.fault().is_some() {
                    self.core.set_fault(now, false, "");
                }
            }
        }
    }

    fn reconfigure(&mut self, plan: InstancePlan) {
        let was_master = self.core.state() == State::Master;
        let old_vips: Vec<_> = self.plan.all_vips().cloned().collect();
        if plan.vrrp != self.plan.vrrp {
            if let Err(err) = self.core.reconfigure(plan.vrrp.clone()) {
                error!(error = %err, "reload: new protocol configuration refused; keeping the old one");
                return;
            }
        }
        let new_vips: Vec<_> = plan.all_vips().cloned().collect();
        let notify_changed = plan.notify != self.plan.notify;
        self.plan = plan;
        if notify_changed {
            self.notifier = Notifier::spawn(
                NotifyKind::Instance,
                self.plan.name.clone(),
                self.plan.notify.clone(),
            );
        }
        if was_master {
            let added: Vec<_> = new_vips
                .iter()
                .filter(|v| !old_vips.contains(v))
                .cloned()
                .collect();
            let removed: Vec<_> = old_vips
                .iter()
                .filter(|v| !new_vips.contains(v))
                .cloned()
                .collect();
            if !added.is_empty() || !removed.is_empty() {
                info!(
                    added = added.len(),
                    removed = removed.len(),
                    "reload: VIPs updated in place"
                );
            }
            let netlink = Arc::clone(&self.netlink);
            let ifindex = self.plan.ifindex;
            let mac = self.plan.mac;
            let interval = self.plan.garp_interval;
            let repeat = self.plan.vrrp.garp.master_repeat;
            let announcer = self.plan.announcer.clone();
            tokio::spawn(
                async move {
                    for vip in &removed {
                        if let Err(err) = netlink.del_vip(vip, ifindex).await {
                            warn!(error = %err, "reload: removing a VIP failed");
                        }
                    }
                    for vip in &added {
                        if let Err(err) = netlink.add_vip(vip, ifindex).await {
                            warn!(error = %err, "reload: adding a VIP failed");
                        }
                    }
                    announce(&announcer, ifindex, mac, &added, repeat, interval).await;
                }
                .in_current_span(),
            );
        }
        info!("reload: configuration applied");
    }

    /// Carry out every pending action of the core, in order.
    async fn drain(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::SendAdvert(advert) => self.send_advert(&advert).await,
                Action::AddVips => self.install_vips().await,
                Action::DelVips => self.remove_vips().await,
                Action::SendGarp { repeat } => self.send_garp(repeat),
                Action::StateChanged { from, to, reason } => {
                    info!(%from, %to, %reason, priority = self.core.priority().get(), "state change");
                    if to != State::Master {
                        if let Some(task) = self.garp_task.take() {
                            task.abort();
                        }
                    }
                    if matches!(to, State::Fault | State::Initialize) {
                        let alarm = self.split_brain.reset();
                        self.on_alarm(alarm);
                    }
                    let notify = match to {
                        State::Master => Some(NotifyState::Master),
                        State::Backup => Some(NotifyState::Backup),
                        State::Fault => Some(NotifyState::Fault),
                        State::Initialize => None,
                    };
                    if let Some(state) = notify {
                        self.notifier.notify(state, self.core.priority().get());
                    }
                    let _ = self.state_events.send(GroupEvent::State {
                        instance: self.plan.name.clone(),
                        state: to,
                        forced: reason == vrrp::Reason::SyncGroup,
                    });
                }
                Action::Notice(notice) => log_notice(&notice),
                Action::WantMaster(want) => {
                    if want {
                        info!(
                            "master down, held by the sync group until every member wants MASTER"
                        );
                    }
                    let _ = self.state_events.send(GroupEvent::WantMaster {
                        instance: self.plan.name.clone(),
                        want,
                    });
                }
            }
        }
        // Every event is published at once, so `wasmalived status` never lags an advert
        // interval behind the counters (a few small allocations per event).
        self.publish_status();
    }

    async fn send_advert(&self, advert: &vrrp::Advert) {
        for path in &self.plan.heartbeat_paths {
            for dst in &self.plan.destinations {
                let bytes = vrrp::encode(advert, self.plan.src, *dst);
                if let Err(err) = path
                    .socket
                    .send_from(&bytes, Some(self.plan.src), *dst)
                    .await
                {
                    debug!(path = %path.interface, %dst, error = %err, "sending advert on a heartbeat path failed");
                }
            }
        }
        for dst in &self.plan.destinations {
            let bytes = vrrp::encode(advert, self.plan.src, *dst);
            if let Err(err) = self
                .plan
                .socket
                .send_from(&bytes, Some(self.plan.src), *dst)
                .await
            {
                warn!(%dst, error = %err, "sending advert failed");
            }
        }
    }

    async fn install_vips(&self) {
        for vip in self.plan.all_vips() {
            if let Err(err) = self.netlink.add_vip(vip, self.plan.ifindex).await {
                error!(vip = %vip.addr, error = %err, "adding VIP failed");
            }
        }
    }

    async fn remove_vips(&self) {
        for vip in self.plan.all_vips() {
            if let Err(err) = self.netlink.del_vip(vip, self.plan.ifindex).await {
                error!(vip = %vip.addr, error = %err, "removing VIP failed");
            }
        }
    }

    /// One GARP/NA burst for every VIP. The first message per address goes out at once;
    /// with a `vrrp_garp_interval` the rest are paced on their own task.
    fn send_garp(&mut self, repeat: u32) {
        let vips: Vec<_> = self.plan.all_vips().cloned().collect();
        let (ifindex, mac, interval) = (self.plan.ifindex, self.plan.mac, self.plan.garp_interval);
        let announcer = self.plan.announcer.clone();
        if interval.is_zero() {
            for _ in 0..repeat {
                announce_once(&announcer, ifindex, mac, &vips);
            }
            return;
        }
        announce_once(&announcer, ifindex, mac, &vips);
        if repeat > 1 {
            if let Some(task) = self.garp_task.take() {
                task.abort();
            }
            self.garp_task =
                Some(
                    tokio::spawn(
                        async move {
                            announce(&announcer, ifindex, mac, &vips, repeat - 1, interval).await
                        }
                        .in_current_span(),
                    ),
                );
        }
    }

    async fn shutdown(&mut self) {
        let now = Instant::now();
        self.core.shutdown(now);
        self.drain().await;
        self.notifier
            .notify_and_drain(NotifyState::Stop, self.core.priority().get())
            .await;
        self.board.remove_instance(&self.plan.name);
        if let Some(task) = self.garp_task.take() {
            task.abort();
        }
    }

    fn publish_status(&self) {
        let counters = self.core.counters();
        let mut map = BTreeMap::new();
        for (reason, count) in counters.drops() {
            map.insert(format!("rx_{}", reason.name()), count);
        }
        map.insert(
            "rx_auth_mismatch".into(),
            counters.dropped(vrrp::DropReason::AuthType)
                + counters.dropped(vrrp::DropReason::AuthFailure),
        );
        map.insert("rx_adverts".into(), counters.adverts_received);
        map.insert("tx_adverts".into(), counters.adverts_sent);
        map.insert("rx_priority_zero".into(), counters.priority_zero_received);
        map.insert("tx_priority_zero".into(), counters.priority_zero_sent);
        map.insert(
            "rx_checksum_pseudo_header".into(),
            counters.checksum_pseudo_header,
        );
        map.insert("rx_checksum_plain".into(), counters.checksum_plain);
        map.insert(
            "rx_address_list_mismatch".into(),
            counters.address_list_mismatch,
        );
        map.insert("rx_not_unicast_peer".into(), self.rx_other_peer);
        map.insert("became_master".into(), counters.became_master);
        map.insert("split_brain_events".into(), self.split_brain.raised_count);
        self.board.set_instance(InstanceStatus {
            name: self.plan.name.clone(),
            state: self.core.state().to_string(),
            interface: self.plan.interface.clone(),
            vrid: self.plan.vrrp.vrid.get(),
            version: match self.plan.vrrp.version {
                Version::V2 => 2,
                Version::V3 => 3,
            },
            family: match self.plan.vrrp.family {
                Family::V4 => "ipv4".into(),
                Family::V6 => "ipv6".into(),
            },
            priority: self.plan.vrrp.priority.get(),
            effective_priority: self.core.priority().get(),
            fault_reasons: self
                .core
                .fault()
                .map(|f| vec![f.to_owned()])
                .unwrap_or_default(),
            split_brain: self.split_brain.is_raised(),
            counters: map,
        });
    }
}

/// Below this, the rest of a wait is slept on the blocking pool instead of the timer wheel.
const FINE_SLEEP: Duration = Duration::from_millis(2);

/// Sleep until `at` with sub-millisecond precision. tokio's timer wheel has a 1 ms
/// resolution and rounds deadlines up, which made every takeover ~1 ms late against the
/// protocol bound (measured: +1.2–1.7 ms, keepalived +0.2–0.3 ms); so the wheel is used up to
/// [`FINE_SLEEP`] before the deadline and the rest (at most 2 ms, once per protocol
/// deadline) is a `nanosleep` on the blocking pool. The instance task stays responsive
/// meanwhile: this future is one `select!` branch, dropped when a message arrives.
async fn sleep_until_precise(at: Instant) {
    let coarse = at.checked_sub(FINE_SLEEP).unwrap_or(at);
    if coarse > Instant::now() {
        tokio::time::sleep_until(coarse.into()).await;
    }
    let rest = at.saturating_duration_since(Instant::now());
    if rest.is_zero() {
        return;
    }
    if tokio::task::spawn_blocking(move || std::thread::sleep(rest))
        .await
        .is_err()
    {
        tokio::time::sleep_until(at.into()).await;
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
    }
}

/// Send one GARP (IPv4) or unsolicited NA (IPv6) per VIP.
fn announce_once(
    announcer: &Announcer,
    ifindex: u32,
    mac: [u8; 6],
    vips: &[wasmalived_config::vip::VipSpec],
) {
    for vip in vips {
        let sent = match vip.addr {
            IpAddr::V4(ip) => announcer.send_garp(ifindex, mac, ip),
            IpAddr::V6(ip) => announcer.send_unsolicited_na(ifindex, mac, ip),
        };
        if let Err(err) = sent {
            warn!(vip = %vip.addr, error = %err, "gratuitous ARP/NA failed");
        }
    }
}

/// `count` bursts spaced by `interval`.
async fn announce(
    announcer: &Announcer,
    ifindex: u32,
    mac: [u8; 6],
    vips: &[wasmalived_config::vip::VipSpec],
    count: u32,
    interval: Duration,
) {
    for i in 0..count {
        if i > 0 && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        announce_once(announcer, ifindex, mac, vips);
    }
}

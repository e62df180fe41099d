//! The daemon's one process-event source, and `vrrp_track_process` on top of it.
//!
//! ```text
//!   kernel process connector ──► monitor task ── ProcessTracker (sans-IO rules,
//!   (fork/exec/comm/exit)         │  ▲            wasmalived_proto::track::process)
//!   /proc scan (start-up, lost ───┘  │ rules (start-up, reload)
//!   events, polling fallback)        │
//!                                    ├──► watch<ProcessStates> ──► driver ──► Router::set_process
//!                                    ├──► watch<Vec<TrackedProcessStatus>> ──► StatusBoard
//!                                    ├──► watch<bool> connected (events flow from the connector)
//!                                    └──► broadcast<ProcessSignal> ──► index_feed ──► the plugin
//!                                                                      runtime's ProcessIndex
//! ```
//!
//! The connector is opened when the configuration tracks a process *or* grants a plugin
//! check or LVS plugin probe `allow_processes` ([`Rules::process_events`]): the plugin
//! runtime's process-name index ([`index_feed`]) is kept from the same events, so
//! `processes.by-name` reads only the matching processes instead of the whole of `/proc`.
//!
//! The connector ([`connector`], [`codec`]) is opened once per daemon, before it enters a
//! `net_namespace` ([`crate::daemon::Startup`]), because it exists only in the initial
//! network namespace. When it cannot be had (the daemon runs in another namespace, lacks
//! `CAP_NET_ADMIN`, or the kernel lacks `CONFIG_PROC_EVENTS`), the monitor scans `/proc` every
//! [`POLL_INTERVAL`] instead and says so once: process tracking then reacts within that
//! interval rather than at once.
//!
//! On an overrun (`ENOBUFS`: events were lost), the monitor doubles the socket's receive
//! buffer and rescans `/proc` a [`RESYNC_SETTLE`] later, as keepalived does
//! (`reinitialise_track_processes`); subscribers get [`ProcessSignal::Resynced`] so they can
//! recheck whatever they follow ([`ProcessSignal::Lost`] is sent at once, when the loss is
//! seen).

pub mod codec;
pub mod connector;
pub mod index_feed;
pub mod scan;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, info_span, warn, Instrument as _};
use wasmalived_proto::track::process::{ProcessRule, ProcessTracker, RuleView};

use self::codec::ProcEvent;
use self::connector::{AsyncConnector, Connector, Received};
use crate::control::TrackedProcessStatus;

/// How often `/proc` is scanned when the connector cannot be used.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long after an overrun the rescan waits for the burst to settle (keepalived: 1 s).
pub const RESYNC_SETTLE: Duration = Duration::from_secs(1);
/// How long the kernel has to confirm the subscription (keepalived warns after 0.1 s).
const ACK_TIMEOUT: Duration = Duration::from_secs(1);
/// Process events buffered per subscriber.
const SUBSCRIBER_QUEUE: usize = 1024;

/// Each tracked `vrrp_track_process` and whether it has quorum.
pub type ProcessStates = BTreeMap<String, bool>;

/// What subscribers of the event source receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSignal {
    /// A process event, as the kernel sent it.
    Event(ProcEvent),
    /// Events were lost (the socket overran): what was built from events is stale until
    /// the [`ProcessSignal::Resynced`] that follows.
    Lost,
    /// Events were lost and `/proc` was rescanned: recheck what you follow.
    Resynced,
}

/// The process-tracking settings of one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules {
    /// The tracked `vrrp_track_process` blocks.
    pub rules: Vec<ProcessRule>,
    /// `process_monitor_rcv_bufs` and `_force`.
    pub receive_buffer: Option<(u32, bool)>,
    /// Whether process events are wanted without tracked processes: a plugin check or LVS
    /// probe is granted `allow_processes`, and its lookups use the index kept from them.
    pub process_events: bool,
}

impl Rules {
    /// Whether these settings need the event source.
    fn want_events(&self) -> bool {
        !self.rules.is_empty() || self.process_events
    }
}

struct Apply {
    rules: Rules,
    /// Answered once the first scan under these rules is published.
    done: oneshot::Sender<()>,
}

/// The handle on the monitor task.
#[derive(Debug, Clone)]
pub struct ProcessMonitor {
    commands: mpsc::Sender<Apply>,
    states: watch::Receiver<ProcessStates>,
    status: watch::Receiver<Vec<TrackedProcessStatus>>,
    signals: broadcast::Sender<ProcessSignal>,
    connected: watch::Receiver<bool>,
}

impl ProcessMonitor {
    /// Starts the monitor. `connector`: a socket opened early (before `net_namespace`);
    /// `None`: it is opened when rules first need it.
    pub fn start(
        connector: Option<Connector>,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let (commands, rx) = mpsc::channel(4);
        let (states_tx, states) = watch::channel(ProcessStates::new());
        let (status_tx, status) = watch::channel(Vec::new());
        let (signals, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        let (connected_tx, connected) = watch::channel(false);
        let task = Monitor {
            source: Source::Unopened(connector),
            tracker: ProcessTracker::default(),
            rules: Rules::default(),
            states: states_tx,
            status: status_tx,
            signals: signals.clone(),
            connected: connected_tx,
            resync_at: None,
            ack_by: None,
            next_poll: None,
        };
        tracker.spawn(
            task.run(rx, cancel)
                .instrument(info_span!("process_monitor")),
        );
        ProcessMonitor {
            commands,
            states,
            status,
            signals,
            connected,
        }
    }

    /// Track `rules` from now on (start-up, reload); returns once their first state is
    /// published, so instances started afterwards see it.
    pub async fn apply(&self, rules: Rules) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Apply { rules, done }).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The quorum states, for the driver.
    pub fn states(&self) -> watch::Receiver<ProcessStates> {
        self.states.clone()
    }

    /// Each tracked block's count and quorum, for `wasmalived status`; updated when a count
    /// or state changes.
    pub fn status(&self) -> watch::Receiver<Vec<TrackedProcessStatus>> {
        self.status.clone()
    }

    /// Every process event from now on (only while the connector is in use).
    pub fn subscribe(&self) -> broadcast::Receiver<ProcessSignal> {
        self.signals.subscribe()
    }

    /// Whether events flow from the kernel's process connector: `true` once the kernel
    /// confirmed the subscription, `false` before, and for good after a fall-back to
    /// polling `/proc`. Subscribe first, then read this, so no event falls in between. The
    /// channel closes when the monitor stops (its last handle is dropped, or cancelled).
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }
}

enum Source {
    /// Not opened yet (or opened early and not subscribed yet).
    Unopened(Option<Connector>),
    Connector(AsyncConnector),
    Polling,
}

struct Monitor {
    source: Source,
    tracker: ProcessTracker,
    rules: Rules,
    states: watch::Sender<ProcessStates>,
    status: watch::Sender<Vec<TrackedProcessStatus>>,
    signals: broadcast::Sender<ProcessSignal>,
    connected: watch::Sender<bool>,
    /// A rescan due after an overrun.
    resync_at: Option<Instant>,
    /// The subscription's acknowledgement is awaited until then.
    ack_by: Option<Instant>,
    /// The next scan when polling.
    next_poll: Option<Instant>,
}

impl Monitor {
    async fn run(mut self, mut commands: mpsc::Receiver<Apply>, cancel: CancellationToken) {
        loop {
            let deadline = [
                self.tracker.poll_timeout().map(Instant::from_std),
                self.resync_at,
                self.ack_by,
                self.next_poll,
            ]
            .into_iter()
            .flatten()
            .min();
            let timer = async {
                match deadline {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let received = async {
                match &self.source {
                    Source::Connector(c) => c.recv().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                command = commands.recv() => match command {
                    Some(Apply { rules, done }) => {
                        self.apply(rules);
                        let _ = done.send(());
                    }
                    None => break,
                },
                received = received => self.received(received),
                () = timer => self.timers(),
            }
            self.publish();
        }
        if let Source::Connector(c) = &self.source {
            let _ = c.unsubscribe();
        }
        self.connected.send_replace(false);
    }

    fn apply(&mut self, rules: Rules) {
        if rules == self.rules {
            return;
        }
        self.rules = rules;
        self.tracker = ProcessTracker::new(self.rules.rules.clone());
        if self.rules.want_events() {
            self.ensure_source();
        }
        self.resync();
        self.publish();
    }

    /// Open and subscribe the connector, or fall back to polling.
    fn ensure_source(&mut self) {
        let Source::Unopened(early) = &mut self.source else {
            return;
        };
        let buffer = self.rules.receive_buffer;
        let opened = match early.take() {
            Some(c) => Ok(c),
            None => Connector::open(buffer.map(|(s, _)| s), buffer.is_some_and(|(_, f)| f)),
        };
        let subscribed = opened.and_then(Connector::subscribe);
        match subscribed {
            Ok(c) => {
                info!("tracking processes with the kernel's process connector");
                self.ack_by = Some(Instant::now() + ACK_TIMEOUT);
                self.source = Source::Connector(c);
            }
            Err(err) => self.fall_back(&format!("the process connector cannot be used ({err})")),
        }
    }

    fn fall_back(&mut self, why: &str) {
        warn!(
            "{why}: scanning /proc every {POLL_INTERVAL:?} instead, so vrrp_track_process reacts within that time, not at once, and plugins' processes lookups read all of /proc (the connector needs the initial network namespace — see net_namespace — and CAP_NET_ADMIN)"
        );
        self.connected.send_replace(false);
        self.source = Source::Polling;
        self.ack_by = None;
        self.next_poll = Some(Instant::now() + POLL_INTERVAL);
    }

    fn acknowledges_us(&self, ack: u32) -> bool {
        matches!(&self.source, Source::Connector(c) if c.acknowledges_us(ack))
    }

    fn needs(&self) -> scan::Needs {
        scan::Needs {
            comm: self.tracker.needs_comm(),
            cmdline: self.tracker.needs_cmdline(),
        }
    }

    fn resync(&mut self) {
        if self.tracker.is_empty() {
            return;
        }
        let processes = scan::all(self.needs());
        self.tracker.resync(
            std::time::Instant::now(),
            processes.iter().map(|(pid, info)| (*pid, info)),
        );
    }

    fn received(&mut self, received: std::io::Result<Received>) {
        match received {
            Ok(Received::Message(m)) => self.event(m.event),
            Ok(Received::Overrun) => {
                let force = self.rules.receive_buffer.is_some_and(|(_, f)| f);
                let grown = match &self.source {
                    Source::Connector(c) => c.grow_receive_buffer(force),
                    _ => return,
                };
                match grown {
                    Ok(size) => warn!(receive_buffer = size, "process events were lost (ENOBUFS): rescanning /proc in {RESYNC_SETTLE:?}; receive buffer doubled (set global_defs process_monitor_rcv_bufs to keep it)"),
                    Err(err) => warn!("process events were lost (ENOBUFS): rescanning /proc in {RESYNC_SETTLE:?}; the receive buffer could not grow: {err}"),
                }
                let _ = self.signals.send(ProcessSignal::Lost);
                self.resync_at = Some(Instant::now() + RESYNC_SETTLE);
            }
            Ok(Received::Skipped(why)) => debug!("process connector: skipped {why}"),
            Err(err) => self.fall_back(&format!("reading the process connector failed ({err})")),
        }
    }

    fn event(&mut self, event: ProcEvent) {
        let now = std::time::Instant::now();
        match &event {
            // The kernel multicasts every listener's acknowledgement to all of them: only the
            // one answering our request's `ack` is ours (another process subscribing, or
            // failing to, says nothing about this socket).
            ProcEvent::Ack { ack, .. } if self.ack_by.is_none() || !self.acknowledges_us(*ack) => {}
            ProcEvent::Ack { err: 0, .. } => {
                self.ack_by = None;
                self.connected
                    .send_if_modified(|c| !std::mem::replace(c, true));
                debug!("the kernel confirmed the process-event subscription");
            }
            ProcEvent::Ack { err, .. } => {
                let err = *err;
                self.fall_back(&format!(
                    "the kernel refused the process-event subscription (error {err})"
                ));
            }
            // A new process (not a thread): counted if its parent is.
            ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
                ..
            } if child_pid == child_tgid => self.tracker.fork(now, *parent_tgid, *child_tgid),
            ProcEvent::Exec { pid, tgid } if pid == tgid => {
                let info = scan::process(*tgid, self.needs());
                self.tracker.exec(now, *tgid, info.as_ref());
            }
            ProcEvent::Comm { pid, tgid, comm } if pid == tgid => {
                self.tracker.comm(now, *tgid, comm)
            }
            ProcEvent::Exit { pid, tgid, .. } if pid == tgid => self.tracker.exit(now, *tgid),
            _ => {}
        }
        if !matches!(event, ProcEvent::Ack { .. }) {
            let _ = self.signals.send(ProcessSignal::Event(event));
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.ack_by.is_some_and(|at| at <= now) {
            if let Source::Connector(c) = std::mem::replace(&mut self.source, Source::Polling) {
                drop(c);
            }
            self.fall_back("the kernel did not confirm the process-event subscription (no CONFIG_PROC_EVENTS?)");
            self.resync();
        }
        if self.resync_at.is_some_and(|at| at <= now) {
            self.resync_at = None;
            self.resync();
            let _ = self.signals.send(ProcessSignal::Resynced);
        }
        if self.next_poll.is_some_and(|at| at <= now) {
            self.next_poll = Some(now + POLL_INTERVAL);
            self.resync();
        }
        self.tracker.handle_timeout(now.into_std());
    }

    /// Publish what changed.
    fn publish(&mut self) {
        let mut changed = false;
        let mut states = self.states.borrow().clone();
        let configured: Vec<&str> = self.rules.rules.iter().map(|r| r.name.as_str()).collect();
        let before = states.len();
        states.retain(|name, _| configured.contains(&name.as_str()));
        changed |= states.len() != before;
        while let Some(c) = self.tracker.poll_change() {
            info!(process = %c.name, count = c.count, "quorum {} for tracked process {}", if c.up { "gained" } else { "lost" }, c.name);
            states.insert(c.name, c.up);
            changed = true;
        }
        if changed {
            self.states.send_replace(states);
        }
        let tracker = &self.tracker;
        self.status.send_if_modified(|shown| {
            let same = shown.len() == tracker.rules().count()
                && shown.iter().zip(tracker.rules()).all(|(s, v)| shows(s, &v));
            if !same {
                *shown = tracker.rules().map(|v| status_of(&v)).collect();
            }
            !same
        });
    }
}

/// `up` / `down`.
fn quorum_word(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

/// The status line of one rule.
fn status_of(v: &RuleView<'_>) -> TrackedProcessStatus {
    TrackedProcessStatus {
        name: v.rule.name.clone(),
        count: v.count,
        quorum: v.rule.quorum,
        quorum_max: (v.rule.quorum_max != u32::MAX).then_some(v.rule.quorum_max),
        up: v.up.unwrap_or(false),
        pending: v.pending.map(|to| quorum_word(to).to_owned()),
    }
}

/// Whether `shown` already says what `v` is (checked on every process event, so without
/// allocating).
fn shows(shown: &TrackedProcessStatus, v: &RuleView<'_>) -> bool {
    shown.name == v.rule.name
        && shown.count == v.count
        && shown.up == v.up.unwrap_or(false)
        && shown.pending.as_deref() == v.pending.map(quorum_word)
        && shown.quorum == v.rule.quorum
        && shown.quorum_max == (v.rule.quorum_max != u32::MAX).then_some(v.rule.quorum_max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmalived_proto::track::process::ProcessPattern;

    fn rule(quorum_max: u32) -> ProcessRule {
        ProcessRule {
            name: "nginx".into(),
            pattern: ProcessPattern {
                name: "nginx".into(),
                params: Vec::new(),
                param_match: None,
                full_command: false,
            },
            quorum: 1,
            quorum_max,
            fork_delay: None,
            terminate_delay: None,
        }
    }

    #[test]
    fn a_status_entry_shows_its_rule_until_something_changes() {
        let unlimited = rule(u32::MAX);
        let v = RuleView {
            rule: &unlimited,
            count: 0,
            up: Some(true),
            pending: Some(false),
        };
        let shown = status_of(&v);
        assert_eq!(
            shown,
            TrackedProcessStatus {
                name: "nginx".into(),
                count: 0,
                quorum: 1,
                quorum_max: None,
                up: true,
                pending: Some("down".into()),
            }
        );
        assert!(shows(&shown, &v));
        assert!(!shows(&shown, &RuleView { pending: None, ..v }));
        assert!(!shows(&shown, &RuleView { count: 1, ..v }));
        let bounded = rule(2);
        assert!(!shows(
            &shown,
            &RuleView {
                rule: &bounded,
                ..v
            }
        ));
        assert_eq!(
            status_of(&RuleView {
                rule: &bounded,
                ..v
            })
            .quorum_max,
            Some(2)
        );
        let unscanned = RuleView {
            up: None,
            pending: None,
            ..v
        };
        assert!(!status_of(&unscanned).up, "down until the first scan");
    }
}

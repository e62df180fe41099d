//! The director task: owns the virtual servers' states (the sans-IO `wasmalived_lvs`
//! machines), one task per distinct probe, the data-path applier and the script queue.
//!
//! ```text
//!  probe tasks ──ProbeResult──▶ manager ──plans (watch)──▶ applier ──▶ Backend (nft)
//!      ▲ suspend (watch)          │  ▲                                 │
//!      └──────────────────────────┘  └──────── applied / error ◀────────┘
//!                                 ├──▶ HookQueue (notify_up/down, quorum_up/down)
//!                                 ├──▶ Alerts (notify FIFO lines, alert mails; never wait)
//!                                 └──▶ StatusBoard (virtual_servers)
//! ```
//!
//! A probe task runs its checker's schedule itself (keepalived's: `delay_loop`, or
//! `delay_before_retry` while retrying; a first run after a random share of `warmup`),
//! counts its runs in its [`ProbeLedger`] (what the status document shows) and sends the
//! results that can change something ([`Delivery`]: not a success after a success); the
//! manager records each into every virtual server naming that probe, turns the events into
//! scripts and logs, and publishes the new plans when a pool changed.
//! Probes never wait on the data path, the data path never waits on a probe, and neither
//! touches the VRRP router: checks never block adverts.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};
use wasmalived_config::lvs::{CheckerTiming, VirtualServer, VirtualServerGroup};
use wasmalived_config::{Config, GlobalDefs};
use wasmalived_lvs::checker::{CheckerState, Next, Step};
use wasmalived_lvs::plan::{Forward, ServicePlan};
use wasmalived_lvs::{service_plan, Backend, BackendKind, Event, ServiceState};
use wasmalived_sys::program::Program;

use super::batch;
use super::hooks::{self, HookQueue};
use super::ledger::{Delivery, ProbeLedger};
use super::probe::{Outcome, Probe, ProbeContext, ProbeDef};
use super::review::{self, Severity};
use super::status::{CheckerStatus, RealServerStatus, VirtualServerStatus};
use super::{dr, DirectorContext};
use crate::alerts::lvs::{CheckerChange, ServiceAlerts};
use crate::alerts::Alerts;

/// How often direct-routing next hops are resolved again, and a failed apply retried.
const TICK: Duration = Duration::from_secs(1);
/// How stale the status document's counters (runs, last result, its time) may get. A
/// change of a checker's state or of a pool is published at once; runs that only move
/// counters (kept in the probes' ledgers) are picked up this often. Rebuilding the document
/// on every result made the status cost O(pool²) per `delay_loop`; every 200 ms it was
/// still ~6 % of the director's CPU with 100 real servers checked every second.
const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// Commands to the manager.
pub enum Command {
    /// Apply a configuration (start-up and reload), with its notify FIFOs and mailer.
    Apply(Box<Config>, Arc<Alerts>),
    /// Run the `omega` scripts, clear the data path, stop.
    Shutdown(oneshot::Sender<()>),
}

/// A probe's result, sent by its task.
struct ProbeResult {
    id: u64,
    outcome: Outcome,
}

/// Where a probe's results go: checker `checker` of real server `rs` of service `vs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Subscriber {
    vs: usize,
    rs: usize,
    checker: usize,
}

/// A running probe.
struct ProbeSlot {
    id: u64,
    def: ProbeDef,
    /// `def.label()`, made once (the status document shows it at every refresh).
    label: String,
    /// Where the first checker naming it is, for messages.
    place: String,
    subscribers: Vec<Subscriber>,
    probe: Arc<Probe>,
    suspend: watch::Sender<bool>,
    cancel: CancellationToken,
    /// Runs and last outcome, as the probe's task counts them.
    ledger: Arc<ProbeLedger>,
    /// The last result delivered here (a failure's log line says when the reason changes).
    delivered: Option<Outcome>,
}

/// A virtual server as the manager keeps it.
struct Service {
    cfg: VirtualServer,
    state: ServiceState,
    /// `ha_suspend` follows this address (a VRRP VIP of the configuration).
    suspend_on: Option<IpAddr>,
    /// Direct routing: the interface client traffic arrives on.
    ingress: Option<String>,
    /// Refused by the backend review: not programmed.
    refused: bool,
    notify_up: Vec<Option<Program>>,
    notify_down: Vec<Option<Program>>,
    quorum_up: Option<Program>,
    quorum_down: Option<Program>,
    /// Its FIFO lines and mails.
    alerts: ServiceAlerts,
}

/// The director task's state.
pub struct Manager {
    ctx: DirectorContext,
    probe_ctx: ProbeContext,
    global: GlobalDefs,
    services: Vec<Service>,
    groups: Vec<VirtualServerGroup>,
    probes: Vec<ProbeSlot>,
    next_id: u64,
    results_tx: mpsc::Sender<ProbeResult>,
    plans: watch::Sender<Plans>,
    applied: watch::Receiver<Applied>,
    hooks: HookQueue,
    /// The configuration's notify FIFOs and mailer.
    alerts: Arc<Alerts>,
    dr_targets: HashMap<IpAddr, wasmalived_lvs::plan::DrTarget>,
    backend_name: &'static str,
    backend_kind: BackendKind,
}

/// The plans the data path must hold, numbered: each change is a new generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plans {
    /// Counts the changes (0: the empty start).
    pub generation: u64,
    /// One plan per running service.
    pub services: Vec<ServicePlan>,
}

/// What the applier reports.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The last apply failed with this.
    pub error: Option<String>,
    /// The generation of the plans the data path holds (the last applied without error).
    pub generation: u64,
}

/// Run the director until [`Command::Shutdown`]. `backend` programs the data path.
pub async fn run(
    ctx: DirectorContext,
    backend: Box<dyn Backend>,
    mut commands: mpsc::Receiver<Command>,
) {
    let backend_name = backend.name();
    let backend_kind = backend.kind();
    let (results_tx, mut results) = mpsc::channel(1024);
    let (plans, plans_rx) = watch::channel(Plans::default());
    let (applied_tx, applied) = watch::channel(Applied::default());
    let (clear_tx, clear_rx) = mpsc::channel(1);
    let applier = tokio::spawn(
        apply_loop(backend, plans_rx, applied_tx, clear_rx)
            .instrument(tracing::info_span!("lvs_apply")),
    );
    let mut m = Manager {
        probe_ctx: ctx.probes.clone(),
        ctx,
        global: GlobalDefs::default(),
        services: Vec::new(),
        groups: Vec::new(),
        probes: Vec::new(),
        next_id: 0,
        results_tx,
        plans,
        applied,
        hooks: HookQueue::spawn(),
        alerts: Arc::new(Alerts::default()),
        dr_targets: HashMap::new(),
        backend_name,
        backend_kind,
    };
    let mut held = m.ctx.held_vips.clone();
    let mut applied_rx = m.applied.clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_refresh = tokio::time::interval(STATUS_REFRESH);
    status_refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(result) = results.recv() => m.record(result),
            Ok(()) = held.changed() => m.update_suspension(),
            Ok(()) = applied_rx.changed() => m.publish_status(),
            _ = tick.tick() => m.tick().await,
            _ = status_refresh.tick() => m.refresh_status(),
            command = commands.recv() => match command {
                Some(Command::Apply(config, alerts)) => m.apply(*config, alerts).await,
                Some(Command::Shutdown(done)) => {
                    m.shutdown(clear_tx).await;
                    let _ = applier.await;
                    let _ = done.send(());
                    return;
                }
                None => {
                    m.shutdown(clear_tx).await;
                    let _ = applier.await;
                    return;
                }
            },
        }
    }
}

impl Manager {
    /// Bring the services and probes in line with `config`.
    async fn apply(&mut self, config: Config, alerts: Arc<Alerts>) {
        self.alerts = alerts;
        self.global = config.global.clone();
        self.groups = config.virtual_server_groups.clone();
        // Reviewed for the backend that runs; `lvs_backend` is read at start-up only. The
        // detection asks the kernel (and maybe `modprobe -n`): off the runtime's threads.
        let choice = config.global.lvs_backend;
        let detected = tokio::task::spawn_blocking(move || wasmalived_lvs::detect(choice))
            .await
            .map_err(|join| format!("lvs_backend {}: {join}", choice.keyword()))
            .and_then(|r| r.map_err(|e| e.to_string()));
        let backend = detected.map(|kind| {
            if kind != self.backend_kind {
                warn!(
                    "lvs_backend now selects {}; the director keeps {} until a restart",
                    kind.name(),
                    self.backend_kind.name()
                );
            }
            self.backend_kind
        });
        let findings = review::review_for(&config, backend);
        for f in &findings {
            match f.severity {
                Severity::Error => error!("{f}"),
                Severity::Warning => warn!("{f}"),
            }
        }
        let backend_refused = findings
            .iter()
            .any(|f| f.severity == Severity::Error && f.message.starts_with("lvs_backend"));

        // Services: keep the state of an unchanged one, carry a changed one over.
        let mut old: HashMap<String, Service> = self
            .services
            .drain(..)
            .map(|s| (s.cfg.label(), s))
            .collect();
        let mut services = Vec::new();
        for vs in &config.virtual_servers {
            let label = vs.label();
            let refused = backend_refused
                || review::review_one(vs, &config, self.backend_kind)
                    .iter()
                    .any(|f| f.severity == Severity::Error);
            let (state, events) = match old.remove(&label) {
                Some(prev) if prev.cfg == *vs => (prev.state, Vec::new()),
                Some(prev) => {
                    info!(virtual_server = %label, "virtual server changed by reload");
                    self.clear_removed(&prev, Some(vs));
                    ServiceState::carry_over(vs, &prev.cfg, &prev.state)
                }
                None => {
                    info!(virtual_server = %label, real_servers = vs.real_servers.len(), "virtual server added");
                    ServiceState::new(vs)
                }
            };
            let what = |rs: &wasmalived_config::lvs::RealServer, hook: &str| {
                format!("virtual_server {label} real_server {} {hook}", rs.addr)
            };
            let service = Service {
                notify_up: vs
                    .real_servers
                    .iter()
                    .map(|rs| {
                        hooks::prepare(rs.notify_up.as_ref(), &what(rs, "notify_up"), &self.global)
                    })
                    .collect(),
                notify_down: vs
                    .real_servers
                    .iter()
                    .map(|rs| {
                        hooks::prepare(
                            rs.notify_down.as_ref(),
                            &what(rs, "notify_down"),
                            &self.global,
                        )
                    })
                    .collect(),
                quorum_up: hooks::prepare(
                    vs.quorum_up.as_ref(),
                    &format!("virtual_server {label} quorum_up"),
                    &self.global,
                ),
                quorum_down: hooks::prepare(
                    vs.quorum_down.as_ref(),
                    &format!("virtual_server {label} quorum_down"),
                    &self.global,
                ),
                suspend_on: if vs.ha_suspend {
                    review::vs_vip(vs, &config)
                } else {
                    None
                },
                ingress: review::vip_interface(vs, &config),
                alerts: ServiceAlerts::new(vs, &config),
                refused,
                cfg: vs.clone(),
                state,
            };
            services.push(service);
            let index = services.len() - 1;
            self.handle_events(index, &events, &services);
        }
        for (label, prev) in old {
            info!(virtual_server = %label, "virtual server removed by reload");
            self.clear_removed(&prev, None);
            if prev.state.quorum_up {
                // keepalived's `update_vs_notifies`: no weight left, the quorum is lost.
                if let Some(program) = &prev.quorum_down {
                    self.hooks.run(program);
                }
                let threshold = prev.cfg.quorum.saturating_sub(prev.cfg.hysteresis);
                prev.alerts
                    .quorum(&self.alerts, false, false, 0, u64::from(threshold));
            }
        }
        self.services = services;
        self.sync_probes().await;
        self.update_suspension();
        self.resolve_dr().await;
        self.publish_plans();
        self.publish_status();
    }

    /// A reload removed the real servers of `prev` that `kept` (its new configuration, `None`
    /// when the virtual server is gone) no longer has: each one alive runs its `notify_down`
    /// and is told down (keepalived's `clear_diff_rs`).
    fn clear_removed(&self, prev: &Service, kept: Option<&VirtualServer>) {
        let label = prev.cfg.label();
        for (rs, (cfg, state)) in prev
            .cfg
            .real_servers
            .iter()
            .zip(&prev.state.real_servers)
            .enumerate()
        {
            let stays = kept.is_some_and(|vs| vs.real_servers.iter().any(|r| r.addr == cfg.addr));
            if stays || !state.alive {
                continue;
            }
            info!(virtual_server = %label, real_server = %cfg.addr, "real server removed by reload");
            if let Some(Some(program)) = prev.notify_down.get(rs) {
                self.hooks.run(program);
            }
            prev.alerts.real_server_cleared(&self.alerts, rs, false);
        }
    }

    /// Start the probes the services need, keep the running identical ones, stop the rest.
    async fn sync_probes(&mut self) {
        let wanted = distinct_probes(self.services.iter().map(|s| (!s.refused).then_some(&s.cfg)));
        let mut old: Vec<ProbeSlot> = std::mem::take(&mut self.probes);
        let mut next = Vec::new();
        for (def, place, subscribers) in wanted {
            if let Some(i) = old.iter().position(|p| p.def == def) {
                let mut slot = old.swap_remove(i);
                if slot.subscribers != subscribers {
                    slot.ledger.resync();
                }
                slot.subscribers = subscribers;
                next.push(slot);
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let label = def.label();
            let name = format!("lvs#{id} {label}");
            let probe = match Probe::build(&def, &name, &self.global, &self.probe_ctx).await {
                Ok(p) => p,
                Err(err) => {
                    error!("{place}: {label}: {err}; the checker fails until this is fixed");
                    Probe::Unavailable(err.to_string())
                }
            };
            let probe = Arc::new(probe);
            let ledger = Arc::new(ProbeLedger::default());
            let (suspend, suspend_rx) = watch::channel(false);
            let cancel = self.ctx.cancel.child_token();
            let span = tracing::info_span!("probe", probe = %label);
            let run = self.ctx.tracker.track_future(
                probe_loop(
                    id,
                    probe.clone(),
                    ledger.clone(),
                    def.timing,
                    self.results_tx.clone(),
                    suspend_rx,
                    cancel.clone(),
                )
                .instrument(span),
            );
            // A plugin probe's loop lives on a plugin executor thread, so its runs execute
            // inline there (no hand-off to the executor and back); the others stay here.
            if matches!(*probe, Probe::Plugin { .. }) {
                drop(self.probe_ctx.runtime.spawn_resident(run));
            } else {
                drop(tokio::spawn(run));
            }
            next.push(ProbeSlot {
                id,
                def,
                label,
                place,
                subscribers,
                probe,
                suspend,
                cancel,
                ledger,
                delivered: None,
            });
        }
        for slot in old {
            slot.cancel.cancel();
            slot.probe.release(&self.probe_ctx.registry);
        }
        self.probes = next;
    }

    /// One probe result: into every service naming the probe.
    fn record(&mut self, result: ProbeResult) {
        let Some(slot) = self.probes.iter_mut().find(|p| p.id == result.id) else {
            return; // a probe stopped by a reload
        };
        let outcome = result.outcome;
        if !outcome.success
            && slot
                .delivered
                .as_ref()
                .is_none_or(|l| l.success || l.detail != outcome.detail)
        {
            warn!(probe = %slot.label, place = %slot.place, reason = %outcome.detail, "check failed");
        }
        let subscribers = slot.subscribers.clone();
        let (success, weight) = (outcome.success, outcome.weight);
        slot.delivered = Some(outcome);
        // A pool changes only with an event (a server's state or weight, the sorry server),
        // and identical plans are not re-published: a result that changes nothing costs no
        // pool rebuild.
        let mut changed = false;
        for sub in subscribers {
            let Some(service) = self.services.get_mut(sub.vs) else {
                continue;
            };
            let (step, events) =
                service
                    .state
                    .record(&service.cfg, sub.rs, sub.checker, success, weight);
            changed |= !events.is_empty();
            self.handle_events(sub.vs, &events, &self.services);
            self.checker_mail(sub, &step, &events);
        }
        if changed {
            self.publish_plans();
            self.publish_status();
        }
    }

    /// The mail keepalived's checker sends for this result, if any (after the FIFO line, as
    /// keepalived's checkers do).
    fn checker_mail(&self, sub: Subscriber, step: &Step, events: &[Event]) {
        let Some(s) = self.services.get(sub.vs) else {
            return;
        };
        let (Some(cfg), Some(state)) = (
            s.cfg.real_servers.get(sub.rs),
            s.state.real_servers.get(sub.rs),
        ) else {
            return;
        };
        let Some(checker) = cfg.checkers.get(sub.checker) else {
            return;
        };
        let change = CheckerChange {
            kind: &checker.kind,
            checker_up: state
                .checkers
                .get(sub.checker)
                .is_some_and(CheckerState::is_up),
            changed: step.changed.is_some(),
            first: step.first,
            server_up: state.alive,
            server_changed: events.iter().any(
                |e| matches!(e, Event::RealServer { rs, initial: false, .. } if *rs == sub.rs),
            ),
        };
        s.alerts.checker(&self.alerts, sub.rs, &change);
    }

    /// Logs, scripts and FIFO lines for `events` of service `index` (of `services`: during an apply the
    /// new list is not installed yet).
    fn handle_events(&self, index: usize, events: &[Event], services: &[Service]) {
        let Some(s) = services.get(index) else {
            return;
        };
        let label = s.cfg.label();
        for event in events {
            match event {
                Event::RealServer { rs, up, initial } => {
                    let addr = s
                        .cfg
                        .real_servers
                        .get(*rs)
                        .map(|r| r.addr.to_string())
                        .unwrap_or_default();
                    if *up {
                        info!(virtual_server = %label, real_server = %addr, initial, "real server up: in the pool");
                    } else {
                        warn!(virtual_server = %label, real_server = %addr, initial, "real server down: out of the pool");
                    }
                    let script = if *up { &s.notify_up } else { &s.notify_down };
                    if let Some(Some(program)) = script.get(*rs) {
                        self.hooks.run(program);
                    }
                    s.alerts.real_server(&self.alerts, *rs, *up);
                }
                Event::Quorum {
                    up,
                    weight,
                    threshold,
                    initial,
                } => {
                    if *up {
                        info!(virtual_server = %label, weight, threshold, initial, "quorum gained");
                    } else {
                        warn!(virtual_server = %label, weight, threshold, initial, "quorum lost");
                    }
                    let script = if *up { &s.quorum_up } else { &s.quorum_down };
                    if let Some(program) = script {
                        self.hooks.run(program);
                    }
                    s.alerts
                        .quorum(&self.alerts, *up, *initial, *weight, *threshold);
                }
                Event::SorryServer { active } => {
                    info!(virtual_server = %label, active, "sorry server");
                }
                Event::Weight { rs, weight } => {
                    info!(virtual_server = %label, rs, weight, "real server weight set by its check");
                }
            }
        }
    }

    /// Pause the probes whose every service is `ha_suspend`ed (this node does not hold its
    /// address), resume the others.
    fn update_suspension(&mut self) {
        let held = self.ctx.held_vips.borrow().clone();
        let suspended: Vec<bool> = self
            .services
            .iter()
            .map(|s| s.suspend_on.is_some_and(|ip| !held.contains(&ip)))
            .collect();
        for slot in &self.probes {
            let all = !slot.subscribers.is_empty()
                && slot
                    .subscribers
                    .iter()
                    .all(|s| suspended.get(s.vs).copied().unwrap_or(false));
            slot.suspend.send_if_modified(|v| {
                let changed = *v != all;
                *v = all;
                changed
            });
        }
    }

    /// The plans of every service that runs, as the data path must hold them now.
    fn plans(&self) -> Vec<ServicePlan> {
        self.services
            .iter()
            .filter(|s| !s.refused)
            .map(|s| {
                let mut plan = service_plan(&s.cfg, &s.state, &self.groups);
                if let Forward::Dr { ingress, targets } = &mut plan.forward {
                    *ingress = s.ingress.clone().unwrap_or_default();
                    *targets = plan
                        .members
                        .iter()
                        .map(|m| self.dr_targets.get(&m.addr.ip()).cloned())
                        .collect();
                    plan.retable();
                }
                plan
            })
            .filter(|p| {
                !(self.backend_kind.needs_dr_ingress()
                    && matches!(&p.forward, Forward::Dr { ingress, .. } if ingress.is_empty()))
            })
            .collect()
    }

    fn publish_plans(&self) {
        let services = self.plans();
        self.plans.send_if_modified(|current| {
            if current.services == services {
                return false;
            }
            current.generation += 1;
            current.services = services;
            true
        });
    }

    /// Periodic work: direct-routing next hops.
    async fn tick(&mut self) {
        if self.resolve_dr().await {
            self.publish_plans();
        }
    }

    /// Resolve the direct-routing members' MACs; whether anything changed.
    async fn resolve_dr(&mut self) -> bool {
        let mut addrs: BTreeSet<IpAddr> = BTreeSet::new();
        for s in self
            .services
            .iter()
            .filter(|s| s.cfg.forwarding == wasmalived_config::lvs::Forwarding::Dr && !s.refused)
        {
            addrs.extend(s.cfg.real_servers.iter().map(|r| r.addr.ip()));
            if let Some(sorry) = &s.cfg.sorry_server {
                addrs.insert(sorry.addr.ip());
            }
        }
        let addrs: Vec<IpAddr> = addrs.into_iter().collect();
        let fresh = dr::resolve(&self.ctx.netlink, &addrs).await;
        if fresh == self.dr_targets {
            return false;
        }
        for (ip, t) in &fresh {
            if self.dr_targets.get(ip) != Some(t) {
                info!(real_server = %ip, device = %t.device, "direct routing: next hop resolved");
            }
        }
        self.dr_targets = fresh;
        true
    }

    /// Rebuild the status document if probes ran since it was built.
    fn refresh_status(&mut self) {
        // Every ledger's flag is taken, so each run is picked up once.
        let unseen = self
            .probes
            .iter()
            .fold(false, |any, p| p.ledger.take_unseen() | any);
        if unseen {
            self.publish_status();
        }
    }

    /// The status document's view.
    fn publish_status(&mut self) {
        let (apply_error, applied_generation) = {
            let applied = self.applied.borrow();
            (applied.error.clone(), applied.generation)
        };
        let pending = applied_generation != self.plans.borrow().generation;
        let held = self.ctx.held_vips.borrow().clone();
        let slots: HashMap<Subscriber, &ProbeSlot> = self
            .probes
            .iter()
            .flat_map(|p| p.subscribers.iter().map(move |sub| (*sub, p)))
            .collect();
        let statuses = self
            .services
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let mut status = self.service_status(index, s, &held, &slots, apply_error.clone());
                status.pending = pending && !s.refused;
                status
            })
            .collect();
        self.ctx.board.set_virtual_servers(statuses);
    }

    fn service_status(
        &self,
        index: usize,
        s: &Service,
        held: &BTreeSet<IpAddr>,
        slots: &HashMap<Subscriber, &ProbeSlot>,
        apply_error: Option<String>,
    ) -> VirtualServerStatus {
        let pool = s.state.pool(&s.cfg);
        let used = self.backend_kind.scheduler_used(s.cfg.scheduler);
        let real_servers = s
            .cfg
            .real_servers
            .iter()
            .enumerate()
            .map(|(rs, cfg)| {
                let state = &s.state.real_servers[rs];
                let checkers = cfg
                    .checkers
                    .iter()
                    .enumerate()
                    .map(|(checker, c)| {
                        let sub = Subscriber {
                            vs: index,
                            rs,
                            checker,
                        };
                        let slot = slots.get(&sub).copied();
                        let last = slot.and_then(|p| p.ledger.last());
                        let last = last.as_ref();
                        CheckerStatus {
                            name: slot.map_or_else(|| ProbeDef::of(c).label(), |p| p.label.clone()),
                            state: if state.checkers.get(checker).is_some_and(CheckerState::is_up) {
                                "up".into()
                            } else {
                                "down".into()
                            },
                            runner: last.map(|l| l.runner.clone()).unwrap_or_default(),
                            last: last.map(|l| l.detail.clone()).unwrap_or_default(),
                            runs: slot.map_or(0, |p| p.ledger.runs()),
                            last_ms: last.map_or(0.0, |l| l.took.as_secs_f64() * 1000.0),
                        }
                    })
                    .collect();
                RealServerStatus {
                    address: cfg.addr.to_string(),
                    alive: state.alive,
                    weight: cfg.weight,
                    pool_weight: if s.state.sorry_active {
                        None
                    } else {
                        pool.iter().find(|m| m.addr == cfg.addr).map(|m| m.weight)
                    },
                    checkers,
                }
            })
            .collect();
        VirtualServerStatus {
            name: s.cfg.label(),
            scheduler: s.cfg.scheduler.name().into(),
            scheduler_used: used.name().into(),
            forwarding: s.cfg.forwarding.name().into(),
            backend: if s.refused {
                "refused".into()
            } else {
                self.backend_name.into()
            },
            quorum_up: s.state.quorum_up,
            sorry_server_active: s.state.sorry_active,
            live_weight: s.state.live_weight(),
            quorum: s.cfg.quorum,
            suspended: s.suspend_on.is_some_and(|ip| !held.contains(&ip)),
            real_servers,
            apply_error,
            pending: false,
        }
    }

    /// Stop the probes, run `omega`'s scripts, clear the data path.
    async fn shutdown(&mut self, clear: mpsc::Sender<oneshot::Sender<()>>) {
        for slot in self.probes.drain(..) {
            slot.cancel.cancel();
            slot.probe.release(&self.probe_ctx.registry);
        }
        for s in &self.services {
            if !s.cfg.omega {
                continue;
            }
            // keepalived's omega (`clear_service_vs`): the down notifiers run as if every
            // server went away, then the virtual server's, whatever its quorum was.
            for (rs, state) in s.state.real_servers.iter().enumerate() {
                if state.alive {
                    if let Some(Some(program)) = s.notify_down.get(rs) {
                        self.hooks.run_and_wait(program).await;
                    }
                    s.alerts.real_server_cleared(&self.alerts, rs, true);
                }
            }
            if let Some(program) = &s.quorum_down {
                self.hooks.run_and_wait(program).await;
            }
            s.alerts.shutdown(&self.alerts);
        }
        let (done, cleared) = oneshot::channel();
        if clear.send(done).await.is_ok() {
            let _ = cleared.await;
        }
    }
}

/// The distinct probes `services` need (a refused service: `None`), each with the place of
/// its first checker and every checker it stands for: identical checkers — same kind,
/// target, source and timing — named by several virtual servers run once.
fn distinct_probes<'a>(
    services: impl Iterator<Item = Option<&'a VirtualServer>>,
) -> Vec<(ProbeDef, String, Vec<Subscriber>)> {
    let mut wanted: Vec<(ProbeDef, String, Vec<Subscriber>)> = Vec::new();
    for (vs, cfg) in services.enumerate() {
        let Some(cfg) = cfg else { continue };
        for (rs, r) in cfg.real_servers.iter().enumerate() {
            for (checker, c) in r.checkers.iter().enumerate() {
                let def = ProbeDef::of(c);
                let sub = Subscriber { vs, rs, checker };
                match wanted.iter_mut().find(|(d, _, _)| *d == def) {
                    Some((_, _, subs)) => subs.push(sub),
                    None => wanted.push((def, c.origin.0.to_string(), vec![sub])),
                }
            }
        }
    }
    wanted
}

/// One probe's schedule: a first run after a random share of `warmup`, then `delay_loop`
/// (or `delay_before_retry` while retrying), paused while suspended. Every run goes into
/// `ledger`; the results that can change something go to the manager too.
///
/// Probes started together (all of a configuration's, without `warmup`) would stay in step
/// and come due in one burst each `delay_loop`, as keepalived's do: a burst holds one
/// instance per probe at once. So the first wait of `delay_loop` is shortened to this
/// probe's [`steady_share`] of it: from then on the probes of one `delay_loop` are spread
/// over it, as HAProxy spreads its checks. Only that one interval is shorter than
/// configured; none is longer, so every detection bound keepalived's settings imply holds.
/// Probes due within one batch slot then run together ([`batch`]), never later than due.
async fn probe_loop(
    id: u64,
    probe: Arc<Probe>,
    ledger: Arc<ProbeLedger>,
    timing: CheckerTiming,
    results: mpsc::Sender<ProbeResult>,
    mut suspended: watch::Receiver<bool>,
    cancel: CancellationToken,
) {
    let first = timing.warmup.mul_f64(fastrand_fraction());
    let mut checker = CheckerState::new(&timing);
    let mut delivery = Delivery::default();
    let mut spread = Some(steady_share(id));
    let mut next = Instant::now() + first;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
            () = probe.changed() => {}
        }
        while *suspended.borrow_and_update() {
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = suspended.changed() => if changed.is_err() { return },
            }
        }
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            outcome = probe.run() => outcome,
        };
        let step = checker.record(outcome.success);
        let mut delay = CheckerState::delay(&timing, &step);
        if step.next == Next::DelayLoop {
            if let Some(share) = spread.take() {
                delay = delay.mul_f64(share);
            }
        }
        // Probes due within one batch slot run on one wake-up of their thread, never later
        // than due (`batch.rs`).
        next = batch::batched(Instant::now() + delay, delay);
        ledger.note(&outcome);
        if delivery.decide(&ledger, &outcome)
            && results.send(ProbeResult { id, outcome }).await.is_err()
        {
            return;
        }
    }
}

/// The share (0, 1] of its first `delay_loop` probe `id` waits: consecutive ids fall evenly
/// over the interval (the golden-ratio sequence: any `n` consecutive ids leave no gap
/// wider than ~2.6 / `n`), and a probe added by a reload finds its own place among them.
fn steady_share(id: u64) -> f64 {
    /// 1 / φ.
    const GOLDEN: f64 = 0.618_033_988_749_895;
    // Exact for any id a daemon reaches (below 2^53).
    let fraction = (id as f64 * GOLDEN).fract();
    1.0 - fraction
}

/// A fraction in [0, 1) from the clock's nanoseconds (spreads first checks; no need for a
/// cryptographic source).
fn fastrand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

/// The data-path applier: applies the latest plans (coalescing while busy), retries a
/// failed apply every [`TICK`], clears the data path when told.
async fn apply_loop(
    backend: Box<dyn Backend>,
    mut plans: watch::Receiver<Plans>,
    applied: watch::Sender<Applied>,
    mut clear: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut backend = Some(backend);
    // Whatever a previous run left (kill -9, crash) goes first.
    backend = blocking(
        backend,
        |b| b.clear().map_err(|e| e.to_string()),
        &applied,
        None,
        "clearing stale tables",
    )
    .await;
    let mut failed = false;
    let mut retry = tokio::time::interval(TICK);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = plans.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = retry.tick(), if failed => {}
            done = clear.recv() => {
                if blocking(backend, |b| b.clear().map_err(|e| e.to_string()), &applied, None, "removing the tables").await.is_some() {
                    info!("data path cleared");
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
        let Plans {
            generation,
            services: current,
        } = plans.borrow_and_update().clone();
        let members: usize = current.iter().map(|p| p.members.len()).sum();
        let started = std::time::Instant::now();
        backend = blocking(
            backend,
            move |b| {
                let result = b.apply(&current).map_err(|e| e.to_string());
                for warning in b.take_warnings() {
                    warn!("{warning}");
                }
                result
            },
            &applied,
            Some(generation),
            "applying the pools",
        )
        .await;
        failed = applied.borrow().error.is_some();
        if !failed {
            info!(
                members,
                took_ms = started.elapsed().as_millis() as u64,
                "pools applied"
            );
        }
    }
}

/// Run `f` on the backend on a blocking thread; record its error, and on success the
/// plans' `generation` it applied (if it applied plans). The backend comes back (a
/// panicking backend is lost: nothing is applied any more, and that is logged).
async fn blocking(
    backend: Option<Box<dyn Backend>>,
    f: impl FnOnce(&mut dyn Backend) -> Result<(), String> + Send + 'static,
    applied: &watch::Sender<Applied>,
    generation: Option<u64>,
    what: &str,
) -> Option<Box<dyn Backend>> {
    let mut b = backend?;
    match tokio::task::spawn_blocking(move || {
        let r = f(b.as_mut());
        (b, r)
    })
    .await
    {
        Ok((b, result)) => {
            let error = result.err();
            if let Some(e) = &error {
                error!(error = %e, "{what} failed; retrying every {TICK:?}");
            }
            applied.send_modify(|applied| {
                if let (None, Some(generation)) = (&error, generation) {
                    applied.generation = generation;
                }
                applied.error = error;
            });
            Some(b)
        }
        Err(join) => {
            error!(error = %join, "the data-path backend panicked; pools are no longer applied");
            applied.send_modify(|applied| {
                applied.error = Some(format!("backend panicked: {join}"));
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::lvs::test_config as config;

    #[test]
    fn probes_started_together_spread_over_their_delay_loop() {
        let mut shares: Vec<f64> = (0..100).map(steady_share).collect();
        assert!(shares.iter().all(|s| *s > 0.0 && *s <= 1.0), "{shares:?}");
        shares.sort_by(f64::total_cmp);
        let widest = shares
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(shares[0], f64::max);
        // Evenly would be 0.01 apart; a burst would be 0 apart with one gap of ~1.
        assert!(widest < 0.03, "widest gap {widest}");
        // A probe added later by a reload does not land on top of one already running.
        let added = steady_share(100);
        assert!(shares.iter().all(|s| (s - added).abs() > 1e-4), "{added}");
    }

    #[test]
    fn identical_checkers_of_several_virtual_servers_run_once() {
        let rs = |port: u16, retry: u32| {
            format!(
                "  real_server 192.0.2.21 {port} {{\n   TCP_CHECK {{\n    connect_port 80\n    retry {retry}\n   }}\n  }}\n"
            )
        };
        let c = config(&format!(
            "virtual_server 192.0.2.10 80 {{\n{}}}\nvirtual_server 192.0.2.10 8080 {{\n{}{}}}\nvirtual_server 192.0.2.11 80 {{\n lb_kind TUN\n{}}}\n",
            rs(80, 1),
            rs(8080, 1),
            rs(8081, 2),
            rs(80, 1)
        ));
        let refused = [false, false, true];
        let probes = distinct_probes(
            c.virtual_servers
                .iter()
                .zip(refused)
                .map(|(vs, r)| (!r).then_some(vs)),
        );
        // Both check 192.0.2.21:80 the same way: one probe for two checkers; another retry
        // count is another probe; the refused service adds none.
        assert_eq!(probes.len(), 2, "{probes:?}");
        assert_eq!(
            probes[0].2,
            vec![
                Subscriber {
                    vs: 0,
                    rs: 0,
                    checker: 0
                },
                Subscriber {
                    vs: 1,
                    rs: 0,
                    checker: 0
                }
            ]
        );
        assert_eq!(
            probes[1].2,
            vec![Subscriber {
                vs: 1,
                rs: 1,
                checker: 0
            }]
        );
        assert!(probes[0].1.ends_with("t.conf:3:4"), "{}", probes[0].1);
    }
}

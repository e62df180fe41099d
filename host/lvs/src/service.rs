//! One virtual server's state, as keepalived's check module keeps it (`check/ipwrapper.c`):
//! its real servers alive or not (all their checkers must be up), the quorum, the sorry
//! server — and the pool that follows from them ([`ServiceState::pool`]), a pure function of
//! the configuration and these states.
//!
//! - A real server goes down when its first checker fails and comes back when its last
//!   failing checker succeeds (`update_svr_checker_state`).
//! - Quorum: the live weight (sum of the effective weights of alive real servers) must stay
//!   at least `quorum − hysteresis` once up, and reach `quorum + hysteresis` to come up
//!   (`update_quorum_state`); losing it replaces the pool by the `sorry_server` (if any) and
//!   runs `quorum_down`, gaining it restores the pool and runs `quorum_up`.
//! - A failed real server leaves the pool, or stays at weight 0 with `inhibit_on_failure`;
//!   a sorry server with `sorry_server_inhibit` stays at weight 0 while not in use.

use std::net::SocketAddr;

use wasmalived_config::lvs::VirtualServer;

use crate::checker::{CheckerState, Step};

/// A member of a pool: where traffic goes and its weight (0: no new connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// Address and port.
    pub addr: SocketAddr,
    /// Weight.
    pub weight: u32,
}

/// A weight a checker reports with a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightReport {
    /// `misc_dynamic`: the real server's effective weight is this.
    Set(u32),
    /// `FILE_CHECK`: this is added to the configured weight (keepalived's
    /// `effective_weight += status`), the sum clamped to 0..=2³¹−1 (`real_weight`).
    Offset(i64),
}

impl WeightReport {
    /// The effective weight for a real server configured with `configured`.
    pub fn apply(self, configured: u32) -> u32 {
        match self {
            WeightReport::Set(w) => w,
            WeightReport::Offset(o) => {
                let sum = i64::from(configured).saturating_add(o);
                u32::try_from(sum.clamp(0, i64::from(i32::MAX))).unwrap_or(0)
            }
        }
    }
}

/// Something to tell the world about (notify scripts, logs, mail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Real server `rs` (index in the configuration) came up or went down: `notify_up` /
    /// `notify_down`. `initial` when the first check only confirmed the initial state.
    RealServer {
        /// Index of the real server.
        rs: usize,
        /// Now up.
        up: bool,
        /// Confirmation of the initial state by the first check.
        initial: bool,
    },
    /// The quorum was gained or lost: `quorum_up` / `quorum_down`.
    Quorum {
        /// Now up.
        up: bool,
        /// The live weight.
        weight: u64,
        /// The threshold crossed.
        threshold: u64,
        /// The service's start (or a reload): keepalived's "Starting with quorum up/down".
        initial: bool,
    },
    /// The sorry server replaced the pool, or left it.
    SorryServer {
        /// Now in use.
        active: bool,
    },
    /// A real server's effective weight changed (`misc_dynamic`, `FILE_CHECK`).
    Weight {
        /// Index of the real server.
        rs: usize,
        /// The new weight.
        weight: u32,
    },
}

/// One real server's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerState {
    /// Its checkers, in configuration order.
    pub checkers: Vec<CheckerState>,
    /// Alive: no checker down.
    pub alive: bool,
    /// Effective weight (the configured one, or set by a `misc_dynamic` checker).
    pub weight: u32,
}

/// A virtual server's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// Per real server, in configuration order.
    pub real_servers: Vec<RealServerState>,
    /// The quorum is met.
    pub quorum_up: bool,
    /// The sorry server is in the pool instead of the real servers.
    pub sorry_active: bool,
}

impl ServiceState {
    /// The state at start-up (keepalived `init_service_vs`): real servers without `alpha`
    /// checkers are alive; the quorum follows, with the sorry server if it is not met.
    ///
    /// As keepalived (its quorum starts down, then `update_quorum_state(init)`): a quorum met
    /// at the start is an initial [`Event::Quorum`] up — `quorum_up` runs, a `VS … UP` line is
    /// written; a quorum not met is an initial down only when a sorry server takes over.
    pub fn new(vs: &VirtualServer) -> (Self, Vec<Event>) {
        let real_servers = vs
            .real_servers
            .iter()
            .map(|rs| {
                let checkers: Vec<CheckerState> = rs
                    .checkers
                    .iter()
                    .map(|c| CheckerState::new(&c.timing))
                    .collect();
                RealServerState {
                    alive: checkers.iter().all(CheckerState::is_up),
                    checkers,
                    weight: rs.weight,
                }
            })
            .collect();
        let mut state = ServiceState {
            real_servers,
            quorum_up: true,
            sorry_active: false,
        };
        let threshold = u64::from(vs.quorum) + u64::from(vs.hysteresis);
        let weight = state.live_weight();
        state.quorum_up = weight >= threshold;
        let mut events = Vec::new();
        if state.quorum_up {
            events.push(Event::Quorum {
                up: true,
                weight,
                threshold,
                initial: true,
            });
        } else if vs.sorry_server.is_some() {
            // keepalived: "Starting with quorum down", and the sorry server in.
            state.sorry_active = true;
            events.push(Event::SorryServer { active: true });
            events.push(Event::Quorum {
                up: false,
                weight,
                threshold,
                initial: true,
            });
        }
        (state, events)
    }

    /// The state of `vs` after a reload replaced `old_vs` (keepalived's `migrate_checkers`):
    /// a real server with the same address and the same checkers keeps its states (a healthy
    /// server stays in the pool, a failed one stays out); any other starts afresh. The quorum
    /// carries over and is re-evaluated against the new weights and thresholds.
    pub fn carry_over(
        vs: &VirtualServer,
        old_vs: &VirtualServer,
        old: &ServiceState,
    ) -> (Self, Vec<Event>) {
        let (mut state, _) = ServiceState::new(vs);
        for (i, rs) in vs.real_servers.iter().enumerate() {
            let kept = old_vs
                .real_servers
                .iter()
                .position(|o| o.addr == rs.addr && same_checkers(&o.checkers, &rs.checkers))
                .and_then(|j| old.real_servers.get(j));
            if let Some(kept) = kept {
                let weight = state.real_servers[i].weight;
                state.real_servers[i] = kept.clone();
                // The configured weight applies, unless misc_dynamic or a FILE_CHECK set one
                // (their next result sets it again).
                let dynamic = rs.checkers.iter().any(|c| {
                    matches!(&c.kind, wasmalived_config::lvs::CheckerKind::Misc(m) if m.dynamic)
                        || matches!(&c.kind, wasmalived_config::lvs::CheckerKind::File(_))
                });
                if !dynamic {
                    state.real_servers[i].weight = weight;
                }
            }
        }
        state.quorum_up = old.quorum_up;
        state.sorry_active = old.sorry_active && vs.sorry_server.is_some();
        let mut events = state.update_quorum(vs, true);
        if !state.quorum_up && vs.sorry_server.is_some() && !state.sorry_active {
            state.sorry_active = true;
            events.push(Event::SorryServer { active: true });
        }
        (state, events)
    }

    /// The sum of the effective weights of the alive real servers.
    pub fn live_weight(&self) -> u64 {
        self.real_servers
            .iter()
            .filter(|r| r.alive)
            .map(|r| u64::from(r.weight))
            .sum()
    }

    /// Record a result of checker `checker` of real server `rs`; `weight` is a
    /// `misc_dynamic` or `FILE_CHECK` weight reported with a success (`None` with a success
    /// of a `misc_dynamic` checker — exit 0 — restores the configured weight). Returns when
    /// to check again and what changed.
    pub fn record(
        &mut self,
        vs: &VirtualServer,
        rs: usize,
        checker: usize,
        success: bool,
        weight: Option<WeightReport>,
    ) -> (Step, Vec<Event>) {
        let mut events = Vec::new();
        let Some(state) = self.real_servers.get_mut(rs) else {
            return (
                Step {
                    changed: None,
                    first: false,
                    next: crate::checker::Next::DelayLoop,
                },
                events,
            );
        };
        let configured = vs.real_servers.get(rs).map_or(1, |r| r.weight);
        let Some(c) = state.checkers.get_mut(checker) else {
            return (
                Step {
                    changed: None,
                    first: false,
                    next: crate::checker::Next::DelayLoop,
                },
                events,
            );
        };
        let step = c.record(success);
        // misc_dynamic: a success sets the weight, a failure resets it.
        // keepalived's check_misc.c: exit 0 of a misc_dynamic script restores the configured
        // weight, 2–255 sets it, a failure takes the dynamic part away again.
        let dynamic = vs
            .real_servers
            .get(rs)
            .and_then(|r| r.checkers.get(checker))
            .is_some_and(
                |c| matches!(&c.kind, wasmalived_config::lvs::CheckerKind::Misc(m) if m.dynamic),
            );
        let new_weight = match (success, weight) {
            (true, Some(w)) => w.apply(configured),
            (true, None) if dynamic => configured,
            (true, None) => state.weight,
            (false, _) => configured,
        };
        let weight_changed = new_weight != state.weight;
        state.weight = new_weight;
        let alive = state.checkers.iter().all(CheckerState::is_up);
        let was_alive = state.alive;
        state.alive = alive;
        if weight_changed {
            events.push(Event::Weight {
                rs,
                weight: new_weight,
            });
        }
        if alive != was_alive {
            events.push(Event::RealServer {
                rs,
                up: alive,
                initial: false,
            });
        } else if step.first && (!alive || vs.real_servers[rs].alpha) {
            // keepalived notifies when the first check confirms a down (or alpha) start.
            events.push(Event::RealServer {
                rs,
                up: alive,
                initial: true,
            });
        }
        if alive != was_alive || weight_changed {
            events.extend(self.update_quorum(vs, false));
        }
        (step, events)
    }

    /// keepalived `update_quorum_state`; `initial` at a start or reload.
    fn update_quorum(&mut self, vs: &VirtualServer, initial: bool) -> Vec<Event> {
        let weight = self.live_weight();
        let quorum = u64::from(vs.quorum);
        let hysteresis = u64::from(vs.hysteresis);
        let mut events = Vec::new();
        if !self.quorum_up {
            let threshold = quorum + hysteresis;
            if weight >= threshold {
                self.quorum_up = true;
                if self.sorry_active {
                    self.sorry_active = false;
                    events.push(Event::SorryServer { active: false });
                }
                events.push(Event::Quorum {
                    up: true,
                    weight,
                    threshold,
                    initial,
                });
            }
        } else {
            let threshold = quorum.saturating_sub(hysteresis);
            if weight == 0 || weight < threshold {
                self.quorum_up = false;
                if vs.sorry_server.is_some() && !self.sorry_active {
                    self.sorry_active = true;
                    events.push(Event::SorryServer { active: true });
                }
                events.push(Event::Quorum {
                    up: false,
                    weight,
                    threshold,
                    initial,
                });
            }
        }
        events
    }

    /// The pool as it must be now, in configuration order (sorry server last).
    pub fn pool(&self, vs: &VirtualServer) -> Vec<Member> {
        let mut members = Vec::new();
        for (cfg, state) in vs.real_servers.iter().zip(&self.real_servers) {
            let weight = if self.sorry_active || !state.alive {
                // Out of the pool, or kept at 0 with inhibit_on_failure (connections drain).
                if !cfg.inhibit_on_failure {
                    continue;
                }
                0
            } else {
                state.weight
            };
            members.push(Member {
                addr: cfg.addr,
                weight,
            });
        }
        if let Some(sorry) = &vs.sorry_server {
            let weight = if self.sorry_active { 1 } else { 0 };
            let duplicate = members.iter().any(|m| m.addr == sorry.addr);
            if !duplicate && (self.sorry_active || sorry.inhibit) {
                members.push(Member {
                    addr: sorry.addr,
                    weight,
                });
            }
        }
        members
    }
}

/// Whether two checker lists check the same way (their places in the file aside).
fn same_checkers(
    a: &[wasmalived_config::lvs::Checker],
    b: &[wasmalived_config::lvs::Checker],
) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.kind == y.kind && x.target == y.target && x.bind == y.bind && x.timing == y.timing
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use wasmalived_config::LoadOptions;

    fn vs(body: &str) -> VirtualServer {
        let text = format!("virtual_server 192.0.2.10 80 {{\n lb_algo rr\n{body}\n}}\n");
        wasmalived_config::parse_str(&text, Path::new("t.conf"), LoadOptions::default())
            .expect("valid")
            .config
            .virtual_servers
            .remove(0)
    }

    fn rs(n: u8, extra: &str) -> String {
        format!(
            " real_server 10.0.0.{n} 80 {{\n  weight {n}\n  {extra}\n  TCP_CHECK {{\n   retry 0\n  }}\n }}\n"
        )
    }

    fn addrs(pool: &[Member]) -> Vec<(String, u32)> {
        pool.iter()
            .map(|m| (m.addr.to_string(), m.weight))
            .collect()
    }

    #[test]
    fn failed_servers_leave_the_pool_or_stay_at_weight_zero_when_inhibited() {
        let v = vs(&format!("{}{}", rs(1, ""), rs(2, "inhibit_on_failure")));
        let (mut s, events) = ServiceState::new(&v);
        assert!(matches!(
            events.as_slice(),
            [Event::Quorum {
                up: true,
                initial: true,
                ..
            }]
        ));
        assert_eq!(
            addrs(&s.pool(&v)),
            [("10.0.0.1:80".into(), 1), ("10.0.0.2:80".into(), 2)]
        );
        let (_, e) = s.record(&v, 0, 0, false, None);
        assert_eq!(
            e,
            [Event::RealServer {
                rs: 0,
                up: false,
                initial: false
            }]
        );
        let (_, e) = s.record(&v, 1, 0, false, None);
        assert!(e.contains(&Event::RealServer {
            rs: 1,
            up: false,
            initial: false
        }));
        assert_eq!(addrs(&s.pool(&v)), [("10.0.0.2:80".into(), 0)]);
        // Back on one success.
        let (_, e) = s.record(&v, 0, 0, true, None);
        assert!(e.contains(&Event::RealServer {
            rs: 0,
            up: true,
            initial: false
        }));
        assert_eq!(
            addrs(&s.pool(&v)),
            [("10.0.0.1:80".into(), 1), ("10.0.0.2:80".into(), 0)]
        );
    }

    #[test]
    fn all_checkers_must_pass() {
        let v = vs(" real_server 10.0.0.1 80 {\n  TCP_CHECK {\n   retry 0\n  }\n  PING_CHECK {\n   retry 0\n  }\n }\n");
        let (mut s, _) = ServiceState::new(&v);
        s.record(&v, 0, 0, false, None);
        assert!(!s.real_servers[0].alive);
        let (_, e) = s.record(&v, 0, 1, false, None);
        assert!(e.is_empty(), "already down: no second notify_down");
        let (_, e) = s.record(&v, 0, 0, true, None);
        assert!(e.is_empty(), "one checker still down");
        let (_, e) = s.record(&v, 0, 1, true, None);
        assert!(
            e.contains(&Event::RealServer {
                rs: 0,
                up: true,
                initial: false
            }),
            "{e:?}"
        );
    }

    #[test]
    fn losing_the_quorum_brings_in_the_sorry_server_and_gaining_it_takes_it_out() {
        let v = vs(&format!(
            " quorum 3\n hysteresis 1\n sorry_server 10.0.0.99 80\n{}{}{}",
            rs(1, ""),
            rs(2, ""),
            rs(3, "")
        ));
        let (mut s, _) = ServiceState::new(&v);
        assert!(s.quorum_up);
        // Live 6 → 5 (≥ quorum − hysteresis = 2): still up.
        let (_, e) = s.record(&v, 0, 0, false, None);
        assert!(!e.iter().any(|e| matches!(e, Event::Quorum { .. })));
        // 5 → 3 → 0: down below 2.
        s.record(&v, 1, 0, false, None);
        let (_, e) = s.record(&v, 2, 0, false, None);
        assert!(e.contains(&Event::SorryServer { active: true }));
        assert!(e.contains(&Event::Quorum {
            up: false,
            weight: 0,
            threshold: 2,
            initial: false
        }));
        assert_eq!(addrs(&s.pool(&v)), [("10.0.0.99:80".into(), 1)]);
        // Up needs quorum + hysteresis = 4: 3 is not enough, 3 + 2 is.
        let (_, e) = s.record(&v, 2, 0, true, None);
        assert!(!e.iter().any(|e| matches!(e, Event::Quorum { .. })));
        assert_eq!(
            addrs(&s.pool(&v)),
            [("10.0.0.99:80".into(), 1)],
            "still the sorry server"
        );
        let (_, e) = s.record(&v, 1, 0, true, None);
        assert!(e.contains(&Event::Quorum {
            up: true,
            weight: 5,
            threshold: 4,
            initial: false
        }));
        assert!(e.contains(&Event::SorryServer { active: false }));
        assert_eq!(
            addrs(&s.pool(&v)),
            [("10.0.0.2:80".into(), 2), ("10.0.0.3:80".into(), 3)]
        );
    }

    #[test]
    fn the_start_tells_the_quorum_as_keepalived_does() {
        // Met: "Starting with quorum up" (quorum + hysteresis = 3 ≤ 1 + 2).
        let v = vs(&format!(
            " quorum 2
 hysteresis 1
{}{}",
            rs(1, ""),
            rs(2, "")
        ));
        let (_, events) = ServiceState::new(&v);
        assert_eq!(
            events,
            [Event::Quorum {
                up: true,
                weight: 3,
                threshold: 3,
                initial: true
            }]
        );
        // Not met (alpha: nothing alive yet) and no sorry server: keepalived says nothing.
        let v = vs(&format!(
            " alpha
{}",
            rs(1, "")
        ));
        let (s, events) = ServiceState::new(&v);
        assert!(!s.quorum_up && events.is_empty(), "{events:?}");
        // Not met with a sorry server: it takes over, "Starting with quorum down".
        let v = vs(&format!(
            " alpha
 sorry_server 10.0.0.99 80
{}",
            rs(1, "")
        ));
        let (_, events) = ServiceState::new(&v);
        assert_eq!(
            events,
            [
                Event::SorryServer { active: true },
                Event::Quorum {
                    up: false,
                    weight: 0,
                    threshold: 1,
                    initial: true
                }
            ]
        );
    }

    #[test]
    fn alpha_servers_start_out_of_the_pool_and_a_sorry_server_covers_them() {
        let v = vs(&format!(
            " alpha\n sorry_server 10.0.0.99 80\n sorry_server_inhibit\n{}",
            rs(1, "")
        ));
        let (mut s, events) = ServiceState::new(&v);
        assert!(!s.real_servers[0].alive);
        assert!(events.contains(&Event::SorryServer { active: true }));
        assert_eq!(addrs(&s.pool(&v)), [("10.0.0.99:80".into(), 1)]);
        let (_, e) = s.record(&v, 0, 0, true, None);
        assert!(e.contains(&Event::RealServer {
            rs: 0,
            up: true,
            initial: false
        }));
        // The inhibited sorry server stays at weight 0.
        assert_eq!(
            addrs(&s.pool(&v)),
            [("10.0.0.1:80".into(), 1), ("10.0.0.99:80".into(), 0)]
        );
    }

    #[test]
    fn misc_dynamic_sets_the_weight_and_a_failure_resets_it() {
        let v = vs(" real_server 10.0.0.1 80 {\n  weight 5\n  MISC_CHECK {\n   misc_path /bin/true\n   misc_dynamic\n  }\n }\n");
        let (mut s, _) = ServiceState::new(&v);
        let (_, e) = s.record(&v, 0, 0, true, Some(WeightReport::Set(20)));
        assert_eq!(e, [Event::Weight { rs: 0, weight: 20 }]);
        assert_eq!(addrs(&s.pool(&v)), [("10.0.0.1:80".into(), 20)]);
        let (_, e) = s.record(&v, 0, 0, false, None);
        assert!(e.contains(&Event::Weight { rs: 0, weight: 5 }));
        assert!(s.pool(&v).is_empty());
    }

    #[test]
    fn a_file_check_offsets_the_configured_weight_within_ipvs_bounds() {
        let v = vs(" real_server 10.0.0.1 80 {\n  weight 5\n  TCP_CHECK {\n   retry 0\n  }\n }\n");
        let (mut s, _) = ServiceState::new(&v);
        let (_, e) = s.record(&v, 0, 0, true, Some(WeightReport::Offset(-3)));
        assert_eq!(e, [Event::Weight { rs: 0, weight: 2 }]);
        // keepalived's real_weight: never below 0 (in the pool, no new connections).
        s.record(&v, 0, 0, true, Some(WeightReport::Offset(-30)));
        assert_eq!(addrs(&s.pool(&v)), [("10.0.0.1:80".into(), 0)]);
        assert_eq!(WeightReport::Offset(i64::MAX).apply(5), i32::MAX as u32);
        // A fault restores the configured weight and takes the server out.
        let (_, e) = s.record(&v, 0, 0, false, None);
        assert!(e.contains(&Event::Weight { rs: 0, weight: 5 }), "{e:?}");
        assert!(s.pool(&v).is_empty());
    }

    #[test]
    fn a_reload_keeps_the_states_of_unchanged_real_servers() {
        let old_vs = vs(&format!(" quorum 2\n{}{}", rs(1, ""), rs(2, "")));
        let (mut old, _) = ServiceState::new(&old_vs);
        old.record(&old_vs, 0, 0, false, None);
        assert!(!old.real_servers[0].alive);
        // .1 stays as it was (down), .2 gets a new checker (starts afresh), .3 is new.
        let new_vs = vs(&format!(
            " quorum 2\n{}{}{}",
            rs(1, ""),
            " real_server 10.0.0.2 80 {\n  weight 2\n  TCP_CHECK {\n   retry 3\n  }\n }\n",
            rs(3, "")
        ));
        let (s, events) = ServiceState::carry_over(&new_vs, &old_vs, &old);
        assert!(!s.real_servers[0].alive, "a failed server stays out");
        assert!(s.real_servers[1].alive && s.real_servers[2].alive);
        assert!(s.quorum_up && events.is_empty(), "{events:?}");
        assert_eq!(
            addrs(&s.pool(&new_vs)),
            [("10.0.0.2:80".into(), 2), ("10.0.0.3:80".into(), 3)]
        );
    }

    #[test]
    fn a_reload_raising_the_quorum_brings_the_sorry_server_in() {
        // .3 is down; the quorum 3 is met by .3 + .2 alone but not by .2 alone.
        let old_vs = vs(&format!(
            " sorry_server 10.0.0.99 80\n{}{}",
            rs(2, ""),
            rs(3, "")
        ));
        let (mut old, _) = ServiceState::new(&old_vs);
        old.record(&old_vs, 1, 0, false, None);
        assert!(old.quorum_up);
        let new_vs = vs(&format!(
            " quorum 3\n sorry_server 10.0.0.99 80\n{}{}",
            rs(2, ""),
            rs(3, "")
        ));
        let (s, events) = ServiceState::carry_over(&new_vs, &old_vs, &old);
        assert!(!s.quorum_up);
        assert!(events.contains(&Event::SorryServer { active: true }));
        assert_eq!(addrs(&s.pool(&new_vs)), [("10.0.0.99:80".into(), 1)]);
    }
}

//! Chaos behind an LVS director: two wasmalived directors (direct routing, one
//! `vrrp_sync_group`, `advert_int 1`) in front of nginx real servers, and a seeded schedule
//! of the faults that belong to a director: a real server dying (its nginx killed, later
//! restarted) and the Master director's machine dying (killed, links down, later booted
//! again). After each step, within the checker's and the protocol's bounds: exactly one
//! director holds the VIP and is MASTER, its pool is exactly the live real servers, and every
//! request the client sends through the VIP is served, by a live real server.

use std::thread;
use std::time::Duration;

use crate::chaos::schedule::Rng;
use crate::error::{LabError, Result};
use crate::lvs::{LvsLab, Mode, DIRECTORS, VIP};
use crate::timing::wait_for;

/// Real servers behind the directors.
pub const REAL_SERVERS: usize = 3;
/// The checker: `delay_loop 1`, `connect_timeout 1`, `retry 1`, `delay_before_retry 1`.
const TCP_CHECK: &str = "TCP_CHECK {\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }";
/// The daemon's own latency on a loaded machine (applying a pool, answering status).
const SLACK: Duration = Duration::from_secs(5);
/// A dead real server leaves the pool within `D + C + R × (B + C)` = 1 + 1 + 1 × (1 + 1) s.
const DOWN_BOUND: Duration = Duration::from_secs(4);
/// A recovered one is back within `D + C` = 2 s.
const UP_BOUND: Duration = Duration::from_secs(2);
/// Master_Down_Interval of the Backup director (priority 100, `advert_int 1`): 3 s + skew.
const MASTER_DOWN: Duration = Duration::from_millis(3610);
/// A director's start: the daemon loads its checker plugins and programs the pool.
const START: Duration = Duration::from_secs(60);
/// Requests through the VIP after each step.
const REQUESTS: usize = 12;

/// A fault of the director lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectorFault {
    /// Real server `n`'s nginx is killed, then started again.
    RealServerDies(usize),
    /// The Master director's machine dies, then boots again.
    MasterDirectorDies,
}

/// `rounds` faults for `seed`: both kinds at least once (the first two rounds), then drawn.
pub fn director_schedule(seed: u64, rounds: usize) -> Vec<DirectorFault> {
    let mut rng = Rng::new(seed);
    let first_director = rng.below(2) == 0;
    (0..rounds)
        .map(|r| {
            let director = match r {
                0 => first_director,
                1 => !first_director,
                _ => rng.below(3) == 0,
            };
            if director {
                DirectorFault::MasterDirectorDies
            } else {
                DirectorFault::RealServerDies(rng.below(REAL_SERVERS as u64) as usize)
            }
        })
        .collect()
}

/// The director lab with both directors running and d1 Master with the full pool.
pub struct DirectorLab {
    /// The LVS lab.
    pub lvs: LvsLab,
    config: [String; 2],
    alive: [bool; REAL_SERVERS],
}

impl DirectorLab {
    /// Builds and starts the lab (`test` seeds its unique names).
    pub fn start(test: &str) -> Result<DirectorLab> {
        let mut lvs = LvsLab::new(test, Mode::Dr, REAL_SERVERS)?;
        let members: Vec<(usize, u32)> = (0..REAL_SERVERS).map(|i| (i, 1)).collect();
        let vs = lvs.virtual_server("    lb_algo rr\n    delay_loop 1", &members, TCP_CHECK);
        let config = [lvs.config(0, &vs), lvs.config(1, &vs)];
        for (i, c) in config.iter().enumerate() {
            lvs.start_director(i, c)?;
        }
        let lab = DirectorLab {
            lvs,
            config,
            alive: [true; REAL_SERVERS],
        };
        lab.wait_converged(START)?;
        Ok(lab)
    }

    /// The pool every director should show: the live real servers, weight 1.
    fn live_pool(&self) -> Vec<(String, u64)> {
        (0..REAL_SERVERS)
            .filter(|&i| self.alive[i])
            .map(|i| (format!("{}:80", self.lvs.rs_addr(i)), 1))
            .collect()
    }

    /// The director that holds the VIP, if exactly one does and it is MASTER (the other,
    /// if running, BACKUP).
    fn sole_master(&self) -> Result<std::result::Result<usize, String>> {
        let holders = self.lvs.lab.holders(&DIRECTORS, VIP)?;
        let [holder] = holders.as_slice() else {
            return Ok(Err(format!("VIP held by {holders:?}")));
        };
        let m = DIRECTORS.iter().position(|d| d == holder).unwrap_or(0);
        for (i, name) in DIRECTORS.iter().enumerate() {
            let Ok(d) = self.lvs.director(i) else {
                continue;
            };
            if let Some(status) = d.proc.try_status()? {
                return Err(LabError::check(format!(
                    "{} exited ({status})\n{}",
                    d.describe(),
                    d.proc.log_tail(30)
                )));
            }
            let want = if i == m { "MASTER" } else { "BACKUP" };
            let st = d.state("VI_CLIENT").ok().flatten();
            if st.as_deref() != Some(want) {
                return Ok(Err(format!("VIP on {holder}, but {name} is {st:?}")));
            }
        }
        Ok(Ok(m))
    }

    /// Waits up to `bound` for the invariants: one Master director holding the VIP, its pool
    /// the live real servers, every request through the VIP served by a live one.
    pub fn wait_converged(&self, bound: Duration) -> Result<usize> {
        let mut master = 0;
        let want = self.live_pool();
        let dead: Vec<String> = (0..REAL_SERVERS)
            .filter(|&i| !self.alive[i])
            .map(|i| format!("rs{}", i + 1))
            .collect();
        let last = std::cell::RefCell::new(String::new());
        wait_for(
            "the director lab to converge (one Master director, its pool the live real \
             servers, every request served by a live one)",
            bound,
            Duration::from_millis(100),
            || {
                match self.sole_master()? {
                    Ok(m) => master = m,
                    Err(why) => {
                        *last.borrow_mut() = why;
                        return Ok(false);
                    }
                }
                let pool: Vec<(String, u64)> = self.lvs.pool(master)?.into_iter().collect();
                if pool != want || self.lvs.pending(master)? {
                    *last.borrow_mut() =
                        format!("pool of {} is {pool:?}, want {want:?}", DIRECTORS[master]);
                    return Ok(false);
                }
                let spread = self.lvs.spread(None, REQUESTS)?;
                let ok = !spread.contains_key("-") && dead.iter().all(|d| !spread.contains_key(d));
                if !ok {
                    *last.borrow_mut() =
                        format!("requests through the VIP: {spread:?} (dead: {dead:?})");
                }
                Ok(ok)
            },
            || format!("last: {}\n{}", last.borrow(), self.lvs.lab.log_summary(30)),
        )?;
        Ok(master)
    }

    /// Applies `fault` and its recovery, checking the invariants after each.
    pub fn apply(&mut self, fault: DirectorFault, master: usize) -> Result<usize> {
        match fault {
            DirectorFault::RealServerDies(rs) => {
                self.lvs.kill_nginx(rs)?;
                self.alive[rs] = false;
                self.wait_converged(DOWN_BOUND + SLACK)?;
                self.lvs.start_nginx(rs)?;
                self.alive[rs] = true;
                self.wait_converged(UP_BOUND + SLACK)
            }
            DirectorFault::MasterDirectorDies => {
                let node = DIRECTORS[master];
                self.lvs.crash_director(master)?;
                // A dead machine answers for nothing: its VIP goes with it (the kernel of a
                // killed daemon's namespace would keep it configured on the down link).
                self.lvs.lab.del_addr(node, VIP)?;
                self.wait_converged(MASTER_DOWN + SLACK)?;
                self.lvs
                    .lab
                    .run(node, &["ip", "link", "set", "eth0", "up"])?;
                // Carrier and DAD settle before the daemon looks at the link.
                thread::sleep(Duration::from_millis(200));
                let config = self.config[master].clone();
                self.lvs.start_director(master, &config)?;
                self.wait_converged(START)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_director_faults_come_first_and_the_schedule_replays() {
        for seed in 0..20 {
            let s = director_schedule(seed, 6);
            assert_eq!(s, director_schedule(seed, 6));
            let director = |f: &DirectorFault| *f == DirectorFault::MasterDirectorDies;
            assert_ne!(director(&s[0]), director(&s[1]), "{s:?}");
            for f in &s {
                if let DirectorFault::RealServerDies(n) = f {
                    assert!(*n < REAL_SERVERS);
                }
            }
        }
    }
}

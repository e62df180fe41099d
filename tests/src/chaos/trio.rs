//! The three-node lab the chaos runs use: `n1`, `n2`, `n3` (priorities 100, 90, 80, VRRPv3
//! over IPv4 with the run's `advert_int`, one VIP) running any mix of wasmalived and
//! keepalived, a `client`, the faults applied to one node, and the invariants checked after
//! each round.
//!
//! Checks on every node:
//! - `chk_swap` (weight −30, fall 1): a copy of the `trivial` plugin (wasmalived) or a
//!   `exit 0` script (keepalived) that [`FaultKind::PluginBroken`] swaps for a failing one;
//! - wasmalived only, `chk_good` (weight −30, fall 2): `tcp` to the node's own nginx on
//!   127.0.0.1:80, a service that stays up, so its verdict must stay `up` throughout;
//! - wasmalived only, with hostiles on: `busy_loop`, `memory_bomb`, `trap`, `log_flood` and a
//!   slow host call (`tcp` to an address nobody answers ARP for), weight −1 each.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::chaos::schedule::{Fault, FaultKind, Scales};
use crate::checks::{plugin_check, plugin_path, script_check, with_checks, CheckTiming, HOSTILE};
use crate::cmd;
use crate::config::{Proto, INSTANCE};
use crate::daemon::{Daemon, Impl};
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::partition::{self, Cut};

/// The VRRP nodes, in priority order.
pub const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The client probing the VIP.
pub const CLIENT: &str = "client";
/// Configured priorities of n1, n2, n3: 10 apart, more than the hostiles' −5 together.
pub const PRIORITIES: [u8; 3] = [100, 90, 80];
/// The protocol of every chaos lab (its `advert_int` is the trio's own).
pub const PROTO: Proto = Proto::V3Ipv4;
/// The benchmark's advert interval (the protocol's usual 0.1 s in this lab).
pub const BENCH_ADVERT_INT: Duration = Duration::from_millis(100);
/// The tests' advert interval: on a CI machine running other namespace tests next to three
/// debug daemons with hostile plugins, a Master's adverts can slip past a 0.36 s
/// Master_Down_Interval and a Backup take over for a moment (its gratuitous ARP then points
/// the client at a router about to yield); 0.3 s gives the invariants a margin the load does
/// not eat, at 1.1 s master-down.
pub const TEST_ADVERT_INT: Duration = Duration::from_millis(300);
/// The check every node has and [`FaultKind::PluginBroken`] breaks.
pub const SWAP_CHECK: &str = "chk_swap";
/// The check of a service that stays up (wasmalived nodes): its verdict must never flip.
pub const GOOD_CHECK: &str = "chk_good";
/// The interval of `chk_swap` and `chk_good`.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// What a restarted daemon needs before the protocol's bounds start counting: wasmalived
/// loading its plugins from its compilation cache, on a loaded debug build.
const START_ALLOWANCE: Duration = Duration::from_secs(15);
/// What the first start may take: a debug wasmalived compiles its eight plugins (seconds each
/// on a loaded 2-core machine) before its instances start, three daemons at once.
pub const FIRST_START_BOUND: Duration = Duration::from_secs(180);
/// An address of the lab's subnet nobody holds: a TCP connect to it waits for ARP to give up.
const UNANSWERED: &str = "192.0.2.250:80";

/// A check that moves the node below every other when it fails.
const DECISIVE: CheckTiming = CheckTiming {
    interval: 1,
    timeout: None,
    fall: 1,
    rise: 1,
    weight: -30,
};
/// The good check: the same weight, with one failure of tolerance.
const GOOD: CheckTiming = CheckTiming {
    fall: 2,
    ..DECISIVE
};

/// Three VRRP nodes and a client, with the daemons running.
pub struct Trio {
    /// The lab (public so that callers reach its helpers).
    pub lab: Lab,
    /// The implementation on each node.
    pub kinds: [Impl; 3],
    confs: [String; 3],
    daemons: [Option<Daemon>; 3],
    swap_files: [PathBuf; 3],
    hostile: bool,
    advert_int: Duration,
    /// Extra `global_defs` lines of every node (the benchmark's protocol-path knobs).
    global: Vec<String>,
}

/// What [`Trio::wait_converged`] found.
#[derive(Clone, Copy, Debug)]
pub struct Converged {
    /// The node holding the VIP.
    pub master: usize,
    /// How long it took.
    pub took: Duration,
}

impl Trio {
    /// Builds the lab (`test` seeds its unique names), starts nginx on the wasmalived nodes
    /// and the three daemons, n1 first, with `advert_int` (a multiple of 10 ms, VRRPv3's
    /// centiseconds). `hostile` adds the hostile plugins to every wasmalived node.
    pub fn start(
        test: &str,
        kinds: [Impl; 3],
        hostile: bool,
        advert_int: Duration,
    ) -> Result<Trio> {
        Self::start_with_global(test, kinds, hostile, advert_int, &[])
    }

    /// [`Trio::start`], with `global` added to every node's `global_defs` (e.g.
    /// `vrrp_rt_priority 50`).
    pub fn start_with_global(
        test: &str,
        kinds: [Impl; 3],
        hostile: bool,
        advert_int: Duration,
        global: &[&str],
    ) -> Result<Trio> {
        let mut lab = Lab::new(test)?;
        for (i, n) in NODES.iter().enumerate() {
            lab.add_node(
                n,
                &format!("192.0.2.{}/24", i + 1),
                &format!("2001:db8::{}/64", i + 1),
            )?;
        }
        lab.add_client(CLIENT, "192.0.2.100/24", "2001:db8::100/64")?;
        let swap_files = [0, 1, 2].map(|i| {
            let ext = match kinds[i] {
                Impl::Wasmalived => "wasm",
                Impl::Keepalived => "sh",
            };
            lab.dir().join(format!("{}-swap.{ext}", NODES[i]))
        });
        let mut trio = Trio {
            lab,
            kinds,
            confs: Default::default(),
            daemons: [None, None, None],
            swap_files,
            hostile,
            advert_int,
            global: std::iter::once(GARP_REFRESH)
                .chain(global.iter().copied())
                .map(str::to_string)
                .collect(),
        };
        for i in 0..3 {
            trio.write_swap(i, true)?;
            if kinds[i] == Impl::Wasmalived {
                trio.lab.start_nginx(NODES[i])?;
            }
            trio.confs[i] = trio.config(i)?;
        }
        for i in 0..3 {
            trio.restart(i)?;
        }
        Ok(trio)
    }

    /// The VIP.
    pub fn vip(&self) -> &'static str {
        PROTO.vip()
    }

    /// The Master_Down_Interval of a Backup with `priority` (RFC 5798 §6.1: 3 ×
    /// Master_Adver_Interval + (256 − priority) × Master_Adver_Interval / 256).
    pub fn master_down(&self, priority: u8) -> Duration {
        self.advert_int * 3 + self.advert_int * (256 - u32::from(priority)) / 256
    }

    /// The time scales faults are drawn from.
    pub fn scales(&self) -> Scales {
        Scales {
            master_down: self.master_down(PRIORITIES[2]),
            check_interval: CHECK_INTERVAL,
        }
    }

    /// How long the trio may take to satisfy the invariants after a fault's recovery
    /// action: a restarted daemon starting up and running its checks (rise 1, one interval
    /// each), then an election (the lowest Backup's Master_Down_Interval) and a preemption
    /// (another), each doubled for a loaded machine.
    pub fn convergence_bound(&self) -> Duration {
        START_ALLOWANCE + CHECK_INTERVAL * 2 + self.master_down(PRIORITIES[2]) * 4
    }

    /// Node `i`'s config text.
    fn config(&self, i: usize) -> Result<String> {
        let state = if i == 0 { "MASTER" } else { "BACKUP" };
        let mut conf = PROTO.conf(NODES[i], state, PRIORITIES[i]);
        conf.instance_mut().advert_int = format!("{}", self.advert_int.as_secs_f64());
        let global: Vec<&str> = self.global.iter().map(String::as_str).collect();
        let base = crate::checks::with_global(&conf.render(), &global)?;
        let swap = &self.swap_files[i];
        let mut blocks;
        let mut tracked = vec![SWAP_CHECK.to_string()];
        match self.kinds[i] {
            Impl::Keepalived => {
                blocks = script_check(SWAP_CHECK, &swap.to_string_lossy(), &DECISIVE);
            }
            Impl::Wasmalived => {
                blocks = plugin_check(SWAP_CHECK, swap, &[], &[], &DECISIVE);
                blocks.push_str(&plugin_check(
                    GOOD_CHECK,
                    &plugin_path("tcp")?,
                    &[("address", "127.0.0.1:80")],
                    &["allow_tcp 127.0.0.1:80"],
                    &GOOD,
                ));
                tracked.push(GOOD_CHECK.into());
                if self.hostile {
                    let (hostiles, names) = hostile_checks()?;
                    blocks.push_str(&hostiles);
                    tracked.extend(names);
                }
            }
        }
        let tracked: Vec<&str> = tracked.iter().map(String::as_str).collect();
        with_checks(&base, &blocks, &tracked)
    }

    /// Writes node `i`'s swappable check: the passing one (`good`) or the failing one,
    /// replaced atomically (a script may be executing, a plugin being read).
    fn write_swap(&self, i: usize, good: bool) -> Result<()> {
        let to = &self.swap_files[i];
        let tmp = to.with_extension("new");
        match self.kinds[i] {
            Impl::Wasmalived => {
                let from = plugin_path(if good { "trivial" } else { "trap" })?;
                fs::copy(&from, &tmp).map_err(|e| {
                    LabError::io(
                        format!("copying {} to {}", from.display(), tmp.display()),
                        e,
                    )
                })?;
            }
            Impl::Keepalived => {
                let code = if good { 0 } else { 1 };
                fs::write(&tmp, format!("#!/bin/sh\nexit {code}\n"))
                    .map_err(|e| LabError::io(format!("writing {}", tmp.display()), e))?;
                cmd::run(&["chmod", "0755", &tmp.to_string_lossy()])?;
            }
        }
        fs::rename(&tmp, to)
            .map_err(|e| LabError::io(format!("renaming {} to {}", tmp.display(), to.display()), e))
    }

    /// The daemon on node `i`.
    pub fn daemon(&self, i: usize) -> Result<&Daemon> {
        self.daemons[i]
            .as_ref()
            .ok_or_else(|| LabError::check(format!("{} has no daemon", NODES[i])))
    }

    /// Starts node `i`'s daemon (again) with its config.
    fn restart(&mut self, i: usize) -> Result<()> {
        let d = self
            .lab
            .start_daemon(self.kinds[i], NODES[i], &self.confs[i])?;
        self.daemons[i] = Some(d);
        Ok(())
    }

    /// Applies `fault` to node `i`, holds it, and performs its recovery action. Returns once
    /// the recovery action is done (the trio may still be converging).
    pub fn inject(&mut self, fault: &Fault, i: usize) -> Result<()> {
        let node = NODES[i];
        let pgid = self.daemon(i)?.proc.pid();
        match fault.kind {
            FaultKind::Kill9Restart => {
                self.lab.crash(self.daemon(i)?, &[self.vip()])?;
                thread::sleep(fault.hold);
                self.restart(i)?;
            }
            FaultKind::Freeze => {
                cmd::kill("STOP", pgid, true)?;
                partition::cut(&self.lab, node, &Cut::Isolate)?;
                thread::sleep(fault.hold);
                partition::heal(&self.lab, node)?;
                cmd::kill("CONT", pgid, true)?;
            }
            FaultKind::LinkFlap => {
                let veth = format!("v{node}");
                let br = self.lab.bridge_ns().to_string();
                cmd::run(&["ip", "-n", &br, "link", "set", &veth, "down"])?;
                thread::sleep(fault.hold);
                cmd::run(&["ip", "-n", &br, "link", "set", &veth, "up"])?;
            }
            FaultKind::Loss => {
                let file = self.lab.dir().join(format!("{node}-loss.nft"));
                fs::write(&file, loss_script(fault.loss_pct))
                    .map_err(|e| LabError::io(format!("writing {}", file.display()), e))?;
                self.lab
                    .run(node, &["nft", "-f", &file.to_string_lossy()])?;
                thread::sleep(fault.hold);
                self.lab
                    .run(node, &["nft", "delete", "table", "inet", LOSS_TABLE])?;
            }
            FaultKind::Partition => {
                partition::cut(&self.lab, node, &Cut::Isolate)?;
                thread::sleep(fault.hold);
                partition::heal(&self.lab, node)?;
            }
            FaultKind::Reload => {
                self.daemon(i)?.proc.signal("HUP")?;
                thread::sleep(fault.hold);
            }
            FaultKind::PluginBroken => {
                self.write_swap(i, false)?;
                self.reload_plugins(i)?;
                thread::sleep(fault.hold);
                self.write_swap(i, true)?;
                self.reload_plugins(i)?;
            }
        }
        Ok(())
    }

    /// wasmalived loads plugins at start and reload: SIGHUP after a plugin file changed.
    /// keepalived runs the script file anew each time: nothing to do.
    fn reload_plugins(&self, i: usize) -> Result<()> {
        match self.kinds[i] {
            Impl::Wasmalived => self.daemon(i)?.proc.signal("HUP"),
            Impl::Keepalived => Ok(()),
        }
    }

    /// Checks the invariants once. `Ok(Ok(master))` when they hold; `Ok(Err(why))` when they
    /// do not (yet); `Err` when a daemon died, which no waiting repairs.
    fn invariants(&self) -> Result<std::result::Result<usize, String>> {
        for i in 0..3 {
            let d = self.daemon(i)?;
            if let Some(status) = d.proc.try_status()? {
                return Err(LabError::check(format!(
                    "{} exited ({status}):\n{}",
                    d.describe(),
                    d.proc.log_tail(30)
                )));
            }
        }
        let holders = self.lab.holders(&NODES, self.vip())?;
        let states: Vec<Option<String>> = (0..3)
            .map(|i| {
                self.daemon(i)
                    .ok()
                    .and_then(|d| d.state(INSTANCE).ok().flatten())
            })
            .collect();
        let [holder] = holders.as_slice() else {
            return Ok(Err(format!("VIP held by {holders:?} (states {states:?})")));
        };
        let master = NODES.iter().position(|n| n == holder).unwrap_or(0);
        for (i, st) in states.iter().enumerate() {
            let want = if i == master { "MASTER" } else { "BACKUP" };
            if st.as_deref() != Some(want) {
                return Ok(Err(format!(
                    "VIP on {holder} only, but {} is {st:?}, not {want} (states {states:?})",
                    NODES[i]
                )));
            }
        }
        if !self.lab.ping(CLIENT, self.vip())? {
            return Ok(Err(format!(
                "VIP on {holder} (MASTER), but the client gets no ping reply"
            )));
        }
        Ok(Ok(master))
    }

    /// Waits up to `bound` for the invariants — exactly one node holds the VIP, it is
    /// MASTER and the others BACKUP (so no VIP on a non-Master), the client reaches it,
    /// every daemon runs — to hold twice, three advert intervals apart, with the same Master.
    pub fn wait_converged(&self, bound: Duration) -> Result<Converged> {
        let start = Instant::now();
        let settle = self.advert_int * 3;
        let mut last = String::from("not checked yet");
        while start.elapsed() < bound {
            match self.invariants()? {
                Ok(master) => {
                    thread::sleep(settle);
                    match self.invariants()? {
                        Ok(again) if again == master => {
                            return Ok(Converged {
                                master,
                                took: start.elapsed(),
                            })
                        }
                        Ok(again) => {
                            last =
                                format!("Master moved from {} to {}", NODES[master], NODES[again])
                        }
                        Err(why) => last = why,
                    }
                }
                Err(why) => last = why,
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(LabError::Timeout {
            what: "the trio to converge (one VIP holder, MASTER; others BACKUP; client reaches it)"
                .into(),
            after: start.elapsed(),
            detail: format!("last: {last}\n{}", self.lab.log_summary(30)),
        })
    }

    /// Every wasmalived node's good check is `up` within `bound` (a restarted daemon reports
    /// `init` until its first run); `down` or `fatal` fails at once: that verdict flipped.
    pub fn expect_good_checks(&self, bound: Duration) -> Result<()> {
        for i in 0..3 {
            if self.kinds[i] != Impl::Wasmalived {
                continue;
            }
            let d = self.daemon(i)?;
            let start = Instant::now();
            loop {
                let st = d.check_status(GOOD_CHECK)?;
                match st.state.as_str() {
                    "up" => break,
                    "down" | "fatal" => {
                        return Err(LabError::check(format!(
                            "good check {GOOD_CHECK} of {} flipped to {} ({}) while hostile \
                             plugins ran next to it\n{}",
                            d.describe(),
                            st.state,
                            st.last,
                            d.proc.log_tail(30)
                        )))
                    }
                    _ if start.elapsed() > bound => {
                        return Err(LabError::check(format!(
                            "good check {GOOD_CHECK} of {} still {} after {bound:?}",
                            d.describe(),
                            st.state
                        )))
                    }
                    _ => thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        Ok(())
    }
}

/// Every node's `global_defs` line for a periodic gratuitous ARP while Master. A Backup on a
/// lossy link that misses three adverts takes over for a moment and its gratuitous ARPs point
/// the client at it; if its own adverts are all lost too, the Master never hears of it and
/// has no reason to announce again, and the client keeps sending to the Backup's MAC until its
/// ARP entry expires (15–45 s, longer than the convergence wait). keepalived has the same
/// protocol behaviour; operators of lossy LANs set this refresh, and so does the lab.
const GARP_REFRESH: &str = "vrrp_garp_master_refresh 1";

/// The nftables table a [`FaultKind::Loss`] lives in.
const LOSS_TABLE: &str = "wa_chaos_loss";

/// Drops `pct` % of what enters or leaves `eth0`, at random per packet.
fn loss_script(pct: u8) -> String {
    format!(
        "table inet {LOSS_TABLE} {{\n\
         \x20 chain in {{\n    type filter hook input priority -20; policy accept;\n\
         \x20   iifname \"eth0\" numgen random mod 100 < {pct} drop\n  }}\n\
         \x20 chain out {{\n    type filter hook output priority -20; policy accept;\n\
         \x20   oifname \"eth0\" numgen random mod 100 < {pct} drop\n  }}\n}}\n"
    )
}

/// The hostile checks' blocks and names: busy loop (burns its whole timeout), memory bomb,
/// trap, log flood, and a slow host call.
fn hostile_checks() -> Result<(String, Vec<String>)> {
    let (mut blocks, mut names) = crate::checks::hostile_checks(
        &["busy_loop", "memory_bomb", "trap", "log_flood"],
        &HOSTILE,
    )?;
    // A host call that blocks: a TCP connect the host waits on until ARP gives up or the
    // plugin's own timeout ends it.
    let grant = format!("allow_tcp {UNANSWERED}");
    blocks.push_str(&plugin_check(
        "hostile_slow_connect",
        &plugin_path("tcp")?,
        &[("address", UNANSWERED), ("timeout_ms", "2500")],
        &[&grant],
        &CheckTiming {
            interval: 3,
            timeout: Some(3),
            ..HOSTILE
        },
    ));
    names.push("hostile_slow_connect".into());
    Ok((blocks, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rule_is_random_per_packet_on_eth0_both_ways() {
        let s = loss_script(35);
        assert!(s.starts_with("table inet wa_chaos_loss {"));
        assert!(s.contains("iifname \"eth0\" numgen random mod 100 < 35 drop"));
        assert!(s.contains("oifname \"eth0\" numgen random mod 100 < 35 drop"));
    }

    #[test]
    fn master_down_matches_the_protocol_at_the_bench_interval() {
        // The same formula as the lab's Proto (RFC 5798 §6.1), at 0.1 s.
        let ours = BENCH_ADVERT_INT * 3 + BENCH_ADVERT_INT * (256 - 80) / 256;
        assert_eq!(ours, PROTO.master_down(80));
        assert!(
            TEST_ADVERT_INT.as_millis().is_multiple_of(10),
            "VRRPv3 counts centiseconds"
        );
    }
}

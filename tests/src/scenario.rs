//! The two-node scenario every end-to-end test and the benchmark builds on: nodes `n1`
//! (192.0.2.1, 2001:db8::1, priority 100, `state MASTER`) and `n2` (.2, priority 99,
//! `state BACKUP`) running any mix of implementations, plus a `client` (.100).

use std::time::Duration;

use crate::capture::{Packet, PacketKind};
use crate::config::{KeepalivedConf, Proto, INSTANCE, VRID};
use crate::daemon::{Daemon, Impl};
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::timing::now_epoch;

/// Node names, index 0 and 1.
pub const NODES: [&str; 2] = ["n1", "n2"];
/// The client's name.
pub const CLIENT: &str = "client";
/// Default priorities of n1 and n2.
pub const PRIORITIES: [u8; 2] = [100, 99];

/// Two VRRP nodes and a client in one lab.
pub struct Pair {
    /// The lab (public so tests can reach every helper).
    pub lab: Lab,
    /// The protocol variant.
    pub proto: Proto,
    /// Implementation per node.
    pub kinds: [Impl; 2],
    /// Config per node (change before [`Pair::start`] to customise).
    pub confs: [KeepalivedConf; 2],
    daemons: [Option<Daemon>; 2],
}

impl Pair {
    /// Builds the lab with n1, n2 and the client; nothing is started yet.
    pub fn new(test: &str, proto: Proto, kinds: [Impl; 2]) -> Result<Pair> {
        let mut lab = Lab::new(test)?;
        lab.add_node(NODES[0], "192.0.2.1/24", "2001:db8::1/64")?;
        lab.add_node(NODES[1], "192.0.2.2/24", "2001:db8::2/64")?;
        lab.add_client(CLIENT, "192.0.2.100/24", "2001:db8::100/64")?;
        let confs = [
            proto.conf(NODES[0], "MASTER", PRIORITIES[0]),
            proto.conf(NODES[1], "BACKUP", PRIORITIES[1]),
        ];
        Ok(Pair {
            lab,
            proto,
            kinds,
            confs,
            daemons: [None, None],
        })
    }

    /// Switches both configs to unicast between n1 and n2 (IPv4 or IPv6 node addresses
    /// according to the protocol).
    pub fn use_unicast(&mut self) -> Result<()> {
        let v6 = self.proto == Proto::V3Ipv6;
        let addr = |i: usize| -> Result<String> {
            let n = self.lab.node(NODES[i])?;
            Ok(if v6 { n.v6 } else { n.v4 }.to_string())
        };
        let (a0, a1) = (addr(0)?, addr(1)?);
        self.confs[0] = self.confs[0].clone().unicast(&a0, &[&a1]);
        self.confs[1] = self.confs[1].clone().unicast(&a1, &[&a0]);
        Ok(())
    }

    /// The VIP address.
    pub fn vip(&self) -> &'static str {
        self.proto.vip()
    }

    /// Starts (or restarts) node `i` with its config.
    pub fn start(&mut self, i: usize) -> Result<()> {
        let text = self.confs[i].render();
        let d = self.lab.start_daemon(self.kinds[i], NODES[i], &text)?;
        self.daemons[i] = Some(d);
        Ok(())
    }

    /// Starts (or restarts) node `i` with config text of its own (e.g. with checks added).
    pub fn start_with(&mut self, i: usize, text: &str) -> Result<()> {
        self.start_with_env(i, text, &[])
    }

    /// [`Pair::start_with`] with extra environment variables for the daemon (a later
    /// `RUST_LOG` replaces the lab's debug default, for long runs under load).
    pub fn start_with_env(&mut self, i: usize, text: &str, env: &[(&str, &str)]) -> Result<()> {
        let d = self
            .lab
            .start_daemon_env(self.kinds[i], NODES[i], text, env)?;
        self.daemons[i] = Some(d);
        Ok(())
    }

    /// Starts (or restarts) node `i` with `text` from the initial network namespace, the
    /// daemon entering the node's namespace by `net_namespace` (see
    /// [`Lab::start_daemon_net_namespace`]).
    pub fn start_net_namespace_with(&mut self, i: usize, text: &str) -> Result<()> {
        let d = self
            .lab
            .start_daemon_net_namespace(self.kinds[i], NODES[i], text)?;
        self.daemons[i] = Some(d);
        Ok(())
    }

    /// Starts both nodes, n1 first.
    pub fn start_both(&mut self) -> Result<()> {
        self.start(0)?;
        self.start(1)
    }

    /// Starts n1 alone with `texts[0]` until it holds the VIP by itself, then n2 with
    /// `texts[1]`, and waits for n1 as Master and n2 as Backup. Started together, both
    /// master-down timers can expire at once, and a GARP from n2's moment as Master would
    /// point the client at n2.
    pub fn start_n1_then_n2(&mut self, texts: [&str; 2]) -> Result<()> {
        self.start_with(0, texts[0])?;
        self.lab
            .wait_sole_holder(&NODES, self.vip(), NODES[0], self.election_timeout())?;
        self.start_with(1, texts[1])?;
        self.expect_master(0, self.election_timeout())?;
        Ok(())
    }

    /// Waits until check `check` reports `up` on both nodes.
    pub fn wait_check_up_on_both(&self, check: &str, timeout: Duration) -> Result<()> {
        for i in 0..2 {
            self.lab.wait_check(self.daemon(i)?, check, "up", timeout)?;
        }
        Ok(())
    }

    /// The daemon on node `i`.
    pub fn daemon(&self, i: usize) -> Result<&Daemon> {
        self.daemons
            .get(i)
            .and_then(|d| d.as_ref())
            .ok_or_else(|| LabError::check(format!("{} has no daemon running", NODES[i])))
    }

    /// Waits until node `i` is Master and the only VIP holder, and the other node, if it
    /// runs, is Backup. Returns the time it took for the VIP to settle.
    pub fn expect_master(&self, i: usize, timeout: Duration) -> Result<Duration> {
        let took = self
            .lab
            .wait_sole_holder(&NODES, self.vip(), NODES[i], timeout)?;
        self.lab
            .wait_state(self.daemon(i)?, INSTANCE, "MASTER", Duration::from_secs(2))?;
        let other = 1 - i;
        if let Ok(d) = self.daemon(other) {
            if d.proc.is_running() {
                self.lab
                    .wait_state(d, INSTANCE, "BACKUP", Duration::from_secs(2))?;
            }
        }
        Ok(took)
    }

    /// The client reaches the VIP and its neighbour cache maps it to node `i`'s MAC.
    /// After a failover (`after_failover`), the cache must already follow the new Master's
    /// gratuitous ARP / unsolicited NA *before* any ping re-resolves it.
    pub fn expect_client_follows(&self, i: usize, after_failover: bool) -> Result<()> {
        let vip = self.vip();
        if after_failover {
            self.lab
                .expect_neigh(CLIENT, vip, NODES[i], Duration::from_secs(2))
                .map_err(|e| {
                    LabError::check(format!(
                        "the client's neighbour cache did not follow {}'s GARP/NA: {e}",
                        NODES[i]
                    ))
                })?;
        }
        self.lab.expect_ping(CLIENT, vip, Duration::from_secs(3))?;
        self.lab
            .expect_neigh(CLIENT, vip, NODES[i], Duration::from_secs(1))
    }

    /// Crashes node `i` (SIGKILL to its group, stale VIP removed); returns the wall-clock
    /// time just before the signal.
    pub fn crash(&mut self, i: usize) -> Result<f64> {
        let t = now_epoch();
        self.lab.crash(self.daemon(i)?, &[self.vip()])?;
        Ok(t)
    }

    /// SIGTERM to node `i` and waits (up to 5 s) for it to exit; returns the wall-clock time
    /// just before the signal. Fails if the daemon leaves its VIP behind.
    pub fn term(&mut self, i: usize) -> Result<f64> {
        let t = now_epoch();
        let d = self.daemon(i)?;
        d.term()?;
        d.wait_exit(Duration::from_secs(5))?;
        if self.lab.has_addr(NODES[i], self.vip())? {
            return Err(LabError::check(format!(
                "{} exited after SIGTERM but left VIP {} on {}\n{}",
                d.describe(),
                self.vip(),
                NODES[i],
                d.proc.log_tail(20)
            )));
        }
        Ok(t)
    }

    /// How long an election may take: keepalived and RFC-following daemons start as Backup
    /// and wait a master-down interval; doubled plus slack for a loaded CI machine.
    pub fn election_timeout(&self) -> Duration {
        self.proto.master_down(PRIORITIES[1]) * 2 + Duration::from_secs(4)
    }

    /// How long a failover may take: the Backup's master-down interval plus slack.
    pub fn failover_timeout(&self) -> Duration {
        self.proto.master_down(PRIORITIES[1]) + Duration::from_secs(3)
    }

    /// Checks that the capture holds a priority-0 advert (RFC 3768/5798 §6.4.3 "Shutdown")
    /// sent by node `i` (matched by MAC, so IPv6 link-local sources work too) after `after`.
    pub fn expect_priority_zero_from(
        &self,
        packets: &[Packet],
        i: usize,
        after: f64,
    ) -> Result<()> {
        let mac = self.lab.node(NODES[i])?.mac.clone();
        let found = packets.iter().any(|p| {
            p.t >= after
                && p.src_mac == mac
                && matches!(p.kind, PacketKind::Advert { vrid, prio: 0, .. } if vrid == VRID)
        });
        if found {
            return Ok(());
        }
        let from_node: Vec<String> = packets
            .iter()
            .filter(|p| p.src_mac == mac && p.t >= after)
            .map(|p| format!("{:.3} {:?}", p.t, p.kind))
            .take(10)
            .collect();
        Err(LabError::check(format!(
            "{} sent no priority-0 advert after SIGTERM (t >= {after:.3}); its frames: {from_node:?}\n{}",
            self.daemon(i).map(|d| d.describe()).unwrap_or_default(),
            self.lab.log_summary(20)
        )))
    }

    /// Marks the test as passed (logs are deleted) and tears everything down.
    pub fn pass(self) -> Result<()> {
        self.lab.pass()
    }
}

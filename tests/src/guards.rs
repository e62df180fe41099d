//! Split-brain guards in the lab (issue 5): a wasmalived pair whose instances track one stock
//! guard plugin — `disk-lock` on a directory both namespaces see, `quorum` with witnesses on
//! the client host, or `quorum` arbitrated by a real etcd on its own lab host — with the
//! backends started by the lab. Shared by `tests/split_brain.rs` and the `guard_bench` binary.
//!
//! All configs use VRRPv3 over IPv4 with [`ADVERT_INT`] and a `weight 0` check, so a failing
//! or fatal guard puts the instance in Fault (priority-0 advert, VIP released).

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::checks::{plugin_check, plugin_path, with_checks, CheckTiming};
use crate::config::{Proto, INSTANCE};
use crate::daemon::{Daemon, Impl};
use crate::error::{LabError, Result};
use crate::process::Proc;
use crate::scenario::{Pair, CLIENT, NODES, PRIORITIES};
use crate::timing::wait_for;

/// `advert_int` of every guarded-pair config.
pub const ADVERT_INT: &str = "0.3";
/// The check's name in every config.
pub const CHECK: &str = "chk_guard";
/// Check interval and timeout, seconds.
pub const CHECK_INTERVAL_S: u32 = 1;
/// disk-lock `lease_ms` (> margin + interval).
pub const LEASE_MS: u64 = 4000;
/// disk-lock `renew_margin_ms` (> interval + timeout).
pub const RENEW_MARGIN_MS: u64 = 2500;
/// quorum/etcd `ttl_s` (interval + timeout ≤ ttl / 2).
pub const ETCD_TTL_S: u64 = 4;
/// The witness: `python3 -m http.server` in the client namespace.
pub const WITNESS: &str = "192.0.2.100:8000";
/// The etcd host's name, addresses and client URL.
pub const ETCD_NODE: &str = "etcd";
/// etcd's client URL on the lab bridge.
pub const ETCD_URL: &str = "http://192.0.2.50:2379";

/// The advert interval as a duration.
pub fn advert_interval() -> Duration {
    Duration::from_millis(300)
}

/// Master-down interval of a Backup with `priority` at [`ADVERT_INT`] (RFC 5798 §6.1).
pub fn master_down(priority: u8) -> Duration {
    let adv = advert_interval().as_secs_f64();
    Duration::from_secs_f64(3.0 * adv + (256.0 - f64::from(priority)) * adv / 256.0)
}

/// Which guard both nodes track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// No guard: plain VRRP.
    None,
    /// `disk-lock` on a shared directory.
    DiskLock,
    /// `quorum`, mode `witnesses` (a TCP and an HTTP witness on the client).
    QuorumWitness,
    /// `quorum`, mode `etcd` (a real etcd on its own lab host).
    QuorumEtcd,
}

impl Guard {
    /// Every guard, unguarded first.
    pub const ALL: [Guard; 4] = [
        Guard::None,
        Guard::DiskLock,
        Guard::QuorumWitness,
        Guard::QuorumEtcd,
    ];

    /// `none`, `disk-lock`, `quorum-witness`, `quorum-etcd`.
    pub fn name(self) -> &'static str {
        match self {
            Guard::None => "none",
            Guard::DiskLock => "disk-lock",
            Guard::QuorumWitness => "quorum-witness",
            Guard::QuorumEtcd => "quorum-etcd",
        }
    }

    /// The guard named `s` (as [`Guard::name`] prints it).
    pub fn parse(s: &str) -> Option<Guard> {
        Guard::ALL.into_iter().find(|g| g.name() == s)
    }

    /// The longest the guard itself may hold back a takeover after the holder crashes: the
    /// lease/TTL still running plus one check run (interval + timeout). Zero for no guard and
    /// for witnesses (the survivor keeps quorum).
    pub fn takeover_delay_bound(self) -> Duration {
        let run = Duration::from_secs(2 * u64::from(CHECK_INTERVAL_S));
        match self {
            Guard::None | Guard::QuorumWitness => Duration::ZERO,
            Guard::DiskLock => Duration::from_millis(LEASE_MS) + run,
            Guard::QuorumEtcd => Duration::from_secs(ETCD_TTL_S) + run,
        }
    }
}

/// The parts of `wasmalived status --json` the split-brain tests look at.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardStatus {
    /// `MASTER`, `BACKUP`, `FAULT`, `INIT`.
    pub state: String,
    /// Whether the split-brain alarm is up.
    pub split_brain: bool,
    /// How often it was raised.
    pub split_brain_events: u64,
    /// Why the instance is in Fault (empty otherwise).
    pub fault_reasons: Vec<String>,
}

/// Extracts [`GuardStatus`] of `instance` from a status document.
pub fn parse_guard_status(json: &str, instance: &str) -> Result<GuardStatus> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| LabError::parse("wasmalived status JSON", json))?;
    let inst = v
        .get("instances")
        .and_then(|i| i.as_array())
        .and_then(|l| {
            l.iter()
                .find(|i| i.get("name").and_then(|n| n.as_str()) == Some(instance))
        })
        .ok_or_else(|| LabError::parse(format!("status JSON without instance {instance}"), json))?;
    Ok(GuardStatus {
        state: inst
            .get("state")
            .and_then(|s| s.as_str())
            .ok_or_else(|| LabError::parse("status JSON instance without state", json))?
            .to_string(),
        split_brain: inst
            .get("split_brain")
            .and_then(|b| b.as_bool())
            .ok_or_else(|| LabError::parse("status JSON instance without split_brain", json))?,
        split_brain_events: inst
            .get("counters")
            .and_then(|c| c.get("split_brain_events"))
            .and_then(|n| n.as_u64())
            .unwrap_or(0),
        fault_reasons: inst
            .get("fault_reasons")
            .and_then(|r| r.as_array())
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// A two-node wasmalived pair (n1 priority 100, n2 99, client .100) guarded by [`Guard`],
/// with the guard's backend running.
pub struct GuardedPair {
    /// The pair (its lab holds every process).
    pub pair: Pair,
    /// The guard.
    pub guard: Guard,
    /// Extra lines per node inside `vrrp_instance` (hooks, `heartbeat_interface`).
    pub instance_lines: [Vec<String>; 2],
    shared: PathBuf,
    backend: Option<Proc>,
}

impl GuardedPair {
    /// Builds the lab and starts the guard's backend (witness server, etcd); no daemon yet.
    pub fn new(test: &str, guard: Guard) -> Result<GuardedPair> {
        Self::with_proto(test, guard, Proto::V3Ipv4)
    }

    /// [`GuardedPair::new`] over `proto` (VRRPv3 over IPv4 or IPv6).
    pub fn with_proto(test: &str, guard: Guard, proto: Proto) -> Result<GuardedPair> {
        crate::daemon::wasmalived_bin()?;
        let mut pair = Pair::new(test, proto, [Impl::Wasmalived; 2])?;
        for c in &mut pair.confs {
            c.instance_mut().advert_int = ADVERT_INT.into();
        }
        let shared = pair.lab.dir().join("shared");
        fs::create_dir_all(&shared)
            .map_err(|e| LabError::io(format!("creating {}", shared.display()), e))?;
        let backend = match guard {
            Guard::None | Guard::DiskLock => None,
            Guard::QuorumWitness => Some(start_witness(&pair)?),
            Guard::QuorumEtcd => Some(start_etcd(&mut pair)?),
        };
        Ok(GuardedPair {
            pair,
            guard,
            instance_lines: [Vec::new(), Vec::new()],
            shared,
            backend,
        })
    }

    /// The backend process (witness server or etcd), if the guard has one.
    pub fn backend(&self) -> Option<&Proc> {
        self.backend.as_ref()
    }

    /// The `vrrp_script` block of node `i`'s guard (empty for [`Guard::None`]).
    pub fn check_block(&self, i: usize) -> Result<String> {
        let timing = CheckTiming {
            interval: CHECK_INTERVAL_S,
            timeout: Some(CHECK_INTERVAL_S),
            fall: 1,
            rise: 1,
            weight: 0,
        };
        let node = NODES[i];
        let lease = LEASE_MS.to_string();
        let margin = RENEW_MARGIN_MS.to_string();
        let ttl = ETCD_TTL_S.to_string();
        let dir = self.shared.to_string_lossy().into_owned();
        let tcp_w = format!("tcp:{WITNESS}");
        let http_w = format!("http://{WITNESS}/");
        let etcd_tcp = ETCD_URL.trim_start_matches("http://").to_string();
        let etcd_http = format!("{ETCD_URL}/v3/");
        Ok(match self.guard {
            Guard::None => String::new(),
            Guard::DiskLock => plugin_check(
                CHECK,
                &plugin_path("disk_lock")?,
                &[
                    ("dir", &dir),
                    ("node_id", node),
                    ("lease_ms", &lease),
                    ("renew_margin_ms", &margin),
                    ("on_conflict", "fatal"),
                ],
                &[&format!("allow_dir {dir} rw")],
                &timing,
            ),
            Guard::QuorumWitness => plugin_check(
                CHECK,
                &plugin_path("quorum")?,
                &[
                    ("mode", "witnesses"),
                    ("witness", &tcp_w),
                    ("witness", &http_w),
                    ("timeout_ms", "500"),
                    ("on_loss", "fail"),
                ],
                &[
                    &format!("allow_tcp {WITNESS}"),
                    &format!("allow_http {http_w}"),
                ],
                &timing,
            ),
            Guard::QuorumEtcd => plugin_check(
                CHECK,
                &plugin_path("quorum")?,
                &[
                    ("mode", "etcd"),
                    ("etcd", ETCD_URL),
                    ("key", "/wasmalived/VI_1"),
                    ("node_id", node),
                    ("ttl_s", &ttl),
                    ("timeout_ms", "800"),
                    ("on_conflict", "fatal"),
                ],
                &[
                    &format!("allow_http {etcd_http}"),
                    &format!("allow_tcp {etcd_tcp}"),
                ],
                &timing,
            ),
        })
    }

    /// Node `i`'s whole config: the pair's config with the guard tracked and
    /// [`GuardedPair::instance_lines`] added to the instance.
    pub fn config(&self, i: usize) -> Result<String> {
        let base = self.pair.confs[i].render();
        let text = match self.guard {
            Guard::None => base,
            _ => with_checks(&base, &self.check_block(i)?, &[CHECK])?,
        };
        Ok(with_instance_lines(&text, &self.instance_lines[i]))
    }

    /// Starts (or restarts) node `i`.
    pub fn start(&mut self, i: usize) -> Result<()> {
        let text = self.config(i)?;
        self.pair.start_with(i, &text)
    }

    /// Starts n1, waits until it is the only Master, then starts n2 and waits until the pair
    /// settled with n1 Master (so n1 takes any lease first, as in a real deployment where the
    /// first node up wins).
    pub fn start_both(&mut self) -> Result<()> {
        self.start(0)?;
        let first = master_down(PRIORITIES[0]) * 2 + Duration::from_secs(10);
        self.pair
            .lab
            .wait_sole_holder(&NODES, self.pair.vip(), NODES[0], first)?;
        self.start(1)?;
        let i = self.wait_one_master(Duration::from_secs(15))?;
        if i != 0 {
            return Err(LabError::check(format!(
                "after n2 joined, {} is Master instead of n1\n{}",
                NODES[i],
                self.pair.lab.log_summary(20)
            )));
        }
        Ok(())
    }

    /// The daemon of node `i`.
    pub fn daemon(&self, i: usize) -> Result<&Daemon> {
        self.pair.daemon(i)
    }

    /// Node `i`'s [`GuardStatus`].
    pub fn status(&self, i: usize) -> Result<GuardStatus> {
        parse_guard_status(&self.daemon(i)?.status_json()?, INSTANCE)
    }

    /// Indices of the nodes holding the VIP now.
    pub fn holders(&self) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        for (i, n) in NODES.iter().enumerate() {
            if self.pair.lab.has_addr(n, self.pair.vip())? {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Whether exactly one node holds the VIP and reports Master while the other (if its
    /// daemon runs) does not; the Master's index.
    pub fn one_master(&self) -> Result<Option<usize>> {
        let h = self.holders()?;
        let [i] = h.as_slice() else { return Ok(None) };
        let i = *i;
        if self.daemon(i)?.state(INSTANCE)?.as_deref() != Some("MASTER") {
            return Ok(None);
        }
        if let Ok(d) = self.daemon(1 - i) {
            if d.proc.is_running() && d.state(INSTANCE)?.as_deref() == Some("MASTER") {
                return Ok(None);
            }
        }
        Ok(Some(i))
    }

    /// Waits until [`GuardedPair::one_master`] holds; the Master's index.
    pub fn wait_one_master(&self, timeout: Duration) -> Result<usize> {
        self.wait_master_where("exactly one Master holding the VIP", timeout, |_| true)
    }

    /// Waits until node `i` is the one Master ([`GuardedPair::one_master`]).
    pub fn wait_master(&self, i: usize, timeout: Duration) -> Result<Duration> {
        let start = std::time::Instant::now();
        let what = format!("{} to be the one Master holding the VIP", NODES[i]);
        self.wait_master_where(&what, timeout, |m| m == i)?;
        Ok(start.elapsed())
    }

    fn wait_master_where(
        &self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(usize) -> bool,
    ) -> Result<usize> {
        let mut found = None;
        wait_for(
            what,
            timeout,
            Duration::from_millis(20),
            || {
                found = self.one_master()?.filter(|m| accept(*m));
                Ok(found.is_some())
            },
            || {
                let st: Vec<String> = (0..2)
                    .map(|i| format!("{}: {:?}", NODES[i], self.status(i).ok()))
                    .collect();
                format!(
                    "holders {:?}; {}\n{}",
                    self.holders().unwrap_or_default(),
                    st.join("; "),
                    self.summary(25)
                )
            },
        )?;
        found.ok_or_else(|| LabError::check("one_master vanished"))
    }

    /// Waits until both nodes hold the VIP (the dual Master an unguarded pair shows).
    pub fn wait_both_hold(&self, timeout: Duration) -> Result<Duration> {
        wait_for(
            "the VIP on both nodes",
            timeout,
            Duration::from_millis(20),
            || Ok(self.holders()?.len() == 2),
            || {
                format!(
                    "holders {:?}\n{}",
                    self.holders().unwrap_or_default(),
                    self.summary(20)
                )
            },
        )
    }
}

impl GuardedPair {
    /// The last `lines` lines at INFO level and above (ANSI colours removed) of each node's
    /// daemon log and of the backend's, for failure messages: the daemons run with
    /// `RUST_LOG=debug`, whose wasmtime compilation lines would drown everything else.
    pub fn summary(&self, lines: usize) -> String {
        let mut out = String::new();
        let mut add = |label: &str, path: &std::path::Path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let kept: Vec<String> = text
                .lines()
                .map(strip_ansi)
                .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE "))
                .collect();
            let tail = &kept[kept.len().saturating_sub(lines)..];
            let _ = writeln!(out, "--- {label} ({}) ---", path.display());
            for l in tail {
                let _ = writeln!(out, "{l}");
            }
        };
        for (i, n) in NODES.iter().enumerate() {
            if let Ok(d) = self.daemon(i) {
                add(n, d.proc.log_path());
            }
        }
        if let Some(b) = &self.backend {
            add(b.label(), b.log_path());
        }
        out
    }
}

/// Removes ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Inserts `lines` right after every `vrrp_instance … {` line of `conf`.
pub fn with_instance_lines(conf: &str, lines: &[String]) -> String {
    let mut out = String::with_capacity(conf.len() + 64);
    for line in conf.split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with("vrrp_instance ") && line.trim_end().ends_with('{') {
            for l in lines {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    out
}

/// `python3 -m http.server` on [`WITNESS`] in the client namespace (a TCP and an HTTP
/// witness at once); waits until n1 can connect.
fn start_witness(pair: &Pair) -> Result<Proc> {
    let lab = &pair.lab;
    let www = lab.dir().join("www");
    fs::create_dir_all(&www).map_err(|e| LabError::io(format!("creating {}", www.display()), e))?;
    let (ip, port) = WITNESS
        .split_once(':')
        .ok_or_else(|| LabError::parse("witness address", WITNESS))?;
    let dir = www.to_string_lossy().into_owned();
    let proc = lab.spawn(
        CLIENT,
        &[
            "/usr/bin/python3",
            "-m",
            "http.server",
            port,
            "--bind",
            ip,
            "--directory",
            &dir,
        ],
        "witness.log",
    )?;
    let probe = format!("exec 3<>/dev/tcp/{ip}/{port}");
    wait_for(
        "the witness HTTP server to accept connections",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || {
            Ok(lab
                .exec(NODES[0], &["bash", "-c", &probe])?
                .status
                .success())
        },
        || proc.log_tail(10),
    )?;
    Ok(proc)
}

/// A single-member etcd on a new lab host `etcd` (192.0.2.50), data under the lab directory;
/// waits until its v3 JSON API answers n1.
fn start_etcd(pair: &mut Pair) -> Result<Proc> {
    let lab = &mut pair.lab;
    lab.add_node(ETCD_NODE, "192.0.2.50/24", "2001:db8::50/64")?;
    let data = lab.dir().join("etcd-data");
    let data = data.to_string_lossy().into_owned();
    let peer = "http://127.0.0.1:2380";
    let proc = lab.spawn(
        ETCD_NODE,
        &[
            "/usr/bin/etcd",
            "--name",
            "wa",
            "--data-dir",
            &data,
            "--listen-client-urls",
            ETCD_URL,
            "--advertise-client-urls",
            ETCD_URL,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            &format!("wa={peer}"),
        ],
        "etcd.log",
    )?;
    let range = format!("{ETCD_URL}/v3/kv/range");
    wait_for(
        "etcd to answer on its v3 JSON API",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let out = lab.exec(
                NODES[0],
                &[
                    "curl",
                    "-s",
                    "-f",
                    "-m",
                    "2",
                    "-X",
                    "POST",
                    "-d",
                    "{\"key\":\"AA==\"}",
                    &range,
                ],
            )?;
            Ok(out.status.success())
        },
        || proc.log_tail(15),
    )?;
    Ok(proc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_names_round_trip() {
        for g in Guard::ALL {
            assert_eq!(Guard::parse(g.name()), Some(g));
        }
        assert_eq!(Guard::parse("nope"), None);
        assert_eq!(Guard::None.takeover_delay_bound(), Duration::ZERO);
        assert_eq!(
            Guard::DiskLock.takeover_delay_bound(),
            Duration::from_millis(LEASE_MS + 2000)
        );
    }

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[32m INFO\u{1b}[0m x"), " INFO x");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn master_down_at_the_lab_interval() {
        // 3 × 0.3 s + (256 − 99) × 0.3 / 256 s
        assert!((master_down(99).as_secs_f64() - 1.0840).abs() < 1e-3);
    }

    #[test]
    fn instance_lines_go_inside_the_instance() {
        let c = "global_defs {\n}\nvrrp_instance VI_1 {\n    state MASTER\n}\n";
        let out = with_instance_lines(c, &["heartbeat_interface eth1".into()]);
        assert_eq!(
            out,
            "global_defs {\n}\nvrrp_instance VI_1 {\n    heartbeat_interface eth1\n    state MASTER\n}\n"
        );
    }

    #[test]
    fn guard_status_is_parsed() {
        let s = parse_guard_status(
            r#"{"instances":[{"name":"VI_1","state":"FAULT","split_brain":true,
            "counters":{"split_brain_events":2},"fault_reasons":["check chk_guard fatal"]}]}"#,
            "VI_1",
        )
        .unwrap();
        assert_eq!(s.state, "FAULT");
        assert!(s.split_brain);
        assert_eq!(s.split_brain_events, 2);
        assert_eq!(s.fault_reasons, vec!["check chk_guard fatal".to_string()]);
        assert!(parse_guard_status(r#"{"instances":[]}"#, "VI_1").is_err());
    }
}

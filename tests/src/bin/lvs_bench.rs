//! LVS director benchmark (issue 10): in the namespace lab of `tests/src/lvs.rs`, one run,
//! side by side:
//!
//! 1. **Checker CPU** — 100 real servers checked every second (`delay_loop 1`,
//!    `connect_timeout 1`) with `TCP_CHECK` and with `HTTP_GET` (`--checks tcp-reset`:
//!    `TCP_CHECK` with `close_with_reset`, closed as HAProxy closes), by wasmalived (the stock
//!    `tcp`/`http` plugins, release builds) and by HAProxy (`check inter 1s`, and `option
//!    httpchk GET /` for HTTP) against the same pool, both on director d1 and in the same
//!    windows (after a warm-up), so that whatever else the machine does falls on both alike
//!    (`--apart`: one after the other, alternating which goes first). The CPU of each is the
//!    scheduler's run time of every thread and child process of its process group over the
//!    window, read exactly (µs) from a cgroup v2 of its own (`cpu.stat`), or in clock ticks
//!    from `/proc/PID/stat` where no cgroup v2 hierarchy is writable. The checks are counted
//!    where they land: nftables counters of SYNs to port 80 in the real servers' namespaces,
//!    HAProxy's told apart by their source address ([`HAPROXY_SOURCE`]).
//! 2. **Detection** — nginx SIGKILLed on one real server of the 100 → that server's `dnat`
//!    rule gone from `nft list table inet wasmalived` in d1 (polled every 10 ms); each kill
//!    lands at a different phase of `delay_loop` after a check of that server. Also: nginx
//!    serving again → back in the table.
//! 3. **Data path** — HTTP GETs (a new TCP connection each: the lab's nginx has keepalive
//!    off) with a fixed concurrency from the client namespace, through the VIP versus
//!    straight to a real server: NAT (the direct requests are routed through d1 without the
//!    DNAT) and DR (the direct requests go over the bridge to the real server). The load
//!    generator is this binary (`--load`) run in the client namespace.
//!
//! The pool of 100 addresses is served by two nginx: `rs1` (198.51.100.11, its own nginx,
//! the one killed) and `rs2`, which holds the 99 other addresses ([`LvsLab::serve_aliases`]).
//!
//! ```text
//! WASMALIVED_BIN=target/release/wasmalived cargo run -p wasmalived-e2e --bin lvs_bench -- \
//!     [--parts cpu,detect,nat,dr] [--checks tcp,tcp-reset,http] [--pool 100] [--cpu-rounds 5] [--cpu-window 20] [--apart] \
//!     [--warmup 3] [--runs 10] [--data-rounds 3] [--data-secs 5] [--conc 8] [--log info]
//! ```
//! Plugins: `$WASMALIVED_PLUGIN_DIR`, else `target/wasm32-wasip2/release` (`make
//! plugins-release`), else the debug ones (with a warning). Needs root, nft, nginx, curl and
//! Debian's haproxy. Prints markdown tables; never asserts a timing.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use wasmalived_e2e::lvs::{LvsLab, Mode, CLIENT, VIP};
use wasmalived_e2e::nginx::get_once;
use wasmalived_e2e::{median, wait_for, LabError, Proc, Result};

/// The director that runs everything (d2 is not started).
const D1: usize = 0;
const D1_NODE: &str = "d1";
/// Checker settings: `delay_loop`, `connect_timeout`, `retry`, `delay_before_retry`.
const DELAY_LOOP: u64 = 1;
const CONNECT_TIMEOUT: u64 = 1;
const RETRY: u64 = 1;
const DELAY_BEFORE_RETRY: u64 = 1;
/// HAProxy's checks leave d1 from this address (wasmalived's from d1's own), so that the
/// real servers' SYN counters tell the two checkers apart when they run together.
const HAPROXY_SOURCE: &str = "198.51.100.9";
/// How often the detection polls the nftables table.
const NFT_POLL: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    Tcp,
    /// `TCP_CHECK` with `close_with_reset`: closed as HAProxy closes its checks.
    TcpReset,
    Http,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Tcp => "TCP_CHECK",
            Check::TcpReset => "TCP_CHECK close_with_reset",
            Check::Http => "HTTP_GET",
        }
    }

    /// The keepalived checker block.
    fn block(self) -> String {
        let timing = format!(
            "connect_timeout {CONNECT_TIMEOUT}\n            retry {RETRY}\n            \
             delay_before_retry {DELAY_BEFORE_RETRY}"
        );
        match self {
            Check::Tcp => format!("TCP_CHECK {{\n            {timing}\n        }}"),
            Check::TcpReset => format!(
                "TCP_CHECK {{\n            {timing}\n            close_with_reset\n        }}"
            ),
            Check::Http => format!(
                "HTTP_GET {{\n            url {{\n                path /\n                \
                 status_code 200\n            }}\n            {timing}\n        }}"
            ),
        }
    }

    /// HAProxy's equivalent: what it adds to the backend.
    fn haproxy(self) -> &'static str {
        match self {
            Check::Tcp | Check::TcpReset => "",
            Check::Http => "    option httpchk GET /\n",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Checker {
    Wasmalived,
    Haproxy,
}

impl Checker {
    fn name(self) -> &'static str {
        match self {
            Checker::Wasmalived => "wasmalived",
            Checker::Haproxy => "HAProxy",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Cpu,
    Detect,
    Nat,
    Dr,
}

struct Opts {
    parts: Vec<Part>,
    checks: Vec<Check>,
    pool: usize,
    cpu_rounds: usize,
    cpu_window: Duration,
    /// Both checkers in the same windows (else one after the other).
    together: bool,
    warmup: Duration,
    runs: usize,
    data_rounds: usize,
    data_secs: f64,
    conc: usize,
    log: String,
}

const USAGE: &str =
    "usage: lvs_bench [--parts cpu,detect,nat,dr] [--checks tcp,tcp-reset,http] [--pool N] [--cpu-rounds N] \
     [--cpu-window SECS] [--apart] [--warmup SECS] [--runs N] [--data-rounds N] [--data-secs SECS] \
     [--conc N] [--log LEVEL]";

fn parse_args(args: &[String]) -> std::result::Result<Opts, String> {
    let mut o = Opts {
        parts: vec![Part::Cpu, Part::Detect, Part::Nat, Part::Dr],
        checks: vec![Check::Tcp, Check::Http],
        pool: 100,
        cpu_rounds: 5,
        cpu_window: Duration::from_secs(20),
        together: true,
        warmup: Duration::from_secs(3),
        runs: 10,
        data_rounds: 3,
        data_secs: 5.0,
        conc: 8,
        log: "info".into(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        let count = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{a} takes a positive number"))
        };
        let secs = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("{a} takes a positive number of seconds"))
        };
        match a.as_str() {
            "--parts" => {
                o.parts = val()?
                    .split(',')
                    .map(|p| match p {
                        "cpu" => Ok(Part::Cpu),
                        "detect" => Ok(Part::Detect),
                        "nat" => Ok(Part::Nat),
                        "dr" => Ok(Part::Dr),
                        x => Err(format!("unknown part {x:?} (cpu, detect, nat, dr)")),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            "--checks" => {
                o.checks = val()?
                    .split(',')
                    .map(|c| match c {
                        "tcp" => Ok(Check::Tcp),
                        "tcp-reset" => Ok(Check::TcpReset),
                        "http" => Ok(Check::Http),
                        x => Err(format!("unknown check {x:?} (tcp, tcp-reset, http)")),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            "--pool" => {
                o.pool = count(val()?)?;
                if !(2..=243).contains(&o.pool) {
                    return Err("--pool takes 2 to 243 real servers".into());
                }
            }
            "--cpu-rounds" => o.cpu_rounds = count(val()?)?,
            "--cpu-window" => o.cpu_window = Duration::from_secs_f64(secs(val()?)?),
            "--apart" => o.together = false,
            "--warmup" => o.warmup = Duration::from_secs_f64(secs(val()?)?),
            "--runs" => o.runs = count(val()?)?,
            "--data-rounds" => o.data_rounds = count(val()?)?,
            "--data-secs" => o.data_secs = secs(val()?)?,
            "--conc" => o.conc = count(val()?)?,
            "--log" => o.log = val()?.clone(),
            "-h" | "--help" => return Err(USAGE.into()),
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// The lab

/// The NAT lab: `rs1` alone on its address (its nginx is the one killed), `rs2` serving the
/// other `pool − 1` addresses; SYN counters on both; d1 holds [`HAPROXY_SOURCE`] too.
fn nat_lab(pool: usize) -> Result<LvsLab> {
    let l = LvsLab::new("lvsbench", Mode::Nat, 2)?;
    l.lab.run(
        D1_NODE,
        &[
            "ip",
            "addr",
            "add",
            &format!("{HAPROXY_SOURCE}/24"),
            "dev",
            "eth1",
        ],
    )?;
    if pool > 2 {
        l.serve_aliases(1, 2..pool)?;
    }
    for rs in &l.real_servers {
        count_syns(&l, rs)?;
    }
    Ok(l)
}

/// The `virtual_server` of a pool of `pool` real servers (weight 1) with `check`.
fn services(l: &LvsLab, pool: usize, check: Check) -> String {
    let members: Vec<(usize, u32)> = (0..pool).map(|i| (i, 1)).collect();
    l.virtual_server(
        &format!("    lb_algo rr\n    delay_loop {DELAY_LOOP}"),
        &members,
        &check.block(),
    )
}

/// The full pool as `wait_pool` wants it.
fn full_pool(l: &LvsLab, pool: usize) -> Vec<(String, u64)> {
    (0..pool)
        .map(|i| (format!("{}:80", l.rs_addr(i)), 1))
        .collect()
}

/// nftables counters of the TCP SYNs to port 80 arriving in `node` (one per check, one
/// per request): from [`HAPROXY_SOURCE`], and from anywhere else.
fn count_syns(l: &LvsLab, node: &str) -> Result<()> {
    let file = l.lab.dir().join(format!("{node}-syn-counter.nft"));
    fs::write(
        &file,
        format!(
            "table inet lvsbench {{\n  chain input {{\n    type filter hook input priority 0; \
             policy accept;\n    ip saddr {HAPROXY_SOURCE} tcp dport 80 tcp flags & (syn | \
             ack) == syn counter\n    ip saddr != {HAPROXY_SOURCE} tcp dport 80 tcp flags & \
             (syn | ack) == syn counter\n  }}\n}}\n"
        ),
    )
    .map_err(|e| LabError::io(format!("writing {}", file.display()), e))?;
    l.lab
        .run(node, &["nft", "-f", &file.to_string_lossy()])
        .map(|_| ())
}

/// SYNs counted so far on every real server: from HAProxy, from anyone else.
#[derive(Clone, Copy, Default)]
struct Syns {
    haproxy: u64,
    others: u64,
}

impl Syns {
    /// `checker`'s SYNs since `before`.
    fn of(self, before: Syns, checker: Checker) -> u64 {
        match checker {
            Checker::Haproxy => self.haproxy.saturating_sub(before.haproxy),
            Checker::Wasmalived => self.others.saturating_sub(before.others),
        }
    }
}

fn syns(l: &LvsLab) -> Result<Syns> {
    let mut total = Syns::default();
    for rs in &l.real_servers {
        let text = l
            .lab
            .run(rs, &["nft", "list", "chain", "inet", "lvsbench", "input"])?;
        let counter = |k: usize| {
            text.split("counter packets ")
                .nth(k)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| LabError::parse("nft counter", &text))
        };
        total.haproxy += counter(1)?;
        total.others += counter(2)?;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------
// CPU of a process group

/// Resident memory (KiB), address space reserved (KiB) and threads of every process in
/// process group `pgid`, with utime + stime + cutime + cstime (clock ticks) for
/// [`CpuMeter::Ticks`].
#[derive(Clone, Copy, Default)]
struct GroupUsage {
    ticks: u64,
    rss_kib: u64,
    vsz_kib: u64,
    threads: u64,
}

/// The processes of process group `pgid`.
fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat_fields(*pid).and_then(|f| f.get(2)?.parse::<u32>().ok()) == Some(pgid))
        .collect()
}

/// The fields of `/proc/PID/stat` after the command (which may hold spaces): state(0) ppid
/// pgrp(2) … utime(11) stime(12) cutime(13) cstime(14).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn group_usage(pgid: u32) -> GroupUsage {
    let mut u = GroupUsage::default();
    for pid in group_pids(pgid) {
        let Some(f) = stat_fields(pid) else {
            continue;
        };
        for i in 11..=14 {
            u.ticks += f.get(i).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        }
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        u.rss_kib += field("VmRSS:");
        u.vsz_kib += field("VmSize:");
        u.threads += field("Threads:");
    }
    u
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    wasmalived_e2e::cmd::run(&["getconf", "CLK_TCK"])
        .ok()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Where a checker's CPU time is read from.
enum CpuMeter {
    /// A cgroup (v2) of its own that the checker's processes were moved into: `cpu.stat`'s
    /// `usage_usec`, the scheduler's exact run time (µs) of every thread and child process
    /// in it, those that exited during the window included.
    Cgroup(PathBuf),
    /// No writable cgroup v2 hierarchy: utime + stime (+ reaped children) of the process
    /// group from `/proc/PID/stat`, in clock ticks (10 ms), so ±2 ticks per window.
    Ticks { pgid: u32, per_sec: f64 },
}

impl CpuMeter {
    /// Meter the processes of group `pgid` (and their future children) from now on.
    fn attach(pgid: u32, label: &str) -> CpuMeter {
        match Self::cgroup(pgid, label) {
            Ok(meter) => meter,
            Err(why) => {
                eprintln!("  CPU read in clock ticks from /proc (no cgroup v2: {why})");
                CpuMeter::Ticks {
                    pgid,
                    per_sec: clock_ticks(),
                }
            }
        }
    }

    fn cgroup(pgid: u32, label: &str) -> std::result::Result<CpuMeter, String> {
        let mounts = fs::read_to_string("/proc/self/mounts").map_err(|e| e.to_string())?;
        let root = mounts
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
            })
            .ok_or("no cgroup2 mount")?;
        let dir = root.join(format!(
            "wasmalived-lvs-bench-{}-{label}",
            std::process::id()
        ));
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        // From here on, dropping the meter (on an error too) removes the cgroup.
        let meter = CpuMeter::Cgroup(dir.clone());
        for pid in group_pids(pgid) {
            fs::write(dir.join("cgroup.procs"), pid.to_string())
                .map_err(|e| format!("moving {pid} into {}: {e}", dir.display()))?;
        }
        // Read once, so that a cgroup without `cpu.stat` falls back here, not mid-window.
        meter.cpu_secs()?;
        Ok(meter)
    }

    /// CPU seconds so far.
    fn cpu_secs(&self) -> std::result::Result<f64, String> {
        match self {
            CpuMeter::Cgroup(dir) => {
                let path = dir.join("cpu.stat");
                let stat = fs::read_to_string(&path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                stat.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|us| us as f64 / 1e6)
                    .ok_or_else(|| format!("{}: no usage_usec", path.display()))
            }
            CpuMeter::Ticks { pgid, per_sec } => Ok(group_usage(*pgid).ticks as f64 / per_sec),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            CpuMeter::Cgroup(_) => "cgroup v2 cpu.stat usage_usec (µs)",
            CpuMeter::Ticks { .. } => "/proc/PID/stat utime+stime+cutime+cstime (clock ticks)",
        }
    }
}

impl Drop for CpuMeter {
    /// Remove the cgroup, moving anything still in it (a checker that outlived its stop) back
    /// to the root.
    fn drop(&mut self) {
        let CpuMeter::Cgroup(dir) = self else {
            return;
        };
        if let (Some(root), Ok(procs)) =
            (dir.parent(), fs::read_to_string(dir.join("cgroup.procs")))
        {
            for pid in procs.split_whitespace() {
                let _ = fs::write(root.join("cgroup.procs"), pid);
            }
        }
        if let Err(e) = fs::remove_dir(&*dir) {
            eprintln!("  cannot remove {}: {e}", dir.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Checker CPU

/// One checker's window.
struct CpuSample {
    /// CPU seconds in the window.
    cpu: f64,
    /// Where `cpu` was read ([`CpuMeter::name`]).
    meter: &'static str,
    /// SYNs the real servers saw in the window.
    checks: u64,
    /// Window length.
    secs: f64,
    /// Checks the daemon itself counted (wasmalived's `runs`).
    reported: Option<u64>,
    rss_kib: u64,
    /// Address space reserved (VSZ).
    vsz_kib: u64,
    threads: u64,
    /// Bytes the checker logged in the window.
    log_bytes: u64,
    /// Check failures in the window (see [`Running::failures`]).
    failures: u64,
}

impl CpuSample {
    fn per_100(&self) -> f64 {
        if self.checks == 0 {
            f64::NAN
        } else {
            self.cpu / self.checks as f64 * 100.0
        }
    }
}

/// A checker running on d1: what to measure and how to stop it.
enum Running {
    Wasmalived,
    Haproxy { proc: Proc, socket: PathBuf },
}

impl Running {
    /// Names its cgroup.
    fn label(&self) -> &'static str {
        match self {
            Running::Wasmalived => "wasmalived",
            Running::Haproxy { .. } => "haproxy",
        }
    }

    fn pgid(&self, l: &LvsLab) -> Result<u32> {
        match self {
            Running::Wasmalived => Ok(l.director(D1)?.proc.pid()),
            Running::Haproxy { proc, .. } => Ok(proc.pid()),
        }
    }

    fn log(&self, l: &LvsLab) -> Result<PathBuf> {
        match self {
            Running::Wasmalived => Ok(l.director(D1)?.proc.log_path().to_path_buf()),
            Running::Haproxy { proc, .. } => Ok(proc.log_path().to_path_buf()),
        }
    }

    /// Servers of the pool up by the checker's own account.
    fn up(&self, l: &LvsLab) -> Result<usize> {
        match self {
            Running::Wasmalived => Ok(l.pool(D1)?.len()),
            Running::Haproxy { socket, .. } => Ok(haproxy_stat(socket)?.up),
        }
    }

    /// Check failures so far: HAProxy's `chkfail`; wasmalived's `check failed` log lines
    /// (one per failure streak of a checker, or a change of its reason).
    fn failures(&self, l: &LvsLab) -> Result<u64> {
        match self {
            Running::Wasmalived => {
                let log = fs::read_to_string(self.log(l)?).unwrap_or_default();
                Ok(log.matches("check failed").count() as u64)
            }
            Running::Haproxy { socket, .. } => Ok(haproxy_stat(socket)?.failed),
        }
    }

    /// Checks the checker counted itself, if it says.
    fn reported(&self, l: &LvsLab) -> Option<u64> {
        match self {
            Running::Wasmalived => {
                let s = l.status(D1).ok()?;
                let mut n = 0;
                for vs in s["virtual_servers"].as_array()? {
                    for rs in vs["real_servers"].as_array()? {
                        for c in rs["checkers"].as_array()? {
                            n += c["runs"].as_u64()?;
                        }
                    }
                }
                Some(n)
            }
            Running::Haproxy { .. } => None,
        }
    }

    fn stop(self, l: &LvsLab) -> Result<()> {
        match self {
            Running::Wasmalived => {
                let d = l.director(D1)?;
                d.term()?;
                if d.proc.wait_exit(Duration::from_secs(10))?.is_none() {
                    eprintln!("  wasmalived did not stop in 10 s after SIGTERM: killed");
                    d.crash()?;
                }
                Ok(())
            }
            Running::Haproxy { proc, .. } => proc.kill9_group(),
        }
    }
}

/// A director config with only the virtual server (no VRRP instance): the checker alone,
/// as HAProxy runs alone.
fn checker_only_config(l: &LvsLab, pool: usize, check: Check) -> String {
    format!(
        "global_defs {{\n    router_id {D1_NODE}\n    plugin_dir {}\n}}\n{}",
        l.plugin_dir.display(),
        services(l, pool, check)
    )
}

fn haproxy_config(l: &LvsLab, pool: usize, check: Check, socket: &Path) -> String {
    let mut s = format!(
        "global\n    stats socket {} mode 600 level admin\n\
         defaults\n    mode tcp\n    timeout connect {CONNECT_TIMEOUT}s\n    \
         timeout check {CONNECT_TIMEOUT}s\n    timeout client 30s\n    timeout server 30s\n\
         backend pool\n    balance roundrobin\n    default-server source {HAPROXY_SOURCE}\n{}",
        socket.display(),
        check.haproxy()
    );
    for i in 0..pool {
        let _ = writeln!(
            s,
            "    server rs{} {}:80 check inter {DELAY_LOOP}s",
            i + 1,
            l.rs_addr(i)
        );
    }
    s
}

/// What HAProxy's `show stat` says of the pool's servers.
struct HaproxyStat {
    /// Servers UP, including those counting failures towards DOWN (`UP 1/3`).
    up: usize,
    /// Servers UP whose last check passed (`L4OK`/`L7OK`).
    passed: usize,
    /// Failed checks so far (`chkfail`, summed).
    failed: u64,
}

fn haproxy_stat(socket: &Path) -> Result<HaproxyStat> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| LabError::io(format!("connecting to {}", socket.display()), e))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| LabError::io("socket timeout", e))?;
    s.write_all(b"show stat\n")
        .map_err(|e| LabError::io("writing to HAProxy's socket", e))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| LabError::io("reading HAProxy's socket", e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| LabError::parse("HAProxy stat header", &text))
    };
    let (sv, status, check, chkfail) = (
        col("svname")?,
        col("status")?,
        col("check_status")?,
        col("chkfail")?,
    );
    let mut stat = HaproxyStat {
        up: 0,
        passed: 0,
        failed: 0,
    };
    for f in lines.map(|l| l.split(',').collect::<Vec<_>>()) {
        if f.get(sv)
            .is_none_or(|s| *s == "FRONTEND" || *s == "BACKEND")
        {
            continue;
        }
        let up = f.get(status).is_some_and(|s| s.starts_with("UP"));
        stat.up += usize::from(up);
        stat.passed +=
            usize::from(up && f.get(check).is_some_and(|c| *c == "L4OK" || *c == "L7OK"));
        stat.failed += f
            .get(chkfail)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(stat)
}

/// Start `checker` with `check` on d1 and wait until it has the whole pool up.
fn start_checker(l: &mut LvsLab, o: &Opts, checker: Checker, check: Check) -> Result<Running> {
    let ready = Duration::from_secs(60);
    match checker {
        Checker::Wasmalived => {
            let conf = checker_only_config(l, o.pool, check);
            l.start_director_env(D1, &conf, &[("WASMALIVED_LOG", &o.log)])?;
            let want = full_pool(l, o.pool);
            if let Err(e) = l.wait_pool(D1, &want, ready) {
                let _ = Running::Wasmalived.stop(l);
                return Err(e);
            }
            Ok(Running::Wasmalived)
        }
        Checker::Haproxy => {
            let socket = l.lab.dir().join(format!("haproxy-{check:?}.sock"));
            let _ = fs::remove_file(&socket);
            let conf = l.lab.dir().join(format!("haproxy-{check:?}.cfg"));
            fs::write(&conf, haproxy_config(l, o.pool, check, &socket))
                .map_err(|e| LabError::io(format!("writing {}", conf.display()), e))?;
            let proc = l.lab.spawn(
                D1_NODE,
                &["haproxy", "-db", "-f", &conf.to_string_lossy()],
                format!("haproxy-{check:?}.log"),
            )?;
            let running = Running::Haproxy { proc, socket };
            let ok = wait_for(
                "HAProxy to see the whole pool up",
                ready,
                Duration::from_millis(100),
                || match &running {
                    Running::Haproxy { socket, .. } => Ok(haproxy_stat(socket)?.passed == o.pool),
                    Running::Wasmalived => Ok(running.up(l)? == o.pool),
                },
                || {
                    if let Running::Haproxy { proc, .. } = &running {
                        proc.log_tail(20)
                    } else {
                        String::new()
                    }
                },
            );
            if let Err(e) = ok {
                let _ = running.stop(l);
                return Err(e);
            }
            Ok(running)
        }
    }
}

/// One window of `checkers` doing `check`, together (each in its own cgroup, its checks
/// told apart by their source address).
fn cpu_window(
    l: &mut LvsLab,
    o: &Opts,
    checkers: &[Checker],
    check: Check,
) -> Result<Vec<(Checker, CpuSample)>> {
    let mut running = Vec::new();
    for &checker in checkers {
        match start_checker(l, o, checker, check) {
            Ok(r) => running.push((checker, r)),
            Err(e) => {
                for (_, r) in running {
                    let _ = r.stop(l);
                }
                return Err(e);
            }
        }
    }
    let samples = measure(l, o, &running);
    let mut short = Vec::new();
    for (checker, r) in running {
        match r.up(l) {
            Ok(n) if n == o.pool => {}
            Ok(n) => short.push(format!("{} had {n} of {}", checker.name(), o.pool)),
            Err(e) => short.push(format!("{}: {e}", checker.name())),
        }
        r.stop(l)?;
    }
    let samples = samples?;
    if short.is_empty() {
        Ok(samples)
    } else {
        Err(LabError::check(format!(
            "real servers up at the end of the window: {}",
            short.join("; ")
        )))
    }
}

fn measure(
    l: &LvsLab,
    o: &Opts,
    running: &[(Checker, Running)],
) -> Result<Vec<(Checker, CpuSample)>> {
    struct Watch<'a> {
        checker: Checker,
        running: &'a Running,
        pgid: u32,
        log: PathBuf,
        meter: CpuMeter,
    }
    let log_len = |log: &Path| fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let mut watches = Vec::new();
    for (checker, r) in running {
        let pgid = r.pgid(l)?;
        watches.push(Watch {
            checker: *checker,
            running: r,
            pgid,
            log: r.log(l)?,
            meter: CpuMeter::attach(pgid, r.label()),
        });
    }
    thread::sleep(o.warmup);
    let s0 = syns(l)?;
    let mut before = Vec::new();
    for w in &watches {
        before.push((
            w.running.reported(l),
            log_len(&w.log),
            w.running.failures(l)?,
        ));
    }
    let t0 = Instant::now();
    let cpu0 = watches
        .iter()
        .map(|w| w.meter.cpu_secs())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(LabError::check)?;
    thread::sleep(o.cpu_window);
    let cpu1 = watches
        .iter()
        .map(|w| w.meter.cpu_secs())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(LabError::check)?;
    let secs = t0.elapsed().as_secs_f64();
    let s1 = syns(l)?;
    let mut samples = Vec::new();
    for (i, w) in watches.iter().enumerate() {
        let usage = group_usage(w.pgid);
        let (r0, l0, f0) = before[i];
        let (r1, l1, f1) = (
            w.running.reported(l),
            log_len(&w.log),
            w.running.failures(l)?,
        );
        samples.push((
            w.checker,
            CpuSample {
                cpu: cpu1[i] - cpu0[i],
                meter: w.meter.name(),
                checks: s1.of(s0, w.checker),
                secs,
                reported: r0.zip(r1).map(|(a, b)| b.saturating_sub(a)),
                rss_kib: usage.rss_kib,
                vsz_kib: usage.vsz_kib,
                threads: usage.threads,
                log_bytes: l1.saturating_sub(l0),
                failures: f1.saturating_sub(f0),
            },
        ));
    }
    Ok(samples)
}

type CpuResults = Vec<((Checker, Check), Vec<CpuSample>)>;

fn cpu_bench(l: &mut LvsLab, o: &Opts) -> CpuResults {
    let mut results: CpuResults = Vec::new();
    for &check in &o.checks {
        for checker in [Checker::Wasmalived, Checker::Haproxy] {
            results.push(((checker, check), Vec::new()));
        }
    }
    for round in 0..o.cpu_rounds {
        for &check in &o.checks {
            let order = if round % 2 == 0 {
                [Checker::Wasmalived, Checker::Haproxy]
            } else {
                [Checker::Haproxy, Checker::Wasmalived]
            };
            let windows: Vec<&[Checker]> = if o.together {
                vec![&order]
            } else {
                order.chunks(1).collect()
            };
            for checkers in windows {
                let samples = match cpu_window(l, o, checkers, check) {
                    Ok(samples) => samples,
                    Err(e) => {
                        let names: Vec<&str> = checkers.iter().map(|c| c.name()).collect();
                        eprintln!(
                            "  cpu round {round}: {} {} failed: {e}",
                            names.join(" + "),
                            check.name()
                        );
                        continue;
                    }
                };
                for (checker, s) in samples {
                    eprintln!(
                        "  cpu round {round}: {} {}: {:.3} CPU s in {:.1} s, {} checks \
                             ({}), {:.4} CPU s per 100 checks, RSS {} KiB, VSZ {} KiB, {} \
                             threads, log +{} B, {} check failures",
                        checker.name(),
                        check.name(),
                        s.cpu,
                        s.secs,
                        s.checks,
                        s.reported
                            .map_or("not self-reported".into(), |r| format!("{r} self-reported")),
                        s.per_100(),
                        s.rss_kib,
                        s.vsz_kib,
                        s.threads,
                        s.log_bytes,
                        s.failures
                    );
                    if let Some((_, v)) = results.iter_mut().find(|(k, _)| *k == (checker, check)) {
                        v.push(s);
                    }
                }
            }
        }
    }
    results
}

// ---------------------------------------------------------------------------------------
// 2. Detection

struct Detection {
    /// Kill → out of the table, seconds.
    down: Vec<f64>,
    /// nginx serving again → back in the table, seconds.
    up: Vec<f64>,
    /// Where in `delay_loop` each kill landed (seconds after a check of the server).
    phases: Vec<f64>,
    failures: usize,
}

/// Whether d1's NAT table sends anything to `addr` (`dnat ip to ADDR:80`).
fn in_table(l: &LvsLab, addr: &str) -> Result<bool> {
    let text = l
        .lab
        .run(D1_NODE, &["nft", "list", "table", "inet", "wasmalived"])?;
    Ok(text.contains(&format!("to {addr}:80\n")) || text.contains(&format!("to {addr}:80 ")))
}

/// Runs of real server 0's checker on d1.
fn rs0_runs(l: &LvsLab) -> Result<u64> {
    let s = l.status(D1)?;
    s["virtual_servers"][0]["real_servers"][0]["checkers"][0]["runs"]
        .as_u64()
        .ok_or_else(|| LabError::parse("status: runs of real server 0", &s.to_string()))
}

/// Polls `f` every [`NFT_POLL`] until it holds; the time from `since`.
fn until(
    what: &str,
    since: Instant,
    timeout: Duration,
    f: impl Fn() -> Result<bool>,
) -> Result<f64> {
    loop {
        if f()? {
            return Ok(since.elapsed().as_secs_f64());
        }
        if since.elapsed() > timeout {
            return Err(LabError::check(format!("{what}: not within {timeout:?}")));
        }
        thread::sleep(NFT_POLL);
    }
}

fn detect_bound() -> f64 {
    (DELAY_LOOP + CONNECT_TIMEOUT + RETRY * (DELAY_BEFORE_RETRY + CONNECT_TIMEOUT)) as f64
}

fn up_bound() -> f64 {
    (DELAY_LOOP + CONNECT_TIMEOUT) as f64
}

/// Starts d1 with the VRRP instances (as deployed) and the pool with `TCP_CHECK`; waits for
/// it to be Master with the whole pool programmed.
fn start_director(l: &mut LvsLab, o: &Opts, pool: usize) -> Result<()> {
    let conf = l.config(D1, &services(l, pool, Check::Tcp));
    l.start_director_env(D1, &conf, &[("WASMALIVED_LOG", &o.log)])?;
    l.wait_master(D1, Duration::from_secs(30))?;
    let want = full_pool(l, pool);
    l.wait_pool(D1, &want, Duration::from_secs(60))?;
    Ok(())
}

fn detect_one(l: &mut LvsLab, o: &Opts, k: usize, addr: &str) -> Result<(f64, f64, f64)> {
    let timeout = Duration::from_secs_f64(detect_bound() + 10.0);
    until(
        "real server 0 in the table",
        Instant::now(),
        timeout,
        || in_table(l, addr),
    )?;
    // Line up with a check of real server 0, then kill at this run's phase of delay_loop.
    let r0 = rs0_runs(l)?;
    until("a check of real server 0", Instant::now(), timeout, || {
        Ok(rs0_runs(l)? > r0)
    })?;
    let checked = Instant::now();
    let phase = Duration::from_secs(DELAY_LOOP).mul_f64((k as f64 + 0.5) / o.runs as f64);
    thread::sleep(phase.saturating_sub(checked.elapsed()));
    let phase = checked.elapsed().as_secs_f64();
    let killed = Instant::now();
    l.kill_nginx(0)?;
    let down = until("real server 0 out of the table", killed, timeout, || {
        Ok(!in_table(l, addr)?)
    })?;
    // Restart: nginx's workers must be gone first (they hold :80).
    wait_for(
        "nginx processes of rs1 to exit",
        Duration::from_secs(5),
        Duration::from_millis(10),
        || Ok(l.lab.nginx_count(&l.real_servers[0])? == 0),
        String::new,
    )?;
    l.start_nginx(0)?;
    let serving = Instant::now();
    let up = until("real server 0 back in the table", serving, timeout, || {
        in_table(l, addr)
    })?;
    Ok((down, up, phase))
}

fn detect_bench(l: &mut LvsLab, o: &Opts) -> Result<Detection> {
    let addr = l.rs_addr(0);
    let mut d = Detection {
        down: Vec::new(),
        up: Vec::new(),
        phases: Vec::new(),
        failures: 0,
    };
    for k in 0..o.runs {
        match detect_one(l, o, k, &addr) {
            Ok((down, up, phase)) => {
                eprintln!(
                    "  detect run {k}: killed {phase:.3} s after a check; out of the table \
                     {down:.3} s later; back {up:.3} s after nginx served again"
                );
                d.down.push(down);
                d.up.push(up);
                d.phases.push(phase);
            }
            Err(e) => {
                eprintln!("  detect run {k} failed: {e}");
                d.failures += 1;
                if l.lab.nginx_count(&l.real_servers[0]).unwrap_or(0) == 0 {
                    let _ = l.start_nginx(0);
                }
            }
        }
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------
// 3. Data path

/// One load run's figures.
#[derive(Clone, Copy)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// Runs the load generator in the client namespace against `addr` for `secs`.
fn load_run(l: &LvsLab, addr: &str, conc: usize, secs: f64) -> Result<Load> {
    let exe = format!("/proc/{}/exe", std::process::id());
    let out = l.lab.run(
        CLIENT,
        &[&exe, "--load", addr, &conc.to_string(), &secs.to_string()],
    )?;
    let field = |k: &str| {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| LabError::parse(format!("load output ({k})"), &out))
    };
    let requests = field("requests=")?;
    Ok(Load {
        rps: requests / field("secs=")?,
        p50_ms: field("p50_us=")? / 1000.0,
        p99_ms: field("p99_us=")? / 1000.0,
        errors: field("errors=")? as u64,
    })
}

/// `(direct, via VIP)` per round.
type DataRounds = Vec<(Load, Load)>;

fn data_bench(l: &LvsLab, o: &Opts, direct: &str) -> Result<DataRounds> {
    let vip = format!("{VIP}:80");
    let serve = |addr: &str| -> Result<()> {
        wait_for(
            &format!("{addr} to answer from the client"),
            Duration::from_secs(20),
            Duration::from_millis(100),
            || Ok(load_run(l, addr, 1, 0.2)?.errors == 0),
            || l.lab.log_summary(20),
        )
        .map(|_| ())
    };
    serve(direct)?;
    serve(&vip)?;
    // Warm both paths (neighbour entries, conntrack, nginx).
    load_run(l, direct, o.conc, 1.0)?;
    load_run(l, &vip, o.conc, 1.0)?;
    let mut rounds = Vec::new();
    for round in 0..o.data_rounds {
        let (d, v) = if round % 2 == 0 {
            let d = load_run(l, direct, o.conc, o.data_secs)?;
            (d, load_run(l, &vip, o.conc, o.data_secs)?)
        } else {
            let v = load_run(l, &vip, o.conc, o.data_secs)?;
            (load_run(l, direct, o.conc, o.data_secs)?, v)
        };
        eprintln!(
            "  data round {round}: direct {:.0} req/s p99 {:.2} ms ({} errors); VIP {:.0} \
             req/s p99 {:.2} ms ({} errors)",
            d.rps, d.p99_ms, d.errors, v.rps, v.p99_ms, v.errors
        );
        rounds.push((d, v));
    }
    Ok(rounds)
}

/// The load generator (`--load ADDR CONC SECS`, run in the client namespace): `CONC`
/// threads each GET `/` on a new connection, back to back, for `SECS`; prints one line.
fn load_main(addr: &str, conc: &str, secs: &str) -> ExitCode {
    let (Ok(addr), Ok(conc), Ok(secs)) = (
        addr.parse::<SocketAddr>(),
        conc.parse::<usize>(),
        secs.parse::<f64>(),
    ) else {
        eprintln!("--load ADDR CONC SECS");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let workers: Vec<_> = (0..conc.max(1))
        .map(|_| {
            thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match get_once(addr, Duration::from_secs(1), Duration::from_secs(2)) {
                        Some(_) => lat.push(t.elapsed().as_micros() as u64),
                        None => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for w in workers {
        if let Ok((l, e)) = w.join() {
            lat.extend(l);
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            return 0;
        }
        let i = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i]
    };
    println!(
        "load requests={} errors={errors} secs={elapsed:.3} p50_us={} p99_us={}",
        lat.len(),
        pct(0.50),
        pct(0.99)
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------
// Binaries

/// Points `WASMALIVED_PLUGIN_DIR` at the release plugins unless it is set (falling back to
/// the debug ones with a warning), then pins the daemon and the `tcp`/`http` plugins.
fn pin_binaries() -> Result<PathBuf> {
    if std::env::var_os("WASMALIVED_PLUGIN_DIR").is_none() {
        let release = wasmalived_e2e::daemon::target_dir().join("wasm32-wasip2/release");
        if release.join("plugin_tcp.wasm").is_file() && release.join("plugin_http.wasm").is_file() {
            // Single-threaded here: nothing else reads the environment yet.
            std::env::set_var("WASMALIVED_PLUGIN_DIR", &release);
        } else {
            eprintln!(
                "warning: no release plugins in {} (`make plugins-release`): using debug ones",
                release.display()
            );
        }
    }
    wasmalived_e2e::daemon::pin_binaries("lvs-bench", &["tcp", "http"])
}

// ---------------------------------------------------------------------------------------
// Report

fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    let m = median(v)?;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((m, min, max))
}

fn fmt_range(v: &[f64], digits: usize, unit: &str) -> String {
    match stats(v) {
        Some((m, lo, hi)) => format!("{m:.digits$}{unit} ({lo:.digits$}–{hi:.digits$})"),
        None => "–".into(),
    }
}

fn print_cpu(o: &Opts, results: &CpuResults) {
    println!(
        "\n### Checker CPU: {} real servers, `delay_loop {DELAY_LOOP}` / `check inter \
         {DELAY_LOOP}s`, `connect_timeout {CONNECT_TIMEOUT}`; {} rounds of {:.0} s after a \
         {:.0} s warm-up\n",
        o.pool,
        o.cpu_rounds,
        o.cpu_window.as_secs_f64(),
        o.warmup.as_secs_f64()
    );
    println!(
        "| check | checker | rounds | checks/s | CPU s per 100 checks (median, min–max) | \
         % of one core | RSS | VSZ | threads | log bytes/s | check failures | wasmalived ÷ \
         HAProxy (per round: median, min–max) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &check in &o.checks {
        let get = |c: Checker| {
            results
                .iter()
                .find(|(k, _)| *k == (c, check))
                .map(|(_, v)| v.as_slice())
                .unwrap_or(&[])
        };
        let (w, h) = (get(Checker::Wasmalived), get(Checker::Haproxy));
        let ratios: Vec<f64> = w
            .iter()
            .zip(h)
            .map(|(a, b)| a.per_100() / b.per_100())
            .filter(|r| r.is_finite())
            .collect();
        for (checker, samples) in [(Checker::Wasmalived, w), (Checker::Haproxy, h)] {
            let per100: Vec<f64> = samples.iter().map(CpuSample::per_100).collect();
            let rate: Vec<f64> = samples.iter().map(|s| s.checks as f64 / s.secs).collect();
            let core: Vec<f64> = samples.iter().map(|s| s.cpu / s.secs * 100.0).collect();
            let logs: Vec<f64> = samples
                .iter()
                .map(|s| s.log_bytes as f64 / s.secs)
                .collect();
            let rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
            let vsz = samples.iter().map(|s| s.vsz_kib).max().unwrap_or(0);
            let threads = samples.iter().map(|s| s.threads).max().unwrap_or(0);
            let ratio = if checker == Checker::Wasmalived {
                fmt_range(&ratios, 2, "×")
            } else {
                String::new()
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.1} MiB | {:.1} GiB | {} | {} | {} | {} |",
                check.name(),
                checker.name(),
                samples.len(),
                median(&rate).map_or("–".into(), |r| format!("{r:.0}")),
                fmt_range(&per100, 4, ""),
                fmt_range(&core, 1, " %"),
                rss as f64 / 1024.0,
                vsz as f64 / (1024.0 * 1024.0),
                threads,
                median(&logs).map_or("–".into(), |b| format!("{b:.0}")),
                samples.iter().map(|s| s.failures).sum::<u64>(),
                ratio
            );
        }
    }
    let meters: Vec<&str> = results
        .iter()
        .flat_map(|(_, v)| v.iter().map(|s| s.meter))
        .fold(Vec::new(), |mut m, name| {
            if !m.contains(&name) {
                m.push(name);
            }
            m
        });
    println!(
        "\nThe two checkers ran {}. Checks counted as SYNs to port 80 at the real servers; CPU \
         of the checker's whole process group (threads and child processes) over the window, \
         read from {}; wasmalived at log level `{}`, its config has only the virtual server (no VRRP instance); HAProxy 2.6 \
         with its default threads. Check failures in the windows: HAProxy's `chkfail`, \
         wasmalived's `check failed` log lines (one per failure streak); a round counts only \
         if the whole pool is still in service at its end.",
        if o.together {
            "together, in the same windows"
        } else {
            "one after the other"
        },
        meters.join(" and "),
        o.log
    );
}

fn print_detect(o: &Opts, d: &Detection) {
    println!(
        "\n### Detection: nginx SIGKILLed on 1 of {} real servers → its `dnat` gone from \
         `nft list table inet wasmalived` (polled every {} ms)\n",
        o.pool,
        NFT_POLL.as_millis()
    );
    println!(
        "| checker | runs ok/failed | kill → out of the pool (median, min–max) | bound \
         D + C + R×(B + C) | nginx back → in the pool (median, min–max) | bound D + C |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| `TCP_CHECK` delay_loop {DELAY_LOOP}, connect_timeout {CONNECT_TIMEOUT}, retry \
         {RETRY}, delay_before_retry {DELAY_BEFORE_RETRY} | {}/{} | {} | {:.0} s | {} | {:.0} s |",
        d.down.len(),
        d.failures,
        fmt_range(&d.down, 3, " s"),
        detect_bound(),
        fmt_range(&d.up, 3, " s"),
        up_bound()
    );
    println!(
        "\nKills at {} after a check of the server (a check's result seen in `status`).",
        fmt_range(&d.phases, 3, " s")
    );
}

fn print_data(o: &Opts, rows: &[(&str, String, DataRounds)]) {
    println!(
        "\n### Data path: HTTP GET, a new TCP connection each, {} concurrent from the client, \
         {} rounds of {:.0} s\n",
        o.conc, o.data_rounds, o.data_secs
    );
    println!(
        "| mode | target | req/s (median, min–max) | p50 latency | p99 latency (median, \
         min–max) | errors | VIP ÷ direct req/s | VIP ÷ direct p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (mode, direct, rounds) in rows {
        for pick in [0, 1] {
            let loads: Vec<Load> = rounds
                .iter()
                .map(|(d, v)| if pick == 0 { *d } else { *v })
                .collect();
            let rps: Vec<f64> = loads.iter().map(|x| x.rps).collect();
            let p50: Vec<f64> = loads.iter().map(|x| x.p50_ms).collect();
            let p99: Vec<f64> = loads.iter().map(|x| x.p99_ms).collect();
            let errors: u64 = loads.iter().map(|x| x.errors).sum();
            let (r_rps, r_p99) = if pick == 1 {
                let rr: Vec<f64> = rounds.iter().map(|(d, v)| v.rps / d.rps).collect();
                let rp: Vec<f64> = rounds.iter().map(|(d, v)| v.p99_ms / d.p99_ms).collect();
                (fmt_range(&rr, 2, "×"), fmt_range(&rp, 2, "×"))
            } else {
                (String::new(), String::new())
            };
            let target = if pick == 0 {
                format!("{direct} (direct)")
            } else {
                format!("{VIP}:80 (VIP)")
            };
            println!(
                "| {mode} | {target} | {} | {} | {} | {errors} | {r_rps} | {r_p99} |",
                fmt_range(&rps, 0, ""),
                median(&p50).map_or("–".into(), |m| format!("{m:.2} ms")),
                fmt_range(&p99, 2, " ms"),
            );
        }
    }
    println!(
        "\nNAT direct: routed through d1 without the DNAT (conntrack still on); DR direct: over \
         the bridge to the real server, bypassing d1. Ratios are per round (median, min–max)."
    );
}

// ---------------------------------------------------------------------------------------

/// What the NAT lab measured: checker CPU, detection, data path (direct address, rounds).
type NatResults = (
    Option<CpuResults>,
    Option<Detection>,
    Option<(String, DataRounds)>,
);

fn nat_parts(o: &Opts, failed: &mut bool) -> Result<NatResults> {
    let mut l = nat_lab(o.pool)?;
    eprintln!(
        "== NAT lab, {} real servers (lab dir {})",
        o.pool,
        l.lab.dir().display()
    );
    let mut cpu = None;
    let mut detect = None;
    let mut data = None;
    if o.parts.contains(&Part::Cpu) {
        eprintln!("== checker CPU");
        let r = cpu_bench(&mut l, o);
        *failed |= r.iter().any(|(_, v)| v.len() < o.cpu_rounds);
        cpu = Some(r);
    }
    if o.parts.contains(&Part::Detect) || o.parts.contains(&Part::Nat) {
        start_director(&mut l, o, o.pool)?;
    }
    if o.parts.contains(&Part::Detect) {
        eprintln!("== detection");
        match detect_bench(&mut l, o) {
            Ok(d) => {
                *failed |= d.failures > 0;
                detect = Some(d);
            }
            Err(e) => {
                eprintln!("detection failed: {e}");
                *failed = true;
            }
        }
    }
    if o.parts.contains(&Part::Nat) {
        eprintln!("== data path, NAT");
        // The direct path: the client routes the real servers' network through d1.
        l.lab.run(
            CLIENT,
            &["ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.1"],
        )?;
        let direct = format!("{}:80", l.rs_addr(1));
        match data_bench(&l, o, &direct) {
            Ok(r) => data = Some((direct, r)),
            Err(e) => {
                eprintln!("NAT data path failed: {e}");
                *failed = true;
            }
        }
    }
    if !*failed {
        l.lab.pass()?;
    }
    Ok((cpu, detect, data))
}

fn dr_part(o: &Opts) -> Result<(String, DataRounds)> {
    let mut l = LvsLab::new("lvsbdr", Mode::Dr, 1)?;
    eprintln!("== data path, DR (lab dir {})", l.lab.dir().display());
    l.serve_aliases(0, 1..3)?;
    start_director(&mut l, o, 3)?;
    let direct = format!("{}:80", l.rs_addr(0));
    let r = data_bench(&l, o, &direct)?;
    l.lab.pass()?;
    Ok((direct, r))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, addr, conc, secs] = args.as_slice() {
        if flag == "--load" {
            return load_main(addr, conc, secs);
        }
    }
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if o.parts.contains(&Part::Cpu) && wasmalived_e2e::cmd::output(&["haproxy", "-v"]).is_err() {
        eprintln!("haproxy is missing: install Debian's haproxy (scripts/setup.sh does)");
        return ExitCode::from(2);
    }
    let pinned = match pin_binaries() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut failed = false;
    let (mut cpu, mut detect, mut data_rows) = (None, None, Vec::new());
    if o.parts.iter().any(|p| *p != Part::Dr) {
        match nat_parts(&o, &mut failed) {
            Ok((c, d, n)) => {
                cpu = c;
                detect = d;
                if let Some((direct, n)) = n {
                    data_rows.push(("NAT", direct, n));
                }
            }
            Err(e) => {
                eprintln!("NAT lab failed: {e}");
                failed = true;
            }
        }
    }
    if o.parts.contains(&Part::Dr) {
        match dr_part(&o) {
            Ok(r) => data_rows.push(("DR", r.0, r.1)),
            Err(e) => {
                eprintln!("DR lab failed: {e}");
                failed = true;
            }
        }
    }
    let _ = fs::remove_dir_all(pinned);
    println!(
        "LVS director benchmark ({:.0} s){}",
        started.elapsed().as_secs_f64(),
        if failed {
            " — some parts failed, see above"
        } else {
            ""
        }
    );
    if let Some(c) = &cpu {
        print_cpu(&o, c);
    }
    if let Some(d) = &detect {
        print_detect(&o, d);
    }
    if !data_rows.is_empty() {
        print_data(&o, &data_rows);
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

//! Check-driven failover benchmark (issue 4): time from nginx being killed on the Master to
//! the VIP answering HTTP from the Backup, for
//!
//! - `plugin-weight`: wasmalived + the `nginx-process` plugin, `weight -5` (priority 100 → 95,
//!   below the Backup's 99, so the Backup takes over when its master-down timer expires);
//! - `plugin-fatal`: the same plugin with a remediation (`/bin/true`, which does not bring
//!   nginx back) and `settle_ms 200`: `fatal` → the Master enters Fault at once and sends
//!   priority 0, so the Backup takes over after its skew time;
//! - `plugin-event`: event-driven (issue 14): the same plugin with `fatal_when_none true`; it
//!   asks to be woken when the nginx processes it counted exit, so the exit itself runs the
//!   check, which says `fatal` at once (no remediation, no settle): the Backup takes over
//!   after its skew time, whatever the interval;
//! - `keepalived-script`: keepalived 2.x running the seed's shell check (`chk_nginx.sh`,
//!   namespace-aware, see [`SHELL_CHECK`]) with the same weight;
//! - `keepalived-track-process`: keepalived's own `vrrp_track_process` on the node's nginx
//!   (`weight 0`: Fault at the exit event), keepalived started from the initial network
//!   namespace with `net_namespace` so that its process connector works (as in
//!   `tests/track_process.rs`); nginx runs as one process (`master_process off`) there, since
//!   keepalived matches it by its command line;
//! - `file-event` / `file-interval`: the event is not a kill but a maintenance flag written on
//!   the Master (`n1.maint` in a directory granted with `allow_dir`); the stock `file` plugin
//!   says `fatal` while it exists. `file-event` asks to be woken when the flag changes
//!   (`wake.on-change`, contract 1.3.0): the write itself runs the check; `file-interval`
//!   (`wake false`) only sees it at its next run. Both then wait the Backup's skew time.
//! - `tcp-event` / `tcp-interval`: the stock `tcp` plugin on the node's own nginx
//!   (`address <node>:80`, `allow_tcp` on it) with [`TCP_TIMING`] (`fall 1`, `weight 0`: a
//!   failed run puts the instance in Fault). `tcp-event` sets `wake_on_disconnect true`
//!   (`wake.on-disconnect`, contract 1.4.0): the daemon holds a connection to nginx, the kill
//!   closes it and that runs the check; `tcp-interval` only sees the kill at its next run.
//!   Both then wait the Backup's skew time.
//!
//! Same schedule for all checks: `interval 2`, `fall 3`, `rise 2`, `weight -5`, priorities
//! 100/99 — the `examples/nginx-*.conf` setup — over VRRPv2 `advert_int 1` (default), or
//! VRRPv3 with `advert_int 0.1` or `1` (`--proto`). The client runs a probe (this binary with
//! `--probe`) in its namespace that starts a GET of `http://VIP/` every 5 ms (each on its own
//! thread: a GET stalled on the old Master does not delay the next) and stops at the first
//! answer carrying the Backup's page. Kills are spread evenly over the check interval.
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin check_failover_bench -- [--runs 10] [--proto v2|v3-0.1|v3-1]
//!     [--variants plugin-weight,plugin-fatal,plugin-event,keepalived-script,keepalived-track-process,
//!                 file-event,file-interval,tcp-event,tcp-interval]
//! ```
//! Needs root, nginx, keepalived, `cargo build -p wasmalived` and `make plugins`.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use wasmalived_e2e::nginx::get_once;
use wasmalived_e2e::{
    median, now_epoch, page_of, plugin_check, plugin_path, script_check, wait_for, with_checks,
    CheckTiming, Impl, LabError, Pair, Proc, Proto, Result, CLIENT, INSTANCE, NODES, PRIORITIES,
};

/// The VRRP setup of a series: version and advert interval.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Setup {
    proto: Proto,
    /// `advert_int`, seconds.
    advert: f64,
}

impl Setup {
    const V2: Setup = Setup {
        proto: Proto::V2Pass,
        advert: 1.0,
    };

    fn parse(s: &str) -> Option<Setup> {
        match s {
            "v2" => Some(Setup::V2),
            "v3-0.1" => Some(Setup {
                proto: Proto::V3Ipv4,
                advert: 0.1,
            }),
            "v3-1" => Some(Setup {
                proto: Proto::V3Ipv4,
                advert: 1.0,
            }),
            _ => None,
        }
    }

    fn name(self) -> String {
        let version = if self.proto == Proto::V2Pass { 2 } else { 3 };
        format!("VRRPv{version} IPv4 advert_int {}", self.advert)
    }

    /// Skew time of a Backup with `priority` (RFC 5798 §6.1; RFC 3768 §6.1 for v2, the same
    /// at `advert_int 1`).
    fn skew(self, priority: u8) -> Duration {
        Duration::from_secs_f64((256.0 - f64::from(priority)) * self.advert / 256.0)
    }

    /// Master-down interval of a Backup with `priority`: 3 × advert interval + skew.
    fn master_down(self, priority: u8) -> Duration {
        Duration::from_secs_f64(3.0 * self.advert) + self.skew(priority)
    }

    /// `pair`'s configs with this advert interval.
    fn apply(self, pair: &mut Pair) {
        for conf in &mut pair.confs {
            conf.instance_mut().advert_int = format!("{}", self.advert);
        }
    }
}
const CHECK: &str = "chk_nginx";
/// The examples' schedule.
const TIMING: CheckTiming = CheckTiming {
    interval: 2,
    timeout: None,
    fall: 3,
    rise: 2,
    weight: -5,
};
/// The `tcp` rows' schedule: the examples' interval, but one failed run puts the instance in
/// Fault (priority 0 at once), so the rows differ only by when the check notices.
const TCP_TIMING: CheckTiming = CheckTiming {
    interval: 2,
    timeout: Some(1),
    fall: 1,
    rise: 2,
    weight: 0,
};
/// The plugin's wait after its remediation in the fatal variant.
const SETTLE_MS: u64 = 200;
/// Time from the daemons' start to the kill (plus the run's phase): long enough for the
/// election and the first check results, and the same for every run, so that the phase
/// spreads the kills evenly over the check interval.
const LEAD_IN: Duration = Duration::from_secs(10);
/// Probe: pause between GETs, TCP connect bound, request/answer bound.
const PROBE_EVERY: Duration = Duration::from_millis(5);
const PROBE_CONNECT: Duration = Duration::from_millis(20);
const PROBE_IO: Duration = Duration::from_millis(500);
/// GETs the probe has in flight at most.
const PROBE_MAX_IN_FLIGHT: usize = 200;

/// The seed's `ch_ng.sh` test, `[ "$(ps -C nginx --no-heading | wc -l)" -gt 0 ]`, made
/// namespace-aware: network namespaces do not separate PIDs, so `ps -C nginx` would also
/// count the other node's nginx. `pgrep --ns $$ --nslist net` only matches processes in this
/// shell's network namespace (the node's: keepalived runs its scripts there).
const SHELL_CHECK: &str = "#!/bin/sh\n\
    # chk_nginx.sh: healthy while an nginx runs in this network namespace.\n\
    [ \"$(pgrep --ns $$ --nslist net -x nginx | wc -l)\" -gt 0 ]\n";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    PluginWeight,
    PluginFatal,
    PluginEvent,
    KeepalivedScript,
    KeepalivedTrackProcess,
    FileEvent,
    FileInterval,
    TcpEvent,
    TcpInterval,
}

impl Variant {
    fn id(self) -> &'static str {
        match self {
            Variant::PluginWeight => "plugin-weight",
            Variant::PluginFatal => "plugin-fatal",
            Variant::PluginEvent => "plugin-event",
            Variant::KeepalivedScript => "keepalived-script",
            Variant::KeepalivedTrackProcess => "keepalived-track-process",
            Variant::FileEvent => "file-event",
            Variant::FileInterval => "file-interval",
            Variant::TcpEvent => "tcp-event",
            Variant::TcpInterval => "tcp-interval",
        }
    }

    fn describe(self) -> String {
        match self {
            Variant::PluginWeight => "wasmalived, nginx-process plugin, weight -5".into(),
            Variant::PluginFatal => format!(
                "wasmalived, nginx-process plugin, remediation `/bin/true` + settle_ms {SETTLE_MS} → fatal"
            ),
            Variant::PluginEvent => {
                "wasmalived, nginx-process plugin, event-driven, fatal_when_none → fatal".into()
            }
            Variant::KeepalivedScript => "keepalived 2.2.7, shell script (`pgrep --ns`), weight -5".into(),
            Variant::KeepalivedTrackProcess => {
                "keepalived 2.2.7, vrrp_track_process (connector), weight 0 → Fault".into()
            }
            Variant::FileEvent => {
                "wasmalived, flag written, file plugin, event-driven (on-change) → fatal".into()
            }
            Variant::FileInterval => {
                "wasmalived, flag written, file plugin, interval only (wake false) → fatal".into()
            }
            Variant::TcpEvent => {
                "wasmalived, tcp plugin on nginx, event-driven (on-disconnect), weight 0 → Fault"
                    .into()
            }
            Variant::TcpInterval => {
                "wasmalived, tcp plugin on nginx, interval only, weight 0 → Fault".into()
            }
        }
    }

    fn kind(self) -> Impl {
        match self {
            Variant::KeepalivedScript | Variant::KeepalivedTrackProcess => Impl::Keepalived,
            _ => Impl::Wasmalived,
        }
    }

    /// Whether n1's nginx runs as one process: keepalived's `vrrp_track_process` matches it by
    /// its command line, which an nginx master rewrites.
    fn single_nginx(self) -> bool {
        self == Variant::KeepalivedTrackProcess
    }

    /// Whether the daemons start from the initial network namespace (`net_namespace`), so
    /// that keepalived's process connector works.
    fn starts_in_initial_namespace(self) -> bool {
        self == Variant::KeepalivedTrackProcess
    }

    /// Whether the failover is triggered by writing n1's maintenance flag, not by killing
    /// its nginx.
    fn watches_a_flag(self) -> bool {
        matches!(self, Variant::FileEvent | Variant::FileInterval)
    }

    /// Whether the check is the `tcp` plugin on the node's own nginx.
    fn probes_tcp(self) -> bool {
        matches!(self, Variant::TcpEvent | Variant::TcpInterval)
    }

    /// What the protocol allows, from the moment the check could first notice (the first
    /// check run after the kill lands anywhere in one interval): the rest of the runs to
    /// reach `fall`, then the Backup's master-down interval (weight) or skew time (fatal).
    fn model(self, setup: Setup) -> String {
        let i = TIMING.interval();
        let md = setup.master_down(PRIORITIES[1]);
        let skew = setup.skew(PRIORITIES[1]);
        match self {
            Variant::PluginEvent | Variant::KeepalivedTrackProcess => {
                format!("exit event + skew {:.3} s", skew.as_secs_f64())
            }
            Variant::FileEvent => format!("inotify event + skew {:.3} s", skew.as_secs_f64()),
            Variant::TcpEvent => format!(
                "connection closed + one run + skew {:.3} s",
                skew.as_secs_f64()
            ),
            Variant::FileInterval | Variant::TcpInterval => format!(
                "U(0, {:.0}) + skew {:.3} ≈ {:.2}–{:.2} s",
                i.as_secs_f64(),
                skew.as_secs_f64(),
                skew.as_secs_f64(),
                (skew + i).as_secs_f64()
            ),
            Variant::PluginFatal => {
                let base = Duration::from_millis(SETTLE_MS) + skew;
                format!(
                    "U(0, {:.0}) + settle {:.1} + skew {:.2} ≈ {:.2}–{:.2} s",
                    i.as_secs_f64(),
                    SETTLE_MS as f64 / 1000.0,
                    skew.as_secs_f64(),
                    base.as_secs_f64(),
                    (base + i).as_secs_f64()
                )
            }
            _ => {
                let base = i * (TIMING.fall - 1);
                format!(
                    "U(0, {:.0}) + {}×{:.0} + ≤ master-down {:.2} ≈ ≤ {:.1} s",
                    i.as_secs_f64(),
                    TIMING.fall - 1,
                    i.as_secs_f64(),
                    md.as_secs_f64(),
                    (base + i + md).as_secs_f64()
                )
            }
        }
    }
}

/// One run's figures, seconds from the kill.
struct Run {
    /// First GET from the client answered with the Backup's page.
    http: f64,
    /// The VIP added on the Backup (`ip -ts monitor address`).
    vip: Option<f64>,
}

struct Opts {
    runs: usize,
    setup: Setup,
    variants: Vec<Variant>,
}

fn parse_args(args: &[String]) -> std::result::Result<Opts, String> {
    let mut o = Opts {
        runs: 10,
        setup: Setup::V2,
        variants: vec![
            Variant::PluginWeight,
            Variant::PluginFatal,
            Variant::PluginEvent,
            Variant::KeepalivedScript,
            Variant::KeepalivedTrackProcess,
            Variant::FileEvent,
            Variant::FileInterval,
            Variant::TcpEvent,
            Variant::TcpInterval,
        ],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => {
                o.runs = val()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--runs takes a positive number")?
            }
            "--proto" => {
                let v = val()?;
                o.setup = Setup::parse(v)
                    .ok_or_else(|| format!("unknown --proto {v:?} (v2, v3-0.1, v3-1)"))?;
            }
            "--variants" => {
                o.variants = val()?
                    .split(',')
                    .map(|s| match s {
                        "plugin-weight" => Ok(Variant::PluginWeight),
                        "plugin-fatal" => Ok(Variant::PluginFatal),
                        "plugin-event" => Ok(Variant::PluginEvent),
                        "keepalived-script" => Ok(Variant::KeepalivedScript),
                        "keepalived-track-process" => Ok(Variant::KeepalivedTrackProcess),
                        "file-event" => Ok(Variant::FileEvent),
                        "file-interval" => Ok(Variant::FileInterval),
                        "tcp-event" => Ok(Variant::TcpEvent),
                        "tcp-interval" => Ok(Variant::TcpInterval),
                        x => Err(format!(
                            "unknown variant {x:?} (plugin-weight, plugin-fatal, plugin-event, \
                             keepalived-script, keepalived-track-process, file-event, \
                             file-interval, tcp-event, tcp-interval)"
                        )),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            "-h" | "--help" => {
                return Err(
                    "usage: check_failover_bench [--runs N] [--proto v2|v3-0.1|v3-1] \
                     [--variants plugin-weight,plugin-fatal,plugin-event,keepalived-script,\
                     keepalived-track-process,file-event,file-interval,tcp-event,tcp-interval]"
                        .into(),
                )
            }
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok(o)
}

/// Node `i`'s whole config for a variant: its VRRP config with the variant's check tracked.
fn node_config(variant: Variant, pair: &Pair, block: &str, i: usize) -> Result<String> {
    if variant == Variant::KeepalivedTrackProcess {
        return Ok(tracking_own_nginx(pair, i));
    }
    if variant.watches_a_flag() {
        let block = flag_check(variant, pair, i)?;
        return with_checks(&pair.confs[i].render(), &block, &[CHECK]);
    }
    if variant.probes_tcp() {
        let block = tcp_check(variant, pair, i)?;
        return with_checks(&pair.confs[i].render(), &block, &[CHECK]);
    }
    with_checks(&pair.confs[i].render(), block, &[CHECK])
}

/// The directory holding the nodes' maintenance flags (granted to their checks).
fn flag_dir(pair: &Pair) -> PathBuf {
    pair.lab.dir().join("flags")
}

/// Node `i`'s maintenance flag.
fn flag_of(pair: &Pair, i: usize) -> PathBuf {
    flag_dir(pair).join(format!("{}.maint", NODES[i]))
}

/// The stock `file` check of node `i` on its own flag: `fatal` while it exists.
fn flag_check(variant: Variant, pair: &Pair, i: usize) -> Result<String> {
    let dir = flag_dir(pair);
    fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    let wake = if variant == Variant::FileEvent {
        "true"
    } else {
        "false"
    };
    Ok(plugin_check(
        CHECK,
        &plugin_path("file")?,
        &[
            ("path", &flag_of(pair, i).display().to_string()),
            ("verdict", "fatal"),
            ("wake", wake),
        ],
        &[&format!("allow_dir {}", dir.display())],
        &TIMING,
    ))
}

/// The stock `tcp` check of node `i` on its own nginx; `tcp-event` holds a connection to it.
fn tcp_check(variant: Variant, pair: &Pair, i: usize) -> Result<String> {
    let server = format!("{}:80", pair.lab.node(NODES[i])?.v4);
    let wake = if variant == Variant::TcpEvent {
        "true"
    } else {
        "false"
    };
    Ok(plugin_check(
        CHECK,
        &plugin_path("tcp")?,
        &[("address", &server), ("wake_on_disconnect", wake)],
        &[&format!("allow_tcp {server}")],
        &TCP_TIMING,
    ))
}

/// keepalived's `vrrp_track_process` on node `i`'s own nginx (matched by its parameters, as
/// in `tests/track_process.rs`), tracked with weight 0: Fault while it is not running.
fn tracking_own_nginx(pair: &Pair, i: usize) -> String {
    let prefix = pair.lab.nginx_prefix(NODES[i]);
    let p = prefix.display();
    let block = format!(
        "vrrp_track_process nginx {{\n    process nginx -p {p} -c {p}/nginx.conf\n    param_match partial\n}}\n"
    );
    let conf = pair.confs[i].render();
    let at = conf.find("vrrp_instance ").unwrap_or(conf.len());
    let mut out = format!("{}{block}", &conf[..at]);
    for line in conf[at..].split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with("vrrp_instance ") {
            out.push_str("    track_process {\n        nginx\n    }\n");
        }
    }
    out
}

/// The `vrrp_script` block of a variant (the same on both nodes); empty for
/// `vrrp_track_process`, which [`node_config`] writes per node.
fn check_block(variant: Variant, pair: &Pair) -> Result<String> {
    match variant {
        // Per node: [`node_config`] writes them.
        Variant::KeepalivedTrackProcess
        | Variant::FileEvent
        | Variant::FileInterval
        | Variant::TcpEvent
        | Variant::TcpInterval => Ok(String::new()),
        Variant::PluginEvent => Ok(plugin_check(
            CHECK,
            &plugin_path("nginx_process")?,
            &[("process", "nginx"), ("fatal_when_none", "true")],
            &["allow_processes netns"],
            &TIMING,
        )),
        Variant::KeepalivedScript => {
            let path = pair.lab.dir().join("chk_nginx.sh");
            fs::write(&path, SHELL_CHECK)
                .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .map_err(|e| LabError::io(format!("chmod {}", path.display()), e))?;
            Ok(script_check(CHECK, &path.display().to_string(), &TIMING))
        }
        Variant::PluginWeight => Ok(plugin_check(
            CHECK,
            &plugin_path("nginx_process")?,
            &[("process", "nginx")],
            &["allow_processes netns"],
            &TIMING,
        )),
        Variant::PluginFatal => Ok(plugin_check(
            CHECK,
            &plugin_path("nginx_process")?,
            &[
                ("process", "nginx"),
                ("remediation", "restart"),
                ("settle_ms", &SETTLE_MS.to_string()),
            ],
            &["allow_processes netns", "remediation restart \"/bin/true\""],
            &TIMING,
        )),
    }
}

/// Starts the probe in the client: it GETs `http://VIP/` until the Backup's page comes back.
fn start_probe(pair: &Pair, k: usize) -> Result<Proc> {
    // Our own image through /proc: it still works after `cargo build` replaced the file.
    let exe = format!("/proc/{}/exe", std::process::id());
    let addr = format!("{}:80", pair.vip());
    let probe = pair.lab.spawn(
        CLIENT,
        &[&exe, "--probe", &addr, NODES[1]],
        format!("probe-{k}.log"),
    )?;
    wait_for(
        "the probe's first answer from the Master",
        Duration::from_secs(5),
        Duration::from_millis(10),
        || Ok(probe.log_tail(5).contains("ready")),
        || probe.log_tail(10),
    )?;
    Ok(probe)
}

/// The probe mode: start a GET of `addr` every [`PROBE_EVERY`], each on its own thread, so
/// that a request stalled on the old Master (its VIP gone mid-connection: no answer, no
/// reset, until [`PROBE_IO`]) does not hold up the next; print `ready` after the first answer,
/// then `hit EPOCH` at the first answer with `node`'s page, and exit.
fn probe(addr: &str, node: &str) -> ExitCode {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("--probe: bad address {addr:?}");
        return ExitCode::from(2);
    };
    let want = page_of(node);
    let deadline = Instant::now() + Duration::from_secs(120);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<(String, f64)>();
    let mut ready = false;
    while Instant::now() < deadline {
        if in_flight.load(Ordering::SeqCst) < PROBE_MAX_IN_FLIGHT {
            let (tx, in_flight) = (tx.clone(), Arc::clone(&in_flight));
            in_flight.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                if let Some(body) = get_once(addr, PROBE_CONNECT, PROBE_IO) {
                    let _ = tx.send((body, now_epoch()));
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
        while let Ok((body, at)) = rx.try_recv() {
            if body == want {
                println!("hit {at:.6}");
                return ExitCode::SUCCESS;
            }
            if !ready {
                println!("ready ({})", body.trim());
                ready = true;
            }
        }
        std::thread::sleep(PROBE_EVERY);
    }
    println!("gave up");
    ExitCode::from(1)
}

/// One failover: daemons and n1's nginx started fresh; n1's nginx killed at `LEAD_IN` + this
/// run's phase of the check interval after n1's daemon started. n1's nginx never outlives
/// the run, whatever happens.
fn one_run(
    pair: &mut Pair,
    variant: Variant,
    setup: Setup,
    block: &str,
    k: usize,
    runs: usize,
) -> Result<Run> {
    let nginx = if variant.single_nginx() {
        pair.lab.start_nginx_single(NODES[0])?
    } else {
        pair.lab.start_nginx(NODES[0])?
    };
    let run = failover(pair, variant, setup, block, &nginx, k, runs);
    let _ = nginx.kill9_group();
    let _ = fs::remove_file(flag_of(pair, 0));
    // Its workers die with the group, a moment after their master (the flag variants kill
    // nginx here, not as the run's event): the next run starts with none.
    wait_for(
        "n1's nginx processes to exit",
        Duration::from_secs(5),
        Duration::from_millis(10),
        || Ok(pair.lab.nginx_count(NODES[0])? == 0),
        || format!("{:?} nginx processes left", pair.lab.nginx_count(NODES[0])),
    )?;
    run
}

fn failover(
    pair: &mut Pair,
    variant: Variant,
    setup: Setup,
    block: &str,
    nginx: &Proc,
    k: usize,
    runs: usize,
) -> Result<Run> {
    // n1 first, alone, then n2: started together, both master-down timers can expire at
    // once, and a GARP from n2's moment as Master would point the client at n2.
    let t_start = Instant::now();
    let start = |pair: &mut Pair, i: usize| -> Result<()> {
        let text = node_config(variant, pair, block, i)?;
        if variant.starts_in_initial_namespace() {
            pair.start_net_namespace_with(i, &text)
        } else {
            pair.start_with(i, &text)
        }
    };
    // The lab's election bound assumes its protocol's own advert interval; this series may
    // run at `advert_int 1`, and a debug daemon takes a while to load its plugin.
    let settle = pair
        .election_timeout()
        .max(setup.master_down(PRIORITIES[1]) * 2 + Duration::from_secs(6));
    start(pair, 0)?;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[0], settle)?;
    start(pair, 1)?;
    pair.lab
        .wait_state(pair.daemon(1)?, INSTANCE, "BACKUP", settle)?;
    pair.expect_master(0, settle)?;
    if variant.kind() == Impl::Wasmalived {
        for i in 0..2 {
            pair.lab
                .wait_check(pair.daemon(i)?, CHECK, "up", TIMING.interval() * 3)?;
        }
    }
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;
    let probe = start_probe(pair, k)?;
    let mon = pair
        .lab
        .monitor_addresses(NODES[1], &format!("run{k}-n2-addr"))?;
    let phase = TIMING.interval().mul_f64((k as f64 + 0.5) / runs as f64);
    let at = t_start + LEAD_IN + phase;
    let now = Instant::now();
    if now > at {
        return Err(LabError::check(format!(
            "the pair took longer than the lead-in {LEAD_IN:?} to converge"
        )));
    }
    std::thread::sleep(at - now);
    let t_kill = now_epoch();
    if variant.watches_a_flag() {
        let flag = flag_of(pair, 0);
        fs::write(&flag, "maintenance\n")
            .map_err(|e| LabError::io(format!("writing {}", flag.display()), e))?;
    } else {
        pair.lab.kill_nginx(nginx)?;
    }
    let status = probe
        .wait_exit(Duration::from_secs(40))?
        .ok_or_else(|| LabError::check("the probe saw no answer from n2 within 40 s"))?;
    let out = fs::read_to_string(probe.log_path()).unwrap_or_default();
    let hit: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("hit "))
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| LabError::check(format!("probe exited {status} without a hit: {out}")))?;
    if hit < t_kill {
        return Err(LabError::check(format!(
            "the Backup answered {:.3} s before the kill: the pair had not settled",
            t_kill - hit
        )));
    }
    std::thread::sleep(Duration::from_millis(100));
    let vip: IpAddr = wasmalived_e2e::lab::parse_ip(pair.vip())?;
    let vip_at = mon
        .stop()?
        .iter()
        .find(|e| e.added && e.ip == vip && e.t >= t_kill - 0.05)
        .map(|e| e.t - t_kill);
    reset(pair);
    Ok(Run {
        http: hit - t_kill,
        vip: vip_at,
    })
}

/// Stops both daemons gracefully and removes any VIP left behind.
fn reset(pair: &mut Pair) {
    for (i, node) in NODES.iter().enumerate() {
        if let Ok(d) = pair.daemon(i) {
            if d.proc.is_running() {
                let _ = d.term();
                if !matches!(d.proc.wait_exit(Duration::from_secs(6)), Ok(Some(_))) {
                    let _ = d.crash();
                }
            }
        }
        let _ = pair.lab.del_addr(node, pair.vip());
    }
}

fn bench(variant: Variant, setup: Setup, runs: usize) -> Result<(Vec<Run>, usize)> {
    let tag = format!("cfb{}", &variant.id()[..1]);
    let kind = variant.kind();
    let mut pair = Pair::new(&tag, setup.proto, [kind, kind])?;
    setup.apply(&mut pair);
    let block = check_block(variant, &pair)?;
    // n2's nginx runs for the whole series; n1's is started per run.
    let _n2_nginx = if variant.single_nginx() {
        pair.lab.start_nginx_single(NODES[1])?
    } else {
        pair.lab.start_nginx(NODES[1])?
    };
    eprintln!(
        "== {} (lab dir {})",
        variant.describe(),
        pair.lab.dir().display()
    );
    let mut ok = Vec::new();
    let mut failures = 0;
    for k in 0..runs {
        match one_run(&mut pair, variant, setup, &block, k, runs) {
            Ok(run) => {
                let event = if variant.watches_a_flag() {
                    "flag written"
                } else {
                    "nginx killed"
                };
                eprintln!(
                    "  run {k}: {event} → HTTP from n2 {:.3} s (VIP on n2 {})",
                    run.http,
                    fmt_s(run.vip)
                );
                ok.push(run);
            }
            Err(e) => {
                failures += 1;
                eprintln!("  run {k} failed: {e}");
                reset(&mut pair);
            }
        }
    }
    if failures == 0 {
        pair.pass()?;
    }
    Ok((ok, failures))
}

/// Pins the daemon and the nginx-process plugin for the whole series (`None` when only
/// keepalived runs).
fn pin_binaries(variants: &[Variant]) -> Result<Option<PathBuf>> {
    if variants.iter().all(|v| v.kind() != Impl::Wasmalived) {
        return Ok(None);
    }
    wasmalived_e2e::daemon::pin_binaries("check-bench", &["nginx_process", "file", "tcp"]).map(Some)
}

fn fmt_s(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3} s")).unwrap_or_else(|| "–".into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, addr, node] = args.as_slice() {
        if flag == "--probe" {
            return probe(addr, node);
        }
    }
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Pin the daemon and the plugin: others may rebuild them while this runs for minutes.
    let pinned = match pin_binaries(&opts.variants) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for v in &opts.variants {
        let missing = match v.kind() {
            Impl::Wasmalived => wasmalived_e2e::wasmalived_bin()
                .and_then(|_| plugin_path("nginx_process"))
                .err(),
            Impl::Keepalived => None,
        };
        if let Some(e) = missing {
            eprintln!("{}: {e}", v.id());
            return ExitCode::from(2);
        }
    }
    let mut rows = Vec::new();
    for &v in &opts.variants {
        match bench(v, opts.setup, opts.runs) {
            Ok((runs, failures)) => rows.push((v, runs, failures)),
            Err(e) => eprintln!("{}: lab failed: {e}", v.id()),
        }
    }
    println!(
        "Check `interval {}`, `fall {}`, `rise {}`, `weight {}`; priorities {}/{}; {}; \
         HTTP probe every {} ms from the client.\n",
        TIMING.interval,
        TIMING.fall,
        TIMING.rise,
        TIMING.weight,
        PRIORITIES[0],
        PRIORITIES[1],
        opts.setup.name(),
        PROBE_EVERY.as_millis()
    );
    if opts.variants.iter().any(|v| v.probes_tcp()) {
        println!(
            "The tcp rows: `interval {}`, `timeout {}`, `fall {}`, `rise {}`, `weight {}`.\n",
            TCP_TIMING.interval,
            TCP_TIMING.timeout.unwrap_or(0),
            TCP_TIMING.fall,
            TCP_TIMING.rise,
            TCP_TIMING.weight
        );
    }
    println!(
        "| variant | runs ok/failed | nginx killed (flag written) → HTTP from Backup (median, \
         min–max) | → VIP on Backup (median) | model |"
    );
    println!("|---|---|---|---|---|");
    for (v, runs, failures) in &rows {
        let http: Vec<f64> = runs.iter().map(|r| r.http).collect();
        let vip: Vec<f64> = runs.iter().filter_map(|r| r.vip).collect();
        let min = http.iter().copied().fold(f64::INFINITY, f64::min);
        let max = http.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "| {} | {}/{} | {} ({}–{}) | {} | {} |",
            v.describe(),
            runs.len(),
            failures,
            fmt_s(median(&http)),
            fmt_s(min.is_finite().then_some(min)),
            fmt_s(max.is_finite().then_some(max)),
            fmt_s(median(&vip)),
            v.model(opts.setup)
        );
    }
    if let Some(dir) = pinned {
        let _ = fs::remove_dir_all(dir);
    }
    if rows.iter().any(|(_, r, f)| *f > 0 || r.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

//! `wasmalived plugin run|inspect|new`: run one check plugin with the daemon's sandbox, show
//! what it targets and imports, or start a new plugin project (`plugin_new.rs`). For plugin
//! authors; `run` and `inspect` use exactly the daemon's runtime.
//!
//! Exit status of `run`: 0 ok, 1 fail, 2 fatal, 3 the plugin could not run (one-line reason).
//! `--json` prints one object per run with the keys `plugin, digest, verdict, reason, message,
//! measurements, wall_us, cpu_us` (stable: tests parse it), and what the run asked to be
//! woken by (`wake_on_exit`, `wake_on_change`, `wake_on_disconnect`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use wasmalived_config::grants::{
    DirGrant, Grants, HttpGrant, HttpPin, HttpTls, ProcessGrant, RemediationCommand, TcpGrant,
    UdpGrant, DEFAULT_MEMORY_LIMIT, DEFAULT_REMEDIATION_TIMEOUT,
};
use wasmalived_plugin_host::contract::{self, Capability};
use wasmalived_plugin_host::{PoolLimits, RunOutcome, Runtime};

/// Exit status when the plugin could not run at all.
pub const EXIT_CANNOT_RUN: u8 = 3;

/// `wasmalived plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run a check plugin with the given parameters and grants; print verdict and timing.
    Run(Box<RunArgs>),
    /// Show the contract version a plugin targets, its exports and the capabilities it imports.
    Inspect(InspectArgs),
    /// Write a new check-plugin project (Rust, Python, JavaScript or C) that builds with one
    /// command and passes `plugin run` as written.
    New(super::plugin_new::NewArgs),
}

/// Arguments of `plugin run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plugin (.wasm component).
    pub file: PathBuf,
    /// A check parameter, repeatable, in order.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    /// Grant `processes` (read the process table).
    #[arg(long)]
    pub processes: bool,
    /// Grant `processes`, restricted to the daemon's network namespace.
    #[arg(long)]
    pub processes_netns: bool,
    /// Grant a remediation command by id (run without a shell, split on whitespace).
    #[arg(long = "remediation", value_name = "ID=COMMAND", value_parser = parse_kv)]
    pub remediation: Vec<(String, String)>,
    /// Grant HTTP requests to a URL prefix or HOST[:PORT].
    #[arg(long = "http", value_name = "URL_OR_HOST")]
    pub http: Vec<String>,
    /// Connect HTTP requests for HOST:PORT to ADDR instead (curl's `--resolve`; the request
    /// keeps HOST as its `Host` header and TLS name). Repeatable.
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR", value_parser = parse_pin)]
    pub resolve: Vec<HttpPin>,
    /// HTTPS: accept any server certificate (keepalived's `SSL_GET`; curl's `--insecure`).
    #[arg(long, conflicts_with = "cacert")]
    pub insecure: bool,
    /// HTTPS: trust the CA certificates of this PEM file instead of the built-in web roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// HTTPS: send no server name (SNI).
    #[arg(long)]
    pub no_sni: bool,
    /// Connections leave from this address (an LVS checker's `bindto`): HTTP requests bind
    /// to it, and a TCP bind to it is allowed.
    #[arg(long, value_name = "ADDR")]
    pub source: Option<IpAddr>,
    /// Grant TCP connects to IP:PORT (`*` = any port).
    #[arg(long = "tcp", value_name = "HOST:PORT")]
    pub tcp: Vec<String>,
    /// Grant UDP to and from the peer IP:PORT (`*` = any port).
    #[arg(long = "udp", value_name = "HOST:PORT")]
    pub udp: Vec<String>,
    /// Grant a directory (read-only; append `:rw` for read-write).
    #[arg(long = "dir", value_name = "PATH[:rw]")]
    pub dirs: Vec<String>,
    /// Memory limit (e.g. 64M, 512K, 1G).
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub memory: u64,
    /// Timeout per run (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Run N times in one process and report p50/p99 wall and CPU time.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// One JSON object per run on stdout.
    #[arg(long)]
    pub json: bool,
    /// Compiled-code cache directory (default: $XDG_CACHE_HOME or /tmp, per user).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Arguments of `plugin inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The plugin (.wasm component).
    pub file: PathBuf,
    /// Compiled-code cache directory.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Parse curl's `--resolve HOST:PORT:ADDR` (ADDR an IPv4 or a bracketed or bare IPv6 address).
fn parse_pin(s: &str) -> Result<HttpPin, String> {
    let bad = || format!("expected HOST:PORT:ADDR, got `{s}`");
    let (host, rest) = s.split_once(':').ok_or_else(bad)?;
    let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(HttpPin {
        host: host.to_ascii_lowercase(),
        port,
        connect_to: SocketAddr::new(ip, port),
    })
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

/// Parse `64M`, `512K`, `1G`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("bad size `{s}` (e.g. 64M)"))
}

/// Parse `5s`, `500ms`, `2m`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("bad duration `{s}` (e.g. 5s, 500ms)");
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

impl RunArgs {
    fn grants(&self) -> Result<Grants, String> {
        let processes = if self.processes_netns {
            Some(ProcessGrant { netns_only: true })
        } else if self.processes {
            Some(ProcessGrant { netns_only: false })
        } else {
            None
        };
        let remediation = self
            .remediation
            .iter()
            .map(|(id, cmd)| {
                let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                if argv.is_empty() {
                    return Err(format!("--remediation {id}=: empty command"));
                }
                Ok(RemediationCommand {
                    id: id.clone(),
                    argv,
                    timeout: DEFAULT_REMEDIATION_TIMEOUT,
                    user: None,
                })
            })
            .collect::<Result<_, _>>()?;
        let dirs = self
            .dirs
            .iter()
            .map(|d| {
                let (p, writable) = match d.strip_suffix(":rw") {
                    Some(p) => (p, true),
                    None => (d.strip_suffix(":ro").unwrap_or(d), false),
                };
                DirGrant {
                    host_path: PathBuf::from(p),
                    guest_path: p.to_string(),
                    writable,
                }
            })
            .collect();
        Ok(Grants {
            processes,
            remediation,
            http: self.http.iter().cloned().map(HttpGrant).collect(),
            tcp: self.tcp.iter().cloned().map(TcpGrant).collect(),
            udp: self.udp.iter().cloned().map(UdpGrant).collect(),
            dirs,
            memory_limit: self.memory,
            http_pins: self.resolve.clone(),
            http_tls: HttpTls {
                verify: !self.insecure,
                ca: self.cacert.clone(),
                sni: !self.no_sni,
            },
            source: self.source,
        })
    }
}

/// Default cache directory for the CLI: per user, private.
fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "wasmalived-{}",
                wasmalived_plugin_host::security::daemon_uid()
            ))
        });
    base.join("wasmalived-plugin-cache")
}

/// Run a `plugin` subcommand; returns the process exit code.
pub fn main(cmd: PluginCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cannot_run(&format!("cannot start tokio: {e}")),
    };
    match cmd {
        PluginCommand::Run(args) => rt.block_on(run(*args)),
        PluginCommand::Inspect(args) => inspect(&args),
        PluginCommand::New(args) => super::plugin_new::main(&args),
    }
}

fn cannot_run(reason: &str) -> ExitCode {
    eprintln!("wasmalived: {reason}");
    ExitCode::from(EXIT_CANNOT_RUN)
}

/// A runtime whose pool slots hold `memory` bytes (the run's `--memory-limit`), so that the
/// limit given is the limit enforced.
fn runtime(cache_dir: Option<&Path>, memory: u64) -> Result<Runtime, String> {
    let dir = cache_dir.map_or_else(default_cache_dir, Path::to_path_buf);
    Runtime::with_limits(&dir, PoolLimits::for_checks(1, memory)).map_err(|e| e.to_string())
}

async fn run(args: RunArgs) -> ExitCode {
    let grants = match args.grants() {
        Ok(g) => g,
        Err(e) => return cannot_run(&e),
    };
    let runtime = match runtime(args.cache_dir.as_deref(), grants.memory_limit) {
        Ok(r) => r,
        Err(e) => return cannot_run(&e),
    };
    let plugin = {
        let (rt, file, g) = (runtime.clone(), args.file.clone(), grants.clone());
        match tokio::task::spawn_blocking(move || rt.load_check("cli", &file, &g)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return cannot_run(&e.to_string()),
            Err(e) => return cannot_run(&format!("loader crashed: {e}")),
        }
    };
    let repeat = args.repeat.max(1);
    let mut walls = Vec::with_capacity(repeat as usize);
    let mut cpus = Vec::with_capacity(repeat as usize);
    let mut last: Option<RunOutcome> = None;
    for _ in 0..repeat {
        let out = plugin.run_metered(&args.params, args.timeout).await;
        walls.push(out.wall);
        cpus.push(out.cpu.unwrap_or_default());
        if args.json {
            println!("{}", json_line(&out));
        }
        last = Some(out);
    }
    let Some(out) = last else {
        return cannot_run("no run");
    };
    if !args.json {
        print_human(&out);
        if repeat > 1 {
            println!(
                "runs:         {repeat}\nwall p50/p99: {} / {}\ncpu  p50/p99: {} / {}",
                us(percentile(&mut walls, 50)),
                us(percentile(&mut walls, 99)),
                us(percentile(&mut cpus, 50)),
                us(percentile(&mut cpus, 99)),
            );
        }
    }
    ExitCode::from(match out.kind() {
        "ok" => 0,
        "fatal" => 2,
        _ => 1,
    })
}

/// The `p`th percentile (nearest rank) of `v`.
pub fn percentile(v: &mut [Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let rank = (p * v.len()).div_ceil(100).clamp(1, v.len());
    v[rank - 1]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn print_human(out: &RunOutcome) {
    println!("plugin:       {}", out.identity);
    match out.reason() {
        None => println!("verdict:      {}", out.kind()),
        Some(reason) => println!("verdict:      {} ({reason})", out.kind()),
    }
    if let Err(failure) = &out.result {
        println!("failure:      {}", failure.kind());
    }
    for denied in &out.denied {
        println!("denied:       {denied}");
    }
    if let Some(m) = &out.message {
        println!("message:      {m}");
    }
    for (k, v) in &out.measurements {
        println!("measurement:  {k} = {v}");
    }
    if !out.wake.pids.is_empty() {
        let pids: Vec<String> = out.wake.pids.iter().map(u32::to_string).collect();
        println!("wake on exit: {}", pids.join(" "));
    }
    for path in &out.wake.paths {
        println!("wake on change: {}", path.guest_path);
    }
    for address in &out.wake.addresses {
        println!("wake on disconnect: {address}");
    }
    println!("wall:         {}", us(out.wall));
    println!("cpu:          {}", us(out.cpu.unwrap_or_default()));
}

/// The stable JSON form of one run.
pub fn json_line(out: &RunOutcome) -> String {
    let (plugin, digest) = out
        .identity
        .rsplit_once('@')
        .unwrap_or((out.identity.as_str(), ""));
    let measurements: serde_json::Map<String, serde_json::Value> = out
        .measurements
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect();
    serde_json::json!({
        "plugin": plugin,
        "digest": digest,
        "verdict": out.kind(),
        "reason": out.reason(),
        "failure": out.result.as_ref().err().map(|f| f.kind()),
        "denied": out.denied,
        "message": out.message,
        "measurements": measurements,
        "wake_on_exit": out.wake.pids,
        "wake_on_change": out.wake.paths.iter().map(|p| &p.guest_path).collect::<Vec<_>>(),
        "wake_on_disconnect": out.wake.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "wall_us": u64::try_from(out.wall.as_micros()).unwrap_or(u64::MAX),
        "cpu_us": out.cpu.map(|cpu| u64::try_from(cpu.as_micros()).unwrap_or(u64::MAX)),
    })
    .to_string()
}

fn inspect(args: &InspectArgs) -> ExitCode {
    let runtime = match runtime(args.cache_dir.as_deref(), DEFAULT_MEMORY_LIMIT) {
        Ok(r) => r,
        Err(e) => return cannot_run(&e),
    };
    let p = match runtime.load_file(&args.file) {
        Ok(p) => p,
        Err(e) => return cannot_run(&e.to_string()),
    };
    println!("plugin:   {}", p.identity());
    println!("file:     {}", p.path.display());
    println!("sha256:   {}", p.sha256);
    println!(
        "contract: {}@{} (host provides {}@{})",
        contract::PACKAGE,
        p.contract,
        contract::PACKAGE,
        contract::HOST_VERSION
    );
    println!("exports:");
    for e in &p.exports {
        println!("  {e}");
    }
    println!("imports:");
    for (name, cap) in p.capabilities() {
        let need = match cap {
            Ok(Capability::Always) => "always granted".to_string(),
            Ok(Capability::Baseline) => {
                "always linked, inert (WASI baseline of Rust std)".to_string()
            }
            Ok(c) => format!("needs grant `{}`", c.grant_name()),
            Err(r) => format!("REFUSED: {r}"),
        };
        println!("  {name:<45} {need}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn resolve_pins_like_curl() {
        let p = parse_pin("WWW.example.com:8080:192.0.2.10").expect("v4");
        assert_eq!(p.host, "www.example.com");
        assert_eq!(p.connect_to, "192.0.2.10:8080".parse().expect("addr"));
        let p = parse_pin("www.example.com:443:[2001:db8::10]").expect("v6");
        assert_eq!(p.connect_to, "[2001:db8::10]:443".parse().expect("addr"));
        for bad in [
            "www.example.com",
            "h:x:192.0.2.1",
            "h:80:nothost",
            ":80:192.0.2.1",
        ] {
            assert!(parse_pin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 50), Duration::from_millis(50));
        assert_eq!(percentile(&mut v, 99), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 50), Duration::ZERO);
    }

    #[test]
    fn json_shape_is_stable() {
        use wasmalived_plugin_host::Verdict;
        let out = RunOutcome {
            result: Ok(Verdict::Fail("down".into())),
            denied: Vec::new(),
            log_dropped: 0,
            output_dropped: 0,
            message: Some("m".into()),
            measurements: vec![("latency_ms".into(), 1.5)],
            wall: Duration::from_micros(42),
            cpu: Some(Duration::from_micros(7)),
            identity: "http@0123456789ab".into(),
            wake: wasmalived_plugin_host::WakeSources {
                pids: vec![7, 9],
                paths: Vec::new(),
                addresses: vec!["[2001:db8::1]:443".parse().expect("addr")],
            },
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&out)).expect("json");
        assert_eq!(v["plugin"], "http");
        assert_eq!(v["digest"], "0123456789ab");
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["reason"], "down");
        assert_eq!(v["failure"], serde_json::Value::Null);
        assert_eq!(v["measurements"]["latency_ms"], 1.5);
        assert_eq!(v["wall_us"], 42);
        assert_eq!(v["cpu_us"], 7);
        assert_eq!(v["wake_on_exit"], serde_json::json!([7, 9]));
        assert_eq!(
            v["wake_on_disconnect"],
            serde_json::json!(["[2001:db8::1]:443"])
        );
    }
}

//! What one real-server checker runs, built from its configuration.
//!
//! keepalived's checkers compile to the stock plugins, sandboxed like every check: `TCP_CHECK`
//! runs `tcp.wasm`, `HTTP_GET`/`SSL_GET` run `http.wasm` once per `url` (all must pass),
//! `SMTP_CHECK` runs `smtp.wasm` (a TCP grant to the server) and `DNS_CHECK` runs `dns.wasm`
//! (a UDP grant to the server), with grants derived from the real server's address (and
//! `bindto` as the one source address allowed) — config authors write no `allow_*` line for
//! them. A `virtualhost` is requested by name from the real server's address (an HTTP pin),
//! and `SSL_GET` keeps keepalived's default of verifying no certificate unless
//! `tls_verify` says otherwise. `PLUGIN_CHECK` runs any plugin with its own parameters and
//! grants, plus `address IP:PORT` (the checked address) and a TCP grant to it.
//! `MISC_CHECK` is a script, run through the daemon's vetted child-process runner (not
//! sandboxed: a script by definition). `PING_CHECK` and `UDP_CHECK` are host-side probes (a
//! guest sees no ICMP, and `UDP_CHECK` judges by the ICMP errors its socket gets).
//! `FILE_CHECK` reads a `track_file`
//! ([`super::file_check`]).
//!
//! Identical checkers (same kind, target, source and timing) are one [`ProbeDef`], run once
//! however many virtual servers name them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmalived_config::grants::{
    Grants, HttpGrant, HttpPin, HttpTls, TcpGrant, UdpGrant, SOCKET_CHECKER_MEMORY_LIMIT,
};
use wasmalived_config::lvs::{
    Checker, CheckerKind, CheckerTiming, DnsCheck, HttpCheck, HttpUrl, MiscCheck, TcpCheck,
    UdpCheck,
};
use wasmalived_config::GlobalDefs;
use wasmalived_lvs::WeightReport;
use wasmalived_plugin_host::reload::{CheckHandle as PluginHandle, PluginRegistry, PluginSource};
use wasmalived_plugin_host::{RunOutcome, Runtime, Verdict};
use wasmalived_sys::process::{Environment, RunError};
use wasmalived_sys::program::Program;

use super::file_check::FileProbe;
use crate::net::probe as net_probe;
use crate::programs;

/// The stock plugin `TCP_CHECK` runs (`tcp.wasm` in the plugin search path).
pub const TCP_PLUGIN: &str = "tcp";
/// The stock plugin `HTTP_GET` and `SSL_GET` run (`http.wasm` in the plugin search path).
pub const HTTP_PLUGIN: &str = "http";
/// The stock plugin `DNS_CHECK` runs (`dns.wasm` in the plugin search path).
pub const DNS_PLUGIN: &str = "dns";
/// The stock plugin `SMTP_CHECK` runs (`smtp.wasm` in the plugin search path).
pub const SMTP_PLUGIN: &str = "smtp";
/// The steps of an `SMTP_CHECK` dialogue that each get `connect_timeout` (connect, greeting,
/// `HELO`, its answer, `QUIT`, its answer): the run's limit is that many timeouts.
const SMTP_STEPS: u32 = 6;
/// Time a plugin run gets beyond its checker's `connect_timeout`, so the plugin reports its
/// own timeout (with what it measured) before the host cuts it off.
const RUN_MARGIN: Duration = Duration::from_millis(500);

/// A checker as it runs: what identifies it for deduplication.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeDef {
    /// What it does.
    pub kind: CheckerKind,
    /// The address checked (`connect_ip`/`connect_port` applied).
    pub target: SocketAddr,
    /// The source address (`bindto`).
    pub bind: Option<IpAddr>,
    /// Its timing.
    pub timing: CheckerTiming,
}

impl ProbeDef {
    /// The probe of `checker`.
    pub fn of(checker: &Checker) -> Self {
        ProbeDef {
            kind: checker.kind.clone(),
            target: checker.target,
            bind: checker.bind,
            timing: checker.timing,
        }
    }

    /// `TCP_CHECK 192.0.2.21:80` — for logs and status.
    pub fn label(&self) -> String {
        match &self.kind {
            CheckerKind::Plugin(p) => {
                format!("PLUGIN_CHECK {} {}", plugin_name(&p.plugin), self.target)
            }
            CheckerKind::File(f) => format!("FILE_CHECK {}", f.track_file),
            kind => format!("{} {}", kind.keyword(), self.target),
        }
    }
}

fn plugin_name(plugin: &wasmalived_config::PluginRef) -> String {
    match plugin {
        wasmalived_config::PluginRef::Name(n) => n.clone(),
        wasmalived_config::PluginRef::Path(p) => p.display().to_string(),
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The checker passed.
    pub success: bool,
    /// A `misc_dynamic` weight (exit status 2–255 → status − 2) or a `FILE_CHECK` offset.
    pub weight: Option<WeightReport>,
    /// `ok`, or why it failed.
    pub detail: String,
    /// What ran: a plugin's `name@digest`, a script, `icmp`, `udp`.
    pub runner: String,
    /// How long the check took.
    pub took: Duration,
}

impl Outcome {
    pub(super) fn ok(runner: impl Into<String>, took: Duration) -> Self {
        Outcome {
            success: true,
            weight: None,
            detail: "ok".into(),
            runner: runner.into(),
            took,
        }
    }

    pub(super) fn failed(
        runner: impl Into<String>,
        detail: impl Into<String>,
        took: Duration,
    ) -> Self {
        Outcome {
            success: false,
            weight: None,
            detail: detail.into(),
            runner: runner.into(),
            took,
        }
    }
}

/// Why a probe could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    /// The plugin could not be found or loaded.
    #[error("plugin {plugin}: {source}")]
    Plugin {
        /// The plugin file, or the name and the directories it is looked up in.
        plugin: PluginSource,
        /// Cause.
        source: wasmalived_plugin_host::PluginError,
    },
    /// The MISC_CHECK script was refused.
    #[error("misc_path: {0}")]
    Script(#[from] programs::ProgramSetupError),
}

/// What building probes needs.
#[derive(Clone)]
pub struct ProbeContext {
    /// The plugin runtime.
    pub runtime: Runtime,
    /// Hot reload of the plugins probes use.
    pub registry: PluginRegistry,
}

/// A probe ready to run.
pub enum Probe {
    /// A plugin, run once per parameter set (HTTP: per `url`); all runs must pass.
    Plugin {
        /// The loaded plugin (swapped by hot reload).
        handle: PluginHandle,
        /// One parameter set per run.
        runs: Vec<Vec<(String, String)>>,
        /// The run's time limit.
        timeout: Duration,
    },
    /// `MISC_CHECK`.
    Misc {
        /// The vetted script.
        program: Program,
        /// `misc_timeout`.
        timeout: Duration,
        /// `misc_dynamic`.
        dynamic: bool,
    },
    /// `PING_CHECK`.
    Ping {
        /// Who to ping.
        target: IpAddr,
        /// Source address.
        bind: Option<IpAddr>,
        /// `connect_timeout`.
        timeout: Duration,
    },
    /// A checker that could not be built (its plugin does not load, its script is refused):
    /// it fails with this reason until a reload fixes it — never silently healthy.
    Unavailable(String),
    /// `UDP_CHECK`.
    Udp {
        /// Where to send.
        target: SocketAddr,
        /// Source address.
        bind: Option<IpAddr>,
        /// What to send and expect.
        check: UdpCheck,
        /// `connect_timeout`.
        timeout: Duration,
    },
    /// `FILE_CHECK`.
    File(FileProbe),
}

impl Probe {
    /// Build the probe of `def` (loads plugins: compiles on a blocking thread). `name`
    /// identifies it in the plugin host's logs.
    pub async fn build(
        def: &ProbeDef,
        name: &str,
        global: &GlobalDefs,
        ctx: &ProbeContext,
    ) -> Result<Probe, ProbeSetupError> {
        let timeout = def.timing.connect_timeout;
        let plugin_timeout = timeout + RUN_MARGIN;
        match &def.kind {
            CheckerKind::Tcp(tcp) => {
                let source = stock_plugin(TCP_PLUGIN, global);
                let handle = load(ctx, name, source, stream_grants(def)).await?;
                let runs = vec![tcp_params(def, tcp)];
                Ok(Probe::Plugin {
                    handle,
                    runs,
                    timeout: plugin_timeout,
                })
            }
            CheckerKind::Http(http) => {
                let source = stock_plugin(HTTP_PLUGIN, global);
                let (mut grants, runs) = http_runs(http, def.target, timeout);
                grants.source = def.bind;
                let handle = load(ctx, name, source, grants).await?;
                Ok(Probe::Plugin {
                    handle,
                    runs,
                    timeout: plugin_timeout,
                })
            }
            CheckerKind::Plugin(p) => {
                let source = PluginSource::of(&p.plugin, &global.plugin_path);
                let mut grants = p.grants.clone();
                grants.tcp.push(TcpGrant(socket_text(def.target)));
                let mut params = p.params.clone();
                if !params.iter().any(|(k, _)| k == "address") {
                    params.insert(0, ("address".to_owned(), socket_text(def.target)));
                }
                let handle = load(ctx, name, source, grants).await?;
                Ok(Probe::Plugin {
                    handle,
                    runs: vec![params],
                    timeout,
                })
            }
            CheckerKind::Misc(misc) => Ok(Probe::Misc {
                program: misc_program(misc, global)?,
                timeout: misc.timeout,
                dynamic: misc.dynamic,
            }),
            CheckerKind::Ping => Ok(Probe::Ping {
                target: def.target.ip(),
                bind: def.bind,
                timeout,
            }),
            CheckerKind::Udp(check) => Ok(Probe::Udp {
                target: def.target,
                bind: def.bind,
                check: check.clone(),
                timeout,
            }),
            CheckerKind::Dns(check) => {
                let source = stock_plugin(DNS_PLUGIN, global);
                let handle = load(ctx, name, source, datagram_grants(def)).await?;
                Ok(Probe::Plugin {
                    handle,
                    runs: vec![dns_params(def, check)],
                    timeout: plugin_timeout,
                })
            }
            CheckerKind::Smtp(smtp) => {
                let source = stock_plugin(SMTP_PLUGIN, global);
                let handle = load(ctx, name, source, stream_grants(def)).await?;
                let mut params = vec![
                    ("address".to_owned(), socket_text(def.target)),
                    ("helo_name".to_owned(), smtp.helo_name.clone()),
                    ("timeout_ms".to_owned(), millis(timeout)),
                ];
                if let Some(bind) = def.bind {
                    params.push(("bind".to_owned(), bind.to_string()));
                }
                Ok(Probe::Plugin {
                    handle,
                    runs: vec![params],
                    timeout: timeout * SMTP_STEPS + RUN_MARGIN,
                })
            }
            CheckerKind::File(check) => Ok(Probe::File(FileProbe::new(check))),
        }
    }

    /// Run the probe once.
    pub async fn run(&self) -> Outcome {
        let started = Instant::now();
        match self {
            Probe::Plugin {
                handle,
                runs,
                timeout,
            } => {
                let mut last = None;
                for params in runs {
                    let outcome = handle.run(params, *timeout).await;
                    let (success, detail) = verdict_of(&outcome);
                    if !success {
                        let detail = match params.iter().find(|(k, _)| k == "url") {
                            Some((_, url)) if runs.len() > 1 => format!("{url}: {detail}"),
                            _ => detail,
                        };
                        return Outcome::failed(outcome.identity, detail, started.elapsed());
                    }
                    last = Some(outcome.identity);
                }
                Outcome::ok(last.unwrap_or_default(), started.elapsed())
            }
            Probe::Misc {
                program,
                timeout,
                dynamic,
            } => misc(program, *timeout, *dynamic, started).await,
            Probe::Unavailable(reason) => {
                Outcome::failed("-", format!("cannot run: {reason}"), started.elapsed())
            }
            Probe::Ping {
                target,
                bind,
                timeout,
            } => match net_probe::ping(*target, *bind, *timeout).await {
                Ok(_) => Outcome::ok("icmp", started.elapsed()),
                Err(err) => Outcome::failed("icmp", err.to_string(), started.elapsed()),
            },
            Probe::Udp {
                target,
                bind,
                check,
                timeout,
            } => match net_probe::udp(*target, *bind, check, *timeout).await {
                Ok(_) => Outcome::ok("udp", started.elapsed()),
                Err(err) => Outcome::failed("udp", err.to_string(), started.elapsed()),
            },
            Probe::File(file) => file.run(),
        }
    }

    /// Resolves when the probe should run before its schedule says so: a `FILE_CHECK`'s
    /// file changed. Never, for the others.
    pub async fn changed(&self) {
        match self {
            Probe::File(file) => file.changed().await,
            _ => std::future::pending().await,
        }
    }

    /// Stop hot reload from swapping this probe's plugin (the probe is gone).
    pub fn release(&self, registry: &PluginRegistry) {
        if let Probe::Plugin { handle, .. } = self {
            registry.release(handle);
        }
    }
}

/// A stock plugin (`tcp`, `http`), looked up by name in the plugin search path.
fn stock_plugin(name: &str, global: &GlobalDefs) -> PluginSource {
    PluginSource::Search {
        name: name.to_owned(),
        path: global.plugin_path.clone(),
    }
}

/// The parameters of the `tcp` plugin for a `TCP_CHECK` (a reset close only when asked).
fn tcp_params(def: &ProbeDef, check: &TcpCheck) -> Vec<(String, String)> {
    let mut params = vec![
        ("address".to_owned(), socket_text(def.target)),
        ("timeout_ms".to_owned(), millis(def.timing.connect_timeout)),
    ];
    if let Some(bind) = def.bind {
        params.push(("bind".to_owned(), bind.to_string()));
    }
    if check.close_with_reset {
        params.push(("close".to_owned(), "reset".to_owned()));
    }
    params
}

/// The parameters of the `dns` plugin for a `DNS_CHECK` (`qtype` by its code).
fn dns_params(def: &ProbeDef, check: &DnsCheck) -> Vec<(String, String)> {
    let mut params = vec![
        ("address".to_owned(), socket_text(def.target)),
        ("name".to_owned(), check.name.clone()),
        ("qtype".to_owned(), check.qtype.code().to_string()),
        ("timeout_ms".to_owned(), millis(def.timing.connect_timeout)),
    ];
    if let Some(bind) = def.bind {
        params.push(("bind".to_owned(), bind.to_string()));
    }
    params
}

/// The grants of a checker that talks TCP to its target (`TCP_CHECK`, `SMTP_CHECK`): connects
/// to the target only, from `bindto` if set.
pub fn stream_grants(def: &ProbeDef) -> Grants {
    Grants {
        tcp: vec![TcpGrant(socket_text(def.target))],
        source: def.bind,
        memory_limit: SOCKET_CHECKER_MEMORY_LIMIT,
        ..Grants::default()
    }
}

/// The grants of a checker that talks UDP to its target (`DNS_CHECK`): datagrams to and from
/// the target only, from `bindto` if set.
pub fn datagram_grants(def: &ProbeDef) -> Grants {
    Grants {
        udp: vec![UdpGrant(socket_text(def.target))],
        source: def.bind,
        memory_limit: SOCKET_CHECKER_MEMORY_LIMIT,
        ..Grants::default()
    }
}

/// Load a plugin for a probe on a blocking thread, registered for hot reload.
async fn load(
    ctx: &ProbeContext,
    name: &str,
    plugin: PluginSource,
    grants: Grants,
) -> Result<PluginHandle, ProbeSetupError> {
    let (runtime, registry, name2, plugin2) = (
        ctx.runtime.clone(),
        ctx.registry.clone(),
        name.to_owned(),
        plugin.clone(),
    );
    tokio::task::spawn_blocking(move || registry.load(&runtime, &name2, &plugin2, &grants))
        .await
        .map_err(|join| ProbeSetupError::Plugin {
            plugin: plugin.clone(),
            source: wasmalived_plugin_host::PluginError::Engine(format!(
                "loader task failed: {join}"
            )),
        })?
        .map_err(|source| ProbeSetupError::Plugin { plugin, source })
}

/// The grants and per-URL parameters of an `HTTP_GET`/`SSL_GET` against `target`.
pub fn http_runs(
    http: &HttpCheck,
    target: SocketAddr,
    timeout: Duration,
) -> (Grants, Vec<Vec<(String, String)>>) {
    let scheme = if http.tls.is_some() { "https" } else { "http" };
    let mut grants = Grants::default();
    let mut runs = Vec::new();
    for url in &http.urls {
        let host = match &url.virtualhost {
            Some(vhost) => {
                let host = vhost.to_ascii_lowercase();
                let pin = HttpPin {
                    host: host.clone(),
                    port: target.port(),
                    connect_to: target,
                };
                if !grants.http_pins.contains(&pin) {
                    grants.http_pins.push(pin);
                }
                host
            }
            None => match target.ip() {
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            },
        };
        let authority = format!("{host}:{}", target.port());
        let grant = HttpGrant(authority.clone());
        if !grants.http.contains(&grant) {
            grants.http.push(grant);
        }
        runs.push(url_params(scheme, &authority, url, timeout));
    }
    if let Some(tls) = &http.tls {
        grants.http_tls = HttpTls {
            verify: tls.verify,
            ca: tls.ca.clone(),
            sni: tls.sni,
        };
    }
    (grants, runs)
}

fn url_params(
    scheme: &str,
    authority: &str,
    url: &HttpUrl,
    timeout: Duration,
) -> Vec<(String, String)> {
    let path = if url.path.starts_with('/') {
        url.path.clone()
    } else {
        format!("/{}", url.path)
    };
    let status: Vec<String> = url
        .status
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    let mut params = vec![
        ("url".to_owned(), format!("{scheme}://{authority}{path}")),
        ("timeout_ms".to_owned(), millis(timeout)),
        ("expect_status".to_owned(), status.join(",")),
    ];
    if let Some(digest) = &url.digest {
        params.push(("expect_digest".to_owned(), digest.clone()));
    }
    params
}

/// `IP:PORT` with IPv6 bracketed.
fn socket_text(addr: SocketAddr) -> String {
    addr.to_string()
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

/// A plugin run's outcome as pass/fail and a reason.
fn verdict_of(outcome: &RunOutcome) -> (bool, String) {
    match &outcome.result {
        Ok(Verdict::Ok) => (true, "ok".into()),
        Ok(Verdict::Fail(reason)) | Ok(Verdict::Fatal(reason)) => (false, reason.clone()),
        Err(failure) => (false, failure.to_string()),
    }
}

/// `MISC_CHECK` (keepalived's `check_misc.c`): exit 0 passes; with `misc_dynamic`, 2–255
/// pass too and set the weight to the status − 2; anything else, a signal or the timeout
/// fails.
async fn misc(program: &Program, timeout: Duration, dynamic: bool, started: Instant) -> Outcome {
    let runner = program.label().to_string();
    match program.command().run(Some(timeout)).await {
        Ok(finished) => match finished.exit {
            wasmalived_sys::process::Exit::Code(0) => Outcome::ok(runner, started.elapsed()),
            wasmalived_sys::process::Exit::Code(code @ 2..=255) if dynamic => Outcome {
                weight: u32::try_from(code - 2).ok().map(WeightReport::Set),
                ..Outcome::ok(runner, started.elapsed())
            },
            exit => Outcome::failed(runner, exit.to_string(), started.elapsed()),
        },
        Err(RunError::TimedOut(after)) => Outcome::failed(
            runner,
            format!("timed out after {after:?}"),
            started.elapsed(),
        ),
        Err(err) => Outcome::failed(runner, err.to_string(), started.elapsed()),
    }
}

/// A `MISC_CHECK`'s script, vetted: its user, the script-security rule, a scrubbed
/// environment, and the checkers' nice value (`checker_priority`), as keepalived's checker
/// process forks it.
fn misc_program(misc: &MiscCheck, global: &GlobalDefs) -> Result<Program, ProbeSetupError> {
    let user = programs::run_as(misc.user.as_ref(), global)?;
    let program = Program::prepare(
        misc.argv.clone(),
        user,
        programs::security(global),
        Environment::Scrubbed,
    )
    .map_err(programs::ProgramSetupError::from)?;
    Ok(program.at_nice(global.checker_nice()))
}

/// A shared, immutable probe.
pub type SharedProbe = Arc<Probe>;

#[cfg(test)]
mod tests {
    use super::*;
    use wasmalived_config::lvs::TlsOptions;

    fn url(path: &str, vhost: Option<&str>, digest: Option<&str>) -> HttpUrl {
        HttpUrl {
            path: path.into(),
            digest: digest.map(str::to_owned),
            status: vec![(200, 299), (301, 301)],
            virtualhost: vhost.map(str::to_owned),
        }
    }

    #[test]
    fn http_get_requests_each_url_from_the_real_server() {
        let check = HttpCheck {
            urls: vec![
                url("/health", None, None),
                url("index.html", Some("WWW.example.com"), Some("abc")),
            ],
            tls: None,
        };
        let target: SocketAddr = "192.0.2.21:8080".parse().expect("addr");
        let (grants, runs) = http_runs(&check, target, Duration::from_secs(3));
        assert_eq!(runs[0][0].1, "http://192.0.2.21:8080/health");
        assert_eq!(runs[0][1].1, "3000");
        assert_eq!(runs[0][2].1, "200-299,301");
        assert_eq!(runs[1][0].1, "http://www.example.com:8080/index.html");
        assert!(runs[1].contains(&("expect_digest".into(), "abc".into())));
        assert_eq!(
            grants.http,
            vec![
                HttpGrant("192.0.2.21:8080".into()),
                HttpGrant("www.example.com:8080".into())
            ]
        );
        assert_eq!(
            grants.http_pins,
            vec![HttpPin {
                host: "www.example.com".into(),
                port: 8080,
                connect_to: target
            }]
        );
    }

    #[test]
    fn ssl_get_keeps_keepalived_trust_unless_told_and_brackets_ipv6() {
        let check = HttpCheck {
            urls: vec![url("/", None, None)],
            tls: Some(TlsOptions {
                sni: true,
                verify: false,
                ca: None,
            }),
        };
        let target: SocketAddr = "[2001:db8::21]:443".parse().expect("addr");
        let (grants, runs) = http_runs(&check, target, Duration::from_secs(5));
        assert_eq!(runs[0][0].1, "https://[2001:db8::21]:443/");
        assert!(!grants.http_tls.verify);
        assert_eq!(grants.http, vec![HttpGrant("[2001:db8::21]:443".into())]);
    }

    #[test]
    fn dns_check_asks_the_plugin_keepalived_s_question_from_bindto() {
        let check = DnsCheck {
            qtype: wasmalived_config::lvs::DnsType::Aaaa,
            name: "www.example.com".into(),
        };
        let def = ProbeDef {
            kind: CheckerKind::Dns(check.clone()),
            target: "[2001:db8::53]:53".parse().expect("addr"),
            bind: Some("2001:db8::5".parse().expect("ip")),
            timing: CheckerTiming {
                delay_loop: Duration::from_secs(6),
                retry: 3,
                delay_before_retry: Duration::from_secs(6),
                warmup: Duration::ZERO,
                connect_timeout: Duration::from_millis(1500),
                alpha: false,
            },
        };
        let params = dns_params(&def, &check);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("address"), Some("[2001:db8::53]:53"));
        assert_eq!(get("name"), Some("www.example.com"));
        assert_eq!(get("qtype"), Some("28"));
        assert_eq!(get("timeout_ms"), Some("1500"));
        assert_eq!(get("bind"), Some("2001:db8::5"));
        let grants = datagram_grants(&def);
        assert_eq!(grants.udp, vec![UdpGrant("[2001:db8::53]:53".into())]);
        assert!(
            grants.tcp.is_empty() && grants.http.is_empty(),
            "{grants:?}"
        );
        assert_eq!(grants.source, def.bind);
    }

    #[test]
    fn tcp_check_closes_with_a_reset_only_when_told() {
        let mut def = ProbeDef {
            kind: CheckerKind::Tcp(TcpCheck::default()),
            target: "192.0.2.21:80".parse().expect("addr"),
            bind: None,
            timing: CheckerTiming {
                delay_loop: Duration::from_secs(6),
                retry: 1,
                delay_before_retry: Duration::from_secs(1),
                warmup: Duration::ZERO,
                connect_timeout: Duration::from_millis(1500),
                alpha: false,
            },
        };
        let text = |p: Vec<(String, String)>| {
            p.into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(tcp_params(&def, &TcpCheck::default())),
            ["address=192.0.2.21:80", "timeout_ms=1500"]
        );
        def.bind = Some("192.0.2.5".parse().expect("ip"));
        let reset = TcpCheck {
            close_with_reset: true,
        };
        assert_eq!(
            text(tcp_params(&def, &reset)),
            [
                "address=192.0.2.21:80",
                "timeout_ms=1500",
                "bind=192.0.2.5",
                "close=reset"
            ]
        );
    }

    /// A vetted `sh -c SCRIPT`.
    fn sh(script: &str) -> Program {
        Program::prepare(
            vec!["/bin/sh".into(), "-c".into(), script.into()],
            None,
            wasmalived_sys::program::Security::Warn,
            Environment::Scrubbed,
        )
        .expect("vetted")
    }

    /// keepalived's checker process forks `MISC_CHECK` scripts, so they run at its
    /// `checker_priority`; here the spawning thread is a protocol thread, so the nice value is
    /// set in the child.
    #[tokio::test]
    async fn a_misc_check_script_runs_at_checker_priority() {
        let weaker = (wasmalived_sys::thread_nice(0).unwrap() + 7).min(19);
        let check = MiscCheck {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("[ \"$(nice)\" = {weaker} ]"),
            ],
            timeout: Duration::from_secs(5),
            dynamic: false,
            user: None,
        };
        let mut global = GlobalDefs::default();
        global.checker_threads.nice = Some(weaker);
        let program = misc_program(&check, &global).expect("vetted");
        let ran = misc(&program, check.timeout, false, Instant::now()).await;
        assert!(ran.success, "the script saw another nice value: {ran:?}");
        global.checker_threads.nice = Some(weaker - 1);
        let program = misc_program(&check, &global).expect("vetted");
        let ran = misc(&program, check.timeout, false, Instant::now()).await;
        assert!(!ran.success, "{ran:?}");
    }

    #[tokio::test]
    async fn misc_check_follows_keepalived_exit_codes() {
        let t = Duration::from_secs(5);
        let run = |script: &'static str, dynamic: bool| async move {
            misc(&sh(script), t, dynamic, Instant::now()).await
        };
        let ok = run("exit 0", true).await;
        assert!(ok.success && ok.weight.is_none(), "{ok:?}");
        let weighted = run("exit 5", true).await;
        assert!(
            weighted.success && weighted.weight == Some(WeightReport::Set(3)),
            "{weighted:?}"
        );
        let failed = run("exit 1", true).await;
        assert!(
            !failed.success && failed.detail.contains("status 1"),
            "{failed:?}"
        );
        let plain = run("exit 5", false).await;
        assert!(
            !plain.success,
            "without misc_dynamic 5 is a failure: {plain:?}"
        );
        let slow = misc(
            &sh("sleep 5"),
            Duration::from_millis(200),
            false,
            Instant::now(),
        )
        .await;
        assert!(
            !slow.success && slow.detail.contains("timed out"),
            "{slow:?}"
        );
    }
}

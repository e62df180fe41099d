//! keepalived's check module: `virtual_server` (with `real_server`s and their checkers) and
//! `virtual_server_group`, with keepalived's keywords, defaults and corrections
//! (`check/check_parser.c`, `check/check_data.c`: a missing scheduler is `wlc`, a missing
//! forwarding method NAT, a real server's port is the service's, a `quorum` above the total
//! weight is reduced, a `hysteresis` ≥ `quorum` is reduced — each with a warning, as
//! keepalived logs them).
//!
//! Checkers: `TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `MISC_CHECK`, `PING_CHECK`, `UDP_CHECK`,
//! `DNS_CHECK` ([`dns`]), `SMTP_CHECK` ([`smtp`]), `FILE_CHECK` ([`file`]) and wasmalived's
//! `PLUGIN_CHECK`. `BFD_CHECK` is refused with its place: wasmalived has no BFD.

mod dns;
mod file;
mod smtp;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::script::{self, Draft};
use super::track::{notify_script, run_as};
use super::unknown;
use super::values::{flag, ip, no_block, one_arg, seconds, uint};
use crate::compat;
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::lvs::{
    Checker, CheckerKind, CheckerTiming, Forwarding, GroupEntry, HttpCheck, HttpUrl, MiscCheck,
    PluginCheck, Protocol, RealServer, Scheduler, ServiceAddr, SorryServer, TcpCheck, TlsOptions,
    UdpCheck, VirtualServer, VirtualServerGroup, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DELAY_BEFORE_RETRY, DEFAULT_DELAY_LOOP, DEFAULT_HTTP_STATUS, DEFAULT_RETRY,
    DNS_DEFAULT_RETRY, HTTP_DELAY_BEFORE_RETRY,
};
use crate::model::{GlobalDefs, NotifyScript, Origin, RunAs, TrackFileDef};
use crate::parser::Node;

/// Longest `delay_loop`, `delay_before_retry`, `warmup`, timeouts accepted.
const MAX_DELAY: Duration = Duration::from_secs(86_400);
/// Largest fwmark (IPVS: 32 bits).
const MAX_FWMARK: u32 = u32::MAX;
/// Largest real-server weight (IPVS: 65535).
const MAX_WEIGHT: u32 = 65_535;

/// Checkers keepalived has that wasmalived refuses: `BFD_CHECK` follows a BFD session, and
/// wasmalived does not speak BFD.
const REFUSED: &[&str] = &["BFD_CHECK"];

/// Timing keywords a checker, real server or virtual server may set (inherited downwards).
#[derive(Debug, Default, Clone, Copy)]
struct Timing {
    delay_loop: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
    connect_timeout: Option<Duration>,
    alpha: Option<bool>,
}

impl Timing {
    /// `self` where set, else `parent`.
    fn over(self, parent: Timing) -> Timing {
        Timing {
            delay_loop: self.delay_loop.or(parent.delay_loop),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self.delay_before_retry.or(parent.delay_before_retry),
            warmup: self.warmup.or(parent.warmup),
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            alpha: self.alpha.or(parent.alpha),
        }
    }

    /// The effective timing of a checker of kind `kw` (keepalived's `check_data.c`: the
    /// checker's value, else the real server's, else the virtual server's, else the kind's
    /// default — DNS_CHECK retries 3 times `delay_loop` apart, MISC_CHECK never retries,
    /// HTTP_GET/SSL_GET wait 3 s between retries).
    fn resolve(self, kw: &str) -> CheckerTiming {
        let delay_loop = self.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
        let (default_retry, default_delay_before_retry) = match kw {
            "MISC_CHECK" => (0, DEFAULT_DELAY_BEFORE_RETRY),
            "HTTP_GET" | "SSL_GET" => (DEFAULT_RETRY, HTTP_DELAY_BEFORE_RETRY),
            "DNS_CHECK" => (DNS_DEFAULT_RETRY, delay_loop),
            _ => (DEFAULT_RETRY, DEFAULT_DELAY_BEFORE_RETRY),
        };
        CheckerTiming {
            delay_loop,
            retry: self.retry.unwrap_or(default_retry),
            delay_before_retry: self
                .delay_before_retry
                .unwrap_or(default_delay_before_retry),
            warmup: self.warmup.unwrap_or(delay_loop),
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            alpha: self.alpha.unwrap_or(false),
        }
    }

    /// Applies a timing keyword; `false` if `node` is not one.
    fn apply(&mut self, node: &Node, d: &mut Diags) -> bool {
        let secs = |node: &Node, d: &mut Diags| {
            one_arg(node, d).and_then(|w| seconds(w, &node.keyword.text, MAX_DELAY, d))
        };
        match node.keyword.text.as_str() {
            "delay_loop" => self.delay_loop = secs(node, d).or(self.delay_loop),
            "retry" | "nb_get_retry" => {
                self.retry = one_arg(node, d)
                    .and_then(|w| uint(w, &node.keyword.text, 0, u32::MAX - 1, d))
                    .or(self.retry)
            }
            "delay_before_retry" => {
                self.delay_before_retry = secs(node, d).or(self.delay_before_retry)
            }
            "warmup" => self.warmup = secs(node, d).or(self.warmup),
            "connect_timeout" => self.connect_timeout = secs(node, d).or(self.connect_timeout),
            "alpha" => self.alpha = flag(node, d).or(self.alpha),
            _ => return false,
        }
        true
    }
}

/// Builds one `virtual_server_group`; `None` if it has errors.
pub(crate) fn build_group(node: &Node, d: &mut Diags) -> Option<VirtualServerGroup> {
    let name = super::section_name(node, d)?;
    let body = node.block.as_ref()?;
    let mut entries = Vec::new();
    for line in &body.nodes {
        no_block(line, d);
        let words: Vec<&Word> = std::iter::once(&line.keyword).chain(&line.args).collect();
        match words.as_slice() {
            [kw, mark] if kw.text == "fwmark" => {
                if let Some(m) = uint(mark, "fwmark", 0, MAX_FWMARK, d) {
                    entries.push(GroupEntry::Fwmark(m));
                }
            }
            [addr, port] => {
                if let (Some((first, last)), Some(port)) =
                    (ip_range(addr, d), service_port(port, d))
                {
                    entries.push(GroupEntry::Addrs { first, last, port });
                }
            }
            [addr] => {
                if let Some((first, last)) = ip_range(addr, d) {
                    entries.push(GroupEntry::Addrs {
                        first,
                        last,
                        port: 0,
                    });
                }
            }
            _ => d.error(
                line.span(),
                "a virtual_server_group entry is IP[-LAST] [PORT] or fwmark N",
            ),
        }
    }
    if entries.is_empty() {
        d.warn(
            node.span(),
            format!("virtual_server_group {name} has no entries"),
        );
    }
    Some(VirtualServerGroup {
        name: name.to_owned(),
        entries,
    })
}

/// `IP` or keepalived's range `IP-LAST` (LAST replaces the last octet, or the last group).
fn ip_range(word: &Word, d: &mut Diags) -> Option<(IpAddr, IpAddr)> {
    let Some((first, last)) = word.text.split_once('-') else {
        let a = ip(word, "virtual_server_group address", d)?;
        return Some((a, a));
    };
    let bad = |d: &mut Diags| {
        d.error(
            &word.span,
            format!(
                "bad address range '{}': expected IP-LAST (LAST replaces the last octet or group)",
                word.text
            ),
        );
        None
    };
    let Ok(start) = first.parse::<IpAddr>() else {
        return bad(d);
    };
    let end = match start {
        IpAddr::V4(a) => match last.parse::<u8>() {
            Ok(n) if n >= a.octets()[3] => {
                let mut o = a.octets();
                o[3] = n;
                IpAddr::from(o)
            }
            _ => return bad(d),
        },
        IpAddr::V6(a) => match u16::from_str_radix(last, 16) {
            Ok(n) if n >= a.segments()[7] => {
                let mut s = a.segments();
                s[7] = n;
                IpAddr::from(s)
            }
            _ => return bad(d),
        },
    };
    Some((start, end))
}

fn service_port(word: &Word, d: &mut Diags) -> Option<u16> {
    uint(word, "port", 0, 65_535, d).and_then(|p| u16::try_from(p).ok())
}

/// Builds one `virtual_server`; `None` if it has errors. `track_files` are the `track_file`
/// blocks written before it (keepalived resolves a `FILE_CHECK` when it reads it).
pub(crate) fn build(
    node: &Node,
    global: &GlobalDefs,
    track_files: &[TrackFileDef],
    d: &mut Diags,
) -> Option<VirtualServer> {
    let addr = service_addr(node, d)?;
    let Some(body) = &node.block else {
        d.error(node.span(), "virtual_server needs a block { … }");
        return None;
    };
    let errors_before = d.error_count();
    let origin = Origin(node.span().clone());
    let base = node
        .span()
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut timing = Timing::default();
    let mut vs = VsDraft::default();
    let mut real_nodes = Vec::new();
    for child in &body.nodes {
        if timing.apply(child, d) {
            continue;
        }
        match child.keyword.text.as_str() {
            "real_server" => real_nodes.push(child),
            kw => vs.apply(kw, child, d),
        }
    }
    let label = format!("virtual_server {addr}");
    let scheduler = vs.scheduler.take().unwrap_or_else(|| {
        d.warn(
            node.span(),
            format!("{label}: no lb_algo set, using keepalived's default wlc"),
        );
        (Scheduler::Wlc, origin.clone())
    });
    let forwarding = vs
        .forwarding
        .take()
        .unwrap_or((Forwarding::Nat, origin.clone()));
    let vs_weight = vs.weight.unwrap_or(1);
    let mut real_servers: Vec<RealServer> = Vec::new();
    for rs_node in real_nodes {
        let Some(rs) = real_server(
            rs_node,
            &addr,
            forwarding.0,
            vs_weight,
            vs.inhibit,
            timing,
            vs.virtualhost.as_deref(),
            &base,
            global,
            track_files,
            d,
        ) else {
            continue;
        };
        if real_servers.iter().any(|r| r.addr == rs.addr) {
            d.warn(
                rs_node.span(),
                format!(
                    "{label}: real server {} is duplicated; the second one is removed",
                    rs.addr
                ),
            );
            continue;
        }
        if let ServiceAddr::Socket(s) = &addr {
            if s.is_ipv4() != rs.addr.is_ipv4() && forwarding.0 != Forwarding::Tun {
                d.error(
                    rs_node.span(),
                    format!(
                        "{label}: real server {} is not of the virtual server's address family",
                        rs.addr
                    ),
                );
                continue;
            }
        }
        real_servers.push(rs);
    }
    let total: u64 = real_servers.iter().map(|r| u64::from(r.weight)).sum();
    let mut quorum = vs.quorum.unwrap_or(1);
    if u64::from(quorum) > total {
        let reduced = u32::try_from(total).unwrap_or(u32::MAX);
        d.warn(
            vs.quorum_at.as_ref().unwrap_or(node.span()),
            format!("{label}: quorum {quorum} exceeds the total weight of the real servers {total}; reducing quorum to {reduced}"),
        );
        quorum = reduced;
    }
    let mut hysteresis = vs.hysteresis.unwrap_or(0);
    if hysteresis >= quorum && hysteresis > 0 {
        let reduced = quorum.saturating_sub(1);
        d.warn(
            vs.hysteresis_at.as_ref().unwrap_or(node.span()),
            format!("{label}: hysteresis {hysteresis} >= quorum {quorum}; setting hysteresis to {reduced}"),
        );
        hysteresis = reduced;
    }
    let sorry_server = vs.sorry.map(|(sorry, at)| SorryServer {
        addr: with_service_port(sorry, &addr_port(&addr), forwarding.0, &at, &label, d),
        inhibit: vs.sorry_inhibit,
    });
    if let (ServiceAddr::Fwmark(_), Some(protocol)) = (&addr, vs.protocol) {
        d.warn(
            node.span(),
            format!(
                "{label}: keepalived ignores `protocol` for a fwmark service (IPVS forwards every protocol with the mark); wasmalived forwards only {} traffic with this mark",
                protocol.name()
            ),
        );
    }
    if d.error_count() > errors_before {
        return None;
    }
    Some(VirtualServer {
        addr,
        protocol: vs.protocol.unwrap_or_default(),
        scheduler: scheduler.0,
        scheduler_at: scheduler.1,
        forwarding: forwarding.0,
        forwarding_at: forwarding.1,
        persistence_timeout: vs.persistence_timeout,
        persistence_granularity: vs.persistence_granularity,
        sorry_server,
        quorum,
        hysteresis,
        quorum_up: vs.quorum_up,
        quorum_down: vs.quorum_down,
        omega: vs.omega,
        ha_suspend: vs.ha_suspend,
        smtp_alert: vs.smtp_alert,
        real_servers,
        origin,
    })
}

/// The port of a service address, for real servers that give none (0 for fwmark/group).
fn addr_port(addr: &ServiceAddr) -> u16 {
    match addr {
        ServiceAddr::Socket(s) => s.port(),
        ServiceAddr::Fwmark(_) | ServiceAddr::Group(_) => 0,
    }
}

/// keepalived's port rule for real and sorry servers: with NAT a missing port is the
/// service's; with DR/TUN the port is always the service's (a different one is reset, with
/// a warning).
fn with_service_port(
    addr: SocketAddr,
    service_port: &u16,
    forwarding: Forwarding,
    at: &Span,
    label: &str,
    d: &mut Diags,
) -> SocketAddr {
    let mut addr = addr;
    if addr.port() == 0 {
        addr.set_port(*service_port);
    } else if forwarding != Forwarding::Nat && *service_port != 0 && addr.port() != *service_port {
        d.warn(
            at,
            format!(
                "{label}: with {} the real server's port must be the service's; {} reset to {}",
                forwarding.name(),
                addr,
                service_port
            ),
        );
        addr.set_port(*service_port);
    }
    addr
}

/// `virtual_server IP PORT` | `fwmark N` | `group NAME`.
fn service_addr(node: &Node, d: &mut Diags) -> Option<ServiceAddr> {
    match node.args.as_slice() {
        [kw, mark] if kw.text == "fwmark" => {
            uint(mark, "fwmark", 0, MAX_FWMARK, d).map(ServiceAddr::Fwmark)
        }
        [kw, name] if kw.text == "group" => Some(ServiceAddr::Group(name.text.clone())),
        [addr, port] => {
            let a = ip(addr, "virtual server address", d)?;
            let p = service_port(port, d)?;
            Some(ServiceAddr::Socket(SocketAddr::new(a, p)))
        }
        [addr] => {
            let a = ip(addr, "virtual server address", d)?;
            Some(ServiceAddr::Socket(SocketAddr::new(a, 0)))
        }
        _ => {
            d.error(
                node.span(),
                "virtual_server takes IP PORT, fwmark N or group NAME",
            );
            None
        }
    }
}

/// What a `virtual_server` block set, besides timing and real servers.
#[derive(Default)]
struct VsDraft {
    protocol: Option<Protocol>,
    scheduler: Option<(Scheduler, Origin)>,
    forwarding: Option<(Forwarding, Origin)>,
    persistence_timeout: Option<Duration>,
    persistence_granularity: Option<u8>,
    sorry: Option<(SocketAddr, Span)>,
    sorry_inhibit: bool,
    quorum: Option<u32>,
    quorum_at: Option<Span>,
    hysteresis: Option<u32>,
    hysteresis_at: Option<Span>,
    quorum_up: Option<NotifyScript>,
    quorum_down: Option<NotifyScript>,
    omega: bool,
    ha_suspend: bool,
    smtp_alert: Option<bool>,
    inhibit: bool,
    weight: Option<u32>,
    virtualhost: Option<String>,
}

impl VsDraft {
    fn apply(&mut self, kw: &str, node: &Node, d: &mut Diags) {
        match kw {
            "protocol" => {
                if let Some(w) = one_arg(node, d) {
                    self.protocol = match w.text.to_ascii_uppercase().as_str() {
                        "TCP" => Some(Protocol::Tcp),
                        "UDP" => Some(Protocol::Udp),
                        "SCTP" => Some(Protocol::Sctp),
                        _ => {
                            d.error(
                                &w.span,
                                format!("bad protocol '{}': expected TCP, UDP or SCTP", w.text),
                            );
                            self.protocol
                        }
                    }
                }
            }
            "lb_algo" | "lvs_sched" => {
                if let Some(w) = one_arg(node, d) {
                    match Scheduler::from_name(&w.text) {
                        Some(s) => self.scheduler = Some((s, Origin(w.span.clone()))),
                        None => d.error(&w.span, format!("unknown scheduler '{}': expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos", w.text)),
                    }
                }
            }
            "lb_kind" | "lvs_method" => {
                if let Some(w) = one_arg(node, d) {
                    match forwarding(&w.text) {
                        Some(f) => self.forwarding = Some((f, Origin(w.span.clone()))),
                        None => d.error(
                            &w.span,
                            format!("bad {kw} '{}': expected NAT, DR or TUN", w.text),
                        ),
                    }
                }
            }
            "persistence_timeout" => {
                self.persistence_timeout = match node.args.as_slice() {
                    // keepalived: a bare `persistence_timeout` means 6 minutes.
                    [] => Some(Duration::from_secs(360)),
                    [w] => uint(w, "persistence_timeout", 1, 2_678_400, d)
                        .map(|s| Duration::from_secs(u64::from(s))),
                    [_, extra, ..] => {
                        d.error(&extra.span, "persistence_timeout takes one value");
                        None
                    }
                }
            }
            "persistence_granularity" => {
                if let Some(w) = one_arg(node, d) {
                    self.persistence_granularity = granularity(w, d);
                }
            }
            "sorry_server" => {
                no_block(node, d);
                match node.args.as_slice() {
                    [a, p] => {
                        if let (Some(a), Some(p)) =
                            (ip(a, "sorry server address", d), service_port(p, d))
                        {
                            self.sorry = Some((SocketAddr::new(a, p), node.span().clone()));
                        }
                    }
                    [a] => {
                        if let Some(a) = ip(a, "sorry server address", d) {
                            self.sorry = Some((SocketAddr::new(a, 0), node.span().clone()));
                        }
                    }
                    _ => d.error(node.span(), "sorry_server takes IP [PORT]"),
                }
            }
            "sorry_server_inhibit" => {
                self.sorry_inhibit = flag(node, d).unwrap_or(self.sorry_inhibit)
            }
            "quorum" => {
                self.quorum = one_arg(node, d)
                    .and_then(|w| uint(w, "quorum", 1, u32::MAX, d))
                    .or(self.quorum);
                self.quorum_at = Some(node.span().clone());
            }
            "hysteresis" => {
                self.hysteresis = one_arg(node, d)
                    .and_then(|w| uint(w, "hysteresis", 0, u32::MAX, d))
                    .or(self.hysteresis);
                self.hysteresis_at = Some(node.span().clone());
            }
            "quorum_up" => self.quorum_up = notify_script(node, d).or(self.quorum_up.take()),
            "quorum_down" => self.quorum_down = notify_script(node, d).or(self.quorum_down.take()),
            "omega" => self.omega = flag(node, d).unwrap_or(self.omega),
            "ha_suspend" => self.ha_suspend = flag(node, d).unwrap_or(self.ha_suspend),
            "smtp_alert" => self.smtp_alert = compat::boolean(node, d).or(self.smtp_alert),
            "inhibit_on_failure" => self.inhibit = flag(node, d).unwrap_or(self.inhibit),
            "weight" => {
                self.weight = one_arg(node, d)
                    .and_then(|w| uint(w, "weight", 0, MAX_WEIGHT, d))
                    .or(self.weight)
            }
            "virtualhost" => {
                self.virtualhost = one_arg(node, d)
                    .map(|w| w.text.clone())
                    .or(self.virtualhost.take())
            }
            // Accepted and without effect here (IPVS flags, SNMP, family hints).
            "ip_family"
            | "hashed"
            | "ops"
            | "flag-1"
            | "flag-2"
            | "flag-3"
            | "sh-port"
            | "sh-fallback"
            | "mh-port"
            | "mh-fallback"
            | "persistence_engine"
            | "snmp_name"
            | "sorry_server_lvs_method" => {
                d.warn(
                    node.span(),
                    format!("{kw} has no effect in wasmalived; ignored"),
                );
            }
            _ => unknown(node, "virtual_server", d),
        }
    }
}

fn forwarding(text: &str) -> Option<Forwarding> {
    match text.to_ascii_uppercase().as_str() {
        "NAT" => Some(Forwarding::Nat),
        "DR" => Some(Forwarding::Dr),
        "TUN" => Some(Forwarding::Tun),
        _ => None,
    }
}

/// `persistence_granularity`: an IPv4 netmask (`255.255.255.0`) or an IPv6 prefix length.
fn granularity(w: &Word, d: &mut Diags) -> Option<u8> {
    if let Ok(std::net::IpAddr::V4(mask)) = w.text.parse::<IpAddr>() {
        let bits = u32::from(mask);
        let len = bits.leading_ones();
        if bits.checked_shl(len).unwrap_or(0) == 0 {
            return u8::try_from(len).ok();
        }
    } else if let Ok(len) = w.text.parse::<u8>() {
        if len <= 128 {
            return Some(len);
        }
    }
    d.error(
        &w.span,
        format!(
            "bad persistence_granularity '{}': expected an IPv4 netmask or an IPv6 prefix length",
            w.text
        ),
    );
    None
}

/// One `real_server IP [PORT] { … }`.
#[allow(clippy::too_many_arguments)]
fn real_server(
    node: &Node,
    service: &ServiceAddr,
    forwarding_method: Forwarding,
    vs_weight: u32,
    vs_inhibit: bool,
    vs_timing: Timing,
    vs_virtualhost: Option<&str>,
    base: &Path,
    global: &GlobalDefs,
    track_files: &[TrackFileDef],
    d: &mut Diags,
) -> Option<RealServer> {
    let label = format!(
        "real_server {}",
        node.args.first().map_or("", |w| w.text.as_str())
    );
    let addr = match node.args.as_slice() {
        [a, p] => SocketAddr::new(ip(a, "real server address", d)?, service_port(p, d)?),
        [a] => SocketAddr::new(ip(a, "real server address", d)?, 0),
        _ => {
            d.error(node.span(), "real_server takes IP [PORT]");
            return None;
        }
    };
    let addr = with_service_port(
        addr,
        &addr_port(service),
        forwarding_method,
        node.span(),
        &format!("virtual_server {service}"),
        d,
    );
    let mut timing = Timing::default();
    let mut weight = None;
    let mut inhibit = None;
    let mut notify_up = None;
    let mut notify_down = None;
    let mut smtp_alert = None;
    let mut virtualhost = vs_virtualhost.map(str::to_owned);
    let mut checker_nodes = Vec::new();
    if let Some(body) = &node.block {
        for child in &body.nodes {
            if timing.apply(child, d) {
                continue;
            }
            match child.keyword.text.as_str() {
                "weight" => {
                    weight = one_arg(child, d).and_then(|w| uint(w, "weight", 0, MAX_WEIGHT, d))
                }
                "inhibit_on_failure" => inhibit = flag(child, d),
                "notify_up" => notify_up = notify_script(child, d),
                "notify_down" => notify_down = notify_script(child, d),
                "smtp_alert" => smtp_alert = compat::boolean(child, d).or(smtp_alert),
                "virtualhost" => virtualhost = one_arg(child, d).map(|w| w.text.clone()),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "PING_CHECK"
                | "UDP_CHECK" | "DNS_CHECK" | "SMTP_CHECK" | "FILE_CHECK" | "PLUGIN_CHECK" => {
                    checker_nodes.push(child)
                }
                kw if REFUSED.contains(&kw) => d.error(
                    child.span(),
                    format!("{kw} is not supported: wasmalived has no BFD; remove it or use another checker"),
                ),
                "lvs_method" | "uthreshold" | "lthreshold" | "snmp_name" => {
                    d.warn(child.span(), format!("{} has no effect in wasmalived; ignored", child.keyword.text));
                }
                _ => unknown(child, "real_server", d),
            }
        }
    }
    let timing = timing.over(vs_timing);
    let checkers = checker_nodes
        .into_iter()
        .flat_map(|c| match c.keyword.text.as_str() {
            "FILE_CHECK" => file::build(c, addr, timing, track_files, d)
                .into_iter()
                .collect(),
            "SMTP_CHECK" => smtp::build(c, addr, timing, d),
            _ => checker(c, addr, timing, virtualhost.as_deref(), base, global, d)
                .into_iter()
                .collect::<Vec<_>>(),
        })
        .collect::<Vec<_>>();
    if checkers.is_empty() {
        d.warn(
            node.span(),
            format!("{label}: no checker; the real server is always up"),
        );
    }
    Some(RealServer {
        addr,
        weight: weight.unwrap_or(vs_weight),
        inhibit_on_failure: inhibit.unwrap_or(vs_inhibit),
        alpha: timing.alpha.unwrap_or(false),
        notify_up,
        notify_down,
        smtp_alert,
        checkers,
        origin: Origin(node.span().clone()),
    })
}

/// Connection keywords common to the network checkers.
#[derive(Default)]
struct Connection {
    ip: Option<IpAddr>,
    port: Option<u16>,
    bind: Option<IpAddr>,
    /// Any connection keyword was written (SMTP_CHECK's rule for its own checker).
    touched: bool,
}

impl Connection {
    fn apply(&mut self, node: &Node, d: &mut Diags) -> bool {
        match node.keyword.text.as_str() {
            "connect_ip" => self.ip = one_arg(node, d).and_then(|w| ip(w, "connect_ip", d)),
            "connect_port" => self.port = one_arg(node, d).and_then(|w| service_port(w, d)),
            "bindto" => self.bind = one_arg(node, d).and_then(|w| ip(w, "bindto", d)),
            "bind_port" | "bind_if" | "fwmark" | "log_all_failures" => {
                d.warn(
                    node.span(),
                    format!("{} has no effect in wasmalived; ignored", node.keyword.text),
                );
            }
            _ => return false,
        }
        self.touched = true;
        true
    }

    fn target(&self, rs: SocketAddr) -> SocketAddr {
        SocketAddr::new(self.ip.unwrap_or(rs.ip()), self.port.unwrap_or(rs.port()))
    }
}

/// One checker block.
fn checker(
    node: &Node,
    rs: SocketAddr,
    rs_timing: Timing,
    virtualhost: Option<&str>,
    base: &Path,
    global: &GlobalDefs,
    d: &mut Diags,
) -> Option<Checker> {
    let kw = node.keyword.text.as_str();
    let errors_before = d.error_count();
    if !node.args.is_empty() {
        d.error(
            &node.args[0].span,
            format!("{kw} takes no value, only a block"),
        );
    }
    let lines: &[Node] = node.block.as_ref().map_or(&[], |b| b.nodes.as_slice());
    let mut timing = Timing::default();
    let mut conn = Connection::default();
    let mut kind_lines = Vec::new();
    for line in lines {
        if timing.apply(line, d) || conn.apply(line, d) {
            continue;
        }
        kind_lines.push(line);
    }
    let resolved = timing.over(rs_timing).resolve(kw);
    let delay_loop = resolved.delay_loop;
    let kind = match kw {
        "TCP_CHECK" => tcp(&kind_lines, d),
        "PING_CHECK" => {
            no_more(&kind_lines, kw, d);
            CheckerKind::Ping
        }
        "HTTP_GET" | "SSL_GET" => http(node, &kind_lines, virtualhost, d)?,
        "MISC_CHECK" => misc(node, &kind_lines, delay_loop, d)?,
        "UDP_CHECK" => udp(&kind_lines, d)?,
        "DNS_CHECK" => dns::kind(&kind_lines, d)?,
        "PLUGIN_CHECK" => plugin(node, &kind_lines, base, global, d)?,
        _ => return None,
    };
    if d.error_count() > errors_before {
        return None;
    }
    Some(Checker {
        kind,
        target: conn.target(rs),
        bind: conn.bind,
        timing: resolved,
        origin: Origin(node.span().clone()),
    })
}

/// `TCP_CHECK`'s own keyword (the connection and timing ones are taken before).
fn tcp(lines: &[&Node], d: &mut Diags) -> CheckerKind {
    let mut check = TcpCheck::default();
    for line in lines {
        match line.keyword.text.as_str() {
            "close_with_reset" => {
                check.close_with_reset = flag(line, d).unwrap_or(check.close_with_reset)
            }
            _ => unknown(line, "TCP_CHECK", d),
        }
    }
    CheckerKind::Tcp(check)
}

fn no_more(lines: &[&Node], kw: &str, d: &mut Diags) {
    for line in lines {
        unknown(line, kw, d);
    }
}

fn http(
    node: &Node,
    lines: &[&Node],
    rs_virtualhost: Option<&str>,
    d: &mut Diags,
) -> Option<CheckerKind> {
    let kw = node.keyword.text.as_str();
    let mut urls = Vec::new();
    let mut virtualhost = rs_virtualhost.map(str::to_owned);
    let mut tls = (kw == "SSL_GET").then_some(TlsOptions {
        sni: false,
        verify: false,
        ca: None,
    });
    let mut url_nodes = Vec::new();
    for line in lines {
        match line.keyword.text.as_str() {
            "url" => url_nodes.push(*line),
            "virtualhost" => virtualhost = one_arg(line, d).map(|w| w.text.clone()),
            "enable_sni" => {
                let on = flag(line, d).unwrap_or(true);
                match tls.as_mut() {
                    Some(t) => t.sni = on,
                    None => d.warn(line.span(), "enable_sni only applies to SSL_GET; ignored"),
                }
            }
            "tls_verify" => {
                no_block(line, d);
                match tls.as_mut() {
                    Some(t) => {
                        t.verify = true;
                        t.ca = line.args.first().map(|w| w.text.clone().into());
                    }
                    None => d.error(line.span(), "tls_verify only applies to SSL_GET"),
                }
            }
            "http_protocol" | "fast_recovery" => {
                d.warn(
                    line.span(),
                    format!("{} has no effect in wasmalived; ignored", line.keyword.text),
                );
            }
            _ => unknown(line, kw, d),
        }
    }
    for url in url_nodes {
        let Some(body) = &url.block else {
            d.error(url.span(), "url needs a block { path … }");
            continue;
        };
        let mut path = None;
        let mut digest = None;
        let mut status = Vec::new();
        let mut url_vhost = None;
        for line in &body.nodes {
            match line.keyword.text.as_str() {
                "path" => path = one_arg(line, d).map(|w| w.text.clone()),
                "digest" => {
                    if let Some(w) = one_arg(line, d) {
                        let hex = w.text.to_ascii_lowercase();
                        if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                            digest = Some(hex);
                        } else {
                            d.error(&w.span, format!("bad digest '{}': expected the MD5 of the body as 32 hex digits", w.text));
                        }
                    }
                }
                "status_code" => {
                    no_block(line, d);
                    for w in &line.args {
                        match status_range(&w.text) {
                            Some(r) => status.push(r),
                            // keepalived reports and skips a bad code.
                            None => d.warn(&w.span, format!("invalid HTTP_GET status code '{}'; ignored", w.text)),
                        }
                    }
                }
                "virtualhost" => url_vhost = one_arg(line, d).map(|w| w.text.clone()),
                "regex" | "regex_no_match" | "regex_options" | "regex_min_offset"
                | "regex_max_offset" | "regex_stack" => d.error(
                    line.span(),
                    format!("{} is not implemented in wasmalived; use a digest, a status_code or a PLUGIN_CHECK", line.keyword.text),
                ),
                _ => unknown(line, "url", d),
            }
        }
        let Some(path) = path else {
            // keepalived: "HTTP/SSL_GET checker url has no path - ignoring".
            d.warn(url.span(), "url has no path; ignored");
            continue;
        };
        if status.is_empty() {
            status.push(DEFAULT_HTTP_STATUS);
        }
        urls.push(HttpUrl {
            path,
            digest,
            status,
            virtualhost: url_vhost.or_else(|| virtualhost.clone()),
        });
    }
    if urls.is_empty() {
        d.error(
            node.span(),
            format!("{kw} needs at least one url {{ path … }}"),
        );
        return None;
    }
    Some(CheckerKind::Http(HttpCheck { urls, tls }))
}

/// `CODE` or `LOW-HIGH` in 100..=599.
fn status_range(text: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
        None => {
            let c = text.parse().ok()?;
            (c, c)
        }
    };
    ((100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi).then_some((lo, hi))
}

fn misc(node: &Node, lines: &[&Node], delay_loop: Duration, d: &mut Diags) -> Option<CheckerKind> {
    let mut argv = None;
    let mut timeout = None;
    let mut dynamic = false;
    let mut user: Option<RunAs> = None;
    for line in lines {
        match line.keyword.text.as_str() {
            "misc_path" => {
                no_block(line, d);
                argv = super::values::command(line, &line.args, d);
            }
            "misc_timeout" => {
                timeout = one_arg(line, d)
                    .and_then(|w| uint(w, "misc_timeout", 0, 86_400, d))
                    .map(|s| Duration::from_secs(u64::from(s)))
            }
            "misc_dynamic" => dynamic = flag(line, d).unwrap_or(true),
            "user" => user = run_as(line, &line.args, d),
            _ => unknown(line, "MISC_CHECK", d),
        }
    }
    let Some(argv) = argv else {
        d.error(node.span(), "MISC_CHECK needs a misc_path");
        return None;
    };
    Some(CheckerKind::Misc(MiscCheck {
        argv,
        timeout: timeout.filter(|t| !t.is_zero()).unwrap_or(delay_loop),
        dynamic,
        user,
    }))
}

fn udp(lines: &[&Node], d: &mut Diags) -> Option<CheckerKind> {
    let mut check = UdpCheck {
        payload: Vec::new(),
        require_reply: None,
        require_reply_mask: Vec::new(),
        min_reply_length: 0,
        max_reply_length: None,
    };
    for line in lines {
        match line.keyword.text.as_str() {
            "payload" => {
                let Some(first) = line.args.first() else {
                    d.error(&line.keyword.span, "UDP_CHECK payload requires a payload");
                    continue;
                };
                check.payload = hex_string(first, &line.args, Wildcards::Refused, d)?.bytes;
            }
            "require_reply" => {
                no_block(line, d);
                let hex = match line.args.first() {
                    Some(first) => hex_string(first, &line.args, Wildcards::Allowed, d)?,
                    None => HexString::default(),
                };
                check.require_reply = Some(hex.bytes);
                check.require_reply_mask = hex.mask;
            }
            "min_reply_length" => {
                check.min_reply_length = one_arg(line, d)
                    .and_then(|w| uint(w, "min_reply_length", 0, 65_535, d))
                    .map_or(0, |n| n as usize)
            }
            "max_reply_length" => {
                check.max_reply_length = one_arg(line, d)
                    .and_then(|w| uint(w, "max_reply_length", 0, 65_535, d))
                    .map(|n| n as usize)
            }
            _ => unknown(line, "UDP_CHECK", d),
        }
    }
    Some(CheckerKind::Udp(check))
}

/// Whether a hex string may hold `X` wildcard nibbles (`require_reply` only, as keepalived).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wildcards {
    Allowed,
    Refused,
}

/// Bytes from a hex string, with the nibbles that are wildcards.
#[derive(Default)]
struct HexString {
    bytes: Vec<u8>,
    /// Empty without wildcards.
    mask: Vec<u8>,
}

/// A hex string as keepalived reads one (`read_hex_str`): the words of the line after the
/// keyword, joined with spaces; spaces between octets are skipped; an octet is two hex
/// digits, or one digit before a space or the end (its value, `5` = 0x05); with
/// [`Wildcards::Allowed`] an `X` (or `x`) is a nibble that matches anything.
fn hex_string(
    first: &Word,
    words: &[Word],
    wildcards: Wildcards,
    d: &mut Diags,
) -> Option<HexString> {
    let text = words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    match parse_hex(&text, wildcards) {
        Some(hex) => Some(hex),
        None => {
            d.error(&first.span, format!("bad hex string '{text}'"));
            None
        }
    }
}

/// One nibble: its value and whether it is a wildcard; `None` for anything else.
fn nibble(c: char, wildcards: Wildcards) -> Option<(u8, bool)> {
    match c {
        'X' | 'x' if wildcards == Wildcards::Allowed => Some((0, true)),
        c => c.to_digit(16).map(|v| (v as u8, false)),
    }
}

fn parse_hex(text: &str, wildcards: Wildcards) -> Option<HexString> {
    let mut chars = text.chars().peekable();
    let mut hex = HexString::default();
    let mut masks = Vec::new();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let Some(c) = chars.next() else { break };
        let (mut value, wild) = nibble(c, wildcards)?;
        let mut mask = if wild { 0x0f } else { 0 };
        if let Some(&c) = chars.peek().filter(|c| **c != ' ' && **c != '\t') {
            chars.next();
            let (low, wild) = nibble(c, wildcards)?;
            value = value << 4 | low;
            mask = mask << 4 | if wild { 0x0f } else { 0 };
        }
        hex.bytes.push(value);
        masks.push(mask);
    }
    if hex.bytes.is_empty() {
        return None;
    }
    if masks.iter().any(|m| *m != 0) {
        hex.mask = masks;
    }
    Some(hex)
}

fn plugin(
    node: &Node,
    lines: &[&Node],
    base: &Path,
    global: &GlobalDefs,
    d: &mut Diags,
) -> Option<CheckerKind> {
    let mut draft = Draft::default();
    for line in lines {
        if script::is_plugin_keyword(&line.keyword.text) {
            script::apply(&mut draft, line, base, d);
        } else {
            unknown(line, "PLUGIN_CHECK", d);
        }
    }
    let Some((_, plugin)) = draft.plugin else {
        d.error(node.span(), "PLUGIN_CHECK needs a plugin NAME");
        return None;
    };
    let mut grants = draft.grants;
    grants.memory_limit = draft.memory_limit.unwrap_or(global.plugin_memory_limit);
    Some(CheckerKind::Plugin(PluginCheck {
        plugin,
        params: draft.params,
        grants,
    }))
}

/// Checks done across all virtual servers: a `group` names a defined group.
pub(crate) fn check_groups(
    servers: &[VirtualServer],
    groups: &[VirtualServerGroup],
    d: &mut Diags,
) {
    for vs in servers {
        if let ServiceAddr::Group(name) = &vs.addr {
            if !groups.iter().any(|g| &g.name == name) {
                d.error(
                    &vs.origin.0,
                    format!(
                        "virtual_server group {name}: no virtual_server_group {name} is defined"
                    ),
                );
            }
        }
    }
}

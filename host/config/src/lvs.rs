//! keepalived's check module configuration, typed: `virtual_server` (with its `real_server`s
//! and their checkers) and `virtual_server_group`. Keywords and defaults are keepalived's
//! (`keepalived.conf(5)`, `check/check_parser.c`, `check/check_data.c`), resolved here once:
//! every value downstream is the effective one (a real server's `retry` is the checker's,
//! else the real server's, else the virtual server's, else the checker kind's default).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::grants::Grants;
use crate::model::{NotifyScript, Origin, PluginRef, RunAs};

/// keepalived's `delay_loop` default.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's checker `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// keepalived's default `retry` of a checker (MISC_CHECK: 0).
pub const DEFAULT_RETRY: u32 = 1;
/// keepalived's default `delay_before_retry` of a checker (HTTP_GET/SSL_GET: 3 s).
pub const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// HTTP_GET / SSL_GET's `delay_before_retry` default.
pub const HTTP_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(3);
/// Statuses an HTTP_GET url accepts by default (keepalived: 200–299).
pub const DEFAULT_HTTP_STATUS: (u16, u16) = (200, 299);
/// DNS_CHECK's `retry` default (keepalived's `DNS_DEFAULT_RETRY`); its `delay_before_retry`
/// defaults to its `delay_loop`.
pub const DNS_DEFAULT_RETRY: u32 = 3;
/// SMTP_CHECK's `helo_name` default (keepalived's `SMTP_DEFAULT_HELO`).
pub const SMTP_DEFAULT_HELO: &str = "smtpchecker.keepalived.org";

/// A virtual service: what clients address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceAddr {
    /// `virtual_server IP PORT` (port 0 = all ports, as keepalived allows).
    Socket(SocketAddr),
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`: the entries of a `virtual_server_group`.
    Group(String),
}

impl std::fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceAddr::Socket(s) => write!(f, "{s}"),
            ServiceAddr::Fwmark(m) => write!(f, "fwmark {m}"),
            ServiceAddr::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// TCP (default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (IPVS only).
    Sctp,
}

impl Protocol {
    /// `tcp`, `udp`, `sctp`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// `lb_algo` / `lvs_sched`: IPVS's schedulers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (keepalived's default).
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// LBLC with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Maglev hashing.
    Mh,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Weighted round-robin of two random choices.
    Twos,
}

impl Scheduler {
    /// Every scheduler with its keepalived name.
    pub const ALL: [(Scheduler, &'static str); 14] = [
        (Scheduler::Rr, "rr"),
        (Scheduler::Wrr, "wrr"),
        (Scheduler::Lc, "lc"),
        (Scheduler::Wlc, "wlc"),
        (Scheduler::Lblc, "lblc"),
        (Scheduler::Lblcr, "lblcr"),
        (Scheduler::Dh, "dh"),
        (Scheduler::Sh, "sh"),
        (Scheduler::Sed, "sed"),
        (Scheduler::Nq, "nq"),
        (Scheduler::Mh, "mh"),
        (Scheduler::Fo, "fo"),
        (Scheduler::Ovf, "ovf"),
        (Scheduler::Twos, "twos"),
    ];

    /// The keepalived/ipvsadm name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, n)| n)
    }

    /// Parse a keepalived name.
    pub fn from_name(name: &str) -> Option<Scheduler> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }
}

/// `lb_kind` / `lvs_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Forwarding {
    /// NAT (keepalived's default): the director rewrites the destination.
    #[default]
    Nat,
    /// Direct routing: the director rewrites the destination MAC; real servers hold the
    /// VIP on a loopback and answer clients directly.
    Dr,
    /// IP-in-IP tunnelling (IPVS only).
    Tun,
}

impl Forwarding {
    /// `NAT`, `DR`, `TUN`.
    pub fn name(self) -> &'static str {
        match self {
            Forwarding::Nat => "NAT",
            Forwarding::Dr => "DR",
            Forwarding::Tun => "TUN",
        }
    }
}

/// `global_defs { lvs_backend auto|ipvs|nftables }` (wasmalived).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LvsBackendChoice {
    /// IPVS when the kernel has it, else nftables.
    #[default]
    Auto,
    /// The kernel's IPVS.
    Ipvs,
    /// A wasmalived-owned nftables table.
    Nftables,
}

/// `global_defs { lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N]
/// [group ADDRESS] }` (keepalived 2.2): keep the director's connections across a failover by
/// syncing them over `interface`, sending while `instance` is Master and receiving otherwise.
/// Unset options keep the sync engine's defaults (IPVS: the kernel's).
#[derive(Debug, Clone, PartialEq)]
pub struct LvsSyncDaemon {
    /// The interface the sync messages go out and come in on.
    pub interface: String,
    /// The `vrrp_instance` whose state the sync follows (checked to exist).
    pub instance: String,
    /// Where the instance was named (for messages about it).
    pub instance_at: Origin,
    /// `id N` (0–255): IPVS's sync id; `None` = the instance's VRID, as keepalived.
    pub sync_id: Option<u8>,
    /// `maxlen N`: IPVS's largest sync message payload.
    pub maxlen: Option<u16>,
    /// `port N`: the UDP port of the sync messages.
    pub port: Option<u16>,
    /// `ttl N`: the multicast TTL of the sync messages.
    pub ttl: Option<u8>,
    /// `group ADDRESS`: the multicast group of the sync messages.
    pub group: Option<IpAddr>,
}

impl LvsBackendChoice {
    /// `auto`, `ipvs`, `nftables`: the keyword's value.
    pub fn keyword(self) -> &'static str {
        match self {
            LvsBackendChoice::Auto => "auto",
            LvsBackendChoice::Ipvs => "ipvs",
            LvsBackendChoice::Nftables => "nftables",
        }
    }
}

/// A `virtual_server` block.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    /// What clients address.
    pub addr: ServiceAddr,
    /// `protocol` (default TCP).
    pub protocol: Protocol,
    /// `lb_algo` (default `wlc`) and where it was written.
    pub scheduler: Scheduler,
    /// Where `lb_algo` was written (the VS block when not written), for backend warnings.
    pub scheduler_at: Origin,
    /// `lb_kind` (default NAT).
    pub forwarding: Forwarding,
    /// Where `lb_kind` was written (the VS block when not written).
    pub forwarding_at: Origin,
    /// `persistence_timeout` (client → real server affinity).
    pub persistence_timeout: Option<Duration>,
    /// `persistence_granularity` as a prefix length (IPv4 netmask or IPv6 prefix).
    pub persistence_granularity: Option<u8>,
    /// `sorry_server IP PORT` with `sorry_server_inhibit`.
    pub sorry_server: Option<SorryServer>,
    /// `quorum` (default 1; reduced to the total weight if above it, as keepalived does).
    pub quorum: u32,
    /// `hysteresis` (default 0; below `quorum`).
    pub hysteresis: u32,
    /// `quorum_up`.
    pub quorum_up: Option<NotifyScript>,
    /// `quorum_down`.
    pub quorum_down: Option<NotifyScript>,
    /// `omega`: run the down notifiers at shutdown.
    pub omega: bool,
    /// `ha_suspend`: checkers run only while the service's address is on this host.
    pub ha_suspend: bool,
    /// `smtp_alert [BOOL]`: a mail when the quorum is gained or lost; `None` = the global
    /// default (see [`crate::Config::virtual_server_smtp_alert`]).
    pub smtp_alert: Option<bool>,
    /// The real servers, in order.
    pub real_servers: Vec<RealServer>,
    /// Where the block is.
    pub origin: Origin,
}

impl VirtualServer {
    /// A short name for logs and status: `192.0.2.10:80/tcp`, `fwmark 1/tcp`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.addr, self.protocol.name())
    }

    /// The sum of the real servers' configured weights.
    pub fn total_weight(&self) -> u64 {
        self.real_servers.iter().map(|r| u64::from(r.weight)).sum()
    }
}

/// `sorry_server IP PORT` (+ `sorry_server_inhibit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    /// Address (the port defaults to the service's).
    pub addr: SocketAddr,
    /// `sorry_server_inhibit`: kept in the pool at weight 0 when not in use.
    pub inhibit: bool,
}

/// A `real_server IP PORT` block.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    /// Address; the port is the service's when not written (and always for DR/TUN).
    pub addr: SocketAddr,
    /// `weight` (default: the VS's `weight`, 1).
    pub weight: u32,
    /// `inhibit_on_failure`: a failed server stays in the pool at weight 0.
    pub inhibit_on_failure: bool,
    /// `alpha`: the server starts down and waits for its checkers' first success.
    pub alpha: bool,
    /// `notify_up`.
    pub notify_up: Option<NotifyScript>,
    /// `notify_down`.
    pub notify_down: Option<NotifyScript>,
    /// `smtp_alert [BOOL]`: a mail when one of its checkers goes up or down; `None` = the
    /// global default (see [`crate::Config::real_server_smtp_alert`]).
    pub smtp_alert: Option<bool>,
    /// The checkers: all must pass.
    pub checkers: Vec<Checker>,
    /// Where the block is.
    pub origin: Origin,
}

/// One checker of a real server.
#[derive(Debug, Clone, PartialEq)]
pub struct Checker {
    /// What it probes and how.
    pub kind: CheckerKind,
    /// Where it connects (`connect_ip`/`connect_port`, else the real server).
    pub target: SocketAddr,
    /// `bindto`: the source address.
    pub bind: Option<IpAddr>,
    /// When and how often.
    pub timing: CheckerTiming,
    /// Where the block is.
    pub origin: Origin,
}

/// A checker's schedule, with keepalived's inheritance resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckerTiming {
    /// `delay_loop`: time between checks.
    pub delay_loop: Duration,
    /// `retry`: failures beyond the first before an up checker goes down.
    pub retry: u32,
    /// `delay_before_retry`: time between retries.
    pub delay_before_retry: Duration,
    /// `warmup`: the first check waits a random time up to this.
    pub warmup: Duration,
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// `alpha`: starts down.
    pub alpha: bool,
}

/// What a checker does.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckerKind {
    /// `TCP_CHECK`: a TCP connection opens.
    Tcp(TcpCheck),
    /// `HTTP_GET` / `SSL_GET`: every `url` answers with an accepted status (and digest).
    Http(HttpCheck),
    /// `MISC_CHECK`: a script exits 0 (or, `misc_dynamic`, 2–255 = weight + 2).
    Misc(MiscCheck),
    /// `PING_CHECK`: an ICMP echo is answered.
    Ping,
    /// `UDP_CHECK`: a datagram is not refused (or is answered as required).
    Udp(UdpCheck),
    /// `PLUGIN_CHECK` (wasmalived): any check plugin.
    Plugin(PluginCheck),
    /// `DNS_CHECK`: a DNS query over UDP is answered without error.
    Dns(DnsCheck),
    /// `SMTP_CHECK`: the server greets with 220, answers `HELO` with 250, and `QUIT`.
    Smtp(SmtpCheck),
    /// `FILE_CHECK`: a `track_file`'s value takes the server down or moves its weight.
    File(FileCheck),
}

impl CheckerKind {
    /// keepalived's keyword (`PLUGIN_CHECK` for plugins).
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckerKind::Tcp(_) => "TCP_CHECK",
            CheckerKind::Http(h) if h.tls.is_some() => "SSL_GET",
            CheckerKind::Http(_) => "HTTP_GET",
            CheckerKind::Misc(_) => "MISC_CHECK",
            CheckerKind::Ping => "PING_CHECK",
            CheckerKind::Udp(_) => "UDP_CHECK",
            CheckerKind::Plugin(_) => "PLUGIN_CHECK",
            CheckerKind::Dns(_) => "DNS_CHECK",
            CheckerKind::Smtp(_) => "SMTP_CHECK",
            CheckerKind::File(_) => "FILE_CHECK",
        }
    }

    /// The linear memory one run of this checker's plugin may use, if it runs one: a
    /// `PLUGIN_CHECK`'s grant, [`crate::grants::SOCKET_CHECKER_MEMORY_LIMIT`] for the stock
    /// `tcp`, `smtp` and `dns` plugins, the default for `http`.
    pub fn plugin_memory_limit(&self) -> Option<u64> {
        match self {
            CheckerKind::Plugin(plugin) => Some(plugin.grants.memory_limit),
            CheckerKind::Tcp(_) | CheckerKind::Dns(_) | CheckerKind::Smtp(_) => {
                Some(crate::grants::SOCKET_CHECKER_MEMORY_LIMIT)
            }
            CheckerKind::Http(_) => Some(crate::grants::DEFAULT_MEMORY_LIMIT),
            CheckerKind::Misc(_)
            | CheckerKind::Ping
            | CheckerKind::Udp(_)
            | CheckerKind::File(_) => None,
        }
    }

    /// Whether the checker runs a plugin: `PLUGIN_CHECK`, and the keepalived checkers that
    /// compile to stock plugins (`TCP_CHECK`, `HTTP_GET`/`SSL_GET`, `DNS_CHECK`,
    /// `SMTP_CHECK`). The host-side ones (`MISC_CHECK`, `PING_CHECK`, `UDP_CHECK`,
    /// `FILE_CHECK`) do not.
    pub fn runs_plugin(&self) -> bool {
        match self {
            CheckerKind::Tcp(_)
            | CheckerKind::Http(_)
            | CheckerKind::Plugin(_)
            | CheckerKind::Dns(_)
            | CheckerKind::Smtp(_) => true,
            CheckerKind::Misc(_)
            | CheckerKind::Ping
            | CheckerKind::Udp(_)
            | CheckerKind::File(_) => false,
        }
    }
}

/// `TCP_CHECK`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCheck {
    /// `close_with_reset` (wasmalived's, opt-in): close each check's connection with a reset
    /// (`SO_LINGER` 0), as HAProxy's checks do — no FIN exchange and no `TIME_WAIT` on the
    /// director — instead of keepalived's orderly close; the real server sees a reset.
    pub close_with_reset: bool,
}

/// `HTTP_GET` / `SSL_GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// The `url` blocks, checked in order; all must pass.
    pub urls: Vec<HttpUrl>,
    /// TLS for `SSL_GET`; `None` for `HTTP_GET`.
    pub tls: Option<TlsOptions>,
}

/// One `url { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `path`.
    pub path: String,
    /// `digest`: MD5 of the body, lower-case hex.
    pub digest: Option<String>,
    /// `status_code`: accepted statuses as inclusive ranges (default 200–299).
    pub status: Vec<(u16, u16)>,
    /// The Host to send (`virtualhost` of the url, else the checker's, else the real
    /// server's, else the virtual server's).
    pub virtualhost: Option<String>,
}

/// `SSL_GET`'s TLS handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `enable_sni`: send the virtual host as the TLS server name.
    pub sni: bool,
    /// `tls_verify [CA_FILE]` (wasmalived): verify the certificate (keepalived never does).
    pub verify: bool,
    /// CA bundle for verification (default: the built-in web roots).
    pub ca: Option<PathBuf>,
}

/// `MISC_CHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// `misc_path`: the command (no shell).
    pub argv: Vec<String>,
    /// `misc_timeout` (default: the checker's `delay_loop`).
    pub timeout: Duration,
    /// `misc_dynamic`: exit 2–255 sets the weight to status − 2.
    pub dynamic: bool,
    /// `user USER [GROUP]`.
    pub user: Option<RunAs>,
}

/// `UDP_CHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpCheck {
    /// `payload` (hex), default empty.
    pub payload: Vec<u8>,
    /// `require_reply [HEX]`: a reply is required (starting with these bytes if given).
    pub require_reply: Option<Vec<u8>>,
    /// The wildcard nibbles of `require_reply` (keepalived's `X`): bits set here are not
    /// compared. Empty when the hex string has no wildcard, else as long as the data.
    pub require_reply_mask: Vec<u8>,
    /// `min_reply_length`.
    pub min_reply_length: usize,
    /// `max_reply_length`.
    pub max_reply_length: Option<usize>,
}

/// `PLUGIN_CHECK`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginCheck {
    /// Which component.
    pub plugin: PluginRef,
    /// `param KEY VALUE` lines.
    pub params: Vec<(String, String)>,
    /// `allow_*`, `remediation`, `memory_limit`.
    pub grants: Grants,
}

/// `DNS_CHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// `type` (default SOA).
    pub qtype: DnsType,
    /// `name`, the queried domain (default the root, `.`).
    pub name: String,
}

/// The query types `DNS_CHECK` accepts (keepalived 2.2.7's `DNS_TYPE` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DnsType {
    /// `A` (1).
    A,
    /// `NS` (2).
    Ns,
    /// `CNAME` (5).
    Cname,
    /// `SOA` (6), keepalived's default.
    #[default]
    Soa,
    /// `MX` (15).
    Mx,
    /// `TXT` (16).
    Txt,
    /// `AAAA` (28).
    Aaaa,
    /// `RRSIG` (46).
    Rrsig,
    /// `DNSKEY` (48).
    Dnskey,
}

impl DnsType {
    /// Every type with its name and its QTYPE code (RFC 1035 §3.2.2, RFC 3596, RFC 4034).
    pub const ALL: [(DnsType, &'static str, u16); 9] = [
        (DnsType::A, "A", 1),
        (DnsType::Ns, "NS", 2),
        (DnsType::Cname, "CNAME", 5),
        (DnsType::Soa, "SOA", 6),
        (DnsType::Mx, "MX", 15),
        (DnsType::Txt, "TXT", 16),
        (DnsType::Aaaa, "AAAA", 28),
        (DnsType::Rrsig, "RRSIG", 46),
        (DnsType::Dnskey, "DNSKEY", 48),
    ];

    /// By name, case-insensitively (as keepalived).
    pub fn from_name(name: &str) -> Option<DnsType> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .map(|(t, _, _)| *t)
    }

    /// The name (`SOA`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _, _)| *t == self)
            .map_or("?", |(_, n, _)| n)
    }

    /// The QTYPE code.
    pub fn code(self) -> u16 {
        Self::ALL
            .iter()
            .find(|(t, _, _)| *t == self)
            .map_or(0, |(_, _, c)| *c)
    }
}

/// `SMTP_CHECK` (each deprecated `host { … }` block is a checker of its own, as keepalived
/// makes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCheck {
    /// `helo_name` (default `smtpchecker.keepalived.org`).
    pub helo_name: String,
}

/// `FILE_CHECK { track_file NAME; weight W [reverse] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The `track_file` it follows.
    pub track_file: String,
    /// That track file's `file`.
    pub path: PathBuf,
    /// The multiplier of the file's value (default: the track file's `weight`); 0: a
    /// non-zero value takes the server down.
    pub weight: i32,
    /// `reverse`: the value counts negated (with weight 0: a zero value takes it down).
    pub reverse: bool,
}

impl FileCheck {
    /// What a file value does to the real server (keepalived's `update_track_file_status`
    /// and `process_update_checker_track_file_status`): with weight 0, a non-zero value
    /// (with `reverse`, a zero one) takes it down; otherwise `value × weight` (negated with
    /// `reverse`) is added to its weight, and a product at or below −2³¹ takes it down.
    pub fn effect(&self, value: i64) -> FileEffect {
        if self.weight == 0 {
            return if (value != 0) != self.reverse {
                FileEffect::Down
            } else {
                FileEffect::Offset(0)
            };
        }
        let sign = if self.reverse { -1 } else { 1 };
        let product = i128::from(value) * i128::from(self.weight) * sign;
        if product <= i128::from(i32::MIN) {
            FileEffect::Down
        } else {
            FileEffect::Offset(i64::try_from(product.min(i128::from(i32::MAX))).unwrap_or(0))
        }
    }
}

/// What a `FILE_CHECK`'s file value does to its real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEffect {
    /// The checker is down (keepalived's fault state).
    Down,
    /// The checker is up and this is added to the real server's configured weight (the sum
    /// is clamped to 0 and above, as keepalived's `real_weight`).
    Offset(i64),
}

/// A `virtual_server_group NAME { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServerGroup {
    /// Name.
    pub name: String,
    /// Entries: addresses (or ranges) with a port, and fwmarks.
    pub entries: Vec<GroupEntry>,
}

/// One line of a `virtual_server_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEntry {
    /// `IP[-LAST] PORT`: one address, or a range ending in `LAST` (last octet / group).
    Addrs {
        /// First address.
        first: IpAddr,
        /// Last address (equal to `first` for one address).
        last: IpAddr,
        /// Port.
        port: u16,
    },
    /// `fwmark N`.
    Fwmark(u32),
}

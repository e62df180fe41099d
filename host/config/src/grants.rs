//! Capability grants: what one check's plugin may use. Built from the config (or the
//! `plugin run` CLI flags); everything not granted is absent (deny by default).

use std::path::PathBuf;
use std::time::Duration;

/// Default linear-memory limit per check run.
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// Linear-memory limit of the stock plugins that keepalived's socket checkers compile to
/// (`TCP_CHECK` → `tcp`, `SMTP_CHECK` → `smtp`, `DNS_CHECK` → `dns`): they hold a few small
/// buffers (`tcp` runs in 2 MiB; its initial memory is 1.1 MiB). Four times that leaves
/// headroom, and keeps the pool's reservation of a large pool of such checkers small (the
/// pool's slots are sized by the largest limit in use). `HTTP_GET`/`SSL_GET` keep the
/// default: `http` buffers a body of up to 16 MiB for its digest.
pub const SOCKET_CHECKER_MEMORY_LIMIT: u64 = 8 * 1024 * 1024;

/// Default time a remediation command may run before its process group is killed.
pub const DEFAULT_REMEDIATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything one check's plugin is allowed to do besides `log`, `scratch`, clocks and random.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// `processes` import; `None` = not granted.
    pub processes: Option<ProcessGrant>,
    /// `remediation` import: the commands it may run, by id. Empty = not granted.
    pub remediation: Vec<RemediationCommand>,
    /// wasi:http outgoing requests: allowed targets. Empty = not granted.
    pub http: Vec<HttpGrant>,
    /// wasi:sockets TCP connects: allowed targets. Empty = not granted.
    pub tcp: Vec<TcpGrant>,
    /// wasi:sockets UDP: the peers a plugin may send to and hear from. Empty = not granted
    /// (the UDP interfaces are not even linked).
    pub udp: Vec<UdpGrant>,
    /// wasi:filesystem preopens. Empty = not granted.
    pub dirs: Vec<DirGrant>,
    /// Linear-memory limit in bytes for one run.
    pub memory_limit: u64,
    /// HTTP hosts pinned to an address (LVS checkers: the virtual host is requested from
    /// the real server). Set by the daemon, not by a config keyword.
    pub http_pins: Vec<HttpPin>,
    /// How HTTPS servers are verified.
    pub http_tls: HttpTls,
    /// The address the check's connections leave from (an LVS checker's `bindto`): HTTP
    /// requests bind to it, and a plugin may bind a TCP or UDP socket to it (port 0). Set by the
    /// daemon, not by a config keyword.
    pub source: Option<std::net::IpAddr>,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            processes: None,
            remediation: Vec::new(),
            http: Vec::new(),
            tcp: Vec::new(),
            udp: Vec::new(),
            dirs: Vec::new(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            http_pins: Vec::new(),
            http_tls: HttpTls::default(),
            source: None,
        }
    }
}

/// Access to the process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessGrant {
    /// Only return processes in the daemon's own network namespace.
    pub netns_only: bool,
}

/// A remediation command declared in the config under an id. Run without a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationCommand {
    /// The id the plugin names.
    pub id: String,
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Kill the process group after this long.
    pub timeout: Duration,
    /// `user USER [GROUP]`; `None` = the daemon's default script user (`script_user`, else
    /// `keepalived_script` if that user exists, else root).
    pub user: Option<crate::RunAs>,
}

/// An allowed HTTP target: a URL prefix (`http://127.0.0.1:8080/health`) or an authority
/// (`127.0.0.1:8080`, `example.internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant(pub String);

/// An allowed TCP target: `host:port` with a literal IP (v4 or `[v6]`); port `*` allows any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpGrant(pub String);

/// An allowed UDP peer: `host:port` with a literal IP (v4 or `[v6]`); port `*` allows any.
/// The plugin may bind an ephemeral port (on the wildcard or the granted source), send to
/// the peer and receive from it; nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpGrant(pub String);

/// A host directory made visible to the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Directory on the host.
    pub host_path: PathBuf,
    /// Path the plugin sees it at (defaults to the host path).
    pub guest_path: String,
    /// Read-write instead of read-only.
    pub writable: bool,
}

/// Requests to `host:port` connect to `connect_to`, keeping `host` as the `Host` header and
/// (with [`HttpTls::sni`]) the TLS server name — `curl --resolve`, for checking a real
/// server under its virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPin {
    /// The host name (or address) the plugin requests, lower-case.
    pub host: String,
    /// The port it requests.
    pub port: u16,
    /// Where the connection really goes.
    pub connect_to: std::net::SocketAddr,
}

/// HTTPS verification for a check's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTls {
    /// Verify the server's certificate chain and name (keepalived's `SSL_GET` does not).
    pub verify: bool,
    /// Trust these CAs (PEM) instead of the built-in web roots.
    pub ca: Option<PathBuf>,
    /// Send the requested host name as SNI (an IP literal sends none).
    pub sni: bool,
}

impl Default for HttpTls {
    fn default() -> Self {
        HttpTls {
            verify: true,
            ca: None,
            sni: true,
        }
    }
}

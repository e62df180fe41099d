//! Run a check natively (`cargo test` on the host target) against fake capabilities: a
//! process table, remediation commands, a scratch store, clocks that only move when the test
//! (or the check's `sleep`) moves them, TCP/HTTP responders, scripted TCP dialogues and UDP
//! peers. No wasm, no daemon.
//!
//! ```
//! use wasmalived_plugin_sdk::testing::FakeHost;
//! use wasmalived_plugin_sdk::{Check, Host, Params, Verdict};
//!
//! /// Healthy while a process named `name` runs.
//! struct Running;
//!
//! impl Check for Running {
//!     fn check(host: &impl Host, params: &Params) -> Verdict {
//!         let name = params.get("name").unwrap_or("nginx");
//!         match host.processes_by_name(name) {
//!             Ok(ps) if !ps.is_empty() => Verdict::ok().measure("count", ps.len() as f64),
//!             Ok(_) => Verdict::fail(format!("no `{name}` runs")),
//!             Err(e) => Verdict::fail(e),
//!         }
//!     }
//! }
//!
//! let host = FakeHost::new();
//! assert_eq!(host.run::<Running>(&[]).reason(), Some("no `nginx` runs"));
//! host.spawn("nginx");
//! assert_eq!(host.run::<Running>(&[]).measurement("count"), Some(1.0));
//! ```
//!
//! A `FakeHost` keeps its state between runs (scratch, clocks, processes), as the daemon
//! does between runs of one check; a remediation can change the process table.

mod sockets;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::host::{Host, Level, Process};
use crate::net::{
    Datagrams, HttpError, HttpRequest, HttpResponse, NetError, NetOp, NetReply, Stream, TcpClose,
    TcpError,
};
use crate::{Check, Params, Verdict};
pub use sockets::{SentDatagram, SessionEnd};

/// The fake process table a [`FakeHost`] lists.
#[derive(Debug, Default)]
pub struct ProcessTable {
    processes: Vec<Process>,
    next_pid: u32,
}

impl ProcessTable {
    /// Start a process named `name` (command line `[name]`, in the daemon's netns); its pid.
    pub fn spawn(&mut self, name: &str) -> u32 {
        self.spawn_with(name, &[name], true)
    }

    /// Start a process with a command line, in the daemon's network namespace or not.
    pub fn spawn_with(&mut self, name: &str, cmdline: &[&str], same_netns: bool) -> u32 {
        self.next_pid += 1;
        let pid = 1000 + self.next_pid;
        self.processes.push(Process {
            pid,
            name: name.to_string(),
            cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
            same_netns,
        });
        pid
    }

    /// Stop every process named `name`; how many there were.
    pub fn kill_all(&mut self, name: &str) -> usize {
        let before = self.processes.len();
        self.processes.retain(|p| p.name != name);
        before - self.processes.len()
    }

    /// Every process.
    pub fn processes(&self) -> &[Process] {
        &self.processes
    }
}

/// A fake remediation command: gets the process table, returns an exit status or an error.
type Remediation = Box<dyn FnMut(&mut ProcessTable) -> Result<i32, String>>;
/// A fake HTTP server: answers a request.
type HttpResponder = Box<dyn Fn(&HttpRequest) -> FakeReply<HttpResponse>>;

/// What a fake network target does with one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeReply<T> {
    /// Answers.
    Answer(T),
    /// Fails at once with this error.
    Error(NetError),
    /// Never answers: the operation ends at the deadline ([`NetError::Deadline`]) and the
    /// clocks move on by the batch's timeout.
    Hang,
}

/// A [`Host`] for native tests. See the module documentation.
pub struct FakeHost {
    processes: RefCell<ProcessTable>,
    process_error: RefCell<Option<String>>,
    remediations: RefCell<BTreeMap<String, Remediation>>,
    remediated: RefCell<Vec<String>>,
    wake_on_exit: RefCell<Vec<u32>>,
    wake_on_change: RefCell<Vec<String>>,
    wake_on_disconnect: RefCell<Vec<SocketAddr>>,
    scratch: RefCell<BTreeMap<String, Vec<u8>>>,
    scratch_quota: Cell<usize>,
    monotonic: Cell<Duration>,
    wall: Cell<SystemTime>,
    random: Cell<u64>,
    logs: RefCell<Vec<(Level, String)>>,
    tcp: RefCell<BTreeMap<SocketAddr, FakeReply<()>>>,
    http: RefCell<Vec<(String, HttpResponder)>>,
    net_log: RefCell<Vec<NetOp>>,
    tcp_close: Cell<Option<TcpClose>>,
    sessions: RefCell<BTreeMap<SocketAddr, sockets::Session>>,
    udp_peers: RefCell<BTreeMap<SocketAddr, sockets::UdpPeer>>,
    udp_sent: RefCell<Vec<SentDatagram>>,
}

impl Default for FakeHost {
    fn default() -> FakeHost {
        FakeHost::new()
    }
}

/// The fake wall clock's start: 2024-01-01T00:00:00Z.
const WALL_START_SECS: u64 = 1_704_067_200;
/// PIDs one run may ask to be woken by (the daemon's bound).
const MAX_WAKE_PIDS: usize = 64;
/// Paths one run may ask to be woken by (the daemon's bound).
const MAX_WAKE_PATHS: usize = 16;
/// TCP servers one run may ask to be woken by (the daemon's bound).
const MAX_WAKE_ADDRESSES: usize = 8;

impl FakeHost {
    /// An empty host: no processes, no remediations, empty scratch (64 KiB quota), the
    /// monotonic clock at 1000 s, the wall clock at 2024-01-01T00:00:00Z, every TCP address
    /// refusing and every HTTP request denied (as the daemon does without a grant).
    pub fn new() -> FakeHost {
        FakeHost {
            processes: RefCell::default(),
            process_error: RefCell::default(),
            remediations: RefCell::default(),
            remediated: RefCell::default(),
            wake_on_exit: RefCell::default(),
            wake_on_change: RefCell::default(),
            wake_on_disconnect: RefCell::default(),
            scratch: RefCell::default(),
            scratch_quota: Cell::new(64 * 1024),
            monotonic: Cell::new(Duration::from_secs(1000)),
            wall: Cell::new(UNIX_EPOCH + Duration::from_secs(WALL_START_SECS)),
            random: Cell::new(0x5eed),
            logs: RefCell::default(),
            tcp: RefCell::default(),
            http: RefCell::default(),
            net_log: RefCell::default(),
            tcp_close: Cell::default(),
            sessions: RefCell::default(),
            udp_peers: RefCell::default(),
            udp_sent: RefCell::default(),
        }
    }

    /// Run check `C` once with `params`. What it asks to be woken by is reset first, as the
    /// daemon does for every run ([`FakeHost::wake_on_exit`]).
    pub fn run<C: Check>(&self, params: &[(&str, &str)]) -> Verdict {
        self.wake_on_exit.borrow_mut().clear();
        self.wake_on_change.borrow_mut().clear();
        self.wake_on_disconnect.borrow_mut().clear();
        C::check(self, &Params::from_pairs(params.iter().copied()))
    }

    /// The PIDs the last run asked to be woken by when they exit (sorted, no duplicates).
    pub fn wake_on_exit(&self) -> Vec<u32> {
        self.wake_on_exit.borrow().clone()
    }

    /// The paths the last run asked to be woken by when they change (sorted, no duplicates).
    pub fn wake_on_change(&self) -> Vec<String> {
        self.wake_on_change.borrow().clone()
    }

    /// The TCP servers the last run asked to be woken by when they drop the daemon's
    /// connection (sorted, no duplicates).
    pub fn wake_on_disconnect(&self) -> Vec<SocketAddr> {
        self.wake_on_disconnect.borrow().clone()
    }

    // --- processes -------------------------------------------------------------------------

    /// Start a process named `name`; its pid.
    pub fn spawn(&self, name: &str) -> u32 {
        self.processes.borrow_mut().spawn(name)
    }

    /// Start a process with a command line, in the daemon's network namespace or not.
    pub fn spawn_with(&self, name: &str, cmdline: &[&str], same_netns: bool) -> u32 {
        self.processes
            .borrow_mut()
            .spawn_with(name, cmdline, same_netns)
    }

    /// Stop every process named `name`; how many there were.
    pub fn kill_all(&self, name: &str) -> usize {
        self.processes.borrow_mut().kill_all(name)
    }

    /// Make reading the process table fail with `error` (`None`: work again). This is what a
    /// check sees when its grant is missing.
    pub fn fail_processes(&self, error: Option<&str>) {
        *self.process_error.borrow_mut() = error.map(str::to_string);
    }

    // --- remediation -----------------------------------------------------------------------

    /// Declare remediation `id`: running it calls `action` with the process table.
    pub fn on_remediate(
        &self,
        id: &str,
        action: impl FnMut(&mut ProcessTable) -> Result<i32, String> + 'static,
    ) {
        self.remediations
            .borrow_mut()
            .insert(id.to_string(), Box::new(action));
    }

    /// The remediation ids run so far, in order.
    pub fn remediated(&self) -> Vec<String> {
        self.remediated.borrow().clone()
    }

    // --- scratch ---------------------------------------------------------------------------

    /// The scratch value under `key` as text (what the check stored).
    pub fn scratch(&self, key: &str) -> Option<String> {
        self.scratch
            .borrow()
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Set a scratch value, as if an earlier run had stored it.
    pub fn set_scratch(&self, key: &str, value: &str) {
        self.scratch
            .borrow_mut()
            .insert(key.to_string(), value.as_bytes().to_vec());
    }

    /// Forget the whole scratch store (a daemon restart).
    pub fn clear_scratch(&self) {
        self.scratch.borrow_mut().clear();
    }

    /// Limit the scratch store to `bytes` (keys and values).
    pub fn set_scratch_quota(&self, bytes: usize) {
        self.scratch_quota.set(bytes);
    }

    // --- clocks and random -----------------------------------------------------------------

    /// Move both clocks on by `d`.
    pub fn advance(&self, d: Duration) {
        self.monotonic.set(self.monotonic.get() + d);
        self.wall.set(self.wall.get() + d);
    }

    /// Step the wall clock alone (NTP, `date -s`): forward when `forward`, else back.
    pub fn step_wall_clock(&self, d: Duration, forward: bool) {
        let wall = self.wall.get();
        self.wall.set(if forward { wall + d } else { wall - d });
    }

    // --- network ---------------------------------------------------------------------------

    /// TCP connects to `addr` open (others are refused).
    pub fn listen(&self, addr: SocketAddr) {
        self.tcp_reply(addr, FakeReply::Answer(()));
    }

    /// Set what a TCP connect to `addr` does.
    pub fn tcp_reply(&self, addr: SocketAddr, reply: FakeReply<()>) {
        self.tcp.borrow_mut().insert(addr, reply);
    }

    /// Requests whose URL (`http://AUTHORITY/PATH`) starts with `prefix` are answered by
    /// `responder`; the first matching prefix, in the order added, answers.
    pub fn serve_http(
        &self,
        prefix: &str,
        responder: impl Fn(&HttpRequest) -> FakeReply<HttpResponse> + 'static,
    ) {
        self.http
            .borrow_mut()
            .push((prefix.to_string(), Box::new(responder)));
    }

    /// The network operations the check ran, in order.
    pub fn network_log(&self) -> Vec<NetOp> {
        self.net_log.borrow().clone()
    }

    /// How the last [`Host::connect_all_closing`] asked its connections to be closed (a fake
    /// has no wire: it records the choice and connects as [`Host::connect_all`] does).
    pub fn tcp_close(&self) -> Option<TcpClose> {
        self.tcp_close.get()
    }

    // --- logs ------------------------------------------------------------------------------

    /// The check's log lines so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.borrow().clone()
    }

    /// Whether a log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.borrow().iter().any(|(_, l)| l.contains(needle))
    }

    fn answer_http(&self, request: &HttpRequest) -> FakeReply<HttpResponse> {
        let url = format!(
            "{}://{}{}",
            if request.url.https { "https" } else { "http" },
            request.url.authority,
            request.url.path
        );
        let servers = self.http.borrow();
        match servers.iter().find(|(prefix, _)| url.starts_with(prefix)) {
            Some((_, responder)) => responder(request),
            None => FakeReply::Error(NetError::Http(HttpError::Denied)),
        }
    }
}

/// A response with `status` and `body` (the body is returned only if the request asked).
pub fn response(status: u16, body: &str) -> FakeReply<HttpResponse> {
    FakeReply::Answer(HttpResponse {
        status,
        body: Some(Ok(body.as_bytes().to_vec())),
    })
}

impl Host for FakeHost {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn processes_by_name(&self, name: &str) -> Result<Vec<Process>, String> {
        self.list(|p| p.name == name)
    }

    fn processes_by_cmdline(&self, pattern: &str) -> Result<Vec<Process>, String> {
        self.list(|p| p.cmdline.join(" ").contains(pattern))
    }

    fn remediate(&self, id: &str) -> Result<i32, String> {
        let mut remediations = self.remediations.borrow_mut();
        let action = remediations
            .get_mut(id)
            .ok_or_else(|| format!("remediation `{id}` is not granted"))?;
        self.remediated.borrow_mut().push(id.to_string());
        action(&mut self.processes.borrow_mut())
    }

    fn wake_on_change(&self, path: &str) -> Result<(), String> {
        // The daemon's rules a fake can check without grants: absolute, no `..`, bounded.
        if !path.starts_with('/') {
            return Err(format!("`{path}` is not absolute"));
        }
        if path.split('/').any(|c| c == "..") {
            return Err(format!("`{path}`: `..` is not allowed in a watched path"));
        }
        let mut paths = self.wake_on_change.borrow_mut();
        if !paths.iter().any(|p| p == path) {
            if paths.len() >= MAX_WAKE_PATHS {
                return Err(format!(
                    "at most {MAX_WAKE_PATHS} paths can be watched per run"
                ));
            }
            paths.push(path.to_string());
            paths.sort_unstable();
        }
        Ok(())
    }

    fn wake_on_disconnect(&self, address: SocketAddr) -> Result<(), String> {
        // The daemon's bound (its `allow_tcp` check needs grants a fake does not have).
        let mut addresses = self.wake_on_disconnect.borrow_mut();
        if let Err(at) = addresses.binary_search(&address) {
            if addresses.len() >= MAX_WAKE_ADDRESSES {
                return Err(format!(
                    "at most {MAX_WAKE_ADDRESSES} servers can be watched per run"
                ));
            }
            addresses.insert(at, address);
        }
        Ok(())
    }

    fn wake_on_exit(&self, pids: &[u32]) -> Result<(), String> {
        if let Some(e) = self.process_error.borrow().as_ref() {
            return Err(e.clone());
        }
        let mut merged = self.wake_on_exit.borrow().clone();
        merged.extend_from_slice(pids);
        merged.sort_unstable();
        merged.dedup();
        if merged.len() > MAX_WAKE_PIDS {
            return Err(format!(
                "at most {MAX_WAKE_PIDS} processes can be watched per run"
            ));
        }
        *self.wake_on_exit.borrow_mut() = merged;
        Ok(())
    }

    fn scratch_get(&self, key: &str) -> Option<Vec<u8>> {
        self.scratch.borrow().get(key).cloned()
    }

    fn scratch_set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let mut scratch = self.scratch.borrow_mut();
        let used: usize = scratch
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if used + key.len() + value.len() > self.scratch_quota.get() {
            return Err("scratch quota exceeded".into());
        }
        scratch.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn scratch_remove(&self, key: &str) {
        self.scratch.borrow_mut().remove(key);
    }

    fn monotonic(&self) -> Duration {
        self.monotonic.get()
    }

    fn wall_clock(&self) -> SystemTime {
        self.wall.get()
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }

    fn random_u64(&self) -> u64 {
        // xorshift64: deterministic, distinct values.
        let mut x = self.random.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.set(x);
        x
    }

    fn network(&self, ops: &[NetOp], timeout: Duration) -> Vec<Result<NetReply, NetError>> {
        self.net_log.borrow_mut().extend(ops.iter().cloned());
        let mut hung = false;
        let results = ops
            .iter()
            .map(|op| {
                let reply = match op {
                    NetOp::Tcp(addr) | NetOp::TcpFrom { to: addr, .. } => {
                        match self.tcp.borrow().get(addr) {
                            Some(FakeReply::Answer(())) => FakeReply::Answer(NetReply::Connected),
                            Some(FakeReply::Error(e)) => FakeReply::Error(e.clone()),
                            Some(FakeReply::Hang) => FakeReply::Hang,
                            None => FakeReply::Error(NetError::Tcp(TcpError::Refused)),
                        }
                    }
                    NetOp::Http(request) => match self.answer_http(request) {
                        FakeReply::Answer(mut r) => {
                            if request.read_body.is_none() {
                                r.body = None;
                            }
                            FakeReply::Answer(NetReply::Http(r))
                        }
                        FakeReply::Error(e) => FakeReply::Error(e),
                        FakeReply::Hang => FakeReply::Hang,
                    },
                };
                match reply {
                    FakeReply::Answer(r) => Ok(r),
                    FakeReply::Error(e) => Err(e),
                    FakeReply::Hang => {
                        hung = true;
                        Err(NetError::Deadline(timeout))
                    }
                }
            })
            .collect();
        if hung {
            self.advance(timeout);
        }
        results
    }

    fn connect_all_closing(
        &self,
        from: Option<IpAddr>,
        addrs: &[SocketAddr],
        timeout: Duration,
        close: TcpClose,
    ) -> Vec<Result<(), NetError>> {
        self.tcp_close.set(Some(close));
        crate::host::connect_all_from_any(self, from, addrs, timeout)
    }

    fn tcp_stream(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<Box<dyn Stream + '_>, NetError> {
        self.open_tcp_stream(from, to, timeout)
    }

    fn udp_connect(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
    ) -> Result<Box<dyn Datagrams + '_>, NetError> {
        self.open_udp(from, to)
    }
}

impl FakeHost {
    fn list(&self, wanted: impl Fn(&Process) -> bool) -> Result<Vec<Process>, String> {
        if let Some(e) = self.process_error.borrow().as_ref() {
            return Err(e.clone());
        }
        Ok(self
            .processes
            .borrow()
            .processes()
            .iter()
            .filter(|p| wanted(p))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{self, Method};
    use crate::Url;

    #[test]
    fn processes_and_remediation() {
        let host = FakeHost::new();
        host.spawn_with("nginx", &["nginx", "-g", "daemon off;"], false);
        assert_eq!(host.processes_by_name("nginx").expect("ps").len(), 1);
        assert_eq!(
            host.processes_by_cmdline("daemon off").expect("ps").len(),
            1
        );
        assert!(host.processes_by_name("sshd").expect("ps").is_empty());
        host.on_remediate("restart", |ps| {
            ps.spawn("sshd");
            Ok(0)
        });
        assert_eq!(host.remediate("restart"), Ok(0));
        assert!(host.remediate("other").is_err());
        assert_eq!(host.remediated(), ["restart"]);
        assert_eq!(host.processes_by_name("sshd").expect("ps").len(), 1);
        host.fail_processes(Some("processes not granted"));
        assert!(host.processes_by_name("sshd").is_err());
    }

    #[test]
    fn scratch_has_a_quota() {
        let host = FakeHost::new();
        host.set_scratch_quota(8);
        assert_eq!(host.scratch_set("k", b"1234"), Ok(()));
        assert!(host.scratch_set("k2", b"123456").is_err());
        assert_eq!(host.scratch_get_str("k").as_deref(), Some("1234"));
        host.scratch_remove("k");
        assert_eq!(host.scratch("k"), None);
    }

    #[test]
    fn clocks_move_only_when_told() {
        let host = FakeHost::new();
        let (m, w) = (host.monotonic(), host.wall_clock());
        host.sleep(Duration::from_millis(1500));
        assert_eq!(host.elapsed_since(m), Duration::from_millis(1500));
        host.step_wall_clock(Duration::from_secs(10), false);
        assert_eq!(
            w.duration_since(host.wall_clock()).expect("stepped back"),
            Duration::from_millis(8500)
        );
        assert_ne!(host.random_u64(), host.random_u64());
    }

    #[test]
    fn network_responders() {
        let host = FakeHost::new();
        let open: SocketAddr = "192.0.2.1:80".parse().expect("addr");
        host.listen(open);
        host.serve_http("http://192.0.2.2/", |r| match r.url.path.as_str() {
            "/slow" => FakeReply::Hang,
            _ => response(200, "hello"),
        });
        let t = Duration::from_millis(300);
        assert_eq!(net::connect(&host, open, t), Ok(()));
        let closed = "192.0.2.1:81".parse().expect("addr");
        assert_eq!(
            net::connect(&host, closed, t),
            Err(NetError::Tcp(TcpError::Refused))
        );
        let url = |p: &str| Url::parse(&format!("http://192.0.2.2{p}")).expect("url");
        let r = net::fetch(&host, HttpRequest::get(url("/")).read_body(10), t).expect("fetch");
        assert_eq!((r.status, r.body), (200, Some(Ok(b"hello".to_vec()))));
        let r = net::fetch(&host, HttpRequest::new(Method::Head, url("/")), t).expect("head");
        assert_eq!(r.body, None);
        let before = host.monotonic();
        assert_eq!(
            net::fetch(&host, HttpRequest::get(url("/slow")), t),
            Err(NetError::Deadline(t))
        );
        assert_eq!(host.elapsed_since(before), t);
        let other = Url::parse("http://198.51.100.1/").expect("url");
        assert_eq!(
            net::fetch(&host, HttpRequest::get(other), t),
            Err(NetError::Http(HttpError::Denied))
        );
        assert_eq!(host.network_log().len(), 6);
    }
}

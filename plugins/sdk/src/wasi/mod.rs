//! [`Wasi`]: the real [`Host`], calling the component's imports. Only in the wasm32 build.
//!
//! Each method calls one import; a check that never calls a method never imports its
//! capability (the linker drops the unused import, and `wit-component` the interface).

mod http;
mod net;
mod probe;
mod tcp;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use wasi::clocks::monotonic_clock;

use crate::bindings::wasmalived::plugin::{log, processes, remediation, scratch, wake};
use crate::host::{Host, Level, Process};
use crate::net::{
    Datagrams, HttpRequest, HttpResponse, NetError, NetOp, NetReply, Stream, TcpClose,
};

/// The host the daemon provides: what a check gets in the component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wasi;

impl Host for Wasi {
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }

    fn processes_by_name(&self, name: &str) -> Result<Vec<Process>, String> {
        processes::by_name(name).map(|ps| ps.into_iter().map(process).collect())
    }

    fn processes_by_cmdline(&self, pattern: &str) -> Result<Vec<Process>, String> {
        processes::by_cmdline(pattern).map(|ps| ps.into_iter().map(process).collect())
    }

    fn remediate(&self, id: &str) -> Result<i32, String> {
        remediation::run(id)
    }

    fn scratch_get(&self, key: &str) -> Option<Vec<u8>> {
        scratch::get(key)
    }

    fn scratch_set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        scratch::set(key, value)
    }

    fn scratch_remove(&self, key: &str) {
        scratch::remove(key);
    }

    fn wake_on_exit(&self, pids: &[u32]) -> Result<(), String> {
        wake::on_exit(pids)
    }

    fn wake_on_change(&self, path: &str) -> Result<(), String> {
        wake::on_change(path)
    }

    fn wake_on_disconnect(&self, address: SocketAddr) -> Result<(), String> {
        wake::on_disconnect(&address.to_string())
    }

    fn monotonic(&self) -> Duration {
        Duration::from_nanos(monotonic_clock::now())
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) {
        monotonic_clock::subscribe_duration(nanos(duration)).block();
    }

    fn random_u64(&self) -> u64 {
        wasi::random::random::get_random_u64()
    }

    fn network(&self, ops: &[NetOp], timeout: Duration) -> Vec<Result<NetReply, NetError>> {
        net::run(ops, timeout)
    }

    fn connect_all(&self, addrs: &[SocketAddr], timeout: Duration) -> Vec<Result<(), NetError>> {
        probe::connect_all(None, addrs, timeout, TcpClose::Fin)
    }

    fn connect_all_from(
        &self,
        from: IpAddr,
        addrs: &[SocketAddr],
        timeout: Duration,
    ) -> Vec<Result<(), NetError>> {
        probe::connect_all(Some(from), addrs, timeout, TcpClose::Fin)
    }

    fn connect_all_closing(
        &self,
        from: Option<IpAddr>,
        addrs: &[SocketAddr],
        timeout: Duration,
        close: TcpClose,
    ) -> Vec<Result<(), NetError>> {
        probe::connect_all(from, addrs, timeout, close)
    }

    fn fetch_all(
        &self,
        requests: &[HttpRequest],
        timeout: Duration,
    ) -> Vec<Result<HttpResponse, NetError>> {
        net::fetch_all(requests, timeout)
    }

    fn tcp_stream(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<Box<dyn Stream + '_>, NetError> {
        Ok(Box::new(tcp::open_stream(from, to, timeout)?))
    }

    fn udp_connect(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
    ) -> Result<Box<dyn Datagrams + '_>, NetError> {
        Ok(Box::new(udp::connect(from, to)?))
    }
}

fn process(p: processes::Process) -> Process {
    Process {
        pid: p.pid,
        name: p.name,
        cmdline: p.cmdline,
        same_netns: p.same_netns,
    }
}

/// `d` in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

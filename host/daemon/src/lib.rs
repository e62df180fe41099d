//! wasmalived: a VRRP (RFC 3768 / RFC 5798) high-availability daemon whose health checks are
//! sandboxed WebAssembly components. This crate is the daemon: the I/O edges and the wiring
//! around the layer crates (see the workspace `Cargo.toml` for the graph).
//!
//! Module map (see `../shared/STYLE.md`):
//! - [`daemon`]: the task diagram — who owns what, which messages flow where, reload, shutdown.
//! - [`net`]: raw VRRP sockets, netlink (VIPs, link events), gratuitous ARP / unsolicited NA.
//! - [`checks`]: the check scheduler (interval, timeout, rise/fall) and the script runner.
//! - [`notify`]: keepalived's notify hooks.
//! - [`alerts`]: keepalived's notify FIFO lines and alert mails.
//! - [`procs`]: the process-event source (kernel process connector, `/proc`) and
//!   `vrrp_track_process`.
//! - [`programs`]: the user and security rule of every program the daemon starts.
//! - [`protocol_threads`]: `vrrp_rt_priority`, `vrrp_cpu_affinity`, `vrrp_no_swap` for the
//!   threads that carry adverts.
//! - [`lvs`]: the LVS director (keepalived's check module): virtual servers, real-server
//!   checkers, the data path.
//! - [`control`]: the control socket and the status document.
//! - [`dumps`]: keepalived's dump files on its signals (data, stats, JSON).
//! - [`safe_file`]: writing a root-owned file in a directory others can write to.
//! - [`logging`]: text, JSON lines or the systemd journal.
//! - [`systemd`]: `Type=notify` readiness, reload/stop notifications, status line, watchdog.
//! - [`cli`]: `-t`, `status`, `plugin run`/`inspect`.
//!
//! The layers it builds on: `wasmalived_proto` (codec and sans-IO VRRP core),
//! `wasmalived_config` (keepalived syntax → typed `Config`), `wasmalived_plugin_host` (the
//! wasmtime sandbox), `wasmalived_sys` (process runner, file-trust policy).

pub mod alerts;
pub mod checker_threads;
pub mod checks;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod dumps;
pub mod fault;
pub mod logging;
pub mod lvs;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod procs;
pub mod programs;
pub mod protocol_threads;
pub mod safe_file;
pub mod systemd;

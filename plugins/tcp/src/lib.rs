//! `tcp`: healthy when a TCP connection to `host:port` opens within a timeout.
//!
//! # Parameters
//! | key          | default | meaning                                                    |
//! |--------------|---------|------------------------------------------------------------|
//! | `address`    | —       | `IP:PORT` (`127.0.0.1:80`, `[2001:db8::1]:443`)            |
//! | `host`       | —       | a literal IP, with `port` (instead of `address`)           |
//! | `port`       | —       | the TCP port, with `host`                                  |
//! | `timeout_ms` | `1000`  | give up after this long                                    |
//!
//! The address must be a literal IP: the host grants TCP per address and does not grant
//! name lookup.
//!
//! # Grants
//! `tcp IP:PORT` (the same address; any other is denied by the host).
//!
//! # Verdicts
//! - `ok` — connected; measurement `latency_ms` (time to connect).
//! - `fail` — `connection refused`, `timeout after 500ms`, `access denied (address not
//!   granted)`, `remote unreachable`, or a bad parameter.
//!
//! The connection is closed at once without sending anything.
wit_bindgen::generate!({ path: "../../wit", world: "check-plugin" });

use std::net::{IpAddr, SocketAddr};

use exports::wasmalived::plugin::check::Guest;
use plugin_guest_util::tcp::connect;
use wasi::clocks::monotonic_clock;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

/// Default connect timeout.
const DEFAULT_TIMEOUT_MS: u64 = 1000;

struct Tcp;

impl Guest for Tcp {
    fn check(params: Params) -> Verdict {
        let config = match Config::from_params(&params) {
            Ok(c) => c,
            Err(e) => return verdict(Status::Fail(e), None),
        };
        let start = monotonic_clock::now();
        match connect(config.addr, config.timeout_ms) {
            Ok(()) => {
                let ms = elapsed_ms(start);
                verdict(Status::Ok, Some(ms))
            }
            Err(reason) => verdict(Status::Fail(format!("{}: {reason}", config.addr)), None),
        }
    }
}

/// The check's parameters, parsed.
struct Config {
    addr: SocketAddr,
    timeout_ms: u64,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, String> {
        let get = |k: &str| plugin_guest_util::param(params, k);
        let addr = match (get("address"), get("host"), get("port")) {
            (Some(a), None, None) => a
                .parse::<SocketAddr>()
                .map_err(|_| format!("bad parameter address=`{a}`: expected IP:PORT"))?,
            (None, Some(h), Some(p)) => {
                let ip = h.trim_start_matches('[').trim_end_matches(']');
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("bad parameter host=`{h}`: expected a literal IP"))?;
                let port: u16 = p.parse().map_err(|_| format!("bad parameter port=`{p}`"))?;
                SocketAddr::new(ip, port)
            }
            _ => return Err("parameters: give `address` (IP:PORT) or `host` and `port`".into()),
        };
        let timeout_ms = match get("timeout_ms") {
            None => DEFAULT_TIMEOUT_MS,
            Some(t) => t
                .parse()
                .map_err(|_| format!("bad parameter timeout_ms=`{t}`"))?,
        };
        Ok(Config { addr, timeout_ms })
    }
}

/// Milliseconds since `start` on the monotonic clock.
fn elapsed_ms(start: monotonic_clock::Instant) -> f64 {
    monotonic_clock::now().saturating_sub(start) as f64 / 1e6
}

fn verdict(status: Status, latency_ms: Option<f64>) -> Verdict {
    let measurements = latency_ms
        .map(|value| {
            vec![Measurement {
                name: "latency_ms".into(),
                value,
            }]
        })
        .unwrap_or_default();
    Verdict {
        status,
        message: None,
        measurements,
    }
}

export!(Tcp);

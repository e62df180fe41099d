//! `tcp`: healthy when a TCP connection to `host:port` opens within a timeout.
//!
//! # Parameters
//! | key          | default | meaning                                                    |
//! |--------------|---------|------------------------------------------------------------|
//! | `address`    | —       | `IP:PORT` (`127.0.0.1:80`, `[2001:db8::1]:443`)            |
//! | `host`       | —       | a literal IP, with `port` (instead of `address`)           |
//! | `port`       | —       | the TCP port, with `host`                                  |
//! | `timeout_ms` | `1000`  | give up after this long                                    |
//! | `bind`       | —       | connect from this local IP (an LVS checker's `bindto`; the host must grant it) |
//! | `wake_on_disconnect` | `false` | run again as soon as the server drops a connection the daemon holds to it (`true`; contract 1.4.0) |
//! | `close`      | `fin`   | how the connection is closed: `fin` (orderly, as keepalived's `TCP_CHECK`) or `reset` (as HAProxy's checks: no `TIME_WAIT` on the daemon's host; the server sees a reset) |
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
//! The connection is closed at once without sending anything. The daemon makes the connect
//! (`probe.tcp-connect`, contract 1.5.0): one host call per run.
//!
//! # Waking
//! With `wake_on_disconnect true`, a run that connected asks the daemon to hold a connection
//! to the same address and run the check again at once when the server closes or resets it
//! (`wake.on-disconnect`): a server process that dies is seen within a round trip instead of
//! at the next interval. A run that could not connect declares nothing (its verdict already
//! says the server is down; the interval brings the next run). The LVS `TCP_CHECK` does not set
//! it: keepalived's timing (`delay_loop`, `retry`) is the contract there.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wasmalived_plugin_sdk::net::{NetError, TcpClose};
use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Verdict};

/// Default connect timeout.
const DEFAULT_TIMEOUT_MS: u64 = 1000;

/// The check.
pub struct Tcp;

impl Check for Tcp {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        let config = match Config::from_params(params) {
            Ok(c) => c,
            Err(e) => return Verdict::fail(e),
        };
        let start = host.monotonic();
        let connected = host
            .connect_all_closing(config.bind, &[config.addr], config.timeout, config.close)
            .pop()
            .unwrap_or(Err(NetError::Deadline(config.timeout)));
        match connected {
            Ok(()) => {
                let ms = host.elapsed_since(start).as_nanos() as f64 / 1e6;
                if config.wake_on_disconnect {
                    if let Err(e) = host.wake_on_disconnect(config.addr) {
                        return Verdict::fail(format!("cannot watch {}: {e}", config.addr));
                    }
                }
                Verdict::ok().measure("latency_ms", ms)
            }
            Err(reason) => Verdict::fail(format!("{}: {reason}", config.addr)),
        }
    }
}

export_check!(Tcp);

/// The check's parameters, parsed.
struct Config {
    addr: SocketAddr,
    timeout: Duration,
    bind: Option<IpAddr>,
    wake_on_disconnect: bool,
    close: TcpClose,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, ParamError> {
        let get = |k: &str| params.get(k);
        let addr = match (get("address"), get("host"), get("port")) {
            (Some(_), None, None) => params
                .value::<SocketAddr>("address")
                .hint("expected IP:PORT")
                .required()?,
            (None, Some(h), Some(_)) => {
                let ip = h.trim_start_matches('[').trim_end_matches(']');
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| ParamError::invalid("host", h, Some("expected a literal IP")))?;
                let port: u16 = params.value("port").no_hint().required()?;
                SocketAddr::new(ip, port)
            }
            _ => {
                return Err(ParamError::Other(
                    "parameters: give `address` (IP:PORT) or `host` and `port`".into(),
                ))
            }
        };
        let timeout_ms = params
            .value("timeout_ms")
            .no_hint()
            .default(DEFAULT_TIMEOUT_MS)?;
        let bind = params
            .value::<IpAddr>("bind")
            .hint("expected a literal IP")
            .optional()?;
        let wake_on_disconnect = params.value("wake_on_disconnect").default(false)?;
        let close = params.value("close").default(TcpClose::Fin)?;
        Ok(Config {
            addr,
            timeout: Duration::from_millis(timeout_ms),
            bind,
            wake_on_disconnect,
            close,
        })
    }
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::net::TcpError;
    use wasmalived_plugin_sdk::testing::{FakeHost, FakeReply};

    use super::*;

    #[test]
    fn connects_and_measures() {
        let host = FakeHost::new();
        host.listen("127.0.0.1:80".parse().expect("addr"));
        let v = host.run::<Tcp>(&[("address", "127.0.0.1:80")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.measurement("latency_ms"), Some(0.0));
        let v = host.run::<Tcp>(&[("host", "[127.0.0.1]"), ("port", "80")]);
        assert!(v.is_ok(), "{v:?}");
    }

    #[test]
    fn bind_connects_from_the_given_address() {
        use wasmalived_plugin_sdk::net::NetOp;
        let host = FakeHost::new();
        host.listen("192.0.2.21:80".parse().expect("addr"));
        let v = host.run::<Tcp>(&[("address", "192.0.2.21:80"), ("bind", "192.0.2.5")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(
            host.network_log(),
            [NetOp::TcpFrom {
                from: "192.0.2.5".parse().expect("ip"),
                to: "192.0.2.21:80".parse().expect("addr")
            }]
        );
        let v = host.run::<Tcp>(&[("address", "192.0.2.21:80"), ("bind", "eth0")]);
        assert_eq!(
            v.reason(),
            Some("bad parameter bind=`eth0`: expected a literal IP")
        );
    }

    #[test]
    fn wake_on_disconnect_names_the_server_it_reached_only() {
        let host = FakeHost::new();
        let addr: SocketAddr = "192.0.2.21:5432".parse().expect("addr");
        host.listen(addr);
        let v = host.run::<Tcp>(&[("address", "192.0.2.21:5432")]);
        assert!(v.is_ok(), "{v:?}");
        assert!(host.wake_on_disconnect().is_empty(), "opt-in");
        let wake = [
            ("address", "192.0.2.21:5432"),
            ("wake_on_disconnect", "true"),
        ];
        let v = host.run::<Tcp>(&wake);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(host.wake_on_disconnect(), [addr]);
        // Down: nothing to hold a connection to.
        host.tcp_reply(addr, FakeReply::Error(NetError::Tcp(TcpError::Refused)));
        let v = host.run::<Tcp>(&wake);
        assert_eq!(v.reason(), Some("192.0.2.21:5432: connection refused"));
        assert!(host.wake_on_disconnect().is_empty());
        let v = host.run::<Tcp>(&[
            ("address", "192.0.2.21:5432"),
            ("wake_on_disconnect", "soon"),
        ]);
        assert!(
            v.reason()
                .is_some_and(|r| r.starts_with("bad parameter wake_on_disconnect=`soon`")),
            "{v:?}"
        );
    }

    #[test]
    fn closes_with_a_fin_unless_told_to_reset() {
        let host = FakeHost::new();
        host.listen("192.0.2.21:80".parse().expect("addr"));
        let v = host.run::<Tcp>(&[("address", "192.0.2.21:80")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(host.tcp_close(), Some(TcpClose::Fin));
        let v = host.run::<Tcp>(&[("address", "192.0.2.21:80"), ("close", "reset")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(host.tcp_close(), Some(TcpClose::Reset));
        let v = host.run::<Tcp>(&[("address", "192.0.2.21:80"), ("close", "linger")]);
        assert_eq!(
            v.reason(),
            Some("bad parameter close=`linger`: fin or reset")
        );
    }

    #[test]
    fn failures_name_the_address() {
        let host = FakeHost::new();
        let v = host.run::<Tcp>(&[("address", "127.0.0.1:9")]);
        assert_eq!(v.reason(), Some("127.0.0.1:9: connection refused"));
        assert!(v.measurements.is_empty());
        let addr: SocketAddr = "[2001:db8::1]:443".parse().expect("addr");
        host.tcp_reply(addr, FakeReply::Hang);
        let v = host.run::<Tcp>(&[("address", "[2001:db8::1]:443"), ("timeout_ms", "250")]);
        assert_eq!(v.reason(), Some("[2001:db8::1]:443: timeout after 250ms"));
        host.tcp_reply(addr, FakeReply::Error(NetError::Tcp(TcpError::Denied)));
        let v = host.run::<Tcp>(&[("address", "[2001:db8::1]:443")]);
        assert_eq!(
            v.reason(),
            Some("[2001:db8::1]:443: access denied (address not granted)")
        );
    }

    #[test]
    fn bad_parameters_keep_their_wording() {
        let host = FakeHost::new();
        for (params, reason) in [
            (
                vec![("address", "localhost:80")],
                "bad parameter address=`localhost:80`: expected IP:PORT",
            ),
            (
                vec![("host", "db"), ("port", "1")],
                "bad parameter host=`db`: expected a literal IP",
            ),
            (
                vec![("host", "127.0.0.1"), ("port", "x")],
                "bad parameter port=`x`",
            ),
            (
                vec![("host", "127.0.0.1")],
                "parameters: give `address` (IP:PORT) or `host` and `port`",
            ),
            (
                vec![("address", "127.0.0.1:1"), ("timeout_ms", "-1")],
                "bad parameter timeout_ms=`-1`",
            ),
        ] {
            assert_eq!(host.run::<Tcp>(&params).reason(), Some(reason));
        }
    }
}

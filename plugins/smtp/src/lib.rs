//! `smtp`: keepalived's `SMTP_CHECK` — the start of an SMTP session with the server
//! (RFC 5321 §4.1, §4.3.2), then `QUIT`.
//!
//! # Parameters
//! | key          | default | meaning                                                    |
//! |--------------|---------|------------------------------------------------------------|
//! | `address`    | —       | the server's `IP:PORT` (`192.0.2.25:25`, `[2001:db8::25]:25`) |
//! | `helo_name`  | —       | the name sent with `HELO`                                  |
//! | `timeout_ms` | `1000`  | the time each step gets (connect, each read, each write)   |
//! | `bind`       | —       | connect from this local IP (`bindto`; the host must grant it) |
//!
//! # Grants
//! `tcp IP:PORT` (the same address).
//!
//! # keepalived's semantics (2.2.7 `check/check_smtp.c`)
//! One line at a time, each step given the timeout:
//! 1. the greeting must be `220` (`smtp_get_status`: exactly three digits followed by a
//!    space or the end of the line — a multi-line `220-` greeting fails, as in keepalived);
//! 2. `HELO <helo_name>` must be answered `250` (same rule);
//! 3. `QUIT` must be answered by any line.
//!
//! A line is read up to its `\n`; one longer than keepalived's 512-byte buffer fails here
//! (keepalived wraps its buffer).
//!
//! # Verdicts
//! - `ok` — the dialogue went through; measurement `latency_ms` (connect to the answer
//!   to `QUIT`).
//! - `fail` — `SMTP greeting answered '554 no service'`, `SMTP HELO: no answer within
//!   500ms`, `192.0.2.25:25: connection refused`, `SMTP QUIT: connection closed`, or a bad
//!   parameter.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wasmalived_plugin_sdk::net::{NetError, Stream};
use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Verdict};

/// Default time per step.
const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// keepalived's `SMTP_BUFF_MAX`: the longest line read.
const LINE_MAX: usize = 512;

/// The check.
pub struct Smtp;

impl Check for Smtp {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        let config = match Config::from_params(params) {
            Ok(c) => c,
            Err(e) => return Verdict::fail(e),
        };
        let start = host.monotonic();
        match dialogue(host, &config) {
            Ok(()) => {
                let ms = host.elapsed_since(start).as_nanos() as f64 / 1e6;
                Verdict::ok().measure("latency_ms", ms)
            }
            Err(failure) => Verdict::fail(failure.describe(config.addr)),
        }
    }
}

export_check!(Smtp);

/// The check's parameters, parsed.
struct Config {
    addr: SocketAddr,
    helo_name: String,
    timeout: Duration,
    bind: Option<IpAddr>,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, ParamError> {
        let addr = params
            .value::<SocketAddr>("address")
            .hint("expected IP:PORT")
            .required()?;
        let helo_name: String = params.value("helo_name").no_hint().required()?;
        if helo_name.is_empty() || helo_name.contains(['\r', '\n', ' ']) {
            return Err(ParamError::invalid(
                "helo_name",
                &helo_name,
                Some("expected one word"),
            ));
        }
        let timeout_ms = params
            .value("timeout_ms")
            .no_hint()
            .default(DEFAULT_TIMEOUT_MS)?;
        let bind = params
            .value::<IpAddr>("bind")
            .hint("expected a literal IP")
            .optional()?;
        Ok(Config {
            addr,
            helo_name,
            timeout: Duration::from_millis(timeout_ms),
            bind,
        })
    }
}

/// Which step of the dialogue failed, for the operator's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    Helo,
    Quit,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Greeting => "greeting",
            Step::Helo => "HELO",
            Step::Quit => "QUIT",
        }
    }
}

/// Why the dialogue failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The connection did not open.
    Connect(NetError),
    /// A step timed out.
    Timeout(Step, Duration),
    /// The server closed the connection.
    Closed(Step),
    /// A line longer than [`LINE_MAX`].
    LineTooLong(Step),
    /// Reading or writing failed otherwise.
    Io(Step, NetError),
    /// The server answered with another code (the line, shortened).
    Reply(Step, String),
}

impl Failure {
    fn describe(&self, addr: SocketAddr) -> String {
        match self {
            Failure::Connect(NetError::Deadline(t)) => {
                format!("{addr}: connect timeout after {}ms", t.as_millis())
            }
            Failure::Connect(e) => format!("{addr}: {e}"),
            Failure::Timeout(step, t) => {
                format!("SMTP {}: no answer within {}ms", step.name(), t.as_millis())
            }
            Failure::Closed(step) => format!("SMTP {}: connection closed", step.name()),
            Failure::LineTooLong(step) => {
                format!("SMTP {}: a line longer than {LINE_MAX} bytes", step.name())
            }
            Failure::Io(step, e) => format!("SMTP {}: {e}", step.name()),
            Failure::Reply(step, line) => format!("SMTP {} answered '{line}'", step.name()),
        }
    }
}

/// keepalived's dialogue (see the crate doc).
fn dialogue(host: &impl Host, config: &Config) -> Result<(), Failure> {
    let mut stream = host
        .tcp_stream(config.bind, config.addr, config.timeout)
        .map_err(Failure::Connect)?;
    let mut lines = Lines::new(&mut *stream, config.timeout);
    lines.expect(Step::Greeting, 220)?;
    lines.send(Step::Helo, &format!("HELO {}\r\n", config.helo_name))?;
    lines.expect(Step::Helo, 250)?;
    lines.send(Step::Quit, "QUIT\r\n")?;
    lines.line(Step::Quit).map(drop)
}

/// keepalived's `smtp_get_status`: the reply code of `line` when it is exactly three digits
/// followed by a space or the end of the line; `None` otherwise (a continuation `250-…`).
fn reply_code(line: &str) -> Option<u16> {
    let line = line.trim_end_matches(['\r', '\n']);
    let digits = line.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match line.as_bytes().get(3) {
        None | Some(b' ') => digits.parse().ok(),
        Some(_) => None,
    }
}

/// Line-at-a-time reading and writing over the connection, each step within `timeout`.
struct Lines<'a> {
    stream: &'a mut dyn Stream,
    timeout: Duration,
    unread: Vec<u8>,
}

impl<'a> Lines<'a> {
    fn new(stream: &'a mut dyn Stream, timeout: Duration) -> Self {
        Lines {
            stream,
            timeout,
            unread: Vec::new(),
        }
    }

    /// The next line (with its `\n`).
    fn line(&mut self, step: Step) -> Result<String, Failure> {
        loop {
            if let Some(end) = self.unread.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.unread.drain(..=end).collect();
                if line.len() > LINE_MAX {
                    return Err(Failure::LineTooLong(step));
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.unread.len() >= LINE_MAX {
                return Err(Failure::LineTooLong(step));
            }
            let chunk = self
                .stream
                .read(LINE_MAX - self.unread.len(), self.timeout)
                .map_err(|e| match e {
                    NetError::Deadline(t) => Failure::Timeout(step, t),
                    e => Failure::Io(step, e),
                })?;
            if chunk.is_empty() {
                return Err(Failure::Closed(step));
            }
            self.unread.extend_from_slice(&chunk);
        }
    }

    /// The next line must carry reply code `code`.
    fn expect(&mut self, step: Step, code: u16) -> Result<(), Failure> {
        let line = self.line(step)?;
        match reply_code(&line) {
            Some(got) if got == code => Ok(()),
            _ => Err(Failure::Reply(
                step,
                line.trim_end().chars().take(80).collect(),
            )),
        }
    }

    fn send(&mut self, step: Step, text: &str) -> Result<(), Failure> {
        self.stream
            .write_all(text.as_bytes(), self.timeout)
            .map_err(|e| match e {
                NetError::Deadline(t) => Failure::Timeout(step, t),
                e => Failure::Io(step, e),
            })
    }
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::net::{NetOp, TcpError};
    use wasmalived_plugin_sdk::testing::{FakeHost, FakeReply, SessionEnd};

    use super::*;

    const MX: &str = "192.0.2.25:25";

    fn mx() -> SocketAddr {
        MX.parse().expect("addr")
    }

    fn run(host: &FakeHost, extra: &[(&str, &str)]) -> Verdict {
        let mut params = vec![
            ("address", MX),
            ("helo_name", "checker.example"),
            ("timeout_ms", "200"),
        ];
        params.extend_from_slice(extra);
        host.run::<Smtp>(&params)
    }

    #[test]
    fn reply_codes_follow_keepalived_s_rule() {
        assert_eq!(reply_code("220 mail.example.com ESMTP\r\n"), Some(220));
        assert_eq!(reply_code("250\r\n"), Some(250));
        assert_eq!(reply_code("250"), Some(250));
        assert_eq!(reply_code("250-PIPELINING\r\n"), None, "continuation");
        assert_eq!(reply_code("25 ok"), None);
        assert_eq!(reply_code("2500 ok"), None);
        assert_eq!(reply_code("abc ok"), None);
        assert_eq!(reply_code(""), None);
    }

    #[test]
    fn a_dialogue_greets_helos_and_quits() {
        let host = FakeHost::new();
        host.tcp_session(
            mx(),
            &["220 mx ESMTP\r\n", "250 mx\r\n", "221 bye\r\n"],
            SessionEnd::Close,
        );
        let v = run(&host, &[]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.measurement("latency_ms"), Some(0.0));
        assert_eq!(host.tcp_heard(mx()), "HELO checker.example\r\nQUIT\r\n");
    }

    #[test]
    fn bindto_sets_the_source_address() {
        let host = FakeHost::new();
        host.tcp_session(
            mx(),
            &["220 mx\r\n", "250 mx\r\n", "221\r\n"],
            SessionEnd::Close,
        );
        let v = run(&host, &[("bind", "192.0.2.5")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(
            host.network_log(),
            [NetOp::TcpFrom {
                from: "192.0.2.5".parse().expect("ip"),
                to: mx()
            }]
        );
        let v = run(&host, &[("bind", "eth0")]);
        assert_eq!(
            v.reason(),
            Some("bad parameter bind=`eth0`: expected a literal IP")
        );
    }

    #[test]
    fn a_wrong_greeting_or_helo_answer_fails_with_the_line() {
        let host = FakeHost::new();
        host.tcp_session(mx(), &["554 no service\r\n"], SessionEnd::Close);
        assert_eq!(
            run(&host, &[]).reason(),
            Some("SMTP greeting answered '554 no service'")
        );
        host.tcp_session(mx(), &["220 mx\r\n", "250-mx\r\n"], SessionEnd::Close);
        assert_eq!(
            run(&host, &[]).reason(),
            Some("SMTP HELO answered '250-mx'")
        );
        // A multi-line greeting fails at its first line, as keepalived's does.
        host.tcp_session(mx(), &["220-mx ESMTP\r\n220 mx\r\n"], SessionEnd::Close);
        assert_eq!(
            run(&host, &[]).reason(),
            Some("SMTP greeting answered '220-mx ESMTP'")
        );
    }

    #[test]
    fn a_closed_port_a_silent_server_or_a_hangup_fails() {
        let host = FakeHost::new();
        assert_eq!(
            run(&host, &[]).reason(),
            Some("192.0.2.25:25: connection refused")
        );
        host.tcp_reply(mx(), FakeReply::Hang);
        assert_eq!(
            run(&host, &[]).reason(),
            Some("192.0.2.25:25: connect timeout after 200ms")
        );
        host.tcp_reply(mx(), FakeReply::Error(NetError::Tcp(TcpError::Denied)));
        assert_eq!(
            run(&host, &[]).reason(),
            Some("192.0.2.25:25: access denied (address not granted)")
        );
        host.tcp_session(mx(), &[], SessionEnd::Hang);
        assert_eq!(
            run(&host, &[]).reason(),
            Some("SMTP greeting: no answer within 200ms")
        );
        host.tcp_session(mx(), &["220 mx\r\n", "250 mx\r\n"], SessionEnd::Close);
        assert_eq!(
            run(&host, &[]).reason(),
            Some("SMTP QUIT: connection closed")
        );
        let long = format!("220 {}\r\n", "x".repeat(LINE_MAX));
        host.tcp_session(mx(), &[&long], SessionEnd::Close);
        assert_eq!(
            run(&host, &[]).reason(),
            Some("SMTP greeting: a line longer than 512 bytes")
        );
    }

    #[test]
    fn bad_parameters_keep_their_wording() {
        let host = FakeHost::new();
        for (params, reason) in [
            (
                vec![("address", "mx:25"), ("helo_name", "a")],
                "bad parameter address=`mx:25`: expected IP:PORT",
            ),
            (
                vec![("address", MX), ("helo_name", "a b")],
                "bad parameter helo_name=`a b`: expected one word",
            ),
            (
                vec![("address", MX), ("helo_name", "a"), ("timeout_ms", "x")],
                "bad parameter timeout_ms=`x`",
            ),
        ] {
            assert_eq!(host.run::<Smtp>(&params).reason(), Some(reason));
        }
        assert!(host
            .run::<Smtp>(&[("address", MX)])
            .reason()
            .is_some_and(|r| r.contains("helo_name")));
    }
}

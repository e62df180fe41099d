//! `SMTP_CHECK`: the start of an SMTP session with the real server (RFC 5321 §4.1, §4.3.2).
//!
//! # keepalived's semantics (2.2.7 `check/check_smtp.c`)
//! A TCP connection (from `bindto` if configured) to the real server, then one line at a
//! time, each read or write given `connect_timeout`:
//! 1. the greeting must be `220` (`smtp_get_status`: exactly three digits followed by a
//!    space or the end of the line — a multi-line `220-` greeting fails, as in keepalived);
//! 2. `HELO <helo_name>` must be answered `250` (same rule);
//! 3. `QUIT` must be answered by any line before the connection closes.
//!
//! A line is read up to its `\n` (keepalived reads into a 512-byte buffer; a longer line is
//! an error here, where keepalived wraps its buffer). Any failure — refused, timed out,
//! closed, another status — fails the check with what happened.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::{check_family, setup, ProbeError};

/// keepalived's `SMTP_BUFF_MAX`: the longest line read.
const LINE_MAX: usize = 512;

/// A passed `SMTP_CHECK`: how long the dialogue took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpOk {
    /// From connecting to the answer to `QUIT`.
    pub took: Duration,
}

/// Which step of the dialogue failed, for the operator's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpStep {
    /// Connecting.
    Connect,
    /// Reading the greeting.
    Greeting,
    /// Sending `HELO` or reading its answer.
    Helo,
    /// Sending `QUIT` or reading its answer.
    Quit,
}

impl std::fmt::Display for SmtpStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SmtpStep::Connect => "connect",
            SmtpStep::Greeting => "greeting",
            SmtpStep::Helo => "HELO",
            SmtpStep::Quit => "QUIT",
        })
    }
}

/// keepalived's `smtp_get_status`: the reply code of `line` when it is exactly three digits
/// followed by a space or the end of the line; `None` otherwise (a continuation `250-…`).
pub fn reply_code(line: &str) -> Option<u16> {
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

/// `SMTP_CHECK` with keepalived's semantics (see the module doc) against `target`, from
/// `bind` if given, greeting as `helo_name`; every step gets `timeout`.
pub async fn smtp(
    target: SocketAddr,
    bind: Option<IpAddr>,
    helo_name: &str,
    timeout: Duration,
) -> Result<SmtpOk, ProbeError> {
    check_family(bind, target.ip())?;
    let start = Instant::now();
    let stream = step(SmtpStep::Connect, timeout, connect(target, bind)).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    expect(&mut lines, &mut line, SmtpStep::Greeting, 220, timeout).await?;
    let helo = format!("HELO {helo_name}\r\n");
    step(SmtpStep::Helo, timeout, write_all(&mut write, &helo)).await?;
    expect(&mut lines, &mut line, SmtpStep::Helo, 250, timeout).await?;
    step(SmtpStep::Quit, timeout, write_all(&mut write, "QUIT\r\n")).await?;
    line.clear();
    step(SmtpStep::Quit, timeout, read_line(&mut lines, &mut line)).await?;
    Ok(SmtpOk {
        took: start.elapsed(),
    })
}

/// Reads the next line within `timeout`; it must carry reply code `code`.
async fn expect(
    lines: &mut BufReader<OwnedReadHalf>,
    line: &mut String,
    at: SmtpStep,
    code: u16,
    timeout: Duration,
) -> Result<(), ProbeError> {
    line.clear();
    step(at, timeout, read_line(lines, line)).await?;
    match reply_code(line) {
        Some(got) if got == code => Ok(()),
        _ => Err(ProbeError::SmtpReply {
            step: at,
            line: line.trim_end().chars().take(80).collect(),
        }),
    }
}

/// Runs one step within `timeout`.
async fn step<T>(
    at: SmtpStep,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ProbeError::SmtpTimeout { step: at, timeout })?
}

async fn connect(target: SocketAddr, bind: Option<IpAddr>) -> Result<TcpStream, ProbeError> {
    let socket = match bind {
        None => {
            return TcpStream::connect(target)
                .await
                .map_err(|e| ProbeError::Connect(target, e))
        }
        Some(ip) => {
            let domain = if ip.is_ipv4() {
                Domain::IPV4
            } else {
                Domain::IPV6
            };
            let raw =
                Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(setup("socket"))?;
            raw.set_nonblocking(true).map_err(setup("nonblocking"))?;
            raw.bind(&SocketAddr::new(ip, 0).into())
                .map_err(setup(format!("bind {ip}")))?;
            TcpSocket::from_std_stream(raw.into())
        }
    };
    socket
        .connect(target)
        .await
        .map_err(|e| ProbeError::Connect(target, e))
}

async fn read_line(
    lines: &mut BufReader<OwnedReadHalf>,
    line: &mut String,
) -> Result<(), ProbeError> {
    let mut limited = (&mut *lines).take(LINE_MAX as u64);
    let n = limited.read_line(line).await.map_err(ProbeError::Recv)?;
    if n == 0 {
        return Err(ProbeError::Closed);
    }
    if !line.ends_with('\n') {
        return Err(ProbeError::LineTooLong { max: LINE_MAX });
    }
    Ok(())
}

async fn write_all(write: &mut OwnedWriteHalf, text: &str) -> Result<(), ProbeError> {
    write
        .write_all(text.as_bytes())
        .await
        .map_err(ProbeError::Send)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

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

    /// A one-connection SMTP server speaking `script` (greeting, HELO answer, QUIT
    /// answer); returns what the client sent.
    async fn server(script: [&'static str; 3]) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            let mut heard = String::new();
            for reply in script {
                write.write_all(reply.as_bytes()).await.expect("write");
                let mut line = String::new();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                heard.push_str(&line);
            }
            heard
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_dialogue_greets_helos_and_quits() {
        let (addr, task) = server(["220 mx ESMTP\r\n", "250 mx\r\n", "221 bye\r\n"]).await;
        let t = Duration::from_secs(5);
        let ok = smtp(addr, None, "checker.example", t).await;
        assert!(ok.is_ok(), "{ok:?}");
        assert_eq!(
            task.await.expect("server"),
            "HELO checker.example\r\nQUIT\r\n"
        );
    }

    #[tokio::test]
    async fn bindto_sets_the_source_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let source = "127.0.0.2".parse().expect("ip");
        let client =
            tokio::spawn(
                async move { smtp(addr, Some(source), "c", Duration::from_millis(500)).await },
            );
        let (_stream, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer.ip(), source);
        let err = client.await.expect("client").expect_err("no greeting");
        assert!(matches!(err, ProbeError::SmtpTimeout { .. }), "{err}");
        let v6 = smtp(
            addr,
            Some("::1".parse().expect("ip")),
            "c",
            Duration::from_secs(1),
        )
        .await
        .expect_err("family");
        assert!(matches!(v6, ProbeError::FamilyMismatch { .. }), "{v6}");
    }

    #[tokio::test]
    async fn a_wrong_greeting_or_helo_answer_fails_with_the_line() {
        let t = Duration::from_secs(5);
        let (addr, _task) = server(["554 no service\r\n", "", ""]).await;
        let err = smtp(addr, None, "c", t).await.expect_err("554");
        assert_eq!(err.to_string(), "SMTP greeting answered '554 no service'");
        let (addr, _task) = server(["220 mx\r\n", "250-mx\r\n", ""]).await;
        let err = smtp(addr, None, "c", t).await.expect_err("multi-line");
        assert_eq!(err.to_string(), "SMTP HELO answered '250-mx'");
    }

    #[tokio::test]
    async fn a_closed_port_or_a_silent_server_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let err = smtp(addr, None, "c", Duration::from_millis(200))
            .await
            .expect_err("silent");
        assert_eq!(err.to_string(), "SMTP greeting: no answer within 200ms");
        drop(listener);
        let err = smtp(addr, None, "c", Duration::from_secs(5))
            .await
            .expect_err("closed");
        assert!(err.to_string().contains("refused"), "{err}");
    }
}

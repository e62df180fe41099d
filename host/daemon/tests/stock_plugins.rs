//! The stock plugins (`plugins/`) against real targets, through the real CLI
//! (`wasmalived plugin run --json`), with the daemon's sandbox and grants:
//!
//! - `http` against an HTTP server this test runs on 127.0.0.1 (status, body, timeout,
//!   refused, not granted);
//! - `tcp` against a listener on 127.0.0.1 (ok, refused, not granted);
//! - `smtp` against a scripted SMTP server on 127.0.0.1 (the dialogue, `bindto`, a wrong
//!   answer, not granted);
//! - `dns` against a UDP responder on 127.0.0.1 (answer, RCODE, closed port, not granted,
//!   no `udp` grant at all);
//!
//! `nginx-process` is tested in `stock_plugins_nginx.rs` (needs root). The plugins are built
//! for wasm32-wasip2 by `make plugins` (looked up next to the CLI's target dir, or in
//! `$WASMALIVED_PLUGIN_DIR`).

mod cli_support;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use cli_support::{args, closed_port, http_server, plugin_run, run, Reply, Run, CLI};

// ---------------------------------------------------------------------------------------------
// Running the CLI

/// `wasmalived plugin run PLUGIN ARGS... --json`.
fn run_plugin(name: &str, args: &[String]) -> Run {
    run(plugin_run(Command::new(CLI), name, args))
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// How long `/slow` waits before answering.
const SLOW: Duration = Duration::from_secs(3);

/// The test HTTP server's routes: `/ok` 200 "ok", `/down` 503, `/slow` 200 after [`SLOW`],
/// `/wrong-body` 200 "nope".
fn route(_method: &str, path: &str) -> Option<Reply> {
    Some(match path {
        "/ok" => (200, "OK", "ok"),
        "/down" => (503, "Service Unavailable", "down"),
        "/slow" => {
            thread::sleep(SLOW);
            (200, "OK", "ok")
        }
        "/wrong-body" => (200, "OK", "nope"),
        _ => (404, "Not Found", "not found"),
    })
}

fn http_check(addr: SocketAddr, path: &str, params: &[(&str, &str)], grant: &str) -> Run {
    let url = format!("http://{addr}{path}");
    let mut all = vec![("url", url.as_str())];
    all.extend_from_slice(params);
    run_plugin("http", &args(&all, &["--http", grant]))
}

#[test]
fn http_ok_with_status_body_and_latency() {
    let addr = http_server(route);
    let grant = format!("http://{addr}/");
    let r = http_check(addr, "/ok", &[("expect_body", "ok")], &grant);
    r.expect(0, "ok", "");
    assert_eq!(r.measurement("status"), 200.0, "{r}");
    assert!(r.measurement("latency_ms") >= 0.0, "{r}");
    // HEAD, and an explicit status list.
    let r = http_check(
        addr,
        "/ok",
        &[("method", "HEAD"), ("expect_status", "200,204")],
        &grant,
    );
    r.expect(0, "ok", "");
}

#[test]
fn http_unexpected_status_fails() {
    let addr = http_server(route);
    let grant = addr.to_string();
    http_check(addr, "/down", &[], &grant).expect(1, "fail", "status 503 not in 200-399");
    http_check(addr, "/down", &[("expect_status", "200,204")], &grant).expect(
        1,
        "fail",
        "status 503 not in 200,204",
    );
    let r = http_check(addr, "/down", &[("expect_status", "500-599")], &grant);
    r.expect(0, "ok", "");
    assert_eq!(r.measurement("status"), 503.0, "{r}");
}

#[test]
fn http_body_mismatch_fails() {
    let addr = http_server(route);
    let r = http_check(
        addr,
        "/wrong-body",
        &[("expect_body", "ok")],
        &addr.to_string(),
    );
    r.expect(1, "fail", "body lacks \"ok\"");
}

#[test]
fn http_slow_answer_times_out() {
    let addr = http_server(route);
    let started = Instant::now();
    let r = http_check(addr, "/slow", &[("timeout_ms", "500")], &addr.to_string());
    r.expect(1, "fail", "timeout after 500ms");
    assert!(
        started.elapsed() < SLOW,
        "gave up only after {:?}; {r}",
        started.elapsed()
    );
}

#[test]
fn http_refused_connection_fails() {
    let port = closed_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    http_check(addr, "/ok", &[], &addr.to_string()).expect(1, "fail", "connection refused");
}

#[test]
fn http_ungranted_url_is_denied() {
    let addr = http_server(route);
    // Granted only /ok: another path on the same server is denied by the host.
    let grant = format!("http://{addr}/ok");
    http_check(addr, "/ok", &[], &grant).expect(0, "ok", "");
    http_check(addr, "/down", &[], &grant).expect(1, "fail", "request denied");
    // Granted another host entirely.
    http_check(addr, "/ok", &[], "192.0.2.1:80").expect(1, "fail", "request denied");
}

// ---------------------------------------------------------------------------------------------
// TCP

fn tcp_check(address: &str, grant: &str) -> Run {
    run_plugin(
        "tcp",
        &args(
            &[("address", address), ("timeout_ms", "1000")],
            &["--tcp", grant],
        ),
    )
}

#[test]
fn tcp_connects_to_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let r = tcp_check(&addr, &addr);
    r.expect(0, "ok", "");
    assert!(r.measurement("latency_ms") >= 0.0, "{r}");
    // host + port form.
    let port = listener
        .local_addr()
        .expect("local addr")
        .port()
        .to_string();
    let r = run_plugin(
        "tcp",
        &args(&[("host", "127.0.0.1"), ("port", &port)], &["--tcp", &addr]),
    );
    r.expect(0, "ok", "");
}

/// The daemon makes the stock check's connect (`probe.tcp-connect`): an orderly close by
/// default, a reset with `close reset` (what the server reads: end of stream, or a reset).
#[test]
fn tcp_closes_with_a_fin_or_with_a_reset_when_asked() {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    for (close, reset) in [("fin", false), ("reset", true)] {
        let r = run_plugin(
            "tcp",
            &args(&[("address", &addr), ("close", close)], &["--tcp", &addr]),
        );
        r.expect(0, "ok", "");
        let (mut accepted, _) = listener.accept().expect("accept");
        accepted
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        match accepted.read(&mut [0u8; 1]) {
            Ok(0) => assert!(!reset, "close {close}: the server read an orderly end"),
            Err(e) => {
                assert!(reset, "close {close}: {e}");
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            }
            Ok(n) => panic!("close {close}: the check sent {n} bytes"),
        }
    }
}

#[test]
fn tcp_closed_port_is_refused() {
    let addr = format!("127.0.0.1:{}", closed_port());
    tcp_check(&addr, &addr).expect(1, "fail", "connection refused");
}

#[test]
fn tcp_ungranted_address_is_denied() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let other = format!("127.0.0.1:{}", closed_port());
    tcp_check(&addr, &other).expect(1, "fail", "access denied");
}

#[test]
fn tcp_bad_parameters_fail_clearly() {
    tcp_check("localhost:80", "127.0.0.1:80").expect(1, "fail", "bad parameter address");
}

#[test]
fn tcp_bind_connects_from_the_granted_source_only() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let accepted = thread::spawn(move || {
        let (_, peer) = listener.accept().expect("accept");
        peer.ip().to_string()
    });
    let params = [("address", addr.as_str()), ("bind", "127.0.0.2")];
    run_plugin(
        "tcp",
        &args(&params, &["--tcp", &addr, "--source", "127.0.0.2"]),
    )
    .expect(0, "ok", "");
    assert_eq!(accepted.join().expect("listener"), "127.0.0.2");
    // Without the source grant the bind is refused by the host.
    run_plugin("tcp", &args(&params, &["--tcp", &addr])).expect(1, "fail", "access denied");
}

// ---------------------------------------------------------------------------------------------
// SMTP (keepalived's SMTP_CHECK dialogue over a granted TCP connection)

/// A one-connection SMTP server on 127.0.0.1 that says `script` (greeting, answer to the
/// first line, answer to the second); returns its address and what the client said.
fn smtp_server(script: [&'static str; 3]) -> (SocketAddr, thread::JoinHandle<(String, String)>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = thread::spawn(move || {
        let (mut stream, peer) = listener.accept().expect("accept");
        let mut lines = BufReader::new(stream.try_clone().expect("clone"));
        let mut heard = String::new();
        for reply in script {
            stream.write_all(reply.as_bytes()).expect("write");
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            heard.push_str(&line);
        }
        (heard, peer.ip().to_string())
    });
    (addr, server)
}

#[test]
fn smtp_dialogue_runs_over_the_granted_connection_from_bindto() {
    let (addr, server) = smtp_server(["220 mx ESMTP\r\n", "250 mx\r\n", "221 bye\r\n"]);
    let addr = addr.to_string();
    let params = [
        ("address", addr.as_str()),
        ("helo_name", "checker.example"),
        ("bind", "127.0.0.2"),
    ];
    let r = run_plugin(
        "smtp",
        &args(&params, &["--tcp", &addr, "--source", "127.0.0.2"]),
    );
    r.expect(0, "ok", "");
    let (heard, peer) = server.join().expect("server");
    assert_eq!(heard, "HELO checker.example\r\nQUIT\r\n");
    assert_eq!(peer, "127.0.0.2");
}

#[test]
fn smtp_wrong_answers_fail_with_the_line_and_ungranted_servers_are_denied() {
    let (addr, _server) = smtp_server(["220 mx\r\n", "250-mx\r\n", ""]);
    let addr = addr.to_string();
    let params = [("address", addr.as_str()), ("helo_name", "c")];
    run_plugin("smtp", &args(&params, &["--tcp", &addr])).expect(
        1,
        "fail",
        "SMTP HELO answered '250-mx'",
    );
    let other = format!("127.0.0.1:{}", closed_port());
    run_plugin("smtp", &args(&params, &["--tcp", &other])).expect(1, "fail", "access denied");
}

// ---------------------------------------------------------------------------------------------
// DNS (keepalived's DNS_CHECK over a granted UDP socket)

/// A DNS server on 127.0.0.1 that answers one query with `rcode` (the query echoed with QR
/// set), after a stray response with another ID.
fn dns_server(rcode: u8) -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("local addr");
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (len, from) = socket.recv_from(&mut buf).expect("query");
        let mut stray = buf[..len].to_vec();
        stray[0] ^= 0xff;
        stray[2] |= 0x80;
        socket.send_to(&stray, from).expect("stray");
        buf[2] |= 0x80;
        buf[3] |= rcode;
        socket.send_to(&buf[..len], from).expect("answer");
    });
    addr
}

#[test]
fn dns_query_is_answered_over_the_granted_socket() {
    let addr = dns_server(0).to_string();
    let params = [
        ("address", addr.as_str()),
        ("name", "www.example.test"),
        ("qtype", "A"),
    ];
    let r = run_plugin("dns", &args(&params, &["--udp", &addr]));
    r.expect(0, "ok", "");
    assert!(r.measurement("rtt_ms") >= 0.0, "{r}");
    let addr = dns_server(3).to_string();
    let params = [("address", addr.as_str()), ("name", ".")];
    run_plugin("dns", &args(&params, &["--udp", &addr])).expect(1, "fail", "answer with RCODE 3");
}

#[test]
fn dns_closed_port_fails_and_ungranted_servers_are_denied() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let params = [
        ("address", addr.as_str()),
        ("name", "."),
        ("timeout_ms", "2000"),
    ];
    run_plugin("dns", &args(&params, &["--udp", &addr])).expect(1, "fail", "refused");
    let granted = format!("127.0.0.1:{}", closed_port());
    run_plugin("dns", &args(&params, &["--udp", &granted])).expect(1, "fail", "access denied");
    // Without any udp grant the plugin does not load: it imports wasi:sockets/udp.
    let r = run_plugin("dns", &args(&params, &[]));
    assert!(
        r.code == Some(3) && r.to_string().contains("not granted `udp`"),
        "{r}"
    );
}

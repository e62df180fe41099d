//! The stock plugins (`plugins/`) against real targets, through the real CLI
//! (`wasmalived plugin run --json`), with the daemon's sandbox and grants:
//!
//! - `http` against an HTTP server this test runs on 127.0.0.1 (status, body, timeout,
//!   refused, not granted);
//! - `tcp` against a listener on 127.0.0.1 (ok, refused, not granted);
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

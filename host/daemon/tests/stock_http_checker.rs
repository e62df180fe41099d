//! The stock `http` plugin as keepalived's `HTTP_GET`/`SSL_GET` checker, through the real CLI:
//! the body's MD5 (`digest`), a virtual host requested from a real server's address
//! (`--resolve`, the pins the LVS director sets), and HTTPS with the three trust policies
//! (keepalived's unverified `SSL_GET`, a CA file, the default web roots) and SNI.

mod cli_support;

use md5::{Digest, Md5};

use cli_support::{answering_server, args, https_server, run_plugin, Run, Seen, TestPki};

/// Answers 200 with the `Host` header the request carried as the body.
fn echo_host(seen: &Seen) -> (u16, String) {
    (200, seen.host.clone())
}

/// Answers 200 with the SNI the TLS client sent (`-` for none) and the `Host` header.
fn echo_sni(seen: &Seen) -> (u16, String) {
    let sni = seen.sni.as_deref().unwrap_or("-");
    (200, format!("sni={sni} host={}", seen.host))
}

fn http(url: &str, params: &[(&str, &str)], flags: &[&str]) -> Run {
    let mut all = vec![("url", url)];
    all.extend_from_slice(params);
    run_plugin("http", &args(&all, flags))
}

#[test]
fn digest_of_the_body_must_match() {
    let addr = answering_server("127.0.0.1", echo_host);
    let url = format!("http://{addr}/");
    let grant = addr.to_string();
    // The body is the Host header the plugin sent: `127.0.0.1:PORT`.
    let good: String = Md5::digest(addr.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    http(&url, &[("expect_digest", &good)], &["--http", &grant]).expect(0, "ok", "");
    let upper = good.to_ascii_uppercase();
    http(&url, &[("expect_digest", &upper)], &["--http", &grant]).expect(0, "ok", "");
    let wrong = "0123456789abcdef0123456789abcdef";
    http(&url, &[("expect_digest", wrong)], &["--http", &grant]).expect(1, "fail", "digest");
    http(&url, &[("expect_digest", "xyz")], &["--http", &grant]).expect(1, "fail", "expect_digest");
}

#[test]
fn a_virtual_host_is_requested_from_the_pinned_address() {
    let addr = answering_server("127.0.0.1", echo_host);
    let port = addr.port();
    let url = format!("http://www.example.test:{port}/");
    let pin = format!("www.example.test:{port}:127.0.0.1");
    let grant = format!("www.example.test:{port}");
    let expected = format!("www.example.test:{port}");
    http(
        &url,
        &[("expect_body", &expected)],
        &["--http", &grant, "--resolve", &pin],
    )
    .expect(0, "ok", "");
    // Without the pin the name does not resolve: the request fails, nothing is sent elsewhere.
    http(&url, &[], &["--http", &grant]).expect(1, "fail", "name resolution failed");
    // A pin does not grant: the URL must still be allowed.
    http(&url, &[], &["--resolve", &pin]).expect(1, "fail", "request denied");
}

#[test]
fn https_trust_policies() {
    let pki = TestPki::new(&["www.example.test"]);
    let addr = https_server(&pki, echo_sni);
    let port = addr.port();
    let url = format!("https://www.example.test:{port}/");
    let pin = format!("www.example.test:{port}:127.0.0.1");
    let grant = format!("www.example.test:{port}");
    let base = ["--http", grant.as_str(), "--resolve", pin.as_str()];

    // Default: the web roots do not know the test CA.
    http(&url, &[], &base).expect(1, "fail", "TLS: server certificate not trusted");

    // keepalived's SSL_GET: any certificate.
    let mut insecure = base.to_vec();
    insecure.push("--insecure");
    let expected = format!("sni=www.example.test host=www.example.test:{port}");
    http(&url, &[("expect_body", &expected)], &insecure).expect(0, "ok", "");

    // The test CA, by file.
    let dir = wasmalived_testkit::TempDir::new("http-ca");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write CA");
    let ca = ca.to_str().expect("utf-8").to_string();
    let mut with_ca = base.to_vec();
    with_ca.extend(["--cacert", ca.as_str()]);
    http(&url, &[("expect_body", &expected)], &with_ca).expect(0, "ok", "");

    // The name is verified too: the same server asked for another name fails.
    let other_url = format!("https://other.example.test:{port}/");
    let other_pin = format!("other.example.test:{port}:127.0.0.1");
    let other_grant = format!("other.example.test:{port}");
    http(
        &other_url,
        &[],
        &[
            "--http",
            &other_grant,
            "--resolve",
            &other_pin,
            "--cacert",
            &ca,
        ],
    )
    .expect(1, "fail", "TLS: server certificate not trusted");

    // No SNI on request.
    let mut no_sni = insecure.clone();
    no_sni.push("--no-sni");
    let expected = format!("sni=- host=www.example.test:{port}");
    http(&url, &[("expect_body", &expected)], &no_sni).expect(0, "ok", "");
}

/// Answers 200 with the client's address.
fn echo_peer(seen: &Seen) -> (u16, String) {
    (
        200,
        seen.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
    )
}

#[test]
fn requests_leave_from_the_source_address_when_given() {
    let addr = answering_server("127.0.0.1", echo_peer);
    let url = format!("http://{addr}/");
    let grant = addr.to_string();
    http(
        &url,
        &[("expect_body", "127.0.0.2")],
        &["--http", &grant, "--source", "127.0.0.2"],
    )
    .expect(0, "ok", "");
    http(&url, &[("expect_body", "127.0.0.1")], &["--http", &grant]).expect(0, "ok", "");
}

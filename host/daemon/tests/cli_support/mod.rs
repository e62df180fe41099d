//! Shared helpers of the tests that run plugins through the real CLI
//! (`wasmalived plugin run --json`): the built plugins' paths, the command line, one run's
//! result, and local targets (a closed port, a tiny HTTP server).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// The CLI binary.
pub const CLI: &str = env!("CARGO_BIN_EXE_wasmalived");

/// The built plugin `plugin_<name>.wasm`; panics with the fix if it is missing.
///
/// Looked up in `$WASMALIVED_PLUGIN_DIR`, else next to the CLI's target dir.
pub fn plugin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("WASMALIVED_PLUGIN_DIR") {
        Some(d) => PathBuf::from(d),
        // CLI is <target>/<profile>/wasmalived; plugins are in <target>/wasm32-wasip2/debug/.
        None => Path::new(CLI)
            .ancestors()
            .nth(2)
            .expect("target dir above the CLI binary")
            .join("wasm32-wasip2/debug"),
    };
    let path = dir.join(format!("plugin_{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} is missing: run `make plugins` first (or set WASMALIVED_PLUGIN_DIR)",
        path.display()
    );
    path
}

/// `["--param", "k=v", ...]` from pairs, plus extra flags.
pub fn args(params: &[(&str, &str)], flags: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for (k, val) in params {
        v.push("--param".to_string());
        v.push(format!("{k}={val}"));
    }
    v.extend(flags.iter().map(|s| s.to_string()));
    v
}

/// `cmd plugin run PLUGIN ARGS... --json`, where `cmd` runs the CLI (directly, or through
/// a wrapper such as `ip netns exec`).
pub fn plugin_run(mut cmd: Command, name: &str, args: &[String]) -> Command {
    cmd.arg("plugin")
        .arg("run")
        .arg(plugin(name))
        .args(args)
        .arg("--json");
    cmd
}

/// `wasmalived plugin run PLUGIN ARGS... --json`, not yet started.
pub fn command(name: &str, args: &[String]) -> Command {
    plugin_run(Command::new(CLI), name, args)
}

/// Run `cmd` to completion.
pub fn run(mut cmd: Command) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {CLI}: {e}"));
    Run::from_output(&out)
}

/// `wasmalived plugin run PLUGIN ARGS... --json`, one run.
pub fn run_plugin(name: &str, args: &[String]) -> Run {
    run(command(name, args))
}

/// One run's result: the JSON line (`--json`) and the process's exit status.
pub struct Run {
    /// Exit status (`None` for a line read from a run still going, or a signal).
    pub code: Option<i32>,
    /// The JSON line; `Null` when there was none.
    pub json: Value,
    /// What the process printed, for failure messages.
    stdout: String,
    stderr: String,
}

impl Run {
    /// From one JSON line of a run (and what it printed on stderr, if known).
    pub fn from_line(code: Option<i32>, line: &str, stderr: &str) -> Run {
        Run {
            code,
            json: serde_json::from_str(line).unwrap_or(Value::Null),
            stdout: format!("{line}\n"),
            stderr: stderr.to_string(),
        }
    }

    /// From a finished process: its last JSON line.
    pub fn from_output(out: &Output) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or("");
        let mut r = Run::from_line(out.status.code(), line, &stderr);
        r.stdout = stdout;
        r
    }

    /// String field `key` of the JSON line; empty when absent.
    pub fn str(&self, key: &str) -> &str {
        self.json
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn verdict(&self) -> &str {
        self.str("verdict")
    }

    pub fn reason(&self) -> &str {
        self.str("reason")
    }

    pub fn message(&self) -> &str {
        self.str("message")
    }

    /// Measurement `name`; panics when absent.
    pub fn measurement(&self, name: &str) -> f64 {
        self.json
            .get("measurements")
            .and_then(|m| m.get(name))
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("no measurement `{name}`; {self}"))
    }

    /// Assert the exit status and verdict, and that the reason contains `reason`.
    pub fn expect(&self, code: i32, verdict: &str, reason: &str) -> &Run {
        assert_eq!(self.code, Some(code), "exit status; {self}");
        assert_eq!(self.verdict(), verdict, "verdict; {self}");
        assert!(
            self.reason().contains(reason),
            "reason should contain {reason:?}; {self}"
        );
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code,
            self.stdout,
            self.stderr.chars().take(4000).collect::<String>()
        )
    }
}

/// A local port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A test HTTP server's answer: status code, reason phrase, body.
pub type Reply = (u16, &'static str, &'static str);

/// Start a tiny HTTP/1.1 server on 127.0.0.1; it lives until the test process exits.
/// `route(method, path)` answers each request (it may sleep first, to be slow); `None`
/// closes the connection without an answer. A `HEAD` gets the headers only.
pub fn http_server(route: fn(&str, &str) -> Option<Reply>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test HTTP server");
    let addr = listener.local_addr().expect("local addr");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream, route));
        }
    });
    addr
}

fn serve(stream: TcpStream, route: fn(&str, &str) -> Option<Reply>) {
    // Errors just drop the connection: the plugin then reports it, which a test would catch.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let Some((code, text, body)) = route(method, path) else {
        return;
    };
    let response = format!(
        "HTTP/1.1 {code} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{}",
        body.len(),
        if method == "HEAD" { "" } else { body }
    );
    let _ = (&stream).write_all(response.as_bytes());
    let _ = (&stream).flush();
    // Drain so the client never sees a reset before reading the response.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = reader.read_to_end(&mut Vec::new());
}

/// One request as the test servers see it: method, path and the `Host` header.
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: String,
    /// The TLS server name the client sent (HTTPS only).
    pub sni: Option<String>,
    /// The client's address and port.
    pub peer: Option<SocketAddr>,
}

/// Read a request head from `reader`.
fn read_head(reader: &mut impl BufRead) -> Option<Seen> {
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut host = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("host") {
                host = value.trim().to_string();
            }
        }
        line.clear();
    }
    Some(Seen {
        method,
        path,
        host,
        sni: None,
        peer: None,
    })
}

/// An answer built from the request: status, body.
pub type Answer = fn(&Seen) -> (u16, String);

fn write_answer(mut w: impl Write, seen: &Seen, answer: Answer) {
    let (code, body) = answer(seen);
    let response = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{}",
        body.len(),
        if seen.method == "HEAD" { "" } else { &body }
    );
    let _ = w.write_all(response.as_bytes());
    let _ = w.flush();
}

/// A plain HTTP server on `ip`:0 answering with `answer`; lives until the process exits.
pub fn answering_server(ip: &str, answer: Answer) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).expect("bind the test HTTP server");
    let addr = listener.local_addr().expect("local addr");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(&stream);
                if let Some(mut seen) = read_head(&mut reader) {
                    seen.peer = stream.peer_addr().ok();
                    write_answer(&stream, &seen, answer);
                }
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let _ = reader.read_to_end(&mut Vec::new());
            });
        }
    });
    addr
}

/// A fresh CA (PEM) and a server certificate it signed for `names`, with the key.
pub struct TestPki {
    pub ca_pem: String,
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl TestPki {
    pub fn new(names: &[&str]) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        TestPki {
            ca_pem: ca.pem(),
            chain: vec![cert.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }
}

/// An HTTPS server on 127.0.0.1:0 with `pki`'s certificate, answering with `answer` (which
/// sees the SNI the client sent); lives until the process exits.
pub fn https_server(pki: &TestPki, answer: Answer) -> SocketAddr {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .expect("server config");
    let config = std::sync::Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test HTTPS server");
    let addr = listener.local_addr().expect("local addr");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let conn = rustls::ServerConnection::new(config).expect("TLS session");
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut reader = BufReader::new(&mut tls);
                let Some(mut seen) = read_head(&mut reader) else {
                    return;
                };
                drop(reader);
                seen.sni = tls.conn.server_name().map(str::to_owned);
                write_answer(&mut tls, &seen, answer);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

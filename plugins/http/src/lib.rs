//! `http`: healthy when a GET (or HEAD) of a URL answers with an expected status, and
//! optionally a body containing a given substring, within a timeout.
//!
//! # Parameters
//! | key             | default   | meaning                                                     |
//! |-----------------|-----------|-------------------------------------------------------------|
//! | `url`           | —         | `http://HOST[:PORT][/PATH[?QUERY]]` (or `https://`)          |
//! | `method`        | `GET`     | `GET` or `HEAD`                                             |
//! | `timeout_ms`    | `2000`    | the whole exchange (connect, response, body) must fit       |
//! | `expect_status` | `200-399` | ranges and/or codes, comma-separated: `200`, `200,204`, `200-299,301` |
//! | `expect_body`   | —         | a substring the body must contain (read up to 1 MiB)        |
//! | `expect_digest` | —         | the MD5 of the whole body, 32 hex digits (keepalived's HTTP_GET `digest`; bodies up to 16 MiB) |
//!
//! # Grants
//! `http URL_OR_HOST` covering `url`; any other target is denied by the host.
//!
//! # Verdicts
//! - `ok` — measurements `status` and `latency_ms` (request sent to body read).
//! - `fail` — `status 503 not in 200-399`, `body lacks "ok"`, `digest 1a… is not 64…`,
//!   `timeout after 500ms`,
//!   `connection refused`, `request denied (URL not granted)`, or a bad parameter. The
//!   measurements present so far (`status`, `latency_ms`) are reported with failures too.
wit_bindgen::generate!({ path: "../../wit", world: "check-plugin" });

mod digest;
mod expect;

use exports::wasmalived::plugin::check::Guest;
use plugin_guest_util::url::Url;
use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::StreamError;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

use expect::StatusSet;

/// Default time budget for the whole exchange.
const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// Default accepted statuses.
const DEFAULT_EXPECT_STATUS: &str = "200-399";
/// At most this much of the body is read when looking for `expect_body`.
const MAX_BODY: usize = 1024 * 1024;
/// At most this much of the body is hashed for `expect_digest` (a longer one fails).
const MAX_DIGEST_BODY: usize = 16 * 1024 * 1024;
/// Read chunk size.
const CHUNK: u64 = 16 * 1024;

struct Http;

impl Guest for Http {
    fn check(params: Params) -> Verdict {
        let config = match Config::from_params(&params) {
            Ok(c) => c,
            Err(e) => {
                return Verdict {
                    status: Status::Fail(e),
                    message: None,
                    measurements: vec![],
                }
            }
        };
        let mut measurements = Vec::new();
        let status = match run(&config, &mut measurements) {
            Ok(()) => Status::Ok,
            Err(reason) => Status::Fail(reason),
        };
        Verdict {
            status,
            message: None,
            measurements,
        }
    }
}

/// The check's parameters, parsed.
struct Config {
    url: Url,
    head: bool,
    timeout_ms: u64,
    expect_status: StatusSet,
    expect_body: Option<String>,
    expect_digest: Option<String>,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, String> {
        let get = |k: &str| plugin_guest_util::param(params, k);
        let url = get("url").ok_or("parameter `url` is required")?;
        let url = Url::parse(url).map_err(|e| format!("bad parameter url=`{url}`: {e}"))?;
        let head = match get("method").map(str::to_ascii_uppercase).as_deref() {
            None | Some("GET") => false,
            Some("HEAD") => true,
            Some(m) => return Err(format!("bad parameter method=`{m}`: GET or HEAD")),
        };
        let timeout_ms = match get("timeout_ms") {
            None => DEFAULT_TIMEOUT_MS,
            Some(t) => t
                .parse()
                .map_err(|_| format!("bad parameter timeout_ms=`{t}`"))?,
        };
        let expect = get("expect_status").unwrap_or(DEFAULT_EXPECT_STATUS);
        let expect_status = StatusSet::parse(expect)
            .map_err(|e| format!("bad parameter expect_status=`{expect}`: {e}"))?;
        let expect_body = get("expect_body").map(str::to_string);
        let expect_digest = match get("expect_digest") {
            None => None,
            Some(d) if d.len() == 32 && d.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(d.to_ascii_lowercase())
            }
            Some(d) => {
                return Err(format!(
                    "bad parameter expect_digest=`{d}`: the MD5 of the body, 32 hex digits"
                ))
            }
        };
        if head && (expect_body.is_some() || expect_digest.is_some()) {
            return Err(
                "`expect_body` and `expect_digest` need method GET (HEAD has no body)".into(),
            );
        }
        Ok(Config {
            url,
            head,
            timeout_ms,
            expect_status,
            expect_body,
            expect_digest,
        })
    }
}

/// Send the request and judge the answer; push measurements as they become known.
fn run(config: &Config, measurements: &mut Vec<Measurement>) -> Result<(), String> {
    let start = monotonic_clock::now();
    let timeout_ns = config.timeout_ms.saturating_mul(1_000_000);
    let deadline = monotonic_clock::subscribe_duration(timeout_ns);
    let timed_out = || format!("timeout after {}ms", config.timeout_ms);

    let request = OutgoingRequest::new(Fields::new());
    let method = if config.head {
        Method::Head
    } else {
        Method::Get
    };
    let scheme = if config.url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request.set_method(&method).map_err(|()| "method refused")?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "scheme refused")?;
    request
        .set_authority(Some(&config.url.authority))
        .map_err(|()| "bad authority")?;
    request
        .set_path_with_query(Some(&config.url.path))
        .map_err(|()| "bad path")?;
    let options = RequestOptions::new();
    // Best effort: the host may not support every timeout; the deadline below still holds.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));

    let pending = outgoing_handler::handle(request, Some(options))
        .map_err(|e| describe(&e, config.timeout_ms))?;
    let response = {
        let ready = pending.subscribe();
        if !wait(&ready, &deadline) {
            return Err(timed_out());
        }
        match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(describe(&e, config.timeout_ms)),
            Some(Err(())) | None => return Err("response already taken".into()),
        }
    };
    let status = response.status();
    measurements.push(Measurement {
        name: "status".into(),
        value: f64::from(status),
    });

    let limit = if config.expect_digest.is_some() {
        MAX_DIGEST_BODY
    } else {
        MAX_BODY
    };
    let body = if config.expect_body.is_some() || config.expect_digest.is_some() {
        Some(read_body(&response, &deadline, limit).ok_or_else(timed_out)??)
    } else {
        None
    };
    let latency_ms = monotonic_clock::now().saturating_sub(start) as f64 / 1e6;
    measurements.push(Measurement {
        name: "latency_ms".into(),
        value: latency_ms,
    });

    if !config.expect_status.contains(status) {
        return Err(format!("status {status} not in {}", config.expect_status));
    }
    if let (Some(needle), Some(body)) = (&config.expect_body, &body) {
        if !contains(body, needle.as_bytes()) {
            return Err(format!("body lacks {needle:?}"));
        }
    }
    if let (Some(expected), Some(body)) = (&config.expect_digest, &body) {
        if body.len() >= MAX_DIGEST_BODY {
            return Err(format!(
                "body longer than {MAX_DIGEST_BODY} bytes: not hashed"
            ));
        }
        let got = digest::md5_hex(body);
        if &got != expected {
            return Err(format!("digest {got} is not {expected}"));
        }
    }
    Ok(())
}

/// Block until `ready` or `deadline` fires; true if `ready` did.
fn wait(ready: &Pollable, deadline: &Pollable) -> bool {
    poll::poll(&[ready, deadline]).contains(&0)
}

/// Read up to `limit` bytes of the body. `None` on timeout.
fn read_body(
    response: &IncomingResponse,
    deadline: &Pollable,
    limit: usize,
) -> Option<Result<Vec<u8>, String>> {
    let body = match response.consume() {
        Ok(b) => b,
        Err(()) => return Some(Err("response body already consumed".into())),
    };
    let stream = match body.stream() {
        Ok(s) => s,
        Err(()) => return Some(Err("response body stream unavailable".into())),
    };
    let mut data = Vec::new();
    let outcome = {
        let ready = stream.subscribe();
        loop {
            if data.len() >= limit {
                break Some(Ok(()));
            }
            match stream.read(CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    if !wait(&ready, deadline) {
                        break None;
                    }
                }
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break Some(Ok(())),
                Err(StreamError::LastOperationFailed(e)) => {
                    break Some(Err(format!("reading body: {}", e.to_debug_string())));
                }
            }
        }
    };
    // The stream (a child of the body) is dropped before the body.
    drop(stream);
    drop(body);
    outcome.map(|r| r.map(|()| data))
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short reason for a wasi:http error. The host's own timeouts are set to the check's, so
/// they read the same as the deadline's.
fn describe(e: &ErrorCode, timeout_ms: u64) -> String {
    match e {
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::HttpRequestDenied => "request denied (URL not granted)".into(),
        ErrorCode::ConnectionTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::ConnectionReadTimeout => format!("timeout after {timeout_ms}ms"),
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout => "name resolution failed".into(),
        ErrorCode::DestinationNotFound => "destination not found".into(),
        ErrorCode::DestinationUnavailable => "destination unavailable".into(),
        ErrorCode::ConnectionTerminated => "connection closed by the server".into(),
        ErrorCode::TlsCertificateError => "TLS: server certificate not trusted".into(),
        ErrorCode::TlsProtocolError => "TLS handshake failed".into(),
        ErrorCode::TlsAlertReceived(a) => format!(
            "TLS alert from the server: {}",
            a.alert_message.as_deref().unwrap_or("unknown")
        ),
        ErrorCode::InternalError(Some(m)) => format!("error: {m}"),
        other => format!("{other:?}")
            .trim_start_matches("ErrorCode::")
            .to_string(),
    }
}

export!(Http);

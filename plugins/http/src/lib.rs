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
//!   `timeout after 500ms`, `TLS: server certificate not trusted`,
//!   `connection refused`, `request denied (URL not granted)`, or a bad parameter. The
//!   measurements present so far (`status`, `latency_ms`) are reported with failures too.
mod digest;
mod expect;

use std::time::Duration;

use wasmalived_plugin_sdk::net::{self, BodyError, HttpError, HttpRequest, Method, NetError};
use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Url, Verdict};

use expect::StatusSet;

/// Default time budget for the whole exchange.
const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// Default accepted statuses.
const DEFAULT_EXPECT_STATUS: &str = "200-399";
/// At most this much of the body is read when looking for `expect_body`.
const MAX_BODY: usize = 1024 * 1024;
/// At most this much of the body is hashed for `expect_digest` (a longer one fails).
const MAX_DIGEST_BODY: usize = 16 * 1024 * 1024;

/// The check.
pub struct Http;

impl Check for Http {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        let config = match Config::from_params(params) {
            Ok(c) => c,
            Err(e) => return Verdict::fail(e),
        };
        let mut verdict = Verdict::ok();
        if let Err(reason) = run(host, &config, &mut verdict) {
            verdict.status = wasmalived_plugin_sdk::Status::Fail(reason);
        }
        verdict
    }
}

export_check!(Http);

/// The check's parameters, parsed.
struct Config {
    url: Url,
    head: bool,
    timeout_ms: u64,
    expect_status: StatusSet,
    expect_body: Option<String>,
    /// Lower-case hex MD5 of the whole body.
    expect_digest: Option<String>,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, ParamError> {
        let url = params.get("url").ok_or(ParamError::missing("url"))?;
        let url = Url::parse(url).map_err(|e| ParamError::invalid("url", url, Some(e)))?;
        let head = match params.get("method").map(str::to_ascii_uppercase).as_deref() {
            None | Some("GET") => false,
            Some("HEAD") => true,
            Some(m) => return Err(ParamError::invalid("method", m, Some("GET or HEAD"))),
        };
        let timeout_ms = params
            .value("timeout_ms")
            .no_hint()
            .default(DEFAULT_TIMEOUT_MS)?;
        let expect = params.get("expect_status").unwrap_or(DEFAULT_EXPECT_STATUS);
        let expect_status = StatusSet::parse(expect)
            .map_err(|e| ParamError::invalid("expect_status", expect, Some(&e)))?;
        let expect_body = params.get("expect_body").map(str::to_string);
        let expect_digest = match params.get("expect_digest") {
            None => None,
            Some(d) if d.len() == 32 && d.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(d.to_ascii_lowercase())
            }
            Some(d) => {
                return Err(ParamError::invalid(
                    "expect_digest",
                    d,
                    Some("the MD5 of the body, 32 hex digits"),
                ))
            }
        };
        if head && (expect_body.is_some() || expect_digest.is_some()) {
            return Err(ParamError::Other(
                "`expect_body` and `expect_digest` need method GET (HEAD has no body)".into(),
            ));
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

/// Send the request and judge the answer; add measurements to `verdict` as they become
/// known (a failure keeps the ones found so far).
fn run(host: &impl Host, config: &Config, verdict: &mut Verdict) -> Result<(), String> {
    let start = host.monotonic();
    let method = if config.head {
        Method::Head
    } else {
        Method::Get
    };
    let mut request = HttpRequest::new(method, config.url.clone());
    if config.expect_digest.is_some() {
        // One byte more than hashed: a longer body is told apart from one of the limit.
        request = request.read_body(MAX_DIGEST_BODY + 1);
    } else if config.expect_body.is_some() {
        request = request.read_body(MAX_BODY);
    }
    let timeout = Duration::from_millis(config.timeout_ms);
    let response =
        net::fetch(host, request, timeout).map_err(|e| describe(&e, config.timeout_ms))?;
    let status = response.status;
    verdict
        .measurements
        .push(measurement("status", f64::from(status)));

    let body = match response.body {
        None => None,
        Some(Ok(body)) => Some(body),
        Some(Err(BodyError::Deadline)) => return Err(timed_out(config.timeout_ms)),
        Some(Err(BodyError::Read(e))) => return Err(format!("reading body: {e}")),
    };
    let latency_ms = host.elapsed_since(start).as_nanos() as f64 / 1e6;
    verdict
        .measurements
        .push(measurement("latency_ms", latency_ms));

    if !config.expect_status.contains(status) {
        return Err(format!("status {status} not in {}", config.expect_status));
    }
    if let (Some(needle), Some(body)) = (&config.expect_body, &body) {
        let searched = &body[..body.len().min(MAX_BODY)];
        if !contains(searched, needle.as_bytes()) {
            return Err(format!("body lacks {needle:?}"));
        }
    }
    if let (Some(want), Some(body)) = (&config.expect_digest, &body) {
        if body.len() > MAX_DIGEST_BODY {
            return Err(format!(
                "body longer than {} MiB: not hashed",
                MAX_DIGEST_BODY >> 20
            ));
        }
        let got = digest::md5_hex(body);
        if got != *want {
            return Err(format!("digest {got} is not {want}"));
        }
    }
    Ok(())
}

fn measurement(name: &str, value: f64) -> wasmalived_plugin_sdk::Measurement {
    wasmalived_plugin_sdk::Measurement::new(name, value)
}

fn timed_out(timeout_ms: u64) -> String {
    format!("timeout after {timeout_ms}ms")
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short reason for a failed request. The host's own timeouts are set to the check's, so
/// they read the same as the deadline's.
fn describe(e: &NetError, timeout_ms: u64) -> String {
    match e {
        NetError::Deadline(_) | NetError::Http(HttpError::Timeout) => timed_out(timeout_ms),
        NetError::Http(HttpError::BadAuthority(_)) => "bad authority".into(),
        NetError::Http(HttpError::BadPath(_)) => "bad path".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::testing::{response, FakeHost, FakeReply};

    use super::*;

    fn host() -> FakeHost {
        let host = FakeHost::new();
        host.serve_http("http://127.0.0.1:8080/", |r| match r.url.path.as_str() {
            "/ok" => response(200, "all ok"),
            "/down" => response(503, "down"),
            "/slow" => FakeReply::Hang,
            "/refused" => FakeReply::Error(NetError::Http(HttpError::Refused)),
            _ => response(404, "not found"),
        });
        host
    }

    #[test]
    fn ok_with_status_and_latency() {
        let host = host();
        let v = host.run::<Http>(&[("url", "http://127.0.0.1:8080/ok"), ("expect_body", "ok")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.measurement("status"), Some(200.0));
        assert_eq!(v.measurement("latency_ms"), Some(0.0));
        let v = host.run::<Http>(&[
            ("url", "http://127.0.0.1:8080/ok"),
            ("method", "head"),
            ("expect_status", "200,204"),
        ]);
        assert!(v.is_ok(), "{v:?}");
    }

    #[test]
    fn failures_keep_the_measurements_found_so_far() {
        let host = host();
        let v = host.run::<Http>(&[("url", "http://127.0.0.1:8080/down")]);
        assert_eq!(v.reason(), Some("status 503 not in 200-399"));
        assert_eq!(v.measurement("status"), Some(503.0));
        let v = host.run::<Http>(&[
            ("url", "http://127.0.0.1:8080/ok"),
            ("expect_body", "healthy"),
        ]);
        assert_eq!(v.reason(), Some("body lacks \"healthy\""));
        let v = host.run::<Http>(&[("url", "http://127.0.0.1:8080/slow"), ("timeout_ms", "500")]);
        assert_eq!(v.reason(), Some("timeout after 500ms"));
        assert!(v.measurements.is_empty());
        let v = host.run::<Http>(&[("url", "http://127.0.0.1:8080/refused")]);
        assert_eq!(v.reason(), Some("connection refused"));
        let v = host.run::<Http>(&[("url", "http://192.0.2.1/")]);
        assert_eq!(v.reason(), Some("request denied (URL not granted)"));
    }

    #[test]
    fn only_reads_the_body_when_it_matters() {
        let host = host();
        host.run::<Http>(&[("url", "http://127.0.0.1:8080/ok")]);
        host.run::<Http>(&[("url", "http://127.0.0.1:8080/ok"), ("expect_body", "ok")]);
        let reads: Vec<Option<usize>> = host
            .network_log()
            .into_iter()
            .map(|op| match op {
                net::NetOp::Http(r) => r.read_body,
                net::NetOp::Tcp(_) | net::NetOp::TcpFrom { .. } => panic!("no TCP"),
            })
            .collect();
        assert_eq!(reads, [None, Some(MAX_BODY)]);
    }

    #[test]
    fn the_digest_is_the_md5_of_the_whole_body() {
        let host = host();
        // MD5("all ok").
        let good = digest::md5_hex(b"all ok");
        let v = host.run::<Http>(&[
            ("url", "http://127.0.0.1:8080/ok"),
            ("expect_digest", &good.to_ascii_uppercase()),
        ]);
        assert!(v.is_ok(), "{v:?}");
        let v = host.run::<Http>(&[
            ("url", "http://127.0.0.1:8080/ok"),
            ("expect_digest", "0123456789abcdef0123456789abcdef"),
        ]);
        assert_eq!(
            v.reason(),
            Some(format!("digest {good} is not 0123456789abcdef0123456789abcdef").as_str())
        );
        let v = host.run::<Http>(&[("url", "http://127.0.0.1:8080/ok"), ("expect_digest", "x")]);
        assert_eq!(
            v.reason(),
            Some("bad parameter expect_digest=`x`: the MD5 of the body, 32 hex digits")
        );
    }

    #[test]
    fn bad_parameters_keep_their_wording() {
        let host = host();
        for (params, reason) in [
            (vec![], "parameter `url` is required"),
            (
                vec![("url", "ftp://h/")],
                "bad parameter url=`ftp://h/`: scheme must be http or https",
            ),
            (
                vec![("url", "http://h/"), ("method", "post")],
                "bad parameter method=`POST`: GET or HEAD",
            ),
            (
                vec![("url", "http://h/"), ("timeout_ms", "x")],
                "bad parameter timeout_ms=`x`",
            ),
            (
                vec![("url", "http://h/"), ("expect_status", "99")],
                "bad parameter expect_status=`99`: `99` is not a status code (100-599)",
            ),
            (
                vec![
                    ("url", "http://h/"),
                    ("method", "HEAD"),
                    ("expect_body", "x"),
                ],
                "`expect_body` and `expect_digest` need method GET (HEAD has no body)",
            ),
        ] {
            assert_eq!(host.run::<Http>(&params).reason(), Some(reason));
        }
    }
}

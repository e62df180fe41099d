//! `wasi:http` outgoing requests, only to the URLs/hosts granted (`allow_http URL_OR_HOST`).
//! Every request passes [`HttpPolicy::send_request`], which refuses any target no grant
//! matches (`HttpRequestDenied` to the guest, and a denial recorded for the run) and hands
//! allowed ones to the check's [`HttpSender`] (HTTP; HTTPS via rustls), which resolves only
//! the host that was just matched against a grant — or connects to the address a pin gives
//! for it.
//!
//! Grant forms: a URL prefix `http://127.0.0.1:8080/health` or a host `127.0.0.1:8080` /
//! `example.internal` (that host — any port if none is given — over http or https).
//!
//! Matching is on the parsed, normalised URL (the WHATWG URL parser of the `url` crate), never
//! on raw text: scheme; host (lower-cased, IP literals canonical); port (the scheme's default
//! when absent); and the path *by segments* after `.`/`..` (also percent-encoded) are
//! resolved — so `/health` grants `/health` and `/health/...`, never `/healthz` nor
//! `/health/../admin`. Refused outright: a URL with userinfo (`user:pass@host`, a classic way
//! to make a string prefix lie about the host) and a path segment holding an encoded `/` or
//! `\` (`%2f`, `%5c`), which servers disagree on.

use http::uri::Uri;
use std::sync::Arc;
use url::{Host, Url};
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::http::types::{
    DnsErrorPayload, ErrorCode, TlsAlertReceivedPayload,
};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::http_send::HttpSender;
use crate::state::{Denials, HostState};
use wasmalived_config::grants::HttpGrant;

/// A parsed grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpTarget {
    /// `scheme://host[:port]/path-prefix`.
    Prefix {
        /// `http` or `https`.
        scheme: String,
        /// The host.
        host: Host,
        /// The port (the scheme's default if the grant gives none).
        port: u16,
        /// The path's segments (no trailing empty segment); a request's must start with them.
        segments: Vec<String>,
    },
    /// `host[:port]`: any path, http or https.
    Host {
        /// The host.
        host: Host,
        /// The port, or any.
        port: Option<u16>,
    },
}

/// A request target, normalised.
struct Target {
    scheme: String,
    host: Host,
    port: u16,
    segments: Vec<String>,
}

/// Parse and normalise a URL as a request target or grant.
fn target(text: &str) -> Result<Target, String> {
    let url = Url::parse(text).map_err(|e| e.to_string())?;
    let scheme = url.scheme().to_owned();
    if scheme != "http" && scheme != "https" {
        return Err("scheme must be http or https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a URL with user information (user@host) is never allowed".into());
    }
    let host = url.host().ok_or("no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.map(str::to_owned).collect())
        .unwrap_or_default();
    if segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    if segments.iter().any(|s| {
        let lower = s.to_ascii_lowercase();
        lower.contains("%2f") || lower.contains("%5c")
    }) {
        return Err("an encoded '/' or '\\' in the path is never allowed".into());
    }
    Ok(Target {
        scheme,
        host,
        port,
        segments,
    })
}

/// Parse one grant.
pub fn parse_target(grant: &HttpGrant) -> Result<HttpTarget, String> {
    let s = grant.0.trim();
    let err = |e: String| format!("allow_http `{s}`: {e}");
    if s.contains("://") {
        let t = target(s).map_err(err)?;
        return Ok(HttpTarget::Prefix {
            scheme: t.scheme,
            host: t.host,
            port: t.port,
            segments: t.segments,
        });
    }
    if s.is_empty() || s.contains('/') || s.contains('@') {
        return Err(err("expected a URL or HOST[:PORT]".into()));
    }
    // Parse the host the way a request's is parsed: as the authority of an http URL.
    let url = Url::parse(&format!("http://{s}/")).map_err(|e| err(e.to_string()))?;
    Ok(HttpTarget::Host {
        host: url.host().ok_or_else(|| err("no host".into()))?.to_owned(),
        port: url.port(),
    })
}

/// Whether `uri` is allowed by `targets`.
pub fn allowed(targets: &[HttpTarget], uri: &Uri) -> bool {
    // `http::Uri` keeps userinfo in the authority; the normalising parser sees it too.
    let Ok(t) = target(&uri.to_string()) else {
        return false;
    };
    targets.iter().any(|grant| match grant {
        HttpTarget::Prefix {
            scheme,
            host,
            port,
            segments,
        } => {
            *scheme == t.scheme
                && *host == t.host
                && *port == t.port
                && t.segments.starts_with(segments)
        }
        HttpTarget::Host { host, port } => *host == t.host && port.is_none_or(|p| p == t.port),
    })
}

/// The per-run hooks: the allowlist, and the check's sender.
#[derive(Debug)]
pub struct HttpPolicy {
    /// The check's targets, shared by its runs.
    targets: Arc<[HttpTarget]>,
    sender: Arc<HttpSender>,
    denials: Denials,
}

impl HttpPolicy {
    /// A policy allowing exactly `targets`, sending through `sender`; refusals are recorded
    /// in `denials`.
    pub fn new(targets: Arc<[HttpTarget]>, sender: Arc<HttpSender>, denials: Denials) -> Self {
        Self {
            targets,
            sender,
            denials,
        }
    }
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn p2_error_from_connect(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::debug!(error = %err, "plugin HTTP connect failed");
        connect_error_code(err)
    }

    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::debug!(error = %err, "plugin HTTPS handshake failed");
        tls_error_code(err)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        if !allowed(&self.targets, request.uri()) {
            tracing::warn!(uri = %request.uri(), "plugin HTTP request denied (not granted)");
            self.denials
                .record(|| format!("http {} (not granted)", request.uri()));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // The request-body result future is not needed: the guest learns of a failed
        // request from the response future.
        drop(fut);
        let sender = self.sender.clone();
        Box::new(async move { sender.send(request, options).await })
    }
}

/// The guest's error code for a failed connect (the default hook calls every one "refused").
fn connect_error_code(err: &std::io::Error) -> ErrorCode {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionRefused => ErrorCode::ConnectionRefused,
        ErrorKind::TimedOut => ErrorCode::ConnectionTimeout,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            ErrorCode::DestinationUnavailable
        }
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            ErrorCode::ConnectionTerminated
        }
        // tokio's resolver reports an unknown name as an uncategorised error.
        _ if err.to_string().contains("lookup") => ErrorCode::DnsError(DnsErrorPayload {
            rcode: Some(err.to_string()),
            info_code: None,
        }),
        _ => ErrorCode::InternalError(Some(err.to_string())),
    }
}

/// The guest's error code for a failed TLS handshake: a rejected certificate is told apart
/// from a protocol failure.
fn tls_error_code(err: &std::io::Error) -> ErrorCode {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => ErrorCode::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => {
            ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                alert_id: Some(u8::from(*alert)),
                alert_message: Some(format!("{alert:?}")),
            })
        }
        _ => ErrorCode::TlsProtocolError,
    }
}

/// Link wasi:http outgoing-handler and types (always; with no `http` grant the allowlist is
/// empty and every request is refused).
pub fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(gs: &[&str]) -> Vec<HttpTarget> {
        gs.iter()
            .map(|g| parse_target(&HttpGrant(g.to_string())).expect("grant"))
            .collect()
    }

    fn ok(t: &[HttpTarget], u: &str) -> bool {
        allowed(t, &u.parse::<Uri>().expect("uri"))
    }

    #[test]
    fn prefix_grants_match_whole_segments() {
        let t = targets(&["http://127.0.0.1:8080/health"]);
        assert!(ok(&t, "http://127.0.0.1:8080/health"));
        assert!(ok(&t, "http://127.0.0.1:8080/health/"));
        assert!(ok(&t, "http://127.0.0.1:8080/health/deep?x=1"));
        assert!(
            !ok(&t, "http://127.0.0.1:8080/healthz"),
            "a string prefix is not a path prefix"
        );
        assert!(!ok(&t, "http://127.0.0.1:8080/admin"));
        assert!(
            !ok(&t, "http://127.0.0.1:80/health"),
            "port is part of the target"
        );
        assert!(
            !ok(&t, "https://127.0.0.1:8080/health"),
            "scheme must match"
        );
        assert!(!ok(&t, "http://127.0.0.1:8080.evil/health"));
    }

    #[test]
    fn dot_segments_are_resolved_before_matching() {
        let t = targets(&["http://127.0.0.1:8080/health"]);
        assert!(!ok(&t, "http://127.0.0.1:8080/health/../admin"));
        assert!(!ok(&t, "http://127.0.0.1:8080/health/%2e%2e/admin"));
        assert!(!ok(&t, "http://127.0.0.1:8080/health/.%2E/admin"));
        assert!(
            ok(&t, "http://127.0.0.1:8080/x/../health/ok"),
            "normalises into the grant"
        );
        assert!(ok(&t, "http://127.0.0.1:8080/health/./ok"));
    }

    #[test]
    fn encoded_separators_and_userinfo_are_refused() {
        let t = targets(&["http://127.0.0.1:8080/health", "example.internal"]);
        assert!(!ok(&t, "http://127.0.0.1:8080/health%2f..%2fadmin"));
        assert!(!ok(&t, "http://127.0.0.1:8080/health/%2F..%2Fadmin"));
        assert!(!ok(&t, "http://127.0.0.1:8080/health/a%5cb"));
        // `example.internal:x@evil` names the host `evil` with user `example.internal`.
        assert!(!ok(&t, "http://example.internal:x@evil/"));
        assert!(
            !ok(&t, "http://user@example.internal/"),
            "userinfo is refused even for a granted host"
        );
        for bad in ["http://u:p@127.0.0.1/health", "host:x@evil", "ftp://x/"] {
            assert!(parse_target(&HttpGrant(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_grants_normalise_case_ports_and_ip_literals() {
        let t = targets(&["127.0.0.1:8080", "Example.Internal", "[2001:DB8::1]"]);
        assert!(ok(&t, "http://127.0.0.1:8080/anything"));
        assert!(!ok(&t, "http://127.0.0.1:9090/"));
        assert!(ok(&t, "https://example.internal:8443/x"));
        assert!(ok(&t, "http://EXAMPLE.internal/"));
        assert!(!ok(&t, "http://example.internal.evil/"));
        assert!(
            ok(&t, "http://[2001:db8:0::1]:81/"),
            "IPv6 literals compare canonically"
        );
        assert!(!ok(&t, "/relative"));
        // A default port written out is the same port.
        let t = targets(&["http://127.0.0.1/health"]);
        assert!(ok(&t, "http://127.0.0.1:80/health"));
    }
}

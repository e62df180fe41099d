//! `wasi:http` outgoing requests, only to the URLs/hosts granted (`http URL_OR_HOST`).
//! Linked only when `http` is granted; every request passes [`HttpPolicy::send_request`],
//! which refuses any target that no grant matches (`HttpRequestDenied` to the guest) and
//! hands allowed ones to wasmtime-wasi-http's default sender (HTTP; HTTPS via rustls).
//!
//! Grant forms: a URL prefix `http://127.0.0.1:8080/health` (same scheme, same authority,
//! path starting with the granted path) or an authority `127.0.0.1:8080` / `example.internal`
//! (that host — any port if none is given — over http or https).

use http::uri::Uri;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{default_hooks, Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::state::{Denials, HostState};
use wasmalived_config::grants::HttpGrant;

/// A parsed grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpTarget {
    /// `scheme://authority/path-prefix`.
    Prefix {
        /// `http` or `https`.
        scheme: String,
        /// `host[:port]`, lowercase.
        authority: String,
        /// Path prefix, at least `/`.
        path: String,
    },
    /// `host[:port]`, lowercase.
    Authority(String),
}

/// Parse one grant.
pub fn parse_target(grant: &HttpGrant) -> Result<HttpTarget, String> {
    let s = grant.0.trim();
    if s.contains("://") {
        let uri: Uri = s.parse().map_err(|e| format!("http grant `{s}`: {e}"))?;
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("http grant `{s}`: scheme must be http or https"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("http grant `{s}`: no host"))?
            .as_str()
            .to_ascii_lowercase();
        let path = match uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Ok(HttpTarget::Prefix {
            scheme,
            authority,
            path,
        })
    } else if s.is_empty() || s.contains('/') {
        Err(format!("http grant `{s}`: expected a URL or HOST[:PORT]"))
    } else {
        Ok(HttpTarget::Authority(s.to_ascii_lowercase()))
    }
}

fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Whether `uri` is allowed by `targets`.
pub fn allowed(targets: &[HttpTarget], uri: &Uri) -> bool {
    let Some(authority) = uri.authority().map(|a| a.as_str().to_ascii_lowercase()) else {
        return false;
    };
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let path = match uri.path() {
        "" => "/",
        p => p,
    };
    targets.iter().any(|t| match t {
        HttpTarget::Prefix {
            scheme: s,
            authority: a,
            path: p,
        } => *s == scheme && *a == authority && path.starts_with(p.as_str()),
        HttpTarget::Authority(a) => {
            (scheme == "http" || scheme == "https")
                && (*a == authority || (!a.contains(':') && host_of(&authority) == a.as_str()))
        }
    })
}

/// The per-run hooks: the allowlist.
#[derive(Debug, Default)]
pub struct HttpPolicy {
    targets: Vec<HttpTarget>,
    denials: Denials,
}

impl HttpPolicy {
    /// A policy allowing exactly `targets`; refusals are recorded in `denials`.
    pub fn new(targets: Vec<HttpTarget>, denials: Denials) -> Self {
        Self { targets, denials }
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
        default_hooks().send_request(request, options, fut)
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
    fn prefix_grants() {
        let t = targets(&["http://127.0.0.1:8080/health"]);
        assert!(ok(&t, "http://127.0.0.1:8080/health"));
        assert!(ok(&t, "http://127.0.0.1:8080/health/deep?x=1"));
        assert!(!ok(&t, "http://127.0.0.1:8080/admin"));
        assert!(
            !ok(&t, "http://127.0.0.1:80/health"),
            "port is part of the authority"
        );
        assert!(
            !ok(&t, "https://127.0.0.1:8080/health"),
            "scheme must match"
        );
        assert!(!ok(&t, "http://127.0.0.1:8080.evil/health"));
    }

    #[test]
    fn authority_grants() {
        let t = targets(&["127.0.0.1:8080", "example.internal"]);
        assert!(ok(&t, "http://127.0.0.1:8080/anything"));
        assert!(!ok(&t, "http://127.0.0.1:9090/"));
        assert!(ok(&t, "https://example.internal:8443/x"));
        assert!(!ok(&t, "http://example.internal.evil/"));
        assert!(!ok(&t, "/relative"));
        assert!(parse_target(&HttpGrant("ftp://x/".into())).is_err());
    }
}

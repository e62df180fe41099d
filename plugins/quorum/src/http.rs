//! etcd's JSON API over the host's HTTP ([`Host::network`]), and this plugin's wording of
//! network errors.

use std::time::Duration;

use wasmalived_plugin_sdk::net::{self, BodyError, HttpRequest, NetError};
use wasmalived_plugin_sdk::{Host, Url};

/// Answers larger than this are cut (etcd's answers here are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// POST `body` (JSON) to `path` on `base` and wait until `end` (on the host's monotonic
/// clock) for the status and body; `timeout_ms` is the run's budget, for messages.
pub fn post_json(
    host: &impl Host,
    base: &Url,
    path: &str,
    body: &str,
    end: Duration,
    timeout_ms: u64,
) -> Result<(u16, Vec<u8>), String> {
    let timed_out = || format!("timeout after {timeout_ms}ms");
    let remaining = end.saturating_sub(host.monotonic());
    if remaining.as_millis() == 0 {
        return Err(timed_out());
    }
    let url = Url {
        path: join(&base.path, path),
        ..base.clone()
    };
    let request = HttpRequest::post_json(url, body).read_body(MAX_BODY);
    let response = match net::fetch(host, request, remaining) {
        Ok(r) => r,
        Err(NetError::Deadline(_)) => return Err(timed_out()),
        Err(e) => return Err(e.to_string()),
    };
    match response.body {
        Some(Ok(bytes)) => Ok((response.status, bytes)),
        Some(Err(BodyError::Deadline)) => Err(timed_out()),
        Some(Err(BodyError::Read(e))) => Err(format!("reading the body: {e}")),
        None => Ok((response.status, Vec::new())),
    }
}

/// `base` path + `path`, without a doubled `/`.
fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

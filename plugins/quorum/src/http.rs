//! A small blocking HTTP client over wasi:http for witness probes and etcd's JSON API:
//! start a request (non-blocking), poll it together with others, read a bounded body.

use plugin_guest_util::url::Url;
use wasi::clocks::monotonic_clock::{self, Instant};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::StreamError;

/// Answers larger than this are cut (etcd's answers here are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;
/// Read chunk size.
const CHUNK: u64 = 16 * 1024;
/// wasi output streams accept at most this much per blocking write.
const WRITE_CHUNK: usize = 4096;

/// A request in flight.
pub struct Pending {
    // Field order is drop order: the pollable is a child of the future.
    ready: Pollable,
    future: FutureIncomingResponse,
}

impl Pending {
    /// Ready when the response head (or an error) has arrived.
    pub fn pollable(&self) -> &Pollable {
        &self.ready
    }

    /// The response, once ready; `None` while still pending.
    pub fn take(&self) -> Option<Result<IncomingResponse, String>> {
        match self.future.get()? {
            Ok(Ok(response)) => Some(Ok(response)),
            Ok(Err(e)) => Some(Err(describe(&e))),
            Err(()) => Some(Err("response already taken".into())),
        }
    }
}

/// Start `method` on `url` (with `path` instead of the URL's own, if given), sending `body`
/// as JSON, with the host's timeouts set to `timeout_ms`.
pub fn start(
    method: &Method,
    url: &Url,
    path: Option<&str>,
    body: Option<&[u8]>,
    timeout_ms: u64,
) -> Result<Pending, String> {
    let headers = Fields::new();
    if let Some(b) = body {
        let set = |name: &str, value: &[u8]| {
            headers
                .append(name, value)
                .map_err(|e| format!("header {name}: {e:?}"))
        };
        set("content-type", b"application/json")?;
        set("content-length", b.len().to_string().as_bytes())?;
    }
    let request = OutgoingRequest::new(headers);
    request.set_method(method).map_err(|()| "method refused")?;
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "scheme refused")?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| format!("bad authority `{}`", url.authority))?;
    let path = path.unwrap_or(&url.path);
    request
        .set_path_with_query(Some(path))
        .map_err(|()| format!("bad path `{path}`"))?;
    let outgoing_body = request.body().map_err(|()| "request body already taken")?;
    let options = RequestOptions::new();
    let timeout_ns = timeout_ms.saturating_mul(1_000_000);
    // Best effort: the host may not support every timeout; the caller's deadline still holds.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));
    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| describe(&e))?;
    if let Some(b) = body {
        let stream = outgoing_body.write().map_err(|()| "request body stream")?;
        for chunk in b.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("sending the request body: {e:?}"))?;
        }
        drop(stream);
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| describe(&e))?;
    let ready = future.subscribe();
    Ok(Pending { ready, future })
}

/// POST `body` (JSON) to `path` on `base` and wait until `end` for the status and body.
pub fn post_json(
    base: &Url,
    path: &str,
    body: &str,
    end: Instant,
    timeout_ms: u64,
) -> Result<(u16, Vec<u8>), String> {
    let timed_out = || format!("timeout after {timeout_ms}ms");
    let remaining_ms = end.saturating_sub(monotonic_clock::now()) / 1_000_000;
    if remaining_ms == 0 {
        return Err(timed_out());
    }
    let pending = start(
        &Method::Post,
        base,
        Some(&join(&base.path, path)),
        Some(body.as_bytes()),
        remaining_ms,
    )?;
    let deadline = monotonic_clock::subscribe_instant(end);
    let response = loop {
        if let Some(r) = pending.take() {
            break r?;
        }
        if !poll::poll(&[pending.pollable(), &deadline]).contains(&0) {
            return Err(timed_out());
        }
    };
    let status = response.status();
    let body = read_body(&response, &deadline)?.ok_or_else(timed_out)?;
    Ok((status, body))
}

/// `base` path + `path`, without a doubled `/`.
fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Read up to [`MAX_BODY`] bytes of the body; `Ok(None)` if `deadline` fires first.
fn read_body(response: &IncomingResponse, deadline: &Pollable) -> Result<Option<Vec<u8>>, String> {
    let body = response.consume().map_err(|()| "body already consumed")?;
    let stream = body.stream().map_err(|()| "body stream unavailable")?;
    let mut data = Vec::new();
    let outcome = {
        let ready = stream.subscribe();
        loop {
            if data.len() >= MAX_BODY {
                break Ok(Some(()));
            }
            match stream.read(CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    if !poll::poll(&[&ready, deadline]).contains(&0) {
                        break Ok(None);
                    }
                }
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break Ok(Some(())),
                Err(StreamError::LastOperationFailed(e)) => {
                    break Err(format!("reading the body: {}", e.to_debug_string()));
                }
            }
        }
    };
    // The stream (a child of the body) is dropped before the body.
    drop(stream);
    drop(body);
    outcome.map(|o| o.map(|()| data))
}

/// A short reason for a wasi:http error.
pub fn describe(e: &ErrorCode) -> String {
    match e {
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::HttpRequestDenied => "request denied (URL not granted)".into(),
        ErrorCode::ConnectionTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::ConnectionReadTimeout => "timeout".into(),
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout => "name resolution failed".into(),
        ErrorCode::DestinationNotFound => "destination not found".into(),
        ErrorCode::DestinationUnavailable => "destination unavailable".into(),
        ErrorCode::ConnectionTerminated => "connection closed by the server".into(),
        ErrorCode::InternalError(Some(m)) => format!("internal error: {m}"),
        other => format!("{other:?}")
            .trim_start_matches("ErrorCode::")
            .to_string(),
    }
}

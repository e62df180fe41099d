//! HTTP over `wasi:http`: start a request (non-blocking), poll it with others
//! (`super::net`), read a bounded body.

use std::time::Duration;

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::StreamError;

use super::nanos;
use crate::net::{BodyError, HttpError, HttpRequest, Method};

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
    pub fn take(&self) -> Option<Result<IncomingResponse, HttpError>> {
        match self.future.get()? {
            Ok(Ok(response)) => Some(Ok(response)),
            Ok(Err(e)) => Some(Err(describe(&e))),
            Err(()) => Some(Err(HttpError::Request("response already taken".into()))),
        }
    }
}

/// Start `request`, with the host's connect, first-byte and between-bytes timeouts set to
/// `timeout` (best effort: the caller's deadline holds in any case).
pub fn start(request: &HttpRequest, timeout: Duration) -> Result<Pending, HttpError> {
    let headers = Fields::new();
    let append = |name: &str, value: &[u8]| {
        headers
            .append(name, value)
            .map_err(|e| HttpError::Request(format!("header {name}: {e:?}")))
    };
    for (name, value) in &request.headers {
        append(name, value)?;
    }
    if let Some(body) = &request.body {
        append("content-length", body.len().to_string().as_bytes())?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Delete => WasiMethod::Delete,
    };
    let refused = |what: &str| HttpError::Request(format!("{what} refused"));
    outgoing
        .set_method(&method)
        .map_err(|()| refused("method"))?;
    let scheme = if request.url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    let url = &request.url;
    outgoing
        .set_authority(Some(&url.authority))
        .map_err(|()| HttpError::BadAuthority(url.authority.clone()))?;
    outgoing
        .set_path_with_query(Some(&url.path))
        .map_err(|()| HttpError::BadPath(url.path.clone()))?;
    let outgoing_body = outgoing
        .body()
        .map_err(|()| HttpError::Request("request body already taken".into()))?;
    let options = RequestOptions::new();
    let timeout_ns = nanos(timeout);
    // Best effort: the host may not support every timeout; the caller's deadline still holds.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(|e| describe(&e))?;
    if let Some(body) = &request.body {
        let stream = outgoing_body
            .write()
            .map_err(|()| HttpError::Request("request body stream".into()))?;
        for chunk in body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Request(format!("sending the request body: {e:?}")))?;
        }
        drop(stream);
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| describe(&e))?;
    let ready = future.subscribe();
    Ok(Pending { ready, future })
}

/// Read about `limit` bytes of the body at most, until `deadline` fires.
pub fn read_body(
    response: &IncomingResponse,
    deadline: &Pollable,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let body = response
        .consume()
        .map_err(|()| BodyError::Read("body already consumed".into()))?;
    let stream = body
        .stream()
        .map_err(|()| BodyError::Read("body stream unavailable".into()))?;
    let mut data = Vec::new();
    let outcome = {
        let ready = stream.subscribe();
        loop {
            if data.len() >= limit {
                break Ok(());
            }
            match stream.read(CHUNK) {
                Ok(chunk) if chunk.is_empty() => {
                    if !poll::poll(&[&ready, deadline]).contains(&0) {
                        break Err(BodyError::Deadline);
                    }
                }
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break Ok(()),
                Err(StreamError::LastOperationFailed(e)) => {
                    break Err(BodyError::Read(e.to_debug_string()));
                }
            }
        }
    };
    // The stream (a child of the body) is dropped before the body.
    drop(stream);
    drop(body);
    outcome.map(|()| data)
}

/// A `wasi:http` error, briefly.
fn describe(e: &ErrorCode) -> HttpError {
    match e {
        ErrorCode::ConnectionRefused => HttpError::Refused,
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        ErrorCode::ConnectionTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::ConnectionReadTimeout => HttpError::Timeout,
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout => HttpError::Dns,
        ErrorCode::DestinationNotFound => HttpError::DestinationNotFound,
        ErrorCode::DestinationUnavailable => HttpError::DestinationUnavailable,
        ErrorCode::ConnectionTerminated => HttpError::Closed,
        ErrorCode::TlsCertificateError => HttpError::TlsCertificate,
        ErrorCode::TlsProtocolError => HttpError::TlsProtocol,
        ErrorCode::TlsAlertReceived(a) => {
            HttpError::TlsAlert(a.alert_message.clone().unwrap_or_else(|| "unknown".into()))
        }
        ErrorCode::InternalError(Some(m)) => HttpError::Internal(m.clone()),
        other => HttpError::Other(
            format!("{other:?}")
                .trim_start_matches("ErrorCode::")
                .to_string(),
        ),
    }
}

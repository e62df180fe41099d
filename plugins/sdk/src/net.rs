//! Network operations a check may run through [`Host::network`]: TCP connects (grant
//! `allow_tcp IP:PORT`) and HTTP requests (grant `allow_http URL_OR_HOST`), with one deadline
//! for all of them. [`connect`] and [`fetch`] do one operation. A dialogue over TCP uses a
//! [`Stream`] ([`Host::tcp_stream`]), a UDP exchange a [`Datagrams`] socket
//! ([`Host::udp_connect`], grant `allow_udp IP:PORT`).
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmalived_plugin_sdk::net::{self, HttpRequest};
//! use wasmalived_plugin_sdk::{Host, Url, Verdict};
//!
//! fn probe(host: &impl Host) -> Verdict {
//!     let url = Url::parse("http://127.0.0.1:8080/health").expect("url");
//!     match net::fetch(host, HttpRequest::get(url).read_body(4096), Duration::from_secs(1)) {
//!         Ok(r) if r.status == 200 => Verdict::ok().measure("status", 200.0),
//!         Ok(r) => Verdict::fail(format!("status {}", r.status)),
//!         Err(e) => Verdict::fail(e.to_string()),
//!     }
//! }
//! ```
//!
//! Nothing is ever sent on a connection [`Host::network`] opens: it is closed as soon as it opens.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::host::Host;
use crate::params::FromParam;
use crate::url::Url;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// Scheme, authority, path and query.
    pub url: Url,
    /// Extra headers (`content-length` is added for a body).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
    /// Read the response body, up to about this many bytes; `None`: the status is enough.
    pub read_body: Option<usize>,
}

impl HttpRequest {
    /// `method` on `url`, no headers, no body, the response body not read.
    pub fn new(method: Method, url: Url) -> HttpRequest {
        HttpRequest {
            method,
            url,
            headers: Vec::new(),
            body: None,
            read_body: None,
        }
    }

    /// `GET url`.
    pub fn get(url: Url) -> HttpRequest {
        HttpRequest::new(Method::Get, url)
    }

    /// `POST url` with a JSON body.
    pub fn post_json(url: Url, json: &str) -> HttpRequest {
        HttpRequest {
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: Some(json.as_bytes().to_vec()),
            ..HttpRequest::new(Method::Post, url)
        }
    }

    /// Also read the response body, up to about `limit` bytes (reading stops once `limit`
    /// is reached; a last chunk may take it past by a little).
    pub fn read_body(mut self, limit: usize) -> HttpRequest {
        self.read_body = Some(limit);
        self
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, when the request asked for it ([`HttpRequest::read_body`]): the bytes, or
    /// why they could not all be read (the status is known all the same).
    pub body: Option<Result<Vec<u8>, BodyError>>,
}

/// Why a response body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The deadline passed while reading.
    Deadline,
    /// The stream failed (the host's description).
    Read(String),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Deadline => f.write_str("timeout reading the body"),
            BodyError::Read(e) => write!(f, "reading the body: {e}"),
        }
    }
}

/// One network operation for [`Host::network`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetOp {
    /// Open a TCP connection, then close it.
    Tcp(SocketAddr),
    /// Open a TCP connection from a given source address (an LVS checker's `bindto`; the
    /// host allows only the source it granted), then close it.
    TcpFrom {
        /// The local address to bind (an ephemeral port).
        from: IpAddr,
        /// Where to connect.
        to: SocketAddr,
    },
    /// Send an HTTP request and wait for the response (and its body, if asked).
    Http(HttpRequest),
}

/// How a connection opened only to see that it opens is closed
/// ([`Host::connect_all_closing`]; the `close` parameter of the stock `tcp` check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TcpClose {
    /// An orderly close (a FIN), as keepalived's `TCP_CHECK` closes.
    #[default]
    Fin,
    /// A reset (`SO_LINGER` 0), as HAProxy's checks close: no FIN exchange and no
    /// `TIME_WAIT` on the daemon's host; the server sees a reset instead of a close.
    Reset,
}

impl FromParam for TcpClose {
    const EXPECTED: &'static str = "fin or reset";
    fn from_param(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "fin" => Some(TcpClose::Fin),
            "reset" | "rst" => Some(TcpClose::Reset),
            _ => None,
        }
    }
}

/// The answer to one [`NetOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetReply {
    /// The TCP connection opened (and was closed).
    Connected,
    /// The HTTP response.
    Http(HttpResponse),
}

/// Why a network operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// Not finished within the timeout given to [`Host::network`] (which it carries).
    Deadline(Duration),
    /// A TCP connect (or a read or write on a [`Stream`]) failed.
    Tcp(TcpError),
    /// An HTTP request failed.
    Http(HttpError),
    /// A UDP socket operation failed ([`Datagrams`]).
    Udp(UdpError),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Deadline(after) => write!(f, "timeout after {}ms", after.as_millis()),
            NetError::Tcp(e) => e.fmt(f),
            NetError::Http(e) => e.fmt(f),
            NetError::Udp(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for NetError {}

/// Why a TCP connect failed (`wasi:sockets/network.error-code`, briefly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpError {
    /// Nobody listens there.
    Refused,
    /// The check is not granted this address (`allow_tcp`).
    Denied,
    /// No route.
    Unreachable,
    /// The host's own connect timeout.
    Timeout,
    /// Another error, by its WASI name with spaces (`connection reset`).
    Other(String),
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpError::Refused => f.write_str("connection refused"),
            TcpError::Denied => f.write_str("access denied (address not granted)"),
            TcpError::Unreachable => f.write_str("remote unreachable"),
            TcpError::Timeout => f.write_str("timeout"),
            TcpError::Other(name) => f.write_str(name),
        }
    }
}

/// Why a UDP socket operation failed (`wasi:sockets/network.error-code`, briefly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpError {
    /// The peer's host answered that nothing listens on the port (ICMP port unreachable,
    /// reported on a connected socket).
    Refused,
    /// The check is not granted this address (`allow_udp`).
    Denied,
    /// No route.
    Unreachable,
    /// Another error, by its WASI name with spaces (`datagram too large`).
    Other(String),
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UdpError::Refused => f.write_str("connection refused (port unreachable)"),
            UdpError::Denied => f.write_str("access denied (address not granted)"),
            UdpError::Unreachable => f.write_str("remote unreachable"),
            UdpError::Other(name) => f.write_str(name),
        }
    }
}

/// An open TCP connection for a dialogue ([`Host::tcp_stream`], grant `allow_tcp`). Dropping
/// it closes the connection.
pub trait Stream {
    /// What has arrived, at most `max` bytes, waiting up to `timeout` for something
    /// ([`NetError::Deadline`] if nothing came); empty at the end of the stream.
    fn read(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, NetError>;

    /// Send all of `bytes` within `timeout`.
    fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), NetError>;
}

/// A UDP socket connected to one peer ([`Host::udp_connect`], grant `allow_udp`): it sends
/// to that peer only and receives only from it. Dropping it closes the socket.
pub trait Datagrams {
    /// Send one datagram to the peer.
    fn send(&mut self, datagram: &[u8]) -> Result<(), NetError>;

    /// The next datagram from the peer (at most `max` bytes of it), waiting up to `timeout`
    /// ([`NetError::Deadline`] if none came). A port unreachable from the peer's host is
    /// [`UdpError::Refused`].
    fn recv(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, NetError>;
}

/// Why an HTTP request failed (`wasi:http/types.error-code`, briefly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Nobody listens there.
    Refused,
    /// The check is not granted this URL (`allow_http`).
    Denied,
    /// One of the host's own timeouts (connect, first byte, between bytes).
    Timeout,
    /// Name resolution failed.
    Dns,
    /// The destination was not found.
    DestinationNotFound,
    /// The destination is unavailable.
    DestinationUnavailable,
    /// The server closed the connection.
    Closed,
    /// The server's certificate was not trusted (chain or name; the check's TLS policy).
    TlsCertificate,
    /// The TLS handshake failed otherwise.
    TlsProtocol,
    /// The server sent a TLS alert.
    TlsAlert(String),
    /// The host's internal error, with its message.
    Internal(String),
    /// The URL's authority was refused.
    BadAuthority(String),
    /// The URL's path and query were refused.
    BadPath(String),
    /// The request could not be built or sent (header, body).
    Request(String),
    /// Another error, by its WASI variant name (`HttpProtocolError`).
    Other(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Refused => f.write_str("connection refused"),
            HttpError::Denied => f.write_str("request denied (URL not granted)"),
            HttpError::Timeout => f.write_str("timeout"),
            HttpError::Dns => f.write_str("name resolution failed"),
            HttpError::DestinationNotFound => f.write_str("destination not found"),
            HttpError::DestinationUnavailable => f.write_str("destination unavailable"),
            HttpError::Closed => f.write_str("connection closed by the server"),
            HttpError::TlsCertificate => f.write_str("TLS: server certificate not trusted"),
            HttpError::TlsProtocol => f.write_str("TLS handshake failed"),
            HttpError::TlsAlert(a) => write!(f, "TLS alert from the server: {a}"),
            HttpError::Internal(m) => write!(f, "internal error: {m}"),
            HttpError::BadAuthority(a) => write!(f, "bad authority `{a}`"),
            HttpError::BadPath(p) => write!(f, "bad path `{p}`"),
            HttpError::Request(m) | HttpError::Other(m) => f.write_str(m),
        }
    }
}

/// Open a TCP connection to `addr` within `timeout`, then close it.
pub fn connect(host: &impl Host, addr: SocketAddr, timeout: Duration) -> Result<(), NetError> {
    host.connect_all(&[addr], timeout)
        .pop()
        .unwrap_or(Err(NetError::Deadline(timeout)))
}

/// [`connect`] from the local address `from` (bound with an ephemeral port first).
pub fn connect_from(
    host: &impl Host,
    from: IpAddr,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(), NetError> {
    host.connect_all_from(from, &[addr], timeout)
        .pop()
        .unwrap_or(Err(NetError::Deadline(timeout)))
}

/// Send `request` and wait for its response (and body, if asked) within `timeout`.
pub fn fetch(
    host: &impl Host,
    request: HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, NetError> {
    host.fetch_all(std::slice::from_ref(&request), timeout)
        .pop()
        .unwrap_or(Err(NetError::Deadline(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_briefly() {
        assert_eq!(
            NetError::Deadline(Duration::from_millis(500)).to_string(),
            "timeout after 500ms"
        );
        assert_eq!(
            NetError::Tcp(TcpError::Denied).to_string(),
            "access denied (address not granted)"
        );
        assert_eq!(
            NetError::Tcp(TcpError::Other("connection reset".into())).to_string(),
            "connection reset"
        );
        assert_eq!(
            NetError::Http(HttpError::Denied).to_string(),
            "request denied (URL not granted)"
        );
        assert_eq!(
            HttpError::BadPath("/a b".into()).to_string(),
            "bad path `/a b`"
        );
        assert_eq!(
            BodyError::Read("reset".into()).to_string(),
            "reading the body: reset"
        );
    }

    #[test]
    fn json_posts_carry_their_content_type() {
        let url = Url::parse("http://192.0.2.1:2379/v3/kv/range").expect("url");
        let r = HttpRequest::post_json(url, "{}").read_body(10);
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.body.as_deref(), Some(&b"{}"[..]));
        assert_eq!(r.headers[0].0, "content-type");
        assert_eq!(r.read_body, Some(10));
    }
}

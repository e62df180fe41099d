//! The HTTP side: HTTP/1 only, `GET /metrics` (and `HEAD`), 404 for any other path, 405
//! for any other method.
//!
//! A client cannot hold the daemon: at most [`MAX_CONNECTIONS`] connections are served at a
//! time (more are closed at once), headers must arrive within [`HEADER_READ_TIMEOUT`], a
//! connection carries one request (no keep-alive: a scrape every few seconds gains nothing
//! from it, and an idle connection would hold a slot) and lives at most
//! [`CONNECTION_DEADLINE`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::render::Format;

/// The one path served.
pub const PATH: &str = "/metrics";
/// Connections served at the same time.
pub const MAX_CONNECTIONS: usize = 8;
/// Time a client has to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of a connection, reading the request and writing the answer included.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Read buffer per connection (hyper's minimum): a request is a line and a few headers.
const MAX_BUF: usize = 8 * 1024;

/// Produces the exposition text in a format for each scrape.
pub type Render = Arc<dyn Fn(Format) -> String + Send + Sync>;

/// How much a client may take of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at the same time.
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_read_timeout: Duration,
    /// Longest life of a connection.
    pub connection_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            connection_deadline: CONNECTION_DEADLINE,
        }
    }
}

/// A bound listener serving the metrics until stopped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Listen on `addr` and serve `render`'s text within `limits`. Fails only if the
    /// address cannot be bound.
    pub async fn bind(addr: SocketAddr, render: Render, limits: Limits) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let span = tracing::info_span!("metrics", listen = %bound);
        span.in_scope(|| info!("Prometheus endpoint listening on http://{bound}{PATH}"));
        let task =
            tokio::spawn(accept_loop(listener, render, limits, cancel.clone()).instrument(span));
        Ok(MetricsServer {
            addr: bound,
            cancel,
            task,
        })
    }

    /// The address bound (the port is the kernel's choice if the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop listening; the address is free once this returns. Connections in flight end
    /// on their own, within [`CONNECTION_DEADLINE`].
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    render: Render,
    limits: Limits,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, max = limits.max_connections, "every connection slot taken: refused");
            continue;
        };
        let render = Arc::clone(&render);
        tokio::spawn(
            async move {
                serve_connection(stream, render, limits).await;
                drop(slot);
            }
            .instrument(tracing::debug_span!("scrape", %peer)),
        );
    }
    debug!("stopped");
}

async fn serve_connection(stream: TcpStream, render: Render, limits: Limits) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let accept = request
            .headers()
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let format = Format::negotiate(accept);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let render = Arc::clone(&render);
        async move { Ok::<_, Infallible>(respond(&method, &path, format, render).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(false)
        .max_buf_size(MAX_BUF)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(limits.connection_deadline, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => debug!(error = %err, "connection ended with an error"),
        Err(_) => debug!(deadline = ?limits.connection_deadline, "connection cut off"),
    }
}

/// The answer to one request. The text is rendered on the blocking pool: a snapshot of a
/// large configuration and its exposition take milliseconds, which the protocol threads —
/// the ones that send adverts — must not spend.
async fn respond(
    method: &Method,
    path: &str,
    format: Format,
    render: Render,
) -> Response<Full<Bytes>> {
    if path != PATH {
        return plain(StatusCode::NOT_FOUND, format!("not found; try {PATH}\n"));
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n".into());
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let text = match tokio::task::spawn_blocking(move || render(format)).await {
        Ok(text) => text,
        Err(err) => {
            warn!(error = %err, "rendering the metrics failed");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering the metrics failed\n".into(),
            );
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Send `request` raw and read the whole answer.
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // A refused connection may be reset under the writer or the reader: that reads as
        // no answer.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8(answer).unwrap()
    }

    async fn server(limits: Limits) -> MetricsServer {
        let render: Render = Arc::new(|format| match format {
            Format::OpenMetrics => "x_total 1\n# EOF\n".to_owned(),
            Format::Classic => "x_total 1\n".to_owned(),
        });
        MetricsServer::bind("127.0.0.1:0".parse().unwrap(), render, limits)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn serves_get_metrics_only() {
        let s = server(Limits::default()).await;
        let addr = s.local_addr();
        let ok = exchange(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{ok}"
        );
        assert!(ok.ends_with("\r\n\r\nx_total 1\n# EOF\n"), "{ok}");
        let classic = exchange(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            classic.contains("content-type: text/plain; version=0.0.4"),
            "{classic}"
        );
        assert!(classic.ends_with("\r\n\r\nx_total 1\n"), "{classic}");
        // One request per connection: the server closes after answering.
        assert!(ok.contains("connection: close"), "{ok}");
        let head = exchange(addr, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let missing = exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        let post = exchange(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        assert!(post.contains("allow: GET, HEAD"), "{post}");
        s.stop().await;
        // The address is free again.
        TcpListener::bind(addr).await.expect("rebind after stop");
    }

    #[tokio::test]
    async fn silent_clients_are_cut_off_and_do_not_block_others() {
        let limits = Limits {
            max_connections: 2,
            header_read_timeout: Duration::from_millis(200),
            connection_deadline: Duration::from_millis(400),
        };
        let s = server(limits).await;
        let addr = s.local_addr();
        // Take every slot with a client that never sends a request: a third is closed at
        // once, before the silent ones are cut off.
        let mut silent = Vec::new();
        for _ in 0..limits.max_connections {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = exchange(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(
            refused, "",
            "a connection over the limit is closed unanswered"
        );
        for mut stream in silent {
            let mut rest = Vec::new();
            // Cut off by the server (408 or a plain close) well within a few seconds.
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
            assert!(read.await.is_ok(), "a silent client was not cut off");
        }
        // The slots are free again.
        let ok = exchange(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        s.stop().await;
    }
}

//! How an allowed `wasi:http` request leaves the host: over HTTP/1.1, to the address the
//! request names — or the one a pin gives (`curl --resolve`: an LVS checker asks a real
//! server for its virtual host) — and over TLS with the check's verification policy.
//!
//! This is wasmtime-wasi-http's default sender with two things made explicit per check:
//! where the TCP connection goes ([`HttpPin`]) and how the server is trusted ([`HttpTls`]:
//! the web roots, a CA file, or no verification at all for keepalived's `SSL_GET`, which never
//! verified). The connection is driven by the returned I/O future, so it dies with the run.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use wasmalived_config::grants::{HttpPin, HttpTls};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Ceiling on each phase when the guest sets no timeout; the run's own timeout is shorter.
const DEFAULT_PHASE_TIMEOUT: Duration = Duration::from_secs(600);

/// Sends one check's requests: its pins and its TLS client, built once at load.
#[derive(Debug)]
pub struct HttpSender {
    pins: Vec<HttpPin>,
    tls: Arc<ClientConfig>,
    /// Connections leave from this address (`bindto`).
    source: Option<IpAddr>,
}

/// The response and the future driving its connection, as `WasiHttpHooks` wants them.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

impl HttpSender {
    /// A sender for `pins` and the TLS policy `tls` (reads `tls.ca` now), connecting from
    /// `source` if given.
    pub fn new(pins: Vec<HttpPin>, tls: &HttpTls, source: Option<IpAddr>) -> Result<Self, String> {
        Ok(HttpSender {
            pins,
            tls: Arc::new(client_config(tls)?),
            source,
        })
    }

    /// Open the TCP connection to `addr`, from the source address if there is one.
    async fn connect_to(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let Some(source) = self.source else {
            return TcpStream::connect(addr).await;
        };
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(addr).await
    }

    /// Resolve `host:port` (a name, or a literal) and connect to its first address of the
    /// source address's family.
    async fn connect_host(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        if self.source.is_none() {
            return TcpStream::connect(authority(host, port)).await;
        }
        let want_v4 = self.source.is_some_and(|s| s.is_ipv4());
        let addr = tokio::net::lookup_host(authority(host, port))
            .await?
            .find(|a| a.is_ipv4() == want_v4)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} has no address of the bindto address's family"),
                )
            })?;
        self.connect_to(addr).await
    }

    /// Where a request for `host:port` connects: the pinned address, if any.
    fn pinned(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.pins
            .iter()
            .find(|p| p.port == port && p.host.eq_ignore_ascii_case(host))
            .map(|p| p.connect_to)
    }

    /// Send `req` (already allowed by the policy).
    pub async fn send(
        &self,
        mut req: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let uri = req.uri();
        let use_tls = uri.scheme() == Some(&Scheme::HTTPS);
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_owned();
        let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
        let phase = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options
                .as_ref()
                .and_then(pick)
                .unwrap_or(DEFAULT_PHASE_TIMEOUT)
        };
        let connect_timeout = phase(|o| o.connect_timeout);
        let first_byte_timeout = phase(|o| o.first_byte_timeout);
        let between_bytes_timeout = phase(|o| o.between_bytes_timeout).max(Duration::new(0, 1));

        let connect = async {
            match self.pinned(&host, port) {
                Some(addr) => self.connect_to(addr).await,
                None => self.connect_host(&host, port).await,
            }
        };
        let tcp = tokio::time::timeout(connect_timeout, connect)
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Connect)?;
        let stream: Box<dyn Stream> = if use_tls {
            let name = server_name(&host)?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone());
            let tls = tokio::time::timeout(connect_timeout, tls.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

        // Origin form on the wire: the authority travels in the `Host` header.
        *req.uri_mut() = http::Uri::builder()
            .path_and_query(req.uri().path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;

        let send = async move {
            let res = tokio::time::timeout(first_byte_timeout, sender.send_request(req))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(Error::from)?;
            let mut timeout = tokio::time::interval(between_bytes_timeout);
            timeout.reset();
            Ok::<_, Error>(res.map(|incoming| {
                TimedBody {
                    incoming,
                    timeout: Box::pin(timeout),
                }
                .boxed_unsync()
            }))
        };
        let mut send = pin!(send);
        let mut conn = Some(conn);
        // Drive the connection while waiting for the response head.
        let res = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => {
                let Some(c) = conn.as_mut() else {
                    return Poll::Pending;
                };
                let done = ready!(Pin::new(c).poll(cx));
                conn = None;
                match done {
                    Ok(()) => send.as_mut().poll(cx),
                    Err(e) => Poll::Ready(Err(Error::from(e))),
                }
            }
        })
        .await?;
        let io = async move {
            match conn {
                None => Ok(()),
                Some(c) => c.await.map_err(|e| {
                    if e.is_timeout() {
                        Error::HttpResponseTimeout
                    } else {
                        Error::from(e)
                    }
                }),
            }
        };
        Ok((res, Box::new(io)))
    }
}

/// `host:port`, bracketing an IPv6 literal.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The name the server's certificate must carry: the requested host (an IP literal is an
/// IP name and sends no SNI).
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    ServerName::try_from(bare.to_owned()).map_err(Error::InvalidDnsNameError)
}

/// The check's TLS client configuration.
fn client_config(policy: &HttpTls) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = if !policy.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &policy.ca {
            Some(path) => ca_roots(path)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            },
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.enable_sni = policy.sni;
    Ok(config)
}

/// The CA certificates of a PEM file.
fn ca_roots(path: &Path) -> Result<RootCertStore, String> {
    let err = |e: &dyn std::fmt::Display| format!("CA file {}: {e}", path.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(&e))? {
        roots.add(cert.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    }
    if roots.is_empty() {
        return Err(err(&"no certificate in it"));
    }
    Ok(roots)
}

/// keepalived's `SSL_GET`: any certificate is taken (the handshake signatures are still
/// checked, so the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A byte stream HTTP can run over (TCP or TLS).
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// A response body whose frames must arrive within the between-bytes timeout.
struct TimedBody {
    incoming: hyper::body::Incoming,
    timeout: Pin<Box<tokio::time::Interval>>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.as_mut().reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.as_mut().poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(host: &str, port: u16, to: &str) -> HttpPin {
        HttpPin {
            host: host.into(),
            port,
            connect_to: to.parse().expect("addr"),
        }
    }

    #[test]
    fn pins_match_host_case_insensitively_and_port_exactly() {
        let s = HttpSender::new(
            vec![
                pin("www.example.com", 80, "192.0.2.10:8080"),
                pin("2001:db8::1", 443, "[2001:db8::10]:8443"),
            ],
            &HttpTls::default(),
            None,
        )
        .expect("sender");
        assert_eq!(
            s.pinned("WWW.example.com", 80),
            Some("192.0.2.10:8080".parse().expect("addr"))
        );
        assert_eq!(s.pinned("www.example.com", 81), None);
        assert_eq!(
            s.pinned("[2001:db8::1]", 443),
            Some("[2001:db8::10]:8443".parse().expect("addr"))
        );
        assert_eq!(s.pinned("www.example.com.evil", 80), None);
    }

    #[test]
    fn server_names_keep_ip_literals_as_ips() {
        assert!(matches!(
            server_name("[2001:db8::1]").expect("name"),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("192.0.2.1").expect("name"),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("www.example.com").expect("name"),
            ServerName::DnsName(_)
        ));
        assert_eq!(authority("2001:db8::1", 80), "[2001:db8::1]:80");
        assert_eq!(authority("[2001:db8::1]", 80), "[2001:db8::1]:80");
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("wasmalived-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let policy = HttpTls {
            ca: Some(empty.clone()),
            ..HttpTls::default()
        };
        let err = HttpSender::new(Vec::new(), &policy, None).expect_err("no cert");
        assert!(err.contains("empty.pem"), "{err}");
        let missing = HttpTls {
            ca: Some(dir.join("missing.pem")),
            ..HttpTls::default()
        };
        assert!(HttpSender::new(Vec::new(), &missing, None).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

//! The socket wake source: a TCP connection held to each server a run named
//! (`wasmalived:plugin/wake.on-disconnect`, [`crate::checks::scheduler::RunReport::wake_on_disconnect`]),
//! already checked to be one the check may connect to (plugin host, `caps/wake.rs`).
//!
//! The check's task holds a [`SocketWatch`]: one connection per address, opened from the
//! daemon — the network namespace and routing the check's own `wasi:sockets` use — sending
//! nothing. It fires when a connection ends: the server closes it (EOF), resets it, or it
//! cannot be made. A server process that dies has its sockets closed by its kernel, so the
//! check runs at once whether the server is on this host or another. What the server sends is
//! read and discarded, up to [`MAX_DISCARDED`] bytes per connection: a server that talks more
//! than that on a connection nobody asked anything on is not watched (logged; the interval
//! still runs the check) rather than costing the daemon a read per segment for ever.
//!
//! TCP keepalive ([`KEEPALIVE_IDLE`], [`KEEPALIVE_INTERVAL`], [`KEEPALIVE_PROBES`]) notices a
//! peer that vanished without a reset (powered off, cut off) within about 4 s: one 54-byte
//! probe a second per watched server while the connection is idle, which is what a check
//! watching a server across a network wants; a check on loopback pays one probe a second.
//!
//! Like the path watch, the connections stay up across runs that name the same addresses, so
//! a server that dies while a run is in flight still wakes the check once the run ends. Once
//! one connection has ended the watch is stale: the next run's end connects again to what it
//! names. A server that refuses the connection when the watch is armed wakes the check at once
//! (as a PID that no longer runs does); the early-run rate limit bounds a server that accepts
//! and drops every connection.

use std::io;
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};
use tokio::net::TcpStream;

/// What the server may send on a held connection before it stops being watched.
pub const MAX_DISCARDED: usize = 64 * 1024;
/// Idle time before the first keepalive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(1);
/// Time between unanswered keepalive probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// Unanswered probes after which the connection is dropped (and the check woken).
pub const KEEPALIVE_PROBES: u32 = 3;

/// The connections to the servers one run asked to be woken by.
#[derive(Debug, Default)]
pub struct SocketWatch {
    held: Vec<Held>,
    addresses: Vec<SocketAddr>,
    /// A connection ended or stopped being watched: connect again after the next run even if
    /// it names the same addresses.
    stale: bool,
}

/// Why a watch fired: which server, and how its connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The server, as the run named it.
    pub address: SocketAddr,
    /// How the connection ended (closed by the server, reset, could not be made).
    pub reason: String,
}

/// One held connection.
#[derive(Debug)]
struct Held {
    address: SocketAddr,
    link: Link,
    /// Bytes the server sent and the watch discarded.
    discarded: usize,
}

#[derive(Debug)]
enum Link {
    /// The handshake is under way: writable once it ends, either way.
    Connecting(TcpStream),
    /// Established: readable on data, end of stream or error.
    Open(TcpStream),
    /// The connection could not even be started: reported by the next poll.
    Failed(io::Error),
    /// Reported, or no longer watched: never polls ready again.
    Done,
}

/// What polling a held connection found.
enum End {
    /// The connection ended: the check should run.
    Disconnected(String),
    /// The server sent more than [`MAX_DISCARDED`]: no longer watched, nothing to run.
    Unwatched,
}

impl SocketWatch {
    /// Connect to each of `addresses`. A connection that cannot be started (refused at once,
    /// no route) fires the watch at once; one still connecting fires if the handshake fails.
    pub fn arm(addresses: &[SocketAddr]) -> Self {
        let held = addresses
            .iter()
            .map(|&address| Held {
                address,
                link: match connect(address) {
                    Ok(stream) => Link::Connecting(stream),
                    Err(e) => Link::Failed(e),
                },
                discarded: 0,
            })
            .collect();
        SocketWatch {
            held,
            addresses: addresses.to_vec(),
            stale: false,
        }
    }

    /// Whether this watch is what a run naming `addresses` needs (the same servers, every
    /// connection still up): then it is kept.
    pub fn is_current(&self, addresses: &[SocketAddr]) -> bool {
        self.addresses == addresses && !self.stale
    }

    /// Whether anything is watched (a watch with no live connection never fires).
    pub fn is_armed(&self) -> bool {
        self.held.iter().any(|h| !matches!(h.link, Link::Done))
    }

    /// Wait until a held connection ends; says which and how. The other connections stay up.
    /// Cancel-safe: the connections live in the watch, not in the future. Never resolves when
    /// nothing is watched.
    pub async fn fired(&mut self) -> Disconnect {
        std::future::poll_fn(|cx| {
            for held in &mut self.held {
                match held.poll_end(cx) {
                    Poll::Pending => {}
                    Poll::Ready(End::Disconnected(reason)) => {
                        self.stale = true;
                        return Poll::Ready(Disconnect {
                            address: held.address,
                            reason,
                        });
                    }
                    Poll::Ready(End::Unwatched) => {
                        self.stale = true;
                        tracing::warn!(server = %held.address,
                            "the server sent more than {MAX_DISCARDED} bytes on the watch connection: no longer watched until the next run");
                    }
                }
            }
            Poll::Pending
        })
        .await
    }
}

impl Held {
    /// Drive the connection: complete the handshake, discard what arrives, and say when it
    /// ends. Registers `cx` for the next event while it is pending.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        loop {
            match &mut self.link {
                Link::Done => return Poll::Pending,
                Link::Failed(_) => {
                    let Link::Failed(e) = std::mem::replace(&mut self.link, Link::Done) else {
                        unreachable!("matched Failed above")
                    };
                    return Poll::Ready(End::Disconnected(format!("cannot connect: {e}")));
                }
                Link::Connecting(stream) => {
                    let outcome = match ready!(stream.poll_write_ready(cx)) {
                        Ok(()) => stream.take_error(),
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(None) => {
                            let Link::Connecting(stream) =
                                std::mem::replace(&mut self.link, Link::Done)
                            else {
                                unreachable!("matched Connecting above")
                            };
                            self.link = Link::Open(stream);
                        }
                        Ok(Some(e)) | Err(e) => {
                            return self.end(format!("cannot connect: {e}"));
                        }
                    }
                }
                Link::Open(stream) => {
                    if let Err(e) = ready!(stream.poll_read_ready(cx)) {
                        return self.end(e.to_string());
                    }
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.try_read(&mut buf) {
                            Ok(0) => return self.end("closed by the server".into()),
                            Ok(n) => {
                                self.discarded += n;
                                if self.discarded > MAX_DISCARDED {
                                    self.link = Link::Done;
                                    return Poll::Ready(End::Unwatched);
                                }
                            }
                            // Readiness cleared: poll it again, which registers `cx`.
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return self.end(e.to_string()),
                        }
                    }
                }
            }
        }
    }

    fn end(&mut self, reason: String) -> Poll<End> {
        self.link = Link::Done;
        Poll::Ready(End::Disconnected(reason))
    }
}

/// Start a non-blocking connection to `address` with keepalive on, registered with the
/// current runtime.
fn connect(address: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES),
    )?;
    match socket.connect(&address.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    TcpStream::from_std(std::net::TcpStream::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A generous bound for a connection's end to be seen on a loaded machine (a bound for
    /// "it fired", never for "it did not").
    const DELIVERY: Duration = Duration::from_secs(10);
    /// How long a watch that should stay quiet is given to misfire.
    const QUIET: Duration = Duration::from_millis(50);

    async fn fires(watch: &mut SocketWatch, within: Duration) -> Option<Disconnect> {
        tokio::time::timeout(within, watch.fired()).await.ok()
    }

    #[tokio::test]
    async fn a_server_closing_the_held_connection_fires_the_watch() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let address = listener.local_addr().expect("addr");
        let mut watch = SocketWatch::arm(&[address]);
        assert!(watch.is_armed());
        let (mut accepted, _) = listener.accept().expect("the watch connects");
        // A banner is discarded, not a disconnect.
        accepted.write_all(b"220 ready\r\n").expect("send");
        assert_eq!(
            fires(&mut watch, QUIET).await,
            None,
            "data is no disconnect"
        );
        assert!(watch.is_current(&[address]));
        drop(accepted);
        let fired = fires(&mut watch, DELIVERY).await.expect("the close fired");
        assert_eq!(fired.address, address);
        assert_eq!(fired.reason, "closed by the server");
        assert!(
            !watch.is_current(&[address]),
            "connect again after the next run"
        );
        assert!(!watch.is_armed());
        assert_eq!(fires(&mut watch, QUIET).await, None, "fires once");
    }

    #[tokio::test]
    async fn a_server_that_is_gone_fires_at_once() {
        // A port nobody listens on: bound, then closed.
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let mut watch = SocketWatch::arm(&[address]);
        let fired = fires(&mut watch, DELIVERY).await.expect("refused fires");
        assert_eq!(fired.address, address);
        assert!(
            fired.reason.starts_with("cannot connect: "),
            "{}",
            fired.reason
        );
        assert!(fired.reason.contains("refused"), "{}", fired.reason);
    }

    #[tokio::test]
    async fn a_reset_fires_and_the_other_servers_stay_watched() {
        let steady = TcpListener::bind("127.0.0.1:0").expect("listen");
        let resetting = TcpListener::bind("127.0.0.1:0").expect("listen");
        let addresses = [
            steady.local_addr().expect("addr"),
            resetting.local_addr().expect("addr"),
        ];
        let mut watch = SocketWatch::arm(&addresses);
        let (_kept, _) = steady.accept().expect("connects");
        let (reset, _) = resetting.accept().expect("connects");
        // SO_LINGER 0: close sends a reset.
        Socket::from(reset)
            .set_linger(Some(Duration::ZERO))
            .expect("linger 0");
        let fired = fires(&mut watch, DELIVERY).await.expect("the reset fired");
        assert_eq!(fired.address, addresses[1]);
        assert!(fired.reason.contains("reset"), "{}", fired.reason);
        assert!(watch.is_armed(), "the steady server is still watched");
        assert_eq!(fires(&mut watch, QUIET).await, None);
    }

    #[tokio::test]
    async fn a_server_that_talks_too_much_is_no_longer_watched() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let address = listener.local_addr().expect("addr");
        let mut watch = SocketWatch::arm(&[address]);
        let (mut accepted, _) = listener.accept().expect("connects");
        // From a thread: more than the socket buffers may hold until the watch reads.
        let talker = std::thread::spawn(move || {
            accepted
                .write_all(&vec![b'x'; MAX_DISCARDED + 4096])
                .expect("send");
            accepted
        });
        // Read, discarded, then dropped without a wake.
        let stopped = tokio::time::timeout(DELIVERY, async {
            while watch.is_armed() {
                assert_eq!(fires(&mut watch, QUIET).await, None, "no wake for it");
            }
        })
        .await;
        assert!(stopped.is_ok(), "stopped watching");
        assert!(
            !watch.is_current(&[address]),
            "tried again after the next run"
        );
        drop(talker.join().expect("the talker"));
        assert_eq!(
            fires(&mut watch, QUIET).await,
            None,
            "its close wakes nothing"
        );
    }

    #[tokio::test]
    async fn no_addresses_never_fire() {
        let mut watch = SocketWatch::arm(&[]);
        assert!(!watch.is_armed());
        assert!(watch.is_current(&[]));
        assert_eq!(fires(&mut watch, QUIET).await, None);
    }
}

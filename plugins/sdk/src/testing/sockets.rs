//! The fake TCP dialogues and UDP peers of a [`FakeHost`]: [`FakeHost::tcp_session`] scripts
//! what a server says, [`FakeHost::udp_peer`] how a peer answers each datagram.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{FakeHost, FakeReply};
use crate::net::{Datagrams, NetError, NetOp, Stream, TcpError, UdpError};

/// How a scripted TCP server behaves once it has said all its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// It closes the connection: reads see the end of the stream.
    Close,
    /// It goes silent: reads time out.
    Hang,
}

/// A scripted TCP server at one address: the first reply is sent on connect, each later one
/// after each [`Stream::write_all`] of the client.
#[derive(Debug)]
pub(super) struct Session {
    replies: VecDeque<Vec<u8>>,
    unread: Vec<u8>,
    heard: Vec<u8>,
    end: SessionEnd,
}

impl Session {
    pub(super) fn new(replies: &[&str], end: SessionEnd) -> Session {
        Session {
            replies: replies.iter().map(|r| r.as_bytes().to_vec()).collect(),
            unread: Vec::new(),
            heard: Vec::new(),
            end,
        }
    }

    /// The server says its next line.
    fn speak(&mut self) {
        if let Some(reply) = self.replies.pop_front() {
            self.unread.extend_from_slice(&reply);
        }
    }
}

/// How a fake UDP peer answers one datagram: zero or more replies, in order.
pub(super) type UdpPeer = Box<dyn Fn(&[u8]) -> Vec<FakeReply<Vec<u8>>>>;

/// A datagram a check sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDatagram {
    /// The bound source address, if the check gave one.
    pub from: Option<IpAddr>,
    /// The peer.
    pub to: SocketAddr,
    /// The payload.
    pub data: Vec<u8>,
}

impl FakeHost {
    /// A TCP server at `addr` that says `replies` (see [`Session`]'s rule: the first on
    /// connect, one more after each write of the check), then behaves as `end`.
    /// What the check wrote is in [`FakeHost::tcp_heard`].
    pub fn tcp_session(&self, addr: SocketAddr, replies: &[&str], end: SessionEnd) {
        self.sessions
            .borrow_mut()
            .insert(addr, Session::new(replies, end));
    }

    /// Everything the check wrote to the TCP server at `addr`, as text.
    pub fn tcp_heard(&self, addr: SocketAddr) -> String {
        self.sessions
            .borrow()
            .get(&addr)
            .map(|s| String::from_utf8_lossy(&s.heard).into_owned())
            .unwrap_or_default()
    }

    /// A UDP peer at `addr`: `answer` gives the replies to each datagram sent to it. Without
    /// a peer, a datagram draws a port unreachable ([`UdpError::Refused`]).
    pub fn udp_peer(
        &self,
        addr: SocketAddr,
        answer: impl Fn(&[u8]) -> Vec<FakeReply<Vec<u8>>> + 'static,
    ) {
        self.udp_peers.borrow_mut().insert(addr, Box::new(answer));
    }

    /// The datagrams the check sent, in order.
    pub fn udp_sent(&self) -> Vec<SentDatagram> {
        self.udp_sent.borrow().clone()
    }

    pub(super) fn open_tcp_stream(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<Box<dyn Stream + '_>, NetError> {
        self.net_log.borrow_mut().push(match from {
            Some(from) => NetOp::TcpFrom { from, to },
            None => NetOp::Tcp(to),
        });
        if let Some(session) = self.sessions.borrow_mut().get_mut(&to) {
            session.speak();
            return Ok(Box::new(FakeStream {
                host: self,
                addr: to,
            }));
        }
        match self.tcp.borrow().get(&to) {
            // A plain listener: it accepts and says nothing.
            Some(FakeReply::Answer(())) => {}
            Some(FakeReply::Error(e)) => return Err(e.clone()),
            Some(FakeReply::Hang) => {
                self.advance(timeout);
                return Err(NetError::Deadline(timeout));
            }
            None => return Err(NetError::Tcp(TcpError::Refused)),
        }
        self.sessions
            .borrow_mut()
            .insert(to, Session::new(&[], SessionEnd::Hang));
        Ok(Box::new(FakeStream {
            host: self,
            addr: to,
        }))
    }

    pub(super) fn open_udp(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
    ) -> Result<Box<dyn Datagrams + '_>, NetError> {
        Ok(Box::new(FakeDatagrams {
            host: self,
            from,
            to,
            replies: VecDeque::new(),
        }))
    }
}

/// The check's end of a fake TCP connection.
struct FakeStream<'a> {
    host: &'a FakeHost,
    addr: SocketAddr,
}

impl Stream for FakeStream<'_> {
    fn read(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let mut sessions = self.host.sessions.borrow_mut();
        let Some(session) = sessions.get_mut(&self.addr) else {
            return Ok(Vec::new());
        };
        if !session.unread.is_empty() {
            let n = max.min(session.unread.len());
            return Ok(session.unread.drain(..n).collect());
        }
        match session.end {
            SessionEnd::Close if session.replies.is_empty() => Ok(Vec::new()),
            _ => {
                drop(sessions);
                self.host.advance(timeout);
                Err(NetError::Deadline(timeout))
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8], _timeout: Duration) -> Result<(), NetError> {
        if let Some(session) = self.host.sessions.borrow_mut().get_mut(&self.addr) {
            session.heard.extend_from_slice(bytes);
            session.speak();
        }
        Ok(())
    }
}

/// The check's fake UDP socket.
struct FakeDatagrams<'a> {
    host: &'a FakeHost,
    from: Option<IpAddr>,
    to: SocketAddr,
    replies: VecDeque<FakeReply<Vec<u8>>>,
}

impl Datagrams for FakeDatagrams<'_> {
    fn send(&mut self, datagram: &[u8]) -> Result<(), NetError> {
        self.host.udp_sent.borrow_mut().push(SentDatagram {
            from: self.from,
            to: self.to,
            data: datagram.to_vec(),
        });
        match self.host.udp_peers.borrow().get(&self.to) {
            Some(answer) => self.replies.extend(answer(datagram)),
            None => self
                .replies
                .push_back(FakeReply::Error(NetError::Udp(UdpError::Refused))),
        }
        Ok(())
    }

    fn recv(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, NetError> {
        match self.replies.pop_front() {
            Some(FakeReply::Answer(mut data)) => {
                data.truncate(max);
                Ok(data)
            }
            Some(FakeReply::Error(e)) => Err(e),
            Some(FakeReply::Hang) | None => {
                self.host.advance(timeout);
                Err(NetError::Deadline(timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Host;

    #[test]
    fn a_session_speaks_once_per_write_then_ends_as_told() {
        let host = FakeHost::new();
        let addr: SocketAddr = "192.0.2.25:25".parse().expect("addr");
        host.tcp_session(addr, &["220 hi\r\n", "250 ok\r\n"], SessionEnd::Close);
        let t = Duration::from_secs(1);
        let mut s = host.tcp_stream(None, addr, t).expect("open");
        assert_eq!(s.read(3, t).expect("read"), b"220");
        assert_eq!(s.read(64, t).expect("read"), b" hi\r\n");
        s.write_all(b"HELO x\r\n", t).expect("write");
        assert_eq!(s.read(64, t).expect("read"), b"250 ok\r\n");
        assert_eq!(s.read(64, t).expect("eof"), b"");
        drop(s);
        assert_eq!(host.tcp_heard(addr), "HELO x\r\n");
        let other: SocketAddr = "192.0.2.26:25".parse().expect("addr");
        assert_eq!(
            host.tcp_stream(None, other, t).err(),
            Some(NetError::Tcp(TcpError::Refused))
        );
    }

    #[test]
    fn a_udp_peer_answers_each_datagram_and_no_peer_refuses() {
        let host = FakeHost::new();
        let addr: SocketAddr = "192.0.2.53:53".parse().expect("addr");
        host.udp_peer(addr, |d| vec![FakeReply::Answer(d.to_vec())]);
        let t = Duration::from_secs(1);
        let mut u = host.udp_connect(None, addr).expect("socket");
        u.send(b"ping").expect("send");
        assert_eq!(u.recv(2, t).expect("echo"), b"pi");
        let start = host.monotonic();
        assert_eq!(u.recv(64, t), Err(NetError::Deadline(t)));
        assert_eq!(host.elapsed_since(start), t);
        let mut closed = host
            .udp_connect(None, "192.0.2.54:53".parse().expect("addr"))
            .expect("socket");
        closed.send(b"x").expect("send");
        assert_eq!(closed.recv(64, t), Err(NetError::Udp(UdpError::Refused)));
        assert_eq!(host.udp_sent().len(), 2);
    }
}

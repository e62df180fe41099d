//! Fixture: sends one UDP datagram to the `address` (IPv4:PORT) given in its params. The test
//! grants `udp` for a different peer, so the host must deny this one: verdict
//! `fail("access-denied")`. (`ok` means the datagram went out — the allowlist failed.)
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use std::net::SocketAddrV4;

use exports::wasmalived::plugin::check::Guest;
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi::sockets::udp::OutgoingDatagram;
use wasi::sockets::udp_create_socket::create_udp_socket;
use wasmalived::plugin::types::{Params, Status, Verdict};

struct DeniedUdp;

/// An unconnected socket bound to the wildcard (port 0), one `sendto` the peer.
fn send(addr: SocketAddrV4) -> Result<(), ErrorCode> {
    let [a, b, c, d] = addr.ip().octets();
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: (a, b, c, d),
    });
    let socket = create_udp_socket(IpAddressFamily::Ipv4)?;
    let wildcard = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 0,
        address: (0, 0, 0, 0),
    });
    socket.start_bind(&instance_network(), wildcard)?;
    socket.subscribe().block();
    socket.finish_bind()?;
    let (_incoming, outgoing) = socket.stream(None)?;
    outgoing.subscribe().block();
    outgoing.check_send()?;
    outgoing.send(&[OutgoingDatagram {
        data: b"probe".to_vec(),
        remote_address: Some(remote),
    }])?;
    Ok(())
}

impl Guest for DeniedUdp {
    fn check(params: Params) -> Verdict {
        let addr = params
            .iter()
            .find(|(k, _)| k == "address")
            .and_then(|(_, v)| v.parse().ok());
        let status = match addr {
            None => Status::Fail("parameter `address` (IPv4:PORT) is required".into()),
            Some(addr) => match send(addr) {
                Ok(()) => Status::Ok,
                Err(e) => Status::Fail(e.name().into()),
            },
        };
        Verdict {
            status,
            message: None,
            measurements: Vec::new(),
        }
    }
}

export!(DeniedUdp);

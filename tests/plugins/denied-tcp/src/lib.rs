//! Fixture: connects to the TCP `address` (IP:PORT) given in its params. The test grants `tcp`
//! for a different address, so the host must deny this one: verdict `fail("access-denied")`.
//! (`ok` means the connect went through — the allowlist failed.)
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use std::net::SocketAddrV4;

use exports::wasmalived::plugin::check::Guest;
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi::sockets::tcp_create_socket::create_tcp_socket;
use wasmalived::plugin::types::{Params, Status, Verdict};

struct DeniedTcp;

fn connect(addr: SocketAddrV4) -> Result<(), ErrorCode> {
    let [a, b, c, d] = addr.ip().octets();
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: (a, b, c, d),
    });
    let socket = create_tcp_socket(IpAddressFamily::Ipv4)?;
    socket.start_connect(&instance_network(), remote)?;
    let ready = socket.subscribe();
    loop {
        ready.block();
        match socket.finish_connect() {
            Err(ErrorCode::WouldBlock) => continue,
            other => return other.map(drop),
        }
    }
}

impl Guest for DeniedTcp {
    fn check(params: Params) -> Verdict {
        let addr = params
            .iter()
            .find(|(k, _)| k == "address")
            .and_then(|(_, v)| v.parse().ok());
        let status = match addr {
            None => Status::Fail("parameter `address` (IPv4:PORT) is required".into()),
            Some(addr) => match connect(addr) {
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

export!(DeniedTcp);

//! Network partitions inside the lab: nftables rules in a node's namespace that drop VRRP
//! (all of it, or only what arrives on one interface) or isolate the node completely, and a
//! second link (another bridge, `eth1` in each node) for the heartbeat-path tests.
//!
//! Every rule lives in one table, `inet wa_cut`, of the node's own namespace: [`heal`]
//! deletes that table and nothing else. The kernel here has no netem, so a cut is a drop rule.

use std::fs;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::lab::Lab;

/// The nftables table every cut lives in.
pub const TABLE: &str = "wa_cut";

/// What a node stops receiving (and, for [`Cut::Isolate`], sending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Drop every VRRP packet (IP protocol 112) arriving at the node: it stops hearing the
    /// other routers' adverts; everything else still flows.
    VrrpIn,
    /// Drop VRRP (IPv4 and IPv6) arriving on this interface only (`iifname`).
    VrrpInOn(String),
    /// Drop everything in and out except loopback: the node is cut off from everyone.
    Isolate,
}

impl Cut {
    /// The nft script that installs this cut (the table is created if missing).
    pub fn script(&self) -> String {
        let (input, output) = match self {
            Cut::VrrpIn => ("ip protocol 112 drop".to_string(), None),
            Cut::VrrpInOn(iface) => (format!("iifname \"{iface}\" meta l4proto 112 drop"), None),
            Cut::Isolate => (
                "iifname != \"lo\" drop".to_string(),
                Some("oifname != \"lo\" drop"),
            ),
        };
        let mut s = format!(
            "table inet {TABLE} {{\n  chain in {{\n    type filter hook input priority -10; policy accept;\n    {input}\n  }}\n"
        );
        if let Some(out) = output {
            s.push_str(&format!(
                "  chain out {{\n    type filter hook output priority -10; policy accept;\n    {out}\n  }}\n"
            ));
        }
        s.push_str("}\n");
        s
    }
}

/// Installs `cut` in `node`'s namespace.
pub fn cut(lab: &Lab, node: &str, cut: &Cut) -> Result<()> {
    let file = lab.dir().join(format!("{node}-cut.nft"));
    fs::write(&file, cut.script())
        .map_err(|e| LabError::io(format!("writing {}", file.display()), e))?;
    let f = file.to_string_lossy().into_owned();
    lab.run(node, &["nft", "-f", &f]).map(|_| ())
}

/// Removes every cut from `node` (deletes the `inet wa_cut` table if it exists).
pub fn heal(lab: &Lab, node: &str) -> Result<()> {
    let out = lab.exec(node, &["nft", "list", "table", "inet", TABLE])?;
    if !out.status.success() {
        return Ok(());
    }
    lab.run(node, &["nft", "delete", "table", "inet", TABLE])
        .map(|_| ())
}

/// A second link between nodes: bridge `br1` in its own namespace `<prefix>-br1`, and in each
/// attached node an `eth1` with an address of 198.51.100.0/24. Its namespace is deleted on
/// drop (the nodes' `eth1` ends go with the nodes' namespaces).
pub struct SecondLink {
    ns: String,
}

impl SecondLink {
    /// Creates the bridge namespace.
    pub fn new(lab: &Lab) -> Result<SecondLink> {
        let ns = format!("{}-br1", lab.prefix());
        cmd::run(&["ip", "netns", "add", &ns])?;
        let link = SecondLink { ns };
        let ns = link.ns.as_str();
        cmd::run(&[
            "ip",
            "-n",
            ns,
            "link",
            "add",
            "br1",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        cmd::run(&["ip", "-n", ns, "link", "set", "br1", "up"])?;
        cmd::run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        Ok(link)
    }

    /// Its namespace.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Gives `node` an `eth1` on this link with `addr` (`198.51.100.N/24`) and MAC
    /// `02:00:00:00:01:NN`; the veth peer `w<node>` joins `br1`.
    pub fn attach(&self, lab: &Lab, node: &str, addr: &str) -> Result<()> {
        let node_ns = lab.node(node)?.ns.clone();
        let last: u8 = addr
            .split('/')
            .next()
            .and_then(|a| a.rsplit('.').next())
            .and_then(|o| o.parse().ok())
            .ok_or_else(|| LabError::parse("IPv4 address on the second link", addr))?;
        let peer = format!("w{node}");
        let mac = format!("02:00:00:00:01:{last:02x}");
        cmd::run(&[
            "ip", "-n", &self.ns, "link", "add", &peer, "type", "veth", "peer", "name", "eth1",
            "netns", &node_ns,
        ])?;
        cmd::run(&[
            "ip", "-n", &self.ns, "link", "set", &peer, "master", "br1", "up",
        ])?;
        cmd::run(&["ip", "-n", &node_ns, "link", "set", "eth1", "address", &mac])?;
        cmd::run(&["ip", "-n", &node_ns, "addr", "add", addr, "dev", "eth1"])?;
        cmd::run(&["ip", "-n", &node_ns, "link", "set", "eth1", "up"])?;
        // rp_filter is off through `default` in lab nodes; set it per interface too, since
        // adverts on this path carry the node's eth0 source address.
        lab.run(
            node,
            &["sysctl", "-q", "-w", "net.ipv4.conf.eth1.rp_filter=0"],
        )
        .map(|_| ())
    }
}

impl Drop for SecondLink {
    fn drop(&mut self) {
        let _ = cmd::output(&["ip", "netns", "del", &self.ns]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_table_and_the_match() {
        let s = Cut::VrrpIn.script();
        assert!(s.starts_with("table inet wa_cut {"));
        assert!(s.contains("hook input"));
        assert!(s.contains("ip protocol 112 drop"));
        assert!(!s.contains("hook output"));
        let s = Cut::VrrpInOn("eth0".into()).script();
        assert!(s.contains("iifname \"eth0\" meta l4proto 112 drop"));
        let s = Cut::Isolate.script();
        assert!(s.contains("iifname != \"lo\" drop"));
        assert!(s.contains("hook output"));
        assert!(s.contains("oifname != \"lo\" drop"));
    }
}

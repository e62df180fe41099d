//! Issue 12, VRRP side: `use_vmac` (the RFC 5798 §7.3 virtual MAC on a macvlan interface,
//! as keepalived makes it) and accept mode (`accept` / `no_accept`, RFC 5798 §6.1, enforced
//! in the daemon's nftables table `inet wasmalived_vrrp`), each in its own namespace lab with
//! a client on the bridge.
//!
//! Waits are bounded by the protocol (a few master-down intervals at `advert_int` 0.5 s), never
//! by fixed sleeps. Needs the daemon (`cargo build -p wasmalived`), root, keepalived, nft.

use std::time::Duration;

use wasmalived_e2e::features::{conf, instance, lab_with_nodes, SETTLE};
use wasmalived_e2e::{wait_for, Impl, Lab, LabError, PacketKind, Result};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;
const CLIENT: &str = "client";
const VIP4: &str = "192.0.2.200";
const VIP6: &str = "2001:db8::200";
/// VRID 51 (0x33) for IPv4, 52 (0x34) for IPv6.
const VMAC4: &str = "00:00:5e:00:01:33";
const VMAC6: &str = "00:00:5e:00:02:34";
/// A takeover after the Master stops: its priority-0 advert makes it a skew time; a
/// master-down interval (3 × 0.5 s + skew) bounds it, and the rest is a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(6);

/// `ip -br link show NAME` on `node`: `Some(mac)` if the link exists.
fn link_mac(lab: &Lab, node: &str, name: &str) -> Result<Option<String>> {
    let ns = lab.node(node)?.ns.clone();
    let out = wasmalived_e2e::cmd::output(&["ip", "-n", &ns, "-br", "link", "show", name])?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().nth(2).map(str::to_owned))
}

fn expect_link_mac(lab: &Lab, node: &str, name: &str, mac: &str) -> Result<()> {
    wait_for(
        &format!("{node}'s {name} with MAC {mac}"),
        SETTLE,
        Duration::from_millis(20),
        || Ok(link_mac(lab, node, name)?.as_deref() == Some(mac)),
        || {
            format!(
                "now: {:?}\n{}",
                link_mac(lab, node, name).ok().flatten(),
                lab.log_summary(15)
            )
        },
    )
    .map(|_| ())
}

/// The client reaches `vip` and its neighbour entry for it is the virtual MAC `mac`.
fn expect_client_sees(lab: &Lab, vip: &str, mac: &str) -> Result<()> {
    lab.expect_ping(CLIENT, vip, SETTLE)?;
    let got = lab.neigh_mac(CLIENT, vip)?;
    if got.as_deref() != Some(mac) {
        return Err(LabError::check(format!(
            "the client's neighbour entry for {vip} is {got:?}, expected the virtual MAC {mac}\n{}",
            lab.log_summary(15)
        )));
    }
    Ok(())
}

/// Three routers with `use_vmac` on an IPv4 and an IPv6 instance: n1 and n2 run wasmalived,
/// n3 keepalived 2.2.7. Each Master's VIPs live on `vrrp.51` / `vrrp.52` with the virtual
/// MACs 00:00:5e:00:01:33 and 00:00:5e:00:02:34 (RFC 5798 §7.3), which also source its
/// adverts; the Backups have the interfaces too. n1 stops → n2 takes over; n2 stops →
/// keepalived takes over: the client's neighbour entries keep the virtual MACs throughout
/// (no gratuitous ARP needed to redirect it), it is answered by each new Master, and each
/// wasmalived removes its VMAC interfaces when it stops.
#[test]
fn use_vmac_keeps_the_virtual_mac_across_failovers_with_keepalived() -> Result<()> {
    let mut lab = lab_with_nodes("vmac", 3)?;
    lab.add_client(CLIENT, "192.0.2.50/24", "2001:db8::50/64")?;
    let nodes = ["n1", "n2", "n3"];
    let config = |node: &str, state: &str, prio: u8| {
        conf(
            node,
            &[
                instance(
                    "VI_4",
                    51,
                    state,
                    prio,
                    "0.5",
                    &[&format!("{VIP4}/24")],
                    "    use_vmac",
                ),
                instance(
                    "VI_6",
                    52,
                    state,
                    prio,
                    "0.5",
                    &[&format!("{VIP6}/64")],
                    "    use_vmac",
                ),
            ],
        )
    };
    let cap = lab.capture_bridge("bridge")?;
    let d1 = lab.start_daemon(W, "n1", &config("n1", "MASTER", 150))?;
    let d2 = lab.start_daemon(W, "n2", &config("n2", "BACKUP", 100))?;
    let d3 = lab.start_daemon(K, "n3", &config("n3", "BACKUP", 50))?;
    lab.wait_sole_holder(&nodes, VIP4, "n1", SETTLE)?;
    lab.wait_sole_holder(&nodes, VIP6, "n1", SETTLE)?;
    for node in nodes {
        expect_link_mac(&lab, node, "vrrp.51", VMAC4)?;
        expect_link_mac(&lab, node, "vrrp.52", VMAC6)?;
    }
    let ns1 = lab.node("n1")?.ns.clone();
    let on_vmac =
        wasmalived_e2e::cmd::run(&["ip", "-n", &ns1, "-o", "addr", "show", "dev", "vrrp.51"])?;
    if !on_vmac.contains(VIP4) {
        return Err(LabError::check(format!(
            "n1's VIP should be on vrrp.51: {on_vmac}"
        )));
    }
    expect_client_sees(&lab, VIP4, VMAC4)?;
    expect_client_sees(&lab, VIP6, VMAC6)?;

    d1.term()?;
    d1.wait_exit(SETTLE)?;
    lab.wait_sole_holder(&nodes, VIP4, "n2", TAKEOVER)?;
    lab.wait_sole_holder(&nodes, VIP6, "n2", TAKEOVER)?;
    for vmac in ["vrrp.51", "vrrp.52"] {
        if let Some(mac) = link_mac(&lab, "n1", vmac)? {
            return Err(LabError::check(format!(
                "n1 stopped but {vmac} ({mac}) is still there"
            )));
        }
    }
    expect_client_sees(&lab, VIP4, VMAC4)?;
    expect_client_sees(&lab, VIP6, VMAC6)?;

    // keepalived leaves the base interface's arp_announce alone: resolving the client for
    // its first reply from a VIP, it would name the VIP in an ARP request from eth0 and the
    // client would learn eth0's MAC for it (wasmalived sets arp_announce=2 there). As on a
    // real LAN, it knows its client already.
    lab.exec("n3", &["ping", "-n", "-c1", "-W1", "192.0.2.50"])?;
    d2.term()?;
    d2.wait_exit(SETTLE)?;
    lab.wait_sole_holder(&nodes, VIP4, "n3", TAKEOVER)?;
    lab.wait_sole_holder(&nodes, VIP6, "n3", TAKEOVER)?;
    expect_client_sees(&lab, VIP4, VMAC4)?;
    expect_client_sees(&lab, VIP6, VMAC6)?;
    drop(d3);

    // Every advert on the wire came from a VMAC interface: its source MAC is the virtual
    // MAC of its VRID and family.
    let packets = cap.stop()?;
    let mut adverts = 0;
    for p in &packets {
        if let PacketKind::Advert { vrid, src, .. } = &p.kind {
            adverts += 1;
            let want = if *vrid == 51 { VMAC4 } else { VMAC6 };
            if p.src_mac != want {
                return Err(LabError::check(format!(
                    "advert of VRID {vrid} from {src} has source MAC {}, expected {want}",
                    p.src_mac
                )));
            }
        }
    }
    if adverts == 0 {
        return Err(LabError::check("no advert captured on the bridge"));
    }
    lab.pass()
}

/// `nft list table inet wasmalived_vrrp` on `node`; `None` if there is no such table.
fn vrrp_table(lab: &Lab, node: &str) -> Result<Option<String>> {
    let out = lab.exec(node, &["nft", "list", "table", "inet", "wasmalived_vrrp"])?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Accept mode under `vrrp_strict` (RFC 5798 §6.1): n1 is Master (not the address owner)
/// of VI_NA (no_accept, strict mode's default) and VI_A (`accept`). The client pings both
/// VIPs: VI_A's answers, VI_NA's never does, though its ARP resolves (ARP is not filtered).
/// When n1 stops, its table is gone. The same configuration under keepalived drops the same
/// ping, which pins what "drop" means here.
#[test]
fn no_accept_drops_traffic_to_a_non_owner_masters_vips() -> Result<()> {
    let mut lab = lab_with_nodes("noacc", 2)?;
    lab.add_client(CLIENT, "192.0.2.50/24", "2001:db8::50/64")?;
    let (dropped, answered) = ("192.0.2.201", "192.0.2.202");
    let config = |node: &str| {
        let text = conf(
            node,
            &[
                instance(
                    "VI_NA",
                    61,
                    "MASTER",
                    100,
                    "0.5",
                    &[&format!("{dropped}/24")],
                    "",
                ),
                instance(
                    "VI_A",
                    62,
                    "MASTER",
                    100,
                    "0.5",
                    &[&format!("{answered}/24")],
                    "    accept",
                ),
            ],
        );
        text.replacen("global_defs {\n", "global_defs {\n    vrrp_strict\n", 1)
    };
    for (kind, node) in [(W, "n1"), (K, "n2")] {
        let d = lab.start_daemon(kind, node, &config(node))?;
        lab.wait_sole_holder(&[node], dropped, node, SETTLE)?;
        lab.wait_sole_holder(&[node], answered, node, SETTLE)?;
        // The path to the node works (the accept VIP answers)...
        lab.expect_ping(CLIENT, answered, SETTLE)?;
        // ...and the no-accept VIP never does, while its address resolves.
        for _ in 0..3 {
            if lab.ping(CLIENT, dropped)? {
                return Err(LabError::check(format!(
                    "{kind:?} on {node}: the no_accept VIP {dropped} answered a ping\n{}",
                    lab.log_summary(15)
                )));
            }
        }
        let mac = lab.node(node)?.mac.clone();
        if lab.neigh_mac(CLIENT, dropped)?.as_deref() != Some(mac.as_str()) {
            return Err(LabError::check(format!(
                "{kind:?} on {node}: the client should resolve {dropped} to {mac} (ARP is not filtered): {:?}",
                lab.neigh_mac(CLIENT, dropped)?
            )));
        }
        if kind == W {
            let table = vrrp_table(&lab, node)?.ok_or_else(|| {
                LabError::check(format!("no table inet wasmalived_vrrp on {node}"))
            })?;
            if !table.contains(dropped) || table.contains(answered) {
                return Err(LabError::check(format!(
                    "the no-accept set should hold {dropped} only:\n{table}"
                )));
            }
            d.term()?;
            d.wait_exit(SETTLE)?;
            if let Some(table) = vrrp_table(&lab, node)? {
                return Err(LabError::check(format!(
                    "wasmalived stopped but its table is still there:\n{table}"
                )));
            }
        }
    }
    lab.pass()
}

//! Packet capture on the lab bridge (tcpdump, kernel timestamps) and address-change
//! monitoring inside a node (`ip -ts monitor address`), parsed into timestamped events.

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::process::Proc;
use crate::timing::{utc_to_epoch, wait_for};

/// What a captured frame was.
#[derive(Clone, Debug, PartialEq)]
pub enum PacketKind {
    /// A VRRP advertisement.
    Advert {
        /// 2 or 3.
        version: u8,
        /// Source IP.
        src: IpAddr,
        /// Destination IP (224.0.0.18, ff02::12 or a unicast peer).
        dst: IpAddr,
        /// Virtual router id.
        vrid: u8,
        /// Advertised priority (0 = the Master is leaving).
        prio: u8,
    },
    /// A gratuitous ARP (sender IP = target IP) for this address.
    Garp(IpAddr),
    /// A neighbour advertisement for this target.
    NeighborAdvert(IpAddr),
    /// Anything else.
    Other,
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// Kernel timestamp, seconds since the epoch.
    pub t: f64,
    /// Source MAC.
    pub src_mac: String,
    /// What it was.
    pub kind: PacketKind,
}

impl Packet {
    /// `Some((src, prio))` for an advert of `vrid`.
    pub fn advert(&self, vrid: u8) -> Option<(IpAddr, u8)> {
        match self.kind {
            PacketKind::Advert {
                src, vrid: v, prio, ..
            } if v == vrid => Some((src, prio)),
            _ => None,
        }
    }
}

/// A running `tcpdump -i br0` in the bridge namespace.
pub struct BridgeCapture {
    proc: Proc,
    text: PathBuf,
    /// The pcap file (for Wireshark when a test fails).
    pub pcap: PathBuf,
}

impl BridgeCapture {
    /// Starts tcpdump on `br0` (VRRP, ARP, ICMPv6), writing `<label>.pcap` and a text
    /// decode `<label>.txt` into the lab directory; returns once tcpdump is listening.
    pub fn start(lab: &Lab, label: &str) -> Result<BridgeCapture> {
        let pcap = lab.dir().join(format!("{label}.pcap"));
        let text = lab.dir().join(format!("{label}.txt"));
        let pcap_s = pcap.to_string_lossy().into_owned();
        let err_log = lab.dir().join(format!("{label}.tcpdump.log"));
        // `--print` decodes to stdout while `-w` writes the pcap; `-l` line-buffers stdout,
        // `-U` flushes the pcap per packet, `-Z root` keeps tcpdump able to write in /tmp.
        let argv = [
            "sh",
            "-c",
            "exec tcpdump -i br0 -n -tt -e -l -U -Z root --print -w \"$0\" \
             'ip proto 112 or ip6 proto 112 or arp or icmp6' > \"$1\"",
            &pcap_s,
            &text.to_string_lossy(),
        ];
        let proc = lab.spawn_in_ns(lab.bridge_ns(), "bridge tcpdump", &argv, &err_log, &[])?;
        let p2 = proc.clone();
        wait_for(
            "tcpdump to listen on br0",
            Duration::from_secs(5),
            Duration::from_millis(10),
            || {
                Ok(fs::read_to_string(&err_log)
                    .unwrap_or_default()
                    .contains("listening on"))
            },
            || p2.log_tail(10),
        )?;
        Ok(BridgeCapture { proc, text, pcap })
    }

    /// Stops tcpdump (SIGINT flushes it) and parses what it printed.
    pub fn stop(self) -> Result<Vec<Packet>> {
        let _ = self.proc.signal("INT");
        if self.proc.wait_exit(Duration::from_secs(3))?.is_none() {
            self.proc.kill9_group()?;
        }
        let text = fs::read_to_string(&self.text)
            .map_err(|e| LabError::io(format!("reading {}", self.text.display()), e))?;
        Ok(text.lines().filter_map(parse_tcpdump_line).collect())
    }
}

/// Parses one line of `tcpdump -n -tt -e` output.
pub fn parse_tcpdump_line(line: &str) -> Option<Packet> {
    let mut words = line.split_whitespace();
    let t: f64 = words.next()?.parse().ok()?;
    let src_mac = words.next()?.to_ascii_lowercase();
    let payload = line.split_once(": ").map(|(_, p)| p)?;
    let kind = if let Some(idx) = payload.find(": VRRPv") {
        parse_vrrp(&payload[..idx], &payload[idx + 2..]).unwrap_or(PacketKind::Other)
    } else if let Some(rest) = payload.split_once("Request who-has ").map(|(_, r)| r) {
        // "Request who-has 192.0.2.200 (ff:ff:ff:ff:ff:ff) tell 192.0.2.200, length 28"
        let target = rest.split_whitespace().next()?;
        let sender = rest.split_once(" tell ")?.1.split([',', ' ']).next()?;
        if target == sender {
            target
                .parse()
                .map(PacketKind::Garp)
                .unwrap_or(PacketKind::Other)
        } else {
            PacketKind::Other
        }
    } else if let Some(rest) = payload.split_once("Reply ").map(|(_, r)| r) {
        // A gratuitous reply: "Reply 192.0.2.200 is-at 02:..., length 28" to broadcast.
        let ip = rest.split_whitespace().next()?;
        if line.contains("> ff:ff:ff:ff:ff:ff") {
            ip.parse()
                .map(PacketKind::Garp)
                .unwrap_or(PacketKind::Other)
        } else {
            PacketKind::Other
        }
    } else if let Some(rest) = payload
        .split_once("neighbor advertisement, tgt is ")
        .map(|(_, r)| r)
    {
        let ip = rest.split([',', ' ']).next()?;
        ip.parse()
            .map(PacketKind::NeighborAdvert)
            .unwrap_or(PacketKind::Other)
    } else {
        PacketKind::Other
    };
    Some(Packet { t, src_mac, kind })
}

/// `addrs` = "192.0.2.1 > 224.0.0.18", `body` = "VRRPv3, Advertisement, vrid 55, prio 100, ...".
fn parse_vrrp(addrs: &str, body: &str) -> Option<PacketKind> {
    let (src, dst) = addrs.split_once(" > ")?;
    let version = body.strip_prefix("VRRPv")?.chars().next()?.to_digit(10)? as u8;
    let field = |name: &str| -> Option<u8> {
        body.split(", ")
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(PacketKind::Advert {
        version,
        src: src.trim().parse().ok()?,
        dst: dst.trim().parse().ok()?,
        vrid: field("vrid ")?,
        prio: field("prio ")?,
    })
}

/// An address added to or deleted from a node, as `ip monitor` reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct AddrEvent {
    /// Seconds since the epoch (from `ip -ts`, printed in UTC).
    pub t: f64,
    /// `true` for an addition, `false` for a deletion.
    pub added: bool,
    /// The address.
    pub ip: IpAddr,
}

/// A running `ip -ts monitor address` inside a node.
pub struct AddrMonitor {
    proc: Proc,
}

impl AddrMonitor {
    /// Starts monitoring `node`; output goes to `<label>.txt` in the lab directory.
    pub fn start(lab: &Lab, node: &str, label: &str) -> Result<AddrMonitor> {
        let ns = lab.node(node)?.ns.clone();
        let log = lab.dir().join(format!("{label}.txt"));
        let proc = lab.spawn_in_ns(
            &ns,
            &format!("{node} ip"),
            &["ip", "-ts", "monitor", "address"],
            &log,
            &[("TZ", "UTC")],
        )?;
        // `ip monitor` prints nothing when ready; the netlink subscription is made within a
        // few milliseconds of exec.
        std::thread::sleep(Duration::from_millis(100));
        Ok(AddrMonitor { proc })
    }

    /// Stops the monitor and parses its output.
    pub fn stop(self) -> Result<Vec<AddrEvent>> {
        self.proc.kill9_group()?;
        let path = self.proc.log_path().to_path_buf();
        let text = fs::read_to_string(&path)
            .map_err(|e| LabError::io(format!("reading {}", path.display()), e))?;
        Ok(text.lines().filter_map(parse_monitor_line).collect())
    }
}

/// Parses `[2026-11-26T07:32:23.134151] Deleted 2: eth0    inet 192.0.2.200/32 ...`.
pub fn parse_monitor_line(line: &str) -> Option<AddrEvent> {
    let rest = line.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once(']')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let mut tm = time.split(':');
    let h: f64 = tm.next()?.parse().ok()?;
    let m: f64 = tm.next()?.parse().ok()?;
    let s: f64 = tm.next()?.parse().ok()?;
    let t = utc_to_epoch(year, month, day, h * 3600.0 + m * 60.0 + s);
    let rest = rest.trim_start();
    let added = !rest.starts_with("Deleted");
    if rest.contains(" tentative") {
        return None;
    }
    let mut words = rest.split_whitespace();
    while let Some(w) = words.next() {
        if w == "inet" || w == "inet6" {
            let ip = words.next()?.split('/').next()?.parse().ok()?;
            return Some(AddrEvent { t, added, ip });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrrp_garp_and_na_lines() {
        let l = "1795678336.363584 02:00:00:00:00:01 > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 46: 192.0.2.1 > 224.0.0.18: VRRPv3, Advertisement, vrid 55, prio 100, intvl 10cs, length 12";
        let p = parse_tcpdump_line(l).unwrap();
        assert_eq!(p.t, 1795678336.363584);
        assert_eq!(p.src_mac, "02:00:00:00:00:01");
        assert_eq!(p.advert(55), Some(("192.0.2.1".parse().unwrap(), 100)));
        let l = "1795678336.363718 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.200 (ff:ff:ff:ff:ff:ff) tell 192.0.2.200, length 28";
        assert_eq!(
            parse_tcpdump_line(l).unwrap().kind,
            PacketKind::Garp("192.0.2.200".parse().unwrap())
        );
        let l = "1.5 02:00:00:00:00:03 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.200 tell 192.0.2.3, length 28";
        assert_eq!(parse_tcpdump_line(l).unwrap().kind, PacketKind::Other);
        let l = "2.0 02:00:00:00:00:02 > 33:33:00:00:00:01, ethertype IPv6 (0x86dd), length 86: fe80::1 > ff02::1: ICMP6, neighbor advertisement, tgt is 2001:db8::200, length 32";
        assert_eq!(
            parse_tcpdump_line(l).unwrap().kind,
            PacketKind::NeighborAdvert("2001:db8::200".parse().unwrap())
        );
        let l = "3.0 02:00:00:00:00:02 > 33:33:00:00:00:12, ethertype IPv6 (0x86dd), length 78: fe80::ff:fe00:2 > ff02::12: VRRPv3, Advertisement, vrid 55, prio 0, intvl 10cs, length 24";
        assert!(matches!(
            parse_tcpdump_line(l).unwrap().kind,
            PacketKind::Advert {
                version: 3,
                prio: 0,
                vrid: 55,
                ..
            }
        ));
        assert_eq!(parse_tcpdump_line("tcpdump: listening on br0"), None);
    }

    #[test]
    fn monitor_lines() {
        let e = parse_monitor_line(
            "[2026-11-26T07:32:23.134151] 2: eth0    inet 192.0.2.200/32 scope global eth0",
        )
        .unwrap();
        assert!(e.added);
        assert!((e.t - 1_795_678_343.134151).abs() < 1e-6);
        let e = parse_monitor_line(
            "[2026-11-26T07:32:23.139892] Deleted 2: eth0    inet6 2001:db8::200/64 scope global",
        )
        .unwrap();
        assert!(!e.added);
        assert_eq!(e.ip, "2001:db8::200".parse::<IpAddr>().unwrap());
        assert_eq!(
            parse_monitor_line("       valid_lft forever preferred_lft forever"),
            None
        );
    }
}

//! Building blocks of the feature tests: a lab of N VRRP nodes, keepalived-syntax config
//! blocks, scripts, extra links, and waits on the status a daemon reports.

use std::time::Duration;

use crate::{wait_for, wasmalived_bin, Daemon, Lab, LabError, Packet, PacketKind, Result};

/// A lab with `count` VRRP nodes `n1`… (192.0.2.N, 2001:db8::N).
pub fn lab_with_nodes(test: &str, count: u8) -> Result<Lab> {
    wasmalived_bin()?;
    let mut lab = Lab::new(test)?;
    for n in 1..=count {
        lab.add_node(
            &format!("n{n}"),
            &format!("192.0.2.{n}/24"),
            &format!("2001:db8::{n}/64"),
        )?;
    }
    Ok(lab)
}

/// A whole VRRPv3 config: `global_defs` plus the given blocks.
pub fn conf(router_id: &str, blocks: &[String]) -> String {
    format!(
        "global_defs {{\n    router_id {router_id}\n    script_user root\n    vrrp_version 3\n}}\n{}",
        blocks.join("")
    )
}

/// One `vrrp_instance` block; `extra` holds more keyword lines (already indented or not).
pub fn instance(
    name: &str,
    vrid: u8,
    state: &str,
    prio: u8,
    advert_int: &str,
    vips: &[&str],
    extra: &str,
) -> String {
    let vips: String = vips.iter().map(|v| format!("        {v}\n")).collect();
    format!(
        "vrrp_instance {name} {{\n    state {state}\n    interface eth0\n    virtual_router_id {vrid}\n    \
         priority {prio}\n    advert_int {advert_int}\n    virtual_ipaddress {{\n{vips}    }}\n{extra}\n}}\n"
    )
}

/// Writes an executable shell script into the lab directory and returns its path.
pub fn script(lab: &Lab, name: &str, body: &str) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = lab.dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n"))
        .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| LabError::io(format!("chmod {}", path.display()), e))?;
    Ok(path.to_string_lossy().into_owned())
}

/// Gives `node` a second link `dev`: one end of a veth pair whose other end (`<dev>p`) stays
/// up in the same namespace, so `ip link set dev down/up` is a clean carrier change.
pub fn add_link(lab: &Lab, node: &str, dev: &str) -> Result<()> {
    let peer = format!("{dev}p");
    lab.run(
        node,
        &[
            "ip", "link", "add", dev, "type", "veth", "peer", "name", &peer,
        ],
    )?;
    lab.run(node, &["ip", "link", "set", &peer, "up"])?;
    lab.run(node, &["ip", "link", "set", dev, "up"])?;
    Ok(())
}

/// `ip link set dev up|down` in `node`.
pub fn set_link(lab: &Lab, node: &str, dev: &str, up: bool) -> Result<()> {
    let state = if up { "up" } else { "down" };
    lab.run(node, &["ip", "link", "set", dev, state])
        .map(|_| ())
}

/// The instance object of `wasmalived status --json` (all fields, including
/// `fault_reasons` and `split_brain`, which [`Daemon::instance_status`] does not parse).
pub fn raw_status(d: &Daemon, instance: &str) -> Result<serde_json::Value> {
    let out = d.status_json()?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|_| LabError::parse("wasmalived status JSON", &out))?;
    v.get("instances")
        .and_then(|i| i.as_array())
        .and_then(|list| {
            list.iter()
                .find(|i| i.get("name").and_then(|n| n.as_str()) == Some(instance))
        })
        .cloned()
        .ok_or_else(|| {
            LabError::check(format!(
                "{} reports no instance {instance}: {out}",
                d.describe()
            ))
        })
}

/// Waits until `instance` on `d` is in `state` with `effective_priority` `prio`.
pub fn wait_state_prio(
    lab: &Lab,
    d: &Daemon,
    instance: &str,
    state: &str,
    prio: i64,
) -> Result<()> {
    wait_for(
        &format!(
            "{instance} on {} to be {state} with effective priority {prio}",
            d.node
        ),
        Duration::from_secs(8),
        Duration::from_millis(20),
        || {
            let s = d.instance_status(instance)?;
            Ok(s.state == state && s.effective_priority == prio)
        },
        || {
            format!(
                "status now: {:?}\n{}",
                d.instance_status(instance).ok(),
                lab.log_summary(20)
            )
        },
    )
    .map(|_| ())
}

/// Fails unless `packets` hold a priority-0 advert for `vrid` from `node`'s MAC after `after`.
pub fn expect_priority_zero(
    lab: &Lab,
    packets: &[Packet],
    node: &str,
    vrid: u8,
    after: f64,
) -> Result<f64> {
    let mac = lab.node(node)?.mac.clone();
    packets
        .iter()
        .find(|p| {
            p.t >= after
                && p.src_mac == mac
                && matches!(p.kind, PacketKind::Advert { vrid: v, prio: 0, .. } if v == vrid)
        })
        .map(|p| p.t)
        .ok_or_else(|| {
            LabError::check(format!(
                "{node} sent no priority-0 advert for VRID {vrid} after {after:.3}\n{}",
                lab.log_summary(20)
            ))
        })
}

/// Skew time of a Backup with `prio` at `advert_int` seconds (RFC 5798 §6.1).
pub fn skew(prio: u8, advert_int: f64) -> f64 {
    (256.0 - f64::from(prio)) * advert_int / 256.0
}

/// Generous timeouts: elections wait a master-down interval after start.
pub const SETTLE: Duration = Duration::from_secs(10);

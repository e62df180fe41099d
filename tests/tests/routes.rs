//! `virtual_routes`, `virtual_rules`, `static_ipaddress`, `static_routes` and `static_rules`
//! end to end (issue 12), in a two-node lab: the Master holds its virtual routes and rules
//! (and only the Master), they move with the VIP on a handover and leave with the daemon;
//! the static entries are on both nodes from start-up, whatever the VRRP state, and leave at
//! shutdown. Run once with two wasmalived nodes and once with keepalived 2.2.7 as the peer
//! that takes over, which must install the same routes and rules from the same file.
//!
//! Every wait is bounded by the protocol (a few master-down intervals at `advert_int` 0.1),
//! with the lab's generous [`SETTLE`] on top for a loaded machine.
//!
//! Needs the daemon: `cargo build -p wasmalived` (or `WASMALIVED_BIN`), root, keepalived.

use std::time::Duration;

use wasmalived_e2e::features::{conf, instance, lab_with_nodes as lab, SETTLE};
use wasmalived_e2e::{wait_for, Impl, Lab, Result};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;
const N1: &str = "n1";
const N2: &str = "n2";
const PAIR: [&str; 2] = [N1, N2];
const VIP: &str = "192.0.2.200";

/// The instance's virtual routes and rules, as `ip` lists them on the Master: each check is
/// (the `ip` arguments after `-n NS`, a line that must appear).
const VIRTUAL: &[(&[&str], &str)] = &[
    (
        &["route", "show", "table", "100"],
        "198.51.100.0/24 via 192.0.2.254 dev eth0 proto keepalived src 192.0.2.200",
    ),
    (
        &["route", "show"],
        "blackhole 203.0.113.0/24 proto keepalived",
    ),
    (
        &["rule", "show"],
        "100:\tfrom 192.0.2.200 lookup 100 proto keepalived",
    ),
];

/// The static entries each node holds while its daemon runs.
fn statics(node: u8) -> Vec<(&'static [&'static str], String)> {
    vec![
        (
            &["-4", "addr", "show", "dev", "eth0"],
            format!("inet 192.0.2.10{node}/32 scope global eth0"),
        ),
        (
            &["route", "show", "table", "200"],
            "198.51.100.128/25 via 192.0.2.254 dev eth0 proto keepalived".to_owned(),
        ),
        (
            &["rule", "show"],
            "200:\tfrom all fwmark 0x7 lookup 200 proto keepalived".to_owned(),
        ),
    ]
}

fn config(node: u8, state: &str, prio: u8) -> String {
    let statics = format!(
        "static_ipaddress {{\n    192.0.2.10{node}/32 dev eth0\n}}\n\
         static_routes {{\n    198.51.100.128/25 via 192.0.2.254 dev eth0 table 200\n}}\n\
         static_rules {{\n    fwmark 7 table 200 preference 200\n}}\n"
    );
    let extra = "    virtual_routes {\n        src 192.0.2.200 198.51.100.0/24 via 192.0.2.254 dev eth0 table 100\n        blackhole 203.0.113.0/24\n    }\n\
                 \x20   virtual_rules {\n        from 192.0.2.200 table 100 preference 100\n    }";
    conf(
        &format!("n{node}"),
        &[
            statics,
            instance("VI_1", 61, state, prio, "0.1", &[VIP], extra),
        ],
    )
}

/// Whether `ip -n NODE ARGS` on `node` lists `line` (leading and trailing blanks aside). A
/// routing table no route was ever added to does not exist yet: it lists nothing.
fn lists(lab: &Lab, node: &str, args: &[&str], line: &str) -> Result<bool> {
    let mut argv = vec!["ip"];
    argv.extend_from_slice(args);
    match lab.run(node, &argv) {
        Ok(out) => Ok(out.lines().any(|l| l.trim() == line)),
        Err(e) if e.to_string().contains("FIB table does not exist") => Ok(false),
        Err(e) => Err(e),
    }
}

/// What `node` lists for each of `checks`, for failure messages.
fn listing(lab: &Lab, node: &str, checks: &[(&[&str], &str)]) -> String {
    let mut text = String::new();
    for (args, _) in checks {
        let mut argv = vec!["ip"];
        argv.extend_from_slice(args);
        let out = lab.run(node, &argv).unwrap_or_else(|e| e.to_string());
        text.push_str(&format!("{node}$ ip {}\n{out}", args.join(" ")));
    }
    text
}

/// Waits until `node` lists every line of `checks` (`present`) or none of them.
fn wait_listed(lab: &Lab, node: &str, checks: &[(&[&str], &str)], present: bool) -> Result<()> {
    let what = if present {
        "to hold"
    } else {
        "to have removed"
    };
    wait_for(
        &format!("{node} {what} {checks:?}"),
        SETTLE,
        Duration::from_millis(50),
        || {
            for (args, line) in checks {
                if lists(lab, node, args, line)? != present {
                    return Ok(false);
                }
            }
            Ok(true)
        },
        || listing(lab, node, checks),
    )?;
    Ok(())
}

fn as_checks<'a>(
    owned: &'a [(&'static [&'static str], String)],
) -> Vec<(&'static [&'static str], &'a str)> {
    owned.iter().map(|(a, l)| (*a, l.as_str())).collect()
}

/// n1 (wasmalived, Master) and n2 (`peer`, Backup) with the same routes, rules and statics.
fn routes_follow_the_master(test: &str, peer: Impl) -> Result<()> {
    let lab = lab(test, 2)?;
    let (s1, s2) = (statics(1), statics(2));
    let (s1, s2) = (as_checks(&s1), as_checks(&s2));
    let d1 = lab.start_daemon(W, N1, &config(1, "MASTER", 100))?;
    let d2 = lab.start_daemon(peer, N2, &config(2, "BACKUP", 99))?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    wait_listed(&lab, N1, VIRTUAL, true)?;
    wait_listed(&lab, N1, &s1, true)?;
    wait_listed(&lab, N2, &s2, true)?;
    // The Backup holds none of the virtual entries (each checked on its own: "none of").
    for check in VIRTUAL {
        wait_listed(&lab, N2, std::slice::from_ref(check), false)?;
    }

    // SIGTERM on n1: priority 0, routes and rules and VIPs leave n1, the peer installs them.
    d1.term()?;
    d1.wait_exit(SETTLE)?;
    lab.wait_sole_holder(&PAIR, VIP, N2, SETTLE)?;
    wait_listed(&lab, N2, VIRTUAL, true)?;
    for check in VIRTUAL.iter().chain(&s1) {
        wait_listed(&lab, N1, std::slice::from_ref(check), false)?;
    }
    wait_listed(&lab, N2, &s2, true)?;

    d2.term()?;
    d2.wait_exit(SETTLE)?;
    for check in VIRTUAL.iter().chain(&s2) {
        wait_listed(&lab, N2, std::slice::from_ref(check), false)?;
    }
    lab.pass()
}

#[test]
fn virtual_routes_and_rules_follow_the_master_statics_stay_until_shutdown() -> Result<()> {
    routes_follow_the_master("rtww", W)
}

/// keepalived as the peer that takes over installs the same routes and rules from the same
/// configuration, and removes its static entries at exit as wasmalived does.
#[test]
fn virtual_routes_and_rules_match_keepalived_as_the_peer() -> Result<()> {
    routes_follow_the_master("rtwk", K)
}

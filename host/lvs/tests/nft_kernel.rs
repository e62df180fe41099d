//! The nftables backend against the kernel (root, `--features lab-tests`): every
//! transaction the renderer produces — first apply, a pool change keeping affinity sets,
//! direct routing on a real device, IPv6, removal — is accepted by `nft` in a private
//! network namespace, and the table holds what it should.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use wasmalived_config::lvs::{Protocol, Scheduler};
use wasmalived_lvs::backend::Backend;
use wasmalived_lvs::nft::{Departed, NftRunner, Nftables};
use wasmalived_lvs::plan::{DrTarget, Forward, Match, Persistence, ServicePlan};
use wasmalived_lvs::schedule;
use wasmalived_lvs::Member;

/// A network namespace removed on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("walvs{tag}{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        Netns(name)
    }

    fn run(&self, argv: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(argv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs nft inside the namespace; records cleanups instead of running conntrack.
struct InNetns {
    ns: String,
    forgotten: std::sync::Arc<std::sync::Mutex<Vec<Departed>>>,
}

impl NftRunner for InNetns {
    fn run(&mut self, script: &str) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes())
            .map_err(|e| e.to_string())?;
        drop(child.stdin.take());
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}\n--- script ---\n{script}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn forget(&mut self, d: &Departed) -> Result<(), String> {
        self.forgotten.lock().unwrap().push(d.clone());
        Ok(())
    }
}

fn member(addr: &str, weight: u32) -> Member {
    Member {
        addr: addr.parse().unwrap(),
        weight,
    }
}

fn service(
    name: &str,
    vip: &str,
    port: u16,
    scheduler: Scheduler,
    members: Vec<Member>,
) -> ServicePlan {
    let vip: IpAddr = vip.parse().unwrap();
    ServicePlan {
        name: name.into(),
        matches: vec![Match::Addrs {
            first: vip,
            last: vip,
            port,
        }],
        protocol: Protocol::Tcp,
        ipv6: vip.is_ipv6(),
        forward: Forward::Nat,
        scheduler,
        fallback: None,
        persistence: None,
        table: schedule::plan(scheduler, &members),
        anchor: members.clone(),
        members,
    }
}

#[test]
fn every_transaction_is_accepted_by_the_kernel() {
    assert_eq!(
        wasmalived_sys::effective_ids().0,
        0,
        "needs root (make test runs it)"
    );
    let ns = Netns::new("k");
    ns.run(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    ns.run(&[
        "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    let forgotten = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut backend = Nftables::new(Box::new(InNetns {
        ns: ns.0.clone(),
        forgotten: forgotten.clone(),
    }));
    backend.clear().expect("clearing nothing is fine");

    let mut web = service(
        "192.0.2.10:80/tcp",
        "192.0.2.10",
        80,
        Scheduler::Mh,
        vec![
            member("10.0.0.1:80", 1),
            member("10.0.0.2:80", 2),
            member("10.0.0.3:80", 1),
        ],
    );
    web.persistence = Some(Persistence {
        timeout: Duration::from_secs(50),
        prefix: 32,
    });
    let v6 = service(
        "[2001:db8::10]:443/tcp",
        "2001:db8::10",
        443,
        Scheduler::Wrr,
        vec![member("[2001:db8::1]:443", 1)],
    );
    backend
        .apply(&[web.clone(), v6.clone()])
        .expect("first apply");
    let listed = ns.run(&["nft", "list", "table", "inet", "wasmalived"]);
    assert!(
        listed.contains("jhash ip saddr mod 251 seed 0x0 vmap"),
        "maglev table"
    );
    assert!(
        listed.contains("set aff_192_0_2_10_80_tcp__rs_10_0_0_1_80"),
        "{listed}"
    );
    assert!(listed.contains("dnat ip6 to [2001:db8::1]:443"), "{listed}");

    // One member leaves: the others' affinity sets stay, its chain and set go.
    web.members.remove(2);
    web.table = schedule::plan(Scheduler::Mh, &web.members);
    backend.apply(&[web.clone(), v6.clone()]).expect("change");
    let listed = ns.run(&["nft", "list", "table", "inet", "wasmalived"]);
    assert!(!listed.contains("10_0_0_3"), "{listed}");
    assert!(listed.contains("set aff_192_0_2_10_80_tcp__rs_10_0_0_1_80"));
    assert_eq!(
        forgotten.lock().unwrap().len(),
        1,
        "the departed member's connections"
    );

    // Direct routing on a real device.
    let mut dr = service(
        "192.0.2.20:80/tcp",
        "192.0.2.20",
        80,
        Scheduler::Rr,
        vec![member("10.0.0.1:80", 1)],
    );
    dr.forward = Forward::Dr {
        ingress: "eth0".into(),
        targets: vec![Some(DrTarget {
            mac: [2, 0, 0, 0, 0, 0x21],
            device: "eth1".into(),
            src_mac: [2, 0, 0, 0, 0, 0x01],
        })],
    };
    backend.apply(&[web.clone(), dr.clone()]).expect("with DR");
    let listed = ns.run(&["nft", "list", "table", "netdev", "wasmalived_dr"]);
    assert!(listed.contains("fwd to \"eth1\""), "{listed}");
    backend.apply(&[web]).expect("without DR");
    let listed = ns.run(&["nft", "list", "ruleset"]);
    assert!(!listed.contains("in_eth0"), "{listed}");

    backend.clear().expect("clear");
    let listed = ns.run(&["nft", "list", "ruleset"]);
    assert!(!listed.contains("wasmalived"), "{listed}");
}

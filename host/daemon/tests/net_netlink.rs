//! rtnetlink edge in a namespace: VIP add/remove as `ip -o addr` shows it, idempotence,
//! interface facts, and link events from RTNLGRP_LINK.

mod net_lab;

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use net_lab::{block_on, join, Lab, MAC_A};
use wasmalived::daemon::links::LinkMonitor;
use wasmalived::net::netlink::{link_events, LinkEvent, LinkUpdate, Netlink, NetlinkError};
use wasmalived_config::vip::{Scope, VipSpec};

fn addr_lines(lab: &Lab) -> String {
    lab.ip(&lab.a, &["-o", "addr", "show", "dev", "vethA"])
}

#[test]
fn vips_are_added_with_options_and_removed_idempotently() {
    let lab = Lab::new();
    let v4 = VipSpec {
        prefix_len: 24,
        brd: Some(Ipv4Addr::new(198, 51, 100, 255)),
        scope: Some(Scope::Link),
        label: Some("vethA:vip".into()),
        ..VipSpec::host("198.51.100.10".parse().unwrap())
    };
    let v6 = VipSpec {
        prefix_len: 64,
        ..VipSpec::host("2001:db8::100".parse().unwrap())
    };
    // `dev` wins over the instance's interface (here a bogus index).
    let on_dev = VipSpec {
        dev: Some("vethA".into()),
        ..VipSpec::host("192.0.2.200".parse().unwrap())
    };

    let (step_tx, step_rx) = mpsc::channel::<&'static str>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (v4c, v6c, devc) = (v4.clone(), v6.clone(), on_dev.clone());
    let worker = lab.spawn_in(&lab.a, move || {
        block_on(async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.ifindex("vethA").await.unwrap();
            for _ in 0..2 {
                nl.add_vip(&v4c, ifindex).await.unwrap();
                nl.add_vip(&v6c, ifindex).await.unwrap();
                nl.add_vip(&devc, 999_999).await.unwrap();
            }
            step_tx.send("added").unwrap();
            go_rx.recv().unwrap();
            for _ in 0..2 {
                nl.del_vip(&v4c, ifindex).await.unwrap();
                nl.del_vip(&v6c, ifindex).await.unwrap();
                nl.del_vip(&devc, 999_999).await.unwrap();
            }
            let missing = VipSpec {
                dev: Some("nope0".into()),
                ..devc.clone()
            };
            let err = nl.add_vip(&missing, ifindex).await.unwrap_err();
            assert!(
                matches!(err, NetlinkError::NoSuchInterface { ref name } if name == "nope0"),
                "{err}"
            );
            step_tx.send("deleted").unwrap();
        })
    });

    assert_eq!(step_rx.recv_timeout(Duration::from_secs(10)), Ok("added"));
    let lines = addr_lines(&lab);
    assert!(
        lines.contains("inet 198.51.100.10/24 brd 198.51.100.255 scope link vethA:vip"),
        "{lines}"
    );
    assert!(
        lines.contains("inet6 2001:db8::100/64 scope global nodad"),
        "{lines}"
    );
    assert!(
        lines.contains("inet 192.0.2.200/32 scope global"),
        "{lines}"
    );
    assert_eq!(
        lines.matches("198.51.100.10/").count(),
        1,
        "added once: {lines}"
    );
    go_tx.send(()).unwrap();

    assert_eq!(step_rx.recv_timeout(Duration::from_secs(10)), Ok("deleted"));
    join(worker);
    let lines = addr_lines(&lab);
    for gone in ["198.51.100.10", "2001:db8::100", "192.0.2.200"] {
        assert!(!lines.contains(gone), "{gone} still there: {lines}");
    }
    assert!(
        lines.contains("192.0.2.1/24"),
        "the interface's own address stays: {lines}"
    );
}

#[test]
fn interface_facts_match_ip_output() {
    let lab = Lab::new();
    let out = lab.ip(
        &lab.a,
        &["-6", "-o", "addr", "show", "dev", "vethA", "scope", "link"],
    );
    let facts = join(lab.spawn_in(&lab.a, || {
        block_on(async {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.ifindex("vethA").await.unwrap();
            let link = nl.link(ifindex).await.unwrap();
            let missing = nl.ifindex("nope0").await.unwrap_err();
            assert!(
                matches!(missing, NetlinkError::NoSuchInterface { .. }),
                "{missing}"
            );
            (
                link,
                nl.link_is_up(ifindex).await.unwrap(),
                nl.mac(ifindex).await.unwrap(),
                nl.primary_ipv4(ifindex).await.unwrap(),
                nl.ipv6_link_local(ifindex).await.unwrap(),
            )
        })
    }));
    let (link, up, mac, primary, link_local) = facts;
    assert_eq!(link.name, "vethA");
    assert!(up);
    assert_eq!(mac, MAC_A);
    assert_eq!(
        primary,
        Some(Ipv4Addr::new(192, 0, 2, 1)),
        "192.0.2.11 is secondary"
    );
    let link_local = link_local.expect("a link-local address");
    assert!(
        out.contains(&format!("inet6 {link_local}/64")),
        "{link_local} vs {out}"
    );
}

#[test]
fn link_down_and_up_arrive_as_events() {
    let lab = Lab::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    let watcher = lab.spawn_in(&lab.a, move || {
        block_on(async move {
            let mut events = link_events(None).unwrap();
            let nl = Netlink::new().unwrap();
            let ifindex = nl.ifindex("vethA").await.unwrap();
            assert!(nl.link_is_up(ifindex).await.unwrap());
            ready_tx.send(()).unwrap();
            let mut seen: Vec<LinkEvent> = Vec::new();
            for want_up in [false, true] {
                let found = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(update) = events.next().await {
                        let LinkUpdate::Link(ev) = update else {
                            continue;
                        };
                        seen.push(ev.clone());
                        if ev.ifindex == ifindex && ev.up == want_up {
                            return ev;
                        }
                    }
                    panic!("event stream ended");
                })
                .await
                .unwrap_or_else(|_| panic!("no up={want_up} event; saw {seen:?}"));
                assert_eq!(found.name, "vethA");
            }
        })
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    lab.ip(&lab.a, &["link", "set", "vethA", "down"]);
    std::thread::sleep(Duration::from_millis(200));
    lab.ip(&lab.a, &["link", "set", "vethA", "up"]);
    join(watcher);
}

/// Link events lost to an overrun (`ENOBUFS`: more events than the socket buffer holds while
/// the reader is busy) make the monitor re-read every link, so its view ends up exactly the
/// kernel's: interfaces created during the overrun are known with their index and state.
#[test]
fn a_netlink_overrun_is_resynchronised_from_a_fresh_dump() {
    let lab = Lab::new();
    let ns = lab.a.clone();
    let checker = lab.spawn_in(&lab.a, move || {
        block_on(async move {
            let nl = std::sync::Arc::new(Netlink::new().unwrap());
            // The smallest receive buffer the kernel allows.
            let monitor = LinkMonitor::start(std::sync::Arc::clone(&nl), Some(0)).unwrap();
            let mut links = monitor.subscribe();
            // 100 veth pairs in one batch while this (single) thread is blocked, so the
            // monitor cannot read: the kernel must drop events.
            let batch: String = (0..100)
                .map(|i| {
                    format!("link add ovr{i} type veth peer name ovp{i}\nlink set ovr{i} up\n")
                })
                .collect();
            let mut child = std::process::Command::new("ip")
                .args(["-n", &ns, "-batch", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), batch.as_bytes()).unwrap();
            drop(child.stdin.take());
            assert!(child.wait().unwrap().success());
            // Now the monitor reads again: overrun, resync, and a view equal to the kernel's.
            let kernel: std::collections::HashMap<String, u32> = nl
                .links()
                .await
                .unwrap()
                .into_iter()
                .map(|l| (l.name, l.ifindex))
                .collect();
            let caught_up = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    {
                        let view = links.borrow_and_update();
                        let all = (0..100).all(|i| {
                            let name = format!("ovr{i}");
                            view.get(&name).map(|l| l.ifindex) == kernel.get(&name).copied()
                        });
                        if all {
                            return;
                        }
                    }
                    links.changed().await.unwrap();
                }
            })
            .await;
            assert!(
                caught_up.is_ok(),
                "the monitor never caught up with the kernel: {} of 100 known, {} resyncs",
                (0..100)
                    .filter(|i| links.borrow().contains_key(&format!("ovr{i}")))
                    .count(),
                monitor.resyncs()
            );
            assert!(
                monitor.resyncs() >= 1,
                "100 link creations into a minimal buffer must overrun it"
            );
        })
    });
    join(checker);
}

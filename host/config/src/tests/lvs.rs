//! `virtual_server` / `real_server` / checkers: keepalived's samples load with keepalived's
//! values and defaults; each checker's keywords; corrections keepalived makes with a
//! warning; refusals with their place.

use super::*;
use crate::lvs::{
    CheckerKind, Forwarding, GroupEntry, LvsBackendChoice, Protocol, Scheduler, ServiceAddr,
    SmtpCheck, TcpCheck, DEFAULT_DELAY_LOOP,
};
use std::net::SocketAddr;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/keepalived-samples")
}

fn sample(name: &str) -> Loaded {
    let path = samples().join(format!("keepalived.conf.{name}"));
    load(&path, LoadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn keepalived_samples_load_with_their_values() {
    let c = sample("sample").config;
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.addr, ServiceAddr::Socket(sa("10.10.10.2:1358")));
    assert_eq!(
        (vs.scheduler, vs.forwarding, vs.protocol),
        (Scheduler::Rr, Forwarding::Nat, Protocol::Tcp)
    );
    assert_eq!(vs.persistence_timeout, Some(Duration::from_secs(50)));
    assert_eq!(
        vs.sorry_server.as_ref().map(|s| s.addr),
        Some(sa("192.168.200.200:1358"))
    );
    let rs = &vs.real_servers[0];
    assert_eq!((rs.addr, rs.weight), (sa("192.168.200.2:1358"), 1));
    let chk = &rs.checkers[0];
    let CheckerKind::Http(http) = &chk.kind else {
        panic!("HTTP_GET")
    };
    assert!(http.tls.is_none());
    assert_eq!(http.urls[0].path, "/testurl3/test.jsp");
    assert_eq!(
        http.urls[0].digest.as_deref(),
        Some("640205b7b0fc66c1ea91c463fac6334d")
    );
    assert_eq!(
        http.urls[0].status,
        vec![(200, 299)],
        "keepalived's default"
    );
    assert_eq!(chk.timing.retry, 3);
    assert_eq!(chk.timing.connect_timeout, Duration::from_secs(3));
    assert_eq!(chk.timing.delay_before_retry, Duration::from_secs(3));
    assert_eq!(
        chk.timing.delay_loop,
        Duration::from_secs(6),
        "the VS's delay_loop"
    );
    assert_eq!(chk.target, rs.addr);

    for name in [
        "inhibit",
        "quorum",
        "virtual_server_group",
        "fwmark",
        "SSL_GET",
        "misc_check",
        "misc_check_arg",
        "PING_CHECK",
        "UDP_CHECK",
        "HTTP_GET.port",
        "status_code",
        "virtualhost",
    ] {
        let c = sample(name).config;
        assert!(!c.virtual_servers.is_empty(), "{name}: no virtual server");
    }
    // The IPv6 sample checks with SMTP_CHECK.
    let c = sample("IPv6").config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    assert_eq!(
        chk.kind,
        CheckerKind::Smtp(SmtpCheck {
            helo_name: "foo.bar.com".into()
        })
    );
}

#[test]
fn samples_of_each_feature_carry_it() {
    let inhibit = sample("inhibit").config;
    assert!(inhibit.virtual_servers[0].real_servers[0].inhibit_on_failure);
    let quorum = sample("quorum").config;
    let vs = &quorum.virtual_servers[0];
    assert!(vs.quorum_up.is_some() && vs.quorum_down.is_some());
    let vsg = sample("virtual_server_group").config;
    assert_eq!(
        vsg.virtual_servers[0].addr,
        ServiceAddr::Group("VSG_1".into())
    );
    let entries = &vsg.virtual_server_groups[0].entries;
    assert!(entries.contains(&GroupEntry::Fwmark(1)));
    assert!(entries.contains(&GroupEntry::Addrs {
        first: "192.168.200.3".parse().unwrap(),
        last: "192.168.200.10".parse().unwrap(),
        port: 80
    }));
    let fwmark = sample("fwmark").config;
    assert!(matches!(
        fwmark.virtual_servers[0].addr,
        ServiceAddr::Fwmark(_)
    ));
    let ssl = sample("SSL_GET").config;
    let CheckerKind::Http(h) = &ssl.virtual_servers[0].real_servers[0].checkers[0].kind else {
        panic!("SSL_GET")
    };
    let tls = h.tls.as_ref().expect("SSL_GET has TLS");
    assert!(!tls.verify, "keepalived never verifies certificates");
    let misc = sample("misc_check").config;
    assert!(misc
        .virtual_servers
        .iter()
        .flat_map(|v| &v.real_servers)
        .flat_map(|r| &r.checkers)
        .any(|c| matches!(&c.kind, CheckerKind::Misc(m) if !m.argv.is_empty())));
    let ping = sample("PING_CHECK").config;
    assert!(matches!(
        ping.virtual_servers[0].real_servers[0].checkers[0].kind,
        CheckerKind::Ping
    ));
    let udp = sample("UDP_CHECK").config;
    let vs = &udp.virtual_servers[0];
    assert_eq!(vs.protocol, Protocol::Udp);
    let chk = &vs.real_servers[0].checkers[0];
    assert!(matches!(chk.kind, CheckerKind::Udp(_)));
    assert_eq!(
        (chk.timing.retry, chk.timing.connect_timeout),
        (3, Duration::from_secs(3))
    );
}

const VS: &str = "virtual_server 192.0.2.10 80 {\n";

#[test]
fn defaults_and_inheritance_follow_keepalived() {
    let c = ok(&format!(
        "{VS} lb_algo wrr\n real_server 10.0.0.1 {{\n  TCP_CHECK {{\n  }}\n }}\n \
         real_server 10.0.0.2 8080 {{\n  weight 3\n  retry 4\n  MISC_CHECK {{\n   misc_path \"/bin/true\"\n  }}\n  \
         HTTP_GET {{\n   url {{\n    path /\n   }}\n  }}\n }}\n}}\n"
    ))
    .config;
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.forwarding, Forwarding::Nat, "NAT by default");
    assert_eq!((vs.quorum, vs.hysteresis), (1, 0));
    let rs1 = &vs.real_servers[0];
    assert_eq!(
        rs1.addr,
        sa("10.0.0.1:80"),
        "NAT: a missing port is the service's"
    );
    let tcp = &rs1.checkers[0].timing;
    assert_eq!(tcp.delay_loop, DEFAULT_DELAY_LOOP);
    assert_eq!(
        (tcp.retry, tcp.delay_before_retry),
        (1, Duration::from_secs(1))
    );
    assert_eq!(tcp.connect_timeout, Duration::from_secs(5));
    assert_eq!(
        tcp.warmup, DEFAULT_DELAY_LOOP,
        "warmup defaults to delay_loop"
    );
    let rs2 = &vs.real_servers[1];
    assert_eq!((rs2.addr, rs2.weight), (sa("10.0.0.2:8080"), 3));
    assert_eq!(rs2.checkers[0].timing.retry, 4, "the real server's retry");
    let CheckerKind::Misc(m) = &rs2.checkers[0].kind else {
        panic!("misc")
    };
    assert_eq!(
        m.timeout, DEFAULT_DELAY_LOOP,
        "misc_timeout defaults to delay_loop"
    );
    assert_eq!(
        rs2.checkers[1].timing.delay_before_retry,
        Duration::from_secs(3),
        "HTTP_GET waits 3 s between retries"
    );
}

#[test]
fn tcp_check_closes_with_a_fin_unless_close_with_reset() {
    let c = ok(&format!(
        "{VS} lb_algo rr\n real_server 10.0.0.1 {{\n  TCP_CHECK {{\n  }}\n  \
         TCP_CHECK {{\n   connect_port 81\n   close_with_reset\n  }}\n }}\n}}\n"
    ))
    .config;
    let kinds: Vec<&CheckerKind> = c.virtual_servers[0].real_servers[0]
        .checkers
        .iter()
        .map(|c| &c.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            &CheckerKind::Tcp(TcpCheck {
                close_with_reset: false
            }),
            &CheckerKind::Tcp(TcpCheck {
                close_with_reset: true
            }),
        ]
    );
    let dump = c.dump().to_string();
    assert!(
        dump.contains("TCP_CHECK 10.0.0.1:81\n            close_with_reset\n"),
        "{dump}"
    );
    assert_eq!(dump.matches("close_with_reset").count(), 1, "{dump}");
    let w = warnings(&format!(
        "{VS} lb_algo rr\n real_server 10.0.0.1 {{\n  TCP_CHECK {{\n   close_with_reset maybe\n  }}\n }}\n}}\n"
    ));
    assert!(
        w[0].starts_with("t.conf:5:21: warning: bad boolean 'maybe' for close_with_reset"),
        "{w:?}"
    );
    let w = warnings(&format!(
        "{VS} lb_algo rr\n real_server 10.0.0.1 {{\n  TCP_CHECK {{\n   close_with_rst\n  }}\n }}\n}}\n"
    ));
    assert_eq!(
        w,
        ["t.conf:5:4: warning: unknown or unsupported keyword 'close_with_rst' in TCP_CHECK; ignored"]
    );
}

#[test]
fn missing_scheduler_and_excess_quorum_are_corrected_with_warnings() {
    let w = warnings(&format!(
        "{VS} quorum 5\n hysteresis 9\n real_server 10.0.0.1 80 {{\n  weight 2\n }}\n}}\n"
    ));
    let all = w.join("\n");
    assert!(
        all.contains("no lb_algo set, using keepalived's default wlc"),
        "{all}"
    );
    assert!(
        all.contains(
            "quorum 5 exceeds the total weight of the real servers 2; reducing quorum to 2"
        ),
        "{all}"
    );
    assert!(
        all.contains("hysteresis 9 >= quorum 2; setting hysteresis to 1"),
        "{all}"
    );
    assert!(
        all.contains("no checker; the real server is always up"),
        "{all}"
    );
}

#[test]
fn dr_resets_a_different_real_server_port() {
    let l = ok(&format!(
        "{VS} lb_kind DR\n lb_algo rr\n real_server 10.0.0.1 8080 {{\n }}\n}}\n"
    ));
    assert_eq!(
        l.config.virtual_servers[0].real_servers[0].addr,
        sa("10.0.0.1:80")
    );
    assert!(l
        .warnings
        .iter()
        .any(|w| w.to_string().contains("reset to 80")));
}

#[test]
fn plugin_check_takes_the_plugin_form_keywords() {
    let c = ok(&format!(
        "{VS} lb_algo rr\n real_server 10.0.0.1 {{\n  PLUGIN_CHECK {{\n   plugin redis-ping\n   \
         param key health\n   allow_tcp 10.0.0.1:6379\n   memory_limit 8M\n   delay_loop 2\n  }}\n }}\n}}\n"
    ))
    .config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    let CheckerKind::Plugin(p) = &chk.kind else {
        panic!("plugin")
    };
    assert_eq!(p.params, vec![("key".to_string(), "health".to_string())]);
    assert_eq!(p.grants.tcp.len(), 1);
    assert_eq!(p.grants.memory_limit, 8 << 20);
    assert_eq!(chk.timing.delay_loop, Duration::from_secs(2));
}

#[test]
fn bfd_check_and_bad_values_are_refused_with_their_place() {
    let e = err(&format!(
        "{VS} lb_algo rr\n real_server 10.0.0.1 {{\n  BFD_CHECK {{\n  }}\n }}\n}}\n"
    ));
    assert!(
        e[0].starts_with("t.conf:4:3: error: BFD_CHECK is not supported: wasmalived has no BFD"),
        "{e:?}"
    );
    let e = err(&format!("{VS} lb_algo fastest\n}}\n"));
    assert!(
        e[0].starts_with("t.conf:2:10: error: unknown scheduler 'fastest'"),
        "{e:?}"
    );
    let e = err(&format!(
        "{VS} lb_algo rr\n real_server 10.0.0.1 {{\n  HTTP_GET {{\n   url {{\n    path /\n    digest xyz\n   }}\n  }}\n }}\n}}\n"
    ));
    assert!(e[0].contains("bad digest 'xyz'"), "{e:?}");
    let e = err("virtual_server group NOPE {\n lb_algo rr\n}\n");
    assert!(
        e[0].contains("no virtual_server_group NOPE is defined"),
        "{e:?}"
    );
    let e = err(&format!(
        "{VS} lb_algo rr\n real_server 2001:db8::1 80 {{\n }}\n}}\n"
    ));
    assert!(
        e[0].contains("not of the virtual server's address family"),
        "{e:?}"
    );
}

#[test]
fn lvs_sync_daemon_reads_keepalived_options_and_dumps_them() {
    let text = format!(
        "global_defs {{\n lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 239.1.2.3\n}}\n{}",
        instance("")
    );
    let c = ok(&text).config;
    let sync = c.global.lvs_sync_daemon.as_ref().expect("set");
    assert_eq!(
        (sync.interface.as_str(), sync.instance.as_str()),
        ("eth1", "VI_1")
    );
    assert_eq!(
        (sync.sync_id, sync.maxlen, sync.port, sync.ttl),
        (Some(7), Some(1400), Some(8849), Some(2))
    );
    assert_eq!(sync.group, Some("239.1.2.3".parse().unwrap()));
    assert!(c.dump().to_string().contains(
        "    lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 239.1.2.3\n"
    ));
    // Only the interface and the instance: the engine's defaults for the rest.
    let c = ok(&format!(
        "global_defs {{\n lvs_sync_daemon eth1 VI_1\n}}\n{}",
        instance("")
    ))
    .config;
    let sync = c.global.lvs_sync_daemon.unwrap();
    assert_eq!((sync.sync_id, sync.port, sync.group), (None, None, None));
}

#[test]
fn lvs_sync_daemon_needs_a_defined_instance_and_ignores_bad_options_as_keepalived() {
    let e = err(&format!(
        "global_defs {{\n  lvs_sync_daemon eth1 VI_NOPE\n}}\n{}",
        instance("")
    ));
    assert!(
        e[0].starts_with("t.conf:2:24: error: lvs_sync_daemon follows vrrp_instance 'VI_NOPE', which is not defined"),
        "{e:?}"
    );
    let e = err("global_defs {\n lvs_sync_daemon eth1\n}\n");
    assert!(
        e[0].starts_with(
            "t.conf:2:2: error: lvs_sync_daemon needs an interface and a vrrp_instance"
        ),
        "{e:?}"
    );
    let w = warnings(&format!(
        "global_defs {{\n lvs_sync_daemon eth1 VI_1 id 300 group 192.0.2.1 speed 9\n lvs_sync_daemon eth2 VI_1\n}}\n{}",
        instance("")
    ));
    assert!(
        w.iter()
            .any(|w| w.starts_with("t.conf:2:31:") && w.contains("using the instance's VRID")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("192.0.2.1 is not a multicast address")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("unknown lvs_sync_daemon option 'speed'")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("t.conf:3:2:")
                && w.contains("already been specified as eth1 VI_1")),
        "{w:?}"
    );
}

#[test]
fn lvs_backend_is_typed_dumped_and_refused_with_its_place() {
    let vs = "virtual_server 192.0.2.10 80 {\n real_server 198.51.100.1 80 {\n }\n}\n";
    for (word, want) in [
        ("auto", LvsBackendChoice::Auto),
        ("ipvs", LvsBackendChoice::Ipvs),
        ("nftables", LvsBackendChoice::Nftables),
    ] {
        let c = ok(&format!(
            "global_defs {{\n lvs_backend {word}\n}}\n{}{vs}",
            instance("")
        ))
        .config;
        assert_eq!(c.global.lvs_backend, want);
        let dump = c.dump().to_string();
        assert!(
            dump.contains(&format!("    lvs_backend {word}\n")),
            "{dump}"
        );
    }
    // The default, dumped only where it matters (there are virtual servers).
    let default = ok(&format!("{}{vs}", instance(""))).config;
    assert_eq!(default.global.lvs_backend, LvsBackendChoice::Auto);
    assert!(default
        .dump()
        .to_string()
        .contains("    lvs_backend auto\n"));
    assert!(!ok(&instance(""))
        .config
        .dump()
        .to_string()
        .contains("lvs_backend"));
    let e = err(&format!(
        "global_defs {{\n lvs_backend kernel\n}}\n{}",
        instance("")
    ));
    assert!(
        e.iter().any(|e| e.contains(":2:14:")
            && e.contains("bad lvs_backend 'kernel': expected auto, ipvs or nftables")),
        "{e:?}"
    );
}

/// The UDP_CHECK of the real server of a one-server `virtual_server` with `body`, or the
/// errors.
fn udp_check(body: &str) -> Result<crate::lvs::UdpCheck, Vec<String>> {
    let text = format!(
        "{VS} lb_algo rr\n protocol UDP\n real_server 10.0.0.1 80 {{\n  UDP_CHECK {{\n{body}  }}\n }}\n}}\n"
    );
    let loaded = parse_str(&text, Path::new("t.conf"), LoadOptions::default())
        .map_err(|e| e.errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    match &loaded.config.virtual_servers[0].real_servers[0].checkers[0].kind {
        CheckerKind::Udp(u) => Ok(u.clone()),
        other => panic!("not a UDP_CHECK: {other:?}"),
    }
}

#[test]
fn udp_hex_strings_read_as_keepalived_reads_them() {
    // Words joined, spaces between octets skipped, a lone digit is one octet.
    let u = udp_check("   payload 41 42 4 ff\n   require_reply 4f4B\n").unwrap();
    assert_eq!(u.payload, [0x41, 0x42, 0x04, 0xff]);
    assert_eq!(u.require_reply.as_deref(), Some(&[0x4f, 0x4b][..]));
    assert!(u.require_reply_mask.is_empty(), "no wildcard, no mask");
    // `X` nibbles are wildcards in require_reply.
    let u = udp_check("   require_reply 4X xx 0a X\n").unwrap();
    assert_eq!(
        u.require_reply.as_deref(),
        Some(&[0x40, 0x00, 0x0a, 0x00][..])
    );
    assert_eq!(u.require_reply_mask, [0x0f, 0xff, 0x00, 0x0f]);
    // keepalived has no `0x` prefix: there the `x` is a wildcard nibble too.
    let u = udp_check("   require_reply 0x41\n").unwrap();
    assert_eq!(u.require_reply.as_deref(), Some(&[0x00, 0x41][..]));
    assert_eq!(u.require_reply_mask, [0x0f, 0x00]);
    // No hex string: a reply is required, nothing compared.
    let u = udp_check("   require_reply\n").unwrap();
    assert_eq!(u.require_reply.as_deref(), Some(&[][..]));
    // No wildcard in a payload, no other letters anywhere: refused with the place.
    for (body, want) in [
        ("   payload 4X\n", "t.conf:6:12: error: bad hex string '4X'"),
        (
            "   payload 0x41\n",
            "t.conf:6:12: error: bad hex string '0x41'",
        ),
        (
            "   require_reply 41 zz\n",
            "t.conf:6:18: error: bad hex string '41 zz'",
        ),
    ] {
        let e = udp_check(body).unwrap_err();
        assert!(e[0].starts_with(want), "{body:?}: {e:?}");
    }
}

//! Syntax features as real files use them, includes, and the typed result.

use super::*;

#[test]
fn syntax_as_real_files_write_it() {
    let text = "! keepalived.conf — Größe, non-ASCII comment\r\n\
global_defs {  # comment after a brace\r\n\
\trouter_id\tn1 ! trailing bang comment\r\n\
}\r\n\
vrrp_script chk_a\r\n\
{\r\n\
    script \"/bin/check --flag '#not a comment'\"\r\n\
}\r\n\
vrrp_instance VI_1{\r\n\
\tinterface eth0\r\n\
\tvirtual_router_id 55\r\n\
\tvirtual_ipaddress { 192.0.2.200 }\r\n\
\ttrack_script { chk_a }\r\n\
}\r\n\
vrrp_sync_group VG_1{\r\n\
  group {\r\n\
    VI_1\r\n\
  }\r\n\
}";
    let l = ok(text);
    assert!(
        l.warnings.iter().all(|w| !w.message.contains("unknown")),
        "{:?}",
        l.warnings
    );
    let c = l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("n1"));
    assert_eq!(
        c.scripts[0].kind,
        ScriptKind::Exec {
            argv: vec![
                "/bin/check".into(),
                "--flag".into(),
                "#not a comment".into()
            ]
        }
    );
    assert_eq!(c.instances[0].vips.len(), 1);
    assert_eq!(c.instances[0].track_scripts[0].name, "chk_a");
    assert_eq!(c.sync_groups[0].instances, ["VI_1"]);
}

#[test]
fn instance_keywords_are_typed() {
    let text = format!(
        "global_defs {{\n vrrp_garp_master_delay 7\n vrrp_garp_master_refresh 60\n}}\nvrrp_script chk {{\n script /bin/true\n weight 10 reverse\n}}\n{}",
        instance(
            "state MASTER\n priority 150\n advert_int 2\n nopreempt\n preempt_delay 2.5\n mcast_src_ip 192.0.2.1\n\
             virtual_ipaddress_excluded {\n 2001:db8::5/64 dev eth1\n }\n\
             track_interface {\n eth1\n eth2 weight -20 reverse\n }\n\
             track_script {\n chk\n chk weight -7\n }\n\
             garp_master_repeat 3\n garp_master_refresh 0\n\
             notify_master \"/usr/local/bin/notify.sh master 'a b'\" root\n notify /bin/n\n\
             dont_track_primary\n no_accept"
        )
    );
    let l = ok(&text);
    let i = &l.config.instances[0];
    assert_eq!(i.initial_state, InitialState::Master);
    assert!(!i.nopreempt, "nopreempt with state MASTER is dropped");
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("nopreempt needs state BACKUP")));
    assert_eq!(i.priority.get(), 150);
    assert_eq!(i.advert_int.duration(), Duration::from_secs(2));
    assert_eq!(
        i.preempt_delay,
        Duration::ZERO,
        "preempt_delay with state MASTER is dropped, as keepalived does"
    );
    assert_eq!(i.mcast_src_ip, Some("192.0.2.1".parse().expect("ip")));
    assert_eq!(i.excluded_vips[0].dev.as_deref(), Some("eth1"));
    assert_eq!(
        i.track_interfaces[1],
        TrackInterface {
            name: "eth2".into(),
            weight: -20,
            reverse: true
        }
    );
    let script = l.config.script("chk").expect("chk");
    assert_eq!(i.track_scripts[0].effective_weight(script), (10, true));
    assert_eq!(
        i.track_scripts.len(),
        1,
        "a second line for chk is ignored, as keepalived does"
    );
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("tracks script 'chk' twice")));
    assert_eq!(i.garp.master_delay, Duration::from_secs(7));
    assert_eq!(i.garp.master_repeat, 3);
    assert_eq!(
        i.garp.master_refresh, None,
        "instance 0 turns the global refresh off"
    );
    assert_eq!(
        l.config.global.garp.master_refresh,
        Some(Duration::from_secs(60))
    );
    let n = i.notify.master.as_ref().expect("notify_master");
    assert_eq!(n.argv, ["/usr/local/bin/notify.sh", "master", "a b"]);
    assert_eq!(
        n.user,
        Some(RunAs {
            user: "root".into(),
            group: None
        })
    );
    assert_eq!(
        i.notify.any.as_ref().map(|n| n.argv.clone()),
        Some(vec!["/bin/n".to_string()])
    );
    assert!(i.dont_track_primary && !i.accept);
}

#[test]
fn version_and_family_resolution() {
    let v6 = ok(&instance("").replace("192.0.2.200", "2001:db8::1")).config;
    assert_eq!(
        (v6.instances[0].version, v6.instances[0].family),
        (Version::V3, Family::V6)
    );
    let g3 = ok(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        instance("advert_int 0.25")
    ))
    .config;
    assert_eq!(
        g3.instances[0].advert_int.duration(),
        Duration::from_millis(250)
    );
    let over = ok(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        instance("version 2")
    ))
    .config;
    assert_eq!(over.instances[0].version, Version::V2);
    let peers = ok("vrrp_instance U {\n interface eth0\n virtual_router_id 9\n unicast_src_ip 2001:db8::1\n unicast_peer {\n 2001:db8::2\n }\n virtual_ipaddress {\n fe80::1\n }\n}\n").config;
    assert_eq!(peers.instances[0].family, Family::V6);
    assert!(peers.instances[0].is_unicast());
}

#[test]
fn authentication_rules() {
    let auth = |body: &str| instance(&format!("authentication {{\n{body}\n}}"));
    let l = ok(&auth("auth_type PASS\nauth_pass 123456789"));
    assert_eq!(
        l.config.instances[0].auth_pass,
        Some(AuthPass("12345678".into()))
    );
    assert!(
        l.warnings[0]
            .to_string()
            .starts_with("t.conf:9:11: warning: auth_pass is longer than 8 bytes"),
        "{:?}",
        l.warnings
    );
    let l = ok(&auth("auth_type AH\nauth_pass x"));
    assert_eq!(l.config.instances[0].auth_pass, None);
    assert!(l.warnings[0].message.contains("AH is not supported"));
    let l =
        ok(&auth("auth_type PASS\nauth_pass x")
            .replace("interface eth0", "interface eth0\nversion 3"));
    assert_eq!(l.config.instances[0].auth_pass, None);
    assert!(l.warnings[0]
        .message
        .contains("VRRPv3 has no authentication"));
}

#[test]
fn vrrp_strict_rules() {
    let strict = |extra: &str| format!("global_defs {{\n vrrp_strict\n}}\n{}", instance(extra));
    let l = ok(&strict(
        "state MASTER\npriority 100\nauthentication {\nauth_type PASS\nauth_pass x\n}",
    ));
    let i = &l.config.instances[0];
    assert!(i.strict && !i.accept && i.auth_pass.is_none());
    assert_eq!(i.initial_state, InitialState::Backup);
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(err(&strict("unicast_peer {\n192.0.2.9\n}"))[0]
        .contains("strict mode does not allow unicast peers"));
    let l = ok(&strict("priority 150\naccept"));
    assert!(
        !l.config.instances[0].accept,
        "accept with VRRPv2 in strict mode"
    );
    let owner = ok(&strict("priority 255\nstate MASTER")).config;
    assert!(owner.instances[0].accept);
}

#[test]
fn unsupported_sections_reported_once_per_kind() {
    let text = format!(
        "bfd_instance a {{\n}}\nbfd_instance b {{\n}}\ngarp_group {{\n}}\ngarp_group {{\n}}\n{}",
        instance("")
    );
    let w = warnings(&text);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0], "t.conf:1:1: warning: bfd_instance is not supported by wasmalived; section skipped (further bfd_instance sections are skipped silently)");
    assert!(w[1].starts_with("t.conf:5:1: warning: garp_group is not supported"));
}

#[test]
fn script_defined_after_tracking_instance_is_not_tracked_as_keepalived() {
    let text = format!(
        "{}vrrp_script late {{\n script /bin/true\n}}\n",
        instance("track_script {\n late\n}")
    );
    let l = ok(&text);
    assert!(l.config.instances[0].track_scripts.is_empty());
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w, [
        "t.conf:8:2: warning: vrrp_script late is defined after vrrp_instance VI_1; keepalived does not track it, and neither does wasmalived (move the vrrp_script above vrrp_instance VI_1)",
        "t.conf:11:1: warning: vrrp_script late is not tracked by any instance or sync group; it is not run (keepalived removes it too)",
    ]);
}

#[test]
fn includes_relative_to_the_including_file_with_globs() {
    let dir = TempDir::new("inc");
    dir.write(
        "conf.d/10-script.conf",
        "vrrp_script chk {\n script /bin/true\n}\n",
    );
    dir.write(
        "conf.d/20-instance.conf",
        &instance("track_script {\n chk\n}"),
    );
    dir.write(
        "conf.d/sub/global.conf",
        "global_defs {\n router_id from-sub\n}\n",
    );
    dir.write("conf.d/30-nested.conf", "include sub/global.conf\n");
    let main = dir.write(
        "keepalived.conf",
        "include conf.d/*.conf\ninclude conf.d/none-*.conf\n",
    );
    let l = load(&main, LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.config.global.router_id.as_deref(), Some("from-sub"));
    assert_eq!(l.config.instances[0].track_scripts[0].name, "chk");
    assert!(
        l.warnings.is_empty(),
        "a plain include whose pattern matches nothing is silent, as in keepalived: {:?}",
        l.warnings
    );
}

#[test]
fn diagnostics_in_included_files_name_that_file() {
    let dir = TempDir::new("incdiag");
    let inc = dir.write(
        "inc/bad.conf",
        "\nvrrp_instance X {\n  interface eth0\n  virtual_router_id 300\n}\n",
    );
    let main = dir.write("main.conf", "include inc/bad.conf\n");
    let e = load(&main, LoadOptions::default()).expect_err("bad vrid");
    assert_eq!(
        e.errors[0].to_string(),
        format!(
            "{}:4:21: error: bad virtual_router_id '300': expected an integer 1..=255 (keepalived ignores it, then refuses vrrp_instance X, which has no virtual_router_id)",
            inc.display()
        )
    );
}

#[test]
fn missing_top_file_is_an_error() {
    let e = load(
        Path::new("/nonexistent/wasmalived.conf"),
        LoadOptions::default(),
    )
    .expect_err("missing");
    assert!(e.errors[0].to_string().starts_with(
        "/nonexistent/wasmalived.conf: error: cannot read /nonexistent/wasmalived.conf"
    ));
}

#[test]
fn metrics_listen_takes_an_ipv4_or_ipv6_socket_address() {
    assert_eq!(ok(&instance("")).config.global.metrics_listen, None);
    for (text, want) in [
        ("127.0.0.1:9650", "127.0.0.1:9650"),
        ("[::1]:9650", "[::1]:9650"),
    ] {
        let c = ok(&format!(
            "global_defs {{\n    metrics_listen {text}\n}}\n{}",
            instance("")
        ))
        .config;
        assert_eq!(
            c.global.metrics_listen.map(|a| a.to_string()).as_deref(),
            Some(want)
        );
        assert!(
            c.dump()
                .to_string()
                .contains(&format!("    metrics_listen {want}\n")),
            "{}",
            c.dump()
        );
    }
    for (bad, why) in [
        ("localhost:9650", "expected IP:PORT"),
        ("127.0.0.1", "expected IP:PORT"),
        ("::1:9650", "expected IP:PORT"),
        ("127.0.0.1:0", "port 0"),
    ] {
        let errs = err(&format!(
            "global_defs {{\n    metrics_listen {bad}\n}}\n{}",
            instance("")
        ));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("t.conf:2:20:") && e.contains(why)),
            "{bad}: {errs:?}"
        );
    }
}

/// `use_vmac [NAME]` / `vmac_xmit_base`, completed as keepalived does (vrrp_parser.c,
/// vrrp.c `vrrp_complete_instance`).
#[test]
fn use_vmac_names_the_interface_and_xmit_base_follows_unicast() {
    let named = ok(&instance("    use_vmac vmac51\n    vmac_xmit_base"));
    let v = named.config.instances[0].use_vmac.clone().expect("vmac");
    assert_eq!(
        (v.ifname.as_str(), v.named, v.xmit_base),
        ("vmac51", true, true)
    );
    let dump = named.config.dump().to_string();
    assert!(
        dump.contains("    use_vmac vmac51\n    vmac_xmit_base on\n"),
        "{dump}"
    );

    let default = ok(&instance("    use_vmac"));
    let v = default.config.instances[0].use_vmac.clone().expect("vmac");
    assert_eq!(
        (v.ifname.as_str(), v.named, v.xmit_base),
        ("vrrp.55", false, false)
    );

    let unicast = ok(&instance(
        "    use_vmac\n    unicast_src_ip 192.0.2.1\n    unicast_peer {\n        192.0.2.2\n    }",
    ));
    assert!(
        unicast.config.instances[0]
            .use_vmac
            .as_ref()
            .unwrap()
            .xmit_base
    );
    assert!(
        unicast
            .warnings
            .iter()
            .any(|w| w.to_string().contains("needs vmac_xmit_base")),
        "{:?}",
        unicast.warnings
    );

    let alone = warnings(&instance("    vmac_xmit_base"));
    assert!(
        alone
            .iter()
            .any(|w| w.contains("t.conf:7:5") && w.contains("no effect without use_vmac")),
        "{alone:?}"
    );
    assert!(ok(&instance("")).config.instances[0].use_vmac.is_none());
}

#[test]
fn a_bad_or_taken_vmac_name_falls_back_to_keepalived_default_sequence() {
    let bad = ok(&instance("    use_vmac a/b"));
    assert_eq!(
        bad.config.instances[0].use_vmac.as_ref().unwrap().ifname,
        "vrrp.55"
    );
    assert!(
        bad.warnings
            .iter()
            .any(|w| w.to_string().contains("t.conf:7:14") && w.to_string().contains("ignored")),
        "{:?}",
        bad.warnings
    );
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n use_vmac shared\n virtual_ipaddress { 192.0.2.10 }\n}\n\
                vrrp_instance B {\n interface eth0\n virtual_router_id 7\n use_vmac shared\n virtual_ipaddress { 2001:db8::10 }\n}\n\
                vrrp_instance C {\n interface eth1\n virtual_router_id 7\n use_vmac\n virtual_ipaddress { 2001:db8::11 }\n}\n\
                vrrp_instance D {\n interface eth1\n virtual_router_id 8\n use_vmac\n virtual_ipaddress { 192.0.2.12 }\n}\n";
    let l = ok(text);
    let names: Vec<&str> = l
        .config
        .instances
        .iter()
        .map(|i| i.use_vmac.as_ref().unwrap().ifname.as_str())
        .collect();
    // B's name is taken by A: B gets the default vrrp.7, so C (IPv6) goes on to vrrp6.7.
    assert_eq!(names, ["shared", "vrrp.7", "vrrp6.7", "vrrp.8"]);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.to_string().contains("t.conf:10:11")
                && w.to_string().contains("already uses")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn routes_rules_and_static_entries_are_typed_with_one_preference_count_down() {
    let text = format!(
        "static_ipaddress {{\n 192.0.2.200/24 dev eth1 scope link\n 2001:db8::200\n}}\n\
         static_routes {{\n 203.0.113.0/24 via 192.0.2.254 dev eth1 no_track\n}}\n\
         static_rules {{\n from 192.0.2.0/24 table 100 no_track\n}}\n{}",
        instance(
            "virtual_routes {\n src 192.0.2.10 198.51.100.0/24 via 192.0.2.254 dev eth0 table 100 metric 5\n blackhole 203.0.113.128/25 no_track\n }\n\
             virtual_rules {\n to 198.51.100.0/24 lookup 100 no_track\n from 2001:db8::/32 prohibit preference 7 no_track\n }"
        )
    );
    let l = ok(&text);
    let statics = &l.config.statics;
    assert_eq!(statics.addresses.len(), 2);
    assert_eq!(
        statics.addresses[1].dev.as_deref(),
        Some("eth0"),
        "keepalived's default interface"
    );
    assert_eq!(statics.routes[0].via, Some("192.0.2.254".parse().unwrap()));
    assert_eq!(statics.rules[0].preference, 16384);
    let i = &l.config.instances[0];
    assert_eq!(i.virtual_routes.len(), 2);
    assert_eq!(i.virtual_routes[0].table, 100);
    assert_eq!(i.virtual_routes[1].kind, crate::route::RouteKind::Blackhole);
    assert_eq!(
        i.virtual_rules
            .iter()
            .map(|r| r.preference)
            .collect::<Vec<_>>(),
        [16383, 7],
        "the IPv4 count-down carries on from static_rules"
    );
    let w = l
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert!(
        w.iter()
            .any(|w| w.contains("t.conf:3:2") && w.contains("using eth0")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w.contains("does not watch the routes")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("has no preference; using 16383")),
        "{w:?}"
    );
}

#[test]
fn heartbeat_interface_takes_ipv6_and_unicast_but_not_ipv6_unicast_instances() {
    let unicast = ok(&instance(
        "heartbeat_interface eth1 eth2\n unicast_peer {\n 192.0.2.2\n }",
    ));
    assert_eq!(
        unicast.config.instances[0].heartbeat_interfaces,
        ["eth1", "eth2"]
    );
    let v6 = "vrrp_instance V6 {\n interface eth0\n virtual_router_id 5\n heartbeat_interface eth1\n virtual_ipaddress {\n 2001:db8::10\n }\n";
    let i = ok(&format!("{v6}}}\n")).config.instances.remove(0);
    assert_eq!(
        (i.family, i.heartbeat_interfaces.as_slice()),
        (Family::V6, &["eth1".to_owned()][..])
    );
    let e = err(&format!("{v6} unicast_peer {{\n 2001:db8::2\n }}\n}}\n"));
    assert!(
        e[0].contains("IPv6 unicast peers is not supported"),
        "{e:?}"
    );
    assert!(
        err(&instance("heartbeat_interface eth0"))[0].contains("is the instance's own interface")
    );
}

#[test]
fn protocol_thread_knobs_are_typed_and_dumped() {
    let l = ok("global_defs {\n vrrp_rt_priority 50\n vrrp_cpu_affinity 1 0 1\n vrrp_no_swap\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let t = &l.config.global.protocol_threads;
    assert_eq!(t.rt_priority, Some(50));
    assert_eq!(t.cpu_affinity, vec![1, 0], "in order, each CPU once");
    assert!(t.no_swap);
    let dump = l.config.dump().to_string();
    for want in [
        "vrrp_rt_priority 50\n",
        "vrrp_cpu_affinity 1 0\n",
        "vrrp_no_swap on\n",
    ] {
        assert!(dump.contains(want), "{want:?} not in\n{dump}");
    }
    let default = ok("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n");
    assert_eq!(default.config.global.protocol_threads, Default::default());
    assert!(default
        .config
        .dump()
        .to_string()
        .contains("vrrp_rt_priority off (SCHED_OTHER)\n"));
}

/// keepalived's `vrrp_priority` / `checker_priority` (nice values, -20–19): the protocol
/// threads and the plugin executor threads; without `checker_priority` the executor runs
/// 10 nicer than the protocol threads.
#[test]
fn thread_nice_values_are_typed_and_dumped() {
    let vip = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n";
    let l = ok(&format!(
        "global_defs {{\n vrrp_priority -5\n checker_priority 19\n}}\n{vip}"
    ));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let g = &l.config.global;
    assert_eq!((g.vrrp_nice(), g.checker_nice()), (-5, 19));
    let dump = l.config.dump().to_string();
    for want in ["vrrp_priority -5\n", "checker_priority 19\n"] {
        assert!(dump.contains(want), "{want:?} not in\n{dump}");
    }
    let default = ok(vip);
    let g = &default.config.global;
    assert_eq!((g.vrrp_nice(), g.checker_nice()), (0, 10));
    let dump = default.config.dump().to_string();
    assert!(
        dump.contains("vrrp_priority 0\n")
            && dump.contains("checker_priority 10 (vrrp_priority + 10)\n"),
        "{dump}"
    );
    // The default follows vrrp_priority, and stops at the weakest nice value.
    let raised = ok(&format!("global_defs {{\n vrrp_priority -15\n}}\n{vip}"));
    assert_eq!(raised.config.global.checker_nice(), -5);
    let lowered = ok(&format!("global_defs {{\n vrrp_priority 15\n}}\n{vip}"));
    assert_eq!(lowered.config.global.checker_nice(), 19);
}

/// keepalived's `garp_lower_prio_delay` / `garp_lower_prio_repeat` (instance) and their
/// `vrrp_` globals: unset they follow `garp_master_delay` / `garp_master_repeat`; strict mode
/// turns them off and resets a value set, with a warning.
#[test]
fn lower_priority_garp_settings_follow_keepalived() {
    let text = format!(
        "global_defs {{\n vrrp_garp_master_delay 7\n vrrp_garp_lower_prio_repeat 2\n}}\n{}",
        instance("state BACKUP\n priority 150\n garp_master_repeat 3\n garp_lower_prio_delay 1")
    );
    let l = ok(&text);
    let g = &l.config.instances[0].garp;
    assert_eq!(g.lower_prio_delay(), Duration::from_secs(1));
    assert_eq!(g.lower_prio_repeat(), 2, "the global value");
    let plain = ok(&format!(
        "global_defs {{\n vrrp_garp_master_delay 7\n}}\n{}",
        instance("state BACKUP\n priority 150\n garp_master_repeat 3")
    ));
    let g = &plain.config.instances[0].garp;
    assert_eq!(
        (g.lower_prio_delay(), g.lower_prio_repeat()),
        (Duration::from_secs(7), 3),
        "unset: the garp_master values"
    );
    let strict = ok(&instance(
        "state BACKUP\n priority 150\n strict_mode\n garp_lower_prio_repeat 4",
    ));
    let g = &strict.config.instances[0].garp;
    assert_eq!(
        (g.lower_prio_delay(), g.lower_prio_repeat()),
        (Duration::ZERO, 0)
    );
    assert!(strict.warnings.iter().any(|w| w
        .message
        .contains("strict mode requires no garp_lower_prio_repeat")));
    let dump = plain.config.dump().to_string();
    assert!(dump.contains("garp_lower_prio_delay 7"), "{dump}");
    assert!(dump.contains("garp_lower_prio_repeat 3"), "{dump}");
}

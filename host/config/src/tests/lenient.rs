//! keepalived's fallbacks, class by class: each configuration loads, with a warning at the
//! expected place saying what was used, and the effective value keepalived 2.2.7 uses
//! (checked in the dump). `--strict` refuses every one of them.

use super::*;

/// (name, configuration, expected `line:column: warning: ` + start of the message,
/// lines the dump must contain).
const CASES: &[(&str, &str, &str, &[&str])] = &[
    // Flag keywords with an argument: the argument is ignored, the flag set.
    ("flag-argument", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n nopreempt 0\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:12: warning: nopreempt takes no value; '0' ignored and nopreempt is set, as keepalived does", &["    nopreempt on"]),
    ("vrrp-strict-off", "global_defs {\n vrrp_strict off\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n priority 255\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "2:14: warning: vrrp_strict takes no value; 'off' ignored and vrrp_strict is set", &["    strict_mode on"]),
    // The protocol threads' knobs (keepalived global_parser.c): a real-time priority is
    // clamped to SCHED_RR's range; one bad CPU voids the whole affinity list.
    ("rt-priority-clamped", "global_defs {\n vrrp_rt_priority 150\n vrrp_no_swap\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "2:19: warning: vrrp_rt_priority 150 is outside 1-99; 99 used, as keepalived does", &["vrrp_rt_priority 99\n", "vrrp_no_swap on\n"]),
    // A nice value outside -20..19 (keepalived's get_priority): reported, then ignored.
    ("vrrp-priority-out-of-range", "global_defs {\n vrrp_priority -21\n checker_priority 5\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "2:16: warning: invalid vrrp priority '-21' for vrrp_priority (outside -20..=19: a nice value); ignored, as keepalived does", &["vrrp_priority 0\n", "checker_priority 5\n"]),
    ("checker-priority-not-a-number", "global_defs {\n checker_priority high\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "2:19: warning: invalid checker priority 'high' for checker_priority (not a number: a nice value); ignored, as keepalived does", &["checker_priority 10 (vrrp_priority + 10)\n"]),
    ("cpu-affinity-bad-cpu", "global_defs {\n vrrp_cpu_affinity 0 x1\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "2:22: warning: bad CPU 'x1' in vrrp_cpu_affinity (not a number); the whole list is ignored", &["vrrp_cpu_affinity any\n", "vrrp_no_swap off\n"]),
    // Booleans keepalived does not read: the keyword is ignored.
    ("boolean-1", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n strict_mode 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:14: warning: bad boolean '1' for strict_mode", &["    strict_mode off"]),
    // A trailing ';' or text glued to a number.
    ("priority-semicolon", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n priority 150;\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:11: warning: bad priority '150;' (text after the number: ';'); using the default 100", &["    priority 100"]),
    ("interval-semicolon", "vrrp_script chk {\n script /bin/true\n interval 2;\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  chk\n }\n}\n",
     "3:11: warning: interval/timeout '2;': text after the number: ';'; using 2, as keepalived does", &["    interval 2\n"]),
    ("advert-glued", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n advert_int 3,backup\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:13: warning: bad advert_int '3,backup' (not a decimal number); ignored", &["    advert_int 1\n"]),
    ("comment-glued", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n priority 120#backup\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "", &["    priority 120"]),
    // state SLAVE.
    ("state-slave", "vrrp_instance VI_1 {\n state SLAVE\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "2:8: warning: bad state 'SLAVE' (expected MASTER or BACKUP); using BACKUP", &["    state BACKUP"]),
    // A vrrp_script defined twice: the first stays.
    ("script-twice", "vrrp_script chk {\n script /bin/true\n weight 5\n}\nvrrp_script chk {\n script /bin/false\n weight 7\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  chk\n }\n}\n",
     "5:1: warning: vrrp_script chk is defined twice (first at t.conf:1:1); this definition is ignored", &["    script /bin/true\n", "    weight 5\n"]),
    // An address with a prefix length where keepalived takes the address.
    ("peer-prefix", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n unicast_peer {\n  192.0.2.2/24\n }\n}\n",
     "8:3: warning: unicast peer '192.0.2.2/24': '/24' ignored; using the address 192.0.2.2", &["    unicast_peer 192.0.2.2\n"]),
    ("vip-prefix-too-long", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1/33\n }\n}\n",
     "5:3: warning: bad prefix length in '192.0.2.1/33' (outside 0..=32); using /32", &["    virtual_ipaddress 192.0.2.1/32 dev eth0"]),
    // A stray '}'.
    ("stray-close", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n}\n",
     "8:1: warning: extra '}' (no block is open here); ignored", &["vrrp_instance VI_1\n"]),
    ("brace-after-flag", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n nopreempt {\n }\n priority 50\n}\n",
     "7:12: warning: '{' after 'nopreempt', which takes no block here; ignored", &["    priority 100\n"]),
    // A sync group without members.
    ("sync-group-empty", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\nvrrp_sync_group G {\n VI_1\n}\n",
     "8:1: warning: vrrp_sync_group G has no group { … } of instances", &[]),
    // IPv6 VIPs in an IPv4 instance.
    ("v6-vip-in-v4", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n  2001:db8::1\n }\n}\n",
     "6:3: warning: vrrp_instance VI_1: this virtual address is IPv6 but the instance is IPv4 (from its first address); ignored", &["    virtual_ipaddress 192.0.2.1/32 dev eth0"]),
    // Tracked scripts keepalived does not find.
    ("track-unknown", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  nothere\n }\n}\n",
     "8:3: warning: vrrp_instance VI_1 tracks script 'nothere', which is not defined; ignored", &[]),
    ("track-later", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  late\n }\n}\nvrrp_script late {\n script /bin/true\n}\n",
     "8:3: warning: vrrp_script late is defined after vrrp_instance VI_1; keepalived does not track it, and neither does wasmalived", &[]),
    // keepalived's completion of an instance.
    ("master-means-owner", "vrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "1:1: warning: vrrp_instance VI_1: state MASTER without a priority; using priority 255", &["    priority 255\n"]),
    ("advert-v2-rounded", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n advert_int 1.5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:13: warning: vrrp_instance VI_1: advert_int 1.5 s: VRRPv2 advertises whole seconds; rounded to 2 s", &["    advert_int 2\n"]),
    ("advert-v3-capped", "vrrp_instance VI_1 {\n interface eth0\n version 3\n virtual_router_id 5\n advert_int 41\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "5:13: warning: vrrp_instance VI_1: advert_int 41 s is out of range for VRRPv3; using 40.95 s", &["    advert_int 40.95\n"]),
    ("duplicate-instance", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\nvrrp_instance A {\n interface eth1\n virtual_router_id 6\n}\n",
     "8:1: warning: vrrp_instance A is defined twice", &["    virtual_router_id 5\n"]),
    ("unknown-member", "vrrp_sync_group G {\n group {\n  VI_1\n  VI_9\n }\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:3: warning: vrrp_sync_group G names instance 'VI_9', which is not defined; ignored", &["    group VI_1\n"]),
    ("rise-zero", "vrrp_script s {\n script /bin/true\n rise 0\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  s\n }\n}\n",
     "3:7: warning: bad rise '0' (outside 1..=1000000); using 1", &["    rise 1\n"]),
    ("weight-beyond", "vrrp_script s {\n script /bin/true\n weight -300\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  s\n }\n}\n",
     "3:9: warning: bad weight '-300' (outside -253..=253); using -253", &["    weight -253\n"]),
    ("no-script", "vrrp_script s {\n interval 2\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "3:1: warning: vrrp_script s has no script", &[]),
    ("version-4", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n version 4\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:10: warning: bad version '4' (outside 2..=3); ignored", &["    version 2\n"]),
    ("pass-missing", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n authentication {\n  auth_type PASS\n }\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "4:2: warning: vrrp_instance VI_1: authentication without auth_pass; ignored", &["    authentication none\n"]),
    ("plain-include-missing", "include does-not-exist.conf\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
     "1:9: warning: config files missing 'does-not-exist.conf'; ignored", &[]),
    ("nameless-instance", "vrrp_instance {\n interface eth0\n}\n",
     "1:1: warning: vrrp_instance needs a name; section skipped", &[]),
    ("unterminated-quote", "vrrp_script s {\n script \"/bin/true\n}\n",
     "2:9: warning: unterminated quoted string", &[]),
];

#[test]
fn keepalived_fallbacks_warn_and_use_keepalived_values() {
    let mut failures = Vec::new();
    for (name, text, warning, dump) in CASES {
        let loaded = match parse_str(text, Path::new("t.conf"), LoadOptions::default()) {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("{name}: refused:\n{e}"));
                continue;
            }
        };
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        let wanted = format!("t.conf:{warning}");
        if warning.is_empty() {
            if !warnings.is_empty() {
                failures.push(format!("{name}: unexpected warnings {warnings:#?}"));
            }
        } else if !warnings.iter().any(|w| w.starts_with(&wanted)) {
            failures.push(format!(
                "{name}: no warning starting\n  {wanted}\n  in {warnings:#?}"
            ));
        }
        let text_dump = loaded.config.dump().to_string();
        for line in *dump {
            if !text_dump.contains(line) {
                failures.push(format!("{name}: dump lacks {line:?}:\n{text_dump}"));
            }
        }
        let strict = LoadOptions {
            strict: true,
            ..Default::default()
        };
        if !warning.is_empty() && parse_str(text, Path::new("t.conf"), strict).is_ok() {
            failures.push(format!("{name}: --strict accepts it"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn sync_groups_drop_member_weights_as_keepalived() {
    let l = ok("vrrp_script w {\n script /bin/true\n weight 10\n}\nvrrp_script z {\n script /bin/true\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  w\n  z\n }\n track_interface {\n  eth1 weight 5\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 6\n virtual_ipaddress {\n  192.0.2.2\n }\n}\nvrrp_sync_group G {\n group {\n  A\n  B\n }\n track_script {\n  w\n }\n}\n");
    let a = l.config.instance("A").expect("A");
    assert_eq!(
        a.track_scripts
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["z"]
    );
    assert_eq!(a.track_interfaces[0].weight, 0);
    assert_eq!(
        l.config.sync_groups[0].track_scripts[0].name, "w",
        "the group's own weights stay"
    );
}

#[test]
fn a_track_weight_without_reverse_takes_the_scripts_reverse() {
    let l = ok("vrrp_script r {\n script /bin/true\n weight 10 reverse\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  r weight 3\n }\n}\n");
    let a = &l.config.instances[0];
    let s = l.config.script("r").expect("r");
    assert_eq!(a.track_scripts[0].effective_weight(s), (3, true));
}

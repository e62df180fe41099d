//! The malformed-config corpus: each file, written to a temp dir, gives the expected error at
//! the expected `file:line:column`.

use super::*;

/// (file name, contents, expected `line:column: error: message` suffix of the first error).
const CORPUS: &[(&str, &str, &str)] = &[
    ("unclosed-brace.conf", "vrrp_instance VI_1 {\n  interface eth0\n", "1:20: error: unclosed '{' (no matching '}' before the end of the file)"),
    ("extra-close.conf", "global_defs {\n}\n}\n", "3:1: error: unbalanced '}' (no block is open here)"),
    ("bad-priority.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n priority high\n}\n", "4:11: error: bad priority 'high': expected an integer 1..=255"),
    ("priority-256.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n priority 256\n}\n", "4:11: error: bad priority '256': expected an integer 1..=255"),
    ("bad-vrid.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 0\n}\n", "3:20: error: bad virtual_router_id '0': expected an integer 1..=255"),
    ("bad-interval.conf", "vrrp_script s {\n script /bin/true\n interval 2x\n}\n", "3:11: error: bad interval '2x': expected seconds 0..=86400 (decimals allowed)"),
    ("bad-weight.conf", "vrrp_script s {\n script /bin/true\n weight -254\n}\n", "3:9: error: bad weight '-254': expected an integer -253..=253"),
    ("bad-rise.conf", "vrrp_script s {\n script /bin/true\n rise 0\n}\n", "3:7: error: bad rise '0': expected an integer 1..=1000000"),
    ("bad-ip.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.256\n }\n}\n", "5:3: error: bad virtual address '192.0.2.256': not an IPv4 or IPv6 address"),
    ("bad-peer.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n unicast_peer {\n  peer-one\n }\n}\n", "5:3: error: bad unicast peer 'peer-one': not an IPv4 or IPv6 address"),
    ("advert-v2-fraction.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n advert_int 0.5\n}\n", "4:13: error: advert_int 0.5: VRRPv2 advertises whole seconds (1..=255); use version 3 for fractions"),
    ("advert-v2-range.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n advert_int 256\n}\n", "4:13: error: advert_int 256 is out of range for VRRPv2: 1..=255 seconds"),
    ("advert-v3-range.conf", "vrrp_instance VI_1 {\n interface eth0\n version 3\n virtual_router_id 5\n advert_int 41\n}\n", "5:13: error: advert_int 41 is out of range for VRRPv3: 0.01..=40.95 seconds"),
    ("advert-v3-step.conf", "vrrp_instance VI_1 {\n interface eth0\n version 3\n virtual_router_id 5\n advert_int 0.125\n}\n", "5:13: error: advert_int 0.125: VRRPv3 counts centiseconds (0.01 s steps)"),
    ("v2-ipv6.conf", "vrrp_instance VI_1 {\n interface eth0\n version 2\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1\n }\n}\n", "3:10: error: VRRPv2 is IPv4 only; IPv6 instances use version 3"),
    ("mixed-family.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n  2001:db8::1\n }\n}\n", "6:3: error: vrrp_instance VI_1: this virtual address is V6 but the instance is V4"),
    ("no-interface.conf", "vrrp_instance VI_1 {\n virtual_router_id 5\n}\n", "1:1: error: vrrp_instance VI_1 has no interface"),
    ("no-vrid.conf", "vrrp_instance VI_1 {\n interface eth0\n}\n", "1:1: error: vrrp_instance VI_1 has no virtual_router_id"),
    ("dup-instance.conf", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\nvrrp_instance A {\n interface eth1\n virtual_router_id 6\n}\n", "5:1: error: vrrp_instance A is defined twice (first at "),
    ("dup-script.conf", "vrrp_script s {\n script /bin/true\n}\nvrrp_script s {\n script /bin/false\n}\n", "4:1: error: vrrp_script s is defined twice"),
    ("undefined-script.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n track_script {\n  chk_missing weight 5\n }\n}\n", "5:3: error: vrrp_instance VI_1 tracks script 'chk_missing', which is not defined"),
    ("unknown-member.conf", "vrrp_sync_group G {\n group {\n  VI_1\n  VI_9\n }\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n}\n", "4:3: error: vrrp_sync_group G names instance 'VI_9', which is not defined"),
    ("dup-vrid.conf", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 5\n}\n", "5:1: error: vrrp_instance B uses interface eth0, VRID 5 and V4 like vrrp_instance A"),
    ("script-and-plugin.conf", "vrrp_script s {\n script /bin/true\n plugin nginx-process\n}\n", "3:2: error: vrrp_script s has both script and plugin; use one"),
    ("neither.conf", "vrrp_script s {\n interval 2\n}\n", "1:1: error: vrrp_script s needs a script \"…\" or a plugin NAME"),
    ("plugin-only-keyword.conf", "vrrp_script s {\n script /bin/true\n allow_tcp 127.0.0.1:80\n}\n", "3:2: error: this keyword only applies to plugin checks"),
    ("bad-tcp.conf", "vrrp_script s {\n plugin p\n allow_tcp localhost:80\n}\n", "3:12: error: bad allow_tcp 'localhost:80'"),
    ("http-userinfo.conf", "vrrp_script s {\n plugin p\n allow_http http://127.0.0.1:80@evil/health\n}\n", "3:13: error: bad allow_http 'http://127.0.0.1:80@evil/health': user information (user@host) is never allowed in a grant"),
    ("remediation-option.conf", "vrrp_script s {\n plugin p\n remediation r /bin/true as root\n}\n", "3:26: error: unexpected 'as' in remediation: remediation takes ID"),
    ("bad-memory.conf", "vrrp_script s {\n plugin p\n memory_limit 12Q\n}\n", "3:15: error: bad memory_limit '12Q'"),
    ("bad-on-fatal.conf", "vrrp_script s {\n plugin p\n on_fatal explode\n}\n", "3:11: error: bad on_fatal 'explode': expected fault or stop_daemon"),
    ("unterminated-quote.conf", "vrrp_script s {\n script \"/bin/true\n}\n", "2:9: error: unterminated quoted string"),
    ("bad-state.conf", "vrrp_instance VI_1 {\n state PRIMARY\n interface eth0\n virtual_router_id 5\n}\n", "2:8: error: bad state 'PRIMARY': expected MASTER or BACKUP"),
    ("pass-missing.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n authentication {\n  auth_type PASS\n }\n}\n", "4:2: error: auth_type PASS needs an auth_pass"),
    ("bad-version.conf", "global_defs {\n vrrp_version 4\n}\n", "2:15: error: bad vrrp_version '4': expected an integer 2..=3"),
    ("missing-include.conf", "global_defs {\n}\ninclude does-not-exist.conf\n", "3:9: error: include file not found: "),
    ("nameless.conf", "vrrp_instance {\n interface eth0\n}\n", "1:1: error: vrrp_instance needs a name"),
];

#[test]
fn each_malformed_config_gives_its_message_and_place() {
    let dir = TempDir::new("corpus");
    let mut failures = Vec::new();
    for (name, text, expected) in CORPUS {
        let path = dir.write(name, text);
        let prefix = format!("{}:", path.display());
        match load(&path, LoadOptions::default()) {
            Ok(_) => failures.push(format!("{name}: loaded, expected {expected}")),
            Err(e) => {
                let first = e.errors[0].to_string();
                let rest = first.strip_prefix(&prefix).unwrap_or(&first);
                if !rest.starts_with(expected) {
                    failures.push(format!(
                        "{name}:\n  got      {first}\n  expected {prefix}{expected}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn unknown_keywords_are_warnings_with_place() {
    let dir = TempDir::new("unknown");
    let path = dir.write(
        "u.conf",
        &format!("frobnicate on\n{}", instance("  wibble 3")),
    );
    let l = load(&path, LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    let p = path.display();
    assert_eq!(
        w,
        [
            format!("{p}:1:1: warning: unknown or unsupported top-level keyword 'frobnicate'; ignored"),
            format!("{p}:8:3: warning: unknown or unsupported keyword 'wibble' in vrrp_instance; ignored"),
        ]
    );
    assert!(load(&path, LoadOptions { strict: true }).is_err());
}

#[test]
fn include_cycle_is_detected() {
    let dir = TempDir::new("cycle");
    let a = dir.write("a.conf", "include b.conf\n");
    dir.write("b.conf", "global_defs {\n}\ninclude a.conf\n");
    let e = load(&a, LoadOptions::default()).expect_err("cycle");
    let first = e.errors[0].to_string();
    let b = std::fs::canonicalize(dir.path().join("b.conf")).expect("canonical");
    assert!(
        first.starts_with(&format!(
            "{}:3:9: error: include cycle: ",
            dir.path().join("b.conf").display()
        )),
        "{first}"
    );
    assert!(
        first.contains(&format!("{} -> ", b.display())) || first.contains("a.conf -> "),
        "{first}"
    );
    assert!(first.ends_with("a.conf"), "{first}");
}

#[test]
fn all_errors_are_reported_not_just_the_first() {
    let e = err("vrrp_instance A {\n interface eth0\n virtual_router_id 0\n priority x\n}\nvrrp_script s {\n}\n");
    assert_eq!(e.len(), 4, "{e:?}");
}

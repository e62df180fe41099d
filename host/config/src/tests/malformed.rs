//! The malformed-config corpus: each file, written to a temp dir, gives the expected error at
//! the expected `file:line:column`.

use super::*;

/// (file name, contents, expected `line:column: error: message` suffix of the first error).
const CORPUS: &[(&str, &str, &str)] = &[
    ("bad-vrid.conf", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 0\n}\n", "3:20: error: bad virtual_router_id '0': expected an integer 1..=255"),
    ("v2-ipv6.conf", "vrrp_instance VI_1 {\n interface eth0\n version 2\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1\n }\n}\n", "3:10: error: VRRPv2 is IPv4 only; IPv6 instances use version 3"),
    ("v3-no-vip.conf", "vrrp_instance VI_1 {\n interface eth0\n version 3\n virtual_router_id 5\n}\n", "1:1: error: vrrp_instance VI_1 has no virtual_ipaddress; VRRPv3 and strict mode need one"),
    ("no-interface.conf", "vrrp_instance VI_1 {\n virtual_router_id 5\n}\n", "1:1: error: vrrp_instance VI_1 has no interface"),
    ("no-vrid.conf", "vrrp_instance VI_1 {\n interface eth0\n}\n", "1:1: error: vrrp_instance VI_1 has no virtual_router_id"),
    ("unclosed-brace.conf", "vrrp_instance VI_1 {\n  interface eth0\n", "1:1: error: vrrp_instance VI_1 has no virtual_router_id"),
    ("dup-vrid.conf", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 5\n}\n", "5:1: error: vrrp_instance B uses interface eth0, VRID 5 and V4 like vrrp_instance A"),
    ("strict-unicast.conf", "global_defs {\n vrrp_strict\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n unicast_peer {\n  192.0.2.2\n }\n}\n", "11:3: error: vrrp_instance A: strict mode does not allow unicast peers"),
    ("missing-value.conf", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n priority\n}\n", "4:2: error: priority needs a value"),
    ("script-and-plugin.conf", "vrrp_script s {\n script /bin/true\n plugin nginx-process\n}\n", "3:2: error: vrrp_script s has both script and plugin; use one"),
    ("plugin-only-keyword.conf", "vrrp_script s {\n script /bin/true\n allow_tcp 127.0.0.1:80\n}\n", "3:2: error: this keyword only applies to plugin checks"),
    ("bad-tcp.conf", "vrrp_script s {\n plugin p\n allow_tcp localhost:80\n}\n", "3:12: error: bad allow_tcp 'localhost:80'"),
    ("bad-udp.conf", "vrrp_script s {\n plugin p\n allow_udp 192.0.2.53\n}\n", "3:12: error: bad allow_udp '192.0.2.53'"),
    ("http-userinfo.conf", "vrrp_script s {\n plugin p\n allow_http http://127.0.0.1:80@evil/health\n}\n", "3:13: error: bad allow_http 'http://127.0.0.1:80@evil/health': user information (user@host) is never allowed in a grant"),
    ("remediation-option.conf", "vrrp_script s {\n plugin p\n remediation r /bin/true as root\n}\n", "3:26: error: unexpected 'as' in remediation: remediation takes ID"),
    ("bad-memory.conf", "vrrp_script s {\n plugin p\n memory_limit 12Q\n}\n", "3:15: error: bad memory_limit '12Q'"),
    ("bad-on-fatal.conf", "vrrp_script s {\n plugin p\n on_fatal explode\n}\n", "3:11: error: bad on_fatal 'explode': expected fault or stop_daemon"),
    ("bad-plugin-interval.conf", "vrrp_script s {\n plugin p\n interval 2x\n}\n", "3:11: error: bad interval/timeout '2x': expected seconds"),
    ("missing-includea.conf", "global_defs {\n}\nincludea does-not-exist.conf\n", "3:10: error: config files missing 'does-not-exist.conf'"),
    ("script-nameless.conf", "vrrp_script {\n script /bin/true\n}\n", "1:1: error: vrrp_script needs a name"),
    ("recursive-parameter.conf", "$A=x${A}\nrouter_id ${A}\n", "2:1: error: parameter substitution does not end"),
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
    assert!(load(
        &path,
        LoadOptions {
            strict: true,
            ..Default::default()
        }
    )
    .is_err());
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
    let e = err("vrrp_instance A {\n interface eth0\n virtual_router_id 0\n priority x\n}\nvrrp_instance B {\n virtual_router_id 3\n}\nvrrp_script s {\n plugin p\n memory_limit 1\n}\nvrrp_script {\n}\n");
    assert_eq!(e.len(), 4, "{e:?}");
}

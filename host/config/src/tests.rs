//! End-to-end tests of the configuration layer: syntax as real files write it, includes,
//! a malformed-config corpus with expected messages and places, the examples, strict mode,
//! and a no-panic property test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::grants::{DirGrant, HttpGrant, ProcessGrant, TcpGrant, UdpGrant};
use wasmalived_proto::vrrp::types::{AdvertInterval, Family, Version};

mod features;
mod lenient;
mod lvs;
mod lvs_checkers;
mod malformed;
mod notifications;
mod track_process;

/// A directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "wasmalived-config-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` (creating parent directories) and returns its path.
    pub(super) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parses `text` as `t.conf`, expecting success.
pub(super) fn ok(text: &str) -> Loaded {
    parse_str(text, Path::new("t.conf"), LoadOptions::default())
        .unwrap_or_else(|e| panic!("expected to load:\n{e}\n--\n{text}"))
}

/// Parses `text` as `t.conf`, expecting failure; the error lines.
pub(super) fn err(text: &str) -> Vec<String> {
    match parse_str(text, Path::new("t.conf"), LoadOptions::default()) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

/// The warning lines of a config that loads.
pub(super) fn warnings(text: &str) -> Vec<String> {
    ok(text).warnings.iter().map(ToString::to_string).collect()
}

/// A minimal valid instance with `extra` lines inside it.
pub(super) fn instance(extra: &str) -> String {
    format!("vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 55\n    virtual_ipaddress {{\n        192.0.2.200\n    }}\n{extra}\n}}\n")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn every_example_loads_without_errors() {
    let mut seen = 0;
    let entries = std::fs::read_dir(examples_dir()).expect("examples dir");
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "conf") {
            seen += 1;
            if let Err(e) = load(&path, LoadOptions::default()) {
                panic!("{} does not load:\n{e}", path.display());
            }
        }
    }
    assert!(seen >= 7, "only {seen} example configs found");
}

fn example(name: &str) -> Loaded {
    load(&examples_dir().join(name), LoadOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn basic_pair_is_the_seeds() {
    for (name, prio, state) in [
        ("basic-master.conf", 100, InitialState::Master),
        ("basic-backup.conf", 99, InitialState::Backup),
    ] {
        let l = example(name);
        assert!(l.warnings.is_empty(), "{name}: {:?}", l.warnings);
        let i = &l.config.instances[0];
        assert_eq!(
            (i.vrid.get(), i.priority.get(), i.initial_state),
            (55, prio, state)
        );
        assert_eq!(
            (i.version, i.family, i.advert_int.duration()),
            (Version::V2, Family::V4, Duration::from_secs(1))
        );
        assert_eq!(i.auth_pass, Some(AuthPass("1111".into())));
        assert_eq!(i.vips.len(), 1);
        assert_eq!(
            i.vips[0].addr,
            "192.0.2.200".parse::<std::net::IpAddr>().expect("ip")
        );
    }
}

#[test]
fn nginx_examples_track_the_same_check_two_ways() {
    let plugin = example("nginx-plugin-master.conf").config;
    let script = example("nginx-script-master.conf").config;
    for c in [&plugin, &script] {
        let s = c.script("chk_nginx").expect("chk_nginx");
        assert_eq!(
            (s.interval, s.weight, s.fall),
            (Duration::from_secs(2), -5, 3)
        );
        assert_eq!(c.instances[0].track_scripts[0].name, "chk_nginx");
    }
    match &plugin.scripts[0].kind {
        ScriptKind::Plugin {
            plugin,
            params,
            grants,
            on_fatal,
        } => {
            assert_eq!(plugin, &PluginRef::Name("nginx-process".into()));
            assert_eq!(params[0], ("process".into(), "nginx".into()));
            assert_eq!(grants.processes, Some(ProcessGrant { netns_only: true }));
            assert_eq!(*on_fatal, FatalAction::Fault);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        script.scripts[0].kind,
        ScriptKind::Exec {
            argv: vec![
                "/usr/bin/ps".into(),
                "-C".into(),
                "nginx".into(),
                "--no-heading".into()
            ]
        }
    );
    assert_eq!(script.scripts[0].timeout, Duration::from_secs(1));
}

#[test]
fn lvs_director_example_loads_its_virtual_server() {
    let l = example("lvs-director.conf");
    assert!(
        !l.warnings
            .iter()
            .any(|w| w.message.contains("virtual_server")),
        "{:?}",
        l.warnings
    );
    let vs = &l.config.virtual_servers[0];
    assert_eq!(vs.real_servers.len(), 2);
    assert_eq!(vs.forwarding, crate::lvs::Forwarding::Dr);
    assert_eq!(
        l.config.instances[0].vips[0].label.as_deref(),
        Some("eth0:1")
    );
}

#[test]
fn vrrpv3_ipv6_example() {
    let i = &example("vrrpv3-ipv6.conf").config.instances[0];
    assert_eq!((i.version, i.family), (Version::V3, Family::V6));
    assert_eq!(
        i.advert_int,
        AdvertInterval::V3(wasmalived_proto::vrrp::types::Centiseconds::new(50).expect("cs"))
    );
}

#[test]
fn plugin_dir_is_a_search_path_in_order() {
    let default = ok(&instance("")).config;
    assert_eq!(default.global.plugin_path, PluginSearchPath::default());
    assert!(default
        .dump()
        .to_string()
        .contains("    plugin_dir /etc/wasmalived/plugins /usr/lib/wasmalived/plugins\n"));

    let text = format!(
        "global_defs {{\n    plugin_dir /srv/mine /usr/lib/wasmalived/plugins\n}}\n{}",
        instance("")
    );
    let c = ok(&text).config;
    assert_eq!(
        c.global.plugin_path.dirs(),
        [
            PathBuf::from("/srv/mine"),
            PathBuf::from("/usr/lib/wasmalived/plugins")
        ]
    );
    assert!(c
        .dump()
        .to_string()
        .contains("    plugin_dir /srv/mine /usr/lib/wasmalived/plugins\n"));
}

#[test]
fn plugin_dir_refuses_relative_and_missing_directories_with_their_place() {
    let relative = format!(
        "global_defs {{\n    plugin_dir /srv/mine plugins\n}}\n{}",
        instance("")
    );
    assert_eq!(
        err(&relative),
        ["t.conf:2:26: error: 'plugins' must be an absolute path"]
    );
    let none = format!("global_defs {{\n    plugin_dir\n}}\n{}", instance(""));
    assert_eq!(
        err(&none),
        ["t.conf:2:5: error: plugin_dir needs at least one directory (absolute path)"]
    );
    let twice = format!(
        "global_defs {{\n    plugin_dir /a /b /a\n}}\n{}",
        instance("")
    );
    assert_eq!(
        warnings(&twice),
        ["t.conf:2:22: warning: plugin_dir: '/a' named twice; looked in once"]
    );
}

#[test]
fn plugin_grants_all_keywords() {
    let text = r#"
global_defs {
    plugin_dir /opt/plugins
    plugin_memory_limit 32M
    plugin_timeout_default 0.5
}
vrrp_script chk {
    plugin nginx-process
    param process nginx
    param "greeting" "hello world"
    allow_processes
    remediation restart "/usr/sbin/nginx -g 'daemon on;'" timeout 10
    remediation reload /usr/sbin/nginx-reload user www-data
    remediation rotate /usr/sbin/logrotate user nginx adm timeout 5
    allow_http http://127.0.0.1/health example.internal:8080
    allow_tcp 127.0.0.1:80 [::1]:*
    allow_udp 192.0.2.53:53
    allow_dir /var/lib/wasmalived/lock rw as /lock
    allow_dir /etc/nginx
    on_fatal stop_daemon
    interval 2
}
vrrp_script chk2 {
    plugin ./local/check.wasm
    memory_limit 8M
    timeout 3
}
"#;
    let c = ok(text).config;
    let ScriptKind::Plugin {
        plugin,
        params,
        grants,
        on_fatal,
    } = &c.scripts[0].kind
    else {
        panic!("plugin")
    };
    assert_eq!(
        c.global.plugin_path.dirs(),
        [PathBuf::from("/opt/plugins")],
        "one plugin_dir is the whole search path"
    );
    assert_eq!(plugin, &PluginRef::Name("nginx-process".into()));
    assert_eq!(params[1], ("greeting".into(), "hello world".into()));
    assert_eq!(grants.processes, Some(ProcessGrant { netns_only: false }));
    assert_eq!(
        grants.remediation[0].argv,
        ["/usr/sbin/nginx", "-g", "daemon on;"]
    );
    assert_eq!(grants.remediation[0].timeout, Duration::from_secs(10));
    assert_eq!(
        grants.remediation[1].timeout,
        crate::grants::DEFAULT_REMEDIATION_TIMEOUT
    );
    assert_eq!(grants.remediation[0].user, None);
    assert_eq!(
        grants.remediation[1].user,
        Some(RunAs {
            user: "www-data".into(),
            group: None
        })
    );
    assert_eq!(
        grants.remediation[2].user,
        Some(RunAs {
            user: "nginx".into(),
            group: Some("adm".into())
        })
    );
    assert_eq!(grants.remediation[2].timeout, Duration::from_secs(5));
    assert_eq!(
        grants.http,
        [
            HttpGrant("http://127.0.0.1/health".into()),
            HttpGrant("example.internal:8080".into())
        ]
    );
    assert_eq!(
        grants.tcp,
        [TcpGrant("127.0.0.1:80".into()), TcpGrant("[::1]:*".into())]
    );
    assert_eq!(grants.udp, [UdpGrant("192.0.2.53:53".into())]);
    assert_eq!(
        grants.dirs[0],
        DirGrant {
            host_path: "/var/lib/wasmalived/lock".into(),
            guest_path: "/lock".into(),
            writable: true
        }
    );
    assert_eq!(
        grants.dirs[1],
        DirGrant {
            host_path: "/etc/nginx".into(),
            guest_path: "/etc/nginx".into(),
            writable: false
        }
    );
    assert_eq!(grants.memory_limit, 32 << 20);
    assert_eq!(*on_fatal, FatalAction::StopDaemon);
    assert_eq!(
        c.scripts[0].timeout,
        Duration::from_millis(500),
        "plugin_timeout_default applies"
    );
    let ScriptKind::Plugin { plugin, grants, .. } = &c.scripts[1].kind else {
        panic!("plugin")
    };
    assert_eq!(
        plugin,
        &PluginRef::Path(PathBuf::from("./local/check.wasm"))
    );
    assert_eq!(grants.memory_limit, 8 << 20);
    assert_eq!(c.scripts[1].timeout, Duration::from_secs(3));
}

#[test]
fn script_timeout_defaults_to_interval_as_keepalived() {
    let c = ok("vrrp_script s {\n script /bin/true\n interval 7\n}\n").config;
    assert_eq!(c.scripts[0].timeout, Duration::from_secs(7));
    assert_eq!(
        (c.scripts[0].rise, c.scripts[0].fall, c.scripts[0].weight),
        (1, 1, 0)
    );
}

#[test]
fn strict_mode_turns_warnings_into_errors() {
    let text = format!("global_defs {{\n  bogus_key 1\n}}\n{}", instance(""));
    assert_eq!(warnings(&text), ["t.conf:2:3: warning: unknown or unsupported keyword 'bogus_key' in global_defs; ignored"]);
    let e = parse_str(
        &text,
        Path::new("t.conf"),
        LoadOptions {
            strict: true,
            ..Default::default()
        },
    )
    .expect_err("strict");
    assert_eq!(
        e.to_string(),
        "t.conf:2:3: error: unknown or unsupported keyword 'bogus_key' in global_defs; ignored"
    );
}

#[test]
fn config_errors_display_one_per_line() {
    let e = parse_str(
        "vrrp_instance A {\n}\nvrrp_instance B {\n}\n",
        Path::new("t.conf"),
        LoadOptions::default(),
    )
    .expect_err("errors");
    assert_eq!(e.to_string().lines().count(), e.errors.len());
    assert_eq!(e.errors.len(), 2);
}

#[test]
fn equality_ignores_places_but_not_definitions() {
    let a = ok(&instance("priority 90")).config;
    let b = ok(&format!("\n\n# moved down\n{}", instance("priority 90"))).config;
    assert_eq!(a, b);
    assert!(a.instances[0].same_definition(&b.instances[0]));
    let c = ok(&instance("priority 91")).config;
    assert_ne!(a, c);
    let s1 = ok("vrrp_script s {\n script /bin/true\n}\n").config;
    let s2 = ok("vrrp_script s {\n script /bin/true\n weight 2\n}\n").config;
    assert!(!s1.scripts[0].same_definition(&s2.scripts[0]));
}

/// xorshift64*: a deterministic PRNG for the no-panic property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

#[test]
fn never_panics_on_random_or_garbled_input() {
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(examples_dir())
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let alphabet = b"{}\"'!#\n\r\t \\/.:-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\xff\xc3";
    for round in 0..400u32 {
        let bytes: Vec<u8> = if round.is_multiple_of(2) {
            (0..rng.below(600))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            let mut b = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(12) {
                let at = rng.below(b.len());
                match rng.below(3) {
                    0 if !b.is_empty() => {
                        b.remove(at.min(b.len() - 1));
                    }
                    1 => b.insert(at, alphabet[rng.below(alphabet.len())]),
                    _ => {
                        if !b.is_empty() {
                            let i = at.min(b.len() - 1);
                            b[i] = (rng.next() & 0xff) as u8;
                        }
                    }
                }
            }
            b
        };
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_str(
            &text,
            Path::new("/nonexistent/fuzz.conf"),
            LoadOptions::default(),
        );
        let _ = parse_str(
            &text,
            Path::new("/nonexistent/fuzz.conf"),
            LoadOptions {
                strict: true,
                ..Default::default()
            },
        );
    }
}

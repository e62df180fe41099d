//! `vrrp_track_process` / `track_process` and `net_namespace`, read as keepalived 2.2.7
//! reads them (`vrrp_parser.c`, `vrrp_track.c`, `global_parser.c`).

use super::*;
use crate::model::{ParamMatch, WeightOverride};

const NGINX: &str = "vrrp_track_process nginx {\n    process nginx -c /tmp/lab/n1-nginx/nginx.conf\n    param_match partial\n    quorum 2\n    delay 0.5\n    terminate_delay 2\n    weight -20 reverse\n}\n";

fn tracked(block: &str, tracks: &str) -> String {
    format!(
        "{block}{}",
        instance(&format!("    track_process {{\n{tracks}\n    }}"))
    )
}

#[test]
fn a_block_with_every_keyword() {
    let c = ok(&tracked(NGINX, "        nginx")).config;
    let p = c.track_process("nginx").expect("defined");
    assert_eq!(p.pattern.name, "nginx");
    assert_eq!(p.pattern.params, ["-c", "/tmp/lab/n1-nginx/nginx.conf"]);
    assert_eq!(p.pattern.param_match, Some(ParamMatch::Partial));
    assert!(p.pattern.full_command);
    assert_eq!((p.quorum, p.quorum_max), (2, u32::MAX));
    // `delay` sets both; the later `terminate_delay` replaces one.
    assert_eq!(p.fork_delay, Some(Duration::from_millis(500)));
    assert_eq!(p.terminate_delay, Some(Duration::from_secs(2)));
    assert_eq!((p.weight, p.weight_reverse), (-20, true));
    assert_eq!(c.instances[0].track_processes.len(), 1);
    assert_eq!(c.tracked_processes().count(), 1);
    let dump = c.dump().to_string();
    for expected in [
        "vrrp_track_process nginx\n    process nginx -c /tmp/lab/n1-nginx/nginx.conf\n    param_match partial\n    full_command on\n    quorum 2\n    quorum_max unlimited\n    fork_delay 0.5\n    terminate_delay 2\n    weight -20 reverse\n",
        "    track_process nginx weight -20 reverse\n",
    ] {
        assert!(dump.contains(expected), "missing:\n{expected}\nin:\n{dump}");
    }
}

#[test]
fn defaults_compare_comm_with_weight_zero() {
    let c = ok(&tracked(
        "vrrp_track_process sshd {\n process sshd\n}\n",
        "sshd weight 5",
    ))
    .config;
    let p = c.track_process("sshd").unwrap();
    assert!(!p.pattern.full_command);
    assert_eq!(p.pattern.param_match, None);
    assert_eq!((p.quorum, p.quorum_max, p.weight), (1, u32::MAX, 0));
    assert_eq!((p.fork_delay, p.terminate_delay), (None, None));
    // The instance's weight replaces the block's.
    assert_eq!(
        c.instances[0].track_processes[0].weight,
        Some(WeightOverride {
            weight: 5,
            reverse: false
        })
    );
}

#[test]
fn parameters_imply_exact_match_and_full_command() {
    let c = ok(&tracked(
        "vrrp_track_process app {\n process /usr/bin/app --serve\n}\n",
        "app",
    ))
    .config;
    let p = c.track_process("app").unwrap();
    assert_eq!(p.pattern.param_match, Some(ParamMatch::Exact));
    assert!(p.pattern.full_command);
    let c = ok(&tracked(
        "vrrp_track_process app {\n param_match initial\n process /usr/bin/app --conf=/etc/\n}\n",
        "app",
    ))
    .config;
    assert_eq!(
        c.track_process("app").unwrap().pattern.param_match,
        Some(ParamMatch::Initial)
    );
}

#[test]
fn quorum_max_zero_tracks_absence() {
    let c = ok(&tracked(
        "vrrp_track_process job {\n process backup-job\n quorum_max 0\n}\n",
        "job",
    ))
    .config;
    let p = c.track_process("job").unwrap();
    assert_eq!((p.quorum, p.quorum_max), (0, 0));
}

/// keepalived's fallbacks, each with its place and what was kept.
#[test]
fn keepalived_fallbacks_warn_at_the_place() {
    for (block, expected) in [
        ("vrrp_track_process p {\n process a\n quorum 3\n quorum_max 2\n}\n", "4:13: warning: vrrp_track_process p: quorum_max 2 is less than quorum 3; ignored"),
        ("vrrp_track_process p {\n process a\n quorum_max 2\n quorum 3\n}\n", "4:9: warning: vrrp_track_process p: quorum 3 is greater than quorum_max 2; ignored"),
        ("vrrp_track_process p {\n process a\n quorum 0\n}\n", "3:9: warning: bad quorum '0'"),
        ("vrrp_track_process p {\n process a\n process b\n}\n", "3:2: warning: vrrp_track_process p: process already set; 'b' ignored"),
        ("vrrp_track_process p {\n process a\n param_match fuzzy\n}\n", "3:14: warning: vrrp_track_process p: invalid param_match type 'fuzzy'"),
        ("vrrp_track_process p {\n process a\n delay 0\n}\n", "3:8: warning: bad delay '0'"),
        ("vrrp_track_process p {\n process a\n weight 300\n}\n", "3:9: warning: bad weight '300'"),
        ("vrrp_track_process p {\n process a\n weight 5 sideways\n}\n", "3:11: warning: vrrp_track_process p: unknown weight option 'sideways'"),
        ("vrrp_track_process p {\n process a-very-long-process-name\n}\n", "1:1: warning: vrrp_track_process p: process 'a-very-long-process-name' is longer than the 15 bytes"),
    ] {
        let w = warnings(&tracked(block, "p"));
        assert!(
            w.iter().any(|l| l.starts_with(&format!("t.conf:{expected}"))),
            "expected t.conf:{expected}…\ngot {w:#?}"
        );
    }
}

#[test]
fn a_block_without_process_is_removed_and_its_trackers_ignored() {
    let w = warnings(&tracked("vrrp_track_process p {\n quorum 2\n}\n", "p"));
    assert!(
        w.iter().any(|l| l.starts_with(
            "t.conf:3:1: warning: vrrp_track_process p: process name not specified; removed"
        )),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|l| l.contains("tracks process 'p', which is not defined; ignored")),
        "{w:#?}"
    );
}

#[test]
fn track_process_needs_an_earlier_definition_and_is_kept_once() {
    let text = format!(
        "{}vrrp_track_process p {{\n process a\n}}\n",
        instance("    track_process {\n        p\n    }")
    );
    let loaded = ok(&text);
    assert!(loaded.config.instances[0].track_processes.is_empty());
    assert!(loaded.warnings.iter().any(|w| w
        .to_string()
        .contains("vrrp_track_process p is defined after vrrp_instance VI_1")));
    let w = warnings(&tracked(
        "vrrp_track_process p {\n process a\n}\n",
        "p\np weight 3",
    ));
    assert!(
        w.iter().any(|l| l.contains("tracks process 'p' twice")),
        "{w:#?}"
    );
}

#[test]
fn sync_groups_track_processes_and_an_owner_member_clears_their_weight() {
    let text = "vrrp_track_process p {\n process a\n weight 10\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 255\n virtual_ipaddress {\n  192.0.2.1\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  192.0.2.2\n }\n}\nvrrp_sync_group G {\n group {\n  A\n  B\n }\n track_process {\n  p\n }\n}\n";
    let loaded = ok(text);
    let g = &loaded.config.sync_groups[0];
    assert_eq!(
        g.track_processes[0].weight,
        Some(WeightOverride {
            weight: 0,
            reverse: false
        })
    );
    assert!(loaded.warnings.iter().any(|w| w
        .to_string()
        .contains("the weight of track_process p is cleared")));
    assert!(loaded
        .config
        .dump()
        .to_string()
        .contains("vrrp_sync_group G\n    group A B\n    sync_group_tracking_weight off\n    track_process p weight 0\n"));
}

#[test]
fn untracked_blocks_are_not_watched() {
    let c = ok(&instance("")).config;
    assert_eq!(c.tracked_processes().count(), 0);
    let c = ok(&format!(
        "vrrp_track_process p {{\n process a\n}}\n{}",
        instance("")
    ))
    .config;
    assert_eq!(c.track_processes.len(), 1);
    assert_eq!(c.tracked_processes().count(), 0);
}

#[test]
fn net_namespace_is_a_top_level_keyword_read_once() {
    let c = ok(&format!(
        "net_namespace blue\nnamespace_with_ipsets\n{}",
        instance("")
    ))
    .config;
    assert_eq!(c.global.net_namespace.as_deref(), Some("blue"));
    assert!(c.dump().to_string().contains("\nnet_namespace blue\n"));
    let w = warnings(&format!(
        "net_namespace blue\nnet_namespace red\n{}",
        instance("")
    ));
    assert!(
        w.iter().any(|l| l
            .starts_with("t.conf:2:1: warning: duplicate net_namespace definition 'red'; ignored")),
        "{w:#?}"
    );
    let e = err(&format!("net_namespace ../x\n{}", instance("")));
    assert!(
        e[0].starts_with("t.conf:1:15: error: bad net_namespace '../x'"),
        "{e:#?}"
    );
}

#[test]
fn process_monitor_receive_buffer() {
    let c = ok(&format!(
        "global_defs {{\n process_monitor_rcv_bufs 1048576\n process_monitor_rcv_bufs_force\n}}\n{}",
        instance("")
    ))
    .config;
    assert_eq!(c.global.process_monitor_rcv_bufs, Some(1_048_576));
    assert!(c.global.process_monitor_rcv_bufs_force);
}

//! `DNS_CHECK`, `SMTP_CHECK` and `FILE_CHECK`: keepalived 2.2.7's keywords and defaults
//! (`check/check_dns.c`, `check/check_smtp.c`, `check/check_file.c`), their refusals with
//! their place, and their `--dump-config` lines.

use super::*;
use crate::lvs::{
    CheckerKind, DnsCheck, DnsType, FileCheck, FileEffect, SmtpCheck, SMTP_DEFAULT_HELO,
};
use std::net::SocketAddr;
use std::time::Duration;

/// A virtual server with one real server 192.0.2.21:53 holding `checker`, after `before`.
fn rs(before: &str, checker: &str) -> String {
    format!("{before}virtual_server 192.0.2.10 53 {{\n lb_algo rr\n delay_loop 4\n real_server 192.0.2.21 53 {{\n{checker} }}\n}}\n")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

#[test]
fn dns_check_defaults_are_keepalived_s() {
    let c = ok(&rs("", "  DNS_CHECK {\n  }\n")).config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    assert_eq!(
        chk.kind,
        CheckerKind::Dns(DnsCheck {
            qtype: DnsType::Soa,
            name: ".".into()
        })
    );
    // The real server's address and port; retry 3, delay_before_retry = delay_loop.
    assert_eq!(chk.target, sa("192.0.2.21:53"));
    assert_eq!(chk.timing.retry, 3);
    assert_eq!(chk.timing.delay_before_retry, Duration::from_secs(4));
    assert_eq!(chk.timing.connect_timeout, Duration::from_secs(5));
    let dump = c.dump().to_string();
    assert!(
        dump.contains("        DNS_CHECK 192.0.2.21:53\n            type SOA\n            name .\n            connect_timeout 5\n            delay_loop 4\n            retry 3\n            delay_before_retry 4\n"),
        "{dump}"
    );
}

#[test]
fn dns_check_keywords() {
    let c = ok(&rs(
        "",
        "  DNS_CHECK {\n   type aaaa\n   name www.example.com.\n   connect_ip 192.0.2.53\n   connect_port 5353\n   bindto 192.0.2.2\n   retry 1\n   delay_before_retry 2\n   connect_timeout 1\n  }\n",
    ))
    .config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    assert_eq!(
        chk.kind,
        CheckerKind::Dns(DnsCheck {
            qtype: DnsType::Aaaa,
            name: "www.example.com.".into()
        })
    );
    assert_eq!(chk.target, sa("192.0.2.53:5353"));
    assert_eq!(chk.bind, Some("192.0.2.2".parse().expect("ip")));
    assert_eq!(
        (chk.timing.retry, chk.timing.delay_before_retry),
        (1, Duration::from_secs(2))
    );
    assert_eq!(chk.timing.connect_timeout, Duration::from_secs(1));
}

#[test]
fn dns_check_ignores_what_keepalived_ignores() {
    // keepalived reports these and runs with the fallback (`-t` exits 5): warnings.
    let l = ok(&rs(
        "",
        "  DNS_CHECK {\n   type ANY\n   name a..b\n   name ok.example\n   name second\n  }\n",
    ));
    let chk = &l.config.virtual_servers[0].real_servers[0].checkers[0];
    assert_eq!(
        chk.kind,
        CheckerKind::Dns(DnsCheck {
            qtype: DnsType::Soa,
            name: "ok.example".into()
        })
    );
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    for (place, text) in [
        ("t.conf:6:9:", "unknown DNS_CHECK type 'ANY'"),
        (
            "t.conf:7:9:",
            "bad DNS_CHECK name 'a..b': it has an empty label",
        ),
        ("t.conf:9:9:", "DNS_CHECK name is already given"),
    ] {
        assert!(
            w.iter().any(|m| m.starts_with(place) && m.contains(text)),
            "{place} {text}: {w:?}"
        );
    }
    // A name that cannot be encoded is an error (keepalived would send a corrupt query).
    let e = err(&rs(
        "",
        &format!("  DNS_CHECK {{\n   name {}.com\n  }}\n", "x".repeat(64)),
    ));
    assert!(
        e[0].starts_with("t.conf:6:9: error: bad DNS_CHECK name"),
        "{e:?}"
    );
}

#[test]
fn smtp_check_defaults_and_keywords() {
    let c = ok(&rs("", "  SMTP_CHECK {\n  }\n")).config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    assert_eq!(
        chk.kind,
        CheckerKind::Smtp(SmtpCheck {
            helo_name: SMTP_DEFAULT_HELO.into()
        })
    );
    assert_eq!(
        (chk.target, chk.timing.retry, chk.timing.delay_before_retry),
        (sa("192.0.2.21:53"), 1, Duration::from_secs(1))
    );
    let c = ok(&rs(
        "",
        "  SMTP_CHECK {\n   helo_name \"mx.example.com\"\n   connect_port 25\n   retry 2\n  }\n",
    ))
    .config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    assert_eq!(
        chk.kind,
        CheckerKind::Smtp(SmtpCheck {
            helo_name: "mx.example.com".into()
        })
    );
    assert_eq!((chk.target, chk.timing.retry), (sa("192.0.2.21:25"), 2));
    assert!(c
        .dump()
        .to_string()
        .contains("        SMTP_CHECK 192.0.2.21:25\n            helo_name mx.example.com\n"));
}

#[test]
fn smtp_check_host_blocks_are_checkers_of_their_own() {
    // keepalived: each host is a checker; the block's own address is checked only when a
    // connection keyword is written at its level.
    let l = ok(&rs(
        "",
        "  SMTP_CHECK {\n   retry 2\n   host {\n    connect_ip 192.0.2.31\n    connect_port 25\n   }\n   host {\n    connect_ip 192.0.2.32\n    connect_port 2525\n    connect_timeout 2\n   }\n  }\n",
    ));
    let checkers = &l.config.virtual_servers[0].real_servers[0].checkers;
    let targets: Vec<_> = checkers.iter().map(|c| c.target).collect();
    assert_eq!(targets, [sa("192.0.2.31:25"), sa("192.0.2.32:2525")]);
    assert!(checkers.iter().all(|c| c.timing.retry == 2));
    assert_eq!(checkers[1].timing.connect_timeout, Duration::from_secs(2));
    assert!(
        l.warnings.iter().any(|w| w
            .to_string()
            .contains("SMTP_CHECK host block is deprecated")),
        "{:?}",
        l.warnings
    );
    let l = ok(&rs(
        "",
        "  SMTP_CHECK {\n   connect_port 25\n   host {\n    connect_ip 192.0.2.31\n   }\n  }\n",
    ));
    let targets: Vec<_> = l.config.virtual_servers[0].real_servers[0]
        .checkers
        .iter()
        .map(|c| c.target)
        .collect();
    assert_eq!(targets, [sa("192.0.2.21:25"), sa("192.0.2.31:53")]);
}

const TRACK: &str = "track_file tf {\n file /run/wa-test/tf\n weight 3 reverse\n}\n";

#[test]
fn file_check_follows_a_track_file_above_it() {
    let c = ok(&rs(TRACK, "  FILE_CHECK {\n   track_file tf\n  }\n")).config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    let CheckerKind::File(file) = &chk.kind else {
        panic!("FILE_CHECK: {chk:?}")
    };
    // The track file's weight and reverse are the default.
    assert_eq!(
        file,
        &FileCheck {
            track_file: "tf".into(),
            path: "/run/wa-test/tf".into(),
            weight: 3,
            reverse: true
        }
    );
    assert!(!chk.timing.alpha && chk.timing.retry == 0);
    let c = ok(&rs(
        TRACK,
        "  FILE_CHECK {\n   track_file tf\n   weight -10 noreverse\n  }\n",
    ))
    .config;
    let chk = &c.virtual_servers[0].real_servers[0].checkers[0];
    let CheckerKind::File(file) = &chk.kind else {
        panic!("FILE_CHECK: {chk:?}")
    };
    assert_eq!((file.weight, file.reverse), (-10, false));
    assert!(c
        .dump()
        .to_string()
        .contains("        FILE_CHECK track_file tf\n            weight -10\n"));
}

#[test]
fn file_check_ignores_what_keepalived_ignores_and_says_where() {
    let warned = |text: &str, place: &str, what: &str| {
        let l = ok(&rs(TRACK, text));
        let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
        assert!(
            w.iter().any(|m| m.starts_with(place) && m.contains(what)),
            "{place} {what}: {w:?}"
        );
        l.config.virtual_servers[0].real_servers[0].checkers.clone()
    };
    // An undefined track_file: reported, and the checker without one dropped.
    let c = warned(
        "  FILE_CHECK {\n   track_file nope\n  }\n",
        "t.conf:10:15:",
        "track_file nope is not defined above this virtual_server",
    );
    assert!(c.is_empty(), "{c:?}");
    warned(
        "  FILE_CHECK {\n  }\n",
        "t.conf:9:3:",
        "FILE_CHECK has no track_file",
    );
    // A bad weight option: the weight line is ignored (the track file's applies).
    let c = warned(
        "  FILE_CHECK {\n   track_file tf\n   weight 1 sideways\n  }\n",
        "t.conf:11:13:",
        "unknown FILE_CHECK weight option 'sideways'",
    );
    let CheckerKind::File(file) = &c[0].kind else {
        panic!("FILE_CHECK: {c:?}")
    };
    assert_eq!((file.weight, file.reverse), (3, true));
    // FILE_CHECK has none of the checkers' common keywords: unknown there, as keepalived.
    warned(
        "  FILE_CHECK {\n   track_file tf\n   delay_loop 3\n  }\n",
        "t.conf:11:4:",
        "delay_loop",
    );
}

#[test]
fn file_values_act_as_keepalived_s_track_file() {
    let check = |weight, reverse| FileCheck {
        track_file: "tf".into(),
        path: "/x".into(),
        weight,
        reverse,
    };
    // Weight 0: a non-zero value is a fault; reverse: a zero value is.
    assert_eq!(check(0, false).effect(0), FileEffect::Offset(0));
    assert_eq!(check(0, false).effect(7), FileEffect::Down);
    assert_eq!(check(0, true).effect(0), FileEffect::Down);
    assert_eq!(check(0, true).effect(-1), FileEffect::Offset(0));
    // Otherwise value × weight (negated with reverse), a product at or below −2³¹ a fault.
    assert_eq!(check(2, false).effect(5), FileEffect::Offset(10));
    assert_eq!(check(2, true).effect(5), FileEffect::Offset(-10));
    assert_eq!(check(1, false).effect(-2_147_483_648), FileEffect::Down);
    assert_eq!(
        check(i32::MAX, false).effect(4),
        FileEffect::Offset(i64::from(i32::MAX))
    );
}

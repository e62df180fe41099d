//! `track_file`, the notify FIFOs, `notify_priority_changes` and the alert-mail settings.

use super::*;

const FILE: &str =
    "track_file tf {\n file /run/x/prio\n weight -3 reverse\n init_file 7 overwrite\n}\n";

#[test]
fn track_file_section_and_references() {
    let text = format!(
        "{FILE}vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{ 192.0.2.1 }}\n track_file {{\n tf weight 5 noreverse\n }}\n}}\n"
    );
    let c = ok(&text).config;
    let def = c.track_file("tf").expect("defined");
    assert_eq!(def.path, std::path::Path::new("/run/x/prio"));
    assert_eq!((def.weight, def.reverse), (-3, true));
    assert_eq!(
        def.init,
        Some(TrackFileInit {
            value: 7,
            overwrite: true
        })
    );
    assert_eq!(
        c.instances[0].track_files,
        vec![TrackFile {
            name: "tf".into(),
            weight: 5,
            reverse: false
        }]
    );
    let dump = c.dump().to_string();
    assert!(dump.contains("track_file tf\n    file /run/x/prio\n    weight -3 reverse\n    init_file 7 overwrite\n"), "{dump}");
    assert!(dump.contains("    track_file tf weight 5\n"), "{dump}");
}

#[test]
fn a_track_line_without_weight_takes_the_files() {
    let c = ok(&format!("{FILE}{}", instance("track_file {\n tf\n }\n"))).config;
    let t = &c.instances[0].track_files[0];
    assert_eq!((t.weight, t.reverse), (-3, true));
}

#[test]
fn track_file_as_keepalived_drops_it() {
    // Defined after the instance: keepalived does not find it when it reads the line.
    let w = warnings(&format!("{}{FILE}", instance("track_file {\n tf\n }\n")));
    assert!(
        w.iter().any(|m| m.contains("track file tf not found")),
        "{w:?}"
    );
    // No file: the section is ignored.
    let w = warnings("track_file nofile {\n weight 2\n}\n");
    assert!(w.iter().any(|m| m.contains("has no file")), "{w:?}");
    // Out-of-range weight: 1.
    let l = ok("track_file t {\n file /tmp/t\n weight 300\n}\n");
    assert_eq!(l.config.track_files[0].weight, 1);
    assert!(!l.warnings.is_empty());
    // Deprecated synonym.
    let l = ok("vrrp_track_file t {\n file /tmp/t\n}\n");
    assert_eq!(l.config.track_files[0].weight, 1);
    assert!(l.warnings.iter().any(|w| w.message.contains("deprecated")));
}

#[test]
fn track_file_weights_in_sync_groups_and_owners() {
    // The default weight becomes 0 in a member of a sync group; another weight drops it.
    let text = format!(
        "track_file a {{\n file /tmp/a\n}}\ntrack_file b {{\n file /tmp/b\n weight 4\n}}\n{}vrrp_sync_group G {{\n group {{\n VI_1\n }}\n}}\n",
        instance("track_file {\n a\n b\n }\n")
    );
    let c = ok(&text).config;
    assert_eq!(
        c.instances[0].track_files,
        vec![TrackFile {
            name: "a".into(),
            weight: 0,
            reverse: false
        }]
    );
}

#[test]
fn notify_fifos_and_priority_changes() {
    let text = format!(
        "global_defs {{\n notify_fifo /run/k.fifo\n notify_fifo_script \"/bin/reader -x\"\n vrrp_notify_fifo /run/k.fifo\n vrrp_notify_priority_changes\n}}\n{}vrrp_instance VI_2 {{\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {{ 192.0.2.2 }}\n}}\nvrrp_sync_group G {{\n group {{\n VI_2\n }}\n notify_priority_changes off\n}}\n",
        instance("notify_priority_changes false\n")
    );
    let l = ok(&text);
    let g = &l.config.global;
    let fifo = g.notify_fifo.as_ref().expect("fifo");
    assert_eq!(fifo.path, std::path::Path::new("/run/k.fifo"));
    assert_eq!(
        fifo.script.as_ref().map(|s| s.argv.clone()),
        Some(vec!["/bin/reader".to_owned(), "-x".to_owned()])
    );
    // The same FIFO twice: keepalived ignores the vrrp one.
    assert!(g.vrrp_notify_fifo.is_none());
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("vrrp_notify_fifo ignored")));
    assert!(g.notify_priority_changes);
    let c = &l.config;
    // Own setting, then the group's, then the global one.
    assert!(!c.notify_priority_changes(&c.instances[0]));
    assert!(!c.notify_priority_changes(&c.instances[1]));
    let dump = c.dump().to_string();
    assert!(
        dump.contains("    notify_fifo /run/k.fifo\n    notify_fifo_script /bin/reader -x\n"),
        "{dump}"
    );
}

#[test]
fn smtp_settings_and_alert_defaults() {
    let text = format!(
        "global_defs {{\n notification_email {{\n ops@example.org\n noc@example.org\n }}\n notification_email_from kad@example.org\n smtp_server 192.0.2.25 2525\n smtp_connect_timeout 0\n smtp_helo_name lb1\n smtp_alert_vrrp\n smtp_alert off\n}}\n{}",
        instance("")
    );
    let l = ok(&text);
    let s = &l.config.global.smtp;
    assert_eq!(s.to, vec!["ops@example.org", "noc@example.org"]);
    assert_eq!(s.from.as_deref(), Some("kad@example.org"));
    assert_eq!(
        s.server,
        Some(SmtpServer {
            host: "192.0.2.25".into(),
            port: 2525
        })
    );
    // 0 is read as 1, as keepalived does.
    assert_eq!(s.connect_timeout, std::time::Duration::from_secs(1));
    assert!(s.enabled());
    // smtp_alert_vrrp wins over smtp_alert for instances.
    assert!(l.config.instance_smtp_alert(&l.config.instances[0]));
    let c = ok(&instance("smtp_alert no\n")).config;
    assert!(!c.instance_smtp_alert(&c.instances[0]));
    assert!(!c.global.smtp.enabled());
}

#[test]
fn smtp_server_errors_name_their_place() {
    let w = warnings("global_defs {\n smtp_server 192.0.2.1 notaport\n}\n");
    assert!(
        w.iter()
            .any(|m| m.contains(":2:") && m.contains("invalid smtp server")),
        "{w:?}"
    );
}

/// A virtual server with two real servers: the first sets `smtp_alert` with `rs_alert`.
fn lvs(global: &str, vs_alert: &str, rs_alert: &str) -> String {
    format!(
        "global_defs {{\n{global}}}\nvirtual_server 192.0.2.10 80 {{\n lb_algo rr\n{vs_alert} real_server 198.51.100.11 80 {{\n{rs_alert}  TCP_CHECK {{\n  }}\n }}\n real_server 198.51.100.12 80 {{\n  TCP_CHECK {{\n  }}\n }}\n}}\n"
    )
}

#[test]
fn lvs_smtp_alert_precedence_is_keepalived_s() {
    // Nothing set: virtual servers off, real servers on (keepalived's compatibility default).
    let c = ok(&lvs("", "", "")).config;
    let vs = &c.virtual_servers[0];
    assert!(!c.virtual_server_smtp_alert(vs));
    assert!(c.real_server_smtp_alert(&vs.real_servers[0]));
    // The global smtp_alert decides both; smtp_alert_vrrp does not touch them.
    let c = ok(&lvs(" smtp_alert off\n smtp_alert_vrrp on\n", "", "")).config;
    let vs = &c.virtual_servers[0];
    assert!(!c.virtual_server_smtp_alert(vs));
    assert!(!c.real_server_smtp_alert(&vs.real_servers[0]));
    // smtp_alert_checker wins over smtp_alert; the block's own smtp_alert wins over both.
    let c = ok(&lvs(
        " smtp_alert off\n smtp_alert_checker\n",
        " smtp_alert no\n",
        "  smtp_alert off\n",
    ))
    .config;
    let vs = &c.virtual_servers[0];
    assert!(!c.virtual_server_smtp_alert(vs));
    assert!(!c.real_server_smtp_alert(&vs.real_servers[0]));
    assert!(c.real_server_smtp_alert(&vs.real_servers[1]));
    let dump = c.dump().to_string();
    assert!(
        dump.contains("virtual_server 192.0.2.10:80/tcp\n    quorum 1\n    hysteresis 0\n    omega off\n    smtp_alert off\n    real_server 198.51.100.11:80\n        weight 1\n        smtp_alert off\n        TCP_CHECK 198.51.100.11:80\n    real_server 198.51.100.12:80\n        weight 1\n        smtp_alert on\n        TCP_CHECK 198.51.100.12:80\n"),
        "{dump}"
    );
}

#[test]
fn lvs_smtp_alert_bad_boolean_keeps_the_default_and_says_where() {
    let l = ok(&lvs("", " smtp_alert maybe\n", "  smtp_alert sometimes\n"));
    let vs = &l.config.virtual_servers[0];
    assert_eq!(vs.smtp_alert, None);
    assert_eq!(vs.real_servers[0].smtp_alert, None);
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter()
            .any(|m| m.contains("t.conf:5:13") && m.contains("bad boolean 'maybe'")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.contains("t.conf:7:14") && m.contains("bad boolean 'sometimes'")),
        "{w:?}"
    );
    assert!(!w.iter().any(|m| m.contains("no effect")), "{w:?}");
}

#[test]
fn lvs_notify_fifo_and_its_conflicts() {
    let l = ok(
        "global_defs {\n lvs_notify_fifo /run/lvs.fifo root\n lvs_notify_fifo_script /bin/lvs-reader\n no_checker_emails\n}\n",
    );
    let g = &l.config.global;
    let fifo = g.lvs_notify_fifo.as_ref().expect("lvs fifo");
    assert_eq!(fifo.path, std::path::Path::new("/run/lvs.fifo"));
    assert_eq!(fifo.owner.as_ref().map(|o| o.user.as_str()), Some("root"));
    assert!(fifo.script.is_some());
    assert!(g.smtp.no_checker_emails);
    let dump = l.config.dump().to_string();
    assert!(
        dump.contains(
            "    lvs_notify_fifo /run/lvs.fifo root\n    lvs_notify_fifo_script /bin/lvs-reader\n"
        ),
        "{dump}"
    );
    assert!(dump.contains("    no_checker_emails on\n"), "{dump}");
    // Naming the notify_fifo: ignored.
    let l = ok("global_defs {\n notify_fifo /run/k.fifo\n lvs_notify_fifo /run/k.fifo\n}\n");
    assert!(l.config.global.lvs_notify_fifo.is_none());
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("lvs_notify_fifo ignored")));
    // Shared with the vrrp_notify_fifo, both with a script: the VRRP script reads it.
    let l = ok("global_defs {\n vrrp_notify_fifo /run/k.fifo\n vrrp_notify_fifo_script /bin/a\n lvs_notify_fifo /run/k.fifo\n lvs_notify_fifo_script /bin/b\n}\n");
    let g = &l.config.global;
    assert!(g.vrrp_notify_fifo.as_ref().unwrap().script.is_some());
    let lvs = g.lvs_notify_fifo.as_ref().expect("kept");
    assert!(lvs.script.is_none());
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("lvs_notify_fifo_script ignored")));
    // A script without its FIFO.
    let w = warnings("global_defs {\n lvs_notify_fifo_script /bin/b\n}\n");
    assert!(
        w.iter()
            .any(|m| m.contains("lvs_notify_fifo_script without a lvs_notify_fifo")),
        "{w:?}"
    );
}

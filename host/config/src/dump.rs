//! The effective configuration as stable text (`wasmalived -t --dump-config`): every value
//! in force after defaults, keepalived's fallbacks and cross-references, one `key value`
//! line each, sections in file order. Keys are keepalived's keywords where one exists, so a
//! dump reads like a fully spelled-out keepalived.conf (without braces).
//!
//! ```text
//! vrrp_instance VI_1
//!     state MASTER
//!     interface eth0
//!     virtual_router_id 51
//!     priority 100
//!     version 2
//!     advert_int 1
//!     ...
//! ```
//!
//! Durations are seconds with up to six decimals (`0.5`, `40.95`); flags are `on`/`off`.
//! The format is meant for people and for tests comparing with keepalived's own dump: lines
//! may be added, existing keys keep their meaning.
//!
//! The dump covers the VRRP side and, of the LVS director, what decides its notifications:
//! per `virtual_server` its quorum and `smtp_alert`, per `real_server` its weight and
//! `smtp_alert` (effective values), `lvs_sync_daemon` with the options written, and
//! `lvs_backend` in `global_defs` when there are virtual servers (the configured choice;
//! `wasmalived -t` says which backend `auto` takes on this host). The rest of
//! `virtual_server` (scheduler, forwarding) and `virtual_server_group` are not written (yet);
//! `wasmalived -t` reports them in its LVS review.

use std::fmt::{self, Display, Write as _};
use std::time::Duration;

use crate::lvs::{LvsSyncDaemon, VirtualServer};
use crate::model::{
    Config, InitialState, Notify, NotifyFifo, PluginRef, RunAs, ScriptKind, SmtpSettings,
    TrackFile, TrackFileDef, TrackInterface, TrackProcess, TrackScript, VrrpInstance, VrrpScript,
    VrrpSyncGroup, VrrpTrackProcess,
};
use crate::route::{scope_name, StaticEntries};
use crate::vip::{Scope, VipSpec};
use wasmalived_proto::vrrp::types::{Family, Version};

impl Config {
    /// The effective configuration as text (see the [module docs](self)).
    pub fn dump(&self) -> ConfigDump<'_> {
        ConfigDump(self)
    }
}

/// [`Config::dump`]'s result; `Display` writes the text.
pub struct ConfigDump<'c>(&'c Config);

impl Display for ConfigDump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let g = &c.global;
        writeln!(f, "global_defs")?;
        line(
            f,
            "router_id",
            g.router_id.as_deref().unwrap_or("(host name)"),
        )?;
        line(f, "vrrp_version", version(g.vrrp_version))?;
        line(f, "vrrp_strict", on_off(g.vrrp_strict))?;
        let threads = &g.protocol_threads;
        line(
            f,
            "vrrp_rt_priority",
            threads
                .rt_priority
                .map_or_else(|| "off (SCHED_OTHER)".to_string(), |p| p.to_string()),
        )?;
        line(
            f,
            "vrrp_cpu_affinity",
            if threads.cpu_affinity.is_empty() {
                "any".to_string()
            } else {
                threads
                    .cpu_affinity
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        )?;
        line(f, "vrrp_no_swap", on_off(threads.no_swap))?;
        line(f, "vrrp_priority", g.vrrp_nice())?;
        line(
            f,
            "checker_priority",
            match g.checker_threads.nice {
                Some(nice) => nice.to_string(),
                None => format!(
                    "{} (vrrp_priority + {})",
                    g.checker_nice(),
                    crate::defaults::CHECKER_NICE_ABOVE_VRRP
                ),
            },
        )?;
        line(f, "vrrp_mcast_group4", g.mcast_group4)?;
        line(f, "vrrp_mcast_group6", g.mcast_group6)?;
        line(f, "vrrp_garp_master_delay", secs(g.garp.master_delay))?;
        line(f, "vrrp_garp_master_repeat", g.garp.master_repeat)?;
        line(
            f,
            "vrrp_garp_master_refresh",
            secs(g.garp.master_refresh.unwrap_or_default()),
        )?;
        line(
            f,
            "vrrp_garp_master_refresh_repeat",
            g.garp.master_refresh_repeat,
        )?;
        line(
            f,
            "vrrp_garp_lower_prio_delay",
            secs(g.garp.lower_prio_delay()),
        )?;
        line(f, "vrrp_garp_lower_prio_repeat", g.garp.lower_prio_repeat())?;
        line(f, "vrrp_garp_interval", secs(g.garp.interval))?;
        line(f, "vrrp_gna_interval", secs(g.garp.gna_interval))?;
        line(
            f,
            "enable_script_security",
            on_off(g.enable_script_security),
        )?;
        if let Some(u) = &g.script_user {
            line(f, "script_user", run_as(u))?;
        }
        line(f, "plugin_dir", &g.plugin_path)?;
        if let Some(sync) = &g.lvs_sync_daemon {
            line(f, "lvs_sync_daemon", LvsSyncLine(sync))?;
        }
        if let Some(addr) = g.metrics_listen {
            line(f, "metrics_listen", addr)?;
        }
        if let Some(size) = g.process_monitor_rcv_bufs {
            line(f, "process_monitor_rcv_bufs", size)?;
            line(
                f,
                "process_monitor_rcv_bufs_force",
                on_off(g.process_monitor_rcv_bufs_force),
            )?;
        }
        for (key, fifo) in [
            ("notify_fifo", &g.notify_fifo),
            ("vrrp_notify_fifo", &g.vrrp_notify_fifo),
            ("lvs_notify_fifo", &g.lvs_notify_fifo),
        ] {
            if let Some(fifo) = fifo {
                notify_fifo(f, key, fifo)?;
            }
        }
        line(
            f,
            "vrrp_notify_priority_changes",
            on_off(g.notify_priority_changes),
        )?;
        smtp(f, &g.smtp)?;
        if !c.virtual_servers.is_empty() {
            line(f, "lvs_backend", g.lvs_backend.keyword())?;
        }
        if let Some(ns) = &g.net_namespace {
            writeln!(f, "net_namespace {ns}")?;
        }
        statics(f, &c.statics)?;
        for t in &c.track_files {
            track_file_def(f, t)?;
        }
        for s in &c.scripts {
            script(f, s)?;
        }
        for p in &c.track_processes {
            track_process_block(f, p)?;
        }
        for i in &c.instances {
            instance(f, i, c)?;
        }
        for g in &c.sync_groups {
            sync_group(f, g, c)?;
        }
        for vs in &c.virtual_servers {
            virtual_server(f, vs, c)?;
        }
        Ok(())
    }
}

fn notify_fifo(f: &mut fmt::Formatter<'_>, key: &str, fifo: &NotifyFifo) -> fmt::Result {
    match &fifo.owner {
        Some(u) => line(f, key, format!("{} {}", fifo.path.display(), run_as(u)))?,
        None => line(f, key, fifo.path.display())?,
    }
    if let Some(s) = &fifo.script {
        let key = format!("{key}_script");
        match &s.user {
            Some(u) => line(f, &key, format!("{} user {}", argv(&s.argv), run_as(u)))?,
            None => line(f, &key, argv(&s.argv))?,
        }
    }
    Ok(())
}

fn smtp(f: &mut fmt::Formatter<'_>, s: &SmtpSettings) -> fmt::Result {
    if let Some(server) = &s.server {
        line(f, "smtp_server", format!("{} {}", server.host, server.port))?;
    }
    line(
        f,
        "smtp_helo_name",
        s.helo_name.as_deref().unwrap_or("(host name)"),
    )?;
    line(f, "smtp_connect_timeout", secs(s.connect_timeout))?;
    line(
        f,
        "notification_email_from",
        s.from.as_deref().unwrap_or("(user@host name)"),
    )?;
    for to in &s.to {
        line(f, "notification_email", to)?;
    }
    let tri = |v: Option<bool>| v.map_or("unset", on_off);
    line(f, "smtp_alert", tri(s.alert))?;
    line(f, "smtp_alert_vrrp", tri(s.alert_vrrp))?;
    line(f, "smtp_alert_checker", tri(s.alert_checker))?;
    line(f, "no_email_faults", on_off(s.no_email_faults))?;
    line(f, "no_checker_emails", on_off(s.no_checker_emails))
}

fn track_file_def(f: &mut fmt::Formatter<'_>, t: &TrackFileDef) -> fmt::Result {
    writeln!(f, "track_file {}", t.name)?;
    line(f, "file", t.path.display())?;
    line(f, "weight", weight(t.weight, t.reverse))?;
    if let Some(init) = t.init {
        let overwrite = if init.overwrite { " overwrite" } else { "" };
        line(f, "init_file", format!("{}{overwrite}", init.value))?;
    }
    Ok(())
}

fn track_files(f: &mut fmt::Formatter<'_>, files: &[TrackFile]) -> fmt::Result {
    for t in files {
        line(
            f,
            "track_file",
            format!("{} weight {}", t.name, weight(t.weight, t.reverse)),
        )?;
    }
    Ok(())
}

/// `lvs_sync_daemon` as written, with only the options that were set (the rest are the
/// sync engine's defaults).
struct LvsSyncLine<'a>(&'a LvsSyncDaemon);

impl Display for LvsSyncLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "{} {}", s.interface, s.instance)?;
        if let Some(id) = s.sync_id {
            write!(f, " id {id}")?;
        }
        if let Some(maxlen) = s.maxlen {
            write!(f, " maxlen {maxlen}")?;
        }
        if let Some(port) = s.port {
            write!(f, " port {port}")?;
        }
        if let Some(ttl) = s.ttl {
            write!(f, " ttl {ttl}")?;
        }
        if let Some(group) = s.group {
            write!(f, " group {group}")?;
        }
        Ok(())
    }
}

fn line(f: &mut fmt::Formatter<'_>, key: &str, value: impl Display) -> fmt::Result {
    writeln!(f, "    {key} {value}")
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn version(v: Version) -> &'static str {
    match v {
        Version::V2 => "2",
        Version::V3 => "3",
    }
}

/// Seconds with up to six decimals, no trailing zeros.
fn secs(d: Duration) -> String {
    let micros = d.subsec_micros();
    if micros == 0 {
        return d.as_secs().to_string();
    }
    let frac = format!("{micros:06}");
    format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
}

fn run_as(u: &RunAs) -> String {
    match &u.group {
        Some(g) => format!("{} {g}", u.user),
        None => u.user.clone(),
    }
}

/// A command line with each argument quoted when it needs to be.
fn argv(args: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if !a.is_empty() && !a.chars().any(|c| c.is_whitespace() || "'\"\\".contains(c)) {
            out.push_str(a);
        } else {
            out.push('\'');
            out.push_str(&a.replace('\'', "'\\''"));
            out.push('\'');
        }
    }
    out
}

fn script(f: &mut fmt::Formatter<'_>, s: &VrrpScript) -> fmt::Result {
    writeln!(f, "vrrp_script {}", s.name)?;
    match &s.kind {
        ScriptKind::Exec { argv: a } => line(f, "script", argv(a))?,
        ScriptKind::Plugin {
            plugin,
            on_fatal,
            grants,
            ..
        } => {
            match plugin {
                PluginRef::Name(n) => line(f, "plugin", n)?,
                PluginRef::Path(p) => line(f, "plugin", p.display())?,
            }
            line(f, "on_fatal", format!("{on_fatal:?}").to_ascii_lowercase())?;
            socket_grants(f, grants)?;
        }
    }
    line(f, "interval", secs(s.interval))?;
    line(f, "timeout", secs(s.timeout))?;
    line(f, "weight", weight(s.weight, s.weight_reverse))?;
    line(f, "rise", s.rise)?;
    line(f, "fall", s.fall)?;
    line(f, "init_fail", on_off(s.init_fail))?;
    if let Some(u) = &s.user {
        line(f, "user", run_as(u))?;
    }
    Ok(())
}

/// The network grants of a plugin check, one keyword per line with its targets.
fn socket_grants(f: &mut fmt::Formatter<'_>, grants: &crate::grants::Grants) -> fmt::Result {
    let targets = |list: Vec<&str>| list.join(" ");
    if !grants.http.is_empty() {
        line(
            f,
            "allow_http",
            targets(grants.http.iter().map(|g| g.0.as_str()).collect()),
        )?;
    }
    if !grants.tcp.is_empty() {
        line(
            f,
            "allow_tcp",
            targets(grants.tcp.iter().map(|g| g.0.as_str()).collect()),
        )?;
    }
    if !grants.udp.is_empty() {
        line(
            f,
            "allow_udp",
            targets(grants.udp.iter().map(|g| g.0.as_str()).collect()),
        )?;
    }
    Ok(())
}

fn track_process_block(f: &mut fmt::Formatter<'_>, p: &VrrpTrackProcess) -> fmt::Result {
    writeln!(f, "vrrp_track_process {}", p.name)?;
    let mut process = vec![p.pattern.name.clone()];
    process.extend(p.pattern.params.iter().cloned());
    line(f, "process", argv(&process))?;
    if let Some(m) = p.pattern.param_match {
        line(f, "param_match", m.keyword())?;
    }
    line(f, "full_command", on_off(p.pattern.full_command))?;
    line(f, "quorum", p.quorum)?;
    if p.quorum_max == u32::MAX {
        line(f, "quorum_max", "unlimited")?;
    } else {
        line(f, "quorum_max", p.quorum_max)?;
    }
    line(f, "fork_delay", secs(p.fork_delay.unwrap_or_default()))?;
    line(
        f,
        "terminate_delay",
        secs(p.terminate_delay.unwrap_or_default()),
    )?;
    line(f, "weight", weight(p.weight, p.weight_reverse))
}

fn track_process(f: &mut fmt::Formatter<'_>, t: &TrackProcess, c: &Config) -> fmt::Result {
    match c.track_process(&t.name) {
        Some(p) => {
            let (w, r) = t.effective_weight(p);
            line(
                f,
                "track_process",
                format!("{} weight {}", t.name, weight(w, r)),
            )
        }
        None => line(f, "track_process", &t.name),
    }
}

fn weight(w: i32, reverse: bool) -> String {
    if reverse {
        format!("{w} reverse")
    } else {
        w.to_string()
    }
}

/// `static_ipaddress`, `static_routes`, `static_rules`: one section each, when not empty.
fn statics(f: &mut fmt::Formatter<'_>, s: &StaticEntries) -> fmt::Result {
    if !s.addresses.is_empty() {
        writeln!(f, "static_ipaddress")?;
        for a in &s.addresses {
            writeln!(f, "    {}", vip(a, "eth0"))?;
        }
    }
    if !s.routes.is_empty() {
        writeln!(f, "static_routes")?;
        for r in &s.routes {
            writeln!(f, "    {r}")?;
        }
    }
    if !s.rules.is_empty() {
        writeln!(f, "static_rules")?;
        for r in &s.rules {
            writeln!(f, "    {r}")?;
        }
    }
    Ok(())
}

fn vip(v: &VipSpec, default_dev: &str) -> String {
    let mut s = format!(
        "{}/{} dev {}",
        v.addr,
        v.prefix_len,
        v.dev.as_deref().unwrap_or(default_dev)
    );
    if let Some(b) = v.brd {
        let _ = write!(s, " brd {b}");
    }
    let scope = scope_name(v.scope.unwrap_or(Scope::Global));
    let _ = write!(s, " scope {scope}");
    if let Some(l) = &v.label {
        let _ = write!(s, " label {l}");
    }
    s
}

fn track_script(f: &mut fmt::Formatter<'_>, t: &TrackScript, c: &Config) -> fmt::Result {
    match c.script(&t.name) {
        Some(s) => {
            let (w, r) = t.effective_weight(s);
            line(
                f,
                "track_script",
                format!("{} weight {}", t.name, weight(w, r)),
            )
        }
        None => line(f, "track_script", &t.name),
    }
}

fn track_interface(f: &mut fmt::Formatter<'_>, t: &TrackInterface) -> fmt::Result {
    line(
        f,
        "track_interface",
        format!("{} weight {}", t.name, weight(t.weight, t.reverse)),
    )
}

fn notify(f: &mut fmt::Formatter<'_>, n: &Notify) -> fmt::Result {
    for (key, script) in [
        ("notify_master", &n.master),
        ("notify_backup", &n.backup),
        ("notify_fault", &n.fault),
        ("notify_stop", &n.stop),
        ("notify", &n.any),
        ("notify_split_brain", &n.split_brain),
    ] {
        if let Some(s) = script {
            match &s.user {
                Some(u) => line(f, key, format!("{} user {}", argv(&s.argv), run_as(u)))?,
                None => line(f, key, argv(&s.argv))?,
            }
        }
    }
    Ok(())
}

fn instance(f: &mut fmt::Formatter<'_>, i: &VrrpInstance, c: &Config) -> fmt::Result {
    writeln!(f, "vrrp_instance {}", i.name)?;
    let state = match i.initial_state {
        InitialState::Master => "MASTER",
        InitialState::Backup => "BACKUP",
    };
    line(f, "state", state)?;
    line(f, "interface", &i.interface)?;
    if let Some(v) = &i.use_vmac {
        line(f, "use_vmac", &v.ifname)?;
        line(f, "vmac_xmit_base", on_off(v.xmit_base))?;
    }
    line(f, "virtual_router_id", i.vrid)?;
    line(f, "priority", i.priority.get())?;
    line(f, "version", version(i.version))?;
    let family = match i.family {
        Family::V4 => "inet",
        Family::V6 => "inet6",
    };
    line(f, "family", family)?;
    line(f, "advert_int", secs(i.advert_int.duration()))?;
    line(f, "nopreempt", on_off(i.nopreempt))?;
    line(f, "preempt_delay", secs(i.preempt_delay))?;
    match &i.auth_pass {
        Some(p) => line(f, "authentication", format!("PASS {}", p.0))?,
        None => line(f, "authentication", "none")?,
    }
    line(f, "accept", on_off(i.accept))?;
    line(f, "strict_mode", on_off(i.strict))?;
    for v in &i.vips {
        line(f, "virtual_ipaddress", vip(v, &i.interface))?;
    }
    for v in &i.excluded_vips {
        line(f, "virtual_ipaddress_excluded", vip(v, &i.interface))?;
    }
    if let Some(a) = i.mcast_src_ip {
        line(f, "mcast_src_ip", a)?;
    }
    if let Some(a) = i.unicast_src_ip {
        line(f, "unicast_src_ip", a)?;
    }
    for p in &i.unicast_peers {
        line(f, "unicast_peer", p)?;
    }
    for t in &i.track_interfaces {
        track_interface(f, t)?;
    }
    for t in &i.track_scripts {
        track_script(f, t, c)?;
    }
    for t in &i.track_processes {
        track_process(f, t, c)?;
    }
    track_files(f, &i.track_files)?;
    line(
        f,
        "notify_priority_changes",
        on_off(c.notify_priority_changes(i)),
    )?;
    line(f, "smtp_alert", on_off(c.instance_smtp_alert(i)))?;
    for r in &i.virtual_routes {
        line(f, "virtual_route", r)?;
    }
    for r in &i.virtual_rules {
        line(f, "virtual_rule", r)?;
    }
    line(f, "dont_track_primary", on_off(i.dont_track_primary))?;
    for h in &i.heartbeat_interfaces {
        line(f, "heartbeat_interface", h)?;
    }
    line(f, "garp_master_delay", secs(i.garp.master_delay))?;
    line(f, "garp_master_repeat", i.garp.master_repeat)?;
    line(
        f,
        "garp_master_refresh",
        secs(i.garp.master_refresh.unwrap_or_default()),
    )?;
    line(
        f,
        "garp_master_refresh_repeat",
        i.garp.master_refresh_repeat,
    )?;
    line(f, "garp_lower_prio_delay", secs(i.garp.lower_prio_delay()))?;
    line(f, "garp_lower_prio_repeat", i.garp.lower_prio_repeat())?;
    notify(f, &i.notify)?;
    if let Some(g) = c.sync_group_of(&i.name) {
        line(f, "sync_group", &g.name)?;
    }
    Ok(())
}

fn sync_group(f: &mut fmt::Formatter<'_>, g: &VrrpSyncGroup, c: &Config) -> fmt::Result {
    writeln!(f, "vrrp_sync_group {}", g.name)?;
    line(f, "group", g.instances.join(" "))?;
    line(f, "sync_group_tracking_weight", on_off(g.tracking_weight))?;
    for t in &g.track_interfaces {
        track_interface(f, t)?;
    }
    for t in &g.track_scripts {
        match &t.weight {
            Some(w) => line(
                f,
                "track_script",
                format!("{} weight {}", t.name, weight(w.weight, w.reverse)),
            )?,
            None => line(f, "track_script", &t.name)?,
        }
    }
    for t in &g.track_processes {
        track_process(f, t, c)?;
    }
    track_files(f, &g.track_files)?;
    if let Some(on) = g.notify_priority_changes {
        line(f, "notify_priority_changes", on_off(on))?;
    }
    line(f, "smtp_alert", on_off(c.group_smtp_alert(g)))?;
    notify(f, &g.notify)
}

/// A virtual server's notification settings, its real servers indented once more.
fn virtual_server(f: &mut fmt::Formatter<'_>, vs: &VirtualServer, c: &Config) -> fmt::Result {
    writeln!(f, "virtual_server {}", vs.label())?;
    line(f, "quorum", vs.quorum)?;
    line(f, "hysteresis", vs.hysteresis)?;
    line(f, "omega", on_off(vs.omega))?;
    line(f, "smtp_alert", on_off(c.virtual_server_smtp_alert(vs)))?;
    for rs in &vs.real_servers {
        line(f, "real_server", rs.addr)?;
        line(f, "    weight", rs.weight)?;
        line(f, "    smtp_alert", on_off(c.real_server_smtp_alert(rs)))?;
        for checker in &rs.checkers {
            lvs_checker(f, checker)?;
        }
    }
    Ok(())
}

/// A real server's checker: its keyword and target (the other checkers' options are in the
/// LVS review), then every effective value of `DNS_CHECK`, `SMTP_CHECK` and `FILE_CHECK`,
/// and a `TCP_CHECK`'s `close_with_reset`.
fn lvs_checker(f: &mut fmt::Formatter<'_>, checker: &crate::lvs::Checker) -> fmt::Result {
    use crate::lvs::CheckerKind;
    let timing = &checker.timing;
    match &checker.kind {
        CheckerKind::File(file) => {
            line(f, "    FILE_CHECK track_file", &file.track_file)?;
            let reverse = if file.reverse { " reverse" } else { "" };
            return writeln!(f, "            weight {}{reverse}", file.weight);
        }
        kind => line(
            f,
            &format!("    {}", kind.keyword()),
            format_args!("{}", checker.target),
        )?,
    }
    match &checker.kind {
        CheckerKind::Dns(dns) => {
            writeln!(f, "            type {}", dns.qtype.name())?;
            writeln!(f, "            name {}", dns.name)?;
        }
        CheckerKind::Smtp(smtp) => writeln!(f, "            helo_name {}", smtp.helo_name)?,
        CheckerKind::Tcp(tcp) if tcp.close_with_reset => {
            return writeln!(f, "            close_with_reset");
        }
        _ => return Ok(()),
    }
    if let Some(bind) = checker.bind {
        writeln!(f, "            bindto {bind}")?;
    }
    writeln!(
        f,
        "            connect_timeout {}",
        secs(timing.connect_timeout)
    )?;
    writeln!(f, "            delay_loop {}", secs(timing.delay_loop))?;
    writeln!(f, "            retry {}", timing.retry)?;
    writeln!(
        f,
        "            delay_before_retry {}",
        secs(timing.delay_before_retry)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::ok;

    #[test]
    fn durations_print_as_seconds() {
        assert_eq!(secs(Duration::from_secs(5)), "5");
        assert_eq!(secs(Duration::from_millis(500)), "0.5");
        assert_eq!(secs(Duration::from_micros(40_950_000)), "40.95");
        assert_eq!(secs(Duration::from_micros(1)), "0.000001");
    }

    #[test]
    fn commands_quote_what_needs_it() {
        assert_eq!(
            argv(&["/bin/x".into(), "a b".into(), "it's".into(), String::new()]),
            r"/bin/x 'a b' 'it'\''s' ''"
        );
    }

    #[test]
    fn a_whole_configuration() {
        let c = ok("vrrp_script chk {\n script \"/bin/check --x\"\n interval 2\n weight -4\n fall 2\n}\nvrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 51\n priority 150\n authentication {\n auth_type PASS\n auth_pass 1111\n }\n virtual_ipaddress {\n 192.0.2.16/24 label eth0:1\n }\n unicast_peer {\n 192.0.2.2\n }\n track_script {\n chk\n }\n}\nvrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n 192.0.2.17\n }\n}\nvrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n sync_group_tracking_weight\n}\n").config;
        let text = c.dump().to_string();
        for expected in [
            "vrrp_script chk\n    script /bin/check --x\n    interval 2\n    timeout 2\n    weight -4\n    rise 1\n    fall 2\n",
            "vrrp_instance VI_1\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    version 2\n    family inet\n    advert_int 1\n    nopreempt off\n    preempt_delay 0\n    authentication PASS 1111\n",
            "    virtual_ipaddress 192.0.2.16/24 dev eth0 scope global label eth0:1\n",
            "    unicast_peer 192.0.2.2\n",
            "    track_script chk weight -4\n",
            "    sync_group G\n",
            "vrrp_sync_group G\n    group VI_1 VI_2\n    sync_group_tracking_weight on\n",
            "vrrp_instance VI_2\n    state BACKUP\n",
            // VI_1 wants MASTER below priority 255 in a sync group: BACKUP, as keepalived.
        ] {
            assert!(text.contains(expected), "missing:\n{expected}\nin:\n{text}");
        }
    }

    #[test]
    fn plugin_checks_show_their_network_grants() {
        let c = ok("vrrp_script chk {\n plugin dns\n allow_udp 192.0.2.53:53 [2001:db8::53]:*\n allow_tcp 192.0.2.25:25\n}\n").config;
        let text = c.dump().to_string();
        assert!(
            text.contains(
                "    allow_tcp 192.0.2.25:25\n    allow_udp 192.0.2.53:53 [2001:db8::53]:*\n"
            ),
            "{text}"
        );
        assert!(!text.contains("allow_http"), "{text}");
    }

    #[test]
    fn routes_rules_and_static_entries() {
        let c = ok("static_ipaddress {\n 192.0.2.200/24 dev eth1\n}\nstatic_routes {\n 203.0.113.0/24 via 192.0.2.254 dev eth1 metric 3 no_track\n}\nstatic_rules {\n from 192.0.2.0/24 fwmark 16/255 table 100 preference 50\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n 192.0.2.16\n }\n virtual_routes {\n src 192.0.2.16 198.51.100.0/24 via 192.0.2.1 dev eth0 scope link\n unreachable 2001:db8:9::/48\n }\n virtual_rules {\n to 198.51.100.0/24 prohibit\n }\n}\n").config;
        let text = c.dump().to_string();
        for expected in [
            "static_ipaddress\n    192.0.2.200/24 dev eth1 scope global\n",
            "static_routes\n    203.0.113.0/24 via 192.0.2.254 dev eth1 table 254 metric 3 no_track\n",
            "static_rules\n    from 192.0.2.0/24 fwmark 0x10/0xff preference 50 table 100\n",
            "    virtual_route 198.51.100.0/24 via 192.0.2.1 dev eth0 src 192.0.2.16 table 254 scope link\n",
            "    virtual_route unreachable 2001:db8:9::/48 table 254\n",
            "    virtual_rule from all to 198.51.100.0/24 preference 16384 prohibit\n",
        ] {
            assert!(text.contains(expected), "missing:\n{expected}\nin:\n{text}");
        }
    }
}

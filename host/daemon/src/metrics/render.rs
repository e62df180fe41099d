//! The exposition: one snapshot of the status board (plus the plugin registry's counts)
//! rendered at scrape time. Nothing here keeps state, so the endpoint can never disagree
//! with `wasmalived status`. Every metric is listed in `docs/metrics.md`.
//!
//! Two formats, chosen by the scraper's `Accept` header as the Go client does: OpenMetrics
//! 1.0 (what Prometheus asks for first; `prometheus-client` encodes it) or, for anything
//! else (curl, Debian 12's `promtool check metrics`, older tools), the classic text format
//! 0.0.4. The classic text is derived from the OpenMetrics text: the two differ only in
//! that a counter family is named with its `_total` suffix, and there is no `# UNIT` line and
//! no `# EOF`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{exported_measurements, text, Text};
use crate::checks::latency::RunLatency;
use crate::control::{InstanceStatus, Status};
use wasmalived_plugin_host::reload::PluginCounts;
use wasmalived_proto::vrrp::DropReason;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus' classic text format 0.0.4.
    Classic,
}

impl Format {
    /// The format a scraper asks for: OpenMetrics if its `Accept` header names it, the
    /// classic text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Classic,
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// States an instance can be in, as `status` spells them.
const INSTANCE_STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];
/// States a check can be in, as `status` spells them.
const CHECK_STATES: [&str; 4] = ["init", "up", "down", "fatal"];

/// What one scrape shows.
#[derive(Debug)]
pub struct Snapshot {
    /// The status board's document.
    pub status: Status,
    /// Plugin loads, reloads and refusals.
    pub plugins: PluginCounts,
}

/// The text of `snapshot` in `format`.
pub fn render(snapshot: Snapshot, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    // Writing into a String cannot fail, and every value here is encodable.
    if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(error = %err, "encoding metrics failed");
    }
    match format {
        Format::OpenMetrics => out,
        Format::Classic => classic(&out),
    }
}

/// The classic text format of an OpenMetrics text (see the [module docs](self)).
fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|tag| Some((tag, line.strip_prefix(tag)?)));
        match descriptor {
            Some((tag, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{tag}{name}{total} {tail}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in families(&self.status, self.plugins) {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

type Labels<'a> = Vec<(&'static str, Text<'a>)>;

enum Value<'a> {
    Int(i64),
    Float(f64),
    Counter(u64),
    Histogram(&'a RunLatency),
}

/// One metric family and its series; encoded only if it has series.
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    series: Vec<(Labels<'a>, Value<'a>)>,
}

impl<'a> Family<'a> {
    fn new(kind: MetricType, name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            unit: None,
            kind,
            series: Vec::new(),
        }
    }

    fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(MetricType::Gauge, name, help)
    }

    /// A counter: `name` without `_total` (the encoder adds it).
    fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(MetricType::Counter, name, help)
    }

    fn seconds(mut self) -> Self {
        self.unit = Some(Unit::Seconds);
        self
    }

    fn push(&mut self, labels: Labels<'a>, value: Value<'a>) {
        self.series.push((labels, value));
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.series.is_empty() {
            return Ok(());
        }
        let mut metric =
            encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, value) in &self.series {
            if labels.is_empty() {
                // No `{}` after the name.
                encode_value(&mut metric, value)?;
            } else {
                encode_value(&mut metric.encode_family(labels)?, value)?;
            }
        }
        Ok(())
    }
}

fn encode_value(series: &mut MetricEncoder<'_>, value: &Value<'_>) -> Result<(), std::fmt::Error> {
    match value {
        Value::Int(v) => series.encode_gauge(v),
        Value::Float(v) => series.encode_gauge(v),
        Value::Counter(v) => series.encode_counter::<NoLabelSet, _, u64>(v, None),
        Value::Histogram(latency) => {
            let buckets: Vec<(f64, u64)> = latency
                .buckets()
                // The encoder writes `le="+Inf"` for f64::MAX.
                .map(|(le, n)| (if le.is_finite() { le } else { f64::MAX }, n))
                .collect();
            series.encode_histogram::<NoLabelSet>(
                latency.sum().as_secs_f64(),
                latency.count(),
                &buckets,
                None,
            )
        }
    }
}

fn flag(on: bool) -> Value<'static> {
    Value::Int(i64::from(on))
}

/// Every family, in exposition order.
fn families(status: &Status, plugins: PluginCounts) -> Vec<Family<'_>> {
    let mut all = vec![daemon_family(), log_family(status)];
    all.extend(vrrp_families(status));
    all.extend(check_families(status));
    all.extend(tracked_process_families(status));
    all.extend(plugin_families(plugins));
    all.extend(lvs_families(status));
    all
}

fn daemon_family() -> Family<'static> {
    let mut info = Family::gauge("wasmalived_build_info", "The daemon's version (always 1).");
    info.push(
        vec![("version", text(env!("CARGO_PKG_VERSION")))],
        Value::Int(1),
    );
    info
}

fn log_family(status: &Status) -> Family<'static> {
    let mut dropped = Family::counter(
        "wasmalived_log_lines_dropped",
        "Log lines dropped because the log writer could not keep up (its queue was full).",
    );
    dropped.push(vec![], Value::Counter(status.log.dropped_lines));
    dropped
}

fn vrrp_families(status: &Status) -> Vec<Family<'_>> {
    let mut info = Family::gauge(
        "wasmalived_vrrp_instance_info",
        "A VRRP instance's interface, VRID, address family and version (always 1).",
    );
    let mut state = Family::gauge(
        "wasmalived_vrrp_state",
        "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT), 0 for the others.",
    );
    let mut priority = Family::gauge("wasmalived_vrrp_priority", "Configured priority.");
    let mut effective = Family::gauge(
        "wasmalived_vrrp_effective_priority",
        "Priority after tracking: what the adverts carry.",
    );
    let mut transitions = Family::counter(
        "wasmalived_vrrp_transitions",
        "State changes by from, to and reason.",
    );
    let mut sent = Family::counter("wasmalived_vrrp_adverts_sent", "Adverts sent.");
    let mut received = Family::counter(
        "wasmalived_vrrp_adverts_received",
        "Adverts received and accepted.",
    );
    let mut zero_sent = Family::counter(
        "wasmalived_vrrp_priority_zero_sent",
        "Priority-0 adverts sent (releasing mastership).",
    );
    let mut zero_received = Family::counter(
        "wasmalived_vrrp_priority_zero_received",
        "Priority-0 adverts received.",
    );
    let mut drops = Family::counter(
        "wasmalived_vrrp_drops",
        "Received adverts dropped, by reason.",
    );
    let mut split_brain = Family::gauge(
        "wasmalived_vrrp_split_brain",
        "1 while another Master is seen for the instance's VRID.",
    );
    let mut split_brain_events = Family::counter(
        "wasmalived_vrrp_split_brain_events",
        "Times another Master was seen for the instance's VRID.",
    );
    let mut path_drops = Family::counter(
        "wasmalived_vrrp_path_drops",
        "Datagrams dropped on a receive path before reaching an instance, by reason.",
    );
    for i in &status.instances {
        let who = || vec![("instance", text(i.name.as_str()))];
        info.push(
            vec![
                ("instance", text(i.name.as_str())),
                ("interface", text(i.interface.as_str())),
                ("vrid", text(i.vrid.to_string())),
                ("family", text(i.family.as_str())),
                ("version", text(i.version.to_string())),
            ],
            Value::Int(1),
        );
        for s in INSTANCE_STATES {
            state.push(
                vec![("instance", text(i.name.as_str())), ("state", text(s))],
                flag(i.state == s),
            );
        }
        priority.push(who(), Value::Int(i64::from(i.priority)));
        effective.push(who(), Value::Int(i64::from(i.effective_priority)));
        for t in &i.transitions {
            transitions.push(
                vec![
                    ("instance", text(i.name.as_str())),
                    ("from", text(t.from.as_str())),
                    ("to", text(t.to.as_str())),
                    ("reason", text(t.reason.as_str())),
                ],
                Value::Counter(t.count),
            );
        }
        sent.push(who(), Value::Counter(counter(i, "tx_adverts")));
        received.push(who(), Value::Counter(counter(i, "rx_adverts")));
        zero_sent.push(who(), Value::Counter(counter(i, "tx_priority_zero")));
        zero_received.push(who(), Value::Counter(counter(i, "rx_priority_zero")));
        for reason in DropReason::ALL {
            drops.push(
                vec![
                    ("instance", text(i.name.as_str())),
                    ("reason", text(reason.name())),
                ],
                Value::Counter(counter(i, &format!("rx_{}", reason.name()))),
            );
        }
        split_brain.push(who(), flag(i.split_brain));
        split_brain_events.push(who(), Value::Counter(counter(i, "split_brain_events")));
    }
    for p in &status.paths {
        for reason in DropReason::ALL {
            let n = p
                .counters
                .get(&format!("rx_{}", reason.name()))
                .copied()
                .unwrap_or(0);
            path_drops.push(
                vec![
                    ("interface", text(p.interface.as_str())),
                    ("family", text(p.family.as_str())),
                    ("reason", text(reason.name())),
                ],
                Value::Counter(n),
            );
        }
    }
    vec![
        info,
        state,
        priority,
        effective,
        transitions,
        sent,
        received,
        zero_sent,
        zero_received,
        drops,
        split_brain,
        split_brain_events,
        path_drops,
    ]
}

/// One of an instance's named counters (0 if it does not report it).
fn counter(i: &InstanceStatus, name: &str) -> u64 {
    i.counters.get(name).copied().unwrap_or(0)
}

fn check_families(status: &Status) -> Vec<Family<'_>> {
    let mut state = Family::gauge(
        "wasmalived_check_state",
        "1 for the check's current state (init, up, down, fatal), 0 for the others.",
    );
    let mut runs = Family::counter(
        "wasmalived_check_runs",
        "Check runs finished, by result: ok, fatal, or the kind of failure.",
    );
    let mut skipped = Family::counter(
        "wasmalived_check_skipped_runs",
        "Runs not started because the previous one was still going.",
    );
    let mut woken = Family::counter(
        "wasmalived_check_woken_runs",
        "Runs started early because a process the check watches exited (event-driven checks).",
    );
    let mut duration = Family::new(
        MetricType::Histogram,
        "wasmalived_check_run_duration",
        "How long check runs took (a timed-out run counts its timeout).",
    )
    .seconds();
    let mut measurement = Family::gauge(
        "wasmalived_check_measurement",
        "A measurement of the check's last plugin run (name sanitised, at most 32 per check).",
    );
    let mut left_out = Family::gauge(
        "wasmalived_check_measurements_left_out",
        "Measurements of the last run not exported: over the cap, or a sanitised name taken.",
    );
    for c in &status.checks {
        let who = || vec![("check", text(c.name.as_str()))];
        for s in CHECK_STATES {
            state.push(
                vec![("check", text(c.name.as_str())), ("state", text(s))],
                flag(c.state == s),
            );
        }
        for (result, n) in &c.results {
            runs.push(
                vec![("check", text(c.name.as_str())), ("result", text(result))],
                Value::Counter(*n),
            );
        }
        skipped.push(who(), Value::Counter(c.skipped));
        woken.push(who(), Value::Counter(c.woken));
        duration.push(who(), Value::Histogram(&c.latency));
        let (kept, dropped) = exported_measurements(&c.measurements);
        for (name, value) in kept {
            measurement.push(
                vec![("check", text(c.name.as_str())), ("name", text(name))],
                Value::Float(value),
            );
        }
        left_out.push(
            who(),
            Value::Int(i64::try_from(dropped).unwrap_or(i64::MAX)),
        );
    }
    vec![state, runs, skipped, woken, duration, measurement, left_out]
}

fn tracked_process_families(status: &Status) -> Vec<Family<'_>> {
    let mut count = Family::gauge(
        "wasmalived_tracked_process_count",
        "Running processes that match the vrrp_track_process.",
    );
    let mut up = Family::gauge(
        "wasmalived_tracked_process_up",
        "1 while the vrrp_track_process has quorum (as the instances tracking it see it).",
    );
    for p in &status.tracked_processes {
        let who = || vec![("track_process", text(p.name.as_str()))];
        count.push(who(), Value::Int(i64::from(p.count)));
        up.push(who(), flag(p.up));
    }
    vec![count, up]
}

fn plugin_families(counts: PluginCounts) -> Vec<Family<'static>> {
    let mut loads = Family::counter(
        "wasmalived_plugin_loads",
        "Plugins loaded for a check or an LVS checker (start-up, reload of the configuration), by outcome.",
    );
    loads.push(
        vec![("outcome", text("loaded"))],
        Value::Counter(counts.loads),
    );
    loads.push(
        vec![("outcome", text("refused"))],
        Value::Counter(counts.load_refusals),
    );
    let mut reloads = Family::counter(
        "wasmalived_plugin_reloads",
        "New plugin versions seen by hot reload, by outcome (refused: the old one keeps running).",
    );
    reloads.push(
        vec![("outcome", text("swapped"))],
        Value::Counter(counts.reloads),
    );
    reloads.push(
        vec![("outcome", text("refused"))],
        Value::Counter(counts.reload_refusals),
    );
    vec![loads, reloads]
}

fn lvs_families(status: &Status) -> Vec<Family<'_>> {
    let mut quorum_up = Family::gauge(
        "wasmalived_lvs_virtual_server_quorum_up",
        "1 while the virtual server's quorum is met.",
    );
    let mut live_weight = Family::gauge(
        "wasmalived_lvs_virtual_server_live_weight",
        "Sum of the weights of the alive real servers.",
    );
    let mut sorry = Family::gauge(
        "wasmalived_lvs_virtual_server_sorry_server_active",
        "1 while the sorry server serves instead of the pool.",
    );
    let mut suspended = Family::gauge(
        "wasmalived_lvs_virtual_server_suspended",
        "1 while checks are paused by ha_suspend (this node does not hold the address).",
    );
    let mut alive = Family::gauge(
        "wasmalived_lvs_real_server_alive",
        "1 while every checker of the real server passes.",
    );
    let mut weight = Family::gauge(
        "wasmalived_lvs_real_server_weight",
        "The real server's configured weight.",
    );
    let mut in_pool = Family::gauge(
        "wasmalived_lvs_real_server_in_pool",
        "1 while the real server is in the data path's pool.",
    );
    let mut pool_weight = Family::gauge(
        "wasmalived_lvs_real_server_pool_weight",
        "The weight the real server has in the pool (0: draining or not in the pool).",
    );
    let mut checker_up = Family::gauge("wasmalived_lvs_checker_up", "1 while the checker passes.");
    let mut checker_runs = Family::counter("wasmalived_lvs_checker_runs", "Checks run.");
    let mut checker_last = Family::gauge(
        "wasmalived_lvs_checker_last_duration",
        "How long the checker's last check took.",
    )
    .seconds();
    for vs in &status.virtual_servers {
        let who = || vec![("virtual_server", text(vs.name.as_str()))];
        quorum_up.push(who(), flag(vs.quorum_up));
        live_weight.push(
            who(),
            Value::Int(i64::try_from(vs.live_weight).unwrap_or(i64::MAX)),
        );
        sorry.push(who(), flag(vs.sorry_server_active));
        suspended.push(who(), flag(vs.suspended));
        for rs in &vs.real_servers {
            let rs_labels = || {
                vec![
                    ("virtual_server", text(vs.name.as_str())),
                    ("real_server", text(rs.address.as_str())),
                ]
            };
            alive.push(rs_labels(), flag(rs.alive));
            weight.push(rs_labels(), Value::Int(i64::from(rs.weight)));
            in_pool.push(rs_labels(), flag(rs.pool_weight.is_some()));
            pool_weight.push(
                rs_labels(),
                Value::Int(i64::from(rs.pool_weight.unwrap_or(0))),
            );
            for checker in &rs.checkers {
                let mut labels = rs_labels();
                labels.push(("checker", text(checker.name.as_str())));
                checker_up.push(labels.clone(), flag(checker.state == "up"));
                checker_runs.push(labels.clone(), Value::Counter(checker.runs));
                checker_last.push(labels, Value::Float(checker.last_ms / 1000.0));
            }
        }
    }
    vec![
        quorum_up,
        live_weight,
        sorry,
        suspended,
        alive,
        weight,
        in_pool,
        pool_weight,
        checker_up,
        checker_runs,
        checker_last,
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::control::{
        CheckStatus, CheckerStatus, PathStatus, RealServerStatus, TrackedProcessStatus,
        TransitionCount, VirtualServerStatus,
    };

    fn board() -> Snapshot {
        let mut latency = RunLatency::default();
        latency.record(Duration::from_millis(3));
        latency.record(Duration::from_millis(40));
        let mut measurements: BTreeMap<String, f64> = (0..40)
            .map(|i| (format!("m{i:02}"), f64::from(i)))
            .collect();
        measurements.insert("latency ms".into(), 1.5);
        Snapshot {
            status: Status {
                instances: vec![InstanceStatus {
                    name: "VI_1".into(),
                    state: "MASTER".into(),
                    interface: "eth0".into(),
                    vrid: 51,
                    version: 3,
                    family: "ipv4".into(),
                    priority: 100,
                    effective_priority: 90,
                    split_brain: true,
                    counters: [("tx_adverts", 7), ("rx_adverts", 2), ("rx_ttl", 4)]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                    transitions: vec![TransitionCount {
                        from: "BACKUP".into(),
                        to: "MASTER".into(),
                        reason: "master_down".into(),
                        count: 1,
                    }],
                    ..Default::default()
                }],
                checks: vec![CheckStatus {
                    name: "chk \"web\"".into(),
                    state: "up".into(),
                    results: [("ok".to_owned(), 5), ("timeout".to_owned(), 1)].into(),
                    skipped: 2,
                    woken: 4,
                    measurements,
                    latency,
                    ..Default::default()
                }],
                paths: vec![PathStatus {
                    interface: "eth0".into(),
                    family: "ipv4".into(),
                    counters: [("rx_vrid".to_owned(), 3)].into(),
                }],
                tracked_processes: vec![TrackedProcessStatus {
                    name: "nginx".into(),
                    count: 2,
                    quorum: 1,
                    up: true,
                    ..Default::default()
                }],
                log: crate::control::LogStatus { dropped_lines: 12 },
                virtual_servers: vec![VirtualServerStatus {
                    name: "192.0.2.10:80/tcp".into(),
                    quorum_up: true,
                    live_weight: 3,
                    real_servers: vec![RealServerStatus {
                        address: "192.0.2.21:80".into(),
                        alive: true,
                        weight: 3,
                        pool_weight: Some(3),
                        checkers: vec![CheckerStatus {
                            name: "TCP_CHECK 192.0.2.21:80".into(),
                            state: "up".into(),
                            runs: 9,
                            last_ms: 1.5,
                            ..Default::default()
                        }],
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            plugins: PluginCounts {
                loads: 2,
                load_refusals: 1,
                reloads: 3,
                reload_refusals: 0,
            },
        }
    }

    #[test]
    fn a_board_renders_as_openmetrics() {
        let text = render(board(), Format::OpenMetrics);
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            )
        };
        has("# TYPE wasmalived_vrrp_state gauge");
        has(r#"wasmalived_vrrp_state{instance="VI_1",state="MASTER"} 1"#);
        has(r#"wasmalived_vrrp_state{instance="VI_1",state="BACKUP"} 0"#);
        has(
            r#"wasmalived_vrrp_instance_info{instance="VI_1",interface="eth0",vrid="51",family="ipv4",version="3"} 1"#,
        );
        has(r#"wasmalived_vrrp_priority{instance="VI_1"} 100"#);
        has(r#"wasmalived_vrrp_effective_priority{instance="VI_1"} 90"#);
        has("# TYPE wasmalived_vrrp_transitions counter");
        has(
            r#"wasmalived_vrrp_transitions_total{instance="VI_1",from="BACKUP",to="MASTER",reason="master_down"} 1"#,
        );
        has(r#"wasmalived_vrrp_adverts_sent_total{instance="VI_1"} 7"#);
        has(r#"wasmalived_vrrp_adverts_received_total{instance="VI_1"} 2"#);
        has(r#"wasmalived_vrrp_drops_total{instance="VI_1",reason="ttl"} 4"#);
        has(r#"wasmalived_vrrp_drops_total{instance="VI_1",reason="checksum"} 0"#);
        has(r#"wasmalived_vrrp_split_brain{instance="VI_1"} 1"#);
        has(r#"wasmalived_vrrp_path_drops_total{interface="eth0",family="ipv4",reason="vrid"} 3"#);
        // Check names are escaped; results by kind; the histogram is cumulative.
        has(r#"wasmalived_check_state{check="chk \"web\"",state="up"} 1"#);
        has(r#"wasmalived_check_runs_total{check="chk \"web\"",result="timeout"} 1"#);
        has(r#"wasmalived_check_skipped_runs_total{check="chk \"web\""} 2"#);
        has(r#"wasmalived_check_woken_runs_total{check="chk \"web\""} 4"#);
        has("# TYPE wasmalived_check_run_duration_seconds histogram");
        has("# UNIT wasmalived_check_run_duration_seconds seconds");
        has(r#"wasmalived_check_run_duration_seconds_count{check="chk \"web\""} 2"#);
        has(r#"wasmalived_check_run_duration_seconds_bucket{le="0.0025",check="chk \"web\""} 0"#);
        has(r#"wasmalived_check_run_duration_seconds_bucket{le="0.005",check="chk \"web\""} 1"#);
        has(r#"wasmalived_check_run_duration_seconds_bucket{le="+Inf",check="chk \"web\""} 2"#);
        // 41 measurements: 32 exported (sanitised), 9 left out.
        has(r#"wasmalived_check_measurement{check="chk \"web\"",name="latency_ms"} 1.5"#);
        let exported = text
            .lines()
            .filter(|l| l.starts_with("wasmalived_check_measurement{"))
            .count();
        assert_eq!(exported, 32);
        has(r#"wasmalived_check_measurements_left_out{check="chk \"web\""} 9"#);
        has(r#"wasmalived_tracked_process_count{track_process="nginx"} 2"#);
        has(r#"wasmalived_tracked_process_up{track_process="nginx"} 1"#);
        has("wasmalived_log_lines_dropped_total 12");
        has(r#"wasmalived_plugin_loads_total{outcome="refused"} 1"#);
        has(r#"wasmalived_plugin_reloads_total{outcome="swapped"} 3"#);
        has(r#"wasmalived_lvs_virtual_server_quorum_up{virtual_server="192.0.2.10:80/tcp"} 1"#);
        has(
            r#"wasmalived_lvs_real_server_pool_weight{virtual_server="192.0.2.10:80/tcp",real_server="192.0.2.21:80"} 3"#,
        );
        has(
            r#"wasmalived_lvs_checker_runs_total{virtual_server="192.0.2.10:80/tcp",real_server="192.0.2.21:80",checker="TCP_CHECK 192.0.2.21:80"} 9"#,
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn an_empty_board_has_only_the_daemon_log_and_plugin_families() {
        let text = render(
            Snapshot {
                status: Status::default(),
                plugins: PluginCounts::default(),
            },
            Format::OpenMetrics,
        );
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            families,
            [
                "wasmalived_build_info gauge",
                "wasmalived_log_lines_dropped counter",
                "wasmalived_plugin_loads counter",
                "wasmalived_plugin_reloads counter"
            ]
        );
    }

    #[test]
    fn the_classic_text_names_counters_with_total_and_has_no_unit_or_eof() {
        let open = render(board(), Format::OpenMetrics);
        let text = render(board(), Format::Classic);
        assert!(text.contains("# HELP wasmalived_vrrp_adverts_sent_total Adverts sent.\n"));
        assert!(text.contains("# TYPE wasmalived_vrrp_adverts_sent_total counter\n"));
        assert!(text.contains("# TYPE wasmalived_vrrp_state gauge\n"));
        assert!(text.contains("# TYPE wasmalived_check_run_duration_seconds histogram\n"));
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
        // The samples are the same.
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&open), samples(&text));
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Classic);
        assert_eq!(Format::negotiate(None), Format::Classic);
    }
}

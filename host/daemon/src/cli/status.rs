//! `wasmalived status --state-dir DIR [--json|--brief]`: ask a running daemon for its state.

use std::path::Path;
use std::process::ExitCode;

use crate::control::{self, Status};

/// Print the daemon's status: JSON, one line per instance/check (`brief`), or a table.
pub fn main(state_dir: &Path, json: bool, brief: bool) -> ExitCode {
    let text = match control::request(state_dir, "status") {
        Ok(text) => text,
        Err(err) => {
            eprintln!("wasmalived status: {err}");
            return ExitCode::from(1);
        }
    };
    if json {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    let status: Status = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("wasmalived status: unreadable answer: {err}");
            return ExitCode::from(1);
        }
    };
    for i in &status.instances {
        let fault = if i.fault_reasons.is_empty() {
            String::new()
        } else {
            format!(" fault: {}", i.fault_reasons.join("; "))
        };
        let split = if i.split_brain { " SPLIT-BRAIN" } else { "" };
        let maintenance = if i.maintenance { " (maintenance)" } else { "" };
        println!(
            "instance {} {}{} priority {}/{} ({} vrid {} v{}){}{}",
            i.name,
            i.state,
            maintenance,
            i.effective_priority,
            i.priority,
            i.interface,
            i.vrid,
            i.version,
            fault,
            split
        );
    }
    for c in &status.checks {
        for line in check_lines(c, brief) {
            println!("{line}");
        }
    }
    for p in &status.tracked_processes {
        println!("{}", tracked_process_line(p));
    }
    for vs in &status.virtual_servers {
        print_virtual_server(vs, brief);
    }
    for p in &status.paths {
        let counters: Vec<String> = p.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "path {} {} dropped: {}",
            p.interface,
            p.family,
            counters.join(", ")
        );
    }
    if status.log.dropped_lines > 0 {
        println!(
            "log: {} lines dropped (the log writer could not keep up)",
            status.log.dropped_lines
        );
    }
    ExitCode::SUCCESS
}

/// A check: its state, runner and last result; unless `brief`, its measurements, its run
/// count with p50/p99 run latency, and (on a line of its own) the last error.
fn check_lines(c: &control::CheckStatus, brief: bool) -> Vec<String> {
    let last = if c.last.is_empty() {
        String::new()
    } else {
        format!(": {}", c.last)
    };
    let mut line = format!("check {} {} [{}]{}", c.name, c.state, c.runner, last);
    if brief {
        return vec![line];
    }
    if !c.measurements.is_empty() {
        let measurements: Vec<String> = c
            .measurements
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line.push_str(&format!(" ({})", measurements.join(", ")));
    }
    let mut lines = vec![line];
    if let (Some(p50), Some(p99)) = (c.latency_p50_ms, c.latency_p99_ms) {
        let woken = if c.woken > 0 {
            format!(", {} woken early", c.woken)
        } else {
            String::new()
        };
        lines.push(format!(
            "  {} runs, {} skipped{woken}, run time p50 {p50:.1} ms, p99 {p99:.1} ms",
            c.runs, c.skipped
        ));
    }
    if let Some(error) = &c.last_error {
        lines.push(format!("  last error: {error}"));
    }
    lines
}

/// A `vrrp_track_process`: `track_process nginx up: 2 running, quorum 1..4`, with the change
/// a `fork_delay`/`terminate_delay` holds back.
fn tracked_process_line(p: &control::TrackedProcessStatus) -> String {
    let quorum = match p.quorum_max {
        Some(max) => format!("{}..{max}", p.quorum),
        None => format!("{} or more", p.quorum),
    };
    let pending = p
        .pending
        .as_ref()
        .map(|to| format!(" (going {to} when its delay ends)"))
        .unwrap_or_default();
    format!(
        "track_process {} {}: {} running, quorum {quorum}{pending}",
        p.name,
        if p.up { "up" } else { "DOWN" },
        p.count
    )
}

fn print_virtual_server(vs: &control::VirtualServerStatus, brief: bool) {
    let scheduler = if vs.scheduler == vs.scheduler_used {
        vs.scheduler.clone()
    } else {
        format!("{} (runs as {})", vs.scheduler, vs.scheduler_used)
    };
    let quorum = if vs.quorum_up {
        "quorum up"
    } else if vs.sorry_server_active {
        "QUORUM DOWN, sorry server serving"
    } else {
        "QUORUM DOWN"
    };
    println!(
        "virtual_server {} {} {} on {}: {} (live weight {}/{}){}{}{}",
        vs.name,
        scheduler,
        vs.forwarding,
        vs.backend,
        quorum,
        vs.live_weight,
        vs.quorum,
        if vs.suspended {
            " checks suspended (not Master)"
        } else {
            ""
        },
        if vs.pending && vs.apply_error.is_none() {
            " (pool being applied)"
        } else {
            ""
        },
        vs.apply_error
            .as_ref()
            .map(|e| format!(" APPLY FAILED: {e}"))
            .unwrap_or_default()
    );
    for rs in &vs.real_servers {
        let pool = match rs.pool_weight {
            Some(w) => format!("in pool, weight {w}/{}", rs.weight),
            None => "out of pool".to_owned(),
        };
        println!(
            "  real_server {} {} {}",
            rs.address,
            if rs.alive { "UP" } else { "DOWN" },
            pool
        );
        if brief {
            continue;
        }
        for c in &rs.checkers {
            let last = if c.last.is_empty() {
                String::new()
            } else {
                format!(": {} ({:.1} ms, {} runs)", c.last, c.last_ms, c.runs)
            };
            println!("    {} {} [{}]{}", c.name, c.state, c.runner, last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracked_process_shows_its_count_quorum_and_pending_change() {
        let mut p = control::TrackedProcessStatus {
            name: "nginx".into(),
            count: 2,
            quorum: 1,
            quorum_max: None,
            up: true,
            pending: None,
        };
        assert_eq!(
            tracked_process_line(&p),
            "track_process nginx up: 2 running, quorum 1 or more"
        );
        p.count = 0;
        p.quorum_max = Some(4);
        p.pending = Some("down".into());
        assert_eq!(
            tracked_process_line(&p),
            "track_process nginx up: 0 running, quorum 1..4 (going down when its delay ends)"
        );
        p.up = false;
        p.pending = None;
        assert_eq!(
            tracked_process_line(&p),
            "track_process nginx DOWN: 0 running, quorum 1..4"
        );
    }

    #[test]
    fn a_check_shows_its_latency_and_last_error_unless_brief() {
        let c = control::CheckStatus {
            name: "chk".into(),
            state: "up".into(),
            runner: "tcp@0123456789ab".into(),
            last: "ok".into(),
            runs: 12,
            skipped: 1,
            measurements: [("latency_ms".to_owned(), 0.5)].into(),
            latency_p50_ms: Some(1.25),
            latency_p99_ms: Some(30.0),
            last_error: Some("fail: connection refused".into()),
            ..Default::default()
        };
        assert_eq!(
            check_lines(&c, false),
            [
                "check chk up [tcp@0123456789ab]: ok (latency_ms=0.5)",
                "  12 runs, 1 skipped, run time p50 1.2 ms, p99 30.0 ms",
                "  last error: fail: connection refused",
            ]
        );
        assert_eq!(
            check_lines(&c, true),
            ["check chk up [tcp@0123456789ab]: ok"]
        );
        let fresh = control::CheckStatus {
            name: "chk".into(),
            state: "init".into(),
            ..Default::default()
        };
        assert_eq!(check_lines(&fresh, false), ["check chk init []"]);
    }

    #[test]
    fn an_event_driven_check_shows_its_early_runs() {
        let c = control::CheckStatus {
            name: "chk".into(),
            state: "up".into(),
            runner: "nginx_process@0123456789ab".into(),
            last: "ok".into(),
            runs: 7,
            woken: 3,
            latency_p50_ms: Some(0.5),
            latency_p99_ms: Some(1.0),
            ..Default::default()
        };
        assert_eq!(
            check_lines(&c, false)[1],
            "  7 runs, 0 skipped, 3 woken early, run time p50 0.5 ms, p99 1.0 ms"
        );
    }
}

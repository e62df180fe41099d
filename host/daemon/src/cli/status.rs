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
        let measurements: Vec<String> = c
            .measurements
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let last = if c.last.is_empty() {
            String::new()
        } else {
            format!(": {}", c.last)
        };
        println!(
            "check {} {} [{}]{}{}",
            c.name,
            c.state,
            c.runner,
            last,
            if measurements.is_empty() || brief {
                String::new()
            } else {
                format!(" ({})", measurements.join(", "))
            }
        );
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
    ExitCode::SUCCESS
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
        "virtual_server {} {} {} on {}: {} (live weight {}/{}){}{}",
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

//! `nginx-process`: healthy while at least `min_count` processes named `process` run; the
//! seed's `ch_ng.sh` as a plugin. When none run and a remediation is configured, it runs that
//! remediation once, waits `settle_ms`, and looks again: still none → `fatal` (the node stands
//! down, as the script did by stopping keepalived).
//!
//! # Parameters
//! | key           | default | meaning                                                        |
//! |---------------|---------|----------------------------------------------------------------|
//! | `process`     | `nginx` | the short process name (`/proc/PID/comm`) to count             |
//! | `min_count`   | `1`     | healthy at or above this many                                  |
//! | `remediation` | —       | id of the remediation command to run when none run (optional)  |
//! | `settle_ms`   | `2000`  | wait this long after the remediation before looking again      |
//!
//! The check's timeout must exceed the remediation's run time plus `settle_ms`.
//!
//! # Grants
//! - `processes` (with `netns` to count only processes in the daemon's network namespace —
//!   use it when one host runs an nginx per namespace).
//! - `remediation ID` for the id given in `remediation`. The plugin imports the remediation
//!   capability, so the check must grant one even when the `remediation` parameter is unset.
//!
//! # Verdicts
//! - `ok` — at least `min_count` run (also after a successful remediation; the message then
//!   says so). Measurement `count` (after remediation: the count it found then) and
//!   `remediated` (1 when the remediation ran, else 0).
//! - `fail` — fewer than `min_count` but some run (no remediation for a partial outage), or none
//!   run and no remediation is configured, or the process table cannot be read.
//! - `fatal` — none ran, the remediation ran, and after `settle_ms` still fewer than
//!   `min_count` run.
wit_bindgen::generate!({ path: "../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasi::clocks::monotonic_clock;
use wasmalived::plugin::log::{log, Level};
use wasmalived::plugin::processes;
use wasmalived::plugin::remediation;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

/// Defaults, in one place.
const DEFAULT_PROCESS: &str = "nginx";
const DEFAULT_MIN_COUNT: u32 = 1;
const DEFAULT_SETTLE_MS: u64 = 2000;

struct NginxProcess;

impl Guest for NginxProcess {
    fn check(params: Params) -> Verdict {
        match Config::from_params(&params) {
            Ok(config) => run(&config),
            Err(e) => Verdict {
                status: Status::Fail(e),
                message: None,
                measurements: vec![],
            },
        }
    }
}

/// The check's parameters, parsed.
struct Config {
    process: String,
    min_count: u32,
    remediation: Option<String>,
    settle_ms: u64,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, String> {
        let get = |k: &str| plugin_guest_util::param(params, k);
        let process = get("process").unwrap_or(DEFAULT_PROCESS).to_string();
        if process.is_empty() {
            return Err("bad parameter process=``: empty".into());
        }
        let min_count = match get("min_count") {
            None => DEFAULT_MIN_COUNT,
            Some(v) => match v.parse() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("bad parameter min_count=`{v}`: a number >= 1")),
            },
        };
        let remediation = get("remediation")
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let settle_ms = match get("settle_ms") {
            None => DEFAULT_SETTLE_MS,
            Some(v) => v
                .parse()
                .map_err(|_| format!("bad parameter settle_ms=`{v}`"))?,
        };
        Ok(Config {
            process,
            min_count,
            remediation,
            settle_ms,
        })
    }
}

fn run(config: &Config) -> Verdict {
    let name = &config.process;
    let before = match count(name) {
        Ok(n) => n,
        Err(e) => return verdict(Status::Fail(e), None, 0, false),
    };
    if before >= config.min_count {
        return verdict(Status::Ok, None, before, false);
    }
    let short = format!(
        "{before} `{name}` processes running, want at least {}",
        config.min_count
    );
    // A partial outage is not remediated: the remediation is for "nothing runs" (ch_ng.sh).
    let Some(id) = config.remediation.as_deref().filter(|_| before == 0) else {
        return verdict(Status::Fail(short), None, before, false);
    };
    log(Level::Warn, &format!("{short}; running remediation `{id}`"));
    let outcome = match remediation::run(id) {
        Ok(code) => format!("remediation `{id}` exited {code}"),
        Err(e) => format!("remediation `{id}` failed: {e}"),
    };
    log(
        Level::Info,
        &format!("{outcome}; settling {}ms", config.settle_ms),
    );
    monotonic_clock::subscribe_duration(config.settle_ms.saturating_mul(1_000_000)).block();
    match count(name) {
        Ok(after) if after >= config.min_count => verdict(
            Status::Ok,
            Some(format!("{short}; {outcome}; now {after}")),
            after,
            true,
        ),
        Ok(after) => {
            let why = format!(
                "{short}; {outcome}; still {after} after {}ms",
                config.settle_ms
            );
            verdict(Status::Fatal(why), None, after, true)
        }
        Err(e) => verdict(
            Status::Fatal(format!("{short}; {outcome}; then {e}")),
            None,
            0,
            true,
        ),
    }
}

/// How many processes named `name` run (as the host's `processes` grant lets us see them).
fn count(name: &str) -> Result<u32, String> {
    processes::by_name(name)
        .map(|ps| u32::try_from(ps.len()).unwrap_or(u32::MAX))
        .map_err(|e| format!("cannot read the process table: {e}"))
}

fn verdict(status: Status, message: Option<String>, count: u32, remediated: bool) -> Verdict {
    let measurements = vec![
        Measurement {
            name: "count".into(),
            value: f64::from(count),
        },
        Measurement {
            name: "remediated".into(),
            value: if remediated { 1.0 } else { 0.0 },
        },
    ];
    Verdict {
        status,
        message,
        measurements,
    }
}

export!(NginxProcess);

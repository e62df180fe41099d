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
//! | `fatal_when_none` | `false` | `true`: none running is `fatal` at once (no remediation, no settle) |
//!
//! The check's timeout must exceed the remediation's run time plus `settle_ms`.
//!
//! # Event-driven
//! Every run asks the host to run it again as soon as one of the processes it counted exits
//! (`wake.on-exit`, contract 1.2.0): the check sees nginx die when the kernel does, not at
//! its next interval. With `fatal_when_none true` the node stands down within one early run
//! of the last nginx process exiting, so a long `interval` only paces the routine runs.
//!
//! # Grants
//! - `processes` (with `netns` to count only processes in the daemon's network namespace —
//!   use it when one host runs an nginx per namespace).
//! - `remediation ID` for the id given in `remediation`. Without the grant the plugin still
//!   loads (the host refuses every remediation it asks for, and the verdict says so).
//!
//! # Verdicts
//! - `ok` — at least `min_count` run (also after a successful remediation; the message then
//!   says so). Measurement `count` (after remediation: the count it found then) and
//!   `remediated` (1 when the remediation ran, else 0).
//! - `fail` — fewer than `min_count` but some run (no remediation for a partial outage), or none
//!   run and no remediation is configured, or the process table cannot be read.
//! - `fatal` — none ran, the remediation ran, and after `settle_ms` still fewer than
//!   `min_count` run; or, with `fatal_when_none true`, none run (before any remediation).
use std::time::Duration;

use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Verdict};

/// Defaults, in one place.
const DEFAULT_PROCESS: &str = "nginx";
const DEFAULT_MIN_COUNT: u32 = 1;
const DEFAULT_SETTLE_MS: u64 = 2000;
const DEFAULT_FATAL_WHEN_NONE: bool = false;

/// The check.
pub struct NginxProcess;

impl Check for NginxProcess {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        match Config::from_params(params) {
            Ok(config) => run(host, &config),
            Err(e) => Verdict::fail(e),
        }
    }
}

export_check!(NginxProcess);

/// The check's parameters, parsed.
struct Config {
    process: String,
    min_count: u32,
    remediation: Option<String>,
    settle: Duration,
    fatal_when_none: bool,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, ParamError> {
        let process = params.get("process").unwrap_or(DEFAULT_PROCESS).to_string();
        if process.is_empty() {
            return Err(ParamError::invalid("process", "", Some("empty")));
        }
        let min_count = params
            .value("min_count")
            .range(1..)
            .hint("a number >= 1")
            .default(DEFAULT_MIN_COUNT)?;
        let remediation = params
            .get("remediation")
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let settle_ms = params
            .value("settle_ms")
            .no_hint()
            .default(DEFAULT_SETTLE_MS)?;
        let fatal_when_none = params
            .value("fatal_when_none")
            .default(DEFAULT_FATAL_WHEN_NONE)?;
        Ok(Config {
            process,
            min_count,
            remediation,
            settle: Duration::from_millis(settle_ms),
            fatal_when_none,
        })
    }
}

fn run(host: &impl Host, config: &Config) -> Verdict {
    let name = &config.process;
    let before = match count(host, name) {
        Ok(n) => n,
        Err(e) => return verdict(Verdict::fail(e), 0, false),
    };
    if before >= config.min_count {
        return verdict(Verdict::ok(), before, false);
    }
    let short = format!(
        "{before} `{name}` processes running, want at least {}",
        config.min_count
    );
    if before == 0 && config.fatal_when_none {
        return verdict(Verdict::fatal(short), 0, false);
    }
    // A partial outage is not remediated: the remediation is for "nothing runs" (ch_ng.sh).
    let Some(id) = config.remediation.as_deref().filter(|_| before == 0) else {
        return verdict(Verdict::fail(short), before, false);
    };
    host.warn(&format!("{short}; running remediation `{id}`"));
    let outcome = match host.remediate(id) {
        Ok(code) => format!("remediation `{id}` exited {code}"),
        Err(e) => format!("remediation `{id}` failed: {e}"),
    };
    let settle_ms = config.settle.as_millis();
    host.info(&format!("{outcome}; settling {settle_ms}ms"));
    host.sleep(config.settle);
    match count(host, name) {
        Ok(after) if after >= config.min_count => verdict(
            Verdict::ok().with_message(format!("{short}; {outcome}; now {after}")),
            after,
            true,
        ),
        Ok(after) => verdict(
            Verdict::fatal(format!(
                "{short}; {outcome}; still {after} after {settle_ms}ms"
            )),
            after,
            true,
        ),
        Err(e) => verdict(
            Verdict::fatal(format!("{short}; {outcome}; then {e}")),
            0,
            true,
        ),
    }
}

/// How many processes named `name` run (as the host's `processes` grant lets us see them).
/// The host is asked to run the check again as soon as one of them exits; a host that cannot
/// (no pidfds) still runs it every interval, so that refusal is only logged.
fn count(host: &impl Host, name: &str) -> Result<u32, String> {
    let running = host
        .processes_by_name(name)
        .map_err(|e| format!("cannot read the process table: {e}"))?;
    let pids: Vec<u32> = running.iter().map(|p| p.pid).collect();
    if let Err(e) = host.wake_on_exit(&pids) {
        host.log(
            wasmalived_plugin_sdk::Level::Debug,
            &format!("not woken early when `{name}` exits: {e}"),
        );
    }
    Ok(u32::try_from(running.len()).unwrap_or(u32::MAX))
}

/// `v` with the measurements `count` and `remediated`.
fn verdict(v: Verdict, count: u32, remediated: bool) -> Verdict {
    v.measure("count", f64::from(count))
        .measure("remediated", if remediated { 1.0 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::testing::FakeHost;

    use super::*;

    #[test]
    fn ok_while_enough_run() {
        let host = FakeHost::new();
        host.spawn("nginx");
        host.spawn("nginx");
        let v = host.run::<NginxProcess>(&[("min_count", "2")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.measurement("count"), Some(2.0));
        assert_eq!(v.measurement("remediated"), Some(0.0));
    }

    #[test]
    fn the_counted_processes_wake_the_check() {
        let host = FakeHost::new();
        let a = host.spawn("nginx");
        let b = host.spawn("nginx");
        host.spawn("sshd");
        let v = host.run::<NginxProcess>(&[]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(host.wake_on_exit(), vec![a, b]);
        host.kill_all("nginx");
        let v = host.run::<NginxProcess>(&[]);
        assert_eq!(v.kind(), "fail");
        assert!(host.wake_on_exit().is_empty(), "nothing left to watch");
    }

    #[test]
    fn none_running_is_fatal_at_once_when_asked() {
        let host = FakeHost::new();
        host.on_remediate("restart", |ps| {
            ps.spawn("nginx");
            Ok(0)
        });
        let start = host.monotonic();
        let v =
            host.run::<NginxProcess>(&[("fatal_when_none", "true"), ("remediation", "restart")]);
        assert_eq!(v.kind(), "fatal");
        assert_eq!(
            v.reason(),
            Some("0 `nginx` processes running, want at least 1")
        );
        assert!(host.remediated().is_empty(), "no remediation first");
        assert_eq!(host.elapsed_since(start), Duration::ZERO, "no settle time");
        assert_eq!(v.measurement("remediated"), Some(0.0));
        // A partial outage is still a plain `fail`.
        host.spawn("nginx");
        let v = host.run::<NginxProcess>(&[("fatal_when_none", "true"), ("min_count", "2")]);
        assert_eq!(v.kind(), "fail");
    }

    #[test]
    fn partial_outage_fails_without_remediation() {
        let host = FakeHost::new();
        host.spawn("nginx");
        host.on_remediate("restart", |_| Ok(0));
        let v = host.run::<NginxProcess>(&[("min_count", "2"), ("remediation", "restart")]);
        assert_eq!(
            v.reason(),
            Some("1 `nginx` processes running, want at least 2")
        );
        assert!(
            host.remediated().is_empty(),
            "partial outages are not remediated"
        );
    }

    #[test]
    fn a_remediation_that_brings_it_back_is_ok() {
        let host = FakeHost::new();
        host.on_remediate("restart", |ps| {
            ps.spawn("nginx");
            Ok(0)
        });
        let start = host.monotonic();
        let v = host.run::<NginxProcess>(&[("remediation", "restart"), ("settle_ms", "300")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some(
                "0 `nginx` processes running, want at least 1; remediation `restart` exited 0; \
                 now 1"
            )
        );
        assert_eq!(v.measurement("remediated"), Some(1.0));
        assert_eq!(host.elapsed_since(start), Duration::from_millis(300));
        assert!(host.logged("running remediation `restart`"));
    }

    #[test]
    fn still_down_after_remediation_is_fatal() {
        let host = FakeHost::new();
        host.on_remediate("restart", |_| Ok(1));
        let v = host.run::<NginxProcess>(&[("remediation", "restart")]);
        assert_eq!(v.kind(), "fatal");
        assert_eq!(
            v.reason(),
            Some(
                "0 `nginx` processes running, want at least 1; remediation `restart` exited 1; \
                 still 0 after 2000ms"
            )
        );
        // A remediation that cannot run at all is reported the same way.
        let v = host.run::<NginxProcess>(&[("remediation", "absent")]);
        assert!(
            v.reason()
                .is_some_and(|r| r.contains("remediation `absent` failed")),
            "{v:?}"
        );
    }

    #[test]
    fn unreadable_process_table_fails() {
        let host = FakeHost::new();
        host.fail_processes(Some("not granted"));
        let v = host.run::<NginxProcess>(&[]);
        assert_eq!(
            v.reason(),
            Some("cannot read the process table: not granted")
        );
        assert_eq!(v.measurement("count"), Some(0.0));
    }

    #[test]
    fn bad_parameters_keep_their_wording() {
        let host = FakeHost::new();
        for (params, reason) in [
            (vec![("process", "")], "bad parameter process=``: empty"),
            (
                vec![("min_count", "0")],
                "bad parameter min_count=`0`: a number >= 1",
            ),
            (
                vec![("settle_ms", "soon")],
                "bad parameter settle_ms=`soon`",
            ),
            (
                vec![("fatal_when_none", "maybe")],
                "bad parameter fatal_when_none=`maybe`: true or false",
            ),
        ] {
            let v = host.run::<NginxProcess>(&params);
            assert_eq!(v.reason(), Some(reason));
            assert!(v.measurements.is_empty());
        }
    }
}

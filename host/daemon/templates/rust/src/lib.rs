//! `{{name}}`: a wasmalived check plugin.
//!
//! Healthy while the check has run fewer than `fail_after` times (never, by default): a
//! starting point that shows parameters, the scratch store, logging and measurements.
//! Replace `run` with your check.
//!
//! | parameter    | default | meaning                                          |
//! |--------------|---------|--------------------------------------------------|
//! | `fail_after` | —       | fail once the check has run this many times      |

use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Verdict};

/// Scratch key of the run counter (the scratch store outlives each run's instance).
const RUNS_KEY: &str = "runs";

/// The check.
pub struct Plugin;

impl Check for Plugin {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        match run(host, params) {
            Ok(verdict) => verdict,
            Err(e) => Verdict::fail(e.to_string()),
        }
    }
}

export_check!(Plugin);

fn run(host: &impl Host, params: &Params) -> Result<Verdict, ParamError> {
    let fail_after: Option<u64> = params.value("fail_after").range(1..).optional()?;
    let runs = host
        .scratch_get_str(RUNS_KEY)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    if let Err(e) = host.scratch_set(RUNS_KEY, runs.to_string().as_bytes()) {
        host.warn(&format!("cannot keep the run counter: {e}"));
    }
    host.info(&format!("{{name}}: run {runs}"));
    let verdict = match fail_after {
        Some(limit) if runs >= limit => Verdict::fail(format!("ran {runs} times (fail_after={limit})")),
        _ => Verdict::ok().with_message(format!("run {runs}")),
    };
    Ok(verdict.measure("runs", runs as f64))
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::testing::FakeHost;

    use super::*;

    #[test]
    fn healthy_and_counting() {
        let host = FakeHost::new();
        let v = host.run::<Plugin>(&[]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.measurement("runs"), Some(1.0));
        assert_eq!(host.run::<Plugin>(&[]).measurement("runs"), Some(2.0));
        assert!(host.logged("run 2"));
    }

    #[test]
    fn fails_after_the_limit() {
        let host = FakeHost::new();
        assert!(host.run::<Plugin>(&[("fail_after", "2")]).is_ok());
        let v = host.run::<Plugin>(&[("fail_after", "2")]);
        assert_eq!(v.reason(), Some("ran 2 times (fail_after=2)"));
    }

    #[test]
    fn bad_parameters_are_named() {
        let v = FakeHost::new().run::<Plugin>(&[("fail_after", "0")]);
        assert_eq!(v.reason(), Some("bad parameter fail_after=`0`: at least 1"));
    }
}

//! Every log line of a run carries `plugin{name, digest, check}` under the span the check
//! runs in, for every run of the check, though the span is created once per check
//! (`CheckPlugin::span`). Its own test binary: the subscriber that records the lines is the
//! process's global one (runs execute on the plugin executor's threads).

mod plugin_support;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use plugin_support::{fixture, runtime};
use tracing::Instrument;
use wasmalived_config::grants::Grants;
use wasmalived_plugin_host::Verdict;

/// The formatted lines, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    fn take(&self) -> String {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&std::mem::take(&mut *bytes)).into_owned()
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_run_logs_under_its_checks_plugin_span() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_env_filter("run_span=info,wasmalived_plugin_host=debug")
        .with_target(false)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let (rt, _d) = runtime();
    // `log-flood` printing to stdout: each run logs its captured output once, at debug.
    let plugin = rt
        .load_check("flood", &fixture("log-flood"), &Grants::default())
        .expect("load");
    let params = [("to".to_string(), "stdout".to_string())];
    lines.take();
    let expected = format!(
        "probe{{probe=rs1}}:plugin{{name={} digest={} check=flood}}: plugin output: log-flood line 0",
        plugin.name(),
        plugin.digest()
    );
    for run in 1..=3 {
        let out = plugin
            .run(&params, Duration::from_secs(60))
            .instrument(tracing::info_span!("probe", probe = %"rs1"))
            .await;
        assert_eq!(out.result, Ok(Verdict::Ok), "run {run}: {out:?}");
        let logged = lines.take();
        assert_eq!(
            logged.matches(&expected).count(),
            1,
            "run {run} logged:\n{logged}"
        );
    }
    // Another check's runs carry their own check's name.
    let other = rt
        .load_check("other", &fixture("log-flood"), &Grants::default())
        .expect("load");
    lines.take();
    let out = other
        .run(&params, Duration::from_secs(60))
        .instrument(tracing::info_span!("probe", probe = %"rs2"))
        .await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    let logged = lines.take();
    assert!(
        logged.contains("probe{probe=rs2}:plugin{name=") && logged.contains(" check=other}: "),
        "{logged}"
    );
}

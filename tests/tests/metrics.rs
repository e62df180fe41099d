//! The Prometheus endpoint (issue 13), end to end: two wasmalived nodes with
//! `metrics_listen 127.0.0.1:PORT` inside their namespaces and a `tcp` plugin check that
//! connects to that very endpoint (so it reports a measurement and has a run-latency
//! histogram). The Master is killed; the Backup's scrape, validated by Debian's
//! `promtool check metrics`, must match what happened and what `status` says: one more
//! BACKUP→MASTER transition for `master_down` than before the crash, the state and priorities of `status`, an
//! adverts-sent counter between two `status` readings taken around it. Then a reload moves
//! the endpoint to another port.
//!
//! Needs root, curl, promtool (`scripts/setup.sh`), `cargo build -p wasmalived` and
//! `make plugins`.

use std::time::{Duration, Instant};

use wasmalived_e2e::metrics::{promtool_check, Scrape};
use wasmalived_e2e::{
    plugin_check, plugin_path, wait_for, wasmalived_bin, with_checks, with_global, CheckTiming,
    Daemon, Impl, LabError, Pair, Proto, Result, INSTANCE,
};

const W: Impl = Impl::Wasmalived;
const CHECK: &str = "chk_metrics";
/// The endpoint's port, and the one a reload moves it to.
const PORTS: [u16; 2] = [9650, 9651];
/// The check: every second, up after one success; weight 2 keeps n1 (100) above n2 (99).
const TIMING: CheckTiming = CheckTiming {
    interval: 1,
    timeout: None,
    fall: 2,
    rise: 1,
    weight: 2,
};

/// Node `i`'s config with the endpoint on `port` and a `tcp` check of that endpoint.
fn config(pair: &Pair, i: usize, port: u16) -> Result<String> {
    let addr = format!("127.0.0.1:{port}");
    let listen = format!("metrics_listen {addr}");
    let conf = with_global(&pair.confs[i].render(), &[&listen])?;
    let grant = format!("allow_tcp {addr}");
    let check = plugin_check(
        CHECK,
        &plugin_path("tcp")?,
        &[("address", &addr)],
        &[&grant],
        &TIMING,
    );
    with_checks(&conf, &check, &[CHECK])
}

/// Scrapes `daemon` on `port` and has promtool validate the text.
fn scrape(daemon: &Daemon, port: u16) -> Result<Scrape> {
    let scrape = daemon.scrape_metrics(&format!("127.0.0.1:{port}"))?;
    promtool_check(&scrape.text).map_err(|e| {
        LabError::check(format!(
            "{}: {e}\n--- scrape ---\n{}",
            daemon.describe(),
            scrape.text
        ))
    })?;
    Ok(scrape)
}

/// `{instance="VI_1"…}` series names.
fn instance_series(metric: &str, extra: &str) -> String {
    format!("{metric}{{instance=\"{INSTANCE}\"{extra}}}")
}

fn check_series(metric: &str, extra: &str) -> String {
    format!("{metric}{{check=\"{CHECK}\"{extra}}}")
}

/// The scrape agrees with `status` on state and priorities.
fn expect_state(scrape: &Scrape, daemon: &Daemon, state: &str) -> Result<()> {
    let st = daemon.instance_status(INSTANCE)?;
    let gauge = |s: &str| {
        scrape.value(&instance_series(
            "wasmalived_vrrp_state",
            &format!(",state=\"{s}\""),
        ))
    };
    let priorities = (
        scrape.expect(&instance_series("wasmalived_vrrp_priority", ""))?,
        scrape.expect(&instance_series("wasmalived_vrrp_effective_priority", ""))?,
    );
    if st.state != state
        || gauge(state) != Some(1.0)
        || priorities != (st.priority as f64, st.effective_priority as f64)
    {
        return Err(LabError::check(format!(
            "{}: expected {state}; status says {} {}/{}, the scrape {:?} priorities {priorities:?}",
            daemon.describe(),
            st.state,
            st.effective_priority,
            st.priority,
            scrape.series_of("wasmalived_vrrp_state"),
        )));
    }
    Ok(())
}

/// Waits until node `daemon`'s check has run once and is up.
fn wait_check_up(pair: &Pair, daemon: &Daemon) -> Result<()> {
    pair.lab
        .wait_check(
            daemon,
            CHECK,
            "up",
            TIMING.interval() * 3 + Duration::from_secs(5),
        )
        .map(|_| ())
}

#[test]
fn scrape_after_a_failover_matches_what_happened() -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("wmetric", Proto::V3Ipv4, [W, W])?;
    for i in 0..2 {
        let text = config(&pair, i, PORTS[0])?;
        pair.start_with(i, &text)?;
    }
    pair.expect_master(0, pair.election_timeout())?;
    wait_check_up(&pair, pair.daemon(0)?)?;
    wait_check_up(&pair, pair.daemon(1)?)?;
    let before = scrape(pair.daemon(0)?, PORTS[0])?;
    expect_state(&before, pair.daemon(0)?, "MASTER")?;
    let backup = scrape(pair.daemon(1)?, PORTS[0])?;
    expect_state(&backup, pair.daemon(1)?, "BACKUP")?;
    // The log writer kept up (its queue drops and counts lines only when stderr is stuck).
    if before.expect("wasmalived_log_lines_dropped_total")? != 0.0 {
        return Err(LabError::check("log lines dropped on an idle node"));
    }
    if backup.expect(&instance_series(
        "wasmalived_vrrp_adverts_received_total",
        "",
    ))? < 1.0
    {
        return Err(LabError::check("the Backup counts no advert received"));
    }

    pair.crash(0)?;
    pair.expect_master(1, pair.failover_timeout())?;
    let d = pair.daemon(1)?;
    let sent_before = d.instance_status(INSTANCE)?.counter("tx_adverts");
    let after = scrape(d, PORTS[0])?;
    let sent_after = d.instance_status(INSTANCE)?.counter("tx_adverts");
    expect_state(&after, d, "MASTER")?;

    // One takeover since the Backup's scrape before the crash, for the reason that happened:
    // the Master's adverts stopped. (Start-up may have had its own: a node whose plugin
    // compiled first can be Master for a moment until n1 preempts it.)
    let takeover = instance_series(
        "wasmalived_vrrp_transitions_total",
        ",from=\"BACKUP\",to=\"MASTER\",reason=\"master_down\"",
    );
    let to_master = |scrape: &Scrape| -> f64 {
        scrape
            .series_of("wasmalived_vrrp_transitions_total")
            .iter()
            .filter(|(s, _)| s.contains("to=\"MASTER\""))
            .map(|(_, n)| n)
            .sum()
    };
    let takeovers = after.value(&takeover).unwrap_or(0.0) - backup.value(&takeover).unwrap_or(0.0);
    if takeovers != 1.0 || to_master(&after) - to_master(&backup) != 1.0 {
        return Err(LabError::check(format!(
            "expected exactly one BACKUP→MASTER for master_down on n2 after the crash; \
             transitions before {:?}, after {:?}",
            backup.series_of("wasmalived_vrrp_transitions_total"),
            after.series_of("wasmalived_vrrp_transitions_total")
        )));
    }
    // The adverts-sent counter lies between two status readings taken around the scrape.
    let sent = after.expect(&instance_series("wasmalived_vrrp_adverts_sent_total", ""))?;
    if !(sent >= sent_before as f64 && sent <= sent_after as f64 && sent > 0.0) {
        return Err(LabError::check(format!(
            "adverts sent: scrape {sent}, status {sent_before} before and {sent_after} after"
        )));
    }

    // The check: its results, its latency histogram (one observation per run), its
    // measurement, and the plugin loaded once.
    let runs: f64 = after
        .series_of("wasmalived_check_runs_total")
        .iter()
        .filter(|(s, _)| s.contains(&format!("check=\"{CHECK}\"")))
        .map(|(_, n)| n)
        .sum();
    let ok = after.expect(&check_series(
        "wasmalived_check_runs_total",
        ",result=\"ok\"",
    ))?;
    let observed = after.expect(&check_series(
        "wasmalived_check_run_duration_seconds_count",
        "",
    ))?;
    let le_inf = after.expect(&format!(
        "wasmalived_check_run_duration_seconds_bucket{{le=\"+Inf\",check=\"{CHECK}\"}}"
    ))?;
    if ok < 1.0 || observed != runs || le_inf != runs {
        return Err(LabError::check(format!(
            "check runs {runs} (ok {ok}), histogram count {observed}, +Inf bucket {le_inf}"
        )));
    }
    after.expect(&check_series(
        "wasmalived_check_measurement",
        ",name=\"latency_ms\"",
    ))?;
    after.expect(&check_series("wasmalived_check_state", ",state=\"up\""))?;
    let loaded = after.expect("wasmalived_plugin_loads_total{outcome=\"loaded\"}")?;
    if loaded != 1.0 {
        return Err(LabError::check(format!(
            "plugin loads: {loaded}, expected 1"
        )));
    }

    // A reload moves the endpoint: the new port answers, the old one no longer does.
    let text = config(&pair, 1, PORTS[1])?;
    std::fs::write(&d.conf, text)
        .map_err(|e| LabError::io(format!("rewriting {}", d.conf.display()), e))?;
    d.proc.signal("HUP")?;
    wait_for(
        "the endpoint to move to the reloaded port",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let moved = d.scrape_metrics(&format!("127.0.0.1:{}", PORTS[1])).is_ok();
            let old_gone = d
                .scrape_metrics(&format!("127.0.0.1:{}", PORTS[0]))
                .is_err();
            Ok(moved && old_gone)
        },
        || d.proc.log_tail(20),
    )?;
    // The reload replaced the check (its `address` changed), which starts again from `init`
    // and is weighted only after its first run (at once, then every `interval`): a scrape
    // taken in between shows the priority without the weight while the next status already
    // has it. Scrape and status must agree once the check has run.
    let settled_by = Instant::now() + TIMING.interval() * 3 + Duration::from_secs(2);
    loop {
        let moved = scrape(d, PORTS[1])?;
        match expect_state(&moved, d, "MASTER") {
            Ok(()) => break,
            Err(e) if Instant::now() >= settled_by => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    pair.pass()
}

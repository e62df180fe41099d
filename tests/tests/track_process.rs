//! `vrrp_track_process` (issue 12) end to end: two wasmalived nodes, each running its own
//! nginx, each tracking *its own* nginx among all the lab's processes (the lab's nodes share
//! one PID namespace) by its parameters: `process nginx -p PREFIX -c PREFIX/nginx.conf` with
//! `param_match partial`.
//!
//! - n1 is started from the initial network namespace with `net_namespace` (its node's
//!   namespace): it opens the kernel's process connector first, so nginx's exit reaches it
//!   as an event, at once. n2 is started inside its namespace (`ip netns exec`), where the
//!   connector does not exist: it falls back to scanning `/proc` every second, and says so.
//! - weight 0: without its nginx a node is in Fault (keepalived's default). Killing n1's
//!   nginx puts n1 in Fault at once: it sends priority 0 and n2 takes over after its skew
//!   time (RFC 3768 §6.4.2). nginx back (an `exec` event) → n1 leaves Fault and preempts.
//! - then n2's nginx dies: n2's next scan faults it.
//!
//! nginx runs as one process (`master_process off`), because a master rewrites its command
//! line to `nginx: master process …`, which parameter matching cannot see after the `exec`
//! (keepalived has the same limit). VRRPv2, `advert_int 1`. Needs root, nginx, curl, and
//! `cargo build -p wasmalived`.

use std::time::Duration;

use wasmalived_e2e::{
    wasmalived_bin, Impl, LabError, Pair, Proto, Result, CLIENT, INSTANCE, NODES,
};

const W: Impl = Impl::Wasmalived;
const PROTO: Proto = Proto::V2Pass;
const PRIOS: [u8; 2] = [101, 100];
/// The wasmalived process monitor's `/proc` scan period without the connector.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Slack for every bound: the CI machine has 2 busy cores.
const MARGIN: Duration = Duration::from_millis(1500);

/// `vrrp_track_process nginx` matching node `node`'s own nginx, tracked by the instance.
fn tracking_own_nginx(pair: &Pair, i: usize) -> String {
    let prefix = pair.lab.nginx_prefix(NODES[i]);
    let p = prefix.display();
    let block = format!(
        "vrrp_track_process nginx {{\n    process nginx -p {p} -c {p}/nginx.conf\n    param_match partial\n}}\n"
    );
    let conf = pair.confs[i].render();
    let at = conf.find("vrrp_instance ").unwrap_or(conf.len());
    let mut out = format!("{}{block}", &conf[..at]);
    for line in conf[at..].split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with("vrrp_instance ") {
            out.push_str("    track_process {\n        nginx\n    }\n");
        }
    }
    out
}

fn expect_state(pair: &Pair, i: usize, state: &str, within: Duration) -> Result<()> {
    pair.lab
        .wait_state(pair.daemon(i)?, INSTANCE, state, within)?;
    Ok(())
}

fn expect_log(pair: &Pair, i: usize, needle: &str) -> Result<()> {
    let d = pair.daemon(i)?;
    let log = std::fs::read_to_string(d.proc.log_path()).unwrap_or_default();
    if log.contains(needle) {
        return Ok(());
    }
    Err(LabError::check(format!(
        "{}: expected the log to say {needle:?}\n{}",
        d.describe(),
        d.proc.log_tail(30)
    )))
}

#[test]
fn own_nginx_tracked_by_events_from_net_namespace_and_by_scans_inside() -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("trackproc", PROTO, [W, W])?;
    for (i, p) in PRIOS.iter().enumerate() {
        pair.confs[i] = pair.confs[i].clone().priority(*p);
    }
    // Both nginx run before the daemons: the start-up /proc scan must find each node's own.
    let nginx1 = pair.lab.start_nginx_single(NODES[0])?;
    let _nginx2 = pair.lab.start_nginx_single(NODES[1])?;
    let n1_conf = tracking_own_nginx(&pair, 0);
    pair.start_net_namespace_with(0, &n1_conf)?;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[0], pair.election_timeout())?;
    let n2_conf = tracking_own_nginx(&pair, 1);
    pair.start_with(1, &n2_conf)?;
    pair.expect_master(0, pair.election_timeout())?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(5))?;
    expect_log(
        &pair,
        0,
        "tracking processes with the kernel's process connector",
    )?;
    expect_log(&pair, 1, "scanning /proc every")?;

    // n1's nginx dies: the exit event faults n1 at once, its priority-0 advert hands over
    // after n2's skew time.
    pair.lab.kill_nginx(&nginx1)?;
    expect_state(&pair, 0, "FAULT", MARGIN)?;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], PROTO.skew(PRIOS[1]) + MARGIN)?;
    expect_state(&pair, 1, "MASTER", MARGIN)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;
    expect_log(&pair, 0, "quorum lost for tracked process nginx")?;

    // Back (an exec event): n1 leaves Fault, then preempts n2 (lower priority) when its
    // master-down timer ends.
    let nginx1 = pair.lab.start_nginx_single(NODES[0])?;
    pair.expect_master(0, PROTO.master_down(PRIOS[0]) + MARGIN * 2)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;

    // n2 without the connector: its scan finds its nginx gone within a poll interval.
    pair.lab.kill_nginx(&_nginx2)?;
    expect_state(&pair, 1, "FAULT", POLL_INTERVAL + MARGIN)?;
    expect_state(&pair, 0, "MASTER", Duration::from_secs(1))?;
    drop(nginx1);
    pair.pass()
}

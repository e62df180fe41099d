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
//! Against keepalived 2.2.7 as the peer (issue 12), one wasmalived and one keepalived, both
//! started from the initial namespace with `net_namespace`, each tracking its own nginx with
//! the same block; the higher-priority n1 is Master and loses its nginx, then gets it back:
//!
//! - keepalived on n1, weight 0: keepalived goes to Fault at the exit event and sends
//!   priority 0, wasmalived takes over after its skew time; nginx back → keepalived preempts.
//! - wasmalived on n1, `weight -20`: its priority drops below keepalived's, keepalived
//!   takes over when its master-down timer ends; nginx back → wasmalived preempts. Its
//!   `wasmalived status` line for the block follows (count, quorum).
//!
//! keepalived logs `proc_events has confirmed it is configured` when the kernel acknowledges
//! its subscription to the connector; it has no `/proc` polling to fall back on, so a
//! restarted nginx is seen only through the connector's `exec` event: keepalived leaving
//! Fault proves the connector works in the lab.
//!
//! nginx runs as one process (`master_process off`), because a master rewrites its command
//! line to `nginx: master process …`, which parameter matching cannot see after the `exec`
//! (keepalived has the same limit). VRRPv2, `advert_int 1`. Needs root, nginx, curl,
//! keepalived, and `cargo build -p wasmalived`.

use std::time::Duration;

use wasmalived_e2e::{
    wait_for, wasmalived_bin, Impl, LabError, Pair, Proc, Proto, Result, CLIENT, INSTANCE, NODES,
};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;
const PROTO: Proto = Proto::V2Pass;
const PRIOS: [u8; 2] = [101, 100];
/// The wasmalived process monitor's `/proc` scan period without the connector.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Slack for every bound: the CI machine has 2 busy cores.
const MARGIN: Duration = Duration::from_millis(1500);

/// What keepalived logs when the kernel acknowledges its process-event subscription.
const KEEPALIVED_CONNECTOR_UP: &str = "proc_events has confirmed it is configured";

/// `vrrp_track_process nginx` matching node `i`'s own nginx, tracked by the instance with
/// `weight` (0: Fault without it).
fn tracking_own_nginx(pair: &Pair, i: usize, weight: i32) -> String {
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
            let weight = if weight == 0 {
                String::new()
            } else {
                format!(" weight {weight}")
            };
            out.push_str(&format!(
                "    track_process {{\n        nginx{weight}\n    }}\n"
            ));
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

/// Node `i`'s daemon says it follows processes through the kernel's connector.
fn expect_connector(pair: &Pair, i: usize) -> Result<()> {
    match pair.daemon(i)?.kind {
        Impl::Wasmalived => expect_log(
            pair,
            i,
            "tracking processes with the kernel's process connector",
        ),
        Impl::Keepalived => expect_log(pair, i, KEEPALIVED_CONNECTOR_UP),
    }
}

/// Waits until wasmalived on node `i` reports the `nginx` block with `count` processes and
/// quorum `up`, and the instance at `priority` (the process events arrive at once).
fn expect_tracked(pair: &Pair, i: usize, count: u64, up: bool, priority: i64) -> Result<()> {
    let d = pair.daemon(i)?;
    wait_for(
        &format!(
            "{} to report nginx with {count} running (up: {up}) and priority {priority}",
            d.describe()
        ),
        MARGIN,
        Duration::from_millis(50),
        || {
            let p = d.tracked_process("nginx")?;
            let inst = d.instance_status(INSTANCE)?;
            Ok(p.count == count && p.up == up && inst.effective_priority == priority)
        },
        || format!("status now: {:?}\n{}", d.status_json(), d.proc.log_tail(20)),
    )
    .map(|_| ())
}

/// n1 (`kinds[0]`, priority 101) and n2 (`kinds[1]`, 100), each tracking its own nginx with
/// `weight`, both started from the initial namespace with `net_namespace`; returns once n1
/// is Master and serves the VIP.
fn peers_tracking_their_nginx(
    test: &str,
    kinds: [Impl; 2],
    weight: i32,
) -> Result<(Pair, [Proc; 2])> {
    wasmalived_bin()?;
    let mut pair = Pair::new(test, PROTO, kinds)?;
    for (i, p) in PRIOS.iter().enumerate() {
        pair.confs[i] = pair.confs[i].clone().priority(*p);
    }
    let nginx = [
        pair.lab.start_nginx_single(NODES[0])?,
        pair.lab.start_nginx_single(NODES[1])?,
    ];
    let n1_conf = tracking_own_nginx(&pair, 0, weight);
    pair.start_net_namespace_with(0, &n1_conf)?;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[0], pair.election_timeout())?;
    let n2_conf = tracking_own_nginx(&pair, 1, weight);
    pair.start_net_namespace_with(1, &n2_conf)?;
    pair.expect_master(0, pair.election_timeout())?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(5))?;
    expect_connector(&pair, 0)?;
    expect_connector(&pair, 1)?;
    Ok((pair, nginx))
}

#[test]
fn keepalived_master_faults_without_its_nginx_and_wasmalived_takes_over() -> Result<()> {
    let (pair, [nginx1, _nginx2]) = peers_tracking_their_nginx("kaprocka", [K, W], 0)?;
    expect_tracked(&pair, 1, 1, true, i64::from(PRIOS[1]))?;

    // keepalived's nginx dies: the exit event faults it at once, and its priority-0 advert
    // hands over after wasmalived's skew time (RFC 3768 §6.4.2).
    pair.lab.kill_nginx(&nginx1)?;
    expect_state(&pair, 0, "FAULT", MARGIN)?;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], PROTO.skew(PRIOS[1]) + MARGIN)?;
    expect_state(&pair, 1, "MASTER", MARGIN)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;
    expect_log(&pair, 0, "Quorum lost for tracked process nginx")?;

    // Back (keepalived sees it only by the exec event): keepalived leaves Fault and preempts
    // wasmalived when its master-down timer ends.
    let _nginx1 = pair.lab.start_nginx_single(NODES[0])?;
    pair.expect_master(0, PROTO.master_down(PRIOS[0]) + MARGIN * 2)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;
    expect_log(&pair, 0, "Quorum gained for tracked process nginx")?;
    pair.pass()
}

#[test]
fn wasmalived_master_loses_priority_without_its_nginx_and_keepalived_takes_over() -> Result<()> {
    const WEIGHT: i32 = -20;
    let (pair, [nginx1, _nginx2]) = peers_tracking_their_nginx("kaprocwa", [W, K], WEIGHT)?;
    let (full, lowered) = (i64::from(PRIOS[0]), i64::from(PRIOS[0]) + i64::from(WEIGHT));
    expect_tracked(&pair, 0, 1, true, full)?;

    // wasmalived's nginx dies: the exit event lowers its priority below keepalived's at once;
    // keepalived discards the lower-priority adverts and takes over when its master-down
    // timer ends (RFC 3768 §6.4.2), and wasmalived yields to its higher priority.
    pair.lab.kill_nginx(&nginx1)?;
    expect_tracked(&pair, 0, 0, false, lowered)?;
    pair.lab.wait_sole_holder(
        &NODES,
        pair.vip(),
        NODES[1],
        PROTO.master_down(PRIOS[1]) + MARGIN,
    )?;
    expect_state(&pair, 1, "MASTER", MARGIN)?;
    expect_state(&pair, 0, "BACKUP", MARGIN)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;

    // Back: its priority returns at the exec event, and wasmalived preempts keepalived when
    // its own master-down timer ends.
    let _nginx1 = pair.lab.start_nginx_single(NODES[0])?;
    expect_tracked(&pair, 0, 1, true, full)?;
    pair.expect_master(0, PROTO.master_down(PRIOS[0]) + MARGIN * 2)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;
    pair.pass()
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
    let n1_conf = tracking_own_nginx(&pair, 0, 0);
    pair.start_net_namespace_with(0, &n1_conf)?;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[0], pair.election_timeout())?;
    let n2_conf = tracking_own_nginx(&pair, 1, 0);
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

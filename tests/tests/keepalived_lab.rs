//! Proves the lab harness with keepalived against keepalived (no wasmalived needed):
//! election, VIP on exactly one node, crash and SIGTERM failover, preemption back,
//! the client's neighbour cache following the GARP/NA, IPv6 and unicast.

use std::time::Duration;

use wasmalived_e2e::{Impl, PacketKind, Pair, Proto, Result, VRID};

const K: Impl = Impl::Keepalived;

/// Generous timeouts: the protocol bound plus slack for a loaded 2-core CI machine.
fn election_timeout(p: Proto) -> Duration {
    p.master_down(99) * 2 + Duration::from_secs(4)
}
fn failover_timeout(p: Proto) -> Duration {
    p.master_down(99) + Duration::from_secs(3)
}

#[test]
fn v2_pass_election_crash_failover_and_client_follows() -> Result<()> {
    let p = Proto::V2Pass;
    let mut pair = Pair::new("klv2crash", p, [K, K])?;
    pair.start_both()?;
    pair.expect_master(0, election_timeout(p))?;
    let sampler = pair
        .lab
        .sample_vip(&["n1", "n2"], pair.vip(), Duration::from_millis(20))?;
    pair.lab.expect_sole_holder_for(
        &["n1", "n2"],
        pair.vip(),
        "n1",
        Duration::from_millis(1500),
    )?;
    pair.expect_client_follows(0, false)?;

    let t_kill = pair.crash(0)?;
    pair.expect_master(1, failover_timeout(p))?;
    pair.expect_client_follows(1, true)?;

    let tl = sampler.stop()?;
    tl.expect_never_two()?;
    let took = tl.first_on("n2", t_kill).map(|t| t - t_kill);
    eprintln!(
        "crash -> VIP on n2 after {took:?} s (bound {:?})",
        p.master_down(99)
    );
    match took {
        Some(s) if s <= failover_timeout(p).as_secs_f64() => {}
        other => {
            return Err(wasmalived_e2e::LabError::check(format!(
                "VIP reached n2 after {other:?} s, expected within {:?}",
                failover_timeout(p)
            )))
        }
    }
    pair.pass()
}

#[test]
fn v3_sigterm_handover_then_preemption_back() -> Result<()> {
    let p = Proto::V3Ipv4;
    let mut pair = Pair::new("klv3term", p, [K, K])?;
    pair.start_both()?;
    pair.expect_master(0, election_timeout(p))?;
    pair.expect_client_follows(0, false)?;

    let sampler = pair
        .lab
        .sample_vip(&["n1", "n2"], pair.vip(), Duration::from_millis(10))?;
    pair.term(0)?;
    pair.expect_master(1, failover_timeout(p))?;
    pair.expect_client_follows(1, true)?;

    // n1 comes back with the higher priority and preempts.
    pair.start(0)?;
    pair.expect_master(0, election_timeout(p))?;
    pair.expect_client_follows(0, true)?;
    sampler.stop()?.expect_never_two()?;
    pair.pass()
}

#[test]
fn v3_ipv6_crash_failover_and_neighbour_follows_na() -> Result<()> {
    let p = Proto::V3Ipv6;
    let mut pair = Pair::new("klv6crash", p, [K, K])?;
    pair.start_both()?;
    pair.expect_master(0, election_timeout(p))?;
    pair.expect_client_follows(0, false)?;
    pair.crash(0)?;
    pair.expect_master(1, failover_timeout(p))?;
    pair.expect_client_follows(1, true)?;
    pair.pass()
}

#[test]
fn v3_unicast_peers_failover_without_multicast() -> Result<()> {
    let p = Proto::V3Ipv4;
    let mut pair = Pair::new("kluni", p, [K, K])?;
    pair.use_unicast()?;
    let cap = pair.lab.capture_bridge("unicast")?;
    pair.start_both()?;
    pair.expect_master(0, election_timeout(p))?;
    pair.expect_client_follows(0, false)?;
    pair.crash(0)?;
    pair.expect_master(1, failover_timeout(p))?;
    pair.expect_client_follows(1, true)?;
    std::thread::sleep(Duration::from_millis(300));
    let packets = cap.stop()?;
    let adverts: Vec<_> = packets
        .iter()
        .filter_map(|pk| match &pk.kind {
            PacketKind::Advert { src, dst, vrid, .. } if *vrid == VRID => Some((*src, *dst)),
            _ => None,
        })
        .collect();
    let n1 = pair.lab.node("n1")?.v4;
    let n2 = pair.lab.node("n2")?.v4;
    if !adverts.contains(&(n1, n2)) || !adverts.contains(&(n2, n1)) {
        return Err(wasmalived_e2e::LabError::check(format!(
            "expected unicast adverts n1->n2 and n2->n1 on the bridge, saw {} adverts: {:?}",
            adverts.len(),
            adverts.iter().take(5).collect::<Vec<_>>()
        )));
    }
    if let Some(m) = adverts.iter().find(|(_, d)| d.is_multicast()) {
        return Err(wasmalived_e2e::LabError::check(format!(
            "unicast config still sent a multicast advert {m:?}"
        )));
    }
    pair.pass()
}

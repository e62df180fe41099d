//! Chaos (issue 15): a short seeded schedule of faults — kill -9 and restart, a frozen VM,
//! link down/up, loss, a partition, a config reload, a plugin broken mid-run — against
//! three-node trios, with hostile plugins next to the good checks on every wasmalived node.
//! After every round, within the protocol's bound: exactly one node holds the VIP and it is
//! Master, the others are Backup, the client reaches the VIP, no daemon crashed, and every
//! good check is still up. `CHAOS_SEED=N` replays a schedule; every run prints its seed.
//! Outages are printed, not asserted (`make chaos` turns them into the MTTR table).

use std::time::Duration;

use wasmalived_e2e::chaos::director::{director_schedule, DirectorLab};
use wasmalived_e2e::chaos::trio::TEST_ADVERT_INT;
use wasmalived_e2e::chaos::{self, kind_stats, report, FaultKind, Trio};
use wasmalived_e2e::{Impl, Result};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;

/// Quiet time between rounds: a few adverts of the settled Master.
const DWELL: Duration = Duration::from_millis(500);

/// Every fault kind once, in the seed's order, against `kinds` with hostile plugins on.
fn short_schedule(test: &str, kinds: [Impl; 3]) -> Result<()> {
    let seed = chaos::seed_from_env().map_err(wasmalived_e2e::LabError::check)?;
    let mut trio = Trio::start(test, kinds, true, TEST_ADVERT_INT)?;
    let faults = chaos::schedule(seed, FaultKind::ALL.len(), trio.scales());
    let run = chaos::run(&mut trio, seed, &faults, DWELL)?;
    assert_eq!(run.rounds.len(), FaultKind::ALL.len());
    let stats = kind_stats(&run);
    eprintln!(
        "CHAOS_SEED={seed}\n{}",
        report::mttr_table(&[(test, &stats)])
    );
    trio.lab.pass()
}

#[test]
fn chaos_wasmalived_trio_keeps_one_master_through_every_fault() -> Result<()> {
    short_schedule("chaosw3", [W, W, W])
}

#[test]
fn chaos_mixed_trio_with_keepalived_keeps_one_master_through_every_fault() -> Result<()> {
    short_schedule("chaoswwk", [W, W, K])
}

/// Behind an LVS director: real servers dying and the Master director's machine dying, in
/// the seed's order; after each, one Master director, its pool the live real servers, every
/// request through the VIP served by a live one.
#[test]
fn chaos_lvs_directors_keep_serving_through_real_server_and_director_deaths() -> Result<()> {
    let seed = chaos::seed_from_env().map_err(wasmalived_e2e::LabError::check)?;
    let mut lab = DirectorLab::start("chaoslvs")?;
    let mut master = 0;
    for (round, fault) in director_schedule(seed, 4).into_iter().enumerate() {
        eprintln!(
            "chaos director round {round}: {fault:?} (Master d{})",
            master + 1
        );
        master = lab.apply(fault, master).map_err(|e| {
            wasmalived_e2e::LabError::check(format!(
                "CHAOS_SEED={seed} director round {round} ({fault:?}): {e}"
            ))
        })?;
    }
    lab.lvs.lab.pass()
}

//! The LVS director end to end (issue 10): two wasmalived directors sharing the VIP (a
//! `vrrp_sync_group`) in front of nginx real servers, NAT and direct routing, in namespaces.
//!
//! Bounds come from the checker settings: with `delay_loop D`, `connect_timeout C`, `retry R`,
//! `delay_before_retry B`, a server whose nginx dies is seen down at most
//! `D + C + R × (B + C)` later (the next check, then its retries; a refused connect fails at
//! once, so `C` is an upper bound); it is back at most `D + C` after it recovers. Every
//! wait adds [`SLACK`] for the daemon's own latency on a loaded machine.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wasmalived_e2e::lvs::{LvsLab, Mode, CLIENT, VIP, VIP6};
use wasmalived_e2e::{LabError, Result};

/// The daemon's own latency on a loaded machine (starting, applying a pool, answering).
const SLACK: Duration = Duration::from_secs(3);
/// Start-up: the daemon starts, loads the plugins, programs the pool.
const START: Duration = Duration::from_secs(20);
/// VRRP master-down interval of the Backup director (priority 100, advert_int 1): 3 × 1 s +
/// skew (256 − 100)/256 s.
const MASTER_DOWN: Duration = Duration::from_millis(3610);

/// `delay_loop 1`, `connect_timeout 1`, `retry 1`, `delay_before_retry 1`.
const TCP_CHECK: &str = "TCP_CHECK {\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }";
const DELAY_LOOP: &str = "    delay_loop 1";

/// Down within `D + C + R × (B + C)` = 1 + 1 + 1 × (1 + 1).
fn down_bound() -> Duration {
    Duration::from_secs(4) + SLACK
}

/// Up within `D + C`.
fn up_bound() -> Duration {
    Duration::from_secs(2) + SLACK
}

fn expect(cond: bool, l: &LvsLab, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(LabError::check(format!(
            "{}\n{}",
            what(),
            l.lab.log_summary(40)
        )))
    }
}

/// `[(rs index, weight)]` as pool entries.
fn pool(l: &LvsLab, members: &[(usize, u64)]) -> Vec<(String, u64)> {
    members
        .iter()
        .map(|(i, w)| (format!("{}:80", l.rs_addr(*i)), *w))
        .collect()
}

/// Both directors started with `services`; d1 Master with the full pool.
fn start_both(l: &mut LvsLab, services: &str, full: &[(usize, u64)]) -> Result<()> {
    for i in 0..2 {
        let c = l.config(i, services);
        l.start_director(i, &c)?;
    }
    l.wait_master(0, START)?;
    let want = pool(l, full);
    l.wait_pool(0, &want, START)?;
    Ok(())
}

fn all_three() -> Vec<(usize, u32)> {
    vec![(0, 1), (1, 1), (2, 1)]
}

#[test]
fn nat_round_robin_reaches_every_real_server_equally_and_status_shows_it() -> Result<()> {
    let mut l = LvsLab::new("lvsrr", Mode::Nat, 3)?;
    let vs = l.virtual_server(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;
    let spread = l.spread(None, 300)?;
    eprintln!("rr over 300 requests to {VIP}: {spread:?}");
    expect(
        !spread.contains_key("-") && spread.len() == 3 && spread.values().all(|n| *n == 100),
        &l,
        || format!("rr should give each real server 100 of 300: {spread:?}"),
    )?;

    // The status document: the virtual server, its real servers and their checkers. Without
    // `alpha` a real server serves before its first check, so wait for that check to have
    // run (a loaded machine may still be loading the checker's plugin).
    let deadline = Instant::now() + START;
    let status = loop {
        let status = l.status(0)?;
        let runs = status["virtual_servers"][0]["real_servers"][0]["checkers"][0]["runs"].as_u64();
        if runs.is_some_and(|n| n >= 1) || Instant::now() >= deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let vs = &status["virtual_servers"][0];
    expect(
        vs["name"] == "192.0.2.10:80/tcp"
            && vs["scheduler"] == "rr"
            && vs["forwarding"] == "NAT"
            && vs["backend"] == "nftables"
            && vs["quorum_up"] == true,
        &l,
        || format!("virtual server status: {vs}"),
    )?;
    let checker = &vs["real_servers"][0]["checkers"][0];
    expect(
        checker["name"] == "TCP_CHECK 198.51.100.11:80"
            && checker["state"] == "up"
            && checker["last"] == "ok"
            && checker["runner"]
                .as_str()
                .is_some_and(|r| r.starts_with("tcp@"))
            && checker["runs"].as_u64().is_some_and(|n| n >= 1),
        &l,
        || format!("checker status: {checker}"),
    )?;
    // The Backup director has the same pool programmed, ready for a failover.
    let want = pool(&l, &[(0, 1), (1, 1), (2, 1)]);
    l.wait_pool(1, &want, START)?;
    // The human form names them too.
    let bin = wasmalived_e2e::wasmalived_bin()?;
    let out = std::process::Command::new(bin)
        .arg("status")
        .arg("--state-dir")
        .arg(&l.director(0)?.state_dir)
        .output()
        .map_err(|e| LabError::io("running wasmalived status", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    expect(
        text.contains("virtual_server 192.0.2.10:80/tcp rr NAT on nftables: quorum up")
            && text.contains("real_server 198.51.100.12:80 UP in pool, weight 1/1")
            && text.contains("TCP_CHECK 198.51.100.13:80 up [tcp@"),
        &l,
        || format!("wasmalived status:\n{text}"),
    )?;
    l.lab.pass()
}

#[test]
fn nat_weighted_round_robin_follows_the_weights() -> Result<()> {
    let mut l = LvsLab::new("lvswrr", Mode::Nat, 3)?;
    let vs = l.virtual_server(
        &format!("    lb_algo wrr\n{DELAY_LOOP}"),
        &[(0, 3), (1, 2), (2, 1)],
        TCP_CHECK,
    );
    start_both(&mut l, &vs, &[(0, 3), (1, 2), (2, 1)])?;
    let spread = l.spread(None, 300)?;
    eprintln!("wrr 3:2:1 over 300 requests: {spread:?}");
    let want: BTreeMap<String, usize> = [("rs1", 150), ("rs2", 100), ("rs3", 50)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    expect(spread == want, &l, || {
        format!("wrr 3:2:1 should split 300 as {want:?}: {spread:?}")
    })?;
    l.lab.pass()
}

/// Which real server each of the client's source addresses reaches (`per` requests each,
/// all of which must land on one server).
fn clients_map(l: &LvsLab, per: usize) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for k in 0..wasmalived_e2e::lvs::CLIENT_SOURCES {
        let src = LvsLab::source(k);
        let got = l.gets(Some(&src), per)?;
        let first = got.first().cloned().flatten();
        let Some(server) = first else {
            return Err(LabError::check(format!("{src}: a request failed: {got:?}")));
        };
        if got.iter().any(|g| g.as_deref() != Some(server.as_str())) {
            return Err(LabError::check(format!(
                "{src} did not stay on one real server: {got:?}"
            )));
        }
        map.insert(src, server);
    }
    Ok(map)
}

fn distinct(map: &BTreeMap<String, String>) -> usize {
    let mut v: Vec<&String> = map.values().collect();
    v.sort();
    v.dedup();
    v.len()
}

#[test]
fn nat_source_hashing_and_persistence_keep_each_client_on_one_server() -> Result<()> {
    let mut l = LvsLab::new("lvssh", Mode::Nat, 3)?;
    let vs = l.virtual_server(
        &format!("    lb_algo sh\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;
    let sh = clients_map(&l, 4)?;
    eprintln!(
        "sh: {} clients over {} real servers",
        sh.len(),
        distinct(&sh)
    );
    expect(distinct(&sh) >= 2, &l, || {
        format!("sh should spread 24 clients: {sh:?}")
    })?;

    // Persistence on round robin: each client sticks to the server it got first.
    let vs = l.virtual_server(
        &format!("    lb_algo rr\n    persistence_timeout 60\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    for i in 0..2 {
        let c = l.config(i, &vs);
        l.reload(i, &c)?;
    }
    // The reload is applied when the status shows the new scheduler.
    wasmalived_e2e::wait_for(
        "the reload to apply rr",
        START,
        Duration::from_millis(50),
        || Ok(l.status(0)?["virtual_servers"][0]["scheduler"] == "rr"),
        || l.lab.log_summary(20),
    )?;
    let persistent = clients_map(&l, 4)?;
    eprintln!(
        "rr + persistence: {} clients over {} real servers",
        persistent.len(),
        distinct(&persistent)
    );
    expect(distinct(&persistent) == 3, &l, || {
        format!("rr with persistence should still spread clients over all three: {persistent:?}")
    })?;
    l.lab.pass()
}

#[test]
fn nat_maglev_moves_only_the_failed_servers_clients() -> Result<()> {
    let mut l = LvsLab::new("lvsmh", Mode::Nat, 3)?;
    let vs = l.virtual_server(
        &format!("    lb_algo mh\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;
    let before = clients_map(&l, 3)?;
    expect(distinct(&before) == 3, &l, || {
        format!("mh should spread 24 clients over three servers: {before:?}")
    })?;
    // rs2 fails.
    l.kill_nginx(1)?;
    let took = l.wait_pool(0, &pool(&l, &[(0, 1), (2, 1)]), down_bound())?;
    eprintln!("rs2 out of the pool after {took:.2?}");
    let after = clients_map(&l, 3)?;
    for (src, was) in &before {
        let now = &after[src];
        if was == "rs2" {
            expect(now != "rs2", &l, || {
                format!("{src} still on the failed rs2")
            })?;
        } else {
            expect(now == was, &l, || {
                format!("{src} moved from {was} to {now} although {was} is alive")
            })?;
        }
    }
    // rs2 recovers: exactly its clients come back.
    l.start_nginx(1)?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 1)]), up_bound())?;
    let back = clients_map(&l, 3)?;
    expect(back == before, &l, || {
        format!("after recovery the table should be the original one: {before:?} vs {back:?}")
    })?;
    l.lab.pass()
}

#[test]
fn nat_failed_server_leaves_within_the_check_bound_then_no_request_fails() -> Result<()> {
    let mut l = LvsLab::new("lvsfail", Mode::Nat, 3)?;
    let (notify, log) = l.recorder("notify")?;
    let body = format!(
        "notify_up \"{} up\"\n        notify_down \"{} down\"\n        {TCP_CHECK}",
        notify.display(),
        notify.display()
    );
    let vs = l.virtual_server(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &all_three(),
        &body,
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;
    let t = Instant::now();
    l.kill_nginx(2)?;
    let took = l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1)]), down_bound())?;
    eprintln!(
        "rs3 killed: out of the pool after {:.2?} (bound {:?})",
        t.elapsed(),
        down_bound()
    );
    let _ = took;
    // The Backup director checks too (its pool is ready for a failover).
    l.wait_pool(1, &pool(&l, &[(0, 1), (1, 1)]), down_bound())?;
    let spread = l.spread(None, 60)?;
    expect(
        !spread.contains_key("-") && !spread.contains_key("rs3") && spread.len() == 2,
        &l,
        || format!("after removal every request must succeed on rs1/rs2: {spread:?}"),
    )?;
    let t = Instant::now();
    l.start_nginx(2)?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 1)]), up_bound())?;
    eprintln!(
        "rs3 back in the pool {:.2?} after nginx restarted",
        t.elapsed()
    );
    wasmalived_e2e::wait_for(
        "notify_down then notify_up of rs3 on both directors",
        SLACK,
        Duration::from_millis(50),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Ok(text.matches("down").count() >= 2 && text.matches("up").count() >= 2)
        },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    )?;
    l.lab.pass()
}

#[test]
fn nat_inhibit_keeps_weight_zero_and_the_sorry_server_takes_over_without_quorum() -> Result<()> {
    let mut l = LvsLab::new("lvssorry", Mode::Nat, 4)?;
    let (quorum, log) = l.recorder("quorum")?;
    let options = format!(
        "    lb_algo rr\n{DELAY_LOOP}\n    sorry_server {} 80\n    quorum_up \"{} up\"\n    quorum_down \"{} down\"",
        l.rs_addr(3),
        quorum.display(),
        quorum.display()
    );
    let body = format!("inhibit_on_failure\n        {TCP_CHECK}");
    let vs = l.virtual_server(&options, &all_three(), &body);
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;

    // rs1 fails: kept at weight 0 (existing connections drain), no new request reaches it.
    l.kill_nginx(0)?;
    l.wait_pool(0, &pool(&l, &[(0, 0), (1, 1), (2, 1)]), down_bound())?;
    let spread = l.spread(None, 40)?;
    expect(
        !spread.contains_key("-") && !spread.contains_key("rs1"),
        &l,
        || format!("an inhibited server takes no new request: {spread:?}"),
    )?;
    // All fail: the sorry server (rs4) serves, quorum_down ran.
    l.kill_nginx(1)?;
    l.kill_nginx(2)?;
    l.wait_pool(0, &[], down_bound())?;
    let spread = l.spread(None, 20)?;
    expect(spread.get("rs4") == Some(&20), &l, || {
        format!("the sorry server should answer everything: {spread:?}")
    })?;
    // rs3 recovers: the quorum (1) is back, the pool replaces the sorry server.
    l.start_nginx(2)?;
    l.wait_pool(0, &pool(&l, &[(0, 0), (1, 0), (2, 1)]), up_bound())?;
    let spread = l.spread(None, 20)?;
    expect(spread.get("rs3") == Some(&20), &l, || {
        format!("rs3 alone should answer: {spread:?}")
    })?;
    wasmalived_e2e::wait_for(
        "quorum_down then quorum_up",
        SLACK,
        Duration::from_millis(50),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Ok(text.contains("down") && text.contains("up"))
        },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    )?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    expect(text.find("down") < text.rfind("up"), &l, || {
        format!("quorum_down must run before quorum_up: {text}")
    })?;
    l.lab.pass()
}

#[test]
fn direct_routing_balances_and_drops_a_failed_server() -> Result<()> {
    let mut l = LvsLab::new("lvsdr", Mode::Dr, 3)?;
    let vs = l.virtual_server(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;
    // The MACs are resolved by the first checks; until then a member has no slot.
    wasmalived_e2e::wait_for(
        "every DR member to answer",
        START,
        Duration::from_millis(100),
        || Ok(l.spread(None, 3)?.len() == 3),
        || l.lab.log_summary(30),
    )?;
    let spread = l.spread(None, 300)?;
    eprintln!("DR rr over 300 requests: {spread:?}");
    expect(
        !spread.contains_key("-") && spread.len() == 3 && spread.values().all(|n| *n == 100),
        &l,
        || format!("DR rr should give each real server 100 of 300: {spread:?}"),
    )?;
    l.kill_nginx(0)?;
    l.wait_pool(0, &pool(&l, &[(1, 1), (2, 1)]), down_bound())?;
    let spread = l.spread(None, 60)?;
    expect(
        !spread.contains_key("-") && !spread.contains_key("rs1"),
        &l,
        || format!("DR after removal: {spread:?}"),
    )?;
    l.lab.pass()
}

#[test]
fn director_failover_serves_with_the_backups_pool() -> Result<()> {
    failover(Mode::Nat, "lvsfo")
}

#[test]
fn direct_routing_director_failover_serves_with_the_backups_pool() -> Result<()> {
    failover(Mode::Dr, "lvsdrfo")
}

fn failover(mode: Mode, tag: &str) -> Result<()> {
    let mut l = LvsLab::new(tag, mode, 3)?;
    let vs = l.virtual_server(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;
    let want = pool(&l, &[(0, 1), (1, 1), (2, 1)]);
    l.wait_pool(1, &want, START)?;
    let t = Instant::now();
    l.crash_director(0)?;
    l.wait_master(1, MASTER_DOWN + SLACK)?;
    eprintln!("d1 died: d2 Master after {:.2?}", t.elapsed());
    // The client's neighbour entry follows d2's gratuitous ARP; the pool is already there.
    wasmalived_e2e::wait_for(
        "the VIP to answer through d2",
        SLACK,
        Duration::from_millis(50),
        || Ok(l.gets(None, 1)?.first().cloned().flatten().is_some()),
        || l.lab.log_summary(30),
    )?;
    eprintln!("VIP answers through d2 {:.2?} after d1 died", t.elapsed());
    let spread = l.spread(None, 90)?;
    expect(
        !spread.contains_key("-") && spread.len() == 3 && spread.values().all(|n| *n == 30),
        &l,
        || format!("through d2 every request succeeds, spread over all three: {spread:?}"),
    )?;
    l.lab.pass()
}

#[test]
fn reload_adds_and_removes_real_servers_without_breaking_established_connections() -> Result<()> {
    let mut l = LvsLab::new("lvsreload", Mode::Nat, 3)?;
    l.big_file(3 * 1024 * 1024)?;
    let only_rs1 = l.virtual_server(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &[(0, 1)],
        TCP_CHECK,
    );
    start_both(&mut l, &only_rs1, &[(0, 1)])?;
    // A download of 3 MiB at 512 KiB/s (~6 s) from rs1, across both reloads.
    let (download, out) = l.slow_download()?;
    std::thread::sleep(Duration::from_millis(500));
    // Add rs2 and rs3.
    let all = l.virtual_server(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    for i in 0..2 {
        let c = l.config(i, &all);
        l.reload(i, &c)?;
    }
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 1)]), START)?;
    let spread = l.spread(None, 30)?;
    expect(spread.len() == 3 && !spread.contains_key("-"), &l, || {
        format!("new connections reach the added servers: {spread:?}")
    })?;
    // Remove rs3.
    let two = l.virtual_server(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &[(0, 1), (1, 1)],
        TCP_CHECK,
    );
    for i in 0..2 {
        let c = l.config(i, &two);
        l.reload(i, &c)?;
    }
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1)]), START)?;
    let status = download
        .wait_exit(Duration::from_secs(30))?
        .ok_or_else(|| LabError::check("the download did not finish"))?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    expect(status.success() && size == 3 * 1024 * 1024, &l, || {
        format!(
            "the established download must complete across both reloads: {status}, {size} bytes"
        )
    })?;
    l.lab.pass()
}

#[test]
fn a_hostile_plugin_check_fails_only_its_own_real_server() -> Result<()> {
    let mut l = LvsLab::new("lvshost", Mode::Nat, 3)?;
    let busy = wasmalived_e2e::plugin_path("busy_loop")?;
    let hostile = format!(
        "PLUGIN_CHECK {{\n            plugin {}\n            connect_timeout 1\n            retry 0\n        }}",
        busy.display()
    );
    let vs = l.virtual_server_with(
        &format!("    lb_algo rr\n{DELAY_LOOP}\n    alpha"),
        &[
            (0, 1, hostile),
            (1, 1, TCP_CHECK.to_owned()),
            (2, 1, TCP_CHECK.to_owned()),
        ],
    );
    start_both(&mut l, &vs, &[(1, 1), (2, 1)])?;
    // A few seconds of busy loops: the other checkers keep running, VRRP stays put.
    let runs = |l: &LvsLab| -> Result<u64> {
        let s = l.status(0)?;
        Ok(
            s["virtual_servers"][0]["real_servers"][1]["checkers"][0]["runs"]
                .as_u64()
                .unwrap_or(0),
        )
    };
    let before = runs(&l)?;
    std::thread::sleep(Duration::from_secs(4));
    let after = runs(&l)?;
    let s = l.status(0)?;
    let hostile_state = &s["virtual_servers"][0]["real_servers"][0];
    expect(
        after >= before + 2
            && hostile_state["alive"] == false
            && hostile_state["checkers"][0]["last"]
                .as_str()
                .is_some_and(|t| t.contains("timeout") || t.contains("time")),
        &l,
        || format!("runs of rs2's checker {before} -> {after}; rs1: {hostile_state}"),
    )?;
    let d1 = l.director(0)?;
    expect(
        d1.state("VI_CLIENT")?.as_deref() == Some("MASTER"),
        &l,
        || "d1 must stay Master".into(),
    )?;
    let spread = l.spread(None, 40)?;
    expect(
        !spread.contains_key("-") && !spread.contains_key("rs1"),
        &l,
        || format!("rs1 (hostile check) takes nothing: {spread:?}"),
    )?;
    l.lab.pass()
}

/// keepalived's `HTTP_GET` `digest`: the MD5 of `served by rsN\n`, the page of real server N.
const PAGE_DIGESTS: [&str; 3] = [
    "5a775a837c53af7f1a1cc35d49fac2b3",
    "b0cbba8f198b60db01b49fcf6ffd6b7d",
    "b6941d10d6445924dacc080fd580b527",
];

#[test]
fn http_get_checks_status_digest_and_virtual_host_of_each_real_server() -> Result<()> {
    let mut l = LvsLab::new("lvshttp", Mode::Nat, 3)?;
    let check = |digest: &str| {
        format!(
            "HTTP_GET {{\n            url {{\n                path /\n                digest {digest}\n                status_code 200\n            }}\n            url {{\n                path /index.html\n                virtualhost www.example.test\n            }}\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }}"
        )
    };
    // rs3's expected digest is rs1's: its page does not match, it stays out.
    let vs = l.virtual_server_with(
        &format!("    lb_algo rr\n{DELAY_LOOP}"),
        &[
            (0, 1, check(PAGE_DIGESTS[0])),
            (1, 1, check(PAGE_DIGESTS[1])),
            (2, 1, check(PAGE_DIGESTS[0])),
        ],
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1)])?;
    // rs3 leaves the pool on its first failed check, which may come before rs1's first check
    // (rs1 serves before it, without `alpha`): wait for that check to have run.
    let deadline = Instant::now() + START;
    let s = loop {
        let s = l.status(0)?;
        let runs = s["virtual_servers"][0]["real_servers"][0]["checkers"][0]["runs"].as_u64();
        if runs.is_some_and(|n| n >= 1) || Instant::now() >= deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rs3 = &s["virtual_servers"][0]["real_servers"][2];
    let rs1 = &s["virtual_servers"][0]["real_servers"][0]["checkers"][0];
    expect(
        rs3["alive"] == false
            && rs3["checkers"][0]["last"]
                .as_str()
                .is_some_and(|t| t.contains("digest"))
            && rs1["runner"]
                .as_str()
                .is_some_and(|r| r.starts_with("http@"))
            && rs1["name"] == "HTTP_GET 198.51.100.11:80",
        &l,
        || format!("rs3 must fail on its digest: {rs3}; rs1: {rs1}"),
    )?;
    let spread = l.spread(None, 30)?;
    expect(
        !spread.contains_key("-") && !spread.contains_key("rs3") && spread.len() == 2,
        &l,
        || format!("only rs1 and rs2 serve: {spread:?}"),
    )?;
    l.lab.pass()
}

#[test]
fn with_source_hashing_established_connections_survive_a_director_failover() -> Result<()> {
    survive_failover(Mode::Nat, "lvsshfo")
}

#[test]
fn direct_routing_with_source_hashing_keeps_connections_through_a_director_failover() -> Result<()>
{
    survive_failover(Mode::Dr, "lvsdrsh")
}

/// The download that must survive a failover.
const SURVIVE_SIZE: usize = 8 * 1024 * 1024;

/// Both directors hash a client alike (fixed seed, the same table); with NAT the new one's
/// connection tracking picks an established TCP connection up mid-stream, with DR its
/// per-connection set simply has no entry yet: the download goes on through d2 to the same
/// real server. (With rr it would be reset: part 2 syncs connections.)
///
/// With NAT, which side's segment reaches d2 first decides how the pickup goes. The test
/// forces the harder order: curl is stopped through the failover, so the client's window is
/// closed and the first segment d2 sees is the real server's (a zero-window probe or a
/// retransmission, with the member's own address until d2's `postrouting` gives it the
/// VIP's); curl goes on once d2 has tracked such a segment.
fn survive_failover(mode: Mode, tag: &str) -> Result<()> {
    let mut l = LvsLab::new(tag, mode, 3)?;
    // 8 MiB at 512 KiB/s: 16 s, well past the failover.
    l.big_file(SURVIVE_SIZE)?;
    let vs = l.virtual_server(
        &format!("    lb_algo mh\n{DELAY_LOOP}"),
        &all_three(),
        TCP_CHECK,
    );
    start_both(&mut l, &vs, &[(0, 1), (1, 1), (2, 1)])?;
    l.wait_pool(1, &pool(&l, &[(0, 1), (1, 1), (2, 1)]), START)?;
    let (download, out) = l.slow_download()?;
    std::thread::sleep(Duration::from_secs(1));
    if mode == Mode::Nat {
        download.signal("STOP")?;
    }
    l.crash_director(0)?;
    l.wait_master(1, MASTER_DOWN + SLACK)?;
    if mode == Mode::Nat {
        // The real server's segments back off exponentially while no director answers (RTO
        // doubling from 200 ms: 0.2, 0.6, 1.4, 3.0, 6.2, 12.6, 25.4 s after the crash); the
        // one after the takeover arrives within twice the outage plus a doubling.
        let picked_up =
            wasmalived_e2e::wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
                let tracked = l.lab.run(
                    "d2",
                    &["conntrack", "-L", "-p", "tcp", "--orig-port-src", "80"],
                )?;
                Ok(tracked.contains("sport=80"))
            });
        download.signal("CONT")?;
        expect(picked_up, &l, || {
            "d2 never tracked a segment of the real server's side of the download".to_owned()
        })?;
    }
    let status = download
        .wait_exit(Duration::from_secs(60))?
        .ok_or_else(|| LabError::check("the download did not finish"))?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    expect(status.success() && size == SURVIVE_SIZE as u64, &l, || {
        format!("the download must survive the failover: {status}, {size} bytes")
    })?;
    l.lab.pass()
}

#[test]
fn an_ipv6_virtual_server_balances_over_ipv6_real_servers() -> Result<()> {
    let mut l = LvsLab::new("lvsv6", Mode::Nat, 3)?;
    l.enable_ipv6()?;
    let mut vs = format!(
        "virtual_server {VIP6} 80 {{\n    lb_kind NAT\n    protocol TCP\n    lb_algo rr\n{DELAY_LOOP}\n"
    );
    for i in 0..3 {
        vs.push_str(&format!(
            "    real_server {} 80 {{\n        weight 1\n        {TCP_CHECK}\n    }}\n",
            l.rs_addr6(i)
        ));
    }
    vs.push_str("}\n");
    for i in 0..2 {
        let c = l.config(i, &vs);
        l.start_director(i, &c)?;
    }
    l.wait_master(0, START)?;
    let want: Vec<(String, u64)> = (0..3)
        .map(|i| (format!("[{}]:80", l.rs_addr6(i)), 1))
        .collect();
    l.wait_pool(0, &want, START)?;
    let url = format!("http://[{VIP6}]/");
    let mut served = BTreeMap::new();
    for _ in 0..30 {
        let got = l.lab.http_get(CLIENT, &url)?;
        let who = got
            .and_then(|p| p.strip_prefix("served by ").map(|s| s.trim().to_owned()))
            .unwrap_or_else(|| "-".into());
        *served.entry(who).or_insert(0) += 1;
    }
    eprintln!("IPv6 rr over 30 requests: {served:?}");
    expect(
        !served.contains_key("-") && served.len() == 3 && served.values().all(|n| *n == 10),
        &l,
        || format!("IPv6 rr should give each real server 10 of 30: {served:?}"),
    )?;
    l.lab.pass()
}

/// A UDP server on `rs` port 9000 answering every datagram with `served by RS`.
fn udp_server(l: &LvsLab, rs: &str) -> Result<wasmalived_e2e::Proc> {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('0.0.0.0', 9000))\nwhile True:\n    data, peer = s.recvfrom(2048)\n    \
         s.sendto(b'served by {rs}', peer)\n"
    );
    l.lab.spawn(
        rs,
        &["/usr/bin/python3", "-c", &script],
        format!("{rs}-udp.log"),
    )
}

/// `count` datagrams to VIP:9000 from the client: who answered each (`-` for no answer within
/// 1 s). Each leaves from its own source port, `first_port`, `first_port + 1`, …, so each is a
/// new flow and is scheduled: an ephemeral port the kernel happened to hand out twice would
/// reuse the earlier flow's conntrack entry and real server and skew an exact round-robin
/// count (1–2 % of runs with 30 random ports). Callers give each call its own range.
fn udp_spread(l: &LvsLab, count: usize, first_port: u16) -> Result<BTreeMap<String, usize>> {
    let script = format!(
        "import socket\nfor i in range({count}):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    \
         s.bind(('', {first_port} + i))\n    s.settimeout(1)\n    s.sendto(b'hello', ('{VIP}', 9000))\n    \
         try:\n        print(s.recv(2048).decode())\n    except Exception:\n        print('-')\n    s.close()\n"
    );
    let out = l.lab.run(CLIENT, &["/usr/bin/python3", "-c", &script])?;
    let mut spread = BTreeMap::new();
    for line in out.lines() {
        let who = line
            .strip_prefix("served by ")
            .unwrap_or(line)
            .trim()
            .to_owned();
        *spread.entry(who).or_insert(0) += 1;
    }
    Ok(spread)
}

#[test]
fn a_udp_service_with_udp_and_ping_checks() -> Result<()> {
    let mut l = LvsLab::new("lvsudp", Mode::Nat, 3)?;
    let mut servers = Vec::new();
    for rs in l.real_servers.clone() {
        servers.push(udp_server(&l, &rs)?);
    }
    // `served by ` in hex: the reply must start with it.
    let checks = "UDP_CHECK {\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n            require_reply 73657276656420627920\n        }\n        PING_CHECK {\n            connect_timeout 1\n        }";
    let mut vs = format!(
        "virtual_server {VIP} 9000 {{\n    lb_kind NAT\n    protocol UDP\n    lb_algo rr\n{DELAY_LOOP}\n"
    );
    for i in 0..3 {
        vs.push_str(&format!(
            "    real_server {} 9000 {{\n        weight 1\n        {checks}\n    }}\n",
            l.rs_addr(i)
        ));
    }
    vs.push_str("}\n");
    for i in 0..2 {
        let c = l.config(i, &vs);
        l.start_director(i, &c)?;
    }
    l.wait_master(0, START)?;
    let udp_pool = |members: &[usize]| -> Vec<(String, u64)> {
        members
            .iter()
            .map(|i| (format!("{}:9000", l.rs_addr(*i)), 1))
            .collect()
    };
    l.wait_pool(0, &udp_pool(&[0, 1, 2]), START)?;
    let spread = udp_spread(&l, 30, 41000)?;
    eprintln!("UDP rr over 30 flows: {spread:?}");
    expect(
        !spread.contains_key("-") && spread.len() == 3 && spread.values().all(|n| *n == 10),
        &l,
        || format!("UDP rr should give each real server 10 of 30 flows: {spread:?}"),
    )?;
    // rs2's UDP server dies: its UDP_CHECK fails (port unreachable), its ping still passes,
    // and as all checkers must pass it leaves the pool.
    servers[1].kill9_group()?;
    l.wait_pool(0, &udp_pool(&[0, 2]), down_bound())?;
    let s = l.status(0)?;
    let rs2 = &s["virtual_servers"][0]["real_servers"][1];
    expect(
        rs2["checkers"][0]["state"] == "down"
            && rs2["checkers"][0]["last"]
                .as_str()
                .is_some_and(|t| t.contains("unreachable"))
            && rs2["checkers"][1]["state"] == "up"
            && rs2["checkers"][1]["runner"] == "icmp",
        &l,
        || format!("rs2: UDP down (unreachable), ping up: {rs2}"),
    )?;
    let spread = udp_spread(&l, 20, 42000)?;
    expect(
        !spread.contains_key("-") && !spread.contains_key("rs2"),
        &l,
        || format!("after removal every flow is answered by rs1/rs3: {spread:?}"),
    )?;
    l.lab.pass()
}

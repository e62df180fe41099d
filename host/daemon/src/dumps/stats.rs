//! `keepalived.stats`: per-instance counters in keepalived's layout (`vrrp_print.c`
//! `vrrp_print_stats`), counted since the last `STATS_CLEAR`.
//!
//! keepalived zeroes its counters on `STATS_CLEAR`. Here the counters the status document
//! and the metrics show are never reset (a monitoring system computes rates from them and a
//! reset would read as a wrap); the stats file subtracts a baseline instead, taken when
//! `STATS_CLEAR` wrote its file, so the file behaves exactly as keepalived's.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use wasmalived_proto::vrrp::DropReason;

use crate::control::InstanceStatus;

/// Counters by name, per instance name.
type CountersByInstance = BTreeMap<String, BTreeMap<String, u64>>;

/// The counters as they were at the last `STATS_CLEAR`.
#[derive(Debug, Default)]
pub struct StatsBaseline {
    at_clear: CountersByInstance,
}

impl StatsBaseline {
    /// Each instance's counters since the last clear. A counter below its baseline belongs
    /// to an instance created again since (a reload): it counts from its own start.
    pub fn since_clear(&self, instances: &[InstanceStatus]) -> Vec<InstanceStatus> {
        instances
            .iter()
            .map(|i| {
                let base = self.at_clear.get(&i.name);
                let counters = i
                    .counters
                    .iter()
                    .map(|(name, now)| {
                        let before = base.and_then(|b| b.get(name)).copied().unwrap_or(0);
                        let since = if *now >= before { now - before } else { *now };
                        (name.clone(), since)
                    })
                    .collect();
                InstanceStatus {
                    counters,
                    ..i.clone()
                }
            })
            .collect()
    }

    /// Start counting from `instances`' counters (what `STATS_CLEAR` just wrote).
    pub fn clear(&mut self, instances: &[InstanceStatus]) {
        self.at_clear = instances
            .iter()
            .map(|i| (i.name.clone(), i.counters.clone()))
            .collect();
    }
}

/// keepalived's counters and the status counter each one reads.
const PACKET_ERRORS: [(&str, &str); 5] = [
    ("Length", "rx_length"),
    ("TTL", "rx_ttl"),
    ("Invalid Type", "rx_type"),
    ("Advertisement Interval", "rx_interval"),
    ("Address List", "rx_address_list_mismatch"),
];

/// keepalived's authentication counters (VRRPv2 `auth_type PASS`). keepalived's third one,
/// "Invalid Type" (an auth type it does not know), is counted here as a mismatch.
const AUTH_ERRORS: [(&str, &str); 2] = [
    ("Type Mismatch", "rx_auth_type"),
    ("Failure", "rx_auth_failure"),
];

/// The drop reasons keepalived's layout already shows.
const SHOWN: [DropReason; 6] = [
    DropReason::Length,
    DropReason::Ttl,
    DropReason::Type,
    DropReason::Interval,
    DropReason::AuthType,
    DropReason::AuthFailure,
];

/// The stats file's text for `instances` (counters as they should be shown).
pub fn render(instances: &[InstanceStatus]) -> String {
    let mut out = String::new();
    for i in instances {
        let n = |name: &str| i.counters.get(name).copied().unwrap_or(0);
        let _ = writeln!(out, "VRRP Instance: {}", i.name);
        let _ = writeln!(out, "  Advertisements:");
        let _ = writeln!(out, "    Received: {}", n("rx_adverts"));
        let _ = writeln!(out, "    Sent: {}", n("tx_adverts"));
        let _ = writeln!(out, "  Became master: {}", n("became_master"));
        let _ = writeln!(out, "  Released master: {}", n("released_master"));
        let _ = writeln!(out, "  Packet Errors:");
        for (label, counter) in PACKET_ERRORS {
            let _ = writeln!(out, "    {label}: {}", n(counter));
        }
        let _ = writeln!(out, "  Authentication Errors:");
        for (label, counter) in AUTH_ERRORS {
            let _ = writeln!(out, "    {label}: {}", n(counter));
        }
        let _ = writeln!(out, "  Priority Zero:");
        let _ = writeln!(out, "    Received: {}", n("rx_priority_zero"));
        let _ = writeln!(out, "    Sent: {}", n("tx_priority_zero"));
        // wasmalived counts every other reason an advert is dropped for, too.
        let _ = writeln!(out, "  Other Errors:");
        for reason in DropReason::ALL.iter().filter(|r| !SHOWN.contains(r)) {
            let name = reason.name();
            let _ = writeln!(out, "    {name}: {}", n(&format!("rx_{name}")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, counters: &[(&str, u64)]) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            counters: counters.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_layout_is_keepalived_s_with_the_other_reasons_after_it() {
        let text = render(&[instance(
            "VI_1",
            &[
                ("rx_adverts", 7),
                ("tx_adverts", 9),
                ("became_master", 2),
                ("released_master", 1),
                ("rx_ttl", 3),
                ("rx_priority_zero", 1),
                ("tx_priority_zero", 1),
                ("rx_checksum", 4),
            ],
        )]);
        let expected = "\
VRRP Instance: VI_1
  Advertisements:
    Received: 7
    Sent: 9
  Became master: 2
  Released master: 1
  Packet Errors:
    Length: 0
    TTL: 3
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Type Mismatch: 0
    Failure: 0
  Priority Zero:
    Received: 1
    Sent: 1
  Other Errors:
";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("    checksum: 4\n"), "{text}");
        assert!(text.contains("    not_unicast_peer: 0\n"), "{text}");
        assert!(
            !text.contains("    ttl:"),
            "shown once, under Packet Errors"
        );
    }

    #[test]
    fn clearing_counts_from_the_clear_and_a_recreated_instance_from_its_start() {
        let mut baseline = StatsBaseline::default();
        let before = [instance(
            "VI_1",
            &[("tx_adverts", 10), ("became_master", 1)],
        )];
        assert_eq!(baseline.since_clear(&before)[0].counters["tx_adverts"], 10);
        baseline.clear(&before);
        let later = [instance(
            "VI_1",
            &[("tx_adverts", 13), ("became_master", 1)],
        )];
        let since = baseline.since_clear(&later);
        assert_eq!(since[0].counters["tx_adverts"], 3);
        assert_eq!(since[0].counters["became_master"], 0);
        // Re-created by a reload: its counters restarted below the baseline.
        let recreated = [instance("VI_1", &[("tx_adverts", 2)])];
        assert_eq!(
            baseline.since_clear(&recreated)[0].counters["tx_adverts"],
            2
        );
    }
}

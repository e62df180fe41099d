//! The one-line status systemd shows (`systemctl status`: "Status: ..."), e.g.
//! `VI_1 MASTER, VI_2 BACKUP; 3 checks up`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Instances are named one by one up to this many; beyond, they are counted by state.
pub const MAX_NAMED_INSTANCES: usize = 8;

/// How the checks stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Checks whose verdict is up.
    pub up: usize,
    /// Every running check (up, down, fatal, or not decided yet).
    pub total: usize,
}

/// The status line for `instances` (name, state) and `checks`.
pub fn summary<'a>(
    instances: impl IntoIterator<Item = (&'a str, &'a str)>,
    checks: CheckCounts,
) -> String {
    let mut instances: Vec<(&str, &str)> = instances.into_iter().collect();
    instances.sort_unstable();
    let mut line = if instances.is_empty() {
        "no VRRP instance".to_owned()
    } else if instances.len() <= MAX_NAMED_INSTANCES {
        instances
            .iter()
            .map(|(name, state)| format!("{name} {state}"))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, state) in &instances {
            *by_state.entry(state).or_default() += 1;
        }
        by_state
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match checks {
        CheckCounts { total: 0, .. } => {}
        CheckCounts { up, total } if up == total => {
            let _ = write!(line, "; {total} check{} up", plural(total));
        }
        CheckCounts { up, total } => {
            let _ = write!(line, "; {up} of {total} check{} up", plural(total));
        }
    }
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_named_in_order_with_the_checks_after() {
        let line = summary(
            [("VI_2", "BACKUP"), ("VI_1", "MASTER")],
            CheckCounts { up: 3, total: 3 },
        );
        assert_eq!(line, "VI_1 MASTER, VI_2 BACKUP; 3 checks up");
        let line = summary([("VI_1", "FAULT")], CheckCounts { up: 0, total: 1 });
        assert_eq!(line, "VI_1 FAULT; 0 of 1 check up");
        assert_eq!(summary([], CheckCounts::default()), "no VRRP instance");
    }

    #[test]
    fn many_instances_are_counted_by_state() {
        let names: Vec<String> = (0..20).map(|i| format!("VI_{i}")).collect();
        let line = summary(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), if i < 15 { "MASTER" } else { "BACKUP" })),
            CheckCounts { up: 1, total: 2 },
        );
        assert_eq!(line, "5 BACKUP, 15 MASTER; 1 of 2 checks up");
    }
}

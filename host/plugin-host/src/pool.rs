//! How large the instance pool is: sized from the configuration, not from the largest config
//! one could write.
//!
//! Every pool slot reserves address space for one run's linear memory (the largest memory a
//! check is granted, plus a small guard region), its tables and its fiber stack. A pool sized
//! for the worst case (128 slots × a full 4 GiB memory + guard) reserved ~0.5 TiB of virtual
//! address space: harmless for the kernel (`PROT_NONE`, no commit charge), but it trips
//! `RLIMIT_AS` (`ulimit -v`) and VSZ alarms. [`PoolLimits::for_config`] sizes the pool from
//! what the configuration runs instead, and each slot's memory is the largest `memory_limit`
//! a check is granted:
//! - two slots per `vrrp_script` plugin check (a run may overlap the next one's start by a
//!   hand-off, and a hot-reloaded version's first run may start while the old version's
//!   last run is being dropped);
//! - one slot per LVS checker that runs a plugin, plus a shared reserve of an eighth of them
//!   (at least `MIN_RUNS`): a probe's runs never overlap (its loop awaits each run, inline
//!   on its executor thread, and an `HTTP_GET`'s URLs run one after another), so only a
//!   probe replaced by a reload can hold a second slot, for as long as the old probe's last
//!   run takes to be dropped.
//!
//! The limits are fixed for the life of the process (wasmtime sizes the pool when the engine
//! is built). A configuration reloaded later that runs more plugin checks, or grants one more
//! memory, than the pool was sized for is reported by [`PoolLimits::shortfall`]; its runs
//! beyond the pool fail at once ("plugin instance pool exhausted") or find `memory.grow`
//! refused above the pool's size, until the daemon is restarted.

use wasmalived_config::{Config, ScriptKind};

/// One WebAssembly page: linear memories grow in these.
const WASM_PAGE: u64 = 64 * 1024;
/// Largest linear memory any check may be granted (a full 32-bit memory), the same bound as
/// the config's `memory_limit` (`config::defaults::MAX_MEMORY_LIMIT`).
pub const MAX_MEMORY: u64 = 4 << 30;
/// Fewest slots: the CLI's one-off runs (`plugin run`, `config test`) and a config whose
/// checks are all scripts.
const MIN_RUNS: u32 = 4;
/// Most slots, whatever the config: beyond this a run fails at once with a clear error.
const MAX_RUNS: u32 = 512;
/// Slots per `vrrp_script` plugin check (see the module documentation).
const RUNS_PER_CHECK: u32 = 2;
/// The LVS checkers' shared reserve is their number divided by this (see the module
/// documentation).
const PROBE_RESERVE_DIVISOR: u32 = 8;

/// The instance pool's size: runs in flight at once, and the largest linear memory of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Runs that can be in flight at once (pool slots).
    pub concurrent_runs: u32,
    /// Bytes of linear memory each slot reserves: the largest `memory_limit` granted, rounded
    /// up to a power of two (so that a slightly larger grant after a reload does not change
    /// the engine's compiled-code key).
    pub max_memory: u64,
}

impl Default for PoolLimits {
    /// For one-off runs outside the daemon (CLI, tests): a few slots of the default
    /// `memory_limit`.
    fn default() -> Self {
        Self::for_checks(0, wasmalived_config::grants::DEFAULT_MEMORY_LIMIT)
    }
}

impl PoolLimits {
    /// Limits for `checks` plugin checks whose largest granted memory is `largest_memory`.
    pub fn for_checks(checks: usize, largest_memory: u64) -> Self {
        Self::for_runs(checks, 0, largest_memory)
    }

    /// Limits for `checks` plugin checks and `probes` LVS checkers that run plugins (see the
    /// module documentation), whose largest granted memory is `largest_memory`.
    fn for_runs(checks: usize, probes: usize, largest_memory: u64) -> Self {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let probes = count(probes);
        let reserve = if probes == 0 {
            0
        } else {
            (probes / PROBE_RESERVE_DIVISOR).max(MIN_RUNS)
        };
        let runs = count(checks)
            .saturating_mul(RUNS_PER_CHECK)
            .saturating_add(probes)
            .saturating_add(reserve)
            .clamp(MIN_RUNS, MAX_RUNS);
        Self {
            concurrent_runs: runs,
            max_memory: memory_slot(largest_memory),
        }
    }

    /// Limits for what `config` runs: its plugin checks (`vrrp_script … plugin`, and every
    /// LVS checker that runs a plugin — `PLUGIN_CHECK` and the keepalived checkers that
    /// compile to stock plugins, one per real server that has one) and their grants.
    pub fn for_config(config: &Config) -> Self {
        let scripts = config
            .scripts
            .iter()
            .filter_map(|script| match &script.kind {
                ScriptKind::Plugin { grants, .. } => Some(grants.memory_limit),
                _ => None,
            });
        let checkers = config
            .virtual_servers
            .iter()
            .flat_map(|vs| vs.real_servers.iter())
            .flat_map(|rs| rs.checkers.iter())
            .filter_map(|checker| checker.kind.plugin_memory_limit());
        let scripts: Vec<u64> = scripts.collect();
        let checkers: Vec<u64> = checkers.collect();
        // Without any plugin check the pool serves one-off runs at the default limit.
        let largest = scripts
            .iter()
            .chain(&checkers)
            .copied()
            .max()
            .unwrap_or(wasmalived_config::grants::DEFAULT_MEMORY_LIMIT);
        Self::for_runs(scripts.len(), checkers.len(), largest)
    }

    /// Why `wanted` (a reloaded configuration's limits) does not fit in this pool, if it
    /// does not: the daemon warns that a restart is needed.
    pub fn shortfall(&self, wanted: &PoolLimits) -> Option<String> {
        let mut short = Vec::new();
        if wanted.concurrent_runs > self.concurrent_runs {
            short.push(format!(
                "{} concurrent plugin runs wanted, the pool has {}",
                wanted.concurrent_runs, self.concurrent_runs
            ));
        }
        if wanted.max_memory > self.max_memory {
            short.push(format!(
                "a check is granted {} MiB of memory, the pool's slots hold {} MiB",
                wanted.max_memory >> 20,
                self.max_memory >> 20
            ));
        }
        (!short.is_empty()).then(|| short.join("; "))
    }
}

/// `bytes` rounded up to a whole number of wasm pages, then to a power of two, at most
/// [`MAX_MEMORY`].
fn memory_slot(bytes: u64) -> u64 {
    let pages = bytes.div_ceil(WASM_PAGE).max(1);
    (pages.next_power_of_two() * WASM_PAGE).min(MAX_MEMORY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_rounds_up_to_a_power_of_two_and_caps_at_4_gib() {
        assert_eq!(memory_slot(64 << 20), 64 << 20);
        assert_eq!(memory_slot((64 << 20) + 1), 128 << 20);
        assert_eq!(memory_slot(1), WASM_PAGE);
        assert_eq!(memory_slot(3 << 30), 4 << 30);
        assert_eq!(memory_slot(u64::MAX / 2), MAX_MEMORY);
    }

    #[test]
    fn runs_scale_with_checks_within_bounds() {
        assert_eq!(PoolLimits::for_checks(0, 1).concurrent_runs, MIN_RUNS);
        assert_eq!(PoolLimits::for_checks(4, 1).concurrent_runs, 8);
        assert_eq!(PoolLimits::for_checks(10_000, 1).concurrent_runs, MAX_RUNS);
        // LVS checkers: one slot each, plus a reserve of an eighth (at least MIN_RUNS),
        // beside the scripts' two each.
        assert_eq!(PoolLimits::for_runs(0, 1, 1).concurrent_runs, 1 + MIN_RUNS);
        assert_eq!(PoolLimits::for_runs(2, 64, 1).concurrent_runs, 4 + 64 + 8);
        assert_eq!(PoolLimits::for_runs(0, 10_000, 1).concurrent_runs, MAX_RUNS);
    }

    fn config(text: &str) -> Config {
        let dir = std::env::temp_dir().join(format!("pool-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join(format!("{:x}.conf", text.len()));
        std::fs::write(&file, text).expect("write");
        let loaded = wasmalived_config::load(&file, Default::default()).expect("valid config");
        let _ = std::fs::remove_file(&file);
        loaded.config
    }

    #[test]
    fn sized_from_the_plugin_checks_and_their_largest_grant() {
        let c = config(
            "vrrp_script a {\n plugin /x/a.wasm\n memory_limit 200M\n}\n\
             vrrp_script b {\n plugin /x/b.wasm\n}\n\
             vrrp_script c {\n script \"/bin/true\"\n}\n",
        );
        let limits = PoolLimits::for_config(&c);
        assert_eq!(limits.concurrent_runs, MIN_RUNS.max(2 * RUNS_PER_CHECK));
        assert_eq!(limits.max_memory, 256 << 20);
    }

    #[test]
    fn keepalived_checkers_that_run_stock_plugins_get_slots_too() {
        // A pool of 100 TCP_CHECKs once got the minimum of 4 slots: checks that came due
        // together failed with "plugin instance pool exhausted".
        let rs = |n: u32, checker: &str| {
            format!(
                " real_server 192.0.2.{n} 80 {{\n  {checker} {{\n   connect_timeout 1\n  }}\n }}\n"
            )
        };
        let mut text = String::from("virtual_server 192.0.2.10 80 {\n");
        for n in 1..=5 {
            text += &rs(n, "TCP_CHECK");
        }
        text += &rs(
            6,
            "HTTP_GET {\n   url {\n    path /\n   }\n  }\n  TCP_CHECK",
        );
        text += &rs(7, "PING_CHECK");
        text += &rs(8, "MISC_CHECK {\n   misc_path /bin/true\n  }\n  TCP_CHECK");
        text += "}\n";
        let limits = PoolLimits::for_config(&config(&text));
        // 5 + 2 + 1 checkers run plugins (PING_CHECK and MISC_CHECK run on the host): one
        // slot each, and the smallest reserve.
        assert_eq!(limits.concurrent_runs, 8 + MIN_RUNS);
        // HTTP_GET's `http` buffers bodies for their digest: the default memory.
        assert_eq!(
            limits.max_memory,
            wasmalived_config::grants::DEFAULT_MEMORY_LIMIT
        );
    }

    #[test]
    fn a_pool_of_socket_checkers_reserves_their_small_memory_only() {
        // 100 TCP_CHECKs once reserved 13.6 GiB of address space: 200 slots of 64 MiB. Now
        // one slot of 8 MiB each, and a reserve of an eighth.
        let mut text = String::from("virtual_server 192.0.2.10 80 {\n");
        for n in 1..=100 {
            text += &format!(
                " real_server 192.0.2.{n} 80 {{\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n"
            );
        }
        text += "}\n";
        let limits = PoolLimits::for_config(&config(&text));
        assert_eq!(limits.concurrent_runs, 100 + 100 / PROBE_RESERVE_DIVISOR);
        assert_eq!(
            limits.max_memory,
            wasmalived_config::grants::SOCKET_CHECKER_MEMORY_LIMIT
        );
        // Without any plugin check, one-off runs get the default.
        let scripts_only =
            PoolLimits::for_config(&config("vrrp_script s {\n script /bin/true\n}\n"));
        assert_eq!(
            scripts_only.max_memory,
            wasmalived_config::grants::DEFAULT_MEMORY_LIMIT
        );
    }

    #[test]
    fn a_larger_config_is_a_shortfall_a_smaller_one_is_not() {
        let pool = PoolLimits::for_checks(4, 64 << 20);
        assert_eq!(pool.shortfall(&PoolLimits::for_checks(2, 1 << 20)), None);
        let more = pool
            .shortfall(&PoolLimits::for_checks(5, 64 << 20))
            .expect("more checks");
        assert!(more.contains("10 concurrent"), "{more}");
        let bigger = pool
            .shortfall(&PoolLimits::for_checks(1, 100 << 20))
            .expect("more memory");
        assert!(bigger.contains("128 MiB"), "{bigger}");
    }
}

//! The node the memory benchmark measures and the hot-symbol profile records: one VRRPv2
//! Master with the four stock plugin checks (nginx-process, http, tcp, disk-lock), each
//! `interval 1`, `fall 3`, `rise 2`, `weight -5`. Nothing listens on port 8080 and no nginx
//! runs, so every check fails, as it would with the service down.

use std::fs;

use crate::checks::{plugin_check, plugin_path, with_checks, CheckTiming};
use crate::config::Proto;
use crate::error::{LabError, Result};
use crate::lab::Lab;

/// The checks' schedule (the keepalived side of the memory benchmark uses the same).
pub const TIMING: CheckTiming = CheckTiming {
    interval: 1,
    timeout: None,
    fall: 3,
    rise: 2,
    weight: -5,
};

/// The daemon's environment as a production service runs it: `info` logs (the lab's default
/// is `debug`) and no backtraces (the lab's caller may have `RUST_BACKTRACE=1`, which makes
/// every failing check capture one: the unwinder and `.eh_frame` resident, ~0.9 MiB).
pub const PRODUCTION_ENV: &[(&str, &str)] = &[("RUST_LOG", "info"), ("RUST_BACKTRACE", "0")];

/// The checks' names, in the order of [`plugin_checks`].
pub const CHECKS: [&str; 4] = ["chk_process", "chk_http", "chk_tcp", "chk_lock"];

/// The stock plugins (crate names) the checks load, in the same order.
pub const PLUGINS: [&str; 4] = ["nginx_process", "http", "tcp", "disk_lock"];

/// The `vrrp_script` blocks of the four stock plugin checks for `node` (its disk-lock
/// directory is `<lab dir>/lock-<node>`).
pub fn plugin_checks(lab: &Lab, node: &str) -> Result<String> {
    let lock_dir = lab.dir().join(format!("lock-{node}"));
    fs::create_dir_all(&lock_dir).map_err(|e| LabError::io("creating the lock dir", e))?;
    let dir = lock_dir.display().to_string();
    Ok([
        plugin_check(
            CHECKS[0],
            &plugin_path(PLUGINS[0])?,
            &[("process", "nginx")],
            &["allow_processes netns"],
            &TIMING,
        ),
        plugin_check(
            CHECKS[1],
            &plugin_path(PLUGINS[1])?,
            &[("url", "http://127.0.0.1:8080/"), ("timeout_ms", "1000")],
            &["allow_http http://127.0.0.1:8080/"],
            &TIMING,
        ),
        plugin_check(
            CHECKS[2],
            &plugin_path(PLUGINS[2])?,
            &[("address", "127.0.0.1:8080"), ("timeout_ms", "1000")],
            &["allow_tcp 127.0.0.1:8080"],
            &TIMING,
        ),
        plugin_check(
            CHECKS[3],
            &plugin_path(PLUGINS[3])?,
            &[
                ("dir", dir.as_str()),
                ("node_id", node),
                ("lease_ms", "6000"),
                ("renew_margin_ms", "3000"),
            ],
            &[&format!("allow_dir {dir} rw")],
            &TIMING,
        ),
    ]
    .concat())
}

/// The whole wasmalived config of `node`: a VRRPv2 Master (priority 100) tracking the four
/// stock plugin checks.
pub fn config(lab: &Lab, node: &str) -> Result<String> {
    let conf = Proto::V2Pass.conf(node, "MASTER", 100).render();
    with_checks(&conf, &plugin_checks(lab, node)?, &CHECKS)
}

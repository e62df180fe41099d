//! Health checks in lab configs: `vrrp_script` blocks (keepalived's `script` form and
//! wasmalived's `plugin` form), `track_script` in the instance, the stock plugins' paths, and
//! the `checks` part of `wasmalived status --json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::Daemon;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::timing::wait_for;

/// A guest plugin built by `make plugins` (`plugin_<crate>.wasm`, e.g. `nginx_process`):
/// `$WASMALIVED_PLUGIN_DIR/…`, else `<target>/wasm32-wasip2/debug/…`, else `…/release/…`.
pub fn plugin_path(crate_name: &str) -> Result<PathBuf> {
    let file = format!("plugin_{crate_name}.wasm");
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("WASMALIVED_PLUGIN_DIR") {
        candidates.push(PathBuf::from(dir).join(&file));
    }
    let target = crate::daemon::target_dir();
    for profile in ["debug", "release"] {
        candidates.push(target.join("wasm32-wasip2").join(profile).join(&file));
    }
    for c in candidates {
        if c.is_file() {
            // Absolute and without `..`: configs name it and the daemon checks its path.
            return c
                .canonicalize()
                .map_err(|e| LabError::io(format!("resolving {}", c.display()), e));
        }
        tried.push(c.display().to_string());
    }
    Err(LabError::Missing(format!(
        "build the plugins first (`make plugins`): none of {tried:?} exists \
         (set WASMALIVED_PLUGIN_DIR to use another directory)"
    )))
}

/// Scheduling and priority effect of a check, as keepalived spells them.
#[derive(Clone, Copy, Debug)]
pub struct CheckTiming {
    /// `interval` in seconds.
    pub interval: u32,
    /// `timeout` in seconds (`None`: the daemon's default).
    pub timeout: Option<u32>,
    /// `fall`.
    pub fall: u32,
    /// `rise`.
    pub rise: u32,
    /// `weight` (0: Fault while down).
    pub weight: i32,
}

impl CheckTiming {
    /// The check interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval))
    }

    fn render(&self, s: &mut String) {
        let _ = writeln!(s, "    interval {}", self.interval);
        if let Some(t) = self.timeout {
            let _ = writeln!(s, "    timeout {t}");
        }
        let _ = writeln!(s, "    fall {}", self.fall);
        let _ = writeln!(s, "    rise {}", self.rise);
        let _ = writeln!(s, "    weight {}", self.weight);
    }
}

/// A `vrrp_script NAME { script "CMD" … }` block (keepalived's form).
pub fn script_check(name: &str, command: &str, timing: &CheckTiming) -> String {
    let mut s = format!("vrrp_script {name} {{\n    script \"{command}\"\n");
    timing.render(&mut s);
    s.push_str("}\n");
    s
}

/// A `vrrp_script NAME { plugin PATH … }` block: `params` become `param K V` lines, `grants`
/// are written as given (`allow_processes netns`, `remediation restart "/bin/true"`, …).
pub fn plugin_check(
    name: &str,
    plugin: &Path,
    params: &[(&str, &str)],
    grants: &[&str],
    timing: &CheckTiming,
) -> String {
    let mut s = format!("vrrp_script {name} {{\n    plugin {}\n", plugin.display());
    for (k, v) in params {
        let _ = writeln!(s, "    param {k} {v}");
    }
    for g in grants {
        let _ = writeln!(s, "    {g}");
    }
    timing.render(&mut s);
    s.push_str("}\n");
    s
}

/// A hostile check's timing: it fails (or burns its timeout) every run, and costs one
/// priority point.
pub const HOSTILE: CheckTiming = CheckTiming {
    interval: 1,
    timeout: Some(1),
    fall: 1,
    rise: 1,
    weight: -1,
};

/// `vrrp_script hostile_NAME` blocks for the hostile fixture plugins `plugins` (`busy_loop`,
/// `memory_bomb`, `trap`, `log_flood`…) with `timing`, and their names. `busy_loop` always
/// gets `timeout 0.9`: it burns 0.9 s of each 1 s interval.
pub fn hostile_checks(plugins: &[&str], timing: &CheckTiming) -> Result<(String, Vec<String>)> {
    let mut blocks = String::new();
    let mut names = Vec::new();
    for &hostile in plugins {
        let name = format!("hostile_{hostile}");
        let block = if hostile == "busy_loop" {
            let own = CheckTiming {
                timeout: Some(1),
                ..*timing
            };
            plugin_check(&name, &plugin_path(hostile)?, &[], &[], &own)
                .replace("    timeout 1\n", "    timeout 0.9\n")
        } else {
            plugin_check(&name, &plugin_path(hostile)?, &[], &[], timing)
        };
        blocks.push_str(&block);
        names.push(name);
    }
    Ok((blocks, names))
}

/// Adds `script_blocks` before the first `vrrp_instance` of a rendered config and a
/// `track_script { tracked }` to every instance.
pub fn with_checks(conf: &str, script_blocks: &str, tracked: &[&str]) -> Result<String> {
    let at = conf
        .find("vrrp_instance ")
        .ok_or_else(|| LabError::check("config has no vrrp_instance to add track_script to"))?;
    let mut track = String::from("    track_script {\n");
    for t in tracked {
        let _ = writeln!(track, "        {t}");
    }
    track.push_str("    }\n");
    let mut out = String::with_capacity(conf.len() + script_blocks.len() + 64);
    out.push_str(&conf[..at]);
    out.push_str(script_blocks);
    for line in conf[at..].split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with("vrrp_instance ") && line.trim_end().ends_with('{') {
            out.push_str(&track);
        }
    }
    Ok(out)
}

/// Inserts `lines` into `global_defs` (after its opening line).
pub fn with_global(conf: &str, lines: &[&str]) -> Result<String> {
    let at = conf
        .find("global_defs {\n")
        .ok_or_else(|| LabError::check("config has no global_defs block"))?
        + "global_defs {\n".len();
    let mut out = conf[..at].to_string();
    for l in lines {
        let _ = writeln!(out, "    {l}");
    }
    out.push_str(&conf[at..]);
    Ok(out)
}

/// One check in `wasmalived status --json`.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckStatus {
    /// `vrrp_script` name.
    pub name: String,
    /// `init`, `up`, `down` or `fatal`.
    pub state: String,
    /// The last result's reason or message.
    pub last: String,
    /// Runs finished.
    pub runs: u64,
    /// Runs started early because a watched process exited, path changed or server dropped
    /// its connection (event-driven checks).
    pub woken: u64,
    /// The TCP servers whose dropping the daemon's connection would run the check at once.
    pub wake_on_disconnect: Vec<String>,
}

/// The `checks` array of `wasmalived status --json`.
pub fn parse_check_status(json: &str) -> Result<Vec<CheckStatus>> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| LabError::parse("wasmalived status JSON", json))?;
    let list = v
        .get("checks")
        .and_then(|c| c.as_array())
        .ok_or_else(|| LabError::parse("wasmalived status JSON (no \"checks\" array)", json))?;
    list.iter()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(|x| x.as_str()).map(str::to_string);
            Ok(CheckStatus {
                name: s("name").ok_or_else(|| LabError::parse("check without name", json))?,
                state: s("state").ok_or_else(|| LabError::parse("check without state", json))?,
                last: s("last").unwrap_or_default(),
                runs: c
                    .get("runs")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
                woken: c
                    .get("woken")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
                wake_on_disconnect: c
                    .get("wake_on_disconnect")
                    .and_then(serde_json::Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

impl Daemon {
    /// One check's status (wasmalived only).
    pub fn check_status(&self, check: &str) -> Result<CheckStatus> {
        parse_check_status(&self.status_json()?)?
            .into_iter()
            .find(|c| c.name == check)
            .ok_or_else(|| LabError::check(format!("{} reports no check {check}", self.describe())))
    }
}

impl Lab {
    /// Waits until wasmalived reports `check` in `state` (`up`, `down`, `fatal`).
    pub fn wait_check(
        &self,
        daemon: &Daemon,
        check: &str,
        state: &str,
        timeout: Duration,
    ) -> Result<Duration> {
        wait_for(
            &format!("check {check} of {} to be {state}", daemon.describe()),
            timeout,
            Duration::from_millis(50),
            || Ok(daemon.check_status(check)?.state == state),
            || {
                format!(
                    "check now: {:?}\n{}",
                    daemon.check_status(check).ok(),
                    daemon.proc.log_tail(25)
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: CheckTiming = CheckTiming {
        interval: 1,
        timeout: None,
        fall: 2,
        rise: 1,
        weight: -10,
    };

    #[test]
    fn blocks_and_tracking_are_inserted() {
        let conf =
            "global_defs {\n    router_id n1\n}\nvrrp_instance VI_1 {\n    state MASTER\n}\n";
        let block = plugin_check(
            "chk",
            Path::new("/p/x.wasm"),
            &[("process", "nginx")],
            &["allow_processes netns"],
            &T,
        );
        let out = with_checks(conf, &block, &["chk"]).unwrap();
        let s = out.find("vrrp_script chk {").unwrap();
        let i = out.find("vrrp_instance VI_1 {").unwrap();
        assert!(s < i);
        assert!(out.contains("vrrp_instance VI_1 {\n    track_script {\n        chk\n    }\n"));
        assert!(out.contains("    plugin /p/x.wasm\n    param process nginx\n"));
        assert!(out.contains("    weight -10\n"));
        let out = with_global(&out, &["enable_script_security"]).unwrap();
        assert!(out.starts_with("global_defs {\n    enable_script_security\n    router_id n1\n"));
        assert!(with_checks("global_defs {\n}\n", "", &["x"]).is_err());
    }

    #[test]
    fn script_block_quotes_the_command() {
        let b = script_check("chk", "/t/chk.sh arg", &T);
        assert!(b.starts_with("vrrp_script chk {\n    script \"/t/chk.sh arg\"\n"));
    }

    #[test]
    fn check_status_is_parsed() {
        let c = parse_check_status(
            r#"{"instances":[],"checks":[{"name":"chk","state":"down","runner":"r",
            "last":"0 nginx","measurements":{"count":0.0}}]}"#,
        )
        .unwrap();
        assert_eq!(c[0].state, "down");
        assert_eq!(c[0].last, "0 nginx");
        assert_eq!((c[0].runs, c[0].woken), (0, 0), "absent counters read as 0");
        assert!(parse_check_status(r#"{"instances":[]}"#).is_err());
    }
}

//! Starting VRRP daemons in the lab — keepalived (the reference peer) and wasmalived (the
//! implementation under test) — with the same shape: config text in, [`Daemon`] out.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::process::Proc;
use crate::timing::wait_for;

static DAEMON_SEQ: AtomicU32 = AtomicU32::new(0);

/// Which VRRP implementation a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// Debian's keepalived 2.2.7.
    Keepalived,
    /// Ours.
    Wasmalived,
}

impl Impl {
    /// `keepalived` / `wasmalived`.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Keepalived => "keepalived",
            Impl::Wasmalived => "wasmalived",
        }
    }

    /// Parses a comma-separated list of implementation names (a bench's `--impl` value).
    pub fn parse_list(list: &str) -> std::result::Result<Vec<Impl>, String> {
        list.split(',')
            .map(|s| match s {
                "keepalived" => Ok(Impl::Keepalived),
                "wasmalived" => Ok(Impl::Wasmalived),
                x => Err(format!("unknown implementation {x:?}")),
            })
            .collect()
    }
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The wasmalived binary: `$WASMALIVED_BIN`, else `$CARGO_TARGET_DIR/debug/wasmalived`, else
/// `<workspace>/target/debug/wasmalived`. Fails with "build wasmalived first" if absent.
pub fn wasmalived_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("WASMALIVED_BIN") {
        Some(p) => PathBuf::from(p),
        None => target_dir().join("debug/wasmalived"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::Missing(format!(
            "build wasmalived first (`cargo build -p wasmalived`): {} does not exist \
             (set WASMALIVED_BIN to use another binary)",
            path.display()
        )))
    }
}

/// For a benchmark: copies wasmalived and the stock `plugins` (crate names, as
/// [`plugin_path`](crate::checks::plugin_path) finds them) into a private directory named
/// after `tag` and points `WASMALIVED_BIN` / `WASMALIVED_PLUGIN_DIR` at the copies, so that a
/// long series uses one build whatever is rebuilt meanwhile. Call it before any other thread
/// reads the environment. Returns the directory.
pub fn pin_binaries(tag: &str, plugins: &[&str]) -> Result<PathBuf> {
    let bin = wasmalived_bin()?;
    let dir = Path::new(crate::lab::LAB_ROOT).join(format!("{tag}-bin-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    let copy = |from: &Path, name: &std::ffi::OsStr| -> Result<()> {
        let to = dir.join(name);
        fs::copy(from, &to)
            .map(|_| ())
            .map_err(|e| LabError::io(format!("copying {} to {}", from.display(), to.display()), e))
    };
    copy(&bin, "wasmalived".as_ref())?;
    let mut used = vec![bin.display().to_string()];
    for p in plugins {
        let path = crate::checks::plugin_path(p)?;
        copy(&path, path.file_name().unwrap_or_default())?;
        used.push(path.display().to_string());
    }
    std::env::set_var("WASMALIVED_BIN", dir.join("wasmalived"));
    std::env::set_var("WASMALIVED_PLUGIN_DIR", &dir);
    eprintln!("using {} (copied to {})", used.join(", "), dir.display());
    Ok(dir)
}

/// One instance in `wasmalived status --json`.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceStatus {
    /// Instance name.
    pub name: String,
    /// `MASTER`, `BACKUP`, `FAULT` or `INIT`.
    pub state: String,
    /// Configured priority.
    pub priority: i64,
    /// Priority after tracking.
    pub effective_priority: i64,
    /// Receive/transmit counters by name (`rx_auth_mismatch`, ...).
    pub counters: BTreeMap<String, u64>,
}

impl InstanceStatus {
    /// A counter's value; 0 when the daemon does not report it.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Parses `wasmalived status --json`:
/// `{"instances":[{"name":..,"state":..,"priority":N,"effective_priority":N,"counters":{..}}]}`.
pub fn parse_status(json: &str) -> Result<Vec<InstanceStatus>> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| LabError::parse("wasmalived status JSON", json))?;
    let bad = |what: &str| LabError::parse(format!("wasmalived status JSON ({what})"), json);
    let list = v
        .get("instances")
        .and_then(|i| i.as_array())
        .ok_or_else(|| bad("no \"instances\" array"))?;
    let mut out = Vec::new();
    for inst in list {
        let s = |k: &str| inst.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let n = |k: &str| inst.get(k).and_then(|x| x.as_i64());
        let mut counters = BTreeMap::new();
        if let Some(map) = inst.get("counters").and_then(|c| c.as_object()) {
            for (k, val) in map {
                if let Some(x) = val.as_u64() {
                    counters.insert(k.clone(), x);
                }
            }
        }
        out.push(InstanceStatus {
            name: s("name").ok_or_else(|| bad("instance without \"name\""))?,
            state: s("state").ok_or_else(|| bad("instance without \"state\""))?,
            priority: n("priority").ok_or_else(|| bad("instance without \"priority\""))?,
            effective_priority: n("effective_priority")
                .ok_or_else(|| bad("instance without \"effective_priority\""))?,
            counters,
        });
    }
    Ok(out)
}

/// One `vrrp_track_process` in `wasmalived status --json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedProcessStatus {
    /// The block's name.
    pub name: String,
    /// Matching processes running.
    pub count: u64,
    /// Whether it has quorum (what the tracking instances see).
    pub up: bool,
}

/// The `"tracked_processes"` of `wasmalived status --json` (an empty list when absent).
pub fn parse_tracked_processes(json: &str) -> Result<Vec<TrackedProcessStatus>> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| LabError::parse("wasmalived status JSON", json))?;
    let bad = |what: &str| LabError::parse(format!("wasmalived status JSON ({what})"), json);
    let Some(list) = v.get("tracked_processes").and_then(|l| l.as_array()) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|p| {
            Ok(TrackedProcessStatus {
                name: p
                    .get("name")
                    .and_then(|x| x.as_str())
                    .ok_or_else(|| bad("tracked process without \"name\""))?
                    .to_string(),
                count: p
                    .get("count")
                    .and_then(|x| x.as_u64())
                    .ok_or_else(|| bad("tracked process without \"count\""))?,
                up: p
                    .get("up")
                    .and_then(|x| x.as_bool())
                    .ok_or_else(|| bad("tracked process without \"up\""))?,
            })
        })
        .collect()
}

/// A VRRP daemon running on a lab node.
pub struct Daemon {
    /// keepalived or wasmalived.
    pub kind: Impl,
    /// The node it runs on.
    pub node: String,
    /// Its namespace.
    pub ns: String,
    /// The process (group leader).
    pub proc: Proc,
    /// Its config file.
    pub conf: PathBuf,
    /// keepalived: the pid-file directory; wasmalived: `--state-dir`.
    pub state_dir: PathBuf,
    bin: PathBuf,
}

impl Daemon {
    /// "wasmalived on n1 (log /tmp/...)" for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} on {} (log {})",
            self.kind.name(),
            self.node,
            self.proc.log_path().display()
        )
    }

    /// A real crash: SIGKILL to the whole process group (VIPs stay on the node).
    pub fn crash(&self) -> Result<()> {
        self.proc.kill9_group()
    }

    /// SIGTERM: the graceful stop (priority-0 advert, VIPs removed).
    pub fn term(&self) -> Result<()> {
        self.proc.term()
    }

    /// Waits for the daemon to exit; an error if it is still running after `timeout`.
    pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus> {
        self.proc.wait_exit(timeout)?.ok_or_else(|| {
            LabError::check(format!(
                "{} still running {timeout:?} after being asked to stop\n{}",
                self.describe(),
                self.proc.log_tail(20)
            ))
        })
    }

    /// The raw `wasmalived status --state-dir DIR --json` document (wasmalived only).
    pub fn status_json(&self) -> Result<String> {
        if self.kind != Impl::Wasmalived {
            return Err(LabError::check(format!(
                "status JSON is a wasmalived feature; {} has none",
                self.describe()
            )));
        }
        let bin = self.bin.to_string_lossy().into_owned();
        let dir = self.state_dir.to_string_lossy().into_owned();
        crate::cmd::run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            &bin,
            "status",
            "--state-dir",
            &dir,
            "--json",
        ])
    }

    /// `wasmalived status --state-dir DIR --json`, parsed (wasmalived only).
    pub fn status(&self) -> Result<Vec<InstanceStatus>> {
        parse_status(&self.status_json()?)
    }

    /// One `vrrp_track_process`'s status line (wasmalived only).
    pub fn tracked_process(&self, name: &str) -> Result<TrackedProcessStatus> {
        parse_tracked_processes(&self.status_json()?)?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                LabError::check(format!(
                    "{} reports no tracked process {name}",
                    self.describe()
                ))
            })
    }

    /// One instance's status (wasmalived only).
    pub fn instance_status(&self, instance: &str) -> Result<InstanceStatus> {
        self.status()?
            .into_iter()
            .find(|i| i.name == instance)
            .ok_or_else(|| {
                LabError::check(format!(
                    "{} reports no instance {instance}",
                    self.describe()
                ))
            })
    }

    /// The instance's current state: from `status --json` for wasmalived, from the last
    /// "(NAME) Entering X STATE" log line for keepalived. `None` if not known yet.
    pub fn state(&self, instance: &str) -> Result<Option<String>> {
        match self.kind {
            Impl::Wasmalived => Ok(Some(self.instance_status(instance)?.state)),
            Impl::Keepalived => {
                let log = fs::read_to_string(self.proc.log_path()).unwrap_or_default();
                let marker = format!("({instance}) Entering ");
                Ok(log
                    .lines()
                    .rev()
                    .find_map(|l| l.split_once(&marker).map(|(_, r)| r))
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_string))
            }
        }
    }
}

impl Lab {
    /// Writes `config` to `<node>-<impl>-<seq>.conf` and starts `kind` on `node` in the
    /// foreground with logs to the console (captured in `<node>-<impl>-<seq>.log`).
    ///
    /// keepalived: `keepalived -n -l -D -G -P -f CONF -p RUN/k.pid -r RUN/v.pid -c RUN/c.pid
    /// -b RUN/b.pid` (VRRP only, no syslog), with stale pid files removed first (a crash
    /// leaves them and keepalived would refuse to start). wasmalived: `wasmalived -n -l -D -f
    /// CONF --state-dir DIR`; its state dir is kept across restarts, as on a real host.
    pub fn start_daemon(&self, kind: Impl, node: &str, config: &str) -> Result<Daemon> {
        self.start_daemon_env(kind, node, config, &[])
    }

    /// [`Lab::start_daemon`] with extra environment variables for the daemon (wasmalived's
    /// `WASMALIVED_FAULT` fault injection, for example).
    pub fn start_daemon_env(
        &self,
        kind: Impl,
        node: &str,
        config: &str,
        env: &[(&str, &str)],
    ) -> Result<Daemon> {
        self.start_daemon_wrapped(kind, node, config, env, &[])
    }

    /// [`Lab::start_daemon_env`] with the daemon's command line prefixed by `wrapper`, a
    /// program that execs it (e.g. `setpriv ... --`), so the pid is still the daemon's.
    pub fn start_daemon_wrapped(
        &self,
        kind: Impl,
        node: &str,
        config: &str,
        env: &[(&str, &str)],
        wrapper: &[&str],
    ) -> Result<Daemon> {
        self.start_daemon_at(kind, node, config, env, wrapper, false)
    }

    /// [`Lab::start_daemon`] from the initial network namespace, with `net_namespace NS`
    /// (`node`'s namespace) put first in `config`: the daemon opens the process connector,
    /// then enters the node's namespace itself, as keepalived does.
    pub fn start_daemon_net_namespace(
        &self,
        kind: Impl,
        node: &str,
        config: &str,
    ) -> Result<Daemon> {
        let ns = self.node(node)?.ns.clone();
        let config = format!("net_namespace {ns}\n{config}");
        self.start_daemon_at(kind, node, &config, &[], &[], true)
    }

    fn start_daemon_at(
        &self,
        kind: Impl,
        node: &str,
        config: &str,
        env: &[(&str, &str)],
        wrapper: &[&str],
        in_root: bool,
    ) -> Result<Daemon> {
        let ns = self.node(node)?.ns.clone();
        let run_in = if in_root { None } else { Some(ns.as_str()) };
        let seq = DAEMON_SEQ.fetch_add(1, Ordering::SeqCst);
        let base = format!("{node}-{}-{seq}", kind.name());
        let conf = self.dir().join(format!("{base}.conf"));
        fs::write(&conf, config)
            .map_err(|e| LabError::io(format!("writing {}", conf.display()), e))?;
        let state_dir = self.dir().join(format!("{node}-{}-state", kind.name()));
        fs::create_dir_all(&state_dir)
            .map_err(|e| LabError::io(format!("creating {}", state_dir.display()), e))?;
        let log = self.dir().join(format!("{base}.log"));
        let c = conf.to_string_lossy().into_owned();
        let (bin, proc) = match kind {
            Impl::Keepalived => {
                let pid = |f: &str| state_dir.join(f).to_string_lossy().into_owned();
                for f in ["k.pid", "v.pid", "c.pid", "b.pid"] {
                    let _ = fs::remove_file(state_dir.join(f));
                }
                let (k, v, ch, b) = (pid("k.pid"), pid("v.pid"), pid("c.pid"), pid("b.pid"));
                let argv = [
                    wrapper,
                    &[
                        "keepalived",
                        "-n",
                        "-l",
                        "-D",
                        "-G",
                        "-P",
                        "-f",
                        &c,
                        "-p",
                        &k,
                        "-r",
                        &v,
                        "-c",
                        &ch,
                        "-b",
                        &b,
                    ],
                ]
                .concat();
                let label = format!("{node} keepalived");
                (
                    PathBuf::from("keepalived"),
                    self.spawn_at(run_in, &label, &argv, &log, &[])?,
                )
            }
            Impl::Wasmalived => {
                let bin = wasmalived_bin()?;
                let b = bin.to_string_lossy().into_owned();
                let sd = state_dir.to_string_lossy().into_owned();
                let argv = [
                    wrapper,
                    &[b.as_str(), "-n", "-l", "-D", "-f", &c, "--state-dir", &sd],
                ]
                .concat();
                let label = format!("{node} wasmalived");
                (
                    bin.clone(),
                    self.spawn_at(
                        run_in,
                        &label,
                        &argv,
                        &log,
                        &[(
                            "RUST_LOG",
                            "debug,cranelift=info,wasmtime=info,wasmtime_cranelift=info",
                        )]
                        .into_iter()
                        .chain(env.iter().copied())
                        .collect::<Vec<_>>(),
                    )?,
                )
            }
        };
        Ok(Daemon {
            kind,
            node: node.to_string(),
            ns,
            proc,
            conf,
            state_dir,
            bin,
        })
    }

    /// Waits until `daemon` reports `state` for `instance` (and is still running).
    pub fn wait_state(
        &self,
        daemon: &Daemon,
        instance: &str,
        state: &str,
        timeout: Duration,
    ) -> Result<Duration> {
        wait_for(
            &format!("{instance} of {} to be {state}", daemon.describe()),
            timeout,
            Duration::from_millis(20),
            || {
                if let Some(st) = daemon.proc.try_status()? {
                    return Err(LabError::check(format!(
                        "{} exited ({st})",
                        daemon.describe()
                    )));
                }
                Ok(daemon.state(instance)?.as_deref() == Some(state))
            },
            || {
                format!(
                    "state now: {:?}\n{}",
                    daemon.state(instance).ok().flatten(),
                    self.log_summary(25)
                )
            },
        )
    }

    /// Waits until wasmalived's `counter` for `instance` reaches at least `at_least`.
    pub fn wait_for_counter(
        &self,
        daemon: &Daemon,
        instance: &str,
        counter: &str,
        at_least: u64,
        timeout: Duration,
    ) -> Result<Duration> {
        wait_for(
            &format!(
                "counter {counter} of {instance} on {} to reach {at_least}",
                daemon.describe()
            ),
            timeout,
            Duration::from_millis(50),
            || Ok(daemon.instance_status(instance)?.counter(counter) >= at_least),
            || {
                format!(
                    "status now: {:?}\n{}",
                    daemon.instance_status(instance).ok(),
                    daemon.proc.log_tail(25)
                )
            },
        )
    }

    /// A node crash: SIGKILL to the daemon's process group, then the VIPs it held are
    /// removed from the node (a dead machine no longer answers for them; a killed process
    /// leaves them configured in the kernel).
    pub fn crash(&self, daemon: &Daemon, vips: &[&str]) -> Result<()> {
        daemon.crash()?;
        for v in vips {
            self.del_addr(&daemon.node, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_is_parsed() {
        let s = parse_status(
            r#"{"instances":[{"name":"VI_1","state":"MASTER","priority":100,
            "effective_priority":95,"counters":{"rx_auth_mismatch":3,"tx_adverts":10}}]}"#,
        )
        .unwrap();
        assert_eq!(s[0].state, "MASTER");
        assert_eq!(s[0].effective_priority, 95);
        assert_eq!(s[0].counter("rx_auth_mismatch"), 3);
        assert_eq!(s[0].counter("absent"), 0);
        assert!(parse_status("{}").is_err());
        assert!(parse_status("not json").is_err());
        assert!(parse_status(r#"{"instances":[{"name":"VI_1"}]}"#).is_err());
    }

    #[test]
    fn tracked_processes_are_parsed() {
        let p = parse_tracked_processes(
            r#"{"instances":[],"tracked_processes":[{"name":"nginx","count":2,"quorum":1,"up":true}]}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            [TrackedProcessStatus {
                name: "nginx".into(),
                count: 2,
                up: true
            }]
        );
        assert!(parse_tracked_processes(r#"{"instances":[]}"#)
            .unwrap()
            .is_empty());
        assert!(parse_tracked_processes(r#"{"tracked_processes":[{"name":"x"}]}"#).is_err());
    }
}

//! keepalived compatibility, file by file: `wasmalived -t` against `keepalived -t` and a
//! short real run of keepalived, in a namespace that has the interfaces the files name.
//!
//! For each corpus file ([`corpus`]):
//! 1. **Verdict.** keepalived *runs* a file when `keepalived -t` exits 0 (clean), 5
//!    (warnings) or 6 (script-security warnings) **and** a real start (`keepalived -n -d -P`)
//!    does not stop by itself: some configurations pass `-t` with exit 5 and are then
//!    refused at start (duplicate VRIDs, a VRRPv3 instance without VIPs, an `includea`
//!    that matches nothing). wasmalived runs it when `wasmalived -t` exits 0. Both must run
//!    the file, or both refuse it — except that wasmalived may refuse a file only for a
//!    `BFD_CHECK` (wasmalived has no BFD), a known difference.
//!    LVS files are run with the stock `tcp`/`http` plugins at hand (`plugin_dir` set on a
//!    copy, line numbers kept), since `-t` loads the plugins the checkers run.
//! 2. **Messages** ([`messages`]): where keepalived reports something on a line, wasmalived
//!    reports on that line too, saying what it ignored or used instead.
//! 3. **Values** ([`effective`]): the VRRP values of keepalived's dump (`-d`, printed by
//!    the real start) and of `wasmalived --dump-config` are the same: per instance version,
//!    state, interface, VRID, priority, advert interval, preemption, authentication, strict
//!    and accept modes, VIPs, unicast peers, sync group, tracked scripts and interfaces; per
//!    tracked script interval, weight, rise and fall.
//!
//! The real keepalived start runs the file's check and notify programs; the corpus only
//! uses harmless ones ([`corpus::check_programs_are_harmless`]).

pub mod corpus;
pub mod effective;
pub mod messages;

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::wasmalived_bin;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use messages::Verdict;

/// The node of the comparison lab.
pub const NODE: &str = "n1";
/// Extra interfaces get addresses here (198.51.100.11, .12, …).
const EXTRA_NET: &str = "198.51.100";

/// How long a real keepalived start may take to print its dump.
const DUMP_WAIT: Duration = Duration::from_secs(8);
/// A start without VRRP configuration prints no dump; after this long it counts as running.
const SETTLE: Duration = Duration::from_millis(1500);

/// A lab with one node whose namespace has `eth0` plus every interface `files` name.
pub fn lab_for(test: &str, files: &[std::path::PathBuf]) -> Result<Lab> {
    let mut lab = Lab::new(test)?;
    lab.add_node(NODE, "192.0.2.10/24", "2001:db8::10/64")?;
    let mut names = std::collections::BTreeSet::new();
    for f in files {
        let text = fs::read_to_string(f)
            .map_err(|e| LabError::io(format!("reading {}", f.display()), e))?;
        names.extend(corpus::interfaces(&text));
        names.extend(corpus::directives(&text).interfaces);
        for inc in include_files(f) {
            if let Ok(t) = fs::read_to_string(&inc) {
                names.extend(corpus::interfaces(&t));
            }
        }
    }
    for name in ["eth1", "eth2", "eth3"] {
        names.insert(name.to_owned());
    }
    names.remove("eth0");
    for (i, name) in names.iter().enumerate() {
        let addr = format!("{EXTRA_NET}.{}/24", 11 + i);
        lab.add_local_link(NODE, name, &format!("kp{i}"), Some(&addr))?;
    }
    Ok(lab)
}

/// Files under `<file>.d/`, which a corpus file may include.
fn include_files(file: &Path) -> Vec<std::path::PathBuf> {
    let dir = file.with_extension("d");
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// What keepalived did with a file.
#[derive(Debug, Clone)]
pub struct KeepalivedRun {
    /// `keepalived -t` exit status.
    pub test_exit: i32,
    /// `keepalived -t` stderr.
    pub test_stderr: String,
    /// Whether the real start stopped by itself (refused), with its exit code.
    pub refused: Option<i32>,
    /// The log lines of the real start, timestamps removed.
    pub log: Vec<String>,
    /// Why the real start says nothing about the configuration, when this machine is the
    /// reason (the verdict then comes from `-t` alone and values are not compared).
    pub environment: Option<String>,
}

impl KeepalivedRun {
    /// keepalived runs the file.
    pub fn runs(&self) -> bool {
        matches!(self.test_exit, 0 | 5 | 6) && self.refused.is_none()
    }
}

/// What wasmalived did with a file.
#[derive(Debug, Clone)]
pub struct WasmalivedRun {
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `keepalived -t`, then a real keepalived until its dump is printed.
pub fn run_keepalived(
    lab: &Lab,
    file: &Path,
    config_id: Option<&str>,
    tag: &str,
) -> Result<KeepalivedRun> {
    let text = fs::read_to_string(file)
        .map_err(|e| LabError::io(format!("reading {}", file.display()), e))?;
    corpus::check_programs_are_harmless(&text, file)?;
    let path = file.to_string_lossy().into_owned();
    let mut argv = vec!["keepalived", "-t", "-f", &path];
    if let Some(id) = config_id {
        argv.extend(["-i", id]);
    }
    let out = lab.exec(NODE, &argv)?;
    let test_exit = out.status.code().unwrap_or(-1);
    let test_stderr = String::from_utf8_lossy(&out.stderr).into_owned();

    let dir = lab.dir().join(format!("ka-{tag}"));
    fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    let pid = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (p, r, c, b) = (
        pid("main.pid"),
        pid("vrrp.pid"),
        pid("checker.pid"),
        pid("bfd.pid"),
    );
    let mut argv = vec![
        "keepalived",
        "-n",
        "-l",
        "-G",
        "-d",
        "-P",
        "-p",
        &p,
        "-r",
        &r,
        "-c",
        &c,
        "-b",
        &b,
        "-f",
        &path,
    ];
    if let Some(id) = config_id {
        argv.extend(["-i", id]);
    }
    let log = dir.join("keepalived.log");
    let proc = lab.spawn(NODE, &argv, &log)?;
    let start = Instant::now();
    let has_vrrp = text.contains("vrrp_instance") || text.contains('$') || text.contains("include");
    let mut refused = None;
    loop {
        if let Some(status) = proc.try_status()? {
            refused = Some(status.code().unwrap_or(-1));
            break;
        }
        let dumped =
            fs::read_to_string(&log).is_ok_and(|l| l.contains("------< Interfaces >------"));
        if dumped {
            std::thread::sleep(Duration::from_millis(300));
            if let Some(status) = proc.try_status()? {
                refused = Some(status.code().unwrap_or(-1));
            }
            break;
        }
        let waited = start.elapsed();
        if (!has_vrrp && waited > SETTLE) || waited > DUMP_WAIT {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if refused.is_none() {
        proc.term()?;
        let _ = proc.wait_exit(Duration::from_secs(5))?;
    }
    let log: Vec<String> = fs::read_to_string(&log)
        .map_err(|e| LabError::io(format!("reading {}", log.display()), e))?
        .lines()
        .map(|l| l.split_once(": ").map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    let mut environment = None;
    if refused.is_some()
        && log
            .iter()
            .any(|l| l.contains("IPVS: Can't initialize ipvs"))
    {
        environment = Some(
            "keepalived stopped at start because this kernel has no IPVS (lvs_sync_daemon needs it): its verdict comes from -t, its values are not compared".to_owned(),
        );
        refused = None;
    }
    Ok(KeepalivedRun {
        test_exit,
        test_stderr,
        refused,
        log,
        environment,
    })
}

/// Runs `wasmalived -t --dump-config`. A file with `virtual_server`s is run as a copy
/// ([`with_stock_plugins`]) so its `TCP_CHECK`/`HTTP_GET`/`SSL_GET` checkers find the stock
/// plugins they run (`-t` loads them; this machine has no `/etc/wasmalived/plugins`).
pub fn run_wasmalived(
    lab: &Lab,
    file: &Path,
    config_id: Option<&str>,
    tag: &str,
) -> Result<WasmalivedRun> {
    let bin = wasmalived_bin()?.to_string_lossy().into_owned();
    let file = with_stock_plugins(lab, file, tag)?;
    let path = file.to_string_lossy().into_owned();
    let state = lab
        .dir()
        .join("wasmalived-state")
        .to_string_lossy()
        .into_owned();
    let mut argv = vec![
        bin.as_str(),
        "-t",
        "--dump-config",
        "--state-dir",
        &state,
        "-f",
        &path,
    ];
    if let Some(id) = config_id {
        argv.extend(["-i", id]);
    }
    let out = lab.exec(NODE, &argv)?;
    Ok(WasmalivedRun {
        exit: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `file` itself, or, when it has `virtual_server`s and includes nothing, a copy under the
/// lab directory (same file name, so messages still match keepalived's) with `plugin_dir`
/// set, on the line that opens `global_defs`, to a directory holding the stock `tcp` and
/// `http` plugins; every other line keeps its number.
fn with_stock_plugins(lab: &Lab, file: &Path, tag: &str) -> Result<std::path::PathBuf> {
    let text = fs::read_to_string(file)
        .map_err(|e| LabError::io(format!("reading {}", file.display()), e))?;
    let lvs = text
        .lines()
        .map(corpus::strip_comment)
        .any(|l| l.trim_start().starts_with("virtual_server"));
    let includes = text
        .lines()
        .map(corpus::strip_comment)
        .any(|l| l.trim_start().starts_with("include"));
    let Some(name) = file.file_name() else {
        return Ok(file.to_path_buf());
    };
    if !lvs || includes {
        return Ok(file.to_path_buf());
    }
    let plugins = lab.dir().join("stock-plugins");
    fs::create_dir_all(&plugins).map_err(|e| LabError::io("creating the plugin dir", e))?;
    for krate in crate::lvs::STOCK_CHECKERS {
        let to = plugins.join(format!("{krate}.wasm"));
        if !to.exists() {
            fs::copy(crate::checks::plugin_path(krate)?, &to)
                .map_err(|e| LabError::io(format!("copying {}", to.display()), e))?;
        }
    }
    let setting = format!(" plugin_dir {}", plugins.display());
    let text = match text.find("global_defs {") {
        Some(i) => {
            let at = i + "global_defs {".len();
            format!("{}{setting}{}", &text[..at], &text[at..])
        }
        None => format!("global_defs {{{setting} }} {text}"),
    };
    let dir = lab.dir().join("wasmalived-files").join(tag);
    fs::create_dir_all(&dir).map_err(|e| LabError::io("creating the copy dir", e))?;
    let copy = dir.join(name);
    fs::write(&copy, text).map_err(|e| LabError::io(format!("writing {}", copy.display()), e))?;
    Ok(copy)
}

/// The checker keepalived has and wasmalived refuses (`BFD_CHECK`: no BFD): a file
/// keepalived runs that wasmalived refuses only because of it is a known difference.
const LVS_REFUSED: &str = "wasmalived has no BFD";

/// The comparison of one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub file: String,
    pub keepalived_runs: bool,
    pub wasmalived_runs: bool,
    /// keepalived's `-t` exit and, if it refused at start, its exit.
    pub keepalived_detail: String,
    /// Each keepalived message and its verdict.
    pub messages: Vec<(messages::KeepalivedMessage, Verdict)>,
    /// Effective values that differ.
    pub value_differences: Vec<String>,
    /// Known, documented differences (with their reasons) and notes on what was not compared.
    pub notes: Vec<String>,
    /// keepalived runs the file and wasmalived refuses it only for a documented reason (a
    /// checker not implemented yet): what that reason is.
    pub known_refusal: Option<String>,
    /// wasmalived's stderr (for the report).
    pub wasmalived_stderr: String,
}

impl FileReport {
    /// Whether both agree on everything compared.
    pub fn agrees(&self) -> bool {
        (self.keepalived_runs == self.wasmalived_runs || self.known_refusal.is_some())
            && self.value_differences.is_empty()
            && !self
                .messages
                .iter()
                .any(|(_, v)| matches!(v, Verdict::Missing(_)))
    }
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = |runs: bool| if runs { "runs" } else { "refuses" };
        writeln!(
            f,
            "{} {}: keepalived {} ({}), wasmalived {}",
            if self.agrees() {
                "AGREE   "
            } else {
                "DISAGREE"
            },
            self.file,
            verdict(self.keepalived_runs),
            self.keepalived_detail,
            verdict(self.wasmalived_runs)
        )?;
        for (m, v) in &self.messages {
            let place = match (&m.file, m.line) {
                (_, None) => "-".to_owned(),
                (Some(f), Some(l)) => format!("{}:{l}", f.rsplit('/').next().unwrap_or(f)),
                (None, Some(l)) => format!("line {l}"),
            };
            let v = match v {
                Verdict::Matched => "matched".to_owned(),
                Verdict::NotCompared(why) => format!("not compared: {why}"),
                Verdict::Missing(why) => format!("MISSING: {why}"),
            };
            writeln!(f, "    keepalived {place}: {} [{v}]", m.text)?;
        }
        for d in &self.value_differences {
            writeln!(f, "    VALUE {d}")?;
        }
        if let Some(why) = &self.known_refusal {
            writeln!(
                f,
                "    NOTE known difference: wasmalived refuses the file: {why}"
            )?;
        }
        for n in &self.notes {
            writeln!(f, "    NOTE {n}")?;
        }
        if !self.agrees() {
            for l in self.wasmalived_stderr.lines() {
                writeln!(f, "    wasmalived: {l}")?;
            }
        }
        Ok(())
    }
}

/// Compares one corpus file.
pub fn compare(lab: &Lab, file: &Path, tag: &str) -> Result<FileReport> {
    let text = fs::read_to_string(file)
        .map_err(|e| LabError::io(format!("reading {}", file.display()), e))?;
    let directives = corpus::directives(&text);
    let id = directives.config_id.as_deref();
    let k = run_keepalived(lab, file, id, tag)?;
    let w = run_wasmalived(lab, file, id, tag)?;
    let keepalived_runs = k.runs();
    let wasmalived_runs = w.exit == 0;
    let mut report = FileReport {
        file: file
            .strip_prefix(corpus::root())
            .unwrap_or(file)
            .display()
            .to_string(),
        keepalived_runs,
        wasmalived_runs,
        keepalived_detail: match k.refused {
            Some(code) => format!("-t exit {}, stopped at start with exit {code}", k.test_exit),
            None => format!("-t exit {}", k.test_exit),
        },
        messages: Vec::new(),
        value_differences: Vec::new(),
        notes: k.environment.iter().cloned().collect(),
        wasmalived_stderr: w.stderr.clone(),
        known_refusal: None,
    };
    if keepalived_runs && !wasmalived_runs {
        let errors: Vec<&str> = w
            .stderr
            .lines()
            .filter(|l| l.contains(": error: "))
            .collect();
        if !errors.is_empty() && errors.iter().all(|l| l.contains(LVS_REFUSED)) {
            report.known_refusal = errors[0]
                .split_once(": error: ")
                .map(|(_, e)| format!("{e} (no BFD)"));
        }
    }
    if keepalived_runs && wasmalived_runs {
        let ours = messages::parse_wasmalived(&w.stderr);
        let theirs = messages::parse_keepalived(&k.test_stderr);
        let top = file.to_string_lossy();
        report.messages = messages::judge(&theirs, &ours, &top, &corpus::blocks(&text));
        if k.environment.is_none() {
            let kd = effective::from_keepalived_dump(&k.log);
            let wd = effective::from_wasmalived_dump(&w.stdout);
            let c = effective::compare(&kd, &wd);
            report.value_differences = c.differences;
            report.notes.extend(
                c.known
                    .into_iter()
                    .map(|k| format!("known difference: {k}")),
            );
        }
    }
    Ok(report)
}

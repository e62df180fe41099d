//! keepalived's `vrrp_track_process`, sans-IO: which processes match a rule, how many of
//! them run, and when the rule has quorum — with time passed in, never read.
//!
//! The I/O layer (the daemon's process-event source) feeds a [`ProcessTracker`] what the
//! kernel's process connector reports — [`fork`](ProcessTracker::fork),
//! [`exec`](ProcessTracker::exec), [`comm`](ProcessTracker::comm),
//! [`exit`](ProcessTracker::exit) — plus a full [`resync`](ProcessTracker::resync) from a
//! `/proc` scan at start-up and whenever events were lost, and collects the quorum changes
//! with [`poll_change`](ProcessTracker::poll_change). Pending delays are a table of
//! deadlines: [`poll_timeout`](ProcessTracker::poll_timeout) says when to call
//! [`handle_timeout`](ProcessTracker::handle_timeout).
//!
//! The rules follow keepalived 2.2.7 (`keepalived/core/track_process.c`):
//!
//! - a process matches by its `comm` (the kernel's 15-character name), or, with
//!   `full_command` (implied by parameters or `param_match`), by its command line: `argv[0]`
//!   equal to the name, and the parameters compared as [`ParamMatch`] says (`check_params`).
//! - a rule has quorum while `quorum ≤ count ≤ quorum_max` (`quorum_max 0` tracks that *no*
//!   such process runs).
//! - a child forked by a counted process counts too, without reading its command line
//!   (`check_process_fork`: a worker of a counted master is counted).
//! - quorum gained through a fork waits `fork_delay`; quorum lost through an exit waits
//!   `terminate_delay`; a change back before the delay ends cancels it
//!   (`check_process_fork`, `check_process_termination`). An `exec` or a name change that makes
//!   a process (stop) match applies at once (`check_process`, `check_process_comm_change`).
//! - a resync after lost events (keepalived's `reinitialise_track_processes`) recounts from
//!   the scan; a quorum it gains waits `fork_delay` and a quorum it loses `terminate_delay`,
//!   as if by fork and exit. (keepalived 2.2.7 there reports a gain at once *and* arms a timer
//!   with the terminate delay; we apply the delays as named.)
//! - the first resync reports every rule's state at once (`initialise_process_tracking_priorities`).
//!
//! A process counts at most once per rule (keepalived counts a process that `exec`s a
//! matching program twice again, until it exits; we do not).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How a rule's parameters are compared with a process's (keepalived `param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamMatch {
    /// The process has exactly these parameters (the default when parameters are given).
    Exact,
    /// The process's first parameters are these, each whole (`param_match partial`).
    Partial,
    /// As `Partial`, but the last one given may be the start of the process's parameter
    /// (`param_match initial`).
    Initial,
}

impl ParamMatch {
    /// The keyword keepalived uses.
    pub fn keyword(self) -> &'static str {
        match self {
            ParamMatch::Exact => "exact",
            ParamMatch::Partial => "partial",
            ParamMatch::Initial => "initial",
        }
    }
}

/// Which processes a rule counts (keepalived `process NAME [PARAM…]`, `param_match`,
/// `full_command`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPattern {
    /// The name (compared with `comm`) or, with `full_command`, the program (`argv[0]`).
    pub name: String,
    /// The parameters given after the name.
    pub params: Vec<String>,
    /// How parameters are compared; `None`: they are not.
    pub param_match: Option<ParamMatch>,
    /// Compare the command line (`argv[0]`), not `comm`.
    pub full_command: bool,
}

impl ProcessPattern {
    /// Whether a process with `info` matches. A pattern that needs the command line (or
    /// `comm`) does not match a process whose command line (or `comm`) is unknown.
    pub fn matches(&self, info: &ProcessInfo) -> bool {
        if !self.full_command {
            return info.comm.as_deref() == Some(self.name.as_str());
        }
        let Some(cmdline) = info.cmdline.as_deref() else {
            return false;
        };
        let (argv0, params) = match cmdline.iter().position(|&b| b == 0) {
            Some(nul) => (&cmdline[..nul], &cmdline[nul + 1..]),
            None => (cmdline, &[][..]),
        };
        if argv0 != self.name.as_bytes() {
            return false;
        }
        match self.param_match {
            None => true,
            Some(mode) => self.params_match(mode, params),
        }
    }

    /// keepalived's `check_params`: `given` is the command line after `argv[0]`'s NUL, each
    /// parameter NUL-terminated.
    fn params_match(&self, mode: ParamMatch, given: &[u8]) -> bool {
        let want: Vec<u8> = self
            .params
            .iter()
            .flat_map(|p| p.bytes().chain(std::iter::once(0)))
            .collect();
        if given.len() < want.len() {
            return false;
        }
        match mode {
            ParamMatch::Exact => given == want.as_slice(),
            ParamMatch::Partial => given.starts_with(&want),
            // Without the last parameter's NUL: it may continue in the process's.
            ParamMatch::Initial => want.len() <= 1 || given.starts_with(&want[..want.len() - 1]),
        }
    }
}

/// What the I/O layer read of one process (`/proc/PID/comm`, `/proc/PID/cmdline`); a field
/// the tracker's rules do not need may be left `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The kernel's name of the process (`comm`, at most 15 bytes).
    pub comm: Option<String>,
    /// The raw command line: NUL-terminated arguments.
    pub cmdline: Option<Vec<u8>>,
}

/// One `vrrp_track_process`: what to count and when it has quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRule {
    /// The `vrrp_track_process` name.
    pub name: String,
    /// Which processes count.
    pub pattern: ProcessPattern,
    /// Fewest processes for quorum (keepalived default 1; 0 only with `quorum_max 0`).
    pub quorum: u32,
    /// Most processes for quorum (keepalived default: unlimited).
    pub quorum_max: u32,
    /// How long a quorum gained by a fork must last before it counts (`fork_delay`, `delay`).
    pub fork_delay: Option<Duration>,
    /// How long a quorum lost by an exit must last before it counts (`terminate_delay`,
    /// `delay`).
    pub terminate_delay: Option<Duration>,
}

impl ProcessRule {
    /// Whether `count` processes make a quorum.
    pub fn in_quorum(&self, count: u32) -> bool {
        (self.quorum..=self.quorum_max).contains(&count)
    }
}

/// A rule gained or lost quorum (or, after the first resync, reports its first state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumChange {
    /// The rule's name.
    pub name: String,
    /// Whether it has quorum now.
    pub up: bool,
    /// How many matching processes run.
    pub count: u32,
}

/// One rule as it stands now, for status displays ([`ProcessTracker::rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleView<'a> {
    /// The rule.
    pub rule: &'a ProcessRule,
    /// How many matching processes run.
    pub count: u32,
    /// The quorum state last reported (`None` before the first resync).
    pub up: Option<bool>,
    /// A change waiting for its `fork_delay` / `terminate_delay`: the state it goes to.
    pub pending: Option<bool>,
}

/// What changed a rule's count; decides which delay applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Fork,
    Exit,
    /// `exec`, a name change: applies at once.
    Immediate,
    Resync,
}

#[derive(Debug)]
struct RuleState {
    rule: ProcessRule,
    count: u32,
    /// The state last reported (`None`: never reported).
    up: Option<bool>,
    /// A delayed change: when, and to what.
    pending: Option<(Instant, bool)>,
}

/// The process-tracking state of one daemon: every rule, and which PIDs each counts.
#[derive(Debug, Default)]
pub struct ProcessTracker {
    rules: Vec<RuleState>,
    /// Each counted PID (thread-group id) and the indexes of the rules counting it.
    pids: BTreeMap<u32, Vec<usize>>,
    changes: VecDeque<QuorumChange>,
}

impl ProcessTracker {
    /// A tracker for `rules`; nothing is counted until the first [`resync`](Self::resync).
    pub fn new(rules: Vec<ProcessRule>) -> Self {
        ProcessTracker {
            rules: rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    count: 0,
                    up: None,
                    pending: None,
                })
                .collect(),
            pids: BTreeMap::new(),
            changes: VecDeque::new(),
        }
    }

    /// Whether a rule compares command lines (the I/O layer must read `/proc/PID/cmdline`).
    pub fn needs_cmdline(&self) -> bool {
        self.rules.iter().any(|r| r.rule.pattern.full_command)
    }

    /// Whether a rule compares `comm` (the I/O layer must read `/proc/PID/comm`).
    pub fn needs_comm(&self) -> bool {
        self.rules.iter().any(|r| !r.rule.pattern.full_command)
    }

    /// Whether there is nothing to track.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `pid` is counted by some rule.
    pub fn is_counted(&self, pid: u32) -> bool {
        self.pids.contains_key(&pid)
    }

    /// The state last reported for rule `name` and its count.
    pub fn state(&self, name: &str) -> Option<(Option<bool>, u32)> {
        self.rules
            .iter()
            .find(|r| r.rule.name == name)
            .map(|r| (r.up, r.count))
    }

    /// Every rule, in configuration order, with its count and quorum state.
    pub fn rules(&self) -> impl Iterator<Item = RuleView<'_>> + '_ {
        self.rules.iter().map(|r| RuleView {
            rule: &r.rule,
            count: r.count,
            up: r.up,
            pending: r.pending.map(|(_, to)| to),
        })
    }

    /// Recount from a full scan of the running processes (start-up, lost events, polling).
    pub fn resync<'a>(
        &mut self,
        now: Instant,
        processes: impl IntoIterator<Item = (u32, &'a ProcessInfo)>,
    ) {
        self.pids.clear();
        for r in &mut self.rules {
            r.count = 0;
        }
        for (pid, info) in processes {
            let matching: Vec<usize> = (0..self.rules.len())
                .filter(|&i| self.rules[i].rule.pattern.matches(info))
                .collect();
            for &i in &matching {
                self.rules[i].count += 1;
            }
            if !matching.is_empty() {
                self.pids.insert(pid, matching);
            }
        }
        for i in 0..self.rules.len() {
            self.reevaluate(now, i, Cause::Resync);
        }
    }

    /// `parent` forked `child` (both thread-group ids; the I/O layer drops new threads).
    pub fn fork(&mut self, now: Instant, parent: u32, child: u32) {
        let Some(rules) = self.pids.get(&parent).cloned() else {
            return;
        };
        let existing = self.pids.get(&child).cloned().unwrap_or_default();
        let added: Vec<usize> = rules
            .into_iter()
            .filter(|i| !existing.contains(i))
            .collect();
        if added.is_empty() {
            return;
        }
        self.pids.entry(child).or_default().extend(&added);
        for i in added {
            self.rules[i].count += 1;
            self.reevaluate(now, i, Cause::Fork);
        }
    }

    /// `pid` executed a new program; `info` is what was read of it (`None`: it is gone).
    pub fn exec(&mut self, now: Instant, pid: u32, info: Option<&ProcessInfo>) {
        let Some(info) = info else {
            return;
        };
        for i in 0..self.rules.len() {
            let matches = self.rules[i].rule.pattern.matches(info);
            self.set_counted(now, pid, i, matches);
        }
    }

    /// `pid` changed its name to `comm` (`prctl(PR_SET_NAME)`); only rules that compare
    /// `comm` look at it.
    pub fn comm(&mut self, now: Instant, pid: u32, comm: &str) {
        let info = ProcessInfo {
            comm: Some(comm.to_owned()),
            cmdline: None,
        };
        for i in 0..self.rules.len() {
            if self.rules[i].rule.pattern.full_command {
                continue;
            }
            let matches = self.rules[i].rule.pattern.matches(&info);
            self.set_counted(now, pid, i, matches);
        }
    }

    /// `pid` (a thread-group id) exited.
    pub fn exit(&mut self, now: Instant, pid: u32) {
        let Some(rules) = self.pids.remove(&pid) else {
            return;
        };
        for i in rules {
            self.rules[i].count -= 1;
            self.reevaluate(now, i, Cause::Exit);
        }
    }

    /// The earliest pending delay.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rules
            .iter()
            .filter_map(|r| r.pending.map(|(at, _)| at))
            .min()
    }

    /// Apply the delays that ended by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for r in &mut self.rules {
            if r.pending.is_some_and(|(at, _)| at <= now) {
                r.pending = None;
                let up = r.rule.in_quorum(r.count);
                if r.up != Some(up) {
                    r.up = Some(up);
                    self.changes.push_back(QuorumChange {
                        name: r.rule.name.clone(),
                        up,
                        count: r.count,
                    });
                }
            }
        }
    }

    /// The next quorum change to report.
    pub fn poll_change(&mut self) -> Option<QuorumChange> {
        self.changes.pop_front()
    }

    /// Count `pid` for rule `i` or not (a match found by `exec`/`comm`: no delay).
    fn set_counted(&mut self, now: Instant, pid: u32, i: usize, counted: bool) {
        let was = self.pids.get(&pid).is_some_and(|rules| rules.contains(&i));
        match (was, counted) {
            (false, true) => {
                self.pids.entry(pid).or_default().push(i);
                self.rules[i].count += 1;
            }
            (true, false) => {
                if let Some(rules) = self.pids.get_mut(&pid) {
                    rules.retain(|&r| r != i);
                    if rules.is_empty() {
                        self.pids.remove(&pid);
                    }
                }
                self.rules[i].count -= 1;
            }
            _ => return,
        }
        self.reevaluate(now, i, Cause::Immediate);
    }

    /// Rule `i`'s count changed by `cause`: report, delay or cancel.
    fn reevaluate(&mut self, now: Instant, i: usize, cause: Cause) {
        let r = &mut self.rules[i];
        let up = r.rule.in_quorum(r.count);
        let Some(reported) = r.up else {
            // The first resync: report as found.
            r.up = Some(up);
            self.changes.push_back(QuorumChange {
                name: r.rule.name.clone(),
                up,
                count: r.count,
            });
            return;
        };
        if up == reported {
            // Back where it was reported: a pending change is void.
            r.pending = None;
            return;
        }
        if r.pending.is_some_and(|(_, to)| to == up) {
            return;
        }
        let delay = match (cause, up) {
            (Cause::Fork | Cause::Resync, true) => r.rule.fork_delay,
            (Cause::Exit | Cause::Resync, false) => r.rule.terminate_delay,
            _ => None,
        };
        match delay {
            Some(d) => r.pending = Some((now + d, up)),
            None => {
                r.pending = None;
                r.up = Some(up);
                self.changes.push_back(QuorumChange {
                    name: r.rule.name.clone(),
                    up,
                    count: r.count,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;

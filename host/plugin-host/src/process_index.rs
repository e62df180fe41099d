//! An incremental process-name index: `comm` → PIDs of thread-group leaders, kept from
//! process events so that the `processes` capability's `by-name` costs O(matches) instead of
//! a read of every `/proc/PID/comm` ([`crate::caps::processes`]).
//!
//! This crate holds the index; whoever owns a process-event source keeps it (the daemon, from
//! the kernel's process connector: `wasmalived::procs::index_feed`). The index is only a
//! *hint*: every PID it names is verified against `/proc` before a plugin sees it, so a stale
//! entry can hide nothing and invent nothing that is not there. While it is not *live* — no
//! event source, events lost, before the first rebuild — callers scan `/proc` as before.
//!
//! The event rules, as the kernel delivers them:
//! - fork of a process (child pid = child tgid): the child is named like the thread that
//!   forked; when that is the leader, the index already knows the name, otherwise (a worker
//!   thread forked) the name is read once. A fork of a thread (child pid ≠ tgid) is ignored.
//!   A parent the index does not know (a kernel thread) adds nothing: its user-space
//!   children appear at their `exec`.
//! - exec: the name is read once (`/proc/PID/comm`).
//! - comm (`PR_SET_NAME`): counts only on the leader (`/proc/PID/comm` is the leader's).
//! - exit of the leader removes the process.
//!
//! Concurrency: one writer (the event feed), readers on the plugin executor threads; a
//! `RwLock` held for a hash-map update or a lookup, never across a `/proc` read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

/// A task as the kernel names it in an event: `pid` is the thread id, `tgid` the process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// Thread id.
    pub pid: u32,
    /// Thread-group (process) id.
    pub tgid: u32,
}

impl Task {
    /// Whether this task is a process's main thread (its thread-group leader).
    pub fn is_leader(self) -> bool {
        self.pid == self.tgid
    }
}

/// Process names → PIDs, shared between the event feed and plugin runs (behind an `Arc`).
#[derive(Debug, Default)]
pub struct ProcessIndex {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: bool,
    by_pid: HashMap<u32, Arc<str>>,
    by_name: HashMap<Arc<str>, BTreeSet<u32>>,
}

impl Inner {
    fn insert(&mut self, pid: u32, name: &str) {
        if self.by_pid.get(&pid).is_some_and(|n| &**n == name) {
            return;
        }
        self.remove(pid);
        let name: Arc<str> = match self.by_name.get_key_value(name) {
            Some((shared, _)) => Arc::clone(shared),
            None => Arc::from(name),
        };
        self.by_name
            .entry(Arc::clone(&name))
            .or_default()
            .insert(pid);
        self.by_pid.insert(pid, name);
    }

    fn remove(&mut self, pid: u32) {
        let Some(name) = self.by_pid.remove(&pid) else {
            return;
        };
        if let Some(pids) = self.by_name.get_mut(&name) {
            pids.remove(&pid);
            if pids.is_empty() {
                self.by_name.remove(&name);
            }
        }
    }

    fn clear(&mut self) {
        self.by_pid.clear();
        self.by_name.clear();
    }
}

impl ProcessIndex {
    /// An empty index, not live: callers scan until the first [`ProcessIndex::rebuild`].
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the index follows the process table (events flow, nothing lost since the last
    /// rebuild).
    pub fn is_live(&self) -> bool {
        self.read().live
    }

    /// The PIDs last seen named `name`, ascending; `None` while the index is not live (scan
    /// instead). Candidates only: verify each against `/proc`.
    pub fn candidates(&self, name: &str) -> Option<Vec<u32>> {
        let inner = self.read();
        if !inner.live {
            return None;
        }
        Some(
            inner
                .by_name
                .get(name)
                .map(|pids| pids.iter().copied().collect())
                .unwrap_or_default(),
        )
    }

    /// Processes indexed (for logs and tests).
    pub fn len(&self) -> usize {
        self.read().by_pid.len()
    }

    /// Whether no process is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replace the contents with a full scan (`(pid, comm)` of every user process) and go
    /// live. Events received after the scan started must be applied afterwards.
    pub fn rebuild(&self, processes: impl IntoIterator<Item = (u32, String)>) {
        let mut fresh = Inner::default();
        for (pid, name) in processes {
            fresh.insert(pid, &name);
        }
        fresh.live = true;
        *self.write() = fresh;
    }

    /// Stop answering (no event source, or events were lost) and drop the contents: callers
    /// scan until the next [`ProcessIndex::rebuild`].
    pub fn set_not_live(&self) {
        let mut inner = self.write();
        inner.live = false;
        inner.clear();
    }

    /// A fork. `read_comm` reads `/proc/PID/comm` of the child when the name cannot be
    /// inherited (see the module doc).
    pub fn fork(&self, parent: Task, child: Task, read_comm: impl FnOnce(u32) -> Option<String>) {
        if !child.is_leader() {
            return;
        }
        // Not live: the parent is unknown too (the contents were dropped).
        let inherited = self.read().by_pid.get(&parent.tgid).cloned();
        let Some(leader_name) = inherited else {
            return;
        };
        let name = if parent.is_leader() {
            Some(leader_name.to_string())
        } else {
            read_comm(child.tgid)
        };
        let mut inner = self.write();
        match name {
            Some(name) => inner.insert(child.tgid, &name),
            None => inner.remove(child.tgid),
        }
    }

    /// An exec: the process now runs another program, whose name `read_comm` reads (`None`:
    /// gone already, removed).
    pub fn exec(&self, task: Task, read_comm: impl FnOnce(u32) -> Option<String>) {
        // A non-leader thread that execs becomes the leader (the kernel reports it with the
        // process's id): either way the process is `tgid`.
        if !self.is_live() {
            return;
        }
        let name = read_comm(task.tgid);
        let mut inner = self.write();
        if !inner.live {
            return;
        }
        match name {
            Some(name) => inner.insert(task.tgid, &name),
            None => inner.remove(task.tgid),
        }
    }

    /// A thread renamed itself; only the leader's name is the process's.
    pub fn comm(&self, task: Task, name: &str) {
        if !task.is_leader() {
            return;
        }
        let mut inner = self.write();
        // A process the index does not know is not added here: it is a kernel thread, or
        // its exec will (or did) add it.
        if inner.by_pid.contains_key(&task.tgid) {
            inner.insert(task.tgid, name);
        }
    }

    /// A thread exited; the process ends with its leader.
    pub fn exit(&self, task: Task) {
        if task.is_leader() {
            self.write().remove(task.tgid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(pid: u32) -> Task {
        Task { pid, tgid: pid }
    }

    fn live(processes: &[(u32, &str)]) -> ProcessIndex {
        let index = ProcessIndex::new();
        index.rebuild(processes.iter().map(|(p, n)| (*p, (*n).to_string())));
        index
    }

    fn never_read(pid: u32) -> Option<String> {
        panic!("read /proc/{pid}/comm where the name was known")
    }

    #[test]
    fn not_live_until_rebuilt_and_after_losing_events() {
        let index = ProcessIndex::new();
        assert_eq!(
            index.candidates("nginx"),
            None,
            "a new index answers nothing"
        );
        index.rebuild([(10, "nginx".to_string()), (11, "sshd".to_string())]);
        assert_eq!(index.candidates("nginx"), Some(vec![10]));
        assert_eq!(index.candidates("postgres"), Some(vec![]));
        index.set_not_live();
        assert_eq!(index.candidates("nginx"), None);
        assert!(index.is_empty());
    }

    #[test]
    fn rebuild_replaces_everything() {
        let index = live(&[(10, "nginx"), (11, "nginx")]);
        index.rebuild([(11, "sshd".to_string()), (12, "nginx".to_string())]);
        assert_eq!(index.candidates("nginx"), Some(vec![12]));
        assert_eq!(index.candidates("sshd"), Some(vec![11]));
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn fork_then_exec_then_rename_then_exit() {
        let index = live(&[(1, "systemd"), (100, "bash")]);
        // bash forks a child: named bash until it execs.
        index.fork(leader(100), leader(200), never_read);
        assert_eq!(index.candidates("bash"), Some(vec![100, 200]));
        index.exec(leader(200), |pid| {
            assert_eq!(pid, 200);
            Some("nginx".into())
        });
        assert_eq!(index.candidates("bash"), Some(vec![100]));
        assert_eq!(index.candidates("nginx"), Some(vec![200]));
        // The master forks workers, which rename themselves.
        index.fork(leader(200), leader(201), never_read);
        assert_eq!(index.candidates("nginx"), Some(vec![200, 201]));
        index.comm(leader(201), "nginx-worker");
        assert_eq!(index.candidates("nginx"), Some(vec![200]));
        assert_eq!(index.candidates("nginx-worker"), Some(vec![201]));
        index.exit(leader(201));
        index.exit(leader(200));
        assert_eq!(index.candidates("nginx"), Some(vec![]));
        assert_eq!(index.candidates("nginx-worker"), Some(vec![]));
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn threads_are_ignored() {
        let index = live(&[(300, "java")]);
        // A new thread (pid ≠ tgid) is not a process.
        index.fork(
            leader(300),
            Task {
                pid: 301,
                tgid: 300,
            },
            never_read,
        );
        assert_eq!(index.len(), 1);
        // A thread naming itself does not rename the process.
        index.comm(
            Task {
                pid: 301,
                tgid: 300,
            },
            "GC worker",
        );
        assert_eq!(index.candidates("java"), Some(vec![300]));
        assert_eq!(index.candidates("GC worker"), Some(vec![]));
        // A thread exiting does not end it.
        index.exit(Task {
            pid: 301,
            tgid: 300,
        });
        assert_eq!(index.candidates("java"), Some(vec![300]));
    }

    #[test]
    fn a_fork_from_a_worker_thread_reads_the_childs_name() {
        let index = live(&[(300, "java")]);
        // Thread 302 of process 300 (named "launcher") forks: the child is named like 302.
        index.fork(
            Task {
                pid: 302,
                tgid: 300,
            },
            leader(400),
            |pid| {
                assert_eq!(pid, 400);
                Some("launcher".into())
            },
        );
        assert_eq!(index.candidates("launcher"), Some(vec![400]));
        // A child gone before its name is read is not added.
        index.fork(
            Task {
                pid: 302,
                tgid: 300,
            },
            leader(401),
            |_| None,
        );
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn children_of_unknown_parents_wait_for_their_exec() {
        // kthreadd (2) is not indexed: its children are kernel threads.
        let index = live(&[(1, "systemd")]);
        index.fork(leader(2), leader(500), never_read);
        index.comm(leader(500), "kworker/0:1");
        assert_eq!(index.len(), 1);
        // A kernel thread that execs a user-mode helper becomes a process.
        index.exec(leader(500), |_| Some("modprobe".into()));
        assert_eq!(index.candidates("modprobe"), Some(vec![500]));
    }

    #[test]
    fn exec_of_a_vanished_process_removes_it() {
        let index = live(&[(10, "nginx")]);
        index.exec(leader(10), |_| None);
        assert!(index.is_empty());
        // Exec by a non-leader thread: the process is the tgid.
        let index = live(&[(20, "sh")]);
        index.exec(Task { pid: 21, tgid: 20 }, |pid| {
            assert_eq!(pid, 20);
            Some("nginx".into())
        });
        assert_eq!(index.candidates("nginx"), Some(vec![20]));
        assert_eq!(index.candidates("sh"), Some(vec![]));
    }

    #[test]
    fn events_before_going_live_are_answered_by_scans() {
        let index = ProcessIndex::new();
        index.exec(leader(10), never_read);
        index.fork(leader(10), leader(11), never_read);
        index.comm(leader(10), "nginx");
        assert!(index.is_empty(), "nothing is kept while not live");
        // The caller scans; the next rebuild decides the contents.
        assert_eq!(index.candidates("nginx"), None);
        index.rebuild(Vec::new());
        assert_eq!(index.candidates("nginx"), Some(vec![]));
    }
}

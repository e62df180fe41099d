//! keepalived's `track_process` rules (`keepalived/core/track_process.c`), on a virtual clock.

use super::*;

const NGINX_CONF: &str = "/tmp/lab/n1-nginx/nginx.conf";

fn comm(name: &str) -> ProcessInfo {
    ProcessInfo {
        comm: Some(name.to_owned()),
        cmdline: None,
    }
}

fn cmdline(args: &[&str]) -> ProcessInfo {
    let mut bytes = Vec::new();
    for a in args {
        bytes.extend_from_slice(a.as_bytes());
        bytes.push(0);
    }
    ProcessInfo {
        comm: None,
        cmdline: Some(bytes),
    }
}

fn by_comm(name: &str) -> ProcessPattern {
    ProcessPattern {
        name: name.to_owned(),
        params: Vec::new(),
        param_match: None,
        full_command: false,
    }
}

fn by_command(name: &str, params: &[&str], mode: Option<ParamMatch>) -> ProcessPattern {
    ProcessPattern {
        name: name.to_owned(),
        params: params.iter().map(|p| (*p).to_owned()).collect(),
        param_match: mode,
        full_command: true,
    }
}

fn rule(pattern: ProcessPattern) -> ProcessRule {
    ProcessRule {
        name: "proc".to_owned(),
        pattern,
        quorum: 1,
        quorum_max: u32::MAX,
        fork_delay: None,
        terminate_delay: None,
    }
}

fn changes(t: &mut ProcessTracker) -> Vec<(bool, u32)> {
    std::iter::from_fn(|| t.poll_change())
        .map(|c| (c.up, c.count))
        .collect()
}

/// A tracker for `r`, started on an empty process table (reported down, or up for
/// `quorum_max 0`).
fn started(r: ProcessRule, now: Instant) -> ProcessTracker {
    let mut t = ProcessTracker::new(vec![r]);
    t.resync(now, std::iter::empty());
    let _ = changes(&mut t);
    t
}

#[test]
fn comm_match_compares_the_whole_name() {
    let p = by_comm("nginx");
    assert!(p.matches(&comm("nginx")));
    assert!(!p.matches(&comm("nginx2")));
    assert!(!p.matches(&comm("ngin")));
    // A comm rule never looks at the command line.
    assert!(!p.matches(&cmdline(&["nginx"])));
}

#[test]
fn full_command_compares_argv0_only_without_param_match() {
    let p = by_command("/usr/sbin/nginx", &[], None);
    assert!(p.matches(&cmdline(&["/usr/sbin/nginx", "-c", NGINX_CONF])));
    assert!(!p.matches(&cmdline(&["nginx", "-c", NGINX_CONF])));
    assert!(!p.matches(&comm("nginx")));
}

/// keepalived `check_params`, PARAM_MATCH_EXACT: the same parameters, no more.
#[test]
fn param_match_exact() {
    let p = by_command("nginx", &["-c", NGINX_CONF], Some(ParamMatch::Exact));
    assert!(p.matches(&cmdline(&["nginx", "-c", NGINX_CONF])));
    assert!(!p.matches(&cmdline(&["nginx", "-c", NGINX_CONF, "-g", "daemon off;"])));
    assert!(!p.matches(&cmdline(&["nginx", "-c", "/tmp/lab/n2-nginx/nginx.conf"])));
    assert!(!p.matches(&cmdline(&["nginx", "-c"])));
    // `param_match` without parameters: only a process without any.
    let bare = by_command("nginx", &[], Some(ParamMatch::Exact));
    assert!(bare.matches(&cmdline(&["nginx"])));
    assert!(!bare.matches(&cmdline(&["nginx", "-t"])));
}

/// PARAM_MATCH_PARTIAL: the given parameters are the process's first ones, each whole.
#[test]
fn param_match_partial() {
    let p = by_command("nginx", &["-c", NGINX_CONF], Some(ParamMatch::Partial));
    assert!(p.matches(&cmdline(&["nginx", "-c", NGINX_CONF])));
    assert!(p.matches(&cmdline(&["nginx", "-c", NGINX_CONF, "-g", "daemon off;"])));
    assert!(!p.matches(&cmdline(&["nginx", "-c", &format!("{NGINX_CONF}.bak")])));
    assert!(!p.matches(&cmdline(&["nginx", "-p", "/x", "-c", NGINX_CONF])));
    // No parameters given: any.
    assert!(by_command("nginx", &[], Some(ParamMatch::Partial)).matches(&cmdline(&["nginx", "-t"])));
}

/// PARAM_MATCH_INITIAL: as partial, but the last one may continue.
#[test]
fn param_match_initial() {
    let p = by_command("nginx", &["-c", "/tmp/lab/n1-"], Some(ParamMatch::Initial));
    assert!(p.matches(&cmdline(&["nginx", "-c", NGINX_CONF])));
    assert!(p.matches(&cmdline(&["nginx", "-c", "/tmp/lab/n1-"])));
    assert!(!p.matches(&cmdline(&["nginx", "-c", "/tmp/lab/n2-nginx/nginx.conf"])));
    // Only the last one may continue.
    let q = by_command("nginx", &["-", "/tmp"], Some(ParamMatch::Initial));
    assert!(!q.matches(&cmdline(&["nginx", "-c", "/tmp/x"])));
}

#[test]
fn a_command_line_without_nul_is_argv0_alone() {
    let p = by_command("nginx: master process", &[], None);
    let info = ProcessInfo {
        comm: None,
        cmdline: Some(b"nginx: master process".to_vec()),
    };
    assert!(p.matches(&info));
}

#[test]
fn first_resync_reports_each_rule_at_once() {
    let now = Instant::now();
    let mut r = rule(by_comm("nginx"));
    r.fork_delay = Some(Duration::from_secs(5));
    let mut down = r.clone();
    down.name = "other".to_owned();
    down.pattern = by_comm("haproxy");
    let mut t = ProcessTracker::new(vec![r, down]);
    let n = comm("nginx");
    t.resync(now, [(10, &n), (11, &n)]);
    let got: Vec<QuorumChange> = std::iter::from_fn(|| t.poll_change()).collect();
    assert_eq!(
        got,
        vec![
            QuorumChange {
                name: "proc".into(),
                up: true,
                count: 2
            },
            QuorumChange {
                name: "other".into(),
                up: false,
                count: 0
            },
        ]
    );
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn exec_and_exit_apply_at_once_without_delays() {
    let now = Instant::now();
    let mut t = started(rule(by_comm("nginx")), now);
    t.exec(now, 10, Some(&comm("nginx")));
    assert_eq!(changes(&mut t), vec![(true, 1)]);
    t.exec(now, 11, Some(&comm("nginx")));
    assert_eq!(changes(&mut t), vec![], "a second process keeps quorum");
    t.exit(now, 10);
    assert_eq!(changes(&mut t), vec![]);
    t.exit(now, 11);
    assert_eq!(changes(&mut t), vec![(false, 0)]);
}

#[test]
fn exec_of_a_gone_process_changes_nothing() {
    let now = Instant::now();
    let mut t = started(rule(by_comm("nginx")), now);
    t.exec(now, 10, None);
    assert_eq!(changes(&mut t), vec![]);
    assert!(!t.is_counted(10));
}

#[test]
fn a_process_counts_once_per_rule() {
    let now = Instant::now();
    let mut t = started(rule(by_comm("nginx")), now);
    t.exec(now, 10, Some(&comm("nginx")));
    t.exec(now, 10, Some(&comm("nginx")));
    assert_eq!(t.state("proc"), Some((Some(true), 1)));
    t.exit(now, 10);
    assert_eq!(t.state("proc"), Some((Some(false), 0)));
}

#[test]
fn exec_of_another_program_stops_counting() {
    let now = Instant::now();
    let mut t = started(rule(by_comm("nginx")), now);
    t.exec(now, 10, Some(&comm("nginx")));
    t.exec(now, 10, Some(&comm("sh")));
    assert_eq!(changes(&mut t), vec![(true, 1), (false, 0)]);
    assert!(!t.is_counted(10));
}

/// `check_process_fork`: children of a counted process count, whatever they are called.
#[test]
fn forked_children_of_a_counted_process_count() {
    let now = Instant::now();
    let mut r = rule(by_command(
        "nginx",
        &["-c", NGINX_CONF],
        Some(ParamMatch::Partial),
    ));
    r.quorum = 2;
    let mut t = started(r, now);
    t.exec(now, 10, Some(&cmdline(&["nginx", "-c", NGINX_CONF])));
    assert_eq!(changes(&mut t), vec![]);
    t.fork(now, 10, 11);
    assert_eq!(changes(&mut t), vec![(true, 2)]);
    // A fork of an uncounted process is ignored.
    t.fork(now, 99, 100);
    assert!(!t.is_counted(100));
    t.exit(now, 10);
    assert_eq!(changes(&mut t), vec![(false, 1)]);
}

#[test]
fn fork_delay_holds_a_gain_by_fork() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("nginx"));
    r.quorum = 2;
    r.fork_delay = Some(Duration::from_secs(2));
    let mut t = started(r, t0);
    t.exec(t0, 10, Some(&comm("nginx")));
    t.fork(t0, 10, 11);
    assert_eq!(changes(&mut t), vec![]);
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    t.handle_timeout(t0 + Duration::from_millis(1999));
    assert_eq!(changes(&mut t), vec![]);
    t.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(changes(&mut t), vec![(true, 2)]);
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn an_exit_within_fork_delay_cancels_the_gain() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("nginx"));
    r.quorum = 2;
    r.fork_delay = Some(Duration::from_secs(2));
    let mut t = started(r, t0);
    t.exec(t0, 10, Some(&comm("nginx")));
    t.fork(t0, 10, 11);
    t.exit(t0 + Duration::from_secs(1), 11);
    assert_eq!(t.poll_timeout(), None);
    t.handle_timeout(t0 + Duration::from_secs(3));
    assert_eq!(changes(&mut t), vec![]);
}

#[test]
fn fork_delay_does_not_hold_a_gain_by_exec() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("nginx"));
    r.fork_delay = Some(Duration::from_secs(2));
    let mut t = started(r, t0);
    t.exec(t0, 10, Some(&comm("nginx")));
    assert_eq!(changes(&mut t), vec![(true, 1)]);
}

#[test]
fn terminate_delay_holds_a_loss_by_exit_and_a_return_cancels_it() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("nginx"));
    r.terminate_delay = Some(Duration::from_secs(3));
    let mut t = started(r, t0);
    t.exec(t0, 10, Some(&comm("nginx")));
    assert_eq!(changes(&mut t), vec![(true, 1)]);
    t.exit(t0, 10);
    assert_eq!(changes(&mut t), vec![], "held by terminate_delay");
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    // Restarted in time: quorum never lost.
    t.exec(t0 + Duration::from_secs(1), 20, Some(&comm("nginx")));
    assert_eq!(t.poll_timeout(), None);
    t.handle_timeout(t0 + Duration::from_secs(4));
    assert_eq!(changes(&mut t), vec![]);
    // Not restarted: lost when the delay ends.
    t.exit(t0 + Duration::from_secs(5), 20);
    t.handle_timeout(t0 + Duration::from_secs(8));
    assert_eq!(changes(&mut t), vec![(false, 0)]);
}

#[test]
fn quorum_max_counts_too_many_as_down() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("worker"));
    r.quorum = 1;
    r.quorum_max = 2;
    let mut t = started(r, t0);
    let w = comm("worker");
    t.exec(t0, 1, Some(&w));
    t.exec(t0, 2, Some(&w));
    assert_eq!(changes(&mut t), vec![(true, 1)]);
    t.exec(t0, 3, Some(&w));
    assert_eq!(changes(&mut t), vec![(false, 3)]);
    t.exit(t0, 3);
    assert_eq!(changes(&mut t), vec![(true, 2)]);
}

/// `quorum_max 0`: up while no such process runs.
#[test]
fn quorum_max_zero_tracks_absence() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("backup-job"));
    r.quorum = 0;
    r.quorum_max = 0;
    let mut t = ProcessTracker::new(vec![r]);
    t.resync(t0, std::iter::empty());
    assert_eq!(changes(&mut t), vec![(true, 0)]);
    t.exec(t0, 7, Some(&comm("backup-job")));
    assert_eq!(changes(&mut t), vec![(false, 1)]);
    t.exit(t0, 7);
    assert_eq!(changes(&mut t), vec![(true, 0)]);
}

#[test]
fn a_name_change_moves_a_process_between_comm_rules_only() {
    let t0 = Instant::now();
    let mut by_name = rule(by_comm("old"));
    by_name.name = "by_name".into();
    let mut by_cmd = rule(by_command("/bin/app", &[], None));
    by_cmd.name = "by_cmd".into();
    let mut t = ProcessTracker::new(vec![by_name, by_cmd]);
    let info = ProcessInfo {
        comm: Some("old".into()),
        cmdline: Some(b"/bin/app\0".to_vec()),
    };
    t.resync(t0, [(5, &info)]);
    let _ = changes(&mut t);
    assert_eq!(t.state("by_name"), Some((Some(true), 1)));
    t.comm(t0, 5, "new");
    assert_eq!(t.state("by_name"), Some((Some(false), 0)));
    assert_eq!(
        t.state("by_cmd"),
        Some((Some(true), 1)),
        "comm does not change the command line"
    );
    t.comm(t0, 5, "old");
    assert_eq!(t.state("by_name"), Some((Some(true), 1)));
}

/// keepalived's `reinitialise_track_processes` after ENOBUFS: recount from a scan; the
/// delays apply as for fork and exit.
#[test]
fn resync_after_lost_events_recounts_with_delays() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("nginx"));
    r.terminate_delay = Some(Duration::from_secs(1));
    let mut t = started(r, t0);
    let n = comm("nginx");
    t.resync(t0, [(10, &n)]);
    assert_eq!(changes(&mut t), vec![(true, 1)], "no fork_delay: at once");
    // The exit was among the lost events: the scan finds no nginx.
    t.resync(t0, std::iter::empty());
    assert_eq!(changes(&mut t), vec![]);
    t.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(changes(&mut t), vec![(false, 0)]);
    // Counted PIDs come from the scan: a later exit of an unknown PID changes nothing.
    t.exit(t0, 10);
    assert_eq!(t.state("proc"), Some((Some(false), 0)));
}

#[test]
fn needs_say_which_proc_files_to_read() {
    let t = ProcessTracker::new(vec![rule(by_comm("a"))]);
    assert!(t.needs_comm() && !t.needs_cmdline());
    let t = ProcessTracker::new(vec![rule(by_command("a", &[], None))]);
    assert!(!t.needs_comm() && t.needs_cmdline());
}

#[test]
fn rules_show_count_state_and_a_pending_change() {
    let t0 = Instant::now();
    let mut r = rule(by_comm("nginx"));
    r.terminate_delay = Some(Duration::from_secs(3));
    let mut t = ProcessTracker::new(vec![r]);
    let view = |t: &ProcessTracker| {
        t.rules()
            .map(|v| (v.rule.name.clone(), v.count, v.up, v.pending))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        view(&t),
        [("proc".to_owned(), 0, None, None)],
        "not scanned yet"
    );
    t.resync(t0, [(10, &comm("nginx"))]);
    assert_eq!(view(&t), [("proc".to_owned(), 1, Some(true), None)]);
    t.exit(t0, 10);
    assert_eq!(
        view(&t),
        [("proc".to_owned(), 0, Some(true), Some(false))],
        "still up while terminate_delay runs"
    );
    t.handle_timeout(t0 + Duration::from_secs(3));
    assert_eq!(view(&t), [("proc".to_owned(), 0, Some(false), None)]);
}

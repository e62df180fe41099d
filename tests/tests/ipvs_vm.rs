//! The IPVS backend against a real kernel: `scripts/ipvs-vm.sh` boots Debian's kernel with
//! its `ip_vs` modules in a software-emulated VM (qemu, TCG) whose `/init`
//! (`tests/vm/ipvs/init`) runs wasmalived with `lvs_backend ipvs` and reads the kernel back
//! with `ipvsadm -Ln`: after the start (NAT, DR, TUN, persistence and its granularity, a
//! firewall mark, IPv6, every scheduler of that kernel; a killed run's service taken over and
//! made exactly the configuration's, someone else's left alone), after a reload (a weight
//! changed, a real server and a service removed) and after the shutdown (nothing of ours left, the
//! other service still there); then the kernel's connection-sync daemons, started, restarted
//! and stopped through the backend (`host/lvs/examples/ipvs_sync.rs`). Then keepalived's own
//! LVS samples (`tests/keepalived-samples/`), each run by real keepalived 2.2.7 and then by
//! wasmalived until the IPVS table settles (`tests/vm/ipvs/sample-lane.sh`): both tables must
//! be equal, and both daemons must leave nothing behind at their SIGTERM.
//!
//! A few minutes under emulation, and it downloads Debian's kernel once: ignored by
//! `make test`, run by `make vm-test`. Both tests read one VM run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use wasmalived_e2e::{plugin_path, wasmalived_bin};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The lines between `@@begin NAME` and `@@end NAME` of the console.
fn section<'a>(console: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let begin = format!("@@begin {name}");
    let end = format!("@@end {name}");
    let mut lines = console.lines().map(|l| l.trim_end_matches('\r'));
    lines.by_ref().find(|l| *l == begin)?;
    let body: Vec<&str> = lines.take_while(|l| *l != end).collect();
    Some(body)
}

/// An IPVS table as `ipvsadm -Ln` lists it: each service line (blanks squeezed) with its
/// destination lines, headers left out; order-free (the kernel lists in hash order).
type Table = BTreeMap<String, BTreeSet<String>>;

fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn table<'a>(lines: impl IntoIterator<Item = &'a str>) -> Table {
    let mut out = Table::new();
    let mut service = None;
    for line in lines {
        let l = squeeze(line);
        if ["TCP ", "UDP ", "SCTP ", "FWM "]
            .iter()
            .any(|p| l.starts_with(p))
        {
            out.insert(l.clone(), BTreeSet::new());
            service = Some(l);
        } else if l.starts_with("-> ") && !l.starts_with("-> RemoteAddress") {
            let s = service
                .as_ref()
                .unwrap_or_else(|| panic!("destination before any service: {line}"));
            out.get_mut(s).expect("service").insert(l);
        }
    }
    out
}

fn expected(name: &str) -> Table {
    let path = root().join("tests/vm/ipvs").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    table(text.lines())
}

/// One VM run, shared by the tests of this file: its console and where it is kept.
struct VmRun {
    console: String,
    /// Names the console file and qemu's exit, for failure messages.
    origin: String,
    /// The run's directory (the console), removed once both tests have passed.
    dir: Option<PathBuf>,
}

/// How many of the two VM tests have passed: the second removes the run's directory.
static PASSED: AtomicUsize = AtomicUsize::new(0);

fn passed(run: &VmRun) {
    if PASSED.fetch_add(1, Ordering::SeqCst) == 1 {
        if let Some(dir) = &run.dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Boots the VM once (the first test to ask waits for it; the other reads the same run).
/// `IPVS_VM_CONSOLE=PATH` re-reads a kept console instead (to re-judge a run without booting).
fn vm_run() -> &'static VmRun {
    static RUN: OnceLock<VmRun> = OnceLock::new();
    RUN.get_or_init(|| {
        if let Some(path) = std::env::var_os("IPVS_VM_CONSOLE") {
            let path = PathBuf::from(path);
            let console =
                fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            return VmRun {
                console,
                origin: format!("console in {} (IPVS_VM_CONSOLE)", path.display()),
                dir: None,
            };
        }
        let bin = wasmalived_bin().expect("wasmalived binary");
        let plugins = plugin_path("tcp").expect("the stock plugins (make plugins)");
        let out = std::env::temp_dir().join(format!("ipvs-vm-{}", std::process::id()));
        let status = Command::new(root().join("scripts/ipvs-vm.sh"))
            .arg(&out)
            .env("WASMALIVED_BIN", &bin)
            .env(
                "PLUGIN_WASM_DIR",
                plugins.parent().expect("plugin directory"),
            )
            .status()
            .expect("running scripts/ipvs-vm.sh");
        // The image is large and of no further use; the console stays for a failure's reader.
        let _ = fs::remove_file(out.join("initrd.gz"));
        let console_path = out.join("console.log");
        let console = fs::read_to_string(&console_path)
            .unwrap_or_else(|e| panic!("{}: {e}", console_path.display()));
        VmRun {
            console,
            origin: format!("console in {} (qemu: {status})", console_path.display()),
            dir: Some(out),
        }
    })
}

#[test]
#[ignore = "boots a VM under emulation (minutes): make vm-test"]
fn ipvs_backend_programs_reloads_and_clears_a_real_kernel() {
    let run = vm_run();
    let console = run.console.as_str();
    let context = format!("{}\n{console}", run.origin);
    assert!(
        console.contains("@@done"),
        "the VM did not finish: {context}"
    );
    assert!(console.contains("@@ip_vs loaded"), "{context}");

    // `-t` on the first configuration: valid, on IPVS, and it says TUN needs IPVS.
    assert!(console.contains("@@config-test exit 0"), "{context}");
    let test_out = section(console, "config-test")
        .expect("config-test")
        .join("\n");
    assert!(
        test_out.contains("LVS: lvs_backend ipvs: this host runs ipvs; the configuration needs lvs_backend ipvs (virtual_server fwmark 7/tcp: lb_kind TUN"),
        "{test_out}"
    );

    // `auto` takes IPVS where the kernel has it.
    assert!(console.contains("@@config-test-auto exit 0"), "{context}");
    let auto_out = section(console, "config-test-auto")
        .expect("config-test-auto")
        .join("\n");
    assert!(
        auto_out.contains("LVS: lvs_backend auto: this host runs ipvs;"),
        "{auto_out}"
    );

    for (phase, want) in [
        ("found", "found.expected"),
        ("started", "first.expected"),
        ("reloaded", "second.expected"),
        ("stopped", "stopped.expected"),
    ] {
        let got = table(section(console, phase).unwrap_or_else(|| panic!("no {phase}: {context}")));
        assert_eq!(got, expected(want), "{phase}: {context}");
    }
    assert!(console.contains("@@daemon exit 0"), "{context}");

    // The sync daemons: started, the master restarted with another sync id, stopped; stopping
    // one that no longer runs is not an error.
    for step in [
        "start master",
        "start backup",
        "restart master",
        "stop master",
        "stop backup",
        "stop backup again",
    ] {
        assert!(
            console.contains(&format!("@@sync {step} exit 0")),
            "sync {step}: {context}"
        );
    }
    let started = section(console, "sync-started").expect("sync-started");
    for want in [
        "master sync daemon (mcast=wv0, syncid=9",
        "backup sync daemon (mcast=wv0, syncid=5",
        "master wv0 9 group 224.0.0.81 port 8848 ttl 1",
        "backup wv0 5 group 224.0.0.81 port 8848 ttl 1",
    ] {
        assert!(
            started.iter().any(|l| l.contains(want)),
            "{want}: {started:?}"
        );
    }
    let stopped = section(console, "sync-stopped").expect("sync-stopped");
    assert!(stopped.iter().all(|l| l.trim().is_empty()), "{stopped:?}");
    passed(run);
}

/// Samples whose tables are expected to differ between keepalived and wasmalived, each with
/// why. The test fails if such a sample's tables become equal (remove it here then).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// keepalived's LVS samples, as `tests/keepalived-samples/` holds them (every one runs).
fn sample_names() -> Vec<String> {
    let dir = root().join("tests/keepalived-samples");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("sample entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter_map(|f| f.strip_prefix("keepalived.conf.").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// The rest of the console line that starts with `prefix`, if any.
fn line_after<'a>(console: &'a str, prefix: &str) -> Option<&'a str> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find_map(|l| l.strip_prefix(prefix))
}

/// The differences between two tables, one line per service or destination only one has.
fn table_diff(keepalived: &Table, wasmalived: &Table) -> String {
    let mut out = String::new();
    let services: BTreeSet<&String> = keepalived.keys().chain(wasmalived.keys()).collect();
    for service in services {
        match (keepalived.get(service), wasmalived.get(service)) {
            (Some(_), None) => writeln!(out, "  only keepalived: {service}").unwrap(),
            (None, Some(_)) => writeln!(out, "  only wasmalived: {service}").unwrap(),
            (Some(k), Some(w)) => {
                for d in k.difference(w) {
                    writeln!(out, "  only keepalived: {service} {d}").unwrap();
                }
                for d in w.difference(k) {
                    writeln!(out, "  only wasmalived: {service} {d}").unwrap();
                }
            }
            (None, None) => unreachable!("a service of neither table"),
        }
    }
    out
}

#[test]
#[ignore = "boots a VM under emulation (minutes): make vm-test"]
fn keepalived_lvs_samples_give_the_same_ipvs_table_as_keepalived() {
    let run = vm_run();
    let console = run.console.as_str();
    assert!(
        console.contains("@@done"),
        "the VM did not finish ({}): {console}",
        run.origin
    );
    let mut failures = Vec::new();
    let mut summary = String::new();
    for name in sample_names() {
        let file = format!("keepalived.conf.{name}");
        let log = |daemon: &str| {
            section(console, &format!("sample-log {name} {daemon}"))
                .unwrap_or_default()
                .join("\n")
        };
        // wasmalived's copy of the sample passes -t in the VM (with the plugins it loads).
        match line_after(console, &format!("@@sample-config-test {file} exit ")) {
            Some(rest) if rest.starts_with("0 ") => {}
            other => failures.push(format!("{file}: wasmalived -t in the VM: {other:?}")),
        }
        if line_after(console, &format!("@@sample {name} done")).is_none() {
            failures.push(format!("{file}: its lane did not finish ({})", run.origin));
            continue;
        }
        let mut tables = Vec::new();
        for daemon in ["keepalived", "wasmalived"] {
            let settled =
                line_after(console, &format!("@@sample {name} {daemon} ")).unwrap_or("(nothing)");
            writeln!(summary, "{file} {daemon}: {settled}").unwrap();
            if !settled.starts_with("settled ") {
                failures.push(format!(
                    "{file}: {daemon}'s table did not settle: {settled}\n{}",
                    log(daemon)
                ));
            }
            for (what, want) in [("exit", "0"), ("emptied after", "")] {
                let prefix = format!("@@sample {name} {daemon} {what} ");
                if !line_after(console, &prefix).is_some_and(|rest| rest.starts_with(want)) {
                    failures.push(format!(
                        "{file}: {daemon}: no `{prefix}{want}…` (SIGTERM must stop it and \
                         take its services out of IPVS)\n{}",
                        log(daemon)
                    ));
                }
            }
            let lines = section(console, &format!("sample {name} {daemon}")).unwrap_or_default();
            // What the quorum scripts recorded once settled, and at the daemon's shutdown.
            let scripts = [daemon.to_string(), format!("{daemon}-stop")]
                .map(|when| section(console, &format!("sample-scripts {name} {when}")));
            tables.push((table(lines), scripts));
        }
        let (keepalived, k_scripts) = &tables[0];
        let (wasmalived, w_scripts) = &tables[1];
        let known = KNOWN_DIFFERENCES.iter().find(|(s, _)| *s == file);
        match (keepalived == wasmalived, known) {
            (true, None) | (false, Some(_)) => {}
            (false, None) => failures.push(format!(
                "{file}: wasmalived's IPVS table differs from keepalived's:\n{}\
                 keepalived's log:\n{}\nwasmalived's log:\n{}",
                table_diff(keepalived, wasmalived),
                log("keepalived"),
                log("wasmalived")
            )),
            (true, Some((_, why))) => failures.push(format!(
                "{file}: listed as a known difference ({why}), but the tables are equal: \
                 remove it from KNOWN_DIFFERENCES"
            )),
        }
        if k_scripts.iter().chain(w_scripts).any(Option::is_none) {
            failures.push(format!("{file}: a lane printed no quorum-script record"));
        } else if k_scripts != w_scripts {
            failures.push(format!(
                "{file}: the quorum scripts ran differently (once settled, at the shutdown): \
                 keepalived {k_scripts:?}, wasmalived {w_scripts:?}"
            ));
        }
        writeln!(
            summary,
            "{file}: {} services, {} destinations{}",
            keepalived.len(),
            keepalived.values().map(BTreeSet::len).sum::<usize>(),
            if keepalived == wasmalived {
                ", equal"
            } else {
                ", DIFFERENT"
            }
        )
        .unwrap();
    }
    eprintln!("{summary}");
    assert!(
        failures.is_empty(),
        "{} ({}):\n\n{}",
        "keepalived's LVS samples on IPVS",
        run.origin,
        failures.join("\n\n")
    );
    passed(run);
}

#[test]
fn expected_tables_parse_as_ipvsadm_prints_them() {
    // What `ipvsadm -Ln` prints (padding and all) reads as the expected file's form.
    let printed = "IP Virtual Server version 1.2.1 (size=4096)\n\
        Prot LocalAddress:Port Scheduler Flags\n  \
          -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
        TCP  192.0.2.11:443 lc persistent 300\n  \
          -> 198.51.100.3:443             Route   1      0          0         \n  \
          -> 198.51.100.4:443             Route   2      0          0         \n\
        FWM  7 sed\n  \
          -> 198.51.100.5:0               Tunnel  4      0          0         \n";
    let t = table(printed.lines());
    assert_eq!(t.len(), 2);
    assert_eq!(
        t["TCP 192.0.2.11:443 lc persistent 300"],
        BTreeSet::from([
            "-> 198.51.100.3:443 Route 1 0 0".to_string(),
            "-> 198.51.100.4:443 Route 2 0 0".to_string()
        ])
    );
    let first = expected("first.expected");
    assert_eq!(first.len(), 14);
    assert_eq!(first.values().map(BTreeSet::len).sum::<usize>(), 15);
    assert_eq!(
        expected("stopped.expected"),
        Table::from([("TCP 192.0.2.99:80 rr".to_string(), BTreeSet::new())])
    );
}

#[test]
fn table_diff_names_what_only_one_daemon_programmed() {
    let keepalived = table(
        "TCP 10.10.10.2:1358 rr persistent 50\n  -> 192.168.200.200:1358 Masq 1 0 0\n\
         FWM 1 rr"
            .lines(),
    );
    let wasmalived = table(
        "TCP 10.10.10.2:1358 rr persistent 50\n  -> 192.168.200.2:1358 Masq 0 0 0\n\
         UDP 10.10.10.2:1358 rr"
            .lines(),
    );
    assert_eq!(
        table_diff(&keepalived, &wasmalived),
        "  only keepalived: FWM 1 rr\n\
         \x20 only keepalived: TCP 10.10.10.2:1358 rr persistent 50 -> 192.168.200.200:1358 Masq 1 0 0\n\
         \x20 only wasmalived: TCP 10.10.10.2:1358 rr persistent 50 -> 192.168.200.2:1358 Masq 0 0 0\n\
         \x20 only wasmalived: UDP 10.10.10.2:1358 rr\n"
    );
    assert_eq!(table_diff(&keepalived, &keepalived), "");
}

//! The IPVS backend against a real kernel: `scripts/ipvs-vm.sh` boots Debian's kernel with
//! its `ip_vs` modules in a software-emulated VM (qemu, TCG) whose `/init`
//! (`tests/vm/ipvs/init`) runs wasmalived with `lvs_backend ipvs` and reads the kernel back
//! with `ipvsadm -Ln`: after the start (NAT, DR, TUN, persistence and its granularity, a
//! firewall mark, IPv6, every scheduler of that kernel; a killed run's service taken over and
//! made exactly the configuration's, someone else's left alone), after a reload (a weight
//! changed, a real server and a service removed) and after the shutdown (nothing of ours left, the
//! other service still there); then the kernel's connection-sync daemons, started, restarted
//! and stopped through the backend (`host/lvs/examples/ipvs_sync.rs`).
//!
//! Up to a minute under emulation, and it downloads Debian's kernel once: ignored by `make test`,
//! run by `make vm-test`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasmalived_e2e::wasmalived_bin;

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

#[test]
#[ignore = "boots a VM under emulation (minutes): make vm-test"]
fn ipvs_backend_programs_reloads_and_clears_a_real_kernel() {
    let bin = wasmalived_bin().expect("wasmalived binary");
    let out = std::env::temp_dir().join(format!("ipvs-vm-{}", std::process::id()));
    let status = Command::new(root().join("scripts/ipvs-vm.sh"))
        .arg(&out)
        .env("WASMALIVED_BIN", &bin)
        .status()
        .expect("running scripts/ipvs-vm.sh");
    let console_path = out.join("console.log");
    let console = fs::read_to_string(&console_path)
        .unwrap_or_else(|e| panic!("{}: {e}", console_path.display()));
    let context = format!(
        "console in {} (qemu: {status})\n{console}",
        console_path.display()
    );
    assert!(
        console.contains("@@done"),
        "the VM did not finish: {context}"
    );
    assert!(console.contains("@@ip_vs loaded"), "{context}");

    // `-t` on the first configuration: valid, on IPVS, and it says TUN needs IPVS.
    assert!(console.contains("@@config-test exit 0"), "{context}");
    let test_out = section(&console, "config-test")
        .expect("config-test")
        .join("\n");
    assert!(
        test_out.contains("LVS: lvs_backend ipvs: this host runs ipvs; the configuration needs lvs_backend ipvs (virtual_server fwmark 7/tcp: lb_kind TUN"),
        "{test_out}"
    );

    // `auto` takes IPVS where the kernel has it.
    assert!(console.contains("@@config-test-auto exit 0"), "{context}");
    let auto_out = section(&console, "config-test-auto")
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
        let got =
            table(section(&console, phase).unwrap_or_else(|| panic!("no {phase}: {context}")));
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
    let started = section(&console, "sync-started").expect("sync-started");
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
    let stopped = section(&console, "sync-stopped").expect("sync-stopped");
    assert!(stopped.iter().all(|l| l.trim().is_empty()), "{stopped:?}");
    // Passed: the logs are of no further use.
    let _ = fs::remove_dir_all(&out);
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

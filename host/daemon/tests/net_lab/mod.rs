//! Namespace lab for the `net_*` tests (run as root): two network namespaces `A` and `B`
//! joined by one veth pair, documentation addresses, DAD and rp_filter off, removed on drop
//! (also when a test panics).
//!
//! ```text
//!  netns A                                   netns B
//!  vethA 02:00:00:00:00:01  <--- veth --->   vethB 02:00:00:00:00:02
//!  192.0.2.1/24, 192.0.2.11/24               192.0.2.2/24
//!  2001:db8::1/64, fe80::…                   2001:db8::2/64, fe80::…
//! ```
//! `setns` only moves the calling thread, so each namespace's work runs on its own std
//! thread ([`Lab::spawn_in`]) with its own current-thread runtime ([`block_on`]).

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// MAC of `vethA`.
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC of `vethB`.
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique_name() -> String {
    format!(
        "wa-net-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The two-namespace lab.
pub struct Lab {
    /// Namespace A (interface `vethA`).
    pub a: String,
    /// Namespace B (interface `vethB`).
    pub b: String,
}

impl Lab {
    /// Creates the namespaces, the veth pair and the addresses, and waits until both
    /// link-local addresses are usable.
    pub fn new() -> Lab {
        assert!(
            run("id", &["-u"]).trim() == "0",
            "the net_* tests need root (network namespaces, raw sockets)"
        );
        let lab = Lab {
            a: unique_name(),
            b: unique_name(),
        };
        for ns in [&lab.a, &lab.b] {
            run("ip", &["netns", "add", ns]);
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ],
            );
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        run(
            "ip",
            &[
                "-n",
                &lab.a,
                "link",
                "add",
                "vethA",
                "address",
                "02:00:00:00:00:01",
                "type",
                "veth",
                "peer",
                "name",
                "vethB",
                "address",
                "02:00:00:00:00:02",
                "netns",
                &lab.b,
            ],
        );
        lab.ip(&lab.a, &["addr", "add", "192.0.2.1/24", "dev", "vethA"]);
        lab.ip(&lab.a, &["addr", "add", "192.0.2.11/24", "dev", "vethA"]);
        lab.ip(
            &lab.a,
            &["addr", "add", "2001:db8::1/64", "dev", "vethA", "nodad"],
        );
        lab.ip(&lab.b, &["addr", "add", "192.0.2.2/24", "dev", "vethB"]);
        lab.ip(
            &lab.b,
            &["addr", "add", "2001:db8::2/64", "dev", "vethB", "nodad"],
        );
        lab.ip(&lab.a, &["link", "set", "vethA", "up"]);
        lab.ip(&lab.b, &["link", "set", "vethB", "up"]);
        lab.wait_link_local(&lab.a.clone(), "vethA");
        lab.wait_link_local(&lab.b.clone(), "vethB");
        lab
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn wait_link_local(&self, ns: &str, dev: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.ip(ns, &["-6", "addr", "show", "dev", dev, "scope", "link"]);
            if out.contains("inet6 fe80") && !out.contains("tentative") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no usable link-local on {dev} in {ns}: {out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `f` on a new thread inside namespace `ns`.
    pub fn spawn_in<R, F>(&self, ns: &str, f: F) -> JoinHandle<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let path = PathBuf::from("/run/netns").join(ns);
        std::thread::spawn(move || {
            wasmalived::net::enter_netns(&path)
                .unwrap_or_else(|e| panic!("entering {}: {e}", path.display()));
            f()
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            // Best effort: deleting the namespace also removes its veth end (and the pair).
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Runs a future to completion on a fresh current-thread runtime (on this thread, so in
/// this thread's namespace).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(fut)
}

/// Joins a lab thread, re-raising its panic.
pub fn join<R>(handle: JoinHandle<R>) -> R {
    match handle.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

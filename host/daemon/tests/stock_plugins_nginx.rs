//! `nginx-process` (`plugins/nginx-process`) against a real nginx (Debian package,
//! `/usr/sbin/nginx`) started and killed in a network namespace of its own, through the real
//! CLI (`wasmalived plugin run --json`); the CLI runs in that namespace with
//! `--processes-netns`, so nginx processes elsewhere on the machine do not count.
//!
//! Needs root (`ip netns`): built with the `lab-tests` feature, as `make test` does.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cli_support::{args, plugin_run, run, Run, CLI};

/// `wasmalived plugin run PLUGIN ARGS... --json` inside a network namespace.
fn run_plugin(ns: &Netns, name: &str, args: &[String]) -> Run {
    let mut cli = Command::new("ip");
    cli.args(["netns", "exec", &ns.name, CLI]);
    run(plugin_run(cli, name, args))
}

// ---------------------------------------------------------------------------------------------
// nginx-process, in network namespaces

/// nginx from the Debian package.
const NGINX: &str = "/usr/sbin/nginx";

/// A network namespace of our own, deleted (with everything in it killed) on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "stockpl-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ok = |args: &[&str]| {
            let out = Command::new("ip").args(args).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => panic!(
                    "`ip {}` failed: {} — the nginx-process tests need root and iproute2 \
                     (network namespaces)",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => panic!("cannot run `ip` ({e}): the nginx-process tests need iproute2"),
            }
        };
        ok(&["netns", "add", &name]);
        let ns = Netns { name };
        ok(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// A command run inside the namespace.
    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// PIDs of the processes in the namespace.
    fn pids(&self) -> Vec<u32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// SIGKILL everything in the namespace and wait until it is gone.
    fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes {pids:?} in {} survive SIGKILL",
                self.name
            );
            for pid in pids {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// An nginx with its own prefix, config and logs in a temp dir, run inside a namespace.
struct Nginx {
    prefix: PathBuf,
}

impl Nginx {
    /// Write the config (master + 1 worker, listening on 127.0.0.1:8080 in the namespace).
    fn new(tag: &str) -> Nginx {
        assert!(
            Path::new(NGINX).is_file(),
            "{NGINX} is missing: install Debian's nginx-light"
        );
        let prefix =
            std::env::temp_dir().join(format!("stockpl-nginx-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(&prefix).expect("create the nginx prefix");
        let p = prefix.display();
        let conf = format!(
            "daemon on;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{ worker_connections 16; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  \
             proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  \
             uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  \
             server {{ listen 127.0.0.1:8080; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
        );
        std::fs::write(prefix.join("nginx.conf"), conf).expect("write nginx.conf");
        Nginx { prefix }
    }

    /// The argv that starts it (also used as the remediation command).
    fn start_argv(&self) -> Vec<String> {
        let p = self.prefix.display();
        vec![
            NGINX.into(),
            "-p".into(),
            format!("{p}/"),
            "-c".into(),
            format!("{p}/nginx.conf"),
            "-e".into(),
            format!("{p}/error.log"),
        ]
    }

    /// Start it in `ns` and wait for master + worker.
    fn start(&self, ns: &Netns) {
        let argv = self.start_argv();
        let out = ns
            .exec(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("run nginx");
        assert!(
            out.status.success(),
            "nginx did not start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
        );
        wait_for(
            || ns.pids().len() == 2,
            "nginx master + worker in the namespace",
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Run `nginx-process` in `ns` with `params` and `--remediation` grants.
fn nginx_check(ns: &Netns, params: &[(&str, &str)], remediations: &[(&str, String)]) -> Run {
    let mut flags = vec![
        "--processes-netns".to_string(),
        "--timeout".into(),
        "15s".into(),
    ];
    for (id, cmd) in remediations {
        flags.push("--remediation".into());
        flags.push(format!("{id}={cmd}"));
    }
    let mut all: Vec<(&str, &str)> = vec![("process", "nginx"), ("settle_ms", "1000")];
    all.extend_from_slice(params);
    let mut a = args(&all, &[]);
    a.extend(flags);
    run_plugin(ns, "nginx-process", &a)
}

#[test]
fn nginx_running_is_ok_and_counted_per_namespace() {
    let ns = Netns::new("run");
    let nginx = Nginx::new("run");
    nginx.start(&ns);
    let unused = [("unused", "/bin/true".to_string())];
    let r = nginx_check(&ns, &[], &unused);
    r.expect(0, "ok", "");
    assert_eq!(r.measurement("count"), 2.0, "master + 1 worker; {r}");
    assert_eq!(r.measurement("remediated"), 0.0, "{r}");
    let r = nginx_check(&ns, &[("min_count", "3")], &unused);
    r.expect(1, "fail", "2 `nginx` processes running, want at least 3");

    // From another namespace, this nginx is not counted (`processes netns`).
    let elsewhere = Netns::new("else");
    let r = nginx_check(&elsewhere, &[], &unused);
    r.expect(1, "fail", "0 `nginx` processes running");
    assert_eq!(r.measurement("count"), 0.0, "{r}");
}

#[test]
fn nginx_killed_is_restarted_by_remediation() {
    let ns = Netns::new("fix");
    let nginx = Nginx::new("fix");
    nginx.start(&ns);
    ns.kill_all();
    let r = nginx_check(
        &ns,
        &[("remediation", "restart")],
        &[("restart", nginx.start_argv().join(" "))],
    );
    r.expect(0, "ok", "");
    assert_eq!(r.measurement("remediated"), 1.0, "{r}");
    assert!(r.measurement("count") >= 1.0, "{r}");
    assert!(
        r.message().contains("remediation `restart` exited 0"),
        "{r}"
    );
    // It really runs again, in the namespace.
    assert!(
        !ns.pids().is_empty(),
        "nginx is not running after the remediation"
    );
    nginx_check(
        &ns,
        &[("remediation", "restart")],
        &[("restart", "/bin/false".into())],
    )
    .expect(0, "ok", "");
}

#[test]
fn nginx_killed_and_remediation_useless_is_fatal() {
    let ns = Netns::new("fatal");
    let nginx = Nginx::new("fatal");
    nginx.start(&ns);
    ns.kill_all();
    let started = Instant::now();
    let r = nginx_check(
        &ns,
        &[("remediation", "restart")],
        &[("restart", "/bin/true".into())],
    );
    r.expect(
        2,
        "fatal",
        "remediation `restart` exited 0; still 0 after 1000ms",
    );
    assert_eq!(r.measurement("remediated"), 1.0, "{r}");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "did not settle; {r}"
    );
}

#[test]
fn nginx_killed_without_remediation_fails() {
    let ns = Netns::new("fail");
    let nginx = Nginx::new("fail");
    nginx.start(&ns);
    ns.kill_all();
    // With no `remediation` parameter none is run and the verdict is a plain fail.
    let r = nginx_check(&ns, &[], &[("unused", "/bin/true".into())]);
    r.expect(1, "fail", "0 `nginx` processes running, want at least 1");
    assert_eq!(r.measurement("remediated"), 0.0, "{r}");
    // Without any remediation grant the plugin still loads (`remediation` is linked with an
    // empty command table) and the verdict is the same plain fail.
    let r = nginx_check(&ns, &[], &[]);
    r.expect(1, "fail", "0 `nginx` processes running, want at least 1");
    // Asking for a remediation id that is not granted: refused by the host, so no process
    // comes back and the node stands down.
    let r = nginx_check(&ns, &[("remediation", "restart")], &[]);
    assert_eq!(
        r.code,
        Some(2),
        "an ungranted remediation cannot bring nginx back; {r}"
    );
    assert!(r.reason().contains("not granted"), "{r}");
}

//! The LVS director lab: two directors running wasmalived in front of real servers running
//! nginx, and a client with many source addresses, in NAT or direct-routing mode.
//!
//! ```text
//!  NAT:   client 192.0.2.100 (+ .101…124) ─ br0 ─ d1/d2 eth0 (.1/.2, VIP 192.0.2.10)
//!                                                 d1/d2 eth1 (198.51.100.1/.2,
//!                                                            gateway VIP 198.51.100.254)
//!                                           br1 ─ rs1…rsN 198.51.100.11… (default via .254)
//!
//!  DR:    client, d1/d2 (.1/.2, VIP 192.0.2.10), rs1…rsN 192.0.2.11… (VIP on lo,
//!         arp_ignore 1 / arp_announce 2) — all on br0
//! ```
//! Both directors run one `vrrp_sync_group` (NAT: the client-side VIP and the real servers'
//! gateway VIP together) and the same `virtual_server`; d1 has priority 150, d2 100. The
//! stock checker plugins are copied into the lab's plugin directory as `tcp.wasm`,
//! `http.wasm`, `dns.wasm` and `smtp.wasm`, as an installation puts them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::checks::plugin_path;
use crate::daemon::{Daemon, Impl};
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::process::Proc;
use crate::timing::wait_for;

/// The client-side VIP (the virtual server's address).
pub const VIP: &str = "192.0.2.10";
/// The stock plugins keepalived's checkers compile to (crate `plugin-NAME`, installed as
/// `NAME.wasm`).
pub const STOCK_CHECKERS: [&str; 4] = ["tcp", "http", "dns", "smtp"];
/// The real servers' gateway VIP (NAT).
pub const GW_VIP: &str = "198.51.100.254";
/// The client-side IPv6 VIP ([`LvsLab::enable_ipv6`]).
pub const VIP6: &str = "2001:db8::10";
/// The real servers' IPv6 gateway VIP (NAT).
pub const GW_VIP6: &str = "2001:db8:1::fe";
/// The directors.
pub const DIRECTORS: [&str; 2] = ["d1", "d2"];
/// Their priorities.
pub const DIRECTOR_PRIORITIES: [u8; 2] = [150, 100];
/// The client.
pub const CLIENT: &str = "client";
/// The client's extra source addresses (for hashing and persistence): `192.0.2.101` on.
pub const CLIENT_SOURCES: u8 = 24;

/// How the directors forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Destination NAT; the real servers route back through the gateway VIP.
    Nat,
    /// Direct routing; the real servers hold the VIP on `lo` and answer the client directly.
    Dr,
}

impl Mode {
    /// keepalived's `lb_kind`.
    pub fn lb_kind(self) -> &'static str {
        match self {
            Mode::Nat => "NAT",
            Mode::Dr => "DR",
        }
    }
}

/// The lab.
pub struct LvsLab {
    /// The namespaces (public for every helper of [`Lab`]).
    pub lab: Lab,
    /// Forwarding mode.
    pub mode: Mode,
    /// Real server names (`rs1`…).
    pub real_servers: Vec<String>,
    /// Where the stock checker plugins (`tcp.wasm`, `http.wasm`, `dns.wasm`, `smtp.wasm`) are.
    pub plugin_dir: PathBuf,
    nginx: Vec<Option<Proc>>,
    daemons: [Option<Daemon>; 2],
    ipv6: bool,
}

impl LvsLab {
    /// Build the topology for `mode` with `n` real servers, nginx running on each.
    pub fn new(test: &str, mode: Mode, n: usize) -> Result<LvsLab> {
        let mut lab = Lab::new(test)?;
        lab.add_client(CLIENT, "192.0.2.100/24", "2001:db8::100/64")?;
        let mut batch = String::new();
        for i in 0..CLIENT_SOURCES {
            let _ = writeln!(batch, "addr add 192.0.2.{}/24 dev eth0", 101 + u32::from(i));
        }
        batch_via_file(&lab, CLIENT, "sources", &batch)?;
        for (i, d) in DIRECTORS.iter().enumerate() {
            lab.add_node(
                d,
                &format!("192.0.2.{}/24", i + 1),
                &format!("2001:db8::{}/64", i + 1),
            )?;
            lab.run(d, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
        }
        if mode == Mode::Nat {
            lab.add_bridge("br1")?;
            for (i, d) in DIRECTORS.iter().enumerate() {
                lab.add_link(
                    d,
                    "eth1",
                    "br1",
                    1,
                    &format!("198.51.100.{}/24", i + 1),
                    &format!("2001:db8:1::{}/64", i + 1),
                )?;
            }
        }
        let mut real_servers = Vec::new();
        for i in 0..n {
            let name = format!("rs{}", i + 1);
            match mode {
                Mode::Nat => {
                    lab.add_node_on(
                        &name,
                        "br1",
                        &format!("198.51.100.{}/24", 11 + i),
                        &format!("2001:db8:1::{}/64", 11 + i),
                    )?;
                    lab.run(&name, &["ip", "route", "add", "default", "via", GW_VIP])?;
                }
                Mode::Dr => {
                    lab.add_node(
                        &name,
                        &format!("192.0.2.{}/24", 11 + i),
                        &format!("2001:db8::{}/64", 11 + i),
                    )?;
                    lab.run(
                        &name,
                        &[
                            "sysctl",
                            "-q",
                            "-w",
                            "net.ipv4.conf.all.arp_ignore=1",
                            "net.ipv4.conf.all.arp_announce=2",
                            "net.ipv4.conf.eth0.arp_ignore=1",
                            "net.ipv4.conf.eth0.arp_announce=2",
                        ],
                    )?;
                    lab.run(
                        &name,
                        &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"],
                    )?;
                }
            }
            real_servers.push(name);
        }
        let plugin_dir = lab.dir().join("plugins");
        fs::create_dir_all(&plugin_dir)
            .map_err(|e| LabError::io(format!("creating {}", plugin_dir.display()), e))?;
        for crate_name in STOCK_CHECKERS {
            let src = plugin_path(crate_name)?;
            let dst = plugin_dir.join(format!("{crate_name}.wasm"));
            fs::copy(&src, &dst)
                .map_err(|e| LabError::io(format!("copying {}", src.display()), e))?;
        }
        let mut me = LvsLab {
            lab,
            mode,
            real_servers,
            plugin_dir,
            nginx: Vec::new(),
            daemons: [None, None],
            ipv6: false,
        };
        for i in 0..n {
            let name = me.real_servers[i].clone();
            let p = me.lab.start_nginx(&name)?;
            me.nginx.push(Some(p));
        }
        Ok(me)
    }

    /// Add IPv6 service (NAT only): the directors forward IPv6 and run two VRRPv3 instances
    /// for [`VIP6`] and [`GW_VIP6`] in the same sync group; the real servers route through
    /// the latter.
    pub fn enable_ipv6(&mut self) -> Result<()> {
        if self.mode != Mode::Nat {
            return Err(LabError::check("the IPv6 lab is NAT only"));
        }
        for d in DIRECTORS {
            self.lab
                .run(d, &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])?;
        }
        for rs in &self.real_servers {
            self.lab
                .run(rs, &["ip", "-6", "route", "add", "default", "via", GW_VIP6])?;
        }
        self.ipv6 = true;
        Ok(())
    }

    /// The IPv6 address of real server `i` (NAT lab).
    pub fn rs_addr6(&self, i: usize) -> String {
        format!("2001:db8:1::{}", 11 + i)
    }

    /// The address of real server `i` (0-based).
    pub fn rs_addr(&self, i: usize) -> String {
        match self.mode {
            Mode::Nat => format!("198.51.100.{}", 11 + i),
            Mode::Dr => format!("192.0.2.{}", 11 + i),
        }
    }

    /// The client's source address `k` (0-based, `192.0.2.101` on).
    pub fn source(k: u8) -> String {
        format!("192.0.2.{}", 101 + u32::from(k))
    }

    /// The director config for director `i`: `global_defs`, the sync group and its instances,
    /// then `services` (`virtual_server` blocks, see [`LvsLab::virtual_server`]).
    pub fn config(&self, i: usize, services: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "global_defs {{\n    router_id {}\n    plugin_dir {}\n}}",
            DIRECTORS[i],
            self.plugin_dir.display()
        );
        let mut members = vec!["VI_CLIENT"];
        if self.mode == Mode::Nat {
            members.push("VI_SERVERS");
        }
        if self.ipv6 {
            members.extend(["VI_CLIENT6", "VI_SERVERS6"]);
        }
        let _ = writeln!(
            s,
            "vrrp_sync_group G {{\n    group {{\n        {}\n    }}\n}}",
            members.join("\n        ")
        );
        let state = if i == 0 { "MASTER" } else { "BACKUP" };
        let prio = DIRECTOR_PRIORITIES[i];
        let _ = writeln!(
            s,
            "vrrp_instance VI_CLIENT {{\n    state {state}\n    interface eth0\n    virtual_router_id 51\n    priority {prio}\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}"
        );
        if self.mode == Mode::Nat {
            let _ = writeln!(
                s,
                "vrrp_instance VI_SERVERS {{\n    state {state}\n    interface eth1\n    virtual_router_id 52\n    priority {prio}\n    advert_int 1\n    virtual_ipaddress {{\n        {GW_VIP}/24\n    }}\n}}"
            );
        }
        if self.ipv6 {
            for (name, iface, vrid, vip) in [
                ("VI_CLIENT6", "eth0", 61, VIP6),
                ("VI_SERVERS6", "eth1", 62, GW_VIP6),
            ] {
                let _ = writeln!(
                    s,
                    "vrrp_instance {name} {{\n    version 3\n    state {state}\n    interface {iface}\n    virtual_router_id {vrid}\n    priority {prio}\n    advert_int 1\n    virtual_ipaddress {{\n        {vip}/64\n    }}\n}}"
                );
            }
        }
        s.push_str(services);
        s
    }

    /// A `virtual_server VIP 80` block in this lab's mode: `options` (lb_algo, delay_loop,
    /// persistence, quorum…) then one `real_server` per `(index, weight)` of `members`, each
    /// with `body` (checkers and options, e.g. `TCP_CHECK { connect_timeout 1 }`).
    pub fn virtual_server(&self, options: &str, members: &[(usize, u32)], body: &str) -> String {
        let bodies: Vec<(usize, u32, String)> = members
            .iter()
            .map(|(i, w)| (*i, *w, body.to_owned()))
            .collect();
        self.virtual_server_with(options, &bodies)
    }

    /// [`LvsLab::virtual_server`] with a body per real server.
    pub fn virtual_server_with(&self, options: &str, members: &[(usize, u32, String)]) -> String {
        let mut s = format!(
            "virtual_server {VIP} 80 {{\n    lb_kind {}\n    protocol TCP\n{options}\n",
            self.mode.lb_kind()
        );
        for (i, w, body) in members {
            let _ = writeln!(
                s,
                "    real_server {} 80 {{\n        weight {w}\n        {body}\n    }}",
                self.rs_addr(*i)
            );
        }
        s.push_str("}\n");
        s
    }

    /// Start (or restart) wasmalived on director `i` with `config`.
    pub fn start_director(&mut self, i: usize, config: &str) -> Result<()> {
        self.start_director_env(i, config, &[])
    }

    /// [`LvsLab::start_director`] with extra environment variables for the daemon (e.g.
    /// `WASMALIVED_LOG=info` instead of the lab's debug log, for a benchmark).
    pub fn start_director_env(
        &mut self,
        i: usize,
        config: &str,
        env: &[(&str, &str)],
    ) -> Result<()> {
        let d = self
            .lab
            .start_daemon_env(Impl::Wasmalived, DIRECTORS[i], config, env)?;
        self.daemons[i] = Some(d);
        Ok(())
    }

    /// Serve the pool addresses `indices` (numbered as [`LvsLab::rs_addr`] numbers them, from
    /// the lab's `n` on) from real server `i`'s namespace too: its one nginx listens on every
    /// address, so a pool of 100 members needs neither 100 namespaces nor 100 nginx. Direct
    /// routing stops below the client's addresses (`192.0.2.100`), NAT below the gateway VIP.
    pub fn serve_aliases(&self, i: usize, indices: std::ops::Range<usize>) -> Result<()> {
        let limit = match self.mode {
            Mode::Nat => 243,
            Mode::Dr => 89,
        };
        if indices.start < self.real_servers.len() || indices.end > limit {
            return Err(LabError::check(format!(
                "alias indices {indices:?} must lie in {}..{limit}",
                self.real_servers.len()
            )));
        }
        let mut batch = String::new();
        for j in indices {
            let _ = writeln!(batch, "addr add {}/24 dev eth0", self.rs_addr(j));
        }
        batch_via_file(&self.lab, &self.real_servers[i], "aliases", &batch).map(|_| ())
    }

    /// Director `i`'s daemon.
    pub fn director(&self, i: usize) -> Result<&Daemon> {
        self.daemons[i]
            .as_ref()
            .ok_or_else(|| LabError::check(format!("{} is not running", DIRECTORS[i])))
    }

    /// Waits until director `i` is Master of its instances.
    pub fn wait_master(&self, i: usize, timeout: Duration) -> Result<Duration> {
        let d = self.director(i)?;
        self.lab.wait_state(d, "VI_CLIENT", "MASTER", timeout)
    }

    /// Director `i`'s `status --json` document.
    pub fn status(&self, i: usize) -> Result<serde_json::Value> {
        let text = self.director(i)?.status_json()?;
        serde_json::from_str(&text).map_err(|e| LabError::parse("status JSON", &e.to_string()))
    }

    /// Director `i`'s pool: real server address → weight in the pool (absent: not in it).
    pub fn pool(&self, i: usize) -> Result<BTreeMap<String, u64>> {
        let status = self.status(i)?;
        let mut out = BTreeMap::new();
        for vs in status["virtual_servers"].as_array().into_iter().flatten() {
            for rs in vs["real_servers"].as_array().into_iter().flatten() {
                if let (Some(addr), Some(w)) = (rs["address"].as_str(), rs["pool_weight"].as_u64())
                {
                    out.insert(addr.to_owned(), w);
                }
            }
        }
        Ok(out)
    }

    /// Whether director `i` shows a pool its data path does not run yet (`pending`).
    pub fn pending(&self, i: usize) -> Result<bool> {
        let status = self.status(i)?;
        Ok(status["virtual_servers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|vs| vs["pending"].as_bool() == Some(true)))
    }

    /// Waits until director `i`'s pool is exactly `want` (address → weight) and its data
    /// path runs it.
    pub fn wait_pool(
        &self,
        i: usize,
        want: &[(String, u64)],
        timeout: Duration,
    ) -> Result<Duration> {
        let want: BTreeMap<String, u64> = want.iter().cloned().collect();
        wait_for(
            &format!("the pool of {} to be {want:?}", DIRECTORS[i]),
            timeout,
            Duration::from_millis(20),
            || Ok(self.pool(i)? == want && !self.pending(i)?),
            || {
                format!(
                    "pool now: {:?}\n{}",
                    self.pool(i).ok(),
                    self.lab.log_summary(30)
                )
            },
        )
    }

    /// `count` GETs of `http://VIP/` from the client, from source `src` (`None`: its main
    /// address), each on a new connection: the serving real server of each (`None`: failed).
    pub fn gets(&self, src: Option<&str>, count: usize) -> Result<Vec<Option<String>>> {
        let url = format!("http://{VIP}/");
        let mut argv: Vec<String> = vec![
            "curl".into(),
            "-s".into(),
            "--noproxy".into(),
            "*".into(),
            "--max-time".into(),
            "2".into(),
            "-w".into(),
            "code=%{http_code}\\n".into(),
        ];
        if let Some(src) = src {
            argv.push("--interface".into());
            argv.push(src.into());
        }
        for _ in 0..count {
            argv.push(url.clone());
        }
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.lab.exec(CLIENT, &refs)?;
        Ok(parse_gets(&String::from_utf8_lossy(&out.stdout), count))
    }

    /// How many of `count` GETs each real server served (failed ones under `"-"`).
    pub fn spread(&self, src: Option<&str>, count: usize) -> Result<BTreeMap<String, usize>> {
        let mut out = BTreeMap::new();
        for got in self.gets(src, count)? {
            *out.entry(got.unwrap_or_else(|| "-".into())).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// Kill nginx on real server `i` (SIGKILL to its group).
    pub fn kill_nginx(&mut self, i: usize) -> Result<()> {
        if let Some(p) = self.nginx[i].take() {
            p.kill9_group()?;
            p.wait_exit(Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// Start nginx on real server `i` again.
    pub fn start_nginx(&mut self, i: usize) -> Result<()> {
        let name = self.real_servers[i].clone();
        let p = self.lab.start_nginx(&name)?;
        self.nginx[i] = Some(p);
        Ok(())
    }
}

/// `curl -w 'code=%{http_code}\n'` output of `count` requests: the page's node per request.
fn parse_gets(text: &str, count: usize) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        if let Some(code) = line.strip_prefix("code=") {
            let served = body.take().filter(|_| code == "200");
            out.push(served);
        } else if let Some(node) = line.strip_prefix("served by ") {
            body = Some(node.trim().to_owned());
        } else if let Some(rest) = line.split("served by ").nth(1) {
            body = Some(rest.trim().to_owned());
        }
    }
    out.resize(count, None);
    out
}

fn batch_via_file(lab: &Lab, node: &str, label: &str, batch: &str) -> Result<String> {
    let file = lab.dir().join(format!("{node}-{label}.ip-batch"));
    fs::write(&file, batch).map_err(|e| LabError::io(format!("writing {}", file.display()), e))?;
    let f = file.to_string_lossy().into_owned();
    lab.run(node, &["ip", "-batch", &f])
}

impl LvsLab {
    /// Write `size` bytes as `/big.bin` on every real server's nginx (for long downloads).
    pub fn big_file(&self, size: usize) -> Result<()> {
        for rs in &self.real_servers {
            let f = self.lab.dir().join(format!("{rs}-nginx/html/big.bin"));
            fs::write(&f, vec![b'x'; size])
                .map_err(|e| LabError::io(format!("writing {}", f.display()), e))?;
        }
        Ok(())
    }

    /// A download of `/big.bin` ([`LvsLab::big_file`]) through the VIP that takes time: curl
    /// paced at 512 KiB/s, into a client receive window of 64 KiB (curl's `--limit-rate` only
    /// paces its reads; with the default buffers the kernel takes megabytes in milliseconds).
    /// Returns curl and the file it writes.
    pub fn slow_download(&self) -> Result<(Proc, PathBuf)> {
        self.lab.run(
            CLIENT,
            &["sysctl", "-q", "-w", "net.ipv4.tcp_rmem=4096 16384 65536"],
        )?;
        let out = self.lab.dir().join("download.bin");
        let curl = self.lab.spawn(
            CLIENT,
            &[
                "curl",
                "-s",
                "-f",
                "--noproxy",
                "*",
                "--limit-rate",
                "512K",
                "-o",
                &out.to_string_lossy(),
                &format!("http://{VIP}/big.bin"),
            ],
            "download.log",
        )?;
        Ok((curl, out))
    }

    /// A script in the lab directory that appends its arguments to `<name>.log` there; returns
    /// (script path, log path).
    pub fn recorder(&self, name: &str) -> Result<(PathBuf, PathBuf)> {
        use std::os::unix::fs::PermissionsExt;
        let script = self.lab.dir().join(format!("{name}.sh"));
        let log = self.lab.dir().join(format!("{name}.log"));
        fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
        )
        .map_err(|e| LabError::io(format!("writing {}", script.display()), e))?;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
            .map_err(|e| LabError::io(format!("chmod {}", script.display()), e))?;
        Ok((script, log))
    }

    /// Reload director `i` with `config` (written over its config file, then SIGHUP).
    pub fn reload(&self, i: usize, config: &str) -> Result<()> {
        let d = self.director(i)?;
        fs::write(&d.conf, config)
            .map_err(|e| LabError::io(format!("writing {}", d.conf.display()), e))?;
        d.proc.signal("HUP")
    }

    /// A director's machine dies: its daemon is SIGKILLed and its links go down (a killed
    /// daemon alone would leave its kernel rules forwarding and its VIPs configured).
    pub fn crash_director(&mut self, i: usize) -> Result<()> {
        if let Some(d) = self.daemons[i].take() {
            d.crash()?;
        }
        let node = DIRECTORS[i];
        // Everything else on the machine dies with it (conntrackd, scripts).
        crate::lab::kill_everything_in(&self.lab.node(node)?.ns);
        self.lab.run(node, &["ip", "link", "set", "eth0", "down"])?;
        if self.mode == Mode::Nat {
            self.lab.run(node, &["ip", "link", "set", "eth1", "down"])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_output_is_split_per_request() {
        let text = "served by rs1\ncode=200\ncode=000\nserved by rs2\ncode=200\n";
        assert_eq!(
            parse_gets(text, 4),
            vec![Some("rs1".into()), None, Some("rs2".into()), None]
        );
    }
}

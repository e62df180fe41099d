//! The namespace lab: a bridge in its own namespace, one namespace per node, veth pairs
//! between them, and cleanup of everything on drop (also when a test panics).
//!
//! ```text
//!   ns <prefix>-br:   br0 (stp 0, forward_delay 0, mcast_snooping 0)
//!                      |  v<node> ... one veth end per node
//!   ns <prefix>-<node>: eth0 (02:00:00:00:00:NN), lo
//! ```
//! Nothing touches the host's interfaces; namespaces have no default route.

use std::fs::{self, File};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::process::Proc;
use crate::timing::wait_for;

/// Root of the per-test directories (configs, logs, captures).
pub const LAB_ROOT: &str = "/tmp/wasmalived-e2e";

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// One host of the lab (a VRRP node or a client).
#[derive(Clone, Debug)]
pub struct Node {
    /// Short name used by tests (`n1`, `client`).
    pub name: String,
    /// Its network namespace.
    pub ns: String,
    /// IPv4 address without prefix length.
    pub v4: IpAddr,
    /// IPv6 address without prefix length.
    pub v6: IpAddr,
    /// MAC of its `eth0`: `02:00:00:00:00:NN`, NN = last octet of the IPv4 address in hex.
    pub mac: String,
}

/// A lab of namespaces for one test. Create with [`Lab::new`], add hosts, start processes;
/// everything is torn down on drop. The directory with logs is deleted only after
/// [`Lab::pass`]; otherwise it is kept and its path printed.
pub struct Lab {
    prefix: String,
    dir: PathBuf,
    bridge_ns: String,
    nodes: Vec<Node>,
    procs: Mutex<Vec<Proc>>,
    spawn_seq: AtomicU32,
    passed: bool,
}

impl Lab {
    /// Creates the bridge namespace and the per-test directory. `test_name` only seeds the
    /// unique prefix (`wa` + 4 characters of it + pid + counter, at most 15 characters).
    pub fn new(test_name: &str) -> Result<Lab> {
        reap_stale_namespaces();
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = lab_prefix(test_name, std::process::id(), n);
        let dir = Path::new(LAB_ROOT).join(format!("{test_name}-{prefix}"));
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(|e| LabError::io(format!("clearing {}", dir.display()), e))?;
        }
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let bridge_ns = format!("{prefix}-br");
        let mut lab = Lab {
            prefix,
            dir,
            bridge_ns: String::new(),
            nodes: Vec::new(),
            procs: Mutex::new(Vec::new()),
            spawn_seq: AtomicU32::new(0),
            passed: false,
        };
        cmd::run(&["ip", "netns", "add", &bridge_ns])?;
        lab.bridge_ns = bridge_ns.clone();
        // No IPv6 on the bridge's own ports: they would only add RS/NS noise to captures.
        cmd::run(&[
            "ip",
            "netns",
            "exec",
            &bridge_ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ])?;
        lab.ip_batch(
            &bridge_ns,
            "bridge",
            "link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n\
             link set br0 up\nlink set lo up\n",
        )?;
        eprintln!("lab {}: directory {}", lab.prefix, lab.dir.display());
        Ok(lab)
    }

    /// The unique prefix of this lab's namespace names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The per-test directory (configs, logs, captures).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace holding `br0`.
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    /// Every host added so far.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Looks up a host by name.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            LabError::check(format!("no node named {name:?} in lab {}", self.prefix))
        })
    }

    /// A veth pair: `veth` in the bridge namespace, up and enslaved to `bridge`; its peer
    /// `peer` in namespace `ns`.
    fn plug_veth(&self, veth: &str, peer: &str, ns: &str, bridge: &str) -> Result<()> {
        cmd::run(&[
            "ip",
            "-n",
            &self.bridge_ns,
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            ns,
        ])?;
        cmd::run(&[
            "ip",
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            veth,
            "master",
            bridge,
            "up",
        ])
        .map(|_| ())
    }

    fn ip_batch(&self, ns: &str, label: &str, script: &str) -> Result<()> {
        let file = self.dir.join(format!("{label}.ip-batch"));
        fs::write(&file, script)
            .map_err(|e| LabError::io(format!("writing {}", file.display()), e))?;
        let file = file.to_string_lossy().into_owned();
        cmd::run(&["ip", "-n", ns, "-batch", &file]).map(|_| ())
    }

    /// Adds a VRRP node: namespace `<prefix>-<name>`, `eth0` with `v4` (`192.0.2.N/24`) and
    /// `v6` (`2001:db8::N/64`) and MAC `02:00:00:00:00:NN`, the veth peer on `br0`;
    /// `rp_filter=0`, IPv6 DAD off, lo up.
    pub fn add_node(&mut self, name: &str, v4: &str, v6: &str) -> Result<Node> {
        self.add_host(name, v4, v6, &[])
    }

    /// Adds a client host like [`Lab::add_node`], with `locktime=0` on its neighbour table so
    /// that a gratuitous ARP updates its cache even right after a ping (the kernel ignores
    /// lladdr changes within `locktime`, 1 s by default, of the last update).
    pub fn add_client(&mut self, name: &str, v4: &str, v6: &str) -> Result<Node> {
        self.add_host(name, v4, v6, &["net.ipv4.neigh.eth0.locktime=0"])
    }

    /// Adds a host whose `eth0` is on bridge `bridge` (`br0`, or one made by
    /// [`Lab::add_bridge`]) — a host of another segment, such as a real server behind NAT.
    pub fn add_node_on(&mut self, name: &str, bridge: &str, v4: &str, v6: &str) -> Result<Node> {
        self.add_host_on(name, bridge, v4, v6, &[])
    }

    /// Adds bridge `name` (another L2 segment) to the bridge namespace.
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        self.ip_batch(
            &self.bridge_ns,
            name,
            &format!(
                "link add {name} type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n\
                 link set {name} up\n"
            ),
        )
    }

    /// Gives `node` a second interface `ifname` on bridge `bridge`, with `v4` and `v6`
    /// (`ADDR/LEN`), MAC `02:00:00:00:<tag>:NN` (NN = last octet of `v4`).
    pub fn add_link(
        &self,
        node: &str,
        ifname: &str,
        bridge: &str,
        tag: u8,
        v4: &str,
        v6: &str,
    ) -> Result<()> {
        let n = self.node(node)?.clone();
        let veth = format!("v{node}{ifname}");
        if veth.len() > 15 {
            return Err(LabError::check(format!("veth name {veth:?} too long")));
        }
        let last = match strip_prefix_len(v4).parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => a.octets()[3],
            _ => return Err(LabError::parse("IPv4 address", v4)),
        };
        let mac = format!("02:00:00:00:{tag:02x}:{last:02x}");
        self.plug_veth(&veth, ifname, &n.ns, bridge)?;
        self.ip_batch(
            &n.ns,
            &format!("{node}-{ifname}"),
            &format!(
                "link set {ifname} address {mac}\naddr add {v4} dev {ifname}\n\
                 addr add {v6} dev {ifname} nodad\nlink set {ifname} up\n"
            ),
        )
    }

    fn add_host(&mut self, name: &str, v4: &str, v6: &str, extra_sysctls: &[&str]) -> Result<Node> {
        self.add_host_on(name, "br0", v4, v6, extra_sysctls)
    }

    fn add_host_on(
        &mut self,
        name: &str,
        bridge: &str,
        v4: &str,
        v6: &str,
        extra_sysctls: &[&str],
    ) -> Result<Node> {
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(LabError::check(format!("node {name:?} added twice")));
        }
        let veth = format!("v{name}");
        if veth.len() > 15 || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(LabError::check(format!(
                "node name {name:?} must be ASCII alphanumeric and at most 14 characters"
            )));
        }
        let addr4: IpAddr = strip_prefix_len(v4)
            .parse()
            .map_err(|_| LabError::parse("IPv4 address", v4))?;
        let addr6: IpAddr = strip_prefix_len(v6)
            .parse()
            .map_err(|_| LabError::parse("IPv6 address", v6))?;
        let last = match addr4 {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(_) => return Err(LabError::parse("IPv4 address", v4)),
        };
        let mac = format!("02:00:00:00:00:{last:02x}");
        let ns = format!("{}-{name}", self.prefix);
        cmd::run(&["ip", "netns", "add", &ns])?;
        let node = Node {
            name: name.to_string(),
            ns: ns.clone(),
            v4: addr4,
            v6: addr6,
            mac: mac.clone(),
        };
        // Registered before the rest of the setup so that Drop deletes it if a step fails.
        self.nodes.push(node.clone());
        let sysctl = [
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.default.router_solicitations=0",
        ];
        cmd::run(&sysctl)?;
        self.plug_veth(&veth, "eth0", &ns, bridge)?;
        if !extra_sysctls.is_empty() {
            // Per-interface settings, now that eth0 exists (a new namespace has no
            // `neigh/default` entries to inherit from).
            let mut argv = vec!["ip", "netns", "exec", &ns, "sysctl", "-q", "-w"];
            argv.extend_from_slice(extra_sysctls);
            cmd::run(&argv)?;
        }
        self.ip_batch(
            &ns,
            name,
            &format!(
                "link set lo up\nlink set eth0 address {mac}\naddr add {v4} dev eth0\n\
                 addr add {v6} dev eth0 nodad\nlink set eth0 up\n"
            ),
        )?;
        Ok(node)
    }

    /// Adds interface `name` to `node`: one end of a veth pair whose other end (`peer`) stays
    /// in the same namespace, both up, with `v4` (`a.b.c.d/len`) on `name` if given. For
    /// configurations that name more interfaces than `eth0` (the node's namespace is deleted
    /// with the lab, and the pair with it).
    pub fn add_local_link(
        &self,
        node: &str,
        name: &str,
        peer: &str,
        v4: Option<&str>,
    ) -> Result<()> {
        let ns = self.node(node)?.ns.clone();
        let mut script = format!(
            "link add {name} type veth peer name {peer}\nlink set {peer} up\nlink set {name} up\n"
        );
        if let Some(addr) = v4 {
            script.push_str(&format!("addr add {addr} dev {name}\n"));
        }
        self.ip_batch(&ns, &format!("{node}-{peer}"), &script)
    }

    /// Deletes `node`'s `eth0` (both veth ends) and creates it again — a new interface index,
    /// the MAC `02:00:00:00:01:NN` instead of `…:00:NN`, the same addresses — as an operator
    /// re-creating an interface under a running daemon would. Returns the new MAC.
    pub fn recreate_eth0(&self, node: &str, pause: Duration) -> Result<String> {
        let n = self.node(node)?.clone();
        let veth = format!("v{}", n.name);
        cmd::run(&["ip", "-n", &self.bridge_ns, "link", "del", &veth])?;
        std::thread::sleep(pause);
        self.plug_veth(&veth, "eth0", &n.ns, "br0")?;
        let last = n.mac.rsplit(':').next().unwrap_or("00").to_string();
        let mac = format!("02:00:00:00:01:{last}");
        self.ip_batch(
            &n.ns,
            node,
            &format!(
                "link set eth0 address {mac}
addr add {}/24 dev eth0
                 addr add {}/64 dev eth0 nodad
link set eth0 up
",
                n.v4, n.v6
            ),
        )?;
        Ok(mac)
    }

    /// Runs `argv` inside `node`'s namespace and returns its output (any exit status).
    pub fn exec(&self, node: &str, argv: &[&str]) -> Result<Output> {
        let ns = self.node(node)?.ns.clone();
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(argv);
        cmd::output(&full)
    }

    /// Runs `argv` inside `node`'s namespace, requires success, returns stdout.
    pub fn run(&self, node: &str, argv: &[&str]) -> Result<String> {
        let ns = self.node(node)?.ns.clone();
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(argv);
        cmd::run(&full)
    }

    /// Starts `argv` in `node`'s namespace (`ip netns exec`, which execs, so the pid is the
    /// program's) in its own process group, stdout and stderr to `log` (relative paths are
    /// under [`Lab::dir`]). The lab kills its group on drop.
    pub fn spawn(&self, node: &str, argv: &[&str], log: impl AsRef<Path>) -> Result<Proc> {
        let ns = self.node(node)?.ns.clone();
        self.spawn_in_ns(&ns, node, argv, log.as_ref(), &[])
    }

    pub(crate) fn spawn_in_ns(
        &self,
        ns: &str,
        label: &str,
        argv: &[&str],
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Proc> {
        self.spawn_at(Some(ns), label, argv, log, env)
    }

    /// [`Lab::spawn_in_ns`], or in the test's own (initial) network namespace for `None`.
    pub(crate) fn spawn_at(
        &self,
        ns: Option<&str>,
        label: &str,
        argv: &[&str],
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Proc> {
        let log = if log.is_absolute() {
            log.to_path_buf()
        } else {
            self.dir.join(log)
        };
        let out = File::create(&log)
            .map_err(|e| LabError::io(format!("creating log {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io(format!("duplicating log {}", log.display()), e))?;
        let mut command = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(argv);
                c
            }
            None => {
                let mut c = Command::new(argv.first().copied().unwrap_or("true"));
                c.args(argv.iter().skip(1));
                c
            }
        };
        let ns = ns.unwrap_or("the initial namespace");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .map_err(|e| LabError::io(format!("starting `{}` in {ns}", argv.join(" ")), e))?;
        let seq = self.spawn_seq.fetch_add(1, Ordering::SeqCst);
        let prog = argv.first().copied().unwrap_or("?");
        let proc = Proc::new(format!("{label} {prog} #{seq}"), log, child);
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(proc.clone());
        Ok(proc)
    }

    /// Every address on `node` (all interfaces), without prefix lengths.
    pub fn addrs(&self, node: &str) -> Result<Vec<IpAddr>> {
        let ns = self.node(node)?.ns.clone();
        let text = cmd::run(&["ip", "-n", &ns, "-o", "addr", "show"])?;
        Ok(parse_addr_show(&text))
    }

    /// Whether `node` holds `ip` (prefix length optional) on any interface.
    pub fn has_addr(&self, node: &str, ip: &str) -> Result<bool> {
        let want = parse_ip(ip)?;
        Ok(self.addrs(node)?.contains(&want))
    }

    /// Removes `ip` from `node` if present, on whichever interface and with whatever prefix
    /// length it has (what a dead machine does to its VIP).
    pub fn del_addr(&self, node: &str, ip: &str) -> Result<()> {
        let want = parse_ip(ip)?;
        let ns = self.node(node)?.ns.clone();
        let text = cmd::run(&["ip", "-n", &ns, "-o", "addr", "show"])?;
        for (dev, cidr) in parse_addr_show_full(&text) {
            if strip_prefix_len(&cidr).parse::<IpAddr>().ok() == Some(want) {
                cmd::run(&["ip", "-n", &ns, "addr", "del", &cidr, "dev", &dev])?;
            }
        }
        Ok(())
    }

    /// The nodes among `nodes` that hold `ip` now.
    pub fn holders(&self, nodes: &[&str], ip: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in nodes {
            if self.has_addr(n, ip)? {
                out.push(n.to_string());
            }
        }
        Ok(out)
    }

    /// Waits until `expected` is the only one of `nodes` holding `ip`.
    pub fn wait_sole_holder(
        &self,
        nodes: &[&str],
        ip: &str,
        expected: &str,
        timeout: Duration,
    ) -> Result<Duration> {
        wait_for(
            &format!("VIP {ip} on {expected} only (among {nodes:?})"),
            timeout,
            Duration::from_millis(10),
            || Ok(self.holders(nodes, ip)? == [expected.to_string()]),
            || {
                format!(
                    "holders now: {:?}\n{}",
                    self.holders(nodes, ip).unwrap_or_default(),
                    self.log_summary(25)
                )
            },
        )
    }

    /// Checks that `expected` stays the only holder of `ip` among `nodes` for `period`.
    pub fn expect_sole_holder_for(
        &self,
        nodes: &[&str],
        ip: &str,
        expected: &str,
        period: Duration,
    ) -> Result<()> {
        let start = std::time::Instant::now();
        while start.elapsed() < period {
            let h = self.holders(nodes, ip)?;
            if h != [expected.to_string()] {
                return Err(LabError::check(format!(
                    "VIP {ip} should stay on {expected} only, but after {:.2?} it is on {h:?}\n{}",
                    start.elapsed(),
                    self.log_summary(25)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// One `ping -c1 -W1` from `from` to `ip`; `true` on a reply.
    pub fn ping(&self, from: &str, ip: &str) -> Result<bool> {
        let ip = parse_ip(ip)?.to_string();
        Ok(self
            .exec(from, &["ping", "-n", "-c1", "-W1", &ip])?
            .status
            .success())
    }

    /// Pings until a reply arrives or `timeout` passes; the error names the client, the
    /// address, its neighbour entry and the daemon logs.
    pub fn expect_ping(&self, from: &str, ip: &str, timeout: Duration) -> Result<()> {
        wait_for(
            &format!("{from} to get a ping reply from {ip}"),
            timeout,
            Duration::from_millis(50),
            || self.ping(from, ip),
            || {
                format!(
                    "neighbour entry of {ip} on {from}: {:?}\n{}",
                    self.neigh_mac(from, ip).ok().flatten(),
                    self.log_summary(15)
                )
            },
        )
        .map(|_| ())
    }

    /// The link-layer address `from` has cached for `ip` (`ip neigh show`), if any.
    pub fn neigh_mac(&self, from: &str, ip: &str) -> Result<Option<String>> {
        let ns = self.node(from)?.ns.clone();
        let ip = parse_ip(ip)?.to_string();
        let text = cmd::run(&["ip", "-n", &ns, "neigh", "show", &ip])?;
        Ok(parse_neigh_lladdr(&text))
    }

    /// Waits until `from`'s neighbour cache maps `ip` to `node`'s MAC.
    pub fn expect_neigh(&self, from: &str, ip: &str, node: &str, timeout: Duration) -> Result<()> {
        let mac = self.node(node)?.mac.clone();
        wait_for(
            &format!("{from}'s neighbour entry for {ip} to be {node}'s MAC {mac}"),
            timeout,
            Duration::from_millis(20),
            || Ok(self.neigh_mac(from, ip)?.as_deref() == Some(mac.as_str())),
            || {
                format!(
                    "entry now: {:?}\n{}",
                    self.neigh_mac(from, ip).ok().flatten(),
                    self.log_summary(15)
                )
            },
        )
        .map(|_| ())
    }

    /// Paths and last `lines` lines of every process log, for failure messages.
    pub fn log_summary(&self, lines: usize) -> String {
        let procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for p in procs.iter() {
            if p.label().contains("tcpdump") || p.label().contains(" ip #") {
                continue;
            }
            out.push_str(&format!(
                "--- {} ({}) ---\n{}\n",
                p.label(),
                p.log_path().display(),
                p.log_tail(lines)
            ));
        }
        out
    }

    /// Marks the test as passed: the directory with logs is deleted on drop.
    pub fn pass(mut self) -> Result<()> {
        self.passed = true;
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let procs: Vec<Proc> = self
            .procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for p in &procs {
            p.cleanup();
        }
        for n in &self.nodes {
            // What a daemon started in its own process group (conntrackd) would outlive the
            // namespace.
            kill_everything_in(&n.ns);
            let _ = cmd::output(&["ip", "netns", "del", &n.ns]);
        }
        if !self.bridge_ns.is_empty() {
            let _ = cmd::output(&["ip", "netns", "del", &self.bridge_ns]);
        }
        if self.passed && !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "lab {}: test did not pass; logs kept in {}",
                self.prefix,
                self.dir.display()
            );
        }
    }
}

/// SIGKILL every process in the namespace `ns` (a machine that dies, a lab torn down).
pub fn kill_everything_in(ns: &str) {
    if let Ok(out) = cmd::output(&["ip", "netns", "pids", ns]) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = cmd::output(&["kill", "-9", pid]);
        }
    }
}

/// `wa` + up to 4 letters of the test name + `<pid>x<counter>`, at most 15 characters.
/// pid + counter make it unique; the tag only helps a human match namespaces to tests, so it
/// is what gets shortened.
fn lab_prefix(test_name: &str, pid: u32, counter: u32) -> String {
    let unique = format!("{pid}x{counter}");
    let room = 15usize.saturating_sub(2 + unique.len()).min(4);
    let tag: String = test_name
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .take(room)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("wa{tag}{unique}")
}

/// The pid embedded in a namespace name made by [`lab_prefix`] (`wa<letters><pid>x<n>-...`).
fn prefix_pid(ns: &str) -> Option<u32> {
    let rest = ns.strip_prefix("wa")?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    let (counter, _) = after.strip_prefix('x')?.split_once('-')?;
    if counter.is_empty() || !counter.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Deletes namespaces left behind by lab runs that were killed before they could clean up
/// (their creating pid no longer exists), after SIGKILLing the processes still inside.
pub fn reap_stale_namespaces() {
    let Ok(list) = cmd::run(&["ip", "netns", "list"]) else {
        return;
    };
    for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = prefix_pid(ns) else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = cmd::run(&["ip", "netns", "pids", ns]) {
            for p in pids.split_whitespace() {
                if let Ok(p) = p.parse::<u32>() {
                    let _ = cmd::kill("KILL", p, false);
                }
            }
        }
        let _ = cmd::output(&["ip", "netns", "del", ns]);
    }
}

/// `192.0.2.1/24` → `192.0.2.1`.
fn strip_prefix_len(s: &str) -> &str {
    s.split('/').next().unwrap_or(s)
}

/// Parses an address with optional prefix length.
pub fn parse_ip(s: &str) -> Result<IpAddr> {
    strip_prefix_len(s.trim())
        .parse()
        .map_err(|_| LabError::parse("IP address", s))
}

/// `(device, address/len)` pairs in `ip -o addr show` output.
fn parse_addr_show_full(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let dev = words.nth(1).unwrap_or_default().to_string();
        while let Some(w) = words.next() {
            if w == "inet" || w == "inet6" {
                if let Some(a) = words.next() {
                    out.push((dev.clone(), a.to_string()));
                }
            }
        }
    }
    out
}

/// Addresses in `ip -o addr show` output.
fn parse_addr_show(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "inet" || w == "inet6" {
                if let Some(Ok(a)) = words.next().map(|a| strip_prefix_len(a).parse()) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// The `lladdr` of an `ip neigh show ADDR` line, ignoring FAILED/INCOMPLETE entries.
fn parse_neigh_lladdr(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return words.next().map(str::to_ascii_lowercase);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_show_lines_are_parsed() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    2: eth0    inet 192.0.2.200/32 scope global eth0\\ valid_lft forever\n\
                    2: eth0    inet6 2001:db8::200/64 scope global \\       valid_lft forever\n";
        let a = parse_addr_show(text);
        assert!(a.contains(&"192.0.2.200".parse().unwrap()));
        assert!(a.contains(&"2001:db8::200".parse().unwrap()));
        assert_eq!(a.len(), 3);
        let full = parse_addr_show_full(text);
        assert_eq!(
            full[2],
            ("eth0".to_string(), "2001:db8::200/64".to_string())
        );
    }

    #[test]
    fn prefix_is_short_and_keeps_the_unique_part() {
        assert_eq!(lab_prefix("kl_v2", 123, 0), "waklv123x0");
        let p = lab_prefix("anything", 4_194_304, 12345);
        assert!(p.len() <= 15, "{p}");
        assert!(p.ends_with("4194304x12345"));
    }

    #[test]
    fn stale_namespace_names_are_recognised() {
        assert_eq!(prefix_pid("waklv123x0-n1"), Some(123));
        assert_eq!(prefix_pid("wa4194304x12-br"), Some(4_194_304));
        assert_eq!(prefix_pid("wasmalived-demo-n1"), None);
        assert_eq!(prefix_pid("wab12x-n1"), None);
        assert_eq!(prefix_pid("other"), None);
    }

    #[test]
    fn neigh_lladdr_is_parsed() {
        assert_eq!(
            parse_neigh_lladdr("192.0.2.200 dev eth0 lladdr 02:00:00:00:00:01 REACHABLE\n"),
            Some("02:00:00:00:00:01".into())
        );
        assert_eq!(parse_neigh_lladdr("192.0.2.200 dev eth0 FAILED\n"), None);
        assert_eq!(parse_neigh_lladdr(""), None);
    }

    #[test]
    fn ip_with_or_without_prefix() {
        assert_eq!(
            parse_ip("2001:db8::200/64").unwrap().to_string(),
            "2001:db8::200"
        );
        assert!(parse_ip("not-an-ip").is_err());
    }
}

//! The nftables backend: the virtual services live in wasmalived's own tables — `inet
//! wasmalived` (NAT: destination NAT in the prerouting hook) and `netdev wasmalived_dr`
//! (direct routing: the destination MAC rewritten at ingress and the frame forwarded to the
//! real server, as nftlb does) — and nothing else on the host is touched.
//!
//! Every change is one `nft -f -` transaction (atomic: a check flip never leaves a half
//! programmed pool) that rewrites the rules and adds/removes chains and sets by name, so the
//! affinity sets of services and members that stay keep their clients (persistence survives
//! a change elsewhere). The tables are removed on shutdown and replaced at start-up.
//!
//! Per service (`vs_…` chain, jumped to from the hook on the service's addresses/ports or
//! fwmark): with persistence, a client in a member's affinity set goes to that member;
//! otherwise the scheduling table picks a member — `numgen inc` for round robin, `jhash` of
//! the client address for source hashing (seed 0: both directors pick alike). Per member
//! (`vs_…__rs_…` chain): refresh the affinity, then `dnat` (NAT) or `ether saddr/daddr set … fwd`
//! (DR). Persistence follows kube-proxy's nftables mode (a dynamic timeout set per member).
//! Direct routing has no connection tracking at ingress, so each member also keeps a dynamic
//! set of its connections (client address and port, refreshed by every packet, forgotten
//! after IPVS's timeouts): only a connection's first packet is scheduled.
//!
//! A member removed from a NAT pool (not one kept at weight 0) also loses its connection
//! tracking entries (`conntrack -D`), so its clients reconnect to a live member instead of
//! waiting on a dead one; a weight-0 member's connections drain.
//!
//! After a director failover, the new director's connection tracking picks up the
//! connections the old one balanced: a client's segment is scheduled again (source hashing
//! picks the same member); a member's segment that arrives first would go out with the
//! member's own address, which the client's stack rejects — the `postrouting` chain gives it
//! the service's address back ([`reply_pickups`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};

use wasmalived_config::lvs::{Protocol, VirtualServer};

use crate::backend::{review_stateless, Backend, BackendError, Review};
use crate::plan::{Forward, Match, ServicePlan};
use crate::schedule::Pick;
use crate::select::BackendKind;
use crate::service::Member;

/// The backend's name.
pub const NAME: &str = "nftables";

/// The NAT table (`inet`).
pub const TABLE: &str = "wasmalived";
/// The direct-routing table (`netdev`).
pub const DR_TABLE: &str = "wasmalived_dr";

/// What the tables hold after a transaction, by name (to compute the next one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Programmed {
    /// Chains of the `inet` table (besides the hook chain).
    pub chains: BTreeSet<String>,
    /// Sets of the `inet` table.
    pub sets: BTreeSet<String>,
    /// Chains of the `netdev` table, including the ingress base chains (`in_…`).
    pub dr_chains: BTreeSet<String>,
    /// Sets of the `netdev` table.
    pub dr_sets: BTreeSet<String>,
    /// Ingress devices with a base chain.
    pub dr_devices: BTreeSet<String>,
    /// Each NAT service's members (for connection tracking cleanup).
    pub nat_members: BTreeMap<String, (Vec<Match>, Protocol, Vec<Member>)>,
}

/// A name nft accepts as a chain or set name.
fn ident(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn service_chain(p: &ServicePlan) -> String {
    format!("vs_{}", ident(&p.name))
}

fn member_chain(p: &ServicePlan, m: &Member) -> String {
    format!("{}__rs_{}", service_chain(p), ident(&m.addr.to_string()))
}

fn affinity_set(p: &ServicePlan, m: &Member) -> String {
    format!("aff_{}", &member_chain(p, m)[3..])
}

/// A direct-routing member's connections (client address and port), so every packet of a
/// connection goes where its first went: the ingress hook has no connection tracking.
fn flow_set(p: &ServicePlan, m: &Member) -> String {
    format!("flo_{}", &member_chain(p, m)[3..])
}

/// How long a direct-routing connection is remembered after its last packet (IPVS's TCP
/// established timeout; its UDP timeout).
fn flow_timeout(p: &ServicePlan) -> u64 {
    match p.protocol {
        Protocol::Udp => 300,
        _ => 900,
    }
}

fn ip_kw(ipv6: bool) -> &'static str {
    if ipv6 {
        "ip6"
    } else {
        "ip"
    }
}

/// The client address (masked to the persistence prefix) as an nft expression.
fn client_key(p: &ServicePlan) -> String {
    let kw = ip_kw(p.ipv6);
    let full = if p.ipv6 { 128 } else { 32 };
    match p.persistence {
        Some(per) if per.prefix < full => {
            let mask = if p.ipv6 {
                let bits = u128::MAX
                    .checked_shl(128 - u32::from(per.prefix))
                    .unwrap_or(0);
                std::net::Ipv6Addr::from(bits).to_string()
            } else {
                let bits = u32::MAX
                    .checked_shl(32 - u32::from(per.prefix))
                    .unwrap_or(0);
                std::net::Ipv4Addr::from(bits).to_string()
            };
            format!("{kw} saddr & {mask}")
        }
        _ => format!("{kw} saddr"),
    }
}

/// The match part of a hook rule for one [`Match`].
fn match_expr(p: &ServicePlan, m: &Match) -> String {
    let l4 = p.protocol.name();
    match m {
        Match::Fwmark(mark) => format!("meta mark {mark} meta l4proto {l4}"),
        Match::Addrs { first, last, port } => {
            let kw = ip_kw(first.is_ipv6());
            let daddr = if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            };
            if *port == 0 {
                format!("{kw} daddr {daddr} meta l4proto {l4}")
            } else {
                format!("{kw} daddr {daddr} {l4} dport {port}")
            }
        }
    }
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Everything the transaction will hold for one family of table.
#[derive(Default)]
struct Desired {
    chains: BTreeSet<String>,
    sets: BTreeMap<String, String>,
    rules: Vec<String>,
}

/// The transaction taking the tables from `prev` to `services`, and what they hold after.
pub fn render(prev: &Programmed, services: &[ServicePlan]) -> (String, Programmed) {
    let mut nat = Desired::default();
    let mut dr = Desired::default();
    let mut dr_devices = BTreeSet::new();
    let mut hook_rules = Vec::new();
    let mut nat_members = BTreeMap::new();
    for p in services {
        // Tunnelling has no nftables form: the review refuses it, so no plan has it here.
        if p.forward == Forward::Tun {
            continue;
        }
        let is_dr = matches!(p.forward, Forward::Dr { .. });
        let (family, table) = if is_dr {
            ("netdev", DR_TABLE)
        } else {
            ("inet", TABLE)
        };
        let out = if is_dr { &mut dr } else { &mut nat };
        let svc = service_chain(p);
        out.chains.insert(svc.clone());
        let hook = match &p.forward {
            Forward::Dr { ingress, .. } => {
                dr_devices.insert(ingress.clone());
                format!("in_{}", ident(ingress))
            }
            Forward::Nat | Forward::Tun => {
                nat_members.insert(
                    p.name.clone(),
                    (p.matches.clone(), p.protocol, p.members.clone()),
                );
                "prerouting".to_owned()
            }
        };
        for m in &p.matches {
            hook_rules.push((
                family,
                table,
                format!(
                    "add rule {family} {table} {hook} {} jump {svc}",
                    match_expr(p, m)
                ),
            ));
        }
        // Direct routing: a known connection stays with its member.
        if is_dr {
            let kind = if p.ipv6 { "ipv6_addr" } else { "ipv4_addr" };
            for (i, m) in p.members.iter().enumerate() {
                if !p.usable(i) {
                    continue;
                }
                let set = flow_set(p, m);
                out.sets.insert(
                    set.clone(),
                    format!(
                        "{{ type {kind} . inet_service; flags dynamic,timeout; timeout {}s; }}",
                        flow_timeout(p)
                    ),
                );
                out.rules.push(format!(
                    "add rule {family} {table} {svc} {} saddr . th sport @{set} goto {}",
                    ip_kw(p.ipv6),
                    member_chain(p, m)
                ));
            }
        }
        // Affinity first: a client seen recently goes back to its member, if it can.
        if let Some(per) = p.persistence {
            for (i, m) in p.members.iter().enumerate() {
                if !p.usable(i) {
                    continue;
                }
                let set = affinity_set(p, m);
                let kind = if p.ipv6 { "ipv6_addr" } else { "ipv4_addr" };
                out.sets.insert(
                    set.clone(),
                    format!(
                        "{{ type {kind}; flags dynamic,timeout; timeout {}s; }}",
                        per.timeout.as_secs().max(1)
                    ),
                );
                out.rules.push(format!(
                    "add rule {family} {table} {svc} {} @{set} goto {}",
                    client_key(p),
                    member_chain(p, m)
                ));
            }
        }
        if !p.table.slots.is_empty() {
            let pick = match p.table.pick {
                Pick::InTurn => format!("numgen inc mod {}", p.table.slots.len()),
                Pick::SourceHash => format!(
                    "jhash {} mod {} seed 0x0",
                    client_key(p),
                    p.table.slots.len()
                ),
            };
            let entries: Vec<String> = p
                .table
                .slots
                .iter()
                .enumerate()
                .map(|(slot, i)| format!("{slot} : goto {}", member_chain(p, &p.members[*i])))
                .collect();
            out.rules.push(format!(
                "add rule {family} {table} {svc} {pick} vmap {{ {} }}",
                entries.join(", ")
            ));
        }
        for (i, m) in p.members.iter().enumerate() {
            let chain = member_chain(p, m);
            out.chains.insert(chain.clone());
            if p.persistence.is_some() && p.usable(i) {
                out.rules.push(format!(
                    "add rule {family} {table} {chain} update @{} {{ {} }}",
                    affinity_set(p, m),
                    client_key(p)
                ));
            }
            if is_dr && p.usable(i) {
                out.rules.push(format!(
                    "add rule {family} {table} {chain} update @{} {{ {} saddr . th sport }}",
                    flow_set(p, m),
                    ip_kw(p.ipv6)
                ));
            }
            let action = match &p.forward {
                Forward::Nat | Forward::Tun => {
                    let kw = ip_kw(m.addr.is_ipv6());
                    let to = match (m.addr.port(), m.addr.ip()) {
                        (0, ip) => ip.to_string(),
                        (port, IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
                        (port, ip) => format!("{ip}:{port}"),
                    };
                    format!("meta l4proto {} dnat {kw} to {to}", p.protocol.name())
                }
                Forward::Dr { targets, .. } => match targets.get(i).and_then(Option::as_ref) {
                    Some(t) => format!(
                        "ether saddr set {} ether daddr set {} fwd to \"{}\"",
                        mac(&t.src_mac),
                        mac(&t.mac),
                        t.device
                    ),
                    // Not resolved: no slot points here; drop rather than deliver to us.
                    None => "drop".to_owned(),
                },
            };
            out.rules
                .push(format!("add rule {family} {table} {chain} {action}"));
        }
    }

    let mut s = String::new();
    // The NAT table and its hook always exist while the backend runs.
    let _ = writeln!(s, "add table inet {TABLE}");
    let _ = writeln!(
        s,
        "add chain inet {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}"
    );
    let _ = writeln!(s, "flush chain inet {TABLE} prerouting");
    let _ = writeln!(
        s,
        "add chain inet {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}"
    );
    let _ = writeln!(s, "flush chain inet {TABLE} postrouting");
    transition(&mut s, "inet", TABLE, &prev.chains, &prev.sets, &nat);
    let dr_needed = !dr.chains.is_empty() || !prev.dr_chains.is_empty();
    if dr_needed {
        let _ = writeln!(s, "add table netdev {DR_TABLE}");
        let mut dr_all = dr.chains.clone();
        for dev in &dr_devices {
            let base = format!("in_{}", ident(dev));
            if !prev.dr_devices.contains(dev) {
                let _ = writeln!(
                    s,
                    "add chain netdev {DR_TABLE} {base} {{ type filter hook ingress device \"{dev}\" priority 0; policy accept; }}"
                );
            }
            dr_all.insert(base);
        }
        let dr_with_bases = Desired {
            chains: dr_all,
            sets: dr.sets.clone(),
            rules: Vec::new(),
        };
        // Base chains of devices no longer used are flushed and deleted like any chain.
        let prev_dr: BTreeSet<String> = prev.dr_chains.iter().cloned().collect();
        transition_existing(
            &mut s,
            "netdev",
            DR_TABLE,
            &prev_dr,
            &prev.dr_sets,
            &dr_with_bases,
        );
        for name in dr.chains.difference(&prev.dr_chains) {
            let _ = writeln!(s, "add chain netdev {DR_TABLE} {name}");
        }
        for (name, def) in &dr.sets {
            if !prev.dr_sets.contains(name) {
                let _ = writeln!(s, "add set netdev {DR_TABLE} {name} {def}");
            }
        }
    }
    for (_, _, rule) in &hook_rules {
        let _ = writeln!(s, "{rule}");
    }
    for rule in reply_pickups(services) {
        let _ = writeln!(s, "{rule}");
    }
    for rule in nat.rules.iter().chain(&dr.rules) {
        let _ = writeln!(s, "{rule}");
    }
    let mut dr_chains: BTreeSet<String> = dr.chains.clone();
    dr_chains.extend(dr_devices.iter().map(|d| format!("in_{}", ident(d))));
    let programmed = Programmed {
        chains: nat.chains,
        sets: nat.sets.into_keys().collect(),
        dr_chains,
        dr_sets: dr.sets.into_keys().collect(),
        dr_devices,
        nat_members,
    };
    (s, programmed)
}

/// The `postrouting` rules for connections picked up mid-stream from the member's side.
///
/// A member's TCP segment that creates a connection-tracking entry without being a SYN
/// belongs to a connection this director never scheduled: one the other director balanced
/// before a failover, whose DNAT entry died with it. Its source becomes the service's
/// address and port again, as that entry would have made it, so the client's stack takes it,
/// and the client's answers follow the new entry back to the same member. Only NAT services
/// over TCP with one address and port have such a mapping; a member serving several of them
/// is left out (which service the connection belonged to would be a guess).
fn reply_pickups(services: &[ServicePlan]) -> Vec<String> {
    let mut services_of: BTreeMap<SocketAddr, Option<SocketAddr>> = BTreeMap::new();
    for p in services {
        let (Forward::Nat, Protocol::Tcp, [Match::Addrs { first, last, port }]) =
            (&p.forward, p.protocol, p.matches.as_slice())
        else {
            continue;
        };
        if first != last || *port == 0 {
            continue;
        }
        let service = SocketAddr::new(*first, *port);
        for m in &p.members {
            let member = match m.addr.port() {
                0 => SocketAddr::new(m.addr.ip(), *port),
                _ => m.addr,
            };
            services_of
                .entry(member)
                .and_modify(|s| {
                    if *s != Some(service) {
                        *s = None;
                    }
                })
                .or_insert(Some(service));
        }
    }
    services_of
        .into_iter()
        .filter_map(|(member, service)| {
            let service = service?;
            let kw = ip_kw(member.is_ipv6());
            (member.is_ipv6() == service.is_ipv6()).then(|| {
                format!(
                    "add rule inet {TABLE} postrouting {kw} saddr {} tcp sport {} tcp flags & syn == 0 snat {kw} to {service}",
                    member.ip(),
                    member.port()
                )
            })
        })
        .collect()
}

/// Flush kept chains, flush and delete dropped chains, delete dropped sets, add new chains
/// and sets — for one table.
fn transition(
    s: &mut String,
    family: &str,
    table: &str,
    prev_chains: &BTreeSet<String>,
    prev_sets: &BTreeSet<String>,
    want: &Desired,
) {
    transition_existing(s, family, table, prev_chains, prev_sets, want);
    for name in want.chains.difference(prev_chains) {
        let _ = writeln!(s, "add chain {family} {table} {name}");
    }
    for (name, def) in &want.sets {
        if !prev_sets.contains(name) {
            let _ = writeln!(s, "add set {family} {table} {name} {def}");
        }
    }
}

/// The flush/delete half of [`transition`]: every previous chain is flushed (so no rule
/// references a chain or set about to go), then the dropped ones are deleted.
fn transition_existing(
    s: &mut String,
    family: &str,
    table: &str,
    prev_chains: &BTreeSet<String>,
    prev_sets: &BTreeSet<String>,
    want: &Desired,
) {
    for name in prev_chains {
        let _ = writeln!(s, "flush chain {family} {table} {name}");
    }
    for name in prev_chains.difference(&want.chains) {
        let _ = writeln!(s, "delete chain {family} {table} {name}");
    }
    for name in prev_sets {
        if !want.sets.contains_key(name) {
            let _ = writeln!(s, "delete set {family} {table} {name}");
        }
    }
}

/// The transaction removing both tables (idempotent: each is created first).
pub fn render_clear() -> String {
    format!(
        "add table inet {TABLE}\ndelete table inet {TABLE}\nadd table netdev {DR_TABLE}\ndelete table netdev {DR_TABLE}\n"
    )
}

/// A NAT member that left its pool: its connections to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departed {
    /// The service's protocol.
    pub protocol: Protocol,
    /// The service's single address, when it has one (narrows the cleanup).
    pub vip: Option<(IpAddr, u16)>,
    /// The member.
    pub member: Member,
}

/// NAT members present in `prev` and absent (not merely weight 0) now.
pub fn departed(prev: &Programmed, next: &Programmed) -> Vec<Departed> {
    let mut out = Vec::new();
    for (name, (matches, protocol, members)) in &prev.nat_members {
        let now: Vec<_> = next
            .nat_members
            .get(name)
            .map(|(_, _, m)| m.iter().map(|m| m.addr).collect())
            .unwrap_or_default();
        let vip = match matches.as_slice() {
            [Match::Addrs { first, last, port }] if first == last => Some((*first, *port)),
            _ => None,
        };
        for m in members {
            if !now.contains(&m.addr) {
                out.push(Departed {
                    protocol: *protocol,
                    vip,
                    member: *m,
                });
            }
        }
    }
    out
}

/// Runs what the backend decided: the `nft` transaction and the connection-tracking cleanup.
pub trait NftRunner: Send {
    /// Apply one transaction (`nft -f -`); all or nothing.
    fn run(&mut self, script: &str) -> Result<(), String>;
    /// Forget the connections of a departed member.
    fn forget(&mut self, departed: &Departed) -> Result<(), String>;
}

/// The real runner: the `nft` and `conntrack` programs.
#[derive(Debug, Default)]
pub struct Commands;

fn run_with_stdin(program: &str, args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("writing to {program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NftRunner for Commands {
    fn run(&mut self, script: &str) -> Result<(), String> {
        run_with_stdin("nft", &["-f", "-"], script)
    }

    fn forget(&mut self, d: &Departed) -> Result<(), String> {
        let mut args = vec![
            "-D".to_owned(),
            "-p".to_owned(),
            d.protocol.name().to_owned(),
            "--reply-src".to_owned(),
            d.member.addr.ip().to_string(),
        ];
        if d.member.addr.port() != 0 {
            args.extend(["--reply-port-src".into(), d.member.addr.port().to_string()]);
        }
        if let Some((vip, port)) = d.vip {
            args.extend(["--orig-dst".into(), vip.to_string()]);
            if port != 0 {
                args.extend(["--orig-port-dst".into(), port.to_string()]);
            }
        }
        if d.member.addr.is_ipv6() {
            args.extend(["-f".into(), "ipv6".into()]);
        }
        let out = Command::new("conntrack")
            .args(&args)
            .output()
            .map_err(|e| format!("cannot run conntrack: {e}"))?;
        // conntrack exits 1 when nothing matched: that is fine.
        if out.status.success() || out.status.code() == Some(1) {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

/// The nftables backend.
pub struct Nftables {
    runner: Box<dyn NftRunner>,
    programmed: Programmed,
    /// Problems of the last connection-tracking cleanup (reported, not fatal).
    last_cleanup_errors: Vec<String>,
}

impl std::fmt::Debug for Nftables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nftables")
            .field("programmed", &self.programmed)
            .finish_non_exhaustive()
    }
}

impl Nftables {
    /// A backend applying through `runner`. Nothing is programmed until [`Backend::apply`];
    /// call [`Backend::clear`] first to drop tables a previous run left.
    pub fn new(runner: Box<dyn NftRunner>) -> Self {
        Nftables {
            runner,
            programmed: Programmed::default(),
            last_cleanup_errors: Vec::new(),
        }
    }

    /// What the tables hold now.
    pub fn programmed(&self) -> &Programmed {
        &self.programmed
    }
}

impl Backend for Nftables {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Nftables
    }

    fn review(&self, vs: &VirtualServer) -> Vec<Review> {
        review_stateless(vs)
    }

    fn apply(&mut self, services: &[ServicePlan]) -> Result<(), BackendError> {
        let (script, next) = render(&self.programmed, services);
        self.runner
            .run(&script)
            .map_err(|message| BackendError::Rejected {
                backend: NAME,
                message,
            })?;
        self.last_cleanup_errors = departed(&self.programmed, &next)
            .iter()
            .filter_map(|d| self.runner.forget(d).err())
            .collect();
        self.programmed = next;
        Ok(())
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.last_cleanup_errors)
            .into_iter()
            .map(|e| format!("connection tracking cleanup: {e}"))
            .collect()
    }

    fn clear(&mut self) -> Result<(), BackendError> {
        self.runner
            .run(&render_clear())
            .map_err(|message| BackendError::Rejected {
                backend: NAME,
                message,
            })?;
        self.programmed = Programmed::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DrTarget, Persistence};
    use crate::schedule::{self, Table};
    use std::time::Duration;
    use wasmalived_config::lvs::Scheduler;

    fn member(addr: &str, weight: u32) -> Member {
        Member {
            addr: addr.parse().unwrap(),
            weight,
        }
    }

    fn nat(name: &str, scheduler: Scheduler, members: Vec<Member>) -> ServicePlan {
        ServicePlan {
            name: name.into(),
            matches: vec![Match::Addrs {
                first: "192.0.2.10".parse().unwrap(),
                last: "192.0.2.10".parse().unwrap(),
                port: 80,
            }],
            protocol: Protocol::Tcp,
            ipv6: false,
            forward: Forward::Nat,
            scheduler,
            fallback: None,
            persistence: None,
            table: schedule::plan(scheduler, &members),
            anchor: members.clone(),
            members,
        }
    }

    #[test]
    fn a_nat_service_renders_hook_scheduler_and_members() {
        let p = nat(
            "192.0.2.10:80/tcp",
            Scheduler::Wrr,
            vec![member("10.0.0.1:8080", 2), member("10.0.0.2:80", 1)],
        );
        let (script, programmed) = render(&Programmed::default(), &[p]);
        let expected = "\
add table inet wasmalived
add chain inet wasmalived prerouting { type nat hook prerouting priority dstnat; policy accept; }
flush chain inet wasmalived prerouting
add chain inet wasmalived postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain inet wasmalived postrouting
add chain inet wasmalived vs_192_0_2_10_80_tcp
add chain inet wasmalived vs_192_0_2_10_80_tcp__rs_10_0_0_1_8080
add chain inet wasmalived vs_192_0_2_10_80_tcp__rs_10_0_0_2_80
add rule inet wasmalived prerouting ip daddr 192.0.2.10 tcp dport 80 jump vs_192_0_2_10_80_tcp
add rule inet wasmalived postrouting ip saddr 10.0.0.1 tcp sport 8080 tcp flags & syn == 0 snat ip to 192.0.2.10:80
add rule inet wasmalived postrouting ip saddr 10.0.0.2 tcp sport 80 tcp flags & syn == 0 snat ip to 192.0.2.10:80
add rule inet wasmalived vs_192_0_2_10_80_tcp numgen inc mod 3 vmap { 0 : goto vs_192_0_2_10_80_tcp__rs_10_0_0_1_8080, 1 : goto vs_192_0_2_10_80_tcp__rs_10_0_0_1_8080, 2 : goto vs_192_0_2_10_80_tcp__rs_10_0_0_2_80 }
add rule inet wasmalived vs_192_0_2_10_80_tcp__rs_10_0_0_1_8080 meta l4proto tcp dnat ip to 10.0.0.1:8080
add rule inet wasmalived vs_192_0_2_10_80_tcp__rs_10_0_0_2_80 meta l4proto tcp dnat ip to 10.0.0.2:80
";
        assert_eq!(script, expected);
        assert_eq!(programmed.chains.len(), 3);
    }

    #[test]
    fn members_picked_up_mid_stream_get_their_service_address_unless_ambiguous() {
        let a = nat(
            "a",
            Scheduler::Sh,
            vec![member("10.0.0.1:80", 1), member("10.0.0.2:80", 1)],
        );
        let mut b = nat("b", Scheduler::Rr, vec![member("10.0.0.2:80", 1)]);
        b.matches = vec![Match::Addrs {
            first: "192.0.2.20".parse().unwrap(),
            last: "192.0.2.20".parse().unwrap(),
            port: 80,
        }];
        let mut udp = nat("u", Scheduler::Rr, vec![member("10.0.0.3:53", 1)]);
        udp.protocol = Protocol::Udp;
        let rules = reply_pickups(&[a, b, udp]);
        // 10.0.0.2:80 serves two addresses: left out; UDP has no mid-stream segments.
        assert_eq!(
            rules,
            vec!["add rule inet wasmalived postrouting ip saddr 10.0.0.1 tcp sport 80 tcp flags & syn == 0 snat ip to 192.0.2.10:80"]
        );
    }

    #[test]
    fn a_change_keeps_what_stays_and_deletes_what_left() {
        let mut p = nat(
            "s",
            Scheduler::Rr,
            vec![member("10.0.0.1:80", 1), member("10.0.0.2:80", 1)],
        );
        p.persistence = Some(Persistence {
            timeout: Duration::from_secs(50),
            prefix: 24,
        });
        let (_, first) = render(&Programmed::default(), std::slice::from_ref(&p));
        assert_eq!(first.sets.len(), 2);
        p.members.remove(1);
        p.table = schedule::plan(Scheduler::Rr, &p.members);
        let (script, second) = render(&first, std::slice::from_ref(&p));
        // Everything is flushed and rewritten; only the departed member's chain and set go.
        assert!(script.contains("flush chain inet wasmalived vs_s__rs_10_0_0_1_80\n"));
        assert!(script.contains("delete chain inet wasmalived vs_s__rs_10_0_0_2_80\n"));
        assert!(script.contains("delete set inet wasmalived aff_s__rs_10_0_0_2_80\n"));
        assert!(
            !script.contains("add set inet wasmalived aff_s__rs_10_0_0_1_80"),
            "kept, with its clients"
        );
        assert!(script.contains("ip saddr & 255.255.255.0 @aff_s__rs_10_0_0_1_80 goto"));
        assert!(script.contains("update @aff_s__rs_10_0_0_1_80 { ip saddr & 255.255.255.0 }"));
        let gone = departed(&first, &second);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].member.addr.to_string(), "10.0.0.2:80");
        assert_eq!(gone[0].vip, Some(("192.0.2.10".parse().unwrap(), 80)));
    }

    #[test]
    fn weight_zero_members_keep_their_chain_but_get_no_slot_and_are_not_departed() {
        let p = nat(
            "s",
            Scheduler::Rr,
            vec![member("10.0.0.1:80", 1), member("10.0.0.2:80", 1)],
        );
        let (_, first) = render(&Programmed::default(), std::slice::from_ref(&p));
        let q = nat(
            "s",
            Scheduler::Rr,
            vec![member("10.0.0.1:80", 1), member("10.0.0.2:80", 0)],
        );
        let (script, second) = render(&first, std::slice::from_ref(&q));
        assert!(script.contains("numgen inc mod 1 vmap { 0 : goto vs_s__rs_10_0_0_1_80 }"));
        assert!(second.chains.contains("vs_s__rs_10_0_0_2_80"));
        assert!(
            departed(&first, &second).is_empty(),
            "inhibited: connections drain"
        );
    }

    #[test]
    fn direct_routing_rewrites_the_mac_at_ingress_and_ipv6_and_ranges_render() {
        let mut p = nat("d", Scheduler::Sh, vec![member("10.0.0.1:80", 1)]);
        p.forward = Forward::Dr {
            ingress: "eth0".into(),
            targets: vec![Some(DrTarget {
                mac: [2, 0, 0, 0, 0, 0x11],
                device: "eth1".into(),
                src_mac: [2, 0, 0, 0, 0, 0x01],
            })],
        };
        let (script, programmed) = render(&Programmed::default(), &[p]);
        assert!(script.contains("add table netdev wasmalived_dr\n"));
        assert!(script.contains("add chain netdev wasmalived_dr in_eth0 { type filter hook ingress device \"eth0\" priority 0; policy accept; }"));
        // A connection's later packets follow its first (no conntrack at ingress).
        assert!(script.contains("add set netdev wasmalived_dr flo_d__rs_10_0_0_1_80 { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 900s; }"));
        assert!(script.contains("add rule netdev wasmalived_dr vs_d ip saddr . th sport @flo_d__rs_10_0_0_1_80 goto vs_d__rs_10_0_0_1_80"));
        assert!(script.contains("add rule netdev wasmalived_dr vs_d__rs_10_0_0_1_80 update @flo_d__rs_10_0_0_1_80 { ip saddr . th sport }"));
        assert!(script.contains(
            "add rule netdev wasmalived_dr in_eth0 ip daddr 192.0.2.10 tcp dport 80 jump vs_d"
        ));
        assert!(script.contains("jhash ip saddr mod 256 seed 0x0 vmap"));
        assert!(script.contains("add rule netdev wasmalived_dr vs_d__rs_10_0_0_1_80 ether saddr set 02:00:00:00:00:01 ether daddr set 02:00:00:00:00:11 fwd to \"eth1\""));
        assert!(programmed.dr_devices.contains("eth0"));
        // Leaving DR deletes the base chain too.
        let (script, _) = render(&programmed, &[]);
        assert!(script.contains("delete chain netdev wasmalived_dr in_eth0"));

        let mut v6 = nat("v6", Scheduler::Rr, vec![member("[2001:db8::11]:80", 1)]);
        v6.ipv6 = true;
        v6.matches = vec![
            Match::Addrs {
                first: "2001:db8::10".parse().unwrap(),
                last: "2001:db8::10".parse().unwrap(),
                port: 0,
            },
            Match::Fwmark(7),
        ];
        v6.protocol = Protocol::Udp;
        let (script, _) = render(&Programmed::default(), &[v6]);
        assert!(script.contains("ip6 daddr 2001:db8::10 meta l4proto udp jump vs_v6"));
        assert!(script.contains("meta mark 7 meta l4proto udp jump vs_v6"));
        assert!(script.contains("meta l4proto udp dnat ip6 to [2001:db8::11]:80"));
        let range = Match::Addrs {
            first: "192.0.2.3".parse().unwrap(),
            last: "192.0.2.10".parse().unwrap(),
            port: 80,
        };
        assert_eq!(
            match_expr(&nat("r", Scheduler::Rr, vec![]), &range),
            "ip daddr 192.0.2.3-192.0.2.10 tcp dport 80"
        );
    }

    #[test]
    fn an_empty_pool_has_no_scheduling_rule() {
        let p = ServicePlan {
            table: Table {
                pick: Pick::InTurn,
                slots: vec![],
            },
            ..nat("e", Scheduler::Rr, vec![])
        };
        let (script, _) = render(&Programmed::default(), &[p]);
        assert!(!script.contains("vmap"));
    }
}

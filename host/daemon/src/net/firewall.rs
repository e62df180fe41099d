//! The VRRP side's own nftables table, `inet wasmalived_vrrp` (the LVS director keeps its
//! own tables, `host/lvs/src/nft.rs`; nothing else on the host is touched). Two concerns,
//! both keepalived's (`vrrp_nftables.c`):
//!
//! - **Accept mode** (RFC 5798 §6.1 `Accept_Mode`, `accept` / `no_accept`): a Master that is
//!   not the address owner must not accept packets addressed to its VIPs unless `accept` is
//!   set. The VIPs such a Master holds are the sets `no_accept4` / `no_accept6`; the `in`
//!   chain (input hook) drops what is addressed to them and the `out` chain (output hook)
//!   what would leave from them. IPv6 neighbour solicitations and advertisements pass, so
//!   neighbour discovery for the VIPs works. ARP is not IP: gratuitous ARPs and replies are
//!   never affected. A VIP enters the set before it is added to the interface and leaves
//!   after it is removed, so no packet is accepted in between.
//! - **VMAC interfaces** (`use_vmac`): every router of a VRID gives its VMAC interface the
//!   same virtual MAC, so a Backup's IGMP / MLD membership reports from it (it joins the
//!   VRRP group there) would teach the switches that the virtual MAC lives on the Backup's
//!   port. They are dropped on the way out (keepalived moves them to the base interface;
//!   link-local groups such as 224.0.0.18 and ff02::12 are flooded by snooping switches
//!   anyway, RFC 4541 §2.1.2).
//!
//! Every change rewrites the whole table in one `nft -f -` transaction (atomic; the table is
//! tiny and changes only on state transitions and reloads). With nothing to hold, the table
//! is deleted; it is deleted at start-up (what a crash left) and at shutdown.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// The table (family `inet`).
pub const TABLE: &str = "wasmalived_vrrp";

/// The base chains' priority: before the usual filter chains (0), as keepalived's default
/// `nftables_priority` -1.
const PRIORITY: i32 = -1;

/// What the table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The VIPs held by a Master in `no_accept` mode.
    pub no_accept: BTreeSet<IpAddr>,
    /// The VMAC interfaces (by name).
    pub vmacs: BTreeSet<String>,
}

impl Ruleset {
    fn is_empty(&self) -> bool {
        self.no_accept.is_empty() && self.vmacs.is_empty()
    }
}

fn elements(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        String::new()
    } else {
        format!(" elements = {{ {} }};", items.join(", "))
    }
}

/// The `nft -f` transaction that makes the table hold exactly `rules` (or removes it).
pub fn render(rules: &Ruleset) -> String {
    // Creating the table first makes the delete valid whether or not it exists.
    let mut out = format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
    if rules.is_empty() {
        return out;
    }
    let v4 = elements(
        rules
            .no_accept
            .iter()
            .filter(|a| a.is_ipv4())
            .map(ToString::to_string),
    );
    let v6 = elements(
        rules
            .no_accept
            .iter()
            .filter(|a| a.is_ipv6())
            .map(ToString::to_string),
    );
    let vmacs = elements(rules.vmacs.iter().map(|n| format!("{n:?}")));
    let nd = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept";
    let _ = write!(
        out,
        "table inet {TABLE} {{\n\
         \x20   set no_accept4 {{ type ipv4_addr;{v4} }}\n\
         \x20   set no_accept6 {{ type ipv6_addr;{v6} }}\n\
         \x20   set vmacs {{ type ifname;{vmacs} }}\n\
         \x20   chain in {{\n\
         \x20       type filter hook input priority {PRIORITY}; policy accept;\n\
         \x20       {nd}\n\
         \x20       ip daddr @no_accept4 drop\n\
         \x20       ip6 daddr @no_accept6 drop\n\
         \x20   }}\n\
         \x20   chain out {{\n\
         \x20       type filter hook output priority {PRIORITY}; policy accept;\n\
         \x20       oifname @vmacs ip protocol igmp drop\n\
         \x20       oifname @vmacs icmpv6 type {{ mld-listener-report, mld-listener-done, mld2-listener-report }} drop\n\
         \x20       {nd}\n\
         \x20       ip saddr @no_accept4 drop\n\
         \x20       ip6 saddr @no_accept6 drop\n\
         \x20   }}\n\
         }}\n"
    );
    out
}

/// Why the table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// `nft` could not be run.
    #[error("nftables table inet {TABLE}: running nft: {0}")]
    Spawn(#[source] std::io::Error),
    /// `nft` refused the transaction.
    #[error("nftables table inet {TABLE}: nft {status}: {stderr}")]
    Refused {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
}

/// The table as this daemon last wrote it.
#[derive(Debug, Default)]
pub struct Firewall {
    /// What the last write attempted (`None`: the kernel's table is unknown). A failed
    /// write is not retried until what is wanted changes, so a missing `nft` costs one
    /// error per change, not one per loop of the router driver.
    attempted: Option<Ruleset>,
    wanted: Ruleset,
}

/// The firewall shared by the daemon (VMAC interfaces) and the router driver (accept mode).
pub type SharedFirewall = Arc<Mutex<Firewall>>;

impl Firewall {
    /// A firewall to share.
    pub fn shared() -> SharedFirewall {
        Arc::new(Mutex::new(Firewall::default()))
    }

    /// Hold exactly `vips` as no-accept VIPs.
    pub async fn set_no_accept(&mut self, vips: BTreeSet<IpAddr>) -> Result<(), FirewallError> {
        self.wanted.no_accept = vips;
        self.sync().await
    }

    /// Hold exactly `names` as VMAC interfaces.
    pub async fn set_vmacs(&mut self, names: BTreeSet<String>) -> Result<(), FirewallError> {
        self.wanted.vmacs = names;
        self.sync().await
    }

    /// Remove the table, whatever it holds (start-up and shutdown).
    pub async fn clear(&mut self) -> Result<(), FirewallError> {
        self.wanted = Ruleset::default();
        self.attempted = None;
        self.sync().await
    }

    /// Write the table if it differs from what is wanted.
    async fn sync(&mut self) -> Result<(), FirewallError> {
        if self.attempted.as_ref() == Some(&self.wanted) {
            return Ok(());
        }
        self.attempted = Some(self.wanted.clone());
        run_nft(&render(&self.wanted)).await?;
        tracing::debug!(
            no_accept = self.wanted.no_accept.len(),
            vmacs = self.wanted.vmacs.len(),
            "nftables table inet {TABLE} written"
        );
        Ok(())
    }
}

async fn run_nft(script: &str) -> Result<(), FirewallError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(FirewallError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(FirewallError::Spawn)?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(FirewallError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FirewallError::Refused {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_hold_deletes_the_table() {
        let script = render(&Ruleset::default());
        assert_eq!(
            script,
            "table inet wasmalived_vrrp {}\ndelete table inet wasmalived_vrrp\n"
        );
    }

    /// RFC 5798 §6.1 Accept_Mode: traffic to a no-accept VIP is dropped, neighbour discovery
    /// passes; VMAC interfaces send no membership reports.
    #[test]
    fn no_accept_vips_and_vmacs_render_into_sets() {
        let rules = Ruleset {
            no_accept: ["192.0.2.200", "2001:db8::200", "192.0.2.201"]
                .iter()
                .map(|a| a.parse().unwrap())
                .collect(),
            vmacs: BTreeSet::from(["vrrp.51".to_owned()]),
        };
        let script = render(&rules);
        assert!(script
            .starts_with("table inet wasmalived_vrrp {}\ndelete table inet wasmalived_vrrp\n"));
        assert!(
            script.contains(
                "set no_accept4 { type ipv4_addr; elements = { 192.0.2.200, 192.0.2.201 }; }"
            ),
            "{script}"
        );
        assert!(
            script.contains("set no_accept6 { type ipv6_addr; elements = { 2001:db8::200 }; }"),
            "{script}"
        );
        assert!(
            script.contains("set vmacs { type ifname; elements = { \"vrrp.51\" }; }"),
            "{script}"
        );
        let input = script.split("chain in").nth(1).unwrap();
        let nd = input.find("nd-neighbor-solicit").unwrap();
        let drop = input.find("ip6 daddr @no_accept6 drop").unwrap();
        assert!(
            nd < drop,
            "neighbour discovery passes before the drop:\n{script}"
        );
        assert!(script.contains("oifname @vmacs ip protocol igmp drop"));
    }

    #[test]
    fn empty_sets_have_no_elements_clause() {
        let rules = Ruleset {
            no_accept: BTreeSet::new(),
            vmacs: BTreeSet::from(["v1".to_owned()]),
        };
        let script = render(&rules);
        assert!(
            script.contains("set no_accept4 { type ipv4_addr; }"),
            "{script}"
        );
    }
}

//! Routes and policy-routing rules as keepalived's `virtual_routes` / `static_routes` and
//! `virtual_rules` / `static_rules` lines describe them (`vrrp_iproute.c`, `vrrp_iprule.c`).
//!
//! Shared by the config (which parses them, `validate/routes.rs`) and the netlink edge
//! (which installs them). Only the subset operators use is modelled; the parser refuses
//! the rest by name.

use std::fmt;
use std::net::IpAddr;

use crate::vip::Scope;

/// keepalived's routing protocol number (`RTPROT_KEEPALIVED`): routes and rules it tracks
/// carry it, so `ip route show proto keepalived` lists them.
pub const RTPROT_KEEPALIVED: u8 = 18;

/// The main routing table (`RT_TABLE_MAIN`), where a route without `table` goes.
pub const TABLE_MAIN: u32 = 254;

/// The first preference keepalived gives a rule written without one; each further such
/// rule of the same family gets one less (`RULE_START_PRIORITY`).
pub const RULE_START_PREFERENCE: u32 = 16384;

/// An address prefix, `ADDR/LEN` (the host bits are kept as written, as `ip` keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (at most 32 for IPv4, 128 for IPv6).
    pub len: u8,
}

impl Prefix {
    /// Whether this is an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// What a route does with the traffic it matches (`ip route add TYPE …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// A normal route: through `via` and/or out of `dev`.
    Unicast,
    /// `blackhole`: discard silently.
    Blackhole,
    /// `unreachable`: discard with ICMP unreachable.
    Unreachable,
    /// `prohibit`: discard with ICMP administratively prohibited.
    Prohibit,
}

impl RouteKind {
    /// The `ip route` keyword (`None` for a unicast route, which has none).
    pub fn keyword(self) -> Option<&'static str> {
        match self {
            RouteKind::Unicast => None,
            RouteKind::Blackhole => Some("blackhole"),
            RouteKind::Unreachable => Some("unreachable"),
            RouteKind::Prohibit => Some("prohibit"),
        }
    }
}

/// One route: `[TYPE] PREFIX [via IP] [dev IF] [src IP] [table N] [metric N] [scope S]
/// [no_track]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    /// Destination.
    pub dst: Prefix,
    /// Unicast, or one of the discard kinds.
    pub kind: RouteKind,
    /// Gateway (`via`, keepalived's older `gw`).
    pub via: Option<IpAddr>,
    /// Output interface (`dev` / `oif`).
    pub dev: Option<String>,
    /// Preferred source address (`src`, the kernel's `RTA_PREFSRC`).
    pub src: Option<IpAddr>,
    /// Routing table ([`TABLE_MAIN`] unless `table` says otherwise).
    pub table: u32,
    /// `metric` / `priority` / `preference`.
    pub metric: Option<u32>,
    /// `scope` (kernel default: global for gatewayed routes, link for direct ones).
    pub scope: Option<Scope>,
    /// `no_track`: installed without keepalived's protocol number.
    pub no_track: bool,
}

/// What a rule does with the packets it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// `table N` / `lookup N`.
    Table(u32),
    /// `blackhole`.
    Blackhole,
    /// `unreachable`.
    Unreachable,
    /// `prohibit`.
    Prohibit,
}

/// One policy-routing rule: `[from PREFIX] [to PREFIX] [iif IF] [oif IF] [fwmark M[/MASK]]
/// [preference N] ACTION [no_track]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    /// IPv6 (`true`) or IPv4 rule (from its addresses, `inet6`; IPv4 by default).
    pub ipv6: bool,
    /// Source selector (`from`).
    pub from: Option<Prefix>,
    /// Destination selector (`to`).
    pub to: Option<Prefix>,
    /// Input interface (`iif` / `dev`).
    pub iif: Option<String>,
    /// Output interface (`oif`).
    pub oif: Option<String>,
    /// Firewall mark and optional mask (`fwmark M[/MASK]`).
    pub fwmark: Option<(u32, Option<u32>)>,
    /// Preference (`preference` / `priority` / `order`; keepalived's count-down from
    /// [`RULE_START_PREFERENCE`] when not written).
    pub preference: u32,
    /// What to do.
    pub action: RuleAction,
    /// `no_track`: installed without keepalived's protocol number.
    pub no_track: bool,
}

/// The global `static_ipaddress`, `static_routes` and `static_rules`: installed when the
/// daemon starts, whatever the VRRP state, and removed when it stops.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StaticEntries {
    /// `static_ipaddress { … }` (each with its `dev`).
    pub addresses: Vec<crate::vip::VipSpec>,
    /// `static_routes { … }`.
    pub routes: Vec<RouteSpec>,
    /// `static_rules { … }`.
    pub rules: Vec<RuleSpec>,
}

impl StaticEntries {
    /// Whether there is nothing to install.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.routes.is_empty() && self.rules.is_empty()
    }
}

/// A scope's `ip` name.
pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Global => "global",
        Scope::Site => "site",
        Scope::Link => "link",
        Scope::Host => "host",
        Scope::Nowhere => "nowhere",
    }
}

/// As `ip route` takes it, every default spelled out: `[TYPE] DST [via GW] [dev IF]
/// [src IP] table N [metric N] [scope S] [no_track]`.
impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(kind) = self.kind.keyword() {
            write!(f, "{kind} ")?;
        }
        write!(f, "{}", self.dst)?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if let Some(src) = self.src {
            write!(f, " src {src}")?;
        }
        write!(f, " table {}", self.table)?;
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        if let Some(scope) = self.scope {
            write!(f, " scope {}", scope_name(scope))?;
        }
        if self.no_track {
            write!(f, " no_track")?;
        }
        Ok(())
    }
}

/// As `ip rule` takes it: `[inet6] from P|all [to P] [iif IF] [oif IF] [fwmark M[/K]]
/// preference N ACTION [no_track]`.
impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ipv6 {
            write!(f, "inet6 ")?;
        }
        match self.from {
            Some(p) => write!(f, "from {p}")?,
            None => write!(f, "from all")?,
        }
        if let Some(p) = self.to {
            write!(f, " to {p}")?;
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &self.oif {
            write!(f, " oif {o}")?;
        }
        match self.fwmark {
            Some((mark, Some(mask))) => write!(f, " fwmark {mark:#x}/{mask:#x}")?,
            Some((mark, None)) => write!(f, " fwmark {mark:#x}")?,
            None => {}
        }
        write!(f, " preference {}", self.preference)?;
        match self.action {
            RuleAction::Table(t) => write!(f, " table {t}")?,
            RuleAction::Blackhole => write!(f, " blackhole")?,
            RuleAction::Unreachable => write!(f, " unreachable")?,
            RuleAction::Prohibit => write!(f, " prohibit")?,
        }
        if self.no_track {
            write!(f, " no_track")?;
        }
        Ok(())
    }
}

/// One entry a Master installs besides its addresses: the router's second installed type
/// (see `wasmalived_proto::router::InstanceSpec::routes`). Planned routes first, then
/// rules, as keepalived adds them; removed in the reverse order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VirtualEntry {
    /// A `virtual_routes` line.
    Route(RouteSpec),
    /// A `virtual_rules` line.
    Rule(RuleSpec),
}

impl VirtualEntry {
    /// `"route"` or `"rule"`.
    pub fn kind(&self) -> &'static str {
        match self {
            VirtualEntry::Route(_) => "route",
            VirtualEntry::Rule(_) => "rule",
        }
    }
}

impl fmt::Display for VirtualEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VirtualEntry::Route(r) => write!(f, "route {r}"),
            VirtualEntry::Rule(r) => write!(f, "rule {r}"),
        }
    }
}

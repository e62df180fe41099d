//! Routes and policy-routing rules over rtnetlink: what `ip route add|del` and
//! `ip rule add|del` send, built from the config's [`RouteSpec`] / [`RuleSpec`].
//!
//! Like the VIP calls, adding what is already there and removing what is already gone
//! succeed: a restart after a crash, or an operator's `ip route del`, never wedges a
//! transition. Routes and rules keepalived would track carry its protocol number
//! ([`RTPROT_KEEPALIVED`]), so `ip route show proto keepalived` lists them.

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::AddressFamily;
use wasmalived_config::route::{
    RouteKind, RouteSpec, RuleAction, RuleSpec, VirtualEntry, RTPROT_KEEPALIVED,
};
use wasmalived_config::vip::Scope;

use super::netlink::{is_errno, Netlink, NetlinkError};

fn family(ipv6: bool) -> AddressFamily {
    if ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn protocol(no_track: bool) -> RouteProtocol {
    if no_track {
        RouteProtocol::Boot
    } else {
        RouteProtocol::from(RTPROT_KEEPALIVED)
    }
}

fn route_scope(scope: Scope) -> RouteScope {
    match scope {
        Scope::Global => RouteScope::Universe,
        Scope::Site => RouteScope::Site,
        Scope::Link => RouteScope::Link,
        Scope::Host => RouteScope::Host,
        Scope::Nowhere => RouteScope::NoWhere,
    }
}

/// The `RTM_NEWROUTE` / `RTM_DELROUTE` body of `route`, its `dev` resolved to `oif`. A
/// route without `scope` gets the kernel's usual one: link for a direct route out of a
/// device, global otherwise (what `ip route add` picks).
pub fn route_message(route: &RouteSpec, oif: Option<u32>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let h = &mut msg.header;
    h.address_family = family(route.dst.addr.is_ipv6());
    h.destination_prefix_length = route.dst.len;
    h.protocol = protocol(route.no_track);
    h.kind = match route.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
    };
    h.scope = match route.scope {
        Some(s) => route_scope(s),
        None if route.kind == RouteKind::Unicast && route.via.is_none() && oif.is_some() => {
            RouteScope::Link
        }
        None => RouteScope::Universe,
    };
    // Tables above 255 only fit the attribute; the header says "see RTA_TABLE" then.
    h.table = u8::try_from(route.table)
        .ok()
        .filter(|t| *t != 0)
        .unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    msg.attributes.push(RouteAttribute::Table(route.table));
    if route.dst.len > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                route.dst.addr,
            )));
    }
    if let Some(via) = route.via {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(via)));
    }
    if let Some(src) = route.src {
        msg.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    if let Some(oif) = oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(metric) = route.metric {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
    msg
}

/// The `RTM_NEWRULE` / `RTM_DELRULE` body of `rule`.
pub fn rule_message(rule: &RuleSpec) -> RuleMessage {
    let mut msg = RuleMessage::default();
    let h = &mut msg.header;
    h.family = family(rule.ipv6);
    h.action = match rule.action {
        RuleAction::Table(_) => NlRuleAction::ToTable,
        RuleAction::Blackhole => NlRuleAction::Blackhole,
        RuleAction::Unreachable => NlRuleAction::Unreachable,
        RuleAction::Prohibit => NlRuleAction::Prohibit,
    };
    if let RuleAction::Table(table) = rule.action {
        h.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        msg.attributes.push(RuleAttribute::Table(table));
    }
    if let Some(from) = rule.from {
        h.src_len = from.len;
        msg.attributes.push(RuleAttribute::Source(from.addr));
    }
    if let Some(to) = rule.to {
        h.dst_len = to.len;
        msg.attributes.push(RuleAttribute::Destination(to.addr));
    }
    if let Some(iif) = &rule.iif {
        msg.attributes.push(RuleAttribute::Iifname(iif.clone()));
    }
    if let Some(oif) = &rule.oif {
        msg.attributes.push(RuleAttribute::Oifname(oif.clone()));
    }
    if let Some((mark, mask)) = rule.fwmark {
        msg.attributes.push(RuleAttribute::FwMark(mark));
        if let Some(mask) = mask {
            msg.attributes.push(RuleAttribute::FwMask(mask));
        }
    }
    msg.attributes
        .push(RuleAttribute::Priority(rule.preference));
    msg.attributes
        .push(RuleAttribute::Protocol(protocol(rule.no_track)));
    msg
}

fn request_error(op: &'static str, what: String, source: rtnetlink::Error) -> NetlinkError {
    NetlinkError::Request {
        op,
        target: what,
        source,
    }
}

impl Netlink {
    async fn route_oif(&self, route: &RouteSpec) -> Result<Option<u32>, NetlinkError> {
        match &route.dev {
            Some(dev) => self.ifindex(dev).await.map(Some),
            None => Ok(None),
        }
    }

    /// Installs a route. Already present: success.
    pub async fn add_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        let oif = self.route_oif(route).await?;
        match self
            .handle
            .route()
            .add(route_message(route, oif))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => {
                tracing::debug!(%route, "route already present");
                Ok(())
            }
            Err(source) => Err(request_error("adding route", route.to_string(), source)),
        }
    }

    /// Removes a route. Absent (or its interface gone): success.
    pub async fn del_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        let oif = match self.route_oif(route).await {
            Ok(oif) => oif,
            Err(NetlinkError::NoSuchInterface { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self
            .handle
            .route()
            .del(route_message(route, oif))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ESRCH) || is_errno(&e, libc::ENODEV) => {
                tracing::debug!(%route, "route already absent");
                Ok(())
            }
            Err(source) => Err(request_error("deleting route", route.to_string(), source)),
        }
    }

    /// Installs a rule. Already present: success.
    pub async fn add_rule(&self, rule: &RuleSpec) -> Result<(), NetlinkError> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = rule_message(rule);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => {
                tracing::debug!(%rule, "rule already present");
                Ok(())
            }
            Err(source) => Err(request_error("adding rule", rule.to_string(), source)),
        }
    }

    /// Removes a rule. Absent: success.
    pub async fn del_rule(&self, rule: &RuleSpec) -> Result<(), NetlinkError> {
        match self.handle.rule().del(rule_message(rule)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ENOENT) => {
                tracing::debug!(%rule, "rule already absent");
                Ok(())
            }
            Err(source) => Err(request_error("deleting rule", rule.to_string(), source)),
        }
    }

    /// Installs one virtual route or rule.
    pub async fn add_entry(&self, entry: &VirtualEntry) -> Result<(), NetlinkError> {
        match entry {
            VirtualEntry::Route(r) => self.add_route(r).await,
            VirtualEntry::Rule(r) => self.add_rule(r).await,
        }
    }

    /// Removes one virtual route or rule.
    pub async fn del_entry(&self, entry: &VirtualEntry) -> Result<(), NetlinkError> {
        match entry {
            VirtualEntry::Route(r) => self.del_route(r).await,
            VirtualEntry::Rule(r) => self.del_rule(r).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmalived_config::route::Prefix;

    fn route() -> RouteSpec {
        RouteSpec {
            dst: Prefix {
                addr: "198.51.100.0".parse().unwrap(),
                len: 24,
            },
            kind: RouteKind::Unicast,
            via: None,
            dev: Some("eth0".into()),
            src: None,
            table: 1000,
            metric: Some(7),
            scope: None,
            no_track: false,
        }
    }

    #[test]
    fn a_direct_route_is_link_scoped_and_a_big_table_goes_in_the_attribute() {
        let msg = route_message(&route(), Some(3));
        assert_eq!(msg.header.scope, RouteScope::Link);
        assert_eq!(msg.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert_eq!(msg.header.protocol, RouteProtocol::from(RTPROT_KEEPALIVED));
        assert!(msg.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(msg.attributes.contains(&RouteAttribute::Oif(3)));
        assert!(msg.attributes.contains(&RouteAttribute::Priority(7)));
    }

    #[test]
    fn a_blackhole_default_route_has_no_destination_attribute() {
        let mut r = route();
        r.kind = RouteKind::Blackhole;
        r.dst = Prefix {
            addr: "::".parse().unwrap(),
            len: 0,
        };
        r.dev = None;
        r.no_track = true;
        let msg = route_message(&r, None);
        assert_eq!(msg.header.kind, RouteType::BlackHole);
        assert_eq!(msg.header.address_family, AddressFamily::Inet6);
        assert_eq!(msg.header.scope, RouteScope::Universe);
        assert_eq!(msg.header.protocol, RouteProtocol::Boot);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
    }

    #[test]
    fn a_rule_carries_its_selectors_preference_and_table() {
        let rule = RuleSpec {
            ipv6: false,
            from: Some(Prefix {
                addr: "192.0.2.0".parse().unwrap(),
                len: 24,
            }),
            to: None,
            iif: Some("eth0".into()),
            oif: None,
            fwmark: Some((16, Some(255))),
            preference: 100,
            action: RuleAction::Table(100),
            no_track: false,
        };
        let msg = rule_message(&rule);
        assert_eq!(msg.header.action, NlRuleAction::ToTable);
        assert_eq!((msg.header.src_len, msg.header.table), (24, 100));
        for attr in [
            RuleAttribute::Source("192.0.2.0".parse().unwrap()),
            RuleAttribute::Iifname("eth0".into()),
            RuleAttribute::FwMark(16),
            RuleAttribute::FwMask(255),
            RuleAttribute::Priority(100),
            RuleAttribute::Table(100),
        ] {
            assert!(msg.attributes.contains(&attr), "{attr:?}");
        }
    }
}

//! What the director cannot run, or runs differently from keepalived with IPVS, said with the
//! place in the file: at `-t` time and when the daemon applies a configuration.

use std::net::IpAddr;

use wasmalived_config::lvs::{LvsBackendChoice, ServiceAddr, VirtualServer};
use wasmalived_config::Config;
use wasmalived_lvs::{backend::review_stateless, Review};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The virtual server does not run.
    Error,
    /// It runs, differently.
    Warning,
}

/// One finding, with its place (`file:line:column`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where.
    pub place: String,
    /// How bad.
    pub severity: Severity,
    /// What, and what to do.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {kind}: {}", self.place, self.message)
    }
}

/// The backend a configuration gets (part 1 has nftables only).
pub fn backend_name(config: &Config) -> &'static str {
    match config.global.lvs_backend {
        LvsBackendChoice::Ipvs => "ipvs",
        LvsBackendChoice::Auto | LvsBackendChoice::Nftables => "nftables",
    }
}

/// Everything to say about the configuration's virtual servers.
pub fn review(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    if config.virtual_servers.is_empty() {
        return out;
    }
    if config.global.lvs_backend == LvsBackendChoice::Ipvs {
        out.push(Finding {
            place: config
                .virtual_servers
                .first()
                .map(|vs| vs.origin.0.to_string())
                .unwrap_or_default(),
            severity: Severity::Error,
            message: "lvs_backend ipvs: the IPVS backend is not built yet; use lvs_backend nftables (or auto)".into(),
        });
    }
    for vs in &config.virtual_servers {
        out.extend(review_one(vs, config));
    }
    out
}

/// The findings of one virtual server.
pub fn review_one(vs: &VirtualServer, config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let label = vs.label();
    for r in review_stateless(vs) {
        let (severity, message, place) = match r {
            Review::Refused(m) => (Severity::Error, m, &vs.forwarding_at),
            Review::Differs(m) => (Severity::Warning, m, &vs.scheduler_at),
        };
        out.push(Finding {
            place: place.0.to_string(),
            severity,
            message: format!("virtual_server {label}: {message}"),
        });
    }
    if vs.ha_suspend && vs_vip(vs, config).is_none() {
        out.push(Finding {
            place: vs.origin.0.to_string(),
            severity: Severity::Warning,
            message: format!(
                "virtual_server {label}: ha_suspend has no effect: its address is not a virtual_ipaddress of any vrrp_instance, so its checks always run"
            ),
        });
    }
    for rs in &vs.real_servers {
        for c in &rs.checkers {
            if let wasmalived_config::lvs::CheckerKind::Http(h) = &c.kind {
                if h.tls.as_ref().is_some_and(|t| !t.verify) {
                    out.push(Finding {
                        place: c.origin.0.to_string(),
                        severity: Severity::Warning,
                        message: format!(
                            "virtual_server {label}: real_server {}: SSL_GET verifies no certificate (as keepalived); add `tls_verify` (optionally with a CA file) to verify",
                            rs.addr
                        ),
                    });
                }
            }
        }
    }
    out
}

/// The VS address when it is a VRRP virtual address of this configuration (what
/// `ha_suspend` and the direct-routing ingress follow).
pub fn vs_vip(vs: &VirtualServer, config: &Config) -> Option<IpAddr> {
    let ServiceAddr::Socket(addr) = &vs.addr else {
        return None;
    };
    let ip = addr.ip();
    config
        .instances
        .iter()
        .any(|i| i.vips.iter().chain(&i.excluded_vips).any(|v| v.addr == ip))
        .then_some(ip)
}

/// The interface a VS address lives on when it is a VRRP virtual address: the address's own
/// `dev`, else its instance's interface.
pub fn vip_interface(vs: &VirtualServer, config: &Config) -> Option<String> {
    let ip = vs_vip(vs, config)?;
    config.instances.iter().find_map(|i| {
        i.vips
            .iter()
            .chain(&i.excluded_vips)
            .find(|v| v.addr == ip)
            .map(|v| v.dev.clone().unwrap_or_else(|| i.interface.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::lvs::test_config as config;

    const INSTANCE: &str = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  192.0.2.10/24 dev eth1\n }\n}\n";

    #[test]
    fn refusals_and_fallbacks_name_their_lines() {
        let c = config(&format!(
            "{INSTANCE}virtual_server 192.0.2.10 80 {{\n lb_algo wlc\n lb_kind TUN\n real_server 198.51.100.1 80 {{\n  TCP_CHECK {{\n  }}\n }}\n}}\n"
        ));
        let f = review(&c);
        let wlc = f
            .iter()
            .find(|f| f.message.contains("wlc"))
            .expect("fallback");
        assert_eq!(wlc.severity, Severity::Warning);
        assert!(wlc.place.starts_with("t.conf:10:"), "{wlc}");
        let tun = f.iter().find(|f| f.message.contains("TUN")).expect("TUN");
        assert_eq!(tun.severity, Severity::Error);
        assert!(tun.place.starts_with("t.conf:11:"), "{tun}");
    }

    #[test]
    fn ha_suspend_follows_a_vip_and_says_when_there_is_none() {
        let c = config(&format!(
            "{INSTANCE}virtual_server 192.0.2.10 80 {{\n ha_suspend\n}}\nvirtual_server 192.0.2.99 80 {{\n ha_suspend\n}}\n"
        ));
        assert_eq!(
            vip_interface(&c.virtual_servers[0], &c).as_deref(),
            Some("eth1")
        );
        // Without lb_algo both run keepalived's default wlc, which falls back (a warning
        // each); only the second has a ha_suspend finding.
        let f: Vec<Finding> = review(&c)
            .into_iter()
            .filter(|f| f.message.contains("ha_suspend"))
            .collect();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("192.0.2.99"));
    }

    #[test]
    fn ipvs_is_refused_until_it_exists() {
        let c = config(&format!(
            "global_defs {{\n lvs_backend ipvs\n}}\n{INSTANCE}virtual_server 192.0.2.10 80 {{\n}}\n"
        ));
        assert!(review(&c)
            .iter()
            .any(|f| f.severity == Severity::Error && f.message.contains("IPVS")));
    }
}

//! What the director cannot run, or runs differently from keepalived with IPVS, said with the
//! place in the file: at `-t` time and when the daemon applies a configuration.

use std::net::IpAddr;

use wasmalived_config::lvs::{ServiceAddr, VirtualServer};
use wasmalived_config::Config;
use wasmalived_lvs::{BackendKind, Review};

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

/// The backend `config` runs on this host (`lvs_backend`, and for `auto` whether the kernel
/// has IPVS), or why it cannot run (the message starts with `lvs_backend`).
pub fn backend_for(config: &Config) -> Result<BackendKind, String> {
    wasmalived_lvs::detect(config.global.lvs_backend).map_err(|e| e.to_string())
}

/// Everything to say about the configuration's virtual servers on the backend this host gives
/// it (`-t`).
pub fn review(config: &Config) -> Vec<Finding> {
    if config.virtual_servers.is_empty() {
        return Vec::new();
    }
    review_for(config, backend_for(config))
}

/// Everything to say about the configuration's virtual servers on `backend` (or, when the
/// configured backend cannot run, why: an error that refuses them all).
pub fn review_for(config: &Config, backend: Result<BackendKind, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    if config.virtual_servers.is_empty() {
        return out;
    }
    let kind = match backend {
        Ok(kind) => kind,
        Err(why) => {
            out.push(Finding {
                place: config
                    .virtual_servers
                    .first()
                    .map(|vs| vs.origin.0.to_string())
                    .unwrap_or_default(),
                severity: Severity::Error,
                message: why,
            });
            // What the configuration would need elsewhere is still worth saying.
            BackendKind::Ipvs
        }
    };
    for vs in &config.virtual_servers {
        out.extend(review_one(vs, config, kind));
    }
    out
}

/// Which backend a configuration needs, from both backends' reviews of its virtual servers
/// (`-t`): what nftables refuses or runs differently, what IPVS refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendNeeds {
    /// `virtual_server X: reason` that nftables cannot run (`lb_kind TUN`, …).
    pub refused_on_nftables: Vec<String>,
    /// `virtual_server X: reason` that nftables runs differently (`lb_algo wlc`, …).
    pub differs_on_nftables: Vec<String>,
    /// `virtual_server X: reason` that IPVS cannot run.
    pub refused_on_ipvs: Vec<String>,
}

impl BackendNeeds {
    /// Review `config`'s virtual servers on both backends.
    pub fn of(config: &Config) -> Self {
        let mut needs = BackendNeeds::default();
        for vs in &config.virtual_servers {
            let item = |message: &str| {
                // The reason's first clause: the rest says what to do, which `-t` says too.
                let reason = message.split([',', ';']).next().unwrap_or(message);
                format!("virtual_server {}: {}", vs.label(), reason.trim())
            };
            for r in BackendKind::Nftables.review(vs) {
                match r {
                    Review::Refused(m) => needs.refused_on_nftables.push(item(&m)),
                    Review::Differs(m) => needs.differs_on_nftables.push(item(&m)),
                }
            }
            for r in BackendKind::Ipvs.review(vs) {
                if let Review::Refused(m) = r {
                    needs.refused_on_ipvs.push(item(&m));
                }
            }
        }
        needs
    }

    /// One line: the backend the configuration needs, and why.
    pub fn summary(&self) -> String {
        match (
            self.refused_on_nftables.is_empty(),
            self.refused_on_ipvs.is_empty(),
        ) {
            (false, true) => format!(
                "needs lvs_backend ipvs ({})",
                self.refused_on_nftables.join("; ")
            ),
            (true, false) => format!(
                "needs lvs_backend nftables ({})",
                self.refused_on_ipvs.join("; ")
            ),
            (false, false) => format!(
                "runs on neither backend as written (nftables: {}; ipvs: {})",
                self.refused_on_nftables.join("; "),
                self.refused_on_ipvs.join("; ")
            ),
            (true, true) if !self.differs_on_nftables.is_empty() => format!(
                "runs on either backend; as keepalived runs it only on ipvs (nftables: {})",
                self.differs_on_nftables.join("; ")
            ),
            (true, true) => "runs on either backend (nftables, ipvs)".into(),
        }
    }
}

/// What `-t` says about the LVS data path: the backend this host gives the configuration
/// (`lvs_backend`, and for `auto` whether the kernel has IPVS), and the one it needs. Nothing
/// without virtual servers.
pub fn backend_report(config: &Config) -> Option<String> {
    if config.virtual_servers.is_empty() {
        return None;
    }
    let choice = config.global.lvs_backend.keyword();
    let here = match backend_for(config) {
        Ok(kind) => format!("this host runs {}", kind.name()),
        Err(_) => "this host cannot run it".into(),
    };
    Some(format!(
        "LVS: lvs_backend {choice}: {here}; the configuration {}",
        BackendNeeds::of(config).summary()
    ))
}

/// The findings of one virtual server.
pub fn review_one(vs: &VirtualServer, config: &Config, kind: BackendKind) -> Vec<Finding> {
    let mut out = Vec::new();
    let label = vs.label();
    for r in kind.review(vs) {
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
        let f = review_for(&c, Ok(BackendKind::Nftables));
        let wlc = f
            .iter()
            .find(|f| f.message.contains("wlc"))
            .expect("fallback");
        assert_eq!(wlc.severity, Severity::Warning);
        assert!(wlc.place.starts_with("t.conf:10:"), "{wlc}");
        let tun = f.iter().find(|f| f.message.contains("TUN")).expect("TUN");
        assert_eq!(tun.severity, Severity::Error);
        assert!(tun.place.starts_with("t.conf:11:"), "{tun}");
        // Both say the configuration needs IPVS; on IPVS it runs as written.
        assert!(
            wlc.message.contains("lvs_backend ipvs") && tun.message.contains("lvs_backend ipvs")
        );
        assert!(review_for(&c, Ok(BackendKind::Ipvs)).is_empty());
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
        let f: Vec<Finding> = review_for(&c, Ok(BackendKind::Nftables))
            .into_iter()
            .filter(|f| f.message.contains("ha_suspend"))
            .collect();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("192.0.2.99"));
    }

    #[test]
    fn backend_needs_name_what_only_one_backend_runs() {
        let vs = |algo: &str, kind: &str, port: u16| {
            format!("virtual_server 192.0.2.{port} 80 {{\n lb_algo {algo}\n lb_kind {kind}\n real_server 198.51.100.1 80 {{\n }}\n}}\n")
        };
        let either = config(&format!("{INSTANCE}{}", vs("rr", "NAT", 10)));
        assert_eq!(
            BackendNeeds::of(&either).summary(),
            "runs on either backend (nftables, ipvs)"
        );
        let counts = config(&format!("{INSTANCE}{}", vs("sed", "DR", 10)));
        assert_eq!(
            BackendNeeds::of(&counts).summary(),
            "runs on either backend; as keepalived runs it only on ipvs (nftables: virtual_server 192.0.2.10:80/tcp: lb_algo sed needs connection counts)"
        );
        let tun = config(&format!(
            "{INSTANCE}{}{}",
            vs("rr", "TUN", 10),
            vs("wlc", "NAT", 11)
        ));
        let needs = BackendNeeds::of(&tun);
        assert_eq!(
            needs.summary(),
            "needs lvs_backend ipvs (virtual_server 192.0.2.10:80/tcp: lb_kind TUN has no nftables equivalent)"
        );
        assert_eq!(needs.differs_on_nftables.len(), 1, "{needs:?}");
        let report = backend_report(&tun).expect("virtual servers");
        assert!(
            report.starts_with("LVS: lvs_backend auto: this host runs ")
                && report.ends_with(&needs.summary()),
            "{report}"
        );
        assert_eq!(backend_report(&config(INSTANCE)), None);
    }

    #[test]
    fn lvs_backend_ipvs_without_ipvs_is_an_error_at_the_first_virtual_server() {
        let c = config(&format!(
            "global_defs {{\n lvs_backend ipvs\n}}\n{INSTANCE}virtual_server 192.0.2.10 80 {{\n}}\n"
        ));
        let missing = wasmalived_lvs::SelectError::NoIpvs("not registered".into()).to_string();
        let f = review_for(&c, Err(missing));
        let e = f
            .iter()
            .find(|f| f.severity == Severity::Error)
            .expect("error");
        // The director refuses every service on a finding that starts so.
        assert!(
            e.message
                .starts_with("lvs_backend ipvs: this kernel has no IPVS"),
            "{e}"
        );
        assert!(e.place.starts_with("t.conf:12:"), "{e}");
        // On this host: whatever the kernel has, -t agrees with the start-up's detection.
        match backend_for(&c) {
            Ok(kind) => assert_eq!(kind, BackendKind::Ipvs),
            Err(why) => assert!(review(&c).iter().any(|f| f.message == why)),
        }
    }
}

//! The contract between host and plugin as the loader sees it: which `wasmalived:plugin`
//! version a component targets, and which capability (grant) each of its imports needs.
//!
//! Pure functions over import/export names, so every rule has a unit test.

use std::fmt;

use wasmalived_config::grants::Grants;

/// The WIT package this host implements.
pub const PACKAGE: &str = "wasmalived:plugin";
/// The contract version this host provides (`wit/plugin.wit`).
pub const HOST_VERSION: Version = Version {
    major: 1,
    minor: 5,
    patch: 0,
};

/// A semver `major.minor.patch` (pre-release/build suffixes are not used by the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible changes.
    pub major: u32,
    /// Additions.
    pub minor: u32,
    /// Fixes.
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// Parse `1.2.3`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('.');
        let v = Version {
            major: it.next()?.parse().ok()?,
            minor: it.next()?.parse().ok()?,
            patch: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(v)
    }

    /// Whether a plugin built against `self` runs on a host providing `host`:
    /// same major (≥ 1), and the host's minor is at least the plugin's.
    pub fn runs_on(&self, host: &Version) -> bool {
        self.major == host.major && self.major >= 1 && self.minor <= host.minor
    }
}

/// Split `ns:pkg/iface@1.2.3` into (`ns:pkg`, `iface`, version).
pub fn split_name(name: &str) -> Option<(&str, &str, Option<&str>)> {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    let (package, iface) = path.split_once('/')?;
    Some((package, iface, version))
}

/// The contract version a component targets, from its `wasmalived:plugin/check@X.Y.Z` export.
pub fn check_export_version<'a>(
    mut exports: impl Iterator<Item = &'a str>,
) -> Result<Version, String> {
    let name = exports
        .find(|e| matches!(split_name(e), Some((PACKAGE, "check", _))))
        .ok_or_else(|| {
            format!("does not export `{PACKAGE}/check` (not a wasmalived check plugin)")
        })?;
    let version = split_name(name)
        .and_then(|(_, _, v)| v)
        .ok_or_else(|| format!("exports `{name}` without a version"))?;
    Version::parse(version).ok_or_else(|| format!("exports `{name}`: bad version `{version}`"))
}

/// Refuse a plugin built for a contract this host does not provide; the message names both.
pub fn check_compatible(wanted: &Version) -> Result<(), String> {
    if wanted.runs_on(&HOST_VERSION) {
        Ok(())
    } else {
        Err(format!(
            "wants contract {PACKAGE}@{wanted}, this host provides {PACKAGE}@{HOST_VERSION} \
             (compatible: {}.0.0 ..= {HOST_VERSION})",
            HOST_VERSION.major
        ))
    }
}

/// How a capability is linked into a check's instance. This is the sandbox's linking policy,
/// stated once (see [`Capability::linking`]); the linker and the import check both follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    /// Linked for every plugin and harmless.
    Always,
    /// Linked for every plugin, with no authority unless granted: every use is refused (and
    /// recorded as a denial of the run) unless the config grants it. So a plugin may import
    /// it for an optional feature (nginx-process's remediation, quorum's two backends) and
    /// still load without the grant.
    DenyAllUnlessGranted,
    /// Linked only when granted; a plugin importing it without the grant is refused at load,
    /// with a message naming the grant. For capabilities whose mere presence discloses
    /// something (the process table).
    OnlyWhenGranted,
}

/// What an import needs in order to be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Always linked and harmless: our `log`/`scratch`/types, wasi io/clocks/random.
    Always,
    /// Imported by Rust's wasm32-wasip2 std itself (cli environment/exit/stdio/terminal,
    /// filesystem types/preopens): always linked but inert — empty environment, no
    /// arguments, captured stdio, no preopened directory unless `dir` is granted.
    Baseline,
    /// `processes`.
    Processes,
    /// `remediation`.
    Remediation,
    /// `http` (wasi:http outgoing requests).
    Http,
    /// `tcp` (wasi:sockets TCP, name lookup; `wasmalived:plugin/probe`).
    Tcp,
    /// `udp` (wasi:sockets UDP, to granted peers only).
    Udp,
}

impl Capability {
    /// The config/CLI grant that enables it.
    pub fn grant_name(self) -> &'static str {
        match self {
            Capability::Always | Capability::Baseline => "(always)",
            Capability::Processes => "processes",
            Capability::Remediation => "remediation",
            Capability::Http => "http",
            Capability::Tcp => "tcp",
            Capability::Udp => "udp",
        }
    }

    /// Every capability, in linking order.
    pub const ALL: [Capability; 7] = [
        Capability::Always,
        Capability::Baseline,
        Capability::Processes,
        Capability::Remediation,
        Capability::Http,
        Capability::Tcp,
        Capability::Udp,
    ];

    /// The linking policy: `remediation` (an empty command table refuses every id), wasi:http
    /// (an empty allowlist) and wasi:sockets TCP (off) deny every use unless granted;
    /// `processes` and UDP must be granted for a plugin importing them to load.
    pub fn linking(self) -> Linking {
        match self {
            Capability::Always | Capability::Baseline => Linking::Always,
            Capability::Remediation | Capability::Http | Capability::Tcp => {
                Linking::DenyAllUnlessGranted
            }
            Capability::Processes | Capability::Udp => Linking::OnlyWhenGranted,
        }
    }

    /// Whether it is linked into a check with `grants`.
    pub fn linked_with(self, grants: &Grants) -> bool {
        self.linking() != Linking::OnlyWhenGranted || self.granted_by(grants)
    }

    /// Whether `grants` enables it.
    pub fn granted_by(self, grants: &Grants) -> bool {
        match self {
            Capability::Always | Capability::Baseline => true,
            Capability::Processes => grants.processes.is_some(),
            Capability::Remediation => !grants.remediation.is_empty(),
            Capability::Http => !grants.http.is_empty(),
            Capability::Tcp => !grants.tcp.is_empty(),
            Capability::Udp => !grants.udp.is_empty(),
        }
    }
}

/// Map an import to the capability it needs; `Err` for an import no grant provides
/// (a foreign package, another major version of our package).
pub fn capability_of(import: &str) -> Result<Capability, String> {
    let Some((package, iface, version)) = split_name(import) else {
        return Err("is not an interface this host provides".into());
    };
    match package {
        PACKAGE => {
            if let Some(v) = version.and_then(Version::parse) {
                check_compatible(&v)?;
            }
            match iface {
                // `wake` is linked always; watching PIDs is refused unless `processes` is
                // granted, watching a path unless it lies in a granted directory, watching a
                // server unless the check may connect to it (caps/wake.rs).
                "log" | "scratch" | "types" | "wake" => Ok(Capability::Always),
                "processes" => Ok(Capability::Processes),
                // `probe` connects only where `wasi:sockets` TCP may (caps/probe.rs).
                "probe" => Ok(Capability::Tcp),
                "remediation" => Ok(Capability::Remediation),
                _ => Err(format!("`{PACKAGE}` has no interface `{iface}`")),
            }
        }
        "wasi:io" | "wasi:clocks" | "wasi:random" => Ok(Capability::Always),
        "wasi:cli" => Ok(Capability::Baseline),
        "wasi:filesystem" => Ok(Capability::Baseline),
        "wasi:http" => match iface {
            "outgoing-handler" | "types" => Ok(Capability::Http),
            _ => Err("only outgoing wasi:http requests are supported".into()),
        },
        "wasi:sockets" => match iface {
            "tcp" | "tcp-create-socket" | "network" | "instance-network" | "ip-name-lookup" => {
                Ok(Capability::Tcp)
            }
            "udp" | "udp-create-socket" => Ok(Capability::Udp),
            _ => Err(format!("`wasi:sockets` has no interface `{iface}`")),
        },
        _ => Err(format!("package `{package}` is not provided by this host")),
    }
}

/// Check every import against the grants; the error names the import and the missing grant.
/// An import passes when its capability is linked with these grants ([`Linking`]).
pub fn check_imports<'a>(
    imports: impl Iterator<Item = &'a str>,
    grants: &Grants,
) -> Result<(), (String, String)> {
    for import in imports {
        let cap = capability_of(import).map_err(|r| (import.to_string(), r))?;
        if !cap.linked_with(grants) {
            return Err((
                import.to_string(),
                format!("the check is not granted `{}`", cap.grant_name()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmalived_config::grants::ProcessGrant;

    #[test]
    fn versions_compatible_within_major_and_older_minor() {
        let v = |s| Version::parse(s).expect("version");
        assert!(v("1.0.0").runs_on(&HOST_VERSION));
        assert!(v("1.1.0").runs_on(&HOST_VERSION));
        assert!(v("1.1.7").runs_on(&HOST_VERSION));
        assert!(v("1.2.0").runs_on(&HOST_VERSION));
        assert!(v("1.3.0").runs_on(&HOST_VERSION));
        assert!(v("1.4.0").runs_on(&HOST_VERSION));
        assert!(v("1.5.0").runs_on(&HOST_VERSION));
        assert!(!v("1.6.0").runs_on(&HOST_VERSION));
        assert!(!v("2.0.0").runs_on(&HOST_VERSION));
        assert!(!v("0.1.0").runs_on(&Version::parse("0.1.0").expect("v")));
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
    }

    #[test]
    fn refusal_names_wanted_version() {
        let e = check_compatible(&Version::parse("2.0.0").expect("v")).expect_err("refuse");
        assert!(e.contains("wasmalived:plugin@2.0.0"), "{e}");
        assert!(e.contains("1.5.0"), "{e}");
    }

    #[test]
    fn export_version_found() {
        let ex = ["wasi:cli/run@0.2.0", "wasmalived:plugin/check@1.0.0"];
        assert_eq!(
            check_export_version(ex.into_iter()),
            Ok(Version::parse("1.0.0").expect("v"))
        );
        assert!(check_export_version(["foo:bar/check@1.0.0"].into_iter()).is_err());
    }

    #[test]
    fn imports_map_to_grants() {
        assert_eq!(
            capability_of("wasmalived:plugin/log@1.1.0"),
            Ok(Capability::Always)
        );
        assert_eq!(
            capability_of("wasmalived:plugin/scratch@1.1.0"),
            Ok(Capability::Always)
        );
        assert_eq!(
            capability_of("wasmalived:plugin/wake@1.2.0"),
            Ok(Capability::Always)
        );
        assert_eq!(
            capability_of("wasmalived:plugin/wake@1.3.0"),
            Ok(Capability::Always)
        );
        assert_eq!(
            capability_of("wasmalived:plugin/wake@1.4.0"),
            Ok(Capability::Always)
        );
        assert_eq!(
            capability_of("wasmalived:plugin/probe@1.5.0"),
            Ok(Capability::Tcp)
        );
        assert_eq!(
            capability_of("wasi:cli/environment@0.2.3"),
            Ok(Capability::Baseline)
        );
        assert_eq!(
            capability_of("wasi:filesystem/preopens@0.2.0"),
            Ok(Capability::Baseline)
        );
        assert_eq!(
            capability_of("wasi:http/outgoing-handler@0.2.0"),
            Ok(Capability::Http)
        );
        assert_eq!(capability_of("wasi:sockets/tcp@0.2.0"), Ok(Capability::Tcp));
        assert_eq!(capability_of("wasi:sockets/udp@0.2.0"), Ok(Capability::Udp));
        assert_eq!(
            capability_of("wasi:sockets/udp-create-socket@0.2.0"),
            Ok(Capability::Udp)
        );
        assert!(capability_of("wasi:sockets/raw@0.2.0").is_err());
        assert!(capability_of("wasmalived:plugin/log@2.0.0").is_err());
        assert!(capability_of("evil:x/y").is_err());
    }

    #[test]
    fn ungranted_import_named_in_refusal() {
        let imports = [
            "wasmalived:plugin/log@1.1.0",
            "wasmalived:plugin/processes@1.1.0",
        ];
        let (import, reason) =
            check_imports(imports.into_iter(), &Grants::default()).expect_err("refuse");
        assert_eq!(import, "wasmalived:plugin/processes@1.1.0");
        assert!(reason.contains("`processes`"), "{reason}");
        let granted = Grants {
            processes: Some(ProcessGrant { netns_only: false }),
            ..Grants::default()
        };
        assert!(check_imports(imports.into_iter(), &granted).is_ok());
    }

    #[test]
    fn a_udp_import_needs_the_udp_grant_to_load() {
        let imports = ["wasi:sockets/udp@0.2.0", "wasi:sockets/network@0.2.0"];
        let (import, reason) =
            check_imports(imports.into_iter(), &Grants::default()).expect_err("refuse");
        assert_eq!(import, "wasi:sockets/udp@0.2.0");
        assert!(reason.contains("`udp`"), "{reason}");
        let granted = Grants {
            udp: vec![wasmalived_config::grants::UdpGrant("192.0.2.53:53".into())],
            ..Grants::default()
        };
        assert!(check_imports(imports.into_iter(), &granted).is_ok());
    }
}

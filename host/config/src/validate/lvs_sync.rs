//! `global_defs { lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N]
//! [group ADDRESS] }`, read as keepalived 2.2 reads it: a second `lvs_sync_daemon` and bad
//! option values are ignored with a warning; a missing interface or instance is an error, as
//! is (in [`check_instance`]) an instance that no `vrrp_instance` defines.

use super::addresses::source_address;
use crate::compat::{read_unsigned, take_number, OnReject};
use crate::diag::Diags;
use crate::lvs::LvsSyncDaemon;
use crate::model::{Origin, VrrpInstance};
use crate::parser::Node;

/// Longest interface name IPVS's sync daemon takes (`IP_VS_IFNAME_MAXLEN` - 1).
const MAX_IFNAME: usize = 15;
/// keepalived's `maxlen` bound: a UDP payload inside one IPv4 datagram.
const MAX_MAXLEN: u64 = 65535 - 20 - 8;

/// Apply one `lvs_sync_daemon` line to `out`.
pub(crate) fn apply(node: &Node, out: &mut Option<LvsSyncDaemon>, d: &mut Diags) {
    super::values::no_block(node, d);
    if let Some(first) = out {
        d.warn(
            node.span(),
            format!(
                "lvs_sync_daemon has already been specified as {} {}; ignored, as keepalived does",
                first.interface, first.instance
            ),
        );
        return;
    }
    let [interface, instance, options @ ..] = node.args.as_slice() else {
        d.error(
            node.span(),
            "lvs_sync_daemon needs an interface and a vrrp_instance: lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDRESS]",
        );
        return;
    };
    if interface.text.chars().count() > MAX_IFNAME {
        d.error(
            &interface.span,
            format!(
                "lvs_sync_daemon interface name '{}' is longer than {MAX_IFNAME} characters",
                interface.text
            ),
        );
        return;
    }
    let mut sync = LvsSyncDaemon {
        interface: interface.text.clone(),
        instance: instance.text.clone(),
        instance_at: Origin(instance.span.clone()),
        sync_id: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        let name = option.text.as_str();
        if !matches!(name, "id" | "maxlen" | "port" | "ttl" | "group") {
            d.warn(
                &option.span,
                format!("unknown lvs_sync_daemon option '{name}'; ignored, as keepalived does"),
            );
            continue;
        }
        let Some(value) = rest.next() else {
            d.warn(
                &option.span,
                format!("lvs_sync_daemon {name} needs a value; ignored"),
            );
            break;
        };
        let what = format!("lvs_sync_daemon {name}");
        let number = |max: u64, on_reject, d: &mut Diags| {
            take_number(
                read_unsigned(&value.text, 0, max, false),
                value,
                &what,
                on_reject,
                d,
            )
        };
        match name {
            "id" => {
                sync.sync_id = number(255, OnReject::Use("the instance's VRID"), d)
                    .and_then(|v| u8::try_from(v).ok())
            }
            "maxlen" => {
                sync.maxlen =
                    number(MAX_MAXLEN, OnReject::Ignore, d).and_then(|v| u16::try_from(v).ok())
            }
            "port" => {
                sync.port = number(65535, OnReject::Ignore, d).and_then(|v| u16::try_from(v).ok())
            }
            "ttl" => sync.ttl = number(255, OnReject::Ignore, d).and_then(|v| u8::try_from(v).ok()),
            _ => match source_address(value, &what, d) {
                Some(addr) if addr.is_multicast() => sync.group = Some(addr),
                Some(addr) => d.warn(
                    &value.span,
                    format!("lvs_sync_daemon group {addr} is not a multicast address; ignored, as keepalived does"),
                ),
                None => {}
            },
        }
    }
    *out = Some(sync);
}

/// The instance `sync` follows must be defined: an error at the place it was named.
pub(crate) fn check_instance<P>(
    sync: Option<&LvsSyncDaemon>,
    instances: &[(VrrpInstance, P)],
    d: &mut Diags,
) {
    let Some(sync) = sync else { return };
    if !instances.iter().any(|(i, _)| i.name == sync.instance) {
        d.error(
            &sync.instance_at.0,
            format!(
                "lvs_sync_daemon follows vrrp_instance '{}', which is not defined",
                sync.instance
            ),
        );
    }
}

//! `vrrp_script NAME { … }`: keepalived's script form and our plugin form.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::values::{command, no_block, one_arg, seconds, size};
use super::{section_name, track::run_as, unknown, Places};
use crate::compat::{
    flag_args, one_value, read_int, read_unsigned, take_number, OnReject, Reading,
};
use crate::defaults as def;
use crate::diag::{Diags, Span};
use crate::grants::{
    DirGrant, Grants, HttpGrant, ProcessGrant, RemediationCommand, TcpGrant, UdpGrant,
    DEFAULT_REMEDIATION_TIMEOUT,
};
use crate::lexer::Word;
use crate::model::{FatalAction, GlobalDefs, Origin, PluginRef, RunAs, ScriptKind, VrrpScript};
use crate::parser::Node;

/// Keywords that only make sense for the plugin form.
const PLUGIN_ONLY: &[&str] = &[
    "param",
    "allow_processes",
    "remediation",
    "allow_http",
    "allow_tcp",
    "allow_udp",
    "allow_dir",
    "memory_limit",
    "on_fatal",
];
/// Longest remediation timeout accepted.
const MAX_REMEDIATION_TIMEOUT: Duration = Duration::from_secs(3600);

/// What the block said, before the script/plugin decision. LVS `PLUGIN_CHECK` blocks use
/// the plugin-form keywords through the same draft (`validate/lvs.rs`).
#[derive(Default)]
pub(super) struct Draft<'n> {
    pub(super) exec: Option<(Span, Vec<String>)>,
    pub(super) plugin: Option<(Span, PluginRef)>,
    /// `interval` / `timeout` words: read as keepalived does for scripts (whole seconds)
    /// and as decimals for plugins, once the kind is known.
    interval: Option<&'n Word>,
    timeout: Option<&'n Word>,
    weight: Option<(i32, bool)>,
    rise: Option<u32>,
    fall: Option<u32>,
    init_fail: bool,
    user: Option<RunAs>,
    pub(super) params: Vec<(String, String)>,
    pub(super) grants: Grants,
    pub(super) memory_limit: Option<u64>,
    on_fatal: FatalAction,
    plugin_only: Vec<Span>,
}

/// The keywords of the plugin form (`plugin`, `param`, grants, `memory_limit`).
pub(super) fn is_plugin_keyword(kw: &str) -> bool {
    kw == "plugin" || (PLUGIN_ONLY.contains(&kw) && kw != "on_fatal")
}

/// Builds one `vrrp_script`; `None` if it has errors.
pub(crate) fn build(
    node: &Node,
    global: &GlobalDefs,
    ordinal: usize,
    d: &mut Diags,
) -> Option<(VrrpScript, Places)> {
    let name = section_name(node, d)?;
    let body = node.block.as_ref()?;
    let mut draft = Draft::default();
    let errors_before = d.error_count();
    let base = node
        .span()
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for child in &body.nodes {
        if PLUGIN_ONLY.contains(&child.keyword.text.as_str()) {
            draft.plugin_only.push(child.span().clone());
        }
        apply(&mut draft, child, &base, d);
    }
    let kind = match (draft.exec, draft.plugin) {
        (Some(_), Some((at, _))) => {
            d.error(
                &at,
                format!("vrrp_script {name} has both script and plugin; use one"),
            );
            return None;
        }
        (None, None) => {
            // keepalived decides this when the block ends, and reports it on the '}' line.
            d.warn(
                body.end(),
                format!("vrrp_script {name} has no script \"…\" (nor plugin NAME); removed, as keepalived does"),
            );
            return None;
        }
        (Some((_, argv)), None) => {
            for at in &draft.plugin_only {
                d.error(at, format!("this keyword only applies to plugin checks, and vrrp_script {name} runs a script"));
            }
            ScriptKind::Exec { argv }
        }
        (None, Some((_, plugin))) => {
            let mut grants = draft.grants;
            grants.memory_limit = draft.memory_limit.unwrap_or(global.plugin_memory_limit);
            ScriptKind::Plugin {
                plugin,
                params: draft.params,
                grants: Box::new(grants),
                on_fatal: draft.on_fatal,
            }
        }
    };
    let plugin = matches!(kind, ScriptKind::Plugin { .. });
    let interval = draft
        .interval
        .and_then(|w| check_period(w, plugin, d))
        .unwrap_or(def::SCRIPT_INTERVAL);
    let timeout = draft
        .timeout
        .and_then(|w| check_period(w, plugin, d))
        .unwrap_or(match kind {
            ScriptKind::Plugin { .. } => global.plugin_timeout_default.unwrap_or(interval),
            ScriptKind::Exec { .. } => interval,
        });
    let (weight, weight_reverse) = draft.weight.unwrap_or((def::SCRIPT_WEIGHT, false));
    if d.error_count() > errors_before {
        return None;
    }
    let script = VrrpScript {
        name: name.to_owned(),
        interval,
        timeout,
        weight,
        weight_reverse,
        rise: draft.rise.unwrap_or(def::SCRIPT_RISE),
        fall: draft.fall.unwrap_or(def::SCRIPT_FALL),
        init_fail: draft.init_fail,
        user: draft.user,
        kind,
        origin: Origin(node.span().clone()),
    };
    Some((script, Places::new(ordinal, node.span().clone())))
}

pub(super) fn apply<'n>(s: &mut Draft<'n>, node: &'n Node, base: &Path, d: &mut Diags) {
    let kw = node.keyword.text.as_str();
    match kw {
        "script" if node.args.is_empty() => d.warn(
            node.span(),
            "script needs a command; ignored, as keepalived does",
        ),
        "script" => {
            no_block(node, d);
            if let Some(argv) = command(node, &node.args, d) {
                s.exec = Some((node.span().clone(), argv));
            }
        }
        "plugin" => {
            if let Some(p) = one_arg(node, d).and_then(|w| plugin_ref(w, base, d)) {
                s.plugin = Some((node.span().clone(), p));
            }
        }
        "interval" => s.interval = one_value(node, d).or(s.interval),
        "timeout" => s.timeout = one_value(node, d).or(s.timeout),
        "weight" => s.weight = script_weight(node, d).or(s.weight),
        "rise" | "fall" => {
            let Some(w) = one_value(node, d) else { return };
            let v = take_number(
                read_unsigned(&w.text, 1, u64::from(def::MAX_RISE_FALL), true),
                w,
                kw,
                OnReject::Use("1"),
                d,
            )
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1);
            if kw == "rise" {
                s.rise = Some(v);
            } else {
                s.fall = Some(v);
            }
        }
        "init_fail" => {
            flag_args(node, d);
            s.init_fail = true;
        }
        "user" => s.user = run_as(node, &node.args, d),
        "param" => {
            no_block(node, d);
            match node.args.as_slice() {
                [k, v] => s.params.push((k.text.clone(), v.text.clone())),
                _ => d.error(
                    node.span(),
                    "param takes KEY VALUE (quote a value that has spaces)",
                ),
            }
        }
        "allow_processes" => {
            no_block(node, d);
            match node.args.as_slice() {
                [] => s.grants.processes = Some(ProcessGrant { netns_only: false }),
                [w] if w.text == "netns" => {
                    s.grants.processes = Some(ProcessGrant { netns_only: true })
                }
                [w, ..] => d.error(
                    &w.span,
                    format!(
                        "allow_processes takes only 'netns'; unexpected '{}'",
                        w.text
                    ),
                ),
            }
        }
        "remediation" => {
            if let Some(r) = remediation(node, d) {
                if s.grants.remediation.iter().any(|x| x.id == r.id) {
                    d.error(
                        node.span(),
                        format!("remediation '{}' is declared twice", r.id),
                    );
                } else {
                    s.grants.remediation.push(r);
                }
            }
        }
        "allow_http" => each_arg(node, d, |w, d| {
            http_grant(w, d).map(|g| s.grants.http.push(g))
        }),
        "allow_tcp" => each_arg(node, d, |w, d| {
            socket_grant("allow_tcp", w, d).map(|g| s.grants.tcp.push(TcpGrant(g)))
        }),
        "allow_udp" => each_arg(node, d, |w, d| {
            socket_grant("allow_udp", w, d).map(|g| s.grants.udp.push(UdpGrant(g)))
        }),
        "allow_dir" => {
            if let Some(g) = dir_grant(node, d) {
                s.grants.dirs.push(g);
            }
        }
        "memory_limit" => {
            s.memory_limit = one_arg(node, d)
                .and_then(|w| {
                    size(
                        w,
                        "memory_limit",
                        def::MIN_MEMORY_LIMIT,
                        def::MAX_MEMORY_LIMIT,
                        d,
                    )
                })
                .or(s.memory_limit);
        }
        "on_fatal" => match one_arg(node, d).map(|w| (w, w.text.as_str())) {
            Some((_, "fault")) => s.on_fatal = FatalAction::Fault,
            Some((_, "stop_daemon")) => s.on_fatal = FatalAction::StopDaemon,
            Some((w, other)) => d.error(
                &w.span,
                format!("bad on_fatal '{other}': expected fault or stop_daemon"),
            ),
            None => {}
        },
        _ => unknown(node, "vrrp_script", d),
    }
}

/// `interval` / `timeout`: for a plugin, decimal seconds more than 0 (wasmalived's own
/// form); for a script, keepalived's whole seconds (a number followed by text is read as
/// that number, 0 becomes 1, anything else is ignored).
fn check_period(w: &Word, plugin: bool, d: &mut Diags) -> Option<Duration> {
    if plugin {
        let v = seconds(w, "interval/timeout", def::MAX_SCRIPT_INTERVAL, d)?;
        if v.is_zero() {
            d.error(&w.span, "interval/timeout must be more than 0");
            return None;
        }
        return Some(v);
    }
    let max = def::MAX_SCRIPT_INTERVAL.as_secs();
    let v = take_number(
        read_unsigned(&w.text, 0, max, true),
        w,
        "interval/timeout",
        OnReject::Ignore,
        d,
    )?;
    if v == 0 {
        d.warn(
            &w.span,
            "interval/timeout must be more than 0; using 1, as keepalived does",
        );
        return Some(Duration::from_secs(1));
    }
    Some(Duration::from_secs(v))
}

/// `weight N [reverse]` of a script. keepalived keeps even a weight it complains about;
/// beyond ±253 the effect on a priority 1..=254 is the same as ±253, which is used here.
fn script_weight(node: &Node, d: &mut Diags) -> Option<(i32, bool)> {
    let (value, rest) = match node.args.split_first() {
        Some(x) => x,
        None => {
            d.error(node.span(), "weight needs a value");
            return None;
        }
    };
    let max = i64::from(def::MAX_WEIGHT);
    let w = match read_int(&value.text, -max, max, true) {
        Reading::Exact(w) => w,
        Reading::Adjusted { value: w, why } => {
            d.warn(
                &value.span,
                format!(
                    "weight '{}': {why}; using {w}, as keepalived does",
                    value.text
                ),
            );
            w
        }
        Reading::Rejected { why } => {
            let kept = read_int(&value.text, i64::MIN, i64::MAX, true)
                .value()
                .unwrap_or(0);
            let used = kept.clamp(-max, max);
            d.warn(
                &value.span,
                format!("bad weight '{}' ({why}); using {used} (keepalived keeps {kept}: the same effect on a priority 1..=254)", value.text),
            );
            used
        }
    };
    let w = i32::try_from(w).unwrap_or(0);
    match rest {
        [] => Some((w, false)),
        [r, ..] if r.text == "reverse" => Some((w, true)),
        [r, ..] => {
            d.warn(
                &r.span,
                format!(
                    "unknown weight option '{}' (expected reverse); ignored, as keepalived does",
                    r.text
                ),
            );
            Some((w, false))
        }
    }
}

fn each_arg(node: &Node, d: &mut Diags, mut f: impl FnMut(&Word, &mut Diags) -> Option<()>) {
    no_block(node, d);
    if node.args.is_empty() {
        d.error(node.span(), format!("{} needs a value", node.keyword.text));
    }
    for w in &node.args {
        let _ = f(w, d);
    }
}

/// `plugin NAME` or `plugin PATH.wasm`.
fn plugin_ref(w: &Word, base: &Path, d: &mut Diags) -> Option<PluginRef> {
    let t = &w.text;
    if t.ends_with(".wasm") || t.contains('/') {
        let p = PathBuf::from(t);
        return Some(PluginRef::Path(if p.is_absolute() {
            p
        } else {
            base.join(p)
        }));
    }
    if !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !t.starts_with('.')
    {
        Some(PluginRef::Name(t.clone()))
    } else {
        d.error(&w.span, format!("bad plugin name '{t}': use letters, digits, '-', '_', '.', or a path ending in .wasm"));
        None
    }
}

/// `remediation ID "COMMAND ARGS" [timeout SECONDS] [user USER [GROUP]]`.
fn remediation(node: &Node, d: &mut Diags) -> Option<RemediationCommand> {
    const USAGE: &str =
        "remediation takes ID \"COMMAND ARGS\" [timeout SECONDS] [user USER [GROUP]]";
    no_block(node, d);
    let (id, cmd, mut rest) = match node.args.as_slice() {
        [id, cmd, rest @ ..] => (id, cmd, rest),
        _ => {
            d.error(node.span(), USAGE);
            return None;
        }
    };
    let argv = command(node, std::slice::from_ref(cmd), d)?;
    let mut timeout = DEFAULT_REMEDIATION_TIMEOUT;
    let mut user = None;
    while let Some((kw, after)) = rest.split_first() {
        match (kw.text.as_str(), after) {
            ("timeout", [v, more @ ..]) => {
                let t = seconds(v, "remediation timeout", MAX_REMEDIATION_TIMEOUT, d)?;
                if t.is_zero() {
                    d.error(&v.span, "remediation timeout must be more than 0");
                    return None;
                }
                timeout = t;
                rest = more;
            }
            ("user", [name, more @ ..]) => {
                // An optional group follows unless the next word is another option.
                let (group, more) = match more {
                    [g, more @ ..] if g.text != "timeout" && g.text != "user" => {
                        (Some(g.text.clone()), more)
                    }
                    _ => (None, more),
                };
                user = Some(RunAs {
                    user: name.text.clone(),
                    group,
                });
                rest = more;
            }
            _ => {
                d.error(
                    &kw.span,
                    format!("unexpected '{}' in remediation: {USAGE} (quote a command that has arguments)", kw.text),
                );
                return None;
            }
        }
    }
    Some(RemediationCommand {
        id: id.text.clone(),
        argv,
        timeout,
        user,
    })
}

/// `allow_http URL-PREFIX|HOST[:PORT]`.
fn http_grant(w: &Word, d: &mut Diags) -> Option<HttpGrant> {
    let t = &w.text;
    let rest = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .unwrap_or(t);
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        d.error(
            &w.span,
            format!(
                "bad allow_http '{t}': user information (user@host) is never allowed in a grant"
            ),
        );
        return None;
    }
    if authority.is_empty() || t.chars().any(char::is_whitespace) {
        d.error(&w.span, format!("bad allow_http '{t}': expected a URL prefix (http://host[:port]/path) or host[:port]"));
        return None;
    }
    Some(HttpGrant(t.clone()))
}

/// `allow_tcp IP:PORT` or `allow_udp IP:PORT` (`[v6]:PORT`; PORT may be `*`): the target.
fn socket_grant(keyword: &str, w: &Word, d: &mut Diags) -> Option<String> {
    let t = &w.text;
    let ok = t.rsplit_once(':').is_some_and(|(host, port)| {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .map_or_else(
                || host.parse::<std::net::Ipv4Addr>().is_ok(),
                |h| h.parse::<std::net::Ipv6Addr>().is_ok(),
            );
        host && (port == "*" || port.parse::<u16>().is_ok_and(|p| p > 0))
    });
    if ok {
        Some(t.clone())
    } else {
        d.error(
            &w.span,
            format!("bad {keyword} '{t}': expected IPv4:PORT or [IPv6]:PORT (PORT may be *)"),
        );
        None
    }
}

/// `allow_dir HOST-PATH [rw|ro] [as GUEST-PATH]`.
fn dir_grant(node: &Node, d: &mut Diags) -> Option<DirGrant> {
    no_block(node, d);
    let Some((path, mut rest)) = node.args.split_first() else {
        d.error(node.span(), "allow_dir takes PATH [rw] [as GUEST-PATH]");
        return None;
    };
    if !Path::new(&path.text).is_absolute() {
        d.error(
            &path.span,
            format!("allow_dir path '{}' must be absolute", path.text),
        );
        return None;
    }
    let mut writable = false;
    let mut guest = path.text.clone();
    while let Some((w, tail)) = rest.split_first() {
        match (w.text.as_str(), tail.first()) {
            ("rw", _) => writable = true,
            ("ro", _) => writable = false,
            ("as", Some(g)) if g.text.starts_with('/') => {
                guest = g.text.clone();
                rest = &tail[1..];
                continue;
            }
            ("as", _) => {
                d.error(&w.span, "allow_dir ... as needs an absolute guest path");
                return None;
            }
            (other, _) => {
                d.error(
                    &w.span,
                    format!("unexpected '{other}' in allow_dir: expected rw, ro or as GUEST-PATH"),
                );
                return None;
            }
        }
        rest = tail;
    }
    Some(DirGrant {
        host_path: PathBuf::from(&path.text),
        guest_path: guest,
        writable,
    })
}

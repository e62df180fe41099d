//! Effective VRRP values, read from keepalived's `-d` dump and from `wasmalived
//! --dump-config`, in one shape so they can be compared field by field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The largest weight magnitude that changes anything: keepalived keeps a script weight of
/// ±300, and on any priority 1..=254 it acts as ±253, which is what wasmalived uses.
const WEIGHT_LIMIT: i32 = 253;

/// The values compared for one `vrrp_instance`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub version: u8,
    pub state: String,
    pub interface: String,
    pub vrid: u16,
    pub priority: u16,
    /// Milliseconds.
    pub advert_ms: u32,
    pub nopreempt: bool,
    /// Milliseconds.
    pub preempt_delay_ms: u32,
    /// `none`, `PASS <password>` or `AH`.
    pub auth: String,
    pub strict: bool,
    pub accept: bool,
    /// `address/prefix dev IF`.
    pub vips: BTreeSet<String>,
    pub peers: BTreeSet<String>,
    pub sync_group: Option<String>,
    /// `name weight` (weights limited to ±253).
    pub track_scripts: BTreeSet<String>,
    /// `name weight`.
    pub track_interfaces: BTreeSet<String>,
}

/// The values compared for one `vrrp_script`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Seconds.
    pub interval: u32,
    pub weight: i32,
    pub rise: u32,
    pub fall: u32,
}

/// Everything compared for one configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    pub instances: BTreeMap<String, Instance>,
    pub scripts: BTreeMap<String, Script>,
    /// The VMAC interfaces (`use_vmac`): `(instance, vmac, base interface)`. The instance
    /// and its VIPs are compared on the base interface, the VMAC interfaces by name.
    pub vmacs: Vec<(String, String, String)>,
}

fn limit(w: i32) -> i32 {
    w.clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT)
}

/// `a` and `b` without the prefix length of a host address (`/32`, `/128`).
fn vip_key(addr: &str, dev: &str) -> String {
    let (ip, prefix) = addr.split_once('/').unwrap_or((addr, ""));
    let host = if ip.contains(':') { "128" } else { "32" };
    let prefix = if prefix.is_empty() { host } else { prefix };
    format!("{ip}/{prefix} dev {dev}")
}

/// Reads keepalived's `-d` dump (its log lines, timestamps removed), VRRP part only.
pub fn from_keepalived_dump(lines: &[String]) -> Effective {
    let mut eff = Effective::default();
    #[derive(PartialEq)]
    enum Section {
        Other,
        Topology,
        Scripts,
    }
    #[derive(PartialEq)]
    enum List {
        None,
        Vips,
        Peers,
        TrackScripts,
        TrackInterfaces,
    }
    let mut section = Section::Other;
    let mut list = List::None;
    let mut instance: Option<String> = None;
    let mut script: Option<String> = None;
    let mut vmac: Option<(String, String)> = None;
    for line in lines {
        if let Some(title) = line.trim().strip_prefix("------<") {
            finish_vmac(&mut eff, instance.as_deref(), vmac.take());
            section = match title.trim_end_matches(">------").trim() {
                "VRRP Topology" => Section::Topology,
                "VRRP Scripts" => Section::Scripts,
                _ => Section::Other,
            };
            list = List::None;
            continue;
        }
        let depth = line.len() - line.trim_start().len();
        let text = line.trim();
        match section {
            Section::Other => {}
            Section::Topology => {
                if let Some(name) = text.strip_prefix("VRRP Instance = ").filter(|_| depth == 1) {
                    finish_vmac(&mut eff, instance.as_deref(), vmac.take());
                    instance = Some(name.to_owned());
                    eff.instances.insert(
                        name.to_owned(),
                        Instance {
                            auth: "none".into(),
                            ..Instance::default()
                        },
                    );
                    list = List::None;
                    continue;
                }
                let Some(i) = instance.as_ref().and_then(|n| eff.instances.get_mut(n)) else {
                    continue;
                };
                if depth == 3 {
                    list = List::None;
                    let (key, value) = text.split_once(" = ").unwrap_or((text, ""));
                    match key {
                        "VRRP Version" => i.version = value.parse().unwrap_or(0),
                        "Sync group" => i.sync_group = Some(value.to_owned()),
                        "Wantstate" => i.state = value.to_owned(),
                        "Interface" => {
                            // `vrrp.1, vmac on eth0` for use_vmac.
                            let mut parts = value.split(", vmac on ");
                            let first = parts.next().unwrap_or(value);
                            match parts.next() {
                                Some(base) => {
                                    let base = base.split(',').next().unwrap_or(base);
                                    vmac = Some((first.to_owned(), base.to_owned()));
                                    i.interface = base.to_owned();
                                }
                                None => {
                                    i.interface =
                                        first.split(',').next().unwrap_or(first).to_owned()
                                }
                            }
                        }
                        "Virtual Router ID" => i.vrid = value.parse().unwrap_or(0),
                        "Priority" => i.priority = value.parse().unwrap_or(0),
                        "Advert interval" => {
                            let mut parts = value.split_whitespace();
                            let n: u32 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                            i.advert_ms = if parts.next() == Some("sec") {
                                n * 1000
                            } else {
                                n
                            };
                        }
                        "Accept" => i.accept = value == "enabled",
                        "Preempt" => i.nopreempt = value == "disabled",
                        "Preempt delay" => {
                            let secs: f64 = value
                                .split_whitespace()
                                .next()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0.0);
                            i.preempt_delay_ms = (secs * 1000.0).round() as u32;
                        }
                        "Authentication type" => {
                            i.auth = match value {
                                "SIMPLE_PASSWORD" => "PASS".into(),
                                "IPSEC_AH" => "AH".into(),
                                _ => "none".into(),
                            }
                        }
                        "Password" => i.auth = format!("PASS {value}"),
                        "Enforcing strict VRRP compliance" => i.strict = true,
                        _ if text.starts_with("Virtual IP (") => list = List::Vips,
                        "Unicast Peer :" => list = List::Peers,
                        "Tracked scripts :" => list = List::TrackScripts,
                        "Tracked interfaces :" => list = List::TrackInterfaces,
                        _ => {}
                    }
                } else if depth == 5 {
                    let words: Vec<&str> = text.split_whitespace().collect();
                    match list {
                        List::Vips => {
                            let dev = words
                                .iter()
                                .position(|w| *w == "dev")
                                .and_then(|p| words.get(p + 1))
                                .map_or("", |d| d.split('@').next().unwrap_or(d));
                            i.vips.insert(vip_key(words[0], dev));
                        }
                        List::Peers => {
                            i.peers.insert(words[0].to_owned());
                        }
                        List::TrackScripts | List::TrackInterfaces => {
                            let weight: i32 =
                                words.get(2).and_then(|w| w.parse().ok()).unwrap_or(0);
                            let entry = format!("{} {}", words[0], limit(weight));
                            if list == List::TrackScripts {
                                i.track_scripts.insert(entry);
                            } else {
                                i.track_interfaces.insert(entry);
                            }
                        }
                        List::None => {}
                    }
                }
            }
            Section::Scripts => {
                if let Some(name) = text.strip_prefix("VRRP Script = ").filter(|_| depth == 1) {
                    script = Some(name.to_owned());
                    eff.scripts.insert(name.to_owned(), Script::default());
                    continue;
                }
                let Some(s) = script.as_ref().and_then(|n| eff.scripts.get_mut(n)) else {
                    continue;
                };
                if depth != 3 {
                    continue;
                }
                let (key, value) = text.split_once(" = ").unwrap_or((text, ""));
                let number = value.split_whitespace().next().unwrap_or("");
                match key {
                    "Interval" => s.interval = number.parse().unwrap_or(0),
                    "Weight" => s.weight = limit(number.parse().unwrap_or(0)),
                    "Rise" => s.rise = number.parse().unwrap_or(0),
                    "Fall" => s.fall = number.parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
    }
    eff
}

/// Moves the VIPs of instance `name` from its VMAC interface to the base interface.
fn finish_vmac(eff: &mut Effective, name: Option<&str>, vmac: Option<(String, String)>) {
    let (Some(name), Some((vmac, base))) = (name, vmac) else {
        return;
    };
    if let Some(i) = eff.instances.get_mut(name) {
        let on_vmac = format!(" dev {vmac}");
        i.vips = i
            .vips
            .iter()
            .map(|v| match v.strip_suffix(&on_vmac) {
                Some(addr) => format!("{addr} dev {base}"),
                None => v.clone(),
            })
            .collect();
    }
    eff.vmacs.push((name.to_owned(), vmac, base));
}

/// Reads `wasmalived --dump-config`. Only the scripts some instance or group tracks are kept
/// (keepalived removes the others).
pub fn from_wasmalived_dump(text: &str) -> Effective {
    let mut eff = Effective::default();
    let mut instance: Option<String> = None;
    let mut script: Option<String> = None;
    let mut tracked: BTreeSet<String> = BTreeSet::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            instance = None;
            script = None;
            if let Some(name) = line.strip_prefix("vrrp_instance ") {
                instance = Some(name.to_owned());
                eff.instances.insert(name.to_owned(), Instance::default());
            } else if let Some(name) = line.strip_prefix("vrrp_script ") {
                script = Some(name.to_owned());
                eff.scripts.insert(name.to_owned(), Script::default());
            }
            continue;
        }
        let (key, value) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        if key == "track_script" {
            tracked.insert(value.split_whitespace().next().unwrap_or("").to_owned());
        }
        if let Some(i) = instance.as_ref().and_then(|n| eff.instances.get_mut(n)) {
            let secs_ms = |v: &str| (v.parse::<f64>().unwrap_or(0.0) * 1000.0).round() as u32;
            match key {
                "state" => i.state = value.to_owned(),
                "interface" => i.interface = value.to_owned(),
                "virtual_router_id" => i.vrid = value.parse().unwrap_or(0),
                "priority" => i.priority = value.parse().unwrap_or(0),
                "version" => i.version = value.parse().unwrap_or(0),
                "advert_int" => i.advert_ms = secs_ms(value),
                "nopreempt" => i.nopreempt = value == "on",
                "preempt_delay" => i.preempt_delay_ms = secs_ms(value),
                "authentication" => i.auth = value.to_owned(),
                "accept" => i.accept = value == "on",
                "use_vmac" => {
                    let base = i.interface.clone();
                    eff.vmacs
                        .push((instance.clone().unwrap_or_default(), value.to_owned(), base));
                }
                "strict_mode" => i.strict = value == "on",
                "virtual_ipaddress" => {
                    let words: Vec<&str> = value.split_whitespace().collect();
                    let dev = words.get(2).copied().unwrap_or("");
                    i.vips.insert(vip_key(words[0], dev));
                }
                "unicast_peer" => {
                    i.peers.insert(value.to_owned());
                }
                "sync_group" => i.sync_group = Some(value.to_owned()),
                "track_script" | "track_interface" => {
                    let words: Vec<&str> = value.split_whitespace().collect();
                    let weight: i32 = words.get(2).and_then(|w| w.parse().ok()).unwrap_or(0);
                    let entry = format!("{} {}", words[0], limit(weight));
                    if key == "track_script" {
                        i.track_scripts.insert(entry);
                    } else {
                        i.track_interfaces.insert(entry);
                    }
                }
                _ => {}
            }
        } else if let Some(s) = script.as_ref().and_then(|n| eff.scripts.get_mut(n)) {
            let number = value.split_whitespace().next().unwrap_or("");
            match key {
                "interval" => s.interval = number.parse::<f64>().map_or(0, |v| v as u32),
                "weight" => s.weight = limit(number.parse().unwrap_or(0)),
                "rise" => s.rise = number.parse().unwrap_or(0),
                "fall" => s.fall = number.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    eff.scripts.retain(|name, _| tracked.contains(name));
    eff
}

/// The outcome of comparing two [`Effective`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Values that differ, in words: `VI_1 priority: keepalived 100, wasmalived 150`.
    pub differences: Vec<String>,
    /// Differences that are known and documented, each with its reason.
    pub known: Vec<String>,
}

/// Compares keepalived's values with ours.
pub fn compare(keepalived: &Effective, ours: &Effective) -> Comparison {
    let mut known = Vec::new();
    let mut ours = ours.clone();
    for (name, k) in &keepalived.instances {
        if let Some(w) = ours.instances.get_mut(name) {
            if k.auth == "AH" && w.auth == "none" {
                known.push(format!(
                    "{name}: keepalived authenticates with IPsec AH; wasmalived does not support AH and sends no authentication (it warns)"
                ));
                w.auth = "AH".into();
            }
        }
    }
    Comparison {
        differences: differences(keepalived, &ours),
        known,
    }
}

/// One difference, in words: `VI_1 priority: keepalived 100, wasmalived 150`.
fn differences(keepalived: &Effective, ours: &Effective) -> Vec<String> {
    let mut out = Vec::new();
    let mut k_vmacs = keepalived.vmacs.clone();
    let mut w_vmacs = ours.vmacs.clone();
    k_vmacs.sort();
    w_vmacs.sort();
    if k_vmacs != w_vmacs {
        out.push(format!(
            "VMAC interfaces (instance, name, base): keepalived {k_vmacs:?}, wasmalived {w_vmacs:?}"
        ));
    }
    let names = |m: &BTreeMap<String, Instance>| m.keys().cloned().collect::<BTreeSet<_>>();
    for missing in names(&keepalived.instances).symmetric_difference(&names(&ours.instances)) {
        let side = if keepalived.instances.contains_key(missing) {
            "only keepalived"
        } else {
            "only wasmalived"
        };
        out.push(format!("vrrp_instance {missing}: {side} has it"));
    }
    for (name, k) in &keepalived.instances {
        let Some(w) = ours.instances.get(name) else {
            continue;
        };
        let mut field = |what: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name} {what}: keepalived {a}, wasmalived {b}"));
            }
        };
        field("version", k.version.to_string(), w.version.to_string());
        field("state", k.state.clone(), w.state.clone());
        field("interface", k.interface.clone(), w.interface.clone());
        field("virtual_router_id", k.vrid.to_string(), w.vrid.to_string());
        field("priority", k.priority.to_string(), w.priority.to_string());
        field(
            "advert_int (ms)",
            k.advert_ms.to_string(),
            w.advert_ms.to_string(),
        );
        field(
            "nopreempt",
            k.nopreempt.to_string(),
            w.nopreempt.to_string(),
        );
        field(
            "preempt_delay (ms)",
            k.preempt_delay_ms.to_string(),
            w.preempt_delay_ms.to_string(),
        );
        // keepalived prints no authentication line for VRRPv3 (which has none).
        field("authentication", k.auth.clone(), w.auth.clone());
        field("strict mode", k.strict.to_string(), w.strict.to_string());
        field("accept", k.accept.to_string(), w.accept.to_string());
        field("virtual_ipaddress", set(&k.vips), set(&w.vips));
        field("unicast_peer", set(&k.peers), set(&w.peers));
        field(
            "sync group",
            format!("{:?}", k.sync_group),
            format!("{:?}", w.sync_group),
        );
        field("track_script", set(&k.track_scripts), set(&w.track_scripts));
        field(
            "track_interface",
            set(&k.track_interfaces),
            set(&w.track_interfaces),
        );
    }
    for (name, k) in &keepalived.scripts {
        match ours.scripts.get(name) {
            None => out.push(format!("vrrp_script {name}: only keepalived runs it")),
            Some(w) if w != k => out.push(format!(
                "vrrp_script {name}: keepalived {k:?}, wasmalived {w:?}"
            )),
            Some(_) => {}
        }
    }
    for name in ours.scripts.keys() {
        if !keepalived.scripts.contains_key(name) {
            out.push(format!("vrrp_script {name}: only wasmalived runs it"));
        }
    }
    out
}

fn set(s: &BTreeSet<String>) -> String {
    let mut out = String::from("[");
    for (i, v) in s.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{v}");
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dumps_read_the_same_values() {
        let k: Vec<String> = " VRRP Instance = VI_1\n   VRRP Version = 2\n   Wantstate = MASTER\n   Interface = eth0\n   Virtual Router ID = 51\n   Priority = 150\n   Advert interval = 1 sec\n   Preempt = disabled\n   Authentication type = SIMPLE_PASSWORD\n   Password = 1111\n   Virtual IP (2):\n     192.0.2.16 dev eth0 scope global\n     192.0.2.17/24 dev eth0 scope global label eth0:1\n   Tracked scripts :\n     chk weight 300\n------< VRRP Scripts >------\n VRRP Script = chk\n   Interval = 2 sec\n   Weight = 300\n   Rise = 1\n   Fall = 2\n"
            .lines()
            .map(str::to_owned)
            .collect();
        let mut k = k;
        k.insert(0, "------< VRRP Topology >------".into());
        let w = "vrrp_script chk\n    interval 2\n    weight 253\n    rise 1\n    fall 2\nvrrp_instance VI_1\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    version 2\n    advert_int 1\n    nopreempt on\n    preempt_delay 0\n    authentication PASS 1111\n    accept off\n    strict_mode off\n    virtual_ipaddress 192.0.2.16/32 dev eth0 scope global\n    virtual_ipaddress 192.0.2.17/24 dev eth0 scope global label eth0:1\n    track_script chk weight 253\n";
        let (k, w) = (from_keepalived_dump(&k), from_wasmalived_dump(w));
        assert_eq!(compare(&k, &w), Comparison::default());
        let mut w2 = w.clone();
        w2.instances.get_mut("VI_1").expect("VI_1").priority = 100;
        assert_eq!(
            compare(&k, &w2).differences,
            ["VI_1 priority: keepalived 150, wasmalived 100"]
        );
    }
}

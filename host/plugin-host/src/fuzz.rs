//! The body of the `plugin_verdict` fuzz target, as a plain function: libFuzzer runs it
//! from `fuzz/` and this crate's tests replay the corpora in `fuzz/corpus/plugin_verdict`
//! and `fuzz/regressions/plugin_verdict` through it.
//!
//! It feeds the host-side functions that take plugin-supplied data, without a wasm
//! instance in between (the component model only guarantees well-typed values, so any
//! value of the WIT types can arrive):
//! - the verdict record a check returns ([`run::accept_verdict`]): status, reason, message,
//!   measurements;
//! - a log line (`caps::log::sanitize`);
//! - the component's export and import names at load (the contract version, the
//!   capability each import needs against the check's grants);
//! - a request URI against the check's `allow_http` grants (`caps::http::allowed`);
//! - a sequence of `scratch` set/remove calls against the per-check quota.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};

use crate::bindings::wasmalived::plugin::types::{Measurement, Status, Verdict as WitVerdict};
use crate::caps::http::{allowed, parse_target};
use crate::caps::log::{sanitize, MAX_LINE_BYTES};
use crate::caps::scratch::{ScratchStore, QUOTA_BYTES};
use crate::contract::{capability_of, check_export_version, check_imports};
use crate::run::{accept_verdict, Verdict, MAX_MEASUREMENTS, MAX_MESSAGE};
use wasmalived_config::grants::{Grants, HttpGrant, ProcessGrant};

/// What a plugin (or its component) can hand the host.
#[derive(Debug, Arbitrary)]
struct PluginData {
    status: u8,
    reason: String,
    message: Option<String>,
    measurements: Vec<(String, f64)>,
    log_line: String,
    exports: Vec<String>,
    imports: Vec<String>,
    grant_processes: bool,
    http_grants: Vec<String>,
    uri: String,
    scratch: Vec<ScratchCall>,
}

#[derive(Debug, Arbitrary)]
enum ScratchCall {
    Set(String, Vec<u8>),
    Remove(String),
}

/// Text the daemon shows for a plugin: no control character (no forged line), bounded,
/// and unchanged when it was already clean and short.
fn check_clean(original: &str, shown: &str, limit: usize) {
    assert!(
        !shown.chars().any(char::is_control),
        "control character passed through: {shown:?}"
    );
    assert!(
        shown.len() <= limit + '…'.len_utf8(),
        "{} bytes shown, limit {limit}",
        shown.len()
    );
    if original.len() <= limit && !original.chars().any(char::is_control) {
        assert_eq!(shown, original, "clean text altered");
    }
}

fn check_verdict(data: &PluginData) {
    let status = match data.status % 3 {
        0 => Status::Ok,
        1 => Status::Fail(data.reason.clone()),
        _ => Status::Fatal(data.reason.clone()),
    };
    let accepted = accept_verdict(WitVerdict {
        status,
        message: data.message.clone(),
        measurements: data
            .measurements
            .iter()
            .map(|(name, value)| Measurement {
                name: name.clone(),
                value: *value,
            })
            .collect(),
    });
    match (&accepted.verdict, data.status % 3) {
        (Verdict::Ok, 0) => {}
        (Verdict::Fail(r), 1) | (Verdict::Fatal(r), 2) => check_clean(&data.reason, r, MAX_MESSAGE),
        (v, s) => panic!("status {s} became {v:?}"),
    }
    match (&data.message, &accepted.message) {
        (Some(m), Some(shown)) => check_clean(m, shown, MAX_MESSAGE),
        (None, None) => {}
        (m, shown) => panic!("message {m:?} became {shown:?}"),
    }
    let finite: Vec<&(String, f64)> = data
        .measurements
        .iter()
        .filter(|(_, v)| v.is_finite())
        .collect();
    assert_eq!(
        accepted.measurements.len(),
        finite.len().min(MAX_MEASUREMENTS),
        "measurements kept"
    );
    for ((name, value), (original, expected)) in accepted.measurements.iter().zip(finite) {
        assert_eq!(
            value.to_bits(),
            expected.to_bits(),
            "measurement value changed"
        );
        check_clean(original, name, MAX_MESSAGE);
    }
}

fn check_contract(data: &PluginData) {
    if let Ok(version) = check_export_version(data.exports.iter().map(String::as_str)) {
        assert!(
            data.exports
                .iter()
                .any(|e| e.contains(&version.to_string())),
            "version {version} not in any export"
        );
    }
    let grants = Grants {
        processes: data
            .grant_processes
            .then_some(ProcessGrant { netns_only: false }),
        ..Grants::default()
    };
    match check_imports(data.imports.iter().map(String::as_str), &grants) {
        Ok(()) => {
            for import in &data.imports {
                let cap = capability_of(import).expect("accepted import has a capability");
                assert!(cap.linked_with(&grants), "{import} accepted but not linked");
            }
        }
        Err((import, _)) => assert!(data.imports.contains(&import), "refusal names {import}"),
    }
}

fn check_http(data: &PluginData) {
    let grants: Vec<_> = data
        .http_grants
        .iter()
        .filter_map(|g| parse_target(&HttpGrant(g.clone())).ok())
        .collect();
    let Ok(uri) = data.uri.parse::<http::Uri>() else {
        return;
    };
    if allowed(&grants, &uri) {
        assert!(!grants.is_empty(), "{uri} allowed without a grant");
        let url = url::Url::parse(&uri.to_string()).expect("an allowed URI is a URL");
        assert!(
            matches!(url.scheme(), "http" | "https"),
            "{uri}: scheme allowed"
        );
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{uri}: user information allowed"
        );
    }
}

fn check_scratch(data: &PluginData) {
    let mut store = ScratchStore::default();
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for call in &data.scratch {
        match call {
            ScratchCall::Set(key, value) => {
                if store.set(key.clone(), value.clone()).is_ok() {
                    model.insert(key.clone(), value.clone());
                }
            }
            ScratchCall::Remove(key) => {
                store.remove(key);
                model.remove(key);
            }
        }
        let used: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(store.used(), used, "scratch accounting");
        assert!(store.used() <= QUOTA_BYTES, "scratch over quota");
    }
    for (key, value) in &model {
        assert_eq!(
            store.get(key).as_ref(),
            Some(value),
            "scratch value of {key:?}"
        );
    }
}

/// The `plugin_verdict` fuzz target (see the [module docs](self)).
pub fn plugin_verdict(data: &[u8]) {
    let Ok(input) = PluginData::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    check_verdict(&input);
    check_clean(&input.log_line, &sanitize(&input.log_line), MAX_LINE_BYTES);
    check_contract(&input);
    check_http(&input);
    check_scratch(&input);
}

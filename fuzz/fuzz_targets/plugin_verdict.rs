//! `plugin_verdict`: see `wasmalived_plugin_host::fuzz::plugin_verdict`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmalived_plugin_host::fuzz::plugin_verdict(data));

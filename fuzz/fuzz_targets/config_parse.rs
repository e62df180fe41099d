//! `config_parse`: see `wasmalived_config::fuzz::config_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmalived_config::fuzz::config_parse(data));

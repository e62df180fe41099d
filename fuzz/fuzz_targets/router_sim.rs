//! `router_sim`: see `wasmalived_proto::fuzz::router_sim`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmalived_proto::fuzz::router_sim(data));

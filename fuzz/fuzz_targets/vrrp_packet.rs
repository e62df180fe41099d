//! `vrrp_packet`: see `wasmalived_proto::fuzz::vrrp_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmalived_proto::fuzz::vrrp_packet(data));

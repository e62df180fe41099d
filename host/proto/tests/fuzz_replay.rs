//! The fuzz corpora of the protocol crate's targets, replayed on stable (see
//! `wasmalived_proto::fuzz`): every kept input, and every input that once crashed.

use wasmalived_testkit::replay_fuzz_corpus;

#[test]
fn vrrp_packet_corpus_and_regressions_replay_cleanly() {
    replay_fuzz_corpus("vrrp_packet", wasmalived_proto::fuzz::vrrp_packet);
}

#[test]
fn router_sim_corpus_and_regressions_replay_cleanly() {
    replay_fuzz_corpus("router_sim", wasmalived_proto::fuzz::router_sim);
}

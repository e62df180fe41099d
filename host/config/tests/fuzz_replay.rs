//! The `config_parse` fuzz corpus replayed on stable (see `wasmalived_config::fuzz`): every
//! kept input, and every input that once crashed.

#[test]
fn config_parse_corpus_and_regressions_replay_cleanly() {
    wasmalived_testkit::replay_fuzz_corpus("config_parse", wasmalived_config::fuzz::config_parse);
}

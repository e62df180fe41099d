//! The `plugin_verdict` fuzz corpus replayed on stable (see `wasmalived_plugin_host::fuzz`):
//! every kept input, and every input that once crashed.

#[test]
fn plugin_verdict_corpus_and_regressions_replay_cleanly() {
    wasmalived_testkit::replay_fuzz_corpus(
        "plugin_verdict",
        wasmalived_plugin_host::fuzz::plugin_verdict,
    );
}

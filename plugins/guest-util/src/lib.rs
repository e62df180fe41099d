//! Helpers shared by the stock guest plugins (`plugins/http`, `plugins/tcp`,
//! `plugins/quorum`), built into each plugin's component for wasm32-wasip2.
//!
//! - [`url`]: just enough URL parsing for a health-check target.
//! - [`tcp`]: a TCP connect over `wasi:sockets`, started now and finished later, or
//!   blocking with a timeout.
//! - [`param`]: a check parameter by key.

pub mod tcp;
pub mod url;

/// The value of parameter `key`, trimmed; when a key is given several times the last one
/// wins (as a later line in a config overrides an earlier one).
pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn last_occurrence_wins_and_values_are_trimmed() {
        let params = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), " 2 ".to_string()),
            ("a".to_string(), "3".to_string()),
        ];
        assert_eq!(param(&params, "a"), Some("3"));
        assert_eq!(param(&params, "b"), Some("2"));
        assert_eq!(param(&params, "c"), None);
    }
}

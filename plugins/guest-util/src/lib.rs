//! Helpers shared by the stock guest plugins (`plugins/http`, `plugins/tcp`,
//! `plugins/quorum`), built into each plugin's component for wasm32-wasip2.
//!
//! - [`url`]: just enough URL parsing for a health-check target.
//! - [`tcp`]: a TCP connect over `wasi:sockets`, started now and finished later, or
//!   blocking with a timeout.

pub mod tcp;
pub mod url;

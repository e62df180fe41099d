//! Host capabilities, one module each. `log` and `scratch` are always linked; the others are
//! linked into a check's `Linker` only when its config grants them (see `linker.rs`), and each
//! enforces its allowlist again at call time.
//!
//! | module        | import                              | grant        |
//! |---------------|-------------------------------------|--------------|
//! | `log`         | `wasmalived:plugin/log`             | always       |
//! | `scratch`     | `wasmalived:plugin/scratch`         | always       |
//! | `processes`   | `wasmalived:plugin/processes`       | `processes`  |
//! | `remediation` | `wasmalived:plugin/remediation`     | `remediation`|
//! | `http`        | `wasi:http/outgoing-handler, types` | `http`       |
//! | `sockets`     | `wasi:sockets/tcp…` (no UDP)        | `tcp`        |
//! | `wasi`        | `wasi:cli` (inert), clocks, random, io, filesystem (preopens = `dir`) | always |

pub mod http;
pub mod log;
pub mod processes;
pub mod remediation;
pub mod scratch;
pub mod sockets;
pub mod stdio;
pub mod wasi;

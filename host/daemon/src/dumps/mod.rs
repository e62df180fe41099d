//! keepalived's dump files, written on its signals (`vrrp_daemon.c`): SIGUSR1 →
//! `keepalived.data`, SIGUSR2 → `keepalived.stats`, `STATS_CLEAR` (SIGRTMAX−1) →
//! `keepalived.stats` then the stats cleared, `JSON` (SIGRTMIN+2) → `keepalived.json`.
//! `wasmalived --signum=NAME` prints the numbers ([`signals`]).
//!
//! The files go to keepalived's directory — `$TMPDIR` when it is an absolute path, else
//! `/tmp` — or `--dump-dir`. Everything in them comes from the status board and the
//! configuration in force; they are rendered in the signal handler (a copy, cheap) and
//! written on the blocking pool, never on the router's task, through
//! [`crate::safe_file::write_private`] (no symlink followed, exclusive create, mode 0600,
//! atomic rename: the CVE-2018-19044 lesson).
//!
//! `keepalived.json` holds the status document (`wasmalived status --json`'s), not
//! keepalived's JSON shape: one document for every consumer, with fields keepalived's has
//! no equivalent for (checks, plugins, split brain, LVS pools).

pub mod data;
pub mod signals;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::{error, info};
use wasmalived_config::Config;

use crate::control::Status;
use crate::safe_file;

/// The data dump's file name (keepalived's).
pub const DATA_FILE: &str = "keepalived.data";
/// The statistics file's name (keepalived's).
pub const STATS_FILE: &str = "keepalived.stats";
/// The JSON dump's file name (keepalived's).
pub const JSON_FILE: &str = "keepalived.json";

/// keepalived's dump directory: `$TMPDIR` if it is an absolute path, else `/tmp`
/// (`lib/utils.c`, `set_tmp_dir`).
pub fn default_dir() -> PathBuf {
    match std::env::var_os("TMPDIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => PathBuf::from("/tmp"),
    }
}

/// A dump a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// `keepalived.data`.
    Data,
    /// `keepalived.stats`.
    Stats,
    /// `keepalived.stats`, then the stats counted from zero again.
    StatsClear,
    /// `keepalived.json`.
    Json,
}

impl Dump {
    /// The file it writes.
    pub fn file_name(self) -> &'static str {
        match self {
            Dump::Data => DATA_FILE,
            Dump::Stats | Dump::StatsClear => STATS_FILE,
            Dump::Json => JSON_FILE,
        }
    }
}

/// Writes the dumps; keeps the stats baseline between them.
#[derive(Debug)]
pub struct Dumper {
    dir: PathBuf,
    baseline: stats::StatsBaseline,
}

impl Dumper {
    /// Dumps into `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Dumper {
            dir,
            baseline: stats::StatsBaseline::default(),
        }
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Render `dump` from `status` (and, for the data dump, `config`) and write it on the
    /// blocking pool; the outcome is logged. The stats baseline moves at once, so a
    /// `STATS` right after a `STATS_CLEAR` counts from the clear. Nothing waits for the
    /// write.
    pub fn write(&mut self, dump: Dump, status: Status, config: Option<&Config>) {
        let path = self.dir.join(dump.file_name());
        let render: Box<dyn FnOnce() -> Result<String, String> + Send> = match dump {
            Dump::Data => {
                let config = config.cloned();
                Box::new(move || {
                    let config = config.map(|c| c.dump().to_string());
                    Ok(data::render(&status, config.as_deref(), SystemTime::now()))
                })
            }
            Dump::Stats | Dump::StatsClear => {
                let shown = self.baseline.since_clear(&status.instances);
                if dump == Dump::StatsClear {
                    self.baseline.clear(&status.instances);
                }
                Box::new(move || Ok(stats::render(&shown)))
            }
            Dump::Json => Box::new(move || {
                serde_json::to_string_pretty(&status)
                    .map(|mut text| {
                        text.push('\n');
                        text
                    })
                    .map_err(|e| format!("status document: {e}"))
            }),
        };
        // Detached: the outcome is logged.
        drop(tokio::task::spawn_blocking(move || {
            let written = render().and_then(|text| {
                safe_file::write_private(&path, text.as_bytes()).map_err(|e| e.to_string())
            });
            match written {
                Ok(()) => {
                    info!(file = %path.display(), cleared = dump == Dump::StatsClear, "{dump:?} dump written")
                }
                Err(err) => error!("{dump:?} dump not written: {err}"),
            }
        }));
    }
}

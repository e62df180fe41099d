//! The operator's maintenance set (`wasmalived maintenance on|off NAME`), kept in
//! `<state-dir>/maintenance`, one instance name per line, so a restart keeps it: an operator
//! who drained a node expects it to stay drained until they say otherwise, also across a
//! crash, a watchdog restart or an upgrade. The router applies it
//! ([`wasmalived_proto::router::Router::set_maintenance`]); this file only remembers it.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::safe_file::{self, SafeFileError};

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "maintenance";

/// Longest file read back (a name per line; anything longer is not ours).
const MAX_FILE: u64 = 64 * 1024;

/// The instances in maintenance, as persisted.
#[derive(Debug)]
pub struct MaintenanceStore {
    path: PathBuf,
    names: BTreeSet<String>,
}

impl MaintenanceStore {
    /// Read the set from `state_dir` (none recorded: empty). A symlink is refused.
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(FILE_NAME);
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        let mut text = String::new();
        match opened {
            Ok(file) => {
                file.take(MAX_FILE)
                    .read_to_string(&mut text)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("opening {}", path.display())),
        }
        let names = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(MaintenanceStore { path, names })
    }

    /// The instances in maintenance.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Record `name` in maintenance (`on`) or not, and persist the set if it changed. On
    /// error the set is as it was.
    pub fn set(&mut self, name: &str, on: bool) -> Result<(), SafeFileError> {
        let mut next = self.names.clone();
        let changed = if on {
            next.insert(name.to_owned())
        } else {
            next.remove(name)
        };
        if !changed {
            return Ok(());
        }
        let text: String = next.iter().map(|n| format!("{n}\n")).collect();
        safe_file::write_private(&self.path, text.as_bytes())?;
        self.names = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_survives_a_reload_of_the_file() {
        let dir = std::env::temp_dir().join(format!("wa-maint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let mut store = MaintenanceStore::load(&dir).unwrap();
        assert_eq!(store.names().count(), 0);
        store.set("VI_1", true).unwrap();
        store.set("VI_2", true).unwrap();
        store.set("VI_1", false).unwrap();
        let again = MaintenanceStore::load(&dir).unwrap();
        assert_eq!(again.names().collect::<Vec<_>>(), vec!["VI_2"]);
        assert_eq!(
            std::fs::read_to_string(dir.join(FILE_NAME)).unwrap(),
            "VI_2\n"
        );
        // A planted link is neither read nor written through.
        std::fs::remove_file(dir.join(FILE_NAME)).unwrap();
        std::fs::write(dir.join("victim"), "VI_3\n").unwrap();
        std::os::unix::fs::symlink(dir.join("victim"), dir.join(FILE_NAME)).unwrap();
        assert!(MaintenanceStore::load(&dir).is_err());
        assert!(store.set("VI_4", true).is_err());
        assert_eq!(store.names().collect::<Vec<_>>(), vec!["VI_2"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("victim")).unwrap(),
            "VI_3\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

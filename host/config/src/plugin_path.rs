//! The plugin search path: where `plugin NAME` finds `NAME.wasm`.
//!
//! By default the administrator's directory comes first and the packaged stock plugins
//! second ([`crate::defaults::PLUGIN_DIRS`]): a `NAME.wasm` dropped into
//! `/etc/wasmalived/plugins` shadows the packaged one, and removing it falls back to the
//! packaged one. `plugin_dir DIR...` in `global_defs` replaces the whole path (one directory
//! keeps the meaning it always had: only that directory).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::defaults as def;

/// The ordered, non-empty list of directories `plugin NAME` looks in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginSearchPath {
    dirs: Vec<PathBuf>,
}

impl PluginSearchPath {
    /// A search path of `dirs`, in order; `None` if there is none.
    pub fn new(dirs: Vec<PathBuf>) -> Option<Self> {
        (!dirs.is_empty()).then_some(Self { dirs })
    }

    /// The directories, first looked in first.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The file name a plugin called `name` has in any directory of the path.
    pub fn file_name(name: &str) -> String {
        format!("{name}.wasm")
    }

    /// `NAME.wasm` in the first directory that holds it (a file, or a link to one).
    pub fn find(&self, name: &str) -> Result<PathBuf, PluginNotFound> {
        self.find_with(name, |p| p.is_file())
    }

    /// [`find`](Self::find) with the existence test given (tests, and callers that already
    /// know which files exist).
    pub fn find_with(
        &self,
        name: &str,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<PathBuf, PluginNotFound> {
        let file = Self::file_name(name);
        self.dirs
            .iter()
            .map(|d| d.join(&file))
            .find(|p| exists(p))
            .ok_or_else(|| PluginNotFound {
                name: name.to_owned(),
                searched: self.clone(),
            })
    }
}

impl Default for PluginSearchPath {
    /// The administrator's directory, then the packaged one.
    fn default() -> Self {
        Self {
            dirs: def::PLUGIN_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

impl fmt::Display for PluginSearchPath {
    /// The directories separated by spaces, as `plugin_dir` takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.dirs.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", d.display())?;
        }
        Ok(())
    }
}

/// No directory of the search path holds the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{name}`: no {name}.wasm in the plugin search path ({})", searched.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))]
pub struct PluginNotFound {
    /// The plugin name.
    pub name: String,
    /// Where it was looked for.
    pub searched: PluginSearchPath,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(dirs: &[&str]) -> PluginSearchPath {
        PluginSearchPath::new(dirs.iter().map(PathBuf::from).collect()).expect("non-empty")
    }

    #[test]
    fn the_default_is_the_admins_directory_then_the_packaged_one() {
        assert_eq!(
            PluginSearchPath::default(),
            path(&["/etc/wasmalived/plugins", "/usr/lib/wasmalived/plugins"])
        );
    }

    #[test]
    fn the_first_directory_holding_the_file_wins() {
        let p = path(&["/admin", "/packaged"]);
        let both = |f: &Path| f.starts_with("/admin") || f.starts_with("/packaged");
        assert_eq!(
            p.find_with("http", both),
            Ok(PathBuf::from("/admin/http.wasm"))
        );
        let packaged_only = |f: &Path| f == Path::new("/packaged/http.wasm");
        assert_eq!(
            p.find_with("http", packaged_only),
            Ok(PathBuf::from("/packaged/http.wasm"))
        );
    }

    #[test]
    fn a_missing_plugin_names_every_directory_searched() {
        let err = path(&["/admin", "/packaged"])
            .find_with("tcp", |_| false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin `tcp`: no tcp.wasm in the plugin search path (/admin, /packaged)"
        );
    }

    #[test]
    fn an_empty_path_is_refused() {
        assert_eq!(PluginSearchPath::new(Vec::new()), None);
    }

    #[test]
    fn find_looks_at_real_files_and_ignores_directories_named_like_plugins() {
        let root = std::env::temp_dir().join(format!(
            "wasmalived-plugin-path-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let (admin, packaged) = (root.join("admin"), root.join("packaged"));
        std::fs::create_dir_all(admin.join("quorum.wasm")).expect("mkdir");
        std::fs::create_dir_all(&packaged).expect("mkdir");
        std::fs::write(packaged.join("quorum.wasm"), b"").expect("write");
        let p = PluginSearchPath::new(vec![admin, packaged.clone()]).expect("non-empty");
        let found = p.find("quorum");
        std::fs::remove_dir_all(&root).expect("cleanup");
        assert_eq!(found, Ok(packaged.join("quorum.wasm")));
    }
}

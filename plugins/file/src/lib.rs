//! `file`: healthy while a file is absent (or present) — the operator's maintenance flag
//! (`touch /etc/wasmalived/maint` to drain a node; keepalived users write it as a script
//! `[ ! -f /etc/keepalived/maint ]`), or a file another program keeps while it is ready.
//!
//! # Parameters
//! | key            | default  | meaning                                                     |
//! |----------------|----------|-------------------------------------------------------------|
//! | `path`         | —        | the file, as the plugin sees it (inside a granted directory) |
//! | `healthy_when` | `absent` | `absent` or `present`: which state is healthy                |
//! | `verdict`      | `fail`   | `fail` or `fatal`: what the other state returns              |
//! | `wake`         | `true`   | run again as soon as the file changes (`false`: interval only) |
//!
//! # Event-driven
//! Every run asks the host to run it again the moment the file is created, written, renamed
//! or removed (`wake.on-change`, contract 1.3.0): the flag takes effect when it is touched,
//! not at the next interval. inotify sees changes made through this host's kernel; a flag on
//! NFS written by another client is seen at the next interval.
//!
//! # Grants
//! `allow_dir DIR` (read-only is enough; CLI `--dir DIR`) covering `path`'s directory.
//!
//! # Verdicts
//! - `ok` — the file is in the healthy state (measurement `present` 0 or 1).
//! - `verdict` (`fail` by default, or `fatal`) — it is not; the reason names the path.
//! - `fail` — a bad parameter, the file's directory cannot be seen (not granted, missing), or
//!   the host refused to watch it; the reason says which.
use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Verdict};

/// Defaults, in one place.
const DEFAULT_HEALTHY_WHEN_PRESENT: bool = false;
const DEFAULT_FATAL: bool = false;
const DEFAULT_WAKE: bool = true;

/// The check.
pub struct File;

impl Check for File {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        match Config::from_params(params) {
            Ok(config) => run(host, &config),
            Err(e) => Verdict::fail(e),
        }
    }
}

export_check!(File);

/// The check's parameters, parsed.
struct Config {
    path: String,
    healthy_when_present: bool,
    fatal: bool,
    wake: bool,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, ParamError> {
        let path: String = params.value("path").required()?;
        if !path.starts_with('/') || path.ends_with('/') {
            return Err(ParamError::invalid(
                "path",
                &path,
                Some("an absolute file path, as the plugin sees it"),
            ));
        }
        let healthy_when_present = match params.get("healthy_when") {
            None => DEFAULT_HEALTHY_WHEN_PRESENT,
            Some("absent") => false,
            Some("present") => true,
            Some(other) => {
                return Err(ParamError::invalid(
                    "healthy_when",
                    other,
                    Some("absent or present"),
                ))
            }
        };
        let fatal = match params.get("verdict") {
            None => DEFAULT_FATAL,
            Some("fail") => false,
            Some("fatal") => true,
            Some(other) => {
                return Err(ParamError::invalid("verdict", other, Some("fail or fatal")))
            }
        };
        let wake = params.value("wake").default(DEFAULT_WAKE)?;
        Ok(Config {
            path,
            healthy_when_present,
            fatal,
            wake,
        })
    }
}

fn run(host: &impl Host, c: &Config) -> Verdict {
    // Watch first: a change after this look wakes the next run.
    if c.wake {
        if let Err(e) = host.wake_on_change(&c.path) {
            return Verdict::fail(format!("cannot watch `{}`: {e}", c.path));
        }
    }
    // A directory we cannot see (not granted) would make every file look absent.
    let dir = c
        .path
        .rsplit_once('/')
        .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
    if let Err(e) = std::fs::metadata(dir) {
        return Verdict::fail(format!(
            "cannot see `{dir}` (is it granted? `allow_dir`): {e}"
        ));
    }
    let present = match std::fs::symlink_metadata(&c.path) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Verdict::fail(format!("cannot read `{}`: {e}", c.path)),
    };
    let state = if present { "present" } else { "absent" };
    let v = if present == c.healthy_when_present {
        Verdict::ok().with_message(format!("`{}` is {state}", c.path))
    } else {
        Verdict::failing(c.fatal, format!("`{}` is {state}", c.path))
    };
    v.measure("present", if present { 1.0 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::testing::FakeHost;

    use super::*;

    /// A fresh directory for one test.
    struct Tmp(std::path::PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let d = std::env::temp_dir().join(format!("plugin-file-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("mkdir");
            Tmp(d)
        }
        fn file(&self, name: &str) -> String {
            self.0.join(name).to_str().expect("utf-8").to_string()
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_maintenance_flag_fails_while_present_and_wakes_on_its_path() {
        let dir = Tmp::new("maint");
        let flag = dir.file("maint");
        let host = FakeHost::new();
        let v = host.run::<File>(&[("path", &flag)]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.measurement("present"), Some(0.0));
        assert_eq!(host.wake_on_change(), vec![flag.clone()]);
        std::fs::write(&flag, "").expect("touch");
        let v = host.run::<File>(&[("path", &flag)]);
        assert_eq!(v.kind(), "fail");
        assert_eq!(v.reason(), Some(format!("`{flag}` is present").as_str()));
        let v = host.run::<File>(&[("path", &flag), ("verdict", "fatal")]);
        assert_eq!(v.kind(), "fatal");
    }

    #[test]
    fn healthy_when_present_inverts_and_wake_false_watches_nothing() {
        let dir = Tmp::new("ready");
        let ready = dir.file("ready");
        let host = FakeHost::new();
        let params = [
            ("path", ready.as_str()),
            ("healthy_when", "present"),
            ("wake", "false"),
        ];
        assert_eq!(host.run::<File>(&params).kind(), "fail");
        assert!(host.wake_on_change().is_empty());
        std::fs::write(&ready, "1").expect("write");
        assert!(host.run::<File>(&params).is_ok());
    }

    #[test]
    fn an_unseen_directory_fails_instead_of_looking_absent() {
        let host = FakeHost::new();
        let v = host.run::<File>(&[("path", "/nonexistent-plugin-file-dir/maint")]);
        assert_eq!(v.kind(), "fail");
        assert!(
            v.reason().is_some_and(|r| r.contains("is it granted?")),
            "{v:?}"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let host = FakeHost::new();
        for (params, want) in [
            (vec![], "path"),
            (vec![("path", "maint")], "path"),
            (
                vec![("path", "/x/maint"), ("healthy_when", "maybe")],
                "healthy_when",
            ),
            (vec![("path", "/x/maint"), ("verdict", "panic")], "verdict"),
            (vec![("path", "/x/maint"), ("wake", "soon")], "wake"),
        ] {
            let v = host.run::<File>(&params);
            assert_eq!(v.kind(), "fail", "{params:?}");
            assert!(
                v.reason().is_some_and(|r| r.contains(want)),
                "{params:?}: {v:?}"
            );
        }
    }
}

//! `wasmalived -t -f FILE` (`--config-test`): check a configuration without running it.
//! With `--dump-config`, the effective configuration (every value in force after defaults
//! and keepalived's fallbacks) is printed on stdout, and the other messages go to stderr.
//!
//! Exit status: 0 the configuration is valid (warnings may be printed), 1 it has errors
//! (printed as `file:line:column: error: ...`), 2 it parses but a referenced plugin does not
//! load or imports a capability its check is not granted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wasmalived_config::lvs::CheckerKind;
use wasmalived_config::{self as config, Config, LoadOptions, ScriptKind};
use wasmalived_plugin_host::{CheckPlugin, PluginError, PluginSource, PoolLimits, Runtime};

use crate::lvs;

/// Exit status: configuration errors.
pub const EXIT_CONFIG_ERRORS: u8 = 1;
/// Exit status: a plugin does not load under its grants.
pub const EXIT_PLUGIN_ERRORS: u8 = 2;

/// Check `path`; compiled plugins go to the cache the daemon with `state_dir` would read
/// (`plugin_cache_dir`, else under `state_dir`), so the check warms it.
/// `dump`: print the effective configuration on stdout.
pub fn main(path: &Path, opts: &LoadOptions, state_dir: &Path, dump: bool) -> ExitCode {
    let loaded = match config::load(path, opts.clone()) {
        Ok(loaded) => loaded,
        Err(errs) => {
            let mut all: Vec<&config::Diagnostic> =
                errs.warnings.iter().chain(&errs.errors).collect();
            all.sort_by_key(|d| {
                (
                    d.span.line == 0,
                    d.span.file.clone(),
                    d.span.line,
                    d.span.column,
                )
            });
            for d in all {
                eprintln!("{d}");
            }
            eprintln!("{}: configuration invalid", path.display());
            return ExitCode::from(EXIT_CONFIG_ERRORS);
        }
    };
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let config = loaded.config;
    let findings = lvs::review::review(&config);
    for f in &findings {
        eprintln!("{f}");
    }
    // Which backend the virtual servers get here, and which they need.
    let backend_report = lvs::review::backend_report(&config);
    if findings
        .iter()
        .any(|f| f.severity == lvs::review::Severity::Error)
    {
        if let Some(report) = &backend_report {
            eprintln!("{report}");
        }
        eprintln!("{}: configuration invalid", path.display());
        return ExitCode::from(EXIT_CONFIG_ERRORS);
    }
    let cache_dir = &config.global.plugin_cache_dir_in(state_dir);
    // With a dump on stdout, everything else goes to stderr.
    let say = |line: String| say(dump, line);
    if dump {
        print!("{}", config.dump());
    }
    let plugin_checks: Vec<_> = config
        .scripts
        .iter()
        .filter_map(|s| match &s.kind {
            ScriptKind::Plugin { plugin, grants, .. } => Some((
                s,
                PluginSource::of(plugin, &config.global.plugin_path),
                grants,
            )),
            ScriptKind::Exec { .. } => None,
        })
        .collect();
    let mut failed = false;
    if !plugin_checks.is_empty() {
        let runtime = match Runtime::with_limits(cache_dir, PoolLimits::for_config(&config)) {
            Ok(rt) => rt,
            Err(err) => {
                eprintln!("plugin runtime: {err}");
                return ExitCode::from(EXIT_PLUGIN_ERRORS);
            }
        };
        for (script, source, grants) in plugin_checks {
            match load(&runtime, &script.name, &source, grants) {
                Ok((plugin, file)) => say(format!(
                    "vrrp_script {}: plugin {} ({}) loads with its grants",
                    script.name,
                    plugin.identity(),
                    file.display()
                )),
                Err(err) => {
                    failed = true;
                    // The error names the plugin file itself.
                    eprintln!(
                        "{}: error: vrrp_script {}: {err}",
                        script.origin.0, script.name
                    );
                }
            }
        }
    }
    failed |= !lvs_plugins_load(&config, cache_dir, dump);
    if let Some(report) = backend_report {
        say(report);
    }
    if failed {
        return ExitCode::from(EXIT_PLUGIN_ERRORS);
    }
    say(format!(
        "{}: configuration valid ({} instance(s), {} script(s), {} virtual server(s), {} warning(s))",
        path.display(),
        config.instances.len(),
        config.scripts.len(),
        config.virtual_servers.len(),
        loaded.warnings.len() + findings.len()
    ));
    ExitCode::SUCCESS
}

/// Find the file `source` means (the first of the search path for a name) and load it for
/// `check` under `grants`.
fn load(
    runtime: &Runtime,
    check: &str,
    source: &PluginSource,
    grants: &config::grants::Grants,
) -> Result<(CheckPlugin, PathBuf), PluginError> {
    let file = source.locate()?;
    let plugin = runtime.load_check(check, &file, grants)?;
    Ok((plugin, file))
}

/// A line of the report: on stdout, or on stderr when the dump is on stdout.
fn say(dump: bool, line: String) {
    if dump {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Load each plugin the real-server checkers run (the stock `tcp`/`http`/`dns`/`smtp` plugins
/// and every `PLUGIN_CHECK`'s), once per file, with the grants of the first checker using it.
fn lvs_plugins_load(config: &Config, cache_dir: &Path, dump: bool) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut to_load = Vec::new();
    for vs in &config.virtual_servers {
        for rs in &vs.real_servers {
            for c in &rs.checkers {
                let target = c.target.to_string();
                let stock = |name: &str| PluginSource::Search {
                    name: name.to_owned(),
                    path: config.global.plugin_path.clone(),
                };
                let def = lvs::probe::ProbeDef::of(c);
                let (source, grants) = match &c.kind {
                    CheckerKind::Tcp(_) => (
                        stock(lvs::probe::TCP_PLUGIN),
                        lvs::probe::stream_grants(&def),
                    ),
                    CheckerKind::Smtp(_) => (
                        stock(lvs::probe::SMTP_PLUGIN),
                        lvs::probe::stream_grants(&def),
                    ),
                    CheckerKind::Dns(_) => (
                        stock(lvs::probe::DNS_PLUGIN),
                        lvs::probe::datagram_grants(&def),
                    ),
                    CheckerKind::Http(h) => (
                        stock(lvs::probe::HTTP_PLUGIN),
                        lvs::probe::http_runs(h, c.target, c.timing.connect_timeout).0,
                    ),
                    CheckerKind::Plugin(p) => {
                        let mut grants = p.grants.clone();
                        grants.tcp.push(config::grants::TcpGrant(target));
                        (
                            PluginSource::of(&p.plugin, &config.global.plugin_path),
                            grants,
                        )
                    }
                    _ => continue,
                };
                if seen.insert(source.clone()) {
                    to_load.push((c.origin.0.to_string(), c.kind.keyword(), source, grants));
                }
            }
        }
    }
    if to_load.is_empty() {
        return true;
    }
    let runtime = match Runtime::with_limits(cache_dir, PoolLimits::for_config(config)) {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("plugin runtime: {err}");
            return false;
        }
    };
    let mut ok = true;
    for (place, keyword, source, grants) in to_load {
        match load(&runtime, keyword, &source, &grants) {
            Ok((plugin, file)) => say(
                dump,
                format!(
                    "{keyword}: plugin {} ({}) loads",
                    plugin.identity(),
                    file.display()
                ),
            ),
            Err(err) => {
                ok = false;
                eprintln!("{place}: error: {keyword}: {err}");
            }
        }
    }
    ok
}

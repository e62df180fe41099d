//! `wasmalived`: the daemon binary and its tools.
//!
//! keepalived's common flags are accepted so unit files and habits carry over:
//! `-f FILE` (`--use-file`), `-n` (`--dont-fork`; wasmalived always runs in the foreground),
//! `-l` (`--log-console`), `-D` (`--log-detail`), `-t` (`--config-test`), `-p FILE` (`--pid`),
//! `-P` (`--vrrp`: VRRP only, which is all wasmalived does), `-i ID` (`--config-id`: which
//! `@ID` configuration lines apply; default the host name up to its first dot).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use wasmalived::cli::{config_test, man, plugin, status};
use wasmalived::daemon;
use wasmalived_config::LoadOptions;

/// Default state directory.
const DEFAULT_STATE_DIR: &str = "/run/wasmalived";
/// Default configuration file (keepalived's, so an existing setup is found).
const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// VRRP high-availability daemon with sandboxed WebAssembly health checks.
#[derive(Debug, Parser)]
#[command(name = "wasmalived", version)]
struct Cli {
    /// Configuration file (keepalived syntax).
    #[arg(short = 'f', long = "use-file", visible_alias = "config", default_value = DEFAULT_CONFIG, global = true)]
    config: PathBuf,
    /// Check the configuration (and that every plugin loads with its grants), then exit.
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// With -t: print the effective configuration (all values in force) on stdout. Implies -t.
    #[arg(long = "dump-config")]
    dump_config: bool,
    /// Treat configuration warnings (unknown keywords, keepalived's fallbacks, ...) as errors.
    #[arg(long, global = true)]
    strict: bool,
    /// Configuration id: lines starting `@ID` apply only when ID matches, `@^ID` only when it
    /// does not (keepalived's -i). Default: the host name up to its first dot.
    #[arg(short = 'i', long = "config-id", global = true)]
    config_id: Option<String>,
    /// State directory: pid file, control socket, compiled-plugin cache.
    #[arg(long, default_value = DEFAULT_STATE_DIR, global = true)]
    state_dir: PathBuf,
    /// Pid file (default: <state-dir>/wasmalived.pid).
    #[arg(short = 'p', long = "pid")]
    pid_file: Option<PathBuf>,
    /// Accepted for keepalived compatibility: wasmalived never forks.
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// Accepted for keepalived compatibility: logs always go to stderr.
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Detailed log (debug level unless WASMALIVED_LOG/RUST_LOG says otherwise).
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Accepted for keepalived compatibility: wasmalived runs only VRRP.
    #[arg(short = 'P', long = "vrrp")]
    vrrp_only: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tools for check-plugin authors.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Show a running daemon's instances and checks (via its control socket).
    Status {
        /// The raw JSON document.
        #[arg(long)]
        json: bool,
        /// One line per instance and check, no measurements.
        #[arg(long)]
        brief: bool,
    },
    /// Ask a running daemon to reload its configuration (same as SIGHUP).
    Reload,
    /// Print the manual page, wasmalived(8), as roff (`wasmalived man | man -l -`).
    #[command(hide = true)]
    Man,
}

fn init_logging(detail: bool) {
    let default = if detail { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMALIVED_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Plugin(cmd)) => {
            let filter = tracing_subscriber::EnvFilter::try_from_env("WASMALIVED_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            plugin::main(cmd)
        }
        Some(Command::Man) => match man::render(Cli::command(), &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("wasmalived man: {err}");
                ExitCode::from(1)
            }
        },
        Some(Command::Status { json, brief }) => status::main(&cli.state_dir, json, brief),
        Some(Command::Reload) => match wasmalived::control::request(&cli.state_dir, "reload") {
            Ok(answer) => {
                print!("{answer}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("wasmalived reload: {err}");
                ExitCode::from(1)
            }
        },
        None if cli.config_test || cli.dump_config => {
            init_logging(cli.log_detail);
            let opts = LoadOptions {
                strict: cli.strict,
                config_id: cli.config_id,
            };
            config_test::main(
                &cli.config,
                &opts,
                &cli.state_dir.join("plugin-cache"),
                cli.dump_config,
            )
        }
        None => {
            init_logging(cli.log_detail);
            let _ = (cli.dont_fork, cli.log_console, cli.vrrp_only);
            let opts = daemon::Options {
                config: cli.config,
                state_dir: cli.state_dir,
                strict: cli.strict,
                config_id: cli.config_id,
                pid_file: cli.pid_file,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("wasmalived")
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("wasmalived: cannot start the async runtime: {err}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(daemon::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!("{err:#}");
                    eprintln!("wasmalived: {err:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

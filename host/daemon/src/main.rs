//! `wasmalived`: the daemon binary and its tools.
//!
//! keepalived's common flags are accepted so unit files and habits carry over:
//! `-f FILE` (`--use-file`), `-n` (`--dont-fork`; wasmalived always runs in the foreground),
//! `-l` (`--log-console`), `-D` (`--log-detail`), `-t` (`--config-test`), `-p FILE` (`--pid`),
//! `-P` (`--vrrp`: VRRP only, which is all wasmalived does), `-s NAME` (`--namespace`: run
//! in network namespace NAME, as keepalived's `net_namespace`), `-i ID` (`--config-id`: which
//! `@ID` configuration lines apply; default the host name up to its first dot),
//! `--signum=NAME` (the number of keepalived's signal NAME: STOP, RELOAD, DATA, STATS,
//! STATS_CLEAR, JSON).

mod allocator;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand};
use wasmalived::cli::{config_test, man, plugin, status};
use wasmalived::daemon;
use wasmalived::dumps::signals::DaemonSignal;
use wasmalived::logging::{self, LogFormat};
use wasmalived::protocol_threads::ProtocolThreads;
use wasmalived_config::LoadOptions;

/// Default state directory.
/// The async runtime's worker threads: the protocol threads besides the main one.
const RUNTIME_WORKERS: usize = 2;
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
    /// Run in network namespace NAME (/run/netns/NAME), overriding the configuration's
    /// `net_namespace`; the process connector is opened before entering it.
    #[arg(short = 's', long = "namespace", value_name = "NAME")]
    namespace: Option<String>,
    /// Print the number of keepalived's signal NAME (STOP, RELOAD, DATA, STATS,
    /// STATS_CLEAR, JSON) and exit: `kill -s $(wasmalived --signum=DATA) PID`.
    #[arg(long, value_name = "NAME")]
    signum: Option<String>,
    /// Where SIGUSR1/SIGUSR2/STATS_CLEAR/JSON write keepalived.data, .stats, .json
    /// (default: $TMPDIR if absolute, else /tmp, as keepalived).
    #[arg(long, value_name = "DIR")]
    dump_dir: Option<PathBuf>,
    /// Log format: auto (the systemd journal when stderr is connected to it, else text),
    /// text (colour only on a terminal), json (one object per line), journald.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "WASMALIVED_LOG_FORMAT",
        global = true
    )]
    log_format: LogFormat,
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
    /// Put an instance in maintenance (it stands down and stays BACKUP, also across
    /// reloads and restarts) or take it out.
    Maintenance {
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        mode: String,
        /// The `vrrp_instance` name.
        instance: String,
    },
    /// Print the manual page, wasmalived(8), as roff (`wasmalived man | man -l -`).
    #[command(hide = true)]
    Man,
}

/// Install the logger; keep the guard until `main` returns (it writes out the queued lines).
fn init_logging(
    detail: bool,
    format: LogFormat,
    delivery: logging::Delivery,
) -> (logging::Logger, Option<logging::LogGuard>) {
    let default = if detail { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMALIVED_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    logging::init(logging::choose(format), filter, delivery)
}

/// `--signum=NAME`: the number, as keepalived prints it (`Unknown sigfunc NAME`, exit 1).
fn print_signum(name: &str) -> ExitCode {
    match DaemonSignal::from_name(name) {
        Some(signal) => {
            println!("{}", signal.number());
            ExitCode::SUCCESS
        }
        None => {
            let known: Vec<&str> = DaemonSignal::ALL.iter().map(|s| s.name()).collect();
            eprintln!("Unknown sigfunc {name} (known: {})", known.join(", "));
            ExitCode::from(1)
        }
    }
}

/// Send one control request and print the answer; exit 1 when it is an error.
fn control_request(state_dir: &std::path::Path, what: &str, request: &str) -> ExitCode {
    match wasmalived::control::request(state_dir, request) {
        Ok(answer) if answer.starts_with("error:") => {
            eprint!("wasmalived {what}: {answer}");
            ExitCode::from(1)
        }
        Ok(answer) => {
            print!("{answer}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("wasmalived {what}: {err}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(name) = &cli.signum {
        return print_signum(name);
    }
    match cli.command {
        Some(Command::Plugin(cmd)) => {
            let filter = tracing_subscriber::EnvFilter::try_from_env("WASMALIVED_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
            let _ = logging::init(
                logging::choose(LogFormat::Text),
                filter,
                logging::Delivery::Direct,
            );
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
        Some(Command::Reload) => control_request(&cli.state_dir, "reload", "reload"),
        Some(Command::Maintenance { mode, instance }) => control_request(
            &cli.state_dir,
            "maintenance",
            &format!("maintenance {mode} {instance}"),
        ),
        None if cli.config_test || cli.dump_config => {
            let _ = init_logging(cli.log_detail, cli.log_format, logging::Delivery::Direct);
            let opts = LoadOptions {
                strict: cli.strict,
                config_id: cli.config_id,
            };
            config_test::main(&cli.config, &opts, &cli.state_dir, cli.dump_config)
        }
        None => {
            // Before any other thread (the logger's, the runtime's) exists.
            let allocator_configured = wasmalived_sys::allocator::configure();
            // Dropped on every return below (and when a panic unwinds `main`): the lines
            // still queued are written out then.
            let (logger, _log_guard) =
                init_logging(cli.log_detail, cli.log_format, logging::Delivery::Queued);
            if !allocator_configured {
                tracing::debug!(
                    "malloc arenas and thresholds not set (not glibc, or mallopt refused)"
                );
            }
            let _ = (cli.dont_fork, cli.log_console, cli.vrrp_only);
            // Before the runtime's threads exist: it edits the environment.
            let service = wasmalived::systemd::ServiceManager::from_env_unset();
            // Before the runtime's threads exist: setns(2) moves only the calling thread.
            let startup = match daemon::Startup::prepare(
                &cli.config,
                LoadOptions {
                    strict: cli.strict,
                    config_id: cli.config_id.clone(),
                },
                cli.namespace.as_deref(),
            ) {
                Ok(startup) => startup,
                Err(err) => {
                    logger.shutting_down();
                    tracing::error!("{err:#}");
                    eprintln!("wasmalived: {err:#}");
                    return ExitCode::from(1);
                }
            };
            let protocol_threads = Arc::new(ProtocolThreads::new(RUNTIME_WORKERS));
            let opts = daemon::Options {
                config: cli.config,
                state_dir: cli.state_dir,
                strict: cli.strict,
                config_id: cli.config_id,
                pid_file: cli.pid_file,
                dump_dir: cli.dump_dir.unwrap_or_else(wasmalived::dumps::default_dir),
                service,
                protocol_threads: Arc::clone(&protocol_threads),
                logger: logger.clone(),
            };
            let on_start = Arc::clone(&protocol_threads);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(RUNTIME_WORKERS)
                .enable_all()
                .thread_name("wasmalived")
                .on_thread_start(move || on_start.thread_started())
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("wasmalived: cannot start the async runtime: {err}");
                    return ExitCode::from(1);
                }
            };
            let result = runtime.block_on(daemon::run(opts, startup));
            logger.shutting_down();
            match result {
                Ok(()) => {
                    tracing::info!(
                        log_lines_dropped = logger.dropped().count(),
                        "wasmalived stopped"
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    tracing::error!("{err:#}");
                    eprintln!("wasmalived: {err:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

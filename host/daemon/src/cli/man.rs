//! `wasmalived man`: the manual page, wasmalived(8), rendered from the CLI definition.
//!
//! The synopsis, the options and the commands come from the `clap` definition itself
//! (`clap_mangen` for the standard sections, the commands section here, one entry per
//! command with its own options), so the page cannot drift from the binary. What the CLI
//! cannot say — the description, the files, the signals, the exit status — is written here.
//! The Debian package installs the page as `/usr/share/man/man8/wasmalived.8.gz`.

use std::io::{self, Write};

use clap::{Arg, Command};
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use wasmalived_config::defaults::{ADMIN_PLUGIN_DIR, PACKAGED_PLUGIN_DIR};

use super::config_test::{EXIT_CONFIG_ERRORS, EXIT_PLUGIN_ERRORS};
use crate::dumps::signals::DaemonSignal;

/// The manual section: system administration commands and daemons.
pub const SECTION: &str = "8";

/// Write wasmalived(8) for the command line `cli` (the binary's `clap` definition) to `out`.
pub fn render(cli: Command, out: &mut dyn Write) -> io::Result<()> {
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let man = Man::new(cli.clone())
        .section(SECTION)
        .manual("System Administration");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    let mut page = Roff::new();
    description(&mut page);
    page.to_writer(out)?;
    man.render_options_section(out)?;
    let mut page = Roff::new();
    page.control("SH", ["COMMANDS"]);
    commands(&mut page, &cli, cli.get_name());
    files(&mut page);
    signals(&mut page);
    exit_status(&mut page);
    page.control("SH", ["SEE ALSO"]);
    page.text([roman("keepalived(8), keepalived.conf(5), systemctl(1)")]);
    page.to_writer(out)?;
    man.render_version_section(out)
}

fn description(page: &mut Roff) {
    page.control("SH", ["DESCRIPTION"]);
    page.text([
        bold("wasmalived"),
        roman(
            " speaks VRRP (version 2, RFC 3768; version 3, RFC 5798) as keepalived does: a \
             virtual IP address moves between machines when one fails. It reads keepalived's \
             configuration file, and its health checks can be sandboxed WebAssembly \
             components (plugins) as well as keepalived's scripts. It never forks and logs \
             to standard error.",
        ),
    ]);
    page.control("PP", []);
    page.text([
        roman("A "),
        bold("vrrp_script"),
        roman(" with "),
        bold("plugin"),
        roman(" "),
        italic("NAME"),
        roman(" runs "),
        italic("NAME"),
        roman(".wasm from the first directory of the plugin search path that holds it ("),
        bold("plugin_dir"),
        roman(" in "),
        bold("global_defs"),
        roman(format!(
            "; by default {ADMIN_PLUGIN_DIR}, then {PACKAGED_PLUGIN_DIR}). Every directory \
             of the path is watched: a new version of a plugin is loaded without a restart, a \
             file dropped into an earlier directory shadows a later one, and removing it \
             falls back to the later one."
        )),
    ]);
}

/// One entry per command (nested commands with their full name), with its own options.
fn commands(page: &mut Roff, cmd: &Command, prefix: &str) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix} {}", sub.get_name());
        if sub.has_subcommands() {
            commands(page, sub, &name);
            continue;
        }
        page.control("TP", []);
        let mut usage = vec![bold(name)];
        for arg in own_args(sub) {
            usage.push(roman(" "));
            if arg.is_required_set() || arg.is_positional() {
                usage.extend(synopsis_of(arg));
            } else {
                usage.push(roman("["));
                usage.extend(synopsis_of(arg));
                usage.push(roman("]"));
            }
        }
        page.text(usage);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            page.text([roman(about.to_string())]);
        }
        let options: Vec<&Arg> = own_args(sub).filter(|a| !a.is_positional()).collect();
        if !options.is_empty() {
            page.control("RS", []);
            for arg in options {
                page.control("TP", []);
                page.text(synopsis_of(arg));
                if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
                    page.text([roman(help.to_string())]);
                }
            }
            page.control("RE", []);
        }
    }
}

/// The arguments a command defines itself: not the global options every command inherits,
/// not `--help`.
fn own_args(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set() && a.get_id() != "help")
}

/// `-s`, `--long VALUE` or `VALUE` for a positional, as the synopsis writes them.
fn synopsis_of(arg: &Arg) -> Vec<Inline> {
    let value = || {
        arg.get_value_names()
            .and_then(|names| names.first())
            .map(|v| v.to_string())
            .unwrap_or_else(|| arg.get_id().to_string().to_uppercase())
    };
    if arg.is_positional() {
        return vec![italic(value())];
    }
    let mut out = Vec::new();
    if let Some(short) = arg.get_short() {
        out.push(bold(format!("-{short}")));
    }
    if let Some(long) = arg.get_long() {
        if !out.is_empty() {
            out.push(roman(", "));
        }
        out.push(bold(format!("--{long}")));
    }
    if arg.get_action().takes_values() {
        out.push(roman(" "));
        out.push(italic(value()));
    }
    out
}

fn files(page: &mut Roff) {
    page.control("SH", ["FILES"]);
    let entries = [
        (
            "/etc/keepalived/keepalived.conf",
            "The configuration read by default (keepalived syntax; -f names another).",
        ),
        (
            ADMIN_PLUGIN_DIR,
            "The administrator's plugins: first in the default plugin search path, so a plugin \
             here shadows the packaged one of the same name.",
        ),
        (
            PACKAGED_PLUGIN_DIR,
            "The stock plugins of the package (nginx-process, http, tcp, dns, smtp, disk-lock, quorum).",
        ),
        (
            "/run/wasmalived",
            "The state directory (--state-dir): the pid file wasmalived.pid, the control \
             socket control.sock that status and reload talk to, and plugin-cache/, the \
             compiled plugins.",
        ),
        (
            "/lib/systemd/system/wasmalived.service",
            "The systemd unit. The package neither enables nor starts it.",
        ),
        (
            "/usr/share/doc/wasmalived/examples/keepalived.conf",
            "A sample configuration using the stock plugins by name.",
        ),
    ];
    for (path, what) in entries {
        page.control("TP", []);
        page.text([italic(path)]);
        page.text([roman(what)]);
    }
}

fn signals(page: &mut Roff) {
    page.control("SH", ["SIGNALS"]);
    page.text([roman(
        "keepalived's signals, with its --signum names (kill -s $(wasmalived --signum=NAME) PID). \
         The dump files go to $TMPDIR if absolute, else /tmp, or --dump-dir; each is written \
         to a fresh 0600 file renamed into place, and a symlink or another user's file at the \
         path is refused.",
    )]);
    for signal in DaemonSignal::ALL {
        page.control("TP", []);
        page.text([bold(format!(
            "{} (--signum={}, {})",
            signal_name(signal.number()),
            signal.name(),
            signal.number()
        ))]);
        page.text([roman(signal_effect(signal))]);
    }
    page.control("TP", []);
    page.text([bold("SIGINT")]);
    page.text([roman("As SIGTERM.")]);
}

/// The conventional name of a signal number (real-time ones relative to SIGRTMIN/SIGRTMAX).
fn signal_name(number: i32) -> String {
    match number {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        n if n > (libc::SIGRTMIN() + libc::SIGRTMAX()) / 2 => {
            format!("SIGRTMAX-{}", libc::SIGRTMAX() - n)
        }
        n => format!("SIGRTMIN+{}", n - libc::SIGRTMIN()),
    }
}

/// What the daemon does on `signal` (every signal documented: the match is exhaustive).
fn signal_effect(signal: DaemonSignal) -> &'static str {
    match signal {
        DaemonSignal::Stop => {
            "Stand down and exit: every Master sends a priority-0 advertisement and removes \
             its virtual addresses (bounded by 5 seconds), so a peer takes over at once."
        }
        DaemonSignal::Reload => {
            "Reload the configuration (as wasmalived reload does). An invalid configuration \
             is logged with its places and the running one kept; a valid one is applied as a \
             difference, instances keeping their state and addresses."
        }
        DaemonSignal::Data => {
            "Write keepalived.data: every instance, check and LVS pool, then the configuration \
             in force."
        }
        DaemonSignal::Stats => {
            "Write keepalived.stats: per-instance advertisement and error counters, in \
             keepalived's layout."
        }
        DaemonSignal::StatsClear => {
            "Write keepalived.stats, then count the stats file from zero again (status and \
             the metrics keep their totals)."
        }
        DaemonSignal::Json => "Write keepalived.json: the wasmalived status --json document.",
    }
}

fn exit_status(page: &mut Roff) {
    page.control("SH", ["EXIT STATUS"]);
    let entries = [
        (0, "Success (with -t: the configuration is valid)."),
        (
            EXIT_CONFIG_ERRORS,
            "An error; with -t: the configuration has errors, printed as \
             file:line:column: error: ...",
        ),
        (
            EXIT_PLUGIN_ERRORS,
            "With -t: the configuration parses, but a plugin it names is missing, does not \
             load, or imports a capability its check is not granted.",
        ),
    ];
    for (code, what) in entries {
        page.control("TP", []);
        page.text([bold(code.to_string())]);
        page.text([roman(what)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    /// A CLI shaped like the binary's: global options, a flag, a nested command.
    #[derive(Parser)]
    #[command(name = "wasmalived", version, about = "VRRP daemon.")]
    struct Cli {
        /// Configuration file.
        #[arg(short = 'f', long = "use-file", global = true, value_name = "FILE")]
        config: Option<String>,
        /// Check the configuration.
        #[arg(short = 't', long = "config-test")]
        config_test: bool,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    #[derive(Subcommand)]
    enum Sub {
        /// Show a running daemon's instances.
        Status {
            /// The raw JSON document.
            #[arg(long)]
            json: bool,
        },
        /// Plugin tools.
        #[command(subcommand)]
        Plugin(PluginSub),
        /// Not for the page.
        #[command(hide = true)]
        Man,
    }

    #[derive(Subcommand)]
    enum PluginSub {
        /// Run a plugin once.
        Run {
            /// The component.
            file: String,
        },
    }

    fn page() -> String {
        use clap::CommandFactory;
        let mut out = Vec::new();
        render(Cli::command(), &mut out).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_page_has_the_standard_sections_in_order() {
        let page = page();
        let order: Vec<usize> = [
            ".TH wasmalived 8",
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH COMMANDS",
            ".SH FILES",
            ".SH SIGNALS",
            ".SH \"EXIT STATUS\"",
            ".SH \"SEE ALSO\"",
            ".SH VERSION",
        ]
        .iter()
        .map(|s| page.find(s).unwrap_or_else(|| panic!("no {s} in:\n{page}")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{page}");
    }

    #[test]
    fn options_and_commands_come_from_the_cli_definition() {
        let page = page();
        for expected in [
            "\\-\\-config\\-test",
            "Check the configuration",
            "\\fBwasmalived status\\fR [\\fB\\-\\-json\\fR]",
            "The raw JSON document",
            "\\fBwasmalived plugin run\\fR \\fIFILE\\fR",
            "Run a plugin once",
            "/usr/lib/wasmalived/plugins",
        ] {
            assert!(page.contains(expected), "no {expected:?} in:\n{page}");
        }
        assert!(!page.contains("Not for the page"), "hidden command shown");
        let commands = &page[page.find(".SH COMMANDS").expect("commands")..];
        let commands = &commands[..commands.find(".SH FILES").expect("files")];
        assert!(
            !commands.contains("use\\-file"),
            "global options repeated under each command:\n{commands}"
        );
    }
}

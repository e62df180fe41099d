//! The daemon's hot symbols: the functions a settled node runs, for the release link to put
//! side by side (`host/daemon/link/hot-symbols.txt`, passed to the linker by
//! `host/daemon/build.rs`; issue 14 §2).
//!
//! Why: the kernel maps the 64 KiB of cached neighbours around every code page a process
//! faults in (fault-around). With the steady state's functions spread over the binary's
//! ~27 MiB of code, a node held ~10 MiB of its binary resident to run ~3 MiB of it; with
//! them packed together, fault-around maps hot neighbours instead of cold ones.
//!
//! How: starts the memory benchmark's node ([`wasmalived_e2e::stock_node`]: VRRPv2 Master,
//! the four stock plugin checks), lets it settle past start-up, then watches it twice for
//! `--seconds` each:
//!
//! 1. CPU samples (`perf record --call-graph dwarf`): every function of the wasmalived binary
//!    on a sampled stack; they come first, hottest first (samples in the function itself,
//!    then on the stack).
//! 2. Page faults: every [`PAGEOUT_PERIOD`] the binary's code is paged out of the daemon
//!    (`process_madvise(MADV_PAGEOUT)`) while `perf` records its page faults, and `wasmalived
//!    status` is asked once a second (monitoring is part of a steady state). The instruction
//!    of each fault lies in a function the steady state runs, however briefly: the short and
//!    rare ones sampling misses, each of which would otherwise keep a whole page-cache folio
//!    (128 KiB here) of cold code resident. They come next, most faulted first, together
//!    with the faults recorded across start-up's second release of code pages (the code
//!    that runs right after it, [`RELEASE_WATCH_FROM`]), watched before the two above.
//!
//! then `--base` (an earlier list, less what this build no longer defines: iterating with it
//! finds what the new layout exposes), one
//! mangled name a line, as lld's `--symbol-ordering-file` reads them. Symbols a later build
//! no longer has are ignored by the link, so a stale file costs locality, never a build.
//!
//! ```text
//! make hot-symbols        # builds the release daemon and plugins, runs this
//! hot_symbols [--seconds 30] [--out host/daemon/link/hot-symbols.txt] [--base FILE]
//! ```
//! Needs root, perf, the release daemon (`WASMALIVED_BIN`) and release plugins
//! (`WASMALIVED_PLUGIN_DIR`).

#![allow(unsafe_code)] // `pidfd_open` and `process_madvise`, in `page_out` only.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wasmalived_e2e::{stock_node, wasmalived_bin, Impl, Lab, LabError, Result, NODES};

/// Past start-up: the plugins loaded, every check run a few times, start-up's code pages
/// released (`host/sys/src/program_pages.rs`).
const SETTLE: Duration = Duration::from_secs(6);
/// When the page faults of the second release are first watched, after the daemon is ready:
/// before it (`BURST_TAIL`, 5 s, `host/daemon/src/daemon/memory.rs`), so the code that runs
/// right after its `madvise` — the release's own return path, the blocking task's
/// completion, the first adverts and check runs after it — is listed too. It runs twice per
/// start and never while the steady state is watched below, yet each of its functions left
/// outside the list keeps a whole page-cache folio of cold code resident (128–512 KiB for
/// a binary installed by a copy or read back from disk).
const RELEASE_WATCH_FROM: Duration = Duration::from_secs(3);
/// Sampling frequency (Hz). The node is idle most of the time: a high rate over its short
/// bursts of work finds the small functions too.
const FREQUENCY: u32 = 20_000;
/// Bytes of stack copied per sample for the DWARF unwinder.
const STACK_BYTES: u32 = 8_192;
/// How often the daemon's code is paged out while its faults are recorded: every page the
/// steady state runs faults again within one period.
const PAGEOUT_PERIOD: Duration = Duration::from_millis(250);

struct Args {
    seconds: u64,
    out: PathBuf,
    base: Option<PathBuf>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        seconds: 30,
        out: PathBuf::from("host/daemon/link/hot-symbols.txt"),
        base: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                args.seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--seconds takes a positive number")?;
            }
            "--out" => args.out = it.next().ok_or("--out takes a path")?.into(),
            "--base" => args.base = Some(it.next().ok_or("--base takes a path")?.into()),
            "-h" | "--help" => {
                return Err(
                    "usage: hot_symbols [--seconds N] [--out PATH] [--base EARLIER_LIST]".into(),
                );
            }
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok(args)
}

/// Per symbol: samples in which it is the innermost frame of the binary (its own code, or a
/// kernel or libc call it made), and samples with it anywhere on the stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Heat {
    own: u64,
    on_stack: u64,
}

/// Reads `perf script -F ip,sym,dso --no-demangle` output: one block of frames per sample
/// (innermost first, blank line between samples), each frame `ADDR SYMBOL (DSO)`. Counts the
/// frames whose DSO's file name is `binary`.
fn heat_of(perf_script: &str, binary: &str) -> HashMap<String, Heat> {
    let mut heat: HashMap<String, Heat> = HashMap::new();
    let mut seen: Vec<String> = Vec::new();
    for line in perf_script.lines() {
        let line = line.trim();
        if line.is_empty() {
            seen.clear();
            continue;
        }
        let Some((rest, dso)) = line.rsplit_once(" (") else {
            continue;
        };
        let dso = dso.trim_end_matches(')');
        if Path::new(dso).file_name().and_then(|f| f.to_str()) != Some(binary) {
            continue;
        }
        let Some((_addr, symbol)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        // `sym+0x1f` when perf prints offsets; `[unknown]` when it has no symbol.
        let symbol = symbol.trim();
        let symbol = symbol.split_once("+0x").map_or(symbol, |(s, _)| s);
        if symbol.is_empty() || symbol.starts_with('[') {
            continue;
        }
        let innermost = seen.is_empty();
        let h = heat.entry(symbol.to_owned()).or_default();
        if innermost {
            h.own += 1;
        }
        // A recursive function counts once per sample.
        if !seen.iter().any(|s| s == symbol) {
            h.on_stack += 1;
            seen.push(symbol.to_owned());
        }
    }
    heat
}

/// `perf script -F ip,sym,dso --no-demangle` output of samples without call chains (one
/// line a sample): the functions of `binary`, with their sample counts.
fn faults_of(perf_script: &str, binary: &str) -> HashMap<String, u64> {
    // Each line is a sample of its own: a blank line after each makes it a one-frame stack.
    let stacks: String = perf_script.lines().flat_map(|l| [l, "\n\n"]).collect();
    heat_of(&stacks, binary)
        .into_iter()
        .map(|(symbol, heat)| (symbol, heat.own))
        .collect()
}

/// The ordering file: after a header of `#` lines (lld skips them), the CPU-sampled
/// functions hottest first (own samples, then stack samples), then the functions only page
/// faults found, most faulted first, then `base`'s not listed yet, in its order. Ties by
/// name, so the same profile always gives the same file.
fn ordering_file(
    cpu: &HashMap<String, Heat>,
    faults: &HashMap<String, u64>,
    base: &[String],
    header: &str,
) -> String {
    let mut hot: Vec<(&String, &Heat)> = cpu.iter().collect();
    hot.sort_by(|(a, ha), (b, hb)| {
        (hb.own, hb.on_stack)
            .cmp(&(ha.own, ha.on_stack))
            .then_with(|| a.cmp(b))
    });
    let mut faulted: Vec<(&String, &u64)> = faults.iter().collect();
    faulted.sort_by(|(a, na), (b, nb)| nb.cmp(na).then_with(|| a.cmp(b)));
    let mut listed: HashSet<&str> = HashSet::new();
    let mut out = String::from(header);
    let all = hot
        .into_iter()
        .map(|(s, _)| s.as_str())
        .chain(faulted.into_iter().map(|(s, _)| s.as_str()))
        .chain(base.iter().map(String::as_str));
    for symbol in all {
        if listed.insert(symbol) {
            out.push_str(symbol);
            out.push('\n');
        }
    }
    out
}

/// The symbols of an earlier ordering file (its `#` lines skipped).
fn read_list(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path)
        .map_err(|e| LabError::io(format!("reading {}", path.display()), e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The symbols `bin` defines (`nm --defined-only`).
fn defined_symbols(bin: &Path) -> Result<HashSet<String>> {
    let nm = Command::new("nm")
        .arg("--defined-only")
        .arg(bin)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| LabError::io("running nm (binutils)", e))?;
    if !nm.status.success() {
        return Err(LabError::check(format!("nm {} failed", bin.display())));
    }
    Ok(String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(str::to_owned)
        .collect())
}

/// The executable mappings of `binary` (a file name) in `pid`: `(start, length)`.
fn code_mappings(pid: u32, binary: &str) -> Result<Vec<(usize, usize)>> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| LabError::io(format!("reading /proc/{pid}/maps"), e))?;
    let mut out = Vec::new();
    for line in maps.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [range, perms, _, _, _, path, ..] = words[..] else {
            continue;
        };
        if !perms.contains('x')
            || Path::new(path).file_name().and_then(|f| f.to_str()) != Some(binary)
        {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let parse = |h: &str| usize::from_str_radix(h, 16).ok();
        if let (Some(start), Some(end)) = (parse(start), parse(end)) {
            out.push((start, end - start));
        }
    }
    Ok(out)
}

/// Pages `ranges` of `pid`'s address space out (`process_madvise(MADV_PAGEOUT)`): its next
/// touch of any of them faults.
fn page_out(pidfd: &std::os::fd::OwnedFd, ranges: &[(usize, usize)]) -> Result<()> {
    use std::os::fd::AsRawFd;
    let iov: Vec<libc::iovec> = ranges
        .iter()
        .map(|&(start, len)| libc::iovec {
            iov_base: start as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    // SAFETY: `iov` is a valid array of `iov.len()` iovecs describing ranges of *another*
    // process (the pidfd's); the kernel only reads the array, and MADV_PAGEOUT of a
    // file mapping loses nothing (clean pages come back from the file).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            pidfd.as_raw_fd(),
            iov.as_ptr(),
            iov.len(),
            libc::MADV_PAGEOUT,
            0u32,
        )
    };
    if rc < 0 {
        return Err(LabError::io(
            "process_madvise(MADV_PAGEOUT)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn pidfd_open(pid: u32) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    if fd < 0 {
        return Err(LabError::io(
            format!("pidfd_open({pid})"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a descriptor pidfd_open just returned, owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// `perf script` of `data`, without demangling or inline expansion (which would run
/// addr2line over the whole binary).
fn perf_script(data: &Path) -> Result<String> {
    let script = Command::new("perf")
        .args([
            "script",
            "-F",
            "ip,sym,dso",
            "--no-demangle",
            "--no-inline",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| LabError::io("running perf script", e))?;
    if !script.status.success() {
        return Err(LabError::check(format!(
            "perf script of {} failed",
            data.display()
        )));
    }
    Ok(String::from_utf8_lossy(&script.stdout).into_owned())
}

/// What runs beside a `perf record` that only watches: nothing, until it ends.
fn sleep_until(until: Instant) -> Result<()> {
    thread::sleep(until.saturating_duration_since(Instant::now()));
    Ok(())
}

/// `perf record` of `pid` with `events` for `seconds` (perf's own `sleep` bounds it); the
/// caller's `meanwhile` runs until then.
fn perf_record(
    pid: u32,
    events: &[&str],
    seconds: u64,
    data: &Path,
    meanwhile: impl FnOnce(Instant) -> Result<()>,
) -> Result<()> {
    let perf = Command::new("perf")
        .args(["record", "-q"])
        .args(events)
        .arg("-p")
        .arg(pid.to_string())
        .arg("-o")
        .arg(data)
        .args(["--", "sleep"])
        .arg(seconds.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::io("running perf record (is perf installed?)", e))?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let during = meanwhile(until);
    let out = perf
        .wait_with_output()
        .map_err(|e| LabError::io("waiting for perf record", e))?;
    if !out.status.success() {
        return Err(LabError::check(format!(
            "perf record failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    during
}

fn run(args: &Args) -> Result<()> {
    let bin = wasmalived_bin()?;
    let binary = bin
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("wasmalived")
        .to_owned();
    let mut lab = Lab::new("hotsyms")?;
    lab.add_node(NODES[0], "192.0.2.1/24", "2001:db8::1/64")?;
    let conf = stock_node::config(&lab, NODES[0])?;
    let d = lab.start_daemon_env(
        Impl::Wasmalived,
        NODES[0],
        &conf,
        stock_node::PRODUCTION_ENV,
    )?;
    thread::sleep(RELEASE_WATCH_FROM);
    let pid = d.proc.pid();
    let release_data = lab.dir().join("release-faults.data");
    perf_record(
        pid,
        &["-e", "page-faults", "-c", "1"],
        (SETTLE - RELEASE_WATCH_FROM).as_secs(),
        &release_data,
        sleep_until,
    )?;
    let release_faults = faults_of(&perf_script(&release_data)?, &binary);
    let checks = wasmalived_e2e::checks::parse_check_status(&d.status_json()?)?;
    if checks.len() != stock_node::CHECKS.len() || checks.iter().any(|c| c.last.is_empty()) {
        return Err(LabError::check(format!(
            "not every check has run after {SETTLE:?}: {checks:?}"
        )));
    }
    let cpu_data = lab.dir().join("cpu.data");
    let frequency = FREQUENCY.to_string();
    let call_graph = format!("--call-graph=dwarf,{STACK_BYTES}");
    perf_record(
        pid,
        &["-e", "cpu-clock", "-F", &frequency, &call_graph],
        args.seconds,
        &cpu_data,
        sleep_until,
    )?;
    let heat = heat_of(&perf_script(&cpu_data)?, &binary);
    let fault_data = lab.dir().join("faults.data");
    let code = code_mappings(pid, &binary)?;
    let pidfd = pidfd_open(pid)?;
    let mut last_status = Instant::now();
    perf_record(
        pid,
        &["-e", "page-faults", "-c", "1"],
        args.seconds,
        &fault_data,
        |until| {
            while Instant::now() < until {
                page_out(&pidfd, &code)?;
                if last_status.elapsed() >= Duration::from_secs(1) {
                    d.status_json()?;
                    last_status = Instant::now();
                }
                thread::sleep(PAGEOUT_PERIOD);
            }
            Ok(())
        },
    )?;
    let mut faults = faults_of(&perf_script(&fault_data)?, &binary);
    for (symbol, count) in release_faults {
        *faults.entry(symbol).or_default() += count;
    }
    if !d.proc.is_running() {
        return Err(LabError::check(format!(
            "{} exited while profiled\n{}",
            d.describe(),
            d.proc.log_tail(20)
        )));
    }
    if heat.is_empty() || faults.is_empty() {
        return Err(LabError::check(format!(
            "no sample in {binary}: is it built with symbols (not stripped)?"
        )));
    }
    // An earlier list's names this build no longer has are dropped: the file lists only
    // what the link can place.
    let defined = defined_symbols(&bin)?;
    let base: Vec<String> = match &args.base {
        Some(path) => read_list(path)?
            .into_iter()
            .filter(|s| defined.contains(s))
            .collect(),
        None => Vec::new(),
    };
    let samples: u64 = heat.values().map(|h| h.own).sum();
    let faulted: u64 = faults.values().sum();
    let header = format!(
        "# The steady state's functions, hottest first: host/daemon/build.rs passes this file\n\
         # to lld (--symbol-ordering-file) for release builds. Generated by `make hot-symbols`\n\
         # (tests/src/bin/hot_symbols.rs): {} functions from {samples} CPU samples, {} more\n\
         # from {faulted} page faults ({} s each, and start-up's second release), {} from an earlier list.\n",
        heat.len(),
        faults.keys().filter(|s| !heat.contains_key(*s)).count(),
        args.seconds,
        base.len(),
    );
    if let Some(parent) = args.out.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| LabError::io(format!("creating {}", parent.display()), e))?;
    }
    let file = ordering_file(&heat, &faults, &base, &header);
    fs::write(&args.out, &file)
        .map_err(|e| LabError::io(format!("writing {}", args.out.display()), e))?;
    println!(
        "{}: {} functions",
        args.out.display(),
        file.lines().filter(|l| !l.starts_with('#')).count()
    );
    lab.pass()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hot_symbols: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
\t    55d0 _ZN4leaf17h0000000000000001E (/tmp/x/wasmalived)
\t    55e0 _ZN6caller17h0000000000000002E (/tmp/x/wasmalived)
\t    7f00 __libc_start_main (/usr/lib/x86_64-linux-gnu/libc.so.6)

\t    7f10 epoll_wait (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    55e0 _ZN6caller17h0000000000000002E+0x10 (/tmp/x/wasmalived)
\t    55e0 _ZN6caller17h0000000000000002E (/tmp/x/wasmalived)

\t    55f0 [unknown] (/tmp/x/wasmalived)
";

    #[test]
    fn counts_own_and_stack_samples_of_the_binary_only() {
        let heat = heat_of(SCRIPT, "wasmalived");
        assert_eq!(heat.len(), 2, "{heat:?}");
        assert_eq!(
            heat["_ZN4leaf17h0000000000000001E"],
            Heat {
                own: 1,
                on_stack: 1
            }
        );
        assert_eq!(
            heat["_ZN6caller17h0000000000000002E"],
            Heat {
                own: 1,
                on_stack: 2
            },
            "innermost binary frame under a libc leaf; a recursive frame counts once per sample"
        );
    }

    #[test]
    fn page_faults_count_per_line() {
        let script = "\t55d0 _ZN4leaf17h0000000000000001E (/tmp/x/wasmalived)\n\
                      \t55d8 _ZN4leaf17h0000000000000001E (/tmp/x/wasmalived)\n\
                      \t7f00 memcpy (/usr/lib/x86_64-linux-gnu/libc.so.6)\n\
                      \t55e0 _ZN6caller17h0000000000000002E (/tmp/x/wasmalived)\n";
        let faults = faults_of(script, "wasmalived");
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert_eq!(faults["_ZN4leaf17h0000000000000001E"], 2);
        assert_eq!(faults["_ZN6caller17h0000000000000002E"], 1);
    }

    #[test]
    fn orders_cpu_samples_then_faults_then_the_base_without_repeats() {
        let heat = heat_of(SCRIPT, "wasmalived");
        let faults = HashMap::from([
            ("_ZN4leaf17h0000000000000001E".to_owned(), 9),
            ("_ZN5cold17h0000000000000003E".to_owned(), 1),
        ]);
        let base = vec![
            "_ZN5gone17h0000000000000004E".to_owned(),
            "_ZN5cold17h0000000000000003E".to_owned(),
        ];
        let file = ordering_file(&heat, &faults, &base, "# header\n");
        assert_eq!(
            file,
            "# header\n_ZN6caller17h0000000000000002E\n_ZN4leaf17h0000000000000001E\n\
             _ZN5cold17h0000000000000003E\n_ZN5gone17h0000000000000004E\n",
            "caller: 1 own, 2 on stack; leaf: 1 own, 1 on stack"
        );
    }
}

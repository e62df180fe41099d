//! The daemon's own program file in its resident memory: pages of code and read-only data
//! mapped at start-up that the steady state never touches again.
//!
//! The daemon binary is ~27 MiB of code and read-only data (wasmtime, tokio, netlink, the
//! config parser, the CLI). Start-up touches a good part of it — the config parser, the CLI,
//! plugin loading — and the kernel's fault-around maps up to 64 KiB of already cached
//! neighbours on each code fault, so ~15 MiB of the binary stayed mapped for the life of the
//! process while the steady state (adverts, check runs, the control socket) runs in a
//! fraction of it (issue 14: `tests/src/bin/memory_bench.rs`).
//!
//! [`release_program_pages`] unmaps those pages from the process (`madvise(MADV_DONTNEED)`),
//! leaving them in the page cache: what the daemon runs next faults back in as a *minor*
//! fault (no disk read while the file stays cached; the page cache may drop it under memory
//! pressure, as it may any clean page). Only mappings whose content is exactly the file's are
//! released, so nothing is lost: the program's own, private, never writable (`r-x`, `r--`),
//! without one anonymous (copy-on-write) page — which rules out the relocated
//! `.data.rel.ro`, a debugger's breakpoints — and not locked (`vrrp_no_swap`'s `mlockall`
//! keeps what it locked).
#![allow(unsafe_code)]

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

/// What [`release_program_pages`] unmapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Mappings of the program file released.
    pub mappings: usize,
    /// Resident bytes they held before.
    pub resident_bytes: u64,
}

/// One mapping of `/proc/self/smaps`: its range, file identity and the fields that decide
/// whether its pages are the file's and may be dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    /// `major:minor` of the file's device, as `/proc` prints it (hex).
    device: (u32, u32),
    inode: u64,
    rss_kib: u64,
    anonymous_kib: u64,
    /// `VmFlags` holds `lo` (`mlock`ed).
    locked: bool,
}

impl Mapping {
    /// Its pages are exactly the file's and nothing has pinned them: dropping them loses
    /// nothing.
    fn releasable(&self) -> bool {
        self.perms.starts_with('r')
            && !self.perms.contains('w')
            && self.perms.ends_with('p')
            && self.anonymous_kib == 0
            && !self.locked
            && self.rss_kib > 0
    }
}

/// `start-end perms offset major:minor inode [path]`: a mapping's header line.
fn parse_header(line: &str) -> Option<Mapping> {
    let mut words = line.split_whitespace();
    let (start, end) = words.next()?.split_once('-')?;
    let perms = words.next()?;
    let _offset = words.next()?;
    let (major, minor) = words.next()?.split_once(':')?;
    let inode = words.next()?.parse().ok()?;
    Some(Mapping {
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        perms: perms.to_owned(),
        device: (
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
        ),
        inode,
        ..Mapping::default()
    })
}

/// The mappings of an `smaps` text, with the fields [`Mapping`] keeps.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let kib = |rest: &str| {
            rest.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if let Some(rest) = line.strip_prefix("Rss:") {
            if let Some(m) = mappings.last_mut() {
                m.rss_kib = kib(rest);
            }
        } else if let Some(rest) = line.strip_prefix("Anonymous:") {
            if let Some(m) = mappings.last_mut() {
                m.anonymous_kib = kib(rest);
            }
        } else if let Some(rest) = line.strip_prefix("VmFlags:") {
            if let Some(m) = mappings.last_mut() {
                m.locked = rest.split_whitespace().any(|f| f == "lo");
            }
        } else if let Some(m) = parse_header(line) {
            mappings.push(m);
        }
    }
    mappings
}

/// Unmap the resident pages of the daemon's own program file that are exactly the file's
/// (see the module documentation); they fault back in from the page cache when next run.
/// Call after a burst of one-off work (start-up, a reload).
pub fn release_program_pages() -> io::Result<Released> {
    let exe = fs::metadata("/proc/self/exe")?;
    let device = (libc::major(exe.dev()), libc::minor(exe.dev()));
    let smaps = fs::read_to_string("/proc/self/smaps")?;
    let mut released = Released::default();
    for m in parse_smaps(&smaps) {
        if m.device != device || m.inode != exe.ino() || !m.releasable() {
            continue;
        }
        // SAFETY: the range is a whole mapping of this process's own executable, private
        // and not writable, with no anonymous (copy-on-write) page: every page is the
        // file's, and MADV_DONTNEED on a private file mapping only drops the page-table
        // entries, so the next access reads the same bytes back from the file. The
        // executable cannot be written while it runs (ETXTBSY) and is never unmapped.
        let rc = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        released.mappings += 1;
        released.resident_bytes += m.rss_kib * 1024;
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5581a0000000-5581a06f7000 r--p 00000000 fd:01 1234 /usr/sbin/wasmalived
Size:               7132 kB
Rss:                2048 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
5581a06f7000-5581a1b9c000 r-xp 006f6000 fd:01 1234 /usr/sbin/wasmalived
Size:              21140 kB
Rss:               12000 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
5581a1b9d000-5581a1c68000 r--p 01b9b000 fd:01 1234 /usr/sbin/wasmalived
Size:                812 kB
Rss:                 812 kB
Anonymous:           812 kB
VmFlags: rd mr mw me ac sd
5581a1c68000-5581a1c6f000 rw-p 01c65000 fd:01 1234 /usr/sbin/wasmalived
Size:                 28 kB
Rss:                  28 kB
Anonymous:            20 kB
VmFlags: rd wr mr mw me ac sd
7f0000000000-7f0000100000 r-xp 00000000 fd:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Size:               1024 kB
Rss:                 900 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me lo sd
";

    #[test]
    fn smaps_mappings_carry_range_identity_and_residency() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 5);
        assert_eq!(maps[1].start, 0x5581a06f7000);
        assert_eq!(maps[1].end, 0x5581a1b9c000);
        assert_eq!(maps[1].perms, "r-xp");
        assert_eq!(maps[1].device, (0xfd, 0x01));
        assert_eq!(maps[1].inode, 1234);
        assert_eq!(maps[1].rss_kib, 12000);
        assert!(maps[4].locked);
        assert!(!maps[1].locked);
    }

    #[test]
    fn only_untouched_read_only_unlocked_mappings_are_released() {
        let verdicts: Vec<bool> = parse_smaps(SMAPS).iter().map(Mapping::releasable).collect();
        // headers + .rodata, .text: the file's bytes. The RELRO segment holds relocated
        // (copy-on-write) pages, .data is writable, the locked libc text is pinned.
        assert_eq!(verdicts, [true, true, false, false, false]);
    }

    #[test]
    fn a_shared_or_empty_mapping_is_left_alone() {
        let shared = Mapping {
            perms: "r--s".into(),
            rss_kib: 4,
            ..Mapping::default()
        };
        let empty = Mapping {
            perms: "r-xp".into(),
            ..Mapping::default()
        };
        assert!(!shared.releasable());
        assert!(!empty.releasable());
    }

    /// The test binary releases its own code pages and goes on running: the code it runs
    /// next (this test's remaining lines, the harness) faults back in with the same bytes,
    /// and only that — a second release finds fewer pages resident than the first did.
    #[test]
    fn the_running_program_releases_its_code_and_keeps_running() {
        let first = release_program_pages().expect("madvise on our own executable");
        assert!(first.mappings >= 1, "{first:?}");
        assert!(first.resident_bytes > 0, "{first:?}");
        let sum: u64 = (1..=1000u64).sum();
        assert_eq!(sum, 500_500);
        let second = release_program_pages().expect("a second release");
        assert!(
            second.resident_bytes < first.resident_bytes,
            "faulted back: {second:?} of {first:?}"
        );
    }
}

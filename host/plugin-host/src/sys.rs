//! The few operating-system and wasmtime calls the plugin runtime needs that Rust marks
//! `unsafe`. Everything unsafe in `plugins/` lives here, each call with its justification, so
//! the rest of the runtime stays `unsafe`-free.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::Engine;

/// CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by the whole process (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it. These
    // clock ids always exist on Linux; on the impossible failure we report zero.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// CPU time (user + system) of all waited-for children (`getrusage(RUSAGE_CHILDREN)`).
pub fn children_cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable; getrusage only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_usec).unwrap_or(0).saturating_mul(1000),
        )
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A directory opened once (`O_DIRECTORY`) so that files under it can be read with `openat`
/// relative to it, and its entries listed without an allocation per entry. The process scan
/// (`caps/processes.rs`) reads one small file per process, so the path walk from `/` and
/// the per-entry `String`s std would add are a measurable part of a check's cost.
#[derive(Debug)]
pub struct DirFd(OwnedFd);

/// `linux_dirent64`: `d_ino` (8), `d_off` (8), `d_reclen` (2), `d_type` (1), then the name.
const DIRENT_RECLEN_AT: usize = 16;
const DIRENT_NAME_AT: usize = 19;

impl DirFd {
    /// Open `path` as a directory (read-only, close-on-exec).
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call; open(2) has no
        // other memory-safety preconditions.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Open `rel` (a path relative to this directory) read-only.
    pub fn open_file(&self, rel: &CStr) -> io::Result<File> {
        // SAFETY: `rel` is NUL-terminated and outlives the call; the directory fd is open
        // for as long as `self` lives.
        let fd = unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                rel.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by openat(2) and is owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Read the start of `rel` into `buf` with one `openat`, one `read` and one `close`
    /// (enough for `/proc` files shorter than `buf`, such as `comm`).
    pub fn read_small(&self, rel: &CStr, buf: &mut [u8]) -> io::Result<usize> {
        self.open_file(rel)?.read(buf)
    }

    /// Read the target of the symbolic link `rel` into `buf` (`readlinkat`, one call);
    /// returns its length (a target longer than `buf` is cut to `buf.len()`).
    pub fn read_link(&self, rel: &CStr, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `rel` is NUL-terminated and outlives the call; `buf` is valid and writable
        // for `buf.len()` bytes, and readlinkat writes at most that many.
        let n = unsafe {
            libc::readlinkat(
                self.0.as_raw_fd(),
                rel.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(n).unwrap_or(0).min(buf.len()))
    }

    /// Call `f` with the name of every entry (including `.` and `..`), from the directory's
    /// current position to its end. `buf` is the `getdents64` buffer (a few KiB or more).
    pub fn for_each_entry(&self, buf: &mut [u8], mut f: impl FnMut(&[u8])) -> io::Result<()> {
        loop {
            // SAFETY: `buf` is valid and writable for `buf.len()` bytes; getdents64 writes at
            // most that many bytes of whole records into it and returns how many.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let filled = usize::try_from(n).unwrap_or(0).min(buf.len());
            if filled == 0 {
                return Ok(());
            }
            // The records are parsed from the bytes, with bounds checks, no pointer casts.
            let mut records = buf.get(..filled).unwrap_or_default();
            while let Some(len_bytes) = records.get(DIRENT_RECLEN_AT..DIRENT_NAME_AT - 1) {
                let reclen = usize::from(u16::from_ne_bytes([len_bytes[0], len_bytes[1]]));
                let (Some(record), Some(rest)) = (records.get(..reclen), records.get(reclen..))
                else {
                    break;
                };
                if reclen <= DIRENT_NAME_AT {
                    break; // malformed: never loop on a zero-length record
                }
                let name = &record[DIRENT_NAME_AT..];
                let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
                f(&name[..end]);
                records = rest;
            }
        }
    }
}

/// Load a precompiled component from the daemon's code cache.
///
/// `Component::deserialize` is `unsafe` because wasmtime trusts the artifact: a crafted
/// file is arbitrary native code. The caller (`cache.rs`) guarantees the file lives in the
/// daemon-owned cache directory (mode 0700, owned by the daemon's uid, checked at open) and
/// was written by this daemon; wasmtime additionally checks the header (version, engine
/// configuration) and refuses a mismatched artifact with an error.
///
/// The file is read into memory rather than mapped (`deserialize_file` would `mmap` it): a
/// mapped file truncated in place later would kill the daemon with SIGBUS.
pub fn deserialize_cached_component(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: see above — the bytes were produced by `Component::serialize` of this daemon
    // and stored only where the daemon's uid alone can write.
    unsafe { Component::deserialize(engine, &bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let a = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = thread_cpu_time();
        assert!(b > a, "{a:?} -> {b:?}");
        assert!(process_cpu_time() >= b - a);
    }

    #[test]
    fn dir_lists_entries_and_reads_relative() {
        let dir = std::env::temp_dir().join(format!("wa-sys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("42")).unwrap();
        std::fs::write(dir.join("42/comm"), "nginx\n").unwrap();
        for i in 0..300 {
            std::fs::write(dir.join(format!("file-with-a-longish-name-{i}")), "").unwrap();
        }
        let d = DirFd::open(&dir).expect("open dir");
        let mut names = Vec::new();
        // A small buffer forces several getdents64 calls.
        let mut buf = vec![0u8; 512];
        d.for_each_entry(&mut buf, |n| {
            names.push(String::from_utf8_lossy(n).into_owned())
        })
        .expect("list");
        assert_eq!(names.len(), 303, "., .., 42 and 300 files");
        assert!(names.iter().any(|n| n == "42"));
        assert!(names.iter().any(|n| n == "file-with-a-longish-name-299"));
        let mut b = [0u8; 64];
        let n = d.read_small(c"42/comm", &mut b).expect("read");
        assert_eq!(&b[..n], b"nginx\n");
        assert!(d.read_small(c"43/comm", &mut b).is_err());
        std::os::unix::fs::symlink("target-of-link", dir.join("42/link")).unwrap();
        let n = d.read_link(c"42/link", &mut b).expect("readlink");
        assert_eq!(&b[..n], b"target-of-link");
        assert!(d.read_link(c"42/comm", &mut b).is_err(), "not a link");
        assert!(
            DirFd::open(&dir.join("42/comm")).is_err(),
            "not a directory"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The body of the `config_parse` fuzz target, as a plain function: libFuzzer runs it from
//! `fuzz/` and this crate's tests replay the corpora in `fuzz/corpus/config_parse` and
//! `fuzz/regressions/config_parse` through it.
//!
//! The input is up to three files separated by NUL bytes: `keepalived.conf`, `a.conf` and
//! `b.conf`, written to a fresh private directory, and [`crate::load`] reads the first
//! (strict when its first byte is `!`, stripped). Everything the preprocessor does applies:
//! comments, `include` (relative names, globs, braces, cycles), `$NAME` parameters,
//! `@id` conditional lines (the configuration id is `fuzz`), `~SEQ`/`~LST` generators.
//!
//! Includes stay inside the directory: an input that mentions `include` and contains a
//! `/` anywhere is skipped, since no other way builds a path out of it (a parameter's
//! value is text of the input, `${_PWD}` names the directory itself). The fuzzer cannot
//! make the parser read `/proc/kcore` or walk the file system.
//!
//! Checked: loading never panics; a refused configuration has at least one error; every
//! diagnostic names one of the input's files (or the directory) with a line within it;
//! a loaded configuration dumps, and loading the same text with [`crate::parse_str`]
//! gives the same configuration dump.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{load, parse_str, Diagnostic, LoadOptions};

/// The names the input's parts are written under, in order.
const FILES: [&str; 3] = ["keepalived.conf", "a.conf", "b.conf"];

/// A private directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wasmalived-fuzz-config-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the diagnostic's place lies in the input: one of its files (or the directory,
/// for a whole-file problem) and a line that file has.
fn check_place(d: &Diagnostic, dir: &Path, parts: &[&[u8]]) {
    let file = &*d.span.file;
    if file == dir {
        return;
    }
    let Some(index) = FILES.iter().position(|f| file == dir.join(f)) else {
        panic!("diagnostic names a file outside the input: {d}");
    };
    let text = String::from_utf8_lossy(parts[index]);
    let lines = text.split('\n').count();
    assert!(
        usize::try_from(d.span.line).is_ok_and(|l| l <= lines),
        "diagnostic past the end of {} ({lines} lines): {d}",
        FILES[index]
    );
}

/// The `config_parse` fuzz target (see the [module docs](self)).
pub fn config_parse(data: &[u8]) {
    let (strict, data) = match data.strip_prefix(b"!") {
        Some(rest) => (true, rest),
        None => (false, data),
    };
    let parts: Vec<&[u8]> = data.splitn(FILES.len(), |b| *b == 0).collect();
    let mentions = |needle: &[u8]| {
        parts
            .iter()
            .any(|p| p.windows(needle.len()).any(|w| w == needle))
    };
    if mentions(b"include") && mentions(b"/") {
        return;
    }
    let Ok(dir) = Scratch::new() else {
        return;
    };
    for (name, part) in FILES.iter().zip(&parts) {
        if std::fs::write(dir.0.join(name), part).is_err() {
            return;
        }
    }
    let main = dir.0.join(FILES[0]);
    let opts = LoadOptions {
        strict,
        config_id: Some("fuzz".into()),
    };
    match load(&main, opts.clone()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                check_place(w, &dir.0, &parts);
            }
            let dump = loaded.config.dump().to_string();
            if mentions(b"_RANDOM") {
                return; // ${_RANDOM} differs between two readings
            }
            let text = String::from_utf8_lossy(parts[0]);
            let again = parse_str(&text, &main, opts)
                .unwrap_or_else(|e| panic!("loads from the file but not from the same text:\n{e}"));
            assert_eq!(
                again.config.dump().to_string(),
                dump,
                "the same text read twice gives two configurations"
            );
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "refused without an error");
            for d in e.errors.iter().chain(&e.warnings) {
                check_place(d, &dir.0, &parts);
            }
        }
    }
}

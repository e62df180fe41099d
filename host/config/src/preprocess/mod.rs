//! keepalived's line-level configuration language, applied before words and blocks are
//! parsed (keepalived 2.2.7 `lib/parser.c`, `read_line`): comments, `include`, conditional
//! lines, parameters, multi-line parameters and generators. The result is a stream of
//! [`MappedLine`]s whose characters keep their original `file:line:column`.
//!
//! Each physical line of a file goes through, in this order:
//! 1. comment removal ([`comment`]); empty lines are skipped, and a line that is empty in
//!    the file (not even blanks) ends a multi-line definition;
//! 2. while a multi-line definition is open, the line is added to it (its trailing `\` says
//!    whether more follow) and nothing else happens;
//! 3. a conditional prefix `@ID` / `@^ID` ([`conditional`]) keeps or drops the line;
//! 4. a definition `$NAME=VALUE` ([`define`]) is recorded;
//! 5. a generator `~SEQ(...)` / `~LST(...)` ([`generate`]) queues its copies;
//! 6. other lines starting with `~` are passed on as they are;
//! 7. parameters are substituted; the result has its comments removed again and, if it
//!    now starts with `@` or still contains `$`, goes back to step 3;
//! 8. an `include` line ([`include`]) is replaced by the files it names.
//!
//! Lines produced by a generator or by a multi-line parameter are read before the rest of
//! the file, the newest first (a generator inside a generator runs to its end for each
//! value of the outer one). As in keepalived, a generator variable stays defined after its
//! generator has ended.

pub(crate) mod comment;
pub(crate) mod conditional;
pub(crate) mod define;
pub(crate) mod generate;
pub(crate) mod include;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::source::MappedLine;
use conditional::Conditional;
use define::Definitions;
use generate::Generator;
use include::Checks;

/// Includes nested deeper than this are rejected (a cycle through differing paths).
const MAX_INCLUDE_DEPTH: usize = 16;
/// At most this many configuration files are read for one configuration.
const MAX_FILES: usize = 1000;
/// At most this many lines are produced for one configuration (generators multiply).
const MAX_LINES: usize = 2_000_000;

/// Where lines come from, innermost last.
enum Source {
    /// A configuration file being read.
    File(FileSource),
    /// The files of an `include` still to read.
    Glob(GlobSource),
    /// The remaining lines of a multi-line parameter.
    Lines(VecDeque<MappedLine>),
    /// A `~SEQ` / `~LST` with copies left.
    Generator(Box<Generator>),
}

struct FileSource {
    path: Arc<Path>,
    canonical: PathBuf,
    lines: Vec<String>,
    next: usize,
}

struct GlobSource {
    files: VecDeque<PathBuf>,
    /// The `include` pattern's place.
    at: Span,
    /// The checks in force for this include.
    checks: Checks,
    /// `include_check` as it was when the include was read; restored after its files.
    saved: Checks,
}

/// A multi-line definition being collected.
struct Pending {
    name: String,
    lines: Vec<MappedLine>,
}

/// Produces the logical lines of a configuration.
pub(crate) struct Preprocessor<'d> {
    diags: &'d mut Diags,
    config_id: String,
    defs: Definitions,
    stack: Vec<Source>,
    include_check: Checks,
    pending: Option<Pending>,
    files_read: usize,
    lines_out: usize,
}

impl<'d> Preprocessor<'d> {
    /// A preprocessor for configuration id `config_id` (for `@ID` lines and `${_INSTANCE}`).
    pub(crate) fn new(diags: &'d mut Diags, config_id: &str) -> Self {
        Self {
            diags,
            config_id: config_id.to_owned(),
            defs: Definitions::new(),
            stack: Vec::new(),
            include_check: Checks::NONE,
            pending: None,
            files_read: 0,
            lines_out: 0,
        }
    }

    /// The diagnostics collector (for the parser, which reports through the same one).
    pub(crate) fn diags(&mut self) -> &mut Diags {
        self.diags
    }

    /// Starts with the file at `path`; `false` (and an error) if it cannot be read.
    pub(crate) fn open(&mut self, path: &Path) -> bool {
        let at = Span::whole_file(Arc::from(path));
        if let Err(why) = include::readable_config(path) {
            let detail = match std::fs::metadata(path) {
                Err(e) => e.to_string(),
                Ok(_) => why.to_owned(),
            };
            self.diags
                .error(&at, format!("cannot read {}: {detail}", path.display()));
            return false;
        }
        self.push_file(path, &at, true)
    }

    /// Starts with `text` as the contents of `path` (which need not exist; its directory
    /// anchors relative includes).
    pub(crate) fn open_text(&mut self, text: &str, path: &Path) {
        self.files_read += 1;
        self.stack.push(Source::File(FileSource {
            path: Arc::from(path),
            canonical: canonical(path),
            lines: split_lines(text),
            next: 0,
        }));
    }

    /// `global_defs { include_check [[+|-]CHECK ...] }`: the checks for later includes.
    pub(crate) fn set_include_check(&mut self, args: &[Word]) {
        if args.is_empty() {
            self.include_check = Checks::ALL;
            return;
        }
        for (i, word) in args.iter().enumerate() {
            let (op, name) = match word.text.chars().next() {
                Some('+') => ('+', &word.text[1..]),
                Some('-') => ('-', &word.text[1..]),
                _ => ('=', word.text.as_str()),
            };
            if op == '=' && i > 0 {
                self.diags.warn(
                    &word.span,
                    format!("include_check '{}' given after the first check; ignored, as keepalived does (use +CHECK or -CHECK)", word.text),
                );
                continue;
            }
            let Some(check) = Checks::named(name) else {
                self.diags.warn(
                    &word.span,
                    format!("unknown include_check '{name}' (expected readable, match, wildcard_match or brace_match); ignored"),
                );
                continue;
            };
            self.include_check = match op {
                '+' => self.include_check.with(check),
                '-' => self.include_check.without(check),
                _ => Checks::READABLE.with(check),
            };
        }
    }

    /// The next logical line, or `None` at the end of the configuration.
    pub(crate) fn next_line(&mut self) -> Option<MappedLine> {
        loop {
            let Some(line) = self.pull() else {
                self.close_pending();
                return None;
            };
            if self.pending.is_some() {
                self.collect(line);
                continue;
            }
            let Some(line) = self.process(line) else {
                continue;
            };
            let text = line.text();
            if let Some((checks, pattern)) = include::include_line(&text) {
                let offset = text.len() - pattern.len();
                let offset = text[..offset].chars().count();
                let at = line.span_at(offset, &self.here());
                self.include(checks, pattern.to_owned(), at);
                continue;
            }
            self.lines_out += 1;
            if self.lines_out > MAX_LINES {
                let at = line.span_at(0, &self.here());
                self.diags.error(
                    &at,
                    format!("the configuration expands to more than {MAX_LINES} lines; the rest is not read"),
                );
                self.stack.clear();
                return None;
            }
            return Some(line);
        }
    }

    /// The next raw line from the innermost source (file lines with comments removed).
    fn pull(&mut self) -> Option<MappedLine> {
        loop {
            match self.stack.last_mut()? {
                Source::File(f) => {
                    let Some(raw) = f.lines.get(f.next) else {
                        self.stack.pop();
                        continue;
                    };
                    f.next += 1;
                    let line_no = u32::try_from(f.next).unwrap_or(u32::MAX);
                    let raw = raw.trim_end_matches('\r');
                    if raw.is_empty() {
                        // keepalived: an empty line ends a multi-line definition.
                        self.close_pending();
                        continue;
                    }
                    let mapped = MappedLine::verbatim(raw, Span::new(f.path.clone(), line_no, 1));
                    let decommented = comment::decomment(&mapped);
                    if let Some(at) = &decommented.escaped_comment {
                        self.diags.warn(
                            at,
                            "an escaped '#' or '!' outside quotes starts a comment in the running keepalived 2.2.7 (its VRRP process reads the configuration a second time); the rest of the line is ignored, as keepalived does (quote the value to keep the character)",
                        );
                    }
                    if decommented.line.is_empty() {
                        continue;
                    }
                    return Some(decommented.line);
                }
                Source::Glob(g) => match g.files.pop_front() {
                    Some(path) => {
                        let at = g.at.clone();
                        self.push_file(&path, &at, false);
                    }
                    None => {
                        self.include_check = g.saved;
                        self.stack.pop();
                    }
                },
                Source::Lines(lines) => match lines.pop_front() {
                    Some(line) => return Some(line),
                    None => {
                        self.stack.pop();
                    }
                },
                Source::Generator(g) => match g.next() {
                    Some(copy) => {
                        for (name, value) in copy.assignments {
                            let at = copy
                                .line
                                .span_at(0, &Span::whole_file(Arc::from(Path::new(""))));
                            self.defs.set(&name, MappedLine::substituted(&value, at));
                        }
                        return Some(copy.line);
                    }
                    None => {
                        self.stack.pop();
                    }
                },
            }
        }
    }

    /// Steps 3 to 7 for one line; `None` when the line is consumed.
    fn process(&mut self, mut line: MappedLine) -> Option<MappedLine> {
        loop {
            match conditional::apply(&line, &self.config_id) {
                Conditional::Unconditional => {}
                Conditional::Keep(rest) => line = rest,
                Conditional::Drop => return None,
            }
            if let Some(def) = define::parse_definition(&line) {
                if def.continued {
                    let lines = if def.first.is_empty() {
                        Vec::new()
                    } else {
                        vec![def.first]
                    };
                    self.pending = Some(Pending {
                        name: def.name,
                        lines,
                    });
                } else {
                    self.defs.set(&def.name, def.first);
                }
                return None;
            }
            if generate::is_generator(&line) {
                self.generator(&line);
                return None;
            }
            if line.starts_with("~") || !line.chars().contains(&'$') {
                return Some(line);
            }
            let pwd = self.pwd();
            let substituted = match self.defs.substitute(&line, &pwd, &self.config_id) {
                Ok(s) => s,
                Err((_, e)) => {
                    let at = line.span_at(0, &self.here());
                    self.diags.error(&at, format!("{e}; the line is dropped"));
                    return None;
                }
            };
            if !substituted.following.is_empty() {
                self.stack
                    .push(Source::Lines(substituted.following.into_iter().collect()));
            }
            if !substituted.changed {
                return Some(substituted.line);
            }
            line = comment::decomment(&substituted.line).line;
            if !(line.starts_with("@") || line.chars().contains(&'$')) {
                return Some(line);
            }
        }
    }

    /// Queues the copies of a generator line.
    fn generator(&mut self, line: &MappedLine) {
        let parsed = if line.starts_with("~SEQ") {
            let pwd = self.pwd();
            let (defs, config_id) = (&mut self.defs, self.config_id.as_str());
            generate::parse_seq(line, |params| {
                match defs.substitute(params, &pwd, config_id) {
                    Ok(s) if s.following.is_empty() => Some(s.line.text()),
                    Ok(_) => None,
                    Err((s, _)) => Some(s.line.text()),
                }
            })
        } else {
            generate::parse_list(line)
        };
        match parsed {
            Ok(g) => self.stack.push(Source::Generator(Box::new(g))),
            Err(e) => {
                let at = line.span_at(0, &self.here());
                self.diags
                    .warn(&at, format!("{e}; line ignored, as keepalived does"));
            }
        }
    }

    /// Adds a line to the open multi-line definition.
    fn collect(&mut self, line: MappedLine) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        let continued = line.chars().last() == Some(&'\\');
        let text = if continued {
            let body = line.slice(0..line.len() - 1);
            let end = body
                .chars()
                .iter()
                .rposition(|c| *c != ' ' && *c != '\t')
                .map_or(0, |i| i + 1);
            body.slice(0..end)
        } else {
            line
        };
        if !text.is_empty() {
            pending.lines.push(text);
        }
        if !continued {
            self.close_pending();
        }
    }

    /// Ends the open multi-line definition, if any, and defines it.
    fn close_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            let multiline = !p.lines.is_empty();
            let lines = if multiline {
                p.lines
            } else {
                vec![MappedLine::default()]
            };
            self.defs.set_lines(&p.name, lines, multiline);
        }
    }

    /// Resolves an include and queues its files.
    fn include(&mut self, kind: Checks, pattern: String, at: Span) {
        let checks = self.include_check.with(kind);
        let base = self
            .current_file()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let resolution = include::resolve(&base, &pattern, checks);
        for problem in resolution.problems {
            if problem.check == Checks::WILDCARD && !checks.has(Checks::WILDCARD) {
                // keepalived says nothing when a wildcard matches nothing, unless asked.
                continue;
            }
            if checks.has(problem.check) {
                self.diags.error(&at, problem.message);
            } else {
                self.diags.warn(
                    &at,
                    format!(
                        "{}; ignored, as keepalived does with a plain include",
                        problem.message
                    ),
                );
            }
        }
        self.stack.push(Source::Glob(GlobSource {
            files: resolution.files.into(),
            at,
            checks,
            saved: self.include_check,
        }));
    }

    /// Reads `path` and makes it the innermost source; `false` if it was not read.
    fn push_file(&mut self, path: &Path, at: &Span, top: bool) -> bool {
        let key = canonical(path);
        let open: Vec<&PathBuf> = self
            .stack
            .iter()
            .filter_map(|s| match s {
                Source::File(f) => Some(&f.canonical),
                _ => None,
            })
            .collect();
        if let Some(first) = open.iter().position(|p| **p == key) {
            let chain: Vec<String> = open[first..]
                .iter()
                .map(|p| p.display().to_string())
                .chain([key.display().to_string()])
                .collect();
            self.diags
                .error(at, format!("include cycle: {}", chain.join(" -> ")));
            return false;
        }
        if open.len() >= MAX_INCLUDE_DEPTH {
            self.diags.error(
                at,
                format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
            );
            return false;
        }
        if self.files_read >= MAX_FILES {
            self.diags
                .error(at, format!("more than {MAX_FILES} configuration files"));
            return false;
        }
        match std::fs::read(path) {
            Ok(bytes) => {
                self.files_read += 1;
                self.stack.push(Source::File(FileSource {
                    path: Arc::from(path),
                    canonical: key,
                    lines: split_lines(&String::from_utf8_lossy(&bytes)),
                    next: 0,
                }));
                true
            }
            Err(e) => {
                let checks = match self.stack.last() {
                    Some(Source::Glob(g)) => g.checks,
                    _ => Checks::ALL,
                };
                let message = format!("cannot read {}: {e}", path.display());
                if top || checks.has(Checks::READABLE) {
                    self.diags.error(at, message);
                } else {
                    self.diags.warn(at, format!("{message}; skipped"));
                }
                false
            }
        }
    }

    /// The file being read (the innermost one).
    fn current_file(&self) -> Option<&Path> {
        self.stack.iter().rev().find_map(|s| match s {
            Source::File(f) => Some(&*f.path),
            _ => None,
        })
    }

    /// `${_PWD}`: the absolute directory of the file being read.
    fn pwd(&self) -> PathBuf {
        let dir = self
            .current_file()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir().map_or(dir.clone(), |cwd| cwd.join(dir))
        }
    }

    /// A place for messages about the current position when no better one is known.
    fn here(&self) -> Span {
        self.stack
            .iter()
            .rev()
            .find_map(|s| match s {
                Source::File(f) => Some(Span::new(
                    f.path.clone(),
                    u32::try_from(f.next).unwrap_or(u32::MAX),
                    1,
                )),
                _ => None,
            })
            .unwrap_or_else(|| Span::whole_file(Arc::from(Path::new(""))))
    }
}

/// The lines of a file's text (`\n`-separated; a final newline adds no line).
fn split_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests;

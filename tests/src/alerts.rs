//! What the notification tests share: a real SMTP server (Debian's python3-aiosmtpd) in a
//! namespace delivering to a Maildir, and notify FIFOs followed by a reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::process::Proc;
use crate::timing::wait_for;

/// Debian's interpreter, which has python3-aiosmtpd (not a pyenv or venv one).
pub const PYTHON: &str = "/usr/bin/python3";
/// How long a started SMTP server may take to listen.
const LISTEN: Duration = Duration::from_secs(10);

/// aiosmtpd on `node` at `addr:port`, storing every mail in a Maildir under the lab
/// directory. It stops with the lab (which ends every process of its namespaces).
pub struct Smtpd {
    maildir: PathBuf,
    _proc: Proc,
}

impl Smtpd {
    /// Start it (`tag` names its Maildir and log) and wait until it listens.
    pub fn start(lab: &Lab, node: &str, addr: &str, port: u16, tag: &str) -> Result<Smtpd> {
        let maildir = lab.dir().join(format!("{tag}-maildir"));
        let listen = format!("{addr}:{port}");
        let proc = lab.spawn(
            node,
            &[
                PYTHON,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &listen,
                "-c",
                "aiosmtpd.handlers.Mailbox",
                &maildir.display().to_string(),
            ],
            format!("{tag}-smtpd.log"),
        )?;
        wait_listening(lab, node, &[&listen])?;
        Ok(Smtpd {
            maildir,
            _proc: proc,
        })
    }

    /// The mails received so far, as text, in arrival order.
    pub fn mails(&self) -> Vec<String> {
        maildir(&self.maildir)
    }

    /// Waits until a mail has every one of `needles`; returns it.
    pub fn wait_mail(&self, lab: &Lab, needles: &[&str], timeout: Duration) -> Result<String> {
        let found = |mails: Vec<String>| {
            mails
                .into_iter()
                .find(|m| needles.iter().all(|n| m.contains(n)))
        };
        wait_for(
            &format!("a mail with {needles:?}"),
            timeout,
            Duration::from_millis(50),
            || Ok(found(self.mails()).is_some()),
            || format!("mails: {:#?}\n{}", self.mails(), lab.log_summary(20)),
        )?;
        Ok(found(self.mails()).unwrap_or_default())
    }
}

/// Waits until `node` listens on every `host:port` of `listens` (TCP).
pub fn wait_listening(lab: &Lab, node: &str, listens: &[&str]) -> Result<()> {
    wait_for(
        &format!("{listens:?} listening on {node}"),
        LISTEN,
        Duration::from_millis(50),
        || {
            let listening = lab.run(node, &["ss", "-ltn"])?;
            Ok(listens.iter().all(|l| listening.contains(l)))
        },
        || lab.log_summary(20),
    )
    .map(|_| ())
}

/// The mails in a Maildir (`new/`), as text with folded header lines unfolded (RFC 5322
/// §2.2.3: a long `Subject:` may be written on several lines), ordered by file name.
pub fn maildir(dir: &Path) -> Vec<String> {
    let mut mails: Vec<(PathBuf, String)> = std::fs::read_dir(dir.join("new"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.path(), std::fs::read_to_string(e.path()).ok()?)))
        .collect();
    mails.sort();
    mails.into_iter().map(|(_, m)| unfold(&m)).collect()
}

/// RFC 5322 unfolding: a line break followed by white space is removed.
fn unfold(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ")
}

/// A notify FIFO created in the lab directory and followed by `cat` on `node`: what the
/// daemon writes lands in a log file.
pub struct FifoReader {
    /// The FIFO (give it to the daemon).
    pub path: PathBuf,
    out: PathBuf,
    _reader: Proc,
}

impl FifoReader {
    /// `mkfifo` `name` in the lab directory and start its reader.
    pub fn start(lab: &Lab, node: &str, name: &str) -> Result<FifoReader> {
        let path = lab.dir().join(name);
        let out = lab.dir().join(format!("{name}.log"));
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .map_err(|e| LabError::io("mkfifo".to_owned(), e))?;
        if !made.success() {
            return Err(LabError::check(format!("mkfifo {} failed", path.display())));
        }
        let reader = lab.spawn(node, &["cat", &path.display().to_string()], &out)?;
        Ok(FifoReader {
            path,
            out,
            _reader: reader,
        })
    }

    /// The lines read so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the FIFO carried `count` lines; returns them all.
    pub fn wait_lines(&self, lab: &Lab, count: usize, timeout: Duration) -> Result<Vec<String>> {
        wait_for(
            &format!("{} lines in {}", count, self.path.display()),
            timeout,
            Duration::from_millis(20),
            || Ok(self.lines().len() >= count),
            || format!("lines now: {:#?}\n{}", self.lines(), lab.log_summary(20)),
        )?;
        Ok(self.lines())
    }
}

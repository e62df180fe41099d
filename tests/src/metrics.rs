//! wasmalived's Prometheus endpoint in the lab: scraping it from inside a node's namespace,
//! reading series out of the text, and validating the text with Debian's `promtool`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::daemon::Daemon;
use crate::error::{LabError, Result};

/// One scrape: the text the endpoint answered (the classic text format, as curl gets it).
#[derive(Clone, Debug)]
pub struct Scrape {
    /// The exposition text.
    pub text: String,
}

impl Scrape {
    /// The value of one series, named exactly as exposed (`name{label="v",…}` with the
    /// labels in the endpoint's order, or a bare name); `None` if absent.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.text.lines().find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            value.trim().parse().ok()
        })
    }

    /// [`Scrape::value`], or an error that shows the family's series.
    pub fn expect(&self, series: &str) -> Result<f64> {
        self.value(series).ok_or_else(|| {
            let family = series.split('{').next().unwrap_or(series);
            LabError::check(format!(
                "no series `{series}` in the scrape; {family}'s series: {:?}",
                self.series_of(family)
            ))
        })
    }

    /// Every series of metric `name` (exact name, labels in braces) with its value.
    pub fn series_of(&self, name: &str) -> Vec<(String, f64)> {
        self.text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let bare = series.split('{').next()?;
                (bare == name).then(|| Some((series.to_owned(), value.parse().ok()?)))?
            })
            .collect()
    }
}

impl Daemon {
    /// `GET http://ADDR/metrics` from inside the daemon's namespace (`curl`).
    pub fn scrape_metrics(&self, addr: &str) -> Result<Scrape> {
        let url = format!("http://{addr}/metrics");
        let text = crate::cmd::run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--max-time",
            "5",
            &url,
        ])?;
        Ok(Scrape { text })
    }
}

/// `promtool check metrics` on `text` (stdin): an error with promtool's findings if it
/// reports any problem.
pub fn promtool_check(text: &str) -> Result<()> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            LabError::io(
                "running `promtool check metrics` (Debian package prometheus; scripts/setup.sh)",
                e,
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| LabError::io("writing to promtool", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io("waiting for promtool", e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(LabError::check(format!(
        "promtool check metrics: {} — {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_found_by_exact_name_and_labels() {
        let s = Scrape {
            text: "# TYPE a_total counter\n\
                   a_total{x=\"1\"} 3\n\
                   a_total{x=\"12\"} 4\n\
                   a_total_extra 9\n\
                   b 1.5\n"
                .into(),
        };
        assert_eq!(s.value("a_total{x=\"1\"}"), Some(3.0));
        assert_eq!(s.value("a_total{x=\"12\"}"), Some(4.0));
        assert_eq!(s.value("a_total"), None);
        assert_eq!(s.value("b"), Some(1.5));
        assert_eq!(s.series_of("a_total").len(), 2);
        assert!(s.expect("a_total{x=\"2\"}").is_err());
    }
}

//! `wasmalived -t` against keepalived 2.2.7, file by file, over the corpus in
//! `tests/keepalived-corpus/` (see `wasmalived_e2e::compat` for what is compared): both run
//! each file or both refuse it, wasmalived reports on every line keepalived reports on
//! (saying what it ignored or used instead), and the effective VRRP values are the same.
//! The report of every file is printed; a failure lists the files that disagree.

use wasmalived_e2e::compat::{self, corpus, FileReport};
use wasmalived_e2e::Result;

fn run(test: &str, sub: &str, at_least: usize) -> Result<()> {
    let files = corpus::files(sub)?;
    assert!(
        files.len() >= at_least,
        "{sub}: {} files, expected at least {at_least}",
        files.len()
    );
    let lab = compat::lab_for(test, &files)?;
    let mut reports: Vec<FileReport> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        reports.push(compat::compare(&lab, file, &format!("{sub}-{i}"))?);
    }
    let mut text = String::new();
    for r in &reports {
        text.push_str(&r.to_string());
    }
    let agree = reports.iter().filter(|r| r.agrees()).count();
    let summary = format!(
        "{sub}: {agree} of {} files agree with keepalived 2.2.7",
        reports.len()
    );
    eprintln!("{text}{summary}");
    std::fs::write(lab.dir().join("report.txt"), format!("{text}{summary}\n"))
        .map_err(|e| wasmalived_e2e::LabError::io("writing the report", e))?;
    let disagree: Vec<&str> = reports
        .iter()
        .filter(|r| !r.agrees())
        .map(|r| r.file.as_str())
        .collect();
    assert!(disagree.is_empty(), "{summary}; disagreeing: {disagree:?}");
    lab.pass()
}

/// Every configuration of keepalived's `doc/samples` (v2.2.7).
#[test]
fn keepalived_samples() -> Result<()> {
    run("kacsamples", "samples", 25)
}

/// At least three files per leniency class (see the corpus README).
#[test]
fn leniency_classes() -> Result<()> {
    run("kacclasses", "classes", 30)
}

/// keepalived's own examples of parameters, conditional lines, generators and includes.
#[test]
fn language_features() -> Result<()> {
    run("kacfeatures", "features", 5)
}

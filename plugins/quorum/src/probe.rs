//! Probing all witnesses at once, within one deadline: TCP connects and HTTP GETs are all
//! started first, then polled together, so the run takes at most `timeout_ms` however many
//! witnesses there are.

use plugin_guest_util::tcp::Connecting;
use wasi::clocks::monotonic_clock;
use wasi::http::types::Method;
use wasi::io::poll::{self, Pollable};

use crate::config::{NamedWitness, Witness};
use crate::http::{self, Pending};

/// One probe's state.
enum Probe {
    /// Connecting.
    Tcp(Connecting),
    /// Waiting for the response head.
    Http(Pending),
    /// Finished: reached, or why not.
    Done(Result<(), String>),
}

impl Probe {
    fn pollable(&self) -> Option<&Pollable> {
        match self {
            Probe::Tcp(c) => Some(c.pollable()),
            Probe::Http(p) => Some(p.pollable()),
            Probe::Done(_) => None,
        }
    }

    /// The outcome if the probe finished; `None` while still pending.
    fn finish(&self) -> Option<Result<(), String>> {
        match self {
            Probe::Tcp(c) => c.finish(),
            Probe::Http(p) => p.take().map(|r| {
                let status = r?.status();
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("status {status}"))
                }
            }),
            Probe::Done(r) => Some(r.clone()),
        }
    }
}

/// Probe every witness; `Ok(())` for each one reached within `timeout_ms`.
pub fn probe_all(witnesses: &[NamedWitness], timeout_ms: u64) -> Vec<Result<(), String>> {
    let deadline = monotonic_clock::subscribe_duration(timeout_ms.saturating_mul(1_000_000));
    let mut probes: Vec<Probe> = witnesses
        .iter()
        .map(|w| match &w.witness {
            Witness::Tcp(addr) => match Connecting::start(*addr) {
                Ok(c) => Probe::Tcp(c),
                Err(e) => Probe::Done(Err(e)),
            },
            Witness::Http(url) => match http::start(&Method::Get, url, None, None, timeout_ms) {
                Ok(p) => Probe::Http(p),
                Err(e) => Probe::Done(Err(e)),
            },
        })
        .collect();
    loop {
        let pending: Vec<(usize, &Pollable)> = probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.pollable().map(|r| (i, r)))
            .collect();
        if pending.is_empty() {
            break;
        }
        let mut list: Vec<&Pollable> = pending.iter().map(|(_, p)| *p).collect();
        list.push(&deadline);
        let woke = poll::poll(&list);
        let timed_out = woke.contains(&(u32::try_from(pending.len()).unwrap_or(u32::MAX)));
        let ready: Vec<usize> = woke
            .iter()
            .filter_map(|&w| pending.get(w as usize).map(|(i, _)| *i))
            .collect();
        drop(list);
        drop(pending);
        for i in ready {
            if let Some(outcome) = probes[i].finish() {
                probes[i] = Probe::Done(outcome);
            }
        }
        if timed_out {
            for p in probes.iter_mut() {
                if !matches!(p, Probe::Done(_)) {
                    *p = Probe::Done(Err(format!("timeout after {timeout_ms}ms")));
                }
            }
        }
    }
    probes
        .into_iter()
        .map(|p| match p {
            Probe::Done(r) => r,
            _ => Err("not finished".into()),
        })
        .collect()
}

//! Batches of network operations: every operation started first, then all polled together
//! with one deadline, so a batch takes at most its timeout however many operations it has.
//!
//! The poll loop is generic over the kind of operation: a check that only fetches
//! ([`fetch_all`]) links no `wasi:sockets` code, so it imports (and needs a grant for) no
//! TCP. A check that only connects uses the host's `probe` instead (`super::probe`).

use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::{self, Pollable};

use super::http::{self, Pending};
use super::nanos;
use super::tcp::Connecting;
use crate::net::{HttpRequest, HttpResponse, NetError, NetOp, NetReply};

/// An operation in flight.
trait InFlight {
    /// What it gives when it succeeds.
    type Output;
    /// Ready when [`InFlight::finish`] may have an outcome.
    fn pollable(&self) -> &Pollable;
    /// The outcome once finished; `None` while pending. May read more within `deadline`.
    fn finish(&self, deadline: &Pollable) -> Option<Result<Self::Output, NetError>>;
}

impl InFlight for Connecting {
    type Output = ();

    fn pollable(&self) -> &Pollable {
        Connecting::pollable(self)
    }

    fn finish(&self, _deadline: &Pollable) -> Option<Result<(), NetError>> {
        Connecting::finish(self).map(|r| r.map_err(NetError::Tcp))
    }
}

/// A request in flight, and how much of the body to read once the head is in.
struct Fetching {
    pending: Pending,
    read_body: Option<usize>,
}

impl InFlight for Fetching {
    type Output = HttpResponse;

    fn pollable(&self) -> &Pollable {
        self.pending.pollable()
    }

    fn finish(&self, deadline: &Pollable) -> Option<Result<HttpResponse, NetError>> {
        self.pending.take().map(|r| {
            let response = r.map_err(NetError::Http)?;
            let body = self
                .read_body
                .map(|limit| http::read_body(&response, deadline, limit));
            Ok(HttpResponse {
                status: response.status(),
                body,
            })
        })
    }
}

/// Either kind, for mixed batches.
enum Either {
    Tcp(Connecting),
    Http(Fetching),
}

impl InFlight for Either {
    type Output = NetReply;

    fn pollable(&self) -> &Pollable {
        match self {
            Either::Tcp(c) => InFlight::pollable(c),
            Either::Http(f) => f.pollable(),
        }
    }

    fn finish(&self, deadline: &Pollable) -> Option<Result<NetReply, NetError>> {
        match self {
            Either::Tcp(c) => {
                InFlight::finish(c, deadline).map(|r| r.map(|()| NetReply::Connected))
            }
            Either::Http(f) => f.finish(deadline).map(|r| r.map(NetReply::Http)),
        }
    }
}

/// Every request within `timeout`.
pub fn fetch_all(
    requests: &[HttpRequest],
    timeout: Duration,
) -> Vec<Result<HttpResponse, NetError>> {
    let deadline = monotonic_clock::subscribe_duration(nanos(timeout));
    let started = requests.iter().map(|r| fetching(r, timeout)).collect();
    poll_all(started, &deadline, timeout)
}

/// A mixed batch within `timeout`.
pub fn run(ops: &[NetOp], timeout: Duration) -> Vec<Result<NetReply, NetError>> {
    let deadline = monotonic_clock::subscribe_duration(nanos(timeout));
    let started = ops
        .iter()
        .map(|op| match op {
            NetOp::Tcp(addr) => Connecting::start(*addr, None)
                .map(Either::Tcp)
                .map_err(NetError::Tcp),
            NetOp::TcpFrom { from, to } => Connecting::start(*to, Some(*from))
                .map(Either::Tcp)
                .map_err(NetError::Tcp),
            NetOp::Http(request) => fetching(request, timeout).map(Either::Http),
        })
        .collect();
    poll_all(started, &deadline, timeout)
}

fn fetching(request: &HttpRequest, timeout: Duration) -> Result<Fetching, NetError> {
    let pending = http::start(request, timeout).map_err(NetError::Http)?;
    Ok(Fetching {
        pending,
        read_body: request.read_body,
    })
}

/// One operation's state in [`poll_all`].
enum State<P: InFlight> {
    Waiting(P),
    Done(Result<P::Output, NetError>),
}

/// Poll every started operation until it finishes or `deadline` fires.
fn poll_all<P: InFlight>(
    started: Vec<Result<P, NetError>>,
    deadline: &Pollable,
    timeout: Duration,
) -> Vec<Result<P::Output, NetError>> {
    let mut states: Vec<State<P>> = started
        .into_iter()
        .map(|s| match s {
            Ok(p) => State::Waiting(p),
            Err(e) => State::Done(Err(e)),
        })
        .collect();
    loop {
        let pending: Vec<(usize, &Pollable)> = states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                State::Waiting(p) => Some((i, p.pollable())),
                State::Done(_) => None,
            })
            .collect();
        if pending.is_empty() {
            break;
        }
        let mut list: Vec<&Pollable> = pending.iter().map(|(_, p)| *p).collect();
        list.push(deadline);
        let woke = poll::poll(&list);
        let timed_out = woke.contains(&(u32::try_from(pending.len()).unwrap_or(u32::MAX)));
        let ready: Vec<usize> = woke
            .iter()
            .filter_map(|&w| pending.get(w as usize).map(|(i, _)| *i))
            .collect();
        drop(list);
        drop(pending);
        for i in ready {
            let outcome = match &states[i] {
                State::Waiting(p) => p.finish(deadline),
                State::Done(_) => None,
            };
            if let Some(outcome) = outcome {
                states[i] = State::Done(outcome);
            }
        }
        if timed_out {
            for s in states.iter_mut() {
                if matches!(s, State::Waiting(_)) {
                    *s = State::Done(Err(NetError::Deadline(timeout)));
                }
            }
        }
    }
    states
        .into_iter()
        .map(|s| match s {
            State::Done(r) => r,
            State::Waiting(_) => Err(NetError::Deadline(timeout)),
        })
        .collect()
}

//! The part of a run's host state that does not depend on the run — the WASI context (inert
//! cli, captured stdio, the granted preopens, the socket policy, the clocks, the RNGs) with
//! the run's output capture and denial list it writes to — built once per check and handed
//! from one run to the next.
//!
//! Building a `WasiCtx` costs more than a trivial plugin's call: `WasiCtxBuilder` seeds two
//! RNGs twice (its `build` leaves a fresh default builder behind), boxes every stream and
//! clock, and reopens each granted directory. None of it is guest-visible state: the guest's
//! instance, memory and every resource it opened (streams, descriptors, sockets, pollables)
//! are in the run's `Store` and its `ResourceTable`, which stay per run, so a run still
//! starts from a fresh instance and sees nothing of the previous one. What carries over is
//! host configuration plus the RNG streams' positions; `insecure-seed`, which a context
//! would otherwise fix for its whole life, is drawn per run (`caps::wasi`).
//!
//! A check keeps one spare context. A run takes it (or builds one when it is gone: the
//! first run, a run overlapping another, a wall clock swapped since) and gives it back when
//! its `Store` is gone, its capture and denials emptied.

use std::sync::Mutex;

use wasmtime_wasi::WasiCtx;

use super::caps::stdio::Capture;
use super::state::Denials;

/// A run's WASI context with the sinks it writes into.
pub struct RunContext {
    /// The WASI context.
    pub wasi: WasiCtx,
    /// Where the context's stdout and stderr go.
    pub capture: Capture,
    /// The denial list the context's socket policy records into (and the run's capabilities).
    pub denials: Denials,
    /// The check's wall-clock generation this context was built with (see [`Spare`]).
    pub clock_generation: u64,
}

/// One check's spare [`RunContext`], reused while the check's wall clock stays the same.
#[derive(Default)]
pub struct Spare(Mutex<Option<RunContext>>);

impl Spare {
    /// The spare context if it was built with wall-clock generation `clock_generation`,
    /// emptied of the previous run's output; `None` if there is none (then build one).
    pub fn take(&self, clock_generation: u64) -> Option<RunContext> {
        let ctx = self.lock().take()?;
        (ctx.clock_generation == clock_generation).then(|| {
            ctx.capture.clear();
            ctx.denials.take();
            ctx
        })
    }

    /// Keep `ctx` for the next run (a concurrent run may have returned one first: then
    /// `ctx` is dropped).
    pub fn give_back(&self, ctx: RunContext) {
        let mut slot = self.lock();
        if slot.is_none() {
            *slot = Some(ctx);
        }
    }

    /// Drop the spare (its wall clock was replaced).
    pub fn clear(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RunContext>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(generation: u64) -> RunContext {
        let capture = Capture::default();
        let mut b = wasmtime_wasi::WasiCtxBuilder::new();
        b.stdout(capture.clone());
        RunContext {
            wasi: b.build(),
            capture,
            denials: Denials::default(),
            clock_generation: generation,
        }
    }

    #[test]
    fn a_reused_context_carries_no_output_or_denial_of_the_previous_run() {
        let spare = Spare::default();
        let ctx = context(0);
        ctx.capture.push(b"previous run");
        ctx.denials.record(|| "tcp 192.0.2.1:80".into());
        spare.give_back(ctx);
        let reused = spare.take(0).expect("the spare is reused");
        assert_eq!(reused.capture.contents(), (String::new(), 0));
        assert!(reused.denials.take().is_empty());
        assert!(
            spare.take(0).is_none(),
            "taken: the next run builds its own"
        );
    }

    #[test]
    fn a_context_built_with_another_wall_clock_is_not_reused() {
        let spare = Spare::default();
        spare.give_back(context(0));
        assert!(spare.take(1).is_none());
        spare.give_back(context(1));
        spare.clear();
        assert!(spare.take(1).is_none());
    }

    #[test]
    fn one_spare_is_kept() {
        let spare = Spare::default();
        spare.give_back(context(0));
        spare.give_back(context(7));
        assert_eq!(spare.take(0).map(|c| c.clock_generation), Some(0));
    }
}

//! The process's single `wasmtime::Engine` and its epoch ticker.
//!
//! Configuration: component model (async calls via `call_async` are always available in
//! wasmtime 48, so host capabilities can await I/O), epoch interruption (CPU-time deadlines), Cranelift with
//! parallel compilation. The ticker is one std thread that bumps the epoch every
//! [`EPOCH_TICK`]; it holds only a weak reference and exits when the engine is dropped.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Engine};

use super::PluginError;

/// Epoch granularity: deadlines are checked, and busy plugins yield, this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack a plugin may use before it traps with "stack overflow".
const MAX_WASM_STACK: usize = 512 * 1024;

/// The shared engine plus the guard that keeps its ticker thread alive.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    _ticker: Arc<TickerGuard>,
}

/// Dropping the last guard lets the ticker thread notice and exit.
struct TickerGuard;

impl PluginEngine {
    /// Create the engine and start the epoch ticker.
    pub fn new() -> Result<Self, PluginError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .parallel_compilation(true);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let guard = Arc::new(TickerGuard);
        let weak: Weak<TickerGuard> = Arc::downgrade(&guard);
        let ticking = engine.clone();
        thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while weak.strong_count() > 0 {
                    thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            _ticker: guard,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Ticks needed to cover `timeout` (at least one).
    pub fn ticks_for(timeout: Duration) -> u64 {
        let ticks = timeout.as_micros() / EPOCH_TICK.as_micros().max(1);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_timeout() {
        assert_eq!(PluginEngine::ticks_for(Duration::from_secs(1)), 100);
        assert_eq!(PluginEngine::ticks_for(Duration::from_millis(1)), 1);
        assert_eq!(PluginEngine::ticks_for(Duration::ZERO), 1);
    }

    #[test]
    fn engine_builds() {
        PluginEngine::new().expect("engine builds with our feature set");
    }
}

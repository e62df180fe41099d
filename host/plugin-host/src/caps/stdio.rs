//! Captured plugin stdout/stderr: no inherited stdio. Everything a plugin prints is accepted
//! (so Rust's `println!` never fails and panics the guest) but only the first
//! [`CAPTURE_BYTES`] per run are kept; the run logs them at debug under the plugin's span.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of output kept per run (stdout and stderr together).
pub const CAPTURE_BYTES: usize = 4096;

#[derive(Debug, Default)]
struct Buf {
    kept: Vec<u8>,
    dropped: u64,
}

/// A bounded output sink shared by a run's stdout and stderr.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Buf>>);

impl Capture {
    /// Keep what fits of `bytes`, count the rest.
    pub(crate) fn push(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = CAPTURE_BYTES.saturating_sub(b.kept.len());
        let take = room.min(bytes.len());
        b.kept.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }

    /// Forget what was kept and dropped (a new run reuses the sink).
    pub fn clear(&self) {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        b.kept.clear();
        b.dropped = 0;
    }

    /// What was kept (lossy UTF-8) and how many bytes were dropped.
    pub fn contents(&self) -> (String, u64) {
        let b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (String::from_utf8_lossy(&b.kept).into_owned(), b.dropped)
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    /// A synchronous stream straight into the buffer: the default adapter goes through a
    /// background task per write, ~10x slower for a plugin that prints a lot.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready; excess is counted and dropped, never an error.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        let c = Capture::default();
        c.push(&[b'a'; 3000]);
        c.push(&[b'b'; 3000]);
        let (s, dropped) = c.contents();
        assert_eq!(s.len(), CAPTURE_BYTES);
        assert_eq!(dropped, 6000 - CAPTURE_BYTES as u64);
    }
}

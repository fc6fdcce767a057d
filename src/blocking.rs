//! The one door for blocking work: libnetcdf/HDF5 calls (tile reads and
//! writes, source analysis, NetCDF-4 downloads), file hashing and
//! filesystem walks. Nothing else in tessera calls `spawn_blocking`, so
//! this is where blocking work is bounded and measured:
//!
//! * at most [`MAX_BLOCKING`] jobs run at once (tokio's own pool would
//!   grow to 512 threads); a job waits for its turn (response producers,
//!   started with [`spawn`], are bounded by the HTTP layer instead);
//! * `tessera_blocking_jobs_in_flight{kind}` and
//!   `tessera_blocking_seconds{kind}` (time from start to end, waiting
//!   excluded) show where the time goes; `tessera_blocking_wait_seconds`
//!   shows contention for the door itself.
//!
//! Every libnetcdf call takes the `netcdf` crate's process-wide lock (which
//! HDF5 shares), so two jobs reading two tiles do not run in parallel
//! inside libnetcdf; hashing and file I/O do.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Blocking jobs that may run at once.
pub const MAX_BLOCKING: usize = 256;

fn door() -> &'static Arc<tokio::sync::Semaphore> {
    static DOOR: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    DOOR.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(MAX_BLOCKING)))
}

/// A blocking job that panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("{kind} failed: {message}")]
pub struct BlockingError {
    pub kind: &'static str,
    pub message: String,
}

/// Runs `f` on a blocking thread, once it may (see the module docs), and
/// returns its result.
pub async fn run<T: Send + 'static>(kind: &'static str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, BlockingError> {
    let waited = Instant::now();
    let permit = door().clone().acquire_owned().await.map_err(|e| BlockingError { kind, message: e.to_string() })?;
    metrics::histogram!("tessera_blocking_wait_seconds", "kind" => kind).record(waited.elapsed().as_secs_f64());
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        measured(kind, f)
    })
    .await
    .map_err(|e| BlockingError { kind, message: e.to_string() })
}

/// Starts `f` on a blocking thread and lets it run on its own: a response
/// producer that feeds a channel for as long as its client reads. These
/// do not take a turn at the door (a slow client would keep its turn for
/// minutes and starve every request behind it); the HTTP layer bounds them
/// with its data slots and its per-client cap. They are measured like the
/// rest.
pub fn spawn(kind: &'static str, f: impl FnOnce() + Send + 'static) {
    drop(tokio::task::spawn_blocking(move || measured(kind, f)));
}

fn measured<T>(kind: &'static str, f: impl FnOnce() -> T) -> T {
    /// Counts the job out however it ends (a panic included).
    struct InFlight(&'static str, Instant);
    impl Drop for InFlight {
        fn drop(&mut self) {
            metrics::gauge!("tessera_blocking_jobs_in_flight", "kind" => self.0).decrement(1.0);
            metrics::histogram!("tessera_blocking_seconds", "kind" => self.0).record(self.1.elapsed().as_secs_f64());
        }
    }
    metrics::gauge!("tessera_blocking_jobs_in_flight", "kind" => kind).increment(1.0);
    let _in_flight = InFlight(kind, Instant::now());
    f()
}

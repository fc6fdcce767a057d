//! Removing tile files that `ingest --replace` took out of service.
//!
//! A replacement commits new tiles and moves the old ones' paths to the
//! catalogue's retired list in one transaction; from then on no new request
//! plans with the old files, but a request planned just before may still
//! read them. So they stay for a grace period (by default the request time
//! limit, which no request outlives, on any replica) and are removed here
//! afterwards: the catalogue row first, then the file. A crash in between
//! leaves an orphan file that `fsck --repair` removes; never a row that
//! points at nothing, and never a removed file that a live tile row names
//! (tile file names are never reused while their file exists, see
//! [`crate::store::write_new`]).
//!
//! `tessera gc` runs it; so does every `tessera ingest` when it ends, and a
//! running server once a minute.

use crate::catalogue::{Catalogue, CatalogueError};
use crate::store::Pool;
use std::time::Duration;

/// Retired files handled per catalogue round trip.
const BATCH: i64 = 1000;

/// What one collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: u64,
    pub bytes: u64,
    /// Retired files still within their grace period.
    pub waiting: u64,
}

/// Removes retired tile files older than `grace`.
pub async fn collect(catalogue: &dyn Catalogue, pool: &Pool, grace: Duration) -> Result<GcReport, CatalogueError> {
    let now = chrono::Utc::now().timestamp_millis();
    let cutoff = now.saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
    let mut report = GcReport::default();
    loop {
        let due = catalogue.retired_before(cutoff, BATCH).await?;
        if due.is_empty() {
            break;
        }
        let paths: Vec<String> = due.iter().map(|r| r.path.clone()).collect();
        catalogue.forget_retired(&paths).await?;
        let pool = pool.clone();
        let (removed, bytes) = crate::blocking::run("remove retired tiles", move || {
            let (mut removed, mut bytes) = (0u64, 0u64);
            for p in &paths {
                let Ok(abs) = pool.resolve(p) else { continue };
                let size = std::fs::metadata(&abs).map(|m| m.len()).unwrap_or(0);
                match std::fs::remove_file(&abs) {
                    Ok(()) => {
                        removed += 1;
                        bytes += size;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(path = %p, error = %e, "retired tile could not be removed; fsck --repair will"),
                }
            }
            (removed, bytes)
        })
        .await
        .map_err(|e| CatalogueError::Other(e.to_string()))?;
        report.removed += removed;
        report.bytes += bytes;
        if (due.len() as i64) < BATCH {
            break;
        }
    }
    report.waiting = catalogue.retired_before(i64::MAX, i64::MAX).await?.len() as u64;
    if report.removed > 0 {
        tracing::info!(removed = report.removed, bytes = report.bytes, waiting = report.waiting, "retired tiles removed");
    }
    Ok(report)
}

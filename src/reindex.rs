//! `tessera reindex`: records the layout of tiles that have none (archives
//! made before layouts were recorded), or of every tile with `all`, so
//! that the pool reads them directly instead of through libnetcdf.
//!
//! Each dataset is reindexed between two writers (it takes the dataset's
//! writer lock), one time slice at a time; a layout is recorded only while
//! the tile's row still names the file that was inspected. Tiles are
//! never read for their values or changed.

use crate::catalogue::{Catalogue, CatalogueError, Dataset, TileRecord};
use crate::model::{DatasetName, Timestamp};
use crate::store::Pool;
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct ReindexReport {
    pub datasets: usize,
    /// Tiles whose layout was recorded.
    pub recorded: u64,
    /// Tiles that had one already (without `all`).
    pub kept: u64,
    /// Tiles whose storage the direct reader does not read: they stay
    /// with libnetcdf.
    pub library: u64,
    /// Tiles that could not be inspected, in words (missing, unreadable).
    pub failed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error("no dataset {0}")]
    NoDataset(DatasetName),
    #[error("{0}")]
    Internal(String),
}

pub async fn reindex(catalogue: &dyn Catalogue, pool: &Pool, dataset: Option<&DatasetName>, all: bool) -> Result<ReindexReport, ReindexError> {
    let datasets: Vec<Dataset> = match dataset {
        Some(name) => vec![catalogue.dataset(name).await?.ok_or_else(|| ReindexError::NoDataset(name.clone()))?],
        None => catalogue.datasets().await?,
    };
    let mut report = ReindexReport { datasets: datasets.len(), ..Default::default() };
    for d in &datasets {
        let name = &d.def.name;
        let _writer = crate::catalogue::lock_dataset(catalogue, name, || {
            tracing::info!(dataset = %name, "waiting for the dataset's writer (an ingest) to finish");
        })
        .await?;
        let Some(d) = catalogue.dataset(name).await? else { continue };
        let names: HashMap<i64, String> = catalogue.variables(d.id).await?.into_iter().map(|v| (v.id, v.def.name)).collect();
        let mut times: Vec<Option<Timestamp>> = catalogue.time_slices(d.id).await?.into_iter().map(|s| Some(s.t)).collect();
        times.push(None);
        for t in times {
            let (todo, kept): (Vec<TileRecord>, Vec<TileRecord>) = catalogue.tiles_at(d.id, t).await?.into_iter().partition(|r| all || r.layout.is_none());
            report.kept += kept.len() as u64;
            if todo.is_empty() {
                continue;
            }
            let pool = pool.clone();
            let names = names.clone();
            let inspected = crate::blocking::run("reindex", move || {
                todo.into_iter()
                    .map(|mut r| {
                        let var = names.get(&r.variable_id).cloned().unwrap_or_default();
                        let found = pool.resolve(&r.path).map_err(|e| e.to_string()).and_then(|p| crate::store::inspect::layout(&p, &var));
                        match found {
                            Ok(l) => {
                                r.layout = l.map(|l| l.encode());
                                Ok(r)
                            }
                            Err(e) => Err(format!("{}: {e}", r.path)),
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| ReindexError::Internal(e.to_string()))?;
            // With `all`, a tile the direct reader no longer reads loses the
            // layout it had (without, it had none).
            let mut rows = Vec::new();
            let mut cleared = 0u64;
            for r in inspected {
                match r {
                    Ok(r) => {
                        if r.layout.is_none() {
                            report.library += 1;
                            cleared += u64::from(all);
                        }
                        if r.layout.is_some() || all {
                            rows.push(r);
                        }
                    }
                    Err(e) => report.failed.push(e),
                }
            }
            report.recorded += catalogue.set_tile_layouts(d.id, &rows).await?.saturating_sub(cleared);
        }
    }
    Ok(report)
}

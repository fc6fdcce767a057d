//! `tessera overviews build`: overviews for the slices already in a
//! dataset (archives made before overviews, datasets created without
//! them, or overviews to be made again).
//!
//! It runs between two writers (it holds the dataset's writer lock), one
//! (variable, time) slice at a time: the slice's full-resolution tiles are
//! read through the tile store (verified like any read), cut into every
//! level exactly as an ingest cuts them, and committed with the slice's
//! old overview tiles retired. The dataset is marked as keeping overviews
//! only after its last slice, so that a build cut short leaves readers on
//! the full resolution.

use super::{IngestError, Job, OverviewCut, remove_tiles};
use crate::catalogue::{Catalogue, OverviewBatch, TileQuery, TileRecord, TimeSel};
use crate::model::{DatasetDef, DatasetName, TileIndex, Timestamp, VariableDef};
use crate::store::Pool;
use crate::store::port::{TileKey, TileRef, TileStore};
use std::collections::HashMap;
use std::sync::Arc;

/// What a build made.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverviewReport {
    pub levels: Vec<u32>,
    pub slices: usize,
    pub tiles: usize,
    pub bytes: u64,
}

/// Builds every overview level of every slice of a dataset.
pub async fn build(catalogue: &Arc<dyn Catalogue>, pool: &Pool, store: Arc<dyn TileStore>, name: &DatasetName) -> Result<OverviewReport, IngestError> {
    let _writer = crate::catalogue::lock_dataset(catalogue.as_ref(), name, || {
        tracing::info!(dataset = %name, "waiting for the dataset's writer (an ingest) to finish")
    })
    .await?;
    let d = catalogue
        .dataset(name)
        .await?
        .ok_or_else(|| IngestError::Catalogue(crate::catalogue::CatalogueError::Conflict(format!("no dataset {name}"))))?;
    let def = DatasetDef { overviews: true, ..d.def.clone() };
    let mut report = OverviewReport { levels: def.overview_levels(), ..Default::default() };
    let values: HashMap<Timestamp, Option<f64>> = catalogue.time_slices(d.id).await?.into_iter().map(|s| (s.t, s.value)).collect();
    for v in catalogue.variables(d.id).await? {
        for t in catalogue.ingested_times(v.id).await? {
            if report.levels.is_empty() {
                break;
            }
            let q = TileQuery {
                dataset_id: d.id,
                variable_id: v.id,
                time: t.map_or(TimeSel::Static, |t| TimeSel::Between(t, t)),
                overview: 1,
                tx: 0..u32::MAX,
                ty: 0..u32::MAX,
            };
            let records = catalogue.tiles(&q).await?;
            let job = Job { var: 0, t_index: None, time: t, time_value: t.and_then(|t| values.get(&t).copied().flatten()), check_only: false };
            let (pool2, store, def2, var) = (pool.clone(), store.clone(), def.clone(), v.def.clone());
            let tiles = crate::blocking::run("build overviews", move || cut_slice(&pool2, store.as_ref(), &def2, &var, &job, &records))
                .await
                .map_err(|e| IngestError::Task(e.to_string()))??;
            report.slices += 1;
            report.tiles += tiles.len();
            report.bytes += tiles.iter().map(|t| t.bytes).sum::<u64>();
            let batch = OverviewBatch { dataset_id: d.id, slices: vec![(v.def.name.clone(), t)], tiles, complete: false };
            if let Err(e) = catalogue.commit_overviews(&batch).await {
                remove_tiles(pool, &batch.tiles);
                return Err(e.into());
            }
            tracing::info!(dataset = %name, variable = %v.def.name, time = %t.map_or("static".to_string(), |t| def.time.show(t)), tiles = batch.tiles.len(), "overviews built");
        }
    }
    catalogue.commit_overviews(&OverviewBatch { dataset_id: d.id, slices: Vec::new(), tiles: Vec::new(), complete: true }).await?;
    Ok(report)
}

/// Reads one slice's full-resolution tiles in tile-row order and writes
/// its overview tiles; on error, removes the files it wrote.
fn cut_slice(pool: &Pool, store: &dyn TileStore, def: &DatasetDef, var: &VariableDef, job: &Job, records: &[TileRecord]) -> Result<Vec<crate::catalogue::NewTile>, IngestError> {
    let calendar = def.time.key_calendar().map_err(|e| IngestError::Task(e.to_string()))?;
    let grid = &def.grid;
    let fill = var.fill_value();
    let nz = grid.level.as_ref().map_or(1, |l| l.len());
    let by_index: HashMap<(u32, u32), &TileRecord> = records.iter().map(|r| ((r.tx, r.ty), r)).collect();
    let mut cuts: Vec<OverviewCut> = def.overview_levels().into_iter().map(|k| OverviewCut::new(def, k)).collect();
    let mut written = Vec::new();
    let (ntx, nty) = grid.tile_counts(def.tile);
    let mut run = || -> Result<(), IngestError> {
        for ty in 0..nty {
            for cut in &mut cuts {
                cut.start_row(ty, var, fill, |c, band| c.write_row(band, pool, calendar, var, job, fill, &mut written))?;
            }
            for tx in 0..ntx {
                let Some(r) = by_index.get(&(tx as u32, ty as u32)) else { continue };
                let win = grid.tile_window(def.tile, TileIndex { tx, ty });
                let key = TileKey { dataset: def.name.to_string(), variable: var.name.clone(), time: job.time.map(|t| t.0), overview: 1, tx: r.tx, ty: r.ty };
                let time_text = def.tile_time_text(job.time);
                let tile = TileRef::catalogued(key, r.path.clone(), r.bytes, r.checksum.clone(), time_text, r.layout.as_deref());
                let data = store
                    .read(&tile, var, var.has_level.then_some(0..nz), 0..win.h, 0..win.w)
                    .map_err(|e| IngestError::Write { tile: r.path.clone(), reason: format!("reading it to build overviews: {e}") })?;
                for cut in &mut cuts {
                    cut.take(&data, win);
                }
            }
        }
        for cut in &mut cuts {
            cut.finish(|c, band| c.write_row(band, pool, calendar, var, job, fill, &mut written))?;
        }
        Ok(())
    };
    let result = run();
    match result {
        Ok(()) => Ok(written),
        Err(e) => {
            remove_tiles(pool, &written);
            Err(e)
        }
    }
}

//! The in-memory twin of the SQL catalogues: same behaviour, no database.
//! Used by tests and benchmarks so that they measure tessera, not a driver.

use super::{
    Catalogue, CatalogueError, Dataset, DatasetStats, DatasetVersion, IngestBatch, MetadataEdit, NewTile, OverviewBatch, Result,
    RetiredTile, TileQuery, TileRecord, TimeSel, TimeSlice, Variable, WriterLock, apply_edit, check_same_variable,
};
use crate::model::{DatasetName, Timestamp};
use async_trait::async_trait;
use chrono::Utc;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

type TileKey = (i64, i64, u32, Option<i64>, u32, u32); // dataset, variable, overview, t, ty, tx

#[derive(Default, Clone)]
struct State {
    next_id: i64,
    datasets: BTreeMap<String, Dataset>,
    variables: Vec<Variable>,
    slices: BTreeMap<(i64, i64), TimeSlice>,
    variable_times: BTreeSet<(i64, Option<i64>)>,
    content_hashes: BTreeMap<(i64, Option<i64>), String>,
    tiles: BTreeMap<TileKey, TileRecord>,
    retired: BTreeMap<String, RetiredTile>,
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// A catalogue held in a mutex.
#[derive(Default)]
pub struct MemoryCatalogue {
    state: Mutex<State>,
    /// Writer locks: one async mutex per dataset name.
    locks: Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl MemoryCatalogue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half a batch behind
        // (batches are applied to a copy), so a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Catalogue for MemoryCatalogue {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn schema_version(&self) -> Result<i64> {
        Ok(2)
    }

    async fn dataset(&self, name: &DatasetName) -> Result<Option<Dataset>> {
        Ok(self.lock().datasets.get(name.as_str()).cloned())
    }

    async fn dataset_version(&self, name: &DatasetName) -> Result<Option<DatasetVersion>> {
        Ok(self.lock().datasets.get(name.as_str()).map(Dataset::state))
    }

    async fn datasets(&self) -> Result<Vec<Dataset>> {
        Ok(self.lock().datasets.values().cloned().collect())
    }

    async fn dataset_states(&self) -> Result<Vec<(String, DatasetVersion)>> {
        Ok(self.lock().datasets.iter().map(|(n, d)| (n.clone(), d.state())).collect())
    }

    async fn variables(&self, dataset_id: i64) -> Result<Vec<Variable>> {
        Ok(self.lock().variables.iter().filter(|v| v.dataset_id == dataset_id).cloned().collect())
    }

    async fn time_slices(&self, dataset_id: i64) -> Result<Vec<TimeSlice>> {
        let s = self.lock();
        Ok(s.slices.range((dataset_id, i64::MIN)..=(dataset_id, i64::MAX)).map(|(_, v)| v.clone()).collect())
    }

    async fn ingested_times(&self, variable_id: i64) -> Result<Vec<Option<Timestamp>>> {
        let s = self.lock();
        Ok(s.variable_times.iter().filter(|(v, _)| *v == variable_id).map(|(_, t)| t.map(Timestamp)).collect())
    }

    async fn content_hashes(&self, variable_id: i64) -> Result<Vec<(Option<Timestamp>, String)>> {
        let s = self.lock();
        Ok(s.content_hashes.iter().filter(|((v, _), _)| *v == variable_id).map(|((_, t), h)| (t.map(Timestamp), h.clone())).collect())
    }

    async fn tiles(&self, q: &TileQuery) -> Result<Vec<TileRecord>> {
        let s = self.lock();
        let mut out: Vec<TileRecord> = s
            .tiles
            .range((q.dataset_id, q.variable_id, q.overview, None, 0, 0)..=(q.dataset_id, q.variable_id, q.overview, Some(i64::MAX), u32::MAX, u32::MAX))
            .filter(|((_, _, _, t, ty, tx), _)| {
                let time_ok = match q.time {
                    TimeSel::Static => t.is_none(),
                    TimeSel::Between(a, b) => t.is_some_and(|t| t >= a.0 && t <= b.0),
                };
                time_ok && q.ty.contains(ty) && q.tx.contains(tx)
            })
            .map(|(_, r)| r.clone())
            .collect();
        out.sort_by(super::tile_order);
        Ok(out)
    }

    async fn tiles_at(&self, dataset_id: i64, time: Option<Timestamp>) -> Result<Vec<TileRecord>> {
        let s = self.lock();
        Ok(s.tiles
            .iter()
            .filter(|((d, _, _, t, _, _), _)| *d == dataset_id && *t == time.map(|t| t.0))
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn commit_ingest(&self, batch: &IngestBatch) -> Result<Dataset> {
        let mut guard = self.lock();
        // Work on a copy and swap it in at the end: all or nothing.
        let mut s = guard.clone();
        let def = &batch.dataset;
        let now = Utc::now();
        let dataset_id = match s.datasets.get_mut(def.name.as_str()) {
            Some(d) => {
                if let Some(diff) = d.def.grid.difference(&def.grid) {
                    return Err(CatalogueError::Conflict(format!("grid of dataset {} differs: {diff}", def.name)));
                }
                d.def = def.clone();
                d.id
            }
            None => {
                def.grid.geometry().map_err(|e| CatalogueError::Conflict(format!("dataset {}: {e}", def.name)))?;
                let id = s.id();
                s.datasets.insert(
                    def.name.as_str().to_string(),
                    Dataset { id, def: def.clone(), stats: DatasetStats::default(), version: 0, created_at: now, updated_at: now },
                );
                id
            }
        };
        for v in &batch.variables {
            if let Some(stored) = s.variables.iter().find(|x| x.dataset_id == dataset_id && x.def.name == v.name) {
                check_same_variable(&def.name, &stored.def, v)?;
                continue;
            }
            let id = s.id();
            s.variables.push(Variable { id, dataset_id, def: v.clone() });
        }
        let var_id = |s: &State, name: &str| {
            s.variables
                .iter()
                .find(|x| x.dataset_id == dataset_id && x.def.name == name)
                .map(|x| x.id)
                .ok_or_else(|| CatalogueError::Conflict(format!("variable {name} is not part of the batch or the dataset")))
        };
        let mut stats = DatasetStats::default();
        let mut removed = DatasetStats::default();
        if batch.replace {
            for (name, t) in &batch.slices {
                let vid = var_id(&s, name)?;
                let t = t.map(|t| t.0);
                retire(&mut s, dataset_id, |k| k.1 == vid && k.3 == t, now.timestamp_millis(), &mut removed);
                s.variable_times.remove(&(vid, t));
                s.content_hashes.remove(&(vid, t));
            }
        }
        for (name, t) in &batch.slices {
            let vid = var_id(&s, name)?;
            if let Some(h) = batch.content_hashes.get(&(name.clone(), *t)) {
                s.content_hashes.insert((vid, t.map(|t| t.0)), h.clone());
            }
            if !s.variable_times.insert((vid, t.map(|t| t.0))) {
                return Err(CatalogueError::Conflict(format!(
                    "{name} at {} is already in dataset {}",
                    t.map_or("static".to_string(), |t| def.time.show(t)),
                    def.name
                )));
            }
        }
        for slice in &batch.times {
            let key = (dataset_id, slice.t.0);
            if batch.replace || !s.slices.contains_key(&key) {
                s.slices.insert(key, slice.clone());
            }
        }
        for t in batch.slices.iter().filter_map(|(_, t)| *t) {
            s.slices.entry((dataset_id, t.0)).or_insert_with(|| TimeSlice::new(t));
        }
        for tile in &batch.tiles {
            let vid = var_id(&s, &tile.variable)?;
            insert(&mut s, dataset_id, vid, tile, &mut stats)?;
        }
        let times: Vec<i64> = s.slices.range((dataset_id, i64::MIN)..=(dataset_id, i64::MAX)).map(|(&(_, t), _)| t).collect();
        let d = s.datasets.get_mut(def.name.as_str()).expect("inserted above");
        d.stats.slice_count = times.len() as u64;
        d.stats.t_min = times.first().copied().map(Timestamp);
        d.stats.t_max = times.last().copied().map(Timestamp);
        tally(&mut d.stats, &stats, &removed);
        d.version += 1;
        d.updated_at = now;
        let result = d.clone();
        *guard = s;
        Ok(result)
    }

    async fn update_metadata(&self, name: &DatasetName, edit: &MetadataEdit) -> Result<Dataset> {
        let mut guard = self.lock();
        let mut s = guard.clone();
        let d = s.datasets.get_mut(name.as_str()).ok_or_else(|| CatalogueError::Conflict(format!("no dataset {name}")))?;
        let id = d.id;
        let mut vars: Vec<Variable> = s.variables.iter().filter(|v| v.dataset_id == id).cloned().collect();
        apply_edit(&mut d.def, &mut vars, edit)?;
        d.version += 1;
        d.updated_at = Utc::now();
        let result = d.clone();
        for v in vars {
            if let Some(x) = s.variables.iter_mut().find(|x| x.id == v.id) {
                *x = v;
            }
        }
        *guard = s;
        Ok(result)
    }

    async fn retired_before(&self, before_ms: i64, limit: i64) -> Result<Vec<RetiredTile>> {
        let s = self.lock();
        let mut out: Vec<RetiredTile> = s.retired.values().filter(|r| r.retired_at < before_ms).cloned().collect();
        out.sort_by_key(|r| r.retired_at);
        out.truncate(limit.max(0) as usize);
        Ok(out)
    }

    async fn retired_in(&self, dataset_id: i64) -> Result<Vec<RetiredTile>> {
        Ok(self.lock().retired.values().filter(|r| r.dataset_id == dataset_id).cloned().collect())
    }

    async fn apply_migrations(&self) -> Result<()> {
        Ok(())
    }

    async fn try_lock_dataset(&self, name: &DatasetName) -> Result<Option<WriterLock>> {
        let m = self.locks.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_string()).or_default().clone();
        Ok(m.try_lock_owned().ok().map(WriterLock::new))
    }

    async fn forget_retired(&self, paths: &[String]) -> Result<()> {
        let mut s = self.lock();
        for p in paths {
            s.retired.remove(p);
        }
        Ok(())
    }

    async fn delete_dataset(&self, name: &DatasetName) -> Result<bool> {
        let mut s = self.lock();
        let Some(d) = s.datasets.remove(name.as_str()) else { return Ok(false) };
        let vars: BTreeSet<i64> = s.variables.iter().filter(|v| v.dataset_id == d.id).map(|v| v.id).collect();
        s.variables.retain(|v| v.dataset_id != d.id);
        s.slices.retain(|(ds, _), _| *ds != d.id);
        s.variable_times.retain(|(v, _)| !vars.contains(v));
        s.content_hashes.retain(|(v, _), _| !vars.contains(v));
        s.tiles.retain(|(ds, ..), _| *ds != d.id);
        s.retired.retain(|_, r| r.dataset_id != d.id);
        Ok(true)
    }

    async fn set_tile_layouts(&self, dataset_id: i64, tiles: &[TileRecord]) -> Result<u64> {
        let mut s = self.lock();
        let mut changed = 0;
        for t in tiles {
            if let Some(row) = s.tiles.get_mut(&(dataset_id, t.variable_id, t.overview, t.time.map(|x| x.0), t.ty, t.tx)) {
                if row.path == t.path {
                    row.layout = t.layout.clone();
                    changed += 1;
                }
            }
        }
        if changed > 0 {
            if let Some(d) = s.datasets.values_mut().find(|d| d.id == dataset_id) {
                d.version += 1;
                d.updated_at = chrono::Utc::now();
            }
        }
        Ok(changed)
    }

    async fn commit_overviews(&self, batch: &OverviewBatch) -> Result<Dataset> {
        let mut guard = self.lock();
        let mut s = guard.clone();
        let dataset_id = batch.dataset_id;
        let name = s.datasets.values().find(|d| d.id == dataset_id).map(|d| d.def.name.to_string());
        let Some(name) = name else { return Err(CatalogueError::Conflict(format!("dataset {dataset_id} is gone"))) };
        let var_id = |s: &State, var: &str| {
            s.variables
                .iter()
                .find(|x| x.dataset_id == dataset_id && x.def.name == var)
                .map(|x| x.id)
                .ok_or_else(|| CatalogueError::Conflict(format!("no variable {var} in dataset {name}")))
        };
        let now = Utc::now();
        let (mut added, mut removed) = (DatasetStats::default(), DatasetStats::default());
        for (var, t) in &batch.slices {
            let vid = var_id(&s, var)?;
            let t = t.map(|t| t.0);
            retire(&mut s, dataset_id, |k| k.1 == vid && k.3 == t && k.2 > 1, now.timestamp_millis(), &mut removed);
        }
        for tile in &batch.tiles {
            if tile.overview < 2 {
                return Err(CatalogueError::Conflict("an overview batch holds a full-resolution tile".into()));
            }
            let vid = var_id(&s, &tile.variable)?;
            insert(&mut s, dataset_id, vid, tile, &mut added)?;
        }
        let d = s.datasets.get_mut(&name).expect("found above");
        tally(&mut d.stats, &added, &removed);
        d.def.overviews |= batch.complete;
        d.version += 1;
        d.updated_at = now;
        let result = d.clone();
        *guard = s;
        Ok(result)
    }
}

/// Moves the dataset's tiles that `which` selects to the retired list.
fn retire(s: &mut State, dataset_id: i64, which: impl Fn(&TileKey) -> bool, now_ms: i64, removed: &mut DatasetStats) {
    let old: Vec<TileKey> = s.tiles.keys().filter(|k| k.0 == dataset_id && which(k)).copied().collect();
    for k in old {
        let r = s.tiles.remove(&k).expect("listed above");
        count(removed, r.bytes, r.overview);
        s.retired.insert(r.path.clone(), RetiredTile { dataset_id, path: r.path, retired_at: now_ms });
    }
}

/// Adds a tile row, refusing a key that is taken.
fn insert(s: &mut State, dataset_id: i64, vid: i64, tile: &NewTile, added: &mut DatasetStats) -> Result<()> {
    let key = (dataset_id, vid, tile.overview, tile.time.map(|t| t.0), tile.ty, tile.tx);
    if s.tiles.contains_key(&key) {
        return Err(CatalogueError::Conflict(format!("tile {} is already catalogued", tile.path)));
    }
    count(added, tile.bytes, tile.overview);
    s.tiles.insert(
        key,
        TileRecord {
            variable_id: vid,
            time: tile.time,
            overview: tile.overview,
            tx: tile.tx,
            ty: tile.ty,
            path: tile.path.clone(),
            bytes: tile.bytes,
            checksum: tile.checksum.clone(),
            layout: tile.layout.clone(),
        },
    );
    Ok(())
}

/// Counts one tile into full-resolution or overview totals.
fn count(stats: &mut DatasetStats, bytes: u64, overview: u32) {
    if overview > 1 {
        stats.overview_tiles += 1;
        stats.overview_bytes += bytes;
    } else {
        stats.tile_count += 1;
        stats.bytes += bytes;
    }
}

/// Applies tiles added and removed to a dataset's counts.
fn tally(stats: &mut DatasetStats, added: &DatasetStats, removed: &DatasetStats) {
    stats.tile_count = stats.tile_count + added.tile_count - removed.tile_count;
    stats.bytes = stats.bytes + added.bytes - removed.bytes;
    stats.overview_tiles = stats.overview_tiles + added.overview_tiles - removed.overview_tiles;
    stats.overview_bytes = stats.overview_bytes + added.overview_bytes - removed.overview_bytes;
}

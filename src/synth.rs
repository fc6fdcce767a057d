//! `tessera synth`: a dataset of any number of tile rows, for measuring
//! what a request costs in a catalogue of archive size. One variable on a
//! global grid (0.05 degree by default: 29 x 15 tiles of 256 x 256 a
//! slice), as many daily slices as the rows need. Every slice's rows point
//! at one set of real tile files written first, so every request runs the
//! real path end to end: catalogue lookup, verification, read, mosaic,
//! encoding. The files state that they stand for any time
//! ([`crate::model::SYNTHETIC_TIME`]), which the store accepts only for a
//! dataset marked synthetic.

use crate::catalogue::{Catalogue, IngestBatch, NewTile, SyntheticBatch, TimeSlice};
use crate::model::{
    AttrValue, Attribute, Axis, Crs, DataType, DatasetDef, DatasetName, Grid, TileFormat, TileIndex, TileShape, TimeAxis, TimeKeys, Timestamp, TypedArray,
    VarKind, VariableDef,
};
use crate::store::Pool;
use anyhow::{Context, bail};

/// What to make.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub name: DatasetName,
    /// Tile rows in all.
    pub tiles: u64,
    /// Grid spacing in degrees.
    pub resolution: f64,
}

/// What was made.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthReport {
    pub slices: u64,
    pub tiles: u64,
    /// Tile files written (one slice's worth).
    pub files: usize,
    pub tiles_per_slice: usize,
}

/// Rows committed per transaction: large enough that a commit's cost is
/// spread thin, small enough that its tile list stays a few tens of MB.
const ROWS_PER_COMMIT: usize = 200_000;

/// The first slice: 2000-01-01, then one a day.
const FIRST_DAY_MS: i64 = 946_684_800_000;
const DAY_MS: i64 = 86_400_000;

fn axis(name: &str, n: usize, first: f64, step: f64, attrs: &[(&str, &str)]) -> Axis {
    Axis {
        name: name.into(),
        dtype: DataType::F64,
        values: (0..n).map(|i| first + step * i as f64).collect(),
        attrs: attrs.iter().map(|(k, v)| Attribute::text(*k, *v)).collect(),
    }
}

/// The synthetic dataset's definition and variable.
pub fn definition(name: &DatasetName, resolution: f64) -> anyhow::Result<(DatasetDef, VariableDef)> {
    if !(resolution > 0.0 && resolution <= 10.0) {
        bail!("--resolution must be above 0 and at most 10 degrees");
    }
    let (nx, ny) = ((360.0 / resolution).round() as usize, (180.0 / resolution).round() as usize);
    let units = "days since 2000-01-01 00:00:00";
    let def = DatasetDef {
        name: name.clone(),
        title: format!("synthetic {resolution} degree daily field for scale tests"),
        attrs: vec![
            Attribute::text("Conventions", "CF-1.8"),
            Attribute::text("title", format!("synthetic {resolution} degree daily field for scale tests")),
            Attribute::text("comment", "made by tessera synth: every slice shares one set of tile files"),
        ],
        grid: Grid {
            x: axis("lon", nx, -180.0 + resolution / 2.0, resolution, &[("units", "degrees_east"), ("standard_name", "longitude"), ("axis", "X")]),
            y: axis("lat", ny, 90.0 - resolution / 2.0, -resolution, &[("units", "degrees_north"), ("standard_name", "latitude"), ("axis", "Y")]),
            level: None,
            crs: Crs::default(),
        },
        time: TimeAxis {
            name: "time".into(),
            units: units.into(),
            calendar: "standard".into(),
            attrs: vec![
                Attribute::text("standard_name", "time"),
                Attribute::text("units", units),
                Attribute::text("calendar", "standard"),
                Attribute::text("axis", "T"),
            ],
            dtype: DataType::F64,
            keys: TimeKeys::Calendar,
        },
        tile: TileShape::new(256, 256).expect("a valid shape"),
        format: TileFormat::Nc4Deflate,
        deflate_level: 1,
        aux: Vec::new(),
        slice_aux: Vec::new(),
        overviews: false,
        synthetic: true,
    };
    let var = VariableDef {
        name: "tas".into(),
        dtype: DataType::F32,
        has_time: true,
        has_level: false,
        attrs: vec![
            Attribute::new("_FillValue", AttrValue::F32(vec![-9999.0])),
            Attribute::text("standard_name", "air_temperature"),
            Attribute::text("long_name", "synthetic near-surface air temperature"),
            Attribute::text("units", "K"),
        ],
        kind: VarKind::Data,
    };
    Ok((def, var))
}

/// The value every slice has at a cell: smooth, so that tiles deflate as
/// real fields do.
pub fn value(lat: f64, lon: f64) -> f32 {
    (288.0 - 30.0 * (lat.to_radians().sin()).powi(2) + 2.0 * (3.0 * lon.to_radians()).cos()) as f32
}

fn slice(k: u64) -> TimeSlice {
    TimeSlice { t: Timestamp(FIRST_DAY_MS + k as i64 * DAY_MS), value: Some(k as f64), aux: Default::default() }
}

/// Makes the dataset; `progress` hears the rows committed so far.
pub async fn synth(cat: &dyn Catalogue, pool: &Pool, o: &SynthOptions, progress: impl Fn(u64)) -> anyhow::Result<SynthReport> {
    if o.tiles == 0 {
        bail!("--tiles must be at least 1");
    }
    if cat.dataset(&o.name).await?.is_some() {
        bail!("dataset {} exists; `tessera datasets delete {}` first", o.name, o.name);
    }
    let (def, var) = definition(&o.name, o.resolution)?;
    let (ntx, nty) = def.grid.tile_counts(def.tile);
    let per_slice = ntx * nty;
    let templates = write_tiles(pool, &def, &var, ntx, nty).await?;
    let full = o.tiles / per_slice as u64;
    let rest = (o.tiles % per_slice as u64) as usize;
    let slices = full + u64::from(rest > 0);

    // The first slice as an ingest: it creates the dataset and variable.
    let first_tiles = if full == 0 { rest } else { per_slice };
    let first = slice(0);
    cat.commit_ingest(&IngestBatch {
        dataset: def.clone(),
        variables: vec![var.clone()],
        slices: vec![(var.name.clone(), Some(first.t))],
        times: vec![first.clone()],
        tiles: templates[..first_tiles].iter().map(|t| NewTile { time: Some(first.t), ..t.clone() }).collect(),
        replace: false,
        content_hashes: Default::default(),
    })
    .await
    .context("committing the first slice")?;
    let mut done = first_tiles as u64;
    progress(done);
    let per_commit = (ROWS_PER_COMMIT / per_slice).max(1) as u64;
    let mut k = 1;
    while k < full {
        let end = (k + per_commit).min(full);
        let batch = SyntheticBatch { dataset: def.clone(), variable: var.clone(), times: (k..end).map(slice).collect(), tiles: templates.clone() };
        cat.append_synthetic(&batch).await.with_context(|| format!("committing slices {k} to {}", end - 1))?;
        done += (end - k) * per_slice as u64;
        progress(done);
        k = end;
    }
    if rest > 0 && full > 0 {
        let batch = SyntheticBatch { dataset: def.clone(), variable: var.clone(), times: vec![slice(full)], tiles: templates[..rest].to_vec() };
        cat.append_synthetic(&batch).await.context("committing the last slice")?;
        done += rest as u64;
        progress(done);
    }
    Ok(SynthReport { slices, tiles: done, files: templates.len(), tiles_per_slice: per_slice })
}

/// Writes one slice's tile files, as an ingest writes them, under
/// the first slice's directory.
async fn write_tiles(pool: &Pool, def: &DatasetDef, var: &VariableDef, ntx: usize, nty: usize) -> anyhow::Result<Vec<NewTile>> {
    let (pool, def, var) = (pool.clone(), def.clone(), var.clone());
    crate::blocking::run("synth tiles", move || {
        let calendar = def.time.key_calendar()?;
        let mut out = Vec::with_capacity(ntx * nty);
        for ty in 0..nty {
            for tx in 0..ntx {
                let tile = TileIndex { tx, ty };
                let w = def.grid.tile_window(def.tile, tile);
                let data = ndarray::Array2::from_shape_fn((w.h, w.w), |(j, i)| value(def.grid.y.values[w.y + j], def.grid.x.values[w.x + i]));
                // Beside the first slice's tiles, as an ingest of it would
                // put them (fsck knows the place).
                let rel = crate::store::tile_rel_path(&def.name, calendar, &var.name, Some(Timestamp(FIRST_DAY_MS)), 1, tx as u32, ty as u32);
                let abs = pool.resolve(&rel)?;
                let spec = crate::store::tile::TileSpec {
                    dataset: &def,
                    var: &var,
                    time: Some(Timestamp(FIRST_DAY_MS)),
                    time_value: Some(0.0),
                    tile,
                    window: w,
                    overview: 1,
                    any_time: true,
                };
                let mut layout = None;
                let (abs, written) = crate::store::write_new(&abs, |tmp| {
                    crate::store::tile::write_tile(tmp, &spec, &TypedArray::F32(data.into_dyn()))?;
                    layout = crate::store::inspect::layout(tmp, &var.name)
                        .map_err(|message| crate::store::StoreError::Invalid { path: tmp.to_path_buf(), message })?
                        .map(|l| l.encode());
                    Ok(())
                })?;
                let name = abs.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
                out.push(NewTile {
                    variable: var.name.clone(),
                    time: None,
                    overview: 1,
                    tx: tx as u32,
                    ty: ty as u32,
                    path: format!("{dir}/{name}"),
                    bytes: written.bytes,
                    checksum: written.checksum,
                    layout,
                });
            }
        }
        Ok::<_, anyhow::Error>(out)
    })
    .await?
}

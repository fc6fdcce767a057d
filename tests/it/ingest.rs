//! Ingest through the library, against real catalogues and real files.

use crate::common::{self, files_under, source};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tessera::fsck::{FsckOptions, Problem, fsck};
use tessera::ingest::{IngestError, IngestOptions, ingest_file};
use tessera::model::*;
use tessera::store::Pool;
use tessera::store::tile::read_tile;

fn opts(name: &str, tile: usize) -> IngestOptions {
    let mut o = IngestOptions::new(DatasetName::parse(name).unwrap());
    o.tile = Some(TileShape::new(tile, tile).unwrap());
    o
}

/// The tile files the standard source must produce, computed from the
/// value functions alone.
pub fn expected_tiles(name: &str, spec: &source::Spec, tile: usize, vars: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // The full resolution (k = 1), then overview levels 2, 4, ... up to
    // the first that fits in one tile: level k holds cell (y * k, x * k).
    let mut levels = vec![1];
    while spec.nx.div_ceil(*levels.last().unwrap()) > tile || spec.ny.div_ceil(*levels.last().unwrap()) > tile {
        levels.push(levels.last().unwrap() * 2);
    }
    for k in levels {
        let (nx, ny) = (spec.nx.div_ceil(k), spec.ny.div_ceil(k));
        let level = if k > 1 { format!("_ovr{k}") } else { String::new() };
        for ty in 0..ny.div_ceil(tile) {
            for tx in 0..nx.div_ceil(tile) {
                let ys = ty * tile..((ty + 1) * tile).min(ny);
                let xs = tx * tile..((tx + 1) * tile).min(nx);
                let cells = || ys.clone().flat_map(|y| xs.clone().map(move |x| (y * k, x * k)));
                for t in 0..spec.nt {
                    let dir = format!("2010-01-{:02}T12-00-00.000", 1 + t + (spec.t0 - 0.5) as usize);
                    if vars.contains(&"sst") && !cells().all(|(y, x)| source::sst(t, y, x) == source::SST_FILL) {
                        out.insert(format!("{name}/{dir}/sst{level}_tile_x{tx}_y{ty}.nc"));
                    }
                    if vars.contains(&"chl") && !cells().all(|(y, x)| source::chl(t, y, x) == source::CHL_FILL) {
                        out.insert(format!("{name}/{dir}/chl{level}_tile_x{tx}_y{ty}.nc"));
                    }
                }
                if vars.contains(&"mask") && !cells().all(|(y, x)| source::mask(y, x) == source::MASK_FILL) {
                    out.insert(format!("{name}/static/mask{level}_tile_x{tx}_y{ty}.nc"));
                }
            }
        }
    }
    out
}

/// Reads every tile back with netCDF and compares it with the source;
/// an overview tile (`<var>_ovr<k>_tile_...`) with every `k`-th cell of it.
pub fn check_tiles_against_source(pool: &Path, spec: &source::Spec, tile: usize, files: &[String]) {
    tessera::store::tile::quiet_hdf5();
    for rel in files {
        let path = pool.join(rel);
        let file_name = Path::new(rel).file_name().unwrap().to_str().unwrap();
        let (var, rest) = file_name.split_once("_tile_x").unwrap();
        let (var, lvl) = match var.split_once("_ovr") {
            Some((v, k)) => (v, k.parse::<usize>().unwrap()),
            None => (var, 1),
        };
        let (nx, ny) = (spec.nx.div_ceil(lvl), spec.ny.div_ceil(lvl));
        // `..._y1.nc`, or `..._y1.2.nc` when the first name was taken.
        let rest = rest.trim_end_matches(".nc");
        let rest = rest.split_once('.').map_or(rest, |(r, _)| r);
        let (tx, ty) = rest.split_once("_y").unwrap();
        let (tx, ty): (usize, usize) = (tx.parse().unwrap(), ty.parse().unwrap());
        let k = if rel.contains("/static/") {
            None
        } else {
            let day: usize = rel.split('/').nth(1).unwrap()[8..10].parse().unwrap();
            Some(day - 1 - (spec.t0 - 0.5) as usize)
        };
        let (x0, y0) = (tx * tile, ty * tile);
        let (w, h) = (tile.min(nx - x0), tile.min(ny - y0));
        // Cells of the tile's grid, as full-resolution rows and columns.
        let rows = move || (y0..y0 + h).map(move |j| j * lvl);
        let cols = move || (x0..x0 + w).map(move |i| i * lvl);
        let f = netcdf::open(&path).unwrap();
        // Self-describing: coordinates of its window, attributes, globals.
        let lat: Vec<f32> = f.variable("lat").unwrap().get_values(..).unwrap();
        let lon: Vec<f32> = f.variable("lon").unwrap().get_values(..).unwrap();
        assert_eq!(lat, rows().map(|j| source::lat(spec, j)).collect::<Vec<_>>(), "{rel}");
        assert_eq!(lon, cols().map(|i| source::lon(spec, i)).collect::<Vec<_>>(), "{rel}");
        let g = |n: &str| f.attribute(n).unwrap().value().unwrap();
        if lvl > 1 {
            assert_eq!(g("tessera_overview"), netcdf::AttributeValue::Int(lvl as i32));
        }
        assert_eq!(g("tessera_tile_x"), netcdf::AttributeValue::Int(tx as i32));
        assert_eq!(g("tessera_tile_y"), netcdf::AttributeValue::Int(ty as i32));
        assert_eq!(g("Conventions"), netcdf::AttributeValue::Str("CF-1.8".into()));
        let v = f.variable(var).unwrap();
        match var {
            "sst" => {
                assert_eq!(v.dimensions().iter().map(|d| d.name()).collect::<Vec<_>>(), ["time", "lat", "lon"]);
                let t: Vec<f64> = f.variable("time").unwrap().get_values(..).unwrap();
                assert_eq!(t, vec![source::time_value(spec, k.unwrap())]);
                let got: Vec<f32> = v.get_values(..).unwrap();
                let want: Vec<f32> = rows().flat_map(|y| cols().map(move |x| source::sst(k.unwrap(), y, x))).collect();
                assert_eq!(got, want, "{rel}");
            }
            "chl" => {
                assert_eq!(v.vartype(), netcdf::types::NcVariableType::Int(netcdf::types::IntType::I16), "chl stays int16");
                assert_eq!(v.attribute("scale_factor").unwrap().value().unwrap(), netcdf::AttributeValue::Float(0.01));
                assert_eq!(v.attribute("add_offset").unwrap().value().unwrap(), netcdf::AttributeValue::Float(2.5));
                assert_eq!(v.attribute("_FillValue").unwrap().value().unwrap(), netcdf::AttributeValue::Short(source::CHL_FILL));
                let got: Vec<i16> = v.get_values(..).unwrap();
                let want: Vec<i16> = rows().flat_map(|y| cols().map(move |x| source::chl(k.unwrap(), y, x))).collect();
                assert_eq!(got, want, "{rel}");
            }
            "mask" => {
                assert_eq!(v.dimensions().iter().map(|d| d.name()).collect::<Vec<_>>(), ["lat", "lon"]);
                let got: Vec<u8> = v.get_values(..).unwrap();
                let want: Vec<u8> = rows().flat_map(|y| cols().map(move |x| source::mask(y, x))).collect();
                assert_eq!(got, want, "{rel}");
            }
            other => panic!("unexpected variable {other}"),
        }
    }
}

async fn standard_ingest(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.nc");
    let spec = source::Spec::default();
    source::write(&src, &spec);
    let cat = common::open(url).await;
    let pool = Pool::new(dir.path().join("pool"));
    let report = ingest_file(&cat, &pool, &src, &opts("acc", 256)).await.unwrap();
    let expected = expected_tiles("acc", &spec, 256, &["sst", "chl", "mask"]);
    let files = files_under(pool.root());
    assert_eq!(files.iter().cloned().collect::<BTreeSet<_>>(), expected, "exactly the expected tiles, in the layout");
    // 4 x 3 tiles per slice; the top-left tile of sst and chl and the last
    // column of mask are all fill. Overview levels 2 (2 x 2 tiles) and 4
    // (one tile) of every slice.
    assert_eq!(expected.len(), 3 * 11 + 3 * 11 + 9 + 7 * 5);
    assert_eq!(report.tiles_written + report.overview_tiles, expected.len());
    assert_eq!(report.overview_tiles, 7 * 5);
    assert_eq!(report.tiles_sparse, 3 + 3 + 3);
    assert_eq!(report.slices_written, 7);
    check_tiles_against_source(pool.root(), &spec, 256, &files);

    let d = cat.dataset(&DatasetName::parse("acc").unwrap()).await.unwrap().unwrap();
    assert_eq!((d.def.grid.nx(), d.def.grid.ny()), (800, 600));
    assert_eq!(d.def.grid.y.regular().unwrap().1.signum(), -1.0, "latitude kept descending");
    assert_eq!(d.stats.slice_count, 3);
    let overviews = expected.iter().filter(|f| f.contains("_ovr")).count() as u64;
    assert_eq!((d.stats.tile_count, d.stats.overview_tiles), (expected.len() as u64 - overviews, overviews));
    assert_eq!(d.def.time.units, "days since 2010-01-01 00:00:00");
    let slices: Vec<String> = cat.time_slices(d.id).await.unwrap().iter().map(|s| s.t.iso()).collect();
    assert_eq!(slices, ["2010-01-01T12:00:00.000Z", "2010-01-02T12:00:00.000Z", "2010-01-03T12:00:00.000Z"]);
    let vars = cat.variables(d.id).await.unwrap();
    let v = |n: &str| vars.iter().find(|v| v.def.name == n).unwrap().def.clone();
    assert_eq!((v("sst").dtype, v("sst").has_time), (DataType::F32, true));
    assert_eq!((v("chl").dtype, v("chl").has_time), (DataType::I16, true));
    assert_eq!((v("mask").dtype, v("mask").has_time), (DataType::U8, false));
    assert_eq!(v("chl").attrs.get_attr("scale_factor"), Some(&AttrValue::F32(vec![0.01])));
    assert_eq!(v("sst").attrs.get_attr("valid_range"), Some(&AttrValue::F32(vec![-5.0, 60.0])));
    assert_eq!(d.def.attrs.text_attr("history"), Some("written by the tessera tests"));
    let r = fsck(cat.as_ref(), &pool, &FsckOptions::default()).await.unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.tiles_checked, expected.len() as u64);

    // Re-running is a no-op: nothing rewritten, nothing duplicated.
    let before: Vec<(u64, i64)> = files.iter().map(|f| std::fs::metadata(pool.root().join(f)).map(|m| (m.ino(), m.mtime_nsec())).unwrap()).collect();
    let again = ingest_file(&cat, &pool, &src, &opts("acc", 256)).await.unwrap();
    assert_eq!((again.slices_written, again.slices_skipped, again.tiles_written), (0, 7, 0));
    let after: Vec<(u64, i64)> = files.iter().map(|f| std::fs::metadata(pool.root().join(f)).map(|m| (m.ino(), m.mtime_nsec())).unwrap()).collect();
    assert_eq!(before, after);
    let d2 = cat.dataset(&DatasetName::parse("acc").unwrap()).await.unwrap().unwrap();
    assert_eq!(d2.stats, d.stats);
}

#[tokio::test]
async fn standard_source_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    standard_ingest(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test]
async fn standard_source_postgres() {
    let Some(url) = common::postgres_url().await else { return };
    standard_ingest(&url).await;
}

#[tokio::test]
async fn standard_source_memory() {
    standard_ingest("memory:").await;
}

#[tokio::test]
async fn netcdf3_source_with_ascending_latitude_and_later_times() {
    let dir = tempfile::tempdir().unwrap();
    let cat = common::open("memory:").await;
    let pool = Pool::new(dir.path().join("pool"));
    let spec = source::Spec { nt: 2, ny: 300, nx: 280, descending: false, netcdf4: false, ..Default::default() };
    let src = dir.path().join("a.nc");
    source::write_vars(&src, &spec, &["sst", "chl"]);
    ingest_file(&cat, &pool, &src, &opts("asc", 128)).await.unwrap();
    // Two more days from a second file extend the time axis.
    let spec2 = source::Spec { t0: 2.5, ..spec.clone() };
    let src2 = dir.path().join("b.nc");
    source::write_vars(&src2, &spec2, &["sst", "chl"]);
    let r = ingest_file(&cat, &pool, &src2, &opts("asc", 128)).await.unwrap();
    assert_eq!(r.slices_written, 4);
    let d = cat.dataset(&DatasetName::parse("asc").unwrap()).await.unwrap().unwrap();
    assert!(d.def.grid.y.regular().unwrap().1 > 0.0, "ascending latitude kept");
    assert_eq!(d.stats.slice_count, 4);
    let files = files_under(pool.root());
    let mut expected = expected_tiles("asc", &spec, 128, &["sst", "chl"]);
    expected.extend(expected_tiles("asc", &spec2, 128, &["sst", "chl"]));
    assert_eq!(files.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let (first, second): (Vec<String>, Vec<String>) = files.into_iter().partition(|f| f.contains("-01T") || f.contains("-02T"));
    check_tiles_against_source(pool.root(), &spec, 128, &first);
    check_tiles_against_source(pool.root(), &spec2, 128, &second);
}

/// Every stored type, every tile encoding: values and types come back exactly.
#[tokio::test]
async fn every_type_in_every_tile_format() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("types.nc");
    let (ny, nx) = (45, 70);
    source::write_all_types(&src, ny, nx);
    let names = ["v_u8", "v_i8", "v_i16", "v_u16", "v_i32", "v_u32", "v_f32", "v_f64"];
    for (i, format) in [TileFormat::Nc4Deflate, TileFormat::Nc4, TileFormat::Nc3Offset64].into_iter().enumerate() {
        let cat = common::open("memory:").await;
        let pool = Pool::new(dir.path().join(format!("pool{i}")));
        let mut o = opts("types", 32);
        o.format = Some(format);
        o.time = Some(parse_user_time("2020-02-29T06:00:00Z").unwrap());
        let r = ingest_file(&cat, &pool, &src, &o).await.unwrap();
        assert_eq!(r.slices_written, 8);
        let d = cat.dataset(&DatasetName::parse("types").unwrap()).await.unwrap().unwrap();
        assert_eq!(d.def.format, format);
        assert_eq!(d.def.grid.crs.epsg, Some(32633));
        assert_eq!(d.def.grid.crs.grid_mapping.as_ref().unwrap().name, "crs");
        assert!(!d.def.grid.crs.is_geographic());
        let vars = cat.variables(d.id).await.unwrap();
        tessera::store::tile::quiet_hdf5();
        let srcf = netcdf::open(&src).unwrap();
        for name in names {
            let v = vars.iter().find(|v| v.def.name == name).unwrap();
            assert!(v.def.has_time, "--time makes {name} a time slice");
            let whole = tessera::store::tile::read_var(&src, &srcf.variable(name).unwrap(), v.def.dtype, &[0..ny, 0..nx]).unwrap();
            assert_eq!(whole.dtype().name(), &name[2..], "{name}");
            for (ty, tx) in [(0, 0), (1, 2), (0, 1)] {
                let rel = format!("types/2020-02-29T06-00-00.000/{name}_tile_x{tx}_y{ty}.nc");
                let tile = read_tile(&pool.root().join(&rel), &v.def).unwrap();
                let (y0, x0) = (ty * 32, tx * 32);
                let (h, w) = (32.min(ny - y0), 32.min(nx - x0));
                assert_eq!(tile.shape(), &[h, w]);
                let want: Vec<f64> = tessera::with_typed_array!(&whole, a => {
                    a.slice(ndarray::s![y0..y0 + h, x0..x0 + w]).iter().map(|&v| v as f64).collect()
                });
                let got = tile.to_f64_vec();
                assert_eq!(got.len(), want.len());
                for (g, e) in got.iter().zip(&want) {
                    assert!(g == e || (g.is_nan() && e.is_nan()), "{format} {rel}: {g} != {e}");
                }
                assert_eq!(tile.dtype(), v.def.dtype, "{format} {rel}");
            }
        }
        if format == TileFormat::Nc3Offset64 {
            let out = common::command("ncdump").args(["-k"]).arg(pool.root().join("types/2020-02-29T06-00-00.000/v_u16_tile_x0_y0.nc")).output().expect("ncdump");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "64-bit offset");
            let out = common::command("ncdump").args(["-h"]).arg(pool.root().join("types/2020-02-29T06-00-00.000/v_u16_tile_x0_y0.nc")).output().unwrap();
            assert!(String::from_utf8_lossy(&out.stdout).contains("v_u16:_Unsigned = \"true\""));
        }
    }
}

#[tokio::test]
async fn a_variable_added_later_writes_only_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let cat = common::open(&url).await;
    let pool = Pool::new(dir.path().join("pool"));
    let spec = source::Spec { nt: 2, ny: 400, nx: 420, ..Default::default() };
    let src = dir.path().join("s.nc");
    source::write(&src, &spec);
    let mut o = opts("later", 128);
    o.vars = vec!["sst".into()];
    ingest_file(&cat, &pool, &src, &o).await.unwrap();
    let before: Vec<(String, u64, i64, i64)> = files_under(pool.root())
        .into_iter()
        .map(|f| {
            let m = std::fs::metadata(pool.root().join(&f)).unwrap();
            (f, m.ino(), m.mtime(), m.mtime_nsec())
        })
        .collect();
    assert!(before.iter().all(|(f, ..)| f.contains("/sst_")));
    std::thread::sleep(std::time::Duration::from_millis(20));
    o.vars = vec!["chl".into()];
    let r = ingest_file(&cat, &pool, &src, &o).await.unwrap();
    assert_eq!(r.slices_written, 2);
    for (f, ino, mtime, nsec) in &before {
        let m = std::fs::metadata(pool.root().join(f)).unwrap();
        assert_eq!((m.ino(), m.mtime(), m.mtime_nsec()), (*ino, *mtime, *nsec), "{f} was rewritten");
    }
    let all = files_under(pool.root());
    let new: Vec<&String> = all.iter().filter(|f| !before.iter().any(|(b, ..)| b == *f)).collect();
    assert!(!new.is_empty() && new.iter().all(|f| f.contains("/chl_")), "{new:?} {all:?}");
    let d = cat.dataset(&DatasetName::parse("later").unwrap()).await.unwrap().unwrap();
    assert_eq!(cat.variables(d.id).await.unwrap().len(), 2);
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), expected_tiles("later", &spec, 128, &["sst", "chl"]));
}

#[tokio::test]
async fn a_grid_mismatch_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cat = common::open(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
    let pool = Pool::new(dir.path().join("pool"));
    let spec = source::Spec { nt: 1, ny: 200, nx: 200, ..Default::default() };
    let a = dir.path().join("a.nc");
    source::write(&a, &spec);
    ingest_file(&cat, &pool, &a, &opts("g", 128)).await.unwrap();
    let files = files_under(pool.root());
    let version = cat.dataset(&DatasetName::parse("g").unwrap()).await.unwrap().unwrap().version;
    for (bad, needle) in [
        (source::Spec { t0: 5.5, lon_shift: 0.05, ..spec.clone() }, "lon[0] is 100.05"),
        (source::Spec { t0: 5.5, nx: 201, ..spec.clone() }, "lon has 200 points in the dataset but 201"),
        (source::Spec { t0: 5.5, descending: false, ..spec.clone() }, "lat[0]"),
    ] {
        let b = dir.path().join("b.nc");
        source::write(&b, &bad);
        let err = ingest_file(&cat, &pool, &b, &opts("g", 128)).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IngestError::Mismatch { .. }), "{msg}");
        assert!(msg.contains(needle) && msg.contains("b.nc"), "{msg}");
        assert_eq!(files_under(pool.root()), files);
        assert_eq!(cat.dataset(&DatasetName::parse("g").unwrap()).await.unwrap().unwrap().version, version);
    }
    // A different tile size for an existing dataset is refused too.
    let err = ingest_file(&cat, &pool, &a, &opts("g", 64)).await.unwrap_err();
    assert!(err.to_string().contains("tile size 128x128"), "{err}");
}

#[tokio::test]
async fn an_interrupted_ingest_leaves_no_visible_partial_state() {
    for url in common::catalogue_urls(tempfile::tempdir().unwrap().keep().as_path()).await {
        let dir = tempfile::tempdir().unwrap();
        let cat = common::open(&url).await;
        let pool = Pool::new(dir.path().join("pool"));
        let spec = source::Spec { nt: 2, ny: 400, nx: 420, ..Default::default() };
        let src = dir.path().join("s.nc");
        source::write(&src, &spec);
        let name = DatasetName::parse("crash").unwrap();

        // A crash between the tile writes and the commit, on a new dataset...
        let mut o = opts("crash", 128);
        o.fail_before_commit = true;
        let err = ingest_file(&cat, &pool, &src, &o).await.unwrap_err();
        assert!(matches!(err, IngestError::Interrupted(_)));
        assert!(cat.dataset(&name).await.unwrap().is_none(), "{url}: no dataset appeared");
        let orphans = files_under(pool.root());
        assert!(!orphans.is_empty(), "the files were written before the failure");
        // ...leaves garbage that fsck sees and removes; nothing else is wrong.
        let r = fsck(cat.as_ref(), &pool, &FsckOptions { repair: true, ..Default::default() }).await.unwrap();
        assert!(r.problems.iter().all(|p| matches!(p, Problem::Orphan { removed: true, .. })), "{:?}", r.problems);
        assert!(!r.problems.is_empty());
        assert!(files_under(pool.root()).is_empty());

        // On an existing dataset: the catalogue stays as it was.
        let mut first = opts("crash", 128);
        first.vars = vec!["sst".into()];
        ingest_file(&cat, &pool, &src, &first).await.unwrap();
        let before = cat.dataset(&name).await.unwrap().unwrap();
        let mut second = opts("crash", 128);
        second.vars = vec!["chl".into()];
        second.fail_before_commit = true;
        ingest_file(&cat, &pool, &src, &second).await.unwrap_err();
        let after = cat.dataset(&name).await.unwrap().unwrap();
        assert_eq!((after.version, &after.stats), (before.version, &before.stats));
        assert_eq!(cat.variables(after.id).await.unwrap().len(), 1);
        let r = fsck(cat.as_ref(), &pool, &FsckOptions::default()).await.unwrap();
        assert!(r.has_problems());
        assert!(r.problems.iter().all(|p| matches!(p, Problem::Orphan { removed: false, path } if path.to_string_lossy().contains("chl_"))), "{:?}", r.problems);
        // Re-running completes the ingest. Its tiles take names of their
        // own: the crashed attempt's files are never mistaken for its own
        // (nor overwritten); they stay orphans until fsck removes them.
        second.fail_before_commit = false;
        let done = ingest_file(&cat, &pool, &src, &second).await.unwrap();
        assert_eq!(done.slices_written, 2);
        let r = fsck(cat.as_ref(), &pool, &FsckOptions { repair: true, ..Default::default() }).await.unwrap();
        assert!(r.problems.iter().all(|p| matches!(p, Problem::Orphan { removed: true, .. })), "{:?}", r.problems);
        let r = fsck(cat.as_ref(), &pool, &FsckOptions::default()).await.unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }
}

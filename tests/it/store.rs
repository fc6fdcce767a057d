//! One conformance suite, run against every tile store: the pool of NetCDF
//! files (in each tile format) and its in-memory twin. Tiles are named by
//! their keys; windows come back exactly; a missing tile is `Missing`, a
//! damaged or swapped one `Corrupt`, never data.

use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;
use tessera::model::*;
use tessera::store::memory::MemoryTiles;
use tessera::store::port::{Depth, TileError, TileKey, TileRef, TileStore};
use tessera::store::reader::PoolTiles;
use tessera::store::tile::{TileSpec, write_tile};
use tessera::store::{Pool, inspect, write_new};

const NY: usize = 12;
const NX: usize = 10;
const NZ: usize = 3;

fn def(format: TileFormat) -> DatasetDef {
    let axis = |name: &str, n: usize, units: &str| Axis {
        name: name.into(),
        dtype: DataType::F64,
        values: (0..n).map(|i| i as f64).collect(),
        attrs: vec![Attribute::text("units", units)],
    };
    DatasetDef {
        name: DatasetName::parse("conf").unwrap(),
        title: "store conformance".into(),
        attrs: vec![],
        grid: Grid { x: axis("lon", NX, "degrees_east"), y: axis("lat", NY, "degrees_north"), level: Some(axis("z", NZ, "m")), crs: Crs::default() },
        time: TimeAxis::default_axis(),
        tile: TileShape::new(NX, NY).unwrap(),
        format,
        deflate_level: 4,
        overviews: false,
        synthetic: false,
        aux: vec![],
        slice_aux: vec![],
    }
}

fn var(name: &str, dtype: DataType, has_level: bool) -> VariableDef {
    VariableDef { name: name.into(), dtype, has_time: true, has_level, attrs: vec![], kind: VarKind::Data }
}

/// Values that differ by tile, level, row and column.
fn values(seed: f64, shape: &[usize]) -> ArrayD<f32> {
    use ndarray::Dimension;
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let k: f64 = i.slice().iter().enumerate().map(|(d, &v)| v as f64 * 10f64.powi(d as i32)).sum();
        (seed + k) as f32
    })
}

fn key(variable: &str, time: i64) -> TileKey {
    TileKey { dataset: "conf".into(), variable: variable.into(), time: Some(time), overview: 1, tx: 0, ty: 0 }
}

/// Tiles of two variables (one with levels) at two times, in a store; the
/// catalogue rows naming them; and the arrays they hold.
struct Fixture {
    store: Arc<dyn TileStore>,
    rows: Vec<(TileRef, VariableDef, ArrayD<f32>)>,
    /// Puts the day-2 tile of `flat` in the place of the day-1 one.
    swap: Box<dyn Fn()>,
    /// Removes the day-2 tile of `deep`.
    remove: Box<dyn Fn()>,
}

fn tiles() -> Vec<(VariableDef, i64, ArrayD<f32>)> {
    vec![
        (var("flat", DataType::F32, false), 1000, values(1.0, &[NY, NX])),
        (var("flat", DataType::F32, false), 2000, values(500.0, &[NY, NX])),
        (var("deep", DataType::F32, true), 1000, values(-3.0, &[NZ, NY, NX])),
        (var("deep", DataType::F32, true), 2000, values(900.0, &[NZ, NY, NX])),
    ]
}

/// The pool's tiles, with their layouts recorded (read directly) or not
/// (read through libnetcdf).
fn pool_fixture(format: TileFormat, layouts: bool) -> (Fixture, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(dir.path());
    let def = def(format);
    let mut rows = Vec::new();
    for (v, t, data) in tiles() {
        let rel = format!("conf/{t}/{}_tile_x0_y0.nc", v.name);
        let spec = TileSpec {
            dataset: &def,
            var: &v,
            time: Some(Timestamp(t)),
            time_value: None,
            tile: TileIndex { tx: 0, ty: 0 },
            window: Window { x: 0, y: 0, w: NX, h: NY },
            overview: 1,
            any_time: false,
        };
        let typed = TypedArray::F32(data.clone());
        let (path, w) = write_new(&pool.root().join(&rel), |tmp| write_tile(tmp, &spec, &typed)).unwrap();
        let time_text = def.time.show(Timestamp(t));
        let layout = layouts.then(|| Arc::new(inspect::layout(&path, &v.name).unwrap().expect("a layout the direct reader reads")));
        rows.push((TileRef { key: key(&v.name, t), rel, bytes: w.bytes, checksum: w.checksum, time_text, layout }, v, data));
    }
    let root = dir.path().to_path_buf();
    let swap = Box::new(move || {
        std::fs::copy(root.join("conf/2000/flat_tile_x0_y0.nc"), root.join("conf/1000/flat_tile_x0_y0.nc")).unwrap();
    });
    let root = dir.path().to_path_buf();
    let remove = Box::new(move || std::fs::remove_file(root.join("conf/2000/deep_tile_x0_y0.nc")).unwrap());
    (Fixture { store: Arc::new(PoolTiles::new(pool, 4)), rows, swap, remove }, dir)
}

fn memory_fixture() -> Fixture {
    let store = Arc::new(MemoryTiles::default());
    let mut rows = Vec::new();
    for (v, t, data) in tiles() {
        let tile = store.insert(key(&v.name, t), TypedArray::F32(data.clone()));
        rows.push((tile, v, data));
    }
    let (s1, s2) = (store.clone(), store.clone());
    Fixture {
        store,
        rows,
        swap: Box::new(move || s1.swap(&key("flat", 1000), &key("flat", 2000))),
        remove: Box::new(move || s2.remove(&key("deep", 2000))),
    }
}

/// The suite. Every store must behave identically.
fn conformance(f: Fixture, name: &str) {
    let s = f.store.as_ref();
    for (tile, v, data) in &f.rows {
        s.check(tile, Depth::Size).unwrap_or_else(|e| panic!("{name}: {e}"));
        s.check(tile, Depth::Full).unwrap_or_else(|e| panic!("{name}: {e}"));
        let levels = v.has_level.then_some(0..NZ);
        let whole = s.read(tile, v, levels, 0..NY, 0..NX).unwrap();
        assert_eq!(whole, TypedArray::F32(data.clone()), "{name}: whole tile {:?}", tile.key);
        // A window, and one level of it.
        let (ys, xs) = (3..7, 2..9);
        let got = s.read(tile, v, v.has_level.then_some(1..2), ys.clone(), xs.clone()).unwrap();
        let want = if v.has_level {
            data.slice(ndarray::s![1..2, 3..7, 2..9]).to_owned().into_dyn()
        } else {
            data.slice(ndarray::s![3..7, 2..9]).to_owned().into_dyn()
        };
        assert_eq!(got, TypedArray::F32(want), "{name}: window of {:?}", tile.key);
        // Outside the tile: an error, not a panic.
        assert!(s.read(tile, v, v.has_level.then_some(0..1), 0..NY + 1, 0..1).is_err(), "{name}");
    }
    // A tile another tile replaced is not served.
    (f.swap)();
    let (tile, v, _) = &f.rows[0];
    let e = s.read(tile, v, None, 0..NY, 0..NX).unwrap_err();
    assert!(matches!(e, TileError::Corrupt(_)), "{name}: swapped tile: {e:?}");
    assert!(matches!(s.check(tile, Depth::Full), Err(TileError::Corrupt(_))), "{name}");
    // One the store lost is Missing.
    (f.remove)();
    let (tile, v, _) = &f.rows[3];
    assert_eq!(s.check(tile, Depth::Size), Err(TileError::Missing), "{name}");
    assert_eq!(s.read(tile, v, Some(0..1), 0..1, 0..1).unwrap_err(), TileError::Missing, "{name}");
    // The others are untouched.
    let (tile, v, data) = &f.rows[1];
    assert_eq!(s.read(tile, v, None, 0..NY, 0..NX).unwrap(), TypedArray::F32(data.clone()), "{name}");
}

#[test]
fn memory_tiles_conform() {
    conformance(memory_fixture(), "memory");
}

#[test]
fn pool_tiles_conform_in_every_format() {
    for format in [TileFormat::Nc4Deflate, TileFormat::Nc4, TileFormat::Nc3Offset64] {
        for layouts in [false, true] {
            let (f, _dir) = pool_fixture(format, layouts);
            conformance(f, &format!("{} (layouts recorded: {layouts})", format.name()));
        }
    }
}

/// Tiles of several chunks (partial edge chunks included) in every tile
/// format and value type: windows read through the recorded layout equal
/// windows read through libnetcdf, value for value.
#[test]
fn direct_reads_equal_library_reads_in_every_format_and_type() {
    let (ny, nx, nz) = (600usize, 520usize, 2usize);
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(dir.path());
    let store = PoolTiles::new(pool.clone(), 4);
    for format in [TileFormat::Nc4Deflate, TileFormat::Nc4, TileFormat::Nc3Offset64] {
        let mut def = def(format);
        let axis = |name: &str, n: usize| Axis { name: name.into(), dtype: DataType::F64, values: (0..n).map(|i| i as f64).collect(), attrs: vec![] };
        def.grid.x = axis("lon", nx);
        def.grid.y = axis("lat", ny);
        def.grid.level = Some(axis("z", nz));
        def.tile = TileShape::new(nx, ny).unwrap();
        for dtype in DataType::ALL {
            let v = var(&format!("v_{}", dtype.name()), dtype, true);
            let data = tessera::with_data_type!(dtype, T => {
                let is_int = !matches!(dtype, DataType::F32 | DataType::F64);
                TypedArray::from_vec((0..nz * ny * nx).map(|k| if is_int { (k * 7 % 113) as T } else { (k as f64 * 0.37 - 99.5) as T }).collect::<Vec<T>>())
            });
            let data = tessera::with_typed_array!(data, a => tessera::model::IntoTyped::typed(a.into_shape_with_order(IxDyn(&[nz, ny, nx])).unwrap()));
            let rel = format!("conf/{}/{}.nc", format.name(), v.name);
            let spec = TileSpec { dataset: &def, var: &v, time: Some(Timestamp(0)), time_value: None, tile: TileIndex { tx: 0, ty: 0 }, window: Window { x: 0, y: 0, w: nx, h: ny }, overview: 1, any_time: false };
            let (path, w) = write_new(&pool.root().join(&rel), |tmp| write_tile(tmp, &spec, &data)).unwrap();
            let layout = inspect::layout(&path, &v.name).unwrap().expect("a layout the direct reader reads");
            let library = TileRef { key: key(&v.name, 0), rel, bytes: w.bytes, checksum: w.checksum, time_text: def.time.show(Timestamp(0)), layout: None };
            let direct = TileRef { layout: Some(Arc::new(layout)), ..library.clone() };
            // Whole tile, corners, single values, and windows from a fixed
            // pseudo-random sequence.
            let mut windows = vec![(0..nz, 0..ny, 0..nx), (1..2, 599..600, 519..520), (0..1, 0..1, 0..1), (0..2, 250..262, 255..257)];
            let mut r = 12345u64;
            let mut next = |n: usize| {
                r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (r >> 33) as usize % n
            };
            for _ in 0..20 {
                let (z0, y0, x0) = (next(nz), next(ny), next(nx));
                windows.push((z0..z0 + 1 + next(nz - z0), y0..y0 + 1 + next(ny - y0), x0..x0 + 1 + next(nx - x0)));
            }
            for (zs, ys, xs) in windows {
                let a = store.read(&direct, &v, Some(zs.clone()), ys.clone(), xs.clone()).unwrap();
                let b = store.read(&library, &v, Some(zs.clone()), ys.clone(), xs.clone()).unwrap();
                assert_eq!(a, b, "{} {}: window {zs:?} {ys:?} {xs:?}", format.name(), dtype.name());
                assert_eq!(a.shape(), &[zs.len(), ys.len(), xs.len()]);
            }
            if format != TileFormat::Nc3Offset64 {
                let Some(l) = &direct.layout else { unreachable!() };
                assert!(matches!(l.storage, tessera::store::layout::Storage::Chunked { .. }), "NetCDF-4 tiles are chunked");
            }
        }
    }
}

/// Reads every tile of every dataset in a catalogue twice, through its
/// recorded layout and through libnetcdf, and compares the values; every
/// tile must have a layout. Returns the number of tiles compared.
pub fn every_tile_reads_the_same_both_ways(catalogue: &str, pool: &std::path::Path) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cat = rt.block_on(tessera::catalogue::open(catalogue, false)).unwrap();
    let store = PoolTiles::new(Pool::new(pool), 8);
    let mut n = 0;
    for d in rt.block_on(cat.datasets()).unwrap() {
        let vars = rt.block_on(cat.variables(d.id)).unwrap();
        let mut times: Vec<Option<Timestamp>> = rt.block_on(cat.time_slices(d.id)).unwrap().iter().map(|s| Some(s.t)).collect();
        times.push(None);
        for t in times {
            for rec in rt.block_on(cat.tiles_at(d.id, t)).unwrap() {
                let v = &vars.iter().find(|v| v.id == rec.variable_id).unwrap().def;
                let bytes = rec.layout.clone().unwrap_or_else(|| panic!("{}: tile {} has no layout", d.def.name, rec.path));
                let layout = tessera::store::layout::TileLayout::decode(&bytes).unwrap();
                let dims: Vec<usize> = layout.shape.iter().map(|&x| x as usize).collect();
                let (h, w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
                let levels = v.has_level.then(|| 0..dims[dims.len() - 3]);
                let library = TileRef {
                    key: TileKey { dataset: d.def.name.to_string(), variable: v.name.clone(), time: rec.time.map(|t| t.0), overview: rec.overview, tx: rec.tx, ty: rec.ty },
                    rel: rec.path.clone(),
                    bytes: rec.bytes,
                    checksum: rec.checksum.clone(),
                    time_text: rec.time.map_or_else(|| "static".to_string(), |x| d.def.time.show(x)),
                    layout: None,
                };
                let direct = TileRef { layout: Some(Arc::new(layout)), ..library.clone() };
                let a = store.read(&direct, v, levels.clone(), 0..h, 0..w).unwrap_or_else(|e| panic!("{}: {}: {e}", d.def.name, rec.path));
                let b = store.read(&library, v, levels, 0..h, 0..w).unwrap();
                // Bit for bit (NaN fill values compare unequal as numbers).
                let bits = |x: &TypedArray| x.to_f64_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert!(a.dtype() == b.dtype() && a.shape() == b.shape() && bits(&a) == bits(&b), "{}: {} reads differently through its layout", d.def.name, rec.path);
                n += 1;
            }
        }
    }
    n
}

/// A recorded layout that is not the file's own (two chunks swapped: both
/// inflate, to the wrong places) is refused when the tile is verified,
/// never read as values.
#[test]
fn a_layout_that_is_not_the_files_is_refused() {
    let (ny, nx) = (600usize, 520usize);
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(dir.path());
    let mut def = def(TileFormat::Nc4Deflate);
    let axis = |name: &str, n: usize| Axis { name: name.into(), dtype: DataType::F64, values: (0..n).map(|i| i as f64).collect(), attrs: vec![] };
    def.grid.x = axis("lon", nx);
    def.grid.y = axis("lat", ny);
    def.tile = TileShape::new(nx, ny).unwrap();
    let v = var("flat", DataType::F32, false);
    let data = values(7.0, &[ny, nx]);
    let spec = TileSpec { dataset: &def, var: &v, time: Some(Timestamp(1000)), time_value: None, tile: TileIndex { tx: 0, ty: 0 }, window: Window { x: 0, y: 0, w: nx, h: ny }, overview: 1, any_time: false };
    let rel = "conf/1000/flat_tile_x0_y0.nc".to_string();
    let (path, w) = write_new(&pool.root().join(&rel), |tmp| write_tile(tmp, &spec, &TypedArray::F32(data.clone()))).unwrap();
    let good = inspect::layout(&path, "flat").unwrap().unwrap();
    let mut bad = good.clone();
    let tessera::store::layout::Storage::Chunked { chunks, .. } = &mut bad.storage else { panic!("chunked") };
    chunks.swap(0, 1);
    let tile = |layout| TileRef { key: key("flat", 1000), rel: rel.clone(), bytes: w.bytes, checksum: w.checksum.clone(), time_text: def.time.show(Timestamp(1000)), layout };
    // A store that verified the file with its own layout still checks a
    // tile that names another.
    let store = PoolTiles::new(pool, 4);
    let whole = store.read(&tile(Some(Arc::new(good))), &v, None, 0..ny, 0..nx).unwrap();
    assert_eq!(whole, TypedArray::F32(data));
    let bad = tile(Some(Arc::new(bad)));
    let e = store.read(&bad, &v, None, 0..ny, 0..nx).unwrap_err();
    assert!(matches!(&e, TileError::Corrupt(m) if m.contains("recorded layout")), "{e:?}");
    assert!(matches!(store.check(&bad, Depth::Full), Err(TileError::Corrupt(_))));
    assert!(store.check_now(&bad, Depth::Full).is_none(), "never taken as verified");
}

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
use tessera::store::{Pool, write_new};

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
    TileKey { dataset: "conf".into(), variable: variable.into(), time: Some(time), tx: 0, ty: 0 }
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

fn pool_fixture(format: TileFormat) -> (Fixture, tempfile::TempDir) {
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
        };
        let typed = TypedArray::F32(data.clone());
        let (_, w) = write_new(&pool.root().join(&rel), |tmp| write_tile(tmp, &spec, &typed)).unwrap();
        let time_text = def.time.show(Timestamp(t));
        rows.push((TileRef { key: key(&v.name, t), rel, bytes: w.bytes, checksum: w.checksum, time_text }, v, data));
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
        let (f, _dir) = pool_fixture(format);
        conformance(f, format.name());
    }
}

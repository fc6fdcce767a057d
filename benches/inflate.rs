//! Inflating tile chunks on one core: libdeflate (what tessera uses) and
//! zlib-rs, on the same chunks, in one run.
//!
//! Writes a 1024 x 1024 float32 field (smooth, with noise, like the load
//! benchmark's source) twice as a 256 x 256-chunked, shuffled, deflate
//! level 4 variable: once through libnetcdf (HDF5 compresses with zlib)
//! and once as tessera writes tiles (libdeflate). The chunks are found
//! through their recorded layouts and inflated by both libraries.
//!
//! Run: `cargo bench --bench inflate`

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::Instant;
use tessera::model::*;
use tessera::store::layout::{Storage, TileLayout};

const N: usize = 1024;

fn field() -> Vec<f32> {
    let mut r = 42u64;
    (0..N * N)
        .map(|k| {
            let (y, x) = ((k / N) as f32, (k % N) as f32);
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = ((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2;
            280.0 + 10.0 * (x / 200.0).sin() * (y / 150.0).cos() + noise
        })
        .collect()
}

/// The raw chunks of `var` in a file, as its layout records them.
fn chunks(path: &std::path::Path, var: &str) -> (Vec<Vec<u8>>, usize) {
    let l: TileLayout = tessera::store::inspect::layout(path, var).unwrap().expect("a chunked layout");
    let Storage::Chunked { chunk, chunks, .. } = &l.storage else { panic!("chunked") };
    let want = chunk.iter().product::<u64>() as usize * usize::from(l.elem);
    let f = std::fs::File::open(path).unwrap();
    let raw = chunks
        .iter()
        .flatten()
        .map(|c| {
            let mut b = vec![0u8; c.size as usize];
            f.read_exact_at(&mut b, c.offset).unwrap();
            b
        })
        .collect();
    (raw, want)
}

fn measure(what: &str, raw: &[Vec<u8>], want: usize) {
    let total = (raw.len() * want) as f64;
    let mut best = (0.0f64, 0.0f64);
    for _ in 0..5 {
        let t = Instant::now();
        let mut d = libdeflater::Decompressor::new();
        for b in raw {
            let mut out = vec![0u8; want];
            assert_eq!(d.zlib_decompress(b, &mut out).unwrap(), want);
        }
        best.0 = best.0.max(total / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for b in raw {
            let mut out = Vec::with_capacity(want);
            flate2::read::ZlibDecoder::new(&b[..]).read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), want);
        }
        best.1 = best.1.max(total / t.elapsed().as_secs_f64());
    }
    println!("{what}: {} chunks, {:.0} MiB decoded; best of 5 on one core: libdeflate {:.0} MiB/s, zlib-rs {:.0} MiB/s", raw.len(), total / 1048576.0, best.0 / 1048576.0, best.1 / 1048576.0);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("inflate: bench");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let values = field();

    // Through libnetcdf: HDF5's deflate filter, with zlib.
    let by_library = dir.path().join("library.nc");
    {
        let mut f = netcdf::create(&by_library).unwrap();
        f.add_dimension("lat", N).unwrap();
        f.add_dimension("lon", N).unwrap();
        let mut v = f.add_variable::<f32>("sst", &["lat", "lon"]).unwrap();
        v.set_chunking(&[256, 256]).unwrap();
        v.set_compression(4, true).unwrap();
        v.put_values(&values, ..).unwrap();
        f.close().unwrap();
    }

    // As tessera writes a tile: chunks deflated with libdeflate.
    let axis = |name: &str| Axis { name: name.into(), dtype: DataType::F64, values: (0..N).map(|i| i as f64).collect(), attrs: vec![] };
    let def = DatasetDef {
        name: DatasetName::parse("bench").unwrap(),
        title: "inflate".into(),
        attrs: vec![],
        grid: Grid { x: axis("lon"), y: axis("lat"), level: None, crs: Crs::default() },
        time: TimeAxis::default_axis(),
        tile: TileShape::new(N, N).unwrap(),
        format: TileFormat::Nc4Deflate,
        deflate_level: 4,
        overviews: false,
        synthetic: false,
        aux: vec![],
        slice_aux: vec![],
    };
    let var = VariableDef { name: "sst".into(), dtype: DataType::F32, has_time: true, has_level: false, attrs: vec![], kind: VarKind::Data };
    let data = TypedArray::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[N, N]), values).unwrap());
    let spec = tessera::store::tile::TileSpec { dataset: &def, var: &var, time: Some(Timestamp(0)), time_value: None, tile: TileIndex { tx: 0, ty: 0 }, window: Window { x: 0, y: 0, w: N, h: N }, overview: 1, any_time: false };
    let (by_tessera, _) = tessera::store::write_new(&dir.path().join("tessera.nc"), |tmp| tessera::store::tile::write_tile(tmp, &spec, &data)).unwrap();

    let (raw, want) = chunks(&by_library, "sst");
    measure("chunks HDF5 deflated with zlib", &raw, want);
    let (raw, want) = chunks(&by_tessera, "sst");
    measure("chunks tessera deflated with libdeflate", &raw, want);
}

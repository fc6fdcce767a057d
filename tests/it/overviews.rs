//! Overviews: every 2^k-th cell from the origin, kept as tiles. A strided
//! request that a level answers is read from it, with exactly the values
//! of the full resolution; the CLI builds, reports, checks, replaces and
//! deletes them like any tile.

use crate::common::server::fixture;
use crate::common::{Cli, catalogue_urls, files_under, http_request, source};
use proptest::prelude::*;

/// The value of one Prometheus sample whose labels contain `labels`.
pub fn metric(base: &str, name: &str, labels: &str) -> f64 {
    let (status, _, body) = http_request("GET", &format!("{base}/metrics"), &[]);
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A strided read of `sst`, `chl` or `mask` of the fixture's `acc` dataset
/// (600 x 800, 256 x 256 tiles: levels 2 and 4) through netCDF-C, and the
/// source's values at the same cells.
fn strided(var: &str, t: usize, y: (usize, usize, usize), x: (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let f = fixture();
    tessera::store::tile::quiet_hdf5();
    let nc = netcdf::open(f.url("acc")).unwrap();
    let v = nc.variable(var).unwrap();
    let ext = (&[t, y.0, x.0][..], &[1, y.1, x.1][..], &[1isize, y.2 as isize, x.2 as isize][..]);
    let cells = (0..y.1).flat_map(|j| (0..x.1).map(move |i| (y.0 + j * y.2, x.0 + i * x.2)));
    match var {
        "sst" => (
            v.get_values::<f32, _>(ext).unwrap().into_iter().map(f64::from).collect(),
            cells.map(|(r, c)| f64::from(source::sst(t, r, c))).collect(),
        ),
        "chl" => (
            v.get_values::<i16, _>(ext).unwrap().into_iter().map(f64::from).collect(),
            cells.map(|(r, c)| f64::from(source::chl(t, r, c))).collect(),
        ),
        _ => {
            let ext = (&ext.0[1..], &ext.1[1..], &ext.2[1..]);
            (
                v.get_values::<u8, _>(ext).unwrap().into_iter().map(f64::from).collect(),
                cells.map(|(r, c)| f64::from(source::mask(r, c))).collect(),
            )
        }
    }
}

/// Equal, NaN included (the fill of `sst` is NaN in the missing tile).
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random requests that a level answers (starts and strides multiples
    /// of 2 or 4) are read from it and equal the source, cell for cell:
    /// the full-resolution values, fill (the missing top-left tile)
    /// included; every variable type, packed values packed.
    #[test]
    fn strided_requests_from_overviews_equal_the_source(
        var in prop::sample::select(vec!["sst", "chl", "mask"]),
        k in prop::sample::select(vec![2usize, 4]),
        t in 0usize..3,
        (ys, ym, yc) in (0usize..150, 1usize..5, 1usize..80),
        (xs, xm, xc) in (0usize..200, 1usize..5, 1usize..80),
    ) {
        let (y0, x0) = (ys * k % 600 / k * k, xs * k % 800 / k * k);
        let (sy, sx) = (ym * k, xm * k);
        let yc = yc.min((599 - y0) / sy + 1);
        let xc = xc.min((799 - x0) / sx + 1);
        prop_assume!(yc > 1 || xc > 1);
        let base = &fixture().base;
        let label = format!("overview=\"{k}\"");
        let before = metric(base, "tessera_array_reads_total", &label);
        let (got, want) = strided(var, t, (y0, yc, sy), (x0, xc, sx));
        prop_assert!(same(&got, &want), "{var}[{t}][{y0}:{sy}:..({yc})][{x0}:{sx}:..({xc})]");
        let after = metric(base, "tessera_array_reads_total", &label);
        // The largest level that divides the selection answers it.
        let best = if y0 % 4 == 0 && x0 % 4 == 0 && (yc == 1 || sy % 4 == 0) && (xc == 1 || sx % 4 == 0) { 4 } else { 2 };
        if best == k {
            prop_assert!(after > before, "level {k} read for {var} {y0}:{sy} {x0}:{sx}");
        }
    }
}

/// Selections a level does not answer exactly stay on the full resolution
/// (and are right there too).
#[test]
fn unaligned_strides_read_the_full_resolution() {
    let base = &fixture().base;
    for (y, x) in [((1, 50, 4), (0, 60, 4)), ((0, 40, 3), (2, 40, 4)), ((0, 300, 2), (0, 800, 1))] {
        let full = metric(base, "tessera_array_reads_total", "overview=\"1\"");
        let (got, want) = strided("sst", 1, y, x);
        assert!(same(&got, &want), "{y:?} {x:?}");
        assert!(metric(base, "tessera_array_reads_total", "overview=\"1\"") > full, "{y:?} {x:?} read at full resolution");
    }
}

/// Every stored type, fill patterns included (`types`, 45 x 70 cells in
/// 32 x 32 tiles: levels 2 and 4), and a variable with a vertical axis
/// (`levels`), read with strides through DAP2 ASCII and compared with the
/// full resolution's own answer read cell by cell.
#[test]
fn every_type_and_levels_through_overviews() {
    let f = fixture();
    let ascii = |url: String| {
        let (s, _, body) = http_request("GET", &url, &[]);
        assert_eq!(s, 200, "{url}");
        String::from_utf8(body).unwrap()
    };
    // One value per request: the full resolution, cell by cell.
    let cell = |ds: &str, var: &str, idx: &str| {
        let text = ascii(format!("{}.ascii?{var}{idx}", f.url(ds)));
        text.lines().last().unwrap().rsplit(", ").next().unwrap().to_string()
    };
    for var in ["v_u8", "v_i8", "v_i16", "v_u16", "v_i32", "v_u32", "v_f32", "v_f64"] {
        let (ys, xs) = ((0, 4, 44), (0, 8, 69));
        let text = ascii(format!("{}.ascii?{var}[0][{}:{}:{}][{}:{}:{}]", f.url("types"), ys.0, ys.1, ys.2, xs.0, xs.1, xs.2));
        let rows: Vec<Vec<String>> = text.lines().skip(2).map(|l| l.split(", ").skip(1).map(str::to_string).collect()).collect();
        for (j, row) in rows.iter().enumerate() {
            for (i, v) in row.iter().enumerate() {
                let want = cell("types", var, &format!("[0][{}][{}]", j * ys.1, i * xs.1));
                assert_eq!(v, &want, "{var} at row {} col {}", j * ys.1, i * xs.1);
            }
        }
    }
    let nc = netcdf::open(f.url("levels")).unwrap();
    let got: Vec<f32> = nc.variable("temp").unwrap().get_values((&[1, 0, 0, 2][..], &[1, 3, 13, 15][..], &[1isize, 1, 4, 4][..])).unwrap();
    let want: Vec<f32> = (0..3).flat_map(|z| (0..13).flat_map(move |j| (0..15).map(move |i| source::level_value(1, z, j * 4, 2 + i * 4)))).collect();
    // x starts at 2: level 2 answers (start and stride divisible by 2).
    assert_eq!(got, want);
}

/// Overviews at ingest by default, reported by `datasets show`, checked by
/// fsck, replaced with their slice and deleted with their dataset; a
/// dataset created without them serves the same values from the full
/// resolution and gets them from `overviews build`. Both catalogues.
#[tokio::test(flavor = "multi_thread")]
async fn overviews_through_the_cli_on_both_catalogues() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.nc");
    let spec = source::Spec::default();
    source::write(&src, &spec);
    for url in catalogue_urls(dir.path()).await {
        let data = tempfile::tempdir().unwrap();
        let cli = Cli::new(data.path(), &url);
        let s = src.to_str().unwrap();
        cli.ok(&["ingest", "--dataset", "with", "--tile-size", "128x128", s]);
        cli.ok(&["ingest", "--dataset", "without", "--tile-size", "128x128", "--no-overviews", s]);
        let show = cli.ok(&["datasets", "show", "with"]);
        let line = show.lines().find(|l| l.starts_with("overviews")).unwrap_or_default().to_string();
        assert!(line.starts_with("overviews   levels 2, 4, 8:"), "{show}");
        // 600 x 800 in 128-cell tiles: full resolution 5 x 7 tiles, levels
        // 3 x 4, 2 x 2, 1 x 1: a third more cells, and a little more in
        // bytes (file headers; every 2^k-th cell of a smooth field
        // deflates less well than the field).
        let pct: f64 = line.rsplit("(+").next().unwrap().trim_end_matches(" %)").parse().unwrap();
        assert!((25.0..60.0).contains(&pct), "{line}");
        let files = files_under(&cli.pool());
        assert!(files.iter().any(|f| f.starts_with("with/2010-01-01T12-00-00.000/sst_ovr8_tile_x0_y0.nc")), "{files:?}");
        assert!(!files.iter().any(|f| f.starts_with("without/") && f.contains("_ovr")), "{files:?}");
        assert!(cli.ok(&["datasets", "show", "without"]).contains("overviews   none"));
        let out = cli.ok(&["fsck", "--deep"]);
        assert!(out.contains("0 problems") && out.contains("overview tiles compared with the full resolution"), "{out}");
        // A dataset created without overviews keeps none until built.
        let e = cli.fails(&["ingest", "--dataset", "with", "--no-overviews", s]);
        assert!(e.contains("keeps overviews"), "{e}");

        let base = crate::common::server::start_server(data.path(), &url, &[]);
        let get = |u: String| {
            let (st, _, body) = http_request("GET", &u, &[]);
            assert_eq!(st, 200, "{u}");
            body
        };
        let ce = "sst%5b0:1:2%5d%5b0:8:599%5d%5b0:8:799%5d,chl%5b1%5d%5b16:16:599%5d%5b8:8:799%5d";
        let with = |d: &str| get(format!("{base}/dap/{d}.dods?{ce}"));
        let body = with("with");
        let data_at = |b: &[u8]| b.windows(6).position(|w| w == b"Data:\n").unwrap() + 6;
        let (a, b) = (with("with"), with("without"));
        assert_eq!(a[data_at(&a)..], b[data_at(&b)..], "the same values from the overview and the full resolution");
        assert_eq!(body, a);
        let reads8 = metric(&base, "tessera_array_reads_total", "overview=\"8\"");
        assert!(reads8 >= 2.0, "sst and chl read from level 8 ({reads8})");

        // `overviews build` makes what an ingest makes.
        let out = cli.ok(&["overviews", "build", "--dataset", "without"]);
        assert!(out.contains("overview levels 2, 4, 8 built for 7 slices"), "{out}");
        let show = cli.ok(&["datasets", "show", "without"]);
        let line2 = show.lines().find(|l| l.starts_with("overviews")).unwrap_or_default();
        assert_eq!(line2, line, "the same overviews as built at ingest");
        let b = with("without");
        assert_eq!(a[data_at(&a)..], b[data_at(&b)..]);
        assert!(metric(&base, "tessera_array_reads_total", "overview=\"8\"") >= reads8 + 2.0);

        // --replace retires the slice's overview tiles with its tiles and
        // writes new ones; the counts stay.
        let out = cli.ok(&["ingest", "--dataset", "with", "--replace", s]);
        assert!(out.contains("replaced"), "{out}");
        let show = cli.ok(&["datasets", "show", "with"]);
        assert_eq!(show.lines().find(|l| l.starts_with("overviews")).unwrap_or_default(), line);
        cli.ok(&["gc", "--grace-secs", "0"]);
        let out = cli.ok(&["fsck"]);
        assert!(out.contains("0 problems"), "{out}");
        let c = with("with");
        assert_eq!(a[data_at(&a)..], c[data_at(&c)..]);

        // A damaged overview tile is found by fsck and refused, never
        // served.
        // (Replaced tiles take new names: find them.)
        let files = files_under(&cli.pool());
        let find = |day: &str| files.iter().find(|f| f.starts_with(&format!("with/2010-01-0{day}T12-00-00.000/sst_ovr8_tile_x0_y0"))).unwrap().clone();
        let (victim, other) = (find("2"), find("3"));
        std::fs::copy(cli.pool().join(&other), cli.pool().join(&victim)).unwrap();
        let out = cli.run(&["fsck", "--dataset", "with"]);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&victim));
        let (st, _, body) = http_request("GET", &format!("{base}/dap/with.dods?sst%5b1%5d%5b0:8:599%5d%5b0:8:799%5d"), &[]);
        assert_eq!(st, 500, "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains(&victim));

        cli.ok(&["datasets", "delete", "--yes", "with"]);
        assert!(!files_under(&cli.pool()).iter().any(|f| f.starts_with("with/")));
    }
}

/// An overview tile that is a well-formed, correctly catalogued file but
/// not the full resolution's every k-th cell (what a faulty writer would
/// leave) passes every other check; `fsck --deep` finds it, and nothing in
/// a sound archive.
#[tokio::test(flavor = "multi_thread")]
async fn fsck_deep_finds_an_overview_that_is_not_the_full_resolution() {
    use tessera::fsck::{FsckOptions, Problem, fsck};
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.nc");
    source::write(&src, &source::Spec::default());
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let cat = crate::common::open(&url).await;
    let pool = tessera::store::Pool::new(dir.path().join("pool"));
    let mut o = tessera::ingest::IngestOptions::new(tessera::model::DatasetName::parse("acc").unwrap());
    o.tile = Some(tessera::model::TileShape::new(256, 256).unwrap());
    tessera::ingest::ingest_file(&cat, &pool, &src, &o).await.unwrap();
    let deep = FsckOptions { deep: true, ..Default::default() };
    let r = fsck(cat.as_ref(), &pool, &deep).await.unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // sst, chl: 3 slices x (4 + 1) overview tiles; mask: 5.
    assert_eq!(r.overviews_compared, 35);

    let rel = "acc/2010-01-02T12-00-00.000/sst_ovr4_tile_x0_y0.nc";
    let path = pool.root().join(rel);
    {
        tessera::store::tile::quiet_hdf5();
        let mut f = netcdf::append(&path).unwrap();
        f.variable_mut("sst").unwrap().put_value(1234.5f32, [0, 100, 100]).unwrap();
    }
    let w = tessera::store::checksum_file(&path).unwrap();
    let db = dir.path().join("c.db");
    let out = crate::common::command("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE tiles SET bytes = ?, checksum = ?, layout = NULL WHERE path = ?', (int(sys.argv[2]), sys.argv[3], sys.argv[4])); c.commit()"])
        .arg(&db)
        .arg(w.bytes.to_string())
        .arg(&w.checksum)
        .arg(rel)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = fsck(cat.as_ref(), &pool, &FsckOptions::default()).await.unwrap();
    assert!(!r.has_problems(), "the file is sound as a file: {:?}", r.problems);
    let r = fsck(cat.as_ref(), &pool, &deep).await.unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(matches!(&r.problems[0], Problem::Overview { tile, .. } if tile == rel), "{:?}", r.problems);
    assert!(r.problems[0].to_string().contains("not the full resolution's cells at every 4th row and column"), "{}", r.problems[0]);
}

//! A catalogue of archive size and replicas over one PostgreSQL.
//!
//! `tessera synth` makes the rows it says, on every catalogue, pointing
//! at one slice's files, which serve the synthetic field at every time and
//! which the store accepts only for a dataset marked synthetic. Two
//! `tessera serve` replicas over one PostgreSQL and one pool see a slice
//! ingested by a third process, a replacement and a delete within two
//! seconds, and a `.nc` download begun on one resumes on the other byte
//! for byte. The benchmark at 50 M rows is `benches/scale.py`.

use crate::common::{Cli, header, http_request};
use crate::ops::Server;
use std::time::{Duration, Instant};
use tessera::catalogue::{Catalogue, TileQuery, TimeSel};
use tessera::model::DatasetName;

fn get(base: &str, path: &str) -> (u16, String, String) {
    let (s, head, body) = http_request("GET", &format!("{base}{path}"), &[]);
    (s, head, String::from_utf8_lossy(&body).into_owned())
}

/// The last value of an ASCII response's data lines.
fn ascii_values(body: &str) -> Vec<f32> {
    body.lines().filter(|l| l.starts_with("tas.tas[")).flat_map(|l| l.split(", ").skip(1).map(|v| v.trim().parse::<f32>().unwrap())).collect()
}

/// 0.5 degree grid: 720 x 360, 3 x 2 tiles of 256 a slice; 100 rows are
/// 16 whole slices and 4 tiles of a 17th.
async fn synth_on(cat: &dyn Catalogue, pool: &tessera::store::Pool) {
    let name = DatasetName::parse("s").unwrap();
    let o = tessera::synth::SynthOptions { name: name.clone(), tiles: 100, resolution: 0.5 };
    let r = tessera::synth::synth(cat, pool, &o, |_| {}).await.unwrap();
    assert_eq!((r.tiles, r.slices, r.files, r.tiles_per_slice), (100, 17, 6, 6));
    let d = cat.dataset(&name).await.unwrap().unwrap();
    assert!(d.def.synthetic);
    assert_eq!((d.stats.slice_count, d.stats.tile_count), (17, 100));
    let slices = cat.time_slices(d.id).await.unwrap();
    assert_eq!(slices.len(), 17);
    assert_eq!(slices[16].value, Some(16.0));
    let var = cat.variables(d.id).await.unwrap().remove(0);
    let all = cat.tiles(&TileQuery { dataset_id: d.id, variable_id: var.id, overview: 1, time: TimeSel::Between(tessera::model::Timestamp(i64::MIN), tessera::model::Timestamp(i64::MAX)), ty: 0..2, tx: 0..3 }).await.unwrap();
    assert_eq!(all.len(), 100);
    let files: std::collections::BTreeSet<&str> = all.iter().map(|t| t.path.as_str()).collect();
    assert_eq!(files.len(), 6, "every slice's rows share one set of files");
    let last: Vec<(u32, u32)> = all.iter().filter(|t| t.time == Some(slices[16].t)).map(|t| (t.tx, t.ty)).collect();
    assert_eq!(last, [(0, 0), (1, 0), (2, 0), (0, 1)]);
    assert!(tessera::synth::synth(cat, pool, &o, |_| {}).await.unwrap_err().to_string().contains("exists"));
}

#[test]
fn synth_makes_the_rows_it_says_on_every_catalogue() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec!["memory:".to_string(), format!("sqlite://{}", dir.path().join("c.db").display())];
    urls.extend(rt.block_on(crate::common::postgres_url()));
    for (i, url) in urls.iter().enumerate() {
        rt.block_on(async {
            let cat = tessera::catalogue::open(url, true).await.unwrap();
            synth_on(cat.as_ref(), &tessera::store::Pool::new(dir.path().join(format!("pool{i}")))).await;
        });
    }
}

#[test]
fn synthetic_tiles_serve_the_field_at_every_time_and_only_for_their_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let cat = format!("sqlite://{}", db.display());
    let cli = Cli::new(dir.path(), &cat);
    let out = cli.ok(&["synth", "--dataset", "s", "--tiles", "100", "--resolution", "0.5"]);
    assert!(out.contains("s: 100 tile rows in 17 daily slices (6 tiles a slice, sharing 6 files)"), "{out}");
    assert!(cli.ok(&["fsck"]).contains("0 problems"));
    let srv = Server::start(dir.path(), &cat, &[]);
    let (s, _, dds) = get(&srv.base, "/dap/s.dds");
    assert_eq!(s, 200);
    assert!(dds.contains("Float32 tas[time = 17][lat = 360][lon = 720];"), "{dds}");
    // Cell (100, 200) of tile (0, 0) at every fourth day, the last one
    // included; cell (300, 600) of tile (2, 1), which the 17th day lacks.
    let (lat, lon) = (89.75 - 0.5 * 100.0, -179.75 + 0.5 * 200.0);
    let (s, _, body) = get(&srv.base, "/dap/s.ascii?tas%5B0:4:16%5D%5B100%5D%5B200%5D");
    assert_eq!(s, 200, "{body}");
    assert_eq!(ascii_values(&body), vec![tessera::synth::value(lat, lon); 5]);
    let (lat, lon) = (89.75 - 0.5 * 300.0, -179.75 + 0.5 * 600.0);
    let (_, _, body) = get(&srv.base, "/dap/s.ascii?tas%5B15:1:16%5D%5B300%5D%5B600%5D");
    assert_eq!(ascii_values(&body), vec![tessera::synth::value(lat, lon), -9999.0]);
    // A series too long for the slider's live labels: the page stays
    // small, and a date picks the map's step.
    let out = cli.ok(&["synth", "--dataset", "long", "--tiles", "2100", "--resolution", "10"]);
    assert!(out.contains("2100 tile rows in 2100 daily slices"), "{out}");
    let (s, _, page) = get(&srv.base, "/datasets/long?when=2003-01-01");
    assert_eq!(s, 200);
    assert!(!page.contains("data-times") && page.contains("name=\"when\""), "no live labels for 2100 steps");
    assert!(page.contains("TIME=2003-01-01T00%3A00%3A00.000Z"), "the map at the date asked for");
    assert!(page.len() < 400_000, "{} bytes", page.len());
    // A real slice ingested into a synthetic dataset: its tiles state their
    // own time, checked as anywhere, and serve the source's values.
    let src = dir.path().join("day100.nc");
    {
        let mut f = netcdf::create(&src).unwrap();
        f.add_dimension("time", 1).unwrap();
        f.add_dimension("lat", 18).unwrap();
        f.add_dimension("lon", 36).unwrap();
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", "days since 2000-01-01 00:00:00").unwrap();
        t.put_attribute("calendar", "standard").unwrap();
        t.put_values(&[2200.0], ..).unwrap();
        let mut la = f.add_variable::<f64>("lat", &["lat"]).unwrap();
        la.put_attribute("units", "degrees_north").unwrap();
        la.put_values(&(0..18).map(|j| 85.0 - 10.0 * j as f64).collect::<Vec<_>>(), ..).unwrap();
        let mut lo = f.add_variable::<f64>("lon", &["lon"]).unwrap();
        lo.put_attribute("units", "degrees_east").unwrap();
        lo.put_values(&(0..36).map(|i| -175.0 + 10.0 * i as f64).collect::<Vec<_>>(), ..).unwrap();
        let mut v = f.add_variable::<f32>("tas", &["time", "lat", "lon"]).unwrap();
        v.put_attribute("_FillValue", -9999.0f32).unwrap();
        v.put_attribute("units", "K").unwrap();
        v.put_values(&(0..18 * 36).map(|k| 200.0 + k as f32).collect::<Vec<_>>(), ..).unwrap();
    }
    cli.ok(&["ingest", "--dataset", "long", src.to_str().unwrap()]);
    let (s, _, body) = get(&srv.base, "/dap/long.ascii?tas%5B2100%5D%5B5%5D%5B7%5D");
    assert_eq!(s, 200, "{body}");
    assert_eq!(ascii_values(&body), vec![200.0 + (5 * 36 + 7) as f32]);
    let pool = dir.path().join("pool");
    let tile = crate::common::files_under(&pool).into_iter().find(|p| p.starts_with("long/2006-01-09")).expect("the ingested tile");
    let f = netcdf::open(pool.join(tile)).unwrap();
    assert_eq!(f.attribute("tessera_time").unwrap().value().unwrap(), netcdf::AttributeValue::Str("2006-01-09T00:00:00.000Z".into()));
    srv.terminate();

    // The same files for a dataset that is not synthetic: refused, as a
    // tile holding another time.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&cat).await.unwrap();
        sqlx::query("UPDATE datasets SET definition = json_remove(definition, '$.synthetic'), version = version + 1 WHERE name = 's'").execute(&mut c).await.unwrap();
    });
    let srv = Server::start(dir.path(), &cat, &[]);
    let (s, _, body) = get(&srv.base, "/dap/s.ascii?tas%5B3%5D%5B100%5D%5B200%5D");
    assert_eq!(s, 500, "{body}");
    assert!(body.contains("holds time any (synthetic) where 2000-01-04"), "{body}");
}

/// Polls `f` until it holds, for at most two seconds; the time it took.
fn within_two_seconds(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(2), "{what}: not within 2 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

#[test]
fn replicas_over_one_postgres_agree_within_two_seconds() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(cat) = rt.block_on(crate::common::postgres_url()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = |name: &str, t0: f64, shift: f64| {
        let p = dir.path().join(name);
        crate::common::source::write(&p, &crate::common::source::Spec { t0, lon_shift: shift, ..Default::default() });
        p.to_str().unwrap().to_string()
    };
    let (first, later) = (src("first.nc", 0.5, 0.0), src("later.nc", 3.5, 0.0));
    let cli = Cli::new(dir.path(), &cat);
    cli.ok(&["ingest", "--dataset", "acc", "--tile-size", "256x256", &first]);
    let a = Server::start(dir.path(), &cat, &[]);
    let b = Server::start(dir.path(), &cat, &[]);
    let steps = |base: &str| {
        let (s, _, dds) = get(base, "/dap/acc.dds");
        if s != 200 {
            return None;
        }
        dds.lines().find_map(|l| l.trim().strip_prefix("Float64 time[time = ").and_then(|r| r.strip_suffix("];")).and_then(|n| n.parse::<usize>().ok()))
    };
    assert_eq!((steps(&a.base), steps(&b.base)), (Some(3), Some(3)));
    // Documents about every dataset are kept while nothing changes.
    let caps = |base: &str| get(base, "/wms?SERVICE=WMS&REQUEST=GetCapabilities").2;
    let collections = |base: &str| get(base, "/stac/collections").2;
    assert!(!caps(&a.base).contains("2010-01-06T12:00:00") && !collections(&a.base).contains("2010-01-06T12:00:00"));
    assert_eq!(caps(&a.base), caps(&a.base));

    // A new slice, ingested by a third process.
    cli.ok(&["ingest", "--dataset", "acc", &later]);
    let took = within_two_seconds("the new slices on both replicas", || steps(&a.base) == Some(6) && steps(&b.base) == Some(6));
    eprintln!("new slices on both replicas after {:.3} s", took.as_secs_f64());
    // ... and made again when one does.
    within_two_seconds("the new slices in the WMS capabilities and STAC collections", || {
        caps(&a.base).contains("2010-01-06T12:00:00") && collections(&a.base).contains("2010-01-06T12:00:00Z")
    });

    // Responses are the same bytes with the same validators everywhere.
    let ce = "/dap/acc.nc?sst%5B0:1:5%5D%5B0:1:599%5D%5B0:1:799%5D";
    let (sa, ha, full) = http_request("GET", &format!("{}{ce}", a.base), &[]);
    let (sb, hb, other) = http_request("GET", &format!("{}{ce}", b.base), &[]);
    assert_eq!((sa, sb), (200, 200));
    assert_eq!(full, other, "the replicas send the same file");
    let etag = header(&ha, "etag").unwrap().to_string();
    assert_eq!(header(&hb, "etag"), Some(etag.as_str()));
    assert_eq!(header(&ha, "last-modified"), header(&hb, "last-modified"));
    // A download begun on one replica and resumed on the other.
    let half = full.len() / 2;
    let (s, _, head_part) = http_request("GET", &format!("{}{ce}", a.base), &[("Range", &format!("bytes=0-{}", half - 1))]);
    assert_eq!(s, 206);
    let (s, h, tail) = http_request("GET", &format!("{}{ce}", b.base), &[("Range", &format!("bytes={half}-")), ("If-Range", &etag)]);
    assert_eq!(s, 206, "{h}");
    assert_eq!([head_part, tail].concat(), full, "the resumed download is byte for byte the whole file");

    // A replacement: both serve the new values.
    let point = "/dap/acc.ascii?sst%5B0%5D%5B300%5D%5B400%5D";
    let before = get(&a.base, point).2;
    let shifted = src("shifted.nc", 0.5, 0.0);
    // Same grid and times, other values: the source written again with a
    // different time origin would move the slices, so its values are
    // changed in place.
    {
        let mut f = netcdf::append(&shifted).unwrap();
        let mut v = f.variable_mut("sst").unwrap();
        let vals: Vec<f32> = v.get_values::<f32, _>(..).unwrap().into_iter().map(|x| if x == -999.0 { x } else { x + 1.0 }).collect();
        v.put_values(&vals, ..).unwrap();
    }
    cli.ok(&["ingest", "--dataset", "acc", "--replace", &shifted]);
    let took = within_two_seconds("the replacement on both replicas", || {
        let (x, y) = (get(&a.base, point).2, get(&b.base, point).2);
        x != before && x == y
    });
    eprintln!("replacement on both replicas after {:.3} s", took.as_secs_f64());
    // The download's validator moved with it: resuming the old download
    // now sends the whole new file, not a mix.
    let (s, _, _) = http_request("GET", &format!("{}{ce}", b.base), &[("Range", &format!("bytes={half}-")), ("If-Range", &etag)]);
    assert_eq!(s, 200, "an If-Range of the old version gets the whole new file");

    // A delete: both answer 404.
    cli.ok(&["datasets", "delete", "acc", "--yes"]);
    let took = within_two_seconds("the delete on both replicas", || get(&a.base, "/dap/acc.dds").0 == 404 && get(&b.base, "/dap/acc.dds").0 == 404);
    eprintln!("delete on both replicas after {:.3} s", took.as_secs_f64());
    assert_eq!(get(&b.base, point).0, 404);
}

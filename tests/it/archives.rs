//! Real archives, served exactly.
//!
//! `tests/archives/sources.py` writes sources shaped like the archives
//! people run (legacy-CDS ERA5 with per-file packing on 4 pressure levels,
//! CMIP6 noleap with bounds and `_FillValue = missing_value = 1e20`,
//! CMIP5 360_day in "months since", NSIDC polar stereographic EPSG:3413
//! with 2-D lat/lon and a `crs`, an N48 Gaussian grid, float64
//! 30-arc-second cell centres). Each is ingested one file at a time into a
//! running server, on SQLite and on PostgreSQL; files that must be refused
//! (t in degC, values beyond a packed dataset's range) are refused with one
//! line; `tests/archives/compare.py` then reads the dataset with xarray over
//! DAP2 and as a `.nc` download and compares it with xarray on the sources
//! (`use_cftime=True`): data within the stated quantisation error,
//! coordinates, times and bounds bit for bit, auxiliary coordinates and
//! key attributes present and equal. Corrected files are re-ingested with
//! `--replace` and checked again, untouched slices included.
//!
//! A second test replaces a slice while a slow client is half way through
//! reading it: the reader gets the old values to the end, later requests
//! the new ones, under a new ETag.

use crate::common::{self, Cli, command, http_request};
use std::io::{Read, Write};
use std::path::Path;

fn python(args: &[&str]) -> (bool, String) {
    let out = command("python3").args(args).env("PYTHONWARNINGS", "ignore").output().expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn script(name: &str) -> String {
    format!("{}/tests/archives/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Ingests every dataset of the manifest into a running server over
/// `catalogue` and checks it with xarray, then applies the replacements.
fn real_archives(catalogue: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let (ok, out) = python(&[&script("sources.py"), src.to_str().unwrap()]);
    assert!(ok, "sources.py failed: {out}");
    let manifest_path = src.join("manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let data = dir.path().join("data");
    let cli = Cli::new(&data, catalogue);
    cli.ok(&["migrate"]);
    let base = common::server::start_server(&data, catalogue, &[]);
    let compare = |name: &str, extra: &[&str]| {
        let mut args = vec![script("compare.py"), "--manifest".into(), manifest_path.to_str().unwrap().into()];
        args.extend(["--base".into(), base.clone(), "--dataset".into(), name.into(), "--nc".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = python(&args);
        assert!(ok, "{catalogue}: {name} {extra:?} differs from its sources:\n{out}");
        eprintln!("{name} {extra:?}: {}", out.lines().last().unwrap_or(""));
    };
    let path = |f: &str| src.join(f).to_str().unwrap().to_string();
    let datasets = manifest["datasets"].as_array().unwrap();
    assert!(datasets.len() >= 6, "the manifest covers the archives of the issue");
    for d in datasets {
        let name = d["name"].as_str().unwrap();
        let args = strs(&d["ingest_args"]);
        for f in strs(&d["files"]) {
            let mut a: Vec<String> = vec!["ingest".into(), "--dataset".into(), name.into()];
            a.extend(args.iter().cloned());
            a.extend(["--".into(), path(&f)]);
            cli.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
        }
        for r in d["refused"].as_array().into_iter().flatten() {
            let f = r["file"].as_str().unwrap();
            let mut a: Vec<String> = vec!["ingest".into(), "--dataset".into(), name.into()];
            a.extend(args.iter().cloned());
            a.extend(["--".into(), path(f)]);
            let err = cli.fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
            let reason = r["reason_contains"].as_str().unwrap();
            assert!(err.contains(reason) && err.trim().lines().count() == 1, "{name}: {f} refused without {reason:?} on one line: {err}");
            assert!(err.contains("variable "), "{name}: the refusal names the variable: {err}");
        }
        compare(name, &[]);
    }
    for d in datasets {
        let Some(r) = d["replace"].as_object() else { continue };
        let name = d["name"].as_str().unwrap();
        let before = http_request("GET", &format!("{base}/dap/{name}.dds"), &[]);
        let mut a: Vec<String> = vec!["ingest".into(), "--dataset".into(), name.into()];
        a.extend(strs(&d["ingest_args"]));
        a.extend(strs(&r["ingest_args"]));
        a.extend(["--".into(), path(r["file"].as_str().unwrap())]);
        let out = cli.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.contains("replaced"), "{out}");
        let after = http_request("GET", &format!("{base}/dap/{name}.dds"), &[]);
        assert_ne!(common::header(&before.1, "etag"), common::header(&after.1, "etag"), "{name}: a replacement changes the ETag");
        compare(name, &["--expect-corrected"]);
    }
    let out = cli.ok(&["fsck"]);
    assert!(out.contains("0 problems"), "{out}");
    let n = crate::store::every_tile_reads_the_same_both_ways(catalogue, &cli.pool());
    assert!(n > 50, "{n} tiles compared");
    eprintln!("{catalogue}: {n} tiles read the same through their layouts and through libnetcdf");
}

#[test]
fn real_archives_are_served_exactly_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    real_archives(&format!("sqlite://{}", dir.path().join("catalogue.db").display()));
}

#[test]
fn real_archives_are_served_exactly_from_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(url) = rt.block_on(common::postgres_url()) else { return };
    real_archives(&url);
}

/// A single-variable source: `v(time=1, lat, lon)` float32 of
/// `base + y + x / 10000`.
fn write_plane(path: &Path, ny: usize, nx: usize, base: f32) {
    tessera::store::tile::quiet_hdf5();
    let mut f = netcdf::create_with(path, netcdf::Options::_64BIT_OFFSET).unwrap();
    f.add_dimension("time", 1).unwrap();
    f.add_dimension("lat", ny).unwrap();
    f.add_dimension("lon", nx).unwrap();
    let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
    t.put_attribute("units", "days since 2000-01-01").unwrap();
    t.put_attribute("calendar", "noleap").unwrap();
    let mut lat = f.add_variable::<f64>("lat", &["lat"]).unwrap();
    lat.put_attribute("units", "degrees_north").unwrap();
    let mut lon = f.add_variable::<f64>("lon", &["lon"]).unwrap();
    lon.put_attribute("units", "degrees_east").unwrap();
    let mut v = f.add_variable::<f32>("v", &["time", "lat", "lon"]).unwrap();
    v.put_attribute("_FillValue", -999f32).unwrap();
    f.enddef().unwrap();
    f.variable_mut("time").unwrap().put_values(&[59.5f64], ..).unwrap();
    let lats: Vec<f64> = (0..ny).map(|j| 80.0 - j as f64 * 0.05).collect();
    let lons: Vec<f64> = (0..nx).map(|i| i as f64 * 0.05).collect();
    f.variable_mut("lat").unwrap().put_values(&lats, ..).unwrap();
    f.variable_mut("lon").unwrap().put_values(&lons, ..).unwrap();
    let values: Vec<f32> = (0..ny * nx).map(|k| base + (k / nx) as f32 + (k % nx) as f32 / 10000.0).collect();
    f.variable_mut("v").unwrap().put_values(&values, ..).unwrap();
}

/// The float32 values of a `.dods` body of one array.
fn dods_floats(body: &[u8]) -> Vec<f32> {
    let at = body.windows(6).position(|w| w == b"Data:\n").expect("a .dods body") + 6;
    let n = u32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
    body[at + 8..at + 8 + 4 * n].chunks_exact(4).map(|c| f32::from_be_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn a_replacement_never_mixes_old_and_new_values_in_a_response() {
    let dir = tempfile::tempdir().unwrap();
    let (ny, nx) = (2000, 2400); // 19.2 MB of float32: far more than the buffers between producer and client
    let (old, new) = (dir.path().join("old.nc"), dir.path().join("new.nc"));
    write_plane(&old, ny, nx, 0.0);
    write_plane(&new, ny, nx, 5000.0);
    let data = dir.path().join("data");
    let cli = Cli::new(&data, &format!("sqlite://{}", data.join("c.db").display()));
    cli.ok(&["ingest", "--dataset", "plane", "--tile-size", "400x400", "--tile-format", "nc3-64bit", old.to_str().unwrap()]);
    let base = common::server::start_server(&data, &cli.catalogue, &[]);
    let url = format!("{base}/dap/plane");
    let etag_before = common::header(&http_request("GET", &format!("{url}.dds"), &[]).1, "etag").map(str::to_string);

    // A slow client: it reads the first bytes of the whole slice, then waits.
    let host = base.strip_prefix("http://").unwrap();
    let mut slow = std::net::TcpStream::connect(host).unwrap();
    write!(slow, "GET /dap/plane.dods?v HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = vec![0u8; 64 << 10];
    slow.read_exact(&mut body).unwrap();

    // The slice is replaced under it; the grace period keeps the old files.
    let out = cli.ok(&["ingest", "--dataset", "plane", "--replace", new.to_str().unwrap()]);
    assert!(out.contains("1 slices written (1 replaced)"), "{out}");
    let out = cli.ok(&["gc"]);
    assert!(out.contains("0 retired tile files removed") && out.contains("still within their grace period"), "{out}");

    // A request after the commit sees the new values, under a new ETag.
    let (status, head, fresh) = http_request("GET", &format!("{url}.dods?v[0][0:1:1][0:1:2]"), &[]);
    assert_eq!(status, 200);
    let value = |base: f32, y: usize, x: usize| base + y as f32 + x as f32 / 10000.0;
    let want: Vec<f32> = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)].iter().map(|&(y, x)| value(5000.0, y, x)).collect();
    assert_eq!(dods_floats(&fresh), want);
    assert_ne!(common::header(&head, "etag").map(str::to_string), etag_before, "the ETag follows the replacement");

    // The slow reader gets every old value, to the end.
    slow.read_to_end(&mut body).unwrap();
    let split = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(String::from_utf8_lossy(&body[..split]).starts_with("HTTP/1.1 200"));
    let raw = &body[split + 4..];
    assert!(!String::from_utf8_lossy(&body[..split]).to_lowercase().contains("transfer-encoding: chunked"));
    let values = dods_floats(raw);
    assert_eq!(values.len(), ny * nx, "the whole slice arrived");
    let wrong = values.iter().enumerate().filter(|(k, v)| **v != value(0.0, k / nx, k % nx)).count();
    assert_eq!(wrong, 0, "a response that began before the replacement is old from its first value to its last");

    // Once the grace period is over the old files go; nothing else does.
    let out = cli.ok(&["gc", "--grace-secs", "0"]);
    // The replaced slices' 30 tiles and their 14 overview tiles.
    assert!(out.contains("44 retired tile files removed"), "{out}");
    let out = cli.ok(&["fsck"]);
    assert!(out.contains("0 problems"), "{out}");
    let (status, _, fresh) = http_request("GET", &format!("{url}.dods?v[0][1999:1:1999][2399:1:2399]"), &[]);
    assert_eq!((status, dods_floats(&fresh)), (200, vec![value(5000.0, 1999, 2399)]));
}

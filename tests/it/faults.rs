//! Faults that once lost committed data or served wrong values: each test
//! reproduces one, on every catalogue where it applies.

use crate::common::{self, Cli, http_request, source};
use crate::ingest::{check_tiles_against_source, expected_tiles};
use std::collections::BTreeSet;
use std::process::{Child, Stdio};

fn spawn(cli: &Cli, args: &[&str]) -> Child {
    common::command(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_DATA_DIR", &cli.data_dir)
        .env("TESSERA_CATALOGUE", &cli.catalogue)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Every tile the catalogue names, pool-relative.
async fn catalogued(url: &str, name: &str) -> Vec<String> {
    let cat = common::open(url).await;
    let d = cat.dataset(&tessera::model::DatasetName::parse(name).unwrap()).await.unwrap().unwrap();
    let mut out = Vec::new();
    let mut times: Vec<Option<tessera::model::Timestamp>> = cat.time_slices(d.id).await.unwrap().into_iter().map(|s| Some(s.t)).collect();
    times.push(None);
    for t in times {
        out.extend(cat.tiles_at(d.id, t).await.unwrap().into_iter().map(|r| r.path));
    }
    out.sort();
    out
}

/// The file names the catalogue gives, with any `.N` a writer took
/// because the first name was in use dropped: what `expected_tiles` lists.
fn plain(paths: &[String]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| {
            let (dir, file) = p.rsplit_once('/').unwrap();
            let stem = file.trim_end_matches(".nc");
            format!("{dir}/{}.nc", stem.split_once('.').map_or(stem, |(s, _)| s))
        })
        .collect()
}

/// Two ingests of the same file at once, and two files sharing a static
/// variable into a new dataset at once: both succeed (the second waits for
/// the first and skips what it added), nothing is lost, fsck is clean and
/// every catalogued tile equals its source.
async fn concurrent_ingests(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), url);
    cli.ok(&["migrate"]);
    let spec_a = source::Spec { nt: 2, ny: 300, nx: 420, ..Default::default() };
    let spec_b = source::Spec { t0: 2.5, ..spec_a.clone() };
    let (a, b) = (dir.path().join("a.nc"), dir.path().join("b.nc"));
    source::write(&a, &spec_a);
    source::write(&b, &spec_b);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for round in 0..3 {
        let same = format!("same{round}");
        let shared = format!("shared{round}");
        let args = |name: &str, file: &str| vec!["ingest".to_string(), "--dataset".into(), name.into(), "--tile-size".into(), "128x128".into(), file.into()];
        let run = |x: Vec<String>| spawn(&cli, &x.iter().map(String::as_str).collect::<Vec<_>>());
        let children = [run(args(&same, a)), run(args(&same, a)), run(args(&shared, a)), run(args(&shared, b))];
        for c in children {
            let (ok, out) = finish(c);
            assert!(ok, "{url} round {round}: a concurrent ingest failed: {out}");
        }
        let fsck = cli.ok(&["fsck"]);
        assert!(fsck.contains(" 0 problems"), "{url} round {round}: {fsck}");
        let tiles = catalogued(url, &same).await;
        assert_eq!(plain(&tiles), expected_tiles(&same, &spec_a, 128, &["sst", "chl", "mask"]), "{url} round {round}");
        check_tiles_against_source(&cli.pool(), &spec_a, 128, &tiles);
        let tiles = catalogued(url, &shared).await;
        let mut want = expected_tiles(&shared, &spec_a, 128, &["sst", "chl", "mask"]);
        want.extend(expected_tiles(&shared, &spec_b, 128, &["sst", "chl", "mask"]));
        assert_eq!(plain(&tiles), want, "{url} round {round}: both files' slices and one mask");
        let (first, second): (Vec<String>, Vec<String>) = tiles.into_iter().partition(|f| f.contains("-01T") || f.contains("-02T") || f.contains("/static/"));
        check_tiles_against_source(&cli.pool(), &spec_a, 128, &first);
        check_tiles_against_source(&cli.pool(), &spec_b, 128, &second);
    }
}

#[tokio::test]
async fn concurrent_ingests_never_lose_data_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_ingests(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test]
async fn concurrent_ingests_never_lose_data_on_postgres() {
    let Some(url) = common::postgres_url().await else { return };
    concurrent_ingests(&url).await;
}

/// `fsck --repair` run again and again while an ingest writes: it never
/// removes a file the ingest then commits.
async fn repair_racing_an_ingest(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), url);
    cli.ok(&["migrate"]);
    let spec = source::Spec { nt: 3, ny: 600, nx: 800, ..Default::default() };
    let src = dir.path().join("s.nc");
    source::write(&src, &spec);
    for (round, format) in ["nc4-deflate", "nc3-64bit"].into_iter().enumerate() {
        let name = format!("race{round}");
        let ingest = spawn(&cli, &["ingest", "--dataset", &name, "--tile-size", "100x100", "--tile-format", format, src.to_str().unwrap()]);
        let mut repairs = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(60) {
            let (_, out) = finish(spawn(&cli, &["fsck", "--repair", "--quick"]));
            assert!(!out.contains("missing"), "{url}: {out}");
            repairs += 1;
            if cli.ok(&["datasets", "list"]).contains(&name) {
                break;
            }
        }
        let (ok, out) = finish(ingest);
        assert!(ok, "{url}: the ingest failed under fsck --repair: {out}");
        assert!(repairs >= 1, "fsck ran during the ingest");
        let fsck = cli.ok(&["fsck"]);
        assert!(fsck.contains(" 0 problems"), "{url}: {fsck}");
        let tiles = catalogued(url, &name).await;
        assert_eq!(plain(&tiles), expected_tiles(&name, &spec, 100, &["sst", "chl", "mask"]));
        check_tiles_against_source(&cli.pool(), &spec, 100, &tiles);
    }
}

#[tokio::test]
async fn fsck_repair_never_removes_what_an_ingest_will_commit_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    repair_racing_an_ingest(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test]
async fn fsck_repair_never_removes_what_an_ingest_will_commit_on_postgres() {
    let Some(url) = common::postgres_url().await else { return };
    repair_racing_an_ingest(&url).await;
}

/// Damages one tile file in place: `swap` puts another slice's tile there,
/// `truncate` cuts it in half, `flip` inverts one byte in the middle.
fn damage(path: &std::path::Path, other: &std::path::Path, how: &str) {
    match how {
        "swap" => {
            std::fs::copy(other, path).unwrap();
        }
        "truncate" => {
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(f.metadata().unwrap().len() / 2).unwrap();
        }
        "flip" => {
            let mut bytes = std::fs::read(path).unwrap();
            let i = bytes.len() * 3 / 4;
            bytes[i] ^= 0xff;
            std::fs::write(path, bytes).unwrap();
        }
        other => panic!("{other}"),
    }
}

/// Swapped, truncated and bit-flipped tiles of every tile format: never
/// served as data. A request that touches one gets a DAP2 error naming the
/// dataset and the tile before any data (also when the server had the file
/// open and verified before the damage); a request too large to verify
/// ahead is cut short and logged and counted as aborted, not as 200.
#[test]
fn damaged_tiles_are_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let cat = format!("sqlite://{}", dir.path().join("c.db").display());
    let cli = Cli::new(dir.path(), &cat);
    // 20 x 20 tiles of 30 x 30 cells, 300 of them with sst data.
    let spec = source::Spec { nt: 2, ny: 600, nx: 600, ..Default::default() };
    let src = dir.path().join("s.nc");
    source::write(&src, &spec);
    let formats = ["nc4-deflate", "nc4", "nc3-64bit"];
    for f in formats {
        let name = f.replace('-', "_");
        cli.ok(&["ingest", "--dataset", &name, "--var", "sst", "--tile-size", "30x30", "--tile-format", f, src.to_str().unwrap()]);
    }
    let srv = crate::ops::Server::start(dir.path(), &cat, &[]);
    let get = |path: &str| http_request("GET", &format!("{}{path}", srv.base), &[]);
    let pool = cli.pool();
    for f in formats {
        let name = f.replace('-', "_");
        for how in ["swap", "truncate", "flip"] {
            // The last sst tile of day 1, and the same tile of day 2.
            let rel = format!("{name}/2010-01-01T12-00-00.000/sst_tile_x19_y19.nc");
            let other = pool.join(format!("{name}/2010-01-02T12-00-00.000/sst_tile_x19_y19.nc"));
            let keep = dir.path().join("keep.nc");
            std::fs::copy(pool.join(&rel), &keep).unwrap();
            // Served and verified once, so the server holds it open.
            let small = format!("/dap/{name}.dods?sst[0][580:1:589][580:1:589]");
            assert_eq!(get(&small).0, 200);
            damage(&pool.join(&rel), &other, how);

            let (status, _, body) = get(&small);
            let text = String::from_utf8_lossy(&body);
            assert_eq!(status, 500, "{f} {how}: {text}");
            assert!(text.starts_with("Error {") && text.contains(&format!("dataset {name}: tile {rel}")), "{f} {how}: {text}");
            assert!(!text.contains(dir.path().to_str().unwrap()), "{f} {how}: no filesystem path: {text}");
            // The other slice, untouched, is still served.
            let (status, _, _) = get(&format!("/dap/{name}.dods?sst[1][580:1:589][580:1:589]"));
            assert_eq!(status, 200, "{f} {how}");

            // 300 tiles: more than are verified ahead; the damaged one, the
            // last, is met while the body streams.
            // (A truncated file is caught by its size, checked for every
            // tile before the status line.)
            let (status, head, body) = get(&format!("/dap/{name}.dods?sst[0][0:1:599][0:1:599]"));
            if how == "truncate" {
                assert_eq!(status, 500, "{f} {how}");
                assert!(String::from_utf8_lossy(&body).contains("the catalogue says"), "{f} {how}");
            } else {
                assert_eq!(status, 200, "{f} {how}");
                let declared: usize = crate::common::header(&head, "content-length").unwrap().parse().unwrap();
                assert!(body.len() < declared, "{f} {how}: the body is cut short, never completed with wrong data");
            }
            std::fs::copy(&keep, pool.join(&rel)).unwrap();
            assert_eq!(get(&small).0, 200, "{f} {how}: restored");
        }
    }
    let log = srv.log();
    let aborted = log.lines().filter(|l| l.contains("request aborted after the first byte") && l.contains("\"status\":\"aborted\"")).count();
    assert_eq!(aborted, 6, "every cut body is logged as aborted:\n{log}");
    let (_, _, metrics) = get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("tessera_responses_aborted_total{route=\"dods\"} 6"), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("tessera_http_requests_total") && l.contains("status=\"aborted\"") && l.ends_with(" 6")), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("tessera_tiles_damaged_total")), "{metrics}");
}

/// Re-ingesting times already present with other values says so and
/// points at --replace; a source whose time axis is empty says there is
/// nothing to ingest.
#[test]
fn no_silent_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), &format!("sqlite://{}", dir.path().join("c.db").display()));
    let spec = source::Spec { nt: 2, ny: 200, nx: 200, ..Default::default() };
    let (a, b) = (dir.path().join("a.nc"), dir.path().join("b.nc"));
    source::write(&a, &spec);
    std::fs::copy(&a, &b).unwrap();
    {
        tessera::store::tile::quiet_hdf5();
        let mut f = netcdf::append(&b).unwrap();
        f.variable_mut("sst").unwrap().put_value(-1.5f32, [1, 150, 150]).unwrap();
    }
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    cli.ok(&["ingest", "--dataset", "d", "--tile-size", "64x64", a]);
    let out = cli.ok(&["ingest", "--dataset", "d", a]);
    assert!(out.contains("0 slices written, 5 already present (--replace rewrites them)"), "the same data again: {out}");
    let out = cli.ok(&["ingest", "--dataset", "d", b]);
    assert!(out.contains("5 already present (1 of them with other values in this file: --replace rewrites them)"), "{out}");
    let out = cli.ok(&["ingest", "--dataset", "d", "--replace", b]);
    assert!(out.contains("5 slices written (5 replaced)"), "{out}");
    let out = cli.ok(&["ingest", "--dataset", "d", b]);
    assert!(out.contains("already present (--replace rewrites them)") && !out.contains("other values"), "{out}");

    let empty = dir.path().join("empty.nc");
    {
        let mut f = netcdf::create(&empty).unwrap();
        f.add_unlimited_dimension("time").unwrap();
        f.add_dimension("lat", 2).unwrap();
        f.add_dimension("lon", 3).unwrap();
        f.add_variable::<f64>("time", &["time"]).unwrap().put_attribute("units", "days since 2000-01-01").unwrap();
        f.add_variable::<f64>("lat", &["lat"]).unwrap().put_values(&[0.0, 1.0], ..).unwrap();
        f.add_variable::<f64>("lon", &["lon"]).unwrap().put_values(&[0.0, 1.0, 2.0], ..).unwrap();
        f.add_variable::<f32>("v", &["time", "lat", "lon"]).unwrap();
    }
    let out = cli.ok(&["ingest", "--dataset", "e", empty.to_str().unwrap()]);
    assert!(out.contains("0 slices written") && out.contains("note: its time axis time has no steps: nothing to ingest"), "{out}");
}

/// A small tmpfs, mounted for a test and unmounted after it. Mounting
/// needs root (as in CI); elsewhere the test says it cannot run.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let opts = format!("size={size}");
        let args = ["mount", "-t", "tmpfs", "-o", opts.as_str(), "tmpfs"];
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = if root { common::command(args[0]) } else { common::command("sudo") };
        if !root {
            cmd.args(["-n", args[0]]);
        }
        let ok = cmd.args(&args[1..]).arg(dir.path()).status().is_ok_and(|s| s.success());
        if !ok {
            eprintln!("note: cannot mount a tmpfs (needs root or passwordless sudo); full-disk test skipped");
            return None;
        }
        Some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = if root { common::command("umount") } else { common::command("sudo") };
        if !root {
            cmd.args(["-n", "umount"]);
        }
        let _ = cmd.arg("-l").arg(self.dir.path()).status();
    }
}

/// Random-looking float32 `v(time, lat, lon)`: incompressible.
fn write_noise(path: &std::path::Path, nt: usize, ny: usize, nx: usize) {
    tessera::store::tile::quiet_hdf5();
    let mut f = netcdf::create(path).unwrap();
    f.add_dimension("time", nt).unwrap();
    f.add_dimension("lat", ny).unwrap();
    f.add_dimension("lon", nx).unwrap();
    let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
    t.put_attribute("units", "days since 2000-01-01").unwrap();
    t.put_values(&(0..nt).map(|k| k as f64).collect::<Vec<_>>(), ..).unwrap();
    let mut lat = f.add_variable::<f64>("lat", &["lat"]).unwrap();
    lat.put_attribute("units", "degrees_north").unwrap();
    lat.put_values(&(0..ny).map(|j| 50.0 - j as f64 * 0.1).collect::<Vec<_>>(), ..).unwrap();
    let mut lon = f.add_variable::<f64>("lon", &["lon"]).unwrap();
    lon.put_attribute("units", "degrees_east").unwrap();
    lon.put_values(&(0..nx).map(|i| i as f64 * 0.1).collect::<Vec<_>>(), ..).unwrap();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let values: Vec<f32> = (0..nt * ny * nx)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / 16777216.0
        })
        .collect();
    f.add_variable::<f32>("v", &["time", "lat", "lon"]).unwrap().put_values(&values, ..).unwrap();
}

/// A full pool: a one-line "no space left on device" naming the tile,
/// exit status 1 (not a crash), nothing committed, nothing left behind; a
/// full temporary directory: a 503 for .nc4 that says so, .nc still
/// served, and the server still stops cleanly.
#[test]
fn a_full_disk_is_an_error_not_a_crash() {
    let Some(pool_fs) = Tmpfs::mount("12m") else { return };
    let Some(tmp_fs) = Tmpfs::mount("1m") else { return };
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_fs.dir.path().join("pool");
    let cat = format!("sqlite://{}", dir.path().join("c.db").display());
    let big = dir.path().join("big.nc");
    write_noise(&big, 3, 1000, 1200); // 14.4 MB of float32
    let run = |args: &[&str]| {
        common::command(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA_DATA_DIR", dir.path())
            .env("TESSERA_CATALOGUE", &cat)
            .env("TESSERA_POOL", &pool)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    for format in ["nc4-deflate", "nc3-64bit"] {
        let out = run(&["ingest", "--dataset", "big", "--tile-size", "200x200", "--tile-format", format, big.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: exit 1, not a crash: {err}");
        assert!(err.contains("no space left on device writing big/") && err.trim().lines().count() == 1, "{format}: {err}");
        assert!(!err.contains(pool_fs.dir.path().to_str().unwrap()) && !err.contains("HDF"), "{format}: {err}");
        let fsck = run(&["fsck"]);
        assert!(fsck.status.success(), "{format}: nothing left behind: {}", String::from_utf8_lossy(&fsck.stdout));
        assert!(std::fs::read_dir(&pool).unwrap().next().is_none(), "{format}: the pool is empty again");
    }
    // What fits is ingested, and served.
    let small = dir.path().join("small.nc");
    write_noise(&small, 1, 500, 600);
    let out = run(&["ingest", "--dataset", "small", "--tile-size", "200x200", small.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut env = vec![("TESSERA_POOL", pool.to_str().unwrap()), ("TMPDIR", tmp_fs.dir.path().to_str().unwrap())];
    env.push(("RUST_LOG", "warn"));
    let srv = crate::ops::Server::start(dir.path(), &cat, &env);
    let (status, _, body) = http_request("GET", &format!("{}/dap/small.nc4?v", srv.base), &[]);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("no room to build this NetCDF-4 file") && text.contains(".nc"), "{text}");
    let (status, _, body) = http_request("GET", &format!("{}/dap/small.nc?v", srv.base), &[]);
    assert_eq!(status, 200);
    assert!(body.len() > 1_200_000);
    let (status, _, _) = http_request("GET", &format!("{}/dap/small.nc4?v[0][0:1:9][0:1:9]", srv.base), &[]);
    assert_eq!(status, 200, "a small .nc4 still fits");
    assert_eq!(srv.terminate().code(), Some(0), "SIGTERM: a clean exit");
}

/// Processes that open a new SQLite catalogue at once all migrate it (one
/// at a time), and ingests into different datasets at once all commit.
#[test]
fn sqlite_under_concurrency() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let cli = Cli::new(dir.path(), &format!("sqlite://{}", dir.path().join(format!("new{round}.db")).display()));
        let opens: Vec<Child> = (0..6).map(|_| spawn(&cli, &["datasets", "list"])).collect();
        for c in opens {
            let (ok, out) = finish(c);
            assert!(ok, "round {round}: opening a new catalogue at once: {out}");
        }
        let spec = source::Spec { nt: 1, ny: 200, nx: 300, ..Default::default() };
        let src = dir.path().join("s.nc");
        source::write(&src, &spec);
        let ingests: Vec<Child> = (0..4)
            .map(|k| spawn(&cli, &["ingest", "--dataset", &format!("d{k}"), "--tile-size", "64x64", src.to_str().unwrap()]))
            .collect();
        for c in ingests {
            let (ok, out) = finish(c);
            assert!(ok, "round {round}: concurrent ingests into one SQLite catalogue: {out}");
        }
        let fsck = cli.ok(&["fsck"]);
        assert!(fsck.contains("checked 4 datasets") && fsck.contains(" 0 problems"), "{fsck}");
    }
}

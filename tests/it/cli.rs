//! The real binary, as an operator runs it.

use crate::common::{self, Cli, files_under, source};
use crate::ingest::{check_tiles_against_source, expected_tiles};
use std::collections::BTreeSet;
use std::path::Path;

async fn acceptance_flow(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), url);
    let src = dir.path().join("acc.nc");
    let spec = source::Spec::default();
    source::write(&src, &spec);
    let out = cli.ok(&["ingest", "--dataset", "acc", "--tile-size", "256x256", src.to_str().unwrap()]);
    assert!(out.contains("7 slices written"), "{out}");

    // Exactly the expected files, in the documented layout, each readable
    // by ncdump and equal to its source window.
    let files = files_under(&cli.pool());
    assert_eq!(files.iter().cloned().collect::<BTreeSet<_>>(), expected_tiles("acc", &spec, 256, &["sst", "chl", "mask"]));
    for f in &files {
        let out = common::command("ncdump").arg("-h").arg(cli.pool().join(f)).output().expect("ncdump is installed");
        assert!(out.status.success(), "ncdump -h {f}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let one = cli.pool().join("acc/2010-01-02T12-00-00.000/chl_tile_x3_y2.nc");
    let dump = common::command("ncdump").arg("-v").arg("chl").arg(&one).output().unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("short chl(time, lat, lon)") && dump.contains("chl:scale_factor = 0.01f"), "{dump}");
    let first = source::chl(1, 512, 768);
    assert!(dump.contains(&format!("chl =\n  {first},")), "first value {first} in {dump}");
    check_tiles_against_source(&cli.pool(), &spec, 256, &files);

    let show = cli.ok(&["datasets", "show", "acc"]);
    for needle in [
        "grid        800 x 600 (lon x lat)",
        "lat 600 points, 59.95 .. 0.05 step -0.1 (f32)",
        "lon 800 points, 100.05 .. 179.95 step 0.1 (f32)",
        "256x256 cells, nc4-deflate level 4, 4 x 3 tiles per slice",
        "3 slices",
        "2010-01-01T12:00:00.000Z .. 2010-01-03T12:00:00.000Z",
        "sst f32 (float) (time, lat, lon)",
        "chl i16 (short) (time, lat, lon)",
        "scale_factor = 0.01f",
        "add_offset = 2.5f",
        "_FillValue = -32768s",
        "mask u8 (ubyte) (lat, lon)",
        &format!("stored      {} tiles", files.iter().filter(|f| !f.contains("_ovr")).count()),
        &format!("overviews   levels 2, 4: {} tiles", files.iter().filter(|f| f.contains("_ovr")).count()),
    ] {
        assert!(show.contains(needle), "{needle:?} not in:\n{show}");
    }
    let list = cli.ok(&["datasets", "list"]);
    assert!(list.contains("acc") && list.contains("800x600"), "{list}");

    // fsck: clean, then each kind of damage.
    let ok = cli.ok(&["fsck"]);
    assert!(ok.contains(&format!("{} tiles", files.len())) && ok.contains("0 problems"), "{ok}");
    let victim = "acc/2010-01-01T12-00-00.000/sst_tile_x1_y0.nc";
    std::fs::remove_file(cli.pool().join(victim)).unwrap();
    let err = cli.run(&["fsck"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stdout).contains(&format!("missing: {victim}")));
    let orphan = cli.pool().join("acc/2010-01-01T12-00-00.000/stray.nc");
    std::fs::write(&orphan, b"junk").unwrap();
    let corrupt = cli.pool().join("acc/static/mask_tile_x0_y0.nc");
    let mut bytes = std::fs::read(&corrupt).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&corrupt, &bytes).unwrap();
    let out = cli.run(&["fsck"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("orphan:") && text.contains("stray.nc"), "{text}");
    assert!(text.contains("checksum mismatch: acc/static/mask_tile_x0_y0.nc"), "{text}");
    assert!(text.contains("3 problems"), "{text}");
    let quick = cli.run(&["fsck", "--quick"]);
    assert!(!String::from_utf8_lossy(&quick.stdout).contains("checksum"), "--quick compares sizes only");
    let repaired = cli.run(&["fsck", "--repair"]);
    assert!(String::from_utf8_lossy(&repaired.stdout).contains("(removed)"));
    assert!(!orphan.exists());
    assert!(!repaired.status.success(), "missing and damaged tiles remain problems");

    let out = cli.ok(&["datasets", "delete", "acc"]);
    assert!(out.contains("deleted dataset acc"));
    assert!(files_under(&cli.pool()).is_empty());
    assert!(cli.ok(&["datasets", "list"]).contains("no datasets"));
    assert!(cli.fails(&["datasets", "show", "acc"]).contains("no dataset acc"));
}

#[tokio::test]
async fn acceptance_flow_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    acceptance_flow(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test]
async fn acceptance_flow_postgres() {
    let Some(url) = common::postgres_url().await else { return };
    acceptance_flow(&url).await;
}

fn write_bad_sources(dir: &Path) -> Vec<(std::path::PathBuf, &'static str)> {
    tessera::store::tile::quiet_hdf5();
    let mut out = Vec::new();
    let p = dir.join("notnetcdf.nc");
    std::fs::write(&p, "this is not a NetCDF file\n").unwrap();
    out.push((p, "not a readable NetCDF file"));

    let p = dir.join("truncated.nc");
    source::write(&p, &source::Spec { nt: 1, ny: 100, nx: 100, ..Default::default() });
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len / 2).unwrap();
    out.push((p, "NetCDF"));

    let p = dir.join("noxy.nc");
    {
        let mut f = netcdf::create(&p).unwrap();
        f.add_dimension("a", 4).unwrap();
        f.add_dimension("b", 5).unwrap();
        f.add_variable::<f32>("a", &["a"]).unwrap().put_values(&[0.0f32, 1.0, 2.0, 3.0], ..).unwrap();
        f.add_variable::<f32>("b", &["b"]).unwrap().put_values(&[0.0f32, 1.0, 2.0, 3.0, 4.0], ..).unwrap();
        f.add_variable::<f32>("data", &["a", "b"]).unwrap().put_values(&[1.0f32; 20], ..).unwrap();
    }
    out.push((p, "no recognisable x/y"));

    // Irregular spacing is fine (Gaussian latitudes); going back is not.
    let p = dir.join("nonmonotonic.nc");
    {
        let mut f = netcdf::create(&p).unwrap();
        f.add_dimension("lat", 4).unwrap();
        f.add_dimension("lon", 3).unwrap();
        f.add_variable::<f64>("lat", &["lat"]).unwrap().put_values(&[0.0, 1.0, 2.0, 1.5], ..).unwrap();
        f.add_variable::<f64>("lon", &["lon"]).unwrap().put_values(&[0.0, 1.0, 2.0], ..).unwrap();
        f.add_variable::<f32>("v", &["lat", "lon"]).unwrap().put_values(&[1.0f32; 12], ..).unwrap();
    }
    out.push((p, "axis lat is not monotonic"));

    let p = dir.join("int64.nc");
    {
        let mut f = netcdf::create_with(&p, netcdf::Options::NETCDF4).unwrap();
        f.add_dimension("lat", 2).unwrap();
        f.add_dimension("lon", 3).unwrap();
        f.add_variable::<f64>("lat", &["lat"]).unwrap().put_values(&[0.0, 1.0], ..).unwrap();
        f.add_variable::<f64>("lon", &["lon"]).unwrap().put_values(&[0.0, 1.0, 2.0], ..).unwrap();
        f.add_variable::<i64>("counts", &["lat", "lon"]).unwrap().put_values(&[1i64; 6], ..).unwrap();
    }
    out.push((p, "unsupported type"));

    let p = dir.join("badtime.nc");
    {
        let mut f = netcdf::create(&p).unwrap();
        f.add_dimension("time", 1).unwrap();
        f.add_dimension("lat", 2).unwrap();
        f.add_dimension("lon", 3).unwrap();
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", "days since 2000-01-01").unwrap();
        t.put_attribute("calendar", "lunar").unwrap();
        t.put_values(&[1.0], ..).unwrap();
        f.add_variable::<f64>("lat", &["lat"]).unwrap().put_values(&[0.0, 1.0], ..).unwrap();
        f.add_variable::<f64>("lon", &["lon"]).unwrap().put_values(&[0.0, 1.0, 2.0], ..).unwrap();
        f.add_variable::<f32>("v", &["time", "lat", "lon"]).unwrap().put_values(&[1.0f32; 6], ..).unwrap();
    }
    out.push((p, "calendar \"lunar\""));
    out.push((dir.join("does-not-exist.nc"), "not a readable NetCDF file"));
    out
}

#[tokio::test]
async fn bad_sources_get_one_line_and_leave_the_archive_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), &format!("sqlite://{}", dir.path().join("c.db").display()));
    for (path, reason) in write_bad_sources(dir.path()) {
        let err = cli.fails(&["ingest", "--dataset", "bad", path.to_str().unwrap()]);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {}: {err}", path.display());
        assert!(lines[0].starts_with("tessera: error: "), "{err}");
        assert!(err.contains(path.file_name().unwrap().to_str().unwrap()), "names the file: {err}");
        assert!(err.contains(reason), "{reason:?} in {err}");
        assert!(files_under(&cli.pool()).is_empty(), "nothing written for {}", path.display());
        assert!(cli.ok(&["datasets", "list"]).contains("no datasets"));
    }
    // Bad arguments are one line too.
    for (args, needle) in [
        (vec!["ingest", "--dataset", "../etc", "x.nc"], "is not a slug"),
        (vec!["ingest", "--dataset", "ok", "--tile-size", "0x3", "x.nc"], "zero side"),
        (vec!["ingest", "--dataset", "ok", "--tile-format", "zarr", "x.nc"], "tile format"),
        (vec!["ingest", "--dataset", "ok", "--time", "yesterday", "x.nc"], "ISO 8601"),
    ] {
        let err = cli.fails(&args);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle:?} in {err}");
    }
}

/// Kills a real ingest at several moments: the catalogue is always either
/// untouched or complete, and nothing but orphans is ever found.
#[tokio::test]
async fn a_killed_ingest_never_leaves_a_partial_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let cli = Cli::new(dir.path(), &url);
    let src = dir.path().join("big.nc");
    let spec = source::Spec { nt: 3, ny: 900, nx: 1200, ..Default::default() };
    source::write(&src, &spec);
    let expected = expected_tiles("big", &spec, 100, &["sst", "chl", "mask"]);
    for delay_ms in [50u64, 300, 800, 1500] {
        let mut child = common::command(env!("CARGO_BIN_EXE_tessera"))
            .args(["ingest", "--dataset", "big", "--tile-size", "100x100", "--tile-format", "nc4"])
            .arg(&src)
            .env("TESSERA_DATA_DIR", dir.path())
            .env("TESSERA_CATALOGUE", &url)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let list = cli.ok(&["datasets", "list"]);
        let fsck = cli.run(&["fsck", "--quick"]);
        let report = String::from_utf8_lossy(&fsck.stdout);
        assert!(!report.contains("missing") && !report.contains("mismatch"), "after {delay_ms} ms: {report}");
        if list.contains("big") {
            // The commit happened: everything is there.
            assert!(status.success() || report.lines().all(|l| l.starts_with("orphan") || l.starts_with("checked")));
            assert!(list.contains(&format!("{}", expected.len())), "complete dataset: {list}");
            break;
        }
        assert!(list.contains("no datasets"), "{list}");
        cli.run(&["fsck", "--repair"]);
        assert!(files_under(&cli.pool()).is_empty(), "repair removed every orphan");
    }
    // Whatever happened, a re-run completes the dataset.
    cli.ok(&["ingest", "--dataset", "big", "--tile-size", "100x100", "--tile-format", "nc4", src.to_str().unwrap()]);
    cli.ok(&["fsck", "--repair"]);
    cli.ok(&["fsck"]);
    assert_eq!(files_under(&cli.pool()).into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn configuration_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tessera.toml");
    let pool = dir.path().join("elsewhere/pool");
    std::fs::write(&conf, format!("pool = {:?}\ncatalogue = \"sqlite://{}/from-file.db\"\n", pool, dir.path().display())).unwrap();
    let src = dir.path().join("s.nc");
    source::write(&src, &source::Spec { nt: 1, ny: 100, nx: 320, ..Default::default() });
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = common::command(env!("CARGO_BIN_EXE_tessera"));
        c.args(args).env_remove("TESSERA_CATALOGUE").env_remove("TESSERA_POOL").env_remove("TESSERA_DATA_DIR");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[("TESSERA_CONFIG", conf.to_str().unwrap())], &["ingest", "--dataset", "c", src.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!files_under(&pool).is_empty(), "the file's pool is used");
    assert!(dir.path().join("from-file.db").exists(), "the file's catalogue is used");
    // The environment wins over the file, a flag over the environment.
    let env_pool = dir.path().join("env-pool");
    let out = run(
        &[("TESSERA_CONFIG", conf.to_str().unwrap()), ("TESSERA_POOL", env_pool.to_str().unwrap())],
        &["ingest", "--dataset", "d", src.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(files_under(&env_pool).iter().all(|f| f.starts_with("d/")));
    let flag_pool = dir.path().join("flag-pool");
    let out = run(
        &[("TESSERA_CONFIG", conf.to_str().unwrap()), ("TESSERA_POOL", env_pool.to_str().unwrap())],
        &["ingest", "--pool", flag_pool.to_str().unwrap(), "--dataset", "e", src.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(files_under(&flag_pool).iter().all(|f| f.starts_with("e/")) && !files_under(&flag_pool).is_empty());
    // A typo in the file is an error, not a silent default.
    std::fs::write(&conf, "pol = \"/x\"\n").unwrap();
    let out = run(&[("TESSERA_CONFIG", conf.to_str().unwrap())], &["datasets", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting `pol`; did you mean `pool`?"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `tessera` on a pseudo-terminal (util-linux `script`), answering
/// `answer` to whatever it asks; returns exit success and what it printed.
fn on_a_terminal(cli: &Cli, args: &[&str], answer: &str) -> (bool, String) {
    use std::io::Write;
    let line = std::iter::once(env!("CARGO_BIN_EXE_tessera")).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let mut child = common::command("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TESSERA_DATA_DIR", &cli.data_dir)
        .env("TESSERA_CATALOGUE", &cli.catalogue)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is installed");
    child.stdin.take().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn metadata_edits_deletes_and_unpack() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), &format!("sqlite://{}", dir.path().join("c.db").display()));
    let src = dir.path().join("s.nc");
    let spec = source::Spec { nt: 1, ny: 60, nx: 80, ..Default::default() };
    source::write(&src, &spec);
    cli.ok(&["ingest", "--dataset", "m", "--tile-size", "32x32", src.to_str().unwrap()]);

    // Title, global and variable attributes; numbers with :=; removal.
    let out = cli.ok(&[
        "datasets", "set", "m", "--title", "Edited", "--attr", "institution=Somewhere", "--attr", "sst:long_name=sea surface temperature",
        "--attr", "version:=2.5", "--unset", "Conventions",
    ]);
    assert!(out.contains("dataset m updated"), "{out}");
    let show = cli.ok(&["datasets", "show", "m"]);
    for needle in ["title       Edited", "institution = \"Somewhere\"", "long_name = \"sea surface temperature\"", "version = 2.5"] {
        assert!(show.contains(needle), "{needle:?} not in\n{show}");
    }
    assert!(!show.contains("Conventions"), "{show}");
    // The encoding of stored values is not metadata.
    let err = cli.fails(&["datasets", "set", "m", "--attr", "chl:scale_factor:=0.02"]);
    assert!(err.contains("chl:scale_factor cannot be edited") && err.trim().lines().count() == 1, "{err}");
    let err = cli.fails(&["datasets", "set", "m"]);
    assert!(err.contains("nothing to change"), "{err}");

    // --unpack followed by a file: every packed variable, stored as floats.
    let out = cli.ok(&["ingest", "--dataset", "u", "--unpack", src.to_str().unwrap()]);
    assert!(out.contains("chl: re-encoded into the dataset's float32"), "{out}");
    let show = cli.ok(&["datasets", "show", "u"]);
    assert!(show.contains("chl f32 (float)") && show.contains("mask u8 (ubyte)"), "packed chl unpacked, mask kept:\n{show}");
    let out = cli.ok(&["ingest", "--dataset", "v", "--unpack", "chl", src.to_str().unwrap()]);
    assert!(out.contains("chl: re-encoded"), "{out}");
    let err = cli.fails(&["ingest", "--dataset", "w", "--unpack", "nope", src.to_str().unwrap()]);
    assert!(err.contains("--unpack nope: this file has no variable nope"), "{err}");

    // Delete asks on a terminal; a wrong answer keeps the dataset.
    let (ok, out) = on_a_terminal(&cli, &["datasets", "delete", "u"], "no");
    assert!(!ok && out.contains("Type the name to confirm") && out.contains("not deleted"), "{out}");
    assert!(cli.ok(&["datasets", "list"]).contains("\nu "));
    let (ok, out) = on_a_terminal(&cli, &["datasets", "delete", "u"], "u");
    assert!(ok && out.contains("deleted dataset u"), "{out}");
    let (ok, out) = on_a_terminal(&cli, &["datasets", "delete", "v", "--yes"], "");
    assert!(ok && !out.contains("confirm") && out.contains("deleted dataset v"), "{out}");
    // Off a terminal (scripts), nothing is asked.
    let out = cli.ok(&["datasets", "delete", "m"]);
    assert!(out.contains("deleted dataset m"), "{out}");
    assert!(cli.ok(&["datasets", "list"]).contains("no datasets"));
}

//! An archive made by the previous version keeps working.
//!
//! `tests/fixtures/archive-4a201f8` was made by the binary of commit
//! 4a201f8, with what it served recorded beside it (see its README). A copy
//! is migrated, served and extended by this version: everything it served
//! is served again, to the byte, except what that version got wrong (a
//! float64 attribute one digit short, a `coordinates` attribute naming
//! variables it did not serve); its time keys, and so its times, do not
//! move, although its reference date lies before 1582 where the standard
//! calendar now follows CF; a later file joins it; `--replace` of a
//! source brings back the 2-D coordinates it had dropped.

use crate::common::{Cli, files_under, http_request};
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn get(url: &str) -> String {
    let (status, _, body) = http_request("GET", url, &[]);
    assert_eq!(status, 200, "{url}");
    String::from_utf8(body).unwrap()
}

#[test]
fn an_archive_of_the_previous_version_keeps_working() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/archive-4a201f8");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("archive");
    for part in ["pool", "catalogue.db"] {
        let from = fixture.join(part);
        if from.is_dir() {
            copy_dir(&from, &data.join(part));
        } else {
            std::fs::copy(&from, data.join(part)).unwrap();
        }
    }
    let cli = Cli::new(&data, &format!("sqlite://{}", data.join("catalogue.db").display()));
    let before = files_under(&cli.pool());
    let out = cli.ok(&["migrate"]);
    assert!(out.contains("schema version 5"), "{out}");
    let out = cli.ok(&["fsck"]);
    assert!(out.contains("0 problems") && out.contains("tiles have no recorded layout"), "{out}");
    let show = cli.ok(&["datasets", "show", "seaice"]);
    assert!(show.contains("note:") && show.contains("coordinates: lat") && show.contains("--replace"), "{show}");

    let base = crate::common::server::start_server(&data, &cli.catalogue, &[]);
    let served = |name: &str| std::fs::read_to_string(fixture.join("served").join(name)).unwrap();
    for d in ["ncep", "seaice"] {
        for s in ["dds", "ascii"] {
            assert_eq!(get(&format!("{base}/dap/{d}.{s}")), served(&format!("{d}.{s}")), "{d}.{s} is served as before");
        }
    }
    // The DAS as before, but for what the old version got wrong.
    let das = get(&format!("{base}/dap/ncep.das"));
    assert_eq!(das, served("ncep.das").replace("add_offset 235.0016785180212;", "add_offset 235.00167851802118;"));
    let das = get(&format!("{base}/dap/seaice.das"));
    assert_eq!(das, served("seaice.das").replace("        String coordinates \"lat lon\";\n", ""));
    assert_ne!(das, served("seaice.das"), "the fixture records the dangling reference");
    // ... and in a NetCDF download, read by netCDF4-python.
    let (status, _, nc) = http_request("GET", &format!("{base}/dap/ncep.nc?air[0][0][0]"), &[]);
    assert_eq!(status, 200);
    let file = dir.path().join("air.nc");
    std::fs::write(&file, nc).unwrap();
    let out = crate::common::command("python3")
        .args(["-c", "import sys, netCDF4; print(repr(float(netCDF4.Dataset(sys.argv[1])['air'].add_offset)))"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "235.00167851802118", "{}", String::from_utf8_lossy(&out.stderr));

    // A later file joins the old dataset; its times are exact, its slice
    // directories named like the old ones (proleptic Gregorian keys).
    let out = cli.ok(&["ingest", "--dataset", "ncep", fixture.join("sources/air.2010.2.nc").to_str().unwrap()]);
    assert!(out.contains("2 slices written"), "{out}");
    assert_eq!(
        get(&format!("{base}/dap/ncep.ascii?time")),
        "Dataset: ncep\ntime, 17628096, 17628102, 17628120, 17628126\n"
    );
    let after = files_under(&cli.pool());
    let new: Vec<&String> = after.iter().filter(|f| !before.contains(f)).collect();
    assert!(!new.is_empty() && new.iter().all(|f| f.starts_with("ncep/2012-01-04T")), "{new:?}");

    // --replace of the polar source brings its 2-D coordinates back.
    let out = cli.ok(&["ingest", "--dataset", "seaice", "--replace", fixture.join("sources/seaice.nc").to_str().unwrap()]);
    assert!(out.contains("replaced"), "{out}");
    let das = get(&format!("{base}/dap/seaice.das"));
    assert!(das.contains("String coordinates \"lat lon\";") && das.contains("    lat {"), "{das}");
    let ascii = get(&format!("{base}/dap/seaice.ascii?lat[0:1:0][0:1:1]"));
    assert_eq!(ascii, "Dataset: seaice\nlat.x, -100000, -75000\nlat.lat[lat.y=100000], 89, 88.9\n");
    let show = cli.ok(&["datasets", "show", "seaice"]);
    assert!(!show.contains("note:"), "{show}");
    let out = cli.ok(&["fsck"]);
    assert!(out.contains("0 problems"), "{out}");

    // `reindex` records the layouts of the old tiles; the values served
    // through them are those served before, and fsck checks them.
    let old_ascii = get(&format!("{base}/dap/ncep.ascii"));
    let out = cli.ok(&["reindex"]);
    assert!(out.contains("2 datasets:") && !out.contains(" 0 tile layouts recorded") && out.contains("0 not inspected"), "{out}");
    let out = cli.ok(&["reindex"]);
    assert!(out.contains(" 0 tile layouts recorded"), "a second run has nothing to do: {out}");
    let out = cli.ok(&["fsck"]);
    assert!(out.contains("0 problems") && !out.contains("no recorded layout"), "{out}");
    assert_eq!(get(&format!("{base}/dap/ncep.ascii")), old_ascii);
    let n = crate::store::every_tile_reads_the_same_both_ways(&cli.catalogue, &cli.pool());
    assert!(n > 0);

    // A recorded layout that is not the file's is found.
    let db = data.join("catalogue.db");
    let out = crate::common::command("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE tiles SET layout = (SELECT layout FROM tiles WHERE path LIKE 'seaice/%' LIMIT 1) WHERE path LIKE 'ncep/%'\"); c.commit()"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli.run(&["fsck", "--dataset", "ncep"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("layout mismatch: ncep/"), "{text}");
    cli.ok(&["reindex", "--all", "--dataset", "ncep"]);
    let out = cli.ok(&["fsck"]);
    assert!(out.contains("0 problems"), "{out}");

    // The old archive has no overviews; built on request (NetCDF-3 tiles
    // here), strided reads go through them and give what the full
    // resolution gave.
    let show = cli.ok(&["datasets", "show", "seaice"]);
    assert!(show.contains("overviews   none"), "{show}");
    let strided = format!("{base}/dap/seaice.ascii?ice[0][0:2:9][0:4:7]");
    let full = get(&strided);
    let out = cli.ok(&["overviews", "build", "--dataset", "seaice"]);
    assert!(out.contains("overview levels 2, 4 built for 3 slices"), "{out}");
    let show = cli.ok(&["datasets", "show", "seaice"]);
    assert!(show.contains("overviews   levels 2, 4:"), "{show}");
    let reads = |k: &str| crate::overviews::metric(&base, "tessera_array_reads_total", &format!("overview=\"{k}\""));
    let before = reads("2");
    assert_eq!(get(&strided), full);
    assert_eq!(reads("2"), before + 1.0, "read from level 2");
    let out = cli.ok(&["fsck"]);
    assert!(out.contains("0 problems"), "{out}");
}

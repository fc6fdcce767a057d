//! Pictures through a real WMS client: OWSLib drives `/wms` (capabilities,
//! global maps in EPSG:4326, CRS:84 and EPSG:3857, a polar stereographic
//! grid in its own EPSG:3413 and in EPSG:4326, legends, service
//! exceptions) and `/dap/<dataset>.png`, comparing each map's transparency
//! with its source's fill mask (see `wms_check.py`). Maps are read from
//! overviews: the metrics say which level answered.

use crate::common::{Cli, command, http_request};
use crate::overviews::metric;

fn python(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/wms_check.py");
    let out = command("python3").arg(script).args(args).output().expect("python3");
    assert!(
        out.status.success(),
        "wms_check.py {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn wms_maps_through_owslib_match_the_sources() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    python(&["write", src.to_str().unwrap()]);
    let data = dir.path().join("data");
    let cli = Cli::new(&data, &format!("sqlite://{}", data.join("c.db").display()));
    let s = |n: &str| src.join(n).to_str().unwrap().to_string();
    // 720 x 360 in 128-cell tiles: levels 2, 4, 8; the 60 x 56 polar grid
    // in 16-cell tiles: levels 2, 4.
    cli.ok(&["ingest", "--dataset", "global", "--tile-size", "128x128", &s("global.nc")]);
    cli.ok(&["ingest", "--dataset", "polar", "--tile-size", "16x16", &s("polar_1.nc"), &s("polar_2.nc")]);
    let base = crate::common::server::start_server(&data, &cli.catalogue, &[]);
    let before = metric(&base, "tessera_array_reads_total", "overview=\"4\"");
    let out = python(&["check", &base, src.to_str().unwrap()]);
    assert!(out.contains("ok"), "{out}");

    // A 180 x 90 world map spans 4 cells a pixel: level 4 draws it.
    let url = format!(
        "{base}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=global/sst&STYLES=&CRS=CRS:84&BBOX=-180,-90,180,90&WIDTH=180&HEIGHT=90&FORMAT=image/png"
    );
    let (status, head, body) = http_request("GET", &url, &[]);
    assert_eq!(status, 200, "{head}");
    assert!(body.starts_with(b"\x89PNG"));
    assert!(metric(&base, "tessera_array_reads_total", "overview=\"4\"") > before, "level 4 answered");
}

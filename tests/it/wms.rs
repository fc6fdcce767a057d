//! Pictures through a real WMS client: OWSLib drives `/wms` (capabilities,
//! global maps in EPSG:4326, CRS:84 and EPSG:3857, a polar stereographic
//! grid in its own EPSG:3413 and in EPSG:4326, legends, service
//! exceptions, an N48 Gaussian grid's irregular latitudes) and
//! `/dap/<dataset>.png`, comparing each map's transparency
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
    cli.ok(&["ingest", "--dataset", "gauss", "--tile-size", "64x64", &s("gauss.nc")]);
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

/// TIME and ELEVATION pick the slab a map shows, and its colours are the
/// values' places on COLORSCALERANGE: a 4-D source (`temp(time, depth,
/// lat, lon)`, latitude stored south first) drawn one pixel per cell.
#[test]
fn time_and_elevation_pick_the_slab_and_colours_follow_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("levels.nc");
    crate::common::source::write_levels(&src);
    let data = dir.path().join("data");
    let cli = Cli::new(&data, &format!("sqlite://{}", data.join("c.db").display()));
    cli.ok(&["ingest", "--dataset", "levels", "--tile-size", "16x16", src.to_str().unwrap()]);
    let base = crate::common::server::start_server(&data, &cli.catalogue, &[]);
    // lat -24.5 .. 24.5 (50 rows), lon 0.5 .. 59.5 (60 columns).
    let map = |extra: &str| {
        let url = format!(
            "{base}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=levels/temp&STYLES=&CRS=CRS:84&BBOX=0,-25,60,25&WIDTH=60&HEIGHT=50&FORMAT=image/png{extra}"
        );
        http_request("GET", &url, &[])
    };
    let (status, _, body) = map("&TIME=2000-01-01T06:00:00Z&ELEVATION=50&COLORSCALERANGE=1000,1300");
    assert_eq!(status, 200);
    let decoder = png::Decoder::new(std::io::Cursor::new(body));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!((frame.width, frame.height, frame.color_type), (60, 50, png::ColorType::Indexed));
    for (row, col) in [(0, 0), (0, 59), (49, 0), (25, 30)] {
        // Row 0 is the north: the source's last latitude.
        let want = tessera::picture::colour::palette_index(f64::from(crate::common::source::level_value(1, 2, 49 - row, col)), 1000.0, 1300.0);
        assert_eq!(buf[row * 60 + col], want, "pixel {row},{col}");
    }
    for (extra, code) in [("&ELEVATION=7", "InvalidDimensionValue"), ("&TIME=2000-01-02", "InvalidDimensionValue")] {
        let (status, _, body) = map(extra);
        let text = String::from_utf8_lossy(&body);
        assert!(status == 400 && text.contains(&format!("code=\"{code}\"")), "{extra}: {status} {text}");
    }
}

/// A map over a tile the pool lost is the server's fault, said as such:
/// a 500 service exception naming the tile, never a picture of fill. The
/// same slice seen whole is drawn from its overview, which it still has.
#[test]
fn a_map_over_a_missing_tile_is_a_500_naming_it() {
    let f = crate::common::server::fixture();
    let map = |bbox: &str, size: usize| {
        let url = format!(
            "{}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=broken/sst&STYLES=&CRS=CRS:84&BBOX={bbox}&WIDTH={size}&HEIGHT={size}&FORMAT=image/png&TIME=2010-01-02T12:00:00Z",
            f.base
        );
        http_request("GET", &url, &[])
    };
    // Cells 300..309 of both axes: inside tile (1, 1), read at full resolution.
    let (status, head, body) = map("130,29,131,30", 10);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{text}");
    assert!(crate::common::header(&head, "content-type").is_some_and(|c| c.contains("xml")), "{head}");
    assert!(text.contains("<ServiceExceptionReport") && text.contains("sst_tile_x1_y1.nc"), "{text}");
    let (status, _, body) = map("100,0,180,60", 100);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

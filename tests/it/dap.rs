//! The DAP2 endpoint through real clients: netCDF-C (the library, ncdump,
//! nccopy), libdap's getdap, pydap and xarray, every value compared with the
//! source data.

use crate::common::server::{MAX_RESPONSE, fixture};
use crate::common::{command, source};

/// One request, no extra headers.
pub fn http(method: &str, url: &str) -> (u16, String, Vec<u8>) {
    crate::common::http_request(method, url, &[])
}

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn python(script: &str) -> String {
    run(command("python3").arg("-c").arg(script).env("PYTHONWARNINGS", "ignore"))
}

#[test]
fn ncdump_header_shows_the_whole_dataset_as_netcdf() {
    let f = fixture();
    let out = run(command("ncdump").arg("-h").arg(f.url("acc")));
    for needle in [
        "time = 3 ;",
        "lat = 600 ;",
        "lon = 800 ;",
        "double time(time) ;",
        "time:units = \"days since 2010-01-01 00:00:00\" ;",
        "float lat(lat) ;",
        "lat:units = \"degrees_north\" ;",
        "lat:axis = \"Y\" ;",
        "lon:axis = \"X\" ;",
        "time:axis = \"T\" ;",
        "float sst(time, lat, lon) ;",
        "sst:_FillValue = -999.f ;",
        "sst:valid_range = -5.f, 60.f ;",
        "short chl(time, lat, lon) ;",
        "chl:_FillValue = -32768s ;",
        "chl:scale_factor = 0.01f ;",
        "chl:add_offset = 2.5f ;",
        "byte mask(lat, lon) ;",
        "mask:_Unsigned = \"true\" ;",
        ":title = \"test source\" ;",
        ":history = \"written by the tessera tests\" ;",
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{out}");
    }
}

#[test]
fn netcdf_c_reads_strided_hyperslabs_across_tiles() {
    let f = fixture();
    tessera::store::tile::quiet_hdf5();
    let nc = netcdf::open(f.url("acc")).expect("netCDF-C opens the DAP URL");
    let time: Vec<f64> = nc.variable("time").unwrap().get_values(..).unwrap();
    assert_eq!(time, vec![0.5, 1.5, 2.5]);
    let lat: Vec<f32> = nc.variable("lat").unwrap().get_values(..).unwrap();
    assert_eq!(lat, (0..600).map(|j| source::lat(&f.spec, j)).collect::<Vec<_>>());
    let sst = nc.variable("sst").unwrap();
    // Strides that cross tile and edge-tile boundaries and the missing
    // top-left tile (read as _FillValue).
    // (start, count, stride) per dimension.
    for (t, y, x) in [
        ((0, 3, 1), (0, 86, 7), (0, 89, 9)),
        ((1, 1, 1), (250, 10, 1), (250, 20, 1)),
        ((2, 1, 1), (599, 1, 1), (799, 1, 1)),
        ((0, 2, 2), (5, 2, 300), (1, 3, 333)),
        ((0, 3, 1), (0, 600, 1), (0, 800, 1)),
    ] {
        let (ts, tc, tst) = t;
        let (ys, yc, yst) = y;
        let (xs, xc, xst) = x;
        let got: Vec<f32> = sst
            .get_values((&[ts, ys, xs][..], &[tc, yc, xc][..], &[tst as isize, yst as isize, xst as isize][..]))
            .unwrap();
        let mut want = Vec::new();
        for k in 0..tc {
            for j in 0..yc {
                for i in 0..xc {
                    want.push(source::sst(ts + k * tst, ys + j * yst, xs + i * xst));
                }
            }
        }
        assert_eq!(got, want, "sst {t:?} {y:?} {x:?}");
    }
    let chl: Vec<i16> = nc.variable("chl").unwrap().get_values((&[1, 200, 700][..], &[2, 150, 100][..])).unwrap();
    let want: Vec<i16> = (1..3).flat_map(|t| (200..350).flat_map(move |y| (700..800).map(move |x| source::chl(t, y, x)))).collect();
    assert_eq!(chl, want, "packed values are served packed");
    let mask: Vec<i8> = nc.variable("mask").unwrap().get_values(..).unwrap();
    let want: Vec<i8> = (0..600).flat_map(|y| (0..800).map(move |x| source::mask(y, x) as i8)).collect();
    assert_eq!(mask, want, "u8 mask bit for bit, fill included");
}

#[test]
fn nccopy_of_a_constrained_url_equals_the_source() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    for (ce, check) in [
        // Not [0:2:2]: netCDF-C 4.9 rewrites a URL constraint whose stop is
        // one stride after its start into a single index ([0:2:2] -> [0]).
        ("sst[0:1:2][10:7:599][3:9:799],lat[10:7:599]", "sst"),
        ("chl[1][250:1:300][700:1:799]", "chl"),
        ("mask[0:3:599][0:1:799]", "mask"),
    ] {
        let out = dir.path().join(format!("{check}.nc"));
        run(command("nccopy").arg(format!("{}?{ce}", f.url("acc"))).arg(&out));
        tessera::store::tile::quiet_hdf5();
        let nc = netcdf::open(&out).unwrap();
        let v = nc.variable(check).unwrap();
        match check {
            "sst" => {
                let got: Vec<f32> = v.get_values(..).unwrap();
                let want: Vec<f32> = [0usize, 1, 2]
                    .iter()
                    .flat_map(|&t| (10..600).step_by(7).flat_map(move |y| (3..800).step_by(9).map(move |x| source::sst(t, y, x))))
                    .collect();
                assert_eq!(got.len(), want.len());
                if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
                    panic!("sst differs at {i}: {} != {}", got[i], want[i]);
                }
                let lat: Vec<f32> = nc.variable("lat").unwrap().get_values(..).unwrap();
                assert_eq!(lat, (10..600).step_by(7).map(|j| source::lat(&f.spec, j)).collect::<Vec<_>>());
            }
            "chl" => {
                let got: Vec<i16> = v.get_values(..).unwrap();
                let want: Vec<i16> = (250..301).flat_map(|y| (700..800).map(move |x| source::chl(1, y, x))).collect();
                assert_eq!(got, want);
                assert_eq!(v.attribute("scale_factor").unwrap().value().unwrap(), netcdf::AttributeValue::Float(0.01));
            }
            _ => {
                let got: Vec<i8> = v.get_values(..).unwrap();
                let want: Vec<i8> = (0..600).step_by(3).flat_map(|y| (0..800).map(move |x| source::mask(y, x) as i8)).collect();
                assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn ncdump_of_a_constrained_coordinate() {
    let f = fixture();
    let out = run(command("ncdump").arg("-v").arg("lon").arg(format!("{}?lon[0:100:799]", f.url("acc"))));
    let values: Vec<f32> = out
        .split("lon =")
        .last()
        .unwrap()
        .trim()
        .trim_end_matches('}')
        .trim()
        .trim_end_matches(';')
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(values, (0..800).step_by(100).map(|i| source::lon(&f.spec, i)).collect::<Vec<_>>());
}

#[test]
fn getdap_parses_dds_das_and_data() {
    let f = fixture();
    let url = f.url("acc");
    let dds = run(command("getdap").arg("-d").arg(&url));
    assert!(dds.contains("Int16 chl[time = 3][lat = 600][lon = 800];"), "{dds}");
    let das = run(command("getdap").arg("-a").arg(&url));
    assert!(das.contains("Float32 scale_factor 0.01;") && das.contains("String _Unsigned \"true\";"), "{das}");
    let data = run(command("getdap").arg("-D").arg("-c").arg("sst.sst[1][300:1:301][400:1:401]").arg(&url));
    for (y, x) in [(300, 400), (300, 401), (301, 400), (301, 401)] {
        let v = source::sst(1, y, x);
        assert!(data.contains(&format!("{v}")), "{v} not in {data}");
    }
    let data = run(command("getdap").arg("-D").arg("-c").arg("mask[2][0:2]").arg(&url));
    assert!(data.contains(&format!("{{{{{}, {}, {}}}}}", source::mask(2, 0), source::mask(2, 1), source::mask(2, 2))), "{data}");
    let out = command("getdap").arg("-i").arg(&url).output().unwrap();
    let ver = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(ver.contains("DAP version: 2.0"), "{ver}");
}

#[test]
fn pydap_reads_grids_and_coordinates() {
    let f = fixture();
    let script = format!(
        r#"
import numpy as np, netCDF4
from pydap.client import open_url
ds = open_url("{url}", protocol="dap2")
src = netCDF4.Dataset("{src}")
src.set_auto_maskandscale(False)
def same(a, b, what):
    a = np.asarray(a); b = np.asarray(b)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert np.array_equal(a, b), what
same(ds["sst"]["sst"][0:1, 10:20:3, 790:800].data, src["sst"][0:1, 10:20:3, 790:800], "sst edge")
same(ds["sst"].array[2:3, 0:600:50, 0:800:40].data, src["sst"][2:3, 0:600:50, 0:800:40], "sst strided")
same(ds["chl"]["chl"][1:2, 255:258, 255:258].data, src["chl"][1:2, 255:258, 255:258], "chl corner")
same(ds["mask"]["mask"][100:110, 760:780].data, src["mask"][100:110, 760:780], "mask sparse column")
same(ds["time"][:].data, src["time"][:], "time")
same(ds["lat"][:].data, src["lat"][:], "lat")
assert ds["mask"]["mask"].dtype == np.uint8, ds["mask"]["mask"].dtype
print("ok")
"#,
        url = f.url("acc"),
        src = f.source("acc.nc").display()
    );
    assert_eq!(python(&script).trim(), "ok");
}

#[test]
fn xarray_isel_equals_the_source() {
    let f = fixture();
    let script = format!(
        r#"
import numpy as np, xarray as xr
remote = xr.open_dataset("{url}", engine="netcdf4")
local = xr.open_dataset("{src}")
for sel in [dict(time=0, lat=slice(0, 600, 11), lon=slice(0, 800, 13)),
            dict(time=slice(1, 3), lat=slice(250, 260), lon=slice(760, 800)),
            dict(lat=599, lon=799)]:
    for v in ["sst", "chl", "mask"]:
        s = {{k: x for k, x in sel.items() if k in remote[v].dims}}
        a = remote[v].isel(**s).values
        b = local[v].isel(**s).values
        assert a.dtype == b.dtype, (v, a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=v + str(sel))
np.testing.assert_array_equal(remote["time"].values, local["time"].values)
assert str(remote["time"].values[0]).startswith("2010-01-01T12")
print("ok")
"#,
        url = f.url("acc"),
        src = f.source("acc.nc").display()
    );
    assert_eq!(python(&script).trim(), "ok");
}

#[test]
fn every_type_on_a_projected_grid() {
    let f = fixture();
    let header = run(command("ncdump").arg("-h").arg(f.url("types")));
    for needle in [
        "int crs ;",
        "crs:grid_mapping_name = \"transverse_mercator\" ;",
        "v_u8:grid_mapping = \"crs\" ;",
        "byte v_i8(time, y, x) ;",
        "v_i8:_Unsigned = \"false\" ;",
        "int v_u16(time, y, x) ;",
        "double x(x) ;",
    ] {
        assert!(header.contains(needle), "{needle:?} not in\n{header}");
    }
    // netCDF4-python applies _Unsigned; values must equal the source exactly.
    let script = format!(
        r#"
import numpy as np, netCDF4
r = netCDF4.Dataset("{url}")
s = netCDF4.Dataset("{src}")
for v in ["v_u8", "v_i8", "v_i16", "v_u16", "v_i32", "v_u32", "v_f32", "v_f64"]:
    r[v].set_auto_mask(False); s[v].set_auto_mask(False)
    a = np.asarray(r[v][0, 3:40:2, 5:70:3]).astype("f8")
    b = np.asarray(s[v][3:40:2, 5:70:3]).astype("f8")
    np.testing.assert_array_equal(a, b, err_msg=v)
print("ok")
"#,
        url = f.url("types"),
        src = f.source("types.nc").display()
    );
    assert_eq!(python(&script).trim(), "ok");
}

#[test]
fn a_vertical_axis_is_served_in_t_z_y_x_order() {
    let f = fixture();
    tessera::store::tile::quiet_hdf5();
    let nc = netcdf::open(f.url("levels")).unwrap();
    let v = nc.variable("temp").unwrap();
    assert_eq!(v.dimensions().iter().map(|d| d.name()).collect::<Vec<_>>(), ["time", "depth", "lat", "lon"]);
    let got: Vec<f32> = v.get_values((&[1, 0, 10, 15][..], &[1, 3, 20, 30][..], &[1, 1, 2, 1][..])).unwrap();
    let want: Vec<f32> = (0..3).flat_map(|z| (0..20).flat_map(move |j| (15..45).map(move |x| source::level_value(1, z, 10 + 2 * j, x)))).collect();
    assert_eq!(got, want);
    let depth: Vec<f32> = nc.variable("depth").unwrap().get_values(..).unwrap();
    assert_eq!(depth, vec![0.0, 10.0, 50.0]);
}

#[test]
fn dods_bytes_and_headers() {
    let f = fixture();
    let (status, head, body) = http("GET", &format!("{}.dods?mask.mask%5b2%5d%5b0:2%5d", f.url("acc")));
    assert_eq!(status, 200);
    assert!(head.contains("content-description: dods_data") && head.contains("xdap: 2.0"), "{head}");
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("Dataset {\n    Structure {\n        Byte mask[lat = 1][lon = 3];\n    } mask;\n} acc;\nData:\n"), "{text}");
    let tail = &body[body.len() - 12..];
    assert_eq!(&tail[..8], &[0, 0, 0, 3, 0, 0, 0, 3]);
    assert_eq!(&tail[8..], &[source::mask(2, 0), source::mask(2, 1), source::mask(2, 2), 0]);
    let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().trim().parse().unwrap();
    assert_eq!(len, body.len());
    // HEAD answers with the same headers and no body, without reading data.
    let (status, head2, body2) = http("HEAD", &format!("{}.dods?sst", f.url("acc")));
    assert_eq!(status, 200);
    assert!(body2.is_empty());
    let (_, _, full) = http("GET", &format!("{}.dods?sst", f.url("acc")));
    assert!(head2.contains(&format!("content-length: {}", full.len())), "{head2}");
    // sst, then its maps time, lat, lon: each array with its two counts.
    assert_eq!(full.len(), dds_len(&full) + (8 + 3 * 600 * 800 * 4) + (8 + 3 * 8) + (8 + 600 * 4) + (8 + 800 * 4));
    for suffix in ["dds", "das", "html", "info", "ver", "ascii?lat"] {
        let (s, _, b) = http("HEAD", &format!("{}.{suffix}", f.url("acc")));
        assert_eq!((s, b.len()), (200, 0), "HEAD .{suffix}");
    }
}

#[test]
fn ascii_html_info_version_and_help() {
    let f = fixture();
    let (s, head, body) = http("GET", &format!("{}.ascii?sst%5b0%5d%5b300:301%5d%5b400:402%5d", f.url("acc")));
    assert_eq!(s, 200);
    assert!(head.contains("text/plain"));
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("Dataset: acc\nsst.lon, "), "{text}");
    let row: Vec<f32> = text.lines().nth(2).unwrap().split(", ").skip(1).map(|v| v.parse().unwrap()).collect();
    assert_eq!(row, (400..403).map(|x| source::sst(0, 300, x)).collect::<Vec<_>>());
    let (_, _, asc) = http("GET", &format!("{}.asc?lat%5b0:2%5d", f.url("acc")));
    assert!(String::from_utf8(asc).unwrap().contains("lat, 59.95, 59.85, 59.75"));
    let (s, head, body) = http("GET", &format!("{}.html", f.url("acc")));
    assert_eq!(s, 200);
    assert!(head.contains("text/html"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("Data Request Form") && html.contains("value=\"sst\"") && html.contains("<script>"));
    let (s, _, body) = http("GET", &format!("{}.info", f.url("acc")));
    assert_eq!(s, 200);
    assert!(String::from_utf8(body).unwrap().contains("800 x 600"));
    for url in [format!("{}.ver", f.url("acc")), format!("{}/version", f.base)] {
        let (s, head, body) = http("GET", &url);
        assert_eq!(s, 200);
        assert!(head.contains("xopendap-server: tessera/"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["dap"], "2.0");
    }
    let (s, _, body) = http("GET", &format!("{}/help", f.base));
    assert_eq!(s, 200);
    assert!(String::from_utf8(body).unwrap().contains(".dods"));
    let (s, head, _) = http("GET", &f.url("acc"));
    assert_eq!(s, 303);
    assert!(head.contains("location: /datasets/acc"), "{head}");
    let (s, _, body) = http("GET", &format!("{}/", f.base));
    assert_eq!(s, 200);
    assert!(String::from_utf8(body).unwrap().contains("/datasets/acc"));
    let (s, _, body) = http("GET", &format!("{}/dap", f.base));
    assert_eq!(s, 200);
    assert!(String::from_utf8(body).unwrap().contains("/dap/acc.html"));
}

/// Status, and the DAP2 error body every client understands.
fn error(url: &str) -> (u16, String) {
    let (status, head, body) = http("GET", url);
    let body = String::from_utf8(body).unwrap();
    assert!(head.contains("content-description: dods_error"), "{url}: {head}");
    assert!(body.starts_with("Error {\n    code = ") && body.ends_with("\";\n};\n"), "{url}: {body:?}");
    assert!(body.contains(&format!("code = {status};")));
    (status, body)
}

#[test]
fn bad_requests_get_dap2_errors() {
    let f = fixture();
    let u = f.url("acc");
    for (path, status, needle) in [
        (format!("{u}.dods?sst%5b0:1:2"), 400, "expected ']'"),
        (format!("{u}.dds?nosuch"), 400, "no variable `nosuch` in this dataset at column 1; variables are time, lat, lon, sst, chl, mask"),
        (format!("{u}.dods?sst%5b3%5d"), 400, "index 3 is outside dimension time (size 3) of variable sst at column 4"),
        (format!("{u}.dods?sst%5b0%5d%5b10:5%5d%5b0%5d"), 400, "hyperslab [10:5] of dimension lat (size 600) of variable sst stops at 5, before its start 10"),
        (format!("{u}.dods?sst%5b0%5d%5b0:0:5%5d%5b0%5d"), 400, "stride 0 in the hyperslab [0:0:5] of dimension lat"),
        (format!("{u}.dods?sst%5b0%5d%5b0%5d%5b0%5d%5b0%5d"), 400, "sst has 3 dimensions but 4 hyperslabs were given"),
        (format!("{u}.dods?sst%5b99999999999999999999999%5d"), 400, "number `99999999999999999999999` is too large"),
        (format!("{u}.dods?sst&lat%3E0"), 400, "selections are not supported on gridded data"),
        (format!("{u}.dods?sst%5b-1%5d"), 400, "negative index in the hyperslab of `sst`"),
        (format!("{u}.dods?sst,chl"), 413, "exceeds the limit"),
        (format!("{}/dap/nosuch.dds", f.base), 404, "no dataset 'nosuch' on this server"),
        (format!("{}/dap/acc.xyz", f.base), 404, "no dataset 'acc.xyz' on this server"),
        (format!("{}/dap/..%2F..%2Fetc%2Fpasswd.dds", f.base), 404, "dataset names have no '/'"),
        (format!("{}/dap/%2e%2e.dds", f.base), 404, "no dataset '..' on this server"),
        (format!("{}/dap/acc/../acc.dds", f.base), 404, "no dataset 'acc/../acc.dds': dataset names have no '/'"),
        (format!("{}/nothing/here", f.base), 404, "no such resource"),
    ] {
        let (s, body) = error(&path);
        assert_eq!(s, status, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {needle:?} not in {body}");
    }
    // The limit is stated with the size.
    let (_, body) = error(&format!("{u}.dods?sst,chl"));
    assert!(body.contains(&MAX_RESPONSE.to_string()), "{body}");
    // netCDF-C reports a missing dataset as such (it shows no DAP2 message
    // text for a 404).
    let out = command("ncdump").arg("-h").arg(format!("{}/dap/nosuch", f.base)).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NetCDF: file not found"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_catalogued_tile_missing_from_the_pool_is_a_500_naming_it() {
    let f = fixture();
    let (s, body) = error(&format!("{}.dods?sst%5b1%5d%5b300:310%5d%5b300:310%5d", f.url("broken")));
    assert_eq!(s, 500);
    assert!(body.contains("broken") && body.contains("sst_tile_x1_y1.nc"), "{body}");
    // Requests that do not touch it still work.
    let (s, _, _) = http("GET", &format!("{}.dods?sst%5b0%5d%5b300:310%5d%5b300:310%5d", f.url("broken")));
    assert_eq!(s, 200);
}

/// Length of the DDS part of a .dods body, `Data:\n` included.
fn dds_len(body: &[u8]) -> usize {
    body.windows(6).position(|w| w == b"Data:\n").unwrap() + 6
}

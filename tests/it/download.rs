//! NetCDF downloads (`.nc`, `.nc4`), resumable ranges, coordinate-value
//! subsetting, NcML and the export CLI, against the shared server.

use crate::common::server::fixture;
use crate::common::{Cli, command, source};
use crate::dap::http;
use std::io::{Read, Write};

fn get_with(url: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    crate::common::http_request("GET", url, headers)
}

use crate::common::header;

fn save(bytes: &[u8], name: &str) -> std::path::PathBuf {
    let p = tempfile::tempdir().unwrap().keep().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Every value of every variable of a downloaded file, against the source.
fn check_file(path: &std::path::Path, t: &[usize], y: &[usize], x: &[usize]) {
    tessera::store::tile::quiet_hdf5();
    let f = netcdf::open(path).unwrap();
    let spec = &fixture().spec;
    for v in f.variables() {
        let name = v.name();
        match name.as_str() {
            "sst" => {
                let got: Vec<f32> = v.get_values(..).unwrap();
                let want: Vec<f32> = t.iter().flat_map(|&k| y.iter().flat_map(move |&j| x.iter().map(move |&i| source::sst(k, j, i)))).collect();
                assert_eq!(got, want, "{}: sst", path.display());
            }
            "chl" => {
                let got: Vec<i16> = v.get_values(..).unwrap();
                let want: Vec<i16> = t.iter().flat_map(|&k| y.iter().flat_map(move |&j| x.iter().map(move |&i| source::chl(k, j, i)))).collect();
                assert_eq!(got, want, "{}: chl", path.display());
                assert_eq!(v.attribute("scale_factor").unwrap().value().unwrap(), netcdf::AttributeValue::Float(0.01));
            }
            "mask" => {
                let got: Vec<i8> = v.get_values(..).unwrap();
                let want: Vec<i8> = y.iter().flat_map(|&j| x.iter().map(move |&i| source::mask(j, i) as i8)).collect();
                assert_eq!(got, want, "{}: mask", path.display());
                assert_eq!(v.attribute("_Unsigned").unwrap().value().unwrap(), netcdf::AttributeValue::Str("true".into()));
            }
            "lat" => {
                let got: Vec<f32> = v.get_values(..).unwrap();
                assert_eq!(got, y.iter().map(|&j| source::lat(spec, j)).collect::<Vec<_>>());
            }
            "lon" => {
                let got: Vec<f32> = v.get_values(..).unwrap();
                assert_eq!(got, x.iter().map(|&i| source::lon(spec, i)).collect::<Vec<_>>());
            }
            "time" => {
                let got: Vec<f64> = v.get_values(..).unwrap();
                assert_eq!(got, t.iter().map(|&k| source::time_value(spec, k)).collect::<Vec<_>>());
            }
            other => panic!("unexpected variable {other}"),
        }
    }
    let history = f.attribute("history").unwrap().value().unwrap();
    assert!(matches!(history, netcdf::AttributeValue::Str(ref h) if h.contains("tessera subset of dataset acc")), "{history:?}");
}

fn steps(start: usize, stride: usize, stop: usize) -> Vec<usize> {
    (start..=stop).step_by(stride).collect()
}

#[test]
fn nc_downloads_equal_the_source() {
    let f = fixture();
    for (ce, t, y, x, filename) in [
        ("sst[0:1:2][10:7:599][3:9:799]", steps(0, 1, 2), steps(10, 7, 599), steps(3, 9, 799), "acc_sst_20100101T120000-20100103T120000.nc"),
        ("sst[1][250:1:300][700:1:799],chl[1][250:1:300][700:1:799],mask[250:1:300][700:1:799]", vec![1], steps(250, 1, 300), steps(700, 1, 799), "acc_sst-chl-mask_20100102T120000.nc"),
        ("chl[0:2:2][0:50:599][0:100:799]", steps(0, 2, 2), steps(0, 50, 599), steps(0, 100, 799), "acc_chl_20100101T120000-20100103T120000.nc"),
        ("mask[0:3:599][760:1:799]", vec![], steps(0, 3, 599), steps(760, 1, 799), "acc_mask.nc"),
    ] {
        let (status, head, body) = http("GET", &format!("{}.nc?{}", f.url("acc"), ce.replace('[', "%5B").replace(']', "%5D")));
        assert_eq!(status, 200, "{ce}: {}", String::from_utf8_lossy(&body));
        assert_eq!(header(&head, "content-length").unwrap().parse::<usize>().unwrap(), body.len());
        assert_eq!(header(&head, "accept-ranges"), Some("bytes"));
        // (header values are lower-cased by the test client)
        assert_eq!(header(&head, "content-disposition"), Some(format!("attachment; filename=\"{filename}\"").to_lowercase().as_str()), "{ce}");
        let path = save(&body, filename);
        check_file(&path, &t, &y, &x);
        let kind = command("ncdump").arg("-k").arg(&path).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&kind.stdout).trim(), "64-bit offset");
        let script = format!(
            "import xarray as xr, numpy as np\nds = xr.open_dataset({:?})\nsrc = xr.open_dataset({:?})\nfor v in ds.data_vars:\n    sel = {{d: ds[d].values for d in ds[v].dims if d != 'time'}}\n    a = ds[v].values\n    b = src[v].sel(**sel).values if 'time' not in ds[v].dims else src[v].sel(time=ds.time.values, **sel).values\n    np.testing.assert_array_equal(a, b, err_msg=v)\nprint('ok')",
            path.display().to_string(),
            f.source("acc.nc").display().to_string()
        );
        let out = command("python3").arg("-c").arg(script).env("PYTHONWARNINGS", "ignore").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn nc_values_equal_the_dods_response() {
    let f = fixture();
    let ce = "sst[0:1:2][250:3:400][700:5:799]";
    let (_, _, body) = http("GET", &format!("{}.nc?{}", f.url("acc"), ce.replace('[', "%5B").replace(']', "%5D")));
    let path = save(&body, "x.nc");
    tessera::store::tile::quiet_hdf5();
    let file: Vec<f32> = netcdf::open(&path).unwrap().variable("sst").unwrap().get_values(..).unwrap();
    // The same constraint through netCDF-C's DAP client (.dods).
    let remote = netcdf::open(format!("{}?{ce}", f.url("acc"))).unwrap();
    let dods: Vec<f32> = remote.variable("sst").unwrap().get_values(..).unwrap();
    assert_eq!(file, dods);
}

#[test]
fn ranges_resume_byte_identical_and_etags_guard_versions() {
    let f = fixture();
    let url = format!("{}.nc?sst%5B0:1:2%5D%5B0:1:599%5D%5B0:2:799%5D,mask", f.url("acc"));
    let (s, head, full) = http("GET", &url);
    assert_eq!(s, 200);
    let tag = header(&head, "etag").unwrap().to_string();
    let total = full.len();
    let header_len = full.windows(4).position(|w| w == [0, 0, 0, 0]).unwrap_or(100);
    for offset in [1, 100, header_len, 4096, total / 3, total / 2 + 3, total - 5, total - 1] {
        let (s, head, part) = get_with(&url, &[("Range", &format!("bytes={offset}-"))]);
        assert_eq!(s, 206, "offset {offset}");
        assert_eq!(header(&head, "content-range"), Some(format!("bytes {offset}-{}/{total}", total - 1).as_str()));
        let mut joined = full[..offset].to_vec();
        joined.extend_from_slice(&part);
        assert!(joined == full, "resuming at {offset} gives the same file");
    }
    let (s, _, mid) = get_with(&url, &[("Range", "bytes=1000-1999")]);
    assert_eq!((s, &mid[..]), (206, &full[1000..2000]));
    let (s, _, _) = get_with(&url, &[("Range", &format!("bytes={total}-"))]);
    assert_eq!(s, 416);
    // The validator is stable; a stale one in If-Range gets the whole file.
    let (_, head2, _) = get_with(&url, &[("Range", "bytes=0-0")]);
    assert_eq!(header(&head2, "etag"), Some(tag.as_str()));
    let (s, _, body) = get_with(&url, &[("Range", "bytes=10-"), ("If-Range", &tag)]);
    assert_eq!((s, body.len()), (206, total - 10));
    let (s, _, body) = get_with(&url, &[("Range", "bytes=10-"), ("If-Range", "\"stale\"")]);
    assert_eq!((s, body.len()), (200, total));
    // curl -C - resumes an interrupted download to the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("resumed.nc");
    std::fs::write(&out, &full[..total / 2]).unwrap();
    let st = command("curl").args(["-s", "-f", "-C", "-", "-o"]).arg(&out).arg(&url).status().unwrap();
    assert!(st.success());
    assert!(std::fs::read(&out).unwrap() == full);
}

#[test]
fn the_etag_changes_when_the_dataset_changes() {
    let f = fixture();
    let url = format!("{}.nc?lat", f.url("levels"));
    let (_, head, _) = http("GET", &url);
    let before = header(&head, "etag").unwrap().to_string();
    let (_, head, _) = http("GET", &url);
    assert_eq!(header(&head, "etag"), Some(before.as_str()), "stable while nothing changes");
    // A new time slice for the dataset (a second file, two hours later).
    let src = tempfile::tempdir().unwrap().keep().join("later.nc");
    source::write_levels(&src);
    let script = format!(
        "import netCDF4\nd = netCDF4.Dataset({:?}, 'a')\nd['time'][:] = [12.0, 18.0]\nd.close()",
        src.display().to_string()
    );
    let out = command("python3").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli = Cli::new(&f.dir, &f.catalogue);
    cli.ok(&["ingest", "--dataset", "levels", src.to_str().unwrap()]);
    let (_, head, _) = http("GET", &url);
    assert_ne!(header(&head, "etag"), Some(before.as_str()));
}

#[test]
fn nc4_downloads_and_temporary_files() {
    let f = fixture();
    let tmp = f.dir.join("server-tmp");
    let (s, head, body) = http("GET", &format!("{}.nc4?chl%5B1%5D%5B0:599%5D%5B0:799%5D", f.url("acc")));
    assert_eq!(s, 200);
    assert_eq!(header(&head, "content-disposition"), Some("attachment; filename=\"acc_chl_20100102t120000.nc4\""));
    let path = save(&body, "x.nc4");
    let kind = command("ncdump").arg("-k").arg(&path).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&kind.stdout).trim(), "netCDF-4");
    check_file(&path, &[1], &steps(0, 1, 599), &steps(0, 1, 799));
    // A client that goes away mid-download leaves no temporary file and no
    // stuck task.
    let big = format!("{}.nc4?sst%5B0:2%5D%5B0:599%5D%5B0:799%5D", f.url("acc"));
    for _ in 0..3 {
        let rest = big.strip_prefix("http://").unwrap();
        let (host, p) = rest.split_at(rest.find('/').unwrap());
        let mut s = std::net::TcpStream::connect(host).unwrap();
        write!(s, "GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        drop(s);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.file_name()).collect();
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "temporary files left behind: {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (s, _, _) = http("GET", &format!("{}/version", f.base));
    assert_eq!(s, 200);
}

#[test]
fn coordinate_value_subsets() {
    let f = fixture();
    // lat runs 59.95 down to 0.05: bounds north first; lon 100.05 up.
    let by_value = "sst%5B(2010-01-02T12:00:00Z)%5D%5B(50.0):(45.0)%5D%5B(110):(112)%5D";
    let by_index = "sst%5B1%5D%5B100:149%5D%5B100:119%5D";
    for suffix in ["nc", "dods", "ascii"] {
        let (s1, _, a) = http("GET", &format!("{}.{suffix}?{by_value}", f.url("acc")));
        let (s2, _, b) = http("GET", &format!("{}.{suffix}?{by_index}", f.url("acc")));
        assert_eq!((s1, s2), (200, 200), "{suffix}");
        if suffix == "nc" {
            // The history line records the constraint; the data are equal.
            check_file(&save(&a, "v.nc"), &[1], &steps(100, 1, 149), &steps(100, 1, 119));
            check_file(&save(&b, "i.nc"), &[1], &steps(100, 1, 149), &steps(100, 1, 119));
        } else {
            assert!(a == b, "{suffix}: value and index forms give the same response");
        }
    }
    // A single value picks the nearest cell.
    let (_, _, a) = http("GET", &format!("{}.ascii?lat%5B(50.01)%5D", f.url("acc")));
    assert!(String::from_utf8_lossy(&a).contains("lat, 50.05"), "{}", String::from_utf8_lossy(&a));
    // Outside the axis: a 400 naming its range.
    let (s, _, body) = http("GET", &format!("{}.dods?sst%5B0%5D%5B(75):(70)%5D%5B0%5D", f.url("acc")));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(s, 400);
    assert!(text.contains("outside the axis lat") && text.contains("59.95") && text.contains("0.05"), "{text}");
}

#[test]
fn ncml_describes_the_live_view() {
    let f = fixture();
    let (s, head, body) = http("GET", &format!("{}.ncml", f.url("acc")));
    assert_eq!(s, 200);
    assert!(header(&head, "content-type").unwrap().starts_with("application/xml"));
    let xml = String::from_utf8(body).unwrap();
    let host = f.base.trim_start_matches("http://");
    for needle in [
        format!("location=\"http://{host}/dap/acc\""),
        "<dimension name=\"lat\" length=\"600\"/>".to_string(),
        "<variable name=\"chl\" shape=\"time lat lon\" type=\"short\">".to_string(),
        "<attribute name=\"scale_factor\" type=\"float\" value=\"0.01\"/>".to_string(),
        "<variable name=\"mask\" shape=\"lat lon\" type=\"byte\">".to_string(),
    ] {
        assert!(xml.contains(&needle), "{needle} not in {xml}");
    }
    let out = command("python3").arg("-c").arg("import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.read())").stdin(std::process::Stdio::piped()).spawn().and_then(|mut c| {
        c.stdin.take().unwrap().write_all(xml.as_bytes())?;
        c.wait_with_output()
    }).unwrap();
    assert!(out.status.success(), "well-formed XML");
}

#[test]
fn export_cli_equals_the_http_download() {
    let f = fixture();
    let cli = Cli::new(&f.dir, &f.catalogue);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.nc");
    let stdout = cli.ok(&[
        "export", "--dataset", "acc", "--var", "sst", "--var", "mask", "--time", "2010-01-02..2010-01-03T12:00:00Z",
        "--bbox", "105,20,130,40", "--stride", "2", "-o", out.to_str().unwrap(),
    ]);
    let ce = stdout.lines().find_map(|l| l.strip_prefix("constraint: ")).unwrap();
    let enc: String = ce.bytes().map(|b| if b.is_ascii_alphanumeric() || b"_.,:-".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    let (s, _, body) = http("GET", &format!("{}.nc?{enc}", f.url("acc")));
    assert_eq!(s, 200);
    assert!(std::fs::read(&out).unwrap() == body, "the export is byte-identical to the download");
    // lat 40 .. 20 north first: rows 200..=399 (lat 39.95 .. 20.05), stride 2.
    check_file(&out, &[1, 2], &steps(200, 2, 399), &steps(50, 2, 299));
    let nc4 = dir.path().join("e.nc4");
    cli.ok(&["export", "--dataset", "acc", "--var", "chl", "--time", "2010-01-01T12:00:00Z", "--format", "nc4", "-o", nc4.to_str().unwrap()]);
    check_file(&nc4, &[0], &steps(0, 1, 599), &steps(0, 1, 799));
    // An empty selection is refused, clearly.
    let err = cli.fails(&["export", "--dataset", "acc", "--time", "2031-01-01..2031-02-01", "-o", dir.path().join("x.nc").to_str().unwrap()]);
    assert!(err.contains("outside the axis time") && err.lines().count() == 1, "{err}");
    assert!(!dir.path().join("x.nc").exists());
    // The same file from the URL's own expression.
    let same = dir.path().join("same.nc");
    cli.ok(&["export", "--dataset", "acc", "--constraint", ce, "-o", same.to_str().unwrap()]);
    assert!(std::fs::read(&same).unwrap() == std::fs::read(&out).unwrap(), "--constraint gives the same file as the flags");
    // A wrong expression: one line saying what and where, then a caret
    // under the place.
    let err = cli.fails(&["export", "--dataset", "acc", "--constraint", "sst[0:1:1][0:2", "-o", dir.path().join("y.nc").to_str().unwrap()]);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].contains("Constraint error") && lines[0].contains("column 15"), "{err}");
    assert_eq!(lines[1], "sst[0:1:1][0:2", "{err}");
    assert_eq!(lines[2], format!("{}^", " ".repeat(14)), "{err}");
    assert!(!dir.path().join("y.nc").exists());
    let err = cli.fails(&["export", "--dataset", "acc", "--constraint", "sst", "--var", "sst", "-o", dir.path().join("z.nc").to_str().unwrap()]);
    assert!(err.contains("cannot be used with") && err.lines().count() == 1, "{err}");
}

#[test]
fn projected_grids_keep_their_grid_mapping_and_unsigned_types() {
    let f = fixture();
    let (s, _, body) = http("GET", &format!("{}.nc?v_u16,v_u8,v_i8,v_u32", f.url("types")));
    assert_eq!(s, 200);
    let path = save(&body, "types.nc");
    let dump = String::from_utf8(command("ncdump").arg("-h").arg(&path).output().unwrap().stdout).unwrap();
    for needle in ["int crs ;", "crs:grid_mapping_name = \"transverse_mercator\" ;", "short v_u16(time, y, x) ;", "v_u16:_Unsigned = \"true\" ;", "v_i8:_FillValue = -128b ;"] {
        assert!(dump.contains(needle), "{needle} not in {dump}");
    }
    let script = format!(
        "import netCDF4, numpy as np\nr = netCDF4.Dataset({:?})\ns = netCDF4.Dataset({:?})\nfor v in ['v_u16', 'v_u8', 'v_i8', 'v_u32']:\n    r[v].set_auto_mask(False); s[v].set_auto_mask(False)\n    np.testing.assert_array_equal(np.asarray(r[v][0]).astype('f8'), np.asarray(s[v][:]).astype('f8'), err_msg=v)\nprint('ok')",
        path.display().to_string(),
        f.source("types.nc").display().to_string()
    );
    let out = command("python3").arg("-c").arg(script).env("PYTHONWARNINGS", "ignore").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}", String::from_utf8_lossy(&out.stderr));
}

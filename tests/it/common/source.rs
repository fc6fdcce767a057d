//! CF source files with known values, written with netCDF.
//!
//! The standard source mirrors the acceptance data: `time = 3`, `lat = 600`
//! (descending), `lon = 800`; float32 `sst` with fill areas, packed int16
//! `chl`, and a time-invariant u8 `mask`. With 256 x 256 tiles the
//! top-left tile of `sst` and `chl` is all fill (not written) and the
//! right-most tile column of `mask` is all fill.

use ndarray::{Array2, Array3};
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Spec {
    pub nt: usize,
    pub ny: usize,
    pub nx: usize,
    pub descending: bool,
    /// NetCDF-4 (true) or NetCDF-3 64-bit offset.
    pub netcdf4: bool,
    /// First time value, in days since 2010-01-01.
    pub t0: f64,
    /// Shift of the longitude origin (to make a mismatched grid).
    pub lon_shift: f64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec { nt: 3, ny: 600, nx: 800, descending: true, netcdf4: true, t0: 0.5, lon_shift: 0.0 }
    }
}

pub const SST_FILL: f32 = -999.0;
pub const CHL_FILL: i16 = -32768;
pub const MASK_FILL: u8 = 255;

pub fn lat(spec: &Spec, j: usize) -> f32 {
    if spec.descending { (59.95 - 0.1 * j as f64) as f32 } else { (-59.95 + 0.1 * j as f64) as f32 }
}

pub fn lon(spec: &Spec, i: usize) -> f32 {
    (100.05 + spec.lon_shift + 0.1 * i as f64) as f32
}

pub fn time_value(spec: &Spec, k: usize) -> f64 {
    spec.t0 + k as f64
}

pub fn sst(t: usize, y: usize, x: usize) -> f32 {
    if (y < 300 && x < 300) || (x * 7 + y * 3) % 53 == 0 {
        SST_FILL
    } else {
        (10.0 + 0.01 * x as f64 + 0.05 * y as f64 + 0.25 * t as f64) as f32
    }
}

pub fn chl(t: usize, y: usize, x: usize) -> i16 {
    if (y < 300 && x < 300) || (x + y) % 97 == 0 {
        CHL_FILL
    } else {
        ((t * 1000 + y * 7 + x * 3) % 30000) as i16 - 1000
    }
}

pub fn mask(y: usize, x: usize) -> u8 {
    if x >= 768 { MASK_FILL } else { ((x * 3 + y * 5) % 254) as u8 }
}

/// Writes the standard source (sst, chl, mask) to `path`.
pub fn write(path: &Path, spec: &Spec) {
    write_vars(path, spec, &["sst", "chl", "mask"]);
}

pub fn write_vars(path: &Path, spec: &Spec, vars: &[&str]) {
    tessera::store::tile::quiet_hdf5();
    let opts = if spec.netcdf4 { netcdf::Options::NETCDF4 } else { netcdf::Options::_64BIT_OFFSET };
    let mut f = netcdf::create_with(path, opts).unwrap();
    f.add_dimension("time", spec.nt).unwrap();
    f.add_dimension("lat", spec.ny).unwrap();
    f.add_dimension("lon", spec.nx).unwrap();
    f.add_attribute("Conventions", "CF-1.8").unwrap();
    f.add_attribute("title", "test source").unwrap();
    f.add_attribute("history", "written by the tessera tests").unwrap();
    {
        let mut v = f.add_variable::<f64>("time", &["time"]).unwrap();
        v.put_attribute("units", "days since 2010-01-01 00:00:00").unwrap();
        v.put_attribute("calendar", "gregorian").unwrap();
        v.put_attribute("standard_name", "time").unwrap();
        v.put_attribute("axis", "T").unwrap();
    }
    {
        let mut v = f.add_variable::<f32>("lat", &["lat"]).unwrap();
        v.put_attribute("units", "degrees_north").unwrap();
        v.put_attribute("standard_name", "latitude").unwrap();
    }
    {
        let mut v = f.add_variable::<f32>("lon", &["lon"]).unwrap();
        v.put_attribute("units", "degrees_east").unwrap();
        v.put_attribute("standard_name", "longitude").unwrap();
    }
    if vars.contains(&"sst") {
        let mut v = f.add_variable::<f32>("sst", &["time", "lat", "lon"]).unwrap();
        v.put_attribute("_FillValue", SST_FILL).unwrap();
        v.put_attribute("units", "degC").unwrap();
        v.put_attribute("long_name", "Sea surface temperature").unwrap();
        v.put_attribute("valid_range", vec![-5.0f32, 60.0]).unwrap();
    }
    if vars.contains(&"chl") {
        let mut v = f.add_variable::<i16>("chl", &["time", "lat", "lon"]).unwrap();
        v.put_attribute("_FillValue", CHL_FILL).unwrap();
        v.put_attribute("scale_factor", 0.01f32).unwrap();
        v.put_attribute("add_offset", 2.5f32).unwrap();
        v.put_attribute("units", "mg m-3").unwrap();
    }
    if vars.contains(&"mask") {
        let mut v = if spec.netcdf4 {
            f.add_variable::<u8>("mask", &["lat", "lon"]).unwrap()
        } else {
            f.add_variable::<i8>("mask", &["lat", "lon"]).unwrap()
        };
        if spec.netcdf4 {
            v.put_attribute("_FillValue", MASK_FILL).unwrap();
        } else {
            v.put_attribute("_FillValue", MASK_FILL as i8).unwrap();
        }
        v.put_attribute("long_name", "surface class").unwrap();
    }
    if !spec.netcdf4 {
        f.enddef().unwrap();
    }
    let times: Vec<f64> = (0..spec.nt).map(|k| time_value(spec, k)).collect();
    f.variable_mut("time").unwrap().put_values(&times, ..).unwrap();
    let lats: Vec<f32> = (0..spec.ny).map(|j| lat(spec, j)).collect();
    f.variable_mut("lat").unwrap().put_values(&lats, ..).unwrap();
    let lons: Vec<f32> = (0..spec.nx).map(|i| lon(spec, i)).collect();
    f.variable_mut("lon").unwrap().put_values(&lons, ..).unwrap();
    if vars.contains(&"sst") {
        let a = Array3::from_shape_fn((spec.nt, spec.ny, spec.nx), |(t, y, x)| sst(t, y, x));
        f.variable_mut("sst").unwrap().put(a.view(), ..).unwrap();
    }
    if vars.contains(&"chl") {
        let a = Array3::from_shape_fn((spec.nt, spec.ny, spec.nx), |(t, y, x)| chl(t, y, x));
        f.variable_mut("chl").unwrap().put(a.view(), ..).unwrap();
    }
    if vars.contains(&"mask") {
        if spec.netcdf4 {
            let a = Array2::from_shape_fn((spec.ny, spec.nx), |(y, x)| mask(y, x));
            f.variable_mut("mask").unwrap().put(a.view(), ..).unwrap();
        } else {
            let a = Array2::from_shape_fn((spec.ny, spec.nx), |(y, x)| mask(y, x) as i8);
            f.variable_mut("mask").unwrap().put(a.view(), ..).unwrap();
        }
    }
    f.close().unwrap();
}

/// A small source with one variable of every supported type, values
/// spanning each type's range (unsigned values above the signed maximum).
pub fn write_all_types(path: &Path, ny: usize, nx: usize) {
    tessera::store::tile::quiet_hdf5();
    let mut f = netcdf::create_with(path, netcdf::Options::NETCDF4).unwrap();
    f.add_dimension("y", ny).unwrap();
    f.add_dimension("x", nx).unwrap();
    {
        let mut v = f.add_variable::<f64>("y", &["y"]).unwrap();
        v.put_attribute("standard_name", "projection_y_coordinate").unwrap();
        v.put_attribute("units", "m").unwrap();
        v.put_values(&(0..ny).map(|j| 5_000_000.0 - 30.0 * j as f64).collect::<Vec<_>>(), ..).unwrap();
    }
    {
        let mut v = f.add_variable::<f64>("x", &["x"]).unwrap();
        v.put_attribute("standard_name", "projection_x_coordinate").unwrap();
        v.put_attribute("units", "m").unwrap();
        v.put_values(&(0..nx).map(|i| 400_000.0 + 30.0 * i as f64).collect::<Vec<_>>(), ..).unwrap();
    }
    {
        let mut v = f.add_variable::<i32>("crs", &[]).unwrap();
        v.put_attribute("grid_mapping_name", "transverse_mercator").unwrap();
        v.put_attribute("epsg_code", "EPSG:32633").unwrap();
        v.put_attribute("crs_wkt", "PROJCS[\"WGS 84 / UTM zone 33N\",AUTHORITY[\"EPSG\",\"32633\"]]").unwrap();
    }
    macro_rules! var {
        ($name:literal, $t:ty, $fill:expr, $f:expr) => {{
            let mut v = f.add_variable::<$t>($name, &["y", "x"]).unwrap();
            v.put_attribute("_FillValue", $fill as $t).unwrap();
            v.put_attribute("grid_mapping", "crs").unwrap();
            let a = Array2::from_shape_fn((ny, nx), |(y, x)| -> $t { $f(y, x) });
            v.put(a.view(), ..).unwrap();
        }};
    }
    var!("v_u8", u8, 0u8, |y: usize, x: usize| ((y * 31 + x * 7) % 250 + 5) as u8);
    var!("v_i8", i8, -128i8, |y: usize, x: usize| ((y * 31 + x * 7) % 250) as i32 as i8);
    var!("v_i16", i16, -32768i16, |y: usize, x: usize| ((y * 3001 + x * 7) % 60000) as i32 as i16);
    var!("v_u16", u16, 0u16, |y: usize, x: usize| (40000 + (y * 301 + x) % 20000) as u16);
    var!("v_i32", i32, i32::MIN, |y: usize, x: usize| (y as i32 - 50) * 40_000_000 + x as i32);
    var!("v_u32", u32, 0u32, |y: usize, x: usize| 3_000_000_000u32 + (y * 1000 + x) as u32);
    var!("v_f32", f32, f32::NAN, |y: usize, x: usize| if (x + y) % 5 == 0 { f32::NAN } else { (y as f32) * 0.5 - x as f32 });
    var!("v_f64", f64, -1e30f64, |y: usize, x: usize| 1e-3 * y as f64 + 1e9 * x as f64);
    f.close().unwrap();
}

/// A 4-D source: `temp(time = 2, depth = 3, lat = 50, lon = 60)`.
pub fn write_levels(path: &Path) {
    tessera::store::tile::quiet_hdf5();
    let mut f = netcdf::create_with(path, netcdf::Options::NETCDF4).unwrap();
    f.add_dimension("time", 2).unwrap();
    f.add_dimension("depth", 3).unwrap();
    f.add_dimension("lat", 50).unwrap();
    f.add_dimension("lon", 60).unwrap();
    let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
    t.put_attribute("units", "hours since 2000-01-01").unwrap();
    t.put_values(&[0.0, 6.0], ..).unwrap();
    let mut d = f.add_variable::<f32>("depth", &["depth"]).unwrap();
    d.put_attribute("units", "m").unwrap();
    d.put_attribute("positive", "down").unwrap();
    d.put_values(&[0.0f32, 10.0, 50.0], ..).unwrap();
    let mut la = f.add_variable::<f64>("lat", &["lat"]).unwrap();
    la.put_attribute("units", "degrees_north").unwrap();
    la.put_values(&(0..50).map(|j| -24.5 + j as f64).collect::<Vec<_>>(), ..).unwrap();
    let mut lo = f.add_variable::<f64>("lon", &["lon"]).unwrap();
    lo.put_attribute("units", "degrees_east").unwrap();
    lo.put_values(&(0..60).map(|i| 0.5 + i as f64).collect::<Vec<_>>(), ..).unwrap();
    let mut v = f.add_variable::<f32>("temp", &["time", "depth", "lat", "lon"]).unwrap();
    v.put_attribute("_FillValue", -1.0f32).unwrap();
    let a = ndarray::Array4::from_shape_fn((2, 3, 50, 60), |(t, z, y, x)| level_value(t, z, y, x));
    v.put(a.view(), ..).unwrap();
    f.close().unwrap();
}

pub fn level_value(t: usize, z: usize, y: usize, x: usize) -> f32 {
    (t * 1000 + z * 100 + y) as f32 + x as f32 * 0.01
}

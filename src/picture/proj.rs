//! Map projections: EPSG codes, WMS `CRS:84` and CF grid mappings as
//! `proj4rs` projections, and point transforms between them.
//!
//! proj4rs is a pure-Rust port of PROJ.4: no C library to link and no
//! bindgen at build time. It works in radians for geographic coordinates;
//! this module speaks degrees (longitude, latitude) so that callers never
//! see the difference. It knows PROJ.4's projections only: no `ob_tran`,
//! hence no rotated pole.

use super::PictureError;
use crate::model::{Attribute, Attributes};
use proj4rs::Proj;
use proj4rs::transform::{Transform, TransformClosure};
use std::fmt;

/// EPSG:3857 as the EPSG table writes it, less `+nadgrids=@null +wktext`.
/// The null grid is there to stop a datum shift between the sphere and
/// WGS84 (latitudes are used on the sphere unchanged); a definition with
/// no datum stops it too, and spares proj4rs two geocentric conversions a
/// point, two thirds of the time a Web Mercator map takes.
const WEB_MERCATOR: &str =
    "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +no_defs";

/// A coordinate reference system ready to transform points.
#[derive(Clone)]
pub struct Projection {
    proj: Proj,
    geographic: bool,
    /// The PROJ.4 string it was made from: for logs, and to tell two
    /// projections apart without transforming anything.
    definition: String,
}

impl fmt::Debug for Projection {
    // By hand: proj4rs' own Debug prints its whole internal state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projection")
            .field("definition", &self.definition)
            .finish()
    }
}

impl Projection {
    /// A WMS CRS code: `EPSG:<n>` for any code in the EPSG table that
    /// proj4rs reads, or `CRS:84` (longitude/latitude on WGS84).
    /// Case-insensitive.
    pub fn from_code(code: &str) -> Result<Projection, PictureError> {
        let upper = code.trim().to_ascii_uppercase();
        let unknown = || PictureError::UnknownCrs(code.trim().to_string());
        let epsg = if upper == "CRS:84" {
            4326
        } else {
            upper
                .strip_prefix("EPSG:")
                .and_then(|n| n.parse::<u16>().ok())
                .ok_or_else(unknown)?
        };
        if epsg == 3857 {
            return Projection::from_proj_string(WEB_MERCATOR);
        }
        let def = crs_definitions::from_code(epsg).ok_or_else(unknown)?;
        Projection::from_proj_string(def.proj4)
    }

    /// A PROJ.4 string such as `+proj=stere +lat_0=90 ...`. Geocentric
    /// systems are refused: a map has two coordinates, not three.
    pub fn from_proj_string(definition: &str) -> Result<Projection, PictureError> {
        let refused = |message: String| PictureError::Projection {
            definition: definition.to_string(),
            message,
        };
        let proj = Proj::from_proj_string(definition).map_err(|e| refused(e.to_string()))?;
        if proj.is_geocent() {
            return Err(refused("a geocentric CRS cannot draw a map".into()));
        }
        Ok(Projection {
            geographic: proj.is_latlong(),
            proj,
            definition: definition.to_string(),
        })
    }

    /// The projection a CF `grid_mapping` variable describes, from its
    /// attributes. The ellipsoid comes from `earth_radius`,
    /// `semi_major_axis` with `inverse_flattening` or `semi_minor_axis`,
    /// and is WGS84 when none is given. Projected coordinates are taken in
    /// metres: a grid whose x/y axes are in km must be scaled by the caller.
    pub fn from_cf(attrs: &[Attribute]) -> Result<Projection, PictureError> {
        Projection::from_proj_string(&cf_definition(attrs)?)
    }

    /// Longitude/latitude rather than projected x/y.
    pub fn is_geographic(&self) -> bool {
        self.geographic
    }

    /// The PROJ.4 string this projection was made from.
    pub fn definition(&self) -> &str {
        &self.definition
    }

    /// The same system, parameter for parameter (in any order, numbers
    /// compared as numbers): a transform between the two would change
    /// nothing, so callers may skip it.
    pub fn same_as(&self, other: &Projection) -> bool {
        canonical(&self.definition) == canonical(&other.definition)
    }
}

/// A definition's parameters, sorted, numbers re-printed, and the flags
/// that change no coordinate left out.
fn canonical(definition: &str) -> Vec<String> {
    let mut params: Vec<String> = definition
        .split_whitespace()
        .map(|t| t.trim_start_matches('+'))
        .filter(|t| !matches!(*t, "no_defs" | "wktext" | "type=crs"))
        .map(|t| match t.split_once('=') {
            Some((k, v)) => match v.parse::<f64>() {
                Ok(n) => format!("{k}={n}"),
                Err(_) => t.to_string(),
            },
            None => t.to_string(),
        })
        .collect();
    params.sort();
    params
}

/// Transforms `points` in place from `from` to `to`: (longitude,
/// latitude) in degrees for geographic systems, (x, y) in the system's
/// units (metres) otherwise. A point that cannot be transformed (outside
/// the projection's domain, NaN in) comes out as (NaN, NaN); the others
/// are unaffected.
pub fn transform(from: &Projection, to: &Projection, points: &mut [(f64, f64)]) {
    if from.geographic {
        points
            .iter_mut()
            .for_each(|p| *p = (p.0.to_radians(), p.1.to_radians()));
    }
    let mut batch = PointByPoint(points);
    if proj4rs::transform::transform(&from.proj, &to.proj, &mut batch).is_err() {
        // Only a projection without an inverse or a forward fails the batch.
        batch.0.fill((f64::NAN, f64::NAN));
    }
    let points = batch.0;
    if to.geographic {
        points
            .iter_mut()
            .for_each(|p| *p = (p.0.to_degrees(), p.1.to_degrees()));
    }
}

/// The points of a batch, each failing alone: proj4rs stops a batch at
/// the first point its closure refuses, so a failed point becomes NaN
/// here and is passed over by the later steps of the pipeline.
struct PointByPoint<'a>(&'a mut [(f64, f64)]);

impl Transform for PointByPoint<'_> {
    fn transform_coordinates<F: TransformClosure>(
        &mut self,
        f: &mut F,
    ) -> proj4rs::errors::Result<()> {
        for p in self.0.iter_mut() {
            if p.0.is_nan() || p.1.is_nan() {
                *p = (f64::NAN, f64::NAN);
                continue;
            }
            *p = match f(p.0, p.1, 0.0) {
                Ok((x, y, _)) if x.is_finite() && y.is_finite() => (x, y),
                _ => (f64::NAN, f64::NAN),
            };
        }
        Ok(())
    }
}

/// A CF grid mapping's attributes, read with the mapping's name at hand
/// for the errors.
struct CfMapping<'a> {
    name: &'a str,
    attrs: &'a [Attribute],
}

impl CfMapping<'_> {
    fn bad(&self, message: String) -> PictureError {
        PictureError::BadMapping {
            mapping: self.name.to_string(),
            message,
        }
    }

    /// All values of a numeric attribute, which must be finite.
    fn values(&self, key: &str) -> Result<Option<Vec<f64>>, PictureError> {
        match self.attrs.get_attr(key) {
            None => Ok(None),
            Some(v) => match v.to_f64_vec() {
                Some(xs) if !xs.is_empty() && xs.iter().all(|x| x.is_finite()) => Ok(Some(xs)),
                _ => Err(self.bad(format!("{key} is not a finite number"))),
            },
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, PictureError> {
        Ok(self.values(key)?.map(|v| v[0]))
    }

    fn required(&self, key: &str) -> Result<f64, PictureError> {
        self.number(key)?
            .ok_or_else(|| self.bad(format!("{key} is missing")))
    }

    fn or(&self, key: &str, default: f64) -> Result<f64, PictureError> {
        Ok(self.number(key)?.unwrap_or(default))
    }

    /// `+x_0=.. +y_0=..` from the false easting and northing (0 if absent).
    fn false_origin(&self) -> Result<String, PictureError> {
        Ok(format!(
            "+x_0={} +y_0={}",
            self.or("false_easting", 0.0)?,
            self.or("false_northing", 0.0)?
        ))
    }

    /// One or two standard parallels as `+lat_1=.. +lat_2=..` (a tangent
    /// cone repeats the one).
    fn two_parallels(&self) -> Result<String, PictureError> {
        let sp = self
            .values("standard_parallel")?
            .ok_or_else(|| self.bad("standard_parallel is missing".into()))?;
        let (lat1, lat2) = (sp[0], sp.get(1).copied().unwrap_or(sp[0]));
        Ok(format!("+lat_1={lat1} +lat_2={lat2}"))
    }
}

/// The PROJ.4 string for a CF grid mapping.
fn cf_definition(attrs: &[Attribute]) -> Result<String, PictureError> {
    let name = attrs
        .text_attr("grid_mapping_name")
        .ok_or_else(|| PictureError::BadMapping {
            mapping: "(unnamed)".into(),
            message: "grid_mapping_name is missing".into(),
        })?;
    let m = CfMapping {
        name: name.trim(),
        attrs,
    };
    let projection = match m.name {
        "latitude_longitude" => "+proj=longlat".to_string(),
        "polar_stereographic" => polar_stereographic(&m)?,
        "stereographic" => format!(
            "+proj=stere +lat_0={} +lon_0={} +k={} {}",
            m.required("latitude_of_projection_origin")?,
            m.required("longitude_of_projection_origin")?,
            m.or("scale_factor_at_projection_origin", 1.0)?,
            m.false_origin()?
        ),
        "lambert_conformal_conic" => format!(
            "+proj=lcc {} +lat_0={} +lon_0={} {}",
            m.two_parallels()?,
            m.required("latitude_of_projection_origin")?,
            m.required("longitude_of_central_meridian")?,
            m.false_origin()?
        ),
        "albers_conical_equal_area" => format!(
            "+proj=aea {} +lat_0={} +lon_0={} {}",
            m.two_parallels()?,
            m.required("latitude_of_projection_origin")?,
            m.required("longitude_of_central_meridian")?,
            m.false_origin()?
        ),
        "transverse_mercator" => format!(
            "+proj=tmerc +lat_0={} +lon_0={} +k={} {}",
            m.required("latitude_of_projection_origin")?,
            m.required("longitude_of_central_meridian")?,
            m.or("scale_factor_at_central_meridian", 1.0)?,
            m.false_origin()?
        ),
        "mercator" => mercator(&m)?,
        "lambert_azimuthal_equal_area" => format!(
            "+proj=laea +lat_0={} +lon_0={} {}",
            m.required("latitude_of_projection_origin")?,
            m.required("longitude_of_projection_origin")?,
            m.false_origin()?
        ),
        "rotated_latitude_longitude" => {
            return Err(PictureError::UnsupportedMapping(
                "rotated_latitude_longitude (proj4rs has no ob_tran)".into(),
            ));
        }
        other => return Err(PictureError::UnsupportedMapping(other.to_string())),
    };
    let units = if m.name == "latitude_longitude" {
        ""
    } else {
        " +units=m"
    };
    Ok(format!(
        "{projection} {}{}{units} +no_defs",
        ellipsoid(&m)?,
        prime_meridian(&m)?
    ))
}

/// Polar stereographic, variant B (`standard_parallel`) or A
/// (`scale_factor_at_projection_origin`), the form EPSG's own PROJ.4
/// strings take (EPSG:3413, EPSG:32661), so that [`Projection::same_as`]
/// recognises them.
fn polar_stereographic(m: &CfMapping) -> Result<String, PictureError> {
    let lat0 = m.required("latitude_of_projection_origin")?;
    if lat0.abs() != 90.0 {
        return Err(m.bad(format!(
            "latitude_of_projection_origin is {lat0}, not +90 or -90"
        )));
    }
    let lon0 = m.required("straight_vertical_longitude_from_pole")?;
    let (lat_ts, k) = match m.number("standard_parallel")? {
        Some(sp) => (sp, 1.0),
        None => (lat0, m.or("scale_factor_at_projection_origin", 1.0)?),
    };
    Ok(format!(
        "+proj=stere +lat_0={lat0} +lat_ts={lat_ts} +lon_0={lon0} +k={k} {}",
        m.false_origin()?
    ))
}

/// Mercator with either a standard parallel or a scale factor.
fn mercator(m: &CfMapping) -> Result<String, PictureError> {
    let lon0 = m.or("longitude_of_projection_origin", 0.0)?;
    let scale = match m.number("standard_parallel")? {
        Some(sp) => format!("+lat_ts={sp}"),
        None => format!("+k={}", m.or("scale_factor_at_projection_origin", 1.0)?),
    };
    Ok(format!(
        "+proj=merc +lon_0={lon0} {scale} {}",
        m.false_origin()?
    ))
}

/// WGS84's semi-major axis and inverse flattening.
const WGS84: (f64, f64) = (6_378_137.0, 298.257_223_563);

/// The ellipsoid as PROJ.4 parameters. WGS84 (given or by default) is
/// named as the datum, as EPSG's strings do; any other figure has no
/// datum, so no datum shift is applied to it (PROJ.4's rule, and what CF
/// data without a datum means).
fn ellipsoid(m: &CfMapping) -> Result<String, PictureError> {
    let positive = |key: &str| -> Result<Option<f64>, PictureError> {
        match m.number(key)? {
            Some(v) if v <= 0.0 => Err(m.bad(format!("{key} is {v}, not positive"))),
            other => Ok(other),
        }
    };
    if let Some(r) = positive("earth_radius")? {
        return Ok(format!("+R={r}"));
    }
    let Some(a) = positive("semi_major_axis")? else {
        return Ok("+datum=WGS84".into());
    };
    let rf = match (
        m.number("inverse_flattening")?,
        positive("semi_minor_axis")?,
    ) {
        (Some(rf), _) if rf < 0.0 => {
            return Err(m.bad(format!("inverse_flattening is {rf}, negative")));
        }
        (Some(rf), _) => rf,
        (None, Some(b)) if b < a => a / (a - b),
        (None, _) => 0.0,
    };
    Ok(if rf == 0.0 {
        format!("+R={a}")
    } else if a == WGS84.0 && (rf - WGS84.1).abs() < 1e-6 {
        "+datum=WGS84".into()
    } else {
        format!("+a={a} +rf={rf}")
    })
}

/// `+pm=<degrees>` for a prime meridian other than Greenwich.
fn prime_meridian(m: &CfMapping) -> Result<String, PictureError> {
    Ok(match m.or("longitude_of_prime_meridian", 0.0)? {
        0.0 => String::new(),
        pm => format!(" +pm={pm}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttrValue;

    fn close(a: (f64, f64), b: (f64, f64), tol: f64) -> bool {
        (a.0 - b.0).abs() <= tol && (a.1 - b.1).abs() <= tol
    }

    fn forward(code: &str, lon: f64, lat: f64) -> (f64, f64) {
        let mut p = [(lon, lat)];
        transform(
            &Projection::from_code("EPSG:4326").unwrap(),
            &Projection::from_code(code).unwrap(),
            &mut p,
        );
        p[0]
    }

    fn inverse(code: &str, x: f64, y: f64) -> (f64, f64) {
        let mut p = [(x, y)];
        transform(
            &Projection::from_code(code).unwrap(),
            &Projection::from_code("EPSG:4326").unwrap(),
            &mut p,
        );
        p[0]
    }

    fn num(name: &str, v: f64) -> Attribute {
        Attribute::new(name, AttrValue::F64(vec![v]))
    }

    /// NSIDC's polar stereographic north as a CF grid mapping.
    fn nsidc_north() -> Vec<Attribute> {
        vec![
            Attribute::text("grid_mapping_name", "polar_stereographic"),
            num("straight_vertical_longitude_from_pole", -45.0),
            num("latitude_of_projection_origin", 90.0),
            num("standard_parallel", 70.0),
            num("false_easting", 0.0),
            num("false_northing", 0.0),
            num("semi_major_axis", 6378137.0),
            num("inverse_flattening", 298.257223563),
        ]
    }

    #[test]
    fn codes_are_case_insensitive_and_know_the_polar_and_utm_systems() {
        for code in [
            "EPSG:4326",
            "epsg:3857",
            "EPSG:3413",
            "EPSG:3031",
            "EPSG:3995",
            "EPSG:32661",
            "EPSG:32633",
            "crs:84",
        ] {
            assert!(Projection::from_code(code).is_ok(), "{code}");
        }
        assert!(Projection::from_code("CRS:84").unwrap().is_geographic());
        assert!(Projection::from_code("EPSG:4326").unwrap().is_geographic());
        assert!(!Projection::from_code("EPSG:3413").unwrap().is_geographic());
        assert!(
            Projection::from_code("CRS:84")
                .unwrap()
                .same_as(&Projection::from_code("EPSG:4326").unwrap())
        );
    }

    #[test]
    fn malformed_and_unknown_codes_are_refused() {
        for code in [
            "",
            "EPSG:",
            "EPSG:abc",
            "EPSG:99999999",
            "EPSG:1",
            "CRS:83",
            "4326",
            "EPSG:4978",
        ] {
            assert!(Projection::from_code(code).is_err(), "{code}");
        }
    }

    /// Expected values from pyproj 3.7 (PROJ 9): `Transformer.from_crs(4326,
    /// 3413, always_xy=True)`.
    #[test]
    fn epsg_3413_forward_and_inverse_match_proj() {
        assert!(close(forward("EPSG:3413", 0.0, 90.0), (0.0, 0.0), 1e-6));
        let (x, y) = forward("EPSG:3413", -45.0, 70.0);
        assert!(
            x.abs() < 1e-6 && (y - -2_187_927.649_279_021).abs() < 1e-3,
            "{x} {y}"
        );
        let (x, y) = forward("EPSG:3413", 0.0, 60.0);
        assert!(
            close(
                (x, y),
                (2_349_829.162_339_975, -2_349_829.162_339_975_6),
                1e-3
            ),
            "{x} {y}"
        );
        let (x, y) = forward("EPSG:3413", 135.0, 80.0);
        assert!(
            close((x, y), (0.0, 1_085_920.297_393_099_2), 1e-3),
            "{x} {y}"
        );
        let (lon, lat) = inverse("EPSG:3413", 2_349_829.162_339_975, -2_349_829.162_339_975_6);
        assert!(close((lon, lat), (0.0, 60.0), 1e-9), "{lon} {lat}");
        let (lon, lat) = inverse("EPSG:3413", -1_000_000.0, 500_000.0);
        assert!(
            close(
                (lon, lat),
                (-161.565_051_177_078, 79.705_775_537_864_24),
                1e-8
            ),
            "{lon} {lat}"
        );
    }

    #[test]
    fn web_mercator_reaches_the_antimeridian_at_20037508_m() {
        let (x, y) = forward("EPSG:3857", 180.0, 0.0);
        assert!(
            (x - 20_037_508.342_789_244).abs() < 1e-6 && y.abs() < 1e-6,
            "{x} {y}"
        );
        let (x, y) = forward("EPSG:3857", 0.0, 85.051_128_779_806_59);
        assert!(
            x.abs() < 1e-6 && (y - 20_037_508.342_789_244).abs() < 1e-3,
            "{x} {y}"
        );
        // Latitudes go onto the sphere unchanged: no datum shift.
        let (x, y) = forward("EPSG:3857", 10.0, 60.0);
        assert!(
            close(
                (x, y),
                (1_113_194.907_932_735_7, 8_399_737.889_818_357),
                1e-6
            ),
            "{x} {y}"
        );
        let (lon, lat) = inverse("EPSG:3857", -20_037_508.342_789_244, 0.0);
        assert!(close((lon, lat), (-180.0, 0.0), 1e-9), "{lon} {lat}");
    }

    #[test]
    fn a_point_outside_the_domain_fails_alone() {
        let mut p = [(0.0, 90.0), (10.0, 10.0), (f64::NAN, 0.0), (0.0, 120.0)];
        transform(
            &Projection::from_code("EPSG:4326").unwrap(),
            &Projection::from_code("EPSG:3857").unwrap(),
            &mut p,
        );
        assert!(p[0].0.is_nan() && p[0].1.is_nan());
        assert!(p[1].0.is_finite() && p[1].1.is_finite());
        assert!(p[2].0.is_nan() && p[2].1.is_nan());
        assert!(p[3].0.is_nan() && p[3].1.is_nan());
    }

    #[test]
    fn cf_polar_stereographic_is_epsg_3413() {
        let cf = Projection::from_cf(&nsidc_north()).unwrap();
        let epsg = Projection::from_code("EPSG:3413").unwrap();
        assert!(
            cf.same_as(&epsg),
            "{} vs {}",
            cf.definition(),
            epsg.definition()
        );
        let wgs84 = Projection::from_code("EPSG:4326").unwrap();
        let mut a = [(-45.0, 70.0), (0.0, 60.0), (100.0, 85.0)];
        let mut b = a;
        transform(&wgs84, &cf, &mut a);
        transform(&wgs84, &epsg, &mut b);
        for (p, q) in a.iter().zip(&b) {
            assert!(close(*p, *q, 1e-6), "{p:?} {q:?}");
        }
    }

    #[test]
    fn cf_polar_stereographic_with_a_scale_factor_is_ups_north() {
        let attrs = vec![
            Attribute::text("grid_mapping_name", "polar_stereographic"),
            num("straight_vertical_longitude_from_pole", 0.0),
            num("latitude_of_projection_origin", 90.0),
            num("scale_factor_at_projection_origin", 0.994),
            num("false_easting", 2_000_000.0),
            num("false_northing", 2_000_000.0),
        ];
        let cf = Projection::from_cf(&attrs).unwrap();
        assert!(
            cf.same_as(&Projection::from_code("EPSG:32661").unwrap()),
            "{}",
            cf.definition()
        );
    }

    #[test]
    fn cf_ellipsoids_become_proj_parameters() {
        let sphere = [
            Attribute::text("grid_mapping_name", "latitude_longitude"),
            num("earth_radius", 6_371_229.0),
        ];
        assert!(
            Projection::from_cf(&sphere)
                .unwrap()
                .definition()
                .contains("+R=6371229")
        );
        let plain = [Attribute::text("grid_mapping_name", "latitude_longitude")];
        let p = Projection::from_cf(&plain).unwrap();
        assert!(p.is_geographic() && p.same_as(&Projection::from_code("EPSG:4326").unwrap()));
        let minor = [
            Attribute::text("grid_mapping_name", "latitude_longitude"),
            num("semi_major_axis", 6_378_137.0),
            num("semi_minor_axis", 6_356_752.314_245),
        ];
        assert!(
            Projection::from_cf(&minor)
                .unwrap()
                .definition()
                .contains("+datum=WGS84")
        );
        let negative = [
            Attribute::text("grid_mapping_name", "latitude_longitude"),
            num("earth_radius", -1.0),
        ];
        assert!(matches!(
            Projection::from_cf(&negative),
            Err(PictureError::BadMapping { .. })
        ));
    }

    #[test]
    fn every_supported_cf_mapping_builds() {
        let lcc = vec![
            Attribute::text("grid_mapping_name", "lambert_conformal_conic"),
            Attribute::new("standard_parallel", AttrValue::F64(vec![25.0, 25.0])),
            num("longitude_of_central_meridian", 265.0),
            num("latitude_of_projection_origin", 25.0),
        ];
        let tmerc = vec![
            Attribute::text("grid_mapping_name", "transverse_mercator"),
            num("scale_factor_at_central_meridian", 0.9996),
            num("longitude_of_central_meridian", 15.0),
            num("latitude_of_projection_origin", 0.0),
            num("false_easting", 500_000.0),
        ];
        let merc = vec![
            Attribute::text("grid_mapping_name", "mercator"),
            num("standard_parallel", 20.0),
        ];
        let laea = vec![
            Attribute::text("grid_mapping_name", "lambert_azimuthal_equal_area"),
            num("longitude_of_projection_origin", 10.0),
            num("latitude_of_projection_origin", 52.0),
            num("false_easting", 4_321_000.0),
            num("false_northing", 3_210_000.0),
        ];
        let stere = vec![
            Attribute::text("grid_mapping_name", "stereographic"),
            num("longitude_of_projection_origin", 10.0),
            num("latitude_of_projection_origin", 52.0),
        ];
        let aea = vec![
            Attribute::text("grid_mapping_name", "albers_conical_equal_area"),
            Attribute::new("standard_parallel", AttrValue::F32(vec![29.5, 45.5])),
            num("longitude_of_central_meridian", -96.0),
            num("latitude_of_projection_origin", 23.0),
        ];
        for attrs in [lcc, tmerc, merc, laea, stere, aea] {
            let p = Projection::from_cf(&attrs).unwrap();
            assert!(!p.is_geographic());
            let mut pts = [(12.0, 50.0)];
            transform(&Projection::from_code("EPSG:4326").unwrap(), &p, &mut pts);
            let mut back = pts;
            transform(&p, &Projection::from_code("EPSG:4326").unwrap(), &mut back);
            assert!(
                close(back[0], (12.0, 50.0), 1e-7),
                "{}: {back:?}",
                p.definition()
            );
        }
    }

    #[test]
    fn cf_tmerc_matches_utm() {
        let tmerc = vec![
            Attribute::text("grid_mapping_name", "transverse_mercator"),
            num("scale_factor_at_central_meridian", 0.9996),
            num("longitude_of_central_meridian", 15.0),
            num("latitude_of_projection_origin", 0.0),
            num("false_easting", 500_000.0),
        ];
        let wgs84 = Projection::from_code("EPSG:4326").unwrap();
        let mut a = [(12.0, 50.0)];
        let mut b = a;
        transform(&wgs84, &Projection::from_cf(&tmerc).unwrap(), &mut a);
        transform(
            &wgs84,
            &Projection::from_code("EPSG:32633").unwrap(),
            &mut b,
        );
        assert!(close(a[0], b[0], 1e-3), "{a:?} {b:?}");
    }

    #[test]
    fn unsupported_and_broken_mappings_are_named() {
        let rotated = [Attribute::text(
            "grid_mapping_name",
            "rotated_latitude_longitude",
        )];
        let e = Projection::from_cf(&rotated).unwrap_err();
        assert!(e.to_string().contains("rotated_latitude_longitude"), "{e}");
        let odd = [Attribute::text("grid_mapping_name", "vertical_perspective")];
        assert_eq!(
            Projection::from_cf(&odd).unwrap_err(),
            PictureError::UnsupportedMapping("vertical_perspective".into())
        );
        assert!(Projection::from_cf(&[]).is_err());
        let mut attrs = nsidc_north();
        attrs.retain(|a| a.name != "straight_vertical_longitude_from_pole");
        let e = Projection::from_cf(&attrs).unwrap_err();
        assert!(
            e.to_string()
                .contains("straight_vertical_longitude_from_pole"),
            "{e}"
        );
        let mut attrs = nsidc_north();
        attrs[2] = num("latitude_of_projection_origin", 60.0);
        assert!(Projection::from_cf(&attrs).is_err());
        let mut attrs = nsidc_north();
        attrs[1] = Attribute::text("straight_vertical_longitude_from_pole", "west");
        assert!(Projection::from_cf(&attrs).is_err());
        attrs[1] = num("straight_vertical_longitude_from_pole", f64::NAN);
        assert!(Projection::from_cf(&attrs).is_err());
    }

    #[test]
    fn projections_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Projection>();
    }
}

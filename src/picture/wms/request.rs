//! WMS 1.3.0 requests from a raw query string: GetCapabilities, GetMap
//! and (SLD's) GetLegendGraphic.
//!
//! Parameter names are case-insensitive and values percent-decoded as an
//! HTML form's are (`+` is a space), which is how clients build them; an
//! empty value counts as absent, and of a repeated parameter the first
//! counts.

use super::exception::{ServiceException, code};
use crate::picture::proj::Projection;
use std::collections::HashMap;

/// The largest map or legend side, in pixels.
pub const MAX_SIZE: u32 = 4096;

/// The most pixels one map may have (4096 x 2048): with [`MAX_SIZE`], a
/// bound on the memory one request takes (up to some 35 bytes a pixel for
/// its cells, values and colours: under 300 MB).
pub const MAX_PIXELS: u64 = 1 << 23;

/// A parsed WMS request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Capabilities,
    Map(MapRequest),
    Legend(LegendRequest),
}

/// GetMap: one layer drawn as a PNG.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRequest {
    pub layer: String,
    /// The style (colour map) name; `None` for the default.
    pub style: Option<String>,
    /// The CRS code in upper case: `EPSG:4326`, `CRS:84`, `EPSG:3413`.
    pub crs: String,
    /// `[minx, miny, maxx, maxy]` in east/north order whatever the CRS:
    /// the latitude-first order WMS 1.3.0 uses for geographic EPSG codes
    /// is undone here.
    pub bbox: [f64; 4],
    pub width: u32,
    pub height: u32,
    /// Cells with no data are transparent when true, `bgcolor` when false
    /// (the default, as WMS 1.3.0 says).
    pub transparent: bool,
    pub bgcolor: [u8; 3],
    /// The TIME value as given (an ISO 8601 instant).
    pub time: Option<String>,
    /// The ELEVATION value as given.
    pub elevation: Option<String>,
    /// The values at the colour map's ends: ncWMS's `COLORSCALERANGE=lo,hi`.
    pub colour_range: Option<(f64, f64)>,
    pub exceptions: ExceptionFormat,
}

/// How the client wants a GetMap error: the XML report (the default), or
/// an image; drawing the image is the caller's choice, and XML is always
/// an acceptable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionFormat {
    Xml,
    InImage,
    Blank,
}

/// GetLegendGraphic: the colour bar of a layer's style.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendRequest {
    pub layer: String,
    pub style: Option<String>,
    /// 0 when not given: the legend's default size.
    pub width: u32,
    pub height: u32,
    pub colour_range: Option<(f64, f64)>,
}

/// Parses a WMS query string (without the `?`).
pub fn parse(query: &str) -> Result<Request, ServiceException> {
    let p = Params::parse(query);
    let service = p.get("SERVICE");
    if let Some(s) = service.filter(|s| !s.eq_ignore_ascii_case("WMS")) {
        return Err(ServiceException::generic(format!(
            "SERVICE is {s:?}; this service is WMS"
        )));
    }
    let request = p.required("REQUEST")?;
    let is = |name: &str| request.eq_ignore_ascii_case(name);
    if is("GetCapabilities") {
        return Ok(Request::Capabilities);
    }
    if !is("GetMap") && !is("GetLegendGraphic") {
        let message = format!(
            "REQUEST {request:?} is not supported: GetCapabilities, GetMap, GetLegendGraphic"
        );
        return Err(ServiceException::new(
            code::OPERATION_NOT_SUPPORTED,
            message,
        ));
    }
    if service.is_none() {
        return Err(ServiceException::generic("SERVICE=WMS is missing"));
    }
    if is("GetMap") {
        map(&p).map(Request::Map)
    } else {
        legend(&p).map(Request::Legend)
    }
}

fn map(p: &Params) -> Result<MapRequest, ServiceException> {
    if let Some(v) = p.get("VERSION").filter(|v| *v != "1.3.0") {
        return Err(ServiceException::generic(format!(
            "VERSION {v:?} is not supported: 1.3.0"
        )));
    }
    let (crs, latitude_first) = crs(p.required("CRS")?)?;
    format(p.required("FORMAT")?)?;
    let width = size(p, "WIDTH")?.ok_or_else(|| missing("WIDTH"))?;
    let height = size(p, "HEIGHT")?.ok_or_else(|| missing("HEIGHT"))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ServiceException::generic(format!(
            "a map of {width} x {height} pixels is larger than the {MAX_PIXELS} pixels a map may have"
        )));
    }
    Ok(MapRequest {
        layer: one_layer(p.required("LAYERS")?)?,
        style: first_style(p.get("STYLES")),
        bbox: bbox(p.required("BBOX")?, latitude_first)?,
        crs,
        width,
        height,
        transparent: p
            .get("TRANSPARENT")
            .map(boolean)
            .transpose()?
            .unwrap_or(false),
        bgcolor: p
            .get("BGCOLOR")
            .map(colour)
            .transpose()?
            .unwrap_or([255, 255, 255]),
        time: p.get("TIME").map(String::from),
        elevation: p.get("ELEVATION").map(String::from),
        colour_range: colour_range(p)?,
        exceptions: p
            .get("EXCEPTIONS")
            .map_or(ExceptionFormat::Xml, exception_format),
    })
}

fn legend(p: &Params) -> Result<LegendRequest, ServiceException> {
    if let Some(f) = p.get("FORMAT") {
        format(f)?;
    }
    let layer = p
        .get("LAYER")
        .or_else(|| p.get("LAYERS"))
        .ok_or_else(|| missing("LAYER"))?;
    Ok(LegendRequest {
        layer: one_layer(layer)?,
        style: first_style(p.get("STYLE").or_else(|| p.get("STYLES"))),
        width: size(p, "WIDTH")?.unwrap_or(0),
        height: size(p, "HEIGHT")?.unwrap_or(0),
        colour_range: colour_range(p)?,
    })
}

/// The query's parameters by upper-case name.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: &str) -> Params {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let v = v.trim();
            if !v.is_empty() {
                map.entry(k.trim().to_ascii_uppercase())
                    .or_insert_with(|| v.to_string());
            }
        }
        Params(map)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn required(&self, key: &str) -> Result<&str, ServiceException> {
        self.get(key).ok_or_else(|| missing(key))
    }
}

fn missing(key: &str) -> ServiceException {
    ServiceException::generic(format!("{key} is missing"))
}

/// The one layer of a LAYERS list: this server draws one layer a map.
fn one_layer(list: &str) -> Result<String, ServiceException> {
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(missing("LAYERS")),
        _ => Err(ServiceException::generic(format!(
            "one layer a request, not {}",
            names.len()
        ))),
    }
}

/// The style for the one layer (STYLES lists one per layer).
fn first_style(list: Option<&str>) -> Option<String> {
    list.and_then(|l| l.split(',').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The CRS code in upper case, and whether its BBOX comes latitude first:
/// WMS 1.3.0 follows the EPSG axis order, which for geographic EPSG codes
/// is latitude, longitude; `CRS:84` is longitude, latitude. Projected
/// codes are taken as easting, northing (true of EPSG:3857, 3413, 3031,
/// UTM; not of the few northing-first systems, which are not offered).
fn crs(value: &str) -> Result<(String, bool), ServiceException> {
    let upper = value.trim().to_ascii_uppercase();
    let well_formed = upper == "CRS:84"
        || upper
            .strip_prefix("EPSG:")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(ServiceException::new(
            code::INVALID_CRS,
            format!("CRS {value:?} is not EPSG:<code> or CRS:84"),
        ));
    }
    let projection = Projection::from_code(&upper).map_err(|_| {
        ServiceException::new(code::INVALID_CRS, format!("CRS {upper} is not known"))
    })?;
    let latitude_first = upper.starts_with("EPSG:") && projection.is_geographic();
    Ok((upper, latitude_first))
}

/// Four finite numbers, min before max, returned east/north.
fn bbox(value: &str, latitude_first: bool) -> Result<[f64; 4], ServiceException> {
    let bad = |why: &str| ServiceException::generic(format!("BBOX {value:?} {why}"));
    let numbers: Vec<f64> = value
        .split(',')
        .map(|n| n.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("is not four numbers"))?;
    let [a, b, c, d] = numbers[..] else {
        return Err(bad("is not four numbers"));
    };
    let bbox = if latitude_first {
        [b, a, d, c]
    } else {
        [a, b, c, d]
    };
    if bbox[0] >= bbox[2] || bbox[1] >= bbox[3] {
        return Err(bad("has a minimum not below its maximum"));
    }
    Ok(bbox)
}

/// A WIDTH or HEIGHT in `1..=MAX_SIZE`, if given.
fn size(p: &Params, key: &str) -> Result<Option<u32>, ServiceException> {
    let Some(value) = p.get(key) else {
        return Ok(None);
    };
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_SIZE).contains(&n) => Ok(Some(n)),
        _ => Err(ServiceException::generic(format!(
            "{key} {value:?} is not a whole number from 1 to {MAX_SIZE}"
        ))),
    }
}

/// PNG is the only picture format (`image/png; mode=...` included).
fn format(value: &str) -> Result<(), ServiceException> {
    let media_type = value.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case("image/png") {
        Ok(())
    } else {
        Err(ServiceException::new(
            code::INVALID_FORMAT,
            format!("FORMAT {value:?} is not supported: image/png"),
        ))
    }
}

fn boolean(value: &str) -> Result<bool, ServiceException> {
    match value.to_ascii_uppercase().as_str() {
        "TRUE" => Ok(true),
        "FALSE" => Ok(false),
        _ => Err(ServiceException::generic(format!(
            "TRANSPARENT {value:?} is not TRUE or FALSE"
        ))),
    }
}

/// `0xRRGGBB` (or `#RRGGBB`).
fn colour(value: &str) -> Result<[u8; 3], ServiceException> {
    let hex = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .or_else(|| value.strip_prefix('#'));
    let rgb = hex
        .filter(|h| h.len() == 6)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .map(|n| [(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    rgb.ok_or_else(|| ServiceException::generic(format!("BGCOLOR {value:?} is not 0xRRGGBB")))
}

/// `COLORSCALERANGE=lo,hi` with lo <= hi; `auto` (ncWMS) is no range.
fn colour_range(p: &Params) -> Result<Option<(f64, f64)>, ServiceException> {
    let Some(value) = p
        .get("COLORSCALERANGE")
        .filter(|v| !v.eq_ignore_ascii_case("auto"))
    else {
        return Ok(None);
    };
    let numbers: Option<Vec<f64>> = value
        .split(',')
        .map(|n| n.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    match numbers.as_deref() {
        Some(&[lo, hi]) if lo <= hi => Ok(Some((lo, hi))),
        _ => Err(ServiceException::generic(format!(
            "COLORSCALERANGE {value:?} is not min,max"
        ))),
    }
}

/// WMS 1.3.0's EXCEPTIONS values, and their 1.1.1 MIME forms; anything
/// else falls back to XML, which every client reads.
fn exception_format(value: &str) -> ExceptionFormat {
    match value.to_ascii_uppercase().as_str() {
        "INIMAGE" | "APPLICATION/VND.OGC.SE_INIMAGE" => ExceptionFormat::InImage,
        "BLANK" | "APPLICATION/VND.OGC.SE_BLANK" => ExceptionFormat::Blank,
        _ => ExceptionFormat::Xml,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=sst&STYLES=&FORMAT=image/png&WIDTH=256&HEIGHT=128";

    fn map_with(extra: &str) -> Result<MapRequest, ServiceException> {
        match parse(&format!("{MAP}&{extra}"))? {
            Request::Map(m) => Ok(m),
            other => panic!("{other:?}"),
        }
    }

    fn code_of(r: Result<impl std::fmt::Debug, ServiceException>) -> Option<&'static str> {
        r.expect_err("should fail").code
    }

    #[test]
    fn geographic_epsg_codes_take_latitude_first() {
        let m = map_with("CRS=EPSG:4326&BBOX=-90,-180,90,180").unwrap();
        assert_eq!(m.bbox, [-180.0, -90.0, 180.0, 90.0]);
        assert_eq!(m.crs, "EPSG:4326");
        let m = map_with("CRS=EPSG:4326&BBOX=40,-10,60,30").unwrap();
        assert_eq!(m.bbox, [-10.0, 40.0, 30.0, 60.0]);
    }

    #[test]
    fn crs_84_and_projected_codes_take_x_first() {
        let m = map_with("CRS=CRS:84&BBOX=-10,40,30,60").unwrap();
        assert_eq!(
            (m.crs.as_str(), m.bbox),
            ("CRS:84", [-10.0, 40.0, 30.0, 60.0])
        );
        let m = map_with("CRS=epsg:3857&BBOX=-20037508.34,-1000,20037508.34,1000").unwrap();
        assert_eq!(
            (m.crs.as_str(), m.bbox),
            ("EPSG:3857", [-20037508.34, -1000.0, 20037508.34, 1000.0])
        );
        let m = map_with("CRS=EPSG:3413&BBOX=-3850000,-5350000,3750000,5850000").unwrap();
        assert_eq!(m.bbox, [-3850000.0, -5350000.0, 3750000.0, 5850000.0]);
    }

    #[test]
    fn names_are_case_insensitive_and_values_percent_decoded() {
        let q = "service=wms&version=1.3.0&request=getmap&layers=sea%20ice&styles=Magma&crs=EPSG%3A4326\
                 &bbox=-90%2C-180%2C90%2C180&width=10&height=20&format=image%2Fpng&time=2020-01-01T00%3A00%3A00Z\
                 &Transparent=true&bgColor=0x102030&elevation=10";
        let Request::Map(m) = parse(q).unwrap() else {
            panic!()
        };
        assert_eq!(m.layer, "sea ice");
        assert_eq!(m.style.as_deref(), Some("Magma"));
        assert_eq!((m.width, m.height), (10, 20));
        let big = "service=WMS&request=GetMap&version=1.3.0&layers=a/b&styles=&crs=EPSG:4326&bbox=-90,-180,90,180&format=image/png";
        assert!(parse(&format!("{big}&width=4096&height=2048")).is_ok());
        let e = parse(&format!("{big}&width=4096&height=4096")).unwrap_err();
        assert!(e.message.contains("larger than"), "{}", e.message);
        assert!(parse(&format!("{big}&width=4097&height=10")).is_err());
        assert_eq!(m.time.as_deref(), Some("2020-01-01T00:00:00Z"));
        assert_eq!(m.elevation.as_deref(), Some("10"));
        assert!(m.transparent);
        assert_eq!(m.bgcolor, [0x10, 0x20, 0x30]);
    }

    #[test]
    fn defaults_follow_the_standard() {
        let m = map_with("CRS=CRS:84&BBOX=0,0,1,1").unwrap();
        assert_eq!(m.style, None);
        assert!(!m.transparent);
        assert_eq!(m.bgcolor, [255, 255, 255]);
        assert_eq!((m.time, m.elevation, m.colour_range), (None, None, None));
        assert_eq!(m.exceptions, ExceptionFormat::Xml);
        let m = map_with("CRS=CRS:84&BBOX=0,0,1,1&EXCEPTIONS=INIMAGE").unwrap();
        assert_eq!(m.exceptions, ExceptionFormat::InImage);
    }

    #[test]
    fn colour_scale_range_is_min_comma_max() {
        let m = map_with("CRS=CRS:84&BBOX=0,0,1,1&COLORSCALERANGE=271.5,%2B3.1e2").unwrap();
        assert_eq!(m.colour_range, Some((271.5, 310.0)));
        let m = map_with("CRS=CRS:84&BBOX=0,0,1,1&COLORSCALERANGE=auto").unwrap();
        assert_eq!(m.colour_range, None);
        for bad in ["1", "2,1", "a,b", "1,2,3", "nan,1", "1,inf"] {
            assert!(
                map_with(&format!("CRS=CRS:84&BBOX=0,0,1,1&COLORSCALERANGE={bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn capabilities_need_no_service_but_a_wrong_service_fails() {
        assert_eq!(
            parse("REQUEST=GetCapabilities").unwrap(),
            Request::Capabilities
        );
        assert_eq!(
            parse("service=WMS&request=getcapabilities&version=1.1.1").unwrap(),
            Request::Capabilities
        );
        assert_eq!(code_of(parse("SERVICE=WCS&REQUEST=GetCapabilities")), None);
        assert_eq!(code_of(parse("SERVICE=WMS")), None);
        assert_eq!(code_of(parse("")), None);
    }

    #[test]
    fn get_map_needs_service_and_version_1_3_0() {
        let without_service = MAP.replace("SERVICE=WMS&", "");
        assert!(parse(&format!("{without_service}&CRS=CRS:84&BBOX=0,0,1,1")).is_err());
        let old = MAP.replace("1.3.0", "1.1.1");
        assert!(parse(&format!("{old}&CRS=CRS:84&BBOX=0,0,1,1")).is_err());
        let unversioned = MAP.replace("VERSION=1.3.0&", "");
        assert!(parse(&format!("{unversioned}&CRS=CRS:84&BBOX=0,0,1,1")).is_ok());
    }

    #[test]
    fn errors_carry_the_standard_codes() {
        assert_eq!(
            code_of(parse("SERVICE=WMS&REQUEST=GetFeatureInfo")),
            Some(code::OPERATION_NOT_SUPPORTED)
        );
        assert_eq!(
            code_of(map_with("CRS=EPSG:999999&BBOX=0,0,1,1")),
            Some(code::INVALID_CRS)
        );
        assert_eq!(
            code_of(map_with("CRS=EPSG:1&BBOX=0,0,1,1")),
            Some(code::INVALID_CRS)
        );
        assert_eq!(
            code_of(map_with("CRS=urn:ogc:def:crs:EPSG::4326&BBOX=0,0,1,1")),
            Some(code::INVALID_CRS)
        );
        assert_eq!(
            code_of(map_with("CRS=EPSG:&BBOX=0,0,1,1")),
            Some(code::INVALID_CRS)
        );
        let jpeg = MAP.replace("image/png", "image/jpeg");
        assert_eq!(
            code_of(parse(&format!("{jpeg}&CRS=CRS:84&BBOX=0,0,1,1"))),
            Some(code::INVALID_FORMAT)
        );
        let no_format = MAP.replace("&FORMAT=image/png", "");
        assert!(parse(&format!("{no_format}&CRS=CRS:84&BBOX=0,0,1,1")).is_err());
        assert!(
            map_with("CRS=CRS:84&BBOX=0,0,1,1&FORMAT=x").is_ok(),
            "the first FORMAT counts"
        );
        let png_mode = MAP.replace("image/png", "image/png;%20mode=32bit");
        assert!(parse(&format!("{png_mode}&CRS=CRS:84&BBOX=0,0,1,1")).is_ok());
    }

    #[test]
    fn bad_bboxes_sizes_and_flags_fail() {
        for bad in [
            "0,0,1",
            "0,0,1,1,2",
            "0,0,a,1",
            "1,0,0,1",
            "0,1,1,1",
            "0,0,1,inf",
            "",
        ] {
            let r = map_with(&format!("CRS=CRS:84&BBOX={bad}"));
            assert_eq!(code_of(r), None, "{bad}");
        }
        // Latitude first: 10,0,0,1 is south 10 > north 0.
        assert!(map_with("CRS=EPSG:4326&BBOX=10,0,0,1").is_err());
        assert!(map_with("CRS=CRS:84").is_err());
        for size in ["0", "-1", "8193", "1.5", "x"] {
            let q = MAP.replace("WIDTH=256", &format!("WIDTH={size}"));
            assert!(
                parse(&format!("{q}&CRS=CRS:84&BBOX=0,0,1,1")).is_err(),
                "{size}"
            );
        }
        let q = MAP.replace("&HEIGHT=128", "");
        assert!(parse(&format!("{q}&CRS=CRS:84&BBOX=0,0,1,1")).is_err());
        assert!(map_with("CRS=CRS:84&BBOX=0,0,1,1&TRANSPARENT=yes").is_err());
        assert!(map_with("CRS=CRS:84&BBOX=0,0,1,1&BGCOLOR=0xFFF").is_err());
        assert!(map_with("CRS=CRS:84&BBOX=0,0,1,1&BGCOLOR=red").is_err());
        assert_eq!(
            map_with("CRS=CRS:84&BBOX=0,0,1,1&BGCOLOR=%23000000")
                .unwrap()
                .bgcolor,
            [0, 0, 0]
        );
    }

    #[test]
    fn one_layer_a_map() {
        let q = MAP.replace("LAYERS=sst", "LAYERS=sst,ice");
        assert!(parse(&format!("{q}&CRS=CRS:84&BBOX=0,0,1,1")).is_err());
        let q = MAP.replace("LAYERS=sst", "LAYERS=");
        assert!(parse(&format!("{q}&CRS=CRS:84&BBOX=0,0,1,1")).is_err());
        let q = MAP
            .replace("LAYERS=sst", "LAYERS=sst,")
            .replace("STYLES=", "STYLES=plasma,");
        let Request::Map(m) = parse(&format!("{q}&CRS=CRS:84&BBOX=0,0,1,1")).unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.layer.as_str(), m.style.as_deref()),
            ("sst", Some("plasma"))
        );
    }

    #[test]
    fn legend_requests() {
        let q = "SERVICE=WMS&REQUEST=GetLegendGraphic&LAYER=sst&STYLE=magma&FORMAT=image/png&COLORSCALERANGE=0,30";
        assert_eq!(
            parse(q).unwrap(),
            Request::Legend(LegendRequest {
                layer: "sst".into(),
                style: Some("magma".into()),
                width: 0,
                height: 0,
                colour_range: Some((0.0, 30.0)),
            })
        );
        let Request::Legend(l) =
            parse("service=WMS&request=GetLegendGraphic&layers=sst&width=50&height=200").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (l.layer.as_str(), l.style, l.width, l.height),
            ("sst", None, 50, 200)
        );
        assert!(parse("SERVICE=WMS&REQUEST=GetLegendGraphic").is_err());
        assert_eq!(
            code_of(parse(
                "SERVICE=WMS&REQUEST=GetLegendGraphic&LAYER=sst&FORMAT=image/gif"
            )),
            Some(code::INVALID_FORMAT)
        );
        assert!(parse("SERVICE=WMS&REQUEST=GetLegendGraphic&LAYER=sst&WIDTH=0").is_err());
    }

    #[test]
    fn hostile_queries_do_not_panic() {
        for q in [
            "&&&",
            "=",
            "%",
            "%zz=1",
            "REQUEST=%FF%FE",
            "REQUEST=GetMap&SERVICE=WMS&BBOX=,,,",
            "a=b=c",
        ] {
            let _ = parse(q);
        }
    }
}

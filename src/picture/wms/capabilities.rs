//! The WMS 1.3.0 capabilities document: the service, its operations and
//! one layer per served variable, with its CRSs, extents, time and
//! elevation dimensions and styles (one per colour map, each with its
//! legend's URL).

use super::request::MAX_SIZE;
use crate::markup::escape;
use crate::picture::colour;
use std::fmt::Write as _;

/// What the capabilities say about one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    pub name: String,
    pub title: String,
    pub abstract_: String,
    /// The grid's own CRS when it has an EPSG code, e.g. `EPSG:3413`.
    pub own_crs: Option<String>,
    /// `[minx, miny, maxx, maxy]` (east/north order) in `own_crs`.
    pub native_bbox: Option<[f64; 4]>,
    /// `[west, south, east, north]` in degrees.
    pub geographic_bbox: [f64; 4],
    /// The time dimension's values, ISO 8601 instants.
    pub times: Vec<String>,
    /// The time a map has when the request gives none; the last of
    /// `times` when `None`.
    pub default_time: Option<String>,
    /// The elevation dimension's values and their units.
    pub elevations: Option<(Vec<f64>, String)>,
    /// The data's units, listed as a keyword (`units: K`): WMS 1.3.0 has
    /// no element for them.
    pub units: String,
}

/// The CRSs every layer is offered in: any grid can be drawn in them.
const COMMON_CRS: [&str; 3] = ["EPSG:4326", "CRS:84", "EPSG:3857"];

/// Web Mercator's latitude limit, where it becomes a square.
const MERCATOR_LIMIT: f64 = 85.051_128_779_806_59;

/// The capabilities document for a service at `service_url` (the URL
/// requests are sent to, without a query).
pub fn capabilities(service_url: &str, title: &str, layers: &[LayerInfo]) -> String {
    let mut x = String::with_capacity(4096 + layers.len() * 4096);
    x.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<WMS_Capabilities version=\"1.3.0\" xmlns=\"http://www.opengis.net/wms\"",
        " xmlns:sld=\"http://www.opengis.net/sld\" xmlns:xlink=\"http://www.w3.org/1999/xlink\"",
        " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
        " xsi:schemaLocation=\"http://www.opengis.net/wms http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd",
        " http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/sld_capabilities.xsd\">\n",
    ));
    service(&mut x, service_url, title);
    x.push_str("<Capability>\n<Request>\n");
    operation(&mut x, "GetCapabilities", "text/xml", service_url);
    operation(&mut x, "GetMap", "image/png", service_url);
    operation(&mut x, "sld:GetLegendGraphic", "image/png", service_url);
    x.push_str("</Request>\n<Exception><Format>XML</Format></Exception>\n");
    root_layer(&mut x, service_url, title, layers);
    x.push_str("</Capability>\n</WMS_Capabilities>\n");
    x
}

fn service(x: &mut String, url: &str, title: &str) {
    let _ = write!(
        x,
        concat!(
            "<Service>\n<Name>WMS</Name>\n<Title>{}</Title>\n{}\n",
            "<LayerLimit>1</LayerLimit>\n<MaxWidth>{}</MaxWidth>\n<MaxHeight>{}</MaxHeight>\n</Service>\n"
        ),
        escape(title),
        online_resource(url),
        MAX_SIZE,
        MAX_SIZE
    );
}

/// One operation, reached by HTTP GET at the service URL.
fn operation(x: &mut String, name: &str, format: &str, url: &str) {
    let _ = writeln!(
        x,
        "<{name}><Format>{format}</Format><DCPType><HTTP><Get>{}</Get></HTTP></DCPType></{name}>",
        online_resource(&query_prefix(url))
    );
}

fn online_resource(href: &str) -> String {
    format!(
        "<OnlineResource xlink:type=\"simple\" xlink:href=\"{}\"/>",
        escape(href)
    )
}

/// The URL to which a request's parameters are appended: ends in `?` or `&`.
fn query_prefix(url: &str) -> String {
    match url.find('?') {
        None => format!("{url}?"),
        Some(_) if url.ends_with('?') || url.ends_with('&') => url.to_string(),
        Some(_) => format!("{url}&"),
    }
}

/// The unnamed root layer: the CRSs every layer inherits and the union of
/// their extents, around one child per layer.
fn root_layer(x: &mut String, url: &str, title: &str, layers: &[LayerInfo]) {
    let _ = writeln!(x, "<Layer>\n<Title>{}</Title>", escape(title));
    let mut codes: Vec<&str> = COMMON_CRS.to_vec();
    for code in layers.iter().filter_map(|l| l.own_crs.as_deref()) {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    for code in codes {
        let _ = writeln!(x, "<CRS>{}</CRS>", escape(code));
    }
    geographic_bbox(x, union(layers));
    for layer in layers {
        child_layer(x, url, layer);
    }
    x.push_str("</Layer>\n");
}

/// The extent of all layers, or the globe when there are none.
fn union(layers: &[LayerInfo]) -> [f64; 4] {
    layers
        .iter()
        .map(|l| l.geographic_bbox)
        .reduce(|a, b| {
            [
                a[0].min(b[0]),
                a[1].min(b[1]),
                a[2].max(b[2]),
                a[3].max(b[3]),
            ]
        })
        .unwrap_or([-180.0, -90.0, 180.0, 90.0])
}

fn geographic_bbox(x: &mut String, [west, south, east, north]: [f64; 4]) {
    let _ = writeln!(
        x,
        concat!(
            "<EX_GeographicBoundingBox><westBoundLongitude>{}</westBoundLongitude>",
            "<eastBoundLongitude>{}</eastBoundLongitude><southBoundLatitude>{}</southBoundLatitude>",
            "<northBoundLatitude>{}</northBoundLatitude></EX_GeographicBoundingBox>"
        ),
        west, east, south, north
    );
}

/// A named layer: queryable="0" (no GetFeatureInfo).
fn child_layer(x: &mut String, url: &str, layer: &LayerInfo) {
    let _ = writeln!(
        x,
        "<Layer queryable=\"0\">\n<Name>{}</Name>\n<Title>{}</Title>",
        escape(&layer.name),
        escape(&layer.title)
    );
    if !layer.abstract_.is_empty() {
        let _ = writeln!(x, "<Abstract>{}</Abstract>", escape(&layer.abstract_));
    }
    if !layer.units.is_empty() {
        let _ = writeln!(
            x,
            "<KeywordList><Keyword>units: {}</Keyword></KeywordList>",
            escape(&layer.units)
        );
    }
    if let Some(code) = &layer.own_crs {
        let _ = writeln!(x, "<CRS>{}</CRS>", escape(code));
    }
    let g = layer.geographic_bbox;
    geographic_bbox(x, g);
    bounding_box(x, "CRS:84", g);
    bounding_box(x, "EPSG:4326", [g[1], g[0], g[3], g[2]]);
    bounding_box(x, "EPSG:3857", web_mercator(g));
    if let (Some(code), Some(native)) = (&layer.own_crs, layer.native_bbox) {
        bounding_box(x, code, native);
    }
    dimensions(x, layer);
    for map in colour::all() {
        style(x, url, &layer.name, map);
    }
    x.push_str("</Layer>\n");
}

/// A BoundingBox, its numbers in the CRS's own axis order (the caller's
/// business: latitude first for EPSG:4326).
fn bounding_box(x: &mut String, code: &str, [minx, miny, maxx, maxy]: [f64; 4]) {
    let _ = writeln!(
        x,
        "<BoundingBox CRS=\"{}\" minx=\"{minx}\" miny=\"{miny}\" maxx=\"{maxx}\" maxy=\"{maxy}\"/>",
        escape(code)
    );
}

/// A geographic box in Web Mercator metres, latitudes clamped to where
/// the projection ends.
fn web_mercator([west, south, east, north]: [f64; 4]) -> [f64; 4] {
    const R: f64 = 6_378_137.0;
    let x = |lon: f64| R * lon.clamp(-180.0, 180.0).to_radians();
    let y = |lat: f64| {
        let phi = lat.clamp(-MERCATOR_LIMIT, MERCATOR_LIMIT).to_radians();
        R * (std::f64::consts::FRAC_PI_4 + phi / 2.0).tan().ln()
    };
    [x(west), y(south), x(east), y(north)]
}

/// The time and elevation dimensions, values comma-separated.
fn dimensions(x: &mut String, layer: &LayerInfo) {
    if let Some(last) = layer.times.last() {
        let default = layer.default_time.as_deref().unwrap_or(last);
        let _ = writeln!(
            x,
            "<Dimension name=\"time\" units=\"ISO8601\" default=\"{}\" multipleValues=\"0\" nearestValue=\"0\">{}</Dimension>",
            escape(default),
            escape(&layer.times.join(","))
        );
    }
    if let Some((values, units)) = layer.elevations.as_ref().filter(|(v, _)| !v.is_empty()) {
        let list: Vec<String> = values.iter().map(f64::to_string).collect();
        let _ = writeln!(
            x,
            "<Dimension name=\"elevation\" units=\"{}\" default=\"{}\" multipleValues=\"0\" nearestValue=\"0\">{}</Dimension>",
            escape(units),
            list[0],
            list.join(",")
        );
    }
}

/// A style: a colour map and the URL of its legend.
fn style(x: &mut String, url: &str, layer: &str, map: &colour::ColourMap) {
    let legend = format!(
        "{}SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic&LAYER={}&STYLE={}&FORMAT=image/png",
        query_prefix(url),
        query_value(layer),
        query_value(map.name)
    );
    let _ = writeln!(
        x,
        concat!(
            "<Style><Name>{}</Name><Title>{}</Title>",
            "<LegendURL width=\"{}\" height=\"{}\"><Format>image/png</Format>{}</LegendURL></Style>"
        ),
        escape(map.name),
        escape(map.title),
        crate::picture::image::LEGEND_WIDTH,
        crate::picture::image::LEGEND_HEIGHT,
        online_resource(&legend)
    );
}

/// A value percent-encoded for a query string.
fn query_value(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_layers() -> Vec<LayerInfo> {
        vec![
            LayerInfo {
                name: "sst".into(),
                title: "Sea surface temperature <daily> & more".into(),
                abstract_: "Analysed SST".into(),
                own_crs: None,
                native_bbox: None,
                geographic_bbox: [-180.0, -90.0, 180.0, 90.0],
                times: vec!["2020-01-01T00:00:00Z".into(), "2020-01-02T00:00:00Z".into()],
                default_time: None,
                elevations: None,
                units: "K".into(),
            },
            LayerInfo {
                name: "ice/conc".into(),
                title: "Sea ice concentration".into(),
                abstract_: String::new(),
                own_crs: Some("EPSG:3413".into()),
                native_bbox: Some([-3_850_000.0, -5_350_000.0, 3_750_000.0, 5_850_000.0]),
                geographic_bbox: [-180.0, 30.98, 180.0, 90.0],
                times: vec!["2020-01-01T12:00:00Z".into()],
                default_time: Some("2020-01-01T12:00:00Z".into()),
                elevations: Some((vec![0.0, 10.5, 100.0], "m".into())),
                units: "%".into(),
            },
        ]
    }

    #[test]
    fn document_has_the_service_operations_and_layers() {
        let doc = capabilities(
            "https://example.org/wms/sst",
            "Tessera & co",
            &sample_layers(),
        );
        assert!(doc.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<WMS_Capabilities version=\"1.3.0\""
        ));
        assert!(doc.contains("<Name>WMS</Name>\n<Title>Tessera &amp; co</Title>"));
        assert!(doc.contains("<GetMap><Format>image/png</Format>"));
        assert!(doc.contains("<sld:GetLegendGraphic><Format>image/png</Format>"));
        assert!(doc.contains("xlink:href=\"https://example.org/wms/sst?\""));
        assert!(doc.contains("<CRS>EPSG:3413</CRS>"));
        assert!(doc.contains("<Name>ice/conc</Name>"));
        assert!(doc.contains("<Title>Sea surface temperature &lt;daily&gt; &amp; more</Title>"));
        assert!(doc.contains(
            "<BoundingBox CRS=\"EPSG:4326\" minx=\"30.98\" miny=\"-180\" maxx=\"90\" maxy=\"180\"/>"
        ));
        assert!(doc.contains(
            "<BoundingBox CRS=\"CRS:84\" minx=\"-180\" miny=\"30.98\" maxx=\"180\" maxy=\"90\"/>"
        ));
        assert!(doc.contains("<BoundingBox CRS=\"EPSG:3413\" minx=\"-3850000\""));
        assert!(doc.contains("default=\"2020-01-02T00:00:00Z\""));
        assert!(doc.contains(">2020-01-01T00:00:00Z,2020-01-02T00:00:00Z</Dimension>"));
        assert!(doc.contains("<Dimension name=\"elevation\" units=\"m\" default=\"0\""));
        assert!(doc.contains(">0,10.5,100</Dimension>"));
        assert!(doc.contains(
            "xlink:href=\"https://example.org/wms/sst?SERVICE=WMS&amp;VERSION=1.3.0&amp;REQUEST=GetLegendGraphic&amp;LAYER=ice%2Fconc&amp;STYLE=magma&amp;FORMAT=image/png\""
        ));
        assert_eq!(doc.matches("<Style>").count(), 2 * colour::all().len());
        assert_eq!(doc.matches("<Layer>").count(), 1);
        assert_eq!(doc.matches("<Layer queryable=\"0\">").count(), 2);
    }

    #[test]
    fn web_mercator_boxes_stop_at_85_degrees() {
        let [w, s, e, n] = web_mercator([-180.0, -90.0, 180.0, 90.0]);
        for v in [w, s] {
            assert!((v + 20_037_508.342_789_244).abs() < 1e-3, "{v}");
        }
        for v in [e, n] {
            assert!((v - 20_037_508.342_789_244).abs() < 1e-3, "{v}");
        }
    }

    #[test]
    fn a_service_url_with_a_query_gets_an_ampersand() {
        assert_eq!(query_prefix("http://h/wms"), "http://h/wms?");
        assert_eq!(query_prefix("http://h/wms?"), "http://h/wms?");
        assert_eq!(query_prefix("http://h/wms?map=a"), "http://h/wms?map=a&");
    }

    #[test]
    fn no_layers_still_make_a_valid_root() {
        let doc = capabilities("http://h/wms", "Empty", &[]);
        assert!(doc.contains("<westBoundLongitude>-180</westBoundLongitude>"));
        assert_eq!(
            (
                doc.matches("<Layer>").count(),
                doc.matches("<Layer queryable").count()
            ),
            (1, 0)
        );
    }
}

//! The web pages, server-rendered with maud (HTML escaped by
//! construction). Every page works without JavaScript: forms are plain
//! GET forms whose answers are whole pages; `tessera.js` only makes them
//! live (results and subset sizes while typing, the time slider, a box
//! drawn on the map).

use super::catalog::{Filter, Summary, human_bytes, show_bbox};
use super::subset::{self, Built, Request};
use crate::archive::ServedDataset;
use crate::model::{AttrValue, Attributes, VarKind};
use crate::picture::wms::LayerInfo;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::sync::Arc;

/// The look every page shares: header, navigation, footer, one
/// stylesheet and one script, all served by tessera.
pub fn layout(title: &str, main: Markup) -> Markup {
    let v = crate::VERSION;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tessera" }
                link rel="icon" href="/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href={ "/static/tessera.css?v=" (v) };
                script src={ "/static/tessera.js?v=" (v) } defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="site" {
                        a.brand href="/" { img src="/favicon.svg" alt="" width="20" height="20"; " tessera" }
                        a href="/" { "Datasets" }
                        a href="/stac" { "STAC" }
                        a href="/wms?SERVICE=WMS&REQUEST=GetCapabilities" { "WMS" }
                        a href="/catalog.xml" { "THREDDS catalog" }
                        a href="/help" { "Help" }
                    }
                }
                main #main { (main) }
                footer { "tessera " (v) " · OPeNDAP (DAP2) at " code { "/dap/<dataset>" } " · " a href="/catalog.json" { "catalog.json" } }
            }
        }
    }
}

/// The index: the search form and the first page of results.
pub fn index(f: &Filter, error: Option<&str>, results: Markup, all: &[Arc<Summary>]) -> Markup {
    let mut names: Vec<(&str, Option<&str>)> = Vec::new();
    for s in all {
        for v in &s.variables {
            if !names.iter().any(|(n, _)| *n == v.name) {
                names.push((&v.name, v.long_name.as_deref()));
            }
        }
    }
    names.sort();
    let num = |v: Option<f64>| v.map(|x| x.to_string());
    let b = f.bbox;
    layout(
        "Datasets",
        html! {
            h1 { "Datasets" }
            form #search role="search" method="get" action="/" {
                div.row {
                    label.grow { "Search " input type="search" name="q" value=(f.q) placeholder="name, title, variable, institution…" autocomplete="off"; }
                    label { "Variable " input type="text" name="var" value=(f.var) list="var-names" placeholder="any" size="14"; }
                    datalist #var-names { @for (n, l) in &names { option value=(n) { (l.unwrap_or(n)) } } }
                }
                div.row {
                    fieldset {
                        legend { "Area (degrees)" }
                        label { "W " input type="number" step="any" name="west" value=[num(b.map(|b| b[0]))] size="7"; }
                        label { "S " input type="number" step="any" name="south" value=[num(b.map(|b| b[1]))] size="7"; }
                        label { "E " input type="number" step="any" name="east" value=[num(b.map(|b| b[2]))] size="7"; }
                        label { "N " input type="number" step="any" name="north" value=[num(b.map(|b| b[3]))] size="7"; }
                    }
                    fieldset {
                        legend { "Time" }
                        label { "from " input type="text" name="start" value=(f.start) placeholder="2024-01-01" size="12"; }
                        label { "to " input type="text" name="end" value=(f.end) placeholder="2024-12-31" size="12"; }
                    }
                    button type="submit" { "Search" }
                    a href="/" { "Clear" }
                }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            section #results aria-live="polite" { (results) }
        },
    )
}

/// One page of matches: the part of the index the script replaces.
pub fn results(f: &Filter, page: &[&Arc<Summary>], matched: usize) -> Markup {
    let pages = matched.div_ceil(f.per_page).max(1);
    html! {
        p.count { (matched) @if matched == 1 { " dataset" } @else { " datasets" }
            @if pages > 1 { " · page " (f.page) " of " (pages) } }
        ol.datasets {
            @for s in page {
                li.dataset {
                    h2 { a href={ "/datasets/" (s.name) } { (s.title) } }
                    p.name { code { (s.name) } }
                    @if let Some(d) = &s.description { p.description { (d) } }
                    dl {
                        dt { "Variables" }
                        dd { ul.vars { @for v in &s.variables { li { (var_label(v)) } } } }
                        dt { "Extent" }
                        dd { (show_bbox(s.bbox)) " · " (s.nx) " × " (s.ny) " cells" }
                        dt { "Time" }
                        dd { @match &s.time {
                            Some((a, b)) => { (a) " – " (b) " · " (s.steps) @if s.steps == 1 { " step" } @else { " steps" } }
                            None => { "time-invariant" }
                        } }
                        dt { "Size" }
                        dd { (human_bytes(s.bytes)) " in " (s.tiles) " tiles" }
                    }
                }
            }
        }
        @if pages > 1 {
            nav.pager aria-label="pages" {
                @if f.page > 1 { a rel="prev" href={ "/?" (f.query(f.page - 1)) } { "← previous" } }
                @if f.page < pages { a rel="next" href={ "/?" (f.query(f.page + 1)) } { "next →" } }
            }
        }
    }
}

fn var_label(v: &super::catalog::VarSummary) -> Markup {
    html! {
        (v.long_name.as_deref().unwrap_or(&v.name))
        " " code { (v.name) }
        @if let Some(u) = &v.units { " [" (u) "]" }
    }
}

/// What the map preview shows, from the page's query string.
#[derive(Clone, Debug, Default)]
pub struct MapChoice {
    pub layer: Option<String>,
    pub time: Option<usize>,
    /// A date, for series too long for a slider's live labels: the
    /// nearest step.
    pub when: Option<String>,
    pub level: Option<usize>,
    pub style: Option<String>,
}

/// Steps up to which the slider carries every label and redraws live.
const LIVE_STEPS: usize = 2000;

impl MapChoice {
    pub fn from_query(query: &str) -> MapChoice {
        let mut m = MapChoice::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "layer" => m.layer = Some(v.into_owned()),
                "t" => m.time = v.parse().ok(),
                "when" if !v.trim().is_empty() => m.when = Some(v.trim().to_string()),
                "z" => m.level = v.parse().ok(),
                "style" => m.style = Some(v.into_owned()),
                _ => {}
            }
        }
        m
    }
}

/// The preview map: which layer, the GetMap URL, its size and box.
struct Map<'a> {
    layer: &'a LayerInfo,
    var: String,
    time: Option<usize>,
    level: Option<usize>,
    style: &'static str,
    crs: String,
    bbox: [f64; 4],
    width: u32,
    height: u32,
    /// The subset box's coordinates are the map's (drawing works).
    drawable: bool,
}

impl Map<'_> {
    fn url(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("SERVICE", "WMS").append_pair("VERSION", "1.3.0").append_pair("REQUEST", "GetMap");
        q.append_pair("LAYERS", &self.layer.name).append_pair("STYLES", self.style).append_pair("CRS", &self.crs);
        let b = self.bbox;
        q.append_pair("BBOX", &format!("{},{},{},{}", b[0], b[1], b[2], b[3]));
        q.append_pair("WIDTH", &self.width.to_string()).append_pair("HEIGHT", &self.height.to_string());
        q.append_pair("FORMAT", "image/png").append_pair("TRANSPARENT", "TRUE");
        if let Some(t) = self.time.and_then(|t| self.layer.times.get(t)) {
            q.append_pair("TIME", t);
        }
        if let Some(z) = self.level.and_then(|z| self.layer.elevations.as_ref().and_then(|(e, _)| e.get(z))) {
            q.append_pair("ELEVATION", &z.to_string());
        }
        format!("/wms?{}", q.finish())
    }

    fn legend_url(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("SERVICE", "WMS").append_pair("VERSION", "1.3.0").append_pair("REQUEST", "GetLegendGraphic");
        q.append_pair("LAYER", &self.layer.name).append_pair("STYLE", self.style).append_pair("FORMAT", "image/png");
        q.append_pair("WIDTH", "100").append_pair("HEIGHT", "300");
        format!("/wms?{}", q.finish())
    }
}

fn choose_map<'a>(s: &ServedDataset, layers: &'a [LayerInfo], m: &MapChoice) -> Option<Map<'a>> {
    let def = &s.dataset.def;
    let prefix = format!("{}/", def.name);
    let layer = m
        .layer
        .as_ref()
        .and_then(|l| layers.iter().find(|x| x.name.strip_prefix(&prefix) == Some(l.as_str())))
        .or_else(|| layers.iter().find(|l| !l.times.is_empty()))
        .or(layers.first())?;
    // Projected grids with an EPSG code in their own projection (a polar
    // grid stays polar); the rest in longitude-latitude.
    let (crs, bbox, drawable) = match (&layer.own_crs, layer.native_bbox) {
        (Some(c), Some(b)) => (c.clone(), b, true),
        _ => ("CRS:84".to_string(), layer.geographic_bbox, def.grid.crs.is_geographic()),
    };
    let (w, h) = ((bbox[2] - bbox[0]).abs().max(1e-9), (bbox[3] - bbox[1]).abs().max(1e-9));
    let (mut width, mut height) = (720.0, 720.0 * h / w);
    if height > 480.0 {
        (width, height) = (480.0 * w / h, 480.0);
    }
    let n = layer.times.len();
    let picked = m.when.as_deref().and_then(|w| nearest_step(s, w)).or(m.time);
    Some(Map {
        layer,
        var: layer.name.strip_prefix(&prefix).unwrap_or(&layer.name).to_string(),
        time: (n > 0).then(|| picked.filter(|t| *t < n).unwrap_or(n - 1)),
        level: layer.elevations.as_ref().map(|(e, _)| m.level.filter(|z| *z < e.len()).unwrap_or(0)),
        style: m.style.as_deref().and_then(crate::picture::colour::by_name).unwrap_or(crate::picture::colour::default_map()).name,
        crs,
        bbox,
        width: (width.round() as u32).max(64),
        height: (height.round() as u32).max(64),
        drawable,
    })
}

/// The step nearest a date given in the dataset's calendar.
fn nearest_step(s: &ServedDataset, when: &str) -> Option<usize> {
    let t = s.dataset.def.time.key_calendar().ok()?.parse_user_time(when).ok()?;
    let i = s.times.partition_point(|x| x.0 < t.0);
    [i.checked_sub(1), (i < s.times.len()).then_some(i)].into_iter().flatten().min_by_key(|&k| (s.times[k].0 - t.0).unsigned_abs())
}

/// Everything the dataset page needs that the handler works out.
pub struct DatasetPage<'a> {
    pub served: &'a ServedDataset,
    pub summary: &'a Summary,
    pub layers: &'a [LayerInfo],
    pub map: MapChoice,
    /// The builder's request as the form gave it (or its defaults), and
    /// its answer.
    pub request: Request,
    pub built: Result<Built, String>,
    /// `http://host/dap/<name>`.
    pub dap_url: String,
    /// A NetCDF download of the map's variable at its step, when within
    /// the size limit: `(what, url)`.
    pub latest_nc: Option<(String, String)>,
}

pub fn dataset(p: &DatasetPage<'_>) -> Markup {
    let s = p.served;
    let d = &s.dataset;
    let def = &d.def;
    let name = def.name.as_str();
    let map = choose_map(s, p.layers, &p.map);
    let g = &def.grid;
    let data_vars: Vec<&crate::catalogue::Variable> =
        s.vars.iter().filter(|v| v.def.kind == VarKind::Data && (!v.def.has_time || !s.times.is_empty())).collect();
    let unit = |a: &crate::model::Axis| a.attrs.text_attr("units").map(|u| format!(" ({u})")).unwrap_or_default();
    let r = &p.request;
    let num = |v: Option<f64>| v.map(|x| x.to_string());
    let extent = |a: &crate::model::Axis| {
        let (lo, hi) = a.values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(x, y), &v| (x.min(v), y.max(v)));
        format!("{lo} to {hi}")
    };
    let times: Vec<String> = s.times.iter().map(|t| pretty_time(&def.time.show(*t))).collect();
    html! {
        nav.crumbs aria-label="breadcrumb" { a href="/" { "Datasets" } " / " (name) }
        h1 { (def.title) }
        @if let Some(t) = &p.summary.description { p.description { (t) } }
        div.access {
            p { "OPeNDAP URL: " code #opendap-url { (p.dap_url) } " " button.copy type="button" data-copy="#opendap-url" { "Copy" } }
            p.links {
                @if let Some((what, url)) = &p.latest_nc { a #latest-nc href=(url) { "NetCDF: " (what) } }
                a href={ "/dap/" (name) ".html" } { "DAP2 request form" }
                a href={ "/dap/" (name) ".info" } { "info" }
                a href={ "/dap/" (name) ".dds" } { "DDS" }
                a href={ "/dap/" (name) ".das" } { "DAS" }
                a href={ "/dap/" (name) ".ncml" } { "NcML" }
                a href={ "/stac/collections/" (name) } { "STAC collection" }
                a href="/wms?SERVICE=WMS&REQUEST=GetCapabilities" { "WMS" }
            }
        }
        @if let Some(m) = &map {
            section #preview aria-labelledby="preview-h" {
                h2 #preview-h { "Map" }
                form #map-form.controls method="get" action={ "/datasets/" (name) } {
                    label { "Variable "
                        select name="layer" {
                            @for l in p.layers {
                                @let v = l.name.strip_prefix(&format!("{name}/")).unwrap_or(&l.name);
                                option value=(v) selected[v == m.var] { (v) }
                            }
                        }
                    }
                    @if let Some(t) = m.time {
                        label.slider { "Time "
                            input #time-slider type="range" name="t" min="0" max=(m.layer.times.len() - 1) value=(t) step="1"
                                aria-valuetext=(pretty_time(&m.layer.times[t]))
                                data-times=[(m.layer.times.len() <= LIVE_STEPS).then(|| serde_json::to_string(&m.layer.times).unwrap_or_default())];
                            output #time-label for="time-slider" { (pretty_time(&m.layer.times[t])) }
                        }
                        @if m.layer.times.len() > LIVE_STEPS {
                            label { "or the date " input type="text" name="when" size="12" placeholder=(pretty_time(&m.layer.times[t])); }
                        }
                    }
                    @if let (Some(z), Some((levels, units))) = (m.level, &m.layer.elevations) {
                        label { "Level "
                            select name="z" {
                                @for (i, l) in levels.iter().enumerate() { option value=(i) data-elevation=(l) selected[i == z] { (l) " " (units) } }
                            }
                        }
                    }
                    label { "Colours "
                        select name="style" {
                            @for c in crate::picture::colour::all() { option value=(c.name) selected[c.name == m.style] { (c.name) } }
                        }
                    }
                    button type="submit" { "Show" }
                }
                figure.map {
                    div.mapwrap {
                    div #map-box.mapbox data-bbox=(format!("{},{},{},{}", m.bbox[0], m.bbox[1], m.bbox[2], m.bbox[3]))
                        data-crs=(m.crs) data-drawable=(m.drawable) style={ "width:" (m.width) "px" } {
                        img #map src=(m.url()) width=(m.width) height=(m.height)
                            alt={ "Map of " (m.var) @if let Some(t) = m.time { " at " (m.layer.times[t]) } };
                        div #map-rect hidden {}
                    }
                    img #legend src=(m.legend_url()) width="100" height="300" alt={ "Colour scale of " (m.var) };
                    }
                    figcaption {
                        span.crs { "Drawn in " (m.crs) }
                        @if m.drawable { span.hint { " · drag on the map to set the subset's box" } }
                    }
                }
            }
        }
        section #subset aria-labelledby="subset-h" {
            h2 #subset-h { "Subset" }
            form #subset-form method="get" action={ "/datasets/" (name) "#subset" } data-fragment={ "/datasets/" (name) "/subset" } {
                input type="hidden" name="vars" value="";
                @if let Some(m) = &map {
                    input type="hidden" name="layer" value=(m.var);
                    @if let Some(t) = m.time { input type="hidden" name="t" value=(t); }
                    @if let Some(z) = m.level { input type="hidden" name="z" value=(z); }
                    input type="hidden" name="style" value=(m.style);
                }
                fieldset {
                    legend { "Variables" }
                    @for v in &data_vars {
                        label.check { input type="checkbox" name="vars" value=(v.def.name) checked[r.vars.contains(&v.def.name)];
                            " " (v.def.attrs.text_attr("long_name").unwrap_or(&v.def.name)) " " code { (v.def.name) } }
                    }
                }
                fieldset.box {
                    legend { "Box" }
                    label { "West (" (g.x.name) ") " input #west type="number" step="any" name="west" value=[num(r.bbox[0])] placeholder=(axis_end(&g.x.values, false)); }
                    label { "South (" (g.y.name) ") " input #south type="number" step="any" name="south" value=[num(r.bbox[1])] placeholder=(axis_end(&g.y.values, false)); }
                    label { "East " input #east type="number" step="any" name="east" value=[num(r.bbox[2])] placeholder=(axis_end(&g.x.values, true)); }
                    label { "North " input #north type="number" step="any" name="north" value=[num(r.bbox[3])] placeholder=(axis_end(&g.y.values, true)); }
                    label { "Stride " input type="number" min="1" step="1" name="stride" value=(r.stride) size="4"; }
                }
                @if !times.is_empty() {
                    fieldset {
                        legend { "Time" }
                        label { "From " input type="text" name="start" value=(r.start) placeholder=(times[0]) list="time-steps" size="22"; }
                        label { "to " input type="text" name="end" value=(r.end) placeholder=(times[times.len() - 1]) list="time-steps" size="22"; }
                        label { "every " input type="number" min="1" step="1" name="tstride" value=(r.tstride) size="4"; " steps" }
                        @if times.len() <= 5000 { datalist #time-steps { @for t in &times { option value=(t) {} } } }
                    }
                }
                @if let Some(l) = &g.level {
                    fieldset {
                        legend { "Levels (" (l.name) (unit(l)) ")" }
                        label { "From " select name="zlo" { option value="" { "first" } @for v in &l.values { option value=(v) selected[r.zlo == Some(*v)] { (v) } } } }
                        label { "to " select name="zhi" { option value="" { "last" } @for v in &l.values { option value=(v) selected[r.zhi == Some(*v)] { (v) } } } }
                    }
                }
                button type="submit" { "Build" }
            }
            div #subset-result aria-live="polite" { (subset_result(&p.dap_url, name, r, &p.built)) }
        }
        section #about aria-labelledby="about-h" {
            h2 #about-h { "About this dataset" }
            table.facts {
                tr { th { "Grid" } td { (g.nx()) " × " (g.ny()) " cells (" (g.x.name) " × " (g.y.name) ")" } }
                tr { th { "CRS" } td { (g.crs.describe()) } }
                tr { th { (g.x.name) } td { (extent(&g.x)) (unit(&g.x)) } }
                tr { th { (g.y.name) } td { (extent(&g.y)) (unit(&g.y)) } }
                tr { th { "Extent" } td { (show_bbox(p.summary.bbox)) } }
                tr { th { "Time" } td {
                    @if times.is_empty() { "time-invariant" } @else {
                        (times[0]) " – " (times[times.len() - 1]) " · " (times.len()) " steps · " (def.time.units) " · calendar " (def.time.calendar)
                    } } }
                @if let Some(l) = &g.level { tr { th { "Levels" } td { (l.values.len()) " (" (l.name) (unit(l)) "): "
                    (l.values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")) } } }
                tr { th { "Tiles" } td { (d.stats.tile_count) " of " (def.tile) " cells, " (def.format) ", " (human_bytes(d.stats.bytes)) } }
                tr { th { "Overviews" } td {
                    @if s.overview_levels.is_empty() { "none" } @else {
                        "levels " (s.overview_levels.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "))
                        " · " (d.stats.overview_tiles) " tiles, " (human_bytes(d.stats.overview_bytes))
                    } } }
                tr { th { "Updated" } td { (d.updated_at.format("%Y-%m-%d %H:%M UTC")) " (version " (d.version) ")" } }
            }
            h3 { "Variables" }
            table.vars {
                tr { th { "name" } th { "long name" } th { "units" } th { "type" } th { "dimensions" } }
                @for v in &s.vars {
                    tr {
                        td { code { (v.def.name) } }
                        td { (v.def.attrs.text_attr("long_name").unwrap_or("")) }
                        td { (v.def.attrs.text_attr("units").unwrap_or("")) }
                        td { (v.def.dtype) }
                        td { (v.def.dims(def).join(", ")) }
                    }
                }
            }
            h3 { "Global attributes" }
            table.attrs {
                @for a in &def.attrs { tr { th { (a.name) } td { (show_attr(&a.value)) } } }
            }
            details { summary { "DDS" } pre { (s.dds) } }
            details { summary { "DAS" } pre { (s.das) } }
        }
    }
}

/// An axis's lowest or highest value, to six significant digits (a
/// placeholder, not a bound).
fn axis_end(values: &[f64], high: bool) -> String {
    let v = values.iter().copied().fold(if high { f64::NEG_INFINITY } else { f64::INFINITY }, |a, b| if high { a.max(b) } else { a.min(b) });
    if !v.is_finite() {
        return String::new();
    }
    let digits = (5 - v.abs().max(1e-300).log10().floor() as i32).clamp(0, 12) as usize;
    let t = format!("{v:.digits$}");
    if t.contains('.') { t.trim_end_matches('0').trim_end_matches('.').to_string() } else { t }
}

/// An ISO instant without a zero millisecond part, for reading.
pub fn pretty_time(t: &str) -> String {
    t.replace(".000Z", "Z")
}

fn show_attr(v: &AttrValue) -> String {
    fn join<T: ToString>(v: &[T]) -> String {
        v.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
    }
    match v {
        AttrValue::Text(t) => t.clone(),
        AttrValue::U8(x) => join(x),
        AttrValue::I8(x) => join(x),
        AttrValue::I16(x) => join(x),
        AttrValue::U16(x) => join(x),
        AttrValue::I32(x) => join(x),
        AttrValue::U32(x) => join(x),
        AttrValue::I64(x) => join(x),
        AttrValue::U64(x) => join(x),
        AttrValue::F32(x) => join(x),
        AttrValue::F64(x) => join(x),
    }
}

/// The builder's answer: size, links and snippets, or why not.
pub fn subset_result(dap_url: &str, name: &str, r: &Request, built: &Result<Built, String>) -> Markup {
    match built {
        Err(e) => html! { p.error role="alert" { (e) } },
        Ok(b) => {
            let over = b.over_limit();
            html! {
                p.size #subset-size data-bytes=(b.bytes) {
                    "Size: " strong { (human_bytes(b.bytes)) } " of data (" (b.bytes) " bytes) · "
                    @for (i, (v, shape)) in b.shapes.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (v) @for (d, n) in shape { "[" (d) "=" (n) "]" } }
                    }
                }
                @if over {
                    p.error.over-limit role="alert" {
                        "Over this server's limit of " (human_bytes(b.limit)) ": the request would be refused. "
                        "Make the box smaller, the stride larger or the time range shorter."
                    }
                }
                h3 { "Links" }
                ul.links #subset-links {
                    @for (label, url) in subset::links(dap_url, b) {
                        li { (label) ": "
                            @if over && !label.starts_with("NcML") && !label.starts_with("DDS") { code.refused { (url) } }
                            @else { a href=(url) data-kind=(label) { (url) } }
                        }
                    }
                }
                h3 { "Snippets" }
                @for (i, (label, code)) in subset::snippets(dap_url, name, r, b).iter().enumerate() {
                    div.snippet {
                        div.snippet-head { span { (label) } button.copy type="button" data-copy={ "#snippet-" (i) } { "Copy" } }
                        pre { code #{ "snippet-" (i) } { (code) } }
                    }
                }
            }
        }
    }
}

/// A page for an error a person reads (unknown dataset and the like).
pub fn error_page(title: &str, message: &str) -> Markup {
    layout(title, html! { h1 { (title) } p.error { (message) } p { a href="/" { "All datasets" } } })
}

/// Raw HTML inside the common layout (the DAP2 form and info pages).
pub fn raw(title: &str, body: &str) -> String {
    layout(title, html! { (PreEscaped(body)) }).into_string()
}

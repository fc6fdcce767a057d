//! The dataset catalogue as people and programs search it: one summary
//! per dataset (title, variables, extent, time coverage, size), kept in
//! memory per dataset version, and the filters of the index page and of
//! `/catalog.json`.

use crate::archive::ServedDataset;
use crate::catalogue::DatasetVersion;
use crate::model::{Attributes, Timestamp, VarKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Datasets per page of the index and of `/catalog.json`.
pub const PAGE: usize = 20;

/// A data variable as the catalogue shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VarSummary {
    pub name: String,
    pub long_name: Option<String>,
    pub standard_name: Option<String>,
    pub units: Option<String>,
}

/// What the index shows of one dataset.
#[derive(Clone, Debug)]
pub struct Summary {
    pub name: String,
    pub title: String,
    /// The `summary` (else `comment`) attribute.
    pub description: Option<String>,
    pub state: DatasetVersion,
    pub variables: Vec<VarSummary>,
    /// Longitude-latitude box, `[west, south, east, north]`.
    pub bbox: [f64; 4],
    /// First and last slice, as keys and as shown.
    pub keys: Option<(Timestamp, Timestamp)>,
    pub time: Option<(String, String)>,
    pub steps: u64,
    pub nx: usize,
    pub ny: usize,
    pub crs: String,
    /// Stored bytes: full resolution and overviews.
    pub bytes: u64,
    pub tiles: u64,
    /// Lower-case text the free-text search looks in.
    haystack: String,
    calendar: crate::model::Calendar,
}

impl Summary {
    pub fn of(s: &ServedDataset) -> Summary {
        let d = &s.dataset;
        let def = &d.def;
        let text = |a: &[crate::model::Attribute], n: &str| a.text_attr(n).map(str::to_string);
        let variables: Vec<VarSummary> = s
            .vars
            .iter()
            .filter(|v| v.def.kind == VarKind::Data)
            .map(|v| VarSummary {
                name: v.def.name.clone(),
                long_name: text(&v.def.attrs, "long_name"),
                standard_name: text(&v.def.attrs, "standard_name"),
                units: text(&v.def.attrs, "units"),
            })
            .collect();
        let description = text(&def.attrs, "summary").or_else(|| text(&def.attrs, "comment"));
        let mut haystack = format!("{} {} {}", def.name, def.title, description.as_deref().unwrap_or(""));
        for key in ["keywords", "institution", "source", "project"] {
            if let Some(t) = def.attrs.text_attr(key) {
                haystack.push(' ');
                haystack.push_str(t);
            }
        }
        for v in &variables {
            for t in [Some(&v.name), v.long_name.as_ref(), v.standard_name.as_ref()].into_iter().flatten() {
                haystack.push(' ');
                haystack.push_str(t);
            }
        }
        let keys = s.times.first().zip(s.times.last()).map(|(a, b)| (*a, *b));
        Summary {
            name: def.name.to_string(),
            title: def.title.clone(),
            description,
            state: d.state(),
            variables,
            bbox: super::super::stac::wgs84_bbox(s),
            keys,
            time: keys.map(|(a, b)| (super::pages::pretty_time(&def.time.show(a)), super::pages::pretty_time(&def.time.show(b)))),
            steps: s.times.len() as u64,
            nx: def.grid.nx(),
            ny: def.grid.ny(),
            crs: def.grid.crs.describe(),
            bytes: d.stats.bytes + d.stats.overview_bytes,
            tiles: d.stats.tile_count + d.stats.overview_tiles,
            haystack: haystack.to_lowercase(),
            calendar: def.time.key_calendar().unwrap_or(crate::model::Calendar::Standard),
        }
    }
}

/// Summaries by dataset name, rebuilt only when a dataset's version moves.
#[derive(Default)]
pub struct Summaries {
    kept: Mutex<HashMap<String, Arc<Summary>>>,
}

impl Summaries {
    /// The kept summary of `name` if it is of `state`.
    pub fn get(&self, name: &str, state: DatasetVersion) -> Option<Arc<Summary>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).get(name).filter(|s| s.state == state).cloned()
    }

    pub fn put(&self, s: Arc<Summary>) {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).insert(s.name.clone(), s);
    }

    /// Forgets datasets that are gone.
    pub fn keep_only(&self, names: &std::collections::HashSet<&str>) {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).retain(|n, _| names.contains(n.as_str()));
    }
}

/// The index's filters, from its query string.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// Words that must all appear (name, title, summary, variables).
    pub q: String,
    /// `[west, south, east, north]`; west > east crosses the antimeridian.
    pub bbox: Option<[f64; 4]>,
    pub start: String,
    pub end: String,
    /// A variable's name or standard name.
    pub var: String,
    /// 1-based.
    pub page: usize,
    /// Datasets per page, 1 to 100.
    pub per_page: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Filter { q: String::new(), bbox: None, start: String::new(), end: String::new(), var: String::new(), page: 1, per_page: PAGE }
    }
}

impl Filter {
    /// Reads `q`, `west`, `south`, `east`, `north` (or `bbox=w,s,e,n`),
    /// `start`, `end`, `var` and `page`; an unusable value is an error
    /// naming the field.
    pub fn from_query(query: &str) -> Result<Filter, String> {
        let mut f = Filter::default();
        let mut edges: [Option<f64>; 4] = [None; 4];
        let number = |k: &str, v: &str| -> Result<Option<f64>, String> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some).ok_or_else(|| format!("{k}: {v:?} is not a number"))
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "q" => f.q = v.trim().to_string(),
                "start" => f.start = v.trim().to_string(),
                "end" => f.end = v.trim().to_string(),
                "var" => f.var = v.trim().to_string(),
                "west" => edges[0] = number("west", &v)?,
                "south" => edges[1] = number("south", &v)?,
                "east" => edges[2] = number("east", &v)?,
                "north" => edges[3] = number("north", &v)?,
                "bbox" if !v.trim().is_empty() => {
                    let parts: Vec<&str> = v.split(',').collect();
                    if parts.len() != 4 {
                        return Err("bbox: give west,south,east,north".into());
                    }
                    for (i, p) in parts.iter().enumerate() {
                        edges[i] = number("bbox", p)?;
                    }
                }
                "per_page" => {
                    f.per_page = v.trim().parse::<usize>().ok().filter(|p| (1..=100).contains(p)).ok_or_else(|| format!("per_page: {v:?} is not from 1 to 100"))?
                }
                "page" => f.page = v.trim().parse::<usize>().ok().filter(|p| *p >= 1).ok_or_else(|| format!("page: {v:?} is not a page number"))?,
                _ => {}
            }
        }
        if edges.iter().any(Option::is_some) {
            let [w, s, e, n] = edges;
            let b = [w.unwrap_or(-180.0), s.unwrap_or(-90.0), e.unwrap_or(180.0), n.unwrap_or(90.0)];
            if b[1] > b[3] {
                return Err(format!("south ({}) is north of north ({})", b[1], b[3]));
            }
            if !(-90.0..=90.0).contains(&b[1]) || !(-90.0..=90.0).contains(&b[3]) {
                return Err("latitudes run from -90 to 90".into());
            }
            f.bbox = Some(b);
        }
        for (k, v) in [("start", &f.start), ("end", &f.end)] {
            if !v.is_empty() && any_calendar_time(v).is_none() {
                return Err(format!("{k}: {v:?} is not a date (e.g. 2024-01-31 or 2024-01-31T12:00:00Z)"));
            }
        }
        Ok(f)
    }

    /// The query string that gives this filter, on page `page`.
    pub fn query(&self, page: usize) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("q", &self.q), ("start", &self.start), ("end", &self.end), ("var", &self.var)] {
            if !v.is_empty() {
                out.append_pair(k, v);
            }
        }
        if let Some(b) = self.bbox {
            for (k, v) in ["west", "south", "east", "north"].iter().zip(b) {
                out.append_pair(k, &v.to_string());
            }
        }
        if self.per_page != PAGE {
            out.append_pair("per_page", &self.per_page.to_string());
        }
        if page > 1 {
            out.append_pair("page", &page.to_string());
        }
        out.finish()
    }

    pub fn matches(&self, s: &Summary) -> bool {
        let words = self.q.to_lowercase();
        if !words.split_whitespace().all(|w| s.haystack.contains(w)) {
            return false;
        }
        if !self.var.is_empty()
            && !s.variables.iter().any(|v| v.name.eq_ignore_ascii_case(&self.var) || v.standard_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&self.var)))
        {
            return false;
        }
        if let Some(q) = self.bbox
            && !boxes_meet(q, s.bbox)
        {
            return false;
        }
        if self.start.is_empty() && self.end.is_empty() {
            return true;
        }
        // A time filter excludes datasets without time slices.
        let Some((first, last)) = s.keys else { return false };
        // Dates are read in the dataset's own calendar; one it cannot
        // hold (30 February in a standard calendar) matches nothing.
        let parse = |t: &str| s.calendar.parse_user_time(t).ok();
        let after_start = self.start.is_empty() || parse(&self.start).is_some_and(|t| last.0 >= t.0);
        let before_end = self.end.is_empty() || parse(&end_of_day(&self.end)).is_some_and(|t| first.0 <= t.0);
        after_start && before_end
    }
}

/// An end bound as people mean it: a date alone (`2024-01-31`) is the
/// whole day, so it stands for the day's last millisecond.
pub fn end_of_day(t: &str) -> String {
    let b = t.as_bytes();
    let date_only = b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if date_only { format!("{t}T23:59:59.999Z") } else { t.to_string() }
}

/// A date in some calendar tessera knows (the filters read it again in
/// each dataset's own).
fn any_calendar_time(s: &str) -> Option<Timestamp> {
    use crate::model::Calendar;
    [Calendar::Standard, Calendar::parse(Some("360_day")).unwrap_or(Calendar::Standard)].into_iter().find_map(|c| c.parse_user_time(s).ok())
}

/// Whether a search box meets a dataset's box (a search box across the
/// antimeridian, west > east, is two boxes).
pub fn boxes_meet(q: [f64; 4], b: [f64; 4]) -> bool {
    let lat = q[1] <= b[3] && q[3] >= b[1];
    let lon = |w: f64, e: f64| w <= b[2] && e >= b[0];
    lat && if q[0] <= q[2] { lon(q[0], q[2]) } else { lon(q[0], 180.0) || lon(-180.0, q[2]) }
}

/// One page of matches, and how many there are in all.
pub fn search<'a>(all: &'a [Arc<Summary>], f: &Filter) -> (Vec<&'a Arc<Summary>>, usize) {
    let matched: Vec<&Arc<Summary>> = all.iter().filter(|s| f.matches(s)).collect();
    let n = matched.len();
    let from = (f.page - 1).saturating_mul(f.per_page).min(n);
    (matched[from..(from + f.per_page).min(n)].to_vec(), n)
}

/// "1.2 GB" and the like (decimal units, as `ls -h --si`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} bytes") } else if v < 10.0 { format!("{v:.1} {}", UNITS[u]) } else { format!("{v:.0} {}", UNITS[u]) }
}

/// A box as people read it: `10°W–30°E, 20°S–60°N`.
pub fn show_bbox(b: [f64; 4]) -> String {
    let side = |v: f64, neg: char, pos: char| match trim(v.abs()).as_str() {
        "0" => "0°".to_string(),
        t => format!("{t}°{}", if v < 0.0 { neg } else { pos }),
    };
    let lon = |v: f64| side(v, 'W', 'E');
    let lat = |v: f64| side(v, 'S', 'N');
    format!("{}–{}, {}–{}", lon(b[0]), lon(b[2]), lat(b[1]), lat(b[3]))
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_every_field_and_refuse_bad_ones() {
        let f = Filter::from_query("q=sea+surface&west=-10&south=30&east=40&north=60&start=2024-01-02&var=sst&page=2&per_page=5").unwrap();
        assert_eq!(f.per_page, 5);
        assert_eq!(f.q, "sea surface");
        assert_eq!(f.bbox, Some([-10.0, 30.0, 40.0, 60.0]));
        assert_eq!((f.start.as_str(), f.var.as_str(), f.page), ("2024-01-02", "sst", 2));
        assert_eq!(Filter::from_query(&f.query(2)).unwrap(), f);
        assert_eq!(Filter::from_query("bbox=1,2,3,4").unwrap().bbox, Some([1.0, 2.0, 3.0, 4.0]));
        assert_eq!(Filter::from_query("north=10").unwrap().bbox, Some([-180.0, -90.0, 180.0, 10.0]));
        for bad in ["west=abc", "south=50&north=10", "start=yesterday", "page=0", "bbox=1,2,3", "north=100", "per_page=0", "per_page=101"] {
            assert!(Filter::from_query(bad).is_err(), "{bad}");
        }
        assert_eq!(end_of_day("2024-01-31"), "2024-01-31T23:59:59.999Z");
        assert_eq!(end_of_day("2024-01-31T06:00:00Z"), "2024-01-31T06:00:00Z");
        // A 360_day date is a date.
        assert!(Filter::from_query("start=2001-02-30").is_ok());
    }

    #[test]
    fn sizes_and_boxes_read_as_people_write_them() {
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(human_bytes(56_000_000_000), "56 GB");
        assert_eq!(show_bbox([-10.5, -20.0, 30.0, 60.25]), "10.5°W–30°E, 20°S–60.25°N");
        assert!(boxes_meet([170.0, -10.0, -170.0, 10.0], [-180.0, -5.0, -175.0, 5.0]));
        assert!(!boxes_meet([10.0, -10.0, 20.0, 10.0], [30.0, -5.0, 40.0, 5.0]));
    }
}

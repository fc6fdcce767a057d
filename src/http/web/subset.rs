//! The subset builder: variables, a box, a time range by dates, levels and
//! strides, turned into constraint expressions the server itself resolves
//! (so the size shown, and every error, is what the request would get),
//! then into links and snippets for the usual clients.
//!
//! Two forms of the same constraint are given: by coordinate values
//! (`sst[(2024-01-02):1:(2024-01-03)][(60):(30)][(10):(40)]`), readable and
//! stable, for tessera's own links and curl; and by indices, for netCDF-C
//! and the clients built on it (ncdump, nccopy, xarray, Matlab), which
//! refuse the value form.

use crate::archive::ServedDataset;
use crate::dap::view::{Range, SentVar, Subset, ViewVar};
use crate::model::VarKind;

/// What the builder's form asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    pub vars: Vec<String>,
    /// west, south, east, north in the grid's own coordinates (longitude
    /// and latitude for geographic grids, whatever their longitude range).
    pub bbox: [Option<f64>; 4],
    pub start: String,
    pub end: String,
    /// Level bounds, in the level axis's values.
    pub zlo: Option<f64>,
    pub zhi: Option<f64>,
    /// Steps along x and y, and along time.
    pub stride: usize,
    pub tstride: usize,
}

impl Request {
    /// Reads the builder's fields (`vars` repeated, `west`, `south`,
    /// `east`, `north`, `start`, `end`, `zlo`, `zhi`, `stride`,
    /// `tstride`); other keys are ignored. None when the form was not
    /// filled in (no `vars` key at all).
    pub fn from_query(query: &str) -> Result<Option<Request>, String> {
        let mut r = Request { stride: 1, tstride: 1, ..Request::default() };
        let mut asked = false;
        let number = |k: &str, v: &str| -> Result<Option<f64>, String> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some).ok_or_else(|| format!("{k}: {v:?} is not a number"))
        };
        let step = |k: &str, v: &str| -> Result<usize, String> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(1);
            }
            v.parse::<usize>().ok().filter(|s| *s >= 1).ok_or_else(|| format!("{k}: {v:?} is not a whole number of at least 1"))
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "vars" => {
                    asked = true;
                    if !v.is_empty() {
                        r.vars.push(v.into_owned());
                    }
                }
                "west" => r.bbox[0] = number("west", &v)?,
                "south" => r.bbox[1] = number("south", &v)?,
                "east" => r.bbox[2] = number("east", &v)?,
                "north" => r.bbox[3] = number("north", &v)?,
                "start" => r.start = v.trim().to_string(),
                "end" => r.end = v.trim().to_string(),
                "zlo" => r.zlo = number("zlo", &v)?,
                "zhi" => r.zhi = number("zhi", &v)?,
                "stride" => r.stride = step("stride", &v)?,
                "tstride" => r.tstride = step("tstride", &v)?,
                _ => {}
            }
        }
        Ok(asked.then_some(r))
    }
}

/// A request resolved against the dataset.
#[derive(Clone, Debug)]
pub struct Built {
    /// By coordinate values (raw: brackets not yet encoded).
    pub value_ce: String,
    /// By indices.
    pub index_ce: String,
    /// Bytes of data the response carries (the XDR length, which the
    /// size limit applies to).
    pub bytes: u64,
    pub limit: u64,
    /// Each variable's shape, `(variable, [(dimension, length)])`.
    pub shapes: Vec<(String, Vec<(String, usize)>)>,
    /// The selection along each dimension.
    pub dims: Vec<(String, Range)>,
}

impl Built {
    pub fn over_limit(&self) -> bool {
        self.bytes > self.limit
    }
}

/// Resolves `r` against `s`; the error is one line for the form.
pub fn build(s: &ServedDataset, r: &Request, limit: u64) -> Result<Built, String> {
    let def = &s.dataset.def;
    if r.vars.is_empty() {
        return Err("pick at least one variable".into());
    }
    let mut vars = Vec::new();
    for name in &r.vars {
        let v = s
            .vars
            .iter()
            .find(|v| v.def.name == *name && v.def.kind == VarKind::Data && (!v.def.has_time || !s.times.is_empty()))
            .ok_or_else(|| format!("{name:?} is not a data variable of this dataset"))?;
        vars.push(v);
    }
    let g = &def.grid;
    let x = axis_slab(&g.x.values, r.bbox[0], r.bbox[2], r.stride, g.crs.is_geographic(), &g.x.name)?;
    let y = axis_slab(&g.y.values, r.bbox[1], r.bbox[3], r.stride, false, &g.y.name)?;
    let z = match &g.level {
        Some(l) => Some(axis_slab(&l.values, r.zlo, r.zhi, 1, false, &l.name)?),
        None => None,
    };
    let t = time_slab(s, &r.start, &r.end, r.tstride)?;
    let slab = |dim: &str| -> String {
        if dim == def.time.name {
            t.clone()
        } else if dim == g.x.name {
            x.clone()
        } else if dim == g.y.name {
            y.clone()
        } else if let (Some(l), Some(z)) = (&g.level, &z)
            && dim == l.name
        {
            z.clone()
        } else {
            String::new()
        }
    };
    // Plain arrays do not bring their coordinates as Grids do: ask for
    // them alongside.
    let top: std::collections::HashMap<&str, bool> = s
        .structure
        .vars()
        .iter()
        .map(|v| match v {
            ViewVar::Array(a) => (a.name.as_str(), false),
            ViewVar::Grid(gr) => (gr.name(), true),
        })
        .collect();
    let mut coords: Vec<&str> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for v in &vars {
        let dims = v.def.dims(def);
        if top.get(v.def.name.as_str()) == Some(&false) {
            for d in &dims {
                if top.contains_key(d) && !coords.contains(d) {
                    coords.push(d);
                }
            }
        }
        parts.push(format!("{}{}", v.def.name, dims.iter().map(|d| slab(d)).collect::<String>()));
    }
    let mut all: Vec<String> = coords.iter().map(|d| format!("{d}{}", slab(d))).collect();
    all.extend(parts);
    let value_ce = all.join(",");
    let subset = s.resolve(&value_ce.replace(' ', "%20")).map_err(|e| e.to_string())?;
    Ok(Built { index_ce: index_ce(&subset), bytes: subset.dods_data_len().unwrap_or(0), limit, shapes: shapes(&subset), dims: dims(&subset), value_ce })
}

/// `[(a):stride:(b)]` along an axis, bounds clamped to its values and in
/// its own order; the whole axis when neither bound is given. Longitudes
/// are first moved by 360 degrees into the axis's range.
fn axis_slab(values: &[f64], lo: Option<f64>, hi: Option<f64>, stride: usize, longitude: bool, name: &str) -> Result<String, String> {
    let n = values.len();
    if n == 0 {
        return Err(format!("axis {name} is empty"));
    }
    if lo.is_none() && hi.is_none() {
        return Ok(format!("[0:{stride}:{}]", n - 1));
    }
    let (amin, amax) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let half = if n > 1 { (amax - amin) / (n - 1) as f64 / 2.0 } else { 0.0 };
    let (mut lo, mut hi) = (lo.unwrap_or(amin), hi.unwrap_or(amax));
    if lo > hi && !longitude {
        return Err(format!("the {name} bounds are the wrong way round ({lo} > {hi})"));
    }
    if longitude {
        if hi - lo >= 360.0 - 2.0 * half {
            return Ok(format!("[0:{stride}:{}]", n - 1));
        }
        let into = |v: f64| [v, v + 360.0, v - 360.0].into_iter().find(|c| *c >= amin - half && *c <= amax + half).unwrap_or(v);
        (lo, hi) = (into(lo), into(hi));
        if lo > hi {
            return Err(format!(
                "the box crosses the edge of the grid's longitudes ({} to {}): ask for the two sides separately",
                show(amin),
                show(amax)
            ));
        }
    }
    let (lo, hi) = (lo.max(amin), hi.min(amax));
    if lo > hi {
        return Err(format!("the box is outside the grid: {name} runs from {} to {}", show(amin), show(amax)));
    }
    let ascending = values[n - 1] >= values[0];
    let (a, b) = if ascending { (lo, hi) } else { (hi, lo) };
    Ok(format!("[({}):{stride}:({})]", show(a), show(b)))
}

/// The time slab: dates in the dataset's own calendar, or every slice.
fn time_slab(s: &ServedDataset, start: &str, end: &str, stride: usize) -> Result<String, String> {
    let n = s.times.len();
    if n == 0 {
        return Ok(String::new());
    }
    let cal = s.dataset.def.time.key_calendar().map_err(|e| e.to_string())?;
    let bound = |t: &str, k: &str, index: usize| -> Result<String, String> {
        if t.is_empty() {
            return Ok(index.to_string());
        }
        cal.parse_user_time(t).map_err(|_| format!("{k}: {t:?} is not a date in this dataset's calendar"))?;
        Ok(format!("({t})"))
    };
    Ok(format!("[{}:{stride}:{}]", bound(start, "start", 0)?, bound(&super::catalog::end_of_day(end), "end", n - 1)?))
}

/// Shortest text that reads back as the same number.
fn show(v: f64) -> String {
    format!("{v}")
}

fn main_array(v: &SentVar) -> Option<&crate::dap::view::SentArray> {
    match v {
        SentVar::Array(a) | SentVar::Grid { array: a, .. } => Some(a),
        SentVar::Structure { members, .. } => members.first(),
    }
}

fn index_ce(subset: &Subset) -> String {
    let part = |v: &SentVar| -> String {
        let slabs: String = main_array(v)
            .map(|a| a.dims.iter().map(|d| format!("[{}:{}:{}]", d.range.start, d.range.stride, d.range.start + d.range.stride * (d.range.count - 1))).collect())
            .unwrap_or_default();
        format!("{}{slabs}", v.name())
    };
    subset.vars.iter().map(part).collect::<Vec<_>>().join(",")
}

fn shapes(subset: &Subset) -> Vec<(String, Vec<(String, usize)>)> {
    subset.vars.iter().filter_map(|v| main_array(v).map(|a| (v.name().to_string(), a.dims.iter().map(|d| (d.name.clone(), d.range.count)).collect()))).collect()
}

fn dims(subset: &Subset) -> Vec<(String, Range)> {
    let mut out: Vec<(String, Range)> = Vec::new();
    for a in subset.vars.iter().filter_map(main_array) {
        for d in &a.dims {
            if !out.iter().any(|(n, _)| *n == d.name) {
                out.push((d.name.clone(), d.range));
            }
        }
    }
    out
}

/// A constraint as it goes in a URL: brackets and spaces
/// percent-encoded (curl and browsers take them so).
pub fn url_ce(ce: &str) -> String {
    ce.replace('[', "%5B").replace(']', "%5D").replace(' ', "%20")
}

/// Links to the subset in every form tessera sends.
pub fn links(url: &str, b: &Built) -> Vec<(&'static str, String)> {
    let v = url_ce(&b.value_ce);
    vec![
        ("OPeNDAP (coordinate values)", format!("{url}?{v}")),
        ("OPeNDAP (indices, for netCDF-C clients)", format!("{url}?{}", b.index_ce)),
        ("NetCDF-3 (.nc)", format!("{url}.nc?{v}")),
        ("NetCDF-4 (.nc4)", format!("{url}.nc4?{v}")),
        ("ASCII (.ascii)", format!("{url}.ascii?{v}")),
        ("DDS of the subset (.dds)", format!("{url}.dds?{v}")),
        ("NcML of the dataset (.ncml)", format!("{url}.ncml")),
    ]
}

/// Copy-paste snippets: Python (xarray), Matlab, ncdump, nccopy, curl.
pub fn snippets(url: &str, dataset: &str, r: &Request, b: &Built) -> Vec<(&'static str, String)> {
    let file = format!("{dataset}_subset.nc");
    let isel: Vec<String> = b
        .dims
        .iter()
        .map(|(d, rg)| {
            let stop = rg.start + rg.stride * (rg.count - 1) + 1;
            if rg.stride == 1 { format!("{d}=slice({}, {stop})", rg.start) } else { format!("{d}=slice({}, {stop}, {})", rg.start, rg.stride) }
        })
        .collect();
    let names: Vec<String> = r.vars.iter().map(|v| format!("{v:?}")).collect();
    let xarray = format!(
        "import xarray as xr\n\nds = xr.open_dataset(\"{url}\")  # OPeNDAP: only what is selected is read\nsub = ds[[{}]].isel({})\nsub.to_netcdf(\"{file}\")",
        names.join(", "),
        isel.join(", ")
    );
    let mut matlab = format!("url = '{url}';\n");
    for (name, shape) in &b.shapes {
        let ranges: Vec<&Range> = shape.iter().filter_map(|(d, _)| b.dims.iter().find(|(n, _)| n == d).map(|(_, r)| r)).collect();
        // Matlab reads dimensions fastest first, from 1.
        let col = |f: &dyn Fn(&Range) -> usize| ranges.iter().rev().map(|r| f(r).to_string()).collect::<Vec<_>>().join(" ");
        matlab.push_str(&format!(
            "{name} = ncread(url, '{name}', [{}], [{}], [{}]);\n",
            col(&|r| r.start + 1),
            col(&|r| r.count),
            col(&|r| r.stride)
        ));
    }
    let index_url = format!("{url}?{}", b.index_ce);
    vec![
        ("Python (xarray)", xarray),
        ("Matlab", matlab.trim_end().to_string()),
        ("ncdump", format!("ncdump '{index_url}'")),
        ("nccopy", format!("nccopy '{index_url}' {file}")),
        ("curl", format!("curl -o {file} '{url}.nc?{}'", url_ce(&b.value_ce))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabs_follow_the_axis_direction_and_clamp_to_it() {
        let lat: Vec<f64> = (0..180).map(|i| 89.5 - i as f64).collect();
        assert_eq!(axis_slab(&lat, Some(30.0), Some(60.0), 2, false, "lat").unwrap(), "[(60):2:(30)]");
        assert_eq!(axis_slab(&lat, Some(-100.0), Some(0.0), 1, false, "lat").unwrap(), "[(0):1:(-89.5)]");
        assert_eq!(axis_slab(&lat, None, None, 3, false, "lat").unwrap(), "[0:3:179]");
        assert!(axis_slab(&lat, Some(60.0), Some(30.0), 1, false, "lat").unwrap_err().contains("wrong way"));
        let lon: Vec<f64> = (0..360).map(|i| i as f64 + 0.5).collect();
        // West of Greenwich on a 0..360 grid.
        assert_eq!(axis_slab(&lon, Some(-40.0), Some(-10.0), 1, true, "lon").unwrap(), "[(320):1:(350)]");
        assert_eq!(axis_slab(&lon, Some(-180.0), Some(180.0), 1, true, "lon").unwrap(), "[0:1:359]");
        assert!(axis_slab(&lon, Some(-10.0), Some(10.0), 1, true, "lon").unwrap_err().contains("crosses"));
        let lon180: Vec<f64> = (0..360).map(|i| i as f64 - 179.5).collect();
        assert!(axis_slab(&lon180, Some(200.0), Some(210.0), 1, false, "x").unwrap_err().contains("outside"));
    }

    #[test]
    fn the_form_reads_its_fields() {
        assert_eq!(Request::from_query("west=1").unwrap(), None);
        let r = Request::from_query("vars=sst&vars=chl&west=-10&north=60&start=2024-01-02&stride=4").unwrap().unwrap();
        assert_eq!(r.vars, ["sst", "chl"]);
        assert_eq!(r.bbox, [Some(-10.0), None, None, Some(60.0)]);
        assert_eq!((r.stride, r.tstride), (4, 1));
        assert!(Request::from_query("vars=sst&stride=0").is_err());
        assert!(Request::from_query("vars=sst&east=x").is_err());
    }
}

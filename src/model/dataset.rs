//! Datasets and variables as the catalogue keeps them.

use super::attr::{Attribute, Attributes};
use super::dtype::DataType;
use super::grid::{Grid, TileShape};
use super::time::{Calendar, CfTime, TimeError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A dataset's name: a URL- and path-safe slug, `[A-Za-z0-9][A-Za-z0-9_-]*`,
/// at most 100 characters. It names a directory of the pool and appears in
/// URLs, so nothing that could escape either is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetName(String);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

impl DatasetName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_rest = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if s.is_empty() || s.len() > 100 || !ok_first || !ok_rest {
            return Err(NameError(format!(
                "dataset name {s:?} is not a slug: use 1-100 letters, digits, '_' or '-', starting with a letter or digit (e.g. sst_daily)"
            )));
        }
        Ok(DatasetName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DatasetName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        DatasetName::parse(s)
    }
}

impl TryFrom<String> for DatasetName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        DatasetName::parse(&s)
    }
}

impl From<DatasetName> for String {
    fn from(n: DatasetName) -> String {
        n.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// True for names every DAP2 and netCDF client agrees on:
/// `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
pub fn is_safe_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How tiles are encoded on disk; chosen per dataset when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TileFormat {
    /// NetCDF-4 (HDF5), chunked, deflate-compressed: smallest on disk.
    #[serde(rename = "nc4-deflate")]
    Nc4Deflate,
    /// NetCDF-4, chunked, uncompressed.
    #[serde(rename = "nc4")]
    Nc4,
    /// NetCDF-3 64-bit offset (CDF-2): uncompressed, fastest to read.
    /// Unsigned types are stored as their signed twins with `_Unsigned = "true"`.
    #[serde(rename = "nc3-64bit")]
    Nc3Offset64,
}

impl TileFormat {
    pub fn name(self) -> &'static str {
        match self {
            TileFormat::Nc4Deflate => "nc4-deflate",
            TileFormat::Nc4 => "nc4",
            TileFormat::Nc3Offset64 => "nc3-64bit",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "nc4-deflate" | "netcdf4-deflate" => Ok(TileFormat::Nc4Deflate),
            "nc4" | "netcdf4" => Ok(TileFormat::Nc4),
            "nc3-64bit" | "nc3" | "cdf2" => Ok(TileFormat::Nc3Offset64),
            other => Err(format!("tile format {other:?} is not one of nc4-deflate, nc4, nc3-64bit")),
        }
    }
}

impl fmt::Display for TileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the keys ([`super::Timestamp`]) of a dataset's time slices count
/// time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeKeys {
    /// Archives made before CF calendars were supported: keys are proleptic
    /// Gregorian milliseconds whatever `calendar` says (such archives only
    /// hold standard, gregorian and proleptic_gregorian datasets). Kept so
    /// that their keys, and the values served from them, never move.
    #[default]
    #[serde(rename = "proleptic")]
    Proleptic,
    /// Keys count the days of the dataset's own calendar.
    #[serde(rename = "calendar")]
    Calendar,
}

/// The time axis of a dataset: its coordinate name and CF encoding. The
/// values are the dataset's time slices, kept in their own rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeAxis {
    pub name: String,
    /// CF units, e.g. `days since 2000-01-01 00:00:00`.
    pub units: String,
    pub calendar: String,
    /// Every attribute of the source's time variable (units and calendar
    /// included), in source order.
    pub attrs: Vec<Attribute>,
    /// The stored type of the time coordinate (ERA5 keeps int32 hours).
    #[serde(default = "f64_type")]
    pub dtype: DataType,
    #[serde(default)]
    pub keys: TimeKeys,
}

fn f64_type() -> DataType {
    DataType::F64
}

impl TimeAxis {
    /// The axis used when a source has no time coordinate of its own.
    pub fn default_axis() -> Self {
        let units = "seconds since 1970-01-01 00:00:00".to_string();
        TimeAxis {
            name: "time".into(),
            units: units.clone(),
            calendar: "standard".into(),
            attrs: vec![
                Attribute::text("standard_name", "time"),
                Attribute::text("long_name", "time"),
                Attribute::text("units", units),
                Attribute::text("calendar", "standard"),
                Attribute::text("axis", "T"),
            ],
            dtype: DataType::F64,
            keys: TimeKeys::Calendar,
        }
    }

    /// The calendar the slice keys count in.
    pub fn key_calendar(&self) -> Result<Calendar, TimeError> {
        match self.keys {
            TimeKeys::Proleptic => Ok(Calendar::ProlepticGregorian),
            TimeKeys::Calendar => Calendar::parse(Some(&self.calendar)),
        }
    }

    /// The dataset's own calendar (as its sources declare it).
    pub fn calendar(&self) -> Result<Calendar, TimeError> {
        Calendar::parse(Some(&self.calendar))
    }

    /// Values of the time coordinate <-> slice keys.
    pub fn cf(&self) -> Result<CfTime, TimeError> {
        CfTime::with_calendar(&self.units, self.key_calendar()?)
    }

    /// A slice key for people: a date in the dataset's calendar.
    pub fn show(&self, t: super::Timestamp) -> String {
        self.key_calendar().unwrap_or(Calendar::Standard).iso(t)
    }
}

/// One dimension of an auxiliary variable: a dataset axis (same name and
/// length) or one of its own (`bnds`, `nv`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuxDim {
    pub name: String,
    pub len: usize,
}

/// A small variable that belongs to the dataset without being tiled data:
/// spatial bounds (`lat_bnds(lat, bnds)`), scalar coordinates
/// (`height = 2 m`), 1-D auxiliary coordinates; and, in
/// [`DatasetDef::slice_aux`], variables that follow the time slices
/// (`time_bnds(time, bnds)`: `dims` then omit time, and the values live in
/// each slice's row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuxVar {
    pub name: String,
    pub dtype: DataType,
    pub dims: Vec<AuxDim>,
    pub attrs: Vec<Attribute>,
    /// Row-major values, exactly as the source had them (empty for
    /// per-slice variables).
    #[serde(default, with = "super::attr::float_vec")]
    pub values: Vec<f64>,
}

impl AuxVar {
    /// Number of values (1 for a scalar).
    pub fn len(&self) -> usize {
        self.dims.iter().map(|d| d.len).product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything that defines a dataset when it is created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetDef {
    pub name: DatasetName,
    pub title: String,
    /// Global attributes of the first source, in order.
    pub attrs: Vec<Attribute>,
    pub grid: Grid,
    pub time: TimeAxis,
    pub tile: TileShape,
    pub format: TileFormat,
    /// Deflate level 1-9 for `nc4-deflate` tiles.
    pub deflate_level: u8,
    /// Static auxiliary variables (bounds, scalar and 1-D coordinates).
    #[serde(default)]
    pub aux: Vec<AuxVar>,
    /// Auxiliary variables that follow the time slices (time bounds).
    #[serde(default)]
    pub slice_aux: Vec<AuxVar>,
    /// Whether the dataset keeps overviews: then every ingested (data
    /// variable, time) has all of [`DatasetDef::overview_levels`], which is
    /// what lets a strided read trust a missing overview tile to be fill.
    /// False in archives made before overviews, until `tessera overviews
    /// build`.
    #[serde(default)]
    pub overviews: bool,
    /// A dataset made by `tessera synth` for scale tests: its tile rows
    /// share a few files that state [`SYNTHETIC_TIME`] for their time, which
    /// the store accepts for this dataset's tiles only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
}

/// The time a synthetic dataset's tile files state: they stand for every
/// slice (see [`DatasetDef::synthetic`]).
pub const SYNTHETIC_TIME: &str = "any (synthetic)";

impl DatasetDef {
    /// The time the store expects a tile file of this dataset to state
    /// (`tessera_time`, read where a file has no time key): the slice's
    /// date, `static`, or, in a synthetic dataset, [`SYNTHETIC_TIME`],
    /// which its shared files state (tiles ingested into it carry their
    /// own time key, checked as anywhere).
    pub fn tile_time_text(&self, t: Option<super::Timestamp>) -> String {
        match t {
            _ if self.synthetic => SYNTHETIC_TIME.to_string(),
            None => "static".to_string(),
            Some(t) => self.time.show(t),
        }
    }

    /// The overview levels the dataset keeps: 2, 4, 8, ... up to the first
    /// whose grid fits in one tile (none when the grid already does).
    /// Level `k` holds every `k`-th cell from the origin on both axes.
    pub fn overview_levels(&self) -> Vec<u32> {
        if !self.overviews {
            return Vec::new();
        }
        let (nx, ny) = (self.grid.nx(), self.grid.ny());
        let mut levels = Vec::new();
        let mut k = 1usize;
        while nx.div_ceil(k) > self.tile.w || ny.div_ceil(k) > self.tile.h {
            k *= 2;
            levels.push(k as u32);
        }
        levels
    }

    /// The dataset as overview level `k` sees it: the same dataset on the
    /// grid of every `k`-th cell (what its overview tiles are cut from and
    /// carry as coordinates).
    pub fn overview(&self, k: u32) -> DatasetDef {
        DatasetDef { grid: self.grid.decimated(k as usize), aux: Vec::new(), ..self.clone() }
    }
}

/// What a tiled variable is to its dataset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarKind {
    /// A data variable: a layer, a band.
    #[default]
    Data,
    /// An auxiliary coordinate or cell measure on the grid (2-D `lat(y, x)`
    /// of a projected grid), stored as tiles and served with the data.
    Coordinate,
}

impl VarKind {
    pub fn name(self) -> &'static str {
        match self {
            VarKind::Data => "data",
            VarKind::Coordinate => "coordinate",
        }
    }
    pub fn parse(s: &str) -> Option<VarKind> {
        match s {
            "data" => Some(VarKind::Data),
            "coordinate" => Some(VarKind::Coordinate),
            _ => None,
        }
    }
}

/// A variable (band) of a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariableDef {
    pub name: String,
    pub dtype: DataType,
    /// False for time-invariant variables (a land mask, a DEM).
    pub has_time: bool,
    /// True when the variable spans the dataset's vertical axis.
    pub has_level: bool,
    /// Every attribute of the variable, in source order: its encoding
    /// (`scale_factor`, `add_offset`, `_FillValue`...) is the dataset's.
    pub attrs: Vec<Attribute>,
    #[serde(default)]
    pub kind: VarKind,
}

impl VariableDef {
    /// The fill value: `_FillValue` if present, else the netCDF default for
    /// the type. A missing tile reads as this value.
    pub fn fill_value(&self) -> f64 {
        self.attrs.num_attr("_FillValue").unwrap_or_else(|| self.dtype.default_fill())
    }

    /// The dimensions of the served array, outermost first.
    pub fn dims<'a>(&self, def: &'a DatasetDef) -> Vec<&'a str> {
        let mut d = Vec::new();
        if self.has_time {
            d.push(def.time.name.as_str());
        }
        if self.has_level {
            if let Some(l) = &def.grid.level {
                d.push(l.name.as_str());
            }
        }
        d.push(def.grid.y.name.as_str());
        d.push(def.grid.x.name.as_str());
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        for ok in ["sst", "landsat7_nbar", "a-b", "0abc"] {
            assert!(DatasetName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", "../etc", "a/b", "a.b", "_x", "-x", "a b", "é", &"x".repeat(101)] {
            assert!(DatasetName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn safe_names() {
        assert!(is_safe_name("sst") && is_safe_name("_x1") && is_safe_name("Band_2"));
        assert!(!is_safe_name("1x") && !is_safe_name("sea ice") && !is_safe_name("a.b") && !is_safe_name(""));
    }

    #[test]
    fn tile_formats() {
        for f in [TileFormat::Nc4Deflate, TileFormat::Nc4, TileFormat::Nc3Offset64] {
            assert_eq!(TileFormat::parse(f.name()).unwrap(), f);
        }
        assert!(TileFormat::parse("zarr").is_err());
    }
}

//! The archive's vocabulary: datasets, variables, grids, tiles, attributes and
//! CF time. Pure: no I/O, no async, no driver types (see `lib.rs`).

mod attr;
mod dataset;
mod dtype;
mod encoding;
mod grid;
mod time;

pub(crate) use attr::float_vec;
pub use attr::{AttrValue, Attribute, Attributes, is_library_managed, prune_references};
pub use dataset::{
    SYNTHETIC_TIME,
    AuxDim, AuxVar, DatasetDef, DatasetName, NameError, TileFormat, TimeAxis, TimeKeys, VarKind, VariableDef,
    is_safe_name,
};
pub use dtype::{DataType, IntoTyped, TypedArray};
pub use encoding::{Encoding, EncodingError, MissingTest, Quantisation, Recode, plan as encoding_plan, unpacked};
pub use grid::{Axis, AxisError, Crs, Grid, GridMapping, Hyperslab, TileIndex, TileShape, Window};
pub use time::{Calendar, CfTime, CivilTime, TimeError, Timestamp, format_slice_dir, parse_slice_dir, parse_user_time};

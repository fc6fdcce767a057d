//! Pictures of the archive's grids for WMS 1.3.0: requests, capabilities
//! and exceptions ([`wms`]), colour maps ([`colour`]), PNG maps and legends
//! ([`image`]), map projections ([`proj`], on the pure-Rust `proj4rs`) and
//! the pixel-to-cell sampling that ties a map to a grid ([`sample`]).
//!
//! Pure: no HTTP, database, NetCDF or async types. A handler parses the
//! query with [`wms::parse`], finds the grid cells of the map's pixels with
//! [`sample::pixel_cells`], reads those cells, then colours
//! ([`image::render_indexed`]) and encodes ([`image::encode_png_indexed`])
//! them.

mod approx;
pub mod colour;
mod font;
pub mod image;
pub mod proj;
pub mod sample;
mod tables;
pub mod wms;

/// What can go wrong while drawing a picture or setting up a projection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PictureError {
    /// The pixel buffer does not hold `width * height` RGBA pixels.
    #[error("{len} bytes are not a {width}x{height} RGBA image")]
    ImageSize { width: u32, height: u32, len: usize },
    /// An image side beyond [`wms::MAX_SIZE`].
    #[error("a {width}x{height} image is larger than {max}x{max}", max = wms::MAX_SIZE)]
    TooLarge { width: u32, height: u32 },
    /// The PNG encoder refused the image.
    #[error("PNG encoding failed: {0}")]
    Png(String),
    /// A CRS code that is malformed or that the EPSG table lacks.
    #[error("unknown CRS {0:?}")]
    UnknownCrs(String),
    /// A CF `grid_mapping_name` this module cannot express.
    #[error("grid mapping {0} is not supported")]
    UnsupportedMapping(String),
    /// A CF grid mapping whose attributes are missing or out of range.
    #[error("grid mapping {mapping}: {message}")]
    BadMapping { mapping: String, message: String },
    /// proj4rs refused a projection definition.
    #[error("projection {definition:?}: {message}")]
    Projection { definition: String, message: String },
}

//! tessera: a tiled raster archive server.
//!
//! Large gridded datasets are kept as small NetCDF tiles in a plain
//! filesystem pool and indexed in a relational catalogue (SQLite or
//! PostgreSQL).
//!
//! # Crate map
//!
//! | module | role | may use |
//! |---|---|---|
//! | [`model`] | datasets, variables, grids, tiles, attributes, CF time | pure |
//! | [`catalogue`] | the catalogue port and its SQLite, PostgreSQL and in-memory adapters | sqlx |
//! | [`store`] | the tile pool: layout, atomic writes, NetCDF tile files | netcdf |
//! | [`ingest`] | source NetCDF files to tiles to catalogue | all of the above |
//! | [`fsck`] | catalogue against pool | catalogue, store |
//! | [`gc`] | removal of tile files retired by `ingest --replace` | catalogue, store |
//! | [`blocking`] | the one door for blocking work (libnetcdf, hashing, file walks): bounded, measured | tokio |
//! | [`demo`] | a synthetic demo source | netcdf |
//! | [`config`], [`cli`], [`telemetry`] | wiring for the binary | everything |
//!
//! The dependency rule: `model` names no `axum`, `sqlx`, `netcdf` or `tokio`
//! item (a test in `tests/` checks it). Errors are typed per layer with
//! `thiserror`; `anyhow` appears only in the CLI.

pub mod archive;
pub mod blocking;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod dap;
pub mod demo;
pub mod export;
pub mod fsck;
pub mod gc;
pub mod http;
pub mod ingest;
pub mod model;
pub mod mosaic;
pub mod store;
pub mod telemetry;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this build was made from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("TESSERA_GIT_COMMIT");

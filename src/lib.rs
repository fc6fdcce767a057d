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
//! | [`model`] | datasets, variables, grids, tiles, attributes, encodings, CF time | pure |
//! | [`dap`] | DAP2: constraint parser, view and resolution, DDS, DAS, XDR, ASCII, errors | model; pure |
//! | [`mosaic`] | requested ranges -> tile windows -> output bands | model; pure |
//! | [`plan`] | a data array's response as bands of tile reads | model, mosaic; pure |
//! | [`markup`] | HTML/XML escaping | pure |
//! | [`picture`] | WMS 1.3.0 requests, capabilities and exceptions; colour maps, PNG and legends; map projections (proj4rs) and pixel-to-cell sampling | model; pure |
//! | [`catalogue`] | the catalogue port and its SQLite, PostgreSQL and in-memory adapters; writer locks | model, sqlx |
//! | [`store`] | the tile store port keyed by (dataset, variable, time, tile), its pool adapter (NetCDF files, verified, read directly through recorded chunk layouts or through libnetcdf) and in-memory twin; pool layout, new-file writes | model, netcdf, libdeflater, rayon |
//! | [`blocking`] | the one door for blocking work (libnetcdf, hashing, file walks): bounded, measured | tokio |
//! | [`ingest`] | source NetCDF files to tiles and overview levels to catalogue; `overviews build` for slices already in | model, catalogue, store, blocking |
//! | [`archive`] | the request path: resolve, plan (strided reads from the overview level that answers them), read tiles into bands (a band's tiles at once, on rayon) | model, dap, mosaic, catalogue, store, blocking, rayon |
//! | [`encode`] | one `Encoder` per format (.dods, .ascii, .nc; .nc4 written through libnetcdf), NcML | model, dap, archive, markup |
//! | [`http`] | axum routes, the error table, operations endpoints, HTML pages, WMS and PNG pictures, the STAC API | archive, encode, dap, picture, markup |
//! | [`fsck`] | catalogue against pool | catalogue, store, blocking |
//! | [`gc`] | removal of tile files retired by `ingest --replace` | catalogue, store, blocking |
//! | [`reindex`] | tile layouts recorded for archives made before they were | catalogue, store, blocking |
//! | [`demo`] | a synthetic demo source | netcdf |
//! | [`config`], [`cli`], [`telemetry`] | wiring for the binary | everything |
//!
//! The dependency rule: inner layers know nothing of outer ones (the order
//! of the table, top to bottom); `model`, `dap`, `mosaic`, `picture` and `markup` name
//! no `axum`, `sqlx`, `netcdf` or `tokio` item (a test in `tests/` checks
//! it). Errors are typed per layer with `thiserror`; `anyhow` appears only
//! in the CLI.

pub mod archive;
pub mod blocking;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod dap;
pub mod demo;
pub mod encode;
pub mod fsck;
pub mod gc;
pub mod http;
pub mod markup;
pub mod plan;
pub mod ingest;
pub mod reindex;
pub mod model;
pub mod mosaic;
pub mod picture;
pub mod store;
pub mod synth;
pub mod telemetry;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this build was made from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("TESSERA_GIT_COMMIT");

//! The integration suite: one binary, shared harness in `common`.

mod archives;
mod catalogue;
mod classic_interop;
mod classic_layout;
mod cli;
mod common;
mod dap;
mod download;
mod faults;
mod hostile;
mod ingest;
mod layers;
mod ops;
mod overviews;
mod scale;
mod stac;
mod store;
mod upgrade;
mod web;
mod wms;

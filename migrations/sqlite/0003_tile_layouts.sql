-- Where each tile's values lie in its file (chunk offsets, sizes, filter
-- masks and filters, or a NetCDF-3 variable's begin offset), in the compact
-- binary form of tessera's store/layout.rs. Recorded when the tile is
-- written; NULL for tiles of older archives until `tessera reindex`, and
-- for tiles the direct reader cannot read: those are read through
-- libnetcdf, as before.
ALTER TABLE tiles ADD COLUMN layout BLOB;

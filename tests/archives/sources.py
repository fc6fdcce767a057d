#!/usr/bin/env python3
"""Source archives shaped like the real products tessera has to serve.

    python3 tests/archives/sources.py OUTDIR > manifest.json

writes small NetCDF files into OUTDIR (about 3 MB in all, a second or two),
prints a JSON manifest of the datasets they make up (also written to
OUTDIR/manifest.json) and is deterministic: fixed seeds, fixed history and
creation dates, no wall clock.

Each file imitates one real product: its variable names, types, dimension
order, attribute names and values, time encoding and file format. The data
are synthetic (every file says so in a global `comment`). The products:

  era5      ERA5 on pressure levels from the legacy Copernicus CDS (MARS
            GRIB converted by ecCodes grib_to_netcdf): short t/z packed with
            a per-file scale_factor/add_offset, int time, float lat/lon.
  cmip      CMIP6 Amon tas written by CMOR 3 (noleap calendar, bounds,
            scalar height, external_variables).
  day360    CMIP5 HadGEM2-ES Amon pr (360_day calendar, CMOR 2), here with
            "months since" time units.
  polar     NSIDC-0051 version 2 daily sea-ice concentration on the 25 km
            polar stereographic north grid, moved to EPSG:3413 (WGS 84), with
            2-D lat/lon as in NSIDC's G02202 CDR files.
  gaussian  an ECMWF field on the regular N48 Gaussian grid as written by CDO
            (`cdo -f nc -t ecmwf copy`).
  dem30s    a 30-arc-second DEM window (SRTM30/GTOPO30 row order, GEBCO's
            netCDF attribute set).

The manifest (see README.md) lists per dataset the files in ingest order,
extra ingest arguments, files that must be refused, a replacement file for
the replace test, coordinate-value selections with their expected indices,
and the tolerance per data variable for compare.py.
"""

import datetime as _dt
import json
import os
import sys

import numpy as np
import netCDF4

SYNTHETIC = "SYNTHETIC test data written by tessera tests/archives/sources.py; imitates {}. Not real {} output."


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _rng(name):
    """A generator seeded from a fixed name (stable across runs and Pythons)."""
    return np.random.default_rng(sum((i + 1) * b for i, b in enumerate(name.encode())))


def _smooth_noise(rng, shape, scale):
    """Cheap smooth noise: white noise box-blurred along the last two axes."""
    a = rng.standard_normal(shape)
    for ax in (-1, -2):
        k = max(1, int(scale))
        c = np.cumsum(np.pad(a, [(0, 0)] * (a.ndim + ax) + [(k, k)] + [(0, 0)] * (-ax - 1), mode="wrap"), axis=ax)
        n = a.shape[ax]
        hi = np.take(c, np.arange(2 * k, 2 * k + n), axis=ax)
        lo = np.take(c, np.arange(0, n), axis=ax)
        a = (hi - lo) / (2 * k)
    return a / (a.std() + 1e-12)


def _put_attrs(var, attrs):
    for k, v in attrs.items():
        var.setncattr(k, v)


def _hours_since_1900(day, hour):
    return (_dt.datetime(day.year, day.month, day.day, hour) - _dt.datetime(1900, 1, 1)).days * 24 + hour


# --------------------------------------------------------------------------
# 1. ERA5 pressure levels, legacy CDS netCDF (grib_to_netcdf)
# --------------------------------------------------------------------------
#
# What a legacy CDS "reanalysis-era5-pressure-levels" netCDF looks like
# (`ncdump -h`):
#
#   dimensions: longitude = 1440 ; latitude = 721 ; level = 37 ; time = 24 ;
#   float longitude(longitude) ; units "degrees_east", long_name "longitude"
#   float latitude(latitude) ;   units "degrees_north", long_name "latitude"
#   int level(level) ;           units "millibars", long_name "pressure_level"
#   int time(time) ;             units "hours since 1900-01-01 00:00:00.0",
#                                long_name "time", calendar "gregorian"
#   short z(time, level, latitude, longitude) ;
#       scale_factor, add_offset (double), _FillValue = missing_value = -32767s,
#       units "m**2 s**-2", long_name "Geopotential", standard_name "geopotential"
#   short t(...) ; units "K", long_name "Temperature", standard_name "air_temperature"
#   :Conventions = "CF-1.6" ; :history = "<date> GMT by grib_to_netcdf-2.x: ..."
#
# Packing: grib_to_netcdf's compute_scale() (ecCodes tools/grib_to_netcdf.cc)
# works per variable over every field of the file: with the short range
# [-32766, 32767] (-32767 = NC_FILL_SHORT is kept for missing)
#     scale_factor = (max - min) / 65533
#     add_offset   = ((max + min) - scale_factor) / 2
# so min packs to -32766 and max to 32767. (The approximation
# scale = (max-min)/65534, offset = (max+min)/2 would pack the minimum onto
# -32767, i.e. onto _FillValue; the real tool avoids that.)

ERA5_LEVELS = np.array([500, 700, 850, 1000], dtype="i4")
ERA5_NLAT, ERA5_NLON = 41, 81
ERA5_LAT0, ERA5_LON0 = 60.0, 5.0   # window 60N..50N, 5E..25E at 0.25 deg
ERA5_HOURS = (0, 6, 12, 18)
SHORT_MIN, SHORT_MAX, SHORT_FILL = -32766, 32767, -32767


def cds_packing(values):
    """(scale_factor, add_offset) as grib_to_netcdf computes them; NaN = missing."""
    v = values[np.isfinite(values)]
    vmax, vmin = float(v.max()), float(v.min())
    sf = (vmax - vmin) / float(SHORT_MAX - SHORT_MIN)
    ao = ((vmax + vmin) - sf * (SHORT_MIN + SHORT_MAX)) / 2.0
    if vmin == vmax:
        sf = 1.0
    return sf, ao


def cds_pack(values, sf, ao, fill=SHORT_FILL, avoid=None):
    """rint((v - ao) / sf) as int16, missing (NaN) as `fill`.

    `avoid`: a packed value that valid cells must not take (a third-party
    fill such as -9999 lying inside the packed range); such cells are
    moved one step up, as a careful producer would."""
    missing = ~np.isfinite(values)
    p = np.rint((np.where(missing, ao, values) - ao) / sf)
    assert p.min() >= SHORT_MIN and p.max() <= SHORT_MAX, "packing out of range"
    p = p.astype("i2")
    if avoid is not None:
        p[(p == avoid) & ~missing] = avoid + 1
    p[missing] = fill
    return p


def era5_truth(day_index, nt=4):
    """Float64 'true' t (K) and z (m2 s-2) for one day: (time, level, lat, lon)."""
    rng = _rng(f"era5-{day_index}")
    lat = ERA5_LAT0 - 0.25 * np.arange(ERA5_NLAT)
    lon = ERA5_LON0 + 0.25 * np.arange(ERA5_NLON)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    t0 = {500: 251.0, 700: 265.5, 850: 273.0, 1000: 280.5}
    z0 = {500: 54300.0, 700: 29400.0, 850: 14100.0, 1000: 950.0}
    # each day a little warmer or colder, so that every file has its own packing
    day_shift = [0.0, -3.1, 2.4, 4.7, -1.2][day_index % 5]
    t = np.empty((nt, len(ERA5_LEVELS), ERA5_NLAT, ERA5_NLON))
    z = np.empty_like(t)
    for it in range(nt):
        phase = 0.35 * (day_index * nt + it)
        wave = np.sin(np.radians(lo) * 18 + phase) * np.cos(np.radians(la - 55) * 12)
        for il, lev in enumerate(ERA5_LEVELS):
            lev = int(lev)
            noise = _smooth_noise(rng, (ERA5_NLAT, ERA5_NLON), 3)
            t[it, il] = (t0[lev] + day_shift - 0.55 * (la - 55.0) + 2.5 * wave
                         + 0.8 * noise + (1.5 if lev == 1000 else 0.5) * np.sin(np.pi * it / 2))
            z[it, il] = (z0[lev] + 9.80665 * (day_shift * 8 - 9.0 * (la - 55.0) * (1 + lev / 1000)
                                               + 60 * wave + 12 * noise))
    return t, z


def write_era5(path, day, t, z, fill=SHORT_FILL, t_units="K", history_stamp="2023-02-06 09:14:52 GMT",
               avoid_fill_in_range=False):
    nt = t.shape[0]
    lat = (ERA5_LAT0 - 0.25 * np.arange(ERA5_NLAT)).astype("f4")   # float(distinctLatitudes)
    lon = (ERA5_LON0 + 0.25 * np.arange(ERA5_NLON)).astype("f4")
    hours = ERA5_HOURS if nt == 4 else ERA5_HOURS[::2]
    nc = netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET")
    nc.createDimension("longitude", ERA5_NLON)
    nc.createDimension("latitude", ERA5_NLAT)
    nc.createDimension("level", len(ERA5_LEVELS))
    nc.createDimension("time", nt)
    v = nc.createVariable("longitude", "f4", ("longitude",))
    _put_attrs(v, {"units": "degrees_east", "long_name": "longitude"})
    v[:] = lon
    v = nc.createVariable("latitude", "f4", ("latitude",))
    _put_attrs(v, {"units": "degrees_north", "long_name": "latitude"})
    v[:] = lat
    v = nc.createVariable("level", "i4", ("level",))
    _put_attrs(v, {"units": "millibars", "long_name": "pressure_level"})
    v[:] = ERA5_LEVELS
    v = nc.createVariable("time", "i4", ("time",))
    _put_attrs(v, {"units": "hours since 1900-01-01 00:00:00.0", "long_name": "time", "calendar": "gregorian"})
    v[:] = np.array([_hours_since_1900(day, h) for h in hours], dtype="i4")
    packing = {}
    for name, data, attrs in (
        ("z", z, {"units": "m**2 s**-2", "long_name": "Geopotential", "standard_name": "geopotential"}),
        ("t", t, {"units": t_units, "long_name": "Temperature", "standard_name": "air_temperature"}),
    ):
        sf, ao = cds_packing(data)
        packing[name] = (sf, ao)
        var = nc.createVariable(name, "i2", ("time", "level", "latitude", "longitude"), fill_value=np.int16(fill))
        var.set_auto_maskandscale(False)
        var.setncattr("scale_factor", np.float64(sf))
        var.setncattr("add_offset", np.float64(ao))
        var.setncattr("missing_value", np.int16(fill))
        _put_attrs(var, attrs)
        var[:] = cds_pack(data, sf, ao, fill=fill, avoid=fill if avoid_fill_in_range else None)
    nc.setncattr("Conventions", "CF-1.6")
    nc.setncattr("history", f"{history_stamp} by grib_to_netcdf-2.25.1: /opt/ecmwf/mars-client/bin/grib_to_netcdf.bin "
                 f"-S param -o /cache/data0/adaptor.mars.internal-{1675674892 + day.toordinal() % 977}.nc "
                 f"/cache/tmp/adaptor.mars.internal-tmp.grib")
    nc.setncattr("comment", SYNTHETIC.format("ERA5 pressure levels from the legacy CDS (grib_to_netcdf)", "ERA5"))
    nc.close()
    return packing


def make_era5(out):
    days = [_dt.date(2023, 1, 15) + _dt.timedelta(days=i) for i in range(5)]
    files = []
    packs = {}
    truths = {}
    # day 1..3: ordinary CDS files, each with its own packing
    for i in range(3):
        t, z = era5_truth(i)
        if i == 0:
            # The first file sets the dataset's packing. Two extreme cells
            # (a strong inversion and a cold core aloft) make its range wide
            # enough for the next files, whose own packings differ: they
            # must be re-encoded into the first file's packing.
            t[2, 3, 20, 40] = np.nanmax(t) + 8.0
            t[1, 0, 10, 10] = np.nanmin(t) - 7.0
            z[2, 0, 20, 40] = np.nanmax(z) + 2500.0
            z[1, 3, 10, 10] = np.nanmin(z) - 2500.0
        if i == 1:
            # some missing cells in t (a patch at 1000 hPa as if below ground,
            # and a few scattered ones at 850 hPa)
            t[:, 3, 30:36, 10:15] = np.nan
            t[1:3, 2, [5, 17, 29], [70, 41, 3]] = np.nan
        truths[i] = (t, z)
        name = f"era5_pl_{days[i]:%Y%m%d}.nc"
        packs[name] = write_era5(os.path.join(out, name), days[i], t, z)
        files.append(name)
    # day 4: the same product re-written by a third-party tool with
    # _FillValue = missing_value = -9999 and a few missing cells
    t, z = era5_truth(3)
    t[:, 0, 0:2, 60:64] = np.nan
    z[2, 1, 20, 20:23] = np.nan
    name9999 = f"era5_pl_{days[3]:%Y%m%d}_fill9999.nc"
    packs[name9999] = write_era5(os.path.join(out, name9999), days[3], t, z, fill=-9999, avoid_fill_in_range=True)
    files.append(name9999)
    # day 5: t in degC: must be refused (the dataset's t is in K)
    t, z = era5_truth(4)
    write_era5(os.path.join(out, "era5_degC.nc"), days[4], t - 273.15, z, t_units="degC")
    # day 6: a heat wave beyond the first file's packed range: refused by a
    # packed dataset (the values do not fit its packing; the remedy is
    # --unpack), taken exactly by an unpacked one
    heat_day = _dt.date(2023, 1, 20)
    t, z = era5_truth(5)
    t[:, 3] += 25.0
    heat = f"era5_pl_{heat_day:%Y%m%d}_heatwave.nc"
    packs[heat] = write_era5(os.path.join(out, heat), heat_day, t, z)
    # the corrected re-issue of day 2: t at 06 UTC warmer over a box at
    # 1000 hPa; this raises t's maximum, so the file gets a new t packing
    # (z is unchanged and keeps its packing bit for bit)
    t, z = (a.copy() for a in truths[1])
    t[1, 3, 5:15, 50:70] += 6.0
    corr = f"era5_pl_{days[1]:%Y%m%d}_corrected.nc"
    packs[corr] = write_era5(os.path.join(out, corr), days[1], t, z, history_stamp="2023-03-01 16:40:07 GMT")
    old_t, new_t = packs[files[1]]["t"][0], packs[corr]["t"][0]
    assert new_t != old_t and packs[files[1]]["z"] == packs[corr]["z"]

    # tolerances. Packed path: one packing step of a single packing spanning
    # every file's range (what re-packing per dataset costs at most, twice
    # over). Unpacked path: float32 rounding of the unpacked values.
    def union_step(var):
        lo, hi = [], []
        for f in files + [corr]:
            sf, ao = packs[f][var]
            lo.append(SHORT_MIN * sf + ao)
            hi.append(SHORT_MAX * sf + ao)
        return (max(hi) - min(lo)) / float(SHORT_MAX - SHORT_MIN)

    def round_up(x):
        return float(np.format_float_positional(x * 1.001, precision=3, unique=False, fractional=False, trim="-"))

    tol_packed = {"t": round_up(union_step("t")), "z": round_up(union_step("z"))}
    tol_unpacked = {"t": 1e-4, "z": 0.02}
    day2_times = [f"{days[1]:%Y-%m-%d}T{h:02d}:00:00" for h in ERA5_HOURS]
    replace = {
        "file": corr,
        "corrects": files[1],
        "ingest_args": ["--replace"],
        "times": day2_times,
        "changed": [{"var": "t", "time": day2_times[1], "index_in_file": 1}],
        # untouched t slices of the corrected file are re-quantised with its
        # new packing: each may differ from the original by half a step of each
        # (plus, in the dataset, one more rounding: half a step of the
        # dataset's packing, or float32 rounding when unpacked)
        "untouched_tolerance": {"t": round_up((old_t + new_t) / 2 + packs[files[0]]["t"][0] / 2 + 1e-4),
                                "z": round_up(packs[files[0]]["z"][0] / 2 + 0.02)},
        "packing": {"original_t": [old_t, packs[files[1]]["t"][1]], "corrected_t": [new_t, packs[corr]["t"][1]]},
    }
    refused = [{"file": "era5_degC.nc", "reason_contains": "degC"}]
    refused_packed = refused + [{"file": heat, "reason_contains": "--unpack"}]
    common_notes = (
        "Legacy CDS ERA5 pressure levels (grib_to_netcdf): short t/z, per-file scale_factor/add_offset "
        "(max-min)/65533 and ((max+min)-scale)/2, _FillValue=missing_value=-32767s, int time hours since "
        "1900-01-01 00:00:00.0 gregorian, float latitude 60..50 / longitude 5..25 at 0.25 deg, int level "
        "500..1000 millibars. Four times per file. era5_pl_20230116.nc has missing t cells; "
        "era5_pl_20230118_fill9999.nc uses _FillValue=missing_value=-9999s (valid cells never pack to -9999) "
        "and has missing t and z cells. era5_degC.nc (t in degC) must be refused. The first file's "
        "packing spans the next files' values (they are re-encoded into it); the heat-wave file's do not "
        "fit it (refused without --unpack, taken with it).")
    packing_note = {f: {v: list(p) for v, p in packs[f].items()} for f in files + [corr, heat]}
    return [
        {
            "name": "era5",
            "product": "ERA5 pressure levels, legacy Copernicus CDS netCDF (ecCodes grib_to_netcdf)",
            "files": files,
            "ingest_args": [],
            "refused": refused_packed,
            "replace": replace,
            "selections": [
                {"constraint": "t[(2023-01-16T06:00:00)][0:1:3][0:1:40][0:1:80]",
                 "ascii": "time[(2023-01-16T06:00:00)]", "vars": ["t"], "expect": {"time": [5]}},
            ],
            "tolerance": tol_packed,
            "packing": packing_note,
            "notes": common_notes + " Served without --unpack: tolerance = one step of a single packing spanning "
                     "all files (a server re-packing per dataset loses at most half of it).",
        },
        {
            "name": "era5_unpacked",
            "product": "ERA5 pressure levels, legacy Copernicus CDS netCDF (ecCodes grib_to_netcdf)",
            "files": list(files) + [heat],
            "ingest_args": ["--unpack"],
            "refused": refused,
            "replace": dict(replace),
            "selections": [],
            "tolerance": tol_unpacked,
            "packing": packing_note,
            "notes": common_notes + " Ingested with --unpack: tolerance = float32 rounding of the unpacked values.",
        },
    ]


# --------------------------------------------------------------------------
# 2. CMIP6 Amon tas (CMOR 3)
# --------------------------------------------------------------------------
#
# `ncdump -h tas_Amon_<model>_historical_r1i1p1f1_gn_185001-201412.nc`:
#   dimensions: time = UNLIMITED ; lat = .. ; lon = .. ; bnds = 2 ;
#   double time(time) ; bounds "time_bnds", units "days since 1850-01-01",
#       calendar "noleap", axis "T", long_name "time", standard_name "time"
#   double time_bnds(time, bnds) ;
#   double lat(lat) ; bounds "lat_bnds", units "degrees_north", axis "Y",
#       long_name "Latitude", standard_name "latitude"
#   double lat_bnds(lat, bnds) ;  (lon, lon_bnds alike)
#   double height ; units "m", axis "Z", positive "up", long_name "height",
#       standard_name "height"
#   float tas(time, lat, lon) ; standard_name "air_temperature",
#       long_name "Near-Surface Air Temperature", comment, units "K",
#       cell_methods "area: time: mean", cell_measures "area: areacella",
#       history, _FillValue = missing_value = 1.e+20f, coordinates "height"
#   global: Conventions "CF-1.7 CMIP-6.2", activity_id, branch_*, ...,
#       external_variables "areacella", frequency "mon", table_id "Amon",
#       variable_id "tas", variant_label "r1i1p1f1", tracking_id "hdl:21.14100/..."
# NetCDF-4 classic model, deflate 1 with shuffle, time unlimited.

NOLEAP_MONTH_STARTS = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365], dtype="f8")


def _cmip6_globals(year, tracking, created):
    return {
        "Conventions": "CF-1.7 CMIP-6.2",
        "activity_id": "CMIP",
        "branch_method": "standard",
        "branch_time_in_child": 0.0,
        "branch_time_in_parent": 21915.0,
        "creation_date": created,
        "data_specs_version": "01.00.30",
        "experiment": "all-forcing simulation of the recent past",
        "experiment_id": "historical",
        "external_variables": "areacella",
        "forcing_index": np.int32(1),
        "frequency": "mon",
        "further_info_url": "https://furtherinfo.es-doc.org/CMIP6.TESSERA.TESSERA-SYN1.historical.none.r1i1p1f1",
        "grid": "synthetic regular 2x2 degree grid (window)",
        "grid_label": "gn",
        "history": f"{created} ;rewrote data to be consistent with CMIP for variable tas found in table Amon.",
        "initialization_index": np.int32(1),
        "institution": "tessera test suite (synthetic data)",
        "institution_id": "TESSERA",
        "mip_era": "CMIP6",
        "nominal_resolution": "250 km",
        "parent_activity_id": "CMIP",
        "parent_experiment_id": "piControl",
        "parent_mip_era": "CMIP6",
        "parent_source_id": "TESSERA-SYN1",
        "parent_time_units": "days since 1850-01-01",
        "parent_variant_label": "r1i1p1f1",
        "physics_index": np.int32(1),
        "product": "model-output",
        "realization_index": np.int32(1),
        "realm": "atmos",
        "source": "TESSERA-SYN1 (2024): synthetic fields for archive tests",
        "source_id": "TESSERA-SYN1",
        "source_type": "AOGCM",
        "sub_experiment": "none",
        "sub_experiment_id": "none",
        "table_id": "Amon",
        "table_info": "Creation Date:(09 May 2019) MD5:cde930676e68ac6780d5e4c62d3898f6",
        "title": "TESSERA-SYN1 output prepared for CMIP6",
        "variable_id": "tas",
        "variant_label": "r1i1p1f1",
        "license": "CMIP6 model data produced by the tessera test suite is licensed under a Creative Commons "
                   "Attribution 4.0 International License (https://creativecommons.org/licenses). "
                   "SYNTHETIC DATA: not for use.",
        "cmor_version": "3.5.0",
        "tracking_id": tracking,
        "comment": SYNTHETIC.format("a CMIP6 Amon tas file written by CMOR 3", "CMIP6"),
    }


CMIP_LAT = 21.0 + 2.0 * np.arange(25)   # 21..69 N
CMIP_LON = 1.0 + 2.0 * np.arange(30)    # 1..59 E


def cmip_truth(year_index):
    rng = _rng(f"cmip-{year_index}")
    la, lo = np.meshgrid(CMIP_LAT, CMIP_LON, indexing="ij")
    tas = np.empty((12, len(CMIP_LAT), len(CMIP_LON)), dtype="f8")
    for m in range(12):
        season = -np.cos(2 * np.pi * (m + 0.5) / 12)
        tas[m] = (300.0 - 0.75 * (la - 21.0) + (6 + 0.25 * (la - 21)) * season * 1.0
                  + 2.0 * np.sin(np.radians(lo) * 6) + 1.2 * _smooth_noise(rng, la.shape, 2) + 0.3 * year_index)
    # ocean-ish cells masked: a sea in the south-west corner and a lake
    sea = ((la < 37) & (lo < 19)) | (((la - 45) ** 2 + (lo - 35) ** 2) < 10)
    tas[:, sea] = np.nan
    return tas.astype("f4")


def write_cmip(path, year_index, tas, tracking, created):
    nc = netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC")
    nc.createDimension("time", None)
    nc.createDimension("lat", len(CMIP_LAT))
    nc.createDimension("lon", len(CMIP_LON))
    nc.createDimension("bnds", 2)
    z = dict(zlib=True, complevel=1, shuffle=True)
    starts = NOLEAP_MONTH_STARTS + 365.0 * year_index
    v = nc.createVariable("time", "f8", ("time",))
    _put_attrs(v, {"bounds": "time_bnds", "units": "days since 1850-01-01", "calendar": "noleap", "axis": "T",
                   "long_name": "time", "standard_name": "time"})
    v[:] = (starts[:-1] + starts[1:]) / 2.0
    v = nc.createVariable("time_bnds", "f8", ("time", "bnds"), **z)
    v[:] = np.stack([starts[:-1], starts[1:]], axis=1)
    v = nc.createVariable("lat", "f8", ("lat",), **z)
    _put_attrs(v, {"bounds": "lat_bnds", "units": "degrees_north", "axis": "Y", "long_name": "Latitude",
                   "standard_name": "latitude"})
    v[:] = CMIP_LAT
    v = nc.createVariable("lat_bnds", "f8", ("lat", "bnds"), **z)
    v[:] = np.stack([CMIP_LAT - 1.0, CMIP_LAT + 1.0], axis=1)
    v = nc.createVariable("lon", "f8", ("lon",), **z)
    _put_attrs(v, {"bounds": "lon_bnds", "units": "degrees_east", "axis": "X", "long_name": "Longitude",
                   "standard_name": "longitude"})
    v[:] = CMIP_LON
    v = nc.createVariable("lon_bnds", "f8", ("lon", "bnds"), **z)
    v[:] = np.stack([CMIP_LON - 1.0, CMIP_LON + 1.0], axis=1)
    v = nc.createVariable("height", "f8", ())
    _put_attrs(v, {"units": "m", "axis": "Z", "positive": "up", "long_name": "height", "standard_name": "height"})
    v.assignValue(2.0)
    v = nc.createVariable("tas", "f4", ("time", "lat", "lon"), fill_value=np.float32(1.0e20), **z)
    _put_attrs(v, {
        "standard_name": "air_temperature",
        "long_name": "Near-Surface Air Temperature",
        "comment": "near-surface (usually, 2 meter) air temperature",
        "units": "K",
        "original_name": "TREFHT",
        "cell_methods": "area: time: mean",
        "cell_measures": "area: areacella",
        "history": f"{created} altered by CMOR: Treated scalar dimension: 'height'.",
        "missing_value": np.float32(1.0e20),
        "coordinates": "height",
    })
    v[:] = np.ma.masked_invalid(tas)
    _put_attrs(nc, _cmip6_globals(1850 + year_index, tracking, created))
    nc.close()


def make_cmip(out):
    files = []
    truths = []
    for y in range(2):
        tas = cmip_truth(y)
        truths.append(tas)
        name = f"tas_Amon_TESSERA-SYN1_historical_r1i1p1f1_gn_{1850 + y}01-{1850 + y}12.nc"
        write_cmip(os.path.join(out, name), y, tas, f"hdl:21.14100/0c4f2d6e-7a1b-4f57-9d6b-5a1e0c9b{y:04d}",
                   "2019-06-18T09:12:44Z")
        files.append(name)
    # corrected re-issue (a new dataset version, as after an ES-DOC erratum)
    # of 1851: July and August warmer over the eastern part of the window
    tas = truths[1].copy()
    tas[6:8, :, 20:] += np.float32(0.8)
    corr = "tas_Amon_TESSERA-SYN1_historical_r1i1p1f1_gn_185101-185112_corrected.nc"
    write_cmip(os.path.join(out, corr), 1, tas, "hdl:21.14100/5b8d33a0-91c2-4e0b-8c6e-0d3e1f7a0001",
               "2020-02-27T15:03:21Z")
    months_1851 = [f"1851-{m + 1:02d}" for m in range(12)]
    return {
        "name": "cmip",
        "product": "CMIP6 Amon tas, CMOR 3 netCDF-4 classic",
        "files": files,
        "ingest_args": [],
        "refused": [],
        "replace": {
            "file": corr,
            "corrects": files[1],
            "ingest_args": ["--replace"],
            "times": [f"1851-{m + 1:02d} (mid-month, noleap days {v})" for m, v in
                      enumerate((NOLEAP_MONTH_STARTS[:-1] + NOLEAP_MONTH_STARTS[1:]) / 2 + 365)],
            "changed": [{"var": "tas", "time": months_1851[6], "index_in_file": 6},
                        {"var": "tas", "time": months_1851[7], "index_in_file": 7}],
            "untouched_tolerance": {"tas": 0.0},
        },
        "selections": [
            {"constraint": "tas[(1851-02-28)][0:1:24][0:1:29]", "ascii": "time[(1851-02-28)]", "vars": ["tas"],
             "expect": {"time": [13]}},
        ],
        "tolerance": {"tas": 0.0},
        "notes": "CMIP6 Amon tas as CMOR writes it: float tas with _FillValue=missing_value=1e20f (some cells "
                 "missing), cell_methods, cell_measures 'area: areacella' (areacella is in external_variables), "
                 "coordinates 'height'; double time days since 1850-01-01 noleap with time_bnds; lat/lon with "
                 "bounds; scalar height 2 m. 1850 and 1851, twelve months each.",
    }


# --------------------------------------------------------------------------
# 3. HadGEM2-ES-like Amon pr, 360_day calendar (CMIP5, CMOR 2)
# --------------------------------------------------------------------------
#
# CMIP5 HadGEM2-ES pr_Amon files: N96 grid (lat -90..90 step 1.25 incl. the
# poles, lon 0..358.125 step 1.875), double lat/lon with bounds, float pr
# "kg m-2 s-1" with _FillValue = missing_value = 1e20f, cell_methods
# "time: mean", time 360_day with time_bnds. HadGEM's own files use
# "days since 1859-12-01"; here time is "months since 2000-01-01" (mid-month
# values 0.5, 1.5, ..., bounds on whole months), which CF/udunits allow and
# cftime accepts for 360_day only.

HAD_LAT = -90.0 + 1.25 * np.arange(88, 128)   # 20.0 .. 68.75
HAD_LON = 1.875 * np.arange(48)               # 0 .. 88.125


def write_day360(path, year_index, tracking):
    rng = _rng(f"hadgem-{year_index}")
    la, lo = np.meshgrid(HAD_LAT, HAD_LON, indexing="ij")
    nc = netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC")
    nc.createDimension("time", None)
    nc.createDimension("lat", len(HAD_LAT))
    nc.createDimension("lon", len(HAD_LON))
    nc.createDimension("bnds", 2)
    m0 = 12 * year_index
    v = nc.createVariable("time", "f8", ("time",))
    _put_attrs(v, {"bounds": "time_bnds", "units": "months since 2000-01-01", "calendar": "360_day", "axis": "T",
                   "long_name": "time", "standard_name": "time"})
    v[:] = m0 + 0.5 + np.arange(12)
    v = nc.createVariable("time_bnds", "f8", ("time", "bnds"))
    v[:] = np.stack([m0 + np.arange(12.0), m0 + np.arange(1.0, 13.0)], axis=1)
    v = nc.createVariable("lat", "f8", ("lat",))
    _put_attrs(v, {"bounds": "lat_bnds", "units": "degrees_north", "axis": "Y", "long_name": "latitude",
                   "standard_name": "latitude"})
    v[:] = HAD_LAT
    v = nc.createVariable("lat_bnds", "f8", ("lat", "bnds"))
    v[:] = np.stack([HAD_LAT - 0.625, HAD_LAT + 0.625], axis=1)
    v = nc.createVariable("lon", "f8", ("lon",))
    _put_attrs(v, {"bounds": "lon_bnds", "units": "degrees_east", "axis": "X", "long_name": "longitude",
                   "standard_name": "longitude"})
    v[:] = HAD_LON
    v = nc.createVariable("lon_bnds", "f8", ("lon", "bnds"))
    v[:] = np.stack([HAD_LON - 0.9375, HAD_LON + 0.9375], axis=1)
    v = nc.createVariable("pr", "f4", ("time", "lat", "lon"), fill_value=np.float32(1.0e20))
    _put_attrs(v, {
        "standard_name": "precipitation_flux",
        "long_name": "Precipitation",
        "comment": "at surface; includes both liquid and solid phases from all types of clouds (both large-scale and convective)",
        "units": "kg m-2 s-1",
        "original_name": "mo: (stash: m01s05i216, lbproc: 128)",
        "cell_methods": "time: mean",
        "cell_measures": "area: areacella",
        "history": "2011-04-05T10:24:18Z altered by CMOR: replaced missing value flag (-1.07374e+09) with standard missing value (1e+20).",
        "missing_value": np.float32(1.0e20),
        "associated_files": "baseURL: http://cmip-pcmdi.llnl.gov/CMIP5/dataLocation gridspecFile: "
                            "gridspec_atmos_fx_HadGEM2-ES_historical_r0i0p0.nc areacella: areacella_fx_HadGEM2-ES_historical_r0i0p0.nc",
    })
    pr = np.empty((12, len(HAD_LAT), len(HAD_LON)), dtype="f8")
    for m in range(12):
        base = 2.5e-5 + 1.5e-5 * np.cos(np.radians(la - 50) * 4) * np.cos(2 * np.pi * (m + 0.5) / 12)
        pr[m] = np.maximum(base * np.exp(0.6 * _smooth_noise(rng, la.shape, 2)), 0.0)
    # two dry months with exact zeros somewhere (a real feature of pr fields)
    pr[6:8, :6, :10] = 0.0
    v[:] = pr.astype("f4")
    _put_attrs(nc, {
        "institution": "Met Office Hadley Centre, Fitzroy Road, Exeter, Devon, EX1 3PB, UK. (http://www.metoffice.gov.uk)",
        "institute_id": "MOHC",
        "experiment_id": "historical",
        "source": "HadGEM2-ES (2009) atmosphere: HadGAM (HadGAM2, N96L38); ocean: HadGOM (HadGOM2, lat: 1.0-0.3 "
                  "lon: 1.0 L40); sea ice: HadGOM (HadGOM2); land: MOSES-2 (MOSES2, JULES2.x)",
        "model_id": "HadGEM2-ES",
        "forcing": "GHG, SA, Oz, LU, SS, Ds, BC, MD, OC, AA",
        "parent_experiment_id": "piControl",
        "parent_experiment_rip": "r1i1p1",
        "branch_time": 0.0,
        "contact": "enquiries@metoffice.gov.uk",
        "references": "Bellouin N. et al, (2007) Improved representation of aerosols for HadGEM2.",
        "initialization_method": np.int32(1),
        "physics_version": np.int32(1),
        "tracking_id": tracking,
        "mo_runid": "ajhoh",
        "product": "output",
        "experiment": "historical",
        "frequency": "mon",
        "creation_date": "2011-04-05T10:24:19Z",
        "history": "2011-04-05T10:24:19Z CMOR rewrote data to comply with CF standards and CMIP5 requirements.",
        "Conventions": "CF-1.4",
        "project_id": "CMIP5",
        "table_id": "Table Amon (26 July 2011) 976b7fd1d9e1be31dddd28f5dc79b7a1",
        "title": "HadGEM2-ES model output prepared for CMIP5 historical",
        "parent_experiment": "pre-industrial control",
        "modeling_realm": "atmos",
        "realization": np.int32(1),
        "cmor_version": "2.5.0",
        "comment": SYNTHETIC.format("a CMIP5 HadGEM2-ES Amon pr file (360_day calendar)", "HadGEM2-ES"),
    })
    nc.close()


def make_day360(out):
    files = []
    for y in range(2):
        name = f"pr_Amon_HadGEM2-ES_historical_r1i1p1_{2000 + y}01-{2000 + y}12.nc"
        write_day360(os.path.join(out, name), y, f"3a1f6c1e-2b7d-4c55-8f0e-9e2a7d1c{y:04d}")
        files.append(name)
    return {
        "name": "day360",
        "product": "CMIP5 HadGEM2-ES Amon pr (CMOR 2, 360_day), time in months since 2000-01-01",
        "files": files,
        "ingest_args": [],
        "refused": [],
        "replace": None,
        "selections": [
            # 2001-02-30 exists in 360_day; it lies 14 days after Feb's mid-month
            # stamp 2001-02-16 (index 13) and 16 days before Mar's (index 14)
            {"constraint": "pr[(2001-02-30)][0:1:39][0:1:47]", "ascii": "time[(2001-02-30)]", "vars": ["pr"],
             "expect": {"time": [13]}, "expect_time": "2001-02-16 00:00:00 (360_day, 13.5 months)"},
            {"constraint": "pr[(2001-02-01):(2001-03-30)][0:1:39][0:1:47]", "ascii": "time[(2001-02-01):(2001-03-30)]",
             "vars": ["pr"], "expect": {"time": [13, 14]}},
        ],
        "tolerance": {"pr": 0.0},
        "notes": "360_day calendar, time 'months since 2000-01-01' at mid-month (0.5, 1.5, ...), time_bnds on whole "
                 "months, lat/lon (N96, with bounds) window 20..68.75N 0..88.125E. 2000 and 2001.",
    }


# --------------------------------------------------------------------------
# 4. NSIDC-0051 v2 sea-ice concentration, polar stereographic north
# --------------------------------------------------------------------------
#
# NSIDC-0051 version 2 daily files (NSIDC0051_SEAICE_PS_N25km_YYYYMMDD_v2.0.nc):
#   dimensions: x = 304 ; y = 448 ; time = 1 ;
#   char crs ; grid_mapping_name "polar_stereographic", false_easting 0.,
#       false_northing 0., semi_major_axis 6378273., semi_minor_axis
#       6356889.449, straight_vertical_longitude_from_pole -45.,
#       latitude_of_projection_origin 90., standard_parallel 70., long_name
#       "NSIDC_NH_PolarStereo_25km", GeoTransform "-3850000 25000 0 5850000 0 -25000 ",
#       crs_wkt, proj4text, srid "urn:ogc:def:crs:EPSG::3411"
#   double x(x), y(y) ; "projection_x/y_coordinate", units "meters"
#   double time(time) ; "days since 1970-01-01" (standard)
#   ubyte F17_ICECON(time, y, x) ; _FillValue 255, scale_factor 0.004,
#       valid_range 0..250, flag_values 251..254 (pole hole, unused, coast,
#       land), grid_mapping "crs", standard_name "sea_ice_area_fraction"
# Here: EPSG:3413 (WGS 84 ellipsoid) instead of 3411 (Hughes 1980), an `int`
# crs, the variable named ice_conc, and 2-D double lat/lon (as in the G02202
# CDR files) referenced by `coordinates`.

WGS84_A = 6378137.0
WGS84_INVF = 298.257223563
# EPSG:3413 as GDAL 3 / PROJ 9 write it (WKT1_GDAL; GDAL 2 added
# AXIS["Easting",SOUTH],AXIS["Northing",SOUTH]).
EPSG3413_WKT = (
    'PROJCS["WGS 84 / NSIDC Sea Ice Polar Stereographic North",GEOGCS["WGS 84",DATUM["WGS_1984",'
    'SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],'
    'PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
    'AUTHORITY["EPSG","4326"]],PROJECTION["Polar_Stereographic"],PARAMETER["latitude_of_origin",70],'
    'PARAMETER["central_meridian",-45],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
    'UNIT["metre",1,AUTHORITY["EPSG","9001"]],AUTHORITY["EPSG","3413"]]'
)
PS_I0, PS_NX = 124, 60     # columns of the 304-wide NSIDC north grid
PS_J0, PS_NY = 214, 56     # rows of the 448-high grid


def polar_stereo_inverse(x, y, lat_ts=70.0, lon0=-45.0, a=WGS84_A, invf=WGS84_INVF):
    """Ellipsoidal north polar stereographic (x, y) -> (lat, lon) in degrees.

    Snyder (1987), Map Projections - A Working Manual, eqs. 21-38/21-39,
    14-15, 3-5 (series for the conformal latitude), 20-16; the variant with
    a standard parallel (EPSG method 9829, polar stereographic variant B)."""
    f = 1.0 / invf
    e2 = f * (2 - f)
    e = np.sqrt(e2)
    phc = np.radians(lat_ts)
    mc = np.cos(phc) / np.sqrt(1 - e2 * np.sin(phc) ** 2)
    tc = np.tan(np.pi / 4 - phc / 2) / ((1 - e * np.sin(phc)) / (1 + e * np.sin(phc))) ** (e / 2)
    rho = np.hypot(x, y)
    t = rho * tc / (a * mc)
    chi = np.pi / 2 - 2 * np.arctan(t)
    e4, e6, e8 = e2 * e2, e2 ** 3, e2 ** 4
    phi = (chi
           + (e2 / 2 + 5 * e4 / 24 + e6 / 12 + 13 * e8 / 360) * np.sin(2 * chi)
           + (7 * e4 / 48 + 29 * e6 / 240 + 811 * e8 / 11520) * np.sin(4 * chi)
           + (7 * e6 / 120 + 81 * e8 / 1120) * np.sin(6 * chi)
           + (4279 * e8 / 161280) * np.sin(8 * chi))
    lam = np.radians(lon0) + np.arctan2(x, -y)
    lon = (np.degrees(lam) + 180.0) % 360.0 - 180.0
    return np.degrees(phi), lon


def polar_stereo_forward(lat, lon, lat_ts=70.0, lon0=-45.0, a=WGS84_A, invf=WGS84_INVF):
    """The forward projection, used to check the inverse."""
    f = 1.0 / invf
    e2 = f * (2 - f)
    e = np.sqrt(e2)
    phc = np.radians(lat_ts)
    mc = np.cos(phc) / np.sqrt(1 - e2 * np.sin(phc) ** 2)
    tc = np.tan(np.pi / 4 - phc / 2) / ((1 - e * np.sin(phc)) / (1 + e * np.sin(phc))) ** (e / 2)
    ph = np.radians(lat)
    t = np.tan(np.pi / 4 - ph / 2) / ((1 - e * np.sin(ph)) / (1 + e * np.sin(ph))) ** (e / 2)
    rho = a * mc * t / tc
    dl = np.radians(lon - lon0)
    return rho * np.sin(dl), -rho * np.cos(dl)


def write_polar(path, day, rng_name):
    rng = _rng(rng_name)
    x = -3837500.0 + 25000.0 * np.arange(PS_I0, PS_I0 + PS_NX)
    y = 5837500.0 - 25000.0 * np.arange(PS_J0, PS_J0 + PS_NY)
    xx, yy = np.meshgrid(x, y)
    lat, lon = polar_stereo_inverse(xx, yy)
    fx, fy = polar_stereo_forward(lat, lon)
    assert np.abs(fx - xx).max() < 1e-4 and np.abs(fy - yy).max() < 1e-4, "polar stereographic round trip"
    # concentration in packed units 0..250 (x 0.004), flags, missing
    conc = 0.93 + 0.05 * _smooth_noise(rng, lat.shape, 4) - 0.35 * np.clip((83.0 - lat) / 8, 0, 1) * (lon > 0)
    packed = np.clip(np.rint(conc / 0.004), 0, 250).astype("u1")
    land = (lat < 82.9) & (lon > -95) & (lon < -12)                     # Greenland / Ellesmere
    coast = land & ~(np.roll(land, 1, 0) & np.roll(land, -1, 0) & np.roll(land, 1, 1) & np.roll(land, -1, 1))
    packed[land] = 254
    packed[coast] = 253
    packed[lat > 89.18] = 251                                            # SSMIS pole hole
    miss = rng.random(lat.shape) < 0.004                                 # missing swaths
    packed[miss & ~land] = 255
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    nc.createDimension("time", 1)
    nc.createDimension("y", PS_NY)
    nc.createDimension("x", PS_NX)
    crs = nc.createVariable("crs", "i4", ())
    _put_attrs(crs, {
        "grid_mapping_name": "polar_stereographic",
        "false_easting": 0.0,
        "false_northing": 0.0,
        "semi_major_axis": WGS84_A,
        "inverse_flattening": WGS84_INVF,
        "straight_vertical_longitude_from_pole": -45.0,
        "latitude_of_projection_origin": 90.0,
        "standard_parallel": 70.0,
        "long_name": "NSIDC_NH_PolarStereo_25km",
        "GeoTransform": "-3850000 25000 0 5850000 0 -25000 ",
        "crs_wkt": EPSG3413_WKT,
        "spatial_ref": EPSG3413_WKT,
        "proj4text": "+proj=stere +lat_0=90 +lat_ts=70 +lon_0=-45 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs",
        "srid": "urn:ogc:def:crs:EPSG::3413",
        "epsg_code": "EPSG:3413",
    })
    crs.assignValue(0)
    v = nc.createVariable("time", "f8", ("time",))
    _put_attrs(v, {"standard_name": "time", "long_name": "ANSI date", "calendar": "standard", "axis": "T",
                   "units": "days since 1970-01-01 00:00:00", "coverage_content_type": "coordinate"})
    v[:] = [float((day - _dt.date(1970, 1, 1)).days)]
    v = nc.createVariable("y", "f8", ("y",))
    _put_attrs(v, {"standard_name": "projection_y_coordinate", "long_name": "y", "units": "meters", "axis": "Y",
                   "valid_range": np.array([-5350000.0, 5850000.0]), "coverage_content_type": "coordinate"})
    v[:] = y
    v = nc.createVariable("x", "f8", ("x",))
    _put_attrs(v, {"standard_name": "projection_x_coordinate", "long_name": "x", "units": "meters", "axis": "X",
                   "valid_range": np.array([-3850000.0, 3750000.0]), "coverage_content_type": "coordinate"})
    v[:] = x
    v = nc.createVariable("lat", "f8", ("y", "x"), zlib=True, complevel=5)
    _put_attrs(v, {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north",
                   "valid_range": np.array([-90.0, 90.0]), "coverage_content_type": "coordinate"})
    v[:] = lat
    v = nc.createVariable("lon", "f8", ("y", "x"), zlib=True, complevel=5)
    _put_attrs(v, {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east",
                   "valid_range": np.array([-180.0, 180.0]), "coverage_content_type": "coordinate"})
    v[:] = lon
    v = nc.createVariable("ice_conc", "u1", ("time", "y", "x"), fill_value=np.uint8(255), zlib=True, complevel=5)
    v.set_auto_maskandscale(False)
    _put_attrs(v, {
        "long_name": "Sea Ice Concentration",
        "standard_name": "sea_ice_area_fraction",
        "units": "1",
        "valid_range": np.array([0, 250], dtype="u1"),
        "scale_factor": 0.004,
        "packing_convention": "netCDF",
        "packing_convention_description": "unpacked = scale_factor*packed + add_offset",
        "flag_values": np.array([251, 252, 253, 254], dtype="u1"),
        "flag_meanings": "pole_hole_mask unused coast land",
        "grid_mapping": "crs",
        "coordinates": "lat lon",
        "coverage_content_type": "image",
    })
    v[0] = packed
    _put_attrs(nc, {
        "Conventions": "CF-1.6, ACDD-1.3",
        "title": "Sea Ice Concentrations from Nimbus-7 SMMR and DMSP SSM/I-SSMIS Passive Microwave Data, Version 2",
        "product_version": "v2.0",
        "summary": "This data set is generated from brightness temperature data and is designed to provide a "
                   "consistent time series of sea ice concentrations.",
        "id": "10.5067/MPYG15WAA4WX",
        "naming_authority": "org.doi.dx",
        "license": "No constraints on data access or use",
        "keywords": "EARTH SCIENCE > CRYOSPHERE > SEA ICE > SEA ICE CONCENTRATION",
        "keywords_vocabulary": "NASA Global Change Master Directory (GCMD) Science Keywords",
        "standard_name_vocabulary": "CF Standard Name Table (v80)",
        "cdm_data_type": "grid",
        "platform": "DMSP 5D-3/F17 > Defense Meteorological Satellite Program-F17",
        "sensor": "SSMIS > Special Sensor Microwave Imager/Sounder",
        "geospatial_bounds_crs": "EPSG:3413",
        "time_coverage_start": f"{day:%Y-%m-%d}T00:00:00Z",
        "time_coverage_end": f"{day:%Y-%m-%d}T23:59:59Z",
        "date_created": "2023-05-02T17:21:05Z",
        "creator_name": "NSIDC",
        "publisher_name": "NSIDC",
        "processing_level": "Level 3",
        "comment": SYNTHETIC.format("an NSIDC-0051 v2 daily file moved to EPSG:3413", "NSIDC"),
    })
    nc.close()


def make_polar(out):
    files = []
    for i in range(2):
        day = _dt.date(2023, 3, 1) + _dt.timedelta(days=i)
        name = f"NSIDC0051_SEAICE_PS_N25km_{day:%Y%m%d}_v2.0.nc"
        write_polar(os.path.join(out, name), day, f"polar-{i}")
        files.append(name)
    return {
        "name": "polar",
        "product": "NSIDC-0051 v2 daily sea-ice concentration, polar stereographic north 25 km (EPSG:3413 here)",
        "files": files,
        "ingest_args": [],
        "refused": [],
        "replace": None,
        "selections": [],
        "tolerance": {"ice_conc": 0.0},
        "notes": "ubyte ice_conc(time, y, x) with scale_factor 0.004, _FillValue 255, flag_values 251..254, "
                 "grid_mapping 'crs' (int scalar, EPSG:3413 parameters and WKT), coordinates 'lat lon' (2-D "
                 "double lat/lon from the ellipsoidal polar stereographic inverse), double x/y in metres "
                 "(25 km, y descending), window of 60 x 56 cells around the pole; 2023-03-01 and 2023-03-02.",
    }


# --------------------------------------------------------------------------
# 5. Regular Gaussian N48 field (ECMWF GRIB converted by CDO)
# --------------------------------------------------------------------------
#
# `cdo -f nc -t ecmwf copy in.grb out.nc` on a regular Gaussian F48 grid:
#   dimensions: time = UNLIMITED ; lon = 192 ; lat = 96 ;
#   double time(time) ; standard_name "time", units "hours since
#       1900-01-01 00:00:00", calendar "proleptic_gregorian" (here: "standard"), axis "T"
#   double lon(lon) ; standard_name, long_name "longitude", units, axis "X"
#   double lat(lat) ; standard_name, long_name "latitude", units, axis "Y"
#   float t2m(time, lat, lon) ; long_name "2 metre temperature", units "K",
#       code 167, table 128
#   global: CDI, Conventions "CF-1.6", history, institution, CDO
# Latitudes: the 96 roots of the Legendre polynomial P_96, as arcsin in
# degrees, north to south (not evenly spaced); longitudes 360/192 apart.

def gaussian_latitudes(n):
    """The 2n Gaussian latitudes of a regular Gaussian grid Nn, north first."""
    x, _ = np.polynomial.legendre.leggauss(2 * n)
    return np.degrees(np.arcsin(x))[::-1].copy()


def write_gaussian(path, day, seed):
    rng = _rng(seed)
    lat = gaussian_latitudes(48)
    lon = np.arange(192) * (360.0 / 192)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    nc = netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC")
    nc.createDimension("time", None)
    nc.createDimension("lon", len(lon))
    nc.createDimension("lat", len(lat))
    v = nc.createVariable("time", "f8", ("time",))
    _put_attrs(v, {"standard_name": "time", "units": "hours since 1900-01-01 00:00:00", "calendar": "standard",
                   "axis": "T"})
    v[:] = [float(_hours_since_1900(day, h)) for h in (0, 6, 12, 18)]
    v = nc.createVariable("lon", "f8", ("lon",))
    _put_attrs(v, {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"})
    v[:] = lon
    v = nc.createVariable("lat", "f8", ("lat",))
    _put_attrs(v, {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"})
    v[:] = lat
    v = nc.createVariable("t2m", "f4", ("time", "lat", "lon"))
    _put_attrs(v, {"long_name": "2 metre temperature", "units": "K", "code": np.int32(167), "table": np.int32(128)})
    t2m = np.empty((4, len(lat), len(lon)))
    for it in range(4):
        sun = np.cos(np.radians(lo + 90 * it - 180))
        t2m[it] = (299.0 - 52.0 * np.sin(np.radians(la)) ** 2 - 10 * (la < -65) + 4.0 * sun * np.cos(np.radians(la))
                   + 2.0 * _smooth_noise(rng, la.shape, 3))
    v[:] = t2m.astype("f4")
    _put_attrs(nc, {
        "CDI": "Climate Data Interface version 2.2.4 (https://mpimet.mpg.de/cdi)",
        "Conventions": "CF-1.6",
        "history": f"Mon Feb 06 09:20:11 2023: cdo -f nc -t ecmwf copy t2m_N48_{day:%Y%m%d}.grib t2m_N48_{day:%Y%m%d}.nc",
        "institution": "European Centre for Medium-Range Weather Forecasts",
        "CDO": "Climate Data Operators version 2.2.2 (https://mpimet.mpg.de/cdo)",
        "comment": SYNTHETIC.format("an ECMWF field on the N48 regular Gaussian grid converted by CDO", "ECMWF"),
    })
    nc.close()


def make_gaussian(out):
    files = []
    for i in range(2):
        day = _dt.date(2023, 1, 15) + _dt.timedelta(days=i)
        name = f"t2m_N48_{day:%Y%m%d}.nc"
        write_gaussian(os.path.join(out, name), day, f"gauss-{i}")
        files.append(name)
    return {
        "name": "gaussian",
        "product": "ECMWF 2 m temperature on the regular Gaussian N48 grid, converted by CDO",
        "files": files,
        "ingest_args": [],
        "refused": [],
        "replace": None,
        "selections": [],
        "tolerance": {"t2m": 0.0},
        "notes": "Global N48 regular Gaussian grid: 96 double latitudes (arcsin of the Legendre P_96 roots, "
                 "north to south, unevenly spaced), 192 double longitudes 0..358.125; float t2m; time double hours "
                 "since 1900-01-01 00:00:00 standard, 4 per day, 2023-01-15 and 2023-01-16.",
    }


# --------------------------------------------------------------------------
# 6. 30-arc-second DEM window
# --------------------------------------------------------------------------
#
# SRTM30 / GTOPO30 tiles run north to south with cell centres at
# 90 - (j + 0.5)/120 and -180 + (i + 0.5)/120; voids are -32768 (SRTM) and
# elevations are shorts in metres. The attribute set is GEBCO's netCDF
# (lat/lon with the SeaDataNet URNs, short elevation, node_offset = 1).
# Coordinates are computed per cell in float64, so they are not
# x0 + i*dx bit for bit.

DEM_I0, DEM_NX = 22440, 600   # 7E .. 12E
DEM_J0, DEM_NY = 5160, 480    # 47N .. 43N


def make_dem30s(out):
    rng = _rng("dem30s")
    i = np.arange(DEM_I0, DEM_I0 + DEM_NX)
    j = np.arange(DEM_J0, DEM_J0 + DEM_NY)
    lon = -180.0 + (i + 0.5) / 120.0
    lat = 90.0 - (j + 0.5) / 120.0
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ridge = np.exp(-((la - 46.0 - 0.25 * (lo - 9.5)) / 0.9) ** 2)
    elev = (350.0 + 2900.0 * ridge + 700.0 * ridge * _smooth_noise(rng, la.shape, 6)
            + 160.0 * _smooth_noise(rng, la.shape, 2) + 40.0 * _smooth_noise(rng, la.shape, 1))
    elev = np.clip(elev, -5, 4800)
    elev = np.rint(elev).astype("i2")
    # SRTM voids on steep high ground
    voids = (ridge > 0.8) & (rng.random(la.shape) < 0.01)
    elev[voids] = -32768
    name = "srtm30_window_N47E007.nc"
    nc = netCDF4.Dataset(os.path.join(out, name), "w", format="NETCDF4")
    nc.createDimension("lat", DEM_NY)
    nc.createDimension("lon", DEM_NX)
    v = nc.createVariable("lat", "f8", ("lat",))
    _put_attrs(v, {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y",
                   "sdn_parameter_urn": "SDN:P01::ALATZZ01", "sdn_parameter_name": "Latitude north",
                   "sdn_uom_urn": "SDN:P06::DEGN", "sdn_uom_name": "Degrees north"})
    v[:] = lat
    v = nc.createVariable("lon", "f8", ("lon",))
    _put_attrs(v, {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X",
                   "sdn_parameter_urn": "SDN:P01::ALONZZ01", "sdn_parameter_name": "Longitude east",
                   "sdn_uom_urn": "SDN:P06::DEGE", "sdn_uom_name": "Degrees east"})
    v[:] = lon
    v = nc.createVariable("elevation", "i2", ("lat", "lon"), fill_value=np.int16(-32768), zlib=True, complevel=4,
                          chunksizes=(240, 300))
    v.set_auto_maskandscale(False)
    _put_attrs(v, {"standard_name": "height_above_mean_sea_level", "long_name": "Elevation relative to sea level",
                   "units": "m", "sdn_parameter_urn": "SDN:P01::ALATZZ01",
                   "sdn_parameter_name": "Sea floor height (above mean sea level) {bathymetric height}",
                   "sdn_uom_urn": "SDN:P06::ULAA", "sdn_uom_name": "Metres"})
    v[:] = elev
    _put_attrs(nc, {
        "Conventions": "CF-1.6",
        "title": "SRTM30-style 30 arc-second elevation, window 43-47N 7-12E",
        "institution": "tessera test suite (synthetic data)",
        "source": "synthetic terrain with SRTM-like voids",
        "history": "2023-02-06: window cut from the global 30 arc-second grid (43200 x 21600, cell centres at "
                   "-180 + (i + 0.5)/120, 90 - (j + 0.5)/120)",
        "references": "cell registration as SRTM30 / GTOPO30; attributes as GEBCO netCDF",
        "node_offset": np.float64(1.0),
        "comment": SYNTHETIC.format("a 30-arc-second DEM tile (SRTM30/GTOPO30 grid, GEBCO attributes)", "SRTM/GEBCO"),
    })
    nc.close()
    return {
        "name": "dem30s",
        "product": "30-arc-second DEM window (SRTM30/GTOPO30 grid, GEBCO netCDF attributes), no time axis",
        "files": [name],
        "ingest_args": [],
        "refused": [],
        "replace": None,
        "selections": [],
        "tolerance": {"elevation": 0.0},
        "grid": {"lon": f"-180 + (i + 0.5)/120 for i in {DEM_I0}..{DEM_I0 + DEM_NX - 1}",
                 "lat": f"90 - (j + 0.5)/120 for j in {DEM_J0}..{DEM_J0 + DEM_NY - 1}"},
        "notes": "Static (no time): short elevation(lat, lon) m with _FillValue -32768s voids; double lat "
                 "(descending) and lon computed per cell as 90 - (j + 0.5)/120 and -180 + (i + 0.5)/120 in float64 "
                 "(not first + i*step bit for bit). 600 x 480 cells.",
    }


# --------------------------------------------------------------------------

def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    outdir = os.path.abspath(outdir)
    datasets = []
    datasets += make_era5(outdir)
    datasets.append(make_cmip(outdir))
    datasets.append(make_day360(outdir))
    datasets.append(make_polar(outdir))
    datasets.append(make_gaussian(outdir))
    datasets.append(make_dem30s(outdir))
    manifest = {
        "generator": "tests/archives/sources.py",
        "version": 1,
        "outdir": outdir,
        "ingest_usage": "tessera ingest --dataset NAME [ingest_args...] -- FILE... (files in the order given; "
                        "'--' because --unpack takes an optional value); a replacement: the dataset's ingest_args "
                        "plus replace.ingest_args, then -- replace.file",
        "datasets": datasets,
    }
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return manifest


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print(f"usage: {argv[0]} OUTDIR", file=sys.stderr)
        return 2
    manifest = generate(argv[1])
    json.dump(manifest, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

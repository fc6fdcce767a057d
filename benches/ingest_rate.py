#!/usr/bin/env python3
"""Sustained ingest rate, as an archive is fed: one `tessera ingest` per
daily source file, one after another, into one dataset.

    benches/ingest_rate.py --bin target/release/tessera [--files 30] [--catalogue URL]

Each source is a day of a reanalysis-shaped file: 0.25 degree global
(1440 x 721), four 6-hourly steps, four float32 variables (66 MB). The
script prints the source bytes ingested per second of wall time over the
whole run, and against the 1.2 MB/s that 100 GB a day needs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import netCDF4
import numpy as np


def write_day(path, day):
    lat = np.linspace(90, -90, 721)
    lon = np.arange(1440) * 0.25
    la, lo = np.meshgrid(np.radians(lat), np.radians(lon), indexing="ij")
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 4)
        nc.createDimension("latitude", lat.size)
        nc.createDimension("longitude", lon.size)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "hours since 2000-01-01 00:00:00"
        t.calendar = "standard"
        t[:] = day * 24 + np.arange(4) * 6
        v = nc.createVariable("latitude", "f4", ("latitude",))
        v.units = "degrees_north"
        v[:] = lat
        v = nc.createVariable("longitude", "f4", ("longitude",))
        v.units = "degrees_east"
        v[:] = lon
        for k, name in enumerate(["t2m", "u10", "v10", "msl"]):
            v = nc.createVariable(name, "f4", ("time", "latitude", "longitude"))
            for s in range(4):
                v[s] = (280 + 20 * np.cos(la) + 5 * np.sin(3 * lo + day + s + k)).astype("f4")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/tessera")
    ap.add_argument("--files", type=int, default=30)
    ap.add_argument("--catalogue", help="default: SQLite in the work directory")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tessera-ingest-rate-")
    paths = []
    for d in range(a.files):
        p = os.path.join(work, f"day{d:03d}.nc")
        write_day(p, d)
        paths.append(p)
    size = sum(os.path.getsize(p) for p in paths)
    env = dict(os.environ, TESSERA_DATA_DIR=os.path.join(work, "data"))
    if a.catalogue:
        env["TESSERA_CATALOGUE"] = a.catalogue
    started = time.monotonic()
    for p in paths:
        subprocess.run([os.path.abspath(a.bin), "ingest", "--dataset", "rate", p], env=env, check=True, capture_output=True)
    wall = time.monotonic() - started
    rate = size / wall / 1e6
    print(f"{a.files} daily files, {size / 1e6:.0f} MB of sources, one ingest each: {wall:.1f} s, {rate:.1f} MB/s sustained "
          f"({rate / 1.2:.0f}x the 1.2 MB/s of 100 GB a day)")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Compare what xarray reads from tessera with what xarray reads from the sources.

    python3 tests/archives/compare.py --manifest M.json --base http://127.0.0.1:PORT \\
        --dataset NAME [--files F1 F2 ...] [--nc] [--expect-corrected]
    python3 tests/archives/compare.py --self-test OUTDIR

The served dataset is opened over DAP2 with
`xr.open_dataset(f"{base}/dap/{name}", engine="netcdf4", decode_times=CFDatetimeCoder(use_cftime=True))`
(netCDF-C's DAP2 client) and its attributes are read with netCDF4.Dataset on
the same URL; the sources (the manifest's files in ingest order, or --files)
are opened the same way, one by one, and concatenated along their time
dimension. With --nc the whole dataset is also downloaded from
`{base}/dap/{name}.nc` (and every selection of the manifest from
`{base}/dap/{name}.nc?<constraint>`) and checked the same way.

Checks (one line per failure, `FAIL [where] variable: ...`; exit status 1 if
any, 0 if none, 2 for usage errors):
  * every variable of the sources is served, with the same dimensions;
  * data variables: decoded values equal within the manifest's tolerance,
    NaN exactly where the source is NaN;
  * coordinates (1-D, 2-D and scalar), bounds variables and grid-mapping
    variables: bit for bit (same dtype; float64 compared as uint64 bits);
    times as cftime objects of the same calendar class;
  * the source's coordinates of each data variable are coordinates of the
    served one (2-D lat/lon, scalar height);
  * attributes: data variables' units, long_name, standard_name,
    cell_methods, cell_measures, grid_mapping and the presence of
    _FillValue/missing_value; coordinates' units, standard_name, axis,
    calendar, bounds, positive; every attribute of a grid-mapping variable;
    global title, Conventions, external_variables;
  * no coordinates/bounds/climatology/grid_mapping/cell_measures/
    ancillary_variables attribute of the served dataset names a variable it
    lacks (cell_measures may name variables in the global external_variables);
  * times of files the manifest says must be refused are not served;
  * selections: the manifest's expected indices agree with the source times;
    over DAP2 `{name}.ascii?<time constraint>` returns those times, with --nc
    `{name}.nc?<constraint>` holds exactly those slices;
  * --expect-corrected: the sources are the manifest's files with the
    replacement file in place of the one it corrects; changed slices must
    differ from the original file, untouched ones equal it.

Calendars "gregorian" and "standard" are treated as the same (CF aliases;
cftime decodes both to DatetimeGregorian).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request

import cftime
import netCDF4
import numpy as np
import xarray as xr

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    TIME_DECODER = xr.coders.CFDatetimeCoder(use_cftime=True)
    OPEN_KW = {"decode_times": TIME_DECODER}
except AttributeError:  # older xarray
    OPEN_KW = {"decode_times": True, "use_cftime": True}

DATA_ATTRS = ("units", "long_name", "standard_name", "cell_methods", "cell_measures", "grid_mapping")
COORD_ATTRS = ("units", "standard_name", "axis", "calendar", "bounds", "positive")
GLOBAL_ATTRS = ("title", "Conventions", "external_variables")
REF_ATTRS = ("coordinates", "bounds", "climatology", "grid_mapping", "cell_measures", "ancillary_variables")
CAL_ALIASES = {"gregorian": "standard"}


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------

class Report:
    """Collects failures; prints each as it comes."""

    def __init__(self, quiet=False):
        self.failures = []
        self.quiet = quiet

    def fail(self, where, msg):
        line = f"FAIL [{where}] {msg}"
        self.failures.append(line)
        if not self.quiet:
            print(line, flush=True)

    def note(self, where, msg):
        if not self.quiet:
            print(f"note [{where}] {msg}", file=sys.stderr, flush=True)


def _idx(t):
    return tuple(int(i) for i in t)


def _ar(v):
    """repr of an attribute value, with its numpy type."""
    if isinstance(v, np.generic):
        return f"{v.item()!r} ({v.dtype})"
    if isinstance(v, np.ndarray):
        return f"{v.tolist()!r} ({v.dtype})"
    return repr(v)


def _r(x):
    """repr of one value, with the bit pattern for floats."""
    if isinstance(x, np.floating):
        bits = {8: "u8", 4: "u4", 2: "u2"}[x.dtype.itemsize]
        return f"{x!r} (bits 0x{int(np.asarray(x).view(bits)):0{2 * x.dtype.itemsize}x})"
    return repr(x)


# --------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------

def open_decoded(src):
    """xarray's decoded view of a file or DAP URL, loaded into memory."""
    ds = xr.open_dataset(src, engine="netcdf4", decode_timedelta=False, **OPEN_KW)
    ds.load()
    ds.close()
    return ds


def raw_meta(src):
    """Variables (dims, dtype, attributes) and global attributes as netCDF-C gives them."""
    with netCDF4.Dataset(src) as nc:
        out = {"globals": {k: nc.getncattr(k) for k in nc.ncattrs()}, "vars": {}}
        for name, v in nc.variables.items():
            out["vars"][name] = {"dims": tuple(v.dimensions), "dtype": v.dtype,
                                 "attrs": {k: v.getncattr(k) for k in v.ncattrs()}}
    return out


def merged_meta(paths):
    metas = [raw_meta(p) for p in paths]
    out = {"globals": dict(metas[0]["globals"]), "vars": {}}
    for m in metas:
        for k, v in m["vars"].items():
            out["vars"].setdefault(k, v)
    return out


def is_cftime_array(a):
    return a.dtype == object and a.size > 0 and isinstance(a.flat[0], cftime.datetime)


def time_dim(ds):
    for name, var in ds.coords.items():
        if var.ndim == 1 and is_cftime_array(var.values):
            return var.dims[0]
    return None


def load_sources(paths):
    dss = [open_decoded(p) for p in paths]
    if len(dss) == 1:
        return dss[0]
    tdim = time_dim(dss[0])
    if tdim is None:
        raise SystemExit(f"{len(paths)} source files but no time coordinate to concatenate them along")
    return xr.concat(dss, dim=tdim, data_vars="minimal", coords="minimal", compat="equals", join="exact",
                     combine_attrs="override")


def raw_times(paths, tvar):
    vals = []
    for p in paths:
        with netCDF4.Dataset(p) as nc:
            v = nc.variables[tvar]
            v.set_auto_maskandscale(False)
            vals.append(np.asarray(v[:], dtype="f8"))
    return np.concatenate(vals)


# --------------------------------------------------------------------------
# value comparison
# --------------------------------------------------------------------------

def compare_exact(rep, where, name, srv, src, what):
    """Bit for bit (floats), exactly (ints, strings), as cftime objects (times)."""
    a, b = np.asarray(srv), np.asarray(src)
    if a.shape != b.shape:
        rep.fail(where, f"{name}: served shape {a.shape}, source shape {b.shape}")
        return
    if is_cftime_array(b) or is_cftime_array(a):
        bad = []
        for i in np.ndindex(b.shape):
            x, y = a[i], b[i]
            if type(x) is not type(y) or getattr(x, "calendar", None) != getattr(y, "calendar", None) or x != y:
                bad.append(i)
        if bad:
            i = bad[0]
            cls = ""
            if type(a[i]) is not type(b[i]):
                cls = f" (calendar class {type(a[i]).__name__} served, {type(b[i]).__name__} in the source)"
            rep.fail(where, f"{name}: {what} differ at index {_idx(i)}: served {a[i]!r}, source {b[i]!r}{cls}; "
                            f"{len(bad)} of {b.size} differ")
        return
    if a.dtype.kind != b.dtype.kind and not (a.dtype.kind in "iu" and b.dtype.kind in "iu"):
        rep.fail(where, f"{name}: served dtype {a.dtype} (kind {a.dtype.kind!r}), source dtype {b.dtype} "
                        f"(kind {b.dtype.kind!r}); {what} must keep their type")
        if a.dtype.kind not in "fiu" or b.dtype.kind not in "fiu":
            return
    if b.dtype.kind == "f" and a.dtype.kind == "f":
        if a.dtype != b.dtype:
            rep.fail(where, f"{name}: served as {a.dtype}, source is {b.dtype}; {what} must be bit for bit")
            a64, b64 = a.astype("f8"), b.astype("f8")
            neq = (a64 != b64) & ~(np.isnan(a64) & np.isnan(b64))
        else:
            bits = {8: "u8", 4: "u4", 2: "u2"}[b.dtype.itemsize]
            neq = (a.view(bits) != b.view(bits)) & ~(np.isnan(a) & np.isnan(b))
        if neq.any():
            i = _idx(np.argwhere(neq)[0]) if neq.ndim else ()
            rep.fail(where, f"{name}: {what} not bit for bit equal at index {i}: served {_r(a[i])}, source {_r(b[i])}"
                            f"; {int(neq.sum())} of {b.size} values differ")
        return
    if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
        neq = a.astype("f8") != b.astype("f8") if (a.dtype.kind == "f" or b.dtype.kind == "f") else a != b
    else:
        neq = a != b
    neq = np.asarray(neq)
    if neq.any():
        i = _idx(np.argwhere(neq)[0]) if neq.ndim else ()
        rep.fail(where, f"{name}: {what} differ at index {i}: served {_r(a[i])}, source {_r(b[i])}; "
                        f"{int(neq.sum())} of {b.size} differ")


def compare_values(rep, where, name, srv, src, tol):
    """Decoded data: NaN where the source is NaN and nowhere else, |diff| <= tol elsewhere."""
    a, b = np.asarray(srv), np.asarray(src)
    if a.shape != b.shape:
        rep.fail(where, f"{name}: served shape {a.shape}, source shape {b.shape}")
        return
    if a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
        compare_exact(rep, where, name, a, b, "values")
        return
    af, bf = a.astype("f8"), b.astype("f8")
    an, bn = np.isnan(af), np.isnan(bf)
    m = bn & ~an
    if m.any():
        i = _idx(np.argwhere(m)[0]) if m.ndim else ()
        rep.fail(where, f"{name}: served {_r(a[i])} at index {i} where the source is missing (NaN); "
                        f"{int(m.sum())} such cells")
    m = an & ~bn
    if m.any():
        i = _idx(np.argwhere(m)[0]) if m.ndim else ()
        rep.fail(where, f"{name}: served NaN (missing) at index {i} where the source has {_r(b[i])}; "
                        f"{int(m.sum())} such cells")
    both = ~an & ~bn
    d = np.where(both, np.abs(af - bf), 0.0)
    bad = d > tol
    if bad.any():
        i = _idx(np.argwhere(bad)[0]) if bad.ndim else ()
        j = _idx(np.unravel_index(int(np.argmax(d)), d.shape)) if d.ndim else ()
        rep.fail(where, f"{name}: values differ at index {i}: served {_r(a[i])}, source {_r(b[i])} "
                        f"(|diff| {float(d[i])!r} > tolerance {tol!r}); {int(bad.sum())} of {b.size} cells differ, "
                        f"largest |diff| {float(d[j])!r} at {j}")


# --------------------------------------------------------------------------
# attributes
# --------------------------------------------------------------------------

def _norm_attr(key, v):
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        v = v.strip("\x00") if key != "GeoTransform" else v
        if key == "calendar":
            v = CAL_ALIASES.get(v.lower(), v.lower())
        return v
    return np.atleast_1d(np.asarray(v))


def attr_equal(key, a, b):
    a, b = _norm_attr(key, a), _norm_attr(key, b)
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a.shape != b.shape:
        return False
    try:
        return bool(np.array_equal(a.astype("f8"), b.astype("f8"), equal_nan=True))
    except (TypeError, ValueError):
        return bool(np.array_equal(a, b))


def compare_attrs(rep, where, name, keys, src_attrs, srv_attrs, src_dangling=()):
    """src_dangling: attributes whose references already name no variable in
    the sources; the server may drop those (only noted)."""
    for k in keys:
        if k not in src_attrs:
            continue
        if k not in srv_attrs and k in src_dangling:
            rep.note(where, f"{name}: attribute {k}={_ar(src_attrs[k])} (naming only variables the sources lack) "
                            f"is not served")
            continue
        if k not in srv_attrs:
            what = "dataset" if name == "global" else "variable"
            rep.fail(where, f"{name}: attribute {k}={_ar(src_attrs[k])} is missing from the served {what}")
        elif not attr_equal(k, src_attrs[k], srv_attrs[k]):
            rep.fail(where, f"{name}: attribute {k} differs: served {_ar(srv_attrs[k])}, source {_ar(src_attrs[k])}")


def referenced_names(key, value):
    """Variable names an attribute refers to."""
    if not isinstance(value, str):
        return []
    toks = value.split()
    if key == "cell_measures":
        # "area: areacella volume: volcello"
        return [t for t in toks if not t.endswith(":")]
    if key == "grid_mapping":
        # "crs" or "crsA: x y crsB: lat lon"
        return [t.rstrip(":") for t in toks]
    return toks


def _dangling(meta):
    """{(variable, attribute, referenced name)} that name no variable of `meta`."""
    have = set(meta["vars"])
    ext = meta["globals"].get("external_variables", "")
    external = set(ext.split()) if isinstance(ext, str) else set()
    out = {}
    for name, v in meta["vars"].items():
        for key in REF_ATTRS:
            if key not in v["attrs"]:
                continue
            for ref in referenced_names(key, v["attrs"][key]):
                if ref not in have and not (key == "cell_measures" and ref in external):
                    out[(name, key, ref)] = v["attrs"][key]
    return out


def check_references(rep, where, meta, src_meta=None):
    """Failures for references to variables the served dataset lacks; a
    reference that already dangles in the sources (CMIP5 files name
    areacella in cell_measures without shipping it) is only noted."""
    inherited = _dangling(src_meta) if src_meta is not None else {}
    for (name, key, ref), value in _dangling(meta).items():
        if (name, key, ref) in inherited:
            rep.note(where, f"{name}: attribute {key}={value!r} names {ref}, which neither the sources nor the "
                            f"served dataset have")
            continue
        extra = " (and not listed in the global external_variables)" if key == "cell_measures" else ""
        rep.fail(where, f"{name}: attribute {key}={value!r} names {ref}, which the served dataset does not "
                        f"have{extra}")


# --------------------------------------------------------------------------
# one comparison: sources vs one served dataset
# --------------------------------------------------------------------------

class Sources:
    """The sources of one dataset, decoded and raw."""

    def __init__(self, paths, entry):
        self.paths = list(paths)
        self.entry = entry or {}
        self.ds = load_sources(self.paths)
        self.meta = merged_meta(self.paths)
        self.tdim = time_dim(self.ds)
        self.tolerance = dict(self.entry.get("tolerance") or {})
        self.bounds = {}      # bounds variable -> the coordinate it bounds
        self.gridmaps = {}    # grid-mapping variable -> data variables using it
        for name, v in self.meta["vars"].items():
            for key in ("bounds", "climatology"):
                b = v["attrs"].get(key)
                if isinstance(b, str) and b:
                    self.bounds[b] = name
            g = v["attrs"].get("grid_mapping")
            if isinstance(g, str):
                for ref in referenced_names("grid_mapping", g):
                    if ref in self.meta["vars"] and not self.meta["vars"][ref]["dims"]:
                        self.gridmaps.setdefault(ref, []).append(name)

    def role(self, name):
        if name in self.bounds:
            return f"bounds of {self.bounds[name]}"
        if name in self.gridmaps:
            return f"grid mapping of {', '.join(self.gridmaps[name])}"
        if name in self.ds.coords:
            if name in self.ds.dims:
                return "coordinate"
            return "scalar coordinate" if self.ds[name].ndim == 0 else f"{self.ds[name].ndim}-D coordinate"
        return "data variable"

    def is_exact(self, name):
        return name in self.ds.coords or name in self.bounds or name in self.gridmaps

    def data_vars(self):
        return [v for v in self.ds.data_vars if v not in self.bounds and v not in self.gridmaps]


def compare(rep, where, src, srv, srv_meta, *, src_ds=None, required=None):
    """Checks one served dataset (decoded `srv`, raw `srv_meta`) against the sources.

    `src_ds`: the decoded sources to compare with (default src.ds; a subset
    for selections). `required`: the variables that must be served (default
    all of the sources')."""
    sds = src.ds if src_ds is None else src_ds
    names = list(sds.variables) if required is None else [n for n in sds.variables if n in required]
    optional = [n for n in sds.variables if n not in names and n in srv.variables]

    # presence, dims, values
    for name in names + optional:
        role = src.role(name)
        if name not in srv.variables:
            rep.fail(where, f"{name}: {role} in the sources, not served")
            continue
        if srv[name].dims != sds[name].dims:
            rep.fail(where, f"{name}: served with dimensions {srv[name].dims}, source has {sds[name].dims}")
            continue
        if srv[name].shape != sds[name].shape:
            extra = ""
            if name == src.tdim and is_cftime_array(sds[name].values):
                have, want = srv[name].values.tolist(), sds[name].values.tolist()
                missing = [t for t in want if t not in have]
                added = [t for t in have if t not in want]
                if missing:
                    extra += f"; {len(missing)} source times not served, first {str(missing[0])!r}"
                if added:
                    extra += f"; {len(added)} served times not in the sources, first {str(added[0])!r}"
            rep.fail(where, f"{name}: served shape {srv[name].shape}, source shape {sds[name].shape}{extra}")
            continue
        if src.is_exact(name):
            what = "times" if is_cftime_array(sds[name].values) else "values"
            compare_exact(rep, where, name, srv[name].values, sds[name].values, what)
        else:
            compare_values(rep, where, name, srv[name].values, sds[name].values, float(src.tolerance.get(name, 0.0)))

    if required is None:
        for name in srv.variables:
            if name not in sds.variables:
                rep.note(where, f"{name}: served, not in the sources")

    # the sources' coordinates of each data variable are coordinates of the served one
    for v in src.data_vars():
        if v not in srv.variables or v not in names + optional:
            continue
        for c in sds[v].coords:
            if c in srv[v].coords:
                continue
            coords_attr = srv_meta["vars"].get(v, {}).get("attrs", {}).get("coordinates")
            how = f"its coordinates attribute is {coords_attr!r}" if coords_attr is not None else "it has no coordinates attribute"
            if c in srv.variables:
                rep.fail(where, f"{v}: {c} ({src.role(c)}) is served but is not a coordinate of {v} ({how})")
            else:
                rep.fail(where, f"{v}: its {src.role(c)} {c} is not served")

    # attributes
    svars = srv_meta["vars"]
    src_dangling = {}
    for (v, key, ref) in _dangling(src.meta):
        src_dangling.setdefault(v, set()).add(key)
    for v, keys in list(src_dangling.items()):
        # only attributes all of whose references dangle
        for key in list(keys):
            refs = referenced_names(key, src.meta["vars"][v]["attrs"][key])
            if any(r in src.meta["vars"] for r in refs):
                keys.discard(key)
    for name in names + optional:
        if name not in svars or name not in src.meta["vars"]:
            continue
        sa, va = src.meta["vars"][name]["attrs"], svars[name]["attrs"]
        if name in src.gridmaps:
            compare_attrs(rep, where, name, [k for k in sa if k != "_FillValue"], sa, va)
        elif src.is_exact(name):
            compare_attrs(rep, where, name, COORD_ATTRS, sa, va)
        else:
            compare_attrs(rep, where, name, DATA_ATTRS, sa, va, src_dangling.get(name, ()))
            if ("_FillValue" in sa or "missing_value" in sa) and not ("_FillValue" in va or "missing_value" in va):
                rep.fail(where, f"{name}: the source declares _FillValue/missing_value "
                                f"{sa.get('_FillValue', sa.get('missing_value'))!r}, the served variable neither")
    compare_attrs(rep, where, "global", GLOBAL_ATTRS, src.meta["globals"], srv_meta["globals"])

    # dangling references in what is served
    check_references(rep, where, srv_meta, src.meta)


# --------------------------------------------------------------------------
# extra checks
# --------------------------------------------------------------------------

def check_refused(rep, where, src, srv, refused_paths):
    if src.tdim is None or src.tdim not in srv.coords:
        return
    served = set(srv[src.tdim].values.tolist())
    for p in refused_paths:
        ds = open_decoded(p)
        tvals = ds[src.tdim].values.tolist() if src.tdim in ds.coords else []
        present = [t for t in tvals if t in served]
        if present:
            rep.fail(where, f"refused file {os.path.basename(p)}: its times are served ({present[0]!r}, "
                            f"{len(present)} of {len(tvals)}); it should have been refused")


def check_replacement(rep, where, src, original, srv, entry):
    """src: sources with the replacement in place; original: without."""
    repl = entry["replace"]
    tdim = src.tdim
    corr = open_decoded(resolve(entry, repl["file"]))
    ctimes = corr[tdim].values.tolist()
    stimes = srv[tdim].values.tolist() if tdim in srv.coords else []
    otimes = original.ds[tdim].values.tolist()
    changed = {(c["var"], ctimes[c["index_in_file"]]) for c in repl["changed"]}
    untol = repl.get("untouched_tolerance", {})
    for var in src.data_vars():
        if var not in corr.data_vars or var not in srv.variables or tdim not in corr[var].dims or var not in original.ds:
            continue
        for t in ctimes:
            if t not in stimes or t not in otimes:
                rep.fail(where, f"{var}: time {t!r} of the replacement file is not served")
                continue
            s = np.asarray(srv[var].isel({tdim: stimes.index(t)}).values, dtype="f8")
            o = np.asarray(original.ds[var].isel({tdim: otimes.index(t)}).values, dtype="f8")
            tol = float(src.tolerance.get(var, 0.0))
            finite = ~np.isnan(s) & ~np.isnan(o)
            same_mask = np.array_equal(np.isnan(s), np.isnan(o))
            d = np.where(finite, np.abs(s - o), 0.0)
            if (var, t) in changed:
                if same_mask and not (d > tol).any():
                    rep.fail(where, f"{var} at {t}: served values still equal the original "
                                    f"{repl['corrects']} (replacement not applied)")
            else:
                utol = max(tol, float(untol.get(var, 0.0)))
                if not same_mask:
                    rep.fail(where, f"{var} at {t}: untouched slice's missing cells differ from the original")
                elif (d > utol).any():
                    i = _idx(np.argwhere(d > utol)[0])
                    rep.fail(where, f"{var} at {t}: untouched slice differs from the original at {i}: served "
                                    f"{float(s[i])!r}, original {float(o[i])!r} (|diff| {float(d[i])!r} > {utol!r})")


_DATE = re.compile(r"^\s*(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d*)?)?)?\s*Z?\s*$")


def _parse_user_time(text, calendar):
    m = _DATE.match(text)
    if not m:
        raise ValueError(f"cannot parse time {text!r}")
    y, mo, d, H, M, S = (int(g) if g else 0 for g in m.groups())
    return cftime.datetime(y, mo, d, H, M, S, calendar=calendar)


def selection_indices(src, sel):
    """Indices of the time axis that a `[(t)]` or `[(t0):(t1)]` time slab selects."""
    m = re.search(r"\[\(([^)]*)\)(?::\(([^)]*)\))?\]", sel["ascii"])
    if not m or src.tdim is None:
        return None
    times = src.ds[src.tdim].values
    cal = times[0].calendar
    t0 = _parse_user_time(m.group(1), cal)
    if m.group(2) is None:
        d = [abs((t - t0).total_seconds()) for t in times]
        return [int(np.argmin(d))]
    t1 = _parse_user_time(m.group(2), cal)
    return [i for i, t in enumerate(times) if t0 <= t <= t1]


def check_selection_expectations(rep, where, src):
    for sel in src.entry.get("selections") or []:
        want = (sel.get("expect") or {}).get(src.tdim)
        got = selection_indices(src, sel)
        if got is not None and want is not None and got != want:
            rep.fail(where, f"manifest selection {sel['ascii']!r} expects {src.tdim} indices {want} but the source "
                            f"times give {got}")


def http_get(url, dest=None, timeout=300):
    req = urllib.request.Request(url, headers={"User-Agent": "tessera-tests-compare/1"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        if dest is None:
            return r.read()
        with open(dest, "wb") as f:
            shutil.copyfileobj(r, f)
        return None


def quote_ce(ce):
    return urllib.parse.quote(ce, safe="[]():,*&=.-_~")


def check_selection_ascii(rep, where, base, name, src, sel):
    want = (sel.get("expect") or {}).get(src.tdim)
    if not sel.get("ascii") or want is None:
        return
    tvar = sel["ascii"].split("[", 1)[0]
    url = f"{base}/dap/{name}.ascii?{quote_ce(sel['ascii'])}"
    try:
        body = http_get(url).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        rep.fail(where, f"selection {sel['ascii']!r}: HTTP {e.code} from {url}: {e.read()[:300]!r}")
        return
    except Exception as e:  # noqa: BLE001
        rep.fail(where, f"selection {sel['ascii']!r}: {url}: {e}")
        return
    vals = None
    for line in body.splitlines():
        if line.startswith(tvar + ",") or line.startswith(tvar + "[") and "," in line:
            vals = [float(x) for x in line.split(",")[1:] if x.strip()]
    if vals is None:
        rep.fail(where, f"selection {sel['ascii']!r}: no '{tvar}, ...' line in the .ascii response: {body[:300]!r}")
        return
    expected = raw_times(src.paths, tvar)[want].tolist()
    if vals != expected:
        rep.fail(where, f"selection {sel['ascii']!r}: served {tvar} values {vals!r}, expected {expected!r} "
                        f"(indices {want})")


def check_download(rep, where, url, src, *, src_ds=None, required=None, keep=None):
    fd, tmp = tempfile.mkstemp(suffix=".nc", prefix="tessera-compare-")
    os.close(fd)
    try:
        try:
            http_get(url, tmp)
        except urllib.error.HTTPError as e:
            rep.fail(where, f"HTTP {e.code} from {url}: {e.read()[:300]!r}")
            return
        except Exception as e:  # noqa: BLE001
            rep.fail(where, f"cannot download {url}: {e}")
            return
        with open(tmp, "rb") as f:
            magic = f.read(4)
        if magic[:3] != b"CDF" or magic[3:4] not in (b"\x01", b"\x02", b"\x05"):
            rep.fail(where, f"{url} is not a NetCDF-3 file (starts with {magic!r})")
        try:
            dl = open_decoded(tmp)
            dl_meta = raw_meta(tmp)
        except Exception as e:  # noqa: BLE001
            rep.fail(where, f"cannot open the download of {url}: {e}")
            return
        compare(rep, where, src, dl, dl_meta, src_ds=src_ds, required=required)
    finally:
        if keep:
            shutil.copy(tmp, keep)
        os.unlink(tmp)


# --------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------

def resolve(entry, f):
    if os.path.isabs(f):
        return f
    return os.path.join(entry.get("_root", "."), f)


def load_entry(manifest_path, name):
    with open(manifest_path) as fh:
        m = json.load(fh)
    root = m.get("outdir") or os.path.dirname(os.path.abspath(manifest_path))
    if not os.path.isdir(root):
        root = os.path.dirname(os.path.abspath(manifest_path))
    for d in m["datasets"]:
        if d["name"] == name:
            d = dict(d)
            d["_root"] = root
            return d
    raise SystemExit(f"dataset {name!r} is not in {manifest_path} (has: {', '.join(d['name'] for d in m['datasets'])})")


def source_paths(entry, files=None, corrected=False):
    paths = [resolve(entry, f) for f in (files or entry["files"])]
    if corrected:
        repl = entry.get("replace")
        if not repl:
            raise SystemExit(f"--expect-corrected: dataset {entry.get('name')!r} has no replacement file")
        names = [os.path.basename(p) for p in paths]
        if repl["corrects"] not in names:
            raise SystemExit(f"--expect-corrected: {repl['corrects']} is not among the files")
        i = names.index(repl["corrects"])
        paths[i] = os.path.join(os.path.dirname(paths[i]), repl["file"]) if files else resolve(entry, repl["file"])
    return paths


# --------------------------------------------------------------------------
# the whole check of one served dataset
# --------------------------------------------------------------------------

def check_served(rep, entry, files, *, dap=None, nc_url=None, base=None, expect_corrected=False,
                 served_override=None):
    """dap: DAP2 URL; nc_url: base URL of the .nc download; served_override:
    (label, decoded, meta) to use instead of the DAP2 URL (self-test)."""
    name = entry.get("name", "?")
    src = Sources(source_paths(entry, files, expect_corrected), entry)
    original = Sources(source_paths(entry, files, False), entry) if expect_corrected else None
    refused = [resolve(entry, r["file"]) for r in entry.get("refused") or []]
    check_selection_expectations(rep, f"{name} manifest", src)

    targets = []
    if served_override is not None:
        targets.append(served_override)
    elif dap is not None:
        where = f"{name} dap2"
        try:
            targets.append((where, open_decoded(dap), raw_meta(dap)))
        except Exception as e:  # noqa: BLE001
            rep.fail(where, f"cannot open {dap} with xarray/netCDF4: {type(e).__name__}: {e}")
    for where, srv, meta in targets:
        compare(rep, where, src, srv, meta)
        check_refused(rep, where, src, srv, refused)
        if expect_corrected:
            check_replacement(rep, where, src, original, srv, entry)
        if base is not None and served_override is None:
            for sel in entry.get("selections") or []:
                check_selection_ascii(rep, where, base, name, src, sel)

    if nc_url is not None:
        where = f"{name} .nc"
        check_download(rep, where, nc_url, src)
        for sel in entry.get("selections") or []:
            isel = {k: v for k, v in (sel.get("expect") or {}).items()}
            sub = src.ds.isel(isel)
            req = set(sel.get("vars") or [])
            for v in list(req):
                req |= set(sub[v].coords)
            check_download(rep, f"{name} .nc?{sel['constraint']}", f"{nc_url}?{quote_ce(sel['constraint'])}", src,
                           src_ds=sub, required=req)
    return rep.failures


# --------------------------------------------------------------------------
# self-test
# --------------------------------------------------------------------------

def _nc3_type(dt):
    return {"u1": "i1", "u2": "i2", "u4": "i4"}.get(np.dtype(dt).str[1:], None)


def write_nc(paths, out, *, fmt=None, tdim=None, isel=None, keep=None, drop_vars=(), drop_attrs=None,
             set_attrs=None, drop_globals=(), edit=None):
    """Raw (netCDF4-level) copy of one file, or a merge of several along
    `tdim`, as a server would write it. Variables whose packing differs
    between files are unpacked to float64 with NaN fill. In NetCDF-3
    output unsigned types become signed with _Unsigned = "true".
    `edit(name, array) -> array` changes raw values; drop_attrs/set_attrs:
    {var: [names]} / {var: {name: value}} ("" = global)."""
    drop_attrs = drop_attrs or {}
    set_attrs = set_attrs or {}
    isel = isel or {}
    srcs = [netCDF4.Dataset(p) for p in paths]
    try:
        first = srcs[0]
        fmt = fmt or first.data_model
        nc3 = fmt.startswith("NETCDF3")
        dst = netCDF4.Dataset(out, "w", format=fmt)
        for d, dim in first.dimensions.items():
            n = sum(len(s.dimensions[d]) for s in srcs) if d == tdim else len(dim)
            if d in isel:
                n = len(isel[d])
            dst.createDimension(d, None if (dim.isunlimited() and d not in isel) else n)
        for name, v in first.variables.items():
            if name in drop_vars or (keep is not None and name not in keep):
                continue
            attrs = {k: v.getncattr(k) for k in v.ncattrs()}
            dtype = v.dtype
            if tdim in v.dimensions and len(srcs) > 1:
                parts = []
                pack = ("scale_factor", "add_offset", "_FillValue", "missing_value")
                packs = [tuple(np.asarray(s.variables[name].getncattr(k)).tolist() if k in s.variables[name].ncattrs()
                               else None for k in pack) for s in srcs]
                unpack = len(set(packs)) > 1
                for s in srcs:
                    sv = s.variables[name]
                    sv.set_auto_maskandscale(False)
                    raw = np.asarray(sv[:])
                    if unpack:
                        sa = {k: sv.getncattr(k) for k in sv.ncattrs()}
                        x = raw.astype("f8")
                        for k in ("_FillValue", "missing_value"):
                            if k in sa:
                                x[raw == sa[k]] = np.nan
                        x = x * sa.get("scale_factor", 1.0) + sa.get("add_offset", 0.0)
                        raw = x
                    parts.append(raw)
                data = np.concatenate(parts, axis=v.dimensions.index(tdim))
                if unpack:
                    dtype = np.dtype("f8")
                    for k in pack:
                        attrs.pop(k, None)
                    attrs["_FillValue"] = np.float64(np.nan)
            else:
                v.set_auto_maskandscale(False)
                data = np.asarray(v[...])
            for d, idx in isel.items():
                if d in v.dimensions:
                    data = np.take(data, idx, axis=v.dimensions.index(d))
            if edit is not None:
                data = edit(name, data.copy())
            for k in drop_attrs.get(name, ()):
                attrs.pop(k, None)
            attrs.update(set_attrs.get(name, {}))
            if nc3 and _nc3_type(dtype):
                sdt = np.dtype(_nc3_type(dtype))
                data = data.view(sdt)
                for k, a in list(attrs.items()):
                    if isinstance(a, np.ndarray) and a.dtype == dtype or isinstance(a, np.generic) and a.dtype == dtype:
                        attrs[k] = np.asarray(a).view(sdt)
                attrs["_Unsigned"] = "true"
                dtype = sdt
            fill = attrs.pop("_FillValue", None)
            nv = dst.createVariable(name, dtype, v.dimensions, fill_value=fill if fill is not None else False)
            nv.set_auto_maskandscale(False)
            for k, a in attrs.items():
                nv.setncattr(k, a)
            if v.dimensions:
                nv[:] = data
            else:
                nv.assignValue(data)
        for k in first.ncattrs():
            if k not in drop_globals:
                dst.setncattr(k, first.getncattr(k))
        for k, a in set_attrs.get("", {}).items():
            dst.setncattr(k, a)
        dst.close()
    finally:
        for s in srcs:
            s.close()


class _FakeServer:
    """A loopback HTTP server answering /dap/<name>.nc[?ce] and
    /dap/<name>.ascii?ce from a table, to exercise the download and .ascii
    code paths of this script (it knows nothing of DAP2)."""

    def __init__(self):
        import http.server

        table = self.table = {}

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                key = urllib.parse.unquote(self.path)
                item = table.get(key)
                if item is None:
                    self.send_response(404)
                    self.end_headers()
                    self.wfile.write(f"no {key}".encode())
                    return
                body = open(item, "rb").read() if os.path.exists(str(item)) else str(item).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def self_test(outdir):
    sys.path.insert(0, HERE)
    import sources as sources_mod

    outdir = os.path.abspath(outdir)
    srcdir = os.path.join(outdir, "sources")
    work = os.path.join(outdir, "selftest")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    manifest = sources_mod.generate(srcdir)
    entries = {}
    for d in manifest["datasets"]:
        d = dict(d)
        d["_root"] = manifest["outdir"]
        entries[d["name"]] = d
    nccopy = shutil.which("nccopy")
    results = []

    def run(label, entry, served_paths, *, expect=None, expect_corrected=False, nc=False):
        """served_paths: files standing for the server (opened like the
        sources); expect: None = must pass, else regexes that must each match
        a failure line."""
        rep = Report(quiet=True)
        try:
            if nc:
                fake = nc
                check_served(rep, entry, None, nc_url=f"{fake.base}/dap/{entry['name']}.nc",
                             expect_corrected=expect_corrected, served_override=None)
            else:
                srv = load_sources(served_paths)
                meta = merged_meta(served_paths)
                check_served(rep, entry, None, expect_corrected=expect_corrected,
                             served_override=(f"{entry['name']} served", srv, meta))
        except Exception as e:  # noqa: BLE001
            rep.failures.append(f"EXCEPTION {type(e).__name__}: {e}")
        if expect is None:
            ok = not rep.failures
        else:
            ok = bool(rep.failures) and all(any(re.search(x, f) for f in rep.failures) for x in expect)
        results.append((label, ok))
        status = "ok  " if ok else "BAD "
        want = "must pass" if expect is None else "must fail"
        print(f"{status} {label} ({want}): {len(rep.failures)} failure(s)")
        for f in rep.failures:
            print(f"       {f}")
        if expect is not None and not ok:
            for x in expect:
                if not any(re.search(x, f) for f in rep.failures):
                    print(f"       (no failure matched {x!r})")

    def copies(entry, tag, files=None, **kw):
        d = os.path.join(work, tag)
        os.makedirs(d, exist_ok=True)
        out = []
        for f in files or entry["files"]:
            p = resolve(entry, f)
            q = os.path.join(d, os.path.basename(p))
            if kw:
                write_nc([p], q, **kw)
            elif nccopy:
                subprocess.run([nccopy, p, q], check=True)
            else:
                shutil.copy(p, q)
            out.append(q)
        return out

    # 1. faithful copies (nccopy) of every dataset: must pass
    for name, e in entries.items():
        run(f"{name}: nccopy copies of the sources", e, copies(e, f"nccopy-{name}"))

    # 2. one merged NetCDF-3 file per dataset (what a .nc download holds),
    #    fetched over a loopback HTTP server: must pass, selections too
    fake = _FakeServer()
    try:
        for name, e in entries.items():
            paths = [resolve(e, f) for f in e["files"]]
            tdim = Sources(paths, e).tdim
            merged = os.path.join(work, f"{name}.nc")
            write_nc(paths, merged, fmt="NETCDF3_64BIT_OFFSET", tdim=tdim)
            fake.table[f"/dap/{name}.nc"] = merged
            for k, sel in enumerate(e.get("selections") or []):
                sub = os.path.join(work, f"{name}.sel{k}.nc")
                src = Sources(paths, e)
                req = set(sel["vars"])
                for v in sel["vars"]:
                    req |= set(src.ds[v].coords)
                req |= {b for b, c in src.bounds.items() if c in req}
                write_nc(paths, sub, fmt="NETCDF3_64BIT_OFFSET", tdim=tdim, isel=sel["expect"], keep=req)
                fake.table[f"/dap/{name}.nc?{sel['constraint']}"] = sub
            run(f"{name}: merged NetCDF-3 download over HTTP (--nc path)", e, None, nc=fake)
        # the .ascii selection path, against canned answers
        e = entries["day360"]
        src = Sources([resolve(e, f) for f in e["files"]], e)
        for sel in e["selections"]:
            vals = raw_times(src.paths, "time")[sel["expect"]["time"]]
            fake.table[f"/dap/day360.ascii?{sel['ascii']}"] = "Dataset: day360\ntime, " + ", ".join(
                repr(float(v)) for v in vals) + "\n"
        rep = Report(quiet=True)
        for sel in e["selections"]:
            check_selection_ascii(rep, "day360 dap2", fake.base, "day360", src, sel)
        ok = not rep.failures
        results.append(("day360: .ascii time selections parsed", ok))
        print(f"{'ok  ' if ok else 'BAD '} day360: .ascii time selections parsed (must pass): {rep.failures}")
        fake.table[f"/dap/day360.ascii?{e['selections'][0]['ascii']}"] = "Dataset: day360\ntime, 14.5\n"
        rep = Report(quiet=True)
        check_selection_ascii(rep, "day360 dap2", fake.base, "day360", src, e["selections"][0])
        ok = any("served time values [14.5], expected [13.5]" in f for f in rep.failures)
        results.append(("day360: wrong .ascii time selection caught", ok))
        print(f"{'ok  ' if ok else 'BAD '} day360: wrong .ascii time selection caught (must fail): {rep.failures}")
    finally:
        fake.close()

    # 3. replacement
    era5 = entries["era5"]
    repl = era5["replace"]
    corrected_files = [repl["file"] if f == repl["corrects"] else f for f in era5["files"]]
    run("era5: --expect-corrected, server has the replacement", era5, copies(era5, "era5-corr", corrected_files),
        expect_corrected=True)
    run("era5: --expect-corrected, server still has the original", era5, copies(era5, "nccopy-era5"),
        expect_corrected=True, expect=[r"t at .*2023-01-16 06:00:00.*still equal the original.*replacement not applied",
                                       r"^FAIL \[era5 served\] t: values differ at index \(5, "])
    cmip = entries["cmip"]
    crepl = cmip["replace"]
    run("cmip: --expect-corrected, server has the replacement", cmip,
        copies(cmip, "cmip-corr", [crepl["file"] if f == crepl["corrects"] else f for f in cmip["files"]]),
        expect_corrected=True)

    # 4. corrupted copies: each must fail, with the right message
    def ulp(var, index):
        def f(name, a):
            if name == var:
                a[index] = np.nextafter(a[index], np.inf)
            return a
        return f

    run("cmip: lon shifted by 1 ulp", cmip, copies(cmip, "bad-lon", edit=ulp("lon", 3)),
        expect=[r"lon: values not bit for bit equal at index \(3,\): served np\.float64\(7\.000000000000001\)"])

    def one_value(name, a):
        if name == "tas":
            a[4, 10, 7] += np.float32(0.25)
        return a

    bad = copies(cmip, "bad-tas", [cmip["files"][0]])
    bad += copies(cmip, "bad-tas", [cmip["files"][1]], edit=one_value)
    run("cmip: one tas value changed", cmip, bad,
        expect=[r"tas: values differ at index \(16, 10, 7\): served np\.float32\(.*\), source np\.float32\("])
    run("cmip: time_bnds dropped", cmip, copies(cmip, "bad-tbnds", drop_vars=("time_bnds",)),
        expect=[r"time_bnds: bounds of time in the sources, not served",
                r"time: attribute bounds='time_bnds' names time_bnds, which the served dataset does not have"])
    run("cmip: height dropped", cmip, copies(cmip, "bad-height", drop_vars=("height",)),
        expect=[r"height: scalar coordinate in the sources, not served",
                r"tas: its scalar coordinate height is not served",
                r"tas: attribute coordinates='height' names height"])
    run("cmip: external_variables dropped", cmip, copies(cmip, "bad-ext", drop_globals=("external_variables",)),
        expect=[r"global: attribute external_variables='areacella' is missing",
                r"tas: attribute cell_measures='area: areacella' names areacella.*external_variables"])
    run("cmip: calendar changed to 360_day", cmip,
        copies(cmip, "bad-cal", set_attrs={"time": {"calendar": "360_day"}}),
        expect=[r"time: attribute calendar differs: served '360_day', source 'noleap'",
                r"time: times differ at index \(0,\).*calendar class Datetime360Day served, DatetimeNoLeap"])
    dem = entries["dem30s"]
    run("dem30s: lon shifted by 1 ulp", dem, copies(dem, "bad-dem-lon", edit=ulp("lon", 0)),
        expect=[r"lon: values not bit for bit equal at index \(0,\)"])
    dem_naive = [None]

    def naive_lon(name, a):
        if name == "lon":
            dem_naive[0] = a.copy()
            a[:] = a[0] + np.arange(a.size) * (1.0 / 120.0)
        return a

    run("dem30s: lon as first + i*step", dem, copies(dem, "bad-dem-step", edit=naive_lon),
        expect=[r"lon: values not bit for bit equal"])
    polar = entries["polar"]
    run("polar: crs dropped", polar, copies(polar, "bad-crs", drop_vars=("crs",)),
        expect=[r"crs: grid mapping of ice_conc in the sources, not served",
                r"ice_conc: attribute grid_mapping='crs' names crs"])
    run("polar: lat/lon not coordinates of ice_conc", polar,
        copies(polar, "bad-coords", drop_attrs={"ice_conc": ["coordinates"]}),
        expect=[r"ice_conc: lat \(2-D coordinate\) is served but is not a coordinate of ice_conc"])
    run("polar: crs attribute changed", polar,
        copies(polar, "bad-crsattr", set_attrs={"crs": {"standard_parallel": 71.0}}),
        expect=[r"crs: attribute standard_parallel differs: served 71\.0 \(float64\), source 70\.0 \(float64\)"])

    def fill_cell(name, a):
        if name == "t":
            i = tuple(np.argwhere(a == -32767)[0])
            a[i] = 1234
        return a

    e5 = era5["files"]
    bad = copies(era5, "bad-mask", [e5[0]]) + copies(era5, "bad-mask", [e5[1]], edit=fill_cell) + \
        copies(era5, "bad-mask", e5[2:])
    run("era5: a missing t cell served as a value", era5, bad, expect=[r"t: served np\.float64\(.*\) at index \(4, "
                                                                      r".*where the source is missing"])
    e5u = entries["era5_unpacked"]
    bad = copies(e5u, "bad-offset", e5[:2]) + copies(e5u, "bad-offset", [e5[2]], set_attrs={
        "t": {"add_offset": raw_meta(resolve(e5u, e5[2]))["vars"]["t"]["attrs"]["add_offset"] + 40.0}}) + \
        copies(e5u, "bad-offset", e5[3:])
    run("era5_unpacked: t 40 K off in one file", e5u, bad,
        expect=[r"t: values differ at index \(8, 0, 0, 0\).*\|diff\| 40\.0"])
    bad = copies(era5, "bad-refused") + copies(era5, "bad-refused", ["era5_degC.nc"])
    run("era5: the degC file was ingested", era5, bad, expect=[r"refused file era5_degC\.nc: its times are served"])

    n_bad = sum(1 for _, ok in results if not ok)
    print(f"\nself-test: {len(results) - n_bad} of {len(results)} cases behaved as expected")
    return 1 if n_bad else 0


# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", help="manifest written by sources.py")
    ap.add_argument("--base", help="server base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--dataset", help="dataset name (in the manifest and on the server)")
    ap.add_argument("--files", nargs="+", help="source files in ingest order (default: the manifest's)")
    ap.add_argument("--nc", action="store_true", help="also check the NetCDF download(s)")
    ap.add_argument("--no-dap", action="store_true", help="skip the DAP2 checks (with --nc)")
    ap.add_argument("--expect-corrected", action="store_true",
                    help="the server holds the manifest's replacement file in place of the one it corrects")
    ap.add_argument("--self-test", metavar="OUTDIR", help="check this script against copies of generated sources")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test(a.self_test)
    if not a.dataset or not a.base or not (a.manifest or a.files):
        ap.print_usage(sys.stderr)
        print("compare.py: --dataset, --base and --manifest (or --files) are required", file=sys.stderr)
        return 2
    entry = load_entry(a.manifest, a.dataset) if a.manifest else {"name": a.dataset, "_root": "."}
    files = [os.path.abspath(f) for f in a.files] if a.files else None
    base = a.base.rstrip("/")
    rep = Report()
    check_served(rep, entry, files, dap=None if a.no_dap else f"{base}/dap/{a.dataset}", base=base,
                 nc_url=f"{base}/dap/{a.dataset}.nc" if a.nc else None, expect_corrected=a.expect_corrected)
    if rep.failures:
        print(f"{a.dataset}: {len(rep.failures)} failure(s)")
        return 1
    print(f"{a.dataset}: no differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())

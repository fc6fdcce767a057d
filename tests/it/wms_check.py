#!/usr/bin/env python3
"""tessera's WMS through OWSLib, checked against the sources' fill masks.

    wms_check.py write OUTDIR            writes global.nc (and the polar files
                                         through tests/archives/sources.py)
    wms_check.py check BASE OUTDIR       drives BASE/wms and BASE/dap

The global source is a 0.5 degree grid stored south first (latitude
ascending) on 0..360 longitudes, so that a north-up map in -180..180 needs
both a flip and a wrap; its fill has a shape that tells north from south
and east from west (an Arctic cap and a block over East Asia). The polar
source is NSIDC-0051 on EPSG:3413, with its pole hole, land and flags
outside valid_range.
"""

import io
import os
import sys
import urllib.error
import urllib.request

import netCDF4
import numpy as np
from owslib.util import ServiceException
from owslib.wms import WebMapService
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "archives"))
import sources  # noqa: E402  (the polar product and its projection)

FILL = np.float32(-999.0)


def global_values():
    lat = -89.75 + 0.5 * np.arange(360)
    lon = 0.25 + 0.5 * np.arange(720)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    sst = (30.0 - np.abs(la) / 3.0 + 0.01 * lo).astype("f4")
    fill = (la > 80.0) | ((lo > 100.0) & (lo < 140.0) & (la > 20.0) & (la < 50.0))
    sst[fill] = FILL
    return lat, lon, sst


def write(out):
    os.makedirs(out, exist_ok=True)
    lat, lon, sst = global_values()
    with netCDF4.Dataset(os.path.join(out, "global.nc"), "w") as nc:
        nc.createDimension("time", 1)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2020-01-01"
        t[:] = [0.0]
        v = nc.createVariable("lat", "f8", ("lat",))
        v.units = "degrees_north"
        v[:] = lat
        v = nc.createVariable("lon", "f8", ("lon",))
        v.units = "degrees_east"
        v[:] = lon
        v = nc.createVariable("sst", "f4", ("time", "lat", "lon"), fill_value=FILL)
        v.units = "degC"
        v.set_auto_mask(False)
        v[0] = sst
    import datetime
    for i in (0, 1):
        day = datetime.date(2023, 3, 1) + datetime.timedelta(days=i)
        sources.write_polar(os.path.join(out, f"polar_{i + 1}.nc"), day, f"polar-{i}")
    sources.write_gaussian(os.path.join(out, "gauss.nc"), datetime.date(2023, 1, 15), "gauss-0")


def alpha_of(response):
    img = Image.open(io.BytesIO(response.read()))
    assert img.format == "PNG", img.format
    a = np.asarray(img.convert("RGBA"))
    return a[..., 3] == 0, a


def agree(got, want, what, at_least=1.0):
    share = float((got == want).mean())
    print(f"{what}: {share:.4f} of pixels match the fill mask")
    assert share >= at_least, f"{what}: transparency matches the fill mask at {share:.4f} of pixels"
    return share


def polar_mask_at(lat, lon, x, y, mask):
    """Whether the polar grid's cell nearest each (lat, lon) is fill, or
    the point is off the grid: what a map there must leave transparent."""
    px, py = sources.polar_stereo_forward(lat, lon)
    ci = np.rint((px - x[0]) / 25000.0).astype(int)
    ri = np.rint((py - y[0]) / -25000.0).astype(int)
    inside = (ci >= 0) & (ci < x.size) & (ri >= 0) & (ri < y.size)
    want = np.ones(lat.shape, bool)
    want[inside] = mask[ri[inside], ci[inside]]
    return want


def raw(url):
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def check(base, out):
    wms = WebMapService(base + "/wms", version="1.3.0")
    assert wms.identification.type == "WMS" and wms.identification.version == "1.3.0"
    assert {"global/sst", "polar/ice_conc"} <= set(wms.contents), list(wms.contents)
    g, p = wms["global/sst"], wms["polar/ice_conc"]
    assert {"EPSG:4326", "CRS:84", "EPSG:3857"} <= set(g.crsOptions), g.crsOptions
    assert "EPSG:3413" in p.crsOptions, p.crsOptions
    assert {"viridis", "magma", "cividis"} <= set(g.styles), g.styles
    assert g.timepositions == ["2020-01-01T00:00:00.000Z"], g.timepositions
    assert p.timepositions == ["2023-03-01T00:00:00.000Z", "2023-03-02T00:00:00.000Z"], p.timepositions
    w, s, e, n = p.boundingBoxWGS84
    assert n == 90.0 and s > 60.0 and (w, e) == (-180.0, 180.0), p.boundingBoxWGS84
    assert [round(x) for x in g.boundingBoxWGS84] == [-180, -90, 180, 90], g.boundingBoxWGS84
    ops = [o.name for o in wms.operations]
    assert "GetMap" in ops and "GetCapabilities" in ops, ops

    lat, lon, sst = global_values()
    fill = sst == FILL
    # North up, -180..180: the stored rows reversed, the columns rolled by
    # half a turn. One pixel per cell, on cell centres: exact.
    want = np.roll(fill[::-1], 360, axis=1)
    for srs, bbox in [("EPSG:4326", (-180, -90, 180, 90)), ("CRS:84", (-180, -90, 180, 90))]:
        got, rgba = alpha_of(wms.getmap(layers=["global/sst"], styles=["viridis"], srs=srs, bbox=bbox, size=(720, 360),
                                        format="image/png", transparent=True))
        agree(got, want, f"global {srs}")
        # Warm equator, cold high latitudes: the equator row is the
        # brightest (viridis: yellow) in the west column.
        col = rgba[:, 10, :3].astype(int).sum(axis=1)
        assert col[180] > col[20] and col[180] > col[340], "warm at the equator, north up"
    # Not transparent: the background colour fills.
    _, rgba = alpha_of(wms.getmap(layers=["global/sst"], styles=["magma"], srs="EPSG:4326", bbox=(-180, -90, 180, 90),
                                  size=(720, 360), format="image/png", transparent=False, bgcolor="#FF0000"))
    assert (rgba[..., 3] == 255).all() and tuple(rgba[0, 0, :3]) == (255, 0, 0), rgba[0, 0]

    # Web Mercator: each pixel's centre unprojected, its nearest cell.
    m = 20037508.342789244
    size = 512
    got, _ = alpha_of(wms.getmap(layers=["global/sst"], styles=[""], srs="EPSG:3857", bbox=(-m, -m, m, m),
                                 size=(size, size), format="image/png", transparent=True))
    xs = -m + (np.arange(size) + 0.5) * 2 * m / size
    ys = m - (np.arange(size) + 0.5) * 2 * m / size
    lo = np.degrees(xs / 6378137.0) % 360.0
    la = np.degrees(np.arctan(np.sinh(ys / 6378137.0)))
    rows = np.clip(np.rint((la + 89.75) / 0.5).astype(int), 0, 359)
    cols = np.clip(np.rint((lo - 0.25) / 0.5).astype(int), 0, 719)
    agree(got, fill[rows[:, None], cols[None, :]], "global EPSG:3857", 0.995)

    # The polar grid in its own CRS, one pixel per cell: its mask exactly,
    # as gridded (y descending: row 0 is the grid's first row).
    src = netCDF4.Dataset(os.path.join(out, "polar_1.nc"))
    ice = src["ice_conc"][0]
    pmask = np.ma.getmaskarray(ice)
    x, y = src["x"][:], src["y"][:]
    bbox = (x.min() - 12500, y.min() - 12500, x.max() + 12500, y.max() + 12500)
    got, _ = alpha_of(wms.getmap(layers=["polar/ice_conc"], styles=["cividis"], srs="EPSG:3413", bbox=bbox,
                                 size=(x.size, y.size), format="image/png", transparent=True, time="2023-03-01T00:00:00Z"))
    agree(got, pmask, "polar EPSG:3413")
    assert pmask.any() and not pmask.all()
    # ... and in EPSG:4326: each pixel's centre projected to the grid.
    width, height = 720, 120
    lons = -180 + (np.arange(width) + 0.5) * 360 / width
    lats = 90 - (np.arange(height) + 0.5) * 30 / height
    LO, LA = np.meshgrid(lons, lats)
    want = polar_mask_at(LA, LO, x, y, pmask)
    got, _ = alpha_of(wms.getmap(layers=["polar/ice_conc"], styles=[""], srs="EPSG:4326", bbox=(-180, 60, 180, 90),
                                 size=(width, height), format="image/png", transparent=True, time="2023-03-01T00:00:00Z"))
    agree(got, want, "polar EPSG:4326", 0.99)
    # ... and in Web Mercator, as far north as it goes.
    width, height = 512, 256
    y0, y1 = 8_000_000.0, 19_000_000.0
    xs = -m + (np.arange(width) + 0.5) * 2 * m / width
    ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    LO, LA = np.meshgrid(np.degrees(xs / 6378137.0), np.degrees(np.arctan(np.sinh(ys / 6378137.0))))
    want = polar_mask_at(LA, LO, x, y, pmask)
    got, _ = alpha_of(wms.getmap(layers=["polar/ice_conc"], styles=[""], srs="EPSG:3857", bbox=(-m, y0, m, y1),
                                 size=(width, height), format="image/png", transparent=True, time="2023-03-01T00:00:00Z"))
    agree(got, want, "polar EPSG:3857", 0.99)

    # An irregular axis: the N48 Gaussian latitudes (north first, on 0..360
    # longitudes), one pixel a degree, grey levels on a given range. Each
    # pixel shows the cell nearest its centre.
    g = netCDF4.Dataset(os.path.join(out, "gauss.nc"))
    glat, glon, t2m = g["lat"][:], g["lon"][:], g["t2m"][0]
    lo, hi = float(t2m.min()), float(t2m.max())
    _, rgba = alpha_of(wms.getmap(layers=["gauss/t2m"], styles=["greys"], srs="CRS:84", bbox=(-180, -90, 180, 90), size=(360, 180),
                                  format="image/png", transparent=True, time="2023-01-15T00:00:00Z", colorscalerange=f"{lo},{hi}"))
    lats = 90 - (np.arange(180) + 0.5)
    lons = (-180 + (np.arange(360) + 0.5)) % 360
    rows = np.abs(lats[:, None] - glat[None, :]).argmin(axis=1)
    cols = np.rint(lons / 1.875).astype(int) % glon.size
    t = (t2m[rows][:, cols] - lo) / (hi - lo)
    idx = 1 + np.minimum((t * 255).astype(int), 254)
    grey = np.minimum(((idx - 1 + 0.5) / 255 * 256).astype(int), 255)
    edge = abs(glat[0]) + (abs(glat[0]) - abs(glat[1])) / 2
    inside = np.abs(lats) <= edge
    diff = np.abs(rgba[inside, :, 0].astype(int) - grey[inside])
    assert diff.max() <= 1, f"Gaussian grid: grey levels off by up to {diff.max()}"
    assert (rgba[~inside, :, 3] == 0).all() and (rgba[inside, :, 3] == 255).all(), "beyond the outermost latitudes: transparent"
    print(f"Gaussian grid: {inside.sum() * 360} pixels, grey levels within {diff.max()} of the nearest cells'")

    # The legend.
    leg = Image.open(io.BytesIO(raw(f"{base}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic&LAYER=global/sst&STYLE=magma&FORMAT=image/png")[2]))
    assert leg.size == (100, 300), leg.size

    # A PNG of a DAP constraint: every other cell, north up.
    status, ctype, body = raw(f"{base}/dap/global.png?sst[0][0:2:359][0:2:719]")
    assert status == 200 and ctype == "image/png", (status, ctype)
    got, _ = alpha_of(io.BytesIO(body))
    agree(got, fill[0::2, 0::2][::-1], "DAP constraint PNG")

    # Bad parameters: WMS service exceptions, through OWSLib and on the wire.
    for kwargs, code in [
        (dict(layers=["nope/sst"]), "LayerNotDefined"),
        (dict(layers=["global/sst"], srs="EPSG:999999"), "InvalidCRS"),
        (dict(layers=["global/sst"], styles=["rainbow"]), "StyleNotDefined"),
        (dict(layers=["global/sst"], time="1999-01-01T00:00:00Z"), "InvalidDimensionValue"),
        (dict(layers=["global/sst"], format="image/gif"), "InvalidFormat"),
    ]:
        args = dict(styles=[""], srs="EPSG:4326", bbox=(-180, -90, 180, 90), size=(64, 32), format="image/png")
        args.update(kwargs)
        try:
            wms.getmap(**args)
            raise AssertionError(f"{kwargs} was drawn")
        except ServiceException as e:
            assert code in str(e) or code in raw_code(base, args), (kwargs, str(e))
    for q, code in [
        ("REQUEST=GetMap&VERSION=1.3.0&LAYERS=global/sst&STYLES=&CRS=EPSG:4326&BBOX=1,2,3&WIDTH=10&HEIGHT=10&FORMAT=image/png", None),
        ("REQUEST=GetMap&VERSION=1.3.0&LAYERS=global/sst&STYLES=&CRS=EPSG:4326&BBOX=-90,-180,90,180&WIDTH=0&HEIGHT=10&FORMAT=image/png", None),
        ("REQUEST=GetFeatureInfo&VERSION=1.3.0", "OperationNotSupported"),
    ]:
        status, ctype, body = raw(f"{base}/wms?SERVICE=WMS&{q}")
        text = body.decode()
        assert status == 400 and "xml" in ctype and "<ServiceExceptionReport" in text, (q, status, ctype, text)
        assert code is None or f'code="{code}"' in text, (q, text)
    print("ok")


def raw_code(base, args):
    """The exception report of a GetMap as the wire carries it."""
    from urllib.parse import urlencode
    w, h = args["size"]
    q = dict(SERVICE="WMS", VERSION="1.3.0", REQUEST="GetMap", LAYERS=",".join(args["layers"]), STYLES=",".join(args["styles"]),
             CRS=args["srs"], BBOX="-90,-180,90,180", WIDTH=w, HEIGHT=h, FORMAT=args["format"])
    if "time" in args:
        q["TIME"] = args["time"]
    return raw(f"{base}/wms?{urlencode(q)}")[2].decode()


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])

#!/usr/bin/env python3
"""tessera's STAC API through pystac-client.

    stac_check.py BASE SOURCE      drives BASE/stac; SOURCE is the fixture's
                                   acc.nc, which the downloads must equal

Prints "ok" when every check passes; an assertion names what did not.
"""

import json
import os
import sys
import tempfile
import urllib.error
import urllib.request

import netCDF4
import numpy as np
from pystac_client import Client


def close(a, b, tol=1e-6):
    return all(abs(x - y) <= tol for x, y in zip(a, b)) and len(a) == len(b)


def fetch_error(url, body=None):
    """Status and JSON body of a request that must fail."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        assert e.headers.get("Content-Type", "").startswith("application/json"), (url, e.headers.get("Content-Type"))
        doc = json.loads(e.read())
        assert set(doc) >= {"code", "description"}, doc
        return e.code, doc
    raise AssertionError(f"{url} {body} did not fail")


def collections(client):
    cols = {c.id: c for c in client.get_collections()}
    assert {"acc", "types", "levels"} <= set(cols), sorted(cols)
    acc = cols["acc"]
    assert close(acc.extent.spatial.bboxes[0], [100.0, 0.0, 180.0, 60.0], 1e-4), acc.extent.spatial.bboxes
    lo, hi = acc.extent.temporal.intervals[0]
    assert (lo.isoformat(), hi.isoformat()) == ("2010-01-01T12:00:00+00:00", "2010-01-03T12:00:00+00:00"), (lo, hi)
    dims = acc.extra_fields["cube:dimensions"]
    assert dims["lon"]["axis"] == "x" and dims["lat"]["axis"] == "y" and dims["time"]["type"] == "temporal", dims
    assert len(dims["time"]["values"]) == 3 and dims["lon"]["reference_system"] == 4326
    assert abs(dims["lon"]["step"] - 0.1) < 1e-6 and abs(dims["lat"]["step"] + 0.1) < 1e-6, dims
    cvars = acc.extra_fields["cube:variables"]
    assert cvars["sst"]["dimensions"] == ["time", "lat", "lon"] and cvars["mask"]["dimensions"] == ["lat", "lon"], cvars
    assert "https://stac-extensions.github.io/datacube/v2.2.0/schema.json" in acc.stac_extensions
    assert "netcdf" in acc.assets and "mask" in acc.assets["netcdf"].href, acc.assets
    assert any(l.rel == "alternate" and l.href.endswith("/datasets/acc") for l in acc.links)
    # The UTM grid: a box of a few degrees in the northern hemisphere.
    t = cols["types"].extent.spatial.bboxes[0]
    assert -180 <= t[0] < t[2] <= 180 and 0 <= t[1] < t[3] <= 90 and t[2] - t[0] < 20, t
    assert cols["types"].extra_fields["cube:dimensions"]["x"]["reference_system"] != 4326
    z = [d for d in cols["levels"].extra_fields["cube:dimensions"].values() if d.get("axis") == "z"]
    assert len(z) == 1 and len(z[0]["values"]) > 1, cols["levels"].extra_fields["cube:dimensions"]
    return acc


def download_matches(item, source):
    href = item.assets["netcdf"].href
    assert item.assets["netcdf"].media_type == "application/x-netcdf"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "slice.nc")
        with urllib.request.urlopen(href) as r, open(path, "wb") as f:
            f.write(r.read())
        with netCDF4.Dataset(path) as got, netCDF4.Dataset(source) as src:
            for nc in (got, src):
                nc.set_auto_maskandscale(False)
            for v in ("sst", "chl"):
                a, b = got[v][:], src[v][1:2]
                assert a.shape == b.shape == (1, 600, 800), (v, a.shape, b.shape)
                np.testing.assert_array_equal(a, b, err_msg=v)
            np.testing.assert_array_equal(got["lat"][:], src["lat"][:])
            np.testing.assert_array_equal(got["lon"][:], src["lon"][:])
            assert float(got["time"][0]) == float(src["time"][1])


def main(base, source):
    client = Client.open(base + "/stac")
    assert client.id == "tessera"
    collections(client)

    for method in ("POST", "GET"):
        found = list(client.search(method=method, collections=["acc"], bbox=[120, 10, 130, 20],
                                   datetime="2010-01-02T00:00:00Z/2010-01-02T23:59:59Z").items())
        assert [i.id for i in found] == ["acc-20100102T120000"], (method, [i.id for i in found])
        item = found[0]
        assert item.datetime.isoformat() == "2010-01-02T12:00:00+00:00" and item.collection_id == "acc"
        assert close(item.bbox, [100.0, 0.0, 180.0, 60.0], 1e-4)
    download_matches(item, source)

    outside = list(client.search(collections=["acc"], bbox=[-50, -50, -40, -40]).items())
    assert outside == [], [i.id for i in outside]
    everything = [i.id for i in client.search(bbox=[-180, -90, 180, 90]).items()]
    assert {"acc-20100101T120000", "types-20200229T060000"} <= set(everything), everything

    for method in ("POST", "GET"):
        s = client.search(method=method, collections=["acc"], limit=1)
        pages = list(s.pages())
        ids = [i.id for p in pages for i in p.items]
        assert len(pages) == 3 and ids == ["acc-20100101T120000", "acc-20100102T120000", "acc-20100103T120000"], (method, ids)
    # The collection's own items, paged through its next links.
    col = client.get_collection("acc")
    ids = [i.id for i in col.get_items()]
    assert len(ids) == 3, ids
    one = col.get_item("acc-20100103T120000")
    assert one is not None and one.properties["cf:time"].startswith("2010-01-03"), one

    stac = base + "/stac"
    for url, body in [
        (stac + "/search?bbox=1,2,3", None),
        (stac + "/search?datetime=yesterday", None),
        (stac + "/search?limit=0", None),
        (stac + "/collections/acc/items?bbox=1,2,3", None),
        (stac + "/search", {"bbox": [1, 2, 3]}),
        (stac + "/search", {"datetime": "yesterday"}),
    ]:
        code, doc = fetch_error(url, body)
        assert code == 400, (url, body, code, doc)
    for url in (stac + "/collections/nope", stac + "/collections/nope/items", stac + "/collections/acc/items/acc-1"):
        code, doc = fetch_error(url)
        assert code == 404, (url, code, doc)
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

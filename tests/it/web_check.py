#!/usr/bin/env python3
"""tessera's web pages in a real browser: Debian's Chromium, headless,
driven through chromedriver by selenium.

    web_check.py BASE SRCDIR

BASE serves `acc` (tests/it/common/source.rs's source: 3 daily steps,
800 x 600 cells over 100..180 E, 0..60 N, latitude stored north first)
`polar` (NSIDC-0051 on EPSG:3413, 2 steps) and `levels` (a 4-D
temp(time, depth, lat, lon) on depths 0, 10 and 50 m), ingested from
SRCDIR. With JavaScript: search the index (results change without a
reload), open `acc` with the keyboard, check its map against the
source's fill mask, move the time slider, draw a box on the map, build a
subset and download its .nc, whose values must be the source's; the
polar page draws in EPSG:3413; the level picker redraws the map at
another depth. Without JavaScript: the same search and
subset by plain form submission give the same links. Throughout, no
request leaves BASE's host and the console logs no error.
"""

import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

import netCDF4
import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, SRC = sys.argv[1], sys.argv[2]
HOST = urllib.parse.urlparse(BASE).netloc
FILL = np.float32(-999.0)
REQUESTS = [0]


def browser(javascript=True):
    o = webdriver.ChromeOptions()
    o.binary_location = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
    for a in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,1600", "--user-data-dir=" + tempfile.mkdtemp(),
    ]:
        o.add_argument(a)
    if not javascript:
        o.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(os.environ.get("TESSERA_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=o)


def wait(d, cond, what, timeout=20):
    try:
        return WebDriverWait(d, timeout).until(lambda d: cond(d))
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; page: {d.current_url}")


def clean_logs(d, where):
    """No console error, and every request to BASE's host."""
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"{where}: console errors: {severe}"
    for e in d.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m["method"] != "Network.requestWillBeSent":
            continue
        url = m["params"]["request"]["url"]
        # The browser's own pages (chrome://new-tab-page...) are not the
        # page's; anything on the network is.
        if urllib.parse.urlparse(url).scheme not in ("http", "https", "ws", "wss"):
            continue
        assert urllib.parse.urlparse(url).netloc == HOST, f"{where}: a request to another host: {url}"
        REQUESTS[0] += 1


def names(d):
    return [a.get_attribute("href").rsplit("/", 1)[1] for a in d.find_elements(By.CSS_SELECTOR, "li.dataset h2 a")]


def set_field(el, value):
    """Types into a field as a person does (select all, delete, type), so
    that the page sees input events."""
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.BACKSPACE)
    if value != "":
        el.send_keys(value)


def fill_subset(d):
    """Types the subset the checks download: 120..140 E, 20..40 N, 2 and
    3 January, every second cell."""
    for k, v in {"west": "120", "south": "20", "east": "140", "north": "40"}.items():
        set_field(d.find_element(By.ID, k), v)
    form = d.find_element(By.ID, "subset-form")
    set_field(form.find_element(By.NAME, "start"), "2010-01-02")
    set_field(form.find_element(By.NAME, "end"), "2010-01-03")
    set_field(form.find_element(By.NAME, "stride"), "2")
    return form


def picture(d, sel):
    """The image as the browser decoded it, as an RGBA array."""
    wait(d, lambda d: d.execute_script(f"const i = document.querySelector('{sel}'); return i.complete && i.naturalWidth > 0"), f"{sel} to load")
    url = d.execute_script(f"""
        const i = document.querySelector('{sel}'); const c = document.createElement('canvas');
        c.width = i.naturalWidth; c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);
        return c.toDataURL('image/png');""")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def source():
    with netCDF4.Dataset(os.path.join(SRC, "acc.nc")) as nc:
        nc.set_auto_mask(False)
        return nc["lat"][:].astype("f8"), nc["lon"][:].astype("f8"), nc["time"][:], nc["sst"][:]


def mask_agreement(img, bbox, lat, lon, sst_t):
    """Share of pixels whose transparency is the fill of the source cell
    under their centre (a CRS:84 map of the grid's box)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = bbox
    plon = x0 + (np.arange(w) + 0.5) * (x1 - x0) / w
    plat = y1 - (np.arange(h) + 0.5) * (y1 - y0) / h
    ci = np.abs(lon[None, :] - plon[:, None]).argmin(axis=1)
    rj = np.abs(lat[None, :] - plat[:, None]).argmin(axis=1)
    fill = sst_t[np.ix_(rj, ci)] == FILL
    return float(((img[..., 3] == 0) == fill).mean())


def subset_values_match(url, lat, lon, times, sst, box, t_range, stride):
    """The .nc at `url` holds the source's cells inside `box`, every
    `stride`-th, for the steps in `t_range`, bit for bit."""
    with urllib.request.urlopen(url) as r:
        body = r.read()
    with netCDF4.Dataset("subset.nc", mode="r", memory=body) as nc:
        nc.set_auto_mask(False)
        glat, glon, gtime, gsst = nc["lat"][:], nc["lon"][:], nc["time"][:], nc["sst"][:]
    west, south, east, north = box
    j = np.nonzero((lat >= south) & (lat <= north))[0][::stride]
    i = np.nonzero((lon >= west) & (lon <= east))[0][::stride]
    assert np.array_equal(glat, lat[j]), (glat, lat[j])
    assert np.array_equal(glon, lon[i]), (glon, lon[i])
    assert np.array_equal(gtime, times[t_range[0]:t_range[1]]), gtime
    want = sst[t_range[0]:t_range[1]][:, j][:, :, i]
    assert gsst.shape == want.shape and np.array_equal(gsst.view("u4"), want.view("u4")), "subset values differ from the source"
    return gsst


def snippets_give(d, want):
    """The page's xarray and nccopy snippets, run as they are, write the
    subset's values."""
    labels = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".snippet-head span")]
    code = {label: d.find_element(By.ID, f"snippet-{i}").get_attribute("textContent") for i, label in enumerate(labels)}
    here = os.getcwd()
    for label in ("Python (xarray)", "nccopy"):
        work = tempfile.mkdtemp()
        os.chdir(work)
        try:
            if label == "nccopy":
                subprocess.run(code[label], shell=True, check=True)
            else:
                exec(code[label], {})
            with netCDF4.Dataset(os.path.join(work, "acc_subset.nc")) as nc:
                nc.set_auto_mask(False)
                got = nc["sst"][:]
        finally:
            os.chdir(here)
        assert np.array_equal(got.view("u4"), want.view("u4")), f"the {label} snippet gives other values"
        print(f"snippet {label}: the subset's values")


def with_javascript(lat, lon, times, sst):
    d = browser()
    try:
        d.get(BASE + "/")
        assert names(d) == ["acc", "levels", "polar"], names(d)
        assert "test source" in d.find_element(By.ID, "results").text
        d.execute_script("window.stayed = true")
        search = d.find_element(By.NAME, "q")
        search.send_keys("polar")
        wait(d, lambda d: names(d) == ["polar"], "the search to keep polar alone")
        set_field(search, "")
        for k, v in {"west": "120", "east": "140", "south": "10", "north": "20"}.items():
            set_field(d.find_element(By.NAME, k), v)
        wait(d, lambda d: names(d) == ["acc"], "the box to keep acc alone")
        for k in ("west", "east", "south", "north"):
            set_field(d.find_element(By.NAME, k), "")
        set_field(d.find_element(By.NAME, "start"), "2023-03-02")
        wait(d, lambda d: names(d) == ["polar"], "the time filter to keep polar alone")
        set_field(d.find_element(By.NAME, "start"), "")
        wait(d, lambda d: names(d) == ["acc", "levels", "polar"], "every dataset again")
        assert d.execute_script("return window.stayed === true"), "the search reloaded the page"
        assert "start=2023-03-02" not in d.current_url
        clean_logs(d, "index")
        print("index: search by text, box and time without reloading")

        # Keyboard: the first Tab reaches the skip link; Enter on a
        # dataset's link opens its page.
        d.get(BASE + "/")
        ActionChains(d).send_keys(Keys.TAB).perform()
        assert d.switch_to.active_element.get_attribute("href").endswith("#main"), d.switch_to.active_element.get_attribute("outerHTML")
        d.find_element(By.CSS_SELECTOR, 'a[href="/datasets/acc"]').send_keys(Keys.ENTER)
        wait(d, lambda d: d.current_url.endswith("/datasets/acc"), "the dataset page")
        assert d.find_element(By.ID, "opendap-url").text == BASE + "/dap/acc"
        assert d.find_element(By.TAG_NAME, "h1").text == "test source"

        # The first NetCDF link on the page is the map's variable at the
        # map's step, and downloads the source's values.
        first_nc = next(a.get_attribute("href") for a in d.find_elements(By.TAG_NAME, "a") if ".nc?" in (a.get_attribute("href") or ""))
        assert first_nc == d.find_element(By.ID, "latest-nc").get_attribute("href"), first_nc
        with urllib.request.urlopen(first_nc) as r:
            body = r.read()
        assert body[:3] == b"CDF", body[:8]
        with netCDF4.Dataset("latest.nc", mode="r", memory=body) as nc:
            nc.set_auto_mask(False)
            assert np.array_equal(nc["sst"][:].view("u4"), sst[2:3].view("u4")), "the latest .nc differs from the source"
        print(f"the page's first .nc link: the source's last step, {len(body)} bytes")

        box = d.find_element(By.ID, "map-box")
        bbox = [float(v) for v in box.get_attribute("data-bbox").split(",")]
        assert box.get_attribute("data-crs") == "CRS:84"
        img = picture(d, "#map")
        share = mask_agreement(img, bbox, lat, lon, sst[2])
        print(f"map at step 2: {share:.4f} of pixels agree with the source's fill")
        assert share >= 0.99 and (img[..., 3] > 0).mean() > 0.2, share
        assert picture(d, "#legend").shape[0] == 300

        slider = d.find_element(By.ID, "time-slider")
        slider.send_keys(Keys.ARROW_LEFT)
        wait(d, lambda d: "TIME=2010-01-02T12" in d.find_element(By.ID, "map").get_attribute("src"), "the map to follow the slider")
        assert d.find_element(By.ID, "time-label").text == "2010-01-02T12:00:00Z"
        moved = picture(d, "#map")
        share = mask_agreement(moved, bbox, lat, lon, sst[1])
        assert share >= 0.99, share
        assert not np.array_equal(moved, img), "the map did not change with the time"
        print(f"slider: step 1 drawn, {share:.4f} of pixels agree")

        # A box drawn on the map fills the subset's box.
        m = d.find_element(By.ID, "map")
        w, h = m.size["width"], m.size["height"]
        ActionChains(d).move_to_element_with_offset(m, -w // 4, -h // 4).click_and_hold().move_to_element_with_offset(m, 0, 0).release().perform()
        drawn = [float(d.find_element(By.ID, k).get_attribute("value")) for k in ("west", "south", "east", "north")]
        want = [bbox[0] + 0.25 * (bbox[2] - bbox[0]), bbox[1] + 0.5 * (bbox[3] - bbox[1]),
                bbox[0] + 0.5 * (bbox[2] - bbox[0]), bbox[1] + 0.75 * (bbox[3] - bbox[1])]
        assert np.allclose(drawn, want, atol=1.0), (drawn, want)
        assert d.find_element(By.ID, "map-rect").is_displayed()
        print(f"drawn box: {drawn}")

        # Build a subset by typing, watch its size follow, download it.
        before = d.find_element(By.ID, "subset-size").get_attribute("data-bytes")
        form = fill_subset(d)
        nc = 'a[data-kind="NetCDF-3 (.nc)"]'
        wait(d, lambda d: "(120):2:(140)" in d.find_element(By.CSS_SELECTOR, nc).get_attribute("href")
             and "(2010-01-02)" in d.find_element(By.CSS_SELECTOR, nc).get_attribute("href"), "the links to follow the form")
        size = int(d.find_element(By.ID, "subset-size").get_attribute("data-bytes"))
        assert str(size) != before
        href = d.find_element(By.CSS_SELECTOR, nc).get_attribute("href")
        want = subset_values_match(href, lat, lon, times, sst, (120, 20, 140, 40), (1, 3), 2)
        shape = want.shape
        assert size >= 4 * int(np.prod(shape)), (size, shape)
        clean_logs(d, "dataset page")
        print(f"subset: {shape} from {href}")
        snippets_give(d, want)

        d.get(BASE + "/datasets/polar")
        src = d.find_element(By.ID, "map").get_attribute("src")
        assert "CRS=EPSG%3A3413" in src, src
        polar = picture(d, "#map")
        assert 0.2 < (polar[..., 3] > 0).mean() < 1.0
        clean_logs(d, "polar page")
        print("polar: drawn in EPSG:3413")

        # Its values differ by depth by a constant, so each map, scaled to
        # its own values, looks the same: what shows the redraw is the
        # browser fetching the 50 m map and showing it.
        d.get(BASE + "/datasets/levels")
        Select(d.find_element(By.NAME, "z")).select_by_visible_text("50 m")
        wait(d, lambda d: d.find_element(By.ID, "map").get_attribute("src").endswith("&ELEVATION=50"), "the map to follow the level")
        wait(d, lambda d: d.execute_script("return performance.getEntriesByType('resource').some(e => e.name.endsWith('&ELEVATION=50'))"),
             "the browser to fetch the 50 m map")
        deep = picture(d, "#map")
        with urllib.request.urlopen(BASE + d.find_element(By.ID, "map").get_attribute("src").split(HOST, 1)[1]) as r:
            served = np.asarray(Image.open(io.BytesIO(r.read())).convert("RGBA"))
        assert np.array_equal(deep, served), "the page shows another picture than the 50 m map"
        assert d.find_element(By.CSS_SELECTOR, '#subset-form input[name="z"]').get_attribute("value") == "2"
        clean_logs(d, "levels page")
        print("levels: the picker redraws the map at 50 m")
        return href
    finally:
        d.quit()


def without_javascript(js_href):
    d = browser(javascript=False)
    try:
        d.get(BASE + "/")
        q = d.find_element(By.NAME, "q")
        q.send_keys("polar")
        q.send_keys(Keys.ENTER)
        wait(d, lambda d: "q=polar" in d.current_url and names(d) == ["polar"], "the search form's page")
        d.get(BASE + "/datasets/acc")
        slider = d.find_element(By.ID, "time-slider")
        slider.send_keys(Keys.ARROW_LEFT)
        d.find_element(By.CSS_SELECTOR, "#map-form button").click()
        wait(d, lambda d: "t=1" in d.current_url, "the map form's page")
        assert "TIME=2010-01-02T12" in d.find_element(By.ID, "map").get_attribute("src")
        form = fill_subset(d)
        form.find_element(By.CSS_SELECTOR, "button").click()
        wait(d, lambda d: "west=120" in d.current_url, "the subset form's page")
        href = d.find_element(By.CSS_SELECTOR, 'a[data-kind="NetCDF-3 (.nc)"]').get_attribute("href")
        assert href == js_href, (href, js_href)
        clean_logs(d, "without JavaScript")
        print("without JavaScript: the same search, map and subset by plain forms")
    finally:
        d.quit()


def main():
    lat, lon, times, sst = source()
    href = with_javascript(lat, lon, times, sst)
    without_javascript(href)
    assert REQUESTS[0] > 10, REQUESTS
    print(f"{REQUESTS[0]} requests, all to {HOST}")
    print("ok")


if __name__ == "__main__":
    main()

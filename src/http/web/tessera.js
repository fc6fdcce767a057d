// tessera's one script. The pages work without it; it makes them live:
// search results while typing, the map's time slider and pickers, a box
// drawn on the map, the subset's size and links while the form is edited,
// and copy buttons. No library, nothing fetched from another host.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);

  function debounce(fn, ms) {
    let t = 0;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  // Fetches HTML into an element; a failure is said in the element.
  function fill(el, url) {
    el.setAttribute("aria-busy", "true");
    return fetch(url, { headers: { Accept: "text/html" } })
      .then((r) => r.text())
      .then((html) => { el.innerHTML = html; })
      .catch(() => { el.innerHTML = '<p class="error" role="alert">The server did not answer; try again.</p>'; })
      .finally(() => el.removeAttribute("aria-busy"));
  }

  function query(form) {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v) !== "") p.append(k, v);
    return p;
  }

  // The index: results follow the search form.
  const search = $("#search");
  if (search) {
    const results = $("#results");
    const run = () => {
      const p = query(search);
      history.replaceState(null, "", "/" + (p.toString() ? "?" + p : ""));
      p.set("partial", "1");
      fill(results, "/?" + p);
    };
    const later = debounce(run, 250);
    search.addEventListener("input", later);
    search.addEventListener("change", later);
    search.addEventListener("submit", (e) => { e.preventDefault(); run(); });
  }

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", (e) => {
    const b = e.target.closest && e.target.closest("button.copy");
    if (!b) return;
    const src = $(b.dataset.copy);
    if (!src) return;
    const text = src.textContent;
    const done = () => { b.textContent = "Copied"; setTimeout(() => { b.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => select(src));
    } else {
      select(src);
    }
  });
  function select(el) {
    const r = document.createRange();
    r.selectNodeContents(el);
    const s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }

  // The dataset page.
  const map = $("#map");
  const subsetForm = $("#subset-form");
  const mapForm = $("#map-form");

  function setHidden(name, value) {
    if (!subsetForm) return;
    const el = subsetForm.querySelector('input[type=hidden][name="' + name + '"]');
    if (el) el.value = value;
  }

  if (map && mapForm) {
    const legend = $("#legend");
    const slider = $("#time-slider");
    const label = $("#time-label");
    const times = slider ? JSON.parse(slider.dataset.times || "[]") : [];
    const setParam = (img, k, v) => {
      const u = new URL(img.getAttribute("src"), location.href);
      u.searchParams.set(k, v);
      img.setAttribute("src", u.pathname + u.search);
    };
    const showTime = debounce(() => setParam(map, "TIME", times[slider.value]), 120);
    // A series too long for live labels is moved with the form's button.
    if (slider && times.length) {
      slider.addEventListener("input", () => {
        const t = times[slider.value].replace(".000Z", "Z");
        label.textContent = t;
        slider.setAttribute("aria-valuetext", t);
        map.alt = map.alt.replace(/ at .*$/, "") + " at " + t;
        setHidden("t", slider.value);
        showTime();
      });
    }
    mapForm.addEventListener("change", (e) => {
      const el = e.target;
      if (el.name === "layer") { mapForm.requestSubmit(); return; }
      if (el.name === "style") {
        setParam(map, "STYLES", el.value);
        if (legend) setParam(legend, "STYLE", el.value);
        setHidden("style", el.value);
      }
      if (el.name === "z") {
        setParam(map, "ELEVATION", el.options[el.selectedIndex].dataset.elevation);
        setHidden("z", el.value);
      }
    });
  }

  // A box drawn on the map fills the subset's box, and the box typed
  // there is drawn on the map.
  const box = $("#map-box");
  const rect = $("#map-rect");
  const fields = ["west", "south", "east", "north"].map((id) => $("#" + id));
  if (box && rect && box.dataset.drawable === "true" && fields.every(Boolean)) {
    const [x0, y0, x1, y1] = box.dataset.bbox.split(",").map(Number);
    const degrees = box.dataset.crs === "CRS:84";
    const round = (v) => degrees ? Math.round(v * 1000) / 1000 : Math.round(v);
    const toMap = (px, py, w, h) => [x0 + (px / w) * (x1 - x0), y1 - (py / h) * (y1 - y0)];
    const draw = () => {
      const v = fields.map((f) => (f.value === "" ? NaN : Number(f.value)));
      const w = box.clientWidth, h = map.clientHeight;
      let [west, south, east, north] = v;
      if (isNaN(west)) west = x0; if (isNaN(east)) east = x1;
      if (isNaN(south)) south = y0; if (isNaN(north)) north = y1;
      if (degrees && west > 180) west -= 360;
      if (degrees && east > 180) east -= 360;
      if (v.every(isNaN) || west > east || south > north) { rect.hidden = true; return; }
      const l = Math.max(0, (west - x0) / (x1 - x0)), r = Math.min(1, (east - x0) / (x1 - x0));
      const t = Math.max(0, (y1 - north) / (y1 - y0)), b = Math.min(1, (y1 - south) / (y1 - y0));
      if (r <= l || b <= t) { rect.hidden = true; return; }
      Object.assign(rect.style, { left: l * w + "px", top: t * h + "px", width: (r - l) * w + "px", height: (b - t) * h + "px" });
      rect.hidden = false;
    };
    let start = null;
    const at = (e) => {
      const b = map.getBoundingClientRect();
      return [Math.min(Math.max(e.clientX - b.left, 0), b.width), Math.min(Math.max(e.clientY - b.top, 0), b.height), b.width, b.height];
    };
    box.addEventListener("pointerdown", (e) => { start = at(e); box.setPointerCapture(e.pointerId); e.preventDefault(); });
    box.addEventListener("pointermove", (e) => {
      if (!start) return;
      const p = at(e);
      const [a, b] = toMap(Math.min(start[0], p[0]), Math.max(start[1], p[1]), p[2], p[3]);
      const [c, d] = toMap(Math.max(start[0], p[0]), Math.min(start[1], p[1]), p[2], p[3]);
      [a, b, c, d].forEach((v, i) => { fields[i].value = round(v); });
      draw();
    });
    box.addEventListener("pointerup", (e) => {
      if (!start) return;
      const p = at(e);
      if (Math.abs(p[0] - start[0]) < 3 && Math.abs(p[1] - start[1]) < 3) fields.forEach((f) => { f.value = ""; });
      start = null;
      draw();
      subsetForm.dispatchEvent(new Event("input", { bubbles: true }));
    });
    fields.forEach((f) => f.addEventListener("input", draw));
    if (map.complete) draw(); else map.addEventListener("load", draw);
    window.addEventListener("resize", draw);
  }

  // The subset's size, links and snippets follow its form.
  if (subsetForm) {
    const out = $("#subset-result");
    const run = () => {
      const p = query(subsetForm);
      if (!p.has("vars")) p.append("vars", "");
      history.replaceState(null, "", location.pathname + "?" + p + "#subset");
      fill(out, subsetForm.dataset.fragment + "?" + p);
    };
    subsetForm.addEventListener("input", debounce(run, 300));
    subsetForm.addEventListener("change", debounce(run, 300));
    subsetForm.addEventListener("submit", (e) => { e.preventDefault(); run(); });
  }
})();

//! The web catalogue: the index and its filters (`/`, `/catalog.json`,
//! `/catalog.xml`), the dataset page, and the subset builder, whose size
//! must be what the request sends and whose links must give the source's
//! values. Then the pages in headless Chromium (`web_check.py`): search,
//! open a dataset, see its map, move the time slider, build a subset and
//! download it, with no request to another host and no console error;
//! and the same without JavaScript.

use crate::common::{command, header, http_request, server::fixture};

fn get(url: &str) -> (u16, String, String) {
    let (s, head, body) = http_request("GET", url, &[]);
    (s, head, String::from_utf8_lossy(&body).into_owned())
}

fn catalog(base: &str, query: &str) -> serde_json::Value {
    let (s, head, body) = get(&format!("{base}/catalog.json?{query}"));
    assert_eq!(s, 200, "{query}: {body}");
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    serde_json::from_str(&body).unwrap()
}

fn names(doc: &serde_json::Value) -> Vec<String> {
    doc["datasets"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_index_lists_every_dataset_and_its_filters_narrow_it() {
    let f = fixture();
    let (s, head, page) = get(&format!("{}/", f.base));
    assert_eq!(s, 200);
    assert_eq!(header(&head, "content-type"), Some("text/html; charset=utf-8"));
    for want in [
        "href=\"/datasets/acc\"",
        ">test source</a>",
        "Sea surface temperature <code>sst</code> [degC]",
        "100°E–180°E, 0°–60°N",
        "2010-01-01T12:00:00Z – 2010-01-03T12:00:00Z · 3 steps",
        "href=\"/static/tessera.css",
        "rel=\"icon\"",
    ] {
        assert!(page.contains(want), "{want} in the index:\n{page}");
    }
    // Nothing from another host.
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "{page}");

    let all = catalog(&f.base, "");
    assert_eq!(names(&all), ["acc", "broken", "levels", "types"]);
    let acc = &all["datasets"][0];
    assert_eq!(acc["title"], "test source");
    assert_eq!(acc["time"]["steps"], 3);
    assert_eq!(acc["grid"]["nx"], 800);
    assert!(acc["bytes"].as_u64().unwrap() > 0);
    assert_eq!(acc["links"]["opendap"], format!("{}/dap/acc", f.base));

    // Each filter alone, then together.
    let chl = names(&catalog(&f.base, "var=chl"));
    assert!(chl.contains(&"acc".to_string()) && !chl.contains(&"levels".to_string()), "{chl:?}");
    assert_eq!(names(&catalog(&f.base, "q=acc")), ["acc"]);
    assert_eq!(names(&catalog(&f.base, "q=TEST+source&west=120&east=130&south=10&north=20")), ["acc", "broken"]);
    assert!(names(&catalog(&f.base, "west=-60&east=-30&south=-50&north=-40")).is_empty());
    let y2020 = names(&catalog(&f.base, "start=2020-01-01"));
    assert!(y2020.contains(&"types".to_string()) && !y2020.contains(&"acc".to_string()), "{y2020:?}");
    assert_eq!(names(&catalog(&f.base, "start=2010-01-03&end=2010-01-03&q=acc")), ["acc"]);
    assert!(names(&catalog(&f.base, "end=2009-12-31&q=acc")).is_empty());

    // Pages.
    let p1 = catalog(&f.base, "per_page=3");
    assert_eq!((p1["numberMatched"].as_u64(), p1["pages"].as_u64()), (Some(4), Some(2)));
    assert_eq!(names(&p1), ["acc", "broken", "levels"]);
    let next = p1["links"]["next"].as_str().unwrap();
    let (_, _, body) = get(next);
    let p2: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(names(&p2), ["types"]);
    assert!(p2["links"]["next"].is_null());
    let (_, _, html) = get(&format!("{}/?per_page=3", f.base));
    assert!(html.contains("rel=\"next\" href=\"/?per_page=3&amp;page=2\""), "{html}");
    // The script's fragment: the results alone.
    let (s, _, frag) = get(&format!("{}/?q=levels&partial=1", f.base));
    assert_eq!(s, 200);
    assert!(frag.starts_with("<p class=\"count\">1 dataset") && frag.contains("/datasets/levels") && !frag.contains("<html"), "{frag}");

    // Bad filters are said, not ignored.
    let (s, _, body) = get(&format!("{}/catalog.json?south=50&north=10", f.base));
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("south (50) is north of north (10)"), "{body}");
    let (s, _, body) = get(&format!("{}/?start=yesterday", f.base));
    assert_eq!(s, 400);
    assert!(body.contains("is not a date"), "{body}");

    // The THREDDS catalog names every dataset with its OPeNDAP access.
    let (s, head, xml) = get(&format!("{}/catalog.xml", f.base));
    assert_eq!(s, 200);
    assert_eq!(header(&head, "content-type"), Some("application/xml; charset=utf-8"));
    assert!(xml.contains("<service name=\"odap\" serviceType=\"OPeNDAP\" base=\"/dap/\"/>"), "{xml}");
    assert!(xml.contains("<dataset name=\"test source\" ID=\"acc\" urlPath=\"acc\">"), "{xml}");
    assert!(xml.contains("<timeCoverage><start>2010-01-01T12:00:00Z</start><end>2010-01-03T12:00:00Z</end></timeCoverage>"), "{xml}");
}

#[test]
fn the_dataset_page_shows_metadata_a_map_and_the_subset_builder() {
    let f = fixture();
    let (s, _, page) = get(&format!("{}/datasets/acc", f.base));
    assert_eq!(s, 200);
    for want in [
        &format!("<code id=\"opendap-url\">{}/dap/acc</code>", f.base),
        "800 × 600 cells",
        "2010-01-01T12:00:00Z – 2010-01-03T12:00:00Z · 3 steps",
        "<th>Overviews</th>",
        "name=\"t\" min=\"0\" max=\"2\" value=\"2\"",
        "href=\"/dap/acc.html\"",
        "NetCDF-3 (.nc)",
        "ncread(url, 'sst'",
    ] {
        assert!(page.contains(want), "{want} on the page");
    }
    // The map and the legend are real pictures.
    let src = attr_after(&page, "id=\"map\"", "src").expect("a map");
    assert!(src.contains("CRS=CRS%3A84") && src.contains("TIME=2010-01-03T12"), "{src}");
    let (s, head, png) = http_request("GET", &format!("{}{src}", f.base), &[]);
    assert_eq!((s, header(&head, "content-type")), (200, Some("image/png")));
    assert!(png.starts_with(b"\x89PNG"));
    let legend = attr_after(&page, "id=\"legend\"", "src").expect("a legend");
    assert_eq!(http_request("GET", &format!("{}{legend}", f.base), &[]).0, 200);

    // Its first links are the map's variable at the map's (the last) step,
    // and they work.
    let nc = link(&page, "NetCDF-3 (.nc)").unwrap();
    assert!(nc.contains("/dap/acc.nc?sst%5B(2010-01-03T12:00:00Z):1:(2010-01-03T12:00:00Z)%5D%5B0:1:599%5D%5B0:1:799%5D"), "{nc}");
    let (s, head, _) = http_request("GET", &nc, &[]);
    assert_eq!((s, header(&head, "content-type")), (200, Some("application/x-netcdf")));

    // The access links name the same download first.
    assert_eq!(attr_after(&page, "id=\"latest-nc\"", "href").as_deref(), Some(nc.as_str()));
    assert!(page.contains("NetCDF: sst at 2010-01-03T12:00:00Z ("), "the download named");

    // The picked time and colours are the map's.
    let (_, _, page) = get(&format!("{}/datasets/acc?layer=chl&t=0&style=magma", f.base));
    let src = attr_after(&page, "id=\"map\"", "src").unwrap();
    assert!(src.contains("LAYERS=acc%2Fchl") && src.contains("TIME=2010-01-01T12") && src.contains("STYLES=magma"), "{src}");

    // A dataset with levels has a level picker, which the map follows.
    let (_, _, page) = get(&format!("{}/datasets/levels?z=1", f.base));
    assert!(page.contains("<select name=\"z\">"), "a level picker");
    let src = attr_after(&page, "id=\"map\"", "src").unwrap();
    // The source's depths are 0, 10 and 50 m.
    assert!(src.ends_with("&ELEVATION=10"), "{src} at the second level");
    assert!(page.contains("<option value=\"1\" data-elevation=\"10\" selected>10 m</option>"), "the second level picked");

    let (s, head, body) = get(&format!("{}/datasets/nope", f.base));
    assert_eq!((s, header(&head, "content-type")), (404, Some("text/html; charset=utf-8")));
    assert!(body.contains("no dataset &quot;nope&quot;"), "{body}");
    for asset in ["/static/tessera.css", "/static/tessera.js", "/favicon.svg", "/favicon.ico"] {
        let (s, head, _) = get(&format!("{}{asset}", f.base));
        assert_eq!(s, 200, "{asset}");
        assert!(header(&head, "cache-control").is_some(), "{asset}");
    }
    // The DAP2 form keeps its place, in the same look.
    let (s, _, form) = get(&format!("{}/dap/acc.html", f.base));
    assert_eq!(s, 200);
    assert!(form.contains("Data Request Form") && form.contains("/static/tessera.css"), "{form}");
}

/// The value of `attr` in the first tag after `marker`, unescaped.
fn attr_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let key = format!("{attr}=\"");
    let from = tag.find(&key)? + key.len();
    Some(unescape(&tag[from..from + tag[from..].find('"')?]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")
}

/// The link the builder gives for `kind`.
fn link(fragment: &str, kind: &str) -> Option<String> {
    attr_after(fragment, &format!("data-kind=\"{kind}\""), "href")
}

#[test]
fn subset_builder_sizes_are_what_is_sent_and_its_links_give_the_source_values() {
    let f = fixture();
    let q = "vars=sst&west=120&east=140.05&south=20&north=40&start=2010-01-02&end=2010-01-03&stride=3";
    let (s, _, frag) = get(&format!("{}/datasets/acc/subset?{q}", f.base));
    assert_eq!(s, 200, "{frag}");
    let shown: u64 = attr_after(&frag, "id=\"subset-size\"", "data-bytes").unwrap().parse().unwrap();
    let values_url = link(&frag, "OPeNDAP (coordinate values)").unwrap();
    let index_url = link(&frag, "OPeNDAP (indices, for netCDF-C clients)").unwrap();
    assert!(values_url.contains("sst%5B(2010-01-02):1:(2010-01-03T23:59:59.999Z)%5D%5B(40):3:(20)%5D%5B(120):3:(140.05)%5D"), "{values_url}");

    // The size shown is the data the .dods carries.
    let (base_v, ce_v) = values_url.split_once('?').unwrap();
    let (s, _, dods) = http_request("GET", &format!("{base_v}.dods?{ce_v}"), &[]);
    assert_eq!(s, 200);
    let data_at = dods.windows(7).position(|w| w == b"\nData:\n").unwrap() + 7;
    assert_eq!((dods.len() - data_at) as u64, shown);
    // Both forms of the constraint select the same cells.
    let (base_i, ce_i) = index_url.split_once('?').unwrap();
    let by_values = get(&format!("{base_v}.ascii?{ce_v}")).2;
    let by_index = get(&format!("{base_i}.ascii?{}", ce_i.replace('[', "%5B").replace(']', "%5D"))).2;
    assert_eq!(by_values, by_index);

    // The .nc link downloads the source's cells.
    let nc_url = link(&frag, "NetCDF-3 (.nc)").unwrap();
    let (s, _, bytes) = http_request("GET", &nc_url, &[]);
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subset.nc");
    std::fs::write(&path, bytes).unwrap();
    let got = netcdf::open(&path).unwrap();
    let src = netcdf::open(f.source("acc.nc")).unwrap();
    let read = |file: &netcdf::File, name: &str| -> Vec<f64> { file.variable(name).unwrap().get_values::<f64, _>(..).unwrap() };
    let (glat, glon, gtime) = (read(&got, "lat"), read(&got, "lon"), read(&got, "time"));
    let (slat, slon, stime) = (read(&src, "lat"), read(&src, "lon"), read(&src, "time"));
    // Source cells whose centres are inside the box, every third from the
    // first; the slices of 2 and 3 January.
    let want_lat: Vec<f64> = slat.iter().copied().filter(|v| (20.0..=40.0).contains(v)).step_by(3).collect();
    let want_lon: Vec<f64> = slon.iter().copied().filter(|v| (120.0..=140.05 + 1e-4).contains(v)).step_by(3).collect();
    assert_eq!(glat, want_lat);
    assert_eq!(glon, want_lon);
    assert_eq!(gtime, stime[1..3]);
    let gsst: Vec<f32> = got.variable("sst").unwrap().get_values::<f32, _>(..).unwrap();
    let ssst = src.variable("sst").unwrap();
    let (ny, nx) = (slat.len(), slon.len());
    let all: Vec<f32> = ssst.get_values::<f32, _>(..).unwrap();
    let mut k = 0;
    for t in 1..3 {
        for la in &glat {
            let j = slat.iter().position(|v| v == la).unwrap();
            for lo in &glon {
                let i = slon.iter().position(|v| v == lo).unwrap();
                assert_eq!(gsst[k].to_bits(), all[(t * ny + j) * nx + i].to_bits(), "sst[{t}][{j}][{i}]");
                k += 1;
            }
        }
    }
    assert_eq!(k, gsst.len());

    // Errors are one line in the form's place.
    for (q, want) in [
        ("vars=", "pick at least one variable"),
        ("vars=sst&west=-60&east=-50", "the box is outside the grid"),
        ("vars=sst&start=2010-02-30", "is not a date"),
        ("vars=nope", "not a data variable"),
        ("vars=sst&stride=0", "stride"),
    ] {
        let (s, _, frag) = get(&format!("{}/datasets/acc/subset?{q}", f.base));
        assert_eq!(s, 400, "{q}");
        assert!(frag.contains("class=\"error\"") && frag.contains(want), "{q}: {frag}");
    }
}

#[test]
fn a_subset_over_the_size_limit_is_flagged_before_it_is_asked_for() {
    let f = fixture();
    // sst and chl whole: 3 x 600 x 800 x (4 + 2) bytes, over the
    // fixture's 8 MiB.
    let (s, _, frag) = get(&format!("{}/datasets/acc/subset?vars=sst&vars=chl", f.base));
    assert_eq!(s, 200);
    assert!(frag.contains("class=\"error over-limit\""), "{frag}");
    assert!(link(&frag, "NetCDF-3 (.nc)").is_none(), "no link to a refused request");
    let refused = frag.split("<code class=\"refused\">").nth(3).and_then(|r| r.split('<').next()).map(unescape).unwrap();
    assert!(refused.contains(".nc?"), "{refused}");
    assert_eq!(http_request("GET", &refused, &[]).0, 413, "the server refuses what the form flagged");
    // Halved by a stride, it fits.
    let (_, _, frag) = get(&format!("{}/datasets/acc/subset?vars=sst&vars=chl&stride=2", f.base));
    assert!(!frag.contains("over-limit"));
    assert_eq!(http_request("GET", &link(&frag, "NetCDF-3 (.nc)").unwrap(), &[]).0, 200);
}

#[test]
fn web_pages_in_headless_chromium_with_sqlite() {
    web_pages_in_headless_chromium(None);
}

#[test]
fn web_pages_in_headless_chromium_with_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(url) = rt.block_on(crate::common::postgres_url()) else { return };
    web_pages_in_headless_chromium(Some(&url));
}

fn web_pages_in_headless_chromium(catalogue: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let out = command("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/wms_check.py"))
        .args(["write", src.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let acc = src.join("acc.nc");
    crate::common::source::write(&acc, &crate::common::source::Spec::default());
    crate::common::source::write_levels(&src.join("levels.nc"));
    let data = dir.path().join("data");
    let cat = catalogue.map_or_else(|| format!("sqlite://{}", data.join("c.db").display()), str::to_string);
    let cli = crate::common::Cli::new(&data, &cat);
    let s = |n: &str| src.join(n).to_str().unwrap().to_string();
    cli.ok(&["ingest", "--dataset", "acc", "--tile-size", "128x128", &s("acc.nc")]);
    cli.ok(&["ingest", "--dataset", "polar", "--tile-size", "16x16", &s("polar_1.nc"), &s("polar_2.nc")]);
    cli.ok(&["ingest", "--dataset", "levels", "--tile-size", "16x16", &s("levels.nc")]);
    let base = crate::common::server::start_server(&data, &cli.catalogue, &[]);
    let out = command("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/web_check.py"))
        .args([&base, src.to_str().unwrap()])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("ok"), "web_check.py:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
}

//! The STAC API at `/stac`: its documents read directly, and driven by a
//! real client (pystac-client, see `stac_check.py`) whose searches, paging
//! and downloads are checked against the fixture's source.

use crate::common::{command, header, http_request, server::fixture};

fn get_json(url: &str) -> (u16, String, serde_json::Value) {
    let (status, head, body) = http_request("GET", url, &[]);
    let v = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, head, v)
}

#[test]
fn stac_landing_and_collection_describe_the_catalogue() {
    let f = fixture();
    let (s, head, landing) = get_json(&format!("{}/stac", f.base));
    assert_eq!(s, 200);
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    assert_eq!((landing["type"].as_str(), landing["id"].as_str(), landing["stac_version"].as_str()), (Some("Catalog"), Some("tessera"), Some("1.0.0")));
    let conforms: Vec<&str> = landing["conformsTo"].as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
    for c in ["core", "collections", "item-search", "ogcapi-features"] {
        assert!(conforms.contains(&format!("https://api.stacspec.org/v1.0.0/{c}").as_str()), "{c}");
    }
    let rels: Vec<&str> = landing["links"].as_array().unwrap().iter().filter_map(|l| l["rel"].as_str()).collect();
    for r in ["self", "root", "conformance", "data", "search"] {
        assert!(rels.contains(&r), "{r} in {rels:?}");
    }

    let (s, _, acc) = get_json(&format!("{}/stac/collections/acc", f.base));
    assert_eq!(s, 200);
    assert_eq!(acc["type"], "Collection");
    let bbox: Vec<f64> = acc["extent"]["spatial"]["bbox"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (got, want) in bbox.iter().zip([100.0, 0.0, 180.0, 60.0]) {
        assert!((got - want).abs() < 1e-4, "{bbox:?}");
    }
    assert_eq!(acc["extent"]["temporal"]["interval"][0], serde_json::json!(["2010-01-01T12:00:00Z", "2010-01-03T12:00:00Z"]));
    assert_eq!(acc["cube:dimensions"]["time"]["values"].as_array().map(Vec::len), Some(3));
    assert_eq!(acc["cube:variables"]["sst"]["dimensions"], serde_json::json!(["time", "lat", "lon"]));

    let (s, head, items) = get_json(&format!("{}/stac/collections/acc/items?limit=2", f.base));
    assert_eq!(s, 200);
    assert_eq!(header(&head, "content-type"), Some("application/geo+json"));
    assert_eq!(items["numberReturned"], 2);
    let href = items["features"][1]["assets"]["netcdf"]["href"].as_str().unwrap();
    assert!(href.ends_with("/dap/acc.nc?sst%5B1%5D,chl%5B1%5D"), "{href}");

    let (s, _, err) = get_json(&format!("{}/stac/collections/nope", f.base));
    assert_eq!((s, err["code"].as_str()), (404, Some("NotFound")));
    let (s, _, err) = get_json(&format!("{}/stac/search?bbox=1,2,3", f.base));
    assert_eq!((s, err["code"].as_str()), (400, Some("InvalidParameterValue")), "{err}");
}

#[test]
fn stac_through_pystac_client_finds_and_downloads_slices() {
    let f = fixture();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/stac_check.py");
    let out = command("python3").arg(script).arg(&f.base).arg(f.source("acc.nc")).env("PYTHONWARNINGS", "ignore").output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("ok"), "stac_check.py:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}

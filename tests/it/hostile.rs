//! Hostile input against the router, in process (no socket): arbitrary
//! paths and constraint expressions never panic, never escape the pool and
//! always get a DAP2 answer with a 2xx/3xx/4xx status; arbitrary WMS
//! parameters get a PNG or a service exception report, and arbitrary web
//! forms a page or a said error, never a fault.

use crate::common::source;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};
use tessera::archive::{Archive, Limits};
use tessera::ingest::{IngestOptions, ingest_file};
use tessera::model::{DatasetName, TileShape};
use tessera::store::Pool;
use tessera::store::reader::PoolTiles;
use tower::ServiceExt;

struct Env {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let router = rt.block_on(async {
            let dir = tempfile::tempdir().unwrap().keep();
            let cat = tessera::catalogue::open("memory:", true).await.unwrap();
            let pool = Pool::new(dir.join("pool"));
            let src = dir.join("s.nc");
            source::write(&src, &source::Spec { nt: 2, ny: 40, nx: 50, ..Default::default() });
            let mut o = IngestOptions::new(DatasetName::parse("small").unwrap());
            o.tile = Some(TileShape::new(16, 16).unwrap());
            ingest_file(&cat, &pool, &src, &o).await.unwrap();
            // A file outside the pool that no request may ever reach.
            std::fs::write(dir.join("secret.nc"), b"TOPSECRET-CONTENT-4242").unwrap();
            let archive = Arc::new(Archive::new(cat, pool.clone(), Arc::new(PoolTiles::new(pool, 16)), Limits { max_response_bytes: 1 << 20 }));
            tessera::http::router(tessera::http::AppState::new(archive, tessera::config::ServerLimits::default()))
        });
        Env { rt, router }
    })
}

/// Sends one request; returns status and body.
fn call(uri: &str) -> (StatusCode, Vec<u8>) {
    let e = env();
    e.rt.block_on(async {
        let req = match Request::builder().uri(uri).body(Body::empty()) {
            Ok(r) => r,
            // Not even a URI: hyper would have refused it before us.
            Err(_) => return (StatusCode::BAD_REQUEST, Vec::new()),
        };
        let resp = e.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap().to_vec();
        (status, body)
    })
}

fn check(uri: &str) {
    let (status, body) = call(uri);
    assert!(
        [StatusCode::OK, StatusCode::SEE_OTHER, StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::URI_TOO_LONG]
            .contains(&status),
        "{uri}: {status}"
    );
    if status.is_client_error() && !body.is_empty() {
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("Error {") && text.ends_with("};\n"), "{uri}: {text}");
    }
    assert!(!String::from_utf8_lossy(&body).contains("TOPSECRET-CONTENT"), "{uri} reached a file outside the pool");
}

#[test]
fn nasty_paths_and_constraints() {
    let long = "a".repeat(100_000);
    let long_ce = format!("sst{}", "[0]".repeat(20_000));
    for uri in [
        "/dap/small.dods?sst[0:1][0:1:39][0:1:49]",
        "/dap/../secret.nc.dds",
        "/dap/..%2Fsecret.nc.dds",
        "/dap/%2E%2E%2Fsecret.dds",
        "/dap/small%2F..%2F..%2Fsecret.dds",
        "/dap/small/../../secret.dds",
        "/dap/%00.dds",
        "/dap/small%00.dds",
        "/dap/.dds",
        "/dap/..dds",
        "/dap/small..dds",
        "/dap/small.dds.dds",
        &format!("/dap/{long}.dds"),
        &format!("/dap/small.dds?{long}"),
        &format!("/dap/small.dods?{long_ce}"),
        "/dap/small.dods?sst[18446744073709551615]",
        "/dap/small.dods?sst[18446744073709551616]",
        "/dap/small.dods?sst[0:18446744073709551615:1]",
        "/dap/small.dods?sst[0:99999999999:1][0][0]",
        "/dap/small.dods?sst[1:0]",
        "/dap/small.dods?sst[0:0:1]",
        "/dap/small.dods?sst[-1]",
        "/dap/small.dods?sst[0][0][0][0]",
        "/dap/small.dods?sst.sst.sst",
        "/dap/small.dods?sst.nosuch",
        "/dap/small.dods?sst[(2010-01-01):(1999-01-01)]",
        "/dap/small.dods?sst[(NaN)]",
        "/dap/small.dods?sst[0][(1e308)][0]",
        "/dap/small.dods?sst[0][(-1e308):(1e308)][0]",
        "/dap/small.dods?%",
        "/dap/small.dods?%zz",
        "/dap/small.dods?%5",
        "/dap/small.dods?sst%2",
        "/dap/small.dods?,,,",
        "/dap/small.dods?&&&",
        "/dap/small.dods?sst,sst,sst,sst",
        "/dap/small.dods?geogrid(sst,1,2,3,4)",
        "/dap/small.dods?sst[0:1:1]",
        "/dap/small.ascii?sst[0:1:1][0:39][0:49]",
    ] {
        check(uri);
    }
}

const CE_ALPHABET: &str = "[]:,.&()*0123456789sstlatlonchlmasktime=<>!%-eE+\"'/ ";

proptest! {
    // 4000 generated URIs per case below: arbitrary suffixes, arbitrary
    // constraint strings from the CE alphabet, and structured slabs.
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_constraints_never_panic(ce in proptest::collection::vec(proptest::sample::select(CE_ALPHABET.chars().collect::<Vec<_>>()), 0..60)) {
        let ce: String = ce.into_iter().collect();
        let enc: String = ce.bytes().map(|b| if b.is_ascii_alphanumeric() || b"[]:,.&()*-".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
        for suffix in ["dds", "dods", "ascii", "png"] {
            check(&format!("/dap/small.{suffix}?{enc}"));
        }
    }

    #[test]
    fn arbitrary_slabs_never_panic(a in 0u64..100, s in 0u64..50, b in 0u64..100, var in proptest::sample::select(vec!["sst", "chl", "mask", "sst.sst", "sst.lat", "lat", "time"])) {
        check(&format!("/dap/small.dods?{var}[{a}:{s}:{b}][{b}][{a}:{b}]"));
        check(&format!("/dap/small.dods?{var}[{a}]"));
    }

    #[test]
    fn arbitrary_wms_parameters_get_a_map_or_an_exception(
        bbox in proptest::collection::vec(proptest::sample::select(vec!["0", "-90", "90", "-180", "180", "1e308", "-1e308", "NaN", "inf", "3.5", "x", "", "1e-300", "20037508"]), 0..6),
        crs in proptest::sample::select(vec!["EPSG:4326", "CRS:84", "EPSG:3857", "EPSG:3413", "EPSG:3031", "EPSG:32633", "EPSG:0", "epsg:4326", "EPSG:", "FOO", ""]),
        size in proptest::sample::select(vec!["1", "2", "17", "256", "0", "-1", "4097", "99999999999", "x"]),
        layer in proptest::sample::select(vec!["small/sst", "small/chl", "small/mask", "small/lat", "small", "/", "nope/sst", ""]),
        time in proptest::sample::select(vec!["", "&TIME=2010-01-01T12:00:00Z", "&TIME=current", "&TIME=1e9", "&TIME=2010-13-45", "&ELEVATION=0", "&ELEVATION=nan"]),
        range in proptest::sample::select(vec!["", "&COLORSCALERANGE=0,1", "&COLORSCALERANGE=5,1", "&COLORSCALERANGE=nan,inf", "&COLORSCALERANGE=auto", "&COLORSCALERANGE=1"]),
        request in proptest::sample::select(vec!["GetMap", "GetLegendGraphic", "GetCapabilities", "GetFeatureInfo", "getmap", ""]),
    ) {
        let uri = format!(
            "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST={request}&LAYERS={layer}&LAYER={layer}&STYLES=&CRS={crs}&BBOX={}&WIDTH={size}&HEIGHT={size}&FORMAT=image/png{time}{range}",
            bbox.join(",")
        );
        let (status, body) = call(&uri);
        let text = String::from_utf8_lossy(&body);
        prop_assert!(
            (status == StatusCode::OK && (body.starts_with(b"\x89PNG") || text.contains("<WMS_Capabilities")))
                || (status == StatusCode::BAD_REQUEST && text.contains("<ServiceExceptionReport")),
            "{uri}: {status} {}", text.chars().take(300).collect::<String>()
        );
    }

    #[test]
    fn arbitrary_web_forms_get_a_page_or_a_said_error(
        number in proptest::collection::vec(proptest::sample::select(vec!["", "0", "-90", "90", "-180", "180", "360", "1e308", "-1e308", "NaN", "inf", "x", "1e-300", "45.5"]), 4),
        date in proptest::sample::select(vec!["", "2010-01-01", "2010-01-02T12:00:00Z", "2010-02-30", "1e9", "yesterday", "9999-12-31", "%00", "2010-01-02%26sst"]),
        step in proptest::sample::select(vec!["", "1", "2", "0", "-1", "18446744073709551615", "99999999999999999999", "x"]),
        vars in proptest::sample::select(vec!["vars=sst", "vars=sst&vars=chl", "vars=mask", "vars=", "vars=lat", "vars=nope", "vars=%5B", ""]),
        page in proptest::sample::select(vec!["", "1", "0", "2", "18446744073709551615", "x"]),
        where_ in proptest::sample::select(vec!["/", "/catalog.json", "/datasets/small", "/datasets/small/subset", "/datasets/nope"]),
    ) {
        let [w, s, e, n] = [number[0], number[1], number[2], number[3]];
        let uri = format!(
            "{where_}?q=sst&west={w}&south={s}&east={e}&north={n}&start={date}&end={date}&stride={step}&tstride={step}&{vars}&page={page}&per_page={page}&t={step}&z={step}&layer=sst&style=x&zlo={w}&zhi={e}"
        );
        let (status, body) = call(&uri);
        let text = String::from_utf8_lossy(&body);
        prop_assert!(
            status == StatusCode::OK
                || (status == StatusCode::BAD_REQUEST && (text.contains("class=\"error\"") || text.contains("\"description\"")))
                || (status == StatusCode::NOT_FOUND && where_ == "/datasets/nope"),
            "{uri}: {status} {}", text.chars().take(300).collect::<String>()
        );
    }

    #[test]
    fn arbitrary_paths_never_escape(path in "[a-z./%0-9A-F_-]{0,40}") {
        check(&format!("/dap/{path}"));
    }
}

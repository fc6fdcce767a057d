//! Operations: health and readiness (PostgreSQL stopped and restarted under
//! the server), metrics in the Prometheus format, access logs, limits,
//! graceful shutdown, conditional requests, compression and CORS. Each test
//! runs its own `tessera serve` with the settings it needs.

use crate::common::{Cli, command, source};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn start(data: &Path, catalogue: &str, env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let log = data.join(format!("server-{}.log", std::process::id() ^ rand_u32()));
        let mut cmd = command(env!("CARGO_BIN_EXE_tessera"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("TESSERA_DATA_DIR", data)
            .env("TESSERA_CATALOGUE", catalogue)
            .env("TESSERA_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("serving on ").map(|r| r.split_whitespace().next().unwrap().trim_end_matches('/').to_string()))
            .expect("server address");
        std::thread::spawn(move || for _ in lines {});
        Server { child, base, log }
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

/// A data directory with the standard dataset ingested as `acc`.
fn archive(catalogue: Option<&str>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalogue.map_or_else(|| format!("sqlite://{}", dir.path().join("c.db").display()), str::to_string);
    let src = dir.path().join("acc.nc");
    source::write(&src, &source::Spec::default());
    Cli::new(dir.path(), &cat).ok(&["ingest", "--dataset", "acc", "--tile-size", "256x256", src.to_str().unwrap()]);
    (dir, cat)
}

fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    crate::common::http_request("GET", &format!("{base}{path}"), headers)
}

use crate::common::header;

#[test]
fn health_version_metrics_and_access_log() {
    let (dir, cat) = archive(None);
    let srv = Server::start(dir.path(), &cat, &[]);
    let (s, head, body) = get(&srv.base, "/healthz", &[]);
    assert_eq!(s, 200);
    assert!(header(&head, "content-type").unwrap().starts_with("application/json"));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"], "ok");
    let (s, _, body) = get(&srv.base, "/readyz", &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, v["status"].as_str(), v["catalogue"].as_str(), v["pool"].as_str()), (200, Some("ready"), Some("ok"), Some("ok")));
    let (_, _, body) = get(&srv.base, "/version", &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tessera"], tessera::VERSION);
    assert_eq!(v["catalogue"], "sqlite");
    assert_eq!(v["schema_version"], 5);
    assert!(v["git_commit"].as_str().is_some_and(|c| !c.is_empty()));

    // Some traffic, then the metrics in the Prometheus text format.
    let (_, head, _) = get(&srv.base, "/dap/acc.dods?sst%5B0%5D%5B0:599%5D%5B0:799%5D", &[("x-request-id", "trace-42")]);
    assert_eq!(header(&head, "x-request-id"), Some("trace-42"));
    let (_, head, _) = get(&srv.base, "/dap/acc.dds", &[]);
    assert!(header(&head, "x-request-id").is_some_and(|id| !id.is_empty()));
    get(&srv.base, "/dap/acc.dods?nosuch", &[]);
    get(&srv.base, "/dap/acc.dods?sst%5B0%5D%5B0:599%5D%5B0:799%5D", &[]);
    // A point whose chunk is cached is answered from memory, with the
    // same bytes as the one produced on a blocking thread.
    let (_, _, first) = get(&srv.base, "/dap/acc.dods?sst%5B1%5D%5B7%5D%5B9%5D", &[]);
    let (_, _, again) = get(&srv.base, "/dap/acc.dods?sst%5B1%5D%5B7%5D%5B9%5D", &[]);
    assert_eq!(first, again);
    let (s, head, body) = get(&srv.base, "/metrics", &[]);
    assert_eq!(s, 200);
    assert!(header(&head, "content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).unwrap();
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
def total(name, **labels):
    return sum(s.value for f in fams.values() for s in f.samples if s.name in (name, name + "_total") and all(s.labels.get(k) == v for k, v in labels.items()))
def family(name):
    return fams.get(name) or fams.get(name + "_total")
assert total("tessera_http_requests", route="dods", status="200") >= 1
assert total("tessera_http_requests", route="dods", status="400") >= 1
assert family("tessera_http_request_duration_seconds").type == "histogram"
assert family("tessera_http_requests").type == "counter"
assert total("tessera_tiles_read") >= 1
assert family("tessera_tile_read_seconds").type == "histogram"
assert family("tessera_catalogue_query_seconds").type == "histogram"
assert family("tessera_http_in_flight").type == "gauge"
assert total("tessera_body_bytes") > 0
assert total("tessera_tiles_stored") == 75, total("tessera_tiles_stored")
assert total("tessera_datasets") == 1
# Views are rebuilt only when a dataset changes; four requests, one build,
# the others answered after a version check ("hit") or, while SQLite's files
# are unchanged, without one ("unchanged").
assert total("tessera_dataset_views", result="rebuilt") == 1, total("tessera_dataset_views", result="rebuilt")
assert total("tessera_dataset_views", result="hit") + total("tessera_dataset_views", result="unchanged") >= 3
assert total("tessera_dataset_views", result="unchanged") >= 1, "SQLite's change token spares version queries"
# Decoded chunks are kept: the second read of the same window takes them
# from the cache (layouts are recorded at ingest).
assert total("tessera_chunk_cache", result="hit") >= 1, total("tessera_chunk_cache", result="hit")
assert total("tessera_chunk_cache", result="miss") >= 1
assert family("tessera_chunk_cache_bytes").type == "gauge"
assert total("tessera_chunk_cache_bytes") > 0
assert total("tessera_responses_from_memory", result="hit") >= 1, total("tessera_responses_from_memory", result="hit")
# The same tiles asked for twice (a slice, then a point): the catalogue is
# asked once for each.
assert total("tessera_tile_index", result="query") == 2, total("tessera_tile_index", result="query")
assert total("tessera_tile_index", result="hit") == 2, total("tessera_tile_index", result="hit")
print("ok")
"#;
    let mut py = command("python3").arg("-c").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}\n{text}", String::from_utf8_lossy(&out.stderr));

    // One JSON access-log line per request, with id, dataset, constraint,
    // status, bytes and duration.
    let log = srv.log();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["request_id"] == "trace-42")
        .unwrap_or_else(|| panic!("no access line in {log}"));
    assert_eq!(line["dataset"], "acc");
    assert_eq!(line["constraint"], "sst[0][0:599][0:799]");
    assert_eq!(line["status"], 200);
    assert!(line["bytes"].as_u64().unwrap() > 1_000_000 && line["seconds"].as_f64().is_some());
}

#[test]
fn conditional_requests_compression_and_cors() {
    let (dir, cat) = archive(None);
    let srv = Server::start(dir.path(), &cat, &[("TESSERA_CORS_ORIGINS", "*")]);
    for path in ["/dap/acc.dds", "/dap/acc.das", "/dap/acc.dods?lat", "/dap/acc.nc?lat"] {
        let (s, head, _) = get(&srv.base, path, &[]);
        assert_eq!(s, 200);
        let tag = header(&head, "etag").unwrap().to_string();
        // (`header` gives the head lowercased; HTTP dates are case-sensitive.)
        let t = chrono::DateTime::parse_from_rfc2822(header(&head, "last-modified").unwrap()).unwrap();
        let lm = t.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let (s, _, body) = get(&srv.base, path, &[("If-None-Match", &tag)]);
        assert_eq!((s, body.len()), (304, 0), "{path}");
        let (s, _, _) = get(&srv.base, path, &[("If-Modified-Since", &lm)]);
        assert_eq!(s, 304, "{path}");
        let (s, _, _) = get(&srv.base, path, &[("If-None-Match", "\"other\"")]);
        assert_eq!(s, 200, "{path}");
        // HTTP dates in their obsolete forms too (RFC 9110 §5.6.7), and a
        // date before the last change is not a match.
        for old_form in [t.format("%A, %d-%b-%y %H:%M:%S GMT").to_string(), t.format("%a %b %e %H:%M:%S %Y").to_string()] {
            let (s, _, _) = get(&srv.base, path, &[("If-Modified-Since", &old_form)]);
            assert_eq!(s, 304, "{path} {old_form}");
        }
        let before = (t - chrono::Duration::seconds(1)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let (s, _, _) = get(&srv.base, path, &[("If-Modified-Since", &before)]);
        assert_eq!(s, 200, "{path} {before}");
    }
    // gzip for text when asked, never for binary data.
    let (_, plain_head, plain) = get(&srv.base, "/dap/acc.das", &[]);
    assert!(header(&plain_head, "content-encoding").is_none());
    let (_, head, gz) = get(&srv.base, "/dap/acc.das", &[("Accept-Encoding", "gzip")]);
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    let mut d = Vec::new();
    let dechunked = gz;
    let mut dec = command("gzip").arg("-dc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    dec.stdin.take().unwrap().write_all(&dechunked).unwrap();
    dec.stdout.take().unwrap().read_to_end(&mut d).unwrap();
    assert_eq!(d, plain);
    let (_, head, _) = get(&srv.base, "/dap/acc.dods?sst", &[("Accept-Encoding", "gzip")]);
    assert!(header(&head, "content-encoding").is_none(), "binary data is sent as it is");
    let (_, head, _) = get(&srv.base, "/dap/acc.dds", &[("Origin", "https://example.org")]);
    assert_eq!(header(&head, "access-control-allow-origin"), Some("*"));
}

/// Opens a data request and reads only its headers, leaving the body (and
/// the server's slot) hanging until the stream is dropped.
fn hold(base: &str, path: &str) -> std::net::TcpStream {
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    small_receive_window(&s);
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let _ = s.read(&mut buf).unwrap();
    s
}

#[test]
fn limits_give_documented_statuses() {
    let (dir, cat) = archive(None);
    let srv = Server::start(
        dir.path(),
        &cat,
        &[
            ("TESSERA_MAX_HEAVY_REQUESTS", "1"),
            ("TESSERA_QUEUE", "0"),
            ("TESSERA_MAX_RESPONSE_BYTES", "6000000"),
            ("TESSERA_MAX_URL_BYTES", "2000"),
            ("TESSERA_HEADER_READ_TIMEOUT_SECS", "1"),
        ],
    );
    // Too large: 413 stating size and limit.
    let (s, _, body) = get(&srv.base, "/dap/acc.dods?sst,chl", &[]);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(s, 413, "{text}");
    assert!(text.contains("limit of 6000000 bytes") && text.contains("response of 11"), "{text}");
    // URL too long: 414.
    let (s, _, body) = get(&srv.base, &format!("/dap/acc.dds?{}", "lat,".repeat(600)), &[]);
    assert_eq!(s, 414, "{}", String::from_utf8_lossy(&body));
    // A slot is held while data is produced, not while a slow client
    // drains it: with one slot, a client that reads nothing does not keep
    // a second large request out.
    let held = hold(&srv.base, "/dap/acc.ascii?sst");
    let t = Instant::now();
    loop {
        // Once the held response has filled what lies between it and its
        // client, its producer waits without the slot.
        let (s, _, body) = get(&srv.base, "/dap/acc.dods?sst[0:1:1]", &[]);
        if s == 200 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "the slot stayed with a client that reads nothing: {}", String::from_utf8_lossy(&body));
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(held);
    // One slot and no queue: of several large requests at once, those that
    // find the slot producing get 503 + Retry-After; small ones never wait.
    let base = srv.base.clone();
    let many: Vec<_> = (0..6)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || get(&base, "/dap/acc.dods?sst[0:1:1]", &[]))
        })
        .collect();
    let results: Vec<(u16, String, Vec<u8>)> = many.into_iter().map(|h| h.join().unwrap()).collect();
    let busy: Vec<&(u16, String, Vec<u8>)> = results.iter().filter(|r| r.0 == 503).collect();
    assert!(!busy.is_empty() && results.iter().all(|r| r.0 == 200 || r.0 == 503), "{:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(header(&busy[0].1, "retry-after"), Some("5"));
    assert!(String::from_utf8_lossy(&busy[0].2).contains("busy"));
    let (s, _, _) = get(&srv.base, "/dap/acc.dds", &[]);
    assert_eq!(s, 200, "metadata is not held up by data responses");
    let (s, _, _) = get(&srv.base, "/dap/acc.dods?lat", &[]);
    assert_eq!(s, 200, "small data responses take no slot");
    // A slow-loris client is cut off after the header-read timeout.
    let host = srv.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.write_all(b"GET /dap/acc.dds HTTP/1.1\r\nHost: x\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(t.elapsed() < Duration::from_secs(4), "connection held {:?}", t.elapsed());
    let _ = n;
    let (_, _, body) = get(&srv.base, "/metrics", &[]);
    let m = String::from_utf8(body).unwrap();
    for reason in ["busy", "url_too_long"] {
        assert!(m.contains(&format!("tessera_requests_rejected_total{{reason=\"{reason}\"}}")), "{reason} in {m}");
    }
}

#[test]
fn sigterm_lets_a_download_in_flight_finish() {
    let (dir, cat) = archive(None);
    let mut srv = Server::start(dir.path(), &cat, &[("TESSERA_SHUTDOWN_GRACE_SECS", "20")]);
    let host = srv.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(s, "GET /dap/acc.dods?sst,chl HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut first = vec![0u8; 65536];
    let n = s.read(&mut first).unwrap();
    let head = String::from_utf8_lossy(&first[..n]).to_lowercase();
    let split = head.find("\r\n\r\n").unwrap();
    let len: usize = header(&head[..split], "content-length").unwrap().parse().unwrap();
    // SIGTERM while the body is still coming.
    unsafe {
        libc::kill(srv.child.id() as i32, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(std::net::TcpStream::connect(&host).is_err() || get(&srv.base, "/healthz", &[]).0 != 200, "no new requests after SIGTERM");
    let mut got = n - (split + 4);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        std::thread::sleep(Duration::from_millis(2));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => panic!("download cut: {e}"),
        }
    }
    assert_eq!(got, len, "the download in flight completed");
    let status = srv.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// A PostgreSQL of the test's own, so that it can be stopped and started.
struct OwnPg {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    _dir: tempfile::TempDir,
}

impl OwnPg {
    fn start() -> Option<OwnPg> {
        let bin = PathBuf::from(std::env::var("TESSERA_TEST_PG_BINDIR").ok()?);
        let dir = tempfile::tempdir().ok()?;
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then_some("postgres");
        if root {
            command("chown").arg("postgres").arg(dir.path()).status().ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let pg = OwnPg { bin, data: dir.path().join("data"), port, run_as, _dir: dir };
        let mut init = pg.cmd("initdb");
        init.arg("-D").arg(&pg.data).args(["-U", "postgres", "-A", "trust", "--no-sync"]);
        assert!(init.output().ok()?.status.success(), "initdb");
        pg.ctl("start");
        Some(pg)
    }

    fn cmd(&self, tool: &str) -> std::process::Command {
        let exe = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = command("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => command(exe),
        }
    }

    fn ctl(&self, action: &str) {
        let mut c = self.cmd("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-w", "-t", "60", "-m", "fast"]);
        let sock = self.data.parent().unwrap();
        c.arg("-o").arg(format!("-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off", self.port, sock.display()));
        c.arg("-l").arg(sock.join("pg.log"));
        c.arg(action);
        let out = c.output().unwrap();
        assert!(out.status.success(), "pg_ctl {action}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn url(&self) -> String {
        // A password, to check that it never reaches a log.
        format!("postgres://postgres:hunter2-secret@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        let mut c = self.cmd("pg_ctl");
        let _ = c.arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]).output();
    }
}

#[test]
fn postgres_going_away_and_coming_back() {
    let Some(pg) = OwnPg::start() else {
        if std::env::var(crate::common::PG_REQUIRED_ENV).is_ok() {
            panic!("TESSERA_TEST_PG_BINDIR is needed for this test");
        }
        eprintln!("note: no PostgreSQL binaries; readiness test skipped");
        return;
    };
    let (dir, cat) = archive(Some(&pg.url()));
    let srv = Server::start(dir.path(), &cat, &[]);
    assert_eq!(get(&srv.base, "/readyz", &[]).0, 200);
    assert_eq!(get(&srv.base, "/dap/acc.dds", &[]).0, 200);
    pg.ctl("stop");
    let t = Instant::now();
    let (s, head, body) = get(&srv.base, "/dap/acc.dds", &[]);
    let failed_in = t.elapsed();
    assert_eq!(s, 503, "{}", String::from_utf8_lossy(&body));
    assert!(header(&head, "content-description") == Some("dods_error") && header(&head, "retry-after").is_some());
    assert!(failed_in < Duration::from_secs(8), "failed fast: {failed_in:?}");
    let (s, _, body) = get(&srv.base, "/readyz", &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, v["status"].as_str()), (503, Some("not ready")));
    assert_ne!(v["catalogue"], "ok");
    assert_eq!(v["pool"], "ok");
    pg.ctl("start");
    let t = Instant::now();
    loop {
        if get(&srv.base, "/readyz", &[]).0 == 200 && get(&srv.base, "/dap/acc.dds", &[]).0 == 200 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("recovered {:.1} s after PostgreSQL came back; failed within {:.2} s while it was down", t.elapsed().as_secs_f64(), failed_in.as_secs_f64());
    assert!(!srv.log().contains("hunter2-secret"), "the catalogue password reached the log");
}

#[test]
fn the_request_time_limit_cuts_a_slow_download() {
    let (dir, cat) = archive(None);
    let srv = Server::start(dir.path(), &cat, &[("TESSERA_REQUEST_TIMEOUT_SECS", "1")]);
    let host = srv.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(s, "GET /dap/acc.ascii?sst HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let t = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 16384];
    loop {
        std::thread::sleep(Duration::from_millis(20));
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
        assert!(t.elapsed() < Duration::from_secs(60), "never cut");
    }
    // ASCII of sst is about 20 MB; reading 16 kB per 20 ms gets far less
    // than that before the limit cuts the body.
    assert!(got < 10_000_000, "received {got} bytes");
    let (_, _, body) = get(&srv.base, "/metrics", &[]);
    assert!(String::from_utf8(body).unwrap().contains("tessera_requests_rejected_total{reason=\"timeout\"}"));
}

/// `serve` started while PostgreSQL is down listens at once: /healthz 200,
/// /readyz 503 naming the catalogue, data requests 503 with Retry-After;
/// when the database comes, it is migrated (a fresh one too) and served.
#[test]
fn serve_starts_while_its_database_is_down() {
    let Some(pg) = OwnPg::start() else {
        if std::env::var(crate::common::PG_REQUIRED_ENV).is_ok() {
            panic!("TESSERA_TEST_PG_BINDIR is needed for this test");
        }
        return;
    };
    let (dir, cat) = archive(Some(&pg.url()));
    // A second, empty database that nothing has migrated yet.
    let fresh = format!("{}/fresh", pg.url().rsplit_once('/').unwrap().0);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
        sqlx::raw_sql("CREATE DATABASE fresh").execute(&mut c).await.unwrap();
    });
    pg.ctl("stop");
    let t = Instant::now();
    let srv = Server::start(dir.path(), &cat, &[]);
    let other = tempfile::tempdir().unwrap();
    let srv2 = Server::start(other.path(), &fresh, &[]);
    assert!(t.elapsed() < Duration::from_secs(10), "listening at once: {:?}", t.elapsed());
    for s in [&srv, &srv2] {
        assert_eq!(get(&s.base, "/healthz", &[]).0, 200);
        let (status, _, body) = get(&s.base, "/readyz", &[]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, v["status"].as_str()), (503, Some("not ready")), "{v}");
        assert!(v["catalogue"].as_str().is_some_and(|c| c != "ok"), "{v}");
        let (status, head, body) = get(&s.base, "/dap/acc.dds", &[]);
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        assert!(header(&head, "retry-after").is_some() && header(&head, "content-description") == Some("dods_error"));
    }
    pg.ctl("start");
    let t = Instant::now();
    while !(get(&srv.base, "/readyz", &[]).0 == 200 && get(&srv2.base, "/readyz", &[]).0 == 200) {
        assert!(t.elapsed() < Duration::from_secs(30), "did not become ready: {}", srv2.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(&srv.base, "/dap/acc.dds", &[]).0, 200);
    let (status, _, body) = get(&srv2.base, "/", &[]);
    assert_eq!(status, 200, "the fresh catalogue was migrated: {}", String::from_utf8_lossy(&body));
    assert_eq!(get(&srv2.base, "/dap/acc.dds", &[]).0, 404);
    for s in [&srv, &srv2] {
        assert!(!s.log().contains("hunter2-secret"), "the catalogue password reached the log");
    }
}

/// A small TCP receive window, so that socket buffers cannot swallow a
/// response the client reads slowly.
fn small_receive_window(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on a socket we own, with a valid int.
    unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, (&size as *const libc::c_int).cast(), 4) };
}

/// Opens a data request and reads its body at about `rate` bytes per
/// second from a thread; returns the thread (which ends when `stop` is set
/// or the body ends) and the bytes it read.
fn slow_reader(base: &str, path: &str, rate: usize, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<usize> {
    let host = base.trim_start_matches("http://").to_string();
    let path = path.to_string();
    std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        small_receive_window(&s);
        write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; rate / 10];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        got
    })
}

/// Slow clients cannot starve the server: with 8 clients reading large
/// responses at 100 kB/s (twice as many as data slots), a small request
/// still answers at once; a client that takes nothing is cut off after the
/// write-idle timeout; one client address cannot hold more than its cap.
#[test]
fn slow_clients_cannot_starve_the_server() {
    let (dir, cat) = archive(None);
    let srv = Server::start(
        dir.path(),
        &cat,
        &[("TESSERA_MAX_HEAVY_REQUESTS", "4"), ("TESSERA_WRITE_IDLE_TIMEOUT_SECS", "3"), ("TESSERA_MAX_PER_CLIENT", "10")],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // 8 x the whole dataset as ASCII (about 25 MB) at 100 kB/s: minutes
    // each, far more than the buffers between producer and client.
    let readers: Vec<_> = (0..8).map(|_| slow_reader(&srv.base, "/dap/acc.ascii", 100_000, stop.clone())).collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let (s, _, body) = get(&srv.base, "/dap/acc.dods?sst[0][300:1:301][400:1:401]", &[]);
        worst = worst.max(t.elapsed());
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    }
    eprintln!("a small request with 8 slow readers in flight: at most {:.3} s", worst.as_secs_f64());
    assert!(worst < Duration::from_millis(800), "took {worst:?}");
    // The cap of 10 per client address: 8 slow readers + 2 more, then 503.
    let extra: Vec<_> = (0..2).map(|_| slow_reader(&srv.base, "/dap/acc.ascii", 100_000, stop.clone())).collect();
    std::thread::sleep(Duration::from_millis(500));
    let (s, head, body) = get(&srv.base, "/dap/acc.dods?sst[0][0][0]", &[]);
    assert_eq!(s, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("this client already has 10 data responses"), "{}", String::from_utf8_lossy(&body));
    assert!(header(&head, "retry-after").is_some());
    assert_eq!(get(&srv.base, "/dap/acc.dds", &[]).0, 200, "metadata is not capped");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        let got = r.join().unwrap();
        assert!(got > 10_000, "each slow reader was served: {got}");
    }
    for r in extra {
        r.join().unwrap();
    }

    // A client that reads nothing at all is cut off after the idle timeout.
    let host = srv.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    small_receive_window(&s);
    write!(s, "GET /dap/acc.ascii HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let t = Instant::now();
    loop {
        let (_, _, m) = get(&srv.base, "/metrics", &[]);
        if String::from_utf8_lossy(&m).contains("tessera_requests_rejected_total{reason=\"write_idle\"}") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "a stalled transfer was never ended");
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("stalled transfer ended after {:.1} s", t.elapsed().as_secs_f64());
    drop(s);
    assert_eq!(get(&srv.base, "/dap/acc.dods?sst[0][300][400]", &[]).0, 200);
}

/// A server answers from what it keeps per dataset version without asking
/// the catalogue on every request (SQLite: the log's metadata; PostgreSQL:
/// LISTEN/NOTIFY), and still sees a slice another process ingests within
/// the stated bound of one second.
fn new_slices_are_seen_within_a_second(catalogue: Option<&str>) {
    let (dir, cat) = archive(catalogue);
    let srv = Server::start(dir.path(), &cat, &[]);
    let times = |base: &str| {
        let (s, _, body) = get(base, "/dap/acc.dds", &[]);
        assert_eq!(s, 200);
        let dds = String::from_utf8(body).unwrap();
        dds.lines().find_map(|l| l.trim().strip_prefix("Float64 time[time = ").and_then(|r| r.strip_suffix("];")).map(|n| n.parse::<usize>().unwrap())).unwrap()
    };
    for _ in 0..20 {
        assert_eq!(times(&srv.base), 3);
        std::thread::sleep(Duration::from_millis(10));
    }
    let (_, _, body) = get(&srv.base, "/metrics", &[]);
    let text = String::from_utf8(body).unwrap();
    let unchanged: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tessera_dataset_views_total{result=\"unchanged\"} "))
        .map_or(0.0, |v| v.parse().unwrap());
    assert!(unchanged >= 10.0, "{cat}: {unchanged} of 20 views served without a version query\n{text}");
    // Three more days, ingested by another process.
    let later = dir.path().join("later.nc");
    source::write(&later, &source::Spec { t0: 3.5, ..Default::default() });
    Cli::new(dir.path(), &cat).ok(&["ingest", "--dataset", "acc", later.to_str().unwrap()]);
    let committed = Instant::now();
    loop {
        if times(&srv.base) == 6 {
            break;
        }
        assert!(committed.elapsed() < Duration::from_secs(1), "{cat}: the new slices were not served within a second");
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("{cat}: new slices served {:.3} s after the ingest returned", committed.elapsed().as_secs_f64());
}

#[test]
fn new_slices_are_seen_within_a_second_with_sqlite() {
    new_slices_are_seen_within_a_second(None);
}

#[test]
fn new_slices_are_seen_within_a_second_with_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(url) = rt.block_on(crate::common::postgres_url()) else { return };
    new_slices_are_seen_within_a_second(Some(&url));
}

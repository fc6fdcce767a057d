//! Memory and throughput of a 2 GiB `.dods` response.
//!
//! Builds a dataset of 32 slices of a 4096 x 4096 float32 grid in
//! 1024 x 1024 tiles (dense: 512 tiles; `BENCH_SPARSE=1`: one tile per slice,
//! the rest missing and served as _FillValue), starts `tessera serve` as its own process, streams
//! `sst` whole (2 GiB) and samples the server's resident memory from
//! /proc/<pid>/status every 20 ms. Reference, measured in the same run:
//! 2 GiB pushed through a plain loopback socket by a thread writing a
//! 1 MiB buffer (the transport ceiling on this machine).
//!
//! Then the same 2 GiB as `.nc` (NetCDF classic): time to first byte and
//! resident memory. Growth is reported beyond the decoded chunks the
//! server keeps (`tessera_chunk_cache_bytes`, bounded by
//! `--chunk-cache-bytes`; `BENCH_CHUNK_CACHE_BYTES` sets it here).
//!
//! Run: `cargo bench --bench dods_memory`

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 4096;
const SLICES: usize = 32;

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn write_source(path: &std::path::Path) {
    tessera::store::tile::quiet_hdf5();
    let mut f = netcdf::create_with(path, netcdf::Options::NETCDF4).unwrap();
    f.add_dimension("lat", N).unwrap();
    f.add_dimension("lon", N).unwrap();
    let mut la = f.add_variable::<f64>("lat", &["lat"]).unwrap();
    la.put_attribute("units", "degrees_north").unwrap();
    la.put_values(&(0..N).map(|j| 80.0 - j as f64 * 0.01).collect::<Vec<_>>(), ..).unwrap();
    let mut lo = f.add_variable::<f64>("lon", &["lon"]).unwrap();
    lo.put_attribute("units", "degrees_east").unwrap();
    lo.put_values(&(0..N).map(|i| i as f64 * 0.01).collect::<Vec<_>>(), ..).unwrap();
    let mut v = f.add_variable::<f32>("sst", &["lat", "lon"]).unwrap();
    v.set_chunking(&[512, 512]).unwrap();
    v.set_compression(1, true).unwrap();
    v.put_attribute("_FillValue", -999.0f32).unwrap();
    if std::env::var_os("BENCH_SPARSE").is_some() {
        // Only the first 512 x 512 cells hold data: one tile per slice,
        // the others missing and served as _FillValue.
        let block: Vec<f32> = (0..512 * 512).map(|i| (i % 1000) as f32 * 0.01).collect();
        v.put_values(&block, (&[0usize, 0][..], &[512usize, 512][..])).unwrap();
    } else {
        // Dense: every tile exists, so the response reads 16 tiles per
        // slice, 512 in all (more than the open-file cache holds).
        for j in 0..N {
            let row: Vec<f32> = (0..N).map(|i| ((i * 7 + j * 3) % 1000) as f32 * 0.01).collect();
            v.put_values(&row, (&[j, 0][..], &[1usize, N][..])).unwrap();
        }
    }
    f.close().unwrap();
}

fn tessera(data: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.args(args).env("TESSERA_DATA_DIR", data).env_remove("TESSERA_CATALOGUE").env_remove("TESSERA_POOL").env("RUST_LOG", "warn");
    c
}

/// GETs `path` from `addr`, discarding the body; returns bytes received.
fn download(addr: &str, path: &str, mut on_chunk: impl FnMut()) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        on_chunk();
    }
    total
}

/// A gauge's value from the server's /metrics.
fn gauge(addr: &str, name: &str) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

fn loopback_reference(bytes: u64) -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let buf = vec![7u8; 1 << 20];
        let mut sent = 0;
        while sent < bytes {
            s.write_all(&buf).unwrap();
            sent += buf.len() as u64;
        }
    });
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    while got < bytes {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    writer.join().unwrap();
    got as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("dods_memory: bench");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let src = dir.path().join("sparse.nc");
    write_source(&src);
    let t = Instant::now();
    for day in 0..SLICES {
        let time = format!("2024-{:02}-01T00:00:00Z", day % 12 + 1).replace("2024-", &format!("{}-", 2000 + day / 12));
        let out = tessera(&data, &["ingest", "--dataset", "big", "--tile-size", "1024x1024", "--time", &time, src.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    eprintln!("ingested {SLICES} slices in {:.1} s", t.elapsed().as_secs_f64());

    let mut server = tessera(&data, &["serve", "--listen", "127.0.0.1:0", "--max-response-bytes", "4294967296"])
        .envs(std::env::var("BENCH_OPEN_FILES").ok().map(|v| ("TESSERA_OPEN_FILES".to_string(), v)))
        .envs(std::env::var("BENCH_CHUNK_CACHE_BYTES").ok().map(|v| ("TESSERA_CHUNK_CACHE_BYTES".to_string(), v)))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = server.id();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("serving on http://").map(|r| r.split('/').next().unwrap().to_string()))
        .unwrap();
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(200));
    // Warm up (open the catalogue, build the view) with a small request.
    download(&addr, "/dap/big.dods?sst[0][0:10][0:10]", || {});
    let before = rss_kib(pid);
    let mut peak = before;
    let mut last = Instant::now();
    let t = Instant::now();
    let bytes = download(&addr, "/dap/big.dods?sst", || {
        if last.elapsed() >= Duration::from_millis(20) {
            peak = peak.max(rss_kib(pid));
            last = Instant::now();
        }
    });
    let secs = t.elapsed().as_secs_f64();
    peak = peak.max(rss_kib(pid));
    // Decoded chunks the server keeps (bounded by its setting).
    let cache_mib = gauge(&addr, "tessera_chunk_cache_bytes ") / 1048576.0;

    // The same data as a NetCDF download: time to first byte and memory.
    let nc_before = rss_kib(pid);
    let mut nc_peak = nc_before;
    let mut first: Option<f64> = None;
    let mut last = Instant::now();
    let t = Instant::now();
    let nc_bytes = download(&addr, "/dap/big.nc?sst", || {
        first.get_or_insert_with(|| t.elapsed().as_secs_f64());
        if last.elapsed() >= Duration::from_millis(20) {
            nc_peak = nc_peak.max(rss_kib(pid));
            last = Instant::now();
        }
    });
    let nc_secs = t.elapsed().as_secs_f64();
    nc_peak = nc_peak.max(rss_kib(pid));
    let _ = server.kill();
    let expected = (SLICES * N * N * 4) as u64;
    assert!(bytes > expected, "got {bytes} bytes, expected more than {expected}");
    let reference = loopback_reference(bytes);
    let rate = bytes as f64 / secs;
    let growth_mib = (peak.saturating_sub(before)) as f64 / 1024.0;
    println!("dods_memory: {:.2} GiB in {secs:.1} s", bytes as f64 / (1u64 << 30) as f64);
    let beyond = growth_mib - cache_mib;
    println!(
        "  server RSS before {:.1} MiB, peak {:.1} MiB, growth {growth_mib:.1} MiB; {cache_mib:.1} MiB of it decoded chunks kept; beyond them {beyond:.1} MiB (target < 100 MiB)",
        before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!("  throughput {:.0} MiB/s = {:.2} x the plain loopback reference ({:.0} MiB/s)", rate / 1048576.0, rate / reference, reference / 1048576.0);
    let nc_growth = (nc_peak.saturating_sub(nc_before)) as f64 / 1024.0;
    println!(
        "nc download: {:.2} GiB in {nc_secs:.1} s, first byte after {:.3} s, RSS growth {nc_growth:.1} MiB (peak {:.1} MiB), {:.2} x loopback",
        nc_bytes as f64 / (1u64 << 30) as f64,
        first.unwrap_or(f64::NAN),
        nc_peak as f64 / 1024.0,
        nc_bytes as f64 / nc_secs / reference
    );
    assert!(beyond < 100.0, "resident memory grew by {beyond:.1} MiB beyond the chunk cache");
    assert!(nc_growth < 100.0, "resident memory grew by {nc_growth:.1} MiB during the .nc download");
}

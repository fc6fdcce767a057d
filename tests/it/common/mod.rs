//! The test harness: catalogues (SQLite, a throwaway PostgreSQL, memory),
//! generated CF sources with known values, and the real binary.

pub mod server;
pub mod source;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tessera::catalogue::{self, Catalogue};

/// Base URL of a PostgreSQL server the tests may create databases on
/// (`.ci/run` and `scripts/test` start one and set it).
pub const PG_ENV: &str = "TESSERA_TEST_POSTGRES";
/// When set, a missing PostgreSQL fails the tests instead of skipping them.
pub const PG_REQUIRED_ENV: &str = "TESSERA_TEST_POSTGRES_REQUIRED";

/// A fresh, empty PostgreSQL database, or None (with a note) when no server
/// is configured.
pub async fn postgres_url() -> Option<String> {
    let Ok(base) = std::env::var(PG_ENV) else {
        if std::env::var(PG_REQUIRED_ENV).is_ok() {
            panic!("{PG_REQUIRED_ENV} is set but {PG_ENV} is not: the PostgreSQL tests cannot run");
        }
        eprintln!("note: {PG_ENV} not set; PostgreSQL test skipped");
        return None;
    };
    use sqlx::Connection;
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("tessera_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to the test PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database");
    Some(format!("{prefix}/{name}"))
}

/// The catalogues every backend-parametrised test runs against.
pub async fn catalogue_urls(dir: &Path) -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}", dir.join("catalogue.db").display())];
    if let Some(pg) = postgres_url().await {
        urls.push(pg);
    }
    urls
}

pub async fn open(url: &str) -> Arc<dyn Catalogue> {
    catalogue::open(url, true).await.unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// A command whose child inherits no file descriptor but stdio.
///
/// HDF5 takes `flock` locks on the files it opens, without `O_CLOEXEC`; a
/// child forked while another test thread has a NetCDF-4 file open would
/// keep that descriptor, and its lock, for its whole life, and the test
/// thread's next open of the file would fail with "unable to lock the file".
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    // SAFETY: close_range is async-signal-safe and touches no Rust state.
    unsafe {
        c.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    c
}

/// Runs the real `tessera` binary with a data dir and catalogue.
pub struct Cli {
    pub data_dir: PathBuf,
    pub catalogue: String,
}

impl Cli {
    pub fn new(data_dir: &Path, catalogue: &str) -> Self {
        Cli { data_dir: data_dir.to_path_buf(), catalogue: catalogue.to_string() }
    }

    pub fn pool(&self) -> PathBuf {
        self.data_dir.join("pool")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        command(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA_DATA_DIR", &self.data_dir)
            .env("TESSERA_CATALOGUE", &self.catalogue)
            .env_remove("TESSERA_POOL")
            .env_remove("TESSERA_CONFIG")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run tessera")
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tessera {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and insists on failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "tessera {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Every regular file under a directory, relative to it, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A minimal HTTP/1.1 client: one request per connection, chunked bodies
/// decoded, header block lower-cased. Returns status, headers and body.
pub fn http_request(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = buf.get(split + 4..).unwrap_or_default().to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    (status, head, body)
}

/// A header's value in a lower-cased header block.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::trim)
}

//! Configuration: flags, then `TESSERA_*` environment variables, then an
//! optional TOML file (`--config` / `TESSERA_CONFIG`), then defaults.
//!
//! ```toml
//! # tessera.toml
//! data_dir = "/var/lib/tessera"
//! catalogue = "postgres://tessera@db/tessera"
//! pool = "/srv/tessera/pool"
//! listen = "0.0.0.0:8080"
//! log_format = "json"          # or "text"
//! max_response_bytes = 4294967296
//! open_files = 32               # tile files kept open (about 2 MiB of memory each)
//! max_heavy_requests = 4        # data responses produced at once (default 2 x cores)
//! queue = 32                    # data requests that may wait; beyond: 503 + Retry-After
//! request_timeout_secs = 3600   # whole request, body included
//! header_read_timeout_secs = 10 # slow or idle clients
//! max_url_bytes = 16384         # 414 beyond
//! shutdown_grace_secs = 25      # after SIGTERM
//! cors_origins = ["*"]          # default: no CORS headers
//! retire_grace_secs = 3600      # replaced tiles stay this long for readers in flight
//! max_per_client = 16           # data responses one client address may have in flight (0: no cap)
//! write_idle_timeout_secs = 60  # a transfer whose client takes nothing this long is ended
//! ```
//!
//! Defaults: the data directory is `./tessera-data`; the catalogue is the
//! SQLite file `<data_dir>/catalogue.db`, created on first use; the pool is
//! `<data_dir>/pool`; the service listens on `127.0.0.1:8080`.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "tessera-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 << 30;
pub const DEFAULT_OPEN_FILES: usize = 32;

/// The settings flags, `TESSERA_*` variables and a TOML file may each
/// give; unset is `None`. Unknown keys in a file are an error, so that a
/// typo does not silently fall back to a default.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: Option<PathBuf>,
    pub catalogue: Option<String>,
    pub pool: Option<PathBuf>,
    pub listen: Option<String>,
    pub log_format: Option<LogFormat>,
    pub max_response_bytes: Option<u64>,
    pub open_files: Option<usize>,
    pub max_heavy_requests: Option<usize>,
    pub queue: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub max_url_bytes: Option<usize>,
    pub shutdown_grace_secs: Option<u64>,
    pub cors_origins: Option<Vec<String>>,
    pub retire_grace_secs: Option<u64>,
    pub max_per_client: Option<usize>,
    pub write_idle_timeout_secs: Option<u64>,
}

/// What flags and environment gave (clap merges those two), and the file
/// to read the rest from.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub catalogue: String,
    pub pool: PathBuf,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// Largest response (XDR bytes) served; larger requests get 413.
    pub max_response_bytes: u64,
    /// Tile files kept open by the reader.
    pub open_files: usize,
    pub limits: ServerLimits,
    /// How long a tile file replaced by `ingest --replace` stays in the
    /// pool for readers that planned before the replacement (default: the
    /// request time limit, which no reader outlives).
    pub retire_grace: std::time::Duration,
}

/// Limits and timeouts of the HTTP service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// Data responses (.dods, .ascii, .nc, .nc4) produced at once.
    pub max_heavy_requests: usize,
    /// Data requests allowed to wait for a slot; beyond: 503 + Retry-After.
    pub queue: usize,
    /// Longest a request may take, headers and body.
    pub request_timeout: std::time::Duration,
    /// Longest a client may take to send its request headers (slow clients,
    /// idle keep-alive connections).
    pub header_read_timeout: std::time::Duration,
    /// Longest request URL accepted (414 beyond).
    pub max_url_bytes: usize,
    /// After SIGTERM, how long requests in flight may finish.
    pub shutdown_grace: std::time::Duration,
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Data responses one client address may have in flight (0: no cap).
    pub max_per_client: usize,
    /// A transfer whose client takes nothing for this long is ended.
    pub write_idle_timeout: std::time::Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServerLimits {
            max_heavy_requests: (2 * cores).max(2),
            queue: 32,
            request_timeout: std::time::Duration::from_secs(3600),
            header_read_timeout: std::time::Duration::from_secs(10),
            max_url_bytes: 16 * 1024,
            shutdown_grace: std::time::Duration::from_secs(25),
            cors_origins: Vec::new(),
            max_per_client: 16,
            write_idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Resolves flags/environment over the file over the defaults.
    pub fn resolve(o: &Overrides) -> Result<Config, ConfigError> {
        let file = match &o.config {
            Some(path) => load_file(path)?,
            None => Settings::default(),
        };
        let data_dir = o.settings.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let catalogue = o.settings.catalogue.clone().or(file.catalogue).unwrap_or_else(|| {
            format!("sqlite://{}", data_dir.join("catalogue.db").display())
        });
        let pool = o.settings.pool.clone().or(file.pool).unwrap_or_else(|| data_dir.join("pool"));
        let listen_s = o.settings.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_s
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("listen address {listen_s:?} is not HOST:PORT, e.g. 127.0.0.1:8080")))?;
        let log_format = o.settings.log_format.or(file.log_format).unwrap_or(LogFormat::Text);
        let max_response_bytes = o.settings.max_response_bytes.or(file.max_response_bytes).unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        let open_files = o.settings.open_files.or(file.open_files).unwrap_or(DEFAULT_OPEN_FILES).max(1);
        let d = ServerLimits::default();
        let secs = std::time::Duration::from_secs;
        let limits = ServerLimits {
            max_heavy_requests: o.settings.max_heavy_requests.or(file.max_heavy_requests).unwrap_or(d.max_heavy_requests).max(1),
            queue: o.settings.queue.or(file.queue).unwrap_or(d.queue),
            request_timeout: o.settings.request_timeout_secs.or(file.request_timeout_secs).map(secs).unwrap_or(d.request_timeout),
            header_read_timeout: o.settings.header_read_timeout_secs.or(file.header_read_timeout_secs).map(secs).unwrap_or(d.header_read_timeout),
            max_url_bytes: o.settings.max_url_bytes.or(file.max_url_bytes).unwrap_or(d.max_url_bytes),
            shutdown_grace: o.settings.shutdown_grace_secs.or(file.shutdown_grace_secs).map(secs).unwrap_or(d.shutdown_grace),
            cors_origins: o.settings.cors_origins.clone().or(file.cors_origins).unwrap_or(d.cors_origins),
            max_per_client: o.settings.max_per_client.or(file.max_per_client).unwrap_or(d.max_per_client),
            write_idle_timeout: o.settings.write_idle_timeout_secs.or(file.write_idle_timeout_secs).map(secs).unwrap_or(d.write_idle_timeout),
        };
        let retire_grace = o.settings.retire_grace_secs.or(file.retire_grace_secs).map(secs).unwrap_or(limits.request_timeout);
        Ok(Config { data_dir, catalogue, pool, listen, log_format, max_response_bytes, open_files, limits, retire_grace })
    }
}

fn load_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.message().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_live_in_the_data_dir() {
        let c = Config::resolve(&Overrides::default()).unwrap();
        assert_eq!(c.catalogue, "sqlite://tessera-data/catalogue.db");
        assert_eq!(c.pool, PathBuf::from("tessera-data/pool"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "data_dir = \"/d\"\npool = \"/p\"\nlisten = \"0.0.0.0:9\"\n").unwrap();
        let o = Overrides { config: Some(path.clone()), settings: Settings { pool: Some("/flag".into()), ..Default::default() } };
        let c = Config::resolve(&o).unwrap();
        assert_eq!(c.pool, PathBuf::from("/flag"));
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.catalogue, "sqlite:///d/catalogue.db");
        assert_eq!(c.listen.port(), 9);
        std::fs::write(&path, "pool_dir = \"/x\"\n").unwrap();
        assert!(Config::resolve(&o).unwrap_err().to_string().contains("pool_dir"));
    }
}

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
//! chunk_cache_bytes = 134217728 # decoded tile chunks kept in memory (0: none)
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

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "tessera-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 << 30;
pub const DEFAULT_OPEN_FILES: usize = 32;

/// Settings every command takes. Each field is at once a flag (`--data-dir`,
/// global), an environment variable (`TESSERA_DATA_DIR`) and a TOML key
/// (`data_dir`): one declaration, no copies. Unset is `None`.
#[derive(Debug, Default, Clone, Serialize, Deserialize, clap::Args)]
pub struct Settings {
    /// Directory for the default catalogue and pool [default: ./tessera-data].
    #[arg(long, global = true, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Catalogue URL: sqlite://PATH or postgres://... [default: sqlite://<data-dir>/catalogue.db].
    #[arg(long, global = true, env = "TESSERA_CATALOGUE", value_name = "URL", hide_env_values = true)]
    pub catalogue: Option<String>,
    /// Tile pool directory [default: <data-dir>/pool].
    #[arg(long, global = true, env = "TESSERA_POOL", value_name = "DIR")]
    pub pool: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "TESSERA_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Seconds a tile file replaced by `ingest --replace` stays for readers
    /// in flight before it is removed [default: the request time limit, 3600].
    #[arg(long, global = true, env = "TESSERA_RETIRE_GRACE_SECS", value_name = "SECS")]
    pub retire_grace_secs: Option<u64>,
}

/// Settings of the HTTP service (`serve`, `demo`); flag, environment
/// variable and TOML key as for [`Settings`].
#[derive(Debug, Default, Clone, Serialize, Deserialize, clap::Args)]
pub struct ServeSettings {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TESSERA_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Largest response in bytes; larger requests get 413 [default: 4 GiB].
    #[arg(long, env = "TESSERA_MAX_RESPONSE_BYTES", value_name = "BYTES")]
    pub max_response_bytes: Option<u64>,
    /// Tile files kept open, about 2 MiB of memory each [default: 32].
    #[arg(long, env = "TESSERA_OPEN_FILES", value_name = "N")]
    pub open_files: Option<usize>,
    /// Bytes of decoded tile chunks kept in memory; 0: none [default: 128 MiB].
    #[arg(long, env = "TESSERA_CHUNK_CACHE_BYTES", value_name = "BYTES")]
    pub chunk_cache_bytes: Option<u64>,
    /// Data responses produced at once [default: 2 x cores].
    #[arg(long, env = "TESSERA_MAX_HEAVY_REQUESTS", value_name = "N")]
    pub max_heavy_requests: Option<usize>,
    /// Data requests that may wait for a slot; beyond: 503 [default: 32].
    #[arg(long, env = "TESSERA_QUEUE", value_name = "N")]
    pub queue: Option<usize>,
    /// Longest time a request may take, body included [default: 3600].
    #[arg(long, env = "TESSERA_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Longest time a client may take to send request headers [default: 10].
    #[arg(long, env = "TESSERA_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Longest request URL [default: 16384].
    #[arg(long, env = "TESSERA_MAX_URL_BYTES", value_name = "BYTES")]
    pub max_url_bytes: Option<usize>,
    /// After SIGTERM, how long requests in flight may finish [default: 25].
    #[arg(long, env = "TESSERA_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// CORS origins, comma-separated (`*` for any) [default: none].
    #[arg(long, env = "TESSERA_CORS_ORIGINS", value_name = "ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Data responses one client address may have in flight; 0: no cap
    /// (behind a proxy, every client has its address) [default: 16].
    #[arg(long, env = "TESSERA_MAX_PER_CLIENT", value_name = "N")]
    pub max_per_client: Option<usize>,
    /// End a transfer whose client takes nothing for this long [default: 60].
    #[arg(long, env = "TESSERA_WRITE_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub write_idle_timeout_secs: Option<u64>,
}

/// What flags and environment gave (clap merges those two), and the file
/// to read the rest from.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub settings: Settings,
    pub serve: ServeSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
    /// Bytes of decoded chunks the reader keeps.
    pub chunk_cache_bytes: u64,
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
            None => toml::Table::new(),
        };
        let s: Settings = layered(&o.settings, &file)?;
        let v: ServeSettings = layered(&o.serve, &file)?;
        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let catalogue = s.catalogue.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("catalogue.db").display()));
        let pool = s.pool.unwrap_or_else(|| data_dir.join("pool"));
        let listen_s = v.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_s
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("listen address {listen_s:?} is not HOST:PORT, e.g. 127.0.0.1:8080")))?;
        let d = ServerLimits::default();
        let secs = std::time::Duration::from_secs;
        let limits = ServerLimits {
            max_heavy_requests: v.max_heavy_requests.unwrap_or(d.max_heavy_requests).max(1),
            queue: v.queue.unwrap_or(d.queue),
            request_timeout: v.request_timeout_secs.map(secs).unwrap_or(d.request_timeout),
            header_read_timeout: v.header_read_timeout_secs.map(secs).unwrap_or(d.header_read_timeout),
            max_url_bytes: v.max_url_bytes.unwrap_or(d.max_url_bytes),
            shutdown_grace: v.shutdown_grace_secs.map(secs).unwrap_or(d.shutdown_grace),
            cors_origins: v.cors_origins.unwrap_or(d.cors_origins),
            max_per_client: v.max_per_client.unwrap_or(d.max_per_client),
            write_idle_timeout: v.write_idle_timeout_secs.map(secs).unwrap_or(d.write_idle_timeout),
        };
        Ok(Config {
            data_dir,
            catalogue,
            pool,
            listen,
            log_format: s.log_format.unwrap_or(LogFormat::Text),
            max_response_bytes: v.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            open_files: v.open_files.unwrap_or(DEFAULT_OPEN_FILES).max(1),
            chunk_cache_bytes: v.chunk_cache_bytes.unwrap_or(crate::store::reader::DEFAULT_CHUNK_CACHE_BYTES),
            retire_grace: s.retire_grace_secs.map(secs).unwrap_or(limits.request_timeout),
            limits,
        })
    }
}

/// The one layering rule, for any settings type: what flags and the
/// environment set (serialized, `None` left out) over what the file sets.
fn layered<T: Serialize + DeserializeOwned>(over: &T, file: &toml::Table) -> Result<T, ConfigError> {
    let invalid = |e: &dyn std::fmt::Display| ConfigError::Invalid(format!("settings: {e}"));
    let mut merged = file.clone();
    merged.extend(toml::Table::try_from(over).map_err(|e| invalid(&e))?);
    merged.try_into().map_err(|e| invalid(&e))
}

/// The TOML keys there are: the ids of the flags, which are the field names.
fn known_keys() -> Vec<String> {
    use clap::Args;
    let cmd = ServeSettings::augment_args(Settings::augment_args(clap::Command::new("tessera")));
    cmd.get_arguments().map(|a| a.get_id().to_string()).collect()
}

/// Reads a configuration file. Unknown keys are an error, so that a typo
/// does not silently fall back to a default.
fn load_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let parse = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
    let table: toml::Table = toml::from_str(&text).map_err(|e| parse(e.message().to_string()))?;
    let known = known_keys();
    if let Some(k) = table.keys().find(|k| !known.contains(k)) {
        let near = known.iter().min_by_key(|n| strsim::levenshtein(n, k)).filter(|n| strsim::levenshtein(n, k) <= 2);
        return Err(parse(match near {
            Some(n) => format!("unknown setting `{k}`; did you mean `{n}`?"),
            None => format!("unknown setting `{k}`; the settings are {}", known.join(", ")),
        }));
    }
    // Values of the wrong type are reported against the file, not as
    // "settings: ...".
    layered::<Settings>(&Settings::default(), &table).map_err(|e| parse(e.to_string().trim_start_matches("settings: ").to_string()))?;
    layered::<ServeSettings>(&ServeSettings::default(), &table).map_err(|e| parse(e.to_string().trim_start_matches("settings: ").to_string()))?;
    Ok(table)
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
        let o = Overrides { config: Some(path.clone()), settings: Settings { pool: Some("/flag".into()), ..Default::default() }, ..Default::default() };
        let c = Config::resolve(&o).unwrap();
        assert_eq!(c.pool, PathBuf::from("/flag"));
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.catalogue, "sqlite:///d/catalogue.db");
        assert_eq!(c.listen.port(), 9);
        std::fs::write(&path, "pool_dir = \"/x\"\n").unwrap();
        assert!(Config::resolve(&o).unwrap_err().to_string().contains("unknown setting `pool_dir`"));
        std::fs::write(&path, "queue = \"many\"\n").unwrap();
        let e = Config::resolve(&o).unwrap_err().to_string();
        assert!(e.starts_with("config file") && e.contains("queue"), "{e}");
        std::fs::write(&path, "queue = 3\nlog_format = \"json\"\ncors_origins = [\"*\"]\n").unwrap();
        let o = Overrides { config: Some(path.clone()), serve: ServeSettings { queue: Some(5), ..Default::default() }, ..Default::default() };
        let c = Config::resolve(&o).unwrap();
        assert_eq!((c.limits.queue, c.log_format, c.limits.cors_origins), (5, LogFormat::Json, vec!["*".to_string()]));
    }
}

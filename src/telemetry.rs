//! Logging: `tracing` to stderr, human-readable or JSON; `RUST_LOG` filters
//! (default `info`).

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
            .expect("valid buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests); ours still renders.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("tessera_http_requests_total", "HTTP requests by route kind and status");
    describe_histogram!("tessera_http_request_duration_seconds", Unit::Seconds, "Time to response headers, by route kind");
    describe_counter!("tessera_http_response_bytes_total", Unit::Bytes, "Declared response lengths (Content-Length), by route kind");
    describe_counter!("tessera_body_bytes_total", Unit::Bytes, "Bytes of streamed data bodies handed to connections");
    describe_gauge!("tessera_http_in_flight", "Requests being handled");
    describe_counter!("tessera_requests_rejected_total", "Requests refused by a limit, by reason");
    describe_counter!("tessera_tiles_read_total", "Tile windows read");
    describe_histogram!("tessera_tile_read_seconds", Unit::Seconds, "Time to read one tile window");
    describe_counter!("tessera_tile_errors_total", "Catalogued tiles that could not be read");
    describe_histogram!("tessera_catalogue_query_seconds", Unit::Seconds, "Catalogue round trips on the request path, by operation");
    describe_counter!("tessera_dataset_views_total", "Dataset views on the request path: hit (the cached view is current) or rebuilt (the dataset changed)");
    describe_counter!("tessera_tile_index_total", "Tile lookups on the request path: hit (answered from the dataset version's index in memory) or query (asked of the catalogue)");
    describe_counter!("tessera_ingest_files_total", "Source files ingested, by result");
    describe_counter!("tessera_ingest_tiles_total", "Tiles written by ingest (in the ingesting process)");
    describe_gauge!("tessera_datasets", "Datasets in the catalogue, read at scrape time");
    describe_gauge!("tessera_tiles_stored", "Tiles in the catalogue, read at scrape time");
    describe_gauge!("tessera_bytes_stored", "Bytes of tiles in the catalogue, read at scrape time");
    describe_gauge!("tessera_time_slices", "Time slices in the catalogue, summed over datasets");
}

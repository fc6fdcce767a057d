//! One tessera server for the whole suite, on 127.0.0.1 and a free port,
//! in a thread of its own, serving datasets ingested from generated
//! sources:
//!
//! * `acc`: the standard source (time 3, lat 600 descending, lon 800;
//!   sst, packed chl, u8 mask) with 256 x 256 tiles, so requests cross
//!   partial edge tiles and missing tiles;
//! * `types`: every stored type on a projected (UTM) grid, 32 x 32 tiles;
//! * `levels`: a 4-D variable with a vertical axis;
//! * `broken`: like `acc`, with one tile file removed after ingest.

use super::source;
use std::path::PathBuf;
use std::sync::OnceLock;
use tessera::ingest::{IngestOptions, ingest_file};
use tessera::model::{DatasetName, TileShape, parse_user_time};
use tessera::store::Pool;

pub struct Fixture {
    pub base: String,
    pub dir: PathBuf,
    pub catalogue: String,
    pub spec: source::Spec,
}

impl Fixture {
    pub fn url(&self, dataset: &str) -> String {
        format!("{}/dap/{dataset}", self.base)
    }
    pub fn source(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Largest response the fixture serves (to test 413 cheaply).
pub const MAX_RESPONSE: u64 = 8 << 20;

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The server runs as a separate `tessera serve` process: the clients under
/// test (netCDF-C through the `netcdf` crate) hold libnetcdf's process-wide
/// lock for a whole request, so a server in the same process could never
/// read a tile while they wait for it.
pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let catalogue = format!("sqlite://{}", dir.join("c.db").display());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let cat = tessera::catalogue::open(&catalogue, true).await.unwrap();
            let pool = Pool::new(dir.join("pool"));
            let spec = source::Spec::default();
            let acc = dir.join("acc.nc");
            source::write(&acc, &spec);
            let ingest = |name: &str, tile: usize| {
                let mut o = IngestOptions::new(DatasetName::parse(name).unwrap());
                o.tile = Some(TileShape::new(tile, tile).unwrap());
                o
            };
            ingest_file(&cat, &pool, &acc, &ingest("acc", 256)).await.unwrap();
            ingest_file(&cat, &pool, &acc, &ingest("broken", 256)).await.unwrap();
            std::fs::remove_file(pool.root().join("broken/2010-01-02T12-00-00.000/sst_tile_x1_y1.nc")).unwrap();
            let types = dir.join("types.nc");
            source::write_all_types(&types, 45, 70);
            let mut o = ingest("types", 32);
            o.time = Some(parse_user_time("2020-02-29T06:00:00Z").unwrap());
            ingest_file(&cat, &pool, &types, &o).await.unwrap();
            let levels = dir.join("levels.nc");
            source::write_levels(&levels);
            ingest_file(&cat, &pool, &levels, &ingest("levels", 16)).await.unwrap();
        });
        let tmp = dir.join("server-tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let base = start_server(&dir, &catalogue, &[("TESSERA_MAX_RESPONSE_BYTES", &MAX_RESPONSE.to_string()), ("TMPDIR", tmp.to_str().unwrap())]);
        Fixture { base, dir, catalogue, spec: source::Spec::default() }
    })
}

/// Starts `tessera serve` on a free port from a thread that lives as long
/// as the test process; the server gets SIGTERM when that thread (the
/// process) ends. Returns the base URL.
pub fn start_server(data_dir: &std::path::Path, catalogue: &str, env: &[(&str, &str)]) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let data_dir = data_dir.to_path_buf();
    let catalogue = catalogue.to_string();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    std::thread::spawn(move || {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut cmd = super::command(env!("CARGO_BIN_EXE_tessera"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("TESSERA_DATA_DIR", &data_dir)
            .env("TESSERA_CATALOGUE", &catalogue)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start tessera serve");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("serving on ").map(|r| r.split_whitespace().next().unwrap().trim_end_matches('/').to_string()))
            .expect("the server prints its address");
        tx.send(base).unwrap();
        for _ in lines {}
        let _ = child.wait();
    });
    rx.recv().expect("the test server started")
}

//! The command line: argument parsing and the commands themselves. Errors
//! travel as `anyhow` and are printed once, on one line, by `main`.

use crate::catalogue::{self, Catalogue, Dataset, MetadataEdit};
use crate::config::{Config, Overrides, ServeSettings, Settings};
use crate::fsck::{FsckOptions, fsck};
use crate::ingest::{IngestOptions, Unpack, ingest_file};
use crate::model::{DatasetName, TileFormat, TileShape, parse_user_time};
use crate::store::Pool;
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "A tiled raster archive server: NetCDF tiles, a catalogue, OPeNDAP.")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply catalogue migrations.
    Migrate,
    /// Cut source NetCDF files into tiles and catalogue them.
    Ingest(IngestArgs),
    /// List, inspect or delete datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Check the catalogue against the pool.
    Fsck(FsckArgs),
    /// Record where each tile's values lie in its file (archives made
    /// before tessera recorded it), so that tiles are read without
    /// libnetcdf.
    Reindex(ReindexArgs),
    /// Build or rebuild a dataset's overviews (levels 2, 4, 8, ... that
    /// answer strided requests and maps): for datasets made before
    /// overviews or created with `--no-overviews`.
    #[command(subcommand)]
    Overviews(OverviewsCommand),
    /// Remove tile files retired by `ingest --replace` once their grace
    /// period is over (the server and every ingest also do this).
    Gc(GcArgs),
    /// Generate a synthetic demo source, ingest it and serve it.
    Demo(DemoArgs),
    /// Serve every dataset over OPeNDAP (DAP2).
    Serve(ServeSettings),
    /// Write a subset of a dataset to a NetCDF file.
    Export(ExportArgs),
    /// Make a synthetic dataset of N tile rows (one variable on a global
    /// grid, 256 x 256 tiles, daily slices) whose rows share one slice's
    /// tile files: for measuring requests on a catalogue of archive size.
    Synth(SynthArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    #[arg(long, value_name = "NAME")]
    pub dataset: String,
    /// Tile rows in all (e.g. 50000000).
    #[arg(long, value_name = "N")]
    pub tiles: u64,
    /// Grid spacing in degrees (0.05: 7200 x 3600, 435 tiles a slice).
    #[arg(long, default_value_t = 0.05)]
    pub resolution: f64,
}

#[derive(Debug, Subcommand)]
pub enum OverviewsCommand {
    /// Build every level of every slice of a dataset, replacing the
    /// overviews it had; from then on each ingest builds them too.
    Build {
        #[arg(long, value_name = "NAME")]
        dataset: String,
    },
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Only this dataset (default: every dataset).
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Inspect every tile again, not only those without a layout.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Dataset to export from.
    #[arg(long, value_name = "NAME")]
    pub dataset: String,
    /// A DAP2 constraint expression, exactly what follows `?` in a `.nc`
    /// URL (instead of --var/--time/--bbox/--stride).
    #[arg(long, value_name = "CE", conflicts_with_all = ["vars", "time", "bbox", "stride"])]
    pub constraint: Option<String>,
    /// Variables (repeatable; default: every variable).
    #[arg(long = "var", value_name = "NAME")]
    pub vars: Vec<String>,
    /// Time range FROM..TO (ISO 8601, inclusive), or one time.
    #[arg(long, value_name = "FROM..TO")]
    pub time: Option<String>,
    /// Bounding box W,S,E,N in the grid's coordinates (inclusive).
    #[arg(long, value_name = "W,S,E,N", allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// Take every Nth cell along x and y.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub stride: u64,
    /// nc (NetCDF classic, CDF-2/CDF-5) or nc4 (NetCDF-4, deflate).
    #[arg(long, value_enum, default_value_t = ExportFormat::Nc)]
    pub format: ExportFormat,
    /// Output file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

/// What `tessera export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// NetCDF classic (CDF-2, or CDF-5 when a variable needs it).
    Nc,
    /// NetCDF-4, deflate.
    Nc4,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Dataset to create or extend.
    #[arg(long, value_name = "NAME")]
    pub dataset: String,
    /// Tile size for a new dataset, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", value_parser = TileShape::parse)]
    pub tile_size: Option<TileShape>,
    /// Variables to ingest (repeatable; default: every variable on the grid).
    #[arg(long = "var", value_name = "NAME")]
    pub vars: Vec<String>,
    /// Title of a new dataset.
    #[arg(long)]
    pub title: Option<String>,
    /// Tile encoding of a new dataset: nc4-deflate (default), nc4, nc3-64bit.
    #[arg(long, value_name = "FORMAT", value_parser = TileFormat::parse)]
    pub tile_format: Option<TileFormat>,
    /// Deflate level 1-9 for nc4-deflate tiles [default: 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=9))]
    pub deflate_level: Option<u8>,
    /// Keep no overviews in a new dataset. By default a dataset keeps
    /// levels 2, 4, 8, ... (every 2^k-th cell, about a third more storage):
    /// they answer strided requests and maps at a fraction of the reads.
    #[arg(long)]
    pub no_overviews: bool,
    /// Time of a source without a time coordinate (ISO 8601).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Store packed variables as floats (float32, float64 where the packing
    /// needs it), so that later files with any packing are taken exactly.
    /// Alone: every packed variable; with a name (repeatable): that one.
    /// Chosen when a variable is first ingested.
    #[arg(long, value_name = "VAR", num_args = 0..=1, default_missing_value = "")]
    pub unpack: Vec<String>,
    /// Rewrite the (variable, time) slices these files hold, including
    /// those already ingested (correcting published data, restoring lost
    /// tiles). Readers see all old or all new values.
    #[arg(long)]
    pub replace: bool,
    /// Source files.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// One line per dataset.
    List,
    /// Grid, CRS, tiles, variables, time slices and size of a dataset.
    Show { name: String },
    /// Delete a dataset: its catalogue rows and its files. Asks for
    /// confirmation on a terminal.
    Delete {
        name: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Edit a dataset's title and attributes.
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    pub name: String,
    /// New title (also the global `title` attribute).
    #[arg(long)]
    pub title: Option<String>,
    /// Set an attribute: KEY=VALUE (global) or VAR:KEY=VALUE (a variable's);
    /// repeatable. The value is text unless given as a number with
    /// `--attr KEY:=NUMBER`.
    #[arg(long = "attr", value_name = "[VAR:]KEY=VALUE")]
    pub attrs: Vec<String>,
    /// Remove an attribute: KEY or VAR:KEY; repeatable.
    #[arg(long = "unset", value_name = "[VAR:]KEY")]
    pub unset: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Remove files retired longer ago than this [default: the configured
    /// retire_grace_secs, 3600].
    #[arg(long, value_name = "SECS")]
    pub grace_secs: Option<u64>,
}

#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Delete orphan files.
    #[arg(long)]
    pub repair: bool,
    /// Compare sizes only (skip checksums).
    #[arg(long)]
    pub quick: bool,
    /// Check one dataset only.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Also read every slice of datasets that keep overviews and check
    /// that each level holds exactly every k-th cell of the full
    /// resolution (reads all their tiles).
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Grid spacing in degrees (0.05 is the full 7200 x 3600 grid).
    #[arg(long, default_value_t = 0.1)]
    pub resolution: f64,
    /// Number of daily time steps.
    #[arg(long, default_value_t = 4)]
    pub days: usize,
    /// Ingest only; do not serve.
    #[arg(long)]
    pub no_serve: bool,
    #[command(flatten)]
    pub serve: ServeSettings,
}

fn dataset_name(s: &str) -> Result<DatasetName> {
    Ok(DatasetName::parse(s)?)
}

async fn open(config: &Config) -> Result<(Arc<dyn Catalogue>, Pool)> {
    let cat = catalogue::open(&config.catalogue, true)
        .await
        .with_context(|| format!("cannot open catalogue {}", catalogue::redact(&config.catalogue)))?;
    let pool = Pool::new(&config.pool);
    pool.ensure().with_context(|| format!("cannot create pool {}", config.pool.display()))?;
    Ok((cat, pool))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let serve_settings = match &cli.command {
        Command::Serve(s) | Command::Demo(DemoArgs { serve: s, .. }) => s.clone(),
        _ => ServeSettings::default(),
    };
    let overrides = Overrides { config: cli.global.config.clone(), settings: cli.global.settings.clone(), serve: serve_settings };
    let config = Config::resolve(&overrides)?;
    crate::telemetry::init(config.log_format);
    match cli.command {
        Command::Migrate => {
            let cat = catalogue::open(&config.catalogue, true).await?;
            println!("catalogue {} ({}) at schema version {}", catalogue::redact(&config.catalogue), cat.backend(), cat.schema_version().await?);
            Ok(())
        }
        Command::Ingest(args) => ingest(&config, args).await,
        Command::Datasets(DatasetsCommand::List) => {
            let (cat, _) = open(&config).await?;
            list(cat.as_ref()).await
        }
        Command::Datasets(DatasetsCommand::Show { name }) => {
            let (cat, _) = open(&config).await?;
            let name = dataset_name(&name)?;
            let d = cat.dataset(&name).await?.with_context(|| format!("no dataset {name}"))?;
            print!("{}", show(cat.as_ref(), &d).await?);
            Ok(())
        }
        Command::Datasets(DatasetsCommand::Delete { name, yes }) => {
            let (cat, pool) = open(&config).await?;
            let name = dataset_name(&name)?;
            let d = cat.dataset(&name).await?.with_context(|| format!("no dataset {name}"))?;
            if !yes && std::io::stdin().is_terminal() {
                eprint!(
                    "delete dataset {name} ({} tiles, {}, {} time slices)? This cannot be undone. Type the name to confirm: ",
                    d.stats.tile_count,
                    human_bytes(d.stats.bytes),
                    d.stats.slice_count
                );
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if answer.trim() != name.as_str() {
                    bail!("not deleted: the answer was not {name}");
                }
            }
            let _writer = crate::catalogue::lock_dataset(cat.as_ref(), &name, || {
                eprintln!("waiting for the ingest into {name} to finish...")
            })
            .await?;
            // Rows first: a crash in between leaves orphan files, which fsck removes.
            if !cat.delete_dataset(&name).await? {
                bail!("no dataset {name}");
            }
            pool.remove_dataset(&name)?;
            println!("deleted dataset {name}");
            Ok(())
        }
        Command::Datasets(DatasetsCommand::Set(args)) => {
            let (cat, _) = open(&config).await?;
            let name = dataset_name(&args.name)?;
            let edit = metadata_edit(&args)?;
            let d = cat.update_metadata(&name, &edit).await?;
            println!("dataset {name} updated (version {})", d.version);
            Ok(())
        }
        Command::Gc(args) => {
            let (cat, pool) = open(&config).await?;
            let grace = args.grace_secs.map(std::time::Duration::from_secs).unwrap_or(config.retire_grace);
            let r = crate::gc::collect(cat.as_ref(), &pool, grace).await?;
            println!("{} retired tile files removed ({}), {} still within their grace period", r.removed, human_bytes(r.bytes), r.waiting);
            Ok(())
        }
        Command::Fsck(args) => {
            let (cat, pool) = open(&config).await?;
            let opts = FsckOptions {
                repair: args.repair,
                quick: args.quick,
                dataset: args.dataset.as_deref().map(dataset_name).transpose()?,
                deep: args.deep,
            };
            let report = fsck(cat.as_ref(), &pool, &opts).await?;
            for p in &report.problems {
                println!("{p}");
            }
            println!(
                "checked {} datasets, {} tiles, {} verified; {} problems",
                report.datasets,
                report.tiles_checked,
                human_bytes(report.bytes_checked),
                report.problems.len()
            );
            if report.unindexed > 0 {
                println!("{} tiles have no recorded layout and are read through libnetcdf (`tessera reindex` records them)", report.unindexed);
            }
            if args.deep {
                println!("{} overview tiles compared with the full resolution", report.overviews_compared);
            }
            if report.has_problems() {
                bail!("fsck found problems");
            }
            Ok(())
        }
        Command::Overviews(OverviewsCommand::Build { dataset }) => {
            let (cat, pool) = open(&config).await?;
            let name = dataset_name(&dataset)?;
            let tiles = Arc::new(crate::store::reader::PoolTiles::new(pool.clone(), config.open_files));
            let started = std::time::Instant::now();
            let r = crate::ingest::overviews::build(&cat, &pool, tiles, &name).await?;
            let levels: Vec<String> = r.levels.iter().map(u32::to_string).collect();
            if r.levels.is_empty() {
                println!("{name}: its grid fits in one tile, so it needs no overviews; it keeps them from now on (none)");
            } else {
                println!(
                    "{name}: overview levels {} built for {} slices: {} tiles, {} in {:.1} s",
                    levels.join(", "),
                    r.slices,
                    r.tiles,
                    human_bytes(r.bytes),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Command::Synth(args) => {
            let (cat, pool) = open(&config).await?;
            let name = dataset_name(&args.dataset)?;
            let started = std::time::Instant::now();
            let o = crate::synth::SynthOptions { name: name.clone(), tiles: args.tiles, resolution: args.resolution };
            let last = std::sync::Mutex::new(std::time::Instant::now());
            let r = crate::synth::synth(cat.as_ref(), &pool, &o, |done| {
                let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
                if l.elapsed().as_secs() >= 10 {
                    *l = std::time::Instant::now();
                    let s = started.elapsed().as_secs_f64();
                    eprintln!("{name}: {done} of {} tile rows, {:.0} rows/s", args.tiles, done as f64 / s);
                }
            })
            .await?;
            let s = started.elapsed().as_secs_f64();
            println!(
                "{name}: {} tile rows in {} daily slices ({} tiles a slice, sharing {} files) in {s:.1} s ({:.0} rows/s)",
                r.tiles, r.slices, r.tiles_per_slice, r.files, r.tiles as f64 / s
            );
            Ok(())
        }
        Command::Reindex(args) => {
            let (cat, pool) = open(&config).await?;
            let only = args.dataset.as_deref().map(dataset_name).transpose()?;
            let r = crate::reindex::reindex(cat.as_ref(), &pool, only.as_ref(), args.all).await?;
            for f in &r.failed {
                println!("not inspected: {f}");
            }
            println!(
                "{} datasets: {} tile layouts recorded, {} already recorded, {} left to libnetcdf, {} not inspected",
                r.datasets,
                r.recorded,
                r.kept,
                r.library,
                r.failed.len()
            );
            if !r.failed.is_empty() {
                bail!("some tiles could not be inspected (`tessera fsck` says why)");
            }
            Ok(())
        }
        Command::Demo(args) => demo(&config, args).await,
        Command::Export(args) => export(&config, args).await,
        Command::Serve(_) => {
            // The server starts whether or not its database answers: it
            // reports not ready and answers 503 until the catalogue is
            // reachable and migrated.
            let cat = catalogue::open(&config.catalogue, false)
                .await
                .with_context(|| format!("cannot open catalogue {}", catalogue::redact(&config.catalogue)))?;
            let pool = Pool::new(&config.pool);
            pool.ensure().with_context(|| format!("cannot create pool {}", config.pool.display()))?;
            serve(&config, cat, pool, None).await
        }
    }
}

async fn ingest(config: &Config, args: IngestArgs) -> Result<()> {
    let (cat, pool) = open(config).await?;
    let mut opts = IngestOptions::new(dataset_name(&args.dataset)?);
    opts.vars = args.vars;
    opts.title = args.title;
    opts.tile = args.tile_size;
    opts.format = args.tile_format;
    opts.deflate_level = args.deflate_level;
    opts.overviews = args.no_overviews.then_some(false);
    opts.time = args.time.as_deref().map(parse_user_time).transpose()?;
    // `--unpack FILE...` means every variable: a value that cannot be a
    // variable name (`era5.nc`, `data/x`) is the first file.
    let mut files = args.files.clone();
    let (mut all, mut unpack_vars) = (false, Vec::new());
    for v in &args.unpack {
        if v.is_empty() {
            all = true;
        } else if crate::model::is_safe_name(v) {
            unpack_vars.push(v.clone());
        } else {
            all = true;
            files.insert(0, PathBuf::from(v));
        }
    }
    opts.unpack = match (all, unpack_vars.is_empty()) {
        (true, _) => Unpack::All,
        (false, true) => Unpack::No,
        (false, false) => Unpack::Vars(unpack_vars),
    };
    if files.is_empty() {
        bail!("no source files given: tessera ingest --dataset NAME FILE...");
    }
    opts.replace = args.replace;
    opts.progress = std::io::stderr().is_terminal();
    for file in &files {
        let r = ingest_file(&cat, &pool, file, &opts).await?;
        let replaced = if r.slices_replaced > 0 { format!(" ({} replaced)", r.slices_replaced) } else { String::new() };
        let hint = match (r.slices_skipped > 0 && !opts.replace, r.slices_differing) {
            (false, _) => String::new(),
            (true, 0) => " (--replace rewrites them)".to_string(),
            (true, n) => format!(" ({n} of them with other values in this file: --replace rewrites them)"),
        };
        println!(
            "{}: {} slices written{replaced}, {} already present{hint}, {} ({}), {} all-fill tiles skipped",
            file.display(),
            r.slices_written,
            r.slices_skipped,
            tiles_written(&r),
            human_bytes(r.bytes),
            r.tiles_sparse
        );
        for n in &r.notes {
            println!("  note: {n}");
        }
        for e in &r.reencoded {
            println!(
                "  {}: re-encoded into the dataset's {}; largest error {:.3e}{}",
                e.variable,
                e.encoding,
                e.quantisation.max_abs_error,
                e.units.as_deref().map(|u| format!(" {u}")).unwrap_or_default()
            );
        }
    }
    // Replaced tiles whose grace period is over go now.
    match crate::gc::collect(cat.as_ref(), &pool, config.retire_grace).await {
        Ok(r) if r.removed > 0 => println!("{} retired tile files removed", r.removed),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "removing retired tiles failed; `tessera gc` retries"),
    }
    Ok(())
}

/// `--attr [VAR:]KEY=VALUE`, `--attr [VAR:]KEY:=NUMBER`, `--unset [VAR:]KEY`.
fn metadata_edit(args: &SetArgs) -> Result<MetadataEdit> {
    use crate::model::AttrValue;
    let mut edit = MetadataEdit { title: args.title.clone(), ..Default::default() };
    let target = |key: &str| -> Result<(Option<String>, String)> {
        let (var, k) = match key.split_once(':') {
            Some((v, k)) => (Some(v.trim().to_string()), k.trim().to_string()),
            None => (None, key.trim().to_string()),
        };
        if k.is_empty() || !crate::model::is_safe_name(&k) {
            bail!("attribute name {k:?} is not [A-Za-z_][A-Za-z0-9_]*");
        }
        Ok((var, k))
    };
    let mut push = |var: Option<String>, k: String, v: Option<AttrValue>| match var {
        Some(var) => edit.variable.push((var, k, v)),
        None => edit.global.push((k, v)),
    };
    for a in &args.attrs {
        let Some((key, value)) = a.split_once('=') else { bail!("--attr {a:?} is not KEY=VALUE") };
        let (numeric, key) = match key.strip_suffix(':') {
            Some(k) => (true, k),
            None => (false, key),
        };
        let (var, k) = target(key)?;
        let value = if numeric {
            let n: f64 = value.trim().parse().map_err(|_| anyhow::anyhow!("--attr {a:?}: {value:?} is not a number"))?;
            AttrValue::F64(vec![n])
        } else {
            AttrValue::Text(value.to_string())
        };
        push(var, k, Some(value));
    }
    for key in &args.unset {
        let (var, k) = target(key)?;
        push(var, k, None);
    }
    if edit == MetadataEdit::default() {
        bail!("nothing to change: give --title, --attr or --unset");
    }
    Ok(edit)
}

async fn list(cat: &dyn Catalogue) -> Result<()> {
    let datasets = cat.datasets().await?;
    if datasets.is_empty() {
        println!("no datasets");
        return Ok(());
    }
    println!("{:<24} {:>12} {:>5} {:>7} {:>8} {:>10}  {}", "NAME", "GRID", "VARS", "SLICES", "TILES", "SIZE", "TITLE");
    for d in datasets {
        let vars = cat.variables(d.id).await?.len();
        println!(
            "{:<24} {:>12} {:>5} {:>7} {:>8} {:>10}  {}",
            d.def.name,
            format!("{}x{}", d.def.grid.nx(), d.def.grid.ny()),
            vars,
            d.stats.slice_count,
            // Everything the dataset keeps in the pool, overviews included
            // (what fsck checks); `datasets show` has the two apart.
            d.stats.tile_count + d.stats.overview_tiles,
            human_bytes(d.stats.bytes + d.stats.overview_bytes),
            d.def.title
        );
    }
    Ok(())
}

/// The text of `datasets show`.
pub async fn show(cat: &dyn Catalogue, d: &Dataset) -> Result<String> {
    use std::fmt::Write;
    let def = &d.def;
    let g = &def.grid;
    let mut o = String::new();
    let (ntx, nty) = g.tile_counts(def.tile);
    writeln!(o, "dataset     {}", def.name)?;
    writeln!(o, "title       {}", def.title)?;
    let axis = |a: &crate::model::Axis| match a.regular() {
        Ok((first, step)) => format!(
            "{} {} points, {} .. {} step {} ({})",
            a.name,
            a.len(),
            short(first, a.dtype),
            short(a.values.last().copied().unwrap_or(first), a.dtype),
            // The step derives from two rounded values: one digit less.
            short_digits(step, if a.dtype == crate::model::DataType::F32 { 6 } else { 11 }),
            a.dtype
        ),
        Err(_) => format!(
            "{} {} points, {} .. {}, irregular ({})",
            a.name,
            a.len(),
            short(a.values.first().copied().unwrap_or(0.0), a.dtype),
            short(a.values.last().copied().unwrap_or(0.0), a.dtype),
            a.dtype
        ),
    };
    writeln!(o, "grid        {} x {} ({} x {})", g.nx(), g.ny(), g.x.name, g.y.name)?;
    writeln!(o, "  x         {}", axis(&g.x))?;
    writeln!(o, "  y         {}", axis(&g.y))?;
    if let Some(l) = &g.level {
        writeln!(o, "  level     {} {} levels: {:?}", l.name, l.len(), l.values)?;
    }
    writeln!(o, "crs         {}", g.crs.describe())?;
    let level = if def.format == TileFormat::Nc4Deflate { format!(" level {}", def.deflate_level) } else { String::new() };
    writeln!(o, "tiles       {} cells, {}{level}, {} x {} tiles per slice", def.tile, def.format, ntx, nty)?;
    writeln!(o, "stored      {} tiles, {}", d.stats.tile_count, human_bytes(d.stats.bytes))?;
    let levels: Vec<String> = def.overview_levels().iter().map(u32::to_string).collect();
    if def.overviews {
        let share = if d.stats.bytes > 0 { format!(" (+{:.0} %)", 100.0 * d.stats.overview_bytes as f64 / d.stats.bytes as f64) } else { String::new() };
        let levels = if levels.is_empty() { "none needed (one tile)".to_string() } else { format!("levels {}", levels.join(", ")) };
        writeln!(o, "overviews   {levels}: {} tiles, {}{share}", d.stats.overview_tiles, human_bytes(d.stats.overview_bytes))?;
    } else {
        writeln!(o, "overviews   none (`tessera overviews build --dataset {}` makes them)", def.name)?;
    }
    writeln!(o, "time        {}: {} ({}), {} slices", def.time.name, def.time.units, def.time.calendar, d.stats.slice_count)?;
    if let (Some(a), Some(b)) = (d.stats.t_min, d.stats.t_max) {
        writeln!(o, "  extent    {} .. {}", def.time.show(a), def.time.show(b))?;
    }
    for a in def.aux.iter().chain(&def.slice_aux) {
        let per_slice = def.slice_aux.iter().any(|x| x.name == a.name);
        let dims: Vec<String> = (per_slice.then(|| def.time.name.clone()).into_iter())
            .chain(a.dims.iter().map(|d| d.name.clone()))
            .collect();
        writeln!(o, "auxiliary   {} {} ({})", a.name, a.dtype, dims.join(", "))?;
    }
    writeln!(o, "version     {} (created {}, updated {})", d.version, d.created_at.format("%Y-%m-%dT%H:%M:%SZ"), d.updated_at.format("%Y-%m-%dT%H:%M:%SZ"))?;
    writeln!(o, "\nvariables")?;
    for v in cat.variables(d.id).await? {
        let dims = v.def.dims(def).join(", ");
        let kind = if v.def.kind == crate::model::VarKind::Coordinate { " auxiliary coordinate" } else { "" };
        writeln!(o, "  {} {} ({}) ({dims}){kind}", v.def.name, v.def.dtype, v.def.dtype.cdl_name())?;
        for a in &v.def.attrs {
            writeln!(o, "      {} = {}", a.name, a.value.display())?;
        }
    }
    let slices = cat.time_slices(d.id).await?;
    for n in crate::archive::unserved_reference_notes(d, &cat.variables(d.id).await?, !slices.is_empty()) {
        writeln!(o, "\nnote: {n}")?;
    }
    writeln!(o, "\ntime slices ({})", slices.len())?;
    let n = slices.len();
    for (i, t) in slices.iter().enumerate() {
        if n > 20 && i == 10 {
            writeln!(o, "  ... {} more ...", n - 20)?;
        }
        if n <= 20 || i < 10 || i >= n - 10 {
            writeln!(o, "  {}", def.time.show(t.t))?;
        }
    }
    writeln!(o, "\nglobal attributes")?;
    for a in &def.attrs {
        writeln!(o, "  {} = {}", a.name, a.value.display())?;
    }
    Ok(o)
}

/// `N tiles`, and `and M overview tiles` when there are any.
fn tiles_written(r: &crate::ingest::IngestReport) -> String {
    match r.overview_tiles {
        0 => format!("{} tiles", r.tiles_written),
        n => format!("{} tiles and {n} overview tiles", r.tiles_written),
    }
}

async fn demo(config: &Config, args: DemoArgs) -> Result<()> {
    if !(0.01..=10.0).contains(&args.resolution) || args.days == 0 || args.days > 366 {
        bail!("--resolution must be within 0.01..10 degrees and --days within 1..366");
    }
    let (cat, pool) = open(config).await?;
    let name = DatasetName::parse("demo_sst")?;
    let src_dir = config.data_dir.join("demo-source");
    std::fs::create_dir_all(&src_dir).with_context(|| format!("cannot create {}", src_dir.display()))?;
    let src = src_dir.join(format!("demo_sst_{}deg_{}d.nc", args.resolution, args.days));
    if !src.exists() {
        println!("writing demo source {} ...", src.display());
        let spec = crate::demo::DemoSpec { resolution: args.resolution, days: args.days };
        let tmp = src.with_extension("nc.partial");
        let t = tmp.clone();
        crate::blocking::run("demo source", move || crate::demo::write_source(&t, &spec)).await??;
        std::fs::rename(&tmp, &src)?;
    }
    let mut opts = IngestOptions::new(name.clone());
    opts.tile = Some(TileShape::new(512, 512).map_err(anyhow::Error::msg)?);
    opts.progress = std::io::stderr().is_terminal();
    if let Some(existing) = cat.dataset(&name).await? {
        if existing.def.grid.nx() != (360.0 / args.resolution).round() as usize {
            bail!("dataset {name} exists with another resolution; delete it first: tessera datasets delete {name}");
        }
    }
    let r = ingest_file(&cat, &pool, &src, &opts).await?;
    println!(
        "ingested {}: {} slices written, {} already present, {}, {} all-fill tiles skipped\n",
        src.display(),
        r.slices_written,
        r.slices_skipped,
        tiles_written(&r),
        r.tiles_sparse
    );
    let d = cat.dataset(&name).await?.context("demo dataset vanished")?;
    print!("{}", show(cat.as_ref(), &d).await?);
    println!("\ntiles are plain NetCDF: ncdump -h {}/{}/static/mask_tile_x0_y0.nc", config.pool.display(), name);
    if args.no_serve {
        return Ok(());
    }
    serve(config, cat, pool, Some((name, d.def.grid.nx(), d.def.grid.ny()))).await
}

/// Applies the catalogue's migrations, now if the catalogue answers, else
/// from a task that retries until it does; `ready` says which.
async fn migrate_in_background(cat: Arc<dyn Catalogue>, ready: Arc<std::sync::RwLock<std::result::Result<(), String>>>) {
    let set = move |r: std::result::Result<(), String>| *ready.write().unwrap_or_else(|p| p.into_inner()) = r;
    match cat.apply_migrations().await {
        Ok(()) => return,
        Err(e) => {
            tracing::warn!(error = %e, "catalogue not ready; serving 503 and retrying");
            set(Err(e.to_string()));
        }
    }
    tokio::spawn(async move {
        let mut pause = std::time::Duration::from_millis(250);
        loop {
            tokio::time::sleep(pause).await;
            match cat.apply_migrations().await {
                Ok(()) => {
                    tracing::info!("catalogue ready");
                    set(Ok(()));
                    return;
                }
                Err(e) => set(Err(e.to_string())),
            }
            pause = (pause * 2).min(std::time::Duration::from_secs(5));
        }
    });
}

/// Binds, prints what to try, serves until ctrl-c or SIGTERM.
async fn serve(config: &Config, cat: Arc<dyn Catalogue>, pool: Pool, demo: Option<(DatasetName, usize, usize)>) -> Result<()> {
    use crate::archive::{Archive, Limits};
    use crate::store::reader::PoolTiles;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Metrics recorded from here on reach /metrics.
    crate::telemetry::metrics();
    let tiles = Arc::new(PoolTiles::new(pool.clone(), config.open_files).with_chunk_cache(config.chunk_cache_bytes));
    // Tile files retired by `ingest --replace` go once their grace is over.
    {
        let (cat, pool, grace) = (cat.clone(), pool.clone(), config.retire_grace);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = crate::gc::collect(cat.as_ref(), &pool, grace).await {
                    tracing::warn!(error = %e, "removing retired tiles failed; retrying in a minute");
                }
            }
        });
    }
    let archive = Arc::new(Archive::new(cat.clone(), pool, tiles, Limits { max_response_bytes: config.max_response_bytes }));
    let state = crate::http::AppState::new(archive, config.limits.clone());
    migrate_in_background(cat.clone(), state.catalogue_ready.clone()).await;
    let router = crate::http::router(state);
    let base = format!("http://{addr}");
    tracing::info!(address = %addr, catalogue = %catalogue::redact(&config.catalogue), backend = cat.backend(), "serving");
    println!("\nserving on {base}/  (ctrl-c to stop)");
    if let Some((name, nx, ny)) = demo {
        let u = format!("{base}/dap/{name}");
        let (my, mx) = (ny / 2 - 1, nx / 2 - 1);
        println!("\ntry:");
        println!("  ncdump -h {u}");
        println!("  ncdump -v lat '{u}?lat[0:{}:{}]'", ny / 3, ny - 1);
        println!("  curl -g '{u}.ascii?sst[0][{my}:1:{}][{mx}:1:{}]'", my + 2, mx + 2);
        println!("  python3 -c \"import xarray as xr; print(xr.open_dataset('{u}'))\"");
        println!("  open {u}.html in a browser");
    }
    crate::http::serve(listener, router, crate::http::shutdown_signal(), &config.limits).await?;
    Ok(())
}

pub use crate::store::human_bytes;

/// A coordinate for people: rounded to the precision its type carries
/// (7 significant digits for f32, 12 otherwise), printed shortest.
fn short(v: f64, dtype: crate::model::DataType) -> String {
    short_digits(v, if dtype == crate::model::DataType::F32 { 7 } else { 12 })
}

fn short_digits(v: f64, digits: usize) -> String {
    let rounded: f64 = format!("{:.*e}", digits - 1, v).parse().unwrap_or(v);
    if rounded == 0.0 { "0".into() } else { format!("{rounded}") }
}

/// The constraint expression an export stands for (coordinate-value
/// slabs); also what to put after `?` in a `.nc` URL for the same file.
pub fn export_constraint(dv: &crate::archive::ServedDataset, args: &ExportArgs) -> Result<String> {
    let def = &dv.dataset.def;
    let vars: Vec<&crate::catalogue::Variable> = if args.vars.is_empty() {
        dv.vars.iter().collect()
    } else {
        args.vars
            .iter()
            .map(|n| dv.vars.iter().find(|v| &v.def.name == n).with_context(|| format!("dataset {} has no variable {n}", def.name)))
            .collect::<Result<_>>()?
    };
    let time = match &args.time {
        None => None,
        Some(t) => {
            let (a, b) = t.split_once("..").unwrap_or((t.as_str(), t.as_str()));
            let calendar = def.time.key_calendar()?;
            calendar.parse_user_time(a)?;
            calendar.parse_user_time(b)?;
            Some(format!("[({}):({})]", a.trim(), b.trim()))
        }
    };
    let s = args.stride;
    let (xs, ys) = match &args.bbox {
        None => (format!("[0:{s}:{}]", def.grid.nx() - 1), format!("[0:{s}:{}]", def.grid.ny() - 1)),
        Some(b) => {
            let v: Vec<f64> = b.split(',').map(|x| x.trim().parse::<f64>()).collect::<std::result::Result<_, _>>().map_err(|_| anyhow::anyhow!("--bbox {b:?} is not W,S,E,N numbers"))?;
            let [w, so, e, n] = v[..] else { bail!("--bbox {b:?} needs four numbers: W,S,E,N") };
            if w > e || so > n {
                bail!("--bbox {b:?}: west must not exceed east, nor south north");
            }
            let ascending = |a: &crate::model::Axis| a.values.len() < 2 || a.values[a.values.len() - 1] >= a.values[0];
            let xs = if ascending(&def.grid.x) { format!("[({w}):{s}:({e})]") } else { format!("[({e}):{s}:({w})]") };
            let ys = if ascending(&def.grid.y) { format!("[({so}):{s}:({n})]") } else { format!("[({n}):{s}:({so})]") };
            (xs, ys)
        }
    };
    let mut parts = Vec::new();
    for v in vars {
        let mut ce = v.def.name.clone();
        if v.def.has_time {
            ce.push_str(&time.clone().unwrap_or_else(|| format!("[0:1:{}]", dv.times.len().saturating_sub(1))));
        }
        if v.def.has_level {
            if let Some(l) = &def.grid.level {
                ce.push_str(&format!("[0:1:{}]", l.len() - 1));
            }
        }
        ce.push_str(&ys);
        ce.push_str(&xs);
        parts.push(ce);
    }
    Ok(parts.join(","))
}

/// An error about a piece of text: the one-line message, and the text with
/// a `^` under the place it is about (printed on the lines after it).
#[derive(Debug)]
pub struct Pointed {
    pub message: String,
    pub caret: Option<String>,
}

impl std::fmt::Display for Pointed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Pointed {}

async fn export(config: &Config, args: ExportArgs) -> Result<()> {
    use crate::archive::{Archive, Limits};
    use crate::store::reader::PoolTiles;
    let (cat, pool) = open(config).await?;
    let name = dataset_name(&args.dataset)?;
    let tiles = Arc::new(PoolTiles::new(pool.clone(), config.open_files).with_chunk_cache(config.chunk_cache_bytes));
    let archive = Archive::new(cat, pool, tiles, Limits { max_response_bytes: u64::MAX });
    let view = archive.dataset(name.as_str()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ce = match &args.constraint {
        Some(ce) => ce.clone(),
        None => export_constraint(&view, &args)?,
    };
    // A constraint error names its column; for an expression the user
    // wrote, the CLI shows it with a caret under it, as the parser computed
    // it (an expression built from flags is not theirs to point into).
    let given = args.constraint.is_some();
    let selection_error = |e: crate::archive::ArchiveError| {
        let crate::archive::ArchiveError::Constraint(e) = e else { return anyhow::anyhow!("{e}") };
        let m = e.to_string();
        let message = if m.contains("before its start") {
            format!("the selection is empty: no cell of the grid falls inside the requested range (Constraint error: {m})")
        } else {
            format!("the selection is empty or invalid: Constraint error: {m}")
        };
        anyhow::Error::new(Pointed { message, caret: e.caret().filter(|_| given) })
    };
    let probe = view.resolve(&ce).map_err(selection_error)?;
    let extra = view.referenced_items(&probe);
    if !extra.is_empty() {
        ce = format!("{ce},{}", extra.join(","));
    }
    let subset = view.resolve(&ce).map_err(selection_error)?;
    let plan = archive.plan(view, subset, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let ce = crate::dap::ce::percent_decode(&ce);
    let exp = crate::encode::nc::NcExport::new(plan, &ce).map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = args.output.clone();
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let tmp = tempfile::Builder::new().prefix(".tessera-export-").tempfile_in(&dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    let total = exp.layout.total_len();
    let bar = if std::io::stderr().is_terminal() { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}").expect("valid template"));
    let reader = archive.tiles.clone();
    let format = args.format;
    let tmp = crate::blocking::run("export", move || -> Result<tempfile::NamedTempFile> {
        match format {
            ExportFormat::Nc => {
                let mut w = std::io::BufWriter::new(tmp.reopen()?);
                exp.write_to(reader.as_ref(), &mut w, &|n| bar.inc(n)).map_err(|e| anyhow::anyhow!("{e}"))?;
                use std::io::Write;
                w.flush()?;
            }
            ExportFormat::Nc4 => exp.write_nc4(reader.as_ref(), tmp.path()).map_err(|e| anyhow::anyhow!("{e}"))?,
        }
        tmp.as_file().sync_all()?;
        bar.finish_and_clear();
        Ok(tmp)
    })
    .await??;
    let size = std::fs::metadata(tmp.path())?.len();
    tmp.persist(&out).with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {} ({})", out.display(), human_bytes(size));
    println!("constraint: {ce}");
    Ok(())
}

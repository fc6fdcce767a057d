//! One conformance suite, run against every catalogue adapter.

use crate::common;
use std::sync::Arc;
use std::collections::BTreeMap;
use tessera::catalogue::{Catalogue, CatalogueError, DatasetVersion, IngestBatch, MetadataEdit, NewTile, TileQuery, TimeSel, TimeSlice};
use tessera::model::*;

fn axis(name: &str, n: usize, first: f64, step: f64) -> Axis {
    Axis {
        name: name.into(),
        dtype: DataType::F32,
        values: (0..n).map(|i| first + step * i as f64).collect(),
        attrs: vec![Attribute::text("units", if name == "lat" { "degrees_north" } else { "degrees_east" })],
    }
}

fn dataset(name: &str, nx: usize) -> DatasetDef {
    DatasetDef {
        name: DatasetName::parse(name).unwrap(),
        title: "conformance".into(),
        attrs: vec![
            Attribute::text("Conventions", "CF-1.8"),
            Attribute::new("answer", AttrValue::I64(vec![42, i64::MIN])),
            Attribute::new("odd", AttrValue::F64(vec![f64::INFINITY])),
        ],
        grid: Grid { x: axis("lon", nx, 0.5, 1.0), y: axis("lat", 4, 1.5, -1.0), level: None, crs: Crs::default() },
        time: TimeAxis::default_axis(),
        tile: TileShape::new(2, 2).unwrap(),
        format: TileFormat::Nc4Deflate,
        deflate_level: 4,
        overviews: false,
        synthetic: false,
        aux: vec![],
        slice_aux: vec![],
    }
}

/// Values whose shortest decimal forms take 17 digits: they must come back
/// from the catalogue bit for bit.
/// (Ascending, so that they can be a grid axis.)
const HARD: [f64; 4] = [-179.99583333333334, 0.1 + 0.2, 9.104166666666657, 235.00167851802118];

fn slice(t: i64, value: f64) -> TimeSlice {
    let mut aux = BTreeMap::new();
    aux.insert("time_bnds".to_string(), vec![value - 0.5, value + 0.5]);
    aux.insert("odd".to_string(), vec![f64::NAN, f64::NEG_INFINITY, HARD[1]]);
    TimeSlice { t: Timestamp(t), value: Some(value), aux }
}

fn var(name: &str, dtype: DataType, has_time: bool) -> VariableDef {
    VariableDef {
        name: name.into(),
        dtype,
        has_time,
        has_level: false,
        attrs: vec![
            Attribute::new("_FillValue", AttrValue::I16(vec![-32768])),
            Attribute::new("scale_factor", AttrValue::F32(vec![0.01])),
            Attribute::new("add_offset", AttrValue::F64(vec![HARD[1]])),
        ],
        kind: VarKind::Data,
    }
}

fn tile(var: &str, t: Option<i64>, tx: u32, ty: u32) -> NewTile {
    NewTile {
        variable: var.into(),
        time: t.map(Timestamp),
        overview: 1,
        tx,
        ty,
        path: format!("ds/{var}_{t:?}_{tx}_{ty}.nc"),
        bytes: 100 + (tx + 10 * ty) as u64,
        checksum: format!("blake3:{tx}{ty}"),
        layout: (tx == 1).then(|| vec![1, tx as u8, ty as u8]),
    }
}

/// The suite. Every adapter must behave identically.
async fn conformance(cat: Arc<dyn Catalogue>) {
    let name = DatasetName::parse("ds").unwrap();
    cat.ping().await.unwrap();
    assert!(cat.schema_version().await.unwrap() >= 1);
    assert!(cat.datasets().await.unwrap().is_empty());
    assert!(cat.dataset(&name).await.unwrap().is_none());
    assert_eq!(cat.dataset_version(&name).await.unwrap(), None);

    // First ingest creates the dataset.
    let mut def = dataset("ds", 5);
    def.grid.x.dtype = DataType::F64;
    def.grid.x.values[..4].copy_from_slice(&HARD);
    def.grid.x.values[4] = 1e3;
    def.aux.push(AuxVar {
        name: "lon_bnds".into(),
        dtype: DataType::F64,
        dims: vec![AuxDim { name: "lon".into(), len: 5 }, AuxDim { name: "bnds".into(), len: 2 }],
        attrs: vec![],
        values: vec![HARD[0], HARD[1], HARD[2], HARD[3], f64::INFINITY, 1.0, 2.0, 3.0, 4.0, f64::NEG_INFINITY],
    });
    let batch = IngestBatch {
        dataset: def.clone(),
        variables: vec![var("chl", DataType::I16, true), var("mask", DataType::U8, false)],
        slices: vec![("chl".into(), Some(Timestamp(2000))), ("chl".into(), Some(Timestamp(1000))), ("mask".into(), None)],
        times: vec![slice(1000, HARD[0]), slice(2000, 2.0)],
        replace: false,
        content_hashes: Default::default(),
        tiles: vec![
            tile("chl", Some(1000), 0, 0),
            tile("chl", Some(1000), 1, 0),
            tile("chl", Some(1000), 2, 1),
            tile("chl", Some(2000), 0, 0),
            tile("mask", None, 0, 0),
            tile("mask", None, 2, 1),
        ],
    };
    let d = cat.commit_ingest(&batch).await.unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&d.def.grid.x.values), bits(&def.grid.x.values), "coordinates round-trip bit for bit");
    assert_eq!(bits(&d.def.aux[0].values), bits(&def.aux[0].values), "auxiliary values round-trip bit for bit, infinities included");
    assert_eq!(d.def, def, "definition round-trips exactly");
    assert_eq!(d.version, 1);
    assert_eq!(cat.dataset_version(&name).await.unwrap(), Some(DatasetVersion { id: d.id, version: 1 }));
    assert_eq!(d.stats.slice_count, 2);
    assert_eq!(d.stats.t_min, Some(Timestamp(1000)));
    assert_eq!(d.stats.t_max, Some(Timestamp(2000)));
    assert_eq!(d.stats.tile_count, 6);
    assert_eq!(d.stats.bytes, batch.tiles.iter().map(|t| t.bytes).sum::<u64>());
    assert_eq!(cat.dataset(&name).await.unwrap().unwrap(), d);
    assert_eq!(cat.datasets().await.unwrap(), vec![d.clone()]);
    assert_eq!(cat.dataset_states().await.unwrap(), vec![(name.to_string(), d.state())]);

    let vars = cat.variables(d.id).await.unwrap();
    assert_eq!(vars.iter().map(|v| v.def.name.as_str()).collect::<Vec<_>>(), ["chl", "mask"]);
    assert_eq!(vars[0].def, var("chl", DataType::I16, true));
    let (chl, mask) = (vars[0].id, vars[1].id);
    let slices = cat.time_slices(d.id).await.unwrap();
    assert_eq!(slices.iter().map(|s| s.t).collect::<Vec<_>>(), vec![Timestamp(1000), Timestamp(2000)]);
    assert_eq!(slices[0].value.unwrap().to_bits(), HARD[0].to_bits(), "time values are exact");
    assert_eq!(bits(&slices[0].aux["time_bnds"]), bits(&[HARD[0] - 0.5, HARD[0] + 0.5]));
    assert!(slices[0].aux["odd"][0].is_nan() && slices[0].aux["odd"][1] == f64::NEG_INFINITY);
    assert_eq!(slices[0].aux["odd"][2].to_bits(), HARD[1].to_bits());
    let mut times = cat.ingested_times(chl).await.unwrap();
    times.sort();
    assert_eq!(times, vec![Some(Timestamp(1000)), Some(Timestamp(2000))]);
    assert_eq!(cat.ingested_times(mask).await.unwrap(), vec![None]);

    // Tile lookups: a box in (time, ty, tx), ordered.
    let q = |time, tx: std::ops::Range<u32>, ty: std::ops::Range<u32>, v| TileQuery { dataset_id: d.id, variable_id: v, time, overview: 1, tx, ty };
    let all = cat.tiles(&q(TimeSel::Between(Timestamp(0), Timestamp(5000)), 0..3, 0..2, chl)).await.unwrap();
    assert_eq!(all.iter().map(|t| (t.time.unwrap().0, t.ty, t.tx)).collect::<Vec<_>>(), [(1000, 0, 0), (1000, 0, 1), (1000, 1, 2), (2000, 0, 0)]);
    assert_eq!(all[2].path, "ds/chl_Some(1000)_2_1.nc");
    assert_eq!(all[2].bytes, 112);
    assert_eq!(all[2].checksum, "blake3:21");
    // Layouts come back byte for byte, absent ones as absent.
    assert_eq!(all.iter().map(|t| t.layout.clone()).collect::<Vec<_>>(), [None, Some(vec![1, 1, 0]), None, None]);
    let one = cat.tiles(&q(TimeSel::Between(Timestamp(1000), Timestamp(1000)), 1..3, 0..1, chl)).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!((one[0].tx, one[0].ty), (1, 0));
    assert!(cat.tiles(&q(TimeSel::Between(Timestamp(1001), Timestamp(1999)), 0..3, 0..2, chl)).await.unwrap().is_empty());
    assert!(cat.tiles(&q(TimeSel::Static, 0..3, 0..2, chl)).await.unwrap().is_empty());
    let st = cat.tiles(&q(TimeSel::Static, 0..3, 0..2, mask)).await.unwrap();
    assert_eq!(st.iter().map(|t| (t.tx, t.ty, t.time)).collect::<Vec<_>>(), [(0, 0, None), (2, 1, None)]);
    assert!(cat.tiles(&q(TimeSel::Static, 3..3, 0..2, mask)).await.unwrap().is_empty());
    assert_eq!(cat.tiles_at(d.id, Some(Timestamp(1000))).await.unwrap().len(), 3);
    assert_eq!(cat.tiles_at(d.id, None).await.unwrap().len(), 2);

    // `reindex` records layouts by key and path, and makes a new version;
    // a row whose file was replaced since it was inspected is left alone.
    let mut relaid = cat.tiles_at(d.id, None).await.unwrap();
    relaid[0].layout = Some(vec![9, 9]);
    relaid[1].layout = Some(vec![7]);
    relaid[1].path = "ds/elsewhere.nc".into();
    assert_eq!(cat.set_tile_layouts(d.id, &relaid).await.unwrap(), 1);
    let st = cat.tiles_at(d.id, None).await.unwrap();
    let by_tx = |tx: u32| st.iter().find(|t| t.tx == tx).unwrap().layout.clone();
    assert_eq!((by_tx(relaid[0].tx), by_tx(relaid[1].tx)), (Some(vec![9, 9]), None));
    let d = cat.dataset(&name).await.unwrap().unwrap();
    assert_eq!(d.version, 2, "new layouts are a new version");
    assert_eq!(cat.set_tile_layouts(d.id, &[]).await.unwrap(), 0);
    assert_eq!(cat.dataset(&name).await.unwrap().unwrap().version, 2, "nothing changed, no new version");

    // A second batch adds a slice and a variable; figures follow.
    let batch2 = IngestBatch {
        dataset: def.clone(),
        variables: vec![var("chl", DataType::I16, true), var("sst", DataType::F32, true)],
        slices: vec![("chl".into(), Some(Timestamp(3000))), ("sst".into(), Some(Timestamp(1000)))],
        // A slice the dataset has keeps its values; a new one brings its own.
        times: vec![slice(3000, 3.0), slice(1000, 99.0)],
        replace: false,
        content_hashes: Default::default(),
        tiles: vec![tile("chl", Some(3000), 1, 1), tile("sst", Some(1000), 0, 0)],
    };
    let d2 = cat.commit_ingest(&batch2).await.unwrap();
    assert_eq!(d2.version, 3);
    assert_eq!(d2.stats.slice_count, 3);
    assert_eq!(d2.stats.t_max, Some(Timestamp(3000)));
    assert_eq!(d2.stats.tile_count, 8);
    assert_eq!(cat.variables(d.id).await.unwrap().len(), 3);
    let slices = cat.time_slices(d.id).await.unwrap();
    assert_eq!(slices.iter().map(|s| s.value.unwrap()).collect::<Vec<_>>(), [HARD[0], 2.0, 3.0]);

    // Conflicts leave nothing behind.
    let dup = IngestBatch {
        dataset: def.clone(),
        variables: vec![var("chl", DataType::I16, true), var("new", DataType::F64, true)],
        slices: vec![("new".into(), Some(Timestamp(5000))), ("chl".into(), Some(Timestamp(1000)))],
        times: vec![slice(5000, 5.0)],
        replace: false,
        content_hashes: Default::default(),
        tiles: vec![tile("new", Some(5000), 0, 0)],
    };
    let err = cat.commit_ingest(&dup).await.unwrap_err();
    assert!(matches!(err, CatalogueError::Conflict(_)), "{err}");
    assert_eq!(cat.variables(d.id).await.unwrap().len(), 3, "the failed batch's variable is not there");
    assert_eq!(cat.time_slices(d.id).await.unwrap().len(), 3, "nor its time slice");
    assert_eq!(cat.dataset(&name).await.unwrap().unwrap().stats, d2.stats);

    let mut other_grid = def.clone();
    other_grid.grid.x = axis("lon", 6, 0.5, 1.0);
    let err = cat
        .commit_ingest(&IngestBatch { dataset: other_grid, variables: vec![], slices: vec![], times: vec![], tiles: vec![], replace: false, content_hashes: Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(&err, CatalogueError::Conflict(m) if m.contains("lon has 5 points")), "{err}");

    let err = cat
        .commit_ingest(&IngestBatch {
            dataset: def.clone(),
            variables: vec![var("chl", DataType::I16, false)],
            slices: vec![],
            times: vec![],
            tiles: vec![],
            replace: false,
        content_hashes: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(matches!(&err, CatalogueError::Conflict(m) if m.contains("has dimensions (time, y, x)")), "{err}");

    // Replacing a slice: its tiles are swapped and the old files retired,
    // in one step; figures follow; other slices are untouched.
    let before = cat.dataset(&name).await.unwrap().unwrap();
    let mut new_tile = tile("chl", Some(1000), 0, 0);
    new_tile.path = "ds/chl_1000_0_0.1.nc".into();
    new_tile.bytes = 7;
    let replaced = cat
        .commit_ingest(&IngestBatch {
            dataset: def.clone(),
            variables: vec![var("chl", DataType::I16, true)],
            slices: vec![("chl".into(), Some(Timestamp(1000)))],
            times: vec![slice(1000, HARD[0])],
            tiles: vec![new_tile.clone()],
            replace: true,
            content_hashes: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(replaced.version, before.version + 1, "a replacement is a new version");
    assert_eq!(replaced.stats.tile_count, before.stats.tile_count - 2, "three tiles out, one in");
    let old_bytes: u64 = [(0, 0), (1, 0), (2, 1)].iter().map(|&(x, y)| 100 + (x + 10 * y) as u64).sum();
    assert_eq!(replaced.stats.bytes, before.stats.bytes - old_bytes + 7);
    let now_1000 = cat.tiles_at(d.id, Some(Timestamp(1000))).await.unwrap();
    let paths: Vec<&str> = now_1000.iter().map(|t| t.path.as_str()).collect();
    assert!(paths.contains(&"ds/chl_1000_0_0.1.nc") && paths.contains(&"ds/sst_Some(1000)_0_0.nc"), "{paths:?}");
    assert_eq!(cat.tiles_at(d.id, Some(Timestamp(2000))).await.unwrap().len(), 1, "other slices untouched");
    let retired = cat.retired_in(d.id).await.unwrap();
    let mut rp: Vec<&str> = retired.iter().map(|r| r.path.as_str()).collect();
    rp.sort();
    assert_eq!(rp, ["ds/chl_Some(1000)_0_0.nc", "ds/chl_Some(1000)_1_0.nc", "ds/chl_Some(1000)_2_1.nc"]);
    assert!(cat.retired_before(0, 10).await.unwrap().is_empty(), "nothing is older than the epoch");
    let due = cat.retired_before(i64::MAX, 2).await.unwrap();
    assert_eq!(due.len(), 2, "the limit holds");
    cat.forget_retired(&[due[0].path.clone()]).await.unwrap();
    assert_eq!(cat.retired_in(d.id).await.unwrap().len(), 2);
    let mut times = cat.ingested_times(chl).await.unwrap();
    times.sort();
    assert_eq!(times, vec![Some(Timestamp(1000)), Some(Timestamp(2000)), Some(Timestamp(3000))]);

    // Metadata edits: title, global and variable attributes; the encoding
    // of stored values cannot be edited.
    let edited = cat
        .update_metadata(
            &name,
            &MetadataEdit {
                title: Some("Renamed".into()),
                global: vec![("institution".into(), Some(AttrValue::Text("here".into()))), ("odd".into(), None)],
                variable: vec![("chl".into(), "long_name".into(), Some(AttrValue::Text("chlorophyll".into())))],
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.def.title, "Renamed");
    assert_eq!(edited.version, replaced.version + 1);
    assert_eq!(cat.dataset_version(&name).await.unwrap(), Some(edited.state()), "an edit is a new version");
    assert_eq!(edited.def.attrs.text_attr("institution"), Some("here"));
    assert_eq!(edited.def.attrs.text_attr("title"), Some("Renamed"));
    assert!(edited.def.attrs.get_attr("odd").is_none());
    let chl_def = cat.variables(d.id).await.unwrap().into_iter().find(|v| v.def.name == "chl").unwrap().def;
    assert_eq!(chl_def.attrs.text_attr("long_name"), Some("chlorophyll"));
    for key in ["scale_factor", "_FillValue", "units"] {
        let err = cat
            .update_metadata(&name, &MetadataEdit { variable: vec![("chl".into(), key.into(), None)], ..Default::default() })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot be edited"), "{err}");
    }
    let err = cat
        .update_metadata(&name, &MetadataEdit { variable: vec![("nope".into(), "x".into(), None)], ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no variable nope"), "{err}");
    assert_eq!(cat.dataset(&name).await.unwrap().unwrap().version, edited.version, "failed edits change nothing");

    // A second dataset is independent.
    let other = DatasetName::parse("other").unwrap();
    cat.commit_ingest(&IngestBatch {
        dataset: dataset("other", 3),
        variables: vec![var("chl", DataType::I16, true)],
        slices: vec![("chl".into(), Some(Timestamp(1000)))],
        times: vec![],
        tiles: vec![tile("chl", Some(1000), 0, 0)],
        replace: false,
        content_hashes: Default::default(),
    })
    .await
    .unwrap();
    assert_eq!(cat.datasets().await.unwrap().iter().map(|d| d.def.name.to_string()).collect::<Vec<_>>(), ["ds", "other"]);

    // Delete removes everything of one dataset only.
    assert!(cat.delete_dataset(&name).await.unwrap());
    assert!(!cat.delete_dataset(&name).await.unwrap());
    assert!(cat.dataset(&name).await.unwrap().is_none());
    assert_eq!(cat.dataset_version(&name).await.unwrap(), None);
    assert!(cat.variables(d.id).await.unwrap().is_empty());
    assert!(cat.tiles_at(d.id, Some(Timestamp(1000))).await.unwrap().is_empty());
    assert!(cat.ingested_times(chl).await.unwrap().is_empty());
    assert!(cat.retired_in(d.id).await.unwrap().is_empty(), "retired rows go with their dataset");
    let o = cat.dataset(&other).await.unwrap().unwrap();
    assert_eq!(cat.tiles_at(o.id, Some(Timestamp(1000))).await.unwrap().len(), 1);

    // Re-creating a deleted dataset starts afresh.
    let again = cat.commit_ingest(&batch).await.unwrap();
    assert_eq!(again.stats.tile_count, 6);
    assert_eq!(again.version, 1);
    let state = cat.dataset_version(&name).await.unwrap().unwrap();
    assert_eq!(state, again.state());
    assert_ne!(state.id, d.id, "a re-created dataset is another dataset, whatever its version");
}

#[tokio::test]
async fn memory_catalogue_conforms() {
    conformance(common::open("memory:").await).await;
}

#[tokio::test]
async fn sqlite_catalogue_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/dir/c.db").display());
    let cat = common::open(&url).await;
    assert_eq!(cat.backend(), "sqlite");
    conformance(cat).await;
    // The schema survives reopening, and migrating again is a no-op.
    let cat = common::open(&url).await;
    assert!(cat.dataset(&DatasetName::parse("ds").unwrap()).await.unwrap().is_some());
}

#[tokio::test]
async fn postgres_catalogue_conforms() {
    let Some(url) = common::postgres_url().await else { return };
    let cat = common::open(&url).await;
    assert_eq!(cat.backend(), "postgres");
    conformance(cat).await;
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_not_a_panic() {
    // Nothing listens on port 1.
    let cat = tessera::catalogue::open("postgres://u:secret@127.0.0.1:1/db", false).await.unwrap();
    let err = cat.ping().await.unwrap_err();
    assert!(matches!(err, CatalogueError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("secret"));
}

#[tokio::test]
async fn bad_catalogue_urls_are_refused() {
    let err = tessera::catalogue::open("mysql://u:pw@h/db", true).await.err().unwrap();
    assert!(err.to_string().contains("neither sqlite"), "{err}");
    assert!(!err.to_string().contains("pw@"), "{err}");
}

/// A catalogue that commits a new slice while a view is being read: after
/// the dataset row, before its slices.
struct CommitsMidRead {
    inner: Arc<dyn Catalogue>,
    pending: std::sync::Mutex<Option<IngestBatch>>,
}

#[async_trait::async_trait]
impl Catalogue for CommitsMidRead {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> tessera::catalogue::Result<()> {
        self.inner.ping().await
    }
    async fn schema_version(&self) -> tessera::catalogue::Result<i64> {
        self.inner.schema_version().await
    }
    async fn dataset(&self, n: &DatasetName) -> tessera::catalogue::Result<Option<tessera::catalogue::Dataset>> {
        self.inner.dataset(n).await
    }
    async fn dataset_version(&self, n: &DatasetName) -> tessera::catalogue::Result<Option<DatasetVersion>> {
        self.inner.dataset_version(n).await
    }
    async fn datasets(&self) -> tessera::catalogue::Result<Vec<tessera::catalogue::Dataset>> {
        self.inner.datasets().await
    }
    async fn dataset_states(&self) -> tessera::catalogue::Result<Vec<(String, DatasetVersion)>> {
        self.inner.dataset_states().await
    }
    async fn variables(&self, id: i64) -> tessera::catalogue::Result<Vec<tessera::catalogue::Variable>> {
        let vars = self.inner.variables(id).await;
        let batch = self.pending.lock().unwrap().take();
        if let Some(b) = batch {
            self.inner.commit_ingest(&b).await.unwrap();
        }
        vars
    }
    async fn time_slices(&self, id: i64) -> tessera::catalogue::Result<Vec<TimeSlice>> {
        self.inner.time_slices(id).await
    }
    async fn ingested_times(&self, id: i64) -> tessera::catalogue::Result<Vec<Option<Timestamp>>> {
        self.inner.ingested_times(id).await
    }
    async fn content_hashes(&self, id: i64) -> tessera::catalogue::Result<Vec<(Option<Timestamp>, String)>> {
        self.inner.content_hashes(id).await
    }
    async fn tiles(&self, q: &TileQuery) -> tessera::catalogue::Result<Vec<tessera::catalogue::TileRecord>> {
        self.inner.tiles(q).await
    }
    async fn tiles_at(&self, id: i64, t: Option<Timestamp>) -> tessera::catalogue::Result<Vec<tessera::catalogue::TileRecord>> {
        self.inner.tiles_at(id, t).await
    }
    async fn commit_overviews(&self, b: &tessera::catalogue::OverviewBatch) -> tessera::catalogue::Result<tessera::catalogue::Dataset> {
        self.inner.commit_overviews(b).await
    }
    async fn commit_ingest(&self, b: &IngestBatch) -> tessera::catalogue::Result<tessera::catalogue::Dataset> {
        self.inner.commit_ingest(b).await
    }
    async fn set_tile_layouts(&self, id: i64, t: &[tessera::catalogue::TileRecord]) -> tessera::catalogue::Result<u64> {
        self.inner.set_tile_layouts(id, t).await
    }
    async fn delete_dataset(&self, n: &DatasetName) -> tessera::catalogue::Result<bool> {
        self.inner.delete_dataset(n).await
    }
    async fn update_metadata(&self, n: &DatasetName, e: &MetadataEdit) -> tessera::catalogue::Result<tessera::catalogue::Dataset> {
        self.inner.update_metadata(n, e).await
    }
    async fn retired_before(&self, b: i64, l: i64) -> tessera::catalogue::Result<Vec<tessera::catalogue::RetiredTile>> {
        self.inner.retired_before(b, l).await
    }
    async fn retired_in(&self, id: i64) -> tessera::catalogue::Result<Vec<tessera::catalogue::RetiredTile>> {
        self.inner.retired_in(id).await
    }
    async fn forget_retired(&self, p: &[String]) -> tessera::catalogue::Result<()> {
        self.inner.forget_retired(p).await
    }
    async fn try_lock_dataset(&self, n: &DatasetName) -> tessera::catalogue::Result<Option<tessera::catalogue::WriterLock>> {
        self.inner.try_lock_dataset(n).await
    }
    async fn apply_migrations(&self) -> tessera::catalogue::Result<()> {
        self.inner.apply_migrations().await
    }
}

/// A view is never built from two versions of a dataset: an ingest that
/// commits while the view is read makes the view be read again, and it
/// then has the new slice and the new version.
#[tokio::test]
async fn a_view_read_during_a_commit_is_read_again() {
    let mem: Arc<dyn Catalogue> = Arc::new(tessera::catalogue::memory::MemoryCatalogue::default());
    let def = dataset("ds", 5);
    let batch = |t: i64| IngestBatch {
        dataset: def.clone(),
        variables: vec![var("chl", DataType::I16, true)],
        slices: vec![("chl".into(), Some(Timestamp(t)))],
        times: vec![slice(t, t as f64)],
        replace: false,
        content_hashes: Default::default(),
        tiles: vec![tile("chl", Some(t), 0, 0)],
    };
    mem.commit_ingest(&batch(1000)).await.unwrap();
    let cat = Arc::new(CommitsMidRead { inner: mem.clone(), pending: std::sync::Mutex::new(Some(batch(2000))) });
    let dir = tempfile::tempdir().unwrap();
    let pool = tessera::store::Pool::new(dir.path());
    let tiles = Arc::new(tessera::store::memory::MemoryTiles::default());
    let archive = tessera::archive::Archive::new(cat, pool, tiles, Default::default());
    let view = archive.dataset("ds").await.unwrap();
    let name = DatasetName::parse("ds").unwrap();
    assert_eq!(Some(view.dataset.state()), mem.dataset_version(&name).await.unwrap(), "the view carries the version it was read at");
    assert_eq!(view.times.len(), 2, "and the slice committed while it was read");
}

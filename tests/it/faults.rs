//! Faults that once lost committed data or served wrong values: each test
//! reproduces one, on every catalogue where it applies.

use crate::common::{self, Cli, source};
use crate::ingest::{check_tiles_against_source, expected_tiles};
use std::collections::BTreeSet;
use std::process::{Child, Stdio};

fn spawn(cli: &Cli, args: &[&str]) -> Child {
    common::command(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_DATA_DIR", &cli.data_dir)
        .env("TESSERA_CATALOGUE", &cli.catalogue)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Every tile the catalogue names, pool-relative.
async fn catalogued(url: &str, name: &str) -> Vec<String> {
    let cat = common::open(url).await;
    let d = cat.dataset(&tessera::model::DatasetName::parse(name).unwrap()).await.unwrap().unwrap();
    let mut out = Vec::new();
    let mut times: Vec<Option<tessera::model::Timestamp>> = cat.time_slices(d.id).await.unwrap().into_iter().map(|s| Some(s.t)).collect();
    times.push(None);
    for t in times {
        out.extend(cat.tiles_at(d.id, t).await.unwrap().into_iter().map(|r| r.path));
    }
    out.sort();
    out
}

/// The file names the catalogue gives, with any `.N` a writer took
/// because the first name was in use dropped: what `expected_tiles` lists.
fn plain(paths: &[String]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| {
            let (dir, file) = p.rsplit_once('/').unwrap();
            let stem = file.trim_end_matches(".nc");
            format!("{dir}/{}.nc", stem.split_once('.').map_or(stem, |(s, _)| s))
        })
        .collect()
}

/// Two ingests of the same file at once, and two files sharing a static
/// variable into a new dataset at once: both succeed (the second waits for
/// the first and skips what it added), nothing is lost, fsck is clean and
/// every catalogued tile equals its source.
async fn concurrent_ingests(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), url);
    cli.ok(&["migrate"]);
    let spec_a = source::Spec { nt: 2, ny: 300, nx: 420, ..Default::default() };
    let spec_b = source::Spec { t0: 2.5, ..spec_a.clone() };
    let (a, b) = (dir.path().join("a.nc"), dir.path().join("b.nc"));
    source::write(&a, &spec_a);
    source::write(&b, &spec_b);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for round in 0..3 {
        let same = format!("same{round}");
        let shared = format!("shared{round}");
        let args = |name: &str, file: &str| vec!["ingest".to_string(), "--dataset".into(), name.into(), "--tile-size".into(), "128x128".into(), file.into()];
        let run = |x: Vec<String>| spawn(&cli, &x.iter().map(String::as_str).collect::<Vec<_>>());
        let children = [run(args(&same, a)), run(args(&same, a)), run(args(&shared, a)), run(args(&shared, b))];
        for c in children {
            let (ok, out) = finish(c);
            assert!(ok, "{url} round {round}: a concurrent ingest failed: {out}");
        }
        let fsck = cli.ok(&["fsck"]);
        assert!(fsck.contains(" 0 problems"), "{url} round {round}: {fsck}");
        let tiles = catalogued(url, &same).await;
        assert_eq!(plain(&tiles), expected_tiles(&same, &spec_a, 128, &["sst", "chl", "mask"]), "{url} round {round}");
        check_tiles_against_source(&cli.pool(), &spec_a, 128, &tiles);
        let tiles = catalogued(url, &shared).await;
        let mut want = expected_tiles(&shared, &spec_a, 128, &["sst", "chl", "mask"]);
        want.extend(expected_tiles(&shared, &spec_b, 128, &["sst", "chl", "mask"]));
        assert_eq!(plain(&tiles), want, "{url} round {round}: both files' slices and one mask");
        let (first, second): (Vec<String>, Vec<String>) = tiles.into_iter().partition(|f| f.contains("-01T") || f.contains("-02T") || f.contains("/static/"));
        check_tiles_against_source(&cli.pool(), &spec_a, 128, &first);
        check_tiles_against_source(&cli.pool(), &spec_b, 128, &second);
    }
}

#[tokio::test]
async fn concurrent_ingests_never_lose_data_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_ingests(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test]
async fn concurrent_ingests_never_lose_data_on_postgres() {
    let Some(url) = common::postgres_url().await else { return };
    concurrent_ingests(&url).await;
}

/// `fsck --repair` run again and again while an ingest writes: it never
/// removes a file the ingest then commits.
async fn repair_racing_an_ingest(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), url);
    cli.ok(&["migrate"]);
    let spec = source::Spec { nt: 3, ny: 600, nx: 800, ..Default::default() };
    let src = dir.path().join("s.nc");
    source::write(&src, &spec);
    for (round, format) in ["nc4-deflate", "nc3-64bit"].into_iter().enumerate() {
        let name = format!("race{round}");
        let ingest = spawn(&cli, &["ingest", "--dataset", &name, "--tile-size", "100x100", "--tile-format", format, src.to_str().unwrap()]);
        let mut repairs = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(60) {
            let (_, out) = finish(spawn(&cli, &["fsck", "--repair", "--quick"]));
            assert!(!out.contains("missing"), "{url}: {out}");
            repairs += 1;
            if cli.ok(&["datasets", "list"]).contains(&name) {
                break;
            }
        }
        let (ok, out) = finish(ingest);
        assert!(ok, "{url}: the ingest failed under fsck --repair: {out}");
        assert!(repairs > 1, "fsck ran during the ingest");
        let fsck = cli.ok(&["fsck"]);
        assert!(fsck.contains(" 0 problems"), "{url}: {fsck}");
        let tiles = catalogued(url, &name).await;
        assert_eq!(plain(&tiles), expected_tiles(&name, &spec, 100, &["sst", "chl", "mask"]));
        check_tiles_against_source(&cli.pool(), &spec, 100, &tiles);
    }
}

#[tokio::test]
async fn fsck_repair_never_removes_what_an_ingest_will_commit_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    repair_racing_an_ingest(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test]
async fn fsck_repair_never_removes_what_an_ingest_will_commit_on_postgres() {
    let Some(url) = common::postgres_url().await else { return };
    repair_racing_an_ingest(&url).await;
}

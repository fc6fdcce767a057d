//! The dependency rule: pure modules name no I/O crate.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn pure_modules_name_no_io_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for pure in ["model", "dap", "picture"] {
        let dir = root.join(pure);
        if dir.exists() {
            rust_files(&dir, &mut files);
        }
    }
    files.push(root.join("mosaic.rs"));
    files.push(root.join("markup.rs"));
    files.push(root.join("plan.rs"));
    assert!(!files.is_empty(), "no pure modules found under {}", root.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for krate in ["axum", "sqlx", "netcdf", "tokio", "crate::store", "crate::catalogue"] {
            for pat in [format!("{krate}::"), format!("use {krate}")] {
                assert!(!text.contains(&pat), "{} names {krate}", f.display());
            }
        }
    }
}

/// One door for blocking work: `spawn_blocking` is called from
/// `src/blocking.rs` alone, where the work is bounded and measured.
#[test]
fn blocking_work_goes_through_one_door() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let door = root.join("blocking.rs");
    assert!(files.contains(&door));
    for f in files.iter().filter(|f| **f != door) {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains("spawn_blocking"), "{} calls spawn_blocking; use crate::blocking", f.display());
    }
}

/// No cycle between the layers that had one: downloads do not reach into
/// the HTTP layer, the archive does not reach into the encoders above it,
/// and the DDS renderer is not called back by the view.
#[test]
fn no_layer_reaches_outwards() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (dir, forbidden) in [("encode", "crate::http"), ("archive", "crate::http"), ("archive", "crate::encode"), ("store", "crate::archive"), ("catalogue", "crate::store")] {
        let mut files = Vec::new();
        let p = root.join(dir);
        if p.is_dir() {
            rust_files(&p, &mut files);
        } else {
            files.push(p);
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(!text.contains(forbidden), "{} names {forbidden}", f.display());
        }
    }
    let view = std::fs::read_to_string(root.join("dap/view.rs")).unwrap();
    let code = view.split("#[cfg(test)]").next().unwrap();
    assert!(!code.contains("super::dds") && !code.contains("dds::"), "dap/view.rs calls the DDS renderer, which uses the view");
}

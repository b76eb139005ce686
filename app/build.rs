//! Finds the face detector's model for the server build.
//!
//! The `rustface` crate ships its SeetaFace model file in its package but offers no way to name
//! it from another crate, so this looks where Cargo unpacks registry packages (or where
//! `cargo vendor` puts them) and hands the path to `include_bytes!` as `DARKROOM_FACE_MODEL`.
//! `DARKROOM_FACE_MODEL` set at build time overrides the search.

use std::path::{Path, PathBuf};

/// Must equal the `=` version of `rustface` in Cargo.toml.
const RUSTFACE: &str = "rustface-0.1.7";
const MODEL: &str = "model/seeta_fd_frontal_v1.0.bin";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DARKROOM_FACE_MODEL");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    if std::env::var_os("CARGO_FEATURE_SSR").is_none() {
        return;
    }
    let model = match std::env::var_os("DARKROOM_FACE_MODEL") {
        Some(path) => PathBuf::from(path),
        None => find().unwrap_or_else(|| {
            panic!(
                "the face model ({RUSTFACE}/{MODEL}) was not found under CARGO_HOME's registry or a vendor \
                 directory; set DARKROOM_FACE_MODEL to its path"
            )
        }),
    };
    assert!(model.is_file(), "DARKROOM_FACE_MODEL: {} is not a file", model.display());
    println!("cargo:rerun-if-changed={}", model.display());
    println!("cargo:rustc-env=DARKROOM_FACE_MODEL={}", model.display());
}

fn find() -> Option<PathBuf> {
    // A relative CARGO_HOME is relative to where cargo was started, which a build script cannot
    // know; the workspace root is the usual place.
    let workspace = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?).join("..");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(|home| workspace.join(home))
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
    let registries = std::fs::read_dir(cargo_home.join("registry").join("src")).into_iter().flatten().flatten();
    let mut candidates: Vec<PathBuf> = registries.map(|index| index.path().join(RUSTFACE).join(MODEL)).collect();
    // A vendored workspace keeps packages as vendor/<name> beside the workspace's Cargo.toml.
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    for root in manifest_dir.ancestors().take(3) {
        candidates.push(root.join("vendor").join("rustface").join(MODEL));
        candidates.push(root.join("vendor").join(RUSTFACE).join(MODEL));
    }
    candidates.into_iter().find(|path| path.is_file())
}

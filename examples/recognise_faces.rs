//! Face recognition with pv-face alone: load the models, enrol "Person A" from two photos,
//! then recognise a third.
//!
//! `cargo run -p pv-examples --example recognise_faces -- [MODEL_DIR] [IMAGE_DIR]`
//!
//! The model directory is the first argument, else `PV_FACE_MODELS`, else
//! `~/.cache/pentavision/models` (fill it with `pentavision faces fetch-models`). The pictures
//! (obama.jpg, obama2.jpg, obama3.jpg from `bins/face-test-images.sh`) come from the second
//! argument, else `PV_FACE_IMAGES`, else `~/.cache/pentavision/face-test-images`. Exits with
//! status 1 unless the third photo is recognised as Person A.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use pv_core::ids::IdentityId;
use pv_face::detect::DetectorKind;
use pv_face::engine::{EngineConfig, FaceEngine};
use pv_face::gallery::{DEFAULT_THRESHOLD, Gallery};
use pv_face::image::{RgbImage, decode};

fn dir(arg: Option<String>, var: &str, sub: &str) -> anyhow::Result<PathBuf> {
    if let Some(a) = arg.or_else(|| std::env::var(var).ok()) {
        return Ok(PathBuf::from(a));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; pass the directory")?;
    Ok(Path::new(&home).join(".cache/pentavision").join(sub))
}

fn load(path: &Path) -> anyhow::Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode(&bytes).with_context(|| path.display().to_string())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let models = dir(args.next(), "PV_FACE_MODELS", "models")?;
    let images = dir(args.next(), "PV_FACE_IMAGES", "face-test-images")?;

    let engine = FaceEngine::load(&EngineConfig::in_dir(&models, DetectorKind::BlazefaceFront))?;
    println!(
        "models loaded from {} (embedder {}, {} dimensions)",
        models.display(),
        engine.model_id(),
        engine.dimensions()
    );

    let person_a = IdentityId(1);
    let names = HashMap::from([(person_a, "Person A")]);
    let mut gallery = Gallery::new(engine.dimensions());
    for (id, file) in [(1, "obama.jpg"), (2, "obama2.jpg")] {
        let faces = engine.analyse(&load(&images.join(file))?)?;
        let Some(face) = faces.first() else {
            bail!("no face found in {file}");
        };
        gallery.insert(id, person_a, &face.embedding, false)?;
        println!("enrolled Person A from {file} (detector score {:.2})", face.detection.score);
    }

    let query = "obama3.jpg";
    let faces = engine.analyse(&load(&images.join(query))?)?;
    let Some(face) = faces.first() else {
        bail!("no face found in {query}");
    };
    let r = gallery.recognise(&face.embedding, DEFAULT_THRESHOLD)?;
    let b = face.detection.bbox;
    let name = r.identity.and_then(|id| names.get(&id).copied());
    // Distance between unit vectors: sqrt(2 - 2 cos).
    let distance = (2.0 - 2.0 * r.score).max(0.0).sqrt();
    println!(
        "{query}: face at ({:.0}, {:.0}) {:.0}x{:.0}: {} (cosine {:.3}, distance {:.3}, threshold {:.2})",
        b.x,
        b.y,
        b.w,
        b.h,
        name.unwrap_or("unknown"),
        r.score,
        distance,
        DEFAULT_THRESHOLD
    );
    if r.identity != Some(person_a) {
        eprintln!("{query} was not recognised as Person A");
        std::process::exit(1);
    }
    Ok(())
}

//! The gallery with real embeddings: enrol faces from photos, recognise other photos of the
//! same people, veto a wrong match with a negative example, forget an identity.
//!
//! Assets: the pictures from `bins/face-test-images.sh` (env `PV_FACE_IMAGES`) and the default
//! models from `pentavision faces fetch-models` (env `PV_FACE_MODELS`); a missing asset fails
//! the test, naming how to get it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use pv_core::ids::IdentityId;
use pv_face::detect::DetectorKind;
use pv_face::engine::{EngineConfig, FaceEngine};
use pv_face::image::decode;
use pv_face::{DEFAULT_THRESHOLD, Gallery};

fn home_cache(sub: &str) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/pentavision").join(sub)
}

fn engine() -> FaceEngine {
    let dir = std::env::var_os("PV_FACE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("models"));
    let config = EngineConfig::in_dir(&dir, DetectorKind::BlazefaceFront);
    for path in [&config.detector_path, &config.embedder_path] {
        assert!(
            path.is_file(),
            "model {} is missing; run `pentavision faces fetch-models` (or set PV_FACE_MODELS)",
            path.display()
        );
    }
    FaceEngine::load(&config).unwrap()
}

fn face(engine: &FaceEngine, name: &str) -> Vec<f32> {
    let dir = std::env::var_os("PV_FACE_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("face-test-images"));
    let path = dir.join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test image {} is missing ({e}); run bins/face-test-images.sh to fetch the test images",
            path.display()
        )
    });
    let faces = engine.analyse(&decode(&bytes).unwrap()).unwrap();
    faces.into_iter().next().unwrap_or_else(|| panic!("no face in {name}")).embedding
}

const OBAMA: IdentityId = IdentityId(1);
const BIDEN: IdentityId = IdentityId(2);
const ASTRONAUT: IdentityId = IdentityId(3);

#[test]
fn enrol_recognise_veto_and_forget_real_faces() {
    let engine = engine();
    let mut gallery = Gallery::new(engine.dimensions());
    gallery.insert(1, OBAMA, &face(&engine, "obama.jpg"), false).unwrap();
    gallery.insert(2, BIDEN, &face(&engine, "biden.jpg"), false).unwrap();
    gallery.insert(3, ASTRONAUT, &face(&engine, "astronaut.png"), false).unwrap();

    let obama2 = face(&engine, "obama2.jpg");
    let obama3 = face(&engine, "obama3.jpg");
    for query in [&obama2, &obama3] {
        let r = gallery.recognise(query, DEFAULT_THRESHOLD).unwrap();
        assert_eq!(r.identity, Some(OBAMA), "{r:?}");
        assert!(r.score > DEFAULT_THRESHOLD + 0.1, "with margin: {r:?}");
    }
    let stranger = face(&engine, "camera.png");
    let r = gallery.recognise(&stranger, DEFAULT_THRESHOLD).unwrap();
    assert_eq!(r.identity, None, "{r:?}");
    assert!(r.score < DEFAULT_THRESHOLD - 0.1, "with margin: {r:?}");
    assert!(r.nearest.is_some());

    // Someone says obama3 is not Obama (a wrong label, but it exercises the rule): the negative
    // example scores higher than Obama's best positive for obama3 itself, so obama3 is unknown,
    // while obama2 still matches as long as its best positive beats that negative.
    gallery.insert(4, OBAMA, &obama3, true).unwrap();
    let r = gallery.recognise(&obama3, DEFAULT_THRESHOLD).unwrap();
    assert_eq!((r.identity, r.nearest), (None, Some(OBAMA)), "{r:?}");
    assert!(gallery.remove_embedding(4));
    assert_eq!(gallery.recognise(&obama3, DEFAULT_THRESHOLD).unwrap().identity, Some(OBAMA));

    // A second example of Obama, then forgetting him entirely.
    gallery.insert(5, OBAMA, &obama2, false).unwrap();
    assert_eq!(gallery.remove_identity(OBAMA), 2);
    assert_eq!((gallery.len(), gallery.identity_count()), (2, 2));
    let r = gallery.recognise(&obama3, DEFAULT_THRESHOLD).unwrap();
    assert_eq!(r.identity, None, "a deleted identity is never matched: {r:?}");
    assert_ne!(r.nearest, Some(OBAMA));
    let r = gallery.recognise(&face(&engine, "biden.jpg"), DEFAULT_THRESHOLD).unwrap();
    assert_eq!(r.identity, Some(BIDEN));
}

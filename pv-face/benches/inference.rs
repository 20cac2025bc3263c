//! Face inference speed: detection per 640x480 frame for each detector, and alignment plus
//! embedding per face. Needs the default models (`pentavision faces fetch-models`, env
//! `PV_FACE_MODELS`) and the test pictures (`bins/face-test-images.sh`, env `PV_FACE_IMAGES`).
//!
//! `cargo bench -p pv-face --bench inference`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pv_face::detect::{DetectorKind, load_detector};
use pv_face::engine::{EngineConfig, FaceEngine};
use pv_face::image::decode;

fn dir(var: &str, sub: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(&std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/pentavision")
            .join(sub)
    })
}

fn bench(c: &mut Criterion) {
    let models = dir("PV_FACE_MODELS", "models");
    let images = dir("PV_FACE_IMAGES", "face-test-images");
    let bytes = std::fs::read(images.join("obama.jpg"))
        .expect("test pictures missing: run bins/face-test-images.sh");
    let photo = decode(&bytes).unwrap();
    // A 640x480 camera frame with the face at a typical size.
    let frame = photo.resized(640, 480);

    let mut group = c.benchmark_group("detect_640x480");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for kind in [DetectorKind::BlazefaceFront, DetectorKind::BlazefaceBack, DetectorKind::Ultraface]
    {
        let path = models.join(kind.default_file_name());
        let detector = load_detector(kind, &path, 0.75)
            .unwrap_or_else(|e| panic!("{e}; run `pentavision faces fetch-models`"));
        assert!(!detector.detect(&frame).unwrap().is_empty());
        group.bench_function(format!("{kind:?}"), |b| b.iter(|| detector.detect(&frame).unwrap()));
    }
    group.finish();

    let engine = FaceEngine::load(&EngineConfig::in_dir(&models, DetectorKind::BlazefaceFront))
        .unwrap_or_else(|e| panic!("{e}; run `pentavision faces fetch-models`"));
    let face = engine.detect(&frame).unwrap().remove(0);
    let mut group = c.benchmark_group("face");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("align_embed", |b| b.iter(|| engine.embed_face(&frame, &face).unwrap()));
    group
        .bench_function("analyse_640x480_one_face", |b| b.iter(|| engine.analyse(&frame).unwrap()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

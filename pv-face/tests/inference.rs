//! Face inference with the real models on real photos.
//!
//! Assets: the pictures from `bins/face-test-images.sh` (env `PV_FACE_IMAGES`, default
//! `~/.cache/pentavision/face-test-images`) and the default models from
//! `pentavision faces fetch-models` (env `PV_FACE_MODELS`, default
//! `~/.cache/pentavision/models`). A missing asset fails the test, naming how to get it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use pv_face::detect::{Detector, DetectorKind, load_detector};
use pv_face::embed::Embedder;
use pv_face::engine::{EngineConfig, FaceEngine};
use pv_face::image::{RgbImage, decode};
use pv_face::{Error, align};

/// The match threshold the tests hold the model to (cosine similarity).
const THRESHOLD: f32 = 0.45;

fn home_cache(sub: &str) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/pentavision").join(sub)
}

fn images_dir() -> PathBuf {
    std::env::var_os("PV_FACE_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("face-test-images"))
}

fn models_dir() -> PathBuf {
    std::env::var_os("PV_FACE_MODELS").map(PathBuf::from).unwrap_or_else(|| home_cache("models"))
}

fn image_bytes(name: &str) -> Vec<u8> {
    let path = images_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test image {} is missing ({e}); run bins/face-test-images.sh to fetch the test images",
            path.display()
        )
    })
}

fn image(name: &str) -> RgbImage {
    decode(&image_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn model(name: &str) -> PathBuf {
    let path = models_dir().join(name);
    assert!(
        path.is_file(),
        "model {} is missing; run `pentavision faces fetch-models` (or set PV_FACE_MODELS)",
        path.display()
    );
    path
}

fn engine_for(kind: DetectorKind) -> FaceEngine {
    let dir = models_dir();
    let config = EngineConfig::in_dir(&dir, kind);
    model(config.detector_path.file_name().unwrap().to_str().unwrap());
    model(config.embedder_path.file_name().unwrap().to_str().unwrap());
    FaceEngine::load(&config).unwrap()
}

fn engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| engine_for(DetectorKind::BlazefaceFront))
}

/// The embedding of the largest face in `img`; fails when there is none.
fn largest_face(engine: &FaceEngine, img: &RgbImage, what: &str) -> Vec<f32> {
    let faces = engine.analyse(img).unwrap();
    assert!(!faces.is_empty(), "no face found in {what}");
    faces[0].embedding.clone()
}

fn embedding_of(name: &str) -> Vec<f32> {
    largest_face(engine(), &image(name), name)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn engine_is_shareable_and_reports_its_model() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<FaceEngine>();
    send_sync::<Embedder>();
    let e = engine();
    assert_eq!(e.dimensions(), 512);
    assert_eq!(e.model_id(), "fr_feature-87aacdfe5751");
}

#[test]
fn analyse_gives_normalised_embeddings_and_96px_crops() {
    let img = image("obama.jpg");
    let faces = engine().analyse(&img).unwrap();
    assert_eq!(faces.len(), 1, "one face in obama.jpg: {faces:?}");
    let f = &faces[0];
    let norm: f32 = f.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_eq!((f.crop.width(), f.crop.height()), (96, 96));
    let lm = f.detection.landmarks.expect("BlazeFace gives keypoints");
    // The person's right eye is on the left of the picture, eyes above the nose above the mouth.
    assert!(lm[0].0 < lm[1].0, "{lm:?}");
    assert!(lm[0].1 < lm[2].1 && lm[2].1 < lm[3].1, "{lm:?}");
    let b = f.detection.bbox;
    for (x, y) in lm {
        assert!(x > b.x && x < b.x + b.w && y > b.y && y < b.y + b.h, "{lm:?} in {b:?}");
    }
    assert!(f.detection.score >= 0.75);
}

#[test]
fn same_person_matches_and_different_people_do_not() {
    let obamas: Vec<(&str, Vec<f32>)> = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
        .into_iter()
        .map(|n| (n, embedding_of(n)))
        .collect();
    let biden = embedding_of("biden.jpg");
    let mut same_min = f32::MAX;
    for i in 0..obamas.len() {
        for j in i + 1..obamas.len() {
            let c = cosine(&obamas[i].1, &obamas[j].1);
            println!("cosine {} ~ {}: {c:.3}", obamas[i].0, obamas[j].0);
            same_min = same_min.min(c);
        }
    }
    let mut diff_max = f32::MIN;
    for (name, e) in &obamas {
        let c = cosine(e, &biden);
        println!("cosine {name} ~ biden.jpg: {c:.3}");
        diff_max = diff_max.max(c);
    }
    println!("same person min {same_min:.3}, different people max {diff_max:.3}");
    assert!(same_min > THRESHOLD + 0.1, "same person min {same_min}");
    assert!(diff_max < THRESHOLD - 0.1, "different people max {diff_max}");
}

#[test]
fn rgba_png_decodes_and_matches_obama2() {
    let png = image("32bit.png");
    let jpg = image("obama2.jpg");
    assert_eq!((png.width(), png.height()), (jpg.width(), jpg.height()));
    let c = cosine(&largest_face(engine(), &png, "32bit.png"), &embedding_of("obama2.jpg"));
    println!("cosine 32bit.png ~ obama2.jpg: {c:.3}");
    assert!(c > 0.9, "{c}");
}

#[test]
fn greyscale_png_decodes() {
    let img = image("camera.png");
    assert_eq!((img.width(), img.height()), (512, 512));
    let px = &img.as_bytes()[3 * (256 * 512 + 256)..][..3];
    assert!(px[0] == px[1] && px[1] == px[2]);
}

#[test]
fn mirrored_and_rescaled_biden_still_matches_biden() {
    let biden = image("biden.jpg");
    let changed = biden.mirrored();
    let changed = changed
        .resized((changed.width() as f32 * 0.6) as u32, (changed.height() as f32 * 0.6) as u32);
    let a = embedding_of("biden.jpg");
    let b = largest_face(engine(), &changed, "mirrored 0.6x biden.jpg");
    let c = cosine(&a, &b);
    println!("cosine biden.jpg ~ mirrored 0.6x: {c:.3}");
    assert!(c > THRESHOLD + 0.1, "{c}");
    for other in ["obama.jpg", "obama2.jpg", "obama3.jpg"] {
        assert!(cosine(&b, &embedding_of(other)) < THRESHOLD);
    }
}

#[test]
fn astronaut_has_a_face_that_matches_nobody() {
    let astronaut = embedding_of("astronaut.png");
    for other in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
        let c = cosine(&astronaut, &embedding_of(other));
        println!("cosine astronaut.png ~ {other}: {c:.3}");
        assert!(c < THRESHOLD, "astronaut ~ {other}: {c}");
    }
}

#[test]
fn blazeface_finds_no_face_on_a_cup_or_a_cat() {
    for kind in [DetectorKind::BlazefaceFront, DetectorKind::BlazefaceBack] {
        let detector: Box<dyn Detector> = load_detector(
            kind,
            &model(kind.default_file_name()),
            pv_face::detect::DEFAULT_MIN_SCORE,
        )
        .unwrap();
        assert_eq!(detector.kind(), kind);
        for name in ["coffee.png", "chelsea.png"] {
            let found = detector.detect(&image(name)).unwrap();
            assert!(found.is_empty(), "{kind:?} found {found:?} in {name}");
        }
    }
}

#[test]
fn back_model_and_ultraface_find_the_same_faces() {
    let front = engine();
    for kind in [DetectorKind::BlazefaceBack, DetectorKind::Ultraface] {
        let other = engine_for(kind);
        for name in ["obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png"] {
            let img = image(name);
            let a = front.analyse(&img).unwrap();
            let b = other.analyse(&img).unwrap();
            assert!(!b.is_empty(), "{kind:?} found no face in {name}");
            let iou = a[0].detection.bbox.iou(&b[0].detection.bbox);
            let c = cosine(&a[0].embedding, &b[0].embedding);
            println!("{kind:?} on {name}: IoU with front {iou:.2}, cosine {c:.3}");
            assert!(iou > 0.4, "{kind:?} {name}: {:?} vs {:?}", a[0].detection, b[0].detection);
            assert!(c > THRESHOLD + 0.1, "{kind:?} {name}: cosine {c}");
            assert_eq!(b[0].detection.landmarks.is_some(), kind != DetectorKind::Ultraface);
        }
    }
}

#[test]
fn verification_pairs_are_all_right() {
    // (picture, person)
    let people = [
        ("obama.jpg", "obama"),
        ("obama2.jpg", "obama"),
        ("obama3.jpg", "obama"),
        ("biden.jpg", "biden"),
        ("astronaut.png", "collins"),
        ("camera.png", "cameraman"),
        ("obama_partial_face.jpg", "obama"),
        ("obama_partial_face2.jpg", "obama"),
    ];
    // The partial faces (half a face at the picture's edge) score about 0.6-0.85 with BlazeFace.
    let mut config = EngineConfig::in_dir(&models_dir(), DetectorKind::BlazefaceFront);
    config.min_detection_score = 0.5;
    let engine = FaceEngine::load(&config).unwrap();
    let full: Vec<(&str, &str, Vec<f32>)> =
        people.iter().map(|(n, p)| (*n, *p, largest_face(&engine, &image(n), n))).collect();
    let mut same = Vec::new();
    let mut different = Vec::new();
    for i in 0..full.len() {
        for j in i + 1..full.len() {
            let (a, b) = (&full[i], &full[j]);
            let partial = a.0.contains("partial") || b.0.contains("partial");
            let c = cosine(&a.2, &b.2);
            if a.1 == b.1 {
                // Partial faces are too cropped to be a fair same-person test; shown only.
                if partial {
                    println!("(not counted) cosine {} ~ {}: {c:.3}", a.0, b.0);
                } else {
                    same.push((a.0, b.0, c));
                }
            } else {
                different.push((a.0, b.0, c));
            }
        }
    }
    assert_eq!(same.len(), 3);
    assert_eq!(different.len(), 18);
    let mut wrong = Vec::new();
    for (a, b, c) in &same {
        if *c < THRESHOLD {
            wrong.push(format!("{a} ~ {b} same person, cosine {c:.3}"));
        }
    }
    for (a, b, c) in &different {
        if *c >= THRESHOLD {
            wrong.push(format!("{a} ~ {b} different people, cosine {c:.3}"));
        }
    }
    let same_min = same.iter().map(|p| p.2).fold(f32::MAX, f32::min);
    let diff_max = different.iter().map(|p| p.2).fold(f32::MIN, f32::max);
    println!(
        "verification set: 3 same-person pairs (min cosine {same_min:.3}), 18 different-person \
         pairs (max cosine {diff_max:.3})"
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn engine_is_usable_from_several_threads() {
    let e = Arc::new(engine_for(DetectorKind::BlazefaceFront));
    let img = Arc::new(image("obama2.jpg"));
    let reference = e.analyse(&img).unwrap()[0].embedding.clone();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (e, img) = (e.clone(), img.clone());
            std::thread::spawn(move || e.analyse(&img).unwrap()[0].embedding.clone())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), reference);
    }
}

#[test]
fn min_face_px_drops_small_faces() {
    let mut config = EngineConfig::in_dir(&models_dir(), DetectorKind::BlazefaceFront);
    config.min_face_px = 5000;
    let e = FaceEngine::load(&config).unwrap();
    assert!(e.analyse(&image("obama.jpg")).unwrap().is_empty());
}

#[test]
fn align_output_is_112_square() {
    let img = image("obama.jpg");
    let d = engine().detect(&img).unwrap().remove(0);
    let face = align::align(&img, &d.landmarks.unwrap());
    assert_eq!((face.width(), face.height()), (112, 112));
}

// ---- bad input ----

#[test]
fn text_is_not_an_image() {
    assert!(matches!(decode(b"just some text, not a picture\n"), Err(Error::NotAnImage(_))));
    // A JPEG that stops after its header.
    let jpeg = image_bytes("obama.jpg");
    assert!(matches!(decode(&jpeg[..600]), Err(Error::NotAnImage(_))));
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

#[test]
fn huge_png_header_is_refused_before_decoding() {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB: 400 megapixels, over MAX_PIXELS
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    png_chunk(&mut png, b"IEND", &[]);
    match decode(&png) {
        Err(Error::ImageTooLarge(msg)) => println!("{msg}"),
        other => panic!("expected ImageTooLarge, got {other:?}"),
    }
}

fn temp_model(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn expect_model_error(result: pv_face::Result<Embedder>, path: &Path, what: &str) -> String {
    match result {
        Err(e @ Error::Model { .. }) => {
            let Error::Model { path: p, message } = &e else { unreachable!() };
            assert_eq!(p, path);
            println!("{what}: {e}");
            message.clone()
        }
        Err(other) => panic!("{what}: expected a model error, got {other:?}"),
        Ok(_) => panic!("{what}: loaded"),
    }
}

#[test]
fn truncated_model_is_a_model_error() {
    let bytes = std::fs::read(model("fr_feature.onnx")).unwrap();
    let (_dir, path) = temp_model(&bytes[..bytes.len() / 2]);
    expect_model_error(Embedder::load(&path), &path, "truncated");
}

#[test]
fn random_bytes_are_a_model_error() {
    // A fixed pseudo-random sequence (xorshift), so the test is repeatable.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let (_dir, path) = temp_model(&bytes);
    expect_model_error(Embedder::load(&path), &path, "random bytes");
    let (_dir2, empty) = temp_model(b"");
    expect_model_error(Embedder::load(&empty), &empty, "empty");
}

#[test]
fn missing_model_is_a_model_error_saying_how_to_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.onnx");
    let message = expect_model_error(Embedder::load(&path), &path, "missing");
    assert!(message.contains("fetch-models"), "{message}");
    let config = EngineConfig::in_dir(dir.path(), DetectorKind::BlazefaceFront);
    assert!(matches!(FaceEngine::load(&config), Err(Error::Model { .. })));
}

#[test]
fn detector_as_embedder_is_a_model_error() {
    for detector in ["fr_detect.onnx", "face_detection_front_128x128_barracuda.onnx"] {
        let path = model(detector);
        expect_model_error(Embedder::load(&path), &path, detector);
    }
    // And the embedder as a detector.
    let path = model("fr_feature.onnx");
    for kind in [DetectorKind::BlazefaceFront, DetectorKind::Ultraface] {
        match load_detector(kind, &path, 0.75) {
            Err(e @ Error::Model { .. }) => println!("embedder as {kind:?}: {e}"),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("embedder loaded as a {kind:?} detector"),
        }
    }
}

/// Not an assertion about speed (benches measure that): prints how long one embedding takes in
/// the build the tests run in, for the record. `cargo test -p pv-face --test inference -- --ignored --nocapture debug_build`.
#[test]
#[ignore]
fn debug_build_embed_time() {
    let img = image("obama.jpg");
    let e = engine();
    let d = e.detect(&img).unwrap().remove(0);
    e.embed_face(&img, &d).unwrap();
    let start = std::time::Instant::now();
    let n = 5;
    for _ in 0..n {
        e.embed_face(&img, &d).unwrap();
    }
    let frame = img.resized(640, 480);
    let t_embed = start.elapsed() / n;
    let start = std::time::Instant::now();
    for _ in 0..n {
        e.detect(&frame).unwrap();
    }
    println!(
        "this build: align+embed {:?} per face, detect (front 128) {:?} per 640x480 frame",
        t_embed,
        start.elapsed() / n
    );
}

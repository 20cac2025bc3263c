//! Evaluation on a small verification set built from the test pictures: 3 same-person pairs
//! and 18 different-people pairs, laid out like LFW (`ROOT/name/name_000n.jpg`).
//!
//! Assets: the pictures from `bins/face-test-images.sh` (env `PV_FACE_IMAGES`) and the default
//! models from `pentavision faces fetch-models` (env `PV_FACE_MODELS`); a missing asset fails
//! the test, naming how to get it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use pv_face::detect::DetectorKind;
use pv_face::engine::{EngineConfig, FaceEngine};
use pv_face::evaluate::{Pair, evaluate, parse_lfw_pairs};
use pv_face::{DEFAULT_THRESHOLD, Error};

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

fn engine() -> FaceEngine {
    let config = EngineConfig::in_dir(&models_dir(), DetectorKind::BlazefaceFront);
    for path in [&config.detector_path, &config.embedder_path] {
        assert!(
            path.is_file(),
            "model {} is missing; run `pentavision faces fetch-models` (or set PV_FACE_MODELS)",
            path.display()
        );
    }
    FaceEngine::load(&config).unwrap()
}

/// The pictures of each person, in LFW numbering (n-th picture of the name).
const PEOPLE: &[(&str, &[&str])] = &[
    ("Barack_Obama", &["obama.jpg", "obama2.jpg", "obama3.jpg", "32bit.png"]),
    ("Joe_Biden", &["biden.jpg"]),
    ("Eileen_Collins", &["astronaut.png"]),
    ("Camera_Man", &["camera.png"]),
    ("Chelsea_Cat", &["chelsea.png"]),
];

/// Lay the test pictures out like LFW under `root` (the format decoder sniffs the content, so
/// PNG files may carry the `.jpg` name).
fn lfw_tree(root: &Path) {
    let images = images_dir();
    for (name, files) in PEOPLE {
        std::fs::create_dir_all(root.join(name)).unwrap();
        for (i, file) in files.iter().enumerate() {
            let from = images.join(file);
            assert!(
                from.is_file(),
                "test image {} is missing; run bins/face-test-images.sh to fetch the test images",
                from.display()
            );
            std::fs::copy(&from, root.join(name).join(format!("{name}_{:04}.jpg", i + 1))).unwrap();
        }
    }
}

/// 3 same-person pairs (the three distinct Obama photos), 18 different-people pairs, and one
/// pair with a cat, which has no human face and is skipped.
const PAIRS: &str = "\
10\t300
Barack_Obama\t1\t2
Barack_Obama\t1\t3
Barack_Obama\t2\t3
Barack_Obama\t1\tJoe_Biden\t1
Barack_Obama\t2\tJoe_Biden\t1
Barack_Obama\t3\tJoe_Biden\t1
Barack_Obama\t4\tJoe_Biden\t1
Barack_Obama\t1\tEileen_Collins\t1
Barack_Obama\t2\tEileen_Collins\t1
Barack_Obama\t3\tEileen_Collins\t1
Barack_Obama\t4\tEileen_Collins\t1
Barack_Obama\t1\tCamera_Man\t1
Barack_Obama\t2\tCamera_Man\t1
Barack_Obama\t3\tCamera_Man\t1
Barack_Obama\t4\tCamera_Man\t1
Joe_Biden\t1\tEileen_Collins\t1
Joe_Biden\t1\tCamera_Man\t1
Eileen_Collins\t1\tCamera_Man\t1
Eileen_Collins\t1\tBarack_Obama\t2
Camera_Man\t1\tJoe_Biden\t1
Joe_Biden\t1\tBarack_Obama\t3
Chelsea_Cat\t1\tBarack_Obama\t1
";

#[test]
fn the_default_models_separate_the_test_pairs() {
    let dir = tempfile::tempdir().unwrap();
    lfw_tree(dir.path());
    let pairs = parse_lfw_pairs(PAIRS, dir.path()).unwrap();
    assert_eq!(pairs.iter().filter(|p| p.same).count(), 3);
    assert_eq!(pairs.iter().filter(|p| !p.same).count(), 19);

    let engine = engine();
    let e = evaluate(&engine, &pairs, DEFAULT_THRESHOLD).unwrap();
    eprintln!("{e:?}");
    assert_eq!((e.pairs, e.skipped), (21, 1), "the cat pair is skipped");
    assert_eq!(e.true_accept_rate, 1.0, "every same-person pair above the threshold");
    assert_eq!(e.false_accept_rate, 0.0, "every different-people pair below it");
    assert_eq!(e.accuracy, 1.0);
    assert_eq!(e.best_accuracy, 1.0);
    assert!(
        (0.2..0.7).contains(&e.best_threshold),
        "the best threshold lies in the gap between the groups: {}",
        e.best_threshold
    );

    // Each pair on its own, to see the margin: same well above, different well below.
    for pair in &pairs[..21] {
        let one = evaluate(&engine, std::slice::from_ref(pair), DEFAULT_THRESHOLD).unwrap();
        assert_eq!(one.accuracy, 1.0, "{pair:?}");
    }
}

#[test]
fn a_missing_picture_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = [Pair { a: dir.path().join("a.jpg"), b: dir.path().join("b.jpg"), same: true }];
    let err = evaluate(&engine(), &pairs, DEFAULT_THRESHOLD).unwrap_err();
    assert!(matches!(&err, Error::Io(m) if m.contains("a.jpg")), "{err}");
    std::fs::write(dir.path().join("a.jpg"), b"not a picture").unwrap();
    let err = evaluate(&engine(), &pairs, DEFAULT_THRESHOLD).unwrap_err();
    assert!(err.to_string().contains("a.jpg"), "{err}");
}

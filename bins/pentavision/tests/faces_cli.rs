//! `pentavision faces evaluate` end to end on a small pairs file over the test pictures, and
//! its one-line errors.
//!
//! Assets: the pictures from `bins/face-test-images.sh` (env `PV_FACE_IMAGES`) and the default
//! models from `pentavision faces fetch-models` (env `PV_FACE_MODELS`); a missing asset fails
//! the test, naming how to get it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn home_cache(sub: &str) -> PathBuf {
    Path::new(&std::env::var_os("HOME").unwrap()).join(".cache/pentavision").join(sub)
}

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("PV_FACE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("models"));
    assert!(
        dir.join("fr_feature.onnx").is_file(),
        "face models missing in {}; run `pentavision faces fetch-models` (or set PV_FACE_MODELS)",
        dir.display()
    );
    dir
}

fn picture(name: &str) -> PathBuf {
    let dir = std::env::var_os("PV_FACE_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("face-test-images"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "test image {} is missing; run bins/face-test-images.sh to fetch the test images",
        path.display()
    );
    path
}

/// Run `pentavision faces ARGS` with a fresh data directory; (success, stdout, stderr).
fn pv(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pentavision"))
        .args(["--data-dir", data.to_str().unwrap(), "faces"])
        .args(args)
        .env_remove("PENTAVISION_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// An LFW-style tree: two people, Obama with three pictures, Biden with one.
fn lfw_tree(root: &Path) {
    for (name, files) in [
        ("Barack_Obama", &["obama.jpg", "obama2.jpg", "obama3.jpg"][..]),
        ("Joe_Biden", &["biden.jpg"]),
    ] {
        std::fs::create_dir_all(root.join(name)).unwrap();
        for (i, file) in files.iter().enumerate() {
            std::fs::copy(picture(file), root.join(name).join(format!("{name}_{:04}.jpg", i + 1)))
                .unwrap();
        }
    }
}

#[test]
fn evaluate_prints_rates_and_the_best_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lfw = dir.path().join("lfw");
    lfw_tree(&lfw);
    let pairs = dir.path().join("pairs.txt");
    std::fs::write(
        &pairs,
        "2 2\nBarack_Obama 1 2\nBarack_Obama 2 3\nBarack_Obama 1 Joe_Biden 1\nJoe_Biden 1 Barack_Obama 3\n",
    )
    .unwrap();
    let models = models_dir();
    let (ok, out, err) = pv(
        &data,
        &[
            "evaluate",
            pairs.to_str().unwrap(),
            "--root",
            lfw.to_str().unwrap(),
            "--models",
            models.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}\n{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
    };
    assert_eq!(field("pairs:"), "4");
    assert_eq!(field("threshold:"), "0.450");
    assert_eq!(field("accuracy:"), "100.0%");
    assert!(field("true accept rate:").starts_with("100.0%"), "{out}");
    assert!(field("false accept rate:").starts_with("0.0%"), "{out}");
    assert!(field("best threshold:").ends_with("(accuracy 100.0%)"), "{out}");
    assert!(field("model:").starts_with("fr_feature-"), "{out}");

    // A threshold of 0.99 rejects even the same person.
    let (ok, out, _) = pv(
        &data,
        &[
            "evaluate",
            pairs.to_str().unwrap(),
            "--root",
            lfw.to_str().unwrap(),
            "--models",
            models.to_str().unwrap(),
            "--threshold",
            "0.99",
        ],
    );
    assert!(ok);
    assert!(out.contains("true accept rate:  0.0%"), "{out}");
    assert!(out.contains("accuracy:          50.0%"), "{out}");
}

#[test]
fn evaluate_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = dir.path().join("pairs.txt");
    std::fs::write(&bad, "Barack_Obama 1 2\nthis line is not a pair at all\n").unwrap();
    let (ok, out, err) = pv(&data, &["evaluate", bad.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("pentavision: cannot use the pairs file"), "{err}");
    assert!(err.contains("line 2"), "{err}");

    let (ok, _, err) = pv(&data, &["evaluate", dir.path().join("missing.txt").to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot read the pairs file") && err.contains("missing.txt"), "{err}");

    // Good pairs, but no models where it looks.
    std::fs::write(&bad, "Barack_Obama 1 2\n").unwrap();
    let empty = dir.path().join("no-models");
    let (ok, _, err) =
        pv(&data, &["evaluate", bad.to_str().unwrap(), "--models", empty.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("fetch-models"), "{err}");

    let (ok, _, err) = pv(&data, &["evaluate", bad.to_str().unwrap(), "--threshold", "3"]);
    assert!(!ok);
    assert!(err.contains("between -1 and 1"), "{err}");
}

//! Measuring how well the models tell people apart, on pairs of pictures labelled "same person"
//! or "different people".
//!
//! The pairs file uses the layout of the LFW benchmark's `pairs.txt`: an optional header line
//! of numbers, then one pair a line, either `name n1 n2` (two pictures of one person) or
//! `name1 n1 name2 n2` (two people), fields separated by spaces or tabs. Picture `n` of `name`
//! is `ROOT/name/name_000n.jpg` (four digits). Blank lines and lines starting with `#` are
//! ignored.
//!
//! [`evaluate`] compares the largest face of each picture by cosine similarity and reports the
//! accuracy at a threshold, the share of same-person pairs accepted (true accept rate) and of
//! different-people pairs accepted (false accept rate), and the threshold that would have been
//! most accurate on this set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::engine::FaceEngine;
use crate::{Error, Result};

/// Two pictures and whether they show the same person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The first picture.
    pub a: PathBuf,
    /// The second picture.
    pub b: PathBuf,
    /// True when both show the same person.
    pub same: bool,
}

/// The outcome of an evaluation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Pairs compared (skipped pairs not included).
    pub pairs: usize,
    /// Pairs skipped because no face was found in one of the pictures.
    pub skipped: usize,
    /// Share of compared pairs judged correctly at `threshold`, 0..=1.
    pub accuracy: f64,
    /// Share of same-person pairs scoring at least `threshold` (1 when there were none).
    pub true_accept_rate: f64,
    /// Share of different-people pairs scoring at least `threshold` (0 when there were none).
    pub false_accept_rate: f64,
    /// The threshold the rates are for.
    pub threshold: f32,
    /// The threshold with the best accuracy on these pairs (the highest one among equals, as
    /// fewer false accepts is the safer mistake).
    pub best_threshold: f32,
    /// The accuracy at `best_threshold`.
    pub best_accuracy: f64,
}

/// Read an LFW-style pairs file (see the [module docs](self)); pictures are under `root`.
///
/// Errors: [`Error::InvalidPairs`] naming the first line that is neither a header, a
/// same-person pair nor a different-people pair, or when the file holds no pair at all.
pub fn parse_lfw_pairs(text: &str, root: &Path) -> Result<Vec<Pair>> {
    let picture = |name: &str, n: u32| root.join(name).join(format!("{name}_{n:04}.jpg"));
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| Error::InvalidPairs(format!("pairs file line {}: {why}", index + 1));
        let number = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad(&format!("\"{s}\" is not a picture number (1, 2, …)")))
        };
        if pairs.is_empty() && fields.len() <= 2 && fields.iter().all(|f| f.parse::<u32>().is_ok())
        {
            continue; // header: "6000" or "10 300"
        }
        match fields.as_slice() {
            [name, n1, n2] => pairs.push(Pair {
                a: picture(name, number(n1)?),
                b: picture(name, number(n2)?),
                same: true,
            }),
            [name1, n1, name2, n2] => pairs.push(Pair {
                a: picture(name1, number(n1)?),
                b: picture(name2, number(n2)?),
                same: false,
            }),
            _ => {
                return Err(bad(
                    "expected \"name n1 n2\" (same person) or \"name1 n1 name2 n2\" (different people)",
                ));
            }
        }
    }
    if pairs.is_empty() {
        return Err(Error::InvalidPairs("the pairs file holds no pair".into()));
    }
    Ok(pairs)
}

impl Evaluation {
    /// Rates for pairs already scored: `(cosine similarity, same person)` each; `skipped` is
    /// only reported. A pair is accepted when its score is at least `threshold`.
    pub fn from_scores(scores: &[(f32, bool)], skipped: usize, threshold: f32) -> Evaluation {
        let at = rates(scores, threshold);
        // Candidates: below everything, and each midpoint between neighbouring distinct scores
        // (a threshold on a score itself sits on the edge; the middle of the gap leaves margin).
        let mut sorted: Vec<f32> = scores.iter().map(|s| s.0).filter(|s| s.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        sorted.dedup();
        let mut candidates = Vec::with_capacity(sorted.len() + 1);
        if let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) {
            candidates.push(lo - 0.01);
            candidates.extend(sorted.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            candidates.push(hi + 0.01);
        } else {
            candidates.push(threshold);
        }
        let mut best = (threshold, at.0);
        for t in candidates {
            let accuracy = rates(scores, t).0;
            if accuracy >= best.1 {
                best = (t, accuracy);
            }
        }
        Evaluation {
            pairs: scores.len(),
            skipped,
            accuracy: at.0,
            true_accept_rate: at.1,
            false_accept_rate: at.2,
            threshold,
            best_threshold: best.0,
            best_accuracy: best.1,
        }
    }
}

/// (accuracy, true accept rate, false accept rate) at `threshold`.
fn rates(scores: &[(f32, bool)], threshold: f32) -> (f64, f64, f64) {
    let (mut same, mut different, mut true_accepts, mut false_accepts) = (0usize, 0usize, 0, 0);
    for &(score, is_same) in scores {
        let accepted = score >= threshold;
        if is_same {
            same += 1;
            true_accepts += usize::from(accepted);
        } else {
            different += 1;
            false_accepts += usize::from(accepted);
        }
    }
    let share = |n: usize, of: usize, none: f64| if of == 0 { none } else { n as f64 / of as f64 };
    let correct = true_accepts + (different - false_accepts);
    (
        share(correct, scores.len(), 1.0),
        share(true_accepts, same, 1.0),
        share(false_accepts, different, 0.0),
    )
}

/// Compare every pair with `engine`: the largest face of each picture, by cosine similarity,
/// accepted at `threshold`. Pairs where either picture shows no face are skipped and counted.
/// Each picture is analysed once even when it is in several pairs.
///
/// Errors: [`Error::Io`] naming a picture that cannot be read or decoded, and the engine's
/// errors.
pub fn evaluate(engine: &FaceEngine, pairs: &[Pair], threshold: f32) -> Result<Evaluation> {
    let mut embeddings: HashMap<&Path, Option<Vec<f32>>> = HashMap::new();
    let mut scores = Vec::with_capacity(pairs.len());
    let mut skipped = 0;
    for pair in pairs {
        for path in [&pair.a, &pair.b] {
            if !embeddings.contains_key(path.as_path()) {
                let embedding = largest_face(engine, path)?;
                if embedding.is_none() {
                    tracing::info!(picture = %path.display(), "no face found");
                }
                embeddings.insert(path.as_path(), embedding);
            }
        }
        let a = embeddings.get(pair.a.as_path()).and_then(Option::as_ref);
        let b = embeddings.get(pair.b.as_path()).and_then(Option::as_ref);
        match (a, b) {
            (Some(a), Some(b)) => {
                scores.push((crate::gallery::cosine_similarity(a, b)?, pair.same))
            }
            _ => skipped += 1,
        }
    }
    Ok(Evaluation::from_scores(&scores, skipped, threshold))
}

/// The embedding of the largest face in the picture at `path`, if any.
fn largest_face(engine: &FaceEngine, path: &Path) -> Result<Option<Vec<f32>>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Io(format!("cannot read the picture {}: {e}", path.display())))?;
    let image = crate::image::decode(&bytes)
        .map_err(|e| Error::Io(format!("cannot use the picture {}: {e}", path.display())))?;
    Ok(engine.analyse(&image)?.into_iter().next().map(|face| face.embedding))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_lfw_pairs_with_and_without_header() {
        let root = Path::new("/data/lfw");
        let text =
            "10\t300\nAbel_Pacheco\t1\t4\n\n# a comment\nAbdel_Madi_Shabneh 1 Dean_Barker 1\n";
        let pairs = parse_lfw_pairs(text, root).unwrap();
        assert_eq!(
            pairs,
            [
                Pair {
                    a: root.join("Abel_Pacheco/Abel_Pacheco_0001.jpg"),
                    b: root.join("Abel_Pacheco/Abel_Pacheco_0004.jpg"),
                    same: true
                },
                Pair {
                    a: root.join("Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg"),
                    b: root.join("Dean_Barker/Dean_Barker_0001.jpg"),
                    same: false
                },
            ]
        );
        let no_header = parse_lfw_pairs("x 1 2\n", root).unwrap();
        assert_eq!(no_header.len(), 1);
        assert_eq!(parse_lfw_pairs("6000\nx 1 2\n", root).unwrap().len(), 1);
    }

    #[test]
    fn bad_pairs_files_name_the_line() {
        let root = Path::new("r");
        for (text, line) in [
            ("x 1 2\nonly_a_name\n", "line 2"),
            ("x 1 two\n", "line 1"),
            ("x 0 1\n", "line 1"),
            ("10 300\na 1 b 2 c\n", "line 2"),
            ("a 1 2\n5\n", "line 2"),
        ] {
            let err = parse_lfw_pairs(text, root).unwrap_err();
            assert!(matches!(err, Error::InvalidPairs(_)), "{text:?}");
            assert!(err.to_string().contains(line), "{text:?}: {err}");
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
        for empty in ["", "10 300\n", "# nothing\n"] {
            assert!(parse_lfw_pairs(empty, root).unwrap_err().to_string().contains("no pair"));
        }
    }

    #[test]
    fn metrics_at_a_threshold() {
        let scores = [(0.8, true), (0.5, true), (0.3, true), (0.6, false), (0.1, false)];
        let e = Evaluation::from_scores(&scores, 2, 0.45);
        assert_eq!((e.pairs, e.skipped), (5, 2));
        assert_eq!(e.true_accept_rate, 2.0 / 3.0);
        assert_eq!(e.false_accept_rate, 0.5);
        assert_eq!(e.accuracy, 3.0 / 5.0);
        // A threshold equal to a score accepts it.
        let e = Evaluation::from_scores(&scores, 0, 0.5);
        assert_eq!(e.true_accept_rate, 2.0 / 3.0);
    }

    #[test]
    fn best_threshold_separates_when_possible() {
        let scores = [(0.83, true), (0.7, true), (0.75, true), (0.17, false), (-0.05, false)];
        let e = Evaluation::from_scores(&scores, 0, 0.9);
        assert_eq!(e.accuracy, 0.4);
        assert_eq!(e.best_accuracy, 1.0);
        assert!((e.best_threshold - 0.435).abs() < 1e-6, "{}", e.best_threshold);
        let at_best = Evaluation::from_scores(&scores, 0, e.best_threshold);
        assert_eq!((at_best.true_accept_rate, at_best.false_accept_rate), (1.0, 0.0));

        // Overlapping scores: the best threshold is the most accurate, highest among equals.
        let overlap = [(0.6, true), (0.4, true), (0.5, false), (0.2, false)];
        let e = Evaluation::from_scores(&overlap, 0, 0.45);
        assert_eq!(e.best_accuracy, 0.75);
        assert!((e.best_threshold - 0.55).abs() < 1e-6, "{}", e.best_threshold);
    }

    #[test]
    fn empty_and_one_sided_sets() {
        let e = Evaluation::from_scores(&[], 3, 0.45);
        assert_eq!((e.pairs, e.skipped, e.accuracy, e.best_threshold), (0, 3, 1.0, 0.45));
        let e = Evaluation::from_scores(&[(0.2, false)], 0, 0.45);
        assert_eq!((e.true_accept_rate, e.false_accept_rate, e.accuracy), (1.0, 0.0, 1.0));
    }
}

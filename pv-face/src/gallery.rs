//! Comparing face embeddings and matching a face against the enrolled gallery.
//!
//! Embeddings are `Vec<f32>` from the embedding model; their length depends on the model (512 for
//! the ArcFace family). Comparing vectors of different lengths, or vectors that are empty, all
//! zero or hold NaN/infinity, is an [`Error`], never a panic.
//!
//! [`best_match`] measures the Euclidean distance between the *L2-normalised* query and gallery
//! vectors, so stored embeddings need not be normalised and distances always lie in `0..=2`
//! (`d² = 2 − 2·cos`). An identity matches when its closest positive example is within the
//! threshold, unless one of its negative examples ("this is not Alice", added when a user
//! rejects a wrong match) is strictly closer to the query than that positive example: then the
//! identity is vetoed and the next-best identity may still match.

use std::collections::BTreeMap;

use pv_core::ids::IdentityId;

use crate::{Error, Result};

/// One gallery example: the identity, its embedding, and whether it is a negative example
/// (a face known *not* to be that identity).
pub type GalleryEntry = (IdentityId, Vec<f32>, bool);

/// The identity a face was matched to.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Match {
    /// The matched identity.
    pub identity: IdentityId,
    /// Euclidean distance between the normalised query and the identity's closest positive
    /// example, `0..=2` (smaller is more alike).
    pub distance: f32,
}

/// Scale `v` in place to unit Euclidean length.
pub fn l2_normalize(v: &mut [f32]) -> Result<()> {
    let norm = nonzero_norm(v)?;
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    Ok(())
}

/// A copy of `v` scaled to unit Euclidean length.
pub fn l2_normalized(v: &[f32]) -> Result<Vec<f32>> {
    let mut out = v.to_vec();
    l2_normalize(&mut out)?;
    Ok(out)
}

/// The Euclidean distance between `a` and `b` (as given, not normalised).
pub fn euclidean_distance(a: &[f32], b: &[f32]) -> Result<f32> {
    check_pair(a, b)?;
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    Ok(sum.sqrt() as f32)
}

/// The cosine similarity of `a` and `b`, `-1..=1` (1: same direction). Fails for zero vectors,
/// which have no direction.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<f32> {
    check_pair(a, b)?;
    let (na, nb) = (nonzero_norm(a)?, nonzero_norm(b)?);
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    Ok((dot / (na * nb)).clamp(-1.0, 1.0) as f32)
}

/// The identity whose closest positive example is nearest to `query`, if that distance is at most
/// `threshold` and no negative example of the identity is strictly closer than it. Distances are
/// between normalised vectors (see the [module docs](self)); ties go to the lower identity id.
///
/// Errors: `threshold` negative or not finite, `query` or any gallery embedding empty, zero or
/// non-finite, or a gallery embedding whose length differs from the query's.
pub fn best_match(
    query: &[f32],
    gallery: &[GalleryEntry],
    threshold: f32,
) -> Result<Option<Match>> {
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(Error::InvalidThreshold(threshold));
    }
    let query = l2_normalized(query)?;

    #[derive(Default)]
    struct Closest {
        positive: Option<f64>,
        negative: Option<f64>,
    }
    let mut per_identity: BTreeMap<IdentityId, Closest> = BTreeMap::new();
    for (identity, embedding, is_negative) in gallery {
        let d = normalized_distance(&query, embedding)?;
        let closest = per_identity.entry(*identity).or_default();
        let slot = if *is_negative { &mut closest.negative } else { &mut closest.positive };
        if slot.is_none_or(|best| d < best) {
            *slot = Some(d);
        }
    }

    let mut best: Option<(IdentityId, f64)> = None;
    for (identity, closest) in per_identity {
        let Some(positive) = closest.positive else {
            continue;
        };
        if positive > f64::from(threshold) {
            continue;
        }
        if let Some(negative) = closest.negative.filter(|&n| n < positive) {
            tracing::debug!(identity = %identity, positive, negative, "match vetoed by a negative example");
            continue;
        }
        // Identities arrive in ascending order, so a strict comparison keeps the lower id on ties.
        if best.is_none_or(|(_, d)| positive < d) {
            best = Some((identity, positive));
        }
    }
    Ok(best.map(|(identity, d)| Match { identity, distance: d as f32 }))
}

/// Euclidean distance between the unit vector `unit_query` and `embedding` normalised.
fn normalized_distance(unit_query: &[f32], embedding: &[f32]) -> Result<f64> {
    check_pair(unit_query, embedding)?;
    let norm = nonzero_norm(embedding)?;
    let sum: f64 = unit_query
        .iter()
        .zip(embedding)
        .map(|(&q, &e)| {
            let d = f64::from(q) - f64::from(e) / norm;
            d * d
        })
        .sum();
    Ok(sum.sqrt())
}

/// Both vectors valid and of the same length (`a` is the reference).
fn check_pair(a: &[f32], b: &[f32]) -> Result<()> {
    check(a)?;
    if a.len() != b.len() {
        return Err(Error::DimensionMismatch { expected: a.len(), actual: b.len() });
    }
    check(b)
}

/// Non-empty and finite.
fn check(v: &[f32]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::InvalidEmbedding("the embedding is empty"));
    }
    if !v.iter().all(|x| x.is_finite()) {
        return Err(Error::InvalidEmbedding("the embedding contains NaN or infinity"));
    }
    Ok(())
}

/// The Euclidean length of a valid, non-zero vector, computed in `f64` (cannot overflow for
/// finite `f32` input).
fn nonzero_norm(v: &[f32]) -> Result<f64> {
    check(v)?;
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return Err(Error::InvalidEmbedding("the embedding is all zeros and has no direction"));
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const EPS: f32 = 1e-6;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < EPS
    }

    fn pos(id: i64, v: &[f32]) -> GalleryEntry {
        (IdentityId(id), v.to_vec(), false)
    }

    fn neg(id: i64, v: &[f32]) -> GalleryEntry {
        (IdentityId(id), v.to_vec(), true)
    }

    /// A unit vector in the plane at `degrees` from the x axis.
    fn at(degrees: f32) -> Vec<f32> {
        let r = degrees.to_radians();
        vec![r.cos(), r.sin()]
    }

    #[test]
    fn normalisation_gives_unit_length() {
        assert_eq!(l2_normalized(&[3.0, 4.0]).unwrap(), [0.6, 0.8]);
        let mut v = vec![1e30, -1e30, 1e30];
        l2_normalize(&mut v).unwrap();
        let len: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(close(len, 1.0), "large values do not overflow: {v:?}");
        let tiny = l2_normalized(&[1e-30, 0.0]).unwrap();
        assert_eq!(tiny, [1.0, 0.0]);
    }

    #[test]
    fn normalisation_rejects_vectors_without_direction() {
        for bad in [&[][..], &[0.0, 0.0], &[1.0, f32::NAN], &[f32::INFINITY, 0.0]] {
            let err = l2_normalized(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidEmbedding(_)), "{bad:?}");
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
        let mut v = vec![0.0, f32::NAN];
        assert!(l2_normalize(&mut v).is_err());
    }

    #[test]
    fn euclidean_distance_works_and_checks_dimensions() {
        assert_eq!(euclidean_distance(&[0.0, 0.0], &[3.0, 4.0]).unwrap(), 5.0);
        assert_eq!(euclidean_distance(&[1.0, 2.0], &[1.0, 2.0]).unwrap(), 0.0);
        assert!(matches!(
            euclidean_distance(&[1.0, 2.0], &[1.0, 2.0, 3.0]),
            Err(Error::DimensionMismatch { expected: 2, actual: 3 })
        ));
        assert!(matches!(euclidean_distance(&[], &[]), Err(Error::InvalidEmbedding(_))));
        assert!(matches!(euclidean_distance(&[1.0], &[f32::NAN]), Err(Error::InvalidEmbedding(_))));
    }

    #[test]
    fn cosine_similarity_is_scale_invariant() {
        assert!(close(cosine_similarity(&[1.0, 0.0], &[5.0, 0.0]).unwrap(), 1.0));
        assert!(close(cosine_similarity(&[1.0, 0.0], &[0.0, 2.0]).unwrap(), 0.0));
        assert!(close(cosine_similarity(&[1.0, 1.0], &[-3.0, -3.0]).unwrap(), -1.0));
        assert!(close(cosine_similarity(&at(0.0), &at(60.0)).unwrap(), 0.5));
        assert!(matches!(
            cosine_similarity(&[0.0, 0.0], &[1.0, 0.0]),
            Err(Error::InvalidEmbedding(_))
        ));
        assert!(matches!(
            cosine_similarity(&[1.0, 0.0, 0.0], &[1.0, 0.0]),
            Err(Error::DimensionMismatch { expected: 3, actual: 2 })
        ));
    }

    #[test]
    fn best_match_picks_the_nearest_identity_within_threshold() {
        let gallery = [pos(1, &at(0.0)), pos(2, &at(30.0)), pos(2, &at(90.0)), pos(3, &at(170.0))];
        let hit = best_match(&at(20.0), &gallery, 0.5).unwrap().unwrap();
        assert_eq!(hit.identity, IdentityId(2), "the closest of identity 2's examples counts");
        // Chord length between unit vectors 10° apart: 2·sin(5°).
        assert!(close(hit.distance, 2.0 * 5f32.to_radians().sin()), "{}", hit.distance);
        assert_eq!(
            best_match(&at(130.0), &gallery, 0.5).unwrap(),
            None,
            "nothing within threshold"
        );
        assert_eq!(best_match(&at(130.0), &gallery, 2.0).unwrap().unwrap().identity, IdentityId(3));
        assert_eq!(best_match(&at(0.0), &[], 1.0).unwrap(), None);
    }

    #[test]
    fn best_match_normalises_and_threshold_is_inclusive() {
        let gallery = [pos(7, &[10.0, 0.0, 0.0])];
        let hit = best_match(&[0.25, 0.0, 0.0], &gallery, 0.0).unwrap().unwrap();
        assert_eq!(hit, Match { identity: IdentityId(7), distance: 0.0 });
    }

    #[test]
    fn negative_example_closer_than_best_positive_vetoes_the_identity() {
        let query = at(0.0);
        let mut gallery = vec![pos(1, &at(20.0)), neg(1, &at(5.0)), pos(2, &at(40.0))];
        let hit = best_match(&query, &gallery, 1.0).unwrap().unwrap();
        assert_eq!(hit.identity, IdentityId(2), "1 is vetoed, the next identity still matches");
        gallery.pop();
        assert_eq!(best_match(&query, &gallery, 1.0).unwrap(), None);
    }

    #[test]
    fn negative_examples_farther_away_or_of_other_identities_do_not_veto() {
        let query = at(0.0);
        let gallery = [pos(1, &at(10.0)), neg(1, &at(30.0)), neg(2, &at(1.0)), pos(2, &at(50.0))];
        let hit = best_match(&query, &gallery, 1.0).unwrap().unwrap();
        assert_eq!(hit.identity, IdentityId(1));
        // A negative exactly as close as the best positive is not strictly closer.
        let tie = [pos(1, &at(10.0)), neg(1, &at(-10.0))];
        assert_eq!(best_match(&query, &tie, 1.0).unwrap().unwrap().identity, IdentityId(1));
    }

    #[test]
    fn identity_with_only_negative_examples_never_matches() {
        let gallery = [neg(1, &at(0.0))];
        assert_eq!(best_match(&at(0.0), &gallery, 2.0).unwrap(), None);
    }

    #[test]
    fn ties_go_to_the_lower_identity_id() {
        let gallery = [pos(9, &at(10.0)), pos(4, &at(-10.0))];
        assert_eq!(best_match(&at(0.0), &gallery, 1.0).unwrap().unwrap().identity, IdentityId(4));
    }

    #[test]
    fn dimension_mismatch_is_an_error_not_a_panic() {
        let gallery = [pos(1, &[1.0, 0.0]), pos(2, &[1.0, 0.0, 0.0])];
        let err = best_match(&[1.0, 0.0], &gallery, 1.0).unwrap_err();
        assert!(matches!(err, Error::DimensionMismatch { expected: 2, actual: 3 }), "{err:?}");
        assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        assert!(matches!(
            best_match(&[1.0, 0.0, 0.0, 0.0], &gallery[..1], 1.0),
            Err(Error::DimensionMismatch { expected: 4, actual: 2 })
        ));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let gallery = [pos(1, &[1.0, 0.0])];
        for t in [-0.1, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                best_match(&[1.0, 0.0], &gallery, t),
                Err(Error::InvalidThreshold(_))
            ));
        }
        assert!(matches!(best_match(&[0.0, 0.0], &gallery, 1.0), Err(Error::InvalidEmbedding(_))));
        assert!(matches!(best_match(&[], &[], 1.0), Err(Error::InvalidEmbedding(_))));
        assert!(matches!(
            best_match(&[1.0, 0.0], &[pos(1, &[0.0, 0.0])], 1.0),
            Err(Error::InvalidEmbedding(_))
        ));
        assert!(matches!(
            best_match(&[1.0, 0.0], &[neg(1, &[f32::NAN, 0.0])], 1.0),
            Err(Error::InvalidEmbedding(_))
        ));
    }
}

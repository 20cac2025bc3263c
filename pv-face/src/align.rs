//! Face alignment: a least-squares similarity transform (rotation, uniform scale, translation;
//! the 2-D case of Umeyama's method) maps the five keypoints onto the standard 112x112 ArcFace
//! template, and the face is resampled through it.

use crate::detect::BBox;
use crate::image::{Affine, RgbImage, warp};

/// Side of the aligned face, in pixels.
pub const ALIGNED_SIDE: u32 = 112;

/// The standard five-point template in 112x112 pixel coordinates: right eye, left eye, nose,
/// right mouth corner, left mouth corner (the person's right is on the left of the picture).
pub const TEMPLATE_112: [(f32, f32); 5] = [
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
];

/// Where the template's keypoints fall in a face box, as fractions of its width and height.
/// Used when the detector gives no keypoints (UltraFace, whose boxes run from the hairline to the
/// chin); measured as the mean of BlazeFace keypoints inside UltraFace boxes on four portraits.
const BOX_TEMPLATE: [(f32, f32); 5] =
    [(0.26, 0.40), (0.76, 0.40), (0.51, 0.59), (0.30, 0.77), (0.72, 0.77)];

/// Estimate the five keypoints of a frontal face from its box alone.
pub fn landmarks_from_box(b: &BBox) -> [(f32, f32); 5] {
    BOX_TEMPLATE.map(|(fx, fy)| (b.x + fx * b.w, b.y + fy * b.h))
}

/// A similarity transform `dst = [a -b; b a] * src + (tx, ty)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// Scale times cosine of the rotation.
    pub a: f32,
    /// Scale times sine of the rotation.
    pub b: f32,
    /// Horizontal translation.
    pub tx: f32,
    /// Vertical translation.
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity transform taking `src` onto `dst`. Degenerate input (all
    /// source points equal) gives a pure translation of the centroids.
    pub fn estimate(src: &[(f32, f32)], dst: &[(f32, f32)]) -> Similarity {
        let n = src.len().min(dst.len()).max(1) as f64;
        let mean = |p: &[(f32, f32)]| {
            let (sx, sy) = p
                .iter()
                .fold((0.0f64, 0.0f64), |acc, q| (acc.0 + f64::from(q.0), acc.1 + f64::from(q.1)));
            (sx / n, sy / n)
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut num_a, mut num_b, mut var) = (0.0f64, 0.0f64, 0.0f64);
        for (s, d) in src.iter().zip(dst) {
            let (xs, ys) = (f64::from(s.0) - ms.0, f64::from(s.1) - ms.1);
            let (xd, yd) = (f64::from(d.0) - md.0, f64::from(d.1) - md.1);
            num_a += xs * xd + ys * yd;
            num_b += xs * yd - ys * xd;
            var += xs * xs + ys * ys;
        }
        let (a, b) = if var > 1e-9 { (num_a / var, num_b / var) } else { (1.0, 0.0) };
        Similarity {
            a: a as f32,
            b: b as f32,
            tx: (md.0 - (a * ms.0 - b * ms.1)) as f32,
            ty: (md.1 - (b * ms.0 + a * ms.1)) as f32,
        }
    }

    /// Apply the transform to a point.
    pub fn apply(&self, p: (f32, f32)) -> (f32, f32) {
        (self.a * p.0 - self.b * p.1 + self.tx, self.b * p.0 + self.a * p.1 + self.ty)
    }

    /// The inverse map (destination to source) as a sampler matrix.
    fn inverse_affine(&self) -> Affine {
        let d = (self.a * self.a + self.b * self.b).max(1e-12);
        let (a, b) = (self.a / d, self.b / d);
        Affine([a, b, -(a * self.tx + b * self.ty), -b, a, b * self.tx - a * self.ty])
    }
}

/// The face at `landmarks` (source pixels, in [`TEMPLATE_112`] order) warped onto the
/// 112x112 template. Parts outside the picture are black.
pub fn align(img: &RgbImage, landmarks: &[(f32, f32); 5]) -> RgbImage {
    // Template coordinates are pixel indices (pixel i's centre is i); the sampler's continuous
    // coordinates put it at i + 0.5, as do the detectors' keypoints.
    let dst = TEMPLATE_112.map(|(x, y)| (x + 0.5, y + 0.5));
    let t = Similarity::estimate(landmarks, &dst);
    warp(img, ALIGNED_SIDE, ALIGNED_SIDE, &t.inverse_affine(), [0, 0, 0])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_similarity() {
        let truth = Similarity { a: 0.8, b: 0.3, tx: 5.0, ty: -7.0 };
        let src = [(10.0, 20.0), (40.0, 22.0), (25.0, 35.0), (15.0, 50.0), (37.0, 49.0)];
        let dst = src.map(|p| truth.apply(p));
        let est = Similarity::estimate(&src, &dst);
        for (got, want) in [(est.a, 0.8), (est.b, 0.3), (est.tx, 5.0), (est.ty, -7.0)] {
            assert!((got - want).abs() < 1e-4, "{est:?}");
        }
        let inv = est.inverse_affine().0;
        let back = (
            inv[0] * dst[0].0 + inv[1] * dst[0].1 + inv[2],
            inv[3] * dst[0].0 + inv[4] * dst[0].1 + inv[5],
        );
        assert!((back.0 - 10.0).abs() < 1e-3 && (back.1 - 20.0).abs() < 1e-3);
    }

    #[test]
    fn aligning_the_template_is_the_identity() {
        let mut data = Vec::new();
        for y in 0..112u32 {
            for x in 0..112u32 {
                data.extend_from_slice(&[x as u8, y as u8, 9]);
            }
        }
        let img = RgbImage::new(112, 112, data).unwrap();
        let lm = TEMPLATE_112.map(|(x, y)| (x + 0.5, y + 0.5));
        assert_eq!(align(&img, &lm), img);
    }
}

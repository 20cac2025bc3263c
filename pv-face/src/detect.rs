//! Face detection: BlazeFace (front 128x128 and back 256x256, with keypoints) and UltraFace
//! RFB-320 (boxes only).
//!
//! Both detectors letterbox the frame into the model's input (the picture keeps its aspect
//! ratio; the rest is black), decode the raw outputs into boxes in source-image pixels, and merge
//! overlapping boxes with weighted non-maximum suppression (IoU above 0.3: the boxes and
//! keypoints of a cluster are averaged by score, the cluster keeps its best score).

use std::path::Path;

use crate::Result;
use crate::image::{Affine, RgbImage, warp};
use crate::model::{OnnxModel, shape_text};

/// The default minimum detection score.
pub const DEFAULT_MIN_SCORE: f32 = 0.75;
/// Boxes overlapping more than this (intersection over union) are merged.
pub const NMS_IOU: f32 = 0.3;

/// A face box in source-image pixels: top-left corner, width and height.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl BBox {
    /// The box's area in square pixels (0 for degenerate boxes).
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Intersection over union with `other`, `0..=1`.
    pub fn iou(&self, other: &BBox) -> f32 {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (self.x + self.w).min(other.x + other.w);
        let y2 = (self.y + self.h).min(other.y + other.h);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// One detected face.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// The face box in source-image pixels.
    pub bbox: BBox,
    /// Detector confidence, `0..=1`.
    pub score: f32,
    /// Five keypoints in source-image pixels: right eye, left eye, nose, right mouth corner,
    /// left mouth corner ("right" is the person's right, on the left of the picture). BlazeFace
    /// gives the mouth centre, which stands for both corners; UltraFace gives none.
    pub landmarks: Option<[(f32, f32); 5]>,
}

/// Which detection model to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// BlazeFace short range, 128x128 input: fast, faces filling a good part of the frame.
    #[default]
    BlazefaceFront,
    /// BlazeFace full range, 256x256 input: smaller, farther faces.
    BlazefaceBack,
    /// UltraFace RFB-320, 320x240 input: no keypoints.
    Ultraface,
}

impl DetectorKind {
    /// The file name of the default model for this detector.
    pub fn default_file_name(self) -> &'static str {
        match self {
            DetectorKind::BlazefaceFront => "face_detection_front_128x128_barracuda.onnx",
            DetectorKind::BlazefaceBack => "face_detection_back_256x256_barracuda.onnx",
            DetectorKind::Ultraface => "fr_detect.onnx",
        }
    }
}

/// A face detector. Implementations are thread-safe; `detect` may run concurrently.
pub trait Detector: Send + Sync {
    /// Every face in `img` scoring at least the detector's minimum score, after suppression of
    /// overlapping boxes, best score first.
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>>;
    /// Which model this is.
    fn kind(&self) -> DetectorKind;
}

/// Load the detector of `kind` from `path`, keeping detections scoring at least `min_score`.
pub fn load_detector(kind: DetectorKind, path: &Path, min_score: f32) -> Result<Box<dyn Detector>> {
    Ok(match kind {
        DetectorKind::BlazefaceFront => Box::new(BlazeFace::load(path, 128, min_score)?),
        DetectorKind::BlazefaceBack => Box::new(BlazeFace::load(path, 256, min_score)?),
        DetectorKind::Ultraface => Box::new(UltraFace::load(path, min_score)?),
    })
}

/// Where the letterboxed frame sits in the model input: model pixel = source pixel * scale.
fn letterbox(img: &RgbImage, in_w: u32, in_h: u32) -> (RgbImage, f32) {
    let scale = (in_w as f32 / img.width() as f32).min(in_h as f32 / img.height() as f32);
    let inv = 1.0 / scale;
    let boxed = warp(img, in_w, in_h, &Affine([inv, 0.0, 0.0, 0.0, inv, 0.0]), [0, 0, 0]);
    (boxed, scale)
}

/// BlazeFace (MediaPipe's face detector): 896 anchors on a 16x16 grid (2 per cell) and an 8x8
/// grid (6 per cell); input NHWC RGB scaled to `[-1, 1]`.
pub struct BlazeFace {
    model: OnnxModel,
    side: u32,
    min_score: f32,
    /// Output indices of (scores 512, scores 384, regressors 512, regressors 384).
    outputs: [usize; 4],
}

const BLAZE_BIG: usize = 512;
const BLAZE_SMALL: usize = 384;

impl BlazeFace {
    /// Load a BlazeFace model with a `side` x `side` input (128 for the front model, 256 for the
    /// back model).
    pub fn load(path: &Path, side: u32, min_score: f32) -> Result<BlazeFace> {
        let s = side as usize;
        let model = OnnxModel::load(path, &[1, s, s, 3])?;
        let shapes = model.output_shapes();
        let find = |shape: &[usize]| shapes.iter().position(|s| s.as_slice() == shape);
        let outputs = match (
            find(&[1, BLAZE_BIG, 1]),
            find(&[1, BLAZE_SMALL, 1]),
            find(&[1, BLAZE_BIG, 16]),
            find(&[1, BLAZE_SMALL, 16]),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => [a, b, c, d],
            _ => {
                let found: Vec<String> = shapes.iter().map(|s| shape_text(s)).collect();
                return Err(model.error(format!(
                    "has outputs {}; PentaVision needs a BlazeFace model with score outputs \
                     [1, 512, 1] and [1, 384, 1] and box outputs [1, 512, 16] and [1, 384, 16]",
                    found.join(", ")
                )));
            }
        };
        Ok(BlazeFace { model, side, min_score, outputs })
    }

    fn input(&self, img: &RgbImage) -> (Vec<f32>, f32) {
        let (boxed, scale) = letterbox(img, self.side, self.side);
        let data = boxed.as_bytes().iter().map(|&v| f32::from(v) / 127.5 - 1.0).collect();
        (data, scale)
    }
}

impl Detector for BlazeFace {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let (input, scale) = self.input(img);
        let out = self.model.run(&input)?;
        let [s_big, s_small, r_big, r_small] = self.outputs;
        let side = self.side as f32;
        // Model-input pixels to source pixels.
        let to_src = side / scale;
        let mut found = Vec::new();
        for i in 0..BLAZE_BIG + BLAZE_SMALL {
            let (raw_score, reg, cells, per_cell, j) = if i < BLAZE_BIG {
                (out[s_big][i], &out[r_big][i * 16..i * 16 + 16], 16, 2, i)
            } else {
                let j = i - BLAZE_BIG;
                (out[s_small][j], &out[r_small][j * 16..j * 16 + 16], 8, 6, j)
            };
            let score = sigmoid(raw_score);
            if score.is_nan() || score < self.min_score {
                continue;
            }
            let cell = j / per_cell;
            let ax = ((cell % cells) as f32 + 0.5) / cells as f32;
            let ay = ((cell / cells) as f32 + 0.5) / cells as f32;
            let cx = (ax + reg[0] / side) * to_src;
            let cy = (ay + reg[1] / side) * to_src;
            let w = reg[2] / side * to_src;
            let h = reg[3] / side * to_src;
            if !(w > 0.0 && h > 0.0 && cx.is_finite() && cy.is_finite()) {
                continue;
            }
            let kp = |k: usize| {
                ((ax + reg[4 + 2 * k] / side) * to_src, (ay + reg[5 + 2 * k] / side) * to_src)
            };
            let mouth = kp(3);
            found.push(Detection {
                bbox: BBox { x: cx - w / 2.0, y: cy - h / 2.0, w, h },
                score,
                landmarks: Some([kp(0), kp(1), kp(2), mouth, mouth]),
            });
        }
        Ok(weighted_nms(found, NMS_IOU))
    }

    fn kind(&self) -> DetectorKind {
        if self.side == 128 { DetectorKind::BlazefaceFront } else { DetectorKind::BlazefaceBack }
    }
}

/// UltraFace RFB-320: input NCHW RGB 320x240, `(v - 127) / 128`; outputs softmaxed scores
/// `[1, N, 2]` and normalised corner boxes `[1, N, 4]`.
pub struct UltraFace {
    model: OnnxModel,
    min_score: f32,
    /// Output indices of (scores, boxes).
    outputs: [usize; 2],
    anchors: usize,
}

const ULTRA_W: u32 = 320;
const ULTRA_H: u32 = 240;

impl UltraFace {
    /// Load an UltraFace RFB-320 model.
    pub fn load(path: &Path, min_score: f32) -> Result<UltraFace> {
        let model = OnnxModel::load(path, &[1, 3, ULTRA_H as usize, ULTRA_W as usize])?;
        let shapes = model.output_shapes();
        let scores = shapes.iter().position(|s| s.len() == 3 && s[0] == 1 && s[2] == 2);
        let boxes = shapes.iter().position(|s| s.len() == 3 && s[0] == 1 && s[2] == 4);
        let (scores, boxes) = match (scores, boxes) {
            (Some(a), Some(b)) if shapes[a][1] == shapes[b][1] && shapes[a][1] > 0 => (a, b),
            _ => {
                let found: Vec<String> = shapes.iter().map(|s| shape_text(s)).collect();
                return Err(model.error(format!(
                    "has outputs {}; PentaVision needs an UltraFace model with outputs \
                     [1, N, 2] (scores) and [1, N, 4] (boxes)",
                    found.join(", ")
                )));
            }
        };
        let anchors = shapes[scores][1];
        Ok(UltraFace { model, min_score, outputs: [scores, boxes], anchors })
    }
}

impl Detector for UltraFace {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let (boxed, scale) = letterbox(img, ULTRA_W, ULTRA_H);
        let plane = (ULTRA_W * ULTRA_H) as usize;
        let mut input = vec![0.0f32; plane * 3];
        for (i, px) in boxed.as_bytes().chunks_exact(3).enumerate() {
            for c in 0..3 {
                input[c * plane + i] = (f32::from(px[c]) - 127.0) / 128.0;
            }
        }
        let out = self.model.run(&input)?;
        let (scores, boxes) = (&out[self.outputs[0]], &out[self.outputs[1]]);
        let (sx, sy) = (ULTRA_W as f32 / scale, ULTRA_H as f32 / scale);
        let mut found = Vec::new();
        for i in 0..self.anchors {
            let score = scores[i * 2 + 1];
            if score.is_nan() || score < self.min_score {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            let (x1, y1, x2, y2) = (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy);
            if !(x2 > x1 && y2 > y1) {
                continue;
            }
            found.push(Detection {
                bbox: BBox { x: x1, y: y1, w: x2 - x1, h: y2 - y1 },
                score,
                landmarks: None,
            });
        }
        Ok(weighted_nms(found, NMS_IOU))
    }

    fn kind(&self) -> DetectorKind {
        DetectorKind::Ultraface
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-80.0, 80.0)).exp())
}

/// Weighted non-maximum suppression: clusters of boxes overlapping the best remaining box by more
/// than `iou` are replaced by their score-weighted average (box and keypoints), with the best
/// score. The result is sorted best score first.
pub fn weighted_nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<Detection> = Vec::new();
    let mut taken = vec![false; dets.len()];
    for i in 0..dets.len() {
        if taken[i] {
            continue;
        }
        let top = &dets[i];
        let mut total = 0.0f32;
        let mut b = [0.0f32; 4];
        let mut lm = [(0.0f32, 0.0f32); 5];
        for j in i..dets.len() {
            if taken[j] || (j != i && top.bbox.iou(&dets[j].bbox) <= iou) {
                continue;
            }
            taken[j] = true;
            let d = &dets[j];
            let s = d.score;
            total += s;
            b[0] += d.bbox.x * s;
            b[1] += d.bbox.y * s;
            b[2] += d.bbox.w * s;
            b[3] += d.bbox.h * s;
            if let (Some(points), Some(_)) = (&d.landmarks, &top.landmarks) {
                for (acc, p) in lm.iter_mut().zip(points) {
                    acc.0 += p.0 * s;
                    acc.1 += p.1 * s;
                }
            }
        }
        let merged = if total > 0.0 {
            Detection {
                bbox: BBox { x: b[0] / total, y: b[1] / total, w: b[2] / total, h: b[3] / total },
                score: top.score,
                landmarks: top.landmarks.map(|_| lm.map(|(x, y)| (x / total, y / total))),
            }
        } else {
            top.clone()
        };
        out.push(merged);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox { x, y: 0.0, w: 10.0, h: 10.0 },
            score,
            landmarks: Some([(x, 0.0); 5]),
        }
    }

    #[test]
    fn iou_of_boxes() {
        let a = BBox { x: 0.0, y: 0.0, w: 10.0, h: 10.0 };
        assert_eq!(a.iou(&a), 1.0);
        let b = BBox { x: 5.0, ..a };
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        let c = BBox { x: 20.0, ..a };
        assert_eq!(a.iou(&c), 0.0);
    }

    #[test]
    fn nms_merges_overlaps_and_keeps_separate_faces() {
        let out = weighted_nms(vec![det(1.0, 0.8), det(0.0, 0.9), det(50.0, 0.85)], 0.3);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        // Weighted average of x = 0 (0.9) and x = 1 (0.8).
        assert!((out[0].bbox.x - 0.8 / 1.7).abs() < 1e-5);
        assert!((out[0].landmarks.unwrap()[0].0 - 0.8 / 1.7).abs() < 1e-5);
        assert_eq!(out[1].bbox.x, 50.0);
    }
}

//! The face engine: one detector and one embedder, loaded once and shared between threads.

use std::path::{Path, PathBuf};

use crate::Result;
use crate::align::{align, landmarks_from_box};
use crate::detect::{DEFAULT_MIN_SCORE, Detection, Detector, DetectorKind, load_detector};
use crate::embed::Embedder;
use crate::image::RgbImage;

/// File name of the default embedding model.
pub const DEFAULT_EMBEDDER_FILE: &str = "fr_feature.onnx";
/// Default smallest face side, in pixels; smaller faces are ignored.
pub const DEFAULT_MIN_FACE_PX: u32 = 24;
/// Side of the face crops [`FaceEngine::analyse`] returns.
pub const CROP_SIDE: u32 = 96;

/// Which models to load and which faces to keep.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct EngineConfig {
    /// The detection model's kind.
    pub detector: DetectorKind,
    /// The detection model file.
    pub detector_path: PathBuf,
    /// The embedding model file.
    pub embedder_path: PathBuf,
    /// Detections scoring below this are dropped (default 0.75).
    #[serde(default = "default_min_score")]
    pub min_detection_score: f32,
    /// Faces whose box is narrower or shorter than this many pixels are dropped (default 24).
    #[serde(default = "default_min_face_px")]
    pub min_face_px: u32,
}

fn default_min_score() -> f32 {
    DEFAULT_MIN_SCORE
}

fn default_min_face_px() -> u32 {
    DEFAULT_MIN_FACE_PX
}

impl EngineConfig {
    /// The default model files of `detector` in `model_dir`, with default thresholds.
    pub fn in_dir(model_dir: &Path, detector: DetectorKind) -> EngineConfig {
        EngineConfig {
            detector,
            detector_path: model_dir.join(detector.default_file_name()),
            embedder_path: model_dir.join(DEFAULT_EMBEDDER_FILE),
            min_detection_score: DEFAULT_MIN_SCORE,
            min_face_px: DEFAULT_MIN_FACE_PX,
        }
    }
}

/// One face found by [`FaceEngine::analyse`].
#[derive(Clone, Debug)]
pub struct AnalysedFace {
    /// Where the face is.
    pub detection: Detection,
    /// Its L2-normalised embedding.
    pub embedding: Vec<f32>,
    /// A 96x96 picture of the face with some margin (see [`RgbImage::crop`]).
    pub crop: RgbImage,
}

/// Detection, alignment and embedding. `Send + Sync`: share one in an `Arc`; every method takes
/// `&self` and may run concurrently.
pub struct FaceEngine {
    detector: Box<dyn Detector>,
    embedder: Embedder,
    min_face_px: u32,
}

impl FaceEngine {
    /// Load both models. Fails with [`crate::Error::Model`] (naming the file) when a model file is
    /// missing, damaged, or has inputs or outputs of the wrong shape.
    pub fn load(config: &EngineConfig) -> Result<FaceEngine> {
        let detector =
            load_detector(config.detector, &config.detector_path, config.min_detection_score)?;
        let embedder = Embedder::load(&config.embedder_path)?;
        Ok(FaceEngine { detector, embedder, min_face_px: config.min_face_px })
    }

    /// The embedding model's id, stored with every embedding (see [`Embedder::model_id`]).
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// The embedding length.
    pub fn dimensions(&self) -> usize {
        self.embedder.dimensions()
    }

    /// The detector in use.
    pub fn detector_kind(&self) -> DetectorKind {
        self.detector.kind()
    }

    /// The faces in `img` that pass the score and size limits, largest first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let min = self.min_face_px as f32;
        let mut faces: Vec<Detection> = self
            .detector
            .detect(img)?
            .into_iter()
            .filter(|d| d.bbox.w >= min && d.bbox.h >= min)
            .collect();
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(faces)
    }

    /// The embedding of the face `d` in `img`: aligned by its keypoints, or by keypoints
    /// estimated from its box when the detector gives none.
    pub fn embed_face(&self, img: &RgbImage, d: &Detection) -> Result<Vec<f32>> {
        let landmarks = d.landmarks.unwrap_or_else(|| landmarks_from_box(&d.bbox));
        self.embedder.embed(&align(img, &landmarks))
    }

    /// Detect, align and embed every face in `img`, largest first.
    pub fn analyse(&self, img: &RgbImage) -> Result<Vec<AnalysedFace>> {
        self.detect(img)?
            .into_iter()
            .map(|detection| {
                let embedding = self.embed_face(img, &detection)?;
                let crop = img.crop(&detection.bbox, CROP_SIDE);
                Ok(AnalysedFace { detection, embedding, crop })
            })
            .collect()
    }
}

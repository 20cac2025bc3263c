//! The face embedder: an aligned 112x112 face in, an L2-normalised vector out.
//!
//! The default model (a MobileFaceNet-style network, 512 dimensions) takes BGR, NCHW,
//! `(v - 127) / 128`. Any ONNX model with one `[1, 3, 112, 112]` input and one `[1, N]` output
//! works the same way; its vectors are only comparable with vectors from the same model, which
//! is what [`Embedder::model_id`] is for.

use std::path::Path;

use crate::Result;
use crate::image::RgbImage;
use crate::model::{OnnxModel, shape_text};

const SIDE: usize = 112;

/// A loaded embedding model.
pub struct Embedder {
    model: OnnxModel,
    dimensions: usize,
    model_id: String,
}

impl Embedder {
    /// Load the model at `path`. Fails with [`crate::Error::Model`] unless it has a single output of
    /// shape `[1, N]`, N > 0.
    pub fn load(path: &Path) -> Result<Embedder> {
        let model = OnnxModel::load(path, &[1, 3, SIDE, SIDE])?;
        let dimensions = match model.output_shapes() {
            [shape] if shape.len() == 2 && shape[0] == 1 && shape[1] > 0 => shape[1],
            shapes => {
                let found: Vec<String> = shapes.iter().map(|s| shape_text(s)).collect();
                let what = match shapes {
                    [shape] if shape.iter().product::<usize>() > 0 => format!(
                        "outputs {} values per face in the shape {}",
                        shape.iter().product::<usize>(),
                        found.join(", ")
                    ),
                    _ => format!("has outputs {}", found.join(", ")),
                };
                return Err(model.error(format!(
                    "{what}; PentaVision needs a face embedding model with one output of shape \
                     [1, N] (one vector per face). Is this a detection model?"
                )));
            }
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_owned());
        let model_id = format!("{stem}-{}", &model.sha256()[..12]);
        Ok(Embedder { model, dimensions, model_id })
    }

    /// The length of the vectors this model produces.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// `"<file stem>-<first 12 hex digits of the file's SHA-256>"`: identifies the model whose
    /// vectors can be compared with each other.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The L2-normalised embedding of an aligned face (see [`crate::align::align`]); a picture
    /// of another size is first scaled to 112x112.
    pub fn embed(&self, aligned_112: &RgbImage) -> Result<Vec<f32>> {
        let resized;
        let face = if aligned_112.width() as usize == SIDE && aligned_112.height() as usize == SIDE
        {
            aligned_112
        } else {
            resized = aligned_112.resized(SIDE as u32, SIDE as u32);
            &resized
        };
        let plane = SIDE * SIDE;
        let mut input = vec![0.0f32; plane * 3];
        for (i, px) in face.as_bytes().chunks_exact(3).enumerate() {
            // BGR planes.
            input[i] = (f32::from(px[2]) - 127.0) / 128.0;
            input[plane + i] = (f32::from(px[1]) - 127.0) / 128.0;
            input[2 * plane + i] = (f32::from(px[0]) - 127.0) / 128.0;
        }
        let mut out = self.model.run(&input)?;
        let mut v = out.pop().unwrap_or_default();
        if v.len() != self.dimensions {
            return Err(self.model.error(format!(
                "produced {} values instead of {}",
                v.len(),
                self.dimensions
            )));
        }
        let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(self.model.error("produced an unusable embedding (zero or not finite)"));
        }
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
        Ok(v)
    }

    /// The model file's path.
    pub fn path(&self) -> &Path {
        self.model.path()
    }
}

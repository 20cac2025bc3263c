//! Loading ONNX model files with tract and running them.
//!
//! Models are plain files chosen by the operator, so everything about them is checked at load
//! time and reported as [`Error::Model`] in words the operator can act on: a missing or
//! oversized file, bytes that are not an ONNX model, a graph tract cannot build, or inputs and
//! outputs of shapes PentaVision cannot use.
//!
//! One tract quirk is worked around here: models exported without a `value` attribute on
//! `ConstantOfShape` (the BlazeFace files) make tract 0.23 assume an f64 zero where ONNX says
//! f32, and the graph then fails to type-check. Such nodes get an explicit f32 zero before the
//! graph is built.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::{Error, Result};

/// The largest model file read (512 MiB).
pub const MAX_MODEL_BYTES: u64 = 512 << 20;

/// A loaded, optimised ONNX model with one f32 input of a fixed shape.
pub(crate) struct OnnxModel {
    plan: Arc<TypedSimplePlan>,
    path: PathBuf,
    sha256: String,
    input_shape: Vec<usize>,
    output_shapes: Vec<Vec<usize>>,
}

impl OnnxModel {
    /// Load `path`, fixing its single input to f32 `input_shape`, and optimise it. The output
    /// shapes must be concrete (they are checked by the caller).
    pub(crate) fn load(path: &Path, input_shape: &[usize]) -> Result<OnnxModel> {
        let bytes = read_capped(path)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let shape = input_shape.to_vec();
        let built = catch_unwind(AssertUnwindSafe(|| build(&bytes, &shape)))
            .unwrap_or_else(|_| Err(BuildError::Graph("the model crashed the loader".to_owned())));
        let (plan, output_shapes) = built.map_err(|e| match e {
            BuildError::NotOnnx(detail) => model_error(
                path,
                format!("is not an ONNX model (or the file is damaged): {detail}"),
            ),
            BuildError::Inputs(n) => model_error(
                path,
                format!("has {n} inputs; PentaVision needs a model with exactly one image input"),
            ),
            BuildError::Graph(detail) => model_error(
                path,
                format!("could not be prepared for a {} input: {detail}", shape_text(input_shape)),
            ),
        })?;
        Ok(OnnxModel {
            plan,
            path: path.to_owned(),
            sha256,
            input_shape: input_shape.to_vec(),
            output_shapes,
        })
    }

    /// The model file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Hex SHA-256 of the model file.
    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The shapes of the model's outputs, in output order.
    pub(crate) fn output_shapes(&self) -> &[Vec<usize>] {
        &self.output_shapes
    }

    /// An [`Error::Model`] about this model.
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        model_error(&self.path, message)
    }

    /// Run the model on `input` (laid out in the input shape given at load time) and return every
    /// output flattened in row-major order.
    pub(crate) fn run(&self, input: &[f32]) -> Result<Vec<Vec<f32>>> {
        let tensor = Tensor::from_shape(&self.input_shape, input)
            .map_err(|e| self.error(format!("bad input: {e}")))?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| self.error(format!("inference failed: {e}")))?;
        outputs
            .iter()
            .map(|o| {
                o.to_plain_array_view::<f32>()
                    .map(|v| v.iter().copied().collect())
                    .map_err(|e| self.error(format!("output is not f32: {e}")))
            })
            .collect()
    }
}

enum BuildError {
    NotOnnx(String),
    Inputs(usize),
    Graph(String),
}

type Built = (Arc<TypedSimplePlan>, Vec<Vec<usize>>);

fn build(bytes: &[u8], input_shape: &[usize]) -> std::result::Result<Built, BuildError> {
    let onnx = onnx();
    let mut proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| BuildError::NotOnnx(e.to_string()))?;
    let Some(graph) = proto.graph.as_mut() else {
        return Err(BuildError::NotOnnx("it holds no graph".to_owned()));
    };
    if graph.node.is_empty() {
        return Err(BuildError::NotOnnx("its graph is empty".to_owned()));
    }
    for node in graph.node.iter_mut() {
        if node.op_type == "ConstantOfShape" && !node.attribute.iter().any(|a| a.name == "value") {
            node.attribute.push(f32_zero_value());
        }
    }
    let model =
        onnx.model_for_proto_model(&proto).map_err(|e| BuildError::Graph(format!("{e:#}")))?;
    let inputs = model.input_outlets().map_err(|e| BuildError::Graph(e.to_string()))?.len();
    if inputs != 1 {
        return Err(BuildError::Inputs(inputs));
    }
    let typed = model
        .with_input_fact(0, f32::fact(input_shape).into())
        .and_then(|m| m.into_optimized())
        .map_err(|e| BuildError::Graph(format!("{e:#}")))?;
    let mut output_shapes = Vec::new();
    let outlets = typed.output_outlets().map_err(|e| BuildError::Graph(e.to_string()))?.to_vec();
    for outlet in outlets {
        let fact = typed.outlet_fact(outlet).map_err(|e| BuildError::Graph(e.to_string()))?;
        if fact.datum_type != f32::datum_type() {
            return Err(BuildError::Graph(format!(
                "an output holds {:?} values, not 32-bit floats",
                fact.datum_type
            )));
        }
        let Some(shape) = fact.shape.as_concrete() else {
            return Err(BuildError::Graph(format!(
                "an output has no fixed shape ({:?})",
                fact.shape
            )));
        };
        output_shapes.push(shape.to_vec());
    }
    let plan = typed.into_runnable().map_err(|e| BuildError::Graph(format!("{e:#}")))?;
    Ok((plan, output_shapes))
}

fn f32_zero_value() -> pb::AttributeProto {
    pb::AttributeProto {
        name: "value".to_owned(),
        r#type: pb::attribute_proto::AttributeType::Tensor as i32,
        t: Some(pb::TensorProto {
            dims: vec![1],
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: vec![0.0],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Read a whole model file, refusing files over [`MAX_MODEL_BYTES`].
fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| {
        let message = if e.kind() == std::io::ErrorKind::NotFound {
            "the file does not exist; run `pentavision faces fetch-models` to download the \
             default models, or point the configuration at your own"
                .to_owned()
        } else {
            format!("the file cannot be read: {e}")
        };
        model_error(path, message)
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| model_error(path, format!("the file cannot be read: {e}")))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(model_error(
            path,
            format!(
                "the file is larger than {} MiB, too large for a face model",
                MAX_MODEL_BYTES >> 20
            ),
        ));
    }
    if bytes.is_empty() {
        return Err(model_error(path, "the file is empty, not an ONNX model"));
    }
    Ok(bytes)
}

pub(crate) fn model_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Model { path: path.to_owned(), message: message.into() }
}

/// `[1, 3, 112, 112]`-style text for messages.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

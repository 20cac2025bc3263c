//! Tracing set-up: human or JSON lines on stderr, plus rotating log files in the data dir.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat, LogRotation};
use crate::error::{Error, Result};

/// Keeps the background log writer alive; drop it last (at the end of `main`) so buffered lines
/// reach the file.
#[derive(Debug)]
pub struct TelemetryGuard {
    _file: Option<WorkerGuard>,
}

/// Install the global tracing subscriber described by `config.logging`.
///
/// `RUST_LOG` overrides `logging.level`. With `file_enabled`, lines also go to
/// `pentavision.YYYY-MM-DD.log` (or hourly / a single file) in [`Config::log_dir`]; at most
/// `max_files` rotated files are kept. Calling it twice is harmless (the second call keeps the
/// first subscriber).
pub fn init(config: &Config, file_prefix: &str) -> Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.logging.level))
        .map_err(|e| Error::Config(format!("logging.level: {e}")))?;
    let json = config.logging.format == LogFormat::Json;

    let (file_layer, guard) = if config.logging.file_enabled {
        let dir = config.log_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let rotation = match config.logging.rotation {
            LogRotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
            LogRotation::Daily => tracing_appender::rolling::Rotation::DAILY,
            LogRotation::Never => tracing_appender::rolling::Rotation::NEVER,
        };
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(rotation)
            .filename_prefix(file_prefix)
            .filename_suffix("log")
            .max_log_files(config.logging.max_files.max(1))
            .build(&dir)
            .map_err(|e| Error::Config(format!("logging.directory {}: {e}", dir.display())))?;
        let (writer, guard) = tracing_appender::non_blocking(appender);
        let layer = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false);
        let layer = if json { layer.json().boxed() } else { layer.boxed() };
        (Some(layer), Some(guard))
    } else {
        (None, None)
    };

    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let stderr = if json { stderr.json().boxed() } else { stderr.boxed() };

    let _ = tracing_subscriber::registry().with(filter).with(stderr).with(file_layer).try_init();
    Ok(TelemetryGuard { _file: guard })
}

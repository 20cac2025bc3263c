//! Record one RTSP URL into a directory until Ctrl-C / stdin closes, printing one line per
//! recorder event and status change.
//!
//! ```text
//! cargo run -p pv-media --example record -- rtsp://127.0.0.1:8554/cam /tmp/rec [SEGMENT_SECONDS]
//! ```
//! Segments go to `DIR/cameras/id-1/`. The recorder stops cleanly (last segment finalised) when
//! standard input reaches end of file or a line `stop` is read; the pv-media tests kill it with
//! SIGKILL instead to leave a truncated segment for the recovery pass.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use pv_core::SystemClock;
use pv_core::ids::CameraId;
use pv_media::layout::CameraDir;
use pv_media::record::{Recorder, RecorderConfig, RecorderEvent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: record URL DIR [SEGMENT_SECONDS]");
        std::process::exit(2);
    };
    let segment: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(60);
    let camera = CameraId(1);
    let mut config = RecorderConfig::new(camera, url, dir, CameraDir::new(camera, None)?);
    config.segment_duration = Duration::from_secs(segment);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = Recorder::start(config, Arc::new(SystemClock::new()), tx)?;
        let mut state = recorder.state();
        let stdin_closed = tokio::task::spawn_blocking(|| {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) if l.trim() == "stop" => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        tokio::pin!(stdin_closed);
        loop {
            tokio::select! {
                Some(event) = rx.recv() => match event {
                    RecorderEvent::SegmentFinished(s) => println!(
                        "segment {} {} ms {} bytes {} {}x{} {}",
                        s.relative_path.display(), s.duration_ms, s.size_bytes, s.video_codec,
                        s.width.unwrap_or(0), s.height.unwrap_or(0), s.end_reason
                    ),
                    other => println!("{other:?}"),
                },
                Ok(()) = state.changed() => {
                    let st = state.borrow_and_update().clone();
                    println!("status {} {} {}", st.status.as_str(), st.backend, st.status.reason().unwrap_or(""));
                }
                _ = &mut stdin_closed => break,
            }
        }
        recorder.stop().await;
        while let Ok(event) = rx.try_recv() {
            if let RecorderEvent::SegmentFinished(s) = event {
                println!("segment {} {} ms {} bytes {}", s.relative_path.display(), s.duration_ms, s.size_bytes, s.end_reason);
            }
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

//! Record an RTSP camera into fragmented MP4 segments in a folder for a number of seconds,
//! printing each segment as it is finished: pv-media alone, with the built-in recorder (no
//! database, no server).
//!
//! ```text
//! cargo run -p pv-media --example record_camera -- URL DIR [SECONDS] [SEGMENT_SECONDS]
//! ```
//!
//! `SECONDS` defaults to 30 and `SEGMENT_SECONDS` to 10. Segments go to `DIR/cameras/id-1/`.
//! A camera the built-in recorder cannot handle is recorded by the fallback, and the line
//! printed when recording starts says which and why. Exits non-zero when no segment was
//! written.

use std::sync::Arc;
use std::time::Duration;

use pv_core::SystemClock;
use pv_core::ids::CameraId;
use pv_media::layout::CameraDir;
use pv_media::record::{Recorder, RecorderConfig, RecorderEvent, RecorderStatus};

fn main() {
    if let Err(e) = run() {
        eprintln!("record_camera: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: record_camera URL DIR [SECONDS] [SEGMENT_SECONDS]".into());
    };
    let number = |what: &str, v: Option<String>, default: u64| -> Result<u64, String> {
        v.map_or(Ok(default), |v| v.parse().map_err(|_| format!("{what} must be a number: {v}")))
    };
    let seconds = number("SECONDS", args.next(), 30)?;
    let segment = number("SEGMENT_SECONDS", args.next(), 10)?;
    let camera = CameraId(1);
    let mut config = RecorderConfig::new(camera, url, dir, CameraDir::new(camera, None)?);
    config.segment_duration = Duration::from_secs(segment.max(1));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = Recorder::start(config, Arc::new(SystemClock::new()), tx)?;
        let mut state = recorder.state();
        let deadline = tokio::time::sleep(Duration::from_secs(seconds));
        tokio::pin!(deadline);
        let mut segments = 0u32;
        let mut print = |event: RecorderEvent| match event {
            RecorderEvent::SegmentFinished(s) => {
                segments += 1;
                println!(
                    "segment {} {} {:.2} s {} bytes {}{} {}x{} ({}, {})",
                    s.relative_path.display(),
                    s.started_at.format("%H:%M:%S%.3f"),
                    s.duration_ms as f64 / 1000.0,
                    s.size_bytes,
                    s.video_codec,
                    s.audio_codec.map(|a| format!("+{a}")).unwrap_or_default(),
                    s.width.unwrap_or(0),
                    s.height.unwrap_or(0),
                    s.end_reason,
                    s.backend,
                );
            }
            RecorderEvent::GapStarted { reason, .. } => println!("gap: {reason}"),
            _ => {}
        };
        loop {
            tokio::select! {
                () = &mut deadline => break,
                Some(event) = rx.recv() => print(event),
                Ok(()) = state.changed() => {
                    let s = state.borrow_and_update().clone();
                    match &s.status {
                        RecorderStatus::Streaming => println!(
                            "recording with the {} backend{}",
                            s.backend,
                            s.backend_reason.map(|r| format!(" ({r})")).unwrap_or_default()
                        ),
                        other => println!("{}{}", other.as_str(),
                            other.reason().map(|r| format!(": {r}")).unwrap_or_default()),
                    }
                }
            }
        }
        recorder.stop().await;
        while let Ok(event) = rx.try_recv() {
            print(event);
        }
        if segments == 0 {
            return Err::<(), Box<dyn std::error::Error>>("no segment was written".into());
        }
        Ok(())
    })
}

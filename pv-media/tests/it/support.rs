//! Shared helpers: tracing, ffprobe, recorder fixtures that collect events.

use std::path::Path;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use pv_core::SystemClock;
use pv_core::ids::CameraId;
use pv_media::layout::CameraDir;
use pv_media::record::{
    Recorder, RecorderConfig, RecorderEvent, RecorderState, RecorderStatus, SegmentFinished,
};
use tokio::sync::{mpsc, watch};

/// Segment length used by the tests.
pub const SEGMENT: Duration = Duration::from_secs(3);

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "pv_media=info".into()),
            )
            .try_init();
    });
}

/// What ffprobe says about a file's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub duration: f64,
}

/// Run ffprobe on a file or URL (at most 30 s: a stream that stalls must not hang the suite);
/// Err with ffprobe's message when it cannot read it.
pub fn ffprobe(target: &str) -> Result<Probe, String> {
    let out = std::process::Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-rtsp_transport", "tcp"])
        .args(["-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name,width,height:format=duration", "-of", "default=nw=1"])
        .arg(target)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap_or("").to_owned()
    };
    Ok(Probe {
        codec: field("codec_name"),
        width: field("width").parse().unwrap_or(0),
        height: field("height").parse().unwrap_or(0),
        duration: field("duration").parse().unwrap_or(0.0),
    })
}

pub fn ffprobe_file(path: &Path) -> Result<Probe, String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name,width,height:format=duration", "-of", "default=nw=1"])
        .arg(path)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() || !err.trim().is_empty() {
        return Err(format!("{}: {err}", path.display()));
    }
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap_or("").to_owned()
    };
    Ok(Probe {
        codec: field("codec_name"),
        width: field("width").parse().unwrap_or(0),
        height: field("height").parse().unwrap_or(0),
        duration: field("duration").parse().unwrap_or(0.0),
    })
}

/// A recorder config with short segments and short timeouts for tests.
pub fn config(camera: i64, url: &str, data_dir: &Path) -> RecorderConfig {
    let camera = CameraId(camera);
    let mut c = RecorderConfig::new(camera, url, data_dir, CameraDir::new(camera, None).unwrap());
    c.segment_duration = SEGMENT;
    c.start_timeout = Duration::from_secs(6);
    c.stall_timeout = Duration::from_secs(4);
    c
}

/// A running recorder and everything it has reported so far.
pub struct Rec {
    pub recorder: Option<Recorder>,
    pub rx: mpsc::UnboundedReceiver<RecorderEvent>,
    pub state: watch::Receiver<RecorderState>,
    pub events: Vec<RecorderEvent>,
    pub statuses: Vec<RecorderStatus>,
}

impl Rec {
    pub fn start(config: RecorderConfig) -> Rec {
        init_tracing();
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Recorder::start(config, Arc::new(SystemClock::new()), tx).unwrap();
        let state = recorder.state();
        Rec { recorder: Some(recorder), rx, state, events: vec![], statuses: vec![] }
    }

    fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.events.push(e);
        }
        let st = self.state.borrow().status.clone();
        if self.statuses.last() != Some(&st) {
            self.statuses.push(st);
        }
    }

    pub fn segments(&self) -> Vec<&SegmentFinished> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RecorderEvent::SegmentFinished(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// Poll until `done(self)` or the timeout; returns whether it happened.
    pub async fn wait_until(&mut self, timeout: Duration, done: impl Fn(&Rec) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn status(&self) -> RecorderState {
        self.state.borrow().clone()
    }

    /// Stop the recorder and collect the remaining events.
    pub async fn stop(&mut self) {
        if let Some(r) = self.recorder.take() {
            r.stop().await;
        }
        self.drain();
    }
}

/// Every finished segment must be a valid file of the expected codec and size whose duration
/// is within one GOP (1 s) of the target — except the last, which may be shorter.
pub fn check_segments(segments: &[&SegmentFinished], codec: &str) {
    let ffprobe_codec = if codec == "h265" { "hevc" } else { codec };
    for (i, s) in segments.iter().enumerate() {
        let probe = ffprobe_file(&s.path).unwrap_or_else(|e| panic!("segment {i}: {e}"));
        assert_eq!(probe.codec, ffprobe_codec, "{s:?}");
        assert_eq!((probe.width, probe.height), (1280, 720), "{s:?}");
        assert_eq!(s.video_codec, codec);
        assert_eq!((s.width, s.height), (Some(1280), Some(720)));
        assert_eq!(s.size_bytes, std::fs::metadata(&s.path).unwrap().len());
        let reported = s.duration_ms as f64 / 1000.0;
        assert!((probe.duration - reported).abs() < 0.2, "ffprobe {probe:?} vs event {s:?}");
        if s.end_reason == pv_media::record::EndReason::Duration {
            let target = SEGMENT.as_secs_f64();
            assert!(
                probe.duration <= target + 0.3 && probe.duration > target - 1.0 - 0.1,
                "segment {i} lasts {} s, target {target} s",
                probe.duration
            );
        }
    }
}

/// The codec of every stream of a file, in order.
pub fn stream_codecs(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

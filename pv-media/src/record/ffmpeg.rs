//! The ffmpeg fallback: `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_format
//! mp4 …` as a child process, its segment list read from stdout (one CSV line per closed
//! segment), stopped with `q` on stdin so the last segment is finalised.
//!
//! Video only: cameras' G.711 audio cannot go into MP4 without transcoding, and the codec is
//! not known before ffmpeg has started.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{AttemptEnd, Backend, EndReason, Session, url_with_credentials};
use crate::layout::parse_segment_file_name;

/// How long ffmpeg may take to finalise the open segment after `q`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a segment list line is held back before it counts as a rotation.
const HOLD: Duration = Duration::from_millis(500);
/// How long a closed segment may take to be whole on disk.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(2);

/// Run ffmpeg until the camera is lost or the recorder is stopped.
pub(super) fn run(s: &mut Session) -> AttemptEnd {
    let c = &s.config;
    let camera = c.camera;
    let url = url_with_credentials(&c.url, c.username.as_deref(), c.password.as_deref());
    let pattern = s.dir.join(format!("%Y%m%dT%H%M%SZ-{camera}.mp4"));
    let timeout_us = c.stall_timeout.as_micros().to_string();
    let segment_secs = format!("{:.3}", c.segment_duration.as_secs_f64());
    let started = SystemTime::now();
    let attempt_start = Instant::now();
    let spawned = Command::new(&c.ffmpeg_program)
        .env("TZ", "UTC0")
        .args(["-hide_banner", "-nostats", "-loglevel", "error"])
        .args(["-rtsp_transport", c.transport.as_str(), "-timeout", &timeout_us])
        .args(["-i", &url, "-map", "0:v:0", "-an", "-c", "copy"])
        .args(["-f", "segment", "-segment_time", &segment_secs, "-segment_format", "mp4"])
        .args(["-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof"])
        .args(["-reset_timestamps", "1", "-strftime", "1"])
        .args(["-segment_list", "pipe:1", "-segment_list_type", "csv"])
        .arg(&pattern)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return AttemptEnd::Unusable {
                reason: format!("cannot run {}: {e}", c.ffmpeg_program.display()),
            };
        }
    };
    tracing::info!(camera = %camera, pid = child.id(), "ffmpeg recorder started");
    let lines = read_lines(&mut child);
    let stderr_tail = read_stderr(&mut child);
    let mut streamed = false;
    let mut stopping = false;
    let mut quit_at: Option<Instant> = None;
    // Segment list lines wait HOLD before they count as rotations: the line of the segment
    // open when ffmpeg stops or fails comes just before it exits and gets that end reason.
    let mut pending: VecDeque<(Instant, String)> = VecDeque::new();
    let status = loop {
        pending.extend(lines.try_iter().map(|l| (Instant::now(), l)));
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(camera = %camera, error = %e, "cannot wait for ffmpeg");
                break None;
            }
        }
        while !stopping && pending.front().is_some_and(|(t, _)| t.elapsed() >= HOLD) {
            if let Some((_, line)) = pending.pop_front() {
                segment_line(s, &line, EndReason::Duration);
            }
        }
        if !streamed && wrote_since(&s.dir, camera.0, started) {
            streamed = true;
            s.streaming(Backend::Ffmpeg);
        }
        if !stopping && s.stop.is_set() {
            stopping = true;
            quit_at = Some(Instant::now());
            if let Some(stdin) = child.stdin.as_mut() {
                let _ = stdin.write_all(b"q\n").and_then(|()| stdin.flush());
            }
        }
        let too_slow = !streamed && attempt_start.elapsed() > s.config.start_timeout;
        let quit_overdue = quit_at.is_some_and(|t| t.elapsed() > QUIT_TIMEOUT);
        if too_slow || quit_overdue {
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Lines written before exit: the last one is the segment that was open.
    let rest: Vec<String> = pending.into_iter().map(|(_, l)| l).chain(lines.iter()).collect();
    let last_reason = if stopping { EndReason::Shutdown } else { EndReason::Error };
    let n = rest.len();
    for (i, line) in rest.into_iter().enumerate() {
        let reason = if i + 1 == n { last_reason } else { EndReason::Duration };
        segment_line(s, &line, reason);
    }
    if stopping {
        return AttemptEnd::Stopped;
    }
    let tail = stderr_tail.lock().map(|t| t.iter().cloned().collect::<Vec<_>>().join("; "));
    let tail = tail.unwrap_or_default();
    let reason = if !streamed && attempt_start.elapsed() > s.config.start_timeout {
        format!("ffmpeg recorded nothing within {} s", s.config.start_timeout.as_secs())
    } else if tail.is_empty() {
        format!("ffmpeg exited ({})", status.map_or("killed".to_owned(), |st| st.to_string()))
    } else {
        let target = super::reason::CameraTarget::of(&s.config);
        super::reason::explain_ffmpeg(&target, &tail)
            .unwrap_or_else(|| format!("ffmpeg: {}", target.scrub(&tail)))
    };
    AttemptEnd::Lost { reason, streamed, fallback: false }
}

fn read_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    if let Some(stdout) = child.stdout.take() {
        let _ = std::thread::Builder::new().name("ffmpeg-list".into()).spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn read_stderr(child: &mut Child) -> Arc<Mutex<VecDeque<String>>> {
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = child.stderr.take() {
        let tail = tail.clone();
        let _ = std::thread::Builder::new().name("ffmpeg-stderr".into()).spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::debug!(line, "ffmpeg");
                if let Ok(mut t) = tail.lock() {
                    if t.len() == 3 {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        });
    }
    tail
}

/// Whether a segment file of this camera was written since `since`.
fn wrote_since(dir: &Path, camera: i64, since: SystemTime) -> bool {
    let suffix = format!("-{camera}.mp4");
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.filter_map(Result::ok).any(|e| {
        e.file_name().to_string_lossy().ends_with(&suffix)
            && e.metadata().is_ok_and(|m| m.len() > 0 && m.modified().is_ok_and(|t| t >= since))
    })
}

/// One CSV line of ffmpeg's segment list: `file,start,end` (seconds of the input timeline).
fn segment_line(s: &mut Session, line: &str, reason: EndReason) {
    let mut parts = line.rsplitn(3, ',');
    let end = parts.next().and_then(|v| v.trim().parse::<f64>().ok());
    let start = parts.next().and_then(|v| v.trim().parse::<f64>().ok());
    let Some(name) = parts.next() else {
        tracing::debug!(line, "ignored ffmpeg segment list line");
        return;
    };
    let name = name.trim().trim_matches('"');
    let path = if Path::new(name).is_absolute() {
        PathBuf::from(name)
    } else {
        s.dir.join(Path::new(name).file_name().unwrap_or_default())
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let started_at = parse_segment_file_name(&file_name).ok().map(|(t, _)| t);
    let to_ns = |secs: f64| (secs.max(0.0) * 1e9) as u64;
    let start_ns = start.map_or(0, to_ns);
    let fallback = match (start, end) {
        (Some(a), Some(b)) => to_ns(b - a),
        _ => 0,
    };
    s.finish_file(&path, started_at, start_ns, fallback, reason, Backend::Ffmpeg, COMPLETE_TIMEOUT);
}

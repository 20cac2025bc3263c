//! CPU cost of recording N simulated 1080p H.264 cameras: PentaVision's [`Recorder`]s (the
//! built-in backend and the GStreamer one) against one `ffmpeg -c copy` per camera, side by
//! side.
//!
//! The cameras run in a child process (this binary with `--serve-cameras N`): N
//! [`TestCamera`]s serving [`Clip::Moving1080`] (1920x1080, 15 fps, one key frame per second,
//! 4 Mbit/s, x264 ultrafast; encoded once into the clip cache before anything is measured) on
//! 127.0.0.1. Their cost is not counted. For every N in `--cameras`, against the same cameras:
//!
//! 1. PentaVision, once per backend in `--backends` (default `native,gstreamer`): N recorders
//!    in this process (continuous, that backend, no fallback, `--segment` long segments, RTSP
//!    over TCP) write into a temporary data dir. Once
//!    every recorder is streaming and `--warmup` seconds have passed, this process's CPU time
//!    (user + system of all threads, `/proc/self/stat`) is read over `--seconds`.
//! 2. ffmpeg: N `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time SEG
//!    -reset_timestamps 1 out%03d.mp4` processes, one directory each. Once every one has opened
//!    its first file and `--warmup` seconds have passed, the sum of their CPU times
//!    (`/proc/PID/stat`) is read over the same length of time. They are stopped with SIGINT,
//!    which makes ffmpeg close its last file properly.
//!
//! Reported per N: CPU seconds per stream-minute for both and their ratio, the cores each used,
//! the cameras' and the rest of the machine's load during each window (from `/proc/stat`), the
//! bench process's resident memory with N recorders running, and whether every recorder wrote
//! all its segments. PentaVision: no gap event from the start of the window until the
//! recorders are stopped (a first connection that failed before the window is printed, not
//! counted), the status `streaming` for the whole window, contiguous segments of the full
//! length but the last, and exactly the files its events name. ffmpeg: still running at the end
//! of the window, files `out000.mp4…` without a hole, each readable by `ffprobe`, of the full
//! length but the last. Both must cover at least warm-up plus window.
//!
//! `cargo run --release -p pv-benches --bin record_cpu -- [--cameras 1,8,32] [--seconds 60]
//! [--warmup 5] [--segment 60] [--backends native,gstreamer] [--g711] [--ffmpeg PATH]
//! [--dir DIR] [--keep]`
//!
//! `--g711`: the cameras also send G.711 µ-law audio (8 kHz mono, as many Hikvision, Dahua and
//! Reolink cameras do). PentaVision's built-in recorder turns it into AAC; ffmpeg then runs as
//! Frigate records such cameras, `-c:v copy -c:a aac` (MP4 cannot hold G.711 for browsers).
//!
//! Every child (the cameras, the ffmpegs) is killed on every way out: errors, panics, SIGINT,
//! SIGTERM and a deadline for the whole run. The cameras also exit when this process's end of
//! their standard input closes, and an ffmpeg whose camera is gone ends by itself.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use pv_core::SystemClock;
use pv_core::ids::CameraId;
use pv_media::layout::CameraDir;
use pv_media::record::{
    Backend, EndReason, Recorder, RecorderConfig, RecorderEvent, RecorderStatus, SegmentFinished,
};
use pv_media::testcam::{Clip, TestCamera};

/// What every simulated camera serves.
const CLIP: Clip = Clip::Moving1080;
/// How long all recorders (or ffmpegs) may take to start writing.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped ffmpeg may take to close its file before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// A full segment may be this much shorter or longer than `--segment` (cuts are at key frames,
/// one a second, plus time-stamp jitter).
const SEGMENT_SLACK: f64 = 1.5;

#[derive(Debug)]
struct Args {
    cameras: Vec<usize>,
    seconds: u64,
    warmup: u64,
    segment: u64,
    backends: Vec<Backend>,
    g711: bool,
    ffmpeg: PathBuf,
    dir: Option<PathBuf>,
    keep: bool,
}

enum Mode {
    Serve(usize, bool),
    Bench(Args),
}

const USAGE: &str = "usage: record_cpu [--cameras 1,8,32] [--seconds 60] [--warmup 5] \
                     [--segment 60] [--backends native,gstreamer] [--g711] [--ffmpeg PATH] \
                     [--dir DIR] [--keep]";

fn parse_args() -> anyhow::Result<Mode> {
    let mut args = Args {
        cameras: vec![1, 8, 32],
        seconds: 60,
        warmup: 5,
        segment: 60,
        backends: vec![Backend::Native, Backend::Gstreamer],
        g711: false,
        ffmpeg: PathBuf::from("ffmpeg"),
        dir: None,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--keep" {
            args.keep = true;
            continue;
        }
        if a == "--g711" {
            args.g711 = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{a} needs a value; {USAGE}"))?;
        match a.as_str() {
            "--serve-cameras" => {
                let g711 = it.next().as_deref() == Some("g711");
                return Ok(Mode::Serve(value.parse().context("--serve-cameras")?, g711));
            }
            "--cameras" => {
                args.cameras = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--cameras: comma-separated counts")?;
            }
            "--seconds" => args.seconds = value.parse().context("--seconds")?,
            "--warmup" => args.warmup = value.parse().context("--warmup")?,
            "--segment" => args.segment = value.parse().context("--segment")?,
            "--backends" => {
                args.backends = value
                    .split(',')
                    .map(|b| match Backend::parse(b.trim()) {
                        Some(b) if b != Backend::Ffmpeg => Ok(b),
                        _ => Err(anyhow::anyhow!("--backends: native and/or gstreamer, not {b}")),
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            "--ffmpeg" => args.ffmpeg = value.into(),
            "--dir" => args.dir = Some(value.into()),
            _ => bail!("unknown argument {a}; {USAGE}"),
        }
    }
    if args.cameras.is_empty() || args.cameras.contains(&0) {
        bail!("--cameras: every count must be at least 1");
    }
    if args.backends.is_empty() {
        bail!("--backends: at least one");
    }
    if args.seconds == 0 || args.segment == 0 {
        bail!("--seconds and --segment must be at least 1");
    }
    Ok(Mode::Bench(args))
}

// ---------------------------------------------------------------------------------------------
// Children: every process this bench starts is registered, so that every way out kills it.

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn register(child: &Child) {
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).push(child.id());
}

fn unregister(pid: u32) {
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).retain(|p| *p != pid);
}

/// SIGKILL every registered child that has not been reaped.
fn kill_all() {
    let pids = std::mem::take(&mut *CHILDREN.lock().unwrap_or_else(|p| p.into_inner()));
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// Kills the children when `main` returns or unwinds.
struct KillOnDrop;

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_all();
    }
}

/// SIGINT, SIGTERM and the run's deadline kill the children, remove `root` (unless it is to be
/// kept) and end the process.
fn guard_exits(deadline: Duration, root: PathBuf, keep: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("exit-guard".into()).spawn(move || {
        rt.block_on(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("cannot watch SIGTERM: {e}");
                        return;
                    }
                };
            let why = tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = term.recv() => "terminated",
                () = tokio::time::sleep(deadline) => "the run's deadline passed",
            };
            eprintln!("record_cpu: {why}; killing the children");
            kill_all();
            if !keep {
                let _ = std::fs::remove_dir_all(&root);
            }
            std::process::exit(2);
        });
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurements.

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 when that fails).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// User + system CPU seconds of a process (all its threads, living and exited).
fn cpu_seconds(pid: &str, hz: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short stat")?.parse::<u64>()? as f64)
    };
    // Fields 14 (utime) and 15 (stime); `rest` starts at field 3.
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// Busy and total CPU seconds of the whole machine (all cores), from `/proc/stat`.
fn machine_seconds(hz: f64) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<f64> =
        line.split_whitespace().skip(1).take(8).map(|f| f.parse().unwrap_or(0.0)).collect();
    if v.len() < 8 {
        bail!("short /proc/stat");
    }
    // user nice system idle iowait irq softirq steal
    let total: f64 = v.iter().sum();
    Ok(((total - v[3] - v[4]) / hz, total / hz))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `VmRSS` and `VmHWM` of this process in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU and wall time over one measured window.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    wall: f64,
    /// CPU seconds of what is measured.
    cpu: f64,
    /// CPU seconds of the camera process.
    cameras: f64,
    /// CPU seconds of the whole machine.
    machine: f64,
}

impl Window {
    fn per_stream_minute(&self, n: usize) -> f64 {
        self.cpu / n as f64 / (self.wall / 60.0)
    }

    fn cores(cpu: f64, wall: f64) -> f64 {
        cpu / wall
    }

    fn others(&self) -> f64 {
        (self.machine - self.cpu - self.cameras).max(0.0)
    }
}

/// Readings at the start of a window.
struct Mark {
    at: Instant,
    cpu: f64,
    cameras: f64,
    machine: f64,
}

fn mark(cpu: f64, cameras: &str, hz: f64) -> anyhow::Result<Mark> {
    Ok(Mark {
        at: Instant::now(),
        cpu,
        cameras: cpu_seconds(cameras, hz)?,
        machine: machine_seconds(hz)?.0,
    })
}

fn window(start: &Mark, cpu: f64, cameras: &str, hz: f64) -> anyhow::Result<Window> {
    Ok(Window {
        wall: start.at.elapsed().as_secs_f64(),
        cpu: cpu - start.cpu,
        cameras: cpu_seconds(cameras, hz)? - start.cameras,
        machine: machine_seconds(hz)?.0 - start.machine,
    })
}

// ---------------------------------------------------------------------------------------------
// The cameras' process.

fn serve(n: usize, g711: bool) -> anyhow::Result<()> {
    let options = || pv_media::testcam::TestCameraOptions { g711, ..Default::default() };
    let cameras: Vec<TestCamera> =
        (0..n).map(|_| TestCamera::start_with(CLIP, options())).collect::<Result<_, _>>()?;
    let mut out = std::io::stdout().lock();
    for cam in &cameras {
        writeln!(out, "{}", cam.url())?;
    }
    out.flush()?;
    drop(out);
    // Until the bench closes our standard input (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(cameras);
    Ok(())
}

struct Cameras {
    child: Child,
    stdin: Option<ChildStdin>,
    urls: Vec<String>,
}

impl Cameras {
    fn start(n: usize, g711: bool) -> anyhow::Result<Cameras> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--serve-cameras", &n.to_string(), if g711 { "g711" } else { "video" }])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start the camera process")?;
        register(&child);
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let mut urls = Vec::with_capacity(n);
        for _ in 0..n {
            match lines.next() {
                Some(Ok(url)) if url.starts_with("rtsp://") => urls.push(url),
                _ => bail!("the camera process did not start {n} cameras"),
            }
        }
        Ok(Cameras { child, stdin, urls })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                unregister(self.child.id());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        unregister(self.child.id());
    }
}

// ---------------------------------------------------------------------------------------------
// PentaVision.

/// One backend's result for one N.
#[derive(Debug, Default)]
struct Run {
    window: Window,
    /// Segment files written (all cameras).
    files: usize,
    /// What went wrong, per camera; empty: every recorder wrote all its segments.
    problems: Vec<String>,
    /// What went wrong before the window (a first connection that failed).
    notes: Vec<String>,
    /// This process's RSS and peak RSS in MiB at the end of the window.
    rss: (f64, f64),
}

fn pentavision(
    args: &Args,
    backend: Backend,
    urls: &[String],
    root: &Path,
    cameras_pid: &str,
    hz: f64,
) -> anyhow::Result<Run> {
    let data_dir = root.join(format!("pentavision-{backend}"));
    // Reset the peak RSS, so it is this phase's (not the clip encoder's or a larger N's).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let clock = Arc::new(SystemClock::new());
    let mut recorders = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let id = CameraId(i as i64 + 1);
        let mut config = RecorderConfig::new(id, url, &data_dir, CameraDir::new(id, None)?);
        config.segment_duration = Duration::from_secs(args.segment);
        config.backend = backend;
        config.ffmpeg_fallback = false;
        recorders.push(Recorder::start(config, clock.clone(), tx.clone())?);
    }
    drop(tx);
    let mut states: Vec<_> = recorders.iter().map(Recorder::state).collect();
    let stop_all = |recorders: Vec<Recorder>| {
        let threads: Vec<_> =
            recorders.into_iter().map(|r| std::thread::spawn(move || r.stop_blocking())).collect();
        for t in threads {
            let _ = t.join();
        }
    };

    let t0 = Instant::now();
    loop {
        let streaming = states
            .iter()
            .filter(|s| {
                let s = s.borrow();
                s.status == RecorderStatus::Streaming && s.backend == backend
            })
            .count();
        if streaming == states.len() {
            break;
        }
        if t0.elapsed() > START_TIMEOUT {
            stop_all(recorders);
            bail!("only {streaming} of {} recorders streaming after 60 s", states.len());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let streaming_after = t0.elapsed();
    std::thread::sleep(Duration::from_secs(args.warmup));

    for s in &mut states {
        s.borrow_and_update();
    }
    // Events so far came before the window: a failed first connection is noted, not counted.
    let mut segments: Vec<Vec<SegmentFinished>> = vec![Vec::new(); urls.len()];
    let mut notes = Vec::new();
    collect_events(&mut rx, &mut segments, &mut notes);
    let wall_start = Utc::now();
    let start = mark(cpu_seconds("self", hz)?, cameras_pid, hz)?;
    std::thread::sleep(Duration::from_secs(args.seconds));
    let window = window(&start, cpu_seconds("self", hz)?, cameras_pid, hz)?;
    let wall_end = Utc::now();
    let rss = rss_mib();

    let mut problems = Vec::new();
    for (i, s) in states.iter().enumerate() {
        let changed = s.has_changed().unwrap_or(true);
        let state = s.borrow();
        if changed || state.status != RecorderStatus::Streaming || state.since > wall_start {
            problems.push(format!(
                "camera {}: status {} (changed during the window: {changed})",
                i + 1,
                state.status.as_str()
            ));
        }
    }
    stop_all(recorders);
    collect_events(&mut rx, &mut segments, &mut problems);

    let mut files = 0;
    for (i, segs) in segments.iter_mut().enumerate() {
        let id = CameraId(i as i64 + 1);
        segs.sort_by_key(|s| s.started_at);
        files += segs.len();
        let dir = data_dir.join(CameraDir::new(id, None)?.relative_path());
        check_pentavision(args, backend, id, &dir, segs, (wall_start, wall_end), &mut problems);
    }
    println!("  all {} recorders streaming after {streaming_after:.1?}", urls.len());
    for note in &notes {
        println!("  before the window: {note}");
    }
    Ok(Run { window, files, problems, notes, rss })
}

/// Sort the segment events into `segments` (by camera); gaps go to `gaps`.
fn collect_events(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<RecorderEvent>,
    segments: &mut [Vec<SegmentFinished>],
    gaps: &mut Vec<String>,
) {
    while let Ok(event) = rx.try_recv() {
        match event {
            RecorderEvent::SegmentFinished(seg) => {
                if let Some(list) =
                    usize::try_from(seg.camera.0 - 1).ok().and_then(|i| segments.get_mut(i))
                {
                    list.push(seg);
                }
            }
            RecorderEvent::GapStarted { camera, at, reason } => {
                gaps.push(format!("camera {camera}: gap at {at}: {reason}"));
            }
            RecorderEvent::GapEnded { camera, ended_at, .. } => {
                gaps.push(format!("camera {camera}: gap ended at {ended_at}"));
            }
            _ => {}
        }
    }
}

fn check_pentavision(
    args: &Args,
    backend: Backend,
    camera: CameraId,
    dir: &Path,
    segs: &[SegmentFinished],
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    problems: &mut Vec<String>,
) {
    let mut problem = |p: String| problems.push(format!("camera {camera}: {p}"));
    let Some((first, last)) = segs.first().zip(segs.last()) else {
        problem("no segment".into());
        return;
    };
    let on_disk: BTreeSet<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    let named: BTreeSet<PathBuf> = segs.iter().map(|s| s.path.clone()).collect();
    for extra in on_disk.difference(&named) {
        problem(format!("{} has no segment event", extra.display()));
    }
    for missing in named.difference(&on_disk) {
        problem(format!("{} is missing", missing.display()));
    }
    let full = args.segment as f64;
    for (k, seg) in segs.iter().enumerate() {
        let secs = seg.duration_ms as f64 / 1000.0;
        let is_last = k + 1 == segs.len();
        if !is_last
            && (seg.end_reason != EndReason::Duration || (secs - full).abs() > SEGMENT_SLACK)
        {
            problem(format!(
                "segment {} ended ({}) after {secs:.2} s, not {full} s",
                seg.relative_path.display(),
                seg.end_reason
            ));
        }
        if is_last && seg.end_reason != EndReason::Shutdown {
            problem(format!("last segment ended by {}", seg.end_reason));
        }
        if seg.backend != backend {
            problem(format!("segment written by {}", seg.backend));
        }
        if let Some(next) = segs.get(k + 1) {
            let hole = (next.started_at - seg.ended_at).num_milliseconds();
            if hole.abs() > 500 {
                problem(format!("{hole} ms between segments at {}", seg.ended_at));
            }
        }
    }
    let covered: f64 = segs.iter().map(|s| s.duration_ms as f64 / 1000.0).sum();
    let needed = (args.seconds + args.warmup) as f64 - 1.0;
    if covered < needed {
        problem(format!("segments cover {covered:.1} s, less than {needed:.0} s"));
    }
    if first.started_at > start + chrono::Duration::milliseconds(500)
        || last.ended_at < end - chrono::Duration::milliseconds(500)
    {
        problem(format!(
            "segments {} – {} do not cover the window {start} – {end}",
            first.started_at, last.ended_at
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// ffmpeg.

struct Ffmpeg {
    child: Child,
    dir: PathBuf,
}

impl Ffmpeg {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

fn stop_ffmpegs(ffmpegs: &mut [Ffmpeg]) {
    let pids: Vec<String> = ffmpegs.iter().map(Ffmpeg::pid).collect();
    if !pids.is_empty() {
        let _ = Command::new("kill").arg("-INT").args(&pids).stderr(Stdio::null()).status();
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for f in ffmpegs.iter_mut() {
        loop {
            if let Ok(Some(_)) = f.child.try_wait() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = f.child.kill();
                let _ = f.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unregister(f.child.id());
    }
}

fn ffmpeg(
    args: &Args,
    urls: &[String],
    root: &Path,
    cameras_pid: &str,
    hz: f64,
) -> anyhow::Result<Run> {
    let mut ffmpegs: Vec<Ffmpeg> = Vec::with_capacity(urls.len());
    let result = ffmpeg_measure(args, urls, root, cameras_pid, hz, &mut ffmpegs);
    stop_ffmpegs(&mut ffmpegs);
    let (window, mut problems) = result?;
    let mut files = 0;
    for (i, f) in ffmpegs.iter().enumerate() {
        files += check_ffmpeg(args, i + 1, &f.dir, &mut problems);
    }
    Ok(Run { window, files, problems, notes: Vec::new(), rss: (0.0, 0.0) })
}

fn ffmpeg_measure(
    args: &Args,
    urls: &[String],
    root: &Path,
    cameras_pid: &str,
    hz: f64,
    ffmpegs: &mut Vec<Ffmpeg>,
) -> anyhow::Result<(Window, Vec<String>)> {
    for (i, url) in urls.iter().enumerate() {
        let dir = root.join("ffmpeg").join(format!("cam-{}", i + 1));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("ffmpeg.log"))?;
        let child = Command::new(&args.ffmpeg)
            .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            .args(["-rtsp_transport", "tcp", "-i", url])
            .args(if args.g711 {
                &["-c:v", "copy", "-c:a", "aac"][..]
            } else {
                &["-c", "copy"][..]
            })
            .args(["-f", "segment"])
            .args(["-segment_time", &args.segment.to_string(), "-reset_timestamps", "1"])
            .arg(dir.join("out%03d.mp4"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", args.ffmpeg.display()))?;
        register(&child);
        ffmpegs.push(Ffmpeg { child, dir });
    }
    let t0 = Instant::now();
    loop {
        let writing = ffmpegs
            .iter()
            .filter(|f| std::fs::metadata(f.dir.join("out000.mp4")).is_ok_and(|m| m.len() > 0))
            .count();
        if writing == ffmpegs.len() {
            break;
        }
        for f in ffmpegs.iter_mut() {
            if let Ok(Some(status)) = f.child.try_wait() {
                let log = std::fs::read_to_string(f.dir.join("ffmpeg.log")).unwrap_or_default();
                bail!("ffmpeg for {} exited ({status}) before writing: {log}", f.dir.display());
            }
        }
        if t0.elapsed() > START_TIMEOUT {
            bail!("only {writing} of {} ffmpegs writing after 60 s", ffmpegs.len());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("  all {} ffmpegs writing after {:.1?}", ffmpegs.len(), t0.elapsed());
    std::thread::sleep(Duration::from_secs(args.warmup));

    let pids: Vec<String> = ffmpegs.iter().map(Ffmpeg::pid).collect();
    let sum = |pids: &[String]| -> anyhow::Result<f64> {
        pids.iter().map(|p| cpu_seconds(p, hz)).sum::<anyhow::Result<f64>>()
    };
    let start = mark(sum(&pids)?, cameras_pid, hz)?;
    std::thread::sleep(Duration::from_secs(args.seconds));
    let mut problems = Vec::new();
    for (i, f) in ffmpegs.iter_mut().enumerate() {
        if let Ok(Some(status)) = f.child.try_wait() {
            problems.push(format!("ffmpeg {}: exited during the window ({status})", i + 1));
        }
    }
    if !problems.is_empty() {
        return Ok((Window::default(), problems));
    }
    let window = window(&start, sum(&pids)?, cameras_pid, hz)?;
    Ok((window, problems))
}

/// Check one ffmpeg's directory; the number of segment files.
fn check_ffmpeg(args: &Args, camera: usize, dir: &Path, problems: &mut Vec<String>) -> usize {
    let mut problem = |p: String| problems.push(format!("ffmpeg {camera}: {p}"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".mp4"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let full = args.segment as f64;
    let mut covered = 0.0;
    for (k, name) in names.iter().enumerate() {
        if *name != format!("out{k:03}.mp4") {
            problem(format!("expected out{k:03}.mp4, found {name}"));
            break;
        }
        let secs = match probe_duration(&dir.join(name)) {
            Ok(s) => s,
            Err(e) => {
                problem(format!("{name}: {e:#}"));
                continue;
            }
        };
        covered += secs;
        if k + 1 < names.len() && (secs - full).abs() > SEGMENT_SLACK {
            problem(format!("{name} lasts {secs:.2} s, not {full} s"));
        }
    }
    let needed = (args.seconds + args.warmup) as f64 - 1.0;
    if covered < needed {
        problem(format!("segments cover {covered:.1} s, less than {needed:.0} s"));
    }
    let log = std::fs::read_to_string(dir.join("ffmpeg.log")).unwrap_or_default();
    let errors: Vec<&str> =
        log.lines().filter(|l| !l.contains("Exiting normally")).take(3).collect();
    if !errors.is_empty() {
        problem(format!("logged: {}", errors.join(" | ")));
    }
    names.len()
}

fn probe_duration(path: &Path) -> anyhow::Result<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .context("run ffprobe")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse::<f64>().with_context(|| {
        format!("ffprobe: no duration ({})", String::from_utf8_lossy(&out.stderr).trim())
    })
}

// ---------------------------------------------------------------------------------------------

fn first_line(program: &str, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("{program}: not found"))
}

fn main() -> anyhow::Result<()> {
    let args = match parse_args()? {
        Mode::Serve(n, g711) => return serve(n, g711),
        Mode::Bench(args) => args,
    };
    let _kill = KillOnDrop;
    // Start-up, every phase (start, warm-up, window, stop, checks) and slack.
    let phase = START_TIMEOUT + STOP_TIMEOUT * 2 + Duration::from_secs(args.warmup + args.seconds);
    let deadline = Duration::from_secs(300) + phase * 2 * args.cameras.len() as u32;
    let root = match &args.dir {
        Some(d) => d.join(format!("pv-record-cpu-{}", std::process::id())),
        None => std::env::temp_dir().join(format!("pv-record-cpu-{}", std::process::id())),
    };
    guard_exits(deadline, root.clone(), args.keep)?;
    std::fs::create_dir_all(&root)?;
    let result = bench(&args, &root, deadline);
    kill_all();
    if args.keep {
        println!("files kept in {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
    result
}

fn bench(args: &Args, root: &Path, deadline: Duration) -> anyhow::Result<()> {
    let hz = clock_ticks();
    let (w, h) = CLIP.size();
    // Encode the clip (once per machine) before anything is measured.
    let clip = pv_media::testcam::clip::clip_file(CLIP)?;
    let clip_bytes = std::fs::metadata(&clip)?.len();
    let kbps = clip_bytes as f64 * 8.0 / CLIP.loop_duration().as_secs_f64() / 1000.0;
    println!(
        "record_cpu: {} build, {} cores, load average {} at start; deadline {} s",
        if cfg!(debug_assertions) { "DEBUG" } else { "release" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        deadline.as_secs()
    );
    println!(
        "clip {} {w}x{h} H.264, {} fps, 1 s GOP, x264 ultrafast, {kbps:.0} kbit/s ({}){}",
        CLIP.name(),
        pv_media::testcam::clip::FPS,
        clip.display(),
        if args.g711 {
            "; with G.711 µ-law audio, recorded as AAC (ffmpeg: -c:v copy -c:a aac)"
        } else {
            ""
        }
    );
    println!("{}", first_line(&args.ffmpeg.to_string_lossy(), "-version"));
    println!(
        "per N: {} s warm-up after all are writing, then a {} s window; {} s segments; data in {}",
        args.warmup,
        args.seconds,
        args.segment,
        root.display()
    );

    let max = args.cameras.iter().copied().max().unwrap_or(1);
    let cameras = Cameras::start(max, args.g711)?;
    let cameras_pid = cameras.pid();
    /// Per N: each backend's run, and ffmpeg's.
    type Row = (usize, Vec<(Backend, Run)>, Run);
    let result = (|| -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for &n in &args.cameras {
            let urls = &cameras.urls[..n];
            let dir = root.join(format!("n{n}"));
            let mut pvs = Vec::new();
            for &backend in &args.backends {
                println!("N = {n}: PentaVision, {backend} backend… (load {})", load_average());
                let pv = pentavision(args, backend, urls, &dir, &cameras_pid, hz)?;
                println!(
                    "  {:.3} CPU s per stream-minute, {} files, {} problems",
                    pv.window.per_stream_minute(n),
                    pv.files,
                    pv.problems.len()
                );
                pvs.push((backend, pv));
            }
            println!("N = {n}: ffmpeg… (load {})", load_average());
            let ff = ffmpeg(args, urls, &dir, &cameras_pid, hz)?;
            println!(
                "  {:.3} CPU s per stream-minute, {} files, {} problems",
                ff.window.per_stream_minute(n),
                ff.files,
                ff.problems.len()
            );
            if !args.keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            rows.push((n, pvs, ff));
        }
        Ok(rows)
    })();
    cameras.stop();
    let rows = result?;

    println!();
    println!(
        "CPU s per stream-minute over a {} s window ({} cores; cores = CPU s per wall s)",
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>3} {:>10} {:>11} {:>7} {:>9} {:>13} {:>13} {:>9} {:>16}",
        "N",
        "backend",
        "s/st-min",
        "vs ff",
        "cores",
        "cams cores",
        "other cores",
        "segs",
        "RSS/stream MiB"
    );
    let ok =
        |r: &Run| if r.problems.is_empty() { format!("ok {}", r.files) } else { "FAIL".into() };
    for (n, pvs, ff) in &rows {
        let ffm = ff.window.per_stream_minute(*n);
        let line = |name: &str, r: &Run, rss: String| {
            let w = r.window;
            println!(
                "{n:>3} {name:>10} {:>11.3} {:>6.2}x {:>9.3} {:>13.3} {:>13.3} {:>9} {:>16}",
                w.per_stream_minute(*n),
                w.per_stream_minute(*n) / ffm,
                Window::cores(w.cpu, w.wall),
                Window::cores(w.cameras, w.wall),
                Window::cores(w.others(), w.wall),
                ok(r),
                rss,
            );
        };
        for (backend, pv) in pvs {
            line(backend.as_str(), pv, format!("{:.1}", pv.rss.0 / *n as f64));
        }
        line("ffmpeg", ff, "(own processes)".into());
    }
    println!(
        "(vs ff: CPU against ffmpeg's at the same N; RSS: this process's resident memory with N \
         recorders, per stream, including the shared libraries; segs: every recorder wrote all \
         its segments, and how many files in all)"
    );
    println!("load average at end {}", load_average());
    for (n, pvs, _) in &rows {
        for (backend, pv) in pvs {
            for note in &pv.notes {
                println!("N = {n} PentaVision {backend}, before the window (not counted): {note}");
            }
        }
    }
    let mut failed = false;
    for (n, pvs, ff) in &rows {
        let mut all: Vec<(String, &Run)> =
            pvs.iter().map(|(b, r)| (format!("PentaVision {b}"), r)).collect();
        all.push(("ffmpeg".into(), ff));
        for (name, run) in all {
            for p in &run.problems {
                failed = true;
                println!("N = {n} {name}: {p}");
            }
        }
    }
    if failed {
        bail!("some recorders did not write all their segments");
    }
    Ok(())
}

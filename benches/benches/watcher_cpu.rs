//! CPU cost of motion watching: N [`MotionWatcher`]s on one simulated camera, the process's
//! CPU time (user + system, `/proc/self/stat`) over a measured interval, reported as CPU
//! seconds per camera-minute and per cent of one core per camera.
//!
//! The camera runs in a child process (this binary with `--serve`), so its RTP payloading is
//! not counted. Everything the watcher does is: RTSP receive, depayload, decode, `videorate` to
//! 5 fps, GRAY8 conversion and scaling to 640 pixels wide, the motion kernel and the
//! hysteresis.
//!
//! `cargo bench -p pv-benches --bench watcher_cpu -- [--clip moving-sub|moving|burst|static]
//! [--cameras N] [--seconds S]` (defaults: moving-sub, a 640x360 15 fps sub stream; 4
//! cameras; 60 s). Flags without a value that it does not know (`--bench`, `--quick`) are
//! ignored, so it runs with the criterion benches. Under `cargo test` (no `--bench`) it runs
//! one camera for 3 s: a check that it works, not a measurement.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pv_core::SystemClock;
use pv_core::ids::CameraId;
use pv_media::record::RecorderEvent;
use pv_media::testcam::{Clip, TestCamera};
use pv_media::watch::{MotionWatcher, WatcherConfig};

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, fixed at 100 on Linux).
const USER_HZ: f64 = 100.0;

fn clip(name: &str) -> anyhow::Result<Clip> {
    Ok(match name {
        "moving-sub" => Clip::MovingSub,
        "moving" => Clip::Moving,
        "burst" => Clip::Burst,
        "static" => Clip::Static,
        other => bail!("unknown clip {other}"),
    })
}

/// User + system CPU seconds of a process (all its threads, living and exited).
fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short stat")?.parse::<u64>()? as f64)
    };
    // Fields 14 (utime) and 15 (stime); `rest` starts at field 3.
    Ok((ticks(11)? + ticks(12)?) / USER_HZ)
}

fn serve(name: &str) -> anyhow::Result<()> {
    let cam = TestCamera::start(clip(name)?)?;
    println!("{}", cam.url());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test` runs benches without it, once, as a check
    // that they work: then one camera for a few seconds.
    let measuring = std::env::args().any(|a| a == "--bench");
    let mut args = std::env::args().skip(1);
    let (mut clip_name, mut cameras, mut seconds) = (
        "moving-sub".to_owned(),
        if measuring { 4u32 } else { 1 },
        if measuring { 60u64 } else { 3 },
    );
    while let Some(a) = args.next() {
        if !matches!(a.as_str(), "--serve" | "--clip" | "--cameras" | "--seconds") {
            continue;
        }
        let value = args.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--serve" => return serve(&value),
            "--clip" => clip_name = value,
            "--cameras" => cameras = value.parse().context("--cameras")?,
            "--seconds" => seconds = value.parse().context("--seconds")?,
            _ => bail!("usage: watcher_cpu [--clip NAME] [--cameras N] [--seconds S]"),
        }
    }
    let (w, h) = clip(&clip_name)?.size();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &clip_name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut url = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut url)?;
    let url = url.trim().to_owned();
    if url.is_empty() {
        bail!("the test camera did not start");
    }
    let child_pid = child.id().to_string();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let clock = Arc::new(SystemClock::new());
    let watchers: Vec<MotionWatcher> = (1..=cameras)
        .map(|i| {
            MotionWatcher::start(
                WatcherConfig::new(CameraId(i.into()), &url),
                clock.clone(),
                tx.clone(),
            )
        })
        .collect::<Result<_, _>>()?;
    // Connect, decode the first key frames, warm the detector up.
    std::thread::sleep(Duration::from_secs(5));
    let (cpu0, cam0, t0) = (cpu_seconds("self")?, cpu_seconds(&child_pid)?, Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, cam1, wall) = (cpu_seconds("self")?, cpu_seconds(&child_pid)?, t0.elapsed());
    for w in watchers {
        w.stop_blocking();
    }
    let mut events = 0;
    while let Ok(e) = rx.try_recv() {
        if matches!(e, RecorderEvent::MotionStarted { .. }) {
            events += 1;
        }
    }
    drop(child.stdin.take());
    let _ = child.wait();

    let per_camera = (cpu1 - cpu0) / f64::from(cameras);
    let wall_s = wall.as_secs_f64();
    println!(
        "clip {clip_name} ({w}x{h} 15 fps) → 5 fps, 640 wide; {cameras} watchers for {wall_s:.1} s"
    );
    println!(
        "watcher CPU: {:.3} s per camera-minute = {:.2} % of one core per camera ({events} motion events)",
        per_camera * 60.0 / wall_s,
        per_camera / wall_s * 100.0
    );
    println!("test camera (not counted): {:.2} % of one core", (cam1 - cam0) / wall_s * 100.0);
    Ok(())
}
